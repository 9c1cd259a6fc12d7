/* imap_server_fetch.c - FETCH and UID FETCH (RFC 9051 6.4.5, RFC 3516
 * BINARY, RFC 7162 MODSEQ). A body fetched without PEEK sets \Seen, on
 * all the messages of the FETCH in one store change before the first
 * response, and the new flags go out in each message's FETCH response.
 *
 * A client slow to take the output (a phone on a bad link) must not
 * hold a store connection while the FETCH waits on it: each wait that
 * lasts gives the connection back (imap_writes_let_go),
 * and every use of the store below borrows it again (imap_store_ready)
 * first. Nothing of the store is open across a write: the rows of a
 * chunk are read (and their snapshot's transaction ended) before its
 * responses go out, a body is read whole or a header up to its end
 * before it is written, a streamed blob is read a piece at a time. The
 * view (sequence numbers, flags) is the session's own and does not
 * change until the FETCH is done. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base/block.h"
#include "base/log.h"
#include "imap/imap_session.h"
#include "imap/imap_write.h"
#include "deliver/deliver_index.h"
#include "mime/mime.h"
#include "mime/mime_header.h"
#include "mime/mime_imap.h"

/* The bytes of the message whose row is m (prefix + blob) into b. */
static int
msg_read_all(struct imap_session *s, const struct store_msg *m, struct buf *b)
{
	struct yj_err err;
	char chunk[65536];
	ssize_t n;
	int fd;

	if (m->size > IMAP_MESSAGE_MAX)
		return -1;
	buf_init(b, (size_t)m->size + 1);
	if (buf_append(b, m->prefix, m->prefix_len) < 0 || !imap_store_ready(s))
		return -1;
	if (store_msg_open_blob(s->store, m, &fd, &err) < 0) {
		log_error("imap: session=%s message %u: %s", s->ctx->id, m->uid, err.msg);
		return -1;
	}
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		if (buf_append(b, chunk, (size_t)n) < 0)
			break;
	close(fd);
	return n == 0 ? 1 : -1;
}

int
imap_msg_load(struct imap_session *s, uint32_t uid, struct buf *b, struct store_msg *m)
{
	if (store_msg_get(s->store, s->mb.id, uid, m) != 1)
		return -1;
	return msg_read_all(s, m, b);
}

/* What of the message an item needs, from least to most: the row only,
 * the whole message as it is (streamed from the blob, never loaded),
 * the header (loaded up to its empty line), the parsed message. */
enum fetch_need { FETCH_NEED_ROW, FETCH_NEED_STREAM, FETCH_NEED_HEADER, FETCH_NEED_PARSED };

/* BODY[] and BODY.PEEK[] (with or without <partial>), and RFC822. */
static bool
fetch_is_whole(const struct imap_fetch_att *a)
{
	return a->type == IMAP_FETCH_RFC822 ||
	       (a->type == IMAP_FETCH_BODY_SECTION && a->section.nparts == 0 &&
		a->section.text == IMAP_SECTION_ALL);
}

/* ENVELOPE and the top-level header sections read only the header. */
static bool
fetch_is_header(const struct imap_fetch_att *a)
{
	return a->type == IMAP_FETCH_ENVELOPE || a->type == IMAP_FETCH_RFC822_HEADER ||
	       (a->type == IMAP_FETCH_BODY_SECTION && a->section.nparts == 0 &&
		(a->section.text == IMAP_SECTION_HEADER ||
		 a->section.text == IMAP_SECTION_HEADER_FIELDS ||
		 a->section.text == IMAP_SECTION_HEADER_FIELDS_NOT));
}

/* The top-level header sections: from the header alone, no parse. */
static bool
fetch_is_top_header(const struct imap_fetch_att *a)
{
	return fetch_is_header(a) && a->type != IMAP_FETCH_ENVELOPE;
}

/* ENVELOPE, BODY and BODYSTRUCTURE come from the store's summary of
 * the blob, made the first time (store_summary_get). Under UTF8=ACCEPT
 * they are written differently, so they are computed each time. */
static bool
fetch_is_summary(const struct imap_fetch_att *a)
{
	return a->type == IMAP_FETCH_ENVELOPE || a->type == IMAP_FETCH_BODY ||
	       a->type == IMAP_FETCH_BODYSTRUCTURE;
}

static enum fetch_need
fetch_att_need(const struct imap_fetch_att *a, bool summaries)
{
	if (summaries && fetch_is_summary(a))
		return FETCH_NEED_ROW;
	switch (a->type) {
	case IMAP_FETCH_FLAGS: case IMAP_FETCH_INTERNALDATE: case IMAP_FETCH_RFC822_SIZE:
	case IMAP_FETCH_UID: case IMAP_FETCH_MODSEQ: case IMAP_FETCH_EMAILID:
	case IMAP_FETCH_THREADID: case IMAP_FETCH_SAVEDATE:
		return FETCH_NEED_ROW;
	default:
		return fetch_is_whole(a)    ? FETCH_NEED_STREAM
		       : fetch_is_header(a) ? FETCH_NEED_HEADER
					    : FETCH_NEED_PARSED;
	}
}

