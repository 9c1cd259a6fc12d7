/* store_deliver.c - delivery with group commit.
 *
 * Making a message durable costs an fsync of its blob, of the blob's
 * directory and of the database log. The first is done by the session
 * thread that wrote the blob, so sessions do it in parallel. The other
 * two are shared: one writer thread per data dir takes every delivery
 * waiting at that moment, fsyncs each blob directory they use once, and
 * commits all their rows in one transaction. While it commits, the next
 * batch gathers, so the more sessions deliver at once, the more each
 * fsync carries.
 *
 * A delivery that fails inside a batch (its mailbox is gone, say) is
 * rolled back to its own savepoint and does not hurt the others.
 *
 * The queue runner's answers for its recipients ride the same batches
 * (store_queue_result_post): an answer is a row change, as cheap as a
 * delivery's, so waiting for an fsync of its own each would make the
 * runner threads take turns at the disk.
 *
 * So do the other writes of a session that a client waits on (flag
 * changes, expunges: store_write_run): each runs behind its own
 * savepoint in the next batch, so many sessions' changes share one
 * fsync instead of queueing for one each.
 */
#include "store/store-private.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/block.h"
#include "base/log.h"
#include "base/util.h"

#define STORE_BATCH_DIRS 8		/* distinct directories remembered per batch */

/* One store_deliver(), queue result or store_write_run() call waiting
 * for the writer. It holds its own copy of the delivery or result (an
 * op brings its own arg), so that a caller that stops waiting (timeout)
 * leaves nothing of its own in the writer's hands: whoever is last,
 * the caller or (if abandoned) the writer, frees it. */
struct store_job {
	const struct store_delivery *d;	/* = &copy; NULL for a queue result or op */
	struct store_delivery copy;
	struct store_queue_result q;	/* a queue result: strings its own */
	struct store_write_op op;	/* another write, if op.apply is set */
	int op_ret;			/* what op.apply returned */
	struct store_idlist dead;	/* blobs q freed, unlinked after COMMIT */
	bool lapsed;			/* q found the claim gone */
	char blob_id[STORE_BLOB_ID_MAX];
	uint64_t blob_size;
	int result;			/* 0 pending, 1 committed, -1 failed */
	bool ambiguous;			/* COMMIT failed: it may still be on disk */
	struct yj_err err;
	/* The hand-back between the writer and the caller has a lock of its
	 * own: a batch's callers wake and go on in parallel rather than
	 * queueing for the writer's lock one after the other. */
	pthread_mutex_t lock;		/* guards the three below */
	bool done;
	bool taken;			/* in the writer's current batch */
	bool abandoned;			/* the caller gave up waiting: the writer frees it */
	pthread_cond_t cond;
	struct store_job *next;
};

unsigned store_writer_timeout_ms = STORE_WRITER_TIMEOUT_S * 1000;

struct store_writer {
	struct store_writer *next;
	struct store *st;		/* the writer's own connection */
	pthread_t thread;
	pthread_mutex_t lock;		/* guards the queue, wake and idle */
	pthread_cond_t wake;		/* jobs arrived, or stop */
	pthread_cond_t idle;		/* waiters dropped to 0 */
	struct store_job *head, **tail;
	atomic_uint waiters;		/* callers between enter and leave */
	atomic_bool stopping;
	/* The newest hour directory whose entry in blobs/ is known to be
	 * durable: only the writer thread touches it. */
	char parent_synced[STORE_HOUR_LEN + 1];
	/* Commits not yet on disk (write_op.deferred_sync), since when
	 * (monotonic ms): only the writer thread touches them. */
	bool unsynced;
	int64_t unsynced_since;
};

/* The writers, one per data dir (a daemon has one; tests make many).
 * Every change a session waits on looks its writer up: a read lock, so
 * that those lookups never wait for each other. */
static pthread_rwlock_t store_writers_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct store_writer *store_writers;

/* ---- jobs ---- */

static char *
store_strdup_or_null(const char *s)
{
	char *p;

	if (s == NULL)
		return NULL;
	if ((p = strdup(s)) == NULL)
		log_fatal("out of memory");
	return p;
}

static void *
store_calloc(size_t n, size_t size)
{
	void *p = calloc(n > 0 ? n : 1, size);

	if (p == NULL)
		log_fatal("out of memory");
	return p;
}

static struct store_relay_dsn *
store_dsn_copy(const struct store_delivery *d)
{
	struct store_relay_dsn *dsn;

	if (d->relay_dsn == NULL)
		return NULL;
	dsn = store_calloc(d->n_relay, sizeof(*dsn));
	for (size_t i = 0; i < d->n_relay; i++) {
		dsn[i].notify = store_strdup_or_null(d->relay_dsn[i].notify);
		dsn[i].orcpt = store_strdup_or_null(d->relay_dsn[i].orcpt);
	}
	return dsn;
}

static const char *const *
store_strv_copy(const char *const *v, size_t n)
{
	char **copy = store_calloc(n, sizeof(*copy));

	for (size_t i = 0; i < n; i++)
		copy[i] = store_strdup_or_null(v[i]);
	return (const char *const *)copy;
}

static void
store_strv_free(const char *const *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free((char *)v[i]);
	free((void *)v);
}

static struct store_notice *
store_notices_copy(const struct store_delivery *d)
{
	struct store_notice *v;

	if (d->notices == NULL)
		return NULL;
	v = store_calloc(d->n_notices, sizeof(*v));
	for (size_t i = 0; i < d->n_notices; i++) {
		v[i].recipient = store_strdup_or_null(d->notices[i].recipient);
		v[i].orcpt = store_strdup_or_null(d->notices[i].orcpt);
		v[i].action = store_strdup_or_null(d->notices[i].action);
	}
	return v;
}

static void
store_notices_free(const struct store_notice *v, size_t n)
{
	for (size_t i = 0; v != NULL && i < n; i++) {
		free((char *)v[i].recipient);
		free((char *)v[i].orcpt);
		free((char *)v[i].action);
	}
	free((void *)v);
}

static struct store_queue_settle *
store_settle_copy(const struct store_queue_settle *s)
{
	struct store_queue_settle *copy;
	int64_t *ids;

	if (s == NULL)
		return NULL;
	copy = store_calloc(1, sizeof(*copy));
	ids = store_calloc(s->n_notified, sizeof(*ids));
	if (s->n_notified > 0)
		memcpy(ids, s->notified, s->n_notified * sizeof(*ids));
	*copy = *s;
	copy->notified = ids;
	return copy;
}

