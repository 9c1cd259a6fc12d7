/* test-conn.c - struct conn over socketpairs and loopback TCP: lines,
 * limits, timeouts, EOF, pipelining, peek/consume, and TLS (handshake,
 * exchange, STARTTLS input discard) with a self-signed certificate. */
#include "test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "net/conn.h"
#include "net/listen.h"
#include "net/tls.h"

#define LINE_MAX_TEST 1000

/* ---- helpers ---- */

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static struct conn *
conn_new(int fd, int timeout_ms)
{
	struct conn *c = malloc(sizeof(*c));

	if (c == NULL)
		abort();
	conn_init(c, fd, timeout_ms);
	return c;
}

static void
conn_free(struct conn *c)
{
	conn_close(c);
	free(c);
}

static void
pair(int fds[2])
{
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0)
		abort();
}

static void
send_str(int fd, const char *s)
{
	if (send(fd, s, strlen(s), MSG_NOSIGNAL) != (ssize_t)strlen(s))
		abort();
}

/* Reads from a raw socket until want bytes or timeout; NUL-terminates. */
static size_t
recv_some(int fd, char *buf, size_t want, int timeout_ms)
{
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
	size_t got = 0;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (got < want) {
		ssize_t n = recv(fd, buf + got, want - got, 0);

		if (n <= 0)
			break;
		got += (size_t)n;
	}
	buf[got] = '\0';
	return got;
}

/* A connected loopback TCP pair from a listener made by listen_bind(). */
static bool
tcp_pair(const char *spec, int family, const char *connect_ip, int *server_r, int *client_r)
{
	struct yj_err err;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int lfd = listen_bind(spec, &err), cfd, port;

	if (lfd < 0 || getsockname(lfd, (struct sockaddr *)&ss, &len) < 0)
		return false;
	port = ss.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
				       : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		inet_pton(AF_INET, connect_ip, &sin->sin_addr);
		len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		inet_pton(AF_INET6, connect_ip, &sin6->sin6_addr);
		len = sizeof(*sin6);
	}
	cfd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (cfd < 0 || connect(cfd, (struct sockaddr *)&ss, len) < 0) {
		close(lfd);
		return false;
	}
	*server_r = accept(lfd, NULL, NULL);
	*client_r = cfd;
	close(lfd);
	return *server_r >= 0;
}

/* ---- addresses ---- */

static void
test_addresses_v4(void)
{
	int s, cl;
	struct conn *c, *peer;

	test_begin("conn addresses over IPv4 loopback");
	test_assert(tcp_pair("127.0.0.1:0", AF_INET, "127.0.0.1", &s, &cl));
	c = conn_new(s, 1000);
	peer = conn_new(cl, 1000);
	test_assert_strcmp(c->peer_ip, "127.0.0.1");
	test_assert_strcmp(c->local_ip, "127.0.0.1");
	test_assert(c->peer_loopback);
	test_assert(c->peer_port == peer->local_port && c->peer_port > 0);
	test_assert(c->local_port == peer->peer_port && c->local_port > 0);
	test_assert(!conn_is_tls(c));
	conn_free(c);
	conn_free(peer);
	test_end();
}

static void
test_addresses_v6(void)
{
	int s, cl;
	struct conn *c;

	test_begin("conn addresses: ::1 and IPv4-mapped");
	/* An all-addresses listener is dual-stack where IPv6 exists: an IPv4
	 * client shows up as ::ffff:127.0.0.1 and must read as 127.0.0.1. */
	test_assert(tcp_pair("*:0", AF_INET, "127.0.0.1", &s, &cl));
	c = conn_new(s, 1000);
	test_assert_strcmp(c->peer_ip, "127.0.0.1");
	test_assert(c->peer_loopback);
	conn_free(c);
	close(cl);
	if (tcp_pair("[::1]:0", AF_INET6, "::1", &s, &cl)) {
		c = conn_new(s, 1000);
		test_assert_strcmp(c->peer_ip, "::1");
		test_assert_strcmp(c->local_ip, "::1");
		test_assert(c->peer_loopback);
		conn_free(c);
		close(cl);
	} else {
		printf("  (no IPv6 loopback here: ::1 part skipped)\n");
	}
	test_end();
}

/* ---- reading lines ---- */

