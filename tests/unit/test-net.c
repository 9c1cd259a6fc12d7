/* test-net.c - CIDR lists, listen_bind() specs, and DNS lookups against a
 * real nsd serving test zones on a loopback port. */
#include "test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mailauth/spf.h"
#include "net/dns.h"
#include "net/listen.h"

/* ---- CIDR lists ---- */

struct cidr_case {
	const char *list;
	const char *addr;
	int want;
};

static const struct cidr_case cidr_cases[] = {
	{ "127.0.0.0/8 [::1]/128", "127.0.0.1", 1 },
	{ "127.0.0.0/8 [::1]/128", "127.255.255.254", 1 },
	{ "127.0.0.0/8 [::1]/128", "128.0.0.1", 0 },
	{ "127.0.0.0/8 [::1]/128", "::1", 1 },
	{ "127.0.0.0/8 [::1]/128", "::2", 0 },
	{ "127.0.0.0/8 [::1]/128", "::ffff:127.0.0.1", 1 },
	{ "127.0.0.0/8 ::1/128", "::1", 1 },
	{ "10.0.0.0/8, 192.168.1.5", "192.168.1.5", 1 },
	{ "10.0.0.0/8, 192.168.1.5", "192.168.1.6", 0 },
	{ "10.0.0.0/8,192.168.1.5", "10.200.3.4", 1 },
	{ "10.0.0.0/8\t192.168.1.5\n", "10.0.0.0", 1 },
	{ "192.168.0.0/23", "192.168.1.255", 1 },
	{ "192.168.0.0/23", "192.168.2.0", 0 },
	{ "192.168.0.0/23", "192.167.255.255", 0 },
	{ "10.1.2.3/8", "10.9.9.9", 1 },		/* host bits are ignored */
	{ "0.0.0.0/0", "203.0.113.9", 1 },
	{ "0.0.0.0/0", "::1", 0 },
	{ "::/0", "2001:db8::1", 1 },
	{ "::/0", "192.0.2.1", 0 },
	{ "2001:db8::/32", "2001:db8:ffff::1", 1 },
	{ "2001:db8::/32", "2001:db9::1", 0 },
	{ "[2001:db8::]/33", "2001:db8:7fff::1", 1 },
	{ "[2001:db8::]/33", "2001:db8:8000::1", 0 },
	{ "[2001:DB8::1]", "2001:db8::1", 1 },
	{ "10.0.0.0/8", "::ffff:10.9.9.9", 1 },		/* mapped meets IPv4 */
	{ "::ffff:10.0.0.0/104", "10.1.2.3", 1 },
	{ "::ffff:10.0.0.0/104", "::ffff:10.1.2.3", 1 },
	{ "::ffff:10.0.0.0/104", "11.1.2.3", 0 },
	{ "[::1]", "[::1]", 1 },
	{ "", "127.0.0.1", 0 },
	{ " ,, ", "127.0.0.1", 0 },
	{ "127.0.0.1", "", 0 },
	{ "127.0.0.1", "not-an-address", 0 },
	{ "127.0.0.1", "127.0.0.1:25", 0 },
	/* malformed lists fail whatever the address */
	{ "10.0.0.0/33", "10.0.0.1", -1 },
	{ "10.0.0.0/", "10.0.0.1", -1 },
	{ "10.0.0.0/8x", "10.0.0.1", -1 },
	{ "10.0.0.0/-1", "10.0.0.1", -1 },
	{ "10.0.0/8", "10.0.0.1", -1 },
	{ "example.com", "10.0.0.1", -1 },
	{ "[::1/128", "::1", -1 },
	{ "::1/129", "::1", -1 },
	{ "::ffff:10.0.0.0/80", "10.0.0.1", -1 },
	{ "127.0.0.1 bogus", "127.0.0.1", -1 },
	{ "1.2.3.4/ 8", "1.2.3.4", -1 },
	{ "1.2.3.4//8", "1.2.3.4", -1 },
	{ "[]", "1.2.3.4", -1 },
	{ "1111:2222:3333:4444:5555:6666:7777:8888:9999:aaaa:bbbb:cccc:dddd:eeee:ffff/1",
	  "1.2.3.4", -1 },
};

