/* smtp_parse.c - SMTP command lines, paths and MAIL/RCPT/BDAT arguments.
 *
 * Grammar from RFC 5321 section 4.1, with the SMTPUTF8 additions of
 * RFC 6531, SIZE (RFC 1870), BODY (RFC 6152, RFC 3030), AUTH= (RFC 4954)
 * and the DSN parameters of RFC 3461. Everything here reads from a
 * NUL-terminated string and writes into fixed-size fields, checking the
 * bound before every byte.
 */
#include "smtp/smtp_parse.h"

#include <arpa/inet.h>
#include <limits.h>
#include <string.h>
#include <strings.h>

#include "base/util.h"

#define SMTP_LOCAL_ASCII_MAX 64		/* RFC 5321 4.5.3.1.1 */
#define SMTP_LABEL_MAX 63		/* RFC 1035 2.3.4 */
#define SMTP_ENVID_MAX 100		/* RFC 3461 4.4 */
#define SMTP_KEYWORD_MAX 32
#define SMTP_VALUE_MAX 1024

#define SMTP_ERR_CMD_TERM "500 5.5.2 Syntax error: line not terminated"
#define SMTP_ERR_CMD_NUL "500 5.5.2 Syntax error: NUL byte in command"
#define SMTP_ERR_CMD_CR "500 5.5.2 Syntax error: bare CR in command"
#define SMTP_ERR_CMD_LF "500 5.5.2 Syntax error: bare LF in command"
#define SMTP_ERR_CMD_VERB "500 5.5.2 Syntax error: no command"
#define SMTP_ERR_MAIL_SYNTAX "501 5.5.4 Syntax: MAIL FROM:<address>"
#define SMTP_ERR_RCPT_SYNTAX "501 5.5.4 Syntax: RCPT TO:<address>"
#define SMTP_ERR_BAD_SENDER "501 5.1.7 Bad sender address syntax"
#define SMTP_ERR_BAD_RCPT "501 5.1.3 Bad recipient address syntax"
#define SMTP_ERR_NEED_UTF8 "553 5.6.7 Non-ASCII address requires SMTPUTF8"
#define SMTP_ERR_PARAM "555 5.5.4 Unsupported parameter"
#define SMTP_ERR_PARAM_DUP "555 5.5.4 Duplicate parameter"
#define SMTP_ERR_PARAM_VALUE "555 5.5.4 Bad parameter value"
#define SMTP_ERR_BDAT "501 5.5.4 Syntax: BDAT size [LAST]"
#define SMTP_ERR_HELO "501 5.5.4 Syntax: EHLO hostname"

static int
smtp_fail(const char **error_r, const char *reason)
{
	*error_r = reason;
	return -1;
}

static bool
smtp_is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
smtp_is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* RFC 5322 atext; bytes of UTF-8 sequences are checked elsewhere. */
static bool
smtp_is_atext(unsigned char c)
{
	return smtp_is_alpha(c) || smtp_is_digit(c) ||
	       (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

static bool
smtp_has_8bit(const char *s)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s >= 0x80)
			return true;
	}
	return false;
}

/* ---- command lines ---- */

static const struct {
	const char *name;
	enum smtp_verb verb;
} smtp_verbs[] = {
	{ "HELO", SMTP_CMD_HELO }, { "EHLO", SMTP_CMD_EHLO },
	{ "MAIL", SMTP_CMD_MAIL }, { "RCPT", SMTP_CMD_RCPT },
	{ "DATA", SMTP_CMD_DATA }, { "BDAT", SMTP_CMD_BDAT },
	{ "RSET", SMTP_CMD_RSET }, { "NOOP", SMTP_CMD_NOOP },
	{ "QUIT", SMTP_CMD_QUIT }, { "HELP", SMTP_CMD_HELP },
	{ "VRFY", SMTP_CMD_VRFY }, { "EXPN", SMTP_CMD_EXPN },
	{ "STARTTLS", SMTP_CMD_STARTTLS }, { "AUTH", SMTP_CMD_AUTH },
};

