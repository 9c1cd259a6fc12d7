/* store_index.c - the rows IMAP keeps of a blob besides its summary:
 * the folded text SEARCH BODY and TEXT compare with (search_text),
 * indexed by the driver's full-text search (SQLite: an FTS5 table with
 * the trigram tokenizer; PostgreSQL: pg_trgm GIN indexes), and the
 * query that rules messages out with it. Rows go with their blob (a
 * trigger). */
#include "store/store-private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/log.h"

void
store_index_free(struct store_index *ix)
{
	store_summary_free(&ix->summary);
	free(ix->header);
	free(ix->body);
	memset(ix, 0, sizeof(*ix));
}

static char *
store_memdup(const char *p, size_t len)
{
	char *copy = malloc(len + 1);

	if (copy == NULL)
		log_fatal("out of memory");
	if (len > 0)
		memcpy(copy, p, len);
	copy[len] = '\0';
	return copy;
}

struct store_index *
store_index_dup(const struct store_index *ix)
{
	struct store_index *copy = calloc(1, sizeof(*copy));

	if (copy == NULL)
		log_fatal("out of memory");
	copy->has_summary = ix->has_summary;
	for (int i = 0; ix->has_summary && i < STORE_SUMMARY_ITEMS; i++) {
		copy->summary.text[i] = store_memdup(ix->summary.text[i], ix->summary.len[i]);
		copy->summary.len[i] = ix->summary.len[i];
	}
	copy->has_text = ix->has_text;
	copy->text_failed = ix->text_failed;
	if (ix->has_text) {
		copy->header = store_memdup(ix->header, ix->header_len);
		copy->header_len = ix->header_len;
		copy->body = store_memdup(ix->body, ix->body_len);
		copy->body_len = ix->body_len;
	}
	return copy;
}

/* A blob's text row; NULL columns mark a message whose text could not
 * be made (too large): it is never ruled out, and not made again. */
static int
store_text_insert(struct store *st, const char *blob_id, const struct store_index *ix,
		  struct yj_err *err)
{
	static const char sql[] =
		"INSERT INTO search_text (blob_id, header, body) SELECT ?1, ?2, ?3"
		" WHERE EXISTS (SELECT 1 FROM blobs WHERE id = ?1)"
		" ON CONFLICT (blob_id) DO NOTHING";
	static const char sql_none[] =
		"INSERT INTO search_text (blob_id) SELECT ?1"
		" WHERE EXISTS (SELECT 1 FROM blobs WHERE id = ?1)"
		" ON CONFLICT (blob_id) DO NOTHING";
	struct store_q *stmt;

	if (!ix->has_text && !ix->text_failed)
		return 1;	/* not made (imap_fts = no): made later */
	if ((stmt = store_stmt(st, ix->has_text ? sql : sql_none, err)) == NULL)
		return -1;
	store_bind_text(stmt, 1, blob_id);
	if (ix->has_text) {
		store_bind_text(stmt, 2, ix->header != NULL ? ix->header : "");
		store_bind_text(stmt, 3, ix->body != NULL ? ix->body : "");
	}
	return store_run(st, stmt, "save search text", err);
}

int
store_index_insert(struct store *st, const char *blob_id, const struct store_index *ix,
		   struct yj_err *err)
{
	if (ix->has_summary && store_summary_insert(st, blob_id, &ix->summary, err) < 0)
		return -1;
	return store_text_insert(st, blob_id, ix, err);
}

static void
store_exists_read(struct store_q *stmt, void *out)
{
	(void)stmt;
	*(int *)out = 1;
}

int
store_index_put(struct store *st, const char *blob_id, const struct store_index *ix,
		struct yj_err *err)
{
	static const char sql[] = "SELECT 1 FROM blobs WHERE id = ?1";
	struct store_q *stmt;
	int found = 0, ret;

	if (store_begin(st, err) < 0)
		return -1;
	if ((stmt = store_stmt(st, sql, err)) == NULL)
		goto fail;
	store_bind_text(stmt, 1, blob_id);
	if ((ret = store_one(st, stmt, "blob", store_exists_read, &found, err)) < 0)
		goto fail;
	if (ret > 0 && store_index_insert(st, blob_id, ix, err) < 0)
		goto fail;
	if (store_commit(st, err) < 0)
		return -1;
	return ret;
fail:
	store_rollback(st);
	return -1;
}

int
store_unindexed(struct store *st, const char *after_id, size_t max, store_unindexed_cb *cb,
		void *ctx, struct yj_err *err)
{
	static const char sql[] =
		"SELECT b.id, b.size FROM blobs b WHERE b.id > ?1"
		" AND EXISTS (SELECT 1 FROM messages m WHERE m.blob_id = b.id)"
		" AND (NOT EXISTS (SELECT 1 FROM search_text t WHERE t.blob_id = b.id)"
		" OR NOT EXISTS (SELECT 1 FROM summaries s WHERE s.blob_id = b.id))"
		" ORDER BY b.id LIMIT ?2";
	char (*ids)[STORE_BLOB_ID_MAX] = calloc(max + 1, sizeof(*ids));
	uint64_t *sizes = calloc(max + 1, sizeof(*sizes));
	struct store_q *stmt;
	size_t n = 0;
	int ret = 0;

	if (ids == NULL || sizes == NULL)
		log_fatal("out of memory");
	if ((stmt = store_stmt(st, sql, err)) == NULL) {
		free(ids);
		free(sizes);
		return -1;
	}
	store_bind_text(stmt, 1, after_id);
	store_bind_i64(stmt, 2, (int64_t)max);
	/* Rows are copied out first: cb may use the connection. */
	while (n < max && (ret = store_row(st, stmt, "unindexed blobs", err)) == 1) {
		store_col_text(stmt, 0, ids[n], sizeof(ids[n]));
		sizes[n++] = (uint64_t)store_col_i64(stmt, 1);
	}
	if (ret == 1)
		store_reset(stmt);
	for (size_t i = 0; ret >= 0 && i < n; i++)
		cb(ctx, ids[i], sizes[i]);
	free(ids);
	free(sizes);
	return ret < 0 ? -1 : (int)n;
}

