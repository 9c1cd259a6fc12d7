#include "base/config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/log.h"

enum config_type { CT_STR, CT_INT, CT_TIME, CT_MSEC, CT_SIZE, CT_BOOL };

struct config_key {
	const char *name;
	enum config_type type;
	size_t offset;
	const char *def;
	long min, max;
};

#define K_STR(n, d) { #n, CT_STR, offsetof(struct config, n), d, 0, 0 }
#define K_NUM(n, t, d, lo, hi) { #n, t, offsetof(struct config, n), d, lo, hi }
#define K_BOOL(n, d) { #n, CT_BOOL, offsetof(struct config, n), d, 0, 1 }

/* The one list of every key: name, type, default, bounds. */
static const struct config_key config_keys[] = {
	K_STR(myhostname, ""),
	K_STR(mydomain, ""),
	K_STR(mynetworks, "127.0.0.0/8 [::1]/128"),
	K_STR(mail_owner, "youju"),
	K_STR(log_level, "info"),
	K_STR(dns_servers, ""),
	K_STR(tls_cert_file, "tls/cert.pem"),
	K_STR(tls_key_file, "tls/key.pem"),
	K_STR(store_driver, "sqlite"),
	K_STR(store_dsn, ""),

	K_STR(smtp_listen, ""),
	K_STR(submission_listen, ""),
	K_STR(submissions_listen, ""),
	K_STR(imap_listen, ""),
	K_STR(imaps_listen, ""),
	K_STR(pop3_listen, ""),
	K_STR(pop3s_listen, ""),

	K_NUM(max_connections, CT_INT, "10000", 1, 1000000),
	K_NUM(max_preauth_connections, CT_INT, "0", 0, 1000000),
	K_NUM(preauth_stress_timeout, CT_TIME, "10s", 1, 86400),
	K_NUM(client_connection_count_limit, CT_INT, "100", 0, 1000000),
	K_NUM(client_ipv6_prefix, CT_INT, "64", 1, 128),
	K_NUM(session_park_delay, CT_MSEC, "1s", 0, 3600000),
	K_NUM(tls_handshake_timeout, CT_TIME, "30s", 1, 3600),
	K_NUM(first_command_timeout, CT_TIME, "60s", 1, 86400),
	K_NUM(write_timeout, CT_TIME, "60s", 1, 86400),
	K_BOOL(disable_plaintext_auth, "yes"),
	K_BOOL(secure_loopback, "yes"),
	K_NUM(auth_failure_delay, CT_TIME, "2s", 0, 3600),
	K_NUM(auth_max_failures, CT_INT, "3", 1, 1000),
	K_NUM(auth_account_max_failures, CT_INT, "10", 0, 1000000),
	K_NUM(auth_penalty_max, CT_TIME, "15s", 0, 3600),
	K_NUM(auth_hash_limit, CT_INT, "0", 0, 1000),
	K_NUM(auth_cache_ttl, CT_TIME, "1h", 0, 86400),

	K_STR(smtpd_banner, "$myhostname ESMTP youju"),
	K_NUM(message_size_limit, CT_SIZE, "52428800", 1024, 1L << 40),
	K_NUM(queue_minfree, CT_SIZE, "0", 0, 1L << 50),
	K_NUM(smtpd_recipient_limit, CT_INT, "1000", 1, 1000000),
	K_NUM(line_length_limit, CT_SIZE, "2048", 512, 1L << 20),
	K_NUM(smtpd_timeout, CT_TIME, "300s", 1, 86400),
	K_NUM(smtpd_client_connection_count_limit, CT_INT, "50", 0, 1000000),
	K_NUM(smtpd_hard_error_limit, CT_INT, "20", 1, 1000),
	K_NUM(smtpd_junk_command_limit, CT_INT, "200", 0, 1000000),
	K_NUM(smtpd_recipient_overshoot_limit, CT_INT, "1000", 0, 1000000),
	K_NUM(smtpd_min_data_rate, CT_INT, "500", 0, 1000000000),
	K_NUM(smtpd_message_deadline, CT_TIME, "1h", 0, 604800),
	K_STR(recipient_delimiter, "+"),
	K_NUM(virtual_alias_expansion_limit, CT_INT, "1000", 1, 100000),
	K_NUM(virtual_alias_recursion_limit, CT_INT, "20", 1, 100),
	K_BOOL(smtpd_peername_lookup, "yes"),
	K_BOOL(smtpd_sender_login_check, "yes"),
	K_BOOL(submission_hide_client, "no"),
	K_STR(smtpd_reject_unknown_client, "no"),
	K_STR(spf_fail_action, "record"),
	K_BOOL(dmarc_enforce, "yes"),
	K_STR(dmarc_trusted_forwarders, ""),
	K_STR(arc_trusted_sealers, ""),
	K_STR(arc_seal_domain, ""),
	K_STR(spf_helo_fail_action, "record"),
	K_STR(dmarc_temperror_action, "accept"),
	K_NUM(dmarc_report_interval, CT_TIME, "24h", 0, 7L * 86400),
	K_STR(dmarc_report_from, ""),
	K_NUM(dmarc_report_max_per_day, CT_INT, "500", 0, 1000000),

	K_NUM(queue_run_threads, CT_INT, "4", 0, 1000),
	K_NUM(queue_run_delay, CT_TIME, "5s", 1, 3600),
	K_NUM(queue_lease_time, CT_TIME, "300s", 2, 86400),
	K_NUM(minimal_backoff_time, CT_TIME, "300s", 1, 86400),
	K_NUM(maximal_backoff_time, CT_TIME, "4000s", 1, 86400),
	K_NUM(maximal_queue_lifetime, CT_TIME, "5d", 0, 100L * 86400),
	K_NUM(bounce_queue_lifetime, CT_TIME, "5d", 0, 100L * 86400),
	K_NUM(queue_finished_retention, CT_TIME, "3d", 0, 3650L * 86400),
	K_NUM(delay_warning_time, CT_TIME, "4h", 0, 100L * 86400),
	K_NUM(smtp_destination_concurrency_limit, CT_INT, "20", 1, 1000),
	K_NUM(smtp_port, CT_INT, "25", 1, 65535),
	K_STR(smtp_bind_address, ""),
	K_STR(smtp_bind_address6, ""),
	K_STR(smtp_address_preference, "ipv4"),
	K_NUM(smtp_connect_timeout, CT_TIME, "30s", 1, 3600),
	K_NUM(smtp_timeout, CT_TIME, "300s", 1, 3600),
	K_NUM(smtp_data_init_timeout, CT_TIME, "120s", 1, 3600),
	K_NUM(smtp_data_xfer_timeout, CT_TIME, "180s", 1, 3600),
	K_NUM(smtp_data_done_timeout, CT_TIME, "600s", 1, 3600),
	K_STR(smtp_tls_policy, ""),
	K_STR(smtp_tls_ca_file, ""),
	K_STR(relayhost, ""),
	K_STR(relayhost_username, ""),
	K_STR(relayhost_password, ""),
	K_STR(relayhost_password_file, ""),

	K_NUM(pop3_timeout, CT_TIME, "600s", 1, 86400),
	K_NUM(pop3_login_delay, CT_TIME, "0", 0, 86400),
	K_NUM(pop3_expire, CT_INT, "-1", -1, 100000),

	K_NUM(imap_timeout, CT_TIME, "30m", 60, 86400),
	K_NUM(imap_idle_notify_interval, CT_TIME, "2m", 1, 3600),
	K_BOOL(imap_fts, "yes"),
	K_NUM(imap_search_time_limit, CT_MSEC, "60s", 1, 3600000),
	K_NUM(imap_summary_cache, CT_SIZE, "32m", 0, 1L << 40),
};

