/* The SASL server's state machine, with scripted exchanges, and the
 * per-address failure table. */
#include <string.h>
#include <stdio.h>

#include "auth/penalty.h"
#include "auth/sasl_server.h"
#include "test.h"

/* base64 of "\0alice@example.test\0secret" and friends. */
#define PLAIN_OK "AGFsaWNlQGV4YW1wbGUudGVzdABzZWNyZXQ="
#define PLAIN_AUTHZ_SAME "YWxpY2VAZXhhbXBsZS50ZXN0AGFsaWNlQGV4YW1wbGUudGVzdABzZWNyZXQ="
#define PLAIN_AUTHZ_OTHER "Ym9iQGV4YW1wbGUudGVzdABhbGljZUBleGFtcGxlLnRlc3QAc2VjcmV0"
#define B64_ALICE "YWxpY2VAZXhhbXBsZS50ZXN0"	/* alice@example.test */
#define B64_SECRET "c2VjcmV0"			/* secret */

/* A scripted client: the challenges it expects, the lines it answers. */
struct script {
	const char *const *expect;	/* challenges, NULL-terminated */
	const char *const *answer;	/* one per challenge; NULL: hang up */
	size_t n;
	int bad;			/* a challenge differed from expect */
};

static int
script_send(void *arg, const char *b64)
{
	struct script *sc = arg;

	if (sc->expect[sc->n] == NULL || strcmp(sc->expect[sc->n], b64) != 0)
		sc->bad++;
	return 1;
}

static int
script_read(void *arg, char *buf, size_t size)
{
	struct script *sc = arg;
	const char *a = sc->answer[sc->n++];

	if (a == NULL)
		return 0;
	if (strlen(a) >= size)
		return -1;
	strcpy(buf, a);
	return 1;
}

/* Runs one exchange against a script; returns the status. */
static enum sasl_status
run(enum sasl_mech mech, const char *initial, const char *const *expect,
    const char *const *answer, struct sasl_server *s, struct script *sc)
{
	struct sasl_io io = { sc, script_send, script_read };

	*sc = (struct script){ expect, answer, 0, 0 };
	return sasl_exchange(s, mech, initial, &io);
}

static void
test_mech_lookup(void)
{
	enum sasl_mech m;

	test_begin("sasl: mechanism names");
	test_assert(sasl_mech_lookup("PLAIN", &m) == 1 && m == SASL_MECH_PLAIN);
	test_assert(sasl_mech_lookup("LOGIN", &m) == 1 && m == SASL_MECH_LOGIN);
	test_assert(sasl_mech_lookup("CRAM-MD5", &m) == 0);
	test_assert(sasl_mech_lookup("", &m) == 0);
	test_end();
}

static void
test_plain(void)
{
	static const char *const none[] = { NULL };
	static const char *const empty[] = { "", NULL };
	static const char *const ok[] = { PLAIN_OK };
	static const char *const cancel[] = { "*" };
	static const char *const bad64[] = { "!!!!" };
	static const char *const gone[] = { NULL };
	struct sasl_server s;
	struct script sc;

	test_begin("sasl: PLAIN with and without an initial response");
	test_assert(run(SASL_MECH_PLAIN, PLAIN_OK, none, none, &s, &sc) == SASL_DONE);
	test_assert(strcmp(s.authcid, "alice@example.test") == 0);
	test_assert(strcmp(s.passwd, "secret") == 0 && sc.n == 0);
	sasl_server_clear(&s);
	test_assert(s.passwd[0] == '\0');
	test_assert(run(SASL_MECH_PLAIN, NULL, empty, ok, &s, &sc) == SASL_DONE);
	test_assert(sc.bad == 0 && sc.n == 1 && strcmp(s.passwd, "secret") == 0);
	test_assert(run(SASL_MECH_PLAIN, PLAIN_AUTHZ_SAME, none, none, &s, &sc) == SASL_DONE);
	test_end();

	test_begin("sasl: PLAIN refusals");
	/* "=" is an empty initial response: no credentials at all. */
	test_assert(run(SASL_MECH_PLAIN, "=", none, none, &s, &sc) == SASL_BAD_CREDS);
	test_assert(run(SASL_MECH_PLAIN, PLAIN_AUTHZ_OTHER, none, none, &s, &sc) ==
		    SASL_BAD_CREDS);
	test_assert(s.passwd[0] == '\0');
	test_assert(run(SASL_MECH_PLAIN, "====", none, none, &s, &sc) == SASL_MALFORMED);
	test_assert(run(SASL_MECH_PLAIN, NULL, empty, cancel, &s, &sc) == SASL_CANCELLED);
	test_assert(run(SASL_MECH_PLAIN, NULL, empty, bad64, &s, &sc) == SASL_MALFORMED);
	test_assert(run(SASL_MECH_PLAIN, NULL, empty, gone, &s, &sc) == SASL_GONE);
	test_end();
}

