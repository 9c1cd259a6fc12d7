/* cli_util.c - what several youju commands share: checking names,
 * loading the config and opening the store of the data dir. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <idn2.h>

#include "base/log.h"
#include "base/util.h"
#include "cli/cli.h"

#define LABEL_MAX 63

#define LISTENER(name, std, dev, tls, what) \
	{ #name, offsetof(struct config, name), std, dev, tls, what }

const struct cli_listener cli_listeners[CLI_N_LISTENERS] = {
	LISTENER(smtp_listen, "*:25", "127.0.0.1:2525", false,
		 "mail from other servers (STARTTLS)"),
	LISTENER(submission_listen, "*:587", "127.0.0.1:5587", false,
		 "your users' mail clients, after AUTH (STARTTLS)"),
	LISTENER(submissions_listen, "*:465", "127.0.0.1:5465", true,
		 "the same with implicit TLS"),
	LISTENER(imap_listen, "*:143", "127.0.0.1:1143", false, "IMAP (STARTTLS)"),
	LISTENER(imaps_listen, "*:993", "127.0.0.1:1993", true, "IMAP with implicit TLS"),
	LISTENER(pop3_listen, "*:110", "127.0.0.1:1110", false, "POP3 (STLS)"),
	LISTENER(pop3s_listen, "*:995", "127.0.0.1:1995", true, "POP3 with implicit TLS"),
};

const char *
cli_listener_value(const struct config *cfg, const struct cli_listener *l)
{
	return *(char *const *)(const void *)((const char *)cfg + l->offset);
}

static bool
cli_is_ascii(const char *s)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s >= 0x80)
			return false;
	}
	return true;
}

/* Letters, digits and inner hyphens, 1 to 63 of them per label, and a
 * last label that is not all digits (that would be an IP address). */
static bool
cli_host_name_valid(const char *name)
{
	size_t label = 0;
	bool all_digits = true;
	char prev = '.';

	for (const char *p = name;; p++) {
		char ch = *p;

		if (ch == '.' || ch == '\0') {
			if (label == 0 || prev == '-')
				return false;
			if (ch == '\0')
				return !all_digits;
			label = 0;
			all_digits = true;
		} else if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-') {
			if (label == 0 && ch == '-')
				return false;
			if (++label > LABEL_MAX)
				return false;
			all_digits = all_digits && ch >= '0' && ch <= '9';
		} else {
			return false;
		}
		prev = ch;
	}
}

int
cli_domain_norm(const char *in, char *out, size_t outlen, struct yj_err *err)
{
	char *ascii = NULL;
	const char *name = in;
	size_t len;
	int rc;

	if (!cli_is_ascii(in)) {
		if (!util_utf8_valid(in, strlen(in)))
			return yj_err_set(err, "invalid domain name (not UTF-8)");
		rc = idn2_to_ascii_8z(in, &ascii, IDN2_NONTRANSITIONAL | IDN2_NFC_INPUT);
		if (rc != IDN2_OK)
			return yj_err_set(err, "invalid domain name '%s': %s", in, idn2_strerror(rc));
		name = ascii;
	}
	len = strlen(name);
	if (len == 0 || len > CLI_DOMAIN_MAX || len >= outlen) {
		idn2_free(ascii);
		return yj_err_set(err, "invalid domain name '%s'", in);
	}
	memcpy(out, name, len + 1);
	idn2_free(ascii);
	util_ascii_lower(out);
	if (!cli_host_name_valid(out))
		return yj_err_set(err, "invalid domain name '%s'", in);
	return 1;
}

