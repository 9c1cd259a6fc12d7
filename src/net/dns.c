/* dns.c - lookups through one shared libunbound context.
 *
 * libunbound resolves in a background thread of its own. Each lookup is
 * sent with ub_resolve_async() and its caller sleeps on a condition
 * variable with a deadline; a reader thread of ours waits on ub_fd() and
 * runs ub_process(), whose callback hands the answer to the waiting
 * caller. So threads share one cache, lookups run in parallel, and none
 * waits longer than DNS_TIMEOUT_MS.
 */
#include "net/dns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <unbound.h>

#include "base/block.h"
#include "base/log.h"

enum {
	RR_A = 1, RR_PTR = 12, RR_MX = 15, RR_TXT = 16, RR_AAAA = 28,
	RCODE_NXDOMAIN = 3,
};

#define DNS_SERVER_MAX 80	/* one "ADDR@PORT" item of dns_servers */
#define DNS_PTR_NAMES_MAX 10	/* PTR names tried for forward confirmation */

/* One lookup in flight: filled by dns_answer(), under dns.lock. */
struct dns_query {
	pthread_cond_t cond;
	bool done;
	int err;
	struct ub_result *result;
};

static struct {
	struct ub_ctx *ctx;
	pthread_t reader;
	int wake[2];			/* written to stop the reader */
	pthread_mutex_t lock;
	pthread_condattr_t condattr;	/* CLOCK_MONOTONIC waits */
} dns = { .wake = { -1, -1 }, .lock = PTHREAD_MUTEX_INITIALIZER };

/* ---- setup ---- */

static int
dns_set_forwarders(struct ub_ctx *ctx, const char *servers, struct yj_err *err)
{
	const char *p = servers;

	for (;;) {
		char item[DNS_SERVER_MAX];
		size_t len;
		int r;

		p += strspn(p, " \t,");
		if (*p == '\0')
			return 1;
		len = strcspn(p, " \t,");
		if (len >= sizeof(item))
			return yj_err_set(err, "dns_servers: '%.*s' is too long", (int)len, p);
		memcpy(item, p, len);
		item[len] = '\0';
		r = ub_ctx_set_fwd(ctx, item);
		if (r != 0)
			return yj_err_set(err, "dns_servers: '%s': %s", item, ub_strerror(r));
		p += len;
	}
}

/* Special-use zones that unbound answers by itself (NXDOMAIN) unless told
 * otherwise. With a forwarder, that resolver knows the local network
 * better: LAN reverse zones, home.arpa, and the names and addresses set
 * aside for testing and documentation (test., 192.0.2.0/24, 2001:db8::/32
 * and so on), which is what test setups and lab networks use. */
static const char *const dns_passed_zones[] = {
	"home.arpa.", "test.", "2.0.192.in-addr.arpa.", "100.51.198.in-addr.arpa.",
	"113.0.203.in-addr.arpa.", "8.b.d.0.1.0.0.2.ip6.arpa.",
};

static int
dns_pass_special_zones(struct ub_ctx *ctx, bool configured)
{
	char value[64];
	int r = 0;

	/* unbound answers "localhost." for all of 127/8 itself. A server
	 * named in dns_servers may know better (a test network does); the
	 * system's resolver is not asked about loopback. */
	if (configured)
		r = ub_ctx_set_option(ctx, "local-zone:", "127.in-addr.arpa. transparent");
	if (r == 0)
		r = ub_ctx_set_option(ctx, "unblock-lan-zones:", "yes");
	if (r == 0)
		r = ub_ctx_set_option(ctx, "insecure-lan-zones:", "yes");
	for (size_t i = 0; r == 0 && i < sizeof(dns_passed_zones) / sizeof(dns_passed_zones[0]);
	     i++) {
		snprintf(value, sizeof(value), "%s transparent", dns_passed_zones[i]);
		r = ub_ctx_set_option(ctx, "local-zone:", value);
	}
	return r;
}

