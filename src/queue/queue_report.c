/* queue_report.c - the notices the queue owes senders (queue.h):
 * bounces, delay notices and success reports (RFC 3461, 3464).
 *
 * The rows say what is owed: a failed row not yet notified, a sent row
 * (NOTIFY=SUCCESS to a server without DSN), a delivered or expanded row
 * (NOTIFY=SUCCESS to a mailbox or an alias here), a message past
 * delay_warning_time not yet warned. A notice is composed from the rows
 * of one message and stored with deliver_generated(), whose transaction
 * also marks the rows it reports on; so after a crash at any point the
 * notice is either stored with its marks or not at all, and the next
 * round makes it. Two threads or nodes that compose the same notice
 * race for the marks: the second one's transaction fails, and its notice
 * is dropped.
 */
#include "queue/queue.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/util.h"
#include "deliver/deliver.h"
#include "queue/dsn.h"
#include "store/store.h"

/* Messages looked at per round. */
#define REPORT_MESSAGES_MAX 100
/* Recipient rows of one message in one notice; the rest wait a round. */
#define REPORT_RCPTS_MAX 1000
/* The original returned whole up to this size (RET=FULL), else its
 * header section only. */
#define REPORT_BODY_MAX (1024 * 1024)
/* Room for the notice: the original, the header section, and per
 * recipient its fields and the quoted reply. */
#define REPORT_OUT_MAX (REPORT_BODY_MAX + DSN_HEADER_MAX + 64 * 1024)
#define REPORT_RCPT_ROOM (2 * DSN_DIAG_MAX + 2048)

/* The rows of one message and what the notice does with them. */
struct report {
	struct store_queue_entry *rows;
	size_t n, cap;
	struct dsn_rcpt *rcpts;		/* in the notice */
	size_t n_rcpts;
	char (*status)[16];		/* each notice recipient's status code */
	int64_t *notified;		/* rows the notice settles */
	size_t n_notified;
	int64_t *sent;			/* success rows, removed once reported */
	size_t n_sent;
	int64_t warned;			/* the message, if this is its delay notice */
};

static void
report_collect(void *ctx, const struct store_queue_entry *e)
{
	struct report *r = ctx;

	if (r->n == REPORT_RCPTS_MAX)
		return;
	if (r->n == r->cap) {
		r->cap = r->cap * 2 + 8;
		if ((r->rows = realloc(r->rows, r->cap * sizeof(*r->rows))) == NULL)
			log_fatal("out of memory");
	}
	r->rows[r->n++] = *e;
}

static void
report_free(struct report *r)
{
	free(r->rows);
	free(r->rcpts);
	free(r->status);
	free(r->notified);
	free(r->sent);
}

/* Does a NOTIFY value ask for this kind of notice? Without one, failures
 * and delays are reported (RFC 3461 4.1 leaves it to the MTA). */
