#include "mime/mime_ctype.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mime/mime_charset.h"
#include "mime/mime_lex.h"

void
mime_ctype_init(struct mime_ctype *ct)
{
	buf_init(&ct->type, MIME_TOKEN_MAX);
	buf_init(&ct->subtype, MIME_TOKEN_MAX);
	ct->nparams = 0;
}

void
mime_ctype_free(struct mime_ctype *ct)
{
	size_t i;

	buf_free(&ct->type);
	buf_free(&ct->subtype);
	for (i = 0; i < ct->nparams; i++) {
		buf_free(&ct->params[i].name);
		buf_free(&ct->params[i].value);
	}
	ct->nparams = 0;
}

/* A parameter as it was sent, before continuations are joined. */
struct raw_param {
	size_t name_off, name_len;	/* into the value */
	struct buf value;
	int section;		/* -1: no "*N" */
	bool extended;		/* ends with '*' */
};

/* Splits "name*N*" into its base name length, section and extended flag. */
static void
param_name_split(const char *name, size_t len, struct raw_param *rp)
{
	size_t n = len;

	rp->section = -1;
	rp->extended = false;
	if (n > 1 && name[n - 1] == '*') {
		rp->extended = true;
		n--;
	}
	for (size_t i = n; i > 0; i--) {
		if (name[i - 1] == '*' && i < n) {
			char digits[8];
			size_t dl = n - i;

			if (dl >= sizeof(digits) || (dl > 1 && name[i] == '0'))
				break;
			memcpy(digits, name + i, dl);
			digits[dl] = '\0';
			if (strspn(digits, "0123456789") != dl || atoi(digits) > MIME_SECTION_MAX)
				break;
			rp->section = atoi(digits);
			n = i - 1;
			break;
		}
		if (name[i - 1] < '0' || name[i - 1] > '9')
			break;
	}
	rp->name_len = n;
	if (rp->section < 0 && rp->extended)
		rp->name_len = len - 1;
}

/* Skips to the next ';' outside quotes: the rest of a broken parameter. */
static void
skip_to_semicolon(struct mime_lex *lx)
{
	while (!mime_lex_eof(lx) && mime_lex_peek(lx) != ';') {
		if (mime_lex_peek(lx) == '"')
			mime_lex_quoted(lx, NULL);
		else if (mime_lex_peek(lx) == '(')
			mime_lex_cfws(lx, NULL);
		else
			lx->pos++;
	}
}

/* Reads "; name=value" pairs into raw. Returns how many. Anything after
 * a value but before the next ';' is dropped. */
static size_t
params_read(struct mime_lex *lx, struct raw_param *raw, size_t max)
{
	size_t n = 0;

	while (n < max) {
		struct mime_lex save;
		size_t nlen;

		mime_lex_cfws(lx, NULL);
		while (mime_lex_peek(lx) == ';') {
			lx->pos++;
			mime_lex_cfws(lx, NULL);
		}
		save = *lx;
		nlen = mime_lex_token(lx, NULL);
		if (nlen == 0)
			break;
		mime_lex_cfws(lx, NULL);
		if (mime_lex_peek(lx) != '=') {
			skip_to_semicolon(lx);
			continue;
		}
		lx->pos++;
		mime_lex_cfws(lx, NULL);
		raw[n].name_off = save.pos;
		buf_init(&raw[n].value, MIME_TOKEN_MAX);
		if (mime_lex_peek(lx) == '"')
			mime_lex_quoted(lx, &raw[n].value);
		else
			(void)mime_lex_token(lx, &raw[n].value);
		param_name_split(lx->p + save.pos, nlen, &raw[n]);
		n++;
		mime_lex_cfws(lx, NULL);
		skip_to_semicolon(lx);
	}
	return n;
}

static int
param_add(struct mime_ctype *ct, const char *name, size_t nlen, bool star)
{
	struct mime_param *mp;

	if (ct->nparams >= MIME_PARAMS_MAX)
		return -1;
	mp = &ct->params[ct->nparams++];
	buf_init(&mp->name, MIME_TOKEN_MAX);
	buf_init(&mp->value, MIME_TOKEN_MAX);
	if (buf_append(&mp->name, name, nlen) < 0 || (star && buf_append(&mp->name, "*", 1) < 0))
		return -1;
	return 0;
}

/* Orders RFC 2231 parameters by name, then section (qsort_r, with the
 * field value as its argument). */
static int
raw_cmp(const void *a, const void *b, void *arg)
{
	const char *base = arg;
	const struct raw_param *x = *(struct raw_param *const *)a;
	const struct raw_param *y = *(struct raw_param *const *)b;
	size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
	int c = strncasecmp(base + x->name_off, base + y->name_off, n);

	if (c != 0)
		return c;
	if (x->name_len != y->name_len)
		return x->name_len < y->name_len ? -1 : 1;
	return x->section - y->section;
}

static bool
same_name(const char *p, const struct raw_param *a, const struct raw_param *b)
{
	return a->name_len == b->name_len &&
	       strncasecmp(p + a->name_off, p + b->name_off, a->name_len) == 0;
}

