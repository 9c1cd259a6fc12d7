/* store.c - opening and closing the SQLite store, the statement cache,
 * transactions and the integrity check. */
#include "store/store-private.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/log.h"
#include "base/util.h"

int
store_db_err(struct store *st, struct yj_err *err, const char *what)
{
	return yj_err_set(err, "%s: %s", what, sqlite3_errmsg(st->db));
}

bool
store_is_unique_violation(struct store *st)
{
	return st->last_rc == SQLITE_CONSTRAINT_UNIQUE ||
	       st->last_rc == SQLITE_CONSTRAINT_PRIMARYKEY;
}

int
store_run(struct store *st, sqlite3_stmt *stmt, const char *what, struct yj_err *err)
{
	int rc;

	do
		rc = sqlite3_step(stmt);
	while (rc == SQLITE_ROW);
	if (rc != SQLITE_DONE) {
		/* Read the reason before the reset, which may replace it. */
		st->last_rc = sqlite3_extended_errcode(st->db);
		store_db_err(st, err, what);
		sqlite3_reset(stmt);
		return -1;
	}
	sqlite3_reset(stmt);
	return 1;
}

void
store_col_text(sqlite3_stmt *stmt, int col, char *out, size_t outlen)
{
	const unsigned char *text = sqlite3_column_text(stmt, col);
	size_t len = (size_t)sqlite3_column_bytes(stmt, col);

	if (text == NULL)
		len = 0;
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

sqlite3_stmt *
store_stmt(struct store *st, const char *sql, struct yj_err *err)
{
	struct store_stmt_slot *slot;
	sqlite3_stmt *stmt;

	for (size_t i = 0; i < st->n_stmts; i++) {
		slot = &st->stmts[i];
		if (slot->sql != sql)
			continue;
		if (sqlite3_stmt_busy(slot->stmt)) {
			yj_err_set(err, "store: statement used again while in use (nested call)");
			return NULL;
		}
		sqlite3_reset(slot->stmt);
		sqlite3_clear_bindings(slot->stmt);
		return slot->stmt;
	}
	if (sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt,
			       NULL) != SQLITE_OK) {
		store_db_err(st, err, "prepare");
		return NULL;
	}
	store_stmt_grow(st);
	st->stmts[st->n_stmts++] = (struct store_stmt_slot){ .sql = sql, .stmt = stmt };
	return stmt;
}

int
store_row(struct store *st, sqlite3_stmt *stmt, const char *what, struct yj_err *err)
{
	int rc = sqlite3_step(stmt);

	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE) {
		sqlite3_reset(stmt);
		return 0;
	}
	st->last_rc = sqlite3_extended_errcode(st->db);
	store_db_err(st, err, what);
	sqlite3_reset(stmt);
	return -1;
}

int
store_one(struct store *st, sqlite3_stmt *stmt, const char *what, store_read_fn *read,
	  void *out, struct yj_err *err)
{
	int ret = store_row(st, stmt, what, err);

	if (ret == 1) {
		read(stmt, out);
		sqlite3_reset(stmt);
	}
	return ret;
}

/* One range of store_each_range. */
static int
store_range_run(struct store *st, sqlite3_stmt *stmt, const char *what, store_read_fn *read,
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
store_each_range(struct store *st, sqlite3_stmt *stmt, int64_t mailbox_id,
		 const struct store_uidset *set, const char *what, store_read_fn *read,
		 void *row, void (*cb)(void *ctx, const void *row), void *ctx,
		 size_t *changes_r, struct yj_err *err)
{
	size_t changes = 0;

	for (size_t i = 0; i < set->n; i++) {
		const struct store_uid_range *r = &set->ranges[i];

		if (r->first > r->last)
			continue;
		sqlite3_bind_int64(stmt, 1, mailbox_id);
		sqlite3_bind_int64(stmt, 2, r->first);
		sqlite3_bind_int64(stmt, 3, r->last);
		if (store_range_run(st, stmt, what, read, row, cb, ctx, err) < 0)
			return -1;
		changes += (size_t)sqlite3_changes(st->db);
	}
	if (changes_r != NULL)
		*changes_r = changes;
	return 1;
}

int
store_exec(struct store *st, const char *sql, struct yj_err *err)
{
	char *msg = NULL;

	if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		yj_err_set(err, "%s", msg != NULL ? msg : sqlite3_errmsg(st->db));
		sqlite3_free(msg);
		return -1;
	}
	return 1;
}

static void
store_write_unlock(struct store *st)
{
	if (!st->write_locked)
		return;
	st->write_locked = false;
	store_site_unlock(st->site);
}

int
store_begin(struct store *st, struct yj_err *err)
{
	store_site_lock(st->site);
	st->write_locked = true;
	if (store_exec(st, "BEGIN IMMEDIATE", err) < 0) {
		store_write_unlock(st);
		return -1;
	}
	return 1;
}

