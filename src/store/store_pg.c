/* store_pg.c - the PostgreSQL driver (libpq), for several youjud nodes on
 * one database.
 *
 * Statements are prepared on first use with the types of the values
 * bound then (so that "SELECT ?1 ..." needs no casts), parameters sent as
 * text (integers, text) or binary (bytea), results read as text. A
 * statement without parameters (transaction control, savepoints) is sent
 * as a simple query. Message contents live in the database too
 * (blob_data), so that every node sees every message.
 *
 * Isolation is READ COMMITTED: the store's allocator locks the mailbox
 * row first in every change (UPDATE ... RETURNING), which serializes the
 * changes of one mailbox whatever the node. Change notices reach the
 * other nodes through LISTEN/NOTIFY: a trigger on `changes` sends each row
 * as the payload, which PostgreSQL delivers at COMMIT, in commit order.
 * Mail queued to be sent is announced on a second channel, so that an
 * idle node sends it at once.
 */
#include "store/store-private.h"

#include <errno.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/block.h"
#include "base/log.h"

/* Type oids of the values bound (pg_type.dat). */
#define PG_INT8OID 20
#define PG_TEXTOID 25
#define PG_BYTEAOID 17
#define PG_PARAMS_MAX 24
#define PG_BLOB_COLS 8			/* blob columns of one row held at once */
#define PG_CHANNEL "youju_changes"
#define PG_QUEUE_CHANNEL "youju_queue"	/* mail queued to be sent, no payload */

struct store_db {
	PGconn *conn;
	char errmsg[512];
	enum store_db_fail last_fail;
	int64_t changes;
	unsigned next_name;		/* of prepared statements */
	unsigned generation;		/* +1 at each reconnection */
	bool listening;
	bool deferred;			/* writer: the next COMMIT need not wait */
	/* The connection broke inside a transaction the store has not yet
	 * rolled back: no statement may run on a new connection until it
	 * does, or it would run outside that transaction. */
	bool tx_lost;
	/* Maildrop locks held: they went with a lost connection, so it is
	 * not made again under the session that counted on them. */
	unsigned locks;
};

struct pg_q {
	struct store_q h;
	struct store_db *db;
	char *sql;			/* with $N */
	int nparams;
	char name[24];			/* "" until prepared */
	unsigned generation;		/* of the connection it was prepared on */
	unsigned prepared_types[PG_PARAMS_MAX];
	unsigned types[PG_PARAMS_MAX];
	const char *values[PG_PARAMS_MAX];
	int lengths[PG_PARAMS_MAX];
	int formats[PG_PARAMS_MAX];
	char nums[PG_PARAMS_MAX][24];
	PGresult *res;			/* of the current run */
	int row;
	bool active;
	/* col_blob values, unescaped, one per column (the last slot shared
	 * by the columns beyond), valid until the row changes: a copy
	 * binds several blob columns of one row at once. */
	unsigned char *blob[PG_BLOB_COLS];
};

#define Q(q) ((struct pg_q *)(q))

static void
pg_blobs_free(struct pg_q *p)
{
	for (int i = 0; i < PG_BLOB_COLS; i++) {
		PQfreemem(p->blob[i]);
		p->blob[i] = NULL;
	}
}

/* ---- errors ---- */

/* Keeps libpq's message as one line in db->errmsg and returns it. Its
 * messages end in a newline and may run over several lines (DETAIL,
 * HINT); the text reaches logs and protocol replies (an IMAP NO), where
 * a line break would end the reply early and start a bogus one. */
