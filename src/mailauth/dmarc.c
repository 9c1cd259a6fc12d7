/* dmarc.c - DMARC evaluation (RFC 7489 4, 6.6): policy discovery at the
 * From domain and then its organizational domain, identifier alignment,
 * the result, and the policy after sp=, np= (RFC 9091) and pct=. */
#include "mailauth/dmarc.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libpsl.h>

#include "base/log.h"

#define DMARC_PREFIX "_dmarc."

const char *
dmarc_result_name(enum dmarc_result r)
{
	static const char *const names[] = {
		[DMARC_RES_NONE] = "none", [DMARC_RES_PASS] = "pass", [DMARC_RES_FAIL] = "fail",
		[DMARC_RES_TEMPERROR] = "temperror", [DMARC_RES_PERMERROR] = "permerror",
	};

	return (unsigned)r < sizeof(names) / sizeof(names[0]) ? names[r] : "permerror";
}

const char *
dmarc_policy_name(enum dmarc_policy p)
{
	return p == DMARC_P_REJECT ? "reject" : p == DMARC_P_QUARANTINE ? "quarantine" : "none";
}

/* ---- organizational domain ---- */

static struct {
	pthread_once_t once;
	psl_ctx_t *psl;
} dmarc_psl = { .once = PTHREAD_ONCE_INIT };

/* The list is read once, from the publicsuffix package's file; without
 * it every domain is its own organizational domain (strict alignment),
 * which can make mail fail DMARC but never pass wrongly. */
static void
dmarc_psl_load(void)
{
	dmarc_psl.psl = psl_load_file(DMARC_PSL_FILE);
	if (dmarc_psl.psl == NULL)
		log_error("dmarc: cannot read the Public Suffix List %s; "
			  "organizational domains fall back to the domain itself", DMARC_PSL_FILE);
}

int
dmarc_org_domain(const char *domain, char *out, size_t outlen)
{
	char lower[DNS_NAME_MAX];
	const char *reg = NULL;
	size_t len = strlen(domain);

	if (len > 0 && domain[len - 1] == '.')
		len--;
	if (len >= sizeof(lower) || len >= outlen)
		return -1;
	for (size_t i = 0; i < len; i++)
		lower[i] = (char)tolower((unsigned char)domain[i]);
	lower[len] = '\0';
	pthread_once(&dmarc_psl.once, dmarc_psl_load);
	if (dmarc_psl.psl != NULL)
		reg = psl_registrable_domain(dmarc_psl.psl, lower);
	snprintf(out, outlen, "%s", reg != NULL ? reg : lower);
	return 1;
}

bool
dmarc_aligned(const char *a, const char *b, enum dmarc_align mode)
{
	char oa[DNS_NAME_MAX], ob[DNS_NAME_MAX];
	size_t la = strlen(a), lb = strlen(b);

	if (la > 0 && a[la - 1] == '.')
		la--;
	if (lb > 0 && b[lb - 1] == '.')
		lb--;
	if (la == 0 || lb == 0)
		return false;
	if (mode == DMARC_STRICT)
		return la == lb && strncasecmp(a, b, la) == 0;
	if (dmarc_org_domain(a, oa, sizeof(oa)) < 0 || dmarc_org_domain(b, ob, sizeof(ob)) < 0)
		return false;
	return strcmp(oa, ob) == 0;
}

/* ---- policy discovery ---- */

struct dmarc_found {
	unsigned count;		/* TXT records starting with v=DMARC1 */
	int parsed;		/* dmarc_record_parse() of the first */
	struct dmarc_record *rec;
	char problem[DMARC_PROBLEM_MAX];
};

static void
dmarc_collect(void *ctx, const char *txt, size_t len)
{
	struct dmarc_found *f = ctx;
	struct dmarc_record *rec = f->count == 0 ? f->rec : malloc(sizeof(*rec));
	char problem[DMARC_PROBLEM_MAX];
	int r;

	if (rec == NULL)
		log_fatal("dmarc: out of memory");
	r = dmarc_record_parse(txt, len, rec, problem);
	if (rec != f->rec)
		free(rec);
	if (r == 0)
		return;
	if (f->count++ == 0) {
		f->parsed = r;
		snprintf(f->problem, sizeof(f->problem), "%s", problem);
	}
}