static void
test_login(void)
{
	static const char *const both[] = { "VXNlcm5hbWU6", "UGFzc3dvcmQ6", NULL };
	static const char *const pass_only[] = { "UGFzc3dvcmQ6", NULL };
	static const char *const ok[] = { B64_ALICE, B64_SECRET };
	static const char *const secret[] = { B64_SECRET };
	static const char *const cancel_user[] = { "*" };
	static const char *const cancel_pass[] = { B64_ALICE, "*" };
	static const char *const empty_pass[] = { B64_ALICE, "" };
	static const char *const none[] = { NULL };
	struct sasl_server s;
	struct script sc;

	test_begin("sasl: LOGIN asks Username: then Password: exactly");
	test_assert(run(SASL_MECH_LOGIN, NULL, both, ok, &s, &sc) == SASL_DONE);
	test_assert(sc.bad == 0 && sc.n == 2);
	test_assert(strcmp(s.authcid, "alice@example.test") == 0);
	test_assert(strcmp(s.passwd, "secret") == 0);
	/* An initial response is the user name. */
	test_assert(run(SASL_MECH_LOGIN, B64_ALICE, pass_only, secret, &s, &sc) == SASL_DONE);
	test_assert(sc.bad == 0 && sc.n == 1 && strcmp(s.passwd, "secret") == 0);
	test_end();

	test_begin("sasl: LOGIN refusals");
	test_assert(run(SASL_MECH_LOGIN, NULL, both, cancel_user, &s, &sc) == SASL_CANCELLED);
	test_assert(run(SASL_MECH_LOGIN, NULL, both, cancel_pass, &s, &sc) == SASL_CANCELLED);
	test_assert(run(SASL_MECH_LOGIN, NULL, both, empty_pass, &s, &sc) == SASL_BAD_CREDS);
	test_assert(strcmp(s.authcid, "alice@example.test") == 0);
	test_assert(run(SASL_MECH_LOGIN, "=", none, none, &s, &sc) == SASL_BAD_CREDS);
	/* "AA==" decodes to a NUL byte: no user name. */
	test_assert(run(SASL_MECH_LOGIN, "AA==", none, none, &s, &sc) == SASL_BAD_CREDS);
	test_end();
}

static void
test_state_machine(void)
{
	struct sasl_server s;
	const char *ch = NULL;

	test_begin("sasl: stepping by hand");
	test_assert(sasl_server_start(&s, SASL_MECH_LOGIN, NULL, &ch) == SASL_CONTINUE);
	test_assert(strcmp(ch, "VXNlcm5hbWU6") == 0);
	test_assert(sasl_server_step(&s, B64_ALICE, &ch) == SASL_CONTINUE);
	test_assert(strcmp(ch, "UGFzc3dvcmQ6") == 0);
	test_assert(sasl_server_step(&s, B64_SECRET, &ch) == SASL_DONE);
	test_assert(sasl_server_start(&s, SASL_MECH_PLAIN, NULL, &ch) == SASL_CONTINUE);
	test_assert(strcmp(ch, "") == 0);
	test_assert(sasl_server_step(&s, "a b", &ch) == SASL_MALFORMED);
	test_end();
}