static int
dns_configure(struct ub_ctx *ctx, const char *servers, struct yj_err *err)
{
	bool configured;
	int r;

	/* Threads, not a forked process, and no validator module: there is
	 * no trust anchor configured yet. */
	r = ub_ctx_async(ctx, 1);
	if (r == 0)
		r = ub_ctx_set_option(ctx, "module-config:", "iterator");
	if (r != 0)
		return yj_err_set(err, "dns: %s", ub_strerror(r));
	configured = servers != NULL && servers[strspn(servers, " \t,")] != '\0';
	if (configured) {
		if (dns_set_forwarders(ctx, servers, err) < 0)
			return -1;
	} else {
		r = ub_ctx_resolvconf(ctx, NULL);
		if (r != 0) {
			/* Resolving from the root: keep unbound's local zones. */
			log_warn("dns: cannot use /etc/resolv.conf (%s); resolving from the root",
				 ub_strerror(r));
			return 1;
		}
		r = ub_ctx_hosts(ctx, NULL);
		if (r != 0)
			log_debug("dns: cannot read /etc/hosts: %s", ub_strerror(r));
	}
	r = dns_pass_special_zones(ctx, configured);
	if (r != 0)
		return yj_err_set(err, "dns: %s", ub_strerror(r));
	return 1;
}

/* The reader thread: deliver answers until dns_deinit() says stop. */
static void *
dns_reader(void *arg)
{
	struct pollfd pfd[2] = {
		{ .fd = ub_fd(dns.ctx), .events = POLLIN },
		{ .fd = dns.wake[0], .events = POLLIN },
	};

	pthread_setname_np(pthread_self(), "yj-dns");
	(void)arg;
	for (;;) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_error("dns: poll: %s", strerror(errno));
			break;
		}
		if (pfd[1].revents != 0)
			break;
		if (pfd[0].revents != 0 && ub_process(dns.ctx) != 0) {
			/* Lookups will time out from now on; that is all we can do. */
			log_error("dns: lost contact with the resolver thread");
			break;
		}
	}
	return NULL;
}

int
dns_init(const char *servers, struct yj_err *err)
{
	struct ub_ctx *ctx;

	if (dns.ctx != NULL)
		return yj_err_set(err, "dns: already initialised");
	ctx = ub_ctx_create();
	if (ctx == NULL)
		return yj_err_set(err, "dns: cannot create resolver context");
	if (dns_configure(ctx, servers, err) < 0)
		goto fail;
	if (pipe2(dns.wake, O_CLOEXEC) < 0) {
		yj_err_errno(err, "dns: pipe");
		goto fail;
	}
	pthread_condattr_init(&dns.condattr);
	pthread_condattr_setclock(&dns.condattr, CLOCK_MONOTONIC);
	dns.ctx = ctx;
	if (pthread_create(&dns.reader, NULL, dns_reader, NULL) != 0) {
		yj_err_set(err, "dns: cannot start reader thread");
		dns.ctx = NULL;
		pthread_condattr_destroy(&dns.condattr);
		close(dns.wake[0]);
		close(dns.wake[1]);
		dns.wake[0] = dns.wake[1] = -1;
		goto fail;
	}
	return 1;
fail:
	ub_ctx_delete(ctx);
	return -1;
}

void
dns_deinit(void)
{
	if (dns.ctx == NULL)
		return;
	if (write(dns.wake[1], "x", 1) != 1)
		log_error("dns: cannot stop reader thread");
	pthread_join(dns.reader, NULL);
	ub_ctx_delete(dns.ctx);
	dns.ctx = NULL;
	close(dns.wake[0]);
	close(dns.wake[1]);
	dns.wake[0] = dns.wake[1] = -1;
	pthread_condattr_destroy(&dns.condattr);
}

/* ---- one query ---- */

/* Runs in the reader thread. The waiter may free q as soon as the lock
 * is released, so q is not touched after that. */
static void
dns_answer(void *arg, int err, struct ub_result *result)
{
	struct dns_query *q = arg;

	pthread_mutex_lock(&dns.lock);
	q->err = err;
	q->result = result;
	q->done = true;
	pthread_cond_signal(&q->cond);
	pthread_mutex_unlock(&dns.lock);
}

/* A domain name in text that unbound will take as written: printable
 * ASCII without escapes, labels of 1-63 characters, at most 253 in all
 * (plus an optional final dot). */
