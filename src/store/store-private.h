/* store-private.h - internals shared by the files of the store.
 *
 * Nothing outside src/store/ includes this. It holds the connection
 * struct, the prepared statement cache, transaction helpers and the
 * blob path and reaping helpers that several files need. The database
 * itself is reached only through the driver interface of store-db.h.
 */
#ifndef YJ_STORE_PRIVATE_H
#define YJ_STORE_PRIVATE_H

#include <pthread.h>

#include "store/store-db.h"
#include "store/store.h"

/* How long a connection waits for another one's write lock. */
#define STORE_BUSY_TIMEOUT_MS 10000
/* What a writer that has already waited out STORE_BUSY_TIMEOUT_MS in
 * the data dir's queue still waits for another process's lock. */
#define STORE_BUSY_LAST_MS 250
#define STORE_PATH_MAX 4096
#define STORE_DOMAIN_MAX 253
#define STORE_HOUR_LEN 10		/* blob ids are HOUR/RANDOM, HOUR = YYYYMMDDHH */
#define STORE_PREFIX_MAX (sizeof(((struct store_msg *)0)->prefix) - 1)
/* The one mailbox name that is not case-sensitive (RFC 3501). */
#define STORE_INBOX "INBOX"

struct store_stmt_slot {
	const char *sql;		/* a string literal: its address is the key */
	struct store_q *stmt;
};

/* A change made by the open transaction, published after its COMMIT. */
struct store_note_list {
	struct store_change *v;
	size_t n;
	size_t cap;
	bool queued;			/* another node queued mail (notices) */
};

struct store_site;

struct store {
	const struct store_driver *drv;
	struct store_db *db;
	char *data_dir;			/* as given (youjud: "."), no trailing slash */
	char *blob_dir;			/* data_dir + "/blobs" */
	struct store_site *site;	/* shared by the connections of data_dir */
	/* Grows as statements are first used: a cache that cannot fill. */
	struct store_stmt_slot *stmts;
	size_t n_stmts;
	size_t cap_stmts;
	bool write_locked;		/* holds the site's fair write lock */
	bool lazy;			/* in a store_begin_lazy transaction */
	unsigned maildrop_locks;	/* held by this connection */
	bool no_pool;			/* opened with an explicit driver */
	struct store_note_list notes;	/* changes of the open transaction */
	int64_t pooled_at;		/* when it went into the pool (monotonic ms) */
};

/* Reads the current row of a statement into out. */
typedef void store_read_fn(struct store_q *stmt, void *out);

/* A growable list of blob ids, for unlinking files after a commit. */
struct store_idlist {
	char (*ids)[STORE_BLOB_ID_MAX];
	size_t n;
	size_t cap;
};

/* ---- store.c ---- */

/* Closes the pooled connections that have waited long for a session
 * (the maintenance thread calls it now and then). */
void store_pool_trim(void);

/* Returns the cached statement for sql (a string literal; prepared on
 * first use), reset and with bindings cleared, or NULL with err set.
 * The caller must store_reset() it when done so that no read
 * transaction stays open. A statement still being stepped (a callback
 * calling the same listing function) is refused. */
struct store_q *store_stmt(struct store *st, const char *sql, struct yj_err *err);
/* Sets err to "what: <the driver's message>"; returns -1. */
int store_db_err(struct store *st, struct yj_err *err, const char *what);
/* Steps a statement to its end (rows are ignored) and resets it. On
 * failure sets err to "what: reason" and keeps the code for
 * store_is_unique_violation(). */
int store_run(struct store *st, struct store_q *stmt, const char *what,
	      struct yj_err *err) YJ_MUST_CHECK;
/* Steps once: 1 a row is ready (the caller reads it, then resets the
 * statement), 0 no row (already reset), -1 error (reset, err set). */
int store_row(struct store *st, struct store_q *stmt, const char *what, struct yj_err *err);
/* The one-row lookup: steps once; on a row calls read(stmt, out) and
 * resets. 1 found, 0 no row, -1 error (err set). */
