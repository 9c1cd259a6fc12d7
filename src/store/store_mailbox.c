/* store_mailbox.c - mailboxes: the defaults of a new account, UIDVALIDITY
 * and lookups. */
#include "store/store-private.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/log.h"
#include "base/util.h"

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
		"UPDATE meta SET value = CASE WHEN value + 1 > ?1 THEN value + 1 ELSE ?1 END"
		" WHERE key = 'last_uidvalidity' RETURNING value";
	struct store_q *stmt = store_stmt(st, sql, err);
	int64_t value;
	int ret;

	if (stmt == NULL)
		return -1;
	store_bind_i64(stmt, 1, (int64_t)time(NULL));
	ret = store_row(st, stmt, "uidvalidity", err);
	if (ret == 0)
		return yj_err_set(err, "store: meta row last_uidvalidity is missing");
	if (ret < 0)
		return -1;
	value = store_col_i64(stmt, 0);
	if (store_run(st, stmt, "uidvalidity", err) < 0)
		return -1;
	if (value <= 0 || value > UINT32_MAX)
		return yj_err_set(err, "store: UIDVALIDITY values exhausted");
	*uidvalidity_r = (uint32_t)value;
	return 1;
}

/* Inside a transaction: takes the account's kept subscription of name
 * (a mailbox made under the name is subscribed again). 1 there was one,
 * 0 none, -1 error. */
static int
store_subscription_take(struct store *st, int64_t account_id, const char *name,
			struct yj_err *err)
{
	static const char sql[] = "DELETE FROM kept_subscriptions WHERE account_id = ?1 AND name = ?2";
	struct store_q *stmt = store_stmt(st, sql, err);

	if (stmt == NULL)
		return -1;
	store_bind_i64(stmt, 1, account_id);
	store_bind_text(stmt, 2, name);
	if (store_run(st, stmt, "take subscription", err) < 0)
		return -1;
	return store_changes(st) > 0 ? 1 : 0;
}

/* A new mailbox's first MODSEQ is its creation's (the column's
 * default, 1): the change is recorded with it. */
static int
store_mailbox_insert(struct store *st, int64_t account_id, const char *name,
		     const char *special_use, bool subscribed, struct yj_err *err)
{
	static const char sql[] =
		"INSERT INTO mailboxes (account_id, name, special_use, uidvalidity, subscribed)"
		" VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id, highestmodseq";
	struct store_q *stmt;
	uint32_t uidvalidity = 0;
	int64_t id = 0, modseq = 0;
	int ret;

	if ((ret = store_subscription_take(st, account_id, name, err)) < 0)
		return -1;
	subscribed = subscribed || ret == 1;
	if (store_uidvalidity_next(st, &uidvalidity, err) < 0 ||
	    (stmt = store_stmt(st, sql, err)) == NULL)
		return -1;
	store_bind_i64(stmt, 1, account_id);
	store_bind_text(stmt, 2, name);
	store_bind_text(stmt, 3, special_use);
	store_bind_i64(stmt, 4, uidvalidity);
	store_bind_i64(stmt, 5, subscribed ? 1 : 0);
	ret = store_row(st, stmt, "create mailbox", err);
	if (ret == 1) {
		id = store_col_i64(stmt, 0);
		modseq = store_col_i64(stmt, 1);
		ret = store_run(st, stmt, "create mailbox", err);
	}
	if (ret < 0 && store_is_unique_violation(st))
		return yj_err_set(err, "mailbox %s already exists", name);
	if (ret <= 0)
		return ret == 0 ? yj_err_set(err, "create mailbox: no row") : -1;
	return store_change_record(st, account_id, id, (uint64_t)modseq, STORE_CHANGE_CREATE, err);
}

int
store_mailbox_create_defaults(struct store *st, int64_t account_id, struct yj_err *err)
{
	size_t n = sizeof(store_default_mailboxes) / sizeof(store_default_mailboxes[0]);

	for (size_t i = 0; i < n; i++) {
		if (store_mailbox_insert(st, account_id, store_default_mailboxes[i].name,
					 store_default_mailboxes[i].special_use, true, err) < 0)
			return -1;
	}
	return 1;
}

#define STORE_MAILBOX_COLUMNS \
	"id, account_id, name, special_use, uidvalidity, uidnext, highestmodseq," \
	" subscribed, vanished_floor"