static bool
dns_name_ok(const char *name)
{
	size_t len = strlen(name), label = 0;

	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)name[i];

		if (ch == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		if (ch <= ' ' || ch >= 0x7f || ch == '\\' || ++label > 63)
			return false;
	}
	return label > 0;
}

static struct timespec
dns_deadline(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += DNS_TIMEOUT_MS / 1000;
	ts.tv_nsec += (long)(DNS_TIMEOUT_MS % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

/* Waits for q's answer until the deadline; then cancels the query. A
 * cancel that fails means the answer is already on its way to
 * dns_answer(), so it is waited for (it cannot be long). Returns true if
 * q was answered. Called and returns with dns.lock held. */
static bool
dns_wait(struct dns_query *q, int id)
{
	struct timespec deadline = dns_deadline();

	while (!q->done) {
		if (pthread_cond_timedwait(&q->cond, &dns.lock, &deadline) == ETIMEDOUT)
			break;
	}
	if (q->done)
		return true;
	pthread_mutex_unlock(&dns.lock);
	int cancelled = ub_cancel(dns.ctx, id) == 0;
	pthread_mutex_lock(&dns.lock);
	if (cancelled)
		return false;
	while (!q->done)
		pthread_cond_wait(&q->cond, &dns.lock);
	return true;
}

/* Sorts an answer into found / none / temporary error. */
static int
dns_classify(const char *name, int type, int err, struct ub_result *res)
{
	if (err != 0 || res == NULL) {
		log_debug("dns: %s type %d: %s", name, type, ub_strerror(err));
		return -1;
	}
	if (res->rcode == RCODE_NXDOMAIN || res->nxdomain)
		return 0;
	if (res->rcode != 0) {
		log_debug("dns: %s type %d: rcode %d", name, type, res->rcode);
		return -1;
	}
	return res->havedata ? 1 : 0;
}

/* Asks one question. Returns 1 with *res_r to free with
 * ub_resolve_free(), 0 none, -1 temporary error. */
static int
dns_query(const char *name, int type, struct ub_result **res_r)
{
	struct dns_query q = { .done = false };
	int id = 0, r;

	*res_r = NULL;
	if (dns.ctx == NULL)
		return -1;
	if (!dns_name_ok(name))
		return 0;
	pthread_cond_init(&q.cond, &dns.condattr);
	r = ub_resolve_async(dns.ctx, name, type, 1, &q, dns_answer, &id);
	if (r != 0) {
		pthread_cond_destroy(&q.cond);
		log_debug("dns: %s type %d: %s", name, type, ub_strerror(r));
		return -1;
	}
	/* An answer that arrives before we wait is kept in q. */
	block_begin();
	pthread_mutex_lock(&dns.lock);
	if (!dns_wait(&q, id)) {
		pthread_mutex_unlock(&dns.lock);
		block_end();
		pthread_cond_destroy(&q.cond);
		log_debug("dns: %s type %d: timed out", name, type);
		return -1;
	}
	pthread_mutex_unlock(&dns.lock);
	block_end();
	pthread_cond_destroy(&q.cond);
	r = dns_classify(name, type, q.err, q.result);
	if (r == 1)
		*res_r = q.result;
	else
		ub_resolve_free(q.result);
	return r;
}

/* ---- record data ---- */

/* An uncompressed wire-format name (as unbound hands out rdata) to text
 * without the final dot; the root is "". Returns 1, or -1 if malformed,
 * too long or holding characters outside [A-Za-z0-9_-]. */
static int
dns_wire_name(const unsigned char *p, size_t len, char *out, size_t outlen)
{
	size_t pos = 0, o = 0;

	for (;;) {
		size_t label;

		if (pos >= len)
			return -1;
		label = p[pos++];
		if (label == 0)
			break;
		/* > 63 also rejects compression pointers. */
		if (label > 63 || label > len - pos || o + label + 2 > outlen)
			return -1;
		if (o > 0)
			out[o++] = '.';
		for (size_t i = 0; i < label; i++) {
			unsigned char ch = p[pos++];

			if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			      (ch >= '0' && ch <= '9') || ch == '-' || ch == '_'))
				return -1;
			out[o++] = (char)ch;
		}
	}
	if (outlen == 0)
		return -1;
	out[o] = '\0';
	return 1;
}

struct dns_ip {
	int family;
	unsigned char addr[16];
};

