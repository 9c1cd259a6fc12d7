/* store_maint.c - the store's background work for one data dir.
 *
 * One thread per data dir, started by store_start(), with its own
 * connection. Every STORE_POLL_MS it asks SQLite whether any other
 * connection committed (the driver's change channel; SQLite: PRAGMA
 * data_version, which costs no I/O); if so
 * it reads the new rows of `changes` and publishes those another process
 * made (this process published its own at COMMIT). When nothing else
 * commits it fills the search text index (store_text_index_some), and
 * under steady load a little of it now and then. Less often it prunes
 * old `changes` rows, expunge records and finished queue rows (after
 * queue_finished_retention), collects orphan blobs and tries to bring
 * the WAL file back to its limit.
 */
#include "store/store-private.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "base/util.h"

struct store_maint {
	struct store_maint *next;
	struct store *st;		/* the thread's own connection */
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stopping;
	int64_t last_seq;		/* the newest `changes` row seen */
	int64_t busy_ms;		/* when another connection last committed */
	int64_t next_fts_ms;		/* the next batch of the index under load */
	time_t next_prune, next_gc, next_checkpoint, next_expire;
};

static pthread_mutex_t store_maints_lock = PTHREAD_MUTEX_INITIALIZER;
static struct store_maint *store_maints;

/* ---- noticing other processes' changes ---- */

/* One page of `changes` rows after last_seq: the others' go to found.
 * 1 a full page (there may be more), 0 the last page, -1 error. */
static int
store_maint_page(struct store_maint *m, struct store_note_list *found, struct yj_err *err)
{
	static const char sql[] =
		"SELECT seq, account_id, mailbox_id, modseq, kind, origin FROM changes"
		" WHERE seq > ?1 ORDER BY seq LIMIT 500";
	struct store_q *stmt = store_stmt(m->st, sql, err);
	int64_t me = store_origin();
	struct store_change c;
	size_t rows = 0;
	int ret;

	if (stmt == NULL)
		return -1;
	store_bind_i64(stmt, 1, m->last_seq);
	while ((ret = store_row(m->st, stmt, "poll changes", err)) == 1) {
		rows++;
		m->last_seq = store_col_i64(stmt, 0);
		if (store_col_i64(stmt, 5) == me)
			continue;	/* published at its COMMIT */
		c.account_id = store_col_i64(stmt, 1);
		c.mailbox_id = store_col_i64(stmt, 2);
		c.modseq = (uint64_t)store_col_i64(stmt, 3);
		c.kind = (unsigned)store_col_i64(stmt, 4);
		store_note_append(found, &c);
	}
	return ret < 0 ? -1 : rows == 500;
}

static _Atomic int64_t store_writer_busy_ms;

void
store_writer_busy_note(void)
{
	store_writer_busy_ms = util_now_ms();
}

/* Publishes what other processes committed since the last poll. */
static int
store_maint_poll(struct store_maint *m, struct yj_err *err)
{
	struct store_note_list found = { 0 };
	int ret;

	if (m->st->drv->notices != NULL) {
		ret = m->st->drv->notices(m->st->db, &found, err);
	} else {
		if ((ret = m->st->drv->others_committed(m->st->db, err)) <= 0)
			return ret;
		m->busy_ms = util_now_ms();
		while ((ret = store_maint_page(m, &found, err)) == 1)
			;
	}
	store_note_list_publish(&found);
	if (found.queued)
		store_queue_heard();
	free(found.v);
	return ret;
}

/* Where polling starts: the newest row at start. */
static int
store_maint_init_seq(struct store_maint *m, struct yj_err *err)
{
	struct store_q *stmt = store_stmt(m->st, "SELECT coalesce(max(seq), 0) FROM changes", err);
	int ret;

	if (stmt == NULL)
		return -1;
	ret = store_row(m->st, stmt, "changes", err);
	if (ret == 1) {
		m->last_seq = store_col_i64(stmt, 0);
		store_reset(stmt);
	}
	return ret < 0 ? -1 : m->st->drv->others_committed(m->st->db, err);
}

