/* store_blob.c - blob files: writing, removing, and garbage collection.
 *
 * A blob is written once, straight at its final path blobs/HOUR/RANDOM,
 * and never changed. It becomes part of the store when store_deliver()
 * commits a row naming it; until then it is an orphan, which is what a
 * crash leaves behind and what store_gc() removes.
 */
#include "store/store-private.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"

#define STORE_RANDOM_LEN 24		/* 31^24, about 2^119 */
#define STORE_CREATE_TRIES 4

/* The directory of blobs made now: one per UTC hour, so that a burst of
 * deliveries shares one directory and one directory fsync. */
static void
store_blob_hour(time_t t, char out[STORE_HOUR_LEN + 1])
{
	struct tm tm;

	gmtime_r(&t, &tm);
	if (strftime(out, STORE_HOUR_LEN + 1, "%Y%m%d%H", &tm) != STORE_HOUR_LEN)
		snprintf(out, STORE_HOUR_LEN + 1, "0000000000");	/* year > 9999 */
}

static bool
store_all_digits(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
	}
	return true;
}

static bool
store_blob_name_valid(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len > STORE_RANDOM_LEN * 2)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'Z')))
			return false;
	}
	return true;
}

bool
store_blob_id_valid(const char *id)
{
	return strnlen(id, STORE_BLOB_ID_MAX) < STORE_BLOB_ID_MAX &&
	       store_all_digits(id, STORE_HOUR_LEN) && id[STORE_HOUR_LEN] == '/' &&
	       store_blob_name_valid(id + STORE_HOUR_LEN + 1);
}

int
store_blob_path(const struct store *st, const char *id, char *out, size_t outlen)
{
	if (!store_blob_id_valid(id))
		return -1;
	if (snprintf(out, outlen, "%s/%s", st->blob_dir, id) >= (int)outlen)
		return -1;
	return 1;
}

/* One attempt at a new file in the current hour's directory. */
static int
store_blob_try_create(struct store *st, struct store_blob *b, char *path, size_t pathlen)
{
	char hour[STORE_HOUR_LEN + 1], rnd[STORE_RANDOM_LEN + 1];
	size_t dirlen;

	store_blob_hour(time(NULL), hour);
	util_random_id(rnd, STORE_RANDOM_LEN);
	snprintf(b->id, sizeof(b->id), "%s/%s", hour, rnd);
	if (snprintf(path, pathlen, "%s/%s", st->blob_dir, b->id) >= (int)pathlen) {
		errno = ENAMETOOLONG;
		return -1;
	}
	dirlen = strlen(st->blob_dir) + 1 + STORE_HOUR_LEN;
	path[dirlen] = '\0';
	/* The writer thread fsyncs blobs/ for a new hour directory before
	 * any delivery in it commits. */
	if (mkdir(path, 0750) < 0 && errno != EEXIST)
		return -1;
	path[dirlen] = '/';
	/* Readable too: the delivering thread reads the message back to
	 * make its summary and search text (store_blob_contents). */
	return open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
}

int
store_blob_create(struct store *st, struct store_blob *b, struct yj_err *err)
{
	char path[STORE_PATH_MAX];

	b->fd = -1;
	b->path = NULL;
	b->size = 0;
	b->buffered = 0;
	b->keep = NULL;
	for (int i = 0; i < STORE_CREATE_TRIES && b->fd < 0; i++) {
		b->fd = store_blob_try_create(st, b, path, sizeof(path));
		/* EEXIST: the random name was taken; ENOENT: store_gc removed
		 * an empty directory between mkdir and open. Both are rare. */
		if (b->fd < 0 && errno != EEXIST && errno != ENOENT)
			break;
	}
	if (b->fd < 0) {
		b->id[0] = '\0';
		return yj_err_errno(err, "create blob in %s", st->blob_dir);
	}
	b->path = strdup(path);
	if (b->path == NULL)
		log_fatal("out of memory");
	return 1;
}

int
store_blob_flush(struct store_blob *b, struct yj_err *err)
{
	if (b->buffered == 0)
		return 1;
	if (util_write_all(b->fd, b->buf, b->buffered) < 0)
		return yj_err_errno(err, "write blob %s", b->id);
	b->buffered = 0;
	return 1;
}

void
store_blob_keep(struct store_blob *b, struct buf *keep)
{
	b->keep = keep;
}

/* The copy store_blob_keep asked for, dropped whole at its limit: a
 * copy with a gap would be worse than none. */
