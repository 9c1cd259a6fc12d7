/* cli_sendmail.c - `youju sendmail`, the sendmail(1) interface scripts,
 * cron and mail(1) expect, with the options Postfix's sendmail takes.
 *
 * It reads the message from standard input and hands it to the running
 * youjud over the sendmail socket in the data dir, speaking SMTP there.
 * youjud learns who is sending from the socket itself (SO_PEERCRED), tells
 * it in its greeting ("220 host youju sendmail <user@domain>"), and
 * applies the submission checks and fix-ups; only root and youjud's own
 * user may choose another sender with -f. Exit statuses are sysexits(3),
 * as sendmail's. */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sysexits.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/util.h"
#include "cli/cli.h"
#include "cli/cli_sendmail.h"
#include "mime/mime_addr.h"
#include "net/session.h"

#define SM_MESSAGE_MAX (256u * 1024 * 1024)	/* youjud's size limit applies too */
#define SM_RCPTS_MAX 10000
#define SM_ADDRESS_MAX 320
#define SM_REPLY_MAX 1024
#define SM_TIMEOUT_SECONDS 300
#define SM_HEADER_MAX (1024 * 1024)

struct sm_opts {
	const char *data_dir;
	const char *sender;		/* -f / -r */
	const char *full_name;		/* -F */
	bool extract;			/* -t */
	bool dot_ends;			/* no -i: a "." line ends the input */
	bool list_queue;		/* -bp, mailq */
	bool smtp_stdio;		/* -bs: SMTP on standard input and output */
	bool no_op;			/* -bi, -I: no alias file to rebuild */
	char **rcpts;
	size_t n_rcpts;
};

static int
sm_fail(int status, const char *fmt, const char *arg)
{
	fprintf(stderr, "sendmail: ");
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	return status;
}

/* An address goes into an SMTP command as it is: no controls, spaces
 * or angle brackets, and not too long (youjud checks the syntax). */
static bool
sm_address_ok(const char *a)
{
	if (strlen(a) > SM_ADDRESS_MAX)
		return false;
	for (; *a != '\0'; a++) {
		if ((unsigned char)*a <= ' ' || *a == 0x7f || *a == '<' || *a == '>')
			return false;
	}
	return true;
}

static int
sm_add_rcpt(struct sm_opts *o, const char *address)
{
	if (o->n_rcpts == SM_RCPTS_MAX || !sm_address_ok(address))
		return -1;
	if (o->rcpts == NULL) {
		o->rcpts = calloc(SM_RCPTS_MAX, sizeof(*o->rcpts));
		if (o->rcpts == NULL)
			return -1;
	}
	o->rcpts[o->n_rcpts] = strdup(address);
	return o->rcpts[o->n_rcpts++] == NULL ? -1 : 1;
}

/* A recipient argument may be a comma-separated list, as with Postfix. */
static int
sm_add_rcpt_arg(struct sm_opts *o, const char *arg)
{
	char *copy = strdup(arg), *save = NULL;
	int ret = 1;

	if (copy == NULL)
		return -1;
	for (char *t = strtok_r(copy, ", \t", &save); t != NULL && ret > 0;
	     t = strtok_r(NULL, ", \t", &save))
		ret = sm_add_rcpt(o, t);
	free(copy);
	return ret;
}

/* The value of an option that takes one: "-fX" or "-f X". */
static const char *
sm_opt_value(int argc, char **argv, int *i)
{
	if (argv[*i][2] != '\0')
		return argv[*i] + 2;
	if (*i + 1 >= argc)
		return NULL;
	return argv[++*i];
}

/* Options of sendmail(1) that change nothing here: -oX (-oi aside),
 * -odX delivery modes, -v, -m, -n, -U, and those with a value we accept
 * and leave (-B body type, -C config, -N/-R/-V DSN requests, -q). */
static bool
sm_ignored(const char *a, bool *takes_value)
{
	*takes_value = false;
	if (a[1] == 'o' || a[1] == 'v' || a[1] == 'm' || a[1] == 'n' || a[1] == 'U' ||
	    a[1] == 'q' || a[1] == 'L' || strcmp(a, "-bm") == 0)
		return true;
	if (strchr("BCNRVOXh", a[1]) != NULL) {
		*takes_value = a[2] == '\0';
		return true;
	}
	return false;
}

