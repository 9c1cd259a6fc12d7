/* dns.h - every DNS lookup youju makes goes through here (libunbound).
 *
 * dns_servers from the config: empty uses the system resolver
 * (/etc/resolv.conf), otherwise forward to those servers ("ADDR" or
 * "ADDR@PORT"), which is how tests point youjud at a DNS server on
 * loopback. Thread-safe after dns_init().
 */
#ifndef YJ_DNS_H
#define YJ_DNS_H

#include <stddef.h>

#include "base/err.h"

int dns_init(const char *servers, struct yj_err *err) YJ_MUST_CHECK;
void dns_deinit(void);

/* Reverse lookup of a textual IPv4/IPv6 address. The name is returned
 * only if it also resolves forward to the same address (FCrDNS).
 * Returns 1 found, 0 none, -1 temporary error. */
int dns_ptr(const char *ip, char *name, size_t namelen);

#endif
