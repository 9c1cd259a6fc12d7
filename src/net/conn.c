/* conn.c - buffered, timed socket I/O for one connection, plain or TLS.
 *
 * The socket is non-blocking from conn_init() on; every wait is a poll()
 * against a deadline, so no call can block longer than its timeout:
 *   - conn_read_line() gives the whole line timeout_ms, so a client that
 *     drips one byte at a time cannot hold a line read open for long;
 *   - conn_read(), conn_peek() and each chunk of conn_read_full() wait at
 *     most timeout_ms for data (an idle limit);
 *   - each flush of the output buffer gets write_timeout_ms in total
 *     (or timeout_ms, if shorter), the TLS handshake tls_timeout_ms (or
 *     timeout_ms);
 *   - during a transfer (conn_transfer_begin) reads also keep a minimum
 *     rate and a total deadline.
 *
 * The buffers are mapped on first use and unmapped when released, so a
 * parked session gives their pages back to the system at once instead of
 * leaving holes in the heap.
 */
#include "net/conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "base/block.h"
#include "base/log.h"
#include "base/util.h"

enum tls_op { TLS_OP_HANDSHAKE, TLS_OP_READ, TLS_OP_WRITE };

static const struct conn_layer_ops conn_sock_ops;
static const struct conn_layer_ops conn_tls_ops;

int64_t
conn_now_ms(void)
{
	return util_now_ms();
}

static int64_t
conn_deadline(const struct conn *c)
{
	return conn_now_ms() + (c->timeout_ms > 0 ? c->timeout_ms : 0);
}

/* The time by which a flush must be done: a client that does not take
 * our output holds the thread that writes it, so writes may have a
 * shorter limit than the wait for a command. */
static int64_t
conn_write_deadline(const struct conn *c)
{
	int ms = c->timeout_ms > 0 ? c->timeout_ms : 0;

	if (c->write_timeout_ms > 0 && c->write_timeout_ms < ms)
		ms = c->write_timeout_ms;
	return conn_now_ms() + ms;
}

/* Textual address without brackets; IPv4-mapped IPv6 shows as IPv4, so
 * that logs, mynetworks checks and Received: lines see one form. */
static void
conn_format_addr(const struct sockaddr_storage *ss, char *ip, size_t iplen, int *port_r)
{
	ip[0] = '\0';
	*port_r = 0;
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &sin->sin_addr, ip, (socklen_t)iplen);
		*port_r = ntohs(sin->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;

		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr))
			inet_ntop(AF_INET, &sin6->sin6_addr.s6_addr[12], ip, (socklen_t)iplen);
		else
			inet_ntop(AF_INET6, &sin6->sin6_addr, ip, (socklen_t)iplen);
		*port_r = ntohs(sin6->sin6_port);
	} else if (ss->ss_family == AF_UNIX) {
		snprintf(ip, iplen, "local");
	}
}

static bool
conn_addr_is_loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;

		return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
	}
	if (ss->ss_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;

		return IN6_IS_ADDR_LOOPBACK(a) ||
		       (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
	}
	return false;
}

void
conn_init(struct conn *c, int fd, int timeout_ms)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	int flags, one = 1;

	memset(c, 0, sizeof(*c));
	c->fd = fd;
	c->timeout_ms = timeout_ms;
	c->failed = fd < 0;
	c->sock.ops = &conn_sock_ops;
	c->top = &c->sock;

	memset(&ss, 0, sizeof(ss));
	sslen = sizeof(ss);
	if (getpeername(fd, (struct sockaddr *)&ss, &sslen) < 0)
		ss.ss_family = AF_UNSPEC;
	conn_format_addr(&ss, c->peer_ip, sizeof(c->peer_ip), &c->peer_port);
	c->peer_loopback = conn_addr_is_loopback(&ss);

	memset(&ss, 0, sizeof(ss));
	sslen = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &sslen) < 0)
		ss.ss_family = AF_UNSPEC;
	conn_format_addr(&ss, c->local_ip, sizeof(c->local_ip), &c->local_port);

	/* Every wait is a poll() with a deadline; the socket itself must
	 * never block, or a full send buffer could stall us past it. */
	flags = fcntl(fd, F_GETFL);
	if (flags >= 0)
		(void)fcntl(fd, F_SETFL, flags | O_NONBLOCK);
	/* Replies are already gathered in wbuf; Nagle would only delay the
	 * last segment of a reply that spans several writes. Fails harmlessly
	 * on non-TCP sockets. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* One poll for events until deadline: 1 ready (an error or hangup
 * also counts: the next call reports it), 0 the deadline passed, -1 a
 * poll error. */