static void
test_penalty(void)
{
	static struct penalty_table t;

	test_begin("penalty: per address, IPv6 by /64, expiry, clear");
	penalty_init(&t);
	test_assert(penalty_get(&t, "192.0.2.1", 1000) == 0);
	test_assert(penalty_add(&t, "192.0.2.1", 1000) == 1);
	test_assert(penalty_add(&t, "192.0.2.1", 1001) == 2);
	test_assert(penalty_get(&t, "192.0.2.1", 1002) == 2);
	test_assert(penalty_get(&t, "::ffff:192.0.2.1", 1002) == 2);
	test_assert(penalty_get(&t, "192.0.2.2", 1002) == 0);
	test_assert(penalty_add(&t, "2001:db8:1:2::1", 1000) == 1);
	test_assert(penalty_add(&t, "2001:db8:1:2:ffff::9", 1000) == 2);
	test_assert(penalty_get(&t, "2001:db8:1:3::1", 1000) == 0);
	test_assert(penalty_get(&t, "192.0.2.1", 1001 + PENALTY_EXPIRE) == 0);
	test_assert(penalty_add(&t, "192.0.2.1", 1001 + PENALTY_EXPIRE) == 1);
	penalty_clear(&t, "192.0.2.1");
	test_assert(penalty_get(&t, "192.0.2.1", 1002 + PENALTY_EXPIRE) == 0);
	test_assert(penalty_add(&t, "not an address", 1000) == 0);
	test_end();

	test_begin("penalty: a full table keeps the newest");
	penalty_init(&t);
	for (unsigned i = 0; i < PENALTY_SLOTS + 10; i++) {
		char ip[32];

		snprintf(ip, sizeof(ip), "10.%u.%u.%u", i >> 16 & 255, i >> 8 & 255, i & 255);
		(void)penalty_add(&t, ip, 1000 + (time_t)i);
	}
	test_assert(penalty_get(&t, "10.0.0.0", 2000) == 0);
	test_assert(penalty_get(&t, "10.0.16.9", 1000 + PENALTY_SLOTS + 9) == 1);
	test_end();

	test_begin("penalty: the delay doubles up to its ceiling");
	test_assert(penalty_delay_ms(0, 2000, 15000) == 0);
	test_assert(penalty_delay_ms(1, 2000, 15000) == 2000);
	test_assert(penalty_delay_ms(2, 2000, 15000) == 4000);
	test_assert(penalty_delay_ms(3, 2000, 15000) == 8000);
	test_assert(penalty_delay_ms(4, 2000, 15000) == 15000);
	test_assert(penalty_delay_ms(4000000, 2000, 15000) == 15000);
	test_assert(penalty_delay_ms(3, 0, 15000) == 0);
	test_assert(penalty_delay_ms(3, 2000, 0) == 0);
	test_end();
}

/* Login names count apart from addresses, in any case, until cleared. */
static void
test_penalty_names(void)
{
	static struct penalty_table t;

	test_begin("penalty: per login name");
	penalty_init(&t);
	test_assert(penalty_add_name(&t, "alice@example.test", 1000) == 1);
	test_assert(penalty_add_name(&t, "ALICE@Example.TEST", 1001) == 2);
	test_assert(penalty_add_name(&t, "bob@example.test", 1001) == 1);
	test_assert(penalty_add(&t, "192.0.2.1", 1001) == 1);
	test_assert(penalty_add_name(&t, "alice@example.test", 1002 + PENALTY_EXPIRE) == 1);
	penalty_clear_name(&t, "alice@example.test");
	test_assert(penalty_add_name(&t, "alice@example.test", 1003 + PENALTY_EXPIRE) == 1);
	test_assert(penalty_get(&t, "192.0.2.1", 1002) == 1);
	test_end();
}

int
main(void)
{
	static void (*const tests[])(void) = {
		test_mech_lookup, test_plain,	     test_login, test_state_machine,
		test_penalty,	  test_penalty_names, NULL,
	};
	return test_run(tests);
}