#define N_KEYS (sizeof(config_keys) / sizeof(config_keys[0]))

static const struct config_key *
config_key_find(const char *name)
{
	for (size_t i = 0; i < N_KEYS; i++) {
		if (strcmp(config_keys[i].name, name) == 0)
			return &config_keys[i];
	}
	return NULL;
}

static char *
xstrdup(const char *s)
{
	char *p = strdup(s);

	if (p == NULL)
		log_fatal("out of memory");
	return p;
}

/* Parses a number with an optional unit suffix; units is a list of
 * (suffix, multiplier) pairs for the key's type. */
static int
config_parse_number(const struct config_key *k, const char *value,
		    long *out, struct yj_err *err)
{
	static const struct { char suffix; long mult; } time_units[] = {
		{ 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 }, { 'w', 604800 },
	};
	static const struct { char suffix; long mult; } size_units[] = {
		{ 'k', 1024L }, { 'm', 1024L * 1024 }, { 'g', 1024L * 1024 * 1024 },
	};
	char *end;
	long v, mult = 1;

	errno = 0;
	v = strtol(value, &end, 10);
	if (end == value || errno != 0)
		return yj_err_set(err, "%s: '%s' is not a number", k->name, value);
	if (k->type == CT_MSEC && strcmp(end, "ms") == 0) {
		end += 2;
	} else if (k->type == CT_MSEC) {
		mult = 1000;		/* plain numbers and units are seconds */
	}
	if (*end != '\0') {
		char c = (char)tolower((unsigned char)*end);
		bool found = false;

		if (k->type == CT_TIME || k->type == CT_MSEC) {
			for (size_t i = 0; i < sizeof(time_units) / sizeof(time_units[0]); i++)
				if (time_units[i].suffix == c) { mult *= time_units[i].mult; found = true; }
		} else if (k->type == CT_SIZE) {
			for (size_t i = 0; i < sizeof(size_units) / sizeof(size_units[0]); i++)
				if (size_units[i].suffix == c) { mult = size_units[i].mult; found = true; }
		}
		if (!found || end[1] != '\0')
			return yj_err_set(err, "%s: '%s' is not a valid value", k->name, value);
	}
	if (v > LONG_MAX / mult || v < LONG_MIN / mult)
		return yj_err_set(err, "%s: '%s' is too large", k->name, value);
	v *= mult;
	if (v < k->min || v > k->max)
		return yj_err_set(err, "%s: %ld is out of range (%ld..%ld)",
				  k->name, v, k->min, k->max);
	*out = v;
	return 1;
}

