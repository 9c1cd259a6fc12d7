/* arc.c - ARC sets: parsing, chain validation, sealing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "mailauth/arc.h"
#include "mailauth/dkim_crypto.h"
#include "mailauth/dkim_int.h"

#define ARC_SIGNED_MAX (256 * 1024)	/* what an ARC-Seal covers */
#define ARC_H_MAX 2048

struct arc_set {
	const struct dkim_field *aar, *ams, *as;
	struct dkim_sig ams_sig, as_sig;
	struct dkim_body body;
	bool hashing;
};

struct arc_chain {
	struct dkim_headers headers;
	/* By instance (0 unused): ARC_INSTANCES_MAX + 1 of them, allocated at
	 * the first ARC field, as most mail has none and they are large. */
	struct arc_set *set;
	unsigned n;			/* highest instance seen */
	bool any;			/* some ARC field is present */
	const char *why;		/* why the chain is malformed, or NULL */
};

struct arc_verifier {
	struct dkim_verify_opts opts;
	char *hdr;
	struct arc_chain chain;
};

const char *
arc_cv_name(enum arc_cv cv)
{
	return cv == ARC_CV_PASS ? "pass" : cv == ARC_CV_FAIL ? "fail" : "none";
}

static bool
skip_fws(const char **p, const char *end)
{
	while (*p < end && strchr(" \t\r\n", **p) != NULL)
		(*p)++;
	return *p < end;
}

/* ARC-Authentication-Results starts "i=N;" (RFC 8617 4.1.1). */
static int
aar_instance(const struct dkim_field *f, unsigned *instance)
{
	size_t len;
	const char *p = dkim_field_value(f, &len), *end = p + len;
	unsigned long long v;
	const char *digits;

	if (!skip_fws(&p, end) || *p++ != 'i' || !skip_fws(&p, end) || *p++ != '=' ||
	    !skip_fws(&p, end))
		return -1;
	digits = p;
	while (p < end && *p >= '0' && *p <= '9')
		p++;
	if (dkim_parse_uint(digits, (size_t)(p - digits), &v) < 0 || v < 1 ||
	    v > ARC_INSTANCES_MAX || !skip_fws(&p, end) || *p != ';')
		return -1;
	*instance = (unsigned)v;
	return 1;
}

static const struct dkim_field **
slot(struct arc_set *set, int kind)
{
	return kind == 0 ? &set->aar : kind == 1 ? &set->ams : &set->as;
}

/* Places one ARC field in its set; kind 0 AAR, 1 AMS, 2 AS. */
static void
chain_add(struct arc_chain *c, const struct dkim_field *f, int kind)
{
	struct dkim_sig tmp, *sig = &tmp;
	unsigned i = 0;
	size_t vlen;
	const char *val = dkim_field_value(f, &vlen), *why = NULL;

	c->any = true;
	if (c->why != NULL)
		return;
	if (c->set == NULL && (c->set = calloc(ARC_INSTANCES_MAX + 1, sizeof(*c->set))) == NULL)
		abort();
	if (kind == 0) {
		if (aar_instance(f, &i) < 0)
			why = "malformed ARC-Authentication-Results";
	} else {
		if (dkim_sig_parse(sig, kind == 1 ? DKIM_KIND_AMS : DKIM_KIND_AS, val, vlen,
				   &why) == 1)
			i = sig->instance;
	}
	if (why == NULL && *slot(&c->set[i], kind) != NULL)
		why = "two ARC fields of one kind for one instance";
	if (why != NULL) {
		c->why = why;
		return;
	}
	*slot(&c->set[i], kind) = f;
	if (kind == 1)
		c->set[i].ams_sig = *sig;
	else if (kind == 2)
		c->set[i].as_sig = *sig;
	if (i > c->n)
		c->n = i;
}

