/* config.h - the youju.conf file: "key = value" lines, '#' comments.
 *
 * Every key is declared once, in the table in config.c, with its type,
 * default and bounds; struct config holds the effective values. A value
 * may refer to another key as $name (as Postfix's main.cf does); that is
 * expanded after loading. Domains, accounts and aliases are not here:
 * they live in the database.
 */
#ifndef YJ_CONFIG_H
#define YJ_CONFIG_H

#include <stdbool.h>
#include <stdio.h>

#include "base/err.h"

#define CONFIG_FILE_NAME "youju.conf"

struct config {
	/* where everything lives; set from -d, not from the file */
	char *data_dir;

	/* identity and policy */
	char *myhostname;
	char *mydomain;
	char *mynetworks;		/* space/comma separated CIDRs */
	char *mail_owner;		/* unprivileged user youjud runs as */
	char *log_level;
	char *dns_servers;		/* "ADDR" or "ADDR@PORT", space separated */
	char *tls_cert_file;		/* relative paths are under data_dir */
	char *tls_key_file;
	char *store_driver;		/* "sqlite" or "postgresql" */
	char *store_dsn;		/* libpq connection string for postgresql */

	/* listeners: "ADDR:PORT" ("[v6]:PORT") or empty for off */
	char *smtp_listen;
	char *submission_listen;
	char *submissions_listen;
	char *imap_listen;
	char *imaps_listen;
	char *pop3_listen;
	char *pop3s_listen;

	/* sessions, all protocols */
	long max_connections;
	long max_preauth_connections;	/* not logged in yet; 0: max_connections */
	long preauth_stress_timeout;	/* seconds idle before login, then evictable */
	long client_connection_count_limit;	/* per client address, all protocols */
	long client_ipv6_prefix;	/* IPv6 clients are counted by this prefix */
	long session_park_delay;	/* milliseconds idle before a session is parked */
	long tls_handshake_timeout;	/* seconds */
	long first_command_timeout;	/* seconds from the greeting */
	long write_timeout;		/* seconds for each 64 KiB of output */
	bool disable_plaintext_auth;	/* no password auth without TLS */
	bool secure_loopback;		/* loopback counts as secure */
	long auth_failure_delay;	/* seconds */
	long auth_max_failures;		/* then disconnect */
	long auth_account_max_failures;	/* of one account, any address, lately; 0: off */
	long auth_penalty_max;		/* seconds; longest wait for an address's failures */
	long auth_hash_limit;		/* password hashes at once; 0: 2 x CPUs */
	long auth_cache_ttl;		/* seconds a verified login is remembered; 0: off */

	/* SMTP server */
	char *smtpd_banner;
	long message_size_limit;
	long queue_minfree;		/* bytes that must stay free in data_dir */
	long smtpd_recipient_limit;
	long line_length_limit;
	long smtpd_timeout;
	long smtpd_client_connection_count_limit;
	long smtpd_hard_error_limit;
	long smtpd_junk_command_limit;	/* NOOP/RSET/VRFY/HELP before they count as errors */
	long smtpd_recipient_overshoot_limit;	/* RCPTs past the limit before they count */
	long smtpd_min_data_rate;	/* bytes per second during DATA/BDAT; 0: none */
	long smtpd_message_deadline;	/* seconds for one message's transfer; 0: none */
	char *recipient_delimiter;
	long virtual_alias_expansion_limit;	/* targets of one recipient */
	long virtual_alias_recursion_limit;	/* aliases of aliases */
	bool smtpd_peername_lookup;	/* reverse DNS of SMTP clients */
	bool smtpd_sender_login_check;	/* submission: send only as one's own addresses */
	bool submission_hide_client;	/* submission: no client IP/name in Received: */
	char *smtpd_reject_unknown_client;	/* no, defer or reject */

	/* mail authentication (docs/mailauth.md) */
	char *spf_fail_action;		/* record or reject */
	bool dmarc_enforce;		/* act on p=reject / p=quarantine */
	char *dmarc_trusted_forwarders;	/* client CIDRs whose mail skips DMARC action */
	char *arc_trusted_sealers;	/* ARC sealer domains honoured for DMARC */
	char *arc_seal_domain;		/* d= of the ARC sets on forwarded mail */
	char *spf_helo_fail_action;	/* record or reject */
	char *dmarc_temperror_action;	/* accept or defer */
	long dmarc_report_interval;	/* seconds between report runs; 0: no reports */
	char *dmarc_report_from;	/* "": noreply-dmarc@<myhostname's domain> */
	long dmarc_report_max_per_day;	/* reports sent per UTC day at most */

