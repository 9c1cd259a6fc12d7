/* libFuzzer target for the DKIM tag-list parser and what is built on it:
 * DKIM-Signature, ARC-Message-Signature and ARC-Seal values, key records,
 * and whole messages through verification (header split, field choice,
 * canonicalization). The first byte picks the parser. Any input gives a
 * result or an error, never a crash. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mailauth/dkim.h"
#include "mailauth/dkim_sig.h"
#include "mailauth/dkim_tag.h"
#include "mailauth/dkim_zone.h"

#define FUZZ_CHECK(x) do { if (!(x)) abort(); } while (0)

static struct dkim_zone zone;

static void
fuzz_tags(const char *text, size_t len)
{
	struct dkim_tags tags;
	const char *why = NULL;

	if (dkim_tags_parse(text, len, &tags, &why) == 1) {
		FUZZ_CHECK(tags.n > 0 && tags.n <= DKIM_TAGS_MAX);
		for (size_t i = 0; i < tags.n; i++) {
			const struct dkim_tag *t = &tags.tag[i];
			FUZZ_CHECK(t->raw_start <= t->raw_end && t->raw_end <= len);
			FUZZ_CHECK(t->value >= text && t->value + t->value_len <= text + len);
		}
	} else {
		FUZZ_CHECK(why != NULL);
	}
}

static void
fuzz_sig(const char *text, size_t len, enum dkim_kind kind)
{
	static struct dkim_sig sig;
	const char *why = NULL;

	if (dkim_sig_parse(&sig, kind, text, len, &why) == 1) {
		FUZZ_CHECK(sig.b_len > 0 && sig.b_len <= DKIM_SIG_BYTES_MAX);
		FUZZ_CHECK(strlen(sig.d) < DKIM_NAME_MAX && strlen(sig.i) < DKIM_NAME_MAX);
	} else {
		FUZZ_CHECK(why != NULL);
	}
}

static void
fuzz_key(const char *text, size_t len)
{
	struct dkim_key key;
	const char *why = NULL;

	if (dkim_key_parse(&key, text, len, &why) == 1)
		FUZZ_CHECK(key.revoked == (key.p_len == 0));
	else
		FUZZ_CHECK(why != NULL);
}

/* Any name answers with one Ed25519 key (RFC 8463's), so verification
 * gets past the key to the header and body hashes. */
static void
fuzz_message(const char *msg, size_t len)
{
	struct dkim_verify_opts o = { .now = 1700000000 };
	struct dkim_result res[DKIM_SIGS_MAX];
	size_t n = dkim_verify_message(&o, &zone.resolver, msg, len, res, DKIM_SIGS_MAX);

	FUZZ_CHECK(n <= DKIM_SIGS_MAX);
	for (size_t i = 0; i < n; i++)
		FUZZ_CHECK(res[i].reason != NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text;

	if (size < 1)
		return 0;
	if (zone.n == 0) {
		dkim_zone_init(&zone);
		(void)dkim_zone_add(&zone, "s._domainkey.d.test",
				    "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
				    DKIM_ZONE_TXT);
	}
	/* Own copy: parsers must not read past size. */
	text = malloc(size - 1 ? size - 1 : 1);
	memcpy(text, data + 1, size - 1);
	switch (data[0] % 6) {
	case 0: fuzz_tags(text, size - 1); break;
	case 1: fuzz_sig(text, size - 1, DKIM_KIND_SIG); break;
	case 2: fuzz_sig(text, size - 1, DKIM_KIND_AMS); break;
	case 3: fuzz_sig(text, size - 1, DKIM_KIND_AS); break;
	case 4: fuzz_key(text, size - 1); break;
	default: fuzz_message(text, size - 1); break;
	}
	free(text);
	return 0;
}