static int
chain_parse(struct arc_chain *c, const char *hdr, size_t len)
{
	if (dkim_headers_parse(hdr, len, &c->headers) < 0) {
		c->why = "too many header fields";
		c->any = true;
		return -1;
	}
	for (size_t i = 0; i < c->headers.n; i++) {
		const struct dkim_field *f = &c->headers.f[i];
		if (dkim_field_is(f, "ARC-Authentication-Results", 26))
			chain_add(c, f, 0);
		else if (dkim_field_is(f, "ARC-Message-Signature", 21))
			chain_add(c, f, 1);
		else if (dkim_field_is(f, "ARC-Seal", 8))
			chain_add(c, f, 2);
	}
	for (unsigned i = 1; c->why == NULL && i <= c->n; i++) {
		if (c->set[i].aar == NULL || c->set[i].ams == NULL || c->set[i].as == NULL)
			c->why = "ARC set incomplete";
	}
	return c->why == NULL ? 1 : -1;
}

static void
chain_free(struct arc_chain *c)
{
	for (unsigned i = 1; c->set != NULL && i <= ARC_INSTANCES_MAX; i++) {
		if (c->set[i].hashing)
			dkim_body_free(&c->set[i].body);
	}
	free(c->set);
	c->set = NULL;
}

struct arc_verifier *
arc_verifier_new(const struct dkim_verify_opts *opts, const char *hdr, size_t len)
{
	struct arc_verifier *v = calloc(1, sizeof(*v));

	if (v == NULL)
		abort();
	v->opts = *opts;
	if (len > DKIM_HEADER_MAX) {
		v->chain.why = "header section too large";
		v->chain.any = true;
		return v;
	}
	v->hdr = malloc(len + 1);
	if (v->hdr == NULL)
		abort();
	memcpy(v->hdr, hdr, len);
	if (chain_parse(&v->chain, v->hdr, len) < 0)
		return v;
	for (unsigned i = 1; i <= v->chain.n; i++) {
		struct arc_set *s = &v->chain.set[i];
		if (s->ams_sig.alg == DKIM_ALG_RSA_SHA1)
			continue;
		if (dkim_body_init(&s->body, s->ams_sig.body_canon, s->ams_sig.has_l,
				   s->ams_sig.l, false) < 0)
			abort();
		s->hashing = true;
	}
	return v;
}

void
arc_verifier_body(struct arc_verifier *v, const char *data, size_t len)
{
	for (unsigned i = 1; i <= v->chain.n; i++) {
		if (v->chain.set[i].hashing)
			dkim_body_update(&v->chain.set[i].body, data, len);
	}
}

/* One AMS: 1 valid, 0 not. */
static int
check_ams(struct arc_verifier *v, struct arc_set *s, const struct ma_resolver *r,
	  const unsigned char *bh, size_t bh_len, const char **reason)
{
	enum dkim_status st;
	unsigned bits;
	bool testing;
	EVP_PKEY *pkey;
	int ok;

	if (s->ams_sig.alg == DKIM_ALG_RSA_SHA1) {
		*reason = "rsa-sha1 is not accepted (RFC 8301)";
		return 0;
	}
	pkey = dkim_get_key(r, &s->ams_sig, false, &st, reason, &bits, &testing);
	if (pkey == NULL)
		return 0;
	ok = dkim_check_sig(&s->ams_sig, s->ams, &v->chain.headers, bh, bh_len, pkey, reason);
	EVP_PKEY_free(pkey);
	return ok;
}

/* The sets 1..n whole, each AAR, AMS, AS (RFC 8617 5.1.1). */
static int
seal_data_prior(struct buf *out, const struct arc_set *set, unsigned n)
{
	for (unsigned i = 1; i <= n; i++) {
		const struct arc_set *s = &set[i];
		if (dkim_canon_header(out, DKIM_CANON_RELAXED, s->aar->p, s->aar->len, true) < 0 ||
		    dkim_canon_header(out, DKIM_CANON_RELAXED, s->ams->p, s->ams->len, true) < 0 ||
		    dkim_canon_header(out, DKIM_CANON_RELAXED, s->as->p, s->as->len, true) < 0)
			return -1;
	}
	return 1;
}

