/* cli_domain.c - youju domain add|list|del: the domains youju receives
 * mail for. */
#include <stdio.h>

#include "cli/cli.h"

int
cli_domain_add(struct cli *c, int argc, char **argv)
{
	char name[CLI_DOMAIN_MAX + 1];
	struct yj_err err;
	int rc;

	if (cli_domain_norm(argv[0], name, sizeof(name), &err) < 0)
		return cli_fail("%s", err.msg);
	rc = store_domain_exists(c->st, name);
	if (rc < 0)
		return cli_fail("cannot look up domain %s in the database", name);
	if (rc > 0)
		return cli_fail("domain %s already exists", name);
	if (store_domain_add(c->st, name, &err) < 0)
		return cli_fail("%s", err.msg);
	printf("added domain %s\n", name);
	return CLI_EXIT_OK;
}

static void
cli_domain_print(void *ctx, const char *name)
{
	printf("%s\n", name);
}

int
cli_domain_list(struct cli *c, int argc, char **argv)
{
	struct yj_err err;

	if (store_domain_list(c->st, cli_domain_print, NULL, &err) < 0)
		return cli_fail("%s", err.msg);
	return CLI_EXIT_OK;
}

int
cli_domain_del(struct cli *c, int argc, char **argv)
{
	char name[CLI_DOMAIN_MAX + 1];
	struct yj_err err;

	if (cli_domain_norm(argv[0], name, sizeof(name), &err) < 0)
		return cli_fail("%s", err.msg);
	if (cli_need_local_domain(c, name, &err) < 0)
		return cli_fail("%s", err.msg);
	if (store_domain_del(c->st, name, &err) < 0)
		return cli_fail("%s", err.msg);
	printf("deleted domain %s\n", name);
	return CLI_EXIT_OK;
}
