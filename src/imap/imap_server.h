/* imap_server.h - the IMAP protocol (RFC 3501, RFC 9051 and extensions)
 * for the session runtime: imap_listen (STARTTLS) and imaps_listen. */
#ifndef YJ_IMAP_SERVER_H
#define YJ_IMAP_SERVER_H

#include "net/session.h"

extern const struct session_proto imap_proto;

#endif
