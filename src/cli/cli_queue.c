/* cli_queue.c - youju queue list|show|retry|hold|release|delete|bounce:
 * the outbound queue for admins, as mailq and postqueue are for Postfix.
 * IDs are the queue's per-recipient row ids, as `queue list` prints them. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "deliver/deliver.h"
#include "deliver/deliver_index.h"
#include "mailauth/dkim_keys.h"
#include "queue/queue.h"

static void
cli_queue_time(int64_t when, char *out, size_t outlen)
{
	time_t t = (time_t)when;
	struct tm tm;

	if (when <= 0 || gmtime_r(&t, &tm) == NULL ||
	    strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, outlen, "-");
}

/* A row that only waits for its success report to be made (sent,
 * delivered, expanded): the mail itself has gone. */
static bool
cli_queue_gone(const struct store_queue_entry *e)
{
	return strcmp(e->status, "sent") == 0 || strcmp(e->status, "delivered") == 0 ||
	       strcmp(e->status, "expanded") == 0;
}

struct cli_queue_listing {
	bool all;
	size_t n;
};

static void
cli_queue_print(void *ctx, const struct store_queue_entry *e)
{
	struct cli_queue_listing *l = ctx;
	char next[32];

	if (!l->all && cli_queue_gone(e))
		return;
	cli_queue_time(e->next_attempt, next, sizeof(next));
	printf("%" PRId64 " %s %ld %s <%s> <%s>\n", e->item.id, e->status, e->item.attempts, next,
	       e->item.sender, e->item.recipient);
	l->n++;
}

int
cli_queue_list(struct cli *c, int argc, char **argv)
{
	struct cli_queue_listing l = { .all = c->opts.all };
	struct yj_err err;

	if (store_queue_list(c->st, cli_queue_print, &l, &err) < 0)
		return cli_fail("%s", err.msg);
	if (l.n == 0)
		printf("the queue is empty\n");
	return CLI_EXIT_OK;
}

/* mailq's listing: each message once with its arrival and sender, its
 * recipients under it with their state and last reply (the store lists
 * rows by message). */
struct cli_mailq {
	int64_t message_id;
	size_t messages, rcpts;
};

static void
cli_mailq_print(void *ctx, const struct store_queue_entry *e)
{
	struct cli_mailq *q = ctx;
	char arrived[32];

	if (cli_queue_gone(e))
		return;
	if (q->rcpts == 0)
		printf("%-10s %-20s  %s\n", "-Message-", "-Arrival Time-", "-Sender/Recipient-");
	if (q->rcpts == 0 || e->item.message_id != q->message_id) {
		cli_queue_time(e->item.created, arrived, sizeof(arrived));
		printf("%-10" PRId64 " %-20s  <%s>\n", e->item.message_id, arrived, e->item.sender);
		q->message_id = e->item.message_id;
		q->messages++;
	}
	printf("%10" PRId64 " %-20s  <%s>\n", e->item.id, e->status, e->item.recipient);
	if (e->last_error[0] != '\0')
		printf("%33s(%.300s)\n", "", e->last_error);
	q->rcpts++;
}

int
cli_queue_mailq(struct cli *c, int argc, char **argv)
{
	struct cli_mailq q = { 0 };
	struct yj_err err;

	if (store_queue_list(c->st, cli_mailq_print, &q, &err) < 0)
		return cli_fail("%s", err.msg);
	if (q.rcpts == 0)
		printf("Mail queue is empty\n");
	else
		printf("-- %zu message%s, %zu recipient%s\n", q.messages, q.messages == 1 ? "" : "s",
		       q.rcpts, q.rcpts == 1 ? "" : "s");
	return CLI_EXIT_OK;
}

static int
cli_queue_id(const char *arg, int64_t *id_r)
{
	char *end;
	long long v = strtoll(arg, &end, 10);

	if (arg[0] == '\0' || *end != '\0' || v <= 0)
		return cli_fail("not a queue ID: %s", arg);
	*id_r = (int64_t)v;
	return CLI_EXIT_OK;
}

struct cli_queue_find {
	int64_t id;
	struct store_queue_entry e;
	bool found;
};

static void
cli_queue_match(void *ctx, const struct store_queue_entry *e)
{
	struct cli_queue_find *f = ctx;

	if (e->item.id == f->id) {
		f->e = *e;
		f->found = true;
	}
}

