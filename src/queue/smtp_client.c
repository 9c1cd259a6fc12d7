/* smtp_client.c - the RFC 5321 client of the outbound queue. */
#include "queue/smtp_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "base/log.h"
#include "net/conn.h"
#include "net/dns.h"
#include "queue/smtp_7bit.h"

#define SMTPC_MX_MAX 10
#define SMTPC_ADDR_MAX 8
#define SMTPC_LINE_MAX 1024		/* RFC 5321 4.5.3.1.5: 512; some send more */
#define SMTPC_CHUNK (64 * 1024)		/* the largest BDAT chunk sent */
#define SMTPC_BDAT_WINDOW 16		/* chunks sent before a reply is read */
#define SMTPC_READ 16384		/* the message is read in pieces this big */
#define SMTPC_PLAIN_MAX 64		/* hosts remembered as needing plain text */
#define SMTPC_PLAIN_MS (3600 * 1000)	/* for this long after a failed handshake */

/* What one EHLO said and the last reply read. */
struct smtpc_session {
	struct conn *c;
	const struct smtpc_config *cfg;
	int code;
	char reply[SMTPC_REPLY_MAX];
	bool in_ehlo;			/* the reply being read is EHLO's */
	char what[48];			/* what is being read: "the reply to DATA" */
	bool starttls, pipelining, size, eightbit, smtputf8, dsn, chunking;
	unsigned long long size_limit;	/* SIZE's fixed limit, 0 none (RFC 1870) */
	bool auth_plain;		/* AUTH offers PLAIN (RFC 4954) */
	char host[256];			/* the server's name, for DSNs' Remote-MTA */
};

static const char *const smtpc_tls_names[] = {
	[SMTPC_TLS_NONE] = "none", [SMTPC_TLS_MAY] = "may",
	[SMTPC_TLS_ENCRYPT] = "encrypt", [SMTPC_TLS_VERIFY] = "verify",
};

/* The level named by p[0..len), or -1. */
static int
smtpc_tls_level(const char *p, size_t len)
{
	for (size_t i = 0; i < sizeof(smtpc_tls_names) / sizeof(smtpc_tls_names[0]); i++) {
		if (strlen(smtpc_tls_names[i]) == len && strncasecmp(p, smtpc_tls_names[i], len) == 0)
			return (int)i;
	}
	return -1;
}

/* Calls fn for each "domain=level" entry (space or comma separated) until
 * it returns nonzero; returns that. */
static int
smtpc_tls_entries(const char *policies, int (*fn)(void *, const char *, size_t, const char *,
						  size_t), void *arg)
{
	const char *p = policies;

	while (p != NULL && *(p += strspn(p, " ,\t")) != '\0') {
		size_t len = strcspn(p, " ,\t");
		const char *eq = memchr(p, '=', len);
		int ret = eq == NULL ? fn(arg, p, len, "", 0)
				     : fn(arg, p, (size_t)(eq - p), eq + 1, (size_t)(p + len - eq - 1));

		if (ret != 0)
			return ret;
		p += len;
	}
	return 0;
}

struct smtpc_tls_find {
	const char *domain;
	int level;			/* the domain's entry; -2 none */
	int fallback;			/* the "*" or "default" entry; -2 none */
};

static bool
smtpc_tls_is_default(const char *d, size_t dlen)
{
	return (dlen == 1 && d[0] == '*') || (dlen == 7 && strncasecmp(d, "default", 7) == 0);
}

static int
smtpc_tls_find_one(void *arg, const char *d, size_t dlen, const char *v, size_t vlen)
{
	struct smtpc_tls_find *f = arg;

	if (smtpc_tls_is_default(d, dlen)) {
		f->fallback = smtpc_tls_level(v, vlen);
		return 0;
	}
	if (dlen != strlen(f->domain) || strncasecmp(d, f->domain, dlen) != 0)
		return 0;
	f->level = smtpc_tls_level(v, vlen);
	return 1;
}

/* The domain's own entry wins wherever it stands; then the default
 * entry; then may. */
enum smtpc_tls
smtpc_tls_policy(const char *policies, const char *domain)
{
	struct smtpc_tls_find f = { .domain = domain, .level = -2, .fallback = -2 };

	(void)smtpc_tls_entries(policies, smtpc_tls_find_one, &f);
	if (f.level == -2)
		f.level = f.fallback;
	return f.level >= 0 ? (enum smtpc_tls)f.level : SMTPC_TLS_MAY;
}

static int
smtpc_tls_check_one(void *arg, const char *d, size_t dlen, const char *v, size_t vlen)
{
	if (dlen > 0 && smtpc_tls_level(v, vlen) >= 0)
		return 0;
	yj_err_set(arg, "smtp_tls_policy: '%.*s' is not DOMAIN=none, may, encrypt or verify "
		   "(DOMAIN * or default: every domain not named)",
		   (int)(v + vlen - d), d);
	return -1;
}

int
smtpc_tls_policy_check(const char *policies, struct yj_err *err)
{
	return smtpc_tls_entries(policies, smtpc_tls_check_one, err) < 0 ? -1 : 1;
}

/* Is kw the first word of line (case-insensitive)? */
static bool
smtpc_keyword(const char *line, const char *kw)
{
	size_t n = strlen(kw);

	return strncasecmp(line, kw, n) == 0 && (line[n] == '\0' || line[n] == ' ');
}

/* Is word one of the space-separated words of list (case-insensitive)? */
static bool
smtpc_has_word(const char *list, const char *word)
{
	size_t n = strlen(word);

	for (const char *p = list; *(p += strspn(p, " ")) != '\0'; p += strcspn(p, " ")) {
		if (strcspn(p, " ") == n && strncasecmp(p, word, n) == 0)
			return true;
	}
	return false;
}

/* One line of an EHLO reply (RFC 5321 4.1.1.1): the extensions we use. */
static void
smtpc_ehlo_keyword(struct smtpc_session *s, const char *kw)
{
	if (smtpc_keyword(kw, "STARTTLS"))
		s->starttls = true;
	else if (smtpc_keyword(kw, "PIPELINING"))
		s->pipelining = true;
	else if (smtpc_keyword(kw, "SIZE")) {
		s->size = true;
		s->size_limit = kw[4] == ' ' ? strtoull(kw + 5, NULL, 10) : 0;
	}
	else if (smtpc_keyword(kw, "8BITMIME"))
		s->eightbit = true;
	else if (smtpc_keyword(kw, "SMTPUTF8"))
		s->smtputf8 = true;
	else if (smtpc_keyword(kw, "DSN"))
		s->dsn = true;
	else if (smtpc_keyword(kw, "CHUNKING"))
		s->chunking = true;
	else if (smtpc_keyword(kw, "AUTH") || strncasecmp(kw, "AUTH=", 5) == 0)
		s->auth_plain = s->auth_plain || smtpc_has_word(kw + 5, "PLAIN");
}

