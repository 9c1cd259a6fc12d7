#include "daemon/listeners.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "net/runtime.h"
#include "imap/imap_server.h"
#include "pop3/pop3.h"
#include "smtp/smtp.h"

/* At a stop, sessions first lose only their input, so they can still
 * say goodbye (SMTP 421); after the grace period their sockets go. */
#define SHUTDOWN_GRACE_SECONDS 2
#define SHUTDOWN_WAIT_SECONDS 15
/* "accept: Too many open files" is logged at most this often. */
#define ACCEPT_ERROR_LOG_SECONDS 10
/* Slots beyond max_connections for sessions that were told to end to
 * make room, until they have. */
#define EVICT_MARGIN 64

/* One running session. The table is sized max_connections. */
struct slot {
	bool used;
	int fd;
	enum listener_kind kind;
	char key[SESSION_CLIENT_KEY_MAX];	/* client address or IPv6 prefix */
	struct session_ctx *ctx;
	bool evicted;			/* ending to make room: not counted */
};

/* What a session carries besides its ctx, for the daemon's hooks. */
struct daemon_session {
	struct session_ctx ctx;		/* first: the hooks get &ctx */
	size_t slot;
	struct timespec start;
};

static pthread_mutex_t slots_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t slots_idle = PTHREAD_COND_INITIALIZER;
static struct slot *slots;
static size_t n_slots;			/* max_connections + EVICT_MARGIN */
static size_t max_sessions;		/* max_connections */
static int64_t stress_idle_ms;		/* preauth_stress_timeout */
static size_t n_sessions;		/* sessions not yet closed */
static size_t preauth_limit;
static int reserve_fd = -1;		/* closed to accept and refuse when out of fds */
static const char *const kind_names[LISTENER_COUNT] = {
	[LISTENER_SMTP] = "smtp", [LISTENER_SUBMISSION] = "submission",
	[LISTENER_SUBMISSIONS] = "submissions", [LISTENER_IMAP] = "imap",
	[LISTENER_IMAPS] = "imaps", [LISTENER_POP3] = "pop3", [LISTENER_POP3S] = "pop3s",
	[LISTENER_SENDMAIL] = "sendmail",
};

const char *
listener_kind_name(enum listener_kind kind)
{
	return kind_names[kind];
}

static bool
kind_is_smtp(enum listener_kind kind)
{
	return kind == LISTENER_SMTP || kind == LISTENER_SUBMISSION ||
	       kind == LISTENER_SUBMISSIONS || kind == LISTENER_SENDMAIL;
}

/* The protocol behind each listener kind; NULL where there is none yet. */
static const struct session_proto *const kind_protos[LISTENER_COUNT] = {
	[LISTENER_SMTP] = &smtp_proto,
	[LISTENER_SUBMISSION] = &smtp_proto,
	[LISTENER_SUBMISSIONS] = &smtp_proto,
	[LISTENER_IMAP] = &imap_proto,
	[LISTENER_IMAPS] = &imap_proto,
	[LISTENER_POP3] = &pop3_proto,
	[LISTENER_POP3S] = &pop3_proto,
	[LISTENER_SENDMAIL] = &smtp_proto,
};

bool
listener_kind_available(enum listener_kind kind)
{
	return kind_protos[kind] != NULL;
}

bool
listener_kind_implicit_tls(enum listener_kind kind)
{
	return kind == LISTENER_SUBMISSIONS || kind == LISTENER_IMAPS || kind == LISTENER_POP3S;
}

static long
kind_timeout(const struct config *cfg, enum listener_kind kind)
{
	if (kind == LISTENER_POP3 || kind == LISTENER_POP3S)
		return cfg->pop3_timeout;
	if (kind == LISTENER_IMAP || kind == LISTENER_IMAPS)
		return cfg->imap_timeout;
	return cfg->smtpd_timeout;
}

/* The pre-auth session that has been parked longest, if for at least
 * preauth_stress_timeout, or -1. Such a client has said nothing for a
 * while; ending it makes room for one that may have mail to deliver or
 * read. Called with slots_lock held. */
