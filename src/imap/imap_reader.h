/* imap_reader.h - frames IMAP commands: lines and literals (RFC 9051 4.3,
 * RFC 7888 LITERAL+ and LITERAL-, RFC 3516 literal8).
 * Code over bytes; its only I/O is the spool file below, and its only
 * shared state the count of free space promised to APPEND literals.
 *
 * The server feeds whatever bytes it has; the reader takes what belongs to
 * the current command and stops at each event, saying how much it used.
 * What it did not use (a pipelined command, the bytes after DONE) stays
 * with the caller, so input may be split anywhere and commands may follow
 * each other in one read.
 *
 * A complete command is kept as one buffer: its lines, each but the last
 * followed by CRLF (a bare LF is taken as CRLF), with each literal's bytes
 * after the CRLF of the line announcing it. imap_cmd_parse() reads it.
 *
 * Every limit is checked before the bytes are stored: a line longer than
 * line_max, a literal larger than literal_max (or a non-synchronizing one
 * larger than nonsync_max) or a command larger than command_max is refused
 * as soon as it is known, before a literal's bytes are read. After such an
 * error the reader drops the rest of the command by itself.
 *
 * An APPEND that reaches spool_min with a literal (one large message, or
 * the many small ones of a MULTIAPPEND) is held in a file (an unlinked
 * one in spool_dir) rather than in memory, as it comes: a session that
 * stalls inside its message, or whose client sends it compressed (a few
 * KB of deflate can announce 50 MB of zeros), holds disk, not memory. The
 * complete command is then handed over as a private mapping of that file,
 * still one writable buffer.
 *
 * spool_keep_free is checked when an APPEND literal is announced, before
 * any of its bytes are on disk: the bytes that every reader of the
 * process has been promised and not yet written are counted with it, so
 * that sessions announcing at once do not each see the same free space.
 */
#ifndef YJ_IMAP_READER_H
#define YJ_IMAP_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

/* A tag longer than this is not echoed in a reply ("*" is used). */
#define IMAP_TAG_MAX 64
/* RFC 7888: with LITERAL-, non-synchronizing literals are at most 4096. */
#define IMAP_LITERAL_MINUS_MAX 4096

struct imap_reader_limits {
	size_t line_max;	/* one line, without its CRLF */
	uint64_t literal_max;	/* one literal (the server's APPENDLIMIT) */
	uint64_t nonsync_max;	/* one {n+} literal; 4096 for LITERAL- */
	bool nonsync_refused;	/* no {n+} at all (neither LITERAL+ nor -) */
	size_t command_max;	/* the whole command, literals included */
	size_t other_max;	/* the same for a command other than APPEND,
				 * whose literals are names and strings, not
				 * messages; 0: command_max */
	unsigned literals_max;	/* literals in one command (MULTIAPPEND) */
	const char *spool_dir;	/* where large APPENDs are held; NULL: memory */
	uint64_t spool_min;	/* the command size from which they are */
	uint64_t spool_keep_free;	/* refuse an APPEND literal that would
					 * leave less free in spool_dir */
};

enum imap_read_event {
	IMAP_READ_MORE,		/* all input used; feed more */
	IMAP_READ_CONTINUE,	/* a {n} literal was accepted: send "+ ..." now */
	IMAP_READ_COMMAND,	/* a command is complete: imap_reader_command() */
	IMAP_READ_ERROR,	/* refused; see imap_reader_error() */
};

enum imap_read_error {
	IMAP_RERR_NONE,
	/* The line passed line_max. Answer BAD; the rest of the command is
	 * dropped (the reader skips to the end of the line). */
	IMAP_RERR_LINE_TOO_LONG,
	/* A {n} literal too large: nothing was sent yet. Answer NO [TOOBIG]
	 * (or BAD); the command is over and the next one may follow. */
	IMAP_RERR_LITERAL_TOO_BIG,
	/* A {n+} literal too large (or over 4096 with LITERAL-): its bytes
	 * are on their way. Answer BAD [TOOBIG]; the reader skips them and
	 * the rest of the command, or the server closes the connection. */
	IMAP_RERR_NONSYNC_TOO_BIG,
	/* A {n+} literal where none is served (nonsync_refused): answered
	 * and skipped as above, with BAD. */
	IMAP_RERR_NONSYNC_REFUSED,
	/* The command as a whole passed command_max or literals_max; as
	 * above, its bytes are skipped. */
	IMAP_RERR_COMMAND_TOO_BIG,
	/* The spool file could not be made, written or mapped, or an
	 * APPEND literal would leave less than spool_keep_free in spool_dir
	 * (a {n} is refused before "+"): answer NO [UNAVAILABLE]; the rest
	 * of the command is skipped. */
	IMAP_RERR_SPOOL_FAILED,
};

