/* store_schema.c - the SQLite schema as a list of migration steps, and
 * running a driver's steps.
 *
 * The driver records how many steps a database has had (SQLite: PRAGMA
 * user_version). Each step
 * runs in its own transaction together with the version bump, so a crash
 * leaves the database at one version or the next, never in between. A
 * released step is never edited: a change to the schema is a new step.
 */
#include "store/store-private.h"

#include <stdio.h>

/* Blob refcounts count the message and queue rows that refer to a blob.
 * Triggers keep them, so that every way of removing a row (expunge, an
 * account deleted with its mailboxes, a queue entry done) is counted the
 * same and the file is unlinked only with its last reference. */
static const char schema_v1[] =
	"CREATE TABLE meta ("
	" key TEXT PRIMARY KEY,"
	" value INTEGER NOT NULL"
	") WITHOUT ROWID;"
	"INSERT INTO meta (key, value) VALUES ('last_uidvalidity', 0);"

	"CREATE TABLE domains ("
	" id INTEGER PRIMARY KEY,"
	" name TEXT NOT NULL UNIQUE,"
	" created INTEGER NOT NULL"
	");"

	"CREATE TABLE accounts ("
	" id INTEGER PRIMARY KEY,"
	" domain_id INTEGER NOT NULL REFERENCES domains (id),"
	" address TEXT NOT NULL UNIQUE,"
	" password_hash TEXT NOT NULL,"
	" created INTEGER NOT NULL"
	");"
	"CREATE INDEX accounts_domain ON accounts (domain_id);"

	/* address is local@domain or @domain (catch-all) */
	"CREATE TABLE aliases ("
	" id INTEGER PRIMARY KEY,"
	" domain_id INTEGER NOT NULL REFERENCES domains (id),"
	" address TEXT NOT NULL,"
	" target TEXT NOT NULL,"
	" UNIQUE (address, target)"
	");"
	"CREATE INDEX aliases_domain ON aliases (domain_id);"

	"CREATE TABLE mailboxes ("
	" id INTEGER PRIMARY KEY,"
	" account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,"
	" name TEXT NOT NULL,"
	" special_use TEXT NOT NULL DEFAULT '',"
	" uidvalidity INTEGER NOT NULL,"
	" uidnext INTEGER NOT NULL DEFAULT 1,"
	" highestmodseq INTEGER NOT NULL DEFAULT 1,"
	" subscribed INTEGER NOT NULL DEFAULT 1,"
	" UNIQUE (account_id, name)"
	");"

	/* id is "HOUR/RANDOM", the path below blobs/ */
	"CREATE TABLE blobs ("
	" id TEXT PRIMARY KEY,"
	" size INTEGER NOT NULL,"
	" refcount INTEGER NOT NULL DEFAULT 0,"
	" created INTEGER NOT NULL"
	") WITHOUT ROWID;"
	"CREATE INDEX blobs_unreferenced ON blobs (id) WHERE refcount <= 0;"

	/* size is prefix + blob; prefix is the per-recipient header lines */
	"CREATE TABLE messages ("
	" id INTEGER PRIMARY KEY,"
	" mailbox_id INTEGER NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,"
	" uid INTEGER NOT NULL,"
	" modseq INTEGER NOT NULL,"
	" flags INTEGER NOT NULL DEFAULT 0,"
	" internal_date INTEGER NOT NULL,"
	" size INTEGER NOT NULL,"
	" blob_id TEXT NOT NULL REFERENCES blobs (id),"
	" prefix BLOB NOT NULL,"
	" UNIQUE (mailbox_id, uid)"
	");"
	"CREATE INDEX messages_blob ON messages (blob_id);"

	/* the outbound queue: one row per remote recipient */
	"CREATE TABLE queue ("
	" id INTEGER PRIMARY KEY,"
	" blob_id TEXT NOT NULL REFERENCES blobs (id),"
	" sender TEXT NOT NULL,"
	" recipient TEXT NOT NULL,"
	" created INTEGER NOT NULL,"
	" next_attempt INTEGER NOT NULL,"
	" attempts INTEGER NOT NULL DEFAULT 0,"
	" status TEXT NOT NULL DEFAULT 'queued',"
	" last_error TEXT NOT NULL DEFAULT ''"
	");"
	"CREATE INDEX queue_due ON queue (status, next_attempt);"
	"CREATE INDEX queue_blob ON queue (blob_id);"

	"CREATE TRIGGER messages_ref AFTER INSERT ON messages BEGIN"
	" UPDATE blobs SET refcount = refcount + 1 WHERE id = NEW.blob_id;"
	" END;"
	"CREATE TRIGGER messages_unref AFTER DELETE ON messages BEGIN"
	" UPDATE blobs SET refcount = refcount - 1 WHERE id = OLD.blob_id;"
	" END;"
	"CREATE TRIGGER messages_blob_fixed BEFORE UPDATE OF blob_id ON messages BEGIN"
	" SELECT RAISE(ABORT, 'a message''s blob cannot change');"
	" END;"
	"CREATE TRIGGER queue_ref AFTER INSERT ON queue BEGIN"
	" UPDATE blobs SET refcount = refcount + 1 WHERE id = NEW.blob_id;"
	" END;"
	"CREATE TRIGGER queue_unref AFTER DELETE ON queue BEGIN"
	" UPDATE blobs SET refcount = refcount - 1 WHERE id = OLD.blob_id;"
	" END;"
	"CREATE TRIGGER queue_blob_fixed BEFORE UPDATE OF blob_id ON queue BEGIN"
	" SELECT RAISE(ABORT, 'a queue entry''s blob cannot change');"
	" END;";

