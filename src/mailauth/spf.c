/* spf.c - check_host() (RFC 7208 4 to 6): record lookup and selection,
 * mechanism evaluation in order, include and redirect recursion, the
 * lookup limits of 4.6.4, and the explanation of a fail (6.2). */
#include "mailauth/spf.h"
#include "mailauth/spf_ip.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/log.h"

#define SPF_LOCAL_MAX 256	/* the local part of the sender we keep */
#define SPF_SENDER_MAX (SPF_LOCAL_MAX + DNS_NAME_MAX)
#define SPF_DEPTH_MAX (SPF_DNS_MECH_MAX + 2)	/* include/redirect nesting */

struct spf_eval {
	const struct ma_resolver *res;
	const struct spf_request *req;
	struct spf_outcome *out;
	struct spf_ip ip;
	char sender[SPF_SENDER_MAX];
	char local[SPF_LOCAL_MAX];
	char domain_o[DNS_NAME_MAX];
	unsigned depth;
	struct spf_p_cache pcache;
};

/* Records the first problem met; returns r for tail calls. */
static enum spf_result YJ_PRINTF(3, 4)
spf_error(struct spf_eval *ev, enum spf_result r, const char *fmt, ...)
{
	va_list ap;

	if (ev->out->problem[0] == '\0') {
		va_start(ap, fmt);
		vsnprintf(ev->out->problem, sizeof(ev->out->problem), fmt, ap);
		va_end(ap);
	}
	return r;
}

/* A domain as check_host() takes it (4.3): a multi-label name of at most
 * 253 characters, labels of 1 to 63 letters, digits, '-' or '_'. */
static bool
spf_domain_ok(const char *d)
{
	size_t len = strlen(d), label = 0, labels = 0;

	if (len > 0 && d[len - 1] == '.')
		len--;
	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)d[i];

		if (ch == '.') {
			if (label == 0)
				return false;
			label = 0;
			labels++;
			continue;
		}
		if (!(isalnum(ch) || ch == '-' || ch == '_') || ++label > 63)
			return false;
	}
	return label > 0 && labels >= 1;
}

/* Labels of 1 to 63 characters: a name DNS can be asked about. */
static bool
spf_labels_ok(const char *name)
{
	size_t label = 0;

	for (const char *p = name; *p != '\0'; p++) {
		if (*p != '.') {
			if (++label > 63)
				return false;
			continue;
		}
		if (label == 0)
			return false;
		label = 0;
	}
	return label > 0;
}

static void
spf_vars(struct spf_eval *ev, const char *d, struct spf_macro_vars *v)
{
	*v = (struct spf_macro_vars){
		.sender = ev->sender, .local = ev->local, .domain_o = ev->domain_o, .d = d,
		.ip = ev->req->ip, .helo = ev->req->helo != NULL ? ev->req->helo : "",
		.receiver = ev->req->receiver, .now = ev->req->now, .res = ev->res,
		.pcache = &ev->pcache,
	};
}

/* Expands a term's domain-spec (or takes d) into a name to look up: no
 * final dot, cut from the left to 253 characters (7.3). */
static bool
spf_target(struct spf_eval *ev, const struct spf_term *t, const char *d, char *out,
	   size_t outlen)
{
	char buf[SPF_EXPAND_MAX];
	struct spf_macro_vars v;
	const char *p = buf;
	size_t len;

	if (t->spec == NULL) {
		snprintf(out, outlen, "%s", d);
		return true;
	}
	spf_vars(ev, d, &v);
	if (spf_macro_expand(t->spec, t->spec_len, &v, false, buf, sizeof(buf)) < 0)
		return false;
	len = strlen(buf);
	if (len > 0 && buf[len - 1] == '.')
		buf[--len] = '\0';
	while (len > 253) {
		const char *dot = strchr(p, '.');

		if (dot == NULL)
			return false;
		len -= (size_t)(dot + 1 - p);
		p = dot + 1;
	}
	if (len == 0 || len >= outlen)
		return false;
	memcpy(out, p, len + 1);
	return spf_labels_ok(out);
}