int
imap_msg_read_header(struct imap_session *s, const struct store_msg *m, struct buf *b)
{
	struct store_blob_reader rd;
	struct yj_err err;
	char chunk[8192];
	size_t from = 0, end;
	uint64_t off = 0;
	long n = 0;
	bool full = false;

	buf_init(b, IMAP_HEADER_LOAD_MAX);
	if (buf_append(b, m->prefix, m->prefix_len) < 0 || !imap_store_ready(s))
		return -1;
	/* Read at offsets: on PostgreSQL only these pieces of the row come. */
	if (store_blob_reader_open(s->store, m, &rd, &err) < 0) {
		log_error("imap: session=%s message %u: %s", s->ctx->id, m->uid, err.msg);
		return -1;
	}
	while ((end = mime_header_end(b->data, b->len, from)) == 0 &&
	       (n = store_blob_read(&rd, off, chunk, sizeof(chunk), &err)) > 0) {
		from = b->len > 2 ? b->len - 2 : 0;
		off += (uint64_t)n;
		if (buf_append(b, chunk, (size_t)n) < 0) {
			full = true;
			break;
		}
	}
	store_blob_reader_close(&rd);
	if (n < 0) {
		log_error("imap: session=%s message %u: %s", s->ctx->id, m->uid, err.msg);
		return -1;
	}
	if (full) {
		buf_free(b);
		return msg_read_all(s, m, b);
	}
	if (end > 0)
		b->len = end;	/* the body's first bytes are not wanted */
	return 1;
}

static enum fetch_need
fetch_need(const struct imap_fetch *f, bool summaries)
{
	enum fetch_need need = FETCH_NEED_ROW;

	for (size_t i = 0; i < f->count; i++)
		if (fetch_att_need(&f->atts[i], summaries) > need)
			need = fetch_att_need(&f->atts[i], summaries);
	return need;
}

static bool
fetch_wants_summary(const struct imap_fetch *f)
{
	for (size_t i = 0; i < f->count; i++)
		if (fetch_is_summary(&f->atts[i]))
			return true;
	return false;
}

static bool
fetch_sets_seen(const struct imap_fetch_att *a)
{
	return (a->type == IMAP_FETCH_BODY_SECTION && !a->peek) || a->type == IMAP_FETCH_RFC822 ||
	       a->type == IMAP_FETCH_RFC822_TEXT || (a->type == IMAP_FETCH_BINARY && !a->peek);
}

/* Is the header field line (starting at p) one of names? */
static bool
field_listed(const char *p, size_t len, const struct imap_section *sec)
{
	const char *colon = memchr(p, ':', len);
	size_t nlen;

	if (colon == NULL)
		return false;
	nlen = (size_t)(colon - p);
	while (nlen > 0 && (p[nlen - 1] == ' ' || p[nlen - 1] == '\t'))
		nlen--;
	for (size_t i = 0; i < sec->nfields; i++)
		if (strlen(sec->fields[i]) == nlen && strncasecmp(sec->fields[i], p, nlen) == 0)
			return true;
	return false;
}

/* HEADER.FIELDS (.NOT): the matching fields (with their continuation
 * lines) and the empty line, if the header has one (RFC 3501 6.4.5: it
 * is always included "except in the case of a message which has no body
 * and no blank line"). */
static int
header_filter(const char *h, size_t len, const struct imap_section *sec, struct buf *out)
{
	bool want_listed = sec->text == IMAP_SECTION_HEADER_FIELDS;
	size_t pos = 0;

	while (pos < len) {
		size_t start = pos, end;

		if (h[pos] == '\r' || h[pos] == '\n')
			return buf_append_str(out, "\r\n");	/* the empty line */
		do {
			const char *nl = memchr(h + pos, '\n', len - pos);

			pos = nl ? (size_t)(nl - h) + 1 : len;
		} while (pos < len && (h[pos] == ' ' || h[pos] == '\t'));
		end = pos;
		if (field_listed(h + start, end - start, sec) == want_listed &&
		    buf_append(out, h + start, end - start) < 0)
			return -1;
	}
	return 1;
}

/* "NAME " before an item's value. */
static int
item_name(const struct imap_fetch_att *a, struct buf *out)
{
	return buf_append_str(out, a->reply_name) > 0 && buf_append(out, " ", 1) > 0 ? 1 : -1;
}

static void
section_spec(const struct imap_section *sec, char *out, size_t outlen)
{
	static const char *const texts[] = { "", "HEADER", "HEADER", "HEADER", "TEXT", "MIME" };
	size_t n = 0;

	out[0] = '\0';
	for (size_t i = 0; i < sec->nparts && n < outlen; i++)
		n += (size_t)snprintf(out + n, outlen - n, "%s%u", i ? "." : "", sec->parts[i]);
	if (sec->text != IMAP_SECTION_ALL && n < outlen)
		snprintf(out + n, outlen - n, "%s%s", n ? "." : "", texts[sec->text]);
}

/* Appends a section's bytes p[0..len) as a literal, cut to <partial>
 * if asked. */
static int
section_literal(const struct imap_fetch_att *a, const char *p, size_t len, struct buf *out)
{
	if (a->partial) {
		size_t o = a->offset < len ? (size_t)a->offset : len;
		size_t c = len - o;

		if (a->count < c)
			c = (size_t)a->count;
		p += o;
		len = c;
	}
	return a->type == IMAP_FETCH_BINARY ? mime_imap_literal8(out, p, len)
					    : imap_write_literal(out, p, len);
}

/* write_section() for BINARY of a part whose encoding is unknown. */
#define FETCH_UNKNOWN_CTE (-2)

