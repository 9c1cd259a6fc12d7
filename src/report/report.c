/* report.c - DMARC aggregate reports (report.h). */
#include "report/report.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/util.h"
#include "deliver/deliver.h"
#include "deliver/resolve.h"
#include "mailauth/dkim.h"
#include "mailauth/dkim_keys.h"
#include "mailauth/dkim_tag.h"
#include "mailauth/dmarc_report.h"

#define REPORT_RCPTS_MAX 8		/* as DMARC_URIS_MAX */
#define REPORT_MSG_MAX (32 * 1024 * 1024)
#define REPORT_ADDR_MAX 256

/* ---- the rows of one domain ---- */

struct report_rows {
	struct store_dmarc_row *v;
	size_t n, cap;
};

static void
report_rows_add(void *ctx, const struct store_dmarc_row *row)
{
	struct report_rows *rows = ctx;

	if (rows->n == rows->cap) {
		rows->cap = rows->cap * 2 + 16;
		rows->v = realloc(rows->v, rows->cap * sizeof(*rows->v));
		if (rows->v == NULL)
			log_fatal("out of memory");
	}
	rows->v[rows->n++] = *row;
}

struct report_domains {
	char (*v)[256];
	size_t n, cap;
};

static void
report_domains_add(void *ctx, const char *domain)
{
	struct report_domains *d = ctx;

	if (d->n == d->cap) {
		d->cap = d->cap * 2 + 16;
		d->v = realloc(d->v, d->cap * sizeof(*d->v));
		if (d->v == NULL)
			log_fatal("out of memory");
	}
	snprintf(d->v[d->n++], sizeof(d->v[0]), "%s", domain);
}

/* ---- one report ---- */

struct report_job {
	const struct config *cfg;
	struct store *st;
	const struct ma_resolver *r;
	char from[REPORT_ADDR_MAX];	/* dmarc_report_from */
	const char *receiver;		/* its domain */
	time_t now;
};

/* The report's XML, gzipped, for rows of pol; *begin and *end get the
 * time the rows cover. */
static int
report_gz(const struct report_job *job, const struct store_dmarc_policy *pol,
	  const struct report_rows *rows, const char *report_id, struct buf *gz,
	  long long *begin, long long *end)
{
	struct dmarc_report_row *xr = calloc(rows->n + 1, sizeof(*xr));
	struct dmarc_report_meta meta = { job->receiver, job->from, report_id, 0, 0 };
	struct dmarc_report_policy xp = { pol->domain, pol->adkim, pol->aspf, pol->p, pol->sp,
					  pol->pct };
	struct buf xml;
	int rc;

	if (xr == NULL)
		log_fatal("out of memory");
	meta.begin = rows->v[0].first_seen;
	for (size_t i = 0; i < rows->n; i++) {
		const struct store_dmarc_row *s = &rows->v[i];

		xr[i] = (struct dmarc_report_row){ s->source_ip, s->count, s->disposition,
						   s->dkim_aligned, s->spf_aligned, s->override,
						   s->header_from, s->dkim, s->spf_domain,
						   s->spf_result };
		meta.begin = s->first_seen < meta.begin ? s->first_seen : meta.begin;
		meta.end = s->last_seen > meta.end ? s->last_seen : meta.end;
	}
	buf_init(&xml, DMARC_REPORT_XML_MAX);
	rc = dmarc_report_xml(&meta, &xp, xr, rows->n, &xml) == 1 &&
	     dmarc_report_gzip(xml.data, xml.len, gz) == 1 ? 1 : -1;
	*begin = meta.begin;
	*end = meta.end;
	buf_free(&xml);
	free(xr);
	return rc;
}

/* The attachment in base64, 76 columns (RFC 2045 6.8). */
static int
report_base64(struct buf *msg, const struct buf *gz)
{
	char *b64 = malloc(gz->len / 3 * 4 + 8);
	size_t len;
	int rc = 1;

	if (b64 == NULL)
		log_fatal("out of memory");
	dkim_base64_encode((const unsigned char *)gz->data, gz->len, b64);
	len = strlen(b64);
	for (size_t i = 0; i < len && rc == 1; i += 76)
		rc = buf_printf(msg, "%.*s\r\n", (int)(len - i < 76 ? len - i : 76), b64 + i);
	free(b64);
	return rc;
}

