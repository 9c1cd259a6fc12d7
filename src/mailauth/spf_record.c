/* spf_record.c - SPF record and macro-string syntax (RFC 7208 4.5, 4.6,
 * 5, 6, 7.1 and the ABNF of section 12). The whole record is checked
 * before any of it is evaluated, as 4.6 requires. */
#include "mailauth/spf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define SPF_VERSION "v=spf1"
#define SPF_VERSION_LEN 6

const char *
spf_result_name(enum spf_result r)
{
	static const char *const names[] = {
		[SPF_NONE] = "none", [SPF_NEUTRAL] = "neutral", [SPF_PASS] = "pass",
		[SPF_FAIL] = "fail", [SPF_SOFTFAIL] = "softfail",
		[SPF_TEMPERROR] = "temperror", [SPF_PERMERROR] = "permerror",
	};

	return (unsigned)r < sizeof(names) / sizeof(names[0]) ? names[r] : "permerror";
}

bool
spf_is_record(const char *txt, size_t len)
{
	return len >= SPF_VERSION_LEN && strncasecmp(txt, SPF_VERSION, SPF_VERSION_LEN) == 0 &&
	       (len == SPF_VERSION_LEN || txt[SPF_VERSION_LEN] == ' ');
}

/* ---- macro-string syntax ---- */

static bool
spf_macro_letter_ok(char c, bool exp)
{
	if (c == '\0')
		return false;
	c = (char)tolower((unsigned char)c);
	if (strchr("slodiphv", c) != NULL)
		return true;
	return exp && strchr("crt", c) != NULL;
}

/* Checks the macro-expand starting at s[0] == '%'; returns its length,
 * or 0 if invalid. */
static size_t
spf_macro_expand_len(const char *s, size_t len, bool exp)
{
	size_t i = 2;
	bool digits = false, zero = true;

	if (len < 2)
		return 0;
	if (s[1] == '%' || s[1] == '_' || s[1] == '-')
		return 2;
	if (s[1] != '{' || len < 4 || !spf_macro_letter_ok(s[2], exp))
		return 0;
	for (i = 3; i < len && isdigit((unsigned char)s[i]); i++) {
		digits = true;
		if (s[i] != '0')
			zero = false;
	}
	/* A digit transformer, if given, must not be zero (7.3). */
	if (digits && zero)
		return 0;
	if (i < len && (s[i] == 'r' || s[i] == 'R'))
		i++;
	while (i < len && s[i] != '\0' && strchr(".-+,/_=", s[i]) != NULL)
		i++;
	if (i >= len || s[i] != '}')
		return 0;
	return i + 1;
}

/* Scans a macro-string (with spaces too if spaces); *ends_macro_r says
 * whether it ends with a macro-expand. */
static bool
spf_macro_scan(const char *s, size_t len, bool exp, bool spaces, bool *ends_macro_r)
{
	size_t i = 0;
	bool ends_macro = false;

	while (i < len) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '%') {
			size_t n = spf_macro_expand_len(s + i, len - i, exp);

			if (n == 0)
				return false;
			i += n;
			ends_macro = true;
			continue;
		}
		if (!(ch > 0x20 && ch < 0x7f) && !(spaces && ch == ' '))
			return false;
		ends_macro = false;
		i++;
	}
	if (ends_macro_r != NULL)
		*ends_macro_r = ends_macro;
	return true;
}

bool
spf_macro_valid(const char *s, size_t len, bool exp)
{
	return spf_macro_scan(s, len, exp, exp, NULL);
}

/* toplabel = ( *alphanum ALPHA *alphanum ) /
 *            ( 1*alphanum "-" *( alphanum / "-" ) alphanum ) */
static bool
spf_toplabel_ok(const char *s, size_t len)
{
	bool alpha = false, hyphen = false;

	if (len == 0 || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[len - 1]))
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '-')
			hyphen = true;
		else if (isalpha((unsigned char)s[i]))
			alpha = true;
		else if (!isdigit((unsigned char)s[i]))
			return false;
	}
	return alpha || hyphen;
}

/* domain-spec = macro-string domain-end
 * domain-end  = ( "." toplabel [ "." ] ) / macro-expand */
static bool
spf_domain_spec_ok(const char *s, size_t len)
{
	bool ends_macro;
	size_t end = len, dot;

	if (len == 0 || !spf_macro_scan(s, len, false, false, &ends_macro))
		return false;
	if (ends_macro)
		return true;
	if (s[end - 1] == '.')
		end--;
	for (dot = end; dot > 0 && s[dot - 1] != '.'; dot--)
		;
	if (dot == 0)
		return false;
	return spf_toplabel_ok(s + dot, end - dot);
}

/* ---- terms ---- */

/* "0" / %x31-39 0*(digits-1)DIGIT, at most max. Returns the value or -1. */
static int
spf_cidr_value(const char *s, size_t len, int max)
{
	int v = 0;

	if (len == 0 || len > 3 || (s[0] == '0' && len > 1))
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v <= max ? v : -1;
}

