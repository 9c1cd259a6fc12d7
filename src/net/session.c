#include "net/session.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/block.h"

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
		int r;

		block_begin();
		r = poll(&pfd, 1, (int)left);
		block_end();

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

void
session_set_authenticated(struct session_ctx *s)
{
	atomic_store(&s->authenticated, true);
}

bool
session_is_authenticated(const struct session_ctx *s)
{
	return atomic_load(&s->authenticated);
}

void
session_client_key(const char *ip, int v6_prefix, char *out, size_t outlen)
{
	struct in6_addr a;
	char text[INET6_ADDRSTRLEN];

	if (outlen == 0)
		return;
	if (v6_prefix < 0 || v6_prefix > 128 || inet_pton(AF_INET6, ip, &a) != 1) {
		snprintf(out, outlen, "%s", ip);
		return;
	}
	for (int bit = v6_prefix; bit < 128; bit++)
		a.s6_addr[bit / 8] &= (unsigned char)~(0x80u >> (bit % 8));
	if (inet_ntop(AF_INET6, &a, text, sizeof(text)) == NULL)
		snprintf(out, outlen, "%s", ip);
	else
		snprintf(out, outlen, "%s/%d", text, v6_prefix);
}
