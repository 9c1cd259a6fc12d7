/* runtime.c - the worker pool, the poller and the session driver. */
#include "net/runtime.h"

#include <errno.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "base/block.h"
#include "base/log.h"
#include "base/util.h"
#include "net/conn.h"

#define WORKER_STACK_SIZE (512 * 1024)
/* A session without input waits this long on its worker (at most
 * park_delay_ms) before its thread is given back: long enough for a
 * client's next command in a quick exchange, short enough that a burst
 * of new connections does not need a thread each. */
#define HOT_WAIT_MS 20
#define WORKERS_KEPT 4			/* idle workers that never exit */
#define WORKER_IDLE_EXIT_MS 3000	/* an idle worker beyond those exits */
#define POLLER_BATCH 256
#define POLLER_SCAN_MIN_MS 100		/* timeouts are checked this often at most */
#define TRIM_INTERVAL_MS 2000		/* give freed heap pages back at most this often */
#define STOP_WAIT_MS 5000

enum rs_where { RS_QUEUED, RS_RUNNING, RS_PARKED };
enum rs_phase { PH_OPEN, PH_STEP, PH_END };

struct rt_session {
	struct session_ctx *ctx;
	const struct session_proto *proto;
	const struct runtime_hooks *hooks;
	uint32_t index, gen;
	enum rs_where where;
	enum rs_phase phase;
	bool wait_before_open;
	bool started;			/* start() was called: end() is due */
	bool stepped;			/* a step has run: no longer the first command */
	bool waiting;			/* wait_start is set */
	int64_t wait_start;		/* when the current wait for input began */
	int64_t deadline;		/* parked: when the wait runs out */
	int64_t release_at;		/* parked: when its conn buffers go */
	int waiter_efd;			/* a worker waiting for it: its eventfd */
	unsigned events;		/* handed over with the session */
	atomic_bool woken;
	struct rt_session *next;	/* run queue */
};

struct worker {
	int efd;			/* session_wake() pokes a waiting worker */
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t work;		/* the queue has sessions / quit */
	pthread_cond_t gone;		/* a worker exited */
	struct runtime_opts opts;
	struct rt_session **table;	/* by index; NULL: free */
	uint32_t *gens;			/* generation per index */
	uint32_t *free_idx;		/* stack of free indexes */
	size_t n_free, n_sessions, n_parked;
	struct rt_session *head, *tail;	/* run queue */
	size_t queue_len;
	size_t n_workers, n_idle;
	bool quit;
	int epfd, poke_fd;		/* poke_fd: wakes the poller */
	int64_t next_scan;		/* the poller looks for timeouts then */
	pthread_t poller;
	bool poller_running;
} rt = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.work = PTHREAD_COND_INITIALIZER,
	.gone = PTHREAD_COND_INITIALIZER,
	.epfd = -1,
	.poke_fd = -1,
};

static void *worker_main(void *arg);

/* ---- run slots ----
 *
 * At most slots.max workers run session steps at once; the others wait
 * here in order, a worker coming back from a wait (block_end) ahead of
 * one about to start a step. With a thread per busy session the kernel
 * shared the CPUs among all of them, a hundred busy clients meant a
 * hundred runnable threads, and the store's writer (one thread, which
 * every STORE and delivery waits for) got a hundredth of a CPU. A worker
 * gives its slot back while it waits for something other than a CPU
 * (base/block.h). One that has waited SLOT_WAIT_MAX_MS for a slot runs
 * anyway: a wait nobody marked costs concurrency, never a deadlock. */
#define SLOT_WAIT_MAX_MS 100
/* A step that computes longer than this lets waiting ones go first at
 * its next block_yield(). */
#define SLOT_SLICE_MS 10

enum { SLOT_RESUME, SLOT_START, SLOT_QUEUES };

struct slot_waiter {
	pthread_cond_t cond;
	bool granted;
	struct slot_waiter *next;
};

static struct {
	pthread_mutex_t lock;
	size_t running, max;
	struct slot_waiter *head[SLOT_QUEUES], *tail[SLOT_QUEUES];
} slots = { .lock = PTHREAD_MUTEX_INITIALIZER };

