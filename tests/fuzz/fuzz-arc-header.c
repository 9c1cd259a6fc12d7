/* libFuzzer target for ARC: a message's ARC-Seal, ARC-Message-Signature
 * and ARC-Authentication-Results fields through chain validation, then a
 * new set sealed over the same message. Any input gives a chain status
 * (and a seal or a one-line refusal), never a crash. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "mailauth/arc.h"
#include "mailauth/dkim_hdr.h"
#include "mailauth/dkim_zone.h"

#define FUZZ_CHECK(x) do { if (!(x)) abort(); } while (0)

static struct dkim_zone zone;
static EVP_PKEY *key;

static void
setup(void)
{
	static const unsigned char seed[32] = { 1, 2, 3, 4, 5, 6, 7, 8 };

	dkim_zone_init(&zone);
	(void)dkim_zone_add(&zone, "s._domainkey.d.test",
			    "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
			    DKIM_ZONE_TXT);
	key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
	FUZZ_CHECK(key != NULL);
}

static void
seal(const char *msg, size_t len, enum arc_cv cv)
{
	struct arc_seal_opts o = {
		.domain = "d.test", .selector = "s", .pkey = key, .now = 1700000000,
		.authres = "d.test; arc=pass", .cv = cv,
	};
	size_t hdr_len, body_off;
	struct arc_sealer *s;
	struct yj_err err;
	struct buf out;

	dkim_msg_split(msg, len, &hdr_len, &body_off);
	s = arc_sealer_new(&o, msg, hdr_len);
	arc_sealer_body(s, msg + body_off, len - body_off);
	buf_init(&out, 1024 * 1024);
	if (arc_sealer_finish(s, &out, &err) == 1)
		FUZZ_CHECK(strncmp(out.data, "ARC-Seal:", 9) == 0);
	buf_free(&out);
	arc_sealer_free(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dkim_verify_opts o = { .now = 1700000000 };
	struct arc_result res;
	char *msg;

	if (key == NULL)
		setup();
	msg = malloc(size ? size : 1);
	memcpy(msg, data, size);
	arc_verify_message(&o, &zone.resolver, msg, size, &res);
	FUZZ_CHECK(res.reason != NULL && res.instances <= ARC_INSTANCES_MAX);
	FUZZ_CHECK(res.cv != ARC_CV_PASS || res.instances > 0);
	seal(msg, size, res.cv);
	free(msg);
	return 0;
}
