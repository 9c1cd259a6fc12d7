/* imap_server_search.c - SEARCH and UID SEARCH (RFC 9051 6.4.4) with the
 * common keys and ESEARCH results (RFC 4731). Text keys compare
 * case-insensitively (ASCII) against the raw header values or body. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/log.h"
#include "imap/imap_session.h"
#include "mime/mime.h"

struct search_msg {
	struct imap_session *s;
	const struct imap_msg *m;
	uint32_t seq;
	bool loaded, failed;
	struct store_msg sm;
	struct buf body;
	struct mime_msg mm;
};

static bool
contains_ci(const char *h, size_t hlen, const char *n, size_t nlen)
{
	if (nlen == 0)
		return true;
	for (size_t i = 0; i + nlen <= hlen; i++)
		if (strncasecmp(h + i, n, nlen) == 0)
			return true;
	return false;
}

static bool
search_load(struct search_msg *sm)
{
	if (!sm->loaded) {
		sm->loaded = true;
		if (imap_msg_load(sm->s, sm->m->uid, &sm->body, &sm->sm) < 0)
			sm->failed = true;
		else
			mime_parse(&sm->mm, sm->body.data ? sm->body.data : "", sm->body.len);
	}
	return !sm->failed;
}

/* Does a header field named name (any of its occurrences) contain str? */
static bool
header_has(struct search_msg *sm, const char *name, const char *str, size_t len)
{
	const char *h;
	size_t hlen, nlen = strlen(name), pos = 0;

	if (!search_load(sm))
		return false;
	h = sm->mm.data + sm->mm.parts[0].hdr_off;
	hlen = sm->mm.parts[0].hdr_len;
	while (pos < hlen) {
		size_t start = pos;

		do {
			const char *nl = memchr(h + pos, '\n', hlen - pos);

			pos = nl ? (size_t)(nl - h) + 1 : hlen;
		} while (pos < hlen && (h[pos] == ' ' || h[pos] == '\t'));
		if (pos - start > nlen && strncasecmp(h + start, name, nlen) == 0 &&
		    h[start + nlen] == ':' &&
		    contains_ci(h + start + nlen + 1, pos - start - nlen - 1, str, len))
			return true;
	}
	return false;
}

static int
date_of(int64_t t, struct imap_date *d)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL)
		return -1;
	*d = (struct imap_date){ tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday };
	return 1;
}

static bool key_match(struct search_msg *sm, const struct imap_search_key *k);

static bool
all_match(struct search_msg *sm, const struct imap_search_key *k)
{
	for (; k != NULL; k = k->next)
		if (!key_match(sm, k))
			return false;
	return true;
}

static bool
keyword_has(struct search_msg *sm, const char *name)
{
	for (unsigned bit = 0; bit < 64; bit++)
		if ((sm->m->keywords & (UINT64_C(1) << bit)) && sm->s->keywords[bit] != NULL &&
		    strcasecmp(sm->s->keywords[bit], name) == 0)
			return true;
	return false;
}

static bool
key_match(struct search_msg *sm, const struct imap_search_key *k)
{
	const struct imap_msg *m = sm->m;
	uint32_t star_seq = (uint32_t)sm->s->n_msgs;
	uint32_t star_uid = sm->s->n_msgs ? sm->s->msgs[sm->s->n_msgs - 1].uid : 0;
	struct imap_date d;
	int cmp;

	switch (k->type) {
	case IMAP_SK_ALL: return true;
	case IMAP_SK_AND: return all_match(sm, k->child);
	case IMAP_SK_OR: return key_match(sm, k->child) || key_match(sm, k->child->next);
	case IMAP_SK_NOT: return !key_match(sm, k->child);
	case IMAP_SK_SEQSET: return imap_seqset_contains(&k->set, sm->seq, star_seq);
	case IMAP_SK_UID: return imap_seqset_contains(&k->set, m->uid, star_uid);
	case IMAP_SK_ANSWERED: return m->flags & STORE_FLAG_ANSWERED;
	case IMAP_SK_DELETED: return m->flags & STORE_FLAG_DELETED;
	case IMAP_SK_DRAFT: return m->flags & STORE_FLAG_DRAFT;
	case IMAP_SK_FLAGGED: return m->flags & STORE_FLAG_FLAGGED;
	case IMAP_SK_SEEN: return m->flags & STORE_FLAG_SEEN;
	case IMAP_SK_UNANSWERED: return !(m->flags & STORE_FLAG_ANSWERED);
	case IMAP_SK_UNDELETED: return !(m->flags & STORE_FLAG_DELETED);
	case IMAP_SK_UNDRAFT: return !(m->flags & STORE_FLAG_DRAFT);
	case IMAP_SK_UNFLAGGED: return !(m->flags & STORE_FLAG_FLAGGED);
	case IMAP_SK_UNSEEN: return !(m->flags & STORE_FLAG_SEEN);
	case IMAP_SK_RECENT: case IMAP_SK_NEW: return false;
	case IMAP_SK_OLD: return true;
	case IMAP_SK_KEYWORD: return keyword_has(sm, k->str);
	case IMAP_SK_UNKEYWORD: return !keyword_has(sm, k->str);
	case IMAP_SK_FROM: return header_has(sm, "From", k->str, k->len);
	case IMAP_SK_TO: return header_has(sm, "To", k->str, k->len);
	case IMAP_SK_CC: return header_has(sm, "Cc", k->str, k->len);
	case IMAP_SK_BCC: return header_has(sm, "Bcc", k->str, k->len);
	case IMAP_SK_SUBJECT: return header_has(sm, "Subject", k->str, k->len);
	case IMAP_SK_HEADER: return header_has(sm, k->str, k->str2, k->len2);
	case IMAP_SK_BODY:
		return search_load(sm) &&
		       contains_ci(sm->mm.data + sm->mm.parts[0].body_off, sm->mm.parts[0].body_len,
				   k->str, k->len);
	case IMAP_SK_TEXT:
		return search_load(sm) && contains_ci(sm->mm.data, sm->mm.len, k->str, k->len);
	case IMAP_SK_BEFORE: case IMAP_SK_ON: case IMAP_SK_SINCE:
		if (!search_load(sm) || date_of(sm->sm.internal_date, &d) < 0)
			return false;
		cmp = imap_date_cmp(&d, &k->date);
		return k->type == IMAP_SK_BEFORE ? cmp < 0 : k->type == IMAP_SK_ON ? cmp == 0
										   : cmp >= 0;
	case IMAP_SK_LARGER: return search_load(sm) && sm->sm.size > k->number;
	case IMAP_SK_SMALLER: return search_load(sm) && sm->sm.size < k->number;
	case IMAP_SK_MODSEQ: return m->modseq >= k->number;
	default: return false;
	}
}

