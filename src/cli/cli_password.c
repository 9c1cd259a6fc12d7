/* cli_password.c - where an account's password comes from: the terminal
 * (no echo, asked twice), one line of stdin, a generated one, or an
 * existing hash being migrated. A password is never taken from argv,
 * where every user of the machine could read it in the process list.
 */
#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "auth/password.h"
#include "base/log.h"
#include "base/util.h"
#include "cli/cli.h"

/* Room for the longest password, a CR and the NUL. */
#define PW_BUF_SIZE (PASSWORD_MAX + 2)

/* Letters and digits that cannot be mistaken for one another when read
 * aloud or copied by hand: no 0/O, 1/l/I. */
static const char pw_alphabet[] = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";

static void
cli_password_generate(char *out, size_t len)
{
	const size_t n = sizeof(pw_alphabet) - 1;
	/* Bytes at or above the last whole multiple of n are thrown away,
	 * so every character is equally likely. */
	const unsigned limit = 256 - 256 % n;
	size_t got = 0;

	while (got < len) {
		unsigned char rnd[64];

		if (RAND_bytes(rnd, sizeof(rnd)) != 1)
			log_fatal("RAND_bytes failed");
		for (size_t i = 0; i < sizeof(rnd) && got < len; i++) {
			if (rnd[i] < limit)
				out[got++] = pw_alphabet[rnd[i] % n];
		}
	}
	out[len] = '\0';
}

/* Reads one line (without its LF) a byte at a time, so that nothing
 * after it is consumed. Returns 1, or -1 if it does not fit in size - 1
 * bytes or the read fails. EOF ends the line too. */
