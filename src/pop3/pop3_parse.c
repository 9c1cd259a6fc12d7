#include "pop3/pop3_parse.h"

#include <limits.h>
#include <string.h>
#include <strings.h>

/* How a verb's arguments look. */
enum pop3_args {
	ARGS_NONE,		/* STAT, NOOP, RSET, QUIT, CAPA, STLS */
	ARGS_NAME,		/* USER: one word */
	ARGS_TEXT,		/* PASS: the rest of the line, as is */
	ARGS_MSG,		/* RETR, DELE: one message number */
	ARGS_OPT_MSG,		/* LIST, UIDL: an optional message number */
	ARGS_TOP,		/* TOP: message number and line count */
	ARGS_AUTH,		/* AUTH [mechanism [initial-response]] */
};

struct pop3_verb_def {
	const char *name;
	enum pop3_args args;
	const char *syntax;	/* the reply to bad arguments */
};

static const struct pop3_verb_def pop3_verbs[POP3_CMD_COUNT] = {
	[POP3_CMD_UNKNOWN] = { "?", ARGS_NONE, "-ERR Unknown command" },
	[POP3_CMD_USER] = { "USER", ARGS_NAME, "-ERR Syntax: USER name" },
	[POP3_CMD_PASS] = { "PASS", ARGS_TEXT, "-ERR Syntax: PASS password" },
	[POP3_CMD_QUIT] = { "QUIT", ARGS_NONE, "-ERR Syntax: QUIT takes no arguments" },
	[POP3_CMD_STAT] = { "STAT", ARGS_NONE, "-ERR Syntax: STAT takes no arguments" },
	[POP3_CMD_LIST] = { "LIST", ARGS_OPT_MSG, "-ERR Syntax: LIST [msg]" },
	[POP3_CMD_RETR] = { "RETR", ARGS_MSG, "-ERR Syntax: RETR msg" },
	[POP3_CMD_DELE] = { "DELE", ARGS_MSG, "-ERR Syntax: DELE msg" },
	[POP3_CMD_NOOP] = { "NOOP", ARGS_NONE, "-ERR Syntax: NOOP takes no arguments" },
	[POP3_CMD_RSET] = { "RSET", ARGS_NONE, "-ERR Syntax: RSET takes no arguments" },
	[POP3_CMD_TOP] = { "TOP", ARGS_TOP, "-ERR Syntax: TOP msg lines" },
	[POP3_CMD_UIDL] = { "UIDL", ARGS_OPT_MSG, "-ERR Syntax: UIDL [msg]" },
	[POP3_CMD_CAPA] = { "CAPA", ARGS_NONE, "-ERR Syntax: CAPA takes no arguments" },
	[POP3_CMD_STLS] = { "STLS", ARGS_NONE, "-ERR Syntax: STLS takes no arguments" },
	[POP3_CMD_AUTH] = { "AUTH", ARGS_AUTH,
			    "-ERR Syntax: AUTH mechanism [initial-response]" },
};

const char *
pop3_verb_name(enum pop3_verb verb)
{
	if ((unsigned)verb >= POP3_CMD_COUNT)
		return "?";
	return pop3_verbs[verb].name;
}

static enum pop3_verb
pop3_verb_lookup(const char *name, size_t len)
{
	for (int v = POP3_CMD_UNKNOWN + 1; v < POP3_CMD_COUNT; v++) {
		const char *def = pop3_verbs[v].name;
		if (strlen(def) == len && strncasecmp(def, name, len) == 0)
			return (enum pop3_verb)v;
	}
	return POP3_CMD_UNKNOWN;
}

/* Cuts the CRLF (or LF) off and NUL-terminates. Returns the new length, or
 * -1 if the line holds a NUL, a CR not before the final LF or another
 * control character other than tab. */
static long
pop3_line_trim(char *line, size_t len)
{
	if (len > 0 && line[len - 1] == '\n')
		len--;
	if (len > 0 && line[len - 1] == '\r')
		len--;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return -1;
	}
	line[len] = '\0';
	return (long)len;
}

static bool
pop3_is_space(char c)
{
	return c == ' ' || c == '\t';
}

/* Removes trailing blanks, which some clients leave after a command. */
static void
pop3_rtrim(char *s)
{
	size_t n = strlen(s);

	while (n > 0 && pop3_is_space(s[n - 1]))
		s[--n] = '\0';
}

/* Parses a decimal number of 1-10 digits that fits in 32 bits and
 * moves *sp past it. */
static bool
pop3_parse_u32(char **sp, uint32_t *out)
{
	char *s = *sp;
	uint64_t v = 0;
	size_t n = 0;

	while (s[n] >= '0' && s[n] <= '9') {
		if (n == 10)
			return false;
		v = v * 10 + (uint64_t)(s[n] - '0');
		n++;
	}
	if (n == 0 || v > UINT32_MAX)
		return false;
	*out = (uint32_t)v;
	*sp = s + n;
	return true;
}

/* A line count may be any size: clients ask for "all of it" with huge
 * numbers, which saturate rather than fail. */
