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

/* A message of store_msg_heads before its header is read. */
struct heads_row {
	uint32_t uid;
	char blob_id[STORE_BLOB_ID_MAX];
	char *prefix;			/* malloc'd, or NULL when empty */
	size_t prefix_len;
};

/* Reads the rows: UID, prefix and blob of up to max_n messages. */
static int
heads_rows(struct store *st, int64_t mailbox_id, uint32_t from_uid, size_t max_n,
	   struct heads_row *rows, size_t *n_r, struct yj_err *err)
{
	static const char sql[] =
		"SELECT uid, prefix, blob_id FROM messages"
		" WHERE mailbox_id = ?1 AND uid >= ?2 ORDER BY uid";
	struct store_q *stmt = store_stmt(st, sql, err);
	int ret = 0;

	*n_r = 0;
	if (stmt == NULL)
		return -1;
	store_bind_i64(stmt, 1, mailbox_id);
	store_bind_i64(stmt, 2, from_uid);
	while (*n_r < max_n && (ret = store_row(st, stmt, "message headers", err)) == 1) {
		struct heads_row *r = &rows[(*n_r)++];
		size_t plen = 0;
		const void *prefix = store_col_blob(stmt, 1, &plen);

		r->uid = (uint32_t)store_col_i64(stmt, 0);
		store_col_text(stmt, 2, r->blob_id, sizeof(r->blob_id));
		if (prefix == NULL || plen > STORE_PREFIX_MAX)
			plen = 0;
		if (plen > 0) {
			if ((r->prefix = malloc(plen)) == NULL) {
				store_reset(stmt);
				return yj_err_set(err, "message headers: out of memory");
			}
			memcpy(r->prefix, prefix, plen);
		}
		r->prefix_len = plen;
	}
	/* Stopped with rows left: end the statement, so no read
	 * transaction stays open. */
	if (ret == 1)
		store_reset(stmt);
	return ret < 0 ? -1 : 1;
}

/* Appends a message: prefix + its summary's header lines, or nothing
 * (stored false) when it has no summary or one without them. */
static int
heads_add(struct store_msg_heads *h, const struct heads_row *r, const struct store_summary *sum,
	  bool has, size_t *bytes)
{
	struct store_msg_head *m = &h->v[h->n];
	size_t hlen = has ? sum->len[STORE_SUMMARY_HEADER] : 0;

	memset(m, 0, sizeof(*m));
	m->uid = r->uid;
	if (hlen > 0) {
		if ((m->text = malloc(r->prefix_len + hlen + 1)) == NULL)
			return -1;
		if (r->prefix_len > 0)
			memcpy(m->text, r->prefix, r->prefix_len);
		memcpy(m->text + r->prefix_len, sum->text[STORE_SUMMARY_HEADER], hlen);
		m->text[r->prefix_len + hlen] = '\0';
		m->len = r->prefix_len + hlen;
		m->stored = true;
	}
	*bytes += m->len;
	h->n++;
	return 1;
}

/* Headers read at once: the summaries of this many messages. */
#define HEADS_BATCH 16

/* Adds the messages rows[0..n) with their headers until bytes reaches
 * max_bytes. */
static int
heads_fill(struct store *st, const struct heads_row *rows, size_t n, size_t max_bytes,
	   struct store_msg_heads *h, struct yj_err *err)
{
	size_t bytes = 0;

	for (size_t at = 0; at < n && bytes < max_bytes; at += HEADS_BATCH) {
		size_t k = n - at < HEADS_BATCH ? n - at : HEADS_BATCH;
		const char *ids[HEADS_BATCH];
		struct store_summary sums[HEADS_BATCH];
		bool has[HEADS_BATCH];
		int ret = 1;

		for (size_t i = 0; i < k; i++)
			ids[i] = rows[at + i].blob_id;
		if (store_summaries_load(st, ids, k, 1u << STORE_SUMMARY_HEADER, sums, has, err) < 0)
			return -1;
		for (size_t i = 0; i < k; i++) {
			if (ret == 1 && bytes < max_bytes &&
			    heads_add(h, &rows[at + i], &sums[i], has[i], &bytes) < 0)
				ret = yj_err_set(err, "message headers: out of memory");
			if (has[i])
				store_summary_free(&sums[i]);
		}
		if (ret < 0)
			return -1;
	}
	return 1;
}

int
store_msg_heads(struct store *st, int64_t mailbox_id, uint32_t from_uid, size_t max_n,
		size_t max_bytes, struct store_msg_heads *h, struct yj_err *err)
{
	struct heads_row *rows;
	size_t n = 0;
	int ret;

	memset(h, 0, sizeof(*h));
	if (max_n == 0)
		max_n = 1;
	h->v = calloc(max_n, sizeof(*h->v));
	rows = calloc(max_n, sizeof(*rows));
	if (h->v == NULL || rows == NULL) {
		free(rows);
		store_msg_heads_free(h);
		return yj_err_set(err, "message headers: out of memory");
	}
	ret = heads_rows(st, mailbox_id, from_uid, max_n, rows, &n, err);
	if (ret == 1)
		ret = heads_fill(st, rows, n, max_bytes, h, err);
	for (size_t i = 0; i < n; i++)
		free(rows[i].prefix);
	free(rows);
	if (ret < 0) {
		store_msg_heads_free(h);
		return -1;
	}
	return h->n > 0 ? 1 : 0;
}
