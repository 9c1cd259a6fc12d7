/* spf_header.c - the texts a result is recorded in: the Received-SPF:
 * field (RFC 7208 9.1) and the spf= part of Authentication-Results:
 * (RFC 8601 2.7.2). Client-chosen values are printable ASCII only,
 * escaped where the syntax needs it, so nothing a client sends can end
 * the field or add one. */
#include "mailauth/spf.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define SPF_FOLD_AT 78	/* fold a header line before it passes this */

struct spf_hdr {
	char *buf;
	size_t len, max, line;	/* line: characters on the current line */
	bool overflow;
};

static void
spf_hdr_raw(struct spf_hdr *h, const char *s, size_t len)
{
	if (h->overflow || len >= h->max - h->len) {
		h->overflow = true;
		return;
	}
	memcpy(h->buf + h->len, s, len);
	h->len += len;
	h->buf[h->len] = '\0';
	h->line += len;
}

/* Appends a word, after a space or a fold if the line would get long. */
static void
spf_hdr_word(struct spf_hdr *h, const char *w, size_t len)
{
	if (h->line > 0 && h->line + 1 + len > SPF_FOLD_AT) {
		spf_hdr_raw(h, "\r\n", 2);
		h->line = 0;
	}
	if (h->len > 0)
		spf_hdr_raw(h, " ", 1);
	spf_hdr_raw(h, w, len);
}

/* Appends text word by word (it may be folded at its spaces). */
static void
spf_hdr_text(struct spf_hdr *h, const char *s)
{
	while (*s != '\0') {
		size_t n;

		s += strspn(s, " ");
		n = strcspn(s, " ");
		if (n > 0)
			spf_hdr_word(h, s, n);
		s += n;
	}
}

/* Client text made safe: printable ASCII; in a comment '(', ')' and '\'
 * are quoted, in a quoted-string '"' and '\'; anything else is '?'. */
static void
spf_safe(const char *in, bool comment, char *out, size_t outlen)
{
	size_t o = 0;

	for (; *in != '\0' && o + 3 < outlen; in++) {
		unsigned char ch = (unsigned char)*in;

		if (ch < 0x20 || ch > 0x7e)
			ch = '?';
		if (ch == '\\' || (comment && (ch == '(' || ch == ')')) || (!comment && ch == '"'))
			out[o++] = '\\';
		out[o++] = (char)ch;
	}
	out[o] = '\0';
}

/* A dot-atom of atext (RFC 5322 3.2.3)? Then it needs no quotes. */
static bool
spf_dot_atom(const char *s)
{
	bool dot = true;

	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		if (*s == '.') {
			if (dot)
				return false;
			dot = true;
			continue;
		}
		if (!isalnum((unsigned char)*s) && strchr("!#$%&'*+-/=?^_`{|}~", *s) == NULL)
			return false;
		dot = false;
	}
	return !dot;
}

/* key=value; with value a dot-atom or a quoted-string. */
static void
spf_hdr_pair(struct spf_hdr *h, const char *key, const char *value)
{
	char safe[SPF_HEADER_MAX / 2], pair[SPF_HEADER_MAX];

	if (spf_dot_atom(value)) {
		snprintf(pair, sizeof(pair), "%s=%s;", key, value);
	} else {
		spf_safe(value, false, safe, sizeof(safe));
		snprintf(pair, sizeof(pair), "%s=\"%s\";", key, safe);
	}
	spf_hdr_text(h, pair);
}

/* The sender as the comment names it: the identity checked. */
static void
spf_identity_text(const struct spf_request *req, const struct spf_outcome *o, char *out,
		  size_t outlen)
{
	char raw[SPF_HEADER_MAX / 2];

	if (o->identity == SPF_ID_MAILFROM)
		snprintf(raw, sizeof(raw), "%s", req->mailfrom != NULL ? req->mailfrom : "");
	else
		snprintf(raw, sizeof(raw), "postmaster@%s", req->helo != NULL ? req->helo : "");
	spf_safe(raw, true, out, outlen);
}

