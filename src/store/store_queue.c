/* store_queue.c - claiming the outbound queue's recipients.
 *
 * A claim is a lease: claimed_by and lease_until on the row. Claiming
 * takes rows whose lease has passed (or never was), so a dead node's
 * work comes back once its leases run out; finishing a row requires the
 * claim to be the caller's still, so a node that was too slow cannot
 * undo another's work. With one write lock (SQLite) the claim's UPDATE
 * alone is enough; with row locks (PostgreSQL) the rows are picked FOR
 * UPDATE SKIP LOCKED, so that nodes claiming at once get disjoint rows
 * without waiting for each other.
 */
#include "store/store-private.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"

#define STORE_QUEUE_STR(x) #x
#define STORE_QUEUE_XSTR(x) STORE_QUEUE_STR(x)
#define STORE_QUEUE_COLUMNS \
	"id, message_id, blob_id, sender, recipient, domain, notify, orcpt, attempts, created"

/* The rows due and free, of the destination of the longest-waiting
 * one: a claim is one domain's, so one connection serves it. */
#define STORE_CLAIM_DUE \
	"status = 'queued' AND next_attempt <= ?3 AND lease_until <= ?3"
#define STORE_CLAIM_SQL(lock) \
	"UPDATE queue SET claimed_by = ?1, lease_until = ?2" \
	" WHERE id IN (SELECT id FROM queue WHERE " STORE_CLAIM_DUE \
	" AND domain = (SELECT domain FROM queue WHERE " STORE_CLAIM_DUE \
	" ORDER BY next_attempt, id LIMIT 1" lock ")" \
	" ORDER BY next_attempt, id LIMIT ?4" lock ")" \
	" RETURNING " STORE_QUEUE_COLUMNS
static const char store_claim_sql[] = STORE_CLAIM_SQL("");
static const char store_claim_skip_locked_sql[] = STORE_CLAIM_SQL(" FOR UPDATE SKIP LOCKED");

struct store_claimed {
	struct store_queue_item *v;
	size_t n;
};

static void
store_queue_read(struct store_q *stmt, void *out)
{
	struct store_queue_item *q = out;

	q->id = store_col_i64(stmt, 0);
	q->message_id = store_col_i64(stmt, 1);
	store_col_text(stmt, 2, q->blob_id, sizeof(q->blob_id));
	store_col_text(stmt, 3, q->sender, sizeof(q->sender));
	store_col_text(stmt, 4, q->recipient, sizeof(q->recipient));
	store_col_text(stmt, 5, q->domain, sizeof(q->domain));
	store_col_text(stmt, 6, q->notify, sizeof(q->notify));
	store_col_text(stmt, 7, q->orcpt, sizeof(q->orcpt));
	q->attempts = (long)store_col_i64(stmt, 8);
	q->created = store_col_i64(stmt, 9);
}

/* Inside the transaction: the claim, its rows kept in got. */
static int
store_queue_claim_rows(struct store *st, const char *node, int64_t now, long lease, size_t max,
		       struct store_claimed *got, struct yj_err *err)
{
	struct store_q *stmt = store_stmt(st, st->drv->row_locks ? store_claim_skip_locked_sql :
					  store_claim_sql, err);
	int ret;

	if (stmt == NULL)
		return -1;
	store_bind_text(stmt, 1, node);
	store_bind_i64(stmt, 2, now + lease);
	store_bind_i64(stmt, 3, now);
	store_bind_i64(stmt, 4, (int64_t)max);
	while ((ret = store_row(st, stmt, "claim queue", err)) == 1 && got->n < max)
		store_queue_read(stmt, &got->v[got->n++]);
	if (ret == 1)
		ret = store_run(st, stmt, "claim queue", err);	/* finish the UPDATE */
	return ret < 0 ? -1 : 1;
}

