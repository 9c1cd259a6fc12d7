/* store_account.c - domains, accounts and aliases. */
#include "store/store-private.h"

#include <string.h>
#include <time.h>

#include "base/log.h"
#include "base/util.h"

/* ---- names ---- */

/* Text a name may hold: UTF-8 without controls, spaces or '@'. */
static bool
store_name_chars_ok(const char *s, size_t len)
{
	if (!util_utf8_valid(s, len))
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == ' ' || s[i] == '@')
			return false;
	}
	return true;
}

int
store_norm_domain(const char *in, char *out, size_t outlen, struct yj_err *err)
{
	size_t len = in != NULL ? strlen(in) : 0;

	if (len == 0)
		return yj_err_set(err, "empty domain name");
	if (len > STORE_DOMAIN_MAX || len >= outlen)
		return yj_err_set(err, "domain name too long");
	if (!store_name_chars_ok(in, len))
		return yj_err_set(err, "domain name has a space, '@' or control character");
	memcpy(out, in, len + 1);
	util_ascii_lower(out);
	return 1;
}

int
store_norm_address(const char *in, unsigned flags, char *out, size_t outlen,
		   const char **domain_r, struct yj_err *err)
{
	size_t len = in != NULL ? strlen(in) : 0;
	const char *at;
	size_t local_len;

	if (len == 0)
		return yj_err_set(err, "empty address");
	if (len > STORE_ADDRESS_MAX || len >= outlen)
		return yj_err_set(err, "address too long");
	/* Checked first, so that the messages below may quote the input. */
	if (!util_utf8_valid(in, len) || strchr(in, ' ') != NULL)
		return yj_err_set(err, "address has a space or control character");
	at = strrchr(in, '@');
	if (at == NULL)
		return yj_err_set(err, "address %s has no @domain", in);
	local_len = (size_t)(at - in);
	if (local_len == 0 && (flags & STORE_ADDR_CATCH_ALL) == 0)
		return yj_err_set(err, "address %s has an empty local part", in);
	/* '@' in a local part needs quoting, which accounts do not take. */
	if (memchr(in, '@', local_len) != NULL)
		return yj_err_set(err, "address %s has more than one @", in);
	if (store_norm_domain(at + 1, out + local_len + 1, outlen - local_len - 1, err) < 0)
		return -1;
	memcpy(out, in, local_len);
	out[local_len] = '\0';
	if ((flags & STORE_ADDR_KEEP_LOCAL) == 0)
		util_ascii_lower(out);
	out[local_len] = '@';
	if (domain_r != NULL)
		*domain_r = out + local_len + 1;
	return 1;
}

/* ---- domains ---- */

/* 1 with the id of domain name (normalised), 0 none, -1 error. */
static int
store_domain_id(struct store *st, const char *name, int64_t *id_r, struct yj_err *err)
{
	struct store_q *stmt = store_stmt(st, "SELECT id FROM domains WHERE name = ?1", err);
	int ret;

	if (stmt == NULL)
		return -1;
	store_bind_text(stmt, 1, name);
	ret = store_row(st, stmt, "domain lookup", err);
	if (ret == 1) {
		*id_r = store_col_i64(stmt, 0);
		store_reset(stmt);
	}
	return ret;
}

int
store_domain_add(struct store *st, const char *name, struct yj_err *err)
{
	char domain[STORE_DOMAIN_MAX + 1];
	struct store_q *stmt;

	if (store_norm_domain(name, domain, sizeof(domain), err) < 0)
		return -1;
	stmt = store_stmt(st, "INSERT INTO domains (name, created) VALUES (?1, ?2)", err);
	if (stmt == NULL)
		return -1;
	store_bind_text(stmt, 1, domain);
	store_bind_i64(stmt, 2, (int64_t)time(NULL));
	if (store_run(st, stmt, "add domain", err) < 0) {
		if (store_is_unique_violation(st))
			return yj_err_set(err, "domain %s already exists", domain);
		return -1;
	}
	return 1;
}

