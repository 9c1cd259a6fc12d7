/* spf_ip.h - client addresses as SPF compares them; private to the SPF
 * files. An IPv4-mapped IPv6 address is treated as the IPv4 address it
 * carries (RFC 7208 5: "ip4" and "a" match it, "%{v}" is "in-addr"). */
#ifndef YJ_SPF_IP_H
#define YJ_SPF_IP_H

#include <stdbool.h>

#include "mailauth/spf.h"

struct spf_ip {
	bool v6;
	unsigned char addr[16];	/* 4 bytes used for IPv4 */
};

/* Parses a textual address; false if it is not one. */
bool spf_ip_parse(const char *text, struct spf_ip *ip);

/* Do the first prefix bits of a and the network net agree? */
bool spf_ip_match(const struct spf_ip *a, const unsigned char *net, int prefix);

/* Does name have an A (IPv4) or AAAA (IPv6) record equal to ip?
 * 1 yes, 0 no, -1 temporary error. */
int spf_ip_confirm(const struct ma_resolver *res, const char *name, const struct spf_ip *ip);

/* Is name equal to domain or a subdomain of it (case-insensitive)? */
bool spf_name_within(const char *name, const char *domain);

#endif
