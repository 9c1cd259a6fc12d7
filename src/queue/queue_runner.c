/* queue_runner.c - the delivery threads. */
#include "queue/queue.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "deliver/deliver.h"
#include "net/tls.h"
#include "queue/smtp_client.h"
#include "store/store.h"

#define QUEUE_THREADS_MAX 1000
#define QUEUE_CLAIM_MAX 100
/* A stop waits this many seconds for transactions under way, not the
 * smtp_timeout a silent server could hold one for. */
#define QUEUE_STOP_WAIT 5
/* Notices are looked for at least this often (delay notices, and those
 * a crash or another process left owed). */
#define QUEUE_REPORT_EVERY 10

struct queue_runner {
	const struct config *cfg;
	struct smtpc_config smtp;
	char node[STORE_NODE_MAX + 1];
	char relay_password[256];	/* relayhost_password or its file's first line */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stopping;
	unsigned wakes;			/* bumped by queue_wake() */
	bool report_due;		/* an answer was recorded that needs a notice */
	bool reporting;			/* a thread is sending notices */
	time_t reported;		/* when notices were last looked for */
	long lease;			/* seconds a claim lasts unless renewed */
	pthread_t threads[QUEUE_THREADS_MAX];
	size_t n_threads;
	pthread_t keeper;
	bool keeper_started;
	pthread_t waker;		/* reads the wake-up FIFO */
	int fifo;			/* its fd, or -1 */
	size_t running;			/* threads not yet finished, under lock */
	/* each delivery thread's batch, under lock, for the keeper */
	struct queue_batch *batches[QUEUE_THREADS_MAX];
	/* connections open per destination domain, under lock; one entry
	 * per thread at most, so a short list */
	struct queue_dest {
		char domain[256];
		long n;
	} dests[QUEUE_THREADS_MAX];
};

static struct queue_runner *runner;

/* A claimed item's state, under runner->lock: the keeper renews the
 * claims of CLAIMED items; one whose renewal found it lapsed, or whose
 * lease ended unrenewed (another may be sending it), is not sent. */
enum queue_item_state { QUEUE_CLAIMED, QUEUE_ANSWERED, QUEUE_LAPSED };

/* The items one thread claimed, sorted by domain and message. items and
 * n are shared with the keeper (under runner->lock) while n > 0. */
struct queue_batch {
	struct store_queue_item items[QUEUE_CLAIM_MAX];
	unsigned char state[QUEUE_CLAIM_MAX];
	unsigned char outcome[QUEUE_CLAIM_MAX];	/* enum store_queue_outcome, once answered */
	/* when each claim's lease ends, as last written: moved only once a
	 * renewal is on disk */
	time_t until[QUEUE_CLAIM_MAX];
	size_t got;				/* while claiming: the thread's own */
	size_t n;
};

/* What a delivery thread keeps between its batches. */
struct queue_worker {
	struct store *st;
	struct smtpc_cache *cache;	/* the open session, to dest's domain */
	struct queue_dest *dest;	/* the destination counted for it, or NULL */
	struct queue_batch *b;
	struct store_queue_flight *flight;	/* answers posted, not yet landed */
};

static void
queue_collect(void *ctx, const struct store_queue_item *item)
{
	struct queue_batch *b = ctx;

	if (b->got < QUEUE_CLAIM_MAX)
		b->items[b->got++] = *item;
}

static int
queue_item_cmp(const void *a, const void *b)
{
	const struct store_queue_item *x = a, *y = b;

	int d = strcmp(x->domain, y->domain);

	/* by domain first: one connection then serves its messages in turn */
	if (d != 0)
		return d;
	if (x->message_id != y->message_id)
		return x->message_id < y->message_id ? -1 : 1;
	return 0;
}

/* Seconds until the next try after attempts tries: doubling, capped. */
static long
queue_backoff(const struct config *cfg, long attempts)
{
	long t = cfg->minimal_backoff_time;

	for (long i = 0; i < attempts && t < cfg->maximal_backoff_time; i++)
		t *= 2;
	return t < cfg->maximal_backoff_time ? t : cfg->maximal_backoff_time;
}

