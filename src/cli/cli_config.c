/* cli_config.c - youju config check|dump.
 *
 * config_load() already rejects unknown keys and malformed values with
 * file and line. "check" then looks at what only makes sense as a whole
 * or needs the outside world: address forms, the CIDR list, the user to
 * run as, and whether the certificate files are there and load. A
 * problem found after loading is still reported at the line that set the
 * key, so every message points at something to fix.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "cli/cli.h"
#include "net/listen.h"
#include "net/tls.h"

#define CONFIG_LINE_MAX 8192
#define ADDR_TEXT_MAX 64

typedef int cli_config_checker(struct cli *c, const char **key_r, struct yj_err *err);

/* The number of the last line of path that sets key, 0 if none does. */
static unsigned
cli_config_key_line(const char *path, const char *key)
{
	char line[CONFIG_LINE_MAX];
	size_t keylen = strlen(key);
	unsigned lineno = 0, found = 0;
	FILE *fp = fopen(path, "r");

	if (fp == NULL)
		return 0;
	while (fgets(line, sizeof(line), fp) != NULL) {
		const char *p = line;

		lineno++;
		while (isspace((unsigned char)*p))
			p++;
		if (strncmp(p, key, keylen) != 0)
			continue;
		p += keylen;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '=')
			found = lineno;
	}
	fclose(fp);
	return found;
}

/* A port: 1 to 65535, decimal digits only. */
static bool
cli_port_valid(const char *s)
{
	size_t len = strlen(s);
	long v;

	if (len == 0 || len > 5 || strspn(s, "0123456789") != len)
		return false;
	v = strtol(s, NULL, 10);
	return v >= 1 && v <= 65535;
}

/* "ADDR:PORT", "[V6]:PORT", "*:PORT", ":PORT", or "" (off). */
static int
cli_listen_spec_check(const char *spec, struct yj_err *err)
{
	char addr[ADDR_TEXT_MAX];
	unsigned char bin[16];
	const char *port, *end;
	bool v6 = spec[0] == '[';
	size_t len;

	if (spec[0] == '\0')
		return 1;
	if (v6) {
		end = strchr(spec, ']');
		if (end == NULL || end[1] != ':')
			return yj_err_set(err, "'%s': expected [IPV6]:PORT", spec);
		len = (size_t)(end - spec - 1);
		port = end + 2;
		spec++;
	} else {
		end = strrchr(spec, ':');
		if (end == NULL)
			return yj_err_set(err, "'%s': expected ADDR:PORT or *:PORT", spec);
		len = (size_t)(end - spec);
		port = end + 1;
	}
	if (len >= sizeof(addr))
		return yj_err_set(err, "'%s': address too long", spec);
	memcpy(addr, spec, len);
	addr[len] = '\0';
	if (!cli_port_valid(port))
		return yj_err_set(err, "'%s': bad port", port);
	if (v6)
		return inet_pton(AF_INET6, addr, bin) == 1 ? 1 :
		       yj_err_set(err, "'%s': not an IPv6 address", addr);
	if (len == 0 || strcmp(addr, "*") == 0)
		return 1;
	if (strchr(addr, ':') != NULL)
		return yj_err_set(err, "'%s': IPv6 addresses go in brackets, [ADDR]:PORT", addr);
	if (inet_pton(AF_INET, addr, bin) != 1)
		return yj_err_set(err, "'%s': not an IPv4 address", addr);
	return 1;
}

static int
cli_check_listeners(struct cli *c, const char **key_r, struct yj_err *err)
{
	struct yj_err lerr;

	for (size_t i = 0; i < CLI_N_LISTENERS; i++) {
		const char *v = cli_listener_value(&c->cfg, &cli_listeners[i]);

		*key_r = cli_listeners[i].key;
		if (cli_listen_spec_check(v, &lerr) < 0)
			return yj_err_set(err, "%s: %s", *key_r, lerr.msg);
		for (size_t k = 0; k < i && v[0] != '\0'; k++) {
			if (strcmp(v, cli_listener_value(&c->cfg, &cli_listeners[k])) == 0)
				return yj_err_set(err, "%s: %s is also %s", *key_r, v,
						  cli_listeners[k].key);
		}
	}
	return 1;
}

