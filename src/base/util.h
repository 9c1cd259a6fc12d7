/* util.h - small helpers used across modules. */
#ifndef YJ_UTIL_H
#define YJ_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "base/err.h"

/* A random identifier of len characters from [0-9A-Z] (base32-ish, no
 * ambiguous letters), NUL-terminated; out holds len + 1 bytes. Used for
 * session and message ids in logs and headers. */
void util_random_id(char *out, size_t len);

/* CLOCK_MONOTONIC in milliseconds. */
int64_t util_now_ms(void);

/* *until = now on clock + ms: the absolute time a timed wait on a
 * condition variable of that clock takes. */
void util_deadline(struct timespec *until, clockid_t clock, int64_t ms);

/* "Sun, 22 Nov 2026 15:00:00 +0000" (RFC 5322 date-time, UTC). */
void util_rfc5322_date(time_t t, char *out, size_t outlen);

/* Lowercases ASCII letters in place. */
void util_ascii_lower(char *s);

/* Writes all of buf to fd, retrying on EINTR. Returns 1 or -1 (errno). */
int util_write_all(int fd, const void *buf, size_t len);

/* fsync()s a directory, so that entries made in it are durable. */
int util_fsync_dir(const char *path, struct yj_err *err) YJ_MUST_CHECK;

/* mkdir -p with the given mode. */
int util_mkdir_p(const char *path, unsigned mode, struct yj_err *err) YJ_MUST_CHECK;

/* Writes a whole file durably: tmp file, fsync, rename, fsync dir. */
int util_write_file_atomic(const char *path, const void *data, size_t len, unsigned mode,
			   struct yj_err *err) YJ_MUST_CHECK;

/* Is s printable ASCII or well-formed UTF-8 with no control characters
 * (util_unicode_control)? */
bool util_utf8_valid(const char *s, size_t len);

/* Decodes one UTF-8 sequence from p[0..len): its length, with the code
 * point in *cp_r (an ASCII byte is one), or 0 if it is not well formed
 * (overlong, surrogate, cut short, beyond U+10FFFF). */
size_t util_utf8_decode(const unsigned char *p, size_t len, unsigned *cp_r);

/* Characters that must never pass raw into a log line, an address or a
 * header: C0 and C1 controls, DEL, the bidirectional controls (U+061C,
 * U+200E/F, U+202A-U+202E, U+2066-U+2069) and U+2028/U+2029. */
bool util_unicode_control(unsigned cp);

#endif
