/* imap_server_store.c - STORE (RFC 9051 6.4.6, RFC 7162 UNCHANGEDSINCE),
 * EXPUNGE and UID EXPUNGE (RFC 4315), APPEND with APPENDUID, COPY and
 * MOVE (RFC 6851) with COPYUID. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/log.h"
#include "imap/imap_mailbox.h"
#include "imap/imap_session.h"
#include "imap/imap_write.h"

static uint32_t
system_flag_bit(const char *name)
{
	static const char *const names[] = { "\\Seen", "\\Answered", "\\Flagged", "\\Deleted",
					     "\\Draft" };

	for (unsigned i = 0; i < 5; i++)
		if (strcasecmp(names[i], name) == 0)
			return 1u << i;
	return 0;
}

/* Splits a flag list into system bits and keyword names. */
static void
flags_split(const struct imap_flags *f, uint32_t *bits, const char **kw, size_t *nkw)
{
	*bits = 0;
	*nkw = 0;
	for (size_t i = 0; i < f->count; i++) {
		uint32_t b = system_flag_bit(f->flags[i]);

		if (b != 0)
			*bits |= b;
		else if (f->flags[i][0] != '\\')
			kw[(*nkw)++] = f->flags[i];
	}
}

/* The UIDs of view indexes, as ranges for the store. */
static struct store_uid_range *
uid_ranges(struct imap_session *s, const size_t *idx, size_t n)
{
	struct store_uid_range *r = calloc(n + 1, sizeof(*r));

	if (r == NULL)
		log_fatal("out of memory");
	for (size_t i = 0; i < n; i++)
		r[i] = (struct store_uid_range){ s->msgs[idx[i]].uid, s->msgs[idx[i]].uid };
	return r;
}

struct store_ctx {
	struct imap_session *s;
	struct imap_cmd *cmd;
	uint32_t *failed;
	size_t nfailed;
	struct store_flag_result *changed;
	size_t nchanged;
};