/* dual-cidr-length = [ ip4-cidr-length ] [ "/" ip6-cidr-length ] */
static bool
spf_dual_cidr(const char *s, size_t len, struct spf_term *t)
{
	size_t i = 0, n;

	if (len == 0)
		return true;
	if (s[0] != '/')
		return false;
	if (len >= 2 && s[1] != '/') {
		for (n = 1; n < len && s[n] != '/'; n++)
			;
		t->cidr4 = spf_cidr_value(s + 1, n - 1, 32);
		if (t->cidr4 < 0)
			return false;
		i = n;
	}
	if (i == len)
		return true;
	if (len - i < 3 || s[i] != '/' || s[i + 1] != '/')
		return false;
	t->cidr6 = spf_cidr_value(s + i + 2, len - i - 2, 128);
	return t->cidr6 >= 0;
}

/* Length of a trailing "/" 1*DIGIT at the end of s[0..len), 0 if none. */
static size_t
spf_cidr_suffix(const char *s, size_t len)
{
	size_t n = 0;

	while (n < len && n < 4 && isdigit((unsigned char)s[len - 1 - n]))
		n++;
	if (n == 0 || n >= len || s[len - 1 - n] != '/')
		return 0;
	return n + 1;
}

/* Length of the domain-spec in "a:" and "mx:" arguments: a domain-spec
 * may hold ':' and '/', so the dual-cidr-length is what matches at the
 * end (ip6 "//N", then ip4 "/N"). */
static size_t
spf_domain_spec_len(const char *s, size_t len)
{
	size_t n = spf_cidr_suffix(s, len);

	if (n > 0 && n < len && s[len - n - 1] == '/')
		len -= n + 1;
	n = spf_cidr_suffix(s, len);
	if (n > 0 && n < len && s[len - n - 1] != '/')
		len -= n;
	return len;
}

/* ip4-network / ip6-network with its optional prefix length. */
static bool
spf_parse_ip(const char *s, size_t len, struct spf_term *t, bool v6)
{
	char addr[INET6_ADDRSTRLEN];
	size_t n = 0;

	while (n < len && s[n] != '/')
		n++;
	if (n == 0 || n >= sizeof(addr))
		return false;
	memcpy(addr, s, n);
	addr[n] = '\0';
	if (inet_pton(v6 ? AF_INET6 : AF_INET, addr, t->net) != 1)
		return false;
	if (n == len)
		return true;
	if (v6)
		t->cidr6 = spf_cidr_value(s + n + 1, len - n - 1, 128);
	else
		t->cidr4 = spf_cidr_value(s + n + 1, len - n - 1, 32);
	return (v6 ? t->cidr6 : t->cidr4) >= 0;
}

static const struct {
	const char *name;
	enum spf_term_kind kind;
} spf_mechanisms[] = {
	{ "all", SPF_ALL }, { "include", SPF_INCLUDE }, { "a", SPF_A }, { "mx", SPF_MX },
	{ "ptr", SPF_PTR }, { "ip4", SPF_IP4 }, { "ip6", SPF_IP6 }, { "exists", SPF_EXISTS },
};

static bool
spf_mech_lookup(const char *s, size_t len, enum spf_term_kind *kind)
{
	for (size_t i = 0; i < sizeof(spf_mechanisms) / sizeof(spf_mechanisms[0]); i++) {
		if (strlen(spf_mechanisms[i].name) == len &&
		    strncasecmp(spf_mechanisms[i].name, s, len) == 0) {
			*kind = spf_mechanisms[i].kind;
			return true;
		}
	}
	return false;
}

/* The arguments after a mechanism's name: s is what follows the name. */
static bool
spf_mech_args(const char *s, size_t len, struct spf_term *t)
{
	bool colon = len > 0 && s[0] == ':';
	size_t dlen;

	switch (t->kind) {
	case SPF_ALL:
		return len == 0;
	case SPF_IP4:
	case SPF_IP6:
		return colon && spf_parse_ip(s + 1, len - 1, t, t->kind == SPF_IP6);
	case SPF_INCLUDE:
	case SPF_EXISTS:
		if (!colon)
			return false;
		t->spec = s + 1;
		t->spec_len = len - 1;
		return spf_domain_spec_ok(t->spec, t->spec_len);
	case SPF_PTR:
		if (len == 0)
			return true;
		if (!colon)
			return false;
		t->spec = s + 1;
		t->spec_len = len - 1;
		return spf_domain_spec_ok(t->spec, t->spec_len);
	case SPF_A:
	case SPF_MX:
		if (colon) {
			dlen = spf_domain_spec_len(s + 1, len - 1);
			t->spec = s + 1;
			t->spec_len = dlen;
			if (!spf_domain_spec_ok(t->spec, dlen))
				return false;
			s += 1 + dlen;
			len -= 1 + dlen;
		}
		return spf_dual_cidr(s, len, t);
	default:
		return false;
	}
}