static _Thread_local bool slot_held;	/* this worker runs a step */
static _Thread_local bool slot_lent;	/* ...and gave its slot back to wait */
static _Thread_local int64_t slot_since;	/* when it took the slot */

static void
slot_now_held(void)
{
	slot_held = true;
	slot_since = conn_now_ms();
}

/* Caller holds slots.lock. */
static void
slot_unlink(struct slot_waiter *w, int q)
{
	struct slot_waiter **pp = &slots.head[q], *prev = NULL;

	while (*pp != NULL && *pp != w) {
		prev = *pp;
		pp = &(*pp)->next;
	}
	if (*pp == NULL)
		return;
	*pp = w->next;
	if (slots.tail[q] == w)
		slots.tail[q] = prev;
}

static void
slot_take(int q)
{
	struct slot_waiter w = { .granted = false, .next = NULL };
	pthread_condattr_t attr;
	struct timespec until;

	pthread_mutex_lock(&slots.lock);
	if (slots.head[SLOT_RESUME] == NULL && slots.head[SLOT_START] == NULL &&
	    slots.running < slots.max) {
		slots.running++;
		pthread_mutex_unlock(&slots.lock);
		slot_now_held();
		return;
	}
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&w.cond, &attr);
	pthread_condattr_destroy(&attr);
	if (slots.tail[q] != NULL)
		slots.tail[q]->next = &w;
	else
		slots.head[q] = &w;
	slots.tail[q] = &w;
	util_deadline(&until, CLOCK_MONOTONIC, SLOT_WAIT_MAX_MS);
	while (!w.granted)
		if (pthread_cond_timedwait(&w.cond, &slots.lock, &until) == ETIMEDOUT &&
		    !w.granted) {
			slot_unlink(&w, q);
			slots.running++;
			break;
		}
	pthread_mutex_unlock(&slots.lock);
	pthread_cond_destroy(&w.cond);
	slot_now_held();
}

/* Hands the slot to the first waiter, if any (unless steps that waited
 * too long made more run than the limit: then it is gone). */
static void
slot_give(void)
{
	struct slot_waiter *w = NULL;

	pthread_mutex_lock(&slots.lock);
	for (int q = 0; q < SLOT_QUEUES && w == NULL && slots.running <= slots.max; q++)
		if ((w = slots.head[q]) != NULL) {
			slots.head[q] = w->next;
			if (slots.head[q] == NULL)
				slots.tail[q] = NULL;
		}
	if (w != NULL) {
		w->granted = true;
		pthread_cond_signal(&w->cond);
	} else {
		slots.running--;
	}
	pthread_mutex_unlock(&slots.lock);
	slot_held = false;
}

static void
slot_lend(void)
{
	if (slot_held) {
		slot_give();
		slot_lent = true;
	}
}

/* first: the worker holds what others wait for (block_hold_begin), so
 * it runs at once; slot_give() lets the excess drain. */
static void
slot_return(bool first)
{
	if (!slot_lent)
		return;
	slot_lent = false;
	if (!first) {
		slot_take(SLOT_RESUME);
		return;
	}
	pthread_mutex_lock(&slots.lock);
	slots.running++;
	pthread_mutex_unlock(&slots.lock);
	slot_now_held();
}

/* After SLOT_SLICE_MS with the slot: goes to the back of the line of
 * steps about to start, if there is a line. */
static void
slot_yield(void)
{
	if (!slot_held || conn_now_ms() - slot_since < SLOT_SLICE_MS)
		return;
	pthread_mutex_lock(&slots.lock);
	bool waiting = slots.head[SLOT_RESUME] != NULL || slots.head[SLOT_START] != NULL;
	pthread_mutex_unlock(&slots.lock);
	if (waiting) {
		slot_give();
		slot_take(SLOT_START);
	} else {
		slot_since = conn_now_ms();
	}
}

static const struct block_hooks slot_hooks = { slot_lend, slot_return, slot_yield };

