/* store.c - opening and closing the store over its driver, the
 * statement cache, transactions and the integrity check. */
#include "store/store-private.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "base/block.h"
#include "base/log.h"
#include "base/util.h"

int
store_db_err(struct store *st, struct yj_err *err, const char *what)
{
	return yj_err_set(err, "%s: %s", what, st->drv->errmsg(st->db));
}

bool
store_is_unique_violation(struct store *st)
{
	return st->drv->last_fail(st->db) == STORE_FAIL_UNIQUE;
}

bool
store_is_check_violation(struct store *st)
{
	return st->drv->last_fail(st->db) == STORE_FAIL_CHECK;
}

int64_t
store_changes(struct store *st)
{
	return st->drv->changes(st->db);
}

int
store_run(struct store *st, struct store_q *stmt, const char *what, struct yj_err *err)
{
	int rc;

	do
		rc = st->drv->step(stmt);
	while (rc == 1);
	if (rc < 0) {
		/* Read the reason before the reset, which may replace it. */
		store_db_err(st, err, what);
		store_reset(stmt);
		return -1;
	}
	store_reset(stmt);
	return 1;
}

void
store_col_text(struct store_q *stmt, int col, char *out, size_t outlen)
{
	size_t len;
	const char *text = stmt->drv->col_text(stmt, col, &len);

	if (len >= outlen)
		len = outlen - 1;
	if (len > 0)
		memcpy(out, text, len);
	out[len] = '\0';
}

/* Makes room for one more cached statement. */
static void
store_stmt_grow(struct store *st)
{
	size_t cap;
	void *p;

	if (st->n_stmts < st->cap_stmts)
		return;
	cap = st->cap_stmts == 0 ? 32 : st->cap_stmts * 2;
	p = realloc(st->stmts, cap * sizeof(*st->stmts));
	if (p == NULL)
		log_fatal("out of memory");
	st->stmts = p;
	st->cap_stmts = cap;
}

struct store_q *
store_stmt(struct store *st, const char *sql, struct yj_err *err)
{
	struct store_stmt_slot *slot;
	struct store_q *stmt;

	for (size_t i = 0; i < st->n_stmts; i++) {
		slot = &st->stmts[i];
		if (slot->sql != sql)
			continue;
		if (st->drv->active(slot->stmt)) {
			yj_err_set(err, "store: statement used again while in use (nested call)");
			return NULL;
		}
		st->drv->reset(slot->stmt);
		st->drv->clear(slot->stmt);
		return slot->stmt;
	}
	if ((stmt = st->drv->prepare(st->db, sql, err)) == NULL)
		return NULL;
	store_stmt_grow(st);
	st->stmts[st->n_stmts++] = (struct store_stmt_slot){ .sql = sql, .stmt = stmt };
	return stmt;
}

int
store_row(struct store *st, struct store_q *stmt, const char *what, struct yj_err *err)
{
	int rc = st->drv->step(stmt);

	if (rc == 1)
		return 1;
	if (rc == 0) {
		store_reset(stmt);
		return 0;
	}
	store_db_err(st, err, what);
	store_reset(stmt);
	return -1;
}

int
store_one(struct store *st, struct store_q *stmt, const char *what, store_read_fn *read,
	  void *out, struct yj_err *err)
{
	int ret = store_row(st, stmt, what, err);

	if (ret == 1) {
		read(stmt, out);
		store_reset(stmt);
	}
	return ret;
}

/* One range of store_each_range. */
static int
store_range_run(struct store *st, struct store_q *stmt, const char *what, store_read_fn *read,
		void *row, void (*cb)(void *ctx, const void *row), void *ctx,
		struct yj_err *err)
{
	int ret;

	while ((ret = store_row(st, stmt, what, err)) == 1) {
		if (read != NULL)
			read(stmt, row);
		if (cb != NULL)
			cb(ctx, row);
	}
	return ret;
}

