/* youju - the admin command: command table, argument parsing, dispatch.
 *
 * The command line is "youju [-d DIR] COMMAND [SUBCOMMAND] ARGS...".
 * Options may come before the command or among its arguments. Everything
 * a command accepts is declared in its table row, so usage errors and the
 * help text come from one place.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "cli/cli.h"
#include "cli/cli_sendmail.h"

static cli_handler cli_help_run, cli_version_run;

#define PASSWORD_SYNOPSIS "[--password-stdin | --generate-password | --password-hash HASH]"

static const struct cli_cmd cli_cmds[] = {
	{ "init", NULL, "--data-dir DIR --domain DOMAIN --hostname HOST [--dev]",
	  "create a data dir: config, database, first domain, TLS certificate",
	  0, 0, CLI_OPT_DATA_DIR | CLI_OPT_DOMAIN | CLI_OPT_HOSTNAME | CLI_OPT_DEV, 0,
	  cli_init_run },
	{ "domain", "add", "NAME", "add a domain to receive mail for",
	  1, 1, 0, CLI_NEED_DIR | CLI_NEED_CONFIG | CLI_NEED_STORE, cli_domain_add },
	{ "domain", "list", "", "list the domains",
	  0, 0, 0, CLI_NEED_DIR | CLI_NEED_CONFIG | CLI_NEED_STORE, cli_domain_list },
	{ "domain", "del", "NAME", "remove a domain that has no accounts or aliases",
	  1, 1, 0, CLI_NEED_DIR | CLI_NEED_CONFIG | CLI_NEED_STORE, cli_domain_del },
	{ "account", "add", "ADDRESS " PASSWORD_SYNOPSIS,
	  "add an account (password asked on the terminal by default)",
	  1, 1, CLI_OPTS_PASSWORD, CLI_NEED_DIR | CLI_NEED_CONFIG | CLI_NEED_STORE,
	  cli_account_add },
	{ "account", "list", "[DOMAIN]", "list accounts, of all domains or one",
	  0, 1, 0, CLI_NEED_DIR | CLI_NEED_CONFIG | CLI_NEED_STORE, cli_account_list },
	{ "account", "del", "ADDRESS", "remove an account with all its mail",
	  1, 1, 0, CLI_NEED_DIR | CLI_NEED_CONFIG | CLI_NEED_STORE, cli_account_del },
	{ "account", "passwd", "ADDRESS " PASSWORD_SYNOPSIS, "set an account's password",
	  1, 1, CLI_OPTS_PASSWORD, CLI_NEED_DIR | CLI_NEED_CONFIG | CLI_NEED_STORE,
	  cli_account_passwd },
	{ "account", "senders", "ADDRESS add|remove|list [PATTERN]",
	  "other senders the account may use at submission: user@domain or a whole @domain",
	  2, 3, 0, CLI_NEED_DIR | CLI_NEED_CONFIG | CLI_NEED_STORE, cli_account_senders },
	{ "account", "set", "ADDRESS imap_disable [CAPABILITY,...]",
	  "switch IMAP capabilities off for an account whose client breaks on them",
	  2, 3, 0, CLI_NEED_DIR | CLI_NEED_CONFIG | CLI_NEED_STORE, cli_account_set },
	{ "account", "quota", "ADDRESS [SIZE | none]",
	  "show an account's storage quota, or set it (500M, 2G; none: no limit)",
	  1, 2, 0, CLI_NEED_DIR | CLI_NEED_CONFIG | CLI_NEED_STORE, cli_account_quota },
	{ "alias", "add", "ADDRESS TARGET [TARGET...]",
	  "forward ADDRESS (or @domain, a catch-all) to the targets",
	  2, -1, 0, CLI_NEED_DIR | CLI_NEED_CONFIG | CLI_NEED_STORE, cli_alias_add },
	{ "alias", "list", "", "list aliases, one \"address target\" per line",
	  0, 0, 0, CLI_NEED_DIR | CLI_NEED_CONFIG | CLI_NEED_STORE, cli_alias_list },
	{ "alias", "del", "ADDRESS [TARGET]", "remove one target of an alias, or all",
	  1, 2, 0, CLI_NEED_DIR | CLI_NEED_CONFIG | CLI_NEED_STORE, cli_alias_del },
	{ "alias", "owner", "ALIAS ACCOUNT", "let ACCOUNT send as ALIAS at submission",
	  2, 2, 0, CLI_NEED_DIR | CLI_NEED_CONFIG | CLI_NEED_STORE, cli_alias_owner },
	{ "alias", "disown", "ALIAS ACCOUNT", "no longer let ACCOUNT send as ALIAS",
	  2, 2, 0, CLI_NEED_DIR | CLI_NEED_CONFIG | CLI_NEED_STORE, cli_alias_disown },
	{ "msg", "list", "ACCOUNT [MAILBOX]", "list messages: UID SIZE DATE FLAGS",
	  1, 2, 0, CLI_NEED_DIR | CLI_NEED_CONFIG | CLI_NEED_STORE, cli_msg_list },
	{ "msg", "cat", "ACCOUNT UID [MAILBOX]", "write a message's bytes to stdout",
	  2, 3, 0, CLI_NEED_DIR | CLI_NEED_CONFIG | CLI_NEED_STORE, cli_msg_cat },
	{ "queue", "list", "[--all]",
	  "list the outbound queue: ID STATUS ATTEMPTS NEXT SENDER RECIPIENT",
	  0, 0, CLI_OPT_ALL, CLI_NEED_DIR | CLI_NEED_CONFIG | CLI_NEED_STORE, cli_queue_list },
	{ "queue", "show", "ID", "show one queued recipient, its message and last reply",
	  1, 1, 0, CLI_NEED_DIR | CLI_NEED_CONFIG | CLI_NEED_STORE, cli_queue_show },
	{ "queue", "retry", "[ID]", "try one recipient (or all) again now",
	  0, 1, 0, CLI_NEED_DIR | CLI_NEED_CONFIG | CLI_NEED_STORE, cli_queue_retry },
	{ "queue", "hold", "ID", "keep a recipient from being sent until released",
	  1, 1, 0, CLI_NEED_DIR | CLI_NEED_CONFIG | CLI_NEED_STORE, cli_queue_hold },
	{ "queue", "release", "ID", "let a held recipient be sent now",
	  1, 1, 0, CLI_NEED_DIR | CLI_NEED_CONFIG | CLI_NEED_STORE, cli_queue_release },
	{ "queue", "delete", "ID", "remove a recipient from the queue without a bounce",
	  1, 1, 0, CLI_NEED_DIR | CLI_NEED_CONFIG | CLI_NEED_STORE, cli_queue_delete },
	{ "queue", "bounce", "ID", "give up on a recipient: it is marked failed",
	  1, 1, 0, CLI_NEED_DIR | CLI_NEED_CONFIG | CLI_NEED_STORE, cli_queue_bounce },
	/* sendmail -bp and mailq run this, through cli_mailq(). */
	{ "queue", "mailq", "", "",
	  0, 0, 0, CLI_NEED_DIR | CLI_NEED_CONFIG | CLI_NEED_STORE, cli_queue_mailq },
	{ "store", "copy", "--to DSN | --from DSN",
	  "copy the whole store into an empty PostgreSQL database, or back from one",
	  0, 0, CLI_OPT_TO | CLI_OPT_FROM, CLI_NEED_DIR | CLI_NEED_CONFIG | CLI_NEED_STORE,
	  cli_store_copy },
	{ "store", "reindex", "",
	  "make the IMAP summaries and search text of messages stored without them",
	  0, 0, 0, CLI_NEED_DIR | CLI_NEED_CONFIG | CLI_NEED_STORE, cli_store_reindex },
	{ "config", "check", "", "check youju.conf and the files it names",
	  0, 0, 0, CLI_NEED_DIR, cli_config_check },
	{ "config", "dump", "", "print the effective configuration",
	  0, 0, 0, CLI_NEED_DIR | CLI_NEED_CONFIG, cli_config_dump },
	{ "dkim", "keygen", "DOMAIN [--selector S] [--algorithm rsa|ed25519]",
	  "make a DKIM signing key and print its DNS record",
	  1, 1, CLI_OPT_SELECTOR | CLI_OPT_ALGORITHM,
	  CLI_NEED_DIR | CLI_NEED_CONFIG | CLI_NEED_STORE, cli_dkim_keygen },
	{ "dkim", "list", "[DOMAIN]", "list DKIM keys: DOMAIN SELECTOR ALGORITHM-BITS CREATED",
	  0, 1, 0, CLI_NEED_DIR | CLI_NEED_CONFIG, cli_dkim_list },
	{ "dkim", "remove", "DOMAIN SELECTOR", "delete a DKIM key (after rotating to a new one)",
	  2, 2, 0, CLI_NEED_DIR | CLI_NEED_CONFIG, cli_dkim_remove },
	/* Sign a message file to stdout; verify one against TXT records
	 * in a file (FAKE_DNS.dat format). For tests and cross-checks. */
	{ "dkim", "sign", "--domain D --selector S --key FILE [MESSAGE]", "",
	  0, 1, CLI_OPT_DOMAIN | CLI_OPT_SELECTOR | CLI_OPT_KEY, 0, cli_dkim_sign },
	{ "dkim", "verify", "--dns FILE [MESSAGE]", "",
	  0, 1, CLI_OPT_DNS, 0, cli_dkim_verify },
	{ "dmarc", "report", "[--now]",
	  "send the DMARC aggregate reports due (--now: also today's so far)",
	  0, 0, CLI_OPT_NOW, CLI_NEED_DIR | CLI_NEED_CONFIG | CLI_NEED_STORE, cli_dmarc_report },
	{ "help", NULL, "", "show this text", 0, 0, 0, 0, cli_help_run },
	{ "version", NULL, "", "show the version", 0, 0, 0, 0, cli_version_run },
};

