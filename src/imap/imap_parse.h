/* imap_parse.h - IMAP commands: a framed command (imap_reader.h) checked
 * against the grammar of RFC 3501 and RFC 9051 and the extensions youju
 * serves, and turned into typed values. Pure code: no I/O, no globals.
 *
 * imap_cmd_parse() reads the command in place (its strings are decoded in
 * the reader's buffer) and allocates what it builds from the command's
 * arena; everything stays valid until imap_cmd_clear() or the next parse.
 * On bad syntax it fills cmd->error with the complete reply after the tag
 * ("BAD FETCH: Invalid sequence set"); the text never echoes the client's
 * input, which may hold a password. cmd->tag is "*" when the tag itself
 * was bad.
 *
 * Liberal where the meaning is clear: commands and keywords in any case,
 * extra spaces, CHANGEDSINCE 0, a flag list without parentheses in STORE,
 * a raw '&' in mailbox names (imap_mailbox.h). Whether a command suits the
 * session's state, and anything needing the mailbox, is the server's.
 */
#ifndef YJ_IMAP_PARSE_H
#define YJ_IMAP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "imap/imap_args.h"
#include "imap/imap_date.h"
#include "imap/imap_reader.h"
#include "imap/imap_seqset.h"

/* What one command may allocate for its values. */
#define IMAP_ARENA_MAX (4u << 20)
/* Nested body part numbers in a section ("1.2.3"). */
#define IMAP_PART_DEPTH_MAX 32
/* Header field names in one HEADER.FIELDS list. */
#define IMAP_FIELDS_MAX 200
/* Search keys in one SEARCH, and how deep NOT/OR/() may nest. */
#define IMAP_SEARCH_KEYS_MAX 1000
#define IMAP_SEARCH_DEPTH_MAX 32
/* FETCH attributes, and messages in one MULTIAPPEND. */
#define IMAP_FETCH_ATTS_MAX 200
#define IMAP_APPEND_MAX 1000
/* Strings of ENABLE, ID, LIST patterns, CREATE USE, SETQUOTA resources. */
#define IMAP_STRS_MAX 100
/* RFC 2971: ID values are at most 1024 octets, field names 30. */
#define IMAP_ID_VALUE_MAX 1024
#define IMAP_ID_FIELD_MAX 30

enum imap_cmd_name {
	IMAP_CMD_UNKNOWN,
	IMAP_CMD_CAPABILITY, IMAP_CMD_NOOP, IMAP_CMD_LOGOUT, IMAP_CMD_STARTTLS,
	IMAP_CMD_AUTHENTICATE, IMAP_CMD_LOGIN, IMAP_CMD_ENABLE, IMAP_CMD_ID,
	IMAP_CMD_SELECT, IMAP_CMD_EXAMINE, IMAP_CMD_CREATE, IMAP_CMD_DELETE,
	IMAP_CMD_RENAME, IMAP_CMD_SUBSCRIBE, IMAP_CMD_UNSUBSCRIBE, IMAP_CMD_LIST,
	IMAP_CMD_LSUB, IMAP_CMD_NAMESPACE, IMAP_CMD_STATUS, IMAP_CMD_APPEND,
	IMAP_CMD_IDLE, IMAP_CMD_CHECK, IMAP_CMD_CLOSE, IMAP_CMD_UNSELECT,
	IMAP_CMD_EXPUNGE, IMAP_CMD_SEARCH, IMAP_CMD_FETCH, IMAP_CMD_STORE,
	IMAP_CMD_COPY, IMAP_CMD_MOVE, IMAP_CMD_SORT, IMAP_CMD_THREAD,
	IMAP_CMD_COMPRESS, IMAP_CMD_GETQUOTA, IMAP_CMD_GETQUOTAROOT, IMAP_CMD_SETQUOTA,
	IMAP_CMD_COUNT
};

/* The states a command is valid in (RFC 9051 3), for the server. */
#define IMAP_STATE_NOTAUTH 1u
#define IMAP_STATE_AUTH 2u
#define IMAP_STATE_SELECTED 4u
#define IMAP_STATE_ANY (IMAP_STATE_NOTAUTH | IMAP_STATE_AUTH | IMAP_STATE_SELECTED)

/* ---- FETCH ---- */