static void
store_settle_free(const struct store_queue_settle *s)
{
	if (s == NULL)
		return;
	free((void *)s->notified);
	free((void *)s);
}

/* The job's hand-back lock and its condition (timed waits on
 * CLOCK_MONOTONIC); store_job_sync_destroy undoes them. */
static void
store_job_sync_init(struct store_job *job)
{
	pthread_condattr_t attr;

	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_mutex_init(&job->lock, NULL);
	pthread_cond_init(&job->cond, &attr);
	pthread_condattr_destroy(&attr);
}

static void
store_job_sync_destroy(struct store_job *job)
{
	pthread_mutex_destroy(&job->lock);
	pthread_cond_destroy(&job->cond);
}

/* A job with its own copy of d (the blob itself stays the caller's). */
static struct store_job *
store_job_new(const struct store_delivery *d)
{
	struct store_job *job = store_calloc(1, sizeof(*job));
	struct store_rcpt *rcpts = store_calloc(d->n_rcpts, sizeof(*rcpts));

	for (size_t i = 0; i < d->n_rcpts; i++) {
		rcpts[i].account_id = d->rcpts[i].account_id;
		rcpts[i].mailbox = store_strdup_or_null(d->rcpts[i].mailbox);
		rcpts[i].prefix = store_strdup_or_null(d->rcpts[i].prefix);
	}
	job->copy = *d;
	job->copy.blob = NULL;
	job->copy.rcpts = rcpts;
	job->copy.relay_rcpts = store_strv_copy(d->relay_rcpts, d->n_relay);
	job->copy.failed_rcpts = store_strv_copy(d->failed_rcpts, d->n_failed);
	job->copy.failed_reply = store_strdup_or_null(d->failed_reply);
	job->copy.settle = store_settle_copy(d->settle);
	job->copy.sender = store_strdup_or_null(d->sender);
	job->copy.envid = store_strdup_or_null(d->envid);
	job->copy.ret = store_strdup_or_null(d->ret);
	job->copy.body = store_strdup_or_null(d->body);
	job->copy.queue_header = store_strdup_or_null(d->queue_header);
	job->copy.relay_dsn = store_dsn_copy(d);
	job->copy.notices = store_notices_copy(d);
	if (d->dmarc_policy != NULL && d->dmarc_row != NULL) {
		struct store_dmarc_policy *pol = store_calloc(1, sizeof(*pol));
		struct store_dmarc_row *row = store_calloc(1, sizeof(*row));

		*pol = *d->dmarc_policy;
		*row = *d->dmarc_row;
		job->copy.dmarc_policy = pol;
		job->copy.dmarc_row = row;
	} else {
		job->copy.dmarc_policy = NULL;
		job->copy.dmarc_row = NULL;
	}
	/* Only local copies use it: nothing to write for relay alone. */
	job->copy.index = d->index != NULL && d->n_rcpts > 0 ? store_index_dup(d->index) : NULL;
	job->d = &job->copy;
	snprintf(job->blob_id, sizeof(job->blob_id), "%s", d->blob->id);
	job->blob_size = d->blob->size;
	store_job_sync_init(job);
	return job;
}

/* A job with its own copy of a queue result. */
static struct store_job *
store_job_new_result(const struct store_queue_result *r)
{
	struct store_job *job = store_calloc(1, sizeof(*job));

	job->q = *r;
	job->q.node = store_strdup_or_null(r->node);
	job->q.t3 = store_strdup_or_null(r->t3);
	job->q.t4 = store_strdup_or_null(r->t4);
	store_job_sync_init(job);
	return job;
}

/* A job for another write: op (and its arg) is the job's from now. */
static struct store_job *
store_job_new_op(const struct store_write_op *op)
{
	struct store_job *job = store_calloc(1, sizeof(*job));

	job->op = *op;
	store_job_sync_init(job);
	return job;
}

static void
store_job_free_result(struct store_job *job)
{
	/* Still here only if the caller did not take it back. */
	if (job->op.release != NULL && job->op.arg != NULL)
		job->op.release(job->op.arg);
	free((char *)job->q.node);
	free((char *)job->q.t3);
	free((char *)job->q.t4);
	store_idlist_free(&job->dead);
	store_job_sync_destroy(job);
	free(job);
}

static void
store_job_free(struct store_job *job)
{
	struct store_rcpt *rcpts = (struct store_rcpt *)job->copy.rcpts;

	if (job->d == NULL) {
		store_job_free_result(job);
		return;
	}
	for (size_t i = 0; i < job->copy.n_rcpts; i++) {
		free((char *)rcpts[i].mailbox);
		free((char *)rcpts[i].prefix);
	}
	free(rcpts);
	store_strv_free(job->copy.relay_rcpts, job->copy.n_relay);
	store_strv_free(job->copy.failed_rcpts, job->copy.n_failed);
	free((char *)job->copy.failed_reply);
	store_settle_free(job->copy.settle);
	store_notices_free(job->copy.notices, job->copy.n_notices);
	free((char *)job->copy.sender);
	free((char *)job->copy.envid);
	free((char *)job->copy.ret);
	free((char *)job->copy.body);
	free((char *)job->copy.queue_header);
	free((void *)job->copy.dmarc_policy);
	free((void *)job->copy.dmarc_row);
	if (job->copy.index != NULL) {
		store_index_free((struct store_index *)job->copy.index);
		free((void *)job->copy.index);
	}
	if (job->copy.relay_dsn != NULL) {
		for (size_t i = 0; i < job->copy.n_relay; i++) {
			free((char *)job->copy.relay_dsn[i].notify);
			free((char *)job->copy.relay_dsn[i].orcpt);
		}
		free((void *)job->copy.relay_dsn);
	}
	store_job_sync_destroy(job);
	free(job);
}

/* ---- the writer thread: one delivery ---- */

static int
store_savepoint(struct store *st, const char *sql, struct yj_err *err)
{
	struct store_q *stmt = store_stmt(st, sql, err);

	return stmt != NULL ? store_run(st, stmt, "savepoint", err) : -1;
}