/* Fills a store_mailbox from STORE_MAILBOX_COLUMNS and, if the statement
 * has it, a message count. */
static void
store_mailbox_read(struct store_q *stmt, void *out)
{
	struct store_mailbox *mb = out;

	mb->id = store_col_i64(stmt, 0);
	mb->account_id = store_col_i64(stmt, 1);
	store_col_text(stmt, 2, mb->name, sizeof(mb->name));
	store_col_text(stmt, 3, mb->special_use, sizeof(mb->special_use));
	mb->uidvalidity = (uint32_t)store_col_i64(stmt, 4);
	mb->uidnext = (uint32_t)store_col_i64(stmt, 5);
	mb->highestmodseq = (uint64_t)store_col_i64(stmt, 6);
	mb->subscribed = (int)store_col_i64(stmt, 7) != 0;
	mb->vanished_floor = (uint64_t)store_col_i64(stmt, 8);
	mb->messages = store_col_count(stmt) > 9 ?
		       (uint32_t)store_col_i64(stmt, 9) : 0;
}

/* The one mailbox a bound lookup finds: 1, 0 if none, -1 (logged). */
static int
store_mailbox_one(struct store *st, struct store_q *stmt, struct store_mailbox *mb_r)
{
	struct yj_err err;
	int ret = store_one(st, stmt, "mailbox lookup", store_mailbox_read, mb_r, &err);

	if (ret < 0)
		log_error("store: %s", err.msg);
	return ret;
}

int
store_mailbox_get(struct store *st, int64_t account_id, const char *name,
		  struct store_mailbox *mb_r)
{
	static const char sql[] =
		"SELECT " STORE_MAILBOX_COLUMNS ","
		" (SELECT count(*) FROM messages m WHERE m.mailbox_id = mailboxes.id)"
		" FROM mailboxes WHERE account_id = ?1 AND name = ?2";
	struct store_q *stmt;
	struct yj_err err;

	if (name == NULL || strlen(name) > STORE_MAILBOX_NAME_MAX)
		return 0;
	if ((stmt = store_stmt(st, sql, &err)) == NULL) {
		log_error("store: %s", err.msg);
		return -1;
	}
	store_bind_i64(stmt, 1, account_id);
	store_bind_text(stmt, 2, store_mailbox_canon(name));
	return store_mailbox_one(st, stmt, mb_r);
}

int
store_mailbox_get_id(struct store *st, int64_t account_id, int64_t id, struct store_mailbox *mb_r)
{
	static const char sql[] =
		"SELECT " STORE_MAILBOX_COLUMNS " FROM mailboxes WHERE id = ?1 AND account_id = ?2";
	struct store_q *stmt;
	struct yj_err err;

	if ((stmt = store_stmt(st, sql, &err)) == NULL) {
		log_error("store: %s", err.msg);
		return -1;
	}
	store_bind_i64(stmt, 1, id);
	store_bind_i64(stmt, 2, account_id);
	return store_mailbox_one(st, stmt, mb_r);
}

int
store_mailbox_list(struct store *st, int64_t account_id, store_mailbox_cb *cb, void *ctx,
		   struct yj_err *err)
{
	static const char sql[] =
		"SELECT " STORE_MAILBOX_COLUMNS " FROM mailboxes WHERE account_id = ?1 ORDER BY name";
	struct store_q *stmt = store_stmt(st, sql, err);
	struct store_mailbox mb;
	int ret;

	if (stmt == NULL)
		return -1;
	store_bind_i64(stmt, 1, account_id);
	while ((ret = store_row(st, stmt, "list mailboxes", err)) == 1) {
		store_mailbox_read(stmt, &mb);
		cb(ctx, &mb);
	}
	return ret < 0 ? -1 : 1;
}

int
store_subscription_kept_list(struct store *st, int64_t account_id, store_name_cb *cb, void *ctx,
			     struct yj_err *err)
{
	static const char sql[] =
		"SELECT name FROM kept_subscriptions WHERE account_id = ?1 ORDER BY name";
	struct store_q *stmt = store_stmt(st, sql, err);
	char name[STORE_MAILBOX_NAME_MAX + 1];
	int ret;

	if (stmt == NULL)
		return -1;
	store_bind_i64(stmt, 1, account_id);
	while ((ret = store_row(st, stmt, "list subscriptions", err)) == 1) {
		store_col_text(stmt, 0, name, sizeof(name));
		cb(ctx, name);
	}
	return ret < 0 ? -1 : 1;
}

