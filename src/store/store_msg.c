/* store_msg.c - reading messages, changing their flags and keywords,
 * expunging them, and what changed since a MODSEQ. */
#include "store/store-private.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"

/* The columns store_msg_read reads, of table alias t ("" or "m."). */
#define STORE_MSG_COLUMNS_OF(t) \
	t "id, " t "mailbox_id, " t "uid, " t "modseq, " t "flags, " t "internal_date, " t "size, " \
	t "blob_id, " t "prefix, " t "keywords, " t "saved, " t "thread_id, " t "internal_zone"
#define STORE_MSG_COLUMNS STORE_MSG_COLUMNS_OF("")
#define STORE_MSG_NCOLUMNS 13

/* Fills msg from a row of STORE_MSG_COLUMNS. */
static void
store_msg_read(struct store_q *stmt, void *out)
{
	struct store_msg *msg = out;
	const void *prefix;
	size_t len;

	msg->id = store_col_i64(stmt, 0);
	msg->mailbox_id = store_col_i64(stmt, 1);
	msg->uid = (uint32_t)store_col_i64(stmt, 2);
	msg->modseq = (uint64_t)store_col_i64(stmt, 3);
	msg->flags = (uint32_t)store_col_i64(stmt, 4);
	msg->internal_date = store_col_i64(stmt, 5);
	msg->size = (uint64_t)store_col_i64(stmt, 6);
	store_col_text(stmt, 7, msg->blob_id, sizeof(msg->blob_id));
	prefix = store_col_blob(stmt, 8, &len);
	/* store_deliver() refuses longer prefixes; this only guards the
	 * buffer against a database edited by hand. */
	if (prefix == NULL || len > STORE_PREFIX_MAX)
		len = 0;
	if (len > 0)
		memcpy(msg->prefix, prefix, len);
	msg->prefix[len] = '\0';
	msg->prefix_len = len;
	msg->keywords = (uint64_t)store_col_i64(stmt, 9);
	msg->saved = store_col_i64(stmt, 10);
	msg->thread_id = store_col_i64(stmt, 11);
	msg->internal_zone = store_zone_valid(store_col_i64(stmt, 12));
}

/* Reads every row of stmt into a store_msg for cb. */
static int
store_msg_each(struct store *st, struct store_q *stmt, const char *what, store_msg_cb *cb,
	       void *ctx, struct yj_err *err)
{
	struct store_msg msg;
	int ret;

	while ((ret = store_row(st, stmt, what, err)) == 1) {
		store_msg_read(stmt, &msg);
		cb(ctx, &msg);
	}
	return ret < 0 ? -1 : 1;
}

int
store_msg_list(struct store *st, int64_t mailbox_id, store_msg_cb *cb, void *ctx,
	       struct yj_err *err)
{
	static const char sql[] =
		"SELECT " STORE_MSG_COLUMNS " FROM messages WHERE mailbox_id = ?1 ORDER BY uid";
	struct store_q *stmt = store_stmt(st, sql, err);

	if (stmt == NULL)
		return -1;
	store_bind_i64(stmt, 1, mailbox_id);
	return store_msg_each(st, stmt, "list messages", cb, ctx, err);
}

int
store_msg_changed_since(struct store *st, int64_t mailbox_id, uint64_t modseq,
			store_msg_cb *cb, void *ctx, struct yj_err *err)
{
	/* The (mailbox_id, modseq) index finds the rows; few, then sorted. */
	static const char sql[] =
		"SELECT " STORE_MSG_COLUMNS " FROM messages"
		" WHERE mailbox_id = ?1 AND modseq > ?2 ORDER BY uid";
	struct store_q *stmt = store_stmt(st, sql, err);

	if (stmt == NULL)
		return -1;
	store_bind_i64(stmt, 1, mailbox_id);
	store_bind_i64(stmt, 2, (int64_t)modseq);
	return store_msg_each(st, stmt, "changed messages", cb, ctx, err);
}

int
store_msg_get(struct store *st, int64_t mailbox_id, uint32_t uid, struct store_msg *msg_r)
{
	static const char sql[] =
		"SELECT " STORE_MSG_COLUMNS " FROM messages WHERE mailbox_id = ?1 AND uid = ?2";
	struct store_q *stmt;
	struct yj_err err;
	int ret;

	if ((stmt = store_stmt(st, sql, &err)) == NULL) {
		log_error("store: %s", err.msg);
		return -1;
	}
	store_bind_i64(stmt, 1, mailbox_id);
	store_bind_i64(stmt, 2, uid);
	ret = store_one(st, stmt, "get message", store_msg_read, msg_r, &err);
	if (ret < 0)
		log_error("store: %s", err.msg);
	return ret;
}

