/* cli_init.c - youju init: a new data dir, ready for youjud.
 *
 * It makes, in this order: the dir (0750), the database with the first
 * domain, a self-signed certificate in tls/, and youju.conf. The config
 * comes last because its presence is what "already initialised" means:
 * an init that failed halfway can simply be run again. Run as root, it
 * also creates the service user and gives it the whole dir.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/util.h"
#include "cli/cli.h"
#include "net/tls.h"

#define CONFIG_TEXT_MAX 16384
#define PATH_TEXT_MAX 4096

struct cli_init {
	char domain[CLI_DOMAIN_MAX + 1];
	char hostname[CLI_DOMAIN_MAX + 1];
	bool dev;
	/* filled as it goes, for the summary */
	bool as_root;
	bool user_created;
	bool cert_kept;
	uid_t uid;
	gid_t gid;
	char owner[64];
};

/* What an earlier, interrupted init may have left in the dir. Anything
 * else means the dir is in use: we will not chown someone's files. */
static const char *const init_leftovers[] = {
	STORE_DB_NAME, STORE_DB_NAME "-wal", STORE_DB_NAME "-shm", STORE_DB_NAME "-journal",
	"blobs", "tls", CONFIG_FILE_NAME ".tmp", "lost+found",
};

static bool
cli_init_is_leftover(const char *name)
{
	for (size_t i = 0; i < sizeof(init_leftovers) / sizeof(init_leftovers[0]); i++) {
		if (strcmp(name, init_leftovers[i]) == 0)
			return true;
	}
	return false;
}

static int
cli_init_dir_usable(const char *dir, struct yj_err *err)
{
	struct dirent *de;
	DIR *d = opendir(dir);

	if (d == NULL)
		return errno == ENOENT ? 1 : yj_err_errno(err, "%s", dir);
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
		    cli_init_is_leftover(de->d_name))
			continue;
		yj_err_set(err, "%s is not empty (it has %s); youju init wants a new or empty dir",
			   dir, de->d_name);
		closedir(d);
		return -1;
	}
	closedir(d);
	return 1;
}

/* The dir itself is 0750 whatever the umask; new parents get 0755 so
 * that the service user can reach it. */
static int
cli_init_mkdir(const char *dir, struct yj_err *err)
{
	char parent[PATH_TEXT_MAX];
	struct stat sb;
	char *slash;

	if (snprintf(parent, sizeof(parent), "%s", dir) >= (int)sizeof(parent))
		return yj_err_set(err, "data dir path too long");
	slash = strrchr(parent, '/');
	if (slash != NULL && slash != parent) {
		*slash = '\0';
		if (util_mkdir_p(parent, 0755, err) < 0)
			return -1;
	}
	if (mkdir(dir, 0750) < 0 && errno != EEXIST)
		return yj_err_errno(err, "mkdir %s", dir);
	if (stat(dir, &sb) < 0)
		return yj_err_errno(err, "%s", dir);
	if (!S_ISDIR(sb.st_mode))
		return yj_err_set(err, "%s is not a directory", dir);
	if (chmod(dir, 0750) < 0)
		return yj_err_errno(err, "chmod %s", dir);
	return 1;
}

static int
cli_init_store(struct cli *c, const struct cli_init *in, struct yj_err *err)
{
	int rc;

	if (store_create(c->data_dir, err) < 0 || store_open(c->data_dir, &c->st, err) < 0)
		return -1;
	rc = store_domain_exists(c->st, in->domain);
	if (rc < 0)
		rc = yj_err_set(err, "cannot look up domain %s in the database", in->domain);
	else if (rc == 0)
		rc = store_domain_add(c->st, in->domain, err);
	/* Closed now so that no -wal or -shm file is left for the chown to
	 * miss or to race with. */
	store_close(&c->st);
	store_shutdown();
	return rc < 0 ? -1 : 1;
}

/* A certificate already in tls/ (the admin's own, or from an earlier
 * run) is kept. */