/* The staged file's bytes, all size of them, in a new buffer. */
static unsigned char *
store_blob_slurp(struct store *st, const char *id, uint64_t size, struct yj_err *err)
{
	char path[STORE_PATH_MAX];
	unsigned char *data = malloc(size > 0 ? size : 1);
	ssize_t n;
	size_t got = 0;
	int fd;

	if (data == NULL)
		log_fatal("out of memory");
	if (store_blob_path(st, id, path, sizeof(path)) < 0 ||
	    (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		yj_err_errno(err, "open blob %s", id);
		free(data);
		return NULL;
	}
	while (got < size &&
	       ((n = read(fd, data + got, size - got)) > 0 || (n < 0 && errno == EINTR)))
		got += n > 0 ? (size_t)n : 0;
	close(fd);
	if (got != size) {
		yj_err_set(err, "blob %s: read %zu of %llu bytes", id, got,
			   (unsigned long long)size);
		free(data);
		return NULL;
	}
	return data;
}

/* Drivers that keep contents in the database: the staged file's bytes
 * go into blob_data with the rest of the delivery. */
static int
store_insert_blob_data(struct store *st, const char *id, uint64_t size, struct yj_err *err)
{
	static const char sql[] = "INSERT INTO blob_data (id, data) VALUES (?1, ?2)";
	struct store_q *stmt;
	unsigned char *data;
	int ret;

	if ((data = store_blob_slurp(st, id, size, err)) == NULL)
		return -1;
	if ((stmt = store_stmt(st, sql, err)) == NULL) {
		free(data);
		return -1;
	}
	store_bind_text(stmt, 1, id);
	store_bind_blob(stmt, 2, data, size);
	ret = store_run(st, stmt, "insert blob data", err);
	free(data);
	return ret;
}

int
store_blob_insert_row(struct store *st, const char *id, uint64_t size, int64_t now,
		      struct yj_err *err)
{
	static const char sql[] =
		"INSERT INTO blobs (id, size, refcount, created) VALUES (?1, ?2, 0, ?3)";
	struct store_q *stmt = store_stmt(st, sql, err);

	if (stmt == NULL)
		return -1;
	store_bind_text(stmt, 1, id);
	store_bind_i64(stmt, 2, (int64_t)size);
	store_bind_i64(stmt, 3, now);
	if (store_run(st, stmt, "insert blob", err) < 0)
		return -1;
	return st->drv->blobs_in_db ? store_insert_blob_data(st, id, size, err) : 1;
}

/* Takes the next UID and MODSEQ of the mailbox: the row is updated in
 * this transaction, so no other delivery can get the same ones. */
static int
store_next_uid(struct store *st, const struct store_rcpt *rcpt, int64_t *mailbox_id_r,
	       int64_t *uid_r, int64_t *modseq_r, struct yj_err *err)
{
	static const char by_name[] =
		"UPDATE mailboxes SET uidnext = uidnext + 1, highestmodseq = highestmodseq + 1"
		" WHERE account_id = ?1 AND name = ?2"
		" RETURNING id, uidnext - 1, highestmodseq";
	/* A special-use attribute: the mailbox that has it, else INBOX. */
	static const char by_use[] =
		"UPDATE mailboxes SET uidnext = uidnext + 1, highestmodseq = highestmodseq + 1"
		" WHERE id = (SELECT id FROM mailboxes WHERE account_id = ?1"
		" AND (special_use = ?2 OR name = 'INBOX') ORDER BY name = 'INBOX', id LIMIT 1)"
		" RETURNING id, uidnext - 1, highestmodseq";
	const char *name = rcpt->mailbox != NULL ? store_mailbox_canon(rcpt->mailbox) : STORE_INBOX;
	struct store_q *stmt = store_stmt(st, name[0] == '\\' ? by_use : by_name, err);
	int ret;

	if (stmt == NULL)
		return -1;
	store_bind_i64(stmt, 1, rcpt->account_id);
	store_bind_text(stmt, 2, name);
	ret = store_row(st, stmt, "allocate uid", err);
	if (ret == 0)
		return yj_err_set(err, "mailbox %s of account %lld does not exist", name,
				  (long long)rcpt->account_id);
	if (ret < 0)
		return -1;
	*mailbox_id_r = store_col_i64(stmt, 0);
	*uid_r = store_col_i64(stmt, 1);
	*modseq_r = store_col_i64(stmt, 2);
	if (store_run(st, stmt, "allocate uid", err) < 0 ||
	    store_change_record(st, rcpt->account_id, *mailbox_id_r, (uint64_t)*modseq_r,
				STORE_CHANGE_APPEND, err) < 0)
		return -1;
	/* UIDs are 32 bits in IMAP; a mailbox that ran out needs a new
	 * UIDVALIDITY, which is not done here. */
	if (*uid_r > UINT32_MAX)
		return yj_err_set(err, "mailbox %s has run out of UIDs", name);
	return 1;
}

static int
store_insert_message(struct store *st, const struct store_job *job,
		     const struct store_rcpt *rcpt, int64_t now, struct yj_err *err)
{
	static const char sql[] =
		"INSERT INTO messages (mailbox_id, uid, modseq, flags, internal_date, size,"
		" blob_id, prefix, thread_id) VALUES (?1, ?2, ?3, 0, ?4, ?5, ?6, ?7, ?8)";
	const char *prefix = rcpt->prefix != NULL ? rcpt->prefix : "";
	size_t prefix_len = strlen(prefix);
	int64_t mailbox_id = 0, uid = 0, modseq = 0, thread = 0;
	struct store_q *stmt;

	if (store_next_uid(st, rcpt, &mailbox_id, &uid, &modseq, err) < 0 ||
	    store_thread_assign(st, rcpt->account_id, job->d->thread_keys,
				job->d->thread_keys_len, &thread, err) < 0 ||
	    (stmt = store_stmt(st, sql, err)) == NULL)
		return -1;
	store_bind_i64(stmt, 1, mailbox_id);
	store_bind_i64(stmt, 2, uid);
	store_bind_i64(stmt, 3, modseq);
	/* No date given: the time of delivery, which is what it means. */
	store_bind_i64(stmt, 4, job->d->internal_date > 0 ? job->d->internal_date : now);
	store_bind_i64(stmt, 5, (int64_t)(job->blob_size + prefix_len));
	store_bind_text(stmt, 6, job->blob_id);
	store_bind_blob(stmt, 7, prefix, prefix_len);
	store_bind_i64(stmt, 8, thread);
	return store_run(st, stmt, "insert message", err);
}

static const char *
store_or_empty(const char *s)
{
	return s != NULL ? s : "";
}

/* The per-message row of the queue; *id_r its id. */
static int
store_insert_queue_message(struct store *st, const struct store_job *job, const char *sender,
			   int64_t now, int64_t *id_r, struct yj_err *err)
{
	static const char sql[] =
		"INSERT INTO queue_messages (blob_id, sender, envid, ret, body, smtputf8, header,"
		" created) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING id";
	const struct store_delivery *d = job->d;
	const char *header = store_or_empty(d->queue_header);
	struct store_q *stmt = store_stmt(st, sql, err);

	if (stmt == NULL)
		return -1;
	store_bind_text(stmt, 1, job->blob_id);
	store_bind_text(stmt, 2, sender);
	store_bind_text(stmt, 3, store_or_empty(d->envid));
	store_bind_text(stmt, 4, store_or_empty(d->ret));
	store_bind_text(stmt, 5, store_or_empty(d->body));
	store_bind_i64(stmt, 6, d->smtputf8 ? 1 : 0);
	store_bind_blob(stmt, 7, header, strlen(header));
	store_bind_i64(stmt, 8, now);
	return store_insert_id(st, stmt, "queue message", id_r, err);
}

/* What a recipient row starts as: to be sent (status NULL: queued), or
 * failed already, or delivered here with a report owed. */
struct store_queue_row {
	const char *rcpt;
	const struct store_relay_dsn *dsn;	/* NULL: none */
	const char *status;			/* NULL: "queued" */
	const char *reply;			/* NULL: none */
};

/* One recipient row of the queue. */
static int
store_insert_queue(struct store *st, const struct store_job *job, const char *sender,
		   const struct store_queue_row *row, int64_t message_id, int64_t now,
		   struct yj_err *err)
{
	static const char sql[] =
		"INSERT INTO queue (blob_id, sender, recipient, created, next_attempt, message_id,"
		" domain, notify, orcpt, status, last_error)"
		" VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
	char addr[STORE_ADDRESS_MAX + 1];
	const char *domain;
	struct store_q *stmt;

	if (store_norm_address(row->rcpt, STORE_ADDR_KEEP_LOCAL, addr, sizeof(addr), &domain,
			       err) < 0 ||
	    (stmt = store_stmt(st, sql, err)) == NULL)
		return -1;
	store_bind_text(stmt, 1, job->blob_id);
	store_bind_text(stmt, 2, sender);
	store_bind_text(stmt, 3, addr);
	store_bind_i64(stmt, 4, now);
	store_bind_i64(stmt, 5, message_id);
	store_bind_text(stmt, 6, domain);
	store_bind_text(stmt, 7, row->dsn != NULL ? store_or_empty(row->dsn->notify) : "");
	store_bind_text(stmt, 8, row->dsn != NULL ? store_or_empty(row->dsn->orcpt) : "");
	store_bind_text(stmt, 9, row->status != NULL ? row->status : "queued");
	store_bind_text(stmt, 10, store_or_empty(row->reply));
	return store_run(st, stmt, "queue", err);
}

static void
store_notice_dropped(const char *address, const struct yj_err *why)
{
	char logged[LOG_VALUE_MAX];

	log_warn("store: no success report for <%s>: %s",
		 log_value(logged, sizeof(logged), address), why->msg);
}

/* The success reports owed (never to the null sender: a report is not
 * answered with a report). */
static int
store_deliver_notices(struct store *st, const struct store_job *job, const char *sender,
		      int64_t message_id, int64_t now, struct yj_err *err)
{
	const struct store_delivery *d = job->d;

	for (size_t i = 0; sender[0] != '\0' && i < d->n_notices; i++) {
		const struct store_notice *n = &d->notices[i];
		struct store_relay_dsn dsn = { .notify = "SUCCESS", .orcpt = n->orcpt };
		struct store_queue_row row = { .rcpt = n->recipient, .dsn = &dsn,
					       .status = n->action };
		char addr[STORE_ADDRESS_MAX + 1];
		struct yj_err why;

		if (strcmp(n->action, "delivered") != 0 && strcmp(n->action, "expanded") != 0)
			return yj_err_set(err, "queue: no such report action %s", n->action);
		if (store_norm_address(n->recipient, STORE_ADDR_KEEP_LOCAL, addr, sizeof(addr),
				       NULL, &why) < 0) {
			store_notice_dropped(n->recipient, &why);
			continue;
		}
		if (store_insert_queue(st, job, sender, &row, message_id, now, err) < 0)
			return -1;
	}
	return 1;
}

static int
store_deliver_queue(struct store *st, const struct store_job *job, const char *sender,
		    int64_t now, struct yj_err *err)
{
	const struct store_delivery *d = job->d;
	int64_t message_id = 0;

	size_t n_notices = sender[0] != '\0' ? d->n_notices : 0;

	if (d->n_relay == 0 && d->n_failed == 0 && n_notices == 0)
		return 1;
	if (store_insert_queue_message(st, job, sender, now, &message_id, err) < 0)
		return -1;
	for (size_t i = 0; i < d->n_relay; i++) {
		struct store_queue_row row = {
			.rcpt = d->relay_rcpts[i],
			.dsn = d->relay_dsn != NULL ? &d->relay_dsn[i] : NULL };

		if (store_insert_queue(st, job, sender, &row, message_id, now, err) < 0)
			return -1;
	}
	for (size_t i = 0; i < d->n_failed; i++) {
		struct store_queue_row row = {
			.rcpt = d->failed_rcpts[i], .status = "failed",
			.reply = d->failed_reply != NULL ? d->failed_reply : "550 5.1.1" };

		if (store_insert_queue(st, job, sender, &row, message_id, now, err) < 0)
			return -1;
	}
	if (store_deliver_notices(st, job, sender, message_id, now, err) < 0)
		return -1;
	return store_queue_announce(st, d->n_relay, err);
}

/* Counts the DMARC result in the delivery's commit (no fsync of its
 * own). Behind a savepoint of its own: a count that fails is logged and
 * left out, never the mail. Returns -1 only if the transaction broke. */
static int
store_deliver_dmarc(struct store *st, const struct store_delivery *d, int64_t now,
		    struct yj_err *err)
{
	struct yj_err derr;

	if (d->dmarc_row == NULL || d->dmarc_policy == NULL)
		return 1;
	if (store_savepoint(st, "SAVEPOINT dmarc", err) < 0)
		return -1;
	if (store_dmarc_put(st, d->dmarc_policy, d->dmarc_row, now, &derr) < 0) {
		log_warn("store: dmarc report count left out: %s", derr.msg);
		if (store_savepoint(st, "ROLLBACK TO dmarc", err) < 0)
			return -1;
	}
	return store_savepoint(st, "RELEASE dmarc", err);
}

static int
store_deliver_rows(struct store *st, const struct store_job *job, struct yj_err *err)
{
	const struct store_delivery *d = job->d;
	char sender[STORE_ADDRESS_MAX + 1] = "";
	int64_t now = (int64_t)time(NULL);
	int settled = d->settle != NULL ? store_queue_settle_rows(st, d->settle, err) : 1;

	/* First: a notice whose rows another thread settled is not stored. */
	if (settled < 0)
		return -1;
	if (settled == 0)
		return yj_err_set(err, "the queue rows were reported on already");
	if (d->n_relay + d->n_failed + d->n_notices > 0 && d->sender != NULL &&
	    d->sender[0] != '\0' &&
	    store_norm_address(d->sender, STORE_ADDR_KEEP_LOCAL, sender, sizeof(sender),
			       NULL, err) < 0) {
		if (d->n_relay + d->n_failed > 0)
			return -1;
		/* A success report that cannot be addressed is not worth the
		 * mail it reports on: the delivery goes on without it. */
		store_notice_dropped(d->sender, err);
		sender[0] = '\0';
	}
	if (store_blob_insert_row(st, job->blob_id, job->blob_size, now, err) < 0 ||
	    (d->index != NULL && store_index_insert(st, job->blob_id, d->index, err) < 0))
		return -1;
	for (size_t i = 0; i < d->n_rcpts; i++) {
		if (store_insert_message(st, job, &d->rcpts[i], now, err) < 0)
			return -1;
	}
	if (store_deliver_queue(st, job, sender, now, err) < 0)
		return -1;
	return store_deliver_dmarc(st, d, now, err);
}

/* One delivery inside the batch's transaction, behind its own savepoint:
 * sets job->result. -1 (with batch_err) means the transaction itself is
 * broken. */
static int
store_deliver_one(struct store *st, struct store_job *job, struct yj_err *batch_err)
{
	size_t notes = st->notes.n;
	bool keep;
	int ret;

	if (store_savepoint(st, "SAVEPOINT delivery", batch_err) < 0)
		return -1;
	if (job->op.apply != NULL) {
		/* 0: it changed nothing, and its MODSEQ must not be seen. */
		ret = job->op_ret = job->op.apply(st, job->op.arg, &job->dead, &job->err);
		keep = ret > 0;
	} else if (job->d == NULL) {
		/* A lapsed claim changed nothing: it is not an error. */
		ret = store_queue_result_rows(st, &job->q, &job->dead, &job->err);
		job->lapsed = ret == 0;
		keep = ret >= 0;
	} else {
		ret = store_deliver_rows(st, job, &job->err);
		keep = ret >= 0;
	}
	job->result = ret < 0 ? -1 : 1;
	if (!keep) {
		store_idlist_free(&job->dead);
		store_notes_truncate(st, notes);
		if (store_savepoint(st, "ROLLBACK TO delivery", batch_err) < 0)
			return -1;
	}
	return store_savepoint(st, "RELEASE delivery", batch_err);
}

/* ---- the writer thread: a batch ---- */

static void
store_jobs_fail(struct store_job *jobs, int only_result, const struct yj_err *err)
{
	for (struct store_job *job = jobs; job != NULL; job = job->next) {
		if (job->result != only_result)
			continue;
		job->result = -1;
		job->err = *err;
	}
}

/* fsyncs blobs/HOUR, and blobs/ itself the first time an hour is seen,
 * so that the new directory's own entry is durable too. */
static int
store_writer_sync_hour(struct store_writer *w, const char *hour, struct yj_err *err)
{
	char path[STORE_PATH_MAX];

	if (strcmp(hour, w->parent_synced) != 0) {
		if (util_fsync_dir(w->st->blob_dir, err) < 0)
			return -1;
		snprintf(w->parent_synced, sizeof(w->parent_synced), "%s", hour);
	}
	snprintf(path, sizeof(path), "%s/%s", w->st->blob_dir, hour);
	return util_fsync_dir(path, err);
}

/* fsyncs each distinct blob directory of the batch once. A job whose
 * directory could not be synced fails. */
static void
store_writer_sync_dirs(struct store_writer *w, struct store_job *jobs)
{
	struct {
		char hour[STORE_HOUR_LEN + 1];
		int ret;
		struct yj_err err;
	} seen[STORE_BATCH_DIRS];
	size_t n_seen = 0, i;
	char hour[STORE_HOUR_LEN + 1];

	for (struct store_job *job = jobs; job != NULL; job = job->next) {
		if (job->d == NULL)
			continue;	/* a queue result has no blob to sync */
		snprintf(hour, sizeof(hour), "%.*s", STORE_HOUR_LEN, job->blob_id);
		for (i = 0; i < n_seen && strcmp(seen[i].hour, hour) != 0; i++)
			;
		if (i == n_seen) {
			/* More distinct directories than remembered: sync
			 * again in the last slot, which is merely slower. */
			if (n_seen == STORE_BATCH_DIRS)
				i = n_seen - 1;
			else
				n_seen++;
			memcpy(seen[i].hour, hour, sizeof(hour));
			seen[i].ret = store_writer_sync_hour(w, hour, &seen[i].err);
		}
		if (seen[i].ret < 0) {
			job->result = -1;
			job->err = seen[i].err;
		}
	}
}

/* Whether every pending job of the batch lets its COMMIT reach the
 * disk later (only such writes: one delivery makes the batch wait). */
static bool
store_jobs_deferrable(const struct store_job *jobs)
{
	for (const struct store_job *job = jobs; job != NULL; job = job->next)
		if (job->result == 0 && (job->op.apply == NULL || !job->op.deferred_sync))
			return false;
	return true;
}

/* Makes the deferred commits durable (the writer thread, unlocked). */
static void
store_writer_flush(struct store_writer *w)
{
	w->unsynced = false;
	if (w->st->drv->writer_flush == NULL)
		return;		/* the database server flushes them itself */
	w->st->drv->writer_flush(w->st->db);
	log_debug("store: deferred commits are on disk");
}

/* Commits the rows of every job that is still pending, in one
 * transaction. */
static void
store_writer_commit(struct store_writer *w, struct store_job *jobs)
{
	struct store *st = w->st;
	bool ambiguous, deferred = store_jobs_deferrable(jobs);
	struct yj_err err;

	if (st->drv->sync_mode(st->db, deferred, &err) < 0 || store_begin(st, &err) < 0) {
		store_jobs_fail(jobs, 0, &err);
		return;
	}
	for (struct store_job *job = jobs; job != NULL; job = job->next) {
		if (job->result != 0)
			continue;
		if (store_deliver_one(st, job, &err) < 0) {
			/* The transaction is in an unknown state: give up on
			 * all of it. */
			store_rollback(st);
			store_jobs_fail(jobs, 1, &err);
			store_jobs_fail(jobs, 0, &err);
			return;
		}
	}
	if (store_commit_ex(st, &ambiguous, &err) < 0) {
		for (struct store_job *job = jobs; job != NULL; job = job->next)
			job->ambiguous = job->result == 1 && ambiguous;
		store_jobs_fail(jobs, 1, &err);
		return;
	}
	/* A durable commit carries every earlier one with it. */
	if (!deferred)
		w->unsynced = false;
	else if (!w->unsynced) {
		w->unsynced = true;
		w->unsynced_since = util_now_ms();
	}
}

/* Waits for jobs or a stop (the lock held); while commits wait for the
 * disk, only until they are due, and then makes them durable. */
static void
store_writer_wait(struct store_writer *w)
{
	while (w->head == NULL && !w->stopping) {
		int64_t left;
		struct timespec until;

		if (!w->unsynced) {
			pthread_cond_wait(&w->wake, &w->lock);
			continue;
		}
		left = w->unsynced_since + STORE_DEFERRED_SYNC_MS - util_now_ms();
		if (left > 0) {
			util_deadline(&until, CLOCK_REALTIME, left);
			pthread_cond_timedwait(&w->wake, &w->lock, &until);
			continue;
		}
		pthread_mutex_unlock(&w->lock);
		store_writer_flush(w);
		pthread_mutex_lock(&w->lock);
	}
}

static void
store_writer_batch(struct store_writer *w, struct store_job *jobs)
{
	size_t n = 0;

	for (struct store_job *job = jobs; job != NULL; job = job->next)
		n++;
	store_writer_busy_note();
	/* Contents in the database are made durable by its COMMIT. */
	if (!w->st->drv->blobs_in_db)
		store_writer_sync_dirs(w, jobs);
	store_writer_commit(w, jobs);
	log_debug("store: committed a batch of %zu deliveries, queue results and changes", n);
}

/* The jobs of batch whose callers still wait, marked taken; one whose
 * caller gave up before the writer got to it is freed unrun. */
static struct store_job *
store_batch_take(struct store_job *batch)
{
	struct store_job *kept = NULL, **tail = &kept, *job, *next;
	bool abandoned;

	for (job = batch; job != NULL; job = next) {
		next = job->next;
		pthread_mutex_lock(&job->lock);
		abandoned = job->abandoned;
		job->taken = !abandoned;
		pthread_mutex_unlock(&job->lock);
		if (abandoned) {
			store_job_free(job);
			continue;
		}
		job->next = NULL;
		*tail = job;
		tail = &job->next;
	}
	return kept;
}

/* Moves the jobs whose commit need not wait for the disk (flag changes)
 * out of *batch, in their order, and returns them. */
static struct store_job *
store_batch_split_deferrable(struct store_job **batch)
{
	struct store_job *quick = NULL, **qtail = &quick, **pp = batch, *job;

	while ((job = *pp) != NULL) {
		if (job->op.apply != NULL && job->op.deferred_sync) {
			*pp = job->next;
			job->next = NULL;
			*qtail = job;
			qtail = &job->next;
		} else {
			pp = &job->next;
		}
	}
	return quick;
}

/* Wakes the callers of a finished batch; frees the jobs whose callers
 * gave up meanwhile. */
static void
store_batch_hand_back(struct store_job *batch)
{
	struct store_job *job, *next;
	bool abandoned;

	for (job = batch; job != NULL; job = next) {
		next = job->next;	/* job is gone once its caller wakes */
		pthread_mutex_lock(&job->lock);
		job->done = true;
		abandoned = job->abandoned;
		if (!abandoned)
			pthread_cond_signal(&job->cond);
		pthread_mutex_unlock(&job->lock);
		if (abandoned)
			store_job_free(job);
	}
}

static void *
store_writer_main(void *arg)
{
	struct store_writer *w = arg;
	struct store_job *batch;

	pthread_setname_np(pthread_self(), "yj-writer");
	pthread_mutex_lock(&w->lock);
	for (;;) {
		store_writer_wait(w);
		if (w->head == NULL)
			break;		/* stopping, and nothing left */
		batch = w->head;
		w->head = NULL;
		w->tail = &w->head;
		pthread_mutex_unlock(&w->lock);

		batch = store_batch_take(batch);
		/* Flag changes that came in with deliveries commit first, on
		 * their own, and their callers are answered: they need not
		 * wait for the deliveries' fsyncs. Jobs of one batch came
		 * from different sessions, so any order of them is one the
		 * sessions could have seen. */
		struct store_job *quick = store_batch_split_deferrable(&batch);

		if (quick != NULL) {
			store_writer_batch(w, quick);
			store_batch_hand_back(quick);
		}
		if (batch != NULL) {
			store_writer_batch(w, batch);
			store_batch_hand_back(batch);
		}
		/* Work the engine would do inside COMMIT (SQLite's
		 * checkpoints) is done here, once the callers are awake;
		 * deliveries that arrive meanwhile make the next batch. */
		w->st->drv->writer_after_batch(w->st->db);
		/* A stream of deferred commits never leaves the writer idle:
		 * they are made durable when due all the same. */
		if (w->unsynced &&
		    util_now_ms() - w->unsynced_since >= STORE_DEFERRED_SYNC_MS)
			store_writer_flush(w);
		pthread_mutex_lock(&w->lock);
	}
	pthread_mutex_unlock(&w->lock);
	if (w->unsynced)
		store_writer_flush(w);
	return NULL;
}

/* ---- starting and stopping writers ---- */

static void
store_writer_free(struct store_writer *w)
{
	store_close(&w->st);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->wake);
	pthread_cond_destroy(&w->idle);
	free(w);
}

