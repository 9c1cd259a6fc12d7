/* imap_server_caps.c - the extensions announced after the base
 * capabilities, and those an account has switched off.
 *
 * An account's `imap_disable` setting (`youju account set`) names
 * capabilities its client breaks on. After login they are left out of
 * CAPABILITY, ENABLE ignores them, and the commands that belong to them
 * are refused as unknown. Never chosen from what the client says about
 * itself in ID (RFC 2971 3.1 forbids that).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/log.h"
#include "imap/imap_session.h"

struct imap_cap {
	const char *name;
	enum imap_cmd_name cmd;		/* a command that comes with it, or
					 * IMAP_CMD_COUNT */
};

/* In the order announced. UIDONLY is never offered: Outlook enables it
 * and then sends sequence numbers anyway. */
static const struct imap_cap imap_caps[] = {
	{ "LITERAL+", IMAP_CMD_COUNT },
	{ "ID", IMAP_CMD_ID },
	{ "ENABLE", IMAP_CMD_ENABLE },
	{ "IDLE", IMAP_CMD_IDLE },
	{ "NAMESPACE", IMAP_CMD_NAMESPACE },
	{ "UNSELECT", IMAP_CMD_UNSELECT },
	{ "UIDPLUS", IMAP_CMD_COUNT },
	{ "MOVE", IMAP_CMD_MOVE },
	{ "CHILDREN", IMAP_CMD_COUNT },
	{ "SPECIAL-USE", IMAP_CMD_COUNT },
	{ "LIST-EXTENDED", IMAP_CMD_COUNT },
	{ "LIST-STATUS", IMAP_CMD_COUNT },
	{ "CONDSTORE", IMAP_CMD_COUNT },
	{ "QRESYNC", IMAP_CMD_COUNT },
	{ "UTF8=ACCEPT", IMAP_CMD_COUNT },
	{ "ESEARCH", IMAP_CMD_COUNT },
	{ "STATUS=SIZE", IMAP_CMD_COUNT },
	{ "SEARCHRES", IMAP_CMD_COUNT },
	{ "SORT", IMAP_CMD_SORT },
	{ "SORT=DISPLAY", IMAP_CMD_COUNT },
	/* THREAD stays accepted: a client does not use an algorithm that
	 * is not announced, so hiding it is enough. */
	{ "THREAD=ORDEREDSUBJECT", IMAP_CMD_COUNT },
	{ "THREAD=REFERENCES", IMAP_CMD_COUNT },
	{ "OBJECTID", IMAP_CMD_COUNT },
	{ "SAVEDATE", IMAP_CMD_COUNT },
	{ "PREVIEW", IMAP_CMD_COUNT },
	{ "COMPRESS=DEFLATE", IMAP_CMD_COMPRESS },
	{ "QUOTA", IMAP_CMD_GETQUOTAROOT },
	{ "QUOTA=RES-STORAGE", IMAP_CMD_COUNT },
};

#define IMAP_CAPS_N (sizeof(imap_caps) / sizeof(imap_caps[0]))

/* Bit i of caps_off is imap_caps[i]; IMAP4rev2 has the next one. */
#define IMAP_CAP_REV2_BIT (1u << IMAP_CAPS_N)

_Static_assert(IMAP_CAPS_N < 31, "caps_off has room for every capability");

static bool
cap_off(const struct imap_session *s, size_t i)
{
	return (s->caps_off & (1u << i)) != 0;
}

bool
imap_cap_off(const struct imap_session *s, const char *name)
{
	if (strcasecmp(name, "IMAP4rev2") == 0)
		return (s->caps_off & IMAP_CAP_REV2_BIT) != 0;
	for (size_t i = 0; i < IMAP_CAPS_N; i++)
		if (strcasecmp(imap_caps[i].name, name) == 0)
			return cap_off(s, i);
	return false;
}

bool
imap_cmd_off(const struct imap_session *s, enum imap_cmd_name name)
{
	for (size_t i = 0; i < IMAP_CAPS_N; i++)
		if (imap_caps[i].cmd == name && cap_off(s, i))
			return true;
	return false;
}

size_t
imap_caps_versions(const struct imap_session *s, char *out, size_t outlen)
{
	int n = snprintf(out, outlen, "IMAP4rev1%s",
			 s->caps_off & IMAP_CAP_REV2_BIT ? "" : " IMAP4rev2");

	return n < 0 ? 0 : (size_t)n < outlen ? (size_t)n : outlen - 1;
}

void
imap_caps_ext(const struct imap_session *s, char *out, size_t outlen)
{
	size_t n = 0;

	out[0] = '\0';
	for (size_t i = 0; i < IMAP_CAPS_N && n < outlen; i++) {
		/* COMPRESS only once logged in, and only once (RFC 4978 3). */
		if (imap_caps[i].cmd == IMAP_CMD_COMPRESS &&
		    (s->state == IMAP_NOTAUTH || conn_is_deflate(s->conn)))
			continue;
		if (!cap_off(s, i))
			n += (size_t)snprintf(out + n, outlen - n, " %s", imap_caps[i].name);
	}
	/* RFC 7889: the largest message APPEND takes, the same for every
	 * mailbox (a larger literal is refused before it is read). */
	if (n < outlen)
		snprintf(out + n, outlen - n, " APPENDLIMIT=%ld", s->cfg->message_size_limit);
}

/* Sets the bit of one name from the account's list; unknown names are
 * logged and ignored. */
static void
caps_off_add(struct imap_session *s, const char *name, size_t len)
{
	char word[64];

	if (len == 0)
		return;
	snprintf(word, sizeof(word), "%.*s", (int)len, name);
	if (strcasecmp(word, "IMAP4rev2") == 0) {
		s->caps_off |= IMAP_CAP_REV2_BIT;
		return;
	}
	for (size_t i = 0; i < IMAP_CAPS_N; i++)
		if (strcasecmp(imap_caps[i].name, word) == 0) {
			s->caps_off |= 1u << i;
			return;
		}
	log_info("imap: session=%s imap_disable of %s: '%s' cannot be switched off",
		 s->ctx->id, s->account.address, word);
}

void
imap_caps_load(struct imap_session *s)
{
	char list[STORE_IMAP_DISABLE_MAX + 1];
	const char *p;

	s->caps_off = 0;
	if (store_account_imap_disable(s->store, s->account.id, list, sizeof(list)) != 1)
		return;
	for (p = list; *p != '\0';) {
		size_t len = strcspn(p, " ,");

		caps_off_add(s, p, len);
		p += len;
		p += strspn(p, " ,");
	}
}