static void
poke(int fd)
{
	uint64_t one = 1;

	if (write(fd, &one, sizeof(one)) < 0) {
		/* the counter is already non-zero: the poke is pending */
	}
}

static void
drain(int fd)
{
	uint64_t v;

	if (read(fd, &v, sizeof(v)) < 0) {
		/* nothing was pending */
	}
}

/* ---- the worker pool ---- */

/* Caller holds the lock. */
static void
worker_spawn(void)
{
	pthread_attr_t attr;
	pthread_t tid;

	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, WORKER_STACK_SIZE);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&tid, &attr, worker_main, NULL) == 0)
		rt.n_workers++;
	else if (rt.n_workers == 0)
		log_error("runtime: cannot start a worker thread");
	else
		log_warn("runtime: cannot start another worker thread (%zu running)",
			 rt.n_workers);
	pthread_attr_destroy(&attr);
}

/* Queues a session for a worker, starting one if every worker is busy.
 * Caller holds the lock. */
static void
enqueue(struct rt_session *rs)
{
	rs->where = RS_QUEUED;
	rs->next = NULL;
	if (rt.tail != NULL)
		rt.tail->next = rs;
	else
		rt.head = rs;
	rt.tail = rs;
	rt.queue_len++;
	if (rt.queue_len > rt.n_idle && rt.n_workers < rt.opts.max_sessions + WORKERS_KEPT)
		worker_spawn();
	pthread_cond_signal(&rt.work);
}

static struct rt_session *
dequeue(void)
{
	struct rt_session *rs = rt.head;

	rt.head = rs->next;
	if (rt.head == NULL)
		rt.tail = NULL;
	rt.queue_len--;
	rs->where = RS_RUNNING;
	return rs;
}

/* ---- parking ---- */

static uint64_t
park_key(const struct rt_session *rs)
{
	return (uint64_t)rs->gen << 32 | rs->index;
}

/* Takes a parked session off the poller and queues it. Caller holds the
 * lock; the session is parked. */
static void
unpark(struct rt_session *rs, unsigned events)
{
	(void)epoll_ctl(rt.epfd, EPOLL_CTL_DEL, rs->ctx->conn->fd, NULL);
	rt.n_parked--;
	rs->events |= events;
	enqueue(rs);
}

/* Frees a parked session's conn buffers once it has been idle for
 * park_delay_ms. Caller holds the lock (and so owns the parked session). */
static void
release_if_due(struct rt_session *rs, int64_t now)
{
	if (rs->release_at <= now)
		(void)conn_release_buffers(rs->ctx->conn);
}

/* Hands the session to the poller. Returns false (the worker keeps it)
 * if a wake-up came in meanwhile or epoll refused the socket. */
