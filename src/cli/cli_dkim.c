/* cli_dkim.c - youju dkim keygen|list|remove: the DKIM keys a domain
 * signs with; and the hidden sign|verify, which run the DKIM code on a
 * file (for tests and for checking a key against another tool). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "mailauth/dkim.h"
#include "mailauth/dkim_hdr.h"
#include "mailauth/dkim_keys.h"
#include "mailauth/dkim_zone.h"

#define MSG_FILE_MAX (64 * 1024 * 1024)
#define TXT_STRING_MAX 255	/* one DNS character-string */
#define RECORD_MAX 4096

static int
parse_alg(const char *s, enum dkim_key_alg *alg)
{
	if (s == NULL || strcmp(s, "rsa") == 0)
		*alg = DKIM_KEY_RSA;
	else if (strcmp(s, "ed25519") == 0)
		*alg = DKIM_KEY_ED25519;
	else
		return -1;
	return 1;
}

/* "rsa-20261130" or "ed25519-20261130": a new name for each day. */
static void
default_selector(enum dkim_key_alg alg, char *out, size_t outlen)
{
	time_t now = time(NULL);
	struct tm tm;
	char day[16];

	gmtime_r(&now, &tm);
	strftime(day, sizeof(day), "%Y%m%d", &tm);
	snprintf(out, outlen, "%s-%s", alg == DKIM_KEY_ED25519 ? "ed25519" : "rsa", day);
}

/* The record as a zone file line, split into 255-byte strings. */
static void
print_record(const char *selector, const char *domain, const char *rec)
{
	size_t len = strlen(rec);

	printf("%s._domainkey.%s. IN TXT (", selector, domain);
	for (size_t i = 0; i < len; i += TXT_STRING_MAX) {
		size_t n = len - i < TXT_STRING_MAX ? len - i : TXT_STRING_MAX;
		printf("\n    \"%.*s\"", (int)n, rec + i);
	}
	printf(" )\n");
}

int
cli_dkim_keygen(struct cli *c, int argc, char **argv)
{
	char domain[CLI_DOMAIN_MAX + 1], sel[DKIM_SELECTOR_MAX + 1], rec[RECORD_MAX];
	enum dkim_key_alg alg;
	struct yj_err err;
	EVP_PKEY *pkey;

	if (parse_alg(c->opts.algorithm, &alg) < 0)
		return cli_fail("unknown algorithm '%s' (rsa or ed25519)", c->opts.algorithm);
	if (cli_domain_norm(argv[0], domain, sizeof(domain), &err) < 0 ||
	    cli_need_local_domain(c, domain, &err) < 0)
		return cli_fail("%s", err.msg);
	if (c->opts.selector != NULL)
		snprintf(sel, sizeof(sel), "%s", c->opts.selector);
	else
		default_selector(alg, sel, sizeof(sel));
	if (c->opts.selector != NULL && strlen(c->opts.selector) >= sizeof(sel))
		return cli_fail("selector too long");
	pkey = dkim_keys_create(c->data_dir, domain, sel, alg, &err);
	if (pkey == NULL)
		return cli_fail("%s", err.msg);
	if (dkim_keys_record(pkey, rec, sizeof(rec)) < 0) {
		EVP_PKEY_free(pkey);
		return cli_fail("cannot format the DNS record");
	}
	EVP_PKEY_free(pkey);
	printf("made %s key %s/%s/%s/%s.key\n", alg == DKIM_KEY_ED25519 ? "Ed25519" : "RSA-2048",
	       c->data_dir, DKIM_KEYS_DIR, domain, sel);
	printf("publish this TXT record now; mail for %s is signed with the newest key:\n",
	       domain);
	print_record(sel, domain, rec);
	return CLI_EXIT_OK;
}

