/* mime_msgid.c - msg-id lists and the ids a thread is found by. */
#include "mime/mime_msgid.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "mime/mime_header.h"

/* One msg-id from p[*pos..len): "<" ... ">", the innermost where an
 * unclosed "<" comes first. Returns false at the end. */
static bool
next_msgid(const char *p, size_t len, size_t *pos, const char **id, size_t *idlen)
{
	while (*pos < len) {
		const char *lt = memchr(p + *pos, '<', len - *pos), *q;

		if (lt == NULL)
			break;
		q = lt + 1;
		while (q < p + len && *q != '<' && *q != '>')
			q++;
		if (q == p + len)
			break;
		*pos = (size_t)(q - p) + (*q == '>');
		if (*q == '>' && q - lt > 1 && (size_t)(q - lt + 1) <= MIME_MSGID_MAX) {
			*id = lt;
			*idlen = (size_t)(q - lt) + 1;
			return true;
		}
	}
	*pos = len;
	return false;
}

/* RFC 5256 3: msg-ids differing only in quoting are the same, so
 * quotes, backslash escapes and blanks are dropped. Returns the length
 * written to out (MIME_MSGID_MAX + 1 bytes), 0 if nothing is left or
 * the id holds another control character (NUL above all: ids are kept
 * as C strings), which no msg-id has (RFC 5322 3.6.4). */
static size_t
msgid_normalize(const char *id, size_t len, char *out)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		char c = id[i];

		if (c == '"' || c == ' ' || c == '\t' || c == '\r' || c == '\n')
			continue;
		if (c == '\\' && i + 1 < len)
			c = id[++i];
		if ((unsigned char)c < 0x20 || c == 0x7f)
			return 0;
		out[n++] = c;
	}
	out[n] = '\0';
	return n > 2 ? n : 0;	/* more than "<>" */
}

void
mime_msgids(const char *p, size_t len, bool (*fn)(void *ctx, const char *id, size_t len),
	    void *ctx)
{
	char norm[MIME_MSGID_MAX + 1];
	size_t pos = 0, idlen, n;
	const char *id;

	while (next_msgid(p, len, &pos, &id, &idlen))
		if ((n = msgid_normalize(id, idlen, norm)) > 0 && !fn(ctx, norm, n))
			return;
}

/* ---- thread keys ---- */

/* The ids of one field, up to MIME_THREAD_KEYS_MAX: the first, and the
 * last ones (a ring past the first). */
struct key_list {
	char ids[MIME_THREAD_KEYS_MAX][MIME_MSGID_MAX + 1];
	size_t n;		/* ids seen */
	size_t want;		/* 1: only the first */
};

/* Where the id seen as number i goes: the first in slot 0, the others
 * round the remaining slots. */
static size_t
ring_slot(size_t i)
{
	return i == 0 ? 0 : 1 + (i - 1) % (MIME_THREAD_KEYS_MAX - 1);
}

/* The slot of the i-th id kept, oldest first. */
static size_t
key_slot(const struct key_list *l, size_t i)
{
	if (i == 0 || l->n <= MIME_THREAD_KEYS_MAX)
		return i;
	return ring_slot(l->n - (MIME_THREAD_KEYS_MAX - i));
}

static bool
key_take(void *ctx, const char *id, size_t len)
{
	struct key_list *l = ctx;
	size_t slot = ring_slot(l->n);

	memcpy(l->ids[slot], id, len + 1);
	l->n++;
	return l->n < l->want;
}

static void
field_ids(const struct mime_hdr_index *ix, enum mime_hdr_known name, size_t want,
	  struct key_list *l)
{
	struct mime_field f;
	struct buf v;

	l->n = 0;
	l->want = want;
	if (!mime_hdr_index_get(ix, name, false, &f))
		return;
	buf_init(&v, MIME_FIELD_VALUE_MAX);
	mime_field_unfold(ix->data, &f, &v);
	if (v.len > 0)
		mime_msgids(v.data, v.len, key_take, l);
	buf_free(&v);
}

/* Appends id unless out holds it already or is full. */
static void
key_add(struct buf *out, size_t *count, const char *id)
{
	size_t len = strlen(id);

	if (*count == MIME_THREAD_KEYS_MAX)
		return;
	for (size_t pos = 0; pos < out->len; pos += strlen(out->data + pos) + 1)
		if (strcmp(out->data + pos, id) == 0)
			return;
	if (buf_append(out, id, len + 1) > 0)
		(*count)++;
}

size_t
mime_thread_keys(const char *hdr, size_t len, struct buf *out)
{
	struct mime_hdr_index ix;

	mime_hdr_index_make(&ix, hdr, 0, len);
	return mime_thread_keys_index(&ix, out);
}

size_t
mime_thread_keys_index(const struct mime_hdr_index *ix, struct buf *out)
{
	struct key_list *l = malloc(sizeof(*l));	/* 32 KiB: not on a stack */
	size_t count = 0, kept;

	if (l == NULL)
		log_fatal("out of memory");
	field_ids(ix, MIME_HDR_REFERENCES, SIZE_MAX, l);
	kept = l->n < MIME_THREAD_KEYS_MAX ? l->n : MIME_THREAD_KEYS_MAX;
	for (size_t i = 0; i < kept; i++)
		key_add(out, &count, l->ids[key_slot(l, i)]);
	field_ids(ix, MIME_HDR_IN_REPLY_TO, 1, l);
	if (l->n > 0)
		key_add(out, &count, l->ids[0]);
	field_ids(ix, MIME_HDR_MESSAGE_ID, 1, l);
	if (l->n > 0)
		key_add(out, &count, l->ids[0]);
	free(l);
	return count;
}
