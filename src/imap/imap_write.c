#include "imap/imap_write.h"

#include <string.h>
#include <strings.h>

#include "imap/imap_date.h"
#include "imap/imap_mailbox.h"
#include "mime/mime_imap.h"

/* Atom characters in a response: no atom-specials at all, and no '['
 * either, which some clients read as the start of a section. */
static bool
atom_safe(const char *s, size_t len)
{
	if (len == 0 || (len == 3 && strncasecmp(s, "NIL", 3) == 0))
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= 0x20 || c >= 0x7f || strchr("(){%*\"\\[]", c) != NULL)
			return false;
	}
	return true;
}

/* All or nothing: a failed append leaves the buffer as it was. */
static int
write_undo(struct buf *out, size_t mark)
{
	buf_truncate(out, mark);
	return -1;
}

int
imap_write_literal(struct buf *out, const char *s, size_t len)
{
	return mime_imap_literal(out, s, len);
}

int
imap_write_string(struct buf *out, const char *s, size_t len, bool utf8)
{
	return mime_imap_string(out, s, len, utf8 ? MIME_IMAP_UTF8 : 0);
}

int
imap_write_astring(struct buf *out, const char *s, size_t len, bool utf8)
{
	if (atom_safe(s, len))
		return buf_append(out, s, len);
	return imap_write_string(out, s, len, utf8);
}

int
imap_write_nstring(struct buf *out, const char *s, size_t len, bool utf8)
{
	if (s == NULL)
		return buf_append(out, "NIL", 3);
	return imap_write_string(out, s, len, utf8);
}

int
imap_write_flags(struct buf *out, const char *const *flags, size_t n)
{
	size_t mark = out->len;

	if (buf_append(out, "(", 1) < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (buf_printf(out, "%s%s", i > 0 ? " " : "", flags[i]) < 0)
			return write_undo(out, mark);
	if (buf_append(out, ")", 1) < 0)
		return write_undo(out, mark);
	return 1;
}

int
imap_write_mailbox(struct buf *out, const char *name, bool utf8)
{
	struct buf wire;
	int ret;

	buf_init(&wire, 4 * IMAP_MAILBOX_MAX + 16);
	ret = imap_mailbox_encode(&wire, name, utf8);
	if (ret > 0) {
		/* "INBOX" needs no quotes; other names are quoted to be safe
		 * with clients that trip over atoms holding '/' or '&'. */
		if (strcmp(wire.data, "INBOX") == 0)
			ret = buf_append(out, "INBOX", 5);
		else
			ret = imap_write_string(out, wire.data, wire.len, utf8);
	}
	buf_free(&wire);
	return ret;
}

int
imap_write_datetime(struct buf *out, time_t t, int zone)
{
	char date[IMAP_DATETIME_SIZE];

	imap_datetime_format(t, zone, date, sizeof(date));
	return buf_printf(out, "\"%s\"", date);
}