/* The message (7.2.1.1): header section, then a text part and the
 * report as application/gzip. *hdr_len gets where the body starts. */
static int
report_message(const struct report_job *job, const char *domain, const char *to,
	       const char *report_id, const char *fname, const struct buf *gz, struct buf *msg,
	       size_t *hdr_len)
{
	char date[64], boundary[32], mid[32];
	int rc;

	util_rfc5322_date(job->now, date, sizeof(date));
	util_random_id(boundary, 24);
	util_random_id(mid, 20);
	rc = buf_printf(msg, "From: <%s>\r\nTo: %s\r\nDate: %s\r\n"
			"Subject: Report Domain: %s Submitter: %s Report-ID: <%s>\r\n"
			"Message-ID: <%s@%s>\r\nMIME-Version: 1.0\r\n"
			"Content-Type: multipart/mixed; boundary=\"%s\"\r\n",
			job->from, to, date, domain, job->receiver, report_id, mid, job->receiver,
			boundary);
	*hdr_len = msg->len;
	rc &= buf_printf(msg, "\r\n--%s\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
			 "This is a DMARC aggregate report (RFC 7489) from %s for %s.\r\n"
			 "\r\n--%s\r\nContent-Type: application/gzip\r\n"
			 "Content-Transfer-Encoding: base64\r\n"
			 "Content-Disposition: attachment; filename=\"%s\"\r\n\r\n",
			 boundary, job->receiver, domain, boundary, fname) == 1;
	rc &= report_base64(msg, gz) == 1;
	rc &= buf_printf(msg, "--%s--\r\n", boundary) == 1;
	return rc ? 1 : -1;
}

/* DKIM-Signature lines for the message, "" if the sending domain has no
 * key. */
static void
report_sign(const struct report_job *job, const struct buf *msg, size_t hdr_len,
	    struct buf *sig)
{
	struct dkim_sign_key keys[2];
	char sel[2][DKIM_SELECTOR_MAX + 1];
	struct dkim_sign_opts opts = { .keys = keys };
	struct dkim_signer *s;
	struct yj_err err;
	int n = dkim_keys_cached(job->cfg->data_dir, job->receiver, keys, sel, &err);

	if (n <= 0) {
		if (n < 0)
			log_error("dmarc report: dkim keys of %s: %s", job->receiver, err.msg);
		return;
	}
	opts.n_keys = (size_t)n;
	s = dkim_signer_new(&opts, msg->data, hdr_len);
	dkim_signer_body(s, msg->data + hdr_len + 2, msg->len - hdr_len - 2);
	if (dkim_signer_finish(s, sig, &err) < 0) {
		log_error("dmarc report: dkim sign: %s", err.msg);
		buf_reset(sig);
	}
	dkim_signer_free(s);
	for (int i = 0; i < n; i++)
		EVP_PKEY_free(keys[i].pkey);
}

/* The recipients: local accounts and remote addresses, from the rua
 * addresses that passed. */
struct report_rcpts {
	struct deliver_local local[REPORT_RCPTS_MAX * 4];
	char local_addr[REPORT_RCPTS_MAX * 4][STORE_ADDRESS_MAX + 1];
	size_t n_local;
	const char *relay[REPORT_RCPTS_MAX * 4];
	char relay_addr[REPORT_RCPTS_MAX * 4][STORE_ADDRESS_MAX + 1];
	size_t n_relay;
};

/* Adds one address: our own domains' accounts and aliases resolved, any
 * other address queued. Returns 1, 0 unknown here, -1 store failure. */