int
store_commit_ex(struct store *st, bool *ambiguous, struct yj_err *err)
{
	if (ambiguous != NULL)
		*ambiguous = false;
	if (store_exec(st, "COMMIT", err) < 0) {
		if (ambiguous != NULL)
			*ambiguous = true;
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
	if (!sqlite3_get_autocommit(st->db) && store_exec(st, "ROLLBACK", &err) < 0)
		log_error("store: rollback failed: %s", err.msg);
	store_write_unlock(st);
}

/* Settings that belong to a connection, not to the file: they are set
 * on every open. WAL is persistent, but asking again costs nothing and
 * catches a file some tool switched back to a rollback journal. */
static int
store_configure(struct store *st, struct yj_err *err)
{
	sqlite3_stmt *stmt;
	char mode[16], limit[64];
	int persist = 1;

	sqlite3_extended_result_codes(st->db, 1);
	sqlite3_busy_timeout(st->db, STORE_BUSY_TIMEOUT_MS);
	/* Keep the -wal and -shm files when the last connection closes:
	 * making them again needs free space, and youjud must be able to
	 * start (and answer 4xx) on a full disk. */
	sqlite3_file_control(st->db, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
	if (sqlite3_prepare_v2(st->db, "PRAGMA journal_mode = WAL", -1, &stmt, NULL) != SQLITE_OK)
		return store_db_err(st, err, "journal_mode");
	mode[0] = '\0';
	if (sqlite3_step(stmt) == SQLITE_ROW)
		store_col_text(stmt, 0, mode, sizeof(mode));
	sqlite3_finalize(stmt);
	if (strcmp(mode, "wal") != 0)
		return yj_err_set(err, "store: cannot switch %s to WAL mode", st->data_dir);
	/* FULL: a commit in WAL mode fsyncs the log, so a transaction that
	 * returned is durable, which is what a 250 reply promises. */
	/* The WAL file is cut back to this size when a checkpoint lets the
	 * log start over, so long readers cannot leave it large for good. */
	snprintf(limit, sizeof(limit), "PRAGMA journal_size_limit = %d", STORE_WAL_LIMIT);
	if (store_exec(st, "PRAGMA synchronous = FULL", err) < 0 ||
	    store_exec(st, "PRAGMA foreign_keys = ON", err) < 0 ||
	    store_exec(st, limit, err) < 0)
		return -1;
	return 1;
}

static void store_free(struct store *st);

/* ---- the SQLite VFS ----
 * SQLite makes every database path absolute (getcwd) before it opens
 * the file. youjud, though, enters its data dir as root and works from
 * inside it as mail_owner, who may not be allowed to search the dir's
 * parents (a checkout under /root): the absolute path would fail where
 * "./youju.db" works. So youju's VFS is the default one, except that a
 * relative path is kept as it is. Files are still told apart by inode,
 * and youju never changes directory after opening the store. */

static sqlite3_vfs *store_vfs_base;
static sqlite3_vfs store_vfs;
static pthread_once_t store_vfs_once = PTHREAD_ONCE_INIT;

static int
store_vfs_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
	size_t len = strlen(name);

	if (name[0] == '/')
		return store_vfs_base->xFullPathname(store_vfs_base, name, n, out);
	if (n <= 0 || len >= (size_t)n)
		return SQLITE_CANTOPEN;
	memcpy(out, name, len + 1);
	return SQLITE_OK;
}

static void
store_vfs_init(void)
{
	store_vfs_base = sqlite3_vfs_find(NULL);
	if (store_vfs_base == NULL)
		return;
	store_vfs = *store_vfs_base;
	store_vfs.zName = "youju";
	store_vfs.pNext = NULL;
	store_vfs.xFullPathname = store_vfs_full_pathname;
	if (sqlite3_vfs_register(&store_vfs, 0) != SQLITE_OK)
		store_vfs_base = NULL;
}

/* The name of youju's VFS, or NULL (SQLite's default) if it is missing. */
static const char *
store_vfs_name(void)
{
	pthread_once(&store_vfs_once, store_vfs_init);
	return store_vfs_base != NULL ? store_vfs.zName : NULL;
}

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

int
store_open_db(const char *data_dir, bool create, struct store **st_r, struct yj_err *err)
{
	char dir[PATH_MAX], db_path[STORE_PATH_MAX];
	struct stat sb;
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
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
	if (snprintf(db_path, sizeof(db_path), "%s/%s", dir, STORE_DB_NAME) >=
	    (int)sizeof(db_path))
		return yj_err_set(err, "store: data dir path too long");
	if (create)
		flags |= SQLITE_OPEN_CREATE;
	st = store_alloc(dir);
	/* A connection is used by one thread at a time (see store.h), so
	 * SQLite's per-connection mutex is not needed. */
	if (sqlite3_open_v2(db_path, &st->db, flags, store_vfs_name()) != SQLITE_OK) {
		if (st->db == NULL)
			yj_err_set(err, "store: cannot open %s: out of memory", db_path);
		else
			yj_err_set(err, "store: cannot open %s: %s", db_path,
				   sqlite3_errmsg(st->db));
		store_free(st);
		return -1;
	}
	if (store_configure(st, err) < 0) {
		store_free(st);
		return -1;
	}
	st->site = store_site_get(dir);
	*st_r = st;
	return 1;
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
 * prepared statements) for the next session instead. */

#define STORE_POOL_MAX 32

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
	if (st->db == NULL || !sqlite3_get_autocommit(st->db))
		return 0;
	pthread_mutex_lock(&store_pool_lock);
	if (store_pool_n < STORE_POOL_MAX) {
		store_pool[store_pool_n++] = st;
		kept = 1;
	}
	pthread_mutex_unlock(&store_pool_lock);
	return kept;
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

void
store_close(struct store **stp)
{
	struct store *st = *stp;

	if (st == NULL)
		return;
	*stp = NULL;
	if (!store_pool_put(st))
		store_free(st);
}

static void
store_free(struct store *st)
{
	for (size_t i = 0; i < st->n_stmts; i++)
		sqlite3_finalize(st->stmts[i].stmt);
	free(st->stmts);
	if (st->db != NULL && sqlite3_close(st->db) != SQLITE_OK)
		log_error("store: close %s: %s", st->data_dir, sqlite3_errmsg(st->db));
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

static int
store_check_sqlite(struct store *st, struct yj_err *err)
{
	sqlite3_stmt *stmt;
	char result[256];
	int rc;

	if (sqlite3_prepare_v2(st->db, "PRAGMA integrity_check", -1, &stmt, NULL) != SQLITE_OK)
		return store_db_err(st, err, "integrity_check");
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW)
		store_col_text(stmt, 0, result, sizeof(result));
	sqlite3_finalize(stmt);
	if (rc != SQLITE_ROW)
		return store_db_err(st, err, "integrity_check");
	if (strcmp(result, "ok") != 0)
		return yj_err_set(err, "integrity_check: %s", result);
	return 1;
}

static int
store_check_foreign_keys(struct store *st, struct yj_err *err)
{
	sqlite3_stmt *stmt;
	char table[64], parent[64];
	int rc;

	if (sqlite3_prepare_v2(st->db, "PRAGMA foreign_key_check", -1, &stmt, NULL) != SQLITE_OK)
		return store_db_err(st, err, "foreign_key_check");
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		store_col_text(stmt, 0, table, sizeof(table));
		store_col_text(stmt, 2, parent, sizeof(parent));
		yj_err_set(err, "foreign_key_check: table %s row %lld refers to a missing %s",
			   table, (long long)sqlite3_column_int64(stmt, 1), parent);
	} else if (rc != SQLITE_DONE) {
		store_db_err(st, err, "foreign_key_check");
	}
	sqlite3_finalize(stmt);
	return rc == SQLITE_DONE ? 1 : -1;
}

