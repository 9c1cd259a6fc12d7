/* store_quota.c - storage quotas per account (RFC 9208 STORAGE, SMTP's
 * 452 4.2.2).
 *
 * accounts.quota_bytes is the limit (NULL: none) and accounts.used_bytes
 * the sum of the sizes of the account's messages, kept by triggers on
 * `messages` (schema step 7; PostgreSQL 5), so a check is one row read,
 * never a SUM.
 */
#include "store/store-private.h"

#include <stdio.h>

static void
store_quota_read(struct store_q *stmt, void *out)
{
	struct store_quota *q = out;
	int64_t used = store_col_i64(stmt, 1);

	q->limit = store_col_i64(stmt, 0);
	if (q->limit < 0)
		q->limit = STORE_QUOTA_NONE;
	/* A sum kept by triggers cannot go below 0; a database edited by
	 * hand could. */
	q->used = used > 0 ? (uint64_t)used : 0;
}

int
store_quota_get(struct store *st, int64_t account_id, struct store_quota *q,
		struct yj_err *err)
{
	static const char sql[] =
		"SELECT coalesce(quota_bytes, -1), used_bytes FROM accounts WHERE id = ?1";
	struct store_q *stmt = store_stmt(st, sql, err);

	if (stmt == NULL)
		return -1;
	store_bind_i64(stmt, 1, account_id);
	return store_one(st, stmt, "quota", store_quota_read, q, err);
}

int
store_quota_set(struct store *st, const char *address, int64_t limit, struct yj_err *err)
{
	static const char sql[] = "UPDATE accounts SET quota_bytes = NULLIF(?1, -1)"
				  " WHERE address = ?2";
	char addr[STORE_ADDRESS_MAX + 1];
	struct store_q *stmt;

	if (limit < 0 && limit != STORE_QUOTA_NONE)
		return yj_err_set(err, "quota: a negative limit");
	if (store_norm_address(address, 0, addr, sizeof(addr), NULL, err) < 0 ||
	    (stmt = store_stmt(st, sql, err)) == NULL)
		return -1;
	store_bind_i64(stmt, 1, limit);
	store_bind_text(stmt, 2, addr);
	if (store_run(st, stmt, "set quota", err) < 0)
		return -1;
	return store_changes(st) > 0 ? 1 : 0;
}

int
store_quota_full(struct store *st, int64_t account_id, struct yj_err *err)
{
	struct store_quota q;
	int ret = store_quota_get(st, account_id, &q, err);

	if (ret <= 0)
		return ret;
	return q.limit != STORE_QUOTA_NONE && q.used >= (uint64_t)q.limit ? 1 : 0;
}

int
store_quota_room(struct store *st, int64_t account_id, uint64_t add, struct yj_err *err)
{
	struct store_quota q;
	int ret = store_quota_get(st, account_id, &q, err);

	if (ret <= 0)
		return ret < 0 ? -1 : yj_err_set(err, "account %lld does not exist",
						 (long long)account_id);
	if (q.limit != STORE_QUOTA_NONE && (q.used + add > (uint64_t)q.limit || q.used + add < add)) {
		yj_err_set(err, "quota exceeded: %llu of %lld bytes used, %llu more needed",
			   (unsigned long long)q.used, (long long)q.limit,
			   (unsigned long long)add);
		return STORE_OVER_QUOTA;
	}
	return 1;
}
