/* imap_server_mailbox.c - the selected mailbox's view (sequence numbers,
 * flags) and its updates; SELECT/EXAMINE, CLOSE/UNSELECT, CHECK, CREATE,
 * DELETE, RENAME, SUBSCRIBE, LIST/LSUB, NAMESPACE and STATUS.
 *
 * The view is a copy of the mailbox's UIDs and flags as the client knows
 * them. imap_sync() compares it with the store and sends what changed;
 * expunges only where RFC 9051 7.5.1 allows them (not during FETCH,
 * STORE or SEARCH), so sequence numbers never shift under a command.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/block.h"
#include "base/log.h"
#include "imap/imap_mailbox.h"
#include "imap/imap_session.h"
#include "imap/imap_write.h"

/* By bit: the stored flags, then IMAP_FLAG_BIT_RECENT. */
static const char *const system_flags[] = { "\\Seen", "\\Answered", "\\Flagged", "\\Deleted",
					    "\\Draft", "\\Recent" };

static void
keywords_free(struct imap_session *s)
{
	for (size_t i = 0; i <= STORE_KEYWORDS_MAX; i++) {
		free(s->keywords[i]);
		s->keywords[i] = NULL;
	}
}

/* ctx: names by bit, STORE_KEYWORDS_MAX + 1 of them. */
static void
keyword_cb(void *ctx, unsigned bit, const char *name)
{
	char **names = ctx;

	if (bit <= STORE_KEYWORDS_MAX) {
		free(names[bit]);
		names[bit] = strdup(name);
		if (names[bit] == NULL)
			log_fatal("out of memory");
	}
}

/* The selected mailbox's keyword names by bit into names (all NULL on
 * entry); 1, or -1 (logged) with names all NULL again. */
static int
keywords_read(struct imap_session *s, char **names)
{
	struct yj_err err;

	if (store_keyword_list(s->store, s->mb.id, keyword_cb, names, &err) < 0) {
		log_error("imap: session=%s keywords: %s", s->ctx->id, err.msg);
		for (size_t i = 0; i <= STORE_KEYWORDS_MAX; i++) {
			free(names[i]);
			names[i] = NULL;
		}
		return -1;
	}
	return 1;
}

int
imap_keywords_load(struct imap_session *s)
{
	keywords_free(s);
	return keywords_read(s, s->keywords);
}

static void flags_responses(struct imap_session *s);

void
imap_keywords_refresh(struct imap_session *s)
{
	char *names[STORE_KEYWORDS_MAX + 1] = { 0 };
	bool same = true;

	if (keywords_read(s, names) < 0)
		return;		/* the client keeps the names it was told */
	for (size_t i = 0; i <= STORE_KEYWORDS_MAX; i++) {
		same = same && (names[i] == NULL ? s->keywords[i] == NULL
						 : s->keywords[i] != NULL &&
						   strcmp(names[i], s->keywords[i]) == 0);
		free(s->keywords[i]);
		s->keywords[i] = names[i];
	}
	if (!same)
		flags_responses(s);
}

int
imap_flags_write(struct imap_session *s, struct buf *b, uint32_t flags, uint64_t kw)
{
	const char *names[6 + STORE_KEYWORDS_MAX + 1];
	size_t n = 0;

	for (size_t i = 0; i < 6; i++)
		if (flags & (1u << i))
			names[n++] = system_flags[i];
	for (unsigned bit = 0; bit <= STORE_KEYWORDS_MAX && bit < 64; bit++)
		if ((kw & (UINT64_C(1) << bit)) && s->keywords[bit] != NULL)
			names[n++] = s->keywords[bit];
	return imap_write_flags(b, names, n);
}

int
imap_mailbox_lookup(struct imap_session *s, const char *name, struct store_mailbox *mb)
{
	return store_mailbox_get(s->store, s->account.id, name, mb);
}

void
imap_unselect(struct imap_session *s)
{
	free(s->msgs);
	s->msgs = NULL;
	s->n_msgs = s->cap_msgs = 0;
	keywords_free(s);
	imap_saved_clear(s);
	if (s->state == IMAP_SELECTED)
		s->state = IMAP_AUTH;
}

struct msg_list {
	struct imap_msg *v;
	size_t n, cap;
};

static void
msg_list_add(struct msg_list *l, const struct imap_msg *m)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		if (l->v == NULL)
			log_fatal("out of memory");
	}
	l->v[l->n++] = *m;
}

static void
msg_list_cb(void *ctx, const struct store_msg_state *m)
{
	const struct imap_msg im = { .uid = m->uid, .flags = m->flags, .keywords = m->keywords,
				     .modseq = m->modseq };

	msg_list_add(ctx, &im);
}

static int
msg_list_load(struct imap_session *s, int64_t mailbox_id, struct msg_list *l)
{
	struct yj_err err;

	*l = (struct msg_list){ 0 };
	if (store_msg_states(s->store, mailbox_id, 0, msg_list_cb, l, &err) < 0) {
		log_error("imap: session=%s messages: %s", s->ctx->id, err.msg);
		free(l->v);
		return -1;
	}
	return 1;
}

void
imap_send_flags(struct imap_session *s, size_t seq, const struct imap_msg *m)
{
	struct buf b;

	buf_init(&b, IMAP_RESPONSE_MAX);
	if (buf_printf(&b, "* %zu FETCH (UID %u FLAGS ", seq, m->uid) > 0 &&
	    imap_flags_write(s, &b, imap_msg_flags(m), m->keywords) > 0 &&
	    (!s->condstore || buf_printf(&b, " MODSEQ (%llu)", (unsigned long long)m->modseq) > 0) &&
	    buf_append_str(&b, ")\r\n") > 0)
		imap_send_buf(s, &b);
	buf_free(&b);
}

/* ---- \Recent (RFC 3501 2.3.2; IMAP4rev2 has none) ---- */

static size_t
recent_count(const struct imap_session *s)
{
	size_t n = 0;

	for (size_t i = 0; i < s->n_msgs; i++)
		n += s->msgs[i].recent && !s->msgs[i].gone;
	return n;
}

/* The view's messages from index first on are new to this session: it
 * takes \Recent for those no other session had first (SELECT claims
 * them; EXAMINE only looks, RFC 3501 6.3.2). Returns whether any is
 * recent. */
static bool
recent_mark(struct imap_session *s, size_t first)
{
	struct yj_err err;
	uint32_t floor;
	bool any = false;

	if (s->rev2 || first >= s->n_msgs)
		return false;
	if (store_mailbox_recent(s->store, s->mb.id, s->msgs[s->n_msgs - 1].uid + 1, !s->readonly,
				 &floor, &err) != 1) {
		log_error("imap: session=%s recent: %s", s->ctx->id, err.msg);
		return false;
	}
	for (size_t i = first; i < s->n_msgs; i++)
		if (s->msgs[i].uid >= floor)
			any = s->msgs[i].recent = true;
	return any;
}