/* The change model (IMAP CONDSTORE, QRESYNC, IDLE):
 * - messages.keywords: bits of the mailbox's `keywords` rows, so that
 *   flags and keywords of a whole UID range change in one UPDATE;
 * - `vanished`: one row per expunged message (QRESYNC VANISHED), and
 *   mailboxes.vanished_floor, the highest MODSEQ of rows compacted away;
 * - `changes`: each change with the process that made it, read by
 *   youjud to notice other processes' commits, pruned after a while.
 *   AUTOINCREMENT: a seq is never reused, even after the table emptied;
 * - the index that makes "changed since MODSEQ" cheap ((mailbox_id, uid)
 *   is the UNIQUE index of step 1). */
static const char schema_v2[] =
	"ALTER TABLE messages ADD COLUMN keywords INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE mailboxes ADD COLUMN vanished_floor INTEGER NOT NULL DEFAULT 0;"
	"CREATE INDEX messages_modseq ON messages (mailbox_id, modseq);"

	"CREATE TABLE keywords ("
	" mailbox_id INTEGER NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,"
	" bit INTEGER NOT NULL CHECK (bit >= 0 AND bit < 63),"
	" name TEXT NOT NULL,"
	" lname TEXT NOT NULL,"
	" PRIMARY KEY (mailbox_id, bit),"
	" UNIQUE (mailbox_id, lname)"
	");"

	"CREATE TABLE vanished ("
	" mailbox_id INTEGER NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,"
	" uid INTEGER NOT NULL,"
	" modseq INTEGER NOT NULL,"
	" created INTEGER NOT NULL,"
	" PRIMARY KEY (mailbox_id, uid)"
	");"
	"CREATE INDEX vanished_modseq ON vanished (mailbox_id, modseq);"
	"CREATE INDEX vanished_created ON vanished (created);"

	"CREATE TABLE changes ("
	" seq INTEGER PRIMARY KEY AUTOINCREMENT,"
	" account_id INTEGER NOT NULL,"
	" mailbox_id INTEGER NOT NULL,"
	" modseq INTEGER NOT NULL,"
	" kind INTEGER NOT NULL,"
	" origin INTEGER NOT NULL,"
	" created INTEGER NOT NULL"
	");"
	"CREATE INDEX changes_created ON changes (created);";

/* The outbound queue the sender will read:
 * - `queue_messages`: what is per message (the envelope sender, DSN
 *   ENVID and RET, the body type, SMTPUTF8, header lines to prepend when
 *   sending, for DKIM and ARC); removed with its last recipient row;
 * - per recipient (`queue`): the destination domain (the unit of
 *   connection reuse), DSN NOTIFY and ORCPT, and a claim: the node that
 *   took the row (claimed_by) and until when (lease_until). A claim whose
 *   lease ran out is free again, so a dead node's work comes back.
 *   last_error holds the last reply.
 * Rows queued before this step get a message row each and their domain. */
