/* cli_account.c - youju account add|list|del|passwd|set|quota. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/config.h"
#include "cli/cli.h"

/* Normalises the address and checks its domain is ours. */
static int
cli_account_address(struct cli *c, const char *in, char *out, size_t outlen,
		    struct yj_err *err)
{
	const char *domain;

	if (cli_address_norm(in, false, out, outlen, &domain, err) < 0)
		return -1;
	return cli_need_local_domain(c, domain, err);
}

static void
cli_account_no_target(void *ctx, const char *address, const char *target)
{
}

/* RFC 5321 4.5.1: a domain must accept mail for postmaster. The first
 * account of a domain that has none becomes its postmaster, through an
 * alias the admin can change. */
static void
cli_account_postmaster(struct cli *c, const char *address)
{
	char postmaster[STORE_ADDRESS_MAX + 1];
	struct store_account acct;
	struct yj_err err;
	const char *at = strrchr(address, '@');

	if (at == NULL || snprintf(postmaster, sizeof(postmaster), "postmaster%s", at) >=
			      (int)sizeof(postmaster))
		return;
	if (strcmp(postmaster, address) == 0 ||
	    store_account_lookup(c->st, postmaster, &acct) != 0 ||
	    store_alias_lookup(c->st, postmaster, cli_account_no_target, NULL) != 0)
		return;
	if (store_alias_add(c->st, postmaster, address, &err) < 0) {
		fprintf(stderr, "youju: warning: %s has no postmaster: %s\n", at + 1, err.msg);
		return;
	}
	printf("added alias %s -> %s (every domain needs a postmaster)\n", postmaster, address);
}

int
cli_account_add(struct cli *c, int argc, char **argv)
{
	char address[STORE_ADDRESS_MAX + 1], hash[STORE_HASH_MAX + 1];
	char generated[CLI_GENERATED_PASSWORD_LEN + 1];
	struct store_account acct;
	struct yj_err err;
	int rc;

	if (cli_account_address(c, argv[0], address, sizeof(address), &err) < 0)
		return cli_fail("%s", err.msg);
	rc = store_account_lookup(c->st, address, &acct);
	if (rc < 0)
		return cli_fail("cannot look up account %s in the database", address);
	if (rc > 0)
		return cli_fail("account %s already exists", address);
	/* Asked only now, so nobody types a password for an add that fails. */
	if (cli_password_from_opts(c, hash, sizeof(hash), generated, &err) < 0)
		return cli_fail("%s", err.msg);
	rc = store_account_add(c->st, address, hash, &err);
	explicit_bzero(hash, sizeof(hash));
	if (rc < 0)
		return cli_fail("%s", err.msg);
	printf("added account %s\n", address);
	if (generated[0] != '\0')
		printf("password: %s\n", generated);
	explicit_bzero(generated, sizeof(generated));
	cli_account_postmaster(c, address);
	return CLI_EXIT_OK;
}

/* "used 1200 of 524288000 bytes (0%)", or "used 1200 bytes, no quota". */
static void
cli_quota_text(const struct store_quota *q, char *out, size_t outlen)
{
	if (q->limit == STORE_QUOTA_NONE) {
		snprintf(out, outlen, "used %llu bytes, no quota", (unsigned long long)q->used);
		return;
	}
	snprintf(out, outlen, "used %llu of %lld bytes (%llu%%)", (unsigned long long)q->used,
		 (long long)q->limit,
		 q->limit > 0 ? (unsigned long long)(q->used * 100 / (uint64_t)q->limit) : 100ull);
}

/* One account a line; a quota, where set, after the address. */
static void
cli_account_print(void *ctx, const struct store_account *acct)
{
	struct cli *c = ctx;
	struct store_quota q;
	struct yj_err err;
	char text[128];

	if (store_quota_get(c->st, acct->id, &q, &err) == 1 && q.limit != STORE_QUOTA_NONE) {
		cli_quota_text(&q, text, sizeof(text));
		printf("%s\tquota: %s\n", acct->address, text);
	} else {
		printf("%s\n", acct->address);
	}
}

int
cli_account_list(struct cli *c, int argc, char **argv)
{
	char domain[CLI_DOMAIN_MAX + 1];
	struct yj_err err;

	if (argc > 0) {
		if (cli_domain_norm(argv[0], domain, sizeof(domain), &err) < 0 ||
		    cli_need_local_domain(c, domain, &err) < 0)
			return cli_fail("%s", err.msg);
	}
	if (store_account_list(c->st, argc > 0 ? domain : NULL, cli_account_print, c, &err) < 0)
		return cli_fail("%s", err.msg);
	return CLI_EXIT_OK;
}

