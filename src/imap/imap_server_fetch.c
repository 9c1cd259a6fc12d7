/* imap_server_fetch.c - FETCH and UID FETCH (RFC 9051 6.4.5, RFC 3516
 * BINARY, RFC 7162 MODSEQ). A body fetched without PEEK sets \Seen, and
 * the new flags go out in the same FETCH response. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base/log.h"
#include "imap/imap_session.h"
#include "imap/imap_write.h"
#include "mime/mime.h"
#include "mime/mime_imap.h"

int
imap_msg_load(struct imap_session *s, uint32_t uid, struct buf *b, struct store_msg *m)
{
	struct yj_err err;
	char chunk[65536];
	ssize_t n;
	int fd;

	if (store_msg_get(s->store, s->mb.id, uid, m) != 1)
		return -1;
	if (m->size > IMAP_MESSAGE_MAX)
		return -1;
	buf_init(b, (size_t)m->size + 1);
	if (buf_append(b, m->prefix, m->prefix_len) < 0)
		return -1;
	if (store_msg_open_blob(s->store, m, &fd, &err) < 0) {
		log_error("imap: session=%s message %u: %s", s->ctx->id, uid, err.msg);
		return -1;
	}
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		if (buf_append(b, chunk, (size_t)n) < 0)
			break;
	close(fd);
	return n == 0 ? 1 : -1;
}

static bool
fetch_needs_body(const struct imap_fetch *f)
{
	for (size_t i = 0; i < f->count; i++)
		switch (f->atts[i].type) {
		case IMAP_FETCH_FLAGS: case IMAP_FETCH_INTERNALDATE: case IMAP_FETCH_RFC822_SIZE:
		case IMAP_FETCH_UID: case IMAP_FETCH_MODSEQ: case IMAP_FETCH_EMAILID:
		case IMAP_FETCH_THREADID: case IMAP_FETCH_SAVEDATE:
			break;
		default:
			return true;
		}
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
 * lines) and the empty line. */
