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
	bool used;
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

/* Reads "; name=value" pairs into raw. Returns how many. */
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
			/* Not a parameter: skip to the next ';'. */
			while (!mime_lex_eof(lx) && mime_lex_peek(lx) != ';')
				lx->pos++;
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
		raw[n].used = false;
		n++;
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

/* Joins the sections of raw[first]'s name (0, 1, 2... while present). */
static void
params_join(struct mime_ctype *ct, const char *p, struct raw_param *raw, size_t n, size_t first)
{
	const char *name = p + raw[first].name_off;
	size_t nlen = raw[first].name_len;
	struct mime_param *mp;

	if (param_add(ct, name, nlen, raw[first].extended) < 0)
		return;
	mp = &ct->params[ct->nparams - 1];
	for (int sec = 0; sec <= MIME_SECTION_MAX; sec++) {
		size_t i;

		for (i = 0; i < n; i++)
			if (!raw[i].used && raw[i].section == sec && raw[i].name_len == nlen &&
			    strncasecmp(p + raw[i].name_off, name, nlen) == 0)
				break;
		if (i == n)
			break;
		raw[i].used = true;
		mime_buf_add(&mp->value, raw[i].value.data, raw[i].value.len);
	}
}

/* Plain parameters in order, then each continued one joined. */
static void
params_store(struct mime_ctype *ct, const char *p, struct raw_param *raw, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (raw[i].section >= 0)
			continue;
		raw[i].used = true;
		if (param_add(ct, p + raw[i].name_off, raw[i].name_len, raw[i].extended) == 0)
			mime_buf_add(&ct->params[ct->nparams - 1].value, raw[i].value.data,
					 raw[i].value.len);
	}
	for (size_t i = 0; i < n; i++)
		if (!raw[i].used && raw[i].section == 0)
			params_join(ct, p, raw, n, i);
	for (size_t i = 0; i < n; i++)
		buf_free(&raw[i].value);
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
