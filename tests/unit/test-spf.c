/* test-spf.c - SPF: the openspf peer suites (RFC 7208 and RFC 4408) run
 * against their own zone data through a test resolver, plus the record
 * parser, macros and header builders. The YAML suites are turned into a
 * line format at build time by spf-suite.py (see there for the format). */
#include "test.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mailauth/spf.h"

#define LINE_MAX_LEN 8192
#define FIELDS_MAX 8
#define ZONE_MAX 2048
#define CNAME_DEPTH_MAX 8

/* ---- the suite's zone as a resolver ---- */

struct zrec {
	char name[DNS_NAME_MAX];
	char type[8];		/* A, AAAA, MX, TXT, PTR, CNAME; "*" bare timeout */
	bool timeout;		/* queries of this type time out */
	char *value;
	size_t len;
};

static struct zrec zone[ZONE_MAX];
static size_t n_zone;

static void
zone_clear(void)
{
	for (size_t i = 0; i < n_zone; i++)
		free(zone[i].value);
	n_zone = 0;
}

/* The suite driver's name handling: empty labels dropped, lower case,
 * a label over 63 characters is a DNS error. */
static int
zone_name(const char *in, char *out, size_t outlen)
{
	size_t o = 0, label = 0;

	for (const char *p = in; *p != '\0'; p++) {
		if (*p == '.') {
			label = 0;
			continue;
		}
		if (label == 0 && o > 0 && o + 1 < outlen)
			out[o++] = '.';
		if (++label > 63)
			return -1;
		if (o + 1 < outlen)
			out[o++] = (char)tolower((unsigned char)*p);
	}
	out[o] = '\0';
	return 1;
}

/* Calls fn for each record of type at name, as the suite's driver does:
 * a bare TIMEOUT before any record of the type is a timeout, after one
 * it ends the answer. Follows CNAMEs. 1, 0 or -1. */
static int
zone_lookup(const char *qname, const char *type, void (*fn)(void *, const struct zrec *),
	    void *ctx)
{
	char name[DNS_NAME_MAX], cname[DNS_NAME_MAX] = "";
	bool known = false, found = false;

	for (int depth = 0; depth < CNAME_DEPTH_MAX; depth++) {
		if (zone_name(qname, name, sizeof(name)) < 0)
			return -1;
		cname[0] = '\0';
		for (size_t i = 0; i < n_zone; i++) {
			struct zrec *z = &zone[i];

			if (strcmp(z->name, name) != 0)
				continue;
			known = true;
			if (strcmp(z->type, "*") == 0) {
				if (!found)
					return -1;
				break;
			}
			if (strcmp(z->type, type) == 0 && z->timeout)
				return -1;
			if (strcmp(z->type, type) == 0) {
				fn(ctx, z);
				found = true;
			} else if (strcmp(z->type, "CNAME") == 0) {
				snprintf(cname, sizeof(cname), "%s", z->value);
			}
		}
		if (found || cname[0] == '\0')
			break;
		qname = cname;
		if (depth + 1 == CNAME_DEPTH_MAX)
			return -1;
	}
	if (!known)
		return strncmp(name, "error.", 6) == 0 ? -1 : 0;
	return found ? 1 : 0;
}

struct txt_ctx {
	dns_txt_fn *fn;
	void *ctx;
};

static void
txt_one(void *ctx, const struct zrec *z)
{
	struct txt_ctx *t = ctx;

	t->fn(t->ctx, z->value, z->len);
}

static int
t_txt(void *arg, const char *name, dns_txt_fn *fn, void *ctx)
{
	struct txt_ctx t = { fn, ctx };

	return zone_lookup(name, "TXT", txt_one, &t);
}

struct list_ctx {
	char (*out)[DNS_ADDR_MAX];
	char (*names)[DNS_NAME_MAX];
	struct dns_mx *mx;
	size_t max, count;
	int family;
};