int
cli_queue_show(struct cli *c, int argc, char **argv)
{
	struct cli_queue_find *f = calloc(1, sizeof(*f));
	struct store_queue_message m;
	char created[32], next[32];
	struct yj_err err;
	int rc;

	if (f == NULL)
		return cli_fail("out of memory");
	if ((rc = cli_queue_id(argv[0], &f->id)) == CLI_EXIT_OK) {
		if (store_queue_list(c->st, cli_queue_match, f, &err) < 0)
			rc = cli_fail("%s", err.msg);
		else if (!f->found)
			rc = cli_fail("no queue entry %s", argv[0]);
	}
	if (rc != CLI_EXIT_OK) {
		free(f);
		return rc;
	}
	cli_queue_time(f->e.item.created, created, sizeof(created));
	cli_queue_time(f->e.next_attempt, next, sizeof(next));
	printf("id: %" PRId64 "\nmessage: %" PRId64 "\nsender: <%s>\nrecipient: <%s>\n"
	       "status: %s\nattempts: %ld\ncreated: %s\nnext attempt: %s\nclaimed by: %s\n"
	       "last reply: %s\n", f->e.item.id, f->e.item.message_id, f->e.item.sender,
	       f->e.item.recipient, f->e.status, f->e.item.attempts, created, next,
	       f->e.claimed_by[0] != '\0' ? f->e.claimed_by : "-",
	       f->e.last_error[0] != '\0' ? f->e.last_error : "-");
	if (store_queue_message_get(c->st, f->e.item.message_id, &m, &err) == 1) {
		printf("envid: %s\nret: %s\nbody: %s\nsmtputf8: %s\n", m.envid[0] ? m.envid : "-",
		       m.ret[0] ? m.ret : "-", m.body[0] ? m.body : "-",
		       m.smtputf8 ? "yes" : "no");
		store_queue_message_free(&m);
	}
	free(f);
	return CLI_EXIT_OK;
}

/* Why an entry could not be changed: it is being sent now, or it is
 * not in a state the change applies to. */
static int
cli_queue_unchanged(struct cli *c, int64_t id, const char *arg, const char *done)
{
	struct cli_queue_find *f = calloc(1, sizeof(*f));
	struct yj_err err;
	int rc;

	if (f == NULL)
		return cli_fail("out of memory");
	f->id = id;
	if (id != 0 && store_queue_list(c->st, cli_queue_match, f, &err) == 1 && f->found &&
	    f->e.claimed_by[0] != '\0')
		rc = cli_fail("queue entry %s is being sent now (by %s): try again when this "
			      "attempt has ended", arg, f->e.claimed_by);
	else
		rc = cli_fail("no queue entry %s to %s", arg != NULL ? arg : "at all", done);
	free(f);
	return rc;
}

static int
cli_queue_change(struct cli *c, const char *arg, enum store_queue_op op, const char *done)
{
	struct yj_err err;
	int64_t id = 0;
	int rc;

	if (arg != NULL && (rc = cli_queue_id(arg, &id)) != CLI_EXIT_OK)
		return rc;
	rc = store_queue_set(c->st, id, op, (int64_t)time(NULL), &err);
	if (rc < 0)
		return cli_fail("%s", err.msg);
	if (rc == 0)
		return cli_queue_unchanged(c, id, arg, done);
	/* A running youjud sends what is due now, not at its next look. */
	if (op == STORE_QUEUE_RETRY || op == STORE_QUEUE_RELEASE)
		queue_poke(c->data_dir);
	return CLI_EXIT_OK;
}

int
cli_queue_retry(struct cli *c, int argc, char **argv)
{
	return cli_queue_change(c, argc > 0 ? argv[0] : NULL, STORE_QUEUE_RETRY, "retry");
}

int
cli_queue_hold(struct cli *c, int argc, char **argv)
{
	return cli_queue_change(c, argv[0], STORE_QUEUE_HOLD, "hold");
}

int
cli_queue_release(struct cli *c, int argc, char **argv)
{
	return cli_queue_change(c, argv[0], STORE_QUEUE_RELEASE, "release");
}

/* Fails the recipient and sends its bounce now, as the runner would
 * (queue_report), DKIM-signed with the domain's keys. */
int
cli_queue_bounce(struct cli *c, int argc, char **argv)
{
	struct yj_err err;
	int rc = cli_queue_change(c, argv[0], STORE_QUEUE_BOUNCE, "bounce");

	if (rc != CLI_EXIT_OK)
		return rc;
	deliver_set_signer(dkim_sign_message);
	deliver_set_fts(c->cfg.imap_fts);
	if (queue_report(c->st, &c->cfg, &err) < 0)
		return cli_fail("the recipient is failed; its bounce will be sent by youjud: %s",
				err.msg);
	return CLI_EXIT_OK;
}

int
cli_queue_delete(struct cli *c, int argc, char **argv)
{
	struct yj_err err;
	int64_t id = 0;
	int rc;

	if ((rc = cli_queue_id(argv[0], &id)) != CLI_EXIT_OK)
		return rc;
	rc = store_queue_delete(c->st, id, &err);
	if (rc < 0)
		return cli_fail("%s", err.msg);
	if (rc == 0)
		return cli_fail("no queue entry %s", argv[0]);
	return CLI_EXIT_OK;
}
