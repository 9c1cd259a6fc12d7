/* listen.h - listening sockets. */
#ifndef YJ_LISTEN_H
#define YJ_LISTEN_H

#include "base/err.h"

/* Parses "ADDR:PORT", "[V6ADDR]:PORT" or ":PORT"/"*:PORT" (all addresses)
 * and returns a bound, listening, close-on-exec socket; -1 on error. */
int listen_bind(const char *spec, struct yj_err *err) YJ_MUST_CHECK;

/* A listening, close-on-exec Unix stream socket at path (a stale socket
 * file there is replaced), with the given permission bits; -1 on error. */
int listen_unix(const char *path, unsigned mode, struct yj_err *err) YJ_MUST_CHECK;

/* Is addr (textual IPv4 or IPv6) inside one of the CIDRs in list
 * (separated by spaces or commas; "[::1]/128" and "::1/128" both work;
 * a bare address means /32 or /128)? Returns 1 yes, 0 no, -1 if the list
 * is malformed (err says where). */
int cidr_list_match(const char *list, const char *addr, struct yj_err *err);

/* Checks that a CIDR list is well-formed. */
int cidr_list_check(const char *list, struct yj_err *err);

#endif
