/* store.h - the only module that knows SQL or the file layout.
 *
 * Layout of a data dir:
 *   youju.conf          the config (written by youju init)
 *   youju.db            SQLite database, WAL mode, schema versioned
 *   blobs/HOUR/ID       message contents, immutable, written once and
 *                       shared by every local recipient of a message
 *   tls/                certificate and key
 *
 * A message is stored as a blob (the common bytes: Received: header and
 * the message as received) plus, per recipient, a short prefix of header
 * lines that differ between recipients (Return-Path:, Delivered-To:). The
 * bytes a client sees are prefix + blob.
 *
 * With store_driver = postgresql (store_set_driver) the database and the
 * message contents are in PostgreSQL instead, shared by several nodes;
 * blobs/ then only holds messages being received.
 *
 * Threads: a struct store is one database connection and is used by one
 * thread at a time; every session thread opens its own. Deliveries from
 * all threads are committed by one writer thread in batches (group
 * commit), so many concurrent sessions share each fsync.
 *
 * Durability: when store_deliver() returns 1, the blob (file and its
 * directory entry) and the rows are on disk. A crash before that leaves
 * at most an unreferenced blob file, which store_gc() removes (youjud's
 * maintenance thread runs it periodically).
 *
 * Functions return 1 for success/found, 0 for not found, -1 on error
 * (details in err). Names are compared case-insensitively: domains and
 * addresses are stored lowercased.
 */
#ifndef YJ_STORE_H
#define YJ_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"

#define STORE_DB_NAME "youju.db"
#define STORE_ADDRESS_MAX 320		/* local@domain, NUL excluded */
#define STORE_HASH_MAX 256
#define STORE_MAILBOX_NAME_MAX 512
/* The hierarchy separator in mailbox names ("Work/2026"). */
#define STORE_MAILBOX_DELIM '/'
#define STORE_BLOB_ID_MAX 64

/* IMAP system flags, as bits in store_msg.flags */
enum store_flag {
	STORE_FLAG_SEEN = 1 << 0,
	STORE_FLAG_ANSWERED = 1 << 1,
	STORE_FLAG_FLAGGED = 1 << 2,
	STORE_FLAG_DELETED = 1 << 3,
	STORE_FLAG_DRAFT = 1 << 4,
	STORE_FLAGS_ALL = (1 << 5) - 1,
};

/* What a change did, as bits in store_change.kind. */
enum store_change_kind {
	STORE_CHANGE_APPEND = 1 << 0,		/* a message was added */
	STORE_CHANGE_FLAGS = 1 << 1,		/* flags or keywords changed */
	STORE_CHANGE_EXPUNGE = 1 << 2,		/* messages were removed */
	STORE_CHANGE_CREATE = 1 << 3,		/* the mailbox was created */
	STORE_CHANGE_RENAME = 1 << 4,
	STORE_CHANGE_DELETE = 1 << 5,		/* the mailbox is gone */
	STORE_CHANGE_SUBSCRIBE = 1 << 6,	/* subscribed or unsubscribed */
};

/* One committed change, as published to subscribers: the mailbox's
 * highest MODSEQ after it and the kinds of change since the previous
 * notice (several changes of one commit are merged). */
struct store_change {
	int64_t account_id;
	int64_t mailbox_id;
	uint64_t modseq;
	unsigned kind;			/* enum store_change_kind bits */
};

/* A set of UIDs as ranges (first <= last), e.g. IMAP's "1:5,9,20:*"
 * with * as UINT32_MAX. Ranges may overlap and come in any order. */
struct store_uid_range {
	uint32_t first, last;
};
struct store_uidset {
	const struct store_uid_range *ranges;
	size_t n;
};

struct store;

/* Chooses the database of data_dir, before it is first opened: driver
 * "sqlite" (the default: youju.db in data_dir) or "postgresql", with dsn
 * a libpq connection string ("host=/run/pg dbname=youju"). Message
 * contents then live in the database too; data_dir keeps the config,
 * TLS files and blobs being received. */
int store_set_driver(const char *data_dir, const char *driver, const char *dsn,
		     struct yj_err *err) YJ_MUST_CHECK;

/* Opens a connection to another database for data_dir than its own,
 * e.g. to copy the store there (migrated like any open; never pooled). */
int store_open_driver(const char *data_dir, const char *driver, const char *dsn,
		      struct store **st_r, struct yj_err *err) YJ_MUST_CHECK;
/* Copies everything in from into to, whose database must be empty (a
 * new schema): domains, accounts, aliases, mailboxes with their
 * UIDVALIDITY, UIDNEXT and MODSEQ, messages with their UIDs, flags,
 * keywords and bytes, IMAP summaries, expunge records, the queue. One
 * transaction of to. */
int store_copy(struct store *from, struct store *to, struct yj_err *err) YJ_MUST_CHECK;

/* Creates the data dir layout and the database with the current schema
 * (idempotent: an existing store is migrated, not replaced). */
int store_create(const char *data_dir, struct yj_err *err) YJ_MUST_CHECK;

/* Opens a connection, migrating the schema if it is older. */
int store_open(const char *data_dir, struct store **st_r, struct yj_err *err) YJ_MUST_CHECK;
/* Gives the connection back and sets *st to NULL. An idle connection
 * is kept (with its prepared statements) for the next store_open() of
 * the same data dir, up to a small number; the rest are closed. */
void store_close(struct store **st);
/* A long-lived session (a phone in IMAP IDLE all day, a POP3 client)
 * must not hold a connection while it waits for its client: it borrows
 * one for each command and gives it back after, so ten thousand idle
 * sessions hold no connection at all. store_borrow keeps *stp if it is
 * set, else takes a connection as store_open does; false (logged as
 * "proto: session=id") if the store cannot be opened. */
bool store_borrow(const char *data_dir, struct store **stp, const char *proto,
		  const char *session_id);
/* Gives *stp back (store_close) unless it holds a maildrop lock, which
 * belongs to the connection on a shared database: the session then
 * keeps it until the lock is released. */
void store_give_back(struct store **stp);
/* store_give_back in the middle of a command, while it waits on a slow
 * client: only a connection with no transaction open and no statement
 * half read is given back (else it is kept, and false returned). The
 * command borrows again (store_borrow) before its next use. */
bool store_give_back_idle(struct store **stp);
/* Stops the writer thread and closes the kept connections (at daemon
 * shutdown, after sessions ended). */
void store_shutdown(void);

/* "ok" or the first problem found by PRAGMA integrity_check. */
int store_integrity_check(struct store *st, struct yj_err *err) YJ_MUST_CHECK;
/* Removes blob files no message refers to, older than min_age seconds. */
int store_gc(struct store *st, long min_age, struct yj_err *err);

/* ---- change notices ----
 * After each COMMIT that changed mailboxes (a delivery batch, flags,
 * expunge, mailbox operations) the committing thread calls every
 * subscriber with each changed mailbox. Callbacks must be quick and must
 * not call into the store (wake a session, no more). Changes committed
 * by another process (the youju command) are noticed by the store's
 * maintenance thread (see store_start) within STORE_POLL_MS and
 * published from there. */
