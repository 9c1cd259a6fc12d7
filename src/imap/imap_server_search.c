/* imap_server_search.c - SEARCH and UID SEARCH (RFC 9051 6.4.4) with
 * every key of RFC 3501 and RFC 9051, ESEARCH results (RFC 4731), the
 * saved result of SEARCHRES (RFC 5182), and the message matching that
 * SORT and THREAD share.
 *
 * Text keys compare case-insensitively (mime_fold.h) in UTF-8: header
 * keys against the field values with encoded words decoded, BODY and
 * TEXT against the text parts decoded from their transfer encoding and
 * charset, at most IMAP_SEARCH_TEXT_MAX bytes of them per message.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/block.h"
#include "base/log.h"
#include "base/util.h"
#include "imap/imap_session.h"
#include "mime/mime.h"
#include "mime/mime_addr.h"
#include "mime/mime_date.h"
#include "mime/mime_fold.h"
#include "mime/mime_header.h"
#include "mime/mime_text.h"

/* Decoded text of one message that BODY and TEXT look at: as much as
 * the full-text index holds of it. */
#define IMAP_SEARCH_TEXT_MAX STORE_TEXT_MAX

/* The messages the full-text index leaves for one BODY or TEXT key:
 * the others cannot match it (store_text_candidates). */
struct search_cand {
	const struct imap_search_key *key;
	uint32_t *uids;			/* ascending */
	size_t n;
};

/* What the index said for the keys of one search. */
struct search_index {
	struct search_cand cand[IMAP_SEARCH_KEYS_MAX];
	size_t n;
};

/* Messages read for the headers of one search at a time: the search
 * goes through the view in UID order, and a batch read with one
 * statement costs far less than two statements per message. */
#define SEARCH_HEADS_BATCH 256
#define SEARCH_HEADS_BYTES (1024 * 1024)

/* The batch the search is in (loaded at the first header key). */
struct search_heads {
	struct store_msg_heads batch;
	size_t pos;			/* the first entry not passed yet */
	bool failed;			/* then each message is read singly */
};

struct search_msg {
	struct imap_session *s;
	const struct imap_msg *m;
	uint32_t seq;
	const struct search_index *index;
	struct search_heads *heads;
	bool meta_loaded, meta_failed;	/* sm without the message */
	bool loaded, failed;		/* body and mm */
	bool head_loaded, head_failed;	/* head and hmm: the header only */
	bool text_done;			/* folded text parts */
	struct store_msg sm;
	struct buf body;
	struct mime_msg mm;
	struct buf head;
	struct mime_msg hmm;
	struct buf text;
};

static bool
search_meta(struct search_msg *sm)
{
	if (!sm->meta_loaded) {
		sm->meta_loaded = true;
		sm->meta_failed = store_msg_get(sm->s->store, sm->s->mb.id, sm->m->uid, &sm->sm) != 1;
	}
	return !sm->meta_failed;
}

static bool
search_load(struct search_msg *sm)
{
	if (!sm->loaded) {
		sm->loaded = true;
		if (imap_msg_load(sm->s, sm->m->uid, &sm->body, &sm->sm) < 0) {
			sm->failed = true;
		} else {
			mime_parse(&sm->mm, sm->body.data ? sm->body.data : "", sm->body.len);
			sm->meta_loaded = true;
		}
	}
	return !sm->failed;
}

/* Loads the batch that starts at uid. */
static void
heads_load(struct search_msg *sm, uint32_t uid)
{
	struct search_heads *hs = sm->heads;
	struct yj_err err;

	store_msg_heads_free(&hs->batch);
	hs->pos = 0;
	if (store_msg_heads(sm->s->store, sm->s->mb.id, uid, SEARCH_HEADS_BATCH,
			    SEARCH_HEADS_BYTES, &hs->batch, &err) < 0) {
		log_error("imap: session=%s search headers: %s", sm->s->ctx->id, err.msg);
		hs->failed = true;
	}
}

/* The message's header from the search's batch, into sm->head. 1, or 0
 * if the batch does not have it (read it singly). */
