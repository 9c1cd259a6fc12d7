/* imap_server_ext.c - object ids (RFC 8474 OBJECTID), save dates (RFC
 * 8514 SAVEDATE) and previews (RFC 8970 PREVIEW): their FETCH items,
 * SEARCH keys and the MAILBOXID of a mailbox.
 *
 * Ids come from what the store already keeps, so they survive restarts
 * and `youju store copy` (which keeps row ids and blob ids):
 *   MAILBOXID  "M" + the mailbox's row id and UIDVALIDITY (a row id the
 *              database reuses after a delete comes with a new
 *              UIDVALIDITY, so an id is never given to two mailboxes);
 *   EMAILID    "E" + the blob id, plus a hash of the per-recipient
 *              prefix when there is one: the same content has the same
 *              id, a copy in another mailbox too (RFC 8474 5.1);
 *   THREADID   "T" + the message's thread number (store_thread.c: the
 *              messages of one conversation in one account share it,
 *              found at delivery and APPEND from Message-ID,
 *              In-Reply-To and References); NIL for a message stored
 *              before threads were kept, as RFC 8474 5.2 allows.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "imap/imap_session.h"
#include "imap/imap_write.h"
#include "mime/mime_preview.h"

void
imap_mailboxid(const struct store_mailbox *mb, char *out, size_t outlen)
{
	snprintf(out, outlen, "M%llx-%x", (unsigned long long)mb->id, mb->uidvalidity);
}

/* FNV-1a, 32 bits: enough to tell the prefixes of one blob apart. */
static uint32_t
prefix_hash(const char *p, size_t len)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)p[i]) * 16777619u;
	return h;
}

/* Blob ids are "YYYYMMDDHH/" and [0-9A-Z]: without the slash, the rest
 * are objectid characters. */
void
imap_emailid(const struct store_msg *sm, char *out, size_t outlen)
{
	size_t n = 0;

	if (outlen < 2)
		return;
	out[n++] = 'E';
	for (const char *p = sm->blob_id; *p != '\0' && n + 1 < outlen; p++)
		if (*p != '/')
			out[n++] = *p;
	out[n] = '\0';
	if (sm->prefix_len > 0 && n + 10 < outlen)
		snprintf(out + n, outlen - n, "_%08x", prefix_hash(sm->prefix, sm->prefix_len));
}

/* Thread numbers are store-wide, never reused. */
static void
imap_threadid(const struct store_msg *sm, char *out, size_t outlen)
{
	snprintf(out, outlen, "T%llx", (unsigned long long)sm->thread_id);
}

int
imap_fetch_ext(struct imap_session *s, const struct store_msg *sm, const struct mime_msg *mm,
	       const struct imap_fetch_att *a, struct buf *out)
{
	char id[STORE_BLOB_ID_MAX + 16];
	struct buf text;
	int rc;

	switch (a->type) {
	case IMAP_FETCH_EMAILID:
		imap_emailid(sm, id, sizeof(id));
		return buf_printf(out, "(%s)", id);
	case IMAP_FETCH_THREADID:
		if (sm->thread_id <= 0)
			return buf_append_str(out, "NIL");
		imap_threadid(sm, id, sizeof(id));
		return buf_printf(out, "(%s)", id);
	case IMAP_FETCH_SAVEDATE:
		return imap_write_datetime(out, (time_t)sm->saved, 0);
	case IMAP_FETCH_PREVIEW:
		buf_init(&text, 4 * MIME_PREVIEW_CHARS + 8);
		rc = mime_preview(mm, &text);
		if (rc > 0)
			rc = imap_write_string(out, text.data != NULL ? text.data : "", text.len,
					       s->utf8);
		buf_free(&text);
		return rc;
	default:
		return 0;
	}
}

/* The UTC day of a time, as SEARCH's date keys compare. */
static bool
day_of(int64_t t, struct imap_date *d)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL)
		return false;
	*d = (struct imap_date){ tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday };
	return true;
}

int
imap_search_ext(const struct imap_search_key *k, const struct store_msg *sm)
{
	char id[STORE_BLOB_ID_MAX + 16];
	struct imap_date day;
	int cmp;

	switch (k->type) {
	case IMAP_SK_SAVEDATESUPPORTED:
		return 1;
	case IMAP_SK_SAVEDBEFORE:
	case IMAP_SK_SAVEDON:
	case IMAP_SK_SAVEDSINCE:
		if (!day_of(sm->saved, &day))
			return 0;
		cmp = imap_date_cmp(&day, &k->date);
		return k->type == IMAP_SK_SAVEDBEFORE ? cmp < 0
		       : k->type == IMAP_SK_SAVEDON   ? cmp == 0
						      : cmp >= 0;
	case IMAP_SK_EMAILID:
		imap_emailid(sm, id, sizeof(id));
		return strcmp(id, k->str) == 0;
	case IMAP_SK_THREADID:
		if (sm->thread_id <= 0)
			return 0;
		imap_threadid(sm, id, sizeof(id));
		return strcmp(id, k->str) == 0;
	default:
		return -1;
	}
}
