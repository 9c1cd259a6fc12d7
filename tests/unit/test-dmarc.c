/* test-dmarc.c - DMARC: the record parse peer cases, organizational
 * domains from the Public Suffix List, alignment, and evaluation of
 * whole messages over a small zone. */
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <zlib.h>

#include "mailauth/dmarc.h"
#include "mailauth/dmarc_report.h"

/* ---- record-parse-cases.tsv ---- */

/* What RFC 7489 makes of each case: 1 usable, 0 not a DMARC record, -1
 * unusable. Where OpenDMARC's status differs, 6.3 says why: unknown tags
 * and bad values of optional tags are ignored (sp=, adkim=, aspf=, rf=,
 * ri=, pct= keep their defaults); p= must be valid unless a valid rua=
 * stands in for it (6.6.3), and "n" is not a policy. */
static const int want_parse[] = {
	[1] = 1, [2] = 1, [3] = 1, [4] = 1, [5] = -1, [6] = 0, [7] = 0, [8] = -1, [9] = 1,
	[10] = 1, [11] = 1, [12] = 1, [13] = 1, [14] = 1, [15] = -1, [16] = 1, [17] = 1,
	[18] = 1, [19] = 1,
};
#define N_CASES (sizeof(want_parse) / sizeof(want_parse[0]) - 1)

static void
check_case_fields(int n, const struct dmarc_record *rec)
{
	switch (n) {
	case 1:
		test_assert(rec->p == DMARC_P_NONE && rec->n_rua == 1 && rec->n_ruf == 1);
		test_assert_strcmp(rec->rua[0].uri, "mailto:dmarc-a@abuse.net");
		test_assert_strcmp(rec->ruf[0].uri, "mailto:dmarc-f@abuse.net");
		break;
	case 3: test_assert(rec->p == DMARC_P_REJECT && rec->sp == DMARC_P_REJECT); break;
	case 4: test_assert(rec->p == DMARC_P_QUARANTINE && rec->pct == 100); break;
	case 9: test_assert(rec->sp == DMARC_P_NONE && !rec->sp_given); break;
	case 10: test_assert(rec->adkim == DMARC_RELAXED); break;
	case 13: test_assert(rec->ri == 86400); break;
	case 14: test_assert(rec->pct == 100); break;
	case 16: test_assert(rec->n_rua == 0); break;
	case 17: test_assert(rec->n_ruf == 0); break;
	default: break;
	}
}

static void
test_parse_cases(void)
{
	char path[1024], line[1024], problem[DMARC_PROBLEM_MAX];
	const char *dir = getenv("YOUJU_TESTDATA");
	struct dmarc_record rec;
	bool seen[N_CASES + 1] = { false };
	unsigned passed = 0;
	FILE *fp;

	test_begin("dmarc: record-parse-cases.tsv");
	snprintf(path, sizeof(path), "%s/dmarc/record-parse-cases.tsv",
		 dir != NULL ? dir : "../shared/testdata");
	fp = fopen(path, "r");
	test_assert(fp != NULL);
	while (fp != NULL && fgets(line, sizeof(line), fp) != NULL) {
		char *rec_text, *tab;
		int n, r;

		if (line[0] == '#' || line[0] == '\n')
			continue;
		n = atoi(line);
		rec_text = strchr(line, '\t');
		if (n < 1 || (size_t)n > N_CASES || rec_text == NULL) {
			test_assert(!"unexpected line");
			continue;
		}
		rec_text++;
		tab = strchr(rec_text, '\t');
		if (tab != NULL)
			*tab = '\0';
		r = dmarc_record_parse(rec_text, strlen(rec_text), &rec, problem);
		seen[n] = true;
		if (r != want_parse[n]) {
			printf("  case %d '%s': got %d, want %d\n", n, rec_text, r, want_parse[n]);
			test_assert(r == want_parse[n]);
			continue;
		}
		check_case_fields(n, &rec);
		passed++;
	}
	if (fp != NULL)
		fclose(fp);
	for (size_t n = 1; n <= N_CASES; n++)
		test_assert(seen[n]);
	printf("  record-parse-cases.tsv: %u of %zu cases pass\n", passed, N_CASES);
	test_end();
}