static void
addr_one(void *ctx, const struct zrec *z)
{
	struct list_ctx *l = ctx;
	unsigned char buf[16];

	if (l->count >= l->max || inet_pton(l->family, z->value, buf) != 1)
		return;
	inet_ntop(l->family, buf, l->out[l->count++], DNS_ADDR_MAX);
}

static int
t_a(void *arg, const char *name, char addrs[][DNS_ADDR_MAX], size_t max, size_t *count_r)
{
	struct list_ctx l = { .out = addrs, .max = max, .family = AF_INET };
	int r = zone_lookup(name, "A", addr_one, &l);

	*count_r = l.count;
	return r;
}

static int
t_aaaa(void *arg, const char *name, char addrs[][DNS_ADDR_MAX], size_t max, size_t *count_r)
{
	struct list_ctx l = { .out = addrs, .max = max, .family = AF_INET6 };
	int r = zone_lookup(name, "AAAA", addr_one, &l);

	*count_r = l.count;
	return r;
}

static void
strip_dot(char *s)
{
	size_t len = strlen(s);

	if (len > 0 && s[len - 1] == '.')
		s[len - 1] = '\0';
}

static void
mx_one(void *ctx, const struct zrec *z)
{
	struct list_ctx *l = ctx;
	struct dns_mx rec;
	size_t at;

	if (sscanf(z->value, "%u %255s", &rec.preference, rec.host) != 2)
		return;
	strip_dot(rec.host);
	at = l->count;
	while (at > 0 && l->mx[at - 1].preference > rec.preference)
		at--;
	if (at >= l->max)
		return;
	if (l->count == l->max)
		l->count--;
	memmove(&l->mx[at + 1], &l->mx[at], (l->count - at) * sizeof(rec));
	l->mx[at] = rec;
	l->count++;
}

static int
t_mx(void *arg, const char *name, struct dns_mx *mx, size_t max, size_t *count_r)
{
	struct list_ctx l = { .mx = mx, .max = max };
	int r = zone_lookup(name, "MX", mx_one, &l);

	*count_r = l.count;
	return r;
}

static void
ptr_one(void *ctx, const struct zrec *z)
{
	struct list_ctx *l = ctx;

	if (l->count >= l->max)
		return;
	snprintf(l->names[l->count], DNS_NAME_MAX, "%s", z->value);
	strip_dot(l->names[l->count++]);
}

static unsigned ptr_calls;

static int
t_ptr(void *arg, const char *ip, char names[][DNS_NAME_MAX], size_t max, size_t *count_r)
{
	static const char hex[] = "0123456789abcdef";
	struct list_ctx l = { .names = names, .max = max };
	unsigned char a[16];
	char rev[80];
	size_t o = 0;
	int r;

	*count_r = 0;
	ptr_calls++;
	if (inet_pton(AF_INET, ip, a) == 1) {
		snprintf(rev, sizeof(rev), "%u.%u.%u.%u.in-addr.arpa", a[3], a[2], a[1], a[0]);
	} else if (inet_pton(AF_INET6, ip, a) == 1) {
		for (int i = 15; i >= 0; i--) {
			rev[o++] = hex[a[i] & 0xf];
			rev[o++] = '.';
			rev[o++] = hex[a[i] >> 4];
			rev[o++] = '.';
		}
		snprintf(rev + o, sizeof(rev) - o, "ip6.arpa");
	} else {
		return 0;
	}
	r = zone_lookup(rev, "PTR", ptr_one, &l);
	*count_r = l.count;
	return r;
}

static const struct ma_resolver zone_resolver = {
	.txt = t_txt, .mx = t_mx, .a = t_a, .aaaa = t_aaaa, .ptr = t_ptr,
};

/* ---- the suite file ---- */

/* Undoes the \xHH escapes in place; returns the length. */
static size_t
unescape(char *s)
{
	size_t o = 0;

	for (size_t i = 0; s[i] != '\0'; i++) {
		unsigned v;

		if (s[i] == '\\' && s[i + 1] == 'x' && sscanf(s + i + 2, "%2x", &v) == 1) {
			s[o++] = (char)v;
			i += 3;
			continue;
		}
		s[o++] = s[i];
	}
	s[o] = '\0';
	return o;
}