#define N_CMDS (sizeof(cli_cmds) / sizeof(cli_cmds[0]))

struct cli_opt_spec {
	unsigned bit;
	const char *name;		/* long name without "--" */
	char short_name;		/* 0: none */
	bool has_value;
};

static const struct cli_opt_spec cli_opt_specs[] = {
	{ CLI_OPT_DATA_DIR, "data-dir", 'd', true },
	{ CLI_OPT_DOMAIN, "domain", 0, true },
	{ CLI_OPT_HOSTNAME, "hostname", 0, true },
	{ CLI_OPT_DEV, "dev", 0, false },
	{ CLI_OPT_PW_STDIN, "password-stdin", 0, false },
	{ CLI_OPT_PW_GENERATE, "generate-password", 0, false },
	{ CLI_OPT_PW_HASH, "password-hash", 0, true },
	{ CLI_OPT_SELECTOR, "selector", 0, true },
	{ CLI_OPT_ALGORITHM, "algorithm", 0, true },
	{ CLI_OPT_KEY, "key", 0, true },
	{ CLI_OPT_DNS, "dns", 0, true },
	{ CLI_OPT_TO, "to", 0, true },
	{ CLI_OPT_FROM, "from", 0, true },
	{ CLI_OPT_NOW, "now", 0, false },
	{ CLI_OPT_ALL, "all", 0, false },
};