int
store_subscription_forget(struct store *st, int64_t account_id, const char *name,
			  struct yj_err *err)
{
	int ret;

	if (store_begin(st, err) < 0)
		return -1;
	ret = store_subscription_take(st, account_id, store_mailbox_canon(name), err);
	if (ret <= 0) {
		store_rollback(st);
		return ret;
	}
	return store_commit(st, err);
}

/* ---- creating, renaming, deleting, subscribing ---- */

static int
store_mailbox_name_ok(const char *name, struct yj_err *err)
{
	size_t len = name != NULL ? strlen(name) : 0;

	if (len == 0 || len > STORE_MAILBOX_NAME_MAX)
		return yj_err_set(err, "mailbox name empty or too long");
	if (!util_utf8_valid(name, len))
		return yj_err_set(err, "mailbox name is not UTF-8 or has a control character");
	return 1;
}

/* Ends a transaction that did (ret 1) or did not (0, -1) do its work. */
static int
store_mailbox_finish(struct store *st, int ret, struct yj_err *err)
{
	if (ret <= 0) {
		store_rollback(st);
		return ret;
	}
	return store_commit(st, err);
}

int
store_mailbox_create(struct store *st, int64_t account_id, const char *name,
		     struct yj_err *err)
{
	if (store_mailbox_name_ok(name, err) < 0)
		return -1;
	if (store_begin(st, err) < 0)
		return -1;
	return store_mailbox_finish(st, store_mailbox_insert(st, account_id,
			store_mailbox_canon(name), "", true, err), err);
}

static int store_mailbox_id(struct store *st, int64_t account_id, const char *name,
			    int64_t *id_r, struct yj_err *err);

/* Inside a transaction: the superior names of name that are missing. */
static int
store_mailbox_insert_parents(struct store *st, int64_t account_id, const char *name, char delim,
			     struct yj_err *err)
{
	char parent[STORE_MAILBOX_NAME_MAX + 1];
	int64_t id;
	int ret;

	for (const char *d = strchr(name, delim); d != NULL; d = strchr(d + 1, delim)) {
		if (d == name)
			continue;
		snprintf(parent, sizeof(parent), "%.*s", (int)(d - name), name);
		ret = store_mailbox_id(st, account_id, parent, &id, err);
		if (ret == 0)
			ret = store_mailbox_insert(st, account_id, store_mailbox_canon(parent), "",
						   false, err);
		if (ret < 0)
			return -1;
	}
	return 1;
}

int
store_mailbox_create_path(struct store *st, int64_t account_id, const char *name, char delim,
			  const char *special_use, struct yj_err *err)
{
	int ret;

	if (store_mailbox_name_ok(name, err) < 0)
		return -1;
	if (strlen(special_use) >= sizeof(((struct store_mailbox *)0)->special_use))
		return yj_err_set(err, "special-use attribute too long");
	if (store_begin(st, err) < 0)
		return -1;
	ret = store_mailbox_insert_parents(st, account_id, name, delim, err);
	if (ret == 1)
		ret = store_mailbox_insert(st, account_id, store_mailbox_canon(name), special_use,
					   false, err);
	return store_mailbox_finish(st, ret, err);
}

/* 1 with the id of the account's mailbox name, 0 none, -1 error. */
static int
store_mailbox_id(struct store *st, int64_t account_id, const char *name, int64_t *id_r,
		 struct yj_err *err)
{
	static const char sql[] = "SELECT id FROM mailboxes WHERE account_id = ?1 AND name = ?2";
	struct store_q *stmt = store_stmt(st, sql, err);
	int ret;

	if (stmt == NULL)
		return -1;
	store_bind_i64(stmt, 1, account_id);
	store_bind_text(stmt, 2, store_mailbox_canon(name));
	ret = store_row(st, stmt, "mailbox lookup", err);
	if (ret == 0)
		yj_err_set(err, "mailbox %s does not exist", name);
	if (ret == 1) {
		*id_r = store_col_i64(stmt, 0);
		store_reset(stmt);
	}
	return ret;
}

