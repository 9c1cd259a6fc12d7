/* report.h - DMARC aggregate reports sent (RFC 7489 7.2): the results the
 * SMTP server counted (store.h, store_dmarc_*) become, per policy domain,
 * an appendix C report, gzipped and attached to a multipart/mixed message
 * from dmarc_report_from, DKIM-signed with that domain's key, delivered to
 * each rua= mailto: address that may have it (7.1) and whose !size it
 * fits, at most dmarc_report_max_per_day reports per UTC day.
 *
 * youjud runs it every dmarc_report_interval (report_start); `youju
 * dmarc report` runs it once. A domain whose rows were reported (or that
 * nobody may receive) loses them; one that could not be sent (the cap,
 * a DNS failure, the store) keeps them for the next run.
 */
#ifndef YJ_REPORT_H
#define YJ_REPORT_H

#include <stdbool.h>
#include <stddef.h>

#include "base/config.h"
#include "base/err.h"
#include "mailauth/ma_resolver.h"
#include "store/store.h"

struct report_stats {
	size_t sent;		/* reports delivered or queued */
	size_t dropped;		/* domains whose rows nobody may receive */
	size_t kept;		/* domains left for the next run */
};

/* One run: reports for every domain with rows of days before today, or
 * of all rows (today's so far included) when now_too. Returns 1, or -1
 * when the store failed (stats say what was done before). */
int report_run(const struct config *cfg, struct store *st, const struct ma_resolver *r,
	       bool now_too, struct report_stats *stats, struct yj_err *err);

/* youjud's thread: a run a minute after start (or after the interval, if
 * shorter), then every dmarc_report_interval; none when it is 0. cfg
 * must outlive report_stop(). */
int report_start(const struct config *cfg, struct yj_err *err) YJ_MUST_CHECK;
void report_stop(void);

#endif