#define STORE_POLL_MS 250
typedef void store_notify_fn(void *arg, const struct store_change *change);
/* 1, or -1 if the subscriber table is full (STORE_SUBSCRIBERS_MAX). */
#define STORE_SUBSCRIBERS_MAX 16
int store_notify_subscribe(store_notify_fn *fn, void *arg);
/* Safe to call from any thread but a callback; after it returns fn is
 * not running and will not be called again with arg. */
void store_notify_unsubscribe(store_notify_fn *fn, void *arg);

/* Starts the store's background work for data_dir (youjud calls it once
 * at start; store_shutdown stops it): noticing other processes' changes,
 * periodic orphan collection, pruning and WAL checkpoints. (The delivery
 * writer starts with the first delivery.) */
int store_start(const char *data_dir, struct yj_err *err) YJ_MUST_CHECK;

/* ---- domains ---- */
int store_domain_add(struct store *st, const char *name, struct yj_err *err) YJ_MUST_CHECK;
/* Refuses (-1) while the domain still has accounts or aliases. */
int store_domain_del(struct store *st, const char *name, struct yj_err *err) YJ_MUST_CHECK;
int store_domain_exists(struct store *st, const char *name);
typedef void store_domain_cb(void *ctx, const char *name);
int store_domain_list(struct store *st, store_domain_cb *cb, void *ctx, struct yj_err *err);

/* ---- accounts ---- */
struct store_account {
	int64_t id;
	char address[STORE_ADDRESS_MAX + 1];	/* lowercased local@domain */
	char password_hash[STORE_HASH_MAX + 1];
};
/* The domain must exist. Creates INBOX, Drafts, Sent, Junk, Trash and
 * Archive with their special-use flags. */
int store_account_add(struct store *st, const char *address, const char *password_hash,
		      struct yj_err *err) YJ_MUST_CHECK;
/* Deletes the account, its mailboxes and messages. */
int store_account_del(struct store *st, const char *address, struct yj_err *err) YJ_MUST_CHECK;
int store_account_set_password(struct store *st, const char *address,
			       const char *password_hash, struct yj_err *err) YJ_MUST_CHECK;
/* 1 found (acct_r filled), 0 no such account, -1 error. */
int store_account_lookup(struct store *st, const char *address, struct store_account *acct_r);
/* The IMAP capabilities switched off for an account, as the admin
 * wrote them ("CONDSTORE QRESYNC", "" for none): for a client that
 * breaks on one. The IMAP server reads them at login. */
#define STORE_IMAP_DISABLE_MAX 255
int store_account_set_imap_disable(struct store *st, const char *address, const char *caps,
				   struct yj_err *err) YJ_MUST_CHECK;
/* 1 (out filled), 0 no such account, -1 error. */
int store_account_imap_disable(struct store *st, int64_t account_id, char *out, size_t outlen);
typedef void store_account_cb(void *ctx, const struct store_account *acct);
/* All accounts, or those of one domain if domain is not NULL. */
int store_account_list(struct store *st, const char *domain, store_account_cb *cb, void *ctx,
		       struct yj_err *err);

/* ---- aliases ----
 * address is "local@domain" or "@domain" (catch-all); a target is any
 * address, local or remote. One address may have several targets. */
int store_alias_add(struct store *st, const char *address, const char *target,
		    struct yj_err *err) YJ_MUST_CHECK;
/* Deletes one target, or all of them if target is NULL. 0 if none. */
int store_alias_del(struct store *st, const char *address, const char *target,
		    struct yj_err *err) YJ_MUST_CHECK;
typedef void store_alias_cb(void *ctx, const char *address, const char *target);
/* Targets of exactly this address (no catch-all fallback). 1 if any. */
int store_alias_lookup(struct store *st, const char *address, store_alias_cb *cb, void *ctx);
int store_alias_list(struct store *st, store_alias_cb *cb, void *ctx, struct yj_err *err);

/* ---- sender rules (submission) ----
 * Beyond its own address (and aliases that deliver to it alone), an
 * account may send as the addresses and whole domains of its sender
 * rules (pattern "local@domain" or "@domain"), and as the aliases it
 * owns. add/remove: 1, 0 (no such account, alias or rule: err says),
 * -1. */
int store_sender_add(struct store *st, const char *account, const char *pattern,
		     struct yj_err *err) YJ_MUST_CHECK;
int store_sender_remove(struct store *st, const char *account, const char *pattern,
			struct yj_err *err) YJ_MUST_CHECK;
typedef void store_sender_cb(void *ctx, const char *pattern);
/* The account's rules, then the aliases it owns. 1, 0 no such account. */
int store_sender_list(struct store *st, const char *account, store_sender_cb *cb, void *ctx,
		      struct yj_err *err);
/* The alias (an existing local@domain alias) may be sent as by account. */
int store_alias_owner_add(struct store *st, const char *alias, const char *account,
			  struct yj_err *err) YJ_MUST_CHECK;
int store_alias_owner_remove(struct store *st, const char *alias, const char *account,
			     struct yj_err *err) YJ_MUST_CHECK;
/* May the account send as address through a rule or an owned alias
 * (that still exists)? 1 yes, 0 no, -1 error. */
int store_sender_allowed(struct store *st, int64_t account_id, const char *address,
			 struct yj_err *err);

/* ---- mailboxes ---- */
struct store_mailbox {
	int64_t id;
	int64_t account_id;
	char name[STORE_MAILBOX_NAME_MAX + 1];
	char special_use[32];		/* "\\Sent" or "" */
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint64_t highestmodseq;
	uint32_t messages;		/* count */
	bool subscribed;
	/* Expunges up to this MODSEQ may have been forgotten (compacted):
	 * a QRESYNC from an older MODSEQ cannot get an exact VANISHED. */
	uint64_t vanished_floor;
};
/* Names are case-sensitive except INBOX. 1 found, 0 not, -1 error. */
int store_mailbox_get(struct store *st, int64_t account_id, const char *name,
		      struct store_mailbox *mb_r);
/* The account's mailbox with this id, under its current name, without
 * the message count (a scan of its messages): what a selected IMAP
 * session checks at each command. 1 found, 0 gone, -1 error. */
int store_mailbox_get_id(struct store *st, int64_t account_id, int64_t id,
			 struct store_mailbox *mb_r);

/* Creates a mailbox (MODSEQ 1, a new UIDVALIDITY). -1 if it exists. */
int store_mailbox_create(struct store *st, int64_t account_id, const char *name,
			 struct yj_err *err) YJ_MUST_CHECK;
/* CREATE of RFC 3501 6.3.3: creates name and, in the same transaction,
 * each superior name that is missing ("a" and "a/b" of "a/b/c", with
 * delim '/'), none of them subscribed (CREATE does not subscribe);
 * special_use ("\\Sent" or "", RFC 6154) is name's. -1 if name exists
 * (or an error). */
int store_mailbox_create_path(struct store *st, int64_t account_id, const char *name,
			      char delim, const char *special_use,
			      struct yj_err *err) YJ_MUST_CHECK;