enum imap_reader_state {
	IMAP_RS_LINE,		/* in a line */
	IMAP_RS_LITERAL,	/* in a literal's bytes */
};

struct imap_reader {
	struct imap_reader_limits lim;
	struct buf cmd;		/* the command so far (or a line's tail when dropping) */
	enum imap_reader_state state;
	size_t line_start;	/* where the current line starts in cmd */
	size_t line_len;	/* its length so far, also when dropping */
	uint64_t literal_left;	/* bytes of the current literal still to come */
	unsigned literals;	/* literals in this command */
	bool dropping;		/* the rest of a refused command is skipped */
	bool done;		/* a command was returned; start afresh on the next feed */
	enum imap_read_error error;
	uint64_t literal_size;	/* the last literal announced */
	char tag[IMAP_TAG_MAX + 1];	/* of the refused command, or "*" */
	int spool_fd;		/* the file holding the command, or -1 */
	uint64_t spooled;	/* bytes of the command there, before cmd's */
	char *map;		/* the spooled command, mapped once complete */
	uint64_t announced;	/* bytes of its APPEND literals counted against
				 * spool_keep_free and not yet in spool_dir */
	size_t map_len;
};

void imap_reader_init(struct imap_reader *r, const struct imap_reader_limits *lim);
void imap_reader_free(struct imap_reader *r);
/* New limits from the next command on (smaller before login, APPENDLIMIT
 * after). Only between commands (imap_reader_idle()). */
void imap_reader_set_limits(struct imap_reader *r, const struct imap_reader_limits *lim);
/* Gives back the command buffer's memory if it is larger than a few KiB,
 * and the spool file of the command just run; only between commands. For
 * a session about to be parked. */
void imap_reader_release(struct imap_reader *r);

/* Takes bytes from data[0..len) up to the next event and sets *used_r to
 * how many it took. Returns the event. After IMAP_READ_COMMAND the command
 * stays valid (and writable, for the parser) until the next call. */
enum imap_read_event imap_reader_feed(struct imap_reader *r, const void *data, size_t len,
				      size_t *used_r);

/* The command after IMAP_READ_COMMAND: its bytes, NUL-terminated, and
 * writable (imap_cmd_parse() works in place). NULL if a spooled command
 * could not be mapped: answer imap_reader_error_text(), as for an error. */
char *imap_reader_command(struct imap_reader *r, size_t *len_r);

/* After IMAP_READ_CONTINUE: the command so far, ending in the literal's
 * announcement and its CRLF, and the literal's size; NULL if part of it
 * is held in a spool file already (an earlier literal went there; the
 * one just announced moves it there only with its first byte). */
const char *imap_reader_partial(const struct imap_reader *r, size_t *len_r, uint64_t *size_r);

/* After IMAP_READ_CONTINUE, in place of the "+": the server has answered
 * the command already (RFC 9051 7.5 lets it refuse a literal so), the
 * client sends nothing more of it, and the reader starts afresh. */
void imap_reader_refuse(struct imap_reader *r);

/* Is the command held in a spool file (not worth wiping, never a
 * password: only APPEND spools)? */
bool imap_reader_spooled(const struct imap_reader *r);

/* After IMAP_READ_ERROR: what went wrong, a reply text without tag
 * ("BAD [TOOBIG] Literal too large"), and the tag to answer with. */
enum imap_read_error imap_reader_error(const struct imap_reader *r);
const char *imap_reader_error_text(const struct imap_reader *r);
const char *imap_reader_error_tag(const struct imap_reader *r);

/* Is the reader between commands (nothing of a command held)? The server
 * checks this before it parks a session. */
bool imap_reader_idle(const struct imap_reader *r);

/* Is this line (without CRLF) the DONE that ends IDLE? Case-insensitive;
 * trailing spaces are forgiven. */
bool imap_is_done_line(const char *line, size_t len);

#endif