/* Does BINARY decode this section? Headers are never transfer-encoded,
 * so BINARY[HEADER], [MIME] and [HEADER.FIELDS] give what BODY gives. */
static bool
binary_decodes(const struct imap_fetch_att *a, enum mime_section_kind kind)
{
	return (a->type == IMAP_FETCH_BINARY || a->type == IMAP_FETCH_BINARY_SIZE) &&
	       (kind == MIME_SECTION_ALL || kind == MIME_SECTION_TEXT);
}

/* Appends a body section's bytes, cut to <partial> if asked. */
static int
write_section(struct imap_session *s, const struct mime_msg *mm, const struct imap_fetch_att *a,
	      struct buf *out)
{
	char spec[IMAP_PART_DEPTH_MAX * 12 + 16];
	enum mime_section_kind kind;
	struct buf tmp;
	size_t off = 0, len = 0;
	const char *p = "";
	int part, ret;

	section_spec(&a->section, spec, sizeof(spec));
	buf_init(&tmp, IMAP_MESSAGE_MAX);
	ret = mime_section_find(mm, spec, &off, &len, &part, &kind);
	if (ret == 1) {
		p = mm->data + off;
		if (binary_decodes(a, kind)) {
			/* BINARY[] names the whole message, as BODY[] does: its
			 * header as it is, then its body decoded (as Dovecot).
			 * TEXT is a message's body: decoded only when that body
			 * is one leaf part, as mime_binary_decode does. */
			const struct mime_part *top = &mm->parts[0];

			if (a->section.nparts == 0 && kind == MIME_SECTION_ALL &&
			    buf_append(&tmp, mm->data + top->hdr_off, top->hdr_len) < 0) {
				buf_free(&tmp);
				return -1;
			}
			if (mime_binary_decode(mm, part, &tmp) != 1) {
				buf_free(&tmp);
				return FETCH_UNKNOWN_CTE;
			}
			p = tmp.data;
			len = tmp.len;
		} else if (a->section.text == IMAP_SECTION_HEADER_FIELDS ||
			   a->section.text == IMAP_SECTION_HEADER_FIELDS_NOT) {
			if (header_filter(p, len, &a->section, &tmp) < 0) {
				buf_free(&tmp);
				return -1;
			}
			p = tmp.data;
			len = tmp.len;
		}
	} else {
		len = 0;
	}
	ret = a->type == IMAP_FETCH_BINARY_SIZE ? buf_printf(out, "%zu", len)
						: section_literal(a, p ? p : "", len, out);
	buf_free(&tmp);
	return ret;
}

/* A top-level header section (RFC822.HEADER, BODY[HEADER], HEADER.FIELDS
 * and .NOT) from the message's header alone (prefix + stored header
 * lines), cut as write_att cuts it from the parsed message; cut is
 * scratch for the fields. */
static int
write_header_cut(const struct imap_fetch_att *a, const struct buf *header, struct buf *cut,
		 struct buf *out)
{
	const char *p = header->data;
	size_t len = mime_header_len(header->data, header->len);

	if (item_name(a, out) < 0)
		return -1;
	if (a->type == IMAP_FETCH_BODY_SECTION &&
	    (a->section.text == IMAP_SECTION_HEADER_FIELDS ||
	     a->section.text == IMAP_SECTION_HEADER_FIELDS_NOT)) {
		buf_reset(cut);
		if (header_filter(p, len, &a->section, cut) < 0)
			return -1;
		p = cut->data;
		len = cut->len;
	}
	return section_literal(a, p, len, out);
}

/* OBJECTID, SAVEDATE, PREVIEW; NIL for what is not known. */
static int
write_att_ext(struct imap_session *s, const struct store_msg *sm, const struct mime_msg *mm,
	      const struct imap_fetch_att *a, struct buf *out)
{
	int r = imap_fetch_ext(s, sm, mm, a, out);

	return r != 0 ? r : buf_append_str(out, "NIL");
}

static int
write_att(struct imap_session *s, const struct imap_msg *m, const struct store_msg *sm,
	  const struct mime_msg *mm, const struct imap_fetch_att *a, struct buf *out)
{
	unsigned mflags = s->utf8 ? MIME_IMAP_UTF8 : 0;
	const struct mime_part *top = mm ? &mm->parts[0] : NULL;

	if (item_name(a, out) < 0)
		return -1;
	switch (a->type) {
	case IMAP_FETCH_FLAGS:
		return imap_flags_write(s, out, imap_msg_flags(m), m->keywords);
	case IMAP_FETCH_UID:
		return buf_printf(out, "%u", m->uid);
	case IMAP_FETCH_MODSEQ:
		return buf_printf(out, "(%llu)", (unsigned long long)m->modseq);
	case IMAP_FETCH_INTERNALDATE:
		return imap_write_datetime(out, (time_t)sm->internal_date, sm->internal_zone);
	case IMAP_FETCH_RFC822_SIZE:
		return buf_printf(out, "%llu", (unsigned long long)sm->size);
	case IMAP_FETCH_ENVELOPE:
		return mime_imap_envelope(mm, 0, out, mflags);
	case IMAP_FETCH_BODY:
		return mime_imap_bodystructure(mm, 0, false, out, mflags);
	case IMAP_FETCH_BODYSTRUCTURE:
		return mime_imap_bodystructure(mm, 0, true, out, mflags);
	case IMAP_FETCH_RFC822_HEADER:
		return imap_write_literal(out, mm->data + top->hdr_off, top->hdr_len);
	case IMAP_FETCH_RFC822_TEXT:
		return imap_write_literal(out, mm->data + top->body_off, top->body_len);
	case IMAP_FETCH_BODY_SECTION:
	case IMAP_FETCH_BINARY:
	case IMAP_FETCH_BINARY_SIZE:
		return write_section(s, mm, a, out);
	default:
		return write_att_ext(s, sm, mm, a, out);
	}
}