static bool
park(struct rt_session *rs, int64_t deadline)
{
	struct epoll_event ev = {
		.events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT,
		.data.u64 = park_key(rs),
	};
	struct conn *c = rs->ctx->conn;
	char id[sizeof(rs->ctx->id)];
	int64_t now = conn_now_ms();
	int64_t release_at = rs->wait_start + rt.opts.park_delay_ms;

	if (release_at <= now && !conn_release_buffers(c))
		return false;
	/* Once parked, the session may run and end on another thread at
	 * any moment: what the log line needs is copied first. */
	memcpy(id, rs->ctx->id, sizeof(id));
	pthread_mutex_lock(&rt.lock);
	if (atomic_load(&rs->woken) || epoll_ctl(rt.epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
		pthread_mutex_unlock(&rt.lock);
		return false;
	}
	/* From here on the poller owns it. */
	rs->where = RS_PARKED;
	rs->deadline = deadline;
	rs->release_at = release_at;
	rt.n_parked++;
	if (c->rbuf != NULL && release_at < deadline)
		deadline = release_at;
	if (deadline < rt.next_scan) {
		rt.next_scan = deadline;
		poke(rt.poke_fd);
	}
	pthread_mutex_unlock(&rt.lock);
	log_debug("session=%s parked", id);
	return true;
}

/* ---- the session driver ---- */

/* How long the current wait may last. */
static int64_t
wait_deadline(const struct rt_session *rs)
{
	const struct conn *c = rs->ctx->conn;
	int64_t deadline = conn_read_deadline(c, rs->wait_start);
	long first = rt.opts.first_command_timeout_ms;

	if (rs->phase == PH_OPEN)
		return rs->wait_start + (c->tls_timeout_ms > 0 ? c->tls_timeout_ms : c->timeout_ms);
	if (!rs->stepped && first > 0 && rs->wait_start + first < deadline)
		return rs->wait_start + first;
	return deadline;
}

/* Waits on the worker for input, a wake-up or the deadline, at most
 * HOT_WAIT_MS. Returns the events, or 0: time to park. */
static unsigned
wait_on_worker(struct worker *w, struct rt_session *rs, int64_t deadline)
{
	struct pollfd pfd[2] = {
		{ .fd = rs->ctx->conn->fd, .events = POLLIN },
		{ .fd = w->efd, .events = POLLIN },
	};
	int64_t now = conn_now_ms();
	int64_t until = now + (rt.opts.park_delay_ms < HOT_WAIT_MS ? rt.opts.park_delay_ms
								    : HOT_WAIT_MS);
	unsigned events = 0;
	int r;

	if (until > deadline)
		until = deadline;
	pthread_mutex_lock(&rt.lock);
	rs->waiter_efd = w->efd;
	pthread_mutex_unlock(&rt.lock);
	do {
		int64_t left = until - conn_now_ms();

		r = poll(pfd, 2, left > 0 ? (int)(left < 60000 ? left : 60000) : 0);
	} while ((r < 0 && errno == EINTR) ||
		 (r == 0 && conn_now_ms() < until));
	pthread_mutex_lock(&rt.lock);
	rs->waiter_efd = -1;
	pthread_mutex_unlock(&rt.lock);
	if (pfd[1].revents != 0)
		drain(w->efd);
	if (r < 0 || pfd[0].revents != 0)
		events |= SESSION_EV_INPUT;
	if (atomic_load(&rs->woken))
		events |= SESSION_EV_WAKE;
	if (events == 0 && conn_now_ms() >= deadline)
		events |= SESSION_EV_TIMEOUT;
	return events;
}

/* Removes the session from the table and gives it back to its owner. */
static void
session_finish(struct rt_session *rs)
{
	struct session_ctx *ctx = rs->ctx;
	const struct runtime_hooks *hooks = rs->hooks;

	if (rs->started)
		rs->proto->end(ctx);
	pthread_mutex_lock(&rt.lock);
	rt.table[rs->index] = NULL;
	rt.gens[rs->index]++;
	rt.free_idx[rt.n_free++] = rs->index;
	rt.n_sessions--;
	ctx->rt = NULL;
	pthread_mutex_unlock(&rt.lock);
	free(rs);
	if (hooks->close != NULL)
		hooks->close(ctx);
}

/* Runs open, or start, or one step. */
static void
session_advance(struct rt_session *rs, unsigned events)
{
	struct session_ctx *ctx = rs->ctx;

	rs->waiting = false;
	if (rs->phase == PH_OPEN) {
		if (rs->hooks->open != NULL && rs->hooks->open(ctx) <= 0) {
			rs->phase = PH_END;
			return;
		}
		rs->started = true;
		rs->phase = rs->proto->start(ctx) > 0 ? PH_STEP : PH_END;
		return;
	}
	ctx->events = events;
	if (rs->proto->step(ctx) <= 0)
		rs->phase = PH_END;
	rs->stepped = true;
	ctx->events = 0;
}

/* Does the session have to wait before it can advance? */
static bool
session_needs_input(const struct rt_session *rs)
{
	if (rs->phase == PH_OPEN)
		return rs->wait_before_open && !conn_input_ready(rs->ctx->conn);
	return !conn_input_ready(rs->ctx->conn);
}

/* Drives a session until it parks or ends. */
static void
session_drive(struct worker *w, struct rt_session *rs)
{
	struct conn *c = rs->ctx->conn;
	unsigned events;

	pthread_mutex_lock(&rt.lock);
	events = rs->events;
	rs->events = 0;
	pthread_mutex_unlock(&rt.lock);
	if (events != 0)
		log_debug("session=%s resumed:%s%s%s", rs->ctx->id,
			  events & SESSION_EV_INPUT ? " input" : "",
			  events & SESSION_EV_WAKE ? " wake" : "",
			  events & SESSION_EV_TIMEOUT ? " timeout" : "");
	while (rs->phase != PH_END) {
		int64_t deadline;

		if (atomic_exchange(&rs->woken, false))
			events |= SESSION_EV_WAKE;
		if (events == 0 && session_needs_input(rs)) {
			if (!rs->waiting) {
				rs->waiting = true;
				rs->wait_start = conn_now_ms();
			}
			/* Replies to a batch of pipelined commands went out
			 * together; now the client is waiting for them. */
			if (c->wlen > 0)
				(void)conn_flush(c);
			deadline = wait_deadline(rs);
			events = c->failed ? SESSION_EV_INPUT : wait_on_worker(w, rs, deadline);
			if (events == 0) {
				if (park(rs, deadline))
					return;
				continue;
			}
			if (events & SESSION_EV_WAKE)
				atomic_store(&rs->woken, false);
		}
		if (events & SESSION_EV_TIMEOUT)
			conn_set_timed_out(c);
		if (conn_input_ready(c))
			events |= SESSION_EV_INPUT;
		slot_take(SLOT_START);
		session_advance(rs, events);
		slot_give();
		events = 0;
	}
	session_finish(rs);
}

static void *
worker_main(void *arg)
{
	struct worker w;

	(void)arg;
	pthread_setname_np(pthread_self(), "yj-worker");
	w.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w.efd < 0)
		log_error("runtime: worker eventfd: %s", strerror(errno));
	pthread_mutex_lock(&rt.lock);
	while (w.efd >= 0) {
		struct timespec until;
		bool timed_out = false;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += WORKER_IDLE_EXIT_MS / 1000;
		while (rt.head == NULL && !rt.quit && !timed_out) {
			rt.n_idle++;
			timed_out = pthread_cond_timedwait(&rt.work, &rt.lock, &until) == ETIMEDOUT;
			rt.n_idle--;
		}
		if (rt.head == NULL && (rt.quit || rt.n_workers > WORKERS_KEPT))
			break;
		if (rt.head == NULL)
			continue;
		{
			struct rt_session *rs = dequeue();

			pthread_mutex_unlock(&rt.lock);
			session_drive(&w, rs);
			pthread_mutex_lock(&rt.lock);
		}
	}
	pthread_mutex_unlock(&rt.lock);
	if (w.efd >= 0)
		close(w.efd);
	/* Free OpenSSL's per-thread state now, before runtime_stop() can see
	 * this worker gone: the thread-exit destructor that would do it may
	 * run after youjud has stopped waiting. */
	OPENSSL_thread_stop();
	pthread_mutex_lock(&rt.lock);
	rt.n_workers--;
	pthread_cond_broadcast(&rt.gone);
	pthread_mutex_unlock(&rt.lock);
	return NULL;
}