/* store_msg_fetch's rows as they come. */
struct store_fetch_acc {
	struct store_fetch_row *rows;
	size_t n, cap;
};

/* Reads a row of store_msg_fetch's statement into the next slot. */
static void
store_fetch_read(struct store_q *stmt, void *out)
{
	struct store_fetch_acc *acc = out;
	struct store_fetch_row *r;

	if (acc->n == acc->cap)
		return;		/* only if uids repeated a UID */
	r = &acc->rows[acc->n++];
	store_msg_read(stmt, &r->msg);
	memset(&r->summary, 0, sizeof(r->summary));
	r->has_summary = false;
}

/* The summaries of the rows read, from the cache or the database. */
static int
store_fetch_summaries(struct store *st, struct store_fetch_row *rows, size_t n,
		      struct yj_err *err)
{
	const char **ids = calloc(n ? n : 1, sizeof(*ids));
	struct store_summary *sums = calloc(n ? n : 1, sizeof(*sums));
	bool *has = calloc(n ? n : 1, sizeof(*has));
	int ret = -1;

	if (ids == NULL || sums == NULL || has == NULL) {
		yj_err_set(err, "fetch messages: out of memory");
	} else {
		for (size_t i = 0; i < n; i++)
			ids[i] = rows[i].msg.blob_id;
		ret = store_summaries_load(st, ids, n, STORE_SUMMARY_ALL, sums, has, err);
		for (size_t i = 0; ret == 1 && i < n; i++) {
			rows[i].has_summary = has[i];
			rows[i].summary = sums[i];
		}
	}
	free(has);
	free(sums);
	free(ids);
	return ret;
}

int
store_msg_fetch(struct store *st, int64_t mailbox_id, const uint32_t *uids, size_t n,
		bool summaries, struct store_fetch_row *rows, size_t *found_r, struct yj_err *err)
{
	static const char sql[] =
		"SELECT " STORE_MSG_COLUMNS " FROM messages"
		" WHERE mailbox_id = ?1 AND uid BETWEEN ?2 AND ?3 ORDER BY uid";
	struct store_fetch_acc acc = { .rows = rows, .cap = n };
	struct store_uidset set;
	struct store_q *stmt;
	bool tx;
	int ret = -1;

	*found_r = 0;
	store_uidset_from_uids(uids, n, &set);
	/* One statement is a snapshot of its own; several share one. */
	tx = set.n > 1;
	if ((stmt = store_stmt(st, sql, err)) != NULL &&
	    (!tx || store_exec(st, "BEGIN", err) == 1)) {
		ret = store_each_range(st, stmt, mailbox_id, &set, "fetch messages",
				       store_fetch_read, &acc, NULL, NULL, NULL, err);
		if (tx && (ret < 0 || store_exec(st, "COMMIT", err) < 0)) {
			store_rollback(st);
			ret = -1;
		}
	}
	free((void *)set.ranges);
	/* After the rows' snapshot: summaries do not change. */
	if (ret == 1 && summaries)
		ret = store_fetch_summaries(st, rows, acc.n, err);
	if (ret < 0) {
		store_fetch_rows_free(rows, acc.n);
		return -1;
	}
	*found_r = acc.n;
	return 1;
}

void
store_fetch_rows_free(struct store_fetch_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++)
		store_summary_free(&rows[i].summary);
}

/* Drivers that keep contents in the database: the blob's bytes in an
 * anonymous memory file, so that callers read an fd either way. */
static int
store_blob_memfd(struct store *st, const char *id, int *fd_r, struct yj_err *err)
{
	static const char sql[] = "SELECT data FROM blob_data WHERE id = ?1";
	struct store_q *stmt = store_stmt(st, sql, err);
	const void *data;
	size_t len = 0;
	int ret, fd;

	if (stmt == NULL)
		return -1;
	store_bind_text(stmt, 1, id);
	ret = store_row(st, stmt, "read blob", err);
	if (ret == 0)
		return yj_err_set(err, "blob %s is missing", id);
	if (ret < 0)
		return -1;
	data = store_col_blob(stmt, 0, &len);
	fd = memfd_create("youju-blob", MFD_CLOEXEC);
	if (fd < 0 || util_write_all(fd, data, len) < 0 || lseek(fd, 0, SEEK_SET) < 0) {
		ret = yj_err_errno(err, "blob %s: memory file", id);
		if (fd >= 0)
			close(fd);
		store_reset(stmt);
		return ret;
	}
	store_reset(stmt);
	*fd_r = fd;
	return 1;
}