static bool
report_wanted(const char *notify, const char *what)
{
	char copy[STORE_NOTIFY_MAX + 1];
	char *save = NULL;

	if (notify[0] == '\0')
		return strcmp(what, "SUCCESS") != 0;
	snprintf(copy, sizeof(copy), "%s", notify);
	for (char *t = strtok_r(copy, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
		if (strcasecmp(t, what) == 0)
			return true;
	}
	return false;
}

/* The enhanced status code of a reply ("550 5.1.1 ..." -> "5.1.1"),
 * else the class of its basic code with "0.0", else def. */
static void
report_status(const char *reply, const char *def, char *out, size_t outlen)
{
	const char *p = reply;
	size_t n;

	snprintf(out, outlen, "%s", def);
	if (strlen(reply) < 3 || reply[0] < '2' || reply[0] > '5')
		return;
	snprintf(out, outlen, "%c.0.0", reply[0]);
	p += 3;
	p += strspn(p, " -");
	n = strspn(p, "0123456789.");
	if (n >= 5 && n < outlen && p[0] == reply[0] && p[1] == '.') {
		memcpy(out, p, n);
		out[n] = '\0';
	}
}

/* The original address: ORCPT as stored is "type;xtext"; the xtext
 * "+XX" escapes are decoded. */
static void
report_orcpt(const char *orcpt, char *out, size_t outlen)
{
	size_t o = 0;

	for (size_t i = 0; orcpt[i] != '\0' && o + 1 < outlen; i++) {
		unsigned v;

		if (orcpt[i] == '+' && sscanf(orcpt + i + 1, "%2x", &v) == 1 &&
		    strspn(orcpt + i + 1, "0123456789ABCDEFabcdef") >= 2) {
			out[o++] = (char)v;
			i += 2;
		} else {
			out[o++] = orcpt[i];
		}
	}
	out[o] = '\0';
}

/* One recipient of the notice. */
static void
report_add(struct report *r, const struct store_queue_entry *e, enum dsn_action action,
	   time_t retry_until, char (*orcpts)[STORE_ORCPT_MAX + 1])
{
	struct dsn_rcpt *d = &r->rcpts[r->n_rcpts];

	report_status(e->last_error, action == DSN_FAILED ? "5.0.0" :
		      action == DSN_DELAYED ? "4.0.0" : "2.0.0", r->status[r->n_rcpts],
		      sizeof(r->status[0]));
	if (action == DSN_DELAYED && r->status[r->n_rcpts][0] != '4')
		snprintf(r->status[r->n_rcpts], sizeof(r->status[0]), "4.0.0");
	report_orcpt(e->item.orcpt, orcpts[r->n_rcpts], sizeof(orcpts[0]));
	d->final_rcpt = e->item.recipient;
	d->orcpt = orcpts[r->n_rcpts][0] != '\0' ? orcpts[r->n_rcpts] : NULL;
	d->action = action;
	d->status = r->status[r->n_rcpts];
	d->remote_mta = e->remote_mta[0] != '\0' ? e->remote_mta : NULL;
	d->diagnostic = e->last_error[0] != '\0' ? e->last_error : NULL;
	d->retry_until = retry_until;
	r->n_rcpts++;
}

/* The action a row whose success report is owed stands for: sent
 * (to a server without DSN), delivered here, or expanded by an alias;
 * DSN_FAILED for any other row. */
static enum dsn_action
report_success_action(const char *status)
{
	return strcmp(status, "sent") == 0 ? DSN_RELAYED :
	       strcmp(status, "delivered") == 0 ? DSN_DELIVERED :
	       strcmp(status, "expanded") == 0 ? DSN_EXPANDED : DSN_FAILED;
}

/* Does the notice only say that mail arrived? Then the original's
 * header section is enough to tell which message it was (RFC 3461 4.3:
 * RET asks for the content of failure reports). */
static bool
report_success_only(const struct report *r)
{
	for (size_t i = 0; i < r->n_rcpts; i++) {
		if (r->rcpts[i].action == DSN_FAILED || r->rcpts[i].action == DSN_DELAYED)
			return false;
	}
	return true;
}

/* Sorts the rows into the notice and the settlement. */
static void
report_plan(const struct config *cfg, int64_t message_id, const struct store_queue_message *m,
	    int64_t warn_before, struct report *r, char (*orcpts)[STORE_ORCPT_MAX + 1])
{
	bool warn = warn_before != 0 && !m->warned && m->created <= warn_before;
	time_t until = (time_t)(m->created + (m->sender[0] == '\0' ? cfg->bounce_queue_lifetime :
					      cfg->maximal_queue_lifetime));

	for (size_t i = 0; i < r->n; i++) {
		const struct store_queue_entry *e = &r->rows[i];

		if (strcmp(e->status, "failed") == 0 && !e->notified) {
			r->notified[r->n_notified++] = e->item.id;
			if (report_wanted(e->item.notify, "FAILURE"))
				report_add(r, e, DSN_FAILED, 0, orcpts);
		} else if (report_success_action(e->status) != DSN_FAILED) {
			r->sent[r->n_sent++] = e->item.id;
			if (e->notified)
				continue;
			r->notified[r->n_notified++] = e->item.id;
			if (report_wanted(e->item.notify, "SUCCESS"))
				report_add(r, e, report_success_action(e->status), 0, orcpts);
		} else if (warn && strcmp(e->status, "queued") == 0 && e->item.attempts > 0) {
			r->warned = message_id;
			if (report_wanted(e->item.notify, "DELAY"))
				report_add(r, e, DSN_DELAYED, until, orcpts);
		}
	}
}

/* Reads the original (its queued header lines, then the blob) into
 * out; *whole false when it is larger than REPORT_BODY_MAX. */
static int
report_original(struct store *st, const struct store_queue_message *m, struct buf *out,
		bool *whole, struct yj_err *err)
{
	char chunk[16384];
	ssize_t got;
	int fd;

	*whole = true;
	if (buf_append(out, m->header, m->header_len) < 0)
		return yj_err_set(err, "queued header lines too long");
	if (store_queue_open_blob(st, m, &fd, err) < 0)
		return -1;
	while ((got = read(fd, chunk, sizeof(chunk))) != 0) {
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			close(fd);
			return yj_err_errno(err, "reading the queued message");
		}
		if (buf_append(out, chunk, (size_t)got) < 0) {
			*whole = false;
			break;
		}
	}
	close(fd);
	return 1;
}