/* Splits a line on tabs; returns the field count. */
static size_t
split(char *line, char *f[FIELDS_MAX], size_t len[FIELDS_MAX])
{
	size_t n = 0;
	char *p = line;

	line[strcspn(line, "\n")] = '\0';
	while (n < FIELDS_MAX) {
		char *tab = strchr(p, '\t');

		if (tab != NULL)
			*tab = '\0';
		f[n] = p;
		len[n] = unescape(p);
		n++;
		if (tab == NULL)
			break;
		p = tab + 1;
	}
	return n;
}

static void
zone_add(char *f[], size_t len[], size_t n, bool timeout)
{
	struct zrec *z;

	if (n_zone >= ZONE_MAX || n < 3) {
		printf("  zone too big or bad line\n");
		test_assert(false);
		return;
	}
	z = &zone[n_zone++];
	zone_name(f[1], z->name, sizeof(z->name));
	snprintf(z->type, sizeof(z->type), "%s", f[2]);
	z->timeout = timeout && strcmp(f[2], "*") != 0;
	z->len = n > 3 ? len[3] : 0;
	z->value = malloc(z->len + 1);
	memcpy(z->value, n > 3 ? f[3] : "", z->len + 1);
}

struct suite_test {
	char id[128], host[DNS_ADDR_MAX + 8], helo[DNS_NAME_MAX], mailfrom[512];
	char results[128], explanation[SPF_EXP_MAX];
	bool has_exp;
};

static bool
result_ok(const char *results, enum spf_result got)
{
	char list[128], *save = NULL;

	snprintf(list, sizeof(list), "%s", results);
	for (char *r = strtok_r(list, ",", &save); r != NULL; r = strtok_r(NULL, ",", &save)) {
		if (strcmp(r, spf_result_name(got)) == 0)
			return true;
	}
	return false;
}

static unsigned suite_passed, suite_failed;

static void
run_case(const struct suite_test *t)
{
	struct spf_request req = {
		.ip = t->host, .helo = t->helo, .mailfrom = t->mailfrom,
		.default_exp = "DEFAULT", .now = 1700000000,
	};
	struct spf_outcome out;
	bool ok;

	spf_check(&zone_resolver, &req, SPF_ID_MAILFROM, &out);
	ok = result_ok(t->results, out.result);
	if (ok && t->has_exp && strcmp(out.explanation, t->explanation) != 0)
		ok = false;
	if (ok) {
		suite_passed++;
		return;
	}
	suite_failed++;
	printf("  %s: got %s (%s) exp \"%s\" mech \"%s\", want %s%s%s\n", t->id,
	       spf_result_name(out.result), out.problem, out.explanation, out.mechanism,
	       t->results, t->has_exp ? " exp " : "", t->has_exp ? t->explanation : "");
}

static void
run_suite(const char *file)
{
	static char line[LINE_MAX_LEN];
	char path[1024], *f[FIELDS_MAX];
	size_t len[FIELDS_MAX], n;
	const char *dir = getenv("YOUJU_SPF_SUITES");
	struct suite_test t;
	bool pending = false;
	FILE *fp;

	suite_passed = suite_failed = 0;
	snprintf(path, sizeof(path), "%s/%s", dir != NULL ? dir : "testdata", file);
	fp = fopen(path, "r");
	if (fp == NULL) {
		printf("  cannot open %s\n", path);
		test_assert(fp != NULL);
		return;
	}
	while (fgets(line, sizeof(line), fp) != NULL) {
		n = split(line, f, len);
		if (strcmp(f[0], "X") == 0 && n >= 2) {
			snprintf(t.explanation, sizeof(t.explanation), "%s", f[1]);
			t.has_exp = true;
			continue;
		}
		if (pending)
			run_case(&t);
		pending = false;
		if (strcmp(f[0], "S") == 0) {
			zone_clear();
		} else if (strcmp(f[0], "Z") == 0 || strcmp(f[0], "ZT") == 0) {
			zone_add(f, len, n, strcmp(f[0], "ZT") == 0);
		} else if (strcmp(f[0], "T") == 0 && n >= 6) {
			memset(&t, 0, sizeof(t));
			snprintf(t.id, sizeof(t.id), "%s", f[1]);
			snprintf(t.host, sizeof(t.host), "%s", f[2]);
			snprintf(t.helo, sizeof(t.helo), "%s", f[3]);
			snprintf(t.mailfrom, sizeof(t.mailfrom), "%s", f[4]);
			snprintf(t.results, sizeof(t.results), "%s", f[5]);
			pending = true;
		}
	}
	if (pending)
		run_case(&t);
	fclose(fp);
	zone_clear();
	printf("  %s: %u passed, %u failed\n", file, suite_passed, suite_failed);
	test_assert(suite_failed == 0);
	test_assert(suite_passed > 0);
}