static int
cli_check_names(struct cli *c, const char **key_r, struct yj_err *err)
{
	char name[CLI_DOMAIN_MAX + 1];
	struct yj_err nerr;

	*key_r = "myhostname";
	if (cli_domain_norm(c->cfg.myhostname, name, sizeof(name), &nerr) < 0)
		return yj_err_set(err, "myhostname: %s", nerr.msg);
	*key_r = "mydomain";
	if (cli_domain_norm(c->cfg.mydomain, name, sizeof(name), &nerr) < 0)
		return yj_err_set(err, "mydomain: %s", nerr.msg);
	return 1;
}

static int
cli_check_log_level(struct cli *c, const char **key_r, struct yj_err *err)
{
	enum log_level level;

	*key_r = "log_level";
	if (log_level_parse(c->cfg.log_level, &level) < 0)
		return yj_err_set(err, "log_level: '%s' is not debug, info, warn or error",
				  c->cfg.log_level);
	return 1;
}

static int
cli_check_mynetworks(struct cli *c, const char **key_r, struct yj_err *err)
{
	struct yj_err nerr;

	*key_r = "mynetworks";
	if (cidr_list_check(c->cfg.mynetworks, &nerr) < 0)
		return yj_err_set(err, "mynetworks: %s", nerr.msg);
	return 1;
}

/* One DNS server: "ADDR" or "ADDR@PORT", ADDR an IPv4 or IPv6 literal. */
static int
cli_dns_server_check(const char *tok, size_t len, struct yj_err *err)
{
	char text[ADDR_TEXT_MAX + 8];
	unsigned char bin[16];
	char *at;

	if (len >= sizeof(text))
		return yj_err_set(err, "'%.*s': too long", (int)len, tok);
	memcpy(text, tok, len);
	text[len] = '\0';
	at = strchr(text, '@');
	if (at != NULL) {
		*at = '\0';
		if (!cli_port_valid(at + 1))
			return yj_err_set(err, "'%s': bad port", at + 1);
	}
	if (inet_pton(AF_INET, text, bin) != 1 && inet_pton(AF_INET6, text, bin) != 1)
		return yj_err_set(err, "'%s': not an IP address", text);
	return 1;
}

static int
cli_check_dns_servers(struct cli *c, const char **key_r, struct yj_err *err)
{
	const char *p = c->cfg.dns_servers;
	struct yj_err derr;

	*key_r = "dns_servers";
	while (*p != '\0') {
		size_t len = strcspn(p, " \t,");

		if (len > 0 && cli_dns_server_check(p, len, &derr) < 0)
			return yj_err_set(err, "dns_servers: %s", derr.msg);
		p += len;
		p += strspn(p, " \t,");
	}
	return 1;
}

/* Only root can become mail_owner; for anyone else it is not used. */
static int
cli_check_mail_owner(struct cli *c, const char **key_r, struct yj_err *err)
{
	struct passwd *pw;
	struct stat sb;

	*key_r = "mail_owner";
	if (!c->started_as_root)
		return 1;
	pw = getpwnam(c->cfg.mail_owner);
	if (pw == NULL)
		return yj_err_set(err, "mail_owner: no user '%s'", c->cfg.mail_owner);
	if (pw->pw_uid == 0)
		return yj_err_set(err, "mail_owner: '%s' is root", c->cfg.mail_owner);
	if (stat(c->data_dir, &sb) == 0 && sb.st_uid != pw->pw_uid)
		return yj_err_set(err, "mail_owner: %s does not own the data dir %s",
				  c->cfg.mail_owner, c->data_dir);
	return 1;
}