static void
queue_report_due(void)
{
	pthread_mutex_lock(&runner->lock);
	runner->report_due = true;
	pthread_mutex_unlock(&runner->lock);
}

/* Does the recipient want a "relayed" notice from us: NOTIFY=SUCCESS to
 * a server that did not take over reporting (RFC 3461 6.2)? */
static bool
queue_wants_relayed(const struct store_queue_item *it, const struct smtpc_rcpt *r)
{
	return !r->remote_dsn && strcasestr(it->notify, "SUCCESS") != NULL;
}

/* Which answer the reply makes: 2xx delivered (sent, when a relayed
 * notice is owed), 5xx or past its lifetime failed, else deferred. */
static void
queue_answer_for(const struct store_queue_item *it, const struct smtpc_rcpt *r, int64_t now,
		 struct store_queue_answer *a)
{
	const struct config *cfg = runner->cfg;

	*a = (struct store_queue_answer){ .id = it->id, .reply = r->reply,
					  .remote_mta = r->remote_mta };
	if (r->code / 100 == 2)
		a->outcome = queue_wants_relayed(it, r) ? STORE_QUEUE_SENT : STORE_QUEUE_DONE;
	else if (r->code >= 500 || now - it->created >= (it->sender[0] == '\0' ?
			cfg->bounce_queue_lifetime : cfg->maximal_queue_lifetime))
		a->outcome = STORE_QUEUE_FAIL;
	else {
		a->outcome = STORE_QUEUE_DEFER;
		a->next_attempt = now + queue_backoff(cfg, it->attempts);
	}
}

/* Logs one recipient's answer and hands it to the store, which commits
 * it with the other threads' (store_queue_post). Addresses and the
 * remote reply are other people's bytes: logged through log_value(). A
 * failure (and a relayed NOTIFY=SUCCESS) stays as a row that
 * queue_report() turns into the notice to the sender. */
static void
queue_record(struct queue_worker *w, size_t k, const struct smtpc_rcpt *r)
{
	const struct store_queue_item *it = &w->b->items[k];
	int64_t now = (int64_t)time(NULL);
	char from[LOG_VALUE_MAX], to[LOG_VALUE_MAX], reply[4 * SMTPC_REPLY_MAX + 4];
	struct store_queue_answer a;
	struct yj_err err;

	queue_answer_for(it, r, now, &a);
	log_value(from, sizeof(from), it->sender);
	log_value(to, sizeof(to), it->recipient);
	log_value(reply, sizeof(reply), r->reply);
	if (a.outcome == STORE_QUEUE_DEFER)
		log_info("queue: from=<%s> to=<%s> status=deferred retry=%llds reply=%s", from,
			 to, (long long)(a.next_attempt - now), reply);
	else
		log_info("queue: from=<%s> to=<%s> status=%s reply=%s", from, to,
			 a.outcome == STORE_QUEUE_FAIL ? "failed" :
			 a.outcome == STORE_QUEUE_SENT ? "sent notify=success" : "sent", reply);
	/* Answered: the keeper no longer renews it. */
	pthread_mutex_lock(&runner->lock);
	w->b->state[k] = QUEUE_ANSWERED;
	w->b->outcome[k] = (unsigned char)a.outcome;
	pthread_mutex_unlock(&runner->lock);
	if (store_queue_post(w->st, w->flight, runner->node, &a, &err) < 0)
		log_warn("queue: to=<%s> recording the answer: %s", to, err.msg);
}

/* An answer is on disk (or not): a failure or relay now owes a notice. */
static void
queue_landed(void *ctx, int64_t id, int result, const struct yj_err *err)
{
	struct queue_batch *b = ctx;
	char to[LOG_VALUE_MAX] = "";
	size_t k;

	for (k = 0; k < b->n && b->items[k].id != id; k++)
		;
	if (k < b->n)
		log_value(to, sizeof(to), b->items[k].recipient);
	if (result < 0)
		log_warn("queue: to=<%s> recording the answer: %s", to, err->msg);
	else if (result == 0)
		log_warn("queue: to=<%s> claim lapsed before its answer was recorded", to);
	else if (k < b->n && (b->outcome[k] == STORE_QUEUE_FAIL ||
			      b->outcome[k] == STORE_QUEUE_SENT))
		queue_report_due();
}