static int
report_rcpt_add(const struct report_job *job, const char *addr, struct report_rcpts *rc)
{
	struct resolve_result r = { 0 };
	const char *at = strrchr(addr, '@');
	char local[STORE_ADDRESS_MAX + 1];
	int ret = 1;

	if (at == NULL || at == addr || (size_t)(at - addr) > STORE_ADDRESS_MAX)
		return 0;
	snprintf(local, sizeof(local), "%.*s", (int)(at - addr), addr);
	if (resolve_rcpt(job->st, job->cfg, local, at + 1, &r) < 0)
		return -1;
	if (r.status == RESOLVE_NOT_LOCAL) {
		r.n_remote = 0;
		if (rc->n_relay < REPORT_RCPTS_MAX * 4) {
			snprintf(rc->relay_addr[rc->n_relay], sizeof(rc->relay_addr[0]), "%s", addr);
			rc->relay[rc->n_relay] = rc->relay_addr[rc->n_relay];
			rc->n_relay++;
		}
	} else if (r.status != RESOLVE_OK) {
		ret = 0;
	}
	for (size_t i = 0; ret == 1 && i < r.n_local && rc->n_local < REPORT_RCPTS_MAX * 4; i++) {
		snprintf(rc->local_addr[rc->n_local], sizeof(rc->local_addr[0]), "%s",
			 r.local[i].address);
		rc->local[rc->n_local].account_id = r.local[i].account_id;
		rc->local[rc->n_local].address = rc->local_addr[rc->n_local];
		rc->n_local++;
	}
	for (size_t i = 0; ret == 1 && i < r.n_remote && rc->n_relay < REPORT_RCPTS_MAX * 4; i++) {
		snprintf(rc->relay_addr[rc->n_relay], sizeof(rc->relay_addr[0]), "%s", r.remote[i]);
		rc->relay[rc->n_relay] = rc->relay_addr[rc->n_relay];
		rc->n_relay++;
	}
	resolve_result_free(&r);
	return ret;
}

/* The rua addresses that may get a report of msg_size bytes about
 * domain: into rc, and their list into to. Returns how many, or -1 if a
 * DNS failure left one undecided and none passed (try again later). */
static int
report_rcpts(const struct report_job *job, const struct store_dmarc_policy *pol,
	     size_t msg_size, struct report_rcpts *rc, char *to, size_t tolen)
{
	const char *cur = pol->rua;
	char addr[REPORT_ADDR_MAX];
	unsigned long long max;
	int n = 0, temp = 0;

	to[0] = '\0';
	while (dmarc_report_next_rua(&cur, addr, sizeof(addr), &max) == 1) {
		const char *at = strrchr(addr, '@');
		int ok = at != NULL ? dmarc_report_authorized(job->r, pol->domain, at + 1) : 0;

		if (ok <= 0) {
			temp += ok < 0;
			log_info("dmarc report: domain=%s rua=<%s> %s", pol->domain, addr,
				 ok < 0 ? "skipped: DNS failure" : "refused: not authorized (RFC 7489 7.1)");
			continue;
		}
		if (max > 0 && msg_size > max) {
			log_info("dmarc report: domain=%s rua=<%s> skipped: %zu bytes over its !size %llu",
				 pol->domain, addr, msg_size, max);
			continue;
		}
		if (report_rcpt_add(job, addr, rc) <= 0) {
			log_info("dmarc report: domain=%s rua=<%s> skipped: unknown here", pol->domain,
				 addr);
			continue;
		}
		snprintf(to + strlen(to), tolen - strlen(to), "%s<%s>", n > 0 ? ", " : "", addr);
		n++;
	}
	return n == 0 && temp > 0 ? -1 : n;
}

/* Writes the message to a blob and delivers it from the null sender (a
 * report is not to be bounced back, RFC 7489 7.2.1.1's advice against
 * loops). Returns 1 or -1. */