static int
conn_poll(struct conn *c, short events, int64_t deadline)
{
	for (;;) {
		struct pollfd pfd = { .fd = c->fd, .events = events };
		int64_t left = deadline - conn_now_ms();
		int r;

		if (left < 0)
			left = 0;
		block_begin();
		r = poll(&pfd, 1, left > INT_MAX ? INT_MAX : (int)left);
		block_end();
		if (r >= 0)
			return r > 0 ? 1 : 0;
		if (errno != EINTR)
			return -1;
	}
}

/* conn_poll, with the slow-peer hook called once the wait has lasted
 * CONN_SLOW_PEER_MS (if there is one and the deadline is later). */
static int
conn_poll_hooked(struct conn *c, short events, int64_t deadline)
{
	int64_t soon;
	int r;

	if (c->slow_peer == NULL)
		return conn_poll(c, events, deadline);
	soon = conn_now_ms() + CONN_SLOW_PEER_MS;
	if (soon >= deadline)
		return conn_poll(c, events, deadline);
	if ((r = conn_poll(c, events, soon)) != 0)
		return r;
	c->slow_peer(c->slow_peer_arg);
	return conn_poll(c, events, deadline);
}

/* Waits until the socket is ready for events or the deadline passes.
 * Returns 1 when ready (an error or hangup also counts: the next call
 * reports it), 0 after marking the connection failed. */
static int
conn_wait(struct conn *c, short events, int64_t deadline)
{
	int r = conn_poll_hooked(c, events, deadline);

	if (r > 0)
		return 1;
	if (r == 0) {
		/* A read that timed out still lets the session say so
		 * ("421 timeout"); a write that timed out cannot. */
		c->timed_out = true;
		if (events & POLLOUT)
			c->failed = true;
		return 0;
	}
	c->failed = true;
	return 0;
}

/* ---- the socket layer ---- */

static int
sock_read(struct conn *c, void *p, size_t n, size_t *done_r, int64_t deadline)
{
	for (;;) {
		ssize_t r = recv(c->fd, p, n, MSG_DONTWAIT);

		if (r > 0) {
			*done_r = (size_t)r;
			return 1;
		}
		if (r == 0) {
			c->eof = true;
			return 0;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			c->failed = true;
			return 0;
		}
		if (!conn_wait(c, POLLIN, deadline))
			return 0;
	}
}

