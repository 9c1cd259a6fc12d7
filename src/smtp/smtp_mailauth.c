/* smtp_mailauth.c - SPF, DKIM, ARC and DMARC for inbound mail, DKIM
 * signing for outbound mail, in the SMTP server (smtp_mailauth.h). */
#include "smtp/smtp_mailauth.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "base/buf.h"
#include "base/log.h"
#include "mailauth/arc.h"
#include "mailauth/arc_aar.h"
#include "mailauth/dkim.h"
#include "mailauth/dkim_keys.h"
#include "mailauth/dmarc.h"
#include "mailauth/spf.h"
#include "mime/mime_addr.h"
#include "mime/mime_header.h"
#include "net/listen.h"
#include "store/store.h"
#include "smtp/smtp_session.h"

/* The header lines put in front of a message: one A-R field with up to
 * DKIM_SIGS_MAX signatures, Received-SPF:, or two DKIM signatures. The
 * store keeps at most 4 KiB of per-recipient lines in all. */
#define SMTP_MA_HEADERS_MAX 3072
#define SMTP_MA_ENTRY_MAX 1024

enum eoh_state { EOH_BOL, EOH_BOL_CR, EOH_MID, EOH_DONE };

struct smtp_ma {
	bool check;			/* inbound checks run */
	bool sign;			/* the sender may have its mail signed */
	struct spf_request req;
	struct spf_outcome spf, spf_helo;
	bool spf_helo_done;
	/* the header section, collected until its empty line */
	struct buf hdr;
	enum eoh_state eoh;
	bool hdr_over;			/* more than DKIM_HEADER_MAX */
	struct dkim_verifier *dkim;
	struct arc_verifier *arc;
	struct dkim_signer *signer;
	struct dkim_sign_key keys[2];
	char sel[2][DKIM_SELECTOR_MAX + 1];
	char sign_domain[DNS_NAME_MAX];	/* the keys' d=, kept for the log */
	int n_keys;
	struct buf out;			/* the header lines for the prefix */
	bool out_over;
	/* ARC sealing of mail an alias forwards to other domains */
	struct arc_sealer *sealer;
	struct dkim_sign_key seal_key;
	char seal_sel[2][DKIM_SELECTOR_MAX + 1];
	char seal_domain[DNS_NAME_MAX];
	struct buf queue_out;		/* the ARC set, then out; empty: as out */
	/* the DMARC result to count for reports, with the delivery */
	struct store_dmarc_policy *report_pol;
	struct store_dmarc_row *report_row;
	const char *mailbox;
};

/* ---- at MAIL ---- */

/* smtpd_reject_unknown_client: a client without a forward-confirmed
 * name is deferred or refused (450/550 4.7.25, as Gmail does). */
static int
smtp_ma_unknown_client(struct smtp_session *s)
{
	const char *policy = s->cfg->smtpd_reject_unknown_client;
	bool temporary;

	if (strcmp(policy, "no") == 0 || !s->cfg->smtpd_peername_lookup || s->ptr_status > 0)
		return 1;
	/* A lookup that failed for now may work later: never a hard no. */
	temporary = strcmp(policy, "defer") == 0 || s->ptr_status < 0;
	log_info("smtp: session=%s client=%s rejected: no verified reverse name", s->ctx->id,
		 s->conn->peer_ip);
	smtp_reply(s, "%s Client host rejected: cannot find your reverse hostname, [%s]",
		   temporary ? "450 4.7.25" : "550 5.7.25", s->conn->peer_ip);
	return 0;
}

static void
smtp_ma_spf(struct smtp_session *s, struct smtp_ma *ma)
{
	ma->req.ip = s->conn->peer_ip;
	ma->req.helo = s->helo;
	ma->req.mailfrom = s->tx->sender;
	ma->req.receiver = s->cfg->myhostname;
	ma->req.now = time(NULL);
	spf_check(ma_resolver_dns(), &ma->req, SPF_ID_MAILFROM, &ma->spf);
	/* The HELO identity on its own too (RFC 7208 2.3); for the null
	 * sender the check above already was the HELO one. */
	if (s->tx->sender[0] != '\0' && s->helo[0] != '\0') {
		spf_check(ma_resolver_dns(), &ma->req, SPF_ID_HELO, &ma->spf_helo);
		ma->spf_helo_done = true;
	}
}