/* IPv4-mapped IPv6 is looked up as the IPv4 address it carries. */
static bool
dns_parse_ip(const char *ip, struct dns_ip *a)
{
	if (inet_pton(AF_INET, ip, a->addr) == 1) {
		a->family = AF_INET;
		return true;
	}
	if (inet_pton(AF_INET6, ip, a->addr) != 1)
		return false;
	a->family = AF_INET6;
	if (IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)a->addr)) {
		memmove(a->addr, a->addr + 12, 4);
		a->family = AF_INET;
	}
	return true;
}

/* 4.3.2.1.in-addr.arpa, or the 32 reversed nibbles under ip6.arpa. */
static void
dns_reverse_name(const struct dns_ip *a, char *out, size_t outlen)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	if (a->family == AF_INET) {
		snprintf(out, outlen, "%u.%u.%u.%u.in-addr.arpa", a->addr[3], a->addr[2],
			 a->addr[1], a->addr[0]);
		return;
	}
	for (int i = 15; i >= 0 && o + 4 < outlen; i--) {
		out[o++] = hex[a->addr[i] & 0xf];
		out[o++] = '.';
		out[o++] = hex[a->addr[i] >> 4];
		out[o++] = '.';
	}
	snprintf(out + o, outlen - o, "ip6.arpa");
}

/* Calls fn for each usable address record of name: 1, 0 or -1. */
static int
dns_addr_records(const char *name, int family,
		 void (*fn)(void *ctx, const unsigned char *addr), void *ctx)
{
	struct ub_result *res;
	int type = family == AF_INET ? RR_A : RR_AAAA;
	int size = family == AF_INET ? 4 : 16;
	bool any = false;
	int r = dns_query(name, type, &res);

	if (r <= 0)
		return r;
	for (size_t i = 0; res->data[i] != NULL; i++) {
		if (res->len[i] != size)
			continue;
		fn(ctx, (const unsigned char *)res->data[i]);
		any = true;
	}
	ub_resolve_free(res);
	return any ? 1 : 0;
}

struct dns_confirm {
	const struct dns_ip *want;
	bool seen;
};

static void
dns_confirm_one(void *ctx, const unsigned char *addr)
{
	struct dns_confirm *c = ctx;
	size_t size = c->want->family == AF_INET ? 4 : 16;

	if (memcmp(addr, c->want->addr, size) == 0)
		c->seen = true;
}

/* Does host resolve to a? 1 yes, 0 no, -1 temporary error. */
static int
dns_confirm(const char *host, const struct dns_ip *a)
{
	struct dns_confirm c = { .want = a };
	int r = dns_addr_records(host, a->family, dns_confirm_one, &c);

	if (r < 0)
		return -1;
	return c.seen ? 1 : 0;
}

int
dns_ptr(const char *ip, char *name, size_t namelen)
{
	struct dns_ip a;
	struct ub_result *res;
	char rev[80];
	bool temp = false;
	int r, found = 0;

	if (namelen > 0)
		name[0] = '\0';
	if (!dns_parse_ip(ip, &a))
		return 0;
	dns_reverse_name(&a, rev, sizeof(rev));
	r = dns_query(rev, RR_PTR, &res);
	if (r <= 0)
		return r;
	/* After one forward lookup failed for lack of an answer the next
	 * would most likely wait as long: the greeting waits for this. */
	for (size_t i = 0; res->data[i] != NULL && i < DNS_PTR_NAMES_MAX && !found && !temp;
	     i++) {
		char host[DNS_NAME_MAX];

		if (dns_wire_name((const unsigned char *)res->data[i], (size_t)res->len[i], host,
				  sizeof(host)) < 0 || host[0] == '\0')
			continue;
		r = dns_confirm(host, &a);
		if (r < 0)
			temp = true;
		if (r == 1 && strlen(host) < namelen) {
			memcpy(name, host, strlen(host) + 1);
			found = 1;
		}
	}
	ub_resolve_free(res);
	if (found)
		return 1;
	return temp ? -1 : 0;
}

