/* pop3_maildrop.c - the TRANSACTION and UPDATE states over a snapshot of
 * the account's INBOX taken at login.
 *
 * Message numbers are 1-based indexes into the snapshot and do not move
 * during the session. A message an IMAP session expunges meanwhile keeps
 * its number; fetching it fails with a plain -ERR. Sizes are the exact
 * octets of prefix + blob, which are stored with CRLF line ends, so they
 * are what RETR sends before dot-stuffing (RFC 1939 section 11).
 */
#include "pop3/pop3_session.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "pop3/pop3_msg.h"

/* Message bytes are read from the blob file in chunks of this size (into
 * a heap buffer), and dot-stuffed in pieces of POP3_DOT_PIECE (into a
 * stack buffer of twice that) on their way to the conn's write buffer. */
#define POP3_XFER_CHUNK 65536
#define POP3_DOT_PIECE 8192

/* ---- the snapshot ---- */

static void
pop3_maildrop_add(void *ctx, const struct store_msg *msg)
{
	struct pop3_session *p = ctx;

	if (p->n_msgs >= POP3_MAILDROP_MAX)
		return;
	if (p->n_msgs == p->cap_msgs) {
		size_t cap = p->cap_msgs == 0 ? 64 : p->cap_msgs * 2;
		void *m = realloc(p->msgs, cap * sizeof(*p->msgs));
		if (m == NULL)
			log_fatal("pop3: out of memory for a maildrop of %zu messages", cap);
		p->msgs = m;
		p->cap_msgs = cap;
	}
	p->msgs[p->n_msgs++] = (struct pop3_msg){ .uid = msg->uid, .size = msg->size };
}

int
pop3_maildrop_load(struct pop3_session *p, struct yj_err *err)
{
	struct store_mailbox mb;
	int ret;

	ret = store_mailbox_get(p->store, p->account.id, "INBOX", &mb);
	if (ret < 0)
		return yj_err_set(err, "cannot read the INBOX");
	if (ret == 0)
		return yj_err_set(err, "the account has no INBOX");
	p->mailbox_id = mb.id;
	p->uidvalidity = mb.uidvalidity;
	p->n_msgs = 0;
	if (store_msg_list(p->store, mb.id, pop3_maildrop_add, p, err) < 0) {
		pop3_maildrop_free(p);
		return -1;
	}
	return 1;
}

void
pop3_maildrop_free(struct pop3_session *p)
{
	free(p->msgs);
	p->msgs = NULL;
	p->n_msgs = p->cap_msgs = 0;
}

/* EXPIRE 0 (RFC 2449 section 6.7): a retrieved message may not stay on
 * the server, so UPDATE deletes it as if DELE had been given. */
static bool
pop3_msg_goes(const struct pop3_session *p, const struct pop3_msg *m)
{
	return m->deleted || (p->cfg->pop3_expire == 0 && m->retrieved);
}

/* Messages retrieved and kept are \Seen from now on, for IMAP clients
 * too (as Dovecot does). A failure here costs a flag, not mail: it is
 * logged and the update goes on. */
static void
pop3_maildrop_mark_seen(struct pop3_session *p)
{
	uint32_t *uids = malloc((p->n_msgs + 1) * sizeof(*uids));
	struct yj_err err;
	size_t n = 0;

	if (uids == NULL)
		return;
	for (size_t i = 0; i < p->n_msgs; i++) {
		if (p->msgs[i].retrieved && !pop3_msg_goes(p, &p->msgs[i]))
			uids[n++] = p->msgs[i].uid;
	}
	if (store_msg_add_flags(p->store, p->mailbox_id, uids, n, STORE_FLAG_SEEN, &err) < 0)
		log_warn("pop3: session=%s cannot mark %zu messages seen: %s", p->ctx->id, n,
			 err.msg);
	free(uids);
}

long
pop3_maildrop_update(struct pop3_session *p, struct yj_err *err)
{
	uint32_t *uids;
	size_t n = 0;
	int ret;

	/* Without the lock another session may have the maildrop: this one
	 * changes nothing. */
	if (store_maildrop_held(p->store, err) < 0)
		return -1;
	pop3_maildrop_mark_seen(p);
	for (size_t i = 0; i < p->n_msgs; i++)
		n += pop3_msg_goes(p, &p->msgs[i]);
	if (n == 0)
		return 0;
	uids = malloc(n * sizeof(*uids));
	if (uids == NULL)
		return yj_err_set(err, "out of memory for %zu deletions", n);
	n = 0;
	for (size_t i = 0; i < p->n_msgs; i++) {
		if (pop3_msg_goes(p, &p->msgs[i]))
			uids[n++] = p->msgs[i].uid;
	}
	ret = store_msg_expunge(p->store, p->mailbox_id, uids, n, err);
	free(uids);
	if (ret < 0)
		return -1;
	log_debug("pop3: session=%s expunged=%zu", p->ctx->id, n);
	return (long)n;
}

