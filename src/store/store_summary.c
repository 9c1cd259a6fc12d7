/* store_summary.c - IMAP summaries of blobs (ENVELOPE, BODY,
 * BODYSTRUCTURE, the header lines): the IMAP server computes them once and keeps them
 * here, in the summaries table (schema step 4 on SQLite, 2 on
 * PostgreSQL), removed with their blob by a trigger. */
#include "store/store-private.h"

#include "base/log.h"

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

	if (store_sumcache_get(st->site->sumcache, blob_id, STORE_SUMMARY_ALL, s_r) == 1)
		return 1;
	snprintf(s_r->blob_id, sizeof(s_r->blob_id), "%s", blob_id);
	if ((stmt = store_stmt(st, sql, err)) == NULL)
		return -1;
	store_bind_text(stmt, 1, blob_id);
	ret = store_row(st, stmt, "summary", err);
	if (ret == 1) {
		if (store_summary_read(stmt, 0, s_r) < 0) {
			store_summary_free(s_r);
			ret = yj_err_set(err, "summary of %s: too large or out of memory", blob_id);
		} else {
			store_sumcache_put(st->site->sumcache, s_r);
		}
		store_reset(stmt);
	}
	return ret;
}

/* Summaries asked for at once by store_summaries_load. */
#define SUMMARIES_BATCH 16
#define SUMMARIES_BATCH_SQL \
	"SELECT blob_id, envelope, body, bodystructure, header FROM summaries" \
	" WHERE blob_id IN (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8," \
	" ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"

/* The row's summary into each entry of the batch with its blob id. */
static void
summaries_match(struct store_q *stmt, const char *const *ids, const size_t *batch, size_t n,
		struct store_summary *out, bool *has)
{
	char id[STORE_BLOB_ID_MAX];

	store_col_text(stmt, 0, id, sizeof(id));
	for (size_t k = 0; k < n; k++) {
		size_t i = batch[k];

		if (has[i] || strcmp(ids[i], id) != 0)
			continue;
		memset(&out[i], 0, sizeof(out[i]));
		snprintf(out[i].blob_id, sizeof(out[i].blob_id), "%s", id);
		if (store_summary_read(stmt, 1, &out[i]) < 0) {
			/* As none: the caller makes it again. */
			log_error("store: summary of %s: too large or out of memory", id);
			store_summary_free(&out[i]);
			continue;
		}
		has[i] = true;
	}
}

/* Reads the summaries of the entries batch[0..n) from the database. */
static int
summaries_read_batch(struct store *st, const char *const *ids, const size_t *batch, size_t n,
		     struct store_summary *out, bool *has, struct yj_err *err)
{
	struct store_q *stmt = store_stmt(st, SUMMARIES_BATCH_SQL, err);
	int ret;

	if (stmt == NULL)
		return -1;
	/* No blob id is empty: the unused places match nothing. */
	for (size_t k = 0; k < SUMMARIES_BATCH; k++)
		store_bind_text(stmt, (int)k + 1, k < n ? ids[batch[k]] : "");
	while ((ret = store_row(st, stmt, "summaries", err)) == 1)
		summaries_match(stmt, ids, batch, n, out, has);
	return ret < 0 ? -1 : 1;
}

/* Reads batch[0..nb) from the database and keeps what it found. */
static int
summaries_flush(struct store *st, const char *const *ids, const size_t *batch, size_t nb,
		struct store_summary *out, bool *has, struct yj_err *err)
{
	if (summaries_read_batch(st, ids, batch, nb, out, has, err) < 0)
		return -1;
	for (size_t k = 0; k < nb; k++)
		if (has[batch[k]])
			store_sumcache_put(st->site->sumcache, &out[batch[k]]);
	return 1;
}

int
store_summaries_load(struct store *st, const char *const *ids, size_t n, unsigned items,
		     struct store_summary *out, bool *has, struct yj_err *err)
{
	size_t batch[SUMMARIES_BATCH], nb = 0;
	int ret = 1;

	memset(has, 0, n * sizeof(*has));
	for (size_t i = 0; i < n && ret == 1; i++) {
		has[i] = store_sumcache_get(st->site->sumcache, ids[i], items, &out[i]) == 1;
		if (!has[i])
			batch[nb++] = i;
		if (nb == SUMMARIES_BATCH) {
			ret = summaries_flush(st, ids, batch, nb, out, has, err);
			nb = 0;
		}
	}
	if (ret == 1 && nb > 0)
		ret = summaries_flush(st, ids, batch, nb, out, has, err);
	if (ret < 0) {
		for (size_t i = 0; i < n; i++) {
			if (has[i])
				store_summary_free(&out[i]);
			has[i] = false;
		}
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
	if (store_commit(st, err) < 0)
		return -1;
	/* Kept as stored: a summary that was there first is the same. */
	for (size_t i = 0; i < n; i++)
		store_sumcache_put(st->site->sumcache, &v[i]);
	return 1;
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