	/* outbound queue and SMTP client */
	long queue_run_threads;		/* delivery threads */
	long queue_run_delay;		/* seconds between scans of the queue */
	long queue_lease_time;		/* a claim lasts this long unless renewed */
	long minimal_backoff_time;	/* first retry after this */
	long maximal_backoff_time;	/* retries at most this far apart */
	long maximal_queue_lifetime;	/* then a deferred recipient fails */
	long bounce_queue_lifetime;	/* the same for bounces (null sender) */
	long queue_finished_retention;	/* finished rows kept this long; 0: until deleted */
	long delay_warning_time;	/* then one delay notice to the sender; 0 none */
	long smtp_destination_concurrency_limit;	/* sessions per domain */
	long smtp_port;			/* of remote MX hosts */
	char *smtp_bind_address;	/* source IPv4 address, or empty */
	char *smtp_bind_address6;	/* source IPv6 address, or empty */
	char *smtp_address_preference;	/* ipv4, ipv6, any */
	long smtp_connect_timeout;
	long smtp_timeout;		/* per command (RFC 5321 4.5.3.2 minimums or more) */
	long smtp_data_init_timeout;	/* DATA's 354 */
	long smtp_data_xfer_timeout;	/* each write of the content, each BDAT's reply */
	long smtp_data_done_timeout;	/* the reply after the content */
	char *smtp_tls_policy;		/* "domain=none|may|encrypt|verify ..." */
	char *smtp_tls_ca_file;		/* trusted CAs (PEM); "": the system's store */
	char *relayhost;		/* "HOST" or "HOST:PORT": every message goes there */
	char *relayhost_username;	/* AUTH PLAIN there, over TLS only */
	char *relayhost_password;
	char *relayhost_password_file;	/* its first line is the password */

	/* POP3 server */
	long pop3_timeout;
	long pop3_login_delay;		/* seconds; 0: not announced */
	long imap_timeout;		/* seconds of silence outside IDLE */
	long imap_idle_notify_interval;	/* seconds between "* OK Still here" in IDLE */
	bool imap_fts;			/* search text indexed at delivery and APPEND */
	long imap_search_time_limit;	/* milliseconds one SEARCH/SORT/THREAD may work */
	long imap_summary_cache;	/* bytes of summaries kept in memory; 0: none */
	long pop3_expire;		/* days; -1: NEVER */
};

/* Sets every key to its default. data_dir is copied. */
void config_init(struct config *cfg, const char *data_dir);
void config_free(struct config *cfg);

/* Reads a config file over the current values. Errors name the file and
 * line: "youju.conf:12: unknown key 'foo'". Returns 1 or -1. */
int config_load(struct config *cfg, const char *path, struct yj_err *err) YJ_MUST_CHECK;

/* Sets one key from text, as the file or "-o key=value" would. */
int config_set(struct config *cfg, const char *key, const char *value,
	       struct yj_err *err) YJ_MUST_CHECK;

/* Parses "key=value" (the -o form) and sets it. */
int config_set_option(struct config *cfg, const char *option,
		      struct yj_err *err) YJ_MUST_CHECK;

/* Expands $name references and checks cross-key rules; call once after
 * loading and overrides. Returns 1 or -1. */
int config_finish(struct config *cfg, struct yj_err *err) YJ_MUST_CHECK;

/* Parses a size as a config value is written ("500M", "2g", "1048576";
 * k, m and g are powers of 1024) within 0..max; errors begin "what: ". */
int config_parse_size(const char *what, const char *value, long max, long *out,
		      struct yj_err *err) YJ_MUST_CHECK;

/* Makes a path absolute relative to data_dir; the caller frees it. */
char *config_path(const struct config *cfg, const char *path);

/* Writes every key and its effective value, one per line. */
void config_dump(const struct config *cfg, FILE *out);

#endif
