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
#include "deliver/deliver_index.h"

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

/* ---- youju store reindex ----
 * Messages stored before summaries and search text were made at
 * delivery (or while imap_fts was off) get them here; SEARCH scans them
 * until then. Safe while youjud runs: each blob's rows are one short
 * transaction, and rows a blob has already stay. */

#define REINDEX_BATCH 64

struct reindex_run {
	struct store *st;
	bool text;
	char last[STORE_BLOB_ID_MAX];
	size_t done, failed;
};

static void
reindex_one(void *ctx, const char *blob_id, uint64_t size)
{
	struct reindex_run *run = ctx;
	struct store_index ix;
	struct yj_err err;
	struct buf data;
	int ret = store_blob_load(run->st, blob_id, size, STORE_TEXT_READ_MAX, &data, &err);

	snprintf(run->last, sizeof(run->last), "%s", blob_id);
	if (ret <= 0) {
		if (ret < 0)
			fprintf(stderr, "youju: blob %s: %s\n", blob_id, err.msg);
		run->failed++;
		return;
	}
	deliver_index_make(data.data, data.len, run->text, &ix);
	buf_free(&data);
	if (store_index_put(run->st, blob_id, &ix, &err) < 0) {
		fprintf(stderr, "youju: blob %s: %s\n", blob_id, err.msg);
		run->failed++;
	} else {
		run->done++;
	}
	store_index_free(&ix);
}

int
cli_store_reindex(struct cli *c, int argc, char **argv)
{
	struct reindex_run run = { .st = c->st, .text = c->cfg.imap_fts };
	struct yj_err err;
	int n;

	(void)argc;
	(void)argv;
	while ((n = store_unindexed(c->st, run.last, REINDEX_BATCH, reindex_one, &run, &err)) > 0)
		;
	if (n < 0)
		return cli_fail("%s", err.msg);
	printf("indexed %zu messages", run.done);
	if (run.failed > 0)
		printf(", %zu not (too large or unreadable: searched as before)", run.failed);
	printf("\n");
	return CLI_EXIT_OK;
}
