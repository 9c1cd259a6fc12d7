/* mime_msgid.h - msg-ids of Message-ID, In-Reply-To and References
 * (RFC 5322 3.6.4): read tolerantly, as real mail writes them, and
 * normalized, so that SORT/THREAD (RFC 5256) and thread ids (RFC 8474
 * THREADID) link the same messages.
 */
#ifndef YJ_MIME_MSGID_H
#define YJ_MIME_MSGID_H

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"
#include "mime/mime_header.h"

/* Longest msg-id kept (longer ones are taken as invalid). */
#define MIME_MSGID_MAX 998
/* Ids of one message that its thread is found by (mime_thread_keys):
 * its own, In-Reply-To's first, and of References the first (the
 * conversation's root) and the last ones. */
#define MIME_THREAD_KEYS_MAX 32
/* The room mime_thread_keys may fill: each key NUL-terminated. */
#define MIME_THREAD_KEYS_BUF ((MIME_MSGID_MAX + 1) * MIME_THREAD_KEYS_MAX)

/* Calls fn for each msg-id ("<left@right>") of a field value, in
 * order, normalized (quotes, escapes and blanks inside removed: RFC 5256
 * 3 asks that <"a"@b> be <a@b>); stops early if fn returns false. */
void mime_msgids(const char *p, size_t len, bool (*fn)(void *ctx, const char *id, size_t len),
		 void *ctx);

/* The msg-ids a message's thread is found by, from its header
 * hdr[0..len): References' first and last ones, In-Reply-To's first,
 * then Message-ID's, at most MIME_THREAD_KEYS_MAX and each once, each
 * NUL-terminated, one after another in out. Returns how many. */
size_t mime_thread_keys(const char *hdr, size_t len, struct buf *out);
/* The same from a header already indexed (mime_hdr_index_make). */
size_t mime_thread_keys_index(const struct mime_hdr_index *ix, struct buf *out);

#endif