/* Refuses MAIL for an SPF fail of o; returns 0 (replied). */
static int
smtp_ma_spf_refuse(struct smtp_session *s, const struct spf_outcome *o)
{
	bool helo = o->identity == SPF_ID_HELO;

	log_info("smtp: session=%s client=%s %s=%s rejected: SPF fail", s->ctx->id,
		 s->conn->peer_ip, helo ? "helo" : "from", o->domain);
	smtp_reply(s, "550 5.7.23 SPF check failed for %s%s%s%s", helo ? "HELO " : "", o->domain,
		   o->explanation[0] != '\0' ? ": " : "", o->explanation);
	return 0;
}

/* spf_fail_action for the MAIL FROM identity, spf_helo_fail_action for
 * the HELO one (which for the null sender is the same check, RFC 7208
 * 2.4). Returns 1 to go on, 0 if refused (replied). */
static int
smtp_ma_spf_policy(struct smtp_session *s, struct smtp_ma *ma)
{
	bool reject_from = strcmp(s->cfg->spf_fail_action, "reject") == 0;
	bool reject_helo = strcmp(s->cfg->spf_helo_fail_action, "reject") == 0;

	if (ma->spf.result == SPF_FAIL &&
	    (reject_from || (reject_helo && ma->spf.identity == SPF_ID_HELO)))
		return smtp_ma_spf_refuse(s, &ma->spf);
	if (ma->spf_helo_done && ma->spf_helo.result == SPF_FAIL && reject_helo)
		return smtp_ma_spf_refuse(s, &ma->spf_helo);
	return 1;
}

int
smtp_ma_mail(struct smtp_session *s)
{
	struct smtp_ma *ma = calloc(1, sizeof(*ma));

	if (ma == NULL)
		log_fatal("out of memory");
	s->tx->ma = ma;
	buf_init(&ma->hdr, DKIM_HEADER_MAX);
	buf_init(&ma->out, SMTP_MA_HEADERS_MAX);
	ma->check = s->role->greet_checks && !s->trusted && !s->authenticated;
	ma->sign = s->trusted || s->authenticated;
	if (!ma->check)
		return 1;
	if (smtp_ma_unknown_client(s) == 0)
		return 0;
	smtp_ma_spf(s, ma);
	return smtp_ma_spf_policy(s, ma);
}

/* ---- while the message streams ---- */

/* The From: domains of the header section, lower case, without
 * duplicates, at most max. */
static size_t
smtp_ma_from_domains(const struct buf *hdr, char (*out)[DNS_NAME_MAX], size_t max)
{
	struct mime_hdr_iter it;
	struct mime_field f;
	size_t n = 0;

	mime_hdr_iter_init(&it, hdr->data, 0, hdr->len);
	while (mime_hdr_next(&it, &f)) {
		struct mime_addr_list list = { NULL, 0 };

		if (!mime_field_is(hdr->data, &f, "From"))
			continue;
		(void)mime_addr_parse(hdr->data + f.value_off, f.value_len, &list);
		for (size_t i = 0; i < list.n && n < max; i++) {
			const struct buf *d = &list.v[i].domain;
			bool seen = false;

			if (list.v[i].kind != MIME_ADDR_MAILBOX || d->len == 0 ||
			    d->len >= DNS_NAME_MAX)
				continue;
			for (size_t j = 0; j < d->len; j++)
				out[n][j] = (char)((d->data[j] >= 'A' && d->data[j] <= 'Z')
						   ? d->data[j] + 32 : d->data[j]);
			out[n][d->len] = '\0';
			for (size_t j = 0; j < n && !seen; j++)
				seen = strcmp(out[j], out[n]) == 0;
			if (!seen)
				n++;
		}
		mime_addr_list_free(&list);
	}
	return n;
}

/* The signing keys for the message's From: domain, if it has any. */
static void
smtp_ma_signer_start(struct smtp_session *s, struct smtp_ma *ma)
{
	char from[1][DNS_NAME_MAX];
	struct dkim_sign_opts opts = { 0 };
	struct yj_err err;

	if (smtp_ma_from_domains(&ma->hdr, from, 1) == 0)
		return;
	memcpy(ma->sign_domain, from[0], sizeof(ma->sign_domain));
	ma->n_keys = dkim_keys_cached(s->cfg->data_dir, ma->sign_domain, ma->keys, ma->sel, &err);
	if (ma->n_keys < 0) {
		log_error("smtp: session=%s id=%s dkim keys of %s: %s", s->ctx->id, s->tx->id,
			  ma->sign_domain, err.msg);
		ma->n_keys = 0;
	}
	if (ma->n_keys == 0)
		return;
	opts.keys = ma->keys;
	opts.n_keys = (size_t)ma->n_keys;
	ma->signer = dkim_signer_new(&opts, ma->hdr.data, ma->hdr.len);
}