int
dns_ptr_names(const char *ip, char names[][DNS_NAME_MAX], size_t max, size_t *count_r)
{
	struct dns_ip a;
	struct ub_result *res;
	char rev[80];
	int r;

	*count_r = 0;
	if (!dns_parse_ip(ip, &a))
		return 0;
	dns_reverse_name(&a, rev, sizeof(rev));
	r = dns_query(rev, RR_PTR, &res);
	if (r <= 0)
		return r;
	for (size_t i = 0; res->data[i] != NULL && *count_r < max; i++) {
		if (dns_wire_name((const unsigned char *)res->data[i], (size_t)res->len[i],
				  names[*count_r], DNS_NAME_MAX) < 0 || names[*count_r][0] == '\0')
			continue;
		(*count_r)++;
	}
	ub_resolve_free(res);
	return *count_r > 0 ? 1 : 0;
}

/* A TXT record's rdata is a run of <length><bytes> strings. */
int
dns_txt(const char *name, dns_txt_fn *fn, void *ctx)
{
	struct ub_result *res;
	int r = dns_query(name, RR_TXT, &res);

	if (r <= 0)
		return r;
	for (size_t i = 0; res->data[i] != NULL; i++) {
		const unsigned char *p = (const unsigned char *)res->data[i];
		size_t len = (size_t)res->len[i], pos = 0, o = 0;
		char *txt = malloc(len + 1);

		if (txt == NULL)
			log_fatal("dns: out of memory");
		while (pos < len) {
			size_t n = p[pos++];

			if (n > len - pos)
				n = len - pos;
			memcpy(txt + o, p + pos, n);
			o += n;
			pos += n;
		}
		txt[o] = '\0';
		fn(ctx, txt, o);
		free(txt);
	}
	ub_resolve_free(res);
	return 1;
}

/* Inserts into the sorted array mx[0..*count), keeping at most max. A new
 * record goes after those of equal preference, keeping the server order. */
static void
dns_mx_insert(struct dns_mx *mx, size_t max, size_t *count, const struct dns_mx *rec)
{
	size_t at = *count;

	while (at > 0 && mx[at - 1].preference > rec->preference)
		at--;
	if (at >= max)
		return;
	if (*count == max)
		(*count)--;
	memmove(&mx[at + 1], &mx[at], (*count - at) * sizeof(*mx));
	mx[at] = *rec;
	(*count)++;
}

int
dns_mx(const char *name, struct dns_mx *mx, size_t max, size_t *count_r)
{
	struct ub_result *res;
	bool any = false;
	int r = dns_query(name, RR_MX, &res);

	*count_r = 0;
	if (r <= 0)
		return r;
	for (size_t i = 0; res->data[i] != NULL; i++) {
		const unsigned char *p = (const unsigned char *)res->data[i];
		struct dns_mx rec;

		if (res->len[i] < 3 || dns_wire_name(p + 2, (size_t)res->len[i] - 2, rec.host,
						      sizeof(rec.host)) < 0)
			continue;
		rec.preference = (unsigned)p[0] << 8 | p[1];
		dns_mx_insert(mx, max, count_r, &rec);
		any = true;
	}
	ub_resolve_free(res);
	return any ? 1 : 0;
}

struct dns_addr_list {
	int family;
	char (*addrs)[DNS_ADDR_MAX];
	size_t max, count;
};

static void
dns_addr_add(void *ctx, const unsigned char *addr)
{
	struct dns_addr_list *l = ctx;

	if (l->count < l->max &&
	    inet_ntop(l->family, addr, l->addrs[l->count], DNS_ADDR_MAX) != NULL)
		l->count++;
}

static int
dns_addrs(const char *name, int family, char addrs[][DNS_ADDR_MAX], size_t max,
	  size_t *count_r)
{
	struct dns_addr_list l = { .family = family, .addrs = addrs, .max = max };
	int r = dns_addr_records(name, family, dns_addr_add, &l);

	*count_r = l.count;
	return r;
}

int
dns_a(const char *name, char addrs[][DNS_ADDR_MAX], size_t max, size_t *count_r)
{
	return dns_addrs(name, AF_INET, addrs, max, count_r);
}

int
dns_aaaa(const char *name, char addrs[][DNS_ADDR_MAX], size_t max, size_t *count_r)
{
	return dns_addrs(name, AF_INET6, addrs, max, count_r);
}