int store_one(struct store *st, struct store_q *stmt, const char *what, store_read_fn *read,
	      void *out, struct yj_err *err);
/* Runs stmt once for each range of set, binding ?1 mailbox_id, ?2 the
 * first and ?3 the last UID of the range (the caller's own bindings from
 * ?4 on stay). Each row is read into row (may be NULL) and passed to
 * cb(ctx, row). *changes_r (may be NULL) gets the rows changed in all. */
int store_each_range(struct store *st, struct store_q *stmt, int64_t mailbox_id,
		     const struct store_uidset *set, const char *what, store_read_fn *read,
		     void *row, void (*cb)(void *ctx, const void *row), void *ctx,
		     size_t *changes_r, struct yj_err *err) YJ_MUST_CHECK;
/* Runs constant SQL (transaction control, schema steps). */
int store_exec(struct store *st, const char *sql, struct yj_err *err) YJ_MUST_CHECK;
/* BEGIN IMMEDIATE: takes the write lock now, waiting up to the busy
 * timeout, so the transaction never fails half-way on a lock upgrade.
 * Before that it queues, first come first served, for the site's write
 * lock, so that within the process no writer (a session's flag change,
 * the delivery writer) can starve another: SQLite's busy handler only
 * arbitrates with other processes. */
int store_begin(struct store *st, struct yj_err *err) YJ_MUST_CHECK;
/* store_begin for a transaction whose loss in a power failure costs
 * nothing (a cache, a hint such as the \Recent floor): its COMMIT does
 * not wait for the disk, so it does not hold the write lock across an
 * fsync; the next durable commit of anyone carries it to the disk. */
int store_begin_lazy(struct store *st, struct yj_err *err) YJ_MUST_CHECK;
/* Commits, then publishes the transaction's changes to subscribers. On
 * failure the transaction is rolled back and *ambiguous (may be NULL) says
 * whether COMMIT failed in a way that may still have reached the disk
 * (the driver tells: an I/O error, a lost connection). */
int store_commit_ex(struct store *st, bool *ambiguous, struct yj_err *err) YJ_MUST_CHECK;
int store_commit(struct store *st, struct yj_err *err) YJ_MUST_CHECK;
/* Rolls back if a transaction is open (errors are only logged), drops
 * its unpublished changes and releases the write lock. */
void store_rollback(struct store *st);
/* Was the last store_run failure a UNIQUE or PRIMARY KEY violation? */
bool store_is_unique_violation(struct store *st);
/* ...a CHECK constraint violation? */
bool store_is_check_violation(struct store *st);
/* Rows changed by the last INSERT, UPDATE or DELETE that finished. */
int64_t store_changes(struct store *st);
/* Runs an INSERT ... RETURNING id; *id_r the id. */
int store_insert_id(struct store *st, struct store_q *stmt, const char *what, int64_t *id_r,
		    struct yj_err *err) YJ_MUST_CHECK;
/* Opens the database file of data_dir into a new struct store. */
int store_open_db(const char *data_dir, bool create, struct store **st_r,
		  struct yj_err *err) YJ_MUST_CHECK;
/* Copies a column's text into out (at most outlen - 1 bytes, NUL added). */
void store_col_text(struct store_q *stmt, int col, char *out, size_t outlen);

/* ---- store_summary.c, store_index.c ---- */

/* Reads the summary items (envelope, body, bodystructure, header) from
 * columns col on of the current row into s (malloc'd; free with
 * store_summary_free, also after a failure). 1, or -1 if an item is
 * too large or memory ran out. */
int store_summary_read(struct store_q *stmt, int col, struct store_summary *s);

/* Inserts a blob's summary unless it has one (or the blob is gone). */
int store_summary_insert(struct store *st, const char *blob_id, const struct store_summary *s,
			 struct yj_err *err) YJ_MUST_CHECK;