static void
test_parse_more(void)
{
	struct dmarc_record rec;
	char problem[DMARC_PROBLEM_MAX];
	const char *r1 = "v=DMARC1 ; p = Reject;sp=quarantine; np=reject; pct=25; adkim=s; "
			 "aspf=s; rua=mailto:a@example.com!10m, https://x.example/, "
			 "mailto:b@example.com; fo=1:d; ri=3600; future=yes";

	test_begin("dmarc: record tags and tolerance");
	test_assert(dmarc_record_parse(r1, strlen(r1), &rec, problem) == 1);
	test_assert(rec.p == DMARC_P_REJECT && rec.sp == DMARC_P_QUARANTINE);
	test_assert(rec.np == DMARC_P_REJECT && rec.np_given);
	test_assert(rec.pct == 25 && rec.adkim == DMARC_STRICT && rec.aspf == DMARC_STRICT);
	test_assert(rec.n_rua == 2 && rec.rua[0].max_size == 10u << 20);
	test_assert_strcmp(rec.rua[1].uri, "mailto:b@example.com");
	test_assert(rec.fo == (DMARC_FO_1 | DMARC_FO_D) && rec.ri == 3600);
	test_assert(dmarc_record_parse("v=DMARC1; p=none; rua=mailto:a@b.example!4294967295t", 52,
				       &rec, problem) == 1);
	test_assert(rec.n_rua == 1 && rec.rua[0].max_size == ~0ULL);
	/* a valid rua= stands in for a missing p= (6.6.3) */
	test_assert(dmarc_record_parse("v=DMARC1; rua=mailto:r@example.com", 34, &rec,
				       problem) == 1);
	test_assert(rec.p == DMARC_P_NONE && !rec.p_given);
	test_assert(dmarc_record_parse("v=DMARC1; p=bogus; rua=ftp://x", 30, &rec, problem) == -1);
	test_assert(problem[0] != '\0');
	/* the first of a repeated tag counts; np defaults to sp, sp to p */
	test_assert(dmarc_record_parse("v=DMARC1; p=reject; p=none", 26, &rec, problem) == 1);
	test_assert(rec.p == DMARC_P_REJECT && rec.sp == DMARC_P_REJECT && rec.np == DMARC_P_REJECT);
	/* v= must come first and be exactly DMARC1 */
	test_assert(dmarc_record_parse("p=reject; v=DMARC1", 18, &rec, problem) == 0);
	test_assert(dmarc_record_parse("v=dmarc1; p=reject", 18, &rec, problem) == 0);
	test_assert(dmarc_record_parse("v=DMARC10; p=reject", 19, &rec, problem) == 0);
	test_assert(dmarc_record_parse("v=DMARC1\0; p=reject", 19, &rec, problem) == 0);
	test_end();
}

static void
expect_org(const char *domain, const char *want)
{
	char out[DNS_NAME_MAX];

	test_assert(dmarc_org_domain(domain, out, sizeof(out)) == 1);
	if (strcmp(out, want) != 0)
		test_fail_str(__FILE__, __LINE__, out, want);
}

static void
test_org_domain(void)
{
	test_begin("dmarc: organizational domain and alignment");
	expect_org("example.com", "example.com");
	expect_org("Mail.Example.COM.", "example.com");
	expect_org("a.b.example.co.uk", "example.co.uk");
	expect_org("co.uk", "co.uk");
	expect_org("com", "com");
	expect_org("x.y.example.test", "example.test");
	test_assert(dmarc_aligned("mail.example.com", "example.com", DMARC_RELAXED));
	test_assert(dmarc_aligned("EXAMPLE.com", "example.com.", DMARC_STRICT));
	test_assert(!dmarc_aligned("mail.example.com", "example.com", DMARC_STRICT));
	test_assert(!dmarc_aligned("example.co.uk", "other.co.uk", DMARC_RELAXED));
	test_assert(!dmarc_aligned("example.com", "example.net", DMARC_RELAXED));
	test_assert(!dmarc_aligned("", "example.com", DMARC_RELAXED));
	test_end();
}

