#include "imap/imap_mailbox.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "base/util.h"

static const char b64_chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int
b64_value(unsigned char c)
{
	const char *p = c != '\0' ? strchr(b64_chars, c) : NULL;

	return p != NULL ? (int)(p - b64_chars) : -1;
}

/* Writes one code point as UTF-8; returns bytes written or 0 if no room. */
static size_t
utf8_put(unsigned cp, char *out, size_t room)
{
	unsigned char b[4];
	size_t n;

	if (cp < 0x80)
		b[0] = (unsigned char)cp, n = 1;
	else if (cp < 0x800)
		b[0] = (unsigned char)(0xc0 | cp >> 6), b[1] = (unsigned char)(0x80 | (cp & 0x3f)),
		n = 2;
	else if (cp < 0x10000)
		b[0] = (unsigned char)(0xe0 | cp >> 12),
		b[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f)),
		b[2] = (unsigned char)(0x80 | (cp & 0x3f)), n = 3;
	else
		b[0] = (unsigned char)(0xf0 | cp >> 18),
		b[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f)),
		b[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f)),
		b[3] = (unsigned char)(0x80 | (cp & 0x3f)), n = 4;
	if (n > room)
		return 0;
	memcpy(out, b, n);
	return n;
}

/* Decodes the run that starts at in[0] == '&' into out. Returns the bytes
 * of in it took, or 0 if it is not a well-formed run: base64 of UTF-16
 * ending in '-', no leftover bits, paired surrogates, and nothing that
 * could have been sent as itself (printable ASCII). */
static size_t
mutf7_run(const char *in, size_t len, char *out, size_t room, size_t *outlen_r)
{
	uint32_t bits = 0;
	unsigned nbits = 0, high = 0;
	size_t i = 1, o = 0;

	if (len > 1 && in[1] == '-') {
		if (room < 1)
			return 0;
		out[0] = '&';
		*outlen_r = 1;
		return 2;
	}
	for (; i < len && in[i] != '-'; i++) {
		int v = b64_value((unsigned char)in[i]);
		if (v < 0)
			return 0;
		bits = (bits << 6 | (uint32_t)v) & 0xffffff;
		nbits += 6;
		if (nbits < 16)
			continue;
		nbits -= 16;
		unsigned unit = bits >> nbits & 0xffff, cp;
		if (unit >= 0xd800 && unit < 0xdc00) {
			if (high != 0)
				return 0;
			high = unit;
			continue;
		}
		if (unit >= 0xdc00 && unit < 0xe000) {
			if (high == 0)
				return 0;
			cp = 0x10000 + ((high - 0xd800) << 10) + (unit - 0xdc00);
			high = 0;
		} else {
			if (high != 0 || (unit >= 0x20 && unit < 0x7f))
				return 0;
			cp = unit;
		}
		size_t n = utf8_put(cp, out + o, room - o);
		if (n == 0)
			return 0;
		o += n;
	}
	if (i == len || i == 1 || high != 0 || nbits >= 6 || (bits & ((1u << nbits) - 1)) != 0)
		return 0;
	*outlen_r = o;
	return i + 1;
}

/* "INBOX" is case-insensitive (RFC 9051 5.1), also as the first level
 * of a longer name: "inbox/sub" is INBOX's child, not a second inbox. */
static void
mailbox_inbox(char *name)
{
	if (strncasecmp(name, "INBOX", 5) == 0 &&
	    (name[5] == '\0' || name[5] == IMAP_MAILBOX_DELIM))
		memcpy(name, "INBOX", 5);
}

int
imap_mailbox_decode(const char *in, size_t len, bool utf8, char *out, size_t outsize,
		    const char **error_r)
{
	size_t i = 0, o = 0, room = outsize - 1;

	if (outsize == 0 || memchr(in, '\0', len) != NULL) {
		*error_r = "Invalid mailbox name";
		return -1;
	}
	while (i < len) {
		size_t used = 0, n = 0;
		/* With UTF8=ACCEPT a name is UTF-8 and '&' is itself (RFC 6855
		 * 3): decoding "&...-" there would rename what the client meant. */
		if (in[i] == '&' && !utf8)
			used = mutf7_run(in + i, len - i, out + o, room - o, &n);
		if (used == 0 && in[i] == '&' && !utf8 && i + 1 < len &&
		    (in[i + 1] == '-' || b64_value((unsigned char)in[i + 1]) >= 0)) {
			*error_r = "Mailbox name is not valid modified UTF-7";
			return -1;
		}
		if (used == 0) {
			if (o == room) {
				*error_r = "Mailbox name too long";
				return -1;
			}
			out[o++] = in[i];
			used = 1;
		} else {
			o += n;
		}
		i += used;
	}
	out[o] = '\0';
	if (!util_utf8_valid(out, o)) {
		*error_r = "Mailbox name is not valid UTF-8 or holds control characters";
		return -1;
	}
	if (o > IMAP_MAILBOX_MAX) {
		*error_r = "Mailbox name too long";
		return -1;
	}
	mailbox_inbox(out);
	return 1;
}

