/* Unit tests for the config file: defaults, file syntax, typed values
 * with units, $name expansion and the -o form. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/config.h"
#include "test.h"

/* Writes text to a new temporary file; path holds at least 64 bytes. */
static bool
write_temp(const char *text, char *path, size_t pathlen)
{
	const char *dir = getenv("TMPDIR");
	FILE *fp;
	int fd;

	snprintf(path, pathlen, "%s/test-config-XXXXXX", dir != NULL ? dir : "/tmp");
	fd = mkstemp(path);
	if (fd < 0)
		return false;
	fp = fdopen(fd, "w");
	if (fp == NULL) {
		close(fd);
		return false;
	}
	fputs(text, fp);
	return fclose(fp) == 0;
}

/* Loads text as a config file over the defaults. */
static int
load_text(struct config *cfg, const char *text, char *path, size_t pathlen,
	  struct yj_err *err)
{
	int ret;

	config_init(cfg, "/var/lib/youju");
	if (!write_temp(text, path, pathlen))
		return yj_err_set(err, "cannot write a temporary file");
	ret = config_load(cfg, path, err);
	unlink(path);
	return ret;
}

static void
test_config_defaults(void)
{
	struct config cfg;

	test_begin("config defaults");
	config_init(&cfg, "/var/lib/youju");
	test_assert_strcmp(cfg.data_dir, "/var/lib/youju");
	test_assert_strcmp(cfg.myhostname, "");
	test_assert_strcmp(cfg.mail_owner, "youju");
	test_assert_strcmp(cfg.log_level, "info");
	test_assert_strcmp(cfg.mynetworks, "127.0.0.0/8 [::1]/128");
	test_assert_strcmp(cfg.smtp_listen, "");
	test_assert_strcmp(cfg.smtpd_banner, "$myhostname ESMTP youju");
	test_assert_strcmp(cfg.recipient_delimiter, "+");
	test_assert(cfg.max_connections == 10000);
	test_assert(cfg.disable_plaintext_auth);
	test_assert(cfg.secure_loopback);
	test_assert(cfg.auth_failure_delay == 2);
	test_assert(cfg.auth_max_failures == 3);
	test_assert(cfg.message_size_limit == 52428800);
	test_assert(cfg.line_length_limit == 2048);
	test_assert(cfg.smtpd_timeout == 300);
	test_assert(cfg.pop3_timeout == 600);
	test_assert(cfg.pop3_expire == -1);
	config_free(&cfg);
	test_assert(cfg.data_dir == NULL && cfg.myhostname == NULL);
	test_end();
}

static void
test_config_file(void)
{
	static const char text[] =
		"# youju.conf for the tests\n"
		"\n"
		"myhostname = mx.example.org   # trailing comment\n"
		"  mydomain=example.org\n"
		"\t# an indented comment\n"
		"max_connections = 50\n"
		"disable_plaintext_auth = no\n"
		"secure_loopback = Off\n"
		"smtpd_timeout = 5m\n"
		"message_size_limit = 10m\n"
		"smtp_listen = 127.0.0.1:2525\n"
		"smtpd_banner = \n"
		"max_connections = 60\n";
	struct config cfg;
	struct yj_err err = { "" };
	char path[256];

	test_begin("config file");
	test_assert(load_text(&cfg, text, path, sizeof(path), &err) == 1);
	test_assert_strcmp(err.msg, "");
	test_assert_strcmp(cfg.myhostname, "mx.example.org");
	test_assert_strcmp(cfg.mydomain, "example.org");
	test_assert(cfg.max_connections == 60);		/* the last one wins */
	test_assert(!cfg.disable_plaintext_auth);
	test_assert(!cfg.secure_loopback);
	test_assert(cfg.smtpd_timeout == 300);
	test_assert(cfg.message_size_limit == 10 * 1024 * 1024);
	test_assert_strcmp(cfg.smtp_listen, "127.0.0.1:2525");
	test_assert_strcmp(cfg.smtpd_banner, "");
	test_assert(cfg.pop3_timeout == 600);		/* untouched */
	config_free(&cfg);
	test_end();
}

