/* Password hashes (ours and migrated ones), SASL decoding and the
 * cache of verified logins. */
#include <stdio.h>
#include <string.h>

#include "auth/auth_cache.h"
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

static struct auth_cache cache;

static void
test_cache_match(void)
{
	struct auth_cache_login in = { 7, "alice@example.org", "$y$hash1", "secret" };
	struct auth_cache_login other;
	const time_t t0 = 1000000;

	test_begin("auth cache: only the same account, hash and password match");
	test_assert(auth_cache_init(&cache));
	test_assert(!auth_cache_check(&cache, &in, t0, 3600));
	auth_cache_add(&cache, &in, t0);
	test_assert(auth_cache_check(&cache, &in, t0 + 10, 3600));
	other = in;
	other.password = "secreT";
	test_assert(!auth_cache_check(&cache, &other, t0 + 10, 3600));
	other = in;
	other.hash = "$y$hash2";	/* the password was changed */
	test_assert(!auth_cache_check(&cache, &other, t0 + 10, 3600));
	other = in;
	other.account_id = 8;		/* removed and added again */
	test_assert(!auth_cache_check(&cache, &other, t0 + 10, 3600));
	other = in;
	other.address = "bob@example.org";
	test_assert(!auth_cache_check(&cache, &other, t0 + 10, 3600));
	/* Fields that run together must not make the same digest. */
	other = (struct auth_cache_login){ 7, "alice@example.org", "$y$hash1s", "ecret" };
	test_assert(!auth_cache_check(&cache, &other, t0 + 10, 3600));
	test_end();
}

static void
test_cache_ttl(void)
{
	struct auth_cache_login in = { 1, "a@example.org", "$y$h", "pw" };
	const time_t t0 = 2000000;

	test_begin("auth cache: entries end after ttl, ttl 0 is off");
	test_assert(auth_cache_init(&cache));
	auth_cache_add(&cache, &in, t0);
	test_assert(!auth_cache_check(&cache, &in, t0 + 1, 0));
	test_assert(auth_cache_check(&cache, &in, t0 + 60, 60));
	test_assert(!auth_cache_check(&cache, &in, t0 + 61, 60));
	/* Once found stale, it is gone, even for a longer ttl. */
	test_assert(!auth_cache_check(&cache, &in, t0 + 61, 3600));
	auth_cache_add(&cache, &in, t0);
	test_assert(!auth_cache_check(&cache, &in, t0 - 5, 3600));	/* clock set back */
	/* A new key forgets everything. */
	auth_cache_add(&cache, &in, t0);
	test_assert(auth_cache_init(&cache));
	test_assert(!auth_cache_check(&cache, &in, t0, 3600));
	test_end();
}

static void
test_cache_bounded(void)
{
	enum { N = AUTH_CACHE_SETS * AUTH_CACHE_WAYS * 4 };
	char addr[64];
	struct auth_cache_login in = { 0, addr, "$y$h", "pw" };
	const time_t t0 = 3000000;
	int kept = 0;

	test_begin("auth cache: a fixed size, the least recently used go first");
	test_assert(auth_cache_init(&cache));
	snprintf(addr, sizeof(addr), "keep@example.org");
	auth_cache_add(&cache, &in, t0);
	for (int i = 1; i < N; i++) {
		in.account_id = i;
		snprintf(addr, sizeof(addr), "u%d@example.org", i);
		auth_cache_add(&cache, &in, t0);
		/* One login keeps being used: it stays. */
		in.account_id = 0;
		snprintf(addr, sizeof(addr), "keep@example.org");
		test_assert(auth_cache_check(&cache, &in, t0, 3600));
	}
	for (int i = 1; i < N; i++) {
		in.account_id = i;
		snprintf(addr, sizeof(addr), "u%d@example.org", i);
		kept += auth_cache_check(&cache, &in, t0, 3600);
	}
	test_assert(kept <= AUTH_CACHE_SETS * AUTH_CACHE_WAYS);
	test_assert(kept > AUTH_CACHE_SETS * AUTH_CACHE_WAYS / 2);
	test_end();
}

int
main(void)
{
	static void (*const tests[])(void) = {
		test_password_roundtrip, test_password_migrated, test_base64, test_plain_split,
		test_cache_match, test_cache_ttl, test_cache_bounded, NULL,
	};
	return test_run(tests);
}