/* ---- helpers ---- */

/* Finds message number n; replies -ERR and returns NULL if it does not
 * exist or is marked deleted. */
static struct pop3_msg *
pop3_msg_find(struct pop3_session *p, uint32_t n)
{
	struct pop3_msg *m;

	if (n == 0 || n > p->n_msgs) {
		pop3_reply(p, "-ERR There is no message %" PRIu32 ", the maildrop has %zu", n,
			   p->n_msgs);
		return NULL;
	}
	m = &p->msgs[n - 1];
	if (m->deleted) {
		pop3_reply(p, "-ERR Message %" PRIu32 " is already deleted", n);
		return NULL;
	}
	return m;
}

static void
pop3_maildrop_totals(const struct pop3_session *p, size_t *count_r, uint64_t *octets_r)
{
	*count_r = 0;
	*octets_r = 0;
	for (size_t i = 0; i < p->n_msgs; i++) {
		if (!p->msgs[i].deleted) {
			(*count_r)++;
			*octets_r += p->msgs[i].size;
		}
	}
}

/* ---- sending a message ---- */

/* Encodes and queues a chunk. Returns false once the TOP limit is hit
 * or the connection failed: nothing more needs to be read. */
static bool
pop3_xfer_chunk(struct pop3_session *p, struct pop3_dot *dot, const unsigned char *in,
		size_t len)
{
	unsigned char out[POP3_DOT_OUT_SIZE(POP3_DOT_PIECE)];

	/* out is kept small (the thread stack is), so encode in pieces. */
	while (len > 0 && !dot->done) {
		size_t piece = len < POP3_DOT_PIECE ? len : POP3_DOT_PIECE;
		size_t used = 0;
		size_t n = pop3_dot_encode(dot, in, piece, out, &used);
		if (!conn_write(p->conn, out, n))
			return false;
		in += used;
		len -= used;
	}
	return !dot->done;
}

/* Streams prefix and the blob's recorded size, reading through buf
 * (POP3_XFER_CHUNK bytes). Returns 1, or -1 if the
 * blob could not be read to that size or the connection failed (the
 * response is then broken and the session must end). */
static int
pop3_xfer_body(struct pop3_session *p, const struct store_msg *msg, int fd, long long top,
	       unsigned char *buf)
{
	unsigned char end[POP3_DOT_END_MAX];
	uint64_t left = msg->size - msg->prefix_len;
	struct pop3_dot dot;
	ssize_t n;

	pop3_dot_init(&dot, top);
	if (!pop3_xfer_chunk(p, &dot, (const unsigned char *)msg->prefix, msg->prefix_len))
		goto finish;
	while (left > 0) {
		n = read(fd, buf, left < POP3_XFER_CHUNK ? (size_t)left : POP3_XFER_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			/* Cut short under us: no end marker, so the client
			 * cannot take the part for the whole. */
			log_error("pop3: session=%s blob %s: %s", p->ctx->id, msg->blob_id,
				  n < 0 ? "read failed" : "shorter than recorded");
			return -1;
		}
		left -= (uint64_t)n;
		if (!pop3_xfer_chunk(p, &dot, buf, (size_t)n))
			break;
	}
finish:
	(void)conn_write(p->conn, end, pop3_dot_finish(&dot, end));
	/* A transfer the client did not get does not count as retrieved. */
	return p->conn->failed ? -1 : 1;
}

/* Is the blob at least as long as the message's recorded size? A blob
 * cut short (a disk fault, a hand edit) is refused before +OK rather
 * than sent as if whole and then counted as retrieved. */
static bool
pop3_blob_whole(struct pop3_session *p, const struct store_msg *msg, int fd)
{
	struct stat sb;

	if (fstat(fd, &sb) == 0 && msg->size >= msg->prefix_len &&
	    (uint64_t)sb.st_size >= msg->size - msg->prefix_len)
		return true;
	log_error("pop3: session=%s user=%s blob %s of uid=%" PRIu32 " is shorter than "
		  "its recorded %" PRIu64 " bytes", p->ctx->id, p->account.address, msg->blob_id,
		  msg->uid, msg->size - msg->prefix_len);
	return false;
}

/* RETR (top < 0) and TOP. The message is read again from the store: an
 * IMAP session may have expunged it since the snapshot. */