static int
store_mailbox_rename_locked(struct store *st, int64_t account_id, const char *from,
			    const char *to, struct yj_err *err)
{
	static const char sql[] = "UPDATE mailboxes SET name = ?2 WHERE id = ?1";
	struct store_q *stmt;
	uint64_t modseq;
	int64_t id = 0;
	int ret;

	ret = store_mailbox_id(st, account_id, from, &id, err);
	if (ret == 1)
		ret = store_modseq_next(st, id, STORE_CHANGE_RENAME, &modseq, err);
	if (ret <= 0)
		return ret;
	if ((stmt = store_stmt(st, sql, err)) == NULL)
		return -1;
	store_bind_i64(stmt, 1, id);
	store_bind_text(stmt, 2, store_mailbox_canon(to));
	if (store_run(st, stmt, "rename mailbox", err) < 0)
		return store_is_unique_violation(st) ?
		       yj_err_set(err, "mailbox %s already exists", to) : -1;
	return 1;
}

/* Is name below parent ("parent/...")? */
static bool
store_mailbox_under(const char *name, const char *parent)
{
	size_t n = strlen(parent);

	return strncmp(name, parent, n) == 0 && name[n] == STORE_MAILBOX_DELIM;
}

/* The names below a mailbox, gathered before any of them is renamed. */
struct store_inferiors {
	const char *parent;
	char (*names)[STORE_MAILBOX_NAME_MAX + 1];
	size_t n, cap;
	bool failed;
};

static void
store_inferior_cb(void *ctx, const struct store_mailbox *mb)
{
	struct store_inferiors *inf = ctx;

	if (inf->failed || !store_mailbox_under(mb->name, inf->parent))
		return;
	if (inf->n == inf->cap) {
		size_t cap = inf->cap != 0 ? inf->cap * 2 : 8;
		void *p = realloc(inf->names, cap * sizeof(*inf->names));
		if (p == NULL) {
			inf->failed = true;
			return;
		}
		inf->names = p;
		inf->cap = cap;
	}
	snprintf(inf->names[inf->n++], sizeof(*inf->names), "%s", mb->name);
}

/* Renames each name below from to the same place below to. */
static int
store_mailbox_rename_inferiors(struct store *st, int64_t account_id, const char *from,
			       const char *to, struct yj_err *err)
{
	struct store_inferiors inf = { .parent = from };
	char name[STORE_MAILBOX_NAME_MAX + 2];
	int ret = store_mailbox_list(st, account_id, store_inferior_cb, &inf, err);

	if (ret == 1 && inf.failed)
		ret = yj_err_set(err, "out of memory renaming mailboxes");
	for (size_t i = 0; ret == 1 && i < inf.n; i++) {
		int len = snprintf(name, sizeof(name), "%s%s", to, inf.names[i] + strlen(from));
		if (len < 0 || (size_t)len > STORE_MAILBOX_NAME_MAX)
			ret = yj_err_set(err, "mailbox name empty or too long");
		else
			ret = store_mailbox_rename_locked(st, account_id, inf.names[i], name, err);
	}
	free(inf.names);
	return ret;
}

int
store_mailbox_rename(struct store *st, int64_t account_id, const char *from, const char *to,
		     struct yj_err *err)
{
	int ret;

	if (store_mailbox_name_ok(to, err) < 0)
		return -1;
	/* RFC 3501 6.3.5: renaming INBOX moves its messages (that is
	 * store_mailbox_rename_inbox). */
	if (strcmp(store_mailbox_canon(from), STORE_INBOX) == 0 ||
	    strcmp(store_mailbox_canon(to), STORE_INBOX) == 0)
		return yj_err_set(err, "INBOX cannot be renamed");
	if (store_mailbox_under(to, from))
		return yj_err_set(err, "a mailbox cannot be renamed below itself");
	if (store_begin(st, err) < 0)
		return -1;
	ret = store_mailbox_rename_locked(st, account_id, from, to, err);
	if (ret == 1)
		ret = store_mailbox_rename_inferiors(st, account_id, from, to, err);
	if (ret == 1)
		ret = store_mailbox_insert_parents(st, account_id, to, STORE_MAILBOX_DELIM, err);
	return store_mailbox_finish(st, ret, err);
}

static int
store_mailbox_rename_inbox_locked(struct store *st, int64_t account_id, const char *to,
				  struct store_copy_result *res, struct yj_err *err)
{
	static const struct store_uid_range all = { 1, UINT32_MAX };
	const struct store_uidset set = { &all, 1 };
	int64_t inbox = 0, box = 0;
	int ret;

