/* listeners.h - youjud's accept loop and session runtime: the total and
 * per-client connection limits, a table of protocols by listener kind,
 * and a clean stop. */
#ifndef YJ_LISTENERS_H
#define YJ_LISTENERS_H

#include <stddef.h>

#include "net/session.h"

struct server {
	const struct config *cfg;
	SSL_CTX *tls;			/* NULL if no certificate is configured */
	struct stop *stop;		/* requested when youjud stops */
};

struct listener {
	enum listener_kind kind;
	const char *key;		/* config key, for logs */
	int fd;
};

/* Names of the listener kinds as in the config keys ("smtp", "pop3s"). */
const char *listener_kind_name(enum listener_kind kind);

/* Is there a protocol behind this listener kind in this build? */
bool listener_kind_available(enum listener_kind kind);

/* Does this listener kind start with a TLS handshake (465, 993, 995)? */
bool listener_kind_implicit_tls(enum listener_kind kind);

/* Accepts until srv->stop->fd becomes readable, then stops accepting,
 * ends every session (their sockets are shut down so blocked reads
 * return) and waits for their threads. Returns how many sessions are
 * still running after the wait: if any, the caller must not free what
 * they use, but leave at once. */
size_t listeners_run(const struct server *srv, struct listener *ls, int n);

#endif