/* ---- evaluation over a small zone ---- */

struct zentry {
	const char *name, *type, *value;	/* value NULL: lookups time out */
};

static const struct zentry zone[] = {
	{ "_dmarc.example.com", "TXT", "v=DMARC1; p=reject; sp=quarantine; np=reject; pct=50" },
	{ "_dmarc.example.com", "TXT", "not dmarc" },
	{ "example.com", "A", "192.0.2.1" },
	{ "mail.example.com", "A", "192.0.2.2" },
	{ "_dmarc.strict.example", "TXT", "v=DMARC1; p=quarantine; adkim=s; aspf=s" },
	{ "_dmarc.two.example", "TXT", "v=DMARC1; p=reject" },
	{ "_dmarc.two.example", "TXT", "v=DMARC1; p=none" },
	{ "_dmarc.bad.example", "TXT", "v=DMARC1; p=sometimes" },
	{ "_dmarc.slow.example", "TXT", NULL },
	{ "_dmarc.none.example", "TXT", "v=DMARC1; p=none" },
	/* RFC 7489 7.1 authorisations of report destinations */
	{ "example.com._report._dmarc.reports.example.net", "TXT", "v=DMARC1" },
	{ "example.com._report._dmarc.loose.example.net", "TXT", "v = DMARC1 ; x=y" },
	{ "example.com._report._dmarc.other.example.net", "TXT", "v=DMARC10" },
	{ "example.com._report._dmarc.slow.example.net", "TXT", NULL },
};

static int
zone_find(const char *name, const char *type, const struct zentry **e, size_t *from)
{
	bool timeout = false;

	for (size_t i = *from; i < sizeof(zone) / sizeof(zone[0]); i++) {
		if (strcasecmp(zone[i].name, name) != 0 || strcmp(zone[i].type, type) != 0)
			continue;
		if (zone[i].value == NULL) {
			timeout = true;
			continue;
		}
		*e = &zone[i];
		*from = i + 1;
		return 1;
	}
	return timeout ? -1 : 0;
}

static int
z_txt(void *arg, const char *name, dns_txt_fn *fn, void *ctx)
{
	const struct zentry *e;
	size_t from = 0;
	int r, any = 0;

	while ((r = zone_find(name, "TXT", &e, &from)) == 1) {
		fn(ctx, e->value, strlen(e->value));
		any = 1;
	}
	return r < 0 ? -1 : any;
}

static int
z_a(void *arg, const char *name, char addrs[][DNS_ADDR_MAX], size_t max, size_t *count_r)
{
	const struct zentry *e;
	size_t from = 0;
	int r = zone_find(name, "A", &e, &from);

	*count_r = 0;
	if (r == 1 && max > 0) {
		snprintf(addrs[0], DNS_ADDR_MAX, "%s", e->value);
		*count_r = 1;
	}
	return r;
}

static int
z_none(void *arg, const char *name, char addrs[][DNS_ADDR_MAX], size_t max, size_t *count_r)
{
	*count_r = 0;
	return 0;
}

static int
z_mx(void *arg, const char *name, struct dns_mx *mx, size_t max, size_t *count_r)
{
	*count_r = 0;
	return 0;
}

static const struct ma_resolver zres = { .txt = z_txt, .a = z_a, .aaaa = z_none, .mx = z_mx };

