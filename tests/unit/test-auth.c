/* Password hashes (ours and migrated ones) and SASL decoding. */
#include <string.h>

#include "auth/password.h"
#include "auth/sasl.h"
#include "test.h"

static void
test_password_roundtrip(void)
{
	char hash[256];

	test_begin("password: yescrypt round trip");
	test_assert(password_hash("correct horse", hash, sizeof(hash), NULL) == 1);
	test_assert(strncmp(hash, "$y$", 3) == 0);
	test_assert(password_verify("correct horse", hash));
	test_assert(!password_verify("correct hors", hash));
	test_assert(!password_verify("", hash));
	test_end();
}

static void
test_password_migrated(void)
{
	static const struct { const char *hash; bool ok; } cases[] = {
		{ "$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1", true },
		{ "{SHA512-CRYPT}$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1", true },
		{ "{CRYPT}$2b$05$abcdefghijklmnopqrstuuOQiyCxlgf/oeuTqixKmWdcYUh4Hjl0a", true },
		{ "{BLF-CRYPT}$2b$05$abcdefghijklmnopqrstuuOQiyCxlgf/oeuTqixKmWdcYUh4Hjl0a", true },
		{ "{SHA256-CRYPT}$5$saltsalt$0IyaXrmV7.sGNS6tirgqHLqX/G.FBvgkYA.lpPdS5sA", true },
		{ "{MD5-CRYPT}$1$saltsalt$9xy1btjgzLYfb7hivXtC//", true },
		{ "{PLAIN}secret", true },
		{ "{PLAIN}secreT", false },
		{ "{SHA256}K7gNU3sdo+OL0wNhqoVWhr3g6s1xYv72ol/pe/Unols=", true },
		{ "{SSHA512}iWwx8naQWtJKIoYOgnIUnOjDVRc/KB/avnmg7rvibFhiLlylVmd8s/TomzyGqQwBOpJzU5z2YBupYIJWW8egvDEyMzQ1Njc4", true },
		{ "{SSHA512}iWwx8naQ", false },
		{ "{UNKNOWN}secret", false },
		{ "{PLAIN", false },
		{ "", false },
		{ "*", false },
		{ "!", false },
	};

	test_begin("password: migrated hash schemes");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (password_verify("secret", cases[i].hash) != cases[i].ok)
			test_fail(__FILE__, __LINE__, cases[i].hash);
	}
	test_end();
}

static void
test_base64(void)
{
	unsigned char out[64];
	char enc[64];

	test_begin("sasl: base64");
	test_assert(sasl_base64_decode("AGFsaWNlAHNlY3JldA==", 20, out, sizeof(out)) == 13);
	test_assert(memcmp(out, "\0alice\0secret", 13) == 0);
	test_assert(sasl_base64_decode("=", 1, out, sizeof(out)) == 0);
	test_assert(sasl_base64_decode("", 0, out, sizeof(out)) == 0);
	test_assert(sasl_base64_decode("abc", 3, out, sizeof(out)) == -1);
	test_assert(sasl_base64_decode("ab=c", 4, out, sizeof(out)) == -1);
	test_assert(sasl_base64_decode("a b=", 4, out, sizeof(out)) == -1);
	test_assert(sasl_base64_decode("YWJj", 4, out, 3) == -1);	/* no room for NUL */
	test_assert(sasl_base64_decode("YWJj", 4, out, 4) == 3);
	test_assert(sasl_base64_encode((const unsigned char *)"abcd", 4, enc, sizeof(enc)) == 8);
	test_assert(strcmp(enc, "YWJjZA==") == 0);
	test_assert(sasl_base64_encode((const unsigned char *)"abcd", 4, enc, 8) == -1);
	test_end();
}

static void
test_plain_split(void)
{
	char z[SASL_FIELD_MAX + 1], c[SASL_FIELD_MAX + 1], p[SASL_FIELD_MAX + 1];

	test_begin("sasl: PLAIN message");
	test_assert(sasl_plain_split((const unsigned char *)"\0alice\0secret", 13, z, c, p) == 1);
	test_assert(z[0] == '\0' && strcmp(c, "alice") == 0 && strcmp(p, "secret") == 0);
	test_assert(sasl_plain_split((const unsigned char *)"admin\0alice\0pw", 14, z, c, p) == 1);
	test_assert(strcmp(z, "admin") == 0);
	test_assert(sasl_plain_split((const unsigned char *)"\0\0secret", 8, z, c, p) == -1);
	test_assert(sasl_plain_split((const unsigned char *)"\0alice", 6, z, c, p) == -1);
	test_assert(sasl_plain_split((const unsigned char *)"\0alice\0pw\0x", 11, z, c, p) == -1);
	test_assert(sasl_plain_split((const unsigned char *)"", 0, z, c, p) == -1);
	test_end();
}

int
main(void)
{
	static void (*const tests[])(void) = {
		test_password_roundtrip, test_password_migrated, test_base64, test_plain_split, NULL,
	};
	return test_run(tests);
}
