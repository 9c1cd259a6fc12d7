/* store_dmarc.c - DMARC results kept for aggregate reports (store.h). */
#include "store/store-private.h"

#include <stdio.h>
#include <string.h>

static int
store_dmarc_policy_put(struct store *st, const struct store_dmarc_policy *pol, int64_t now,
		       struct yj_err *err)
{
	static const char sql[] =
		"INSERT INTO dmarc_policies (domain, adkim, aspf, p, sp, pct, rua, updated)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
		" ON CONFLICT (domain) DO UPDATE SET adkim = ?2, aspf = ?3, p = ?4, sp = ?5,"
		" pct = ?6, rua = ?7, updated = ?8";
	struct store_q *stmt = store_stmt(st, sql, err);

	if (stmt == NULL)
		return -1;
	store_bind_text(stmt, 1, pol->domain);
	store_bind_text(stmt, 2, pol->adkim);
	store_bind_text(stmt, 3, pol->aspf);
	store_bind_text(stmt, 4, pol->p);
	store_bind_text(stmt, 5, pol->sp);
	store_bind_i64(stmt, 6, pol->pct);
	store_bind_text(stmt, 7, pol->rua);
	store_bind_i64(stmt, 8, now);
	return store_run(st, stmt, "dmarc policy", err);
}

static int
store_dmarc_row_put(struct store *st, const struct store_dmarc_row *r, int64_t now,
		    struct yj_err *err)
{
	static const char sql[] =
		"INSERT INTO dmarc_rows (day, policy_domain, source_ip, header_from, disposition,"
		" dkim_aligned, spf_aligned, override, dkim, spf_domain, spf_result, n, first_seen,"
		" last_seen) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 1, ?12, ?12)"
		" ON CONFLICT (policy_domain, day, source_ip, header_from, disposition,"
		" dkim_aligned, spf_aligned, override, dkim, spf_domain, spf_result)"
		" DO UPDATE SET n = dmarc_rows.n + 1, last_seen = ?12";
	struct store_q *stmt = store_stmt(st, sql, err);

	if (stmt == NULL)
		return -1;
	store_bind_i64(stmt, 1, r->day);
	store_bind_text(stmt, 2, r->policy_domain);
	store_bind_text(stmt, 3, r->source_ip);
	store_bind_text(stmt, 4, r->header_from);
	store_bind_text(stmt, 5, r->disposition);
	store_bind_i64(stmt, 6, r->dkim_aligned);
	store_bind_i64(stmt, 7, r->spf_aligned);
	store_bind_text(stmt, 8, r->override);
	store_bind_text(stmt, 9, r->dkim);
	store_bind_text(stmt, 10, r->spf_domain);
	store_bind_text(stmt, 11, r->spf_result);
	store_bind_i64(stmt, 12, now);
	return store_run(st, stmt, "dmarc row", err);
}

int
store_dmarc_put(struct store *st, const struct store_dmarc_policy *pol,
		const struct store_dmarc_row *row, int64_t now, struct yj_err *err)
{
	if (store_dmarc_policy_put(st, pol, now, err) < 0 ||
	    store_dmarc_row_put(st, row, now, err) < 0)
		return -1;
	return 1;
}

int
store_dmarc_record(struct store *st, const struct store_dmarc_policy *pol,
		   const struct store_dmarc_row *row, int64_t now, struct yj_err *err)
{
	if (store_begin(st, err) < 0)
		return -1;
	if (store_dmarc_put(st, pol, row, now, err) < 0) {
		store_rollback(st);
		return -1;
	}
	return store_commit(st, err);
}

int
store_dmarc_domains(struct store *st, int64_t before_day, store_dmarc_domain_cb *cb,
		    void *ctx, struct yj_err *err)
{
	static const char sql[] =
		"SELECT DISTINCT policy_domain FROM dmarc_rows WHERE day < ?1"
		" ORDER BY policy_domain";
	struct store_q *stmt = store_stmt(st, sql, err);
	char domain[256];
	int ret;

	if (stmt == NULL)
		return -1;
	store_bind_i64(stmt, 1, before_day);
	while ((ret = store_row(st, stmt, "dmarc domains", err)) == 1) {
		store_col_text(stmt, 0, domain, sizeof(domain));
		cb(ctx, domain);
	}
	return ret < 0 ? -1 : 1;
}

static void
store_dmarc_policy_read(struct store_q *stmt, void *out)
{
	struct store_dmarc_policy *pol = out;

	store_col_text(stmt, 0, pol->domain, sizeof(pol->domain));
	store_col_text(stmt, 1, pol->adkim, sizeof(pol->adkim));
	store_col_text(stmt, 2, pol->aspf, sizeof(pol->aspf));
	store_col_text(stmt, 3, pol->p, sizeof(pol->p));
	store_col_text(stmt, 4, pol->sp, sizeof(pol->sp));
	pol->pct = store_col_i64(stmt, 5);
	store_col_text(stmt, 6, pol->rua, sizeof(pol->rua));
}