/* The lines of one reply; smtpc_read_reply's work. */
static int
smtpc_read_reply_lines(struct smtpc_session *s)
{
	char line[SMTPC_LINE_MAX + 2];
	size_t len;

	s->code = 0;
	for (int lines = 0; lines < 100; lines++) {
		int ret = conn_read_line(s->c, line, sizeof(line), SMTPC_LINE_MAX, &len);

		if (ret == 0)
			break;
		if (ret < 0 || len < 4 || line[0] < '2' || line[0] > '5')
			break;
		line[strcspn(line, "\r\n")] = '\0';
		if (s->in_ehlo && strncmp(line, "250", 3) == 0)
			smtpc_ehlo_keyword(s, line + 4);
		if (line[3] == ' ' || line[3] == '\0') {
			s->code = atoi(line);
			snprintf(s->reply, sizeof(s->reply), "%.*s", SMTPC_REPLY_MAX - 1, line);
			return 1;
		}
	}
	s->code = 0;
	if (s->c->timed_out)
		snprintf(s->reply, sizeof(s->reply), "421 4.4.2 timeout after %d s waiting for %s "
			 "from %.200s[%s]", s->c->timeout_ms / 1000, s->what, s->host, s->c->peer_ip);
	else
		snprintf(s->reply, sizeof(s->reply), "421 4.4.2 connection lost or bad reply from "
			 "%.200s[%s] waiting for %s", s->host, s->c->peer_ip, s->what);
	return 0;
}

/* Reads one reply (all its lines); notes EHLO keywords. The whole reply
 * must come within the timeout, as conn_read_line() bounds one line: a
 * server trickling a long multi-line reply cannot hold the session.
 * 1, or 0 when the connection failed (code 0). */
static int
smtpc_read_reply(struct smtpc_session *s)
{
	int ret;

	conn_transfer_begin(s->c, 0, s->c->timeout_ms);
	ret = smtpc_read_reply_lines(s);
	conn_transfer_end(s->c);
	return ret;
}

/* The next reply answers what, and may take ms (RFC 5321 4.5.3.2 gives
 * each step of a transaction its own timeout). */
static void
smtpc_expect(struct smtpc_session *s, const char *what, int ms)
{
	snprintf(s->what, sizeof(s->what), "%.*s", (int)sizeof(s->what) - 1, what);
	s->c->timeout_ms = ms;
}

static void
smtpc_put(struct smtpc_session *s, const char *fmt, ...) YJ_PRINTF(2, 3);

/* Queues one command without sending it. */
static void
smtpc_put(struct smtpc_session *s, const char *fmt, ...)
{
	char line[SMTPC_LINE_MAX];
	va_list ap;

	va_start(ap, fmt);
	conn_vwrite_line(s->c, line, sizeof(line), fmt, ap);
	va_end(ap);
}

static int
smtpc_flush_read(struct smtpc_session *s);
static bool
smtpc_usable(const struct smtpc_session *s);
static void
smtpc_set_all(struct smtpc_rcpt *r, size_t n, int code, const char *reply);

static int
smtpc_cmd(struct smtpc_session *s, const char *fmt, ...) YJ_PRINTF(2, 3);

/* Sends one command and reads its reply: DATA's within the DATA
 * initiation timeout, the others' within smtp_timeout. */
static int
smtpc_cmd(struct smtpc_session *s, const char *fmt, ...)
{
	char line[SMTPC_LINE_MAX], what[40];
	va_list ap;

	va_start(ap, fmt);
	conn_vwrite_line(s->c, line, sizeof(line), fmt, ap);
	va_end(ap);
	line[strcspn(line, " ")] = '\0';	/* the verb, never AUTH's secret */
	snprintf(what, sizeof(what), "the reply to %.20s", line);
	smtpc_expect(s, what, strcmp(line, "DATA") == 0 ? s->cfg->data_init_timeout_ms
							  : s->cfg->timeout_ms);
	return smtpc_flush_read(s);
}

/* Sends what was queued and reads one reply. */
static int
smtpc_flush_read(struct smtpc_session *s)
{
	if (!conn_flush(s->c)) {
		s->code = 0;
		snprintf(s->reply, sizeof(s->reply), "421 4.4.2 write to %s failed", s->c->peer_ip);
		return 0;
	}
	return smtpc_read_reply(s);
}


static int
smtpc_ehlo(struct smtpc_session *s)
{
	bool ok;

	s->starttls = s->pipelining = s->size = s->eightbit = s->smtputf8 = s->dsn = false;
	s->chunking = false;
	s->size_limit = 0;
	s->auth_plain = false;
	s->in_ehlo = true;
	ok = smtpc_cmd(s, "EHLO %s", s->cfg->myhostname) && s->code == 250;
	s->in_ehlo = false;
	if (ok)
		return 1;
	if (s->code >= 500 && smtpc_cmd(s, "HELO %s", s->cfg->myhostname) && s->code == 250)
		return 1;
	return 0;
}

/* The source address of smtp_bind_address / smtp_bind_address6. */
static int
smtpc_bind(const struct smtpc_config *cfg, int fd, int family)
{
	const char *addr = family == AF_INET ? cfg->bind_address : cfg->bind_address6;
	struct sockaddr_in b4 = { .sin_family = AF_INET };
	struct sockaddr_in6 b6 = { .sin6_family = AF_INET6 };
	int ret;

	if (addr[0] == '\0')
		return 1;
	if (family == AF_INET)
		ret = inet_pton(AF_INET, addr, &b4.sin_addr) == 1 ?
		      bind(fd, (struct sockaddr *)&b4, sizeof(b4)) : -1;
	else
		ret = inet_pton(AF_INET6, addr, &b6.sin6_addr) == 1 ?
		      bind(fd, (struct sockaddr *)&b6, sizeof(b6)) : -1;
	if (ret < 0) {
		log_warn("smtp_bind_address%s %s: cannot bind: %s", family == AF_INET ? "" : "6",
			 addr, strerror(errno));
		return -1;
	}
	return 1;
}

/* Connects to ip:port within the connect timeout. fd or -1. */
static int
smtpc_connect(const struct smtpc_config *cfg, const char *ip, int port)
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	socklen_t sl;
	struct pollfd pfd;
	int fd, soerr = 0;
	socklen_t elen = sizeof(soerr);

	if (inet_pton(AF_INET, ip, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		sl = sizeof(*sin);
	} else if (inet_pton(AF_INET6, ip, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		sl = sizeof(*sin6);
	} else {
		return -1;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	if (smtpc_bind(cfg, fd, ss.ss_family) < 0) {
		close(fd);
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&ss, sl) < 0 && errno != EINPROGRESS)
		goto fail;
	pfd = (struct pollfd){ .fd = fd, .events = POLLOUT };
	if (poll(&pfd, 1, cfg->connect_timeout_ms) != 1 ||
	    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &elen) < 0 || soerr != 0)
		goto fail;
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0)
		goto fail;
	return fd;
