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
	copy->text_pending = ix->text_pending;
	if (ix->has_text) {
		copy->header = store_memdup(ix->header, ix->header_len);
		copy->header_len = ix->header_len;
		copy->body = store_memdup(ix->body, ix->body_len);
		copy->body_len = ix->body_len;
	}
	return copy;
}

/* A blob waits for its text (made by store_text_index_some). */
static int
store_text_wait(struct store *st, const char *blob_id, struct yj_err *err)
{
	static const char sql[] =
		"INSERT INTO search_pending (blob_id) SELECT ?1"
		" WHERE EXISTS (SELECT 1 FROM blobs WHERE id = ?1)"
		" AND NOT EXISTS (SELECT 1 FROM search_text WHERE blob_id = ?1)"
		" ON CONFLICT (blob_id) DO NOTHING";
	struct store_q *stmt = store_stmt(st, sql, err);

	if (stmt == NULL)
		return -1;
	store_bind_text(stmt, 1, blob_id);
	return store_run(st, stmt, "search text to make", err);
}

static int
store_text_done(struct store *st, const char *blob_id, struct yj_err *err)
{
	static const char sql[] = "DELETE FROM search_pending WHERE blob_id = ?1";
	struct store_q *stmt = store_stmt(st, sql, err);

	if (stmt == NULL)
		return -1;
	store_bind_text(stmt, 1, blob_id);
	return store_run(st, stmt, "search text made", err);
}

/* A blob's text row (and it waits no more); NULL columns mark a
 * message whose text could not be made (too large): it is never ruled
 * out, and not made again. */
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
		return ix->text_pending ? store_text_wait(st, blob_id, err) : 1;
	if ((stmt = store_stmt(st, ix->has_text ? sql : sql_none, err)) == NULL)
		return -1;
	store_bind_text(stmt, 1, blob_id);
	if (ix->has_text) {
		store_bind_text(stmt, 2, ix->header != NULL ? ix->header : "");
		store_bind_text(stmt, 3, ix->body != NULL ? ix->body : "");
	}
	if (store_run(st, stmt, "save search text", err) < 0)
		return -1;
	return store_text_done(st, blob_id, err);
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

/* ---- making the text later ---- */

static store_text_fn *store_text_maker;

void
store_set_text_maker(store_text_fn *fn)
{
	store_text_maker = fn;
}

int
store_blob_load(struct store *st, const char *blob_id, uint64_t size, size_t max,
		struct buf *out, struct yj_err *err)
{
	struct store_msg m = { 0 };
	struct store_blob_reader rd;
	char chunk[65536];
	uint64_t off = 0;
	long n = 1;

	if (size > max)
		return 0;
	snprintf(m.blob_id, sizeof(m.blob_id), "%s", blob_id);
	m.size = size;
	if (store_blob_reader_open(st, &m, &rd, err) < 0)
		return -1;
	buf_init(out, (size_t)size + 1);
	while (off < size && (n = store_blob_read(&rd, off, chunk, sizeof(chunk), err)) > 0) {
		if (buf_append(out, chunk, (size_t)n) < 0)
			break;
		off += (uint64_t)n;
	}
	store_blob_reader_close(&rd);
	if (n < 0 || off != size) {
		buf_free(out);
		return n < 0 ? -1 : yj_err_set(err, "blob %s: not %llu bytes", blob_id,
					       (unsigned long long)size);
	}
	return 1;
}

#define STORE_PENDING_BATCH 32
struct store_text_batch {
	char ids[STORE_PENDING_BATCH][STORE_BLOB_ID_MAX];
	uint64_t sizes[STORE_PENDING_BATCH];
	size_t n;
};

static int
store_pending_list(struct store *st, struct store_text_batch *p, struct yj_err *err)
{
	static const char sql[] =
		"SELECT p.blob_id, b.size FROM search_pending p JOIN blobs b ON b.id = p.blob_id"
		" ORDER BY p.blob_id LIMIT ?1";
	struct store_q *stmt = store_stmt(st, sql, err);
	int ret;

	p->n = 0;
	if (stmt == NULL)
		return -1;
	store_bind_i64(stmt, 1, STORE_PENDING_BATCH);
	while ((ret = store_row(st, stmt, "pending texts", err)) == 1) {
		store_col_text(stmt, 0, p->ids[p->n], sizeof(p->ids[p->n]));
		p->sizes[p->n++] = (uint64_t)store_col_i64(stmt, 1);
		if (p->n == STORE_PENDING_BATCH) {
			store_reset(stmt);
			break;
		}
	}
	return ret < 0 ? -1 : 1;
}

/* The text of one pending blob, made outside any transaction; one that
 * cannot be read or is too large gets the mark of a text not made. */
static void
store_pending_make(struct store *st, const char *blob_id, uint64_t size, struct store_index *ix)
{
	struct yj_err err;
	struct buf data;
	int ret = store_blob_load(st, blob_id, size, STORE_TEXT_READ_MAX, &data, &err);

	memset(ix, 0, sizeof(*ix));
	if (ret < 0)
		log_warn("store: search text of %s: %s", blob_id, err.msg);
	if (ret <= 0) {
		ix->text_failed = true;
		return;
	}
	store_text_maker(data.data, data.len, ix);
	buf_free(&data);
	ix->text_failed = !ix->has_text;
}

int
store_text_index_some(struct store *st, size_t max_bytes, struct yj_err *err)
{
	struct store_text_batch *p;
	struct store_index *ix;
	size_t n = 0, bytes = 0;
	int ret = 1;

	if (store_text_maker == NULL)
		return 0;
	if ((p = calloc(1, sizeof(*p))) == NULL || (ix = calloc(STORE_PENDING_BATCH, sizeof(*ix))) == NULL)
		log_fatal("out of memory");
	if ((ret = store_pending_list(st, p, err)) < 0 || p->n == 0) {
		ret = ret < 0 ? -1 : 0;
		goto done;
	}
	for (; n < p->n && (n == 0 || bytes + p->sizes[n] <= max_bytes); n++) {
		store_pending_make(st, p->ids[n], p->sizes[n], &ix[n]);
		bytes += p->sizes[n];
	}
	if (store_begin(st, err) < 0) {
		ret = -1;
		goto done;
	}
	for (size_t i = 0; i < n; i++)
		if (store_text_insert(st, p->ids[i], &ix[i], err) < 0) {
			store_rollback(st);
			ret = -1;
			goto done;
		}
	ret = store_commit(st, err) < 0 ? -1 : 1;
done:
	for (size_t i = 0; i < n; i++)
		store_index_free(&ix[i]);
	free(ix);
	free(p);
	return ret;
}
