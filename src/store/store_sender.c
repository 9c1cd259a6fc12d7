/* store_sender.c - sender rules for submission: addresses and domains an
 * account may send as, and the owners of aliases. */
#include "store/store-private.h"

#include <stdio.h>
#include <string.h>

#include "base/log.h"

/* The account's id: 1, 0 (err says there is none), -1. */
static int
store_sender_account(struct store *st, const char *account, int64_t *id_r, struct yj_err *err)
{
	struct store_account acct;
	int ret = store_account_lookup(st, account, &acct);

	if (ret < 0)
		return yj_err_set(err, "store: account lookup failed");
	if (ret == 0) {
		yj_err_set(err, "account %s does not exist", account);
		return 0;
	}
	*id_r = acct.id;
	return 1;
}

/* Runs one statement binding (id, text) as ?1 and ?2 in the order
 * text_first says. 1 changed a row, 0 none, -1. */
static int
store_sender_run(struct store *st, const char *sql, int64_t id, const char *text,
		 bool text_first, const char *what, struct yj_err *err)
{
	struct store_q *stmt = store_stmt(st, sql, err);

	if (stmt == NULL)
		return -1;
	store_bind_i64(stmt, text_first ? 2 : 1, id);
	store_bind_text(stmt, text_first ? 1 : 2, text);
	if (store_run(st, stmt, what, err) < 0)
		return -1;
	return store_changes(st) > 0 ? 1 : 0;
}

/* Normalises pattern (user@dom or @dom) into pat and finds the
 * account's id: 1, 0 (err says there is no such account), -1. */
static int
store_sender_rule_of(struct store *st, const char *account, const char *pattern,
		     char pat[STORE_ADDRESS_MAX + 1], int64_t *id_r, struct yj_err *err)
{
	if (store_norm_address(pattern, STORE_ADDR_CATCH_ALL, pat, STORE_ADDRESS_MAX + 1, NULL,
			       err) < 0)
		return -1;
	return store_sender_account(st, account, id_r, err);
}

int
store_sender_add(struct store *st, const char *account, const char *pattern,
		 struct yj_err *err)
{
	char pat[STORE_ADDRESS_MAX + 1];
	int64_t id = 0;
	int ret = store_sender_rule_of(st, account, pattern, pat, &id, err);

	if (ret <= 0)
		return ret;
	ret = store_sender_run(st, "INSERT INTO account_senders (account_id, pattern)"
			       " VALUES (?1, ?2)", id, pat, false, "add sender", err);
	if (ret < 0 && store_is_unique_violation(st))
		return yj_err_set(err, "%s may already send as %s", account, pat);
	return ret < 0 ? -1 : 1;
}

int
store_sender_remove(struct store *st, const char *account, const char *pattern,
		    struct yj_err *err)
{
	char pat[STORE_ADDRESS_MAX + 1];
	int64_t id = 0;
	int ret = store_sender_rule_of(st, account, pattern, pat, &id, err);

	if (ret <= 0)
		return ret;
	ret = store_sender_run(st, "DELETE FROM account_senders WHERE account_id = ?1"
			       " AND pattern = ?2", id, pat, false, "remove sender", err);
	if (ret == 0)
		yj_err_set(err, "%s has no sender rule %s", account, pat);
	return ret;
}

/* Calls cb with the text column of each row of sql bound to id. */
static int
store_sender_each(struct store *st, const char *sql, int64_t id, store_sender_cb *cb, void *ctx,
		  const char *what, struct yj_err *err)
{
	struct store_q *stmt = store_stmt(st, sql, err);
	int ret;

	if (stmt == NULL)
		return -1;
	store_bind_i64(stmt, 1, id);
	while ((ret = store_row(st, stmt, what, err)) == 1)
		cb(ctx, store_col_str(stmt, 0));
	return ret < 0 ? -1 : 1;
}

int
store_sender_list(struct store *st, const char *account, store_sender_cb *cb, void *ctx,
		  struct yj_err *err)
{
	int64_t id = 0;
	int ret = store_sender_account(st, account, &id, err);

