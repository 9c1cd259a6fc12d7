/* server.h - what youjud hands to each protocol session.
 *
 * youjud accepts connections on its listeners and runs each in a thread
 * of its own. Before calling the protocol's session function it has
 * checked the connection limits and, on an implicit-TLS listener
 * (submissions, imaps, pop3s), completed the TLS handshake. The session
 * function owns the connection until it returns; youjud then closes it.
 */
#ifndef YJ_SERVER_H
#define YJ_SERVER_H

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
	LISTENER_COUNT
};

struct server {
	const struct config *cfg;
	SSL_CTX *tls;			/* NULL if no certificate is configured */
	int stop_fd;			/* becomes readable when youjud stops */
};

struct session_ctx {
	const struct server *srv;
	struct conn *conn;
	enum listener_kind kind;
	char id[16];			/* session id, for log lines */
};

/* Is this session's transport safe for cleartext passwords: TLS, or
 * loopback when secure_loopback is on? */
bool session_is_secure(const struct session_ctx *s);

/* Is youjud stopping? Then a session whose read ended should tell its
 * client so in its protocol (SMTP 421 4.3.2, POP3 -ERR [SYS/TEMP]). */
bool server_stopping(void);

/* Waits ms milliseconds, or less if youjud is stopping (returns false
 * then). For the delays a session makes on purpose, like the pause
 * after a failed login, which must not hold up a shutdown. */
bool session_sleep(const struct session_ctx *s, long ms);

/* The protocol entry points, one per protocol module. */
void smtp_session_run(struct session_ctx *s);
void pop3_session_run(struct session_ctx *s);

#endif