static const char *
pg_message(struct store_db *db, const char *msg)
{
	size_t len;

	snprintf(db->errmsg, sizeof(db->errmsg), "%s", msg != NULL ? msg : "");
	for (char *p = db->errmsg; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	len = strlen(db->errmsg);
	while (len > 0 && db->errmsg[len - 1] == ' ')
		db->errmsg[--len] = '\0';
	return db->errmsg;
}

/* Records a failed result: message and what kind of failure. */
static void
pg_note_failure(struct store_db *db, const PGresult *res)
{
	const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res != NULL ? PQresultErrorMessage(res) : PQerrorMessage(db->conn);

	(void)pg_message(db, msg != NULL && msg[0] != '\0' ? msg : PQerrorMessage(db->conn));
	db->last_fail = STORE_FAIL_OTHER;
	if (state != NULL && strcmp(state, "23505") == 0)
		db->last_fail = STORE_FAIL_UNIQUE;
	else if (state != NULL && strcmp(state, "23514") == 0)
		db->last_fail = STORE_FAIL_CHECK;
}

static const char *
pg_errmsg(struct store_db *db)
{
	return db->errmsg;
}

static enum store_db_fail
pg_last_fail(struct store_db *db)
{
	return db->last_fail;
}

static bool
pg_result_ok(const PGresult *res)
{
	ExecStatusType s = PQresultStatus(res);

	return s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
}

/* ---- connections ---- */

/* Limits that stand in for SQLite's busy timeout: no statement or lock
 * wait may hang a session, and a transaction left open is ended. */
static const char pg_session_settings[] =
	"SET lock_timeout = '10s';"
	"SET statement_timeout = '60s';"
	"SET idle_in_transaction_session_timeout = '120s';"
	"SET client_min_messages = warning";

static const char *pg_exec_once(struct store_db *db, const char *sql);

/* Whether no transaction is open: a new connection may then stand in
 * for a lost one. A broken connection reports no transaction status
 * (PQTRANS_UNKNOWN), so what it had open is remembered (tx_lost). */
static bool
pg_idle(const struct store_db *db)
{
	if (PQstatus(db->conn) == CONNECTION_BAD)
		return !db->tx_lost;
	return PQtransactionStatus(db->conn) == PQTRANS_IDLE;
}

/* After a failure of a statement that ran with was_idle: if the
 * connection itself was lost (the server restarted, the backend was
 * ended) and no transaction was open, makes it again and says so, so
 * that the caller may try once more. Inside a transaction the failure
 * stands: its work is gone, and the transaction is remembered as lost
 * (tx_lost) until the store rolls it back. So the failure stands while
 * the connection held maildrop locks: the session that took them would
 * go on without them (another node may hold the maildrop by now) until
 * it lets them go. Statements are prepared again on the new
 * connection, LISTEN is sent again. */
static bool
pg_reconnected(struct store_db *db, bool was_idle)
{
	if (PQstatus(db->conn) != CONNECTION_BAD)
		return false;
	if (!was_idle)
		db->tx_lost = true;
	if (!was_idle || db->locks > 0)
		return false;
	block_begin();		/* a new connection: a wait for the server */
	PQreset(db->conn);
	block_end();
	if (PQstatus(db->conn) != CONNECTION_OK)
		return false;
	db->generation++;
	db->listening = false;
	log_warn("store: reconnected to PostgreSQL");
	return pg_exec_once(db, pg_session_settings) != NULL;
}

/* PQexec, out of the run slot: the database server does the work, this
 * thread only waits for it (base/block.h). */
static PGresult *
pg_exec_waiting(PGconn *conn, const char *sql)
{
	PGresult *res;

	block_begin();
	res = PQexec(conn, sql);
	block_end();
	return res;
}

/* Runs sql once; NULL if it failed (db->errmsg set), else "". */
static const char *
pg_exec_once(struct store_db *db, const char *sql)
{
	PGresult *res = pg_exec_waiting(db->conn, sql);
	bool ok = pg_result_ok(res);

	if (!ok)
		pg_note_failure(db, res);
	PQclear(res);
	return ok ? "" : NULL;
}

static int
pg_exec(struct store_db *db, const char *sql, struct yj_err *err)
{
	bool idle = pg_idle(db);

	/* The server ended the transaction when the connection broke. */
	if (db->tx_lost && strcmp(sql, "ROLLBACK") == 0) {
		db->tx_lost = false;
		return 1;
	}
	if (pg_exec_once(db, sql) != NULL)
		return 1;
	if (pg_reconnected(db, idle) && pg_exec_once(db, sql) != NULL)
		return 1;
	return yj_err_set(err, "%s", db->errmsg);
}

/* The server's WAL writer flushes an asynchronous commit within a
 * moment by itself (three wal_writer_delay at most), in commit order. */
static int
pg_begin(struct store_db *db, int wait_ms, struct yj_err *err)
{
	/* BEGIN takes no lock here: row locks wait in their statements,
	 * each up to lock_timeout. */
	(void)wait_ms;
	return pg_exec(db, db->deferred ? "BEGIN; SET LOCAL synchronous_commit = off" : "BEGIN",
		       err);
}

static int
pg_sync_mode(struct store_db *db, bool deferred, struct yj_err *err)
{
	(void)err;
	db->deferred = deferred;
	return 1;
}

static bool
pg_in_tx(struct store_db *db)
{
	return !pg_idle(db);
}

/* The server answered: it did not commit. The connection broke: it may
 * have committed before the answer was lost. */
static bool
pg_commit_unknown(struct store_db *db)
{
	return PQstatus(db->conn) == CONNECTION_BAD;
}

static int64_t
pg_changes(struct store_db *db)
{
	return db->changes;
}

static void
pg_close(struct store_db *db)
{
	PQfinish(db->conn);
	free(db);
}



static int
pg_open(const char *data_dir, const char *dsn, bool create, struct store_db **db_r,
	struct yj_err *err)
{
	struct store_db *db = calloc(1, sizeof(*db));

	*db_r = NULL;
	if (db == NULL)
		log_fatal("out of memory");
	/* Connecting waits for the server (and its new backend): a session
	 * opening a store leaves its run slot meanwhile (base/block.h). */
	block_begin();
	db->conn = PQconnectdb(dsn != NULL ? dsn : "");
	block_end();
	if (PQstatus(db->conn) != CONNECTION_OK) {
		yj_err_set(err, "store: cannot connect to PostgreSQL: %s",
			   pg_message(db, PQerrorMessage(db->conn)));
		pg_close(db);
		return -1;
	}
	if (pg_exec(db, pg_session_settings, err) < 0) {
		pg_close(db);
		return -1;
	}
	*db_r = db;
	return 1;
}

/* ---- statements ---- */

/* "?N" becomes "$N"; returns the highest N. A '?' inside a string
 * literal is left alone. */
static int
pg_translate(const char *sql, char **out_r)
{
	char *out = malloc(strlen(sql) + 1);
	int max = 0;
	bool quoted = false;
	size_t o = 0;

	if (out == NULL)
		log_fatal("out of memory");
	for (const char *p = sql; *p != '\0'; p++) {
		if (*p == '\'')
			quoted = !quoted;
		if (*p == '?' && !quoted && p[1] >= '0' && p[1] <= '9') {
			out[o++] = '$';
			if (atoi(p + 1) > max)
				max = atoi(p + 1);
			continue;
		}
		out[o++] = *p;
	}
	out[o] = '\0';
	*out_r = out;
	return max;
}

static struct store_q *
pg_prepare(struct store_db *db, const char *sql, struct yj_err *err)
{
	struct pg_q *q = calloc(1, sizeof(*q));

	if (q == NULL)
		log_fatal("out of memory");
	q->nparams = pg_translate(sql, &q->sql);
	if (q->nparams > PG_PARAMS_MAX) {
		yj_err_set(err, "store: a statement has more than %d parameters", PG_PARAMS_MAX);
		free(q->sql);
		free(q);
		return NULL;
	}
	q->h.drv = &store_driver_pg;
	q->db = db;
	return &q->h;
}

static void
pg_reset(struct store_q *q)
{
	PQclear(Q(q)->res);
	Q(q)->res = NULL;
	Q(q)->active = false;
	pg_blobs_free(Q(q));
}

static void
pg_finalize(struct store_q *q)
{
	char sql[64];
	PGresult *res;

	pg_reset(q);
	/* The server keeps a named statement for the connection's life. */
	if (Q(q)->name[0] != '\0' && PQstatus(Q(q)->db->conn) == CONNECTION_OK) {
		snprintf(sql, sizeof(sql), "DEALLOCATE %s", Q(q)->name);
		res = pg_exec_waiting(Q(q)->db->conn, sql);
		PQclear(res);
	}
	free(Q(q)->sql);
	free(q);
}

static bool
pg_active(struct store_q *q)
{
	return Q(q)->active;
}

static void
pg_clear(struct store_q *q)
{
	struct pg_q *p = Q(q);

	memset(p->types, 0, sizeof(p->types));
	memset(p->values, 0, sizeof(p->values));
	memset(p->lengths, 0, sizeof(p->lengths));
	memset(p->formats, 0, sizeof(p->formats));
}

static void
pg_bind_i64(struct store_q *q, int i, int64_t v)
{
	struct pg_q *p = Q(q);

	if (i < 1 || i > PG_PARAMS_MAX)
		return;
	snprintf(p->nums[i - 1], sizeof(p->nums[0]), "%lld", (long long)v);
	p->values[i - 1] = p->nums[i - 1];
	p->types[i - 1] = PG_INT8OID;
	p->formats[i - 1] = 0;
}

static void
pg_bind_text(struct store_q *q, int i, const char *s)
{
	struct pg_q *p = Q(q);

	if (i < 1 || i > PG_PARAMS_MAX)
		return;
	p->values[i - 1] = s;
	p->types[i - 1] = PG_TEXTOID;
	p->formats[i - 1] = 0;
}

static void
pg_bind_blob(struct store_q *q, int i, const void *data, size_t n)
{
	struct pg_q *p = Q(q);

	if (i < 1 || i > PG_PARAMS_MAX || n > INT32_MAX)
		return;
	/* Binary: a zero-length value still needs a non-NULL pointer. */
	p->values[i - 1] = n > 0 ? data : "";
	p->lengths[i - 1] = (int)n;
	p->types[i - 1] = PG_BYTEAOID;
	p->formats[i - 1] = 1;
}

/* Prepares the statement for the types bound now, again if they
 * changed since. */
static int
pg_ensure_prepared(struct pg_q *p)
{
	PGresult *res;

	if (p->name[0] != '\0' && p->generation == p->db->generation &&
	    memcmp(p->prepared_types, p->types, sizeof(p->types)) == 0)
		return 1;
	snprintf(p->name, sizeof(p->name), "yj%u", p->db->next_name++);
	/* A round trip like any query's: the server parses and plans. */
	block_begin();
	res = PQprepare(p->db->conn, p->name, p->sql, p->nparams, (const Oid *)p->types);
	block_end();
	if (!pg_result_ok(res)) {
		pg_note_failure(p->db, res);
		PQclear(res);
		p->name[0] = '\0';
		return -1;
	}
	PQclear(res);
	memcpy(p->prepared_types, p->types, sizeof(p->types));
	p->generation = p->db->generation;
	return 1;
}

/* Sends the statement once; p->res is its result. */
static int
pg_send(struct pg_q *p)
{
	PQclear(p->res);
	p->res = NULL;
	if (p->nparams == 0) {
		p->res = pg_exec_waiting(p->db->conn, p->sql);
	} else {
		if (pg_ensure_prepared(p) < 0)
			return -1;
		block_begin();
		p->res = PQexecPrepared(p->db->conn, p->name, p->nparams, p->values, p->lengths,
					p->formats, 0);
		block_end();
	}
	if (!pg_result_ok(p->res)) {
		pg_note_failure(p->db, p->res);
		return -1;
	}
	return 1;
}

/* Runs the statement: its rows are then read from p->res. */
static int
pg_run(struct pg_q *p)
{
	bool idle = pg_idle(p->db);
	const char *tuples;

	if (pg_send(p) < 0 && !(pg_reconnected(p->db, idle) && pg_send(p) == 1))
		return -1;
	tuples = PQcmdTuples(p->res);
	p->db->changes = tuples[0] != '\0' ? strtoll(tuples, NULL, 10) : 0;
	p->row = -1;
	p->active = true;
	return 1;
}

static int
pg_step(struct store_q *q)
{
	struct pg_q *p = Q(q);

	if (!p->active && pg_run(p) < 0)
		return -1;
	pg_blobs_free(p);
	if (++p->row < PQntuples(p->res))
		return 1;
	return 0;
}

static int64_t
pg_col_i64(struct store_q *q, int col)
{
	const char *v = PQgetvalue(Q(q)->res, Q(q)->row, col);

	/* booleans (from comparisons) read as 1 and 0 */
	if (v[0] == 't' || v[0] == 'f')
		return v[0] == 't';
	return strtoll(v, NULL, 10);
}

static const char *
pg_col_text(struct store_q *q, int col, size_t *len_r)
{
	if (len_r != NULL)
		*len_r = (size_t)PQgetlength(Q(q)->res, Q(q)->row, col);
	return PQgetvalue(Q(q)->res, Q(q)->row, col);
}

static const void *
pg_col_blob(struct store_q *q, int col, size_t *len_r)
{
	struct pg_q *p = Q(q);
	int slot = col < PG_BLOB_COLS ? col : PG_BLOB_COLS - 1;

	PQfreemem(p->blob[slot]);
	p->blob[slot] = PQunescapeBytea((const unsigned char *)PQgetvalue(p->res, p->row, col),
					len_r);
	if (p->blob[slot] == NULL)
		*len_r = 0;
	return p->blob[slot];
}

static int
pg_col_count(struct store_q *q)
{
	return PQnfields(Q(q)->res);
}

/* ---- schema ---- */

/* One try of pg_value: whether the query ran. */
static bool
pg_value_once(struct store_db *db, const char *sql, char *out, size_t outlen)
{
	PGresult *res = pg_exec_waiting(db->conn, sql);
	bool ok = pg_result_ok(res);

	out[0] = '\0';
	if (!ok)
		pg_note_failure(db, res);
	else if (PQntuples(res) > 0 && !PQgetisnull(res, 0, 0))
		snprintf(out, outlen, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return ok;
}

/* One value of a query without parameters, as text into out. */
static int
pg_value(struct store_db *db, const char *sql, char *out, size_t outlen, struct yj_err *err)
{
	/* Asked at every store_open() (the schema version) and for each
	 * maildrop lock: the first statement on a pooled connection that
	 * may have been lost meanwhile. */
	bool idle = pg_idle(db);

	if (pg_value_once(db, sql, out, outlen))
		return 1;
	if (pg_reconnected(db, idle) && pg_value_once(db, sql, out, outlen))
		return 1;
	return yj_err_set(err, "%s", db->errmsg);
}

/* Inside a transaction the migration lock is taken first, so that two
 * nodes starting at once run each step once. */
static int
pg_get_version(struct store_db *db, int *version_r, struct yj_err *err)
{
	char v[32];

	if (pg_in_tx(db) &&
	    pg_value(db, "SELECT pg_advisory_xact_lock(7007001)", v, sizeof(v), err) < 0)
		return -1;
	if (pg_value(db, "SELECT to_regclass('schema_version') IS NOT NULL", v, sizeof(v), err) < 0)
		return -1;
	if (strcmp(v, "t") != 0) {
		*version_r = 0;
		return 1;
	}
	if (pg_value(db, "SELECT version FROM schema_version", v, sizeof(v), err) < 0)
		return -1;
	*version_r = atoi(v);
	return 1;
}

static int
pg_set_version(struct store_db *db, int version, struct yj_err *err)
{
	char sql[64];

	snprintf(sql, sizeof(sql), "UPDATE schema_version SET version = %d", version);
	return pg_exec(db, sql, err);
}

/* PostgreSQL checks its own pages; the store's checks are portable. */
static int
pg_check(struct store_db *db, struct yj_err *err)
{
	return PQstatus(db->conn) == CONNECTION_OK ? 1 :
	       yj_err_set(err, "store: connection lost: %s", pg_message(db, PQerrorMessage(db->conn)));
}

/* Identity columns count on from their sequence, not from the rows a
 * copy inserted with their ids: move each past the largest. */
static int
pg_after_copy(struct store_db *db, struct yj_err *err)
{
	static const char *const tables[] = {
		"domains", "accounts", "aliases", "mailboxes", "messages", "queue_messages", "queue",
	};
	char sql[256];

	for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
		snprintf(sql, sizeof(sql), "SELECT setval(pg_get_serial_sequence('%s', 'id'),"
			 " coalesce(max(id), 0) + 1, false) FROM %s", tables[i], tables[i]);
		if (pg_exec(db, sql, err) < 0)
			return -1;
	}
	return 1;
}

/* ---- notices from other nodes ---- */

/* "account mailbox modseq kind origin" */
static bool
pg_parse_change(const char *payload, struct store_change *c, int64_t *origin_r)
{
	long long a, m, s, k, o;

	if (sscanf(payload, "%lld %lld %lld %lld %lld", &a, &m, &s, &k, &o) != 5)
		return false;
	*c = (struct store_change){ .account_id = a, .mailbox_id = m, .modseq = (uint64_t)s,
				    .kind = (unsigned)k };
	*origin_r = o;
	return true;
}

static int
pg_notices(struct store_db *db, struct store_note_list *found, struct yj_err *err)
{
	struct store_change c;
	int64_t origin, me = store_origin();
	PGnotify *n;

	/* A lost connection is made again (pg_exec does), and LISTEN sent
	 * again; what other nodes changed meanwhile was not heard. */
	if (!db->listening || PQstatus(db->conn) == CONNECTION_BAD) {
		if (pg_exec(db, "LISTEN " PG_CHANNEL "; LISTEN " PG_QUEUE_CHANNEL, err) < 0)
			return -1;
		db->listening = true;
	}
	if (!PQconsumeInput(db->conn)) {
		db->listening = false;
		return yj_err_set(err, "store: notices: %s", pg_message(db, PQerrorMessage(db->conn)));
	}
	while ((n = PQnotifies(db->conn)) != NULL) {
		if (strcmp(n->relname, PG_QUEUE_CHANNEL) == 0)
			found->queued = true;
		else if (pg_parse_change(n->extra, &c, &origin) && origin != me)
			store_note_append(found, &c);
		PQfreemem(n);
	}
	return 1;
}

static int
pg_others_committed(struct store_db *db, struct yj_err *err)
{
	return 0;	/* notices come by pg_notices instead */
}

static void
pg_noop(struct store_db *db)
{
}

/* ---- maildrop locks: session advisory locks, in their own key space
 * (the two-int form), held until unlocked or the connection ends ---- */

#define PG_LOCK_CLASS "70072"

static int
pg_try_lock(struct store_db *db, int64_t key, struct yj_err *err)
{
	char sql[128], v[8];

	if (key < 0 || key > INT32_MAX)
		return yj_err_set(err, "store: lock key %lld out of range", (long long)key);
	snprintf(sql, sizeof(sql), "SELECT pg_try_advisory_lock(" PG_LOCK_CLASS ", %lld)",
		 (long long)key);
	if (pg_value(db, sql, v, sizeof(v), err) < 0)
		return -1;
	if (strcmp(v, "t") != 0)
		return 0;
	db->locks++;
	return 1;
}

static void
pg_unlock(struct store_db *db, int64_t key)
{
	char sql[128], v[8];
	struct yj_err err;

	if (db->locks > 0)
		db->locks--;
	snprintf(sql, sizeof(sql), "SELECT pg_advisory_unlock(" PG_LOCK_CLASS ", %lld)",
		 (long long)key);
	if (pg_value(db, sql, v, sizeof(v), &err) < 0)
		log_warn("store: unlock: %s", err.msg);
}

/* The connection the locks were taken on is the one still open: it is
 * not made again while it holds them (pg_reconnected). */
static int
pg_locks_held(struct store_db *db, struct yj_err *err)
{
	char v[8];

	if (PQstatus(db->conn) == CONNECTION_BAD || pg_value(db, "SELECT 1", v, sizeof(v), err) < 0)
		return yj_err_set(err, "the maildrop lock went with the lost database connection");
	return 1;
}

static void
pg_unlock_all(struct store_db *db)
{
	struct yj_err err;

	db->locks = 0;
	if (pg_exec(db, "SELECT pg_advisory_unlock_all()", &err) < 0)
		log_warn("store: unlock: %s", err.msg);
}

/* Candidates of a text search (store_index.c): LIKE on the folded
 * text, which the pg_trgm GIN indexes serve when they exist. */
static const char pg_text_body[] =
	"SELECT m.uid FROM messages m LEFT JOIN search_text t ON t.blob_id = m.blob_id"
	" WHERE m.mailbox_id = ?1 AND (t.id IS NULL OR t.body IS NULL OR t.id IN"
	" (SELECT id FROM search_text WHERE body LIKE ?2)) ORDER BY m.uid";
static const char pg_text_all[] =
	"SELECT m.uid FROM messages m LEFT JOIN search_text t ON t.blob_id = m.blob_id"
	" WHERE m.mailbox_id = ?1 AND (t.id IS NULL OR t.body IS NULL OR t.id IN"
	" (SELECT id FROM search_text WHERE body LIKE ?2 OR header LIKE ?2)) ORDER BY m.uid";

const struct store_driver store_driver_pg = {
	.name = "postgresql",
	.text_sql_body = pg_text_body,
	.text_sql_all = pg_text_all,
	.text_like = true,
	.blobs_in_db = true,
	.pool_max = 32,
	.row_locks = true,
	.open = pg_open,
	.close = pg_close,
	.errmsg = pg_errmsg,
	.last_fail = pg_last_fail,
	.exec = pg_exec,
	.begin = pg_begin,
	.in_tx = pg_in_tx,
	.commit_unknown = pg_commit_unknown,
	.changes = pg_changes,
	.prepare = pg_prepare,
	.finalize = pg_finalize,
	.active = pg_active,
	.reset = pg_reset,
	.clear = pg_clear,
	.bind_i64 = pg_bind_i64,
	.bind_text = pg_bind_text,
	.bind_blob = pg_bind_blob,
	.step = pg_step,
	.col_i64 = pg_col_i64,
	.col_text = pg_col_text,
	.col_blob = pg_col_blob,
	.col_count = pg_col_count,
	.migrations = store_pg_migrations,
	.n_migrations = STORE_PG_STEPS,
	.get_version = pg_get_version,
	.set_version = pg_set_version,
	.check = pg_check,
	.after_copy = pg_after_copy,
	.others_committed = pg_others_committed,
	.notices = pg_notices,
	.queue_announce = "NOTIFY " PG_QUEUE_CHANNEL,
	.writer_init = pg_noop,
	.writer_after_batch = pg_noop,
	.sync_mode = pg_sync_mode,
	.writer_flush = NULL,
	.upkeep = pg_noop,
	.try_lock = pg_try_lock,
	.unlock = pg_unlock,
	.unlock_all = pg_unlock_all,
	.locks_held = pg_locks_held,
};