static const char schema_v3[] =
	"CREATE TABLE queue_messages ("
	" id INTEGER PRIMARY KEY,"
	" blob_id TEXT NOT NULL,"
	" sender TEXT NOT NULL,"
	" envid TEXT NOT NULL DEFAULT '',"
	" ret TEXT NOT NULL DEFAULT '',"
	" body TEXT NOT NULL DEFAULT '',"
	" smtputf8 INTEGER NOT NULL DEFAULT 0,"
	" header BLOB NOT NULL DEFAULT '',"
	" created INTEGER NOT NULL"
	");"
	"ALTER TABLE queue ADD COLUMN message_id INTEGER REFERENCES queue_messages (id);"
	"ALTER TABLE queue ADD COLUMN domain TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE queue ADD COLUMN notify TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE queue ADD COLUMN orcpt TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE queue ADD COLUMN claimed_by TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE queue ADD COLUMN lease_until INTEGER NOT NULL DEFAULT 0;"

	"INSERT INTO queue_messages (blob_id, sender, created)"
	" SELECT blob_id, sender, min(created) FROM queue GROUP BY blob_id, sender;"
	"UPDATE queue SET message_id = (SELECT min(m.id) FROM queue_messages m"
	"  WHERE m.blob_id = queue.blob_id AND m.sender = queue.sender),"
	" domain = lower(substr(recipient, instr(recipient, '@') + 1));"

	"CREATE INDEX queue_message ON queue (message_id);"
	"CREATE INDEX queue_domain ON queue (domain, status, next_attempt);"
	"CREATE TRIGGER queue_message_done AFTER DELETE ON queue"
	" WHEN NOT EXISTS (SELECT 1 FROM queue WHERE message_id = OLD.message_id) BEGIN"
	" DELETE FROM queue_messages WHERE id = OLD.message_id;"
	" END;";

/* Step 4: who may send as what at submission, beyond the account's own
 * addresses. account_senders: an address (local@domain) or a whole
 * domain (@domain) an account may use as sender. alias_owners: accounts
 * that may send as an alias (its address as in aliases). Both go with
 * their account. */
static const char schema_v4[] =
	"CREATE TABLE account_senders ("
	" account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,"
	" pattern TEXT NOT NULL,"
	" PRIMARY KEY (account_id, pattern)"
	");"
	"CREATE TABLE alias_owners ("
	" alias TEXT NOT NULL,"
	" account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,"
	" PRIMARY KEY (alias, account_id)"
	");"
	"CREATE INDEX alias_owners_account ON alias_owners (account_id);";

/* DMARC aggregate reports (RFC 7489 7.2): the results of inbound DMARC
 * checks for domains that ask for reports, counted per UTC day and per
 * everything a report row shows (dmarc_rows); the policy each domain
 * last published, with its rua= (dmarc_policies); and the reports sent,
 * for the per-day cap (dmarc_sent). */
static const char schema_v5[] =
	"CREATE TABLE dmarc_rows ("
	" day INTEGER NOT NULL,"
	" policy_domain TEXT NOT NULL,"
	" source_ip TEXT NOT NULL,"
	" header_from TEXT NOT NULL,"
	" disposition TEXT NOT NULL,"
	" dkim_aligned INTEGER NOT NULL,"
	" spf_aligned INTEGER NOT NULL,"
	" override TEXT NOT NULL,"
	" dkim TEXT NOT NULL,"
	" spf_domain TEXT NOT NULL,"
	" spf_result TEXT NOT NULL,"
	" n INTEGER NOT NULL,"
	" first_seen INTEGER NOT NULL,"
	" last_seen INTEGER NOT NULL,"
	" UNIQUE (policy_domain, day, source_ip, header_from, disposition, dkim_aligned,"
	"  spf_aligned, override, dkim, spf_domain, spf_result)"
	");"
	"CREATE TABLE dmarc_policies ("
	" domain TEXT PRIMARY KEY,"
	" adkim TEXT NOT NULL,"
	" aspf TEXT NOT NULL,"
	" p TEXT NOT NULL,"
	" sp TEXT NOT NULL,"
	" pct INTEGER NOT NULL,"
	" rua TEXT NOT NULL,"
	" updated INTEGER NOT NULL"
	");"
	"CREATE TABLE dmarc_sent ("
	" id INTEGER PRIMARY KEY,"
	" day INTEGER NOT NULL,"
	" policy_domain TEXT NOT NULL,"
	" report_id TEXT NOT NULL,"
	" rcpts TEXT NOT NULL,"
	" created INTEGER NOT NULL"
	");"
	"CREATE INDEX dmarc_sent_day ON dmarc_sent (day);";

/* The time a message was saved into its mailbox (RFC 8514 SAVEDATE),
 * the internal date for messages saved before this step. A trigger
 * fills it for every row inserted without one, whichever code path
 * adds the message (`youju store copy` brings its own). And the IMAP
 * capabilities an account has switched off ("CONDSTORE QRESYNC"). */