/* ---- the poller ---- */

/* Queues every parked session whose wait has run out, and finds when
 * the next one will. Caller holds the lock. */
static void
poller_scan(int64_t now)
{
	int64_t next = INT64_MAX;

	for (size_t i = 0; i < rt.opts.max_sessions && rt.n_parked > 0; i++) {
		struct rt_session *rs = rt.table[i];

		if (rs == NULL || rs->where != RS_PARKED)
			continue;
		if (rs->deadline <= now) {
			unpark(rs, SESSION_EV_TIMEOUT);
			continue;
		}
		release_if_due(rs, now);
		if (rs->deadline < next)
			next = rs->deadline;
		if (rs->ctx->conn->rbuf != NULL && rs->release_at < next)
			next = rs->release_at;
	}
	if (next != INT64_MAX && next < now + POLLER_SCAN_MIN_MS)
		next = now + POLLER_SCAN_MIN_MS;
	rt.next_scan = next;
}

/* An epoll event for a parked session: queue it, unless the session it
 * named has moved on (woken, expired or ended) since. */
static void
poller_input(uint64_t key)
{
	uint32_t index = (uint32_t)key, gen = (uint32_t)(key >> 32);
	struct rt_session *rs;

	if (index >= rt.opts.max_sessions || rt.gens[index] != gen)
		return;
	rs = rt.table[index];
	if (rs != NULL && rs->where == RS_PARKED)
		unpark(rs, SESSION_EV_INPUT);
}

