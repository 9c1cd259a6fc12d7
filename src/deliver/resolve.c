#include "deliver/resolve.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"

typedef char resolve_addr[STORE_ADDRESS_MAX + 1];

/* A growing list of addresses. */
struct resolve_list {
	resolve_addr *v;
	size_t n, cap;
};

struct resolve_walk {
	struct store *st;
	const struct config *cfg;
	struct resolve_result *r;
	struct resolve_list seen;	/* addresses expanded, against alias loops */
	struct resolve_list targets;	/* of the alias being looked up */
	bool limit;			/* a limit was hit: the result is void */
};

static void *
resolve_grow(void *v, size_t *cap, size_t size)
{
	*cap = *cap * 2 + 8;
	v = realloc(v, *cap * size);
	if (v == NULL)
		log_fatal("out of memory");
	return v;
}

static void
resolve_list_add(struct resolve_list *l, const char *address)
{
	if (l->n == l->cap)
		l->v = resolve_grow(l->v, &l->cap, sizeof(*l->v));
	snprintf(l->v[l->n++], sizeof(l->v[0]), "%.*s", STORE_ADDRESS_MAX, address);
}

static bool
resolve_list_has(const struct resolve_list *l, const char *address)
{
	for (size_t i = 0; i < l->n; i++) {
		if (strcmp(l->v[i], address) == 0)
			return true;
	}
	return false;
}

/* Counts a new target against the expansion limit; false if over. */
static bool
resolve_room(struct resolve_walk *w)
{
	if (w->r->n_local + w->r->n_remote + w->r->n_unknown <
	    (size_t)w->cfg->virtual_alias_expansion_limit)
		return true;
	w->limit = true;
	return false;
}

static void
resolve_collect_target(void *ctx, const char *address, const char *target)
{
	struct resolve_walk *w = ctx;

	/* One alias alone may not list more than the whole may hold. */
	if (w->targets.n >= (size_t)w->cfg->virtual_alias_expansion_limit)
		w->limit = true;
	else
		resolve_list_add(&w->targets, target);
}

/* First time this address is expanded? Marks it seen. */
static bool
resolve_first_visit(struct resolve_walk *w, const char *address)
{
	if (resolve_list_has(&w->seen, address))
		return false;
	resolve_list_add(&w->seen, address);
	return true;
}

static void
resolve_add_local(struct resolve_walk *w, const struct store_account *acct)
{
	struct resolve_result *r = w->r;

	for (size_t i = 0; i < r->n_local; i++) {
		if (r->local[i].account_id == acct->id)
			return;
	}
	if (!resolve_room(w))
		return;
	if (r->n_local == r->cap_local)
		r->local = resolve_grow(r->local, &r->cap_local, sizeof(*r->local));
	r->local[r->n_local].account_id = acct->id;
	snprintf(r->local[r->n_local].address, sizeof(r->local[0].address), "%s", acct->address);
	r->n_local++;
}

