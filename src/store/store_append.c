/* store_append.c - IMAP's APPEND (with MULTIAPPEND), COPY and MOVE as
 * single transactions that know the UIDs they make.
 *
 * The UIDs of the new messages are taken in one UPDATE of the target
 * mailbox's row (uidnext += n), inside the same transaction as their
 * rows, so what is returned is exactly what was stored, whatever other
 * sessions deliver at the same time. A copy is a new row naming the same
 * blob (the refcount triggers count it); no bytes are written again.
 *
 * Lock order (PostgreSQL, where transactions run side by side): mailbox
 * rows first, lower id first, and the account row (the usage triggers)
 * last, as deliveries do: mailbox, then account.
 */
#include "store/store-private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"

/* The UIDs, MODSEQ and account of new messages in a mailbox. */
struct store_alloc {
	int64_t account_id;
	uint32_t uidvalidity;
	uint32_t first_uid;
	uint64_t modseq;
};

static void
store_alloc_read(struct store_q *stmt, void *out)
{
	struct store_alloc *a = out;
	int64_t first = store_col_i64(stmt, 2);

	a->account_id = store_col_i64(stmt, 0);
	a->uidvalidity = (uint32_t)store_col_i64(stmt, 1);
	/* Checked by the caller against UINT32_MAX with n. */
	a->first_uid = first > 0 && first <= UINT32_MAX ? (uint32_t)first : 0;
	a->modseq = (uint64_t)store_col_i64(stmt, 3);
}

/* Takes n UIDs and one MODSEQ of the mailbox and records the change.
 * 1, 0 no such mailbox, -1 error. */
static int
store_uid_alloc(struct store *st, int64_t mailbox_id, size_t n, struct store_alloc *a,
		struct yj_err *err)
{
	static const char sql[] =
		"UPDATE mailboxes SET uidnext = uidnext + ?2, highestmodseq = highestmodseq + 1"
		" WHERE id = ?1 RETURNING account_id, uidvalidity, uidnext - ?2, highestmodseq";
	struct store_q *stmt = store_stmt(st, sql, err);
	int ret;

	if (stmt == NULL)
		return -1;
	store_bind_i64(stmt, 1, mailbox_id);
	store_bind_i64(stmt, 2, (int64_t)n);
	ret = store_row(st, stmt, "allocate uids", err);
	if (ret <= 0)
		return ret;
	store_alloc_read(stmt, a);
	/* RETURNING: the update is finished only when the statement is. */
	if (store_run(st, stmt, "allocate uids", err) < 0)
		return -1;
	/* UIDs are 32 bits in IMAP; a mailbox that ran out needs a new
	 * UIDVALIDITY, which is not done here. */
	if (a->first_uid == 0 || (uint64_t)a->first_uid + n - 1 > UINT32_MAX)
		return yj_err_set(err, "mailbox has run out of UIDs");
	return store_change_record(st, a->account_id, mailbox_id, a->modseq, STORE_CHANGE_APPEND,
				   err);
}

/* ---- copy and move ---- */

/* A source message, as the copy needs it. */
struct store_copy_src {
	int64_t id;
	uint32_t uid;
	uint64_t keywords;
	uint64_t size;
};

struct store_copy_list {
	struct store_copy_src *v;
	size_t n, cap;
	struct store_copy_src row;
};

static void
store_copy_src_read(struct store_q *stmt, void *out)
{
	struct store_copy_src *m = out;

	m->id = store_col_i64(stmt, 0);
	m->uid = (uint32_t)store_col_i64(stmt, 1);
	m->keywords = (uint64_t)store_col_i64(stmt, 2);
	m->size = (uint64_t)store_col_i64(stmt, 3);
}

static void
store_copy_src_add(void *ctx, const void *row)
{
	struct store_copy_list *l = ctx;

	if (l->n == l->cap) {
		l->cap = l->cap == 0 ? 64 : l->cap * 2;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		if (l->v == NULL)
			log_fatal("out of memory");
	}
	l->v[l->n++] = *(const struct store_copy_src *)row;
}

static int
store_copy_src_cmp(const void *a, const void *b)
{
	uint32_t x = ((const struct store_copy_src *)a)->uid;
	uint32_t y = ((const struct store_copy_src *)b)->uid;

	return x < y ? -1 : x > y;
}

/* The source messages of set, in UID order, each once (ranges may
 * overlap and come in any order). */