/* Renames one mailbox and its inferior names ("from/x" becomes "to/x",
 * RFC 9051 6.3.6) in one transaction, and makes the superior names of
 * to that are missing; INBOX cannot be renamed here, nor a mailbox
 * under itself. 1, 0 no such mailbox, -1 error (a new name
 * exists). The UIDVALIDITY stays. */
int store_mailbox_rename(struct store *st, int64_t account_id, const char *from,
			 const char *to, struct yj_err *err) YJ_MUST_CHECK;
struct store_copy_result;
/* RENAME INBOX (RFC 3501 6.3.5): creates mailbox to (and its missing
 * superior names) and moves all of INBOX's messages into it (as
 * store_msg_copy with move) in one transaction; INBOX stays, empty. res as store_msg_copy's. 1, 0 no
 * INBOX, -1 error (to exists). */
int store_mailbox_rename_inbox(struct store *st, int64_t account_id, const char *to,
			       struct store_copy_result *res, struct yj_err *err) YJ_MUST_CHECK;
/* Deletes a mailbox and its messages; INBOX cannot be deleted. 1, 0 no
 * such mailbox, -1 error. */
int store_mailbox_delete(struct store *st, int64_t account_id, const char *name,
			 struct yj_err *err) YJ_MUST_CHECK;
/* \Recent of RFC 3501 2.3.2: the messages of a mailbox with a UID at or
 * above its recent floor are new to the next session that claims them.
 * *floor_r is the floor as found; with claim, the floor is raised to
 * upto (if lower), so that the caller alone has [*floor_r, upto). Only
 * the caller's own record: no MODSEQ, no change notice. 1, 0 no such
 * mailbox, -1 error. */
int store_mailbox_recent(struct store *st, int64_t mailbox_id, uint32_t upto, bool claim,
			 uint32_t *floor_r, struct yj_err *err) YJ_MUST_CHECK;
/* 1, 0 no such mailbox, -1 error. Setting the current state is no change. */
int store_mailbox_subscribe(struct store *st, int64_t mailbox_id, bool subscribed,
			    struct yj_err *err) YJ_MUST_CHECK;
/* Subscriptions kept for names no mailbox has (a subscribed mailbox was
 * deleted; creating one under the name subscribes it again). */
typedef void store_name_cb(void *ctx, const char *name);
int store_subscription_kept_list(struct store *st, int64_t account_id, store_name_cb *cb,
				 void *ctx, struct yj_err *err);
/* UNSUBSCRIBE of a kept name: 1 forgotten, 0 there was none, -1 error. */
int store_subscription_forget(struct store *st, int64_t account_id, const char *name,
			      struct yj_err *err) YJ_MUST_CHECK;
typedef void store_mailbox_cb(void *ctx, const struct store_mailbox *mb);
/* The account's mailboxes by name (messages is not counted: 0). */
int store_mailbox_list(struct store *st, int64_t account_id, store_mailbox_cb *cb, void *ctx,
		       struct yj_err *err);

/* ---- keywords ----
 * A keyword (IMAP's custom flag, "$Forwarded") gets a bit of its
 * mailbox the first time it is set there; store_msg.keywords holds the
 * bits. Names compare case-insensitively and keep the case first used. */
#define STORE_KEYWORDS_MAX 63		/* per mailbox */
#define STORE_KEYWORD_MAX 100		/* bytes of a name (IMAP keywords of 100, docs/imap.md) */
/* Returned (with err set) by a change that would make a keyword in a
 * mailbox that has STORE_KEYWORDS_MAX already; nothing was written. */
#define STORE_KEYWORDS_FULL (-3)
typedef void store_keyword_cb(void *ctx, unsigned bit, const char *name);
/* The mailbox's keywords in bit order. */
int store_keyword_list(struct store *st, int64_t mailbox_id, store_keyword_cb *cb, void *ctx,
		       struct yj_err *err);
/* Is name a keyword a client may set (an IMAP atom, no backslash)? */
bool store_keyword_valid(const char *name);

/* ---- blobs and delivery ---- */
struct store_blob {
	int fd;
	char id[STORE_BLOB_ID_MAX];	/* "HOUR/RANDOM", relative to blobs/ */
	char *path;
	uint64_t size;
	size_t buffered;
	unsigned char buf[65536];
	struct buf *keep;		/* store_blob_keep's, or NULL */
};
/* Creates a new, empty blob file. */
int store_blob_create(struct store *st, struct store_blob *b, struct yj_err *err) YJ_MUST_CHECK;
int store_blob_write(struct store_blob *b, const void *p, size_t n, struct yj_err *err) YJ_MUST_CHECK;
/* Also copies the bytes written from now on into keep (the caller's,
 * bounded by its max), so that the thread that streamed a message can
 * parse it without reading the file back. Once they outgrow keep, it is
 * freed and no longer filled: keep->len equals what was written only
 * while all of it fits. */
void store_blob_keep(struct store_blob *b, struct buf *keep);
/* The bytes written so far into out (at most max of them: 0 if there
 * are more), read back from the file: for what the delivering thread
 * computes of a message it streamed to disk. 1, 0, or -1. */
int store_blob_contents(struct store_blob *b, size_t max, struct buf *out,
			struct yj_err *err) YJ_MUST_CHECK;
/* The first bytes of a blob being written, up to max, into out (the
 * deliverer reads the header from it). The length, or -1. */
long store_blob_head(struct store_blob *b, void *out, size_t max, struct yj_err *err);
/* Removes a blob that will not be delivered. Safe to call twice, and a
 * no-op after a failed create, after store_deliver() (which either took
 * the blob or removed it) and on a zeroed struct. */
void store_blob_abort(struct store_blob *b);

/* One local recipient: a message row in account's mailbox (NULL: INBOX),
 * with these per-recipient header lines (CRLF-terminated) before the blob.
 * mailbox may also be a special-use attribute (RFC 6154, starting with
 * '\\', as STORE_MAILBOX_JUNK): the account's mailbox with that attribute
 * whatever its name, or INBOX when it has none (the mail is kept). */
#define STORE_MAILBOX_JUNK "\\Junk"
struct store_rcpt {
	int64_t account_id;
	const char *mailbox;
	const char *prefix;
};

/* Limits of the queue's fields (RFC 3461 4.4, 4.2; header: DKIM and ARC
 * sets with room to spare). */
#define STORE_ENVID_MAX 100
#define STORE_NOTIFY_MAX 63
#define STORE_ORCPT_MAX 511
#define STORE_QUEUE_HEADER_MAX 16384

/* DSN parameters of one remote recipient (RFC 3461), as received. */
struct store_relay_dsn {
	const char *notify;		/* "NEVER", "SUCCESS,FAILURE"...; NULL or "" none */
	const char *orcpt;		/* "rfc822;addr" (xtext decoded); NULL or "" none */
};

/* A recipient whose delivery here the sender asked to hear of (RFC 3461
 * NOTIFY=SUCCESS): a queue row in the delivery's own transaction, with
 * status action, that the queue runner turns into a report and then
 * removes (store_queue_reports). Never for the null sender. */
struct store_notice {
	const char *recipient;		/* the address as the sender gave it */
	const char *orcpt;		/* RFC 3461 ORCPT as received; NULL or "" none */
	const char *action;		/* "delivered" (to a mailbox), "expanded"
					 * (an alias with several targets) */
};