/* Waits until domain has fewer than smtp_destination_concurrency_limit
 * sessions, then counts this one. Each thread holds at most one entry. */
static struct queue_dest *
queue_dest_enter(const char *domain)
{
	struct queue_dest *d = NULL, *free_slot = NULL;

	pthread_mutex_lock(&runner->lock);
	for (;;) {
		d = NULL;
		free_slot = NULL;
		for (size_t i = 0; i < QUEUE_THREADS_MAX && d == NULL; i++) {
			if (runner->dests[i].n > 0 && strcmp(runner->dests[i].domain, domain) == 0)
				d = &runner->dests[i];
			else if (runner->dests[i].n == 0 && free_slot == NULL)
				free_slot = &runner->dests[i];
		}
		if (d == NULL) {
			d = free_slot;	/* there is one: fewer users than threads */
			snprintf(d->domain, sizeof(d->domain), "%s", domain);
		}
		if (d->n < runner->cfg->smtp_destination_concurrency_limit || runner->stopping)
			break;
		pthread_cond_wait(&runner->cond, &runner->lock);
	}
	d->n++;
	pthread_mutex_unlock(&runner->lock);
	return d;
}

static void
queue_dest_leave(struct queue_dest *d)
{
	pthread_mutex_lock(&runner->lock);
	d->n--;
	pthread_cond_broadcast(&runner->cond);
	pthread_mutex_unlock(&runner->lock);
}

/* The session and destination count a worker holds go, before it waits
 * for another destination or sleeps (holding one while waiting for
 * another could deadlock two threads). */
static void
queue_worker_idle(struct queue_worker *w)
{
	smtpc_cache_close(w->cache);
	if (w->dest != NULL)
		queue_dest_leave(w->dest);
	w->dest = NULL;
}

/* Counts the worker in domain's sessions, keeping the open session if
 * it is to domain already. */
static void
queue_worker_to(struct queue_worker *w, const char *domain)
{
	if (w->dest != NULL && strcmp(w->dest->domain, domain) == 0)
		return;
	queue_worker_idle(w);
	w->dest = queue_dest_enter(domain);
}

/* Every item of ks[0..n) gets reply (the message could not be read). */
static void
queue_record_all(struct queue_worker *w, const size_t *ks, size_t n, struct smtpc_rcpt *r,
		 const char *reply)
{
	for (size_t i = 0; i < n; i++) {
		r[i].code = atoi(reply);
		snprintf(r[i].reply, sizeof(r[i].reply), "%s", reply);
		queue_record(w, ks[i], &r[i]);
	}
}

/* Sends the batch's items ks[0..n) (one message, one domain) and records
 * the answers. */
static void
queue_send_group(struct queue_worker *w, const size_t *ks, size_t n)
{
	const struct store_queue_item *first = &w->b->items[ks[0]];
	struct store_queue_message m;
	struct smtpc_rcpt *r = calloc(n, sizeof(*r));
	struct yj_err err;
	int fd = -1, ret;

	if (r == NULL)
		log_fatal("out of memory");
	ret = store_queue_message_get(w->st, first->message_id, &m, &err);
	if (ret == 1 && store_queue_open_blob(w->st, &m, &fd, &err) < 0)
		ret = -1;
	if (ret <= 0) {
		log_warn("queue: message %lld: %s", (long long)first->message_id,
			 ret == 0 ? "gone" : err.msg);
		queue_record_all(w, ks, n, r, "451 4.3.0 local error reading the queued message");
		if (ret == 1)
			store_queue_message_free(&m);
		free(r);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		r[i].address = w->b->items[ks[i]].recipient;
		r[i].notify = w->b->items[ks[i]].notify;
		r[i].orcpt = w->b->items[ks[i]].orcpt;
	}
	smtpc_send(&runner->smtp, w->cache, first->domain,
		   &(struct smtpc_message){ .sender = m.sender, .envid = m.envid, .ret = m.ret,
					    .body = m.body, .smtputf8 = m.smtputf8,
					    .header = m.header, .header_len = m.header_len,
					    .fd = fd },
		   r, n);
	for (size_t i = 0; i < n; i++)
		queue_record(w, ks[i], &r[i]);
	close(fd);
	store_queue_message_free(&m);
	free(r);
}