static void
test_cidr_match(void)
{
	test_begin("cidr_list_match table");
	for (size_t i = 0; i < sizeof(cidr_cases) / sizeof(cidr_cases[0]); i++) {
		const struct cidr_case *tc = &cidr_cases[i];
		struct yj_err err = { "" };
		int got = cidr_list_match(tc->list, tc->addr, &err);

		if (got != tc->want) {
			char what[300];

			snprintf(what, sizeof(what), "'%s' ~ '%s': got %d, want %d", tc->list,
				 tc->addr, got, tc->want);
			test_fail(__FILE__, __LINE__, what);
		}
		if (tc->want < 0)
			test_assert(err.msg[0] != '\0');
	}
	test_end();
}

static void
test_cidr_check(void)
{
	struct yj_err err = { "" };

	test_begin("cidr_list_check");
	test_assert(cidr_list_check("127.0.0.0/8 [::1]/128 10.0.0.0/8, 192.168.1.5", &err) == 1);
	test_assert(cidr_list_check("", &err) == 1);
	test_assert(cidr_list_check(NULL, &err) == 1);
	test_assert(cidr_list_check("10.0.0.0/8 300.1.1.1", &err) == -1);
	test_assert(strstr(err.msg, "300.1.1.1") != NULL);
	test_assert(cidr_list_match(NULL, "127.0.0.1", NULL) == 0);
	test_assert(cidr_list_match("nonsense", "127.0.0.1", NULL) == -1);
	test_end();
}

/* ---- listen_bind ---- */

static int
bound_port(int fd, int *family_r)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -1;
	*family_r = ss.ss_family;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

static bool
can_connect(int family, const char *ip, int port)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t len;
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok;

	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		inet_pton(AF_INET, ip, &sin->sin_addr);
		len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		inet_pton(AF_INET6, ip, &sin6->sin6_addr);
		len = sizeof(*sin6);
	}
	ok = fd >= 0 && connect(fd, (struct sockaddr *)&ss, len) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

static bool
have_ipv6_loopback(void)
{
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	int fd = socket(AF_INET6, SOCK_STREAM, 0);
	bool ok = fd >= 0 && bind(fd, (struct sockaddr *)&sin6, sizeof(sin6)) == 0;

	if (fd >= 0)
		close(fd);
	return ok;
}

static void
test_listen_v4(void)
{
	struct yj_err err = { "" };
	int fd, family = 0, port, fd2;
	char spec[64];

	test_begin("listen_bind 127.0.0.1:0");
	fd = listen_bind("127.0.0.1:0", &err);
	test_assert(fd >= 0);
	if (fd >= 0) {
		port = bound_port(fd, &family);
		test_assert(family == AF_INET);
		test_assert(port > 0);
		test_assert((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
		test_assert(can_connect(AF_INET, "127.0.0.1", port));
		/* the same port again is in use */
		snprintf(spec, sizeof(spec), "127.0.0.1:%d", port);
		fd2 = listen_bind(spec, &err);
		test_assert(fd2 == -1);
		test_assert(strstr(err.msg, "bind") != NULL);
		close(fd);
	}
	test_end();
}

static void
test_listen_any(void)
{
	static const char *const specs[] = { "*:0", ":0" };

	test_begin("listen_bind *:0 and :0 (all addresses)");
	for (size_t i = 0; i < 2; i++) {
		struct yj_err err = { "" };
		int fd = listen_bind(specs[i], &err), family = 0, port, v6only = 1;
		socklen_t len = sizeof(v6only);

		test_assert(fd >= 0);
		if (fd < 0)
			continue;
		port = bound_port(fd, &family);
		test_assert(can_connect(AF_INET, "127.0.0.1", port));
		if (family == AF_INET6) {
			test_assert(getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &len) == 0);
			test_assert(v6only == 0);
			test_assert(can_connect(AF_INET6, "::1", port));
		}
		close(fd);
	}
	test_end();
}

static void
test_listen_v6(void)
{
	struct yj_err err = { "" };
	int fd, family = 0, port;

	test_begin("listen_bind [::1]:0");
	if (!have_ipv6_loopback()) {
		printf("  (no IPv6 loopback here: skipped)\n");
		test_end();
		return;
	}
	fd = listen_bind("[::1]:0", &err);
	test_assert(fd >= 0);
	if (fd >= 0) {
		port = bound_port(fd, &family);
		test_assert(family == AF_INET6);
		test_assert(can_connect(AF_INET6, "::1", port));
		close(fd);
	}
	test_end();
}

static void
test_listen_bad(void)
{
	static const char *const bad[] = {
		"", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:99999",
		"127.0.0.1:-1", "127.0.0.1:2a", "127.0.0.1: 25", "::1:25", "[::1]25",
		"[::1:25", "[127.0.0.1]:25", "[]:25", "[*]:25", "localhost:25",
		"1.2.3.4.5:25", "256.1.1.1:25", "*:", "**:25",
		"[0000:0000:0000:0000:0000:0000:0000:0000:0000:0001]:25",
	};

	test_begin("listen_bind rejects bad specs");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct yj_err err = { "" };
		int fd = listen_bind(bad[i], &err);

		if (fd >= 0) {
			test_fail(__FILE__, __LINE__, bad[i]);
			close(fd);
		}
		test_assert(err.msg[0] != '\0');
	}
	test_end();
}

