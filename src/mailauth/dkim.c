/* dkim.c - verification of the DKIM-Signature fields of a message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "mailauth/dkim_crypto.h"
#include "mailauth/dkim_int.h"

#define DKIM_TXT_MAX 4096	/* a key record; an 8192-bit key is ~1.4 KB */
#define DKIM_HASHED_MAX (DKIM_HEADER_MAX + 4096)

struct vsig {
	struct dkim_sig sig;
	const struct dkim_field *field;
	struct dkim_body body;
	bool parsed;
	const char *why;	/* parse error */
};

struct dkim_verifier {
	struct dkim_verify_opts opts;
	char *hdr;
	size_t hdr_len;
	bool too_big;
	struct dkim_headers headers;
	struct vsig sigs[DKIM_SIGS_MAX];
	size_t n_sigs;
};

const char *
dkim_status_name(enum dkim_status status)
{
	static const char *const names[] = {
		"pass", "fail", "neutral", "policy", "temperror", "permerror"
	};
	return names[status];
}

static void
add_sig(struct dkim_verifier *v, const struct dkim_field *f)
{
	struct vsig *vs = &v->sigs[v->n_sigs++];
	size_t vlen;
	const char *val = dkim_field_value(f, &vlen);

	vs->field = f;
	vs->parsed = dkim_sig_parse(&vs->sig, DKIM_KIND_SIG, val, vlen, &vs->why) == 1;
	if (vs->parsed &&
	    dkim_body_init(&vs->body, vs->sig.body_canon, vs->sig.has_l, vs->sig.l,
			   vs->sig.alg == DKIM_ALG_RSA_SHA1) < 0) {
		vs->parsed = false;
		vs->why = "out of memory";
	}
}

/* Whether a header section we cannot take apart has a DKIM-Signature
 * field: only then is there a result to give. */
static bool
has_sig_field(const char *hdr, size_t len)
{
	for (size_t i = 0; i + 15 <= len; i++) {
		if ((i == 0 || hdr[i - 1] == '\n') && strncasecmp(hdr + i, "DKIM-Signature", 14) == 0)
			return true;
	}
	return false;
}

struct dkim_verifier *
dkim_verifier_new(const struct dkim_verify_opts *opts, const char *hdr, size_t len)
{
	struct dkim_verifier *v = calloc(1, sizeof(*v));

	if (v == NULL)
		abort();
	v->opts = *opts;
	if (v->opts.now == 0)
		v->opts.now = (long long)time(NULL);
	if (len > DKIM_HEADER_MAX) {
		v->too_big = has_sig_field(hdr, len);
		return v;
	}
	v->hdr = malloc(len + 1);
	if (v->hdr == NULL)
		abort();
	memcpy(v->hdr, hdr, len);
	v->hdr_len = len;
	if (dkim_headers_parse(v->hdr, len, &v->headers) < 0) {
		v->too_big = has_sig_field(hdr, len);
		return v;
	}
	for (size_t i = 0; i < v->headers.n && v->n_sigs < DKIM_SIGS_MAX; i++) {
		if (dkim_field_is(&v->headers.f[i], "DKIM-Signature", 14))
			add_sig(v, &v->headers.f[i]);
	}
	return v;
}

void
dkim_verifier_body(struct dkim_verifier *v, const char *data, size_t len)
{
	for (size_t i = 0; i < v->n_sigs; i++) {
		if (v->sigs[i].parsed)
			dkim_body_update(&v->sigs[i].body, data, len);
	}
}

/* Collects the first TXT record only: several records at one name are
 * an ambiguity, and RFC 6376 3.6.2.2 lets a verifier use the first. */
struct txt_first {
	char text[DKIM_TXT_MAX];
	size_t len;
	bool got, too_long;
};

static void
txt_first_cb(void *ctx, const char *txt, size_t len)
{
	struct txt_first *t = ctx;

	if (t->got)
		return;
	t->got = true;
	if (len >= sizeof(t->text)) {
		t->too_long = true;
		return;
	}
	memcpy(t->text, txt, len);
	t->text[len] = '\0';
	t->len = len;
}

static int
fetch_key(const struct ma_resolver *r, const struct dkim_sig *sig, struct dkim_key *key,
	  enum dkim_status *status, const char **reason)
{
	char name[2 * DKIM_NAME_MAX + 16];
	struct txt_first t = { .got = false };
	int rc;