/* A runner thread ends: queue_stop() counts them. */
static void
queue_thread_done(void)
{
	pthread_mutex_lock(&runner->lock);
	runner->running--;
	pthread_cond_broadcast(&runner->cond);
	pthread_mutex_unlock(&runner->lock);
}

static bool
queue_stopping(void)
{
	bool s;

	pthread_mutex_lock(&runner->lock);
	s = runner->stopping;
	pthread_mutex_unlock(&runner->lock);
	return s;
}

static size_t queue_live(struct queue_batch *b, size_t i, size_t j, size_t *ks);

/* Gives back the batch's unanswered claims, unsent. */
static void
queue_release_rest(struct queue_worker *w)
{
	struct queue_batch *b = w->b;
	size_t ks[QUEUE_CLAIM_MAX];
	size_t n = queue_live(b, 0, b->n, ks);
	struct yj_err err;

	for (size_t i = 0; i < n; i++) {
		if (store_queue_release(w->st, b->items[ks[i]].id, runner->node, &err) < 0)
			log_warn("queue: releasing %s: %s", b->items[ks[i]].recipient, err.msg);
	}
}

/* Under runner->lock: a CLAIMED item whose lease has ended unrenewed
 * (the keeper's renewals failed, or it could not write them) is LAPSED
 * now: from then on another thread or node may claim it. */
static void
queue_lapse_ended(struct queue_batch *b, size_t k, time_t now)
{
	if (b->state[k] == QUEUE_CLAIMED && b->until[k] <= now)
		b->state[k] = QUEUE_LAPSED;
}

/* The items of [i, j) whose claims still hold, into ks; lapsed ones are
 * left to their new holder. Returns how many. */
static size_t
queue_live(struct queue_batch *b, size_t i, size_t j, size_t *ks)
{
	time_t now = time(NULL);
	size_t n = 0;

	pthread_mutex_lock(&runner->lock);
	for (size_t k = i; k < j; k++) {
		queue_lapse_ended(b, k, now);
		if (b->state[k] == QUEUE_CLAIMED)
			ks[n++] = k;
		else if (b->state[k] == QUEUE_LAPSED)
			log_warn("queue: claim on %s lapsed before it was sent; left to its new "
				 "holder", b->items[k].recipient);
	}
	pthread_mutex_unlock(&runner->lock);
	return n;
}

/* Shares the claimed batch with the keeper, or (n 0) takes it back. */
static void
queue_batch_publish(struct queue_batch *b, size_t n, time_t until)
{
	pthread_mutex_lock(&runner->lock);
	memset(b->state, QUEUE_CLAIMED, sizeof(b->state));
	for (size_t k = 0; k < n; k++)
		b->until[k] = until;
	b->n = n;
	pthread_mutex_unlock(&runner->lock);
}

/* One claim and its sending. Answers are posted as each message is
 * done and landed at the end, so the thread never waits for a COMMIT
 * between two messages. Returns how many were claimed, -1 error. */
static int
queue_run_once(struct queue_worker *w)
{
	struct queue_batch *b = w->b;
	size_t ks[QUEUE_CLAIM_MAX];
	struct yj_err err;
	time_t now = time(NULL);
	int got;

	b->got = 0;
	got = store_queue_claim(w->st, runner->node, (int64_t)now, runner->lease,
				QUEUE_CLAIM_MAX, queue_collect, b, &err);
	if (got < 0) {
		log_warn("queue: claim: %s", err.msg);
		return -1;
	}
	/* A full claim may have left more: idle threads take it too. */
	if (b->got == QUEUE_CLAIM_MAX)
		queue_wake();
	qsort(b->items, b->got, sizeof(b->items[0]), queue_item_cmp);
	queue_batch_publish(b, b->got, now + runner->lease);
	for (size_t i = 0; i < b->n;) {
		size_t j = i + 1, n;

		/* Stopping, the rest goes back unsent. */
		if (queue_stopping()) {
			queue_release_rest(w);
			break;
		}
		while (j < b->n && queue_item_cmp(&b->items[i], &b->items[j]) == 0)
			j++;
		if ((n = queue_live(b, i, j, ks)) > 0) {
			/* the open session counts as one of its domain's */
			queue_worker_to(w, b->items[i].domain);
			queue_send_group(w, ks, n);
		}
		i = j;
	}
	store_queue_flight_land(w->st, w->flight, queue_landed, b);
	queue_batch_publish(b, 0, 0);
	return got;
}