/* A malloc'd deep copy (free with store_index_free, then free). */
struct store_index *store_index_dup(const struct store_index *ix);
/* Inserts a blob's index rows (store_index) in the caller's
 * transaction; rows the blob has stay. */
int store_index_insert(struct store *st, const char *blob_id, const struct store_index *ix,
		       struct yj_err *err) YJ_MUST_CHECK;

/* ---- store_maint.c ---- */

/* The delivery writer has a batch: background work waits (every data
 * dir counts, which is as good as any for a quiet-time signal). */
void store_writer_busy_note(void);

/* ---- store_schema.c ---- */

/* The SQLite schema steps. */
#define STORE_SQLITE_STEPS 14
extern const char *const store_sqlite_migrations[STORE_SQLITE_STEPS];
/* ...and PostgreSQL's (store_pg_schema.c). */
#define STORE_PG_STEPS 12
extern const char *const store_pg_migrations[STORE_PG_STEPS];

/* Brings the schema up to the current version (one transaction per
 * step; another connection migrating at the same time is harmless). */
int store_migrate(struct store *st, struct yj_err *err) YJ_MUST_CHECK;

/* store_dmarc_record's two statements, inside the caller's transaction
 * (a delivery's). */
int store_dmarc_put(struct store *st, const struct store_dmarc_policy *pol,
		    const struct store_dmarc_row *row, int64_t now, struct yj_err *err);

/* ---- store_account.c ---- */

enum store_addr_flags {
	STORE_ADDR_CATCH_ALL = 1 << 0,	/* "@domain" is allowed */
	/* Lowercase only the domain. For addresses we route to but do not
	 * own (alias targets, the envelope of relayed mail): their local
	 * part belongs to the remote host (RFC 5321 2.4). */
	STORE_ADDR_KEEP_LOCAL = 1 << 1,
};
/* Lowercased copies of a domain name / an address, checked for length
 * and forbidden characters. domain_r (may be NULL) points into out at
 * the domain. */
int store_norm_domain(const char *in, char *out, size_t outlen,
		      struct yj_err *err) YJ_MUST_CHECK;
/* store_sender.c: forgets the owners of alias (normalised) once it has
 * no target left. */
int store_alias_owners_gone(struct store *st, const char *alias, struct yj_err *err);
int store_norm_address(const char *in, unsigned flags, char *out, size_t outlen,
		       const char **domain_r, struct yj_err *err) YJ_MUST_CHECK;

/* ---- store_change.c ---- */

/* Takes the mailbox's next MODSEQ in the caller's transaction
 * (UPDATE ... RETURNING, so two transactions never get the same value)
 * and records the change with it. 1, 0 no such mailbox, -1 error. */
int store_modseq_next(struct store *st, int64_t mailbox_id, unsigned kind,
		      uint64_t *modseq_r, struct yj_err *err);
/* Records a change that already has its MODSEQ: a row in `changes` for
 * other processes, and a note published after COMMIT. */
int store_change_record(struct store *st, int64_t account_id, int64_t mailbox_id,
			uint64_t modseq, unsigned kind, struct yj_err *err) YJ_MUST_CHECK;
/* After COMMIT: publishes the notes (merged per mailbox) and clears them. */
void store_notes_publish(struct store *st);
/* Forgets notes from index n on (a rolled back savepoint, or all). */
void store_notes_truncate(struct store *st, size_t n);
void store_notes_free(struct store *st);

/* This process's id in `changes`.origin (a new one after fork). */
int64_t store_origin(void);
void store_note_append(struct store_note_list *list, const struct store_change *c);
/* Calls every subscriber with each change. */
void store_notify_all(const struct store_change *changes, size_t n);
/* Merges the list's changes per mailbox, publishes them, empties it. */
void store_note_list_publish(struct store_note_list *list);

/* In a transaction that queued n_queued rows to be sent now: tells the
 * other nodes at COMMIT (the driver's queue_announce). 1, or -1. */
