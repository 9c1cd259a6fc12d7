/* dmarc_report.c - aggregate report XML, gzip, name and destination
 * check (dmarc_report.h). */
#include "mailauth/dmarc_report.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <zlib.h>

#include "mailauth/dmarc.h"

/* Appends s with XML's five special characters escaped; other control
 * characters (not allowed in XML 1.0) become '?'. */
static int
xml_text(struct buf *out, const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		const char *esc = c == '&' ? "&amp;" : c == '<' ? "&lt;" : c == '>' ? "&gt;"
				: c == '"' ? "&quot;" : c == '\'' ? "&apos;" : NULL;
		char ch = c < 0x20 ? '?' : (char)c;

		if ((esc != NULL ? buf_append_str(out, esc) : buf_append(out, &ch, 1)) < 0)
			return -1;
	}
	return 1;
}

/* "<name>text</name>" at the given indent. */
static int
xml_elem(struct buf *out, int indent, const char *name, const char *text)
{
	if (buf_printf(out, "%*s<%s>", indent, "", name) < 0 || xml_text(out, text) < 0 ||
	    buf_printf(out, "</%s>\n", name) < 0)
		return -1;
	return 1;
}

static int
xml_num(struct buf *out, int indent, const char *name, long long v)
{
	return buf_printf(out, "%*s<%s>%lld</%s>\n", indent, "", name, v, name);
}

static int
xml_metadata(struct buf *out, const struct dmarc_report_meta *m)
{
	int rc = buf_append_str(out, "  <report_metadata>\n");

	rc &= xml_elem(out, 4, "org_name", m->org_name) == 1;
	rc &= xml_elem(out, 4, "email", m->email) == 1;
	rc &= xml_elem(out, 4, "report_id", m->report_id) == 1;
	rc &= buf_append_str(out, "    <date_range>\n") == 1;
	rc &= xml_num(out, 6, "begin", m->begin) == 1;
	rc &= xml_num(out, 6, "end", m->end) == 1;
	rc &= buf_append_str(out, "    </date_range>\n  </report_metadata>\n") == 1;
	return rc ? 1 : -1;
}

static int
xml_policy(struct buf *out, const struct dmarc_report_policy *p)
{
	int rc = buf_append_str(out, "  <policy_published>\n");

	rc &= xml_elem(out, 4, "domain", p->domain) == 1;
	rc &= xml_elem(out, 4, "adkim", p->adkim) == 1;
	rc &= xml_elem(out, 4, "aspf", p->aspf) == 1;
	rc &= xml_elem(out, 4, "p", p->p) == 1;
	rc &= xml_elem(out, 4, "sp", p->sp) == 1;
	rc &= xml_num(out, 4, "pct", p->pct) == 1;
	rc &= buf_append_str(out, "  </policy_published>\n") == 1;
	return rc ? 1 : -1;
}

/* One <dkim> per "domain selector result" line. */
static int
xml_dkim(struct buf *out, const char *lines)
{
	char d[256], s[256], r[32];
	int rc = 1;

	while (*lines != '\0' && rc == 1) {
		size_t len = strcspn(lines, "\n");
		char line[600];

		bool fits = len < sizeof(line);

		if (fits)
			memcpy(line, lines, len);
		line[fits ? len : 0] = '\0';
		lines += len + (lines[len] == '\n');
		if (sscanf(line, "%255s %255s %31s", d, s, r) != 3)
			continue;
		rc = buf_append_str(out, "      <dkim>\n") == 1 && xml_elem(out, 8, "domain", d) == 1 &&
		     (strcmp(s, "-") == 0 || xml_elem(out, 8, "selector", s) == 1) &&
		     xml_elem(out, 8, "result", r) == 1 &&
		     buf_append_str(out, "      </dkim>\n") == 1 ? 1 : -1;
	}
	return rc;
}

static int
xml_record(struct buf *out, const struct dmarc_report_row *r)
{
	int rc = buf_append_str(out, "  <record>\n    <row>\n");

	rc &= xml_elem(out, 6, "source_ip", r->source_ip) == 1;
	rc &= xml_num(out, 6, "count", r->count) == 1;
	rc &= buf_append_str(out, "      <policy_evaluated>\n") == 1;
	rc &= xml_elem(out, 8, "disposition", r->disposition) == 1;
	rc &= xml_elem(out, 8, "dkim", r->dkim_aligned ? "pass" : "fail") == 1;
	rc &= xml_elem(out, 8, "spf", r->spf_aligned ? "pass" : "fail") == 1;
	if (r->override[0] != '\0') {
		rc &= buf_append_str(out, "        <reason>\n") == 1;
		rc &= xml_elem(out, 10, "type", r->override) == 1;
		rc &= buf_append_str(out, "        </reason>\n") == 1;
	}
	rc &= buf_append_str(out, "      </policy_evaluated>\n    </row>\n") == 1;
	rc &= buf_append_str(out, "    <identifiers>\n") == 1;
	rc &= xml_elem(out, 6, "header_from", r->header_from) == 1;
	rc &= buf_append_str(out, "    </identifiers>\n    <auth_results>\n") == 1;
	rc &= xml_dkim(out, r->dkim) == 1;
	rc &= buf_append_str(out, "      <spf>\n") == 1;
	rc &= xml_elem(out, 8, "domain", r->spf_domain) == 1;
	rc &= xml_elem(out, 8, "result", r->spf_result) == 1;
	rc &= buf_append_str(out, "      </spf>\n    </auth_results>\n  </record>\n") == 1;
	return rc ? 1 : -1;
}

