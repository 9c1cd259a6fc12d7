/* cli_store.c - youju store copy: moving a store between drivers.
 *
 * --to DSN copies this data dir's store into an empty PostgreSQL
 * database (a site that outgrows one machine); --from DSN copies such a
 * database back into this data dir's store, which must be empty. youjud
 * must not run meanwhile: the copy is one transaction of the target, but
 * the source could change under it.
 */
#include <stdio.h>

#include "cli/cli.h"

int
cli_store_copy(struct cli *c, int argc, char **argv)
{
	const char *dsn = c->opts.to != NULL ? c->opts.to : c->opts.from;
	struct store *other = NULL;
	struct yj_err err;
	int rc;

	if ((c->opts.to == NULL) == (c->opts.from == NULL))
		return cli_fail("usage: youju store copy --to DSN | --from DSN");
	if (dsn[0] == '\0')
		return cli_fail("store copy: empty DSN");
	if (store_open_driver(c->data_dir, "postgresql", dsn, &other, &err) < 0)
		return cli_fail("%s", err.msg);
	rc = c->opts.to != NULL ? store_copy(c->st, other, &err) : store_copy(other, c->st, &err);
	store_close(&other);
	if (rc < 0)
		return cli_fail("%s", err.msg);
	if (c->opts.to != NULL)
		printf("copied the store to PostgreSQL; set store_driver = postgresql and "
		       "store_dsn to use it\n");
	else
		printf("copied the store from PostgreSQL into this data dir\n");
	return CLI_EXIT_OK;
}
