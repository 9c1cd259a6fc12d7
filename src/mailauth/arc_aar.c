/* arc_aar.c - reading ARC-Authentication-Results (arc_aar.h). */
#include "mailauth/arc_aar.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mailauth/dkim_hdr.h"

/* The value with comments removed and folding turned into spaces, so the
 * rest only splits on ';' and whitespace. Quoted strings are kept whole
 * (a ';' or '(' inside them is text). Returns the length, or -1 if it is
 * longer than outlen - 1 or a comment or string is not closed. */
static long
aar_clean(const char *p, size_t len, char *out, size_t outlen)
{
	size_t n = 0;
	int depth = 0;
	bool quoted = false;

	for (size_t i = 0; i < len; i++) {
		char c = p[i];

		if (c == '\\' && (quoted || depth > 0) && i + 1 < len) {
			if (quoted && n + 2 < outlen) {
				out[n++] = c;
				out[n++] = p[i + 1];
			}
			i++;
			continue;
		}
		if (quoted) {
			quoted = c != '"';
		} else if (depth > 0) {
			depth += c == '(' ? 1 : c == ')' ? -1 : 0;
			continue;
		} else if (c == '(') {
			depth = 1;
			continue;
		} else if (c == '"') {
			quoted = true;
		}
		if (n + 1 >= outlen)
			return -1;
		out[n++] = (c == '\r' || c == '\n' || c == '\t') ? ' ' : c;
	}
	if (quoted || depth > 0)
		return -1;
	out[n] = '\0';
	return (long)n;
}

/* The next part up to sep outside quotes, ended in place; NULL at the
 * end. */
static char *
aar_split(char **cur, char sep)
{
	char *p = *cur, *start;
	bool quoted = false;

	if (p == NULL)
		return NULL;
	start = p;
	while (*p != '\0' && (quoted || *p != sep)) {
		if (*p == '"')
			quoted = !quoted;
		else if (*p == '\\' && quoted && p[1] != '\0')
			p++;
		p++;
	}
	*cur = *p == sep ? p + 1 : NULL;
	*p = '\0';
	return start;
}

/* The next ';'-separated part, trimmed; NULL at the end. */
static char *
aar_next_part(char **cur)
{
	char *start = aar_split(cur, ';'), *end;

	if (start == NULL)
		return NULL;
	while (*start == ' ')
		start++;
	end = start + strlen(start);
	while (end > start && end[-1] == ' ')
		*--end = '\0';
	return start;
}

static void
lower_copy(char *out, size_t outlen, const char *p, size_t len)
{
	size_t n = len < outlen - 1 ? len : outlen - 1;

	for (size_t i = 0; i < n; i++)
		out[i] = (char)tolower((unsigned char)p[i]);
	out[n] = '\0';
}

/* The domain of a property value: after the last '@' if any, quotes
 * removed. */
static void
prop_domain(char *out, size_t outlen, const char *v)
{
	const char *at = strrchr(v, '@');
	size_t len;

	if (at != NULL)
		v = at + 1;
	if (*v == '"')
		v++;
	len = strcspn(v, "\"");
	if (len < outlen)
		lower_copy(out, outlen, v, len);
}

/* Which property names the domain of a method's result, best first. */
static int
prop_rank(const char *method, const char *prop)
{
	static const char *const ranks[][3] = {
		{ "dkim", "header.d", "header.i" },
		{ "spf", "smtp.mailfrom", "smtp.helo" },
		{ "dmarc", "header.from", "" },
	};

	for (size_t i = 0; i < sizeof(ranks) / sizeof(ranks[0]); i++) {
		if (strcmp(method, ranks[i][0]) != 0)
			continue;
		for (int k = 1; k < 3; k++) {
			if (ranks[i][k][0] != '\0' && strcasecmp(prop, ranks[i][k]) == 0)
				return k;
		}
	}
	return 0;
}

/* One resinfo: "method[/version]=result [reason=...] [ptype.prop=value]...". */
static int
aar_result(char *part, struct arc_aar_result *r)
{
	char *cur = part, *tok;
	char *eq;
	int best = 0;

	while ((tok = aar_split(&cur, ' ')) != NULL && tok[0] == '\0')
		;
	/* A method name before any "/version", and a result after '='. */
	if (tok == NULL || (eq = strchr(tok, '=')) == NULL || strcspn(tok, "/=") == 0 ||
	    eq[1] == '\0')
		return 0;
	lower_copy(r->method, sizeof(r->method), tok, strcspn(tok, "/="));
	lower_copy(r->result, sizeof(r->result), eq + 1, strlen(eq + 1));
	r->domain[0] = '\0';
	while ((tok = aar_split(&cur, ' ')) != NULL) {
		int rank;

		/* A quoted string is one token: its text names nothing. */
		if (tok[0] == '"' || (eq = strchr(tok, '=')) == NULL)
			continue;
		*eq = '\0';
		rank = prop_rank(r->method, tok);
		if (rank > 0 && (best == 0 || rank < best)) {
			prop_domain(r->domain, sizeof(r->domain), eq + 1);
			best = rank;
		}
	}
	return 1;
}

/* "i=N" of the first part. */
static int
aar_instance_of(const char *part, unsigned *instance)
{
	char *end;
	unsigned long v;

	while (*part == ' ')
		part++;
	if (part[0] != 'i' && part[0] != 'I')
		return -1;
	part++;
	while (*part == ' ')
		part++;
	if (*part++ != '=')
		return -1;
	while (*part == ' ')
		part++;
	if (!isdigit((unsigned char)*part))
		return -1;
	v = strtoul(part, &end, 10);
	while (*end == ' ')
		end++;
	if (*end != '\0' || v < 1 || v > 50)
		return -1;
	*instance = (unsigned)v;
	return 1;
}

int
arc_aar_parse(const char *value, size_t len, struct arc_aar *out)
{
	char *text = malloc(len + 1), *cur, *part;
	int rc = -1;

	if (text == NULL)
		abort();
	memset(out, 0, sizeof(*out));
	cur = text;
	if (aar_clean(value, len, text, len + 1) < 0 ||
	    (part = aar_next_part(&cur)) == NULL || aar_instance_of(part, &out->instance) < 0 ||
	    (part = aar_next_part(&cur)) == NULL || part[0] == '\0')
		goto done;
	/* authserv-id, then an optional version number. */
	lower_copy(out->authserv_id, sizeof(out->authserv_id), part, strcspn(part, " "));
	while ((part = aar_next_part(&cur)) != NULL) {
		if (out->n < ARC_AAR_RESULTS_MAX && aar_result(part, &out->r[out->n]) == 1)
			out->n++;
	}
	rc = 1;
done:
	free(text);
	return rc;
}

int
arc_aar_find(const char *hdr, size_t len, unsigned instance, struct arc_aar *out)
{
	struct dkim_headers *h = malloc(sizeof(*h));
	static const char name[] = "ARC-Authentication-Results";
	int rc = 0;

	if (h == NULL)
		abort();
	if (dkim_headers_parse(hdr, len, h) < 0) {
		free(h);
		return -1;
	}
	for (size_t i = 0; i < h->n && rc == 0; i++) {
		const char *v;
		size_t vlen;

		if (!dkim_field_is(&h->f[i], name, sizeof(name) - 1))
			continue;
		v = dkim_field_value(&h->f[i], &vlen);
		if (arc_aar_parse(v, vlen, out) == 1 && out->instance == instance)
			rc = 1;
	}
	free(h);
	return rc;
}
