/* pop3_server.c - one POP3 session (RFC 1939, 2449, 2595, 5034): the
 * command loop, dispatch by state, CAPA, STLS and QUIT.
 *
 * The session reads a command, checks it in pop3_parse.c, checks that
 * the state allows it and runs its handler. Replies are queued on the
 * conn, which sends them when it would otherwise wait for input, so a
 * pipelined batch of commands gets its replies in one write.
 */
#include "pop3/pop3_session.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/sasl_server.h"
#include "base/log.h"
#include "pop3/pop3.h"
#include "pop3/pop3_lock.h"

#define IN_AUTH (1u << POP3_STATE_AUTHORIZATION)
#define IN_TRANS (1u << POP3_STATE_TRANSACTION)

typedef int pop3_handler_fn(struct pop3_session *p, const struct pop3_cmd *cmd);

struct pop3_handler {
	unsigned states;		/* IN_AUTH, IN_TRANS */
	pop3_handler_fn *run;
};

static pop3_handler_fn pop3_cmd_capa, pop3_cmd_stls, pop3_cmd_quit;

static const struct pop3_handler pop3_handlers[POP3_CMD_COUNT] = {
	[POP3_CMD_USER] = { IN_AUTH, pop3_cmd_user },
	[POP3_CMD_PASS] = { IN_AUTH, pop3_cmd_pass },
	[POP3_CMD_AUTH] = { IN_AUTH, pop3_cmd_auth },
	[POP3_CMD_STLS] = { IN_AUTH, pop3_cmd_stls },
	[POP3_CMD_CAPA] = { IN_AUTH | IN_TRANS, pop3_cmd_capa },
	[POP3_CMD_QUIT] = { IN_AUTH | IN_TRANS, pop3_cmd_quit },
	[POP3_CMD_STAT] = { IN_TRANS, pop3_cmd_stat },
	[POP3_CMD_LIST] = { IN_TRANS, pop3_cmd_list },
	[POP3_CMD_UIDL] = { IN_TRANS, pop3_cmd_uidl },
	[POP3_CMD_RETR] = { IN_TRANS, pop3_cmd_retr },
	[POP3_CMD_TOP] = { IN_TRANS, pop3_cmd_top },
	[POP3_CMD_DELE] = { IN_TRANS, pop3_cmd_dele },
	[POP3_CMD_RSET] = { IN_TRANS, pop3_cmd_rset },
	[POP3_CMD_NOOP] = { IN_TRANS, pop3_cmd_noop },
};

void
pop3_reply(struct pop3_session *p, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	(void)conn_vwrite_line(p->conn, line, sizeof(line), fmt, ap);
	va_end(ap);
}

bool
pop3_passwords_allowed(const struct pop3_session *p)
{
	return !p->cfg->disable_plaintext_auth || session_is_secure(p->ctx);
}

/* STLS is offered on the plain POP3 listener, before login, when there
 * is a certificate and TLS is not on yet. */
static bool
pop3_stls_available(const struct pop3_session *p)
{
	return p->ctx->kind == LISTENER_POP3 && p->ctx->tls != NULL &&
	       !conn_is_tls(p->conn) && p->state == POP3_STATE_AUTHORIZATION;
}

/* RFC 2449. What a client may do next depends on the state and on the
 * transport: before TLS on a non-secure connection no password
 * mechanism is shown, as none would be accepted. */
static int
pop3_cmd_capa(struct pop3_session *p, const struct pop3_cmd *cmd)
{
	const struct config *cfg = p->cfg;

	pop3_reply(p, "+OK Capability list follows");
	pop3_reply(p, "TOP");
	pop3_reply(p, "UIDL");
	pop3_reply(p, "RESP-CODES");
	pop3_reply(p, "AUTH-RESP-CODE");
	pop3_reply(p, "PIPELINING");
	if (pop3_stls_available(p))
		pop3_reply(p, "STLS");
	if (p->state == POP3_STATE_AUTHORIZATION && pop3_passwords_allowed(p)) {
		pop3_reply(p, "USER");
		pop3_reply(p, "SASL %s", SASL_MECHS);
	}
	if (cfg->pop3_expire < 0)
		pop3_reply(p, "EXPIRE NEVER");
	else
		pop3_reply(p, "EXPIRE %ld", cfg->pop3_expire);
	if (cfg->pop3_login_delay > 0)
		pop3_reply(p, "LOGIN-DELAY %ld", cfg->pop3_login_delay);
	pop3_reply(p, "IMPLEMENTATION youju");
	pop3_reply(p, ".");
	return 1;
}