static int
store_copy_sources(struct store *st, int64_t mailbox_id, const struct store_uidset *set,
		   struct store_copy_list *l, struct yj_err *err)
{
	static const char sql[] =
		"SELECT id, uid, keywords, size FROM messages"
		" WHERE mailbox_id = ?1 AND uid BETWEEN ?2 AND ?3";
	struct store_q *stmt = store_stmt(st, sql, err);
	size_t k = 0;

	if (stmt == NULL ||
	    store_each_range(st, stmt, mailbox_id, set, "copy: list", store_copy_src_read,
			     &l->row, store_copy_src_add, l, NULL, err) < 0)
		return -1;
	if (l->n > 1)
		qsort(l->v, l->n, sizeof(*l->v), store_copy_src_cmp);
	for (size_t i = 0; i < l->n; i++) {
		if (k == 0 || l->v[k - 1].uid != l->v[i].uid)
			l->v[k++] = l->v[i];
	}
	l->n = k;
	return 1;
}

struct store_kw_names {
	char names[STORE_KEYWORDS_MAX + 1][STORE_KEYWORD_MAX + 1];
	uint64_t known;			/* bits that have a name */
};

static void
store_kw_name_add(void *ctx, unsigned bit, const char *name)
{
	struct store_kw_names *k = ctx;

	if (bit > STORE_KEYWORDS_MAX)
		return;
	snprintf(k->names[bit], sizeof(k->names[bit]), "%s", name);
	k->known |= UINT64_C(1) << bit;
}

/* For each keyword bit of the source used by the copies, the target's
 * bit of the same name (made there if new): map[bit] is a mask, 0 if
 * the bit has no name. */
static int
store_copy_keyword_map(struct store *st, int64_t from, int64_t to,
		       const struct store_copy_list *l, uint64_t map[64], struct yj_err *err)
{
	struct store_kw_names *k;
	uint64_t used = 0;
	int ret = 1;

	memset(map, 0, 64 * sizeof(map[0]));
	for (size_t i = 0; i < l->n; i++)
		used |= l->v[i].keywords;
	if (used == 0)
		return 1;
	if ((k = calloc(1, sizeof(*k))) == NULL)
		log_fatal("out of memory");
	if (store_keyword_list(st, from, store_kw_name_add, k, err) < 0) {
		free(k);
		return -1;
	}
	for (unsigned bit = 0; bit < 64 && ret == 1; bit++) {
		const char *name = k->names[bit];
		struct store_flag_change ch = { .op = STORE_FLAGS_ADD, .keywords = &name,
						.n_keywords = 1 };

		if (!(used & k->known & (UINT64_C(1) << bit)))
			continue;
		ret = store_keyword_bits(st, to, &ch, &map[bit], err);
	}
	free(k);
	return ret;
}

static uint64_t
store_keywords_mapped(uint64_t bits, const uint64_t map[64])
{
	uint64_t out = 0;

	for (unsigned bit = 0; bit < 64; bit++)
		if (bits & (UINT64_C(1) << bit))
			out |= map[bit];
	return out;
}

/* One copy row: the source row's columns with the target's mailbox,
 * UID, MODSEQ and keyword bits. A column added to `messages` that
 * belongs to the message (not to its place) must be copied here too. 1, or 0 if the source row went away
 * meanwhile (another node's expunge; its UID is then left unused). */
static int
store_copy_row(struct store *st, int64_t to, uint32_t uid, uint64_t modseq,
	       const struct store_copy_src *m, uint64_t keywords, struct yj_err *err)
{
	static const char sql[] =
		"INSERT INTO messages (mailbox_id, uid, modseq, flags, internal_date, size,"
		" blob_id, prefix, keywords, thread_id, internal_zone)"
		" SELECT ?1, ?2, ?3, flags, internal_date, size, blob_id, prefix, ?4, thread_id,"
		" internal_zone"
		" FROM messages WHERE id = ?5";
	struct store_q *stmt = store_stmt(st, sql, err);

	if (stmt == NULL)
		return -1;
	store_bind_i64(stmt, 1, to);
	store_bind_i64(stmt, 2, uid);
	store_bind_i64(stmt, 3, (int64_t)modseq);
	store_bind_i64(stmt, 4, (int64_t)keywords);
	store_bind_i64(stmt, 5, m->id);
	if (store_run(st, stmt, "copy message", err) < 0)
		return -1;
	return store_changes(st) > 0 ? 1 : 0;
}

