/* Unit tests for src/mime: header fields, RFC 2047/2231 decoding,
 * addresses, the part tree, sections, BINARY decoding, and ENVELOPE,
 * BODY and BODYSTRUCTURE of every corpus message compared with the
 * expected answers in tests/data/mime/ (see tests/tools/mime-reference.py
 * and tests/data/mime/README.md). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "mime/mime.h"
#include "mime/mime_addr.h"
#include "mime/mime_charset.h"
#include "mime/mime_ctype.h"
#include "mime/mime_decode.h"
#include "mime/mime_header.h"
#include "mime/mime_imap.h"
#include "test.h"

#define BYTES(s) s, sizeof(s) - 1
#define FILE_MAX (8u * 1024 * 1024)

static char *
read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *data;

	if (f == NULL)
		return NULL;
	data = malloc(FILE_MAX);
	*len = fread(data, 1, FILE_MAX, f);
	fclose(f);
	return data;
}

/* Every line end becomes CR LF, as the store keeps messages. */
static char *
canonical(const char *p, size_t len, size_t *outlen)
{
	char *out = malloc(len * 2 + 1);
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		if (p[i] == '\r' || p[i] == '\n') {
			if (p[i] == '\r' && i + 1 < len && p[i + 1] == '\n')
				i++;
			out[n++] = '\r';
			out[n++] = '\n';
		} else {
			out[n++] = p[i];
		}
	}
	*outlen = n;
	return out;
}

/* What tests/tools/mime-reference.py writes for one message. */
static void
imap_answers(const char *data, size_t len, struct buf *out)
{
	struct mime_msg m;

	mime_parse(&m, data, len);
	test_assert(buf_append_str(out, "ENVELOPE ") > 0);
	test_assert(mime_imap_envelope(&m, 0, out, 0) > 0);
	test_assert(buf_append_str(out, "\r\nBODY ") > 0);
	test_assert(mime_imap_bodystructure(&m, 0, false, out, 0) > 0);
	test_assert(buf_append_str(out, "\r\nBODYSTRUCTURE ") > 0);
	test_assert(mime_imap_bodystructure(&m, 0, true, out, 0) > 0);
	test_assert(buf_append_str(out, "\r\n") > 0);
	mime_free(&m);
}

/* "mail-parser_rfc_000.eml.txt" -> "messages/mail-parser/rfc/000.eml" */
static void
corpus_path(const char *name, char *path, size_t size)
{
	char rel[256];
	size_t n = strlen(name) - 4;
	int under = 0;

	snprintf(rel, sizeof(rel), "%.*s", (int)n, name);
	for (char *s = rel; *s; s++)
		if (*s == '_' && (under++ < (strncmp(rel, "mail-parser", 11) == 0 ? 2 : 1)))
			*s = '/';
	snprintf(path, size, "%s/messages/%s", getenv("YOUJU_TESTDATA"), rel);
}

static void
report_diff(const char *name, const struct buf *got, const char *want, size_t wlen)
{
	size_t i = 0;

	while (i < got->len && i < wlen && got->data[i] == want[i])
		i++;
	printf("  %s differs at byte %zu:\n    got:  %.160s\n    want: %.160s\n", name, i,
	       got->data + (i > 40 ? i - 40 : 0), want + (i > 40 ? i - 40 : 0));
}

/* With YOUJU_MIME_DUMP=dir, a differing answer is written to
 * dir/NAME.got, to be read and, if right, kept as NAME.youju. */
static void
dump_got(const char *name, const struct buf *got)
{
	const char *dir = getenv("YOUJU_MIME_DUMP");
	char path[1024];
	FILE *f;

	if (dir == NULL)
		return;
	snprintf(path, sizeof(path), "%s/%.*s.got", dir, (int)(strlen(name) - 4), name);
	if ((f = fopen(path, "wb")) != NULL) {
		fwrite(got->data, 1, got->len, f);
		fclose(f);
	}
}

/* Compares one message's answers with its expected file (or its
 * .youju override). Returns true if they match. */
static bool
corpus_one(const char *dir, const char *name)
{
	char path[2048], epath[2048];
	size_t len, clen, wlen;
	char *raw, *msg, *want;
	struct buf got;
	bool ok;

	corpus_path(name, path, sizeof(path));
	raw = read_file(path, &len);
	if (raw == NULL) {
		printf("  cannot read %s\n", path);
		return false;
	}
	snprintf(epath, sizeof(epath), "%s/%.*s.youju", dir, (int)(strlen(name) - 4), name);
	want = read_file(epath, &wlen);
	if (want == NULL) {
		snprintf(epath, sizeof(epath), "%s/%s", dir, name);
		want = read_file(epath, &wlen);
	}
	msg = canonical(raw, len, &clen);
	buf_init(&got, FILE_MAX);
	imap_answers(msg, clen, &got);
	ok = want != NULL && got.len == wlen && memcmp(got.data, want, wlen) == 0;
	if (!ok && want != NULL)
		report_diff(name, &got, want, wlen);
	if (!ok)
		dump_got(name, &got);
	buf_free(&got);
	free(raw);
	free(msg);
	free(want);
	return ok;
}

static void
test_corpus(void)
{
	char dir[1024];
	struct dirent *de;
	unsigned n = 0, bad = 0;
	DIR *d;

	test_begin("corpus: ENVELOPE, BODY, BODYSTRUCTURE as expected");
	test_assert(getenv("YOUJU_TESTDATA") != NULL);
	snprintf(dir, sizeof(dir), "%s/tests/data/mime", YJ_SOURCE_DIR);
	d = opendir(dir);
	test_assert(d != NULL);
	while (d != NULL && (de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name);

		if (l < 5 || strcmp(de->d_name + l - 4, ".txt") != 0)
			continue;
		n++;
		if (!corpus_one(dir, de->d_name))
			bad++;
	}
	if (d != NULL)
		closedir(d);
	printf("  %u messages, %u differ\n", n, bad);
	test_assert(n >= 150);
	test_assert(bad == 0);
	test_end();
}

static void (*const tests[])(void) = {
	test_corpus,
	NULL,
};

int
main(void)
{
	return test_run(tests);
}
