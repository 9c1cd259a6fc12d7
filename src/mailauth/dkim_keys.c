/* dkim_keys.c - key files under DATA/dkim. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>

#include "mailauth/dkim_crypto.h"
#include "mailauth/dkim_keys.h"

#define RSA_BITS 2048

bool
dkim_selector_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > DKIM_SELECTOR_MAX || s[0] == '-' || s[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-'))
			return false;
	}
	return true;
}

static int
key_path(char *out, size_t outlen, const char *data_dir, const char *domain,
	 const char *selector)
{
	int n = selector != NULL
		? snprintf(out, outlen, "%s/%s/%s/%s.key", data_dir, DKIM_KEYS_DIR, domain, selector)
		: snprintf(out, outlen, "%s/%s/%s", data_dir, DKIM_KEYS_DIR, domain);

	return n < 0 || (size_t)n >= outlen ? -1 : 1;
}

static int
make_dir(const char *path, struct yj_err *err)
{
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return yj_err_errno(err, "cannot create %s", path);
	return 1;
}

static EVP_PKEY *
generate(enum dkim_key_alg alg)
{
	if (alg == DKIM_KEY_ED25519)
		return EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)RSA_BITS);
}

/* Writes the key to a new file (O_EXCL, 0600). */
static int
write_key(const char *path, EVP_PKEY *pkey, struct yj_err *err)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	FILE *f;
	int ok;

	if (fd < 0)
		return errno == EEXIST ? yj_err_set(err, "%s already exists", path)
				       : yj_err_errno(err, "cannot create %s", path);
	f = fdopen(fd, "w");
	if (f == NULL) {
		close(fd);
		unlink(path);
		return yj_err_errno(err, "cannot write %s", path);
	}
	ok = PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL) == 1;
	ok &= fflush(f) == 0 && fsync(fd) == 0;
	ok &= fclose(f) == 0;
	if (!ok) {
		unlink(path);
		return yj_err_set(err, "cannot write %s", path);
	}
	return 1;
}

EVP_PKEY *
dkim_keys_create(const char *data_dir, const char *domain, const char *selector,
		 enum dkim_key_alg alg, struct yj_err *err)
{
	char path[PATH_MAX];
	EVP_PKEY *pkey;

	if (!dkim_selector_ok(selector)) {
		yj_err_set(err, "bad selector '%s' (letters, digits and '-')", selector);
		return NULL;
	}
	if (snprintf(path, sizeof(path), "%s/%s", data_dir, DKIM_KEYS_DIR) >= (int)sizeof(path) ||
	    make_dir(path, err) < 0 || key_path(path, sizeof(path), data_dir, domain, NULL) < 0 ||
	    make_dir(path, err) < 0 ||
	    key_path(path, sizeof(path), data_dir, domain, selector) < 0) {
		yj_err_set(err, "cannot create the key directory for %s", domain);
		return NULL;
	}
	pkey = generate(alg);
	if (pkey == NULL) {
		yj_err_set(err, "key generation failed");
		return NULL;
	}
	if (write_key(path, pkey, err) < 0) {
		EVP_PKEY_free(pkey);
		return NULL;
	}
	return pkey;
}

static EVP_PKEY *
read_key(const char *path)
{
	FILE *f = fopen(path, "r");
	EVP_PKEY *pkey;

	if (f == NULL)
		return NULL;
	pkey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	return pkey;
}

/* Fills info from one "SELECTOR.key" entry; 0 if it is not a key. */
static int
key_info(const char *dir, const char *name, struct dkim_key_info *info)
{
	char path[PATH_MAX];
	size_t n = strlen(name);
	struct stat sb;
	EVP_PKEY *pkey;

	if (n <= 4 || n - 4 > DKIM_SELECTOR_MAX || strcmp(name + n - 4, ".key") != 0)
		return 0;
	memcpy(info->selector, name, n - 4);
	info->selector[n - 4] = '\0';
	if (!dkim_selector_ok(info->selector) ||
	    snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path) ||
	    stat(path, &sb) < 0 || (pkey = read_key(path)) == NULL)
		return 0;
	info->alg = dkim_crypto_alg(pkey) == DKIM_ALG_ED25519_SHA256 ? DKIM_KEY_ED25519
								  : DKIM_KEY_RSA;
	info->bits = (unsigned)EVP_PKEY_get_bits(pkey);
	info->mtime = sb.st_mtime;
	EVP_PKEY_free(pkey);
	return 1;
}

static void
sort_by_age(struct dkim_key_info *keys, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		for (size_t j = i; j > 0; j--) {
			struct dkim_key_info *a = &keys[j - 1], *b = &keys[j];
			if (a->mtime < b->mtime ||
			    (a->mtime == b->mtime && strcmp(a->selector, b->selector) <= 0))
				break;
			struct dkim_key_info t = *a;
			*a = *b;
			*b = t;
		}
	}
}