#define N_OPT_SPECS (sizeof(cli_opt_specs) / sizeof(cli_opt_specs[0]))

int
cli_fail(const char *fmt, ...)
{
	char msg[YJ_ERR_MAX + 64];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* The contract is one line: a stray newline in a reason must not
	 * start a second one. */
	for (char *p = msg; *p != '\0'; p++) {
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	}
	fflush(stdout);
	fprintf(stderr, "youju: %s\n", msg);
	return CLI_EXIT_FAIL;
}

/* "domain add NAME": a command with its arguments. */
static void
cli_cmd_line(const struct cli_cmd *cmd, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s%s%s%s%s", cmd->group, cmd->name ? " " : "",
		 cmd->name ? cmd->name : "", cmd->synopsis[0] ? " " : "", cmd->synopsis);
}

static int
cli_fail_usage(const struct cli_cmd *cmd)
{
	char line[256];

	cli_cmd_line(cmd, line, sizeof(line));
	return cli_fail("usage: youju %s", line);
}

static void
cli_usage(FILE *out)
{
	fprintf(out, "usage: youju [-d DIR] COMMAND [ARGS...]\n\ncommands:\n");
	for (size_t i = 0; i < N_CMDS; i++) {
		char line[256];

		if (cli_cmds[i].help[0] == '\0')
			continue;
		cli_cmd_line(&cli_cmds[i], line, sizeof(line));
		if (strlen(line) < 30)
			fprintf(out, "  %-30s %s\n", line, cli_cmds[i].help);
		else
			fprintf(out, "  %s\n  %-30s %s\n", line, "", cli_cmds[i].help);
	}
	fprintf(out, "\noptions:\n"
		"  -d DIR, --data-dir DIR         the data dir (default %s)\n"
		"  -v, --verbose                  log details to stderr\n"
		"  -h, --help                     show this text\n"
		"  --version                      show the version\n",
		CLI_DEFAULT_DATA_DIR);
}

