/* imap_session.h - one IMAP session's record, shared by the parts of the
 * server (not a public interface):
 *   imap_server.c         greeting, command loop, dispatch, CAPABILITY,
 *                         NOOP, LOGOUT, STARTTLS, ENABLE, ID, LOGIN,
 *                         AUTHENTICATE
 *   imap_server_mailbox.c SELECT/EXAMINE, the selected mailbox's view and
 *                         its updates, CREATE, DELETE, RENAME, SUBSCRIBE,
 *                         LIST/LSUB, NAMESPACE, STATUS, CLOSE, UNSELECT
 *   imap_server_fetch.c   FETCH
 *   imap_server_store.c   STORE, EXPUNGE, APPEND, COPY, MOVE
 *   imap_server_search.c  SEARCH, message matching, the SEARCHRES result
 *   imap_server_sort.c    SORT and THREAD
 *   imap_server_quota.c   GETQUOTAROOT, GETQUOTA, SETQUOTA
 *   imap_server_qresync.c VANISHED (EARLIER) for SELECT QRESYNC and UID FETCH
 *   imap_server_idle.c    IDLE, and waking idle sessions on changes
 */
#ifndef YJ_IMAP_SESSION_H
#define YJ_IMAP_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "auth/auth.h"
#include "deliver/deliver_index.h"
#include "imap/imap_mailbox.h"
#include "imap/imap_parse.h"
#include "imap/imap_reader.h"
#include "net/session.h"
#include "store/store.h"

/* Hierarchy delimiter of mailbox names. */
#define IMAP_DELIM IMAP_MAILBOX_DELIM
/* Commands in a row that could not be run before the session is ended. */
#define IMAP_BAD_COMMANDS_MAX 20
/* The largest message a FETCH loads (a stored message is never larger
 * than what SMTP or APPEND accepted). */
#define IMAP_MESSAGE_MAX (256u << 20)
/* The most of a message's header a FETCH of ENVELOPE or header
 * sections reads (a longer header is read with the whole message). */
#define IMAP_HEADER_LOAD_MAX DELIVER_HEADER_MAX
/* A piece of a message body streamed by FETCH (one database round trip
 * where the database keeps the contents); below malloc's mmap threshold,
 * so that each FETCH does not map and fault in fresh pages. */
#define IMAP_STREAM_CHUNK (64u << 10)
/* One response line built in memory (FETCH with a body is larger: its
 * limit is the message's size plus this). */
#define IMAP_RESPONSE_MAX (1u << 20)

enum imap_state { IMAP_NOTAUTH, IMAP_AUTH, IMAP_SELECTED, IMAP_LOGOUT };

/* A message as this session numbers it. gone: expunged elsewhere, but
 * its sequence number stays until an EXPUNGE response may be sent. */
struct imap_msg {
	uint32_t uid;
	uint32_t flags;
	uint64_t keywords;
	uint64_t modseq;
	bool gone;
	bool recent;			/* \Recent in this session (IMAP4rev1) */
};

/* A message's flags as imap_flags_write() takes them: the stored ones
 * and, as IMAP_FLAG_BIT_RECENT, this session's \Recent. */
#define IMAP_FLAG_BIT_RECENT (1u << 5)
static inline uint32_t
imap_msg_flags(const struct imap_msg *m)
{
	return m->flags | (m->recent ? IMAP_FLAG_BIT_RECENT : 0);
}

struct imap_idle_entry;

struct imap_session {
	struct session_ctx *ctx;
	const struct config *cfg;
	struct conn *conn;
	enum imap_state state;
	struct imap_reader reader;
	struct imap_cmd cmd;
	struct auth_client auth;
	unsigned bad_commands;
	const char *end_reason;
	bool closing;			/* a BYE was sent: end after this step */
	struct store *store;		/* borrowed for one step, else NULL */
	bool tagged_lets_go;		/* imap_writes_done: the command reads
					 * the store no more, so a wait for its
					 * tagged reply gives it back too */
	struct store_account account;
	bool utf8;			/* ENABLE UTF8=ACCEPT (or IMAP4rev2) */
	bool rev2;			/* ENABLE IMAP4rev2 */
	uint64_t caps_off;		/* capabilities the account switched off */
	bool condstore;			/* CONDSTORE enabled (ENABLE or a MODSEQ use) */
	bool qresync;