int
store_each_range(struct store *st, struct store_q *stmt, int64_t mailbox_id,
		 const struct store_uidset *set, const char *what, store_read_fn *read,
		 void *row, void (*cb)(void *ctx, const void *row), void *ctx,
		 size_t *changes_r, struct yj_err *err)
{
	size_t changes = 0;

	for (size_t i = 0; i < set->n; i++) {
		const struct store_uid_range *r = &set->ranges[i];

		if (r->first > r->last)
			continue;
		store_bind_i64(stmt, 1, mailbox_id);
		store_bind_i64(stmt, 2, r->first);
		store_bind_i64(stmt, 3, r->last);
		if (store_range_run(st, stmt, what, read, row, cb, ctx, err) < 0)
			return -1;
		changes += (size_t)store_changes(st);
	}
	if (changes_r != NULL)
		*changes_r = changes;
	return 1;
}

int
store_insert_id(struct store *st, struct store_q *stmt, const char *what, int64_t *id_r,
		struct yj_err *err)
{
	int ret = store_row(st, stmt, what, err);

	if (ret == 0)
		return yj_err_set(err, "%s: no row", what);
	if (ret < 0)
		return -1;
	*id_r = store_col_i64(stmt, 0);
	/* RETURNING: the statement is finished only when stepped to its end. */
	return store_run(st, stmt, what, err);
}

int
store_exec(struct store *st, const char *sql, struct yj_err *err)
{
	return st->drv->exec(st->db, sql, err);
}

static void
store_write_unlock(struct store *st)
{
	if (!st->write_locked)
		return;
	if (st->lazy) {
		struct yj_err err;

		st->lazy = false;
		if (st->drv->sync_mode(st->db, false, &err) < 0)
			log_error("store: %s", err.msg);
	}
	st->write_locked = false;
	store_site_unlock(st->site);
}

/* What is left of the busy timeout once a writer's turn came: a wait
 * for another process's lock adds up with the wait behind this
 * process's own writers, or each writer queued behind one that waited
 * out a lock held elsewhere (a backup, a stuck command) would wait it
 * out again, and a session would wait a busy timeout per writer ahead. */
static int
store_busy_left(int64_t asked_ms)
{
	int64_t left = STORE_BUSY_TIMEOUT_MS - (util_now_ms() - asked_ms);

	return left > STORE_BUSY_LAST_MS ? (int)left : STORE_BUSY_LAST_MS;
}

int
store_begin(struct store *st, struct yj_err *err)
{
	int64_t asked_ms = util_now_ms();

	store_site_lock(st->site);
	st->write_locked = true;
	if (st->drv->begin(st->db, store_busy_left(asked_ms), err) < 0) {
		store_write_unlock(st);
		return -1;
	}
	return 1;
}

int
store_begin_lazy(struct store *st, struct yj_err *err)
{
	if (st->drv->sync_mode(st->db, true, err) < 0)
		return -1;
	/* Set back when the transaction ends (store_write_unlock), also
	 * when BEGIN fails. */
	st->lazy = true;
	return store_begin(st, err);
}

int
store_commit_ex(struct store *st, bool *ambiguous, struct yj_err *err)
{
	int ret;

	if (ambiguous != NULL)
		*ambiguous = false;
	/* The commit's time is its fsync's. */
	block_begin();
	ret = store_exec(st, "COMMIT", err);
	block_end();
	if (ret < 0) {
		if (ambiguous != NULL)
			*ambiguous = st->drv->commit_unknown(st->db);
		store_rollback(st);
		return -1;
	}
	store_write_unlock(st);
	store_notes_publish(st);
	return 1;
}

int
store_commit(struct store *st, struct yj_err *err)
{
	return store_commit_ex(st, NULL, err);
}

void
store_rollback(struct store *st)
{
	struct yj_err err;

	store_notes_truncate(st, 0);
	if (st->drv->in_tx(st->db) && store_exec(st, "ROLLBACK", &err) < 0)
		log_error("store: rollback failed: %s", err.msg);
	store_write_unlock(st);
}

static void store_free(struct store *st);

/* The data dir's name without trailing slashes ("var/" and "var" are
 * one store; "/" stays "/"). */
