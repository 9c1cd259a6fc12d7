/* resolve.h - from an envelope recipient to the mailboxes and remote
 * addresses it stands for: local domains, accounts, plus-addressing
 * (recipient_delimiter), aliases with several targets, and "@domain"
 * catch-alls. Used at RCPT time, so an unknown user is refused then and
 * no bounce is ever sent to a forged sender.
 *
 * The order is that of Postfix's virtual(5): the address as given (alias,
 * then account), then without its extension (user+ext -> user), then
 * the domain's catch-all. So bob+x@ is its own account if there is one,
 * and only otherwise bob's. An alias that (directly or not) names itself
 * ends at the account of that name. */
#ifndef YJ_RESOLVE_H
#define YJ_RESOLVE_H

#include <stddef.h>
#include <stdint.h>

#include "base/config.h"
#include "store/store.h"

enum resolve_status {
	RESOLVE_NOT_LOCAL,	/* the domain is not one of ours */
	RESOLVE_UNKNOWN,	/* our domain, but no such user or alias */
	RESOLVE_OK,		/* at least one target */
	RESOLVE_LIMIT,		/* the aliases expand to more targets than
				 * virtual_alias_expansion_limit, or nest
				 * deeper than virtual_alias_recursion_limit */
};

struct resolve_local {
	int64_t account_id;
	char address[STORE_ADDRESS_MAX + 1];
};

/* Every target is listed: the arrays grow as needed, up to the limits. */
struct resolve_result {
	enum resolve_status status;
	size_t n_local, cap_local;
	struct resolve_local *local;
	size_t n_remote, cap_remote;		/* alias targets in other domains */
	char (*remote)[STORE_ADDRESS_MAX + 1];
	/* alias targets in one of our domains without such a user: the
	 * message is bounced for them (they do not make the status) */
	size_t n_unknown, cap_unknown;
	char (*unknown)[STORE_ADDRESS_MAX + 1];
};

/* Resolves local@domain (domain lowercased by the caller or not, and in
 * A-labels: an IDN's U-labels are not looked up). r must be all zero or
 * hold an earlier result, which is freed. Returns 1 with r->status set,
 * -1 if the store failed. */
int resolve_rcpt(struct store *st, const struct config *cfg, const char *local,
		 const char *domain, struct resolve_result *r) YJ_MUST_CHECK;

/* Frees the target lists and zeroes r. */
void resolve_result_free(struct resolve_result *r);

#endif