static void
test_suite_rfc7208(void)
{
	test_begin("spf: openspf suite for RFC 7208");
	run_suite("spf-rfc7208.txt");
	test_end();
}

static void
test_suite_rfc4408(void)
{
	test_begin("spf: openspf suite for RFC 4408");
	run_suite("spf-rfc4408.txt");
	test_end();
}

/* Random scenarios with pyspf's results (spf-crosscheck.py). */
static void
test_crosscheck_pyspf(void)
{
	test_begin("spf: cross-check against pyspf");
	run_suite("spf-pyspf.txt");
	test_end();
}

/* ---- parser, macros, headers ---- */

static void
test_record_parse(void)
{
	static const struct {
		const char *rec;
		bool ok;
	} cases[] = {
		{ "v=spf1", true },
		{ "v=spf1 -all", true },
		{ "V=SPF1 ip4:192.0.2.0/24 ip6:2001:db8::/32 a mx/24//64 ptr ~all", true },
		{ "v=spf1 a:foo:bar/baz.example.com/24//64 -all", true },
		{ "v=spf1 include:_spf.%{d2} exists:%{ir}.%{v}._spf.%{d} redirect=%{d}", true },
		{ "v=spf1 moo.cow-far_out=man:dog/cat ?all", true },
		{ "v=spf1 exp=x.example.com exp=y.example.com", false },
		{ "v=spf1 redirect=a.example.com redirect=b.example.com", false },
		{ "v=spf1 ip4:192.0.2.0/33", false },
		{ "v=spf1 ip4:192.0.2.0/032", false },
		{ "v=spf1 ip6:2001:db8::/129", false },
		{ "v=spf1 a:example", false },
		{ "v=spf1 a:example.123", false },
		{ "v=spf1 a//129", false },
		{ "v=spf1 all:foo", false },
		{ "v=spf1 include", false },
		{ "v=spf1 foo:bar", false },
		{ "v=spf1 1x=y", false },
		{ "v=spf1 a:%{x}.example.com", false },
		{ "v=spf1 a:%{d0}.example.com", false },
		{ "v=spf1 exists:%{c}.example.com", false },
		{ "v=spf1 a:%.example.com", false },
		{ "v=spf1\t-all", false },
		{ "v=spf10 -all", false },
	};
	static struct spf_record rec;
	char problem[SPF_PROBLEM_MAX];

	test_begin("spf: record syntax");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = spf_record_parse(cases[i].rec, strlen(cases[i].rec), &rec, problem);

		if (r != (cases[i].ok ? 1 : -1))
			printf("  %s: got %d\n", cases[i].rec, r);
		test_assert(r == (cases[i].ok ? 1 : -1));
	}
	test_assert(spf_record_parse("v=spf1 a:foo:bar/baz.example.com/24//64 -all", 44, &rec,
				     problem) == 1);
	test_assert(rec.n_terms == 2 && rec.terms[0].kind == SPF_A);
	test_assert(rec.terms[0].cidr4 == 24 && rec.terms[0].cidr6 == 64);
	test_assert(rec.terms[0].spec_len == strlen("foo:bar/baz.example.com"));
	test_assert(rec.terms[1].qualifier == SPF_FAIL && rec.has_all);
	test_end();
}