static enum smtp_verb
smtp_verb_lookup(const char *name)
{
	for (size_t i = 0; i < sizeof(smtp_verbs) / sizeof(smtp_verbs[0]); i++) {
		if (strcasecmp(smtp_verbs[i].name, name) == 0)
			return smtp_verbs[i].verb;
	}
	return SMTP_CMD_UNKNOWN;
}

/* Finds the end of the line's content (before CRLF or LF) and rejects
 * bytes that have no place in a command line. */
static int
smtp_cmd_content_len(const char *line, size_t len, size_t *n_r, const char **error_r)
{
	size_t n;

	if (len == 0 || line[len - 1] != '\n')
		return smtp_fail(error_r, SMTP_ERR_CMD_TERM);
	n = len - 1;
	if (n > 0 && line[n - 1] == '\r')
		n--;
	if (memchr(line, '\0', n) != NULL)
		return smtp_fail(error_r, SMTP_ERR_CMD_NUL);
	if (memchr(line, '\r', n) != NULL)
		return smtp_fail(error_r, SMTP_ERR_CMD_CR);
	if (memchr(line, '\n', n) != NULL)
		return smtp_fail(error_r, SMTP_ERR_CMD_LF);
	*n_r = n;
	return 1;
}

int
smtp_cmd_parse(char *line, size_t len, struct smtp_cmd *cmd, const char **error_r)
{
	char *sp;
	size_t n;

	if (smtp_cmd_content_len(line, len, &n, error_r) < 0)
		return -1;
	line[n] = '\0';
	/* Trailing blanks are common in the wild and carry no meaning. */
	while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\t'))
		line[--n] = '\0';
	if (n == 0 || line[0] == ' ')
		return smtp_fail(error_r, SMTP_ERR_CMD_VERB);
	sp = strchr(line, ' ');
	cmd->name = line;
	if (sp != NULL) {
		*sp = '\0';
		cmd->arg = sp + 1;
	} else {
		cmd->arg = line + n;
	}
	cmd->verb = smtp_verb_lookup(line);
	return 1;
}

/* ---- paths ---- */

/* Appends one byte to a bounded field; false if it is full. */
static bool
smtp_put(char *out, size_t *len, size_t max, char c)
{
	if (*len >= max)
		return false;
	out[(*len)++] = c;
	out[*len] = '\0';
	return true;
}

/* Quoted-string = DQUOTE *QcontentSMTP DQUOTE, stored unquoted. */
static int
smtp_local_quoted(const char **pp, char *out, size_t *len, const char **error_r)
{
	const unsigned char *p = (const unsigned char *)*pp + 1;

	for (; *p != '"'; p++) {
		unsigned char c = *p;

		if (c == '\\') {
			c = *++p;
			if (c < 32 || c > 126)
				return smtp_fail(error_r, "bad local part");
		} else if (c < 32 || c == 127) {
			return smtp_fail(error_r, "bad local part");
		}
		if (!smtp_put(out, len, SMTP_LOCAL_MAX, (char)c))
			return smtp_fail(error_r, "local part too long");
	}
	*pp = (const char *)p + 1;
	return 1;
}

/* Dot-string = Atom *("." Atom); atext may include UTF-8 bytes. */
static int
smtp_local_dot_string(const char **pp, char *out, size_t *len, const char **error_r)
{
	const unsigned char *p = (const unsigned char *)*pp;
	bool atom_empty = true;

	for (;; p++) {
		unsigned char c = *p;

		if (c == '.') {
			if (atom_empty)
				return smtp_fail(error_r, "bad local part");
			atom_empty = true;
		} else if (smtp_is_atext(c) || c >= 0x80) {
			atom_empty = false;
		} else {
			break;
		}
		if (!smtp_put(out, len, SMTP_LOCAL_MAX, (char)c))
			return smtp_fail(error_r, "local part too long");
	}
	if (atom_empty)
		return smtp_fail(error_r, "bad local part");
	*pp = (const char *)p;
	return 1;
}

