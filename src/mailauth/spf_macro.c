/* spf_macro.c - macro expansion (RFC 7208 7) and the address helpers it
 * shares with check_host(). */
#include "mailauth/spf.h"
#include "mailauth/spf_ip.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define SPF_PARTS_MAX 128	/* parts a macro value is split into */

bool
spf_ip_parse(const char *text, struct spf_ip *ip)
{
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	memset(ip, 0, sizeof(*ip));
	if (inet_pton(AF_INET, text, ip->addr) == 1)
		return true;
	if (inet_pton(AF_INET6, text, ip->addr) != 1)
		return false;
	ip->v6 = true;
	if (memcmp(ip->addr, mapped, sizeof(mapped)) == 0) {
		memmove(ip->addr, ip->addr + 12, 4);
		memset(ip->addr + 4, 0, 12);
		ip->v6 = false;
	}
	return true;
}

bool
spf_ip_match(const struct spf_ip *a, const unsigned char *net, int prefix)
{
	int bytes = prefix / 8, bits = prefix % 8;

	if (memcmp(a->addr, net, (size_t)bytes) != 0)
		return false;
	if (bits == 0)
		return true;
	unsigned char mask = (unsigned char)(0xff << (8 - bits));

	return (a->addr[bytes] & mask) == (net[bytes] & mask);
}

int
spf_ip_confirm(const struct ma_resolver *res, const char *name, const struct spf_ip *ip)
{
	char addrs[SPF_ADDR_MAX][DNS_ADDR_MAX];
	size_t n = 0;
	int r = ip->v6 ? res->aaaa(res->arg, name, addrs, SPF_ADDR_MAX, &n)
		       : res->a(res->arg, name, addrs, SPF_ADDR_MAX, &n);

	if (r <= 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		struct spf_ip got;

		if (spf_ip_parse(addrs[i], &got) && got.v6 == ip->v6 &&
		    memcmp(got.addr, ip->addr, ip->v6 ? 16 : 4) == 0)
			return 1;
	}
	return 0;
}

bool
spf_name_within(const char *name, const char *domain)
{
	size_t nl = strlen(name), dl = strlen(domain);

	if (nl > 0 && name[nl - 1] == '.')
		nl--;
	if (dl > 0 && domain[dl - 1] == '.')
		dl--;
	if (nl < dl || strncasecmp(name + nl - dl, domain, dl) != 0)
		return false;
	return nl == dl || name[nl - dl - 1] == '.';
}

/* %{p}: a PTR name of the client that resolves back to it, preferring
 * d or a subdomain of d; "unknown" if none (7.3). */
static void
spf_macro_ptr_lookup(const struct spf_macro_vars *v, char *out, size_t outlen)
{
	char names[SPF_PTR_MAX][DNS_NAME_MAX];
	struct spf_ip ip;
	size_t n = 0;
	bool any = false;

	snprintf(out, outlen, "unknown");
	if (v->res == NULL || !spf_ip_parse(v->ip, &ip) ||
	    v->res->ptr(v->res->arg, v->ip, names, SPF_PTR_MAX, &n) <= 0)
		return;
	for (size_t i = 0; i < n && i < SPF_PTR_MAX; i++) {
		bool within = spf_name_within(names[i], v->d);

		if ((any && !within) || spf_ip_confirm(v->res, names[i], &ip) != 1)
			continue;
		snprintf(out, outlen, "%s", names[i]);
		any = true;
		if (within)
			return;
	}
}

static void
spf_macro_ptr(const struct spf_macro_vars *v, char *out, size_t outlen)
{
	struct spf_p_cache *c = v->pcache;

	if (c == NULL) {
		spf_macro_ptr_lookup(v, out, outlen);
		return;
	}
	if (c->lookups == 0 || strcasecmp(c->d, v->d) != 0) {
		if (c->lookups >= SPF_DNS_MECH_MAX) {
			snprintf(out, outlen, "unknown");
			return;
		}
		c->lookups++;
		snprintf(c->d, sizeof(c->d), "%s", v->d);
		spf_macro_ptr_lookup(v, c->value, sizeof(c->value));
	}
	snprintf(out, outlen, "%s", c->value);
}

/* %{i}: dotted quad, or 32 dot-separated nibbles for IPv6. */
static void
spf_macro_ip(const struct spf_macro_vars *v, bool readable, char *out, size_t outlen)
{
	/* Upper-case nibbles, as the openspf suite expects (DNS does not
	 * mind the case). */
	static const char hex[] = "0123456789ABCDEF";
	struct spf_ip ip;
	size_t o = 0;

	if (!spf_ip_parse(v->ip, &ip)) {
		snprintf(out, outlen, "%s", v->ip);
		return;
	}
	if (!ip.v6 || readable) {
		inet_ntop(ip.v6 ? AF_INET6 : AF_INET, ip.addr, out, (socklen_t)outlen);
		return;
	}
	for (int i = 0; i < 16 && o + 4 < outlen; i++) {
		out[o++] = hex[ip.addr[i] >> 4];
		out[o++] = '.';
		out[o++] = hex[ip.addr[i] & 0xf];
		out[o++] = '.';
	}
	out[o > 0 ? o - 1 : 0] = '\0';
}