static void
test_config_file_errors(void)
{
	static const struct {
		const char *text;
		const char *want;	/* after "path:" */
	} cases[] = {
		{ "myhostname = a\n\nfoo = 1\n", "3: unknown key 'foo'" },
		{ "# only a comment\nmax_connections = lots\n",
		  "2: max_connections: 'lots' is not a number" },
		{ "max_connections = 12x\n", "1: max_connections: '12x' is not a valid value" },
		{ "max_connections = 0\n", "1: max_connections: 0 is out of range (1..1000000)" },
		{ "secure_loopback = maybe\n", "1: secure_loopback: 'maybe' is not yes or no" },
		{ "just words\n", "1: expected 'key = value'" },
		{ " = 3\n", "1: missing key before '='" },
	};

	test_begin("config file errors name file:line");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct config cfg;
		struct yj_err err = { "" };
		char path[256], want[512];

		test_assert(load_text(&cfg, cases[i].text, path, sizeof(path), &err) == -1);
		snprintf(want, sizeof(want), "%s:%s", path, cases[i].want);
		test_assert_strcmp(err.msg, want);
		config_free(&cfg);
	}
	test_end();
}

static void
test_config_file_missing_and_long(void)
{
	struct config cfg;
	struct yj_err err = { "" };
	char path[256], *text;

	test_begin("config missing file, overlong line");
	config_init(&cfg, "/d");
	test_assert(config_load(&cfg, "/nonexistent/youju.conf", &err) == -1);
	test_assert(strncmp(err.msg, "/nonexistent/youju.conf: ", 25) == 0);
	config_free(&cfg);

	text = malloc(20000);
	memset(text, 'x', 19998);
	memcpy(text, "smtpd_banner = ", 15);
	text[19998] = '\n';
	text[19999] = '\0';
	test_assert(load_text(&cfg, text, path, sizeof(path), &err) == -1);
	test_assert(strstr(err.msg, ":1: line too long") != NULL);
	config_free(&cfg);
	free(text);
	test_end();
}

/* config_set with the typed parsers: units and bounds. */
static void
test_config_numbers(void)
{
	static const struct {
		const char *key, *value;
		int ret;
		long want;
	} cases[] = {
		{ "message_size_limit", "10k", 1, 10240 },
		{ "message_size_limit", "10K", 1, 10240 },
		{ "message_size_limit", "3m", 1, 3L * 1024 * 1024 },
		{ "message_size_limit", "2g", 1, 2L * 1024 * 1024 * 1024 },
		{ "message_size_limit", "4096", 1, 4096 },
		{ "message_size_limit", "1023", -1, 0 },		/* below min */
		{ "message_size_limit", "10s", -1, 0 },		/* a time unit */
		{ "message_size_limit", "10kb", -1, 0 },
		{ "message_size_limit", "k", -1, 0 },
		{ "message_size_limit", "", -1, 0 },
		{ "message_size_limit", "99999999999999999999", -1, 0 },
		{ "message_size_limit", "9223372036854775807k", -1, 0 },	/* overflow */
		{ "smtpd_timeout", "30", 1, 30 },
		{ "smtpd_timeout", "30s", 1, 30 },
		{ "smtpd_timeout", "2m", 1, 120 },
		{ "smtpd_timeout", "2h", 1, 7200 },
		{ "smtpd_timeout", "1d", 1, 86400 },
		{ "smtpd_timeout", "1w", -1, 0 },		/* above max */
		{ "smtpd_timeout", "0", -1, 0 },		/* below min */
		{ "smtpd_timeout", "10k", -1, 0 },		/* a size unit */
		{ "smtpd_timeout", "-5", -1, 0 },
		{ "smtpd_timeout", "5 m", -1, 0 },
		{ "pop3_login_delay", "1w", -1, 0 },
		{ "auth_failure_delay", "1h", 1, 3600 },
		{ "max_connections", "7", 1, 7 },
		{ "max_connections", "7k", -1, 0 },		/* plain ints have no units */
		{ "max_connections", "0x10", -1, 0 },
		{ "pop3_expire", "-1", 1, -1 },
		{ "pop3_expire", "-2", -1, 0 },
		{ "line_length_limit", "1m", 1, 1024 * 1024 },
		{ "line_length_limit", "2m", -1, 0 },
	};

	test_begin("config numbers, units and bounds");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct config cfg;
		struct yj_err err = { "" };
		char option[128];
		FILE *fp;
		char *dump = NULL;
		size_t dumplen = 0;
		int ret;

		config_init(&cfg, "/d");
		snprintf(option, sizeof(option), "%s=%s", cases[i].key, cases[i].value);
		ret = config_set_option(&cfg, option, &err);
		test_assert(ret == cases[i].ret);
		if (ret != cases[i].ret)
			printf("  case %zu: %s: %s\n", i, option, err.msg);
		if (ret < 0) {
			test_assert(strncmp(err.msg, cases[i].key, strlen(cases[i].key)) == 0);
		} else {
			char want[160];

			/* read the value back through the dump, whatever its field */
			fp = open_memstream(&dump, &dumplen);
			config_dump(&cfg, fp);
			fclose(fp);
			snprintf(want, sizeof(want), "\n%s = %ld\n", cases[i].key, cases[i].want);
			test_assert(strstr(dump, want) != NULL);
			free(dump);
		}
		config_free(&cfg);
	}
	test_end();
}

