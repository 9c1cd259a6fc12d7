/* imap_write.h - strict IMAP response values (RFC 9051 9): strings as
 * atoms, quoted strings or literals, NIL, flag lists, mailbox names and
 * date-times, appended to a bounded buffer. Pure code.
 *
 * A string is quoted only when that is safe: no CR, LF or NUL, and no
 * 8-bit byte unless the client enabled UTF8=ACCEPT (then valid UTF-8 may
 * be quoted). Anything else is sent as a literal, which any client reads.
 * Every function returns 1, or -1 when the buffer would pass its maximum
 * (the buffer is then left as it was).
 */
#ifndef YJ_IMAP_WRITE_H
#define YJ_IMAP_WRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "base/buf.h"

/* A string: quoted when safe, a literal otherwise (the rules and the
 * writer are mime/mime_imap.h's, shared with ENVELOPE and BODYSTRUCTURE). */
int imap_write_string(struct buf *out, const char *s, size_t len, bool utf8) YJ_MUST_CHECK;
/* An astring: an atom when it is one (and not NIL), else as above. */
int imap_write_astring(struct buf *out, const char *s, size_t len, bool utf8) YJ_MUST_CHECK;
/* An nstring: NIL for NULL. */
int imap_write_nstring(struct buf *out, const char *s, size_t len, bool utf8) YJ_MUST_CHECK;
/* A literal, "{n}" CRLF and the bytes. */
int imap_write_literal(struct buf *out, const char *s, size_t len) YJ_MUST_CHECK;
/* A flag list: "(\Seen $Forwarded)". */
int imap_write_flags(struct buf *out, const char *const *flags, size_t n) YJ_MUST_CHECK;
/* A mailbox name (UTF-8 inside youju) as the client reads it: modified
 * UTF-7 or, with utf8, UTF-8; as an astring. */
int imap_write_mailbox(struct buf *out, const char *name, bool utf8) YJ_MUST_CHECK;
/* A quoted date-time, "17-Jul-1996 02:44:25 -0700", zone in minutes east. */
int imap_write_datetime(struct buf *out, time_t t, int zone) YJ_MUST_CHECK;

#endif
