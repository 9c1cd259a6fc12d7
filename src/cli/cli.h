/* cli.h - the youju admin command: what its parts share.
 *
 * youju.c parses the command line against one table of commands, then
 * prepares what the command needs (privileges, config, store) and calls
 * its handler with the positional arguments. Handlers return the exit
 * status. Every failure is reported by exactly one call to cli_fail(),
 * which prints the single line "youju: <reason>" on stderr; helpers
 * below never print, they fill a struct yj_err and return -1.
 */
#ifndef YJ_CLI_H
#define YJ_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/config.h"
#include "base/err.h"
#include "store/store.h"

#define CLI_VERSION "0.1.0"
#define CLI_DEFAULT_DATA_DIR "./var"
/* The data dir of sendmail and mailq called by those names (the links
 * `make install` puts in /usr/sbin and /usr/bin); CMake can set it. */
#ifndef CLI_SENDMAIL_DATA_DIR
#define CLI_SENDMAIL_DATA_DIR "/var/lib/youju"
#endif
#define CLI_EXIT_OK 0
#define CLI_EXIT_FAIL 1

/* What main() prepares before calling a handler. */
enum cli_need {
	CLI_NEED_DIR = 1 << 0,		/* a data dir: drop root to its owner */
	CLI_NEED_CONFIG = 1 << 1,	/* youju.conf loaded into cli.cfg */
	CLI_NEED_STORE = 1 << 2,	/* cli.st opened */
};

/* Options a command may accept, as bits in cli_cmd.opts. */
enum cli_opt {
	CLI_OPT_DATA_DIR = 1 << 0,	/* -d DIR, --data-dir DIR */
	CLI_OPT_DOMAIN = 1 << 1,	/* --domain NAME */
	CLI_OPT_HOSTNAME = 1 << 2,	/* --hostname NAME */
	CLI_OPT_DEV = 1 << 3,		/* --dev */
	CLI_OPT_PW_STDIN = 1 << 4,	/* --password-stdin */
	CLI_OPT_PW_GENERATE = 1 << 5,	/* --generate-password */
	CLI_OPT_PW_HASH = 1 << 6,	/* --password-hash HASH */
	CLI_OPT_SELECTOR = 1 << 7,	/* --selector NAME */
	CLI_OPT_ALGORITHM = 1 << 8,	/* --algorithm rsa|ed25519 */
	CLI_OPT_KEY = 1 << 9,		/* --key FILE */
	CLI_OPT_DNS = 1 << 10,		/* --dns FILE */
	CLI_OPT_TO = 1 << 11,		/* --to DSN */
	CLI_OPT_FROM = 1 << 12,	/* --from DSN */
	CLI_OPT_NOW = 1 << 13,		/* --now */
	CLI_OPT_ALL = 1 << 14,		/* --all */
};
#define CLI_OPTS_PASSWORD (CLI_OPT_PW_STDIN | CLI_OPT_PW_GENERATE | CLI_OPT_PW_HASH)

/* The option values of one invocation; unset strings are NULL. */
struct cli_opts {
	const char *domain;
	const char *hostname;
	const char *password_hash;
	const char *selector;
	const char *algorithm;
	const char *key;
	const char *dns;
	const char *to;
	const char *from;
	bool dev;
	bool password_stdin;
	bool generate_password;
	bool now;
	bool all;
};

struct cli;
typedef int cli_handler(struct cli *c, int argc, char **argv);

struct cli_cmd {
	const char *group;		/* "domain", or the command itself */
	const char *name;		/* "add", or NULL for a one-word command */
	const char *synopsis;		/* arguments, for usage lines */
	const char *help;		/* one line; "" hides the command from
					 * the help text (tools for tests) */
	int min_args, max_args;		/* positional arguments; max -1: any */
	unsigned opts;			/* enum cli_opt bits */
	unsigned needs;			/* enum cli_need bits */
	cli_handler *run;
};

struct cli {
	const char *data_dir;
	bool started_as_root;
	int tty_fd;			/* opened while still root, or -1 */
	const struct cli_cmd *cmd;
	struct cli_opts opts;
	struct config cfg;
	bool have_cfg;
	struct store *st;
};

/* ---- cli_store.c ---- */
int cli_store_copy(struct cli *c, int argc, char **argv);
int cli_store_reindex(struct cli *c, int argc, char **argv);

/* ---- youju.c ---- */
/* Prints "youju: <reason>" to stderr; returns CLI_EXIT_FAIL. */
int cli_fail(const char *fmt, ...) YJ_PRINTF(1, 2);

