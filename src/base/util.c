#include "base/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "base/block.h"
#include "base/log.h"

int64_t
util_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
util_deadline(struct timespec *until, clockid_t clock, int64_t ms)
{
	clock_gettime(clock, until);
	until->tv_sec += (time_t)(ms / 1000);
	until->tv_nsec += (long)(ms % 1000) * 1000000L;
	until->tv_sec += until->tv_nsec / 1000000000L;
	until->tv_nsec %= 1000000000L;
}

void
util_random_id(char *out, size_t len)
{
	static const char alphabet[] = "0123456789BCDFGHJKLMNPQRSTVWXYZ";
	unsigned char rnd[64];

	if (len > sizeof(rnd))
		len = sizeof(rnd);
	if (RAND_bytes(rnd, (int)len) != 1)
		log_fatal("RAND_bytes failed");
	for (size_t i = 0; i < len; i++)
		out[i] = alphabet[rnd[i] % (sizeof(alphabet) - 1)];
	out[len] = '\0';
}

void
util_rfc5322_date(time_t t, char *out, size_t outlen)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	/* Day and month names are fixed by RFC 5322, not by the locale. */
	static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	snprintf(out, outlen, "%s, %d %s %d %02d:%02d:%02d +0000", days[tm.tm_wday],
		 tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
		 tm.tm_sec);
}

void
util_ascii_lower(char *s)
{
	for (; *s != '\0'; s++) {
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
	}
}

int
util_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 1;
}

int
util_fsync_dir(const char *path, struct yj_err *err)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r;

	if (fd < 0)
		return yj_err_errno(err, "open %s", path);
	/* A wait for the disk: a session's run slot goes to another
	 * session meanwhile (base/block.h). */
	block_begin();
	r = fsync(fd);
	block_end();
	if (r < 0) {
		yj_err_errno(err, "fsync %s", path);
		close(fd);
		return -1;
	}
	close(fd);
	return 1;
}

int
util_mkdir_p(const char *path, unsigned mode, struct yj_err *err)
{
	char tmp[4096];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(tmp))
		return yj_err_set(err, "bad directory path");
	memcpy(tmp, path, len + 1);
	for (char *p = tmp + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) < 0 && errno != EEXIST)
			return yj_err_errno(err, "mkdir %s", tmp);
		*p = '/';
	}
	if (mkdir(tmp, mode) < 0 && errno != EEXIST)
		return yj_err_errno(err, "mkdir %s", tmp);
	return 1;
}

int
util_write_file_atomic(const char *path, const void *data, size_t len, unsigned mode,
		       struct yj_err *err)
{
	char tmp[4096], dir[4096];
	char *slash;
	int fd;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return yj_err_set(err, "path too long");
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return yj_err_errno(err, "create %s", tmp);
	/* A leftover tmp file keeps its old mode through O_TRUNC. */
	if (fchmod(fd, mode) < 0 || util_write_all(fd, data, len) < 0 || fsync(fd) < 0) {
		yj_err_errno(err, "write %s", tmp);
		close(fd);
		unlink(tmp);
		return -1;
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		yj_err_errno(err, "rename %s", tmp);
		unlink(tmp);
		return -1;
	}
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	return util_fsync_dir(dir, err);
}

size_t
util_utf8_decode(const unsigned char *p, size_t len, unsigned *cp_r)
{
	unsigned char c = p[0];
	size_t n;
	unsigned cp;

	if (len == 0)
		return 0;
	if (c < 0x80) {
		*cp_r = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) { n = 1; cp = c & 0x1f; }
	else if (c >= 0xe0 && c <= 0xef) { n = 2; cp = c & 0x0f; }
	else if (c >= 0xf0 && c <= 0xf4) { n = 3; cp = c & 0x07; }
	else return 0;
	for (size_t k = 1; k <= n; k++) {
		if (k >= len || (p[k] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[k] & 0x3f);
	}
	if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	*cp_r = cp;
	return n + 1;
}

bool
util_unicode_control(unsigned cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) ||	/* C0, DEL, C1 */
	       cp == 0x061c || cp == 0x200e || cp == 0x200f ||	/* bidi marks */
	       (cp >= 0x2028 && cp <= 0x202e) ||		/* line breaks, bidi */
	       (cp >= 0x2066 && cp <= 0x2069);			/* bidi isolates */
}

bool
util_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < len) {
		unsigned cp;
		size_t n = util_utf8_decode(p + i, len - i, &cp);

		if (n == 0 || util_unicode_control(cp))
			return false;
		i += n;
	}
	return true;
}