int store_queue_announce(struct store *st, size_t n_queued, struct yj_err *err) YJ_MUST_CHECK;
/* Another node queued mail: calls the store_queue_watch() hook. */
void store_queue_heard(void);
/* store_set_queue_retention's value. */
long store_queue_retention_get(void);

/* The state shared by the connections of one data dir, while any is
 * open: the fair write lock. */
struct store_site {
	struct store_site *next;
	char *data_dir;
	unsigned refs;
	pthread_mutex_t lock;
	pthread_cond_t turn;
	uint64_t next_ticket;		/* the next writer's turn */
	uint64_t serving;		/* whose turn it is */
	struct store_sumcache *sumcache;	/* NULL: none (size 0) */
};
struct store_site *store_site_get(const char *data_dir);
void store_site_put(struct store_site *site);
void store_site_lock(struct store_site *site);
void store_site_unlock(struct store_site *site);

/* ---- store_sumcache.c ----
 * The summaries read lately (store_set_summary_cache's bytes), one
 * cache per site, safe for all its connections' threads. A NULL cache
 * keeps nothing and finds nothing. */
struct store_sumcache;
/* NULL when max_bytes is 0 or there is no memory. */
struct store_sumcache *store_sumcache_new(size_t max_bytes);
void store_sumcache_free(struct store_sumcache *c);
/* Keeps a copy of s under s->blob_id (not if it is too large for the
 * cache, or on no memory). */
void store_sumcache_put(struct store_sumcache *c, const struct store_summary *s);
/* The items of blob_id's summary named in items (a mask of 1 << enum
 * store_summary_item) copied into s, whose blob_id is set; the others
 * NULL. 1 (free s with store_summary_free), or 0: not kept, s empty. */
int store_sumcache_get(struct store_sumcache *c, const char *blob_id, unsigned items,
		       struct store_summary *s);
#define STORE_SUMMARY_ALL ((1u << STORE_SUMMARY_ITEMS) - 1)
/* The summaries of the blobs ids[0..n) into out[i], has[i] telling
 * whether there is one: the items of items from the cache where it
 * has them, all of them from the database (a statement for each few)
 * for the rest, which the cache then keeps. Not a snapshot, and need
 * not be: summaries never change. 1, or -1 (nothing to free). */
int store_summaries_load(struct store *st, const char *const *ids, size_t n, unsigned items,
			 struct store_summary *out, bool *has, struct yj_err *err) YJ_MUST_CHECK;

/* ---- store_mailbox.c ---- */

/* Creates the default mailboxes of a new account (inside the caller's
 * transaction). */
int store_mailbox_create_defaults(struct store *st, int64_t account_id,
				  struct yj_err *err) YJ_MUST_CHECK;
/* Inside a transaction: records the deletion of each of the account's
 * mailboxes and deletes them (and their messages), adding blobs that
 * lost their last reference to dead. */
int store_mailbox_delete_all(struct store *st, int64_t account_id, struct store_idlist *dead,
			     struct yj_err *err) YJ_MUST_CHECK;
/* "INBOX" for any case of inbox, else name itself. */
const char *store_mailbox_canon(const char *name);

/* ---- store_blob.c ---- */

/* data_dir/blobs/<id>; -1 if id is not of the HOUR/RANDOM form. */
int store_blob_path(const struct store *st, const char *id, char *out, size_t outlen);
/* Is id of the form HOUR/RANDOM that store_blob_create makes? */
bool store_blob_id_valid(const char *id);
/* Opens a blob's contents for reading, from a file or the database. */
int store_blob_open(struct store *st, const char *id, int *fd_r, struct yj_err *err) YJ_MUST_CHECK;
/* Writes out buffered bytes. */
int store_blob_flush(struct store_blob *b, struct yj_err *err) YJ_MUST_CHECK;
/* Inside a transaction: deletes the rows of blobs no message or queue
 * entry refers to any more and adds their ids to list, so the files can
 * be unlinked once the transaction has committed. */
int store_blob_reap(struct store *st, struct store_idlist *list,
		    struct yj_err *err) YJ_MUST_CHECK;
