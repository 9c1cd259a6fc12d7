/* smtp_client.h - sends one message to the recipients of one domain
 * (RFC 5321 client): finds the domain's MX hosts (or the relayhost),
 * connects, EHLO, STARTTLS whenever offered, MAIL, RCPT, DATA (or BDAT
 * chunks when the server offers CHUNKING, RFC 3030). An 8BITMIME message
 * to a server without 8BITMIME is converted to 7 bits (smtp_7bit.h), or
 * returned with 554 5.6.3 when it cannot be.
 *
 * Each recipient comes back with the server's answer for it: 2xx
 * delivered, 4xx try again later, 5xx failed for good. Problems before
 * any recipient was answered (DNS, no host reachable, TLS required but
 * not offered) give every recipient one 4xx reply, a null MX (RFC 7505)
 * a 5xx. Every read and write has a timeout.
 */
#ifndef YJ_SMTP_CLIENT_H
#define YJ_SMTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#include "base/err.h"

#define SMTPC_REPLY_MAX 512

/* smtp_tls_policy's levels: none never starts TLS; may uses STARTTLS
 * when offered and logs certificate problems, and sends in plain text
 * when the server refuses STARTTLS or the handshake fails (then on a new
 * connection, and without STARTTLS to that server for an hour); encrypt
 * requires STARTTLS;
 * verify requires it with a certificate that verifies and names the MX
 * host (or the relayhost). */
enum smtpc_tls { SMTPC_TLS_NONE, SMTPC_TLS_MAY, SMTPC_TLS_ENCRYPT, SMTPC_TLS_VERIFY };

struct smtpc_config {
	const char *myhostname;		/* EHLO name */
	int port;			/* of the MX hosts */
	const char *bind_address;	/* IPv4 source address, "" any */
	const char *bind_address6;	/* IPv6 source address, "" any */
	const char *address_preference;	/* "ipv4", "ipv6", "any": which first */
	int connect_timeout_ms;
	/* RFC 5321 4.5.3.2: the greeting, EHLO, MAIL, RCPT and the other
	 * commands' replies (and their writes) get timeout_ms; DATA's 354
	 * data_init; each write of the content and each BDAT chunk's reply
	 * data_xfer; the reply after the content (".", BDAT LAST) data_done. */
	int timeout_ms;
	int data_init_timeout_ms;
	int data_xfer_timeout_ms;
	int data_done_timeout_ms;
	SSL_CTX *tls;			/* client context; NULL: no STARTTLS */
	const char *tls_policy;		/* "domain=none|may|encrypt|verify ..." */
	const char *relayhost;		/* "" or HOST[:PORT], [HOST] skips MX */
	const char *relay_username;	/* "" or AUTH PLAIN at the relayhost (TLS only) */
	const char *relay_password;
};

struct smtpc_message {
	const char *sender;		/* "" for the null sender */
	const char *envid;		/* "" none */
	const char *ret;		/* "" none */
	const char *body;		/* "", "7BIT", "8BITMIME" */
	bool smtputf8;
	const char *header;		/* sent first, as is */
	size_t header_len;
	int fd;				/* the message; read from offset 0 */
};

struct smtpc_rcpt {
	const char *address;
	const char *notify;		/* "" none */
	const char *orcpt;		/* "" none */
	/* out */
	int code;			/* 250, 4xx, 5xx */
	char reply[SMTPC_REPLY_MAX];	/* "550 5.1.1 ..." for logs and DSNs */
	char remote_mta[256];		/* the host that answered, "" if none did */
	bool remote_dsn;		/* it offered DSN (it reports on from here) */
};

/* An open session kept after a message for the next one to the same
 * domain (one connection, several messages). Used by one thread. */
struct smtpc_cache;
struct smtpc_cache *smtpc_cache_new(void);
/* Ends the kept session (QUIT), if any; the cache stays usable. */
void smtpc_cache_close(struct smtpc_cache *cache);
void smtpc_cache_free(struct smtpc_cache *cache);

/* Sends m to the n recipients (all of domain) and fills in their code
 * and reply. cache (may be NULL) is tried first and keeps the session
 * afterwards. */
void smtpc_send(const struct smtpc_config *cfg, struct smtpc_cache *cache, const char *domain,
		const struct smtpc_message *m, struct smtpc_rcpt *r, size_t n);

/* The policy for domain in a smtp_tls_policy value: its own entry, else
 * the entry for "*" (or "default"), else may. */
enum smtpc_tls smtpc_tls_policy(const char *policies, const char *domain);
/* Checks a smtp_tls_policy value: 1, or -1 with the bad entry in err. */
int smtpc_tls_policy_check(const char *policies, struct yj_err *err);

/* DATA's transparency (RFC 5321 4.5.2) and line ends: every line end
 * (LF, CR, CRLF) goes out as CRLF, a dot at the start of a line is
 * doubled. Start with bol true. out needs room for 3 * n bytes. */
struct smtpc_stuff {
	bool bol;			/* at the start of a line */
	bool cr;			/* the last byte was a CR */
	bool keep_dots;			/* BDAT: line ends only, no dots doubled */
};
size_t smtpc_dotstuff(struct smtpc_stuff *st, const char *p, size_t n, char *out);
/* The end: CRLF if the last line was not ended, then ".CRLF" (out: 5+). */
size_t smtpc_dotstuff_end(struct smtpc_stuff *st, char *out);
/* BDAT's end: CRLF if the last line was not ended (out: 2+). */
size_t smtpc_crlf_end(const struct smtpc_stuff *st, char *out);

#endif
