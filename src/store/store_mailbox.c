/* store_mailbox.c - mailboxes: the defaults of a new account, UIDVALIDITY
 * and lookups. */
#include "store/store-private.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/log.h"

static const struct {
	const char *name;
	const char *special_use;	/* RFC 6154 */
} store_default_mailboxes[] = {
	{ STORE_INBOX, "" },
	{ "Drafts", "\\Drafts" },
	{ "Sent", "\\Sent" },
	{ "Junk", "\\Junk" },
	{ "Trash", "\\Trash" },
	{ "Archive", "\\Archive" },
};

const char *
store_mailbox_canon(const char *name)
{
	return strcasecmp(name, STORE_INBOX) == 0 ? STORE_INBOX : name;
}

/* A UIDVALIDITY never given before in this store: the current time, or
 * one more than the last value if that is later. A mailbox deleted and
 * made again under the same name thus never repeats one (RFC 3501 2.3.1.1). */
static int
store_uidvalidity_next(struct store *st, uint32_t *uidvalidity_r, struct yj_err *err)
{
	static const char sql[] =
		"UPDATE meta SET value = max(value + 1, ?1) WHERE key = 'last_uidvalidity'"
		" RETURNING value";
	sqlite3_stmt *stmt = store_stmt(st, sql, err);
	int64_t value;
	int ret;

	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, (int64_t)time(NULL));
	ret = store_row(st, stmt, "uidvalidity", err);
	if (ret == 0)
		return yj_err_set(err, "store: meta row last_uidvalidity is missing");
	if (ret < 0)
		return -1;
	value = sqlite3_column_int64(stmt, 0);
	if (store_run(st, stmt, "uidvalidity", err) < 0)
		return -1;
	if (value <= 0 || value > UINT32_MAX)
		return yj_err_set(err, "store: UIDVALIDITY values exhausted");
	*uidvalidity_r = (uint32_t)value;
	return 1;
}

static int
store_mailbox_insert(struct store *st, int64_t account_id, const char *name,
		     const char *special_use, struct yj_err *err)
{
	static const char sql[] =
		"INSERT INTO mailboxes (account_id, name, special_use, uidvalidity)"
		" VALUES (?1, ?2, ?3, ?4)";
	sqlite3_stmt *stmt;
	uint32_t uidvalidity = 0;

	if (store_uidvalidity_next(st, &uidvalidity, err) < 0 ||
	    (stmt = store_stmt(st, sql, err)) == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, account_id);
	sqlite3_bind_text(stmt, 2, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, special_use, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 4, uidvalidity);
	if (store_run(st, stmt, "create mailbox", err) < 0) {
		if (store_is_unique_violation(st))
			return yj_err_set(err, "mailbox %s already exists", name);
		return -1;
	}
	return 1;
}

int
store_mailbox_create_defaults(struct store *st, int64_t account_id, struct yj_err *err)
{
	size_t n = sizeof(store_default_mailboxes) / sizeof(store_default_mailboxes[0]);

	for (size_t i = 0; i < n; i++) {
		if (store_mailbox_insert(st, account_id, store_default_mailboxes[i].name,
					 store_default_mailboxes[i].special_use, err) < 0)
			return -1;
	}
	return 1;
}

int
store_mailbox_get(struct store *st, int64_t account_id, const char *name,
		  struct store_mailbox *mb_r)
{
	static const char sql[] =
		"SELECT id, account_id, name, special_use, uidvalidity, uidnext, highestmodseq,"
		" (SELECT count(*) FROM messages m WHERE m.mailbox_id = mailboxes.id)"
		" FROM mailboxes WHERE account_id = ?1 AND name = ?2";
	sqlite3_stmt *stmt;
	struct yj_err err;
	int ret;

	if (name == NULL || strlen(name) > STORE_MAILBOX_NAME_MAX)
		return 0;
	if ((stmt = store_stmt(st, sql, &err)) == NULL) {
		log_error("store: %s", err.msg);
		return -1;
	}
	sqlite3_bind_int64(stmt, 1, account_id);
	sqlite3_bind_text(stmt, 2, store_mailbox_canon(name), -1, SQLITE_STATIC);
	ret = store_row(st, stmt, "mailbox lookup", &err);
	if (ret < 0)
		log_error("store: %s", err.msg);
	if (ret != 1)
		return ret;
	mb_r->id = sqlite3_column_int64(stmt, 0);
	mb_r->account_id = sqlite3_column_int64(stmt, 1);
	store_col_text(stmt, 2, mb_r->name, sizeof(mb_r->name));
	store_col_text(stmt, 3, mb_r->special_use, sizeof(mb_r->special_use));
	mb_r->uidvalidity = (uint32_t)sqlite3_column_int64(stmt, 4);
	mb_r->uidnext = (uint32_t)sqlite3_column_int64(stmt, 5);
	mb_r->highestmodseq = (uint64_t)sqlite3_column_int64(stmt, 6);
	mb_r->messages = (uint32_t)sqlite3_column_int64(stmt, 7);
	sqlite3_reset(stmt);
	return 1;
}