static int
smtp_local_parse(const char **pp, char *out, const char **error_r)
{
	size_t len = 0;
	int ret;

	out[0] = '\0';
	if (**pp == '"')
		ret = smtp_local_quoted(pp, out, &len, error_r);
	else
		ret = smtp_local_dot_string(pp, out, &len, error_r);
	if (ret < 0)
		return -1;
	if (!smtp_has_8bit(out)) {
		if (len > SMTP_LOCAL_ASCII_MAX)
			return smtp_fail(error_r, "local part too long");
	} else if (!util_utf8_valid(out, len)) {
		return smtp_fail(error_r, "bad UTF-8 in local part");
	}
	return 1;
}

static bool
smtp_ipv4_valid(const char *s)
{
	for (int part = 0; part < 4; part++) {
		unsigned v = 0;
		int digits = 0;

		if (part > 0 && *s++ != '.')
			return false;
		while (smtp_is_digit((unsigned char)*s) && digits < 3) {
			v = v * 10 + (unsigned)(*s++ - '0');
			digits++;
		}
		if (digits == 0 || v > 255)
			return false;
	}
	return *s == '\0';
}

/* The inside of an address literal: IPv4 or "IPv6:" an IPv6 address.
 * General-address-literal tags are not in use, so they are refused. */
static bool
smtp_literal_valid(const char *inside)
{
	struct in6_addr a6;

	if (strncasecmp(inside, "IPv6:", 5) == 0)
		return inet_pton(AF_INET6, inside + 5, &a6) == 1;
	return smtp_ipv4_valid(inside);
}

/* address-literal = "[" ... "]", kept as written. */
static int
smtp_literal_parse(const char **pp, char *out, const char **error_r)
{
	const char *p = *pp;
	const char *close = p + 1;
	char inside[64];
	size_t n;

	while (*close != '\0' && *close != ']' && close - p < 64)
		close++;
	if (*close != ']')
		return smtp_fail(error_r, "bad address literal");
	n = (size_t)(close - p - 1);
	memcpy(inside, p + 1, n);
	inside[n] = '\0';
	if (!smtp_literal_valid(inside))
		return smtp_fail(error_r, "bad address literal");
	memcpy(out, p, n + 2);
	out[n + 2] = '\0';
	*pp = close + 1;
	return 1;
}

/* One LDH label (or a U-label of UTF-8 bytes); returns its length. */
static size_t
smtp_label_scan(const unsigned char *p, bool *ascii_r)
{
	size_t n = 0;

	*ascii_r = true;
	while (smtp_is_alpha(p[n]) || smtp_is_digit(p[n]) || p[n] == '-' || p[n] >= 0x80) {
		if (p[n] >= 0x80)
			*ascii_r = false;
		n++;
	}
	return n;
}

/* Domain = sub-domain *("." sub-domain), lowercased into out. */
static int
smtp_domain_names(const char **pp, char *out, const char **error_r)
{
	const unsigned char *p = (const unsigned char *)*pp;
	size_t len = 0;

	for (;;) {
		bool ascii;
		size_t n = smtp_label_scan(p, &ascii);

		if (n == 0 || p[0] == '-' || p[n - 1] == '-' || (ascii && n > SMTP_LABEL_MAX))
			return smtp_fail(error_r, "bad domain");
		if (len + n > SMTP_DOMAIN_MAX)
			return smtp_fail(error_r, "domain too long");
		memcpy(out + len, p, n);
		len += n;
		p += n;
		if (*p != '.')
			break;
		if (!smtp_put(out, &len, SMTP_DOMAIN_MAX, '.'))
			return smtp_fail(error_r, "domain too long");
		p++;
	}
	out[len] = '\0';
	if (smtp_has_8bit(out) && !util_utf8_valid(out, len))
		return smtp_fail(error_r, "bad UTF-8 in domain");
	util_ascii_lower(out);
	*pp = (const char *)p;
	return 1;
}