static void
expect_expand(const char *spec, const struct spf_macro_vars *v, bool exp, const char *want)
{
	char out[SPF_EXPAND_MAX];

	test_assert(spf_macro_expand(spec, strlen(spec), v, exp, out, sizeof(out)) == 1);
	if (strcasecmp(out, want) != 0)
		test_fail_str(__FILE__, __LINE__, out, want);
}

/* The examples of RFC 7208 7.4. */
static void
test_macros(void)
{
	struct spf_macro_vars v = {
		.sender = "strong-bad@email.example.com", .local = "strong-bad",
		.domain_o = "email.example.com", .d = "email.example.com", .ip = "192.0.2.3",
		.helo = "mx.example.org", .now = 1234,
	};
	char small[8];

	test_begin("spf: macro expansion (RFC 7208 7.4)");
	expect_expand("%{s}", &v, false, "strong-bad@email.example.com");
	expect_expand("%{o}", &v, false, "email.example.com");
	expect_expand("%{d}", &v, false, "email.example.com");
	expect_expand("%{d4}", &v, false, "email.example.com");
	expect_expand("%{d3}", &v, false, "email.example.com");
	expect_expand("%{d2}", &v, false, "example.com");
	expect_expand("%{d1}", &v, false, "com");
	expect_expand("%{dr}", &v, false, "com.example.email");
	expect_expand("%{d2r}", &v, false, "example.email");
	expect_expand("%{l}", &v, false, "strong-bad");
	expect_expand("%{l-}", &v, false, "strong.bad");
	expect_expand("%{lr}", &v, false, "strong-bad");
	expect_expand("%{lr-}", &v, false, "bad.strong");
	expect_expand("%{l1r-}", &v, false, "strong");
	expect_expand("%{ir}.%{v}._spf.%{d2}", &v, false, "3.2.0.192.in-addr._spf.example.com");
	expect_expand("%{lr-}.lp._spf.%{d2}", &v, false, "bad.strong.lp._spf.example.com");
	expect_expand("%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", &v, false,
		      "bad.strong.lp.3.2.0.192.in-addr._spf.example.com");
	expect_expand("%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", &v, false,
		      "3.2.0.192.in-addr.strong.lp._spf.example.com");
	expect_expand("%{d2}.trusted-domains.example.net", &v, false,
		      "example.com.trusted-domains.example.net");
	expect_expand("%{p}.%{h}", &v, false, "unknown.mx.example.org");
	expect_expand("%%%_%-", &v, false, "% %20");
	expect_expand("%{t} %{c} %{r}", &v, true, "1234 192.0.2.3 unknown");
	v.local = "a b&c";
	expect_expand("%{L}", &v, false, "a%20b%26c");
	v.ip = "2001:db8::cb01";
	expect_expand("%{ir}.%{v}._spf.%{d2}", &v, false,
		      "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com");
	expect_expand("%{c}", &v, true, "2001:db8::cb01");
	test_assert(spf_macro_expand("%{d}", 4, &v, false, small, sizeof(small)) == -1);
	test_assert(!spf_macro_valid("%{\0}", 4, false));
	test_assert(!spf_macro_valid("%{d\0}", 5, false));
	test_assert(!spf_macro_valid("a\0b", 3, true));
	test_assert(spf_macro_expand("%{t}", 4, &v, false, small, sizeof(small)) == -1);
	test_end();
}