/* Inside a transaction: refuses while the domain is in use. */
static int
store_domain_del_locked(struct store *st, const char *domain, struct yj_err *err)
{
	static const char sql_users[] =
		"SELECT d.id,"
		" (SELECT count(*) FROM accounts a WHERE a.domain_id = d.id),"
		" (SELECT count(*) FROM aliases l WHERE l.domain_id = d.id)"
		" FROM domains d WHERE d.name = ?1";
	struct store_q *stmt = store_stmt(st, sql_users, err);
	int64_t id, accounts, aliases;
	int ret;

	if (stmt == NULL)
		return -1;
	store_bind_text(stmt, 1, domain);
	ret = store_row(st, stmt, "domain lookup", err);
	if (ret == 0)
		yj_err_set(err, "domain %s does not exist", domain);
	if (ret <= 0)
		return ret;
	id = store_col_i64(stmt, 0);
	accounts = store_col_i64(stmt, 1);
	aliases = store_col_i64(stmt, 2);
	store_reset(stmt);
	if (accounts > 0 || aliases > 0)
		return yj_err_set(err, "domain %s still has %lld accounts and %lld aliases",
				  domain, (long long)accounts, (long long)aliases);
	stmt = store_stmt(st, "DELETE FROM domains WHERE id = ?1", err);
	if (stmt == NULL)
		return -1;
	store_bind_i64(stmt, 1, id);
	return store_run(st, stmt, "delete domain", err);
}

int
store_domain_del(struct store *st, const char *name, struct yj_err *err)
{
	char domain[STORE_DOMAIN_MAX + 1];
	int ret;

	if (store_norm_domain(name, domain, sizeof(domain), err) < 0)
		return -1;
	if (store_begin(st, err) < 0)
		return -1;
	ret = store_domain_del_locked(st, domain, err);
	if (ret <= 0) {
		store_rollback(st);
		return ret;
	}
	return store_commit(st, err);
}

int
store_domain_exists(struct store *st, const char *name)
{
	char domain[STORE_DOMAIN_MAX + 1];
	struct yj_err err;
	int64_t id;
	int ret;

	/* A name that cannot be a domain is simply not one of ours. */
	if (store_norm_domain(name, domain, sizeof(domain), &err) < 0)
		return 0;
	ret = store_domain_id(st, domain, &id, &err);
	if (ret < 0)
		log_error("store: %s", err.msg);
	return ret;
}

int
store_domain_list(struct store *st, store_domain_cb *cb, void *ctx, struct yj_err *err)
{
	struct store_q *stmt = store_stmt(st, "SELECT name FROM domains ORDER BY name", err);
	int ret;

	if (stmt == NULL)
		return -1;
	while ((ret = store_row(st, stmt, "list domains", err)) == 1)
		cb(ctx, store_col_str(stmt, 0));
	return ret < 0 ? -1 : 1;
}

/* ---- accounts ---- */

static int
store_hash_ok(const char *hash, struct yj_err *err)
{
	size_t len = strlen(hash);

	if (len > STORE_HASH_MAX)
		return yj_err_set(err, "password hash too long");
	if (!util_utf8_valid(hash, len))
		return yj_err_set(err, "password hash has a control character");
	return 1;
}

/* Inside a transaction: the account row and its mailboxes. */
static int
store_account_add_locked(struct store *st, const char *address, const char *domain,
			 const char *hash, struct yj_err *err)
{
	static const char sql[] =
		"INSERT INTO accounts (domain_id, address, password_hash, created)"
		" VALUES (?1, ?2, ?3, ?4) RETURNING id";
	struct store_q *stmt;
	int64_t domain_id, id = 0;
	int ret;

	ret = store_domain_id(st, domain, &domain_id, err);
	if (ret == 0)
		return yj_err_set(err, "domain %s does not exist", domain);
	if (ret < 0 || (stmt = store_stmt(st, sql, err)) == NULL)
		return -1;
	store_bind_i64(stmt, 1, domain_id);
	store_bind_text(stmt, 2, address);
	store_bind_text(stmt, 3, hash);
	store_bind_i64(stmt, 4, (int64_t)time(NULL));
	if (store_insert_id(st, stmt, "add account", &id, err) < 0) {
		if (store_is_unique_violation(st))
			return yj_err_set(err, "account %s already exists", address);
		return -1;
	}
	return store_mailbox_create_defaults(st, id, err);
}

