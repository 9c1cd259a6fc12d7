/* store-private.h - internals shared by the files of the SQLite store.
 *
 * Nothing outside src/store/ includes this. It holds the connection
 * struct, the prepared statement cache, transaction helpers and the
 * blob path and reaping helpers that several files need.
 */
#ifndef YJ_STORE_PRIVATE_H
#define YJ_STORE_PRIVATE_H

#include <sqlite3.h>

#include "store/store.h"

/* How long a connection waits for another one's write lock. */
#define STORE_BUSY_TIMEOUT_MS 10000
/* Distinct SQL statements one connection may cache. */
#define STORE_STMT_CACHE_MAX 64
#define STORE_PATH_MAX 4096
#define STORE_DOMAIN_MAX 253
#define STORE_HOUR_LEN 10		/* blob ids are HOUR/RANDOM, HOUR = YYYYMMDDHH */
#define STORE_PREFIX_MAX (sizeof(((struct store_msg *)0)->prefix) - 1)
/* The one mailbox name that is not case-sensitive (RFC 3501). */
#define STORE_INBOX "INBOX"

struct store_stmt_slot {
	const char *sql;		/* a string literal: its address is the key */
	sqlite3_stmt *stmt;
};

struct store {
	sqlite3 *db;
	char *data_dir;			/* as given (youjud: "."), no trailing slash */
	char *blob_dir;			/* data_dir + "/blobs" */
	struct store_stmt_slot stmts[STORE_STMT_CACHE_MAX];
	size_t n_stmts;
	int last_rc;			/* extended code of the last failed store_run */
};

/* A growable list of blob ids, for unlinking files after a commit. */
struct store_idlist {
	char (*ids)[STORE_BLOB_ID_MAX];
	size_t n;
	size_t cap;
};

/* ---- store.c ---- */

/* Returns the cached statement for sql (a string literal; prepared on
 * first use), reset and with bindings cleared, or NULL with err set.
 * The caller must sqlite3_reset() it when done so that no read
 * transaction stays open. A statement still being stepped (a callback
 * calling the same listing function) is refused. */
sqlite3_stmt *store_stmt(struct store *st, const char *sql, struct yj_err *err);
/* Sets err to "what: <sqlite message>"; returns -1. */
int store_db_err(struct store *st, struct yj_err *err, const char *what);
/* Steps a statement to its end (rows are ignored) and resets it. On
 * failure sets err to "what: reason" and keeps the code for
 * store_is_unique_violation(). */
int store_run(struct store *st, sqlite3_stmt *stmt, const char *what,
	      struct yj_err *err) YJ_MUST_CHECK;
/* Steps once: 1 a row is ready (the caller reads it, then resets the
 * statement), 0 no row (already reset), -1 error (reset, err set). */
int store_row(struct store *st, sqlite3_stmt *stmt, const char *what, struct yj_err *err);
/* Runs constant SQL (transaction control, schema steps). */
int store_exec(struct store *st, const char *sql, struct yj_err *err) YJ_MUST_CHECK;
/* BEGIN IMMEDIATE: takes the write lock now, waiting up to the busy
 * timeout, so the transaction never fails half-way on a lock upgrade. */
int store_begin(struct store *st, struct yj_err *err) YJ_MUST_CHECK;
int store_commit(struct store *st, struct yj_err *err) YJ_MUST_CHECK;
/* Rolls back if a transaction is open; errors are only logged. */
void store_rollback(struct store *st);
/* Was the last store_run failure a UNIQUE or PRIMARY KEY violation? */
bool store_is_unique_violation(struct store *st);
/* Opens the database file of data_dir into a new struct store. */
int store_open_db(const char *data_dir, bool create, struct store **st_r,
		  struct yj_err *err) YJ_MUST_CHECK;
/* Copies a column's text into out (at most outlen - 1 bytes, NUL added). */
void store_col_text(sqlite3_stmt *stmt, int col, char *out, size_t outlen);

/* ---- store_schema.c ---- */

/* Brings the schema up to the current version (one transaction per
 * step; another connection migrating at the same time is harmless). */
int store_migrate(struct store *st, struct yj_err *err) YJ_MUST_CHECK;

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
int store_norm_address(const char *in, unsigned flags, char *out, size_t outlen,
		       const char **domain_r, struct yj_err *err) YJ_MUST_CHECK;

/* ---- store_mailbox.c ---- */

/* Creates the default mailboxes of a new account (inside the caller's
 * transaction). */
int store_mailbox_create_defaults(struct store *st, int64_t account_id,
				  struct yj_err *err) YJ_MUST_CHECK;
/* "INBOX" for any case of inbox, else name itself. */
const char *store_mailbox_canon(const char *name);

/* ---- store_blob.c ---- */

/* data_dir/blobs/<id>; -1 if id is not of the HOUR/RANDOM form. */
int store_blob_path(const struct store *st, const char *id, char *out, size_t outlen);
/* Is id of the form HOUR/RANDOM that store_blob_create makes? */
bool store_blob_id_valid(const char *id);
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

/* ---- store_deliver.c ---- */

/* Stops every writer thread, after committing what they hold. */
void store_writers_stop(void);

#endif
