/* store_sumcache.c - the IMAP summaries a process read lately, kept in
 * its memory for all its connections to one database.
 *
 * A summary never changes once stored (store_summary_insert keeps the
 * first one) and a blob id is never given twice, so an entry cannot be
 * stale; it only ages out. What it spares: a FETCH of ENVELOPE and
 * header fields reads each message's summary row, most of it in
 * overflow pages, and SQLite empties a connection's page cache whenever
 * another connection has committed, which under a steady flow of STOREs
 * is before nearly every command: every page read again, a system call
 * each. PostgreSQL sends the rows over its socket every time.
 *
 * Shards, each with its own lock, hash table and list from newest to
 * oldest use, keep the threads of a busy server from queueing on one
 * lock; each holds its share of the bytes and drops its oldest entries
 * past it. */
#include "store/store-private.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUMCACHE_SHARDS 16
#define SUMCACHE_BUCKETS_MIN 64
/* An entry may take at most this part of its shard: a few huge
 * summaries do not push out hundreds of ordinary ones. */
#define SUMCACHE_ENTRY_SHARE 16

struct sumcache_entry {
	struct sumcache_entry *chain;	/* the next in its bucket */
	struct sumcache_entry *newer, *older;
	uint32_t hash;
	size_t bytes;			/* counted against the shard */
	char blob_id[STORE_BLOB_ID_MAX];
	size_t len[STORE_SUMMARY_ITEMS];
	char data[];			/* the items one after another */
};

struct sumcache_shard {
	pthread_mutex_t lock;
	struct sumcache_entry **buckets;
	size_t n_buckets;		/* a power of two */
	size_t n;
	struct sumcache_entry *newest, *oldest;
	size_t bytes, max_bytes;
};

struct store_sumcache {
	struct sumcache_shard shards[SUMCACHE_SHARDS];
};

/* Set once, before the store's threads start. */
static size_t sumcache_size;

void
store_set_summary_cache(size_t bytes)
{
	sumcache_size = bytes;
}

size_t
store_summary_cache_size(void)
{
	return sumcache_size;
}

/* FNV-1a: blob ids are random, any spread will do. */
static uint32_t
sumcache_hash(const char *blob_id)
{
	uint32_t h = 2166136261u;

	for (const unsigned char *p = (const unsigned char *)blob_id; *p != '\0'; p++)
		h = (h ^ *p) * 16777619u;
	return h;
}

static struct sumcache_shard *
sumcache_shard(struct store_sumcache *c, uint32_t hash)
{
	return &c->shards[(hash >> 24) % SUMCACHE_SHARDS];
}