static int
header_filter(const char *h, size_t len, const struct imap_section *sec, struct buf *out)
{
	bool want_listed = sec->text == IMAP_SECTION_HEADER_FIELDS;
	size_t pos = 0;

	while (pos < len) {
		size_t start = pos, end;

		if (h[pos] == '\r' || h[pos] == '\n')
			break;	/* the empty line */
		do {
			const char *nl = memchr(h + pos, '\n', len - pos);

			pos = nl ? (size_t)(nl - h) + 1 : len;
		} while (pos < len && (h[pos] == ' ' || h[pos] == '\t'));
		end = pos;
		if (field_listed(h + start, end - start, sec) == want_listed &&
		    buf_append(out, h + start, end - start) < 0)
			return -1;
	}
	return buf_append_str(out, "\r\n");
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

/* write_section() for BINARY of a part whose encoding is unknown. */
#define FETCH_UNKNOWN_CTE (-2)

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
		if (a->type == IMAP_FETCH_BINARY || a->type == IMAP_FETCH_BINARY_SIZE) {
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
	if (a->type == IMAP_FETCH_BINARY_SIZE) {
		ret = buf_printf(out, "%zu", len);
	} else {
		if (a->partial) {
			size_t o = a->offset < len ? (size_t)a->offset : len;
			size_t c = len - o;

			if (a->count < c)
				c = (size_t)a->count;
			p += o;
			len = c;
		}
		ret = imap_write_literal(out, p ? p : "", len);
	}
	buf_free(&tmp);
	return ret;
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

	if (buf_printf(out, "%s ", a->reply_name) < 0)
		return -1;
	switch (a->type) {
	case IMAP_FETCH_FLAGS:
		return imap_flags_write(s, out, m->flags, m->keywords);
	case IMAP_FETCH_UID:
		return buf_printf(out, "%u", m->uid);
	case IMAP_FETCH_MODSEQ:
		return buf_printf(out, "(%llu)", (unsigned long long)m->modseq);
	case IMAP_FETCH_INTERNALDATE:
		return imap_write_datetime(out, (time_t)sm->internal_date, 0);
	case IMAP_FETCH_RFC822_SIZE:
		return buf_printf(out, "%llu", (unsigned long long)sm->size);
	case IMAP_FETCH_ENVELOPE:
		return mime_imap_envelope(mm, 0, out, mflags);
	case IMAP_FETCH_BODY:
		return mime_imap_bodystructure(mm, 0, false, out, mflags);
	case IMAP_FETCH_BODYSTRUCTURE:
		return mime_imap_bodystructure(mm, 0, true, out, mflags);
	case IMAP_FETCH_RFC822:
		return imap_write_literal(out, mm->data, mm->len);
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

/* Sets \Seen on a message a body was read from. */
static void
mark_seen(struct imap_session *s, struct imap_msg *m)
{
	const struct store_uid_range r = { m->uid, m->uid };
	const struct store_uidset set = { &r, 1 };
	const struct store_flag_change ch = { .op = STORE_FLAGS_ADD, .flags = STORE_FLAG_SEEN };
	struct yj_err err;
	uint64_t modseq = 0;

	if (store_msg_store_flags(s->store, s->mb.id, &set, &ch, NULL, NULL, NULL, &modseq,
				  &err) < 0) {
		log_error("imap: session=%s set \\Seen: %s", s->ctx->id, err.msg);
		return;
	}
	m->flags |= STORE_FLAG_SEEN;
	if (modseq != 0) {
		m->modseq = modseq;
		if (s->seen_modseq + 1 == modseq)
			s->seen_modseq = modseq;
	}
}

static int
fetch_one(struct imap_session *s, struct imap_cmd *cmd, size_t i, bool need_body, bool set_seen)
{
	struct imap_msg *m = &s->msgs[i];
	struct store_msg sm;
	struct mime_msg mm = { 0 };
	struct buf body, out;
	bool flags_listed = false, uid_listed = false, seen_now = false;
	int ok = 1;

	buf_init(&body, 1);
	if (need_body) {
		if (imap_msg_load(s, m->uid, &body, &sm) < 0) {
			buf_free(&body);
			return 0;	/* expunged meanwhile: nothing to say */
		}
		mime_parse(&mm, body.data ? body.data : "", body.len);
	} else if (store_msg_get(s->store, s->mb.id, m->uid, &sm) != 1) {
		return 0;
	}
	if (set_seen && !s->readonly && !(m->flags & STORE_FLAG_SEEN)) {
		mark_seen(s, m);
		seen_now = true;
	}
	buf_init(&out, (size_t)sm.size + IMAP_RESPONSE_MAX);
	ok = buf_printf(&out, "* %zu FETCH (", i + 1) > 0;
	for (size_t k = 0; ok && k < cmd->fetch.count; k++) {
		const struct imap_fetch_att *a = &cmd->fetch.atts[k];

		flags_listed |= a->type == IMAP_FETCH_FLAGS;
		uid_listed |= a->type == IMAP_FETCH_UID;
		ok = k == 0 || buf_append_str(&out, " ") > 0;
		if (ok) {
			int r = write_att(s, m, &sm, &mm, a, &out);

			if (r == FETCH_UNKNOWN_CTE) {
				buf_free(&out);
				mime_free(&mm);
				buf_free(&body);
				return FETCH_UNKNOWN_CTE;
			}
			ok = r > 0;
		}
	}
	if (ok && cmd->uid && !uid_listed)
		ok = buf_printf(&out, " UID %u", m->uid) > 0;
	if (ok && seen_now && !flags_listed)
		ok = buf_append_str(&out, " FLAGS ") > 0 &&
		     imap_flags_write(s, &out, m->flags, m->keywords) > 0;
	if (ok && s->condstore && cmd->fetch.changedsince_set) {
		bool listed = false;

		for (size_t k = 0; k < cmd->fetch.count; k++)
			listed |= cmd->fetch.atts[k].type == IMAP_FETCH_MODSEQ;
		if (!listed)
			ok = buf_printf(&out, " MODSEQ (%llu)", (unsigned long long)m->modseq) > 0;
	}
	ok = ok && buf_append_str(&out, ")\r\n") > 0;
	if (ok)
		imap_send_buf(s, &out);
	buf_free(&out);
	mime_free(&mm);
	buf_free(&body);
	return ok ? 1 : -1;
}

int
imap_cmd_fetch(struct imap_session *s, struct imap_cmd *cmd)
{
	bool need_body = fetch_needs_body(&cmd->fetch), set_seen = false;
	size_t *idx, n;

	if (cmd->fetch.changedsince_set)
		s->condstore = true;
	for (size_t k = 0; k < cmd->fetch.count; k++) {
		set_seen |= fetch_sets_seen(&cmd->fetch.atts[k]);
		if (cmd->fetch.atts[k].type == IMAP_FETCH_MODSEQ)
			s->condstore = true;
	}
	if (cmd->fetch.vanished && cmd->fetch.changedsince_set && s->qresync)
		imap_vanished_earlier(s, cmd->fetch.changedsince, &cmd->set);
	n = imap_set_resolve(s, &cmd->set, cmd->uid, &idx);
	for (size_t i = 0; i < n; i++) {
		if (cmd->fetch.changedsince_set && s->msgs[idx[i]].modseq <= cmd->fetch.changedsince)
			continue;
		int r = fetch_one(s, cmd, idx[i], need_body, set_seen);

		if (r < 0) {
			free(idx);
			imap_tagged(s, r == FETCH_UNKNOWN_CTE
					       ? "NO [UNKNOWN-CTE] The part's encoding is unknown"
					       : "NO [LIMIT] Response too large");
			return 1;
		}
	}
	free(idx);
	(void)imap_sync(s, false);
	imap_tagged(s, "OK %sFETCH completed", cmd->uid ? "UID " : "");
	return 1;
}
