/* store_summary.c - IMAP summaries of blobs (ENVELOPE, BODY,
 * BODYSTRUCTURE, the header lines): the IMAP server computes them once and keeps them
 * here, in the summaries table (schema step 4 on SQLite, 2 on
 * PostgreSQL), removed with their blob by a trigger. */
#include "store/store-private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
store_summary_read(struct store_q *stmt, int col, struct store_summary *s)
{
	for (int i = 0; i < STORE_SUMMARY_ITEMS; i++) {
		size_t len = 0;
		const void *p = store_col_blob(stmt, col + i, &len);

		if (len > STORE_SUMMARY_MAX)
			return -1;
		s->text[i] = malloc(len + 1);
		if (s->text[i] == NULL)
			return -1;
		if (len > 0)
			memcpy(s->text[i], p, len);
		s->len[i] = len;
	}
	return 1;
}

int
store_summary_get(struct store *st, const char *blob_id, struct store_summary *s_r,
		  struct yj_err *err)
{
	static const char sql[] =
		"SELECT envelope, body, bodystructure, header FROM summaries WHERE blob_id = ?1";
	struct store_q *stmt;
	int ret;

	memset(s_r, 0, sizeof(*s_r));
	snprintf(s_r->blob_id, sizeof(s_r->blob_id), "%s", blob_id);
	if ((stmt = store_stmt(st, sql, err)) == NULL)
		return -1;
	store_bind_text(stmt, 1, blob_id);
	ret = store_row(st, stmt, "summary", err);
	if (ret == 1) {
		if (store_summary_read(stmt, 0, s_r) < 0) {
			store_summary_free(s_r);
			ret = yj_err_set(err, "summary of %s: too large or out of memory", blob_id);
		}
		store_reset(stmt);
	}
	return ret;
}

int
store_summary_insert(struct store *st, const char *blob_id, const struct store_summary *s,
		     struct yj_err *err)
{
	static const char sql[] =
		"INSERT INTO summaries (blob_id, envelope, body, bodystructure, header)"
		" SELECT ?1, ?2, ?3, ?4, ?5 WHERE EXISTS (SELECT 1 FROM blobs WHERE id = ?1)"
		" ON CONFLICT (blob_id) DO NOTHING";
	struct store_q *stmt = store_stmt(st, sql, err);

	if (stmt == NULL)
		return -1;
	store_bind_text(stmt, 1, blob_id);
	for (int i = 0; i < STORE_SUMMARY_ITEMS; i++)
		store_bind_blob(stmt, i + 2, s->text[i] != NULL ? s->text[i] : "", s->len[i]);
	return store_run(st, stmt, "save summary", err);
}

int
store_summary_put(struct store *st, const struct store_summary *v, size_t n, struct yj_err *err)
{
	if (n == 0)
		return 1;
	/* Summaries are made again from the blob if lost. */
	if (store_begin_lazy(st, err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (store_summary_insert(st, v[i].blob_id, &v[i], err) < 0) {
			store_rollback(st);
			return -1;
		}
	return store_commit(st, err);
}

void
store_summary_free(struct store_summary *s)
{
	for (int i = 0; i < STORE_SUMMARY_ITEMS; i++) {
		free(s->text[i]);
		s->text[i] = NULL;
		s->len[i] = 0;
	}
}