static int
report_deliver(const struct report_job *job, const struct report_rcpts *rc, const char *id,
	       const struct buf *sig, const struct buf *msg, struct yj_err *err)
{
	struct store_blob *blob = calloc(1, sizeof(*blob));
	struct deliver_envelope env = { .id = id, .sender = "" };
	int ret;

	if (blob == NULL)
		log_fatal("out of memory");
	env.local = rc->local;
	env.n_local = rc->n_local;
	env.relay = rc->relay;
	env.n_relay = rc->n_relay;
	env.headers = sig->len > 0 ? sig->data : NULL;
	env.data = msg->data;		/* the blob's bytes */
	env.len = msg->len;
	if (store_blob_create(job->st, blob, err) < 0) {
		free(blob);
		return -1;
	}
	if (store_blob_write(blob, msg->data, msg->len, err) < 0) {
		store_blob_abort(blob);
		free(blob);
		return -1;
	}
	ret = deliver_message(job->st, &env, blob, err);
	free(blob);
	return ret;
}

enum report_outcome { REPORT_SENT, REPORT_DROPPED, REPORT_KEPT };

/* One domain's report: built, addressed, signed, delivered, and its rows
 * then taken out of the store. */
static enum report_outcome
report_domain(const struct report_job *job, const char *domain, int64_t before_day,
	      struct yj_err *err)
{
	struct store_dmarc_policy pol;
	struct report_rows rows = { 0 };
	struct report_rcpts *rc = calloc(1, sizeof(*rc));
	struct buf gz, msg, sig;
	char report_id[128], rnd[12], fname[700], to[2048];
	long long begin = 0, end = 0;
	size_t hdr_len = 0;
	enum report_outcome out = REPORT_KEPT;
	int n;

	if (rc == NULL)
		log_fatal("out of memory");
	buf_init(&gz, REPORT_MSG_MAX);
	buf_init(&msg, REPORT_MSG_MAX);
	buf_init(&sig, 8192);
	util_random_id(rnd, 10);
	if (store_dmarc_rows(job->st, domain, before_day, &pol, report_rows_add, &rows, err) <= 0 ||
	    rows.n == 0)
		goto done;
	snprintf(report_id, sizeof(report_id), "%s.%lld.%s", domain,
		 (long long)rows.v[0].day, rnd);
	if (report_gz(job, &pol, &rows, report_id, &gz, &begin, &end) < 0 ||
	    dmarc_report_filename(job->receiver, domain, begin, end, fname, sizeof(fname)) < 0 ||
	    report_message(job, domain, "undisclosed-recipients:;", report_id, fname, &gz, &msg,
			   &hdr_len) < 0) {
		yj_err_set(err, "report for %s too large", domain);
		goto done;
	}
	n = report_rcpts(job, &pol, msg.len, rc, to, sizeof(to));
	if (n < 0)
		goto done;
	if (n == 0) {
		out = store_dmarc_done(job->st, domain, before_day, NULL, NULL, 0, job->now, err) < 0
			? REPORT_KEPT : REPORT_DROPPED;
		goto done;
	}
	/* Again, now with the To: field naming the recipients. */
	buf_reset(&msg);
	if (report_message(job, domain, to, report_id, fname, &gz, &msg, &hdr_len) < 0)
		goto done;
	report_sign(job, &msg, hdr_len, &sig);
	if (report_deliver(job, rc, rnd, &sig, &msg, err) < 0 ||
	    store_dmarc_done(job->st, domain, before_day, report_id, to, job->now / 86400,
			     job->now, err) < 0)
		goto done;
	log_info("dmarc report: domain=%s report_id=%s rows=%zu size=%zu to=%s status=sent",
		 domain, report_id, rows.n, msg.len, to);
	out = REPORT_SENT;
done:
	if (out == REPORT_KEPT)
		log_info("dmarc report: domain=%s kept for the next run", domain);
	free(rows.v);
	free(rc);
	buf_free(&gz);
	buf_free(&msg);
	buf_free(&sig);
	return out;
}

/* dmarc_report_from, or noreply-dmarc@ the domain of myhostname. */
static void
report_from(const struct config *cfg, char *out, size_t outlen)
{
	const char *dot = strchr(cfg->myhostname, '.');

	if (cfg->dmarc_report_from[0] != '\0')
		snprintf(out, outlen, "%s", cfg->dmarc_report_from);
	else
		snprintf(out, outlen, "noreply-dmarc@%s",
			 dot != NULL && strchr(dot + 1, '.') != NULL ? dot + 1 : cfg->myhostname);
}

