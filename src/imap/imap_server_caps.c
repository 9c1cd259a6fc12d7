/* imap_server_caps.c - the extensions announced after the base
 * capabilities, and those an account has switched off.
 *
 * An account's `imap_disable` setting (`youju account set`) names
 * capabilities its client breaks on. After login they are left out of
 * CAPABILITY, ENABLE ignores them, the commands that belong to them are
 * refused as unknown, and the arguments they add to other commands
 * (FETCH items, SEARCH keys, RETURN options, SELECT and LIST options,
 * STATUS items) are refused as bad syntax. Never chosen from what the
 * client says about itself in ID (RFC 2971 3.1 forbids that).
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
	bool rev2;			/* part of IMAP4rev2 (RFC 9051 appendix E):
					 * stays on once that is enabled */
	const char *needs;		/* the capability it is built on (off
					 * with it), or NULL */
};

/* In the order announced. UIDONLY is never offered: Outlook enables it
 * and then sends sequence numbers anyway. */
static const struct imap_cap imap_caps[] = {
	{ "LITERAL+", IMAP_CMD_COUNT, false, NULL },
	{ "ID", IMAP_CMD_ID, false, NULL },
	{ "ENABLE", IMAP_CMD_ENABLE, true, NULL },
	{ "IDLE", IMAP_CMD_IDLE, true, NULL },
	{ "NAMESPACE", IMAP_CMD_NAMESPACE, true, NULL },
	{ "UNSELECT", IMAP_CMD_UNSELECT, true, NULL },
	{ "UIDPLUS", IMAP_CMD_COUNT, true, NULL },
	{ "MOVE", IMAP_CMD_MOVE, true, NULL },
	{ "CHILDREN", IMAP_CMD_COUNT, true, NULL },
	{ "SPECIAL-USE", IMAP_CMD_COUNT, true, NULL },
	{ "CREATE-SPECIAL-USE", IMAP_CMD_COUNT, false, NULL },
	{ "LIST-EXTENDED", IMAP_CMD_COUNT, true, NULL },
	{ "LIST-STATUS", IMAP_CMD_COUNT, true, NULL },
	{ "CONDSTORE", IMAP_CMD_COUNT, false, NULL },
	{ "QRESYNC", IMAP_CMD_COUNT, false, "CONDSTORE" },
	{ "UTF8=ACCEPT", IMAP_CMD_COUNT, false, NULL },
	{ "ESEARCH", IMAP_CMD_COUNT, true, NULL },
	{ "STATUS=SIZE", IMAP_CMD_COUNT, true, NULL },
	{ "SEARCHRES", IMAP_CMD_COUNT, true, NULL },
	{ "PARTIAL", IMAP_CMD_COUNT, false, NULL },
	{ "SORT", IMAP_CMD_SORT, false, NULL },
	{ "SORT=DISPLAY", IMAP_CMD_COUNT, false, "SORT" },
	{ "ESORT", IMAP_CMD_COUNT, false, "SORT" },
	/* THREAD is refused when both are off (imap_cmd_off). */
	{ "THREAD=ORDEREDSUBJECT", IMAP_CMD_COUNT, false, NULL },
	{ "THREAD=REFERENCES", IMAP_CMD_COUNT, false, NULL },
	{ "OBJECTID", IMAP_CMD_COUNT, false, NULL },
	{ "SAVEDATE", IMAP_CMD_COUNT, false, NULL },
	{ "PREVIEW", IMAP_CMD_COUNT, false, NULL },
	{ "BINARY", IMAP_CMD_COUNT, true, NULL },
	{ "COMPRESS=DEFLATE", IMAP_CMD_COMPRESS, false, NULL },
	{ "QUOTA", IMAP_CMD_GETQUOTAROOT, false, NULL },
	{ "QUOTA=RES-STORAGE", IMAP_CMD_COUNT, false, "QUOTA" },
};

#define IMAP_CAPS_N (sizeof(imap_caps) / sizeof(imap_caps[0]))

/* Bit i of caps_off is imap_caps[i]; IMAP4rev2 has the next one. */
#define IMAP_CAP_REV2_BIT ((uint64_t)1 << IMAP_CAPS_N)

_Static_assert(IMAP_CAPS_N < 63, "caps_off has room for every capability");

/* Off by the account's list, or with the capability it is built on
 * (QRESYNC implies CONDSTORE, RFC 7162 3.2.3). */
static bool
cap_off(const struct imap_session *s, size_t i)
{
	return (s->caps_off & ((uint64_t)1 << i)) != 0 ||
	       (imap_caps[i].needs != NULL && imap_cap_off(s, imap_caps[i].needs));
}

/* Off for this session: switched off, and not brought back by
 * IMAP4rev2 (CAPABILITY still leaves it out). */