/* The value of a macro letter, before transformers. */
static void
spf_macro_value(char letter, const struct spf_macro_vars *v, char *out, size_t outlen)
{
	struct spf_ip ip;

	switch (tolower((unsigned char)letter)) {
	case 's': snprintf(out, outlen, "%s", v->sender); break;
	case 'l': snprintf(out, outlen, "%s", v->local); break;
	case 'o': snprintf(out, outlen, "%s", v->domain_o); break;
	case 'd': snprintf(out, outlen, "%s", v->d); break;
	case 'h': snprintf(out, outlen, "%s", v->helo); break;
	case 'i': spf_macro_ip(v, false, out, outlen); break;
	case 'c': spf_macro_ip(v, true, out, outlen); break;
	case 'p': spf_macro_ptr(v, out, outlen); break;
	case 'v':
		snprintf(out, outlen, "%s", spf_ip_parse(v->ip, &ip) && ip.v6 ? "ip6" : "in-addr");
		break;
	case 'r': snprintf(out, outlen, "%s", v->receiver ? v->receiver : "unknown"); break;
	case 't': snprintf(out, outlen, "%lld", (long long)v->now); break;
	default: out[0] = '\0'; break;
	}
}

struct spf_out {
	char *buf;
	size_t len, max;
	bool overflow;
};

static void
spf_out_put(struct spf_out *o, const char *s, size_t len)
{
	if (len >= o->max - o->len) {
		o->overflow = true;
		return;
	}
	memcpy(o->buf + o->len, s, len);
	o->len += len;
	o->buf[o->len] = '\0';
}

/* Appends s, URL-escaped if escape (an upper-case macro letter). */
static void
spf_out_value(struct spf_out *o, const char *s, size_t len, bool escape)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		char enc[4];

		if (!escape || isalnum(ch) || strchr("-._~", ch) != NULL) {
			spf_out_put(o, s + i, 1);
			continue;
		}
		snprintf(enc, sizeof(enc), "%%%02X", ch);
		spf_out_put(o, enc, 3);
	}
}

/* Splits value on delims, optionally reversed, keeps the rightmost keep
 * parts (0: all) and joins them with dots. */
static void
spf_transform(struct spf_out *o, char *value, const char *delims, bool reverse,
	      unsigned keep, bool escape)
{
	char *parts[SPF_PARTS_MAX];
	size_t n = 0, first = 0;
	char *p = value;

	for (;;) {
		if (n == SPF_PARTS_MAX) {
			o->overflow = true;
			return;
		}
		parts[n++] = p;
		p += strcspn(p, delims);
		if (*p == '\0')
			break;
		*p++ = '\0';
	}
	if (reverse) {
		for (size_t i = 0; i < n / 2; i++) {
			char *t = parts[i];

			parts[i] = parts[n - 1 - i];
			parts[n - 1 - i] = t;
		}
	}
	if (keep > 0 && keep < n)
		first = n - keep;
	for (size_t i = first; i < n; i++) {
		if (i > first)
			spf_out_put(o, ".", 1);
		spf_out_value(o, parts[i], strlen(parts[i]), escape);
	}
}

/* One "%{...}" (already checked); returns its length. */
static size_t
spf_expand_one(struct spf_out *o, const char *s, const struct spf_macro_vars *v)
{
	char value[SPF_EXPAND_MAX], delims[8];
	size_t i = 3, nd = 0;
	unsigned keep = 0;
	bool reverse = false;
	char letter = s[2];

	delims[0] = '\0';
	while (isdigit((unsigned char)s[i])) {
		if (keep < 1000)
			keep = keep * 10 + (unsigned)(s[i] - '0');
		i++;
	}
	if (s[i] == 'r' || s[i] == 'R') {
		reverse = true;
		i++;
	}
	while (s[i] != '}') {
		if (nd < sizeof(delims) - 1 && strchr(delims, s[i]) == NULL) {
			delims[nd++] = s[i];
			delims[nd] = '\0';
		}
		i++;
	}
	if (nd == 0)
		memcpy(delims, ".", 2);
	spf_macro_value(letter, v, value, sizeof(value));
	spf_transform(o, value, delims, reverse, keep, isupper((unsigned char)letter));
	return i + 1;
}

int
spf_macro_expand(const char *s, size_t len, const struct spf_macro_vars *v, bool exp,
		 char *out, size_t outlen)
{
	struct spf_out o = { .buf = out, .max = outlen };
	size_t i = 0;

	if (outlen == 0)
		return -1;
	out[0] = '\0';
	if (!spf_macro_valid(s, len, exp))
		return -1;
	while (i < len && !o.overflow) {
		size_t lit = 0;

		while (i + lit < len && s[i + lit] != '%')
			lit++;
		spf_out_put(&o, s + i, lit);
		i += lit;
		if (i >= len)
			break;
		switch (s[i + 1]) {
		case '%': spf_out_put(&o, "%", 1); i += 2; break;
		case '_': spf_out_put(&o, " ", 1); i += 2; break;
		case '-': spf_out_put(&o, "%20", 3); i += 2; break;
		default: i += spf_expand_one(&o, s + i, v); break;
		}
	}
	return o.overflow ? -1 : 1;
}