fail:
	close(fd);
	return -1;
}

size_t
smtpc_dotstuff(struct smtpc_stuff *st, const char *p, size_t n, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		char ch = p[i];

		if (st->cr && ch != '\n') {	/* a lone CR ends a line too */
			out[o++] = '\r';
			out[o++] = '\n';
			st->bol = true;
		}
		st->cr = false;
		if (ch == '\r') {
			st->cr = true;
			continue;
		}
		if (ch == '\n') {
			out[o++] = '\r';
			out[o++] = '\n';
			st->bol = true;
			continue;
		}
		if (st->bol && ch == '.' && !st->keep_dots)
			out[o++] = '.';
		out[o++] = ch;
		st->bol = false;
	}
	return o;
}

size_t
smtpc_dotstuff_end(struct smtpc_stuff *st, char *out)
{
	size_t o = 0;

	if (st->cr || !st->bol) {
		out[o++] = '\r';
		out[o++] = '\n';
	}
	memcpy(out + o, ".\r\n", 3);
	return o + 3;
}

size_t
smtpc_crlf_end(const struct smtpc_stuff *st, char *out)
{
	if (!st->cr && st->bol)
		return 0;
	memcpy(out, "\r\n", 2);
	return 2;
}

/* Where the message's bytes go: after DATA, dot-stuffed; or in BDAT
 * chunks of at most SMTPC_CHUNK bytes; or nowhere, only counted (the
 * SIZE the server is told). Line ends become CRLF in each case. */
struct smtpc_sink {
	struct smtpc_session *s;
	struct smtpc_stuff st;
	bool count_only;		/* no session: count the bytes */
	unsigned long long count;
	size_t col, longest;		/* counting: line lengths, CRLF not counted */
	char *chunk;			/* BDAT: bytes waiting for their command */
	size_t len;
	bool pipelined;			/* BDAT: chunks go out before earlier replies */
	size_t owed;			/* BDAT replies not yet read */
	bool failed;			/* a chunk was refused: s has the reply */
	int fail_code;			/* the first refusal, kept while the */
	char fail_reply[SMTPC_REPLY_MAX];	/* replies owed are read */
};

static void
smtpc_set_write_failed(struct smtpc_session *s)
{
	s->code = 0;
	snprintf(s->reply, sizeof(s->reply), "421 4.4.2 write to %s failed", s->c->peer_ip);
}

/* Reads the reply to the oldest chunk sent. The first refusal (or a
 * lost connection) ends the sending: RFC 3030 2 lets no chunk follow. */
static void
smtpc_bdat_reply(struct smtpc_sink *k, bool last)
{
	struct smtpc_session *s = k->s;
	bool ok;

	smtpc_expect(s, last ? "the reply to BDAT LAST" : "the reply to BDAT", last ? s->cfg->data_done_timeout_ms
							     : s->cfg->data_xfer_timeout_ms);
	ok = smtpc_read_reply(s) && (last || s->code == 250);
	k->owed--;
	if (ok || k->failed)
		return;
	k->failed = true;
	k->fail_code = s->code;
	memcpy(k->fail_reply, s->reply, sizeof(k->fail_reply));
}

/* After a refusal: the replies to the chunks already sent are read (the
 * server answers each one), then s holds the refusal again. */
static void
smtpc_bdat_drain(struct smtpc_sink *k)
{
	struct smtpc_session *s = k->s;

	while (k->owed > 0 && smtpc_usable(s))
		smtpc_bdat_reply(k, false);
	k->owed = 0;
	s->code = k->fail_code;
	memcpy(s->reply, k->fail_reply, sizeof(s->reply));
}

/* Sends the waiting bytes as one BDAT chunk. Without PIPELINING its reply
 * is read at once; with it (RFC 3030 4.2) up to SMTPC_BDAT_WINDOW chunks
 * go out before the oldest reply is read, and the LAST one waits for
 * all. */
static void
smtpc_bdat(struct smtpc_sink *k, bool last)
{
	struct smtpc_session *s = k->s;
	size_t window = k->pipelined ? SMTPC_BDAT_WINDOW : 1;

	smtpc_expect(s, "the reply to BDAT", s->cfg->data_xfer_timeout_ms);
	smtpc_put(s, "BDAT %zu%s", k->len, last ? " LAST" : "");
	conn_write(s->c, k->chunk, k->len);
	k->len = 0;
	k->owed++;
	if (last || k->owed >= window) {
		if (!conn_flush(s->c)) {
			smtpc_set_write_failed(s);
			k->failed = true;
			k->fail_code = 0;
			memcpy(k->fail_reply, s->reply, sizeof(k->fail_reply));
			return;
		}
	}
	while (k->owed >= window || (last && k->owed > 0)) {
		smtpc_bdat_reply(k, last && k->owed == 1);
		if (k->failed) {
			smtpc_bdat_drain(k);
			return;
		}
	}
}

static void
smtpc_chunk_add(struct smtpc_sink *k, const char *p, size_t n)
{
	while (n > 0 && !k->failed) {
		size_t take = SMTPC_CHUNK - k->len < n ? SMTPC_CHUNK - k->len : n;

		memcpy(k->chunk + k->len, p, take);
		k->len += take;
		p += take;
		n -= take;
		if (k->len == SMTPC_CHUNK)
			smtpc_bdat(k, false);
	}
}

/* Counts what would be sent, and the longest line. */
static void
smtpc_count(struct smtpc_sink *k, const char *p, size_t n)
{
	k->count += n;
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\n') {
			k->col = 0;
		} else if (p[i] != '\r' && ++k->col > k->longest) {
			k->longest = k->col;
		}
	}
}

/* smtp7_out too: the converter writes here. */
static void
smtpc_sink_write(void *arg, const char *p, size_t n)
{
	struct smtpc_sink *k = arg;
	char out[3 * 4096];

	for (size_t off = 0; off < n && !k->failed; off += 4096) {
		size_t len = n - off < 4096 ? n - off : 4096;
		size_t o = smtpc_dotstuff(&k->st, p + off, len, out);

		if (k->count_only)
			smtpc_count(k, out, o);
		else if (k->chunk != NULL)
			smtpc_chunk_add(k, out, o);
		else
			conn_write(k->s->c, out, o);
	}
}

/* The end of the content: ".CRLF" after DATA, the last chunk with BDAT;
 * then the server's reply for the message, within the end of data
 * timeout. */