/* Inserts the copies and fills res's map. */
static int
store_copy_rows(struct store *st, int64_t from, int64_t to, const struct store_copy_list *l,
		const struct store_alloc *a, struct store_copy_result *res, struct yj_err *err)
{
	uint64_t map[64];
	int ret;

	if ((ret = store_copy_keyword_map(st, from, to, l, map, err)) < 0)
		return ret;
	res->map = malloc(l->n * sizeof(*res->map));
	if (res->map == NULL)
		log_fatal("out of memory");
	for (size_t i = 0; i < l->n; i++) {
		uint32_t uid = a->first_uid + (uint32_t)i;

		ret = store_copy_row(st, to, uid, a->modseq, &l->v[i],
				     store_keywords_mapped(l->v[i].keywords, map), err);
		if (ret < 0)
			return -1;
		if (ret == 1)
			res->map[res->n++] = (struct store_uid_map){ l->v[i].uid, uid };
	}
	return 1;
}

/* The move's expunge of the copied source messages. */
static int
store_move_expunge(struct store *st, int64_t from, uint64_t modseq,
		   const struct store_copy_result *res, struct yj_err *err)
{
	uint32_t *uids = malloc((res->n > 0 ? res->n : 1) * sizeof(*uids));
	struct store_uidset set;
	size_t removed = 0;
	int ret;

	if (uids == NULL)
		log_fatal("out of memory");
	for (size_t i = 0; i < res->n; i++)
		uids[i] = res->map[i].src;
	store_uidset_from_uids(uids, res->n, &set);
	free(uids);
	ret = store_expunge_rows(st, from, &set, 0, modseq, NULL, NULL, &removed, err);
	free((void *)set.ranges);
	return ret;
}

struct store_owner {
	int64_t account_id;
	uint32_t uidvalidity;
};

static void
store_owner_read(struct store_q *stmt, void *out)
{
	struct store_owner *o = out;

	o->account_id = store_col_i64(stmt, 0);
	o->uidvalidity = (uint32_t)store_col_i64(stmt, 1);
}

/* A mailbox's account and UIDVALIDITY: 1, 0 no such mailbox, -1. */
static int
store_mailbox_owner(struct store *st, int64_t mailbox_id, int64_t *account_r,
		    uint32_t *uidvalidity_r, struct yj_err *err)
{
	static const char sql[] = "SELECT account_id, uidvalidity FROM mailboxes WHERE id = ?1";
	struct store_q *stmt = store_stmt(st, sql, err);
	struct store_owner o;
	int ret;

	if (stmt == NULL)
		return -1;
	store_bind_i64(stmt, 1, mailbox_id);
	ret = store_one(st, stmt, "mailbox", store_owner_read, &o, err);
	if (ret == 1) {
		*account_r = o.account_id;
		*uidvalidity_r = o.uidvalidity;
	}
	return ret;
}

/* A copy or move between two accounts takes quota; within one, only a
 * copy does. */
static int
store_copy_quota(struct store *st, int64_t from_acct, int64_t to_acct, bool move,
		 const struct store_copy_list *l, struct yj_err *err)
{
	uint64_t bytes = 0;

	if (move && from_acct == to_acct)
		return 1;
	for (size_t i = 0; i < l->n; i++)
		bytes += l->v[i].size;
	return store_quota_room(st, to_acct, bytes, err);
}

/* The move's source MODSEQ is taken in mailbox id order with the
 * target's UIDs (see the lock order above). */
int
store_msg_copy_locked(struct store *st, int64_t from, int64_t to, const struct store_uidset *set,
		      bool move, struct store_copy_result *res, struct yj_err *err)
{
	struct store_copy_list l = { 0 };
	int64_t from_acct = 0, to_acct = 0;
	uint32_t from_validity;
	struct store_alloc a;
	uint64_t from_modseq = 0;
	int ret;

	ret = store_mailbox_owner(st, from, &from_acct, &from_validity, err);
	if (ret == 1)
		ret = store_mailbox_owner(st, to, &to_acct, &res->uidvalidity, err);
	if (ret == 1 && move && from < to)
		ret = store_modseq_next(st, from, STORE_CHANGE_EXPUNGE, &from_modseq, err);
	if (ret == 1)
		ret = store_copy_sources(st, from, set, &l, err);
	if (ret == 1 && l.n > 0)
		ret = store_copy_quota(st, from_acct, to_acct, move, &l, err);
	if (ret == 1 && l.n > 0)
		ret = store_uid_alloc(st, to, l.n, &a, err);
	if (ret == 1 && l.n > 0 && move && from >= to)
		ret = store_modseq_next(st, from, STORE_CHANGE_EXPUNGE, &from_modseq, err);
	if (ret == 1 && l.n > 0)
		ret = store_copy_rows(st, from, to, &l, &a, res, err);
	if (ret == 1 && res->n > 0 && move)
		ret = store_move_expunge(st, from, from_modseq, res, err);
	free(l.v);
	return ret;
}