static const char schema_v6[] =
	"ALTER TABLE messages ADD COLUMN saved INTEGER NOT NULL DEFAULT 0;"
	"UPDATE messages SET saved = internal_date;"
	"CREATE TRIGGER messages_saved AFTER INSERT ON messages WHEN NEW.saved = 0 BEGIN"
	" UPDATE messages SET saved = CAST(strftime('%s', 'now') AS INTEGER) WHERE id = NEW.id;"
	" END;"
	"ALTER TABLE accounts ADD COLUMN imap_disable TEXT NOT NULL DEFAULT '';";

/* Step 8: IMAP message summaries (store_summary_get/put): ENVELOPE,
 * BODY, BODYSTRUCTURE and the header lines of a blob, computed once, so
 * a FETCH of them reads no message. A side table, not columns of blobs,
 * whose rows every delivery updates (refcount) and should stay small; a
 * summary goes with its blob. Blobs stored before this step get theirs
 * at first use. */
static const char schema_v8[] =
	"CREATE TABLE summaries ("
	" blob_id TEXT PRIMARY KEY,"
	" envelope BLOB NOT NULL,"
	" body BLOB NOT NULL,"
	" bodystructure BLOB NOT NULL,"
	" header BLOB NOT NULL"
	") WITHOUT ROWID;"
	"CREATE TRIGGER blobs_summary_gone AFTER DELETE ON blobs BEGIN"
	" DELETE FROM summaries WHERE blob_id = OLD.id;"
	" END;";

/* Step 7: storage quotas (RFC 9208, SMTP 452 4.2.2): accounts.quota_bytes
 * is the limit (NULL: none, the default) and used_bytes the sum of the
 * sizes of the account's messages, kept by triggers so that every way a
 * message row comes or goes (delivery, APPEND, COPY, MOVE, expunge, a
 * deleted mailbox or account) counts, and no check ever needs a SUM. */
static const char schema_v7[] =
	"ALTER TABLE accounts ADD COLUMN quota_bytes INTEGER;"
	"ALTER TABLE accounts ADD COLUMN used_bytes INTEGER NOT NULL DEFAULT 0;"
	"UPDATE accounts SET used_bytes = (SELECT coalesce(sum(m.size), 0)"
	" FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id"
	" WHERE b.account_id = accounts.id);"
	"CREATE TRIGGER messages_usage_add AFTER INSERT ON messages BEGIN"
	" UPDATE accounts SET used_bytes = used_bytes + NEW.size"
	" WHERE id = (SELECT account_id FROM mailboxes WHERE id = NEW.mailbox_id);"
	" END;"
	"CREATE TRIGGER messages_usage_sub AFTER DELETE ON messages BEGIN"
	" UPDATE accounts SET used_bytes = used_bytes - OLD.size"
	" WHERE id = (SELECT account_id FROM mailboxes WHERE id = OLD.mailbox_id);"
	" END;";

/* Step 9: notices to the sender (queue/queue_report.c):
 * - queue.notified: the failure (or, for NOTIFY=SUCCESS, the relay) of
 *   this recipient has been reported; set in the transaction that stores
 *   the notice, so that it is neither lost nor sent twice;
 * - queue.remote_mta: the host whose reply last_error is, for the notice;
 * - queue_messages.warned: the one delay notice has been sent. */
static const char schema_v9[] =
	"ALTER TABLE queue ADD COLUMN notified INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE queue ADD COLUMN remote_mta TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE queue_messages ADD COLUMN warned INTEGER NOT NULL DEFAULT 0;"
	"CREATE INDEX queue_report ON queue (status, notified);";

/* Step 10: the text SEARCH BODY and TEXT compare with, per blob
 * (store_index.c): the header fields and the text parts, decoded and
 * folded; NULL: not made (too large), never ruled out. search_fts
 * indexes it with trigrams, so a needle of 3 or more characters finds
 * every text holding it as a substring (the text is folded already,
 * hence case_sensitive). Making and indexing the text costs a few
 * microseconds per character, too much for a delivery: a delivery or
 * APPEND only names its blob in search_pending, and youjud's
 * maintenance thread makes the rows when the store is quiet. Both go
 * with their blob. Blobs stored before this step get theirs from
 * `youju store reindex`; until then they are searched as before. */
