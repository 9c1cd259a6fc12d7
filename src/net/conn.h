/* conn.h - one client connection: a socket, optionally TLS, with blocking
 * reads and writes that each have a timeout.
 *
 * Sessions never touch the socket or OpenSSL themselves. Input is buffered
 * (so pipelined commands are kept); output is buffered until conn_flush()
 * or until a read finds the input buffer empty, which is what SMTP and
 * POP3 pipelining need: replies to a batch go out in one write.
 *
 * Its buffers exist only while it is in use: conn_release_buffers() gives
 * them back when nothing is buffered, and the next read or write takes
 * new ones. The transport is a stack of layers (socket, TLS, DEFLATE).
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
#include <stdint.h>
#include <sys/types.h>

#include <openssl/ssl.h>

#include "base/err.h"

/* The buffers are mapped while a session runs and unmapped while it is
 * parked, so only pages a busy session touches cost memory. Output goes
 * out in sends of up to CONN_WBUF_SIZE: a RETR or FETCH of a typical
 * message is one send, and the client wakes once for it. */
#define CONN_RBUF_SIZE 16384
#define CONN_WBUF_SIZE 65536
/* The most conn_close() waits to send what is still queued (or the
 * timeout, if shorter): a last reply needs only to reach the kernel, and
 * a peer that stopped reading must not hold the thread any longer. */
#define CONN_CLOSE_FLUSH_MS 2000
/* How long a wait may last before the conn's slow-peer hook is called
 * (conn_on_slow_peer): a client that takes our output at once never
 * calls it, one that lags a little (a few round trips) rarely does. */
#define CONN_SLOW_PEER_MS 20

/* Called once a wait for the peer (output it must take, or the TLS
 * input a write needs) has lasted CONN_SLOW_PEER_MS, before waiting on:
 * the writer lets go of what others need meanwhile. */
typedef void conn_slow_peer_fn(void *arg);

struct conn;

/* One layer of the transport stack: the socket at the bottom, TLS on it,
 * DEFLATE compression (IMAP COMPRESS) on top. The conn reads and writes through
 * its top layer; a layer reaches the one below through below. Each call
 * waits at most until deadline (CLOCK_MONOTONIC ms) and reports EOF or
 * failure in the conn's flags. */
struct conn_layer_ops {
	const char *name;
	/* Reads up to n bytes, at least 1. Returns 1, or 0 on EOF/timeout/error. */
	int (*read)(struct conn *c, void *p, size_t n, size_t *done_r, int64_t deadline);
	/* Writes up to n bytes, at least 1. Returns 1, or 0 on timeout/error. */
	int (*write)(struct conn *c, const void *p, size_t n, size_t *done_r,
		     int64_t deadline);
	/* Does the layer hold input already received but not yet read? */
	bool (*pending)(const struct conn *c);
	/* Says goodbye if the layer has a way to (TLS close_notify) and
	 * frees the layer's state. */
	void (*close)(struct conn *c);
	/* Optional: the session is parked; give back what memory the layer
	 * can rebuild later (conn_release_buffers calls it). */
	void (*idle)(struct conn *c);
};

struct conn_zlib;

struct conn_layer {
	const struct conn_layer_ops *ops;
	struct conn_layer *below;	/* NULL for the socket */
};

struct conn {
	int fd;
	SSL *ssl;			/* the TLS layer's session, NULL without */
	int timeout_ms;			/* idle limit for each wait */
	int write_timeout_ms;		/* limit for each flush of wbuf, if
					 * shorter than timeout_ms; 0: none */
	int tls_timeout_ms;		/* whole TLS handshake; 0: timeout_ms */
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
	/* A transfer (conn_transfer_begin): reads must keep a minimum rate
	 * and end by a deadline. */
	bool xfer;
	int64_t xfer_start, xfer_end;	/* CLOCK_MONOTONIC ms */
	uint64_t xfer_bytes;
	long xfer_rate;			/* bytes per second; 0: none */
	struct conn_layer *top;		/* the transport stack */
	struct conn_layer sock;		/* its bottom layer */
	struct conn_layer tls;		/* on sock, once TLS is started */
	struct conn_layer zlib;		/* on top, once COMPRESS is started */
	struct conn_zlib *z;		/* its state (conn_deflate.c) */
	size_t rpos, rlen;
	size_t rhigh;			/* most bytes one read has left in rbuf */
	size_t wlen;
	/* Allocated when first used, released by conn_release_buffers()
	 * while a session is parked: an idle connection holds none. */
	unsigned char *rbuf;		/* CONN_RBUF_SIZE */
	unsigned char *wbuf;		/* CONN_WBUF_SIZE */
	conn_slow_peer_fn *slow_peer;	/* conn_on_slow_peer, or NULL */
	void *slow_peer_arg;
};

/* Wraps an accepted socket. Fills peer/local addresses. */
void conn_init(struct conn *c, int fd, int timeout_ms);
/* Flushes (waiting at most CONN_CLOSE_FLUSH_MS), shuts TLS down politely
 * and closes the socket. */
void conn_close(struct conn *c);

/* Starts server-side TLS on the connection (implicit TLS, or after
 * STARTTLS/STLS was answered). Any buffered, not yet consumed input is
 * discarded first: bytes sent before the handshake must never be read as
 * if they came over TLS. Returns 1 or -1. */
