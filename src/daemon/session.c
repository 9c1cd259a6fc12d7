#include "daemon/server.h"

bool
session_is_secure(const struct session_ctx *s)
{
	if (conn_is_tls(s->conn))
		return true;
	return s->srv->cfg->secure_loopback && s->conn->peer_loopback;
}