/* Mail an alias forwards to other domains is sealed (RFC 8617) with a
 * key of arc_seal_domain, else of the alias's own domain; a domain
 * without an RSA key (ARC defines only rsa-sha256) forwards unsealed. */
static void
smtp_ma_sealer_start(struct smtp_session *s, struct smtp_ma *ma)
{
	const char *domain = s->cfg->arc_seal_domain[0] != '\0' ? s->cfg->arc_seal_domain
								 : s->tx->forward_domain;
	struct dkim_sign_key keys[2];
	struct arc_seal_opts opts = { .authres = "", .cv = ARC_CV_NONE };
	struct yj_err err;
	int n;

	if (domain[0] == '\0')
		return;
	snprintf(ma->seal_domain, sizeof(ma->seal_domain), "%s", domain);
	n = dkim_keys_cached(s->cfg->data_dir, ma->seal_domain, keys, ma->seal_sel, &err);
	if (n < 0)
		log_error("smtp: session=%s id=%s arc keys of %s: %s", s->ctx->id, s->tx->id,
			  ma->seal_domain, err.msg);
	for (int i = 0; i < n; i++) {
		if (ma->seal_key.pkey == NULL && EVP_PKEY_get_base_id(keys[i].pkey) == EVP_PKEY_RSA)
			ma->seal_key = keys[i];
		else
			EVP_PKEY_free(keys[i].pkey);
	}
	if (ma->seal_key.pkey == NULL)
		return;
	opts.domain = ma->seal_key.domain;
	opts.selector = ma->seal_key.selector;
	opts.pkey = ma->seal_key.pkey;
	ma->sealer = arc_sealer_new(&opts, ma->hdr.data != NULL ? ma->hdr.data : "", ma->hdr.len);
}

/* The header section is complete: starts what hashes the body. */
static void
smtp_ma_headers_done(struct smtp_session *s, struct smtp_ma *ma)
{
	struct dkim_verify_opts vopts = { 0 };

	if (ma->hdr_over) {
		buf_reset(&ma->hdr);
		return;
	}
	if (ma->check) {
		const char *h = ma->hdr.data != NULL ? ma->hdr.data : "";

		ma->dkim = dkim_verifier_new(&vopts, h, ma->hdr.len);
		ma->arc = arc_verifier_new(&vopts, h, ma->hdr.len);
		if (s->tx->n_relay > 0)
			smtp_ma_sealer_start(s, ma);
	} else if (ma->sign) {
		smtp_ma_signer_start(s, ma);
	}
}

static void
smtp_ma_body(struct smtp_ma *ma, const char *p, size_t n)
{
	if (n == 0)
		return;
	if (ma->dkim != NULL)
		dkim_verifier_body(ma->dkim, p, n);
	if (ma->arc != NULL)
		arc_verifier_body(ma->arc, p, n);
	if (ma->signer != NULL)
		dkim_signer_body(ma->signer, p, n);
	if (ma->sealer != NULL)
		arc_sealer_body(ma->sealer, p, n);
}

/* Collects header bytes up to the empty line; returns how many of p
 * belonged to the header section (its empty line included). */
static size_t
smtp_ma_collect(struct smtp_ma *ma, const char *p, size_t n)
{
	size_t i = 0;

	while (i < n && ma->eoh != EOH_DONE) {
		char c = p[i++];

		if (c == '\n')
			ma->eoh = ma->eoh == EOH_MID ? EOH_BOL : EOH_DONE;
		else if (c == '\r' && ma->eoh == EOH_BOL)
			ma->eoh = EOH_BOL_CR;
		else if (c != '\r')
			ma->eoh = EOH_MID;
	}
	if (!ma->hdr_over && buf_append(&ma->hdr, p, i) < 0)
		ma->hdr_over = true;
	if (ma->eoh == EOH_DONE && !ma->hdr_over) {
		/* The empty line is no part of what DKIM takes. */
		size_t len = ma->hdr.len;

		if (len >= 2 && ma->hdr.data[len - 2] == '\r')
			ma->hdr.len -= 2;
		else
			ma->hdr.len -= 1;
	}
	return i;
}

