/* dkim_tag.c - tag-list parsing and the encodings DKIM values use. */
#include <string.h>

#include "mailauth/dkim_tag.h"

#include "base/base64.h"

static bool
is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* Length of folding whitespace at s (WSP, or CRLF followed by WSP). */
static size_t
fws_len(const char *s, size_t len)
{
	size_t i = 0;

	for (;;) {
		if (i < len && is_wsp(s[i]))
			i++;
		else if (i + 2 < len && s[i] == '\r' && s[i + 1] == '\n' && is_wsp(s[i + 2]))
			i += 3;
		else
			return i;
	}
}

static bool
is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* VALCHAR: %x21-3A / %x3C-7E, plus UTF-8 bytes (RFC 8616). */
static bool
is_valchar(char c)
{
	unsigned char u = (unsigned char)c;

	return (u >= 0x21 && u <= 0x7e && u != ';') || u >= 0x80;
}

static size_t
name_len(const char *s, size_t len)
{
	size_t i = 0;

	if (len == 0 || !is_alpha(s[0]))
		return 0;
	while (i < len && (is_alpha(s[i]) || is_digit(s[i]) || s[i] == '_'))
		i++;
	return i;
}

/* Parses a value at text[*pos..] up to ';' or the end: tvals separated
 * by whitespace. Sets the trimmed span in t and moves *pos to the ';'. */
static int
parse_value(const char *text, size_t len, size_t *pos, struct dkim_tag *t)
{
	size_t i = *pos, end_of_tval = i;

	i += fws_len(text + i, len - i);
	t->value = text + i;
	while (i < len && text[i] != ';') {
		if (is_valchar(text[i])) {
			i++;
			end_of_tval = i;
			continue;
		}
		size_t w = fws_len(text + i, len - i);
		if (w == 0)
			return -1;
		i += w;
	}
	t->value_len = end_of_tval > (size_t)(t->value - text)
		? end_of_tval - (size_t)(t->value - text) : 0;
	t->raw_end = i;
	*pos = i;
	return 1;
}

static bool
seen(const struct dkim_tags *tags, const struct dkim_tag *t)
{
	for (size_t i = 0; i < tags->n; i++) {
		if (tags->tag[i].name_len == t->name_len &&
		    memcmp(tags->tag[i].name, t->name, t->name_len) == 0)
			return true;
	}
	return false;
}

/* One tag-spec at text[*pos]; *pos ends at ';' or the end. */
static int
parse_spec(const char *text, size_t len, size_t *pos, struct dkim_tag *t,
	   const char **why)
{
	size_t i = *pos;

	i += fws_len(text + i, len - i);
	t->name = text + i;
	t->name_len = name_len(text + i, len - i);
	if (t->name_len == 0) {
		*why = "bad tag name";
		return -1;
	}
	i += t->name_len;
	i += fws_len(text + i, len - i);
	if (i >= len || text[i] != '=') {
		*why = "tag without '='";
		return -1;
	}
	i++;
	t->raw_start = i;
	if (parse_value(text, len, &i, t) < 0) {
		*why = "bad character in tag value";
		return -1;
	}
	*pos = i;
	return 1;
}

int
dkim_tags_parse(const char *text, size_t len, struct dkim_tags *tags, const char **why)
{
	size_t pos = 0;

	tags->n = 0;
	for (;;) {
		struct dkim_tag t;

		if (tags->n == DKIM_TAGS_MAX) {
			*why = "too many tags";
			return -1;
		}
		if (parse_spec(text, len, &pos, &t, why) < 0)
			return -1;
		if (seen(tags, &t)) {
			*why = "duplicate tag";
			return -1;
		}
		tags->tag[tags->n++] = t;
		if (pos == len)
			return 1;
		pos++;	/* the ';' */
		if (pos + fws_len(text + pos, len - pos) == len)
			return 1;
	}
}

const struct dkim_tag *
dkim_tags_get(const struct dkim_tags *tags, const char *name)
{
	size_t n = strlen(name);

	for (size_t i = 0; i < tags->n; i++) {
		if (tags->tag[i].name_len == n && memcmp(tags->tag[i].name, name, n) == 0)
			return &tags->tag[i];
	}
	return NULL;
}

bool
dkim_tag_is(const struct dkim_tag *t, const char *word)
{
	size_t n = strlen(word);

	return t->value_len == n && memcmp(t->value, word, n) == 0;
}

long
dkim_tag_nows(const struct dkim_tag *t, char *out, size_t outlen)
{
	size_t o = 0;

	for (size_t i = 0; i < t->value_len; i++) {
		char c = t->value[i];
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			continue;
		if (o + 1 >= outlen)
			return -1;
		out[o++] = c;
	}
	if (outlen == 0)
		return -1;
	out[o] = '\0';
	return (long)o;
}

long
dkim_base64_decode(const char *in, size_t len, unsigned char *out, size_t outlen)
{
	return base64_decode(in, len, BASE64_FOLDED, out, outlen);
}

void
dkim_base64_encode(const unsigned char *in, size_t len, char *out)
{
	/* The caller's buffer holds the encoding by contract (dkim_tag.h),
	 * so only an impossible length fails: it gets an empty string. */
	if (base64_encode(in, len, out, base64_encoded_len(len) + 1) < 0)
		out[0] = '\0';
}

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

long
dkim_qp_decode(const char *in, size_t len, char *out, size_t outlen)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		char c = in[i];
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			continue;
		if (c == '=') {
			if (i + 2 >= len)
				return -1;
			int h = hex_value(in[i + 1]), l = hex_value(in[i + 2]);
			if (h < 0 || l < 0)
				return -1;
			c = (char)(h * 16 + l);
			i += 2;
		}
		if (o + 1 >= outlen)
			return -1;
		out[o++] = c;
	}
	if (outlen == 0)
		return -1;
	out[o] = '\0';
	return (long)o;
}

int
dkim_parse_uint(const char *s, size_t len, unsigned long long *v)
{
	if (len == 0 || len > 18)
		return -1;
	*v = 0;
	for (size_t i = 0; i < len; i++) {
		if (!is_digit(s[i]))
			return -1;
		*v = *v * 10 + (unsigned long long)(s[i] - '0');
	}
	return 1;
}