int
store_blob_open(struct store *st, const char *id, int *fd_r, struct yj_err *err)
{
	char path[STORE_PATH_MAX];

	if (st->drv->blobs_in_db)
		return store_blob_memfd(st, id, fd_r, err);
	if (store_blob_path(st, id, path, sizeof(path)) < 0)
		return yj_err_set(err, "bad blob id %s", id);
	*fd_r = open(path, O_RDONLY | O_CLOEXEC);
	if (*fd_r < 0)
		return yj_err_errno(err, "open blob %s", id);
	return 1;
}

int
store_msg_open_blob(struct store *st, const struct store_msg *msg, int *fd_r,
		    struct yj_err *err)
{
	return store_blob_open(st, msg->blob_id, fd_r, err);
}

int
store_blob_reader_open(struct store *st, const struct store_msg *msg,
		       struct store_blob_reader *rd, struct yj_err *err)
{
	rd->st = st;
	rd->fd = -1;
	snprintf(rd->blob_id, sizeof(rd->blob_id), "%s", msg->blob_id);
	if (st->drv->blobs_in_db)
		return 1;
	return store_blob_open(st, msg->blob_id, &rd->fd, err);
}

/* A slice of the row: the database cuts it, only len bytes travel. */
static long
store_blob_read_row(struct store_blob_reader *rd, uint64_t off, void *buf, size_t len,
		    struct yj_err *err)
{
	static const char sql[] =
		"SELECT substring(data FROM CAST(?2 AS INTEGER) FOR CAST(?3 AS INTEGER))"
		" FROM blob_data WHERE id = ?1";
	struct store_q *stmt = store_stmt(rd->st, sql, err);
	const void *p;
	size_t got = 0;
	int ret;

	if (stmt == NULL)
		return -1;
	store_bind_text(stmt, 1, rd->blob_id);
	store_bind_i64(stmt, 2, (int64_t)off + 1);
	store_bind_i64(stmt, 3, (int64_t)len);
	ret = store_row(rd->st, stmt, "read blob", err);
	if (ret == 0)
		return yj_err_set(err, "blob %s is missing", rd->blob_id);
	if (ret < 0)
		return -1;
	p = store_col_blob(stmt, 0, &got);
	if (got > len)
		got = len;
	if (got > 0)
		memcpy(buf, p, got);
	store_reset(stmt);
	return (long)got;
}

long
store_blob_read(struct store_blob_reader *rd, uint64_t off, void *buf, size_t len,
		struct yj_err *err)
{
	ssize_t n;

	if (rd->fd < 0)
		return store_blob_read_row(rd, off, buf, len, err);
	n = pread(rd->fd, buf, len, (off_t)off);
	if (n < 0)
		return yj_err_errno(err, "read blob %s", rd->blob_id);
	return (long)n;
}

void
store_blob_reader_close(struct store_blob_reader *rd)
{
	if (rd->fd >= 0)
		close(rd->fd);
	rd->fd = -1;
}

bool
store_blob_reader_in_db(const struct store_blob_reader *rd)
{
	return rd->fd < 0;
}

void
store_blob_reader_use(struct store_blob_reader *rd, struct store *st)
{
	rd->st = st;
}

/* ---- UID sets ---- */

/* The ranges of a list of UIDs: runs of consecutive UIDs become one
 * range. *set_r's ranges are malloc'd; the caller frees them. */
void
store_uidset_from_uids(const uint32_t *uids, size_t n, struct store_uidset *set_r)
{
	struct store_uid_range *r = malloc((n > 0 ? n : 1) * sizeof(*r));
	size_t k = 0;

	if (r == NULL)
		log_fatal("out of memory");
	for (size_t i = 0; i < n; i++) {
		if (k > 0 && r[k - 1].last != UINT32_MAX && uids[i] == r[k - 1].last + 1)
			r[k - 1].last = uids[i];
		else
			r[k++] = (struct store_uid_range){ uids[i], uids[i] };
	}
	*set_r = (struct store_uidset){ .ranges = r, .n = k };
}

/* ---- keywords ---- */

bool
store_keyword_valid(const char *name)
{
	size_t len = strlen(name);

	/* An IMAP atom (RFC 3501 9): no controls, spaces or atom-specials,
	 * and no backslash, which starts a system flag. */
	if (len == 0 || len > STORE_KEYWORD_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c <= 0x20 || c >= 0x7f || strchr("(){%*\"\\]", c) != NULL)
			return false;
	}
	return true;
}

struct store_keyword_row {
	unsigned bit;
	char name[STORE_KEYWORD_MAX + 1];
};