/* The stream broke inside a literal: the session cannot go on. */
#define FETCH_BROKEN (-3)

/* Reads a piece of the blob: through the connection the session has
 * now where the database has the bytes (the one the reader was opened
 * with may have been given back while the client was slow). */
static long
stream_piece(struct imap_session *s, struct store_blob_reader *rd, uint64_t off, char *chunk,
	     size_t want, struct yj_err *err)
{
	if (store_blob_reader_in_db(rd)) {
		if (!imap_store_ready(s))
			return yj_err_set(err, "the store is not available");
		store_blob_reader_use(rd, s->store);
	}
	return store_blob_read(rd, off, chunk, want, err);
}

/* Sends bytes [off, off + len) of the blob in bounded chunks. */
static bool
stream_blob(struct imap_session *s, struct store_blob_reader *rd, uint64_t off, uint64_t len)
{
	const size_t size = IMAP_STREAM_CHUNK;
	char *chunk = malloc(size);
	struct yj_err err;
	bool ok = chunk != NULL;

	while (ok && len > 0) {
		size_t want = len < size ? (size_t)len : size;
		long n = stream_piece(s, rd, off, chunk, want, &err);

		if (n < 0)
			log_error("imap: session=%s %s", s->ctx->id, err.msg);
		if (n > 0)
			mime_imap_nul_mask(chunk, (size_t)n);	/* as mime_imap_literal */
		ok = n > 0 && conn_write(s->conn, chunk, (size_t)n);
		off += ok ? (uint64_t)n : 0;
		len -= ok ? (uint64_t)n : 0;
	}
	free(chunk);
	return ok;
}

/* BODY[]<partial> and RFC822 straight from the store: what out holds so
 * far is sent, then the literal, sized from the stored size, from the
 * prefix and the blob file in bounded chunks (a 20 MB message costs no
 * 20 MB of memory); out is then empty for the rest of the response. */
static int
fetch_stream_whole(struct imap_session *s, const struct store_msg *sm,
		   const struct imap_fetch_att *a, struct buf *out)
{
	uint64_t off = 0, len = sm->size;
	struct store_blob_reader rd;
	struct yj_err err;
	bool ok;

	if (a->partial) {
		off = a->offset < len ? a->offset : len;
		len = a->count < len - off ? a->count : len - off;
	}
	if (!imap_store_ready(s))
		return -1;
	if (store_blob_reader_open(s->store, sm, &rd, &err) < 0) {
		log_error("imap: session=%s message %u: %s", s->ctx->id, sm->uid, err.msg);
		return -1;
	}
	if (buf_printf(out, "%s {%llu}\r\n", a->reply_name, (unsigned long long)len) < 0) {
		store_blob_reader_close(&rd);
		return -1;
	}
	imap_send_buf(s, out);
	buf_reset(out);
	ok = true;
	if (off < sm->prefix_len) {
		size_t n = sm->prefix_len - (size_t)off < len ? sm->prefix_len - (size_t)off
							      : (size_t)len;

		ok = conn_write(s->conn, sm->prefix + off, n);
		off += n;
		len -= n;
	}
	ok = ok && stream_blob(s, &rd, off - sm->prefix_len, len);
	store_blob_reader_close(&rd);
	if (!ok) {
		/* Fewer bytes than the literal promised: nothing the client
		 * reads after this could be trusted. A client that stopped
		 * taking them (write_timeout) is no server error. */
		if (!s->conn->failed)
			log_error("imap: session=%s message %u: the blob ended early",
				  s->ctx->id, sm->uid);
		return FETCH_BROKEN;
	}
	return 1;
}

/* A FETCH's messages (view indexes, ascending UIDs) and which of them
 * it set \Seen on. */
struct seen_set {
	struct imap_session *s;
	const size_t *idx;
	size_t n;
	bool *seen_now;			/* by place in idx */
};

/* After the commit, for each message the change set \Seen on. */
static void
seen_changed_cb(void *arg, const struct store_flag_result *r)
{
	struct seen_set *ss = arg;
	size_t lo = 0, hi = ss->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (ss->s->msgs[ss->idx[mid]].uid < r->uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < ss->n && ss->s->msgs[ss->idx[lo]].uid == r->uid) {
		struct imap_msg *m = &ss->s->msgs[ss->idx[lo]];

		/* Only \Seen: other changes are for imap_sync to report. */
		m->flags |= STORE_FLAG_SEEN;
		m->modseq = r->modseq;
		ss->seen_now[lo] = true;
	}
}

/* Sets \Seen on the messages of idx (n of them) that lack it, in one
 * store change (one commit, one MODSEQ) before any response is written,
 * rather than one commit per message; seen_now[i] tells whether idx[i]
 * changed. A failure is only logged: the bodies are still served. */