int conn_tls_accept(struct conn *c, SSL_CTX *ctx, struct yj_err *err) YJ_MUST_CHECK;
/* Client side TLS (for the outbound SMTP client). Buffered input is
 * discarded here too, for the same reason. sni is not sent if it is NULL
 * or an address literal; either way it is the name (or address) the
 * certificate is checked against (conn_tls_verified). */
int conn_tls_connect(struct conn *c, SSL_CTX *ctx, const char *sni,
		     struct yj_err *err) YJ_MUST_CHECK;
/* After conn_tls_connect(): 1 if the server's certificate chain verified
 * against the context's trusted CAs and names sni (a host name, or the
 * address literal); 0 if not, with the reason in why. A context that
 * does not require verification still lets the handshake succeed. */
int conn_tls_verified(const struct conn *c, char *why, size_t whylen);
bool conn_is_tls(const struct conn *c);

/* Starts DEFLATE compression both ways (RFC 4978 COMPRESS=DEFLATE: raw
 * deflate, each conn_flush() ends with a sync flush so the peer can
 * decode all it got). Queued output is flushed uncompressed first and
 * buffered input not yet consumed is discarded: it was sent before the
 * switch. Works over TLS and plain sockets. Returns 1 or -1. */
int conn_deflate_start(struct conn *c, struct yj_err *err) YJ_MUST_CHECK;
bool conn_is_deflate(const struct conn *c);
/* Bytes held by the DEFLATE layer right now (streams, buffers, saved
 * history): for tests and measurements. 0 without the layer. */
size_t conn_deflate_memory(const struct conn *c);
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

/* Zeroes the input that has been consumed, and whatever an earlier,
 * longer read left behind the unread input, so that a line that held a
 * password does not stay in the buffer until it is overwritten. The
 * unread input is kept. */
void conn_forget_input(struct conn *c);

/* Reads a line that holds a secret (a SASL response) into buf, which
 * must hold the line with its line end: the line end is cut off, and a
 * line longer than size - 1 bytes or holding a NUL gives -1. The input
 * buffer's copy is wiped (conn_forget_input). Returns 1, 0 on
 * EOF/timeout/error, -1 for an unusable line (buf wiped). */
int conn_read_secret_line(struct conn *c, char *buf, size_t size) YJ_MUST_CHECK;

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

/* Queue output. They return 1, or 0 once the connection has failed.
 * Each flush of the output buffer (at most CONN_WBUF_SIZE bytes, when it
 * fills up, or by conn_flush) must be taken by the peer within
 * write_timeout_ms (or timeout_ms, if that is shorter or the write limit
 * is 0); else the conn fails, as after any failed write. So a peer that
 * stops reading, or reads less than CONN_WBUF_SIZE in that time, holds
 * the writing thread that long at most. */
int conn_write(struct conn *c, const void *p, size_t n);
int conn_printf(struct conn *c, const char *fmt, ...) YJ_PRINTF(2, 3);
int conn_flush(struct conn *c);
/* While fn is set, every wait of the conn that lasts CONN_SLOW_PEER_MS
 * calls fn(arg) and then waits on, to its usual deadline; NULL unsets
 * it. A command whose long output may meet a slow reader sets it to
 * give back its store connection for the wait (imap FETCH). */
void conn_on_slow_peer(struct conn *c, conn_slow_peer_fn *fn, void *arg);

/* Is there input to handle without waiting: bytes buffered here or in
 * a layer (TLS records already received), or an end (EOF, failure,
 * timeout) that the next read will report? */
bool conn_input_ready(const struct conn *c);

/* Frees the read and write buffers if they hold nothing (flush first),
 * and lets each layer shrink (the DEFLATE layer keeps only the peer's
 * history). Returns true if the conn now holds no buffers. */
bool conn_release_buffers(struct conn *c);

/* Marks a read timeout from outside (an idle session's wait that the
 * runtime did for the protocol ran out): later reads return 0 with
 * timed_out set, output still goes out. */
void conn_set_timed_out(struct conn *c);
/* Why the connection's I/O ended, for a session's log line:
 * "write-timeout" (the peer took none of our output within
 * write_timeout_ms), "timeout" (no input within timeout_ms), "eof" or
 * "io-error". */
const char *conn_end_reason(const struct conn *c);

/* A transfer (an SMTP DATA or BDAT message) must keep min_rate bytes per
 * second on average, counted from its start plus one idle timeout, and
 * end within max_ms (0: no total limit). Reads that would wait past
 * either limit time out as an idle read does. Calling it while a
 * transfer is active keeps the first start. */
void conn_transfer_begin(struct conn *c, long min_rate, long max_ms);
void conn_transfer_end(struct conn *c);

/* The time (CLOCK_MONOTONIC ms) by which a read must see data, for a
 * wait that began at since: the idle timeout, or earlier if a transfer
 * limits it. */
int64_t conn_read_deadline(const struct conn *c, int64_t since);

/* CLOCK_MONOTONIC in milliseconds. */
int64_t conn_now_ms(void);

/* Queues one protocol line: formats it into line (at most linesize - 3
 * bytes are kept, so a reply never overruns), then sends it with CRLF.
 * line is left NUL-terminated without the CRLF, for the caller's log.
 * Returns the length kept. */
size_t conn_vwrite_line(struct conn *c, char *line, size_t linesize, const char *fmt,
			va_list ap);

#endif