static long
slot_idlest_preauth(void)
{
	int64_t limit = conn_now_ms() - stress_idle_ms;
	long best = -1;
	int64_t best_since = 0;

	for (size_t i = 0; i < n_slots; i++) {
		int64_t since;

		if (!slots[i].used || slots[i].evicted || session_is_authenticated(slots[i].ctx))
			continue;
		since = runtime_parked_since(slots[i].ctx);
		if (since > 0 && since <= limit && (best < 0 || since < best_since)) {
			best = (long)i;
			best_since = since;
		}
	}
	return best;
}

/* Makes room among the pre-auth sessions when they are at their limit:
 * the idlest of them is timed out (it says goodbye and ends). Returns
 * false if none could be. Called with slots_lock held. */
static bool
slot_make_preauth_room(void)
{
	long victim = slot_idlest_preauth();

	if (victim < 0 || !runtime_expire(slots[victim].ctx))
		return false;
	slots[victim].evicted = true;
	log_info("%s: session=%s client=%s ended: idle before login, and pre-auth slots are full",
		 kind_names[slots[victim].kind], slots[victim].ctx->id,
		 slots[victim].ctx->conn->peer_ip);
	return true;
}

/* What the per-client limits count by: the address, or for the sendmail
 * socket the peer's user, so that one local user's idle connections do
 * not lock the others (root's cron mail among them) out of it. */
static void
slot_client_key(const struct config *cfg, const struct conn *c, char *key, size_t keylen)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (strcmp(c->peer_ip, "local") == 0 &&
	    getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
		snprintf(key, keylen, "local uid %lu", (unsigned long)cred.uid);
		return;
	}
	session_client_key(c->peer_ip, (int)cfg->client_ipv6_prefix, key, keylen);
}

/* Takes a free slot if the limits allow; returns its index or -1 with
 * *why_r naming the limit. */
static long
slot_take(const struct config *cfg, struct session_ctx *ctx, const char **why_r)
{
	long free_slot = -1;
	long same_ip = 0, same_ip_smtp = 0;
	size_t preauth = 0, live = 0;
	char key[SESSION_CLIENT_KEY_MAX];

	slot_client_key(cfg, ctx->conn, key, sizeof(key));
	pthread_mutex_lock(&slots_lock);
	for (size_t i = 0; i < n_slots; i++) {
		if (!slots[i].used) {
			if (free_slot < 0)
				free_slot = (long)i;
			continue;
		}
		if (slots[i].evicted)
			continue;
		live++;
		preauth += !session_is_authenticated(slots[i].ctx);
		if (strcmp(slots[i].key, key) == 0) {
			same_ip++;
			same_ip_smtp += kind_is_smtp(slots[i].kind);
		}
	}
	if ((cfg->client_connection_count_limit > 0 &&
		    same_ip >= cfg->client_connection_count_limit) ||
		   (kind_is_smtp(ctx->kind) && cfg->smtpd_client_connection_count_limit > 0 &&
		    same_ip_smtp >= cfg->smtpd_client_connection_count_limit)) {
		*why_r = "too many connections from your address";
		free_slot = -1;
	} else if ((live >= max_sessions || preauth >= preauth_limit) &&
		   !slot_make_preauth_room()) {
		*why_r = "too many connections";
		free_slot = -1;
	} else if (free_slot < 0) {
		*why_r = "too many connections";
	} else {
		slots[free_slot].used = true;
		slots[free_slot].fd = ctx->conn->fd;
		slots[free_slot].kind = ctx->kind;
		slots[free_slot].ctx = ctx;
		snprintf(slots[free_slot].key, sizeof(slots[0].key), "%s", key);
		n_sessions++;
	}
	pthread_mutex_unlock(&slots_lock);
	return free_slot;
}

/* Frees a session's slot; the stop waits for the last one. */
static void
slot_release(size_t slot)
{
	pthread_mutex_lock(&slots_lock);
	slots[slot].used = false;
	slots[slot].evicted = false;
	slots[slot].ctx = NULL;
	n_sessions--;
	pthread_cond_broadcast(&slots_idle);
	pthread_mutex_unlock(&slots_lock);
}