int
store_queue_claim(struct store *st, const char *node, int64_t now, long lease, size_t max,
		  store_queue_cb *cb, void *ctx, struct yj_err *err)
{
	struct store_claimed got = { 0 };
	int ret;

	if (node == NULL || node[0] == '\0' || strlen(node) > STORE_NODE_MAX || lease <= 0)
		return yj_err_set(err, "queue claim: bad node name or lease");
	if (max == 0)
		return 0;
	if (max > 1000)
		max = 1000;
	if ((got.v = calloc(max, sizeof(*got.v))) == NULL)
		log_fatal("out of memory");
	if (store_begin(st, err) < 0) {
		free(got.v);
		return -1;
	}
	ret = store_queue_claim_rows(st, node, now, lease, max, &got, err);
	if (ret < 0)
		store_rollback(st);
	else if (store_commit(st, err) < 0)
		ret = -1;
	/* Handed out only once the claim is durable. */
	for (size_t i = 0; ret == 1 && i < got.n; i++)
		cb(ctx, &got.v[i]);
	free(got.v);
	return ret < 0 ? -1 : (int)got.n;
}

/* ---- mail queued on other nodes ---- */

static _Atomic(store_queue_heard_fn *) store_queue_hook;

void
store_queue_watch(store_queue_heard_fn *fn)
{
	atomic_store(&store_queue_hook, fn);
}

void
store_queue_heard(void)
{
	store_queue_heard_fn *fn = atomic_load(&store_queue_hook);

	if (fn != NULL)
		fn();
}

int
store_queue_announce(struct store *st, size_t n_queued, struct yj_err *err)
{
	if (n_queued == 0 || st->drv->queue_announce == NULL)
		return 1;
	return store_exec(st, st->drv->queue_announce, err) < 0 ? -1 : 1;
}

/* Runs one statement that changes one row (if node's claim holds); a
 * row made due now is announced to the other nodes. */
static int
store_queue_finish(struct store *st, struct store_q *stmt, const char *what, bool due_now,
		   struct yj_err *err)
{
	if (store_begin(st, err) < 0)
		return -1;
	if (store_run(st, stmt, what, err) < 0) {
		store_rollback(st);
		return -1;
	}
	if (store_changes(st) == 0) {
		store_rollback(st);
		return 0;
	}
	if (store_queue_announce(st, due_now ? 1 : 0, err) < 0) {
		store_rollback(st);
		return -1;
	}
	return store_commit(st, err);
}

/* Deletes queue rows (one by id ?1, a node's claimed row when node is
 * set as ?2; or what sql picks with ?1) and, after the commit, the blobs
 * whose last reference went with them. Returns 1 (*n_r how many, if
 * n_r), 0 if no such row, -1. */
static int
store_queue_remove(struct store *st, const char *sql, int64_t id, const char *node,
		   const char *what, int64_t *n_r, struct yj_err *err)
{
	struct store_idlist dead = { 0 };
	struct store_q *stmt;
	int ret;

	if (store_begin(st, err) < 0)
		return -1;
	if ((stmt = store_stmt(st, sql, err)) == NULL) {
		store_rollback(st);
		return -1;
	}
	store_bind_i64(stmt, 1, id);
	if (node != NULL)
		store_bind_text(stmt, 2, node);
	ret = store_run(st, stmt, what, err);
	if (ret == 1 && n_r != NULL)
		*n_r = store_changes(st);
	if (ret == 1 && store_changes(st) == 0)
		ret = 0;
	/* The message's last reference may have gone with the row. */
	if (ret == 1)
		ret = store_blob_reap(st, &dead, err);
	if (ret <= 0) {
		store_rollback(st);
		store_idlist_free(&dead);
		return ret;
	}
	if (store_commit(st, err) < 0) {
		store_idlist_free(&dead);
		return -1;
	}
	store_blob_unlink_list(st, &dead);
	return 1;
}

/* Inside the writer's transaction: one runner's answer for a claimed
 * row. Returns 1, 0 if node's claim has lapsed (nothing changed), -1. */
int
store_queue_result_rows(struct store *st, const struct store_queue_result *r,
			struct store_idlist *dead, struct yj_err *err)
{
	struct store_q *stmt = store_stmt(st, r->sql, err);

