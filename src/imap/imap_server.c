/* imap_server.c - one IMAP session: greeting, the command loop and
 * dispatch by state, and the commands of the not-authenticated state
 * (CAPABILITY, NOOP, LOGOUT, STARTTLS, LOGIN, AUTHENTICATE) plus ENABLE
 * and ID.
 *
 * A step reads one command through imap_reader (literals are announced
 * with "+ Ready"), parses it with imap_cmd_parse and runs its handler.
 * Replies are queued on the conn, which sends them when it would
 * otherwise wait for input.
 */
#include "imap/imap_server.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/sasl_server.h"
#include "base/log.h"
#include "imap/imap_session.h"

#define IMAP_LINE_MAX 65536
#define IMAP_COMMAND_MAX (64u << 20)
/* Any other command: far more than 1,000 search keys or a mailbox name
 * need, and less than the parser could take (IMAP_ARENA_MAX). */
#define IMAP_OTHER_COMMAND_MAX (1u << 20)
/* An APPEND's literal from this size on is held in a file in the data
 * dir while it arrives, not in memory (imap_reader.h). */
#define IMAP_SPOOL_MIN (256u << 10)
#define IMAP_PREAUTH_LITERAL_MAX 8192

struct imap_handler {
	unsigned states;
	imap_handler_fn *run;
};

static imap_handler_fn imap_cmd_capability, imap_cmd_noop, imap_cmd_logout, imap_cmd_starttls,
	imap_cmd_login, imap_cmd_authenticate, imap_cmd_enable, imap_cmd_id, imap_cmd_compress;

static const struct imap_handler imap_handlers[IMAP_CMD_COUNT] = {
	[IMAP_CMD_CAPABILITY] = { IMAP_STATE_ANY, imap_cmd_capability },
	[IMAP_CMD_NOOP] = { IMAP_STATE_ANY, imap_cmd_noop },
	[IMAP_CMD_LOGOUT] = { IMAP_STATE_ANY, imap_cmd_logout },
	[IMAP_CMD_STARTTLS] = { IMAP_STATE_NOTAUTH, imap_cmd_starttls },
	[IMAP_CMD_LOGIN] = { IMAP_STATE_NOTAUTH, imap_cmd_login },
	[IMAP_CMD_AUTHENTICATE] = { IMAP_STATE_NOTAUTH, imap_cmd_authenticate },
	[IMAP_CMD_ENABLE] = { IMAP_STATE_AUTH | IMAP_STATE_SELECTED, imap_cmd_enable },
	[IMAP_CMD_ID] = { IMAP_STATE_ANY, imap_cmd_id },
	[IMAP_CMD_SELECT] = { IMAP_STATE_AUTH | IMAP_STATE_SELECTED, imap_cmd_select },
	[IMAP_CMD_EXAMINE] = { IMAP_STATE_AUTH | IMAP_STATE_SELECTED, imap_cmd_select },
	[IMAP_CMD_CREATE] = { IMAP_STATE_AUTH | IMAP_STATE_SELECTED, imap_cmd_create },
	[IMAP_CMD_DELETE] = { IMAP_STATE_AUTH | IMAP_STATE_SELECTED, imap_cmd_delete },
	[IMAP_CMD_RENAME] = { IMAP_STATE_AUTH | IMAP_STATE_SELECTED, imap_cmd_rename },
	[IMAP_CMD_SUBSCRIBE] = { IMAP_STATE_AUTH | IMAP_STATE_SELECTED, imap_cmd_subscribe },
	[IMAP_CMD_UNSUBSCRIBE] = { IMAP_STATE_AUTH | IMAP_STATE_SELECTED, imap_cmd_subscribe },
	[IMAP_CMD_LIST] = { IMAP_STATE_AUTH | IMAP_STATE_SELECTED, imap_cmd_list },
	[IMAP_CMD_LSUB] = { IMAP_STATE_AUTH | IMAP_STATE_SELECTED, imap_cmd_list },
	[IMAP_CMD_NAMESPACE] = { IMAP_STATE_AUTH | IMAP_STATE_SELECTED, imap_cmd_namespace },
	[IMAP_CMD_STATUS] = { IMAP_STATE_AUTH | IMAP_STATE_SELECTED, imap_cmd_status },
	[IMAP_CMD_APPEND] = { IMAP_STATE_AUTH | IMAP_STATE_SELECTED, imap_cmd_append },
	[IMAP_CMD_IDLE] = { IMAP_STATE_AUTH | IMAP_STATE_SELECTED, imap_cmd_idle },
	[IMAP_CMD_CHECK] = { IMAP_STATE_SELECTED, imap_cmd_check },
	[IMAP_CMD_CLOSE] = { IMAP_STATE_SELECTED, imap_cmd_close },
	[IMAP_CMD_UNSELECT] = { IMAP_STATE_SELECTED, imap_cmd_close },
	[IMAP_CMD_EXPUNGE] = { IMAP_STATE_SELECTED, imap_cmd_expunge },
	[IMAP_CMD_SEARCH] = { IMAP_STATE_SELECTED, imap_cmd_search },
	[IMAP_CMD_FETCH] = { IMAP_STATE_SELECTED, imap_cmd_fetch },
	[IMAP_CMD_STORE] = { IMAP_STATE_SELECTED, imap_cmd_store },
	[IMAP_CMD_COPY] = { IMAP_STATE_SELECTED, imap_cmd_copy },
	[IMAP_CMD_MOVE] = { IMAP_STATE_SELECTED, imap_cmd_copy },
	[IMAP_CMD_SORT] = { IMAP_STATE_SELECTED, imap_cmd_sort },
	[IMAP_CMD_THREAD] = { IMAP_STATE_SELECTED, imap_cmd_thread },
	[IMAP_CMD_COMPRESS] = { IMAP_STATE_AUTH | IMAP_STATE_SELECTED, imap_cmd_compress },
	[IMAP_CMD_GETQUOTAROOT] = { IMAP_STATE_AUTH | IMAP_STATE_SELECTED, imap_cmd_getquotaroot },
	[IMAP_CMD_GETQUOTA] = { IMAP_STATE_AUTH | IMAP_STATE_SELECTED, imap_cmd_getquota },
	[IMAP_CMD_SETQUOTA] = { IMAP_STATE_AUTH | IMAP_STATE_SELECTED, imap_cmd_setquota },
};

