#include "deliver/deliver.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "base/log.h"
#include "deliver/deliver_index.h"
#include "mime/mime_msgid.h"

/* Room for "Return-Path: <sender>\r\nDelivered-To: address\r\n" and
 * the per-message header lines; the store checks its own limit. */
#define DELIVER_PREFIX_MAX (STORE_ADDRESS_MAX * 2 + 64 + 4096)

/* The lines a local copy starts with. Returns 1, or -1 if they do not
 * fit (the addresses are bounded, so that is a bug upstream). */
static int
deliver_prefix(const struct deliver_envelope *env, const struct deliver_local *to,
	       char *out, size_t outlen)
{
	int n = snprintf(out, outlen, "Return-Path: <%s>\r\nDelivered-To: %s\r\n%s", env->sender,
			 to->address, env->headers != NULL ? env->headers : "");

	return n < 0 || (size_t)n >= outlen ? -1 : 1;
}

static void
deliver_log(const struct deliver_envelope *env)
{
	char to[LOG_VALUE_MAX];

	for (size_t i = 0; i < env->n_local; i++)
		log_info("deliver: id=%s to=<%s> mailbox=%s status=delivered", env->id,
			 log_value(to, sizeof(to), env->local[i].address),
			 env->mailbox != NULL ? env->mailbox : "INBOX");
	for (size_t i = 0; i < env->n_relay; i++)
		log_info("deliver: id=%s to=<%s> status=queued", env->id,
			 log_value(to, sizeof(to), env->relay[i]));
	for (size_t i = 0; i < env->n_failed; i++)
		log_info("deliver: id=%s to=<%s> status=failed reason=unknown-user", env->id,
			 log_value(to, sizeof(to), env->failed[i]));
	for (size_t i = 0; env->sender[0] != '\0' && i < env->n_notices; i++)
		log_info("deliver: id=%s to=<%s> report=%s", env->id,
			 log_value(to, sizeof(to), env->notices[i].recipient),
			 env->notices[i].action);
}

static void (*deliver_queued_hook)(bool report);

void
deliver_set_queued_hook(void (*fn)(bool report))
{
	deliver_queued_hook = fn;
}

/* The thread ids of a message too large to read back whole, from its
 * header alone. */
static void
deliver_thread_keys_head(struct store_blob *blob, struct buf *keys)
{
	char *head = malloc(DELIVER_HEADER_READ);
	struct yj_err err;
	long n;

	if (head == NULL)
		log_fatal("out of memory");
	n = store_blob_head(blob, head, DELIVER_HEADER_READ, &err);
	if (n < 0)
		log_warn("deliver: %s", err.msg);
	else
		deliver_thread_keys(head, (size_t)n, keys);
	free(head);
}

/* What the local copies take from the message's bytes, parsed once:
 * its thread ids and its index (deliver_index_message). From the bytes
 * the caller holds if it does, else read back from the blob: a message
 * larger than STORE_TEXT_READ_MAX gets its thread ids from its header
 * and no index; one that cannot be read (the delivery itself will find
 * it) starts threads of its own. Returns whether ix was made. */
static bool
deliver_parse(const struct deliver_envelope *env, struct store_blob *blob, struct buf *keys,
	      struct store_index *ix)
{
	struct yj_err err;
	struct buf data;
	int ret;

	if (env->data != NULL) {
		deliver_index_message(env->data, env->len, keys, ix);
		return true;
	}
	ret = store_blob_contents(blob, STORE_TEXT_READ_MAX, &data, &err);
	if (ret < 0) {
		log_warn("deliver: blob %s: no index: %s", blob->id, err.msg);
		return false;
	}
	if (ret == 0) {
		deliver_thread_keys_head(blob, keys);
		return false;
	}
	deliver_index_message(data.data, data.len, keys, ix);
	buf_free(&data);
	return true;
}

int
deliver_message(struct store *st, const struct deliver_envelope *env, struct store_blob *blob,
		struct yj_err *err)
{
	struct store_rcpt *rcpts = calloc(env->n_local + 1, sizeof(*rcpts));
	char (*prefixes)[DELIVER_PREFIX_MAX] = calloc(env->n_local + 1, sizeof(*prefixes));
	struct store_delivery d = { 0 };
	struct store_index index = { 0 };
	struct buf keys;
	int ret = 1;

	if (rcpts == NULL || prefixes == NULL)
		log_fatal("out of memory");
	for (size_t i = 0; i < env->n_local && ret > 0; i++) {
		ret = deliver_prefix(env, &env->local[i], prefixes[i], sizeof(prefixes[i]));
		rcpts[i].account_id = env->local[i].account_id;
		rcpts[i].prefix = prefixes[i];
		rcpts[i].mailbox = env->mailbox;
	}
	d.blob = blob;
	d.internal_date = time(NULL);
	d.rcpts = rcpts;
	d.n_rcpts = env->n_local;
	d.sender = env->sender;
	d.relay_rcpts = env->relay;
	d.n_relay = env->n_relay;
	/* the signatures travel with the queued copy */
	d.queue_header = env->queue_headers != NULL ? env->queue_headers : env->headers;
	d.envid = env->envid;
	d.ret = env->ret;
	d.body = env->body;
	d.smtputf8 = env->smtputf8;
	d.relay_dsn = env->relay_dsn;
	d.dmarc_policy = env->dmarc_policy;
	d.dmarc_row = env->dmarc_row;
	d.failed_rcpts = env->failed;
	d.n_failed = env->n_failed;
	d.failed_reply = env->failed_reply;
	d.settle = env->settle;
	d.notices = env->notices;
	d.n_notices = env->n_notices;
	buf_init(&keys, MIME_THREAD_KEYS_BUF);
	/* Parsed here, in the sender's thread: the writer only stores it.
	 * A local copy only. */
	if (ret > 0 && env->n_local > 0 && deliver_parse(env, blob, &keys, &index))
		d.index = &index;
	d.thread_keys = keys.data;
	d.thread_keys_len = keys.len;
	if (ret < 0) {
		store_blob_abort(blob);
		ret = yj_err_set(err, "delivery prefix too long");
	} else {
		ret = store_deliver(st, &d, err);
	}
	store_index_free(&index);
	if (ret > 0)
		deliver_log(env);
	if (ret > 0 && env->n_relay + env->n_failed + env->n_notices > 0 &&
	    deliver_queued_hook != NULL)
		deliver_queued_hook(env->n_failed + env->n_notices > 0);
	buf_free(&keys);
	free(rcpts);
	free(prefixes);
	return ret;
}
