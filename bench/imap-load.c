/* imap-load - bench/imap's IMAP client mix as a lean load generator.
 *
 * bench/imap builds this file with the system's cc and runs it for the
 * timed phase, so that on a small machine the servers, not the clients,
 * set the pace: all clients are state machines on one epoll loop in one
 * thread, and a response is scanned only for what the mix needs (the
 * tag, EXISTS, literal sizes; a literal's bytes are skipped).
 *
 *   imap-load --port P --start-at EPOCH --seconds S --ops N
 *             --messages N --password PW --out FILE
 *             [--deliver tcp:PORT|unix:PATH --message FILE]
 *             [--client USER:SEED]... [--phone USER]... [--dry-run]
 *             [--rate R]
 *
 * A client runs sessions until --seconds after --start-at (wall clock,
 * so that several generators start together): connect, LOGIN, SELECT
 * INBOX, --ops operations, LOGOUT. A session started before the end
 * runs to its LOGOUT. Each client draws its operations from Python's
 * Mersenne Twister seeded with SEED, call for call as bench/imap's
 * Python clients do (random.Random(SEED): choices() for the operation,
 * randint() and choice() for its arguments), so both generators send
 * the same commands in the same order:
 *
 *   fetch-headers 35  FETCH n:n+49 (UID FLAGS ENVELOPE
 *                     BODY.PEEK[HEADER.FIELDS (From To Subject Date Message-ID)])
 *   fetch-body    25  FETCH n BODY.PEEK[]
 *   store         25  STORE n:n+4 +FLAGS.SILENT or -FLAGS.SILENT (\Flagged)
 *   search        15  SEARCH UNSEEN, FROM "Sender 1" or FLAGGED
 *
 * Without --rate a client is a closed loop: it sends its next command
 * as soon as it has the answer, so a faster server gets more load.
 * With --rate R each client sends the mix's operations (not LOGIN,
 * SELECT or LOGOUT, which still go as soon as the previous answer
 * comes) on a fixed schedule, R per second: the k-th at T + k/R, where
 * T is when its first SELECT was answered plus a phase (client i of n
 * starts i/n of an interval later, so the clients do not send in step).
 * An operation is sent at its time, or at once if the previous answer
 * came later than that, and its latency is measured from its scheduled
 * time, not from when it was sent: the queueing a slow server causes
 * (a late answer delays the next commands) counts in its latencies
 * instead of being hidden by fewer commands ("coordinated omission").
 * The schedule is not reset by later sessions: operations that fell
 * due during a session's LOGIN and SELECT are sent at once after it,
 * their latency measured from their scheduled time too. A user whose
 * client reconnects waits for the login before what they asked for:
 * timed from the SELECT's answer instead, a server slow to log in would
 * hide its backlog (the operations it was offered but could not take
 * meanwhile). Waits are the epoll loop's timeout; no thread sleeps or
 * spins.
 *
 * A phone logs in, selects INBOX and, until the end, goes into IDLE,
 * delivers --message to itself (SMTP to a port, LMTP to a UNIX socket)
 * and waits for the EXISTS; "idle" is the time from the delivery's last
 * reply to the EXISTS. Without --rate it delivers again as soon as it was
 * woken; with --rate once a second, on a schedule of its own, so that
 * both servers take the same deliveries at the same offered load.
 *
 * Every tagged reply must be OK (IDLE's may be anything) and every
 * delivery reply 2xx or 3xx; anything else, a closed connection, a line
 * longer than LINE_MAX or 60 s without progress stops the generator
 * with a message on stderr and exit status 1.
 *
 * FILE gets "wall SECONDS", "cpu SECONDS" (this process's user and
 * system time over the timed phase) and one "OP SECONDS" line per
 * operation: login, select, fetch-headers, fetch-body, store, search,
 * idle. --dry-run prints each client's first session's commands
 * (SELECT finding --messages messages) and connects nowhere.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_LEN (64 * 1024)	/* longest response line read */
#define IN_CAP (LINE_MAX_LEN + 64 * 1024)
#define HEAD_MAX 512			/* kept of a response's first line */
#define CMD_MAX 512
#define LITERAL_MAX (1L << 30)
#define IO_TIMEOUT_NS (60LL * 1000000000LL)
#define MESSAGE_MAX (16 * 1024 * 1024)
#define SAMPLES_MAX (50L * 1000 * 1000)
#define MIX_FIELDS "(From To Subject Date Message-ID)"

enum op {
	OP_LOGIN, OP_SELECT, OP_FETCH_HEADERS, OP_FETCH_BODY, OP_STORE,
	OP_SEARCH, OP_IDLE, OP_COUNT
};

static const char *const op_names[OP_COUNT] = {
	"login", "select", "fetch-headers", "fetch-body", "store", "search",
	"idle",
};

/* ------------------------------------------------------------ errors */