	if (stmt == NULL)
		return -1;
	store_bind_i64(stmt, 1, r->id);
	store_bind_text(stmt, 2, r->node);
	if (r->n_args >= 3 && r->int3)
		store_bind_i64(stmt, 3, r->i3);
	else if (r->n_args >= 3)
		store_bind_text(stmt, 3, r->t3 != NULL ? r->t3 : "");
	if (r->n_args == 4)
		store_bind_text(stmt, 4, r->t4 != NULL ? r->t4 : "");
	if (store_run(st, stmt, r->what, err) < 0)
		return -1;
	if (store_changes(st) == 0)
		return 0;
	/* The message's last reference may have gone with the row. */
	return r->reap ? store_blob_reap(st, dead, err) : 1;
}

/* What each outcome does to node's claimed row (?1 id, ?2 node). */
static const struct {
	const char *sql;
	const char *what;
} store_queue_outcomes[] = {
	[STORE_QUEUE_DONE] = { "DELETE FROM queue WHERE id = ?1 AND claimed_by = ?2",
			       "queue done" },
	[STORE_QUEUE_DEFER] = { "UPDATE queue SET attempts = attempts + 1, next_attempt = ?3,"
				" last_error = ?4, claimed_by = '', lease_until = 0"
				" WHERE id = ?1 AND claimed_by = ?2", "queue defer" },
	[STORE_QUEUE_FAIL] = { "UPDATE queue SET attempts = attempts + 1,"
			       " status = 'failed', last_error = ?3, remote_mta = ?4,"
			       " claimed_by = '', lease_until = 0"
			       " WHERE id = ?1 AND claimed_by = ?2", "queue fail" },
	[STORE_QUEUE_SENT] = { "UPDATE queue SET attempts = attempts + 1,"
			       " status = 'sent', last_error = ?3, remote_mta = ?4,"
			       " claimed_by = '', lease_until = 0"
			       " WHERE id = ?1 AND claimed_by = ?2", "queue sent" },
	[STORE_QUEUE_RENEW] = { "UPDATE queue SET lease_until = ?3"
				" WHERE id = ?1 AND claimed_by = ?2", "queue renew" },
};

/* The writer's form of an answer (pointing into a). */
static void
store_queue_result_of(const char *node, const struct store_queue_answer *a,
		      struct store_queue_result *r)
{
	*r = (struct store_queue_result){ .sql = store_queue_outcomes[a->outcome].sql,
					  .what = store_queue_outcomes[a->outcome].what,
					  .id = a->id, .node = node, .n_args = 4,
					  .t3 = a->reply, .t4 = a->remote_mta };
	if (a->outcome == STORE_QUEUE_DONE) {
		r->n_args = 2;
		r->reap = true;
	} else if (a->outcome == STORE_QUEUE_DEFER || a->outcome == STORE_QUEUE_RENEW) {
		r->int3 = true;
		r->i3 = a->next_attempt;
		r->t4 = a->reply;
		r->n_args = a->outcome == STORE_QUEUE_RENEW ? 3 : 4;
	}
}

/* ---- answers in flight ---- */

struct store_queue_flight {
	size_t n, max;
	struct {
		int64_t id;
		struct store_pending *p;
	} v[];
};

struct store_queue_flight *
store_queue_flight_new(size_t max)
{
	struct store_queue_flight *f = calloc(1, sizeof(*f) + max * sizeof(f->v[0]));

	if (f == NULL)
		log_fatal("out of memory");
	f->max = max;
	return f;
}

int
store_queue_post(struct store *st, struct store_queue_flight *f, const char *node,
		 const struct store_queue_answer *a, struct yj_err *err)
{
	struct store_queue_result r;
	struct store_pending *p;

	if (f->n == f->max)
		return yj_err_set(err, "queue: %zu answers in flight already", f->max);
	store_queue_result_of(node, a, &r);
	if ((p = store_queue_result_post(st, &r, err)) == NULL)
		return -1;
	f->v[f->n].id = a->id;
	f->v[f->n].p = p;
	f->n++;
	return 1;
}

void
store_queue_flight_land(struct store *st, struct store_queue_flight *f,
			store_queue_landed_cb *cb, void *ctx)
{
	for (size_t i = 0; i < f->n; i++) {
		struct yj_err err = { 0 };
		int ret = store_queue_result_wait(st, f->v[i].p, &err);

		if (cb != NULL)
			cb(ctx, f->v[i].id, ret, &err);
	}
	f->n = 0;
}

