/* smtp.h - the SMTP server as a session protocol (RFC 5321): the MX role
 * on port 25 now, the submission roles on 587 and 465 next. */
#ifndef YJ_SMTP_H
#define YJ_SMTP_H

#include "net/session.h"

extern const struct session_proto smtp_proto;

#endif