static void
eval(const char *from, enum spf_result spf, const char *spf_domain, const char *dkim_d,
     unsigned roll, struct dmarc_outcome *out)
{
	const char *froms[1] = { from };
	struct dmarc_dkim dkim = { .domain = dkim_d, .pass = true };
	struct dmarc_input in = {
		.from = froms, .n_from = 1, .spf = spf, .spf_domain = spf_domain,
		.dkim = &dkim, .n_dkim = dkim_d != NULL ? 1 : 0, .pct_roll = roll,
	};

	dmarc_evaluate(&zres, &in, out);
}

static void
test_evaluate(void)
{
	struct dmarc_outcome o;
	char ar[256];

	test_begin("dmarc: evaluation, policy, pct, sp and np");
	/* relaxed SPF alignment of a subdomain passes */
	eval("example.com", SPF_PASS, "bounce.example.com", NULL, 0, &o);
	test_assert(o.result == DMARC_RES_PASS && o.spf_aligned && !o.dkim_aligned);
	test_assert(o.policy == DMARC_P_NONE && o.has_record);
	test_assert(dmarc_auth_results(&o, ar, sizeof(ar)) == 1);
	test_assert_strcmp(ar, "dmarc=pass (p=reject dis=none) header.from=example.com");
	/* an unaligned SPF pass and an unaligned signature fail: p=reject, in the sample */
	eval("example.com", SPF_PASS, "evil.example", "evil.example", 10, &o);
	test_assert(o.result == DMARC_RES_FAIL && o.policy == DMARC_P_REJECT && !o.sampled_out);
	test_assert(dmarc_auth_results(&o, ar, sizeof(ar)) == 1);
	test_assert_strcmp(ar, "dmarc=fail (p=reject dis=reject) header.from=example.com");
	/* outside the pct=50 sample, reject becomes quarantine */
	eval("example.com", SPF_FAIL, "example.com", NULL, 50, &o);
	test_assert(o.result == DMARC_RES_FAIL && o.requested == DMARC_P_REJECT);
	test_assert(o.policy == DMARC_P_QUARANTINE && o.sampled_out);
	/* an existing subdomain gets sp=, a non-existent one np= (RFC 9091) */
	eval("mail.example.com", SPF_NONE, NULL, NULL, 0, &o);
	test_assert(o.result == DMARC_RES_FAIL && o.policy == DMARC_P_QUARANTINE);
	test_assert_strcmp(o.policy_domain, "example.com");
	test_assert_strcmp(o.org_domain, "example.com");
	eval("ghost.example.com", SPF_NONE, NULL, NULL, 0, &o);
	test_assert(o.result == DMARC_RES_FAIL && o.policy == DMARC_P_REJECT);
	/* DKIM alignment, relaxed and strict */
	eval("example.com", SPF_FAIL, "example.com", "sig.example.com", 0, &o);
	test_assert(o.result == DMARC_RES_PASS && o.dkim_aligned);
	test_assert_strcmp(o.dkim_domain, "sig.example.com");
	eval("strict.example", SPF_PASS, "mail.strict.example", "strict.example", 0, &o);
	test_assert(o.result == DMARC_RES_PASS && !o.spf_aligned && o.dkim_aligned);
	eval("strict.example", SPF_PASS, "mail.strict.example", "a.strict.example", 0, &o);
	test_assert(o.result == DMARC_RES_FAIL && o.policy == DMARC_P_QUARANTINE);
	/* SPF must pass to count: softfail does not */
	eval("strict.example", SPF_SOFTFAIL, "strict.example", NULL, 0, &o);
	test_assert(o.result == DMARC_RES_FAIL);
	/* no record, several records, an unusable record, a DNS error */
	eval("nowhere.example", SPF_PASS, "nowhere.example", NULL, 0, &o);
	test_assert(o.result == DMARC_RES_NONE && !o.has_record && o.policy == DMARC_P_NONE);
	test_assert(dmarc_auth_results(&o, ar, sizeof(ar)) == 1);
	test_assert_strcmp(ar, "dmarc=none header.from=nowhere.example");
	eval("two.example", SPF_NONE, NULL, NULL, 0, &o);
	test_assert(o.result == DMARC_RES_PERMERROR && o.policy == DMARC_P_NONE);
	eval("bad.example", SPF_NONE, NULL, NULL, 0, &o);
	test_assert(o.result == DMARC_RES_PERMERROR && o.policy == DMARC_P_NONE);
	eval("slow.example", SPF_NONE, NULL, NULL, 0, &o);
	test_assert(o.result == DMARC_RES_TEMPERROR && o.policy == DMARC_P_NONE);
	eval("bad domain\r\nX: y", SPF_NONE, NULL, NULL, 0, &o);
	test_assert(o.result == DMARC_RES_PERMERROR);
	test_assert(dmarc_auth_results(&o, ar, sizeof(ar)) == 1);
	test_assert_strcmp(ar, "dmarc=permerror");
	test_end();
}