/* After the commit: unlinks the files of list; failures are logged
 * (store_gc removes what is left). Frees the list. */
void store_blob_unlink_list(struct store *st, struct store_idlist *list);
void store_idlist_free(struct store_idlist *list);

/* ---- store_msg.c ---- */

/* The ranges of a list of UIDs in ascending order: runs of consecutive
 * UIDs become one range. *set_r's ranges are malloc'd; the caller frees
 * them. */
void store_uidset_from_uids(const uint32_t *uids, size_t n, struct store_uidset *set_r);
/* The bits of ch's keywords in the mailbox; unknown ones are made unless
 * ch->op is STORE_FLAGS_REMOVE. Inside the caller's transaction. 1,
 * STORE_KEYWORDS_FULL (the transaction must be rolled back), -1. */
int store_keyword_bits(struct store *st, int64_t mailbox_id, const struct store_flag_change *ch,
		       uint64_t *bits_r, struct yj_err *err) YJ_MUST_CHECK;
/* Inside the caller's transaction, with the expunge's MODSEQ: records
 * (QRESYNC) and removes the messages of set that have need_flags; each
 * removed UID goes to cb (may be NULL); *removed_r how many. */
int store_expunge_rows(struct store *st, int64_t mailbox_id, const struct store_uidset *set,
		       uint32_t need_flags, uint64_t modseq, store_uid_cb *cb, void *ctx,
		       size_t *removed_r, struct yj_err *err) YJ_MUST_CHECK;

/* ---- store_append.c ---- */

/* store_msg_copy inside the caller's transaction: res->map is set even
 * on failure (the caller frees it). */
int store_msg_copy_locked(struct store *st, int64_t from, int64_t to,
			  const struct store_uidset *set, bool move, struct store_copy_result *res,
			  struct yj_err *err) YJ_MUST_CHECK;

/* ---- store_quota.c ---- */

/* Inside a transaction: may the account take add more bytes? 1 yes,
 * STORE_OVER_QUOTA no (err says why), -1 error. */
int store_quota_room(struct store *st, int64_t account_id, uint64_t add, struct yj_err *err);
/* ---- store_queue.c ---- */

/* Inside a transaction: marks the rows of s (store.h). 1, 0 if one was
 * settled already (the caller rolls back), -1 error. */
int store_queue_settle_rows(struct store *st, const struct store_queue_settle *s,
			    struct yj_err *err) YJ_MUST_CHECK;

/* ---- store_thread.c ---- */

/* Inside a transaction: the thread (RFC 8474 THREADID) of a new message
 * of the account, found by its ids keys[0..len) (mime_thread_keys:
 * NUL-terminated, one after another; none: a thread of its own), and
 * the ids remembered as that thread's. */
int store_thread_assign(struct store *st, int64_t account_id, const char *keys, size_t len,
			int64_t *thread_r, struct yj_err *err) YJ_MUST_CHECK;

/* ---- store_maint.c ---- */

/* Seconds between the maintenance thread's periodic jobs, and ages. */
#define STORE_CHECKPOINT_EVERY 10
#define STORE_PRUNE_EVERY 60
#define STORE_GC_EVERY 3600
/* `changes` rows are kept this long: far longer than a poll takes. */
#define STORE_CHANGES_KEEP 600
/* An orphan blob this old has no delivery in flight: a delivery writes
 * its blob within the session's timeouts and commits within
 * STORE_WRITER_TIMEOUT_S of its last write. */
#define STORE_GC_MIN_AGE (6 * 3600)
/* Expunge records older than this are compacted (RFC 7162 3.2.10). */
#define STORE_VANISHED_KEEP (90 * 86400)
/* journal_size_limit, and the WAL size above which a RESTART
 * checkpoint is tried. */
#define STORE_WAL_LIMIT (64 * 1024 * 1024)

/* Stops the maintenance threads. */
void store_maint_stop_all(void);

/* ---- store_deliver.c ---- */