static const char schema_v10[] =
	"CREATE TABLE search_text ("
	" id INTEGER PRIMARY KEY,"
	" blob_id TEXT NOT NULL UNIQUE,"
	" header TEXT,"
	" body TEXT);"
	"CREATE VIRTUAL TABLE search_fts USING fts5(header, body, content='search_text',"
	" content_rowid='id', tokenize='trigram case_sensitive 1');"
	"CREATE TRIGGER search_text_added AFTER INSERT ON search_text BEGIN"
	" INSERT INTO search_fts (rowid, header, body) VALUES (NEW.id, NEW.header, NEW.body);"
	" END;"
	"CREATE TRIGGER search_text_gone AFTER DELETE ON search_text BEGIN"
	" INSERT INTO search_fts (search_fts, rowid, header, body)"
	" VALUES ('delete', OLD.id, OLD.header, OLD.body);"
	" END;"
	"CREATE TABLE search_pending (blob_id TEXT PRIMARY KEY) WITHOUT ROWID;"
	"CREATE TRIGGER blobs_text_gone AFTER DELETE ON blobs BEGIN"
	" DELETE FROM search_text WHERE blob_id = OLD.id;"
	" DELETE FROM search_pending WHERE blob_id = OLD.id;"
	" END;";
/* Step 11: conversations (RFC 8474 THREADID, store_thread.c):
 * - messages.thread_id: the message's thread, 0 for messages stored
 *   before this step (their THREADID is NIL);
 * - `threads`: the message-ids an account has seen, each with its thread;
 * - meta last_thread_id: the last thread number given. */
static const char schema_v11[] =
	"ALTER TABLE messages ADD COLUMN thread_id INTEGER NOT NULL DEFAULT 0;"
	"CREATE TABLE threads ("
	" account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,"
	" msgid TEXT NOT NULL,"
	" thread_id INTEGER NOT NULL,"
	" PRIMARY KEY (account_id, msgid)"
	");"
	"INSERT INTO meta (key, value) VALUES ('last_thread_id', 0);";

/* Step 12: mailboxes.recent_floor, the lowest UID still \Recent for the
 * next session that selects the mailbox (RFC 3501 2.3.2,
 * store_mailbox_recent); a new mailbox's is its first UID. Messages
 * stored before this step are not recent. */
static const char schema_v12[] =
	"ALTER TABLE mailboxes ADD COLUMN recent_floor INTEGER NOT NULL DEFAULT 1;"
	"UPDATE mailboxes SET recent_floor = uidnext;";

/* Step 13: subscriptions kept for names no mailbox has: a subscribed
 * mailbox that is deleted stays subscribed (RFC 3501 6.3.9, RFC 9051
 * 6.3.10: the server MUST NOT remove a name from the subscription list
 * because its mailbox is gone); a mailbox created under the name takes
 * the subscription back (store_subscription.c). */
static const char schema_v13[] =
	"CREATE TABLE kept_subscriptions ("
	" account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,"
	" name TEXT NOT NULL,"
	" PRIMARY KEY (account_id, name)"
	");";

/* Step 14: messages.internal_zone, the zone (minutes east of UTC) the
 * internal date was given in: FETCH INTERNALDATE shows it and SEARCH
 * BEFORE/ON/SINCE take the day as it reads there (RFC 3501 6.4.4).
 * Messages stored before this step are in UTC, as they were shown. */
static const char schema_v14[] =
	"ALTER TABLE messages ADD COLUMN internal_zone INTEGER NOT NULL DEFAULT 0;";

const char *const store_sqlite_migrations[STORE_SQLITE_STEPS] = {
	schema_v1,
	schema_v2,
	schema_v3,
	schema_v4,
	schema_v5,
	schema_v6,
	schema_v7,
	schema_v8,
	schema_v9,
	schema_v10,
	schema_v11,
	schema_v12,
	schema_v13,
	schema_v14,
};

/* Runs step number version (0-based) and records version + 1, inside the
 * caller's transaction. */
static int
store_migrate_step(struct store *st, int version, struct yj_err *err)
{
	struct yj_err step_err;

	if (store_exec(st, st->drv->migrations[version], &step_err) < 0)
		return yj_err_set(err, "store: schema step %d: %s", version + 1, step_err.msg);
	return st->drv->set_version(st->db, version + 1, err);
}

int
store_migrate(struct store *st, struct yj_err *err)
{
	int latest = (int)st->drv->n_migrations;
	int version;

	if (st->drv->get_version(st->db, &version, err) < 0)
		return -1;
	if (version > latest)
		return yj_err_set(err, "store: %s has schema version %d, newer than this "
				  "youju knows (%d)", st->data_dir, version, latest);
	while (version < latest) {
		if (store_begin(st, err) < 0)
			return -1;
		/* Read again under the write lock: another connection may have
		 * migrated since the first look. */
		if (st->drv->get_version(st->db, &version, err) < 0 ||
		    (version < latest && store_migrate_step(st, version, err) < 0)) {
			store_rollback(st);
			return -1;
		}
		if (store_commit(st, err) < 0)
			return -1;
		if (st->drv->get_version(st->db, &version, err) < 0)
			return -1;
	}
	return 1;
}