/* The writer thread takes no signals: they go to the daemon's threads. */
static int
store_writer_start(struct store_writer *w)
{
	sigset_t all, old;
	int rc;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&w->thread, NULL, store_writer_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}

/* Called with store_writers_lock held for writing. */
static struct store_writer *
store_writer_new(const char *data_dir, struct yj_err *err)
{
	struct store_writer *w = calloc(1, sizeof(*w));
	int rc;

	if (w == NULL)
		log_fatal("out of memory");
	if (store_open_db(data_dir, false, &w->st, err) < 0) {
		free(w);
		return NULL;
	}
	w->st->drv->writer_init(w->st->db);
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->wake, NULL);
	pthread_cond_init(&w->idle, NULL);
	w->tail = &w->head;
	if ((rc = store_writer_start(w)) != 0) {
		errno = rc;
		yj_err_errno(err, "store: cannot start the writer thread");
		store_writer_free(w);
		return NULL;
	}
	w->next = store_writers;
	store_writers = w;
	return w;
}

/* The running writer of data_dir, or NULL. The list lock is held. */
static struct store_writer *
store_writer_find(const char *data_dir)
{
	struct store_writer *w;

	for (w = store_writers; w != NULL; w = w->next) {
		if (strcmp(w->st->data_dir, data_dir) == 0)
			break;
	}
	return w;
}