static int
smtp_domain_parse(const char **pp, char *out, const char **error_r)
{
	if (**pp == '[')
		return smtp_literal_parse(pp, out, error_r);
	return smtp_domain_names(pp, out, error_r);
}

/* A-d-l = At-domain *( "," At-domain ) ":" -- checked, then ignored
 * (RFC 5321 section 4.1.2 and appendix C). */
static int
smtp_route_skip(const char **pp, bool *utf8_r, const char **error_r)
{
	char domain[SMTP_DOMAIN_MAX + 1];

	for (;;) {
		if (**pp != '@')
			return smtp_fail(error_r, "bad source route");
		(*pp)++;
		if (smtp_domain_parse(pp, domain, error_r) < 0)
			return -1;
		if (smtp_has_8bit(domain))
			*utf8_r = true;
		if (**pp == ':') {
			(*pp)++;
			return 1;
		}
		if (**pp != ',')
			return smtp_fail(error_r, "bad source route");
		(*pp)++;
	}
}

/* "<Postmaster>" names the postmaster of the receiving host (RFC 5321
 * section 4.1.1.3); it is the only path without a domain. */
static bool
smtp_path_postmaster(const char *p, struct smtp_path *path)
{
	if (strncasecmp(p, "Postmaster>", 11) != 0)
		return false;
	memcpy(path->local, p, 10);
	path->local[10] = '\0';
	path->postmaster = true;
	return true;
}

static int
smtp_mailbox_parse(const char **pp, struct smtp_path *path, const char **error_r)
{
	if (smtp_local_parse(pp, path->local, error_r) < 0)
		return -1;
	if (**pp != '@')
		return smtp_fail(error_r, "missing domain");
	(*pp)++;
	return smtp_domain_parse(pp, path->domain, error_r);
}

int
smtp_path_parse(const char *s, bool utf8_ok, struct smtp_path *path,
		const char **end_r, const char **error_r)
{
	const char *p = s + 1;
	bool route_utf8 = false;

	memset(path, 0, sizeof(*path));
	if (s[0] != '<')
		return smtp_fail(error_r, "missing <");
	if (*p == '>') {
		path->null_path = true;
		*end_r = p + 1;
		return 1;
	}
	if (smtp_path_postmaster(p, path)) {
		*end_r = p + 11;
		return 1;
	}
	if (*p == '@' && smtp_route_skip(&p, &route_utf8, error_r) < 0)
		return -1;
	if (smtp_mailbox_parse(&p, path, error_r) < 0)
		return -1;
	if (*p != '>')
		return smtp_fail(error_r, "missing >");
	path->utf8 = smtp_has_8bit(path->local) || smtp_has_8bit(path->domain);
	if ((path->utf8 || route_utf8) && !utf8_ok)
		return smtp_fail(error_r, "non-ASCII address without SMTPUTF8");
	*end_r = p + 1;
	return 1;
}

/* A local part can go out bare only if it is a Dot-string. */
static bool
smtp_local_needs_quotes(const char *local)
{
	const unsigned char *p = (const unsigned char *)local;
	size_t len = strlen(local);

	if (len == 0 || p[0] == '.' || p[len - 1] == '.' || strstr(local, "..") != NULL)
		return true;
	for (; *p != '\0'; p++) {
		if (*p != '.' && !smtp_is_atext(*p) && *p < 0x80)
			return true;
	}
	return false;
}

