/* smtp_parse.h - SMTP command lines and their arguments (RFC 5321 and
 * extensions). Pure code over a line buffer: no I/O, no globals.
 *
 * Errors are returned as a complete reply text without CRLF, e.g.
 * "501 5.5.4 Syntax: MAIL FROM:<address>", a static string that the
 * session sends as is.
 */
#ifndef YJ_SMTP_PARSE_H
#define YJ_SMTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"

#define SMTP_LOCAL_MAX 256		/* bytes of a local part (64 octets + UTF-8 room) */
#define SMTP_DOMAIN_MAX 255

enum smtp_verb {
	SMTP_CMD_UNKNOWN,
	SMTP_CMD_HELO, SMTP_CMD_EHLO, SMTP_CMD_MAIL, SMTP_CMD_RCPT,
	SMTP_CMD_DATA, SMTP_CMD_BDAT, SMTP_CMD_RSET, SMTP_CMD_NOOP,
	SMTP_CMD_QUIT, SMTP_CMD_HELP, SMTP_CMD_VRFY, SMTP_CMD_EXPN,
	SMTP_CMD_STARTTLS, SMTP_CMD_AUTH,
};

struct smtp_cmd {
	enum smtp_verb verb;
	const char *name;	/* the verb as sent, NUL-terminated in line */
	const char *arg;	/* after the verb and its space; "" if none */
};

/* Splits a command line in place. line holds len bytes ending in CRLF (a
 * bare LF terminator is accepted). The terminator is cut off, the verb
 * is matched case-insensitively. Returns 1, or -1 with *error_r set for a
 * line with a NUL byte, a bare CR, or no verb. An unknown verb is not an
 * error: verb is SMTP_CMD_UNKNOWN. */
int smtp_cmd_parse(char *line, size_t len, struct smtp_cmd *cmd, const char **error_r);

/* A mailbox from a reverse-path or forward-path. */
struct smtp_path {
	bool null_path;			/* MAIL FROM:<> */
	bool postmaster;		/* RCPT TO:<Postmaster> without a domain */
	bool utf8;			/* non-ASCII bytes in it */
	char local[SMTP_LOCAL_MAX + 1];	/* unquoted: "a b"@x gives a b */
	char domain[SMTP_DOMAIN_MAX + 1];	/* lowercased; "[1.2.3.4]" kept as is */
};

/* Parses "<...>" (RFC 5321 Path; a source route "@a,@b:" is accepted and
 * ignored). A path must be a well-formed mailbox: dot-atom or quoted
 * local part, a domain of LDH labels or an address literal. UTF-8 (well
 * formed) is accepted in both parts only if utf8_ok. On success *end_r
 * points after the '>'. Returns 1 or -1 with *error_r, e.g.
 * "501 5.1.7 Bad sender address syntax" style texts chosen by caller:
 * this function sets *error_r to a short reason ("bad local part"). */
int smtp_path_parse(const char *s, bool utf8_ok, struct smtp_path *path,
		    const char **end_r, const char **error_r);

/* Renders a path back as local@domain (quoting the local part if it
 * needs it). Returns the length, or -1 if out is too small. */
int smtp_path_format(const struct smtp_path *path, char *out, size_t outlen);

enum smtp_body { SMTP_BODY_UNSET, SMTP_BODY_7BIT, SMTP_BODY_8BITMIME, SMTP_BODY_BINARYMIME };

struct smtp_mail_args {
	struct smtp_path path;
	long long size;			/* SIZE=, -1 if not given */
	enum smtp_body body;
	bool smtputf8;
	char auth[SMTP_LOCAL_MAX + SMTP_DOMAIN_MAX + 8];	/* AUTH=, xtext decoded, "" if none */
	char envid[101];		/* ENVID= (xtext decoded) */
	char ret[8];			/* RET=FULL|HDRS, "" if none */
};

/* Parses the argument of MAIL: "FROM:<path> [params]". Accepts one space
 * after the colon (common in the wild). Unknown or repeated parameters
 * and bad values are errors ("555 5.5.4 ..."); a bad address is
 * "501 5.1.7 ..."; a wrong form is "501 5.5.4 Syntax: MAIL FROM:<address>".
 * SMTPUTF8 in the parameters allows UTF-8 in the path. */
int smtp_mail_parse(const char *arg, struct smtp_mail_args *out, const char **error_r);

struct smtp_rcpt_args {
	struct smtp_path path;
	char notify[64];		/* NOTIFY=, "" if none */
	char orcpt[512];		/* ORCPT=, "" if none */
};

/* Parses the argument of RCPT: "TO:<path> [params]". utf8_ok comes from
 * the transaction's MAIL SMTPUTF8. Errors as for MAIL, with "501 5.1.3"
 * for a bad address. The null path is an error here. */
int smtp_rcpt_parse(const char *arg, bool utf8_ok, struct smtp_rcpt_args *out,
		    const char **error_r);

/* Parses the argument of BDAT: "SIZE [LAST]". Returns 1 or -1. */
int smtp_bdat_parse(const char *arg, unsigned long long *size_r, bool *last_r,
		    const char **error_r);

/* Checks a HELO/EHLO argument: a domain or address literal (lenient: any
 * printable non-space token is accepted, as the field demands, but it
 * must be present and one token). Returns 1 or -1. */
int smtp_helo_check(const char *arg, const char **error_r);

#endif