static void *
poller_main(void *arg)
{
	struct epoll_event evs[POLLER_BATCH];
	int64_t last_trim = 0;
	bool parked_since_trim = false;

	(void)arg;
	pthread_setname_np(pthread_self(), "yj-poller");
	for (;;) {
		int64_t now = conn_now_ms(), wait_ms;
		int n;

		pthread_mutex_lock(&rt.lock);
		if (rt.quit && rt.n_sessions == 0) {
			pthread_mutex_unlock(&rt.lock);
			break;
		}
		wait_ms = rt.next_scan == INT64_MAX ? 60000 : rt.next_scan - now;
		parked_since_trim = parked_since_trim || rt.n_parked > 0;
		pthread_mutex_unlock(&rt.lock);
		if (wait_ms < 0)
			wait_ms = 0;
		if (wait_ms > 60000)
			wait_ms = 60000;
		n = epoll_wait(rt.epfd, evs, POLLER_BATCH, (int)wait_ms);
		if (n < 0 && errno != EINTR) {
			log_error("runtime: epoll_wait: %s", strerror(errno));
			n = 0;
		}
		now = conn_now_ms();
		pthread_mutex_lock(&rt.lock);
		for (int i = 0; i < n; i++) {
			if (evs[i].data.u64 == UINT64_MAX)
				drain(rt.poke_fd);
			else
				poller_input(evs[i].data.u64);
		}
		if (now >= rt.next_scan)
			poller_scan(now);
		pthread_mutex_unlock(&rt.lock);
		/* Sessions that parked freed their buffers; the pages in the
		 * middle of the heap go back to the system only on a trim. */
		if (parked_since_trim && now - last_trim >= TRIM_INTERVAL_MS) {
			malloc_trim(0);
			last_trim = now;
			parked_since_trim = false;
		}
	}
	OPENSSL_thread_stop();
	return NULL;
}

/* ---- the API ---- */

size_t
runtime_default_running(void)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	return cpus > 2 ? (size_t)cpus * 2 : 4;
}

int
runtime_init(const struct runtime_opts *opts, struct yj_err *err)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = UINT64_MAX };
	size_t n = opts->max_sessions;

	rt.opts = *opts;
	slots.max = opts->running > 0 ? opts->running : runtime_default_running();
	block_set_hooks(&slot_hooks);
	rt.table = calloc(n, sizeof(*rt.table));
	rt.gens = calloc(n, sizeof(*rt.gens));
	rt.free_idx = calloc(n, sizeof(*rt.free_idx));
	if (rt.table == NULL || rt.gens == NULL || rt.free_idx == NULL)
		return yj_err_set(err, "runtime: out of memory");
	for (size_t i = 0; i < n; i++)
		rt.free_idx[i] = (uint32_t)(n - 1 - i);
	rt.n_free = n;
	rt.next_scan = INT64_MAX;
	rt.epfd = epoll_create1(EPOLL_CLOEXEC);
	rt.poke_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (rt.epfd < 0 || rt.poke_fd < 0 ||
	    epoll_ctl(rt.epfd, EPOLL_CTL_ADD, rt.poke_fd, &ev) < 0)
		return yj_err_errno(err, "runtime: epoll");
	if (pthread_create(&rt.poller, NULL, poller_main, NULL) != 0)
		return yj_err_set(err, "runtime: cannot start the poller thread");
	rt.poller_running = true;
	pthread_mutex_lock(&rt.lock);
	for (int i = 0; i < WORKERS_KEPT / 2; i++)
		worker_spawn();
	pthread_mutex_unlock(&rt.lock);
	return 1;
}