static int
smtpc_sink_end(struct smtpc_sink *k)
{
	struct smtpc_session *s = k->s;
	char end[8];

	if (k->failed)
		return 0;
	if (k->count_only) {
		k->count += smtpc_crlf_end(&k->st, end);
		return 1;
	}
	if (k->chunk != NULL) {
		smtpc_chunk_add(k, end, smtpc_crlf_end(&k->st, end));
		if (!k->failed)
			smtpc_bdat(k, true);
		return !k->failed;
	}
	conn_write(s->c, end, smtpc_dotstuff_end(&k->st, end));
	smtpc_expect(s, "the reply to the end of the data", s->cfg->data_done_timeout_ms);
	if (!conn_flush(s->c)) {
		smtpc_set_write_failed(s);
		return 0;
	}
	return smtpc_read_reply(s);
}

/* Reads the message (from offset 0) into fn. 1, or -1 with errno. */
static int
smtpc_read_message(int fd, void (*fn)(void *, const char *, size_t), void *arg,
		   const bool *stop)
{
	char buf[SMTPC_READ];
	ssize_t n;

	if (lseek(fd, 0, SEEK_SET) < 0)
		return -1;
	while ((stop == NULL || !*stop) && (n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0)
			return -1;
		fn(arg, buf, (size_t)n);
	}
	return 1;
}

static void
smtpc_feed_7bit(void *arg, const char *p, size_t n)
{
	smtp7_feed(arg, p, n);
}

/* The prefix header, then the message as is or through the converter d
 * (NULL: none), into k. 1, or -1 with errno. */
static int
smtpc_sink_message(struct smtpc_sink *k, const struct smtpc_message *m, struct smtp7 *d)
{
	char why[SMTP7_REASON_MAX];
	int ret;

	smtpc_sink_write(k, m->header, m->header_len);
	if (d == NULL)
		return smtpc_read_message(m->fd, smtpc_sink_write, k, &k->failed);
	smtp7_start_output(d, smtpc_sink_write, k);
	ret = smtpc_read_message(m->fd, smtpc_feed_7bit, d, &k->failed);
	(void)smtp7_end(d, why, sizeof(why));
	return ret;
}

/* The size of the message as it goes out, without DATA's dot-stuffing
 * (RFC 1870 3): what MAIL's SIZE says, after any conversion and with
 * every line end made CRLF; and its longest line. 1, or -1 with errno. */
static int
smtpc_wire_size(const struct smtpc_message *m, struct smtp7 *d, unsigned long long *size_r,
		size_t *longest_r)
{
	struct smtpc_sink k = { .count_only = true, .st = { .bol = true, .keep_dots = true } };

	if (smtpc_sink_message(&k, m, d) < 0)
		return -1;
	(void)smtpc_sink_end(&k);
	*size_r = k.count;
	*longest_r = k.longest;
	return 1;
}

/* The content: DATA (unless data_sent: its reply is in s) or BDAT, then
 * the message through smtpc_sink_message. A BDAT transaction a chunk's
 * refusal ended is reset for the next message. */
static int
smtpc_content(struct smtpc_session *s, const struct smtpc_message *m, struct smtp7 *d,
	      bool data_sent)
{
	struct smtpc_sink k = { .s = s, .st = { .bol = true, .keep_dots = s->chunking },
				.pipelined = s->chunking && s->pipelining };
	int ret;

	if (s->chunking) {
		if ((k.chunk = malloc(SMTPC_CHUNK)) == NULL)
			log_fatal("out of memory");
	} else if (!data_sent && !smtpc_cmd(s, "DATA")) {
		return 0;
	} else if (s->code != 354) {
		return 0;	/* DATA's reply, pipelined or not */
	}
	s->c->timeout_ms = s->cfg->data_xfer_timeout_ms;	/* each write of the content */
	if (smtpc_sink_message(&k, m, d) < 0) {
		/* Never end the data with a dot (or a LAST) we cannot vouch for:
		 * drop the line, and with it the transaction. */
		log_warn("queue: reading the message: %s", strerror(errno));
		s->c->failed = true;
		s->code = 0;
		snprintf(s->reply, sizeof(s->reply), "451 4.3.0 local error reading the message");
		free(k.chunk);
		return 0;
	}
	ret = smtpc_sink_end(&k);
	free(k.chunk);
	if (k.failed && s->code >= 400 && smtpc_usable(s)) {
		int code = s->code;
		char reply[SMTPC_REPLY_MAX];

		memcpy(reply, s->reply, sizeof(reply));
		(void)smtpc_cmd(s, "RSET");
		s->code = code;
		memcpy(s->reply, reply, sizeof(reply));
	}
	return ret;
}

/* Before MAIL: an 8BITMIME message for a server without 8BITMIME is
 * converted if it can be (*d_r set for the content), else each recipient
 * gets the 554 a bounce explains. 1 go on, 0 the recipients have their
 * answer. */
static int
smtpc_downgrade(struct smtpc_session *s, const struct smtpc_message *m, struct smtpc_rcpt *r,
		size_t n, struct smtp7 **d_r)
{
	char why[SMTP7_REASON_MAX], reply[SMTPC_REPLY_MAX];
	struct smtp7 *d;

	*d_r = NULL;
	if (s->eightbit || strcasecmp(m->body, "8BITMIME") != 0)
		return 1;
	d = smtp7_new(false);
	if (smtpc_read_message(m->fd, smtpc_feed_7bit, d, NULL) < 0) {
		log_warn("queue: reading the message: %s", strerror(errno));
		smtp7_free(d);
		smtpc_set_all(r, n, 451, "451 4.3.0 local error reading the message");
		return 0;
	}
	if (smtp7_end(d, why, sizeof(why)) < 0) {
		smtp7_free(d);
		snprintf(reply, sizeof(reply), "554 5.6.3 the message has 8-bit content, which the "
			 "receiving server does not support, and cannot be converted: %s", why);
		smtpc_set_all(r, n, 554, reply);
		return 0;
	}
	*d_r = d;
	return 1;
}

/* xtext (RFC 3461 4): '+', '=' and bytes outside 33..126 as +HH. */
static void
smtpc_xtext(const char *in, char *out, size_t outlen)
{
	size_t o = 0;

	for (const unsigned char *p = (const unsigned char *)in; *p != '\0' && o + 4 < outlen; p++) {
		if (*p < 33 || *p > 126 || *p == '+' || *p == '=')
			o += (size_t)snprintf(out + o, outlen - o, "+%02X", *p);
		else
			out[o++] = (char)*p;
	}
	out[o] = '\0';
}

static void
smtpc_set_all(struct smtpc_rcpt *r, size_t n, int code, const char *reply)
{
	for (size_t i = 0; i < n; i++) {
		r[i].code = code;
		snprintf(r[i].reply, sizeof(r[i].reply), "%s", reply);
	}
}

/* The reply as kept for a recipient: a dead connection counts as 4xx. */
static void
smtpc_set_reply(struct smtpc_rcpt *r, const struct smtpc_session *s)
{
	r->code = s->code >= 200 && s->code < 600 ? s->code : 421;
	snprintf(r->reply, sizeof(r->reply), "%s", s->reply);
}

