#include "mime/mime_imap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/util.h"
#include "mime/mime_addr.h"
#include "mime/mime_ctype.h"
#include "mime/mime_decode.h"
#include "mime/mime_header.h"
#include "mime/mime_lex.h"

/* Can p[0..len) go out as a quoted string? */
static bool
quotable(const char *p, size_t len, unsigned flags)
{
	bool eight = false;

	if (len > MIME_IMAP_QUOTED_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == '\0' || c == '\r' || c == '\n')
			return false;
		if (c >= 0x80)
			eight = true;
	}
	return !eight || ((flags & MIME_IMAP_UTF8) && util_utf8_valid(p, len));
}

/* All or nothing: a failed append leaves the buffer as it was. */
static int
undo(struct buf *out, size_t mark)
{
	buf_truncate(out, mark);
	return -1;
}

static int
put_quoted(struct buf *out, const char *p, size_t len)
{
	size_t mark = out->len;

	if (buf_append(out, "\"", 1) < 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if ((p[i] == '"' || p[i] == '\\') && buf_append(out, "\\", 1) < 0)
			return undo(out, mark);
		if (buf_append(out, p + i, 1) < 0)
			return undo(out, mark);
	}
	if (buf_append(out, "\"", 1) < 0)
		return undo(out, mark);
	return 1;
}

void
mime_imap_nul_mask(char *p, size_t len)
{
	char *nul;

	while ((nul = memchr(p, '\0', len)) != NULL) {
		*nul = (char)MIME_IMAP_NUL_MASK;
		len -= (size_t)(nul - p) + 1;
		p = nul + 1;
	}
}

int
mime_imap_literal(struct buf *out, const char *p, size_t len)
{
	size_t mark = out->len;

	if (buf_printf(out, "{%zu}\r\n", len) < 0)
		return -1;
	if (buf_append(out, p, len) < 0)
		return undo(out, mark);
	mime_imap_nul_mask(out->data + out->len - len, len);
	return 1;
}

int
mime_imap_literal8(struct buf *out, const char *p, size_t len)
{
	size_t mark = out->len;
	bool nul = memchr(p, '\0', len) != NULL;

	if (buf_printf(out, "%s{%zu}\r\n", nul ? "~" : "", len) < 0)
		return -1;
	if (buf_append(out, p, len) < 0)
		return undo(out, mark);
	return 1;
}

int
mime_imap_string(struct buf *out, const char *p, size_t len, unsigned flags)
{
	if (quotable(p, len, flags))
		return put_quoted(out, p, len);
	return mime_imap_literal(out, p, len);
}

int
mime_imap_nstring(struct buf *out, const char *p, size_t len, unsigned flags)
{
	if (p == NULL)
		return buf_append_str(out, "NIL");
	return mime_imap_string(out, p, len, flags);
}

static int
put(struct buf *out, const char *s)
{
	return buf_append_str(out, s);
}

static int
put_buf(struct buf *out, const struct buf *b, unsigned flags)
{
	return mime_imap_nstring(out, b->data, b->len, flags);
}

/* The unfolded value of the field name, as an nstring: of the last
 * such field if last is set (ENVELOPE takes the last Date: of a message
 * that has two, as Dovecot does), else of the first. */
static int
put_field_at(struct buf *out, const struct mime_hdr_index *ix, enum mime_hdr_known name,
	     bool last, unsigned flags)
{
	struct mime_field f;
	struct buf v;
	int rc;

	if (!mime_hdr_index_get(ix, name, last, &f))
		return put(out, "NIL");
	buf_init(&v, MIME_FIELD_VALUE_MAX);
	mime_field_unfold(ix->data, &f, &v);
	/* A folded value goes out as a literal, as Dovecot sends it: either
	 * form is valid IMAP, and the same bytes keep clients' caches equal. */
	if (memchr(ix->data + f.value_off, '\n', f.value_len) != NULL)
		rc = mime_imap_literal(out, v.data, v.len);
	else
		rc = mime_imap_nstring(out, v.data, v.len, flags);
	buf_free(&v);
	return rc;
}

static int
put_field(struct buf *out, const struct mime_hdr_index *ix, enum mime_hdr_known name,
	  unsigned flags)
{
	return put_field_at(out, ix, name, false, flags);
}

static int
put_env_field(struct buf *out, const struct mime_hdr_index *ix, enum mime_hdr_known name,
	      unsigned flags)
{
	return put_field_at(out, ix, name, true, flags);
}