void
imap_printf(struct imap_session *s, const char *fmt, ...)
{
	char line[4096];
	va_list ap;

	va_start(ap, fmt);
	(void)conn_vwrite_line(s->conn, line, sizeof(line), fmt, ap);
	va_end(ap);
}

bool
imap_expunge_allowed(enum imap_cmd_name name)
{
	return name != IMAP_CMD_FETCH && name != IMAP_CMD_STORE && name != IMAP_CMD_SEARCH &&
	       name != IMAP_CMD_COPY && name != IMAP_CMD_SORT && name != IMAP_CMD_THREAD;
}

static void imap_let_go(void *arg);

/* The tagged reply of the command being run. */
void
imap_tagged(struct imap_session *s, const char *fmt, ...)
{
	char text[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	/* Every command tells of the mailbox's changes before its tagged
	 * reply; expunges only where RFC 9051 7.5.1 allows. */
	if (s->state == IMAP_SELECTED && s->store != NULL)
		(void)imap_sync(s, imap_expunge_allowed(s->cmd.name));
	/* A client that stops reading right there (pipelined STATUS
	 * commands, a line each) must not hold the store either. */
	if (s->tagged_lets_go)
		conn_on_slow_peer(s->conn, imap_let_go, s);
	imap_printf(s, "%s %s", s->cmd.tag, text);
	conn_on_slow_peer(s->conn, NULL, NULL);
	s->tagged_lets_go = false;
}

void
imap_send_buf(struct imap_session *s, const struct buf *b)
{
	(void)conn_write(s->conn, b->data, b->len);
}

/* The store for this command: borrowed from the pool at the first use
 * and given back at the end of the step (store_borrow). */
bool
imap_store_ready(struct imap_session *s)
{
	return store_borrow(s->cfg->data_dir, &s->store, "imap", s->ctx->id);
}

/* conn_on_slow_peer while a command writes what it has read: the client
 * is slow to take the output, so the store connection goes back to the
 * pool for the wait (kept if a statement or transaction is open on it:
 * never, at the writes of the commands that ask for this). */
static void
imap_let_go(void *arg)
{
	struct imap_session *s = arg;

	if (s->store != NULL && store_give_back_idle(&s->store))
		log_debug("imap: session=%s %s waits on its client: store connection given back",
			  s->ctx->id, imap_cmd_str(s->cmd.name));
}

void
imap_writes_let_go(struct imap_session *s)
{
	conn_on_slow_peer(s->conn, imap_let_go, s);
}

bool
imap_writes_done(struct imap_session *s)
{
	conn_on_slow_peer(s->conn, NULL, NULL);
	s->tagged_lets_go = true;
	return imap_store_ready(s);
}

static bool
imap_passwords_allowed(const struct imap_session *s)
{
	return !s->cfg->disable_plaintext_auth || session_is_secure(s->ctx);
}

static bool
imap_starttls_available(const struct imap_session *s)
{
	return s->ctx->kind == LISTENER_IMAP && s->ctx->tls != NULL && !conn_is_tls(s->conn) &&
	       s->state == IMAP_NOTAUTH;
}

/* Only what works is announced. */
static void
imap_capabilities(const struct imap_session *s, char *out, size_t outlen)
{
	size_t n;

	n = imap_caps_versions(s, out, outlen);
	if (imap_starttls_available(s))
		n += (size_t)snprintf(out + n, outlen - n, " STARTTLS");
	if (s->state == IMAP_NOTAUTH) {
		if (imap_passwords_allowed(s))
			n += (size_t)snprintf(out + n, outlen - n,
					      " AUTH=PLAIN AUTH=LOGIN SASL-IR");
		else
			n += (size_t)snprintf(out + n, outlen - n, " LOGINDISABLED");
	}
	imap_caps_ext(s, out + n, outlen - n);
}

static int
imap_cmd_capability(struct imap_session *s, struct imap_cmd *cmd)
{
	char caps[512];

	imap_capabilities(s, caps, sizeof(caps));
	imap_printf(s, "* CAPABILITY %s", caps);
	imap_tagged(s, "OK CAPABILITY completed");
	return 1;
}

static int
imap_cmd_noop(struct imap_session *s, struct imap_cmd *cmd)
{
	if (s->state == IMAP_SELECTED)
		(void)imap_sync(s, true);
	imap_tagged(s, "OK NOOP completed");
	return 1;
}

static int
imap_cmd_logout(struct imap_session *s, struct imap_cmd *cmd)
{
	imap_printf(s, "* BYE Logging out");
	imap_tagged(s, "OK LOGOUT completed");
	s->state = IMAP_LOGOUT;
	s->end_reason = "logout";
	return 0;
}

/* Before the transport changes (TLS, DEFLATE): the reply goes out as it
 * is, and whatever the client sent behind the command is dropped, since
 * it came before the switch (a command injected in clear text). The
 * reader took nothing past the command; its buffer still holds the
 * command, which imap_read_command() wipes after this returns. */
static bool
imap_transport_switch(struct imap_session *s)
{
	size_t pending;

	if (!conn_flush(s->conn))
		return false;
	pending = conn_pending(s->conn);
	if (pending > 0)
		conn_consume(s->conn, pending);
	return true;
}

/* RFC 9051 6.2.1. */
static int
imap_cmd_starttls(struct imap_session *s, struct imap_cmd *cmd)
{
	struct yj_err err;

	if (!imap_starttls_available(s)) {
		imap_tagged(s, "BAD STARTTLS is not available here");
		return 1;
	}
	imap_tagged(s, "OK Begin TLS negotiation now");
	if (!imap_transport_switch(s))
		return 0;
	if (conn_tls_accept(s->conn, s->ctx->tls, &err) < 0) {
		log_info("imap: session=%s STARTTLS failed: %s", s->ctx->id, err.msg);
		s->end_reason = "tls-failed";
		return 0;
	}
	return 1;
}

/* RFC 4978: DEFLATE from the byte after the OK on, both ways. */
static int
imap_cmd_compress(struct imap_session *s, struct imap_cmd *cmd)
{
	struct yj_err err;

	if (conn_is_deflate(s->conn)) {
		imap_tagged(s, "NO [COMPRESSIONACTIVE] DEFLATE is already active");
		return 1;
	}
	imap_tagged(s, "OK DEFLATE active");
	if (!imap_transport_switch(s))
		return 0;
	if (conn_deflate_start(s->conn, &err) < 0) {
		log_info("imap: session=%s COMPRESS failed: %s", s->ctx->id, err.msg);
		s->end_reason = "compress-failed";
		return 0;
	}
	return 1;
}

/* Answers a failed login, as auth_verify() or auth_fail() judged it. */
static int
imap_auth_reply(struct imap_session *s, enum auth_result res)
{
	switch (res) {
	case AUTH_FAILED:
		imap_tagged(s, "NO [AUTHENTICATIONFAILED] Authentication failed");
		return 1;
	case AUTH_FAILED_LAST:
		imap_printf(s, "* BYE Too many authentication failures");
		imap_tagged(s, "NO [AUTHENTICATIONFAILED] Authentication failed");
		s->end_reason = "auth-failures";
		return 0;
	case AUTH_STOPPING:
		imap_printf(s, "* BYE Server shutting down");
		return 0;
	case AUTH_TEMPFAIL:
	case AUTH_OK:
	default:
		imap_tagged(s, "NO [UNAVAILABLE] Temporary authentication failure");
		return 1;
	}
}

static void
imap_reader_limits_for(const struct imap_session *s, struct imap_reader_limits *lim)
{
	bool authed = s->state != IMAP_NOTAUTH;

	lim->line_max = IMAP_LINE_MAX;
	lim->literal_max = authed ? s->cfg->message_size_limit : IMAP_PREAUTH_LITERAL_MAX;
	lim->nonsync_max = authed ? s->cfg->message_size_limit : IMAP_PREAUTH_LITERAL_MAX;
	/* With LITERAL+ switched off, {n+} is refused, unless IMAP4rev2 is
	 * enabled: it has LITERAL- (RFC 9051 4.3, RFC 7888 5). */
	lim->nonsync_refused = false;
	if (authed && imap_cap_off(s, "LITERAL+")) {
		if (s->rev2 && lim->nonsync_max > IMAP_LITERAL_MINUS_MAX)
			lim->nonsync_max = IMAP_LITERAL_MINUS_MAX;
		lim->nonsync_refused = !s->rev2;
	}
	lim->command_max = authed ? IMAP_COMMAND_MAX : 2 * IMAP_LINE_MAX;
	lim->other_max = authed ? IMAP_OTHER_COMMAND_MAX : 0;
	lim->literals_max = authed ? IMAP_APPEND_MAX : 4;
	lim->spool_dir = authed ? s->cfg->data_dir : NULL;
	lim->spool_min = IMAP_SPOOL_MIN;
	lim->spool_keep_free = (uint64_t)s->cfg->queue_minfree;
}

static int
imap_login(struct imap_session *s, const char *user, const char *pass, const char *method)
{
	struct imap_reader_limits lim;
	struct store_account acct;
	enum auth_result res;
	char caps[512];

	if (!imap_store_ready(s)) {
		imap_tagged(s, "NO [UNAVAILABLE] Temporary authentication failure");
		return 1;
	}
	res = auth_verify(&s->auth, s->store, user, pass, method, &acct);
	if (res != AUTH_OK)
		return imap_auth_reply(s, res);
	s->account = acct;
	explicit_bzero(&acct, sizeof(acct));
	s->state = IMAP_AUTH;
	imap_caps_load(s);
	session_set_authenticated(s->ctx);
	imap_reader_limits_for(s, &lim);
	imap_reader_set_limits(&s->reader, &lim);
	log_info("imap: session=%s login user=%s method=%s client=%s tls=%s", s->ctx->id,
		 s->account.address, method, s->conn->peer_ip,
		 conn_is_tls(s->conn) ? "yes" : "no");
	imap_capabilities(s, caps, sizeof(caps));
	imap_tagged(s, "OK [CAPABILITY %s] Logged in", caps);
	return 1;
}

static int
imap_cmd_login(struct imap_session *s, struct imap_cmd *cmd)
{
	if (!imap_passwords_allowed(s)) {
		imap_tagged(s, "NO [PRIVACYREQUIRED] Use STARTTLS first");
		return 1;
	}
	return imap_login(s, cmd->user, cmd->pass, "LOGIN");
}

static int
imap_sasl_send(void *arg, const char *b64)
{
	struct imap_session *s = arg;

	imap_printf(s, "+ %s", b64);
	return conn_flush(s->conn) && !s->conn->failed;
}

/* Does the input start with a command rather than a SASL response? A
 * response is base64 or "*", never with a space; eM Client ends an
 * exchange it gives up on with "TAG LOGOUT" instead of "*". */
static bool
imap_sasl_command_waits(struct imap_session *s)
{
	const unsigned char *data;
	size_t len;

	if (conn_peek(s->conn, &data, &len) == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (data[i] == ' ')
			return i > 0;
		if (data[i] == '\r' || data[i] == '\n')
			return false;
	}
	return false;
}

/* Reads a SASL response. A command in its place cancels the exchange, as
 * "*" would, and stays in the input, to run once the cancel is answered. */
static int
imap_sasl_read(void *arg, char *buf, size_t size)
{
	struct imap_session *s = arg;

	if (size >= 2 && imap_sasl_command_waits(s)) {
		memcpy(buf, "*", 2);
		return 1;
	}
	return conn_read_secret_line(s->conn, buf, size);
}

static int
imap_cmd_authenticate(struct imap_session *s, struct imap_cmd *cmd)
{
	const struct sasl_io io = { s, imap_sasl_send, imap_sasl_read };
	struct sasl_server sasl;
	enum sasl_mech mech;
	int ret = 1;

	if (!imap_passwords_allowed(s)) {
		imap_tagged(s, "NO [PRIVACYREQUIRED] Use STARTTLS first");
		return 1;
	}
	if (sasl_mech_lookup(cmd->mech, &mech) == 0) {
		imap_tagged(s, "NO Unsupported authentication mechanism");
		return 1;
	}
	switch (sasl_exchange(&sasl, mech, cmd->initial, &io)) {
	case SASL_DONE:
		ret = imap_login(s, sasl.authcid, sasl.passwd, cmd->mech);
		break;
	case SASL_CANCELLED:
		imap_tagged(s, "BAD Authentication cancelled");
		break;
	case SASL_MALFORMED:
		imap_tagged(s, "BAD Invalid base64 data in the response");
		ret = ++s->bad_commands < IMAP_BAD_COMMANDS_MAX;
		break;
	case SASL_BAD_CREDS:
		ret = imap_auth_reply(s, auth_fail(&s->auth, sasl.authcid, cmd->mech));
		break;
	case SASL_GONE:
	case SASL_CONTINUE:
	default:
		ret = 0;
		break;
	}
	sasl_server_clear(&sasl);
	return ret;
}

/* RFC 5161: what was enabled is listed; unknown names (and those the
 * account switched off) are ignored. IMAP4rev2 (RFC 9051 appendix E):
 * mailbox names in UTF-8, no RECENT, no UNSEEN code at SELECT, SEARCH
 * answered with ESEARCH. */
static int
imap_cmd_enable(struct imap_session *s, struct imap_cmd *cmd)
{
	char enabled[128] = "";
	size_t i;

	for (i = 0; i < cmd->strs.count; i++) {
		const char *c = cmd->strs.v[i];

		if (imap_cap_off(s, c))
			continue;
		if (strcasecmp(c, "IMAP4rev2") == 0 && !s->rev2) {
			struct imap_reader_limits lim;

			s->rev2 = s->utf8 = true;
			imap_reader_limits_for(s, &lim);
			imap_reader_set_limits(&s->reader, &lim);
			strcat(enabled, " IMAP4rev2");
		} else if (strcasecmp(c, "CONDSTORE") == 0 && !s->condstore) {
			s->condstore = true;
			strcat(enabled, " CONDSTORE");
		} else if (strcasecmp(c, "QRESYNC") == 0 && !s->qresync) {
			/* RFC 7162 3.2.3: QRESYNC implies CONDSTORE. */
			s->qresync = s->condstore = true;
			strcat(enabled, " QRESYNC");
		} else if (strcasecmp(c, "UTF8=ACCEPT") == 0 && !s->utf8) {
			s->utf8 = true;
			strcat(enabled, " UTF8=ACCEPT");
		}
	}
	imap_printf(s, "* ENABLED%s", enabled);
	imap_tagged(s, "OK ENABLE completed");
	return 1;
}

static int
imap_cmd_id(struct imap_session *s, struct imap_cmd *cmd)
{
	imap_printf(s, "* ID (\"name\" \"youju\")");
	imap_tagged(s, "OK ID completed");
	return 1;
}

static int
imap_bad_command(struct imap_session *s, const char *tag, const char *reply)
{
	imap_printf(s, "%s %s", tag, reply);
	if (++s->bad_commands < IMAP_BAD_COMMANDS_MAX)
		return 1;
	imap_printf(s, "* BYE Too many bad commands");
	s->end_reason = "bad-commands";
	return 0;
}

static const char *
imap_state_name(enum imap_state st)
{
	return st == IMAP_NOTAUTH ? "before login" : st == IMAP_AUTH ? "without a mailbox selected"
									 : "in this state";
}

static unsigned
imap_state_bit(enum imap_state st)
{
	return st == IMAP_NOTAUTH ? IMAP_STATE_NOTAUTH
	       : st == IMAP_AUTH  ? IMAP_STATE_AUTH
				  : IMAP_STATE_SELECTED;
}

/* A message sequence number above the number of messages gets BAD in
 * FETCH, STORE, COPY and MOVE (RFC 3501 and RFC 9051, formal syntax,
 * seq-number). Ranges to "*" are let through even where the RFC says
 * BAD ("*" in an empty mailbox): their meaning is clear, and clients
 * send "1:*" to empty mailboxes. UIDs may name messages gone. */
static bool
imap_seqnums_invalid(const struct imap_session *s, const struct imap_cmd *cmd)
{
	if (cmd->uid || s->state != IMAP_SELECTED)
		return false;
	if (cmd->name != IMAP_CMD_FETCH && cmd->name != IMAP_CMD_STORE &&
	    cmd->name != IMAP_CMD_COPY && cmd->name != IMAP_CMD_MOVE)
		return false;
	return !imap_seqset_within(&cmd->set, (uint32_t)s->n_msgs);
}

/* Commands that read or change the selected mailbox's messages. */
static bool
imap_cmd_uses_messages(enum imap_cmd_name name)
{
	return name == IMAP_CMD_FETCH || name == IMAP_CMD_STORE || name == IMAP_CMD_COPY ||
	       name == IMAP_CMD_MOVE || name == IMAP_CMD_SEARCH || name == IMAP_CMD_SORT ||
	       name == IMAP_CMD_THREAD || name == IMAP_CMD_EXPUNGE || name == IMAP_CMD_CLOSE;
}

static int
imap_dispatch(struct imap_session *s, char *data, size_t len)
{
	const struct imap_parse_opts opts = { .utf8 = s->utf8 };
	const struct imap_handler *h;
	const char *off;
	char text[160];
	int ret;

	imap_cmd_clear(&s->cmd);
	if (imap_cmd_parse(&s->cmd, data, len, &opts) < 0) {
		if (s->cmd.name == IMAP_CMD_SEARCH && (s->cmd.search.ret & IMAP_SEARCH_RET_SAVE))
			imap_saved_clear(s);	/* RFC 5182 2.1: a failed SAVE empties $ */
		return imap_bad_command(s, s->cmd.tag, s->cmd.error);
	}
	h = &imap_handlers[s->cmd.name];
	if (h->run == NULL || imap_cmd_off(s, s->cmd.name)) {
		snprintf(text, sizeof(text), "BAD %s is not supported", imap_cmd_str(s->cmd.name));
		return imap_bad_command(s, s->cmd.tag, text);
	}
	if ((off = imap_cmd_uses_off(s, &s->cmd)) != NULL) {
		if (s->cmd.name == IMAP_CMD_SEARCH && (s->cmd.search.ret & IMAP_SEARCH_RET_SAVE))
			imap_saved_clear(s);
		snprintf(text, sizeof(text), "BAD %s%s: %s is not supported",
			 s->cmd.uid ? "UID " : "", imap_cmd_str(s->cmd.name), off);
		return imap_bad_command(s, s->cmd.tag, text);
	}
	if ((h->states & imap_state_bit(s->state)) == 0) {
		snprintf(text, sizeof(text), "BAD %s is not allowed %s", imap_cmd_str(s->cmd.name),
			 imap_state_name(s->state));
		return imap_bad_command(s, s->cmd.tag, text);
	}
	if (imap_seqnums_invalid(s, &s->cmd))
		return imap_bad_command(s, s->cmd.tag, "BAD Invalid message sequence number");
	s->bad_commands = 0;
	s->tagged_lets_go = false;
	/* IMAP4rev2 answers every SEARCH with ESEARCH (RFC 9051 6.4.4). */
	if (s->rev2 && (s->cmd.name == IMAP_CMD_SEARCH))
		s->cmd.search.esearch = true;
	if (s->state != IMAP_NOTAUTH && !imap_store_ready(s)) {
		imap_tagged(s, "NO [UNAVAILABLE] The mail store is not available; try again later");
		return 1;
	}
	/* Its UIDs must not reach a mailbox made since under the same name. */
	if (imap_cmd_uses_messages(s->cmd.name) && !imap_selected_check(s)) {
		imap_tagged(s, "NO [NONEXISTENT] The selected mailbox was deleted");
		return 1;
	}
	ret = h->run(s, &s->cmd);
	return ret;
}

/* The read ended without a command: say why in IMAP's terms. */
static int
imap_read_ended(struct imap_session *s)
{
	if (s->conn->timed_out) {
		imap_printf(s, "* BYE Autologout; idle for too long");
		s->end_reason = conn_end_reason(s->conn);
	} else if (stop_requested(s->ctx->stop)) {
		imap_printf(s, "* BYE Server shutting down");
		s->end_reason = "shutdown";
	} else {
		s->end_reason = conn_end_reason(s->conn);
	}
	return 0;
}

/* A literal is about to be asked for: an APPEND refused before it is
 * answered instead. */
static bool
imap_append_early(struct imap_session *s)
{
	uint64_t size;
	size_t len;
	const char *partial = imap_reader_partial(&s->reader, &len, &size);

	if (partial == NULL || !imap_append_answered_early(s, partial, len, size))
		return false;
	imap_reader_refuse(&s->reader);
	return true;
}

/* Feeds input to the reader until a command is complete, and runs it. */
static int
imap_read_command(struct imap_session *s)
{
	const unsigned char *data;
	size_t len, used, cmdlen;
	enum imap_read_event ev;
	bool secret;
	char *cmd;
	int ret;

	for (;;) {
		if (conn_peek(s->conn, &data, &len) == 0)
			return imap_read_ended(s);
		ev = imap_reader_feed(&s->reader, data, len, &used);
		conn_consume(s->conn, used);
		switch (ev) {
		case IMAP_READ_MORE:
			/* The rest of the command is not here yet: the reader
			 * keeps what came, and the runtime waits (or parks the
			 * session) rather than a worker blocking on a slow client. */
			if (!conn_input_ready(s->conn))
				return 1;
			break;
		case IMAP_READ_CONTINUE:
			if (imap_append_early(s))
				return 1;
			imap_printf(s, "+ Ready for literal data");
			if (!conn_flush(s->conn))
				return imap_read_ended(s);
			if (!conn_input_ready(s->conn))
				return 1;
			break;
		case IMAP_READ_COMMAND:
			cmd = imap_reader_command(&s->reader, &cmdlen);
			if (cmd == NULL) {
				log_warn("imap: session=%s cannot map a spooled command: %s",
					 s->ctx->id, strerror(errno));
				return imap_bad_command(s, imap_reader_error_tag(&s->reader),
							imap_reader_error_text(&s->reader));
			}
			secret = s->state == IMAP_NOTAUTH;
			ret = imap_dispatch(s, cmd, cmdlen);
			/* The command may have held a password (LOGIN, or
			 * AUTHENTICATE's initial response): neither the
			 * reader nor the conn's input keeps a copy. A spooled
			 * APPEND holds none, and wiping its mapping would
			 * copy every page of it. */
			if (!imap_reader_spooled(&s->reader))
				explicit_bzero(cmd, cmdlen);
			if (secret)
				conn_forget_input(s->conn);
			imap_cmd_clear(&s->cmd);
			return ret;
		case IMAP_READ_ERROR:
		default:
			if (imap_reader_error(&s->reader) == IMAP_RERR_SPOOL_FAILED)
				log_warn("imap: session=%s cannot hold an APPEND in %s: %s",
					 s->ctx->id, s->cfg->data_dir, strerror(errno));
			return imap_bad_command(s, imap_reader_error_tag(&s->reader),
						imap_reader_error_text(&s->reader));
		}
	}
}

static bool
imap_auth_sleep(void *arg, long ms)
{
	const struct session_ctx *ctx = arg;

	if (ctx->conn->wlen > 0)
		(void)conn_flush(ctx->conn);
	return stop_sleep(ctx->stop, ms);
}

static int
imap_session_start(struct session_ctx *ctx)
{
	struct imap_session *s = calloc(1, sizeof(*s));
	struct imap_reader_limits lim;
	char caps[512];
	long timeout = ctx->cfg->imap_timeout;

	if (s == NULL)
		log_fatal("out of memory");
	ctx->state = s;
	s->ctx = ctx;
	s->cfg = ctx->cfg;
	s->conn = ctx->conn;
	s->state = IMAP_NOTAUTH;
	s->end_reason = "closed";
	s->auth = (struct auth_client){ .cfg = ctx->cfg, .proto = "imap", .session_id = ctx->id,
					.ip = ctx->conn->peer_ip, .sleep = imap_auth_sleep,
					.sleep_arg = ctx };
	imap_cmd_init(&s->cmd);
	imap_reader_limits_for(s, &lim);
	imap_reader_init(&s->reader, &lim);
	s->conn->timeout_ms = timeout > INT_MAX / 1000 ? INT_MAX : (int)(timeout * 1000);
	log_debug("imap: session=%s connect client=%s tls=%s", ctx->id, ctx->conn->peer_ip,
		  conn_is_tls(ctx->conn) ? "yes" : "no");
	imap_capabilities(s, caps, sizeof(caps));
	imap_printf(s, "* OK [CAPABILITY %s] %s IMAP server ready", caps,
		    s->cfg->myhostname != NULL && s->cfg->myhostname[0] != '\0'
			    ? s->cfg->myhostname
			    : "youju");
	return !s->conn->failed;
}

static int
imap_session_step(struct session_ctx *ctx)
{
	struct imap_session *s = ctx->state;
	int ret;

	if (s->idling)
		ret = imap_idle_step(s);
	else if ((ctx->events & (SESSION_EV_INPUT | SESSION_EV_TIMEOUT)) == 0)
		return 1;	/* a wake-up meant for IDLE that came late */
	else
		ret = imap_read_command(s);
	if (s->closing)
		ret = 0;
	if (ret > 0 && s->conn->failed) {
		s->end_reason = conn_end_reason(s->conn);
		ret = 0;
	}
	if (ret > 0 && imap_reader_idle(&s->reader))
		imap_reader_release(&s->reader);
	/* Between commands (and in IDLE) the session holds no connection. */
	store_give_back(&s->store);
	return ret > 0;
}

static void
imap_session_end(struct session_ctx *ctx)
{
	struct imap_session *s = ctx->state;

	if (s == NULL)
		return;
	imap_idle_stop(s);
	if (s->state != IMAP_NOTAUTH)
		log_info("imap: session=%s logout user=%s reason=%s", ctx->id, s->account.address,
			 s->end_reason);
	else
		log_debug("imap: session=%s disconnect reason=%s", ctx->id, s->end_reason);
	imap_unselect(s);
	imap_cmd_clear(&s->cmd);
	imap_reader_free(&s->reader);
	if (s->store != NULL)
		store_close(&s->store);
	(void)conn_flush(s->conn);
	free(s);
	ctx->state = NULL;
}

const struct session_proto imap_proto = {
	.name = "imap",
	.start = imap_session_start,
	.step = imap_session_step,
	.end = imap_session_end,
};
