/* dkim_canon.c - canonicalization of header fields and the body hash. */
#include <string.h>

#include "mailauth/dkim_canon.h"

int
dkim_body_init(struct dkim_body *b, enum dkim_canon canon, bool limited,
	       unsigned long long limit, bool sha1)
{
	memset(b, 0, sizeof(*b));
	b->canon = canon;
	b->limited = limited;
	b->limit = limit;
	b->md = EVP_MD_CTX_new();
	if (b->md == NULL || EVP_DigestInit_ex(b->md, sha1 ? EVP_sha1() : EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(b->md);
		b->md = NULL;
		return -1;
	}
	return 1;
}

static void
flush(struct dkim_body *b)
{
	if (b->out_len > 0)
		EVP_DigestUpdate(b->md, b->out, b->out_len);
	b->out_len = 0;
}

/* One byte of canonical body: counted always, hashed within l=. */
static void
emit(struct dkim_body *b, unsigned char c)
{
	b->total++;
	if (b->limited && b->hashed >= b->limit)
		return;
	b->hashed++;
	if (b->out_len == sizeof(b->out))
		flush(b);
	b->out[b->out_len++] = c;
}

/* Text follows: the held-back line ends were not trailing after all. */
static void
emit_text(struct dkim_body *b, unsigned char c)
{
	for (; b->empty_lines > 0; b->empty_lines--) {
		emit(b, '\r');
		emit(b, '\n');
	}
	if (b->wsp) {
		emit(b, ' ');
		b->wsp = false;
	}
	emit(b, c);
	b->any = true;
}

static void
body_byte(struct dkim_body *b, unsigned char c)
{
	if (b->cr) {
		b->cr = false;
		if (c == '\n') {
			b->wsp = false;	/* relaxed: trailing WSP goes */
			b->empty_lines++;
			return;
		}
		emit_text(b, '\r');
	}
	if (c == '\r') {
		b->cr = true;
		return;
	}
	if (b->canon == DKIM_CANON_RELAXED && (c == ' ' || c == '\t')) {
		b->wsp = true;
		return;
	}
	emit_text(b, c);
}

/* Bytes that canonicalize to themselves wherever they stand: anything
 * but CR and, in relaxed, WSP; in relaxed a single SP between two such
 * bytes too. */
static size_t
plain_run(const struct dkim_body *b, const char *p, size_t len)
{
	bool relaxed = b->canon == DKIM_CANON_RELAXED;
	size_t i = 0;

	while (i < len) {
		char c = p[i];
		if (c == '\r')
			break;
		if (relaxed && (c == ' ' || c == '\t')) {
			if (c == '\t' || i == 0 || i + 1 >= len || p[i + 1] == ' ' ||
			    p[i + 1] == '\t' || p[i + 1] == '\r')
				break;
		}
		i++;
	}
	return i;
}

/* A run of plain bytes: counted, and hashed within l=, in bulk. */
static void
emit_run(struct dkim_body *b, const char *p, size_t n)
{
	size_t take = n;

	b->total += n;
	b->any = true;
	if (b->limited)
		take = b->limit - b->hashed < n ? (size_t)(b->limit - b->hashed) : n;
	b->hashed += take;
	while (take > 0) {
		size_t room = sizeof(b->out) - b->out_len, k = take < room ? take : room;
		memcpy(b->out + b->out_len, p, k);
		b->out_len += k;
		p += k;
		take -= k;
		if (b->out_len == sizeof(b->out))
			flush(b);
	}
}

void
dkim_body_update(struct dkim_body *b, const char *data, size_t len)
{
	size_t i = 0;

	while (i < len) {
		/* Fast path: nothing held back, a run of plain bytes. */
		if (!b->cr && !b->wsp && b->empty_lines == 0) {
			size_t n = plain_run(b, data + i, len - i);
			if (n > 0) {
				emit_run(b, data + i, n);
				i += n;
				continue;
			}
		}
		body_byte(b, (unsigned char)data[i++]);
	}
}

size_t
dkim_body_final(struct dkim_body *b, unsigned char hash[32])
{
	unsigned int n = 0;

	if (b->cr) {
		b->cr = false;
		emit_text(b, '\r');
	}
	b->wsp = false;
	/* One CRLF ends the last line; an empty body is CRLF in simple
	 * and nothing in relaxed (RFC 6376 3.4.3, 3.4.4). */
	if (b->any || b->canon == DKIM_CANON_SIMPLE) {
		emit(b, '\r');
		emit(b, '\n');
	}
	flush(b);
	EVP_DigestFinal_ex(b->md, hash, &n);
	return n;
}

void
dkim_body_free(struct dkim_body *b)
{
	EVP_MD_CTX_free(b->md);
	b->md = NULL;
}

static bool
is_wsp_or_eol(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Relaxed: lower-case name, no WSP around ':', the value unfolded with
 * WSP runs made one SP and none at either end. */
static int
relaxed_header(struct buf *out, const char *f, size_t len)
{
	const char *colon = memchr(f, ':', len);
	size_t nend, i;
	bool space = false, started = false;

	if (colon == NULL)
		return buf_append(out, f, len);
	nend = (size_t)(colon - f);
	while (nend > 0 && (f[nend - 1] == ' ' || f[nend - 1] == '\t'))
		nend--;
	for (i = 0; i < nend; i++) {
		char c = f[i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (buf_append(out, &c, 1) < 0)
			return -1;
	}
	if (buf_append(out, ":", 1) < 0)
		return -1;
	for (i = (size_t)(colon - f) + 1; i < len; i++) {
		if (is_wsp_or_eol(f[i])) {
			space = started;
			continue;
		}
		if (space && buf_append(out, " ", 1) < 0)
			return -1;
		if (buf_append(out, &f[i], 1) < 0)
			return -1;
		space = false;
		started = true;
	}
	return 1;
}

int
dkim_canon_header(struct buf *out, enum dkim_canon canon, const char *field,
		  size_t len, bool crlf)
{
	if (len >= 2 && field[len - 2] == '\r' && field[len - 1] == '\n')
		len -= 2;
	if (canon == DKIM_CANON_SIMPLE) {
		if (buf_append(out, field, len) < 0)
			return -1;
	} else if (relaxed_header(out, field, len) < 0) {
		return -1;
	}
	return crlf ? buf_append(out, "\r\n", 2) : 1;
}

static int
one_canon(const char *s, size_t len, enum dkim_canon *c)
{
	if (len == 6 && memcmp(s, "simple", 6) == 0)
		*c = DKIM_CANON_SIMPLE;
	else if (len == 7 && memcmp(s, "relaxed", 7) == 0)
		*c = DKIM_CANON_RELAXED;
	else
		return -1;
	return 1;
}

int
dkim_canon_parse(const char *s, size_t len, enum dkim_canon *hdr, enum dkim_canon *body)
{
	const char *slash = memchr(s, '/', len);

	*body = DKIM_CANON_SIMPLE;
	if (slash == NULL)
		return one_canon(s, len, hdr);
	if (one_canon(s, (size_t)(slash - s), hdr) < 0)
		return -1;
	return one_canon(slash + 1, len - (size_t)(slash - s) - 1, body);
}