static int
cli_init_tls(struct cli *c, struct cli_init *in, struct yj_err *err)
{
	char *dir = cli_dir_path(c, "tls");
	char *cert = cli_dir_path(c, "tls/cert.pem");
	char *key = cli_dir_path(c, "tls/key.pem");
	int rc = 1;

	if (mkdir(dir, 0750) < 0 && errno != EEXIST)
		rc = yj_err_errno(err, "mkdir %s", dir);
	else if (access(cert, F_OK) == 0 && access(key, F_OK) == 0)
		in->cert_kept = true;
	else
		rc = tls_make_self_signed(in->hostname, cert, key, err);
	free(dir);
	free(cert);
	free(key);
	return rc;
}

/* "key = value   # comment", aligned. */
static int
cli_init_conf_line(struct buf *b, const char *key, const char *value, const char *comment)
{
	char kv[128];

	snprintf(kv, sizeof(kv), "%s = %s", key, value);
	return buf_printf(b, "%-36s # %s\n", kv, comment);
}

static int
cli_init_conf_text(const struct cli *c, const struct cli_init *in, struct buf *b)
{
	struct config def;
	int rc = 1;

	config_init(&def, c->data_dir);
	if (buf_printf(b,
	    "# youju.conf - the configuration of this youju data dir.\n"
	    "#\n"
	    "# Lines are \"key = value\"; '#' starts a comment; a value may refer to\n"
	    "# another key as $name. A key left out keeps its default: see them all\n"
	    "# with \"youju -d DIR config dump\", and check this file after editing it\n"
	    "# with \"youju -d DIR config check\". Domains, accounts and aliases are\n"
	    "# not here but in the database: see \"youju help\".\n"
	    "\n"
	    "# The name of this host in greetings and Received: headers; the\n"
	    "# certificate in tls/ was made for it.\n"
	    "myhostname = %s\n"
	    "# The domain this host belongs to.\n"
	    "mydomain = %s\n"
	    "\n"
	    "# Listeners: ADDR:PORT, [IPV6]:PORT or *:PORT (all addresses); an empty\n"
	    "# value turns one off.%s\n",
	    in->hostname, in->domain,
	    in->dev ? " Development setup: loopback only, unprivileged ports." : "") < 0)
		rc = -1;
	for (size_t i = 0; i < CLI_N_LISTENERS && rc > 0; i++) {
		const struct cli_listener *l = &cli_listeners[i];

		rc = cli_init_conf_line(b, l->key, in->dev ? l->dev_value : l->std_value, l->what);
	}
	if (rc > 0 && buf_printf(b,
	    "\n"
	    "# TLS certificate chain and private key, relative to the data dir.\n"
	    "#tls_cert_file = %s\n"
	    "#tls_key_file = %s\n"
	    "\n"
	    "# Clients in these networks may relay mail without AUTH.\n"
	    "#mynetworks = %s\n"
	    "\n"
	    "# The unprivileged user youjud runs as once its ports are bound.\n"
	    "#mail_owner = %s\n"
	    "\n"
	    "# debug, info, warn or error.\n"
	    "#log_level = %s\n",
	    def.tls_cert_file, def.tls_key_file, def.mynetworks, def.mail_owner,
	    def.log_level) < 0)
		rc = -1;
	/* A development setup talks to loopback clients only: looking their
	 * names up would only ask the network about this machine. */
	if (rc > 0 && in->dev && buf_printf(b,
	    "\n"
	    "# Development setup: no reverse DNS lookups of (loopback) clients.\n"
	    "smtpd_peername_lookup = no\n") < 0)
		rc = -1;
	config_free(&def);
	return rc;
}

static int
cli_init_conf(struct cli *c, const struct cli_init *in, struct yj_err *err)
{
	char *path = cli_dir_path(c, CONFIG_FILE_NAME);
	struct buf b;
	int rc;

	buf_init(&b, CONFIG_TEXT_MAX);
	if (cli_init_conf_text(c, in, &b) < 0)
		rc = yj_err_set(err, "config text too long");
	else
		rc = util_write_file_atomic(path, b.data, b.len, 0640, err);
	buf_free(&b);
	free(path);
	return rc;
}

