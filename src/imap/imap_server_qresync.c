/* imap_server_qresync.c - QRESYNC (RFC 7162 3.2): what a reconnecting
 * client missed, as VANISHED (EARLIER) and FETCH responses. The exact
 * expunges come from the store's records; where it has compacted them,
 * the client's known UIDs and sequence match data narrow the guess. */
#include <stdlib.h>

#include "base/log.h"
#include "imap/imap_session.h"

struct uid_list {
	uint32_t *v;
	size_t n, cap;
	const struct imap_seqset *filter;	/* only these UIDs, or NULL */
	uint32_t star;
};

static void
uid_add(void *ctx, uint32_t uid)
{
	struct uid_list *l = ctx;

	if (l->filter != NULL && !imap_seqset_contains(l->filter, uid, l->star))
		return;
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		if (l->v == NULL)
			log_fatal("out of memory");
	}
	l->v[l->n++] = uid;
}

/* One number after another of a sequence set, in the order given. */
struct seq_walk {
	const struct imap_seqset *set;
	size_t range;
	uint64_t next;
};

static bool
seq_walk_next(struct seq_walk *w, uint32_t *n_r)
{
	while (w->range < w->set->count) {
		const struct imap_seq_range *r = &w->set->ranges[w->range];

		if (r->lo == IMAP_SEQ_STAR || r->hi == IMAP_SEQ_STAR)
			return false;	/* "*" names no number the client knew */
		if (w->next < r->lo)
			w->next = r->lo;
		if (w->next <= r->hi) {
			*n_r = (uint32_t)w->next++;
			return true;
		}
		w->range++;
	}
	return false;
}

/* RFC 7162 3.2.5.2: the highest UID of the client's (message number,
 * UID) pairs that still has the same number. The client saw as many
 * messages up to that UID as the mailbox has now, and none can have
 * been added below it, so none of them was expunged. The numbers must
 * rise (which also bounds the walk by the view's size); the walk stops
 * at the first pair that is out of order or past the view. 0: none. */
static uint32_t
seq_match_floor(const struct imap_session *s, const struct imap_select *sel)
{
	struct seq_walk seqs = { &sel->seq_match_seqs, 0, 0 };
	struct seq_walk uids = { &sel->seq_match_uids, 0, 0 };
	uint32_t seq, uid, last = 0, floor = 0;

	if (!sel->seq_match_set || sel->seq_match_seqs.saved || sel->seq_match_uids.saved)
		return 0;
	while (seq_walk_next(&seqs, &seq) && seq_walk_next(&uids, &uid)) {
		if (seq <= last || seq > s->n_msgs)
			break;
		last = seq;
		if (s->msgs[seq - 1].uid == uid && uid > floor)
			floor = uid;
	}
	return floor;
}

/* Expunged since `since`: from the store's records if it still has
 * them all; else every UID below UIDNEXT that the view lacks (RFC 7162
 * allows reporting more than was removed), above the UID up to which
 * the client's sequence match data shows nothing went (floor). */
static void
vanished_collect(struct imap_session *s, uint64_t since, uint32_t floor, struct uid_list *l)
{
	struct yj_err err;
	size_t k = 0;

	if (since >= s->mb.vanished_floor &&
	    store_vanished_since(s->store, s->mb.id, since, uid_add, l, &err) >= 0)
		return;
	l->n = 0;
	for (uint32_t uid = floor + 1; uid < s->mb.uidnext; uid++) {
		while (k < s->n_msgs && s->msgs[k].uid < uid)
			k++;
		if (k < s->n_msgs && s->msgs[k].uid == uid)
			continue;
		uid_add(l, uid);
	}
}

static void
vanished_send(struct imap_session *s, const struct uid_list *l)
{
	struct buf b;

	if (l->n == 0)
		return;
	buf_init(&b, IMAP_RESPONSE_MAX);
	if (buf_append_str(&b, "* VANISHED (EARLIER) ") > 0 &&
	    imap_seqset_write(&b, l->v, l->n) > 0 && buf_append_str(&b, "\r\n") > 0)
		imap_send_buf(s, &b);
	buf_free(&b);
}

static void
vanished_earlier(struct imap_session *s, uint64_t since, const struct imap_seqset *set,
		 uint32_t floor)
{
	struct uid_list l = { .filter = set, .star = s->mb.uidnext ? s->mb.uidnext - 1 : 0 };

	vanished_collect(s, since, floor, &l);
	vanished_send(s, &l);
	free(l.v);
}

void
imap_vanished_earlier(struct imap_session *s, uint64_t since, const struct imap_seqset *set)
{
	vanished_earlier(s, since, set, 0);
}

void
imap_qresync_select(struct imap_session *s, const struct imap_select *sel)
{
	struct buf b;

	vanished_earlier(s, sel->modseq, sel->known_uids_set ? &sel->known_uids : NULL,
			 seq_match_floor(s, sel));
	for (size_t i = 0; i < s->n_msgs; i++) {
		const struct imap_msg *m = &s->msgs[i];

		if (m->modseq <= sel->modseq)
			continue;
		buf_init(&b, IMAP_RESPONSE_MAX);
		if (buf_printf(&b, "* %zu FETCH (UID %u FLAGS ", i + 1, m->uid) > 0 &&
		    imap_flags_write(s, &b, imap_msg_flags(m), m->keywords) > 0 &&
		    buf_printf(&b, " MODSEQ (%llu))\r\n", (unsigned long long)m->modseq) > 0)
			imap_send_buf(s, &b);
		buf_free(&b);
	}
}
