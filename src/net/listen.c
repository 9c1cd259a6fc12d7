/* listen.c - listening sockets from "ADDR:PORT" specs, and CIDR lists
 * in the style of Postfix's mynetworks. */
#include "net/listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define LISTEN_BACKLOG 511
#define CIDR_TOKEN_MAX 80	/* longest list item: a bracketed IPv6 CIDR fits */
#define CIDR_SEPARATORS " \t\r\n,"

/* ---- listen_unix ---- */

int
listen_unix(const char *path, unsigned mode, struct yj_err *err)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path))
		return yj_err_set(err, "%s: path too long for a socket", path);
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return yj_err_errno(err, "socket");
	if ((unlink(path) < 0 && errno != ENOENT) ||
	    bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 || chmod(path, mode) < 0 ||
	    listen(fd, LISTEN_BACKLOG) < 0) {
		yj_err_errno(err, "%s", path);
		close(fd);
		return -1;
	}
	return fd;
}

/* ---- listen_bind ---- */

/* Decimal 0-65535, digits only (port 0 lets tests take a free port). */
static int
listen_parse_port(const char *s, unsigned *port_r)
{
	unsigned v = 0;

	if (*s == '\0' || strlen(s) > 5)
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (unsigned)(*s - '0');
	}
	if (v > 65535)
		return -1;
	*port_r = v;
	return 1;
}

/* Splits a spec into its host part (without brackets) and port. */
static int
listen_split(const char *spec, char *host, size_t hostlen, const char **port_r,
	     bool *bracketed_r, struct yj_err *err)
{
	const char *end, *colon;
	size_t len;

	*bracketed_r = spec[0] == '[';
	if (*bracketed_r) {
		end = strchr(spec, ']');
		if (end == NULL || end[1] != ':')
			return yj_err_set(err, "listen '%s': expected [ADDRESS]:PORT", spec);
		spec++;
		colon = end + 1;
		len = (size_t)(end - spec);
	} else {
		colon = strrchr(spec, ':');
		if (colon == NULL)
			return yj_err_set(err, "listen '%s': expected ADDRESS:PORT", spec);
		len = (size_t)(colon - spec);
		if (memchr(spec, ':', len) != NULL)
			return yj_err_set(err, "listen '%s': IPv6 addresses go in brackets", spec);
	}
	if (len >= hostlen)
		return yj_err_set(err, "listen '%.*s': address too long", (int)len, spec);
	memcpy(host, spec, len);
	host[len] = '\0';
	*port_r = colon + 1;
	return 1;
}

/* One socket, bound and listening. dual_stack asks an IPv6 socket to take
 * IPv4 connections too (as IPv4-mapped addresses). */
static int
listen_socket(const struct sockaddr *sa, socklen_t salen, bool dual_stack, const char *spec,
	      struct yj_err *err)
{
	int fd, saved, one = 1, zero = 0;

	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return yj_err_errno(err, "listen '%s': socket", spec);
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    (dual_stack && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) < 0)) {
		yj_err_errno(err, "listen '%s': setsockopt", spec);
		goto fail;
	}
	if (bind(fd, sa, salen) < 0) {
		yj_err_errno(err, "listen '%s': bind", spec);
		goto fail;
	}
	if (listen(fd, LISTEN_BACKLOG) < 0) {
		yj_err_errno(err, "listen '%s': listen", spec);
		goto fail;
	}
	return fd;
fail:
	/* listen_any() looks at errno to decide whether to fall back. */
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

/* All addresses: one dual-stack IPv6 socket where the host has IPv6,
 * else IPv4 only. */
static int
listen_any(unsigned port, const char *spec, struct yj_err *err)
{
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT,
				     .sin6_port = htons((uint16_t)port) };
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY),
				   .sin_port = htons((uint16_t)port) };
	int fd;

	fd = listen_socket((struct sockaddr *)&sin6, sizeof(sin6), true, spec, err);
	if (fd >= 0)
		return fd;
	if (errno != EAFNOSUPPORT && errno != EADDRNOTAVAIL)
		return -1;
	return listen_socket((struct sockaddr *)&sin, sizeof(sin), false, spec, err);
}

int
listen_bind(const char *spec, struct yj_err *err)
{
	char host[INET6_ADDRSTRLEN];
	const char *portstr = "";
	unsigned port;
	bool bracketed;
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6 };

	if (listen_split(spec, host, sizeof(host), &portstr, &bracketed, err) < 0)
		return -1;
	if (listen_parse_port(portstr, &port) < 0)
		return yj_err_set(err, "listen '%s': bad port '%s'", spec, portstr);
	if (!bracketed && (host[0] == '\0' || strcmp(host, "*") == 0))
		return listen_any(port, spec, err);
	if (!bracketed && inet_pton(AF_INET, host, &sin.sin_addr) == 1) {
		sin.sin_port = htons((uint16_t)port);
		return listen_socket((struct sockaddr *)&sin, sizeof(sin), false, spec, err);
	}
	if (bracketed && inet_pton(AF_INET6, host, &sin6.sin6_addr) == 1) {
		sin6.sin6_port = htons((uint16_t)port);
		return listen_socket((struct sockaddr *)&sin6, sizeof(sin6), false, spec, err);
	}
	return yj_err_set(err, "listen '%s': '%s' is not a numeric %s address", spec, host,
			  bracketed ? "IPv6" : "IPv4");
}

