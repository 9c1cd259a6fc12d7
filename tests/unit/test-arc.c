/* ARC: the ValiMail validation and signing suites (RFC 8617), converted
 * from YAML by arc-suite.py, with the suites' own key records. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bio.h>
#include <openssl/pem.h>

#include "mailauth/arc.h"
#include "mailauth/arc_aar.h"
#include "mailauth/dkim_hdr.h"
#include "mailauth/dkim_zone.h"
#include "test.h"

#define ITEM_MAX (1024 * 1024)
#define FIELDS_MAX 16

struct item {
	char key[512];
	char *value;
	size_t len;
};

/* One "KEY LEN\n" + bytes + "\n" item. Returns 1, 0 at the end, -1. */
static int
read_item(FILE *f, struct item *it)
{
	char line[512];
	char *sp;
	size_t len;

	if (fgets(line, sizeof(line), f) == NULL)
		return 0;
	sp = strrchr(line, ' ');
	if (sp == NULL)
		return -1;
	*sp = '\0';
	len = strtoul(sp + 1, NULL, 10);
	if (len >= ITEM_MAX)
		return -1;
	snprintf(it->key, sizeof(it->key), "%s", line);
	free(it->value);
	it->value = malloc(len + 1);
	if (fread(it->value, 1, len, f) != len || fgetc(f) != '\n')
		return -1;
	it->value[len] = '\0';
	it->len = len;
	return 1;
}

static FILE *
open_suite(const char *file)
{
	char cmd[2048], script[1024];
	const char *root = getenv("YOUJU_TESTDATA");
	const char *slash = strrchr(__FILE__, '/');

	snprintf(script, sizeof(script), "%.*sarc-suite.py",
		 slash != NULL ? (int)(slash - __FILE__ + 1) : 0, __FILE__);
	snprintf(cmd, sizeof(cmd), "/usr/bin/python3 '%s' '%s/arc/%s'", script,
		 root != NULL ? root : "testdata", file);
	return popen(cmd, "r");
}

struct scase {
	char name[512];
	char *fields[FIELDS_MAX];
	char keys[FIELDS_MAX][512];
	size_t lens[FIELDS_MAX];
	size_t n;
};

static const char *
scase_get(const struct scase *c, const char *key, size_t *len)
{
	for (size_t i = 0; i < c->n; i++) {
		if (strcmp(c->keys[i], key) == 0) {
			if (len != NULL)
				*len = c->lens[i];
			return c->fields[i];
		}
	}
	return NULL;
}

static void
scase_clear(struct scase *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->fields[i]);
	memset(c, 0, sizeof(*c));
}

typedef void case_fn(struct scase *c, struct dkim_zone *z, EVP_PKEY *key,
		     const char *domain, const char *sel, unsigned *ok, unsigned *total);

static char domain[256], sel[256];

/* Reads every scenario; calls fn on each test case. Key records and the
 * signing key are the scenario's, which follow its tests. */
static void
run_suite(const char *file, case_fn *fn, unsigned *ok, unsigned *total)
{
	FILE *f = open_suite(file);
	struct item it = { .value = NULL };
	static struct scase cases[256];	/* ~130 KB each; static */
	size_t n_cases = 0;
	struct dkim_zone z;
	EVP_PKEY *key = NULL;
	int rc;

	test_assert(f != NULL);
	if (f == NULL)
		return;
	dkim_zone_init(&z);
	while ((rc = read_item(f, &it)) == 1 || n_cases > 0) {
		if (rc != 1 || strcmp(it.key, "scenario") == 0) {
			for (size_t i = 0; i < n_cases; i++) {
				fn(&cases[i], &z, key, domain, sel, ok, total);
				scase_clear(&cases[i]);
			}
			n_cases = 0;
			dkim_zone_free(&z);
			dkim_zone_init(&z);
			EVP_PKEY_free(key);
			key = NULL;
			if (rc != 1)
				break;
		} else if (strncmp(it.key, "txt ", 4) == 0) {
			test_assert(dkim_zone_add(&z, it.key + 4, it.value, DKIM_ZONE_TXT) == 1);
		} else if (strcmp(it.key, "privatekey") == 0) {
			BIO *b = BIO_new_mem_buf(it.value, (int)it.len);
			key = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
			BIO_free(b);
		} else if (strcmp(it.key, "domain") == 0) {
			snprintf(domain, sizeof(domain), "%s", it.value);
		} else if (strcmp(it.key, "sel") == 0) {
			snprintf(sel, sizeof(sel), "%s", it.value);
		} else if (strncmp(it.key, "test ", 5) == 0 && n_cases < 256) {
			snprintf(cases[n_cases++].name, sizeof(cases[0].name), "%.500s", it.key + 5);
		} else if (n_cases > 0 && cases[n_cases - 1].n < FIELDS_MAX) {
			struct scase *c = &cases[n_cases - 1];
			snprintf(c->keys[c->n], sizeof(c->keys[0]), "%s", it.key);
			c->fields[c->n] = it.value;
			c->lens[c->n++] = it.len;
			it.value = NULL;
		}
	}
	free(it.value);
	dkim_zone_free(&z);
	EVP_PKEY_free(key);
	pclose(f);
}