static int
heads_take(struct search_msg *sm)
{
	struct search_heads *hs = sm->heads;
	const struct store_msg_head *h;
	uint32_t uid = sm->m->uid;

	if (hs == NULL || hs->failed)
		return 0;
	while (hs->pos < hs->batch.n && hs->batch.v[hs->pos].uid < uid)
		hs->pos++;
	if (hs->pos == hs->batch.n)
		heads_load(sm, uid);
	if (hs->failed || hs->pos == hs->batch.n)
		return 0;
	h = &hs->batch.v[hs->pos];
	if (h->uid != uid || !h->stored)
		return 0;
	buf_init(&sm->head, IMAP_HEADER_LOAD_MAX + sizeof(sm->sm.prefix));
	if (buf_append(&sm->head, h->text, h->len) < 0) {
		buf_free(&sm->head);
		return 0;
	}
	return 1;
}

/* The header as IMAP serves it, prefix + the blob's header lines: from
 * the stored summary where it has them, else read from the message.
 * The row is search_meta's. */
static int
head_read(struct search_msg *sm)
{
	struct store_summary sum;
	struct yj_err err;
	int ret = -1;

	if (store_summary_get(sm->s->store, sm->sm.blob_id, &sum, &err) == 1) {
		if (sum.len[STORE_SUMMARY_HEADER] > 0 &&
		    (ret = imap_header_from_summary(&sm->sm, &sum, &sm->head)) < 0)
			buf_free(&sm->head);
		store_summary_free(&sum);
	}
	return ret > 0 ? 1 : imap_msg_read_header(sm->s, &sm->sm, &sm->head);
}

/* The parsed header of the message, for the header keys: the whole
 * message if it is loaded already, else only its header. */
static const struct mime_msg *
search_head(struct search_msg *sm)
{
	if (sm->loaded)
		return sm->failed ? NULL : &sm->mm;
	if (!sm->head_loaded) {
		sm->head_loaded = true;
		sm->head_failed = heads_take(sm) == 0 && (!search_meta(sm) || head_read(sm) < 0);
		if (!sm->head_failed)
			mime_parse(&sm->hmm, sm->head.data ? sm->head.data : "", sm->head.len);
	}
	return sm->head_failed ? NULL : &sm->hmm;
}

/* A folded copy of the needle. */
static void
fold_needle(const char *str, size_t len, struct buf *out)
{
	buf_init(out, len * 4 + 16);
	(void)mime_fold_utf8(str, len, out);
}

/* Does one of the addresses of an address field hold the folded
 * needle, written as the envelope has it: display name, or
 * local-part@domain with comments, routes and quoting gone (RFC 3501
 * 6.4.4 searches "the envelope structure's FROM field";
 * "<user (note)@ (note) example.org>" holds "user@example.org"). */
static bool
addresses_have(const char *data, const struct mime_field *f, const struct buf *needle)
{
	struct mime_addr_list l = { NULL, 0 };
	struct buf text, folded;
	bool found = false;

	mime_addr_parse(data + f->value_off, f->value_len, &l);
	buf_init(&text, 2 * MIME_ADDR_PART_MAX + 2);
	buf_init(&folded, 4 * (2 * MIME_ADDR_PART_MAX + 2));
	for (size_t i = 0; i < l.n && !found; i++) {
		const struct mime_addr *a = &l.v[i];

		if (a->kind != MIME_ADDR_MAILBOX)
			continue;
		buf_reset(&text);
		buf_reset(&folded);
		if (buf_append(&text, a->mailbox.data ? a->mailbox.data : "", a->mailbox.len) < 0 ||
		    buf_append_str(&text, "@") < 0 ||
		    buf_append(&text, a->domain.data ? a->domain.data : "", a->domain.len) < 0 ||
		    mime_fold_utf8(text.data, text.len, &folded) < 0)
			continue;
		found = mime_fold_contains(folded.data, folded.len, needle->data ? needle->data : "",
					   needle->len);
	}
	buf_free(&folded);
	buf_free(&text);
	mime_addr_list_free(&l);
	return found;
}

/* Does a field called name (any of them) hold str? An empty str
 * matches every message that has the field (RFC 9051 HEADER). The
 * address keys (addr) look at the addresses as well as the text. */