/* Queue rows a notice to their sender reports on (a bounce, a delay
 * notice), settled in the notice's own transaction: a crash leaves
 * either both or neither, so the notice is neither lost nor sent twice.
 * If a row was settled already (by another thread or node), the notice
 * is not stored either (store_deliver fails, nothing is kept). */
struct store_queue_settle {
	const int64_t *notified;	/* failed, sent, delivered or expanded rows,
					 * each marked notified */
	size_t n_notified;
	int64_t warned;			/* a queue message marked warned, or 0 */
};

/* Fields after n_relay are optional: zero means not given. */
struct store_dmarc_policy;
struct store_dmarc_row;
struct store_delivery {
	struct store_blob *blob;
	int64_t internal_date;		/* unix time */
	const struct store_rcpt *rcpts;
	size_t n_rcpts;
	/* remote recipients for the outbound queue (relay from mynetworks) */
	const char *sender;		/* "" for the null sender */
	const char *const *relay_rcpts;
	size_t n_relay;
	/* for the outbound queue, per message */
	const char *envid;		/* DSN ENVID, xtext decoded */
	const char *ret;		/* DSN RET: "FULL" or "HDRS" */
	const char *body;		/* "7BIT", "8BITMIME" or "BINARYMIME" */
	bool smtputf8;
	const char *queue_header;	/* CRLF-terminated lines prepended when sent */
	const struct store_relay_dsn *relay_dsn;	/* NULL, or n_relay of them */
	/* A DMARC result to count for aggregate reports in the same
	 * transaction (as store_dmarc_record), or NULL for none. */
	const struct store_dmarc_policy *dmarc_policy;
	const struct store_dmarc_row *dmarc_row;
	/* recipients that failed already (an alias's target in one of our
	 * domains without an account): queued as failed with this reply,
	 * for the queue runner to report to the sender */
	const char *const *failed_rcpts;
	size_t n_failed;
	const char *failed_reply;
	const struct store_queue_settle *settle;	/* NULL, or rows a notice settles */
	/* NULL, or the blob's summary and search text (see store_index),
	 * written with its rows when there are local recipients */
	const struct store_index *index;
	const struct store_notice *notices;	/* NULL, or n_notices success reports owed */
	size_t n_notices;
	/* the ids the message's thread is found by (mime_thread_keys:
	 * NUL-terminated, one after another), for each recipient's account */
	const char *thread_keys;
	size_t thread_keys_len;
};
/* Makes the blob durable (fsync file and its directory), then commits all
 * message rows and queue rows in one transaction. On 1, the blob is owned
 * by the store and its fd closed. On -1 the blob is removed if nothing
 * was delivered; if that is unknown (COMMIT itself failed, or the writer
 * did not answer within 60 s: a hung disk) the file stays, as the
 * rows may still reach the disk, and store_gc removes it if they did not.
 * Either way the caller's blob is closed and a later abort is a no-op. */
int store_deliver(struct store *st, const struct store_delivery *d,
		  struct yj_err *err) YJ_MUST_CHECK;

/* ---- maildrop locks ----
 * An account's maildrop held exclusively (POP3, RFC 1939) across every
 * node of the database, by this connection: it is released by
 * store_maildrop_unlock, by store_close, and if the node dies. With
 * SQLite (one youjud per data dir) the process's own lock table is the
 * whole story, so this always succeeds. 1 taken, 0 held elsewhere, -1. */
int store_maildrop_lock(struct store *st, int64_t account_id, struct yj_err *err);
/* st may be NULL (a connection given back holds no lock). */
void store_maildrop_unlock(struct store *st, int64_t account_id);
/* Whether st's connection still holds the maildrop locks it took: on
 * PostgreSQL they go with a connection that was lost (its backend
 * ended, the server restarted), and another node may have the maildrop
 * by now. 1 held, -1 lost (err says so). */
int store_maildrop_held(struct store *st, struct yj_err *err) YJ_MUST_CHECK;

/* ---- the outbound queue ----
 * A sender claims due recipients for a while (a lease); a claim whose
 * lease has passed is free again, so the work of a node that died comes
 * back. Two claimers never get one row while its lease runs (on
 * PostgreSQL: FOR UPDATE SKIP LOCKED, so nodes do not wait on each
 * other). Finishing a row checks the claim is still the caller's. */
struct store_queue_item {
	int64_t id;
	int64_t message_id;
	char blob_id[STORE_BLOB_ID_MAX];
	char sender[STORE_ADDRESS_MAX + 1];
	char recipient[STORE_ADDRESS_MAX + 1];
	char domain[256];
	char notify[STORE_NOTIFY_MAX + 1];
	char orcpt[STORE_ORCPT_MAX + 1];
	long attempts;
	int64_t created;
};
typedef void store_queue_cb(void *ctx, const struct store_queue_item *item);
#define STORE_NODE_MAX 64
/* Claims up to max recipients due at now (next_attempt <= now) that no
 * lease holds, for node until now + lease seconds, in one transaction;
 * after the commit each goes to cb. They are all of one destination
 * domain, that of the longest-waiting due recipient, so that one
 * connection serves the claim. Returns how many, or -1. */
int store_queue_claim(struct store *st, const char *node, int64_t now, long lease, size_t max,
		      store_queue_cb *cb, void *ctx, struct yj_err *err);
/* A claimed recipient's answer, for store_queue_post(). Each changes
 * the row only while node's claim on it holds. */
enum store_queue_outcome {
	/* done (delivered, or bounced): the row goes */
	STORE_QUEUE_DONE,
	/* try again at next_attempt: one more attempt, reply kept as the
	 * last error, the claim released */
	STORE_QUEUE_DEFER,
	/* failed for good: status 'failed' with the reply and the host that
	 * gave it (remote_mta, "" none), kept for `youju queue` until
	 * deleted; the queue runner reports it to the sender */
	STORE_QUEUE_FAIL,
	/* accepted by a server without DSN while the sender asked for
	 * NOTIFY=SUCCESS (RFC 3461 6.2): status 'sent' (reply, remote_mta)
	 * until the "relayed" notice is stored, then removed */
	STORE_QUEUE_SENT,
	/* not an answer: the claim lasts until next_attempt (a long batch
	 * keeps what it has not sent yet) */
	STORE_QUEUE_RENEW,
};
struct store_queue_answer {
	enum store_queue_outcome outcome;
	int64_t id;
	int64_t next_attempt;
	const char *reply;
	const char *remote_mta;
};
/* Answers in flight, one runner thread's: store_queue_post() hands an
 * answer to the store's writer, which commits it with whatever else
 * waits (one fsync for many), and returns without waiting for that
 * COMMIT, so that the thread sends its next message meanwhile. The row
 * stays claimed by node until the answer is on disk, so no one else
 * sends it; a crash before then leaves it to be sent again once its
 * lease ends (as a crash between the server's reply and any COMMIT
 * would). store_queue_flight_land() waits for them all. */
