#include "imap/imap_reader.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/statvfs.h>
#include <unistd.h>

/* While dropping, only a line's tail is kept: enough to see a literal
 * announcement ("~{" 20 digits "+}") at its end. */
#define DROP_TAIL 32

static size_t reader_buf_max(const struct imap_reader_limits *lim);

void
imap_reader_init(struct imap_reader *r, const struct imap_reader_limits *lim)
{
	memset(r, 0, sizeof(*r));
	r->lim = *lim;
	buf_init(&r->cmd, reader_buf_max(lim));
	strcpy(r->tag, "*");
	r->spool_fd = -1;
}

/* ---- the spool file of a large APPEND ---- */

/* The bytes of APPEND literals announced to the readers of this process
 * and not yet written to the spool directory (held in memory, or still
 * to come): free space that is promised already. */
static _Atomic uint64_t spool_promised;

static void
reader_unpromise(struct imap_reader *r, uint64_t n)
{
	if (n > r->announced)
		n = r->announced;
	r->announced -= n;
	atomic_fetch_sub(&spool_promised, n);
}

static void
reader_spool_close(struct imap_reader *r)
{
	reader_unpromise(r, r->announced);
	if (r->map != NULL)
		munmap(r->map, r->map_len);
	if (r->spool_fd >= 0)
		close(r->spool_fd);
	r->map = NULL;
	r->map_len = 0;
	r->spool_fd = -1;
	r->spooled = 0;
}