static void
die(const char *fmt, ...)
{
	va_list ap;

	fputs("imap-load: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);

	if (p == NULL)
		die("out of memory");
	return p;
}

static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* ------------------------------------------- Python's random.Random */

/* MT19937 as CPython's random module uses it: an int seed goes through
 * init_by_array with its 32-bit words, random() takes 53 bits from two
 * outputs, getrandbits(k <= 32) the top k bits of one. */
#define MT_N 624
#define MT_M 397

struct mt {
	uint32_t s[MT_N];
	int i;
};

static void
mt_init(struct mt *m, uint32_t seed)
{
	m->s[0] = seed;
	for (int i = 1; i < MT_N; i++)
		m->s[i] = 1812433253U * (m->s[i - 1] ^ (m->s[i - 1] >> 30)) +
		    (uint32_t)i;
	m->i = MT_N;
}

static void
mt_seed(struct mt *m, uint32_t key)
{
	int i = 1;

	/* init_by_array with a key of one word (seeds below 2^32) */
	mt_init(m, 19650218U);
	for (int k = MT_N; k > 0; k--) {
		m->s[i] = (m->s[i] ^ ((m->s[i - 1] ^ (m->s[i - 1] >> 30)) *
		    1664525U)) + key;
		if (++i >= MT_N) {
			m->s[0] = m->s[MT_N - 1];
			i = 1;
		}
	}
	for (int k = MT_N - 1; k > 0; k--) {
		m->s[i] = (m->s[i] ^ ((m->s[i - 1] ^ (m->s[i - 1] >> 30)) *
		    1566083941U)) - (uint32_t)i;
		if (++i >= MT_N) {
			m->s[0] = m->s[MT_N - 1];
			i = 1;
		}
	}
	m->s[0] = 0x80000000U;
	m->i = MT_N;
}

static void
mt_refill(struct mt *m)
{
	for (int k = 0; k < MT_N; k++) {
		uint32_t y = (m->s[k] & 0x80000000U) |
		    (m->s[(k + 1) % MT_N] & 0x7fffffffU);

		m->s[k] = m->s[(k + MT_M) % MT_N] ^ (y >> 1) ^
		    ((y & 1) ? 0x9908b0dfU : 0);
	}
	m->i = 0;
}

static uint32_t
mt_next(struct mt *m)
{
	uint32_t y;

	if (m->i >= MT_N)
		mt_refill(m);
	y = m->s[m->i++];
	y ^= y >> 11;
	y ^= (y << 7) & 0x9d2c5680U;
	y ^= (y << 15) & 0xefc60000U;
	y ^= y >> 18;
	return y;
}

/* random.random(): a float in [0, 1) */
static double
py_random(struct mt *m)
{
	uint32_t a = mt_next(m) >> 5, b = mt_next(m) >> 6;

	return (a * 67108864.0 + b) * (1.0 / 9007199254740992.0);
}

/* random._randbelow(n), n > 0: getrandbits(n.bit_length()) until < n */
static uint32_t
py_randbelow(struct mt *m, uint32_t n)
{
	int k = 0;
	uint32_t r;

	while (k < 32 && (n >> k) != 0)
		k++;
	do
		r = mt_next(m) >> (32 - k);
	while (r >= n);
	return r;
}

/* random.randint(a, b) */
static uint32_t
py_randint(struct mt *m, uint32_t a, uint32_t b)
{
	return a + py_randbelow(m, b - a + 1);
}

/* random.choices(ops, weights)[0] over the mix's cumulative weights */
static enum op
py_choose_op(struct mt *m)
{
	static const int cum[] = { 35, 60, 85, 100 };
	static const enum op ops[] = {
		OP_FETCH_HEADERS, OP_FETCH_BODY, OP_STORE, OP_SEARCH
	};
	double x = py_random(m) * 100.0;
	int i = 0;

	/* bisect_right(cum, x, 0, 3) */
	while (i < 3 && !(x < cum[i]))
		i++;
	return ops[i];
}

/* ------------------------------------------------------------ samples */

struct sample {
	int64_t ns;
	enum op op;
};

static struct sample *samples;
static size_t nsamples, samples_cap;

static void
sample_add(enum op op, int64_t ns)
{
	if (nsamples == samples_cap) {
		size_t cap = samples_cap ? samples_cap * 2 : 65536;
		struct sample *p;

		if (cap > SAMPLES_MAX)
			die("more than %ld samples", SAMPLES_MAX);
		p = realloc(samples, cap * sizeof(*p));
		if (p == NULL)
			die("out of memory");
		samples = p;
		samples_cap = cap;
	}
	samples[nsamples].op = op;
	samples[nsamples].ns = ns;
	nsamples++;
}

/* ------------------------------------------------------- connections */

struct client;

/* One socket with its input buffer and what is left to send. A reply
 * is a response (IMAP: a line and any literals it announces, up to a
 * line without one) or a final reply line (SMTP/LMTP). */
struct conn {
	struct client *cl;
	bool imap;		/* else SMTP/LMTP replies */
	bool connecting;
	int fd;
	unsigned gen;		/* counts closes, so a parse stops at one */
	char *in;		/* IN_CAP bytes */
	size_t len;
	size_t skip;		/* literal bytes still to pass over */
	bool in_resp;		/* after a literal, inside one response */
	char head[HEAD_MAX];	/* first line of the current response */
	const char *out;
	size_t out_len;
	char cmd[CMD_MAX];
	int64_t deadline;	/* no progress by then: fail */
};

enum step {
	ST_GREETING, ST_LOGIN, ST_SELECT, ST_OP, ST_LOGOUT,
	ST_IDLE_CONT, ST_DELIVER, ST_IDLE_EXISTS, ST_IDLE_DONE, ST_WAIT,
	ST_PHONE_WAIT,
	ST_END
};

struct client {
	const char *user;
	bool phone;
	struct mt rng;
	struct conn imap;
	struct conn smtp;	/* a phone's delivery */
	enum step step;
	unsigned tag;
	char tag_str[16];
	size_t tag_len;
	uint32_t exists;
	int ops_left;
	enum op op;		/* the timed command in flight */
	int64_t t0;
	int64_t due;		/* --rate: the next operation's time, or 0 */
	int64_t phase;		/* --rate: its schedule's offset */
	int smtp_step;
	bool exists_seen;	/* an EXISTS came during the delivery */
};

static struct {
	int port;
	double start_at;
	double seconds;
	int ops;
	uint32_t messages;
	const char *password;
	const char *deliver;
	char *message;		/* with the ending ".\r\n" */
	size_t message_len;
	const char *out;
	bool dry_run;
	double rate;		/* operations per second per client, or 0 */
} opt = { .ops = 100, .messages = 300 };

static int ep = -1;
static int64_t end_ns;		/* no session starts after this */
static int active;		/* clients not yet at ST_END */
static int64_t interval_ns;	/* --rate: 1/R */
/* --rate: a phone delivers to itself once a second. */
#define PHONE_INTERVAL_NS 1000000000LL

static void reply_done(struct conn *c, const char *line);
static void imap_cmd(struct client *cl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
conn_watch(struct conn *c, bool out)
{
	struct epoll_event ev = { .events = EPOLLIN | (out ? EPOLLOUT : 0) };

	ev.data.ptr = c;
	if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
		die("epoll_ctl: %s", strerror(errno));
}

static void
conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->gen++;
	c->len = c->skip = 0;
	c->in_resp = false;
	c->out_len = 0;
}

/* Connects without blocking to 127.0.0.1:port, or to a UNIX socket. */
static void
conn_open(struct conn *c, int port, const char *path)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT };
	int one = 1, r;

	c->fd = socket(path ? AF_UNIX : AF_INET,
	    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		die("socket: %s", strerror(errno));
	if (path) {
		if (strlen(path) >= sizeof(sun.sun_path))
			die("socket path too long: %s", path);
		memcpy(sun.sun_path, path, strlen(path) + 1);
		r = connect(c->fd, (struct sockaddr *)&sun, sizeof(sun));
	} else {
		/* as asyncio's streams, which the Python clients use */
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		sin.sin_port = htons((uint16_t)port);
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		r = connect(c->fd, (struct sockaddr *)&sin, sizeof(sin));
	}
	/* (a UNIX socket's EAGAIN, a full backlog, is a failure too) */
	if (r < 0 && errno != EINPROGRESS)
		die("%s: connect: %s", c->cl->user, strerror(errno));
	c->connecting = true;
	c->deadline = now_ns() + IO_TIMEOUT_NS;
	ev.data.ptr = c;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
		die("epoll_ctl: %s", strerror(errno));
}