static void
smtpc_set_all_reply(struct smtpc_rcpt *r, size_t n, const struct smtpc_session *s)
{
	for (size_t i = 0; i < n; i++)
		smtpc_set_reply(&r[i], s);
}

/* A RCPT's reply: a refusal is the recipient's answer; an acceptance
 * waits for the answer after DATA (code 0 until then). */
static void
smtpc_rcpt_reply(const struct smtpc_session *s, struct smtpc_rcpt *r, size_t *ok)
{
	smtpc_set_reply(r, s);
	if (s->code / 100 == 2) {
		r->code = 0;
		(*ok)++;
	}
}

/* A pipelined DATA the transaction cannot use (MAIL or every RCPT was
 * refused) that a server nonetheless answered with 354 gets an empty
 * message's end (RFC 2920 3.1), which the RSET that follows discards. */
static void
smtpc_data_unwanted(struct smtpc_session *s, bool data)
{
	if (data && s->code == 354)
		(void)smtpc_cmd(s, ".");
}

/* MAIL, RCPTs and the content (through d unless NULL); size is what
 * SIZE says; as smtpc_transaction. */
static int
smtpc_envelope_content(struct smtpc_session *s, const struct smtpc_message *m, struct smtp7 *d,
		       unsigned long long size, struct smtpc_rcpt *r, size_t n)
{
	char params[512] = "";
	size_t ok = 0;
	bool data = s->pipelining && !s->chunking;	/* DATA goes with the RCPTs */

	if (s->size)
		snprintf(params + strlen(params), sizeof(params) - strlen(params), " SIZE=%llu",
			 size);
	if (s->eightbit && strcasecmp(m->body, "8BITMIME") == 0)
		snprintf(params + strlen(params), sizeof(params) - strlen(params), " BODY=8BITMIME");
	if (m->smtputf8)
		snprintf(params + strlen(params), sizeof(params) - strlen(params), " SMTPUTF8");
	if (s->dsn && m->ret[0] != '\0')
		snprintf(params + strlen(params), sizeof(params) - strlen(params), " RET=%s", m->ret);
	if (s->dsn && m->envid[0] != '\0') {
		char x[3 * 100 + 1];

		smtpc_xtext(m->envid, x, sizeof(x));
		snprintf(params + strlen(params), sizeof(params) - strlen(params), " ENVID=%s", x);
	}
	/* With PIPELINING (RFC 2920) MAIL, every RCPT and DATA go in one
	 * write and the replies are read after; without, one at a time. BDAT
	 * carries content, so it waits for the RCPT replies. */
	smtpc_expect(s, "the reply to MAIL FROM", s->cfg->timeout_ms);
	smtpc_put(s, "MAIL FROM:<%s>%s", m->sender, params);
	if (!s->pipelining) {
		if (!smtpc_flush_read(s))
			return 0;
		if (s->code / 100 != 2) {
			smtpc_set_all_reply(r, n, s);
			return s->code >= 500 ? 1 : 0;
		}
	}
	for (size_t i = 0; i < n; i++) {
		bool notify = s->dsn && r[i].notify[0] != '\0';
		bool orcpt = s->dsn && r[i].orcpt[0] != '\0';

		/* ORCPT is kept xtext-encoded as received: relayed unchanged. */
		smtpc_put(s, "RCPT TO:<%s>%s%s%s%s", r[i].address, notify ? " NOTIFY=" : "",
			  notify ? r[i].notify : "", orcpt ? " ORCPT=" : "", orcpt ? r[i].orcpt : "");
		if (!s->pipelining) {
			smtpc_expect(s, "the reply to RCPT TO", s->cfg->timeout_ms);
			if (!smtpc_flush_read(s))
				return 0;
			smtpc_rcpt_reply(s, &r[i], &ok);
		}
	}
	if (data)
		smtpc_put(s, "DATA");
	if (s->pipelining) {
		int mail_code;

		if (!smtpc_flush_read(s))
			return 0;
		mail_code = s->code;
		if (mail_code / 100 != 2)
			smtpc_set_all_reply(r, n, s);
		for (size_t i = 0; i < n; i++) {
			smtpc_expect(s, "the reply to RCPT TO", s->cfg->timeout_ms);
			if (!smtpc_read_reply(s))
				return 0;
			if (mail_code / 100 == 2)
				smtpc_rcpt_reply(s, &r[i], &ok);
		}
		smtpc_expect(s, "the reply to DATA", s->cfg->data_init_timeout_ms);
		if (data && !smtpc_read_reply(s))
			return 0;
		if (mail_code / 100 != 2) {
			smtpc_data_unwanted(s, data);
			return mail_code >= 500 ? 1 : 0;
		}
	}
	if (ok == 0) {
		smtpc_data_unwanted(s, data);
		(void)smtpc_cmd(s, "RSET");
		return 1;
	}
	smtpc_content(s, m, d, data);
	for (size_t i = 0; i < n; i++) {
		if (r[i].code == 0)
			smtpc_set_reply(&r[i], s);
	}
	return 1;
}

/* A message with a line longer than SMTP allows goes through the
 * converter (smtp_7bit.h) that shortens them, 8-bit bytes kept. 1 (*d_r
 * set, or left NULL when the message's structure does not allow it: then
 * it goes as it is, and the server decides), -1 with errno. */
static int
smtpc_shorten(const struct smtpc_message *m, struct smtp7 **d_r)
{
	char why[SMTP7_REASON_MAX];
	struct smtp7 *d = smtp7_new(true);

	if (smtpc_read_message(m->fd, smtpc_feed_7bit, d, NULL) < 0) {
		smtp7_free(d);
		return -1;
	}
	if (smtp7_end(d, why, sizeof(why)) < 0) {
		log_warn("queue: a line of the message from <%s> is longer than %d octets and "
			 "cannot be shortened (%s): sent as it is", m->sender, SMTP7_LINE_LIMIT, why);
		smtp7_free(d);
		return 1;
	}
	*d_r = d;
	return 1;
}

/* The size SIZE will say, after the lines too long for SMTP were
 * shortened (through *d, made here if it is NULL). true go on; false
 * the recipients have their answer. */
static bool
smtpc_measure(const struct smtpc_message *m, struct smtp7 **d, unsigned long long *size_r,
	      struct smtpc_rcpt *r, size_t n)
{
	size_t longest;

	if (smtpc_wire_size(m, *d, size_r, &longest) < 0 ||
	    (longest > SMTP7_LINE_LIMIT && *d == NULL &&
	     (smtpc_shorten(m, d) < 0 || smtpc_wire_size(m, *d, size_r, &longest) < 0))) {
		log_warn("queue: reading the message: %s", strerror(errno));
		smtpc_set_all(r, n, 451, "451 4.3.0 local error reading the message");
		return false;
	}
	return true;
}