/* MSG_NOSIGNAL: a peer that went away must give EPIPE, not SIGPIPE. */
static int
sock_write(struct conn *c, const void *p, size_t n, size_t *done_r, int64_t deadline)
{
	for (;;) {
		ssize_t r = send(c->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (r >= 0) {
			*done_r = (size_t)r;
			return 1;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			c->failed = true;
			return 0;
		}
		if (!conn_wait(c, POLLOUT, deadline))
			return 0;
	}
}

static bool
sock_pending(const struct conn *c)
{
	(void)c;
	return false;
}

/* The socket itself is closed by conn_close(), after every layer. */
static void
sock_close(struct conn *c)
{
	(void)c;
}

static const struct conn_layer_ops conn_sock_ops = {
	.name = "socket", .read = sock_read, .write = sock_write,
	.pending = sock_pending, .close = sock_close,
};

/* ---- the TLS layer: OpenSSL on the socket's fd ---- */

static int
conn_tls_call(struct conn *c, enum tls_op op, void *p, size_t n, size_t *done_r)
{
	switch (op) {
	case TLS_OP_HANDSHAKE:
		return SSL_do_handshake(c->ssl);
	case TLS_OP_READ:
		return SSL_read_ex(c->ssl, p, n, done_r);
	case TLS_OP_WRITE:
		return SSL_write_ex(c->ssl, p, n, done_r);
	}
	return -1;
}

/* Runs one OpenSSL operation to completion, waiting on the socket in
 * whichever direction OpenSSL asks for. Returns 1, or 0 with eof or
 * failed set. */
static int
conn_tls_io(struct conn *c, enum tls_op op, void *p, size_t n, size_t *done_r,
	    int64_t deadline)
{
	for (;;) {
		int ret, e;

		ERR_clear_error();
		ret = conn_tls_call(c, op, p, n, done_r);
		if (ret == 1)
			return 1;
		e = SSL_get_error(c->ssl, ret);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
			if (!conn_wait(c, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline))
				return 0;
			continue;
		}
		/* A close without close_notify is how most mail clients hang
		 * up; report it as end of input, not as a failure. */
		if (e == SSL_ERROR_ZERO_RETURN ||
		    (e == SSL_ERROR_SSL &&
		     ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING)) {
			c->eof = true;
			if (op != TLS_OP_READ)
				c->failed = true;
			return 0;
		}
		c->failed = true;
		return 0;
	}
}

static int
tls_read(struct conn *c, void *p, size_t n, size_t *done_r, int64_t deadline)
{
	return conn_tls_io(c, TLS_OP_READ, p, n, done_r, deadline);
}

static int
tls_write(struct conn *c, const void *p, size_t n, size_t *done_r, int64_t deadline)
{
	return conn_tls_io(c, TLS_OP_WRITE, (void *)p, n, done_r, deadline);
}

static bool
tls_pending(const struct conn *c)
{
	return SSL_has_pending(c->ssl) == 1;
}

/* Sends close_notify once; waiting for the peer's would only let a
 * stalled peer hold this thread. */
static void
tls_close(struct conn *c)
{
	if (!c->failed) {
		ERR_clear_error();
		(void)SSL_shutdown(c->ssl);
	}
	ERR_clear_error();
	SSL_free(c->ssl);
	c->ssl = NULL;
	c->top = c->tls.below;
}

static const struct conn_layer_ops conn_tls_ops = {
	.name = "tls", .read = tls_read, .write = tls_write,
	.pending = tls_pending, .close = tls_close,
};

/* ---- buffers ---- */

/* Maps both buffers in one piece on first use. */
static bool
conn_buffers(struct conn *c)
{
	void *p;

	if (c->rbuf != NULL)
		return true;
	p = mmap(NULL, CONN_RBUF_SIZE + CONN_WBUF_SIZE, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		c->failed = true;
		return false;
	}
	c->rbuf = p;
	c->wbuf = c->rbuf + CONN_RBUF_SIZE;
	return true;
}

static void
conn_buffers_free(struct conn *c)
{
	if (c->rbuf != NULL)
		munmap(c->rbuf, CONN_RBUF_SIZE + CONN_WBUF_SIZE);
	c->rbuf = c->wbuf = NULL;
	c->rpos = c->rlen = c->rhigh = c->wlen = 0;
}

bool
conn_release_buffers(struct conn *c)
{
	if (c->rpos < c->rlen || c->wlen > 0)
		return c->rbuf == NULL;
	conn_buffers_free(c);
	for (struct conn_layer *l = c->top; l != NULL; l = l->below)
		if (l->ops->idle != NULL)
			l->ops->idle(c);
	return true;
}