/* ("name" adl "mailbox" "host") for one entry. */
static int
put_addr(struct buf *out, const struct mime_addr *a, unsigned flags)
{
	int rc;

	if (a->kind == MIME_ADDR_GROUP_END)
		return put(out, "(NIL NIL NIL NIL)");
	if (a->kind == MIME_ADDR_GROUP_START) {
		rc = put(out, "(NIL NIL ");
		rc = rc < 0 ? rc : put_buf(out, &a->name, flags);
		return rc < 0 ? rc : put(out, " NIL)");
	}
	rc = put(out, "(");
	rc = rc < 0 ? rc : (a->has_name ? put_buf(out, &a->name, flags) : put(out, "NIL"));
	rc = rc < 0 ? rc : put(out, " ");
	rc = rc < 0 ? rc : (a->has_route ? put_buf(out, &a->route, flags) : put(out, "NIL"));
	rc = rc < 0 ? rc : put(out, " ");
	if (rc >= 0)
		rc = a->mailbox.len ? put_buf(out, &a->mailbox, flags) : put(out, "\"MISSING_MAILBOX\"");
	rc = rc < 0 ? rc : put(out, " ");
	if (rc >= 0)
		rc = a->domain.len ? put_buf(out, &a->domain, flags) : put(out, "\"MISSING_DOMAIN\"");
	return rc < 0 ? rc : put(out, ")");
}

/* Parses every field called name (k in the index) into one address
 * list (a message with two Cc: fields has both read); false if there
 * is none or it names no one. */
static bool
addr_field(const struct mime_msg *m, const struct mime_part *p, const struct mime_hdr_index *ix,
	   enum mime_hdr_known k, const char *name, struct mime_addr_list *list)
{
	struct mime_hdr_iter it;
	struct mime_field f;

	list->v = NULL;
	list->n = 0;
	if (ix->count[k] == 1 && mime_hdr_index_get(ix, k, false, &f)) {
		mime_addr_parse(m->data + f.value_off, f.value_len, list);
	} else if (ix->count[k] > 1) {
		mime_hdr_iter_init(&it, m->data, p->hdr_off, p->hdr_off + p->hdr_len);
		while (mime_hdr_next(&it, &f))
			if (mime_field_is(m->data, &f, name))
				mime_addr_parse(m->data + f.value_off, f.value_len, list);
	}
	if (list->n == 0) {
		mime_addr_list_free(list);
		return false;
	}
	return true;
}

static int
put_addr_list(struct buf *out, const struct mime_addr_list *list, unsigned flags)
{
	int rc = put(out, "(");

	for (size_t i = 0; i < list->n && rc >= 0; i++)
		rc = put_addr(out, &list->v[i], flags);
	return rc < 0 ? rc : put(out, ")");
}

/* An address field; From: stands in for Sender: and Reply-To: when
 * they are absent or name no one. */
static int
put_addr_field(struct buf *out, const struct mime_msg *m, const struct mime_part *p,
	       const struct mime_hdr_index *ix, enum mime_hdr_known k, const char *name,
	       unsigned flags)
{
	bool from_stands_in = k == MIME_HDR_SENDER || k == MIME_HDR_REPLY_TO;
	struct mime_addr_list list;
	int rc;

	if (!addr_field(m, p, ix, k, name, &list) &&
	    (!from_stands_in || !addr_field(m, p, ix, MIME_HDR_FROM, "From", &list)))
		return put(out, "NIL");
	rc = put_addr_list(out, &list, flags);
	mime_addr_list_free(&list);
	return rc;
}

int
mime_imap_envelope(const struct mime_msg *m, int part, struct buf *out, unsigned flags)
{
	const struct mime_part *p = &m->parts[part];
	const struct mime_hdr_index *ix = mime_part_fields(m, part);
	int rc = put(out, "(");

	rc = rc < 0 ? rc : put_env_field(out, ix, MIME_HDR_DATE, flags);
	rc = rc < 0 ? rc : put(out, " ");
	rc = rc < 0 ? rc : put_env_field(out, ix, MIME_HDR_SUBJECT, flags);
	rc = rc < 0 ? rc : put(out, " ");
	rc = rc < 0 ? rc : put_addr_field(out, m, p, ix, MIME_HDR_FROM, "From", flags);
	rc = rc < 0 ? rc : put(out, " ");
	rc = rc < 0 ? rc : put_addr_field(out, m, p, ix, MIME_HDR_SENDER, "Sender", flags);
	rc = rc < 0 ? rc : put(out, " ");
	rc = rc < 0 ? rc : put_addr_field(out, m, p, ix, MIME_HDR_REPLY_TO, "Reply-To", flags);
	rc = rc < 0 ? rc : put(out, " ");
	rc = rc < 0 ? rc : put_addr_field(out, m, p, ix, MIME_HDR_TO, "To", flags);
	rc = rc < 0 ? rc : put(out, " ");
	rc = rc < 0 ? rc : put_addr_field(out, m, p, ix, MIME_HDR_CC, "Cc", flags);
	rc = rc < 0 ? rc : put(out, " ");
	rc = rc < 0 ? rc : put_addr_field(out, m, p, ix, MIME_HDR_BCC, "Bcc", flags);
	rc = rc < 0 ? rc : put(out, " ");
	rc = rc < 0 ? rc : put_env_field(out, ix, MIME_HDR_IN_REPLY_TO, flags);
	rc = rc < 0 ? rc : put(out, " ");
	rc = rc < 0 ? rc : put_env_field(out, ix, MIME_HDR_MESSAGE_ID, flags);
	return rc < 0 ? rc : put(out, ")");
}