static void
resolve_add_remote(struct resolve_walk *w, const char *address)
{
	struct resolve_result *r = w->r;

	for (size_t i = 0; i < r->n_remote; i++) {
		if (strcmp(r->remote[i], address) == 0)
			return;
	}
	if (!resolve_room(w))
		return;
	if (r->n_remote == r->cap_remote)
		r->remote = resolve_grow(r->remote, &r->cap_remote, sizeof(*r->remote));
	snprintf(r->remote[r->n_remote++], sizeof(r->remote[0]), "%s", address);
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

static void
resolve_add_unknown(struct resolve_walk *w, const char *address)
{
	struct resolve_result *r = w->r;

	for (size_t i = 0; i < r->n_unknown; i++) {
		if (strcmp(r->unknown[i], address) == 0)
			return;
	}
	if (!resolve_room(w))
		return;
	if (r->n_unknown == r->cap_unknown)
		r->unknown = resolve_grow(r->unknown, &r->cap_unknown, sizeof(*r->unknown));
	snprintf(r->unknown[r->n_unknown++], sizeof(r->unknown[0]), "%s", address);
}

static int resolve_address(struct resolve_walk *w, const char *address, int depth);

/* Expands the targets of an alias that was found. */
static int
resolve_targets(struct resolve_walk *w, int depth)
{
	/* The walk's target list is reused by the recursion, so this level
	 * takes it over and leaves an empty one. */
	struct resolve_list targets = w->targets;
	int result = 1;

	memset(&w->targets, 0, sizeof(w->targets));
	for (size_t i = 0; i < targets.n && result > 0 && !w->limit; i++) {
		const char *at = strrchr(targets.v[i], '@');
		int ret = at != NULL ? store_domain_exists(w->st, at + 1) : 0;

		/* A target seen before is a loop back, which ends at an
		 * account or nowhere; only a new one can be unknown. */
		bool looped = ret > 0 && resolve_list_has(&w->seen, targets.v[i]);

		if (ret == 0)
			resolve_add_remote(w, targets.v[i]);
		else if (ret < 0 || (ret = resolve_address(w, targets.v[i], depth + 1)) < 0)
			result = -1;
		else if (ret == 0 && !looped)
			resolve_add_unknown(w, targets.v[i]);
	}
	free(targets.v);
	return result;
}

/* Looks up one alias address (seen for the first time); 1 if it had
 * targets (now expanded). */
static int
resolve_alias(struct resolve_walk *w, const char *address, int depth)
{
	int ret;

	w->targets.n = 0;
	ret = store_alias_lookup(w->st, address, resolve_collect_target, w);
	if (ret <= 0 || w->limit)
		return ret;
	if (depth >= w->cfg->virtual_alias_recursion_limit) {
		w->limit = true;
		return 1;
	}
	if (resolve_targets(w, depth) < 0)
		return -1;
	return 1;
}

/* The address exactly as given: an alias (unless it is being expanded
 * already), else an account. */
static int
resolve_exact(struct resolve_walk *w, const char *address, int depth)
{
	struct store_account acct;
	int ret;

	if (resolve_first_visit(w, address)) {
		ret = resolve_alias(w, address, depth);
		if (ret != 0)
			return ret;
	}
	ret = store_account_lookup(w->st, address, &acct);
	if (ret <= 0)
		return ret;
	resolve_add_local(w, &acct);
	return 1;
}

/* Resolves one address in a local domain, following aliases. */
static int
resolve_address(struct resolve_walk *w, const char *address, int depth)
{
	char base[STORE_ADDRESS_MAX + 1];
	const char *at = strrchr(address, '@');
	int ret;

	ret = resolve_exact(w, address, depth);
	if (ret != 0)
		return ret;
	if (resolve_strip_extension(address, w->cfg->recipient_delimiter, base, sizeof(base))) {
		ret = resolve_exact(w, base, depth);
		if (ret != 0)
			return ret;
	}
	if (at == NULL || !resolve_first_visit(w, at))
		return 0;
	return resolve_alias(w, at, depth);
}

void
resolve_result_free(struct resolve_result *r)
{
	free(r->local);
	free(r->remote);
	free(r->unknown);
	memset(r, 0, sizeof(*r));
}

static enum resolve_status
resolve_status_of(const struct resolve_walk *w)
{
	if (w->limit)
		return RESOLVE_LIMIT;
	return w->r->n_local + w->r->n_remote > 0 ? RESOLVE_OK : RESOLVE_UNKNOWN;
}

int
resolve_rcpt(struct store *st, const struct config *cfg, const char *local,
	     const char *domain, struct resolve_result *r)
{
	struct resolve_walk walk = { .st = st, .cfg = cfg, .r = r };
	char address[STORE_ADDRESS_MAX + 1];
	int ret;

	resolve_result_free(r);
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
	ret = resolve_address(&walk, address, 0);
	free(walk.seen.v);
	free(walk.targets.v);
	if (ret < 0)
		return -1;
	r->status = resolve_status_of(&walk);
	if (r->status == RESOLVE_LIMIT) {
		char rcpt[LOG_VALUE_MAX];

		log_warn("resolve: rcpt=<%s> unreasonable alias expansion: more than %ld targets "
			 "or nested deeper than %ld", log_value(rcpt, sizeof(rcpt), address),
			 cfg->virtual_alias_expansion_limit, cfg->virtual_alias_recursion_limit);
	}
	return 1;
}