/* Whether the server's fixed SIZE limit takes the message: one over it
 * fails at once with 552 5.3.4 (RFC 1870 6.1: the limit is permanent,
 * and retrying would only send it again). true go on; false the
 * recipients have their answer. */
static bool
smtpc_size_fits(const struct smtpc_session *s, unsigned long long size, struct smtpc_rcpt *r,
		size_t n)
{
	char reply[SMTPC_REPLY_MAX];

	if (!s->size || s->size_limit == 0 || size <= s->size_limit)
		return true;
	snprintf(reply, sizeof(reply), "552 5.3.4 the message (%llu bytes) is larger than "
		 "%.200s[%s] accepts (SIZE %llu)", size, s->host, s->c->peer_ip, s->size_limit);
	smtpc_set_all(r, n, 552, reply);
	return false;
}

/* MAIL, RCPTs and DATA on an open session. Returns 1 if the server
 * answered for the recipients (they have codes), 0 to try another host. */
static int
smtpc_transaction(struct smtpc_session *s, const struct smtpc_message *m,
		  struct smtpc_rcpt *r, size_t n)
{
	struct smtp7 *d;
	unsigned long long size = 0;
	int ret;

	for (size_t i = 0; i < n; i++) {
		snprintf(r[i].remote_mta, sizeof(r[i].remote_mta), "%s", s->host);
		r[i].remote_dsn = s->dsn;
	}
	if (m->smtputf8 && !s->smtputf8) {
		smtpc_set_all(r, n, 553, "553 5.6.7 the message needs SMTPUTF8, which "
			      "the receiving server does not support");
		return 1;
	}
	if (!smtpc_downgrade(s, m, r, n, &d))
		return 1;
	ret = smtpc_measure(m, &d, &size, r, n) && smtpc_size_fits(s, size, r, n) ?
	      smtpc_envelope_content(s, m, d, size, r, n) : 1;
	smtp7_free(d);
	return ret;
}

static int
smtpc_auth_failed(struct smtpc_session *s, const char *fmt, ...) YJ_PRINTF(2, 3);

/* The login at the relayhost did not happen: our configuration or the
 * relayhost's needs a fix, and the mail waits (451, never a bounce). The
 * admin is told what to check. fmt starts with the enhanced status
 * code. Returns 0. */
static int
smtpc_auth_failed(struct smtpc_session *s, const char *fmt, ...)
{
	char why[SMTPC_REPLY_MAX - 16];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	log_warn("queue: relayhost %s[%s]: cannot log in as %s: %s; mail waits until this is "
		 "fixed (relayhost, relayhost_username, relayhost_password)", s->host,
		 s->c->peer_ip, s->cfg->relay_username, why);
	snprintf(s->reply, sizeof(s->reply), "451 %s", why);
	return 0;
}

/* Logs in at the relayhost with AUTH PLAIN (RFC 4954), over TLS only. */
static int
smtpc_auth(struct smtpc_session *s)
{
	const struct smtpc_config *cfg = s->cfg;
	unsigned char plain[2 * 256 + 2];
	char b64[4 * sizeof(plain) / 3 + 4];
	size_t ulen = strlen(cfg->relay_username), plen = strlen(cfg->relay_password);
	int ok;

	if (!conn_is_tls(s->c))
		return smtpc_auth_failed(s, "4.7.10 the relayhost offers no TLS (STARTTLS); "
					 "its password is never sent in clear");
	if (!s->auth_plain)
		return smtpc_auth_failed(s, "4.7.0 the relayhost does not offer AUTH PLAIN");
	if (ulen > 255 || plen > 255)
		return smtpc_auth_failed(s, "4.7.0 the relayhost login is too long");
	plain[0] = '\0';
	memcpy(plain + 1, cfg->relay_username, ulen);
	plain[1 + ulen] = '\0';
	memcpy(plain + 2 + ulen, cfg->relay_password, plen);
	EVP_EncodeBlock((unsigned char *)b64, plain, (int)(ulen + plen + 2));
	ok = smtpc_cmd(s, "AUTH PLAIN %s", b64) && s->code == 235;
	OPENSSL_cleanse(plain, sizeof(plain));
	OPENSSL_cleanse(b64, sizeof(b64));
	if (!ok && s->code != 0) {
		char reply[SMTPC_REPLY_MAX];

		memcpy(reply, s->reply, sizeof(reply));
		return smtpc_auth_failed(s, "4.7.0 the relayhost refused the login: %.400s",
					 reply);
	}
	return ok;
}

/* The server's certificate after the handshake: a problem is logged
 * (opportunistic TLS still beats plain text) and, when the policy is
 * verify, ends the attempt with a 4xx (the mail waits for a fix). 1 go
 * on, 0 with the reason in s->reply. */
static int
smtpc_tls_check(struct smtpc_session *s, enum smtpc_tls policy, const char *domain,
		const char *ip, const char *host)
{
	char why[200];

	if (conn_tls_verified(s->c, why, sizeof(why)))
		return 1;
	log_warn("queue: TLS with %s[%s] for %s: certificate not verified: %s%s", host, ip,
		 domain, why, policy == SMTPC_TLS_VERIFY ? " (policy verify: deferred)" : "");
	if (policy != SMTPC_TLS_VERIFY)
		return 1;
	snprintf(s->reply, sizeof(s->reply),
		 "421 4.7.5 the certificate of %.100s[%.64s] does not verify (%.120s); "
		 "%.100s requires verified TLS", host, ip, why, domain);
	return 0;
}

/* The servers whose TLS handshake failed lately (at level may): their
 * next sessions skip STARTTLS instead of paying for another failure
 * first. Shared by the delivery threads; a small table in memory, the
 * oldest entry making room. */
static struct {
	pthread_mutex_t lock;
	struct {
		char ip[DNS_ADDR_MAX];
		int port;
		int64_t until;		/* conn_now_ms(); 0 a free slot */
	} hosts[SMTPC_PLAIN_MAX];
} smtpc_plain = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* The slot of ip:port, or -1. Under smtpc_plain.lock. */
static int
smtpc_plain_find(const char *ip, int port)
{
	for (int i = 0; i < SMTPC_PLAIN_MAX; i++) {
		if (smtpc_plain.hosts[i].until != 0 && smtpc_plain.hosts[i].port == port &&
		    strcmp(smtpc_plain.hosts[i].ip, ip) == 0)
			return i;
	}
	return -1;
}

/* Remembers that the handshake with ip:port failed just now. */
static void
smtpc_plain_note(const char *ip, int port)
{
	int slot;

	pthread_mutex_lock(&smtpc_plain.lock);
	slot = smtpc_plain_find(ip, port);
	if (slot < 0) {		/* a free slot (0), else the one ending first */
		slot = 0;
		for (int i = 1; i < SMTPC_PLAIN_MAX; i++) {
			if (smtpc_plain.hosts[i].until < smtpc_plain.hosts[slot].until)
				slot = i;
		}
	}
	snprintf(smtpc_plain.hosts[slot].ip, sizeof(smtpc_plain.hosts[slot].ip), "%s", ip);
	smtpc_plain.hosts[slot].port = port;
	smtpc_plain.hosts[slot].until = conn_now_ms() + SMTPC_PLAIN_MS;
	pthread_mutex_unlock(&smtpc_plain.lock);
}

