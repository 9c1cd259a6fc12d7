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
/* Logs at error level and exits with status 1: the process cannot go on. */
void log_fatal(const char *fmt, ...) YJ_PRINTF(1, 2) __attribute__((noreturn));

#endif
