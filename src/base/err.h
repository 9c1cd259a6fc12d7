/* err.h - a caller-owned error message buffer.
 *
 * Fallible functions in youju return an int: -1 on error, 0 for "none" or
 * "need more", 1 for success. Where an error has details, the function also
 * takes a struct yj_err * and writes a one-line, human-readable reason into
 * it. The caller owns the buffer, so no allocation happens on error paths.
 */
#ifndef YJ_ERR_H
#define YJ_ERR_H

#include <stddef.h>

#define YJ_ERR_MAX 512

struct yj_err {
	char msg[YJ_ERR_MAX];
};

#define YJ_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define YJ_MUST_CHECK __attribute__((warn_unused_result))

/* Formats a message into err (if err is not NULL). Always returns -1 so
 * that callers can write: return yj_err_set(err, "...");. */
int yj_err_set(struct yj_err *err, const char *fmt, ...) YJ_PRINTF(2, 3);

/* Like yj_err_set, with ": strerror(errno)" appended. */
int yj_err_errno(struct yj_err *err, const char *fmt, ...) YJ_PRINTF(2, 3);

#endif
