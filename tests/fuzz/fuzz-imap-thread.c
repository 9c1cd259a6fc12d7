/* fuzz-imap-thread - SORT/THREAD logic on arbitrary bytes: the base
 * subject of the input is no longer than its decoding allows, and the
 * input read as messages, one a line ("subject|msg-id|references|date"),
 * is threaded by both algorithms into a well-formed thread list naming
 * every message exactly once. The Date: parser and folding run too, and
 * the input read as a header gives well-formed thread ids. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_thread.h"
#include "mime/mime_date.h"
#include "mime/mime_fold.h"
#include "mime/mime_msgid.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MSGS_MAX 64

struct fmsg {
	char subject[256];
	char *msgid;
	char *refs[IMAP_THREAD_REFS_MAX];
	size_t nrefs;
};

static bool
add_ref(void *ctx, const char *id, size_t len)
{
	struct fmsg *m = ctx;

	if (m->nrefs == IMAP_THREAD_REFS_MAX)
		return false;
	m->refs[m->nrefs++] = strndup(id, len);
	return true;
}

static bool
set_id(void *ctx, const char *id, size_t len)
{
	*(char **)ctx = strndup(id, len);
	return false;
}

/* Balanced parentheses, and each id 1..n exactly once. */
static void
check_threads(const char *s, size_t n)
{
	unsigned char seen[FUZZ_MSGS_MAX + 1] = { 0 };
	int depth = 0;
	size_t count = 0;

	for (const char *p = s; *p != '\0'; p++) {
		if (*p == '(') {
			depth++;
		} else if (*p == ')') {
			if (--depth < 0)
				abort();
		} else if (*p >= '1' && *p <= '9') {
			unsigned long v = strtoul(p, (char **)&p, 10);
			p--;
			if (v == 0 || v > n || seen[v]++)
				abort();
			count++;
		} else if (*p != ' ')
			abort();
	}
	if (depth != 0 || count != n) {
		fprintf(stderr, "bad thread list of %zu messages: %s\n", n, s);
		abort();
	}
}

static void
fuzz_threads(const char *text, size_t len)
{
	static struct fmsg msgs[FUZZ_MSGS_MAX];
	struct imap_thread_msg t[FUZZ_MSGS_MAX];
	size_t n = 0, pos = 0;
	struct buf out;

	while (pos < len && n < FUZZ_MSGS_MAX) {
		const char *line = text + pos, *nl = memchr(line, '\n', len - pos);
		size_t llen = nl ? (size_t)(nl - line) : len - pos;
		const char *f[4] = { line, "", "", "" };
		size_t fl[4] = { llen, 0, 0, 0 }, k = 0;
		struct buf subj;
		struct mime_date d;
		bool reply = false;

		for (size_t i = 0; i < llen && k < 3; i++)
			if (line[i] == '|') {
				fl[k] = (size_t)(line + i - f[k]);
				f[++k] = line + i + 1;
				fl[k] = (size_t)(line + llen - f[k]);
			}
		memset(&msgs[n], 0, sizeof(msgs[n]));
		buf_init(&subj, sizeof(msgs[n].subject) - 1);
		if (imap_base_subject(f[0], fl[0], &subj, &reply) > 0 && subj.len > 0)
			memcpy(msgs[n].subject, subj.data, subj.len);
		buf_free(&subj);
		mime_msgids(f[1], fl[1], set_id, &msgs[n].msgid);
		mime_msgids(f[2], fl[2], add_ref, &msgs[n]);
		t[n] = (struct imap_thread_msg){
			.id = (uint32_t)(n + 1), .seq = (uint32_t)(n + 1), .subject = msgs[n].subject,
			.reply = reply, .msgid = msgs[n].msgid, .refs = (const char **)msgs[n].refs,
			.nrefs = msgs[n].nrefs,
			.date = mime_date_parse(f[3], fl[3], &d) == 1 ? d.utc : 0,
		};
		n++;
		pos += llen + 1;
	}
	buf_init(&out, 1 << 20);
	if (imap_thread_references(t, n, &out) < 0)
		abort();
	check_threads(out.data ? out.data : "", n);
	buf_reset(&out);
	if (imap_thread_orderedsubject(t, n, &out) < 0)
		abort();
	check_threads(out.data ? out.data : "", n);
	buf_free(&out);
	for (size_t i = 0; i < n; i++) {
		free(msgs[i].msgid);
		for (size_t r = 0; r < msgs[i].nrefs; r++)
			free(msgs[i].refs[r]);
	}
}

/* The input as a header: at most MIME_THREAD_KEYS_MAX ids, each a
 * "<...>" of bounded length, none twice. */
static void
fuzz_thread_keys(const char *text, size_t size)
{
	struct buf keys;
	size_t n, seen = 0;

	buf_init(&keys, (MIME_MSGID_MAX + 1) * MIME_THREAD_KEYS_MAX);
	n = mime_thread_keys(text, size, &keys);
	if (n > MIME_THREAD_KEYS_MAX)
		abort();
	for (size_t pos = 0; pos < keys.len; pos += strlen(keys.data + pos) + 1, seen++) {
		size_t len = strlen(keys.data + pos);

		if (len < 3 || len > MIME_MSGID_MAX || keys.data[pos] != '<' ||
		    keys.data[pos + len - 1] != '>')
			abort();
		for (size_t p2 = 0; p2 < pos; p2 += strlen(keys.data + p2) + 1)
			if (strcmp(keys.data + p2, keys.data + pos) == 0)
				abort();
	}
	if (seen != n)
		abort();
	buf_free(&keys);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	struct buf out;
	struct mime_date d;
	bool reply;

	buf_init(&out, 4 * size + 64);
	if (imap_base_subject(text, size, &out, &reply) < 0)
		abort();
	buf_reset(&out);
	if (mime_fold_utf8(text, size, &out) < 0)
		abort();
	buf_free(&out);
	(void)mime_date_parse(text, size, &d);
	fuzz_threads(text, size);
	fuzz_thread_keys(text, size);
	return 0;
}