/* ---- cli_util.c: names, config, store ---- */
#define CLI_DOMAIN_MAX 253
#define CLI_LOCAL_MAX 64

/* Lowercases a domain name, converting an internationalised one to its
 * A-label form, and checks it is a valid host name. out holds
 * CLI_DOMAIN_MAX + 1 bytes. */
int cli_domain_norm(const char *in, char *out, size_t outlen, struct yj_err *err) YJ_MUST_CHECK;
/* Checks and lowercases local@domain (or "@domain" if catchall_ok);
 * out holds STORE_ADDRESS_MAX + 1 bytes. domain_r, if not NULL, points
 * into out at the domain part. */
int cli_address_norm(const char *in, bool catchall_ok, char *out, size_t outlen,
		     const char **domain_r, struct yj_err *err) YJ_MUST_CHECK;
/* The path of a file in the data dir; the caller frees it. */
char *cli_dir_path(const struct cli *c, const char *name);
/* config_init + config_load + config_finish on DIR/youju.conf, with a
 * clear message if the dir was never initialised. */
int cli_config_load(struct cli *c, struct config *cfg, struct yj_err *err) YJ_MUST_CHECK;
int cli_store_open(struct cli *c, struct yj_err *err) YJ_MUST_CHECK;
/* Fails unless domain is one of ours. */
int cli_need_local_domain(struct cli *c, const char *domain, struct yj_err *err) YJ_MUST_CHECK;
/* Looks an account up by address, failing with "account X does not
 * exist" when it is not there. */
int cli_need_account(struct cli *c, const char *address, struct store_account *acct_r,
		     struct yj_err *err) YJ_MUST_CHECK;

/* The seven listeners: their keys, the values youju init writes, and
 * whether they speak TLS from the first byte (and so need a certificate). */
struct cli_listener {
	const char *key;
	size_t offset;			/* of its char * in struct config */
	const char *std_value;		/* standard port, all addresses */
	const char *dev_value;		/* --dev: loopback, unprivileged port */
	bool implicit_tls;
	const char *what;		/* a comment for youju.conf */
};
#define CLI_N_LISTENERS 7
extern const struct cli_listener cli_listeners[CLI_N_LISTENERS];
const char *cli_listener_value(const struct config *cfg, const struct cli_listener *l);

/* ---- cli_priv.c: running as root ---- */
/* When root, becomes the owner of the data dir (unless that is root), so
 * that files made in it keep the service user's ownership. It enters the
 * dir first; if the owner cannot reach it by its name, c->data_dir
 * becomes ".". */
int cli_priv_drop_to_dir_owner(struct cli *c, struct yj_err *err) YJ_MUST_CHECK;
/* Creates the system user (and group) if missing; fills uid and gid. */
int cli_priv_ensure_user(const char *name, uid_t *uid_r, gid_t *gid_r, bool *created_r,
			 struct yj_err *err) YJ_MUST_CHECK;
/* chown -R without following symbolic links. */
int cli_priv_chown_tree(const char *path, uid_t uid, gid_t gid, struct yj_err *err) YJ_MUST_CHECK;

/* ---- cli_password.c ---- */
#define CLI_GENERATED_PASSWORD_LEN 20
/* Gets a hash for an account from the options: a given hash, or a
 * password read from stdin, the terminal or generated (then copied to
 * generated_r, which holds CLI_GENERATED_PASSWORD_LEN + 1 bytes). */
int cli_password_from_opts(struct cli *c, char *hash, size_t hashlen, char *generated_r,
			   struct yj_err *err) YJ_MUST_CHECK;

/* ---- the commands ---- */
cli_handler cli_init_run;
cli_handler cli_domain_add, cli_domain_list, cli_domain_del;
cli_handler cli_account_add, cli_account_list, cli_account_del, cli_account_passwd,
	cli_account_set, cli_account_quota;
cli_handler cli_alias_add, cli_alias_list, cli_alias_del, cli_alias_owner, cli_alias_disown;
cli_handler cli_account_senders;
cli_handler cli_msg_list, cli_msg_cat;
cli_handler cli_queue_list, cli_queue_show, cli_queue_retry, cli_queue_hold,
	cli_queue_release, cli_queue_delete, cli_queue_bounce, cli_queue_mailq;
cli_handler cli_config_check, cli_config_dump;
cli_handler cli_dkim_keygen, cli_dkim_list, cli_dkim_remove, cli_dkim_sign, cli_dkim_verify;
cli_handler cli_dmarc_report;

#endif