/* ---- DNS against nsd ---- */

static const char zone_example[] =
	"$ORIGIN example.test.\n"
	"$TTL 300\n"
	"@ SOA ns hostmaster 1 3600 600 86400 300\n"
	"@ NS ns\n"
	"ns A 127.0.0.1\n"
	"@ MX 20 mx2\n"
	"@ MX 10 mx1\n"
	"@ MX 10 mx1b\n"
	"@ MX 30 bad\\032name\n"
	"@ TXT \"v=spf1 \" \"ip4:192.0.2.0/24 -all\"\n"
	"@ TXT \"second\"\n"
	"mx1 A 192.0.2.1\n"
	"mx1 A 192.0.2.11\n"
	"mx2 AAAA 2001:db8::2\n"
	"mail A 192.0.2.25\n"
	"mail AAAA 2001:db8::25\n"
	"alias CNAME mail\n"
	"liar A 192.0.2.100\n"
	"nullmx MX 0 .\n"
	"empty TXT \"\"\n"
	"spf-ptr TXT \"v=spf1 ptr:example.test -all\"\n"
	"spf-mx TXT \"v=spf1 mx:example.test/24 ~all\"\n"
	"spf-mx AAAA 2001:db8::1\n";

static const char zone_rev4[] =
	"$ORIGIN 2.0.192.in-addr.arpa.\n"
	"$TTL 300\n"
	"@ SOA ns.example.test. hostmaster.example.test. 1 3600 600 86400 300\n"
	"@ NS ns.example.test.\n"
	"25 PTR mail.example.test.\n"
	"99 PTR liar.example.test.\n"
	"66 PTR bad\\032name.example.test.\n"
	"77 PTR gone.example.test.\n";

static const char zone_rev6[] =
	"$ORIGIN 8.b.d.0.1.0.0.2.ip6.arpa.\n"
	"$TTL 300\n"
	"@ SOA ns.example.test. hostmaster.example.test. 1 3600 600 86400 300\n"
	"@ NS ns.example.test.\n"
	"5.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0 PTR mail.example.test.\n";

struct nsd {
	pid_t pid;
	int port;
	char dir[64];
};

static int
write_text(const char *dir, const char *name, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (f == NULL)
		return -1;
	fputs(text, f);
	return fclose(f) == 0 ? 1 : -1;
}