bool
conn_input_ready(const struct conn *c)
{
	return c->rpos < c->rlen || c->failed || c->eof || c->timed_out ||
	       c->top->ops->pending(c);
}

const char *
conn_end_reason(const struct conn *c)
{
	/* Only a write that timed out fails the connection as well. */
	if (c->timed_out)
		return c->failed ? "write-timeout" : "timeout";
	return c->eof ? "eof" : "io-error";
}

void
conn_set_timed_out(struct conn *c)
{
	c->timed_out = true;
}

/* ---- transfers ---- */

void
conn_transfer_begin(struct conn *c, long min_rate, long max_ms)
{
	if (c->xfer)
		return;
	c->xfer = true;
	c->xfer_start = conn_now_ms();
	c->xfer_end = max_ms > 0 ? c->xfer_start + max_ms : INT64_MAX;
	c->xfer_bytes = 0;
	c->xfer_rate = min_rate > 0 ? min_rate : 0;
}

void
conn_transfer_end(struct conn *c)
{
	c->xfer = false;
}

/* As Postfix's smtpd_min_data_rate: every byte received buys 1/rate
 * seconds more on top of one idle timeout from the start. */
int64_t
conn_read_deadline(const struct conn *c, int64_t since)
{
	int64_t deadline = since + (c->timeout_ms > 0 ? c->timeout_ms : 0);

	if (!c->xfer)
		return deadline;
	if (c->xfer_rate > 0) {
		int64_t earned = (int64_t)(c->xfer_bytes * 1000 / (uint64_t)c->xfer_rate);
		int64_t rate_deadline = c->xfer_start + c->timeout_ms + earned;

		if (rate_deadline < deadline)
			deadline = rate_deadline;
	}
	return c->xfer_end < deadline ? c->xfer_end : deadline;
}

/* ---- reading and writing ---- */

static int
conn_flush_by(struct conn *c, int64_t deadline)
{
	size_t off = 0;

	while (off < c->wlen && !c->failed) {
		size_t done = 0;
		int ok;

		ok = c->top->ops->write(c, c->wbuf + off, c->wlen - off, &done, deadline);
		if (!ok)
			c->failed = true;
		off += done;
	}
	c->wlen = 0;
	return c->failed ? 0 : 1;
}

int
conn_flush(struct conn *c)
{
	return conn_flush_by(c, conn_write_deadline(c));
}

void
conn_on_slow_peer(struct conn *c, conn_slow_peer_fn *fn, void *arg)
{
	c->slow_peer = fn;
	c->slow_peer_arg = arg;
}

/* Refills the (empty) input buffer with one read, flushing pending
 * output first: the reader is about to block, so the replies queued so
 * far must reach the peer. That is what makes pipelining work. Returns
 * 1, or 0 on EOF, timeout or error. */
static int
conn_fill(struct conn *c, int64_t deadline)
{
	size_t got = 0;
	int ok;

	if (c->failed || c->eof || c->timed_out)
		return 0;
	if (c->wlen > 0 && !conn_flush(c))
		return 0;
	if (!conn_buffers(c))
		return 0;
	c->rpos = c->rlen = 0;
	if (c->xfer) {
		int64_t limit = conn_read_deadline(c, conn_now_ms());

		if (limit < deadline)
			deadline = limit;
	}
	ok = c->top->ops->read(c, c->rbuf, CONN_RBUF_SIZE, &got, deadline);
	if (!ok)
		return 0;
	c->rlen = got;
	if (got > c->rhigh)
		c->rhigh = got;
	c->xfer_bytes += got;
	return 1;
}

void
conn_forget_input(struct conn *c)
{
	if (c->rbuf == NULL)
		return;
	explicit_bzero(c->rbuf, c->rpos);
	if (c->rhigh > c->rlen)
		explicit_bzero(c->rbuf + c->rlen, c->rhigh - c->rlen);
	c->rhigh = c->rlen;
}