static bool
pop3_parse_count(char **sp, unsigned long *out)
{
	char *s = *sp;
	unsigned long v = 0;
	size_t n = 0;

	while (s[n] >= '0' && s[n] <= '9') {
		unsigned d = (unsigned)(s[n] - '0');
		v = v > (ULONG_MAX - d) / 10 ? ULONG_MAX : v * 10 + d;
		n++;
	}
	if (n == 0)
		return false;
	*out = v;
	*sp = s + n;
	return true;
}

static char *
pop3_skip_space(char *s)
{
	while (pop3_is_space(*s))
		s++;
	return s;
}

static bool
pop3_args_msg(char *arg, struct pop3_cmd *cmd, bool optional)
{
	pop3_rtrim(arg);
	if (*arg == '\0')
		return optional;
	if (!pop3_parse_u32(&arg, &cmd->msg) || *arg != '\0')
		return false;
	cmd->has_msg = true;
	return true;
}

static bool
pop3_args_top(char *arg, struct pop3_cmd *cmd)
{
	pop3_rtrim(arg);
	if (!pop3_parse_u32(&arg, &cmd->msg) || !pop3_is_space(*arg))
		return false;
	cmd->has_msg = true;
	arg = pop3_skip_space(arg);
	return pop3_parse_count(&arg, &cmd->lines) && *arg == '\0';
}

static bool
pop3_is_mech_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* "AUTH" alone, "AUTH MECH" or "AUTH MECH INITIAL". The initial response
 * is checked for its alphabet only; decoding is the session's job. */
static bool
pop3_args_auth(char *arg, struct pop3_cmd *cmd)
{
	size_t n = 0;

	pop3_rtrim(arg);
	cmd->arg = arg;
	if (*arg == '\0')
		return true;
	while (pop3_is_mech_char(arg[n])) {
		if (arg[n] >= 'a' && arg[n] <= 'z')
			arg[n] = (char)(arg[n] - 'a' + 'A');
		n++;
	}
	if (n == 0 || n > POP3_MECH_MAX)
		return false;
	if (arg[n] == '\0')
		return true;
	if (!pop3_is_space(arg[n]))
		return false;
	arg[n] = '\0';
	cmd->initial = pop3_skip_space(arg + n + 1);
	for (const char *p = cmd->initial; *p != '\0'; p++) {
		if (pop3_is_space(*p))
			return false;
	}
	return *cmd->initial != '\0';
}

static bool
pop3_args_parse(enum pop3_args kind, char *arg, struct pop3_cmd *cmd)
{
	switch (kind) {
	case ARGS_NONE:
		pop3_rtrim(arg);
		return *arg == '\0';
	case ARGS_NAME:
		pop3_rtrim(arg);
		cmd->arg = arg;
		return *arg != '\0' && strpbrk(arg, " \t") == NULL;
	case ARGS_TEXT:
		cmd->arg = arg;
		return *arg != '\0';
	case ARGS_MSG:
		return pop3_args_msg(arg, cmd, false);
	case ARGS_OPT_MSG:
		return pop3_args_msg(arg, cmd, true);
	case ARGS_TOP:
		return pop3_args_top(arg, cmd);
	case ARGS_AUTH:
		return pop3_args_auth(arg, cmd);
	}
	return false;
}

int
pop3_cmd_parse(char *line, size_t len, struct pop3_cmd *cmd, const char **error_r)
{
	size_t vlen = 0;
	long n;
	char *arg;

	memset(cmd, 0, sizeof(*cmd));
	cmd->verb = POP3_CMD_UNKNOWN;
	cmd->arg = "";
	n = pop3_line_trim(line, len);
	if (n < 0) {
		*error_r = "-ERR Invalid characters in command";
		return -1;
	}
	while (vlen < 4 && ((line[vlen] >= 'A' && line[vlen] <= 'Z') ||
			    (line[vlen] >= 'a' && line[vlen] <= 'z')))
		vlen++;
	if (line[vlen] != '\0' && line[vlen] != ' ')
		vlen = 0;
	cmd->verb = vlen == 0 ? POP3_CMD_UNKNOWN : pop3_verb_lookup(line, vlen);
	if (cmd->verb == POP3_CMD_UNKNOWN) {
		*error_r = "-ERR Unknown command";
		return -1;
	}
	if ((size_t)n + 2 > (cmd->verb == POP3_CMD_AUTH ? POP3_AUTH_LINE_MAX : POP3_CMD_LINE_MAX)) {
		*error_r = "-ERR Command line too long";
		return -1;
	}
	/* RFC 1939: one space between keyword and argument; PASS keeps
	 * everything after it, since a password may contain spaces. */
	arg = line + vlen + (line[vlen] == ' ' ? 1 : 0);
	if (cmd->verb != POP3_CMD_PASS)
		arg = pop3_skip_space(arg);
	if (!pop3_args_parse(pop3_verbs[cmd->verb].args, arg, cmd)) {
		*error_r = pop3_verbs[cmd->verb].syntax;
		return -1;
	}
	return 1;
}

int
pop3_auth_line_parse(char *line, size_t len, const char **b64_r)
{
	long n = pop3_line_trim(line, len);

	if (n < 0)
		return -1;
	for (long i = 0; i < n; i++) {
		if (pop3_is_space(line[i]))
			return -1;
	}
	if (strcmp(line, "*") == 0)
		return 0;
	*b64_r = line;
	return 1;
}