static void
validate_case(struct scase *c, struct dkim_zone *z, EVP_PKEY *key, const char *d,
	      const char *s, unsigned *ok, unsigned *total)
{
	struct dkim_verify_opts o = { .now = 1700000000 };
	struct arc_result res;
	size_t len = 0;
	const char *msg = scase_get(c, "message", &len);
	const char *cv = scase_get(c, "cv", NULL);

	(*total)++;
	arc_verify_message(&o, &z->resolver, msg, len, &res);
	/* An empty cv means the suite expects no verdict: an earlier hop
	 * ended the chain with cv=fail, which is arc=fail (RFC 8617 5.2). */
	if (cv[0] != '\0' ? strcasecmp(cv, arc_cv_name(res.cv)) == 0
			  : res.cv == ARC_CV_FAIL && res.terminated)
		(*ok)++;
	else
		printf("  %s: want \"%s\", got %s (%s)\n", c->name, cv, arc_cv_name(res.cv),
		       res.reason);
}

/* Whitespace removed, split at ';' and sorted: tag order and folding
 * do not matter (the suite's README). */
static void
tag_set(const char *in, char *out, size_t outlen)
{
	char tmp[8192], *parts[64];
	size_t n = 0, o = 0;

	for (const char *p = in; *p != '\0' && o + 1 < sizeof(tmp); p++) {
		if (!isspace((unsigned char)*p))
			tmp[o++] = *p;
	}
	tmp[o] = '\0';
	for (char *save, *t = strtok_r(tmp, ";", &save); t != NULL && n < 64;
	     t = strtok_r(NULL, ";", &save))
		parts[n++] = t;
	for (size_t i = 1; i < n; i++) {
		for (size_t j = i; j > 0 && strcmp(parts[j - 1], parts[j]) > 0; j--) {
			char *x = parts[j];
			parts[j] = parts[j - 1];
			parts[j - 1] = x;
		}
	}
	out[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		strncat(out, parts[i], outlen - strlen(out) - 1);
		strncat(out, ";", outlen - strlen(out) - 1);
	}
}

/* The AAR's results from the Authentication-Results fields of srv-id,
 * in order, one per line (the suite's consolidation rule), and the
 * arc= result in them as the chain status. */
static int
consolidate(const char *msg, size_t len, const char *srv, struct buf *ar, enum arc_cv *cv)
{
	static struct dkim_headers h;
	size_t hdr_len, body_off, sl = strlen(srv);
	int n = 0;

	dkim_msg_split(msg, len, &hdr_len, &body_off);
	if (dkim_headers_parse(msg, hdr_len, &h) < 0)
		return -1;
	*cv = ARC_CV_NONE;
	if (buf_append_str(ar, srv) < 0)
		return -1;
	for (size_t i = 0; i < h.n; i++) {
		size_t vlen;
		char v[8192], *save;
		const char *val;
		if (!dkim_field_is(&h.f[i], "Authentication-Results", 22))
			continue;
		val = dkim_field_value(&h.f[i], &vlen);
		while (vlen > 0 && isspace((unsigned char)*val))
			val++, vlen--;
		if (vlen <= sl || strncmp(val, srv, sl) != 0 || val[sl] != ';' ||
		    vlen >= sizeof(v))
			continue;
		memcpy(v, val + sl + 1, vlen - sl - 1);
		v[vlen - sl - 1] = '\0';
		for (char *t = strtok_r(v, ";", &save); t != NULL; t = strtok_r(NULL, ";", &save)) {
			while (isspace((unsigned char)*t))
				t++;
			size_t tl = strlen(t);
			while (tl > 0 && isspace((unsigned char)t[tl - 1]))
				t[--tl] = '\0';
			if (tl == 0)
				continue;
			if (strncmp(t, "arc=", 4) == 0)
				*cv = strncmp(t + 4, "pass", 4) == 0 ? ARC_CV_PASS
				      : strncmp(t + 4, "fail", 4) == 0 ? ARC_CV_FAIL : ARC_CV_NONE;
			if (buf_printf(ar, "%s%s", n++ == 0 ? "; " : ";\r\n  ", t) < 0)
				return -1;
		}
	}
	return 1;
}

