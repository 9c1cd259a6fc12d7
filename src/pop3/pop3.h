/* pop3.h - the POP3 server as a session protocol (RFC 1939, 2449, 2595,
 * 5034), on the pop3 and pop3s listeners. */
#ifndef YJ_POP3_H
#define YJ_POP3_H

#include "net/session.h"

extern const struct session_proto pop3_proto;

#endif