/* ---- the keeper: renews the claims of batches still under way ---- */

/* The ids of CLAIMED items whose leases end within half a lease; those
 * whose leases have ended are LAPSED instead. Returns how many. */
static size_t
queue_keeper_due(int64_t *ids, size_t max, time_t now)
{
	size_t n = 0;

	pthread_mutex_lock(&runner->lock);
	for (size_t t = 0; t < runner->n_threads; t++) {
		struct queue_batch *b = runner->batches[t];

		for (size_t k = 0; b != NULL && k < b->n && n < max; k++) {
			queue_lapse_ended(b, k, now);
			if (b->state[k] == QUEUE_CLAIMED && b->until[k] - now <= runner->lease / 2)
				ids[n++] = b->items[k].id;
		}
	}
	pthread_mutex_unlock(&runner->lock);
	return n;
}

/* A renewal landed. On disk: the claim's lease end moves to the
 * renewal's (*ctx). Found lapsed: the claim is marked so. Failed (it may
 * or may not be on disk): the lease end stays as it was, so the next
 * round tries again, and if none succeeds before that end the claim is
 * lapsed. A claim its thread has answered meanwhile is left alone (the
 * answer ended it). */
static void
queue_keeper_landed(void *ctx, int64_t id, int result, const struct yj_err *err)
{
	const time_t *until = ctx;

	if (result < 0) {
		log_warn("queue: renewing a claim: %s", err->msg);
		return;
	}
	pthread_mutex_lock(&runner->lock);
	for (size_t t = 0; t < runner->n_threads; t++) {
		struct queue_batch *b = runner->batches[t];

		for (size_t k = 0; b != NULL && k < b->n; k++) {
			if (b->items[k].id != id || b->state[k] != QUEUE_CLAIMED)
				continue;
			if (result == 1)
				b->until[k] = *until;
			else
				b->state[k] = QUEUE_LAPSED;
		}
	}
	pthread_mutex_unlock(&runner->lock);
}

/* Renews what is due, through the store's writer (one COMMIT with the
 * answers waiting then). */
static void
queue_keeper_round(struct store *st, struct store_queue_flight *f, int64_t *ids, size_t max)
{
	time_t now = time(NULL);
	time_t until = now + runner->lease;
	size_t n = queue_keeper_due(ids, max, now);
	struct yj_err err;

	for (size_t i = 0; i < n; i++) {
		struct store_queue_answer a = { .outcome = STORE_QUEUE_RENEW, .id = ids[i],
						.next_attempt = (int64_t)until };

		if (store_queue_post(st, f, runner->node, &a, &err) < 0) {
			log_warn("queue: renewing a claim: %s", err.msg);
			break;
		}
	}
	store_queue_flight_land(st, f, queue_keeper_landed, &until);
}

/* Waits up to ms on runner->cond, until stopping or (seen not NULL) a
 * queue_wake() since *seen; *seen becomes the wakes seen. false once
 * stopping. */
static bool
queue_wait(long ms, unsigned *seen)
{
	struct timespec until;
	bool stopping;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (ms % 1000) * 1000000L;
	until.tv_sec += until.tv_nsec / 1000000000L;
	until.tv_nsec %= 1000000000L;
	pthread_mutex_lock(&runner->lock);
	while (!runner->stopping && (seen == NULL || runner->wakes == *seen)) {
		if (pthread_cond_timedwait(&runner->cond, &runner->lock, &until) != 0)
			break;
	}
	if (seen != NULL)
		*seen = runner->wakes;
	stopping = runner->stopping;
	pthread_mutex_unlock(&runner->lock);
	return !stopping;
}

