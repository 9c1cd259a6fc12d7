/* mime_addr.h - RFC 5322 address lists (3.4) with the obsolete forms of
 * 4.4 (routes, phrases with dots, comments anywhere), as IMAP ENVELOPE
 * needs them: display name, route, local part and domain of each
 * mailbox, and group markers.
 *
 * Lenient as real mail needs: an address without a domain or local part
 * still gives an entry (the part missing is left empty and flagged), and
 * garbage is skipped up to the next comma. Display names and local parts
 * keep encoded words as they are; quoted strings are unquoted.
 */
#ifndef YJ_MIME_ADDR_H
#define YJ_MIME_ADDR_H

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"

/* Entries kept per list; the rest are dropped. */
#define MIME_ADDRS_MAX 1000
/* Longest name, route, local part or domain kept. */
#define MIME_ADDR_PART_MAX 4096

enum mime_addr_kind {
	MIME_ADDR_MAILBOX,
	MIME_ADDR_GROUP_START,	/* name holds the group's display name */
	MIME_ADDR_GROUP_END,
};

struct mime_addr {
	enum mime_addr_kind kind;
	bool has_name;
	bool has_route;
	struct buf name;
	struct buf route;	/* "@a,@b" */
	struct buf mailbox;	/* local part; empty if missing */
	struct buf domain;	/* empty if missing */
};

struct mime_addr_list {
	struct mime_addr *v;
	size_t n;
};

/* Parses an address list field value, appending its entries to list
 * (which starts as { NULL, 0 }). Returns 1. */
int mime_addr_parse(const char *p, size_t len, struct mime_addr_list *list);
void mime_addr_list_free(struct mime_addr_list *list);

#endif