static bool
header_has(struct search_msg *sm, const char *name, const char *str, size_t len, bool addr)
{
	const struct mime_msg *mm = search_head(sm);
	const struct mime_part *p0;
	struct mime_hdr_iter it;
	struct mime_field f;
	struct buf needle, value;
	bool found = false;

	if (mm == NULL)
		return false;
	p0 = &mm->parts[0];
	fold_needle(str, len, &needle);
	buf_init(&value, 4 * MIME_FIELD_VALUE_MAX);
	mime_hdr_iter_init(&it, mm->data, p0->hdr_off, p0->hdr_off + p0->hdr_len);
	while (!found && mime_hdr_next(&it, &f)) {
		if (!mime_field_is(mm->data, &f, name))
			continue;
		buf_reset(&value);
		mime_text_field(mm->data, &f, &value);
		found = mime_fold_contains(value.data ? value.data : "", value.len,
					   needle.data ? needle.data : "", needle.len) ||
			(addr && addresses_have(mm->data, &f, &needle));
	}
	buf_free(&value);
	buf_free(&needle);
	return found;
}

/* The folded text of all text parts, up to IMAP_SEARCH_TEXT_MAX. */
static const struct buf *
body_text(struct search_msg *sm)
{
	if (!sm->text_done) {
		sm->text_done = true;
		buf_init(&sm->text, IMAP_SEARCH_TEXT_MAX);
		mime_text_body(&sm->mm, &sm->text);
	}
	return &sm->text;
}

/* Does a line of the header (each field decoded and folded) hold the
 * needle? */
static bool
header_text_has(const struct mime_msg *mm, const struct buf *needle)
{
	const struct mime_part *p0 = &mm->parts[0];
	struct mime_hdr_iter it;
	struct mime_field f;
	struct buf line;
	bool found = false;

	buf_init(&line, MIME_TEXT_LINE_MAX);
	mime_hdr_iter_init(&it, mm->data, p0->hdr_off, p0->hdr_off + p0->hdr_len);
	while (!found && mime_hdr_next(&it, &f)) {
		buf_reset(&line);
		if (mime_text_field_line(mm->data, &f, &line) < 0)
			continue;
		found = mime_fold_contains(line.data, line.len, needle->data ? needle->data : "",
					   needle->len);
	}
	buf_free(&line);
	return found;
}

static int
uid_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Has the index ruled the message out for key k? */
static bool
ruled_out(const struct search_msg *sm, const struct imap_search_key *k)
{
	for (size_t i = 0; sm->index != NULL && i < sm->index->n; i++) {
		const struct search_cand *c = &sm->index->cand[i];

		if (c->key == k)
			return c->n == 0 || bsearch(&sm->m->uid, c->uids, c->n, sizeof(*c->uids),
						    uid_cmp) == NULL;
	}
	return false;
}

/* TEXT of a message the index ruled out: only its prefix (per
 * recipient, not in the index, which is per blob) can still hold it. */
static bool
prefix_has(struct search_msg *sm, const struct buf *needle)
{
	struct mime_msg pm;
	bool found;

	if (!search_meta(sm) || sm->sm.prefix_len == 0)
		return false;
	mime_parse(&pm, sm->sm.prefix, sm->sm.prefix_len);
	found = header_text_has(&pm, needle);
	mime_free(&pm);
	return found;
}

static bool
text_has(struct search_msg *sm, const struct imap_search_key *k, bool headers)
{
	const struct mime_msg *head;
	struct buf needle;
	const struct buf *text;
	bool found;

	fold_needle(k->str, k->len, &needle);
	if (ruled_out(sm, k)) {
		found = headers && prefix_has(sm, &needle);
		buf_free(&needle);
		return found;
	}
	found = headers && (head = search_head(sm)) != NULL && header_text_has(head, &needle);
	if (!found && !search_load(sm)) {
		buf_free(&needle);
		return false;
	}
	if (!found) {
		text = body_text(sm);
		found = mime_fold_contains(text->data ? text->data : "", text->len,
					   needle.data ? needle.data : "", needle.len);
	}
	buf_free(&needle);
	return found;
}

/* The day of the internal date as it reads in its own zone (minutes
 * east): RFC 3501 6.4.4 disregards the time and the zone, not the day. */