/* As root: the service user exists before anything is made, so that a
 * failure to create it leaves nothing behind. */
static int
cli_init_user(struct cli_init *in, struct yj_err *err)
{
	struct config def;
	int rc;

	config_init(&def, ".");
	snprintf(in->owner, sizeof(in->owner), "%s", def.mail_owner);
	config_free(&def);
	rc = cli_priv_ensure_user(in->owner, &in->uid, &in->gid, &in->user_created, err);
	in->as_root = rc > 0;
	return rc;
}

static int
cli_init_args(struct cli *c, struct cli_init *in, struct yj_err *err)
{
	struct yj_err nerr;

	if (c->opts.domain == NULL || c->opts.hostname == NULL)
		return yj_err_set(err, "usage: youju init --data-dir DIR --domain DOMAIN "
				  "--hostname HOST [--dev]");
	if (cli_domain_norm(c->opts.domain, in->domain, sizeof(in->domain), &nerr) < 0)
		return yj_err_set(err, "--domain: %s", nerr.msg);
	if (cli_domain_norm(c->opts.hostname, in->hostname, sizeof(in->hostname), &nerr) < 0)
		return yj_err_set(err, "--hostname: %s", nerr.msg);
	in->dev = c->opts.dev;
	return 1;
}

static void
cli_init_summary(const struct cli *c, const struct cli_init *in)
{

	printf("initialised %s\n", c->data_dir);
	printf("  %-12s %s/%s, listeners %s\n", "config", c->data_dir, CONFIG_FILE_NAME,
	       in->dev ? "on loopback, ports 2525 5587 5465 1143 1993 1110 1995"
		       : "on the standard ports");
	printf("  %-12s %s/%s, domain %s\n", "database", c->data_dir, STORE_DB_NAME, in->domain);
	if (in->cert_kept)
		printf("  %-12s %s/tls/cert.pem, kept the one already there\n", "certificate",
		       c->data_dir);
	else
		printf("  %-12s %s/tls/cert.pem, self-signed for %s\n", "certificate",
		       c->data_dir, in->hostname);
	if (in->as_root)
		printf("  %-12s %s%s\n", "owner", in->owner,
		       in->user_created ? " (system user created)" : "");
	printf("next: youju -d %s account add postmaster@%s\n", c->data_dir, in->domain);
	printf("      youjud -d %s\n", c->data_dir);
	fflush(stdout);
}

int
cli_init_run(struct cli *c, int argc, char **argv)
{
	struct cli_init in;
	struct yj_err err;
	char *conf;
	bool exists;

	memset(&in, 0, sizeof(in));
	if (cli_init_args(c, &in, &err) < 0)
		return cli_fail("%s", err.msg);
	conf = cli_dir_path(c, CONFIG_FILE_NAME);
	exists = access(conf, F_OK) == 0;
	free(conf);
	if (exists)
		return cli_fail("%s is already initialised", c->data_dir);
	if (cli_init_dir_usable(c->data_dir, &err) < 0)
		return cli_fail("%s", err.msg);
	if (geteuid() == 0 && cli_init_user(&in, &err) < 0)
		return cli_fail("%s", err.msg);
	if (cli_init_mkdir(c->data_dir, &err) < 0 || cli_init_store(c, &in, &err) < 0 ||
	    cli_init_tls(c, &in, &err) < 0 || cli_init_conf(c, &in, &err) < 0)
		return cli_fail("%s", err.msg);
	if (in.as_root && cli_priv_chown_tree(c->data_dir, in.uid, in.gid, &err) < 0)
		return cli_fail("%s", err.msg);
	cli_init_summary(c, &in);
	return CLI_EXIT_OK;
}