/* Parses argv[first..]; returns 0 or a sysexits status. */
static int
sm_parse(struct sm_opts *o, int argc, char **argv, int first)
{
	int i = first;

	for (; i < argc && argv[i][0] == '-' && argv[i][1] != '\0'; i++) {
		const char *a = argv[i];
		bool takes;

		if (strcmp(a, "--") == 0) {
			i++;
			break;
		} else if (strcmp(a, "-t") == 0) {
			o->extract = true;
		} else if (strcmp(a, "-i") == 0 || strcmp(a, "-oi") == 0) {
			o->dot_ends = false;
		} else if (strcmp(a, "-bp") == 0) {
			o->list_queue = true;
		} else if (strcmp(a, "-bs") == 0) {
			o->smtp_stdio = true;
		} else if (strcmp(a, "-bi") == 0 || strcmp(a, "-I") == 0) {
			o->no_op = true;
		} else if (a[1] == 'f' || a[1] == 'r') {
			if ((o->sender = sm_opt_value(argc, argv, &i)) == NULL)
				return sm_fail(EX_USAGE, "option %s needs a value", a);
		} else if (a[1] == 'F') {
			if ((o->full_name = sm_opt_value(argc, argv, &i)) == NULL)
				return sm_fail(EX_USAGE, "option %s needs a value", a);
		} else if (sm_ignored(a, &takes)) {
			if (takes && ++i >= argc)
				return sm_fail(EX_USAGE, "option %s needs a value", a);
		} else {
			return sm_fail(EX_USAGE, "unknown option %s", a);
		}
	}
	for (; i < argc; i++) {
		if (sm_add_rcpt_arg(o, argv[i]) < 0)
			return sm_fail(EX_USAGE, "bad recipient or too many: %s", argv[i]);
	}
	return 0;
}

/* Reads up to size bytes of standard input, to and with a LF; returns
 * how many (0 at the end). Unlike fgets, a NUL byte does not hide the
 * rest of its line. */
static size_t
sm_read_piece(char *piece, size_t size)
{
	size_t n = 0;
	int ch;

	while (n < size && (ch = getc(stdin)) != EOF) {
		piece[n++] = (char)ch;
		if (ch == '\n')
			break;
	}
	return n;
}

/* Reads standard input; without -i a line of a single dot ends it. */
static int
sm_read_message(const struct sm_opts *o, struct buf *msg)
{
	char line[8192];
	size_t n;

	while ((n = sm_read_piece(line, sizeof(line))) > 0) {
		bool at_bol = msg->len == 0 || msg->data[msg->len - 1] == '\n';

		if (o->dot_ends && at_bol && ((n == 2 && memcmp(line, ".\n", 2) == 0) ||
					      (n == 3 && memcmp(line, ".\r\n", 3) == 0)))
			break;
		if (buf_append(msg, line, n) < 0)
			return sm_fail(EX_DATAERR, "message larger than %s", "256 MiB");
	}
	if (ferror(stdin))
		return sm_fail(EX_IOERR, "reading the message: %s", strerror(errno));
	return 0;
}

/* The header section's length (up to and without the empty line). */
static size_t
sm_header_len(const struct buf *msg)
{
	for (size_t i = 0; i < msg->len; i++) {
		if ((i == 0 || msg->data[i - 1] == '\n') &&
		    (msg->data[i] == '\n' || (msg->data[i] == '\r' && i + 1 < msg->len &&
					      msg->data[i + 1] == '\n')))
			return i;
	}
	return msg->len;
}

/* If a field of this name starts at i (with its colon, after blanks
 * too: RFC 5322 4.5.3, as youjud's header filter sees it), where its
 * value starts; else 0. */
static size_t
sm_field_value(const struct buf *msg, size_t i, size_t hlen, const char *name)
{
	size_t n = strlen(name), k = i + n;

	if ((i != 0 && msg->data[i - 1] != '\n') || k >= hlen ||
	    strncasecmp(msg->data + i, name, n) != 0)
		return 0;
	while (k < hlen && (msg->data[k] == ' ' || msg->data[k] == '\t'))
		k++;
	return k < hlen && msg->data[k] == ':' ? k + 1 : 0;
}

/* Does the header section have a field of this name? */
static bool
sm_has_field(const struct buf *msg, size_t hlen, const char *name)
{
	for (size_t i = 0; i < hlen; i++) {
		if (sm_field_value(msg, i, hlen, name) > 0)
			return true;
	}
	return false;
}