int
smtp_path_format(const struct smtp_path *path, char *out, size_t outlen)
{
	bool quote = !path->postmaster && smtp_local_needs_quotes(path->local);
	size_t len = 0, max;

	if (outlen == 0)
		return -1;
	max = outlen - 1;
	out[0] = '\0';
	if (path->null_path)
		return 0;
	if (quote && !smtp_put(out, &len, max, '"'))
		return -1;
	for (const char *p = path->local; *p != '\0'; p++) {
		if (quote && (*p == '"' || *p == '\\') && !smtp_put(out, &len, max, '\\'))
			return -1;
		if (!smtp_put(out, &len, max, *p))
			return -1;
	}
	if (quote && !smtp_put(out, &len, max, '"'))
		return -1;
	if (path->postmaster)
		return (int)len;
	if (!smtp_put(out, &len, max, '@'))
		return -1;
	for (const char *p = path->domain; *p != '\0'; p++) {
		if (!smtp_put(out, &len, max, *p))
			return -1;
	}
	return len > INT_MAX ? -1 : (int)len;
}

/* ---- MAIL and RCPT parameters ---- */

struct smtp_param_def {
	const char *name;
	/* value is NULL when the parameter had no "=". */
	int (*parse)(void *args, const char *value, const char **error_r);
};

static int
smtp_hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Decodes RFC 3461 xtext into out (outlen bytes with the NUL). The text
 * it stands for must be printable ASCII. Returns 1 or -1. */
static int
smtp_xtext_decode(const char *in, char *out, size_t outlen)
{
	size_t len = 0;

	out[0] = '\0';
	while (*in != '\0') {
		unsigned char c = (unsigned char)*in;

		if (c == '+') {
			int hi = smtp_hex_value(in[1]);
			int lo = hi < 0 ? -1 : smtp_hex_value(in[2]);

			if (lo < 0)
				return -1;
			c = (unsigned char)(hi * 16 + lo);
			in += 3;
		} else if (c < 33 || c > 126 || c == '=') {
			return -1;
		} else {
			in++;
		}
		if (c < 32 || c > 126 || !smtp_put(out, &len, outlen - 1, (char)c))
			return -1;
	}
	return 1;
}

/* esmtp-value: printable ASCII but "=", or UTF-8 (RFC 6531). */
static bool
smtp_esmtp_value_valid(const char *v)
{
	if (*v == '\0')
		return false;
	for (const unsigned char *p = (const unsigned char *)v; *p != '\0'; p++) {
		if (*p < 33 || *p == '=' || *p == 127)
			return false;
	}
	return !smtp_has_8bit(v) || util_utf8_valid(v, strlen(v));
}

static bool
smtp_esmtp_keyword_valid(const char *k)
{
	if (!smtp_is_alpha((unsigned char)*k) && !smtp_is_digit((unsigned char)*k))
		return false;
	for (; *k != '\0'; k++) {
		unsigned char c = (unsigned char)*k;

		if (!smtp_is_alpha(c) && !smtp_is_digit(c) && c != '-')
			return false;
	}
	return true;
}

/* Copies [start, end) into a bounded buffer; false if it does not fit. */
static bool
smtp_copy_token(const char *start, const char *end, char *out, size_t outlen)
{
	size_t n = (size_t)(end - start);

	if (n >= outlen)
		return false;
	memcpy(out, start, n);
	out[n] = '\0';
	return true;
}

/* Handles one "KEYWORD[=value]" against the verb's table; seen holds a
 * bit per table entry, so that a repeated parameter is refused. */
static int
smtp_param_one(const char *key, const char *value, const struct smtp_param_def *defs,
	       unsigned *seen, void *args, const char **error_r)
{
	if (!smtp_esmtp_keyword_valid(key))
		return smtp_fail(error_r, SMTP_ERR_PARAM);
	if (value != NULL && !smtp_esmtp_value_valid(value))
		return smtp_fail(error_r, SMTP_ERR_PARAM_VALUE);
	for (unsigned i = 0; defs[i].name != NULL; i++) {
		if (strcasecmp(defs[i].name, key) != 0)
			continue;
		if (*seen & (1u << i))
			return smtp_fail(error_r, SMTP_ERR_PARAM_DUP);
		*seen |= 1u << i;
		return defs[i].parse(args, value, error_r);
	}
	return smtp_fail(error_r, SMTP_ERR_PARAM);
}

