/* mime_ctype.h - Content-Type and Content-Disposition values (RFC 2045
 * 5.1, RFC 2183) and their parameters, with RFC 2231 continuations.
 *
 * Parameters keep the case and the encoded form they were sent with, as
 * IMAP BODYSTRUCTURE reports them; the continuations of one name
 * ("title*0*", "title*1") are joined in order into one parameter named
 * "title*" if its first section is encoded, else "title". mime_param_decode
 * turns a value into UTF-8 for whoever needs the text.
 */
#ifndef YJ_MIME_CTYPE_H
#define YJ_MIME_CTYPE_H

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"

/* Parameters kept per value; more are ignored. */
#define MIME_PARAMS_MAX 64
/* Longest type, subtype, parameter name or value kept. */
#define MIME_TOKEN_MAX 4096
/* Highest RFC 2231 section number accepted. */
#define MIME_SECTION_MAX 999

struct mime_param {
	struct buf name;
	struct buf value;
};

/* "type/subtype; params" (Content-Type) or "type; params"
 * (Content-Disposition: then subtype stays empty). */
struct mime_ctype {
	struct buf type;
	struct buf subtype;
	struct mime_param params[MIME_PARAMS_MAX];
	size_t nparams;
};

void mime_ctype_init(struct mime_ctype *ct);
void mime_ctype_free(struct mime_ctype *ct);

/* Parses a field value. Returns 1 if a type (and, when want_subtype, a
 * subtype) was found; else 0, with whatever parameters could be read. */
int mime_ctype_parse(struct mime_ctype *ct, const char *p, size_t len, bool want_subtype);

/* The value of parameter name (case-insensitive), or NULL. */
const struct buf *mime_ctype_param(const struct mime_ctype *ct, const char *name);

/* Decodes an RFC 2231 extended value "charset'lang'%xx..." into UTF-8
 * (out). Returns 1, or -1 if the charset is unknown or the value broken
 * (out then holds the raw value). */
int mime_param_decode(const char *value, size_t len, struct buf *out);

#endif
