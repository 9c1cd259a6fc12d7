/* cli_priv.c - youju run as root: the service user and file ownership.
 *
 * youjud binds its ports as root and then runs as the service user
 * (mail_owner), so everything in the data dir must belong to that user.
 * youju init makes the user and hands the dir over; every later command
 * run as root becomes the dir's owner first, so that the files it
 * creates there (SQLite's -wal and -shm, blobs) stay the user's too.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"

#define CHILD_OUTPUT_MAX 512
#define USER_NAME_MAX 32

/* Becomes uid, with the groups of its passwd entry if it has one. */
static int
cli_priv_become(uid_t uid, gid_t gid, struct yj_err *err)
{
	struct passwd *pw = getpwuid(uid);

	if (pw != NULL) {
		gid = pw->pw_gid;
		if (initgroups(pw->pw_name, gid) < 0)
			return yj_err_errno(err, "initgroups %s", pw->pw_name);
	} else if (setgroups(1, &gid) < 0) {
		return yj_err_errno(err, "setgroups");
	}
	if (setgid(gid) < 0)
		return yj_err_errno(err, "setgid %ld", (long)gid);
	if (setuid(uid) < 0)
		return yj_err_errno(err, "setuid %ld", (long)uid);
	if (setuid(0) == 0)
		return yj_err_set(err, "could not give up root privileges");
	return 1;
}

int
cli_priv_drop_to_dir_owner(struct cli *c, struct yj_err *err)
{
	struct stat sb;

	if (geteuid() != 0)
		return 1;
	/* A missing dir is reported when its config is read. */
	if (stat(c->data_dir, &sb) < 0 || sb.st_uid == 0)
		return 1;
	/* Entered as root, the dir stays reachable for its owner even when
	 * a parent is not searchable by it (a checkout under /root): then
	 * the rest works from inside, as youjud does. */
	if (chdir(c->data_dir) < 0)
		return yj_err_errno(err, "%s", c->data_dir);
	if (cli_priv_become(sb.st_uid, sb.st_gid, err) < 0)
		return -1;
	if (c->data_dir[0] != '/' || access(c->data_dir, X_OK) < 0)
		c->data_dir = ".";
	return 1;
}

/* The first line of what a child printed, for an error message. */
static void
cli_first_line(char *text)
{
	char *nl = strchr(text, '\n');

	if (nl != NULL)
		*nl = '\0';
}

/* Runs argv (an absolute path, no shell) and waits for it; its output
 * is collected so that a failure still gives a single error line. */
static int
cli_priv_run(char *const argv[], struct yj_err *err)
{
	char out[CHILD_OUTPUT_MAX + 1];
	size_t len = 0;
	int pfd[2], status;
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC) < 0)
		return yj_err_errno(err, "pipe");
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return yj_err_errno(err, "fork");
	}
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDONLY);

		if (devnull >= 0)
			dup2(devnull, STDIN_FILENO);
		dup2(pfd[1], STDOUT_FILENO);
		dup2(pfd[1], STDERR_FILENO);
		execv(argv[0], argv);
		_exit(127);
	}
	close(pfd[1]);
	for (;;) {
		char chunk[256];
		ssize_t n = read(pfd[0], chunk, sizeof(chunk));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		for (ssize_t k = 0; k < n && len < CHILD_OUTPUT_MAX; k++)
			out[len++] = chunk[k];
	}
	out[len] = '\0';
	close(pfd[0]);
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return yj_err_errno(err, "waitpid");
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 1;
	cli_first_line(out);
	if (out[0] != '\0')
		return yj_err_set(err, "%s", out);
	if (WIFEXITED(status))
		return yj_err_set(err, "%s exited with status %d", argv[0], WEXITSTATUS(status));
	return yj_err_set(err, "%s was killed by signal %d", argv[0], WTERMSIG(status));
}

/* What useradd would accept, checked here so the name never looks like
 * an option to it. */
static bool
cli_user_name_valid(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > USER_NAME_MAX || name[0] == '-')
		return false;
	for (size_t i = 0; i < len; i++) {
		char ch = name[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' ||
		      ch == '-' || ch == '.'))
			return false;
	}
	return true;
}

static const char *
cli_useradd_path(void)
{
	static const char *const paths[] = { "/usr/sbin/useradd", "/sbin/useradd" };

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		if (access(paths[i], X_OK) == 0)
			return paths[i];
	}
	return NULL;
}

/* A system user with no home and no login shell, in a group of its own
 * (or in the existing group of that name). */
static int
cli_priv_useradd(const char *name, struct yj_err *err)
{
	const char *useradd = cli_useradd_path();
	char *argv[16];
	size_t n = 0;

	if (useradd == NULL)
		return yj_err_set(err, "useradd not found; create the user %s yourself", name);
	argv[n++] = (char *)useradd;
	argv[n++] = "--system";
	argv[n++] = "--no-create-home";
	argv[n++] = "--home-dir";
	argv[n++] = "/nonexistent";
	argv[n++] = "--shell";
	argv[n++] = "/usr/sbin/nologin";
	if (getgrnam(name) != NULL) {
		argv[n++] = "--gid";
		argv[n++] = (char *)name;
	} else {
		argv[n++] = "--user-group";
	}
	argv[n++] = (char *)name;
	argv[n] = NULL;
	return cli_priv_run(argv, err);
}

int
cli_priv_ensure_user(const char *name, uid_t *uid_r, gid_t *gid_r, bool *created_r,
		     struct yj_err *err)
{
	struct passwd *pw = getpwnam(name);
	struct yj_err uerr;

	*created_r = false;
	if (pw == NULL) {
		if (!cli_user_name_valid(name))
			return yj_err_set(err, "mail_owner: invalid user name '%s'", name);
		if (cli_priv_useradd(name, &uerr) < 0)
			return yj_err_set(err, "cannot create user %s: %s", name, uerr.msg);
		*created_r = true;
		pw = getpwnam(name);
		if (pw == NULL)
			return yj_err_set(err, "user %s still missing after useradd", name);
	}
	if (pw->pw_uid == 0)
		return yj_err_set(err, "mail_owner %s is root; youjud needs an unprivileged user",
				  name);
	*uid_r = pw->pw_uid;
	*gid_r = pw->pw_gid;
	return 1;
}

/* nftw() takes no context pointer; youju is single-threaded. */
static uid_t chown_uid;
static gid_t chown_gid;
static char chown_failed[PATH_MAX];
static int chown_errno;

static int
cli_chown_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	if (lchown(path, chown_uid, chown_gid) < 0) {
		chown_errno = errno;
		snprintf(chown_failed, sizeof(chown_failed), "%s", path);
		return 1;
	}
	return 0;
}

int
cli_priv_chown_tree(const char *path, uid_t uid, gid_t gid, struct yj_err *err)
{
	chown_uid = uid;
	chown_gid = gid;
	chown_errno = 0;
	if (nftw(path, cli_chown_one, 16, FTW_PHYS) != 0) {
		if (chown_errno != 0) {
			errno = chown_errno;
			return yj_err_errno(err, "chown %s", chown_failed);
		}
		return yj_err_errno(err, "chown -R %s", path);
	}
	return 1;
}