/* RFC 2595 section 4. After the handshake the session starts over: the
 * client must forget what it learnt before, and so does the server. */
static int
pop3_cmd_stls(struct pop3_session *p, const struct pop3_cmd *cmd)
{
	struct yj_err err;

	if (!pop3_stls_available(p)) {
		pop3_reply(p, conn_is_tls(p->conn) ? "-ERR TLS is already active"
						   : "-ERR STLS is not available here");
		return 1;
	}
	pop3_reply(p, "+OK Begin TLS negotiation");
	if (!conn_flush(p->conn))
		return 0;
	if (conn_tls_accept(p->conn, p->ctx->tls, &err) < 0) {
		log_info("pop3: session=%s STLS failed: %s", p->ctx->id, err.msg);
		return 0;
	}
	explicit_bzero(p->user, sizeof(p->user));
	p->have_user = false;
	return 1;
}

/* RFC 1939: QUIT in TRANSACTION enters the UPDATE state, the only place
 * where deletions take effect. */
static int
pop3_cmd_quit(struct pop3_session *p, const struct pop3_cmd *cmd)
{
	struct yj_err err;
	long removed;

	if (p->state == POP3_STATE_AUTHORIZATION) {
		pop3_reply(p, "+OK Bye");
		return 0;
	}
	p->quit = true;
	removed = pop3_maildrop_update(p, &err);
	if (removed < 0) {
		log_error("pop3: session=%s update failed: %s", p->ctx->id, err.msg);
		pop3_reply(p, "-ERR [SYS/TEMP] Deleted messages could not be removed");
		return 0;
	}
	pop3_reply(p, "+OK Logging out, %ld message%s deleted", removed,
		   removed == 1 ? "" : "s");
	return 0;
}

/* Counts a command that could not be run. Returns 0 once there were too
 * many in a row: a client that keeps sending garbage is not a client. */
static int
pop3_bad_command(struct pop3_session *p, const char *reply)
{
	pop3_reply(p, "%s", reply);
	if (++p->bad_commands < POP3_BAD_COMMANDS_MAX)
		return 1;
	pop3_reply(p, "-ERR Too many bad commands, closing the connection");
	log_info("pop3: session=%s disconnect reason=bad-commands", p->ctx->id);
	return 0;
}

static int
pop3_dispatch(struct pop3_session *p, char *line, size_t len)
{
	const struct pop3_handler *h;
	struct pop3_cmd cmd;
	const char *error;
	char text[128];

	if (pop3_cmd_parse(line, len, &cmd, &error) < 0)
		return pop3_bad_command(p, error);
	h = &pop3_handlers[cmd.verb];
	if ((h->states & (1u << p->state)) == 0) {
		snprintf(text, sizeof(text), "-ERR %s is not allowed %s", pop3_verb_name(cmd.verb),
			 p->state == POP3_STATE_AUTHORIZATION ? "before login" : "after login");
		return pop3_bad_command(p, text);
	}
	p->bad_commands = 0;
	if (p->state == POP3_STATE_TRANSACTION &&
	    !store_borrow(p->cfg->data_dir, &p->store, "pop3", p->ctx->id)) {
		pop3_reply(p, "-ERR [SYS/TEMP] The maildrop is not available; try again later");
		return 1;
	}
	return h->run(p, &cmd);
}

/* Reads and runs one command. Returns 1 to go on, 0 when the session is
 * over; *reason_r then says why, for the log. */
