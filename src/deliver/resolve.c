#include "deliver/resolve.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"

struct resolve_walk {
	struct store *st;
	struct resolve_result *r;
	/* addresses already expanded, against alias loops */
	char seen[RESOLVE_MAX_TARGETS][STORE_ADDRESS_MAX + 1];
	size_t n_seen;
	/* targets of the alias being expanded, copied out of the callback */
	char targets[RESOLVE_MAX_TARGETS][STORE_ADDRESS_MAX + 1];
	size_t n_targets;
	bool error;
};

static void
resolve_collect_target(void *ctx, const char *address, const char *target)
{
	struct resolve_walk *w = ctx;

	if (w->n_targets < RESOLVE_MAX_TARGETS)
		snprintf(w->targets[w->n_targets++], sizeof(w->targets[0]), "%.*s",
			 STORE_ADDRESS_MAX, target);
}

static bool
resolve_seen(struct resolve_walk *w, const char *address)
{
	for (size_t i = 0; i < w->n_seen; i++) {
		if (strcmp(w->seen[i], address) == 0)
			return true;
	}
	if (w->n_seen < RESOLVE_MAX_TARGETS)
		snprintf(w->seen[w->n_seen++], STORE_ADDRESS_MAX + 1, "%s", address);
	return false;
}

static void
resolve_add_local(struct resolve_result *r, const struct store_account *acct)
{
	for (size_t i = 0; i < r->n_local; i++) {
		if (r->local[i].account_id == acct->id)
			return;
	}
	if (r->n_local == RESOLVE_MAX_TARGETS)
		return;
	r->local[r->n_local].account_id = acct->id;
	snprintf(r->local[r->n_local].address, sizeof(r->local[0].address), "%s", acct->address);
	r->n_local++;
}

static void
resolve_add_remote(struct resolve_result *r, const char *address)
{
	for (size_t i = 0; i < r->n_remote; i++) {
		if (strcmp(r->remote[i], address) == 0)
			return;
	}
	if (r->n_remote < RESOLVE_MAX_TARGETS)
		snprintf(r->remote[r->n_remote++], STORE_ADDRESS_MAX + 1, "%s", address);
}

/* Strips "+tag" (any of the delimiter characters) from the local part of
 * address into out. Returns true if there was an extension. */
static bool
resolve_strip_extension(const char *address, const char *delims, char *out, size_t outlen)
{
	const char *at = strrchr(address, '@');
	size_t n;

	snprintf(out, outlen, "%s", address);
	if (at == NULL || delims[0] == '\0')
		return false;
	n = strcspn(address, delims);
	if (address + n >= at || n == 0)
		return false;
	snprintf(out, outlen, "%.*s%s", (int)n, address, at);
	return true;
}

static int resolve_address(struct resolve_walk *w, const struct config *cfg,
			   const char *address, int depth);

/* Expands the targets of an alias that was found. */
static int
resolve_targets(struct resolve_walk *w, const struct config *cfg, int depth)
{
	/* The walk's target list is reused by the recursion, so this level
	 * works on its own copy (on the heap: session stacks are small). */
	size_t n = w->n_targets;
	char (*targets)[STORE_ADDRESS_MAX + 1] = malloc(sizeof(*targets) * (n + 1));
	int result = 1;

	if (targets == NULL)
		log_fatal("out of memory");
	memcpy(targets, w->targets, sizeof(*targets) * n);
	for (size_t i = 0; i < n && result > 0; i++) {
		const char *at = strrchr(targets[i], '@');
		int ret = at != NULL ? store_domain_exists(w->st, at + 1) : 0;

		if (ret == 0)
			resolve_add_remote(w->r, targets[i]);
		else if (ret < 0 || resolve_address(w, cfg, targets[i], depth + 1) < 0)
			result = -1;
	}
	free(targets);
	return result;
}

/* Looks up one alias address; 1 if it had targets (now expanded). */
static int
resolve_alias(struct resolve_walk *w, const struct config *cfg, const char *address, int depth)
{
	int ret;

	w->n_targets = 0;
	ret = store_alias_lookup(w->st, address, resolve_collect_target, w);
	if (ret <= 0)
		return ret;
	if (resolve_targets(w, cfg, depth) < 0)
		return -1;
	return 1;
}

/* Resolves one address in a local domain, following aliases. */
static int
resolve_address(struct resolve_walk *w, const struct config *cfg, const char *address,
		int depth)
{
	struct store_account acct;
	char base[STORE_ADDRESS_MAX + 1];
	const char *at;
	int ret;

	/* An alias pointing at itself (or a loop) ends at the account. */
	if (depth > RESOLVE_MAX_DEPTH || resolve_seen(w, address))
		goto account_only;
	ret = resolve_alias(w, cfg, address, depth);
	if (ret != 0)
		return ret;
	if (resolve_strip_extension(address, cfg->recipient_delimiter, base, sizeof(base))) {
		ret = resolve_alias(w, cfg, base, depth);
		if (ret != 0)
			return ret;
		address = base;
	}
account_only:
	if (address != base &&
	    resolve_strip_extension(address, cfg->recipient_delimiter, base, sizeof(base)))
		address = base;
	ret = store_account_lookup(w->st, address, &acct);
	if (ret < 0)
		return -1;
	if (ret > 0) {
		resolve_add_local(w->r, &acct);
		return 1;
	}
	at = strrchr(address, '@');
	if (depth > RESOLVE_MAX_DEPTH || at == NULL)
		return 0;
	return resolve_alias(w, cfg, at, depth);
}

int
resolve_rcpt(struct store *st, const struct config *cfg, const char *local,
	     const char *domain, struct resolve_result *r)
{
	struct resolve_walk *walk;
	char address[STORE_ADDRESS_MAX + 1];
	int ret;

	memset(r, 0, sizeof(*r));
	if (snprintf(address, sizeof(address), "%s@%s", local, domain) >= (int)sizeof(address)) {
		r->status = RESOLVE_UNKNOWN;
		return 1;
	}
	util_ascii_lower(address);
	ret = store_domain_exists(st, strrchr(address, '@') + 1);
	if (ret < 0)
		return -1;
	if (ret == 0) {
		r->status = RESOLVE_NOT_LOCAL;
		return 1;
	}
	walk = calloc(1, sizeof(*walk));
	if (walk == NULL)
		log_fatal("out of memory");
	walk->st = st;
	walk->r = r;
	ret = resolve_address(walk, cfg, address, 0);
	free(walk);
	if (ret < 0)
		return -1;
	r->status = r->n_local + r->n_remote > 0 ? RESOLVE_OK : RESOLVE_UNKNOWN;
	return 1;
}