/* Counts a void lookup; false once over the limit. */
static bool
spf_void(struct spf_eval *ev)
{
	return ++ev->out->voids <= SPF_VOID_MAX;
}

/* ---- mechanisms: each returns 1 match, 0 no match, or -1 with
 * *err_r set to TEMPERROR or PERMERROR ---- */

static int
spf_match_addrs(struct spf_eval *ev, const char *name, const struct spf_term *t, bool count_void,
		enum spf_result *err_r)
{
	char addrs[SPF_ADDR_MAX][DNS_ADDR_MAX];
	size_t n = 0;
	int r = ev->ip.v6 ? ev->res->aaaa(ev->res->arg, name, addrs, SPF_ADDR_MAX, &n)
			  : ev->res->a(ev->res->arg, name, addrs, SPF_ADDR_MAX, &n);

	if (r < 0) {
		*err_r = spf_error(ev, SPF_TEMPERROR, "DNS error looking up %s", name);
		return -1;
	}
	if (r == 0) {
		if (count_void && !spf_void(ev)) {
			*err_r = spf_error(ev, SPF_PERMERROR, "more than %d void lookups",
					   SPF_VOID_MAX);
			return -1;
		}
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		struct spf_ip got;

		if (spf_ip_parse(addrs[i], &got) && got.v6 == ev->ip.v6 &&
		    spf_ip_match(&ev->ip, got.addr, ev->ip.v6 ? t->cidr6 : t->cidr4))
			return 1;
	}
	return 0;
}

static int
spf_mech_mx(struct spf_eval *ev, const char *name, const struct spf_term *t,
	    enum spf_result *err_r)
{
	struct dns_mx mx[SPF_MX_MAX + 1];
	size_t n = 0;
	int r = ev->res->mx(ev->res->arg, name, mx, SPF_MX_MAX + 1, &n);

	if (r < 0) {
		*err_r = spf_error(ev, SPF_TEMPERROR, "DNS error looking up MX %s", name);
		return -1;
	}
	if (r == 0) {
		if (spf_void(ev))
			return 0;
		*err_r = spf_error(ev, SPF_PERMERROR, "more than %d void lookups", SPF_VOID_MAX);
		return -1;
	}
	if (n > SPF_MX_MAX) {
		*err_r = spf_error(ev, SPF_PERMERROR, "%s has more than %d MX records", name,
				   SPF_MX_MAX);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (mx[i].host[0] == '\0')
			continue;
		r = spf_match_addrs(ev, mx[i].host, t, false, err_r);
		if (r != 0)
			return r;
	}
	return 0;
}

/* ptr (5.5): a PTR name that resolves back to the client and lies
 * within name. DNS errors make it not match. */
static int
spf_mech_ptr(struct spf_eval *ev, const char *name, enum spf_result *err_r)
{
	char names[SPF_PTR_MAX][DNS_NAME_MAX];
	size_t n = 0;
	int r = ev->res->ptr(ev->res->arg, ev->req->ip, names, SPF_PTR_MAX, &n);

	if (r < 0)
		return 0;
	if (r == 0) {
		if (spf_void(ev))
			return 0;
		*err_r = spf_error(ev, SPF_PERMERROR, "more than %d void lookups", SPF_VOID_MAX);
		return -1;
	}
	for (size_t i = 0; i < n && i < SPF_PTR_MAX; i++) {
		if (spf_name_within(names[i], name) && spf_ip_confirm(ev->res, names[i], &ev->ip) == 1)
			return 1;
	}
	return 0;
}