static void
spf_comment(const struct spf_request *req, const struct spf_outcome *o, char *out,
	    size_t outlen)
{
	char who[SPF_HEADER_MAX / 4], ip[DNS_ADDR_MAX * 2], problem[SPF_PROBLEM_MAX * 2];
	const char *me = req->receiver != NULL ? req->receiver : "unknown";

	spf_identity_text(req, o, who, sizeof(who));
	spf_safe(req->ip, true, ip, sizeof(ip));
	spf_safe(o->problem, true, problem, sizeof(problem));
	switch (o->result) {
	case SPF_PASS:
		snprintf(out, outlen, "(%s: domain of %s designates %s as permitted sender)", me,
			 who, ip);
		break;
	case SPF_FAIL:
		snprintf(out, outlen,
			 "(%s: domain of %s does not designate %s as permitted sender)", me, who, ip);
		break;
	case SPF_SOFTFAIL:
		snprintf(out, outlen, "(%s: domain of transitioning %s does not designate %s as "
			 "permitted sender)", me, who, ip);
		break;
	case SPF_NEUTRAL:
		snprintf(out, outlen, "(%s: %s is neither permitted nor denied by domain of %s)",
			 me, ip, who);
		break;
	case SPF_NONE:
		snprintf(out, outlen, "(%s: domain of %s does not designate permitted sender hosts)",
			 me, who);
		break;
	default:
		snprintf(out, outlen, "(%s: error in processing during lookup of %s: %s)", me, who,
			 problem);
		break;
	}
}

int
spf_received_header(const struct spf_request *req, const struct spf_outcome *o, char *out,
		    size_t outlen)
{
	struct spf_hdr h = { .buf = out, .max = outlen };
	char comment[SPF_HEADER_MAX];

	if (outlen == 0)
		return -1;
	out[0] = '\0';
	spf_hdr_word(&h, "Received-SPF:", 13);
	spf_hdr_text(&h, spf_result_name(o->result));
	spf_comment(req, o, comment, sizeof(comment));
	spf_hdr_text(&h, comment);
	spf_hdr_pair(&h, "client-ip", req->ip);
	spf_hdr_pair(&h, "envelope-from", req->mailfrom != NULL ? req->mailfrom : "");
	spf_hdr_pair(&h, "helo", req->helo != NULL ? req->helo : "");
	if (req->receiver != NULL)
		spf_hdr_pair(&h, "receiver", req->receiver);
	spf_hdr_pair(&h, "identity", o->identity == SPF_ID_MAILFROM ? "mailfrom" : "helo");
	if (o->mechanism[0] != '\0')
		spf_hdr_pair(&h, "mechanism", o->mechanism);
	if (o->problem[0] != '\0')
		spf_hdr_pair(&h, "problem", o->problem);
	/* The list ends without its optional last ';'. */
	if (!h.overflow && h.len > 0 && out[h.len - 1] == ';')
		out[--h.len] = '\0';
	return h.overflow ? -1 : 1;
}

/* A domain name that is a valid RFC 8601 pvalue as it is. */
static bool
spf_plain_domain(const char *d)
{
	if (*d == '\0')
		return false;
	for (; *d != '\0'; d++) {
		if (!isalnum((unsigned char)*d) && strchr(".-_", *d) == NULL)
			return false;
	}
	return true;
}

int
spf_auth_results(const struct spf_request *req, const struct spf_outcome *o, char *out,
		 size_t outlen)
{
	const char *from = req->mailfrom != NULL ? req->mailfrom : "";
	const char *at = strrchr(from, '@');
	char local[SPF_HEADER_MAX / 4], safe[SPF_HEADER_MAX / 2];
	int n;

	if (!spf_plain_domain(o->domain)) {
		spf_safe(o->domain, false, safe, sizeof(safe));
		n = snprintf(out, outlen, "spf=%s smtp.%s=\"%s\"", spf_result_name(o->result),
			     o->identity == SPF_ID_MAILFROM ? "mailfrom" : "helo", safe);
		return n >= 0 && (size_t)n < outlen ? 1 : -1;
	}
	local[0] = '\0';
	/* The whole address where its local part needs no quoting. */
	if (o->identity == SPF_ID_MAILFROM && at != NULL && at > from &&
	    (size_t)(at - from) < sizeof(local)) {
		snprintf(local, sizeof(local), "%.*s", (int)(at - from), from);
		if (!spf_dot_atom(local))
			local[0] = '\0';
	}
	n = snprintf(out, outlen, "spf=%s smtp.%s=%s%s%s", spf_result_name(o->result),
		     o->identity == SPF_ID_MAILFROM ? "mailfrom" : "helo", local,
		     local[0] != '\0' ? "@" : "", o->domain);
	return n >= 0 && (size_t)n < outlen ? 1 : -1;
}