static void
conn_flush(struct conn *c)
{
	while (c->out_len > 0) {
		ssize_t n = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			conn_watch(c, true);
			return;
		}
		if (n < 0)
			die("%s: send: %s", c->cl->user, strerror(errno));
		c->out += n;
		c->out_len -= (size_t)n;
	}
}

static void
conn_send(struct conn *c, const char *data, size_t len)
{
	if (opt.dry_run) {
		fwrite(data, 1, len, stdout);
		return;
	}
	c->out = data;
	c->out_len = len;
	c->deadline = now_ns() + IO_TIMEOUT_NS;
	if (!c->connecting)
		conn_flush(c);
}

/* The size of the literal that ends the line ("{n}\r\n", "{n+}\r\n"),
 * or -1. */
static long
literal_size(const char *line, size_t len)
{
	size_t i;
	long n = 0, scale = 1;

	if (len < 5 || memcmp(line + len - 3, "}\r\n", 3) != 0)
		return -1;
	i = len - 4;
	if (line[i] == '+')
		i--;
	if (line[i] < '0' || line[i] > '9')
		return -1;
	for (; i > 0 && line[i] >= '0' && line[i] <= '9'; i--) {
		if (scale > LITERAL_MAX)
			return LITERAL_MAX + 1;
		n += (line[i] - '0') * scale;
		scale *= 10;
	}
	return line[i] == '{' ? n : -1;
}