static void
store_keyword_read(struct store_q *stmt, void *out)
{
	struct store_keyword_row *k = out;

	k->bit = (unsigned)(int)store_col_i64(stmt, 0);
	store_col_text(stmt, 1, k->name, sizeof(k->name));
}

int
store_keyword_list(struct store *st, int64_t mailbox_id, store_keyword_cb *cb, void *ctx,
		   struct yj_err *err)
{
	static const char sql[] =
		"SELECT bit, name FROM keywords WHERE mailbox_id = ?1 ORDER BY bit";
	struct store_q *stmt = store_stmt(st, sql, err);
	struct store_keyword_row k;
	int ret;

	if (stmt == NULL)
		return -1;
	store_bind_i64(stmt, 1, mailbox_id);
	while ((ret = store_row(st, stmt, "list keywords", err)) == 1) {
		store_keyword_read(stmt, &k);
		cb(ctx, k.bit, k.name);
	}
	return ret < 0 ? -1 : 1;
}

/* 1 with the keyword's bit, 0 not known in the mailbox, -1 error. */
static int
store_keyword_find(struct store *st, int64_t mailbox_id, const char *lname, unsigned *bit_r,
		   struct yj_err *err)
{
	static const char sql[] =
		"SELECT bit, name FROM keywords WHERE mailbox_id = ?1 AND lname = ?2";
	struct store_q *stmt = store_stmt(st, sql, err);
	struct store_keyword_row k;
	int ret;

	if (stmt == NULL)
		return -1;
	store_bind_i64(stmt, 1, mailbox_id);
	store_bind_text(stmt, 2, lname);
	ret = store_one(st, stmt, "find keyword", store_keyword_read, &k, err);
	if (ret == 1)
		*bit_r = k.bit;
	return ret;
}

static int
store_keywords_full(struct yj_err *err)
{
	yj_err_set(err, "mailbox has %d keywords already, the most it can have",
		   STORE_KEYWORDS_MAX);
	return STORE_KEYWORDS_FULL;
}

/* Gives a keyword new to the mailbox the lowest free bit. */
static int
store_keyword_make(struct store *st, int64_t mailbox_id, const char *name, const char *lname,
		   unsigned *bit_r, struct yj_err *err)
{
	static const char sql[] =
		"INSERT INTO keywords (mailbox_id, bit, name, lname)"
		" SELECT ?1, coalesce(max(bit) + 1, 0), ?2, ?3 FROM keywords WHERE mailbox_id = ?1"
		" RETURNING bit";
	struct store_q *stmt = store_stmt(st, sql, err);
	int ret;

	if (stmt == NULL)
		return -1;
	store_bind_i64(stmt, 1, mailbox_id);
	store_bind_text(stmt, 2, name);
	store_bind_text(stmt, 3, lname);
	ret = store_row(st, stmt, "add keyword", err);
	if (ret == 1) {
		*bit_r = (unsigned)(int)store_col_i64(stmt, 0);
		ret = store_run(st, stmt, "add keyword", err);
	}
	/* The CHECK on bit refuses the 64th. */
	if (ret < 0 && store_is_check_violation(st))
		return store_keywords_full(err);
	return ret == 0 ? yj_err_set(err, "add keyword: no row") : ret;
}

int
store_keyword_bits(struct store *st, int64_t mailbox_id, const struct store_flag_change *ch,
		   uint64_t *bits_r, struct yj_err *err)
{
	char lname[STORE_KEYWORD_MAX + 1];
	unsigned bit = 0;
	int ret;

	*bits_r = 0;
	for (size_t i = 0; i < ch->n_keywords; i++) {
		if (!store_keyword_valid(ch->keywords[i]))
			return yj_err_set(err, "invalid keyword name");
		snprintf(lname, sizeof(lname), "%s", ch->keywords[i]);
		util_ascii_lower(lname);
		ret = store_keyword_find(st, mailbox_id, lname, &bit, err);
		if (ret == 0 && ch->op != STORE_FLAGS_REMOVE)
			ret = store_keyword_make(st, mailbox_id, ch->keywords[i], lname, &bit, err);
		if (ret < 0)
			return ret;
		if (ret == 1)
			*bits_r |= UINT64_C(1) << bit;
	}
	return 1;
}

/* ---- changing flags and keywords ---- */

struct store_flag_ctx {
	store_flag_cb *changed;
	store_uid_cb *failed;
	void *ctx;
};

static void
store_flag_row_read(struct store_q *stmt, void *out)
{
	struct store_flag_result *r = out;

	r->uid = (uint32_t)store_col_i64(stmt, 0);
	r->flags = (uint32_t)store_col_i64(stmt, 1);
	r->keywords = (uint64_t)store_col_i64(stmt, 2);
	r->modseq = (uint64_t)store_col_i64(stmt, 3);
}

