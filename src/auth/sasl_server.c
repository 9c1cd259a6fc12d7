#include "auth/sasl_server.h"

#include <stdbool.h>
#include <string.h>

/* The LOGIN challenges, base64 of "Username:" and "Password:". Outlook
 * matches these exact strings. */
#define SASL_LOGIN_USER "VXNlcm5hbWU6"
#define SASL_LOGIN_PASS "UGFzc3dvcmQ6"
/* Decoded responses: SASL_RESPONSE_MAX base64 characters at most. */
#define SASL_DECODED_MAX (SASL_RESPONSE_MAX / 4 * 3 + 1)

int
sasl_mech_lookup(const char *name, enum sasl_mech *mech_r)
{
	if (strcmp(name, "PLAIN") == 0)
		*mech_r = SASL_MECH_PLAIN;
	else if (strcmp(name, "LOGIN") == 0)
		*mech_r = SASL_MECH_LOGIN;
	else
		return 0;
	return 1;
}

/* RFC 4616: authzid NUL authcid NUL password. Acting as someone else (a
 * different authzid) is not offered. */
static enum sasl_status
sasl_plain_take(struct sasl_server *s, const unsigned char *msg, size_t len)
{
	char authzid[SASL_FIELD_MAX + 1];
	enum sasl_status st = SASL_DONE;

	if (sasl_plain_split(msg, len, authzid, s->authcid, s->passwd) < 0)
		st = SASL_BAD_CREDS;
	else if (authzid[0] != '\0' && strcmp(authzid, s->authcid) != 0)
		st = SASL_BAD_CREDS;
	if (st != SASL_DONE)
		explicit_bzero(s->passwd, sizeof(s->passwd));
	return st;
}

/* A LOGIN field: text of sane length, no NUL. */
static bool
sasl_login_field(const unsigned char *in, size_t len, char *out)
{
	if (len == 0 || len > SASL_FIELD_MAX || memchr(in, '\0', len) != NULL)
		return false;
	memcpy(out, in, len);
	out[len] = '\0';
	return true;
}

/* One decoded response, for the current step. */
static enum sasl_status
sasl_take(struct sasl_server *s, const unsigned char *msg, size_t len, const char **challenge_r)
{
	s->step++;
	if (s->mech == SASL_MECH_PLAIN)
		return sasl_plain_take(s, msg, len);
	if (s->step == 1) {
		if (!sasl_login_field(msg, len, s->authcid))
			return SASL_BAD_CREDS;
		*challenge_r = SASL_LOGIN_PASS;
		return SASL_CONTINUE;
	}
	return sasl_login_field(msg, len, s->passwd) ? SASL_DONE : SASL_BAD_CREDS;
}

static enum sasl_status
sasl_decode_take(struct sasl_server *s, const char *b64, const char **challenge_r)
{
	unsigned char msg[SASL_DECODED_MAX];
	enum sasl_status st;
	long n;

	n = sasl_base64_decode(b64, strlen(b64), msg, sizeof(msg));
	if (n < 0)
		return SASL_MALFORMED;
	st = sasl_take(s, msg, (size_t)n, challenge_r);
	explicit_bzero(msg, sizeof(msg));
	return st;
}

enum sasl_status
sasl_server_start(struct sasl_server *s, enum sasl_mech mech, const char *initial,
		  const char **challenge_r)
{
	memset(s, 0, sizeof(*s));
	s->mech = mech;
	if (initial != NULL)
		return sasl_decode_take(s, initial, challenge_r);
	*challenge_r = mech == SASL_MECH_LOGIN ? SASL_LOGIN_USER : "";
	return SASL_CONTINUE;
}

enum sasl_status
sasl_server_step(struct sasl_server *s, const char *line, const char **challenge_r)
{
	/* RFC 4422 3.5: the client may abort at any challenge. */
	if (strcmp(line, "*") == 0)
		return SASL_CANCELLED;
	return sasl_decode_take(s, line, challenge_r);
}

void
sasl_server_clear(struct sasl_server *s)
{
	explicit_bzero(s, sizeof(*s));
}

enum sasl_status
sasl_exchange(struct sasl_server *s, enum sasl_mech mech, const char *initial,
	      const struct sasl_io *io)
{
	char line[SASL_RESPONSE_MAX + 3];	/* + CRLF, for readers that keep it */
	const char *challenge = "";
	enum sasl_status st;
	int ret;

	st = sasl_server_start(s, mech, initial, &challenge);
	while (st == SASL_CONTINUE) {
		if (io->send_challenge(io->arg, challenge) <= 0)
			return SASL_GONE;
		ret = io->read_response(io->arg, line, sizeof(line));
		if (ret == 0)
			st = SASL_GONE;
		else if (ret < 0)
			st = SASL_MALFORMED;
		else
			st = sasl_server_step(s, line, &challenge);
	}
	explicit_bzero(line, sizeof(line));
	return st;
}
