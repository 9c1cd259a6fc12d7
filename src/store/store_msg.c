/* store_msg.c - reading and expunging messages. */
#include "store/store-private.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"

#define STORE_MSG_COLUMNS \
	"id, mailbox_id, uid, modseq, flags, internal_date, size, blob_id, prefix"

/* Fills msg from a row of STORE_MSG_COLUMNS. */
static void
store_msg_read(sqlite3_stmt *stmt, struct store_msg *msg)
{
	const void *prefix;
	size_t len;

	msg->id = sqlite3_column_int64(stmt, 0);
	msg->mailbox_id = sqlite3_column_int64(stmt, 1);
	msg->uid = (uint32_t)sqlite3_column_int64(stmt, 2);
	msg->modseq = (uint64_t)sqlite3_column_int64(stmt, 3);
	msg->flags = (uint32_t)sqlite3_column_int64(stmt, 4);
	msg->internal_date = sqlite3_column_int64(stmt, 5);
	msg->size = (uint64_t)sqlite3_column_int64(stmt, 6);
	store_col_text(stmt, 7, msg->blob_id, sizeof(msg->blob_id));
	prefix = sqlite3_column_blob(stmt, 8);
	len = (size_t)sqlite3_column_bytes(stmt, 8);
	/* store_deliver() refuses longer prefixes; this only guards the
	 * buffer against a database edited by hand. */
	if (prefix == NULL || len > STORE_PREFIX_MAX)
		len = 0;
	if (len > 0)
		memcpy(msg->prefix, prefix, len);
	msg->prefix[len] = '\0';
	msg->prefix_len = len;
}

int
store_msg_list(struct store *st, int64_t mailbox_id, store_msg_cb *cb, void *ctx,
	       struct yj_err *err)
{
	static const char sql[] =
		"SELECT " STORE_MSG_COLUMNS " FROM messages WHERE mailbox_id = ?1 ORDER BY uid";
	sqlite3_stmt *stmt = store_stmt(st, sql, err);
	struct store_msg msg;
	int ret;

	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, mailbox_id);
	while ((ret = store_row(st, stmt, "list messages", err)) == 1) {
		store_msg_read(stmt, &msg);
		cb(ctx, &msg);
	}
	return ret < 0 ? -1 : 1;
}

int
store_msg_get(struct store *st, int64_t mailbox_id, uint32_t uid, struct store_msg *msg_r)
{
	static const char sql[] =
		"SELECT " STORE_MSG_COLUMNS " FROM messages WHERE mailbox_id = ?1 AND uid = ?2";
	sqlite3_stmt *stmt;
	struct yj_err err;
	int ret;

	if ((stmt = store_stmt(st, sql, &err)) == NULL) {
		log_error("store: %s", err.msg);
		return -1;
	}
	sqlite3_bind_int64(stmt, 1, mailbox_id);
	sqlite3_bind_int64(stmt, 2, uid);
	ret = store_row(st, stmt, "get message", &err);
	if (ret < 0)
		log_error("store: %s", err.msg);
	if (ret == 1) {
		store_msg_read(stmt, msg_r);
		sqlite3_reset(stmt);
	}
	return ret;
}

int
store_msg_open_blob(struct store *st, const struct store_msg *msg, int *fd_r,
		    struct yj_err *err)
{
	char path[STORE_PATH_MAX];

	if (store_blob_path(st, msg->blob_id, path, sizeof(path)) < 0)
		return yj_err_set(err, "message %u has a bad blob id", msg->uid);
	*fd_r = open(path, O_RDONLY | O_CLOEXEC);
	if (*fd_r < 0)
		return yj_err_errno(err, "open blob %s", msg->blob_id);
	return 1;
}

/* ---- expunge ---- */

/* 1 with the mailbox's next MODSEQ, 0 no such mailbox, -1 error. */
static int
store_mailbox_next_modseq(struct store *st, int64_t mailbox_id, int64_t *modseq_r,
			  struct yj_err *err)
{
	static const char sql[] = "SELECT highestmodseq FROM mailboxes WHERE id = ?1";
	sqlite3_stmt *stmt = store_stmt(st, sql, err);
	int ret;

	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, mailbox_id);
	ret = store_row(st, stmt, "mailbox lookup", err);
	if (ret == 0)
		yj_err_set(err, "mailbox %lld does not exist", (long long)mailbox_id);
	if (ret == 1) {
		*modseq_r = sqlite3_column_int64(stmt, 0) + 1;
		sqlite3_reset(stmt);
	}
	return ret;
}

/* Records modseq as the mailbox's highest, once a change has used it. */
static int
store_mailbox_set_modseq(struct store *st, int64_t mailbox_id, int64_t modseq,
			 struct yj_err *err)
{
	static const char sql[] = "UPDATE mailboxes SET highestmodseq = ?2 WHERE id = ?1";
	sqlite3_stmt *stmt = store_stmt(st, sql, err);

	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, mailbox_id);
	sqlite3_bind_int64(stmt, 2, modseq);
	return store_run(st, stmt, "mailbox modseq", err);
}