int
dkim_keys_list(const char *data_dir, const char *domain, struct dkim_key_info *keys,
	       size_t max, struct yj_err *err)
{
	char dir[PATH_MAX];
	struct dirent *de;
	DIR *d;
	size_t n = 0;

	if (key_path(dir, sizeof(dir), data_dir, domain, NULL) < 0)
		return yj_err_set(err, "path too long");
	d = opendir(dir);
	if (d == NULL)
		return errno == ENOENT ? 0 : yj_err_errno(err, "cannot read %s", dir);
	while ((de = readdir(d)) != NULL && n < max)
		n += (size_t)key_info(dir, de->d_name, &keys[n]);
	closedir(d);
	sort_by_age(keys, n);
	return (int)n;
}

int
dkim_keys_remove(const char *data_dir, const char *domain, const char *selector,
		 struct yj_err *err)
{
	char path[PATH_MAX];

	if (!dkim_selector_ok(selector))
		return yj_err_set(err, "bad selector '%s'", selector);
	if (key_path(path, sizeof(path), data_dir, domain, selector) < 0)
		return yj_err_set(err, "path too long");
	if (unlink(path) < 0)
		return errno == ENOENT ? 0 : yj_err_errno(err, "cannot remove %s", path);
	return 1;
}

int
dkim_keys_record(EVP_PKEY *pkey, char *out, size_t outlen)
{
	char p[2048];
	bool ed = dkim_crypto_alg(pkey) == DKIM_ALG_ED25519_SHA256;
	int n;

	if (dkim_crypto_pubkey_b64(pkey, p, sizeof(p)) < 0)
		return -1;
	n = snprintf(out, outlen, "v=DKIM1; k=%s; p=%s", ed ? "ed25519" : "rsa", p);
	return n < 0 || (size_t)n >= outlen ? -1 : 1;
}

int
dkim_keys_signing(const char *data_dir, const char *domain, struct dkim_sign_key keys[2],
		  char sel[2][DKIM_SELECTOR_MAX + 1], struct yj_err *err)
{
	struct dkim_key_info info[DKIM_KEYS_PER_DOMAIN_MAX];
	const struct dkim_key_info *newest[2] = { NULL, NULL };
	char path[PATH_MAX];
	int n = dkim_keys_list(data_dir, domain, info, DKIM_KEYS_PER_DOMAIN_MAX, err), k = 0;

	if (n <= 0)
		return n;
	for (int i = 0; i < n; i++)
		newest[info[i].alg] = &info[i];
	for (int a = 0; a < 2; a++) {
		if (newest[a] == NULL)
			continue;
		snprintf(sel[k], DKIM_SELECTOR_MAX + 1, "%s", newest[a]->selector);
		if (key_path(path, sizeof(path), data_dir, domain, sel[k]) < 0 ||
		    (keys[k].pkey = read_key(path)) == NULL) {
			for (int j = 0; j < k; j++)
				EVP_PKEY_free(keys[j].pkey);
			return yj_err_set(err, "cannot load DKIM key %s", path);
		}
		keys[k].domain = domain;
		keys[k].selector = sel[k];
		k++;
	}
	return k;
}

/* ---- the cache ---- */

/* What a key file or directory looked like: any change to the directory
 * (a key added or removed) or to a key file (replaced) changes it. */
struct file_id {
	bool exists;
	dev_t dev;
	ino_t ino;
	struct timespec mtime;
	off_t size;
};

struct cache_entry {
	char domain[DKIM_NAME_MAX];		/* "" if the slot is free */
	time_t checked;				/* CLOCK_MONOTONIC seconds */
	unsigned long long used;		/* for eviction, least recent first */
	struct file_id dir, files[2];
	int n;
	EVP_PKEY *pkey[2];
	char sel[2][DKIM_SELECTOR_MAX + 1];
};

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cache_entry cache[DKIM_KEYS_CACHE_MAX];
static unsigned long long cache_tick;
static char cache_dir[PATH_MAX];		/* the data dir every entry is of */

static void
file_id_of(const char *path, struct file_id *id)
{
	struct stat sb;

	memset(id, 0, sizeof(*id));
	if (stat(path, &sb) < 0)
		return;
	id->exists = true;
	id->dev = sb.st_dev;
	id->ino = sb.st_ino;
	id->mtime = sb.st_mtim;
	id->size = sb.st_size;
}

static bool
file_id_same(const struct file_id *a, const struct file_id *b)
{
	return a->exists == b->exists && a->dev == b->dev && a->ino == b->ino &&
	       a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec &&
	       a->size == b->size;
}

static time_t
mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static void
entry_drop(struct cache_entry *e)
{
	for (int i = 0; i < e->n; i++)
		EVP_PKEY_free(e->pkey[i]);
	memset(e, 0, sizeof(*e));
}