size_t
store_queue_flight_count(const struct store_queue_flight *f)
{
	return f->n;
}

void
store_queue_flight_free(struct store_queue_flight *f)
{
	free(f);
}
/* ---- what the sender reads and what the CLI shows ---- */

static void
store_queue_msg_read(struct store_q *stmt, void *out)
{
	struct store_queue_message *m = out;
	const void *hdr;
	size_t len = 0;

	store_col_text(stmt, 0, m->blob_id, sizeof(m->blob_id));
	store_col_text(stmt, 1, m->sender, sizeof(m->sender));
	store_col_text(stmt, 2, m->envid, sizeof(m->envid));
	store_col_text(stmt, 3, m->ret, sizeof(m->ret));
	store_col_text(stmt, 4, m->body, sizeof(m->body));
	m->smtputf8 = store_col_i64(stmt, 5) != 0;
	hdr = store_col_blob(stmt, 6, &len);
	if (len > STORE_QUEUE_HEADER_MAX)
		len = 0;	/* the schema's writer never stores more */
	if ((m->header = malloc(len + 1)) == NULL)
		log_fatal("out of memory");
	if (len > 0)
		memcpy(m->header, hdr, len);
	m->header[len] = '\0';
	m->header_len = len;
	m->created = store_col_i64(stmt, 7);
	m->warned = store_col_i64(stmt, 8) != 0;
}

int
store_queue_message_get(struct store *st, int64_t message_id, struct store_queue_message *m,
			struct yj_err *err)
{
	static const char sql[] =
		"SELECT blob_id, sender, envid, ret, body, smtputf8, header, created, warned"
		" FROM queue_messages WHERE id = ?1";
	struct store_q *stmt = store_stmt(st, sql, err);

	memset(m, 0, sizeof(*m));
	if (stmt == NULL)
		return -1;
	store_bind_i64(stmt, 1, message_id);
	return store_one(st, stmt, "queue message", store_queue_msg_read, m, err);
}

void
store_queue_message_free(struct store_queue_message *m)
{
	free(m->header);
	m->header = NULL;
}

int
store_queue_open_blob(struct store *st, const struct store_queue_message *m, int *fd_r,
		      struct yj_err *err)
{
	return store_blob_open(st, m->blob_id, fd_r, err);
}

/* Runs stmt (bound to ?1 = id) and checks it changed one row. */
static int
store_queue_settle_one(struct store *st, const char *sql, int64_t id, struct yj_err *err)
{
	struct store_q *stmt = store_stmt(st, sql, err);

	if (stmt == NULL)
		return -1;
	store_bind_i64(stmt, 1, id);
	if (store_run(st, stmt, "queue settle", err) < 0)
		return -1;
	return store_changes(st) == 1 ? 1 : 0;
}

int
store_queue_settle_rows(struct store *st, const struct store_queue_settle *s,
			struct yj_err *err)
{
	int ret = 1;

	for (size_t i = 0; i < s->n_notified && ret > 0; i++)
		ret = store_queue_settle_one(st, "UPDATE queue SET notified = 1 WHERE id = ?1"
					     " AND notified = 0 AND status IN ('failed', 'sent',"
					     " 'delivered', 'expanded')",
					     s->notified[i], err);
	if (ret > 0 && s->warned != 0)
		ret = store_queue_settle_one(st, "UPDATE queue_messages SET warned = 1"
					     " WHERE id = ?1 AND warned = 0", s->warned, err);
	return ret;
}

int
store_queue_settle(struct store *st, const struct store_queue_settle *s, struct yj_err *err)
{
	int ret;

	if (store_begin(st, err) < 0)
		return -1;
	ret = store_queue_settle_rows(st, s, err);
	if (ret <= 0) {
		store_rollback(st);
		return ret;
	}
	return store_commit(st, err);
}

struct store_queue_ids {
	int64_t *v;
	size_t n, max;
};