/* ---- CIDR lists ---- */

struct cidr {
	int family;			/* AF_INET or AF_INET6 */
	unsigned char addr[16];		/* IPv4 uses the first 4 bytes */
	unsigned prefix;
};

/* Parses a bare address. IPv4-mapped IPv6 (::ffff:a.b.c.d) becomes IPv4,
 * prefix included, so that it meets IPv4 networks. */
static bool
cidr_parse_addr(const char *s, struct cidr *a)
{
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET, s, a->addr) == 1) {
		a->family = AF_INET;
		a->prefix = 32;
		return true;
	}
	if (inet_pton(AF_INET6, s, a->addr) != 1)
		return false;
	a->family = AF_INET6;
	a->prefix = 128;
	if (memcmp(a->addr, mapped, sizeof(mapped)) == 0) {
		memmove(a->addr, a->addr + 12, 4);
		memset(a->addr + 4, 0, 12);
		a->family = AF_INET;
		a->prefix = 32;
	}
	return true;
}

/* Strips one pair of surrounding brackets, in place. */
static char *
cidr_unbracket(char *s)
{
	size_t len = strlen(s);

	if (len >= 2 && s[0] == '[' && s[len - 1] == ']') {
		s[len - 1] = '\0';
		return s + 1;
	}
	return s;
}

static int
cidr_parse_prefix(const char *s, unsigned max, unsigned *prefix_r)
{
	unsigned v = 0;

	if (*s == '\0' || strlen(s) > 3)
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (unsigned)(*s - '0');
	}
	if (v > max)
		return -1;
	*prefix_r = v;
	return 1;
}

/* One list item: ADDR, [ADDR], ADDR/N or [ADDR]/N. */
static int
cidr_parse_item(const char *tok, size_t len, struct cidr *net, struct yj_err *err)
{
	char buf[CIDR_TOKEN_MAX];
	char *slash, *addr;
	bool was_v6;
	unsigned max;

	if (len >= sizeof(buf))
		return yj_err_set(err, "network list: item '%.*s...' is too long", 20, tok);
	memcpy(buf, tok, len);
	buf[len] = '\0';
	slash = strchr(buf, '/');
	if (slash != NULL)
		*slash = '\0';
	addr = cidr_unbracket(buf);
	was_v6 = strchr(addr, ':') != NULL;
	if (!cidr_parse_addr(addr, net))
		return yj_err_set(err, "network list: '%.*s' is not an address", (int)len, tok);
	if (slash == NULL)
		return 1;
	/* A mapped network keeps the IPv6 prefix length it was written with. */
	max = was_v6 ? 128 : 32;
	if (cidr_parse_prefix(slash + 1, max, &net->prefix) < 0)
		return yj_err_set(err, "network list: bad prefix length in '%.*s'", (int)len, tok);
	if (was_v6 && net->family == AF_INET) {
		if (net->prefix < 96)
			return yj_err_set(err, "network list: '%.*s' mixes IPv4-mapped and "
					  "other IPv6 addresses", (int)len, tok);
		net->prefix -= 96;
	}
	return 1;
}

static bool
cidr_contains(const struct cidr *net, const struct cidr *a)
{
	unsigned full = net->prefix / 8, bits = net->prefix % 8;

	if (net->family != a->family)
		return false;
	if (memcmp(net->addr, a->addr, full) != 0)
		return false;
	if (bits == 0)
		return true;
	unsigned char mask = (unsigned char)(0xff << (8 - bits));
	return (net->addr[full] & mask) == (a->addr[full] & mask);
}

/* Parses every item of the list (so a malformed list fails the same way
 * whatever address is asked about) and tells whether a is in it. a may
 * be NULL to only check the list. Returns 1 in, 0 not in, -1 malformed. */
static int
cidr_list_walk(const char *list, const struct cidr *a, struct yj_err *err)
{
	bool found = false;
	const char *p = list != NULL ? list : "";

	for (;;) {
		struct cidr net;
		size_t len;

		p += strspn(p, CIDR_SEPARATORS);
		if (*p == '\0')
			break;
		len = strcspn(p, CIDR_SEPARATORS);
		if (cidr_parse_item(p, len, &net, err) < 0)
			return -1;
		if (a != NULL && cidr_contains(&net, a))
			found = true;
		p += len;
	}
	return found ? 1 : 0;
}

int
cidr_list_match(const char *list, const char *addr, struct yj_err *err)
{
	char buf[CIDR_TOKEN_MAX];
	struct cidr a;
	bool valid;

	valid = addr != NULL && strlen(addr) < sizeof(buf);
	if (valid) {
		snprintf(buf, sizeof(buf), "%s", addr);
		valid = cidr_parse_addr(cidr_unbracket(buf), &a);
	}
	/* An address that does not parse (a Unix socket's empty one) is in
	 * no network; the list is still checked. */
	return cidr_list_walk(list, valid ? &a : NULL, err);
}

int
cidr_list_check(const char *list, struct yj_err *err)
{
	return cidr_list_walk(list, NULL, err) < 0 ? -1 : 1;
}