static void
test_read_lines(void)
{
	int fds[2];
	struct conn *c;
	char line[LINE_MAX_TEST + 1];
	size_t len;

	test_begin("conn_read_line CRLF, LF, pipelined, EOF");
	pair(fds);
	c = conn_new(fds[0], 1000);
	send_str(fds[1], "HELO a\r\nMAIL FROM:<x@y>\n\r\n\nlast");
	close(fds[1]);
	test_assert(conn_read_line(c, line, sizeof(line), LINE_MAX_TEST, &len) == 1);
	test_assert_strcmp(line, "HELO a\r\n");
	test_assert(len == 8);
	test_assert(conn_read_line(c, line, sizeof(line), LINE_MAX_TEST, &len) == 1);
	test_assert_strcmp(line, "MAIL FROM:<x@y>\n");
	test_assert(len == 16);
	test_assert(conn_read_line(c, line, sizeof(line), LINE_MAX_TEST, &len) == 1);
	test_assert(len == 2 && strcmp(line, "\r\n") == 0);
	test_assert(conn_read_line(c, line, sizeof(line), LINE_MAX_TEST, &len) == 1);
	test_assert(len == 1 && strcmp(line, "\n") == 0);
	/* a last line without LF is not a line */
	test_assert(conn_read_line(c, line, sizeof(line), LINE_MAX_TEST, &len) == 0);
	test_assert(c->eof && !c->failed && !c->timed_out);
	test_assert(len == 0);
	test_assert(conn_read_line(c, line, sizeof(line), LINE_MAX_TEST, &len) == 0);
	conn_free(c);
	test_end();
}

/* Does the input buffer hold needle anywhere, read or not? */
static bool
rbuf_holds(const struct conn *c, const char *needle)
{
	return c->rbuf != NULL && memmem(c->rbuf, CONN_RBUF_SIZE, needle, strlen(needle)) != NULL;
}

static void
test_forget_input(void)
{
	int fds[2];
	struct conn *c;
	char line[LINE_MAX_TEST + 1];
	size_t len;

	test_begin("conn_forget_input wipes what was read, keeps what was not");
	pair(fds);
	c = conn_new(fds[0], 1000);
	send_str(fds[1], "PASS hunter2-long-enough-to-stay-behind\r\nNOOP\r\n");
	test_assert(conn_read_line(c, line, sizeof(line), LINE_MAX_TEST, &len) == 1);
	test_assert(rbuf_holds(c, "hunter2"));
	conn_forget_input(c);
	test_assert(!rbuf_holds(c, "hunter2") && rbuf_holds(c, "NOOP"));
	test_assert(conn_read_line(c, line, sizeof(line), LINE_MAX_TEST, &len) == 1);
	test_assert_strcmp(line, "NOOP\r\n");
	/* a shorter read later leaves the end of the longer one behind */
	send_str(fds[1], "PASS hunter2-long-enough-to-stay-behind\r\n");
	test_assert(conn_read_line(c, line, sizeof(line), LINE_MAX_TEST, &len) == 1);
	send_str(fds[1], "QUIT\r\n");
	test_assert(conn_read_line(c, line, sizeof(line), LINE_MAX_TEST, &len) == 1);
	test_assert(rbuf_holds(c, "stay-behind"));
	conn_forget_input(c);
	test_assert(!rbuf_holds(c, "hunter2") && !rbuf_holds(c, "stay-behind"));
	test_assert(!rbuf_holds(c, "QUIT"));
	close(fds[1]);
	conn_free(c);
	test_end();
}

/* A secret line: its end cut off, a NUL or an overlong line refused
 * with buf wiped, and no copy left in the input buffer either way. */
static void
test_secret_line(void)
{
	int fds[2];
	struct conn *c;
	char buf[16];

	test_begin("conn_read_secret_line: line end cut, NUL and overlong refused, input wiped");
	pair(fds);
	c = conn_new(fds[0], 1000);
	send_str(fds[1], "aHVudGVyMg==\r\n");
	test_assert(conn_read_secret_line(c, buf, sizeof(buf)) == 1);
	test_assert_strcmp(buf, "aHVudGVyMg==");
	test_assert(!rbuf_holds(c, "aHVudGVyMg"));
	test_assert(write(fds[1], "ab\0cd\r\n", 7) == 7);
	test_assert(conn_read_secret_line(c, buf, sizeof(buf)) == -1);
	test_assert(buf[0] == '\0');
	send_str(fds[1], "0123456789abcdefSECRET\r\nNEXT\r\n");
	test_assert(conn_read_secret_line(c, buf, sizeof(buf)) == -1);
	test_assert(!rbuf_holds(c, "SECRET") && rbuf_holds(c, "NEXT"));
	test_assert(conn_read_secret_line(c, buf, sizeof(buf)) == 1);
	test_assert_strcmp(buf, "NEXT");
	close(fds[1]);
	test_assert(conn_read_secret_line(c, buf, sizeof(buf)) == 0);
	conn_free(c);
	test_end();
}