	snprintf(name, sizeof(name), "%s._domainkey.%s", sig->s, sig->d);
	rc = r->txt(r->arg, name, txt_first_cb, &t);
	if (rc < 0) {
		*status = DKIM_TEMPERROR;
		*reason = "key lookup failed";
		return -1;
	}
	if (rc == 0 || !t.got) {
		*status = DKIM_PERMERROR;
		*reason = "no key record";
		return -1;
	}
	*status = DKIM_PERMERROR;
	if (t.too_long) {
		*reason = "key record too long";
		return -1;
	}
	return dkim_key_parse(key, t.text, t.len, reason);
}

/* The key's own restrictions on this signature (RFC 6376 3.6.1). */
static int
key_allows(const struct dkim_key *key, const struct dkim_sig *sig, const char **reason)
{
	bool ed = sig->alg == DKIM_ALG_ED25519_SHA256;
	bool sha1 = sig->alg == DKIM_ALG_RSA_SHA1;
	const char *at = strrchr(sig->i, '@');

	if (key->revoked)
		*reason = "key revoked";
	else if (key->ed25519 != ed)
		*reason = "key type does not match a=";
	else if (sha1 ? !key->sha1_ok : !key->sha256_ok)
		*reason = "key h= does not allow the hash";
	else if (sig->kind == DKIM_KIND_SIG && key->strict && at != NULL &&
		 strcasecmp(at + 1, sig->d) != 0)
		*reason = "key t=s but i= is a subdomain of d=";
	else
		return 1;
	return -1;
}

EVP_PKEY *
dkim_get_key(const struct ma_resolver *r, const struct dkim_sig *sig, bool legacy,
	     enum dkim_status *status, const char **reason, unsigned *bits_r, bool *testing_r)
{
	static _Thread_local struct dkim_key key;
	EVP_PKEY *pkey;
	unsigned min = legacy ? 512 : DKIM_RSA_BITS_MIN;

	*bits_r = 0;
	if (fetch_key(r, sig, &key, status, reason) < 0)
		return NULL;
	*testing_r = key.testing;
	if (key_allows(&key, sig, reason) < 0)
		return NULL;
	pkey = dkim_pubkey(&key, bits_r);
	if (pkey == NULL) {
		*reason = "key p= is not a key";
		return NULL;
	}
	if (*bits_r > DKIM_KEY_BITS_MAX || (!key.ed25519 && *bits_r < min)) {
		*status = *bits_r > DKIM_KEY_BITS_MAX ? DKIM_PERMERROR : DKIM_FAIL;
		*reason = *bits_r > DKIM_KEY_BITS_MAX ? "key too large"
			  : "RSA key under 1024 bits (RFC 8301)";
		EVP_PKEY_free(pkey);
		return NULL;
	}
	return pkey;
}

int
dkim_append_blanked(struct buf *out, enum dkim_canon canon, const struct dkim_field *f,
		    const struct dkim_sig *sig)
{
	const struct dkim_tag *b = dkim_tags_get(&sig->tags, "b");
	size_t vlen, start, end;
	const char *val = dkim_field_value(f, &vlen);
	struct buf tmp;
	int rc;

	start = (size_t)(val - f->p) + b->raw_start;
	end = (size_t)(val - f->p) + b->raw_end;
	buf_init(&tmp, f->len);
	rc = buf_append(&tmp, f->p, start) == 1 &&
	     buf_append(&tmp, f->p + end, (size_t)(val - f->p) + vlen - end) == 1 &&
	     dkim_canon_header(out, canon, tmp.data, tmp.len, false) == 1 ? 1 : -1;
	buf_free(&tmp);
	return rc;
}

static void
fill_ids(struct dkim_result *res, const struct dkim_sig *sig)
{
	snprintf(res->d, sizeof(res->d), "%s", sig->d);
	snprintf(res->i, sizeof(res->i), "%s", sig->i);
	snprintf(res->s, sizeof(res->s), "%s", sig->s);
	snprintf(res->b_prefix, sizeof(res->b_prefix), "%s", sig->b_prefix);
	res->alg = sig->alg;
}