int
conn_read_secret_line(struct conn *c, char *buf, size_t size)
{
	size_t len = 0;
	int ret = conn_read_line(c, buf, size, size - 1, &len);

	if (ret > 0) {
		while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
			len--;
		buf[len] = '\0';
		if (memchr(buf, '\0', len) != NULL)
			ret = -1;
	}
	if (ret <= 0)
		explicit_bzero(buf, size);
	conn_forget_input(c);
	return ret;
}

int
conn_read_line(struct conn *c, char *line, size_t linesize, size_t max, size_t *len_r)
{
	int64_t deadline = conn_deadline(c);
	size_t have = 0;
	bool overlong = false;

	*len_r = 0;
	if (linesize == 0) {
		c->failed = true;
		return 0;
	}
	if (max >= linesize)
		max = linesize - 1;
	line[0] = '\0';
	if (c->failed)
		return 0;
	for (;;) {
		const unsigned char *p, *lf;
		size_t avail, room, take;

		if (c->rpos == c->rlen && !conn_fill(c, deadline)) {
			line[0] = '\0';
			return 0;
		}
		p = c->rbuf + c->rpos;
		avail = c->rlen - c->rpos;
		/* An overlong line is skipped up to its LF without storing it. */
		room = overlong || avail < max - have ? avail : max - have;
		lf = memchr(p, '\n', room);
		take = lf != NULL ? (size_t)(lf - p) + 1 : room;
		if (!overlong)
			memcpy(line + have, p, take);
		have += take;
		c->rpos += take;
		if (lf != NULL && overlong) {
			line[0] = '\0';
			return -1;
		}
		if (lf != NULL) {
			line[have] = '\0';
			*len_r = have;
			return 1;
		}
		/* max bytes and still no LF: the line cannot fit. */
		if (!overlong && have == max)
			overlong = true;
	}
}

ssize_t
conn_read(struct conn *c, void *p, size_t n)
{
	size_t take;

	if (n == 0 || c->failed)
		return 0;
	if (c->rpos == c->rlen && !conn_fill(c, conn_deadline(c)))
		return 0;
	take = c->rlen - c->rpos;
	if (take > n)
		take = n;
	memcpy(p, c->rbuf + c->rpos, take);
	c->rpos += take;
	return (ssize_t)take;
}

int
conn_read_full(struct conn *c, void *p, size_t n)
{
	unsigned char *dst = p;

	while (n > 0) {
		ssize_t r = conn_read(c, dst, n);

		if (r <= 0)
			return 0;
		dst += r;
		n -= (size_t)r;
	}
	return 1;
}

size_t
conn_pending(const struct conn *c)
{
	return c->rlen - c->rpos;
}

int
conn_peek(struct conn *c, const unsigned char **data_r, size_t *len_r)
{
	*data_r = NULL;
	*len_r = 0;
	if (c->failed)
		return 0;
	if (c->rpos == c->rlen && !conn_fill(c, conn_deadline(c)))
		return 0;
	*data_r = c->rbuf + c->rpos;
	*len_r = c->rlen - c->rpos;
	return 1;
}

void
conn_consume(struct conn *c, size_t n)
{
	size_t avail = c->rlen - c->rpos;

	c->rpos += n < avail ? n : avail;
}

int
conn_write(struct conn *c, const void *p, size_t n)
{
	const unsigned char *src = p;

	if (n > 0 && !conn_buffers(c))
		return 0;
	while (n > 0 && !c->failed) {
		size_t room = CONN_WBUF_SIZE - c->wlen;
		size_t take = n < room ? n : room;

		if (room == 0) {
			(void)conn_flush(c);
			continue;
		}
		memcpy(c->wbuf + c->wlen, src, take);
		c->wlen += take;
		src += take;
		n -= take;
	}
	return c->failed ? 0 : 1;
}

/* vsnprintf failed (a character the locale cannot encode, a result over
 * INT_MAX): a reply that cannot be sent as meant must not go out cut
 * short or not at all while the session goes on as if it had. */