static int
pop3_send_msg(struct pop3_session *p, uint32_t n, long long top)
{
	struct store_msg msg;
	struct yj_err err;
	struct pop3_msg *m;
	unsigned char *buf;
	int fd, ret;

	m = pop3_msg_find(p, n);
	if (m == NULL)
		return 1;
	ret = store_msg_get(p->store, p->mailbox_id, m->uid, &msg);
	if (ret == 0) {
		pop3_reply(p, "-ERR Message %" PRIu32 " was removed by another session", n);
		return 1;
	}
	if (ret < 0 || store_msg_open_blob(p->store, &msg, &fd, &err) < 0) {
		log_error("pop3: session=%s user=%s cannot open message uid=%" PRIu32,
			  p->ctx->id, p->account.address, m->uid);
		pop3_reply(p, "-ERR [SYS/TEMP] Message %" PRIu32 " cannot be read now", n);
		return 1;
	}
	if (!pop3_blob_whole(p, &msg, fd)) {
		close(fd);
		pop3_reply(p, "-ERR [SYS/PERM] Message %" PRIu32 " is damaged in the store", n);
		return 1;
	}
	if (top < 0)
		pop3_reply(p, "+OK %" PRIu64 " octets", m->size);
	else
		pop3_reply(p, "+OK Top of message %" PRIu32 " follows", n);
	/* The read buffer is on the heap: a worker's stack is small, and
	 * what a thread once touched of it stays resident. */
	buf = malloc(POP3_XFER_CHUNK);
	if (buf == NULL)
		log_fatal("out of memory");
	ret = pop3_xfer_body(p, &msg, fd, top, buf);
	free(buf);
	close(fd);
	if (ret < 0)
		return 0;
	if (top < 0) {
		m->retrieved = true;
		p->n_retr++;
	} else {
		p->n_top++;
	}
	return 1;
}

/* ---- the commands ---- */

int
pop3_cmd_stat(struct pop3_session *p, const struct pop3_cmd *cmd)
{
	uint64_t octets;
	size_t count;

	pop3_maildrop_totals(p, &count, &octets);
	pop3_reply(p, "+OK %zu %" PRIu64, count, octets);
	return 1;
}

int
pop3_cmd_list(struct pop3_session *p, const struct pop3_cmd *cmd)
{
	const struct pop3_msg *m;
	uint64_t octets;
	size_t count;

	if (cmd->has_msg) {
		m = pop3_msg_find(p, cmd->msg);
		if (m != NULL)
			pop3_reply(p, "+OK %" PRIu32 " %" PRIu64, cmd->msg, m->size);
		return 1;
	}
	pop3_maildrop_totals(p, &count, &octets);
	pop3_reply(p, "+OK %zu messages (%" PRIu64 " octets)", count, octets);
	for (size_t i = 0; i < p->n_msgs; i++) {
		if (!p->msgs[i].deleted)
			pop3_reply(p, "%zu %" PRIu64, i + 1, p->msgs[i].size);
	}
	pop3_reply(p, ".");
	return 1;
}

int
pop3_cmd_uidl(struct pop3_session *p, const struct pop3_cmd *cmd)
{
	char uidl[POP3_UIDL_LEN + 1];
	const struct pop3_msg *m;

	if (cmd->has_msg) {
		m = pop3_msg_find(p, cmd->msg);
		if (m != NULL) {
			pop3_uidl_format(p->uidvalidity, m->uid, uidl);
			pop3_reply(p, "+OK %" PRIu32 " %s", cmd->msg, uidl);
		}
		return 1;
	}
	pop3_reply(p, "+OK Unique-ID listing follows");
	for (size_t i = 0; i < p->n_msgs; i++) {
		if (p->msgs[i].deleted)
			continue;
		pop3_uidl_format(p->uidvalidity, p->msgs[i].uid, uidl);
		pop3_reply(p, "%zu %s", i + 1, uidl);
	}
	pop3_reply(p, ".");
	return 1;
}

int
pop3_cmd_retr(struct pop3_session *p, const struct pop3_cmd *cmd)
{
	return pop3_send_msg(p, cmd->msg, -1);
}

int
pop3_cmd_top(struct pop3_session *p, const struct pop3_cmd *cmd)
{
	long long lines = cmd->lines > (unsigned long)LLONG_MAX ? LLONG_MAX : (long long)cmd->lines;

	return pop3_send_msg(p, cmd->msg, lines);
}

int
pop3_cmd_dele(struct pop3_session *p, const struct pop3_cmd *cmd)
{
	struct pop3_msg *m = pop3_msg_find(p, cmd->msg);

	if (m == NULL)
		return 1;
	m->deleted = true;
	p->n_dele++;
	pop3_reply(p, "+OK Message %" PRIu32 " deleted", cmd->msg);
	return 1;
}

int
pop3_cmd_rset(struct pop3_session *p, const struct pop3_cmd *cmd)
{
	uint64_t octets;
	size_t count;

	for (size_t i = 0; i < p->n_msgs; i++)
		p->msgs[i].deleted = false;
	p->n_dele = 0;
	pop3_maildrop_totals(p, &count, &octets);
	pop3_reply(p, "+OK Maildrop has %zu messages (%" PRIu64 " octets)", count, octets);
	return 1;
}

int
pop3_cmd_noop(struct pop3_session *p, const struct pop3_cmd *cmd)
{
	pop3_reply(p, "+OK");
	return 1;
}