/* Returns the writer of st's data dir (started on first use) with a
 * waiter counted, or NULL. The count is taken before the list lock is
 * released, so that store_writers_stop() cannot free the writer under
 * us: it waits for waiters to leave. */
static struct store_writer *
store_writer_enter(struct store *st, struct yj_err *err)
{
	struct store_writer *w;

	pthread_rwlock_rdlock(&store_writers_lock);
	if ((w = store_writer_find(st->data_dir)) != NULL)
		atomic_fetch_add(&w->waiters, 1);
	pthread_rwlock_unlock(&store_writers_lock);
	if (w != NULL)
		return w;
	pthread_rwlock_wrlock(&store_writers_lock);
	if ((w = store_writer_find(st->data_dir)) == NULL)
		w = store_writer_new(st->data_dir, err);
	if (w != NULL)
		atomic_fetch_add(&w->waiters, 1);
	pthread_rwlock_unlock(&store_writers_lock);
	return w;
}

/* Uncounts a waiter. The last one tells a stopping writer's
 * store_writers_stop(), which sets stopping before it looks at the
 * count, so that one of the two always sees the other. */
static void
store_writer_leave(struct store_writer *w)
{
	if (atomic_fetch_sub(&w->waiters, 1) == 1 && atomic_load(&w->stopping)) {
		pthread_mutex_lock(&w->lock);
		pthread_cond_signal(&w->idle);
		pthread_mutex_unlock(&w->lock);
	}
}