static int
store_dir_name(const char *data_dir, char *out, size_t outlen, struct yj_err *err)
{
	size_t len = strlen(data_dir);

	while (len > 1 && data_dir[len - 1] == '/')
		len--;
	if (len == 0)
		return yj_err_set(err, "store: empty data dir");
	if (len >= outlen)
		return yj_err_set(err, "store: data dir path too long");
	memcpy(out, data_dir, len);
	out[len] = '\0';
	return 1;
}

static struct store *
store_alloc(const char *dir)
{
	struct store *st = calloc(1, sizeof(*st));
	size_t len = strlen(dir);

	if (st == NULL)
		log_fatal("out of memory");
	st->data_dir = strdup(dir);
	st->blob_dir = malloc(len + sizeof("/blobs"));
	if (st->data_dir == NULL || st->blob_dir == NULL)
		log_fatal("out of memory");
	memcpy(st->blob_dir, dir, len);
	memcpy(st->blob_dir + len, "/blobs", sizeof("/blobs"));
	return st;
}

/* ---- which driver a data dir uses ---- */

struct store_choice {
	struct store_choice *next;
	char *dir;
	const struct store_driver *drv;
	char *dsn;
};

static pthread_mutex_t store_choices_lock = PTHREAD_MUTEX_INITIALIZER;
static struct store_choice *store_choices;

int
store_set_driver(const char *data_dir, const char *driver, const char *dsn,
		 struct yj_err *err)
{
	const struct store_driver *drv;
	struct store_choice *c;
	char dir[PATH_MAX];

	if (driver == NULL || driver[0] == '\0' || strcmp(driver, "sqlite") == 0)
		drv = &store_driver_sqlite;
	else if (strcmp(driver, "postgresql") == 0)
		drv = &store_driver_pg;
	else
		return yj_err_set(err, "store: unknown store_driver %s (sqlite or postgresql)",
				  driver);
	if (drv == &store_driver_pg && (dsn == NULL || dsn[0] == '\0'))
		return yj_err_set(err, "store: store_driver postgresql needs store_dsn");
	if (store_dir_name(data_dir, dir, sizeof(dir), err) < 0)
		return -1;
	pthread_mutex_lock(&store_choices_lock);
	for (c = store_choices; c != NULL && strcmp(c->dir, dir) != 0; c = c->next)
		;
	if (c == NULL) {
		if ((c = calloc(1, sizeof(*c))) == NULL || (c->dir = strdup(dir)) == NULL)
			log_fatal("out of memory");
		c->next = store_choices;
		store_choices = c;
	}
	free(c->dsn);
	c->drv = drv;
	if ((c->dsn = strdup(dsn != NULL ? dsn : "")) == NULL)
		log_fatal("out of memory");
	pthread_mutex_unlock(&store_choices_lock);
	return 1;
}

/* The driver chosen for dir (SQLite if none was) and a copy of its dsn,
 * which the caller frees. */
static const struct store_driver *
store_driver_of(const char *dir, char **dsn_r)
{
	const struct store_driver *drv = &store_driver_sqlite;
	struct store_choice *c;

	*dsn_r = NULL;
	pthread_mutex_lock(&store_choices_lock);
	for (c = store_choices; c != NULL && strcmp(c->dir, dir) != 0; c = c->next)
		;
	if (c != NULL) {
		drv = c->drv;
		if ((*dsn_r = strdup(c->dsn)) == NULL)
			log_fatal("out of memory");
	}
	pthread_mutex_unlock(&store_choices_lock);
	return drv;
}