	ret = store_mailbox_id(st, account_id, STORE_INBOX, &inbox, err);
	if (ret == 1)
		ret = store_mailbox_insert_parents(st, account_id, to, STORE_MAILBOX_DELIM, err);
	if (ret == 1)
		ret = store_mailbox_insert(st, account_id, store_mailbox_canon(to), "", true, err);
	if (ret == 1)
		ret = store_mailbox_id(st, account_id, to, &box, err);
	return ret == 1 ? store_msg_copy_locked(st, inbox, box, &set, true, res, err) : ret;
}

int
store_mailbox_rename_inbox(struct store *st, int64_t account_id, const char *to,
			   struct store_copy_result *res, struct yj_err *err)
{
	int ret;

	*res = (struct store_copy_result){ 0 };
	if (store_mailbox_name_ok(to, err) < 0)
		return -1;
	if (strcmp(store_mailbox_canon(to), STORE_INBOX) == 0)
		return yj_err_set(err, "INBOX cannot be renamed to itself");
	if (store_begin(st, err) < 0)
		return -1;
	ret = store_mailbox_finish(st, store_mailbox_rename_inbox_locked(st, account_id, to, res,
									 err), err);
	if (ret != 1) {
		free(res->map);
		*res = (struct store_copy_result){ 0 };
	}
	return ret;
}

/* Inside a transaction: a subscribed mailbox about to go leaves its
 * name subscribed (RFC 3501 6.3.9: the server MUST NOT remove a name
 * from the subscription list because its mailbox is gone). */
static int
store_subscription_keep(struct store *st, int64_t id, struct yj_err *err)
{
	static const char sql[] =
		"INSERT INTO kept_subscriptions (account_id, name)"
		" SELECT account_id, name FROM mailboxes WHERE id = ?1 AND subscribed != 0"
		" ON CONFLICT DO NOTHING";
	struct store_q *stmt = store_stmt(st, sql, err);

	if (stmt == NULL)
		return -1;
	store_bind_i64(stmt, 1, id);
	return store_run(st, stmt, "keep subscription", err) < 0 ? -1 : 1;
}

/* Inside a transaction: the change is recorded with a MODSEQ past the
 * last, then the row goes with its messages (cascade). */
static int
store_mailbox_delete_id(struct store *st, int64_t id, struct store_idlist *dead,
			struct yj_err *err)
{
	struct store_q *stmt;
	uint64_t modseq;
	int ret;

	ret = store_modseq_next(st, id, STORE_CHANGE_DELETE, &modseq, err);
	if (ret <= 0)
		return ret;
	if (store_subscription_keep(st, id, err) < 0 ||
	    (stmt = store_stmt(st, "DELETE FROM mailboxes WHERE id = ?1", err)) == NULL)
		return -1;
	store_bind_i64(stmt, 1, id);
	if (store_run(st, stmt, "delete mailbox", err) < 0)
		return -1;
	return store_blob_reap(st, dead, err);
}

int
store_mailbox_delete(struct store *st, int64_t account_id, const char *name,
		     struct yj_err *err)
{
	struct store_idlist dead = { 0 };
	int64_t id = 0;
	int ret;

	if (name == NULL || strcmp(store_mailbox_canon(name), STORE_INBOX) == 0)
		return yj_err_set(err, "INBOX cannot be deleted");
	if (store_begin(st, err) < 0)
		return -1;
	ret = store_mailbox_id(st, account_id, name, &id, err);
	if (ret == 1)
		ret = store_mailbox_delete_id(st, id, &dead, err);
	ret = store_mailbox_finish(st, ret, err);
	if (ret == 1)
		store_blob_unlink_list(st, &dead);
	store_idlist_free(&dead);
	return ret;
}

int
store_mailbox_delete_all(struct store *st, int64_t account_id, struct store_idlist *dead,
			 struct yj_err *err)
{
	static const char sql[] = "SELECT id FROM mailboxes WHERE account_id = ?1";
	struct store_q *stmt = store_stmt(st, sql, err);
	int64_t *ids = NULL;
	size_t n = 0, cap = 0;
	int ret;

	if (stmt == NULL)
		return -1;
	store_bind_i64(stmt, 1, account_id);
	/* Collected first: the deletes must not run under the open SELECT. */
	while ((ret = store_row(st, stmt, "list mailboxes", err)) == 1) {
		if (n == cap) {
			cap = cap == 0 ? 8 : cap * 2;
			if ((ids = realloc(ids, cap * sizeof(*ids))) == NULL)
				log_fatal("out of memory");
		}
		ids[n++] = store_col_i64(stmt, 0);
	}
	for (size_t i = 0; ret == 0 && i < n; i++)
		ret = store_mailbox_delete_id(st, ids[i], dead, err) < 0 ? -1 : 0;
	free(ids);
	return ret < 0 ? -1 : 1;
}