static void
test_config_bools(void)
{
	static const struct {
		const char *value;
		int ret;
		bool want;
	} cases[] = {
		{ "yes", 1, true }, { "TRUE", 1, true }, { "on", 1, true }, { "1", 1, true },
		{ "no", 1, false }, { "False", 1, false }, { "off", 1, false }, { "0", 1, false },
		{ "", -1, false }, { "y", -1, false }, { "2", -1, false },
	};

	test_begin("config booleans");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct config cfg;
		struct yj_err err;

		config_init(&cfg, "/d");
		cfg.secure_loopback = !cases[i].want;
		test_assert(config_set(&cfg, "secure_loopback", cases[i].value, &err) ==
			    cases[i].ret);
		if (cases[i].ret == 1)
			test_assert(cfg.secure_loopback == cases[i].want);
		config_free(&cfg);
	}
	test_end();
}

static void
test_config_expand(void)
{
	struct config cfg;
	struct yj_err err = { "" };

	test_begin("config $name expansion");
	config_init(&cfg, "/d");
	test_assert(config_set(&cfg, "myhostname", "mx.example.org", &err) == 1);
	test_assert(config_set(&cfg, "smtp_listen", "${mydomain}-$myhostname:25", &err) == 1);
	test_assert(config_finish(&cfg, &err) == 1);
	test_assert_strcmp(cfg.mydomain, "example.org");	/* derived from myhostname */
	test_assert_strcmp(cfg.smtpd_banner, "mx.example.org ESMTP youju");
	test_assert_strcmp(cfg.smtp_listen, "example.org-mx.example.org:25");
	config_free(&cfg);

	config_init(&cfg, "/d");
	test_assert(config_set(&cfg, "myhostname", "mail.a.example", &err) == 1);
	test_assert(config_set(&cfg, "mydomain", "b.example", &err) == 1);
	test_assert(config_set(&cfg, "smtpd_banner", "$mydomain $ $mail_owner", &err) == 1);
	test_assert(config_finish(&cfg, &err) == -1);		/* "$ " names no key */
	config_free(&cfg);

	config_init(&cfg, "/d");
	test_assert(config_set(&cfg, "myhostname", "mail.a.example", &err) == 1);
	test_assert(config_set(&cfg, "mydomain", "b.example", &err) == 1);
	test_assert(config_set(&cfg, "smtpd_banner", "$mydomain ${mail_owner}!", &err) == 1);
	test_assert(config_finish(&cfg, &err) == 1);
	test_assert_strcmp(cfg.mydomain, "b.example");		/* set, so kept */
	test_assert_strcmp(cfg.smtpd_banner, "b.example youju!");
	config_free(&cfg);
	test_end();
}