/* What a merge found, told to the client in this order: expunges,
 * flag changes (by their final numbers), the new count. */
struct merge_out {
	uint32_t *gone;		/* seq numbers at removal, or UIDs with QRESYNC */
	size_t ngone;
	size_t *changed;	/* indexes into the new view */
	size_t nchanged;
	bool added;
	size_t first_new;	/* index of the first new message */
	bool recent;		/* the \Recent count changed (IMAP4rev1) */
};

static void
merge_report(struct imap_session *s, const struct merge_out *mo)
{
	struct buf b;

	if (mo->ngone > 0 && s->qresync) {
		buf_init(&b, IMAP_RESPONSE_MAX);
		if (buf_append_str(&b, "* VANISHED ") > 0 &&
		    imap_seqset_write(&b, mo->gone, mo->ngone) > 0 && buf_append_str(&b, "\r\n") > 0)
			imap_send_buf(s, &b);
		buf_free(&b);
	} else {
		for (size_t i = 0; i < mo->ngone; i++)
			imap_printf(s, "* %u EXPUNGE", mo->gone[i]);
	}
	for (size_t i = 0; i < mo->nchanged; i++)
		imap_send_flags(s, mo->changed[i] + 1, &s->msgs[mo->changed[i]]);
	if (mo->added)
		imap_printf(s, "* %zu EXISTS", s->n_msgs);
	if (mo->recent)
		imap_printf(s, "* %zu RECENT", recent_count(s));
}

/* What changed since the view's MODSEQ: messages (changed or new) and
 * expunged UIDs, both in UID order. */
struct msg_delta {
	struct msg_list changed;
	uint32_t *vanished;
	size_t nvanished, capvanished;
};

static void
delta_vanished_cb(void *ctx, uint32_t uid)
{
	struct msg_delta *d = ctx;

	if (d->nvanished == d->capvanished) {
		d->capvanished = d->capvanished ? d->capvanished * 2 : 64;
		d->vanished = realloc(d->vanished, d->capvanished * sizeof(*d->vanished));
		if (d->vanished == NULL)
			log_fatal("out of memory");
	}
	d->vanished[d->nvanished++] = uid;
}

static int
delta_load(struct imap_session *s, uint64_t since, struct msg_delta *d)
{
	struct yj_err err;

	*d = (struct msg_delta){ 0 };
	if (store_msg_states(s->store, s->mb.id, since, msg_list_cb, &d->changed, &err) < 0 ||
	    store_vanished_since(s->store, s->mb.id, since, delta_vanished_cb, d, &err) < 0) {
		log_error("imap: session=%s changes: %s", s->ctx->id, err.msg);
		free(d->changed.v);
		free(d->vanished);
		return -1;
	}
	return 1;
}

/* The store's list rebuilt from the view and a delta, without reading
 * the whole mailbox: the view's messages minus the expunged (and those
 * already known gone), each replaced by its changed row, then the new. */
static void
delta_apply(const struct imap_session *s, const struct msg_delta *d, struct msg_list *l)
{
	size_t c = 0, v = 0;

	*l = (struct msg_list){ 0 };
	for (size_t i = 0; i < s->n_msgs; i++) {
		const struct imap_msg *o = &s->msgs[i];

		while (v < d->nvanished && d->vanished[v] < o->uid)
			v++;
		while (c < d->changed.n && d->changed.v[c].uid < o->uid)
			c++;
		if (o->gone || (v < d->nvanished && d->vanished[v] == o->uid))
			continue;
		msg_list_add(l, c < d->changed.n && d->changed.v[c].uid == o->uid
					? &d->changed.v[c] : o);
	}
	for (c = 0; c < d->changed.n; c++)
		if (s->n_msgs == 0 || d->changed.v[c].uid > s->msgs[s->n_msgs - 1].uid)
			msg_list_add(l, &d->changed.v[c]);
}

/* The mailbox as it is now: from the changes since the view's MODSEQ
 * when the store still has every expunge record since then, else the
 * whole list. */
static int
msg_list_current(struct imap_session *s, const struct store_mailbox *mb, struct msg_list *l)
{
	struct msg_delta d;

	if (s->seen_modseq < mb->vanished_floor || s->seen_modseq == 0)
		return msg_list_load(s, s->mb.id, l);
	if (delta_load(s, s->seen_modseq, &d) < 0)
		return -1;
	delta_apply(s, &d, l);
	free(d.changed.v);
	free(d.vanished);
	return 1;
}

/* Merges the store's list (UID order) into the view. */
static void
sync_merge(struct imap_session *s, struct msg_list *l, bool expunge_ok)
{
	struct msg_list out = { 0 };
	struct merge_out mo = { 0 };
	size_t i = 0, j = 0;

	out.cap = s->n_msgs + l->n + 1;
	out.v = calloc(out.cap, sizeof(*out.v));
	mo.gone = calloc(s->n_msgs + 1, sizeof(*mo.gone));
	mo.changed = calloc(s->n_msgs + 1, sizeof(*mo.changed));
	if (out.v == NULL || mo.gone == NULL || mo.changed == NULL)
		log_fatal("out of memory");
	for (; i < s->n_msgs; i++) {
		struct imap_msg *o = &s->msgs[i];

		while (j < l->n && l->v[j].uid < o->uid)
			j++;	/* cannot be new: UIDs only grow */
		if (j < l->n && l->v[j].uid == o->uid && !o->gone) {
			struct imap_msg *n = &l->v[j];

			/* Under CONDSTORE a new MODSEQ is news even when the
			 * flags came back to what the client saw (others set
			 * and cleared one since): else its MODSEQ stays old. */
			if (n->flags != o->flags || n->keywords != o->keywords ||
			    (s->condstore && n->modseq != o->modseq))
				mo.changed[mo.nchanged++] = out.n;
			out.v[out.n] = *n;
			out.v[out.n++].recent = o->recent;
			j++;
		} else if (expunge_ok) {
			mo.gone[mo.ngone++] = s->qresync ? o->uid : (uint32_t)(out.n + 1);
		} else {
			out.v[out.n] = *o;
			out.v[out.n++].gone = true;
		}
	}
	for (; j < l->n; j++)
		if (s->n_msgs == 0 || l->v[j].uid > s->msgs[s->n_msgs - 1].uid) {
			if (!mo.added)
				mo.first_new = out.n;
			out.v[out.n++] = l->v[j];
			mo.added = true;
		}
	free(s->msgs);
	s->msgs = out.v;
	s->cap_msgs = out.cap;
	s->n_msgs = out.n;
	if (mo.added)
		mo.recent = recent_mark(s, mo.first_new);
	merge_report(s, &mo);
	free(mo.gone);
	free(mo.changed);
}