enum imap_fetch_type {
	IMAP_FETCH_FLAGS, IMAP_FETCH_INTERNALDATE, IMAP_FETCH_RFC822_SIZE,
	IMAP_FETCH_RFC822, IMAP_FETCH_RFC822_HEADER, IMAP_FETCH_RFC822_TEXT,
	IMAP_FETCH_ENVELOPE, IMAP_FETCH_BODY, IMAP_FETCH_BODYSTRUCTURE, IMAP_FETCH_UID,
	IMAP_FETCH_BODY_SECTION,	/* BODY[...] and BODY.PEEK[...] */
	IMAP_FETCH_BINARY,		/* BINARY[...] and BINARY.PEEK[...] */
	IMAP_FETCH_BINARY_SIZE,		/* BINARY.SIZE[...] */
	IMAP_FETCH_MODSEQ, IMAP_FETCH_EMAILID, IMAP_FETCH_THREADID, IMAP_FETCH_SAVEDATE,
	IMAP_FETCH_PREVIEW,
};

enum imap_section_text {
	IMAP_SECTION_ALL,		/* [] or [1.2]: the whole part */
	IMAP_SECTION_HEADER, IMAP_SECTION_HEADER_FIELDS, IMAP_SECTION_HEADER_FIELDS_NOT,
	IMAP_SECTION_TEXT, IMAP_SECTION_MIME,
};

struct imap_section {
	uint32_t parts[IMAP_PART_DEPTH_MAX];	/* "1.2" is 1, 2 */
	size_t nparts;
	enum imap_section_text text;
	const char **fields;	/* HEADER.FIELDS(.NOT) names, as given */
	size_t nfields;
};

struct imap_fetch_att {
	enum imap_fetch_type type;
	bool peek;		/* BODY.PEEK / BINARY.PEEK: \Seen is not set */
	bool partial;		/* <offset.count> */
	uint64_t offset, count;
	bool lazy;		/* PREVIEW (LAZY) */
	struct imap_section section;
	/* The item's name in the FETCH reply: "BODY[1.HEADER.FIELDS (From)]",
	 * "BODY[]<0>" (PEEK dropped, partial as its origin), "RFC822.SIZE". */
	const char *reply_name;
};

struct imap_fetch {
	struct imap_fetch_att *atts;
	size_t count;
	bool changedsince_set;	/* (CHANGEDSINCE n) */
	uint64_t changedsince;
	bool vanished;		/* (VANISHED), UID FETCH only */
};

/* ---- STORE ---- */

enum imap_store_op { IMAP_STORE_SET, IMAP_STORE_ADD, IMAP_STORE_REMOVE };

struct imap_flags {
	const char **flags;	/* system flags spelled canonically, keywords as given */
	size_t count;
};

struct imap_store {
	enum imap_store_op op;
	bool silent;
	bool unchangedsince_set;	/* (UNCHANGEDSINCE n) */
	uint64_t unchangedsince;
	struct imap_flags flags;
};

/* ---- SEARCH, SORT, THREAD ---- */

enum imap_search_type {
	IMAP_SK_ALL, IMAP_SK_AND /* (...) */, IMAP_SK_OR, IMAP_SK_NOT, IMAP_SK_SEQSET,
	IMAP_SK_UID,
	/* flags */
	IMAP_SK_ANSWERED, IMAP_SK_DELETED, IMAP_SK_DRAFT, IMAP_SK_FLAGGED, IMAP_SK_SEEN,
	IMAP_SK_RECENT, IMAP_SK_NEW, IMAP_SK_OLD, IMAP_SK_UNANSWERED, IMAP_SK_UNDELETED,
	IMAP_SK_UNDRAFT, IMAP_SK_UNFLAGGED, IMAP_SK_UNSEEN, IMAP_SK_KEYWORD, IMAP_SK_UNKEYWORD,
	/* strings: str */
	IMAP_SK_BCC, IMAP_SK_BODY, IMAP_SK_CC, IMAP_SK_FROM, IMAP_SK_SUBJECT, IMAP_SK_TEXT,
	IMAP_SK_TO, IMAP_SK_HEADER /* field in str, value in str2 */,
	/* dates: date */
	IMAP_SK_BEFORE, IMAP_SK_ON, IMAP_SK_SINCE, IMAP_SK_SENTBEFORE, IMAP_SK_SENTON,
	IMAP_SK_SENTSINCE, IMAP_SK_SAVEDBEFORE, IMAP_SK_SAVEDON, IMAP_SK_SAVEDSINCE,
	IMAP_SK_SAVEDATESUPPORTED,
	/* numbers: number */
	IMAP_SK_LARGER, IMAP_SK_SMALLER, IMAP_SK_OLDER, IMAP_SK_YOUNGER,
	IMAP_SK_MODSEQ /* number, entry name in str, entry type in str2 */,
	/* OBJECTID: str */
	IMAP_SK_EMAILID, IMAP_SK_THREADID,
};

struct imap_search_key {
	enum imap_search_type type;
	struct imap_search_key *child;	/* NOT, OR (first of two), AND (list) */
	struct imap_search_key *next;	/* the next key of the enclosing AND */
	const char *str, *str2;		/* NUL-terminated, as sent (charset applies) */
	size_t len, len2;
	struct imap_date date;
	uint64_t number;
	struct imap_seqset set;		/* SEQSET, UID */
};