void
smtp_ma_data(struct smtp_session *s, const void *p, size_t n)
{
	struct smtp_ma *ma = s->tx->ma;
	size_t used;

	if (ma == NULL || (!ma->check && !ma->sign))
		return;
	if (ma->eoh == EOH_DONE) {
		smtp_ma_body(ma, p, n);
		return;
	}
	used = smtp_ma_collect(ma, p, n);
	if (ma->eoh == EOH_DONE) {
		smtp_ma_headers_done(s, ma);
		smtp_ma_body(ma, (const char *)p + used, n - used);
	}
}

/* ---- at the end of the data ---- */

/* Appends to the header lines; what does not fit is left out (and
 * logged once), never cut in the middle. */
static void YJ_PRINTF(2, 3)
smtp_ma_out(struct smtp_ma *ma, const char *fmt, ...)
{
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = buf_vprintf(&ma->out, fmt, ap);
	va_end(ap);
	if (ret < 0 && !ma->out_over) {
		ma->out_over = true;
		log_error("smtp: authentication header lines too long, some left out");
	}
}

/* Appends one "; method=result ..." entry; an entry that does not fit
 * is left out rather than cut. */
static void
smtp_ma_entry(struct smtp_ma *ma, const char *entry)
{
	if (entry[0] != '\0')
		smtp_ma_out(ma, ";\r\n\t%s", entry);
}

/* One signature's result; a property whose value is unknown (a
 * signature too broken to parse) is left out, as an empty value is not
 * valid syntax. */
static void
smtp_ma_dkim_entry(struct smtp_ma *ma, const struct dkim_result *r)
{
	const char *names[] = { "header.d", "header.s", "header.b" };
	const char *values[] = { r->d, r->s, r->b_prefix };
	char e[SMTP_MA_ENTRY_MAX];
	size_t len;
	int n;

	n = snprintf(e, sizeof(e), "dkim=%s%s%s%s", dkim_status_name(r->status),
		     r->reason[0] != '\0' ? " (" : "", r->reason, r->reason[0] != '\0' ? ")" : "");
	for (size_t i = 0; i < 3 && n > 0 && (size_t)n < sizeof(e); i++) {
		len = (size_t)n;
		if (values[i][0] != '\0')
			n += snprintf(e + len, sizeof(e) - len, " %s=%s", names[i], values[i]);
	}
	if (n > 0 && (size_t)n < sizeof(e))
		smtp_ma_entry(ma, e);
}

/* Is sealer (the latest ARC sealer's d=) in arc_trusted_sealers? */
static bool
smtp_ma_sealer_trusted(const struct smtp_session *s, const char *sealer)
{
	for (const char *p = s->cfg->arc_trusted_sealers; *p != '\0';) {
		size_t len;

		p += strspn(p, " ,");
		len = strcspn(p, " ,");
		if (len > 0 && len == strlen(sealer) && strncasecmp(p, sealer, len) == 0)
			return true;
		p += len;
	}
	return false;
}

/* A trusted sealer vouches for the message (RFC 8617 7.2) when the
 * results it sealed (its ARC-Authentication-Results) show DMARC passing
 * for the From domain, or SPF or DKIM passing for a domain aligned with
 * it (relaxed). The result that vouched goes into why. */
static bool
smtp_ma_sealer_vouches(const struct smtp_ma *ma, const struct arc_result *arc,
		       const char *from, char *why, size_t whylen)
{
	struct arc_aar aar;

	if (from[0] == '\0' || ma->hdr.data == NULL ||
	    arc_aar_find(ma->hdr.data, ma->hdr.len, arc->instances, &aar) != 1)
		return false;
	for (size_t i = 0; i < aar.n; i++) {
		const struct arc_aar_result *r = &aar.r[i];
		bool dmarc = strcmp(r->method, "dmarc") == 0;

		if (strcmp(r->result, "pass") != 0 || r->domain[0] == '\0' ||
		    (!dmarc && strcmp(r->method, "spf") != 0 && strcmp(r->method, "dkim") != 0))
			continue;
		if (dmarc ? strcmp(r->domain, from) == 0
			  : dmarc_aligned(r->domain, from, DMARC_RELAXED)) {
			snprintf(why, whylen, "%s i=%u %s=pass %s", arc->d, arc->instances,
				 r->method, r->domain);
			return true;
		}
	}
	return false;
}