int
store_queue_reports(struct store *st, int64_t warn_before, size_t max, store_queue_id_cb *cb,
		    void *ctx, struct yj_err *err)
{
	static const char sql[] =
		"SELECT DISTINCT q.message_id FROM queue q"
		" JOIN queue_messages m ON m.id = q.message_id"
		" WHERE (q.status = 'failed' AND q.notified = 0)"
		" OR q.status IN ('sent', 'delivered', 'expanded')"
		" OR (?1 <> 0 AND q.status = 'queued' AND q.attempts > 0 AND m.warned = 0"
		" AND m.created <= ?1) ORDER BY q.message_id LIMIT ?2";
	struct store_queue_ids ids = { .max = max };
	struct store_q *stmt;
	int ret;

	if (max == 0)
		return 0;
	if ((stmt = store_stmt(st, sql, err)) == NULL)
		return -1;
	if ((ids.v = calloc(max, sizeof(*ids.v))) == NULL)
		log_fatal("out of memory");
	store_bind_i64(stmt, 1, warn_before);
	store_bind_i64(stmt, 2, (int64_t)max);
	while ((ret = store_row(st, stmt, "queue reports", err)) == 1 && ids.n < ids.max)
		ids.v[ids.n++] = store_col_i64(stmt, 0);
	if (ret == 1)
		store_reset(stmt);
	/* Called after the statement is done: cb may use the store. */
	for (size_t i = 0; ret >= 0 && i < ids.n; i++)
		cb(ctx, ids.v[i]);
	free(ids.v);
	return ret < 0 ? -1 : (int)ids.n;
}

static void
store_queue_entry_read(struct store_q *stmt, void *out)
{
	struct store_queue_entry *e = out;

	store_queue_read(stmt, &e->item);
	store_col_text(stmt, 10, e->status, sizeof(e->status));
	e->next_attempt = store_col_i64(stmt, 11);
	store_col_text(stmt, 12, e->last_error, sizeof(e->last_error));
	store_col_text(stmt, 13, e->claimed_by, sizeof(e->claimed_by));
	e->notified = store_col_i64(stmt, 14) != 0;
	store_col_text(stmt, 15, e->remote_mta, sizeof(e->remote_mta));
}

/* Runs a listing of whole rows (STORE_QUEUE_ENTRY_COLUMNS), ?1 bound
 * to arg when arg is not 0. */
static int
store_queue_entries(struct store *st, const char *sql, int64_t arg, store_queue_entry_cb *cb,
		    void *ctx, struct yj_err *err)
{
	struct store_q *stmt = store_stmt(st, sql, err);
	struct store_queue_entry e;
	int ret;

	if (stmt == NULL)
		return -1;
	if (arg != 0)
		store_bind_i64(stmt, 1, arg);
	while ((ret = store_row(st, stmt, "queue list", err)) == 1) {
		memset(&e, 0, sizeof(e));
		store_queue_entry_read(stmt, &e);
		cb(ctx, &e);
	}
	return ret < 0 ? -1 : 1;
}

#define STORE_QUEUE_ENTRY_COLUMNS \
	STORE_QUEUE_COLUMNS ", status, next_attempt, last_error, claimed_by, notified, remote_mta"

int
store_queue_list(struct store *st, store_queue_entry_cb *cb, void *ctx, struct yj_err *err)
{
	return store_queue_entries(st, "SELECT " STORE_QUEUE_ENTRY_COLUMNS
				   " FROM queue ORDER BY message_id, id", 0, cb, ctx, err);
}

int
store_queue_list_message(struct store *st, int64_t message_id, store_queue_entry_cb *cb,
			 void *ctx, struct yj_err *err)
{
	if (message_id <= 0)
		return 1;
	return store_queue_entries(st, "SELECT " STORE_QUEUE_ENTRY_COLUMNS
				   " FROM queue WHERE message_id = ?1 ORDER BY id", message_id, cb,
				   ctx, err);
}