static int
date_of(int64_t t, int zone, struct imap_date *d)
{
	time_t tt = (time_t)(t + (int64_t)zone * 60);
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL)
		return -1;
	*d = (struct imap_date){ tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday };
	return 1;
}

/* BEFORE/ON/SINCE and their SENT forms: cmp of the day with the key's. */
static bool
date_match(enum imap_search_type type, const struct imap_date *d, const struct imap_date *key)
{
	int cmp = imap_date_cmp(d, key);

	switch (type) {
	case IMAP_SK_BEFORE: case IMAP_SK_SENTBEFORE: return cmp < 0;
	case IMAP_SK_ON: case IMAP_SK_SENTON: return cmp == 0;
	default: return cmp >= 0;
	}
}

/* The Date: field's day as written (RFC 9051: time and zone ignored). */
static bool
sent_date(struct search_msg *sm, struct imap_date *d)
{
	const struct mime_msg *mm = search_head(sm);
	const struct mime_part *p0;
	struct mime_field f;
	struct mime_date md;
	struct buf v;
	bool ok;

	if (mm == NULL)
		return false;
	p0 = &mm->parts[0];
	if (!mime_hdr_find(mm->data, p0->hdr_off, p0->hdr_off + p0->hdr_len, "Date", &f))
		return false;
	buf_init(&v, MIME_FIELD_VALUE_MAX);
	mime_field_unfold(mm->data, &f, &v);
	ok = mime_date_parse(v.data ? v.data : "", v.len, &md) == 1;
	buf_free(&v);
	*d = (struct imap_date){ md.year, md.mon, md.day };
	return ok;
}

static bool key_match(struct search_msg *sm, const struct imap_search_key *k);

static bool
all_match(struct search_msg *sm, const struct imap_search_key *k)
{
	for (; k != NULL; k = k->next)
		if (!key_match(sm, k))
			return false;
	return true;
}

static bool
keyword_has(struct search_msg *sm, const char *name)
{
	for (unsigned bit = 0; bit < 64; bit++)
		if ((sm->m->keywords & (UINT64_C(1) << bit)) && sm->s->keywords[bit] != NULL &&
		    strcasecmp(sm->s->keywords[bit], name) == 0)
			return true;
	return false;
}

static bool
set_match(struct search_msg *sm, const struct imap_seqset *set, bool uid)
{
	struct imap_session *s = sm->s;

	if (set->saved)
		return imap_saved_has(s, sm->m->uid);
	if (uid)
		return imap_seqset_contains(set, sm->m->uid,
					    s->n_msgs ? s->msgs[s->n_msgs - 1].uid : 0);
	return imap_seqset_contains(set, sm->seq, (uint32_t)s->n_msgs);
}

/* Keys on flags; false for the others. */
static bool
flag_match(const struct imap_msg *m, enum imap_search_type type, bool *known)
{
	static const struct { enum imap_search_type set, unset; uint32_t flag; } flags[] = {
		{ IMAP_SK_ANSWERED, IMAP_SK_UNANSWERED, STORE_FLAG_ANSWERED },
		{ IMAP_SK_DELETED, IMAP_SK_UNDELETED, STORE_FLAG_DELETED },
		{ IMAP_SK_DRAFT, IMAP_SK_UNDRAFT, STORE_FLAG_DRAFT },
		{ IMAP_SK_FLAGGED, IMAP_SK_UNFLAGGED, STORE_FLAG_FLAGGED },
		{ IMAP_SK_SEEN, IMAP_SK_UNSEEN, STORE_FLAG_SEEN },
	};

	*known = true;
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		if (type == flags[i].set)
			return (m->flags & flags[i].flag) != 0;
		if (type == flags[i].unset)
			return (m->flags & flags[i].flag) == 0;
	}
	*known = false;
	return false;
}

