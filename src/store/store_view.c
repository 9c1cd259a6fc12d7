/* store_view.c - what an IMAP session's view of a mailbox reads: the
 * state of each message (SELECT, and the changes since a MODSEQ at each
 * command) without the columns it does not keep, and the headers SEARCH
 * compares, for many messages with one statement. */
#include "store/store-private.h"

#include <stdlib.h>
#include <string.h>

static void
store_msg_state_read(struct store_q *stmt, struct store_msg_state *m)
{
	m->uid = (uint32_t)store_col_i64(stmt, 0);
	m->flags = (uint32_t)store_col_i64(stmt, 1);
	m->keywords = (uint64_t)store_col_i64(stmt, 2);
	m->modseq = (uint64_t)store_col_i64(stmt, 3);
}

int
store_msg_states(struct store *st, int64_t mailbox_id, uint64_t since, store_msg_state_cb *cb,
		 void *ctx, struct yj_err *err)
{
	/* The (mailbox_id, modseq) index finds changed rows; few, then
	 * sorted. */
	static const char sql_all[] =
		"SELECT uid, flags, keywords, modseq FROM messages WHERE mailbox_id = ?1"
		" ORDER BY uid";
	static const char sql_since[] =
		"SELECT uid, flags, keywords, modseq FROM messages"
		" WHERE mailbox_id = ?1 AND modseq > ?2 ORDER BY uid";
	struct store_q *stmt = store_stmt(st, since > 0 ? sql_since : sql_all, err);
	struct store_msg_state m;
	int ret;

	if (stmt == NULL)
		return -1;
	store_bind_i64(stmt, 1, mailbox_id);
	if (since > 0)
		store_bind_i64(stmt, 2, (int64_t)since);
	while ((ret = store_row(st, stmt, "message states", err)) == 1) {
		store_msg_state_read(stmt, &m);
		cb(ctx, &m);
	}
	return ret < 0 ? -1 : 1;
}

void
store_msg_heads_free(struct store_msg_heads *h)
{
	for (size_t i = 0; i < h->n; i++)
		free(h->v[i].text);
	free(h->v);
	memset(h, 0, sizeof(*h));
}

/* Appends the row's message: prefix + stored header lines, or nothing
 * (stored false) when its summary holds none. */
static int
heads_add(struct store_q *stmt, struct store_msg_heads *h, size_t *bytes)
{
	struct store_msg_head *m = &h->v[h->n];
	size_t plen = 0, hlen = 0;
	const void *prefix = store_col_blob(stmt, 1, &plen);
	const void *header = store_col_blob(stmt, 2, &hlen);

	memset(m, 0, sizeof(*m));
	m->uid = (uint32_t)store_col_i64(stmt, 0);
	if (prefix == NULL || plen > STORE_PREFIX_MAX || hlen > STORE_SUMMARY_MAX)
		plen = hlen = 0;
	if (header != NULL && hlen > 0) {
		if ((m->text = malloc(plen + hlen + 1)) == NULL)
			return -1;
		if (plen > 0)
			memcpy(m->text, prefix, plen);
		memcpy(m->text + plen, header, hlen);
		m->text[plen + hlen] = '\0';
		m->len = plen + hlen;
		m->stored = true;
	}
	*bytes += m->len;
	h->n++;
	return 1;
}

int
store_msg_heads(struct store *st, int64_t mailbox_id, uint32_t from_uid, size_t max_n,
		size_t max_bytes, struct store_msg_heads *h, struct yj_err *err)
{
	static const char sql[] =
		"SELECT m.uid, m.prefix, s.header FROM messages m"
		" LEFT JOIN summaries s ON s.blob_id = m.blob_id"
		" WHERE m.mailbox_id = ?1 AND m.uid >= ?2 ORDER BY m.uid";
	struct store_q *stmt;
	size_t bytes = 0;
	int ret = 0;

	memset(h, 0, sizeof(*h));
	if (max_n == 0)
		max_n = 1;
	if ((h->v = calloc(max_n, sizeof(*h->v))) == NULL)
		return yj_err_set(err, "message headers: out of memory");
	if ((stmt = store_stmt(st, sql, err)) == NULL) {
		store_msg_heads_free(h);
		return -1;
	}
	store_bind_i64(stmt, 1, mailbox_id);
	store_bind_i64(stmt, 2, from_uid);
	while (h->n < max_n && bytes < max_bytes &&
	       (ret = store_row(st, stmt, "message headers", err)) == 1) {
		if (heads_add(stmt, h, &bytes) < 0) {
			store_reset(stmt);
			ret = yj_err_set(err, "message headers: out of memory");
			break;
		}
	}
	/* Stopped with rows left: end the statement, so no read
	 * transaction stays open. */
	if (ret == 1)
		store_reset(stmt);
	if (ret < 0) {
		store_msg_heads_free(h);
		return -1;
	}
	return h->n > 0 ? 1 : 0;
}
