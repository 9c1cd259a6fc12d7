/* imap_date.h - IMAP dates: "date" of SEARCH (1-Feb-1994) and the
 * "date-time" of APPEND and INTERNALDATE ("17-Jul-1996 02:44:25 -0700").
 * Pure code.
 */
#ifndef YJ_IMAP_DATE_H
#define YJ_IMAP_DATE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "base/err.h"

/* A calendar day, as SEARCH compares them (no time, no zone). */
struct imap_date {
	int year, mon, day;	/* mon 1-12 */
};

/* "d-Mon-yyyy" or "dd-Mon-yyyy", month names case-insensitive. Returns 1
 * or -1 (not a date, or no such day). */
int imap_date_parse(const char *s, size_t len, struct imap_date *d) YJ_MUST_CHECK;
/* <0, 0, >0 as a is before, on, after b. */
int imap_date_cmp(const struct imap_date *a, const struct imap_date *b);

/* "dd-Mon-yyyy hh:mm:ss +hhmm" (the day may be " d" or "d" too). Sets the
 * moment as UTC seconds and the zone in minutes east. Returns 1 or -1. */
int imap_datetime_parse(const char *s, size_t len, time_t *t_r, int *zone_r) YJ_MUST_CHECK;

/* Writes the date-time of t in the zone (minutes east) as the RFC fixes
 * it: day padded with a space, 26 characters. out holds at least
 * IMAP_DATETIME_SIZE bytes. */
#define IMAP_DATETIME_SIZE 32
void imap_datetime_format(time_t t, int zone, char *out, size_t outsize);

#endif