static int
spf_problem(char problem[SPF_PROBLEM_MAX], const char *what, const char *term, size_t len)
{
	snprintf(problem, SPF_PROBLEM_MAX, "%s: '%.*s'", what, len > 60 ? 60 : (int)len, term);
	return -1;
}

/* modifier = name "=" value; known names may appear once each. */
static int
spf_parse_modifier(struct spf_record *rec, struct spf_term *t, size_t name_len,
		   char problem[SPF_PROBLEM_MAX])
{
	const char *name = t->term;
	int *slot = NULL;

	if (name_len == 0 || !isalpha((unsigned char)name[0]))
		return spf_problem(problem, "invalid modifier name", t->term, t->term_len);
	t->spec = name + name_len + 1;
	t->spec_len = t->term_len - name_len - 1;
	if (name_len == 8 && strncasecmp(name, "redirect", 8) == 0) {
		t->kind = SPF_REDIRECT;
		slot = &rec->redirect;
	} else if (name_len == 3 && strncasecmp(name, "exp", 3) == 0) {
		t->kind = SPF_EXPLAIN;
		slot = &rec->exp;
	} else {
		t->kind = SPF_UNKNOWN_MOD;
		if (!spf_macro_valid(t->spec, t->spec_len, false))
			return spf_problem(problem, "invalid modifier value", t->term, t->term_len);
		return 1;
	}
	if (*slot >= 0)
		return spf_problem(problem, "modifier given twice", t->term, t->term_len);
	if (!spf_domain_spec_ok(t->spec, t->spec_len))
		return spf_problem(problem, "invalid domain", t->term, t->term_len);
	*slot = (int)rec->n_terms;
	return 1;
}

static int
spf_parse_term(struct spf_record *rec, const char *s, size_t len, char problem[SPF_PROBLEM_MAX])
{
	struct spf_term *t = &rec->terms[rec->n_terms];
	size_t name_len = 0;
	bool qualified = false;

	memset(t, 0, sizeof(*t));
	t->term = s;
	t->term_len = len;
	t->cidr4 = 32;
	t->cidr6 = 128;
	t->qualifier = SPF_PASS;
	while (name_len < len && (isalnum((unsigned char)s[name_len]) ||
				  strchr("-_.", s[name_len]) != NULL))
		name_len++;
	if (name_len < len && s[name_len] == '=')
		return spf_parse_modifier(rec, t, name_len, problem);
	switch (s[0]) {
	case '+': t->qualifier = SPF_PASS; qualified = true; break;
	case '-': t->qualifier = SPF_FAIL; qualified = true; break;
	case '~': t->qualifier = SPF_SOFTFAIL; qualified = true; break;
	case '?': t->qualifier = SPF_NEUTRAL; qualified = true; break;
	default: break;
	}
	if (qualified) {
		s++;
		len--;
	}
	for (name_len = 0; name_len < len && isalnum((unsigned char)s[name_len]); name_len++)
		;
	if (!spf_mech_lookup(s, name_len, &t->kind))
		return spf_problem(problem, "unknown mechanism", t->term, t->term_len);
	if (!spf_mech_args(s + name_len, len - name_len, t))
		return spf_problem(problem, "syntax error", t->term, t->term_len);
	if (t->kind == SPF_ALL)
		rec->has_all = true;
	return 1;
}

int
spf_record_parse(const char *txt, size_t len, struct spf_record *rec,
		 char problem[SPF_PROBLEM_MAX])
{
	size_t pos;

	rec->n_terms = 0;
	rec->redirect = rec->exp = -1;
	rec->has_all = false;
	if (!spf_is_record(txt, len)) {
		snprintf(problem, SPF_PROBLEM_MAX, "not an SPF record");
		return -1;
	}
	if (len >= sizeof(rec->text)) {
		snprintf(problem, SPF_PROBLEM_MAX, "record longer than %d bytes", SPF_RECORD_MAX - 1);
		return -1;
	}
	/* Terms are separated by spaces only; anything else outside
	 * printable ASCII (controls, 8-bit) is a syntax error (3.1, 4.6.1). */
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)txt[i] < 0x20 || (unsigned char)txt[i] > 0x7e) {
			snprintf(problem, SPF_PROBLEM_MAX,
				 "record holds a character outside printable ASCII");
			return -1;
		}
	}
	memcpy(rec->text, txt, len);
	rec->text[len] = '\0';
	pos = SPF_VERSION_LEN;
	for (;;) {
		size_t start;

		while (pos < len && rec->text[pos] == ' ')
			pos++;
		if (pos >= len)
			return 1;
		start = pos;
		while (pos < len && rec->text[pos] != ' ')
			pos++;
		if (rec->n_terms >= SPF_TERMS_MAX) {
			snprintf(problem, SPF_PROBLEM_MAX, "more than %d terms", SPF_TERMS_MAX);
			return -1;
		}
		if (spf_parse_term(rec, rec->text + start, pos - start, problem) < 0)
			return -1;
		rec->n_terms++;
	}
}