struct store_queue_flight;
struct store_queue_flight *store_queue_flight_new(size_t max);
/* 1, or -1 (err) if the writer cannot take it or max are in flight. */
int store_queue_post(struct store *st, struct store_queue_flight *f, const char *node,
		     const struct store_queue_answer *a, struct yj_err *err) YJ_MUST_CHECK;
/* result: 1 on disk, 0 node's claim had lapsed (nothing changed), -1
 * (err) it may or may not be on disk. */
typedef void store_queue_landed_cb(void *ctx, int64_t id, int result, const struct yj_err *err);
/* Waits for every answer posted to f, each to cb (may be NULL), and
 * empties f. */
void store_queue_flight_land(struct store *st, struct store_queue_flight *f,
			     store_queue_landed_cb *cb, void *ctx);
size_t store_queue_flight_count(const struct store_queue_flight *f);
/* Only once landed. */
void store_queue_flight_free(struct store_queue_flight *f);

/* What is per message in the queue; header is malloc'd (NUL-terminated,
 * header_len bytes: CRLF-terminated lines sent before the blob). */
struct store_queue_message {
	char blob_id[STORE_BLOB_ID_MAX];
	char sender[STORE_ADDRESS_MAX + 1];
	char envid[STORE_ENVID_MAX + 1];
	char ret[8];
	char body[16];
	bool smtputf8;
	char *header;
	size_t header_len;
	int64_t created;
	bool warned;			/* its delay notice has been sent */
};
/* 1 found, 0 gone (its last recipient was done), -1 error. Free with
 * store_queue_message_free() after 1. */
int store_queue_message_get(struct store *st, int64_t message_id, struct store_queue_message *m,
			    struct yj_err *err);
void store_queue_message_free(struct store_queue_message *m);
/* Opens the message's contents read-only (a file, or a memory file when
 * blobs are rows). */
int store_queue_open_blob(struct store *st, const struct store_queue_message *m, int *fd_r,
			  struct yj_err *err) YJ_MUST_CHECK;
/* Settles rows without a notice (the sender is null, NOTIFY=NEVER): as
 * store_deliver does with d->settle. 1, 0 if a row was settled already,
 * -1 error. */
int store_queue_settle(struct store *st, const struct store_queue_settle *s,
		       struct yj_err *err) YJ_MUST_CHECK;
typedef void store_queue_id_cb(void *ctx, int64_t message_id);
/* Queue messages with something to report, at most max: a failed row
 * not yet notified, a sent, delivered or expanded row (reported or to be
 * removed), or, when
 * warn_before is not 0, a queued row tried at least once of a message
 * received before warn_before and not yet warned about. */
int store_queue_reports(struct store *st, int64_t warn_before, size_t max,
			store_queue_id_cb *cb, void *ctx, struct yj_err *err);

/* One row as `youju queue` shows it. status: queued, held or failed;
 * or, until its report is made, sent, delivered or expanded. */
struct store_queue_entry {
	struct store_queue_item item;
	char status[16];
	int64_t next_attempt;
	char last_error[1024];
	char claimed_by[STORE_NODE_MAX + 1];
	bool notified;			/* its failure or relay was reported */
	char remote_mta[256];		/* who gave last_error, or "" */
};
typedef void store_queue_entry_cb(void *ctx, const struct store_queue_entry *e);
int store_queue_list(struct store *st, store_queue_entry_cb *cb, void *ctx, struct yj_err *err);
/* The rows of one queue message, by id. */
int store_queue_list_message(struct store *st, int64_t message_id, store_queue_entry_cb *cb,
			     void *ctx, struct yj_err *err);
enum store_queue_op {
	STORE_QUEUE_RETRY,	/* due now (failed: reported anew); id 0: all */
	STORE_QUEUE_HOLD,	/* not sent until released */
	STORE_QUEUE_RELEASE,	/* held -> queued, due now */
	STORE_QUEUE_BOUNCE,	/* failed now, "by the administrator" */
};
/* 1 changed, 0 no such row (in a state the operation applies to; hold
 * and bounce also not while a sender's claim on it runs), -1. */
int store_queue_set(struct store *st, int64_t id, enum store_queue_op op, int64_t now,
		    struct yj_err *err) YJ_MUST_CHECK;
/* Gives one claimed recipient back unsent, as it was (attempts kept).
 * 1, 0 if node's claim has lapsed, -1 error. */
int store_queue_release(struct store *st, int64_t id, const char *node,
			struct yj_err *err) YJ_MUST_CHECK;
/* fn is called when another node (same database) queued mail to be
 * sent now or made some due (retry, release), from the store's
 * maintenance thread (store_start), within STORE_POLL_MS of its COMMIT:
 * it must be quick (wake the runner, no more). Drivers without other
 * nodes never call it. NULL: none. */
typedef void store_queue_heard_fn(void);
void store_queue_watch(store_queue_heard_fn *fn);
/* Removes finished rows whose last attempt was before `before`: failed
 * ones already reported on (or settled without a notice), and success
 * rows whose report is made; at most STORE_QUEUE_EXPIRE_BATCH at a time,
 * in one transaction, the blobs no longer named unlinked after its
 * COMMIT. Returns how many, or -1. */
#define STORE_QUEUE_EXPIRE_BATCH 1000
int store_queue_expire(struct store *st, int64_t before, struct yj_err *err);
/* How long the maintenance thread (store_start) keeps finished rows,
 * in seconds; 0 (the default): until deleted. Before store_start. */
void store_set_queue_retention(long seconds);
/* Frees every claim held by node (it starts again after a stop or a
 * crash). Returns how many, or -1. */
int store_queue_release_node(struct store *st, const char *node, struct yj_err *err);
/* Removes the row whatever its state or claim (the operator's delete). */
int store_queue_delete(struct store *st, int64_t id, struct yj_err *err) YJ_MUST_CHECK;

/* ---- messages ---- */
/* An internal date's zone is at most this many minutes from UTC (the
 * most "+hhmm" can say); another value is taken as UTC. */
#define STORE_ZONE_MAX (99 * 60 + 59)
static inline int
store_zone_valid(int64_t zone)
{
	return zone >= -STORE_ZONE_MAX && zone <= STORE_ZONE_MAX ? (int)zone : 0;
}
struct store_msg {
	int64_t id;
	int64_t mailbox_id;
	uint32_t uid;
	uint64_t modseq;
	uint32_t flags;			/* enum store_flag bits */
	uint64_t keywords;		/* bits of the mailbox's keywords */
	int64_t internal_date;
	int internal_zone;		/* the zone it was given in, minutes east
					 * of UTC (STORE_ZONE_MAX either way) */
	int64_t saved;			/* when it was saved into the mailbox */
	int64_t thread_id;		/* its conversation (RFC 8474); 0: none,
					 * stored before threads were */
	uint64_t size;			/* prefix + blob */
	char blob_id[STORE_BLOB_ID_MAX];
	char prefix[4096];		/* NUL-terminated: Return-Path:, Delivered-To:,
					 * authentication results, DKIM signatures */
	size_t prefix_len;
};
typedef void store_msg_cb(void *ctx, const struct store_msg *msg);
/* Messages of a mailbox in UID order. */
int store_msg_list(struct store *st, int64_t mailbox_id, store_msg_cb *cb, void *ctx,
		   struct yj_err *err);