static bool
cap_off_now(const struct imap_session *s, size_t i)
{
	return cap_off(s, i) && !(s->rev2 && imap_caps[i].rev2);
}

bool
imap_cap_off(const struct imap_session *s, const char *name)
{
	if (strcasecmp(name, "IMAP4rev2") == 0)
		return (s->caps_off & IMAP_CAP_REV2_BIT) != 0;
	for (size_t i = 0; i < IMAP_CAPS_N; i++)
		if (strcasecmp(imap_caps[i].name, name) == 0)
			return cap_off_now(s, i);
	return false;
}

bool
imap_cmd_off(const struct imap_session *s, enum imap_cmd_name name)
{
	/* QUOTA brings three commands, THREAD two algorithms. */
	if (name == IMAP_CMD_GETQUOTA || name == IMAP_CMD_SETQUOTA)
		name = IMAP_CMD_GETQUOTAROOT;
	if (name == IMAP_CMD_THREAD)
		return imap_cap_off(s, "THREAD=ORDEREDSUBJECT") &&
		       imap_cap_off(s, "THREAD=REFERENCES");
	for (size_t i = 0; i < IMAP_CAPS_N; i++)
		if (imap_caps[i].cmd == name && cap_off_now(s, i))
			return true;
	return false;
}

/* cap if the command uses it and it is off, else NULL. */
static const char *
used_off(const struct imap_session *s, bool used, const char *cap)
{
	return used && imap_cap_off(s, cap) ? cap : NULL;
}

/* The capability a search key belongs to, or NULL for the base ones. */
static const char *
search_key_cap(const struct imap_search_key *k)
{
	switch (k->type) {
	case IMAP_SK_MODSEQ:
		return "CONDSTORE";
	case IMAP_SK_EMAILID:
	case IMAP_SK_THREADID:
		return "OBJECTID";
	case IMAP_SK_SAVEDBEFORE:
	case IMAP_SK_SAVEDON:
	case IMAP_SK_SAVEDSINCE:
	case IMAP_SK_SAVEDATESUPPORTED:
		return "SAVEDATE";
	case IMAP_SK_SEQSET:
	case IMAP_SK_UID:
		return k->set.saved ? "SEARCHRES" : NULL;
	default:
		return NULL;
	}
}

/* The first key of a program (nested at most IMAP_SEARCH_DEPTH_MAX
 * deep) whose capability is off. */
static const char *
search_keys_off(const struct imap_session *s, const struct imap_search_key *k)
{
	const char *cap;

	for (; k != NULL; k = k->next) {
		if ((cap = search_key_cap(k)) != NULL && imap_cap_off(s, cap))
			return cap;
		if (k->child != NULL && (cap = search_keys_off(s, k->child)) != NULL)
			return cap;
	}
	return NULL;
}

static const char *
search_off(const struct imap_session *s, const struct imap_cmd *cmd)
{
	const struct imap_search *se = &cmd->search;
	const char *off;

	for (size_t i = 0; i < se->nsort; i++)
		if ((se->sort[i].key == IMAP_SORT_DISPLAYFROM ||
		     se->sort[i].key == IMAP_SORT_DISPLAYTO) && imap_cap_off(s, "SORT=DISPLAY"))
			return "SORT=DISPLAY";
	if (cmd->name == IMAP_CMD_THREAD) {
		const char *alg = se->thread == IMAP_THREAD_REFERENCES ? "THREAD=REFERENCES"
								      : "THREAD=ORDEREDSUBJECT";
		if (imap_cap_off(s, alg))
			return alg;
	}
	/* IMAP4rev2 has ESEARCH of its own (RFC 9051 6.4.4). */
	if (se->esearch &&
	    ((off = used_off(s, cmd->name == IMAP_CMD_SORT, "ESORT")) != NULL ||
	     (off = used_off(s, cmd->name == IMAP_CMD_SEARCH, "ESEARCH")) != NULL ||
	     (off = used_off(s, (se->ret & IMAP_SEARCH_RET_SAVE) != 0, "SEARCHRES")) != NULL ||
	     (off = used_off(s, (se->ret & IMAP_SEARCH_RET_PARTIAL) != 0, "PARTIAL")) != NULL))
		return off;
	return search_keys_off(s, se->keys);
}