/* Appends a run of non-ASCII code points as "&...-". */
static int
mutf7_write_run(struct buf *out, const unsigned *cps, size_t n)
{
	uint32_t bits = 0;
	unsigned nbits = 0;

	if (buf_append(out, "&", 1) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned units[2], nu = 1;
		if (cps[i] >= 0x10000) {
			units[0] = 0xd800 + ((cps[i] - 0x10000) >> 10);
			units[1] = 0xdc00 + ((cps[i] - 0x10000) & 0x3ff);
			nu = 2;
		} else {
			units[0] = cps[i];
		}
		for (unsigned u = 0; u < nu; u++) {
			bits = bits << 16 | units[u];
			nbits += 16;
			while (nbits >= 6) {
				nbits -= 6;
				if (buf_append(out, &b64_chars[bits >> nbits & 0x3f], 1) < 0)
					return -1;
			}
			bits &= (1u << nbits) - 1;
		}
	}
	if (nbits > 0 && buf_append(out, &b64_chars[bits << (6 - nbits) & 0x3f], 1) < 0)
		return -1;
	return buf_append(out, "-", 1);
}

int
imap_mailbox_encode(struct buf *out, const char *name, bool utf8)
{
	const unsigned char *p = (const unsigned char *)name;
	size_t len = strlen(name), i = 0;

	if (utf8)
		return buf_append(out, name, len);
	while (i < len) {
		if (p[i] >= 0x20 && p[i] < 0x7f) {
			if (buf_append(out, p[i] == '&' ? "&-" : (const char *)p + i,
				       p[i] == '&' ? 2 : 1) < 0)
				return -1;
			i++;
			continue;
		}
		unsigned cps[64];
		size_t n = 0;
		while (i < len && n < 64 && !(p[i] >= 0x20 && p[i] < 0x7f)) {
			size_t k = util_utf8_decode(p + i, len - i, &cps[n]);
			if (k == 0)
				return -1;
			i += k;
			n++;
		}
		if (mutf7_write_run(out, cps, n) < 0)
			return -1;
	}
	return 1;
}

#define LIST_MATCH_MAX 2048

bool
imap_list_match(const char *pattern, const char *name, char delim)
{
	bool prev[LIST_MATCH_MAX + 1], cur[LIST_MATCH_MAX + 1];
	size_t m, n;

	if (strncasecmp(pattern, "INBOX", 5) == 0 && strncasecmp(name, "INBOX", 5) == 0 &&
	    (name[5] == '\0' || name[5] == delim)) {
		pattern += 5;
		name += 5;
	}
	m = strlen(pattern);
	n = strlen(name);
	if (n > LIST_MATCH_MAX)
		return false;
	memset(prev, 0, sizeof(prev));
	prev[0] = true;
	for (size_t i = 0; i < m; i++) {
		char pc = pattern[i];
		bool any = false, alive = false;
		/* "**" and "%*" match what "*" does: one pass is enough. */
		if (pc == '*' && i > 0 && pattern[i - 1] == '*')
			continue;
		for (size_t j = 0; j <= n; j++) {
			if (pc == '*' || pc == '%') {
				if (pc == '%' && j > 0 && name[j - 1] == delim)
					any = false;
				any = any || prev[j];
				cur[j] = any;
			} else {
				cur[j] = j > 0 && prev[j - 1] && name[j - 1] == pc;
			}
			alive = alive || cur[j];
		}
		if (!alive)
			return false;	/* nothing can match any more */
		memcpy(prev, cur, (n + 1) * sizeof(bool));
	}
	return prev[n];
}

static const char *const system_flags[] = {
	"\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft",
};

const char *
imap_flag_system_name(const char *s, size_t len)
{
	for (size_t i = 0; i < sizeof(system_flags) / sizeof(system_flags[0]); i++)
		if (strlen(system_flags[i]) == len && strncasecmp(system_flags[i], s, len) == 0)
			return system_flags[i];
	return NULL;
}

/* RFC 9051 ATOM-CHAR: no atom-specials (resp-specials and wildcards too). */
static bool
keyword_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f && strchr("(){%*\"\\]", c) == NULL;
}

enum imap_flag_kind
imap_flag_kind(const char *s, size_t len)
{
	size_t i = 0;

	if (len == 0 || len > IMAP_KEYWORD_MAX)
		return IMAP_FLAG_INVALID;
	if (imap_flag_system_name(s, len) != NULL)
		return IMAP_FLAG_SYSTEM;
	if (len == 7 && strncasecmp(s, "\\Recent", 7) == 0)
		return IMAP_FLAG_RECENT;
	if (s[0] == '\\')
		i = 1;
	if (i == len)
		return IMAP_FLAG_INVALID;
	for (; i < len; i++)
		if (!keyword_char((unsigned char)s[i]))
			return IMAP_FLAG_INVALID;
	return s[0] == '\\' ? IMAP_FLAG_EXTENSION : IMAP_FLAG_KEYWORD;
}