int
runtime_add(struct session_ctx *ctx, const struct session_proto *proto,
	    const struct runtime_hooks *hooks, bool wait_before_open)
{
	struct rt_session *rs = calloc(1, sizeof(*rs));

	if (rs == NULL)
		return -1;
	rs->ctx = ctx;
	rs->proto = proto;
	rs->hooks = hooks;
	rs->phase = PH_OPEN;
	rs->wait_before_open = wait_before_open;
	rs->waiter_efd = -1;
	atomic_init(&rs->woken, false);
	pthread_mutex_lock(&rt.lock);
	if (rt.n_free == 0) {
		pthread_mutex_unlock(&rt.lock);
		free(rs);
		return -1;
	}
	rs->index = rt.free_idx[--rt.n_free];
	rs->gen = rt.gens[rs->index];
	rt.table[rs->index] = rs;
	rt.n_sessions++;
	ctx->rt = rs;
	enqueue(rs);
	pthread_mutex_unlock(&rt.lock);
	return 1;
}

void
session_wake(struct session_ctx *s)
{
	struct rt_session *rs;

	pthread_mutex_lock(&rt.lock);
	rs = s->rt;
	if (rs == NULL) {
		pthread_mutex_unlock(&rt.lock);
		return;
	}
	atomic_store(&rs->woken, true);
	if (rs->where == RS_PARKED)
		unpark(rs, SESSION_EV_WAKE);
	else if (rs->waiter_efd >= 0)
		poke(rs->waiter_efd);
	pthread_mutex_unlock(&rt.lock);
}

bool
runtime_expire(struct session_ctx *ctx)
{
	struct rt_session *rs;
	bool done = false;

	pthread_mutex_lock(&rt.lock);
	rs = ctx->rt;
	if (rs != NULL && rs->where == RS_PARKED) {
		/* Parked: nobody else touches the conn while we hold the lock. */
		conn_set_timed_out(ctx->conn);
		unpark(rs, SESSION_EV_TIMEOUT);
		done = true;
	}
	pthread_mutex_unlock(&rt.lock);
	return done;
}

int64_t
runtime_parked_since(struct session_ctx *ctx)
{
	struct rt_session *rs;
	int64_t since = 0;

	pthread_mutex_lock(&rt.lock);
	rs = ctx->rt;
	if (rs != NULL && rs->where == RS_PARKED)
		since = rs->wait_start;
	pthread_mutex_unlock(&rt.lock);
	return since;
}

void
runtime_stats(struct runtime_stats *st)
{
	pthread_mutex_lock(&rt.lock);
	st->sessions = rt.n_sessions;
	st->parked = rt.n_parked;
	st->workers = rt.n_workers;
	st->idle_workers = rt.n_idle;
	pthread_mutex_unlock(&rt.lock);
	pthread_mutex_lock(&slots.lock);
	st->running = slots.running;
	st->run_slots = slots.max;
	pthread_mutex_unlock(&slots.lock);
}

void
runtime_stop(void)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += STOP_WAIT_MS / 1000;
	pthread_mutex_lock(&rt.lock);
	rt.quit = true;
	pthread_cond_broadcast(&rt.work);
	while (rt.n_workers > 0) {
		if (pthread_cond_timedwait(&rt.gone, &rt.lock, &until) == ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&rt.lock);
	if (rt.poller_running) {
		poke(rt.poke_fd);
		pthread_join(rt.poller, NULL);
		rt.poller_running = false;
	}
	if (rt.epfd >= 0)
		close(rt.epfd);
	if (rt.poke_fd >= 0)
		close(rt.poke_fd);
	rt.epfd = rt.poke_fd = -1;
	free(rt.table);
	free(rt.gens);
	free(rt.free_idx);
	rt.table = NULL;
	rt.gens = NULL;
	rt.free_idx = NULL;
}