static void
mark_seen(struct imap_session *s, const size_t *idx, size_t n, bool *seen_now)
{
	const struct store_flag_change ch = { .op = STORE_FLAGS_ADD, .flags = STORE_FLAG_SEEN };
	struct seen_set ss = { .s = s, .idx = idx, .n = n, .seen_now = seen_now };
	size_t *unseen = calloc(n + 1, sizeof(*unseen)), n_unseen = 0;
	struct store_uidset set;
	struct yj_err err;
	uint64_t modseq = 0;

	if (unseen == NULL)
		log_fatal("out of memory");
	for (size_t i = 0; i < n; i++)
		if (!(s->msgs[idx[i]].flags & STORE_FLAG_SEEN))
			unseen[n_unseen++] = idx[i];
	set = imap_uid_ranges(s, unseen, n_unseen);
	if (n_unseen > 0 && imap_store_ready(s) &&
	    store_msg_store_flags(s->store, s->mb.id, &set, &ch, seen_changed_cb, NULL, &ss,
				  &modseq, &err) < 0)
		log_error("imap: session=%s set \\Seen: %s", s->ctx->id, err.msg);
	/* The view is current up to this change if nothing came between. */
	if (modseq != 0 && s->seen_modseq + 1 == modseq)
		s->seen_modseq = modseq;
	free((void *)set.ranges);
	free(unseen);
}

/* Messages whose rows (and summaries) a FETCH reads at once. */
#define FETCH_CHUNK 64

/* One FETCH command's run: what its items need of each message, the
 * summaries made on the way, saved in batches, and the buffers every
 * message of the command reuses. */
#define FETCH_SUMMARY_BATCH 64
struct fetch_run {
	enum fetch_need need;
	bool set_seen;
	bool summaries;			/* summary items come from the store */
	bool lookup;			/* the summary is read (items or header) */
	/* Every item that reads the message is a top-level header section:
	 * it is cut from the stored header lines, with no parse. */
	bool header_cut;
	struct store_summary made[FETCH_SUMMARY_BATCH];
	size_t n_made;
	/* A save failed: the rest of the command saves none. Each try may
	 * wait out the busy or lock timeout (another process holds the
	 * database), once per batch, for a cache that is made again next
	 * time. */
	bool save_failed;
	struct store_fetch_row *rows;	/* FETCH_CHUNK of them, or fewer */
	struct buf out;			/* one message's response */
	struct buf header;		/* prefix + stored header lines */
	struct buf cut;			/* the fields of a HEADER.FIELDS */
};

/* Stores the summaries made so far: whether they were saved. */
static bool
summaries_put(struct imap_session *s, struct fetch_run *run)
{
	struct yj_err err;

	if (!imap_store_ready(s)) {
		log_error("imap: session=%s summaries not saved", s->ctx->id);
		return false;
	}
	if (store_summary_put(s->store, run->made, run->n_made, &err) < 0) {
		log_error("imap: session=%s saving summaries: %s", s->ctx->id, err.msg);
		return false;
	}
	return true;
}

static void
summaries_save(struct imap_session *s, struct fetch_run *run)
{
	if (run->n_made == 0)
		return;
	/* A summary not saved is made again next time: only logged. */
	if (!run->save_failed)
		run->save_failed = !summaries_put(s, run);
	for (size_t i = 0; i < run->n_made; i++)
		store_summary_free(&run->made[i]);
	run->n_made = 0;
}

/* Computes the summary of a parsed message into sum and queues a copy
 * for the store. 1, or -1 (an item too large: computed each time). */
static int
summary_make(struct imap_session *s, struct fetch_run *run, const struct store_msg *sm,
	     const struct mime_msg *mm, struct store_summary *sum)
{
	struct store_summary *keep;

	memset(sum, 0, sizeof(*sum));
	snprintf(sum->blob_id, sizeof(sum->blob_id), "%s", sm->blob_id);
	if (deliver_summary_make(mm, sm->prefix_len, sum) < 0)
		return -1;
	if (run->n_made == FETCH_SUMMARY_BATCH)
		summaries_save(s, run);
	keep = &run->made[run->n_made++];
	*keep = *sum;
	for (int i = 0; i < STORE_SUMMARY_ITEMS; i++) {
		keep->text[i] = malloc(sum->len[i] + 1);
		if (keep->text[i] == NULL)
			log_fatal("out of memory");
		memcpy(keep->text[i], sum->text[i] != NULL ? sum->text[i] : "", sum->len[i]);
	}
	return 1;
}

static int
fetch_write_summary(const struct imap_fetch_att *a, const struct store_summary *sum,
		    struct buf *out)
{
	enum store_summary_item item = a->type == IMAP_FETCH_ENVELOPE ? STORE_SUMMARY_ENVELOPE
				       : a->type == IMAP_FETCH_BODY   ? STORE_SUMMARY_BODY
								      : STORE_SUMMARY_BODYSTRUCTURE;

	if (item_name(a, out) < 0)
		return -1;
	return buf_append(out, sum->text[item] != NULL ? sum->text[item] : "", sum->len[item]);
}

/* The header of sm from its summary, appended to b. */
static int
header_append(const struct store_msg *sm, const struct store_summary *sum, struct buf *b)
{
	if (buf_append(b, sm->prefix, sm->prefix_len) < 0 ||
	    buf_append(b, sum->text[STORE_SUMMARY_HEADER], sum->len[STORE_SUMMARY_HEADER]) < 0)
		return -1;
	return 1;
}