/* "youju account add --help": usage of that one command, on stdout. */
static bool
cli_cmd_help(const struct cli_cmd *cmd, int argc, char **argv)
{
	char line[256];

	for (int i = 0; i < argc && strcmp(argv[i], "--") != 0; i++) {
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			cli_cmd_line(cmd, line, sizeof(line));
			printf("usage: youju %s\n  %s\n", line, cmd->help);
			return true;
		}
	}
	return false;
}

static int
cli_help_run(struct cli *c, int argc, char **argv)
{
	cli_usage(stdout);
	return CLI_EXIT_OK;
}

static int
cli_version_run(struct cli *c, int argc, char **argv)
{
	printf("youju %s\n", CLI_VERSION);
	return CLI_EXIT_OK;
}

/* A one-word command by name (help, version). */
static const struct cli_cmd *
cli_cmd_find(const char *group)
{
	for (size_t i = 0; i < N_CMDS; i++) {
		if (strcmp(cli_cmds[i].group, group) == 0 && cli_cmds[i].name == NULL)
			return &cli_cmds[i];
	}
	return NULL;
}

/* "add|list|del" for a group, for the message when a subcommand is missing. */
static void
cli_group_names(const char *group, char *out, size_t outlen)
{
	size_t len = 0;

	out[0] = '\0';
	for (size_t i = 0; i < N_CMDS; i++) {
		int n;

		if (strcmp(cli_cmds[i].group, group) != 0 || cli_cmds[i].name == NULL)
			continue;
		n = snprintf(out + len, outlen - len, "%s%s", len ? "|" : "", cli_cmds[i].name);
		if (n < 0 || (size_t)n >= outlen - len)
			return;
		len += (size_t)n;
	}
}

/* Finds the command named by argv[*i] (and argv[*i + 1]); advances *i. */
static int
cli_cmd_lookup(int argc, char **argv, int *i, const struct cli_cmd **cmd_r,
	       struct yj_err *err)
{
	const char *group = argv[*i];
	const char *name = *i + 1 < argc ? argv[*i + 1] : NULL;
	bool known = false;
	char names[128];

	for (size_t k = 0; k < N_CMDS; k++) {
		const struct cli_cmd *cmd = &cli_cmds[k];

		if (strcmp(cmd->group, group) != 0)
			continue;
		known = true;
		if (cmd->name == NULL || (name != NULL && strcmp(cmd->name, name) == 0)) {
			*i += cmd->name == NULL ? 1 : 2;
			*cmd_r = cmd;
			return 1;
		}
	}
	if (!known)
		return yj_err_set(err, "unknown command '%s'", group);
	cli_group_names(group, names, sizeof(names));
	if (name == NULL)
		return yj_err_set(err, "usage: youju %s %s ...", group, names);
	return yj_err_set(err, "unknown command '%s %s'", group, name);
}

