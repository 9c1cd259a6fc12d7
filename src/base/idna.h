/* idna.h - internationalized domain names (RFC 5890): one spelling for
 * lookups. A U-label and its A-label are the same label, so a domain is
 * compared in its ASCII form ("exämple.test" is "xn--exmple-cua.test"). */
#ifndef YJ_IDNA_H
#define YJ_IDNA_H

#include <stddef.h>

#include "base/err.h"

/* Writes domain as A-labels, lowercased, to out (outlen bytes). An ASCII
 * domain is only lowercased. Uses IDNA2008 with NFC of the input, as
 * "youju domain add" does. Returns 1, or -1 if domain is not a valid IDN
 * or does not fit. */
int idna_to_ascii(const char *domain, char *out, size_t outlen) YJ_MUST_CHECK;

#endif