/* Joins sorted[i..] that continue one name from section 0 on; returns
 * the index after them. */
static size_t
params_join(struct mime_ctype *ct, const char *p, struct raw_param **sorted, size_t n, size_t i)
{
	struct raw_param *first = sorted[i];
	int want = 0;

	if (param_add(ct, p + first->name_off, first->name_len, first->extended) < 0)
		return n;
	for (; i < n && same_name(p, sorted[i], first) && sorted[i]->section == want; i++, want++)
		mime_buf_add(&ct->params[ct->nparams - 1].value, sorted[i]->value.data,
			     sorted[i]->value.len);
	while (i < n && same_name(p, sorted[i], first))
		i++;
	return i;
}

/* Plain parameters in their order, then the RFC 2231 ones ("name*",
 * "name*0", ...) sorted by name with continuations joined, as Dovecot
 * lists them. Sections after a gap, or not starting at 0, are dropped. */
static void
params_store(struct mime_ctype *ct, const char *p, struct raw_param *raw, size_t n)
{
	struct raw_param *sorted[MIME_PARAMS_MAX];
	size_t ns = 0, i = 0;

	for (size_t k = 0; k < n; k++) {
		if (raw[k].section >= 0 || raw[k].extended) {
			sorted[ns++] = &raw[k];
			continue;
		}
		if (param_add(ct, p + raw[k].name_off, raw[k].name_len, false) == 0)
			mime_buf_add(&ct->params[ct->nparams - 1].value, raw[k].value.data,
				     raw[k].value.len);
	}
	qsort_r(sorted, ns, sizeof(*sorted), raw_cmp, (void *)p);
	while (i < ns) {
		if (sorted[i]->section < 0) {
			if (param_add(ct, p + sorted[i]->name_off, sorted[i]->name_len, true) == 0)
				mime_buf_add(&ct->params[ct->nparams - 1].value,
					     sorted[i]->value.data, sorted[i]->value.len);
			i++;
		} else if (sorted[i]->section == 0) {
			i = params_join(ct, p, sorted, ns, i);
		} else {
			size_t j = i;

			while (i < ns && same_name(p, sorted[j], sorted[i]))
				i++;
		}
	}
	for (size_t k = 0; k < n; k++)
		buf_free(&raw[k].value);
}

int
mime_ctype_parse(struct mime_ctype *ct, const char *p, size_t len, bool want_subtype)
{
	struct raw_param raw[MIME_PARAMS_MAX];
	struct mime_lex lx;
	int ok = 1;

	mime_lex_init(&lx, p, len);
	mime_lex_cfws(&lx, NULL);
	if (mime_lex_token(&lx, &ct->type) == 0)
		ok = 0;
	mime_lex_cfws(&lx, NULL);
	if (want_subtype) {
		if (mime_lex_peek(&lx) == '/') {
			lx.pos++;
			mime_lex_cfws(&lx, NULL);
			if (mime_lex_token(&lx, &ct->subtype) == 0)
				ok = 0;
		} else {
			ok = 0;
		}
	}
	mime_lex_cfws(&lx, NULL);
	if (mime_lex_peek(&lx) != ';' && !mime_lex_eof(&lx))
		ok = 0;
	params_store(ct, p, raw, params_read(&lx, raw, MIME_PARAMS_MAX));
	return ok;
}

const struct buf *
mime_ctype_param(const struct mime_ctype *ct, const char *name)
{
	for (size_t i = 0; i < ct->nparams; i++)
		if (strcasecmp(ct->params[i].name.data, name) == 0)
			return &ct->params[i].value;
	return NULL;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
mime_param_decode(const char *value, size_t len, struct buf *out)
{
	const char *q1 = memchr(value, '\'', len), *q2;
	char charset[64];
	struct buf raw;
	size_t start = out->len;
	int rc;

	q2 = q1 ? memchr(q1 + 1, '\'', len - (size_t)(q1 + 1 - value)) : NULL;
	if (q2 == NULL || (size_t)(q1 - value) >= sizeof(charset))
	{
		mime_buf_add(out, value, len);
		return -1;
	}
	memcpy(charset, value, (size_t)(q1 - value));
	charset[q1 - value] = '\0';
	buf_init(&raw, len);
	for (const char *s = q2 + 1; s < value + len; s++) {
		int hi, lo;

		if (*s == '%' && s + 2 < value + len &&
		    (hi = hexval(s[1])) >= 0 && (lo = hexval(s[2])) >= 0) {
			char c = (char)(hi << 4 | lo);

			mime_buf_add(&raw, &c, 1);
			s += 2;
		} else {
			mime_buf_add(&raw, s, 1);
		}
	}
	rc = mime_charset_to_utf8(charset[0] ? charset : "us-ascii", raw.data, raw.len, out);
	buf_free(&raw);
	if (rc < 0) {
		out->len = start;
		mime_buf_add(out, value, len);
	}
	return rc;
}
