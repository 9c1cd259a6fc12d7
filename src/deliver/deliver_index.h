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
/* A message delivered larger than this gets its index later (FETCH,
 * reindex): it is not read back at delivery. */
#define DELIVER_INDEX_READ_MAX (64u << 20)

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

/* The index of a blob being delivered, read back from its file. 1, or
 * 0 (none: too large to read back, or unreadable, which the delivery
 * itself will find). */
int deliver_index_blob(struct store_blob *b, struct store_index *ix);

#endif