int
dmarc_report_xml(const struct dmarc_report_meta *meta, const struct dmarc_report_policy *pol,
		 const struct dmarc_report_row *rows, size_t n, struct buf *out)
{
	if (buf_append_str(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback>\n") < 0 ||
	    xml_metadata(out, meta) < 0 || xml_policy(out, pol) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (xml_record(out, &rows[i]) < 0)
			return -1;
	}
	return buf_append_str(out, "</feedback>\n");
}

int
dmarc_report_gzip(const void *data, size_t len, struct buf *out)
{
	z_stream z;
	unsigned char chunk[16384];
	int ret;

	memset(&z, 0, sizeof(z));
	/* 15 + 16: a gzip wrapper rather than zlib's. */
	if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
	    Z_OK)
		return -1;
	z.next_in = (unsigned char *)(uintptr_t)data;
	z.avail_in = (uInt)len;
	do {
		z.next_out = chunk;
		z.avail_out = sizeof(chunk);
		ret = deflate(&z, Z_FINISH);
		if (ret == Z_STREAM_ERROR ||
		    buf_append(out, chunk, sizeof(chunk) - z.avail_out) < 0) {
			deflateEnd(&z);
			return -1;
		}
	} while (ret != Z_STREAM_END);
	deflateEnd(&z);
	return 1;
}

int
dmarc_report_filename(const char *receiver, const char *policy_domain, long long begin,
		      long long end, char *out, size_t outlen)
{
	int n = snprintf(out, outlen, "%s!%s!%lld!%lld.xml.gz", receiver, policy_domain, begin,
			 end);

	return n < 0 || (size_t)n >= outlen ? -1 : 1;
}

struct auth_txt {
	bool found;
};

static void
auth_txt_cb(void *ctx, const char *txt, size_t len)
{
	struct auth_txt *a = ctx;

	/* "v=DMARC1" as the first tag, spaces allowed around '=' (6.4). */
	while (len > 0 && (*txt == ' ' || *txt == '\t')) {
		txt++;
		len--;
	}
	if (len >= 1 && (*txt == 'v' || *txt == 'V')) {
		size_t i = 1;

		while (i < len && (txt[i] == ' ' || txt[i] == '\t'))
			i++;
		if (i < len && txt[i] == '=') {
			i++;
			while (i < len && (txt[i] == ' ' || txt[i] == '\t'))
				i++;
			if (len - i >= 6 && strncmp(txt + i, "DMARC1", 6) == 0 &&
			    (len - i == 6 || strchr("; \t", txt[i + 6]) != NULL))
				a->found = true;
		}
	}
}

int
dmarc_report_authorized(const struct ma_resolver *r, const char *policy_domain,
			const char *rua_domain)
{
	char org_p[DNS_NAME_MAX], org_r[DNS_NAME_MAX], name[DNS_NAME_MAX * 2 + 32];
	struct auth_txt a = { false };
	int ret;

	if (dmarc_org_domain(policy_domain, org_p, sizeof(org_p)) < 0 ||
	    dmarc_org_domain(rua_domain, org_r, sizeof(org_r)) < 0)
		return 0;
	if (strcasecmp(org_p, org_r) == 0)
		return 1;
	if (snprintf(name, sizeof(name), "%s._report._dmarc.%s", policy_domain, rua_domain) >=
	    DNS_NAME_MAX)
		return 0;
	ret = r->txt(r->arg, name, auth_txt_cb, &a);
	if (ret < 0)
		return -1;
	return a.found ? 1 : 0;
}

int
dmarc_report_next_rua(const char **cur, char *addr, size_t addrlen,
		      unsigned long long *max_size)
{
	const char *p = *cur;

	for (;;) {
		size_t len, alen;

		p += strspn(p, " ");
		if (*p == '\0') {
			*cur = p;
			return 0;
		}
		len = strcspn(p, " ");
		*cur = p + len;
		if (len <= 7 || strncasecmp(p, "mailto:", 7) != 0) {
			p += len;
			continue;
		}
		alen = strcspn(p + 7, "! ");
		if (alen == 0 || alen >= addrlen) {
			p += len;
			continue;
		}
		memcpy(addr, p + 7, alen);
		addr[alen] = '\0';
		*max_size = p[7 + alen] == '!' ? strtoull(p + 8 + alen, NULL, 10) : 0;
		return 1;
	}
}