int
imap_header_from_summary(const struct store_msg *sm, const struct store_summary *sum, struct buf *b)
{
	buf_init(b, IMAP_HEADER_LOAD_MAX + sizeof(sm->prefix));
	return header_append(sm, sum, b);
}

/* The message whose row is sm as much as need asks: nothing more, the
 * header or all of it (parsed into mm). 1, or 0 if it cannot be read. */
static int
fetch_load(struct imap_session *s, const struct store_msg *sm, enum fetch_need need,
	   const struct store_summary *sum, struct buf *body, struct mime_msg *mm)
{
	int ret;

	buf_init(body, 1);
	if (need < FETCH_NEED_HEADER)
		return 1;
	if (need == FETCH_NEED_HEADER && sum != NULL && sum->len[STORE_SUMMARY_HEADER] > 0)
		ret = imap_header_from_summary(sm, sum, body);
	else if (need == FETCH_NEED_HEADER)
		ret = imap_msg_read_header(s, sm, body);
	else
		ret = msg_read_all(s, sm, body);
	if (ret < 0) {
		buf_free(body);
		return 0;
	}
	mime_parse(mm, body->data ? body->data : "", body->len);
	return 1;
}

/* One message as its items are written: the view's entry, the row,
 * and what was loaded of it. */
struct fetch_msg {
	const struct imap_msg *m;
	const struct store_msg *sm;
	const struct store_summary *sum;	/* NULL: none */
	struct mime_msg mm;			/* parsed, if the items need it */
	struct buf body;			/* what mm is parsed from */
	const struct buf *header;		/* header_cut: the header alone */
};

/* Loads what the run's items need of the message of row into fm; a
 * missing summary is made (and queued to be saved). 1, or 0 if the
 * message cannot be read. */
static int
fetch_prepare(struct imap_session *s, struct fetch_run *run, const struct imap_msg *m,
	      struct store_fetch_row *row, struct fetch_msg *fm)
{
	enum fetch_need need = run->need;

	memset(fm, 0, sizeof(*fm));
	fm->m = m;
	fm->sm = &row->msg;
	fm->sum = row->has_summary ? &row->summary : NULL;
	buf_init(&fm->body, 1);
	if (run->lookup && fm->sum == NULL)
		need = FETCH_NEED_PARSED;	/* to make it */
	if (need == FETCH_NEED_HEADER && run->header_cut && fm->sum != NULL &&
	    fm->sum->len[STORE_SUMMARY_HEADER] > 0) {
		buf_reset(&run->header);
		if (header_append(fm->sm, fm->sum, &run->header) < 0)
			return 0;
		fm->header = &run->header;
		return 1;
	}
	if (fetch_load(s, fm->sm, need, fm->sum, &fm->body, &fm->mm) == 0)
		return 0;
	if (run->lookup && fm->sum == NULL &&
	    summary_make(s, run, fm->sm, &fm->mm, &row->summary) == 1) {
		row->has_summary = true;
		fm->sum = &row->summary;
	}
	return 1;
}

static void
fetch_msg_free(struct fetch_msg *fm)
{
	mime_free(&fm->mm);
	buf_free(&fm->body);
}

/* One item, from wherever it is cheapest: the blob streamed, the
 * stored summary, the header alone, or the loaded message. */
static int
fetch_write_item(struct imap_session *s, struct fetch_run *run, const struct fetch_msg *fm,
		 const struct imap_fetch_att *a, struct buf *out)
{
	if (fetch_is_whole(a))
		return fetch_stream_whole(s, fm->sm, a, out);
	if (run->summaries && fm->sum != NULL && fetch_is_summary(a))
		return fetch_write_summary(a, fm->sum, out);
	if (fm->header != NULL && fetch_is_top_header(a))
		return write_header_cut(a, fm->header, &run->cut, out);
	return write_att(s, fm->m, fm->sm, &fm->mm, a, out);
}

/* The items of the FETCH into out (the response so far); *streamed:
 * a literal went out straight from the blob. 1, 0 (out is full), or
 * FETCH_UNKNOWN_CTE / FETCH_BROKEN. */
static int
fetch_items_write(struct imap_session *s, struct imap_cmd *cmd, struct fetch_run *run,
		  const struct fetch_msg *fm, bool *streamed, struct buf *out)
{
	for (size_t k = 0; k < cmd->fetch.count; k++) {
		const struct imap_fetch_att *a = &cmd->fetch.atts[k];
		int r;

		if (k > 0 && buf_append(out, " ", 1) < 0)
			return 0;
		r = fetch_write_item(s, run, fm, a, out);
		*streamed |= fetch_is_whole(a);
		if (r == FETCH_UNKNOWN_CTE && *streamed)
			r = FETCH_BROKEN;	/* half a response is out */
		if (r == FETCH_UNKNOWN_CTE || r == FETCH_BROKEN)
			return r;
		if (r <= 0)
			return 0;
	}
	return 1;
}

static bool
fetch_lists(const struct imap_cmd *cmd, enum imap_fetch_type type)
{
	for (size_t k = 0; k < cmd->fetch.count; k++)
		if (cmd->fetch.atts[k].type == type)
			return true;
	return false;
}

