/* dmarc.h - DMARC (RFC 7489): the policy record parser, policy discovery
 * with the organizational domain from the Public Suffix List, SPF and
 * DKIM identifier alignment, and the result and policy to apply to a
 * message. The evaluator is pure over struct ma_resolver: it is given
 * the From domains, the SPF result and the DKIM results; acting on the
 * policy is the caller's job. The np= tag of RFC 9091 is honoured.
 */
#ifndef YJ_DMARC_H
#define YJ_DMARC_H

#include <stdbool.h>
#include <stddef.h>

#include "mailauth/ma_resolver.h"
#include "mailauth/spf.h"

#define DMARC_RECORD_MAX 2048	/* a record longer than this is not read */
#define DMARC_URIS_MAX 8	/* rua/ruf URIs kept (more are ignored) */
#define DMARC_URI_MAX 256	/* one report URI */
#define DMARC_FROM_MAX 16	/* distinct From domains one message may have */
#define DMARC_PROBLEM_MAX 200
#define DMARC_PSL_FILE "/usr/share/publicsuffix/public_suffix_list.dat"

enum dmarc_policy { DMARC_P_NONE, DMARC_P_QUARANTINE, DMARC_P_REJECT };
enum dmarc_align { DMARC_RELAXED, DMARC_STRICT };
enum dmarc_result { DMARC_RES_NONE, DMARC_RES_PASS, DMARC_RES_FAIL, DMARC_RES_TEMPERROR,
		    DMARC_RES_PERMERROR };

/* fo= options, as bits. */
#define DMARC_FO_0 1u	/* report if all mechanisms fail to align (default) */
#define DMARC_FO_1 2u	/* report if any fails */
#define DMARC_FO_D 4u	/* DKIM failure report */
#define DMARC_FO_S 8u	/* SPF failure report */

struct dmarc_uri {
	char uri[DMARC_URI_MAX];	/* "mailto:addr", without the !size */
	unsigned long long max_size;	/* bytes from "!10m", 0 if not given */
};

/* A parsed record; every tag holds its default if absent or invalid. */
struct dmarc_record {
	enum dmarc_policy p, sp, np;	/* sp defaults to p, np to sp */
	bool p_given;			/* false: acting as p=none for a valid rua */
	bool sp_given, np_given;
	unsigned pct;			/* 0 to 100 */
	enum dmarc_align adkim, aspf;
	struct dmarc_uri rua[DMARC_URIS_MAX], ruf[DMARC_URIS_MAX];
	size_t n_rua, n_ruf;
	unsigned fo;			/* DMARC_FO_* */
	bool rf_afrf;			/* always: the only format defined (rf=) */
	unsigned long ri;		/* aggregate report interval, seconds */
};

/* Parses a DMARC TXT record. Returns 1 usable (rec filled), 0 not a
 * DMARC record (no leading "v=DMARC1"), -1 a DMARC record that cannot be
 * used (no valid p= and no valid rua=, RFC 7489 6.6.3), problem saying
 * why. Unknown tags and invalid values of other tags are ignored and
 * leave their defaults (6.3). */
int dmarc_record_parse(const char *txt, size_t len, struct dmarc_record *rec,
		       char problem[DMARC_PROBLEM_MAX]);

/* The organizational domain of domain (RFC 7489 3.2) into out, lower
 * case: its registrable domain by the Public Suffix List, or domain
 * itself if that is a public suffix. Returns 1, or -1 if it does not fit. */
int dmarc_org_domain(const char *domain, char *out, size_t outlen);

/* Are the two domains aligned in the given mode (3.1)? */
bool dmarc_aligned(const char *a, const char *b, enum dmarc_align mode);

struct dmarc_dkim {
	const char *domain;	/* the signature's d= */
	bool pass;		/* it verified (DKIM result pass) */
};

struct dmarc_input {
	/* The domains of the From: field's addresses, as A-labels; one
	 * that is not a domain name is a permerror. */
	const char *const *from;
	size_t n_from;
	enum spf_result spf;		/* the SPF result ... */
	const char *spf_domain;		/* ... and the domain it is for (MAIL FROM or HELO) */
	const struct dmarc_dkim *dkim;
	size_t n_dkim;
	unsigned pct_roll;		/* 0-99 from the caller's random source: the
					 * policy applies if it is below pct */
};

struct dmarc_outcome {
	enum dmarc_result result;
	enum dmarc_policy policy;	/* to apply: after pct, none unless fail */
	enum dmarc_policy requested;	/* the record's p, sp or np for this domain */
	bool sampled_out;		/* pct made policy lighter than requested */
	bool spf_aligned, dkim_aligned;
	bool has_record;
	char from_domain[DNS_NAME_MAX];		/* the From domain this is for */
	char policy_domain[DNS_NAME_MAX];	/* where the record was found */
	char org_domain[DNS_NAME_MAX];
	char dkim_domain[DNS_NAME_MAX];		/* the aligned d= that passed, if any */
	struct dmarc_record record;
	char problem[DMARC_PROBLEM_MAX];
};

/* Evaluates DMARC for a message. Several From domains are each checked
 * and the most severe outcome is kept (a fail with the strictest policy,
 * RFC 7489 6.6.1); more than DMARC_FROM_MAX distinct ones is a fail with
 * policy reject. No From domain gives none with a problem. */
void dmarc_evaluate(const struct ma_resolver *res, const struct dmarc_input *in,
		    struct dmarc_outcome *out);

const char *dmarc_result_name(enum dmarc_result r);	/* "pass", ... (RFC 8601) */
const char *dmarc_policy_name(enum dmarc_policy p);	/* "none", "quarantine", "reject" */

/* The Authentication-Results: dmarc= result: "dmarc=fail (p=reject
 * dis=quarantine) header.from=example.com". Returns 1, or -1 if outlen is
 * too small. */
int dmarc_auth_results(const struct dmarc_outcome *o, char *out, size_t outlen);

#endif