/* RFC 4731 ESEARCH and RFC 5182 SEARCHRES: RETURN (...) */
#define IMAP_SEARCH_RET_MIN 1u
#define IMAP_SEARCH_RET_MAX 2u
#define IMAP_SEARCH_RET_ALL 4u
#define IMAP_SEARCH_RET_COUNT 8u
#define IMAP_SEARCH_RET_SAVE 16u
#define IMAP_SEARCH_RET_PARTIAL 32u	/* RFC 9394 */

/* RFC 5256 sort criteria, in order, each maybe REVERSE. */
enum imap_sort_key {
	IMAP_SORT_ARRIVAL, IMAP_SORT_CC, IMAP_SORT_DATE, IMAP_SORT_FROM, IMAP_SORT_SIZE,
	IMAP_SORT_SUBJECT, IMAP_SORT_TO, IMAP_SORT_DISPLAYFROM, IMAP_SORT_DISPLAYTO,
};
#define IMAP_SORT_MAX 16

struct imap_sort_crit {
	enum imap_sort_key key;
	bool reverse;
};

enum imap_thread_alg { IMAP_THREAD_ORDEREDSUBJECT, IMAP_THREAD_REFERENCES };

struct imap_search {
	bool esearch;		/* RETURN (...) was given (even empty: ALL) */
	unsigned ret;		/* IMAP_SEARCH_RET_*; RETURN () is ALL */
	/* PARTIAL lo:hi, positions in the result counted from 1; from its
	 * end (-lo:-hi) if partial_last. lo <= hi. */
	bool partial_last;
	uint32_t partial_lo, partial_hi;
	const char *partial_range;	/* as sent, for the reply */
	const char *charset;	/* as given, or NULL (SORT and THREAD always have one) */
	struct imap_search_key *keys;	/* an AND of these */
	struct imap_sort_crit sort[IMAP_SORT_MAX];
	size_t nsort;
	enum imap_thread_alg thread;
	bool uses_saved;	/* "$" appears somewhere */
	bool uses_modseq;	/* a MODSEQ key (CONDSTORE enabled by it) */
};

/* ---- mailboxes ---- */

/* SELECT/EXAMINE parameters (RFC 7162). */
struct imap_select {
	bool condstore;
	bool qresync;
	uint32_t uidvalidity;
	uint64_t modseq;
	bool known_uids_set;
	struct imap_seqset known_uids;
	bool seq_match_set;
	struct imap_seqset seq_match_seqs, seq_match_uids;
};

/* STATUS items (also LIST RETURN (STATUS (...))). */
#define IMAP_STATUS_MESSAGES 1u
#define IMAP_STATUS_UIDNEXT 2u
#define IMAP_STATUS_UIDVALIDITY 4u
#define IMAP_STATUS_UNSEEN 8u
#define IMAP_STATUS_DELETED 16u
#define IMAP_STATUS_SIZE 32u
#define IMAP_STATUS_RECENT 64u
#define IMAP_STATUS_HIGHESTMODSEQ 128u
#define IMAP_STATUS_APPENDLIMIT 256u
#define IMAP_STATUS_MAILBOXID 512u
#define IMAP_STATUS_DELETED_STORAGE 1024u	/* RFC 9208 4.2 */
#define IMAP_STATUS_ITEMS 11

/* The items as asked: answered in the client's order (RFC 3501's
 * examples, and Dovecot), each once. */
struct imap_status_items {
	unsigned mask;				/* IMAP_STATUS_* */
	unsigned order[IMAP_STATUS_ITEMS];	/* IMAP_STATUS_* bits, first asked first */
	size_t count;
};

/* LIST-EXTENDED selection and return options (RFC 5258, 6154, 5819). */
#define IMAP_LIST_SEL_SUBSCRIBED 1u
#define IMAP_LIST_SEL_REMOTE 2u
#define IMAP_LIST_SEL_RECURSIVEMATCH 4u
#define IMAP_LIST_SEL_SPECIAL_USE 8u
#define IMAP_LIST_RET_SUBSCRIBED 1u
#define IMAP_LIST_RET_CHILDREN 2u
#define IMAP_LIST_RET_SPECIAL_USE 4u
#define IMAP_LIST_RET_STATUS 8u
#define IMAP_LIST_RET_MYRIGHTS 16u

struct imap_list {
	bool extended;		/* selection or return options, or several patterns */
	unsigned select, ret;
	struct imap_status_items status;	/* with RETURN (STATUS (...)) */
	const char *reference;	/* decoded */
	const char **patterns;	/* decoded; % and * kept */
	size_t npatterns;
};