static void
test_several_from(void)
{
	const char *froms[] = { "none.example", "example.com", "NONE.example", "strict.example" };
	struct dmarc_input in = { .from = froms, .n_from = 4, .spf = SPF_PASS,
				  .spf_domain = "none.example" };
	const char *many[DMARC_FROM_MAX + 1];
	char names[DMARC_FROM_MAX + 1][32];
	struct dmarc_outcome o;

	test_begin("dmarc: several From domains (6.6.1)");
	dmarc_evaluate(&zres, &in, &o);
	/* none.example passes; of the two that fail, example.com's reject is stricter */
	test_assert(o.result == DMARC_RES_FAIL && o.policy == DMARC_P_REJECT);
	test_assert_strcmp(o.from_domain, "example.com");
	in.n_from = 1;
	dmarc_evaluate(&zres, &in, &o);
	test_assert(o.result == DMARC_RES_PASS);
	in.n_from = 0;
	dmarc_evaluate(&zres, &in, &o);
	test_assert(o.result == DMARC_RES_NONE && o.problem[0] != '\0');
	for (size_t i = 0; i <= DMARC_FROM_MAX; i++) {
		snprintf(names[i], sizeof(names[i]), "d%zu.example", i);
		many[i] = names[i];
	}
	in.from = many;
	in.n_from = DMARC_FROM_MAX + 1;
	dmarc_evaluate(&zres, &in, &o);
	test_assert(o.result == DMARC_RES_FAIL && o.policy == DMARC_P_REJECT);
	test_end();
}

/* ---- aggregate reports ---- */