/* Inside a transaction: 1 changed, 2 it was so already, 0 no such
 * mailbox, -1 error. */
static int
store_mailbox_subscribe_locked(struct store *st, int64_t mailbox_id, bool subscribed,
			       struct yj_err *err)
{
	static const char sql[] =
		"UPDATE mailboxes SET subscribed = ?2 WHERE id = ?1 AND subscribed != ?2";
	struct store_q *stmt;
	uint64_t modseq;
	int ret;

	ret = store_modseq_next(st, mailbox_id, STORE_CHANGE_SUBSCRIBE, &modseq, err);
	if (ret <= 0 || (stmt = store_stmt(st, sql, err)) == NULL)
		return ret <= 0 ? ret : -1;
	store_bind_i64(stmt, 1, mailbox_id);
	store_bind_i64(stmt, 2, subscribed ? 1 : 0);
	if (store_run(st, stmt, "subscribe", err) < 0)
		return -1;
	return store_changes(st) > 0 ? 1 : 2;
}

/* The floor as committed: 1, 0 no such mailbox, -1. */
static int
store_mailbox_recent_floor(struct store *st, int64_t mailbox_id, uint32_t *floor_r,
			   struct yj_err *err)
{
	static const char sql[] = "SELECT recent_floor FROM mailboxes WHERE id = ?1";
	struct store_q *stmt = store_stmt(st, sql, err);
	int ret;

	if (stmt == NULL)
		return -1;
	store_bind_i64(stmt, 1, mailbox_id);
	if ((ret = store_row(st, stmt, "recent floor", err)) == 1) {
		*floor_r = (uint32_t)store_col_i64(stmt, 0);
		store_reset(stmt);
	}
	return ret;
}

/* Raises the floor from floor to upto if no one moved it since it was
 * read: 1 done, 2 it moved (read again), -1. */
static int
store_mailbox_recent_move(struct store *st, int64_t mailbox_id, uint32_t floor, uint32_t upto,
			  struct yj_err *err)
{
	static const char sql[] =
		"UPDATE mailboxes SET recent_floor = ?3 WHERE id = ?1 AND recent_floor = ?2";
	struct store_q *stmt;
	int ret;

	if (store_begin_lazy(st, err) < 0)
		return -1;
	if ((stmt = store_stmt(st, sql, err)) == NULL) {
		store_rollback(st);
		return -1;
	}
	store_bind_i64(stmt, 1, mailbox_id);
	store_bind_i64(stmt, 2, floor);
	store_bind_i64(stmt, 3, upto);
	ret = store_run(st, stmt, "recent floor", err) < 0 ? -1 : store_changes(st) > 0 ? 1 : 2;
	if (ret == 2) {
		store_rollback(st);
		return 2;
	}
	return store_mailbox_finish(st, ret, err);
}

int
store_mailbox_recent(struct store *st, int64_t mailbox_id, uint32_t upto, bool claim,
		     uint32_t *floor_r, struct yj_err *err)
{
	/* Read outside a transaction: a SELECT with nothing new takes no
	 * write lock. The write names the floor it read, so of two sessions
	 * claiming at once one wins and the other reads again. */
	for (int tries = 0; tries < 16; tries++) {
		int ret = store_mailbox_recent_floor(st, mailbox_id, floor_r, err);

		if (ret <= 0 || !claim || *floor_r >= upto)
			return ret;
		if ((ret = store_mailbox_recent_move(st, mailbox_id, *floor_r, upto, err)) != 2)
			return ret;
	}
	return yj_err_set(err, "recent floor: too many sessions at once");
}

int
store_mailbox_subscribe(struct store *st, int64_t mailbox_id, bool subscribed,
			struct yj_err *err)
{
	int ret;

	if (store_begin(st, err) < 0)
		return -1;
	ret = store_mailbox_subscribe_locked(st, mailbox_id, subscribed, err);
	if (ret == 2) {
		/* No change: its MODSEQ is not used. */
		store_rollback(st);
		return 1;
	}
	return store_mailbox_finish(st, ret, err);
}
