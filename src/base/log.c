#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/util.h"

static const char *log_progname = "youju";
static enum log_level log_min = LOG_LVL_INFO;

static const char *const log_level_names[] = {
	[LOG_LVL_DEBUG] = "debug",
	[LOG_LVL_INFO] = "info",
	[LOG_LVL_WARN] = "warning",
	[LOG_LVL_ERROR] = "error",
};

void
log_init(const char *progname, enum log_level min_level)
{
	log_progname = progname;
	log_min = min_level;
}

int
log_level_parse(const char *name, enum log_level *level_r)
{
	static const struct { const char *name; enum log_level level; } map[] = {
		{ "debug", LOG_LVL_DEBUG }, { "info", LOG_LVL_INFO },
		{ "warn", LOG_LVL_WARN }, { "warning", LOG_LVL_WARN },
		{ "error", LOG_LVL_ERROR },
	};
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		if (strcmp(map[i].name, name) == 0) {
			*level_r = map[i].level;
			return 1;
		}
	}
	return -1;
}

static void
log_vwrite(enum log_level level, const char *fmt, va_list ap)
{
	char line[2048];
	struct tm tm;
	time_t now;
	size_t len;
	int n;

	if (level < log_min)
		return;
	now = time(NULL);
	gmtime_r(&now, &tm);
	len = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%SZ ", &tm);
	n = snprintf(line + len, sizeof(line) - len, "%s[%ld]: %s: ",
		     log_progname, (long)getpid(), log_level_names[level]);
	if (n > 0)
		len += (size_t)n;
	n = vsnprintf(line + len, sizeof(line) - len, fmt, ap);
	if (n > 0)
		len += (size_t)n;
	if (len > sizeof(line) - 2)
		len = sizeof(line) - 2;
	/* Control characters from peers never reach the terminal raw. */
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)line[i] < 0x20 && line[i] != '\t')
			line[i] = '?';
	}
	line[len++] = '\n';
	/* One write() per line keeps lines from different threads whole. */
	if (write(STDERR_FILENO, line, len) < 0)
		return;
}

/* The escaped form of one character of value (n bytes at p). */
static size_t
log_value_char(const unsigned char *p, size_t n, bool raw, char *out)
{
	size_t o = 0;

	if (raw) {
		memcpy(out, p, n);
		return n;
	}
	for (size_t i = 0; i < n; i++)
		o += (size_t)sprintf(out + o, "\\x%02X", p[i]);
	return o;
}

/* One character of value at p: its length in the input (*n_r) and its
 * escaped form in esc; returns the length of that. */
static size_t
log_value_next(const unsigned char *p, size_t len, size_t *n_r, char *esc)
{
	unsigned cp = 0;
	size_t n = util_utf8_decode(p, len, &cp);
	bool raw = n > 0 && !util_unicode_control(cp) &&
		   (cp >= 0x80 || strchr(" =\"\\", (int)cp) == NULL);

	*n_r = n > 0 ? n : 1;
	return log_value_char(p, *n_r, raw, esc);
}

const char *
log_value(char *out, size_t outlen, const char *value)
{
	const unsigned char *p = (const unsigned char *)value;
	size_t len = strlen(value), i, o = 0, n, total = 0;
	char esc[16];
	bool cut;

	for (i = 0; i < len; i += n)
		total += log_value_next(p + i, len - i, &n, esc);
	cut = total + 1 > outlen;
	for (i = 0; i < len; i += n) {
		size_t m = log_value_next(p + i, len - i, &n, esc);

		/* A cut value keeps room for "..." and ends at a character. */
		if (cut && o + m + 4 > outlen)
			break;
		memcpy(out + o, esc, m);
		o += m;
	}
	memcpy(out + o, cut ? "..." : "", cut ? 4 : 1);
	return out;
}

#define LOG_FN(name, level)                                   \
	void name(const char *fmt, ...)                       \
	{                                                     \
		va_list ap;                                   \
		va_start(ap, fmt);                            \
		log_vwrite(level, fmt, ap);                   \
		va_end(ap);                                   \
	}

LOG_FN(log_debug, LOG_LVL_DEBUG)
LOG_FN(log_info, LOG_LVL_INFO)
LOG_FN(log_warn, LOG_LVL_WARN)
LOG_FN(log_error, LOG_LVL_ERROR)

void
log_fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LVL_ERROR, fmt, ap);
	va_end(ap);
	exit(1);
}