/* Is the DMARC action to be waived for this message? Returns the
 * reason (RFC 7489's override types), or NULL; why gets the trusted
 * sealer's result that vouched, if that was the reason. */
static const char *
smtp_ma_override(struct smtp_session *s, const struct smtp_ma *ma, const struct arc_result *arc,
		 const char *from, char *why, size_t whylen)
{
	struct yj_err err;

	why[0] = '\0';
	if (s->cfg->dmarc_trusted_forwarders[0] != '\0' &&
	    cidr_list_match(s->cfg->dmarc_trusted_forwarders, s->conn->peer_ip, &err) > 0)
		return "trusted_forwarder";
	if (arc->cv != ARC_CV_PASS || arc->d[0] == '\0' || !smtp_ma_sealer_trusted(s, arc->d))
		return NULL;
	/* A sealer the admin trusts vouches for what it saw before it
	 * changed the message (a mailing list, a forwarder) -- if what it
	 * saw passed. */
	return smtp_ma_sealer_vouches(ma, arc, from, why, whylen) ? "forwarded" : NULL;
}

static unsigned
smtp_ma_pct_roll(void)
{
	unsigned char b[2] = { 0, 0 };

	if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
		return 0;
	return (unsigned)((b[0] << 8) | b[1]) % 100;
}

static void
smtp_ma_dmarc(struct smtp_session *s, struct smtp_ma *ma, const struct dkim_result *dk,
	      size_t n_dk, struct dmarc_outcome *o)
{
	char from[DMARC_FROM_MAX][DNS_NAME_MAX];
	const char *fromp[DMARC_FROM_MAX];
	struct dmarc_dkim dd[DKIM_SIGS_MAX];
	struct dmarc_input in = { 0 };
	size_t n_from = smtp_ma_from_domains(&ma->hdr, from, DMARC_FROM_MAX);

	for (size_t i = 0; i < n_from; i++)
		fromp[i] = from[i];
	for (size_t i = 0; i < n_dk; i++) {
		dd[i].domain = dk[i].d;
		dd[i].pass = dk[i].status == DKIM_PASS;
	}
	in.from = fromp;
	in.n_from = n_from;
	in.spf = ma->spf.result;
	in.spf_domain = ma->spf.domain;
	in.dkim = dd;
	in.n_dkim = n_dk;
	in.pct_roll = smtp_ma_pct_roll();
	dmarc_evaluate(ma_resolver_dns(), &in, o);
}

/* Seals the forwarded copies: the ARC set carries our
 * Authentication-Results (out[ar_off, ar_end), the value without its
 * CRLF) and the chain status we found. A failure leaves the copies
 * unsealed; they are still forwarded. */
static void
smtp_ma_seal_end(struct smtp_session *s, struct smtp_ma *ma, enum arc_cv cv, size_t ar_off,
		 size_t ar_end)
{
	char *authres;
	struct yj_err err;

	if (ma->sealer == NULL || ma->out_over)
		return;
	authres = strndup(ma->out.data + ar_off, ar_end - ar_off);
	if (authres == NULL)
		log_fatal("out of memory");
	arc_sealer_set_result(ma->sealer, authres, cv);
	buf_init(&ma->queue_out, STORE_QUEUE_HEADER_MAX);
	if (arc_sealer_finish(ma->sealer, &ma->queue_out, &err) < 0 ||
	    buf_append(&ma->queue_out, ma->out.data, ma->out.len) < 0) {
		log_error("smtp: session=%s id=%s arc seal: %s", s->ctx->id, s->tx->id,
			  ma->queue_out.len == 0 ? err.msg : "header lines too long");
		buf_reset(&ma->queue_out);
	} else {
		log_info("smtp: session=%s id=%s arc=sealed d=%s s=%s cv=%s", s->ctx->id, s->tx->id,
			 ma->seal_key.domain, ma->seal_key.selector, arc_cv_name(cv));
	}
	free(authres);
}

/* What was done with the message, as a report's disposition. */
static const char *
smtp_ma_disposition(const struct smtp_session *s, const struct dmarc_outcome *dm,
		    const char *override)
{
	if (dm->result != DMARC_RES_FAIL || !s->cfg->dmarc_enforce || override != NULL)
		return "none";
	return dmarc_policy_name(dm->policy);
}

/* Why the requested policy was not applied (RFC 7489 appendix C's
 * PolicyOverrideType), "" if it was. */
