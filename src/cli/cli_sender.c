/* cli_sender.c - youju account senders, youju alias owner|disown: who
 * may send as what at submission, beyond an account's own address. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static void
cli_sender_print(void *ctx, const char *pattern)
{
	(void)ctx;
	printf("%s\n", pattern);
}

/* ADDRESS add|remove|list [PATTERN]: PATTERN is user@domain or @domain
 * (any domain, ours or not: the admin's choice). */
int
cli_account_senders(struct cli *c, int argc, char **argv)
{
	char account[STORE_ADDRESS_MAX + 1], pattern[STORE_ADDRESS_MAX + 1];
	const char *op = argv[1];
	struct yj_err err;
	int ret;

	if (cli_address_norm(argv[0], false, account, sizeof(account), NULL, &err) < 0)
		return cli_fail("%s", err.msg);
	if (strcmp(op, "list") == 0 && argc == 2) {
		ret = store_sender_list(c->st, account, cli_sender_print, NULL, &err);
		return ret > 0 ? CLI_EXIT_OK : cli_fail("%s", err.msg);
	}
	if ((strcmp(op, "add") != 0 && strcmp(op, "remove") != 0) || argc != 3)
		return cli_fail("usage: youju account senders ADDRESS add|remove|list [PATTERN]");
	if (cli_address_norm(argv[2], true, pattern, sizeof(pattern), NULL, &err) < 0)
		return cli_fail("%s", err.msg);
	ret = op[0] == 'a' ? store_sender_add(c->st, account, pattern, &err)
			   : store_sender_remove(c->st, account, pattern, &err);
	return ret > 0 ? CLI_EXIT_OK : cli_fail("%s", err.msg);
}

/* The alias and the account of "alias owner|disown ALIAS ACCOUNT". */
static int
cli_owner_args(char **argv, char *alias, char *account, struct yj_err *err)
{
	if (cli_address_norm(argv[0], false, alias, STORE_ADDRESS_MAX + 1, NULL, err) < 0 ||
	    cli_address_norm(argv[1], false, account, STORE_ADDRESS_MAX + 1, NULL, err) < 0)
		return -1;
	return 1;
}

int
cli_alias_owner(struct cli *c, int argc, char **argv)
{
	char alias[STORE_ADDRESS_MAX + 1], account[STORE_ADDRESS_MAX + 1];
	struct yj_err err;

	(void)argc;
	if (cli_owner_args(argv, alias, account, &err) < 0 ||
	    store_alias_owner_add(c->st, alias, account, &err) <= 0)
		return cli_fail("%s", err.msg);
	return CLI_EXIT_OK;
}

int
cli_alias_disown(struct cli *c, int argc, char **argv)
{
	char alias[STORE_ADDRESS_MAX + 1], account[STORE_ADDRESS_MAX + 1];
	struct yj_err err;

	(void)argc;
	if (cli_owner_args(argv, alias, account, &err) < 0 ||
	    store_alias_owner_remove(c->st, alias, account, &err) <= 0)
		return cli_fail("%s", err.msg);
	return CLI_EXIT_OK;
}