static void
store_blob_keep_add(struct store_blob *b, const void *p, size_t n)
{
	if (b->keep != NULL && buf_append(b->keep, p, n) < 0) {
		buf_free(b->keep);
		b->keep = NULL;
	}
}

int
store_blob_write(struct store_blob *b, const void *p, size_t n, struct yj_err *err)
{
	if (b->path == NULL || b->fd < 0)
		return yj_err_set(err, "blob is not open");
	store_blob_keep_add(b, p, n);
	if (n > sizeof(b->buf) - b->buffered) {
		if (store_blob_flush(b, err) < 0)
			return -1;
		/* Too big to buffer: one write, no copy. */
		if (n >= sizeof(b->buf)) {
			if (util_write_all(b->fd, p, n) < 0)
				return yj_err_errno(err, "write blob %s", b->id);
			b->size += n;
			return 1;
		}
	}
	memcpy(b->buf + b->buffered, p, n);
	b->buffered += n;
	b->size += n;
	return 1;
}

int
store_blob_contents(struct store_blob *b, size_t max, struct buf *out, struct yj_err *err)
{
	uint64_t off = 0;

	if (b->path == NULL || b->fd < 0)
		return yj_err_set(err, "blob is not open");
	if (b->size > max)
		return 0;
	if (store_blob_flush(b, err) < 0)
		return -1;
	buf_init(out, (size_t)b->size + 1);
	if (buf_append(out, "", 0) < 0)
		return yj_err_set(err, "blob %s: out of room", b->id);
	while (off < b->size) {
		char chunk[65536];
		size_t want = b->size - off < sizeof(chunk) ? (size_t)(b->size - off) : sizeof(chunk);
		ssize_t n = pread(b->fd, chunk, want, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || buf_append(out, chunk, (size_t)n) < 0) {
			buf_free(out);
			return n < 0 ? yj_err_errno(err, "read blob %s", b->id)
				     : yj_err_set(err, "blob %s is shorter than written", b->id);
		}
		off += (uint64_t)n;
	}
	return 1;
}