static const struct cli_opt_spec *
cli_opt_find(const char *arg, const char **inline_value_r)
{
	*inline_value_r = NULL;
	for (size_t k = 0; k < N_OPT_SPECS; k++) {
		const struct cli_opt_spec *o = &cli_opt_specs[k];
		size_t n = strlen(o->name);

		if (o->short_name != 0 && arg[1] == o->short_name && arg[2] == '\0')
			return o;
		if (arg[1] != '-' || strncmp(arg + 2, o->name, n) != 0)
			continue;
		if (arg[2 + n] == '\0')
			return o;
		if (arg[2 + n] == '=' && o->has_value) {
			*inline_value_r = arg + 3 + n;
			return o;
		}
	}
	return NULL;
}

static void
cli_opt_store(struct cli *c, unsigned bit, const char *value)
{
	switch (bit) {
	case CLI_OPT_DATA_DIR: c->data_dir = value; break;
	case CLI_OPT_DOMAIN: c->opts.domain = value; break;
	case CLI_OPT_HOSTNAME: c->opts.hostname = value; break;
	case CLI_OPT_DEV: c->opts.dev = true; break;
	case CLI_OPT_PW_STDIN: c->opts.password_stdin = true; break;
	case CLI_OPT_PW_GENERATE: c->opts.generate_password = true; break;
	case CLI_OPT_PW_HASH: c->opts.password_hash = value; break;
	case CLI_OPT_SELECTOR: c->opts.selector = value; break;
	case CLI_OPT_ALGORITHM: c->opts.algorithm = value; break;
	case CLI_OPT_KEY: c->opts.key = value; break;
	case CLI_OPT_DNS: c->opts.dns = value; break;
	case CLI_OPT_TO: c->opts.to = value; break;
	case CLI_OPT_FROM: c->opts.from = value; break;
	case CLI_OPT_NOW: c->opts.now = true; break;
	case CLI_OPT_ALL: c->opts.all = true; break;
	}
}

/* Parses the command's options and moves its positional arguments to
 * the front of argv; returns their count, or -1. */
static int
cli_parse_args(struct cli *c, int argc, char **argv, struct yj_err *err)
{
	const struct cli_cmd *cmd = c->cmd;
	/* -d may also follow the command it is for. */
	unsigned allowed = cmd->opts | ((cmd->needs & CLI_NEED_DIR) ? CLI_OPT_DATA_DIR : 0);
	bool options_done = false;
	int npos = 0;

	for (int i = 0; i < argc; i++) {
		const struct cli_opt_spec *o;
		const char *arg = argv[i], *value;

		if (options_done || arg[0] != '-' || arg[1] == '\0') {
			argv[npos++] = argv[i];
			continue;
		}
		if (strcmp(arg, "--") == 0) {
			options_done = true;
			continue;
		}
		o = cli_opt_find(arg, &value);
		if (o == NULL || (allowed & o->bit) == 0)
			return yj_err_set(err, "unknown option '%s'", arg);
		if (o->has_value && value == NULL) {
			if (i + 1 >= argc)
				return yj_err_set(err, "option %s needs a value", arg);
			value = argv[++i];
		}
		cli_opt_store(c, o->bit, value);
	}
	return npos;
}

/* Options before the command: the data dir, verbosity, help, version. */
static int
cli_parse_global(struct cli *c, int argc, char **argv, int *i_r, const struct cli_cmd **cmd_r,
		 struct yj_err *err)
{
	int i = 1;

	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *arg = argv[i], *value;

		if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
			*cmd_r = cli_cmd_find("help");
			return 1;
		}
		if (strcmp(arg, "--version") == 0) {
			*cmd_r = cli_cmd_find("version");
			return 1;
		}
		if (strcmp(arg, "-v") == 0 || strcmp(arg, "--verbose") == 0) {
			log_init("youju", LOG_LVL_DEBUG);
			continue;
		}
		if (cli_opt_find(arg, &value) != &cli_opt_specs[0])
			return yj_err_set(err, "unknown option '%s'", arg);
		if (value == NULL) {
			if (i + 1 >= argc)
				return yj_err_set(err, "option %s needs a value", arg);
			value = argv[++i];
		}
		c->data_dir = value;
	}
	if (i >= argc)
		return yj_err_set(err, "no command given (try youju help)");
	*i_r = i;
	return cli_cmd_lookup(argc, argv, i_r, cmd_r, err);
}

