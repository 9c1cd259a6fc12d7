/* store_change.c - the change model's shared parts: the MODSEQ
 * allocator, the record of changes, publishing them to subscribers after
 * COMMIT, and the per-data-dir state (the fair write lock).
 *
 * Every change to a mailbox takes its MODSEQ from one UPDATE ... RETURNING
 * on the mailbox row, inside the change's own transaction: the row stays
 * locked until COMMIT, so two transactions can never get the same value,
 * whatever the database's isolation level. A change also leaves a row in
 * `changes` naming the process that made it, so that youjud can notice
 * what another process (the youju command) committed.
 */
#include "store/store-private.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "base/block.h"
#include "base/log.h"

/* ---- the process's origin id ---- */

static pthread_mutex_t store_origin_lock = PTHREAD_MUTEX_INITIALIZER;
static pid_t store_origin_pid;
static int64_t store_origin_id;

/* A random id for this process, made again in a forked child, so that
 * the rows of `changes` tell which process committed them. */
int64_t
store_origin(void)
{
	uint64_t r = 0;
	int64_t id;

	pthread_mutex_lock(&store_origin_lock);
	if (store_origin_pid != getpid()) {
		if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
			r = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
		/* Positive and never 0: 0 is no origin. */
		store_origin_id = (int64_t)(r >> 2) + 1;
		store_origin_pid = getpid();
	}
	id = store_origin_id;
	pthread_mutex_unlock(&store_origin_lock);
	return id;
}

/* ---- sites: what the connections of one data dir share ---- */

static pthread_mutex_t store_sites_lock = PTHREAD_MUTEX_INITIALIZER;
static struct store_site *store_sites;

struct store_site *
store_site_get(const char *data_dir)
{
	struct store_site *site;

	pthread_mutex_lock(&store_sites_lock);
	for (site = store_sites; site != NULL; site = site->next) {
		if (strcmp(site->data_dir, data_dir) == 0)
			break;
	}
	if (site == NULL) {
		site = calloc(1, sizeof(*site));
		if (site == NULL || (site->data_dir = strdup(data_dir)) == NULL)
			log_fatal("out of memory");
		pthread_mutex_init(&site->lock, NULL);
		pthread_cond_init(&site->turn, NULL);
		site->sumcache = store_sumcache_new(store_summary_cache_size());
		site->next = store_sites;
		store_sites = site;
	}
	site->refs++;
	pthread_mutex_unlock(&store_sites_lock);
	return site;
}

void
store_site_put(struct store_site *site)
{
	struct store_site **pp;

	pthread_mutex_lock(&store_sites_lock);
	if (--site->refs > 0) {
		pthread_mutex_unlock(&store_sites_lock);
		return;
	}
	for (pp = &store_sites; *pp != site; pp = &(*pp)->next)
		;
	*pp = site->next;
	pthread_mutex_unlock(&store_sites_lock);
	pthread_mutex_destroy(&site->lock);
	pthread_cond_destroy(&site->turn);
	store_sumcache_free(site->sumcache);
	free(site->data_dir);
	free(site);
}

/* A ticket lock: writers get the database in the order they asked. */
void
store_site_lock(struct store_site *site)
{
	uint64_t ticket;

	block_begin();
	pthread_mutex_lock(&site->lock);
	ticket = site->next_ticket++;
	while (site->serving != ticket)
		pthread_cond_wait(&site->turn, &site->lock);
	pthread_mutex_unlock(&site->lock);
	/* Until store_site_unlock(), this worker's waits (the lock's own
	 * here, its queries and COMMIT) end without a wait for a run slot:
	 * every writer, deliveries too, waits for this lock. */
	block_hold_begin();
	block_end();
}

void
store_site_unlock(struct store_site *site)
{
	pthread_mutex_lock(&site->lock);
	site->serving++;
	pthread_cond_broadcast(&site->turn);
	pthread_mutex_unlock(&site->lock);
	block_hold_end();
}

/* ---- subscribers ---- */

static pthread_rwlock_t store_subs_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct {
	store_notify_fn *fn;
	void *arg;
} store_subs[STORE_SUBSCRIBERS_MAX];
static size_t store_subs_n;

int
store_notify_subscribe(store_notify_fn *fn, void *arg)
{
	int ret = -1;

	pthread_rwlock_wrlock(&store_subs_lock);
	if (store_subs_n < STORE_SUBSCRIBERS_MAX) {
		store_subs[store_subs_n].fn = fn;
		store_subs[store_subs_n].arg = arg;
		store_subs_n++;
		ret = 1;
	}
	pthread_rwlock_unlock(&store_subs_lock);
	return ret;
}