void
store_writers_stop(void)
{
	struct store_writer *list, *w;

	pthread_rwlock_wrlock(&store_writers_lock);
	list = store_writers;
	store_writers = NULL;
	for (w = list; w != NULL; w = w->next) {
		pthread_mutex_lock(&w->lock);
		w->stopping = true;
		pthread_cond_signal(&w->wake);
		pthread_mutex_unlock(&w->lock);
	}
	pthread_rwlock_unlock(&store_writers_lock);

	while ((w = list) != NULL) {
		list = w->next;
		pthread_join(w->thread, NULL);
		pthread_mutex_lock(&w->lock);
		while (w->waiters > 0)
			pthread_cond_wait(&w->idle, &w->lock);
		pthread_mutex_unlock(&w->lock);
		store_writer_free(w);
	}
}

/* ---- the caller's side ---- */

static bool
store_short(const char *s, size_t max)
{
	return s == NULL || strlen(s) <= max;
}

/* The queue fields: bounded, and only the values SMTP can send. */
static int
store_deliver_check_queue(const struct store_delivery *d, struct yj_err *err)
{
	if (!store_short(d->envid, STORE_ENVID_MAX) || !store_short(d->ret, 4) ||
	    !store_short(d->body, 10) || !store_short(d->queue_header, STORE_QUEUE_HEADER_MAX))
		return yj_err_set(err, "delivery: a queue parameter is too long");
	for (size_t i = 0; d->relay_dsn != NULL && i < d->n_relay; i++) {
		if (!store_short(d->relay_dsn[i].notify, STORE_NOTIFY_MAX) ||
		    !store_short(d->relay_dsn[i].orcpt, STORE_ORCPT_MAX))
			return yj_err_set(err, "delivery: a DSN parameter is too long");
	}
	return 1;
}

