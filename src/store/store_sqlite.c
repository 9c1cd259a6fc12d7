/* store_sqlite.c - the SQLite driver: youju.db in the data dir, WAL mode.
 *
 * The embedded default. One connection is used by one thread at a time
 * (SQLite's per-connection mutex is off). The writer thread's connection
 * takes over WAL checkpoints from COMMIT; the maintenance thread asks
 * PRAGMA data_version whether another connection committed, and tries a
 * RESTART checkpoint while the WAL file is larger than its limit.
 */
#include "store/store-private.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"

/* WAL pages after which the writer copies the log into the database:
 * SQLite's default for automatic checkpoints. */
#define SQLITE_CHECKPOINT_PAGES 1000

struct store_db {
	sqlite3 *db;
	char *wal_path;			/* youju.db-wal */
	int last_rc;			/* extended code of the last failure */
	int wal_pages;			/* frames in the WAL after the last commit */
	int64_t data_version;
	bool deferred;			/* writer: synchronous = NORMAL now */
	sqlite3_stmt *user_version;	/* asked at every store_open() */
};

struct sqlite_q {
	struct store_q h;
	struct store_db *db;
	sqlite3_stmt *s;
};

#define Q(q) ((struct sqlite_q *)(q))

/* ---- the VFS ----
 * SQLite makes every database path absolute (getcwd) before it opens
 * the file. youjud, though, enters its data dir as root and works from
 * inside it as mail_owner, who may not be allowed to search the dir's
 * parents (a checkout under /root): the absolute path would fail where
 * "./youju.db" works. So youju's VFS is the default one, except that a
 * relative path is kept as it is. Files are still told apart by inode,
 * and youju never changes directory after opening the store. */

static sqlite3_vfs *sqlite_vfs_base;
static sqlite3_vfs sqlite_vfs;
static pthread_once_t sqlite_vfs_once = PTHREAD_ONCE_INIT;

static int
sqlite_vfs_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
	size_t len = strlen(name);

	if (name[0] == '/')
		return sqlite_vfs_base->xFullPathname(sqlite_vfs_base, name, n, out);
	if (n <= 0 || len >= (size_t)n)
		return SQLITE_CANTOPEN;
	memcpy(out, name, len + 1);
	return SQLITE_OK;
}