/* A port free for both UDP and TCP on 127.0.0.1 (racy, good enough). */
static int
free_port(void)
{
	for (int tries = 0; tries < 20; tries++) {
		struct sockaddr_in sin = { .sin_family = AF_INET,
					   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		socklen_t len = sizeof(sin);
		int u = socket(AF_INET, SOCK_DGRAM, 0), t = socket(AF_INET, SOCK_STREAM, 0);
		int port = -1;

		if (bind(u, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
		    getsockname(u, (struct sockaddr *)&sin, &len) == 0 &&
		    bind(t, (struct sockaddr *)&sin, sizeof(sin)) == 0)
			port = ntohs(sin.sin_port);
		close(u);
		close(t);
		if (port > 0)
			return port;
	}
	return -1;
}

static int
nsd_write_config(struct nsd *n)
{
	char conf[2048];

	snprintf(conf, sizeof(conf),
		 "server:\n"
		 "  ip-address: 127.0.0.1@%d\n"
		 "  port: %d\n"
		 "  do-ip6: no\n"
		 "  username: \"\"\n"
		 "  chroot: \"\"\n"
		 "  zonesdir: \"%s\"\n"
		 "  database: \"\"\n"
		 "  zonelistfile: \"%s/zone.list\"\n"
		 "  xfrdfile: \"%s/xfrd.state\"\n"
		 "  xfrdir: \"%s\"\n"
		 "  pidfile: \"%s/nsd.pid\"\n"
		 "  logfile: \"%s/nsd.log\"\n"
		 "  server-count: 1\n"
		 "  verbosity: 0\n"
		 "remote-control:\n"
		 "  control-enable: no\n"
		 "zone:\n  name: example.test\n  zonefile: example.zone\n"
		 "zone:\n  name: 2.0.192.in-addr.arpa\n  zonefile: rev4.zone\n"
		 "zone:\n  name: 8.b.d.0.1.0.0.2.ip6.arpa\n  zonefile: rev6.zone\n",
		 n->port, n->port, n->dir, n->dir, n->dir, n->dir, n->dir, n->dir);
	if (write_text(n->dir, "nsd.conf", conf) < 0 ||
	    write_text(n->dir, "example.zone", zone_example) < 0 ||
	    write_text(n->dir, "rev4.zone", zone_rev4) < 0 ||
	    write_text(n->dir, "rev6.zone", zone_rev6) < 0)
		return -1;
	return 1;
}

/* Starts nsd in the foreground as a child. Returns 1, or 0 if nsd is not
 * installed or would not start (the DNS tests are then skipped). */
static int
nsd_start(struct nsd *n)
{
	char conf[128];

	if (access("/usr/sbin/nsd", X_OK) != 0)
		return 0;
	snprintf(n->dir, sizeof(n->dir), "/tmp/youju-test-nsd-XXXXXX");
	if (mkdtemp(n->dir) == NULL)
		return 0;
	n->port = free_port();
	if (n->port < 0 || nsd_write_config(n) < 0)
		return 0;
	snprintf(conf, sizeof(conf), "%s/nsd.conf", n->dir);
	n->pid = fork();
	if (n->pid == 0) {
		execl("/usr/sbin/nsd", "nsd", "-d", "-c", conf, (char *)NULL);
		_exit(127);
	}
	return n->pid > 0 ? 1 : 0;
}

static void
nsd_stop(struct nsd *n)
{
	char cmd[128];

	if (n->pid > 0) {
		kill(n->pid, SIGTERM);
		waitpid(n->pid, NULL, 0);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", n->dir);
	if (n->dir[0] != '\0' && system(cmd) != 0)
		printf("  (could not remove %s)\n", n->dir);
}

static void
txt_collect(void *ctx, const char *txt, size_t len)
{
	char *out = ctx;
	size_t used = strlen(out);

	snprintf(out + used, 256 - used, "[%.*s]", (int)len, txt);
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* nsd needs a moment to load its zones; libunbound remembers a server
 * that did not answer, so each try uses a fresh resolver. */
static bool
dns_wait_ready(const char *servers)
{
	for (int i = 0; i < 50; i++) {
		char addrs[1][DNS_ADDR_MAX];
		size_t n;
		struct yj_err err;

		if (dns_init(servers, &err) < 0)
			return false;
		if (dns_a("ns.example.test", addrs, 1, &n) == 1)
			return true;
		dns_deinit();
		sleep_ms(100);
	}
	return false;
}

static void
test_dns_lookups(void)
{
	char addrs[4][DNS_ADDR_MAX], txt[256] = "", name[DNS_NAME_MAX], names[4][DNS_NAME_MAX];
	struct dns_mx mx[3];
	size_t n = 99;

	test_assert(dns_a("mail.example.test", addrs, 4, &n) == 1);
	test_assert(n == 1 && strcmp(addrs[0], "192.0.2.25") == 0);
	test_assert(dns_aaaa("mail.example.test", addrs, 4, &n) == 1);
	test_assert(n == 1 && strcmp(addrs[0], "2001:db8::25") == 0);
	test_assert(dns_a("alias.example.test.", addrs, 4, &n) == 1);	/* via CNAME */
	test_assert(n == 1 && strcmp(addrs[0], "192.0.2.25") == 0);
	test_assert(dns_a("mx1.example.test", addrs, 1, &n) == 1 && n == 1);	/* max */
	test_assert(dns_a("nowhere.example.test", addrs, 4, &n) == 0 && n == 0);
	test_assert(dns_aaaa("mx1.example.test", addrs, 4, &n) == 0 && n == 0);	/* no data */
	test_assert(dns_a("bad..name", addrs, 4, &n) == 0);
	test_assert(dns_a("", addrs, 4, &n) == 0);

	test_assert(dns_txt("example.test", txt_collect, txt) == 1);
	test_assert(strstr(txt, "[v=spf1 ip4:192.0.2.0/24 -all]") != NULL);
	test_assert(strstr(txt, "[second]") != NULL);
	txt[0] = '\0';
	test_assert(dns_txt("empty.example.test", txt_collect, txt) == 1);
	test_assert_strcmp(txt, "[]");
	test_assert(dns_txt("nowhere.example.test", txt_collect, txt) == 0);

	/* sorted; "bad name" skipped; the two at 10 keep the server order */
	test_assert(dns_mx("example.test", mx, 3, &n) == 1);
	test_assert(n == 3);
	test_assert(mx[0].preference == 10 && mx[1].preference == 10);
	test_assert(strncmp(mx[0].host, "mx1", 3) == 0 && strncmp(mx[1].host, "mx1", 3) == 0);
	test_assert(mx[2].preference == 20 && strcmp(mx[2].host, "mx2.example.test") == 0);
	test_assert(dns_mx("example.test", mx, 1, &n) == 1 && n == 1 && mx[0].preference == 10);
	test_assert(dns_mx("nullmx.example.test", mx, 3, &n) == 1);
	test_assert(n == 1 && mx[0].preference == 0 && mx[0].host[0] == '\0');
	test_assert(dns_mx("mail.example.test", mx, 3, &n) == 0 && n == 0);

	test_assert(dns_ptr("192.0.2.25", name, sizeof(name)) == 1);
	test_assert_strcmp(name, "mail.example.test");
	test_assert(dns_ptr("::ffff:192.0.2.25", name, sizeof(name)) == 1);
	test_assert(dns_ptr("2001:db8::25", name, sizeof(name)) == 1);
	test_assert_strcmp(name, "mail.example.test");
	test_assert(dns_ptr("192.0.2.99", name, sizeof(name)) == 0);	/* not confirmed */
	test_assert(dns_ptr("192.0.2.66", name, sizeof(name)) == 0);	/* bad name */
	test_assert(dns_ptr("192.0.2.77", name, sizeof(name)) == 0);	/* dangling */
	test_assert(dns_ptr("192.0.2.1", name, sizeof(name)) == 0);	/* no PTR */
	test_assert(dns_ptr("192.0.2.25", name, 5) == 0);		/* does not fit */
	test_assert(dns_ptr("not an ip", name, sizeof(name)) == 0);

	/* raw PTR names, not confirmed: SPF confirms them itself */
	test_assert(dns_ptr_names("192.0.2.99", names, 4, &n) == 1);
	test_assert(n == 1 && strcmp(names[0], "liar.example.test") == 0);
	test_assert(dns_ptr_names("192.0.2.66", names, 4, &n) == 0 && n == 0);	/* bad name */
	test_assert(dns_ptr_names("2001:db8::25", names, 4, &n) == 1 && n == 1);
	test_assert(dns_ptr_names("192.0.2.1", names, 4, &n) == 0 && n == 0);
	test_assert(dns_ptr_names("not an ip", names, 4, &n) == 0);

	/* a zone the server does not serve: REFUSED, a temporary error */
	test_assert(dns_a("example.org", addrs, 4, &n) == -1);
}

/* SPF over the real resolver adapter: TXT (two strings), MX with their
 * addresses, PTR names confirmed forward. */
static enum spf_result
spf_over_dns(const char *ip, const char *from)
{
	struct spf_request req = { .ip = ip, .helo = "client.example.test", .mailfrom = from };
	struct spf_outcome o;

	spf_check(ma_resolver_dns(), &req, SPF_ID_MAILFROM, &o);
	return o.result;
}

static void
test_dns_spf(void)
{
	test_assert(spf_over_dns("192.0.2.200", "a@example.test") == SPF_PASS);
	test_assert(spf_over_dns("198.51.100.1", "a@example.test") == SPF_FAIL);
	test_assert(spf_over_dns("192.0.2.25", "a@spf-ptr.example.test") == SPF_PASS);
	test_assert(spf_over_dns("192.0.2.99", "a@spf-ptr.example.test") == SPF_FAIL);
	test_assert(spf_over_dns("192.0.2.77", "a@spf-mx.example.test") == SPF_PASS);
	test_assert(spf_over_dns("198.51.100.1", "a@spf-mx.example.test") == SPF_SOFTFAIL);
	test_assert(spf_over_dns("192.0.2.1", "a@nowhere.example.test") == SPF_NONE);
	test_assert(spf_over_dns("192.0.2.1", "a@example.org") == SPF_TEMPERROR);
}

/* Lookups from many threads at once share the one resolver. */
static void *
dns_worker(void *arg)
{
	int *bad = arg;

	for (int i = 0; i < 25; i++) {
		char addrs[2][DNS_ADDR_MAX], name[DNS_NAME_MAX];
		size_t n;

		if (dns_a(i % 2 ? "mail.example.test" : "mx1.example.test", addrs, 2, &n) != 1 ||
		    strncmp(addrs[0], "192.0.2.", 8) != 0)
			(*bad)++;
		if (dns_ptr("192.0.2.25", name, sizeof(name)) != 1 ||
		    strcmp(name, "mail.example.test") != 0)
			(*bad)++;
		if (dns_a("nowhere.example.test", addrs, 2, &n) != 0)
			(*bad)++;
	}
	return NULL;
}

static void
test_dns_threads(void)
{
	pthread_t t[8];
	int bad[8] = { 0 };

	for (int i = 0; i < 8; i++)
		pthread_create(&t[i], NULL, dns_worker, &bad[i]);
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		test_assert(bad[i] == 0);
	}
}

static void
test_dns(void)
{
	struct nsd n = { 0 };
	char servers[64];
	struct yj_err err = { "" };

	test_begin("dns lookups against nsd");
	if (nsd_start(&n) != 1) {
		printf("  (nsd not available: skipped)\n");
		test_end();
		return;
	}
	snprintf(servers, sizeof(servers), " 127.0.0.1@%d, ", n.port);
	if (dns_wait_ready(servers)) {
		test_assert(dns_init(servers, &err) == -1);	/* only once */
		test_dns_lookups();
		test_dns_spf();
		test_dns_threads();
		dns_deinit();
	} else {
		test_fail(__FILE__, __LINE__, "nsd did not answer");
	}
	nsd_stop(&n);
	test_end();
}

static void
test_dns_setup(void)
{
	struct yj_err err = { "" };
	char addrs[1][DNS_ADDR_MAX];
	size_t n;

	test_begin("dns setup errors");
	test_assert(dns_a("example.test", addrs, 1, &n) == -1);	/* no dns_init */
	test_assert(dns_init("not-an-address", &err) == -1);
	test_assert(strstr(err.msg, "not-an-address") != NULL);
	test_assert(dns_init("127.0.0.1@53 127.0.0.1@", &err) == -1);
	dns_deinit();		/* harmless when not initialised */
	test_end();
}

/* A server that never answers: the lookup gives up after DNS_TIMEOUT_MS. */
static void
test_dns_timeout(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	char servers[64], addrs[1][DNS_ADDR_MAX];
	struct yj_err err;
	struct timespec t0, t1;
	size_t n;
	long ms;

	test_begin("dns lookup times out");
	test_assert(bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0);
	test_assert(getsockname(fd, (struct sockaddr *)&sin, &len) == 0);
	snprintf(servers, sizeof(servers), "127.0.0.1@%d", ntohs(sin.sin_port));
	test_assert(dns_init(servers, &err) == 1);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	test_assert(dns_a("silent.example", addrs, 1, &n) == -1);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	test_assert(ms < DNS_TIMEOUT_MS + 2000);
	dns_deinit();
	close(fd);
	test_end();
}

int
main(void)
{
	static void (*const tests[])(void) = {
		test_cidr_match, test_cidr_check,
		test_listen_v4, test_listen_any, test_listen_v6, test_listen_bad,
		test_dns_setup, test_dns, test_dns_timeout,
		NULL
	};

	return test_run(tests);
}