/* Every blob's refcount must equal the rows that refer to it: the
 * triggers keep it so, and a wrong count would unlink a live file. */
static int
store_check_refcounts(struct store *st, struct yj_err *err)
{
	static const char sql[] =
		"SELECT b.id, b.refcount,"
		" (SELECT count(*) FROM messages m WHERE m.blob_id = b.id) +"
		" (SELECT count(*) FROM queue q WHERE q.blob_id = b.id) AS refs"
		" FROM blobs b WHERE b.refcount != refs LIMIT 1";
	sqlite3_stmt *stmt;
	char id[STORE_BLOB_ID_MAX];
	int rc;

	if (sqlite3_prepare_v2(st->db, sql, -1, &stmt, NULL) != SQLITE_OK)
		return store_db_err(st, err, "refcount check");
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		store_col_text(stmt, 0, id, sizeof(id));
		yj_err_set(err, "blob %s has refcount %lld but %lld references", id,
			   (long long)sqlite3_column_int64(stmt, 1),
			   (long long)sqlite3_column_int64(stmt, 2));
	} else if (rc != SQLITE_DONE) {
		store_db_err(st, err, "refcount check");
	}
	sqlite3_finalize(stmt);
	return rc == SQLITE_DONE ? 1 : -1;
}

int
store_integrity_check(struct store *st, struct yj_err *err)
{
	if (store_check_sqlite(st, err) < 0 || store_check_foreign_keys(st, err) < 0 ||
	    store_check_refcounts(st, err) < 0)
		return -1;
	return 1;
}