	/* the selected mailbox */
	struct store_mailbox mb;
	bool readonly;
	struct imap_msg *msgs;
	size_t n_msgs, cap_msgs;
	uint64_t seen_modseq;		/* the mailbox's MODSEQ the view matches */
	uint64_t deletions_seen;	/* mailbox deletions counted when the
					 * selected one was last found there */
	char *keywords[STORE_KEYWORDS_MAX + 1];	/* names by bit */
	uint32_t *saved_uids;		/* SEARCHRES "$", sorted */
	size_t n_saved;

	/* IDLE */
	bool idling;
	char idle_tag[IMAP_TAG_MAX + 1];
	struct imap_idle_entry *idle;
};

/* Replies. */
void imap_printf(struct imap_session *s, const char *fmt, ...) YJ_PRINTF(2, 3);
/* The tagged reply; before it, the selected mailbox's changes
 * (imap_sync), with expunges if imap_expunge_allowed(). */
void imap_tagged(struct imap_session *s, const char *fmt, ...) YJ_PRINTF(2, 3);
bool imap_expunge_allowed(enum imap_cmd_name name);
void imap_send_buf(struct imap_session *s, const struct buf *b);
/* Borrows the store for this step (given back after it); false if it
 * cannot be opened (logged). */
bool imap_store_ready(struct imap_session *s);
/* From imap_writes_let_go until imap_writes_done, a write that waits on
 * a slow client gives the store connection back (conn_on_slow_peer), so
 * every use of the store meanwhile borrows it first (imap_store_ready).
 * A command calls it only where nothing of the store is open across its
 * writes, and calls imap_writes_done, which borrows the store again,
 * before its tagged reply (imap_sync reads the store and writes). After
 * imap_writes_done the command must not use the store past its
 * imap_tagged, whose write of the tagged line may give it back. */
void imap_writes_let_go(struct imap_session *s);
bool imap_writes_done(struct imap_session *s);

typedef int imap_handler_fn(struct imap_session *s, struct imap_cmd *cmd);

/* imap_server_mailbox.c */
imap_handler_fn imap_cmd_select, imap_cmd_create, imap_cmd_delete, imap_cmd_rename,
	imap_cmd_subscribe, imap_cmd_list, imap_cmd_namespace, imap_cmd_status,
	imap_cmd_close, imap_cmd_check;
/* Brings the view of the selected mailbox up to date and tells the
 * client: new messages (EXISTS), flag changes (FETCH) and, if
 * expunge_ok, expunges (EXPUNGE). Returns 1, or -1 if the mailbox went
 * away (the session is then back in the authenticated state). */
int imap_sync(struct imap_session *s, bool expunge_ok);
/* A CONDSTORE-enabling use (RFC 7162 3.1: a MODSEQ fetch or search key,
 * CHANGEDSINCE, UNCHANGEDSINCE): CONDSTORE is on from now; the first one
 * with a mailbox selected tells its HIGHESTMODSEQ in an untagged OK. */
void imap_condstore_use(struct imap_session *s);
/* Before a command that reads or changes messages by UID: false if the
 * selected mailbox was deleted meanwhile (made again under its name, it
 * is another mailbox); the session then said BYE, as imap_sync does. */
bool imap_selected_check(struct imap_session *s);
void imap_unselect(struct imap_session *s);
/* The messages of the view a set names (seq numbers or, uid, UIDs);
 * indexes into s->msgs, gone ones left out unless with_gone. Caller
 * frees. */
size_t imap_set_resolve_ex(struct imap_session *s, const struct imap_seqset *set, bool uid,
			   bool with_gone, size_t **idx_r);
size_t imap_set_resolve(struct imap_session *s, const struct imap_seqset *set, bool uid,
			size_t **idx_r);
/* Sends "* seq FETCH (UID u FLAGS (...))" for message m of the view,
 * with its MODSEQ once CONDSTORE is on. */