static void
store_flag_changed(void *ctx, const void *row)
{
	const struct store_flag_ctx *fc = ctx;

	if (fc->changed != NULL)
		fc->changed(fc->ctx, row);
}

static void
store_flag_failed(void *ctx, const void *row)
{
	const struct store_flag_ctx *fc = ctx;

	if (fc->failed != NULL)
		fc->failed(fc->ctx, ((const struct store_flag_result *)row)->uid);
}

/* Binds what stays (at index keep) and what is added (at keep + 1) of
 * the flags or keywords bits, as op says. */
static void
store_flag_bind_masks(struct store_q *stmt, int keep, enum store_flag_op op, uint64_t bits)
{
	switch (op) {
	case STORE_FLAGS_ADD:
		store_bind_i64(stmt, keep, -1);
		store_bind_i64(stmt, keep + 1, (int64_t)bits);
		break;
	case STORE_FLAGS_REMOVE:
		store_bind_i64(stmt, keep, ~(int64_t)bits);
		store_bind_i64(stmt, keep + 1, 0);
		break;
	default:
		store_bind_i64(stmt, keep, 0);
		store_bind_i64(stmt, keep + 1, (int64_t)bits);
		break;
	}
}

/* The messages of set that UNCHANGEDSINCE excludes, to failed. */
static int
store_flag_unchanged_check(struct store *st, int64_t mailbox_id, const struct store_uidset *set,
			   uint64_t since, struct store_flag_ctx *fc, struct yj_err *err)
{
	static const char sql[] =
		"SELECT uid, flags, keywords, modseq FROM messages"
		" WHERE mailbox_id = ?1 AND uid BETWEEN ?2 AND ?3 AND modseq > ?4 ORDER BY uid";
	struct store_q *stmt = store_stmt(st, sql, err);
	struct store_flag_result row;

	if (stmt == NULL)
		return -1;
	store_bind_i64(stmt, 4, (int64_t)since);
	return store_each_range(st, stmt, mailbox_id, set, "unchangedsince", store_flag_row_read,
				&row, store_flag_failed, fc, NULL, err);
}

/* Inside the transaction, with the new MODSEQ: one UPDATE per range. */
static int
store_flag_update(struct store *st, int64_t mailbox_id, const struct store_uidset *set,
		  const struct store_flag_change *ch, uint64_t kw_bits, uint64_t modseq,
		  struct store_flag_ctx *fc, size_t *changed_r, struct yj_err *err)
{
	static const char sql[] =
		"UPDATE messages SET flags = (flags & ?4) | ?5, keywords = (keywords & ?6) | ?7,"
		" modseq = ?8"
		" WHERE mailbox_id = ?1 AND uid BETWEEN ?2 AND ?3 AND modseq <= ?9"
		" AND (flags != ((flags & ?4) | ?5) OR keywords != ((keywords & ?6) | ?7))"
		" RETURNING uid, flags, keywords, modseq";
	struct store_q *stmt = store_stmt(st, sql, err);
	struct store_flag_result row;

	if (stmt == NULL)
		return -1;
	store_flag_bind_masks(stmt, 4, ch->op, ch->flags);
	store_flag_bind_masks(stmt, 6, ch->op, kw_bits);
	store_bind_i64(stmt, 8, (int64_t)modseq);
	store_bind_i64(stmt, 9, ch->unchangedsince_set ? (int64_t)ch->unchangedsince : INT64_MAX);
	return store_each_range(st, stmt, mailbox_id, set, "set flags", store_flag_row_read, &row,
				store_flag_changed, fc, changed_r, err);
}

static int
store_flags_locked(struct store *st, int64_t mailbox_id, const struct store_uidset *set,
		   const struct store_flag_change *ch, struct store_flag_ctx *fc,
		   uint64_t *modseq_r, size_t *changed_r, struct yj_err *err)
{
	uint64_t kw_bits = 0;
	int ret;

	ret = store_modseq_next(st, mailbox_id, STORE_CHANGE_FLAGS, modseq_r, err);
	if (ret <= 0)
		return ret;
	if ((ret = store_keyword_bits(st, mailbox_id, ch, &kw_bits, err)) < 0)
		return ret;
	if (ch->unchangedsince_set &&
	    store_flag_unchanged_check(st, mailbox_id, set, ch->unchangedsince, fc, err) < 0)
		return -1;
	return store_flag_update(st, mailbox_id, set, ch, kw_bits, *modseq_r, fc, changed_r, err);
}

