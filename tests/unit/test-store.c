/* test-store.c - the store: accounts, delivery, blobs, expunge,
 * concurrent group commit, garbage collection, the change model.
 *
 * On SQLite by default; with YOUJU_PG_DSN set (scripts/with-postgresql.sh
 * does) every test runs on PostgreSQL instead, each in a new database. */
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "store/store-private.h"

#ifndef CONC_THREADS
#define CONC_THREADS 8
#endif
#ifndef CONC_MESSAGES
#define CONC_MESSAGES 200
#endif

/* ---- helpers ---- */

static const char *pg_base;		/* YOUJU_PG_DSN; NULL: SQLite */
static char pg_dsn[1024];		/* the current test's database */

/* A new PostgreSQL database for the store of dir. */
static void
pg_fresh(const char *dir)
{
	static unsigned n;
	char name[64], sql[128];
	struct yj_err err;
	PGconn *c = PQconnectdb(pg_base);
	PGresult *res;

	snprintf(name, sizeof(name), "yj_test_%ld_%u", (long)getpid(), n++);
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
	res = PQexec(c, sql);
	test_assert(PQresultStatus(res) == PGRES_COMMAND_OK);
	PQclear(res);
	PQfinish(c);
	snprintf(pg_dsn, sizeof(pg_dsn), "%s dbname=%s", pg_base, name);
	test_assert(store_set_driver(dir, "postgresql", pg_dsn, &err) == 1);
}

/* The first value of a query on the current PostgreSQL database. */
static long long
pg_count(const char *sql)
{
	PGconn *c = PQconnectdb(pg_dsn);
	PGresult *res = PQexec(c, sql);
	long long n = -1;

	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0) {
		const char *v = PQgetvalue(res, 0, 0);

		n = v[0] == 't' ? 1 : v[0] == 'f' ? 0 : strtoll(v, NULL, 10);
	} else {
		printf("  pg: %s", PQerrorMessage(c));
	}
	PQclear(res);
	PQfinish(c);
	return n;
}

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void
rm_tree(const char *dir)
{
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static size_t files_counted;

static int
count_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	if (flag == FTW_F)
		files_counted++;
	return 0;
}

/* Blobs kept: regular files under dir/blobs, and on PostgreSQL the
 * contents in the database too. */
static size_t
count_blob_files(const char *dir)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/blobs", dir);
	files_counted = 0;
	nftw(path, count_entry, 16, FTW_PHYS);
	if (pg_base != NULL)
		files_counted += (size_t)pg_count("SELECT count(*) FROM blob_data");
	return files_counted;
}

static bool
blob_file_exists(const char *dir, const char *blob_id)
{
	char path[512], sql[256];

	snprintf(path, sizeof(path), "%s/blobs/%s", dir, blob_id);
	if (access(path, F_OK) == 0)
		return true;
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM blob_data WHERE id = '%s'", blob_id);
	return pg_base != NULL && pg_count(sql) > 0;
}

/* A new data dir with a store in it, opened. */
static struct store *
setup(char *dir, size_t dirlen)
{
	const char *tmp = getenv("TMPDIR");
	struct store *st = NULL;
	struct yj_err err;

	snprintf(dir, dirlen, "%s/test-store.XXXXXX", tmp != NULL ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL) {
		test_assert(!"mkdtemp");
		return NULL;
	}
	if (pg_base != NULL)
		pg_fresh(dir);
	test_assert(store_create(dir, &err) == 1);
	test_assert(store_open(dir, &st, &err) == 1);
	return st;
}

static void
teardown(struct store **st, const char *dir)
{
	struct yj_err err;

	if (*st != NULL) {
		if (store_integrity_check(*st, &err) != 1) {
			printf("  integrity: %s\n", err.msg);
			test_assert(!"integrity check");
		}
	}
	store_close(st);
	store_shutdown();
	rm_tree(dir);
}

/* A domain and accounts in it; returns the id of the first. */
static int64_t
add_accounts(struct store *st, const char *domain, const char *const *addrs, size_t n)
{
	struct store_account acct;
	struct yj_err err;

	test_assert(store_domain_add(st, domain, &err) == 1);
	for (size_t i = 0; i < n; i++)
		test_assert(store_account_add(st, addrs[i], "{PLAIN}x", &err) == 1);
	test_assert(store_account_lookup(st, addrs[0], &acct) == 1);
	return acct.id;
}

static int64_t
account_id(struct store *st, const char *address)
{
	struct store_account acct;

	test_assert(store_account_lookup(st, address, &acct) == 1);
	return acct.id;
}

static int64_t
inbox_id(struct store *st, int64_t account)
{
	struct store_mailbox mb;

	test_assert(store_mailbox_get(st, account, "INBOX", &mb) == 1);
	return mb.id;
}

static int64_t
mailbox_id(struct store *st, int64_t account, const char *name)
{
	struct store_mailbox mb;

	test_assert(store_mailbox_get(st, account, name, &mb) == 1);
	return mb.id;
}

/* Writes body into a new blob. */
static int
make_blob(struct store *st, struct store_blob *b, const char *body)
{
	struct yj_err err;

	if (store_blob_create(st, b, &err) != 1)
		return -1;
	return store_blob_write(b, body, strlen(body), &err);
}

/* Delivers body to the INBOXes of accounts[0..n); 1 or -1. */
static int
deliver(struct store *st, const int64_t *accounts, size_t n, const char *body,
	struct store_blob *b, struct yj_err *err)
{
	struct store_rcpt rcpts[8];
	struct store_delivery d = { .blob = b, .internal_date = 1700000000,
				    .rcpts = rcpts, .n_rcpts = n, .sender = "" };

	for (size_t i = 0; i < n; i++)
		rcpts[i] = (struct store_rcpt){ .account_id = accounts[i], .mailbox = NULL,
						.prefix = "Delivered-To: x@example.org\r\n" };
	if (make_blob(st, b, body) < 0)
		return -1;
	return store_deliver(st, &d, err);
}

static long long
sql_count(const char *dir, const char *sql)
{
	char path[512];
	sqlite3 *db;
	sqlite3_stmt *stmt;
	long long n = -1;

	if (pg_base != NULL)
		return pg_count(sql);
	snprintf(path, sizeof(path), "%s/youju.db", dir);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) == SQLITE_OK) {
		if (sqlite3_step(stmt) == SQLITE_ROW)
			n = sqlite3_column_int64(stmt, 0);
		sqlite3_finalize(stmt);
	}
	sqlite3_close(db);
	return n;
}

/* Runs a statement on the store's database from outside the store:
 * 1, or -1. */
static int
sql_exec(const char *dir, const char *sql)
{
	char path[512];
	sqlite3 *db;
	int ret = -1;

	if (pg_base != NULL) {
		PGconn *c = PQconnectdb(pg_dsn);
		PGresult *res = PQexec(c, sql);

		if (PQresultStatus(res) == PGRES_COMMAND_OK)
			ret = 1;
		PQclear(res);
		PQfinish(c);
		return ret;
	}
	snprintf(path, sizeof(path), "%s/youju.db", dir);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
	    sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK)
		ret = 1;
	sqlite3_close(db);
	return ret;
}

/* ---- create, open, migrate ---- */

