/* imap_thread.h - the message-set logic of SORT and THREAD (RFC 5256):
 * base subjects (2.1) and the ORDEREDSUBJECT and REFERENCES threading
 * algorithms (3). Pure code: the server gives each message's header
 * facts (msg-id lists from mime_msgids()), these give the reply's
 * thread list.
 */
#ifndef YJ_IMAP_THREAD_H
#define YJ_IMAP_THREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

/* Message-ids kept of one References field: the last ones, nearest the
 * message (a longer field is cut at its start). */
#define IMAP_THREAD_REFS_MAX 256

/* Appends the base subject (RFC 5256 2.1) of a Subject field value, as
 * sent: encoded words decoded to UTF-8, runs of blanks made one space,
 * "Re:", "Fwd:", "[blob]" leaders, "(fwd)" trailers and "[Fwd: ...]"
 * wrappers removed. Not case-folded. *reply_r says whether a reply or
 * forward marker was removed. Returns 1, or -1 if out is full. */
int imap_base_subject(const char *p, size_t len, struct buf *out, bool *reply_r);

/* A message as the thread algorithms see it. */
struct imap_thread_msg {
	uint32_t id;		/* written in the reply: sequence number or UID */
	uint32_t seq;		/* breaks ties of date */
	int64_t date;		/* sent date: Date:, else the internal date */
	const char *subject;	/* base subject, case-folded (mime_fold.h) */
	bool reply;		/* the subject had a reply/forward marker */
	const char *msgid;	/* Message-ID's msg-id, NUL-terminated, or NULL */
	const char **refs;	/* References' msg-ids, else In-Reply-To's first */
	size_t nrefs;
};

/* Append the thread list ("(2)(3 6 (4 23)(44 7 96))", empty if n is 0)
 * of msgs[0..n) by the algorithm. Returns 1, or -1 if out is full. */
int imap_thread_orderedsubject(const struct imap_thread_msg *msgs, size_t n, struct buf *out);
int imap_thread_references(const struct imap_thread_msg *msgs, size_t n, struct buf *out);

#endif
