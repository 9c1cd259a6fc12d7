/* fuzz-smtp-cmd - a command line through smtp_cmd_parse, then its
 * argument through the parser for its verb. Checks that every error is
 * a complete SMTP reply and that results obey the header's promises. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* "5yz " at least: an error must be a whole permanent-failure reply. */
static void
fuzz_check_reply(const char *error)
{
	if (error == NULL || strlen(error) < 5 || error[0] != '5' ||
	    error[1] < '0' || error[1] > '9' || error[2] < '0' || error[2] > '9' ||
	    error[3] != ' ')
		abort();
}

static void
fuzz_check_path(const struct smtp_path *path)
{
	char out[1024];

	if (strlen(path->local) > SMTP_LOCAL_MAX || strlen(path->domain) > SMTP_DOMAIN_MAX)
		abort();
	if (smtp_path_format(path, out, sizeof(out)) < 0)
		abort();
}

static void
fuzz_mail(const char *arg)
{
	struct smtp_mail_args m;
	const char *error = NULL;

	if (smtp_mail_parse(arg, &m, &error) < 0) {
		fuzz_check_reply(error);
		return;
	}
	if ((m.path.utf8 && !m.smtputf8) || m.path.postmaster || m.size < -1)
		abort();
	fuzz_check_path(&m.path);
}

static void
fuzz_rcpt(const char *arg)
{
	struct smtp_rcpt_args strict, loose;
	const char *error = NULL;
	int ret_strict = smtp_rcpt_parse(arg, false, &strict, &error);

	if (ret_strict < 0)
		fuzz_check_reply(error);
	if (smtp_rcpt_parse(arg, true, &loose, &error) < 0) {
		fuzz_check_reply(error);
		if (ret_strict == 1)	/* allowing UTF-8 never refuses more */
			abort();
		return;
	}
	if (loose.path.null_path || (ret_strict == 1 && strict.path.utf8))
		abort();
	if (ret_strict == 1 && strcmp(strict.path.local, loose.path.local) != 0)
		abort();
	fuzz_check_path(&loose.path);
}

static void
fuzz_bdat(const char *arg)
{
	unsigned long long size;
	bool last;
	const char *error = NULL;

	if (smtp_bdat_parse(arg, &size, &last, &error) < 0)
		fuzz_check_reply(error);
}

static void
fuzz_helo(const char *arg)
{
	const char *error = NULL;

	if (smtp_helo_check(arg, &error) < 0)
		fuzz_check_reply(error);
	else if (arg[0] == '\0' || strchr(arg, ' ') != NULL)
		abort();
}

static void
fuzz_cmd_args(const struct smtp_cmd *cmd)
{
	switch (cmd->verb) {
	case SMTP_CMD_HELO:
	case SMTP_CMD_EHLO:
		fuzz_helo(cmd->arg);
		break;
	case SMTP_CMD_MAIL:
		fuzz_mail(cmd->arg);
		break;
	case SMTP_CMD_RCPT:
		fuzz_rcpt(cmd->arg);
		break;
	case SMTP_CMD_BDAT:
		fuzz_bdat(cmd->arg);
		break;
	default:
		break;
	}
}

/* Parses a private copy of exactly len bytes, so that a read past the
 * end is caught by the address sanitizer. Returns the parse result. */
static int
fuzz_cmd_line(const uint8_t *data, size_t len, const char *suffix)
{
	size_t extra = strlen(suffix);
	char *line = malloc(len + extra);
	struct smtp_cmd cmd;
	const char *error = NULL;
	int ret;

	if (line == NULL)
		return -1;
	memcpy(line, data, len);
	memcpy(line + len, suffix, extra);
	ret = smtp_cmd_parse(line, len + extra, &cmd, &error);
	if (ret < 0)
		fuzz_check_reply(error);
	else
		fuzz_cmd_args(&cmd);
	free(line);
	return ret;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* As sent, then (if it was not a line) with the CRLF it lacked. */
	if (fuzz_cmd_line(data, size, "") < 0)
		fuzz_cmd_line(data, size, "\r\n");
	return 0;
}
