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

/* all@example.test: 70 accounts; far@example.test: 70 remote targets. */
static int
setup_big_alias(struct yj_err *err)
{
	char address[64];

	for (int i = 0; i < 70; i++) {
		snprintf(address, sizeof(address), "u%d@example.test", i);
		if (store_account_add(st, address, "x", err) < 0 ||
		    store_alias_add(st, "all@example.test", address, err) < 0)
			return -1;
		snprintf(address, sizeof(address), "r%d@remote.example", i);
		if (store_alias_add(st, "far@example.test", address, err) < 0)
			return -1;
	}
	return 1;
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
	    store_alias_add(st, "@other.test", "carol@other.test", &err) < 0 ||
	    store_account_add(st, "dave@example.test", "x", &err) < 0 ||
	    store_account_add(st, "dave+x@example.test", "x", &err) < 0 ||
	    store_account_add(st, "mary@example.test", "x", &err) < 0 ||
	    store_account_add(st, "mary-ann@example.test", "x", &err) < 0 ||
	    store_alias_add(st, "sales+vip@example.test", "dave@example.test", &err) < 0 ||
	    store_alias_add(st, "n1@example.test", "n2@example.test", &err) < 0 ||
	    store_alias_add(st, "n2@example.test", "n3@example.test", &err) < 0 ||
	    store_alias_add(st, "n3@example.test", "alice@example.test", &err) < 0 ||
	    setup_big_alias(&err) < 0) {
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

static void
test_full_address_first(void)
{
	struct yj_err err;

	test_begin("resolve: the full address before its extension");
	test_assert(resolve("dave+x", "example.test") == RESOLVE_OK && res.n_local == 1 &&
		    has_local("dave+x@example.test"));
	test_assert(resolve("DAVE+X", "example.test") == RESOLVE_OK && res.n_local == 1 &&
		    has_local("dave+x@example.test"));
	test_assert(resolve("dave+y", "example.test") == RESOLVE_OK && res.n_local == 1 &&
		    has_local("dave@example.test"));
	test_assert(resolve("dave", "example.test") == RESOLVE_OK && res.n_local == 1 &&
		    has_local("dave@example.test"));
	/* an alias with an extension in its name wins over the plain one */
	test_assert(resolve("sales+vip", "example.test") == RESOLVE_OK && res.n_local == 1 &&
		    has_local("dave@example.test"));
	test_assert(config_set(&cfg, "recipient_delimiter", "-", &err) == 1);
	test_assert(resolve("mary-ann", "example.test") == RESOLVE_OK && res.n_local == 1 &&
		    has_local("mary-ann@example.test"));
	test_assert(resolve("mary-bob", "example.test") == RESOLVE_OK && res.n_local == 1 &&
		    has_local("mary@example.test"));
	test_assert(config_set(&cfg, "recipient_delimiter", "+", &err) == 1);
	test_end();
}

static void
test_big_alias(void)
{
	test_begin("resolve: every target of a big alias");
	test_assert(resolve("all", "example.test") == RESOLVE_OK && res.n_local == 70 &&
		    has_local("u0@example.test") && has_local("u69@example.test"));
	test_assert(resolve("far", "example.test") == RESOLVE_OK && res.n_remote == 70 &&
		    res.n_local == 0);
	test_end();
}

static void
test_limits(void)
{
	test_begin("resolve: expansion and nesting limits");
	cfg.virtual_alias_expansion_limit = 70;
	test_assert(resolve("all", "example.test") == RESOLVE_OK && res.n_local == 70);
	cfg.virtual_alias_expansion_limit = 69;
	test_assert(resolve("all", "example.test") == RESOLVE_LIMIT);
	test_assert(resolve("far", "example.test") == RESOLVE_LIMIT);
	test_assert(resolve("alice", "example.test") == RESOLVE_OK);
	cfg.virtual_alias_expansion_limit = 1000;
	test_assert(resolve("n1", "example.test") == RESOLVE_OK && has_local("alice@example.test"));
	cfg.virtual_alias_recursion_limit = 3;
	test_assert(resolve("n1", "example.test") == RESOLVE_OK && has_local("alice@example.test"));
	cfg.virtual_alias_recursion_limit = 2;
	test_assert(resolve("n1", "example.test") == RESOLVE_LIMIT);
	test_assert(resolve("n2", "example.test") == RESOLVE_OK);
	cfg.virtual_alias_recursion_limit = 20;
	test_end();
}

int
main(void)
{
	static void (*const tests[])(void) = { test_accounts, test_aliases, test_catchall,
					       test_full_address_first, test_big_alias,
					       test_limits, NULL };
	int ret;

	setup();
	ret = test_run(tests);
	resolve_result_free(&res);
	store_close(&st);
	store_shutdown();
	config_free(&cfg);
	return ret;
}