static void
test_headers(void)
{
	struct spf_request req = {
		.ip = "192.0.2.1", .helo = "foo.example.com", .mailfrom = "myname@example.com",
		.receiver = "mybox.example.org",
	};
	struct spf_outcome o = { .result = SPF_PASS, .identity = SPF_ID_MAILFROM,
				 .domain = "example.com", .mechanism = "ip4:192.0.2.0/24" };
	char h[SPF_HEADER_MAX];

	test_begin("spf: Received-SPF and Authentication-Results");
	test_assert(spf_received_header(&req, &o, h, sizeof(h)) == 1);
	test_assert_strcmp(h, "Received-SPF: pass (mybox.example.org: domain of myname@example.com"
		" designates\r\n 192.0.2.1 as permitted sender) client-ip=192.0.2.1;\r\n"
		" envelope-from=\"myname@example.com\"; helo=foo.example.com;\r\n"
		" receiver=mybox.example.org; identity=mailfrom; mechanism=\"ip4:192.0.2.0/24\"");
	test_assert(spf_auth_results(&req, &o, h, sizeof(h)) == 1);
	test_assert_strcmp(h, "spf=pass smtp.mailfrom=myname@example.com");

	/* client text cannot break out of the comment, the quotes or the field */
	req.mailfrom = "\"a)b\\\r\nX-Evil: 1\"@example.com";
	req.helo = "[192.0.2.1]";
	o.result = SPF_FAIL;
	o.mechanism[0] = '\0';
	test_assert(spf_received_header(&req, &o, h, sizeof(h)) == 1);
	test_assert(strstr(h, "\nX-Evil") == NULL && strstr(h, "\r\nX") == NULL);
	test_assert(strstr(h, "a\\)b") != NULL);
	test_assert(strstr(h, "helo=\"[192.0.2.1]\"") != NULL);
	for (const char *p = h; *p != '\0'; p++)
		test_assert(*p != '\n' || p[1] == ' ');
	test_assert(spf_auth_results(&req, &o, h, sizeof(h)) == 1);
	test_assert_strcmp(h, "spf=fail smtp.mailfrom=example.com");

	o.identity = SPF_ID_HELO;
	snprintf(o.domain, sizeof(o.domain), "foo bar");
	test_assert(spf_auth_results(&req, &o, h, sizeof(h)) == 1);
	test_assert_strcmp(h, "spf=fail smtp.helo=\"foo bar\"");
	test_assert(spf_received_header(&req, &o, h, 40) == -1);
	test_end();
}

/* The limits of 4.6.4 over a small zone of our own. */
static void
add_zone(const char *name, const char *type, const char *value)
{
	char *f[4] = { "Z", (char *)name, (char *)type, (char *)value };
	size_t len[4] = { 1, strlen(name), strlen(type), strlen(value) };

	zone_add(f, len, 4, false);
}

static enum spf_result
check(const char *ip, const char *from, struct spf_outcome *out)
{
	struct spf_request req = { .ip = ip, .helo = "helo.example.org", .mailfrom = from };

	spf_check(&zone_resolver, &req, SPF_ID_MAILFROM, out);
	return out->result;
}