static void
imap_line(struct conn *c, const char *line, size_t len)
{
	long lit = literal_size(line, len);

	if (!c->in_resp) {
		size_t n = len < HEAD_MAX ? len : HEAD_MAX - 1;

		memcpy(c->head, line, n);
		c->head[n] = '\0';
	}
	if (lit > LITERAL_MAX)
		die("%s: literal over %ld bytes: %s", c->cl->user,
		    LITERAL_MAX, c->head);
	if (lit >= 0) {
		c->skip = (size_t)lit;
		c->in_resp = true;
		return;
	}
	c->in_resp = false;
	reply_done(c, c->head);
}

static void
smtp_line(struct conn *c, const char *line, size_t len)
{
	size_t n = len < HEAD_MAX ? len : HEAD_MAX - 1;

	if (len >= 4 && line[3] == '-')
		return;
	memcpy(c->head, line, n);
	c->head[n] = '\0';
	reply_done(c, c->head);
}

/* Hands every complete line in the buffer to its protocol; stops when a
 * handler closed the connection. */
static void
conn_parse(struct conn *c)
{
	unsigned gen = c->gen;
	size_t pos = 0;

	while (pos < c->len && c->gen == gen) {
		char *line = c->in + pos, *nl;
		size_t n;

		if (c->skip > 0) {
			n = c->len - pos < c->skip ? c->len - pos : c->skip;
			pos += n;
			c->skip -= n;
			continue;
		}
		nl = memchr(line, '\n', c->len - pos);
		if (nl == NULL)
			break;
		n = (size_t)(nl - line) + 1;
		if (n > LINE_MAX_LEN)
			die("%s: response line over %d bytes", c->cl->user,
			    LINE_MAX_LEN);
		pos += n;
		if (c->imap)
			imap_line(c, line, n);
		else
			smtp_line(c, line, n);
	}
	if (c->gen != gen)
		return;
	memmove(c->in, c->in + pos, c->len - pos);
	c->len -= pos;
	if (c->skip == 0 && c->len > LINE_MAX_LEN)
		die("%s: response line over %d bytes", c->cl->user,
		    LINE_MAX_LEN);
}

static void
conn_read(struct conn *c)
{
	ssize_t n;

	/* a literal's bytes are not kept: conn_parse drops them from the
	 * buffer as they come */
	n = recv(c->fd, c->in + c->len, IN_CAP - c->len, 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n < 0)
		die("%s: recv: %s", c->cl->user, strerror(errno));
	if (n == 0)
		die("%s: the %s server closed the connection (last: %s)",
		    c->cl->user, c->imap ? "IMAP" : "delivery", c->head);
	c->len += (size_t)n;
	c->deadline = now_ns() + IO_TIMEOUT_NS;
	conn_parse(c);
}

static void
conn_event(struct conn *c, uint32_t events)
{
	if (c->connecting && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
		int err = 0;
		socklen_t elen = sizeof(err);

		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &elen);
		if (err != 0)
			die("%s: connect: %s", c->cl->user, strerror(err));
		c->connecting = false;
		conn_watch(c, c->out_len > 0);
		conn_flush(c);
		return;
	}
	if ((events & EPOLLOUT) && c->out_len > 0) {
		conn_flush(c);
		if (c->out_len == 0)
			conn_watch(c, false);
	}
	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
		conn_read(c);
}

/* ------------------------------------------------------------ clients */

static void
imap_cmd(struct client *cl, const char *fmt, ...)
{
	struct conn *c = &cl->imap;
	va_list ap;
	int n;

	cl->tag++;
	cl->tag_len = (size_t)snprintf(cl->tag_str, sizeof(cl->tag_str),
	    "a%u ", cl->tag);
	memcpy(c->cmd, cl->tag_str, cl->tag_len);
	va_start(ap, fmt);
	n = vsnprintf(c->cmd + cl->tag_len, CMD_MAX - cl->tag_len - 2, fmt,
	    ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= CMD_MAX - cl->tag_len - 2)
		die("command too long");
	n += (int)cl->tag_len;
	memcpy(c->cmd + n, "\r\n", 3);	/* with the NUL */
	cl->t0 = now_ns();
	conn_send(c, c->cmd, (size_t)n + 2);
}

/* The next operation, drawn as bench/imap's Python client draws it;
 * with --rate its latency counts from its scheduled time. */
