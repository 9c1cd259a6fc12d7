/* queue_runner.c - the delivery threads. */
#include "queue/queue.h"

#include <pthread.h>
#include <stdbool.h>
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
	pthread_t threads[QUEUE_THREADS_MAX];
	size_t n_threads;
	size_t running;			/* threads not yet finished, under lock */
	/* connections open per destination domain, under lock; one entry
	 * per thread at most, so a short list */
	struct queue_dest {
		char domain[256];
		long n;
	} dests[QUEUE_THREADS_MAX];
};

static struct queue_runner *runner;

/* The items one thread claimed, grouped by message and domain. */
struct queue_batch {
	struct store_queue_item items[QUEUE_CLAIM_MAX];
	size_t n;
};

static void
queue_collect(void *ctx, const struct store_queue_item *item)
{
	struct queue_batch *b = ctx;

	if (b->n < QUEUE_CLAIM_MAX)
		b->items[b->n++] = *item;
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

/* Records one recipient's answer. Addresses and the remote reply are
 * other people's bytes: logged through log_value(). A failure (and a
 * relayed NOTIFY=SUCCESS) stays as a row that queue_report() turns into
 * the notice to the sender. */
static void
queue_record(struct store *st, const struct store_queue_item *it, const struct smtpc_rcpt *r)
{
	const struct config *cfg = runner->cfg;
	int64_t now = (int64_t)time(NULL);
	char from[LOG_VALUE_MAX], to[LOG_VALUE_MAX], reply[4 * SMTPC_REPLY_MAX + 4];
	struct yj_err err;
	int ret;

	log_value(from, sizeof(from), it->sender);
	log_value(to, sizeof(to), it->recipient);
	log_value(reply, sizeof(reply), r->reply);
	if (r->code / 100 == 2 && queue_wants_relayed(it, r)) {
		log_info("queue: from=<%s> to=<%s> status=sent notify=success reply=%s", from, to,
			 reply);
		ret = store_queue_sent(st, it->id, runner->node, r->reply, r->remote_mta, &err);
		queue_report_due();
	} else if (r->code / 100 == 2) {
		log_info("queue: from=<%s> to=<%s> status=sent reply=%s", from, to, reply);
		ret = store_queue_done(st, it->id, runner->node, &err);
	} else if (r->code >= 500 || now - it->created >= (it->sender[0] == '\0' ?
			cfg->bounce_queue_lifetime : cfg->maximal_queue_lifetime)) {
		log_info("queue: from=<%s> to=<%s> status=failed reply=%s", from, to, reply);
		ret = store_queue_fail(st, it->id, runner->node, r->reply, r->remote_mta, &err);
		queue_report_due();
	} else {
		long delay = queue_backoff(cfg, it->attempts);

		log_info("queue: from=<%s> to=<%s> status=deferred retry=%lds reply=%s", from, to,
			 delay, reply);
		ret = store_queue_defer(st, it->id, runner->node, now + delay, r->reply, &err);
	}
	if (ret < 0)
		log_warn("queue: to=<%s> recording the answer: %s", to, err.msg);
	else if (ret == 0)
		log_warn("queue: to=<%s> claim lapsed before its answer was recorded", to);
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

/* Sends items[0..n) (one message, one domain) and records the answers. */
static void
queue_send_group(struct store *st, struct smtpc_cache *cache, const struct store_queue_item *items,
		 size_t n)
{
	struct store_queue_message m;
	struct smtpc_rcpt *r = calloc(n, sizeof(*r));
	struct yj_err err;
	int fd = -1, ret;

	if (r == NULL)
		log_fatal("out of memory");
	ret = store_queue_message_get(st, items[0].message_id, &m, &err);
	if (ret == 1 && store_queue_open_blob(st, &m, &fd, &err) < 0)
		ret = -1;
	if (ret <= 0) {
		log_warn("queue: message %lld: %s", (long long)items[0].message_id,
			 ret == 0 ? "gone" : err.msg);
		for (size_t i = 0; i < n; i++) {
			r[i].code = 451;
			snprintf(r[i].reply, sizeof(r[i].reply), "451 4.3.0 local error reading "
				 "the queued message");
			queue_record(st, &items[i], &r[i]);
		}
		if (ret == 1)
			store_queue_message_free(&m);
		free(r);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		r[i].address = items[i].recipient;
		r[i].notify = items[i].notify;
		r[i].orcpt = items[i].orcpt;
	}
	smtpc_send(&runner->smtp, cache, items[0].domain,
		   &(struct smtpc_message){ .sender = m.sender, .envid = m.envid, .ret = m.ret,
					    .body = m.body, .smtputf8 = m.smtputf8,
					    .header = m.header, .header_len = m.header_len,
					    .fd = fd },
		   r, n);
	for (size_t i = 0; i < n; i++)
		queue_record(st, &items[i], &r[i]);
	close(fd);
	store_queue_message_free(&m);
	free(r);
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

/* Gives back the claimed items from i on, unsent. */
static void
queue_release_rest(struct store *st, const struct queue_batch *b, size_t i)
{
	struct yj_err err;

	for (; i < b->n; i++) {
		if (store_queue_release(st, b->items[i].id, runner->node, &err) < 0)
			log_warn("queue: releasing %s: %s", b->items[i].recipient, err.msg);
	}
}

/* Extends the claims on items from i on for another lease, so that a
 * long batch keeps them; those whose claim lapsed already (another may
 * be sending them) are dropped from the batch. -1: the store failed. */
static int
queue_renew_rest(struct store *st, struct queue_batch *b, size_t i, long lease)
{
	int64_t ids[QUEUE_CLAIM_MAX];
	bool renewed[QUEUE_CLAIM_MAX];
	size_t n = b->n - i, kept = i;
	struct yj_err err;

	for (size_t k = 0; k < n; k++)
		ids[k] = b->items[i + k].id;
	if (store_queue_renew(st, runner->node, ids, n, (int64_t)time(NULL) + lease, renewed,
			      &err) < 0) {
		log_warn("queue: renewing claims: %s", err.msg);
		return -1;
	}
	for (size_t k = 0; k < n; k++) {
		if (renewed[k])
			b->items[kept++] = b->items[i + k];
		else
			log_warn("queue: claim on %s lapsed before it was sent; left to its new "
				 "holder", b->items[i + k].recipient);
	}
	b->n = kept;
	return 1;
}

/* One claim and its sending. Returns how many were claimed, -1 error. */
static int
queue_run_once(struct store *st, struct smtpc_cache *cache, struct queue_batch *b)
{
	/* Long enough for every transaction of the batch at smtp_timeout. */
	long lease = 4 * runner->cfg->smtp_timeout + 60;
	struct yj_err err;
	time_t started;
	int got;

	b->n = 0;
	started = time(NULL);
	got = store_queue_claim(st, runner->node, (int64_t)time(NULL), lease, QUEUE_CLAIM_MAX,
				queue_collect, b, &err);
	if (got < 0) {
		log_warn("queue: claim: %s", err.msg);
		return -1;
	}
	qsort(b->items, b->n, sizeof(b->items[0]), queue_item_cmp);
	for (size_t i = 0; i < b->n;) {
		struct queue_dest *dest;
		size_t j = i + 1;

		/* Stopping, the rest goes back unsent. Past half the lease,
		 * the rest is renewed (once a lease ends another thread or node
		 * may claim it and send it too), or given back if that fails. */
		if (queue_stopping()) {
			queue_release_rest(st, b, i);
			break;
		}
		if (time(NULL) - started > lease / 2) {
			if (queue_renew_rest(st, b, i, lease) < 0) {
				queue_release_rest(st, b, i);
				break;
			}
			started = time(NULL);
			if (i == b->n)
				break;
		}

		while (j < b->n && queue_item_cmp(&b->items[i], &b->items[j]) == 0)
			j++;
		/* the cached session counts as one of its domain's while open */
		dest = queue_dest_enter(b->items[i].domain);
		queue_send_group(st, cache, &b->items[i], j - i);
		if (j == b->n || strcmp(b->items[j].domain, b->items[i].domain) != 0)
			smtpc_cache_close(cache);
		queue_dest_leave(dest);
		i = j;
	}
	return got;
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

static bool
queue_sleep(unsigned *seen)
{
	struct timespec until;
	bool stopping;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += runner->cfg->queue_run_delay;
	pthread_mutex_lock(&runner->lock);
	while (!runner->stopping && runner->wakes == *seen) {
		if (pthread_cond_timedwait(&runner->cond, &runner->lock, &until) != 0)
			break;
	}
	*seen = runner->wakes;
	stopping = runner->stopping;
	pthread_mutex_unlock(&runner->lock);
	return !stopping;
}

static void *
queue_thread(void *arg)
{
	struct queue_batch *b = malloc(sizeof(*b));
	struct smtpc_cache *cache = smtpc_cache_new();
	struct store *st = NULL;
	struct yj_err err;
	unsigned seen = 0;

	if (b == NULL)
		log_fatal("out of memory");
	while (!queue_stopping()) {
		int got = 0;

		if (st == NULL && store_open(runner->cfg->data_dir, &st, &err) < 0) {
			log_warn("queue: store: %s", err.msg);
			st = NULL;
		}
		if (st != NULL)
			got = queue_run_once(st, cache, b);
		if (st != NULL)
			queue_report_round(st);
		if (got <= 0 && !queue_sleep(&seen))
			break;
	}
	if (st != NULL)
		store_close(&st);
	smtpc_cache_free(cache);
	free(b);
	pthread_mutex_lock(&runner->lock);
	runner->running--;
	pthread_cond_broadcast(&runner->cond);
	pthread_mutex_unlock(&runner->lock);
	return arg;
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

int
queue_start(const struct config *cfg, struct yj_err *err)
{
	SSL_CTX *tls;

	if (queue_check_config(cfg, err) < 0 || (tls = queue_tls_ctx(cfg, err)) == NULL)
		return -1;
	if ((runner = calloc(1, sizeof(*runner))) == NULL)
		log_fatal("out of memory");
	runner->cfg = cfg;
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
	for (long i = 0; i < cfg->queue_run_threads && i < QUEUE_THREADS_MAX; i++) {
		if (pthread_create(&runner->threads[i], NULL, queue_thread, NULL) != 0) {
			log_warn("queue: could only start %ld threads", i);
			break;
		}
		runner->n_threads++;
		pthread_mutex_lock(&runner->lock);
		runner->running++;
		pthread_mutex_unlock(&runner->lock);
	}
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
	SSL_CTX_free(runner->smtp.tls);
	pthread_mutex_destroy(&runner->lock);
	pthread_cond_destroy(&runner->cond);
	free(runner);
	runner = NULL;
	return true;
}