static bool
same_tags(const char *what, const char *name, const char *got, const char *want)
{
	static char a[16384], b[16384];

	tag_set(got, a, sizeof(a));
	tag_set(want, b, sizeof(b));
	if (strcmp(a, b) == 0)
		return true;
	printf("  %s %s:\n    got  %s\n    want %s\n", name, what, a, b);
	return false;
}

/* The value of field name in fields (CRLF-separated, as the sealer
 * writes them). */
static const char *
field_of(const char *fields, const char *name, char *out, size_t outlen)
{
	const char *p = strstr(fields, name), *e;

	if (p == NULL)
		return "";
	p += strlen(name) + 1;
	e = p;
	while ((e = strstr(e, "\r\n")) != NULL && (e[2] == ' ' || e[2] == '\t'))
		e += 2;
	if (e == NULL)
		e = p + strlen(p);
	snprintf(out, outlen, "%.*s", (int)(e - p), p);
	return out;
}

static void
sign_case(struct scase *c, struct dkim_zone *z, EVP_PKEY *key, const char *d,
	  const char *s, unsigned *ok, unsigned *total)
{
	size_t len = 0, hdr_len, body_off;
	const char *msg = scase_get(c, "message", &len);
	struct arc_seal_opts o = {
		.domain = d, .selector = s, .pkey = key,
		.now = strtoll(scase_get(c, "t", NULL), NULL, 10),
		.sign_headers = scase_get(c, "sig-headers", NULL),
	};
	struct buf ar, out;
	struct yj_err err;
	struct arc_sealer *sealer;
	static char f1[16384];
	bool good;

	(*total)++;
	buf_init(&ar, 65536);
	buf_init(&out, 65536);
	test_assert(consolidate(msg, len, scase_get(c, "srv-id", NULL), &ar, &o.cv) == 1);
	o.authres = ar.data;
	dkim_msg_split(msg, len, &hdr_len, &body_off);
	sealer = arc_sealer_new(&o, msg, hdr_len);
	arc_sealer_body(sealer, msg + body_off, len - body_off);
	if (arc_sealer_finish(sealer, &out, &err) < 0) {
		/* Expected: no set added (a chain ending here). */
		good = strspn(scase_get(c, "AS", NULL), " \t\r\n") ==
		       strlen(scase_get(c, "AS", NULL)) && out.len == 0;
		if (!good)
			printf("  %s: %s\n", c->name, err.msg);
	} else {
		good = same_tags("AS", c->name, field_of(out.data, "ARC-Seal", f1, sizeof(f1)),
				 scase_get(c, "AS", NULL));
		good &= same_tags("AMS", c->name,
				  field_of(out.data, "ARC-Message-Signature", f1, sizeof(f1)),
				  scase_get(c, "AMS", NULL));
		good &= same_tags("AAR", c->name,
				  field_of(out.data, "ARC-Authentication-Results", f1, sizeof(f1)),
				  scase_get(c, "AAR", NULL));
	}
	*ok += good;
	arc_sealer_free(sealer);
	buf_free(&ar);
	buf_free(&out);
}

static void
test_validation(void)
{
	unsigned ok = 0, total = 0;

	test_begin("ARC validation suite");
	run_suite("arc-draft-validation-tests.yml", validate_case, &ok, &total);
	printf("  ARC validation: %u/%u\n", ok, total);
	test_assert(total == 171 && ok == total);
	test_end();
}

static void
test_signing(void)
{
	unsigned ok = 0, total = 0;

	test_begin("ARC signing suite");
	run_suite("arc-draft-sign-tests.yml", sign_case, &ok, &total);
	printf("  ARC signing: %u/%u\n", ok, total);
	test_assert(total == 17 && ok == total);
	test_end();
}