/* Opens a connection of drv (dsn) for data_dir. */
static int
store_open_with(const char *data_dir, const struct store_driver *drv, const char *dsn,
		bool create, struct store **st_r, struct yj_err *err)
{
	char dir[PATH_MAX];
	struct stat sb;
	struct store *st;

	*st_r = NULL;
	/* The path is used as given, not made absolute: youjud works from
	 * inside its data dir ("."), whose parents its user may not be
	 * allowed to search. */
	if (store_dir_name(data_dir, dir, sizeof(dir), err) < 0)
		return -1;
	if (stat(dir, &sb) < 0)
		return yj_err_errno(err, "store: data dir %s", dir);
	if (!S_ISDIR(sb.st_mode))
		return yj_err_set(err, "store: data dir %s: not a directory", dir);
	st = store_alloc(dir);
	st->drv = drv;
	if (drv->open(dir, dsn, create, &st->db, err) < 0) {
		store_free(st);
		return -1;
	}
	st->site = store_site_get(dir);
	*st_r = st;
	return 1;
}

int
store_open_driver(const char *data_dir, const char *driver, const char *dsn,
		  struct store **st_r, struct yj_err *err)
{
	const struct store_driver *drv;

	*st_r = NULL;
	if (driver != NULL && strcmp(driver, "postgresql") == 0)
		drv = &store_driver_pg;
	else if (driver == NULL || strcmp(driver, "sqlite") == 0)
		drv = &store_driver_sqlite;
	else
		return yj_err_set(err, "store: unknown driver %s", driver);
	if (store_open_with(data_dir, drv, dsn, true, st_r, err) < 0)
		return -1;
	(*st_r)->no_pool = true;
	if (store_migrate(*st_r, err) < 0) {
		store_free(*st_r);
		*st_r = NULL;
		return -1;
	}
	return 1;
}

static size_t store_pool_shed(const char *dir);

/* Tries after a refused connection once the pool gave its idle ones
 * back, and how long each waits first (ms): a closed PostgreSQL
 * backend frees its place only when its process has ended. */
#define STORE_OPEN_RETRIES 5
#define STORE_OPEN_RETRY_MS 20

int
store_open_db(const char *data_dir, bool create, struct store **st_r, struct yj_err *err)
{
	char dir[PATH_MAX], *dsn;
	const struct store_driver *drv;
	int ret;

	*st_r = NULL;
	if (store_dir_name(data_dir, dir, sizeof(dir), err) < 0)
		return -1;
	drv = store_driver_of(dir, &dsn);
	ret = store_open_with(dir, drv, dsn, create, st_r, err);
	/* The database may refuse one more connection (PostgreSQL's
	 * max_connections, a role's or database's limit) while this
	 * process's pool holds idle ones after a busy spell: they give way,
	 * else a writer thread or a session that needs a connection of its
	 * own would be refused until the pool is trimmed, or for good if
	 * the limit is low. */
	if (ret < 0 && store_pool_shed(dir) > 0) {
		for (int i = 0; ret < 0 && i < STORE_OPEN_RETRIES; i++) {
			struct timespec ts = { 0, STORE_OPEN_RETRY_MS * 1000000L * (i + 1) };

			block_begin();
			nanosleep(&ts, NULL);
			block_end();
			ret = store_open_with(dir, drv, dsn, create, st_r, err);
		}
	}
	free(dsn);
	return ret;
}

int
store_create(const char *data_dir, struct yj_err *err)
{
	char blobs[STORE_PATH_MAX];
	struct store *st;
	int ret;

	if (snprintf(blobs, sizeof(blobs), "%s/blobs", data_dir) >= (int)sizeof(blobs))
		return yj_err_set(err, "store: data dir path too long");
	if (util_mkdir_p(data_dir, 0750, err) < 0 || util_mkdir_p(blobs, 0750, err) < 0)
		return -1;
	if (store_open_db(data_dir, true, &st, err) < 0)
		return -1;
	ret = store_migrate(st, err);
	store_close(&st);
	if (ret < 0)
		return -1;
	/* The entries of youju.db, its WAL and blobs/ must survive a crash. */
	return util_fsync_dir(data_dir, err);
}

/* ---- the pool of idle connections ----
 * Opening a connection costs a file open, the PRAGMAs, the schema check
 * and, later, preparing every statement again. A session lives for one
 * message or less, so youjud keeps closed connections (with their
 * prepared statements) for the next session instead.
 *
 * As many as were in use at once, up to the driver's pool_max (SQLite
 * 128; PostgreSQL 32, whose connections are server processes that
 * every node shares): a hundred busy IMAP clients have some forty
 * connections out (each STORE waits for the writer with its own), and a
 * pool of 32 on SQLite opened a connection for nearly every tenth
 * command. Those idle for STORE_POOL_IDLE_MS are closed again
 * (store_pool_trim), down to STORE_POOL_KEEP. */