/* What the ARC-Seal of instance n signs: the sets before it, its own AAR
 * and AMS, and itself with b= emptied. */
static int
seal_data(struct buf *out, const struct arc_set *set, unsigned n)
{
	const struct arc_set *s = &set[n];

	if (seal_data_prior(out, set, n - 1) < 0 ||
	    dkim_canon_header(out, DKIM_CANON_RELAXED, s->aar->p, s->aar->len, true) < 0 ||
	    dkim_canon_header(out, DKIM_CANON_RELAXED, s->ams->p, s->ams->len, true) < 0)
		return -1;
	return dkim_append_blanked(out, DKIM_CANON_RELAXED, s->as, &s->as_sig);
}

static int
check_as(struct arc_set *set, unsigned n, const struct ma_resolver *r, const char **reason)
{
	enum dkim_status st;
	unsigned bits;
	bool testing;
	EVP_PKEY *pkey;
	struct buf data;
	int ok = 0;

	if (set[n].as_sig.alg == DKIM_ALG_RSA_SHA1) {
		*reason = "rsa-sha1 is not accepted (RFC 8301)";
		return 0;
	}
	pkey = dkim_get_key(r, &set[n].as_sig, false, &st, reason, &bits, &testing);
	if (pkey == NULL)
		return 0;
	buf_init(&data, ARC_SIGNED_MAX);
	if (seal_data(&data, set, n) < 0)
		*reason = "ARC sets too large";
	else if (dkim_crypto_verify(pkey, set[n].as_sig.alg, data.data, data.len,
				    set[n].as_sig.b, set[n].as_sig.b_len) != 1)
		*reason = "ARC-Seal does not verify";
	else
		ok = 1;
	buf_free(&data);
	EVP_PKEY_free(pkey);
	return ok;
}

/* RFC 8617 5.2 steps 2 and 3: cv= of each seal fits its place. */
static const char *
chain_structure(const struct arc_chain *c)
{
	if (c->why != NULL)
		return c->why;
	if (strcmp(c->set[c->n].as_sig.cv, "fail") == 0)
		return "the latest ARC-Seal says cv=fail";
	for (unsigned i = 1; i <= c->n; i++) {
		if (strcmp(c->set[i].as_sig.cv, i == 1 ? "none" : "pass") != 0)
			return "an ARC-Seal has the wrong cv=";
	}
	return NULL;
}

static void
finish_chain(struct arc_verifier *v, const struct ma_resolver *r, struct arc_result *res)
{
	unsigned char bh[ARC_INSTANCES_MAX + 1][32];
	size_t bh_len[ARC_INSTANCES_MAX + 1] = { 0 };
	struct arc_chain *c = &v->chain;

	for (unsigned i = 1; i <= c->n; i++) {
		if (c->set[i].hashing)
			bh_len[i] = dkim_body_final(&c->set[i].body, bh[i]);
	}
	res->cv = ARC_CV_FAIL;
	if (check_ams(v, &c->set[c->n], r, bh[c->n], bh_len[c->n], &res->reason) != 1)
		return;
	for (unsigned i = c->n - 1; i >= 1 && res->oldest_pass == 0; i--) {
		const char *why;
		if (check_ams(v, &c->set[i], r, bh[i], bh_len[i], &why) != 1)
			res->oldest_pass = i + 1;
	}
	for (unsigned i = c->n; i >= 1; i--) {
		if (check_as(c->set, i, r, &res->reason) != 1)
			return;
	}
	res->cv = ARC_CV_PASS;
	res->reason = "";
}

void
arc_verifier_finish(struct arc_verifier *v, const struct ma_resolver *r,
		    struct arc_result *res)
{
	struct arc_chain *c = &v->chain;

