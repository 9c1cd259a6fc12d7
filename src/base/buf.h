/* buf.h - a growable byte buffer with a hard maximum.
 *
 * Every buffer is created with the most it may ever hold; an append that
 * would pass it fails and leaves the buffer as it was. The data is always
 * NUL-terminated (the NUL is not counted in len), so text can be used as a
 * C string. Allocation failure is fatal (the process cannot go on).
 */
#ifndef YJ_BUF_H
#define YJ_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "base/err.h"

struct buf {
	char *data;
	size_t len;
	size_t cap;
	size_t max;
};

/* Initialises an empty buffer that may hold at most max bytes. */
void buf_init(struct buf *b, size_t max);
void buf_free(struct buf *b);
/* Empties the buffer, keeping its memory. */
void buf_reset(struct buf *b);
/* Allocates room for extra more bytes now (one allocation where the
 * size is known ahead, instead of growing by doubling). Returns 1, or -1
 * if that would exceed max. */
int buf_reserve(struct buf *b, size_t extra) YJ_MUST_CHECK;

/* Appends n bytes. Returns 1, or -1 if the result would exceed max. */
int buf_append(struct buf *b, const void *data, size_t n) YJ_MUST_CHECK;
int buf_append_str(struct buf *b, const char *s) YJ_MUST_CHECK;
int buf_printf(struct buf *b, const char *fmt, ...) YJ_PRINTF(2, 3) YJ_MUST_CHECK;
int buf_vprintf(struct buf *b, const char *fmt, va_list ap) YJ_MUST_CHECK;

/* Removes the first n bytes (n <= len). */
void buf_consume(struct buf *b, size_t n);
/* Keeps only the first len bytes (len <= b->len): how a writer that
 * appends in several steps undoes them all when one fails. */
void buf_truncate(struct buf *b, size_t len);

#endif