/* Sleeps a quarter of a lease (at least 250 ms); false once stopping. */
static bool
queue_keeper_sleep(void)
{
	long ms = runner->lease * 1000 / 4;

	return queue_wait(ms < 250 ? 250 : ms, NULL);
}

/* A lease only runs out when its node stops renewing it: a transaction
 * that takes longer than a lease (a big message to a slow server)
 * keeps its claims, and so do batches waiting for a destination. */
static void *
queue_keeper(void *arg)
{
	size_t max = runner->n_threads * QUEUE_CLAIM_MAX;
	int64_t *ids = calloc(max, sizeof(*ids));
	struct store_queue_flight *f = store_queue_flight_new(max);
	struct store *st = NULL;
	struct yj_err err;

	pthread_setname_np(pthread_self(), "yj-queue-keep");
	if (ids == NULL)
		log_fatal("out of memory");
	while (queue_keeper_sleep()) {
		if (st == NULL && store_open(runner->cfg->data_dir, &st, &err) < 0) {
			log_warn("queue: store: %s", err.msg);
			st = NULL;
		}
		if (st != NULL)
			queue_keeper_round(st, f, ids, max);
	}
	if (st != NULL)
		store_close(&st);
	store_queue_flight_free(f);
	free(ids);
	queue_thread_done();
	return arg;
}

/* Whether this thread sends the notices now: one thread at a time, when
 * an answer asked for one or QUEUE_REPORT_EVERY passed. */
static bool
queue_report_turn(void)
{
	time_t now = time(NULL);
	bool mine = false;

	pthread_mutex_lock(&runner->lock);
	if (!runner->reporting && !runner->stopping &&
	    (runner->report_due || now - runner->reported >= QUEUE_REPORT_EVERY)) {
		runner->reporting = true;
		runner->report_due = false;
		runner->reported = now;
		mine = true;
	}
	pthread_mutex_unlock(&runner->lock);
	return mine;
}

static void
queue_report_round(struct store *st)
{
	struct yj_err err;

	if (!queue_report_turn())
		return;
	if (queue_report(st, runner->cfg, &err) < 0)
		log_warn("queue: notices: %s", err.msg);
	pthread_mutex_lock(&runner->lock);
	runner->reporting = false;
	pthread_mutex_unlock(&runner->lock);
}

/* Sleeps queue_run_delay or until queue_wake(); false once stopping. */
static bool
queue_sleep(unsigned *seen)
{
	return queue_wait(runner->cfg->queue_run_delay * 1000, seen);
}

static void *
queue_thread(void *arg)
{
	struct queue_worker w = { .cache = smtpc_cache_new(),
				  .flight = store_queue_flight_new(QUEUE_CLAIM_MAX) };
	struct yj_err err;
	unsigned seen = 0;

	pthread_setname_np(pthread_self(), "yj-queue");
	if ((w.b = calloc(1, sizeof(*w.b))) == NULL)
		log_fatal("out of memory");
	pthread_mutex_lock(&runner->lock);
	runner->batches[(size_t)(uintptr_t)arg] = w.b;
	pthread_mutex_unlock(&runner->lock);
	while (!queue_stopping()) {
		int got = 0;

		if (w.st == NULL && store_open(runner->cfg->data_dir, &w.st, &err) < 0) {
			log_warn("queue: store: %s", err.msg);
			w.st = NULL;
		}
		if (w.st != NULL)
			got = queue_run_once(&w);
		if (w.st != NULL)
			queue_report_round(w.st);
		if (got <= 0) {
			queue_worker_idle(&w);
			if (!queue_sleep(&seen))
				break;
		}
	}
	queue_worker_idle(&w);
	pthread_mutex_lock(&runner->lock);
	runner->batches[(size_t)(uintptr_t)arg] = NULL;
	pthread_mutex_unlock(&runner->lock);
	if (w.st != NULL)
		store_close(&w.st);
	smtpc_cache_free(w.cache);
	store_queue_flight_free(w.flight);
	free(w.b);
	queue_thread_done();
	return NULL;
}