int
config_parse_size(const char *what, const char *value, long max, long *out,
		  struct yj_err *err)
{
	const struct config_key k = { what, CT_SIZE, 0, "", 0, max };

	return config_parse_number(&k, value, out, err);
}

static int
config_parse_bool(const struct config_key *k, const char *value, bool *out,
		  struct yj_err *err)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };

	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(value, yes[i]) == 0) { *out = true; return 1; }
		if (strcasecmp(value, no[i]) == 0) { *out = false; return 1; }
	}
	return yj_err_set(err, "%s: '%s' is not yes or no", k->name, value);
}

int
config_set(struct config *cfg, const char *key, const char *value,
	   struct yj_err *err)
{
	const struct config_key *k = config_key_find(key);
	char *field;

	if (k == NULL)
		return yj_err_set(err, "unknown key '%s'", key);
	field = (char *)cfg + k->offset;
	switch (k->type) {
	case CT_STR: {
		char **sp = (char **)(void *)field;
		free(*sp);
		*sp = xstrdup(value);
		return 1;
	}
	case CT_BOOL:
		return config_parse_bool(k, value, (bool *)(void *)field, err);
	default:
		return config_parse_number(k, value, (long *)(void *)field, err);
	}
}

void
config_init(struct config *cfg, const char *data_dir)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->data_dir = xstrdup(data_dir);
	for (size_t i = 0; i < N_KEYS; i++) {
		if (config_set(cfg, config_keys[i].name, config_keys[i].def, NULL) < 0)
			log_fatal("config: bad default for %s", config_keys[i].name);
	}
}