static size_t YJ_PRINTF(4, 5)
write_line(struct conn *c, char *line, size_t linesize, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	n = conn_vwrite_line(c, line, linesize, fmt, ap);
	va_end(ap);
	return n;
}

/* A reply that cannot be formatted fails the connection instead of
 * going out cut short, or not at all, as if it had been sent. */
static void
test_printf_fails(void)
{
	static const wchar_t euro[] = { 0x20ac, 0 };	/* not in the C locale */
	int fds[2];
	struct conn *c;
	char line[16];

	test_begin("conn_printf and conn_vwrite_line: a format error fails the conn");
	pair(fds);
	c = conn_new(fds[0], 1000);
	test_assert(conn_printf(c, "+OK %ls\r\n", euro) == 0);
	test_assert(c->failed && c->wlen == 0);
	conn_free(c);
	close(fds[1]);
	pair(fds);
	c = conn_new(fds[0], 1000);
	test_assert(write_line(c, line, sizeof(line), "250 %ls", euro) == 0);
	test_assert(c->failed && line[0] == '\0');
	conn_free(c);
	close(fds[1]);
	test_end();
}

/* conn_close sends what is queued, but a peer that reads nothing holds it
 * for CONN_CLOSE_FLUSH_MS, not the connection's whole timeout. */