static int
store_msg_delete(struct store *st, int64_t mailbox_id, const uint32_t *uids, size_t n,
		 size_t *removed_r, struct yj_err *err)
{
	static const char sql[] = "DELETE FROM messages WHERE mailbox_id = ?1 AND uid = ?2";
	sqlite3_stmt *stmt;

	*removed_r = 0;
	for (size_t i = 0; i < n; i++) {
		if ((stmt = store_stmt(st, sql, err)) == NULL)
			return -1;
		sqlite3_bind_int64(stmt, 1, mailbox_id);
		sqlite3_bind_int64(stmt, 2, uids[i]);
		if (store_run(st, stmt, "expunge", err) < 0)
			return -1;
		*removed_r += (size_t)sqlite3_changes(st->db);
	}
	return 1;
}

/* Inside a transaction: deletes the rows, moves the mailbox to a new
 * MODSEQ and collects the blobs that lost their last reference. */
static int
store_msg_expunge_locked(struct store *st, int64_t mailbox_id, const uint32_t *uids, size_t n,
			 struct store_idlist *dead, struct yj_err *err)
{
	int64_t modseq = 0;
	size_t removed;
	int ret;

	ret = store_mailbox_next_modseq(st, mailbox_id, &modseq, err);
	if (ret <= 0)
		return ret;
	if (store_msg_delete(st, mailbox_id, uids, n, &removed, err) < 0)
		return -1;
	if (removed == 0)
		return 1;	/* nothing changed: no new MODSEQ */
	if (store_mailbox_set_modseq(st, mailbox_id, modseq, err) < 0)
		return -1;
	return store_blob_reap(st, dead, err);
}

int
store_msg_expunge(struct store *st, int64_t mailbox_id, const uint32_t *uids, size_t n,
		  struct yj_err *err)
{
	struct store_idlist dead = { 0 };
	int ret;

	if (n == 0)
		return 1;
	if (store_begin(st, err) < 0)
		return -1;
	ret = store_msg_expunge_locked(st, mailbox_id, uids, n, &dead, err);
	if (ret <= 0 || store_commit(st, err) < 0) {
		store_rollback(st);
		store_idlist_free(&dead);
		return ret <= 0 ? ret : -1;
	}
	/* Only now that no row names them may the files go. */
	store_blob_unlink_list(st, &dead);
	return 1;
}

/* Inside a transaction: sets the flags on each UID that lacks one of
 * them, with the new MODSEQ. */
static int
store_msg_flag_rows(struct store *st, int64_t mailbox_id, const uint32_t *uids, size_t n,
		    uint32_t flags, int64_t modseq, size_t *changed_r, struct yj_err *err)
{
	static const char sql[] =
		"UPDATE messages SET flags = flags | ?3, modseq = ?4"
		" WHERE mailbox_id = ?1 AND uid = ?2 AND (flags & ?3) != ?3";
	sqlite3_stmt *stmt;

	*changed_r = 0;
	for (size_t i = 0; i < n; i++) {
		if ((stmt = store_stmt(st, sql, err)) == NULL)
			return -1;
		sqlite3_bind_int64(stmt, 1, mailbox_id);
		sqlite3_bind_int64(stmt, 2, uids[i]);
		sqlite3_bind_int64(stmt, 3, flags);
		sqlite3_bind_int64(stmt, 4, modseq);
		if (store_run(st, stmt, "set flags", err) < 0)
			return -1;
		*changed_r += (size_t)sqlite3_changes(st->db);
	}
	return 1;
}

static int
store_msg_add_flags_locked(struct store *st, int64_t mailbox_id, const uint32_t *uids,
			   size_t n, uint32_t flags, struct yj_err *err)
{
	int64_t modseq = 0;
	size_t changed;
	int ret;

	ret = store_mailbox_next_modseq(st, mailbox_id, &modseq, err);
	if (ret <= 0)
		return ret;
	if (store_msg_flag_rows(st, mailbox_id, uids, n, flags, modseq, &changed, err) < 0)
		return -1;
	if (changed == 0)
		return 1;	/* nothing changed: no new MODSEQ */
	return store_mailbox_set_modseq(st, mailbox_id, modseq, err);
}

int
store_msg_add_flags(struct store *st, int64_t mailbox_id, const uint32_t *uids, size_t n,
		    uint32_t flags, struct yj_err *err)
{
	int ret;

	if (n == 0 || flags == 0)
		return 1;
	if (store_begin(st, err) < 0)
		return -1;
	ret = store_msg_add_flags_locked(st, mailbox_id, uids, n, flags, err);
	if (ret <= 0 || store_commit(st, err) < 0) {
		store_rollback(st);
		return ret <= 0 ? ret : -1;
	}
	return 1;
}
