/* dkim_sig.c - signature fields and key records. */
#include <strings.h>
#include <string.h>

#include "mailauth/dkim_sig.h"

static const char *const sig_required[] = { "v", "a", "b", "bh", "d", "h", "s", NULL };
static const char *const ams_required[] = { "a", "b", "bh", "d", "h", "i", "s", NULL };
static const char *const as_required[] = { "a", "b", "cv", "d", "i", "s", NULL };

static int
fail(const char **why, const char *reason)
{
	*why = reason;
	return -1;
}

/* A domain or selector: labels of letters, digits, '-' and '_'. */
static int
copy_name(const struct dkim_tag *t, char *out, bool lower)
{
	if (t->value_len == 0 || t->value_len >= DKIM_NAME_MAX)
		return -1;
	for (size_t i = 0; i < t->value_len; i++) {
		char c = t->value[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
			  (unsigned char)c >= 0x80;
		if (!ok)
			return -1;
		out[i] = lower && c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
	}
	out[t->value_len] = '\0';
	return 1;
}

static int
parse_alg(struct dkim_sig *sig, const struct dkim_tag *t)
{
	if (dkim_tag_is(t, "rsa-sha256"))
		sig->alg = DKIM_ALG_RSA_SHA256;
	else if (dkim_tag_is(t, "ed25519-sha256"))
		sig->alg = DKIM_ALG_ED25519_SHA256;
	else if (dkim_tag_is(t, "rsa-sha1"))
		sig->alg = DKIM_ALG_RSA_SHA1;
	else
		return -1;
	return 1;
}

/* i= of a DKIM-Signature: "[local]@domain", domain d= or below it. */
static int
parse_auid(struct dkim_sig *sig, const struct dkim_tag *t, const char **why)
{
	char *at;
	size_t dlen, n;

	if (t == NULL) {
		if (strlen(sig->d) + 2 > sizeof(sig->i))
			return fail(why, "d= too long");
		sig->i[0] = '@';
		strcpy(sig->i + 1, sig->d);
		return 1;
	}
	if (dkim_qp_decode(t->value, t->value_len, sig->i, sizeof(sig->i)) < 0)
		return fail(why, "bad i= value");
	at = strrchr(sig->i, '@');
	if (at == NULL)
		return fail(why, "i= has no '@'");
	dlen = strlen(sig->d);
	n = strlen(at + 1);
	if (n < dlen || strcasecmp(at + 1 + n - dlen, sig->d) != 0 ||
	    (n > dlen && at[n - dlen] != '.'))
		return fail(why, "i= is not within d=");
	return 1;
}

static bool
list_has(const struct dkim_tag *t, const char *word)
{
	size_t wl = strlen(word), i = 0;

	while (i <= t->value_len) {
		size_t s = i;
		while (i < t->value_len && t->value[i] != ':')
			i++;
		size_t e = i++;
		while (s < e && strchr(" \t\r\n", t->value[s]) != NULL)
			s++;
		while (e > s && strchr(" \t\r\n", t->value[e - 1]) != NULL)
			e--;
		if (e - s == wl && strncasecmp(t->value + s, word, wl) == 0)
			return true;
	}
	return false;
}

/* hdr-name *(":" hdr-name): no empty names. */
static bool
h_names_ok(const struct dkim_tag *t)
{
	bool empty = true;

	for (size_t i = 0; i < t->value_len; i++) {
		char c = t->value[i];
		if (c == ':') {
			if (empty)
				return false;
			empty = true;
		} else if (strchr(" \t\r\n", c) == NULL) {
			empty = false;
		}
	}
	return !empty;
}

static int
parse_b(struct dkim_sig *sig, const char **why)
{
	const struct dkim_tag *b = dkim_tags_get(&sig->tags, "b");
	long n = dkim_base64_decode(b->value, b->value_len, sig->b, sizeof(sig->b));
	size_t o = 0;

	if (n <= 0)
		return fail(why, "bad b= value");
	sig->b_len = (size_t)n;
	for (size_t i = 0; i < b->value_len && o + 1 < 9; i++) {
		if (strchr(" \t\r\n", b->value[i]) == NULL)
			sig->b_prefix[o++] = b->value[i];
	}
	sig->b_prefix[o] = '\0';
	return 1;
}

static int
parse_bh(struct dkim_sig *sig, const char **why)
{
	const struct dkim_tag *bh = dkim_tags_get(&sig->tags, "bh");
	long n = dkim_base64_decode(bh->value, bh->value_len, sig->bh, sizeof(sig->bh));

	if (n <= 0)
		return fail(why, "bad bh= value");
	sig->bh_len = (size_t)n;
	return 1;
}

static int
parse_uint_tag(const struct dkim_sig *sig, const char *name, bool *has,
	       unsigned long long *v)
{
	const struct dkim_tag *t = dkim_tags_get(&sig->tags, name);

	*has = t != NULL;
	return t == NULL ? 1 : dkim_parse_uint(t->value, t->value_len, v);
}

static int
parse_times(struct dkim_sig *sig, const char **why)
{
	if (parse_uint_tag(sig, "t", &sig->has_t, &sig->t) < 0)
		return fail(why, "bad t= value");
	if (parse_uint_tag(sig, "x", &sig->has_x, &sig->x) < 0)
		return fail(why, "bad x= value");
	if (parse_uint_tag(sig, "l", &sig->has_l, &sig->l) < 0)
		return fail(why, "bad l= value");
	if (sig->has_t && sig->has_x && sig->x < sig->t)
		return fail(why, "x= is before t=");
	return 1;
}

static int
check_required(const struct dkim_sig *sig, const char **why)
{
	const char *const *req = sig->kind == DKIM_KIND_SIG ? sig_required
				 : sig->kind == DKIM_KIND_AMS ? ams_required : as_required;

	for (; *req != NULL; req++) {
		if (dkim_tags_get(&sig->tags, *req) == NULL) {
			*why = sig->kind == DKIM_KIND_SIG ? "a required tag is missing"
				: "a required ARC tag is missing";
			return -1;
		}
	}
	return 1;
}

/* ARC i=: the instance, 1 to 50 (RFC 8617 4.2.1). */
static int
parse_instance(struct dkim_sig *sig, const char **why)
{
	const struct dkim_tag *t = dkim_tags_get(&sig->tags, "i");
	unsigned long long v;

	if (dkim_parse_uint(t->value, t->value_len, &v) < 0 || v < 1 || v > 50)
		return fail(why, "bad ARC instance");
	sig->instance = (unsigned)v;
	return 1;
}

static int
parse_dkim_only(struct dkim_sig *sig, const char **why)
{
	const struct dkim_tag *q = dkim_tags_get(&sig->tags, "q");

	if (!dkim_tag_is(dkim_tags_get(&sig->tags, "v"), "1"))
		return fail(why, "v= is not 1");
	if (q != NULL && !list_has(q, "dns/txt"))
		return fail(why, "q= does not offer dns/txt");
	if (!list_has(dkim_tags_get(&sig->tags, "h"), "from"))
		return fail(why, "h= does not sign From");
	return parse_auid(sig, dkim_tags_get(&sig->tags, "i"), why);
}

static int
parse_hashed(struct dkim_sig *sig, const char **why)
{
	const struct dkim_tag *c = dkim_tags_get(&sig->tags, "c");
	const struct dkim_tag *h = dkim_tags_get(&sig->tags, "h");

	/* The ARC suite (and dkimpy) take an AMS without c= as relaxed. */
	sig->hdr_canon = sig->body_canon =
		sig->kind == DKIM_KIND_AMS ? DKIM_CANON_RELAXED : DKIM_CANON_SIMPLE;
	if (c != NULL && dkim_canon_parse(c->value, c->value_len, &sig->hdr_canon,
					  &sig->body_canon) < 0)
		return fail(why, "bad c= value");
	if (sig->kind == DKIM_KIND_SIG && !h_names_ok(h))
		return fail(why, "empty name in h=");
	/* RFC 8617 4.1.2: an AMS never signs ARC-Seal fields. */
	if (sig->kind == DKIM_KIND_AMS && list_has(h, "arc-seal"))
		return fail(why, "AMS h= lists ARC-Seal");
	sig->h = h->value;
	sig->h_len = h->value_len;
	return parse_bh(sig, why);
}

static int
parse_seal(struct dkim_sig *sig, const char **why)
{
	const struct dkim_tag *cv = dkim_tags_get(&sig->tags, "cv");

	if (dkim_tags_get(&sig->tags, "h") != NULL)
		return fail(why, "ARC-Seal has h=");
	if (!dkim_tag_is(cv, "none") && !dkim_tag_is(cv, "pass") && !dkim_tag_is(cv, "fail"))
		return fail(why, "bad cv= value");
	memcpy(sig->cv, cv->value, cv->value_len);
	sig->cv[cv->value_len] = '\0';
	sig->hdr_canon = sig->body_canon = DKIM_CANON_RELAXED;
	return 1;
}

int
dkim_sig_parse(struct dkim_sig *sig, enum dkim_kind kind, const char *text, size_t len,
	       const char **why)
{
	memset(sig, 0, sizeof(*sig));
	sig->kind = kind;
	if (dkim_tags_parse(text, len, &sig->tags, why) < 0)
		return -1;
	if (check_required(sig, why) < 0)
		return -1;
	if (parse_alg(sig, dkim_tags_get(&sig->tags, "a")) < 0)
		return fail(why, "unknown a= algorithm");
	if (copy_name(dkim_tags_get(&sig->tags, "d"), sig->d, true) < 0)
		return fail(why, "bad d= value");
	if (copy_name(dkim_tags_get(&sig->tags, "s"), sig->s, false) < 0)
		return fail(why, "bad s= value");
	if (parse_b(sig, why) < 0 || parse_times(sig, why) < 0)
		return -1;
	if (kind == DKIM_KIND_SIG)
		return parse_dkim_only(sig, why) < 0 ? -1 : parse_hashed(sig, why);
	if (parse_instance(sig, why) < 0)
		return -1;
	return kind == DKIM_KIND_AMS ? parse_hashed(sig, why) : parse_seal(sig, why);
}

static int
parse_key_flags(struct dkim_key *key, const struct dkim_tag *t)
{
	if (t == NULL)
		return 1;
	key->testing = list_has(t, "y");
	key->strict = list_has(t, "s");
	return 1;
}

static int
parse_key_algs(struct dkim_key *key, const struct dkim_tags *tags, const char **why)
{
	const struct dkim_tag *h = dkim_tags_get(tags, "h");
	const struct dkim_tag *k = dkim_tags_get(tags, "k");
	const struct dkim_tag *s = dkim_tags_get(tags, "s");

	key->sha256_ok = h == NULL || list_has(h, "sha256");
	key->sha1_ok = h == NULL || list_has(h, "sha1");
	if (k != NULL && dkim_tag_is(k, "ed25519"))
		key->ed25519 = true;
	else if (k != NULL && !dkim_tag_is(k, "rsa"))
		return fail(why, "unknown key type k=");
	if (s != NULL && !list_has(s, "*") && !list_has(s, "email"))
		return fail(why, "key not for email (s=)");
	return 1;
}

int
dkim_key_parse(struct dkim_key *key, const char *text, size_t len, const char **why)
{
	struct dkim_tags tags;
	const struct dkim_tag *v, *p;
	long n;

	memset(key, 0, sizeof(*key));
	if (dkim_tags_parse(text, len, &tags, why) < 0)
		return -1;
	v = dkim_tags_get(&tags, "v");
	if (v != NULL && (v != &tags.tag[0] || !dkim_tag_is(v, "DKIM1")))
		return fail(why, "key v= is not DKIM1 first");
	p = dkim_tags_get(&tags, "p");
	if (p == NULL)
		return fail(why, "key has no p=");
	if (parse_key_algs(key, &tags, why) < 0 ||
	    parse_key_flags(key, dkim_tags_get(&tags, "t")) < 0)
		return -1;
	if (p->value_len == 0) {
		key->revoked = true;
		return 1;
	}
	n = dkim_base64_decode(p->value, p->value_len, key->p, sizeof(key->p));
	if (n <= 0)
		return fail(why, "bad key p= value");
	key->p_len = (size_t)n;
	return 1;
}
