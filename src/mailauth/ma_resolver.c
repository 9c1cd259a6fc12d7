/* ma_resolver.c - the resolver interface over net/dns (libunbound). */
#include "mailauth/ma_resolver.h"

static int
ma_dns_txt(void *arg, const char *name, dns_txt_fn *fn, void *ctx)
{
	(void)arg;
	return dns_txt(name, fn, ctx);
}

static int
ma_dns_mx(void *arg, const char *name, struct dns_mx *mx, size_t max, size_t *count_r)
{
	(void)arg;
	return dns_mx(name, mx, max, count_r);
}

static int
ma_dns_a(void *arg, const char *name, char addrs[][DNS_ADDR_MAX], size_t max, size_t *count_r)
{
	(void)arg;
	return dns_a(name, addrs, max, count_r);
}

static int
ma_dns_aaaa(void *arg, const char *name, char addrs[][DNS_ADDR_MAX], size_t max,
	    size_t *count_r)
{
	(void)arg;
	return dns_aaaa(name, addrs, max, count_r);
}

static int
ma_dns_ptr(void *arg, const char *ip, char names[][DNS_NAME_MAX], size_t max, size_t *count_r)
{
	(void)arg;
	return dns_ptr_names(ip, names, max, count_r);
}

const struct ma_resolver *
ma_resolver_dns(void)
{
	static const struct ma_resolver dns = {
		.txt = ma_dns_txt, .mx = ma_dns_mx, .a = ma_dns_a, .aaaa = ma_dns_aaaa,
		.ptr = ma_dns_ptr,
	};

	return &dns;
}