int
store_account_add(struct store *st, const char *address, const char *password_hash,
		  struct yj_err *err)
{
	char addr[STORE_ADDRESS_MAX + 1];
	const char *domain;

	if (password_hash == NULL)
		password_hash = "";
	if (store_norm_address(address, 0, addr, sizeof(addr), &domain, err) < 0 ||
	    store_hash_ok(password_hash, err) < 0)
		return -1;
	if (store_begin(st, err) < 0)
		return -1;
	if (store_account_add_locked(st, addr, domain, password_hash, err) < 0) {
		store_rollback(st);
		return -1;
	}
	return store_commit(st, err);
}

/* Inside a transaction: the account, and with it (ON DELETE CASCADE)
 * its mailboxes and messages; the triggers drop the blob refcounts. */
static int
store_account_del_locked(struct store *st, const char *address, struct store_idlist *dead,
			 struct yj_err *err)
{
	struct store_account acct;
	struct store_q *stmt;

	/* Each mailbox's deletion is a change IMAP sessions hear of. */
	if (store_account_lookup(st, address, &acct) == 1 &&
	    store_mailbox_delete_all(st, acct.id, dead, err) < 0)
		return -1;
	if ((stmt = store_stmt(st, "DELETE FROM accounts WHERE address = ?1", err)) == NULL)
		return -1;
	store_bind_text(stmt, 1, address);
	if (store_run(st, stmt, "delete account", err) < 0)
		return -1;
	if (store_changes(st) == 0) {
		yj_err_set(err, "account %s does not exist", address);
		return 0;
	}
	return store_blob_reap(st, dead, err);
}

int
store_account_del(struct store *st, const char *address, struct yj_err *err)
{
	char addr[STORE_ADDRESS_MAX + 1];
	struct store_idlist dead = { 0 };
	int ret;

	if (store_norm_address(address, 0, addr, sizeof(addr), NULL, err) < 0)
		return -1;
	if (store_begin(st, err) < 0)
		return -1;
	ret = store_account_del_locked(st, addr, &dead, err);
	if (ret <= 0 || store_commit(st, err) < 0) {
		store_rollback(st);
		store_idlist_free(&dead);
		return ret <= 0 ? ret : -1;
	}
	store_blob_unlink_list(st, &dead);
	return 1;
}

/* Runs sql ("UPDATE accounts SET x = ?1 WHERE address = ?2") for one
 * account. 1, 0 if there is no such account, -1 on error. */
static int
store_account_update(struct store *st, const char *sql, const char *what, const char *address,
		     const char *value, struct yj_err *err)
{
	char addr[STORE_ADDRESS_MAX + 1];
	struct store_q *stmt;

	if (store_norm_address(address, 0, addr, sizeof(addr), NULL, err) < 0)
		return -1;
	if ((stmt = store_stmt(st, sql, err)) == NULL)
		return -1;
	store_bind_text(stmt, 1, value);
	store_bind_text(stmt, 2, addr);
	if (store_run(st, stmt, what, err) < 0)
		return -1;
	if (store_changes(st) == 0) {
		yj_err_set(err, "account %s does not exist", addr);
		return 0;
	}
	return 1;
}

int
store_account_set_password(struct store *st, const char *address, const char *password_hash,
			   struct yj_err *err)
{
	if (password_hash == NULL)
		password_hash = "";
	if (store_hash_ok(password_hash, err) < 0)
		return -1;
	return store_account_update(st, "UPDATE accounts SET password_hash = ?1 WHERE address = ?2",
				    "set password", address, password_hash, err);
}

/* Columns 0..2 of a row: id, address, password_hash. */
static void
store_account_read(struct store_q *stmt, void *out)
{
	struct store_account *acct = out;

	acct->id = store_col_i64(stmt, 0);
	store_col_text(stmt, 1, acct->address, sizeof(acct->address));
	store_col_text(stmt, 2, acct->password_hash, sizeof(acct->password_hash));
}