/* Tells a client over a limit why it is turned away, in its protocol. */
static void
refuse(const struct config *cfg, struct conn *c, enum listener_kind kind, const char *why)
{
	log_warn("%s: client=%s refused: %s", kind_names[kind], c->peer_ip, why);
	if (listener_kind_implicit_tls(kind))
		return;
	if (kind_is_smtp(kind))
		conn_printf(c, "421 4.7.0 %s Error: %s\r\n", cfg->myhostname, why);
	else if (kind == LISTENER_POP3)
		conn_printf(c, "-ERR [SYS/TEMP] %s\r\n", why);
	else
		conn_printf(c, "* BYE %s\r\n", why);
}

/* Runtime hook, on a worker before the protocol starts: the implicit-TLS
 * handshake (its ClientHello has arrived, or its time is up). */
static int
session_open(struct session_ctx *ctx)
{
	struct yj_err err;

	if (!listener_kind_implicit_tls(ctx->kind))
		return 1;
	if (conn_tls_accept(ctx->conn, ctx->tls, &err) < 0) {
		log_info("%s: session=%s client=%s TLS handshake failed: %s",
			 kind_names[ctx->kind], ctx->id, ctx->conn->peer_ip, err.msg);
		return 0;
	}
	return 1;
}

/* Runtime hook, last: the session is over. */
static void
session_close(struct session_ctx *ctx)
{
	struct daemon_session *ds = (struct daemon_session *)ctx;
	struct timespec end;

	clock_gettime(CLOCK_MONOTONIC, &end);
	log_info("%s: session=%s disconnect client=%s duration=%.3fs", kind_names[ctx->kind],
		 ctx->id, ctx->conn->peer_ip,
		 (double)(end.tv_sec - ds->start.tv_sec) +
			 (end.tv_nsec - ds->start.tv_nsec) / 1e9);
	slot_release(ds->slot);
	conn_close(ctx->conn);
	free(ctx->conn);
	free(ds);
}

static const struct runtime_hooks session_hooks = {
	.open = session_open,
	.close = session_close,
};

/* Out of file descriptors: the reserve one makes room to accept the
 * client, tell it so in its protocol, and close again. Returns true if a
 * client was refused this way. */
static bool
accept_refuse_nofile(const struct server *srv, const struct listener *l)
{
	struct conn c;
	int fd;

	if (reserve_fd < 0)
		return false;
	close(reserve_fd);
	reserve_fd = -1;
	fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd >= 0) {
		conn_init(&c, fd, 1000);
		refuse(srv->cfg, &c, l->kind, "too many connections");
		conn_close(&c);
	}
	reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	return fd >= 0;
}

/* Logs accept errors at most once per ACCEPT_ERROR_LOG_SECONDS, with the
 * count of those not logged. */
static void
accept_error(const struct server *srv, const struct listener *l, int e)
{
	static time_t last;
	static unsigned long unlogged;
	time_t now = time(NULL);
	bool nofile = e == EMFILE || e == ENFILE;

	if (e == EAGAIN || e == EINTR || e == ECONNABORTED)
		return;
	if (nofile && accept_refuse_nofile(srv, l))
		e = EMFILE;
	if (now - last < ACCEPT_ERROR_LOG_SECONDS) {
		unlogged++;
	} else {
		log_warn("%s: accept: %s%s (%lu more since the last report)", kind_names[l->kind],
			 strerror(e), nofile ? "; clients get \"too many connections\"" : "",
			 unlogged);
		last = now;
		unlogged = 0;
	}
	if (nofile && reserve_fd < 0)
		usleep(100 * 1000);	/* not even the reserve: let sessions end */
}

