/* libFuzzer target for the SPF record parser and macro expansion, and
 * check_host() over a resolver whose every TXT record is the input
 * (includes and redirects then recurse into it up to the limits): any
 * text gives a result, never a crash, and the headers stay one field. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mailauth/spf.h"

#define FUZZ_CHECK(x) do { if (!(x)) abort(); } while (0)

struct fuzz_input {
	const char *data;
	size_t size;
};

static struct fuzz_input input;

static int
f_txt(void *arg, const char *name, dns_txt_fn *fn, void *ctx)
{
	fn(ctx, input.data, input.size);
	return 1;
}

static int
f_addrs(void *arg, const char *name, char addrs[][DNS_ADDR_MAX], size_t max, size_t *count_r)
{
	*count_r = 0;
	if (name[0] == 't')
		return -1;	/* names starting with t time out */
	if (max > 0 && name[0] == 'a') {
		memcpy(addrs[0], "192.0.2.1", 10);
		*count_r = 1;
		return 1;
	}
	return 0;
}

static int
f_mx(void *arg, const char *name, struct dns_mx *mx, size_t max, size_t *count_r)
{
	*count_r = 0;
	for (size_t i = 0; i < max && i < (size_t)(name[0] & 15); i++) {
		mx[i].preference = (unsigned)i;
		memcpy(mx[i].host, "a.example.com", 14);
		(*count_r)++;
	}
	return *count_r > 0 ? 1 : 0;
}

static int
f_ptr(void *arg, const char *ip, char names[][DNS_NAME_MAX], size_t max, size_t *count_r)
{
	*count_r = 0;
	if (max > 0) {
		memcpy(names[0], "a.example.com", 14);
		*count_r = 1;
	}
	return 1;
}

static const struct ma_resolver fuzz_res = {
	.txt = f_txt, .mx = f_mx, .a = f_addrs, .aaaa = f_addrs, .ptr = f_ptr,
};

static void
fuzz_macros(const char *s, size_t len)
{
	struct spf_macro_vars v = {
		.sender = "user@example.com", .local = "user", .domain_o = "example.com",
		.d = "example.com", .ip = "2001:db8::1", .helo = "mx.example.com",
		.res = &fuzz_res,
	};
	char out[SPF_EXPAND_MAX];

	for (int exp = 0; exp < 2; exp++) {
		if (spf_macro_expand(s, len, &v, exp, out, sizeof(out)) == 1)
			FUZZ_CHECK(strlen(out) < sizeof(out));
	}
}

static void
fuzz_check(void)
{
	struct spf_request req = {
		.ip = "192.0.2.1", .helo = "mx.example.com", .mailfrom = "user@example.com",
		.receiver = "mx.example.org",
	};
	struct spf_outcome o;
	char h[SPF_HEADER_MAX];

	spf_check(&fuzz_res, &req, SPF_ID_MAILFROM, &o);
	FUZZ_CHECK(o.dns_mechs <= SPF_DNS_MECH_MAX + 1 && o.voids <= SPF_VOID_MAX + 1);
	if (spf_received_header(&req, &o, h, sizeof(h)) == 1) {
		for (const char *p = h; *p != '\0'; p++)
			FUZZ_CHECK((*p != '\n' || p[1] == ' ') && *p != '\0');
	}
	FUZZ_CHECK(spf_auth_results(&req, &o, h, sizeof(h)) == 1);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct spf_record rec;
	char problem[SPF_PROBLEM_MAX];

	if (size > 8192)
		return 0;
	input.data = (const char *)data;
	input.size = size;
	if (spf_record_parse(input.data, size, &rec, problem) == 1) {
		for (size_t i = 0; i < rec.n_terms; i++) {
			if (rec.terms[i].spec != NULL)
				fuzz_macros(rec.terms[i].spec, rec.terms[i].spec_len);
		}
	} else {
		FUZZ_CHECK(problem[0] != '\0' && memchr(problem, '\n', strlen(problem)) == NULL);
	}
	fuzz_macros(input.data, size);
	fuzz_check();
	return 0;
}