int
store_account_lookup(struct store *st, const char *address, struct store_account *acct_r)
{
	static const char sql[] =
		"SELECT id, address, password_hash FROM accounts WHERE address = ?1";
	char addr[STORE_ADDRESS_MAX + 1];
	struct store_q *stmt;
	struct yj_err err;
	int ret;

	/* Not an address we could have stored: no such account. */
	if (store_norm_address(address, 0, addr, sizeof(addr), NULL, &err) < 0)
		return 0;
	if ((stmt = store_stmt(st, sql, &err)) == NULL) {
		log_error("store: %s", err.msg);
		return -1;
	}
	store_bind_text(stmt, 1, addr);
	ret = store_one(st, stmt, "account lookup", store_account_read, acct_r, &err);
	if (ret < 0)
		log_error("store: %s", err.msg);
	return ret;
}

static int
store_account_list_stmt(struct store *st, const char *domain, struct store_q **stmt_r,
			struct yj_err *err)
{
	static const char sql_all[] =
		"SELECT id, address, password_hash FROM accounts ORDER BY address";
	static const char sql_domain[] =
		"SELECT a.id, a.address, a.password_hash FROM accounts a"
		" WHERE a.domain_id = ?1 ORDER BY a.address";
	int64_t domain_id;
	int ret;

	if (domain == NULL) {
		*stmt_r = store_stmt(st, sql_all, err);
		return *stmt_r != NULL ? 1 : -1;
	}
	ret = store_domain_id(st, domain, &domain_id, err);
	if (ret == 0)
		yj_err_set(err, "domain %s does not exist", domain);
	if (ret <= 0)
		return ret;
	if ((*stmt_r = store_stmt(st, sql_domain, err)) == NULL)
		return -1;
	store_bind_i64(*stmt_r, 1, domain_id);
	return 1;
}

int
store_account_list(struct store *st, const char *domain, store_account_cb *cb, void *ctx,
		   struct yj_err *err)
{
	char dom[STORE_DOMAIN_MAX + 1];
	struct store_account acct;
	struct store_q *stmt;
	int ret;

	if (domain != NULL) {
		if (store_norm_domain(domain, dom, sizeof(dom), err) < 0)
			return -1;
		domain = dom;
	}
	ret = store_account_list_stmt(st, domain, &stmt, err);
	if (ret <= 0)
		return ret;
	while ((ret = store_row(st, stmt, "list accounts", err)) == 1) {
		store_account_read(stmt, &acct);
		cb(ctx, &acct);
	}
	return ret < 0 ? -1 : 1;
}

/* ---- aliases ---- */

/* An alias's address (local@domain or @domain) and, if not NULL, its
 * target (any address, remote ones too), into buffers of
 * STORE_ADDRESS_MAX + 1 bytes. */
static int
store_norm_alias(const char *address, const char *target, char *addr, char *tgt,
		 const char **domain_r, struct yj_err *err)
{
	const size_t len = STORE_ADDRESS_MAX + 1;

	if (store_norm_address(address, STORE_ADDR_CATCH_ALL, addr, len, domain_r, err) < 0)
		return -1;
	if (target != NULL &&
	    store_norm_address(target, STORE_ADDR_KEEP_LOCAL, tgt, len, NULL, err) < 0)
		return -1;
	return 1;
}

int
store_alias_add(struct store *st, const char *address, const char *target,
		struct yj_err *err)
{
	static const char sql[] =
		"INSERT INTO aliases (domain_id, address, target) VALUES (?1, ?2, ?3)";
	char addr[STORE_ADDRESS_MAX + 1], tgt[STORE_ADDRESS_MAX + 1];
	const char *domain;
	struct store_q *stmt;
	int64_t domain_id;
	int ret;

	if (target == NULL)
		return yj_err_set(err, "alias without a target");
	if (store_norm_alias(address, target, addr, tgt, &domain, err) < 0)
		return -1;
	ret = store_domain_id(st, domain, &domain_id, err);
	if (ret == 0)
		return yj_err_set(err, "domain %s does not exist", domain);
	if (ret < 0 || (stmt = store_stmt(st, sql, err)) == NULL)
		return -1;
	store_bind_i64(stmt, 1, domain_id);
	store_bind_text(stmt, 2, addr);
	store_bind_text(stmt, 3, tgt);
	if (store_run(st, stmt, "add alias", err) < 0) {
		if (store_is_unique_violation(st))
			return yj_err_set(err, "alias %s -> %s already exists", addr, tgt);
		/* The domain was deleted between the two statements. */
		return -1;
	}
	return 1;
}

