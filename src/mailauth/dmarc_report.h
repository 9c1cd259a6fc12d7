/* dmarc_report.h - DMARC aggregate reports (RFC 7489 7.2): the XML of
 * appendix C, gzipped, its file name (7.2.1.1), and the check that a
 * report address in another organization accepts reports about a domain
 * (7.1). Pure: the caller gives the rows, the time and the DNS.
 *
 * The XML follows appendix C's schema element for element (feedback:
 * report_metadata, policy_published, record+; record: row, identifiers,
 * auth_results with one spf and any dkim), without a namespace, as the
 * reports the large receivers send are.
 */
#ifndef YJ_DMARC_REPORT_H
#define YJ_DMARC_REPORT_H

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"
#include "mailauth/ma_resolver.h"

#define DMARC_REPORT_XML_MAX (16 * 1024 * 1024)

struct dmarc_report_meta {
	const char *org_name;		/* the receiver's domain */
	const char *email;		/* where the report comes from */
	const char *report_id;
	long long begin, end;		/* seconds since the epoch, UTC */
};

struct dmarc_report_policy {
	const char *domain;
	const char *adkim, *aspf;	/* "r" or "s" */
	const char *p, *sp;		/* none, quarantine, reject */
	long long pct;
};

struct dmarc_report_row {
	const char *source_ip;
	long long count;
	const char *disposition;	/* none, quarantine, reject */
	bool dkim_aligned, spf_aligned;	/* policy_evaluated: pass or fail */
	const char *override;		/* PolicyOverrideType, "" for none */
	const char *header_from;
	const char *dkim;		/* "domain selector result" per line, "" none */
	const char *spf_domain, *spf_result;
};

/* Appends the report's XML. Returns 1, or -1 if it does not fit out. */
int dmarc_report_xml(const struct dmarc_report_meta *meta, const struct dmarc_report_policy *pol,
		     const struct dmarc_report_row *rows, size_t n, struct buf *out);

/* Appends data gzipped (RFC 1952). Returns 1 or -1. */
int dmarc_report_gzip(const void *data, size_t len, struct buf *out);

/* "receiver!policy-domain!begin!end.xml.gz". Returns 1 or -1. */
int dmarc_report_filename(const char *receiver, const char *policy_domain, long long begin,
			  long long end, char *out, size_t outlen);

/* May reports about policy_domain go to an address at rua_domain (7.1)?
 * Yes when both have the same organizational domain, or when
 * <policy_domain>._report._dmarc.<rua_domain> has a TXT record starting
 * "v=DMARC1". Returns 1 yes, 0 no, -1 the DNS failed (try later). */
int dmarc_report_authorized(const struct ma_resolver *r, const char *policy_domain,
			    const char *rua_domain);

/* One rua= URI of a stored list ("mailto:a@x!10m mailto:b@y"), from
 * *cur on: the address and its size limit in bytes (0: none). Returns
 * 1, 0 at the end of the list; URIs other than mailto: are skipped. */
int dmarc_report_next_rua(const char **cur, char *addr, size_t addrlen,
			  unsigned long long *max_size);

#endif
