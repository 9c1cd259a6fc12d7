/* mime_date.h - the date-time of a Date: field (RFC 5322 3.3 with the
 * obsolete forms of 4.3: two-digit years, named zones, comments), for
 * the SENT* search keys and sorting and threading by sent date.
 */
#ifndef YJ_MIME_DATE_H
#define YJ_MIME_DATE_H

#include <stddef.h>
#include <stdint.h>

struct mime_date {
	int year, mon, day;	/* the date as written (SENTON ignores the zone) */
	int64_t utc;		/* seconds since the epoch, zone applied */
};

/* Parses a Date: field value. Returns 1, or 0 if it is not a date (a
 * missing time or zone is taken as 00:00:00 and +0000). */
int mime_date_parse(const char *p, size_t len, struct mime_date *d);

#endif
