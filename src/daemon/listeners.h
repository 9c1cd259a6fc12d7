/* listeners.h - youjud's accept loop: a thread per connection, with the
 * total and per-client connection limits, and a clean stop. */
#ifndef YJ_LISTENERS_H
#define YJ_LISTENERS_H

#include <stddef.h>

#include "daemon/server.h"

struct listener {
	enum listener_kind kind;
	const char *key;		/* config key, for logs */
	int fd;
};

/* Names of the listener kinds as in the config keys ("smtp", "pop3s"). */
const char *listener_kind_name(enum listener_kind kind);

/* Accepts until stop_fd becomes readable, then stops accepting, ends
 * every session (their sockets are shut down so blocked reads return)
 * and waits for their threads. Returns how many sessions are still
 * running after the wait: if any, the caller must not free what they
 * use, but leave at once. */
size_t listeners_run(const struct server *srv, struct listener *ls, int n, int stop_fd);

#endif