	if (ret <= 0)
		return ret;
	ret = store_sender_each(st, "SELECT pattern FROM account_senders WHERE account_id = ?1"
				" ORDER BY pattern", id, cb, ctx, "list senders", err);
	if (ret < 0)
		return -1;
	return store_sender_each(st, "SELECT alias FROM alias_owners WHERE account_id = ?1"
				 " ORDER BY alias", id, cb, ctx, "list owned aliases", err);
}

static void
store_sender_found(void *ctx, const char *address, const char *target)
{
	(void)address;
	(void)target;
	*(bool *)ctx = true;
}

/* The alias (normalised into alias) and the account's id, both existing:
 * 1, 0 (err says which is missing), -1. */
static int
store_owner_args(struct store *st, const char *address, const char *account, char *alias,
		 int64_t *id_r, struct yj_err *err)
{
	bool found = false;
	int ret;

	if (store_norm_address(address, 0, alias, STORE_ADDRESS_MAX + 1, NULL, err) < 0)
		return -1;
	ret = store_alias_lookup(st, alias, store_sender_found, &found);
	if (ret < 0)
		return yj_err_set(err, "store: alias lookup failed");
	if (ret == 0) {
		yj_err_set(err, "no alias %s", alias);
		return 0;
	}
	return store_sender_account(st, account, id_r, err);
}

int
store_alias_owner_add(struct store *st, const char *alias, const char *account,
		      struct yj_err *err)
{
	char addr[STORE_ADDRESS_MAX + 1];
	int64_t id = 0;
	int ret = store_owner_args(st, alias, account, addr, &id, err);

	if (ret <= 0)
		return ret;
	ret = store_sender_run(st, "INSERT INTO alias_owners (alias, account_id) VALUES (?1, ?2)",
			       id, addr, true, "add alias owner", err);
	if (ret < 0 && store_is_unique_violation(st))
		return yj_err_set(err, "%s already owns %s", account, addr);
	return ret < 0 ? -1 : 1;
}

int
store_alias_owner_remove(struct store *st, const char *alias, const char *account,
			 struct yj_err *err)
{
	char addr[STORE_ADDRESS_MAX + 1];
	int64_t id = 0;
	int ret;

	if (store_norm_address(alias, 0, addr, sizeof(addr), NULL, err) < 0 ||
	    (ret = store_sender_account(st, account, &id, err)) < 0)
		return -1;
	if (ret == 0)
		return 0;
	ret = store_sender_run(st, "DELETE FROM alias_owners WHERE alias = ?1 AND account_id = ?2",
			       id, addr, true, "remove alias owner", err);
	if (ret == 0)
		yj_err_set(err, "%s does not own %s", account, addr);
	return ret;
}

int
store_alias_owners_gone(struct store *st, const char *alias, struct yj_err *err)
{
	static const char sql[] =
		"DELETE FROM alias_owners WHERE alias = ?1"
		" AND NOT EXISTS (SELECT 1 FROM aliases WHERE address = ?1)";
	struct store_q *stmt = store_stmt(st, sql, err);

	if (stmt == NULL)
		return -1;
	store_bind_text(stmt, 1, alias);
	return store_run(st, stmt, "forget alias owners", err);
}

int
store_sender_allowed(struct store *st, int64_t account_id, const char *address,
		     struct yj_err *err)
{
	/* An owned alias counts while it exists (its owners also go with
	 * its last target: store_alias_owners_gone). */
	static const char sql[] =
		"SELECT 1 FROM account_senders WHERE account_id = ?1 AND pattern IN (?2, ?3)"
		" UNION ALL SELECT 1 FROM alias_owners o WHERE o.account_id = ?1"
		" AND o.alias = ?2 AND EXISTS (SELECT 1 FROM aliases a WHERE a.address = o.alias)";
	char addr[STORE_ADDRESS_MAX + 1];
	const char *domain;
	struct store_q *stmt;
	int ret;

	if (store_norm_address(address, 0, addr, sizeof(addr), &domain, err) < 0)
		return 0;
	if ((stmt = store_stmt(st, sql, err)) == NULL)
		return -1;
	store_bind_i64(stmt, 1, account_id);
	store_bind_text(stmt, 2, addr);
	store_bind_text(stmt, 3, domain - 1);	/* "@domain" */
	ret = store_row(st, stmt, "sender rules", err);
	if (ret == 1)
		store_reset(stmt);
	return ret;
}