/* 1 found, 0 no such UID, -1 error. */
int store_msg_get(struct store *st, int64_t mailbox_id, uint32_t uid, struct store_msg *msg_r);
/* Opens the blob read-only; the caller sends prefix then the file. */
int store_msg_open_blob(struct store *st, const struct store_msg *msg, int *fd_r,
			struct yj_err *err) YJ_MUST_CHECK;
/* Reads a blob piece by piece at offsets, so a large message is sent in
 * bounded pieces on every driver: a file's pread, or a slice of the row
 * where the database keeps the contents (never the whole row at once).
 * A file is read without the connection; a row with the connection the
 * reader was opened with, or the one store_blob_reader_use gave it
 * since: a caller that gives its connection back between pieces (while
 * a slow client takes them) gives the reader the one it borrows next. */
struct store_blob_reader {
	struct store *st;
	char blob_id[STORE_BLOB_ID_MAX];
	int fd;				/* -1 where the database has the bytes */
};
int store_blob_reader_open(struct store *st, const struct store_msg *msg,
			   struct store_blob_reader *rd, struct yj_err *err) YJ_MUST_CHECK;
/* Up to len bytes from off into buf: the count, 0 at the end, -1. */
long store_blob_read(struct store_blob_reader *rd, uint64_t off, void *buf, size_t len,
		     struct yj_err *err);
void store_blob_reader_close(struct store_blob_reader *rd);
/* Does the reader read through a connection (the database has the
 * bytes)? Then store_blob_reader_use before each read. */
bool store_blob_reader_in_db(const struct store_blob_reader *rd);
void store_blob_reader_use(struct store_blob_reader *rd, struct store *st);

/* ---- IMAP summaries ----
 * A message's ENVELOPE, BODY and BODYSTRUCTURE as IMAP sends them
 * (without UTF8=ACCEPT), and the blob's header lines, computed by the
 * IMAP server and kept per blob, so a FETCH of them or of header fields
 * opens no message. Per blob, though IMAP serves prefix + blob: the
 * prefix holds only trace fields (Return-Path, Delivered-To, Received,
 * Authentication-Results, DKIM-Signature), which enter none of the
 * three, and the header IMAP serves is prefix + the stored header. A
 * summary goes with its blob. */
enum store_summary_item {
	STORE_SUMMARY_ENVELOPE, STORE_SUMMARY_BODY, STORE_SUMMARY_BODYSTRUCTURE,
	STORE_SUMMARY_HEADER,		/* up to the empty line; empty: not kept */
	STORE_SUMMARY_ITEMS
};
#define STORE_SUMMARY_MAX (1u << 20)	/* bytes of one item */
struct store_summary {
	char blob_id[STORE_BLOB_ID_MAX];
	char *text[STORE_SUMMARY_ITEMS];	/* malloc'd, not NUL-terminated */
	size_t len[STORE_SUMMARY_ITEMS];
};
/* 1 found (free it with store_summary_free), 0 none yet, -1 error. */
int store_summary_get(struct store *st, const char *blob_id, struct store_summary *s_r,
		      struct yj_err *err);
/* Saves n summaries in one transaction; a blob that has one keeps it,
 * one whose blob is gone is dropped. */
int store_summary_put(struct store *st, const struct store_summary *v, size_t n,
		      struct yj_err *err) YJ_MUST_CHECK;
void store_summary_free(struct store_summary *s);
/* Bytes of summaries each process keeps in memory for all its
 * connections to a database (0, the default: none), so that summaries
 * read again come from there; set once, before the first store_open.
 * Summaries never change, so what is kept is never stale. */
void store_set_summary_cache(size_t bytes);
size_t store_summary_cache_size(void);

/* One message of store_msg_fetch: its row and, if asked for and kept,
 * its blob's summary (store_summary_get's). */
struct store_fetch_row {
	struct store_msg msg;
	bool has_summary;
	struct store_summary summary;
};
/* The rows of the messages of uids (n, ascending) that still exist, in
 * UID order into rows (room for n), *found_r of them; summaries: with
 * their summaries, from the summary cache where it has them, else one
 * statement for each 16. One statement per run of consecutive UIDs, and
 * where there are several runs one read transaction for them all: a
 * FETCH of 50 messages is one statement, not 100. Not inside a
 * transaction.
 * Free with store_fetch_rows_free. 1, or -1 (nothing to free). */
int store_msg_fetch(struct store *st, int64_t mailbox_id, const uint32_t *uids, size_t n,
		    bool summaries, struct store_fetch_row *rows, size_t *found_r,
		    struct yj_err *err) YJ_MUST_CHECK;
void store_fetch_rows_free(struct store_fetch_row *rows, size_t n);

/* ---- what an IMAP view reads (store_view.c) ---- */
/* The state of a message an IMAP view keeps. */
struct store_msg_state {
	uint32_t uid;
	uint32_t flags;
	uint64_t keywords;
	uint64_t modseq;
};
typedef void store_msg_state_cb(void *ctx, const struct store_msg_state *m);
/* The states of mailbox_id's messages in UID order: all of them (since
 * 0), or those whose MODSEQ is above since. */
int store_msg_states(struct store *st, int64_t mailbox_id, uint64_t since,
		     store_msg_state_cb *cb, void *ctx, struct yj_err *err);

/* The header IMAP serves of each message of a mailbox (prefix + the
 * summary's header lines), for SEARCH's header keys: one statement for
 * many messages. stored is false for a message whose
 * summary has no header lines (the caller reads its blob). */
struct store_msg_head {
	uint32_t uid;
	bool stored;
	char *text;			/* malloc'd, NUL-terminated; NULL if not stored */
	size_t len;
};
struct store_msg_heads {
	struct store_msg_head *v;	/* in UID order */
	size_t n;
};
/* Reads the heads of mailbox_id's messages from UID from_uid on, until
 * max_n messages or at least max_bytes bytes of them (so the memory a
 * caller holds is bounded by max_bytes + one message's header). 1 some
 * read, 0 none left, -1 error. Free with store_msg_heads_free. */
int store_msg_heads(struct store *st, int64_t mailbox_id, uint32_t from_uid, size_t max_n,
		    size_t max_bytes, struct store_msg_heads *h, struct yj_err *err);
void store_msg_heads_free(struct store_msg_heads *h);

/* ---- what IMAP keeps of a blob, made where its bytes are ----
 * The summary above and the folded text SEARCH BODY and TEXT compare
 * with (mime_text.h): the header fields, one "NAME: value" a line, and
 * the text parts, at most STORE_TEXT_MAX bytes, both valid UTF-8. The
 * session or delivering thread that has the message computes it; the
 * rows are written with the blob's and go with it. The text feeds a
 * full-text index (SQLite FTS5 with trigrams; PostgreSQL pg_trgm) that
 * SEARCH uses to rule messages out; a blob without text is never ruled
 * out. */