/* The selected mailbox as the store has it now into mb, by id: a RENAME
 * by another session only changes the name. 1 found, 0 deleted (the
 * session then said BYE and left the selected state), -1 store error
 * (logged; the next command tries again). A mailbox made again under
 * the name is another one (a new UIDVALIDITY) even where SQLite gave
 * it the deleted one's row id. */
static int
selected_current(struct imap_session *s, struct store_mailbox *mb)
{
	int ret = store_mailbox_get_id(s->store, s->account.id, s->mb.id, mb);

	if (ret < 0)
		return -1;
	if (ret == 1 && mb->uidvalidity == s->mb.uidvalidity) {
		snprintf(s->mb.name, sizeof(s->mb.name), "%s", mb->name);
		return 1;
	}
	/* Deleted by another session: there is no view left to keep
	 * consistent (RFC 9051 6.3.4 allows the BYE). */
	imap_printf(s, "* BYE The selected mailbox was deleted");
	imap_unselect(s);
	s->closing = true;
	s->end_reason = "mailbox-deleted";
	return 0;
}

/* Mailbox deletions the store has published since the start: a session
 * looks for its selected mailbox before a command only when the count
 * moved since it last found it (or when the count cannot be kept). */
static atomic_uint_fast64_t deletions;
static bool deletions_counted;
static pthread_once_t deletions_once = PTHREAD_ONCE_INIT;

static void
deletions_notice(void *arg, const struct store_change *ch)
{
	(void)arg;
	if (ch->kind & STORE_CHANGE_DELETE)
		atomic_fetch_add(&deletions, 1);
}

static void
deletions_init(void)
{
	deletions_counted = store_notify_subscribe(deletions_notice, NULL) == 1;
	if (!deletions_counted)
		log_error("imap: cannot count mailbox deletions; every command checks its mailbox");
}

/* The count, read before the store is asked. */
static uint64_t
deletions_now(void)
{
	pthread_once(&deletions_once, deletions_init);
	return atomic_load(&deletions);
}

bool
imap_selected_check(struct imap_session *s)
{
	struct store_mailbox mb;
	uint64_t n = deletions_now();

	int ret;

	if (s->state != IMAP_SELECTED || (deletions_counted && n == s->deletions_seen))
		return true;
	if ((ret = selected_current(s, &mb)) == 0)
		return false;
	if (ret == 1)
		s->deletions_seen = n;
	return true;
}

int
imap_sync(struct imap_session *s, bool expunge_ok)
{
	struct store_mailbox mb;
	struct msg_list l;
	bool have_gone = false;
	uint64_t n;
	int ret;

	if (s->state != IMAP_SELECTED)
		return 1;
	n = deletions_now();
	if ((ret = selected_current(s, &mb)) <= 0)
		return ret == 0 ? -1 : 1;
	s->deletions_seen = n;
	for (size_t i = 0; i < s->n_msgs && expunge_ok; i++)
		have_gone |= s->msgs[i].gone;
	if (mb.highestmodseq == s->seen_modseq && !have_gone)
		return 1;
	if (msg_list_current(s, &mb, &l) < 0)
		return 1;
	imap_keywords_refresh(s);
	sync_merge(s, &l, expunge_ok);
	free(l.v);
	s->seen_modseq = mb.highestmodseq;
	s->mb.uidnext = mb.uidnext;
	s->mb.highestmodseq = mb.highestmodseq;
	return 1;
}

size_t
imap_set_resolve(struct imap_session *s, const struct imap_seqset *set, bool uid, size_t **idx_r)
{
	return imap_set_resolve_ex(s, set, uid, false, idx_r);
}

size_t
imap_set_resolve_ex(struct imap_session *s, const struct imap_seqset *set, bool uid,
		    bool with_gone, size_t **idx_r)
{
	size_t *idx = calloc(s->n_msgs + 1, sizeof(*idx));
	size_t n = 0;
	uint32_t star;

	if (idx == NULL)
		log_fatal("out of memory");
	star = uid ? (s->n_msgs > 0 ? s->msgs[s->n_msgs - 1].uid : 0) : (uint32_t)s->n_msgs;
	for (size_t i = 0; i < s->n_msgs; i++) {
		uint32_t key = uid ? s->msgs[i].uid : (uint32_t)(i + 1);

		if ((with_gone || !s->msgs[i].gone) && (set->saved ? imap_saved_has(s, s->msgs[i].uid)
						    : imap_seqset_contains(set, key, star)))
			idx[n++] = i;
	}
	*idx_r = idx;
	return n;
}

/* The untagged responses of SELECT and EXAMINE (RFC 9051 6.3.2). */
/* RFC 8474 4.2: the selected mailbox's id. */
static void
select_mailboxid(struct imap_session *s)
{
	char id[64];

	imap_mailboxid(&s->mb, id, sizeof(id));
	imap_printf(s, "* OK [MAILBOXID (%s)] Ok", id);
}

static bool name_has_inferiors(struct imap_session *s, const char *name);

/* RFC 9051 6.3.2: an IMAP4rev2 SELECT tells the mailbox's LIST
 * response, with accurate attributes. */
static void
select_list(struct imap_session *s)
{
	struct buf b;

	buf_init(&b, 8192);
	if (buf_printf(&b, "* LIST (%s%s%s) \"%c\" ",
		       name_has_inferiors(s, s->mb.name) ? "\\HasChildren" : "\\HasNoChildren",
		       s->mb.special_use[0] != '\0' ? " " : "", s->mb.special_use, IMAP_DELIM) > 0 &&
	    imap_write_mailbox(&b, s->mb.name, s->utf8) > 0 && buf_append_str(&b, "\r\n") > 0)
		imap_send_buf(s, &b);
	buf_free(&b);
}

/* Has the mailbox a keyword in every bit? Then no new one can be made,
 * and PERMANENTFLAGS leaves out \* (RFC 9051 7.1). */
static bool
keywords_full(const struct imap_session *s)
{
	for (size_t bit = 0; bit < STORE_KEYWORDS_MAX; bit++)
		if (s->keywords[bit] == NULL)
			return false;
	return true;
}

/* "* FLAGS" and "* OK [PERMANENTFLAGS]": the flags of the mailbox, its
 * keywords included, as SELECT tells them and again whenever the set
 * changes (RFC 9051 7.3.5). */
