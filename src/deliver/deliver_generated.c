/* deliver_generated.c - messages youju writes itself (deliver.h). */
#include "deliver/deliver.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "deliver/resolve.h"

/* The most DKIM-Signature lines put in front of a generated message
 * (they go into each local copy's prefix, see deliver.c). */
#define DELIVER_SIG_MAX 4096

static deliver_signer_fn *deliver_signer;

void
deliver_set_signer(deliver_signer_fn *fn)
{
	deliver_signer = fn;
}

/* Where the recipients of a generated message go. */
struct deliver_targets {
	struct deliver_local *local;
	char (*local_addr)[STORE_ADDRESS_MAX + 1];
	size_t n_local, cap_local;
	const char **relay;
	char (*relay_addr)[STORE_ADDRESS_MAX + 1];
	size_t n_relay, cap_relay;
};

static void *
deliver_grow(void *v, size_t n, size_t size)
{
	void *p = realloc(v, (n > 0 ? n : 1) * size);

	if (p == NULL)
		log_fatal("out of memory");
	return p;
}

static void
deliver_add_local(struct deliver_targets *t, const struct resolve_local *l)
{
	if (t->n_local == t->cap_local) {
		t->cap_local = t->cap_local * 2 + 4;
		t->local = deliver_grow(t->local, t->cap_local, sizeof(*t->local));
		t->local_addr = deliver_grow(t->local_addr, t->cap_local, sizeof(*t->local_addr));
	}
	memcpy(t->local_addr[t->n_local], l->address, sizeof(t->local_addr[0]));
	t->local[t->n_local].account_id = l->account_id;
	t->n_local++;
}

static void
deliver_add_relay(struct deliver_targets *t, const char *address)
{
	if (t->n_relay == t->cap_relay) {
		t->cap_relay = t->cap_relay * 2 + 4;
		t->relay = deliver_grow(t->relay, t->cap_relay, sizeof(*t->relay));
		t->relay_addr = deliver_grow(t->relay_addr, t->cap_relay, sizeof(*t->relay_addr));
	}
	snprintf(t->relay_addr[t->n_relay], sizeof(t->relay_addr[0]), "%s", address);
	t->n_relay++;
}

/* The pointers into the address arrays, once they stopped moving. */
static void
deliver_targets_fix(struct deliver_targets *t)
{
	for (size_t i = 0; i < t->n_local; i++)
		t->local[i].address = t->local_addr[i];
	for (size_t i = 0; i < t->n_relay; i++)
		t->relay[i] = t->relay_addr[i];
}

static void
deliver_targets_free(struct deliver_targets *t)
{
	free(t->local);
	free(t->local_addr);
	free(t->relay);
	free(t->relay_addr);
}

/* One recipient: our mailboxes, the queue, or (ours, unknown) nowhere. */
static int
deliver_target(struct store *st, const struct config *cfg, const char *id, const char *rcpt,
	       struct deliver_targets *t)
{
	struct resolve_result r = { 0 };
	const char *at = strrchr(rcpt, '@');
	char local[STORE_ADDRESS_MAX + 1], to[LOG_VALUE_MAX];

	if (at == NULL || at == rcpt || at[1] == '\0' || (size_t)(at - rcpt) >= sizeof(local)) {
		log_warn("deliver: id=%s to=<%s> not an address; left out", id,
			 log_value(to, sizeof(to), rcpt));
		return 1;
	}
	snprintf(local, sizeof(local), "%.*s", (int)(at - rcpt), rcpt);
	if (resolve_rcpt(st, cfg, local, at + 1, &r) < 0)
		return -1;
	if (r.status == RESOLVE_NOT_LOCAL)
		deliver_add_relay(t, rcpt);
	else if (r.status != RESOLVE_OK)
		log_warn("deliver: id=%s to=<%s> is in one of our domains but no mailbox; "
			 "left out", id, log_value(to, sizeof(to), rcpt));
	for (size_t i = 0; r.status == RESOLVE_OK && i < r.n_local; i++)
		deliver_add_local(t, &r.local[i]);
	for (size_t i = 0; r.status == RESOLVE_OK && i < r.n_remote; i++)
		deliver_add_relay(t, r.remote[i]);
	resolve_result_free(&r);
	return 1;
}

/* The DKIM-Signature lines for g (empty when nothing signs it). */
static void
deliver_sign(const struct config *cfg, const struct deliver_generated *g, struct buf *sig)
{
	struct yj_err err;

	if (deliver_signer == NULL || g->sign_domain == NULL || g->sign_domain[0] == '\0')
		return;
	if (deliver_signer(cfg->data_dir, g->sign_domain, g->data, g->len, sig, &err) < 0) {
		/* Unsigned is still better than a notice lost. */
		log_warn("deliver: id=%s dkim sign: %s", g->id, err.msg);
		buf_reset(sig);
	}
}

static int
deliver_write(struct store *st, const struct deliver_generated *g, struct store_blob *blob,
	      struct yj_err *err)
{
	if (store_blob_create(st, blob, err) < 0)
		return -1;
	if (store_blob_write(blob, g->data, g->len, err) < 0) {
		store_blob_abort(blob);
		return -1;
	}
	return 1;
}

int
deliver_generated(struct store *st, const struct config *cfg, const struct deliver_generated *g,
		  struct yj_err *err)
{
	struct deliver_targets t = { 0 };
	struct store_blob *blob;
	struct buf sig;
	int ret = 1;

	for (size_t i = 0; i < g->n_rcpts && ret > 0; i++)
		ret = deliver_target(st, cfg, g->id, g->rcpts[i], &t);
	if (ret < 0) {
		deliver_targets_free(&t);
		return yj_err_set(err, "looking up the recipients failed");
	}
	if (t.n_local + t.n_relay == 0) {
		deliver_targets_free(&t);
		if (g->settle == NULL)
			return 0;
		return store_queue_settle(st, g->settle, err) < 0 ? -1 : 0;
	}
	deliver_targets_fix(&t);
	if ((blob = calloc(1, sizeof(*blob))) == NULL)
		log_fatal("out of memory");
	buf_init(&sig, DELIVER_SIG_MAX);
	deliver_sign(cfg, g, &sig);
	ret = deliver_write(st, g, blob, err);
	if (ret > 0) {
		struct deliver_envelope env = {
			.id = g->id, .sender = g->sender,
			.local = t.local, .n_local = t.n_local,
			.relay = t.relay, .n_relay = t.n_relay,
			.headers = sig.len > 0 ? sig.data : NULL,
			.settle = g->settle,
			.data = g->data, .len = g->len,	/* the blob's bytes */
		};

		ret = deliver_message(st, &env, blob, err);
	}
	buf_free(&sig);
	free(blob);
	deliver_targets_free(&t);
	return ret;
}