/* ---- writes done by the writer thread ----
 * A flag change or an expunge is a few row updates, and what a client
 * waits for is the fsync of its COMMIT. Each is handed to the data
 * dir's writer (store_write_run), which commits it in one transaction
 * with every other change and delivery waiting at that moment. The job
 * carries its own copy of the request and collects what the callbacks
 * are to hear; they run in the caller's thread after the COMMIT. */

/* arr (capacity *cap elements of size, n used) with room for one more. */
static void *
store_grow(void *arr, size_t *cap, size_t n, size_t size)
{
	size_t want;

	if (n < *cap)
		return arr;
	want = *cap > 0 ? *cap * 2 : 16;
	if ((arr = realloc(arr, want * size)) == NULL)
		log_fatal("out of memory");
	*cap = want;
	return arr;
}

static struct store_uid_range *
store_ranges_copy(const struct store_uidset *set)
{
	struct store_uid_range *r = malloc((set->n > 0 ? set->n : 1) * sizeof(*r));

	if (r == NULL)
		log_fatal("out of memory");
	if (set->n > 0)
		memcpy(r, set->ranges, set->n * sizeof(*r));
	return r;
}

/* UIDs collected inside the transaction. */
struct store_uid_list {
	uint32_t *uids;
	size_t n, cap;
};

static void
store_uid_list_add(void *ctx, uint32_t uid)
{
	struct store_uid_list *l = ctx;

	l->uids = store_grow(l->uids, &l->cap, l->n, sizeof(*l->uids));
	l->uids[l->n++] = uid;
}

static void
store_uid_list_each(const struct store_uid_list *l, store_uid_cb *cb, void *ctx)
{
	for (size_t i = 0; cb != NULL && i < l->n; i++)
		cb(ctx, l->uids[i]);
}

/* A flag change on its way through the writer. */
struct store_flag_job {
	int64_t mailbox_id;
	struct store_uidset set;	/* ranges its own */
	struct store_flag_change ch;	/* keyword names its own */
	int ret;			/* 1, 0 no such mailbox */
	uint64_t modseq;
	struct store_flag_result *changed;
	size_t n_changed, cap_changed;
	struct store_uid_list failed;
};

static void
store_flag_job_changed(void *ctx, const struct store_flag_result *r)
{
	struct store_flag_job *job = ctx;

	job->changed = store_grow(job->changed, &job->cap_changed, job->n_changed,
				  sizeof(*job->changed));
	job->changed[job->n_changed++] = *r;
}

static void
store_flag_job_failed(void *ctx, uint32_t uid)
{
	struct store_flag_job *job = ctx;

	store_uid_list_add(&job->failed, uid);
}

static void
store_flag_job_release(void *arg)
{
	struct store_flag_job *job = arg;

	for (size_t i = 0; i < job->ch.n_keywords; i++)
		free((char *)job->ch.keywords[i]);
	free((void *)job->ch.keywords);
	free((void *)job->set.ranges);
	free(job->changed);
	free(job->failed.uids);
	free(job);
}

static struct store_flag_job *
store_flag_job_new(int64_t mailbox_id, const struct store_uidset *set,
		   const struct store_flag_change *ch)
{
	struct store_flag_job *job = calloc(1, sizeof(*job));
	char **kw = calloc(ch->n_keywords + 1, sizeof(*kw));

	if (job == NULL || kw == NULL)
		log_fatal("out of memory");
	job->mailbox_id = mailbox_id;
	job->set.ranges = store_ranges_copy(set);
	job->set.n = set->n;
	job->ch = *ch;
	for (size_t i = 0; i < ch->n_keywords; i++) {
		if ((kw[i] = strdup(ch->keywords[i])) == NULL)
			log_fatal("out of memory");
	}
	job->ch.keywords = (const char *const *)kw;
	return job;
}

/* In the writer's transaction. Keywords made for a change that changed
 * no message are dropped with its rollback, which is as good. */
static int
store_flag_job_apply(struct store *st, void *arg, struct store_idlist *dead, struct yj_err *err)
{
	struct store_flag_job *job = arg;
	struct store_flag_ctx fc = { .changed = store_flag_job_changed,
				     .failed = store_flag_job_failed,
				     .ctx = job };
	size_t n_changed = 0;

	(void)dead;
	job->ret = store_flags_locked(st, job->mailbox_id, &job->set, &job->ch, &fc, &job->modseq,
				      &n_changed, err);
	/* Not an error of the batch: this change alone is undone. */
	if (job->ret == STORE_KEYWORDS_FULL)
		return 0;
	if (job->ret < 0)
		return -1;
	return job->ret == 1 && n_changed > 0 ? 1 : 0;
}