int
report_run(const struct config *cfg, struct store *st, const struct ma_resolver *r,
	   bool now_too, struct report_stats *stats, struct yj_err *err)
{
	struct report_job job = { .cfg = cfg, .st = st, .r = r, .now = time(NULL) };
	struct report_domains domains = { 0 };
	int64_t today = (int64_t)(job.now / 86400), before = now_too ? INT64_MAX : today;
	int64_t sent = store_dmarc_sent_count(st, today, err);
	const char *at;

	memset(stats, 0, sizeof(*stats));
	report_from(cfg, job.from, sizeof(job.from));
	at = strrchr(job.from, '@');
	job.receiver = at != NULL ? at + 1 : job.from;
	if (sent < 0 || store_dmarc_domains(st, before, report_domains_add, &domains, err) < 0) {
		free(domains.v);
		return -1;
	}
	for (size_t i = 0; i < domains.n; i++) {
		if (sent >= cfg->dmarc_report_max_per_day) {
			log_info("dmarc report: %zu domains left for tomorrow: "
				 "dmarc_report_max_per_day (%ld) reached", domains.n - i,
				 cfg->dmarc_report_max_per_day);
			stats->kept += domains.n - i;
			break;
		}
		switch (report_domain(&job, domains.v[i], before, err)) {
		case REPORT_SENT:
			stats->sent++;
			sent++;
			break;
		case REPORT_DROPPED:
			stats->dropped++;
			break;
		case REPORT_KEPT:
			stats->kept++;
			break;
		}
	}
	free(domains.v);
	return 1;
}

/* ---- youjud's thread ---- */

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	bool running, stopping;
	const struct config *cfg;
} reporter = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

/* Sleeps secs, or until report_stop(). Returns false when stopping. */
static bool
report_sleep(long secs)
{
	struct timespec until;
	bool go_on;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += secs;
	pthread_mutex_lock(&reporter.lock);
	while (!reporter.stopping &&
	       pthread_cond_timedwait(&reporter.cond, &reporter.lock, &until) == 0) {
	}
	go_on = !reporter.stopping;
	pthread_mutex_unlock(&reporter.lock);
	return go_on;
}

static void *
report_thread(void *arg)
{
	const struct config *cfg = reporter.cfg;
	long first = cfg->dmarc_report_interval < 60 ? cfg->dmarc_report_interval : 60;

	(void)arg;
	pthread_setname_np(pthread_self(), "yj-report");
	for (bool go_on = report_sleep(first); go_on;
	     go_on = report_sleep(cfg->dmarc_report_interval)) {
		struct store *st;
		struct report_stats stats;
		struct yj_err err;

		if (store_open(cfg->data_dir, &st, &err) < 0) {
			log_warn("dmarc report: store: %s", err.msg);
			continue;
		}
		if (report_run(cfg, st, ma_resolver_dns(), false, &stats, &err) < 0)
			log_warn("dmarc report: %s", err.msg);
		else if (stats.sent + stats.dropped + stats.kept > 0)
			log_info("dmarc report: run: sent=%zu dropped=%zu kept=%zu", stats.sent,
				 stats.dropped, stats.kept);
		store_close(&st);
	}
	return NULL;
}

int
report_start(const struct config *cfg, struct yj_err *err)
{
	if (cfg->dmarc_report_interval == 0)
		return 1;
	reporter.cfg = cfg;
	reporter.stopping = false;
	if (pthread_create(&reporter.thread, NULL, report_thread, NULL) != 0)
		return yj_err_set(err, "cannot start the DMARC report thread");
	reporter.running = true;
	return 1;
}

void
report_stop(void)
{
	if (!reporter.running)
		return;
	pthread_mutex_lock(&reporter.lock);
	reporter.stopping = true;
	pthread_cond_broadcast(&reporter.cond);
	pthread_mutex_unlock(&reporter.lock);
	pthread_join(reporter.thread, NULL);
	reporter.running = false;
}
