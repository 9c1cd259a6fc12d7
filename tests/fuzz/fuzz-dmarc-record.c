/* libFuzzer target for the DMARC record parser, and the evaluation of a
 * message whose policy record is the input: any text gives a record or
 * a clear refusal, never a crash, and the result's texts stay sane. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mailauth/dmarc.h"

#define FUZZ_CHECK(x) do { if (!(x)) abort(); } while (0)

static const char *fuzz_data;
static size_t fuzz_size;

static int
f_txt(void *arg, const char *name, dns_txt_fn *fn, void *ctx)
{
	fn(ctx, fuzz_data, fuzz_size);
	return 1;
}

static int
f_none(void *arg, const char *name, char addrs[][DNS_ADDR_MAX], size_t max, size_t *count_r)
{
	*count_r = 0;
	return 0;
}

static int
f_mx(void *arg, const char *name, struct dns_mx *mx, size_t max, size_t *count_r)
{
	*count_r = 0;
	return 0;
}

static const struct ma_resolver fuzz_res = { .txt = f_txt, .a = f_none, .aaaa = f_none,
					     .mx = f_mx };

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct dmarc_record rec;
	char problem[DMARC_PROBLEM_MAX], ar[512];
	const char *from[] = { "mail.example.com", "example.org" };
	struct dmarc_dkim dkim = { .domain = "example.com", .pass = size & 1 };
	struct dmarc_input in = { .from = from, .n_from = 2, .spf = SPF_PASS,
				  .spf_domain = "bounce.example.org", .dkim = &dkim, .n_dkim = 1,
				  .pct_roll = size % 100 };
	struct dmarc_outcome o;
	int r;

	if (size > 4096)
		return 0;
	fuzz_data = (const char *)data;
	fuzz_size = size;
	r = dmarc_record_parse(fuzz_data, size, &rec, problem);
	if (r == 1) {
		FUZZ_CHECK(rec.pct <= 100 && rec.n_rua <= DMARC_URIS_MAX);
		FUZZ_CHECK(rec.n_ruf <= DMARC_URIS_MAX);
		for (size_t i = 0; i < rec.n_rua; i++)
			FUZZ_CHECK(strncasecmp(rec.rua[i].uri, "mailto:", 7) == 0 &&
				   strpbrk(rec.rua[i].uri, " \r\n\t") == NULL);
	}
	if (r < 0)
		FUZZ_CHECK(problem[0] != '\0');
	dmarc_evaluate(&fuzz_res, &in, &o);
	FUZZ_CHECK(o.result != DMARC_RES_PASS || o.policy == DMARC_P_NONE);
	FUZZ_CHECK(dmarc_auth_results(&o, ar, sizeof(ar)) == 1);
	FUZZ_CHECK(strpbrk(ar, "\r\n") == NULL);
	return 0;
}
