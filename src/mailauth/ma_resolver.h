/* ma_resolver.h - the DNS lookups that SPF, DKIM, DMARC and ARC make, as
 * one small interface, so that the evaluators run the same code against
 * the real resolver (net/dns, libunbound) in youjud and against a peer
 * suite's own zone data in unit tests (which also simulate timeouts a
 * real server cannot give).
 *
 * Every lookup returns 1 found, 0 none (NXDOMAIN, or no records of that
 * type: SPF counts both as a void lookup), -1 temporary error (timeout,
 * SERVFAIL). Names are given and returned without the final dot.
 */
#ifndef YJ_MA_RESOLVER_H
#define YJ_MA_RESOLVER_H

#include <stddef.h>

#include "net/dns.h"

struct ma_resolver {
	void *arg;
	/* fn is called once per TXT record, its strings concatenated. */
	int (*txt)(void *arg, const char *name, dns_txt_fn *fn, void *ctx);
	int (*mx)(void *arg, const char *name, struct dns_mx *mx, size_t max,
		  size_t *count_r);
	int (*a)(void *arg, const char *name, char addrs[][DNS_ADDR_MAX], size_t max,
		 size_t *count_r);
	int (*aaaa)(void *arg, const char *name, char addrs[][DNS_ADDR_MAX], size_t max,
		    size_t *count_r);
	/* The PTR names of a textual address, not forward-confirmed (SPF's
	 * ptr mechanism and %{p} confirm them themselves). */
	int (*ptr)(void *arg, const char *ip, char names[][DNS_NAME_MAX], size_t max,
		   size_t *count_r);
};

/* The resolver youjud uses: net/dns, after dns_init(). */
const struct ma_resolver *ma_resolver_dns(void);

#endif