static void
test_limits(void)
{
	struct spf_outcome o;
	char name[64], rec[64];

	test_begin("spf: lookup limits and outcome details");
	zone_clear();
	/* a chain of includes: 10 are fine, the 11th is a permerror */
	for (int i = 0; i < 10; i++) {
		snprintf(name, sizeof(name), "i%d.example.org", i);
		snprintf(rec, sizeof(rec), "v=spf1 include:i%d.example.org", i + 1);
		add_zone(name, "TXT", rec);
	}
	add_zone("i10.example.org", "TXT", "v=spf1 ip4:192.0.2.1");
	test_assert(check("192.0.2.1", "x@i0.example.org", &o) == SPF_PASS);
	test_assert(o.dns_mechs == 10);
	test_assert_strcmp(o.mechanism, "include:i1.example.org");
	add_zone("deep.example.org", "TXT", "v=spf1 include:i0.example.org");
	test_assert(check("192.0.2.1", "x@deep.example.org", &o) == SPF_PERMERROR);
	test_assert(strstr(o.problem, "DNS-querying") != NULL);

	/* two void lookups are fine, the third is a permerror */
	add_zone("v2.example.org", "TXT", "v=spf1 a:n1.example.org a:n2.example.org ?all");
	add_zone("v3.example.org", "TXT",
		 "v=spf1 a:n1.example.org a:n2.example.org exists:n3.example.org ?all");
	test_assert(check("192.0.2.1", "x@v2.example.org", &o) == SPF_NEUTRAL && o.voids == 2);
	test_assert_strcmp(o.mechanism, "?all");
	test_assert(check("192.0.2.1", "x@v3.example.org", &o) == SPF_PERMERROR);

	/* more than 10 MX records */
	add_zone("mx.example.org", "TXT", "v=spf1 mx -all");
	for (int i = 0; i < 11; i++) {
		snprintf(rec, sizeof(rec), "%d m%d.example.org", i, i);
		add_zone("mx.example.org", "MX", rec);
	}
	test_assert(check("192.0.2.1", "x@mx.example.org", &o) == SPF_PERMERROR);

	/* IPv4-mapped clients are IPv4 */
	add_zone("v4.example.org", "TXT", "v=spf1 ip4:192.0.2.0/24 -all exp=why.example.org");
	add_zone("why.example.org", "TXT", "%{i} is not %{d}'s");
	test_assert(check("::ffff:192.0.2.9", "x@v4.example.org", &o) == SPF_PASS);
	test_assert(check("192.0.3.9", "x@v4.example.org", &o) == SPF_FAIL);
	test_assert_strcmp(o.explanation, "192.0.3.9 is not v4.example.org's");
	test_assert(check("not-an-ip", "x@v4.example.org", &o) == SPF_PERMERROR);

	/* client bytes do not reach the explanation raw */
	test_assert(check("192.0.3.9", "a\001b@v4.example.org", &o) == SPF_FAIL);
	test_assert_strcmp(o.explanation, "192.0.3.9 is not v4.example.org's");
	add_zone("v5.example.org", "TXT", "v=spf1 -all exp=why5.example.org");
	add_zone("why5.example.org", "TXT", "no %{l}");
	test_assert(check("192.0.3.9", "a\001\377b@v5.example.org", &o) == SPF_FAIL);
	test_assert_strcmp(o.explanation, "no a??b");

	/* HELO identity, and the null sender checked as its HELO */
	add_zone("helo.example.org", "TXT", "v=spf1 ip4:192.0.2.7 -all");
	struct spf_request req = { .ip = "192.0.2.7", .helo = "helo.example.org",
				   .mailfrom = "" };

	spf_check(&zone_resolver, &req, SPF_ID_MAILFROM, &o);
	test_assert(o.result == SPF_PASS && o.identity == SPF_ID_HELO);
	test_assert_strcmp(o.domain, "helo.example.org");
	req.mailfrom = "x@v5.example.org";
	spf_check(&zone_resolver, &req, SPF_ID_HELO, &o);
	test_assert(o.result == SPF_PASS && o.identity == SPF_ID_HELO);
	spf_check(&zone_resolver, &req, SPF_ID_MAILFROM, &o);
	test_assert(o.result == SPF_FAIL && o.identity == SPF_ID_MAILFROM);
	req.helo = "[192.0.2.7]";
	spf_check(&zone_resolver, &req, SPF_ID_HELO, &o);
	test_assert(o.result == SPF_NONE);

	/* %{p} is looked up once per domain, however often it appears */
	add_zone("p.example.org", "TXT",
		 "v=spf1 exists:%{p}.%{p}.%{p}.%{p}.x.example.org a:%{p}.example.org -all");
	add_zone("1.2.0.192.in-addr.arpa", "PTR", "host.p.example.org");
	add_zone("host.p.example.org", "A", "192.0.2.1");
	add_zone("host.p.example.org.example.org", "A", "192.0.2.1");
	ptr_calls = 0;
	test_assert(check("192.0.2.1", "x@p.example.org", &o) == SPF_PASS);
	test_assert(ptr_calls == 1);
	test_assert_strcmp(o.mechanism, "a:%{p}.example.org");
	zone_clear();
	test_end();
}

int
main(void)
{
	static void (*const tests[])(void) = {
		test_suite_rfc7208,
		test_suite_rfc4408,
		test_crosscheck_pyspf,
		test_record_parse,
		test_macros,
		test_headers,
		test_limits,
		NULL,
	};

	return test_run(tests);
}
