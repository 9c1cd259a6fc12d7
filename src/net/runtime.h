/* runtime.h - runs sessions on a pool of worker threads and parks idle
 * ones on one poller thread.
 *
 * A session is driven as: open (e.g. the implicit-TLS handshake), the
 * protocol's start(), step() for each command, end(), close. Before each
 * step the runtime looks for input: buffered input runs the step at
 * once; otherwise the session's output is flushed and its worker waits
 * on the socket for a moment (20 ms at most, for a client's quick next
 * command). If nothing comes, the session is parked: its worker goes
 * back to the pool and its socket is watched by the poller (epoll,
 * one-shot); once it has been idle for park_delay_ms its conn buffers are
 * freed too. Input, its timeout, a stop (the socket's read side shut
 * down) or session_wake() queue it for a worker again, which continues
 * it where it was. So a burst of new connections needs few threads, and
 * a session that answers within park_delay_ms keeps its buffers. A session belongs to exactly one thread at a time: the worker
 * running it, or (parked) the poller; every hand-over happens under the
 * runtime's lock, and epoll events name a session by table index and
 * generation, so a stale event is recognised and dropped.
 *
 * Timeouts of a wait: the conn's idle timeout (or a transfer's shorter
 * limit, see conn_read_deadline()) counted from when the wait began; the
 * first command after start() has first_command_timeout_ms; the wait
 * before open (for sessions added with wait_before_open) has the conn's
 * tls_timeout_ms. On expiry the conn is marked timed out and the step
 * runs with SESSION_EV_TIMEOUT, so the protocol says its goodbye.
 *
 * Output is not parked: a step (and the flush before a wait) writes on
 * its worker, each flush within the conn's write limit (conn.h), since
 * the command's state is on the worker's stack. A client that does not
 * take its output so fails the conn, and its next step ends it.
 *
 * Run slots: however many sessions are busy, at most `running` workers
 * compute at once (twice the CPUs by default); the rest wait in order,
 * a worker coming back from a wait ahead of a step about to start. A
 * worker gives its slot back while it waits for anything but a CPU
 * (base/block.h: sockets, the store's writer, fsync, the database
 * server, DNS, delays), and a long computation lets waiting steps go
 * first now and then (block_yield). So a hundred busy clients do not
 * make a hundred runnable threads that the kernel shares the CPUs
 * among, the store's writer among them: the work each command waits for
 * gets a CPU soon.
 */
#ifndef YJ_RUNTIME_H
#define YJ_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "net/session.h"

struct runtime_opts {
	size_t max_sessions;		/* sessions at once; also the worker limit */
	long park_delay_ms;		/* idle time on a worker before parking */
	long first_command_timeout_ms;	/* 0: the conn's idle timeout */
	size_t running;			/* steps running at once; 0: default */
};

/* Steps running at once unless set: twice the CPUs, at least 4. */
size_t runtime_default_running(void);

struct runtime_hooks {
	/* On a worker, once, before the protocol's start(); returns 1 to
	 * start the protocol, 0 to close at once (start and end are then
	 * not called). NULL: nothing to open. */
	int (*open)(struct session_ctx *ctx);
	/* On a worker, once, last: the session is out of the runtime;
	 * the hook closes the conn and frees ctx. */
	void (*close)(struct session_ctx *ctx);
};

/* Starts the poller and a few workers. Returns 1 or -1. */
int runtime_init(const struct runtime_opts *opts, struct yj_err *err) YJ_MUST_CHECK;

/* Hands a new session to the runtime: ctx (with its conn) on the heap,
 * owned by the runtime until hooks->close. With wait_before_open, open
 * runs only once input arrives (the client speaks first, as in TLS).
 * Returns 1, or -1 if the table is full (the caller still owns ctx). */
int runtime_add(struct session_ctx *ctx, const struct session_proto *proto,
		const struct runtime_hooks *hooks, bool wait_before_open) YJ_MUST_CHECK;

/* Ends a parked session's wait now, as if its timeout had run out (it
 * says goodbye and ends). Returns false if it is not parked. */
bool runtime_expire(struct session_ctx *ctx);

/* When a parked session began waiting (conn_now_ms() clock), or 0 if it
 * is not parked. */
int64_t runtime_parked_since(struct session_ctx *ctx);

struct runtime_stats {
	size_t sessions, parked, workers, idle_workers;
	size_t running, run_slots;	/* steps holding a run slot; the limit */
};
void runtime_stats(struct runtime_stats *st);

/* Stops the workers and the poller once no session is left; waits at
 * most a few seconds. */
void runtime_stop(void);

#endif
