#include "net/session.h"

#include <errno.h>
#include <poll.h>
#include <time.h>

bool
stop_requested(const struct stop *stop)
{
	return atomic_load(&stop->requested);
}

bool
stop_sleep(const struct stop *stop, long ms)
{
	struct pollfd pfd = { .fd = stop->fd, .events = POLLIN };
	struct timespec start, now;
	long left = ms;

	clock_gettime(CLOCK_MONOTONIC, &start);
	while (left > 0) {
		int r = poll(&pfd, 1, (int)left);

		if (r > 0)
			return false;
		if (r < 0 && errno != EINTR)
			return true;
		clock_gettime(CLOCK_MONOTONIC, &now);
		left = ms - ((now.tv_sec - start.tv_sec) * 1000 +
			     (now.tv_nsec - start.tv_nsec) / 1000000);
	}
	return !stop_requested(stop);
}

bool
session_is_secure(const struct session_ctx *s)
{
	if (conn_is_tls(s->conn))
		return true;
	return s->cfg->secure_loopback && s->conn->peer_loopback;
}
