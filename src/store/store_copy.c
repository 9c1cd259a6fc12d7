/* store_copy.c - copying a whole store into another, of either driver.
 *
 * For a site that outgrows one machine (SQLite to PostgreSQL) or goes
 * back. Rows keep their ids, so mailboxes keep their UIDVALIDITY, UIDs,
 * MODSEQs, flags and keywords, and clients need not resynchronise. Blob
 * refcounts and quota usage are not copied: the target's triggers count
 * the rows that refer to each blob, and each account's bytes, as they
 * arrive. The change log is not copied: it
 * only matters to processes running now.
 */
#include "store/store-private.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"

/* One table: how to read it and write it, and each column's type
 * (i integer, t text, b blob), in order. */
struct store_copy_table {
	const char *name;
	const char *select_sql;
	const char *insert_sql;
	const char *types;
};

static const struct store_copy_table store_copy_tables[] = {
	{ "domains", "SELECT id, name, created FROM domains ORDER BY id",
	  "INSERT INTO domains (id, name, created) VALUES (?1, ?2, ?3)", "iti" },
	/* Quota usage is not copied: the target's triggers count the
	 * messages as they arrive. No quota travels as -1. */
	{ "accounts", "SELECT id, domain_id, address, password_hash, created, imap_disable,"
	  " coalesce(quota_bytes, -1) FROM accounts ORDER BY id",
	  "INSERT INTO accounts (id, domain_id, address, password_hash, created, imap_disable,"
	  " quota_bytes) VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULLIF(?7, -1))", "iittiti" },
	{ "aliases", "SELECT id, domain_id, address, target FROM aliases ORDER BY id",
	  "INSERT INTO aliases (id, domain_id, address, target) VALUES (?1, ?2, ?3, ?4)",
	  "iitt" },
	{ "account_senders", "SELECT account_id, pattern FROM account_senders"
	  " ORDER BY account_id, pattern",
	  "INSERT INTO account_senders (account_id, pattern) VALUES (?1, ?2)", "it" },
	{ "alias_owners", "SELECT alias, account_id FROM alias_owners ORDER BY alias, account_id",
	  "INSERT INTO alias_owners (alias, account_id) VALUES (?1, ?2)", "ti" },
	{ "mailboxes", "SELECT id, account_id, name, special_use, uidvalidity, uidnext,"
	  " highestmodseq, subscribed, vanished_floor, recent_floor FROM mailboxes ORDER BY id",
	  "INSERT INTO mailboxes (id, account_id, name, special_use, uidvalidity, uidnext,"
	  " highestmodseq, subscribed, vanished_floor, recent_floor)"
	  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)", "iittiiiiii" },
	{ "blobs", "SELECT id, size, created FROM blobs ORDER BY id",
	  "INSERT INTO blobs (id, size, refcount, created) VALUES (?1, ?2, 0, ?3)", "tii" },
	{ "messages", "SELECT id, mailbox_id, uid, modseq, flags, internal_date, size, blob_id,"
	  " prefix, keywords, saved, thread_id, internal_zone FROM messages ORDER BY id",
	  "INSERT INTO messages (id, mailbox_id, uid, modseq, flags, internal_date, size,"
	  " blob_id, prefix, keywords, saved, thread_id, internal_zone)"
	  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)", "iiiiiiitbiiii" },
	{ "threads", "SELECT account_id, msgid, thread_id FROM threads ORDER BY account_id, msgid",
	  "INSERT INTO threads (account_id, msgid, thread_id) VALUES (?1, ?2, ?3)", "iti" },
	{ "kept_subscriptions", "SELECT account_id, name FROM kept_subscriptions"
	  " ORDER BY account_id, name",
	  "INSERT INTO kept_subscriptions (account_id, name) VALUES (?1, ?2)", "it" },
	{ "summaries", "SELECT blob_id, envelope, body, bodystructure, header FROM summaries"
	  " ORDER BY blob_id",
	  "INSERT INTO summaries (blob_id, envelope, body, bodystructure, header)"
	  " VALUES (?1, ?2, ?3, ?4, ?5)", "tbbbb" },
	/* The search text, the marks of texts not made and the blobs
	 * whose text is still to be made; the target indexes the text as
	 * it arrives. */
	{ "search_text", "SELECT blob_id, header, body FROM search_text"
	  " WHERE body IS NOT NULL ORDER BY blob_id",
	  "INSERT INTO search_text (blob_id, header, body) VALUES (?1, ?2, ?3)", "ttt" },
	{ "search_text", "SELECT blob_id FROM search_text WHERE body IS NULL ORDER BY blob_id",
	  "INSERT INTO search_text (blob_id) VALUES (?1)", "t" },
	{ "search_pending", "SELECT blob_id FROM search_pending ORDER BY blob_id",
	  "INSERT INTO search_pending (blob_id) VALUES (?1)", "t" },
	{ "keywords", "SELECT mailbox_id, bit, name, lname FROM keywords"
	  " ORDER BY mailbox_id, bit",
	  "INSERT INTO keywords (mailbox_id, bit, name, lname) VALUES (?1, ?2, ?3, ?4)", "iitt" },
	{ "vanished", "SELECT mailbox_id, uid, modseq, created FROM vanished"
	  " ORDER BY mailbox_id, uid",
	  "INSERT INTO vanished (mailbox_id, uid, modseq, created) VALUES (?1, ?2, ?3, ?4)",
	  "iiii" },
	{ "queue_messages", "SELECT id, blob_id, sender, envid, ret, body, smtputf8, header,"
	  " created, warned FROM queue_messages ORDER BY id",
	  "INSERT INTO queue_messages (id, blob_id, sender, envid, ret, body, smtputf8, header,"
	  " created, warned) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)", "itttttibii" },
	{ "queue", "SELECT id, blob_id, sender, recipient, created, next_attempt, attempts,"
	  " status, last_error, message_id, domain, notify, orcpt, claimed_by, lease_until,"
	  " notified, remote_mta FROM queue ORDER BY id",
	  "INSERT INTO queue (id, blob_id, sender, recipient, created, next_attempt, attempts,"
	  " status, last_error, message_id, domain, notify, orcpt, claimed_by, lease_until,"
	  " notified, remote_mta)"
	  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
	  "itttiiittittttiit" },
	/* DMARC results not yet reported, and the reports sent (the cap). */
	{ "dmarc_rows", "SELECT day, policy_domain, source_ip, header_from, disposition,"
	  " dkim_aligned, spf_aligned, override, dkim, spf_domain, spf_result, n, first_seen,"
	  " last_seen FROM dmarc_rows ORDER BY policy_domain, day",
	  "INSERT INTO dmarc_rows (day, policy_domain, source_ip, header_from, disposition,"
	  " dkim_aligned, spf_aligned, override, dkim, spf_domain, spf_result, n, first_seen,"
	  " last_seen) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
	  "ittttiittttiii" },
	{ "dmarc_policies", "SELECT domain, adkim, aspf, p, sp, pct, rua, updated"
	  " FROM dmarc_policies ORDER BY domain",
	  "INSERT INTO dmarc_policies (domain, adkim, aspf, p, sp, pct, rua, updated)"
	  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)", "tttttiti" },
	{ "dmarc_sent", "SELECT day, policy_domain, report_id, rcpts, created"
	  " FROM dmarc_sent ORDER BY id",
	  "INSERT INTO dmarc_sent (day, policy_domain, report_id, rcpts, created)"
	  " VALUES (?1, ?2, ?3, ?4, ?5)", "ittti" },
};

