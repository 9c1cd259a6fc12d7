/* arc_aar.h - the results an ARC-Authentication-Results field carries
 * (RFC 8617 4.1.1: "i=N; " then an Authentication-Results value, RFC
 * 8601), read so that a sealer the admin trusts can vouch for what it
 * saw before it changed the message (RFC 8617 7.2).
 *
 * Only what DMARC needs is kept: per result, the method (dkim, spf,
 * dmarc, ...), the result, and the domain it is for (dkim: header.d, or
 * the domain of header.i; spf: the domain of smtp.mailfrom, else
 * smtp.helo; dmarc: header.from). Comments are skipped, quoted strings
 * honoured; a result that cannot be read is left out, never guessed.
 */
#ifndef YJ_ARC_AAR_H
#define YJ_ARC_AAR_H

#include <stddef.h>

#include "mailauth/dkim.h"

#define ARC_AAR_RESULTS_MAX 32
#define ARC_AAR_TOKEN_MAX 32

struct arc_aar_result {
	char method[ARC_AAR_TOKEN_MAX];		/* lower case, without "/version" */
	char result[ARC_AAR_TOKEN_MAX];		/* lower case */
	char domain[DKIM_NAME_MAX];		/* lower case, "" if none given */
};

struct arc_aar {
	unsigned instance;
	char authserv_id[DKIM_NAME_MAX];
	struct arc_aar_result r[ARC_AAR_RESULTS_MAX];
	size_t n;
};

/* Parses one field's value (after "ARC-Authentication-Results:").
 * Returns 1, or -1 if it does not start "i=N; authserv-id". Results past
 * ARC_AAR_RESULTS_MAX are left out. */
int arc_aar_parse(const char *value, size_t len, struct arc_aar *out);

/* Finds the ARC-Authentication-Results of instance i in a header section
 * and parses it. Returns 1, 0 if there is none (or it does not parse),
 * -1 if the section has too many fields. */
int arc_aar_find(const char *hdr, size_t len, unsigned instance, struct arc_aar *out);

#endif