static int
spf_mech_exists(struct spf_eval *ev, const char *name, enum spf_result *err_r)
{
	char addrs[1][DNS_ADDR_MAX];
	size_t n = 0;
	int r = ev->res->a(ev->res->arg, name, addrs, 1, &n);

	if (r < 0) {
		*err_r = spf_error(ev, SPF_TEMPERROR, "DNS error looking up %s", name);
		return -1;
	}
	if (r == 0 && !spf_void(ev)) {
		*err_r = spf_error(ev, SPF_PERMERROR, "more than %d void lookups", SPF_VOID_MAX);
		return -1;
	}
	return r;
}

static enum spf_result spf_check_host(struct spf_eval *ev, const char *domain, bool explain);

static int
spf_mech_include(struct spf_eval *ev, const char *name, enum spf_result *err_r)
{
	enum spf_result r = spf_check_host(ev, name, false);

	switch (r) {
	case SPF_PASS:
		return 1;
	case SPF_FAIL:
	case SPF_SOFTFAIL:
	case SPF_NEUTRAL:
		return 0;
	case SPF_TEMPERROR:
		*err_r = SPF_TEMPERROR;
		return -1;
	default:
		*err_r = spf_error(ev, SPF_PERMERROR, "include:%s has no usable SPF record", name);
		return -1;
	}
}

static bool
spf_is_dns_mech(enum spf_term_kind k)
{
	return k == SPF_INCLUDE || k == SPF_A || k == SPF_MX || k == SPF_PTR || k == SPF_EXISTS ||
	       k == SPF_REDIRECT;
}

/* Counts a term that makes DNS queries; false once over the limit. */
static bool
spf_count_dns(struct spf_eval *ev)
{
	return ++ev->out->dns_mechs <= SPF_DNS_MECH_MAX;
}

static int
spf_mech(struct spf_eval *ev, const struct spf_term *t, const char *d, enum spf_result *err_r)
{
	char name[DNS_NAME_MAX];

	if (spf_is_dns_mech(t->kind) && !spf_count_dns(ev)) {
		*err_r = spf_error(ev, SPF_PERMERROR, "more than %d DNS-querying terms",
				   SPF_DNS_MECH_MAX);
		return -1;
	}
	if (t->kind == SPF_ALL)
		return 1;
	if (t->kind == SPF_IP4 || t->kind == SPF_IP6) {
		if (ev->ip.v6 != (t->kind == SPF_IP6))
			return 0;
		return spf_ip_match(&ev->ip, t->net, ev->ip.v6 ? t->cidr6 : t->cidr4) ? 1 : 0;
	}
	if (!spf_target(ev, t, d, name, sizeof(name))) {
		*err_r = spf_error(ev, SPF_PERMERROR, "cannot expand '%.*s'",
				   t->term_len > 60 ? 60 : (int)t->term_len, t->term);
		return -1;
	}
	switch (t->kind) {
	case SPF_A: return spf_match_addrs(ev, name, t, true, err_r);
	case SPF_MX: return spf_mech_mx(ev, name, t, err_r);
	case SPF_PTR: return spf_mech_ptr(ev, name, err_r);
	case SPF_EXISTS: return spf_mech_exists(ev, name, err_r);
	case SPF_INCLUDE: return spf_mech_include(ev, name, err_r);
	default: return 0;
	}
}

/* ---- records ---- */

struct spf_found {
	unsigned count;
	char *txt;	/* the first SPF record, malloc'ed */
	size_t len;
};

static void
spf_collect(void *ctx, const char *txt, size_t len)
{
	struct spf_found *f = ctx;

	if (!spf_is_record(txt, len))
		return;
	if (f->count++ > 0)
		return;
	f->txt = malloc(len + 1);
	if (f->txt == NULL)
		log_fatal("spf: out of memory");
	memcpy(f->txt, txt, len);
	f->txt[len] = '\0';
	f->len = len;
}

/* Finds and parses the SPF record of domain (4.4, 4.5). Returns 1 with
 * *rec_r to free(), or the result to return instead. */