static const char *
fetch_off(const struct imap_session *s, const struct imap_cmd *cmd)
{
	const struct imap_fetch *f = &cmd->fetch;

	const char *off;

	if ((off = used_off(s, f->changedsince_set || f->vanished, "CONDSTORE")) != NULL ||
	    (off = used_off(s, f->vanished, "QRESYNC")) != NULL)
		return off;
	for (size_t i = 0; i < f->count; i++) {
		const char *cap = NULL;

		switch (f->atts[i].type) {
		case IMAP_FETCH_MODSEQ: cap = "CONDSTORE"; break;
		case IMAP_FETCH_EMAILID:
		case IMAP_FETCH_THREADID: cap = "OBJECTID"; break;
		case IMAP_FETCH_SAVEDATE: cap = "SAVEDATE"; break;
		case IMAP_FETCH_PREVIEW: cap = "PREVIEW"; break;
		case IMAP_FETCH_BINARY:
		case IMAP_FETCH_BINARY_SIZE: cap = "BINARY"; break;
		default: break;
		}
		if (cap != NULL && imap_cap_off(s, cap))
			return cap;
	}
	return NULL;
}

/* STATUS items that belong to a capability. */
static const struct {
	unsigned item;
	const char *cap;
} status_caps[] = {
	{ IMAP_STATUS_HIGHESTMODSEQ, "CONDSTORE" },
	{ IMAP_STATUS_SIZE, "STATUS=SIZE" },
	{ IMAP_STATUS_MAILBOXID, "OBJECTID" },
	{ IMAP_STATUS_DELETED_STORAGE, "QUOTA" },
};

static const char *
status_off(const struct imap_session *s, unsigned items)
{
	const char *cap = NULL;

	for (size_t i = 0; cap == NULL && i < sizeof(status_caps) / sizeof(status_caps[0]); i++)
		cap = used_off(s, (items & status_caps[i].item) != 0, status_caps[i].cap);
	return cap;
}

static const char *
list_off(const struct imap_session *s, const struct imap_cmd *cmd)
{
	const struct imap_list *l = &cmd->list;

	if (l->extended && imap_cap_off(s, "LIST-EXTENDED") &&
	    (l->select != 0 || (l->ret & ~(unsigned)IMAP_LIST_RET_STATUS) != 0 || l->npatterns > 1))
		return "LIST-EXTENDED";
	if ((l->select & IMAP_LIST_SEL_SPECIAL_USE || l->ret & IMAP_LIST_RET_SPECIAL_USE) &&
	    imap_cap_off(s, "SPECIAL-USE"))
		return "SPECIAL-USE";
	if (l->ret & IMAP_LIST_RET_STATUS)
		return imap_cap_off(s, "LIST-STATUS") ? "LIST-STATUS" : status_off(s, l->status.mask);
	return NULL;
}

/* A bare literal8 message is BINARY's (RFC 3516 4.4), whatever else is
 * enabled; UTF8 (~{n}) is UTF8=ACCEPT's (RFC 6855 4), which the parser
 * takes only once that is enabled. */
static const char *
append_off(const struct imap_session *s, const struct imap_append *ap)
{
	for (size_t i = 0; i < ap->count; i++)
		if (ap->msgs[i].binary && !ap->msgs[i].utf8 && imap_cap_off(s, "BINARY"))
			return "BINARY";
	return NULL;
}

const char *
imap_cmd_uses_off(const struct imap_session *s, const struct imap_cmd *cmd)
{
	const char *off;

	if (s->caps_off == 0)
		return NULL;
	if (cmd->set.saved && imap_cap_off(s, "SEARCHRES"))
		return "SEARCHRES";
	switch (cmd->name) {
	case IMAP_CMD_SEARCH:
	case IMAP_CMD_SORT:
	case IMAP_CMD_THREAD:
		return search_off(s, cmd);
	case IMAP_CMD_FETCH:
		return fetch_off(s, cmd);
	case IMAP_CMD_STORE:
		return used_off(s, cmd->store.unchangedsince_set, "CONDSTORE");
	case IMAP_CMD_SELECT:
	case IMAP_CMD_EXAMINE:
		off = used_off(s, cmd->select.qresync, "QRESYNC");
		return off != NULL ? off : used_off(s, cmd->select.condstore, "CONDSTORE");
	case IMAP_CMD_STATUS:
		return status_off(s, cmd->status.mask);
	case IMAP_CMD_LIST:
	case IMAP_CMD_LSUB:
		return list_off(s, cmd);
	case IMAP_CMD_EXPUNGE:
		return used_off(s, cmd->uid, "UIDPLUS");
	case IMAP_CMD_CREATE:
		off = used_off(s, cmd->strs.count > 0, "SPECIAL-USE");
		return off != NULL ? off : used_off(s, cmd->strs.count > 0, "CREATE-SPECIAL-USE");
	case IMAP_CMD_APPEND:
		return append_off(s, &cmd->append);
	default:
		return NULL;
	}
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
		/* CREATE-SPECIAL-USE builds on SPECIAL-USE (RFC 6154 3). */
		if (strcmp(imap_caps[i].name, "CREATE-SPECIAL-USE") == 0 &&
		    imap_cap_off(s, "SPECIAL-USE"))
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
			s->caps_off |= (uint64_t)1 << i;
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
