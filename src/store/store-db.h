/* store-db.h - the database interface the store's logic is written over.
 *
 * Private to src/store/. A driver (SQLite, PostgreSQL) fills a struct
 * store_driver; the logic reaches the database only through it, with
 * statements in one portable SQL:
 * - parameters are ?1, ?2 ... (a driver rewrites them as it needs);
 * - integers are 64-bit, bit operators & | ~ work on them;
 * - RETURNING, SAVEPOINT / ROLLBACK TO / RELEASE, ON DELETE CASCADE;
 * - no engine-specific functions (no scalar max(): CASE instead).
 * Schema steps (DDL) are per driver: types and triggers differ.
 */
#ifndef YJ_STORE_DB_H
#define YJ_STORE_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

struct store_db;			/* a connection of some driver */
struct store_note_list;

/* A prepared statement; each driver's own struct begins with this. */
struct store_q {
	const struct store_driver *drv;
};

/* Why the last statement failed, as far as the logic cares. */
enum store_db_fail {
	STORE_FAIL_OTHER,
	STORE_FAIL_UNIQUE,		/* a UNIQUE or PRIMARY KEY constraint */
	STORE_FAIL_CHECK,		/* a CHECK constraint */
};

struct store_driver {
	const char *name;
	/* Message contents are rows (blob_data), not files: a blob file is
	 * then only where a session stages it until its delivery commits. */
	bool blobs_in_db;
	/* Rows may be locked by writers of other nodes at once (row locks,
	 * not one write lock): claims then skip locked rows. */
	bool row_locks;
	/* Idle connections a process keeps for later sessions, at most: a
	 * server's connections are its backends, shared by all nodes. */
	size_t pool_max;

	/* ---- connections ---- */
	/* Opens a connection for data_dir (SQLite: its youju.db; others:
	 * dsn). create: the database may be made. */
	int (*open)(const char *data_dir, const char *dsn, bool create, struct store_db **db_r,
		    struct yj_err *err);
	void (*close)(struct store_db *db);
	const char *(*errmsg)(struct store_db *db);
	enum store_db_fail (*last_fail)(struct store_db *db);
	/* Constant SQL without parameters or rows (transaction control). */
	int (*exec)(struct store_db *db, const char *sql, struct yj_err *err);
	/* Begins a transaction that holds the database's write lock (or, for
	 * row-locking engines, begins one), waiting at most wait_ms for
	 * another process that holds it. */
	int (*begin)(struct store_db *db, int wait_ms, struct yj_err *err);
	bool (*in_tx)(struct store_db *db);
	/* After a failed COMMIT: may it still have reached the disk? */
	bool (*commit_unknown)(struct store_db *db);
	/* Rows changed by the last INSERT, UPDATE or DELETE that finished. */
	int64_t (*changes)(struct store_db *db);

	/* ---- statements ---- */
	struct store_q *(*prepare)(struct store_db *db, const char *sql, struct yj_err *err);
	void (*finalize)(struct store_q *q);
	/* Started and not yet reset (rows may be pending). */
	bool (*active)(struct store_q *q);
	/* Ends a run; bindings stay. */
	void (*reset)(struct store_q *q);
	void (*clear)(struct store_q *q);
	/* Text and blobs are used in place until the statement is reset. */
	void (*bind_i64)(struct store_q *q, int i, int64_t v);
	void (*bind_text)(struct store_q *q, int i, const char *s);
	void (*bind_blob)(struct store_q *q, int i, const void *p, size_t n);
	/* 1 a row is ready, 0 done, -1 error (see errmsg, last_fail). */
	int (*step)(struct store_q *q);
	int64_t (*col_i64)(struct store_q *q, int col);
	/* NUL-terminated; valid until the next step or reset. */
	const char *(*col_text)(struct store_q *q, int col, size_t *len_r);
	const void *(*col_blob)(struct store_q *q, int col, size_t *len_r);
	int (*col_count)(struct store_q *q);