static int
store_deliver_check(const struct store_delivery *d, struct yj_err *err)
{
	if (d->blob->path == NULL || d->blob->fd < 0)
		return yj_err_set(err, "delivery of a blob that is not open");
	if (d->n_rcpts + d->n_relay == 0)
		return yj_err_set(err, "delivery has no recipients");
	if (d->n_rcpts > 0 && d->rcpts == NULL)
		return yj_err_set(err, "delivery has no recipient list");
	if (d->n_relay > 0 && d->relay_rcpts == NULL)
		return yj_err_set(err, "delivery has no relay recipient list");
	if (d->n_failed > 0 && d->failed_rcpts == NULL)
		return yj_err_set(err, "delivery has no failed recipient list");
	for (size_t i = 0; i < d->n_rcpts; i++) {
		const struct store_rcpt *r = &d->rcpts[i];

		if (r->prefix != NULL && strlen(r->prefix) > STORE_PREFIX_MAX)
			return yj_err_set(err, "per-recipient header lines too long (%zu bytes)",
					  strlen(r->prefix));
		if (r->mailbox != NULL && strlen(r->mailbox) > STORE_MAILBOX_NAME_MAX)
			return yj_err_set(err, "mailbox name too long");
	}
	return store_deliver_check_queue(d, err);
}

/* The blob's share of durability, done in the caller's thread so that
 * sessions fsync their blobs in parallel. */
int
store_blob_sync(struct store *st, struct store_blob *b, struct yj_err *err)
{
	int r = 0;

	if (store_blob_flush(b, err) < 0)
		return -1;
	/* A staged file (contents go into the database) need not last.
	 * The fsync is a wait for the disk, not for a CPU: the session's
	 * run slot goes to another one meanwhile (base/block.h). */
	if (!st->drv->blobs_in_db) {
		block_begin();
		r = fsync(b->fd);
		block_end();
	}
	if (r < 0)
		return yj_err_errno(err, "fsync blob %s", b->id);
	if (close(b->fd) < 0) {
		b->fd = -1;
		return yj_err_errno(err, "close blob %s", b->id);
	}
	b->fd = -1;
	return 1;
}

