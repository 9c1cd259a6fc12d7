/* pop3_parse.h - POP3 command lines (RFC 1939, 2449, 2595, 5034).
 * Pure code over a line buffer: no I/O, no globals.
 *
 * A command is checked in full here, arguments included, so that the
 * session only has to look at its state and the maildrop. Errors come
 * back as a complete reply without CRLF ("-ERR Syntax: TOP msg lines"),
 * a static string the session sends as is. Error texts never echo the
 * client's input: a mistyped command may hold a password.
 */
#ifndef YJ_POP3_PARSE_H
#define YJ_POP3_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

/* RFC 2449: a command line is at most 255 octets, CRLF included. */
#define POP3_CMD_LINE_MAX 255
/* AUTH lines carry base64 (an initial response or a continuation), which
 * may be longer than a command: a PLAIN response holds three fields. */
#define POP3_AUTH_LINE_MAX 2048
/* Mechanism names are at most 20 characters (RFC 4422). */
#define POP3_MECH_MAX 20

enum pop3_verb {
	POP3_CMD_UNKNOWN,
	POP3_CMD_USER, POP3_CMD_PASS, POP3_CMD_QUIT, POP3_CMD_STAT,
	POP3_CMD_LIST, POP3_CMD_RETR, POP3_CMD_DELE, POP3_CMD_NOOP,
	POP3_CMD_RSET, POP3_CMD_TOP, POP3_CMD_UIDL, POP3_CMD_CAPA,
	POP3_CMD_STLS, POP3_CMD_AUTH,
	POP3_CMD_COUNT
};

struct pop3_cmd {
	enum pop3_verb verb;
	/* USER: the name; PASS: the password (the rest of the line, spaces
	 * kept); AUTH: the mechanism, uppercased, or "" when AUTH came
	 * alone (a request for the mechanism list). "" for other verbs. */
	const char *arg;
	/* AUTH: the initial response as sent (base64 or "="), or NULL. */
	const char *initial;
	bool has_msg;			/* LIST and UIDL: a message was named */
	uint32_t msg;			/* message number as given; 0 is possible */
	unsigned long lines;		/* TOP: body lines (saturated, never wraps) */
};

/* Parses one command line in place. line holds len bytes ending in CRLF
 * (a bare LF is accepted; a missing terminator too) and has room for one
 * more byte, the NUL that conn_read_line() leaves there.
 * The verb is matched case-insensitively. Returns 1 with cmd filled, or
 * -1 with *error_r set: an unknown verb, a NUL or control byte, a line
 * longer than POP3_CMD_LINE_MAX (POP3_AUTH_LINE_MAX for AUTH), or bad
 * arguments. cmd->verb is set whenever the verb was recognised, even on
 * error. Pointers in cmd point into line. */
int pop3_cmd_parse(char *line, size_t len, struct pop3_cmd *cmd, const char **error_r);

/* The verb's name in capitals ("RETR"); "?" for POP3_CMD_UNKNOWN. */
const char *pop3_verb_name(enum pop3_verb verb);

/* Parses a client's answer to an AUTH challenge, in place (room for
 * len + 1 bytes, as above): the line without its terminator is base64,
 * an empty line an empty response. Returns 1 with *b64_r set, 0 if the
 * client cancelled the exchange with "*", -1 for a line that cannot be
 * base64 at all (NUL, spaces, empty). */
int pop3_auth_line_parse(char *line, size_t len, const char **b64_r);

#endif