static int
cli_read_line(int fd, char *buf, size_t size, size_t *len_r, bool *eof_r, struct yj_err *err)
{
	size_t len = 0;

	*eof_r = false;
	for (;;) {
		char ch;
		ssize_t n = read(fd, &ch, 1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return yj_err_errno(err, "read password");
		if (n == 0) {
			*eof_r = len == 0;
			break;
		}
		if (ch == '\n')
			break;
		if (len == size - 1)
			return yj_err_set(err, "password too long (at most %d bytes)", PASSWORD_MAX);
		buf[len++] = ch;
	}
	if (len > 0 && buf[len - 1] == '\r')
		len--;
	buf[len] = '\0';
	*len_r = len;
	return 1;
}

static int
cli_password_valid(const char *pw, size_t len, struct yj_err *err)
{
	if (len == 0)
		return yj_err_set(err, "empty password");
	if (len > PASSWORD_MAX)
		return yj_err_set(err, "password too long (at most %d bytes)", PASSWORD_MAX);
	if (memchr(pw, '\0', len) != NULL)
		return yj_err_set(err, "password contains a NUL byte");
	return 1;
}

static int
cli_password_read_stdin(char *pw, size_t size, struct yj_err *err)
{
	size_t len;
	bool eof;

	if (cli_read_line(STDIN_FILENO, pw, size, &len, &eof, err) < 0)
		return -1;
	if (eof)
		return yj_err_set(err, "no password on stdin");
	return cli_password_valid(pw, len, err);
}

/* The terminal's settings while echo is off, for the signal handler to
 * put back: an interrupted prompt must not leave the terminal silent. */
static struct termios tty_saved;
static volatile sig_atomic_t tty_saved_fd = -1;

static void
cli_tty_restore_on_signal(int sig)
{
	if (tty_saved_fd >= 0)
		tcsetattr(tty_saved_fd, TCSAFLUSH, &tty_saved);
	signal(sig, SIG_DFL);
	raise(sig);
}

static const int tty_signals[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP };
#define N_TTY_SIGNALS (sizeof(tty_signals) / sizeof(tty_signals[0]))

static int
cli_tty_prompt(int fd, const char *prompt, char *pw, size_t size, struct yj_err *err)
{
	struct termios quiet;
	struct sigaction sa, old[N_TTY_SIGNALS];
	size_t len;
	bool eof;
	int rc;

	if (tcgetattr(fd, &tty_saved) < 0)
		return yj_err_errno(err, "terminal");
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = cli_tty_restore_on_signal;
	for (size_t i = 0; i < N_TTY_SIGNALS; i++)
		sigaction(tty_signals[i], &sa, &old[i]);
	tty_saved_fd = fd;
	quiet = tty_saved;
	quiet.c_lflag &= ~(tcflag_t)ECHO;
	quiet.c_lflag |= ECHONL;
	/* Echo goes off before the prompt appears, so that nothing typed
	 * in answer to it can be shown. */
	rc = tcsetattr(fd, TCSAFLUSH, &quiet) < 0 ? -1 : 1;
	if (rc > 0)
		rc = util_write_all(fd, prompt, strlen(prompt));
	if (rc < 0)
		yj_err_errno(err, "terminal");
	else
		rc = cli_read_line(fd, pw, size, &len, &eof, err);
	tcsetattr(fd, TCSAFLUSH, &tty_saved);
	tty_saved_fd = -1;
	for (size_t i = 0; i < N_TTY_SIGNALS; i++)
		sigaction(tty_signals[i], &old[i], NULL);
	if (rc < 0)
		return -1;
	if (eof)
		return yj_err_set(err, "no password given");
	return cli_password_valid(pw, len, err);
}

static int
cli_password_read_tty(struct cli *c, char *pw, size_t size, struct yj_err *err)
{
	char again[PW_BUF_SIZE];
	int fd = c->tty_fd, rc;

	if (fd < 0)
		fd = c->tty_fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return yj_err_set(err, "no terminal to ask for the password on "
				  "(use --password-stdin or --generate-password)");
	if (cli_tty_prompt(fd, "Password: ", pw, size, err) < 0)
		return -1;
	rc = cli_tty_prompt(fd, "Password again: ", again, sizeof(again), err);
	if (rc > 0 && strcmp(pw, again) != 0)
		rc = yj_err_set(err, "the passwords do not match");
	explicit_bzero(again, sizeof(again));
	return rc;
}

/* Dovecot's scheme prefixes that password_verify() understands; the
 * crypt ones wrap a crypt(3) hash. */
static const struct {
	const char *name;
	bool crypt;
} pw_schemes[] = {
	{ "CRYPT", true }, { "BLF-CRYPT", true }, { "SHA512-CRYPT", true },
	{ "SHA256-CRYPT", true }, { "MD5-CRYPT", true }, { "PLAIN", false },
	{ "CLEAR", false }, { "SHA256", false }, { "SHA512", false },
	{ "SSHA256", false }, { "SSHA512", false },
};

/* Would libxcrypt know what to do with this hash? */
static bool
cli_crypt_hash_known(const char *hash)
{
	int rc;

	if (hash[0] != '$')
		return false;
	rc = crypt_checksalt(hash);
	return rc != CRYPT_SALT_INVALID && rc != CRYPT_SALT_METHOD_DISABLED;
}

static int
cli_hash_check(const char *hash, struct yj_err *err)
{
	size_t len = strlen(hash);
	const char *close;

	if (len == 0 || len > STORE_HASH_MAX)
		return yj_err_set(err, "password hash must be 1 to %d bytes", STORE_HASH_MAX);
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)hash[i] <= ' ' || (unsigned char)hash[i] >= 0x7f)
			return yj_err_set(err, "password hash contains a space or control character");
	}
	if (hash[0] == '$') {
		if (!cli_crypt_hash_known(hash))
			return yj_err_set(err, "unsupported crypt hash '%.20s...'", hash);
		return 1;
	}
	close = strchr(hash, '}');
	if (hash[0] != '{' || close == NULL)
		return yj_err_set(err, "unrecognised password hash "
				  "(expected $id$... or {SCHEME}...)");
	for (size_t i = 0; i < sizeof(pw_schemes) / sizeof(pw_schemes[0]); i++) {
		size_t n = strlen(pw_schemes[i].name);

		if ((size_t)(close - hash - 1) != n || strncasecmp(hash + 1, pw_schemes[i].name, n) != 0)
			continue;
		if (pw_schemes[i].crypt && !cli_crypt_hash_known(close + 1))
			return yj_err_set(err, "{%s} must be followed by a crypt hash",
					  pw_schemes[i].name);
		return 1;
	}
	return yj_err_set(err, "unsupported password scheme %.*s", (int)(close - hash + 1), hash);
}

int
cli_password_from_opts(struct cli *c, char *hash, size_t hashlen, char *generated_r,
		       struct yj_err *err)
{
	const struct cli_opts *o = &c->opts;
	char pw[PW_BUF_SIZE];
	int rc;

	generated_r[0] = '\0';
	if (o->password_stdin + o->generate_password + (o->password_hash != NULL) > 1)
		return yj_err_set(err, "use only one of --password-stdin, --generate-password "
				  "and --password-hash");
	if (o->password_hash != NULL) {
		if (cli_hash_check(o->password_hash, err) < 0)
			return -1;
		if (snprintf(hash, hashlen, "%s", o->password_hash) >= (int)hashlen)
			return yj_err_set(err, "password hash too long");
		return 1;
	}
	if (o->generate_password) {
		cli_password_generate(generated_r, CLI_GENERATED_PASSWORD_LEN);
		snprintf(pw, sizeof(pw), "%s", generated_r);
		rc = 1;
	} else if (o->password_stdin) {
		rc = cli_password_read_stdin(pw, sizeof(pw), err);
	} else {
		rc = cli_password_read_tty(c, pw, sizeof(pw), err);
	}
	if (rc > 0)
		rc = password_hash(pw, hash, hashlen, err);
	explicit_bzero(pw, sizeof(pw));
	return rc;
}
