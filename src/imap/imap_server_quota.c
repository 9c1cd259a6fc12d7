/* imap_server_quota.c - QUOTA (RFC 9208) with the STORAGE resource:
 * GETQUOTAROOT, GETQUOTA and SETQUOTA.
 *
 * An account has at most one quota, set by the administrator (`youju
 * account quota`); its root is "" and covers all of the account's
 * mailboxes. Without a limit there is no quota root at all. Usage and
 * limit are in units of 1024 octets (RFC 9208 5.1), both rounded up: a
 * limit under 1 KiB is not 0 (which would say no storage at all), and
 * usage at the limit shows as the limit. */
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "imap/imap_session.h"
#include "imap/imap_write.h"

#define IMAP_QUOTA_ROOT ""

/* 1 the account has a limit (q filled), 0 none, -1 error (replied). */
static int
quota_load(struct imap_session *s, struct store_quota *q)
{
	struct yj_err err;
	int ret = store_quota_get(s->store, s->account.id, q, &err);

	if (ret < 0) {
		imap_tagged(s, "NO [UNAVAILABLE] %s", err.msg);
		return -1;
	}
	return ret == 1 && q->limit != STORE_QUOTA_NONE ? 1 : 0;
}

static void
quota_response(struct imap_session *s, const struct store_quota *q)
{
	imap_printf(s, "* QUOTA \"%s\" (STORAGE %llu %llu)", IMAP_QUOTA_ROOT,
		    (unsigned long long)((q->used + 1023) / 1024),
		    (unsigned long long)(((uint64_t)q->limit + 1023) / 1024));
}

int
imap_cmd_getquotaroot(struct imap_session *s, struct imap_cmd *cmd)
{
	struct store_mailbox mb;
	struct store_quota q;
	struct buf b;
	int ret;

	if (imap_mailbox_lookup(s, cmd->mailbox, &mb) != 1) {
		imap_tagged(s, "NO [NONEXISTENT] No such mailbox");
		return 1;
	}
	if ((ret = quota_load(s, &q)) < 0)
		return 1;
	buf_init(&b, 8192);
	if (buf_append_str(&b, "* QUOTAROOT ") > 0 && imap_write_mailbox(&b, mb.name, s->utf8) > 0 &&
	    (ret == 0 || buf_append_str(&b, " \"" IMAP_QUOTA_ROOT "\"") > 0) &&
	    buf_append_str(&b, "\r\n") > 0)
		imap_send_buf(s, &b);
	buf_free(&b);
	if (ret == 1)
		quota_response(s, &q);
	imap_tagged(s, "OK GETQUOTAROOT completed");
	return 1;
}

int
imap_cmd_getquota(struct imap_session *s, struct imap_cmd *cmd)
{
	struct store_quota q;
	int ret;

	if (strcmp(cmd->quota_root, IMAP_QUOTA_ROOT) != 0) {
		imap_tagged(s, "NO [NONEXISTENT] No such quota root");
		return 1;
	}
	if ((ret = quota_load(s, &q)) < 0)
		return 1;
	if (ret == 0) {
		imap_tagged(s, "NO [NONEXISTENT] No quota for this account");
		return 1;
	}
	quota_response(s, &q);
	imap_tagged(s, "OK GETQUOTA completed");
	return 1;
}

/* QUOTASET is not announced: limits are the administrator's. */
int
imap_cmd_setquota(struct imap_session *s, struct imap_cmd *cmd)
{
	imap_tagged(s, "NO [NOPERM] Quotas are set by the administrator");
	return 1;
}