/* Did the handshake with ip:port fail within the last SMTPC_PLAIN_MS? */
static bool
smtpc_plain_wanted(const char *ip, int port)
{
	bool wanted = false;
	int slot;

	pthread_mutex_lock(&smtpc_plain.lock);
	slot = smtpc_plain_find(ip, port);
	if (slot >= 0 && smtpc_plain.hosts[slot].until <= conn_now_ms())
		smtpc_plain.hosts[slot].until = 0;
	else if (slot >= 0)
		wanted = true;
	pthread_mutex_unlock(&smtpc_plain.lock);
	return wanted;
}

/* May this session go on without TLS when TLS does not work out? Only
 * at level may, and never with a relayhost login (its password goes
 * over TLS only). */
static bool
smtpc_plain_allowed(const struct smtpc_config *cfg, enum smtpc_tls policy)
{
	return policy == SMTPC_TLS_MAY && cfg->relay_username[0] == '\0';
}

/* STARTTLS, the handshake and EHLO again. 1 go on (over TLS, or in plain
 * text after a refused STARTTLS where that is allowed); 0 with the
 * reason in s->reply; -1 the handshake failed where plain text is
 * allowed: try again on a new connection without STARTTLS (the old one
 * is in no state to go on). */
static int
smtpc_starttls(struct smtpc_session *s, enum smtpc_tls policy, const char *domain,
	       const char *ip, const char *host, int port)
{
	bool plain_ok = smtpc_plain_allowed(s->cfg, policy);
	struct yj_err err;

	if (!smtpc_cmd(s, "STARTTLS"))
		return 0;
	if (s->code != 220) {
		/* RFC 3207 4: the session is as it was after EHLO, and a client
		 * that only may use TLS can carry on */
		if (!plain_ok)
			return 0;
		log_info("queue: %s[%s] refused STARTTLS (%s); sending in plaintext", host, ip,
			 s->reply);
		return 1;
	}
	if (conn_tls_connect(s->c, s->cfg->tls, host, &err) < 0) {
		snprintf(s->reply, sizeof(s->reply), "421 4.7.0 TLS handshake failed: %.200s",
			 err.msg);
		if (!plain_ok) {
			log_warn("queue: TLS with %s[%s]: %s", host, ip, err.msg);
			return 0;
		}
		log_warn("queue: TLS handshake with %s[%s] failed (%s); sending in plaintext", host,
			 ip, err.msg);
		smtpc_plain_note(ip, port);
		return -1;
	}
	return smtpc_tls_check(s, policy, domain, ip, host) && smtpc_ehlo(s);
}

/* Greeting, EHLO, STARTTLS when offered (unless plain, or the server's
 * handshake failed lately and plain text is allowed), the TLS policy,
 * AUTH at a relayhost. 1 ready for MAIL; 0 with the reason in s->reply;
 * -1 as smtpc_starttls(). */
static int
smtpc_open(struct smtpc_session *s, const char *domain, const char *ip, const char *host,
	   int port, bool plain)
{
	const struct smtpc_config *cfg = s->cfg;
	enum smtpc_tls policy = smtpc_tls_policy(cfg->tls_policy, domain);
	int fd = smtpc_connect(cfg, ip, port);

	snprintf(s->host, sizeof(s->host), "%s", host);
	if (fd < 0) {
		snprintf(s->reply, sizeof(s->reply), "421 4.4.1 cannot connect to %.255s[%.64s]:%d",
			 host, ip, port);
		return 0;
	}
	if ((s->c = calloc(1, sizeof(*s->c))) == NULL)
		log_fatal("out of memory");
	conn_init(s->c, fd, cfg->timeout_ms);
	smtpc_expect(s, "the greeting", cfg->timeout_ms);
	if (!smtpc_read_reply(s) || s->code != 220 || !smtpc_ehlo(s))
		return 0;
	if (s->starttls && cfg->tls != NULL && policy != SMTPC_TLS_NONE && !plain &&
	    !(smtpc_plain_allowed(cfg, policy) && smtpc_plain_wanted(ip, port))) {
		int ret = smtpc_starttls(s, policy, domain, ip, host, port);

		if (ret <= 0)
			return ret;
	}
	if (policy >= SMTPC_TLS_ENCRYPT && !conn_is_tls(s->c)) {
		snprintf(s->reply, sizeof(s->reply),
			 "421 4.7.10 TLS is required for %.150s but %.150s[%.64s] does not offer it",
			 domain, host, ip);
		return 0;
	}
	if (cfg->relayhost[0] != '\0' && cfg->relay_username[0] != '\0' && !smtpc_auth(s))
		return 0;
	return 1;
}

/* QUIT (when the session is in order) and close. */
static void
smtpc_end(struct smtpc_session *s, bool quit)
{
	if (s->c == NULL)
		return;
	if (quit && !s->c->failed && !s->c->eof)
		(void)smtpc_cmd(s, "QUIT");
	conn_close(s->c);
	free(s->c);
	s->c = NULL;
}

static bool
smtpc_usable(const struct smtpc_session *s)
{
	return s->c != NULL && !s->c->failed && !s->c->eof && !s->c->timed_out;
}

struct smtpc_cache {
	struct smtpc_session s;
	char domain[DNS_NAME_MAX];
};

struct smtpc_cache *
smtpc_cache_new(void)
{
	struct smtpc_cache *c = calloc(1, sizeof(*c));

	if (c == NULL)
		log_fatal("out of memory");
	return c;
}

void
smtpc_cache_close(struct smtpc_cache *cache)
{
	if (cache != NULL)
		smtpc_end(&cache->s, true);
}

void
smtpc_cache_free(struct smtpc_cache *cache)
{
	smtpc_cache_close(cache);
	free(cache);
}

/* One server: open, the transaction, then keep the session in cache
 * for the next message to domain, or QUIT. 1 when the recipients have
 * their answers, 0 to try the next host (why says why). */
static int
smtpc_session_run(const struct smtpc_config *cfg, struct smtpc_cache *cache, const char *domain,
		  const char *ip, const char *host, int port, const struct smtpc_message *m,
		  struct smtpc_rcpt *r, size_t n, char *why, size_t whylen)
{
	struct smtpc_session s = { .cfg = cfg };
	int opened = smtpc_open(&s, domain, ip, host, port, false);
	int done;

	if (opened < 0) {	/* the handshake failed: again, in plain text */
		smtpc_end(&s, false);
		s = (struct smtpc_session){ .cfg = cfg };
		opened = smtpc_open(&s, domain, ip, host, port, true);
	}
	done = opened > 0 && smtpc_transaction(&s, m, r, n);