#define STORE_TEXT_MAX (4u << 20)
struct store_index {
	bool has_summary;
	struct store_summary summary;	/* its blob_id is not used */
	bool has_text;
	bool text_failed;		/* it could not be made (too large) */
	bool text_pending;		/* no text: to be made later */
	char *header;			/* malloc'd, NUL-terminated */
	size_t header_len;
	char *body;
	size_t body_len;
};
void store_index_free(struct store_index *ix);
/* Saves a blob's index rows (a `youju store reindex`, or a summary
 * made late) in one transaction; rows the blob has stay. 1, 0 no such
 * blob, -1 error. */
int store_index_put(struct store *st, const char *blob_id, const struct store_index *ix,
		    struct yj_err *err) YJ_MUST_CHECK;
/* Blobs of messages that have no index rows yet (neither text nor the
 * mark that it could not be made, or no summary), in id order after
 * after_id, at most max: each to cb with its size. Returns how many,
 * or -1. */
typedef void store_unindexed_cb(void *ctx, const char *blob_id, uint64_t size);
int store_unindexed(struct store *st, const char *after_id, size_t max,
		    store_unindexed_cb *cb, void *ctx, struct yj_err *err);
/* The UIDs of a mailbox's messages that may contain needle (folded,
 * valid UTF-8, at least 3 characters) in their body text (headers:
 * also in their header text), ascending, as a malloc'd array in
 * *uids_r (free it): those the index says do, and those without text
 * in the index. A superset of the matches, never missing one; SEARCH
 * confirms each. 1, or -1. */
#define STORE_TEXT_NEEDLE_MIN 3
/* Making and indexing the text costs a few microseconds per character:
 * a delivery and an APPEND set text_pending instead, and the text is
 * made later by fn (set once, before the store starts; mime lives above
 * the store), from the blob's bytes, into ix's text fields. */
typedef void store_text_fn(const char *data, size_t len, struct store_index *ix);
void store_set_text_maker(store_text_fn *fn);
/* A larger message gets neither at once nor later: its summary is made
 * at its first FETCH, and SEARCH scans it (the index never rules it
 * out). Reading a message back costs its size in memory, and the
 * search text is capped far below this anyway. */
#define STORE_TEXT_READ_MAX (8u << 20)
/* Makes the text of the next pending blobs, about max_bytes of them
 * (at least one), and saves it in one transaction; youjud's maintenance
 * thread calls it when the store is quiet. 1 some were made, 0 none
 * wait (or no maker is set), -1 error. */
int store_text_index_some(struct store *st, size_t max_bytes, struct yj_err *err);
/* A blob's bytes (size of them) into out: 1, 0 larger than max, -1. */
int store_blob_load(struct store *st, const char *blob_id, uint64_t size, size_t max,
		    struct buf *out, struct yj_err *err) YJ_MUST_CHECK;
int store_text_candidates(struct store *st, int64_t mailbox_id, const char *needle,
			  size_t len, bool headers, uint32_t **uids_r, size_t *n_r,
			  struct yj_err *err);

/* A change of flags and keywords over a UID set (IMAP STORE). */
enum store_flag_op {
	STORE_FLAGS_ADD,		/* +FLAGS */
	STORE_FLAGS_REMOVE,		/* -FLAGS */
	STORE_FLAGS_SET,		/* FLAGS: exactly these */
};
struct store_flag_change {
	enum store_flag_op op;
	uint32_t flags;			/* enum store_flag bits */
	const char *const *keywords;	/* names; unknown ones are made (not on REMOVE) */
	size_t n_keywords;
	bool unchangedsince_set;	/* RFC 7162 UNCHANGEDSINCE */
	uint64_t unchangedsince;
};
/* A message as it is after the change. */
struct store_flag_result {
	uint32_t uid;
	uint32_t flags;
	uint64_t keywords;
	uint64_t modseq;
};
typedef void store_flag_cb(void *ctx, const struct store_flag_result *r);
typedef void store_uid_cb(void *ctx, uint32_t uid);
/* Applies ch to the messages of set in one transaction. Each message
 * that changes gets the one new MODSEQ (*modseq_r; 0 if nothing changed,
 * and then no MODSEQ is used) and is passed to changed (may be NULL).
 * Messages whose MODSEQ is above ch->unchangedsince are left alone and
 * passed to failed (may be NULL): RFC 7162's MODIFIED list. UIDs not
 * present are ignored. The data dir's writer thread commits the change
 * together with the other writes waiting at that moment (one fsync for
 * all); the callbacks run in the caller's thread once it is committed
 * (failed also when nothing changed), and may use the store. 1, 0 no
 * such mailbox, STORE_KEYWORDS_FULL (a keyword would be made in a
 * mailbox that has STORE_KEYWORDS_MAX), -1 error (a bad keyword name, a
 * failed COMMIT). Must not be called
 * inside a transaction of st's data dir: the writer would wait for it. */
int store_msg_store_flags(struct store *st, int64_t mailbox_id, const struct store_uidset *set,
			  const struct store_flag_change *ch, store_flag_cb *changed,
			  store_uid_cb *failed, void *ctx, uint64_t *modseq_r,
			  struct yj_err *err) YJ_MUST_CHECK;
/* Removes the messages of set (only those with \Deleted if
 * only_deleted) in one transaction with one new MODSEQ (*modseq_r, 0 if
 * none was removed), leaving a record (UID, MODSEQ) of each for
 * store_vanished_since; each removed UID goes to cb (may be NULL), after
 * the commit. Blob files no longer referenced are unlinked after the
 * commit. Committed by the writer thread like store_msg_store_flags,
 * with the same rule. 1, 0 no such mailbox, -1 error. */
int store_msg_expunge_set(struct store *st, int64_t mailbox_id, const struct store_uidset *set,
			  bool only_deleted, store_uid_cb *cb, void *ctx, uint64_t *modseq_r,
			  struct yj_err *err) YJ_MUST_CHECK;
/* Messages whose MODSEQ is above modseq, in UID order (CONDSTORE
 * CHANGEDSINCE, QRESYNC). */
int store_msg_changed_since(struct store *st, int64_t mailbox_id, uint64_t modseq,
			    store_msg_cb *cb, void *ctx, struct yj_err *err);
/* UIDs expunged at a MODSEQ above modseq, in UID order (VANISHED).
 * Complete only if modseq >= the mailbox's vanished_floor. */
int store_vanished_since(struct store *st, int64_t mailbox_id, uint64_t modseq,
			 store_uid_cb *cb, void *ctx, struct yj_err *err);
/* Forgets expunge records made before the unix time older_than, raising
 * each mailbox's vanished_floor to what it forgot (RFC 7162 3.2.10
 * allows it). */
int store_vanished_compact(struct store *st, int64_t older_than,
			   struct yj_err *err) YJ_MUST_CHECK;

/* ---- appending, copying and moving (IMAP APPEND, COPY, MOVE) ----
 * Each is one transaction, all of it or nothing. The new messages get
 * consecutive UIDs of the target, in order, and one new MODSEQ; notices
 * for the target (and for a move's source) are published after COMMIT.
 * A quota (below) is checked inside the same transaction. */

/* Returned (with err set) when the target account's quota would be
 * exceeded; nothing was written. */
#define STORE_OVER_QUOTA (-2)

