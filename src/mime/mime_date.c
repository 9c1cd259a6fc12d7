#include "mime/mime_date.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

struct date_lex {
	const char *p;
	size_t len, pos;
};

/* Skips blanks, line ends and (nested) comments: CFWS. */
static void
skip_cfws(struct date_lex *l)
{
	int depth = 0;

	while (l->pos < l->len) {
		char c = l->p[l->pos];

		if (c == '(')
			depth++;
		else if (c == ')' && depth > 0)
			depth--;
		else if (depth == 0 && c != ' ' && c != '\t' && c != '\r' && c != '\n')
			return;
		l->pos++;
	}
}

static bool
lex_digits(struct date_lex *l, size_t min, size_t max, int *v)
{
	size_t n = 0;

	*v = 0;
	while (l->pos < l->len && n < max && l->p[l->pos] >= '0' && l->p[l->pos] <= '9') {
		*v = *v * 10 + (l->p[l->pos++] - '0');
		n++;
	}
	return n >= min;
}

/* A word of letters (day, month or zone name), at most max long. */
static size_t
lex_alpha(struct date_lex *l, char *out, size_t max)
{
	size_t n = 0;

	while (l->pos < l->len && ((l->p[l->pos] | 0x20) >= 'a' && (l->p[l->pos] | 0x20) <= 'z')) {
		if (n < max)
			out[n] = l->p[l->pos];
		n++;
		l->pos++;
	}
	out[n < max ? n : max] = '\0';
	return n;
}

static bool
lex_char(struct date_lex *l, char c)
{
	skip_cfws(l);
	if (l->pos < l->len && l->p[l->pos] == c) {
		l->pos++;
		return true;
	}
	return false;
}

static int
month_of(const char *name)
{
	static const char months[] = "janfebmaraprmayjunjulaugsepoctnovdec";

	if (strlen(name) != 3)
		return 0;
	for (int i = 0; i < 12; i++)
		if (strncasecmp(months + 3 * i, name, 3) == 0)
			return i + 1;
	return 0;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* The zone's offset east of UTC in minutes: +hhmm, -hhmm or a name
 * (RFC 5322 4.3; military and unknown names count as +0000). */
static int
zone_minutes(struct date_lex *l)
{
	static const struct { const char *name; int off; } names[] = {
		{ "UT", 0 }, { "GMT", 0 }, { "EST", -300 }, { "EDT", -240 }, { "CST", -360 },
		{ "CDT", -300 }, { "MST", -420 }, { "MDT", -360 }, { "PST", -480 }, { "PDT", -420 },
	};
	char word[8];
	int v;

	skip_cfws(l);
	if (l->pos < l->len && (l->p[l->pos] == '+' || l->p[l->pos] == '-')) {
		int sign = l->p[l->pos++] == '-' ? -1 : 1;
		if (!lex_digits(l, 4, 4, &v) || v % 100 > 59)
			return 0;
		return sign * (v / 100 * 60 + v % 100);
	}
	lex_alpha(l, word, sizeof(word) - 1);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(word, names[i].name) == 0)
			return names[i].off;
	return 0;
}

static bool
parse_time(struct date_lex *l, int *h, int *m, int *s)
{
	*h = *m = *s = 0;
	skip_cfws(l);
	if (!lex_digits(l, 1, 2, h) || !lex_char(l, ':'))
		return false;
	skip_cfws(l);
	if (!lex_digits(l, 2, 2, m))
		return false;
	if (lex_char(l, ':')) {
		skip_cfws(l);
		if (!lex_digits(l, 2, 2, s))
			return false;
	}
	return *h <= 23 && *m <= 59 && *s <= 60;
}

static int
days_in_month(int y, int m)
{
	static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : days[m - 1];
}

int
mime_date_parse(const char *p, size_t len, struct mime_date *d)
{
	struct date_lex l = { p, len, 0 };
	char word[16];
	int day, year, hh, mm, ss, zone = 0;
	size_t save;

	skip_cfws(&l);
	save = l.pos;
	if (lex_alpha(&l, word, sizeof(word) - 1) == 0 || !lex_char(&l, ','))
		l.pos = save;	/* no day of week */
	skip_cfws(&l);
	if (!lex_digits(&l, 1, 2, &day))
		return 0;
	skip_cfws(&l);
	lex_alpha(&l, word, sizeof(word) - 1);
	if ((d->mon = month_of(word)) == 0)
		return 0;
	skip_cfws(&l);
	save = l.pos;
	if (!lex_digits(&l, 2, 4, &year))
		return 0;
	if (l.pos - save == 2)
		year += year < 50 ? 2000 : 1900;	/* RFC 5322 4.3 */
	else if (l.pos - save == 3)
		year += 1900;
	if (day < 1 || day > days_in_month(year, d->mon))
		return 0;
	if (parse_time(&l, &hh, &mm, &ss))
		zone = zone_minutes(&l);
	else
		hh = mm = ss = 0;
	d->year = year;
	d->day = day;
	d->utc = days_from_civil(year, d->mon, day) * 86400 + hh * 3600 + mm * 60 + ss -
		 (int64_t)zone * 60;
	return 1;
}