	memset(res, 0, sizeof(*res));
	res->reason = "";
	res->instances = c->n;
	if (!c->any) {
		res->cv = ARC_CV_NONE;
		return;
	}
	if (c->n > 0 && c->set[c->n].as != NULL) {
		snprintf(res->d, sizeof(res->d), "%s", c->set[c->n].as_sig.d);
		snprintf(res->s, sizeof(res->s), "%s", c->set[c->n].as_sig.s);
	}
	for (unsigned i = 1; i <= c->n; i++) {
		if (c->set[i].as != NULL && strcmp(c->set[i].as_sig.cv, "fail") == 0)
			res->terminated = true;
	}
	res->reason = c->n == 0 && c->why == NULL ? "no ARC set" : chain_structure(c);
	if (res->reason != NULL) {
		res->cv = ARC_CV_FAIL;
		return;
	}
	finish_chain(v, r, res);
}

void
arc_verifier_free(struct arc_verifier *v)
{
	if (v == NULL)
		return;
	chain_free(&v->chain);
	free(v->hdr);
	free(v);
}

void
arc_verify_message(const struct dkim_verify_opts *opts, const struct ma_resolver *r,
		   const char *msg, size_t len, struct arc_result *res)
{
	size_t hdr_len, body_off;
	struct arc_verifier *v;

	dkim_msg_split(msg, len, &hdr_len, &body_off);
	v = arc_verifier_new(opts, msg, hdr_len);
	arc_verifier_body(v, msg + body_off, len - body_off);
	arc_verifier_finish(v, r, res);
	arc_verifier_free(v);
}

struct arc_sealer {
	struct arc_seal_opts opts;
	char *hdr;
	size_t hdr_len;
	bool too_big;
	struct dkim_body body;
};

struct arc_sealer *
arc_sealer_new(const struct arc_seal_opts *opts, const char *hdr, size_t len)
{
	struct arc_sealer *s = calloc(1, sizeof(*s));

	if (s == NULL || dkim_body_init(&s->body, DKIM_CANON_RELAXED, false, 0, false) < 0)
		abort();
	s->opts = *opts;
	if (s->opts.now == 0)
		s->opts.now = (long long)time(NULL);
	if (len > DKIM_HEADER_MAX) {
		s->too_big = true;
		return s;
	}
	s->hdr = malloc(len + 1);
	if (s->hdr == NULL)
		abort();
	memcpy(s->hdr, hdr, len);
	s->hdr_len = len;
	return s;
}

void
arc_sealer_body(struct arc_sealer *s, const char *data, size_t len)
{
	dkim_body_update(&s->body, data, len);
}

void
arc_sealer_set_result(struct arc_sealer *s, const char *authres, enum arc_cv cv)
{
	s->opts.authres = authres;
	s->opts.cv = cv;
}

/* The instance the new set gets, checked against opts->cv. */
static int
seal_instance(const struct arc_chain *c, enum arc_cv cv, unsigned *n, struct yj_err *err)
{
	if (c->why != NULL && cv != ARC_CV_FAIL)
		return yj_err_set(err, "ARC: chain is malformed (%s), seal with cv=fail", c->why);
	if (c->n == 0 && c->why == NULL && cv != ARC_CV_NONE)
		return yj_err_set(err, "ARC: no chain, cv must be none");
	if (c->n > 0 && cv == ARC_CV_NONE)
		return yj_err_set(err, "ARC: a chain is present, cv cannot be none");
	if (c->n >= ARC_INSTANCES_MAX)
		return yj_err_set(err, "ARC: the chain already has %d sets", ARC_INSTANCES_MAX);
	*n = c->n + 1;
	return 1;
}

/* A signature field in the suite's standard form: tags in alphabetical
 * order, "; " between them, folded only between tags (whitespace inside
 * b= would show in the relaxed form the ARC-Seal signs). The b= value is
 * empty when b64 is NULL. */