static void
test_report_xml(void)
{
	struct dmarc_report_meta meta = { "example.org", "noreply@example.org", "id<&>1",
					  1700000000, 1700086399 };
	struct dmarc_report_policy pol = { "example.com", "r", "s", "reject", "none", 100 };
	struct dmarc_report_row rows[2] = {
		{ "192.0.2.1", 3, "none", true, false, "", "example.com",
		  "example.com sel pass\nother.example - fail\n", "example.com", "pass" },
		{ "2001:db8::1", 1, "reject", false, false, "sampled_out", "a\"b'c",
		  "", "x\001y", "none" },
	};
	struct buf xml, gz;
	char out[4096], name[256];
	uLongf outlen = sizeof(out) - 1;

	test_begin("DMARC report XML and gzip (RFC 7489 appendix C)");
	buf_init(&xml, 65536);
	buf_init(&gz, 65536);
	test_assert(dmarc_report_xml(&meta, &pol, rows, 2, &xml) == 1);
	test_assert(buf_append(&xml, "", 1) == 1);
	test_assert(strncmp(xml.data, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback>\n"
			    "  <report_metadata>\n", 62) == 0);
	test_assert(strstr(xml.data, "<report_id>id&lt;&amp;&gt;1</report_id>") != NULL);
	test_assert(strstr(xml.data, "<begin>1700000000</begin>") != NULL);
	test_assert(strstr(xml.data, "<adkim>r</adkim>\n    <aspf>s</aspf>\n    <p>reject</p>\n"
			   "    <sp>none</sp>\n    <pct>100</pct>") != NULL);
	test_assert(strstr(xml.data, "<selector>sel</selector>") != NULL);
	/* "-": a signature without a readable s= has no selector element. */
	test_assert(strstr(xml.data, "<domain>other.example</domain>\n        <result>fail") != NULL);
	test_assert(strstr(xml.data, "<reason>\n          <type>sampled_out</type>") != NULL);
	test_assert(strstr(xml.data, "<header_from>a&quot;b&apos;c</header_from>") != NULL);
	test_assert(strstr(xml.data, "<domain>x?y</domain>") != NULL);
	test_assert(strstr(xml.data, "</feedback>\n") != NULL);
	/* gzip: inflates (with the gzip header) back to the XML. */
	test_assert(dmarc_report_gzip(xml.data, xml.len - 1, &gz) == 1);
	test_assert(gz.len > 18 && (unsigned char)gz.data[0] == 0x1f &&
		    (unsigned char)gz.data[1] == 0x8b);
	{
		z_stream z = { 0 };

		test_assert(inflateInit2(&z, 15 + 16) == Z_OK);
		z.next_in = (unsigned char *)gz.data;
		z.avail_in = (uInt)gz.len;
		z.next_out = (unsigned char *)out;
		z.avail_out = (uInt)outlen;
		test_assert(inflate(&z, Z_FINISH) == Z_STREAM_END);
		out[z.total_out] = '\0';
		inflateEnd(&z);
	}
	test_assert_strcmp(out, xml.data);
	test_assert(dmarc_report_filename("example.org", "example.com", 1, 2, name,
					  sizeof(name)) == 1);
	test_assert_strcmp(name, "example.org!example.com!1!2.xml.gz");
	test_assert(dmarc_report_filename("example.org", "example.com", 1, 2, name, 10) == -1);
	buf_free(&xml);
	buf_free(&gz);
	test_end();
}

static void
test_report_destinations(void)
{
	const char *list = "mailto:a@example.com!10485760 https://x mailto:b@example.net "
			   "mailto:!5 mailto:c@example.org!0";
	const char *cur = list;
	char addr[256];
	unsigned long long max;

	test_begin("DMARC report destinations (RFC 7489 7.1)");
	test_assert(dmarc_report_authorized(&zres, "example.com", "example.com") == 1);
	test_assert(dmarc_report_authorized(&zres, "example.com", "mail.example.com") == 1);
	test_assert(dmarc_report_authorized(&zres, "mail.example.com", "example.com") == 1);
	test_assert(dmarc_report_authorized(&zres, "example.com", "reports.example.net") == 1);
	test_assert(dmarc_report_authorized(&zres, "example.com", "loose.example.net") == 1);
	test_assert(dmarc_report_authorized(&zres, "example.com", "other.example.net") == 0);
	test_assert(dmarc_report_authorized(&zres, "example.com", "nothing.example.net") == 0);
	test_assert(dmarc_report_authorized(&zres, "example.com", "slow.example.net") == -1);
	test_assert(dmarc_report_next_rua(&cur, addr, sizeof(addr), &max) == 1);
	test_assert(strcmp(addr, "a@example.com") == 0 && max == 10485760);
	test_assert(dmarc_report_next_rua(&cur, addr, sizeof(addr), &max) == 1);
	test_assert(strcmp(addr, "b@example.net") == 0 && max == 0);
	test_assert(dmarc_report_next_rua(&cur, addr, sizeof(addr), &max) == 1);
	test_assert(strcmp(addr, "c@example.org") == 0 && max == 0);
	test_assert(dmarc_report_next_rua(&cur, addr, sizeof(addr), &max) == 0);
	test_end();
}

int
main(void)
{
	static void (*const tests[])(void) = {
		test_parse_cases,
		test_parse_more,
		test_org_domain,
		test_evaluate,
		test_several_from,
		test_report_xml,
		test_report_destinations,
		NULL,
	};

	return test_run(tests);
}
