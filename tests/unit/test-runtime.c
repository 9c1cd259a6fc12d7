/* test-runtime.c - the session runtime with a toy protocol over
 * socketpairs: parking, resuming on input (in pieces and pipelined), on
 * session_wake() and on the idle timeout; the client key for per-client
 * limits; conn's buffer release and transfer deadlines; run slots (no
 * more steps compute at once than the limit, a step that waits gives
 * its slot back, a long one yields). */
#include "test.h"

#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/block.h"
#include "base/util.h"
#include "net/conn.h"
#include "net/runtime.h"
#include "net/session.h"

#define PARK_MS 50

static struct stop test_stop;
static atomic_int closed_count;
static atomic_int wake_steps;
static atomic_int timeout_steps;
static atomic_int computing, computing_max, waiting, waiting_max;

static void
count_in(atomic_int *now, atomic_int *max)
{
	int n = atomic_fetch_add(now, 1) + 1, m = atomic_load(max);

	while (n > m && !atomic_compare_exchange_weak(max, &m, n)) {
	}
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Computes for ms without waiting, counted in `computing`; with yield,
 * calls block_yield() as it goes. */
static void
toy_compute(long ms, bool yield)
{
	int64_t until = util_now_ms() + ms;

	count_in(&computing, &computing_max);
	while (util_now_ms() < until)
		if (yield) {
			/* Not computing while it lets others go first. */
			atomic_fetch_sub(&computing, 1);
			block_yield();
			count_in(&computing, &computing_max);
		}
	atomic_fetch_sub(&computing, 1);
}

/* Waits for ms as a store or DNS wait does (its slot given back). */
static void
toy_block(long ms)
{
	count_in(&waiting, &waiting_max);
	block_begin();
	sleep_ms(ms);
	block_end();
	atomic_fetch_sub(&waiting, 1);
}

/* Waits for ms holding something others wait for (as the store's
 * write lock is held): notes how many steps held a slot right after. */
static atomic_int held_running;
static atomic_long held_wait_ms;	/* how long block_end() took */

static void
toy_hold(long ms)
{
	struct runtime_stats st;
	int64_t t0;

	block_begin();
	sleep_ms(ms);
	block_hold_begin();
	t0 = util_now_ms();
	block_end();
	atomic_store(&held_wait_ms, (long)(util_now_ms() - t0));
	runtime_stats(&st);
	atomic_store(&held_running, (int)st.running);
	block_hold_end();
}

/* ---- a toy protocol: greets "hi", echoes each line, "bye" ends;
 * "compute N", "yield N" and "block N" take N ms as above first ---- */

static int
toy_start(struct session_ctx *s)
{
	conn_printf(s->conn, "hi\r\n");
	return 1;
}

static int
toy_step(struct session_ctx *s)
{
	char line[256];
	size_t len;
	int r;

	if (s->events & SESSION_EV_WAKE)
		atomic_fetch_add(&wake_steps, 1);
	if (s->events & SESSION_EV_TIMEOUT)
		atomic_fetch_add(&timeout_steps, 1);
	if (!(s->events & SESSION_EV_INPUT) && !(s->events & SESSION_EV_TIMEOUT)) {
		conn_printf(s->conn, "woken\r\n");
		return 1;
	}
	r = conn_read_line(s->conn, line, sizeof(line), 200, &len);
	if (r == 0) {
		if (s->conn->timed_out)
			conn_printf(s->conn, "timeout\r\n");
		return 0;
	}
	if (strncmp(line, "compute ", 8) == 0)
		toy_compute(atol(line + 8), false);
	else if (strncmp(line, "yield ", 6) == 0)
		toy_compute(atol(line + 6), true);
	else if (strncmp(line, "block ", 6) == 0)
		toy_block(atol(line + 6));
	else if (strncmp(line, "hold ", 5) == 0)
		toy_hold(atol(line + 5));
	if (strncmp(line, "bye", 3) == 0) {
		conn_printf(s->conn, "bye\r\n");
		return 0;
	}
	conn_printf(s->conn, "echo %s", line);
	return 1;
}

static void
toy_end(struct session_ctx *s)
{
	conn_flush(s->conn);
}

static const struct session_proto toy_proto = {
	.name = "toy", .start = toy_start, .step = toy_step, .end = toy_end,
};

static void
toy_close(struct session_ctx *ctx)
{
	conn_close(ctx->conn);
	free(ctx->conn);
	free(ctx);
	atomic_fetch_add(&closed_count, 1);
}

static const struct runtime_hooks toy_hooks = { .open = NULL, .close = toy_close };

/* Starts a toy session on one end of a socketpair; returns the other. */
static int
toy_session(int timeout_ms, struct session_ctx **ctx_r)
{
	int fds[2];
	struct session_ctx *ctx = calloc(1, sizeof(*ctx));
	struct conn *c = malloc(sizeof(*c));

	if (ctx == NULL || c == NULL || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0)
		abort();
	conn_init(c, fds[0], timeout_ms);
	ctx->conn = c;
	ctx->stop = &test_stop;
	snprintf(ctx->id, sizeof(ctx->id), "toy");
	if (runtime_add(ctx, &toy_proto, &toy_hooks, false) < 0)
		abort();
	*ctx_r = ctx;
	return fds[1];
}

/* Reads until want is seen or 3 s pass; returns true if it was. */
static bool
expect(int fd, const char *want)
{
	char buf[1024];
	size_t have = 0;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	buf[0] = '\0';
	while (strstr(buf, want) == NULL && have < sizeof(buf) - 1) {
		ssize_t r;

		if (poll(&pfd, 1, 3000) <= 0)
			return false;
		r = recv(fd, buf + have, sizeof(buf) - 1 - have, 0);
		if (r <= 0)
			return false;
		have += (size_t)r;
		buf[have] = '\0';
	}
	return strstr(buf, want) != NULL;
}

static void
send_str(int fd, const char *s)
{
	if (send(fd, s, strlen(s), MSG_NOSIGNAL) != (ssize_t)strlen(s))
		abort();
}

static bool
wait_parked(size_t n)
{
	struct runtime_stats st;

	for (int i = 0; i < 200; i++) {
		runtime_stats(&st);
		if (st.parked >= n)
			return true;
		sleep_ms(10);
	}
	return false;
}

static void
test_park_and_resume_on_input(void)
{
	struct session_ctx *ctx;
	int fd = toy_session(10000, &ctx);
	struct runtime_stats st;

	test_begin("a parked session resumes on input, in pieces and pipelined");
	test_assert(expect(fd, "hi\r\n"));
	test_assert(wait_parked(1));
	sleep_ms(PARK_MS + 200);
	test_assert(ctx->conn->rbuf == NULL);	/* buffers gone once idle */
	send_str(fd, "he");
	sleep_ms(20);
	send_str(fd, "llo\r\n");
	test_assert(expect(fd, "echo hello\r\n"));
	test_assert(wait_parked(1));
	send_str(fd, "one\r\ntwo\r\nthree\r\n");
	test_assert(expect(fd, "echo one\r\necho two\r\necho three\r\n"));
	send_str(fd, "bye\r\n");
	test_assert(expect(fd, "bye\r\n"));
	for (int i = 0; i < 100 && atomic_load(&closed_count) < 1; i++)
		sleep_ms(10);
	test_assert(atomic_load(&closed_count) == 1);
	runtime_stats(&st);
	test_assert(st.sessions == 0 && st.parked == 0);
	close(fd);
	test_end();
}

static void
test_wake(void)
{
	struct session_ctx *ctx;
	int fd = toy_session(10000, &ctx);

	test_begin("session_wake runs a parked or waiting session's step");
	test_assert(expect(fd, "hi\r\n"));
	test_assert(wait_parked(1));
	session_wake(ctx);
	test_assert(expect(fd, "woken\r\n"));
	test_assert(atomic_load(&wake_steps) == 1);
	/* Again while it waits on its worker, before it parks. */
	send_str(fd, "x\r\n");
	test_assert(expect(fd, "echo x\r\n"));
	session_wake(ctx);
	test_assert(expect(fd, "woken\r\n"));
	test_assert(atomic_load(&wake_steps) == 2);
	send_str(fd, "bye\r\n");
	test_assert(expect(fd, "bye\r\n"));
	for (int i = 0; i < 100 && atomic_load(&closed_count) < 2; i++)
		sleep_ms(10);
	test_assert(atomic_load(&closed_count) == 2);
	close(fd);
	test_end();
}

static void
test_parked_timeout(void)
{
	struct session_ctx *ctx;
	int fd = toy_session(300, &ctx);

	test_begin("a parked session's idle timeout runs its step to say goodbye");
	test_assert(expect(fd, "hi\r\n"));
	test_assert(expect(fd, "timeout\r\n"));
	test_assert(atomic_load(&timeout_steps) == 1);
	for (int i = 0; i < 100 && atomic_load(&closed_count) < 3; i++)
		sleep_ms(10);
	test_assert(atomic_load(&closed_count) == 3);
	close(fd);
	test_end();
}

static void
test_many_sessions(void)
{
	enum { N = 200 };
	struct session_ctx *ctx[N];
	int fds[N];
	struct runtime_stats st;
	bool ok = true;

	test_begin("200 parked sessions on few workers, all resumed");
	for (int i = 0; i < N; i++)
		fds[i] = toy_session(10000, &ctx[i]);
	for (int i = 0; i < N; i++)
		ok = ok && expect(fds[i], "hi\r\n");
	test_assert(ok);
	test_assert(wait_parked(N));
	runtime_stats(&st);
	test_assert(st.sessions == N);
	for (int i = 0; i < N; i++)
		send_str(fds[i], "bye\r\n");
	for (int i = 0; i < N; i++)
		ok = ok && expect(fds[i], "bye\r\n");
	test_assert(ok);
	for (int i = 0; i < 300 && atomic_load(&closed_count) < 3 + N; i++)
		sleep_ms(10);
	test_assert(atomic_load(&closed_count) == 3 + N);
	for (int i = 0; i < N; i++)
		close(fds[i]);
	test_end();
}

/* Sends cmd on n new sessions at once and waits for every echo. */
static bool
toy_burst(int n, const char *cmd)
{
	struct session_ctx *ctx;
	int fds[64];
	bool ok = true;
	char want[64];

	for (int i = 0; i < n; i++) {
		fds[i] = toy_session(10000, &ctx);
		ok = ok && expect(fds[i], "hi\r\n");
	}
	for (int i = 0; i < n; i++)
		send_str(fds[i], cmd);
	snprintf(want, sizeof(want), "echo %s", cmd);
	for (int i = 0; i < n; i++)
		ok = ok && expect(fds[i], want);
	for (int i = 0; i < n; i++) {
		send_str(fds[i], "bye\r\n");
		ok = ok && expect(fds[i], "bye\r\n");
		close(fds[i]);
	}
	return ok;
}

static void
test_run_slots(void)
{
	struct runtime_stats st;
	int n;

	test_begin("run slots: computing steps are limited, waiting ones are not");
	runtime_stats(&st);
	test_assert(st.run_slots >= 4);
	n = (int)st.run_slots + 2;
	if (n > 32)
		n = 32;
	/* Two more than the slots, each computing 5 ms: those two wait
	 * about that long, far less than the 100 ms after which a step
	 * runs anyway. */
	atomic_store(&computing_max, 0);
	test_assert(toy_burst(n, "compute 5\r\n"));
	test_assert(atomic_load(&computing_max) >= 1);
	test_assert(atomic_load(&computing_max) <= (int)st.run_slots);
	/* Waits hold no slot: all of them wait at once. */
	atomic_store(&waiting_max, 0);
	test_assert(toy_burst(2 * n, "block 300\r\n"));
	test_assert(atomic_load(&waiting_max) == 2 * n);
	/* Long computations that yield still finish, and never run more
	 * than the limit at once. */
	atomic_store(&computing_max, 0);
	test_assert(toy_burst(n, "yield 30\r\n"));
	test_assert(atomic_load(&computing_max) <= (int)st.run_slots);
	runtime_stats(&st);
	test_assert(st.running == 0);
	test_end();
}

static void
test_run_slots_holder_first(void)
{
	struct runtime_stats st;
	struct session_ctx *ctx;
	int fds[33] = { 0 }, n;
	bool ok = true;

	test_begin("run slots: a wait that ends holding a lock takes a slot at once");
	runtime_stats(&st);
	n = (int)st.run_slots < 32 ? (int)st.run_slots : 32;
	for (int i = 0; i <= n; i++) {
		fds[i] = toy_session(10000, &ctx);
		ok = ok && expect(fds[i], "hi\r\n");
	}
	/* Every slot computes for 600 ms; the holder's wait ends meanwhile.
	 * In line it would wait (up to 100 ms) with what it holds; it runs
	 * at once instead, one over the limit (a step in line waits the full
	 * 100 ms here: no slot comes free before that). */
	for (int i = 0; i < n; i++)
		send_str(fds[i], "compute 600\r\n");
	sleep_ms(100);
	atomic_store(&held_running, 0);
	send_str(fds[n], "hold 100\r\n");
	ok = ok && expect(fds[n], "echo hold 100\r\n");
	test_assert(atomic_load(&held_running) == n + 1);
	test_assert(atomic_load(&held_wait_ms) < 80);
	for (int i = 0; i < n; i++)
		ok = ok && expect(fds[i], "echo compute 600\r\n");
	for (int i = 0; i <= n; i++) {
		send_str(fds[i], "bye\r\n");
		ok = ok && expect(fds[i], "bye\r\n");
		close(fds[i]);
	}
	test_assert(ok);
	runtime_stats(&st);
	test_assert(st.running == 0);
	test_end();
}

static void
test_client_key(void)
{
	char key[SESSION_CLIENT_KEY_MAX];

	test_begin("client keys: IPv4 whole, IPv6 by prefix");
	session_client_key("192.0.2.7", 64, key, sizeof(key));
	test_assert_strcmp(key, "192.0.2.7");
	session_client_key("2001:db8:1:2:aaaa:bbbb:cccc:dddd", 64, key, sizeof(key));
	test_assert_strcmp(key, "2001:db8:1:2::/64");
	session_client_key("2001:db8:1:2::99", 64, key, sizeof(key));
	test_assert_strcmp(key, "2001:db8:1:2::/64");
	session_client_key("2001:db8:1:2ff::1", 56, key, sizeof(key));
	test_assert_strcmp(key, "2001:db8:1:200::/56");
	session_client_key("::1", 128, key, sizeof(key));
	test_assert_strcmp(key, "::1/128");
	session_client_key("not an address", 64, key, sizeof(key));
	test_assert_strcmp(key, "not an address");
	test_end();
}

static void
test_conn_buffers_and_transfer(void)
{
	int fds[2];
	struct conn c;
	char line[64];
	size_t len;
	int64_t t0;

	test_begin("conn: buffers released when empty; transfer rate deadline");
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0)
		abort();
	conn_init(&c, fds[0], 1000);
	test_assert(c.rbuf == NULL && conn_release_buffers(&c));
	send_str(fds[1], "a\r\nb\r\n");
	test_assert(conn_read_line(&c, line, sizeof(line), 60, &len) == 1);
	test_assert(!conn_release_buffers(&c));	/* "b" is still buffered */
	test_assert(conn_input_ready(&c));
	test_assert(conn_read_line(&c, line, sizeof(line), 60, &len) == 1);
	test_assert(!conn_input_ready(&c));
	test_assert(conn_release_buffers(&c) && c.rbuf == NULL);
	/* 100 B/s after a 1 s timeout: 10 bytes buy 100 ms more. */
	conn_transfer_begin(&c, 100, 0);
	t0 = c.xfer_start;
	test_assert(conn_read_deadline(&c, t0) == t0 + 1000);
	c.xfer_bytes = 10;
	test_assert(conn_read_deadline(&c, t0 + 500) == t0 + 1100);
	conn_transfer_end(&c);
	conn_transfer_begin(&c, 0, 200);
	t0 = conn_now_ms();
	send_str(fds[1], "x");
	test_assert(conn_read_line(&c, line, sizeof(line), 60, &len) == 0);
	test_assert(c.timed_out);
	test_assert(conn_now_ms() - t0 < 800);
	conn_close(&c);
	close(fds[1]);
	test_end();
}

static void
test_stop_runtime(void)
{
	test_begin("runtime_stop ends the workers and the poller");
	runtime_stop();
	test_end();
}

int
main(void)
{
	static void (*const tests[])(void) = {
		test_client_key,
		test_conn_buffers_and_transfer,
		test_park_and_resume_on_input,
		test_wake,
		test_parked_timeout,
		test_many_sessions,
		test_run_slots,
		test_run_slots_holder_first,
		test_stop_runtime,
		NULL,
	};
	struct runtime_opts opts = {
		.max_sessions = 300, .park_delay_ms = PARK_MS, .first_command_timeout_ms = 0,
	};
	struct yj_err err;
	int fds[2];

	if (pipe(fds) < 0)
		abort();
	test_stop.fd = fds[0];
	if (runtime_init(&opts, &err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	return test_run(tests);
}