int
store_alias_del(struct store *st, const char *address, const char *target,
		struct yj_err *err)
{
	static const char sql_one[] = "DELETE FROM aliases WHERE address = ?1 AND target = ?2";
	static const char sql_all[] = "DELETE FROM aliases WHERE address = ?1";
	char addr[STORE_ADDRESS_MAX + 1], tgt[STORE_ADDRESS_MAX + 1];
	struct store_q *stmt;
	int64_t deleted;

	if (store_norm_alias(address, target, addr, tgt, NULL, err) < 0)
		return -1;
	if ((stmt = store_stmt(st, target != NULL ? sql_one : sql_all, err)) == NULL)
		return -1;
	store_bind_text(stmt, 1, addr);
	if (target != NULL)
		store_bind_text(stmt, 2, tgt);
	if (store_run(st, stmt, "delete alias", err) < 0)
		return -1;
	deleted = store_changes(st);
	/* Owners go with the alias's last target: one made again later has
	 * none until they are named again. */
	if (deleted > 0 && store_alias_owners_gone(st, addr, err) < 0)
		return -1;
	if (deleted == 0) {
		if (target != NULL)
			yj_err_set(err, "no alias %s -> %s", addr, tgt);
		else
			yj_err_set(err, "no alias %s", addr);
		return 0;
	}
	return 1;
}

int
store_alias_lookup(struct store *st, const char *address, store_alias_cb *cb, void *ctx)
{
	static const char sql[] = "SELECT target FROM aliases WHERE address = ?1 ORDER BY id";
	char addr[STORE_ADDRESS_MAX + 1];
	struct store_q *stmt;
	struct yj_err err;
	int ret, found = 0;

	if (store_norm_alias(address, NULL, addr, NULL, NULL, &err) < 0)
		return 0;
	if ((stmt = store_stmt(st, sql, &err)) == NULL) {
		log_error("store: %s", err.msg);
		return -1;
	}
	store_bind_text(stmt, 1, addr);
	while ((ret = store_row(st, stmt, "alias lookup", &err)) == 1) {
		found = 1;
		cb(ctx, addr, store_col_str(stmt, 0));
	}
	if (ret < 0) {
		log_error("store: %s", err.msg);
		return -1;
	}
	return found;
}

int
store_alias_list(struct store *st, store_alias_cb *cb, void *ctx, struct yj_err *err)
{
	static const char sql[] = "SELECT address, target FROM aliases ORDER BY address, id";
	struct store_q *stmt = store_stmt(st, sql, err);
	int ret;

	if (stmt == NULL)
		return -1;
	while ((ret = store_row(st, stmt, "list aliases", err)) == 1)
		cb(ctx, store_col_str(stmt, 0),
		   store_col_str(stmt, 1));
	return ret < 0 ? -1 : 1;
}

int
store_account_set_imap_disable(struct store *st, const char *address, const char *caps,
			       struct yj_err *err)
{
	if (strlen(caps) > STORE_IMAP_DISABLE_MAX)
		return yj_err_set(err, "the capability list is longer than %d bytes",
				  STORE_IMAP_DISABLE_MAX);
	return store_account_update(st, "UPDATE accounts SET imap_disable = ?1 WHERE address = ?2",
				    "set imap_disable", address, caps, err);
}

struct store_text_out {
	char *out;
	size_t outlen;
};

static void
store_text_read(struct store_q *stmt, void *arg)
{
	struct store_text_out *t = arg;

	store_col_text(stmt, 0, t->out, t->outlen);
}

int
store_account_imap_disable(struct store *st, int64_t account_id, char *out, size_t outlen)
{
	static const char sql[] = "SELECT imap_disable FROM accounts WHERE id = ?1";
	struct store_text_out t = { out, outlen };
	struct store_q *stmt;
	struct yj_err err;
	int ret;

	out[0] = '\0';
	if ((stmt = store_stmt(st, sql, &err)) == NULL) {
		log_error("store: %s", err.msg);
		return -1;
	}
	store_bind_i64(stmt, 1, account_id);
	ret = store_one(st, stmt, "account imap_disable", store_text_read, &t, &err);
	if (ret < 0)
		log_error("store: %s", err.msg);
	return ret;
}