/* The ids of the directory and of the files the entry's keys came from. */
static void
entry_ids(const struct cache_entry *e, struct file_id *dir, struct file_id files[2])
{
	char path[PATH_MAX];

	memset(files, 0, 2 * sizeof(files[0]));
	if (key_path(path, sizeof(path), cache_dir, e->domain, NULL) > 0)
		file_id_of(path, dir);
	else
		memset(dir, 0, sizeof(*dir));
	for (int i = 0; i < e->n; i++) {
		if (key_path(path, sizeof(path), cache_dir, e->domain, e->sel[i]) > 0)
			file_id_of(path, &files[i]);
	}
}

/* Is the entry still what is on disk? Looks at most every
 * DKIM_KEYS_RECHECK_SECS. */
static bool
entry_fresh(struct cache_entry *e, time_t now)
{
	struct file_id dir, files[2];

	if (now - e->checked < DKIM_KEYS_RECHECK_SECS)
		return true;
	entry_ids(e, &dir, files);
	if (!file_id_same(&dir, &e->dir))
		return false;
	for (int i = 0; i < e->n; i++) {
		if (!file_id_same(&files[i], &e->files[i]))
			return false;
	}
	e->checked = now;
	return true;
}

/* (Re)loads an entry from disk. The ids are taken before the keys are
 * read, so a change while reading is seen at the next check. */
static int
entry_load(struct cache_entry *e, const char *domain, time_t now, struct yj_err *err)
{
	struct dkim_sign_key keys[2];
	struct file_id dir, files[2];
	int n;

	entry_drop(e);
	snprintf(e->domain, sizeof(e->domain), "%s", domain);
	entry_ids(e, &dir, files);
	n = dkim_keys_signing(cache_dir, domain, keys, e->sel, err);
	if (n < 0) {
		entry_drop(e);
		return -1;
	}
	e->n = n;
	for (int i = 0; i < n; i++)
		e->pkey[i] = keys[i].pkey;
	entry_ids(e, &e->dir, e->files);
	/* A file replaced between the two looks: check again next time. */
	e->checked = file_id_same(&dir, &e->dir) ? now : now - DKIM_KEYS_RECHECK_SECS;
	return 1;
}

/* The entry for domain, or the slot to load it into. */
static struct cache_entry *
entry_find(const char *domain, bool *found)
{
	struct cache_entry *victim = &cache[0];

	*found = false;
	for (size_t i = 0; i < DKIM_KEYS_CACHE_MAX; i++) {
		struct cache_entry *e = &cache[i];

		if (e->domain[0] != '\0' && strcmp(e->domain, domain) == 0) {
			*found = true;
			return e;
		}
		if (e->used < victim->used)
			victim = e;
	}
	return victim;
}

int
dkim_keys_cached(const char *data_dir, const char *domain, struct dkim_sign_key keys[2],
		 char sel[2][DKIM_SELECTOR_MAX + 1], struct yj_err *err)
{
	const char *caller_domain = domain;
	struct cache_entry *e;
	char lower[DKIM_NAME_MAX];
	time_t now = mono_now();
	size_t len = strlen(domain);
	bool found;
	int n;

	if (len >= DKIM_NAME_MAX || strlen(data_dir) >= PATH_MAX)
		return yj_err_set(err, "domain name too long");
	/* Key directories are named in lower case (youju dkim keygen). */
	for (size_t i = 0; i <= len; i++)
		lower[i] = (char)tolower((unsigned char)domain[i]);
	domain = lower;
	pthread_mutex_lock(&cache_lock);
	if (strcmp(cache_dir, data_dir) != 0) {
		/* Another data dir (tests): nothing cached is of it. */
		for (size_t i = 0; i < DKIM_KEYS_CACHE_MAX; i++)
			entry_drop(&cache[i]);
		snprintf(cache_dir, sizeof(cache_dir), "%s", data_dir);
	}
	e = entry_find(domain, &found);
	if ((!found || !entry_fresh(e, now)) && entry_load(e, domain, now, err) < 0) {
		pthread_mutex_unlock(&cache_lock);
		return -1;
	}
	e->used = ++cache_tick;
	n = e->n;
	for (int i = 0; i < n; i++) {
		EVP_PKEY_up_ref(e->pkey[i]);
		keys[i].pkey = e->pkey[i];
		keys[i].domain = caller_domain;
		snprintf(sel[i], DKIM_SELECTOR_MAX + 1, "%s", e->sel[i]);
		keys[i].selector = sel[i];
	}
	pthread_mutex_unlock(&cache_lock);
	return n;
}

void
dkim_keys_cache_clear(void)
{
	pthread_mutex_lock(&cache_lock);
	for (size_t i = 0; i < DKIM_KEYS_CACHE_MAX; i++)
		entry_drop(&cache[i]);
	pthread_mutex_unlock(&cache_lock);
}