static bool
cli_any_tls_listener(const struct config *cfg, const char **key_r)
{
	for (size_t i = 0; i < CLI_N_LISTENERS; i++) {
		if (cli_listeners[i].implicit_tls &&
		    cli_listener_value(cfg, &cli_listeners[i])[0] != '\0') {
			*key_r = cli_listeners[i].key;
			return true;
		}
	}
	return false;
}

/* A file the TLS setup needs: there and readable (by the service user,
 * since we run as the owner of the data dir). */
static int
cli_tls_file_check(struct cli *c, const char *key, const char *value, const char *listener,
		   struct yj_err *err)
{
	char *path;
	int rc = 1;

	if (value[0] == '\0')
		return yj_err_set(err, "%s is empty but %s needs a certificate", key, listener);
	path = config_path(&c->cfg, value);
	if (access(path, R_OK) < 0)
		rc = yj_err_errno(err, "%s: %s", key, path);
	free(path);
	return rc;
}

/* The certificate and key are needed with an implicit-TLS listener, and
 * loaded whenever the certificate is there, since STARTTLS uses them. */
static int
cli_check_tls(struct cli *c, const char **key_r, struct yj_err *err)
{
	const char *listener = NULL;
	char *cert, *key;
	struct yj_err terr;
	SSL_CTX *ctx;
	bool present;

	*key_r = "tls_cert_file";
	if (cli_any_tls_listener(&c->cfg, &listener)) {
		if (cli_tls_file_check(c, "tls_cert_file", c->cfg.tls_cert_file, listener, err) < 0)
			return -1;
		*key_r = "tls_key_file";
		if (cli_tls_file_check(c, "tls_key_file", c->cfg.tls_key_file, listener, err) < 0)
			return -1;
	}
	if (c->cfg.tls_cert_file[0] == '\0' || c->cfg.tls_key_file[0] == '\0')
		return 1;
	cert = config_path(&c->cfg, c->cfg.tls_cert_file);
	key = config_path(&c->cfg, c->cfg.tls_key_file);
	/* As youjud decides: a readable certificate is loaded (for
	 * STARTTLS) even when no listener requires one. */
	present = listener != NULL || access(cert, R_OK) == 0;
	ctx = present ? tls_server_ctx_new(cert, key, &terr) : NULL;
	free(cert);
	free(key);
	if (!present)
		return 1;
	*key_r = "tls_cert_file";
	if (ctx == NULL)
		return yj_err_set(err, "tls_cert_file: %s", terr.msg);
	SSL_CTX_free(ctx);
	return 1;
}

static cli_config_checker *const cli_config_checks[] = {
	cli_check_names, cli_check_log_level, cli_check_mynetworks, cli_check_listeners,
	cli_check_dns_servers, cli_check_mail_owner, cli_check_tls,
};

int
cli_config_check(struct cli *c, int argc, char **argv)
{
	struct yj_err err;
	const char *key = NULL;
	char *path;
	unsigned line;

	if (cli_config_load(c, &c->cfg, &err) < 0)
		return cli_fail("%s", err.msg);
	c->have_cfg = true;
	for (size_t i = 0; i < sizeof(cli_config_checks) / sizeof(cli_config_checks[0]); i++) {
		if (cli_config_checks[i](c, &key, &err) > 0)
			continue;
		path = cli_dir_path(c, CONFIG_FILE_NAME);
		line = cli_config_key_line(path, key);
		if (line > 0)
			cli_fail("%s:%u: %s", path, line, err.msg);
		else
			cli_fail("%s: %s", path, err.msg);
		free(path);
		return CLI_EXIT_FAIL;
	}
	printf("config ok\n");
	return CLI_EXIT_OK;
}

int
cli_config_dump(struct cli *c, int argc, char **argv)
{
	config_dump(&c->cfg, stdout);
	return CLI_EXIT_OK;
}
