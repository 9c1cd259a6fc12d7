/* dmarc_record.c - the DMARC policy record (RFC 7489 6.3, 6.4), read as
 * tolerantly as 6.3 asks: v=DMARC1 first, unknown tags and bad values of
 * optional tags ignored, a missing or bad p= replaced by p=none when a
 * valid rua= is present (6.6.3). */
#include "mailauth/dmarc.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define DMARC_TAG_MAX 32	/* a tag name we look at */
#define DMARC_RI_DEFAULT 86400

struct dmarc_tag {
	const char *name, *value;
	size_t name_len, value_len;
};

static bool
dmarc_wsp(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* The next "name = value" of a ';'-separated list, trimmed; *pos moves
 * past it. Returns false at the end. */
static bool
dmarc_next_tag(const char *s, size_t len, size_t *pos, struct dmarc_tag *t)
{
	size_t i = *pos, end, eq;

	while (i < len && (dmarc_wsp(s[i]) || s[i] == ';'))
		i++;
	if (i >= len)
		return false;
	for (end = i; end < len && s[end] != ';'; end++)
		;
	*pos = end;
	for (eq = i; eq < end && s[eq] != '='; eq++)
		;
	t->name = s + i;
	t->name_len = eq - i;
	while (t->name_len > 0 && dmarc_wsp(t->name[t->name_len - 1]))
		t->name_len--;
	if (eq == end) {
		t->value = s + end;
		t->value_len = 0;
		t->name_len = 0;	/* not a tag at all */
		return true;
	}
	t->value = s + eq + 1;
	t->value_len = end - eq - 1;
	while (t->value_len > 0 && dmarc_wsp(t->value[0])) {
		t->value++;
		t->value_len--;
	}
	while (t->value_len > 0 && dmarc_wsp(t->value[t->value_len - 1]))
		t->value_len--;
	return true;
}

static bool
dmarc_tag_is(const struct dmarc_tag *t, const char *name)
{
	return t->name_len == strlen(name) && strncmp(t->name, name, t->name_len) == 0;
}

static bool
dmarc_value_is(const struct dmarc_tag *t, const char *v)
{
	return t->value_len == strlen(v) && strncasecmp(t->value, v, t->value_len) == 0;
}

static bool
dmarc_parse_policy(const struct dmarc_tag *t, enum dmarc_policy *p)
{
	if (dmarc_value_is(t, "none"))
		*p = DMARC_P_NONE;
	else if (dmarc_value_is(t, "quarantine"))
		*p = DMARC_P_QUARANTINE;
	else if (dmarc_value_is(t, "reject"))
		*p = DMARC_P_REJECT;
	else
		return false;
	return true;
}

/* A decimal number of at most max; false if not one. */
static bool
dmarc_parse_uint(const char *s, size_t len, unsigned long max, unsigned long *v)
{
	unsigned long n = 0;

	if (len == 0 || len > 10)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!isdigit((unsigned char)s[i]))
			return false;
		n = n * 10 + (unsigned long)(s[i] - '0');
	}
	if (n > max)
		return false;
	*v = n;
	return true;
}

/* "!" size with an optional k, m, g or t unit (6.2). */
static bool
dmarc_parse_size(const char *s, size_t len, unsigned long long *size)
{
	unsigned long n;
	unsigned shift = 0;

	if (len > 0 && strchr("kKmMgGtT", s[len - 1]) != NULL) {
		switch (tolower((unsigned char)s[len - 1])) {
		case 'k': shift = 10; break;
		case 'm': shift = 20; break;
		case 'g': shift = 30; break;
		default: shift = 40; break;
		}
		len--;
	}
	if (!dmarc_parse_uint(s, len, 0xffffffffUL, &n))
		return false;
	/* 4294967295t does not fit in 64 bits: keep the largest size. */
	*size = (unsigned long long)n > (~0ULL >> shift) ? ~0ULL : (unsigned long long)n << shift;
	return true;
}

/* A mailto: URI with an address in it; other schemes are not used
 * (youju reports only by mail) and are ignored. */
static bool
dmarc_mailto_ok(const char *s, size_t len)
{
	const char *at;

	if (len <= 7 || strncasecmp(s, "mailto:", 7) != 0)
		return false;
	s += 7;
	len -= 7;
	at = memchr(s, '@', len);
	if (at == NULL || at == s || at == s + len - 1)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch <= ' ' || ch >= 0x7f || ch == '/' || ch == '<' || ch == '>' || ch == '"')
			return false;
	}
	return true;
}