#define STORE_POOL_MAX 128
#define STORE_POOL_KEEP 8
#define STORE_POOL_IDLE_MS 60000

static pthread_mutex_t store_pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct store *store_pool[STORE_POOL_MAX];
static size_t store_pool_n;

static struct store *
store_pool_take(const char *data_dir)
{
	char dir[PATH_MAX];
	struct store *st = NULL;

	if (store_dir_name(data_dir, dir, sizeof(dir), NULL) < 0)
		return NULL;
	pthread_mutex_lock(&store_pool_lock);
	for (size_t i = store_pool_n; i-- > 0;) {
		if (strcmp(store_pool[i]->data_dir, dir) == 0) {
			st = store_pool[i];
			store_pool[i] = store_pool[--store_pool_n];
			break;
		}
	}
	pthread_mutex_unlock(&store_pool_lock);
	return st;
}

/* Keeps st for reuse if there is room and it is idle; 1 if kept. */
static int
store_pool_put(struct store *st)
{
	int kept = 0;

	/* A connection inside a transaction is not idle: close it. */
	if (st->db == NULL || st->drv->in_tx(st->db) || st->no_pool)
		return 0;
	st->pooled_at = util_now_ms();
	pthread_mutex_lock(&store_pool_lock);
	if (store_pool_n < STORE_POOL_MAX && store_pool_n < st->drv->pool_max) {
		store_pool[store_pool_n++] = st;
		kept = 1;
	}
	pthread_mutex_unlock(&store_pool_lock);
	return kept;
}

void
store_pool_trim(void)
{
	struct store *old[STORE_POOL_MAX];
	size_t n_old = 0;
	int64_t before = util_now_ms() - STORE_POOL_IDLE_MS;

	pthread_mutex_lock(&store_pool_lock);
	for (size_t i = store_pool_n; i-- > 0 && store_pool_n > STORE_POOL_KEEP;) {
		if (store_pool[i]->pooled_at <= before) {
			old[n_old++] = store_pool[i];
			store_pool[i] = store_pool[--store_pool_n];
		}
	}
	pthread_mutex_unlock(&store_pool_lock);
	for (size_t i = 0; i < n_old; i++)
		store_free(old[i]);
}

/* Closes the pooled connections of dir: how many. */
static size_t
store_pool_shed(const char *dir)
{
	struct store *old[STORE_POOL_MAX];
	size_t n_old = 0;

	pthread_mutex_lock(&store_pool_lock);
	for (size_t i = store_pool_n; i-- > 0;) {
		if (strcmp(store_pool[i]->data_dir, dir) == 0) {
			old[n_old++] = store_pool[i];
			store_pool[i] = store_pool[--store_pool_n];
		}
	}
	pthread_mutex_unlock(&store_pool_lock);
	for (size_t i = 0; i < n_old; i++)
		store_free(old[i]);
	return n_old;
}

static void
store_pool_drain(void)
{
	pthread_mutex_lock(&store_pool_lock);
	while (store_pool_n > 0)
		store_free(store_pool[--store_pool_n]);
	pthread_mutex_unlock(&store_pool_lock);
}

int
store_open(const char *data_dir, struct store **st_r, struct yj_err *err)
{
	*st_r = store_pool_take(data_dir);
	if (*st_r == NULL && store_open_db(data_dir, false, st_r, err) < 0)
		return -1;
	if (store_migrate(*st_r, err) < 0) {
		store_free(*st_r);
		*st_r = NULL;
		return -1;
	}
	return 1;
}

bool
store_borrow(const char *data_dir, struct store **stp, const char *proto, const char *session_id)
{
	struct yj_err err;

	if (*stp != NULL)
		return true;
	if (store_open(data_dir, stp, &err) < 0) {
		log_error("%s: session=%s store: %s", proto, session_id, err.msg);
		*stp = NULL;
		return false;
	}
	return true;
}