static int
conn_format_failed(struct conn *c)
{
	log_error("conn: client=%s output cannot be formatted: %s", c->peer_ip, strerror(errno));
	c->failed = true;
	return 0;
}

int
conn_printf(struct conn *c, const char *fmt, ...)
{
	va_list ap;
	size_t room = CONN_WBUF_SIZE - c->wlen;
	char *big;
	int n, ok;

	if (c->failed || !conn_buffers(c))
		return 0;
	va_start(ap, fmt);
	n = vsnprintf((char *)c->wbuf + c->wlen, room, fmt, ap);
	va_end(ap);
	if (n < 0)
		return conn_format_failed(c);
	if ((size_t)n < room) {
		c->wlen += (size_t)n;
		return 1;
	}
	/* Did not fit in what was left of wbuf: format it apart. */
	big = malloc((size_t)n + 1);
	if (big == NULL) {
		c->failed = true;
		return 0;
	}
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	ok = conn_write(c, big, (size_t)n);
	free(big);
	return ok;
}

/* One line about why the TLS handshake failed, for the session's log. */
static int
conn_tls_error(const struct conn *c, const char *what, struct yj_err *err)
{
	unsigned long e = ERR_peek_last_error();
	char reason[256];

	if (c->timed_out)
		return yj_err_set(err, "%s: timed out", what);
	if (c->eof)
		return yj_err_set(err, "%s: connection closed by peer", what);
	if (e != 0) {
		ERR_error_string_n(e, reason, sizeof(reason));
		return yj_err_set(err, "%s: %s", what, reason);
	}
	return yj_err_errno(err, "%s", what);
}

/* SNI carries host names only, never address literals (RFC 6066 3). */
static bool
conn_sni_usable(const char *sni)
{
	unsigned char tmp[sizeof(struct in6_addr)];

	return sni != NULL && sni[0] != '\0' && inet_pton(AF_INET, sni, tmp) != 1 &&
	       inet_pton(AF_INET6, sni, tmp) != 1;
}

/* The name (or address literal) the server's certificate must show,
 * checked with the chain during the handshake; the outcome waits in
 * SSL_get_verify_result() for conn_tls_verified(). No partial wildcards
 * ("w*.example.org"), as RFC 6125 6.4.3 advises. */
static int
conn_tls_expect_name(SSL *ssl, const char *name)
{
	X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);

	if (name == NULL || name[0] == '\0')
		return 1;
	X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (conn_sni_usable(name))
		return SSL_set1_host(ssl, name) == 1 ? 1 : -1;
	return X509_VERIFY_PARAM_set1_ip_asc(vp, name) == 1 ? 1 : -1;
}

static int
conn_tls_start(struct conn *c, SSL_CTX *ctx, const char *sni, bool server,
	       struct yj_err *err)
{
	const char *what = server ? "TLS accept" : "TLS connect";

	if (c->ssl != NULL)
		return yj_err_set(err, "%s: TLS is already active", what);
	if (c->z != NULL)
		return yj_err_set(err, "%s: not under compression", what);
	/* The reply that invited the handshake ("220 Ready to start TLS")
	 * has to reach the peer in the clear first. */
	if (c->failed || c->timed_out || (c->wlen > 0 && !conn_flush(c)))
		return yj_err_set(err, "%s: connection %s before the handshake", what,
				  c->timed_out ? "timed out" : "failed");
	/* Anything received so far came in the clear: reading it later as
	 * if it had come over TLS is the STARTTLS command injection attack
	 * (CVE-2011-0411). The same holds for a server's replies. */
	c->rpos = c->rlen = 0;