static bool
timing_ok(const struct dkim_verifier *v, const struct dkim_sig *sig, const char **reason)
{
	long long now = v->opts.now;

	if (sig->has_x && (long long)sig->x < now)
		*reason = "signature expired (x=)";
	else if (sig->has_t && (long long)sig->t > now + DKIM_CLOCK_SKEW)
		*reason = "signature made in the future (t=)";
	else
		return true;
	return false;
}

int
dkim_check_sig(const struct dkim_sig *sig, const struct dkim_field *field,
	       const struct dkim_headers *h, const unsigned char *bh, size_t bh_len,
	       EVP_PKEY *pkey, const char **reason)
{
	struct buf data;
	int rc = 0;

	if (sig->bh_len != bh_len || memcmp(bh, sig->bh, bh_len) != 0) {
		*reason = "body hash mismatch";
		return 0;
	}
	buf_init(&data, DKIM_HASHED_MAX);
	if (dkim_hdr_select(&data, h, sig->hdr_canon, sig->h, sig->h_len, field) < 0 ||
	    dkim_append_blanked(&data, sig->hdr_canon, field, sig) < 0)
		*reason = "bad h= list";
	else if (dkim_crypto_verify(pkey, sig->alg, data.data, data.len, sig->b,
				    sig->b_len) != 1)
		*reason = "signature does not verify";
	else
		rc = 1;
	buf_free(&data);
	return rc;
}

/* Verifies a parsed signature: times, key, body hash, header hash. */
static void
check_sig(struct dkim_verifier *v, struct vsig *vs, const struct ma_resolver *r,
	  struct dkim_result *res)
{
	unsigned char bh[32];
	size_t bh_len = dkim_body_final(&vs->body, bh);
	EVP_PKEY *pkey;

	if (!timing_ok(v, &vs->sig, &res->reason)) {
		res->status = DKIM_PERMERROR;
		return;
	}
	pkey = dkim_get_key(r, &vs->sig, v->opts.legacy, &res->status, &res->reason,
			    &res->key_bits, &res->testing);
	if (pkey == NULL)
		return;
	res->status = DKIM_FAIL;
	if (vs->sig.has_l && vs->body.total < vs->sig.l) {
		res->reason = "l= is longer than the body";
	} else if (dkim_check_sig(&vs->sig, vs->field, &v->headers, bh, bh_len, pkey,
				  &res->reason) == 1) {
		res->status = DKIM_PASS;
		res->reason = "";
	}
	EVP_PKEY_free(pkey);
}

static void
verify_one(struct dkim_verifier *v, struct vsig *vs, const struct ma_resolver *r,
	   struct dkim_result *res)
{
	memset(res, 0, sizeof(*res));
	fill_ids(res, &vs->sig);
	if (!vs->parsed) {
		res->status = DKIM_PERMERROR;
		res->reason = vs->why;
	} else if (vs->sig.alg == DKIM_ALG_RSA_SHA1 && !v->opts.legacy) {
		res->status = DKIM_FAIL;
		res->reason = "rsa-sha1 is not accepted (RFC 8301)";
	} else {
		check_sig(v, vs, r, res);
	}
}

size_t
dkim_verifier_finish(struct dkim_verifier *v, const struct ma_resolver *r,
		     struct dkim_result *res, size_t max)
{
	size_t n = 0;

	if (v->too_big && max > 0) {
		memset(res, 0, sizeof(*res));
		res->status = DKIM_PERMERROR;
		res->reason = "header section too large";
		return 1;
	}
	for (size_t i = 0; i < v->n_sigs && n < max; i++)
		verify_one(v, &v->sigs[i], r, &res[n++]);
	return n;
}

void
dkim_verifier_free(struct dkim_verifier *v)
{
	if (v == NULL)
		return;
	for (size_t i = 0; i < v->n_sigs; i++) {
		if (v->sigs[i].parsed)
			dkim_body_free(&v->sigs[i].body);
	}
	free(v->hdr);
	free(v);
}

size_t
dkim_verify_message(const struct dkim_verify_opts *opts, const struct ma_resolver *r,
		    const char *msg, size_t len, struct dkim_result *res, size_t max)
{
	size_t hdr_len, body_off, n;
	struct dkim_verifier *v;

	dkim_msg_split(msg, len, &hdr_len, &body_off);
	v = dkim_verifier_new(opts, msg, hdr_len);
	dkim_verifier_body(v, msg + body_off, len - body_off);
	n = dkim_verifier_finish(v, r, res, max);
	dkim_verifier_free(v);
	return n;
}
