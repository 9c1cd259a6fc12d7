/* Recipient resolution against a real store in a temporary directory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/config.h"
#include "deliver/resolve.h"
#include "store/store.h"
#include "test.h"

static struct store *st;
static struct config cfg;
static struct resolve_result res;

static enum resolve_status
resolve(const char *local, const char *domain)
{
	if (resolve_rcpt(st, &cfg, local, domain, &res) != 1)
		return (enum resolve_status)-1;
	return res.status;
}

static bool
has_local(const char *address)
{
	for (size_t i = 0; i < res.n_local; i++) {
		if (strcmp(res.local[i].address, address) == 0)
			return true;
	}
	return false;
}

static void
setup(void)
{
	static char dir[] = "/tmp/youju-test-resolve-XXXXXX";
	struct yj_err err;

	if (mkdtemp(dir) == NULL || store_create(dir, &err) < 0 || store_open(dir, &st, &err) < 0) {
		fprintf(stderr, "setup: %s\n", err.msg);
		exit(1);
	}
	config_init(&cfg, dir);
	if (config_finish(&cfg, &err) < 0)
		exit(1);
	if (store_domain_add(st, "example.test", &err) < 0 ||
	    store_domain_add(st, "other.test", &err) < 0 ||
	    store_account_add(st, "alice@example.test", "x", &err) < 0 ||
	    store_account_add(st, "bob@example.test", "x", &err) < 0 ||
	    store_account_add(st, "carol@other.test", "x", &err) < 0 ||
	    store_alias_add(st, "sales@example.test", "alice@example.test", &err) < 0 ||
	    store_alias_add(st, "sales@example.test", "bob@example.test", &err) < 0 ||
	    store_alias_add(st, "team@example.test", "sales@example.test", &err) < 0 ||
	    store_alias_add(st, "team@example.test", "friend@remote.example", &err) < 0 ||
	    store_alias_add(st, "loop1@example.test", "loop2@example.test", &err) < 0 ||
	    store_alias_add(st, "loop2@example.test", "loop1@example.test", &err) < 0 ||
	    store_alias_add(st, "bob@example.test", "bob@example.test", &err) < 0 ||
	    store_alias_add(st, "bob@example.test", "carol@other.test", &err) < 0 ||
	    store_alias_add(st, "@other.test", "carol@other.test", &err) < 0) {
		fprintf(stderr, "setup: %s\n", err.msg);
		exit(1);
	}
}

static void
test_accounts(void)
{
	test_begin("resolve: accounts, case, plus-addressing");
	test_assert(resolve("alice", "example.test") == RESOLVE_OK && has_local("alice@example.test"));
	test_assert(resolve("ALICE", "Example.TEST") == RESOLVE_OK && has_local("alice@example.test"));
	test_assert(resolve("alice+news", "example.test") == RESOLVE_OK && res.n_local == 1);
	test_assert(resolve("nobody", "example.test") == RESOLVE_UNKNOWN);
	test_assert(resolve("nobody+x", "example.test") == RESOLVE_UNKNOWN);
	test_assert(resolve("+x", "example.test") == RESOLVE_UNKNOWN);
	test_assert(resolve("alice", "elsewhere.example") == RESOLVE_NOT_LOCAL);
	test_end();
}

static void
test_aliases(void)
{
	test_begin("resolve: aliases, nesting, remote targets, loops");
	/* sales -> alice, bob; bob -> bob, carol */
	test_assert(resolve("sales", "example.test") == RESOLVE_OK && res.n_local == 3);
	test_assert(has_local("alice@example.test") && has_local("bob@example.test") &&
		    has_local("carol@other.test"));
	test_assert(resolve("team", "example.test") == RESOLVE_OK && res.n_local == 3 &&
		    res.n_remote == 1 && strcmp(res.remote[0], "friend@remote.example") == 0);
	test_assert(resolve("sales+q4", "example.test") == RESOLVE_OK && res.n_local == 3);
	/* an alias that names its own account keeps a copy there */
	test_assert(resolve("bob", "example.test") == RESOLVE_OK && res.n_local == 2 &&
		    has_local("bob@example.test") && has_local("carol@other.test"));
	test_assert(resolve("loop1", "example.test") == RESOLVE_UNKNOWN);
	test_end();
}

static void
test_catchall(void)
{
	test_begin("resolve: catch-all");
	test_assert(resolve("anything", "other.test") == RESOLVE_OK && has_local("carol@other.test"));
	test_assert(resolve("carol", "other.test") == RESOLVE_OK && res.n_local == 1);
	test_end();
}

int
main(void)
{
	static void (*const tests[])(void) = { test_accounts, test_aliases, test_catchall, NULL };
	int ret;

	setup();
	ret = test_run(tests);
	store_close(&st);
	store_shutdown();
	config_free(&cfg);
	return ret;
}