static bool
key_match(struct search_msg *sm, const struct imap_search_key *k)
{
	const struct imap_msg *m = sm->m;
	struct imap_date d;
	bool known, r = flag_match(m, k->type, &known);

	if (known)
		return r;
	switch (k->type) {
	case IMAP_SK_ALL: return true;
	case IMAP_SK_AND: return all_match(sm, k->child);
	case IMAP_SK_OR: return key_match(sm, k->child) || key_match(sm, k->child->next);
	case IMAP_SK_NOT: return !key_match(sm, k->child);
	case IMAP_SK_SEQSET: return set_match(sm, &k->set, false);
	case IMAP_SK_UID: return set_match(sm, &k->set, true);
	/* NEW is RECENT UNSEEN, OLD is NOT RECENT (RFC 3501 6.4.4). */
	case IMAP_SK_RECENT: return m->recent;
	case IMAP_SK_NEW: return m->recent && !(m->flags & STORE_FLAG_SEEN);
	case IMAP_SK_OLD: return !m->recent;
	case IMAP_SK_KEYWORD: return keyword_has(sm, k->str);
	case IMAP_SK_UNKEYWORD: return !keyword_has(sm, k->str);
	case IMAP_SK_FROM: return header_has(sm, "From", k->str, k->len, true);
	case IMAP_SK_TO: return header_has(sm, "To", k->str, k->len, true);
	case IMAP_SK_CC: return header_has(sm, "Cc", k->str, k->len, true);
	case IMAP_SK_BCC: return header_has(sm, "Bcc", k->str, k->len, true);
	case IMAP_SK_SUBJECT: return header_has(sm, "Subject", k->str, k->len, false);
	case IMAP_SK_HEADER: return header_has(sm, k->str, k->str2, k->len2, false);
	case IMAP_SK_BODY: return text_has(sm, k, false);
	case IMAP_SK_TEXT: return text_has(sm, k, true);
	case IMAP_SK_BEFORE: case IMAP_SK_ON: case IMAP_SK_SINCE:
		return search_meta(sm) && date_of(sm->sm.internal_date, sm->sm.internal_zone, &d) > 0 &&
		       date_match(k->type, &d, &k->date);
	case IMAP_SK_SENTBEFORE: case IMAP_SK_SENTON: case IMAP_SK_SENTSINCE:
		return sent_date(sm, &d) && date_match(k->type, &d, &k->date);
	case IMAP_SK_LARGER: return search_meta(sm) && sm->sm.size > k->number;
	case IMAP_SK_SMALLER: return search_meta(sm) && sm->sm.size < k->number;
	/* RFC 5032 WITHIN: by internal date, against now. */
	case IMAP_SK_OLDER:
		return search_meta(sm) && sm->sm.internal_date <= (int64_t)time(NULL) - (int64_t)k->number;
	case IMAP_SK_YOUNGER:
		return search_meta(sm) && sm->sm.internal_date >= (int64_t)time(NULL) - (int64_t)k->number;
	/* One MODSEQ per message: it also stands for every flag's entry
	 * (RFC 7162 3.1.5 allows it). */
	case IMAP_SK_MODSEQ: return m->modseq >= k->number;
	default: return search_meta(sm) && imap_search_ext(k, &sm->sm) == 1;
	}
}

static void
search_msg_free(struct search_msg *sm)
{
	if (sm->loaded && !sm->failed)
		mime_free(&sm->mm);
	if (sm->head_loaded && !sm->head_failed)
		mime_free(&sm->hmm);
	if (sm->text_done)
		buf_free(&sm->text);
	buf_free(&sm->head);
	buf_free(&sm->body);
}

/* ---- SEARCHRES: the saved result, as UIDs (expunged ones simply no
 * longer match anything in the view) ---- */

void
imap_saved_clear(struct imap_session *s)
{
	free(s->saved_uids);
	s->saved_uids = NULL;
	s->n_saved = 0;
}

bool
imap_saved_has(const struct imap_session *s, uint32_t uid)
{
	return s->n_saved > 0 &&
	       bsearch(&uid, s->saved_uids, s->n_saved, sizeof(uid), uid_cmp) != NULL;
}

/* Saves the UIDs of msgs[idx[0..n)] (in any order). */
static void
saved_set(struct imap_session *s, const size_t *idx, size_t n)
{
	imap_saved_clear(s);
	if (n == 0)
		return;
	if ((s->saved_uids = calloc(n, sizeof(*s->saved_uids))) == NULL)
		log_fatal("out of memory");
	for (size_t i = 0; i < n; i++)
		s->saved_uids[i] = s->msgs[idx[i]].uid;
	qsort(s->saved_uids, n, sizeof(*s->saved_uids), uid_cmp);
	s->n_saved = n;
}

