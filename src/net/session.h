/* session.h - what the session runtime hands to a protocol, and what a
 * protocol gives the runtime.
 *
 * A protocol (SMTP, POP3, later IMAP) is a session record plus three
 * functions. The runtime accepts a connection, checks the limits,
 * completes the TLS handshake on implicit-TLS listeners, then calls
 * start() once, step() once per command for as long as it returns 1,
 * and end() once. Between two steps the session waits for input; that
 * wait belongs to the runtime, which may park an idle session (release
 * its thread and buffers) and resume it on any thread later. Inside a
 * step the protocol reads and writes its connection top to bottom with
 * blocking, timed calls, as before.
 *
 * Everything a session needs from the server comes in through struct
 * session_ctx; protocols never call up into the daemon.
 */
#ifndef YJ_SESSION_H
#define YJ_SESSION_H

#include <stdatomic.h>
#include <stdbool.h>

#include <openssl/ssl.h>

#include "base/config.h"
#include "net/conn.h"

enum listener_kind {
	LISTENER_SMTP,
	LISTENER_SUBMISSION,
	LISTENER_SUBMISSIONS,
	LISTENER_IMAP,
	LISTENER_IMAPS,
	LISTENER_POP3,
	LISTENER_POP3S,
	LISTENER_SENDMAIL,	/* the local socket of `youju sendmail` */
	LISTENER_COUNT
};

/* The LISTENER_SENDMAIL socket's name in the data dir. */
#define SENDMAIL_SOCKET "sendmail.sock"

/* The server-wide stop token: set once, never cleared. fd becomes
 * readable when the stop is requested, so waits can include it. */
struct stop {
	atomic_bool requested;
	int fd;
};

/* Has a stop been requested? Then a session whose read ended should tell
 * its client so in its protocol (SMTP 421 4.3.2, POP3 -ERR [SYS/TEMP]). */
bool stop_requested(const struct stop *stop);

/* Waits ms milliseconds, or less if a stop is requested (returns false
 * then). For the delays a session makes on purpose, like the pause after
 * a failed login, which must not hold up a shutdown. */
bool stop_sleep(const struct stop *stop, long ms);

/* Why the runtime runs a step (session_ctx.events, a bit set). */
#define SESSION_EV_INPUT 1u	/* input is there (or an EOF/error to read) */
#define SESSION_EV_WAKE 2u	/* session_wake() was called since the last step */
#define SESSION_EV_TIMEOUT 4u	/* the wait for input ran out: conn->timed_out
				 * is set, the step should say goodbye */

struct rt_session;

struct session_ctx {
	const struct config *cfg;
	SSL_CTX *tls;			/* NULL if no certificate is configured */
	struct conn *conn;
	enum listener_kind kind;
	const struct stop *stop;
	char id[16];			/* session id, for log lines */
	void *state;			/* the protocol's session record */
	unsigned events;		/* SESSION_EV_* for the step being run */
	atomic_bool authenticated;	/* see session_set_authenticated() */
	struct rt_session *rt;		/* the runtime's record; NULL outside it */
};

/* Marks the session as past its pre-authentication phase: a POP3 or IMAP
 * login, the first accepted SMTP MAIL. Until then it counts against the
 * (smaller) pre-auth limit and may be ended early, when idle, to make
 * room for new clients. Any thread. */
void session_set_authenticated(struct session_ctx *s);
bool session_is_authenticated(const struct session_ctx *s);

/* Asks the runtime to run the session's step soon with SESSION_EV_WAKE
 * set, whether it is parked or waiting for input: how another part of
 * the server (the store's notifier, for IMAP IDLE) tells a session that
 * something happened. Callable from any thread, but only while the
 * session exists: whoever keeps a ctx to wake must forget it in the
 * protocol's end(). A step run only for a wake-up (events without
 * SESSION_EV_INPUT) must not block reading; it may write and return. */
void session_wake(struct session_ctx *s);

/* The key that per-client limits count by: an IPv4 address as it is, an
 * IPv6 address cut to its first v6_prefix bits ("2001:db8:1:2::/64"),
 * since one IPv6 client usually holds a whole /64. out gets at least 64
 * bytes. Text that is no address is copied as it is. */
#define SESSION_CLIENT_KEY_MAX 64
void session_client_key(const char *ip, int v6_prefix, char *out, size_t outlen);

/* Is this session's transport safe for cleartext passwords: TLS, or
 * loopback when secure_loopback is on? */
bool session_is_secure(const struct session_ctx *s);

struct session_proto {
	const char *name;		/* for logs: "smtp", "pop3" */
	/* Allocates s->state and greets the client. Returns 1 to go on to
	 * the first step, 0 if the session is already over. */
	int (*start)(struct session_ctx *s);
	/* Reads and handles one command (it may block inside, with the
	 * conn's timeouts). Returns 1 to go on, 0 when the session is over. */
	int (*step)(struct session_ctx *s);
	/* Frees s->state, after a last flush. Called once, even if start
	 * returned 0. */
	void (*end)(struct session_ctx *s);
};

#endif