struct store_sumcache *
store_sumcache_new(size_t max_bytes)
{
	struct store_sumcache *c;

	if (max_bytes == 0 || (c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	for (int i = 0; i < SUMCACHE_SHARDS; i++) {
		struct sumcache_shard *sh = &c->shards[i];

		pthread_mutex_init(&sh->lock, NULL);
		sh->max_bytes = max_bytes / SUMCACHE_SHARDS;
		sh->n_buckets = SUMCACHE_BUCKETS_MIN;
		if ((sh->buckets = calloc(sh->n_buckets, sizeof(*sh->buckets))) == NULL) {
			store_sumcache_free(c);
			return NULL;
		}
	}
	return c;
}

void
store_sumcache_free(struct store_sumcache *c)
{
	if (c == NULL)
		return;
	for (int i = 0; i < SUMCACHE_SHARDS; i++) {
		struct sumcache_shard *sh = &c->shards[i];
		struct sumcache_entry *e = sh->newest, *next;

		for (; e != NULL; e = next) {
			next = e->older;
			free(e);
		}
		free(sh->buckets);
		pthread_mutex_destroy(&sh->lock);
	}
	free(c);
}

/* The bucket's link that points to blob_id's entry, or to NULL. */
static struct sumcache_entry **
sumcache_slot(struct sumcache_shard *sh, uint32_t hash, const char *blob_id)
{
	struct sumcache_entry **pp = &sh->buckets[hash & (sh->n_buckets - 1)];

	while (*pp != NULL && ((*pp)->hash != hash || strcmp((*pp)->blob_id, blob_id) != 0))
		pp = &(*pp)->chain;
	return pp;
}

static void
sumcache_unlist(struct sumcache_shard *sh, struct sumcache_entry *e)
{
	if (e->newer != NULL)
		e->newer->older = e->older;
	else
		sh->newest = e->older;
	if (e->older != NULL)
		e->older->newer = e->newer;
	else
		sh->oldest = e->newer;
	e->newer = e->older = NULL;
}

static void
sumcache_list_first(struct sumcache_shard *sh, struct sumcache_entry *e)
{
	e->older = sh->newest;
	e->newer = NULL;
	if (sh->newest != NULL)
		sh->newest->newer = e;
	sh->newest = e;
	if (sh->oldest == NULL)
		sh->oldest = e;
}

static void
sumcache_drop(struct sumcache_shard *sh, struct sumcache_entry *e)
{
	struct sumcache_entry **pp = sumcache_slot(sh, e->hash, e->blob_id);

	*pp = e->chain;
	sumcache_unlist(sh, e);
	sh->bytes -= e->bytes;
	sh->n--;
	free(e);
}

/* Doubles the buckets when the chains grow long; on no memory the
 * chains only stay long. */
static void
sumcache_grow(struct sumcache_shard *sh)
{
	size_t n = sh->n_buckets * 2;
	struct sumcache_entry **b;

	if (sh->n <= sh->n_buckets || (b = calloc(n, sizeof(*b))) == NULL)
		return;
	for (size_t i = 0; i < sh->n_buckets; i++) {
		struct sumcache_entry *e = sh->buckets[i], *next;

		for (; e != NULL; e = next) {
			next = e->chain;
			e->chain = b[e->hash & (n - 1)];
			b[e->hash & (n - 1)] = e;
		}
	}
	free(sh->buckets);
	sh->buckets = b;
	sh->n_buckets = n;
}

/* A new entry holding s's items, or NULL (no memory). */
static struct sumcache_entry *
sumcache_entry_new(const struct store_summary *s, uint32_t hash, size_t data_len)
{
	struct sumcache_entry *e = malloc(sizeof(*e) + data_len);
	size_t off = 0;

	if (e == NULL)
		return NULL;
	memset(e, 0, sizeof(*e));
	e->hash = hash;
	e->bytes = sizeof(*e) + data_len;
	memcpy(e->blob_id, s->blob_id, sizeof(e->blob_id));
	for (int i = 0; i < STORE_SUMMARY_ITEMS; i++) {
		e->len[i] = s->len[i];
		if (s->len[i] > 0)
			memcpy(e->data + off, s->text[i], s->len[i]);
		off += s->len[i];
	}
	return e;
}

void
store_sumcache_put(struct store_sumcache *c, const struct store_summary *s)
{
	uint32_t hash;
	struct sumcache_shard *sh;
	struct sumcache_entry *e;
	size_t data_len = 0;

	if (c == NULL || strnlen(s->blob_id, STORE_BLOB_ID_MAX) == STORE_BLOB_ID_MAX)
		return;
	for (int i = 0; i < STORE_SUMMARY_ITEMS; i++)
		data_len += s->len[i];
	hash = sumcache_hash(s->blob_id);
	sh = sumcache_shard(c, hash);
	if (sizeof(*e) + data_len > sh->max_bytes / SUMCACHE_ENTRY_SHARE ||
	    (e = sumcache_entry_new(s, hash, data_len)) == NULL)
		return;
	pthread_mutex_lock(&sh->lock);
	if (*sumcache_slot(sh, hash, s->blob_id) != NULL) {
		/* Another thread read it meanwhile: the same summary. */
		pthread_mutex_unlock(&sh->lock);
		free(e);
		return;
	}
	while (sh->oldest != NULL && sh->bytes + e->bytes > sh->max_bytes)
		sumcache_drop(sh, sh->oldest);
	e->chain = sh->buckets[hash & (sh->n_buckets - 1)];
	sh->buckets[hash & (sh->n_buckets - 1)] = e;
	sumcache_list_first(sh, e);
	sh->bytes += e->bytes;
	sh->n++;
	sumcache_grow(sh);
	pthread_mutex_unlock(&sh->lock);
}

/* Copies the items of items (a mask of 1 << item) into s; the others
 * stay NULL and 0. 1, or -1 (no memory: s freed). */
static int
sumcache_copy(const struct sumcache_entry *e, unsigned items, struct store_summary *s)
{
	size_t off = 0;

	for (int i = 0; i < STORE_SUMMARY_ITEMS; i++) {
		if (items & (1u << i)) {
			if ((s->text[i] = malloc(e->len[i] + 1)) == NULL) {
				store_summary_free(s);
				return -1;
			}
			if (e->len[i] > 0)
				memcpy(s->text[i], e->data + off, e->len[i]);
			s->len[i] = e->len[i];
		}
		off += e->len[i];
	}
	return 1;
}

int
store_sumcache_get(struct store_sumcache *c, const char *blob_id, unsigned items,
		   struct store_summary *s)
{
	uint32_t hash;
	struct sumcache_shard *sh;
	struct sumcache_entry *e;
	int ret = 0;

	memset(s, 0, sizeof(*s));
	if (c == NULL)
		return 0;
	hash = sumcache_hash(blob_id);
	sh = sumcache_shard(c, hash);
	pthread_mutex_lock(&sh->lock);
	if ((e = *sumcache_slot(sh, hash, blob_id)) != NULL) {
		sumcache_unlist(sh, e);
		sumcache_list_first(sh, e);
		ret = sumcache_copy(e, items, s) == 1 ? 1 : 0;
	}
	pthread_mutex_unlock(&sh->lock);
	if (ret == 1)
		snprintf(s->blob_id, sizeof(s->blob_id), "%s", blob_id);
	return ret;
}
