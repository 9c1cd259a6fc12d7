/* dkim_zone.c - TXT answers from a table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mailauth/dkim_zone.h"

#define ZONE_LINE_MAX 8192

static int
zone_txt(void *arg, const char *name, dns_txt_fn *fn, void *ctx)
{
	struct dkim_zone *z = arg;
	int found = 0;

	for (size_t i = 0; i < z->n; i++) {
		if (strcasecmp(z->rec[i].name, name) != 0)
			continue;
		if (z->rec[i].kind == DKIM_ZONE_TEMPFAIL)
			return -1;
		if (z->rec[i].kind == DKIM_ZONE_NXDOMAIN)
			return 0;
		fn(ctx, z->rec[i].text, strlen(z->rec[i].text));
		found = 1;
	}
	return found;
}

static int
zone_none(void)
{
	return 0;
}

static int
zone_mx(void *arg, const char *name, struct dns_mx *mx, size_t max, size_t *count_r)
{
	*count_r = 0;
	return zone_none();
}

static int
zone_addr(void *arg, const char *name, char addrs[][DNS_ADDR_MAX], size_t max,
	  size_t *count_r)
{
	*count_r = 0;
	return zone_none();
}

static int
zone_ptr(void *arg, const char *ip, char names[][DNS_NAME_MAX], size_t max,
	 size_t *count_r)
{
	*count_r = 0;
	return zone_none();
}

void
dkim_zone_init(struct dkim_zone *z)
{
	memset(z, 0, sizeof(*z));
	z->resolver = (struct ma_resolver){
		.arg = z, .txt = zone_txt, .mx = zone_mx, .a = zone_addr,
		.aaaa = zone_addr, .ptr = zone_ptr,
	};
}

void
dkim_zone_free(struct dkim_zone *z)
{
	for (size_t i = 0; i < z->n; i++) {
		free(z->rec[i].name);
		free(z->rec[i].text);
	}
	free(z->rec);
	z->rec = NULL;
	z->n = 0;
}

int
dkim_zone_add(struct dkim_zone *z, const char *name, const char *text,
	      enum dkim_zone_kind kind)
{
	struct dkim_zone_rec *r;

	if (z->n == DKIM_ZONE_MAX)
		return -1;
	r = realloc(z->rec, (z->n + 1) * sizeof(*r));
	if (r == NULL)
		abort();
	z->rec = r;
	r = &z->rec[z->n++];
	r->name = strdup(name);
	r->text = strdup(text);
	if (r->name == NULL || r->text == NULL)
		abort();
	r->kind = kind;
	return 1;
}

/* One "NAME TEXT" line, trailing whitespace removed. */
static int
zone_line(struct dkim_zone *z, char *line)
{
	size_t len = strcspn(line, "\r\n");
	char *text;
	enum dkim_zone_kind kind = DKIM_ZONE_TXT;

	line[len] = '\0';
	if (line[0] == '#' || line[strspn(line, " \t")] == '\0')
		return 1;
	text = line + strcspn(line, " \t");
	if (*text != '\0')
		*text++ = '\0';
	text += strspn(text, " \t");
	len = strlen(text);
	while (len > 0 && (text[len - 1] == ' ' || text[len - 1] == '\t'))
		text[--len] = '\0';
	if (strcmp(text, "NXDOMAIN") == 0)
		kind = DKIM_ZONE_NXDOMAIN;
	else if (len >= 4 && strncmp(text, "~~", 2) == 0 && strcmp(text + len - 2, "~~") == 0)
		kind = DKIM_ZONE_TEMPFAIL;
	else if (strcmp(text, "\"\"") == 0)
		text[0] = '\0';
	return dkim_zone_add(z, line, text, kind);
}

int
dkim_zone_load(struct dkim_zone *z, const char *path, struct yj_err *err)
{
	FILE *f = fopen(path, "r");
	char line[ZONE_LINE_MAX];
	int rc = 1;

	if (f == NULL)
		return yj_err_errno(err, "cannot open %s", path);
	while (rc == 1 && fgets(line, sizeof(line), f) != NULL) {
		if (strchr(line, '\n') == NULL && !feof(f))
			rc = yj_err_set(err, "%s: line too long", path);
		else if (zone_line(z, line) < 0)
			rc = yj_err_set(err, "%s: too many records", path);
	}
	fclose(f);
	return rc;
}