/* What the response carries beyond the items asked for. */
static int
fetch_extras_write(struct imap_session *s, struct imap_cmd *cmd, const struct imap_msg *m,
		   bool seen_now, struct buf *out)
{
	if (cmd->uid && !fetch_lists(cmd, IMAP_FETCH_UID) && buf_printf(out, " UID %u", m->uid) < 0)
		return 0;
	if (seen_now && !fetch_lists(cmd, IMAP_FETCH_FLAGS) &&
	    (buf_append_str(out, " FLAGS ") < 0 ||
	     imap_flags_write(s, out, imap_msg_flags(m), m->keywords) <= 0))
		return 0;
	/* Once CONDSTORE is on, untagged FETCH responses carry MODSEQ,
	 * those of a FETCH that set \Seen included (RFC 7162); CHANGEDSINCE
	 * asks for it anyway. */
	if (s->condstore && (cmd->fetch.changedsince_set || seen_now) &&
	    !fetch_lists(cmd, IMAP_FETCH_MODSEQ) &&
	    buf_printf(out, " MODSEQ (%llu)", (unsigned long long)m->modseq) < 0)
		return 0;
	return buf_append_str(out, ")\r\n") > 0;
}

/* The responses for message i of the view, whose row is row; seen_now:
 * this FETCH set \Seen on it (mark_seen). */
static int
fetch_one(struct imap_session *s, struct imap_cmd *cmd, size_t i, bool seen_now,
	  struct fetch_run *run, struct store_fetch_row *row)
{
	struct imap_msg *m = &s->msgs[i];
	struct buf *out = &run->out;
	struct fetch_msg fm;
	bool streamed = false;
	int ok;

	if (fetch_prepare(s, run, m, row, &fm) == 0) {
		fetch_msg_free(&fm);
		if (seen_now)
			imap_send_flags(s, i + 1, m);
		return 0;
	}
	/* Bodies are streamed or come from what was loaded: the rest is
	 * bounded, as a buffer of the message's own would be. */
	buf_reset(out);
	out->max = (fm.header != NULL ? fm.header->len : fm.body.len) + IMAP_RESPONSE_MAX;
	ok = buf_printf(out, "* %zu FETCH (", i + 1) > 0;
	if (ok) {
		ok = fetch_items_write(s, cmd, run, &fm, &streamed, out);
		if (ok == FETCH_UNKNOWN_CTE || ok == FETCH_BROKEN) {
			fetch_msg_free(&fm);
			return ok;
		}
	}
	ok = ok > 0 && fetch_extras_write(s, cmd, m, seen_now, out);
	if (ok)
		imap_send_buf(s, out);
	fetch_msg_free(&fm);
	/* After a streamed literal a NO cannot mend the response. */
	return ok ? 1 : streamed ? FETCH_BROKEN : -1;
}

/* Message i of the view, which another session expunged and this one
 * has not been told of yet (RFC 2180 4.1): its row is gone, but what the
 * session's own view holds (UID, FLAGS, MODSEQ) is still answered, as
 * 4.1.1 allows and Dovecot does; a FETCH asking for anything more says
 * nothing of it (4.1.3). */
static void
fetch_gone(struct imap_session *s, struct imap_cmd *cmd, size_t i, struct buf *out)
{
	const struct imap_msg *m = &s->msgs[i];
	int ok;

	for (size_t k = 0; k < cmd->fetch.count; k++) {
		enum imap_fetch_type t = cmd->fetch.atts[k].type;

		if (t != IMAP_FETCH_UID && t != IMAP_FETCH_FLAGS && t != IMAP_FETCH_MODSEQ)
			return;
	}
	buf_reset(out);
	out->max = IMAP_RESPONSE_MAX;
	ok = buf_printf(out, "* %zu FETCH (", i + 1) > 0;
	for (size_t k = 0; ok && k < cmd->fetch.count; k++)
		ok = (k == 0 || buf_append(out, " ", 1) > 0) &&
		     write_att(s, m, NULL, NULL, &cmd->fetch.atts[k], out) > 0;
	if (ok && fetch_extras_write(s, cmd, m, false, out))
		imap_send_buf(s, out);
}

/* The FETCH's messages idx[*at..kept) up to FETCH_CHUNK of them, their
 * rows read at once; *at moves past those done (not the one that
 * failed). 1, or the failure of fetch_one. */
static int
fetch_chunk(struct imap_session *s, struct imap_cmd *cmd, struct fetch_run *run,
	    const size_t *idx, const bool *seen_now, size_t kept, size_t *at)
{
	size_t n = kept - *at < FETCH_CHUNK ? kept - *at : FETCH_CHUNK, found = 0, j = 0, k;
	uint32_t uids[FETCH_CHUNK] = { 0 };
	struct yj_err err;
	int ret = 1;

	for (k = 0; k < n; k++)
		uids[k] = s->msgs[idx[*at + k]].uid;
	/* A failure is as if they were expunged: nothing to say of them
	 * (imap_store_ready logs its own). */
	if (imap_store_ready(s) && store_msg_fetch(s->store, s->mb.id, uids, n, run->lookup,
						   run->rows, &found, &err) < 0)
		log_error("imap: session=%s fetch: %s", s->ctx->id, err.msg);
	/* A client that stopped taking our output (write_timeout) is gone:
	 * reading the rest of the messages for it would be wasted. */
	for (k = 0; k < n && !s->conn->failed; k++) {
		/* Both in UID order; a UID without a row was expunged
		 * meanwhile: only what the view holds is said (fetch_gone). */
		while (j < found && run->rows[j].msg.uid < uids[k])
			j++;
		if (j >= found || run->rows[j].msg.uid != uids[k])
			fetch_gone(s, cmd, idx[*at + k], &run->out);
		else if ((ret = fetch_one(s, cmd, idx[*at + k], seen_now[*at + k], run,
					  &run->rows[j])) < 0)
			break;
	}
	*at += k;
	store_fetch_rows_free(run->rows, found);
	/* A FETCH of thousands of messages lets other steps go first now
	 * and then (run slots, base/block.h). */
	block_yield();
	return ret < 0 ? ret : 1;
}

