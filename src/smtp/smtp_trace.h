/* smtp_trace.h - the client-chosen parts of our trace fields (RFC 5321
 * 4.4), made safe to put into a header. Pure code. */
#ifndef YJ_SMTP_TRACE_H
#define YJ_SMTP_TRACE_H

#include <stdbool.h>
#include <stddef.h>

/* The HELO/EHLO name for "Received: from": any of <>()\";:@ (which would
 * open a comment, a quoted string or an address, or end the clause) and
 * square brackets that do not make one well-formed address literal
 * become '?', as Postfix does. out holds outlen bytes; the name is cut
 * to fit. */
void smtp_trace_helo(const char *helo, char *out, size_t outlen);

/* The client's address as an RFC 5321 address literal: "[192.0.2.1]" or
 * "[IPv6:2001:db8::1]". */
void smtp_trace_ip(const char *ip, char *out, size_t outlen);

/* Does a Delivered-To: value (trimmed; angle brackets allowed) name
 * address? Compared case-insensitively. */
bool smtp_trace_names(const char *value, const char *address);

#endif
