/* sasl_server.h - the one SASL server (RFC 4422) for every protocol: POP3
 * AUTH now, SMTP AUTH, IMAP AUTHENTICATE and ManageSieve next.
 *
 * Mechanisms: PLAIN (RFC 4616) and LOGIN (the exact "Username:" and
 * "Password:" challenges, which Outlook requires). The exchange is a pure
 * state machine over response lines (sasl_server_start/step), so it is
 * tested with scripted exchanges; sasl_exchange() drives it over a
 * protocol's own framing, given as two functions in struct sasl_io.
 *
 * The server only produces credentials. Checking them, the failure delay
 * and the counting are auth_verify() (auth.h), the same for every
 * protocol and for POP3's USER/PASS.
 */
#ifndef YJ_SASL_SERVER_H
#define YJ_SASL_SERVER_H

#include <stddef.h>

#include "auth/sasl.h"

/* The longest response line (base64, without its terminator): a PLAIN
 * message of three SASL_FIELD_MAX fields fits. */
#define SASL_RESPONSE_MAX 4100
/* The mechanisms offered, for CAPA, EHLO and CAPABILITY. */
#define SASL_MECHS "PLAIN LOGIN"

enum sasl_mech { SASL_MECH_PLAIN, SASL_MECH_LOGIN };

enum sasl_status {
	SASL_CONTINUE,		/* send *challenge_r, then feed the response */
	SASL_DONE,		/* authcid and passwd hold the credentials */
	SASL_CANCELLED,		/* the client answered "*" */
	SASL_MALFORMED,		/* a response that is not base64 */
	SASL_BAD_CREDS,		/* decoded, but no usable credentials (an empty
				 * PLAIN message, another authzid): a failed
				 * login, counted as one */
	SASL_GONE,		/* sasl_exchange only: the connection ended */
};

struct sasl_server {
	enum sasl_mech mech;
	unsigned step;		/* responses taken so far */
	char authcid[SASL_FIELD_MAX + 1];
	char passwd[SASL_FIELD_MAX + 1];
};

/* Finds a mechanism by its name (uppercase, as the parsers give it).
 * Returns 1, or 0 if it is not offered. */
int sasl_mech_lookup(const char *name, enum sasl_mech *mech_r);

/* Starts an exchange. initial is the initial response as the client sent
 * it (base64, or "=" for an empty one), or NULL if there was none.
 * Returns SASL_CONTINUE with *challenge_r (base64, possibly "") or a
 * final status. */
enum sasl_status sasl_server_start(struct sasl_server *s, enum sasl_mech mech,
				   const char *initial, const char **challenge_r);

/* Feeds one response line, without its terminator. Same returns. */
enum sasl_status sasl_server_step(struct sasl_server *s, const char *line,
				  const char **challenge_r);

/* Wipes the credentials. Call after every exchange. */
void sasl_server_clear(struct sasl_server *s);

/* How a protocol frames an exchange. */
struct sasl_io {
	void *arg;
	/* Sends a challenge: "+ b64" in POP3 and IMAP, "334 b64" in SMTP.
	 * Returns 1, or 0 if the connection failed. */
	int (*send_challenge)(void *arg, const char *b64);
	/* Reads the client's next line into buf (size bytes) without its
	 * terminator, NUL-terminated. Returns 1, 0 if the connection ended
	 * (timeout, hang-up), -1 for a line too long or unusable. */
	int (*read_response)(void *arg, char *buf, size_t size);
};

/* Runs a whole exchange over io. Never returns SASL_CONTINUE. */
enum sasl_status sasl_exchange(struct sasl_server *s, enum sasl_mech mech,
			       const char *initial, const struct sasl_io *io);

#endif