/* How long store_deliver() waits for the writer before it answers -1
 * (a hung fsync must not hang every session). A variable for tests. */
#define STORE_WRITER_TIMEOUT_S 60
extern unsigned store_writer_timeout_ms;

/* One runner's answer for a claimed queue row: sql binds ?1 = id,
 * ?2 = node and, when n_args is 3 or 4, ?3 (i3 if int3, else t3), and
 * when 4, ?4 = t4.
 * reap: the row may have been its blob's last reference. */
struct store_queue_result {
	const char *sql;
	const char *what;
	int64_t id;
	const char *node;
	int n_args;
	bool int3;
	int64_t i3;
	const char *t3, *t4;
	bool reap;
};
/* Inside a transaction (store_queue.c): applies r; blobs left without
 * references go to dead. 1, 0 if node's claim has lapsed, -1. */
int store_queue_result_rows(struct store *st, const struct store_queue_result *r,
			    struct store_idlist *dead, struct yj_err *err) YJ_MUST_CHECK;
/* A write a session waits on (a flag change, an expunge), done by the
 * data dir's writer in its next batch, behind a savepoint of its own.
 * apply runs on the writer's connection inside the transaction; it
 * returns 1 to keep its rows, 0 to undo them (it changed nothing, so its
 * MODSEQ must never be seen), -1 with err set to undo them and fail.
 * Blobs it leaves without references go to dead. arg carries the
 * change in and apply's answers out; release frees it. */
struct store_write_op {
	int (*apply)(struct store *st, void *arg, struct store_idlist *dead,
		     struct yj_err *err);
	void (*release)(void *arg);
	void *arg;
	/* The caller may hear of the COMMIT before it is on disk: the writer
	 * makes it durable within STORE_DEFERRED_SYNC_MS. Only for changes
	 * that free no blob and whose loss in a power failure costs little
	 * (flags), never for a delivery or an expunge. */
	bool deferred_sync;
};
/* How long a deferred commit may wait for its fsync. */
#define STORE_DEFERRED_SYNC_MS 500
/* Hands op to the writer of st's data dir and waits for the COMMIT of
 * its batch (one fsync for every change and delivery waiting with it),
 * then unlinks the blobs apply freed. Returns apply's 1 or 0, and op->arg
 * is the caller's again (to read and release); -1 if apply or the COMMIT
 * failed or the writer took too long, and then op->arg is released here
 * or by the writer. */
int store_write_run(struct store *st, const struct store_write_op *op,
		    struct yj_err *err) YJ_MUST_CHECK;
/* A runner's answer for the data dir's writer, which commits it with
 * whatever else is waiting (one fsync for many runner threads), while
 * the caller goes on with its next message: post hands r to the writer
 * and returns at once (NULL on error); wait waits for that COMMIT,
 * unlinks the blobs it freed, frees the handle, and returns 1, 0 if
 * the claim had lapsed, or -1 (the answer may or may not be on disk: the
 * row is then sent again once its lease ends, which at-least-once
 * delivery allows). Every posted answer must be waited for. */
struct store_pending;
struct store_pending *store_queue_result_post(struct store *st,
					      const struct store_queue_result *r,
					      struct yj_err *err);
int store_queue_result_wait(struct store *st, struct store_pending *p, struct yj_err *err);
/* Stops every writer thread, after committing what they hold. */
void store_writers_stop(void);
/* Inside a transaction: the blobs row of a blob file (and, where
 * contents are rows, its bytes), refcount 0 until messages name it. */
int store_blob_insert_row(struct store *st, const char *id, uint64_t size, int64_t now,
			  struct yj_err *err) YJ_MUST_CHECK;
/* Flushes, fsyncs (unless contents go into the database) and closes a
 * written blob. */
int store_blob_sync(struct store *st, struct store_blob *b, struct yj_err *err) YJ_MUST_CHECK;
/* A blob whose commit may or may not have happened: its file stays (for
 * store_gc if no row names it), the struct lets go of it. */
void store_blob_disown(struct store_blob *b);

#endif
