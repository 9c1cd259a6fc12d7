/* deliver_index.c - a message's summary and search text
 * (deliver_index.h). */
#include "deliver/deliver_index.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "mime/mime_header.h"
#include "mime/mime_imap.h"
#include "mime/mime_msgid.h"
#include "mime/mime_text.h"

static atomic_bool deliver_fts_off;

void
deliver_set_fts(bool on)
{
	atomic_store(&deliver_fts_off, !on);
}

bool
deliver_fts(void)
{
	return !atomic_load(&deliver_fts_off);
}

static int
summary_item(const struct mime_msg *mm, enum store_summary_item item, struct store_summary *sum)
{
	struct buf b;
	int ret;

	buf_init(&b, STORE_SUMMARY_MAX);
	ret = item == STORE_SUMMARY_ENVELOPE ? mime_imap_envelope(mm, 0, &b, 0)
	      : mime_imap_bodystructure(mm, 0, item == STORE_SUMMARY_BODYSTRUCTURE, &b, 0);
	if (ret < 0) {
		buf_free(&b);
		return -1;
	}
	sum->text[item] = b.data;	/* the buf's memory is the summary's now */
	sum->len[item] = b.len;
	return 1;
}

/* The blob's header lines as IMAP reads them after the prefix; not
 * kept (empty) where it would read more than a header. */
static void
summary_header(const struct mime_msg *mm, size_t prefix_len, struct store_summary *sum)
{
	size_t end = mime_header_end(mm->data, mm->len, 0);

	if (end <= prefix_len || end >= DELIVER_HEADER_MAX)
		return;
	sum->len[STORE_SUMMARY_HEADER] = end - prefix_len;
	sum->text[STORE_SUMMARY_HEADER] = malloc(end - prefix_len);
	if (sum->text[STORE_SUMMARY_HEADER] == NULL)
		log_fatal("out of memory");
	memcpy(sum->text[STORE_SUMMARY_HEADER], mm->data + prefix_len, end - prefix_len);
}

int
deliver_summary_make(const struct mime_msg *mm, size_t prefix_len, struct store_summary *sum)
{
	for (int i = 0; i < STORE_SUMMARY_HEADER; i++)
		if (summary_item(mm, (enum store_summary_item)i, sum) < 0) {
			store_summary_free(sum);
			return -1;
		}
	summary_header(mm, prefix_len, sum);
	return 1;
}

/* The text columns; false when the header's text does not fit (the
 * body's is cut at STORE_TEXT_MAX, as SEARCH's scan cuts it). */
static bool
index_text(const struct mime_msg *mm, struct store_index *ix)
{
	struct buf header, body;

	buf_init(&header, STORE_TEXT_MAX);
	if (buf_append(&header, "", 0) < 0 || mime_text_header(mm, &header) < 0) {
		buf_free(&header);
		return false;
	}
	buf_init(&body, STORE_TEXT_MAX);
	if (buf_append(&body, "", 0) < 0) {
		buf_free(&header);
		return false;
	}
	mime_text_body(mm, &body);
	mime_text_clean(&header);
	mime_text_clean(&body);
	ix->header = header.data;	/* NUL-terminated, as every buf */
	ix->header_len = header.len;
	ix->body = body.data;
	ix->body_len = body.len;
	return true;
}

/* deliver_index_make's work on a message parsed already. */
static void
index_parsed(const struct mime_msg *mm, bool text, struct store_index *ix)
{
	memset(ix, 0, sizeof(*ix));
	ix->has_summary = deliver_summary_make(mm, 0, &ix->summary) == 1;
	ix->has_text = text && index_text(mm, ix);
	ix->text_failed = text && !ix->has_text;
}

void
deliver_index_make(const char *data, size_t len, bool text, struct store_index *ix)
{
	struct mime_msg mm;

	mime_parse(&mm, data, len);
	index_parsed(&mm, text, ix);
	mime_free(&mm);
}

void
deliver_index_stored(const char *data, size_t len, struct store_index *ix)
{
	deliver_index_make(data, len, false, ix);
	ix->text_pending = deliver_fts();
}

void
deliver_thread_keys(const char *head, size_t len, struct buf *keys)
{
	(void)mime_thread_keys(head, len < DELIVER_HEADER_READ ? len : DELIVER_HEADER_READ, keys);
}

/* The thread ids from the parsed header's fields (read once for the
 * summary too), when the header lies within what deliver_thread_keys
 * reads; else as it reads them. */
static void
thread_keys_parsed(const struct mime_msg *mm, struct buf *keys)
{
	if (mm->parts[0].hdr_len <= DELIVER_HEADER_READ)
		(void)mime_thread_keys_index(mime_part_fields(mm, 0), keys);
	else
		deliver_thread_keys(mm->data, mm->len, keys);
}

void
deliver_index_message(const char *data, size_t len, struct buf *keys, struct store_index *ix)
{
	struct mime_msg mm;

	mime_parse(&mm, data, len);
	index_parsed(&mm, false, ix);
	ix->text_pending = deliver_fts();
	thread_keys_parsed(&mm, keys);
	mime_free(&mm);
}

void
deliver_index_text(const char *data, size_t len, struct store_index *ix)
{
	struct mime_msg mm;

	mime_parse(&mm, data, len);
	ix->has_text = index_text(&mm, ix);
	mime_free(&mm);
}