static const char *
smtp_ma_override_type(const struct smtp_session *s, const struct dmarc_outcome *dm,
		      const char *override)
{
	if (dm->result != DMARC_RES_FAIL || dm->requested == DMARC_P_NONE)
		return "";
	if (override != NULL)
		return override;
	if (!s->cfg->dmarc_enforce)
		return "local_policy";
	return dm->sampled_out ? "sampled_out" : "";
}

static void
smtp_ma_report_policy(const struct dmarc_outcome *dm, struct store_dmarc_policy *pol)
{
	const struct dmarc_record *rec = &dm->record;
	size_t len = 0;

	snprintf(pol->domain, sizeof(pol->domain), "%s", dm->policy_domain);
	snprintf(pol->adkim, sizeof(pol->adkim), "%s", rec->adkim == DMARC_STRICT ? "s" : "r");
	snprintf(pol->aspf, sizeof(pol->aspf), "%s", rec->aspf == DMARC_STRICT ? "s" : "r");
	snprintf(pol->p, sizeof(pol->p), "%s", dmarc_policy_name(rec->p));
	snprintf(pol->sp, sizeof(pol->sp), "%s", dmarc_policy_name(rec->sp));
	pol->pct = rec->pct;
	pol->rua[0] = '\0';
	for (size_t i = 0; i < rec->n_rua; i++) {
		int n = snprintf(pol->rua + len, sizeof(pol->rua) - len, "%s%s!%llu",
				 len > 0 ? " " : "", rec->rua[i].uri, rec->rua[i].max_size);

		if (n < 0 || (size_t)n >= sizeof(pol->rua) - len) {
			pol->rua[len] = '\0';
			break;
		}
		len += (size_t)n;
	}
}

/* The DMARC result to count for the aggregate report its policy domain
 * asked for (rua=), into ma: the delivery commits it with the message. */
static void
smtp_ma_report_prepare(struct smtp_session *s, struct smtp_ma *ma,
		       const struct dmarc_outcome *dm, const struct dkim_result *dk, size_t n_dk,
		       const char *override)
{
	struct store_dmarc_row *row;
	size_t len = 0;

	if (s->cfg->dmarc_report_interval == 0 || !dm->has_record || dm->record.n_rua == 0 ||
	    (dm->result != DMARC_RES_PASS && dm->result != DMARC_RES_FAIL))
		return;
	ma->report_pol = calloc(1, sizeof(*ma->report_pol));
	ma->report_row = row = calloc(1, sizeof(*ma->report_row));
	if (ma->report_pol == NULL || row == NULL)
		log_fatal("out of memory");
	smtp_ma_report_policy(dm, ma->report_pol);
	row->day = (int64_t)(time(NULL) / 86400);
	snprintf(row->policy_domain, sizeof(row->policy_domain), "%s", dm->policy_domain);
	snprintf(row->source_ip, sizeof(row->source_ip), "%s", s->conn->peer_ip);
	snprintf(row->header_from, sizeof(row->header_from), "%s", dm->from_domain);
	snprintf(row->disposition, sizeof(row->disposition), "%s",
		 smtp_ma_disposition(s, dm, override));
	row->dkim_aligned = dm->dkim_aligned;
	row->spf_aligned = dm->spf_aligned;
	snprintf(row->override, sizeof(row->override), "%s", smtp_ma_override_type(s, dm, override));
	for (size_t i = 0; i < n_dk; i++) {
		int n;

		if (dk[i].d[0] == '\0')
			continue;
		n = snprintf(row->dkim + len, sizeof(row->dkim) - len, "%s %s %s\n", dk[i].d,
			     dk[i].s[0] != '\0' ? dk[i].s : "-", dkim_status_name(dk[i].status));
		if (n < 0 || (size_t)n >= sizeof(row->dkim) - len) {
			row->dkim[len] = '\0';
			break;
		}
		len += (size_t)n;
	}
	snprintf(row->spf_domain, sizeof(row->spf_domain), "%s", ma->spf.domain);
	snprintf(row->spf_result, sizeof(row->spf_result), "%s", spf_result_name(ma->spf.result));
}

/* A refused message is counted too (disposition reject), on its own as
 * nothing is delivered; a failure is logged, the reply stands. */