static int
build_sig_field(struct buf *f, const char *name, const char *const *tags, const char *b64)
{
	char piece[ARC_H_MAX + 64];
	size_t col = strlen(name) + 1;
	int rc = buf_printf(f, "%s:", name);

	for (size_t i = 0; tags[i] != NULL && rc == 1; i++) {
		bool is_b = strcmp(tags[i], "b=") == 0, last = tags[i + 1] == NULL;
		snprintf(piece, sizeof(piece), "%s%s%s", tags[i], is_b && b64 ? b64 : "",
			 last ? "" : ";");
		rc = dkim_fold_append(f, &col, piece, false, NULL);
	}
	return rc == 1 ? buf_append_str(f, "\r\n") : -1;
}

/* Signs data and builds the field with its b=. */
static int
sign_build(struct buf *f, EVP_PKEY *pkey, const struct buf *data, const char *name,
	   const char *const *tags, struct yj_err *err)
{
	char b64[DKIM_SIG_B64_MAX];

	if (dkim_sign_b64(pkey, data, b64, "ARC", err) < 0)
		return -1;
	buf_reset(f);
	return build_sig_field(f, name, tags, b64) == 1 ? 1
		: yj_err_set(err, "ARC: field too long");
}

struct seal_work {
	struct arc_sealer *s;
	struct arc_chain chain;		/* over the header with the new AAR */
	char *hdr;			/* new AAR + the message's header */
	unsigned n;
	char alg[32], d[DKIM_NAME_MAX + 3], sel[DKIM_NAME_MAX + 3], t[32], i[16];
	struct buf aar, ams, as;
};

static int
make_ams(struct seal_work *w, const char *bh, struct yj_err *err)
{
	char h[ARC_H_MAX], hp[ARC_H_MAX + 4], bhp[64];
	const char *tags[] = { w->alg, "b=", bhp, "c=relaxed/relaxed", w->d, hp, w->i,
			       w->sel, w->t, NULL };
	struct buf unsigned_f, data;
	int rc = -1;

	if (w->s->opts.sign_headers != NULL)
		snprintf(h, sizeof(h), "%s", w->s->opts.sign_headers);
	else if (dkim_default_h(&w->chain.headers, false, h, sizeof(h)) < 0)
		return yj_err_set(err, "ARC: too many fields to sign");
	snprintf(hp, sizeof(hp), "h=%s", h);
	snprintf(bhp, sizeof(bhp), "bh=%s", bh);
	buf_init(&unsigned_f, 16384);
	buf_init(&data, DKIM_HEADER_MAX + 16384);
	if (build_sig_field(&unsigned_f, "ARC-Message-Signature", tags, NULL) < 0 ||
	    dkim_sign_hdr_data(&data, &w->chain.headers, h, unsigned_f.data, unsigned_f.len) < 0)
		yj_err_set(err, "ARC: header section too large");
	else
		rc = sign_build(&w->ams, w->s->opts.pkey, &data, "ARC-Message-Signature", tags,
				err);
	buf_free(&unsigned_f);
	buf_free(&data);
	return rc;
}

/* The seal covers the earlier sets (none after a failed chain, RFC 8617
 * 5.1.2) and the new AAR, AMS and AS. */
static int
make_as(struct seal_work *w, struct yj_err *err)
{
	char cv[16];
	const char *tags[] = { w->alg, "b=", cv, w->d, w->i, w->sel, w->t, NULL };
	struct buf unsigned_f, data;
	int rc = -1;

	snprintf(cv, sizeof(cv), "cv=%s", arc_cv_name(w->s->opts.cv));
	buf_init(&unsigned_f, 16384);
	buf_init(&data, ARC_SIGNED_MAX);
	if (build_sig_field(&unsigned_f, "ARC-Seal", tags, NULL) < 0 ||
	    (w->s->opts.cv != ARC_CV_FAIL && w->n > 1 &&
	     seal_data_prior(&data, w->chain.set, w->n - 1) < 0) ||
	    dkim_canon_header(&data, DKIM_CANON_RELAXED, w->aar.data, w->aar.len, true) < 0 ||
	    dkim_canon_header(&data, DKIM_CANON_RELAXED, w->ams.data, w->ams.len, true) < 0 ||
	    dkim_canon_header(&data, DKIM_CANON_RELAXED, unsigned_f.data, unsigned_f.len,
			      false) < 0)
		yj_err_set(err, "ARC: sets too large to seal");
	else
		rc = sign_build(&w->as, w->s->opts.pkey, &data, "ARC-Seal", tags, err);
	buf_free(&unsigned_f);
	buf_free(&data);
	return rc;
}

