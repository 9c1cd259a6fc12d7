/* imap_server_store.c - STORE (RFC 9051 6.4.6, RFC 7162 UNCHANGEDSINCE),
 * EXPUNGE and UID EXPUNGE (RFC 4315), APPEND with APPENDUID, COPY and
 * MOVE (RFC 6851) with COPYUID. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/log.h"
#include "imap/imap_mailbox.h"
#include "mime/mime_msgid.h"
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

struct store_uidset
imap_uid_ranges(struct imap_session *s, const size_t *idx, size_t n)
{
	struct store_uid_range *r = calloc(n + 1, sizeof(*r));
	size_t k = 0;

	if (r == NULL)
		log_fatal("out of memory");
	for (size_t i = 0; i < n; i++) {
		uint32_t uid = s->msgs[idx[i]].uid;

		if (k > 0 && r[k - 1].last + 1 == uid)
			r[k - 1].last = uid;
		else
			r[k++] = (struct store_uid_range){ uid, uid };
	}
	return (struct store_uidset){ r, k };
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
 * of them unless .SILENT. With UNCHANGEDSINCE a .SILENT store still
 * tells each changed message's new MODSEQ, and only that (RFC 7162
 * 3.1.3, example 3: "* 1 FETCH (UID 4 MODSEQ (12121231000))").
 * Without UNCHANGEDSINCE, once CONDSTORE is enabled: RFC 7162 3.1 has
 * the server include MODSEQ in every FETCH response a STORE causes, but
 * says nothing of a .SILENT one, which causes none (RFC 9051 6.4.6).
 * Left open, so done as Dovecot does and clients expect: the new MODSEQ
 * alone, else the client's cache holds a stale one. */
static void
store_report(struct store_ctx *c, bool new_keywords)
{
	struct imap_session *s = c->s;

	/* A change with keywords may have made new ones: their names, told
	 * before a FETCH shows them. */
	if (c->nchanged > 0 && new_keywords)
		imap_keywords_refresh(s);
	for (size_t i = 0; i < c->nchanged; i++) {
		const struct store_flag_result *r = &c->changed[i];
		struct imap_msg *m;
		struct buf b;
		bool modseq_only;
		size_t seq;

		m = view_find(s, r->uid, &seq);
		if (m == NULL)
			continue;
		m->flags = r->flags;
		m->keywords = r->keywords;
		m->modseq = r->modseq;
		if (c->cmd->store.silent && !s->condstore)
			continue;
		modseq_only = c->cmd->store.silent;
		buf_init(&b, IMAP_RESPONSE_MAX);
		if (buf_printf(&b, "* %zu FETCH (", seq) > 0 &&
		    (!c->cmd->uid || buf_printf(&b, "UID %u ", m->uid) > 0) &&
		    (modseq_only || (buf_append_str(&b, "FLAGS ") > 0 &&
				     imap_flags_write(s, &b, imap_msg_flags(m), m->keywords) > 0)) &&
		    (!s->condstore ||
		     buf_printf(&b, "%sMODSEQ (%llu)", modseq_only ? "" : " ",
				(unsigned long long)m->modseq) > 0) &&
		    buf_append_str(&b, ")\r\n") > 0)
			imap_send_buf(s, &b);
		buf_free(&b);
	}
}

/* After the session's own change got MODSEQ modseq: if it came right
 * after the view's, nothing else changed the mailbox in between, and
 * store_report() has put every changed row into the view, so the view
 * is current at modseq without reading the changes back. (Otherwise the
 * sync before the tagged reply reads them as usual.) */
static void
store_view_advance(struct imap_session *s, uint64_t modseq)
{
	if (modseq == 0 || modseq != s->seen_modseq + 1)
		return;
	for (size_t i = 0; i < s->n_msgs; i++)
		if (s->msgs[i].gone)
			return;
	s->seen_modseq = modseq;
	s->mb.highestmodseq = modseq;
}