static bool
aar_ok(const char *v, struct arc_aar *a)
{
	return arc_aar_parse(v, strlen(v), a) == 1;
}

/* ARC-Authentication-Results values (RFC 8601 syntax after "i=N;"). */
static void
test_aar_parse(void)
{
	struct arc_aar a;
	const char *hdr;

	test_begin("ARC-Authentication-Results parser");
	test_assert(aar_ok(" i=2; lists.example.org 1;\r\n\tspf=pass (sender ok;\"x) "
			   "smtp.mailfrom=jqd@d1.example;\r\n dkim/1=PASS reason=\"a; (b\" "
			   "header.i=@D1.example header.d=d1.example; dmarc=fail header.from="
			   "\"d2.example\"; arc=none", &a));
	test_assert(a.instance == 2 && a.n == 4);
	test_assert_strcmp(a.authserv_id, "lists.example.org");
	test_assert_strcmp(a.r[0].method, "spf");
	test_assert_strcmp(a.r[0].result, "pass");
	test_assert_strcmp(a.r[0].domain, "d1.example");
	test_assert_strcmp(a.r[1].method, "dkim");
	test_assert_strcmp(a.r[1].result, "pass");
	test_assert_strcmp(a.r[1].domain, "d1.example");	/* header.d before header.i */
	test_assert_strcmp(a.r[2].domain, "d2.example");
	test_assert_strcmp(a.r[3].method, "arc");
	test_assert_strcmp(a.r[3].domain, "");
	/* spf by HELO when there is no mailfrom; "none" of RFC 8601 2.2. */
	test_assert(aar_ok("i=1; mx.example; spf=none smtp.helo=mx.d.example", &a));
	test_assert(a.n == 1 && strcmp(a.r[0].domain, "mx.d.example") == 0);
	test_assert(aar_ok("i=1; mx.example; none", &a) && a.n == 0);
	/* Not an AAR: no instance, a bad instance, no authserv-id, an open
	 * comment or string. */
	test_assert(!aar_ok("mx.example; spf=pass", &a));
	test_assert(!aar_ok("i=0; mx.example; spf=pass", &a));
	test_assert(!aar_ok("i=51; mx.example; spf=pass", &a));
	test_assert(!aar_ok("i=1x; mx.example; spf=pass", &a));
	test_assert(!aar_ok("i=1;", &a));
	test_assert(!aar_ok("i=1; mx.example; spf=pass (open", &a));
	test_assert(!aar_ok("i=1; mx.example; spf=pass reason=\"open", &a));
	/* Text in a quoted reason names no domain. */
	test_assert(aar_ok("i=1; mx; dkim=pass reason=\"see header.d=evil.example\" "
			   "header.d=good.example", &a));
	test_assert(a.n == 1 && strcmp(a.r[0].domain, "good.example") == 0);
	test_assert(aar_ok("i=1; mx; dkim=pass reason=\"x header.d=evil.example\"", &a));
	test_assert(a.n == 1 && a.r[0].domain[0] == '\0');
	/* No method name: no result. */
	test_assert(aar_ok("i=1; mx; /1=pass; =pass; spf=", &a) && a.n == 0);
	/* A result hidden in a comment is no result. */
	test_assert(aar_ok("i=1; mx (dkim=pass header.d=x.example); spf=fail", &a));
	test_assert(a.n == 1 && strcmp(a.r[0].method, "spf") == 0);
	/* Found by instance in a header section. */
	hdr = "ARC-Authentication-Results: i=1; a.example; spf=fail\r\n"
	      "Subject: x\r\n"
	      "ARC-Authentication-Results: i=2; b.example;\r\n dkim=pass header.d=b.example\r\n";
	test_assert(arc_aar_find(hdr, strlen(hdr), 2, &a) == 1);
	test_assert(strcmp(a.authserv_id, "b.example") == 0 && a.n == 1);
	test_assert(arc_aar_find(hdr, strlen(hdr), 1, &a) == 1 && a.n == 1 &&
		    strcmp(a.r[0].result, "fail") == 0);
	test_assert(arc_aar_find(hdr, strlen(hdr), 3, &a) == 0);
	test_end();
}

int
main(void)
{
	static void (*const tests[])(void) = { test_validation, test_signing, test_aar_parse,
					       NULL };
	return test_run(tests);
}