static void
send_op(struct client *cl)
{
	static const char *const crit[] = {
		"UNSEEN", "FROM \"Sender 1\"", "FLAGGED"
	};
	struct mt *m = &cl->rng;
	uint32_t first, span;

	cl->ops_left--;
	if (cl->exists == 0)
		die("%s: SELECT found no messages", cl->user);
	cl->step = ST_OP;
	cl->op = py_choose_op(m);
	switch (cl->op) {
	case OP_FETCH_HEADERS:
		span = cl->exists > 50 ? cl->exists - 49 : 1;
		first = py_randint(m, 1, span);
		imap_cmd(cl, "FETCH %u:%u (UID FLAGS "
		    "ENVELOPE BODY.PEEK[HEADER.FIELDS " MIX_FIELDS "])",
		    first, first + 49);
		break;
	case OP_FETCH_BODY:
		imap_cmd(cl, "FETCH %u BODY.PEEK[]",
		    py_randint(m, 1, cl->exists));
		break;
	case OP_STORE:
		span = cl->exists > 5 ? cl->exists - 4 : 1;
		first = py_randint(m, 1, span);
		imap_cmd(cl, "STORE %u:%u %cFLAGS.SILENT (\\Flagged)",
		    first, first + 4, py_randbelow(m, 2) ? '-' : '+');
		break;
	default:
		imap_cmd(cl, "SEARCH %s",
		    crit[py_randbelow(m, 3)]);
		break;
	}
	if (cl->due > 0) {
		cl->t0 = cl->due;
		cl->due += interval_ns;
	}
}

/* LOGOUT after the session's operations; else the next operation, now
 * or (--rate, early) at its time, when run() finds it due. */
static void
next_op(struct client *cl)
{
	if (cl->ops_left == 0) {
		cl->step = ST_LOGOUT;
		imap_cmd(cl, "LOGOUT");
		return;
	}
	if (cl->due > 0 && now_ns() < cl->due) {
		cl->step = ST_WAIT;
		cl->imap.deadline = cl->due + IO_TIMEOUT_NS;
		return;
	}
	send_op(cl);
}

static void
session_start(struct client *cl)
{
	cl->tag = 0;
	cl->exists = opt.messages;
	cl->step = ST_GREETING;
	conn_open(&cl->imap, opt.port, NULL);
}

static void
client_end(struct client *cl)
{
	cl->step = ST_END;
	active--;
}

static void
idle_next(struct client *cl)
{
	if (now_ns() >= end_ns) {
		cl->step = ST_LOGOUT;
		imap_cmd(cl, "LOGOUT");
		return;
	}
	cl->step = ST_IDLE_CONT;
	imap_cmd(cl, "IDLE");
}

static void
idle_woken(struct client *cl, int64_t t)
{
	sample_add(OP_IDLE, t - cl->t0);
	cl->step = ST_IDLE_DONE;
	conn_send(&cl->imap, "DONE\r\n", 6);
}

static void
deliver_start(struct client *cl)
{
	const char *d = opt.deliver;

	cl->exists_seen = false;
	cl->smtp_step = 0;
	cl->step = ST_DELIVER;
	if (strncmp(d, "unix:", 5) == 0)
		conn_open(&cl->smtp, 0, d + 5);
	else
		conn_open(&cl->smtp, atoi(d + 4), NULL);
}

/* A phone in IDLE delivers now, or with --rate at its time (one
 * delivery per PHONE_INTERVAL_NS), when run() finds it due: a server
 * that wakes its phones sooner is then not given more deliveries. */
static void
phone_deliver(struct client *cl)
{
	if (opt.rate > 0) {
		int64_t t = now_ns();

		if (cl->due == 0)
			cl->due = t + cl->phase;
		if (t < cl->due) {
			cl->step = ST_PHONE_WAIT;
			cl->imap.deadline = cl->due + IO_TIMEOUT_NS;
			return;
		}
		cl->due += PHONE_INTERVAL_NS;
	}
	deliver_start(cl);
}

/* One delivery reply: the next command, or the end of the delivery. */
static void
smtp_reply(struct client *cl, const char *line)
{
	struct conn *c = &cl->smtp;
	bool lmtp = strncmp(opt.deliver, "unix:", 5) == 0;
	int n = 0;

	if (line[0] != '2' && line[0] != '3')
		die("%s: delivery: %s", cl->user, line);
	switch (cl->smtp_step++) {
	case 0:
		n = snprintf(c->cmd, CMD_MAX, "%s client.bench.test\r\n",
		    lmtp ? "LHLO" : "EHLO");
		break;
	case 1:
		n = snprintf(c->cmd, CMD_MAX,
		    "MAIL FROM:<sender@client.bench.test>\r\n");
		break;
	case 2:
		n = snprintf(c->cmd, CMD_MAX, "RCPT TO:<%s>\r\n", cl->user);
		break;
	case 3:
		n = snprintf(c->cmd, CMD_MAX, "DATA\r\n");
		break;
	case 4:
		conn_send(c, opt.message, opt.message_len);
		return;
	case 5:
		n = snprintf(c->cmd, CMD_MAX, "QUIT\r\n");
		break;
	default:
		conn_close(c);
		cl->t0 = now_ns();
		cl->imap.deadline = cl->t0 + IO_TIMEOUT_NS;
		if (cl->exists_seen)
			idle_woken(cl, now_ns());
		else
			cl->step = ST_IDLE_EXISTS;
		return;
	}
	if (n < 0 || n >= CMD_MAX)
		die("%s: delivery command too long", cl->user);
	conn_send(c, c->cmd, (size_t)n);
}

