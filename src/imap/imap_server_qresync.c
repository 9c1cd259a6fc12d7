/* imap_server_qresync.c - QRESYNC (RFC 7162 3.2): what a reconnecting
 * client missed, as VANISHED (EARLIER) and FETCH responses. */
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

/* Expunged since `since`: from the store's records if it still has
 * them all; else every UID below UIDNEXT that the view lacks (RFC 7162
 * allows reporting more than was removed). */
static void
vanished_collect(struct imap_session *s, uint64_t since, struct uid_list *l)
{
	struct yj_err err;
	size_t k = 0;

	if (since >= s->mb.vanished_floor &&
	    store_vanished_since(s->store, s->mb.id, since, uid_add, l, &err) >= 0)
		return;
	l->n = 0;
	for (uint32_t uid = 1; uid < s->mb.uidnext; uid++) {
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

void
imap_vanished_earlier(struct imap_session *s, uint64_t since, const struct imap_seqset *set)
{
	struct uid_list l = { .filter = set, .star = s->mb.uidnext ? s->mb.uidnext - 1 : 0 };

	vanished_collect(s, since, &l);
	vanished_send(s, &l);
	free(l.v);
}

void
imap_qresync_select(struct imap_session *s, const struct imap_select *sel)
{
	struct buf b;

	imap_vanished_earlier(s, sel->modseq, sel->known_uids_set ? &sel->known_uids : NULL);
	for (size_t i = 0; i < s->n_msgs; i++) {
		const struct imap_msg *m = &s->msgs[i];

		if (m->modseq <= sel->modseq)
			continue;
		buf_init(&b, IMAP_RESPONSE_MAX);
		if (buf_printf(&b, "* %zu FETCH (UID %u FLAGS ", i + 1, m->uid) > 0 &&
		    imap_flags_write(s, &b, m->flags, m->keywords) > 0 &&
		    buf_printf(&b, " MODSEQ (%llu))\r\n", (unsigned long long)m->modseq) > 0)
			imap_send_buf(s, &b);
		buf_free(&b);
	}
}