static void
smtp_ma_report_refused(struct smtp_session *s, struct smtp_ma *ma)
{
	struct yj_err err;

	if (ma->report_row == NULL)
		return;
	if (smtp_store(s) < 0)
		yj_err_set(&err, "no store");
	else if (store_dmarc_record(s->st, ma->report_pol, ma->report_row, (int64_t)time(NULL),
				    &err) == 1)
		return;
	log_error("smtp: session=%s id=%s dmarc report count: %s", s->ctx->id, s->tx->id,
		  err.msg);
}

/* Builds Authentication-Results: and Received-SPF: and decides. */
static int
smtp_ma_check_end(struct smtp_session *s, struct smtp_ma *ma)
{
	struct dkim_result dk[DKIM_SIGS_MAX];
	struct arc_result arc = { .cv = ARC_CV_NONE, .reason = "" };
	struct dmarc_outcome dm;
	char e[SMTP_MA_ENTRY_MAX], spf_hdr[SPF_HEADER_MAX], why[SMTP_MA_ENTRY_MAX / 2];
	const char *override = NULL;
	size_t n_dk = 0, ar_off, ar_end;

	if (ma->dkim != NULL)
		n_dk = dkim_verifier_finish(ma->dkim, ma_resolver_dns(), dk, DKIM_SIGS_MAX);
	if (ma->arc != NULL)
		arc_verifier_finish(ma->arc, ma_resolver_dns(), &arc);
	smtp_ma_dmarc(s, ma, dk, n_dk, &dm);

	smtp_ma_out(ma, "Authentication-Results: ");
	ar_off = ma->out.len;
	smtp_ma_out(ma, "%s", s->cfg->myhostname);
	if (spf_auth_results(&ma->req, &ma->spf, e, sizeof(e)) > 0)
		smtp_ma_entry(ma, e);
	if (ma->spf_helo_done && spf_auth_results(&ma->req, &ma->spf_helo, e, sizeof(e)) > 0)
		smtp_ma_entry(ma, e);
	if (ma->hdr_over)
		smtp_ma_entry(ma, "dkim=permerror (header section too large)");
	else if (n_dk == 0)
		smtp_ma_entry(ma, "dkim=none");
	for (size_t i = 0; i < n_dk; i++)
		smtp_ma_dkim_entry(ma, &dk[i]);
	why[0] = '\0';
	if (dm.result == DMARC_RES_FAIL && dm.policy != DMARC_P_NONE)
		override = smtp_ma_override(s, ma, &arc, dm.from_domain, why, sizeof(why));
	if (dmarc_auth_results(&dm, e, sizeof(e)) > 0) {
		size_t len = strlen(e);

		if (override != NULL)
			snprintf(e + len, sizeof(e) - len, " (override %s)", override);
		smtp_ma_entry(ma, e);
	}
	/* The trusted sealer's result that waived the DMARC action goes
	 * with arc's result, as a comment (RFC 8601 has no property for it). */
	snprintf(e, sizeof(e), "arc=%s%s%s%s%s%s%s", arc_cv_name(arc.cv),
		 arc.reason[0] != '\0' ? " (" : "", arc.reason, arc.reason[0] != '\0' ? ")" : "",
		 why[0] != '\0' ? " (trusted sealer " : "", why, why[0] != '\0' ? ")" : "");
	if (arc.cv != ARC_CV_NONE) {
		size_t len = strlen(e);

		snprintf(e + len, sizeof(e) - len, " header.oldest-pass=%u smtp.remote-ip=%s",
			 arc.oldest_pass, s->conn->peer_ip);
	}
	smtp_ma_entry(ma, e);
	ar_end = ma->out.len;
	smtp_ma_out(ma, "\r\n");
	if (spf_received_header(&ma->req, &ma->spf, spf_hdr, sizeof(spf_hdr)) > 0)
		smtp_ma_out(ma, "%s\r\n", spf_hdr);

	log_info("smtp: session=%s id=%s spf=%s dkim=%zu dmarc=%s policy=%s%s%s arc=%s",
		 s->ctx->id, s->tx->id, spf_result_name(ma->spf.result), n_dk,
		 dmarc_result_name(dm.result), dmarc_policy_name(dm.policy),
		 override != NULL ? " override=" : "", override != NULL ? override : "",
		 arc_cv_name(arc.cv));
	smtp_ma_seal_end(s, ma, arc.cv, ar_off, ar_end);
	smtp_ma_report_prepare(s, ma, &dm, dk, n_dk, override);
	if (dm.result == DMARC_RES_TEMPERROR && strcmp(s->cfg->dmarc_temperror_action, "defer") == 0 &&
	    smtp_ma_override(s, ma, &arc, dm.from_domain, why, sizeof(why)) == NULL) {
		log_info("smtp: session=%s id=%s result=deferred: DMARC temperror for %s",
			 s->ctx->id, s->tx->id, dm.from_domain);
		smtp_reply(s, "451 4.7.5 Temporary DMARC policy lookup failure for %s, try again "
			   "later", dm.from_domain);
		return 0;
	}
	if (dm.result != DMARC_RES_FAIL || !s->cfg->dmarc_enforce || override != NULL)
		return 1;
	if (dm.policy == DMARC_P_REJECT) {
		log_info("smtp: session=%s id=%s result=rejected: DMARC policy of %s", s->ctx->id,
			 s->tx->id, dm.from_domain);
		smtp_reply(s, "550 5.7.1 Email rejected per DMARC policy for %s", dm.from_domain);
		smtp_ma_report_refused(s, ma);
		return 0;
	}
	if (dm.policy == DMARC_P_QUARANTINE)
		ma->mailbox = STORE_MAILBOX_JUNK;
	return 1;
}

