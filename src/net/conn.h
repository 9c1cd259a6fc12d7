/* conn.h - one client connection: a socket, optionally TLS, with blocking
 * reads and writes that each have a timeout.
 *
 * Sessions never touch the socket or OpenSSL themselves. Input is buffered
 * (so pipelined commands are kept); output is buffered until conn_flush()
 * or until a read finds the input buffer empty, which is what SMTP and
 * POP3 pipelining need: replies to a batch go out in one write.
 *
 * A conn is used by one thread at a time. Plain sockets never raise
 * SIGPIPE; OpenSSL writes with write(2), so a program using TLS conns
 * must ignore SIGPIPE (youjud does).
 */
#ifndef YJ_CONN_H
#define YJ_CONN_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <openssl/ssl.h>

#include "base/err.h"

#define CONN_RBUF_SIZE 16384
#define CONN_WBUF_SIZE 16384

struct conn {
	int fd;
	SSL *ssl;
	int timeout_ms;
	bool failed;			/* a read/write failed; all later I/O fails */
	bool timed_out;			/* a read or write timed out; after a read
					 * timeout no more input is read, but
					 * output (a last reply) still goes out */
	bool eof;			/* the peer closed its side */
	char peer_ip[64];		/* textual address, no brackets */
	int peer_port;
	char local_ip[64];
	int local_port;
	bool peer_loopback;
	size_t rpos, rlen;
	size_t wlen;
	unsigned char rbuf[CONN_RBUF_SIZE];
	unsigned char wbuf[CONN_WBUF_SIZE];
};

/* Wraps an accepted socket. Fills peer/local addresses. */
void conn_init(struct conn *c, int fd, int timeout_ms);
/* Flushes, shuts TLS down politely and closes the socket. */
void conn_close(struct conn *c);

/* Starts server-side TLS on the connection (implicit TLS, or after
 * STARTTLS/STLS was answered). Any buffered, not yet consumed input is
 * discarded first: bytes sent before the handshake must never be read as
 * if they came over TLS. Returns 1 or -1. */
int conn_tls_accept(struct conn *c, SSL_CTX *ctx, struct yj_err *err) YJ_MUST_CHECK;
/* Client side TLS (for the outbound SMTP client). Buffered input is
 * discarded here too, for the same reason. sni is not sent if it is NULL
 * or an address literal. */
int conn_tls_connect(struct conn *c, SSL_CTX *ctx, const char *sni,
		     struct yj_err *err) YJ_MUST_CHECK;
bool conn_is_tls(const struct conn *c);
/* "TLSv1.3 TLS_AES_256_GCM_SHA384" or "" */
void conn_tls_describe(const struct conn *c, char *out, size_t outlen);

/* Reads one line ending in LF. On return *len_r is the length including
 * the line terminator (CRLF or LF), which stays in line[] and is
 * NUL-terminated. max is the largest line accepted (terminator included,
 * linesize must be > max).
 * The whole line must arrive within timeout_ms, so a client sending a
 * byte now and then cannot hold the read open.
 * Returns 1 for a line, 0 on EOF/timeout/error (see failed/timed_out/eof),
 * -1 if the line was longer than max: the rest of it, up to and including
 * its LF, has been read and thrown away. */
int conn_read_line(struct conn *c, char *line, size_t linesize, size_t max,
		   size_t *len_r) YJ_MUST_CHECK;

/* Reads up to n bytes (at least 1 unless EOF/error). Returns bytes read,
 * 0 on EOF/timeout/error. */
ssize_t conn_read(struct conn *c, void *p, size_t n) YJ_MUST_CHECK;
/* Reads exactly n bytes. Returns 1 or 0 on EOF/timeout/error. */
int conn_read_full(struct conn *c, void *p, size_t n) YJ_MUST_CHECK;
/* Bytes already received and buffered but not yet consumed. */
size_t conn_pending(const struct conn *c);
/* Returns a pointer to the buffered input (filling the buffer with a
 * read if it is empty) and its length in *len_r; 0 on EOF/timeout/error.
 * Consume with conn_consume(). For byte-oriented parsers like DATA. */
int conn_peek(struct conn *c, const unsigned char **data_r, size_t *len_r) YJ_MUST_CHECK;
void conn_consume(struct conn *c, size_t n);

/* Queue output. They return 1, or 0 once the connection has failed. */
int conn_write(struct conn *c, const void *p, size_t n);
int conn_printf(struct conn *c, const char *fmt, ...) YJ_PRINTF(2, 3);
int conn_flush(struct conn *c);

/* Queues one protocol line: formats it into line (at most linesize - 3
 * bytes are kept, so a reply never overruns), then sends it with CRLF.
 * line is left NUL-terminated without the CRLF, for the caller's log.
 * Returns the length kept. */
size_t conn_vwrite_line(struct conn *c, char *line, size_t linesize, const char *fmt,
			va_list ap);

#endif
