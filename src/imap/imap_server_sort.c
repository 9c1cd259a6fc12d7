/* imap_server_sort.c - SORT and UID SORT (RFC 5256, with DISPLAYFROM and
 * DISPLAYTO of RFC 5957), THREAD and UID THREAD (ORDEREDSUBJECT and
 * REFERENCES). The messages are those SEARCH would find; their keys come
 * from the header alone (at most IMAP_SORT_HEADER_MAX bytes of it).
 *
 * Strings compare case-folded (mime_fold.h) by code point; ties go by
 * sequence number, as RFC 5256 says.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/block.h"
#include "base/log.h"
#include "base/util.h"
#include "imap/imap_session.h"
#include "imap/imap_thread.h"
#include "mime/mime_addr.h"
#include "mime/mime_charset.h"
#include "mime/mime_date.h"
#include "mime/mime_fold.h"
#include "mime/mime_header.h"
#include "mime/mime_msgid.h"

/* How much of a message is read for its header. */
#define IMAP_SORT_HEADER_MAX (256u << 10)
/* The largest SORT or THREAD response. */
#define IMAP_SORT_REPLY_MAX (64u << 20)

struct sort_msg {
	uint32_t seq, id;
	int64_t arrival, date;
	uint64_t size;
	char *cc, *from, *to, *dfrom, *dto, *subject;	/* folded */
	bool reply;
	char *msgid;
	char **refs;
	size_t nrefs;
};

/* The message's header section (prefix included) into hdr. */
static int
header_load(struct imap_session *s, uint32_t uid, struct buf *hdr, struct store_msg *m)
{
	struct yj_err err;
	char chunk[16384];
	ssize_t n = 0;
	int fd;

	if (store_msg_get(s->store, s->mb.id, uid, m) != 1)
		return -1;
	buf_init(hdr, IMAP_SORT_HEADER_MAX);
	if (buf_append(hdr, m->prefix, m->prefix_len) < 0)
		return -1;
	if (store_msg_open_blob(s->store, m, &fd, &err) < 0) {
		log_error("imap: session=%s message %u: %s", s->ctx->id, uid, err.msg);
		return -1;
	}
	while (memmem(hdr->data, hdr->len, "\n\r\n", 3) == NULL &&
	       memmem(hdr->data, hdr->len, "\n\n", 2) == NULL &&
	       (n = read(fd, chunk, sizeof(chunk))) > 0)
		if (buf_append(hdr, chunk, (size_t)n) < 0)
			break;
	close(fd);
	return n >= 0 ? 1 : -1;
}

/* The value of the first field called name, unfolded (empty if none). */
static bool
field_value(const struct buf *hdr, const char *name, struct buf *out)
{
	struct mime_field f;

	buf_init(out, MIME_FIELD_VALUE_MAX);
	if (!mime_hdr_find(hdr->data, 0, hdr->len, name, &f))
		return false;
	mime_field_unfold(hdr->data, &f, out);
	return true;
}

static char *
folded_dup(const char *p, size_t len)
{
	struct buf b;
	char *r;

	buf_init(&b, 4 * len + 16);
	(void)mime_fold_utf8(p, len, &b);
	r = strdup(b.data ? b.data : "");
	buf_free(&b);
	if (r == NULL)
		log_fatal("out of memory");
	return r;
}

/* addr-mailbox of the first address (CC, FROM, TO) or, display, its
 * display name decoded, else "mailbox@host" (RFC 5957). */
static char *
addr_key(const struct buf *hdr, const char *field, bool display)
{
	struct mime_addr_list l = { NULL, 0 };
	struct buf v, out;
	int ok = 1;
	char *r;

	buf_init(&out, 4 * MIME_FIELD_VALUE_MAX);
	if (field_value(hdr, field, &v))
		mime_addr_parse(v.data, v.len, &l);
	for (size_t i = 0; i < l.n; i++) {
		const struct mime_addr *a = &l.v[i];

		if (a->kind != MIME_ADDR_MAILBOX)
			continue;
		if (display && a->has_name && a->name.len > 0)
			ok = mime_2047_decode(a->name.data, a->name.len, &out);
		else if (display && a->domain.len > 0)
			ok = buf_printf(&out, "%s@%s", a->mailbox.data ? a->mailbox.data : "",
					a->domain.data);
		else
			ok = buf_append(&out, a->mailbox.data ? a->mailbox.data : "",
					a->mailbox.len);
		break;
	}
	if (ok < 0)	/* out holds more than a field's value: not reached */
		buf_reset(&out);
	r = folded_dup(out.data ? out.data : "", out.len);
	mime_addr_list_free(&l);
	buf_free(&v);
	buf_free(&out);
	return r;
}