static enum spf_result
spf_fetch(struct spf_eval *ev, const char *domain, struct spf_record **rec_r, int *ok_r)
{
	struct spf_found f = { 0 };
	char problem[SPF_PROBLEM_MAX];
	int r = ev->res->txt(ev->res->arg, domain, spf_collect, &f);
	struct spf_record *rec;

	*ok_r = 0;
	if (r < 0) {
		free(f.txt);
		return spf_error(ev, SPF_TEMPERROR, "DNS error looking up TXT %s", domain);
	}
	if (f.count == 0)
		return SPF_NONE;
	if (f.count > 1) {
		free(f.txt);
		return spf_error(ev, SPF_PERMERROR, "%s has %u SPF records", domain, f.count);
	}
	rec = malloc(sizeof(*rec));
	if (rec == NULL)
		log_fatal("spf: out of memory");
	if (spf_record_parse(f.txt, f.len, rec, problem) < 0) {
		free(f.txt);
		free(rec);
		return spf_error(ev, SPF_PERMERROR, "%s: %s", domain, problem);
	}
	free(f.txt);
	*rec_r = rec;
	*ok_r = 1;
	return SPF_NONE;
}

struct spf_exp_found {
	unsigned count;
	char text[SPF_EXPAND_MAX];
	bool too_long;
};

static void
spf_exp_collect(void *ctx, const char *txt, size_t len)
{
	struct spf_exp_found *f = ctx;

	if (f->count++ > 0)
		return;
	if (len >= sizeof(f->text) || memchr(txt, '\0', len) != NULL) {
		f->too_long = true;
		return;
	}
	memcpy(f->text, txt, len);
	f->text[len] = '\0';
}

/* The explanation of a fail (6.2): exactly one TXT record at the exp=
 * domain, a valid explain-string of ASCII. Any problem falls back to the
 * default explanation. */
static void
spf_explain(struct spf_eval *ev, const struct spf_record *rec, const char *d)
{
	struct spf_exp_found f = { 0 };
	struct spf_macro_vars v;
	char name[DNS_NAME_MAX];
	const char *dflt = ev->req->default_exp;

	snprintf(ev->out->explanation, sizeof(ev->out->explanation), "%s",
		 dflt != NULL ? dflt : "");
	if (rec->exp < 0 || !spf_target(ev, &rec->terms[rec->exp], d, name, sizeof(name)))
		return;
	if (ev->res->txt(ev->res->arg, name, spf_exp_collect, &f) <= 0 || f.count != 1 ||
	    f.too_long)
		return;
	spf_vars(ev, d, &v);
	if (spf_macro_expand(f.text, strlen(f.text), &v, true, ev->out->explanation,
			     sizeof(ev->out->explanation)) < 0) {
		snprintf(ev->out->explanation, sizeof(ev->out->explanation), "%s",
			 dflt != NULL ? dflt : "");
		return;
	}
	/* It goes into an SMTP reply: macros may have brought in client
	 * bytes that do not belong there. */
	for (char *p = ev->out->explanation; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			*p = '?';
	}
}

static void
spf_note_mech(struct spf_eval *ev, const struct spf_term *t)
{
	snprintf(ev->out->mechanism, sizeof(ev->out->mechanism), "%.*s", (int)t->term_len, t->term);
}