static void
test_close_bounded(void)
{
	static char fill[65536];
	int fds[2], small = 4096;
	struct conn *c;
	int64_t t0, ms;

	test_begin("conn_close waits at most CONN_CLOSE_FLUSH_MS for a stuck peer");
	pair(fds);
	(void)setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	(void)setsockopt(fds[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	c = conn_new(fds[0], 60000);
	/* The kernel's buffers full (the socket is non-blocking now) ... */
	while (send(fds[0], fill, sizeof(fill), MSG_NOSIGNAL | MSG_DONTWAIT) > 0)
		;
	/* ... and a last reply queued behind them. */
	test_assert(conn_printf(c, "421 bye\r\n") == 1);
	t0 = now_ms();
	conn_free(c);
	ms = now_ms() - t0;
	test_assert(ms >= CONN_CLOSE_FLUSH_MS - 100 && ms < CONN_CLOSE_FLUSH_MS + 1000);
	close(fds[1]);
	test_end();
}

static void
test_overlong(void)
{
	int fds[2];
	struct conn *c;
	char line[11], big[40001];
	size_t len;

	test_begin("conn_read_line overlong lines");
	pair(fds);
	c = conn_new(fds[0], 1000);
	/* max 10: exactly 10 fits, 11 does not */
	send_str(fds[1], "12345678\r\n123456789\r\nshort\n");
	test_assert(conn_read_line(c, line, sizeof(line), 10, &len) == 1);
	test_assert(len == 10 && strcmp(line, "12345678\r\n") == 0);
	test_assert(conn_read_line(c, line, sizeof(line), 10, &len) == -1);
	test_assert(len == 0 && line[0] == '\0');
	test_assert(conn_read_line(c, line, sizeof(line), 10, &len) == 1);
	test_assert_strcmp(line, "short\n");
	/* longer than the input buffer, then a good line */
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 3] = '\r';
	big[sizeof(big) - 2] = '\n';
	big[sizeof(big) - 1] = '\0';
	send_str(fds[1], big);
	send_str(fds[1], "next\r\n");
	test_assert(conn_read_line(c, line, sizeof(line), 10, &len) == -1);
	test_assert(conn_read_line(c, line, sizeof(line), 10, &len) == 1);
	test_assert_strcmp(line, "next\r\n");
	/* linesize bounds max: a larger max is clamped, not overflowed */
	send_str(fds[1], "0123456789abc\n");
	test_assert(conn_read_line(c, line, sizeof(line), 1000, &len) == -1);
	test_assert(!c->failed);
	conn_free(c);
	close(fds[1]);
	test_end();
}

static void
test_long_line_ok(void)
{
	int fds[2];
	struct conn *c;
	static char big[30001], line[40001];
	size_t len;

	test_begin("conn_read_line line longer than the buffer");
	pair(fds);
	c = conn_new(fds[0], 1000);
	memset(big, 'y', sizeof(big) - 1);
	big[sizeof(big) - 2] = '\n';
	send_str(fds[1], big);
	test_assert(conn_read_line(c, line, sizeof(line), 40000, &len) == 1);
	test_assert(len == 30000 && line[29999] == '\n' && line[30000] == '\0');
	conn_free(c);
	close(fds[1]);
	test_end();
}

/* A peer that takes none of our output: the flush gives up after
 * write_timeout_ms, not the much longer idle timeout, and the conn fails
 * (nothing more can be said to such a peer). */
static void
test_write_timeout(void)
{
	static char fill[65536];
	int fds[2], small = 4096;
	struct conn *c;
	int64_t t0, ms;

	test_begin("a flush to a peer that does not read ends after write_timeout_ms");
	pair(fds);
	(void)setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	(void)setsockopt(fds[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	c = conn_new(fds[0], 60000);
	c->write_timeout_ms = 300;
	t0 = now_ms();
	for (int i = 0; i < 100 && !c->failed; i++)
		(void)conn_write(c, fill, sizeof(fill));
	ms = now_ms() - t0;
	test_assert(c->failed && c->timed_out);
	test_assert(ms >= 250 && ms < 2000);
	test_assert(conn_flush(c) == 0);
	conn_free(c);
	close(fds[1]);
	test_end();
}

/* A peer that reads slowly but steadily, 16 KiB every 50 ms. */
static void *
slow_reader(void *arg)
{
	int fd = *(int *)arg;
	char sink[16384];
	ssize_t n;

	do {
		struct timespec pause = { 0, 50 * 1000000 };

		nanosleep(&pause, NULL);
		n = recv(fd, sink, sizeof(sink), 0);
	} while (n > 0);
	return NULL;
}

/* A peer that keeps reading gets each 64 KiB well within the limit. */
static void
test_write_timeout_reader(void)
{
	static char fill[4 * CONN_WBUF_SIZE];
	int fds[2], small = 4096;
	struct conn *c;
	pthread_t tid;

	test_begin("write_timeout_ms does not end a peer that keeps reading");
	pair(fds);
	(void)setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	(void)setsockopt(fds[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	c = conn_new(fds[0], 60000);
	c->write_timeout_ms = 1500;
	if (pthread_create(&tid, NULL, slow_reader, &fds[1]) != 0)
		abort();
	test_assert(conn_write(c, fill, sizeof(fill)) == 1 && conn_flush(c) == 1);
	test_assert(!c->failed && !c->timed_out);
	conn_free(c);
	pthread_join(tid, NULL);
	close(fds[1]);
	test_end();
}

/* The slow-peer hook: how often it was called, and when first. */
struct slow_peer_count {
	int calls;
	int64_t first;
};

static void
slow_peer_seen(void *arg)
{
	struct slow_peer_count *n = arg;

	if (n->calls++ == 0)
		n->first = now_ms();
}

/* conn_on_slow_peer: not called for output the peer takes at once;
 * called once per wait that lasts CONN_SLOW_PEER_MS, after which the
 * wait goes on to its usual end (the peer's reading, or the write
 * timeout); not called once unset. */
static void
test_slow_peer_hook(void)
{
	static char fill[4 * CONN_WBUF_SIZE];
	struct slow_peer_count n = { 0 };
	int fds[2], small = 4096;
	struct conn *c;
	pthread_t tid;
	int64_t t0;

	test_begin("conn_on_slow_peer is called for a wait on the peer that lasts");
	pair(fds);
	c = conn_new(fds[0], 60000);
	conn_on_slow_peer(c, slow_peer_seen, &n);
	test_assert(conn_write(c, fill, 8192) == 1 && conn_flush(c) == 1);
	test_assert(n.calls == 0);	/* the socket took it at once */
	conn_free(c);
	close(fds[1]);

	pair(fds);
	(void)setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	(void)setsockopt(fds[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	c = conn_new(fds[0], 60000);
	c->write_timeout_ms = 300;
	conn_on_slow_peer(c, slow_peer_seen, &n);
	t0 = now_ms();
	for (int i = 0; i < 100 && !c->failed; i++)
		(void)conn_write(c, fill, CONN_WBUF_SIZE);
	test_assert(c->failed && c->timed_out);
	test_assert(n.calls == 1);	/* one wait, which then timed out */
	test_assert(n.first - t0 >= CONN_SLOW_PEER_MS && now_ms() - t0 >= 250);
	conn_free(c);
	close(fds[1]);

	n.calls = 0;
	pair(fds);
	(void)setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	(void)setsockopt(fds[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	c = conn_new(fds[0], 60000);
	c->write_timeout_ms = 5000;
	conn_on_slow_peer(c, slow_peer_seen, &n);
	if (pthread_create(&tid, NULL, slow_reader, &fds[1]) != 0)
		abort();
	test_assert(conn_write(c, fill, sizeof(fill)) == 1 && conn_flush(c) == 1);
	test_assert(!c->failed && n.calls >= 1);	/* a reader 50 ms late */
	n.calls = 0;
	conn_on_slow_peer(c, NULL, NULL);
	test_assert(conn_write(c, fill, sizeof(fill)) == 1 && conn_flush(c) == 1);
	test_assert(!c->failed && n.calls == 0);
	conn_free(c);
	pthread_join(tid, NULL);
	close(fds[1]);
	test_end();
}

static void
test_timeout(void)
{
	int fds[2];
	struct conn *c;
	char line[100];
	size_t len;
	int64_t t0, ms;

	test_begin("conn_read_line times out on a silent peer");
	pair(fds);
	c = conn_new(fds[0], 200);
	t0 = now_ms();
	test_assert(conn_read_line(c, line, sizeof(line), 99, &len) == 0);
	ms = now_ms() - t0;
	test_assert(c->timed_out && !c->failed && !c->eof);
	test_assert(ms >= 150 && ms < 2000);
	/* after a read timeout no input is read any more, at once ... */
	send_str(fds[1], "late\r\n");
	t0 = now_ms();
	test_assert(conn_read_line(c, line, sizeof(line), 99, &len) == 0);
	test_assert(now_ms() - t0 < 100);
	/* ... but the session can still say why it closes */
	test_assert(conn_write(c, "421 timeout\r\n", 13) == 1 && conn_flush(c) == 1);
	test_assert(recv(fds[1], line, sizeof(line), 0) == 13);
	conn_free(c);
	close(fds[1]);
	test_end();
}

struct dripper {
	int fd;
	atomic_bool stop;
};

static void *
drip(void *arg)
{
	struct dripper *d = arg;

	for (int i = 0; i < 100 && !d->stop; i++) {
		if (send(d->fd, "z", 1, MSG_NOSIGNAL) != 1)
			break;
		sleep_ms(30);
	}
	return NULL;
}

static void
test_slow_drip(void)
{
	int fds[2];
	struct conn *c;
	struct dripper d;
	pthread_t t;
	char line[1000];
	size_t len;
	int64_t t0, ms;

	test_begin("conn_read_line: a dripping peer cannot hold a line open");
	pair(fds);
	c = conn_new(fds[0], 300);
	d.fd = fds[1];
	d.stop = false;
	pthread_create(&t, NULL, drip, &d);
	t0 = now_ms();
	test_assert(conn_read_line(c, line, sizeof(line), 999, &len) == 0);
	ms = now_ms() - t0;
	test_assert(c->timed_out);
	test_assert(ms >= 250 && ms < 1500);
	d.stop = true;
	pthread_join(t, NULL);
	conn_free(c);
	close(fds[1]);
	test_end();
}

/* ---- pipelining and output ---- */

static void
test_pipelining(void)
{
	int fds[2];
	struct conn *c;
	char line[100], buf[256];
	size_t len;

	test_begin("replies to pipelined commands go out in one batch");
	pair(fds);
	c = conn_new(fds[0], 1000);
	send_str(fds[1], "A\r\nB\r\n");
	test_assert(conn_read_line(c, line, sizeof(line), 99, &len) == 1);
	test_assert(conn_printf(c, "reply %c\r\n", line[0]) == 1);
	/* B is buffered: reading it must not flush */
	test_assert(conn_read_line(c, line, sizeof(line), 99, &len) == 1);
	test_assert(recv(fds[1], buf, sizeof(buf), MSG_DONTWAIT) == -1 && errno == EAGAIN);
	test_assert(conn_printf(c, "reply %c\r\n", line[0]) == 1);
	/* the buffer is empty now: the next read flushes before it waits */
	send_str(fds[1], "C\r\n");
	test_assert(conn_read_line(c, line, sizeof(line), 99, &len) == 1);
	test_assert_strcmp(line, "C\r\n");
	test_assert(recv_some(fds[1], buf, 18, 1000) == 18);
	test_assert_strcmp(buf, "reply A\r\nreply B\r\n");
	/* an explicit flush */
	test_assert(conn_write(c, "bye\r\n", 5) == 1);
	test_assert(conn_flush(c) == 1);
	test_assert(recv_some(fds[1], buf, 5, 1000) == 5);
	conn_free(c);
	close(fds[1]);
	test_end();
}

struct sink {
	int fd;
	size_t got;
	unsigned long sum;
};

static void *
sink_run(void *arg)
{
	struct sink *s = arg;
	unsigned char buf[4096];
	ssize_t n;

	while ((n = recv(s->fd, buf, sizeof(buf), 0)) > 0) {
		for (ssize_t i = 0; i < n; i++)
			s->sum += buf[i];
		s->got += (size_t)n;
	}
	return NULL;
}

static void
test_big_output(void)
{
	int fds[2];
	struct conn *c;
	struct sink s = { 0 };
	pthread_t t;
	static char big[100000];
	unsigned long want = 0;

	test_begin("conn_write and conn_printf larger than the buffer");
	pair(fds);
	c = conn_new(fds[0], 2000);
	s.fd = fds[1];
	pthread_create(&t, NULL, sink_run, &s);
	for (size_t i = 0; i < sizeof(big) - 1; i++) {
		big[i] = (char)('a' + i % 26);
		want += (unsigned char)big[i];
	}
	test_assert(conn_write(c, big, sizeof(big) - 1) == 1);
	test_assert(conn_printf(c, "%s", big) == 1);
	test_assert(conn_printf(c, "%d\r\n", 42) == 1);
	want = want * 2 + '4' + '2' + '\r' + '\n';
	conn_free(c);		/* flushes */
	pthread_join(t, NULL);
	test_assert(s.got == 2 * (sizeof(big) - 1) + 4);
	test_assert(s.sum == want);
	close(fds[1]);
	test_end();
}

static void
test_peek_consume(void)
{
	int fds[2];
	struct conn *c;
	const unsigned char *data;
	size_t len;
	char buf[32];

	test_begin("conn_peek, conn_consume, conn_read, conn_read_full");
	pair(fds);
	c = conn_new(fds[0], 500);
	send_str(fds[1], "hello world");
	test_assert(conn_pending(c) == 0);
	test_assert(conn_peek(c, &data, &len) == 1);
	test_assert(len == 11 && memcmp(data, "hello world", 11) == 0);
	conn_consume(c, 6);
	test_assert(conn_pending(c) == 5);
	test_assert(conn_peek(c, &data, &len) == 1);
	test_assert(len == 5 && memcmp(data, "world", 5) == 0);
	test_assert(conn_read(c, buf, 3) == 3 && memcmp(buf, "wor", 3) == 0);
	send_str(fds[1], "+more");
	test_assert(conn_read_full(c, buf, 7) == 1 && memcmp(buf, "ld+more", 7) == 0);
	conn_consume(c, 100);		/* more than pending: harmless */
	test_assert(conn_pending(c) == 0);
	/* read_full across several writes, then EOF in the middle */
	send_str(fds[1], "abc");
	close(fds[1]);
	test_assert(conn_read_full(c, buf, 5) == 0);
	test_assert(c->eof);
	test_assert(conn_peek(c, &data, &len) == 0 && len == 0);
	test_assert(conn_read(c, buf, 1) == 0);
	conn_free(c);
	test_end();
}

/* Runs before SIGPIPE is ignored: writing to a closed peer must not kill
 * the process. */
static void
test_no_sigpipe(void)
{
	int fds[2];
	struct conn *c;

	test_begin("writing to a vanished peer fails without SIGPIPE");
	pair(fds);
	c = conn_new(fds[0], 500);
	close(fds[1]);
	test_assert(conn_printf(c, "250 ok\r\n") == 1);
	test_assert(conn_flush(c) == 0);
	test_assert(c->failed && !c->timed_out);
	test_assert(conn_printf(c, "more\r\n") == 0);
	conn_free(c);
	test_end();
}

/* ---- TLS ---- */

static char tls_dir[64], cert_file[128], key_file[128];
static SSL_CTX *server_ctx, *client_ctx;

static void
test_tls_setup(void)
{
	struct yj_err err = { "" };
	char other_key[160], other_cert[160];
	struct stat st;
	FILE *f;
	X509 *x = NULL;
	SSL_CTX *bad;

	test_begin("tls_make_self_signed and contexts");
	snprintf(tls_dir, sizeof(tls_dir), "/tmp/youju-test-tls-XXXXXX");
	test_assert(mkdtemp(tls_dir) != NULL);
	snprintf(cert_file, sizeof(cert_file), "%s/cert.pem", tls_dir);
	snprintf(key_file, sizeof(key_file), "%s/key.pem", tls_dir);
	test_assert(tls_make_self_signed("mx.example.test", cert_file, key_file, &err) == 1);
	test_assert(stat(key_file, &st) == 0 && (st.st_mode & 0777) == 0600);
	f = fopen(cert_file, "r");
	if (f != NULL) {
		x = PEM_read_X509(f, NULL, NULL, NULL);
		fclose(f);
	}
	test_assert(x != NULL);
	if (x != NULL) {
		test_assert(X509_check_host(x, "mx.example.test", 0, 0, NULL) == 1);
		test_assert(X509_check_host(x, "other.example.test", 0, 0, NULL) != 1);
		test_assert(X509_get_signature_nid(x) == NID_ecdsa_with_SHA256);
		/* about ten years */
		int days = 0, secs = 0;
		test_assert(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(x),
					   X509_get0_notAfter(x)) == 1);
		test_assert(days >= 3650 && days <= 3654);
		X509_free(x);
	}
	server_ctx = tls_server_ctx_new(cert_file, key_file, &err);
	test_assert(server_ctx != NULL);
	client_ctx = tls_client_ctx_new(NULL, &err);
	test_assert(client_ctx != NULL);

	/* a key that does not belong to the certificate */
	snprintf(other_cert, sizeof(other_cert), "%s/other-cert.pem", tls_dir);
	snprintf(other_key, sizeof(other_key), "%s/other-key.pem", tls_dir);
	test_assert(tls_make_self_signed("other.test", other_cert, other_key, &err) == 1);
	bad = tls_server_ctx_new(cert_file, other_key, &err);
	test_assert(bad == NULL);
	test_assert(strstr(err.msg, "does not match") != NULL);
	bad = tls_server_ctx_new("/nonexistent/cert.pem", key_file, &err);
	test_assert(bad == NULL && strstr(err.msg, "/nonexistent/cert.pem") != NULL);
	test_assert(tls_make_self_signed("bad name,DNS:evil", other_cert, other_key, &err) == -1);
	test_assert(tls_make_self_signed("", other_cert, other_key, &err) == -1);
	test_end();
}

/* The server side of the TLS tests, in its own thread. */
struct tls_server {
	int fd;
	int timeout_ms;
	bool starttls;		/* read one plaintext line, answer, then TLS */
	int accept_ret;
	char first[128];	/* first line read over TLS */
	char describe[128];
	bool saw_eof;
	size_t big_got;
};

static void *
tls_server_run(void *arg)
{
	struct tls_server *s = arg;
	struct conn *c = conn_new(s->fd, s->timeout_ms);
	struct yj_err err;
	char line[70000];
	size_t len;
	int r;

	if (s->starttls) {
		if (conn_read_line(c, line, sizeof(line), 1000, &len) != 1)
			goto out;
		conn_printf(c, "220 go ahead\r\n");
	}
	s->accept_ret = conn_tls_accept(c, server_ctx, &err);
	if (s->accept_ret != 1)
		goto out;
	conn_tls_describe(c, s->describe, sizeof(s->describe));
	if (conn_read_line(c, line, sizeof(line), 1000, &len) != 1)
		goto out;
	snprintf(s->first, sizeof(s->first), "%.100s", line);
	conn_printf(c, "250 got %zu\r\n", len);
	/* then echo lines back until EOF */
	while ((r = conn_read_line(c, line, sizeof(line), sizeof(line) - 1, &len)) == 1) {
		s->big_got += len;
		conn_write(c, line, len);
	}
	s->saw_eof = r == 0 && c->eof;
out:
	conn_free(c);
	return NULL;
}

static void
test_tls_exchange(void)
{
	int fds[2];
	struct tls_server s = { .timeout_ms = 2000 };
	struct conn *c;
	struct yj_err err = { "" };
	pthread_t t;
	char line[70000], desc[128];
	static char big[65000];
	size_t len;

	test_begin("TLS handshake and line exchange");
	pair(fds);
	s.fd = fds[0];
	pthread_create(&t, NULL, tls_server_run, &s);
	c = conn_new(fds[1], 2000);
	test_assert(conn_tls_connect(c, client_ctx, "mx.example.test", &err) == 1);
	test_assert(conn_is_tls(c));
	conn_tls_describe(c, desc, sizeof(desc));
	test_assert(strncmp(desc, "TLSv1.", 6) == 0);
	test_assert(conn_printf(c, "EHLO client\r\n") == 1);
	test_assert(conn_read_line(c, line, sizeof(line), 1000, &len) == 1);
	test_assert_strcmp(line, "250 got 13\r\n");
	/* a big line each way: partial TLS writes and several records */
	memset(big, 'q', sizeof(big) - 1);
	big[sizeof(big) - 2] = '\n';
	test_assert(conn_write(c, big, sizeof(big) - 1) == 1);
	test_assert(conn_read_line(c, line, sizeof(line), sizeof(line) - 1, &len) == 1);
	test_assert(len == sizeof(big) - 1);
	conn_free(c);
	pthread_join(t, NULL);
	test_assert(s.accept_ret == 1);
	test_assert_strcmp(s.first, "EHLO client\r\n");
	test_assert(strncmp(s.describe, "TLSv1.", 6) == 0);
	test_assert(s.big_got == sizeof(big) - 1);
	test_assert(s.saw_eof);
	test_end();
}

static void
test_starttls_discard(void)
{
	int fds[2];
	struct tls_server s = { .timeout_ms = 2000, .starttls = true };
	struct conn *c;
	struct yj_err err = { "" };
	pthread_t t;
	char line[200];
	size_t len;

	test_begin("STARTTLS: input sent before the handshake is dropped");
	pair(fds);
	s.fd = fds[0];
	/* The command and an injected one arrive together, in the clear. */
	send_str(fds[1], "STARTTLS\r\nRSET INJECTED\r\n");
	pthread_create(&t, NULL, tls_server_run, &s);
	c = conn_new(fds[1], 2000);
	test_assert(conn_read_line(c, line, sizeof(line), 199, &len) == 1);
	test_assert_strcmp(line, "220 go ahead\r\n");
	test_assert(conn_tls_connect(c, client_ctx, "mx.example.test", &err) == 1);
	test_assert(conn_printf(c, "EHLO after\r\n") == 1);
	test_assert(conn_read_line(c, line, sizeof(line), 199, &len) == 1);
	conn_free(c);
	pthread_join(t, NULL);
	test_assert(s.accept_ret == 1);
	test_assert_strcmp(s.first, "EHLO after\r\n");
	test_end();
}

static void
test_tls_handshake_timeout(void)
{
	int fds[2];
	struct conn *c;
	struct yj_err err = { "" };
	int64_t t0, ms;

	test_begin("TLS handshake with a silent peer times out");
	pair(fds);
	c = conn_new(fds[0], 200);
	t0 = now_ms();
	test_assert(conn_tls_accept(c, server_ctx, &err) == -1);
	ms = now_ms() - t0;
	test_assert(c->timed_out && c->failed && !conn_is_tls(c));
	test_assert(strstr(err.msg, "timed out") != NULL);
	test_assert(ms >= 150 && ms < 2000);
	conn_free(c);
	close(fds[1]);
	test_end();
}

static void
test_tls_garbage(void)
{
	int fds[2];
	struct conn *c;
	struct yj_err err = { "" };

	test_begin("TLS handshake with a plaintext peer fails cleanly");
	pair(fds);
	c = conn_new(fds[0], 1000);
	send_str(fds[1], "EHLO i am not tls, sorry about that\r\n");
	test_assert(conn_tls_accept(c, server_ctx, &err) == -1);
	test_assert(c->failed && !c->timed_out && !conn_is_tls(c));
	test_assert(err.msg[0] != '\0');
	conn_free(c);
	/* and a peer that hangs up during the handshake */
	pair(fds);
	c = conn_new(fds[0], 1000);
	close(fds[1]);
	test_assert(conn_tls_accept(c, server_ctx, &err) == -1);
	test_assert(strstr(err.msg, "closed") != NULL);
	conn_free(c);
	test_end();
}

static void
test_tls_teardown(void)
{
	char cmd[128];

	SSL_CTX_free(server_ctx);
	SSL_CTX_free(client_ctx);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tls_dir);
	if (tls_dir[0] != '\0' && system(cmd) != 0)
		printf("could not remove %s\n", tls_dir);
}

/* OpenSSL writes with write(2); a program using TLS conns ignores
 * SIGPIPE, as youjud does. Plain conns were tested before this. */
static void
ignore_sigpipe(void)
{
	signal(SIGPIPE, SIG_IGN);
}

int
main(void)
{
	static void (*const tests[])(void) = {
		test_no_sigpipe,
		test_addresses_v4, test_addresses_v6,
		test_read_lines, test_forget_input, test_secret_line, test_printf_fails, test_close_bounded,
		test_overlong, test_long_line_ok,
		test_timeout, test_write_timeout, test_write_timeout_reader, test_slow_peer_hook,
		test_slow_drip,
		test_pipelining, test_big_output, test_peek_consume,
		ignore_sigpipe,
		test_tls_setup, test_tls_exchange, test_starttls_discard,
		test_tls_handshake_timeout, test_tls_garbage,
		test_tls_teardown,
		NULL
	};

	return test_run(tests);
}