/* An unlinked file in dir, or -1 with errno set. */
static int
spool_open(const char *dir)
{
	char path[4096];
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

	if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
		return fd;
	/* A file system without O_TMPFILE: a named file, unlinked at once. */
	if (snprintf(path, sizeof(path), "%s/.imap-spool-XXXXXX", dir) >= (int)sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = mkostemp(path, O_CLOEXEC);
	if (fd >= 0)
		(void)unlink(path);
	return fd;
}

static int
spool_write(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Moves what cmd holds (whole lines only) to the spool file. */
static int
reader_spool_flush(struct imap_reader *r)
{
	if (spool_write(r->spool_fd, r->cmd.data, r->cmd.len) < 0)
		return -1;
	r->spooled += r->cmd.len;
	buf_reset(&r->cmd);
	r->line_start = 0;
	return 0;
}

static bool reader_is_append(const struct imap_reader *r);
static void reader_save_tag(struct imap_reader *r);

/* Is there room in the spool directory for size more bytes, besides
 * spool_keep_free and what other literals were promised? If so, they are
 * promised too (until written or the command ends). */
static bool
reader_promise(struct imap_reader *r, uint64_t size)
{
	const struct imap_reader_limits *lim = &r->lim;
	uint64_t promised = atomic_fetch_add(&spool_promised, size) + size;
	struct statvfs fs;

	r->announced += size;
	if (lim->spool_keep_free == 0 || statvfs(lim->spool_dir, &fs) < 0)
		return true;
	/* Added before the check: of two sessions checking at once, neither
	 * can miss the other's literal. */
	if ((uint64_t)fs.f_bavail * fs.f_frsize >= lim->spool_keep_free + promised)
		return true;
	reader_unpromise(r, size);
	return false;
}

/* A literal of size bytes of an APPEND comes next: refused if the disk
 * has no room for it; once the command with it reaches spool_min (one
 * large literal, or many small ones of a MULTIAPPEND), the command goes
 * to a spool file, made now (a failure is answered before "+"). What the
 * command holds so far moves there with the literal's first byte: until
 * then the early answer (imap_reader_partial) can look at it. -1 (with
 * errno) if it cannot. */
static int
reader_spool(struct imap_reader *r, uint64_t size)
{
	if (r->lim.spool_dir == NULL || !reader_is_append(r))
		return 0;
	if (!reader_promise(r, size)) {
		errno = ENOSPC;
		return -1;
	}
	if (r->spool_fd < 0) {
		if (r->lim.spool_min == 0 || r->cmd.len + size < r->lim.spool_min)
			return 0;
		reader_save_tag(r);	/* the command's start will leave memory */
		if ((r->spool_fd = spool_open(r->lim.spool_dir)) < 0)
			return -1;
	}
	return 0;
}

/* The complete spooled command as one private, writable mapping with a
 * NUL after it. */
static int
reader_spool_map(struct imap_reader *r)
{
	void *m;

	if (reader_spool_flush(r) < 0 || spool_write(r->spool_fd, "", 1) < 0)
		return -1;
	m = mmap(NULL, r->spooled + 1, PROT_READ | PROT_WRITE, MAP_PRIVATE, r->spool_fd, 0);
	if (m == MAP_FAILED)
		return -1;
	r->map = m;
	r->map_len = r->spooled + 1;
	return 0;
}

void
imap_reader_free(struct imap_reader *r)
{
	reader_spool_close(r);
	buf_free(&r->cmd);
}

/* What an idle reader keeps of its buffer. */
#define READER_KEEP 4096

static size_t
reader_buf_max(const struct imap_reader_limits *lim)
{
	/* The buffer also holds a dropped line's tail. */
	return lim->command_max > 2 * DROP_TAIL ? lim->command_max : 2 * DROP_TAIL;
}

void
imap_reader_set_limits(struct imap_reader *r, const struct imap_reader_limits *lim)
{
	r->lim = *lim;
	r->cmd.max = reader_buf_max(lim);
	if (r->cmd.len > r->cmd.max)
		buf_reset(&r->cmd);
}

static void
reader_restart(struct imap_reader *r)
{
	reader_spool_close(r);
	buf_reset(&r->cmd);
	r->state = IMAP_RS_LINE;
	r->line_start = 0;
	r->line_len = 0;
	r->literal_left = 0;
	r->literals = 0;
	r->dropping = false;
	r->done = false;
}

/* A tag is astring characters but '+' (RFC 9051 "tag"). */
static bool
tag_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f && c != '+' && c != '(' && c != ')' && c != '{' &&
	       c != '%' && c != '*' && c != '"' && c != '\\';
}

/* Remembers the command's tag for the error reply, before its bytes go. */
static void
reader_save_tag(struct imap_reader *r)
{
	size_t n = 0;

	if (r->spooled > 0)
		return;		/* saved when the command went to the file */
	while (n < r->cmd.len && n <= IMAP_TAG_MAX && tag_char((unsigned char)r->cmd.data[n]))
		n++;
	if (n == 0 || n > IMAP_TAG_MAX || n >= r->cmd.len || r->cmd.data[n] != ' ') {
		strcpy(r->tag, "*");
		return;
	}
	memcpy(r->tag, r->cmd.data, n);
	r->tag[n] = '\0';
}

static enum imap_read_event
reader_fail(struct imap_reader *r, enum imap_read_error error)
{
	if (!r->dropping)
		reader_save_tag(r);
	r->error = error;
	r->dropping = true;
	reader_spool_close(r);
	/* Keep the current line's tail: a literal may be announced there. */
	size_t keep = r->cmd.len - r->line_start;
	if (keep > DROP_TAIL)
		keep = DROP_TAIL;
	memmove(r->cmd.data, r->cmd.data + r->cmd.len - keep, keep);
	r->cmd.len = keep;
	if (r->cmd.cap > 0)
		r->cmd.data[keep] = '\0';
	r->line_start = 0;
	return IMAP_READ_ERROR;
}

/* Keeps bytes of a dropped line: only its tail matters. */
static void
reader_drop_bytes(struct imap_reader *r, const char *p, size_t n)
{
	if (n >= DROP_TAIL) {
		buf_reset(&r->cmd);
		p += n - DROP_TAIL;
		n = DROP_TAIL;
	} else if (r->cmd.len + n > 2 * DROP_TAIL) {
		buf_consume(&r->cmd, r->cmd.len - DROP_TAIL);
	}
	(void)!buf_append(&r->cmd, p, n);
	r->line_len += n;
}

/* Does the line end in a literal announcement, "{n}", "{n+}" or "~{n}"?
 * Sets the size (saturated at UINT64_MAX) and whether it is synchronizing. */
static bool
line_literal(const char *line, size_t len, uint64_t *size_r, bool *sync_r)
{
	size_t end, i;
	uint64_t n = 0;

	if (len < 3 || line[len - 1] != '}')
		return false;
	end = len - 1;
	*sync_r = line[end - 1] != '+';
	if (!*sync_r)
		end--;
	i = end;
	while (i > 0 && line[i - 1] >= '0' && line[i - 1] <= '9')
		i--;
	if (i == end || i == 0 || line[i - 1] != '{')
		return false;
	for (size_t k = i; k < end; k++) {
		unsigned d = (unsigned)(line[k] - '0');
		n = n > (UINT64_MAX - d) / 10 ? UINT64_MAX : n * 10 + d;
	}
	*size_r = n;
	return true;
}

/* Is the command read so far an APPEND (tag SP "APPEND" SP)? */
static bool
reader_is_append(const struct imap_reader *r)
{
	size_t n = 0;

	if (r->spooled > 0)
		return true;	/* only an APPEND goes to the file */
	while (n < r->cmd.len && n <= IMAP_TAG_MAX && tag_char((unsigned char)r->cmd.data[n]))
		n++;
	return n > 0 && n + 8 <= r->cmd.len && r->cmd.data[n] == ' ' &&
	       strncasecmp(r->cmd.data + n + 1, "APPEND ", 7) == 0;
}

/* How large the command being read may grow. Only an APPEND's literals
 * are messages: any other command stays within other_max, so that a
 * literal announced for a name or a search string (from a few bytes
 * under COMPRESS) cannot make a session hold a message's worth. Until
 * the verb is known, the first line is bounded by line_max. */
static size_t
reader_cmd_max(const struct imap_reader *r)
{
	size_t other = r->lim.other_max;

	if (other == 0 || other >= r->cmd.max || reader_is_append(r))
		return r->cmd.max;
	return other;
}

/* Expects size bytes of literal; with none, the next line starts now. */
static void
reader_expect(struct imap_reader *r, uint64_t size)
{
	r->literal_left = size;
	r->state = IMAP_RS_LITERAL;
	if (r->dropping) {
		/* Only the next line's own tail is looked at. */
		buf_reset(&r->cmd);
		r->line_start = 0;
	}
	if (size == 0) {
		r->state = IMAP_RS_LINE;
		r->line_start = r->cmd.len;
	}
	r->line_len = 0;
}

/* A literal was announced at the end of the current line. */
static enum imap_read_event
reader_literal(struct imap_reader *r, uint64_t size, bool sync, bool *stop_r)
{
	*stop_r = false;
	r->literal_size = size;
	if (r->dropping) {
		/* A {n} of a refused command is never answered with "+": the
		 * client sees the tagged reply and its command is over. */
		if (sync)
			reader_restart(r);
		else
			reader_expect(r, size);
		return IMAP_READ_MORE;
	}
	*stop_r = true;
	size_t cmd_max = reader_cmd_max(r);
	size_t held = r->spooled + r->cmd.len;
	bool too_big = size > r->lim.literal_max ||
		       (!sync && r->lim.nonsync_max > 0 && size > r->lim.nonsync_max);
	bool cmd_full = r->literals >= r->lim.literals_max || held + 2 > cmd_max ||
			size > cmd_max - held - 2;
	if (too_big || cmd_full) {
		if (sync) {
			/* Nothing more comes: the client waits for "+". */
			reader_save_tag(r);
			r->error = IMAP_RERR_LITERAL_TOO_BIG;
			reader_restart(r);
			return IMAP_READ_ERROR;
		}
		reader_fail(r, too_big ? IMAP_RERR_NONSYNC_TOO_BIG : IMAP_RERR_COMMAND_TOO_BIG);
		reader_expect(r, size);
		return IMAP_READ_ERROR;
	}
	if (!sync && r->lim.nonsync_refused) {
		reader_fail(r, IMAP_RERR_NONSYNC_REFUSED);
		reader_expect(r, size);
		return IMAP_READ_ERROR;
	}
	if (buf_append(&r->cmd, "\r\n", 2) < 0)
		return reader_fail(r, IMAP_RERR_COMMAND_TOO_BIG);
	r->literals++;
	if (size > 0 && reader_spool(r, size) < 0) {
		if (sync) {
			reader_save_tag(r);
			r->error = IMAP_RERR_SPOOL_FAILED;
			reader_restart(r);
			return IMAP_READ_ERROR;
		}
		reader_fail(r, IMAP_RERR_SPOOL_FAILED);
		reader_expect(r, size);
		return IMAP_READ_ERROR;
	}
	reader_expect(r, size);
	if (sync)
		return IMAP_READ_CONTINUE;
	*stop_r = false;
	return IMAP_READ_MORE;
}

/* The current line ended (its LF was taken). */
static enum imap_read_event
reader_line_end(struct imap_reader *r, bool *stop_r)
{
	size_t len = r->cmd.len - r->line_start;
	char *line = r->cmd.data + r->line_start;
	uint64_t size;
	bool sync;

	if (len > 0 && line[len - 1] == '\r') {
		r->cmd.len--;
		r->cmd.data[r->cmd.len] = '\0';
		len--;
	}
	if (line_literal(line, len, &size, &sync))
		return reader_literal(r, size, sync, stop_r);
	*stop_r = false;
	if (r->dropping) {
		reader_restart(r);
		return IMAP_READ_MORE;
	}
	if (r->spooled + r->cmd.len == 0) {
		/* Empty lines between commands are forgiven. */
		r->line_len = 0;
		return IMAP_READ_MORE;
	}
	*stop_r = true;
	r->done = true;
	return IMAP_READ_COMMAND;
}

/* Is the line, now ended, longer than line_max? The CR of a CRLF is not
 * counted: one byte more is allowed if it is a CR. */
static bool
reader_line_long(const struct imap_reader *r)
{
	if (r->line_len <= r->lim.line_max)
		return false;
	return r->line_len > r->lim.line_max + 1 || r->cmd.len == 0 ||
	       r->cmd.data[r->cmd.len - 1] != '\r';
}

/* Stores n line bytes, or fails at the first byte that passes a limit
 * (line or command, whichever comes first in the stream, so that where
 * the input was split does not matter). Returns the bytes stored. */
static size_t
reader_store(struct imap_reader *r, const char *p, size_t n, bool *failed_r)
{
	size_t line_room = r->lim.line_max + 1 - r->line_len;
	size_t cmd_max = reader_cmd_max(r);
	size_t held = r->spooled + r->cmd.len;
	size_t cmd_room = cmd_max > held ? cmd_max - held : 0;
	size_t keep = n;

	*failed_r = n > line_room || n > cmd_room;
	if (*failed_r)
		keep = cmd_room < line_room ? cmd_room : line_room;
	/* What fits is kept, so that the tag is known for the reply. */
	(void)!buf_append(&r->cmd, p, keep);
	r->line_len += keep;
	if (*failed_r)
		reader_fail(r, cmd_room < line_room ? IMAP_RERR_COMMAND_TOO_BIG
						    : IMAP_RERR_LINE_TOO_LONG);
	return keep;
}

/* Takes line bytes up to and including an LF. */
static enum imap_read_event
reader_line(struct imap_reader *r, const char *p, size_t len, size_t *used_r, bool *stop_r)
{
	const char *lf = memchr(p, '\n', len);
	size_t n = lf != NULL ? (size_t)(lf - p) : len;
	bool failed = false;
	enum imap_read_event ev;

	*stop_r = false;
	*used_r = n + (lf != NULL);
	if (!r->dropping) {
		size_t kept = reader_store(r, p, n, &failed);
		p += kept;
		n -= kept;
	}
	if (r->dropping)
		reader_drop_bytes(r, p, n);
	if (lf != NULL && !r->dropping && reader_line_long(r)) {
		reader_fail(r, IMAP_RERR_LINE_TOO_LONG);
		failed = true;
	}
	ev = lf != NULL ? reader_line_end(r, stop_r) : IMAP_READ_MORE;
	if (failed) {
		*stop_r = true;
		return IMAP_READ_ERROR;
	}
	return ev;
}

/* Takes literal bytes; *failed_r if the spool file could not take them
 * (the rest of the command is then dropped). */
static size_t
reader_literal_bytes(struct imap_reader *r, const char *p, size_t len, bool *failed_r)
{
	size_t n = len < r->literal_left ? len : (size_t)r->literal_left;

	*failed_r = false;
	if (r->dropping) {
		/* skipped */
	} else if (r->spool_fd >= 0) {
		if ((r->cmd.len == 0 || reader_spool_flush(r) == 0) &&
		    spool_write(r->spool_fd, p, n) == 0) {
			r->spooled += n;
			reader_unpromise(r, n);	/* statvfs sees them now */
		} else {
			reader_fail(r, IMAP_RERR_SPOOL_FAILED);
			*failed_r = true;
		}
	} else if (buf_append(&r->cmd, p, n) < 0) {
		n = 0;	/* cannot happen: the size was checked when announced */
	}
	r->literal_left -= n;
	if (r->literal_left == 0)
		reader_expect(r, 0);
	return n;
}

enum imap_read_event
imap_reader_feed(struct imap_reader *r, const void *data, size_t len, size_t *used_r)
{
	const char *p = data;
	size_t pos = 0;

	if (r->done)
		reader_restart(r);
	r->error = IMAP_RERR_NONE;
	while (pos < len) {
		size_t used = 0;
		bool stop = false;
		enum imap_read_event ev = IMAP_READ_MORE;

		if (r->state == IMAP_RS_LITERAL && r->literal_left > 0) {
			used = reader_literal_bytes(r, p + pos, len - pos, &stop);
			ev = IMAP_READ_ERROR;
		} else
			ev = reader_line(r, p + pos, len - pos, &used, &stop);
		pos += used;
		if (stop) {
			*used_r = pos;
			return ev;
		}
	}
	*used_r = pos;
	return IMAP_READ_MORE;
}

char *
imap_reader_command(struct imap_reader *r, size_t *len_r)
{
	if (r->spool_fd < 0) {
		*len_r = r->cmd.len;
		return r->cmd.data != NULL ? r->cmd.data : (char *)"";
	}
	if (r->map == NULL && reader_spool_map(r) < 0) {
		r->error = IMAP_RERR_SPOOL_FAILED;
		*len_r = 0;
		return NULL;
	}
	*len_r = r->map_len - 1;
	return r->map;
}

const char *
imap_reader_partial(const struct imap_reader *r, size_t *len_r, uint64_t *size_r)
{
	*len_r = r->cmd.len;
	*size_r = r->literal_size;
	return r->spooled == 0 && r->cmd.data != NULL ? r->cmd.data : NULL;
}

void
imap_reader_refuse(struct imap_reader *r)
{
	reader_restart(r);
}

bool
imap_reader_spooled(const struct imap_reader *r)
{
	return r->spool_fd >= 0;
}

enum imap_read_error
imap_reader_error(const struct imap_reader *r)
{
	return r->error;
}

const char *
imap_reader_error_text(const struct imap_reader *r)
{
	switch (r->error) {
	case IMAP_RERR_LINE_TOO_LONG:
		return "BAD [TOOBIG] Command line too long";
	case IMAP_RERR_LITERAL_TOO_BIG:
		return "NO [TOOBIG] Literal too large";
	case IMAP_RERR_NONSYNC_TOO_BIG:
		return "BAD [TOOBIG] Literal too large";
	case IMAP_RERR_NONSYNC_REFUSED:
		return "BAD Non-synchronizing literals are not supported";
	case IMAP_RERR_COMMAND_TOO_BIG:
		return "BAD [TOOBIG] Command too large";
	case IMAP_RERR_SPOOL_FAILED:
		return "NO [UNAVAILABLE] Cannot hold the message now";
	case IMAP_RERR_NONE:
		break;
	}
	return "BAD Internal error";
}

const char *
imap_reader_error_tag(const struct imap_reader *r)
{
	return r->tag;
}

bool
imap_reader_idle(const struct imap_reader *r)
{
	return r->done || (r->cmd.len == 0 && r->spooled == 0 && r->state == IMAP_RS_LINE && !r->dropping &&
			   r->line_len == 0);
}

bool
imap_is_done_line(const char *line, size_t len)
{
	while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\r' || line[len - 1] == '\n'))
		len--;
	return len == 4 && strncasecmp(line, "DONE", 4) == 0;
}

void
imap_reader_release(struct imap_reader *r)
{
	if (!imap_reader_idle(r))
		return;
	reader_spool_close(r);	/* of the command just run */
	if (r->cmd.cap <= READER_KEEP)
		return;
	buf_free(&r->cmd);
	buf_init(&r->cmd, reader_buf_max(&r->lim));
	reader_restart(r);
}