/* The driver's form of the needle: an FTS5 phrase ("..." with quotes
 * doubled) or a LIKE pattern (%...% with % _ \ escaped). */
static int
store_text_pattern(const struct store_driver *drv, const char *needle, size_t len,
		   struct buf *out)
{
	const char *special = drv->text_like ? "%_\\" : "\"";
	char quote = drv->text_like ? '%' : '"';

	buf_init(out, 2 * len + 3);
	if (buf_append(out, &quote, 1) < 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		bool esc = strchr(special, needle[i]) != NULL && needle[i] != '\0';
		char pre = drv->text_like ? '\\' : '"';

		if ((esc && buf_append(out, &pre, 1) < 0) || buf_append(out, &needle[i], 1) < 0)
			return -1;
	}
	return buf_append(out, &quote, 1);
}

int
store_text_candidates(struct store *st, int64_t mailbox_id, const char *needle, size_t len,
		      bool headers, uint32_t **uids_r, size_t *n_r, struct yj_err *err)
{
	struct store_q *stmt;
	struct buf pattern;
	uint32_t *uids = NULL;
	size_t n = 0, cap = 0;
	int ret;

	*uids_r = NULL;
	*n_r = 0;
	if (store_text_pattern(st->drv, needle, len, &pattern) < 0) {
		buf_free(&pattern);
		return yj_err_set(err, "search text too long");
	}
	stmt = store_stmt(st, headers ? st->drv->text_sql_all : st->drv->text_sql_body, err);
	if (stmt == NULL) {
		buf_free(&pattern);
		return -1;
	}
	store_bind_i64(stmt, 1, mailbox_id);
	store_bind_text(stmt, 2, pattern.data);
	while ((ret = store_row(st, stmt, "text search", err)) == 1) {
		if (n == cap) {
			cap = cap ? 2 * cap : 256;
			if ((uids = realloc(uids, cap * sizeof(*uids))) == NULL)
				log_fatal("out of memory");
		}
		uids[n++] = (uint32_t)store_col_i64(stmt, 0);
	}
	buf_free(&pattern);
	if (ret < 0) {
		free(uids);
		return -1;
	}
	*uids_r = uids;
	*n_r = n;
	return 1;
}

/* ---- filling the index later (drivers with text_deferred) ---- */

static void
store_i64_read(struct store_q *stmt, void *out)
{
	*(int64_t *)out = store_col_i64(stmt, 0);
}

/* The last id of the rows after `from` that make about max_bytes of
 * text (at least one row), or `from` if there are none. */
static int
store_text_batch_end(struct store *st, int64_t from, size_t max_bytes, int64_t *end_r,
		     struct yj_err *err)
{
	static const char sql[] =
		"SELECT id, coalesce(length(header), 0) + coalesce(length(body), 0)"
		" FROM search_text WHERE id > ?1 ORDER BY id LIMIT 256";
	struct store_q *stmt = store_stmt(st, sql, err);
	size_t bytes = 0;
	int ret;

	*end_r = from;
	if (stmt == NULL)
		return -1;
	store_bind_i64(stmt, 1, from);
	while ((ret = store_row(st, stmt, "text to index", err)) == 1) {
		if (*end_r > from && bytes + (size_t)store_col_i64(stmt, 1) > max_bytes) {
			store_reset(stmt);
			return 1;
		}
		*end_r = store_col_i64(stmt, 0);
		bytes += (size_t)store_col_i64(stmt, 1);
	}
	return ret < 0 ? -1 : 1;
}

static int
store_text_index_range(struct store *st, int64_t from, int64_t to, struct yj_err *err)
{
	static const char add[] =
		"INSERT INTO search_fts (rowid, header, body) SELECT id, header, body"
		" FROM search_text WHERE id > ?1 AND id <= ?2 AND body IS NOT NULL";
	static const char mark[] = "UPDATE meta SET value = ?1 WHERE key = 'fts_indexed'";
	struct store_q *stmt;

	if ((stmt = store_stmt(st, add, err)) == NULL)
		return -1;
	store_bind_i64(stmt, 1, from);
	store_bind_i64(stmt, 2, to);
	if (store_run(st, stmt, "index text", err) < 0 || (stmt = store_stmt(st, mark, err)) == NULL)
		return -1;
	store_bind_i64(stmt, 1, to);
	return store_run(st, stmt, "index text", err);
}

int
store_text_index_some(struct store *st, size_t max_bytes, struct yj_err *err)
{
	static const char sql[] = "SELECT value FROM meta WHERE key = 'fts_indexed'";
	struct store_q *stmt;
	int64_t from = 0, to = 0;

	if (!st->drv->text_deferred)
		return 0;
	if (store_begin(st, err) < 0)
		return -1;
	if ((stmt = store_stmt(st, sql, err)) == NULL ||
	    store_one(st, stmt, "index mark", store_i64_read, &from, err) != 1 ||
	    store_text_batch_end(st, from, max_bytes, &to, err) < 0 ||
	    (to > from && store_text_index_range(st, from, to, err) < 0)) {
		store_rollback(st);
		return -1;
	}
	if (to == from) {
		store_rollback(st);
		return 0;
	}
	if (store_commit(st, err) < 0)
		return -1;
	return 1;
}