/* Where the header section of p ends (the empty line) and the body
 * starts; no empty line: all header. */
static void
report_split(const char *p, size_t len, size_t *hdr_len, size_t *body_off)
{
	*hdr_len = *body_off = len;
	for (size_t i = 0; i < len; i++) {
		if (p[i] != '\n')
			continue;
		if (i + 1 < len && p[i + 1] == '\n') {
			*hdr_len = i + 1;
			*body_off = i + 2;
			return;
		}
		if (i + 2 < len && p[i + 1] == '\r' && p[i + 2] == '\n') {
			*hdr_len = i + 1;
			*body_off = i + 3;
			return;
		}
	}
}

/* The domain whose DKIM keys sign our notices: mydomain, the parent of
 * myhostname (MAILER-DAEMON@myhostname), which DMARC's relaxed alignment
 * accepts for it. */
static const char *
report_sign_domain(const struct config *cfg)
{
	return cfg->mydomain != NULL && cfg->mydomain[0] != '\0' ? cfg->mydomain :
								      cfg->myhostname;
}

/* Composes the notice for r's recipients and stores it with the marks. */
static int
report_send(struct store *st, const struct config *cfg, int64_t message_id,
	    const struct store_queue_message *m, struct report *r, struct yj_err *err)
{
	struct store_queue_settle settle = { .notified = r->notified,
					     .n_notified = r->n_notified, .warned = r->warned };
	struct buf orig, out;
	char token[25], id[40];
	size_t hdr_len, body_off;
	bool whole;
	int ret;

	buf_init(&orig, REPORT_BODY_MAX + STORE_QUEUE_HEADER_MAX);
	buf_init(&out, REPORT_OUT_MAX + r->n_rcpts * REPORT_RCPT_ROOM);
	util_random_id(token, 24);
	snprintf(id, sizeof(id), "dsn-%s", token);
	ret = report_original(st, m, &orig, &whole, err);
	if (ret > 0) {
		const char *data = orig.data != NULL ? orig.data : "";
		bool full = whole && strcasecmp(m->ret, "HDRS") != 0 && !report_success_only(r);
		struct dsn_msg dm = {
			.myhostname = cfg->myhostname, .sender = m->sender,
			.envid = m->envid[0] != '\0' ? m->envid : NULL,
			.arrival = (time_t)m->created, .now = time(NULL), .token = token,
			.rcpts = r->rcpts, .nrcpts = r->n_rcpts, .body_max = REPORT_BODY_MAX,
		};

		report_split(data, orig.len, &hdr_len, &body_off);
		dm.header = data;
		dm.header_len = hdr_len < DSN_HEADER_MAX ? hdr_len : DSN_HEADER_MAX;
		dm.body = full ? data + body_off : NULL;
		dm.body_len = full ? orig.len - body_off : 0;
		ret = dsn_compose(&dm, &out, err);
	}
	buf_free(&orig);
	if (ret > 0) {
		const char *to[1] = { m->sender };
		struct deliver_generated g = {
			.id = id, .sender = "", .rcpts = to, .n_rcpts = 1, .data = out.data,
			.len = out.len, .sign_domain = report_sign_domain(cfg), .settle = &settle,
		};
		char sender[LOG_VALUE_MAX];

		ret = deliver_generated(st, cfg, &g, err);
		if (ret >= 0)
			log_info("queue: message=%lld notice=%s to=<%s> rcpts=%zu kind=%s",
				 (long long)message_id, id,
				 log_value(sender, sizeof(sender), m->sender), r->n_rcpts,
				 r->warned != 0 && r->n_notified == 0 ? "delay" : "report");
	}
	buf_free(&out);
	return ret;
}