	/* ---- schema ---- */
	const char *const *migrations;
	size_t n_migrations;
	int (*get_version)(struct store_db *db, int *version_r, struct yj_err *err);
	/* Inside the step's transaction. */
	int (*set_version)(struct store_db *db, int version, struct yj_err *err);
	/* The engine's own consistency checks (the portable ones are the
	 * store's). */
	int (*check)(struct store_db *db, struct yj_err *err);
	/* After rows were inserted with their ids (store_copy): id
	 * generators must start past them. NULL: nothing to do. */
	int (*after_copy)(struct store_db *db, struct yj_err *err);

	/* ---- full-text search (store_index.c) ---- */
	/* The UIDs of mailbox ?1 whose search_text row is missing, marked
	 * not made (NULL), or matches ?2 in the body (_all: or the header);
	 * ?2 is an FTS5 phrase, or a LIKE pattern if text_like. */
	const char *text_sql_body;
	const char *text_sql_all;
	bool text_like;
	/* ---- change channel and upkeep ---- */
	/* 1 if another connection committed since the last call, 0 if not
	 * (then the maintenance thread reads the `changes` table)... */
	int (*others_committed)(struct store_db *db, struct yj_err *err);
	/* ...or, if not NULL, the other processes' changes come as
	 * notifications, added to found. */
	int (*notices)(struct store_db *db, struct store_note_list *found, struct yj_err *err);
	/* Constant SQL run in a transaction that queued mail to be sent, so
	 * that the other nodes hear of it at its COMMIT (their notices set
	 * found->queued); NULL: there are no other nodes. */
	const char *queue_announce;
	/* The delivery writer's connection: the driver may take over work
	 * the engine would do inside COMMIT (SQLite's checkpoints)... */
	void (*writer_init)(struct store_db *db);
	/* ...and do it after a batch's callers were woken. */
	void (*writer_after_batch)(struct store_db *db);
	/* Before a BEGIN: whether that transaction's COMMIT may return
	 * before it is on disk (deferred): the writer's, which it makes
	 * durable later with writer_flush, or a lazy one's (store_begin_lazy),
	 * which the next durable commit carries; the order of commits is kept
	 * either way, and a process crash loses nothing. */
	int (*sync_mode)(struct store_db *db, bool deferred, struct yj_err *err);
	/* Makes every deferred commit durable; NULL if the database server
	 * does that by itself within a moment (PostgreSQL's WAL writer). */
	void (*writer_flush)(struct store_db *db);
	/* Periodic, from the maintenance thread: keep the log bounded. */
	void (*upkeep)(struct store_db *db);

	/* ---- locks held by a connection across nodes (NULL: none needed,
	 * the process is the only one) ---- */
	int (*try_lock)(struct store_db *db, int64_t key, struct yj_err *err);
	void (*unlock)(struct store_db *db, int64_t key);
	void (*unlock_all)(struct store_db *db);
	/* Whether the connection still holds the locks it took: 1, or -1. */
	int (*locks_held)(struct store_db *db, struct yj_err *err);
};

extern const struct store_driver store_driver_sqlite;
extern const struct store_driver store_driver_pg;

static inline void
store_bind_i64(struct store_q *q, int i, int64_t v)
{
	q->drv->bind_i64(q, i, v);
}

static inline void
store_bind_text(struct store_q *q, int i, const char *s)
{
	q->drv->bind_text(q, i, s);
}

static inline void
store_bind_blob(struct store_q *q, int i, const void *p, size_t n)
{
	q->drv->bind_blob(q, i, p, n);
}

static inline int64_t
store_col_i64(struct store_q *q, int col)
{
	return q->drv->col_i64(q, col);
}

static inline const char *
store_col_str(struct store_q *q, int col)
{
	return q->drv->col_text(q, col, NULL);
}

static inline const void *
store_col_blob(struct store_q *q, int col, size_t *len_r)
{
	return q->drv->col_blob(q, col, len_r);
}

static inline int
store_col_count(struct store_q *q)
{
	return q->drv->col_count(q);
}

static inline void
store_reset(struct store_q *q)
{
	q->drv->reset(q);
}

#endif
