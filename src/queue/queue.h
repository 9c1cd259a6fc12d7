/* queue.h - youjud's queue runner: threads that send the outbound queue.
 *
 * queue_run_threads threads each claim due recipients (with a lease, so a
 * node that dies gives its work back when the lease ends), send the
 * recipients of one message and one domain in one SMTP transaction, and
 * record each answer: 2xx done, 5xx failed, 4xx retried with a backoff
 * doubling from minimal_backoff_time up to maximal_backoff_time, failed
 * once it is older than maximal_queue_lifetime. A batch still sending at
 * half its lease renews the claims it has left. A thread with nothing to
 * do sleeps queue_run_delay or until queue_wake(): mail queued by this
 * node, or by another node on the same database (the store's
 * store_queue_watch hook, PostgreSQL's NOTIFY). queue_run_threads 0: the
 * node sends nothing (others on the same database do).
 */
#ifndef YJ_QUEUE_H
#define YJ_QUEUE_H

#include <stdbool.h>

#include "base/config.h"
#include "base/err.h"
#include "store/store.h"

/* Sends the notices the queue owes senders, each as one message per
 * queued message and round: a bounce listing its recipients that failed
 * (NOTIFY permitting; never to the null sender), a success report for
 * NOTIFY=SUCCESS recipients a server without DSN accepted ("relayed"),
 * that were delivered to a mailbox here ("delivered") or that an alias
 * passed on to several addresses ("expanded"), and one
 * delay notice after delay_warning_time. A notice marks the rows it
 * reports on in its own transaction: after a crash it is neither lost
 * nor sent twice. The runner calls it after rounds that recorded such
 * answers and every few seconds; `youju queue bounce` at once. Returns
 * how many messages were looked at, or -1. */
int queue_report(struct store *st, const struct config *cfg, struct yj_err *err) YJ_MUST_CHECK;

/* The wake-up FIFO in the data dir (queue_fifo.c): the daemon opens it
 * (made if missing) and waits on it; `youju queue retry` pokes it so
 * that idle threads look at once. */
#define QUEUE_FIFO "queue-wake"
/* The daemon's end: an fd for queue_fifo_wait(), or -1. */
int queue_fifo_open(const char *data_dir, struct yj_err *err);
/* Waits up to timeout_ms for pokes; true if there were any. */
bool queue_fifo_wait(int fd, int timeout_ms);
/* The CLI's end: tells a running youjud to look at its queue now; does
 * nothing when none listens. */
void queue_poke(const char *data_dir);

/* cfg must outlive queue_stop(). */
int queue_start(const struct config *cfg, struct yj_err *err) YJ_MUST_CHECK;
/* New mail was queued: idle threads look now. */
void queue_wake(void);
/* Stops the threads after their current transaction, waiting a few
 * seconds at most. false: some are still busy (the caller must not tear
 * down the store or DNS under them; their claims are released at the
 * next start). */
bool queue_stop(void);

#endif
