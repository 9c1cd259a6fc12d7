/* libFuzzer target for the ARC-Authentication-Results reader: any
 * field value gives a parse or a refusal, with every string terminated
 * and within its limit, never a crash. The same input is also searched
 * as a header section. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mailauth/arc_aar.h"

#define FUZZ_CHECK(x) do { if (!(x)) abort(); } while (0)

static void
check(const struct arc_aar *a)
{
	FUZZ_CHECK(a->instance >= 1 && a->instance <= 50 && a->n <= ARC_AAR_RESULTS_MAX);
	FUZZ_CHECK(strlen(a->authserv_id) < sizeof(a->authserv_id));
	for (size_t i = 0; i < a->n; i++) {
		FUZZ_CHECK(a->r[i].method[0] != '\0');
		FUZZ_CHECK(strlen(a->r[i].domain) < sizeof(a->r[i].domain));
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct arc_aar a;
	char *p = malloc(size ? size : 1);

	memcpy(p, data, size);
	if (arc_aar_parse(p, size, &a) == 1)
		check(&a);
	if (arc_aar_find(p, size, 1, &a) == 1)
		check(&a);
	free(p);
	return 0;
}
