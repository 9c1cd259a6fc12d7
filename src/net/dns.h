/* dns.h - every DNS lookup youju makes goes through here (libunbound).
 *
 * dns_servers from the config: empty uses the system resolver
 * (/etc/resolv.conf), otherwise forward to those servers ("ADDR" or
 * "ADDR@PORT"), which is how tests point youjud at a DNS server on
 * loopback. Thread-safe after dns_init().
 *
 * Lookups return 1 found, 0 none (the name does not exist, has no
 * records of that type, or is not a valid domain name), -1 temporary
 * error (timeout, SERVFAIL, no dns_init()). Each query waits at most
 * DNS_TIMEOUT_MS. DNSSEC is not validated (yet). Names come back in
 * text without the final dot; labels of returned names contain only
 * letters, digits, '-' and '_' (records with anything else are skipped,
 * since these names end up in headers and logs).
 */
#ifndef YJ_DNS_H
#define YJ_DNS_H

#include <stddef.h>

#include "base/err.h"

#define DNS_TIMEOUT_MS 5000
#define DNS_NAME_MAX 256	/* a domain name in text, NUL included */
#define DNS_ADDR_MAX 46		/* an address in text, NUL included */

/* Servers are separated by spaces or commas. Returns 1 or -1. */
int dns_init(const char *servers, struct yj_err *err) YJ_MUST_CHECK;
/* No lookup may be in progress. */
void dns_deinit(void);

/* Reverse lookup of a textual IPv4/IPv6 address. The name is returned
 * only if it also resolves forward to the same address (FCrDNS).
 * Returns 1 found, 0 none, -1 temporary error. */
int dns_ptr(const char *ip, char *name, size_t namelen);

/* The PTR names of a textual address as the server gives them, at most
 * max, not forward-confirmed (SPF confirms them itself, per name). */
int dns_ptr_names(const char *ip, char names[][DNS_NAME_MAX], size_t max, size_t *count_r);

/* Calls fn once per TXT record of name with the record's strings
 * concatenated (as SPF and DKIM read them); txt is NUL-terminated but may
 * also contain NULs, len is its length. */
typedef void dns_txt_fn(void *ctx, const char *txt, size_t len);
int dns_txt(const char *name, dns_txt_fn *fn, void *ctx);

struct dns_mx {
	unsigned preference;
	char host[DNS_NAME_MAX];	/* "" for a null MX (RFC 7505) */
};

/* The MX records of name, sorted by preference (equal preferences keep
 * the server's order), at most max of them (the most preferred ones);
 * *count_r says how many were stored. */
int dns_mx(const char *name, struct dns_mx *mx, size_t max, size_t *count_r);

/* The IPv4 (dns_a) or IPv6 (dns_aaaa) addresses of name, as text
 * ("192.0.2.1", "2001:db8::1"), at most max of them. */
int dns_a(const char *name, char addrs[][DNS_ADDR_MAX], size_t max, size_t *count_r);
int dns_aaaa(const char *name, char addrs[][DNS_ADDR_MAX], size_t max, size_t *count_r);

#endif