/* RFC 5182 2.4: with MIN and/or MAX but not ALL or COUNT only those
 * are saved. idx is in mailbox order. */
static void
search_save(struct imap_session *s, unsigned ret, const size_t *idx, size_t n)
{
	size_t pick[2], np = 0;

	if ((ret & (IMAP_SEARCH_RET_ALL | IMAP_SEARCH_RET_COUNT)) ||
	    !(ret & (IMAP_SEARCH_RET_MIN | IMAP_SEARCH_RET_MAX)) || n == 0) {
		saved_set(s, idx, n);
		return;
	}
	if (ret & IMAP_SEARCH_RET_MIN)
		pick[np++] = idx[0];
	if ((ret & IMAP_SEARCH_RET_MAX) && (np == 0 || n > 1))
		pick[np++] = idx[n - 1];
	saved_set(s, pick, np);
}

/* ---- running a search ---- */

bool
imap_charset_ok(struct imap_session *s, const char *charset)
{
	if (imap_search_charset_served(charset))
		return true;
	imap_tagged(s, "NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset");
	return false;
}

/* Can the index answer for this needle? It holds folded valid UTF-8
 * and finds substrings of STORE_TEXT_NEEDLE_MIN characters or more. */
static bool
needle_indexable(const struct buf *n)
{
	size_t chars = 0;

	for (size_t i = 0; i < n->len;) {
		unsigned cp;
		size_t k = util_utf8_decode((const unsigned char *)n->data + i, n->len - i, &cp);

		if (k == 0 || cp == 0)
			return false;
		i += k;
		chars++;
	}
	return chars >= STORE_TEXT_NEEDLE_MIN;
}

/* Asks the index which messages may match key k; on any failure k is
 * left to the scan. */
static void
index_ask(struct imap_session *s, const struct imap_search_key *k, struct search_index *ix)
{
	struct search_cand *c = &ix->cand[ix->n];
	struct yj_err err;
	struct buf needle;

	fold_needle(k->str, k->len, &needle);
	if (needle_indexable(&needle)) {
		if (store_text_candidates(s->store, s->mb.id, needle.data, needle.len,
					  k->type == IMAP_SK_TEXT, &c->uids, &c->n, &err) < 0) {
			log_error("imap: session=%s text search: %s", s->ctx->id, err.msg);
		} else {
			c->key = k;
			ix->n++;
		}
	}
	buf_free(&needle);
}

/* Every BODY and TEXT key of the tree, however nested: whether the key
 * counts for or against a message, the index only spares the scan of
 * messages that cannot hold its string. */
static void
index_keys(struct imap_session *s, const struct imap_search_key *k, struct search_index *ix)
{
	for (; k != NULL && ix->n < IMAP_SEARCH_KEYS_MAX; k = k->next) {
		if (k->type == IMAP_SK_BODY || k->type == IMAP_SK_TEXT)
			index_ask(s, k, ix);
		else if (k->child != NULL)
			index_keys(s, k->child, ix);
	}
}

static void
search_index_free(struct search_index *ix)
{
	for (size_t i = 0; i < ix->n; i++)
		free(ix->cand[i].uids);
	free(ix);
}

static bool
key_is_text(enum imap_search_type type)
{
	switch (type) {
	case IMAP_SK_BODY: case IMAP_SK_TEXT: case IMAP_SK_FROM: case IMAP_SK_TO:
	case IMAP_SK_CC: case IMAP_SK_BCC: case IMAP_SK_SUBJECT: case IMAP_SK_HEADER:
		return true;
	default:
		return false;
	}
}

/* The text keys of the tree, however nested (the parser bounds the
 * tree's size and depth). */
static size_t
text_keys_count(const struct imap_search_key *k)
{
	size_t n = 0;

	for (; k != NULL; k = k->next)
		n += key_is_text(k->type) ? 1 : text_keys_count(k->child);
	return n;
}

int64_t
imap_search_deadline(const struct imap_session *s)
{
	return util_now_ms() + s->cfg->imap_search_time_limit;
}