/* ---- periodic work ---- */

/* Drops `changes` rows every poller has long read. */
static int
store_maint_prune(struct store_maint *m, time_t now, struct yj_err *err)
{
	struct store_q *stmt;

	if (store_begin(m->st, err) < 0)
		return -1;
	if ((stmt = store_stmt(m->st, "DELETE FROM changes WHERE created < ?1", err)) == NULL) {
		store_rollback(m->st);
		return -1;
	}
	store_bind_i64(stmt, 1, (int64_t)(now - STORE_CHANGES_KEEP));
	if (store_run(m->st, stmt, "prune changes", err) < 0) {
		store_rollback(m->st);
		return -1;
	}
	return store_commit(m->st, err);
}

/* ---- the search text index ----
 * Small batches (each holds the write lock a few tens of ms, which a
 * delivery then waits), as many as fit in a tick while the store is
 * quiet; under steady load one small one every STORE_FTS_SHARE_MS, a
 * percent or so of a core, so that the backlog still moves. */
#define STORE_FTS_BATCH_BYTES (64u << 10)	/* of messages */
#define STORE_FTS_SHARE_BYTES (8u << 10)
#define STORE_FTS_QUIET_MS 1000
#define STORE_FTS_SHARE_MS 5000
#define STORE_FTS_TICK_MS 230

static void
store_maint_fts(struct store_maint *m)
{
	int64_t now = util_now_ms(), until = now + STORE_FTS_TICK_MS;
	int64_t busy = m->busy_ms > store_writer_busy_ms ? m->busy_ms : store_writer_busy_ms;
	bool quiet = now - busy >= STORE_FTS_QUIET_MS;
	struct yj_err err;
	int ret;

	if (!quiet && now < m->next_fts_ms)
		return;
	m->next_fts_ms = now + STORE_FTS_SHARE_MS;
	do
		ret = store_text_index_some(m->st, quiet ? STORE_FTS_BATCH_BYTES
							 : STORE_FTS_SHARE_BYTES, &err);
	while (ret > 0 && quiet && util_now_ms() < until);
	if (ret < 0)
		log_warn("store: search index: %s", err.msg);
}

/* How often finished queue rows are looked for: a tenth of the
 * retention, within 1 s and STORE_PRUNE_EVERY, so that a row goes
 * soon after its time. */
static time_t
store_maint_expire_every(void)
{
	long every = store_queue_retention_get() / 10;

	return every < 1 ? 1 : every > STORE_PRUNE_EVERY ? STORE_PRUNE_EVERY : (time_t)every;
}

/* Removes the finished queue rows older than the retention, a batch at
 * a time (each its own transaction, so senders are not held up). */
static int
store_maint_expire_queue(struct store_maint *m, time_t now, struct yj_err *err)
{
	long keep = store_queue_retention_get();
	int n = STORE_QUEUE_EXPIRE_BATCH;
	long total = 0;

	for (int round = 0; keep > 0 && n == STORE_QUEUE_EXPIRE_BATCH && round < 10; round++) {
		if ((n = store_queue_expire(m->st, (int64_t)(now - keep), err)) < 0)
			return -1;
		total += n;
	}
	if (total > 0)
		log_info("store: finished queue entries removed n=%ld retention=%lds", total, keep);
	return 1;
}