long
store_blob_head(struct store_blob *b, void *out, size_t max, struct yj_err *err)
{
	ssize_t n;

	if (b->path == NULL || b->fd < 0)
		return yj_err_set(err, "blob is not open");
	if (store_blob_flush(b, err) < 0)
		return -1;
	if (max > LONG_MAX)
		max = LONG_MAX;
	do
		n = pread(b->fd, out, max, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return yj_err_errno(err, "read blob %s", b->id);
	return (long)n;
}

void
store_blob_abort(struct store_blob *b)
{
	/* path is the mark of a live blob: NULL after create failed, after
	 * an abort and after a delivery took the blob over. */
	if (b->path == NULL)
		return;
	if (b->fd >= 0)
		close(b->fd);
	if (unlink(b->path) < 0 && errno != ENOENT)
		log_warn("store: unlink %s: %s", b->path, strerror(errno));
	free(b->path);
	b->path = NULL;
	b->fd = -1;
	b->buffered = 0;
}

/* ---- reaping unreferenced blobs ---- */

static void
store_idlist_add(struct store_idlist *list, const char *id)
{
	if (list->n == list->cap) {
		size_t cap = list->cap == 0 ? 16 : list->cap * 2;
		void *ids = realloc(list->ids, cap * sizeof(*list->ids));

		if (ids == NULL)
			log_fatal("out of memory");
		list->ids = ids;
		list->cap = cap;
	}
	snprintf(list->ids[list->n++], STORE_BLOB_ID_MAX, "%s", id);
}

void
store_idlist_free(struct store_idlist *list)
{
	free(list->ids);
	list->ids = NULL;
	list->n = list->cap = 0;
}

int
store_blob_reap(struct store *st, struct store_idlist *list, struct yj_err *err)
{
	struct store_q *stmt = store_stmt(st, "SELECT id FROM blobs WHERE refcount <= 0", err);
	int ret;

	if (stmt == NULL)
		return -1;
	while ((ret = store_row(st, stmt, "find unreferenced blobs", err)) == 1)
		store_idlist_add(list, store_col_str(stmt, 0));
	if (ret < 0)
		return -1;
	if (list->n == 0)
		return 1;
	stmt = store_stmt(st, "DELETE FROM blobs WHERE refcount <= 0", err);
	if (stmt == NULL)
		return -1;
	return store_run(st, stmt, "delete unreferenced blobs", err);
}

void
store_blob_unlink_list(struct store *st, struct store_idlist *list)
{
	char path[STORE_PATH_MAX];

	for (size_t i = 0; i < list->n; i++) {
		if (store_blob_path(st, list->ids[i], path, sizeof(path)) < 0) {
			log_warn("store: bad blob id %s in database", list->ids[i]);
			continue;
		}
		/* A failure leaves an orphan, which store_gc() removes. */
		if (unlink(path) < 0 && errno != ENOENT)
			log_warn("store: unlink %s: %s", path, strerror(errno));
	}
	store_idlist_free(list);
}

/* ---- garbage collection ---- */

struct store_gc {
	struct store *st;
	time_t cutoff;			/* files changed after this are left */
	char hour_now[STORE_HOUR_LEN + 1];
	size_t removed;
};

/* 1 if blob id is in the blobs table, 0 if not, -1 error. */
static int
store_blob_known(struct store *st, const char *id, struct yj_err *err)
{
	struct store_q *stmt = store_stmt(st, "SELECT 1 FROM blobs WHERE id = ?1", err);
	int ret;

	if (stmt == NULL)
		return -1;
	store_bind_text(stmt, 1, id);
	ret = store_row(st, stmt, "blob lookup", err);
	if (ret == 1)
		store_reset(stmt);
	return ret;
}

/* Looks at one file of blobs/HOUR: 1 removed, 0 kept, -1 error. */
static int
store_gc_file(struct store_gc *gc, int dfd, const char *hour, const char *name,
	      struct yj_err *err)
{
	char id[STORE_BLOB_ID_MAX];
	struct stat sb;
	int ret;

	if (snprintf(id, sizeof(id), "%s/%s", hour, name) >= (int)sizeof(id) ||
	    !store_blob_id_valid(id))
		return 0;		/* not ours: leave it to the admin */
	if (fstatat(dfd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(sb.st_mode) ||
	    sb.st_mtime > gc->cutoff)
		return 0;
	/* With contents in the database, a file is only ever staged: one
	 * this old belongs to no delivery in flight. */
	ret = gc->st->drv->blobs_in_db ? 0 : store_blob_known(gc->st, id, err);
	if (ret != 0)
		return ret < 0 ? -1 : 0;
	if (unlinkat(dfd, name, 0) < 0) {
		log_warn("store: gc: unlink %s/%s: %s", gc->st->blob_dir, id, strerror(errno));
		return 0;
	}
	gc->removed++;
	return 1;
}

/* Removes the orphans of blobs/HOUR, then the directory itself if it is
 * empty, old and not the one new blobs go to. */
static int
store_gc_dir(struct store_gc *gc, int top, const char *hour, struct yj_err *err)
{
	int dfd = openat(top, hour, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	size_t left = 0;
	struct dirent *ent;
	struct stat sb;
	DIR *dir;
	int ret = 1;

	if (dfd < 0 || (dir = fdopendir(dfd)) == NULL) {
		if (dfd >= 0)
			close(dfd);
		return yj_err_errno(err, "gc: open %s/%s", gc->st->blob_dir, hour);
	}
	while (ret >= 0 && (ent = readdir(dir)) != NULL) {
		if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0)
			continue;
		ret = store_gc_file(gc, dfd, hour, ent->d_name, err);
		if (ret == 0)
			left++;
	}
	if (ret >= 0 && left == 0 && strcmp(hour, gc->hour_now) != 0 &&
	    fstat(dfd, &sb) == 0 && sb.st_mtime <= gc->cutoff)
		unlinkat(top, hour, AT_REMOVEDIR);	/* a new file may have come: fine */
	closedir(dir);
	return ret < 0 ? -1 : 1;
}

int
store_gc(struct store *st, long min_age, struct yj_err *err)
{
	struct store_gc gc = { .st = st };
	time_t now = time(NULL);
	struct dirent *ent;
	DIR *top;
	int ret = 1;

	gc.cutoff = now - (min_age > 0 ? min_age : 0);
	store_blob_hour(now, gc.hour_now);
	if ((top = opendir(st->blob_dir)) == NULL)
		return yj_err_errno(err, "gc: open %s", st->blob_dir);
	while (ret >= 0 && (ent = readdir(top)) != NULL) {
		if (strlen(ent->d_name) != STORE_HOUR_LEN ||
		    !store_all_digits(ent->d_name, STORE_HOUR_LEN))
			continue;
		ret = store_gc_dir(&gc, dirfd(top), ent->d_name, err);
	}
	closedir(top);
	if (gc.removed > 0)
		log_info("store: gc removed %zu orphan blob files", gc.removed);
	return ret < 0 ? -1 : 1;
}
