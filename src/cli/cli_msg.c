/* cli_msg.c - youju msg list|cat: a look at the messages of a mailbox,
 * for admins and for the integration tests. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/util.h"
#include "cli/cli.h"

#define COPY_CHUNK 65536

static const struct {
	uint32_t bit;
	const char *name;
} msg_flag_names[] = {
	{ STORE_FLAG_SEEN, "\\Seen" },
	{ STORE_FLAG_ANSWERED, "\\Answered" },
	{ STORE_FLAG_FLAGGED, "\\Flagged" },
	{ STORE_FLAG_DELETED, "\\Deleted" },
	{ STORE_FLAG_DRAFT, "\\Draft" },
};

/* The account's mailbox, INBOX unless named. */
static int
cli_msg_mailbox(struct cli *c, const char *account, const char *name,
		struct store_mailbox *mb_r, struct yj_err *err)
{
	char address[STORE_ADDRESS_MAX + 1];
	struct store_account acct;
	int rc;

	if (cli_address_norm(account, false, address, sizeof(address), NULL, err) < 0 ||
	    cli_need_account(c, address, &acct, err) < 0)
		return -1;
	if (name == NULL)
		name = "INBOX";
	rc = store_mailbox_get(c->st, acct.id, name, mb_r);
	if (rc < 0)
		return yj_err_set(err, "cannot look up mailbox %s in the database", name);
	if (rc == 0)
		return yj_err_set(err, "account %s has no mailbox %s", address, name);
	return 1;
}

/* "UID SIZE DATE FLAGS", the date in UTC as 2026-11-22T15:00:00Z. */
static void
cli_msg_print(void *ctx, const struct store_msg *msg)
{
	time_t t = (time_t)msg->internal_date;
	char date[32];
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL || strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(date, sizeof(date), "-");
	printf("%" PRIu32 " %" PRIu64 " %s", msg->uid, msg->size, date);
	for (size_t i = 0; i < sizeof(msg_flag_names) / sizeof(msg_flag_names[0]); i++) {
		if ((msg->flags & msg_flag_names[i].bit) != 0)
			printf(" %s", msg_flag_names[i].name);
	}
	printf("\n");
}

int
cli_msg_list(struct cli *c, int argc, char **argv)
{
	struct store_mailbox mb;
	struct yj_err err;

	if (cli_msg_mailbox(c, argv[0], argc > 1 ? argv[1] : NULL, &mb, &err) < 0)
		return cli_fail("%s", err.msg);
	if (store_msg_list(c->st, mb.id, cli_msg_print, NULL, &err) < 0)
		return cli_fail("%s", err.msg);
	return CLI_EXIT_OK;
}

static int
cli_parse_uid(const char *s, uint32_t *uid_r)
{
	unsigned long long v;
	char *end;

	if (s[0] < '0' || s[0] > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v == 0 || v > UINT32_MAX)
		return -1;
	*uid_r = (uint32_t)v;
	return 1;
}

/* Copies the blob to stdout after the prefix: the bytes an IMAP client
 * would get for BODY[]. */
static int
cli_msg_write(int fd, const struct store_msg *msg, struct yj_err *err)
{
	char *chunk = malloc(COPY_CHUNK);
	/* A prefix_len past the buffer would be the store's bug; never read
	 * beyond it. */
	size_t plen = msg->prefix_len < sizeof(msg->prefix) ? msg->prefix_len : 0;
	int rc = 1;

	if (chunk == NULL)
		return yj_err_set(err, "out of memory");
	fflush(stdout);
	if (util_write_all(STDOUT_FILENO, msg->prefix, plen) < 0)
		rc = yj_err_errno(err, "write");
	while (rc > 0) {
		ssize_t n = read(fd, chunk, COPY_CHUNK);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			rc = yj_err_errno(err, "read blob %s", msg->blob_id);
		else if (n == 0)
			break;
		else if (util_write_all(STDOUT_FILENO, chunk, (size_t)n) < 0)
			rc = yj_err_errno(err, "write");
	}
	free(chunk);
	return rc;
}

int
cli_msg_cat(struct cli *c, int argc, char **argv)
{
	struct store_mailbox mb;
	struct store_msg msg;
	struct yj_err err;
	uint32_t uid;
	int fd, rc;

	if (cli_parse_uid(argv[1], &uid) < 0)
		return cli_fail("invalid UID '%s'", argv[1]);
	if (cli_msg_mailbox(c, argv[0], argc > 2 ? argv[2] : NULL, &mb, &err) < 0)
		return cli_fail("%s", err.msg);
	rc = store_msg_get(c->st, mb.id, uid, &msg);
	if (rc < 0)
		return cli_fail("cannot look up message %" PRIu32 " in the database", uid);
	if (rc == 0)
		return cli_fail("no message with UID %" PRIu32 " in %s", uid, mb.name);
	if (store_msg_open_blob(c->st, &msg, &fd, &err) < 0)
		return cli_fail("%s", err.msg);
	rc = cli_msg_write(fd, &msg, &err);
	close(fd);
	if (rc < 0)
		return cli_fail("%s", err.msg);
	return CLI_EXIT_OK;
}