/* -t: the addresses of every To:, Cc: and Bcc: field (unfolded). */
static int
sm_extract(struct sm_opts *o, const struct buf *msg, size_t hlen)
{
	static const char *const names[] = { "to", "cc", "bcc" };

	for (size_t i = 0; i < hlen; i++) {
		for (size_t k = 0; k < 3; k++) {
			size_t value = sm_field_value(msg, i, hlen, names[k]), end;
			struct mime_addr_list list = { NULL, 0 };

			if (value == 0)
				continue;
			/* The field runs to the next line that does not start with a blank. */
			for (end = value; end < hlen; end++) {
				if (msg->data[end - 1] == '\n' && msg->data[end] != ' ' &&
				    msg->data[end] != '\t')
					break;
			}
			(void)mime_addr_parse(msg->data + value, end - value, &list);
			for (size_t a = 0; a < list.n; a++) {
				char addr[SM_ADDRESS_MAX + 2];

				if (list.v[a].kind != MIME_ADDR_MAILBOX || list.v[a].mailbox.len == 0)
					continue;
				/* "To: root" is a local user: qualified when sent. */
				snprintf(addr, sizeof(addr), "%s%s%s", list.v[a].mailbox.data,
					 list.v[a].domain.len > 0 ? "@" : "",
					 list.v[a].domain.len > 0 ? list.v[a].domain.data : "");
				if (sm_add_rcpt(o, addr) < 0) {
					mime_addr_list_free(&list);
					return -1;
				}
			}
			mime_addr_list_free(&list);
		}
	}
	return 1;
}

/* ---- the SMTP dialogue on the socket ---- */

struct sm_conn {
	int fd;
	FILE *in;
	char reply[SM_REPLY_MAX];	/* the last reply's last line */
};

static int
sm_connect(struct sm_conn *c, const char *data_dir)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = SM_TIMEOUT_SECONDS };

	if ((size_t)snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/%s", data_dir,
			     SENDMAIL_SOCKET) >= sizeof(sun.sun_path))
		return sm_fail(EX_USAGE, "data dir path too long: %s", data_dir);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
		return sm_fail(EX_TEMPFAIL, "is youjud running? %s", strerror(errno));
	(void)setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	c->in = fdopen(c->fd, "r");
	return c->in == NULL ? sm_fail(EX_OSERR, "fdopen: %s", strerror(errno)) : 0;
}

/* Reads one reply (all its lines); returns its code, or -1. */
static int
sm_reply(struct sm_conn *c)
{
	for (;;) {
		size_t len;

		if (fgets(c->reply, sizeof(c->reply), c->in) == NULL)
			return -1;
		len = strcspn(c->reply, "\r\n");
		if (c->reply[len] == '\0') {
			/* A longer line than we keep: the rest is skipped. */
			int ch;

			while ((ch = fgetc(c->in)) != EOF && ch != '\n')
				;
		}
		c->reply[len] = '\0';
		if (len < 4 || c->reply[3] != '-')
			return len >= 3 ? atoi(c->reply) : -1;
	}
}

/* Sends a command, returns the reply's code (or -1). */
static int
sm_cmd(struct sm_conn *c, const char *fmt, const char *arg)
{
	char line[SM_ADDRESS_MAX * 2 + 64];
	int n = snprintf(line, sizeof(line), fmt, arg);

	if (n < 0 || (size_t)n >= sizeof(line) || util_write_all(c->fd, line, (size_t)n) < 0)
		return -1;
	return sm_reply(c);
}

/* The status for a refusal: 4xx temporary, 5xx permanent. */
static int
sm_refused(const struct sm_conn *c, int code)
{
	fprintf(stderr, "sendmail: youjud said: %s\n", code < 0 ? "(no reply)" : c->reply);
	return code >= 500 ? EX_UNAVAILABLE : EX_TEMPFAIL;
}

/* The message with CRLF line ends and dot-stuffing, then the final dot. */
static int
sm_send_data(struct sm_conn *c, const char *prefix, const struct buf *msg)
{
	struct buf out;
	bool bol = true;
	int ret = 1;

	buf_init(&out, 128 * 1024);
	if (buf_append_str(&out, prefix) < 0)
		ret = -1;
	for (size_t i = 0; i < msg->len && ret > 0; i++) {
		char ch = msg->data[i];

		if ((bol && ch == '.' && buf_append(&out, ".", 1) < 0) ||
		    (ch == '\n' && (i == 0 || msg->data[i - 1] != '\r') &&
		     buf_append(&out, "\r", 1) < 0) ||
		    buf_append(&out, &ch, 1) < 0)
			ret = -1;
		bol = ch == '\n';
		if (out.len > 64 * 1024) {
			ret = util_write_all(c->fd, out.data, out.len) < 0 ? -1 : ret;
			buf_reset(&out);
		}
	}
	if (ret > 0 && msg->len > 0 && !bol && buf_append(&out, "\r\n", 2) < 0)
		ret = -1;
	if (ret > 0 && (buf_append(&out, ".\r\n", 3) < 0 ||
			util_write_all(c->fd, out.data, out.len) < 0))
		ret = -1;
	buf_free(&out);
	return ret;
}