	c->ssl = SSL_new(ctx);
	if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
		yj_err_set(err, "%s: cannot set up the TLS session", what);
		goto fail;
	}
	/* Retries after WANT_WRITE resend from wbuf + off, which may move.
	 * Idle sessions keep their SSL object: its buffers must go back
	 * whenever they are empty (the server context sets this too). */
	SSL_set_mode(c->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				     SSL_MODE_RELEASE_BUFFERS);
	c->tls = (struct conn_layer){ .ops = &conn_tls_ops, .below = c->top };
	c->top = &c->tls;
	if (server) {
		SSL_set_accept_state(c->ssl);
	} else {
		SSL_set_connect_state(c->ssl);
		if ((conn_sni_usable(sni) && SSL_set_tlsext_host_name(c->ssl, sni) != 1) ||
		    conn_tls_expect_name(c->ssl, sni) < 0) {
			yj_err_set(err, "%s: bad server name '%s'", what, sni);
			goto fail;
		}
	}
	if (!conn_tls_io(c, TLS_OP_HANDSHAKE, NULL, 0, NULL,
			 conn_now_ms() + (c->tls_timeout_ms > 0 ? c->tls_timeout_ms
								 : c->timeout_ms))) {
		conn_tls_error(c, what, err);
		goto fail;
	}
	return 1;
fail:
	ERR_clear_error();
	SSL_free(c->ssl);
	c->ssl = NULL;
	c->top = &c->sock;
	c->failed = true;
	return -1;
}

int
conn_tls_accept(struct conn *c, SSL_CTX *ctx, struct yj_err *err)
{
	return conn_tls_start(c, ctx, NULL, true, err);
}

int
conn_tls_connect(struct conn *c, SSL_CTX *ctx, const char *sni, struct yj_err *err)
{
	return conn_tls_start(c, ctx, sni, false, err);
}

int
conn_tls_verified(const struct conn *c, char *why, size_t whylen)
{
	X509 *peer;
	long result;

	if (c->ssl == NULL) {
		snprintf(why, whylen, "no TLS");
		return 0;
	}
	peer = SSL_get1_peer_certificate(c->ssl);
	if (peer == NULL) {
		snprintf(why, whylen, "no certificate");
		return 0;
	}
	X509_free(peer);
	result = SSL_get_verify_result(c->ssl);
	if (result != X509_V_OK) {
		snprintf(why, whylen, "%s", X509_verify_cert_error_string(result));
		return 0;
	}
	return 1;
}

bool
conn_is_tls(const struct conn *c)
{
	return c->ssl != NULL;
}

void
conn_tls_describe(const struct conn *c, char *out, size_t outlen)
{
	if (outlen == 0)
		return;
	if (c->ssl == NULL) {
		out[0] = '\0';
		return;
	}
	snprintf(out, outlen, "%s %s", SSL_get_version(c->ssl), SSL_get_cipher_name(c->ssl));
}

void
conn_close(struct conn *c)
{
	if (c->fd < 0 && c->ssl == NULL)
		return;
	if (c->wlen > 0) {
		int64_t by = conn_write_deadline(c), last = conn_now_ms() + CONN_CLOSE_FLUSH_MS;

		(void)conn_flush_by(c, by < last ? by : last);
	}
	while (c->top != NULL) {
		struct conn_layer *l = c->top;

		l->ops->close(c);
		c->top = l->below;
	}
	c->top = &c->sock;
	conn_buffers_free(c);
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->failed = true;
}

size_t
conn_vwrite_line(struct conn *c, char *line, size_t linesize, const char *fmt, va_list ap)
{
	int n;

	if (linesize < 3) {
		c->failed = true;
		return 0;
	}
	n = vsnprintf(line, linesize - 2, fmt, ap);
	if (n < 0) {
		line[0] = '\0';
		return (size_t)conn_format_failed(c);
	}
	if ((size_t)n > linesize - 3)
		n = (int)(linesize - 3);
	memcpy(line + n, "\r\n", 2);
	(void)conn_write(c, line, (size_t)n + 2);
	line[n] = '\0';
	return (size_t)n;
}