int
store_msg_store_flags(struct store *st, int64_t mailbox_id, const struct store_uidset *set,
		      const struct store_flag_change *ch, store_flag_cb *changed,
		      store_uid_cb *failed, void *ctx, uint64_t *modseq_r, struct yj_err *err)
{
	struct store_flag_job *job = store_flag_job_new(mailbox_id, set, ch);
	/* Flags are rewritten often and cost little to lose in a power
	 * failure (as Dovecot's index): their commit does not wait for the
	 * disk, so a STORE answers at memory speed. */
	struct store_write_op op = { store_flag_job_apply, store_flag_job_release, job, true };
	int kept = store_write_run(st, &op, err);
	int ret;

	*modseq_r = 0;
	if (kept < 0)
		return -1;	/* job is gone */
	if ((ret = job->ret) == 0)
		yj_err_set(err, "mailbox %lld does not exist", (long long)mailbox_id);
	else if (ret == STORE_KEYWORDS_FULL)
		(void)store_keywords_full(err);
	store_uid_list_each(&job->failed, failed, ctx);
	for (size_t i = 0; kept == 1 && changed != NULL && i < job->n_changed; i++)
		changed(ctx, &job->changed[i]);
	if (kept == 1)
		*modseq_r = job->modseq;
	store_flag_job_release(job);
	return ret;
}

int
store_msg_add_flags(struct store *st, int64_t mailbox_id, const uint32_t *uids, size_t n,
		    uint32_t flags, struct yj_err *err)
{
	struct store_flag_change ch = { .op = STORE_FLAGS_ADD, .flags = flags };
	struct store_uidset set;
	uint64_t modseq;
	int ret;

	if (n == 0 || flags == 0)
		return 1;
	store_uidset_from_uids(uids, n, &set);
	ret = store_msg_store_flags(st, mailbox_id, &set, &ch, NULL, NULL, NULL, &modseq, err);
	free((void *)set.ranges);
	return ret;
}

/* ---- expunge ---- */

struct store_expunge_ctx {
	store_uid_cb *cb;
	void *ctx;
};

static void
store_uid_read(struct store_q *stmt, void *out)
{
	*(uint32_t *)out = (uint32_t)store_col_i64(stmt, 0);
}

static void
store_expunged(void *ctx, const void *row)
{
	const struct store_expunge_ctx *ec = ctx;

	if (ec->cb != NULL)
		ec->cb(ec->ctx, *(const uint32_t *)row);
}

int
store_expunge_rows(struct store *st, int64_t mailbox_id, const struct store_uidset *set,
		   uint32_t need_flags, uint64_t modseq, store_uid_cb *cb, void *ctx,
		   size_t *removed_r, struct yj_err *err)
{
	static const char sql_record[] =
		"INSERT INTO vanished (mailbox_id, uid, modseq, created)"
		" SELECT mailbox_id, uid, ?5, ?6 FROM messages"
		" WHERE mailbox_id = ?1 AND uid BETWEEN ?2 AND ?3 AND (flags & ?4) = ?4";
	static const char sql_delete[] =
		"DELETE FROM messages"
		" WHERE mailbox_id = ?1 AND uid BETWEEN ?2 AND ?3 AND (flags & ?4) = ?4"
		" RETURNING uid";
	struct store_expunge_ctx ec = { .cb = cb, .ctx = ctx };
	struct store_q *stmt = store_stmt(st, sql_record, err);
	uint32_t uid;

	if (stmt == NULL)
		return -1;
	store_bind_i64(stmt, 4, need_flags);
	store_bind_i64(stmt, 5, (int64_t)modseq);
	store_bind_i64(stmt, 6, (int64_t)time(NULL));
	if (store_each_range(st, stmt, mailbox_id, set, "expunge record", NULL, NULL, NULL, NULL,
			     NULL, err) < 0 ||
	    (stmt = store_stmt(st, sql_delete, err)) == NULL)
		return -1;
	store_bind_i64(stmt, 4, need_flags);
	return store_each_range(st, stmt, mailbox_id, set, "expunge", store_uid_read, &uid,
				store_expunged, &ec, removed_r, err);
}

/* An expunge on its way through the writer. */
struct store_expunge_job {
	int64_t mailbox_id;
	struct store_uidset set;	/* ranges its own */
	uint32_t need_flags;
	int ret;			/* 1, 0 no such mailbox */
	uint64_t modseq;
	struct store_uid_list removed;
};

static void
store_expunge_job_release(void *arg)
{
	struct store_expunge_job *job = arg;

	free((void *)job->set.ranges);
	free(job->removed.uids);
	free(job);
}

