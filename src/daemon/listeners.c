#include "daemon/listeners.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "base/log.h"
#include "base/util.h"
#include "pop3/pop3.h"
#include "smtp/smtp.h"

#define SESSION_STACK_SIZE (512 * 1024)
/* At a stop, sessions first lose only their input, so they can still
 * say goodbye (SMTP 421); after the grace period their sockets go. */
#define SHUTDOWN_GRACE_SECONDS 2
#define SHUTDOWN_WAIT_SECONDS 15

/* One running session. The table is sized max_connections. */
struct slot {
	bool used;
	int fd;
	enum listener_kind kind;
	char ip[64];
};

struct session_thread {
	const struct server *srv;
	struct conn *conn;
	enum listener_kind kind;
	size_t slot;
	char id[16];
};

static pthread_mutex_t slots_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t slots_idle = PTHREAD_COND_INITIALIZER;
static struct slot *slots;
static size_t n_slots;
static size_t n_threads;		/* threads not yet finished */
static const char *const kind_names[LISTENER_COUNT] = {
	[LISTENER_SMTP] = "smtp", [LISTENER_SUBMISSION] = "submission",
	[LISTENER_SUBMISSIONS] = "submissions", [LISTENER_IMAP] = "imap",
	[LISTENER_IMAPS] = "imaps", [LISTENER_POP3] = "pop3", [LISTENER_POP3S] = "pop3s",
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
	       kind == LISTENER_SUBMISSIONS;
}

/* The protocol behind each listener kind; NULL where there is none yet. */
static const struct session_proto *const kind_protos[LISTENER_COUNT] = {
	[LISTENER_SMTP] = &smtp_proto,
	[LISTENER_SUBMISSION] = &smtp_proto,
	[LISTENER_SUBMISSIONS] = &smtp_proto,
	[LISTENER_POP3] = &pop3_proto,
	[LISTENER_POP3S] = &pop3_proto,
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
	return cfg->smtpd_timeout;
}

/* Takes a free slot if the limits allow; returns its index or -1 with
 * *why_r naming the limit. */
static long
slot_take(const struct config *cfg, enum listener_kind kind, const struct conn *c,
	  const char **why_r)
{
	long free_slot = -1;
	long same_ip = 0, same_ip_smtp = 0;

	pthread_mutex_lock(&slots_lock);
	for (size_t i = 0; i < n_slots; i++) {
		if (!slots[i].used) {
			if (free_slot < 0)
				free_slot = (long)i;
			continue;
		}
		if (strcmp(slots[i].ip, c->peer_ip) == 0) {
			same_ip++;
			same_ip_smtp += kind_is_smtp(slots[i].kind);
		}
	}
	if (free_slot < 0) {
		*why_r = "too many connections";
	} else if ((cfg->client_connection_count_limit > 0 &&
		    same_ip >= cfg->client_connection_count_limit) ||
		   (kind_is_smtp(kind) && cfg->smtpd_client_connection_count_limit > 0 &&
		    same_ip_smtp >= cfg->smtpd_client_connection_count_limit)) {
		*why_r = "too many connections from your address";
		free_slot = -1;
	} else {
		slots[free_slot].used = true;
		slots[free_slot].fd = c->fd;
		slots[free_slot].kind = kind;
		snprintf(slots[free_slot].ip, sizeof(slots[0].ip), "%s", c->peer_ip);
		n_threads++;
	}
	pthread_mutex_unlock(&slots_lock);
	return free_slot;
}

static void
slot_release(size_t slot)
{
	pthread_mutex_lock(&slots_lock);
	slots[slot].used = false;
	pthread_mutex_unlock(&slots_lock);
}

static void
thread_finished(void)
{
	pthread_mutex_lock(&slots_lock);
	n_threads--;
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

/* Runs a protocol's session from its greeting to its end. */
static void
session_run(struct session_ctx *ctx)
{
	const struct session_proto *proto = kind_protos[ctx->kind];

	if (proto->start(ctx) > 0) {
		while (proto->step(ctx) > 0)
			;
	}
	proto->end(ctx);
}

static void *
session_thread_main(void *arg)
{
	struct session_thread *t = arg;
	struct session_ctx ctx = {
		.cfg = t->srv->cfg, .tls = t->srv->tls, .conn = t->conn,
		.kind = t->kind, .stop = t->srv->stop,
	};
	struct timespec start, end;
	struct yj_err err;

	clock_gettime(CLOCK_MONOTONIC, &start);
	snprintf(ctx.id, sizeof(ctx.id), "%s", t->id);
	log_info("%s: session=%s connect client=%s port=%d", kind_names[t->kind], t->id,
		 t->conn->peer_ip, t->conn->peer_port);
	if (listener_kind_implicit_tls(t->kind) &&
	    conn_tls_accept(t->conn, t->srv->tls, &err) < 0)
		log_info("%s: session=%s client=%s TLS handshake failed: %s",
			 kind_names[t->kind], t->id, t->conn->peer_ip, err.msg);
	else
		session_run(&ctx);
	clock_gettime(CLOCK_MONOTONIC, &end);
	log_info("%s: session=%s disconnect client=%s duration=%.3fs", kind_names[t->kind],
		 t->id, t->conn->peer_ip,
		 (double)(end.tv_sec - start.tv_sec) + (end.tv_nsec - start.tv_nsec) / 1e9);
	slot_release(t->slot);
	conn_close(t->conn);
	free(t->conn);
	free(t);
	/* Free OpenSSL's per-thread state now: the thread-exit destructor
	 * that would do it may run after youjud has stopped waiting. */
	OPENSSL_thread_stop();
	thread_finished();
	return NULL;
}

static void
accept_one(const struct server *srv, const struct listener *l)
{
	struct session_thread *t;
	struct conn *c;
	pthread_attr_t attr;
	pthread_t tid;
	const char *why = NULL;
	long slot;
	int fd;

	fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
			log_warn("%s: accept: %s", kind_names[l->kind], strerror(errno));
		if (errno == EMFILE || errno == ENFILE)
			usleep(100 * 1000);	/* let sessions end before retrying */
		return;
	}
	c = malloc(sizeof(*c));
	t = calloc(1, sizeof(*t));
	if (c == NULL || t == NULL)
		log_fatal("out of memory");
	conn_init(c, fd, (int)(kind_timeout(srv->cfg, l->kind) * 1000));
	slot = slot_take(srv->cfg, l->kind, c, &why);
	if (slot < 0) {
		c->timeout_ms = 1000;
		refuse(srv->cfg, c, l->kind, why);
		conn_close(c);
		free(c);
		free(t);
		return;
	}
	*t = (struct session_thread){ .srv = srv, .conn = c, .kind = l->kind, .slot = (size_t)slot };
	util_random_id(t->id, 10);
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, SESSION_STACK_SIZE);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&tid, &attr, session_thread_main, t) != 0) {
		log_error("%s: cannot start a session thread", kind_names[l->kind]);
		slot_release((size_t)slot);
		conn_close(c);
		free(c);
		free(t);
		thread_finished();
	}
	pthread_attr_destroy(&attr);
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
	while (n_threads > 0) {
		if (pthread_cond_timedwait(&slots_idle, &slots_lock, &deadline) == ETIMEDOUT)
			break;
	}
	return n_threads;
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

	n_slots = (size_t)srv->cfg->max_connections;
	slots = calloc(n_slots, sizeof(*slots));
	if (slots == NULL)
		log_fatal("out of memory");
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
	return sessions_stop(srv->stop);
}