/* Parses the SP-separated parameters that follow a path. p points just
 * after the '>': it must be the end or a space. */
static int
smtp_params_parse(const char *p, const struct smtp_param_def *defs, void *args,
		  const char *syntax_error, const char **error_r)
{
	unsigned seen = 0;

	if (*p != '\0' && *p != ' ')
		return smtp_fail(error_r, syntax_error);
	for (;;) {
		char key[SMTP_KEYWORD_MAX], value[SMTP_VALUE_MAX];
		const char *start, *eq = NULL;

		while (*p == ' ')
			p++;
		if (*p == '\0')
			return 1;
		for (start = p; *p != '\0' && *p != ' '; p++) {
			if (*p == '=' && eq == NULL)
				eq = p;
		}
		if (!smtp_copy_token(start, eq != NULL ? eq : p, key, sizeof(key)))
			return smtp_fail(error_r, SMTP_ERR_PARAM);
		if (eq != NULL && !smtp_copy_token(eq + 1, p, value, sizeof(value)))
			return smtp_fail(error_r, SMTP_ERR_PARAM_VALUE);
		if (smtp_param_one(key, eq != NULL ? value : NULL, defs, &seen, args,
				   error_r) < 0)
			return -1;
	}
}

/* Reads a decimal number of at most max; false on overflow or junk. */
static bool
smtp_parse_ull(const char *s, unsigned long long max, unsigned long long *out)
{
	unsigned long long v = 0;

	if (!smtp_is_digit((unsigned char)*s))
		return false;
	for (; smtp_is_digit((unsigned char)*s); s++) {
		unsigned d = (unsigned)(*s - '0');

		if (v > (max - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return *s == '\0';
}

static int
smtp_mail_size(void *args, const char *value, const char **error_r)
{
	struct smtp_mail_args *m = args;
	unsigned long long v;

	if (value == NULL || !smtp_parse_ull(value, LLONG_MAX, &v))
		return smtp_fail(error_r, "555 5.5.4 Bad SIZE value");
	m->size = (long long)v;
	return 1;
}

static int
smtp_mail_body(void *args, const char *value, const char **error_r)
{
	static const struct { const char *name; enum smtp_body body; } bodies[] = {
		{ "7BIT", SMTP_BODY_7BIT },
		{ "8BITMIME", SMTP_BODY_8BITMIME },
		{ "BINARYMIME", SMTP_BODY_BINARYMIME },
	};
	struct smtp_mail_args *m = args;

	for (size_t i = 0; value != NULL && i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		if (strcasecmp(value, bodies[i].name) == 0) {
			m->body = bodies[i].body;
			return 1;
		}
	}
	return smtp_fail(error_r, "555 5.5.4 Bad BODY value");
}

static int
smtp_mail_smtputf8(void *args, const char *value, const char **error_r)
{
	struct smtp_mail_args *m = args;

	if (value != NULL)
		return smtp_fail(error_r, "555 5.5.4 SMTPUTF8 takes no value");
	m->smtputf8 = true;
	return 1;
}

static int
smtp_mail_auth(void *args, const char *value, const char **error_r)
{
	struct smtp_mail_args *m = args;

	if (value == NULL || smtp_xtext_decode(value, m->auth, sizeof(m->auth)) < 0)
		return smtp_fail(error_r, "555 5.5.4 Bad AUTH value");
	return 1;
}

static int
smtp_mail_envid(void *args, const char *value, const char **error_r)
{
	struct smtp_mail_args *m = args;

	if (value == NULL || smtp_xtext_decode(value, m->envid, sizeof(m->envid)) < 0)
		return smtp_fail(error_r, "555 5.5.4 Bad ENVID value");
	return 1;
}

static int
smtp_mail_ret(void *args, const char *value, const char **error_r)
{
	struct smtp_mail_args *m = args;

	if (value == NULL || (strcasecmp(value, "FULL") != 0 && strcasecmp(value, "HDRS") != 0))
		return smtp_fail(error_r, "555 5.5.4 Bad RET value");
	/* Stored in canonical case so callers can compare with strcmp. */
	memcpy(m->ret, strcasecmp(value, "FULL") == 0 ? "FULL" : "HDRS", 5);
	return 1;
}

static const struct smtp_param_def smtp_mail_params[] = {
	{ "SIZE", smtp_mail_size },
	{ "BODY", smtp_mail_body },
	{ "SMTPUTF8", smtp_mail_smtputf8 },
	{ "AUTH", smtp_mail_auth },
	{ "ENVID", smtp_mail_envid },
	{ "RET", smtp_mail_ret },
	{ NULL, NULL },
};

/* "FROM:" / "TO:" then at most one space (common in the wild), then '<'.
 * Returns where the path starts, or NULL. */
static const char *
smtp_path_start(const char *arg, const char *prefix)
{
	size_t n = strlen(prefix);

	if (strncasecmp(arg, prefix, n) != 0)
		return NULL;
	arg += n;
	if (*arg == ' ')
		arg++;
	return *arg == '<' ? arg : NULL;
}

int
smtp_mail_parse(const char *arg, struct smtp_mail_args *out, const char **error_r)
{
	const char *p = smtp_path_start(arg, "FROM:");
	const char *reason;

	memset(out, 0, sizeof(*out));
	out->size = -1;
	if (p == NULL)
		return smtp_fail(error_r, SMTP_ERR_MAIL_SYNTAX);
	/* UTF-8 is judged after the parameters, where SMTPUTF8 is. */
	if (smtp_path_parse(p, true, &out->path, &p, &reason) < 0 || out->path.postmaster)
		return smtp_fail(error_r, SMTP_ERR_BAD_SENDER);
	if (smtp_params_parse(p, smtp_mail_params, out, SMTP_ERR_MAIL_SYNTAX, error_r) < 0)
		return -1;
	if (out->path.utf8 && !out->smtputf8)
		return smtp_fail(error_r, SMTP_ERR_NEED_UTF8);
	return 1;
}

/* NOTIFY=NEVER or a list of SUCCESS, FAILURE, DELAY (RFC 3461 4.1),
 * stored upper case in a fixed order. */
static int
smtp_rcpt_notify(void *args, const char *value, const char **error_r)
{
	static const char *const words[] = { "SUCCESS", "FAILURE", "DELAY" };
	struct smtp_rcpt_args *r = args;
	bool have[3] = { false, false, false };
	const char *p = value;

	if (value == NULL)
		return smtp_fail(error_r, "555 5.5.4 Bad NOTIFY value");
	if (strcasecmp(value, "NEVER") == 0) {
		memcpy(r->notify, "NEVER", 6);
		return 1;
	}
	while (p != NULL) {
		size_t n = strcspn(p, ",");
		size_t i;

		for (i = 0; i < 3; i++) {
			if (strlen(words[i]) == n && strncasecmp(p, words[i], n) == 0)
				break;
		}
		if (i == 3 || have[i])
			return smtp_fail(error_r, "555 5.5.4 Bad NOTIFY value");
		have[i] = true;
		p = p[n] == ',' ? p + n + 1 : NULL;
	}
	for (size_t i = 0; i < 3; i++) {
		if (!have[i])
			continue;
		if (r->notify[0] != '\0')
			strcat(r->notify, ",");
		strcat(r->notify, words[i]);
	}
	return 1;
}

/* ORCPT=addr-type ";" xtext (RFC 3461 4.2). Kept as sent, still
 * xtext-encoded: it is relayed unchanged and decoded only for a DSN. */
static int
smtp_rcpt_orcpt(void *args, const char *value, const char **error_r)
{
	struct smtp_rcpt_args *r = args;
	const char *semi = value != NULL ? strchr(value, ';') : NULL;
	char type[64], addr[sizeof(r->orcpt)];
	size_t n;

	if (semi == NULL || semi == value || semi[1] == '\0' ||
	    !smtp_copy_token(value, semi, type, sizeof(type)))
		return smtp_fail(error_r, "555 5.5.4 Bad ORCPT value");
	for (const char *t = type; *t != '\0'; t++) {
		if (!smtp_is_atext((unsigned char)*t))
			return smtp_fail(error_r, "555 5.5.4 Bad ORCPT value");
	}
	/* rfc822 addresses are xtext; other types (utf-8, RFC 6533) have
	 * their own encoding and only have to be a valid esmtp-value. */
	if (strcasecmp(type, "rfc822") == 0 && smtp_xtext_decode(semi + 1, addr, sizeof(addr)) < 0)
		return smtp_fail(error_r, "555 5.5.4 Bad ORCPT value");
	n = strlen(value);
	if (n >= sizeof(r->orcpt))
		return smtp_fail(error_r, "555 5.5.4 Bad ORCPT value");
	memcpy(r->orcpt, value, n + 1);
	return 1;
}

static const struct smtp_param_def smtp_rcpt_params[] = {
	{ "NOTIFY", smtp_rcpt_notify },
	{ "ORCPT", smtp_rcpt_orcpt },
	{ NULL, NULL },
};

int
smtp_rcpt_parse(const char *arg, bool utf8_ok, struct smtp_rcpt_args *out,
		const char **error_r)
{
	const char *p = smtp_path_start(arg, "TO:");
	const char *reason;

	memset(out, 0, sizeof(*out));
	if (p == NULL)
		return smtp_fail(error_r, SMTP_ERR_RCPT_SYNTAX);
	if (smtp_path_parse(p, true, &out->path, &p, &reason) < 0 || out->path.null_path)
		return smtp_fail(error_r, SMTP_ERR_BAD_RCPT);
	if (smtp_params_parse(p, smtp_rcpt_params, out, SMTP_ERR_RCPT_SYNTAX, error_r) < 0)
		return -1;
	if (out->path.utf8 && !utf8_ok)
		return smtp_fail(error_r, SMTP_ERR_NEED_UTF8);
	return 1;
}

/* ---- BDAT, HELO/EHLO ---- */

int
smtp_bdat_parse(const char *arg, unsigned long long *size_r, bool *last_r,
		const char **error_r)
{
	char digits[24];
	size_t n = strspn(arg, "0123456789");
	const char *p = arg + n;

	if (n == 0 || !smtp_copy_token(arg, p, digits, sizeof(digits)) ||
	    !smtp_parse_ull(digits, ULLONG_MAX, size_r))
		return smtp_fail(error_r, SMTP_ERR_BDAT);
	*last_r = false;
	if (*p == '\0')
		return 1;
	if (*p != ' ')
		return smtp_fail(error_r, SMTP_ERR_BDAT);
	while (*p == ' ')
		p++;
	if (strcasecmp(p, "LAST") != 0)
		return smtp_fail(error_r, SMTP_ERR_BDAT);
	*last_r = true;
	return 1;
}

int
smtp_helo_check(const char *arg, const char **error_r)
{
	const unsigned char *p = (const unsigned char *)arg;

	if (*p == '\0')
		return smtp_fail(error_r, SMTP_ERR_HELO);
	for (; *p != '\0'; p++) {
		if (*p <= ' ' || *p == 127)
			return smtp_fail(error_r, SMTP_ERR_HELO);
	}
	if (smtp_has_8bit(arg) && !util_utf8_valid(arg, strlen(arg)))
		return smtp_fail(error_r, SMTP_ERR_HELO);
	return 1;
}