/* In the writer's transaction; the files of the blobs it frees are
 * unlinked once the COMMIT is on disk. */
static int
store_expunge_job_apply(struct store *st, void *arg, struct store_idlist *dead,
			struct yj_err *err)
{
	struct store_expunge_job *job = arg;
	size_t removed = 0;

	job->ret = store_modseq_next(st, job->mailbox_id, STORE_CHANGE_EXPUNGE, &job->modseq, err);
	if (job->ret < 0)
		return -1;
	if (job->ret == 0)
		return 0;
	if (store_expunge_rows(st, job->mailbox_id, &job->set, job->need_flags, job->modseq,
			       store_uid_list_add, &job->removed, &removed, err) < 0)
		return -1;
	if (removed == 0)
		return 0;
	return store_blob_reap(st, dead, err) < 0 ? -1 : 1;
}

int
store_msg_expunge_set(struct store *st, int64_t mailbox_id, const struct store_uidset *set,
		      bool only_deleted, store_uid_cb *cb, void *ctx, uint64_t *modseq_r,
		      struct yj_err *err)
{
	struct store_expunge_job *job = calloc(1, sizeof(*job));
	struct store_write_op op = { store_expunge_job_apply, store_expunge_job_release, job,
				     false };
	int kept, ret;

	*modseq_r = 0;
	if (job == NULL)
		log_fatal("out of memory");
	job->mailbox_id = mailbox_id;
	job->set.ranges = store_ranges_copy(set);
	job->set.n = set->n;
	job->need_flags = only_deleted ? STORE_FLAG_DELETED : 0;
	if ((kept = store_write_run(st, &op, err)) < 0)
		return -1;	/* job is gone */
	if ((ret = job->ret) == 0)
		yj_err_set(err, "mailbox %lld does not exist", (long long)mailbox_id);
	if (kept == 1) {
		store_uid_list_each(&job->removed, cb, ctx);
		*modseq_r = job->modseq;
	}
	store_expunge_job_release(job);
	return ret;
}

int
store_msg_expunge(struct store *st, int64_t mailbox_id, const uint32_t *uids, size_t n,
		  struct yj_err *err)
{
	struct store_uidset set;
	uint64_t modseq;
	int ret;

	if (n == 0)
		return 1;
	store_uidset_from_uids(uids, n, &set);
	ret = store_msg_expunge_set(st, mailbox_id, &set, false, NULL, NULL, &modseq, err);
	free((void *)set.ranges);
	return ret;
}

/* ---- expunge records ---- */

int
store_vanished_since(struct store *st, int64_t mailbox_id, uint64_t modseq, store_uid_cb *cb,
		     void *ctx, struct yj_err *err)
{
	static const char sql[] =
		"SELECT uid FROM vanished WHERE mailbox_id = ?1 AND modseq > ?2 ORDER BY uid";
	struct store_q *stmt = store_stmt(st, sql, err);
	int ret;

	if (stmt == NULL)
		return -1;
	store_bind_i64(stmt, 1, mailbox_id);
	store_bind_i64(stmt, 2, (int64_t)modseq);
	while ((ret = store_row(st, stmt, "vanished", err)) == 1)
		cb(ctx, (uint32_t)store_col_i64(stmt, 0));
	return ret < 0 ? -1 : 1;
}

int
store_vanished_compact(struct store *st, int64_t older_than, struct yj_err *err)
{
	/* The floor first: it must cover every record the DELETE drops. */
	static const char sql_floor[] =
		"UPDATE mailboxes SET vanished_floor = (SELECT CASE WHEN max(v.modseq) >"
		"  mailboxes.vanished_floor THEN max(v.modseq) ELSE mailboxes.vanished_floor END"
		"  FROM vanished v WHERE v.mailbox_id = mailboxes.id AND v.created < ?1)"
		" WHERE id IN (SELECT mailbox_id FROM vanished WHERE created < ?1)";
	static const char sql_delete[] = "DELETE FROM vanished WHERE created < ?1";
	struct store_q *stmt;
	int ret = -1;

	if (store_begin(st, err) < 0)
		return -1;
	if ((stmt = store_stmt(st, sql_floor, err)) != NULL) {
		store_bind_i64(stmt, 1, older_than);
		ret = store_run(st, stmt, "vanished floor", err);
	}
	if (ret == 1 && (stmt = store_stmt(st, sql_delete, err)) != NULL) {
		store_bind_i64(stmt, 1, older_than);
		ret = store_run(st, stmt, "compact vanished", err);
	} else {
		ret = -1;
	}
	if (ret < 0) {
		store_rollback(st);
		return -1;
	}
	return store_commit(st, err);
}