static void
test_config_expand_errors(void)
{
	static const struct {
		const char *banner, *want;
	} cases[] = {
		{ "$nosuchkey x", "unknown key '$nosuchkey' in '$nosuchkey x'" },
		{ "${myhostname", "unterminated ${ in '${myhostname'" },
		{ "$max_connections", "unknown key '$max_connections' in '$max_connections'" },
	};

	test_begin("config $name expansion errors");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct config cfg;
		struct yj_err err = { "" };

		config_init(&cfg, "/d");
		test_assert(config_set(&cfg, "myhostname", "mx.example.org", &err) == 1);
		test_assert(config_set(&cfg, "smtpd_banner", cases[i].banner, &err) == 1);
		test_assert(config_finish(&cfg, &err) == -1);
		test_assert_strcmp(err.msg, cases[i].want);
		config_free(&cfg);
	}
	test_end();
}

static void
test_config_option(void)
{
	struct config cfg;
	struct yj_err err = { "" };

	test_begin("config -o key=value");
	config_init(&cfg, "/d");
	test_assert(config_set_option(&cfg, "smtpd_timeout=30s", &err) == 1);
	test_assert(cfg.smtpd_timeout == 30);
	test_assert(config_set_option(&cfg, "smtpd_banner=a = b", &err) == 1);
	test_assert_strcmp(cfg.smtpd_banner, "a = b");
	test_assert(config_set_option(&cfg, "smtp_listen=", &err) == 1);
	test_assert_strcmp(cfg.smtp_listen, "");
	test_assert(config_set_option(&cfg, "smtpd_timeout", &err) == -1);
	test_assert_strcmp(err.msg, "-o smtpd_timeout: expected key=value");
	test_assert(config_set_option(&cfg, "=30", &err) == -1);
	test_assert_strcmp(err.msg, "-o =30: bad key");
	test_assert(config_set_option(&cfg, "nosuchkey=1", &err) == -1);
	test_assert_strcmp(err.msg, "unknown key 'nosuchkey'");
	test_assert(config_set_option(&cfg, "smtpd_timeout=soon", &err) == -1);
	test_assert(cfg.smtpd_timeout == 30);		/* a failed set changes nothing */
	config_free(&cfg);
	test_end();
}

static void
test_config_recipient_delimiter(void)
{
	struct config cfg;
	struct yj_err err = { "" };

	test_begin("config recipient_delimiter check");
	config_init(&cfg, "/d");
	test_assert(config_set(&cfg, "myhostname", "mx", &err) == 1);
	test_assert(config_set(&cfg, "recipient_delimiter", "+-", &err) == 1);
	test_assert(config_finish(&cfg, &err) == 1);
	test_assert_strcmp(cfg.mydomain, "mx");		/* no dot: the host itself */
	test_assert(config_set(&cfg, "recipient_delimiter", "123456789", &err) == 1);
	test_assert(config_finish(&cfg, &err) == -1);
	config_free(&cfg);
	test_end();
}

static void
test_config_path(void)
{
	struct config cfg;
	char *p;

	test_begin("config_path");
	config_init(&cfg, "/var/lib/youju");
	p = config_path(&cfg, cfg.tls_cert_file);
	test_assert_strcmp(p, "/var/lib/youju/tls/cert.pem");
	free(p);
	p = config_path(&cfg, "/etc/ssl/key.pem");
	test_assert_strcmp(p, "/etc/ssl/key.pem");
	free(p);
	config_free(&cfg);
	test_end();
}

int
main(void)
{
	static void (*const tests[])(void) = {
		test_config_defaults,
		test_config_file,
		test_config_file_errors,
		test_config_file_missing_and_long,
		test_config_numbers,
		test_config_bools,
		test_config_expand,
		test_config_expand_errors,
		test_config_option,
		test_config_recipient_delimiter,
		test_config_path,
		NULL,
	};

	return test_run(tests);
}