/* The login youjud names in its greeting: "... <user@domain>". */
static int
sm_greeting_login(const struct sm_conn *c, char *out, size_t outlen)
{
	const char *lt = strrchr(c->reply, '<'), *gt = strrchr(c->reply, '>');

	if (lt == NULL || gt == NULL || gt < lt || (size_t)(gt - lt) > outlen)
		return -1;
	memcpy(out, lt + 1, (size_t)(gt - lt - 1));
	out[gt - lt - 1] = '\0';
	return 1;
}

/* "From: Name <sender>" for a message without one (-F, else the bare
 * address): the name goes in a quoted string. */
static void
sm_from_field(const struct sm_opts *o, const char *sender, char *out, size_t outlen)
{
	size_t n = 0;

	if (o->full_name == NULL || o->full_name[0] == '\0') {
		snprintf(out, outlen, "From: <%s>\r\n", sender);
		return;
	}
	n += (size_t)snprintf(out, outlen, "From: \"");
	for (const char *p = o->full_name; *p != '\0' && n + 4 < outlen && n < 200; p++) {
		if (*p == '\r' || *p == '\n')
			continue;
		if (*p == '"' || *p == '\\')
			out[n++] = '\\';
		out[n++] = *p;
	}
	snprintf(out + n, outlen - n, "\" <%s>\r\n", sender);
}

/* A bare user name ("root", as cron and mail(1) give it) is a local user:
 * it gets the domain of the login youjud named. Other addresses go as
 * they are. NULL if the result would be too long. */
static const char *
sm_qualify(const char *address, const char *login, char *out, size_t outlen)
{
	const char *domain = strrchr(login, '@');

	if (address[0] == '\0' || strchr(address, '@') != NULL || domain == NULL)
		return address;
	if (snprintf(out, outlen, "%s%s", address, domain) >= (int)outlen)
		return NULL;
	return out;
}

static int
sm_transaction(struct sm_conn *c, const struct sm_opts *o, const struct buf *msg)
{
	char login[SM_ADDRESS_MAX + 1], from[SM_ADDRESS_MAX + 260];
	char qualified[SM_ADDRESS_MAX + 1];
	const char *sender;
	size_t hlen = sm_header_len(msg), accepted = 0;
	int code, refused = EX_OK;

	if ((code = sm_reply(c)) != 220)
		return sm_refused(c, code);
	if (sm_greeting_login(c, login, sizeof(login)) < 0)
		return sm_fail(EX_PROTOCOL, "unexpected greeting: %s", c->reply);
	sender = o->sender != NULL ? sm_qualify(o->sender, login, qualified, sizeof(qualified))
				   : login;
	if (sender == NULL)
		return sm_fail(EX_USAGE, "sender address too long: %s", o->sender);
	if ((code = sm_cmd(c, "EHLO localhost\r\n", NULL)) != 250 ||
	    (code = sm_cmd(c, "MAIL FROM:<%s>\r\n", sender)) != 250)
		return sm_refused(c, code);
	/* A refused recipient (a typo in a cron MAILTO) does not cost the
	 * others their copy; the exit status still tells of it. */
	for (size_t i = 0; i < o->n_rcpts; i++) {
		char rcpt[SM_ADDRESS_MAX + 1];
		const char *to = sm_qualify(o->rcpts[i], login, rcpt, sizeof(rcpt));

		if (to == NULL) {
			refused = sm_fail(EX_USAGE, "recipient too long with the domain: %s",
					  o->rcpts[i]);
			continue;
		}
		code = sm_cmd(c, "RCPT TO:<%s>\r\n", to);
		if (code == 250 || code == 251)
			accepted++;
		else if (code < 0 || code == 421)
			return sm_refused(c, code);
		else
			refused = sm_refused(c, code);
	}
	if (accepted == 0)
		return refused;
	if ((code = sm_cmd(c, "DATA\r\n", NULL)) != 354)
		return sm_refused(c, code);
	from[0] = '\0';
	/* The null sender (-f '') is no author: the From: names the caller. */
	if (!sm_has_field(msg, hlen, "from"))
		sm_from_field(o, sender[0] != '\0' ? sender : login, from, sizeof(from));
	if (sm_send_data(c, from, msg) < 0 || (code = sm_reply(c)) != 250)
		return sm_refused(c, code);
	(void)sm_cmd(c, "QUIT\r\n", NULL);
	return refused;
}

