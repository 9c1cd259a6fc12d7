/* store_thread.c - conversation ids of an account's messages (RFC 8474
 * THREADID), given at delivery and APPEND.
 *
 * `threads` maps each message-id an account has seen (its messages'
 * own, In-Reply-To and References ids) to a thread. A new message joins
 * the thread of the first of its ids already known, and all its ids are
 * then known as that thread's; with none known it starts a thread, its
 * number one past meta's last_thread_id (never reused, and carried by
 * `youju store copy` with the rows). A message that links two threads
 * joins the first and leaves the other as it is: a thread id never
 * changes once given. A copy or move keeps its message's thread.
 */
#include "store/store-private.h"

#include <string.h>

static int
store_thread_lookup(struct store *st, int64_t account_id, const char *msgid, int64_t *thread_r,
		    struct yj_err *err)
{
	static const char sql[] =
		"SELECT thread_id FROM threads WHERE account_id = ?1 AND msgid = ?2";
	struct store_q *stmt = store_stmt(st, sql, err);
	int ret;

	if (stmt == NULL)
		return -1;
	store_bind_i64(stmt, 1, account_id);
	store_bind_text(stmt, 2, msgid);
	ret = store_row(st, stmt, "thread lookup", err);
	if (ret == 1) {
		*thread_r = store_col_i64(stmt, 0);
		store_reset(stmt);
	}
	return ret;
}

static int
store_thread_new(struct store *st, int64_t *thread_r, struct yj_err *err)
{
	static const char sql[] =
		"UPDATE meta SET value = value + 1 WHERE key = 'last_thread_id' RETURNING value";
	struct store_q *stmt = store_stmt(st, sql, err);
	int ret;

	if (stmt == NULL)
		return -1;
	ret = store_row(st, stmt, "new thread", err);
	if (ret == 0)
		return yj_err_set(err, "store: meta row last_thread_id is missing");
	if (ret < 0)
		return -1;
	*thread_r = store_col_i64(stmt, 0);
	return store_run(st, stmt, "new thread", err);
}

static int
store_thread_remember(struct store *st, int64_t account_id, const char *msgid, int64_t thread,
		      struct yj_err *err)
{
	static const char sql[] =
		"INSERT INTO threads (account_id, msgid, thread_id) VALUES (?1, ?2, ?3)"
		" ON CONFLICT DO NOTHING";
	struct store_q *stmt = store_stmt(st, sql, err);

	if (stmt == NULL)
		return -1;
	store_bind_i64(stmt, 1, account_id);
	store_bind_text(stmt, 2, msgid);
	store_bind_i64(stmt, 3, thread);
	return store_run(st, stmt, "remember thread", err);
}

int
store_thread_assign(struct store *st, int64_t account_id, const char *keys, size_t len,
		    int64_t *thread_r, struct yj_err *err)
{
	int64_t thread = 0;
	size_t pos;

	for (pos = 0; pos < len && thread == 0; pos += strlen(keys + pos) + 1)
		if (store_thread_lookup(st, account_id, keys + pos, &thread, err) < 0)
			return -1;
	if (thread == 0 && store_thread_new(st, &thread, err) < 0)
		return -1;
	for (pos = 0; pos < len; pos += strlen(keys + pos) + 1)
		if (store_thread_remember(st, account_id, keys + pos, thread, err) < 0)
			return -1;
	*thread_r = thread;
	return 1;
}