static struct imap_msg *
view_find(struct imap_session *s, uint32_t uid, size_t *seq_r)
{
	size_t lo = 0, hi = s->n_msgs;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (s->msgs[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < s->n_msgs && s->msgs[lo].uid == uid) {
		*seq_r = lo + 1;
		return &s->msgs[lo];
	}
	return NULL;
}

/* Called inside the store's transaction: it only takes notes (the
 * store must not be used from here). */
static void
store_changed_cb(void *arg, const struct store_flag_result *r)
{
	struct store_ctx *c = arg;

	c->changed[c->nchanged++] = *r;
}

static void
store_failed_cb(void *arg, uint32_t uid)
{
	struct store_ctx *c = arg;
	size_t seq;

	if (view_find(c->s, uid, &seq) != NULL)
		c->failed[c->nfailed++] = c->cmd->uid ? uid : (uint32_t)seq;
}

/* After the commit: the view takes the new flags, and the client hears
 * of them unless .SILENT (with UNCHANGEDSINCE, RFC 7162 3.2 asks for
 * the MODSEQ even then). */
static void
store_report(struct store_ctx *c)
{
	struct imap_session *s = c->s;

	if (c->nchanged > 0)
		(void)imap_keywords_load(s);
	for (size_t i = 0; i < c->nchanged; i++) {
		const struct store_flag_result *r = &c->changed[i];
		struct imap_msg *m;
		struct buf b;
		size_t seq;

		m = view_find(s, r->uid, &seq);
		if (m == NULL)
			continue;
		m->flags = r->flags;
		m->keywords = r->keywords;
		m->modseq = r->modseq;
		if (c->cmd->store.silent && !c->cmd->store.unchangedsince_set)
			continue;
		buf_init(&b, IMAP_RESPONSE_MAX);
		if (buf_printf(&b, "* %zu FETCH (", seq) > 0 &&
		    (!c->cmd->uid || buf_printf(&b, "UID %u ", m->uid) > 0) &&
		    buf_append_str(&b, "FLAGS ") > 0 &&
		    imap_flags_write(s, &b, m->flags, m->keywords) > 0 &&
		    (!s->condstore ||
		     buf_printf(&b, " MODSEQ (%llu)", (unsigned long long)m->modseq) > 0) &&
		    buf_append_str(&b, ")\r\n") > 0)
			imap_send_buf(s, &b);
		buf_free(&b);
	}
}

int
imap_cmd_store(struct imap_session *s, struct imap_cmd *cmd)
{
	const char *kw[IMAP_STRS_MAX + 200];
	struct store_flag_change ch = { 0 };
	struct store_ctx c = { .s = s, .cmd = cmd };
	struct store_uidset set;
	struct yj_err err;
	uint64_t modseq = 0;
	size_t *idx, n;
	int ret;

	if (s->readonly) {
		imap_tagged(s, "NO [READ-ONLY] The mailbox is read-only");
		return 1;
	}
	if (cmd->store.flags.count > sizeof(kw) / sizeof(kw[0])) {
		imap_tagged(s, "NO [LIMIT] Too many flags");
		return 1;
	}
	if (cmd->store.unchangedsince_set)
		s->condstore = true;
	flags_split(&cmd->store.flags, &ch.flags, kw, &ch.n_keywords);
	ch.keywords = kw;
	ch.op = cmd->store.op == IMAP_STORE_ADD      ? STORE_FLAGS_ADD
		: cmd->store.op == IMAP_STORE_REMOVE ? STORE_FLAGS_REMOVE
						     : STORE_FLAGS_SET;
	ch.unchangedsince_set = cmd->store.unchangedsince_set;
	ch.unchangedsince = cmd->store.unchangedsince;
	n = imap_set_resolve(s, &cmd->set, cmd->uid, &idx);
	if (n == 0) {
		free(idx);
		imap_tagged(s, "OK STORE completed");
		return 1;
	}
	set.ranges = uid_ranges(s, idx, n);
	set.n = n;
	c.failed = calloc(n, sizeof(*c.failed));
	c.changed = calloc(n, sizeof(*c.changed));
	if (c.failed == NULL || c.changed == NULL)
		log_fatal("out of memory");
	ret = store_msg_store_flags(s->store, s->mb.id, &set, &ch, store_changed_cb,
				    store_failed_cb, &c, &modseq, &err);
	free((void *)set.ranges);
	free(idx);
	if (ret < 0) {
		free(c.failed);
		free(c.changed);
		imap_tagged(s, "NO [CANNOT] %s", err.msg);
		return 1;
	}
	store_report(&c);
	free(c.changed);
	(void)imap_sync(s, false);
	if (c.nfailed > 0) {
		struct buf b;

		buf_init(&b, IMAP_RESPONSE_MAX);
		if (buf_printf(&b, "%s OK [MODIFIED ", cmd->tag) > 0 &&
		    imap_seqset_write(&b, c.failed, c.nfailed) > 0 &&
		    buf_append_str(&b, "] Conditional STORE failed\r\n") > 0)
			imap_send_buf(s, &b);
		buf_free(&b);
	} else {
		imap_tagged(s, "OK %sSTORE completed", cmd->uid ? "UID " : "");
	}
	free(c.failed);
	return 1;
}

int
imap_cmd_expunge(struct imap_session *s, struct imap_cmd *cmd)
{
	const struct store_uid_range all = { 1, UINT32_MAX };
	struct store_uidset set = { &all, 1 };
	struct store_uid_range *ranges = NULL;
	struct yj_err err;
	uint64_t modseq;
	size_t *idx = NULL;
	int ret;

	if (s->readonly) {
		imap_tagged(s, "NO [READ-ONLY] The mailbox is read-only");
		return 1;
	}
	if (cmd->uid) {
		set.n = imap_set_resolve(s, &cmd->set, true, &idx);
		set.ranges = ranges = uid_ranges(s, idx, set.n);
		free(idx);
	}
	ret = set.n == 0 ? 1
			 : store_msg_expunge_set(s->store, s->mb.id, &set, true, NULL, NULL, &modseq,
						 &err);
	free(ranges);
	if (ret < 0) {
		imap_tagged(s, "NO [UNAVAILABLE] %s", err.msg);
		return 1;
	}
	(void)imap_sync(s, true);
	imap_tagged(s, "OK EXPUNGE completed");
	return 1;
}

/* Stores bytes (a client's APPEND, or a message being copied, its prefix
 * included) as a new message of mailbox; *uid_r is its UID. */
static int
append_bytes(struct imap_session *s, const char *mailbox, const char *data, size_t len,
	     int64_t date, const struct store_flag_change *flags, uint32_t *uid_r,
	     struct yj_err *err)
{
	struct store_blob *blob = calloc(1, sizeof(*blob));
	struct store_mailbox before, after;
	const struct store_rcpt rcpt = { s->account.id, mailbox, "" };
	struct store_delivery d = { 0 };
	int ret = -1;

	if (blob == NULL)
		log_fatal("out of memory");
	if (imap_mailbox_lookup(s, mailbox, &before) != 1) {
		yj_err_set(err, "no such mailbox");
		free(blob);
		return 0;
	}
	if (store_blob_create(s->store, blob, err) < 0)
		goto out;
	if (store_blob_write(blob, data, len, err) < 0) {
		store_blob_abort(blob);
		goto out;
	}
	d.blob = blob;
	d.internal_date = date;
	d.rcpts = &rcpt;
	d.n_rcpts = 1;
	d.sender = "";
	if (store_deliver(s->store, &d, err) < 0)
		goto out;
	/* The new message is the last one at or above the old UIDNEXT. */
	ret = 1;
	*uid_r = 0;
	if (imap_mailbox_lookup(s, mailbox, &after) == 1 && after.uidnext > before.uidnext)
		*uid_r = after.uidnext - 1;
	if ((flags->flags != 0 || flags->n_keywords > 0) && *uid_r != 0) {
		const struct store_uid_range r = { *uid_r, *uid_r };
		const struct store_uidset set = { &r, 1 };
		uint64_t modseq;

		if (store_msg_store_flags(s->store, after.id, &set, flags, NULL, NULL, NULL, &modseq,
					  err) < 0)
			ret = -1;
	}
out:
	free(blob);
	return ret;
}

int
imap_cmd_append(struct imap_session *s, struct imap_cmd *cmd)
{
	struct store_mailbox mb;
	uint32_t *uids = calloc(cmd->append.count + 1, sizeof(*uids));
	struct yj_err err;
	struct buf b;

	if (uids == NULL)
		log_fatal("out of memory");
	if (imap_mailbox_lookup(s, cmd->mailbox, &mb) != 1) {
		free(uids);
		imap_tagged(s, "NO [TRYCREATE] No such mailbox");
		return 1;
	}
	for (size_t i = 0; i < cmd->append.count; i++) {
		const struct imap_append_msg *am = &cmd->append.msgs[i];
		const char **kw = calloc(am->flags.count + 1, sizeof(*kw));
		struct store_flag_change ch = { .op = STORE_FLAGS_ADD };
		int ret;

		if (kw == NULL)
			log_fatal("out of memory");
		flags_split(&am->flags, &ch.flags, kw, &ch.n_keywords);
		ch.keywords = kw;
		ret = append_bytes(s, mb.name, am->data, am->len,
				   am->has_date ? (int64_t)am->date : (int64_t)time(NULL), &ch,
				   &uids[i], &err);
		free(kw);
		if (ret <= 0) {
			free(uids);
			imap_tagged(s, "NO [UNAVAILABLE] %s", err.msg);
			return 1;
		}
	}
	(void)imap_sync(s, true);
	buf_init(&b, IMAP_RESPONSE_MAX);
	if (buf_printf(&b, "%s OK [APPENDUID %u ", cmd->tag, mb.uidvalidity) > 0 &&
	    imap_seqset_write(&b, uids, cmd->append.count) > 0 &&
	    buf_append_str(&b, "] APPEND completed\r\n") > 0)
		imap_send_buf(s, &b);
	else
		imap_tagged(s, "OK APPEND completed");
	buf_free(&b);
	free(uids);
	return 1;
}

/* COPY and MOVE: each message is stored again in the target. */
int
imap_cmd_copy(struct imap_session *s, struct imap_cmd *cmd)
{
	struct store_mailbox target;
	uint32_t *src, *dst;
	struct yj_err err;
	size_t *idx, n, done = 0;
	struct buf b;

	if (imap_mailbox_lookup(s, cmd->mailbox, &target) != 1) {
		imap_tagged(s, "NO [TRYCREATE] No such mailbox");
		return 1;
	}
	if (cmd->name == IMAP_CMD_MOVE && s->readonly) {
		imap_tagged(s, "NO [READ-ONLY] The mailbox is read-only");
		return 1;
	}
	n = imap_set_resolve(s, &cmd->set, cmd->uid, &idx);
	src = calloc(n + 1, sizeof(*src));
	dst = calloc(n + 1, sizeof(*dst));
	if (src == NULL || dst == NULL)
		log_fatal("out of memory");
	for (size_t i = 0; i < n; i++) {
		struct imap_msg *m = &s->msgs[idx[i]];
		struct store_flag_change ch = { .op = STORE_FLAGS_ADD, .flags = m->flags };
		const char *kw[STORE_KEYWORDS_MAX + 1];
		struct store_msg sm;
		struct buf body;
		int ret;

		for (unsigned bit = 0; bit < 64 && bit <= STORE_KEYWORDS_MAX; bit++)
			if ((m->keywords & (UINT64_C(1) << bit)) && s->keywords[bit] != NULL)
				kw[ch.n_keywords++] = s->keywords[bit];
		ch.keywords = kw;
		buf_init(&body, 1);
		if (imap_msg_load(s, m->uid, &body, &sm) < 0) {
			buf_free(&body);
			continue;
		}
		ret = append_bytes(s, target.name, body.data, body.len, sm.internal_date, &ch,
				   &dst[done], &err);
		buf_free(&body);
		if (ret <= 0)
			break;
		src[done++] = m->uid;
	}
	free(idx);
	if (done < n) {
		imap_tagged(s, "NO [UNAVAILABLE] %s failed", imap_cmd_str(cmd->name));
		free(src);
		free(dst);
		return 1;
	}
	buf_init(&b, IMAP_RESPONSE_MAX);
	if (done > 0 &&
	    buf_printf(&b, "%s OK [COPYUID %u ", cmd->name == IMAP_CMD_MOVE ? "*" : cmd->tag,
		       target.uidvalidity) > 0 &&
	    imap_seqset_write(&b, src, done) > 0 && buf_append_str(&b, " ") > 0 &&
	    imap_seqset_write(&b, dst, done) > 0 &&
	    buf_printf(&b, "] %s\r\n", cmd->name == IMAP_CMD_MOVE ? "Moved" : "COPY completed") > 0)
		imap_send_buf(s, &b);
	else if (cmd->name == IMAP_CMD_COPY)
		imap_tagged(s, "OK COPY completed");
	if (cmd->name == IMAP_CMD_MOVE) {
		struct store_uid_range *r = calloc(done + 1, sizeof(*r));
		struct store_uidset set = { r, done };
		uint64_t modseq;

		if (r == NULL)
			log_fatal("out of memory");
		for (size_t i = 0; i < done; i++)
			r[i] = (struct store_uid_range){ src[i], src[i] };
		if (done > 0 && store_msg_expunge_set(s->store, s->mb.id, &set, false, NULL, NULL,
						      &modseq, &err) < 0)
			log_error("imap: session=%s move expunge: %s", s->ctx->id, err.msg);
		free(r);
		(void)imap_sync(s, true);
		imap_tagged(s, "OK MOVE completed");
	}
	buf_free(&b);
	free(src);
	free(dst);
	return 1;
}