static void
store_maint_tick(struct store_maint *m)
{
	time_t now = time(NULL);
	struct yj_err err;

	if (store_maint_poll(m, &err) < 0)
		log_warn("store: noticing changes: %s", err.msg);
	store_maint_fts(m);
	if (now >= m->next_checkpoint) {
		m->next_checkpoint = now + STORE_CHECKPOINT_EVERY;
		m->st->drv->upkeep(m->st->db);
	}
	if (now >= m->next_prune) {
		m->next_prune = now + STORE_PRUNE_EVERY;
		if (store_maint_prune(m, now, &err) < 0 ||
		    store_vanished_compact(m->st, (int64_t)(now - STORE_VANISHED_KEEP), &err) < 0)
			log_warn("store: pruning: %s", err.msg);
	}
	if (now >= m->next_expire) {
		m->next_expire = now + store_maint_expire_every();
		if (store_maint_expire_queue(m, now, &err) < 0)
			log_warn("store: expiring queue entries: %s", err.msg);
	}
	store_pool_trim();
	if (now >= m->next_gc) {
		m->next_gc = now + STORE_GC_EVERY;
		if (store_gc(m->st, STORE_GC_MIN_AGE, &err) < 0)
			log_warn("store: gc: %s", err.msg);
	}
}

static void *
store_maint_main(void *arg)
{
	struct store_maint *m = arg;
	struct timespec until;

	pthread_setname_np(pthread_self(), "yj-maint");
	pthread_mutex_lock(&m->lock);
	while (!m->stopping) {
		util_deadline(&until, CLOCK_REALTIME, STORE_POLL_MS);
		pthread_cond_timedwait(&m->wake, &m->lock, &until);
		if (m->stopping)
			break;
		pthread_mutex_unlock(&m->lock);
		store_maint_tick(m);
		pthread_mutex_lock(&m->lock);
	}
	pthread_mutex_unlock(&m->lock);
	return NULL;
}

/* ---- starting and stopping ---- */

static void
store_maint_free(struct store_maint *m)
{
	store_close(&m->st);
	pthread_mutex_destroy(&m->lock);
	pthread_cond_destroy(&m->wake);
	free(m);
}

/* Called with store_maints_lock held. */
static int
store_maint_new(const char *data_dir, struct yj_err *err)
{
	struct store_maint *m = calloc(1, sizeof(*m));
	time_t now = time(NULL);
	sigset_t all, old;
	int rc;

	if (m == NULL)
		log_fatal("out of memory");
	if (store_open(data_dir, &m->st, err) < 0 || store_maint_init_seq(m, err) < 0) {
		store_close(&m->st);
		free(m);
		return -1;
	}
	/* A driver with notifications starts listening now, so that
	 * nothing committed after store_start() returns is missed. */
	if (m->st->drv->notices != NULL && store_maint_poll(m, err) < 0) {
		store_close(&m->st);
		free(m);
		return -1;
	}
	pthread_mutex_init(&m->lock, NULL);
	pthread_cond_init(&m->wake, NULL);
	/* The first gc waits a while: the start after a crash runs its own. */
	m->next_gc = now + STORE_GC_EVERY;
	m->next_prune = now + STORE_PRUNE_EVERY;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&m->thread, NULL, store_maint_main, m);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		errno = rc;
		yj_err_errno(err, "store: cannot start the maintenance thread");
		store_maint_free(m);
		return -1;
	}
	m->next = store_maints;
	store_maints = m;
	return 1;
}

int
store_start(const char *data_dir, struct yj_err *err)
{
	struct store_maint *m;
	int ret = 1;

	pthread_mutex_lock(&store_maints_lock);
	for (m = store_maints; m != NULL; m = m->next) {
		if (strcmp(m->st->data_dir, data_dir) == 0)
			break;
	}
	if (m == NULL)
		ret = store_maint_new(data_dir, err);
	pthread_mutex_unlock(&store_maints_lock);
	return ret;
}

void
store_maint_stop_all(void)
{
	struct store_maint *list, *m;

	pthread_mutex_lock(&store_maints_lock);
	list = store_maints;
	store_maints = NULL;
	pthread_mutex_unlock(&store_maints_lock);
	while ((m = list) != NULL) {
		list = m->next;
		pthread_mutex_lock(&m->lock);
		m->stopping = true;
		pthread_cond_signal(&m->wake);
		pthread_mutex_unlock(&m->lock);
		pthread_join(m->thread, NULL);
		store_maint_free(m);
	}
}