static void
imap_untagged(struct client *cl, const char *line)
{
	unsigned long n;
	char *end;

	switch (cl->step) {
	case ST_SELECT:
		if (strncmp(line, "* ", 2) != 0)
			break;
		n = strtoul(line + 2, &end, 10);
		if (end != line + 2 && strncmp(end, " EXISTS", 7) == 0 &&
		    n <= UINT32_MAX)
			cl->exists = (uint32_t)n;
		break;
	case ST_IDLE_CONT:
		if (line[0] == '+')
			phone_deliver(cl);
		break;
	case ST_DELIVER:
		if (strstr(line, "EXISTS"))
			cl->exists_seen = true;
		break;
	case ST_IDLE_EXISTS:
		if (strstr(line, "EXISTS"))
			idle_woken(cl, now_ns());
		break;
	default:
		break;
	}
}

static void
imap_tagged(struct client *cl, const char *line)
{
	int64_t t = now_ns();

	if (cl->step != ST_IDLE_DONE &&
	    strncmp(line + cl->tag_len, "OK", 2) != 0)
		die("%s: %.*s: %s", cl->user,
		    (int)strcspn(cl->imap.cmd, "\r"), cl->imap.cmd, line);
	switch (cl->step) {
	case ST_LOGIN:
		if (!cl->phone)
			sample_add(OP_LOGIN, t - cl->t0);
		cl->step = ST_SELECT;
		imap_cmd(cl, "SELECT INBOX");
		break;
	case ST_SELECT:
		if (cl->phone) {
			idle_next(cl);
			break;
		}
		sample_add(OP_SELECT, t - cl->t0);
		cl->ops_left = opt.ops;
		if (opt.rate > 0 && cl->due == 0)
			cl->due = t + cl->phase;
		next_op(cl);
		break;
	case ST_OP:
		sample_add(cl->op, t - cl->t0);
		next_op(cl);
		break;
	case ST_IDLE_DONE:
		idle_next(cl);
		break;
	case ST_LOGOUT:
		conn_close(&cl->imap);
		if (!cl->phone && now_ns() < end_ns)
			session_start(cl);
		else
			client_end(cl);
		break;
	default:
		die("%s: unexpected %s", cl->user, line);
	}
}

static void
imap_reply(struct client *cl, const char *line)
{
	if (cl->step == ST_GREETING) {
		if (strncmp(line, "* OK", 4) != 0)
			die("%s: greeting: %s", cl->user, line);
		cl->step = ST_LOGIN;
		imap_cmd(cl, "LOGIN \"%s\" \"%s\"", cl->user, opt.password);
	} else if (strncmp(line, cl->tag_str, cl->tag_len) == 0) {
		imap_tagged(cl, line);
	} else {
		imap_untagged(cl, line);
	}
}

static void
reply_done(struct conn *c, const char *line)
{
	if (c->imap)
		imap_reply(c->cl, line);
	else
		smtp_reply(c->cl, line);
}

/* --------------------------------------------------------------- run */

static void
check_timeouts(struct client *cls, int n, int64_t t)
{
	for (int i = 0; i < n; i++) {
		struct conn *cs[2] = { &cls[i].imap, &cls[i].smtp };

		for (int k = 0; k < 2; k++)
			if (cs[k]->fd >= 0 && t > cs[k]->deadline)
				die("%s: no answer from the %s server in %lld s "
				    "(last: %s)", cls[i].user,
				    cs[k]->imap ? "IMAP" : "delivery",
				    IO_TIMEOUT_NS / 1000000000LL, cs[k]->head);
	}
}

static double
wall_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double
cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static void
wait_until(double when)
{
	for (double left; (left = when - wall_now()) > 0;) {
		struct timespec ts = {
			.tv_sec = (time_t)left,
			.tv_nsec = (long)((left - (double)(time_t)left) * 1e9),
		};

		nanosleep(&ts, NULL);
	}
}

/* --rate: sends every operation now due; returns the earliest time
 * still to come (INT64_MAX: none). */