/* ("name" "value" ...) or NIL. */
static int
put_params(struct buf *out, const struct mime_ctype *ct, bool add_charset, unsigned flags)
{
	int rc;

	if (ct->nparams == 0 && !add_charset)
		return put(out, "NIL");
	rc = put(out, "(");
	for (size_t i = 0; i < ct->nparams && rc >= 0; i++) {
		rc = i > 0 ? put(out, " ") : 1;
		rc = rc < 0 ? rc : put_buf(out, &ct->params[i].name, flags);
		rc = rc < 0 ? rc : put(out, " ");
		rc = rc < 0 ? rc : put_buf(out, &ct->params[i].value, flags);
	}
	if (rc >= 0 && add_charset)
		rc = put(out, ct->nparams > 0 ? " \"charset\" \"us-ascii\"" : "\"charset\" \"us-ascii\"");
	return rc < 0 ? rc : put(out, ")");
}

/* A part's Content-Type, with RFC 2045 defaults filled in. */
struct part_ctype {
	struct mime_ctype ct;
};

static void
ctype_set(struct mime_ctype *ct, const char *type, const char *subtype)
{
	mime_ctype_free(ct);
	mime_ctype_init(ct);
	mime_buf_add(&ct->type, type, strlen(type));
	mime_buf_add(&ct->subtype, subtype, strlen(subtype));
}

/* message/rfc822 goes out in lower case, as Dovecot sends it. */
static void
ctype_lower(struct mime_ctype *ct)
{
	util_ascii_lower(ct->type.data);
	util_ascii_lower(ct->subtype.data);
}

/* Would this type need children the parser did not make (nesting too
 * deep, no boundary)? Such a part is reported as opaque data, since
 * IMAP's syntax gives message/rfc822 an envelope and body. */
static bool
container_type(const struct mime_ctype *ct)
{
	return strcasecmp(ct->type.data, "message") == 0 &&
	       (strcasecmp(ct->subtype.data, "rfc822") == 0 ||
		strcasecmp(ct->subtype.data, "global") == 0);
}

static void
ctype_read(const struct mime_msg *m, int part, const struct mime_hdr_index *ix,
	   struct part_ctype *pc)
{
	const struct mime_part *p = &m->parts[part];
	struct mime_field f;

	mime_ctype_init(&pc->ct);
	if (mime_hdr_index_get(ix, MIME_HDR_CONTENT_TYPE, false, &f) &&
	    mime_ctype_parse(&pc->ct, m->data + f.value_off, f.value_len, true) > 0) {
		if (p->kind == MIME_LEAF && container_type(&pc->ct))
			ctype_set(&pc->ct, "application", "octet-stream");
		else if (p->kind == MIME_MESSAGE)
			ctype_lower(&pc->ct);
		return;
	}
	/* Without a valid Content-Type the tree already chose the default:
	 * message/rfc822 inside multipart/digest, else text/plain. */
	if (p->kind == MIME_MESSAGE) {
		ctype_set(&pc->ct, "message", "rfc822");
		return;
	}
	ctype_set(&pc->ct, "text", "plain");
}