static void
store_dmarc_row_read(struct store_q *stmt, struct store_dmarc_row *r)
{
	memset(r, 0, sizeof(*r));
	r->day = store_col_i64(stmt, 0);
	store_col_text(stmt, 1, r->policy_domain, sizeof(r->policy_domain));
	store_col_text(stmt, 2, r->source_ip, sizeof(r->source_ip));
	store_col_text(stmt, 3, r->header_from, sizeof(r->header_from));
	store_col_text(stmt, 4, r->disposition, sizeof(r->disposition));
	r->dkim_aligned = store_col_i64(stmt, 5) != 0;
	r->spf_aligned = store_col_i64(stmt, 6) != 0;
	store_col_text(stmt, 7, r->override, sizeof(r->override));
	store_col_text(stmt, 8, r->dkim, sizeof(r->dkim));
	store_col_text(stmt, 9, r->spf_domain, sizeof(r->spf_domain));
	store_col_text(stmt, 10, r->spf_result, sizeof(r->spf_result));
	r->count = store_col_i64(stmt, 11);
	r->first_seen = store_col_i64(stmt, 12);
	r->last_seen = store_col_i64(stmt, 13);
}

int
store_dmarc_rows(struct store *st, const char *domain, int64_t before_day,
		 struct store_dmarc_policy *pol, store_dmarc_row_cb *cb, void *ctx,
		 struct yj_err *err)
{
	static const char pol_sql[] =
		"SELECT domain, adkim, aspf, p, sp, pct, rua FROM dmarc_policies WHERE domain = ?1";
	static const char rows_sql[] =
		"SELECT day, policy_domain, source_ip, header_from, disposition, dkim_aligned,"
		" spf_aligned, override, dkim, spf_domain, spf_result, n, first_seen, last_seen"
		" FROM dmarc_rows WHERE policy_domain = ?1 AND day < ?2"
		" ORDER BY day, source_ip, header_from, disposition, dkim, spf_result";
	struct store_q *stmt = store_stmt(st, pol_sql, err);
	struct store_dmarc_row row;
	int ret;

	if (stmt == NULL)
		return -1;
	memset(pol, 0, sizeof(*pol));
	store_bind_text(stmt, 1, domain);
	ret = store_one(st, stmt, "dmarc policy", store_dmarc_policy_read, pol, err);
	if (ret <= 0)
		return ret;
	if ((stmt = store_stmt(st, rows_sql, err)) == NULL)
		return -1;
	store_bind_text(stmt, 1, domain);
	store_bind_i64(stmt, 2, before_day);
	while ((ret = store_row(st, stmt, "dmarc rows", err)) == 1) {
		store_dmarc_row_read(stmt, &row);
		cb(ctx, &row);
	}
	return ret < 0 ? -1 : 1;
}

int
store_dmarc_done(struct store *st, const char *domain, int64_t before_day,
		 const char *report_id, const char *rcpts, int64_t day, int64_t now,
		 struct yj_err *err)
{
	static const char del_sql[] =
		"DELETE FROM dmarc_rows WHERE policy_domain = ?1 AND day < ?2";
	static const char sent_sql[] =
		"INSERT INTO dmarc_sent (day, policy_domain, report_id, rcpts, created)"
		" VALUES (?1, ?2, ?3, ?4, ?5)";
	struct store_q *stmt;

	if (store_begin(st, err) < 0)
		return -1;
	if ((stmt = store_stmt(st, del_sql, err)) == NULL)
		goto fail;
	store_bind_text(stmt, 1, domain);
	store_bind_i64(stmt, 2, before_day);
	if (store_run(st, stmt, "dmarc done", err) < 0)
		goto fail;
	if (report_id != NULL) {
		if ((stmt = store_stmt(st, sent_sql, err)) == NULL)
			goto fail;
		store_bind_i64(stmt, 1, day);
		store_bind_text(stmt, 2, domain);
		store_bind_text(stmt, 3, report_id);
		store_bind_text(stmt, 4, rcpts != NULL ? rcpts : "");
		store_bind_i64(stmt, 5, now);
		if (store_run(st, stmt, "dmarc sent", err) < 0)
			goto fail;
	}
	return store_commit(st, err);
fail:
	store_rollback(st);
	return -1;
}

static void
store_dmarc_count_read(struct store_q *stmt, void *out)
{
	*(int64_t *)out = store_col_i64(stmt, 0);
}

int64_t
store_dmarc_sent_count(struct store *st, int64_t day, struct yj_err *err)
{
	static const char sql[] = "SELECT count(*) FROM dmarc_sent WHERE day = ?1";
	struct store_q *stmt = store_stmt(st, sql, err);
	int64_t n = 0;

	if (stmt == NULL)
		return -1;
	store_bind_i64(stmt, 1, day);
	return store_one(st, stmt, "dmarc sent count", store_dmarc_count_read, &n, err) < 0
		? -1 : n;
}
