/* dkim_sign.c - making DKIM-Signature fields (relaxed/relaxed), and the
 * folding and signing steps ARC sealing shares. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/pem.h>

#include "mailauth/dkim_crypto.h"
#include "mailauth/dkim_int.h"

#define FOLD_COLUMNS 78
#define SIGNED_MAX (DKIM_HEADER_MAX + 8192)
#define H_LIST_MAX 2048

/* The fields signed. PRESENT: as often as they occur (list fields a
 * mailing list adds). OVER: once more than they occur, so that none can
 * be added in transit. ALWAYS: over-signed even when absent, which signs
 * that there is none (RFC 6376 5.4.2). */
enum sign_how { PRESENT, OVER, ALWAYS };

static const struct {
	const char *name;
	enum sign_how how;
} sign_fields[] = {
	{ "from", ALWAYS }, { "reply-to", ALWAYS }, { "subject", ALWAYS },
	{ "date", ALWAYS }, { "message-id", ALWAYS }, { "to", ALWAYS }, { "cc", ALWAYS },
	{ "sender", ALWAYS }, { "in-reply-to", OVER }, { "references", OVER },
	{ "mime-version", OVER }, { "content-type", OVER },
	{ "content-transfer-encoding", OVER }, { "list-unsubscribe", OVER },
	{ "list-unsubscribe-post", OVER }, { "list-id", PRESENT }, { "list-help", PRESENT },
	{ "list-subscribe", PRESENT }, { "list-post", PRESENT }, { "list-owner", PRESENT },
	{ "list-archive", PRESENT }, { "content-language", PRESENT },
	{ "resent-from", PRESENT }, { "resent-date", PRESENT }, { "resent-to", PRESENT },
	{ "resent-cc", PRESENT }, { "resent-message-id", PRESENT },
};

struct dkim_signer {
	struct dkim_sign_opts opts;
	char *hdr;
	size_t hdr_len;
	bool too_big;
	struct dkim_headers headers;
	struct dkim_body body;
};

struct dkim_signer *
dkim_signer_new(const struct dkim_sign_opts *opts, const char *hdr, size_t len)
{
	struct dkim_signer *s;

	if (opts->n_keys == 0 || opts->n_keys > DKIM_SIGN_KEYS_MAX)
		return NULL;
	s = calloc(1, sizeof(*s));
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
	s->too_big = dkim_headers_parse(s->hdr, len, &s->headers) < 0;
	return s;
}

void
dkim_signer_body(struct dkim_signer *s, const char *data, size_t len)
{
	dkim_body_update(&s->body, data, len);
}

static size_t
count_fields(const struct dkim_headers *h, const char *name)
{
	size_t n = 0, len = strlen(name);

	for (size_t i = 0; i < h->n; i++)
		n += dkim_field_is(&h->f[i], name, len);
	return n;
}

/* The h= list: each chosen name as often as it is to be signed. */
int
dkim_default_h(const struct dkim_headers *h, bool oversign, char *out, size_t outlen)
{
	size_t o = 0;

	out[0] = '\0';
	for (size_t i = 0; i < sizeof(sign_fields) / sizeof(sign_fields[0]); i++) {
		size_t n = count_fields(h, sign_fields[i].name);
		if (oversign && (sign_fields[i].how == ALWAYS ||
				 (sign_fields[i].how == OVER && n > 0)))
			n++;
		for (; n > 0; n--) {
			int w = snprintf(out + o, outlen - o, "%s%s", o > 0 ? ":" : "",
					 sign_fields[i].name);
			if (w < 0 || (size_t)w >= outlen - o)
				return -1;
			o += (size_t)w;
		}
	}
	return 1;
}

int
dkim_fold_append(struct buf *out, size_t *col, const char *piece, bool breakable,
		 const char *breaks)
{
	size_t len = strlen(piece);

	if (*col + 1 + len <= FOLD_COLUMNS || (!breakable && *col <= 1)) {
		*col += 1 + len;
		return buf_printf(out, " %s", piece);
	}
	if (!breakable) {
		*col = 1 + len;
		return buf_printf(out, "\r\n %s", piece);
	}
	if (buf_append_str(out, "\r\n ") < 0)
		return -1;
	*col = 1;
	for (size_t i = 0; i < len;) {
		/* The longest run that fits and ends at a break. */
		size_t room = FOLD_COLUMNS - *col, take = 0;
		for (size_t j = 1; i + j <= len && j <= room; j++) {
			if (i + j == len || breaks[0] == '\0' || strchr(breaks, piece[i + j - 1]))
				take = j;
		}
		if (take == 0)
			take = len - i < room ? len - i : room;
		if (buf_append(out, piece + i, take) < 0)
			return -1;
		i += take;
		*col += take;
		if (i < len) {
			if (buf_append_str(out, "\r\n ") < 0)
				return -1;
			*col = 1;
		}
	}
	return 1;
}

int
dkim_sign_hdr_data(struct buf *data, const struct dkim_headers *h, const char *names,
		   const char *field, size_t field_len)
{
	if (dkim_hdr_select(data, h, DKIM_CANON_RELAXED, names, strlen(names), NULL) < 0 ||
	    dkim_canon_header(data, DKIM_CANON_RELAXED, field, field_len, false) < 0)
		return -1;
	return 1;
}

