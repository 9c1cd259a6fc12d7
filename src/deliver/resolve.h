/* resolve.h - from an envelope recipient to the mailboxes and remote
 * addresses it stands for: local domains, accounts, plus-addressing
 * (recipient_delimiter), aliases with several targets, and "@domain"
 * catch-alls. Used at RCPT time, so an unknown user is refused then and
 * no bounce is ever sent to a forged sender. */
#ifndef YJ_RESOLVE_H
#define YJ_RESOLVE_H

#include <stddef.h>
#include <stdint.h>

#include "base/config.h"
#include "store/store.h"

#define RESOLVE_MAX_TARGETS 64	/* per recipient, after alias expansion */
#define RESOLVE_MAX_DEPTH 8	/* aliases of aliases */

enum resolve_status {
	RESOLVE_NOT_LOCAL,	/* the domain is not one of ours */
	RESOLVE_UNKNOWN,	/* our domain, but no such user or alias */
	RESOLVE_OK,		/* at least one target */
};

struct resolve_local {
	int64_t account_id;
	char address[STORE_ADDRESS_MAX + 1];
};

struct resolve_result {
	enum resolve_status status;
	size_t n_local;
	struct resolve_local local[RESOLVE_MAX_TARGETS];
	size_t n_remote;		/* alias targets in other domains */
	char remote[RESOLVE_MAX_TARGETS][STORE_ADDRESS_MAX + 1];
};

/* Resolves local@domain (domain lowercased by the caller or not).
 * Returns 1 with r->status set, -1 if the store failed. */
int resolve_rcpt(struct store *st, const struct config *cfg, const char *local,
		 const char *domain, struct resolve_result *r) YJ_MUST_CHECK;

#endif