void
store_notify_unsubscribe(store_notify_fn *fn, void *arg)
{
	pthread_rwlock_wrlock(&store_subs_lock);
	for (size_t i = 0; i < store_subs_n; i++) {
		if (store_subs[i].fn == fn && store_subs[i].arg == arg) {
			store_subs[i] = store_subs[--store_subs_n];
			break;
		}
	}
	pthread_rwlock_unlock(&store_subs_lock);
}

void
store_notify_all(const struct store_change *changes, size_t n)
{
	if (n == 0)
		return;
	pthread_rwlock_rdlock(&store_subs_lock);
	for (size_t i = 0; i < store_subs_n; i++) {
		for (size_t k = 0; k < n; k++)
			store_subs[i].fn(store_subs[i].arg, &changes[k]);
	}
	pthread_rwlock_unlock(&store_subs_lock);
}

/* ---- notes of the open transaction ---- */

void
store_note_append(struct store_note_list *list, const struct store_change *c)
{
	if (list->n == list->cap) {
		size_t cap = list->cap == 0 ? 8 : list->cap * 2;
		void *p = realloc(list->v, cap * sizeof(*list->v));

		if (p == NULL)
			log_fatal("out of memory");
		list->v = p;
		list->cap = cap;
	}
	list->v[list->n++] = *c;
}

void
store_notes_truncate(struct store *st, size_t n)
{
	if (n < st->notes.n)
		st->notes.n = n;
}

void
store_notes_free(struct store *st)
{
	free(st->notes.v);
	st->notes = (struct store_note_list){ 0 };
}

/* Merges the notes in place, one per mailbox: a subscriber needs the
 * newest MODSEQ and what kinds of change led there. */
static size_t
store_notes_merge(struct store_change *v, size_t n)
{
	size_t out = 0, k;

	for (size_t i = 0; i < n; i++) {
		for (k = 0; k < out && v[k].mailbox_id != v[i].mailbox_id; k++)
			;
		if (k == out) {
			v[out++] = v[i];
			continue;
		}
		v[k].kind |= v[i].kind;
		if (v[i].modseq > v[k].modseq)
			v[k].modseq = v[i].modseq;
	}
	return out;
}

void
store_note_list_publish(struct store_note_list *list)
{
	store_notify_all(list->v, store_notes_merge(list->v, list->n));
	list->n = 0;
}

void
store_notes_publish(struct store *st)
{
	store_note_list_publish(&st->notes);
}

/* ---- the allocator and the record ---- */

int
store_change_record(struct store *st, int64_t account_id, int64_t mailbox_id,
		    uint64_t modseq, unsigned kind, struct yj_err *err)
{
	static const char sql[] =
		"INSERT INTO changes (account_id, mailbox_id, modseq, kind, origin, created)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
	struct store_change c = { .account_id = account_id, .mailbox_id = mailbox_id,
				  .modseq = modseq, .kind = kind };
	struct store_q *stmt = store_stmt(st, sql, err);

	if (stmt == NULL)
		return -1;
	store_bind_i64(stmt, 1, account_id);
	store_bind_i64(stmt, 2, mailbox_id);
	store_bind_i64(stmt, 3, (int64_t)modseq);
	store_bind_i64(stmt, 4, kind);
	store_bind_i64(stmt, 5, store_origin());
	store_bind_i64(stmt, 6, (int64_t)time(NULL));
	if (store_run(st, stmt, "record change", err) < 0)
		return -1;
	/* Appended, not merged: a delivery batch truncates the list back to
	 * a failed delivery's savepoint. The publisher merges. */
	store_note_append(&st->notes, &c);
	return 1;
}

struct store_modseq_row {
	int64_t account_id;
	uint64_t modseq;
};

static void
store_modseq_read(struct store_q *stmt, void *out)
{
	struct store_modseq_row *r = out;

	r->account_id = store_col_i64(stmt, 0);
	r->modseq = (uint64_t)store_col_i64(stmt, 1);
}

int
store_modseq_next(struct store *st, int64_t mailbox_id, unsigned kind, uint64_t *modseq_r,
		  struct yj_err *err)
{
	static const char sql[] =
		"UPDATE mailboxes SET highestmodseq = highestmodseq + 1 WHERE id = ?1"
		" RETURNING account_id, highestmodseq";
	struct store_q *stmt = store_stmt(st, sql, err);
	struct store_modseq_row row;
	int ret;

	if (stmt == NULL)
		return -1;
	store_bind_i64(stmt, 1, mailbox_id);
	ret = store_row(st, stmt, "allocate modseq", err);
	if (ret == 0)
		yj_err_set(err, "mailbox %lld does not exist", (long long)mailbox_id);
	if (ret <= 0)
		return ret;
	store_modseq_read(stmt, &row);
	/* RETURNING: the update is finished only when the statement is. */
	if (store_run(st, stmt, "allocate modseq", err) < 0 ||
	    store_change_record(st, row.account_id, mailbox_id, row.modseq, kind, err) < 0)
		return -1;
	*modseq_r = row.modseq;
	return 1;
}
