/* dsn_classify.c - what a remote server's refusal means (dsn.h).
 *
 * Servers say the same thing in many ways: an enhanced status code where
 * one exists for the case (Gmail's 5.7.25 for a missing PTR), a code of
 * their own in the text (Microsoft's 5.7.515, S3140), or only words. The
 * rules are tried in order; the first that matches wins, codes before
 * words, so that "5.7.26 ... SPF" is about authentication and not about
 * whatever else the text says. */
#include <ctype.h>
#include <stdbool.h>
#include <string.h>

#include "queue/dsn.h"

struct dsn_rule {
	enum dsn_reason reason;
	const char *const *codes;	/* enhanced codes or vendor codes, whole tokens */
	const char *const *words;	/* phrases, any case, anywhere in the text */
};

#define LIST(...) ((const char *const[]){ __VA_ARGS__, NULL })

/* Most specific first: a block-list or PTR refusal often also says
 * "rejected" or "denied", words the generic rules would take. */
static const struct dsn_rule rules[] = {
	{ DSN_R_NO_PTR, LIST("5.7.25"),
	  LIST("PTR record", "reverse DNS", "reverse hostname", "rDNS", "reverse lookup",
	       "no PTR", "hostname lookup") },
	{ DSN_R_AUTH_FAILED, LIST("5.7.26", "5.7.515", "5.7.27", "5.7.509", "5.7.23", "5.7.24"),
	  LIST("DMARC", "SPF", "DKIM", "unauthenticated", "not authenticated", "authentication "
	       "requirements") },
	{ DSN_R_TLS_REQUIRED, LIST("5.7.29", "5.7.10", "4.7.29"),
	  LIST("STARTTLS", "TLS required", "requires TLS", "must use TLS", "encryption required") },
	{ DSN_R_LISTED_IP, LIST("S3140", "S3150", "5.7.606", "5.7.511"),
	  LIST("blocklist", "block list", "blacklist", "spamhaus", "spamcop", "barracuda",
	       "listed at", "listed on", "listed in", "DNSBL") },
	{ DSN_R_RATE_LIMIT, LIST("4.7.28", "5.7.28", "4.2.1", "4.7.650", "4.7.500"),
	  LIST("rate limit", "rate-limit", "too many", "unusual rate", "ratelimit",
	       "temporarily deferred") },
	{ DSN_R_TOO_BIG, LIST("5.3.4", "5.2.3", "4.3.4"),
	  LIST("too big", "too large", "size limit", "exceeds the maximum", "message size",
	       "exceeds size") },
	{ DSN_R_MAILBOX_FULL, LIST("5.2.2", "4.2.2"),
	  LIST("quota", "mailbox full", "mailbox is full", "insufficient storage",
	       "out of storage", "mailbox has exceeded") },
	{ DSN_R_UNKNOWN_USER, LIST("5.1.1", "5.1.10", "5.1.0", "5.1.6"),
	  LIST("user unknown", "unknown user", "no such user", "does not exist",
	       "doesn't exist", "mailbox unavailable", "recipient not found",
	       "address rejected", "invalid recipient", "unknown recipient",
	       "no mailbox", "mailbox not found", "undeliverable address") },
};

static const char *const reason_names[DSN_R_COUNT] = {
	[DSN_R_GENERIC] = "generic",	      [DSN_R_UNKNOWN_USER] = "unknown-user",
	[DSN_R_MAILBOX_FULL] = "mailbox-full", [DSN_R_NO_PTR] = "no-ptr",
	[DSN_R_AUTH_FAILED] = "auth-failed",   [DSN_R_TLS_REQUIRED] = "tls-required",
	[DSN_R_LISTED_IP] = "listed-ip",       [DSN_R_RATE_LIMIT] = "rate-limit",
	[DSN_R_TOO_BIG] = "too-big",
};

const char *
dsn_reason_name(enum dsn_reason reason)
{
	return (unsigned)reason < DSN_R_COUNT ? reason_names[reason] : "generic";
}

/* A code counts only as a whole token: "5.7.2" must not match inside
 * "5.7.25", nor "5.1.1" inside "15.1.10". */
static bool
token_edge(const char *text, const char *p, size_t len)
{
	unsigned char before = p > text ? (unsigned char)p[-1] : ' ';
	unsigned char after = (unsigned char)p[len];

	return !isalnum(before) && before != '.' && !isalnum(after) &&
	       !(after == '.' && isdigit((unsigned char)p[len + 1]));
}

static bool
has_code(const char *text, const char *code)
{
	size_t len = strlen(code);

	for (const char *p = strstr(text, code); p != NULL; p = strstr(p + 1, code)) {
		if (token_edge(text, p, len))
			return true;
	}
	return false;
}

static bool
rule_codes_match(const struct dsn_rule *r, const char *status, const char *reply)
{
	for (const char *const *c = r->codes; *c != NULL; c++) {
		if ((status != NULL && strcmp(status, *c) == 0) ||
		    (reply != NULL && has_code(reply, *c)))
			return true;
	}
	return false;
}

static bool
rule_words_match(const struct dsn_rule *r, const char *reply)
{
	if (reply == NULL)
		return false;
	for (const char *const *w = r->words; *w != NULL; w++) {
		if (strcasestr(reply, *w) != NULL)
			return true;
	}
	return false;
}

enum dsn_reason
dsn_classify(const char *status, const char *reply)
{
	size_t n = sizeof(rules) / sizeof(rules[0]);

	for (size_t i = 0; i < n; i++) {
		if (rule_codes_match(&rules[i], status, reply))
			return rules[i].reason;
	}
	for (size_t i = 0; i < n; i++) {
		if (rule_words_match(&rules[i], reply))
			return rules[i].reason;
	}
	return DSN_R_GENERIC;
}