#define STORE_COPY_TABLES (sizeof(store_copy_tables) / sizeof(store_copy_tables[0]))

/* Binds the columns of from's current row to the insert. The values
 * stay valid until from steps again. */
static void
store_copy_bind(struct store_q *from, struct store_q *to, const char *types)
{
	const void *p;
	size_t len;

	for (int i = 0; types[i] != '\0'; i++) {
		switch (types[i]) {
		case 'i':
			store_bind_i64(to, i + 1, store_col_i64(from, i));
			break;
		case 't':
			store_bind_text(to, i + 1, store_col_str(from, i));
			break;
		default:
			p = store_col_blob(from, i, &len);
			store_bind_blob(to, i + 1, p != NULL ? p : "", len);
			break;
		}
	}
}

static int
store_copy_table(struct store *from, struct store *to, const struct store_copy_table *t,
		 struct yj_err *err)
{
	struct store_q *in = store_stmt(from, t->select_sql, err), *out;
	long long rows = 0;
	int ret;

	if (in == NULL || (out = store_stmt(to, t->insert_sql, err)) == NULL)
		return -1;
	while ((ret = store_row(from, in, t->name, err)) == 1) {
		store_copy_bind(in, out, t->types);
		if (store_run(to, out, t->name, err) < 0) {
			store_reset(in);
			return -1;
		}
		rows++;
	}
	log_debug("store: copy: %lld rows of %s", rows, t->name);
	return ret < 0 ? -1 : 1;
}

static int
store_copy_meta(struct store *from, struct store *to, struct yj_err *err)
{
	static const char sql_in[] = "SELECT key, value FROM meta ORDER BY key";
	static const char sql_out[] = "UPDATE meta SET value = ?2 WHERE key = ?1";
	struct store_q *in = store_stmt(from, sql_in, err), *out;
	int ret;

	if (in == NULL || (out = store_stmt(to, sql_out, err)) == NULL)
		return -1;
	while ((ret = store_row(from, in, "meta", err)) == 1) {
		store_copy_bind(in, out, "ti");
		if (store_run(to, out, "meta", err) < 0) {
			store_reset(in);
			return -1;
		}
	}
	return ret < 0 ? -1 : 1;
}

/* ---- contents ---- */

/* Writes the bytes of fd to a new file at to's blob path for id, made
 * durable before the rows that name it commit. */