static void
accept_one(const struct server *srv, const struct listener *l)
{
	struct daemon_session *ds;
	struct conn *c;
	const char *why = NULL;
	long slot;
	int fd;

	fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0) {
		accept_error(srv, l, errno);
		return;
	}
	c = malloc(sizeof(*c));
	ds = calloc(1, sizeof(*ds));
	if (c == NULL || ds == NULL)
		log_fatal("out of memory");
	conn_init(c, fd, (int)(kind_timeout(srv->cfg, l->kind) * 1000));
	c->tls_timeout_ms = (int)(srv->cfg->tls_handshake_timeout * 1000);
	c->write_timeout_ms = (int)(srv->cfg->write_timeout * 1000);
	ds->ctx = (struct session_ctx){
		.cfg = srv->cfg, .tls = srv->tls, .conn = c, .kind = l->kind, .stop = srv->stop,
	};
	atomic_init(&ds->ctx.authenticated, false);
	clock_gettime(CLOCK_MONOTONIC, &ds->start);
	slot = slot_take(srv->cfg, &ds->ctx, &why);
	if (slot < 0) {
		c->timeout_ms = 1000;
		refuse(srv->cfg, c, l->kind, why);
		conn_close(c);
		free(c);
		free(ds);
		return;
	}
	ds->slot = (size_t)slot;
	util_random_id(ds->ctx.id, 10);
	log_info("%s: session=%s connect client=%s port=%d", kind_names[l->kind], ds->ctx.id,
		 c->peer_ip, c->peer_port);
	if (runtime_add(&ds->ctx, kind_protos[l->kind], &session_hooks,
			listener_kind_implicit_tls(l->kind)) < 0) {
		log_error("%s: cannot start a session", kind_names[l->kind]);
		slot_release((size_t)slot);
		conn_close(c);
		free(c);
		free(ds);
	}
}

/* Shuts the sockets of all running sessions (how: SHUT_RD or SHUT_RDWR)
 * and waits until they have ended or the deadline passes. Called with
 * slots_lock held; returns the number of sessions still running. */
static size_t
sessions_shut(int how, int seconds)
{
	struct timespec deadline;

	for (size_t i = 0; i < n_slots; i++) {
		if (slots[i].used)
			shutdown(slots[i].fd, how);
	}
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += seconds;
	while (n_sessions > 0) {
		if (pthread_cond_timedwait(&slots_idle, &slots_lock, &deadline) == ETIMEDOUT)
			break;
	}
	return n_sessions;
}

/* Ends all sessions: with their input gone, blocked reads return and
 * each session ends the way its protocol says; those still busy after
 * the grace period lose their sockets altogether. */
static size_t
sessions_stop(struct stop *stop)
{
	size_t left;

	atomic_store(&stop->requested, true);
	pthread_mutex_lock(&slots_lock);
	left = sessions_shut(SHUT_RD, SHUTDOWN_GRACE_SECONDS);
	if (left > 0)
		left = sessions_shut(SHUT_RDWR, SHUTDOWN_WAIT_SECONDS);
	pthread_mutex_unlock(&slots_lock);
	if (left > 0)
		log_warn("stopping with %zu sessions still running", left);
	return left;
}

size_t
listeners_run(const struct server *srv, struct listener *ls, int n)
{
	struct pollfd pfd[LISTENER_COUNT + 1];
	struct runtime_opts opts;
	struct yj_err err;
	size_t left;

	max_sessions = (size_t)srv->cfg->max_connections;
	n_slots = max_sessions + EVICT_MARGIN;
	slots = calloc(n_slots, sizeof(*slots));
	if (slots == NULL)
		log_fatal("out of memory");
	preauth_limit = srv->cfg->max_preauth_connections > 0
				? (size_t)srv->cfg->max_preauth_connections
				: max_sessions;
	if (preauth_limit > max_sessions)
		preauth_limit = max_sessions;
	stress_idle_ms = srv->cfg->preauth_stress_timeout * 1000;
	reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	opts = (struct runtime_opts){
		.max_sessions = n_slots,
		.park_delay_ms = srv->cfg->session_park_delay,
		.first_command_timeout_ms = srv->cfg->first_command_timeout * 1000,
	};
	if (runtime_init(&opts, &err) < 0)
		log_fatal("%s", err.msg);
	for (int i = 0; i < n; i++)
		pfd[i] = (struct pollfd){ .fd = ls[i].fd, .events = POLLIN };
	pfd[n] = (struct pollfd){ .fd = srv->stop->fd, .events = POLLIN };
	for (;;) {
		if (poll(pfd, (nfds_t)n + 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_fatal("poll: %s", strerror(errno));
		}
		if (pfd[n].revents != 0)
			break;
		for (int i = 0; i < n; i++) {
			if (pfd[i].revents & POLLIN)
				accept_one(srv, &ls[i]);
		}
	}
	for (int i = 0; i < n; i++)
		close(ls[i].fd);
	left = sessions_stop(srv->stop);
	if (left == 0) {
		runtime_stop();
		free(slots);
		slots = NULL;
	}
	if (reserve_fd >= 0)
		close(reserve_fd);
	return left;
}