int
store_msg_copy(struct store *st, int64_t from_mailbox, int64_t to_mailbox,
	       const struct store_uidset *set, bool move, struct store_copy_result *res,
	       struct yj_err *err)
{
	int ret;

	*res = (struct store_copy_result){ 0 };
	if (store_begin(st, err) < 0)
		return -1;
	ret = store_msg_copy_locked(st, from_mailbox, to_mailbox, set, move, res, err);
	if (ret == 1 && res->n == 0) {
		/* Nothing to do (or every row went meanwhile): the MODSEQs
		 * and UIDs taken are given back. */
		store_rollback(st);
		free(res->map);
		res->map = NULL;
		return 1;
	}
	if (ret == 1 && store_commit(st, err) == 1)
		return 1;
	if (ret == 1)
		ret = -1;
	else
		store_rollback(st);
	free(res->map);
	*res = (struct store_copy_result){ 0 };
	if (ret == 0)
		yj_err_set(err, "no such mailbox");
	return ret;
}

/* ---- append ---- */

/* A blob file written for the append, not yet owned by the store. */
struct store_staged {
	char id[STORE_BLOB_ID_MAX];
	char *path;			/* NULL once the store owns the file */
	uint64_t size;
};

/* Writes one message into a new blob file and fsyncs it. */
static int
store_append_write(struct store *st, struct store_blob *b, const struct store_append_msg *m,
		   struct store_staged *staged, struct yj_err *err)
{
	if (store_blob_create(st, b, err) < 0)
		return -1;
	if (store_blob_write(b, m->data, m->len, err) < 0 || store_blob_sync(st, b, err) < 0) {
		store_blob_abort(b);
		return -1;
	}
	snprintf(staged->id, sizeof(staged->id), "%s", b->id);
	staged->size = b->size;
	staged->path = b->path;		/* taken over */
	b->path = NULL;
	return 1;
}

/* Makes every message's blob durable: each file, then each distinct
 * hour directory once, and blobs/ itself (an hour directory may be new). */
static int
store_append_stage(struct store *st, const struct store_append_msg *msgs, size_t n,
		   struct store_staged *staged, struct yj_err *err)
{
	char path[STORE_PATH_MAX], last[STORE_HOUR_LEN + 1] = "";
	struct store_blob *b = malloc(sizeof(*b));

	if (b == NULL)
		log_fatal("out of memory");
	for (size_t i = 0; i < n; i++) {
		if (store_append_write(st, b, &msgs[i], &staged[i], err) < 0) {
			free(b);
			return -1;
		}
	}
	free(b);
	/* Contents in the database are made durable by its COMMIT. */
	if (st->drv->blobs_in_db)
		return 1;
	for (size_t i = 0; i < n; i++) {
		if (strncmp(staged[i].id, last, STORE_HOUR_LEN) == 0)
			continue;
		snprintf(last, sizeof(last), "%.*s", STORE_HOUR_LEN, staged[i].id);
		snprintf(path, sizeof(path), "%s/%s", st->blob_dir, last);
		if (util_fsync_dir(path, err) < 0)
			return -1;
	}
	return util_fsync_dir(st->blob_dir, err);
}