int
store_queue_set(struct store *st, int64_t id, enum store_queue_op op, int64_t now,
		struct yj_err *err)
{
	/* A retried failure that fails again is reported again; a row
	 * whose success report is pending is never sent (again). */
	static const char retry_sql[] =
		"UPDATE queue SET next_attempt = ?2, status = 'queued', notified = 0"
		" WHERE (id = ?1 OR ?1 = 0)"
		" AND status NOT IN ('held', 'sent', 'delivered', 'expanded')";
	/* Hold and bounce leave a row being sent alone (its claim's lease
	 * runs): the attempt's answer would undo them, and a bounce would
	 * tell the sender of a failure while the message is delivered. */
	static const char hold_sql[] =
		"UPDATE queue SET status = 'held' WHERE id = ?1 AND status = 'queued'"
		" AND lease_until <= ?2";
	static const char release_sql[] =
		"UPDATE queue SET status = 'queued', next_attempt = ?2"
		" WHERE id = ?1 AND status = 'held'";
	static const char bounce_sql[] =
		"UPDATE queue SET status = 'failed', last_error = '554 5.3.0 returned by the"
		" administrator', next_attempt = ?2 WHERE id = ?1"
		" AND status NOT IN ('failed', 'sent', 'delivered', 'expanded') AND lease_until <= ?2";
	const char *sql = op == STORE_QUEUE_RETRY ? retry_sql :
			  op == STORE_QUEUE_HOLD ? hold_sql :
			  op == STORE_QUEUE_BOUNCE ? bounce_sql : release_sql;
	struct store_q *stmt = store_stmt(st, sql, err);

	if (stmt == NULL)
		return -1;
	store_bind_i64(stmt, 1, id);
	store_bind_i64(stmt, 2, now);
	return store_queue_finish(st, stmt, "queue change",
				  op == STORE_QUEUE_RETRY || op == STORE_QUEUE_RELEASE, err);
}

int
store_queue_delete(struct store *st, int64_t id, struct yj_err *err)
{
	return store_queue_remove(st, "DELETE FROM queue WHERE id = ?1", id, NULL, "queue delete",
				  NULL, err);
}

static atomic_long store_queue_retention;

void
store_set_queue_retention(long seconds)
{
	atomic_store(&store_queue_retention, seconds);
}

long
store_queue_retention_get(void)
{
	return atomic_load(&store_queue_retention);
}

int
store_queue_expire(struct store *st, int64_t before, struct yj_err *err)
{
	/* Unclaimed only: a row a runner holds is not finished, whatever
	 * it says now. Success rows are normally gone with their report;
	 * one whose removal failed goes here. */
	static const char sql[] =
		"DELETE FROM queue WHERE id IN (SELECT id FROM queue WHERE notified = 1"
		" AND status IN ('failed', 'sent', 'delivered', 'expanded')"
		" AND next_attempt < ?1 AND claimed_by = '' ORDER BY id LIMIT "
		STORE_QUEUE_XSTR(STORE_QUEUE_EXPIRE_BATCH) ")";
	int64_t n = 0;
	int ret = store_queue_remove(st, sql, before, NULL, "queue expire", &n, err);

	return ret < 0 ? -1 : (int)n;
}

int
store_queue_release_node(struct store *st, const char *node, struct yj_err *err)
{
	static const char sql[] =
		"UPDATE queue SET claimed_by = '', lease_until = 0 WHERE claimed_by = ?1";
	struct store_q *stmt;
	int64_t n;

	if (store_begin(st, err) < 0)
		return -1;
	if ((stmt = store_stmt(st, sql, err)) == NULL) {
		store_rollback(st);
		return -1;
	}
	store_bind_text(stmt, 1, node);
	if (store_run(st, stmt, "queue release", err) < 0) {
		store_rollback(st);
		return -1;
	}
	n = store_changes(st);
	if (store_commit(st, err) < 0)
		return -1;
	return (int)n;
}

int
store_queue_release(struct store *st, int64_t id, const char *node, struct yj_err *err)
{
	static const char sql[] =
		"UPDATE queue SET claimed_by = '', lease_until = 0 WHERE id = ?1 AND claimed_by = ?2";
	struct store_q *stmt = store_stmt(st, sql, err);

	if (stmt == NULL)
		return -1;
	store_bind_i64(stmt, 1, id);
	store_bind_text(stmt, 2, node);
	return store_queue_finish(st, stmt, "queue release", true, err);
}