static int
list_domain(struct cli *c, const char *domain)
{
	struct dkim_key_info keys[DKIM_KEYS_PER_DOMAIN_MAX];
	struct yj_err err;
	int n = dkim_keys_list(c->data_dir, domain, keys, DKIM_KEYS_PER_DOMAIN_MAX, &err);

	if (n < 0)
		return cli_fail("%s", err.msg);
	for (int i = 0; i < n; i++) {
		char when[32];
		struct tm tm;
		gmtime_r(&keys[i].mtime, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		printf("%s %s %s-%u %s\n", domain, keys[i].selector,
		       keys[i].alg == DKIM_KEY_ED25519 ? "ed25519" : "rsa", keys[i].bits, when);
	}
	return CLI_EXIT_OK;
}

int
cli_dkim_list(struct cli *c, int argc, char **argv)
{
	char domain[CLI_DOMAIN_MAX + 1];
	struct yj_err err;
	char *dir;
	DIR *d;
	struct dirent *de;
	int rc = CLI_EXIT_OK;

	if (argc == 1) {
		if (cli_domain_norm(argv[0], domain, sizeof(domain), &err) < 0)
			return cli_fail("%s", err.msg);
		return list_domain(c, domain);
	}
	dir = cli_dir_path(c, DKIM_KEYS_DIR);
	d = opendir(dir);
	free(dir);
	if (d == NULL)
		return errno == ENOENT ? CLI_EXIT_OK : cli_fail("cannot read the key directory");
	while (rc == CLI_EXIT_OK && (de = readdir(d)) != NULL) {
		if (de->d_name[0] != '.')
			rc = list_domain(c, de->d_name);
	}
	closedir(d);
	return rc;
}

int
cli_dkim_remove(struct cli *c, int argc, char **argv)
{
	char domain[CLI_DOMAIN_MAX + 1];
	struct yj_err err;
	int rc;

	if (cli_domain_norm(argv[0], domain, sizeof(domain), &err) < 0)
		return cli_fail("%s", err.msg);
	rc = dkim_keys_remove(c->data_dir, domain, argv[1], &err);
	if (rc < 0)
		return cli_fail("%s", err.msg);
	if (rc == 0)
		return cli_fail("%s has no DKIM key %s", domain, argv[1]);
	printf("removed DKIM key %s of %s; its DNS record can go now\n", argv[1], domain);
	return CLI_EXIT_OK;
}

/* A message from a file (or stdin for "-" or none), bare LFs made CRLF
 * as they would be over SMTP. */
static char *
read_message(const char *path, size_t *len_r, struct yj_err *err)
{
	FILE *f = path == NULL || strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	char *msg = NULL;
	size_t len = 0, cap = 0;
	int ch, prev = 0;

	if (f == NULL) {
		yj_err_errno(err, "cannot open %s", path);
		return NULL;
	}
	while ((ch = getc(f)) != EOF) {
		if (len + 3 > cap) {
			cap = cap == 0 ? 65536 : cap * 2;
			if (cap > MSG_FILE_MAX + 3 || (msg = realloc(msg, cap)) == NULL) {
				yj_err_set(err, "message larger than %d bytes", MSG_FILE_MAX);
				free(msg);
				msg = NULL;
				break;
			}
		}
		if (ch == '\n' && prev != '\r')
			msg[len++] = '\r';
		msg[len++] = (char)ch;
		prev = ch;
	}
	if (f != stdin)
		fclose(f);
	if (msg != NULL)
		*len_r = len;
	else if (len == 0 && cap == 0)
		yj_err_set(err, "empty message");
	return msg;
}

int
cli_dkim_sign(struct cli *c, int argc, char **argv)
{
	struct dkim_sign_key key = { .domain = c->opts.domain, .selector = c->opts.selector };
	struct dkim_sign_opts o = { .keys = &key, .n_keys = 1 };
	size_t len = 0, hdr_len, body_off;
	struct dkim_signer *s;
	struct yj_err err;
	struct buf out;
	char *msg;
	int rc;

	if (c->opts.domain == NULL || c->opts.selector == NULL || c->opts.key == NULL)
		return cli_fail("dkim sign needs --domain, --selector and --key");
	key.pkey = dkim_key_load(c->opts.key, &err);
	if (key.pkey == NULL)
		return cli_fail("%s", err.msg);
	msg = read_message(argc > 0 ? argv[0] : NULL, &len, &err);
	if (msg == NULL) {
		EVP_PKEY_free(key.pkey);
		return cli_fail("%s", err.msg);
	}
	dkim_msg_split(msg, len, &hdr_len, &body_off);
	s = dkim_signer_new(&o, msg, hdr_len);
	dkim_signer_body(s, msg + body_off, len - body_off);
	buf_init(&out, 65536);
	rc = dkim_signer_finish(s, &out, &err);
	if (rc == 1)
		rc = fwrite(out.data, 1, out.len, stdout) == out.len &&
		     fwrite(msg, 1, len, stdout) == len ? 1 : yj_err_set(&err, "write failed");
	dkim_signer_free(s);
	buf_free(&out);
	free(msg);
	EVP_PKEY_free(key.pkey);
	return rc == 1 ? CLI_EXIT_OK : cli_fail("%s", err.msg);
}

int
cli_dkim_verify(struct cli *c, int argc, char **argv)
{
	struct dkim_verify_opts o = { .now = 0 };
	struct dkim_result res[DKIM_SIGS_MAX];
	struct dkim_zone z;
	struct yj_err err;
	size_t len = 0, n;
	bool all_pass = true;
	char *msg;

	if (c->opts.dns == NULL)
		return cli_fail("dkim verify needs --dns FILE");
	dkim_zone_init(&z);
	if (dkim_zone_load(&z, c->opts.dns, &err) < 0 ||
	    (msg = read_message(argc > 0 ? argv[0] : NULL, &len, &err)) == NULL) {
		dkim_zone_free(&z);
		return cli_fail("%s", err.msg);
	}
	n = dkim_verify_message(&o, &z.resolver, msg, len, res, DKIM_SIGS_MAX);
	for (size_t i = 0; i < n; i++) {
		printf("dkim=%s header.d=%s header.i=%s header.s=%s header.b=%s%s%s%s\n",
		       dkim_status_name(res[i].status), res[i].d, res[i].i, res[i].s,
		       res[i].b_prefix, res[i].reason[0] ? " (" : "", res[i].reason,
		       res[i].reason[0] ? ")" : "");
		all_pass &= res[i].status == DKIM_PASS;
	}
	if (n == 0)
		printf("dkim=none\n");
	free(msg);
	dkim_zone_free(&z);
	return n > 0 && all_pass ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}