static char *
subject_key(const struct buf *hdr, bool *reply)
{
	struct buf v, base;
	char *r;

	buf_init(&base, 4 * MIME_FIELD_VALUE_MAX);
	*reply = false;
	if (field_value(hdr, "Subject", &v))
		(void)imap_base_subject(v.data, v.len, &base, reply);
	r = folded_dup(base.data ? base.data : "", base.len);
	buf_free(&v);
	buf_free(&base);
	return r;
}

static int64_t
sent_date(const struct buf *hdr, int64_t internal)
{
	struct mime_date d;
	struct buf v;
	bool ok = field_value(hdr, "Date", &v) && mime_date_parse(v.data, v.len, &d) == 1;

	buf_free(&v);
	return ok ? d.utc : internal;
}

/* ---- message-ids for THREAD ---- */

struct ids {
	char **v;
	size_t n;
};

static bool
id_add(void *ctx, const char *id, size_t len)
{
	struct ids *ids = ctx;

	if (ids->n == IMAP_THREAD_REFS_MAX) {	/* keep the last ones */
		free(ids->v[0]);
		memmove(ids->v, ids->v + 1, (ids->n - 1) * sizeof(*ids->v));
		ids->n--;
	}
	if ((ids->v[ids->n++] = strndup(id, len)) == NULL)
		log_fatal("out of memory");
	return true;
}

/* Takes only the first msg-id of a field. */
static bool
id_first(void *ctx, const char *id, size_t len)
{
	(void)id_add(ctx, id, len);
	return false;
}

static struct ids
ids_new(void)
{
	struct ids ids = { calloc(IMAP_THREAD_REFS_MAX, sizeof(char *)), 0 };

	if (ids.v == NULL)
		log_fatal("out of memory");
	return ids;
}

/* Message-ID, and the references: References, else In-Reply-To's
 * first msg-id (RFC 5256 3, step 1). */
static void
thread_ids(const struct buf *hdr, struct sort_msg *m)
{
	struct ids self = ids_new(), refs = ids_new();
	struct buf v;

	if (field_value(hdr, "Message-ID", &v))
		mime_msgids(v.data, v.len, id_first, &self);
	buf_free(&v);
	if (field_value(hdr, "References", &v))
		mime_msgids(v.data, v.len, id_add, &refs);
	buf_free(&v);
	if (refs.n == 0 && field_value(hdr, "In-Reply-To", &v))
		mime_msgids(v.data, v.len, id_first, &refs);
	buf_free(&v);
	m->msgid = self.n > 0 ? self.v[0] : NULL;
	free(self.v);
	m->refs = refs.v;
	m->nrefs = refs.n;
}

/* The keys of one message; false if it cannot be read. */
static bool
sort_msg_load(struct imap_session *s, size_t i, bool uid, bool thread, struct sort_msg *m)
{
	struct store_msg sm;
	struct buf hdr;
	bool ok = header_load(s, s->msgs[i].uid, &hdr, &sm) == 1;

	memset(m, 0, sizeof(*m));
	m->seq = (uint32_t)(i + 1);
	m->id = uid ? s->msgs[i].uid : m->seq;
	if (ok) {
		m->arrival = sm.internal_date;
		m->size = sm.size;
		m->date = sent_date(&hdr, sm.internal_date);
		m->subject = subject_key(&hdr, &m->reply);
		if (thread) {
			thread_ids(&hdr, m);
		} else {
			m->cc = addr_key(&hdr, "Cc", false);
			m->from = addr_key(&hdr, "From", false);
			m->to = addr_key(&hdr, "To", false);
			m->dfrom = addr_key(&hdr, "From", true);
			m->dto = addr_key(&hdr, "To", true);
		}
	}
	buf_free(&hdr);
	return ok;
}