/* Sleeps until job is done or the timeout passes. Called and returns
 * with job->lock held. */
static void
store_job_wait(struct store_job *job)
{
	struct timespec until;

	util_deadline(&until, CLOCK_MONOTONIC, store_writer_timeout_ms);
	while (!job->done) {
		if (pthread_cond_timedwait(&job->cond, &job->lock, &until) == ETIMEDOUT)
			break;
	}
}

/* What a job left its caller once the writer is done with it. */
struct store_job_out {
	bool ambiguous;			/* -1, yet the rows may reach the disk */
	bool lapsed;			/* a queue result found its claim gone */
	struct store_idlist dead;	/* blobs to unlink, now committed */
	int op_ret;			/* store_write_op's apply result */
};

/* Hands job (and its ownership) to the writer of st's data dir without
 * waiting. Returns the writer, its waiter count kept for
 * store_job_await(), or NULL (job freed). */
static struct store_writer *
store_job_submit(struct store *st, struct store_job *job, struct yj_err *err)
{
	struct store_writer *w = store_writer_enter(st, err);

	if (w == NULL) {
		store_job_free(job);
		return NULL;
	}
	pthread_mutex_lock(&w->lock);
	*w->tail = job;
	w->tail = &job->next;
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
	return w;
}

/* Sleeps until a submitted job is committed, has failed, or the writer
 * took too long (a hung fsync, say), and frees it. Returns 1 or -1, the
 * rest in *out. */
static int
store_job_await(struct store_writer *w, struct store_job *job, struct store_job_out *out,
		struct yj_err *err)
{
	int result;

	memset(out, 0, sizeof(*out));
	block_begin();
	pthread_mutex_lock(&job->lock);
	store_job_wait(job);
	if (!job->done) {
		yj_err_set(err, "store: no answer from the writer in %u ms",
			   store_writer_timeout_ms);
		/* The writer frees it: unrun if it has not taken it yet;
		 * taken, it may still commit. */
		out->ambiguous = job->taken;
		job->abandoned = true;
		pthread_mutex_unlock(&job->lock);
		block_end();
		store_writer_leave(w);
		return -1;
	}
	pthread_mutex_unlock(&job->lock);
	block_end();
	store_writer_leave(w);
	result = job->result;
	out->ambiguous = job->ambiguous;
	if (result < 0 && err != NULL)
		*err = job->err;
	if (result > 0) {
		out->lapsed = job->lapsed;
		out->op_ret = job->op_ret;
		out->dead = job->dead;
		memset(&job->dead, 0, sizeof(job->dead));
		/* Done: a store_write_op's arg goes back to its caller. */
		job->op.arg = NULL;
	}
	store_job_free(job);
	return result < 0 ? -1 : 1;
}

/* Submits job and waits for it. */
static int
store_job_run(struct store *st, struct store_job *job, struct store_job_out *out,
	      struct yj_err *err)
{
	struct store_writer *w = store_job_submit(st, job, err);

	if (w == NULL) {
		memset(out, 0, sizeof(*out));
		return -1;
	}
	return store_job_await(w, job, out, err);
}

/* Hands the delivery to the writer and waits for its COMMIT. *ambiguous
 * says whether the rows may reach the disk although -1 is returned. */
static int
store_deliver_wait(struct store *st, const struct store_delivery *d, bool *ambiguous,
		   struct yj_err *err)
{
	struct store_job_out out;
	int ret = store_job_run(st, store_job_new(d), &out, err);

	*ambiguous = out.ambiguous;
	return ret;
}

/* A queue result in the writer's hands, not yet waited for. */
struct store_pending {
	struct store_writer *w;
	struct store_job *job;
};

struct store_pending *
store_queue_result_post(struct store *st, const struct store_queue_result *r,
			struct yj_err *err)
{
	struct store_pending *p;
	struct store_job *job;

	if (r->node == NULL) {
		yj_err_set(err, "%s: no node", r->what);
		return NULL;
	}
	job = store_job_new_result(r);
	if ((p = calloc(1, sizeof(*p))) == NULL)
		log_fatal("out of memory");
	p->job = job;
	if ((p->w = store_job_submit(st, job, err)) == NULL) {
		free(p);
		return NULL;
	}
	return p;
}

int
store_queue_result_wait(struct store *st, struct store_pending *p, struct yj_err *err)
{
	struct store_job_out out;
	int ret = store_job_await(p->w, p->job, &out, err);

	free(p);
	if (ret < 0)
		return -1;
	if (out.lapsed)
		return 0;
	/* Only now, with the row's removal on disk, may the file go. */
	store_blob_unlink_list(st, &out.dead);
	return 1;
}

int
store_write_run(struct store *st, const struct store_write_op *op, struct yj_err *err)
{
	struct store_job_out out;

	if (store_job_run(st, store_job_new_op(op), &out, err) < 0)
		return -1;
	/* Only now, with the rows' removal on disk, may the files go. */
	store_blob_unlink_list(st, &out.dead);
	return out.op_ret;
}

/* The blob of a delivery whose outcome is unknown stays: removing it
 * could leave committed rows without their file. If the rows did not
 * commit, store_gc collects the orphan. */
void
store_blob_disown(struct store_blob *b)
{
	log_warn("store: blob %s kept: its delivery may or may not have committed", b->id);
	if (b->fd >= 0)
		close(b->fd);
	b->fd = -1;
	free(b->path);
	b->path = NULL;
}

int
store_deliver(struct store *st, const struct store_delivery *d, struct yj_err *err)
{
	struct store_blob *b = d->blob;
	bool ambiguous = false;

	if (b == NULL)
		return yj_err_set(err, "delivery without a blob");
	if (store_deliver_check(d, err) < 0 || store_blob_sync(st, b, err) < 0 ||
	    store_deliver_wait(st, d, &ambiguous, err) < 0) {
		if (ambiguous)
			store_blob_disown(b);
		else
			store_blob_abort(b);
		return -1;
	}
	/* The store owns the file now; a later abort is a no-op. A staged
	 * file has served its purpose. */
	if (st->drv->blobs_in_db) {
		store_blob_abort(b);
		return 1;
	}
	free(b->path);
	b->path = NULL;
	return 1;
}