static void
flags_responses(struct imap_session *s)
{
	struct buf b;

	buf_init(&b, IMAP_RESPONSE_MAX);
	if (buf_append_str(&b, "* FLAGS ") > 0 && imap_flags_write(s, &b, 0x1f, UINT64_MAX) > 0 &&
	    buf_append_str(&b, "\r\n* OK [PERMANENTFLAGS ") > 0) {
		if (s->readonly) {
			if (buf_append_str(&b, "()") < 0)
				goto out;
		} else {
			if (imap_flags_write(s, &b, 0x1f, UINT64_MAX) < 0)
				goto out;
			b.len--;	/* the ")" */
			if (!keywords_full(s) &&
			    buf_append_str(&b, b.data[b.len - 1] == '(' ? "\\*" : " \\*") < 0)
				goto out;
			if (buf_append_str(&b, ")") < 0)
				goto out;
		}
		if (buf_append_str(&b, "] Flags permitted\r\n") > 0)
			imap_send_buf(s, &b);
	}
out:
	buf_free(&b);
}

static void
select_responses(struct imap_session *s)
{
	size_t unseen = 0;

	flags_responses(s);
	imap_printf(s, "* %zu EXISTS", s->n_msgs);
	if (s->rev2)
		select_list(s);
	/* IMAP4rev2 has neither RECENT nor the UNSEEN code here. */
	if (!s->rev2)
		imap_printf(s, "* %zu RECENT", recent_count(s));
	for (size_t i = 0; i < s->n_msgs && !s->rev2; i++)
		if (!(s->msgs[i].flags & STORE_FLAG_SEEN)) {
			unseen = i + 1;
			break;
		}
	if (unseen > 0)
		imap_printf(s, "* OK [UNSEEN %zu] First unseen", unseen);
	imap_printf(s, "* OK [UIDVALIDITY %u] UIDs valid", s->mb.uidvalidity);
	imap_printf(s, "* OK [UIDNEXT %u] Predicted next UID", s->mb.uidnext);
	/* The codes of extensions the account switched off are left out. */
	if (!imap_cap_off(s, "CONDSTORE"))
		imap_printf(s, "* OK [HIGHESTMODSEQ %llu] Highest",
			    (unsigned long long)s->mb.highestmodseq);
	if (!imap_cap_off(s, "OBJECTID"))
		select_mailboxid(s);
}

void
imap_condstore_use(struct imap_session *s)
{
	if (s->condstore)
		return;
	s->condstore = true;
	/* RFC 7162 3.1: a mailbox selected before CONDSTORE came on has its
	 * HIGHESTMODSEQ told now (as Dovecot does), as this session knows
	 * it: the value SELECT would have given. */
	if (s->state == IMAP_SELECTED && !imap_cap_off(s, "CONDSTORE"))
		imap_printf(s, "* OK [HIGHESTMODSEQ %llu] Highest",
			    (unsigned long long)s->mb.highestmodseq);
}

int
imap_cmd_select(struct imap_session *s, struct imap_cmd *cmd)
{
	struct store_mailbox mb;
	struct msg_list l;
	int ret;

	if (s->state == IMAP_SELECTED) {
		imap_unselect(s);
		imap_printf(s, "* OK [CLOSED] Previous mailbox closed");
	}
	if (cmd->select.condstore || cmd->select.qresync)
		s->condstore = true;
	ret = imap_mailbox_lookup(s, cmd->mailbox, &mb);
	if (ret != 1) {
		imap_tagged(s, ret == 0 ? "NO [NONEXISTENT] No such mailbox"
					: "NO [UNAVAILABLE] The mailbox cannot be opened");
		return 1;
	}
	s->mb = mb;
	if (msg_list_load(s, mb.id, &l) < 0 || imap_keywords_load(s) < 0) {
		imap_tagged(s, "NO [UNAVAILABLE] The mailbox cannot be opened");
		return 1;
	}
	s->msgs = l.v;
	s->n_msgs = l.n;
	s->cap_msgs = l.cap;
	s->seen_modseq = mb.highestmodseq;
	s->readonly = cmd->name == IMAP_CMD_EXAMINE;
	s->state = IMAP_SELECTED;
	(void)recent_mark(s, 0);
	select_responses(s);
	if (cmd->select.qresync && cmd->select.uidvalidity == mb.uidvalidity)
		imap_qresync_select(s, &cmd->select);
	imap_tagged(s, "OK [%s] %s completed", s->readonly ? "READ-ONLY" : "READ-WRITE",
		    s->readonly ? "EXAMINE" : "SELECT");
	return 1;
}

int
imap_cmd_check(struct imap_session *s, struct imap_cmd *cmd)
{
	(void)imap_sync(s, true);
	imap_tagged(s, "OK CHECK completed");
	return 1;
}

/* CLOSE removes the \Deleted messages silently (RFC 9051 6.4.1) unless
 * the mailbox is read-only; UNSELECT does not. */
int
imap_cmd_close(struct imap_session *s, struct imap_cmd *cmd)
{
	const struct store_uid_range all = { 1, UINT32_MAX };
	const struct store_uidset set = { &all, 1 };
	struct yj_err err;
	uint64_t modseq;

	if (cmd->name == IMAP_CMD_CLOSE && !s->readonly &&
	    store_msg_expunge_set(s->store, s->mb.id, &set, true, NULL, NULL, &modseq, &err) < 0)
		log_error("imap: session=%s close expunge: %s", s->ctx->id, err.msg);
	imap_unselect(s);
	imap_tagged(s, "OK %s completed", imap_cmd_str(cmd->name));
	return 1;
}

static bool
name_is_inbox(const char *name)
{
	return strcasecmp(name, "INBOX") == 0;
}

/* "/a", "a//b": a level without a name, which no client means. */
static bool
name_has_empty_level(const char *name)
{
	const char dd[] = { IMAP_DELIM, IMAP_DELIM, '\0' };

	return name[0] == IMAP_DELIM || strstr(name, dd) != NULL;
}

/* CREATE (USE (...)) of RFC 6154 3: the one special use a mailbox
 * here can have, in its canonical spelling, into use; "" for none.
 * \All and \Flagged name virtual mailboxes, which the store does not
 * keep. False (with the tagged NO [USEATTR] sent) for what cannot be. */
static bool
create_use(struct imap_session *s, const struct imap_cmd *cmd, const char **use)
{
	static const char *const uses[] = { "\\Archive", "\\Drafts", "\\Junk", "\\Sent",
					    "\\Trash" };

	*use = "";
	if (cmd->strs.count == 0)
		return true;
	if (cmd->strs.count > 1) {
		imap_tagged(s, "NO [USEATTR] A mailbox has at most one special use here");
		return false;
	}
	for (size_t i = 0; i < sizeof(uses) / sizeof(uses[0]); i++)
		if (strcasecmp(uses[i], cmd->strs.v[0]) == 0) {
			*use = uses[i];
			return true;
		}
	imap_tagged(s, "NO [USEATTR] %s is not a special use a mailbox can have here",
		    cmd->strs.v[0]);
	return false;
}

