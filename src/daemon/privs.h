/* privs.h - dropping root. */
#ifndef YJ_PRIVS_H
#define YJ_PRIVS_H

#include "base/err.h"

/* If running as root, switches to user (its uid, gid and only its
 * supplementary groups) and checks root cannot be regained. Not root:
 * nothing to do. Returns 1, or -1 if the user is missing or the switch
 * failed: the caller must not go on as root. */
int privs_drop(const char *user, struct yj_err *err) YJ_MUST_CHECK;

#endif