static void
sqlite_vfs_init(void)
{
	/* Memory statistics take a process-wide mutex at every allocation
	 * of every connection; youju never reads them. This must come
	 * before SQLite initialises (sqlite3_vfs_find does), and is only
	 * advice if another part of the process initialised it first. */
	(void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	sqlite_vfs_base = sqlite3_vfs_find(NULL);
	if (sqlite_vfs_base == NULL)
		return;
	sqlite_vfs = *sqlite_vfs_base;
	sqlite_vfs.zName = "youju";
	sqlite_vfs.pNext = NULL;
	sqlite_vfs.xFullPathname = sqlite_vfs_full_pathname;
	if (sqlite3_vfs_register(&sqlite_vfs, 0) != SQLITE_OK)
		sqlite_vfs_base = NULL;
}

/* The name of youju's VFS, or NULL (SQLite's default) if it is missing. */
static const char *
sqlite_vfs_name(void)
{
	pthread_once(&sqlite_vfs_once, sqlite_vfs_init);
	return sqlite_vfs_base != NULL ? sqlite_vfs.zName : NULL;
}

/* ---- connections ---- */

static const char *
sqlite_errmsg(struct store_db *db)
{
	return sqlite3_errmsg(db->db);
}

static int
sqlite_fail(struct store_db *db, struct yj_err *err, const char *what)
{
	db->last_rc = sqlite3_extended_errcode(db->db);
	return yj_err_set(err, "%s: %s", what, sqlite3_errmsg(db->db));
}

static enum store_db_fail
sqlite_last_fail(struct store_db *db)
{
	switch (db->last_rc) {
	case SQLITE_CONSTRAINT_UNIQUE:
	case SQLITE_CONSTRAINT_PRIMARYKEY:
		return STORE_FAIL_UNIQUE;
	case SQLITE_CONSTRAINT_CHECK:
		return STORE_FAIL_CHECK;
	default:
		return STORE_FAIL_OTHER;
	}
}

static int
sqlite_exec(struct store_db *db, const char *sql, struct yj_err *err)
{
	char *msg = NULL;

	if (sqlite3_exec(db->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		db->last_rc = sqlite3_extended_errcode(db->db);
		yj_err_set(err, "%s", msg != NULL ? msg : sqlite3_errmsg(db->db));
		sqlite3_free(msg);
		return -1;
	}
	return 1;
}

/* IMMEDIATE: the write lock is taken now, waiting up to the busy
 * timeout, so the transaction never fails half-way on a lock upgrade. */
static int
sqlite_begin(struct store_db *db, int wait_ms, struct yj_err *err)
{
	int ret;

	sqlite3_busy_timeout(db->db, wait_ms);
	ret = sqlite_exec(db, "BEGIN IMMEDIATE", err);
	sqlite3_busy_timeout(db->db, STORE_BUSY_TIMEOUT_MS);
	return ret;
}

static bool
sqlite_in_tx(struct store_db *db)
{
	return !sqlite3_get_autocommit(db->db);
}

/* In WAL mode a commit is its last frame. A COMMIT refused before the
 * frames went out (SQLITE_FULL: no room for them, a constraint) did not
 * happen; an I/O error may come after the commit frame was written (a
 * failed fsync), and recovery could then bring the transaction back. */
static bool
sqlite_commit_unknown(struct store_db *db)
{
	return (db->last_rc & 0xff) == SQLITE_IOERR;
}

static int64_t
sqlite_changes(struct store_db *db)
{
	return sqlite3_changes64(db->db);
}

/* A one-row PRAGMA's value as text. */
static int
sqlite_pragma(struct store_db *db, const char *sql, char *out, size_t outlen,
	      struct yj_err *err)
{
	sqlite3_stmt *stmt;
	const unsigned char *text;
	int rc;

	if (sqlite3_prepare_v2(db->db, sql, -1, &stmt, NULL) != SQLITE_OK)
		return sqlite_fail(db, err, sql);
	rc = sqlite3_step(stmt);
	out[0] = '\0';
	if (rc == SQLITE_ROW && (text = sqlite3_column_text(stmt, 0)) != NULL)
		snprintf(out, outlen, "%s", (const char *)text);
	sqlite3_finalize(stmt);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sqlite_fail(db, err, sql);
	return 1;
}

/* Settings that belong to a connection, not to the file: they are set
 * on every open. WAL is persistent, but asking again costs nothing and
 * catches a file some tool switched back to a rollback journal. */
static int
sqlite_configure(struct store_db *db, const char *data_dir, struct yj_err *err)
{
	char mode[16], sql[64];
	int persist = 1;

	sqlite3_extended_result_codes(db->db, 1);
	sqlite3_busy_timeout(db->db, STORE_BUSY_TIMEOUT_MS);
	/* Keep the -wal and -shm files when the last connection closes:
	 * making them again needs free space, and youjud must be able to
	 * start (and answer 4xx) on a full disk. */
	sqlite3_file_control(db->db, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
	if (sqlite_pragma(db, "PRAGMA journal_mode = WAL", mode, sizeof(mode), err) < 0)
		return -1;
	if (strcmp(mode, "wal") != 0)
		return yj_err_set(err, "store: cannot switch %s to WAL mode", data_dir);
	/* FULL: a commit in WAL mode fsyncs the log, so a transaction that
	 * returned is durable, which is what a 250 reply promises. The WAL
	 * file is cut back to journal_size_limit whenever the log starts
	 * over, so long readers cannot leave it large for good. */
	snprintf(sql, sizeof(sql), "PRAGMA journal_size_limit = %d", STORE_WAL_LIMIT);
	if (sqlite_exec(db, "PRAGMA synchronous = FULL", err) < 0 ||
	    sqlite_exec(db, "PRAGMA foreign_keys = ON", err) < 0 ||
	    sqlite_exec(db, sql, err) < 0)
		return -1;
	return 1;
}

static void
sqlite_close(struct store_db *db)
{
	sqlite3_finalize(db->user_version);
	if (db->db != NULL && sqlite3_close(db->db) != SQLITE_OK)
		log_error("store: close: %s", sqlite3_errmsg(db->db));
	free(db->wal_path);
	free(db);
}

/* The database holds password hashes and what mail says about itself;
 * the data dir may be searchable by every local user (mode 0711, so that
 * they reach sendmail.sock), so the database and its WAL and shared
 * memory files must not be readable by them, whatever the umask was
 * when SQLite made them (it gives the WAL and shm files the database
 * file's mode). A file of another owner is left: chmod is not ours. */
static void
sqlite_private_files(const char *db_path)
{
	static const char *const suffixes[] = { "", "-wal", "-shm" };
	char path[STORE_PATH_MAX];
	struct stat sb;

	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		if (snprintf(path, sizeof(path), "%s%s", db_path, suffixes[i]) >= (int)sizeof(path) ||
		    stat(path, &sb) < 0 || (sb.st_mode & 0007) == 0 || sb.st_uid != geteuid())
			continue;
		if (chmod(path, sb.st_mode & 0770) < 0)
			log_warn("store: cannot make %s private: %s", path, strerror(errno));
	}
}

static int
sqlite_open(const char *data_dir, const char *dsn, bool create, struct store_db **db_r,
	    struct yj_err *err)
{
	char path[STORE_PATH_MAX];
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
	struct store_db *db;

	*db_r = NULL;
	if (snprintf(path, sizeof(path), "%s/%s-wal", data_dir, STORE_DB_NAME) >=
	    (int)sizeof(path))
		return yj_err_set(err, "store: data dir path too long");
	if ((db = calloc(1, sizeof(*db))) == NULL || (db->wal_path = strdup(path)) == NULL)
		log_fatal("out of memory");
	path[strlen(path) - 4] = '\0';		/* youju.db */
	if (create)
		flags |= SQLITE_OPEN_CREATE;
	/* A connection is used by one thread at a time (see store.h), so
	 * SQLite's per-connection mutex is not needed. */
	if (sqlite3_open_v2(path, &db->db, flags, sqlite_vfs_name()) != SQLITE_OK) {
		yj_err_set(err, "store: cannot open %s: %s", path,
			   db->db != NULL ? sqlite3_errmsg(db->db) : "out of memory");
		sqlite_close(db);
		return -1;
	}
	if (sqlite_configure(db, data_dir, err) < 0) {
		sqlite_close(db);
		return -1;
	}
	sqlite_private_files(path);
	*db_r = db;
	return 1;
}

/* ---- statements ---- */

static struct store_q *
sqlite_prepare(struct store_db *db, const char *sql, struct yj_err *err)
{
	struct sqlite_q *q = calloc(1, sizeof(*q));

	if (q == NULL)
		log_fatal("out of memory");
	if (sqlite3_prepare_v3(db->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &q->s, NULL) !=
	    SQLITE_OK) {
		sqlite_fail(db, err, "prepare");
		free(q);
		return NULL;
	}
	q->h.drv = &store_driver_sqlite;
	q->db = db;
	return &q->h;
}

static void
sqlite_finalize(struct store_q *q)
{
	sqlite3_finalize(Q(q)->s);
	free(q);
}

static bool
sqlite_active(struct store_q *q)
{
	return sqlite3_stmt_busy(Q(q)->s);
}

static void
sqlite_reset(struct store_q *q)
{
	sqlite3_reset(Q(q)->s);
}

static void
sqlite_clear(struct store_q *q)
{
	sqlite3_clear_bindings(Q(q)->s);
}

static void
sqlite_bind_i64(struct store_q *q, int i, int64_t v)
{
	sqlite3_bind_int64(Q(q)->s, i, v);
}

static void
sqlite_bind_text(struct store_q *q, int i, const char *s)
{
	sqlite3_bind_text(Q(q)->s, i, s, -1, SQLITE_STATIC);
}

static void
sqlite_bind_blob(struct store_q *q, int i, const void *p, size_t n)
{
	sqlite3_bind_blob64(Q(q)->s, i, p, n, SQLITE_STATIC);
}

static int
sqlite_step(struct store_q *q)
{
	int rc = sqlite3_step(Q(q)->s);

	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	/* Read the reason before a reset, which may replace it. */
	Q(q)->db->last_rc = sqlite3_extended_errcode(Q(q)->db->db);
	return -1;
}

static int64_t
sqlite_col_i64(struct store_q *q, int col)
{
	return sqlite3_column_int64(Q(q)->s, col);
}

static const char *
sqlite_col_text(struct store_q *q, int col, size_t *len_r)
{
	const unsigned char *text = sqlite3_column_text(Q(q)->s, col);

	if (len_r != NULL)
		*len_r = text != NULL ? (size_t)sqlite3_column_bytes(Q(q)->s, col) : 0;
	return text != NULL ? (const char *)text : "";
}

static const void *
sqlite_col_blob(struct store_q *q, int col, size_t *len_r)
{
	const void *p = sqlite3_column_blob(Q(q)->s, col);

	*len_r = p != NULL ? (size_t)sqlite3_column_bytes(Q(q)->s, col) : 0;
	return p;
}

static int
sqlite_col_count(struct store_q *q)
{
	return sqlite3_column_count(Q(q)->s);
}

/* ---- schema and checks ---- */

static int
sqlite_get_version(struct store_db *db, int *version_r, struct yj_err *err)
{
	int rc;

	if (db->user_version == NULL &&
	    sqlite3_prepare_v3(db->db, "PRAGMA user_version", -1, SQLITE_PREPARE_PERSISTENT,
			       &db->user_version, NULL) != SQLITE_OK)
		return sqlite_fail(db, err, "user_version");
	rc = sqlite3_step(db->user_version);
	if (rc == SQLITE_ROW)
		*version_r = sqlite3_column_int(db->user_version, 0);
	else
		sqlite_fail(db, err, "user_version");
	sqlite3_reset(db->user_version);
	return rc == SQLITE_ROW ? 1 : -1;
}

static int
sqlite_set_version(struct store_db *db, int version, struct yj_err *err)
{
	char sql[64];

	/* PRAGMA takes no parameters; the number is ours, not user input. */
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", version);
	return sqlite_exec(db, sql, err);
}

static int
sqlite_check_fk(struct store_db *db, struct yj_err *err)
{
	sqlite3_stmt *stmt;
	char table[64], parent[64];
	int rc;

	if (sqlite3_prepare_v2(db->db, "PRAGMA foreign_key_check", -1, &stmt, NULL) != SQLITE_OK)
		return sqlite_fail(db, err, "foreign_key_check");
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		snprintf(table, sizeof(table), "%s", (const char *)sqlite3_column_text(stmt, 0));
		snprintf(parent, sizeof(parent), "%s", (const char *)sqlite3_column_text(stmt, 2));
		yj_err_set(err, "foreign_key_check: table %s row %lld refers to a missing %s",
			   table, (long long)sqlite3_column_int64(stmt, 1), parent);
	} else if (rc != SQLITE_DONE) {
		sqlite_fail(db, err, "foreign_key_check");
	}
	sqlite3_finalize(stmt);
	return rc == SQLITE_DONE ? 1 : -1;
}

static int
sqlite_check(struct store_db *db, struct yj_err *err)
{
	char result[256];

	if (sqlite_pragma(db, "PRAGMA integrity_check", result, sizeof(result), err) < 0)
		return -1;
	if (strcmp(result, "ok") != 0)
		return yj_err_set(err, "integrity_check: %s", result);
	return sqlite_check_fk(db, err);
}

/* ---- the change channel and the WAL ---- */

static int
sqlite_others_committed(struct store_db *db, struct yj_err *err)
{
	char v[32];
	int64_t version;
	int changed;

	if (sqlite_pragma(db, "PRAGMA data_version", v, sizeof(v), err) < 0)
		return -1;
	version = strtoll(v, NULL, 10);
	changed = version != db->data_version;
	db->data_version = version;
	return changed;
}

static int
sqlite_wal_hook(void *ctx, sqlite3 *handle, const char *name, int pages)
{
	struct store_db *db = ctx;

	db->wal_pages = pages;
	return SQLITE_OK;
}

/* Replaces SQLite's automatic checkpoints on this connection: SQLite
 * would run them inside COMMIT while a batch's callers still wait. */
static void
sqlite_writer_init(struct store_db *db)
{
	sqlite3_wal_hook(db->db, sqlite_wal_hook, db);
}

/* PASSIVE never waits for readers, so IMAP sessions are not held up. */
static void
sqlite_writer_after_batch(struct store_db *db)
{
	int rc;

	if (db->wal_pages < SQLITE_CHECKPOINT_PAGES)
		return;
	rc = sqlite3_wal_checkpoint_v2(db->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	if (rc != SQLITE_OK && rc != SQLITE_BUSY)
		log_warn("store: checkpoint: %s", sqlite3_errmsg(db->db));
	db->wal_pages = 0;
}

/* NORMAL: a commit writes its WAL frames without waiting for the disk;
 * FULL (every other connection's, and the writer's for deliveries)
 * fsyncs the log at COMMIT. The setting cannot change inside a
 * transaction, so it is made before BEGIN. */
static int
sqlite_sync_mode(struct store_db *db, bool deferred, struct yj_err *err)
{
	if (deferred == db->deferred)
		return 1;
	if (sqlite_exec(db, deferred ? "PRAGMA synchronous = NORMAL" : "PRAGMA synchronous = FULL",
			err) < 0)
		return -1;
	db->deferred = deferred;
	return 1;
}

/* The WAL holds every commit in order: one fdatasync of it makes the
 * deferred ones durable. */
static void
sqlite_writer_flush(struct store_db *db)
{
	int fd = open(db->wal_path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fdatasync(fd) < 0)
		log_error("store: cannot sync %s: %s", db->wal_path, strerror(errno));
	if (fd >= 0)
		close(fd);
}

/* Brings the WAL back to journal_size_limit if it grew past it: a
 * RESTART checkpoint makes the next writer start the log from its
 * beginning, which truncates the file. With no busy wait it never holds
 * up deliveries or waits for readers; it is simply tried again later. */
static void
sqlite_upkeep(struct store_db *db)
{
	struct stat sb;
	int rc;

	if (stat(db->wal_path, &sb) < 0 || sb.st_size <= STORE_WAL_LIMIT)
		return;
	sqlite3_busy_timeout(db->db, 0);
	rc = sqlite3_wal_checkpoint_v2(db->db, NULL, SQLITE_CHECKPOINT_RESTART, NULL, NULL);
	sqlite3_busy_timeout(db->db, STORE_BUSY_TIMEOUT_MS);
	if (rc != SQLITE_OK && rc != SQLITE_BUSY)
		log_warn("store: checkpoint: %s", sqlite3_errmsg(db->db));
	else
		log_debug("store: WAL of %lld bytes checkpointed (%s)", (long long)sb.st_size,
			  rc == SQLITE_OK ? "restarted" : "readers still on it");
}

/* Candidates of a text search (store_index.c): the FTS5 table matched
 * once, its rowids looked up from the mailbox's messages. */
static const char sqlite_text_body[] =
	"SELECT m.uid FROM messages m LEFT JOIN search_text t ON t.blob_id = m.blob_id"
	" WHERE m.mailbox_id = ?1 AND (t.id IS NULL OR t.body IS NULL OR t.id IN"
	" (SELECT rowid FROM search_fts WHERE body MATCH ?2)) ORDER BY m.uid";
static const char sqlite_text_all[] =
	"SELECT m.uid FROM messages m LEFT JOIN search_text t ON t.blob_id = m.blob_id"
	" WHERE m.mailbox_id = ?1 AND (t.id IS NULL OR t.body IS NULL OR t.id IN"
	" (SELECT rowid FROM search_fts WHERE search_fts MATCH ?2)) ORDER BY m.uid";

const struct store_driver store_driver_sqlite = {
	.name = "sqlite",
	.pool_max = 128,
	.text_sql_body = sqlite_text_body,
	.text_sql_all = sqlite_text_all,
	.open = sqlite_open,
	.close = sqlite_close,
	.errmsg = sqlite_errmsg,
	.last_fail = sqlite_last_fail,
	.exec = sqlite_exec,
	.begin = sqlite_begin,
	.in_tx = sqlite_in_tx,
	.commit_unknown = sqlite_commit_unknown,
	.changes = sqlite_changes,
	.prepare = sqlite_prepare,
	.finalize = sqlite_finalize,
	.active = sqlite_active,
	.reset = sqlite_reset,
	.clear = sqlite_clear,
	.bind_i64 = sqlite_bind_i64,
	.bind_text = sqlite_bind_text,
	.bind_blob = sqlite_bind_blob,
	.step = sqlite_step,
	.col_i64 = sqlite_col_i64,
	.col_text = sqlite_col_text,
	.col_blob = sqlite_col_blob,
	.col_count = sqlite_col_count,
	.migrations = store_sqlite_migrations,
	.n_migrations = STORE_SQLITE_STEPS,
	.get_version = sqlite_get_version,
	.set_version = sqlite_set_version,
	.check = sqlite_check,
	.others_committed = sqlite_others_committed,
	.writer_init = sqlite_writer_init,
	.writer_after_batch = sqlite_writer_after_batch,
	.sync_mode = sqlite_sync_mode,
	.writer_flush = sqlite_writer_flush,
	.upkeep = sqlite_upkeep,
};
