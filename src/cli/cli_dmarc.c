/* cli_dmarc.c - youju dmarc report [--now]: one run of the DMARC
 * aggregate reports (report.h), as youjud makes every
 * dmarc_report_interval. */
#include <stdio.h>

#include "cli/cli.h"
#include "mailauth/ma_resolver.h"
#include "net/dns.h"
#include "report/report.h"

int
cli_dmarc_report(struct cli *c, int argc, char **argv)
{
	struct report_stats stats;
	struct yj_err err;
	int rc;

	(void)argc;
	(void)argv;
	if (dns_init(c->cfg.dns_servers, &err) < 0)
		return cli_fail("dns: %s", err.msg);
	rc = report_run(&c->cfg, c->st, ma_resolver_dns(), c->opts.now, &stats, &err);
	dns_deinit();
	if (rc < 0)
		return cli_fail("dmarc report: %s", err.msg);
	printf("reports sent: %zu, domains without an address that may receive them: %zu, "
	       "left for the next run: %zu\n", stats.sent, stats.dropped, stats.kept);
	return CLI_EXIT_OK;
}