/* Content-Disposition: ("type" (params)) or NIL. */
static int
put_disposition(struct buf *out, const struct mime_hdr_index *ix, unsigned flags)
{
	struct mime_field f;
	struct mime_ctype d;
	int rc;

	if (!mime_hdr_index_get(ix, MIME_HDR_CONTENT_DISPOSITION, false, &f))
		return put(out, "NIL");
	mime_ctype_init(&d);
	if (mime_ctype_parse(&d, ix->data + f.value_off, f.value_len, false) <= 0 && d.type.len == 0) {
		mime_ctype_free(&d);
		return put(out, "NIL");
	}
	rc = put(out, "(");
	rc = rc < 0 ? rc : put_buf(out, &d.type, flags);
	rc = rc < 0 ? rc : put(out, " ");
	rc = rc < 0 ? rc : put_params(out, &d, false, flags);
	mime_ctype_free(&d);
	return rc < 0 ? rc : put(out, ")");
}

/* Content-Language: NIL or ("tag" ...); a list even for one tag, as
 * Dovecot sends it (RFC 3501 allows both). */
static int
put_language(struct buf *out, const struct mime_hdr_index *ix, unsigned flags)
{
	struct mime_field f;
	struct mime_ctype tags;	/* only its params array is used, as a list */
	struct mime_lex lx;
	int rc = 1;

	if (!mime_hdr_index_get(ix, MIME_HDR_CONTENT_LANGUAGE, false, &f))
		return put(out, "NIL");
	mime_ctype_init(&tags);
	mime_lex_init(&lx, ix->data + f.value_off, f.value_len);
	while (!mime_lex_eof(&lx) && tags.nparams < MIME_PARAMS_MAX) {
		struct mime_param *t = &tags.params[tags.nparams];

		mime_lex_cfws(&lx, NULL);
		buf_init(&t->name, MIME_TOKEN_MAX);
		buf_init(&t->value, 0);
		tags.nparams++;
		if (mime_lex_token(&lx, &t->name) == 0) {
			tags.nparams--;
			buf_free(&t->name);
			if (!mime_lex_eof(&lx))
				lx.pos++;
		}
	}
	if (tags.nparams == 0)
		rc = put(out, "NIL");
	else {
		rc = put(out, "(");
		for (size_t i = 0; i < tags.nparams && rc >= 0; i++) {
			rc = i > 0 ? put(out, " ") : 1;
			rc = rc < 0 ? rc : put_buf(out, &tags.params[i].name, flags);
		}
		rc = rc < 0 ? rc : put(out, ")");
	}
	mime_ctype_free(&tags);
	return rc;
}

/* SP md5 SP dsp SP lang SP loc (extension data of a non-multipart). */
static int
put_ext_tail(struct buf *out, const struct mime_hdr_index *ix, unsigned flags)
{
	int rc = put(out, " ");

	rc = rc < 0 ? rc : put_disposition(out, ix, flags);
	rc = rc < 0 ? rc : put(out, " ");
	rc = rc < 0 ? rc : put_language(out, ix, flags);
	rc = rc < 0 ? rc : put(out, " ");
	return rc < 0 ? rc : put_field(out, ix, MIME_HDR_CONTENT_LOCATION, flags);
}

#define EMPTY_PART "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0"

static int put_body(struct buf *out, const struct mime_msg *m, int part, bool ext,
		    unsigned flags);

static int
put_multipart(struct buf *out, const struct mime_msg *m, int part,
	      const struct mime_hdr_index *ix, const struct mime_ctype *ct, bool ext,
	      unsigned flags)
{
	const struct mime_part *p = &m->parts[part];
	int rc = put(out, "(");

	for (int c = p->first_child; c >= 0 && rc >= 0; c = m->parts[c].next)
		rc = put_body(out, m, c, ext, flags);
	/* IMAP's syntax needs at least one part (body-type-mpart). */
	if (p->first_child < 0 && rc >= 0)
		rc = put(out, ext ? EMPTY_PART " NIL NIL NIL NIL)" : EMPTY_PART ")");
	rc = rc < 0 ? rc : put(out, " ");
	rc = rc < 0 ? rc : put_buf(out, &ct->subtype, flags);
	if (ext && rc >= 0) {
		rc = put(out, " ");
		rc = rc < 0 ? rc : put_params(out, ct, false, flags);
		rc = rc < 0 ? rc : put_ext_tail(out, ix, flags);
	}
	return rc < 0 ? rc : put(out, ")");
}

/* Content-Transfer-Encoding as sent, or "7bit" when it is absent or
 * is no single token ("8 bit"): the RFC 2045 default stands. */
