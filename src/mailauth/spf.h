/* spf.h - Sender Policy Framework (RFC 7208): the record parser, macro
 * expansion, check_host() for the MAIL FROM and HELO identities, and the
 * Received-SPF: and Authentication-Results: texts of a result.
 *
 * Pure over struct ma_resolver: no other I/O, no global state, so one
 * evaluation may run in each connection's thread. Every limit is named
 * here; a record or expansion that exceeds one is a permerror, never a
 * truncation that could change the meaning.
 */
#ifndef YJ_SPF_H
#define YJ_SPF_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "mailauth/ma_resolver.h"

#define SPF_DNS_MECH_MAX 10	/* include, a, mx, ptr, exists, redirect (4.6.4) */
#define SPF_VOID_MAX 2		/* lookups answering NXDOMAIN or no data (4.6.4) */
#define SPF_MX_MAX 10		/* MX records one mx mechanism may look at */
#define SPF_PTR_MAX 10		/* PTR names one ptr mechanism or %{p} looks at */
#define SPF_ADDR_MAX 32		/* A/AAAA records looked at per name */
#define SPF_RECORD_MAX 4096	/* a record's text; longer ones are a permerror */
#define SPF_TERMS_MAX 256	/* terms in one record */
#define SPF_EXPAND_MAX 1024	/* a macro expansion (a domain is then cut to 253) */
#define SPF_EXP_MAX 512		/* the explanation string kept for a fail */
#define SPF_MECH_MAX 256	/* the matched mechanism kept for the header */
#define SPF_PROBLEM_MAX 200	/* why a result is permerror or temperror */
#define SPF_HEADER_MAX 2048	/* a whole Received-SPF: field */

enum spf_result {
	SPF_NONE, SPF_NEUTRAL, SPF_PASS, SPF_FAIL, SPF_SOFTFAIL,
	SPF_TEMPERROR, SPF_PERMERROR,
};

/* "none", "neutral", "pass", ... as RFC 7208 and RFC 8601 spell them. */
const char *spf_result_name(enum spf_result r);

/* ---- records ---- */

enum spf_term_kind {
	SPF_ALL, SPF_INCLUDE, SPF_A, SPF_MX, SPF_PTR, SPF_IP4, SPF_IP6, SPF_EXISTS,
	SPF_REDIRECT, SPF_EXPLAIN, SPF_UNKNOWN_MOD,
};

/* One term; text pointers point into the parsed record's text. */
struct spf_term {
	enum spf_term_kind kind;
	enum spf_result qualifier;	/* PASS, FAIL, SOFTFAIL or NEUTRAL */
	const char *term;		/* the whole term as written */
	size_t term_len;
	const char *spec;		/* domain-spec or modifier value, NULL if none */
	size_t spec_len;
	unsigned char net[16];		/* ip4/ip6 network, in network order */
	int cidr4, cidr6;		/* prefix lengths: 32 and 128 if not given */
};

struct spf_record {
	char text[SPF_RECORD_MAX];	/* the record, NUL-terminated */
	struct spf_term terms[SPF_TERMS_MAX];
	size_t n_terms;
	int redirect, exp;		/* index of that modifier, or -1 */
	bool has_all;
};

/* Is txt (len bytes) an SPF record: "v=spf1" (any case) followed by a
 * space or its end? */
bool spf_is_record(const char *txt, size_t len);

/* Parses an SPF record (starting with its version) into rec. Any syntax
 * error anywhere is an error (RFC 7208 4.6): returns 1, or -1 with the
 * reason in problem. */
int spf_record_parse(const char *txt, size_t len, struct spf_record *rec,
		     char problem[SPF_PROBLEM_MAX]);

/* ---- macros ---- */

/* Checks macro-string syntax (RFC 7208 7.1); exp allows the c, r and t
 * letters of explanation strings. Returns true if valid. */
bool spf_macro_valid(const char *s, size_t len, bool exp);

/* %{p} costs a PTR lookup and up to SPF_PTR_MAX address lookups, so one
 * evaluation looks it up once per domain d, for at most SPF_DNS_MECH_MAX
 * domains (then it is "unknown"). */
struct spf_p_cache {
	char d[DNS_NAME_MAX];
	char value[DNS_NAME_MAX];
	unsigned lookups;
};

/* The values macros expand to; d is the domain being checked. */
struct spf_macro_vars {
	const char *sender;	/* local-part@domain, never empty */
	const char *local;	/* its local part ("postmaster" if none given) */
	const char *domain_o;	/* its domain */
	const char *d;
	const char *ip;		/* the client address, as given */
	const char *helo;
	const char *receiver;	/* %{r}: "unknown" if NULL */
	time_t now;		/* %{t} */
	const struct ma_resolver *res;	/* for %{p}; NULL expands it "unknown" */
	struct spf_p_cache *pcache;	/* NULL: %{p} is looked up each time */
};

/* Expands a macro-string (already checked by spf_macro_valid) into out.
 * Returns 1, or -1 if the expansion does not fit in outlen. */
int spf_macro_expand(const char *s, size_t len, const struct spf_macro_vars *v, bool exp,
		     char *out, size_t outlen);

/* ---- check_host() ---- */

enum spf_identity { SPF_ID_MAILFROM, SPF_ID_HELO };

struct spf_request {
	const char *ip;		/* client address: "192.0.2.1", "2001:db8::1" */
	const char *helo;	/* the HELO/EHLO argument ("" if none) */
	const char *mailfrom;	/* MAIL FROM address without <>, "" for the null sender */
	const char *receiver;	/* our host name for %{r} and the header; NULL "unknown" */
	time_t now;		/* for %{t} */
	/* Explanation of a fail whose record gives none (exp=); NULL none. */
	const char *default_exp;
};

struct spf_outcome {
	enum spf_result result;
	enum spf_identity identity;	/* the identity that was checked */
	char domain[DNS_NAME_MAX];	/* its domain ("" if unusable) */
	char mechanism[SPF_MECH_MAX];	/* the term that decided, "" for the default */
	char explanation[SPF_EXP_MAX];	/* a fail's explanation, "" if none;
					 * printable ASCII only */
	char problem[SPF_PROBLEM_MAX];	/* temperror/permerror reason, else "" */
	unsigned dns_mechs, voids;	/* lookups it took, as counted for the limits */
};

/* check_host() for one identity: MAILFROM checks the MAIL FROM domain
 * (the null sender is checked as postmaster@HELO with identity HELO, as
 * RFC 7208 2.4 says); HELO checks postmaster@HELO. Never fails: every
 * problem is a result. */
void spf_check(const struct ma_resolver *res, const struct spf_request *req,
	       enum spf_identity id, struct spf_outcome *out);

/* The Received-SPF: field (RFC 7208 9.1) for an outcome, "Received-SPF: "
 * included, without CRLF, folded with CRLF SP where long. Values from the
 * client are quoted or left out, never copied raw. Returns 1, or -1 if
 * outlen is too small. */
int spf_received_header(const struct spf_request *req, const struct spf_outcome *o,
			char *out, size_t outlen);

/* The Authentication-Results: spf= result with its property (RFC 8601):
 * "spf=pass smtp.mailfrom=example.com" or "spf=none smtp.helo=mx.example".
 * Returns 1, or -1 if outlen is too small. */
int spf_auth_results(const struct spf_request *req, const struct spf_outcome *o,
		     char *out, size_t outlen);

#endif
