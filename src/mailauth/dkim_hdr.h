/* dkim_hdr.h - a message's header section as fields, and the choice of
 * the fields a signature covers (RFC 6376 5.4.2: bottom-up for repeated
 * names; a name listed more often than present adds nothing, which signs
 * that no further instance exists).
 */
#ifndef YJ_DKIM_HDR_H
#define YJ_DKIM_HDR_H

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"
#include "mailauth/dkim_canon.h"

#define DKIM_FIELDS_MAX 1000	/* header fields looked at per message */

struct dkim_field {
	const char *p;		/* the field, from its name */
	size_t len;		/* through its final CRLF */
	size_t name_len;	/* up to ':' without trailing WSP */
};

struct dkim_headers {
	struct dkim_field f[DKIM_FIELDS_MAX];
	size_t n;
};

/* Splits a message at the empty line: *hdr_len is the header section's
 * length (through its last CRLF), *body_off where the body starts (len if
 * there is none). */
void dkim_msg_split(const char *msg, size_t len, size_t *hdr_len, size_t *body_off);

/* Splits a header section into fields. Returns 1, or -1 if there are
 * more than DKIM_FIELDS_MAX. */
int dkim_headers_parse(const char *hdr, size_t len, struct dkim_headers *h);

/* true if the field's name is name (case-insensitive). */
bool dkim_field_is(const struct dkim_field *f, const char *name, size_t name_len);
/* The value: after ':' through the end, CRLF excluded. */
const char *dkim_field_value(const struct dkim_field *f, size_t *len);

/* Appends the canonical form of the fields named by the colon-separated
 * list names (whitespace around names ignored), each chosen bottom-up
 * among those not yet chosen. skip (may be NULL) is a field never chosen
 * (the signature being checked or made); empty names are skipped.
 * Returns 1, or -1 if out is full. */
int dkim_hdr_select(struct buf *out, const struct dkim_headers *h, enum dkim_canon canon,
		    const char *names, size_t names_len, const struct dkim_field *skip);

#endif