static void
search_msg_free(struct search_msg *sm)
{
	if (sm->loaded && !sm->failed)
		mime_free(&sm->mm);
	buf_free(&sm->body);
}

static int
search_reply(struct imap_session *s, struct imap_cmd *cmd, const uint32_t *hits, size_t n,
	     uint64_t maxmodseq)
{
	unsigned ret = cmd->search.ret;
	struct buf b;

	buf_init(&b, 64u << 20);
	if (cmd->search.esearch) {
		if (ret == 0)
			ret = IMAP_SEARCH_RET_ALL;
		if (buf_printf(&b, "* ESEARCH (TAG \"%s\")%s", cmd->tag, cmd->uid ? " UID" : "") < 0)
			goto full;
		if ((ret & IMAP_SEARCH_RET_MIN) && n > 0 && buf_printf(&b, " MIN %u", hits[0]) < 0)
			goto full;
		if ((ret & IMAP_SEARCH_RET_MAX) && n > 0 && buf_printf(&b, " MAX %u", hits[n - 1]) < 0)
			goto full;
		if ((ret & IMAP_SEARCH_RET_COUNT) && buf_printf(&b, " COUNT %zu", n) < 0)
			goto full;
		if ((ret & IMAP_SEARCH_RET_ALL) && n > 0 &&
		    (buf_append_str(&b, " ALL ") < 0 || imap_seqset_write(&b, hits, n) < 0))
			goto full;
	} else {
		if (buf_append_str(&b, "* SEARCH") < 0)
			goto full;
		for (size_t i = 0; i < n; i++)
			if (buf_printf(&b, " %u", hits[i]) < 0)
				goto full;
		if (cmd->search.uses_modseq && n > 0 &&
		    buf_printf(&b, " (MODSEQ %llu)", (unsigned long long)maxmodseq) < 0)
			goto full;
	}
	if (buf_append_str(&b, "\r\n") < 0)
		goto full;
	imap_send_buf(s, &b);
	buf_free(&b);
	return 1;
full:
	buf_free(&b);
	return -1;
}

int
imap_cmd_search(struct imap_session *s, struct imap_cmd *cmd)
{
	uint32_t *hits = calloc(s->n_msgs + 1, sizeof(*hits));
	uint64_t maxmodseq = 0;
	size_t n = 0;

	if (hits == NULL)
		log_fatal("out of memory");
	if (cmd->search.uses_saved) {
		free(hits);
		imap_tagged(s, "NO [CANNOT] SEARCHRES is not supported");
		return 1;
	}
	if (cmd->search.charset != NULL && strcasecmp(cmd->search.charset, "UTF-8") != 0 &&
	    strcasecmp(cmd->search.charset, "US-ASCII") != 0) {
		free(hits);
		imap_tagged(s, "NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset");
		return 1;
	}
	if (cmd->search.uses_modseq)
		s->condstore = true;
	for (size_t i = 0; i < s->n_msgs; i++) {
		struct search_msg sm = { .s = s, .m = &s->msgs[i], .seq = (uint32_t)(i + 1) };

		if (s->msgs[i].gone)
			continue;
		buf_init(&sm.body, 1);
		if (all_match(&sm, cmd->search.keys)) {
			hits[n++] = cmd->uid ? s->msgs[i].uid : (uint32_t)(i + 1);
			if (s->msgs[i].modseq > maxmodseq)
				maxmodseq = s->msgs[i].modseq;
		}
		search_msg_free(&sm);
	}
	if (search_reply(s, cmd, hits, n, maxmodseq) < 0) {
		free(hits);
		imap_tagged(s, "NO [LIMIT] Result too large");
		return 1;
	}
	free(hits);
	(void)imap_sync(s, false);
	imap_tagged(s, "OK %sSEARCH completed", cmd->uid ? "UID " : "");
	return 1;
}