/* RFC 8474 4.1: CREATE tells the new mailbox's id. */
static void
create_done(struct imap_session *s, const char *name)
{
	struct store_mailbox mb;
	char id[64];

	if (imap_cap_off(s, "OBJECTID") || imap_mailbox_lookup(s, name, &mb) != 1) {
		imap_tagged(s, "OK CREATE completed");
		return;
	}
	imap_mailboxid(&mb, id, sizeof(id));
	imap_tagged(s, "OK [MAILBOXID (%s)] CREATE completed", id);
}

/* The name a mailbox is to get by CREATE or RENAME, copied to name
 * (STORE_MAILBOX_NAME_MAX + 1 bytes); false after a tagged NO. */
static bool
new_name(struct imap_session *s, const char *wanted, char *name)
{
	struct store_mailbox mb;
	size_t len = strlen(wanted);

	if (len > STORE_MAILBOX_NAME_MAX) {
		imap_tagged(s, "NO [LIMIT] Mailbox name too long");
		return false;
	}
	memcpy(name, wanted, len + 1);
	/* A trailing delimiter says the name is meant for children (RFC
	 * 3501 6.3.3); names need no such declaration here. */
	if (len > 0 && name[len - 1] == IMAP_DELIM)
		name[--len] = '\0';
	if (len == 0 || name_is_inbox(name) || imap_mailbox_lookup(s, name, &mb) == 1) {
		imap_tagged(s, "NO [ALREADYEXISTS] Mailbox already exists");
		return false;
	}
	if (name_has_empty_level(name)) {
		imap_tagged(s, "NO [CANNOT] A level of the name is empty");
		return false;
	}
	return true;
}

int
imap_cmd_create(struct imap_session *s, struct imap_cmd *cmd)
{
	char name[STORE_MAILBOX_NAME_MAX + 1];
	struct yj_err err;
	const char *use;

	if (!new_name(s, cmd->mailbox, name) || !create_use(s, cmd, &use))
		return 1;
	/* The superior names that are missing are made too, so that each
	 * level is a mailbox (RFC 3501 6.3.3). None is subscribed: RFC 3501
	 * 6.3.3 leaves that to SUBSCRIBE, and clients subscribe what they
	 * create themselves. */
	if (store_mailbox_create_path(s->store, s->account.id, name, IMAP_DELIM, use, &err) < 0) {
		imap_tagged(s, "NO [CANNOT] %s", err.msg);
		return 1;
	}
	create_done(s, name);
	return 1;
}

/* RFC 3501 6.3.4: a mailbox with inferior names may be deleted; its
 * name stays as a level of hierarchy (\Noselect, or \NonExistent) as
 * long as they do, and deleting that level is an error. */
int
imap_cmd_delete(struct imap_session *s, struct imap_cmd *cmd)
{
	struct yj_err err;
	int ret;

	if (name_is_inbox(cmd->mailbox)) {
		imap_tagged(s, "NO [CANNOT] INBOX cannot be deleted");
		return 1;
	}
	if (s->state == IMAP_SELECTED && strcmp(s->mb.name, cmd->mailbox) == 0) {
		imap_unselect(s);
		imap_printf(s, "* OK [CLOSED] Mailbox closed");
	}
	ret = store_mailbox_delete(s->store, s->account.id, cmd->mailbox, &err);
	if (ret == 0 && name_has_inferiors(s, cmd->mailbox))
		imap_tagged(s, "NO [NONEXISTENT] Name has inferior hierarchical names and is "
			       "no mailbox");
	else if (ret == 0)
		imap_tagged(s, "NO [NONEXISTENT] No such mailbox");
	else if (ret < 0)
		imap_tagged(s, "NO [CANNOT] %s", err.msg);
	else
		imap_tagged(s, "OK DELETE completed");
	return 1;
}

/* RFC 3501 6.3.5: INBOX's messages move to a new mailbox of that name
 * and INBOX stays, empty. A session that has INBOX selected sees the
 * expunges as for a MOVE. */
static int
rename_inbox(struct imap_session *s, const char *to)
{
	struct store_copy_result res;
	struct yj_err err;
	int ret;

	ret = store_mailbox_rename_inbox(s->store, s->account.id, to, &res, &err);
	free(res.map);
	if (ret == 1)
		imap_tagged(s, "OK RENAME completed");
	else if (ret == 0)
		imap_tagged(s, "NO [NONEXISTENT] No such mailbox");
	else
		imap_tagged(s, "NO [CANNOT] %s", err.msg);
	return 1;
}

/* The new name follows CREATE's rules, and the store makes its missing
 * superior names (RFC 9051 6.3.6). */
int
imap_cmd_rename(struct imap_session *s, struct imap_cmd *cmd)
{
	char to[STORE_MAILBOX_NAME_MAX + 1];
	struct yj_err err;
	int ret;

	if (!new_name(s, cmd->mailbox2, to))
		return 1;
	if (name_is_inbox(cmd->mailbox))
		return rename_inbox(s, to);
	ret = store_mailbox_rename(s->store, s->account.id, cmd->mailbox, to, &err);
	if (ret == 0)
		imap_tagged(s, "NO [NONEXISTENT] No such mailbox");
	else if (ret < 0)
		imap_tagged(s, "NO [CANNOT] %s", err.msg);
	else {
		if (s->state == IMAP_SELECTED && s->mb.id != 0 &&
		    strcmp(s->mb.name, cmd->mailbox) == 0)
			snprintf(s->mb.name, sizeof(s->mb.name), "%s", to);
		imap_tagged(s, "OK RENAME completed");
	}
	return 1;
}

int
imap_cmd_subscribe(struct imap_session *s, struct imap_cmd *cmd)
{
	bool on = cmd->name == IMAP_CMD_SUBSCRIBE;
	struct store_mailbox mb;
	struct yj_err err;

	if (imap_mailbox_lookup(s, cmd->mailbox, &mb) != 1) {
		/* A name kept subscribed after its mailbox went can go. */
		if (!on && store_subscription_forget(s->store, s->account.id, cmd->mailbox, &err) == 1)
			imap_tagged(s, "OK %s completed", imap_cmd_str(cmd->name));
		else
			imap_tagged(s, "NO [NONEXISTENT] No such mailbox");
		return 1;
	}
	if (store_mailbox_subscribe(s->store, mb.id, on, &err) < 0) {
		imap_tagged(s, "NO [UNAVAILABLE] %s", err.msg);
		return 1;
	}
	imap_tagged(s, "OK %s completed", imap_cmd_str(cmd->name));
	return 1;
}