/* Looks for the record at _dmarc.domain: 1 found and usable, 0 none,
 * -1 with out->result set (temperror, or permerror for several records
 * or an unusable one). */
static int
dmarc_fetch(const struct ma_resolver *res, const char *domain, struct dmarc_outcome *out)
{
	struct dmarc_found f = { .rec = &out->record };
	char name[DNS_NAME_MAX + sizeof(DMARC_PREFIX)];
	int r;

	snprintf(name, sizeof(name), DMARC_PREFIX "%s", domain);
	r = res->txt(res->arg, name, dmarc_collect, &f);
	if (r < 0) {
		out->result = DMARC_RES_TEMPERROR;
		snprintf(out->problem, sizeof(out->problem), "DNS error looking up %.120s", name);
		return -1;
	}
	if (f.count == 0)
		return 0;
	snprintf(out->policy_domain, sizeof(out->policy_domain), "%s", domain);
	if (f.count > 1 || f.parsed < 0) {
		out->result = DMARC_RES_PERMERROR;
		if (f.count > 1)
			snprintf(out->problem, sizeof(out->problem), "%.120s has %u DMARC records", name,
				 f.count);
		else
			snprintf(out->problem, sizeof(out->problem), "%.60s: %.120s", name, f.problem);
		return -1;
	}
	out->has_record = true;
	return 1;
}

/* RFC 9091: a domain with no A, AAAA or MX record does not exist. DNS
 * errors count as existing. */
static bool
dmarc_nonexistent(const struct ma_resolver *res, const char *domain)
{
	char addrs[1][DNS_ADDR_MAX];
	struct dns_mx mx[1];
	size_t n;

	return res->a(res->arg, domain, addrs, 1, &n) == 0 &&
	       res->aaaa(res->arg, domain, addrs, 1, &n) == 0 &&
	       res->mx(res->arg, domain, mx, 1, &n) == 0;
}

static void
dmarc_align(const struct dmarc_input *in, const char *from, struct dmarc_outcome *out)
{
	const struct dmarc_record *rec = &out->record;

	out->spf_aligned = in->spf == SPF_PASS && in->spf_domain != NULL &&
			   dmarc_aligned(in->spf_domain, from, rec->aspf);
	for (size_t i = 0; i < in->n_dkim; i++) {
		if (!in->dkim[i].pass || in->dkim[i].domain == NULL ||
		    !dmarc_aligned(in->dkim[i].domain, from, rec->adkim))
			continue;
		out->dkim_aligned = true;
		snprintf(out->dkim_domain, sizeof(out->dkim_domain), "%s", in->dkim[i].domain);
		break;
	}
}

/* The policy for a failing message (6.6.4 and 6.6.3 step 6; RFC 9091). */
static void
dmarc_policy(const struct ma_resolver *res, const struct dmarc_input *in, const char *from,
	     struct dmarc_outcome *out)
{
	const struct dmarc_record *rec = &out->record;
	enum dmarc_policy p = rec->p;

	if (strcasecmp(out->policy_domain, from) != 0) {
		p = rec->sp;
		if (rec->np_given && dmarc_nonexistent(res, from))
			p = rec->np;
	}
	out->requested = p;
	out->policy = p;
	if (in->pct_roll >= rec->pct && p != DMARC_P_NONE) {
		out->policy = p == DMARC_P_REJECT ? DMARC_P_QUARANTINE : DMARC_P_NONE;
		out->sampled_out = true;
	}
}

/* A From domain as DMARC takes it: an A-label name of letters, digits,
 * '-', '_' and dots, at most 253 characters (so it can go into headers). */
static bool
dmarc_domain_ok(const char *d)
{
	size_t len = strlen(d);

	if (len == 0 || len > 253 || d[0] == '.' || strstr(d, "..") != NULL)
		return false;
	for (; *d != '\0'; d++) {
		if (!isalnum((unsigned char)*d) && strchr(".-_", *d) == NULL)
			return false;
	}
	return true;
}

