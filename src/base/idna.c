#include "base/idna.h"

#include <idn2.h>
#include <stdbool.h>
#include <string.h>

#include "base/util.h"

static bool
idna_is_ascii(const char *s)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s >= 0x80)
			return false;
	}
	return true;
}

int
idna_to_ascii(const char *domain, char *out, size_t outlen)
{
	char *ascii = NULL;
	const char *name = domain;
	size_t len;

	if (!idna_is_ascii(domain)) {
		if (idn2_to_ascii_8z(domain, &ascii, IDN2_NONTRANSITIONAL | IDN2_NFC_INPUT) !=
		    IDN2_OK)
			return -1;
		name = ascii;
	}
	len = strlen(name);
	if (len >= outlen) {
		idn2_free(ascii);
		return -1;
	}
	memcpy(out, name, len + 1);
	idn2_free(ascii);
	util_ascii_lower(out);
	return 1;
}