int
imap_cmd_namespace(struct imap_session *s, struct imap_cmd *cmd)
{
	imap_printf(s, "* NAMESPACE ((\"\" \"%c\")) NIL NIL", IMAP_DELIM);
	imap_tagged(s, "OK NAMESPACE completed");
	return 1;
}

/* ---- STATUS ---- */

struct status_count {
	uint32_t unseen, deleted, recent;
	uint32_t recent_floor;		/* UIDNEXT when RECENT is not asked */
	uint64_t size, deleted_size;
};

static void
status_cb(void *ctx, const struct store_msg *m)
{
	struct status_count *c = ctx;

	c->recent += m->uid >= c->recent_floor;
	c->unseen += !(m->flags & STORE_FLAG_SEEN);
	c->deleted += (m->flags & STORE_FLAG_DELETED) != 0;
	c->size += m->size;
	if (m->flags & STORE_FLAG_DELETED)
		c->deleted_size += m->size;
}

/* One STATUS item: "MESSAGES 3". */
static int
status_item(struct imap_session *s, const struct store_mailbox *mb,
	    const struct status_count *c, unsigned item, struct buf *b)
{
	char id[64];

	switch (item) {
	case IMAP_STATUS_MESSAGES:
		return buf_printf(b, "MESSAGES %u", mb->messages);
	case IMAP_STATUS_UIDNEXT:
		return buf_printf(b, "UIDNEXT %u", mb->uidnext);
	case IMAP_STATUS_UIDVALIDITY:
		return buf_printf(b, "UIDVALIDITY %u", mb->uidvalidity);
	case IMAP_STATUS_UNSEEN:
		return buf_printf(b, "UNSEEN %u", c->unseen);
	case IMAP_STATUS_DELETED:
		return buf_printf(b, "DELETED %u", c->deleted);
	case IMAP_STATUS_SIZE:
		return buf_printf(b, "SIZE %llu", (unsigned long long)c->size);
	case IMAP_STATUS_RECENT:
		return buf_printf(b, "RECENT %u", c->recent);
	case IMAP_STATUS_HIGHESTMODSEQ:
		return buf_printf(b, "HIGHESTMODSEQ %llu", (unsigned long long)mb->highestmodseq);
	case IMAP_STATUS_MAILBOXID:
		imap_mailboxid(mb, id, sizeof(id));
		return buf_printf(b, "MAILBOXID (%s)", id);
	case IMAP_STATUS_APPENDLIMIT:
		return buf_printf(b, "APPENDLIMIT %ld", s->cfg->message_size_limit);
	case IMAP_STATUS_DELETED_STORAGE:
		/* In the STORAGE resource's units, 1024 octets (RFC 9208 4.2). */
		return buf_printf(b, "DELETED-STORAGE %llu",
				  (unsigned long long)((c->deleted_size + 1023) / 1024));
	default:
		return -1;
	}
}

/* Appends the STATUS items of mb in the order asked: "MESSAGES 3 UIDNEXT 4". */
static int
status_items(struct imap_session *s, const struct store_mailbox *mb,
	     const struct imap_status_items *items, struct buf *b)
{
	struct status_count c = { .recent_floor = mb->uidnext };
	struct yj_err err;

	/* The connection may have gone back to the pool while the line
	 * before waited on the client (imap_writes_let_go). */
	if (!imap_store_ready(s))
		return -1;
	/* STATUS looks at \Recent without taking it (RFC 3501 6.3.10). */
	if ((items->mask & IMAP_STATUS_RECENT) &&
	    store_mailbox_recent(s->store, mb->id, 0, false, &c.recent_floor, &err) < 0)
		return -1;
	if ((items->mask & (IMAP_STATUS_UNSEEN | IMAP_STATUS_DELETED | IMAP_STATUS_SIZE |
			    IMAP_STATUS_DELETED_STORAGE | IMAP_STATUS_RECENT)) &&
	    store_msg_list(s->store, mb->id, status_cb, &c, &err) < 0)
		return -1;
	for (size_t i = 0; i < items->count; i++)
		if ((i > 0 && buf_append_str(b, " ") < 0) ||
		    status_item(s, mb, &c, items->order[i], b) < 0)
			return -1;
	return 1;
}

static int
status_response(struct imap_session *s, const struct store_mailbox *mb,
		const struct imap_status_items *items)
{
	struct buf b;
	int ret;

	buf_init(&b, 8192);
	ret = buf_append_str(&b, "* STATUS ") > 0 && imap_write_mailbox(&b, mb->name, s->utf8) > 0 &&
	      buf_append_str(&b, " (") > 0 && status_items(s, mb, items, &b) > 0 &&
	      buf_append_str(&b, ")\r\n") > 0;
	if (ret)
		imap_send_buf(s, &b);
	buf_free(&b);
	return ret ? 1 : -1;
}

int
imap_cmd_status(struct imap_session *s, struct imap_cmd *cmd)
{
	struct store_mailbox mb;
	int ret;

	if (imap_mailbox_lookup(s, cmd->mailbox, &mb) != 1) {
		imap_tagged(s, "NO [NONEXISTENT] No such mailbox");
		return 1;
	}
	/* The counts are read before the line is written: a client slow to
	 * take it (output of earlier commands still queued) holds no store
	 * connection. */
	imap_writes_let_go(s);
	ret = status_response(s, &mb, &cmd->status);
	(void)imap_writes_done(s);
	if (ret < 0) {
		imap_tagged(s, "NO [UNAVAILABLE] Status not available");
		return 1;
	}
	imap_tagged(s, "OK STATUS completed");
	return 1;
}

/* ---- LIST and LSUB ---- */

struct mb_list {
	struct store_mailbox *v;
	size_t n, cap;
	/* v's entries in strcmp order of their names (mb_list_sort): each
	 * lookup of a LIST of thousands of mailboxes is a binary search,
	 * not a scan of them all. */
	const struct store_mailbox **by_name;
};

static void
mb_list_cb(void *ctx, const struct store_mailbox *mb)
{
	struct mb_list *l = ctx;

	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 32;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		if (l->v == NULL)
			log_fatal("out of memory");
	}
	l->v[l->n++] = *mb;
}

static int
by_name_cmp(const void *a, const void *b)
{
	const struct store_mailbox *const *x = a, *const *y = b;

	return strcmp((*x)->name, (*y)->name);
}

/* Makes l->by_name, once every entry is in l. */
static void
mb_list_sort(struct mb_list *l)
{
	if ((l->by_name = malloc((l->n + 1) * sizeof(*l->by_name))) == NULL)
		log_fatal("out of memory");
	for (size_t i = 0; i < l->n; i++)
		l->by_name[i] = &l->v[i];
	qsort(l->by_name, l->n, sizeof(*l->by_name), by_name_cmp);
}