static int64_t
send_due(struct client *cls, int n, int64_t t)
{
	int64_t next = INT64_MAX;

	for (int i = 0; i < n; i++) {
		if (cls[i].step != ST_WAIT && cls[i].step != ST_PHONE_WAIT)
			continue;
		if (cls[i].due > t) {
			if (cls[i].due < next)
				next = cls[i].due;
		} else if (cls[i].step == ST_WAIT) {
			send_op(&cls[i]);
		} else {
			cls[i].due += PHONE_INTERVAL_NS;
			deliver_start(&cls[i]);
		}
	}
	return next;
}

/* epoll_wait with a timeout in nanoseconds: a millisecond's rounding
 * would make every scheduled operation up to 1 ms late. */
static int
wait_events(struct epoll_event *evs, int max, int64_t timeout)
{
	static bool no_pwait2;
	struct timespec ts = {
		.tv_sec = (time_t)(timeout / 1000000000LL),
		.tv_nsec = (long)(timeout % 1000000000LL),
	};
	int k;

	if (!no_pwait2) {
		k = epoll_pwait2(ep, evs, max, &ts, NULL);
		if (k >= 0 || errno != ENOSYS)
			return k;
		no_pwait2 = true;
	}
	return epoll_wait(ep, evs, max, (int)((timeout + 999999) / 1000000));
}

static void
run(struct client *cls, int n, double *wall, double *cpu)
{
	struct epoll_event evs[128];
	int64_t t0, last_check;
	double c0;

	wait_until(opt.start_at);
	t0 = last_check = now_ns();
	c0 = cpu_seconds();
	end_ns = t0 + (int64_t)((opt.start_at + opt.seconds - wall_now()) *
	    1e9);
	active = n;
	for (int i = 0; i < n; i++)
		session_start(&cls[i]);
	while (active > 0) {
		int64_t t = now_ns(), next = INT64_MAX, timeout = 1000000000LL;
		int k;

		if (opt.rate > 0)
			next = send_due(cls, n, t);
		if (next - t < timeout)
			timeout = next - t;
		k = wait_events(evs, 128, timeout);

		if (k < 0 && errno != EINTR)
			die("epoll_wait: %s", strerror(errno));
		for (int i = 0; i < k; i++)
			conn_event(evs[i].data.ptr, evs[i].events);
		t = now_ns();
		if (t - last_check >= 1000000000LL) {
			check_timeouts(cls, n, t);
			last_check = t;
		}
	}
	*wall = (double)(now_ns() - t0) / 1e9;
	*cpu = cpu_seconds() - c0;
}

static void
write_results(double wall, double cpu)
{
	FILE *f = fopen(opt.out, "w");

	if (f == NULL)
		die("%s: %s", opt.out, strerror(errno));
	fprintf(f, "wall %.6f\ncpu %.6f\n", wall, cpu);
	for (size_t i = 0; i < nsamples; i++)
		fprintf(f, "%s %.9f\n", op_names[samples[i].op],
		    (double)samples[i].ns / 1e9);
	if (fclose(f) != 0)
		die("%s: %s", opt.out, strerror(errno));
}

/* Prints each client's first session's commands instead of sending. */
static void
dry_run(struct client *cls, int n)
{
	for (int i = 0; i < n; i++) {
		struct client *cl = &cls[i];

		if (cl->phone)
			continue;
		printf("# %s\n", cl->user);
		cl->tag = 0;
		cl->exists = opt.messages;
		imap_cmd(cl, "LOGIN \"%s\" \"%s\"", cl->user, opt.password);
		imap_cmd(cl, "SELECT INBOX");
		cl->ops_left = opt.ops;
		cl->step = ST_OP;
		while (cl->step != ST_LOGOUT)
			next_op(cl);
	}
}

/* ------------------------------------------------------------ set-up */

static void
read_message(const char *path)
{
	FILE *f = fopen(path, "rb");
	size_t n;

	if (f == NULL)
		die("%s: %s", path, strerror(errno));
	opt.message = xcalloc(1, MESSAGE_MAX + 3);
	n = fread(opt.message, 1, MESSAGE_MAX + 1, f);
	fclose(f);
	if (n > MESSAGE_MAX)
		die("%s: over %d bytes", path, MESSAGE_MAX);
	if (n < 2 || memcmp(opt.message + n - 2, "\r\n", 2) != 0)
		die("%s: must end with CRLF", path);
	memcpy(opt.message + n, ".\r\n", 3);
	opt.message_len = n + 3;
}

static void
client_init(struct client *cl, const char *user, bool phone,
    uint32_t seed)
{
	cl->user = user;
	cl->phone = phone;
	mt_seed(&cl->rng, seed);
	cl->imap = (struct conn){ .cl = cl, .imap = true, .fd = -1 };
	cl->smtp = (struct conn){ .cl = cl, .imap = false, .fd = -1 };
	cl->imap.in = xcalloc(1, IN_CAP);
	if (phone)
		cl->smtp.in = xcalloc(1, IN_CAP);
}