int
imap_search_run(struct imap_session *s, const struct imap_search *search, int64_t deadline,
		size_t **idx_r, size_t *n_r, const char **why_r)
{
	struct search_heads heads = { 0 };
	struct search_index *ix;
	size_t *idx, n = 0, i;

	*idx_r = NULL;
	*n_r = 0;
	if (text_keys_count(search->keys) > IMAP_SEARCH_TEXT_KEYS_MAX) {
		*why_r = "Too many text search keys";
		return 0;
	}
	if ((idx = calloc(s->n_msgs + 1, sizeof(*idx))) == NULL ||
	    (ix = calloc(1, sizeof(*ix))) == NULL)
		log_fatal("out of memory");
	if (search->uses_modseq)
		imap_condstore_use(s);
	if (deliver_fts() && s->n_msgs > 0)
		index_keys(s, search->keys, ix);
	for (i = 0; i < s->n_msgs && util_now_ms() < deadline; i++) {
		struct search_msg sm = { .s = s, .m = &s->msgs[i], .seq = (uint32_t)(i + 1),
					 .index = ix, .heads = &heads };

		if (s->msgs[i].gone)
			continue;
		buf_init(&sm.body, 1);
		if (all_match(&sm, search->keys))
			idx[n++] = i;
		search_msg_free(&sm);
		block_yield();
	}
	search_index_free(ix);
	store_msg_heads_free(&heads.batch);
	if (i < s->n_msgs) {
		log_info("imap: session=%s search stopped after %zu of %zu messages (time limit)",
			 s->ctx->id, i, s->n_msgs);
		free(idx);
		*why_r = IMAP_SEARCH_TOO_LONG;
		return 0;
	}
	*idx_r = idx;
	*n_r = n;
	return 1;
}

void
imap_partial_slice(const struct imap_search *search, size_t n, size_t *from_r, size_t *count_r)
{
	size_t lo = search->partial_lo, hi = search->partial_hi;

	*from_r = *count_r = 0;
	if (lo > n)
		return;
	if (hi > n)
		hi = n;
	*count_r = hi - lo + 1;
	*from_r = search->partial_last ? n - hi : lo - 1;
}

int
imap_esearch_write(struct buf *b, const struct imap_cmd *cmd, const uint32_t *hits, size_t n,
		   uint64_t maxmodseq)
{
	unsigned ret = cmd->search.ret ? cmd->search.ret : IMAP_SEARCH_RET_ALL;
	const struct imap_search *se = &cmd->search;
	size_t from, count;

	if (buf_printf(b, "* ESEARCH (TAG \"%s\")%s", cmd->tag, cmd->uid ? " UID" : "") < 0 ||
	    ((ret & IMAP_SEARCH_RET_MIN) && n > 0 && buf_printf(b, " MIN %u", hits[0]) < 0) ||
	    ((ret & IMAP_SEARCH_RET_MAX) && n > 0 && buf_printf(b, " MAX %u", hits[n - 1]) < 0) ||
	    ((ret & IMAP_SEARCH_RET_COUNT) && buf_printf(b, " COUNT %zu", n) < 0) ||
	    ((ret & IMAP_SEARCH_RET_ALL) && n > 0 &&
	     (buf_append_str(b, " ALL ") < 0 || imap_seqset_write(b, hits, n) < 0)))
		return -1;
	if (ret & IMAP_SEARCH_RET_PARTIAL) {
		/* RFC 9394 3.1: the range as asked, and NIL when it is past
		 * the end of the result. */
		imap_partial_slice(se, n, &from, &count);
		if (buf_printf(b, " PARTIAL (%s ", se->partial_range) < 0 ||
		    (count == 0 ? buf_append_str(b, "NIL") : imap_seqset_write(b, hits + from, count)) < 0 ||
		    buf_append_str(b, ")") < 0)
			return -1;
	}
	if (se->uses_modseq && n > 0 &&
	    buf_printf(b, " MODSEQ %llu", (unsigned long long)maxmodseq) < 0)
		return -1;
	return 1;
}

