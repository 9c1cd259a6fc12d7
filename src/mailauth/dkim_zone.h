/* dkim_zone.h - a resolver answering TXT queries from a table, for the
 * test suites and for `youju dkim verify --dns FILE`.
 *
 * File format (the one DKIM test corpora use): one record a line,
 * "NAME TXT-TEXT" with the record's strings already joined; TEXT
 * "NXDOMAIN" means no such name, "~~anything~~" a temporary DNS error,
 * '""' an empty record; '#' starts a comment line. Names compare without
 * case. Other record types are never found.
 */
#ifndef YJ_DKIM_ZONE_H
#define YJ_DKIM_ZONE_H

#include <stddef.h>

#include "base/err.h"
#include "mailauth/ma_resolver.h"

#define DKIM_ZONE_MAX 4096	/* records */

enum dkim_zone_kind { DKIM_ZONE_TXT, DKIM_ZONE_NXDOMAIN, DKIM_ZONE_TEMPFAIL };

struct dkim_zone_rec {
	char *name;
	char *text;
	enum dkim_zone_kind kind;
};

struct dkim_zone {
	struct dkim_zone_rec *rec;
	size_t n;
	struct ma_resolver resolver;	/* answers from this table */
};

void dkim_zone_init(struct dkim_zone *z);
void dkim_zone_free(struct dkim_zone *z);
/* Adds a record. Returns 1, or -1 if the table is full. */
int dkim_zone_add(struct dkim_zone *z, const char *name, const char *text,
		  enum dkim_zone_kind kind);
/* Adds the records of a file. Returns 1, or -1 with err. */
int dkim_zone_load(struct dkim_zone *z, const char *path, struct yj_err *err);

#endif