/* USER:SEED, the seed below 2^32 (one word of Python's seeding) */
static void
add_client(struct client *cls, int *n, char *spec, bool phone)
{
	unsigned long seed = 0;
	char *colon = phone ? NULL : strrchr(spec, ':'), *end;

	if (!phone) {
		if (colon == NULL)
			die("--client USER:SEED, not %s", spec);
		*colon = '\0';
		errno = 0;
		seed = strtoul(colon + 1, &end, 10);
		if (errno || *end || end == colon + 1 || seed > UINT32_MAX)
			die("--client %s: bad seed", spec);
	}
	client_init(&cls[(*n)++], spec, phone, (uint32_t)seed);
}

static long
num_arg(const char *name, const char *s, long lo, long hi)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < lo || v > hi)
		die("--%s: a number from %ld to %ld, not %s", name, lo, hi, s);
	return v;
}

static double
rate_arg(const char *s)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || end == s || !(v >= 0.001 && v <= 1e6))
		die("--rate: operations per second from 0.001 to 1e6, "
		    "not %s", s);
	return v;
}

/* --rate: each client's interval, and its schedule's phase within one,
 * spread evenly over the clients; the phones' likewise over
 * PHONE_INTERVAL_NS. */
static void
set_schedules(struct client *cls, int n)
{
	int clients = 0, k = 0, phones = 0, j = 0;

	if (opt.rate <= 0)
		return;
	interval_ns = (int64_t)(1e9 / opt.rate);
	if (interval_ns < 1)
		interval_ns = 1;
	for (int i = 0; i < n; i++)
		clients += !cls[i].phone;
	phones = n - clients;
	for (int i = 0; i < n; i++)
		if (!cls[i].phone)
			cls[i].phase = interval_ns * k++ / clients;
		else
			cls[i].phase = PHONE_INTERVAL_NS * j++ / phones;
}

static int
parse_args(int argc, char **argv, struct client *cls)
{
	static const struct option longs[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "start-at", required_argument, NULL, 'a' },
		{ "seconds", required_argument, NULL, 's' },
		{ "ops", required_argument, NULL, 'o' },
		{ "messages", required_argument, NULL, 'm' },
		{ "password", required_argument, NULL, 'w' },
		{ "deliver", required_argument, NULL, 'd' },
		{ "message", required_argument, NULL, 'M' },
		{ "out", required_argument, NULL, 'O' },
		{ "client", required_argument, NULL, 'c' },
		{ "phone", required_argument, NULL, 'P' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "rate", required_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	int n = 0, ch;

	while ((ch = getopt_long(argc, argv, "", longs, NULL)) != -1) {
		switch (ch) {
		case 'p': opt.port = (int)num_arg("port", optarg, 1, 65535);
			break;
		case 'a': opt.start_at = strtod(optarg, NULL); break;
		case 's': opt.seconds = strtod(optarg, NULL); break;
		case 'o': opt.ops = (int)num_arg("ops", optarg, 0, 1000000);
			break;
		case 'm': opt.messages = (uint32_t)num_arg("messages", optarg,
			    1, 100000000);
			break;
		case 'w': opt.password = optarg; break;
		case 'd': opt.deliver = optarg; break;
		case 'M': read_message(optarg); break;
		case 'O': opt.out = optarg; break;
		case 'c': add_client(cls, &n, optarg, false); break;
		case 'P': add_client(cls, &n, optarg, true); break;
		case 'n': opt.dry_run = true; break;
		case 'r': opt.rate = rate_arg(optarg); break;
		default: die("see the comment at the top of imap-load.c");
		}
	}
	if (optind != argc || n == 0)
		die("no clients, or stray arguments");
	return n;
}

static void
check_args(struct client *cls, int n)
{
	bool phones = false;

	for (int i = 0; i < n; i++)
		phones |= cls[i].phone;
	if (opt.password == NULL || strpbrk(opt.password, "\"\\\r\n"))
		die("--password: needed, without quotes or line ends");
	if (opt.dry_run)
		return;
	if (opt.port == 0 || opt.out == NULL || opt.seconds <= 0)
		die("--port, --out and --seconds are needed");
	if (phones && (opt.message == NULL || opt.deliver == NULL ||
	    (strncmp(opt.deliver, "unix:", 5) != 0 &&
	    strncmp(opt.deliver, "tcp:", 4) != 0)))
		die("phones need --message and --deliver tcp:PORT|unix:PATH");
}

int
main(int argc, char **argv)
{
	/* at most one client per argument */
	struct client *cls = xcalloc((size_t)argc, sizeof(*cls));
	double wall, cpu;
	int n = parse_args(argc, argv, cls);

	check_args(cls, n);
	if (opt.dry_run) {
		dry_run(cls, n);
		return 0;
	}
	set_schedules(cls, n);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		die("epoll_create1: %s", strerror(errno));
	run(cls, n, &wall, &cpu);
	write_results(wall, cpu);
	return 0;
}