void
config_free(struct config *cfg)
{
	for (size_t i = 0; i < N_KEYS; i++) {
		if (config_keys[i].type == CT_STR) {
			char **sp = (char **)(void *)((char *)cfg + config_keys[i].offset);
			free(*sp);
			*sp = NULL;
		}
	}
	free(cfg->data_dir);
	cfg->data_dir = NULL;
}

static char *
trim(char *s)
{
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

/* Parses one line of the file: blank, comment or "key = value". */
static int
config_load_line(struct config *cfg, char *line, struct yj_err *err)
{
	char *hash, *eq, *key, *value;

	hash = strchr(line, '#');
	if (hash != NULL)
		*hash = '\0';
	line = trim(line);
	if (*line == '\0')
		return 1;
	eq = strchr(line, '=');
	if (eq == NULL)
		return yj_err_set(err, "expected 'key = value'");
	*eq = '\0';
	key = trim(line);
	value = trim(eq + 1);
	if (*key == '\0')
		return yj_err_set(err, "missing key before '='");
	return config_set(cfg, key, value, err);
}

int
config_load(struct config *cfg, const char *path, struct yj_err *err)
{
	char line[8192];
	struct yj_err line_err;
	unsigned lineno = 0;
	FILE *fp;

	fp = fopen(path, "r");
	if (fp == NULL)
		return yj_err_errno(err, "%s", path);
	while (fgets(line, sizeof(line), fp) != NULL) {
		lineno++;
		if (strchr(line, '\n') == NULL && !feof(fp)) {
			fclose(fp);
			return yj_err_set(err, "%s:%u: line too long", path, lineno);
		}
		if (config_load_line(cfg, line, &line_err) < 0) {
			fclose(fp);
			return yj_err_set(err, "%s:%u: %s", path, lineno, line_err.msg);
		}
	}
	fclose(fp);
	return 1;
}

int
config_set_option(struct config *cfg, const char *option, struct yj_err *err)
{
	const char *eq = strchr(option, '=');
	char key[128];
	size_t n;

	if (eq == NULL)
		return yj_err_set(err, "-o %s: expected key=value", option);
	n = (size_t)(eq - option);
	if (n == 0 || n >= sizeof(key))
		return yj_err_set(err, "-o %s: bad key", option);
	memcpy(key, option, n);
	key[n] = '\0';
	return config_set(cfg, key, eq + 1, err);
}

/* Expands $name and ${name} in one string value. */
static int
config_expand(struct config *cfg, const char *in, char **out, struct yj_err *err)
{
	struct buf b;
	const char *p = in;

	buf_init(&b, 65536);
	while (*p != '\0') {
		char name[128];
		size_t n = 0;
		bool braced;
		const struct config_key *k;

		if (*p != '$') {
			if (buf_append(&b, p++, 1) < 0)
				goto too_long;
			continue;
		}
		p++;
		braced = *p == '{';
		if (braced)
			p++;
		while ((isalnum((unsigned char)*p) || *p == '_') && n < sizeof(name) - 1)
			name[n++] = *p++;
		name[n] = '\0';
		if (braced && *p++ != '}') {
			buf_free(&b);
			return yj_err_set(err, "unterminated ${ in '%s'", in);
		}
		k = config_key_find(name);
		if (k == NULL || k->type != CT_STR) {
			buf_free(&b);
			return yj_err_set(err, "unknown key '$%s' in '%s'", name, in);
		}
		if (buf_append_str(&b, *(char **)(void *)((char *)cfg + k->offset)) < 0)
			goto too_long;
	}
	*out = xstrdup(b.data);
	buf_free(&b);
	return 1;
too_long:
	buf_free(&b);
	return yj_err_set(err, "value too long after expansion: '%s'", in);
}

static void
config_default_hostname(struct config *cfg)
{
	char host[256];

	if (cfg->myhostname[0] != '\0')
		return;
	if (gethostname(host, sizeof(host)) != 0 || host[0] == '\0')
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	free(cfg->myhostname);
	cfg->myhostname = xstrdup(host);
}

/* Is value one of the words in choices (space separated)? */
static bool
config_one_of(const char *value, const char *choices)
{
	size_t len = strlen(value);

	for (const char *p = choices; *p != '\0';) {
		size_t n = strcspn(p, " ");

		if (n == len && len > 0 && strncmp(p, value, n) == 0)
			return true;
		p += n + (p[n] == ' ');
	}
	return false;
}

/* The keys that take one word of a fixed set. */
static int
config_check_choices(const struct config *cfg, struct yj_err *err)
{
	if (!config_one_of(cfg->smtpd_reject_unknown_client, "no defer reject"))
		return yj_err_set(err, "smtpd_reject_unknown_client: '%s' is not no, defer or reject",
				  cfg->smtpd_reject_unknown_client);
	if (!config_one_of(cfg->spf_fail_action, "record reject"))
		return yj_err_set(err, "spf_fail_action: '%s' is not record or reject",
				  cfg->spf_fail_action);
	if (!config_one_of(cfg->spf_helo_fail_action, "record reject"))
		return yj_err_set(err, "spf_helo_fail_action: '%s' is not record or reject",
				  cfg->spf_helo_fail_action);
	if (!config_one_of(cfg->dmarc_temperror_action, "accept defer"))
		return yj_err_set(err, "dmarc_temperror_action: '%s' is not accept or defer",
				  cfg->dmarc_temperror_action);
	return 1;
}

int
config_finish(struct config *cfg, struct yj_err *err)
{
	config_default_hostname(cfg);
	if (cfg->mydomain[0] == '\0') {
		const char *dot = strchr(cfg->myhostname, '.');
		free(cfg->mydomain);
		cfg->mydomain = xstrdup(dot != NULL ? dot + 1 : cfg->myhostname);
	}
	for (size_t i = 0; i < N_KEYS; i++) {
		char **sp, *expanded = NULL;

		if (config_keys[i].type != CT_STR)
			continue;
		sp = (char **)(void *)((char *)cfg + config_keys[i].offset);
		if (strchr(*sp, '$') == NULL)
			continue;
		if (config_expand(cfg, *sp, &expanded, err) < 0)
			return -1;
		free(*sp);
		*sp = expanded;
	}
	if (strlen(cfg->recipient_delimiter) > 8)
		return yj_err_set(err, "recipient_delimiter: at most 8 characters");
	return config_check_choices(cfg, err);
}

char *
config_path(const struct config *cfg, const char *path)
{
	struct buf b;
	char *out;

	if (path[0] == '/')
		return xstrdup(path);
	buf_init(&b, 8192);
	if (buf_printf(&b, "%s/%s", cfg->data_dir, path) < 0)
		log_fatal("config: path too long");
	out = xstrdup(b.data);
	buf_free(&b);
	return out;
}

void
config_dump(const struct config *cfg, FILE *out)
{
	for (size_t i = 0; i < N_KEYS; i++) {
		const char *field = (const char *)cfg + config_keys[i].offset;

		fprintf(out, "%s = ", config_keys[i].name);
		switch (config_keys[i].type) {
		case CT_STR: {
			const char *v = *(char *const *)(const void *)field;

			/* a password is not for screens and support tickets */
			if (strcmp(config_keys[i].name, "relayhost_password") == 0 && v[0] != '\0')
				v = "(set, not shown)";
			fprintf(out, "%s\n", v);
			break;
		}
		case CT_BOOL:
			fprintf(out, "%s\n", *(const bool *)(const void *)field ? "yes" : "no");
			break;
		case CT_MSEC:
			fprintf(out, "%ldms\n", *(const long *)(const void *)field);
			break;
		default:
			fprintf(out, "%ld\n", *(const long *)(const void *)field);
			break;
		}
	}
}