void imap_send_flags(struct imap_session *s, size_t seq, const struct imap_msg *m);
/* Appends "(\Seen $Forwarded)" for a message's flags (imap_msg_flags()). */
int imap_flags_write(struct imap_session *s, struct buf *b, uint32_t flags, uint64_t kw);
/* The selected mailbox's keyword names, read from the store (SELECT
 * tells them). 1, or -1 (logged). */
int imap_keywords_load(struct imap_session *s);
/* The same, later: when the names differ from those the client was
 * told (a STORE, APPEND, COPY or MOVE here or in another session made
 * a keyword), sends FLAGS and PERMANENTFLAGS again (RFC 9051 7.3.5), so
 * that no FETCH shows a keyword FLAGS has not named; PERMANENTFLAGS
 * loses \* once every keyword slot is taken. On a store error the
 * names stay as they were. */
void imap_keywords_refresh(struct imap_session *s);
/* The mailbox named by a command, with INBOX in any case. */
int imap_mailbox_lookup(struct imap_session *s, const char *name, struct store_mailbox *mb);

/* imap_server_qresync.c */
/* After SELECT (QRESYNC (...)): VANISHED (EARLIER) and the changed
 * messages' FETCH since the client's MODSEQ (RFC 7162 3.2.5). */
void imap_qresync_select(struct imap_session *s, const struct imap_select *sel);
/* UID FETCH (CHANGEDSINCE n VANISHED): the UIDs of set expunged since n. */
void imap_vanished_earlier(struct imap_session *s, uint64_t since, const struct imap_seqset *set);

/* imap_server_fetch.c */
imap_handler_fn imap_cmd_fetch;
/* Reads a message's bytes (prefix + blob) into b. 1 or -1. */
int imap_msg_load(struct imap_session *s, uint32_t uid, struct buf *b, struct store_msg *m);
/* Reads only the header of the message whose row is m (prefix + blob
 * up to the empty line) into b: ENVELOPE, header sections and header
 * search keys need no more. A header longer than IMAP_HEADER_LOAD_MAX is
 * read with the whole message. 1 or -1. */
int imap_msg_read_header(struct imap_session *s, const struct store_msg *m, struct buf *b);
/* The same header from the blob's stored summary (its header lines
 * kept, sum->len[STORE_SUMMARY_HEADER] > 0): no blob to read. 1, or -1
 * (b is to be freed either way). */
int imap_header_from_summary(const struct store_msg *m, const struct store_summary *sum,
			     struct buf *b);

/* imap_server_store.c */
imap_handler_fn imap_cmd_store, imap_cmd_expunge, imap_cmd_append, imap_cmd_copy;
/* Before the "+" of an APPEND's first message literal: answers the
 * APPEND now if its mailbox does not exist or the message (size bytes)
 * would pass the quota. partial is the command so far. 1 answered (the
 * literal is refused), 0 go on. */
int imap_append_answered_early(struct imap_session *s, const char *partial, size_t len,
			       uint64_t size);
/* The UIDs of view indexes (ascending) as a set for the store: runs of
 * consecutive UIDs make one range, so that the store runs one statement
 * per run rather than per message. The ranges are malloc'd (free them). */
struct store_uidset imap_uid_ranges(struct imap_session *s, const size_t *idx, size_t n);

/* imap_server_quota.c */
imap_handler_fn imap_cmd_getquotaroot, imap_cmd_getquota, imap_cmd_setquota;

/* imap_server_search.c */
imap_handler_fn imap_cmd_search;
/* Text keys (BODY, TEXT and the header keys) in one search program:
 * each is a substring scan of every message, so this bounds a search's
 * work per message. Thunderbird and iOS Mail send a few (one per field
 * searched, per word); a hundred is far beyond a hand-built filter. */