static void
mb_list_free(struct mb_list *l)
{
	free(l->v);
	free(l->by_name);
}

/* The first entry of l->by_name whose name is not before key (l->n if
 * none). */
static size_t
mb_list_lower(const struct mb_list *l, const char *key)
{
	size_t lo = 0, hi = l->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(l->by_name[mid]->name, key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The names below name ("a/b" for "a") all begin with "name/" and so
 * follow one another in l->by_name: the first of them (l->n if none),
 * with the prefix in prefix. */
static size_t
children_start(const struct mb_list *l, const char *name, char *prefix, size_t size,
	       size_t *len_r)
{
	int len = snprintf(prefix, size, "%s%c", name, IMAP_DELIM);

	if (len < 0 || (size_t)len >= size)
		return l->n;
	*len_r = (size_t)len;
	return mb_list_lower(l, prefix);
}

static bool
has_children(const struct mb_list *l, const char *name)
{
	char prefix[STORE_MAILBOX_NAME_MAX + 2];
	size_t len = 0, i = children_start(l, name, prefix, sizeof(prefix), &len);

	return i < l->n && strncmp(l->by_name[i]->name, prefix, len) == 0;
}

/* Does name match one of the patterns? */
static bool
list_matches(const struct imap_list *list, const char *name)
{
	char pat[2 * IMAP_MAILBOX_MAX + 2];

	for (size_t i = 0; i < list->npatterns; i++) {
		snprintf(pat, sizeof(pat), "%s%s", list->reference, list->patterns[i]);
		if (imap_list_match(pat, name, IMAP_DELIM))
			return true;
	}
	return false;
}

/* Has name a subscribed mailbox below it that the command's patterns
 * do not list themselves? RECURSIVEMATCH tells of the children the
 * client would not see (RFC 5258 3); one it lists needs no CHILDINFO on
 * its parent (as Dovecot answers). */
static bool
has_subscribed_child(const struct mb_list *l, const struct imap_list *list, const char *name)
{
	char prefix[STORE_MAILBOX_NAME_MAX + 2];
	size_t len = 0, i = children_start(l, name, prefix, sizeof(prefix), &len);

	for (; i < l->n && strncmp(l->by_name[i]->name, prefix, len) == 0; i++)
		if (l->by_name[i]->subscribed && !list_matches(list, l->by_name[i]->name))
			return true;
	return false;
}

/* A subscribed name no mailbox has (kept when its mailbox was deleted):
 * an entry of id 0. */
static void
kept_cb(void *ctx, const char *name)
{
	struct store_mailbox mb;

	memset(&mb, 0, sizeof(mb));
	snprintf(mb.name, sizeof(mb.name), "%s", name);
	mb.subscribed = true;
	mb_list_cb(ctx, &mb);
}

/* Has the account a mailbox below name ("a/b" for "a")? */
static bool
name_has_inferiors(struct imap_session *s, const char *name)
{
	struct mb_list l = { 0 };
	struct yj_err err;
	bool ret;

	if (store_mailbox_list(s->store, s->account.id, mb_list_cb, &l, &err) < 0) {
		mb_list_free(&l);
		return false;
	}
	mb_list_sort(&l);
	ret = has_children(&l, name);
	mb_list_free(&l);
	return ret;
}

/* \HasChildren and \HasNoChildren are CHILDREN's (RFC 3348), or asked
 * for by RETURN (CHILDREN) of LIST-EXTENDED (RFC 5258 4). */
static bool
list_says_children(const struct imap_session *s, const struct imap_cmd *cmd)
{
	return !imap_cap_off(s, "CHILDREN") || (cmd->list.ret & IMAP_LIST_RET_CHILDREN) != 0;
}

static int
list_one(struct imap_session *s, struct imap_cmd *cmd, const struct mb_list *l,
	 const struct store_mailbox *mb)
{
	bool lsub = cmd->name == IMAP_CMD_LSUB;
	unsigned ret = cmd->list.ret;
	bool subscribed_only = lsub || (cmd->list.select & IMAP_LIST_SEL_SUBSCRIBED);
	/* RFC 5258 3.5: with RECURSIVEMATCH, a mailbox with a subscribed
	 * mailbox below it is listed, with CHILDINFO, subscribed or not. */
	bool childinfo = !lsub && (cmd->list.select & IMAP_LIST_SEL_SUBSCRIBED) &&
			 (cmd->list.select & IMAP_LIST_SEL_RECURSIVEMATCH) &&
			 has_subscribed_child(l, &cmd->list, mb->name);
	const char *sep = "";
	struct buf b;
	int ok;

	if (subscribed_only && !mb->subscribed && !childinfo)
		return 1;
	if (mb->id == 0 && !subscribed_only)
		return 1;
	if ((cmd->list.select & IMAP_LIST_SEL_SPECIAL_USE) && mb->special_use[0] == '\0')
		return 1;
	buf_init(&b, 8192);
	ok = buf_printf(&b, "* %s (", lsub ? "LSUB" : "LIST") > 0;
#define ATTR(str)                                                                         \
	do {                                                                              \
		ok = ok && buf_printf(&b, "%s%s", sep, str) > 0;                         \
		sep = " ";                                                                \
	} while (0)
	if (!lsub && mb->id != 0 && list_says_children(s, cmd))
		ATTR(has_children(l, mb->name) ? "\\HasChildren" : "\\HasNoChildren");
	/* \Subscribed is LIST's (RFC 5258); an LSUB line says it anyway. */
	if (mb->subscribed && !lsub && (subscribed_only || (ret & IMAP_LIST_RET_SUBSCRIBED)))
		ATTR("\\Subscribed");
	/* RFC 5258 3.1: a subscribed name without a mailbox. */
	if (mb->id == 0 && !lsub)
		ATTR("\\NonExistent");
	if (mb->special_use[0] != '\0' && !lsub && !imap_cap_off(s, "SPECIAL-USE"))
		ATTR(mb->special_use);
#undef ATTR
	ok = ok && buf_printf(&b, ") \"%c\" ", IMAP_DELIM) > 0 &&
	     imap_write_mailbox(&b, mb->name, s->utf8) > 0 &&
	     (!childinfo || buf_append_str(&b, " (\"CHILDINFO\" (\"SUBSCRIBED\"))") > 0) &&
	     buf_append_str(&b, "\r\n") > 0;
	if (ok)
		imap_send_buf(s, &b);
	buf_free(&b);
	if (ok && (ret & IMAP_LIST_RET_STATUS) && !lsub)
		(void)status_response(s, mb, &cmd->list.status);
	return ok ? 1 : -1;
}

/* Is name a mailbox of l (a subscribed one, with subscribed)? */
static bool
mb_list_has(const struct mb_list *l, const char *name, bool subscribed)
{
	for (size_t i = mb_list_lower(l, name); i < l->n && strcmp(l->by_name[i]->name, name) == 0;
	     i++)
		if (!subscribed || l->by_name[i]->subscribed)
			return true;
	return false;
}

/* Is name one of the levels sent so far (few: a scan)? */
static bool
level_sent(const struct mb_list *sent, const char *name)
{
	for (size_t i = 0; i < sent->n; i++)
		if (strcmp(sent->v[i].name, name) == 0)
			return true;
	return false;
}

/* Does a level of mailbox mb need a line of its own? LIST: the parent
 * levels of mailboxes that are not mailboxes themselves ("a" of "a/b"
 * alone, as DELETE of a mailbox with children leaves it, RFC 3501
 * 6.3.4). LSUB: the unsubscribed levels above a subscribed mailbox that
 * the pattern does not reach ("foo" for "%" when only "foo/bar" is
 * subscribed, RFC 3501 6.3.9). */
static bool
level_wanted(const struct imap_cmd *cmd, const struct mb_list *l,
	     const struct store_mailbox *mb, const char *level)
{
	if (cmd->name == IMAP_CMD_LSUB)
		return mb->subscribed && !list_matches(&cmd->list, mb->name) &&
		       !mb_list_has(l, level, true);
	return !mb_list_has(l, level, false);
}

/* The levels of level_wanted: LIST gives them \NonExistent in IMAP4rev2
 * and extended LIST, \Noselect in RFC 3501's, both with \HasChildren;
 * LSUB \Noselect. Each once, for any pattern that matches the name
 * (RFC 3501's example lists a deleted parent for "*"; RFC 9051 6.3.9
 * asks for them for a trailing "%"). */
static void
list_levels(struct imap_session *s, struct imap_cmd *cmd, const struct mb_list *l)
{
	bool lsub = cmd->name == IMAP_CMD_LSUB;
	bool extended = !lsub && (s->rev2 || cmd->list.select != 0 || cmd->list.ret != 0);
	char name[STORE_MAILBOX_NAME_MAX + 1];
	struct mb_list sent = { 0 };
	struct store_mailbox level;
	struct buf b;

	if (cmd->list.select != 0)
		return;
	memset(&level, 0, sizeof(level));
	for (size_t i = 0; i < l->n; i++) {
		for (char *d = strchr(l->v[i].name, IMAP_DELIM); d != NULL; d = strchr(d + 1, IMAP_DELIM)) {
			snprintf(name, sizeof(name), "%.*s", (int)(d - l->v[i].name), l->v[i].name);
			if (!level_wanted(cmd, l, &l->v[i], name) || level_sent(&sent, name) ||
			    !list_matches(&cmd->list, name))
				continue;
			buf_init(&b, 8192);
			if (buf_printf(&b, "* %s (%s%s) \"%c\" ", lsub ? "LSUB" : "LIST",
				       extended ? "\\NonExistent" : "\\Noselect",
				       !lsub && list_says_children(s, cmd) ? " \\HasChildren" : "",
				       IMAP_DELIM) > 0 &&
			    imap_write_mailbox(&b, name, s->utf8) > 0 && buf_append_str(&b, "\r\n") > 0)
				imap_send_buf(s, &b);
			buf_free(&b);
			memcpy(level.name, name, strlen(name) + 1);
			mb_list_cb(&sent, &level);
		}
	}
	free(sent.v);
}

/* The account's mailboxes (and for LSUB or SUBSCRIBED, the subscribed
 * names without one) into l, all read before a line is written. */
static int
list_read(struct imap_session *s, const struct imap_cmd *cmd, struct mb_list *l,
	  struct yj_err *err)
{
	if (store_mailbox_list(s->store, s->account.id, mb_list_cb, l, err) < 0)
		return -1;
	if ((cmd->name == IMAP_CMD_LSUB || (cmd->list.select & IMAP_LIST_SEL_SUBSCRIBED)) &&
	    store_subscription_kept_list(s->store, s->account.id, kept_cb, l, err) < 0)
		return -1;
	mb_list_sort(l);
	return 1;
}

/* The lines of the LIST, a mailbox at a time: what LIST-STATUS asks of
 * a mailbox is read just before its lines are written, through the
 * connection the session has then (imap_writes_let_go). False if the
 * store could not be had again. A client that stopped taking the output
 * (write_timeout) is not read for any longer. */
static bool
list_send(struct imap_session *s, struct imap_cmd *cmd, const struct mb_list *l)
{
	struct store_mailbox mb;

	for (size_t i = 0; i < l->n && !s->conn->failed; i++) {
		if (!list_matches(&cmd->list, l->v[i].name))
			continue;
		mb = l->v[i];
		if (cmd->list.ret & IMAP_LIST_RET_STATUS) {
			if (!imap_store_ready(s))
				return false;
			/* Deleted since it was listed: not said. */
			if (imap_mailbox_lookup(s, l->v[i].name, &mb) != 1)
				continue;
		}
		if (list_one(s, cmd, l, &mb) < 0)
			break;
		/* Thousands of mailboxes with their STATUS let other
		 * steps go first now and then (base/block.h). */
		block_yield();
	}
	list_levels(s, cmd, l);
	return true;
}

int
imap_cmd_list(struct imap_session *s, struct imap_cmd *cmd)
{
	struct mb_list l = { 0 };
	struct yj_err err;
	bool sent;

	if (cmd->list.npatterns == 1 && cmd->list.patterns[0][0] == '\0') {
		/* RFC 9051 6.3.9: the delimiter and the root of the reference. */
		imap_printf(s, "* %s (\\Noselect) \"%c\" \"\"", imap_cmd_str(cmd->name), IMAP_DELIM);
		imap_tagged(s, "OK %s completed", imap_cmd_str(cmd->name));
		return 1;
	}
	if (list_read(s, cmd, &l, &err) < 0) {
		mb_list_free(&l);
		imap_tagged(s, "NO [UNAVAILABLE] %s", err.msg);
		return 1;
	}
	/* An account of thousands of mailboxes answers in many sends: a
	 * client slow to take them holds no store connection meanwhile. */
	imap_writes_let_go(s);
	sent = list_send(s, cmd, &l);
	if (!imap_writes_done(s))
		sent = false;
	mb_list_free(&l);
	if (!sent)
		imap_tagged(s, "NO [UNAVAILABLE] The mail store is not available; try again later");
	else
		imap_tagged(s, "OK %s completed", imap_cmd_str(cmd->name));
	return 1;
}
