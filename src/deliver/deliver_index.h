/* deliver_index.h - what IMAP keeps of a message (store_index: its
 * summary and its search text), made from the message's bytes by the
 * thread that has them: the delivering session before it hands the
 * delivery to the store's writer, IMAP's APPEND, FETCH for a message
 * stored without one, and `youju store reindex`.
 */
#ifndef YJ_DELIVER_INDEX_H
#define YJ_DELIVER_INDEX_H

#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"
#include "mime/mime.h"
#include "store/store.h"

/* A header longer than this is not kept in the summary (it is read
 * from the message each time). */
#define DELIVER_HEADER_MAX (256u << 10)

/* Whether the search text is made at all (config imap_fts); set once
 * at start, before sessions run. The default is yes. */
void deliver_set_fts(bool on);
bool deliver_fts(void);

/* The summary of a parsed message whose first prefix_len bytes are its
 * per-recipient prefix (the summary is the blob's: the prefix holds no
 * field it uses). 1, or -1 (an item too large: none is kept). */
int deliver_summary_make(const struct mime_msg *mm, size_t prefix_len,
			 struct store_summary *sum);

/* The index of a blob's bytes: the summary, and the text if text (and
 * it fits STORE_TEXT_MAX). Never fails; what cannot be made is marked
 * so (has_summary, has_text false). Free with store_index_free. */
void deliver_index_make(const char *data, size_t len, bool text, struct store_index *ix);

/* What a message being stored gets at once: the summary, and (with
 * imap_fts) the mark that its text is to be made (store_text_fn). */
void deliver_index_stored(const char *data, size_t len, struct store_index *ix);

/* The most of a message's start read for its thread ids: the header,
 * as far as IMAP reads one for SORT and THREAD. */
#define DELIVER_HEADER_READ (256u << 10)
/* The ids that find a message's thread (RFC 8474 THREADID) in each
 * recipient's account, from the header at the start of head[0..len),
 * appended to keys (MIME_THREAD_KEYS_BUF of room). */
void deliver_thread_keys(const char *head, size_t len, struct buf *keys);

/* What a delivery takes from the message's bytes, from one parse:
 * deliver_index_stored's ix and deliver_thread_keys's keys. */
void deliver_index_message(const char *data, size_t len, struct buf *keys,
			   struct store_index *ix);

/* The store's text maker (store_set_text_maker): the text alone. */
void deliver_index_text(const char *data, size_t len, struct store_index *ix);

#endif