/* A comma-separated list of URIs, each with an optional !size. */
static void
dmarc_parse_uris(const struct dmarc_tag *t, struct dmarc_uri *uris, size_t *n)
{
	size_t i = 0;

	while (i < t->value_len) {
		const char *u = t->value + i;
		size_t len = 0, bang;
		struct dmarc_uri uri = { .max_size = 0 };

		while (i + len < t->value_len && t->value[i + len] != ',')
			len++;
		i += len + 1;
		while (len > 0 && dmarc_wsp(*u)) {
			u++;
			len--;
		}
		while (len > 0 && dmarc_wsp(u[len - 1]))
			len--;
		for (bang = 0; bang < len && u[bang] != '!'; bang++)
			;
		if (bang < len && !dmarc_parse_size(u + bang + 1, len - bang - 1, &uri.max_size))
			continue;
		if (!dmarc_mailto_ok(u, bang) || bang >= sizeof(uri.uri) || *n >= DMARC_URIS_MAX)
			continue;
		memcpy(uri.uri, u, bang);
		uri.uri[bang] = '\0';
		uris[(*n)++] = uri;
	}
}

/* fo=0:1:d:s, a colon list whose unknown items are ignored. */
static void
dmarc_parse_fo(const struct dmarc_tag *t, unsigned *fo)
{
	unsigned v = 0;

	for (size_t i = 0; i < t->value_len; i++) {
		switch (t->value[i]) {
		case '0': v |= DMARC_FO_0; break;
		case '1': v |= DMARC_FO_1; break;
		case 'd': v |= DMARC_FO_D; break;
		case 's': v |= DMARC_FO_S; break;
		default: break;
		}
	}
	if (v != 0)
		*fo = v;
}

static void
dmarc_defaults(struct dmarc_record *rec)
{
	memset(rec, 0, sizeof(*rec));
	rec->pct = 100;
	rec->fo = DMARC_FO_0;
	rec->rf_afrf = true;
	rec->ri = DMARC_RI_DEFAULT;
}

/* One tag after v=; the first of a repeated tag counts. */
static void
dmarc_apply_tag(struct dmarc_record *rec, const struct dmarc_tag *t, unsigned *seen)
{
	static const char *const names[] = { "p", "sp", "np", "pct", "adkim", "aspf", "rua",
					     "ruf", "fo", "rf", "ri" };
	unsigned long v;
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (dmarc_tag_is(t, names[i]))
			break;
	}
	if (i == sizeof(names) / sizeof(names[0]) || (*seen & (1u << i)) != 0)
		return;
	*seen |= 1u << i;
	switch (i) {
	case 0: rec->p_given = dmarc_parse_policy(t, &rec->p); break;
	case 1: rec->sp_given = dmarc_parse_policy(t, &rec->sp); break;
	case 2: rec->np_given = dmarc_parse_policy(t, &rec->np); break;
	case 3: if (dmarc_parse_uint(t->value, t->value_len, 100, &v)) rec->pct = (unsigned)v; break;
	case 4: if (dmarc_value_is(t, "s")) rec->adkim = DMARC_STRICT; break;
	case 5: if (dmarc_value_is(t, "s")) rec->aspf = DMARC_STRICT; break;
	case 6: dmarc_parse_uris(t, rec->rua, &rec->n_rua); break;
	case 7: dmarc_parse_uris(t, rec->ruf, &rec->n_ruf); break;
	case 8: dmarc_parse_fo(t, &rec->fo); break;
	case 9:
		/* afrf is the only format defined and unknown ones are
		 * ignored (6.3), so afrf applies whatever rf= says. */
		break;
	default:
		if (dmarc_parse_uint(t->value, t->value_len, 0xffffffffUL, &v))
			rec->ri = v;
		break;
	}
}

int
dmarc_record_parse(const char *txt, size_t len, struct dmarc_record *rec,
		   char problem[DMARC_PROBLEM_MAX])
{
	struct dmarc_tag t;
	size_t pos = 0;
	unsigned seen = 0;

	dmarc_defaults(rec);
	problem[0] = '\0';
	if (len > DMARC_RECORD_MAX || memchr(txt, '\0', len) != NULL)
		return 0;
	if (!dmarc_next_tag(txt, len, &pos, &t) || !dmarc_tag_is(&t, "v") ||
	    t.value_len != 6 || strncmp(t.value, "DMARC1", 6) != 0)
		return 0;
	while (dmarc_next_tag(txt, len, &pos, &t)) {
		if (t.name_len > 0 && t.name_len <= DMARC_TAG_MAX)
			dmarc_apply_tag(rec, &t, &seen);
	}
	if (!rec->p_given) {
		if (rec->n_rua == 0) {
			snprintf(problem, DMARC_PROBLEM_MAX,
				 "no valid p= and no valid rua= in the DMARC record");
			return -1;
		}
		rec->p = DMARC_P_NONE;
	}
	if (!rec->sp_given)
		rec->sp = rec->p;
	if (!rec->np_given)
		rec->np = rec->sp;
	return 1;
}
