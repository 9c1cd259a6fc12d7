#include "imap/imap_date.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char *const month_names[12] = {
	"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
};

static int
days_in_month(int year, int mon)
{
	static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

	return mon == 2 && leap ? 29 : days[mon - 1];
}

/* Reads exactly n digits. */
static int
digits(const char *s, size_t n, int *v_r)
{
	int v = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*v_r = v;
	return 1;
}

/* The date part; *used_r is how much of s it took. */
static int
date_part(const char *s, size_t len, struct imap_date *d, size_t *used_r)
{
	size_t i = 0, dl;

	if (len > 0 && s[0] == ' ')
		i++;	/* date-time's day may be padded with a space */
	dl = len > i + 1 && s[i + 1] >= '0' && s[i + 1] <= '9' ? 2 : 1;
	if (len < i + dl + 9 || digits(s + i, dl, &d->day) < 0 || s[i + dl] != '-' ||
	    s[i + dl + 4] != '-' || digits(s + i + dl + 5, 4, &d->year) < 0)
		return -1;
	d->mon = 0;
	for (int m = 0; m < 12; m++)
		if (strncasecmp(s + i + dl + 1, month_names[m], 3) == 0)
			d->mon = m + 1;
	if (d->mon == 0 || d->day < 1 || d->day > days_in_month(d->year, d->mon))
		return -1;
	*used_r = i + dl + 9;
	return 1;
}

int
imap_date_parse(const char *s, size_t len, struct imap_date *d)
{
	size_t used;

	if (len == 0 || s[0] == ' ' || date_part(s, len, d, &used) < 0 || used != len)
		return -1;
	return 1;
}

int
imap_date_cmp(const struct imap_date *a, const struct imap_date *b)
{
	int x = a->year * 10000 + a->mon * 100 + a->day;
	int y = b->year * 10000 + b->mon * 100 + b->day;

	return (x > y) - (x < y);
}

int
imap_datetime_parse(const char *s, size_t len, time_t *t_r, int *zone_r)
{
	struct imap_date d;
	struct tm tm;
	size_t i;
	int hh, mm, ss, zh, zm;

	if (date_part(s, len, &d, &i) < 0 || len - i != 15 || s[i] != ' ' ||
	    digits(s + i + 1, 2, &hh) < 0 || s[i + 3] != ':' || digits(s + i + 4, 2, &mm) < 0 ||
	    s[i + 6] != ':' || digits(s + i + 7, 2, &ss) < 0 || s[i + 9] != ' ' ||
	    (s[i + 10] != '+' && s[i + 10] != '-') || digits(s + i + 11, 2, &zh) < 0 ||
	    digits(s + i + 13, 2, &zm) < 0)
		return -1;
	if (hh > 23 || mm > 59 || ss > 60 || zm > 59)
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = d.year - 1900;
	tm.tm_mon = d.mon - 1;
	tm.tm_mday = d.day;
	tm.tm_hour = hh;
	tm.tm_min = mm;
	tm.tm_sec = ss == 60 ? 59 : ss;	/* a leap second is kept in its minute */
	*zone_r = (zh * 60 + zm) * (s[i + 10] == '-' ? -1 : 1);
	*t_r = timegm(&tm) - (time_t)*zone_r * 60;
	return 1;
}

void
imap_datetime_format(time_t t, int zone, char *out, size_t outsize)
{
	time_t local = t + (time_t)zone * 60;
	struct tm tm;
	int z = zone < 0 ? -zone : zone;

	gmtime_r(&local, &tm);
	snprintf(out, outsize, "%2d-%s-%04d %02d:%02d:%02d %c%02d%02d", tm.tm_mday,
		 month_names[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 zone < 0 ? '-' : '+', z / 60 % 100, z % 60);
}