/* Runs the FETCH over the resolved messages (those changed since
 * CHANGEDSINCE, judged before \Seen changes them): 1, FETCH_BROKEN, or
 * the first failure of a message (FETCH_UNKNOWN_CTE, -1). */
static int
fetch_all(struct imap_session *s, struct imap_cmd *cmd, struct fetch_run *run)
{
	size_t *idx, n, i, kept = 0;
	bool *seen_now;
	int ret = 1;

	/* A message numbered in the client's view but known expunged keeps
	 * its number until the EXPUNGE is told: fetch_gone answers for it. */
	n = imap_set_resolve_ex(s, &cmd->set, cmd->uid, !cmd->uid, &idx);
	for (i = 0; i < n; i++)
		if (!cmd->fetch.changedsince_set || s->msgs[idx[i]].modseq > cmd->fetch.changedsince)
			idx[kept++] = idx[i];
	if ((seen_now = calloc(kept + 1, sizeof(*seen_now))) == NULL ||
	    (run->rows = malloc((kept < FETCH_CHUNK ? kept + 1 : FETCH_CHUNK) *
				sizeof(*run->rows))) == NULL)
		log_fatal("out of memory");
	if (run->set_seen && !s->readonly)
		mark_seen(s, idx, kept, seen_now);
	for (i = 0; i < kept && ret > 0 && !s->conn->failed;)
		ret = fetch_chunk(s, cmd, run, idx, seen_now, kept, &i);
	/* A FETCH that fails part way has set \Seen on messages it sends no
	 * response for: the client hears of their flags before the NO. */
	for (; ret != FETCH_BROKEN && i < kept; i++)
		if (seen_now[i])
			imap_send_flags(s, idx[i] + 1, &s->msgs[idx[i]]);
	free(run->rows);
	free(seen_now);
	free(idx);
	summaries_save(s, run);
	return ret;
}

/* Every item that reads the message is a top-level header section. */
static bool
fetch_header_cut(const struct imap_fetch *f, bool summaries)
{
	for (size_t i = 0; i < f->count; i++)
		if (fetch_att_need(&f->atts[i], summaries) == FETCH_NEED_HEADER &&
		    !fetch_is_top_header(&f->atts[i]))
			return false;
	return true;
}

int
imap_cmd_fetch(struct imap_session *s, struct imap_cmd *cmd)
{
	struct fetch_run *run = calloc(1, sizeof(*run));
	int r;

	if (run == NULL)
		log_fatal("out of memory");
	if (cmd->fetch.changedsince_set)
		imap_condstore_use(s);
	for (size_t k = 0; k < cmd->fetch.count; k++) {
		run->set_seen |= fetch_sets_seen(&cmd->fetch.atts[k]);
		if (cmd->fetch.atts[k].type == IMAP_FETCH_MODSEQ)
			imap_condstore_use(s);
	}
	run->summaries = !s->utf8 && fetch_wants_summary(&cmd->fetch);
	run->need = fetch_need(&cmd->fetch, run->summaries);
	run->lookup = run->summaries || run->need == FETCH_NEED_HEADER;
	run->header_cut = run->need == FETCH_NEED_HEADER &&
			  fetch_header_cut(&cmd->fetch, run->summaries);
	buf_init(&run->out, IMAP_RESPONSE_MAX);
	buf_init(&run->header, IMAP_HEADER_LOAD_MAX + sizeof(((struct store_msg *)0)->prefix));
	buf_init(&run->cut, IMAP_HEADER_LOAD_MAX + sizeof(((struct store_msg *)0)->prefix));
	imap_writes_let_go(s);
	if (cmd->fetch.vanished && cmd->fetch.changedsince_set && s->qresync)
		imap_vanished_earlier(s, cmd->fetch.changedsince, &cmd->set);
	r = fetch_all(s, cmd, run);
	/* The changes since go out with the tagged reply (imap_tagged),
	 * from the store if it can be had again. */
	(void)imap_writes_done(s);
	buf_free(&run->out);
	buf_free(&run->header);
	buf_free(&run->cut);
	free(run);
	if (r == FETCH_BROKEN) {
		s->end_reason = !s->conn->failed ? "fetch-stream" : conn_end_reason(s->conn);
		return 0;
	}
	if (r < 0) {
		imap_tagged(s, r == FETCH_UNKNOWN_CTE ? "NO [UNKNOWN-CTE] The part's encoding is unknown"
						      : "NO [LIMIT] Response too large");
		return 1;
	}
	if (s->store != NULL)
		(void)imap_sync(s, false);
	imap_tagged(s, "OK %sFETCH completed", cmd->uid ? "UID " : "");
	return 1;
}