/* Claims this node held when it stopped (or died) are free again now,
 * not when their leases end: the node's name is its myhostname. */
static int
queue_release_own(const char *node, struct yj_err *err)
{
	struct store *st;
	int ret;

	if (store_open(runner->cfg->data_dir, &st, err) < 0)
		return -1;
	ret = store_queue_release_node(st, node, err);
	store_close(&st);
	if (ret > 0)
		log_info("queue: released %d recipients this node had claimed", ret);
	return ret < 0 ? -1 : 1;
}

/* The relayhost's password: the key, or the first line of the file
 * relayhost_password_file names (kept out of youju.conf). */
static int
queue_relay_password(const struct config *cfg, char *out, size_t outlen, struct yj_err *err)
{
	char *path;
	FILE *f;
	int ret = 1;

	snprintf(out, outlen, "%s", cfg->relayhost_password);
	if (cfg->relayhost_password_file[0] == '\0')
		return 1;
	path = config_path(cfg, cfg->relayhost_password_file);
	if ((f = fopen(path, "re")) == NULL) {
		ret = yj_err_errno(err, "relayhost_password_file %s", path);
	} else {
		if (fgets(out, (int)outlen, f) == NULL)
			out[0] = '\0';
		out[strcspn(out, "\r\n")] = '\0';
		fclose(f);
	}
	free(path);
	return ret;
}

/* Values the client reads but the config's table cannot check. */
static int
queue_check_config(const struct config *cfg, struct yj_err *err)
{
	const char *pref = cfg->smtp_address_preference;

	if (strcmp(pref, "ipv4") != 0 && strcmp(pref, "ipv6") != 0 && strcmp(pref, "any") != 0)
		return yj_err_set(err, "smtp_address_preference: '%s' is not ipv4, ipv6 or any",
				  pref);
	if (smtpc_tls_policy_check(cfg->smtp_tls_policy, err) < 0)
		return -1;
	return 1;
}

/* The client's TLS context, trusting smtp_tls_ca_file or the system's
 * CA store. */
static SSL_CTX *
queue_tls_ctx(const struct config *cfg, struct yj_err *err)
{
	char *ca = cfg->smtp_tls_ca_file[0] != '\0' ? config_path(cfg, cfg->smtp_tls_ca_file)
						      : NULL;
	SSL_CTX *tls = tls_client_ctx_new(ca, err);

	free(ca);
	return tls;
}

/* This node queued mail (deliver.h's hook); report: with a notice owed. */
static void
queue_queued(bool report)
{
	if (report && runner != NULL)
		queue_report_due();
	queue_wake();
}

/* Starts one of the runner's threads, counted as running. */
static bool
queue_thread_start(pthread_t *t, void *(*fn)(void *), void *arg)
{
	bool ok;

	pthread_mutex_lock(&runner->lock);
	runner->running++;
	pthread_mutex_unlock(&runner->lock);
	ok = pthread_create(t, NULL, fn, arg) == 0;
	if (!ok)
		queue_thread_done();
	return ok;
}


/* Pokes at the FIFO (`youju queue retry`) wake the idle threads. */
static void *
queue_waker(void *arg)
{
	pthread_setname_np(pthread_self(), "yj-queue-wake");
	while (!queue_stopping()) {
		if (queue_fifo_wait(runner->fifo, 250))
			queue_wake();
	}
	queue_thread_done();
	return arg;
}

/* Without the FIFO, changes from the CLI are seen at the next look. */
static void
queue_waker_start(const struct config *cfg)
{
	struct yj_err err;

	if ((runner->fifo = queue_fifo_open(cfg->data_dir, &err)) < 0) {
		log_warn("queue: %s; youju queue retry takes effect within queue_run_delay",
			 err.msg);
		return;
	}
	if (!queue_thread_start(&runner->waker, queue_waker, NULL)) {
		close(runner->fifo);
		runner->fifo = -1;
	}
}

