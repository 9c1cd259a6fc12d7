/* The one base64 codec: RFC 4648's test vectors both ways, and what each
 * mode accepts (strict for SASL, folded for DKIM, lenient for MIME). */
#include <string.h>

#include "base/base64.h"
#include "test.h"

struct b64_case {
	const char *in;
	enum base64_mode mode;
	const char *want;	/* decoded bytes, or NULL for an error */
};

/* RFC 4648 section 10. */
static const char *const vectors[][2] = {
	{ "", "" },		{ "f", "Zg==" },	{ "fo", "Zm8=" },
	{ "foo", "Zm9v" },	{ "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" },
	{ "foobar", "Zm9vYmFy" },
};

static void
test_vectors(void)
{
	char enc[16];
	unsigned char dec[16];

	test_begin("base64: RFC 4648 vectors, every mode");
	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		const char *raw = vectors[i][0], *b64 = vectors[i][1];
		size_t n = strlen(raw);

		test_assert(base64_encode((const unsigned char *)raw, n, enc, sizeof(enc)) ==
			    (long)strlen(b64));
		test_assert_strcmp(enc, b64);
		test_assert(base64_encoded_len(n) == strlen(b64));
		for (int m = BASE64_STRICT; m <= BASE64_LENIENT; m++) {
			long got = base64_decode(b64, strlen(b64), (enum base64_mode)m, dec,
						 sizeof(dec));

			test_assert(got == (long)n && memcmp(dec, raw, n) == 0);
		}
	}
	test_end();
}

static void
test_modes(void)
{
	static const struct b64_case cases[] = {
		/* strict: the alphabet, padding at the end, whole quanta */
		{ "Zm9v", BASE64_STRICT, "foo" },
		{ "Zg", BASE64_STRICT, NULL },
		{ "Zg=", BASE64_STRICT, NULL },
		{ "Zg===", BASE64_STRICT, NULL },
		{ "Zm9=v", BASE64_STRICT, NULL },
		{ "Zm 9v", BASE64_STRICT, NULL },
		{ "Zm9v\r\n", BASE64_STRICT, NULL },
		{ "Zm9v!", BASE64_STRICT, NULL },
		{ "Zh==", BASE64_STRICT, "f" },		/* unused bits tolerated */
		{ "Zm8==", BASE64_STRICT, NULL },
		/* folded: whitespace anywhere, padding optional but right */
		{ "Zm 9v\r\n\tYg ==", BASE64_FOLDED, "foob" },
		{ "Zg", BASE64_FOLDED, "f" },
		{ "Zg=", BASE64_FOLDED, NULL },
		{ "Zm8==", BASE64_FOLDED, NULL },
		{ "Zh==", BASE64_FOLDED, NULL },	/* unused bits must be zero */
		{ "Zm9v!", BASE64_FOLDED, NULL },
		{ "Zg==Zg==", BASE64_FOLDED, NULL },
		/* lenient: junk skipped, the first '=' ends it, never an error */
		{ "Zm!9v\r\nYg", BASE64_LENIENT, "foob" },
		{ "Zg==Zm9v", BASE64_LENIENT, "f" },
		{ "Z", BASE64_LENIENT, "" },
		{ "!!", BASE64_LENIENT, "" },
	};
	unsigned char out[16];

	test_begin("base64: what each mode accepts");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct b64_case *c = &cases[i];
		long n = base64_decode(c->in, strlen(c->in), c->mode, out, sizeof(out));

		if (c->want == NULL) {
			test_assert(n == -1);
			continue;
		}
		test_assert(n == (long)strlen(c->want) && memcmp(out, c->want, (size_t)n) == 0);
	}
	test_end();
}

static void
test_limits(void)
{
	unsigned char out[8];
	char enc[9];

	test_begin("base64: output limits");
	/* decoding past outlen fails in every mode */
	test_assert(base64_decode("Zm9vYmFy", 8, BASE64_STRICT, out, 5) == -1);
	test_assert(base64_decode("Zm9vYmFy", 8, BASE64_FOLDED, out, 5) == -1);
	test_assert(base64_decode("Zm9vYmFy", 8, BASE64_LENIENT, out, 5) == -1);
	test_assert(base64_decode("Zm9vYmFy", 8, BASE64_STRICT, out, 6) == 6);
	/* the encoder needs room for the NUL, and leaves out alone without */
	memcpy(enc, "xxxxxxxxx", 9);
	test_assert(base64_encode((const unsigned char *)"foobar", 6, enc, 8) == -1);
	test_assert(memcmp(enc, "xxxxxxxx", 8) == 0);
	test_assert(base64_encode((const unsigned char *)"foobar", 6, enc, 9) == 8);
	test_assert(base64_decoded_max(8) == 6 && base64_decoded_max(6) == 4);
	test_assert(base64_decoded_max(7) == 5 && base64_decoded_max(5) == 3);
	test_assert(base64_in_alphabet('+') && base64_in_alphabet('/') &&
		    !base64_in_alphabet('=') && !base64_in_alphabet(','));
	test_end();
}

int
main(void)
{
	static void (*const tests[])(void) = {
		test_vectors,
		test_modes,
		test_limits,
		NULL,
	};

	return test_run(tests);
}