/* DMARC for one From domain. */
static void
dmarc_one(const struct ma_resolver *res, const struct dmarc_input *in, const char *from,
	  struct dmarc_outcome *out)
{
	int r;

	memset(out, 0, sizeof(*out));
	out->result = DMARC_RES_NONE;
	if (!dmarc_domain_ok(from)) {
		out->result = DMARC_RES_PERMERROR;
		snprintf(out->problem, sizeof(out->problem), "the From domain is not a domain name");
		return;
	}
	snprintf(out->from_domain, sizeof(out->from_domain), "%s", from);
	if (dmarc_org_domain(from, out->org_domain, sizeof(out->org_domain)) < 0)
		snprintf(out->org_domain, sizeof(out->org_domain), "%s", from);
	r = dmarc_fetch(res, from, out);
	if (r == 0 && strcasecmp(out->org_domain, from) != 0)
		r = dmarc_fetch(res, out->org_domain, out);
	if (r <= 0)
		return;
	dmarc_align(in, from, out);
	if (out->spf_aligned || out->dkim_aligned) {
		out->result = DMARC_RES_PASS;
		out->requested = strcasecmp(out->policy_domain, from) == 0 ? out->record.p
									 : out->record.sp;
		return;
	}
	out->result = DMARC_RES_FAIL;
	dmarc_policy(res, in, from, out);
}

/* How much an outcome weighs when several From domains are checked: a
 * fail with the strictest policy first. */
static int
dmarc_weight(const struct dmarc_outcome *o)
{
	switch (o->result) {
	case DMARC_RES_FAIL: return 10 + (int)o->policy;
	case DMARC_RES_TEMPERROR: return 4;
	case DMARC_RES_PERMERROR: return 3;
	case DMARC_RES_PASS: return 2;
	default: return 1;
	}
}

static bool
dmarc_seen(const struct dmarc_input *in, size_t i)
{
	for (size_t j = 0; j < i; j++) {
		if (strcasecmp(in->from[j], in->from[i]) == 0)
			return true;
	}
	return false;
}

void
dmarc_evaluate(const struct ma_resolver *res, const struct dmarc_input *in,
	       struct dmarc_outcome *out)
{
	struct dmarc_outcome *one;
	size_t distinct = 0;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < in->n_from; i++)
		distinct += dmarc_seen(in, i) ? 0 : 1;
	if (distinct == 0) {
		snprintf(out->problem, sizeof(out->problem), "no From domain");
		return;
	}
	if (distinct > DMARC_FROM_MAX) {
		out->result = DMARC_RES_FAIL;
		out->policy = out->requested = DMARC_P_REJECT;
		snprintf(out->problem, sizeof(out->problem), "more than %d From domains",
			 DMARC_FROM_MAX);
		return;
	}
	one = malloc(sizeof(*one));
	if (one == NULL)
		log_fatal("dmarc: out of memory");
	out->result = DMARC_RES_NONE;
	for (size_t i = 0, n = 0; i < in->n_from; i++) {
		if (dmarc_seen(in, i))
			continue;
		dmarc_one(res, in, in->from[i], one);
		if (n++ == 0 || dmarc_weight(one) > dmarc_weight(out))
			*out = *one;
	}
	free(one);
}

int
dmarc_auth_results(const struct dmarc_outcome *o, char *out, size_t outlen)
{
	int n;

	if (o->has_record)
		n = snprintf(out, outlen, "dmarc=%s (p=%s dis=%s) header.from=%s",
			     dmarc_result_name(o->result), dmarc_policy_name(o->requested),
			     dmarc_policy_name(o->policy), o->from_domain);
	else if (o->from_domain[0] != '\0')
		n = snprintf(out, outlen, "dmarc=%s header.from=%s", dmarc_result_name(o->result),
			     o->from_domain);
	else
		n = snprintf(out, outlen, "dmarc=%s", dmarc_result_name(o->result));
	return n >= 0 && (size_t)n < outlen ? 1 : -1;
}