/* Evaluates a parsed record for domain. */
static enum spf_result
spf_eval_record(struct spf_eval *ev, const struct spf_record *rec, const char *domain,
		bool explain)
{
	enum spf_result err = SPF_PERMERROR;
	char target[DNS_NAME_MAX];

	for (size_t i = 0; i < rec->n_terms; i++) {
		const struct spf_term *t = &rec->terms[i];
		int r;

		if (t->kind >= SPF_REDIRECT)
			continue;
		r = spf_mech(ev, t, domain, &err);
		if (r < 0)
			return err;
		if (r == 0)
			continue;
		if (explain) {
			spf_note_mech(ev, t);
			if (t->qualifier == SPF_FAIL)
				spf_explain(ev, rec, domain);
		}
		return t->qualifier;
	}
	if (rec->redirect < 0 || rec->has_all)
		return SPF_NEUTRAL;
	/* redirect (6.1): the target's result replaces this one, and so
	 * does its exp=. */
	if (!spf_count_dns(ev))
		return spf_error(ev, SPF_PERMERROR, "more than %d DNS-querying terms",
				 SPF_DNS_MECH_MAX);
	if (!spf_target(ev, &rec->terms[rec->redirect], domain, target, sizeof(target)))
		return spf_error(ev, SPF_PERMERROR, "cannot expand the redirect of %s", domain);
	if (explain)
		spf_note_mech(ev, &rec->terms[rec->redirect]);
	enum spf_result r = spf_check_host(ev, target, explain);

	if (r == SPF_NONE)
		return spf_error(ev, SPF_PERMERROR, "redirect=%s has no SPF record", target);
	return r;
}

static enum spf_result
spf_check_host(struct spf_eval *ev, const char *domain, bool explain)
{
	struct spf_record *rec = NULL;
	enum spf_result r;
	int ok;

	if (!spf_domain_ok(domain))
		return SPF_NONE;
	if (ev->depth >= SPF_DEPTH_MAX)
		return spf_error(ev, SPF_PERMERROR, "include/redirect nested too deep");
	r = spf_fetch(ev, domain, &rec, &ok);
	if (!ok)
		return r;
	ev->depth++;
	r = spf_eval_record(ev, rec, domain, explain);
	ev->depth--;
	free(rec);
	return r;
}

/* ---- the identities ---- */

/* Splits an address at its last '@' into local part and domain; a
 * missing local part is "postmaster" (4.3). */
static void
spf_split_sender(struct spf_eval *ev, const char *addr)
{
	const char *at = strrchr(addr, '@');
	size_t llen = at != NULL ? (size_t)(at - addr) : 0;
	const char *domain = at != NULL ? at + 1 : addr;

	if (llen == 0 || llen >= sizeof(ev->local))
		snprintf(ev->local, sizeof(ev->local), "postmaster");
	else
		snprintf(ev->local, sizeof(ev->local), "%.*s", (int)llen, addr);
	snprintf(ev->domain_o, sizeof(ev->domain_o), "%s", domain);
	snprintf(ev->sender, sizeof(ev->sender), "%s@%s", ev->local, ev->domain_o);
}

void
spf_check(const struct ma_resolver *res, const struct spf_request *req, enum spf_identity id,
	  struct spf_outcome *out)
{
	struct spf_eval ev = { .res = res, .req = req, .out = out };
	const char *helo = req->helo != NULL ? req->helo : "";
	const char *mailfrom = req->mailfrom != NULL ? req->mailfrom : "";

	memset(out, 0, sizeof(*out));
	if (id == SPF_ID_MAILFROM && mailfrom[0] == '\0')
		id = SPF_ID_HELO;
	out->identity = id;
	if (id == SPF_ID_HELO) {
		snprintf(ev.local, sizeof(ev.local), "postmaster");
		snprintf(ev.domain_o, sizeof(ev.domain_o), "%s", helo);
		snprintf(ev.sender, sizeof(ev.sender), "postmaster@%s", ev.domain_o);
	} else {
		spf_split_sender(&ev, mailfrom);
	}
	if (strlen(ev.domain_o) < sizeof(out->domain))
		snprintf(out->domain, sizeof(out->domain), "%s", ev.domain_o);
	if (!spf_ip_parse(req->ip, &ev.ip)) {
		out->result = spf_error(&ev, SPF_PERMERROR, "client address is not an address");
		return;
	}
	out->result = spf_check_host(&ev, out->domain, true);
	if (out->result != SPF_FAIL)
		out->explanation[0] = '\0';
	if (out->result != SPF_TEMPERROR && out->result != SPF_PERMERROR)
		out->problem[0] = '\0';
}