	if (!done)
		snprintf(why, whylen, "%s", s.reply[0] != '\0' ? s.reply : "421 4.4.2 no greeting");
	if (done && cache != NULL && smtpc_usable(&s)) {
		smtpc_cache_close(cache);
		cache->s = s;
		snprintf(cache->domain, sizeof(cache->domain), "%s", domain);
		return 1;
	}
	smtpc_end(&s, done);
	return done;
}

/* Sends on the cached session if it is to domain. 1 done, 0 not. */
static int
smtpc_send_cached(struct smtpc_cache *cache, const char *domain, const struct smtpc_message *m,
		  struct smtpc_rcpt *r, size_t n)
{
	int done;

	if (cache == NULL || cache->s.c == NULL)
		return 0;
	if (strcasecmp(cache->domain, domain) != 0 || !smtpc_usable(&cache->s)) {
		smtpc_cache_close(cache);
		return 0;
	}
	done = smtpc_transaction(&cache->s, m, r, n);
	if (!done || !smtpc_usable(&cache->s))
		smtpc_end(&cache->s, done);
	return done;
}

/* The addresses of host (or host itself, an address literal) in the
 * order smtp_address_preference asks for. 1, -1 temporary DNS failure
 * of every lookup made. */
static int
smtpc_addrs(const struct smtpc_config *cfg, const char *host,
	    char addrs[SMTPC_ADDR_MAX][DNS_ADDR_MAX], size_t *n_r)
{
	unsigned char bin[16];
	bool v6_first = strcmp(cfg->address_preference, "ipv6") == 0 ||
			(strcmp(cfg->address_preference, "any") == 0 && (time(NULL) & 1) != 0);
	size_t n4 = 0, n6 = 0, half = SMTPC_ADDR_MAX / 2;
	int r4, r6;

	*n_r = 0;
	if ((inet_pton(AF_INET, host, bin) == 1 || inet_pton(AF_INET6, host, bin) == 1) &&
	    strlen(host) < DNS_ADDR_MAX) {
		memcpy(addrs[0], host, strlen(host) + 1);
		*n_r = 1;
		return 1;
	}
	if (v6_first) {
		r6 = dns_aaaa(host, addrs, half, &n6);
		r4 = dns_a(host, addrs + n6, SMTPC_ADDR_MAX - n6, &n4);
	} else {
		r4 = dns_a(host, addrs, half, &n4);
		r6 = dns_aaaa(host, addrs + n4, SMTPC_ADDR_MAX - n4, &n6);
	}
	*n_r = (r4 > 0 ? n4 : 0) + (r6 > 0 ? n6 : 0);
	if (r4 <= 0 && v6_first)	/* nothing was stored behind the IPv6 ones */
		*n_r = r6 > 0 ? n6 : 0;
	if (r6 <= 0 && !v6_first)
		*n_r = r4 > 0 ? n4 : 0;
	return r4 < 0 && r6 < 0 ? -1 : 1;
}

/* Random order among MX records of equal preference (RFC 5321 5.1). */
static void
smtpc_shuffle_equal(struct dns_mx *mx, size_t n)
{
	unsigned seed = (unsigned)time(NULL) ^ (unsigned)(uintptr_t)mx;

	for (size_t i = 0; i < n;) {
		size_t j = i + 1;

		while (j < n && mx[j].preference == mx[i].preference)
			j++;
		for (size_t k = j - 1; k > i; k--) {
			size_t x = i + (size_t)rand_r(&seed) % (k - i + 1);
			struct dns_mx t = mx[k];

			mx[k] = mx[x];
			mx[x] = t;
		}
		i = j;
	}
}

/* The hosts to try, in order: the relayhost, the MX records, or the
 * domain itself (no MX: RFC 5321 5.1's implicit MX). 1, 0 null MX,
 * -1 temporary DNS failure. */
static int
smtpc_hosts(const struct smtpc_config *cfg, const char *domain, struct dns_mx *mx,
	    size_t *n_r, int *port_r)
{
	int ret;

	*port_r = cfg->port;
	if (cfg->relayhost[0] != '\0') {
		const char *h = cfg->relayhost, *colon = strrchr(h, ':');
		size_t len = colon != NULL ? (size_t)(colon - h) : strlen(h);

		if (colon != NULL)
			*port_r = atoi(colon + 1);
		if (h[0] == '[' && len >= 2) {
			h++;
			len -= 2;
		}
		snprintf(mx[0].host, sizeof(mx[0].host), "%.*s", (int)len, h);
		*n_r = 1;
		return 1;
	}
	ret = dns_mx(domain, mx, SMTPC_MX_MAX, n_r);
	if (ret < 0)
		return -1;
	if (ret == 0 || *n_r == 0) {
		snprintf(mx[0].host, sizeof(mx[0].host), "%s", domain);
		*n_r = 1;
		return 1;
	}
	if (*n_r == 1 && mx[0].host[0] == '\0')
		return 0;
	smtpc_shuffle_equal(mx, *n_r);
	return 1;
}

void
smtpc_send(const struct smtpc_config *cfg, struct smtpc_cache *cache, const char *domain,
	   const struct smtpc_message *m, struct smtpc_rcpt *r, size_t n)
{
	struct dns_mx mx[SMTPC_MX_MAX];
	char why[SMTPC_REPLY_MAX] = "451 4.4.4 no address found for any MX host";
	size_t nmx = 0;
	int port, ret;

	if (smtpc_send_cached(cache, domain, m, r, n))
		return;
	ret = smtpc_hosts(cfg, domain, mx, &nmx, &port);

	if (ret < 0) {
		smtpc_set_all(r, n, 451, "451 4.4.3 temporary DNS failure looking up the MX");
		return;
	}
	if (ret == 0) {
		smtpc_set_all(r, n, 556, "556 5.1.10 the recipient's domain accepts no mail "
			      "(null MX, RFC 7505)");
		return;
	}
	for (size_t i = 0; i < nmx; i++) {
		char addrs[SMTPC_ADDR_MAX][DNS_ADDR_MAX];
		size_t na = 0;

		if (smtpc_addrs(cfg, mx[i].host, addrs, &na) < 0) {
			snprintf(why, sizeof(why), "451 4.4.3 temporary DNS failure for %.255s",
				 mx[i].host);
			continue;
		}
		for (size_t k = 0; k < na; k++) {
			if (smtpc_session_run(cfg, cache, domain, addrs[k], mx[i].host, port, m, r,
					      n, why, sizeof(why)))
				return;
		}
	}
	smtpc_set_all(r, n, atoi(why) >= 400 ? atoi(why) : 451, why);
	for (size_t i = 0; i < n; i++) {
		if (r[i].code >= 500)	/* connection-level trouble is never final */
			r[i].code = 451;
	}
}