/* No notice is due for these rows (null sender, NOTIFY=NEVER, or only
 * a delay nobody asked to hear of): they are settled all the same. */
static int
report_settle_only(struct store *st, int64_t message_id, const struct store_queue_message *m,
		   const struct report *r, struct yj_err *err)
{
	struct store_queue_settle settle = { .notified = r->notified,
					     .n_notified = r->n_notified, .warned = r->warned };

	if (r->n_notified == 0 && r->warned == 0)
		return 1;
	if (r->n_notified > 0)
		log_info("queue: message=%lld no notice for %zu recipients (%s)",
			 (long long)message_id, r->n_notified,
			 m->sender[0] == '\0' ? "null sender" : "NOTIFY");
	return store_queue_settle(st, &settle, err);
}

/* Removes sent, delivered and expanded rows once they are reported on. */
static void
report_remove_sent(struct store *st, const struct report *r)
{
	struct yj_err err;

	for (size_t i = 0; i < r->n_sent; i++) {
		if (store_queue_delete(st, r->sent[i], &err) < 0)
			log_warn("queue: removing reported row %lld: %s", (long long)r->sent[i],
				 err.msg);
	}
}

static int
report_message(struct store *st, const struct config *cfg, int64_t message_id,
	       int64_t warn_before, struct yj_err *err)
{
	struct store_queue_message m;
	struct report r = { 0 };
	char (*orcpts)[STORE_ORCPT_MAX + 1] = NULL;
	int ret = store_queue_message_get(st, message_id, &m, err);

	if (ret <= 0)
		return ret;
	ret = store_queue_list_message(st, message_id, report_collect, &r, err);
	if (ret > 0) {
		size_t n = r.n > 0 ? r.n : 1;

		r.rcpts = calloc(n, sizeof(*r.rcpts));
		r.status = calloc(n, sizeof(*r.status));
		r.notified = calloc(n, sizeof(*r.notified));
		r.sent = calloc(n, sizeof(*r.sent));
		orcpts = calloc(n, sizeof(*orcpts));
		if (r.rcpts == NULL || r.status == NULL || r.notified == NULL || r.sent == NULL ||
		    orcpts == NULL)
			log_fatal("out of memory");
		report_plan(cfg, message_id, &m, warn_before, &r, orcpts);
		if (m.sender[0] == '\0' || r.n_rcpts == 0)
			ret = report_settle_only(st, message_id, &m, &r, err);
		else
			ret = report_send(st, cfg, message_id, &m, &r, err);
		if (ret >= 0)
			report_remove_sent(st, &r);
	}
	free(orcpts);
	report_free(&r);
	store_queue_message_free(&m);
	return ret < 0 ? -1 : 1;
}

struct report_ids {
	int64_t v[REPORT_MESSAGES_MAX];
	size_t n;
};

static void
report_id(void *ctx, int64_t message_id)
{
	struct report_ids *ids = ctx;

	if (ids->n < REPORT_MESSAGES_MAX)
		ids->v[ids->n++] = message_id;
}

int
queue_report(struct store *st, const struct config *cfg, struct yj_err *err)
{
	int64_t now = (int64_t)time(NULL);
	int64_t warn_before = cfg->delay_warning_time > 0 ? now - cfg->delay_warning_time : 0;
	struct report_ids *ids = calloc(1, sizeof(*ids));
	int ret;

	if (ids == NULL)
		log_fatal("out of memory");
	ret = store_queue_reports(st, warn_before, REPORT_MESSAGES_MAX, report_id, ids, err);
	for (size_t i = 0; ret >= 0 && i < ids->n; i++) {
		struct yj_err one;

		/* One message's trouble (another node settled it first, a
		 * blob that cannot be read) does not hold up the others. */
		if (report_message(st, cfg, ids->v[i], warn_before, &one) < 0)
			log_warn("queue: notice for message %lld: %s", (long long)ids->v[i],
				 one.msg);
	}
	free(ids);
	return ret < 0 ? -1 : (int)ret;
}
