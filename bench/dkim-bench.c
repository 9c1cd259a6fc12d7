/* dkim-bench - DKIM signing and verification throughput of youju's
 * mailauth library, for bench/dkim. One message, in a loop, in one
 * thread; the header section and body go through the same streaming
 * calls the SMTP server makes.
 *
 *   dkim-bench sign KEYFILE DOMAIN SELECTOR MESSAGE N OUT
 *       signs MESSAGE N times, writes the last signed message to OUT
 *   dkim-bench verify MESSAGE NAME RECORD N
 *       verifies MESSAGE N times, the TXT record NAME being RECORD
 *   dkim-bench keys files|cached DATA_DIR DOMAIN MESSAGE N
 *       signs MESSAGE N times with DOMAIN's keys in DATA_DIR/dkim, found
 *       for each message as the server does: read from the files each
 *       time, or through the key cache
 *
 * Prints "<mode> <n> <seconds>". Exits 1 if a signature fails.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/err.h"
#include "mailauth/dkim.h"
#include "mailauth/dkim_keys.h"
#include "mailauth/ma_resolver.h"

#define MSG_MAX (16 * 1024 * 1024)

static char *
read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *p = malloc(MSG_MAX);

	if (f == NULL || p == NULL) {
		perror(path);
		exit(2);
	}
	*len = fread(p, 1, MSG_MAX, f);
	fclose(f);
	return p;
}

/* Where the header section ends: its length through the last CRLF. */
static size_t
header_len(const char *msg, size_t len)
{
	for (size_t i = 0; i + 3 < len; i++) {
		if (memcmp(msg + i, "\r\n\r\n", 4) == 0)
			return i + 2;
	}
	return len;
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
bench_sign(char **argv)
{
	struct yj_err err;
	EVP_PKEY *pkey = dkim_key_load(argv[0], &err);
	struct dkim_sign_key key = { argv[1], argv[2], pkey };
	struct dkim_sign_opts opts = { .keys = &key, .n_keys = 1 };
	size_t len, hl;
	char *msg = read_file(argv[3], &len);
	long n = atol(argv[4]);
	struct buf out;
	double t0;
	FILE *f;

	if (pkey == NULL) {
		fprintf(stderr, "%s\n", err.msg);
		return 2;
	}
	hl = header_len(msg, len);
	buf_init(&out, 1 << 20);
	t0 = now();
	for (long i = 0; i < n; i++) {
		struct dkim_signer *s = dkim_signer_new(&opts, msg, hl);

		buf_reset(&out);
		dkim_signer_body(s, msg + hl + 2, len - hl - 2);
		if (dkim_signer_finish(s, &out, &err) < 0) {
			fprintf(stderr, "sign: %s\n", err.msg);
			return 1;
		}
		dkim_signer_free(s);
	}
	printf("sign %ld %.6f\n", n, now() - t0);
	f = fopen(argv[5], "wb");
	if (f == NULL || fwrite(out.data, 1, out.len, f) != out.len ||
	    fwrite(msg, 1, len, f) != len || fclose(f) != 0) {
		perror(argv[5]);
		return 2;
	}
	buf_free(&out);
	EVP_PKEY_free(pkey);
	free(msg);
	return 0;
}

/* A resolver that knows one TXT record. */
struct one_txt {
	const char *name;
	const char *value;
};

static int
one_txt_lookup(void *arg, const char *name, dns_txt_fn *fn, void *ctx)
{
	const struct one_txt *t = arg;

	if (strcmp(name, t->name) != 0)
		return 0;
	fn(ctx, t->value, strlen(t->value));
	return 1;
}

static int
bench_verify(char **argv)
{
	struct one_txt t = { argv[1], argv[2] };
	struct ma_resolver r = { .arg = &t, .txt = one_txt_lookup };
	struct dkim_verify_opts opts = { 0 };
	size_t len, hl;
	char *msg = read_file(argv[0], &len);
	long n = atol(argv[3]);
	double t0;

	hl = header_len(msg, len);
	t0 = now();
	for (long i = 0; i < n; i++) {
		struct dkim_verifier *v = dkim_verifier_new(&opts, msg, hl);
		struct dkim_result res[DKIM_SIGS_MAX];

		dkim_verifier_body(v, msg + hl + 2, len - hl - 2);
		if (dkim_verifier_finish(v, &r, res, DKIM_SIGS_MAX) < 1 || res[0].status != DKIM_PASS) {
			fprintf(stderr, "verify: not a pass\n");
			return 1;
		}
		dkim_verifier_free(v);
	}
	printf("verify %ld %.6f\n", n, now() - t0);
	free(msg);
	return 0;
}

/* One message signed with the keys of a domain, fetched as the server
 * fetches them. */
static int
keys_sign_one(bool cached, const char *data_dir, const char *domain, const char *msg,
	      size_t len, size_t hl, struct buf *out)
{
	struct dkim_sign_key keys[2];
	char sel[2][DKIM_SELECTOR_MAX + 1];
	struct dkim_sign_opts opts = { .keys = keys };
	struct dkim_signer *s;
	struct yj_err err;
	int n = cached ? dkim_keys_cached(data_dir, domain, keys, sel, &err)
		       : dkim_keys_signing(data_dir, domain, keys, sel, &err);
	int ret;

	if (n <= 0) {
		fprintf(stderr, "keys: %s\n", n < 0 ? err.msg : "none");
		return -1;
	}
	opts.n_keys = (size_t)n;
	s = dkim_signer_new(&opts, msg, hl);
	buf_reset(out);
	dkim_signer_body(s, msg + hl + 2, len - hl - 2);
	ret = dkim_signer_finish(s, out, &err);
	if (ret < 0)
		fprintf(stderr, "sign: %s\n", err.msg);
	dkim_signer_free(s);
	for (int i = 0; i < n; i++)
		EVP_PKEY_free(keys[i].pkey);
	return ret;
}

static int
bench_keys(char **argv)
{
	bool cached = strcmp(argv[0], "cached") == 0;
	size_t len, hl;
	char *msg = read_file(argv[3], &len);
	long n = atol(argv[4]);
	struct buf out;
	double t0;

	hl = header_len(msg, len);
	buf_init(&out, 1 << 20);
	t0 = now();
	for (long i = 0; i < n; i++) {
		if (keys_sign_one(cached, argv[1], argv[2], msg, len, hl, &out) < 0)
			return 1;
	}
	printf("keys-%s %ld %.6f\n", argv[0], n, now() - t0);
	buf_free(&out);
	free(msg);
	dkim_keys_cache_clear();
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc == 8 && strcmp(argv[1], "sign") == 0)
		return bench_sign(argv + 2);
	if (argc == 6 && strcmp(argv[1], "verify") == 0)
		return bench_verify(argv + 2);
	if (argc == 7 && strcmp(argv[1], "keys") == 0 &&
	    (strcmp(argv[2], "files") == 0 || strcmp(argv[2], "cached") == 0))
		return bench_keys(argv + 2);
	fprintf(stderr, "usage: dkim-bench sign KEYFILE DOMAIN SELECTOR MESSAGE N OUT\n"
			"       dkim-bench verify MESSAGE NAME RECORD N\n"
			"       dkim-bench keys files|cached DATA_DIR DOMAIN MESSAGE N\n");
	return 2;
}