static int
pop3_step(struct pop3_session *p, const char **reason_r)
{
	char line[POP3_AUTH_LINE_MAX + 1];
	size_t len = 0;
	int ret;

	ret = conn_read_line(p->conn, line, sizeof(line), POP3_AUTH_LINE_MAX, &len);
	if (ret == 0) {
		if (p->conn->timed_out) {
			pop3_reply(p, "-ERR Disconnected for inactivity");
			*reason_r = conn_end_reason(p->conn);
		} else if (stop_requested(p->ctx->stop)) {
			pop3_reply(p, "-ERR [SYS/TEMP] Server shutting down");
			*reason_r = "shutdown";
		} else {
			*reason_r = conn_end_reason(p->conn);
		}
		return 0;
	}
	if (ret < 0)
		ret = pop3_bad_command(p, "-ERR Command line too long");
	else
		ret = pop3_dispatch(p, line, len);
	/* The line may have held a password, and so may the input buffer
	 * it was read from. */
	explicit_bzero(line, sizeof(line));
	conn_forget_input(p->conn);
	if (ret == 0)
		*reason_r = p->quit ? "quit" : "closed";
	else if (p->conn->failed)
		*reason_r = conn_end_reason(p->conn);
	return ret > 0 && !p->conn->failed;
}

/* The pause after a failed login, cut short by a stop. */
static bool
pop3_auth_sleep(void *arg, long ms)
{
	const struct session_ctx *s = arg;

	if (s->conn->wlen > 0)
		(void)conn_flush(s->conn);
	return stop_sleep(s->stop, ms);
}

static int
pop3_session_start(struct session_ctx *s)
{
	struct pop3_session *p = calloc(1, sizeof(*p));
	long timeout = s->cfg->pop3_timeout;

	if (p == NULL)
		log_fatal("out of memory");
	s->state = p;
	p->ctx = s;
	p->cfg = s->cfg;
	p->conn = s->conn;
	p->state = POP3_STATE_AUTHORIZATION;
	p->end_reason = "closed";
	p->auth = (struct auth_client){ .cfg = s->cfg, .proto = "pop3", .session_id = s->id,
					.ip = s->conn->peer_ip, .sleep = pop3_auth_sleep,
					.sleep_arg = s };
	/* RFC 1939 asks for an autologout timer of at least ten minutes;
	 * the configured value is the sysadmin's choice. */
	p->conn->timeout_ms = timeout > INT_MAX / 1000 ? INT_MAX : (int)(timeout * 1000);
	log_debug("pop3: session=%s connect client=%s tls=%s", s->id, s->conn->peer_ip,
		  conn_is_tls(s->conn) ? "yes" : "no");
	pop3_reply(p, "+OK %s POP3 server ready",
		   p->cfg->myhostname != NULL && p->cfg->myhostname[0] != '\0' ? p->cfg->myhostname
									  : "youju");
	return !p->conn->failed;
}

static int
pop3_session_next(struct session_ctx *s)
{
	struct pop3_session *p = s->state;
	int ret = pop3_step(p, &p->end_reason);

	/* Between commands no connection is held, unless it holds the
	 * maildrop lock (a shared database). */
	store_give_back(&p->store);
	return ret > 0;
}

static void
pop3_session_end(struct session_ctx *s)
{
	struct pop3_session *p = s->state;

	if (p == NULL)
		return;
	if (p->state == POP3_STATE_TRANSACTION) {
		log_info("pop3: session=%s logout user=%s reason=%s retr=%u top=%u dele=%u",
			 p->ctx->id, p->account.address, p->end_reason, p->n_retr, p->n_top,
			 p->n_dele);
	} else {
		log_debug("pop3: session=%s disconnect reason=%s", p->ctx->id, p->end_reason);
	}
	pop3_maildrop_free(p);
	if (p->locked)
		pop3_drop_maildrop(p, p->account.id);
	p->locked = false;
	if (p->store != NULL)
		store_close(&p->store);
	explicit_bzero(p->user, sizeof(p->user));
	/* The last reply goes out when the conn is closed, which waits only
	 * a moment for a client that stopped reading. */
	free(p);
	s->state = NULL;
}

const struct session_proto pop3_proto = {
	.name = "pop3",
	.start = pop3_session_start,
	.step = pop3_session_next,
	.end = pop3_session_end,
};
