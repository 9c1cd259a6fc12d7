/* cli_alias.c - youju alias add|list|del: addresses that forward to
 * other addresses, local or remote. "@domain" is a catch-all. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

/* Does address already have this target? */
struct cli_alias_find {
	const char *target;
	bool found;
};

static void
cli_alias_find_cb(void *ctx, const char *address, const char *target)
{
	struct cli_alias_find *f = ctx;

	if (strcmp(f->target, target) == 0)
		f->found = true;
}

static int
cli_alias_has_target(struct cli *c, const char *address, const char *target)
{
	struct cli_alias_find f = { target, false };

	if (store_alias_lookup(c->st, address, cli_alias_find_cb, &f) < 0)
		return -1;
	return f.found ? 1 : 0;
}

/* The address of an alias: ours, and maybe a catch-all. */
static int
cli_alias_address(struct cli *c, const char *in, char *out, size_t outlen,
		  struct yj_err *err)
{
	const char *domain;

	if (cli_address_norm(in, true, out, outlen, &domain, err) < 0)
		return -1;
	return cli_need_local_domain(c, domain, err);
}

int
cli_alias_add(struct cli *c, int argc, char **argv)
{
	char address[STORE_ADDRESS_MAX + 1], target[STORE_ADDRESS_MAX + 1];
	struct yj_err err;

	if (cli_alias_address(c, argv[0], address, sizeof(address), &err) < 0)
		return cli_fail("%s", err.msg);
	/* Every target is checked before the first is added, so a typo in
	 * the last one does not leave half an alias behind. */
	for (int i = 1; i < argc; i++) {
		if (cli_address_norm(argv[i], false, target, sizeof(target), NULL, &err) < 0)
			return cli_fail("%s", err.msg);
		if (strcmp(target, address) == 0)
			return cli_fail("alias %s cannot point to itself", address);
	}
	for (int i = 1; i < argc; i++) {
		int rc;

		if (cli_address_norm(argv[i], false, target, sizeof(target), NULL, &err) < 0)
			return cli_fail("%s", err.msg);
		rc = cli_alias_has_target(c, address, target);
		if (rc < 0)
			return cli_fail("cannot look up alias %s in the database", address);
		if (rc > 0)
			continue;
		if (store_alias_add(c->st, address, target, &err) < 0)
			return cli_fail("%s", err.msg);
		printf("added alias %s -> %s\n", address, target);
	}
	return CLI_EXIT_OK;
}

static void
cli_alias_print(void *ctx, const char *address, const char *target)
{
	printf("%s %s\n", address, target);
}

int
cli_alias_list(struct cli *c, int argc, char **argv)
{
	struct yj_err err;

	if (store_alias_list(c->st, cli_alias_print, NULL, &err) < 0)
		return cli_fail("%s", err.msg);
	return CLI_EXIT_OK;
}

int
cli_alias_del(struct cli *c, int argc, char **argv)
{
	char address[STORE_ADDRESS_MAX + 1], target[STORE_ADDRESS_MAX + 1];
	struct yj_err err;
	int rc;

	if (cli_address_norm(argv[0], true, address, sizeof(address), NULL, &err) < 0)
		return cli_fail("%s", err.msg);
	if (argc > 1 &&
	    cli_address_norm(argv[1], false, target, sizeof(target), NULL, &err) < 0)
		return cli_fail("%s", err.msg);
	rc = store_alias_del(c->st, address, argc > 1 ? target : NULL, &err);
	if (rc < 0)
		return cli_fail("%s", err.msg);
	if (rc == 0 && argc > 1)
		return cli_fail("alias %s has no target %s", address, target);
	if (rc == 0)
		return cli_fail("alias %s does not exist", address);
	if (argc > 1)
		printf("deleted alias %s -> %s\n", address, target);
	else
		printf("deleted alias %s\n", address);
	return CLI_EXIT_OK;
}
