/* imap_server_idle.c - IDLE (RFC 2177): the session parks between
 * updates. A process-wide table of idling sessions is woken by the
 * store's change notices for their mailbox and by a ticker that sends
 * "* OK Still here" every imap_idle_notify_interval, so clients behind
 * NAT notice a dead connection. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "imap/imap_session.h"

struct imap_idle_entry {
	struct imap_idle_entry *next;
	struct session_ctx *ctx;
	int64_t mailbox_id;		/* 0: none selected */
	int64_t account_id;
	int64_t next_keepalive;		/* monotonic ms */
	long interval_ms;
	bool keepalive_due;
};

static pthread_mutex_t idle_lock = PTHREAD_MUTEX_INITIALIZER;
static struct imap_idle_entry *idle_list;
static pthread_once_t idle_once = PTHREAD_ONCE_INIT;

static void
idle_notify(void *arg, const struct store_change *ch)
{
	pthread_mutex_lock(&idle_lock);
	for (struct imap_idle_entry *e = idle_list; e != NULL; e = e->next)
		if (e->mailbox_id == ch->mailbox_id || e->account_id == ch->account_id)
			session_wake(e->ctx);
	pthread_mutex_unlock(&idle_lock);
}

/* Once a second: wakes sessions whose keep-alive is due. */
static void *
idle_ticker(void *arg)
{
	(void)arg;
	pthread_setname_np(pthread_self(), "yj-idle");
	for (;;) {
		struct timespec ts = { 1, 0 };
		int64_t now;

		nanosleep(&ts, NULL);
		now = conn_now_ms();
		pthread_mutex_lock(&idle_lock);
		for (struct imap_idle_entry *e = idle_list; e != NULL; e = e->next)
			if (now >= e->next_keepalive) {
				e->keepalive_due = true;
				e->next_keepalive = now + e->interval_ms;
				session_wake(e->ctx);
			}
		pthread_mutex_unlock(&idle_lock);
	}
	return NULL;
}

static void
idle_init(void)
{
	pthread_t t;

	if (store_notify_subscribe(idle_notify, NULL) < 0)
		log_error("imap: IDLE cannot subscribe to store changes");
	if (pthread_create(&t, NULL, idle_ticker, NULL) != 0)
		log_fatal("imap: cannot start the IDLE ticker");
	pthread_detach(t);
}

int
imap_cmd_idle(struct imap_session *s, struct imap_cmd *cmd)
{
	struct imap_idle_entry *e = calloc(1, sizeof(*e));

	if (e == NULL)
		log_fatal("out of memory");
	pthread_once(&idle_once, idle_init);
	e->ctx = s->ctx;
	e->mailbox_id = s->state == IMAP_SELECTED ? s->mb.id : 0;
	e->account_id = s->state == IMAP_SELECTED ? 0 : -1;
	e->interval_ms = s->cfg->imap_idle_notify_interval * 1000;
	e->next_keepalive = conn_now_ms() + e->interval_ms;
	snprintf(s->idle_tag, sizeof(s->idle_tag), "%s", cmd->tag);
	s->idle = e;
	s->idling = true;
	pthread_mutex_lock(&idle_lock);
	e->next = idle_list;
	idle_list = e;
	pthread_mutex_unlock(&idle_lock);
	(void)imap_sync(s, true);
	imap_printf(s, "+ idling");
	return 1;
}

void
imap_idle_stop(struct imap_session *s)
{
	struct imap_idle_entry **pp;

	if (s->idle == NULL)
		return;
	pthread_mutex_lock(&idle_lock);
	for (pp = &idle_list; *pp != NULL; pp = &(*pp)->next)
		if (*pp == s->idle) {
			*pp = s->idle->next;
			break;
		}
	pthread_mutex_unlock(&idle_lock);
	free(s->idle);
	s->idle = NULL;
	s->idling = false;
}

static bool
idle_take_keepalive(struct imap_session *s)
{
	bool due;

	pthread_mutex_lock(&idle_lock);
	due = s->idle->keepalive_due;
	s->idle->keepalive_due = false;
	pthread_mutex_unlock(&idle_lock);
	return due;
}

/* Input ends IDLE: DONE, or anything else (BAD). The bytes after the
 * line stay for the next step (iOS pipelines its next command). */
static int
idle_read_done(struct imap_session *s)
{
	char line[1024];
	size_t len = 0;
	int ret;

	ret = conn_read_line(s->conn, line, sizeof(line), sizeof(line) - 1, &len);
	if (ret == 0) {
		imap_idle_stop(s);
		if (s->conn->timed_out)
			imap_printf(s, "* BYE Autologout; idle for too long");
		s->end_reason = conn_end_reason(s->conn);
		return 0;
	}
	imap_idle_stop(s);
	while (ret > 0 && len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		len--;
	if (ret < 0 || !imap_is_done_line(line, len)) {
		imap_printf(s, "%s BAD Expected DONE", s->idle_tag);
		return 1;
	}
	if (imap_store_ready(s))
		(void)imap_sync(s, true);
	imap_printf(s, "%s OK IDLE terminated", s->idle_tag);
	return 1;
}

int
imap_idle_step(struct imap_session *s)
{
	if (s->ctx->events & (SESSION_EV_INPUT | SESSION_EV_TIMEOUT))
		return idle_read_done(s);
	/* Woken by a change: the store is borrowed for the update only;
	 * if it cannot be had now, the next notice or DONE brings it. */
	if (imap_store_ready(s) && imap_sync(s, true) < 0) {
		imap_idle_stop(s);
		return 0;
	}
	if (idle_take_keepalive(s))
		imap_printf(s, "* OK Still here");
	return conn_flush(s->conn) ? 1 : 0;
}