/* The DKIM signatures for a message from one of our domains. */
static void
smtp_ma_sign_end(struct smtp_session *s, struct smtp_ma *ma)
{
	struct buf sig;
	struct yj_err err;

	if (ma->signer == NULL)
		return;
	buf_init(&sig, SMTP_MA_HEADERS_MAX);
	if (dkim_signer_finish(ma->signer, &sig, &err) < 0)
		log_error("smtp: session=%s id=%s dkim sign: %s", s->ctx->id, s->tx->id, err.msg);
	else if (buf_append(&ma->out, sig.data, sig.len) < 0)
		log_error("smtp: session=%s id=%s dkim sign: signatures too long", s->ctx->id,
			  s->tx->id);
	else
		log_info("smtp: session=%s id=%s dkim=signed d=%s s=%s%s%s", s->ctx->id,
			 s->tx->id, ma->keys[0].domain, ma->keys[0].selector,
			 ma->n_keys > 1 ? "," : "", ma->n_keys > 1 ? ma->keys[1].selector : "");
	buf_free(&sig);
}

int
smtp_ma_end(struct smtp_session *s)
{
	struct smtp_ma *ma = s->tx->ma;

	if (ma == NULL)
		return 1;
	if (ma->eoh != EOH_DONE && (ma->check || ma->sign)) {
		/* A message with no body: all of it was header. */
		ma->eoh = EOH_DONE;
		smtp_ma_headers_done(s, ma);
	}
	if (ma->check)
		return smtp_ma_check_end(s, ma);
	if (ma->sign)
		smtp_ma_sign_end(s, ma);
	return 1;
}

const char *
smtp_ma_headers(const struct smtp_session *s)
{
	const struct smtp_ma *ma = s->tx->ma;

	return ma != NULL && ma->out.len > 0 ? ma->out.data : "";
}

const char *
smtp_ma_queue_headers(const struct smtp_session *s)
{
	const struct smtp_ma *ma = s->tx->ma;

	return ma != NULL && ma->queue_out.len > 0 ? ma->queue_out.data : smtp_ma_headers(s);
}

void
smtp_ma_report_count(const struct smtp_session *s, const struct store_dmarc_policy **pol,
		     const struct store_dmarc_row **row)
{
	const struct smtp_ma *ma = s->tx->ma;

	*pol = ma != NULL ? ma->report_pol : NULL;
	*row = ma != NULL ? ma->report_row : NULL;
}

const char *
smtp_ma_mailbox(const struct smtp_session *s)
{
	return s->tx->ma != NULL ? s->tx->ma->mailbox : NULL;
}

void
smtp_ma_free(struct smtp_ma *ma)
{
	if (ma == NULL)
		return;
	dkim_verifier_free(ma->dkim);
	arc_verifier_free(ma->arc);
	dkim_signer_free(ma->signer);
	arc_sealer_free(ma->sealer);
	for (int i = 0; i < ma->n_keys; i++)
		EVP_PKEY_free(ma->keys[i].pkey);
	EVP_PKEY_free(ma->seal_key.pkey);
	buf_free(&ma->hdr);
	buf_free(&ma->out);
	buf_free(&ma->queue_out);
	free(ma->report_pol);
	free(ma->report_row);
	free(ma);
}