static int
search_reply(struct imap_session *s, struct imap_cmd *cmd, const uint32_t *hits, size_t n,
	     uint64_t maxmodseq)
{
	struct buf b;

	/* RFC 5182 2.4: SAVE alone gives no ESEARCH. */
	if (cmd->search.esearch && cmd->search.ret == IMAP_SEARCH_RET_SAVE)
		return 1;
	buf_init(&b, 64u << 20);
	if (cmd->search.esearch) {
		if (imap_esearch_write(&b, cmd, hits, n, maxmodseq) < 0)
			goto full;
	} else {
		if (buf_append_str(&b, "* SEARCH") < 0)
			goto full;
		for (size_t i = 0; i < n; i++)
			if (buf_printf(&b, " %u", hits[i]) < 0)
				goto full;
		if (cmd->search.uses_modseq && n > 0 &&
		    buf_printf(&b, " (MODSEQ %llu)", (unsigned long long)maxmodseq) < 0)
			goto full;
	}
	if (buf_append_str(&b, "\r\n") < 0)
		goto full;
	imap_send_buf(s, &b);
	buf_free(&b);
	return 1;
full:
	buf_free(&b);
	return -1;
}

/* The MODSEQ of a result with a MODSEQ key: the highest of the
 * messages it returns; when RETURN asks for MIN and/or MAX alone, only
 * those messages are returned (RFC 4731 3.2, RFC 7162 3.1.5). */
static uint64_t
result_modseq(const struct imap_session *s, const struct imap_cmd *cmd, const size_t *idx,
	      size_t n)
{
	const unsigned minmax = IMAP_SEARCH_RET_MIN | IMAP_SEARCH_RET_MAX;
	unsigned ret = cmd->search.ret & ~IMAP_SEARCH_RET_SAVE;
	uint64_t m = 0;

	if (cmd->search.esearch && ret != 0 && (ret & ~minmax) == 0) {
		if ((ret & IMAP_SEARCH_RET_MIN) && n > 0)
			m = s->msgs[idx[0]].modseq;
		if ((ret & IMAP_SEARCH_RET_MAX) && n > 0 && s->msgs[idx[n - 1]].modseq > m)
			m = s->msgs[idx[n - 1]].modseq;
		return m;
	}
	for (size_t i = 0; i < n; i++)
		if (s->msgs[idx[i]].modseq > m)
			m = s->msgs[idx[i]].modseq;
	return m;
}

int
imap_cmd_search(struct imap_session *s, struct imap_cmd *cmd)
{
	bool save = (cmd->search.ret & IMAP_SEARCH_RET_SAVE) != 0;
	uint64_t maxmodseq = 0;
	const char *why;
	uint32_t *hits;
	size_t *idx, n;
	int ret;

	if (!imap_charset_ok(s, cmd->search.charset)) {
		if (save)	/* RFC 5182 2.1: a failed SAVE empties $ */
			imap_saved_clear(s);
		return 1;
	}
	if (imap_search_run(s, &cmd->search, imap_search_deadline(s), &idx, &n, &why) == 0) {
		if (save)	/* RFC 5182 2.1 */
			imap_saved_clear(s);
		imap_tagged(s, "NO [LIMIT] %s", why);
		return 1;
	}
	if ((hits = calloc(n + 1, sizeof(*hits))) == NULL)
		log_fatal("out of memory");
	for (size_t i = 0; i < n; i++)
		hits[i] = cmd->uid ? s->msgs[idx[i]].uid : (uint32_t)(idx[i] + 1);
	maxmodseq = result_modseq(s, cmd, idx, n);
	if (save && (cmd->search.ret & IMAP_SEARCH_RET_PARTIAL)) {
		/* RFC 9394 3.2: only what PARTIAL returns is saved. */
		size_t from, count;

		imap_partial_slice(&cmd->search, n, &from, &count);
		saved_set(s, idx + from, count);
	} else if (save) {
		search_save(s, cmd->search.ret, idx, n);
	}
	free(idx);
	/* Every message was read before the result is written: a client
	 * slow to take a result of many thousands holds no store
	 * connection meanwhile. */
	imap_writes_let_go(s);
	ret = search_reply(s, cmd, hits, n, maxmodseq);
	(void)imap_writes_done(s);
	free(hits);
	if (ret < 0) {
		imap_tagged(s, "NO [LIMIT] Result too large");
		return 1;
	}
	/* imap_tagged() tells of the mailbox's changes first. */
	imap_tagged(s, "OK %sSEARCH completed", cmd->uid ? "UID " : "");
	return 1;
}
