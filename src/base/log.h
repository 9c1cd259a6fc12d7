/* log.h - one line per event, to stderr.
 *
 * Lines look like: "2026-11-22T15:00:00Z youjud[123]: info: smtp: ..."
 * Callers put key=value fields in the message (session=ID client=IP ...)
 * so that a sysadmin can grep them. Never log secrets.
 * All functions are thread-safe: a line is written with a single write().
 */
#ifndef YJ_LOG_H
#define YJ_LOG_H

#include "base/err.h"

enum log_level { LOG_LVL_DEBUG, LOG_LVL_INFO, LOG_LVL_WARN, LOG_LVL_ERROR };

/* Sets the program name shown on each line and the minimum level. */
void log_init(const char *progname, enum log_level min_level);
/* Parses "debug", "info", "warn" or "error"; returns -1 if unknown. */
int log_level_parse(const char *name, enum log_level *level_r);

void log_debug(const char *fmt, ...) YJ_PRINTF(1, 2);
void log_info(const char *fmt, ...) YJ_PRINTF(1, 2);
void log_warn(const char *fmt, ...) YJ_PRINTF(1, 2);
void log_error(const char *fmt, ...) YJ_PRINTF(1, 2);
/* Room for any value log_value() writes from an address or a name of
 * up to 320 bytes (each byte may take four). */
#define LOG_VALUE_MAX 1400

/* A client-chosen value (address, HELO name, user name) made safe for a
 * key=value log line: a space, '=', '"', '\\', control characters (C0,
 * DEL, C1, bidirectional controls: util_unicode_control) and bytes that
 * are not UTF-8 are written as \xHH, so that the value can neither end
 * its field nor fake another one, and reads back exactly. A value too
 * long for out is cut at a character, and "..." marks the cut. Returns
 * out (outlen > 3). */
const char *log_value(char *out, size_t outlen, const char *value);

/* Logs at error level and exits with status 1: the process cannot go on. */
void log_fatal(const char *fmt, ...) YJ_PRINTF(1, 2) __attribute__((noreturn));

#endif