/* The tagged NO of a failed APPEND, COPY or MOVE (and STORE's for
 * keywords): ret is the store's. A mailbox whose keyword bits are all
 * taken is an implementation limit: LIMIT is for "the number of flags
 * used in a mailbox" (RFC 5530 3, RFC 9051 7.1), whose STORE example is
 * ours; PERMANENTFLAGS has no \* there any more (select_responses). */
static void
imap_store_refused(struct imap_session *s, int ret, const struct yj_err *err)
{
	if (ret == 0)
		imap_tagged(s, "NO [TRYCREATE] No such mailbox");
	else if (ret == STORE_OVER_QUOTA)
		imap_tagged(s, "NO [OVERQUOTA] Quota exceeded");
	else if (ret == STORE_KEYWORDS_FULL)
		imap_tagged(s, "NO [LIMIT] The mailbox has %d keywords, the most it can have",
			    STORE_KEYWORDS_MAX);
	else
		imap_tagged(s, "NO [UNAVAILABLE] %s", err->msg);
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
		imap_condstore_use(s);
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
	set = imap_uid_ranges(s, idx, n);
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
		if (ret == STORE_KEYWORDS_FULL)
			imap_store_refused(s, ret, &err);
		else
			imap_tagged(s, "NO [CANNOT] %s", err.msg);
		return 1;
	}
	store_report(&c, ch.n_keywords > 0);
	free(c.changed);
	store_view_advance(s, modseq);
	if (c.nfailed > 0) {
		struct buf b;

		/* This reply does not go through imap_tagged(). */
		(void)imap_sync(s, false);
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
		size_t n = imap_set_resolve(s, &cmd->set, true, &idx);

		set = imap_uid_ranges(s, idx, n);
		ranges = (struct store_uid_range *)set.ranges;
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

/* The messages of an APPEND as the store takes them; the keyword name
 * lists are malloc'd into kw (one array for all), the thread ids (RFC
 * 8474) of message i into keys[i]. */
static struct store_append_msg *
append_msgs(const struct imap_append *ap, const char ***kw_r, struct buf *keys)
{
	struct store_append_msg *msgs = calloc(ap->count + 1, sizeof(*msgs));
	size_t nflags = 0, used = 0;
	const char **kw;
	time_t now = time(NULL);

	for (size_t i = 0; i < ap->count; i++)
		nflags += ap->msgs[i].flags.count;
	kw = calloc(nflags + 1, sizeof(*kw));
	if (msgs == NULL || kw == NULL)
		log_fatal("out of memory");
	for (size_t i = 0; i < ap->count; i++) {
		const struct imap_append_msg *am = &ap->msgs[i];

		flags_split(&am->flags, &msgs[i].flags, kw + used, &msgs[i].n_keywords);
		msgs[i].keywords = kw + used;
		used += msgs[i].n_keywords;
		msgs[i].data = am->data;
		msgs[i].len = am->len;
		msgs[i].internal_date = am->has_date ? (int64_t)am->date : (int64_t)now;
		/* Without a date-time: now, in UTC, as delivery stores it. */
		msgs[i].internal_zone = am->has_date ? am->zone : 0;
		buf_init(&keys[i], MIME_THREAD_KEYS_BUF);
		(void)mime_thread_keys(am->data, am->len, &keys[i]);
		msgs[i].thread_keys = keys[i].data;
		msgs[i].thread_keys_len = keys[i].len;
	}
	*kw_r = kw;
	return msgs;
}

/* The summary of each message, made here (the session's thread) and
 * stored with it; its search text is made later. */
static struct store_index *
append_index(struct store_append_msg *msgs, size_t n)
{
	struct store_index *ix = calloc(n + 1, sizeof(*ix));

	if (ix == NULL)
		log_fatal("out of memory");
	for (size_t i = 0; i < n; i++) {
		deliver_index_stored(msgs[i].data, msgs[i].len, &ix[i]);
		msgs[i].index = &ix[i];
	}
	return ix;
}

static void
append_index_free(struct store_index *ix, size_t n)
{
	for (size_t i = 0; i < n; i++)
		store_index_free(&ix[i]);
	free(ix);
}

/* Is one of the messages empty? Zero bytes are no RFC 5322 message
 * (it needs at least a header with Date and From): storing one can never
 * succeed, which RFC 5530 3 names CANNOT. The literal was read whole, so
 * the session stays in step. */
static bool
append_has_empty(const struct imap_append *ap)
{
	for (size_t i = 0; i < ap->count; i++)
		if (ap->msgs[i].len == 0)
			return true;
	return false;
}

/* APPEND, with MULTIAPPEND (RFC 3502): all the messages or none. A
 * literal the reader refused (over APPENDLIMIT) ended the command before
 * it came here, so nothing of it is stored either; nor is anything when
 * one message is empty. */
int
imap_cmd_append(struct imap_session *s, struct imap_cmd *cmd)
{
	uint32_t *uids = calloc(cmd->append.count + 1, sizeof(*uids));
	struct store_append_msg *msgs;
	struct store_index *ix;
	struct store_mailbox mb;
	struct buf *keys;
	uint32_t uidvalidity = 0;
	const char **kw;
	struct yj_err err;
	struct buf b;
	int ret;

	if (uids == NULL)
		log_fatal("out of memory");
	if (append_has_empty(&cmd->append)) {
		free(uids);
		imap_tagged(s, "NO [CANNOT] An empty message cannot be stored");
		return 1;
	}
	if (imap_mailbox_lookup(s, cmd->mailbox, &mb) != 1) {
		free(uids);
		imap_tagged(s, "NO [TRYCREATE] No such mailbox");
		return 1;
	}
	if ((keys = calloc(cmd->append.count + 1, sizeof(*keys))) == NULL)
		log_fatal("out of memory");
	msgs = append_msgs(&cmd->append, &kw, keys);
	ix = append_index(msgs, cmd->append.count);
	ret = store_msg_append(s->store, mb.id, msgs, cmd->append.count, uids, &uidvalidity,
			       &err);
	append_index_free(ix, cmd->append.count);
	for (size_t i = 0; i < cmd->append.count; i++)
		buf_free(&keys[i]);
	free(keys);
	free(msgs);
	free(kw);
	if (ret != 1) {
		free(uids);
		imap_store_refused(s, ret, &err);
		return 1;
	}
	(void)imap_sync(s, true);
	buf_init(&b, IMAP_RESPONSE_MAX);
	if (!imap_cap_off(s, "UIDPLUS") &&
	    buf_printf(&b, "%s OK [APPENDUID %u ", cmd->tag, uidvalidity) > 0 &&
	    imap_seqset_write(&b, uids, cmd->append.count) > 0 &&
	    buf_append_str(&b, "] APPEND completed\r\n") > 0)
		imap_send_buf(s, &b);
	else
		imap_tagged(s, "OK APPEND completed");
	buf_free(&b);
	free(uids);
	return 1;
}

/* The longest APPEND start looked at before its literal: a mailbox name,
 * flags and a date, with room to spare. */
#define APPEND_EARLY_MAX 4096

/* Would size more bytes pass the account's quota? */
static bool
append_over_quota(struct imap_session *s, uint64_t size)
{
	struct store_quota q;
	struct yj_err err;

	return store_quota_get(s->store, s->account.id, &q, &err) == 1 &&
	       q.limit != STORE_QUOTA_NONE &&
	       (q.used + size > (uint64_t)q.limit || q.used + size < size);
}

/* RFC 9051 7.5 lets a server answer a command instead of the "+" its
 * literal waits for. A client that learns of a mistyped mailbox or a
 * full account only after sending 20 MB has wasted them (and a phone's
 * data plan): the APPEND is answered at its first message literal, as
 * it would be after it. The command so far, with the announcement made
 * "{0}", parses as the APPEND of an empty message; one whose first
 * literal is not the message (a mailbox name) does not parse, and goes
 * on to be answered whole. */
int
imap_append_answered_early(struct imap_session *s, const char *partial, size_t len,
			   uint64_t size)
{
	const struct imap_parse_opts opts = { .utf8 = s->utf8 };
	char copy[APPEND_EARLY_MAX + 8];
	const char *brace;
	struct store_mailbox mb;
	size_t head;
	int ret, answered = 0;

	if (s->state == IMAP_NOTAUTH || len > APPEND_EARLY_MAX ||
	    (brace = memrchr(partial, '{', len)) == NULL)
		return 0;
	head = (size_t)(brace - partial);
	memcpy(copy, partial, head);
	memcpy(copy + head, "{0}\r\n", 6);	/* with the NUL */
	imap_cmd_clear(&s->cmd);
	if (imap_cmd_parse(&s->cmd, copy, head + 5, &opts) == 1 &&
	    s->cmd.name == IMAP_CMD_APPEND && s->cmd.append.count == 1 &&
	    !imap_cmd_off(s, IMAP_CMD_APPEND) && imap_store_ready(s)) {
		ret = imap_mailbox_lookup(s, s->cmd.mailbox, &mb);
		if (ret == 0 || (ret == 1 && append_over_quota(s, size))) {
			imap_store_refused(s, ret == 0 ? 0 : STORE_OVER_QUOTA, NULL);
			answered = 1;
		}
	}
	imap_cmd_clear(&s->cmd);
	return answered;
}

/* "[COPYUID uidvalidity source-uids new-uids]" (RFC 4315), the pairs in
 * source UID order. */
static int
copyuid_write(struct buf *b, const struct store_copy_result *res)
{
	uint32_t *src = calloc(res->n + 1, sizeof(*src)), *dst = calloc(res->n + 1, sizeof(*dst));
	int ret;

	if (src == NULL || dst == NULL)
		log_fatal("out of memory");
	for (size_t i = 0; i < res->n; i++) {
		src[i] = res->map[i].src;
		dst[i] = res->map[i].dst;
	}
	ret = buf_printf(b, "[COPYUID %u ", res->uidvalidity) > 0 &&
	      imap_seqset_write(b, src, res->n) > 0 && buf_append_str(b, " ") > 0 &&
	      imap_seqset_write(b, dst, res->n) > 0 && buf_append_str(b, "]") > 0 ? 1 : -1;
	free(src);
	free(dst);
	return ret;
}

/* COPY and MOVE (RFC 6851): one store transaction each. MOVE sends
 * COPYUID in an untagged OK, then the expunges, then its tagged OK. */
int
imap_cmd_copy(struct imap_session *s, struct imap_cmd *cmd)
{
	bool move = cmd->name == IMAP_CMD_MOVE;
	struct store_copy_result res = { 0 };
	struct store_mailbox target;
	struct store_uidset set;
	struct yj_err err;
	size_t *idx, n;
	struct buf b;
	int ret;

	if (imap_mailbox_lookup(s, cmd->mailbox, &target) != 1) {
		imap_tagged(s, "NO [TRYCREATE] No such mailbox");
		return 1;
	}
	if (move && s->readonly) {
		imap_tagged(s, "NO [READ-ONLY] The mailbox is read-only");
		return 1;
	}
	n = imap_set_resolve(s, &cmd->set, cmd->uid, &idx);
	set = imap_uid_ranges(s, idx, n);
	free(idx);
	ret = n == 0 ? 1 : store_msg_copy(s->store, s->mb.id, target.id, &set, move, &res, &err);
	free((void *)set.ranges);
	if (ret != 1) {
		imap_store_refused(s, ret, &err);
		return 1;
	}
	/* A copy into the selected mailbox itself shows before the OK. */
	if (!move)
		(void)imap_sync(s, false);
	buf_init(&b, IMAP_RESPONSE_MAX);
	if (res.n > 0 && !imap_cap_off(s, "UIDPLUS") &&
	    buf_printf(&b, "%s OK ", move ? "*" : cmd->tag) > 0 &&
	    copyuid_write(&b, &res) > 0 &&
	    buf_printf(&b, " %s\r\n", move ? "Moved" : "COPY completed") > 0)
		imap_send_buf(s, &b);
	else if (!move)
		imap_tagged(s, "OK COPY completed");
	buf_free(&b);
	free(res.map);
	if (move) {
		(void)imap_sync(s, true);
		imap_tagged(s, "OK MOVE completed");
	}
	return 1;
}