static int
store_append_row(struct store *st, int64_t account_id, int64_t mailbox_id, uint32_t uid,
		 uint64_t modseq, const struct store_append_msg *m, const struct store_staged *blob,
		 int64_t now, struct yj_err *err)
{
	static const char sql[] =
		"INSERT INTO messages (mailbox_id, uid, modseq, flags, internal_date, size,"
		" blob_id, prefix, keywords, thread_id, internal_zone)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
	struct store_flag_change ch = { .op = STORE_FLAGS_ADD, .keywords = m->keywords,
					.n_keywords = m->n_keywords };
	uint64_t kw = 0;
	int64_t thread = 0;
	struct store_q *stmt;
	int ret;

	if ((ret = store_keyword_bits(st, mailbox_id, &ch, &kw, err)) < 0)
		return ret;
	if (store_thread_assign(st, account_id, m->thread_keys, m->thread_keys_len, &thread,
				err) < 0 ||
	    store_blob_insert_row(st, blob->id, blob->size, now, err) < 0 ||
	    (m->index != NULL && store_index_insert(st, blob->id, m->index, err) < 0) ||
	    (stmt = store_stmt(st, sql, err)) == NULL)
		return -1;
	store_bind_i64(stmt, 1, mailbox_id);
	store_bind_i64(stmt, 2, uid);
	store_bind_i64(stmt, 3, (int64_t)modseq);
	store_bind_i64(stmt, 4, m->flags & STORE_FLAGS_ALL);
	store_bind_i64(stmt, 5, m->internal_date != STORE_DATE_NOW ? m->internal_date : now);
	store_bind_i64(stmt, 6, (int64_t)blob->size);
	store_bind_text(stmt, 7, blob->id);
	store_bind_blob(stmt, 8, "", 0);
	store_bind_i64(stmt, 9, (int64_t)kw);
	store_bind_i64(stmt, 10, thread);
	store_bind_i64(stmt, 11, store_zone_valid(m->internal_zone));
	return store_run(st, stmt, "append message", err);
}

static int
store_append_locked(struct store *st, int64_t mailbox_id, const struct store_append_msg *msgs,
		    const struct store_staged *staged, size_t n, uint32_t *uids_r,
		    uint32_t *uidvalidity_r, struct yj_err *err)
{
	int64_t now = (int64_t)time(NULL), account_id = 0;
	uint64_t bytes = 0;
	struct store_alloc a;
	int ret;

	if ((ret = store_mailbox_owner(st, mailbox_id, &account_id, uidvalidity_r, err)) != 1)
		return ret;
	for (size_t i = 0; i < n; i++)
		bytes += staged[i].size;
	if ((ret = store_quota_room(st, account_id, bytes, err)) != 1)
		return ret;
	if ((ret = store_uid_alloc(st, mailbox_id, n, &a, err)) != 1)
		return ret;
	for (size_t i = 0; i < n; i++) {
		uids_r[i] = a.first_uid + (uint32_t)i;
		ret = store_append_row(st, account_id, mailbox_id, uids_r[i], a.modseq, &msgs[i],
				       &staged[i], now, err);
		if (ret < 0)
			return ret;
	}
	*uidvalidity_r = a.uidvalidity;
	return 1;
}

/* Once the outcome is known: the files of committed rows stay (unless
 * contents are rows), the others go; if the COMMIT may or may not have
 * reached the disk they stay too, and store_gc removes them if no row
 * names them. */
static void
store_append_release(struct store *st, struct store_staged *staged, size_t n, bool keep,
		     bool ambiguous)
{
	for (size_t i = 0; i < n && staged[i].path != NULL; i++) {
		if (ambiguous && !st->drv->blobs_in_db)
			log_warn("store: blob %s kept: its append may or may not have committed",
				 staged[i].id);
		else if (!keep || st->drv->blobs_in_db)
			(void)unlink(staged[i].path);
		free(staged[i].path);
		staged[i].path = NULL;
	}
}

int
store_msg_append(struct store *st, int64_t mailbox_id, const struct store_append_msg *msgs,
		 size_t n, uint32_t *uids_r, uint32_t *uidvalidity_r, struct yj_err *err)
{
	struct store_staged *staged;
	bool ambiguous = false;
	int ret;

	if (n == 0)
		return yj_err_set(err, "append of no message");
	if ((staged = calloc(n, sizeof(*staged))) == NULL)
		log_fatal("out of memory");
	ret = store_append_stage(st, msgs, n, staged, err);
	if (ret == 1 && (ret = store_begin(st, err)) == 1) {
		ret = store_append_locked(st, mailbox_id, msgs, staged, n, uids_r, uidvalidity_r,
					  err);
		if (ret == 1)
			ret = store_commit_ex(st, &ambiguous, err) < 0 ? -1 : 1;
		else
			store_rollback(st);
	}
	if (ret == 0)
		yj_err_set(err, "no such mailbox");
	store_append_release(st, staged, n, ret == 1, ambiguous);
	free(staged);
	return ret;
}