/* Drops trailing slashes, so that messages show "DIR/youju.conf". */
static int
cli_set_data_dir(struct cli *c, struct yj_err *err)
{
	static char dir[4096];
	size_t len;

	if (c->data_dir == NULL)
		c->data_dir = CLI_DEFAULT_DATA_DIR;
	len = strlen(c->data_dir);
	if (len == 0)
		return yj_err_set(err, "empty data dir");
	if (len >= sizeof(dir) - 64)
		return yj_err_set(err, "data dir path too long");
	memcpy(dir, c->data_dir, len + 1);
	while (len > 1 && dir[len - 1] == '/')
		dir[--len] = '\0';
	c->data_dir = dir;
	return 1;
}

/* Gets done what the command's table row says it needs. */
static int
cli_prepare(struct cli *c, struct yj_err *err)
{
	unsigned needs = c->cmd->needs;

	if ((needs & CLI_NEED_DIR) != 0) {
		/* The terminal belongs to the user who ran us; once we are the
		 * service user we could no longer open it for a password. */
		if (c->started_as_root && (c->cmd->opts & CLI_OPTS_PASSWORD) != 0)
			c->tty_fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (cli_priv_drop_to_dir_owner(c, err) < 0)
			return -1;
	}
	if ((needs & CLI_NEED_CONFIG) != 0) {
		if (cli_config_load(c, &c->cfg, err) < 0)
			return -1;
		c->have_cfg = true;
	}
	if ((needs & CLI_NEED_STORE) != 0 && cli_store_open(c, err) < 0)
		return -1;
	return 1;
}

static int
cli_main(struct cli *c, int argc, char **argv)
{
	struct yj_err err;
	int i = 0, npos;

	if (cli_parse_global(c, argc, argv, &i, &c->cmd, &err) < 0)
		return cli_fail("%s", err.msg);
	if (c->cmd->run == cli_help_run || c->cmd->run == cli_version_run)
		return c->cmd->run(c, 0, NULL);
	if (cli_cmd_help(c->cmd, argc - i, argv + i))
		return CLI_EXIT_OK;
	npos = cli_parse_args(c, argc - i, argv + i, &err);
	if (npos < 0)
		return cli_fail("%s", err.msg);
	if (npos < c->cmd->min_args || (c->cmd->max_args >= 0 && npos > c->cmd->max_args))
		return cli_fail_usage(c->cmd);
	if (cli_set_data_dir(c, &err) < 0 || cli_prepare(c, &err) < 0)
		return cli_fail("%s", err.msg);
	return c->cmd->run(c, npos, argv + i);
}

static void
cli_cleanup(struct cli *c)
{
	if (c->st != NULL) {
		store_close(&c->st);
		store_shutdown();
	}
	if (c->have_cfg)
		config_free(&c->cfg);
	if (c->tty_fd >= 0)
		close(c->tty_fd);
}

/* Runs one command line as `youju` would; returns its exit status. */
static int
cli_run(int argc, char **argv)
{
	struct cli c;
	int rc;

	memset(&c, 0, sizeof(c));
	c.tty_fd = -1;
	c.started_as_root = geteuid() == 0;
	/* Failures come back to us as messages; the log would only say
	 * the same thing a second time. */
	log_init("youju", LOG_LVL_ERROR);
	rc = cli_main(&c, argc, argv);
	cli_cleanup(&c);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		if (rc == CLI_EXIT_OK)
			rc = cli_fail("write error on stdout: %s", strerror(errno));
	}
	return rc;
}

/* sendmail -bp and mailq: the queue, read from the store as `youju
 * queue` reads it (root or the data dir's owner only). */
static int
cli_mailq(const char *data_dir)
{
	char *argv[] = { "youju", "-d", (char *)data_dir, "queue", "mailq", NULL };

	return cli_run(5, argv);
}

int
main(int argc, char **argv)
{
	const char *sm_dir;
	int sm_first;

	/* sendmail(1) has its own options and runs as the calling user. */
	if (cli_sendmail_invoked(argc, argv, &sm_dir, &sm_first))
		return cli_sendmail_main(sm_dir, argc, argv, sm_first, cli_mailq);
	return cli_run(argc, argv);
}