static int
put_encoding(struct buf *out, const struct mime_hdr_index *ix, unsigned flags)
{
	struct mime_field f;
	struct mime_lex lx;
	struct buf tok;
	int rc;

	if (!mime_hdr_index_get(ix, MIME_HDR_CONTENT_TRANSFER_ENCODING, false, &f))
		return put(out, "\"7bit\"");
	buf_init(&tok, MIME_TOKEN_MAX);
	mime_lex_init(&lx, ix->data + f.value_off, f.value_len);
	mime_lex_cfws(&lx, NULL);
	(void)mime_lex_token(&lx, &tok);
	mime_lex_cfws(&lx, NULL);
	rc = tok.len && mime_lex_eof(&lx) ? put_buf(out, &tok, flags) : put(out, "\"7bit\"");
	buf_free(&tok);
	return rc;
}

static int
put_leaf(struct buf *out, const struct mime_msg *m, int part, const struct mime_hdr_index *ix,
	 const struct part_ctype *pc, bool ext, unsigned flags)
{
	const struct mime_part *p = &m->parts[part];
	bool text = strcasecmp(pc->ct.type.data, "text") == 0;
	int rc = put(out, "(");

	rc = rc < 0 ? rc : put_buf(out, &pc->ct.type, flags);
	rc = rc < 0 ? rc : put(out, " ");
	rc = rc < 0 ? rc : put_buf(out, &pc->ct.subtype, flags);
	rc = rc < 0 ? rc : put(out, " ");
	rc = rc < 0 ? rc : put_params(out, &pc->ct,
				      text && mime_ctype_param(&pc->ct, "charset") == NULL, flags);
	rc = rc < 0 ? rc : put(out, " ");
	rc = rc < 0 ? rc : put_field(out, ix, MIME_HDR_CONTENT_ID, flags);
	rc = rc < 0 ? rc : put(out, " ");
	rc = rc < 0 ? rc : put_field(out, ix, MIME_HDR_CONTENT_DESCRIPTION, flags);
	rc = rc < 0 ? rc : put(out, " ");
	rc = rc < 0 ? rc : put_encoding(out, ix, flags);
	rc = rc < 0 ? rc : buf_printf(out, " %zu", p->body_len);
	if (rc >= 0 && p->kind == MIME_MESSAGE && p->first_child >= 0) {
		rc = put(out, " ");
		rc = rc < 0 ? rc : mime_imap_envelope(m, p->first_child, out, flags);
		rc = rc < 0 ? rc : put(out, " ");
		rc = rc < 0 ? rc : put_body(out, m, p->first_child, ext, flags);
		rc = rc < 0 ? rc : buf_printf(out, " %zu", p->body_lines);
	} else if (rc >= 0 && text) {
		rc = buf_printf(out, " %zu", p->body_lines);
	}
	if (ext && rc >= 0) {
		rc = put(out, " ");
		rc = rc < 0 ? rc : put_field(out, ix, MIME_HDR_CONTENT_MD5, flags);
		rc = rc < 0 ? rc : put_ext_tail(out, ix, flags);
	}
	return rc < 0 ? rc : put(out, ")");
}

static int
put_body(struct buf *out, const struct mime_msg *m, int part, bool ext, unsigned flags)
{
	const struct mime_hdr_index *ix = mime_part_fields(m, part);
	struct part_ctype pc;
	int rc;

	ctype_read(m, part, ix, &pc);
	if (m->parts[part].kind == MIME_MULTIPART)
		rc = put_multipart(out, m, part, ix, &pc.ct, ext, flags);
	else
		rc = put_leaf(out, m, part, ix, &pc, ext, flags);
	mime_ctype_free(&pc.ct);
	return rc;
}

int
mime_imap_bodystructure(const struct mime_msg *m, int part, bool extended, struct buf *out,
			unsigned flags)
{
	if (part < 0 || (size_t)part >= m->nparts)
		return -1;
	return put_body(out, m, part, extended, flags);
}

int
mime_binary_decode(const struct mime_msg *m, int part, struct buf *out)
{
	const struct mime_part *p = &m->parts[part];
	struct mime_field f;
	enum mime_cte cte = MIME_CTE_IDENTITY;

	if (p->kind == MIME_LEAF &&
	    mime_hdr_find(m->data, p->hdr_off, p->hdr_off + p->hdr_len, "Content-Transfer-Encoding", &f))
		cte = mime_cte_parse(m->data + f.value_off, f.value_len);
	return mime_body_decode(cte, m->data + p->body_off, p->body_len, out);
}

int
mime_binary_size(const struct mime_msg *m, int part, size_t *size_r)
{
	struct buf out;
	int rc;

	/* Decoding only shrinks, so the body's length bounds the result. */
	buf_init(&out, m->parts[part].body_len);
	rc = mime_binary_decode(m, part, &out);
	*size_r = out.len;
	buf_free(&out);
	return rc < 0 ? 0 : rc;
}