static void
sort_msg_free(struct sort_msg *m)
{
	free(m->cc), free(m->from), free(m->to), free(m->dfrom), free(m->dto);
	free(m->subject);
	free(m->msgid);
	for (size_t i = 0; i < m->nrefs; i++)
		free(m->refs[i]);
	free(m->refs);
}

/* ---- SORT ---- */

static int
num_cmp(int64_t a, int64_t b)
{
	return a < b ? -1 : a > b;
}

static int
key_cmp(const struct sort_msg *a, const struct sort_msg *b, enum imap_sort_key key)
{
	switch (key) {
	case IMAP_SORT_ARRIVAL: return num_cmp(a->arrival, b->arrival);
	case IMAP_SORT_DATE: return num_cmp(a->date, b->date);
	case IMAP_SORT_SIZE: return a->size < b->size ? -1 : a->size > b->size;
	case IMAP_SORT_CC: return strcmp(a->cc, b->cc);
	case IMAP_SORT_FROM: return strcmp(a->from, b->from);
	case IMAP_SORT_TO: return strcmp(a->to, b->to);
	case IMAP_SORT_DISPLAYFROM: return strcmp(a->dfrom, b->dfrom);
	case IMAP_SORT_DISPLAYTO: return strcmp(a->dto, b->dto);
	case IMAP_SORT_SUBJECT: return strcmp(a->subject, b->subject);
	}
	return 0;
}

static int
sort_cmp(const void *pa, const void *pb, void *ctx)
{
	const struct sort_msg *a = pa, *b = pb;
	const struct imap_search *search = ctx;

	for (size_t k = 0; k < search->nsort; k++) {
		int c = key_cmp(a, b, search->sort[k].key);

		if (c != 0)
			return search->sort[k].reverse ? -c : c;
	}
	return num_cmp(a->seq, b->seq);
}

/* The keys of the messages idx[0..n) into v; false if the deadline
 * came first (v's loaded entries are then freed, the rest are zero).
 * Each message's header is read and parsed here, so this can take
 * longer than the scan that found them: it counts against the same
 * limit (checked between messages). */
static bool
sort_load_all(struct imap_session *s, const size_t *idx, size_t n, bool uid, bool thread,
	      int64_t deadline, struct sort_msg *v, size_t *k_r)
{
	size_t i, k = 0;

	for (i = 0; i < n && util_now_ms() < deadline; i++) {
		if (sort_msg_load(s, idx[i], uid, thread, &v[k]))
			k++;		/* a message gone from the store meanwhile is left out */
		else
			sort_msg_free(&v[k]);
		block_yield();	/* as the scan does: other steps go first now and then */
	}
	*k_r = k;
	if (i == n)
		return true;
	log_info("imap: session=%s %s stopped after reading %zu of %zu messages (time limit)",
		 s->ctx->id, thread ? "thread" : "sort", i, n);
	for (i = 0; i < k; i++)
		sort_msg_free(&v[i]);
	return false;
}

/* The matching messages with their keys; NULL after a tagged reply. */
static struct sort_msg *
sort_gather(struct imap_session *s, struct imap_cmd *cmd, bool thread, size_t *n_r)
{
	int64_t deadline = imap_search_deadline(s);
	struct sort_msg *v;
	size_t *idx, n;
	const char *why;
	bool done;

	if (!imap_charset_ok(s, cmd->search.charset))
		return NULL;
	if (imap_search_run(s, &cmd->search, deadline, &idx, &n, &why) == 0) {
		imap_tagged(s, "NO [LIMIT] %s", why);
		return NULL;
	}
	if ((v = calloc(n + 1, sizeof(*v))) == NULL)
		log_fatal("out of memory");
	done = sort_load_all(s, idx, n, cmd->uid, thread, deadline, v, n_r);
	free(idx);
	if (!done) {
		free(v);
		imap_tagged(s, "NO [LIMIT] %s", IMAP_SEARCH_TOO_LONG);
		return NULL;
	}
	return v;
}

