/* test-mime-msgid.c - msg-id lists and the ids a message's thread is
 * found by (RFC 8474 THREADID): which fields, in which order, each once,
 * normalized, and how many of a long References field. */
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mime/mime_msgid.h"

/* The keys as "a|b|c". */
static void
keys_of(const char *hdr, char *out, size_t outlen, size_t *count_r)
{
	struct buf keys;
	size_t n = 0;

	buf_init(&keys, (MIME_MSGID_MAX + 1) * MIME_THREAD_KEYS_MAX);
	*count_r = mime_thread_keys(hdr, strlen(hdr), &keys);
	out[0] = '\0';
	for (size_t pos = 0; pos < keys.len; pos += strlen(keys.data + pos) + 1)
		n += (size_t)snprintf(out + n, outlen - n, "%s%s", pos > 0 ? "|" : "",
				      keys.data + pos);
	buf_free(&keys);
}

static void
test_thread_keys(void)
{
	char got[8192];
	size_t n;

	test_begin("mime_thread_keys: References, In-Reply-To, Message-ID, each once");
	keys_of("From: a@b\r\nMessage-ID: <m@x>\r\nIn-Reply-To: <p@x> (the parent)\r\n"
		"References: <r@x>\r\n <p@x>\r\nSubject: s\r\n\r\nReferences: <body@x>\r\n",
		got, sizeof(got), &n);
	test_assert_strcmp(got, "<r@x>|<p@x>|<m@x>");
	test_assert(n == 3);
	keys_of("message-id:   <\"q\\\"uo ted\"@x>\r\n\r\n", got, sizeof(got), &n);
	test_assert_strcmp(got, "<q\"uoted@x>");
	keys_of("Subject: nothing\r\n\r\n", got, sizeof(got), &n);
	test_assert(n == 0 && got[0] == '\0');
	keys_of("In-Reply-To: <a@x> <b@x>\r\nMessage-ID: <>\r\n\r\n", got, sizeof(got), &n);
	test_assert_strcmp(got, "<a@x>");
	/* a control character (a NUL above all) makes an id invalid */
	{
		static const char hdr[] = "References: <a\001b@x> <c\0d@x> <e@x>\r\n\r\n";
		struct buf keys;

		buf_init(&keys, 4096);
		test_assert(mime_thread_keys(hdr, sizeof(hdr) - 1, &keys) == 1);
		test_assert(keys.len == 6 && strcmp(keys.data, "<e@x>") == 0);
		buf_free(&keys);
	}
	test_end();
}

static void
test_long_references(void)
{
	char *hdr = malloc(100 * 16 + 64), got[8192], want[64];
	size_t len = 0, n;

	test_begin("mime_thread_keys: of a long References the first and the last ones");
	len += (size_t)sprintf(hdr, "References:");
	for (int i = 0; i < 100; i++)
		len += (size_t)sprintf(hdr + len, " <r%d@x>", i);
	sprintf(hdr + len, "\r\nMessage-ID: <me@x>\r\n\r\n");
	keys_of(hdr, got, sizeof(got), &n);
	test_assert(n == MIME_THREAD_KEYS_MAX);
	test_assert(strncmp(got, "<r0@x>|<r69@x>|<r70@x>|", 23) == 0);
	snprintf(want, sizeof(want), "|<r99@x>");
	test_assert(strstr(got, want) != NULL && strstr(got, "<r68@x>") == NULL);
	/* the own id did not fit: References fill the list first */
	test_assert(strstr(got, "<me@x>") == NULL);
	free(hdr);
	test_end();
}

int
main(void)
{
	static void (*const tests[])(void) = {
		test_thread_keys, test_long_references, NULL,
	};

	return test_run(tests);
}