/* Copies what one side has ready to the other; false at its end. */
static bool
sm_pump_one(int from, int to)
{
	char chunk[16384];
	ssize_t n = read(from, chunk, sizeof(chunk));

	if (n < 0 && errno == EINTR)
		return true;
	return n > 0 && util_write_all(to, chunk, (size_t)n) > 0;
}

/* -bs (Alpine's default way to send): the client on standard input and
 * output speaks SMTP with youjud itself, as the caller. Ends when youjud
 * closes or nothing moves for the timeout. */
static int
sm_smtp_stdio(const struct sm_opts *o)
{
	struct sm_conn c = { .fd = -1 };
	struct pollfd pfd[2] = { { .fd = 0, .events = POLLIN }, { .events = POLLIN } };
	int ret = sm_connect(&c, o->data_dir);

	if (ret != 0)
		return ret;
	pfd[1].fd = c.fd;
	while (poll(pfd, 2, SM_TIMEOUT_SECONDS * 1000) > 0) {
		if (pfd[1].revents != 0 && !sm_pump_one(c.fd, 1))
			break;
		if (pfd[0].revents != 0 && !sm_pump_one(0, c.fd)) {
			/* The client is done: youjud may still answer. */
			(void)shutdown(c.fd, SHUT_WR);
			pfd[0].fd = -1;
		}
	}
	fclose(c.in);
	return EX_OK;
}

static int
sm_run(struct sm_opts *o, cli_sendmail_list_fn *list_queue)
{
	struct sm_conn c = { .fd = -1 };
	struct buf msg;
	int ret;

	if (o->list_queue)
		return list_queue(o->data_dir) == 0 ? EX_OK : EX_UNAVAILABLE;
	if (o->no_op)
		return EX_OK;	/* aliases live in the store, nothing to rebuild */
	if (o->smtp_stdio)
		return sm_smtp_stdio(o);
	buf_init(&msg, SM_MESSAGE_MAX);
	ret = sm_read_message(o, &msg);
	if (ret == 0 && o->extract &&
	    sm_extract(o, &msg, sm_header_len(&msg) < SM_HEADER_MAX ? sm_header_len(&msg) : 0) < 0)
		ret = sm_fail(EX_USAGE, "bad recipient in the header, or too many%s", "");
	if (ret == 0 && o->n_rcpts == 0)
		ret = sm_fail(EX_USAGE, "no recipients%s", o->extract ? " found in the header" : "");
	if (ret == 0)
		ret = sm_connect(&c, o->data_dir);
	if (ret == 0)
		ret = sm_transaction(&c, o, &msg);
	if (c.in != NULL)
		fclose(c.in);
	else if (c.fd >= 0)
		close(c.fd);
	buf_free(&msg);
	return ret;
}

bool
cli_sendmail_invoked(int argc, char **argv, const char **data_dir_r, int *first_r)
{
	const char *base = strrchr(argv[0], '/'), *env = getenv("YOUJU_DATA_DIR");

	base = base != NULL ? base + 1 : argv[0];
	*data_dir_r = env != NULL && env[0] != '\0' ? env : CLI_DEFAULT_DATA_DIR;
	if (strcmp(base, "sendmail") == 0 || strcmp(base, "mailq") == 0) {
		/* A link from /usr/sbin is run from anywhere: not ./var. */
		if (env == NULL || env[0] == '\0')
			*data_dir_r = CLI_SENDMAIL_DATA_DIR;
		*first_r = 1;
		return true;
	}
	if (argc >= 2 && strcmp(argv[1], "sendmail") == 0) {
		*first_r = 2;
		return true;
	}
	if (argc >= 4 && (strcmp(argv[1], "-d") == 0 || strcmp(argv[1], "--data-dir") == 0) &&
	    strcmp(argv[3], "sendmail") == 0) {
		*data_dir_r = argv[2];
		*first_r = 4;
		return true;
	}
	return false;
}

int
cli_sendmail_main(const char *data_dir, int argc, char **argv, int first,
		  cli_sendmail_list_fn *list_queue)
{
	struct sm_opts o = { .data_dir = data_dir, .dot_ends = true };
	const char *base = strrchr(argv[0], '/');
	int ret;

	base = base != NULL ? base + 1 : argv[0];
	o.list_queue = strcmp(base, "mailq") == 0;
	ret = sm_parse(&o, argc, argv, first);
	if (ret == 0 && o.sender != NULL && o.sender[0] != '\0' && !sm_address_ok(o.sender))
		ret = sm_fail(EX_USAGE, "bad sender address: %s", o.sender);
	if (ret == 0)
		ret = sm_run(&o, list_queue);
	for (size_t i = 0; i < o.n_rcpts; i++)
		free(o.rcpts[i]);
	free(o.rcpts);
	return ret;
}