int
dkim_sign_b64(EVP_PKEY *pkey, const struct buf *data, char b64[DKIM_SIG_B64_MAX],
	      const char *what, struct yj_err *err)
{
	unsigned char sig[DKIM_SIG_BYTES_MAX];
	size_t sig_len;
	int alg = dkim_crypto_alg(pkey);

	if (alg < 0 || EVP_PKEY_get_size(pkey) > DKIM_SIG_BYTES_MAX)
		return yj_err_set(err, "%s: key type or size not usable for signing", what);
	if (dkim_crypto_sign(pkey, (enum dkim_alg)alg, data->data, data->len, sig, &sig_len) < 0)
		return yj_err_set(err, "%s: signing failed", what);
	dkim_base64_encode(sig, sig_len, b64);
	return 1;
}

/* "DKIM-Signature: v=1; ... b=" for one key, folded. */
static int
field_prefix(struct dkim_signer *s, const struct dkim_sign_key *k, const char *h,
	     const char *bh, struct buf *f, size_t *col)
{
	char piece[H_LIST_MAX + 16];
	const char *alg = dkim_crypto_alg(k->pkey) == DKIM_ALG_ED25519_SHA256
		? "ed25519-sha256" : "rsa-sha256";
	int rc = 1;

	*col = strlen("DKIM-Signature:");
	rc &= buf_append_str(f, "DKIM-Signature:") == 1;
	rc &= dkim_fold_append(f, col, "v=1;", false, NULL) == 1;
	snprintf(piece, sizeof(piece), "a=%s;", alg);
	rc &= dkim_fold_append(f, col, piece, false, NULL) == 1;
	rc &= dkim_fold_append(f, col, "c=relaxed/relaxed;", false, NULL) == 1;
	snprintf(piece, sizeof(piece), "d=%s;", k->domain);
	rc &= dkim_fold_append(f, col, piece, false, NULL) == 1;
	snprintf(piece, sizeof(piece), "s=%s;", k->selector);
	rc &= dkim_fold_append(f, col, piece, false, NULL) == 1;
	snprintf(piece, sizeof(piece), "t=%lld;", s->opts.now);
	rc &= dkim_fold_append(f, col, piece, false, NULL) == 1;
	if (s->opts.expire_after > 0) {
		snprintf(piece, sizeof(piece), "x=%llu;",
			 (unsigned long long)s->opts.now + s->opts.expire_after);
		rc &= dkim_fold_append(f, col, piece, false, NULL) == 1;
	}
	snprintf(piece, sizeof(piece), "h=%s;", h);
	rc &= dkim_fold_append(f, col, piece, true, ":") == 1;
	snprintf(piece, sizeof(piece), "bh=%s;", bh);
	rc &= dkim_fold_append(f, col, piece, false, NULL) == 1;
	rc &= dkim_fold_append(f, col, "b=", false, NULL) == 1;
	return rc ? 1 : -1;
}

static int
sign_one(struct dkim_signer *s, const struct dkim_sign_key *k, const char *h,
	 const char *bh, struct buf *out, struct yj_err *err)
{
	struct buf field, hashed;
	char b64[DKIM_SIG_B64_MAX];
	size_t col;
	int rc = -1;

	buf_init(&field, 16384);
	buf_init(&hashed, SIGNED_MAX);
	if (field_prefix(s, k, h, bh, &field, &col) < 0)
		yj_err_set(err, "DKIM: signature field too long");
	else if (dkim_sign_hdr_data(&hashed, &s->headers, h, field.data, field.len) < 0)
		yj_err_set(err, "DKIM: header section too large");
	else if (dkim_sign_b64(k->pkey, &hashed, b64, "DKIM", err) == 1)
		rc = dkim_fold_append(&field, &col, b64, true, "") == 1 &&
		     buf_append_str(&field, "\r\n") == 1 &&
		     buf_append(out, field.data, field.len) == 1
			? 1 : yj_err_set(err, "DKIM: signature field too long");
	buf_free(&field);
	buf_free(&hashed);
	return rc;
}

int
dkim_signer_finish(struct dkim_signer *s, struct buf *out, struct yj_err *err)
{
	unsigned char hash[32];
	char bh[48], h[H_LIST_MAX];

	dkim_body_final(&s->body, hash);
	dkim_base64_encode(hash, 32, bh);
	if (s->too_big)
		return yj_err_set(err, "DKIM: header section too large to sign");
	if (count_fields(&s->headers, "from") == 0)
		return yj_err_set(err, "DKIM: message has no From field");
	if (dkim_default_h(&s->headers, true, h, sizeof(h)) < 0)
		return yj_err_set(err, "DKIM: too many fields to sign");
	for (size_t i = 0; i < s->opts.n_keys; i++) {
		if (sign_one(s, &s->opts.keys[i], h, bh, out, err) < 0)
			return -1;
	}
	return 1;
}

void
dkim_signer_free(struct dkim_signer *s)
{
	if (s == NULL)
		return;
	dkim_body_free(&s->body);
	free(s->hdr);
	free(s);
}

EVP_PKEY *
dkim_key_load(const char *path, struct yj_err *err)
{
	FILE *f = fopen(path, "r");
	EVP_PKEY *pkey;

	if (f == NULL) {
		yj_err_errno(err, "cannot open %s", path);
		return NULL;
	}
	pkey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (pkey == NULL || dkim_crypto_alg(pkey) < 0) {
		EVP_PKEY_free(pkey);
		yj_err_set(err, "%s: not an RSA or Ed25519 private key in PEM", path);
		return NULL;
	}
	return pkey;
}