static int
store_copy_blob_file(struct store *to, const char *id, int fd, struct yj_err *err)
{
	char path[STORE_PATH_MAX], dir[STORE_PATH_MAX], buf[65536];
	ssize_t n;
	int out;

	if (store_blob_path(to, id, path, sizeof(path)) < 0)
		return yj_err_set(err, "copy: bad blob id %s", id);
	snprintf(dir, sizeof(dir), "%s/%.*s", to->blob_dir, STORE_HOUR_LEN, id);
	if (mkdir(dir, 0750) < 0 && errno != EEXIST)
		return yj_err_errno(err, "copy: mkdir %s", dir);
	if ((out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640)) < 0)
		return yj_err_errno(err, "copy: create %s", path);
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		if (util_write_all(out, buf, (size_t)n) < 0)
			break;
	}
	if (n != 0 || fsync(out) < 0) {
		close(out);
		return yj_err_errno(err, "copy: write %s", path);
	}
	close(out);
	return util_fsync_dir(dir, err);
}

/* Puts the bytes of fd into to's blob_data row for id. */
static int
store_copy_blob_row(struct store *to, const char *id, int fd, struct yj_err *err)
{
	static const char sql[] = "INSERT INTO blob_data (id, data) VALUES (?1, ?2)";
	struct store_q *stmt;
	struct stat sb;
	unsigned char *data;
	size_t got = 0;
	ssize_t n;
	int ret;

	if (fstat(fd, &sb) < 0)
		return yj_err_errno(err, "copy: blob %s", id);
	if ((data = malloc(sb.st_size > 0 ? (size_t)sb.st_size : 1)) == NULL)
		log_fatal("out of memory");
	while (got < (size_t)sb.st_size && (n = read(fd, data + got, (size_t)sb.st_size - got)) > 0)
		got += (size_t)n;
	if (got != (size_t)sb.st_size || (stmt = store_stmt(to, sql, err)) == NULL) {
		free(data);
		return got != (size_t)sb.st_size ? yj_err_set(err, "copy: blob %s: short read", id)
						 : -1;
	}
	store_bind_text(stmt, 1, id);
	store_bind_blob(stmt, 2, data, got);
	ret = store_run(to, stmt, "copy blob", err);
	free(data);
	return ret;
}

/* Every blob's contents, from wherever from keeps them to wherever to
 * does. Two file stores of one data dir share the files already. */
static int
store_copy_contents(struct store *from, struct store *to, struct yj_err *err)
{
	static const char sql[] = "SELECT id FROM blobs ORDER BY id";
	struct store_q *in;
	char id[STORE_BLOB_ID_MAX];
	int ret, fd;

	if (!from->drv->blobs_in_db && !to->drv->blobs_in_db &&
	    strcmp(from->blob_dir, to->blob_dir) == 0)
		return 1;
	if ((in = store_stmt(from, sql, err)) == NULL)
		return -1;
	while ((ret = store_row(from, in, "blobs", err)) == 1) {
		store_col_text(in, 0, id, sizeof(id));
		if (store_blob_open(from, id, &fd, err) < 0) {
			ret = -1;
			break;
		}
		ret = to->drv->blobs_in_db ? store_copy_blob_row(to, id, fd, err) :
					     store_copy_blob_file(to, id, fd, err);
		close(fd);
		if (ret < 0)
			break;
	}
	if (ret == 1)
		store_reset(in);
	return ret < 0 ? -1 : 1;
}

/* ---- the whole ---- */

/* The target must be new: its schema made, nothing in it. */
static int
store_copy_target_empty(struct store *to, struct yj_err *err)
{
	static const char sql[] = "SELECT (SELECT count(*) FROM domains) + (SELECT count(*) FROM blobs)";
	struct store_q *stmt = store_stmt(to, sql, err);
	int64_t n = 0;
	int ret;

	if (stmt == NULL)
		return -1;
	ret = store_row(to, stmt, "copy target", err);
	if (ret == 1) {
		n = store_col_i64(stmt, 0);
		store_reset(stmt);
	}
	if (ret == 1 && n > 0)
		return yj_err_set(err, "copy: the target store is not empty");
	return ret < 0 ? -1 : 1;
}

static int
store_copy_locked(struct store *from, struct store *to, struct yj_err *err)
{
	if (store_copy_target_empty(to, err) < 0 || store_copy_meta(from, to, err) < 0)
		return -1;
	for (size_t i = 0; i < STORE_COPY_TABLES; i++) {
		if (store_copy_table(from, to, &store_copy_tables[i], err) < 0)
			return -1;
		/* Contents go in before the rows that name them commit. */
		if (strcmp(store_copy_tables[i].name, "blobs") == 0 &&
		    store_copy_contents(from, to, err) < 0)
			return -1;
	}
	return to->drv->after_copy != NULL ? to->drv->after_copy(to->db, err) : 1;
}

int
store_copy(struct store *from, struct store *to, struct yj_err *err)
{
	if (store_begin(to, err) < 0)
		return -1;
	if (store_copy_locked(from, to, err) < 0) {
		store_rollback(to);
		return -1;
	}
	return store_commit(to, err);
}