int
queue_start(const struct config *cfg, struct yj_err *err)
{
	SSL_CTX *tls;

	if (queue_check_config(cfg, err) < 0 || (tls = queue_tls_ctx(cfg, err)) == NULL)
		return -1;
	if ((runner = calloc(1, sizeof(*runner))) == NULL)
		log_fatal("out of memory");
	runner->cfg = cfg;
	runner->fifo = -1;
	runner->smtp = (struct smtpc_config){
		.myhostname = cfg->myhostname, .port = (int)cfg->smtp_port,
		.bind_address = cfg->smtp_bind_address,
		.bind_address6 = cfg->smtp_bind_address6,
		.address_preference = cfg->smtp_address_preference,
		.connect_timeout_ms = (int)cfg->smtp_connect_timeout * 1000,
		.timeout_ms = (int)cfg->smtp_timeout * 1000,
		.data_init_timeout_ms = (int)cfg->smtp_data_init_timeout * 1000,
		.data_xfer_timeout_ms = (int)cfg->smtp_data_xfer_timeout * 1000,
		.data_done_timeout_ms = (int)cfg->smtp_data_done_timeout * 1000, .tls = tls,
		.tls_policy = cfg->smtp_tls_policy, .relayhost = cfg->relayhost,
		.relay_username = cfg->relayhost_username,
		.relay_password = runner->relay_password,
	};
	snprintf(runner->node, sizeof(runner->node), "%.*s", STORE_NODE_MAX, cfg->myhostname);
	if (queue_relay_password(cfg, runner->relay_password, sizeof(runner->relay_password),
				 err) < 0) {
		SSL_CTX_free(tls);
		free(runner);
		runner = NULL;
		return -1;
	}
	if (queue_release_own(runner->node, err) < 0) {
		SSL_CTX_free(tls);
		free(runner);
		runner = NULL;
		return -1;
	}
	pthread_mutex_init(&runner->lock, NULL);
	pthread_cond_init(&runner->cond, NULL);
	runner->lease = cfg->queue_lease_time;
	for (long i = 0; i < cfg->queue_run_threads && i < QUEUE_THREADS_MAX; i++) {
		if (!queue_thread_start(&runner->threads[i], queue_thread, (void *)(uintptr_t)i)) {
			log_warn("queue: could only start %ld threads", i);
			break;
		}
		runner->n_threads++;
	}
	/* With no delivery threads (queue_run_threads 0) there is nothing
	 * to renew. */
	runner->keeper_started = runner->n_threads > 0 &&
				 queue_thread_start(&runner->keeper, queue_keeper, NULL);
	if (runner->n_threads > 0 && !runner->keeper_started)
		log_warn("queue: no thread renews claims; a transaction longer than "
			 "queue_lease_time may be sent twice");
	queue_waker_start(cfg);
	deliver_set_queued_hook(queue_queued);
	store_queue_watch(queue_wake);
	return 1;
}

void
queue_wake(void)
{
	if (runner == NULL)
		return;
	pthread_mutex_lock(&runner->lock);
	runner->wakes++;
	pthread_cond_broadcast(&runner->cond);
	pthread_mutex_unlock(&runner->lock);
}

bool
queue_stop(void)
{
	struct timespec until;
	size_t left;

	if (runner == NULL)
		return true;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += QUEUE_STOP_WAIT;
	pthread_mutex_lock(&runner->lock);
	runner->stopping = true;
	pthread_cond_broadcast(&runner->cond);
	while (runner->running > 0 &&
	       pthread_cond_timedwait(&runner->cond, &runner->lock, &until) == 0) {
	}
	left = runner->running;
	pthread_mutex_unlock(&runner->lock);
	if (left > 0) {
		log_info("queue: %zu delivery threads still in a transaction; their recipients "
			 "are tried again at the next start", left);
		return false;
	}
	for (size_t i = 0; i < runner->n_threads; i++)
		pthread_join(runner->threads[i], NULL);
	if (runner->keeper_started)
		pthread_join(runner->keeper, NULL);
	if (runner->fifo >= 0) {
		pthread_join(runner->waker, NULL);
		close(runner->fifo);
	}
	SSL_CTX_free(runner->smtp.tls);
	pthread_mutex_destroy(&runner->lock);
	pthread_cond_destroy(&runner->cond);
	free(runner);
	runner = NULL;
	return true;
}