static void
sort_reply_send(struct imap_session *s, struct imap_cmd *cmd, struct buf *b, int ret)
{
	const char *name = cmd->name == IMAP_CMD_SORT ? "SORT" : "THREAD";

	if (ret < 0 || buf_append_str(b, "\r\n") < 0) {
		imap_tagged(s, "NO [LIMIT] Result too large");
		return;
	}
	/* Every message was read before the result is written: a client
	 * slow to take it holds no store connection meanwhile. */
	imap_writes_let_go(s);
	imap_send_buf(s, b);
	if (imap_writes_done(s))
		(void)imap_sync(s, false);
	imap_tagged(s, "OK %s%s completed", cmd->uid ? "UID " : "", name);
}

/* RFC 7162 3.1.5: a SORT with a MODSEQ key tells the highest MODSEQ
 * of the messages it returns. */
static uint64_t
sort_max_modseq(const struct imap_session *s, const struct sort_msg *v, size_t n)
{
	uint64_t max = 0;

	for (size_t i = 0; i < n; i++)
		if (s->msgs[v[i].seq - 1].modseq > max)
			max = s->msgs[v[i].seq - 1].modseq;
	return max;
}

/* "* SORT 3 1 2", or with RETURN (...) the ESEARCH of ESORT (RFC 5267
 * 3.2: MIN and MAX are the first and last in the sort order, ALL is
 * in that order). 1, or -1 if b is full. */
static int
sort_reply(struct imap_session *s, const struct imap_cmd *cmd, const struct sort_msg *v,
	   size_t n, struct buf *b)
{
	uint64_t modseq = cmd->search.uses_modseq ? sort_max_modseq(s, v, n) : 0;
	uint32_t *ids;
	int ret = 1;

	if (cmd->search.esearch) {
		if ((ids = calloc(n + 1, sizeof(*ids))) == NULL)
			log_fatal("out of memory");
		for (size_t i = 0; i < n; i++)
			ids[i] = v[i].id;
		ret = imap_esearch_write(b, cmd, ids, n, modseq);
		free(ids);
		return ret;
	}
	if (buf_append_str(b, "* SORT") < 0)
		return -1;
	for (size_t i = 0; i < n && ret == 1; i++)
		ret = buf_printf(b, " %u", v[i].id) < 0 ? -1 : 1;
	if (ret == 1 && cmd->search.uses_modseq && n > 0 &&
	    buf_printf(b, " (MODSEQ %llu)", (unsigned long long)modseq) < 0)
		ret = -1;
	return ret;
}

int
imap_cmd_sort(struct imap_session *s, struct imap_cmd *cmd)
{
	struct sort_msg *v;
	struct buf b;
	size_t n;

	if ((v = sort_gather(s, cmd, false, &n)) == NULL)
		return 1;
	qsort_r(v, n, sizeof(*v), sort_cmp, &cmd->search);
	buf_init(&b, IMAP_SORT_REPLY_MAX);
	sort_reply_send(s, cmd, &b, sort_reply(s, cmd, v, n, &b));
	buf_free(&b);
	for (size_t i = 0; i < n; i++)
		sort_msg_free(&v[i]);
	free(v);
	return 1;
}

/* ---- THREAD ---- */

int
imap_cmd_thread(struct imap_session *s, struct imap_cmd *cmd)
{
	struct imap_thread_msg *t;
	struct sort_msg *v;
	struct buf b;
	size_t n;
	int ret;

	if ((v = sort_gather(s, cmd, true, &n)) == NULL)
		return 1;
	if ((t = calloc(n + 1, sizeof(*t))) == NULL)
		log_fatal("out of memory");
	for (size_t i = 0; i < n; i++)
		t[i] = (struct imap_thread_msg){
			.id = v[i].id, .seq = v[i].seq, .date = v[i].date, .subject = v[i].subject,
			.reply = v[i].reply, .msgid = v[i].msgid, .refs = (const char **)v[i].refs,
			.nrefs = v[i].nrefs,
		};
	buf_init(&b, IMAP_SORT_REPLY_MAX);
	ret = buf_append_str(&b, n > 0 ? "* THREAD " : "* THREAD") < 0 ? -1 : 1;
	if (ret == 1)
		ret = cmd->search.thread == IMAP_THREAD_REFERENCES
			      ? imap_thread_references(t, n, &b)
			      : imap_thread_orderedsubject(t, n, &b);
	sort_reply_send(s, cmd, &b, ret);
	buf_free(&b);
	free(t);
	for (size_t i = 0; i < n; i++)
		sort_msg_free(&v[i]);
	free(v);
	return 1;
}