static void
test_store_create_open(void)
{
	char dir[256], path[512], sql[64];
	struct store *st, *st2 = NULL;
	struct yj_err err;
	long long version;
	sqlite3 *db;

	test_begin("store create/open/migrate");
	st = setup(dir, sizeof(dir));
	/* Creating again keeps what is there. */
	test_assert(store_domain_add(st, "example.org", &err) == 1);
	test_assert(store_create(dir, &err) == 1);
	test_assert(store_open(dir, &st2, &err) == 1);
	test_assert(store_domain_exists(st2, "example.org") == 1);
	store_close(&st2);
	test_assert(st2 == NULL);
	test_assert(store_integrity_check(st, &err) == 1);
	if (pg_base != NULL) {
		teardown(&st, dir);
		test_end();
		return;
	}
	test_assert(sql_count(dir, "PRAGMA user_version") >= 1);

	/* A database from a newer youju is refused. */
	version = sql_count(dir, "PRAGMA user_version");
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %lld", version);
	snprintf(path, sizeof(path), "%s/youju.db", dir);
	test_assert(sqlite3_open(path, &db) == SQLITE_OK);
	test_assert(sqlite3_exec(db, "PRAGMA user_version = 999", NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(db);
	test_assert(store_open(dir, &st2, &err) == -1);
	test_assert(strstr(err.msg, "newer") != NULL);
	test_assert(st2 == NULL);
	test_assert(sqlite3_open(path, &db) == SQLITE_OK);
	test_assert(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(db);

	/* No store there at all. */
	test_assert(store_open("/nonexistent/youju-test", &st2, &err) == -1);
	teardown(&st, dir);
	test_end();
}

/* ---- domains ---- */

static void
collect_domain(void *ctx, const char *name)
{
	char *out = ctx;

	strcat(out, name);
	strcat(out, ";");
}

static void
test_store_domains(void)
{
	char dir[256], list[256] = "";
	struct store *st;
	struct yj_err err;

	test_begin("store domains");
	st = setup(dir, sizeof(dir));
	test_assert(store_domain_add(st, "Example.ORG", &err) == 1);
	test_assert(store_domain_add(st, "b.example", &err) == 1);
	test_assert(store_domain_add(st, "example.org", &err) == -1);
	test_assert_strcmp(err.msg, "domain example.org already exists");
	test_assert(store_domain_add(st, "", &err) == -1);
	test_assert(store_domain_add(st, "bad domain", &err) == -1);
	test_assert(store_domain_add(st, "a@b", &err) == -1);
	test_assert(store_domain_add(st, "ctl\x01.example", &err) == -1);
	test_assert(store_domain_exists(st, "EXAMPLE.org") == 1);
	test_assert(store_domain_exists(st, "other.org") == 0);
	test_assert(store_domain_exists(st, "not valid") == 0);
	test_assert(store_domain_list(st, collect_domain, list, &err) == 1);
	test_assert_strcmp(list, "b.example;example.org;");

	test_assert(store_account_add(st, "a@b.example", "", &err) == 1);
	test_assert(store_domain_del(st, "b.example", &err) == -1);
	test_assert(strstr(err.msg, "still has 1 accounts") != NULL);
	test_assert(store_account_del(st, "a@b.example", &err) == 1);
	test_assert(store_alias_add(st, "@b.example", "x@example.org", &err) == 1);
	test_assert(store_domain_del(st, "b.example", &err) == -1);
	test_assert(store_alias_del(st, "@b.example", NULL, &err) == 1);
	test_assert(store_domain_del(st, "B.example", &err) == 1);
	test_assert(store_domain_del(st, "b.example", &err) == 0);
	test_assert_strcmp(err.msg, "domain b.example does not exist");
	test_assert(store_domain_exists(st, "b.example") == 0);
	teardown(&st, dir);
	test_end();
}

/* ---- accounts and mailboxes ---- */

static void
count_account(void *ctx, const struct store_account *acct)
{
	(*(int *)ctx)++;
}

static void
test_store_accounts(void)
{
	static const char *const boxes[][2] = {
		{ "INBOX", "" }, { "Drafts", "\\Drafts" }, { "Sent", "\\Sent" },
		{ "Junk", "\\Junk" }, { "Trash", "\\Trash" }, { "Archive", "\\Archive" },
	};
	char dir[256];
	struct store *st;
	struct store_account acct;
	struct store_mailbox mb;
	struct yj_err err;
	uint32_t validity[6];
	int n = 0;

	test_begin("store accounts and mailboxes");
	st = setup(dir, sizeof(dir));
	test_assert(store_account_add(st, "alice@example.org", "h", &err) == -1);
	test_assert_strcmp(err.msg, "domain example.org does not exist");
	test_assert(store_domain_add(st, "example.org", &err) == 1);
	test_assert(store_domain_add(st, "other.org", &err) == 1);
	test_assert(store_account_add(st, "Alice@Example.org", "hash1", &err) == 1);
	test_assert(store_account_add(st, "alice@example.org", "hash2", &err) == -1);
	test_assert_strcmp(err.msg, "account alice@example.org already exists");
	test_assert(store_account_add(st, "noat", "h", &err) == -1);
	test_assert(store_account_add(st, "@example.org", "h", &err) == -1);
	test_assert(store_account_add(st, "a b@example.org", "h", &err) == -1);
	test_assert(store_account_add(st, "bob@other.org", "h", &err) == 1);

	test_assert(store_account_lookup(st, "ALICE@example.ORG", &acct) == 1);
	test_assert_strcmp(acct.address, "alice@example.org");
	test_assert_strcmp(acct.password_hash, "hash1");
	test_assert(store_account_lookup(st, "carol@example.org", &acct) == 0);
	test_assert(store_account_lookup(st, "garbage", &acct) == 0);
	test_assert(store_account_set_password(st, "alice@example.org", "hash3", &err) == 1);
	test_assert(store_account_lookup(st, "alice@example.org", &acct) == 1);
	test_assert_strcmp(acct.password_hash, "hash3");
	test_assert(store_account_set_password(st, "carol@example.org", "x", &err) == 0);

	test_assert(store_account_list(st, NULL, count_account, &n, &err) == 1);
	test_assert(n == 2);
	n = 0;
	test_assert(store_account_list(st, "other.org", count_account, &n, &err) == 1);
	test_assert(n == 1);
	test_assert(store_account_list(st, "nowhere.org", count_account, &n, &err) == 0);

	/* Default mailboxes, each with its own UIDVALIDITY. */
	for (size_t i = 0; i < 6; i++) {
		test_assert(store_mailbox_get(st, acct.id, boxes[i][0], &mb) == 1);
		test_assert_strcmp(mb.name, boxes[i][0]);
		test_assert_strcmp(mb.special_use, boxes[i][1]);
		test_assert(mb.uidnext == 1 && mb.messages == 0 && mb.highestmodseq >= 1);
		validity[i] = mb.uidvalidity;
		for (size_t k = 0; k < i; k++)
			test_assert(validity[k] != validity[i]);
	}
	test_assert(store_mailbox_get(st, acct.id, "inbox", &mb) == 1);
	test_assert_strcmp(mb.name, "INBOX");
	test_assert(store_mailbox_get(st, acct.id, "sent", &mb) == 0);
	test_assert(store_mailbox_get(st, acct.id, "Nope", &mb) == 0);

	/* A recreated account gets new UIDVALIDITYs. */
	test_assert(store_account_del(st, "alice@example.org", &err) == 1);
	test_assert(store_account_del(st, "alice@example.org", &err) == 0);
	test_assert(store_account_add(st, "alice@example.org", "h", &err) == 1);
	test_assert(store_account_lookup(st, "alice@example.org", &acct) == 1);
	test_assert(store_mailbox_get(st, acct.id, "INBOX", &mb) == 1);
	for (size_t i = 0; i < 6; i++)
		test_assert(mb.uidvalidity > validity[i]);
	teardown(&st, dir);
	test_end();
}

/* ---- aliases ---- */

static void
collect_alias(void *ctx, const char *address, const char *target)
{
	char *out = ctx;

	strcat(out, address);
	strcat(out, ">");
	strcat(out, target);
	strcat(out, ";");
}

static void
test_store_aliases(void)
{
	char dir[256], out[512] = "";
	struct store *st;
	struct yj_err err;

	test_begin("store aliases");
	st = setup(dir, sizeof(dir));
	test_assert(store_alias_add(st, "info@example.org", "a@example.org", &err) == -1);
	test_assert_strcmp(err.msg, "domain example.org does not exist");
	test_assert(store_domain_add(st, "example.org", &err) == 1);
	test_assert(store_alias_add(st, "Info@Example.org", "a@example.org", &err) == 1);
	test_assert(store_alias_add(st, "info@example.org", "Bob@Remote.NET", &err) == 1);
	test_assert(store_alias_add(st, "info@example.org", "a@EXAMPLE.org", &err) == -1);
	test_assert_strcmp(err.msg, "alias info@example.org -> a@example.org already exists");
	test_assert(store_alias_add(st, "@example.org", "catch@example.org", &err) == 1);
	test_assert(store_alias_add(st, "x@example.org", "@example.org", &err) == -1);
	test_assert(store_alias_add(st, "x@example.org", "", &err) == -1);

	test_assert(store_alias_lookup(st, "INFO@example.org", collect_alias, out) == 1);
	/* The remote target keeps its local part's case. */
	test_assert_strcmp(out, "info@example.org>a@example.org;info@example.org>Bob@remote.net;");
	out[0] = '\0';
	test_assert(store_alias_lookup(st, "nobody@example.org", collect_alias, out) == 0);
	test_assert(store_alias_lookup(st, "@example.org", collect_alias, out) == 1);
	test_assert_strcmp(out, "@example.org>catch@example.org;");
	out[0] = '\0';
	test_assert(store_alias_list(st, collect_alias, out, &err) == 1);
	test_assert_strcmp(out, "@example.org>catch@example.org;info@example.org>a@example.org;"
			   "info@example.org>Bob@remote.net;");

	test_assert(store_alias_del(st, "info@example.org", "a@example.org", &err) == 1);
	test_assert(store_alias_del(st, "info@example.org", "a@example.org", &err) == 0);
	test_assert(store_alias_del(st, "info@example.org", NULL, &err) == 1);
	test_assert(store_alias_del(st, "info@example.org", NULL, &err) == 0);
	test_assert_strcmp(err.msg, "no alias info@example.org");
	teardown(&st, dir);
	test_end();
}

static void
collect_pattern(void *ctx, const char *pattern)
{
	strcat(ctx, pattern);
	strcat(ctx, ";");
}

static void
test_store_senders(void)
{
	char dir[256], out[512] = "";
	struct store *st;
	struct store_account a, b;
	struct yj_err err;

	test_begin("store sender rules and alias owners");
	st = setup(dir, sizeof(dir));
	test_assert(store_domain_add(st, "example.org", &err) == 1);
	test_assert(store_account_add(st, "a@example.org", "", &err) == 1);
	test_assert(store_account_add(st, "b@example.org", "", &err) == 1);
	test_assert(store_account_lookup(st, "a@example.org", &a) == 1);
	test_assert(store_account_lookup(st, "b@example.org", &b) == 1);
	test_assert(store_sender_add(st, "nobody@example.org", "@x.example", &err) == 0);
	test_assert_strcmp(err.msg, "account nobody@example.org does not exist");
	test_assert(store_sender_add(st, "a@example.org", "News@Other.Example", &err) == 1);
	test_assert(store_sender_add(st, "a@example.org", "@Partner.Example", &err) == 1);
	test_assert(store_sender_add(st, "a@example.org", "@partner.example", &err) == -1);
	test_assert(store_sender_allowed(st, a.id, "news@other.example", &err) == 1);
	test_assert(store_sender_allowed(st, a.id, "NEWS@other.EXAMPLE", &err) == 1);
	test_assert(store_sender_allowed(st, a.id, "x@partner.example", &err) == 1);
	test_assert(store_sender_allowed(st, a.id, "x@sub.partner.example", &err) == 0);
	test_assert(store_sender_allowed(st, a.id, "old@other.example", &err) == 0);
	test_assert(store_sender_allowed(st, b.id, "x@partner.example", &err) == 0);
	test_assert(store_sender_allowed(st, a.id, "not an address", &err) == 0);

	test_assert(store_alias_owner_add(st, "team@example.org", "a@example.org", &err) == 0);
	test_assert_strcmp(err.msg, "no alias team@example.org");
	test_assert(store_alias_add(st, "team@example.org", "a@example.org", &err) == 1);
	test_assert(store_alias_add(st, "team@example.org", "b@example.org", &err) == 1);
	test_assert(store_alias_owner_add(st, "Team@example.org", "b@example.org", &err) == 1);
	test_assert(store_alias_owner_add(st, "team@example.org", "b@example.org", &err) == -1);
	test_assert(store_sender_allowed(st, b.id, "team@example.org", &err) == 1);
	test_assert(store_sender_allowed(st, a.id, "team@example.org", &err) == 0);
	test_assert(store_sender_list(st, "b@example.org", collect_pattern, out, &err) == 1);
	test_assert_strcmp(out, "team@example.org;");
	out[0] = '\0';
	test_assert(store_sender_list(st, "a@example.org", collect_pattern, out, &err) == 1);
	test_assert_strcmp(out, "@partner.example;news@other.example;");
	/* one target less: still an alias, still owned; the last: gone */
	test_assert(store_alias_del(st, "team@example.org", "a@example.org", &err) == 1);
	test_assert(store_sender_allowed(st, b.id, "team@example.org", &err) == 1);
	test_assert(store_alias_del(st, "team@example.org", NULL, &err) == 1);
	test_assert(store_sender_allowed(st, b.id, "team@example.org", &err) == 0);
	test_assert(store_alias_add(st, "team@example.org", "a@example.org", &err) == 1);
	test_assert(store_sender_allowed(st, b.id, "team@example.org", &err) == 0);
	test_assert(store_alias_owner_remove(st, "team@example.org", "b@example.org", &err) == 0);
	test_assert(store_sender_remove(st, "a@example.org", "@partner.example", &err) == 1);
	test_assert(store_sender_remove(st, "a@example.org", "@partner.example", &err) == 0);
	test_assert(store_sender_allowed(st, a.id, "x@partner.example", &err) == 0);
	/* rules go with the account */
	test_assert(store_account_del(st, "a@example.org", &err) == 1);
	test_assert(store_account_add(st, "a@example.org", "", &err) == 1);
	out[0] = '\0';
	test_assert(store_sender_list(st, "a@example.org", collect_pattern, out, &err) == 1);
	test_assert_strcmp(out, "");
	teardown(&st, dir);
	test_end();
}

/* ---- delivery, reading, expunge ---- */

static void
collect_uid(void *ctx, const struct store_msg *msg)
{
	uint32_t *uids = ctx;

	uids[++uids[0]] = msg->uid;
}

static void
read_message(struct store *st, const struct store_msg *msg, char *out, size_t outlen)
{
	struct yj_err err;
	ssize_t n;
	int fd;

	test_assert(store_msg_open_blob(st, msg, &fd, &err) == 1);
	memcpy(out, msg->prefix, msg->prefix_len);
	n = read(fd, out + msg->prefix_len, outlen - msg->prefix_len - 1);
	test_assert(n >= 0);
	out[msg->prefix_len + (n > 0 ? (size_t)n : 0)] = '\0';
	close(fd);
}

static void
test_store_deliver_shared_blob(void)
{
	static const char *const addrs[] = { "a@example.org", "b@example.org" };
	static const char body[] = "Subject: hi\r\n\r\nhello\r\n";
	char dir[256], text[256], blob_id[STORE_BLOB_ID_MAX];
	struct store_blob *b = calloc(1, sizeof(*b));
	struct store *st;
	struct store_msg msg;
	struct store_mailbox mb;
	struct yj_err err;
	int64_t accts[2], boxes[2];
	uint32_t uids[8] = { 0 }, one;
	uint64_t modseq;

	test_begin("store delivery shares one blob");
	st = setup(dir, sizeof(dir));
	add_accounts(st, "example.org", addrs, 2);
	accts[0] = account_id(st, addrs[0]);
	accts[1] = account_id(st, addrs[1]);
	boxes[0] = inbox_id(st, accts[0]);
	boxes[1] = inbox_id(st, accts[1]);

	test_assert(deliver(st, accts, 2, body, b, &err) == 1);
	test_assert(b->path == NULL && b->fd < 0);
	snprintf(blob_id, sizeof(blob_id), "%s", b->id);
	store_blob_abort(b);		/* a no-op after a delivery */
	test_assert(count_blob_files(dir) == 1);
	test_assert(blob_file_exists(dir, blob_id));
	test_assert(deliver(st, accts, 1, body, b, &err) == 1);
	test_assert(count_blob_files(dir) == 2);

	test_assert(store_msg_list(st, boxes[0], collect_uid, uids, &err) == 1);
	test_assert(uids[0] == 2 && uids[1] == 1 && uids[2] == 2);
	test_assert(store_mailbox_get(st, accts[0], "INBOX", &mb) == 1);
	test_assert(mb.uidnext == 3 && mb.messages == 2);

	test_assert(store_msg_get(st, boxes[1], 1, &msg) == 1);
	test_assert_strcmp(msg.blob_id, blob_id);
	test_assert(msg.size == strlen(body) + msg.prefix_len);
	test_assert(msg.internal_date == 1700000000 && msg.flags == 0);
	read_message(st, &msg, text, sizeof(text));
	test_assert_strcmp(text, "Delivered-To: x@example.org\r\nSubject: hi\r\n\r\nhello\r\n");
	test_assert(store_msg_get(st, boxes[1], 2, &msg) == 0);

	/* The file goes with its last reference, not before. */
	modseq = mb.highestmodseq;
	one = 1;
	test_assert(store_msg_expunge(st, boxes[0], &one, 1, &err) == 1);
	test_assert(store_mailbox_get(st, accts[0], "INBOX", &mb) == 1);
	test_assert(mb.highestmodseq > modseq && mb.messages == 1);
	test_assert(blob_file_exists(dir, blob_id));
	test_assert(store_msg_expunge(st, boxes[0], &one, 1, &err) == 1);	/* gone: ignored */
	test_assert(store_msg_expunge(st, boxes[1], &one, 1, &err) == 1);
	test_assert(!blob_file_exists(dir, blob_id));
	test_assert(count_blob_files(dir) == 1);
	test_assert(sql_count(dir, "SELECT count(*) FROM blobs") == 1);
	test_assert(store_msg_expunge(st, 999999, &one, 1, &err) == 0);
	teardown(&st, dir);
	free(b);
	test_end();
}

static void
test_store_deliver_relay_and_errors(void)
{
	static const char *const addrs[] = { "a@example.org" };
	static const char *const relay[] = { "Someone@Remote.EXAMPLE", "x@y.example" };
	char dir[256];
	struct store_blob *b = calloc(1, sizeof(*b));
	struct store *st;
	struct yj_err err;
	struct store_rcpt rcpt = { 0 };
	struct store_delivery d = { .blob = b, .sender = "Me@Example.org",
				    .relay_rcpts = relay, .n_relay = 2 };
	int64_t acct;
	char big[sizeof(((struct store_msg *)0)->prefix) + 1];	/* one byte over the limit */

	test_begin("store relay queue and failed deliveries");
	st = setup(dir, sizeof(dir));
	acct = add_accounts(st, "example.org", addrs, 1);

	/* Relay only: queue rows hold the blob. */
	test_assert(make_blob(st, b, "x\r\n") == 1);
	test_assert(store_deliver(st, &d, &err) == 1);
	test_assert(sql_count(dir, "SELECT count(*) FROM queue WHERE status = 'queued'") == 2);
	test_assert(sql_count(dir, "SELECT count(*) FROM queue WHERE sender = 'Me@example.org'"
			      " AND recipient = 'Someone@remote.example'") == 1);
	test_assert(sql_count(dir, "SELECT refcount FROM blobs") == 2);
	test_assert(count_blob_files(dir) == 1);

	/* A missing mailbox fails the delivery and removes its blob. */
	rcpt = (struct store_rcpt){ .account_id = acct, .mailbox = "NoSuchBox" };
	d = (struct store_delivery){ .blob = b, .rcpts = &rcpt, .n_rcpts = 1, .sender = "" };
	test_assert(make_blob(st, b, "y\r\n") == 1);
	test_assert(store_deliver(st, &d, &err) == -1);
	test_assert(strstr(err.msg, "mailbox NoSuchBox") != NULL);
	test_assert(b->path == NULL);
	test_assert(count_blob_files(dir) == 1);

	/* Other mailboxes by name, INBOX in any case. */
	rcpt.mailbox = "Junk";
	test_assert(make_blob(st, b, "z\r\n") == 1);
	test_assert(store_deliver(st, &d, &err) == 1);
	rcpt.mailbox = "inbox";
	test_assert(make_blob(st, b, "z\r\n") == 1);
	test_assert(store_deliver(st, &d, &err) == 1);
	test_assert(sql_count(dir, "SELECT count(*) FROM messages") == 2);

	/* Malformed requests. */
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	rcpt.prefix = big;
	test_assert(make_blob(st, b, "z\r\n") == 1);
	test_assert(store_deliver(st, &d, &err) == -1);
	rcpt.prefix = NULL;
	d.n_rcpts = 0;
	test_assert(make_blob(st, b, "z\r\n") == 1);
	test_assert(store_deliver(st, &d, &err) == -1);
	test_assert_strcmp(err.msg, "delivery has no recipients");
	test_assert(store_deliver(st, &d, &err) == -1);		/* blob already gone */
	test_assert(count_blob_files(dir) == 3);

	/* abort is idempotent, and harmless on a zeroed blob. */
	test_assert(make_blob(st, b, "q") == 1);
	store_blob_abort(b);
	store_blob_abort(b);
	memset(b, 0, sizeof(*b));
	store_blob_abort(b);
	test_assert(store_blob_write(b, "x", 1, &err) == -1);
	test_assert(count_blob_files(dir) == 3);
	teardown(&st, dir);
	free(b);
	test_end();
}

static void
test_store_account_del_blobs(void)
{
	static const char *const addrs[] = { "a@example.org", "b@example.org" };
	char dir[256], blob_id[STORE_BLOB_ID_MAX];
	struct store_blob *b = calloc(1, sizeof(*b));
	struct store *st;
	struct yj_err err;
	int64_t accts[2];

	test_begin("store account delete releases blobs");
	st = setup(dir, sizeof(dir));
	add_accounts(st, "example.org", addrs, 2);
	accts[0] = account_id(st, addrs[0]);
	accts[1] = account_id(st, addrs[1]);
	test_assert(deliver(st, accts, 2, "shared\r\n", b, &err) == 1);
	snprintf(blob_id, sizeof(blob_id), "%s", b->id);
	test_assert(store_account_del(st, "a@example.org", &err) == 1);
	test_assert(blob_file_exists(dir, blob_id));
	test_assert(sql_count(dir, "SELECT refcount FROM blobs") == 1);
	test_assert(store_account_del(st, "b@example.org", &err) == 1);
	test_assert(!blob_file_exists(dir, blob_id));
	test_assert(sql_count(dir, "SELECT count(*) FROM blobs") == 0);
	test_assert(sql_count(dir, "SELECT count(*) FROM mailboxes") == 0);
	teardown(&st, dir);
	free(b);
	test_end();
}

static void
test_store_add_flags(void)
{
	static const char *const addrs[] = { "a@example.org" };
	char dir[256];
	struct store_blob *b = calloc(1, sizeof(*b));
	struct store_mailbox before, after;
	struct store_msg msg;
	struct store *st;
	struct yj_err err;
	int64_t acct, inbox;
	uint32_t uids[] = { 1, 2, 99 };

	test_begin("store flags: add, MODSEQ, no-op");
	st = setup(dir, sizeof(dir));
	acct = add_accounts(st, "example.org", addrs, 1);
	inbox = inbox_id(st, acct);
	test_assert(deliver(st, &acct, 1, "one\r\n", b, &err) == 1);
	test_assert(deliver(st, &acct, 1, "two\r\n", b, &err) == 1);
	test_assert(store_mailbox_get(st, acct, "INBOX", &before) == 1);
	/* UID 99 does not exist: it is left alone */
	test_assert(store_msg_add_flags(st, inbox, uids, 1, STORE_FLAG_SEEN, &err) == 1);
	test_assert(store_msg_get(st, inbox, 1, &msg) == 1 && msg.flags == STORE_FLAG_SEEN);
	test_assert(msg.modseq == before.highestmodseq + 1);
	test_assert(store_msg_get(st, inbox, 2, &msg) == 1 && msg.flags == 0);
	test_assert(store_mailbox_get(st, acct, "INBOX", &after) == 1);
	test_assert(after.highestmodseq == before.highestmodseq + 1);
	/* setting what is set already changes nothing, not even MODSEQ */
	test_assert(store_msg_add_flags(st, inbox, uids, 1, STORE_FLAG_SEEN, &err) == 1);
	test_assert(store_mailbox_get(st, acct, "INBOX", &before) == 1);
	test_assert(before.highestmodseq == after.highestmodseq);
	test_assert(store_msg_add_flags(st, inbox, uids, 3, STORE_FLAG_FLAGGED, &err) == 1);
	test_assert(store_msg_get(st, inbox, 1, &msg) == 1 &&
		    msg.flags == (STORE_FLAG_SEEN | STORE_FLAG_FLAGGED));
	test_assert(store_msg_add_flags(st, 424242, uids, 1, STORE_FLAG_SEEN, &err) == 0);
	teardown(&st, dir);
	free(b);
	test_end();
}

/* ---- concurrent group commit ---- */

struct conc_arg {
	const char *dir;
	int64_t shared;			/* every thread delivers here */
	int64_t own;			/* and to its own account */
	int failures;
};

static void *
conc_thread(void *p)
{
	struct conc_arg *arg = p;
	struct store_blob *b = calloc(1, sizeof(*b));
	struct store *st = NULL;
	struct yj_err err;
	int64_t accts[2] = { arg->shared, arg->own };
	char body[128];

	if (b == NULL || store_open(arg->dir, &st, &err) != 1) {
		arg->failures = CONC_MESSAGES;
		free(b);
		return NULL;
	}
	for (int i = 0; i < CONC_MESSAGES; i++) {
		snprintf(body, sizeof(body), "Subject: %lld-%d\r\n\r\nbody\r\n",
			 (long long)arg->own, i);
		if (deliver(st, accts, 2, body, b, &err) != 1) {
			printf("  deliver: %s\n", err.msg);
			arg->failures++;
		}
	}
	store_close(&st);
	free(b);
	return NULL;
}

static double
now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
check_uids(struct store *st, int64_t mailbox, uint32_t want)
{
	uint32_t *uids = calloc(want + 2, sizeof(*uids));
	struct yj_err err;

	test_assert(store_msg_list(st, mailbox, collect_uid, uids, &err) == 1);
	test_assert(uids[0] == want);
	/* In UID order, strictly increasing, no gaps: each delivery once. */
	for (uint32_t i = 1; i <= uids[0] && i <= want; i++)
		test_assert(uids[i] == i);
	free(uids);
}

static void
test_store_concurrent(void)
{
	char dir[256], addr[64];
	struct conc_arg args[CONC_THREADS];
	pthread_t threads[CONC_THREADS];
	struct store *st;
	struct yj_err err;
	int64_t shared;
	double t0, t1;
	int failures = 0;

	test_begin("store concurrent deliveries");
	st = setup(dir, sizeof(dir));
	test_assert(store_domain_add(st, "example.org", &err) == 1);
	test_assert(store_account_add(st, "all@example.org", "", &err) == 1);
	shared = account_id(st, "all@example.org");
	for (int i = 0; i < CONC_THREADS; i++) {
		snprintf(addr, sizeof(addr), "user%d@example.org", i);
		test_assert(store_account_add(st, addr, "", &err) == 1);
		args[i] = (struct conc_arg){ .dir = dir, .shared = shared,
					     .own = account_id(st, addr) };
	}
	t0 = now_seconds();
	for (int i = 0; i < CONC_THREADS; i++)
		test_assert(pthread_create(&threads[i], NULL, conc_thread, &args[i]) == 0);
	for (int i = 0; i < CONC_THREADS; i++) {
		pthread_join(threads[i], NULL);
		failures += args[i].failures;
	}
	t1 = now_seconds();
	printf("  %d durable deliveries (2 recipients each) from %d threads: %.0f deliveries/s\n",
	       CONC_THREADS * CONC_MESSAGES, CONC_THREADS,
	       CONC_THREADS * CONC_MESSAGES / (t1 - t0));

	test_assert(failures == 0);
	check_uids(st, inbox_id(st, shared), CONC_THREADS * CONC_MESSAGES);
	for (int i = 0; i < CONC_THREADS; i++)
		check_uids(st, inbox_id(st, args[i].own), CONC_MESSAGES);
	test_assert(count_blob_files(dir) == CONC_THREADS * CONC_MESSAGES);
	test_assert(sql_count(dir, "SELECT count(*) FROM blobs WHERE refcount = 2") ==
		    CONC_THREADS * CONC_MESSAGES);
	teardown(&st, dir);
	test_end();
}

/* A batch where some deliveries fail: the others still commit. */
struct mixed_arg {
	const char *dir;
	int64_t account;
	bool bad;
	int ok, failed;
};

static void *
mixed_thread(void *p)
{
	struct mixed_arg *arg = p;
	struct store_blob *b = calloc(1, sizeof(*b));
	struct store *st = NULL;
	struct yj_err err;
	struct store_rcpt rcpt = { .account_id = arg->account,
				   .mailbox = arg->bad ? "Missing" : "INBOX" };
	struct store_delivery d = { .blob = b, .rcpts = &rcpt, .n_rcpts = 1, .sender = "" };

	if (b == NULL || store_open(arg->dir, &st, &err) != 1) {
		free(b);
		return NULL;
	}
	for (int i = 0; i < 50; i++) {
		if (make_blob(st, b, "m\r\n") != 1)
			continue;
		if (store_deliver(st, &d, &err) == 1)
			arg->ok++;
		else
			arg->failed++;
	}
	store_close(&st);
	free(b);
	return NULL;
}

static void
test_store_mixed_batch(void)
{
	static const char *const addrs[] = { "a@example.org" };
	char dir[256];
	struct mixed_arg args[4];
	pthread_t threads[4];
	struct store *st;
	int64_t acct;

	test_begin("store failed delivery does not fail its batch");
	st = setup(dir, sizeof(dir));
	acct = add_accounts(st, "example.org", addrs, 1);
	for (int i = 0; i < 4; i++) {
		args[i] = (struct mixed_arg){ .dir = dir, .account = acct, .bad = i % 2 == 1 };
		test_assert(pthread_create(&threads[i], NULL, mixed_thread, &args[i]) == 0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(threads[i], NULL);
	for (int i = 0; i < 4; i++) {
		test_assert(args[i].ok == (args[i].bad ? 0 : 50));
		test_assert(args[i].failed == (args[i].bad ? 50 : 0));
	}
	check_uids(st, inbox_id(st, acct), 100);
	test_assert(count_blob_files(dir) == 100);
	teardown(&st, dir);
	test_end();
}

/* ---- garbage collection ---- */

static void
test_store_gc(void)
{
	static const char *const addrs[] = { "a@example.org" };
	char dir[256], orphan[STORE_BLOB_ID_MAX], kept[STORE_BLOB_ID_MAX];
	struct store_blob *b = calloc(1, sizeof(*b));
	struct store *st;
	struct yj_err err;
	int64_t acct;

	test_begin("store gc removes orphan blobs");
	st = setup(dir, sizeof(dir));
	acct = add_accounts(st, "example.org", addrs, 1);
	test_assert(deliver(st, &acct, 1, "kept\r\n", b, &err) == 1);
	snprintf(kept, sizeof(kept), "%s", b->id);

	/* What a crash between writing a blob and committing leaves. */
	test_assert(make_blob(st, b, "orphan") == 1);
	snprintf(orphan, sizeof(orphan), "%s", b->id);
	close(b->fd);
	free(b->path);
	b->path = NULL;
	test_assert(count_blob_files(dir) == 2);

	test_assert(store_gc(st, 3600, &err) == 1);	/* too young */
	test_assert(blob_file_exists(dir, orphan));
	test_assert(store_gc(st, 0, &err) == 1);
	test_assert(!blob_file_exists(dir, orphan));
	test_assert(blob_file_exists(dir, kept));
	test_assert(count_blob_files(dir) == 1);
	teardown(&st, dir);
	free(b);
	test_end();
}


/* ---- the change model ---- */

static const struct store_uid_range all_range = { 1, UINT32_MAX };
static const struct store_uidset all_uids = { &all_range, 1 };

struct flag_seen {
	uint32_t changed[16], failed[16];
	size_t n_changed, n_failed;
};

static void
flag_changed(void *ctx, const struct store_flag_result *r)
{
	struct flag_seen *fs = ctx;

	if (fs->n_changed < 16)
		fs->changed[fs->n_changed++] = r->uid;
}

static void
flag_failed(void *ctx, uint32_t uid)
{
	struct flag_seen *fs = ctx;

	if (fs->n_failed < 16)
		fs->failed[fs->n_failed++] = uid;
}

static int
store_flags(struct store *st, int64_t box, uint32_t first, uint32_t last,
	    const struct store_flag_change *ch, struct flag_seen *fs, uint64_t *modseq)
{
	struct store_uid_range r = { first, last };
	struct store_uidset set = { &r, 1 };
	struct yj_err err;

	*fs = (struct flag_seen){ 0 };
	return store_msg_store_flags(st, box, &set, ch, flag_changed, flag_failed, fs, modseq,
				     &err);
}

static void
collect_keyword(void *ctx, unsigned bit, const char *name)
{
	char *out = ctx;

	sprintf(out + strlen(out), "%u=%s;", bit, name);
}

static void
test_store_flags_keywords(void)
{
	static const char *const addrs[] = { "a@example.org" };
	static const char *const fwd[] = { "$Forwarded" };
	static const char *const fwd_lower[] = { "$forwarded" };
	static const char *const bad[] = { "\\Recent" };
	char dir[256], list[256] = "", name[32];
	const char *one[1] = { name };
	struct store_blob *b = calloc(1, sizeof(*b));
	struct store_flag_change ch = { 0 };
	struct store_append_msg am = { .data = "n\r\n", .len = 3, .keywords = one,
				       .n_keywords = 1 };
	struct store_copy_result res;
	struct flag_seen fs;
	struct store_msg msg;
	struct store *st;
	struct yj_err err;
	uint64_t m1, m2, m3, m4;
	uint32_t uids[1], uidvalidity;
	int64_t acct, inbox, other;

	test_begin("store flags and keywords over UID sets, UNCHANGEDSINCE, the limit");
	st = setup(dir, sizeof(dir));
	acct = add_accounts(st, "example.org", addrs, 1);
	inbox = inbox_id(st, acct);
	for (int i = 0; i < 5; i++)
		test_assert(deliver(st, &acct, 1, "m\r\n", b, &err) == 1);

	ch = (struct store_flag_change){ .op = STORE_FLAGS_ADD, .flags = STORE_FLAG_SEEN,
					 .keywords = fwd, .n_keywords = 1 };
	test_assert(store_flags(st, inbox, 1, 3, &ch, &fs, &m1) == 1);
	test_assert(fs.n_changed == 3 && fs.n_failed == 0 && m1 == 7);
	test_assert(store_keyword_list(st, inbox, collect_keyword, list, &err) == 1);
	test_assert_strcmp(list, "0=$Forwarded;");
	test_assert(store_msg_get(st, inbox, 2, &msg) == 1);
	test_assert(msg.flags == STORE_FLAG_SEEN && msg.keywords == 1 && msg.modseq == m1);
	/* Again: no change, no MODSEQ used. */
	test_assert(store_flags(st, inbox, 1, 3, &ch, &fs, &m2) == 1);
	test_assert(fs.n_changed == 0 && m2 == 0);

	/* Names compare case-insensitively. */
	ch = (struct store_flag_change){ .op = STORE_FLAGS_REMOVE, .keywords = fwd_lower,
					 .n_keywords = 1 };
	test_assert(store_flags(st, inbox, 2, 2, &ch, &fs, &m2) == 1);
	test_assert(fs.n_changed == 1 && fs.changed[0] == 2 && m2 == m1 + 1);
	test_assert(store_msg_get(st, inbox, 2, &msg) == 1 && msg.keywords == 0);

	/* FLAGS: exactly these, over 1:* */
	ch = (struct store_flag_change){ .op = STORE_FLAGS_SET, .flags = STORE_FLAG_FLAGGED };
	test_assert(store_msg_store_flags(st, inbox, &all_uids, &ch, flag_changed, NULL, &fs,
					  &m3, &err) == 1);
	test_assert(m3 == m2 + 1);
	test_assert(store_msg_get(st, inbox, 1, &msg) == 1);
	test_assert(msg.flags == STORE_FLAG_FLAGGED && msg.keywords == 0);

	/* UNCHANGEDSINCE: UID 1 changed after m3, so it is left alone. */
	ch = (struct store_flag_change){ .op = STORE_FLAGS_ADD, .flags = STORE_FLAG_DRAFT };
	test_assert(store_flags(st, inbox, 1, 1, &ch, &fs, &m4) == 1 && m4 == m3 + 1);
	ch = (struct store_flag_change){ .op = STORE_FLAGS_ADD, .flags = STORE_FLAG_ANSWERED,
					 .unchangedsince_set = true, .unchangedsince = m3 };
	test_assert(store_flags(st, inbox, 1, 5, &ch, &fs, &m4) == 1);
	test_assert(fs.n_failed == 1 && fs.failed[0] == 1 && fs.n_changed == 4);
	test_assert(store_msg_get(st, inbox, 1, &msg) == 1 && !(msg.flags & STORE_FLAG_ANSWERED));
	test_assert(store_msg_get(st, inbox, 5, &msg) == 1 && msg.modseq == m4);

	/* Bad names, and the per-mailbox limit. */
	ch = (struct store_flag_change){ .op = STORE_FLAGS_ADD, .keywords = bad, .n_keywords = 1 };
	test_assert(store_flags(st, inbox, 1, 5, &ch, &fs, &m4) == -1);
	/* A name as long as IMAP takes (100 bytes, docs/imap.md), not longer. */
	{
		char longest[STORE_KEYWORD_MAX + 2];

		memset(longest, 'k', sizeof(longest) - 1);
		longest[sizeof(longest) - 1] = '\0';
		test_assert(!store_keyword_valid(longest));
		longest[STORE_KEYWORD_MAX] = '\0';
		test_assert(STORE_KEYWORD_MAX == 100 && store_keyword_valid(longest));
	}
	ch.keywords = one;
	for (int i = 1; i < STORE_KEYWORDS_MAX; i++) {
		snprintf(name, sizeof(name), "k%d", i);
		test_assert(store_flags(st, inbox, 1, 1, &ch, &fs, &m4) == 1);
	}
	snprintf(name, sizeof(name), "one-too-many");
	test_assert(store_msg_store_flags(st, inbox, &all_uids, &ch, NULL, NULL, NULL, &m4,
					  &err) == STORE_KEYWORDS_FULL);
	test_assert(strstr(err.msg, "keywords") != NULL);
	test_assert(store_msg_get(st, inbox, 1, &msg) == 1 && msg.keywords == (INT64_MAX & ~INT64_C(1)));
	test_assert(store_flags(st, 4242, 1, 1, &ch, &fs, &m4) == 0);
	/* APPEND and COPY that would make one more there: nothing written. */
	test_assert(store_mailbox_create(st, acct, "Other", &err) == 1);
	other = mailbox_id(st, acct, "Other");
	test_assert(store_msg_append(st, inbox, &am, 1, uids, &uidvalidity, &err) ==
		    STORE_KEYWORDS_FULL);
	test_assert(strstr(err.msg, "keywords") != NULL);
	test_assert(store_msg_append(st, other, &am, 1, uids, &uidvalidity, &err) == 1);
	test_assert(store_msg_copy(st, other, inbox, &all_uids, true, &res, &err) ==
		    STORE_KEYWORDS_FULL);
	test_assert(res.map == NULL && res.n == 0);
	test_assert(store_msg_get(st, other, uids[0], &msg) == 1);
	/* A keyword the mailbox has is no new one. */
	snprintf(name, sizeof(name), "K1");
	test_assert(store_msg_append(st, inbox, &am, 1, uids, &uidvalidity, &err) == 1);
	test_assert(uids[0] == 6);
	test_assert(store_msg_copy(st, other, inbox, &all_uids, false, &res, &err) ==
		    STORE_KEYWORDS_FULL);
	teardown(&st, dir);
	free(b);
	test_end();
}

static void
collect_uid_list(void *ctx, uint32_t uid)
{
	uint32_t *uids = ctx;

	uids[++uids[0]] = uid;
}

static void
test_store_expunge_vanished(void)
{
	static const char *const addrs[] = { "a@example.org" };
	static const struct store_uid_range two_four[] = { { 4, 4 }, { 2, 2 } };
	const struct store_uidset set24 = { two_four, 2 };
	char dir[256];
	struct store_blob *b = calloc(1, sizeof(*b));
	struct store_flag_change ch = { .op = STORE_FLAGS_ADD, .flags = STORE_FLAG_DELETED };
	struct store_mailbox mb;
	struct store *st;
	struct yj_err err;
	uint32_t uids[16] = { 0 };
	uint64_t before, m, m2;
	int64_t acct, inbox;

	test_begin("store expunge records, VANISHED, compaction, changed since");
	st = setup(dir, sizeof(dir));
	acct = add_accounts(st, "example.org", addrs, 1);
	inbox = inbox_id(st, acct);
	for (int i = 0; i < 5; i++)
		test_assert(deliver(st, &acct, 1, "m\r\n", b, &err) == 1);
	test_assert(store_mailbox_get(st, acct, "INBOX", &mb) == 1);
	before = mb.highestmodseq;
	test_assert(store_msg_store_flags(st, inbox, &set24, &ch, NULL, NULL, NULL, &m, &err) == 1);
	test_assert(store_msg_changed_since(st, inbox, before, collect_uid, uids, &err) == 1);
	test_assert(uids[0] == 2 && uids[1] == 2 && uids[2] == 4);

	/* Only the \Deleted ones go, with one MODSEQ. */
	uids[0] = 0;
	test_assert(store_msg_expunge_set(st, inbox, &all_uids, true, collect_uid_list, uids,
					  &m2, &err) == 1);
	test_assert(uids[0] == 2 && m2 == m + 1);
	test_assert(sql_count(dir, "SELECT count(*) FROM messages") == 3);
	uids[0] = 0;
	test_assert(store_vanished_since(st, inbox, before, collect_uid_list, uids, &err) == 1);
	test_assert(uids[0] == 2 && uids[1] == 2 && uids[2] == 4);
	uids[0] = 0;
	test_assert(store_vanished_since(st, inbox, m2, collect_uid_list, uids, &err) == 1);
	test_assert(uids[0] == 0);
	/* Nothing left to expunge: no MODSEQ used. */
	test_assert(store_msg_expunge_set(st, inbox, &all_uids, true, NULL, NULL, &m, &err) == 1);
	test_assert(m == 0);

	/* Compaction forgets the records and raises the floor. */
	test_assert(store_vanished_compact(st, (int64_t)time(NULL) - 3600, &err) == 1);
	test_assert(sql_count(dir, "SELECT count(*) FROM vanished") == 2);
	test_assert(store_vanished_compact(st, (int64_t)time(NULL) + 1, &err) == 1);
	test_assert(sql_count(dir, "SELECT count(*) FROM vanished") == 0);
	test_assert(store_mailbox_get(st, acct, "INBOX", &mb) == 1);
	test_assert(mb.vanished_floor == m2 && mb.highestmodseq == m2 && mb.messages == 3);
	teardown(&st, dir);
	free(b);
	test_end();
}

/* Notices seen by a subscriber, for the tests. */
static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;
static struct store_change seen[64];
static size_t seen_n;
static uint64_t seen_max;
static int64_t seen_mailbox;

static void
seen_change(void *arg, const struct store_change *c)
{
	pthread_mutex_lock(&seen_lock);
	if (seen_n < 64)
		seen[seen_n++] = *c;
	if (c->mailbox_id == seen_mailbox && c->modseq > seen_max)
		seen_max = c->modseq;
	pthread_mutex_unlock(&seen_lock);
}

static void
seen_reset(int64_t mailbox)
{
	pthread_mutex_lock(&seen_lock);
	seen_n = 0;
	seen_max = 0;
	seen_mailbox = mailbox;
	pthread_mutex_unlock(&seen_lock);
}

/* The kinds noticed for mailbox, 0 if none. */
static unsigned
seen_kinds(int64_t mailbox)
{
	unsigned kinds = 0;

	pthread_mutex_lock(&seen_lock);
	for (size_t i = 0; i < seen_n; i++) {
		if (seen[i].mailbox_id == mailbox)
			kinds |= seen[i].kind;
	}
	pthread_mutex_unlock(&seen_lock);
	return kinds;
}

/* The kinds noticed for mailboxes of account, masked. */
static unsigned
seen_kinds_account(int64_t account, unsigned mask)
{
	unsigned kinds = 0;

	pthread_mutex_lock(&seen_lock);
	for (size_t i = 0; i < seen_n; i++) {
		if (seen[i].account_id == account)
			kinds |= seen[i].kind & mask;
	}
	pthread_mutex_unlock(&seen_lock);
	return kinds;
}

static void
test_store_mailbox_ops(void)
{
	static const char *const addrs[] = { "a@example.org" };
	char dir[256];
	struct store_blob *b = calloc(1, sizeof(*b));
	struct store_rcpt rcpt;
	struct store_delivery d = { .blob = b, .rcpts = &rcpt, .n_rcpts = 1, .sender = "" };
	struct store_mailbox mb;
	struct store *st;
	struct yj_err err;
	int64_t acct, work;

	test_begin("store mailbox create, rename, delete, subscribe, and their notices");
	st = setup(dir, sizeof(dir));
	acct = add_accounts(st, "example.org", addrs, 1);
	test_assert(store_notify_subscribe(seen_change, NULL) == 1);
	seen_reset(0);
	test_assert(store_mailbox_create(st, acct, "Work", &err) == 1);
	test_assert(store_mailbox_create(st, acct, "Work", &err) == -1);
	test_assert(strstr(err.msg, "already exists") != NULL);
	test_assert(store_mailbox_get(st, acct, "Work", &mb) == 1 && mb.highestmodseq == 1);
	work = mb.id;
	test_assert(seen_kinds(work) == STORE_CHANGE_CREATE);

	rcpt = (struct store_rcpt){ .account_id = acct, .mailbox = "Work" };
	test_assert(make_blob(st, b, "w\r\n") == 1);
	test_assert(store_deliver(st, &d, &err) == 1);
	test_assert(seen_kinds(work) == (STORE_CHANGE_CREATE | STORE_CHANGE_APPEND));

	test_assert(store_mailbox_rename(st, acct, "Work", "Sent", &err) == -1);
	test_assert(store_mailbox_rename(st, acct, "Nope", "X", &err) == 0);
	test_assert(store_mailbox_rename(st, acct, "INBOX", "X", &err) == -1);
	test_assert(store_mailbox_rename(st, acct, "Work", "Jobs", &err) == 1);
	test_assert(store_mailbox_get(st, acct, "Jobs", &mb) == 1 && mb.id == work);
	test_assert(mb.highestmodseq == 3 && mb.messages == 1 && mb.subscribed);
	test_assert(store_mailbox_subscribe(st, work, true, &err) == 1);	/* no change */
	test_assert(store_mailbox_subscribe(st, work, false, &err) == 1);
	test_assert(store_mailbox_subscribe(st, 4242, false, &err) == 0);
	test_assert(store_mailbox_get(st, acct, "Jobs", &mb) == 1);
	test_assert(!mb.subscribed && mb.highestmodseq == 4);
	/* Inferior names move with it (RFC 9051 6.3.6); under itself is refused. */
	test_assert(store_mailbox_create(st, acct, "Jobs/a", &err) == 1);
	test_assert(store_mailbox_create(st, acct, "Jobs/a/b", &err) == 1);
	test_assert(store_mailbox_create(st, acct, "Jobsite", &err) == 1);
	test_assert(store_mailbox_rename(st, acct, "Jobs", "Jobs/x", &err) == -1);
	test_assert(store_mailbox_rename(st, acct, "Jobs", "Work", &err) == 1);
	test_assert(store_mailbox_get(st, acct, "Work/a", &mb) == 1);
	test_assert(store_mailbox_get(st, acct, "Work/a/b", &mb) == 1);
	test_assert(store_mailbox_get(st, acct, "Jobs/a", &mb) == 0);
	test_assert(store_mailbox_get(st, acct, "Jobsite", &mb) == 1);
	test_assert(store_mailbox_create(st, acct, "Jobs/a", &err) == 1);
	test_assert(store_mailbox_rename(st, acct, "Work/a", "Jobs", &err) == 1);
	test_assert(store_mailbox_get(st, acct, "Jobs/b", &mb) == 1);
	test_assert(store_mailbox_rename(st, acct, "Jobs", "Work/a", &err) == 1);
	test_assert(store_mailbox_delete(st, acct, "Jobsite", &err) == 1);
	test_assert(store_mailbox_delete(st, acct, "Work/a/b", &err) == 1);
	test_assert(store_mailbox_delete(st, acct, "Work/a/a", &err) == 1);
	test_assert(store_mailbox_delete(st, acct, "Work/a", &err) == 1);
	test_assert(store_mailbox_rename(st, acct, "Work", "Jobs", &err) == 1);
	test_assert(store_mailbox_get(st, acct, "Jobs", &mb) == 1 && mb.id == work);

	test_assert(store_mailbox_delete(st, acct, "inbox", &err) == -1);
	test_assert(store_mailbox_delete(st, acct, "Jobs", &err) == 1);
	test_assert(store_mailbox_delete(st, acct, "Jobs", &err) == 0);
	test_assert(seen_kinds(work) & STORE_CHANGE_DELETE);
	test_assert(count_blob_files(dir) == 0);

	/* Deleting the account tells of each of its mailboxes. */
	seen_reset(0);
	test_assert(store_account_del(st, "a@example.org", &err) == 1);
	test_assert(seen_n == 6);
	store_notify_unsubscribe(seen_change, NULL);
	teardown(&st, dir);
	free(b);
	test_end();
}

/* \Recent's floor (RFC 3501 2.3.2): one claimer gets each UID; a
 * session's own APPEND moves the floor past what it stored only when
 * nothing older waits below. CREATE's mailboxes are not subscribed. */
static void
test_store_recent_floor(void)
{
	static const char *const addrs[] = { "r@example.org" };
	char dir[256];
	struct store_mailbox mb;
	struct store *st;
	struct yj_err err;
	uint32_t floor = 0;
	int64_t acct;

	test_begin("store recent floor, CREATE with a special use, unsubscribed");
	st = setup(dir, sizeof(dir));
	acct = add_accounts(st, "example.org", addrs, 1);
	test_assert(store_mailbox_create_path(st, acct, "A/Sent2", '/', "\\Sent", &err) == 1);
	test_assert(store_mailbox_get(st, acct, "A/Sent2", &mb) == 1);
	test_assert(!mb.subscribed && strcmp(mb.special_use, "\\Sent") == 0);
	test_assert(store_mailbox_get(st, acct, "A", &mb) == 1);
	test_assert(!mb.subscribed && mb.special_use[0] == '\0');
	test_assert(store_mailbox_get(st, acct, "INBOX", &mb) == 1 && mb.subscribed);

	test_assert(store_mailbox_recent(st, mb.id, 0, false, &floor, &err) == 1 && floor == 1);
	test_assert(store_mailbox_recent(st, mb.id, 3, true, &floor, &err) == 1 && floor == 1);
	test_assert(store_mailbox_recent(st, mb.id, 3, true, &floor, &err) == 1 && floor == 3);
	test_assert(store_mailbox_recent(st, mb.id, 2, true, &floor, &err) == 1 && floor == 3);
	test_assert(store_mailbox_recent(st, mb.id, 0, false, &floor, &err) == 1 && floor == 3);
	test_assert(store_mailbox_recent(st, 4242, 9, true, &floor, &err) == 0);
	teardown(&st, dir);
	test_end();
}

struct names {
	char v[4][64];
	size_t n;
};

static void
names_cb(void *ctx, const char *name)
{
	struct names *l = ctx;

	if (l->n < 4)
		snprintf(l->v[l->n++], sizeof(l->v[0]), "%s", name);
}

/* A subscribed mailbox that is deleted stays subscribed by name (RFC
 * 3501 6.3.9); made again it is subscribed; the name can be forgotten. */
static void
test_store_kept_subscriptions(void)
{
	static const char *const addrs[] = { "k@example.org", "l@example.org" };
	char dir[256];
	struct store_mailbox mb;
	struct names l = { 0 };
	struct store *st;
	struct yj_err err;
	int64_t acct;

	test_begin("store subscriptions kept for deleted mailboxes");
	st = setup(dir, sizeof(dir));
	acct = add_accounts(st, "example.org", addrs, 2);
	test_assert(store_mailbox_create_path(st, acct, "Keep", '/', "", &err) == 1);
	test_assert(store_mailbox_create_path(st, acct, "Drop", '/', "", &err) == 1);
	test_assert(store_mailbox_get(st, acct, "Keep", &mb) == 1);
	test_assert(store_mailbox_subscribe(st, mb.id, true, &err) == 1);
	test_assert(store_mailbox_delete(st, acct, "Keep", &err) == 1);
	test_assert(store_mailbox_delete(st, acct, "Drop", &err) == 1);
	test_assert(store_subscription_kept_list(st, acct, names_cb, &l, &err) == 1);
	test_assert(l.n == 1 && strcmp(l.v[0], "Keep") == 0);
	l.n = 0;
	test_assert(store_subscription_kept_list(st, acct + 1, names_cb, &l, &err) == 1 && l.n == 0);
	/* made again: subscribed, and no longer kept */
	test_assert(store_mailbox_create_path(st, acct, "Keep", '/', "", &err) == 1);
	test_assert(store_mailbox_get(st, acct, "Keep", &mb) == 1 && mb.subscribed);
	test_assert(store_subscription_kept_list(st, acct, names_cb, &l, &err) == 1 && l.n == 0);
	test_assert(store_mailbox_get(st, acct, "INBOX", &mb) == 1);
	test_assert(store_mailbox_delete(st, acct, "Keep", &err) == 1);
	test_assert(store_subscription_forget(st, acct, "Keep", &err) == 1);
	test_assert(store_subscription_forget(st, acct, "Keep", &err) == 0);
	test_assert(store_subscription_kept_list(st, acct, names_cb, &l, &err) == 1 && l.n == 0);
	teardown(&st, dir);
	test_end();
}

/* ---- flags changed by many sessions while mail arrives ---- */

#define FLAG_THREADS 8
#define FLAG_OPS 60
#define FLAG_DELIVERIES 200

struct flagger {
	const char *dir;
	int64_t mailbox;
	int index;
	int failures;
	uint64_t modseqs[FLAG_OPS];
	size_t n;
};

static void *
flagger_thread(void *p)
{
	struct flagger *f = p;
	struct store *st = NULL;
	struct yj_err err;
	char name[16];
	const char *kw[1] = { name };
	struct store_flag_change ch = { .keywords = kw, .n_keywords = 1 };
	uint64_t modseq;

	snprintf(name, sizeof(name), "$t%d", f->index);
	for (int i = 0; i < FLAG_OPS; i++) {
		/* A session borrows a connection per command. */
		if (store_open(f->dir, &st, &err) != 1) {
			f->failures++;
			continue;
		}
		ch.op = i % 2 == 0 ? STORE_FLAGS_ADD : STORE_FLAGS_REMOVE;
		ch.flags = i % 3 == 0 ? STORE_FLAG_FLAGGED : 0;
		if (store_msg_store_flags(st, f->mailbox, &all_uids, &ch, NULL, NULL, NULL,
					  &modseq, &err) != 1) {
			printf("  flags: %s\n", err.msg);
			f->failures++;
		} else if (modseq != 0) {
			f->modseqs[f->n++] = modseq;
		}
		store_close(&st);
	}
	return NULL;
}

struct deliverer {
	const char *dir;
	int64_t account;
	int failures;
};

static void *
deliverer_thread(void *p)
{
	struct deliverer *d = p;
	struct store_blob *b = calloc(1, sizeof(*b));
	struct store *st = NULL;
	struct yj_err err;

	if (b == NULL || store_open(d->dir, &st, &err) != 1) {
		d->failures = FLAG_DELIVERIES;
		free(b);
		return NULL;
	}
	for (int i = 0; i < FLAG_DELIVERIES; i++) {
		if (deliver(st, &d->account, 1, "x\r\n", b, &err) != 1) {
			printf("  deliver: %s\n", err.msg);
			d->failures++;
		}
	}
	store_close(&st);
	free(b);
	return NULL;
}

static void
test_store_flags_concurrent(void)
{
	static const char *const addrs[] = { "a@example.org" };
	char dir[256], sql[256];
	struct flagger f[FLAG_THREADS];
	struct deliverer dl;
	pthread_t threads[FLAG_THREADS], dt;
	struct store_mailbox mb;
	struct store *st;
	int64_t acct, inbox;
	size_t n_ops = 0;
	int failures = 0;

	test_begin("store 8 sessions change flags while mail arrives: MODSEQs");
	st = setup(dir, sizeof(dir));
	acct = add_accounts(st, "example.org", addrs, 1);
	inbox = inbox_id(st, acct);
	test_assert(store_notify_subscribe(seen_change, NULL) == 1);
	seen_reset(inbox);
	dl = (struct deliverer){ .dir = dir, .account = acct };
	test_assert(pthread_create(&dt, NULL, deliverer_thread, &dl) == 0);
	for (int i = 0; i < FLAG_THREADS; i++) {
		f[i] = (struct flagger){ .dir = dir, .mailbox = inbox, .index = i };
		test_assert(pthread_create(&threads[i], NULL, flagger_thread, &f[i]) == 0);
	}
	pthread_join(dt, NULL);
	for (int i = 0; i < FLAG_THREADS; i++) {
		pthread_join(threads[i], NULL);
		failures += f[i].failures;
		n_ops += f[i].n;
		/* Each session sees its MODSEQs strictly increase. */
		for (size_t k = 1; k < f[i].n; k++)
			test_assert(f[i].modseqs[k] > f[i].modseqs[k - 1]);
	}
	test_assert(failures == 0 && dl.failures == 0);
	test_assert(store_mailbox_get(st, acct, "INBOX", &mb) == 1);
	/* Every MODSEQ from 1 up was given once: to the creation, a
	 * delivery or a flag change; none twice, none lost. */
	test_assert(mb.highestmodseq == 1 + FLAG_DELIVERIES + n_ops);
	snprintf(sql, sizeof(sql), "SELECT count(DISTINCT modseq) = count(*) AND min(modseq) = 1"
		 " AND max(modseq) = count(*) FROM changes WHERE mailbox_id = %lld",
		 (long long)inbox);
	test_assert(sql_count(dir, sql) == 1);
	test_assert(seen_max == mb.highestmodseq);
	check_uids(st, inbox, FLAG_DELIVERIES);
	printf("  %zu flag changes and %d deliveries, highest MODSEQ %llu\n", n_ops,
	       FLAG_DELIVERIES, (unsigned long long)mb.highestmodseq);
	store_notify_unsubscribe(seen_change, NULL);
	teardown(&st, dir);
	test_end();
}

/* ---- flag changes and expunges share the writer's commits ---- */

#define SHARE_THREADS 6
#define SHARE_PER_THREAD 8

/* What a callback found on the caller's own connection. */
struct after_commit {
	struct store *st;
	int64_t mailbox;
	int seen, wrong;
};

/* Runs after the COMMIT: the row reads back as reported. */
static void
flag_after_commit(void *ctx, const struct store_flag_result *r)
{
	struct after_commit *ac = ctx;
	struct store_msg m;

	ac->seen++;
	if (store_msg_get(ac->st, ac->mailbox, r->uid, &m) != 1 || m.modseq != r->modseq ||
	    m.flags != r->flags)
		ac->wrong++;
}

/* Runs after the COMMIT: the message is gone. */
static void
expunge_after_commit(void *ctx, uint32_t uid)
{
	struct after_commit *ac = ctx;
	struct store_msg m;

	ac->seen++;
	if (store_msg_get(ac->st, ac->mailbox, uid, &m) != 0)
		ac->wrong++;
}

struct sharer {
	const char *dir;
	int64_t mailbox;
	uint32_t first;			/* its own UIDs: first .. first + PER - 1 */
	int failures, wrong;
	uint64_t modseqs[3];		/* flagged, deleted, expunged */
};

/* One session: flags its messages, marks them \Deleted and expunges
 * them, each a command of its own, checking each answer in the
 * callbacks. */
static void *
sharer_thread(void *p)
{
	struct sharer *sh = p;
	struct store_uid_range r = { sh->first, sh->first + SHARE_PER_THREAD - 1 };
	struct store_uidset set = { &r, 1 };
	struct store_flag_change ch = { .op = STORE_FLAGS_ADD };
	struct after_commit ac = { .mailbox = sh->mailbox };
	struct yj_err err;

	if (store_open(sh->dir, &ac.st, &err) != 1) {
		sh->failures++;
		return NULL;
	}
	ch.flags = STORE_FLAG_FLAGGED;
	if (store_msg_store_flags(ac.st, sh->mailbox, &set, &ch, flag_after_commit, NULL, &ac,
				  &sh->modseqs[0], &err) != 1)
		sh->failures++;
	ch.flags = STORE_FLAG_DELETED;
	if (store_msg_store_flags(ac.st, sh->mailbox, &set, &ch, flag_after_commit, NULL, &ac,
				  &sh->modseqs[1], &err) != 1)
		sh->failures++;
	if (store_msg_expunge_set(ac.st, sh->mailbox, &set, true, expunge_after_commit, &ac,
				  &sh->modseqs[2], &err) != 1)
		sh->failures++;
	if (ac.seen != 3 * SHARE_PER_THREAD)
		sh->failures++;
	sh->wrong = ac.wrong;
	store_close(&ac.st);
	return NULL;
}

static void
test_store_writes_share_commits(void)
{
	static const char *const addrs[] = { "a@example.org" };
	struct store_blob *b = calloc(1, sizeof(*b));
	struct sharer sh[SHARE_THREADS];
	pthread_t threads[SHARE_THREADS];
	uint64_t all[3 * SHARE_THREADS];
	struct store_mailbox mb;
	struct store *st;
	struct yj_err err;
	char dir[256];
	int64_t acct, inbox;
	size_t n = 0;

	test_begin("store flag changes and expunges of 6 sessions share commits: answers after them");
	st = setup(dir, sizeof(dir));
	acct = add_accounts(st, "example.org", addrs, 1);
	inbox = inbox_id(st, acct);
	/* One more message that nobody touches. */
	for (int i = 0; i < SHARE_THREADS * SHARE_PER_THREAD + 1; i++)
		test_assert(deliver(st, &acct, 1, "m\r\n", b, &err) == 1);
	for (int i = 0; i < SHARE_THREADS; i++) {
		sh[i] = (struct sharer){ .dir = dir, .mailbox = inbox,
					 .first = (uint32_t)(1 + i * SHARE_PER_THREAD) };
		test_assert(pthread_create(&threads[i], NULL, sharer_thread, &sh[i]) == 0);
	}
	for (int i = 0; i < SHARE_THREADS; i++) {
		pthread_join(threads[i], NULL);
		test_assert(sh[i].failures == 0 && sh[i].wrong == 0);
		/* One MODSEQ per command, in the order of the commands. */
		test_assert(sh[i].modseqs[0] < sh[i].modseqs[1] &&
			    sh[i].modseqs[1] < sh[i].modseqs[2]);
		for (int k = 0; k < 3; k++)
			all[n++] = sh[i].modseqs[k];
	}
	for (size_t i = 0; i < n; i++)
		for (size_t k = i + 1; k < n; k++)
			test_assert(all[i] != all[k]);
	/* Nothing left to change: no MODSEQ used, the failed list is empty. */
	test_assert(store_mailbox_get(st, acct, "INBOX", &mb) == 1);
	test_assert(mb.messages == 1 && mb.highestmodseq == 1 + mb.uidnext - 1 + n);
	{
		struct store_uid_range r = { 1, SHARE_THREADS * SHARE_PER_THREAD };
		struct store_uidset set = { &r, 1 };
		struct store_flag_change ch = { .op = STORE_FLAGS_ADD, .flags = STORE_FLAG_SEEN };
		uint64_t m = 1;

		test_assert(store_msg_store_flags(st, inbox, &set, &ch, NULL, NULL, NULL, &m,
						  &err) == 1 && m == 0);
		test_assert(store_msg_expunge_set(st, inbox, &set, false, NULL, NULL, &m,
						  &err) == 1 && m == 0);
		test_assert(store_msg_expunge_set(st, 424242, &set, false, NULL, NULL, &m,
						  &err) == 0);
	}
	test_assert(store_mailbox_get(st, acct, "INBOX", &mb) == 1);
	test_assert(mb.highestmodseq == 1 + mb.uidnext - 1 + n);
	/* The expunged messages' blobs went after their COMMITs. */
	test_assert(sql_count(dir, "SELECT count(*) FROM vanished") ==
		    SHARE_THREADS * SHARE_PER_THREAD);
	test_assert(count_blob_files(dir) == 1);
	teardown(&st, dir);
	free(b);
	test_end();
}

/* ---- changes made by another process ---- */

/* The other process: waits for the go, then creates a mailbox. */
static void
other_process(const char *dir, int64_t acct, int go_fd)
{
	struct store *st = NULL;
	struct yj_err err;
	char c;

	if (read(go_fd, &c, 1) != 1 || store_open(dir, &st, &err) != 1 ||
	    store_mailbox_create(st, acct, "FromOther", &err) != 1)
		_exit(1);
	store_close(&st);
	_exit(0);
}

/* Seconds until a CREATE of acct is noticed, or -1 after 3 s. */
static double
wait_for_create(int64_t acct)
{
	double t0 = now_seconds();

	while (now_seconds() - t0 < 3.0) {
		pthread_mutex_lock(&seen_lock);
		for (size_t i = 0; i < seen_n; i++) {
			if (seen[i].account_id == acct && (seen[i].kind & STORE_CHANGE_CREATE)) {
				pthread_mutex_unlock(&seen_lock);
				return now_seconds() - t0;
			}
		}
		pthread_mutex_unlock(&seen_lock);
		usleep(10000);
	}
	return -1;
}

static void
test_store_notify_other_process(void)
{
	static const char *const addrs[] = { "a@example.org" };
	char dir[256];
	struct store *st;
	struct yj_err err;
	int64_t acct;
	int go[2], status = -1;
	double latency;
	pid_t pid;

	test_begin("store notices another process's changes within a second");
	st = setup(dir, sizeof(dir));
	acct = add_accounts(st, "example.org", addrs, 1);
	/* No thread and no pooled connection may cross the fork. */
	store_close(&st);
	store_shutdown();
	test_assert(pipe(go) == 0);
	pid = fork();
	if (pid == 0) {
		close(go[1]);
		other_process(dir, acct, go[0]);
	}
	close(go[0]);
	test_assert(store_start(dir, &err) == 1);
	test_assert(store_notify_subscribe(seen_change, NULL) == 1);
	seen_reset(0);
	test_assert(write(go[1], "g", 1) == 1);
	close(go[1]);
	test_assert(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
		    WEXITSTATUS(status) == 0);
	latency = wait_for_create(acct);
	printf("  noticed after %.3f s\n", latency);
	test_assert(latency >= 0 && latency < 1.0);
	store_notify_unsubscribe(seen_change, NULL);
	test_assert(store_open(dir, &st, &err) == 1);
	teardown(&st, dir);
	test_end();
}

/* ---- a writer that does not answer ---- */

/* Tries of the stuck-writer case before the test gives up on seeing the
 * writer take the delivery in time. */
#define STUCK_TRIES 5

/* One delivery into an empty store that stops waiting after 300 ms while
 * other holds the write lock. Either the delivery writer took the job
 * in that time and now waits behind the lock: the outcome is unknown,
 * the file stays, and the writer commits it once let go. Or the writer
 * thread was not run at all in those 300 ms (a loaded machine): the job
 * is withdrawn, its file goes, and nothing is committed. Checks what
 * each case leaves; returns whether the writer had taken the job. */
static bool
deliver_to_stuck_writer(struct store *st, struct store *other, const char *dir, int64_t acct,
			struct store_blob *b)
{
	struct yj_err err;
	long long n = 0;
	size_t files;
	double t0;

	store_writer_timeout_ms = 300;
	test_assert(store_begin(other, &err) == 1);
	test_assert(deliver(st, &acct, 1, "late\r\n", b, &err) == -1);
	test_assert(strstr(err.msg, "no answer") != NULL);
	test_assert(b->path == NULL);
	files = count_blob_files(dir);
	store_rollback(other);
	store_writer_timeout_ms = STORE_WRITER_TIMEOUT_S * 1000;
	if (files == 0) {
		printf("  the writer did not take the delivery within 300 ms\n");
		test_assert(sql_count(dir, "SELECT count(*) FROM messages") == 0);
		return false;
	}
	/* The outcome is unknown, so the file stays... */
	test_assert(files == 1);
	/* ...and the writer, let go, commits the delivery after all. */
	t0 = now_seconds();
	while (now_seconds() - t0 < 5 && (n = sql_count(dir, "SELECT count(*) FROM messages")) < 1)
		usleep(10000);
	test_assert(n == 1);
	return true;
}

static void
test_store_writer_timeout(void)
{
	static const char *const addrs[] = { "a@example.org" };
	char dir[256];
	struct store_blob *b = calloc(1, sizeof(*b));
	struct store *st, *other = NULL;
	struct yj_err err;
	int64_t acct;
	bool taken = false;

	test_begin("store delivery stops waiting for a stuck writer and keeps its blob");
	st = setup(dir, sizeof(dir));
	acct = add_accounts(st, "example.org", addrs, 1);
	test_assert(store_open(dir, &other, &err) == 1);
	/* Another writer of the process holds the write lock: the delivery
	 * writer takes the job and then waits behind it, unless it is not
	 * run within the delivery's wait; the case is tried again then. */
	for (int i = 0; i < STUCK_TRIES && !taken; i++)
		taken = deliver_to_stuck_writer(st, other, dir, acct, b);
	test_assert(taken);
	store_close(&other);
	teardown(&st, dir);
	free(b);
	test_end();
}

/* ---- the outbound queue's fields ---- */

static void
test_store_queue_fields(void)
{
	static const char *const relay[] = { "Bob@Remote.Example", "carol@other.example" };
	static const struct store_relay_dsn dsn[] = {
		{ .notify = "SUCCESS,FAILURE", .orcpt = "rfc822;bob@remote.example" },
		{ .notify = NULL, .orcpt = NULL },
	};
	char dir[256], envid[STORE_ENVID_MAX + 2];
	struct store_blob *b = calloc(1, sizeof(*b));
	struct store_delivery d = {
		.blob = b, .sender = "me@example.org", .relay_rcpts = relay, .n_relay = 2,
		.envid = "env-1", .ret = "HDRS", .body = "8BITMIME", .smtputf8 = true,
		.queue_header = "X-Test: 1\r\n", .relay_dsn = dsn,
	};
	struct store *st;
	struct yj_err err;

	test_begin("store queue: per message and per recipient fields");
	st = setup(dir, sizeof(dir));
	test_assert(make_blob(st, b, "q\r\n") == 1);
	test_assert(store_deliver(st, &d, &err) == 1);
	test_assert(sql_count(dir, "SELECT count(*) FROM queue_messages WHERE envid = 'env-1'"
			      " AND ret = 'HDRS' AND body = '8BITMIME' AND smtputf8 = 1"
			      " AND length(header) = 11"
			      " AND sender = 'me@example.org'") == 1);
	test_assert(sql_count(dir, "SELECT count(*) FROM queue q JOIN queue_messages m"
			      " ON m.id = q.message_id WHERE q.domain = 'remote.example'"
			      " AND q.recipient = 'Bob@remote.example'"
			      " AND q.notify = 'SUCCESS,FAILURE'"
			      " AND q.orcpt = 'rfc822;bob@remote.example'"
			      " AND q.claimed_by = '' AND q.lease_until = 0") == 1);
	test_assert(sql_count(dir, "SELECT count(*) FROM queue WHERE domain = 'other.example'"
			      " AND notify = '' AND orcpt = ''") == 1);

	/* Without the optional fields: empty values. */
	d = (struct store_delivery){ .blob = b, .sender = "", .relay_rcpts = relay, .n_relay = 1 };
	test_assert(make_blob(st, b, "r\r\n") == 1);
	test_assert(store_deliver(st, &d, &err) == 1);
	test_assert(sql_count(dir, "SELECT count(*) FROM queue_messages WHERE envid = ''"
			      " AND ret = '' AND body = '' AND smtputf8 = 0 AND sender = ''") == 1);

	/* Too long: refused, nothing left behind. */
	memset(envid, 'e', sizeof(envid) - 1);
	envid[sizeof(envid) - 1] = '\0';
	d.envid = envid;
	test_assert(make_blob(st, b, "s\r\n") == 1);
	test_assert(store_deliver(st, &d, &err) == -1);
	test_assert(count_blob_files(dir) == 2);
	teardown(&st, dir);
	free(b);
	test_end();
}

/* ---- claiming the queue ---- */

struct claimed {
	int64_t ids[256];
	size_t n;
};

static void
collect_claim(void *ctx, const struct store_queue_item *item)
{
	struct claimed *c = ctx;

	if (c->n < 256)
		c->ids[c->n++] = item->id;
}

struct landed {
	int64_t ids[8];
	int results[8];
	size_t n;
};

static void
collect_landed(void *ctx, int64_t id, int result, const struct yj_err *err)
{
	struct landed *l = ctx;

	(void)err;
	if (l->n < 8) {
		l->ids[l->n] = id;
		l->results[l->n++] = result;
	}
}

/* One answer as the runner gives it: posted to the store's writer, then
 * landed. Returns what landed: 1, 0 node's claim had lapsed, -1. */
static int
queue_answer(struct store *st, const char *node, const struct store_queue_answer *a)
{
	struct store_queue_flight *f = store_queue_flight_new(1);
	struct landed l = { 0 };
	struct yj_err err;
	int ret = store_queue_post(st, f, node, a, &err);

	if (ret == 1) {
		store_queue_flight_land(st, f, collect_landed, &l);
		ret = l.n == 1 ? l.results[0] : -1;
	}
	store_queue_flight_free(f);
	return ret;
}

static int
queue_done(struct store *st, int64_t id, const char *node)
{
	return queue_answer(st, node, &(struct store_queue_answer){
		.outcome = STORE_QUEUE_DONE, .id = id });
}

static int
queue_defer(struct store *st, int64_t id, const char *node, int64_t next_attempt,
	    const char *reply)
{
	return queue_answer(st, node, &(struct store_queue_answer){
		.outcome = STORE_QUEUE_DEFER, .id = id, .next_attempt = next_attempt,
		.reply = reply });
}

/* Relays one message to each address of to[0..n), in turn. */
static void
queue_to(struct store *st, const char *const *to, size_t n)
{
	struct store_blob *b = calloc(1, sizeof(*b));
	struct yj_err err;

	for (size_t i = 0; i < n; i++) {
		struct store_delivery d = { .blob = b, .sender = "s@example.org",
					    .relay_rcpts = &to[i], .n_relay = 1 };

		test_assert(make_blob(st, b, "q\r\n") == 1);
		test_assert(store_deliver(st, &d, &err) == 1);
	}
	free(b);
}

/* Relays n messages with one remote recipient each. */
static void
queue_some(struct store *st, int n)
{
	static const char *const relay[] = { "r@remote.example" };

	for (int i = 0; i < n; i++)
		queue_to(st, relay, 1);
}

static void
test_store_queue_claims(void)
{
	char dir[256];
	struct claimed a = { 0 }, b = { 0 }, c = { 0 };
	struct store *st;
	struct yj_err err;
	int64_t now = 1800000000;

	test_begin("store queue claims: disjoint, leases lapse, only the holder finishes");
	st = setup(dir, sizeof(dir));
	queue_some(st, 5);
	test_assert(store_queue_claim(st, "node-a", now, 60, 3, collect_claim, &a, &err) == 3);
	test_assert(store_queue_claim(st, "node-b", now, 60, 10, collect_claim, &b, &err) == 2);
	test_assert(store_queue_claim(st, "node-a", now, 60, 10, collect_claim, &a, &err) == 0);
	for (size_t i = 0; i < a.n; i++)
		for (size_t k = 0; k < b.n; k++)
			test_assert(a.ids[i] != b.ids[k]);

	/* Only the holder finishes a row. */
	test_assert(queue_done(st, a.ids[0], "node-b") == 0);
	test_assert(queue_done(st, a.ids[0], "node-a") == 1);
	test_assert(queue_defer(st, a.ids[1], "node-a", now + 600, "451 later") == 1);
	test_assert(sql_count(dir, "SELECT count(*) FROM queue WHERE attempts = 1"
			      " AND claimed_by = '' AND last_error = '451 later'") == 1);
	test_assert(sql_count(dir, "SELECT count(*) FROM queue") == 4);

	/* node-a dies: when its lease has passed its row comes back, and
	 * node-a can no longer finish it. The deferred one waits. */
	test_assert(store_queue_claim(st, "node-c", now + 30, 60, 10, collect_claim, &c, &err) == 0);
	test_assert(store_queue_claim(st, "node-c", now + 61, 60, 10, collect_claim, &c, &err) == 3);
	test_assert(queue_done(st, a.ids[2], "node-a") == 0);
	for (size_t i = 0; i < c.n; i++)
		test_assert(queue_done(st, c.ids[i], "node-c") == 1);
	test_assert(store_queue_claim(st, "node-c", now + 601, 60, 10, collect_claim, &c, &err) == 1);
	test_assert(store_queue_claim(st, "", now, 60, 10, collect_claim, &c, &err) == -1);
	teardown(&st, dir);
	test_end();
}

/* A long batch renews what it has not sent: the rows stay its own. */
static void
test_store_queue_renew(void)
{
	char dir[256];
	struct claimed a = { 0 }, b = { 0 };
	struct landed l = { 0 };
	struct store_queue_flight *f = store_queue_flight_new(3);
	struct store *st;
	struct yj_err err;
	int64_t now = 1800000000;

	test_begin("store queue claims renewed: kept past the first lease, lapsed ones not");
	st = setup(dir, sizeof(dir));
	queue_some(st, 3);
	test_assert(store_queue_claim(st, "node-a", now, 60, 2, collect_claim, &a, &err) == 2);
	test_assert(store_queue_claim(st, "node-b", now, 60, 1, collect_claim, &b, &err) == 1);
	a.ids[2] = b.ids[0];		/* not node-a's */
	/* as the runner's keeper renews: posted together, landed together */
	for (size_t i = 0; i < 3; i++)
		test_assert(store_queue_post(st, f, "node-a", &(struct store_queue_answer){
			.outcome = STORE_QUEUE_RENEW, .id = a.ids[i], .next_attempt = now + 120 },
			&err) == 1);
	store_queue_flight_land(st, f, collect_landed, &l);
	store_queue_flight_free(f);
	test_assert(l.n == 3 && l.ids[0] == a.ids[0] && l.ids[1] == a.ids[1] &&
		    l.ids[2] == a.ids[2]);
	test_assert(l.results[0] == 1 && l.results[1] == 1 && l.results[2] == 0);
	/* at now + 61 only node-b's row is free again */
	b.n = 0;
	test_assert(store_queue_claim(st, "node-c", now + 61, 60, 10, collect_claim, &b, &err) == 1);
	test_assert(queue_done(st, a.ids[0], "node-a") == 1);
	teardown(&st, dir);
	test_end();
}

/* A claim is one domain's: that of the longest-waiting due row. */
static void
test_store_queue_claims_one_domain(void)
{
	static const char *const to[] = { "a@one.example", "b@two.example", "c@one.example",
					  "d@two.example", "e@one.example" };
	char dir[256];
	struct claimed a = { 0 }, b = { 0 }, c = { 0 };
	struct store *st;
	struct yj_err err;
	int64_t now = 1800000000;

	test_begin("store queue claims: one destination domain per claim, oldest first");
	st = setup(dir, sizeof(dir));
	queue_to(st, to, 5);
	test_assert(store_queue_claim(st, "node-a", now, 60, 10, collect_claim, &a, &err) == 3);
	test_assert(store_queue_claim(st, "node-b", now, 60, 10, collect_claim, &b, &err) == 2);
	test_assert(store_queue_claim(st, "node-c", now, 60, 10, collect_claim, &c, &err) == 0);
	test_assert(sql_count(dir, "SELECT count(*) FROM queue WHERE claimed_by = 'node-a'"
			      " AND domain = 'one.example'") == 3);
	test_assert(sql_count(dir, "SELECT count(*) FROM queue WHERE claimed_by = 'node-b'"
			      " AND domain = 'two.example'") == 2);
	for (size_t i = 0; i < a.n; i++)
		test_assert(queue_done(st, a.ids[i], "node-a") == 1);
	test_assert(sql_count(dir, "SELECT count(*) FROM queue WHERE domain = 'one.example'")
		    == 0);
	teardown(&st, dir);
	test_end();
}

/* Answers posted without waiting land later: each with its result. */
static void
test_store_queue_flight(void)
{
	char dir[256];
	struct claimed a = { 0 };
	struct landed l = { 0 };
	struct store_queue_flight *f = store_queue_flight_new(3);
	struct store *st;
	struct yj_err err;
	int64_t now = 1800000000;

	test_begin("store queue answers in flight: posted, landed, lapsed ones said so");
	st = setup(dir, sizeof(dir));
	queue_some(st, 4);
	test_assert(store_queue_claim(st, "node-a", now, 60, 4, collect_claim, &a, &err) == 4);
	test_assert(store_queue_post(st, f, "node-a", &(struct store_queue_answer){
		.outcome = STORE_QUEUE_DONE, .id = a.ids[0] }, &err) == 1);
	test_assert(store_queue_post(st, f, "node-a", &(struct store_queue_answer){
		.outcome = STORE_QUEUE_DEFER, .id = a.ids[1], .next_attempt = now + 600,
		.reply = "451 later" }, &err) == 1);
	test_assert(store_queue_post(st, f, "node-b", &(struct store_queue_answer){
		.outcome = STORE_QUEUE_FAIL, .id = a.ids[2], .reply = "550 no",
		.remote_mta = "mx" }, &err) == 1);
	test_assert(store_queue_flight_count(f) == 3);
	test_assert(store_queue_post(st, f, "node-a", &(struct store_queue_answer){
		.outcome = STORE_QUEUE_DONE, .id = a.ids[3] }, &err) == -1);
	store_queue_flight_land(st, f, collect_landed, &l);
	test_assert(store_queue_flight_count(f) == 0);
	test_assert(l.n == 3 && l.ids[0] == a.ids[0] && l.results[0] == 1);
	test_assert(l.results[1] == 1 && l.results[2] == 0);	/* not node-b's claim */
	test_assert(sql_count(dir, "SELECT count(*) FROM queue") == 3);
	test_assert(sql_count(dir, "SELECT count(*) FROM queue WHERE last_error = '451 later'"
			      " AND claimed_by = ''") == 1);

	/* a renewal keeps the claim past its first lease */
	l.n = 0;
	test_assert(store_queue_post(st, f, "node-a", &(struct store_queue_answer){
		.outcome = STORE_QUEUE_RENEW, .id = a.ids[3], .next_attempt = now + 120 },
		&err) == 1);
	store_queue_flight_land(st, f, collect_landed, &l);
	test_assert(l.n == 1 && l.results[0] == 1);
	a.n = 0;
	test_assert(store_queue_claim(st, "node-c", now + 61, 60, 10, collect_claim, &a, &err)
		    == 1);		/* only the row node-b could not fail */
	test_assert(sql_count(dir, "SELECT count(*) FROM queue WHERE claimed_by = 'node-a'")
		    == 1);
	store_queue_flight_free(f);
	teardown(&st, dir);
	test_end();
}

static void
collect_report(void *ctx, int64_t message_id)
{
	struct claimed *c = ctx;

	if (c->n < 256)
		c->ids[c->n++] = message_id;
}

/* A notice marks its rows in its own delivery: once, never twice. */
static void
test_store_queue_settle(void)
{
	static const char *const failed[] = { "gone@example.org" };
	char dir[256];
	struct claimed a = { 0 }, r = { 0 };
	static const char *const users[] = { "user@example.org" };
	struct store_blob *b = calloc(1, sizeof(*b));
	struct store_rcpt rcpt = { 0 };
	struct store_delivery d = { 0 };
	struct store_queue_settle settle = { 0 };
	struct store *st;
	struct yj_err err;
	int64_t now = 1800000000, ids[1];

	test_begin("store queue: failed rows, reports, a notice settles its rows once");
	st = setup(dir, sizeof(dir));
	queue_some(st, 2);
	test_assert(store_queue_claim(st, "node-a", now, 60, 10, collect_claim, &a, &err) == 2);
	test_assert(queue_answer(st, "node-a", &(struct store_queue_answer){
		.outcome = STORE_QUEUE_FAIL, .id = a.ids[0], .reply = "550 5.1.1 no",
		.remote_mta = "mx.remote.example" }) == 1);
	test_assert(queue_answer(st, "node-b", &(struct store_queue_answer){
		.outcome = STORE_QUEUE_SENT, .id = a.ids[1], .reply = "250 ok",
		.remote_mta = "" }) == 0);
	test_assert(queue_defer(st, a.ids[1], "node-a", now, "451 later") == 1);
	test_assert(sql_count(dir, "SELECT count(*) FROM queue WHERE status = 'failed'"
			      " AND notified = 0 AND remote_mta = 'mx.remote.example'") == 1);
	/* the failed row is owed a notice; the deferred one only after the
	 * delay warning time */
	test_assert(store_queue_reports(st, 0, 10, collect_report, &r, &err) == 1);
	r.n = 0;
	test_assert(store_queue_reports(st, INT64_MAX / 2, 10, collect_report, &r, &err) == 2);

	/* the notice: a local delivery that settles the failed row */
	rcpt.account_id = add_accounts(st, "example.org", users, 1);
	ids[0] = a.ids[0];
	settle.notified = ids;
	settle.n_notified = 1;
	d = (struct store_delivery){ .blob = b, .rcpts = &rcpt, .n_rcpts = 1, .settle = &settle };
	test_assert(make_blob(st, b, "notice\r\n") == 1);
	test_assert(store_deliver(st, &d, &err) == 1);
	test_assert(sql_count(dir, "SELECT count(*) FROM queue WHERE notified = 1") == 1);
	/* a second notice for the same row is not stored */
	test_assert(make_blob(st, b, "again\r\n") == 1);
	test_assert(store_deliver(st, &d, &err) == -1);
	test_assert(sql_count(dir, "SELECT count(*) FROM messages") == 1);
	test_assert(store_queue_settle(st, &settle, &err) == 0);
	r.n = 0;
	test_assert(store_queue_reports(st, 0, 10, collect_report, &r, &err) == 0);

	/* failed recipients delivered with the message (alias targets) */
	d = (struct store_delivery){ .blob = b, .sender = "s@example.org", .rcpts = &rcpt,
				     .n_rcpts = 1, .failed_rcpts = failed, .n_failed = 1,
				     .failed_reply = "550 5.1.1 unknown" };
	test_assert(make_blob(st, b, "alias\r\n") == 1);
	test_assert(store_deliver(st, &d, &err) == 1);
	test_assert(sql_count(dir, "SELECT count(*) FROM queue WHERE recipient ="
			      " 'gone@example.org' AND status = 'failed' AND notified = 0"
			      " AND last_error = '550 5.1.1 unknown'") == 1);
	teardown(&st, dir);
	free(b);
	test_end();
}

static void
collect_entry(void *ctx, const struct store_queue_entry *e)
{
	struct claimed *c = ctx;

	if (c->n < 256)
		c->ids[c->n++] = e->item.id;
}

/* NOTIFY=SUCCESS rows written with the delivery: reported like sent
 * rows, never for the null sender; finished rows expire with their blob. */
static void
test_store_queue_notices_and_expiry(void)
{
	static const char *const users[] = { "user@example.org" };
	static const struct store_notice notices[] = {
		{ .recipient = "user@example.org", .orcpt = "rfc822;u+40example.org",
		  .action = "delivered" },
		{ .recipient = "team@example.org", .action = "expanded" },
	};
	char dir[256];
	struct claimed a = { 0 }, r = { 0 };
	struct store_blob *b = calloc(1, sizeof(*b));
	struct store_rcpt rcpt = { 0 };
	struct store_delivery d;
	struct store_queue_settle settle = { 0 };
	struct store *st;
	struct yj_err err;
	int64_t now = (int64_t)time(NULL);

	test_begin("store queue: success rows with the delivery, finished rows expire");
	st = setup(dir, sizeof(dir));
	rcpt.account_id = add_accounts(st, "example.org", users, 1);
	d = (struct store_delivery){ .blob = b, .sender = "s@remote.example", .rcpts = &rcpt,
				     .n_rcpts = 1, .notices = notices, .n_notices = 2 };
	test_assert(make_blob(st, b, "tell me\r\n") == 1);
	test_assert(store_deliver(st, &d, &err) == 1);
	test_assert(sql_count(dir, "SELECT count(*) FROM queue WHERE status = 'delivered'"
			      " AND notify = 'SUCCESS' AND orcpt = 'rfc822;u+40example.org'"
			      " AND recipient = 'user@example.org' AND notified = 0") == 1);
	test_assert(sql_count(dir, "SELECT count(*) FROM queue WHERE status = 'expanded'") == 1);
	/* owed a report, never claimed for sending, never retried */
	test_assert(store_queue_reports(st, 0, 10, collect_report, &r, &err) == 1);
	test_assert(store_queue_claim(st, "node-a", now, 60, 10, collect_claim, &a, &err) == 0);
	test_assert(store_queue_set(st, 0, STORE_QUEUE_RETRY, now, &err) == 0);
	/* the null sender is owed nothing */
	d.sender = "";
	test_assert(make_blob(st, b, "a bounce\r\n") == 1);
	test_assert(store_deliver(st, &d, &err) == 1);
	test_assert(sql_count(dir, "SELECT count(*) FROM queue") == 2);
	test_assert(sql_count(dir, "SELECT count(*) FROM queue_messages") == 1);

	/* reported: the rows may go, once their time has passed */
	test_assert(store_queue_list(st, collect_entry, &a, &err) == 1 && a.n == 2);
	settle.notified = a.ids;
	settle.n_notified = a.n;
	test_assert(store_queue_settle(st, &settle, &err) == 1);
	test_assert(store_queue_expire(st, now - 10, &err) == 0);
	test_assert(store_queue_expire(st, now + 10, &err) == 2);
	test_assert(sql_count(dir, "SELECT count(*) FROM queue_messages") == 0);
	/* the message stays for the mailbox that has it */
	test_assert(sql_count(dir, "SELECT count(*) FROM blobs WHERE refcount = 1") == 2);
	/* a failed row not yet reported stays; a reported one goes, blob too */
	queue_some(st, 1);
	a.n = 0;
	test_assert(store_queue_list(st, collect_entry, &a, &err) == 1 && a.n == 1);
	test_assert(store_queue_set(st, a.ids[0], STORE_QUEUE_BOUNCE, now, &err) == 1);
	test_assert(store_queue_expire(st, now + 10, &err) == 0);
	settle.n_notified = 1;
	test_assert(store_queue_settle(st, &settle, &err) == 1);
	test_assert(store_queue_expire(st, now + 10, &err) == 1);
	test_assert(sql_count(dir, "SELECT count(*) FROM blobs") == 2);
	test_assert(sql_count(dir, "SELECT count(*) FROM queue") == 0);
	teardown(&st, dir);
	free(b);
	test_end();
}

struct claimer {
	const char *dir;
	const char *node;
	struct claimed got;
	int failures;
};

static void *
claimer_thread(void *p)
{
	struct claimer *c = p;
	struct store *st = NULL;
	struct yj_err err;
	int n;

	do {
		if (store_open(c->dir, &st, &err) != 1) {
			c->failures++;
			return NULL;
		}
		n = store_queue_claim(st, c->node, 1800000000, 60, 7, collect_claim, &c->got, &err);
		if (n < 0)
			c->failures++;
		store_close(&st);
	} while (n > 0);
	return NULL;
}

static void
test_store_queue_claims_concurrent(void)
{
	char dir[256], dir2[300];
	struct claimer cl[2];
	struct yj_err err;
	pthread_t threads[2];
	struct store *st;
	size_t total;

	test_begin("store queue claimed by two claimers at once: each row once");
	st = setup(dir, sizeof(dir));
	queue_some(st, 100);
	/* On PostgreSQL the second claimer is another node: its own data
	 * dir on the same database, so no lock of this process orders the
	 * two and only the database keeps their rows apart. */
	snprintf(dir2, sizeof(dir2), "%s/node2", dir);
	test_assert(mkdir(dir2, 0700) == 0);
	if (pg_base != NULL)
		test_assert(store_set_driver(dir2, "postgresql", pg_dsn, &err) == 1);
	for (int i = 0; i < 2; i++) {
		cl[i] = (struct claimer){ .dir = i == 1 && pg_base != NULL ? dir2 : dir,
					  .node = i == 0 ? "n0" : "n1" };
		test_assert(pthread_create(&threads[i], NULL, claimer_thread, &cl[i]) == 0);
	}
	for (int i = 0; i < 2; i++)
		pthread_join(threads[i], NULL);
	total = cl[0].got.n + cl[1].got.n;
	test_assert(cl[0].failures == 0 && cl[1].failures == 0);
	test_assert(total == 100);
	for (size_t i = 0; i < cl[0].got.n; i++)
		for (size_t k = 0; k < cl[1].got.n; k++)
			test_assert(cl[0].got.ids[i] != cl[1].got.ids[k]);
	test_assert(sql_count(dir, "SELECT count(DISTINCT claimed_by) FROM queue") >= 1);
	teardown(&st, dir);
	test_end();
}

/* A runner thread: claims its share, then answers each row (done for
 * even ones, deferred for odd ones) and tries one of another node's. */
struct finisher {
	const char *dir;
	char node[16];
	int64_t foreign;		/* a row another node holds */
	struct claimed got;
	int failures;
};

static void *
finisher_thread(void *p)
{
	struct finisher *f = p;
	struct store *st = NULL;
	struct yj_err err;

	if (store_open(f->dir, &st, &err) != 1) {
		f->failures++;
		return NULL;
	}
	for (size_t i = 0; i < f->got.n; i++) {
		int ret = i % 2 == 0 ?
			  queue_done(st, f->got.ids[i], f->node) :
			  queue_defer(st, f->got.ids[i], f->node, 1800000600, "451 later");

		f->failures += ret != 1;
	}
	f->failures += queue_done(st, f->foreign, f->node) != 0;
	store_close(&st);
	return NULL;
}

static void
test_store_queue_answers_concurrent(void)
{
	enum { THREADS = 4, EACH = 10 };
	char dir[256];
	struct finisher f[THREADS];
	pthread_t threads[THREADS];
	struct store *st;
	struct yj_err err;

	test_begin("store queue answered by many runners at once: each its own result");
	st = setup(dir, sizeof(dir));
	queue_some(st, THREADS * EACH);
	test_assert(count_blob_files(dir) == THREADS * EACH);
	for (int i = 0; i < THREADS; i++) {
		f[i] = (struct finisher){ .dir = dir };
		snprintf(f[i].node, sizeof(f[i].node), "n%d", i);
		test_assert(store_queue_claim(st, f[i].node, 1800000000, 60, EACH, collect_claim,
					      &f[i].got, &err) == EACH);
	}
	for (int i = 0; i < THREADS; i++) {
		f[i].foreign = f[(i + 1) % THREADS].got.ids[0];
		test_assert(pthread_create(&threads[i], NULL, finisher_thread, &f[i]) == 0);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(threads[i], NULL);
	for (int i = 0; i < THREADS; i++)
		test_assert(f[i].failures == 0);
	test_assert(sql_count(dir, "SELECT count(*) FROM queue") == THREADS * EACH / 2);
	test_assert(sql_count(dir, "SELECT count(*) FROM queue WHERE attempts = 1"
			      " AND claimed_by = '' AND last_error = '451 later'") ==
		    THREADS * EACH / 2);
	/* The done rows' blobs are gone, rows and files. */
	test_assert(sql_count(dir, "SELECT count(*) FROM blobs") == THREADS * EACH / 2);
	test_assert(count_blob_files(dir) == THREADS * EACH / 2);
	teardown(&st, dir);
	test_end();
}

/* ---- copying a store to another driver and back ---- */

struct dumper {
	struct store *st;
	FILE *out;
};

static void
dump_uid(void *ctx, uint32_t uid)
{
	fprintf(ctx, " v%u", uid);
}

static void
dump_keyword(void *ctx, unsigned bit, const char *name)
{
	fprintf(ctx, " k%u=%s", bit, name);
}

static void
dump_msg(void *ctx, const struct store_msg *m)
{
	struct dumper *d = ctx;
	char text[4096];

	read_message(d->st, m, text, sizeof(text));
	fprintf(d->out, "  msg %u modseq=%llu flags=%u kw=%llu date=%lld size=%llu [%s]\n", m->uid,
		(unsigned long long)m->modseq, m->flags, (unsigned long long)m->keywords,
		(long long)m->internal_date, (unsigned long long)m->size, text);
}

static void
dump_mailbox(void *ctx, const struct store_mailbox *mb)
{
	struct dumper *d = ctx;
	struct yj_err err;

	fprintf(d->out, " box %s %s v=%u next=%u hms=%llu sub=%d floor=%llu", mb->name,
		mb->special_use, mb->uidvalidity, mb->uidnext,
		(unsigned long long)mb->highestmodseq, mb->subscribed,
		(unsigned long long)mb->vanished_floor);
	test_assert(store_keyword_list(d->st, mb->id, dump_keyword, d->out, &err) == 1);
	test_assert(store_vanished_since(d->st, mb->id, 0, dump_uid, d->out, &err) == 1);
	fputc('\n', d->out);
}

/* Mailbox lists are collected first: a listing callback may not run
 * the same listing again. */
struct dump_ids {
	int64_t ids[16];
	char names[16][STORE_ADDRESS_MAX + 1];
	size_t n;
};

static void
collect_account(void *ctx, const struct store_account *a)
{
	struct dump_ids *ids = ctx;

	if (ids->n < 16) {
		ids->ids[ids->n] = a->id;
		snprintf(ids->names[ids->n++], sizeof(ids->names[0]), "%s", a->address);
	}
}

static void
collect_mailbox_id(void *ctx, const struct store_mailbox *mb)
{
	struct dump_ids *ids = ctx;

	if (ids->n < 16)
		ids->ids[ids->n++] = mb->id;
}

/* Everything a client could see of a store, as text. */
static char *
dump_store(struct store *st)
{
	struct dump_ids accts = { 0 }, boxes;
	struct dumper d = { .st = st };
	struct yj_err err;
	char *text = NULL;
	size_t len = 0;

	d.out = open_memstream(&text, &len);
	test_assert(store_account_list(st, NULL, collect_account, &accts, &err) == 1);
	for (size_t i = 0; i < accts.n; i++) {
		struct store_quota q = { 0 };

		test_assert(store_quota_get(st, accts.ids[i], &q, &err) == 1);
		fprintf(d.out, "account %s quota %lld used %llu\n", accts.names[i],
			(long long)q.limit, (unsigned long long)q.used);
		boxes = (struct dump_ids){ 0 };
		test_assert(store_mailbox_list(st, accts.ids[i], collect_mailbox_id, &boxes,
					       &err) == 1);
		test_assert(store_mailbox_list(st, accts.ids[i], dump_mailbox, &d, &err) == 1);
		for (size_t k = 0; k < boxes.n; k++)
			test_assert(store_msg_list(st, boxes.ids[k], dump_msg, &d, &err) == 1);
	}
	fclose(d.out);
	return text;
}

/* A store with a bit of everything. */
static void
fill_store(struct store *st)
{
	static const char *const addrs[] = { "a@example.org", "b@example.org" };
	static const char *const kw[] = { "$Forwarded", "Work" };
	static const char *const relay[] = { "x@remote.example" };
	struct store_blob *b = calloc(1, sizeof(*b));
	struct store_flag_change ch = { .op = STORE_FLAGS_ADD, .flags = STORE_FLAG_SEEN,
					.keywords = kw, .n_keywords = 2 };
	struct store_delivery d = { .blob = b, .sender = "s@example.org", .relay_rcpts = relay,
				    .n_relay = 1, .envid = "e1" };
	struct store_uid_range r = { 2, 3 };
	struct store_uidset set = { &r, 1 };
	struct yj_err err;
	int64_t accts[2], inbox;
	uint64_t modseq;
	uint32_t one = 1;

	add_accounts(st, "example.org", addrs, 2);
	accts[0] = account_id(st, addrs[0]);
	accts[1] = account_id(st, addrs[1]);
	inbox = inbox_id(st, accts[0]);
	for (int i = 0; i < 4; i++)
		test_assert(deliver(st, accts, 2, i % 2 ? "odd\r\n" : "even\r\n", b, &err) == 1);
	test_assert(store_msg_store_flags(st, inbox, &set, &ch, NULL, NULL, NULL, &modseq,
					  &err) == 1);
	test_assert(store_msg_expunge(st, inbox, &one, 1, &err) == 1);
	test_assert(store_mailbox_create(st, accts[1], "Projects", &err) == 1);
	test_assert(store_mailbox_rename(st, accts[1], "Projects", "Old", &err) == 1);
	test_assert(store_alias_add(st, "info@example.org", "a@example.org", &err) == 1);
	test_assert(store_quota_set(st, "b@example.org", 1000000, &err) == 1);
	test_assert(make_blob(st, b, "relayed\r\n") == 1);
	test_assert(store_deliver(st, &d, &err) == 1);
	free(b);
}

/* A summary whose items say which blob they belong to. */
static void
summary_fill(struct store_summary *sum, const char *blob_id)
{
	static const char *const items[STORE_SUMMARY_ITEMS] = {
		"(NIL \"s\" NIL NIL NIL NIL NIL NIL NIL NIL)", "(\"text\" \"plain\")",
		"(\"text\" \"plain\" NIL)", "Subject: s\r\n\r\n"
	};

	memset(sum, 0, sizeof(*sum));
	snprintf(sum->blob_id, sizeof(sum->blob_id), "%s", blob_id);
	for (int i = 0; i < STORE_SUMMARY_ITEMS; i++) {
		sum->text[i] = strdup(items[i]);
		sum->len[i] = strlen(items[i]);
	}
}

/* Saves a summary_fill summary for the message uid of box. */
static void
save_summary(struct store *st, int64_t box, uint32_t uid)
{
	struct store_summary sum;
	struct store_msg msg;
	struct yj_err err;

	test_assert(store_msg_get(st, box, uid, &msg) == 1);
	summary_fill(&sum, msg.blob_id);
	test_assert(store_summary_put(st, &sum, 1, &err) == 1);
	store_summary_free(&sum);
}

static void
first_blob_cb(void *ctx, const struct store_msg *m)
{
	char *id = ctx;

	if (id[0] == '\0')
		snprintf(id, STORE_BLOB_ID_MAX, "%s", m->blob_id);
}

/* The blob of the first message of account's INBOX. */
static void
first_blob(struct store *st, const char *address, char id[STORE_BLOB_ID_MAX])
{
	struct yj_err err;

	id[0] = '\0';
	test_assert(store_msg_list(st, inbox_id(st, account_id(st, address)), first_blob_cb, id,
				   &err) == 1);
	test_assert(id[0] != '\0');
}

static bool
summary_equal(const struct store_summary *a, const struct store_summary *b)
{
	for (int i = 0; i < STORE_SUMMARY_ITEMS; i++)
		if (a->len[i] != b->len[i] || memcmp(a->text[i], b->text[i], a->len[i]) != 0)
			return false;
	return true;
}

static void
test_store_summaries(void)
{
	static const char *const addrs[] = { "a@example.org" };
	struct store_summary sum[2], got;
	struct store_blob b;
	struct yj_err err;
	char dir[256], id[STORE_BLOB_ID_MAX];
	struct store *st = NULL;
	int64_t acct;
	uint32_t one = 1;

	test_begin("summaries: saved once per blob, read back, gone with the blob");
	st = setup(dir, sizeof(dir));
	acct = add_accounts(st, "example.org", addrs, 1);
	test_assert(deliver(st, &acct, 1, "hello\r\n", &b, &err) == 1);
	first_blob(st, addrs[0], id);
	test_assert(store_summary_get(st, id, &got, &err) == 0);
	summary_fill(&sum[0], id);
	summary_fill(&sum[1], "2000010100/no-such-blob");
	test_assert(store_summary_put(st, sum, 2, &err) == 1);
	test_assert(store_summary_put(st, sum, 1, &err) == 1);	/* kept, not doubled */
	test_assert(store_summary_get(st, id, &got, &err) == 1);
	test_assert(summary_equal(&got, &sum[0]));
	store_summary_free(&got);
	test_assert(store_summary_get(st, sum[1].blob_id, &got, &err) == 0);
	test_assert(sql_count(dir, "SELECT count(*) FROM summaries") == 1);
	test_assert(store_msg_expunge(st, inbox_id(st, acct), &one, 1, &err) == 1);
	test_assert(sql_count(dir, "SELECT count(*) FROM summaries") == 0);
	store_summary_free(&sum[0]);
	store_summary_free(&sum[1]);
	teardown(&st, dir);
	test_end();
}

/* store_msg_fetch: the rows of a list of UIDs, with their summaries,
 * the expunged ones left out. */
static void
test_store_msg_fetch(void)
{
	static const char *const addrs[] = { "a@example.org" };
	static const uint32_t all[] = { 1, 2, 3, 4, 5 }, apart[] = { 2, 4 }, gone[] = { 3 };
	struct store_fetch_row rows[5];
	struct store_summary sum;
	struct store_msg msg;
	struct store_blob b;
	struct yj_err err;
	char dir[256], body[64];
	struct store *st = NULL;
	int64_t acct, box;
	uint32_t three = 3;
	size_t found = 99;

	test_begin("store_msg_fetch: rows and summaries of a UID list in one read");
	st = setup(dir, sizeof(dir));
	acct = add_accounts(st, "example.org", addrs, 1);
	box = inbox_id(st, acct);
	for (int i = 1; i <= 5; i++) {
		snprintf(body, sizeof(body), "Subject: %d\r\n\r\nbody %d\r\n", i, i);
		test_assert(deliver(st, &acct, 1, body, &b, &err) == 1);
	}
	test_assert(store_msg_get(st, box, 4, &msg) == 1);
	summary_fill(&sum, msg.blob_id);
	test_assert(store_summary_put(st, &sum, 1, &err) == 1);
	test_assert(store_msg_expunge(st, box, &three, 1, &err) == 1);

	test_assert(store_msg_fetch(st, box, all, 5, true, rows, &found, &err) == 1);
	test_assert(found == 4);
	test_assert(rows[0].msg.uid == 1 && rows[1].msg.uid == 2 && rows[2].msg.uid == 4 &&
		    rows[3].msg.uid == 5);
	test_assert(!rows[0].has_summary && !rows[1].has_summary && !rows[3].has_summary);
	test_assert(rows[2].has_summary && summary_equal(&rows[2].summary, &sum));
	test_assert_strcmp(rows[2].summary.blob_id, msg.blob_id);
	test_assert_strcmp(rows[2].msg.blob_id, msg.blob_id);
	test_assert(rows[2].msg.size == msg.size && rows[2].msg.modseq == msg.modseq &&
		    rows[2].msg.prefix_len == msg.prefix_len &&
		    memcmp(rows[2].msg.prefix, msg.prefix, msg.prefix_len) == 0);
	store_fetch_rows_free(rows, found);

	/* Two runs of UIDs: one read transaction, ended. */
	test_assert(store_msg_fetch(st, box, apart, 2, false, rows, &found, &err) == 1);
	test_assert(found == 2 && rows[0].msg.uid == 2 && rows[1].msg.uid == 4);
	test_assert(!rows[1].has_summary);
	store_fetch_rows_free(rows, found);
	test_assert(store_msg_fetch(st, box, gone, 1, true, rows, &found, &err) == 1 && found == 0);
	test_assert(store_msg_fetch(st, box + 1000, all, 5, true, rows, &found, &err) == 1 &&
		    found == 0);
	/* No transaction was left open: a write goes through. */
	test_assert(store_msg_expunge(st, box, &three, 1, &err) == 1);
	store_summary_free(&sum);
	teardown(&st, dir);
	test_end();
}

/* The summary cache: what was read once comes from memory, for
 * store_msg_fetch, store_msg_heads and store_summary_get alike, for
 * more messages than one statement asks for, and a small cache keeps
 * only some. */
static void
test_store_summary_cache(void)
{
	static const char *const addrs[] = { "a@example.org" };
	enum { N = 40, MANY = 400 };
	struct store_fetch_row rows[N];
	struct store_summary sum;
	struct store_msg_heads heads;
	struct store_msg msg;
	struct store_blob b;
	struct yj_err err;
	char dir[256], body[64];
	struct store *st = NULL;
	uint32_t uids[N];
	int64_t acct, box;
	size_t found = 0, kept = 0;

	test_begin("summary cache: read once, then from memory; a small one keeps some");
	store_set_summary_cache(1u << 20);
	st = setup(dir, sizeof(dir));
	acct = add_accounts(st, "example.org", addrs, 1);
	box = inbox_id(st, acct);
	for (uint32_t i = 1; i <= N; i++) {
		snprintf(body, sizeof(body), "Subject: %u\r\n\r\nbody %u\r\n", i, i);
		test_assert(deliver(st, &acct, 1, body, &b, &err) == 1);
		uids[i - 1] = i;
		/* Every third message has no summary. */
		if (i % 3 == 0)
			continue;
		save_summary(st, box, i);
	}
	/* Gone from the database, still known: they came from the cache
	 * (store_summary_put kept them). */
	test_assert(sql_exec(dir, "DELETE FROM summaries") == 1);
	for (int pass = 0; pass < 2; pass++) {
		test_assert(store_msg_fetch(st, box, uids, N, true, rows, &found, &err) == 1);
		test_assert(found == N);
		for (size_t i = 0; i < found; i++) {
			summary_fill(&sum, rows[i].msg.blob_id);
			test_assert(rows[i].has_summary == (rows[i].msg.uid % 3 != 0));
			test_assert(!rows[i].has_summary || summary_equal(&rows[i].summary, &sum));
			store_summary_free(&sum);
		}
		store_fetch_rows_free(rows, found);
	}
	test_assert(store_msg_heads(st, box, 1, N, 1u << 20, &heads, &err) == 1);
	test_assert(heads.n == N);
	for (size_t i = 0; i < heads.n; i++) {
		test_assert(heads.v[i].uid == i + 1);
		test_assert(heads.v[i].stored == ((i + 1) % 3 != 0));
		test_assert(!heads.v[i].stored ||
			    (strstr(heads.v[i].text, "Delivered-To: x@example.org\r\n") ==
			     heads.v[i].text && strstr(heads.v[i].text, "Subject: s\r\n\r\n")));
	}
	store_msg_heads_free(&heads);
	/* Until at least max_bytes (43 bytes each, none for the third),
	 * then no more. */
	test_assert(store_msg_heads(st, box, 1, N, 100, &heads, &err) == 1);
	test_assert(heads.n == 4 && heads.v[0].uid == 1 && heads.v[3].uid == 4);
	store_msg_heads_free(&heads);
	test_assert(store_msg_get(st, box, 1, &msg) == 1);
	test_assert(store_summary_get(st, msg.blob_id, &sum, &err) == 1);
	store_summary_free(&sum);
	teardown(&st, dir);

	/* 64 KiB: room for some 280 of these 230-byte entries, not for
	 * all MANY. */
	store_set_summary_cache(64u << 10);
	st = setup(dir, sizeof(dir));
	acct = add_accounts(st, "example.org", addrs, 1);
	box = inbox_id(st, acct);
	for (uint32_t i = 1; i <= MANY; i++) {
		test_assert(deliver(st, &acct, 1, "x\r\n", &b, &err) == 1);
		save_summary(st, box, i);
	}
	test_assert(sql_exec(dir, "DELETE FROM summaries") == 1);
	for (uint32_t at = 1; at <= MANY; at += N) {
		for (uint32_t i = 0; i < N; i++)
			uids[i] = at + i;
		test_assert(store_msg_fetch(st, box, uids, N, true, rows, &found, &err) == 1);
		test_assert(found == N);
		for (size_t i = 0; i < found; i++)
			kept += rows[i].has_summary;
		store_fetch_rows_free(rows, found);
	}
	test_assert(kept > 100 && kept < 300);
	teardown(&st, dir);
	store_set_summary_cache(0);
	test_end();
}

/* store_give_back_idle gives a connection back in the middle of a
 * command only when nothing of it is open, and a blob reader goes on
 * with the connection borrowed next (where it reads through one). */
static void
test_store_give_back_idle(void)
{
	static const char *const addrs[] = { "a@example.org" };
	static const char body[] = "Subject: piece by piece\r\n\r\nthe body of it\r\n";
	struct store_blob_reader rd;
	struct store *st, *lent = NULL;
	struct store_msg msg;
	struct store_blob b;
	struct store_q *q;
	struct yj_err err;
	char dir[256], got[sizeof(body)];
	int64_t acct;
	long n;

	test_begin("store_give_back_idle: not inside a transaction or a read");
	st = setup(dir, sizeof(dir));
	acct = add_accounts(st, "example.org", addrs, 1);
	test_assert(deliver(st, &acct, 1, body, &b, &err) == 1);
	test_assert(store_msg_get(st, inbox_id(st, acct), 1, &msg) == 1);

	test_assert(store_borrow(dir, &lent, "test", "t1") && lent != NULL);
	test_assert(store_begin(lent, &err) == 1);
	test_assert(!store_give_back_idle(&lent) && lent != NULL);
	store_rollback(lent);
	q = store_stmt(lent, "SELECT id FROM mailboxes ORDER BY id", &err);
	test_assert(q != NULL && store_row(lent, q, "mailboxes", &err) == 1);
	test_assert(!store_give_back_idle(&lent) && lent != NULL);
	store_reset(q);

	test_assert(store_blob_reader_open(lent, &msg, &rd, &err) == 1);
	n = store_blob_read(&rd, 0, got, 10, &err);
	test_assert(n == 10);
	test_assert(store_give_back_idle(&lent) && lent == NULL);
	test_assert(store_give_back_idle(&lent));	/* none: nothing to do */
	test_assert(store_borrow(dir, &lent, "test", "t1") && lent != NULL);
	if (store_blob_reader_in_db(&rd))
		store_blob_reader_use(&rd, lent);
	n = store_blob_read(&rd, 10, got + 10, sizeof(got) - 10, &err);
	/* The blob is the message as delivered: the body given. */
	test_assert(n == (long)(sizeof(body) - 1) - 10);
	test_assert(memcmp(got, body, sizeof(body) - 1) == 0);
	store_blob_reader_close(&rd);
	store_give_back(&lent);
	teardown(&st, dir);
	test_end();
}

static void
collect_state(void *ctx, const struct store_msg_state *m)
{
	uint32_t *uids = ctx;

	uids[++uids[0]] = m->uid;
}

/* What an IMAP view reads: message states (all, or changed since a
 * MODSEQ), headers in batches, the mailbox by id. */
static void
test_store_view(void)
{
	static const char *const addrs[] = { "a@example.org", "b@example.org" };
	struct store_msg_heads h;
	struct store_summary sum;
	struct store_mailbox mb;
	struct store_blob b;
	struct yj_err err;
	char dir[256], id[STORE_BLOB_ID_MAX];
	struct store *st = NULL;
	uint32_t uids[8] = { 0 }, two = 2;
	int64_t acct[2], inbox;
	const char *want;

	test_begin("view: message states, header batches, mailbox by id");
	st = setup(dir, sizeof(dir));
	acct[0] = add_accounts(st, "example.org", addrs, 2);
	acct[1] = account_id(st, addrs[1]);
	inbox = inbox_id(st, acct[0]);
	for (int i = 0; i < 3; i++)
		test_assert(deliver(st, acct, 1, "Subject: x\r\n\r\nbody\r\n", &b, &err) == 1);
	first_blob(st, addrs[0], id);
	summary_fill(&sum, id);
	test_assert(store_summary_put(st, &sum, 1, &err) == 1);
	store_summary_free(&sum);

	test_assert(store_msg_states(st, inbox, 0, collect_state, uids, &err) == 1);
	test_assert(uids[0] == 3 && uids[1] == 1 && uids[3] == 3);
	test_assert(store_mailbox_get_id(st, acct[0], inbox, &mb) == 1);
	test_assert(strcmp(mb.name, "INBOX") == 0);
	test_assert(store_msg_add_flags(st, inbox, &two, 1, STORE_FLAG_FLAGGED, &err) == 1);
	memset(uids, 0, sizeof(uids));
	test_assert(store_msg_states(st, inbox, mb.highestmodseq, collect_state, uids, &err) == 1);
	test_assert(uids[0] == 1 && uids[1] == 2);

	/* Message 1 has its header lines stored: prefix + header. */
	want = "Delivered-To: x@example.org\r\nSubject: s\r\n\r\n";
	test_assert(store_msg_heads(st, inbox, 1, 2, 1 << 20, &h, &err) == 1);
	test_assert(h.n == 2 && h.v[0].uid == 1 && h.v[0].stored && h.v[1].uid == 2);
	test_assert(h.v[0].len == strlen(want) && strcmp(h.v[0].text, want) == 0);
	test_assert(!h.v[1].stored && h.v[1].text == NULL);
	store_msg_heads_free(&h);
	/* A batch ends after max_bytes (at least one message). */
	test_assert(store_msg_heads(st, inbox, 1, 10, 1, &h, &err) == 1 && h.n == 1);
	store_msg_heads_free(&h);
	test_assert(store_msg_heads(st, inbox, 3, 10, 1 << 20, &h, &err) == 1);
	test_assert(h.n == 1 && h.v[0].uid == 3);
	store_msg_heads_free(&h);
	test_assert(store_msg_heads(st, inbox, 4, 10, 1 << 20, &h, &err) == 0 && h.n == 0);
	store_msg_heads_free(&h);

	/* Another account's mailbox id is not found. */
	test_assert(store_mailbox_get_id(st, acct[1], inbox, &mb) == 0);
	test_assert(store_mailbox_get_id(st, acct[0], inbox + 1000, &mb) == 0);
	teardown(&st, dir);
	test_end();
}

static void
test_store_copy_round_trip(void)
{
	char a_dir[256], b_dir[256], c_dir[256];
	struct store *a = NULL, *b = NULL, *c = NULL;
	char *dump_a, *dump_b, *dump_c, id[STORE_BLOB_ID_MAX];
	struct store_summary sum, got;
	struct yj_err err;
	const char *saved = pg_base;

	test_begin("store copy SQLite -> PostgreSQL -> SQLite keeps UIDs, flags, MODSEQs, bytes");
	if (pg_base == NULL) {
		test_end();
		return;
	}
	pg_base = NULL;			/* a and c are SQLite stores */
	a = setup(a_dir, sizeof(a_dir));
	c = setup(c_dir, sizeof(c_dir));
	pg_base = saved;
	b = setup(b_dir, sizeof(b_dir));
	fill_store(a);
	first_blob(a, "b@example.org", id);
	summary_fill(&sum, id);
	test_assert(store_summary_put(a, &sum, 1, &err) == 1);

	test_assert(store_copy(a, b, &err) == 1);
	test_assert(store_copy(a, b, &err) == -1);	/* not empty any more */
	test_assert(strstr(err.msg, "not empty") != NULL);
	test_assert(store_copy(b, c, &err) == 1);
	dump_a = dump_store(a);
	dump_b = dump_store(b);
	dump_c = dump_store(c);
	test_assert(strstr(dump_a, "msg 2 modseq=") != NULL && strstr(dump_a, "k1=Work") != NULL);
	test_assert(strstr(dump_a, " v1") != NULL && strstr(dump_a, "box Old") != NULL);
	test_assert(strstr(dump_a, "b@example.org quota 1000000 used ") != NULL);
	test_assert(strstr(dump_a, "a@example.org quota -1 used ") != NULL);
	test_assert_strcmp(dump_b, dump_a);
	test_assert_strcmp(dump_c, dump_a);
	test_assert(store_integrity_check(b, &err) == 1);
	test_assert(store_summary_get(c, id, &got, &err) == 1 && summary_equal(&got, &sum));
	store_summary_free(&got);
	store_summary_free(&sum);
	/* New rows on the copy get new ids. */
	test_assert(store_domain_add(b, "new.example", &err) == 1);
	test_assert(store_account_add(b, "n@new.example", "", &err) == 1);
	free(dump_a);
	free(dump_b);
	free(dump_c);
	teardown(&c, c_dir);
	teardown(&a, a_dir);
	teardown(&b, b_dir);
	test_end();
}

/* ---- PostgreSQL ending the store's connections ---- */

static void
test_store_pg_reconnects(void)
{
	static const char *const addrs[] = { "a@example.org" };
	char dir[256], dir2[300], name[32];
	struct store_blob *b = calloc(1, sizeof(*b));
	struct store *st, *other = NULL;
	struct store_mailbox mb;
	struct yj_err err;
	int64_t acct;
	double t0;
	int n = 0;

	test_begin("store on PostgreSQL carries on when the server ends its connections");
	if (pg_base == NULL) {
		free(b);
		test_end();
		return;
	}
	st = setup(dir, sizeof(dir));
	acct = add_accounts(st, "example.org", addrs, 1);
	test_assert(deliver(st, &acct, 1, "before\r\n", b, &err) == 1);
	test_assert(store_start(dir, &err) == 1);
	test_assert(store_notify_subscribe(seen_change, NULL) == 1);
	seen_reset(0);
	/* As a restart or an administrator would. */
	test_assert(pg_count("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
			     " WHERE datname = current_database() AND pid <> pg_backend_pid()") >= 2);
	test_assert(store_mailbox_get(st, acct, "INBOX", &mb) == 1 && mb.messages == 1);
	test_assert(deliver(st, &acct, 1, "after\r\n", b, &err) == 1);
	/* Another node's change is heard again once the listener is back. */
	snprintf(dir2, sizeof(dir2), "%s/node2", dir);
	test_assert(mkdir(dir2, 0700) == 0);
	test_assert(store_set_driver(dir2, "postgresql", pg_dsn, &err) == 1);
	test_assert(store_open(dir2, &other, &err) == 1);
	t0 = now_seconds();
	while (now_seconds() - t0 < 5 && seen_kinds_account(acct, STORE_CHANGE_CREATE) == 0) {
		snprintf(name, sizeof(name), "Box%d", n++);
		test_assert(store_mailbox_create(other, acct, name, &err) == 1);
		usleep(300000);
	}
	test_assert(seen_kinds_account(acct, STORE_CHANGE_CREATE) != 0);
	store_notify_unsubscribe(seen_change, NULL);
	store_close(&other);
	teardown(&st, dir);
	free(b);
	test_end();
}

/* ---- DMARC report counts ---- */

struct dmarc_seen {
	int64_t n, rows;
	char domains[256];
};

static void
dmarc_domain_cb(void *ctx, const char *domain)
{
	struct dmarc_seen *got_rows = ctx;

	strcat(got_rows->domains, domain);
	strcat(got_rows->domains, ";");
}

static void
dmarc_row_cb(void *ctx, const struct store_dmarc_row *row)
{
	struct dmarc_seen *got_rows = ctx;

	got_rows->rows++;
	got_rows->n += row->count;
}

static void
dmarc_fill(struct store_dmarc_policy *pol, struct store_dmarc_row *row, const char *domain,
	   int64_t day, const char *ip)
{
	memset(pol, 0, sizeof(*pol));
	memset(row, 0, sizeof(*row));
	snprintf(pol->domain, sizeof(pol->domain), "%s", domain);
	strcpy(pol->adkim, "r");
	strcpy(pol->aspf, "s");
	strcpy(pol->p, "reject");
	strcpy(pol->sp, "none");
	pol->pct = 100;
	snprintf(pol->rua, sizeof(pol->rua), "mailto:r@%s!0", domain);
	row->day = day;
	snprintf(row->policy_domain, sizeof(row->policy_domain), "%s", domain);
	snprintf(row->source_ip, sizeof(row->source_ip), "%s", ip);
	strcpy(row->header_from, domain);
	strcpy(row->disposition, "none");
	row->dkim_aligned = true;
	strcpy(row->dkim, "a.example sel pass\n");
	strcpy(row->spf_domain, domain);
	strcpy(row->spf_result, "pass");
}

static void
test_store_dmarc(void)
{
	char dir[256];
	struct store *st;
	struct store_dmarc_policy pol, got;
	struct store_dmarc_row row;
	struct dmarc_seen found = { 0 };
	struct yj_err err;

	test_begin("DMARC report counts: one row per outcome, done, sent count");
	st = setup(dir, sizeof(dir));
	dmarc_fill(&pol, &row, "a.example", 100, "192.0.2.1");
	test_assert(store_dmarc_record(st, &pol, &row, 8640000, &err) == 1);
	test_assert(store_dmarc_record(st, &pol, &row, 8640001, &err) == 1);
	row.spf_aligned = true;			/* another outcome: another row */
	test_assert(store_dmarc_record(st, &pol, &row, 8640002, &err) == 1);
	row.day = 101;				/* another day */
	test_assert(store_dmarc_record(st, &pol, &row, 8726400, &err) == 1);
	dmarc_fill(&pol, &row, "b.example", 101, "2001:db8::1");
	test_assert(store_dmarc_record(st, &pol, &row, 8726400, &err) == 1);

	test_assert(store_dmarc_domains(st, 101, dmarc_domain_cb, &found, &err) == 1);
	test_assert_strcmp(found.domains, "a.example;");
	found.domains[0] = '\0';
	test_assert(store_dmarc_domains(st, INT64_MAX, dmarc_domain_cb, &found, &err) == 1);
	test_assert_strcmp(found.domains, "a.example;b.example;");
	test_assert(store_dmarc_rows(st, "a.example", 101, &got, dmarc_row_cb, &found, &err) == 1);
	test_assert(found.rows == 2 && found.n == 3);
	test_assert_strcmp(got.rua, "mailto:r@a.example!0");
	test_assert(strcmp(got.p, "reject") == 0 && got.pct == 100 && strcmp(got.aspf, "s") == 0);
	test_assert(store_dmarc_rows(st, "none.example", 101, &got, dmarc_row_cb, &found,
				     &err) == 0);

	/* Reported: the rows before day 101 go, the report is counted. */
	test_assert(store_dmarc_sent_count(st, 101, &err) == 0);
	test_assert(store_dmarc_done(st, "a.example", 101, "id1", "<r@a.example>", 101, 8726400,
				     &err) == 1);
	test_assert(store_dmarc_sent_count(st, 101, &err) == 1);
	found.rows = found.n = 0;
	test_assert(store_dmarc_rows(st, "a.example", INT64_MAX, &got, dmarc_row_cb, &found,
				     &err) == 1);
	test_assert(found.rows == 1 && found.n == 1);
	/* Dropped (nobody may receive them): no report counted. */
	test_assert(store_dmarc_done(st, "b.example", INT64_MAX, NULL, NULL, 0, 8726400,
				     &err) == 1);
	test_assert(store_dmarc_sent_count(st, 101, &err) == 1);
	found.domains[0] = '\0';
	test_assert(store_dmarc_domains(st, INT64_MAX, dmarc_domain_cb, &found, &err) == 1);
	test_assert_strcmp(found.domains, "a.example;");
	teardown(&st, dir);
	test_end();
}

/* ---- append, copy and move with exact UIDs; quotas ---- */

static uint64_t
quota_used(struct store *st, int64_t account)
{
	struct store_quota q = { 0 };
	struct yj_err err;

	test_assert(store_quota_get(st, account, &q, &err) == 1);
	return q.used;
}

static void
test_store_copy_move(void)
{
	static const char *const addrs[] = { "a@example.org" };
	static const char *const fwd[] = { "$Forwarded" };
	static const struct store_uid_range ranges[] = { { 4, 5 }, { 2, 2 }, { 2, 4 }, { 9, 9 } };
	const struct store_uidset set = { ranges, 4 };
	const struct store_uid_range one_three = { 1, 3 }, four = { 4, 4 };
	struct store_flag_change ch = { .op = STORE_FLAGS_ADD, .flags = STORE_FLAG_SEEN,
					.keywords = fwd, .n_keywords = 1 };
	struct store_blob *b = calloc(1, sizeof(*b));
	struct store_copy_result res;
	struct store_mailbox mb;
	struct store_msg msg;
	struct store *st;
	struct yj_err err;
	char dir[256], sql[256], list[128] = "";
	uint32_t gone[8] = { 0 };
	uint64_t modseq, used;
	int64_t acct, inbox, archive, trash;

	test_begin("store copy and move: one transaction, exact UIDs, shared blobs");
	st = setup(dir, sizeof(dir));
	acct = add_accounts(st, "example.org", addrs, 1);
	inbox = inbox_id(st, acct);
	archive = mailbox_id(st, acct, "Archive");
	trash = mailbox_id(st, acct, "Trash");
	for (int i = 0; i < 5; i++)
		test_assert(deliver(st, &acct, 1, "copy me\r\n", b, &err) == 1);
	used = quota_used(st, acct);
	test_assert(store_msg_get(st, inbox, 1, &msg) == 1 && used == 5 * msg.size);
	{
		const struct store_uid_range two = { 2, 2 };
		const struct store_uidset s2 = { &two, 1 };

		test_assert(store_msg_store_flags(st, inbox, &s2, &ch, NULL, NULL, NULL, &modseq,
						  &err) == 1);
	}

	/* Overlapping ranges in any order: each message once, UID order. */
	test_assert(store_msg_copy(st, inbox, archive, &set, false, &res, &err) == 1);
	test_assert(store_mailbox_get(st, acct, "Archive", &mb) == 1);
	test_assert(res.n == 4 && res.uidvalidity == mb.uidvalidity && mb.uidnext == 5);
	test_assert(res.map[0].src == 2 && res.map[0].dst == 1);
	test_assert(res.map[3].src == 5 && res.map[3].dst == 4);
	free(res.map);
	test_assert(store_msg_get(st, archive, 1, &msg) == 1);
	test_assert(msg.flags == STORE_FLAG_SEEN && msg.keywords == 1);
	test_assert(msg.internal_date == 1700000000 && msg.prefix_len > 0);
	test_assert(store_keyword_list(st, archive, collect_keyword, list, &err) == 1);
	test_assert_strcmp(list, "0=$Forwarded;");
	snprintf(sql, sizeof(sql), "SELECT refcount FROM blobs WHERE id = '%s'", msg.blob_id);
	test_assert(sql_count(dir, sql) == 2);
	test_assert(quota_used(st, acct) == used + 4 * msg.size);
	used = quota_used(st, acct);

	/* Move: the copies and the expunge (with records) commit together. */
	test_assert(store_mailbox_get(st, acct, "INBOX", &mb) == 1);
	modseq = mb.highestmodseq;
	test_assert(store_notify_subscribe(seen_change, NULL) == 1);
	seen_reset(0);
	test_assert(store_msg_copy(st, inbox, trash, &(struct store_uidset){ &one_three, 1 }, true,
				   &res, &err) == 1);
	test_assert(res.n == 3 && res.map[2].src == 3 && res.map[2].dst == 3);
	free(res.map);
	/* Both mailboxes are told, after the COMMIT. */
	test_assert(seen_kinds(inbox) == STORE_CHANGE_EXPUNGE);
	test_assert(seen_kinds(trash) == STORE_CHANGE_APPEND);
	test_assert(store_mailbox_get(st, acct, "INBOX", &mb) == 1 && mb.messages == 2);
	test_assert(store_vanished_since(st, inbox, modseq, collect_uid_list, gone, &err) == 1);
	test_assert(gone[0] == 3 && gone[1] == 1 && gone[3] == 3);
	test_assert(store_msg_get(st, trash, 2, &msg) == 1 && msg.flags == STORE_FLAG_SEEN);
	test_assert(quota_used(st, acct) == used);

	/* A quota: a copy that would pass it is refused whole; a move in
	 * the account is not. */
	test_assert(store_quota_set(st, "a@example.org", (int64_t)used + 1, &err) == 1);
	test_assert(store_quota_full(st, acct, &err) == 0);
	test_assert(store_msg_copy(st, inbox, archive, &(struct store_uidset){ &four, 1 }, false,
				   &res, &err) == STORE_OVER_QUOTA);
	test_assert(strstr(err.msg, "quota") != NULL && res.map == NULL);
	test_assert(store_mailbox_get(st, acct, "Archive", &mb) == 1 && mb.uidnext == 5);
	test_assert(seen_kinds(archive) == 0);
	store_notify_unsubscribe(seen_change, NULL);
	test_assert(store_msg_copy(st, inbox, archive, &(struct store_uidset){ &four, 1 }, true,
				   &res, &err) == 1);
	test_assert(res.n == 1 && res.map[0].src == 4 && res.map[0].dst == 5);
	free(res.map);
	test_assert(store_quota_set(st, "a@example.org", (int64_t)used, &err) == 1);
	test_assert(store_quota_full(st, acct, &err) == 1);
	test_assert(store_quota_set(st, "a@example.org", STORE_QUOTA_NONE, &err) == 1);
	test_assert(store_quota_full(st, acct, &err) == 0);
	test_assert(store_quota_set(st, "nobody@example.org", 5, &err) == 0);

	/* Nothing there, no such mailbox. */
	test_assert(store_msg_copy(st, inbox, archive, &(struct store_uidset){ &four, 1 }, false,
				   &res, &err) == 1);
	test_assert(res.n == 0 && res.uidvalidity != 0);
	test_assert(store_msg_copy(st, inbox, 4242, &set, false, &res, &err) == 0);
	test_assert(store_msg_copy(st, 4242, archive, &set, true, &res, &err) == 0);
	test_assert(strstr(err.msg, "no such mailbox") != NULL && res.map == NULL);
	/* Expunging the copies gives the bytes back. */
	test_assert(store_msg_expunge_set(st, archive, &all_uids, false, NULL, NULL, &modseq,
					  &err) == 1);
	test_assert(store_msg_expunge_set(st, trash, &all_uids, false, NULL, NULL, &modseq,
					  &err) == 1);
	test_assert(store_msg_get(st, inbox, 5, &msg) == 1 && quota_used(st, acct) == msg.size);

	/* RENAME INBOX: a new mailbox gets INBOX's messages, INBOX stays. */
	test_assert(store_mailbox_rename_inbox(st, acct, "Old", &res, &err) == 1);
	test_assert(res.n == 1 && res.map[0].src == 5 && res.map[0].dst == 1);
	free(res.map);
	test_assert(store_mailbox_get(st, acct, "INBOX", &mb) == 1 && mb.messages == 0);
	test_assert(store_mailbox_get(st, acct, "Old", &mb) == 1 && mb.messages == 1);
	test_assert(store_mailbox_rename_inbox(st, acct, "Old", &res, &err) == -1);
	test_assert(res.map == NULL && strstr(err.msg, "exists") != NULL);
	test_assert(store_mailbox_rename_inbox(st, acct, "Empty", &res, &err) == 1 && res.n == 0);
	test_assert(store_mailbox_get(st, acct, "Empty", &mb) == 1 && mb.messages == 0);
	teardown(&st, dir);
	free(b);
	test_end();
}

/* ---- search text ---- */

/* An index whose texts are given (already folded, as the delivering
 * thread makes them). */
static void
index_fill(struct store_index *ix, const char *header, const char *body)
{
	memset(ix, 0, sizeof(*ix));
	summary_fill(&ix->summary, "");
	ix->has_summary = true;
	if (body == NULL) {
		ix->text_failed = true;
		return;
	}
	ix->has_text = true;
	ix->header = strdup(header);
	ix->header_len = strlen(header);
	ix->body = strdup(body);
	ix->body_len = strlen(body);
}

/* Delivers body with index ix (NULL: none) to account's INBOX. */
static void
deliver_indexed(struct store *st, int64_t acct, const char *body, const struct store_index *ix)
{
	struct store_rcpt rcpt = { .account_id = acct, .prefix = "" };
	struct store_delivery d = { .internal_date = 1700000000, .rcpts = &rcpt, .n_rcpts = 1,
				    .sender = "", .index = ix };
	struct store_blob *b = calloc(1, sizeof(*b));
	struct yj_err err;

	test_assert(b != NULL && make_blob(st, b, body) == 1);
	d.blob = b;
	test_assert(store_deliver(st, &d, &err) == 1);
	free(b);
}

/* The candidates for needle as "1,3,", in a buffer the next call reuses. */
static const char *
candidates(struct store *st, int64_t box, const char *needle, bool headers)
{
	static char out[128];
	const size_t outlen = sizeof(out);
	struct yj_err err;
	uint32_t *uids;
	size_t n, len = 0;

	out[0] = '\0';
	test_assert(store_text_candidates(st, box, needle, strlen(needle), headers, &uids, &n,
					  &err) == 1);
	for (size_t i = 0; i < n && len < outlen; i++)
		len += (size_t)snprintf(out + len, outlen - len, "%u,", uids[i]);
	free(uids);
	return out;
}

/* The text maker youjud sets (deliver_index_text), with a fixed text. */
static void
make_text(const char *data, size_t len, struct store_index *ix)
{
	(void)data;
	(void)len;
	ix->has_text = true;
	ix->header = strdup("SUBJECT: MADE\n");
	ix->header_len = strlen(ix->header);
	ix->body = strdup("MADE LATER ZEBRA\n");
	ix->body_len = strlen(ix->body);
}

/* Makes the pending texts as youjud's maintenance thread would. */
static void
index_all(struct store *st)
{
	struct yj_err err;
	int ret;

	while ((ret = store_text_index_some(st, 10, &err)) == 1)
		;
	test_assert(ret == 0);
}

static void
count_unindexed(void *ctx, const char *blob_id, uint64_t size)
{
	char *last = ctx;

	(void)size;
	snprintf(last, STORE_BLOB_ID_MAX, "%s", blob_id);
}

static void
test_store_search_text(void)
{
	static const char *const addrs[] = { "a@example.org" };
	static const struct store_uid_range one[] = { { 1, 1 } };
	const struct store_uidset set1 = { one, 1 };
	struct store_index ix[4];
	struct store_append_msg am = { .data = "Subject: x\r\n\r\ny\r\n", .len = 17,
				       .index = &ix[2] };
	struct store_copy_result res = { 0 };
	struct store_summary got;
	struct yj_err err;
	char dir[256], last[STORE_BLOB_ID_MAX] = "", id[STORE_BLOB_ID_MAX];
	struct store *st;
	int64_t acct, box, other;
	uint32_t uids[2], uidvalidity;
	uint32_t two_three[3] = { 1, 2, 3 };

	test_begin("search text: written with delivery and APPEND, candidates, gone with the blob");
	st = setup(dir, sizeof(dir));
	acct = add_accounts(st, "example.org", addrs, 1);
	box = inbox_id(st, acct);
	test_assert(store_mailbox_create(st, acct, "Other", &err) == 1);
	other = mailbox_id(st, acct, "Other");
	index_fill(&ix[0], "SUBJECT: ALPHA\n", "THE ZEBRACORN 100% \"Q\" A_B \\ GRAZES\n");
	index_fill(&ix[1], "", NULL);			/* too large: never ruled out */
	index_fill(&ix[2], "SUBJECT: BETA\n", "APPENDED ZEBRA\n");
	deliver_indexed(st, acct, "1\r\n", &ix[0]);
	deliver_indexed(st, acct, "2\r\n", &ix[1]);
	deliver_indexed(st, acct, "3\r\n", NULL);	/* stored before: never ruled out */
	test_assert(store_msg_append(st, box, &am, 1, uids, &uidvalidity, &err) == 1);
	test_assert(uids[0] == 4);

	/* A text to be made later: never ruled out until it is. */
	index_fill(&ix[3], "", NULL);
	ix[3].text_failed = false;
	ix[3].text_pending = true;
	deliver_indexed(st, acct, "5\r\n", &ix[3]);
	test_assert_strcmp(candidates(st, box, "NOWHERE", false), "2,3,5,");
	test_assert(sql_count(dir, "SELECT count(*) FROM search_pending") == 1);
	store_set_text_maker(make_text);
	index_all(st);
	store_set_text_maker(NULL);
	test_assert(sql_count(dir, "SELECT count(*) FROM search_pending") == 0);
	test_assert_strcmp(candidates(st, box, "NOWHERE", false), "2,3,");
	test_assert_strcmp(candidates(st, box, "ZEBRA", false), "1,2,3,4,5,");
	test_assert_strcmp(candidates(st, box, "EBRAC", false), "1,2,3,");
	test_assert_strcmp(candidates(st, box, "ALPHA", false), "2,3,");
	test_assert_strcmp(candidates(st, box, "ALPHA", true), "1,2,3,");
	test_assert_strcmp(candidates(st, box, "UBJECT: BE", true), "2,3,4,");
	/* The query languages' own characters are only text. */
	test_assert_strcmp(candidates(st, box, "0% \"Q\" A_B \\ G", false), "1,2,3,");
	test_assert_strcmp(candidates(st, box, "0%\"Q", false), "2,3,");
	test_assert_strcmp(candidates(st, box, "A_C", false), "2,3,");
	test_assert_strcmp(candidates(st, box, "\"Q\" OR ZEBRA", false), "2,3,");
	test_assert_strcmp(candidates(st, other, "ZEBRA", false), "");

	/* The summary came with the delivery. */
	first_blob(st, addrs[0], id);
	test_assert(store_summary_get(st, id, &got, &err) == 1);
	test_assert(summary_equal(&got, &ix[0].summary));
	store_summary_free(&got);

	/* Only the message stored without an index needs one. */
	test_assert(store_unindexed(st, "", 10, count_unindexed, last, &err) == 1);
	test_assert(store_index_put(st, last, &ix[0], &err) == 1);
	test_assert(store_unindexed(st, "", 10, count_unindexed, last, &err) == 0);
	test_assert(store_index_put(st, "2000010100/no-such-blob", &ix[0], &err) == 0);
	index_all(st);
	test_assert_strcmp(candidates(st, box, "EBRAC", false), "1,2,3,");

	/* A copy shares the blob's text; the text goes with the last. */
	test_assert(store_msg_copy(st, box, other, &set1, false, &res, &err) == 1);
	free(res.map);
	test_assert(store_msg_expunge(st, box, &two_three[0], 1, &err) == 1);
	test_assert_strcmp(candidates(st, other, "ZEBRA", false), "1,");
	test_assert(sql_count(dir, "SELECT count(*) FROM search_text") == 5);
	test_assert(store_msg_expunge(st, other, &two_three[0], 1, &err) == 1);
	test_assert(store_msg_expunge(st, box, &two_three[1], 2, &err) == 1);
	test_assert(sql_count(dir, "SELECT count(*) FROM search_text") == 2);
	if (pg_base == NULL)
		test_assert(sql_count(dir, "SELECT count(*) FROM search_fts"
				      " WHERE search_fts MATCH '\"ZEBRACORN\"'") == 0);
	for (int i = 0; i < 4; i++)
		store_index_free(&ix[i]);
	teardown(&st, dir);
	test_end();
}

static void
test_store_append(void)
{
	static const char *const addrs[] = { "a@example.org" };
	static const char *const kw[] = { "$Label1", "Work" };
	struct store_append_msg m[3] = {
		{ .data = "Subject: one\r\n\r\n1\r\n", .len = 20, .flags = STORE_FLAG_DRAFT,
		  .keywords = kw, .n_keywords = 2, .internal_date = 1600000000 },
		{ .data = "Subject: two\r\n\r\n22\r\n", .len = 21, .internal_date = STORE_DATE_NOW },
		{ .data = "x", .len = 1, .internal_date = STORE_DATE_NOW },
	};
	char dir[256], list[128] = "";
	struct store_mailbox mb;
	struct store_msg msg;
	struct store *st;
	struct yj_err err;
	uint32_t uids[3], uidvalidity = 0;
	size_t files;
	int64_t acct, box;
	int fd;

	test_begin("store append: several messages in one transaction, or none");
	st = setup(dir, sizeof(dir));
	acct = add_accounts(st, "example.org", addrs, 1);
	test_assert(store_mailbox_create(st, acct, "Box", &err) == 1);
	box = mailbox_id(st, acct, "Box");
	test_assert(store_msg_append(st, box, m, 2, uids, &uidvalidity, &err) == 1);
	test_assert(store_mailbox_get(st, acct, "Box", &mb) == 1);
	test_assert(uids[0] == 1 && uids[1] == 2 && uidvalidity == mb.uidvalidity);
	test_assert(store_msg_get(st, box, 1, &msg) == 1);
	test_assert(msg.flags == STORE_FLAG_DRAFT && msg.keywords == 3 && msg.size == 20);
	test_assert(msg.internal_date == 1600000000 && msg.prefix_len == 0);
	test_assert(store_keyword_list(st, box, collect_keyword, list, &err) == 1);
	test_assert_strcmp(list, "0=$Label1;1=Work;");
	test_assert(store_msg_get(st, box, 2, &msg) == 1 && msg.internal_date > 1700000000);
	test_assert(store_msg_open_blob(st, &msg, &fd, &err) == 1);
	{
		char buf[64];
		ssize_t n = read(fd, buf, sizeof(buf));

		test_assert(n == 21 && memcmp(buf, "Subject: two", 12) == 0);
		close(fd);
	}
	test_assert(quota_used(st, acct) == 41);
	files = count_blob_files(dir);
	test_assert(files == 2);

	/* Over quota, or no mailbox: no rows and no files. */
	test_assert(store_quota_set(st, "a@example.org", 61, &err) == 1);
	test_assert(store_msg_append(st, box, m, 2, uids, &uidvalidity, &err) == STORE_OVER_QUOTA);
	test_assert(store_msg_append(st, 4242, m, 1, uids, &uidvalidity, &err) == 0);
	test_assert(count_blob_files(dir) == files);
	test_assert(store_mailbox_get(st, acct, "Box", &mb) == 1);
	test_assert(mb.messages == 2 && mb.uidnext == 3);
	/* Exactly up to the limit is fine. */
	test_assert(store_msg_append(st, box, m, 1, uids, &uidvalidity, &err) == 1 && uids[0] == 3);
	test_assert(store_quota_full(st, acct, &err) == 1);
	test_assert(store_msg_append(st, box, &m[2], 1, uids, &uidvalidity, &err) ==
		    STORE_OVER_QUOTA);
	teardown(&st, dir);
	test_end();
}

/* An SQLite store as it was before the zone was kept: the column
 * dropped and the version set back one step. */
static void
store_zone_unmigrate(const char *dir)
{
	char path[512], sql[128];
	sqlite3 *db;

	snprintf(path, sizeof(path), "%s/youju.db", dir);
	snprintf(sql, sizeof(sql),
		 "ALTER TABLE messages DROP COLUMN internal_zone; PRAGMA user_version = %d;",
		 STORE_SQLITE_STEPS - 1);
	test_assert(sqlite3_open(path, &db) == SQLITE_OK);
	test_assert(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(db);
}

static void
test_store_internal_zone(void)
{
	static const char *const addrs[] = { "a@example.org" };
	const struct store_append_msg m[2] = {
		{ .data = "Subject: z\r\n\r\nz\r\n", .len = 17, .internal_date = 1174770000,
		  .internal_zone = -270 },
		{ .data = "Subject: y\r\n\r\ny\r\n", .len = 17, .internal_date = 1174770000,
		  .internal_zone = STORE_ZONE_MAX + 1 },
	};
	const struct store_uid_range all = { 1, 2 };
	const struct store_uidset set = { &all, 1 };
	struct store_copy_result res;
	struct store_msg msg;
	struct store *st;
	struct yj_err err;
	char dir[256];
	uint32_t uids[2], uidvalidity;
	int64_t acct, inbox, archive, trash;

	test_begin("store internal zone: kept by append, copy and move; old rows UTC");
	st = setup(dir, sizeof(dir));
	acct = add_accounts(st, "example.org", addrs, 1);
	inbox = inbox_id(st, acct);
	archive = mailbox_id(st, acct, "Archive");
	trash = mailbox_id(st, acct, "Trash");
	test_assert(store_msg_append(st, inbox, m, 2, uids, &uidvalidity, &err) == 1);
	test_assert(store_msg_get(st, inbox, 1, &msg) == 1 && msg.internal_zone == -270);
	/* Out of what "+hhmm" can say: UTC. */
	test_assert(store_msg_get(st, inbox, 2, &msg) == 1 && msg.internal_zone == 0);
	test_assert(store_msg_copy(st, inbox, archive, &set, false, &res, &err) == 1);
	free(res.map);
	test_assert(store_msg_get(st, archive, 1, &msg) == 1 && msg.internal_zone == -270);
	test_assert(msg.internal_date == 1174770000);
	test_assert(store_msg_copy(st, archive, trash, &set, true, &res, &err) == 1);
	free(res.map);
	test_assert(store_msg_get(st, trash, 1, &msg) == 1 && msg.internal_zone == -270);
	if (pg_base == NULL) {
		store_close(&st);
		store_shutdown();	/* its shared connections too */
		store_zone_unmigrate(dir);
		test_assert(store_open(dir, &st, &err) == 1);
		test_assert(store_msg_get(st, trash, 1, &msg) == 1 && msg.internal_zone == 0);
		test_assert(msg.internal_date == 1174770000);
	}
	teardown(&st, dir);
	test_end();
}

int
main(void)
{
	static void (*const tests[])(void) = {
		test_store_add_flags,
		test_store_create_open,
		test_store_domains,
		test_store_accounts,
		test_store_aliases,
		test_store_senders,
		test_store_deliver_shared_blob,
		test_store_deliver_relay_and_errors,
		test_store_account_del_blobs,
		test_store_concurrent,
		test_store_mixed_batch,
		test_store_gc,
		test_store_flags_keywords,
		test_store_expunge_vanished,
		test_store_mailbox_ops,
		test_store_recent_floor,
		test_store_kept_subscriptions,
		test_store_internal_zone,
		test_store_flags_concurrent,
		test_store_writes_share_commits,
		test_store_notify_other_process,
		test_store_writer_timeout,
		test_store_queue_fields,
		test_store_queue_claims,
		test_store_queue_answers_concurrent,
		test_store_queue_claims_concurrent,
		test_store_summaries,
		test_store_msg_fetch,
		test_store_summary_cache,
		test_store_give_back_idle,
		test_store_view,
		test_store_search_text,
		test_store_queue_renew,
		test_store_queue_claims_one_domain,
		test_store_queue_flight,
		test_store_queue_settle,
		test_store_queue_notices_and_expiry,
		test_store_copy_round_trip,
		test_store_copy_move,
		test_store_append,
		test_store_pg_reconnects,
		test_store_dmarc,
		NULL,
	};

	pg_base = getenv("YOUJU_PG_DSN");
	printf("store driver: %s\n", pg_base != NULL ? "postgresql" : "sqlite");
	return test_run(tests);
}