struct imap_append_msg {
	struct imap_flags flags;
	bool has_date;
	time_t date;
	int zone;
	bool binary;		/* ~{n} (RFC 3516) or UTF8 (~{n}) (RFC 6855) */
	bool utf8;		/* UTF8 (~{n}): only after ENABLE UTF8=ACCEPT */
	const char *data;	/* the message: not NUL-safe, use len */
	size_t len;
};

struct imap_append {
	struct imap_append_msg *msgs;
	size_t count;
};

/* Strings: ENABLE capabilities, CREATE USE attributes, ID pairs (field,
 * value or NULL for NIL, alternating). */
struct imap_strs {
	const char **v;
	size_t count;
};

/* SETQUOTA resources: name and limit. */
struct imap_quota_res {
	const char *name;
	uint64_t limit;
};

struct imap_cmd {
	const char *tag;		/* "*" if the tag was bad */
	enum imap_cmd_name name;
	bool uid;			/* UID FETCH, UID SEARCH, ... */
	struct imap_arg *args;		/* the arguments as read */
	size_t nargs;

	const char *mailbox;		/* the command's mailbox (COPY/MOVE: the target), UTF-8 */
	const char *mailbox2;		/* RENAME's new name, UTF-8 */
	const char *user, *pass;	/* LOGIN */
	const char *mech;		/* AUTHENTICATE, uppercased */
	const char *initial;		/* SASL-IR response as sent (base64 or "="), or NULL */
	const char *quota_root;		/* GETQUOTA, SETQUOTA */
	bool id_nil;			/* ID NIL */

	struct imap_seqset set;		/* FETCH, STORE, COPY, MOVE, UID EXPUNGE */
	struct imap_fetch fetch;
	struct imap_store store;
	struct imap_search search;	/* SEARCH, SORT, THREAD */
	struct imap_select select;	/* SELECT, EXAMINE */
	struct imap_list list;		/* LIST, LSUB */
	struct imap_status_items status;	/* STATUS items */
	struct imap_append append;
	struct imap_strs strs;		/* ENABLE, ID, CREATE (USE ...) */
	struct imap_quota_res *quota;	/* SETQUOTA */
	size_t nquota;

	char error[128];		/* the reply after the tag on error */
	char tagbuf[IMAP_TAG_MAX + 1];
	struct imap_arena arena;
};

struct imap_parse_opts {
	bool utf8;	/* UTF8=ACCEPT enabled: mailbox names are UTF-8 */
};

void imap_cmd_init(struct imap_cmd *cmd);
/* Frees what the last parse allocated. */
void imap_cmd_clear(struct imap_cmd *cmd);

/* Parses the framed command data[0..len) (writable, NUL at data[len]).
 * Returns 1 with cmd filled, or -1 with cmd->error (and cmd->tag, and
 * cmd->name when the command was known). */
int imap_cmd_parse(struct imap_cmd *cmd, char *data, size_t len,
		   const struct imap_parse_opts *opts) YJ_MUST_CHECK;

/* The command's name in capitals, "?" for IMAP_CMD_UNKNOWN. */
const char *imap_cmd_str(enum imap_cmd_name name);
/* IMAP_STATE_* in which the command is valid. */
unsigned imap_cmd_states(enum imap_cmd_name name);

/* ---- helpers shared by the parts of the parser ---- */

/* Reads a flag list: a parenthesised list or, with bare, flags without
 * parentheses (STORE). \Recent and invalid flags are refused. */
int imap_flags_parse(const struct imap_arg *arg, bool bare, struct imap_arena *a,
		     struct imap_flags *flags, const char **error_r) YJ_MUST_CHECK;
/* Reads fetch items from args (the arguments after the sequence set). */
int imap_fetch_parse(const struct imap_arg *args, bool uid, struct imap_arena *a,
		     struct imap_fetch *fetch, const char **error_r) YJ_MUST_CHECK;
/* Reads a search program: [RETURN (...)] [CHARSET x] keys (sort and
 * thread say which command's prefix comes first). */
int imap_search_parse(const struct imap_arg *args, enum imap_cmd_name name,
		      struct imap_arena *a, struct imap_search *search,
		      const char **error_r) YJ_MUST_CHECK;
/* Is a search's charset (NULL: none given) one the server searches in:
 * UTF-8 or US-ASCII? A search string in one of these that is not
 * well-formed UTF-8 makes imap_search_parse() fail. */
bool imap_search_charset_served(const char *charset);
/* STATUS items from a list. */
int imap_status_items(const struct imap_arg *list, struct imap_status_items *items,
		      const char **error_r) YJ_MUST_CHECK;

#endif