static int
seal(struct seal_work *w, const char *bh, struct yj_err *err)
{
	struct arc_sealer *s = w->s;
	size_t aar_len;

	(void)chain_parse(&w->chain, s->hdr, s->hdr_len);
	if (seal_instance(&w->chain, s->opts.cv, &w->n, err) < 0)
		return -1;
	if (buf_printf(&w->aar, "ARC-Authentication-Results: i=%u; %s\r\n", w->n,
		       s->opts.authres) < 0)
		return yj_err_set(err, "ARC: Authentication-Results too long");
	/* The AMS may sign the new AAR: parse it with the message's fields. */
	aar_len = w->aar.len;
	w->hdr = malloc(aar_len + s->hdr_len + 1);
	if (w->hdr == NULL)
		abort();
	memcpy(w->hdr, w->aar.data, aar_len);
	memcpy(w->hdr + aar_len, s->hdr, s->hdr_len);
	chain_free(&w->chain);
	memset(&w->chain, 0, sizeof(w->chain));
	(void)chain_parse(&w->chain, w->hdr, aar_len + s->hdr_len);
	snprintf(w->alg, sizeof(w->alg), "a=%s",
		 dkim_crypto_alg(s->opts.pkey) == DKIM_ALG_ED25519_SHA256 ? "ed25519-sha256"
									  : "rsa-sha256");
	snprintf(w->d, sizeof(w->d), "d=%s", s->opts.domain);
	snprintf(w->sel, sizeof(w->sel), "s=%s", s->opts.selector);
	snprintf(w->t, sizeof(w->t), "t=%lld", s->opts.now);
	snprintf(w->i, sizeof(w->i), "i=%u", w->n);
	return make_ams(w, bh, err) == 1 && make_as(w, err) == 1 ? 1 : -1;
}

int
arc_sealer_finish(struct arc_sealer *s, struct buf *out, struct yj_err *err)
{
	/* On the heap: a chain of 50 sets is far too big for a session
	 * thread's stack, and as thread-local storage it would take that
	 * room from every thread of the process. */
	struct seal_work *w;
	unsigned char hash[32];
	char bh[48];
	int rc;

	dkim_body_final(&s->body, hash);
	dkim_base64_encode(hash, 32, bh);
	if (s->too_big)
		return yj_err_set(err, "ARC: header section too large to seal");
	w = calloc(1, sizeof(*w));
	if (w == NULL)
		log_fatal("out of memory");
	w->s = s;
	buf_init(&w->aar, 65536);
	buf_init(&w->ams, 16384);
	buf_init(&w->as, 16384);
	rc = seal(w, bh, err);
	if (rc == 1 && (buf_append(out, w->as.data, w->as.len) < 0 ||
			buf_append(out, w->ams.data, w->ams.len) < 0 ||
			buf_append(out, w->aar.data, w->aar.len) < 0))
		rc = yj_err_set(err, "ARC: output full");
	buf_free(&w->aar);
	buf_free(&w->ams);
	buf_free(&w->as);
	chain_free(&w->chain);
	free(w->hdr);
	free(w);
	return rc;
}

void
arc_sealer_free(struct arc_sealer *s)
{
	if (s == NULL)
		return;
	dkim_body_free(&s->body);
	free(s->hdr);
	free(s);
}