int
cli_account_del(struct cli *c, int argc, char **argv)
{
	char address[STORE_ADDRESS_MAX + 1];
	struct store_account acct;
	struct yj_err err;

	if (cli_address_norm(argv[0], false, address, sizeof(address), NULL, &err) < 0 ||
	    cli_need_account(c, address, &acct, &err) < 0)
		return cli_fail("%s", err.msg);
	if (store_account_del(c->st, address, &err) < 0)
		return cli_fail("%s", err.msg);
	printf("deleted account %s\n", address);
	return CLI_EXIT_OK;
}

int
cli_account_passwd(struct cli *c, int argc, char **argv)
{
	char address[STORE_ADDRESS_MAX + 1], hash[STORE_HASH_MAX + 1];
	char generated[CLI_GENERATED_PASSWORD_LEN + 1];
	struct store_account acct;
	struct yj_err err;
	int rc;

	if (cli_address_norm(argv[0], false, address, sizeof(address), NULL, &err) < 0 ||
	    cli_need_account(c, address, &acct, &err) < 0)
		return cli_fail("%s", err.msg);
	explicit_bzero(acct.password_hash, sizeof(acct.password_hash));
	if (cli_password_from_opts(c, hash, sizeof(hash), generated, &err) < 0)
		return cli_fail("%s", err.msg);
	rc = store_account_set_password(c->st, address, hash, &err);
	explicit_bzero(hash, sizeof(hash));
	if (rc < 0)
		return cli_fail("%s", err.msg);
	printf("changed the password of %s\n", address);
	if (generated[0] != '\0')
		printf("password: %s\n", generated);
	explicit_bzero(generated, sizeof(generated));
	return CLI_EXIT_OK;
}

/* "condstore, QRESYNC" -> "CONDSTORE QRESYNC". Names are capability
 * atoms; which ones can be switched off is the IMAP server's business. */
static int
cli_caps_norm(const char *in, char *out, size_t outlen, struct yj_err *err)
{
	size_t n = 0;

	for (const char *p = in; *p != '\0'; p++) {
		unsigned char ch = (unsigned char)*p;

		if (ch == ',' || ch == ' ') {
			if (n > 0 && out[n - 1] != ' ')
				out[n++] = ' ';
		} else if (isalnum(ch) || ch == '=' || ch == '+' || ch == '-' || ch == '.') {
			out[n++] = (char)toupper(ch);
		} else {
			return yj_err_set(err, "'%s' is not a list of capability names", in);
		}
		if (n + 1 >= outlen)
			return yj_err_set(err, "the capability list is too long");
	}
	while (n > 0 && out[n - 1] == ' ')
		n--;
	out[n] = '\0';
	return 1;
}

int
cli_account_set(struct cli *c, int argc, char **argv)
{
	char address[STORE_ADDRESS_MAX + 1], caps[STORE_IMAP_DISABLE_MAX + 1];
	struct store_account acct;
	struct yj_err err;

	if (strcmp(argv[1], "imap_disable") != 0)
		return cli_fail("unknown account setting '%s' (known: imap_disable)", argv[1]);
	if (cli_address_norm(argv[0], false, address, sizeof(address), NULL, &err) < 0 ||
	    cli_need_account(c, address, &acct, &err) < 0 ||
	    cli_caps_norm(argc > 2 ? argv[2] : "", caps, sizeof(caps), &err) < 0)
		return cli_fail("%s", err.msg);
	explicit_bzero(acct.password_hash, sizeof(acct.password_hash));
	if (store_account_set_imap_disable(c->st, address, caps, &err) <= 0)
		return cli_fail("%s", err.msg);
	if (caps[0] != '\0')
		printf("IMAP capabilities switched off for %s: %s\n", address, caps);
	else
		printf("all IMAP capabilities on for %s\n", address);
	return CLI_EXIT_OK;
}

/* The largest quota: what fits the store's 64-bit counters with room. */
#define CLI_QUOTA_MAX (1L << 50)

int
cli_account_quota(struct cli *c, int argc, char **argv)
{
	char address[STORE_ADDRESS_MAX + 1], text[128];
	struct store_account acct;
	struct store_quota q;
	struct yj_err err;
	long limit = STORE_QUOTA_NONE;

	if (cli_address_norm(argv[0], false, address, sizeof(address), NULL, &err) < 0 ||
	    cli_need_account(c, address, &acct, &err) < 0)
		return cli_fail("%s", err.msg);
	explicit_bzero(acct.password_hash, sizeof(acct.password_hash));
	if (argc > 1 && strcasecmp(argv[1], "none") != 0 &&
	    config_parse_size("quota", argv[1], CLI_QUOTA_MAX, &limit, &err) < 0)
		return cli_fail("%s", err.msg);
	if (argc > 1 && store_quota_set(c->st, address, limit, &err) != 1)
		return cli_fail("%s", err.msg);
	if (store_quota_get(c->st, acct.id, &q, &err) != 1)
		return cli_fail("%s", err.msg);
	cli_quota_text(&q, text, sizeof(text));
	printf("%s: %s\n", address, text);
	return CLI_EXIT_OK;
}