/* RFC 5322 atext, plus any UTF-8 (RFC 6531 allows it in local parts). */
static bool
cli_atext(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch >= 0x80 || (ch != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", ch) != NULL);
}

/* A dot-atom: atext runs separated by single dots. Quoted local parts
 * are legal but nobody should create an account with one. */
static bool
cli_local_part_valid(const char *local, size_t len)
{
	if (len == 0 || local[0] == '.' || local[len - 1] == '.')
		return false;
	if (!util_utf8_valid(local, len))
		return false;
	for (size_t i = 0; i < len; i++) {
		if (local[i] == '.') {
			if (local[i + 1] == '.')
				return false;
		} else if (!cli_atext((unsigned char)local[i])) {
			return false;
		}
	}
	return true;
}

int
cli_address_norm(const char *in, bool catchall_ok, char *out, size_t outlen,
		 const char **domain_r, struct yj_err *err)
{
	const char *at = strrchr(in, '@');
	char domain[CLI_DOMAIN_MAX + 1];
	struct yj_err derr;
	size_t local_len;
	int n;

	if (at == NULL || (at == in && !catchall_ok))
		return yj_err_set(err, "invalid address '%s' (expected local@domain)", in);
	local_len = (size_t)(at - in);
	if (local_len > CLI_LOCAL_MAX)
		return yj_err_set(err, "invalid address '%s': local part longer than %d bytes",
				  in, CLI_LOCAL_MAX);
	if (local_len > 0 && !cli_local_part_valid(in, local_len))
		return yj_err_set(err, "invalid address '%s'", in);
	if (cli_domain_norm(at + 1, domain, sizeof(domain), &derr) < 0)
		return yj_err_set(err, "invalid address '%s': %s", in, derr.msg);
	n = snprintf(out, outlen, "%.*s@%s", (int)local_len, in, domain);
	if (n < 0 || (size_t)n >= outlen || (size_t)n > STORE_ADDRESS_MAX)
		return yj_err_set(err, "invalid address '%s': too long", in);
	out[local_len] = '\0';
	util_ascii_lower(out);
	out[local_len] = '@';
	if (domain_r != NULL)
		*domain_r = out + local_len + 1;
	return 1;
}

char *
cli_dir_path(const struct cli *c, const char *name)
{
	size_t len = strlen(c->data_dir) + 1 + strlen(name) + 1;
	char *path = malloc(len);

	if (path == NULL)
		log_fatal("out of memory");
	snprintf(path, len, "%s/%s", c->data_dir, name);
	return path;
}

int
cli_config_load(struct cli *c, struct config *cfg, struct yj_err *err)
{
	char *path = cli_dir_path(c, CONFIG_FILE_NAME);
	struct yj_err lerr;
	struct stat sb;

	if (stat(path, &sb) < 0 && errno == ENOENT) {
		yj_err_set(err, "%s is not a youju data dir (no %s; see youju init)",
			   c->data_dir, CONFIG_FILE_NAME);
		free(path);
		return -1;
	}
	config_init(cfg, c->data_dir);
	if (config_load(cfg, path, err) < 0) {
		config_free(cfg);
		free(path);
		return -1;
	}
	/* config_finish's reasons do not say which file they are about. */
	if (config_finish(cfg, &lerr) < 0) {
		yj_err_set(err, "%s: %s", path, lerr.msg);
		config_free(cfg);
		free(path);
		return -1;
	}
	free(path);
	return 1;
}

int
cli_store_open(struct cli *c, struct yj_err *err)
{
	/* Without a config (a command that needs none): the default. */
	if (c->have_cfg &&
	    store_set_driver(c->data_dir, c->cfg.store_driver, c->cfg.store_dsn, err) < 0)
		return -1;
	return store_open(c->data_dir, &c->st, err);
}

int
cli_need_local_domain(struct cli *c, const char *domain, struct yj_err *err)
{
	int rc = store_domain_exists(c->st, domain);

	if (rc < 0)
		return yj_err_set(err, "cannot look up domain %s in the database", domain);
	if (rc == 0)
		return yj_err_set(err, "domain %s does not exist", domain);
	return 1;
}

int
cli_need_account(struct cli *c, const char *address, struct store_account *acct_r,
		 struct yj_err *err)
{
	int rc = store_account_lookup(c->st, address, acct_r);

	if (rc < 0)
		return yj_err_set(err, "cannot look up account %s in the database", address);
	if (rc == 0)
		return yj_err_set(err, "account %s does not exist", address);
	return 1;
}