void
store_give_back(struct store **stp)
{
	if (*stp != NULL && (*stp)->maildrop_locks == 0)
		store_close(stp);
}

/* Is a statement of st started and not yet reset (rows pending)? */
static bool
store_stmt_active(const struct store *st)
{
	for (size_t i = 0; i < st->n_stmts; i++)
		if (st->drv->active(st->stmts[i].stmt))
			return true;
	return false;
}

bool
store_give_back_idle(struct store **stp)
{
	struct store *st = *stp;

	if (st == NULL)
		return true;
	if (st->drv->in_tx(st->db) || store_stmt_active(st))
		return false;
	store_give_back(stp);
	return *stp == NULL;
}

/* ---- maildrop locks ---- */

int
store_maildrop_lock(struct store *st, int64_t account_id, struct yj_err *err)
{
	int ret;

	if (st->drv->try_lock == NULL)
		return 1;
	ret = st->drv->try_lock(st->db, account_id, err);
	if (ret == 1)
		st->maildrop_locks++;
	return ret;
}

int
store_maildrop_held(struct store *st, struct yj_err *err)
{
	if (st->drv->locks_held == NULL || st->maildrop_locks == 0)
		return 1;
	return st->drv->locks_held(st->db, err);
}

void
store_maildrop_unlock(struct store *st, int64_t account_id)
{
	if (st == NULL || st->drv->unlock == NULL || st->maildrop_locks == 0)
		return;
	st->drv->unlock(st->db, account_id);
	st->maildrop_locks--;
}

void
store_close(struct store **stp)
{
	struct store *st = *stp;

	if (st == NULL)
		return;
	*stp = NULL;
	/* A pooled connection must not keep a session's locks. */
	if (st->maildrop_locks > 0) {
		st->drv->unlock_all(st->db);
		st->maildrop_locks = 0;
	}
	if (!store_pool_put(st))
		store_free(st);
}

static void
store_free(struct store *st)
{
	for (size_t i = 0; i < st->n_stmts; i++)
		st->drv->finalize(st->stmts[i].stmt);
	free(st->stmts);
	if (st->db != NULL)
		st->drv->close(st->db);
	store_notes_free(st);
	store_write_unlock(st);
	if (st->site != NULL)
		store_site_put(st->site);
	free(st->data_dir);
	free(st->blob_dir);
	free(st);
}

void
store_shutdown(void)
{
	store_maint_stop_all();
	store_writers_stop();
	store_pool_drain();
}

/* ---- integrity ---- */

/* Every blob's refcount must equal the rows that refer to it: the
 * triggers keep it so, and a wrong count would unlink a live file. */
static int
store_check_refcounts(struct store *st, struct yj_err *err)
{
	static const char sql[] =
		"SELECT id, refcount, refs FROM (SELECT b.id, b.refcount,"
		" (SELECT count(*) FROM messages m WHERE m.blob_id = b.id) +"
		" (SELECT count(*) FROM queue q WHERE q.blob_id = b.id) AS refs"
		" FROM blobs b) t WHERE refcount != refs LIMIT 1";
	struct store_q *stmt = store_stmt(st, sql, err);
	char id[STORE_BLOB_ID_MAX];
	int ret;

	if (stmt == NULL)
		return -1;
	ret = store_row(st, stmt, "refcount check", err);
	if (ret == 1) {
		store_col_text(stmt, 0, id, sizeof(id));
		yj_err_set(err, "blob %s has refcount %lld but %lld references", id,
			   (long long)store_col_i64(stmt, 1), (long long)store_col_i64(stmt, 2));
		store_reset(stmt);
		return -1;
	}
	return ret < 0 ? -1 : 1;
}

int
store_integrity_check(struct store *st, struct yj_err *err)
{
	if (st->drv->check(st->db, err) < 0 || store_check_refcounts(st, err) < 0)
		return -1;
	return 1;
}
