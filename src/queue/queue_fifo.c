/* queue_fifo.c - the wake-up FIFO in the data dir.
 *
 * `youju queue retry` and `release` change rows in the store from another
 * process; without a word from them youjud's idle threads would see the
 * change only at their next look (queue_run_delay). As postqueue -f tells
 * Postfix's queue manager through its FIFO, the CLI writes a byte to this
 * one and the daemon wakes its runner. Nobody listening is not an error:
 * the mail goes at the next look.
 */
#include "queue/queue.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static int
queue_fifo_path(const char *data_dir, char *out, size_t outlen, struct yj_err *err)
{
	if ((size_t)snprintf(out, outlen, "%s/%s", data_dir, QUEUE_FIFO) >= outlen)
		return yj_err_set(err, "data dir path too long for %s", QUEUE_FIFO);
	return 1;
}

int
queue_fifo_open(const char *data_dir, struct yj_err *err)
{
	char path[PATH_MAX];
	struct stat sb;
	int fd;

	if (queue_fifo_path(data_dir, path, sizeof(path), err) < 0)
		return -1;
	/* Whatever else has the name (a file left by hand) makes way. */
	if (lstat(path, &sb) == 0 && !S_ISFIFO(sb.st_mode) && unlink(path) < 0)
		return yj_err_errno(err, "removing %s", path);
	if (mkfifo(path, 0620) < 0 && errno != EEXIST)
		return yj_err_errno(err, "mkfifo %s", path);
	/* Read and write: a FIFO with a writer (ourselves) never reads as
	 * closed when a CLI has come and gone. */
	if ((fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return yj_err_errno(err, "open %s", path);
	return fd;
}

bool
queue_fifo_wait(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char buf[64];
	bool poked = false;

	if (poll(&p, 1, timeout_ms) <= 0)
		return false;
	/* Many pokes while asleep make one wake-up. */
	while (read(fd, buf, sizeof(buf)) > 0)
		poked = true;
	return poked;
}

void
queue_poke(const char *data_dir)
{
	char path[PATH_MAX];
	struct yj_err err;
	int fd;

	if (queue_fifo_path(data_dir, path, sizeof(path), &err) < 0)
		return;
	/* Write-only and non-blocking: ENXIO when no daemon reads it. */
	if ((fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return;
	(void)write(fd, "w", 1);
	close(fd);
}