struct store_uid_map {
	uint32_t src;			/* the message's UID in the source */
	uint32_t dst;			/* its copy's UID in the target */
};
struct store_copy_result {
	struct store_uid_map *map;	/* malloc'd (free it), in source UID order */
	size_t n;			/* 0: none of the set was there */
	uint32_t uidvalidity;		/* the target's */
};
/* Copies the messages of set from one mailbox to another: each copy
 * shares its blob and keeps flags, keywords (by name), internal date and
 * size. With move, the source messages are expunged in the same
 * transaction (with expunge records, for QRESYNC's VANISHED); a move
 * between mailboxes of one account uses no quota and is never refused
 * for it. UIDs of set that are not there are ignored. 1 (res filled),
 * 0 either mailbox does not exist, STORE_OVER_QUOTA, STORE_KEYWORDS_FULL
 * (a keyword of the copies is new to a target that has its most), -1
 * error. */
int store_msg_copy(struct store *st, int64_t from_mailbox, int64_t to_mailbox,
		   const struct store_uidset *set, bool move, struct store_copy_result *res,
		   struct yj_err *err) YJ_MUST_CHECK;

/* An append's internal date for "now": any other value is a time, also
 * 0 and those before 1970 (an IMAP date-time can be any year from 0000). */
#define STORE_DATE_NOW INT64_MIN

/* One message of an append. */
struct store_append_msg {
	const void *data;		/* its bytes */
	size_t len;
	uint32_t flags;			/* enum store_flag bits */
	const char *const *keywords;	/* names (made in the mailbox if new) */
	size_t n_keywords;
	int64_t internal_date;		/* unix time, or STORE_DATE_NOW */
	int internal_zone;		/* its zone, minutes east of UTC; out of
					 * STORE_ZONE_MAX: UTC */
	const struct store_index *index;	/* NULL, or its blob's (see there) */
	const char *thread_keys;	/* as store_delivery's */
	size_t thread_keys_len;
};
/* Appends n messages (IMAP MULTIAPPEND, RFC 3502) to the mailbox: a
 * blob file per message is written and made durable first, then every
 * row is committed in one transaction. uids_r (n of them) gets their
 * UIDs and *uidvalidity_r the mailbox's UIDVALIDITY. On any result but
 * 1 nothing is left behind: no rows, and the files are removed (unless
 * the COMMIT itself failed in a way that may still reach the disk: then
 * store_gc removes them if no row names them). 1, 0 no such mailbox,
 * STORE_OVER_QUOTA, STORE_KEYWORDS_FULL, -1 error. */
int store_msg_append(struct store *st, int64_t mailbox_id, const struct store_append_msg *msgs,
		     size_t n, uint32_t *uids_r, uint32_t *uidvalidity_r,
		     struct yj_err *err) YJ_MUST_CHECK;

/* ---- storage quotas (RFC 9208 STORAGE) ----
 * A limit in bytes per account (none by default) against the sum of the
 * sizes of its messages, which the store keeps as rows come and go. */
#define STORE_QUOTA_NONE (-1)
struct store_quota {
	int64_t limit;			/* bytes, or STORE_QUOTA_NONE */
	uint64_t used;			/* bytes */
};
/* 1 found, 0 no such account, -1 error. */
int store_quota_get(struct store *st, int64_t account_id, struct store_quota *q,
		    struct yj_err *err);
/* Sets an account's limit (bytes >= 0, or STORE_QUOTA_NONE). 1, 0 no
 * such account, -1 error. */
int store_quota_set(struct store *st, const char *address, int64_t limit,
		    struct yj_err *err) YJ_MUST_CHECK;
/* Is the account at or over its limit (new mail is refused)? 1 yes,
 * 0 no (or no limit, or no such account), -1 error. */
int store_quota_full(struct store *st, int64_t account_id, struct yj_err *err);

/* Adds flags (enum store_flag bits) to these UIDs in one transaction;
 * the messages that change get the mailbox's next MODSEQ. UIDs not
 * present, or that have the flags already, are left alone. */
int store_msg_add_flags(struct store *st, int64_t mailbox_id, const uint32_t *uids, size_t n,
			uint32_t flags, struct yj_err *err) YJ_MUST_CHECK;
/* Removes these UIDs from the mailbox in one transaction (a new MODSEQ);
 * blob files no longer referenced are unlinked after the commit.
 * UIDs not present are ignored. */
int store_msg_expunge(struct store *st, int64_t mailbox_id, const uint32_t *uids, size_t n,
		      struct yj_err *err) YJ_MUST_CHECK;

/* ---- DMARC aggregate reports (store_dmarc.c) ----
 *
 * Inbound DMARC results for domains that ask for reports (rua=), counted
 * per UTC day and per distinct row of the report, until a report takes
 * them; the policy each domain last published; the reports sent. */

#define STORE_DMARC_TEXT_MAX 1024	/* dkim results, rua list */

struct store_dmarc_policy {
	char domain[256];
	char adkim[2], aspf[2];		/* "r" or "s" */
	char p[16], sp[16];		/* none, quarantine, reject */
	int64_t pct;
	char rua[STORE_DMARC_TEXT_MAX];	/* "mailto:a@x!10m mailto:b@y" */
};

struct store_dmarc_row {
	int64_t day;			/* UTC days since the epoch */
	char policy_domain[256];
	char source_ip[64];
	char header_from[256];
	char disposition[16];		/* none, quarantine, reject */
	bool dkim_aligned, spf_aligned;	/* policy_evaluated dkim, spf pass */
	char override[32];		/* PolicyOverrideType, "" if none */
	char dkim[STORE_DMARC_TEXT_MAX];	/* "domain selector result" lines */
	char spf_domain[256];
	char spf_result[16];
	int64_t count, first_seen, last_seen;
};

/* Counts one message (row's count is ignored) and keeps the domain's
 * policy. Returns 1 or -1. */
int store_dmarc_record(struct store *st, const struct store_dmarc_policy *pol,
		       const struct store_dmarc_row *row, int64_t now, struct yj_err *err);

typedef void store_dmarc_domain_cb(void *ctx, const char *domain);
typedef void store_dmarc_row_cb(void *ctx, const struct store_dmarc_row *row);

/* The policy domains with rows of days before before_day (INT64_MAX:
 * all rows). Returns 1 or -1. */
int store_dmarc_domains(struct store *st, int64_t before_day, store_dmarc_domain_cb *cb,
			void *ctx, struct yj_err *err);

/* A domain's policy and its rows of days before before_day. Returns 1,
 * 0 if the domain has no policy, -1. */
int store_dmarc_rows(struct store *st, const char *domain, int64_t before_day,
		     struct store_dmarc_policy *pol, store_dmarc_row_cb *cb, void *ctx,
		     struct yj_err *err);

/* The domain's rows before before_day are reported (or dropped: nobody
 * may receive them): deletes them and, when report_id is not NULL,
 * records the report as sent on day. Returns 1 or -1. */
int store_dmarc_done(struct store *st, const char *domain, int64_t before_day,
		     const char *report_id, const char *rcpts, int64_t day, int64_t now,
		     struct yj_err *err);

/* How many reports were sent on day. Returns the count, or -1. */
int64_t store_dmarc_sent_count(struct store *st, int64_t day, struct yj_err *err);

#endif