#define IMAP_SEARCH_TEXT_KEYS_MAX 100
/* The view's messages that match a search program: 1 with indexes into
 * s->msgs in order, gone ones left out, in *idx_r (caller frees) and
 * their number in *n_r. 0 if the search is over a limit, with *idx_r
 * NULL and the reason in *why_r, for the caller's "NO [LIMIT]": more
 * than IMAP_SEARCH_TEXT_KEYS_MAX text keys, or still not done at
 * deadline (checked between messages; IMAP_SEARCH_TOO_LONG), so that
 * no command holds a worker for long. */
int imap_search_run(struct imap_session *s, const struct imap_search *search, int64_t deadline,
		    size_t **idx_r, size_t *n_r, const char **why_r);
/* When a SEARCH, SORT or THREAD starting now must be done by
 * (imap_search_time_limit from now, util_now_ms() time): one budget for
 * all its work, the scan and what SORT and THREAD read after it. */
int64_t imap_search_deadline(const struct imap_session *s);
#define IMAP_SEARCH_TOO_LONG "Search took too long"
/* Is a SEARCH/SORT/THREAD charset served? If not, sends the tagged NO
 * [BADCHARSET] and returns false. */
bool imap_charset_ok(struct imap_session *s, const char *charset);
/* The "* ESEARCH (TAG ...)" reply of a SEARCH or SORT RETURN (...)
 * (RFC 4731, RFC 5267, RFC 9394 PARTIAL): hits[0..n) in the result's
 * order (MIN is the first, MAX the last). 1, or -1 if b is full. */
int imap_esearch_write(struct buf *b, const struct imap_cmd *cmd, const uint32_t *hits, size_t n,
		       uint64_t maxmodseq);
/* The part of a result of n that RETURN (PARTIAL ...) asks for. */
void imap_partial_slice(const struct imap_search *search, size_t n, size_t *from_r,
			size_t *count_r);
/* SEARCHRES (RFC 5182): "$" is the set of UIDs SEARCH saved last; it
 * is emptied when the mailbox is left (imap_unselect) or a SAVE fails. */
bool imap_saved_has(const struct imap_session *s, uint32_t uid);
void imap_saved_clear(struct imap_session *s);

/* imap_server_sort.c */
imap_handler_fn imap_cmd_sort, imap_cmd_thread;

/* imap_server_caps.c */
/* After login: the capabilities the account switched off. */
void imap_caps_load(struct imap_session *s);
/* "IMAP4rev1 IMAP4rev2" (without what is off); returns its length. */
size_t imap_caps_versions(const struct imap_session *s, char *out, size_t outlen);
/* " LITERAL+ ID ..." : the extensions announced now. */
void imap_caps_ext(const struct imap_session *s, char *out, size_t outlen);
/* Is the capability, or the command that comes with one, switched off? */
bool imap_cap_off(const struct imap_session *s, const char *name);
bool imap_cmd_off(const struct imap_session *s, enum imap_cmd_name name);
/* The switched-off capability whose syntax a parsed command uses
 * (a FETCH item, SEARCH key, RETURN option, ...), or NULL. */
const char *imap_cmd_uses_off(const struct imap_session *s, const struct imap_cmd *cmd);

/* imap_server_ext.c */
struct mime_msg;
/* RFC 8474 ids: stable across restarts and `youju store copy`. */
void imap_mailboxid(const struct store_mailbox *mb, char *out, size_t outlen);
void imap_emailid(const struct store_msg *sm, char *out, size_t outlen);
/* The value of an EMAILID, THREADID, SAVEDATE or PREVIEW FETCH item (mm
 * is parsed for PREVIEW only). 1, -1 if out is full, 0 if a is another. */
int imap_fetch_ext(struct imap_session *s, const struct store_msg *sm, const struct mime_msg *mm,
		   const struct imap_fetch_att *a, struct buf *out);
/* An OBJECTID or SAVEDATE SEARCH key: 1 match, 0 not, -1 another key. */
int imap_search_ext(const struct imap_search_key *k, const struct store_msg *sm);

/* imap_server_idle.c */
imap_handler_fn imap_cmd_idle;
/* A step while in IDLE. Returns 1 to go on, 0 to end the session. */
int imap_idle_step(struct imap_session *s);
void imap_idle_stop(struct imap_session *s);

#endif
