/* imap_mailbox.h - mailbox names on the wire (RFC 3501 5.1.3 modified
 * UTF-7, RFC 6855 UTF8=ACCEPT), LIST patterns (% and *), and flags and
 * keywords. Pure code.
 *
 * Inside youju a mailbox name is UTF-8. On the wire it is modified UTF-7
 * unless the client enabled UTF8=ACCEPT.
 */
#ifndef YJ_IMAP_MAILBOX_H
#define YJ_IMAP_MAILBOX_H

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"
#include "base/err.h"

/* Longest mailbox name, in UTF-8 bytes. */
#define IMAP_MAILBOX_MAX 1000
/* The hierarchy delimiter of every name. */
#define IMAP_MAILBOX_DELIM '/'

/* Decodes a name as the client sent it into UTF-8 (out holds outsize
 * bytes, NUL included). "INBOX" in any case becomes "INBOX", also as the
 * first level of a longer name ("inbox/a" is "INBOX/a").
 * Without utf8: '&'...'-' is modified UTF-7 and must be well formed
 * ("&-" is '&'); a '&' that cannot start an encoded run (as in "R & D")
 * is taken as itself; 8-bit UTF-8 is accepted as it is.
 * With utf8 (UTF8=ACCEPT enabled): the name is UTF-8 and a '&' is always
 * itself, as Thunderbird sends it (RFC 6855 3), so names round-trip.
 * Control characters and malformed UTF-8 are refused.
 * Returns 1, or -1 with *error_r for BAD/NO. */
int imap_mailbox_decode(const char *in, size_t len, bool utf8, char *out, size_t outsize,
			const char **error_r) YJ_MUST_CHECK;

/* Appends the UTF-8 name as sent to the client: modified UTF-7, or as it
 * is with utf8. The caller quotes it (imap_write.h). Returns 1 or -1. */
int imap_mailbox_encode(struct buf *out, const char *name, bool utf8) YJ_MUST_CHECK;

/* Does name match a LIST pattern? '*' matches anything, '%' anything but
 * the hierarchy delimiter. "INBOX" at the start of both matches in any
 * case. Both are UTF-8; time is bounded by their lengths' product. */
bool imap_list_match(const char *pattern, const char *name, char delim);

/* Flags. */
enum imap_flag_kind {
	IMAP_FLAG_INVALID,
	IMAP_FLAG_SYSTEM,	/* \Answered \Flagged \Deleted \Seen \Draft */
	IMAP_FLAG_RECENT,	/* \Recent: never set by a client */
	IMAP_FLAG_EXTENSION,	/* another \Word (flag-extension): the server decides */
	IMAP_FLAG_KEYWORD,	/* $Forwarded, NonJunk, ... */
};

/* Longest keyword accepted. */
#define IMAP_KEYWORD_MAX 100

/* What kind of flag s[0..len) is; system flags case-insensitive. A keyword
 * is an atom without resp-specials or wildcards, at most IMAP_KEYWORD_MAX. */
enum imap_flag_kind imap_flag_kind(const char *s, size_t len);
/* The system flag's canonical spelling ("\Seen") or NULL. */
const char *imap_flag_system_name(const char *s, size_t len);

#endif
