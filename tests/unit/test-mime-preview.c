/* test-mime-preview.c - RFC 8970 previews: which part is chosen, its
 * decoding, HTML markup taken out, white space and length; and over the
 * message corpus, that every preview is short, clean UTF-8. */
#include "test.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mime/mime.h"
#include "mime/mime_preview.h"

static void
preview_of(const char *msg, struct buf *out)
{
	struct mime_msg m;

	mime_parse(&m, msg, strlen(msg));
	buf_init(out, 4096);
	test_assert(mime_preview(&m, out) == 1);
	test_assert(buf_append(out, "", 1) == 1);	/* NUL for the compare */
	mime_free(&m);
}

static void
expect(const char *msg, const char *want)
{
	struct buf out;

	preview_of(msg, &out);
	test_assert_strcmp(out.data, want);
	buf_free(&out);
}

static void
test_plain(void)
{
	test_begin("preview: plain text, white space collapsed");
	expect("Subject: hi\r\n\r\n  Hello   there,\r\n\r\n\tsee you\tsoon.\r\n", "Hello there, see you soon.");
	expect("Subject: none\r\n\r\n", "");
	expect("Subject: hi\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
	       "Content-Transfer-Encoding: quoted-printable\r\n\r\nCaf=E9 cr=E8me=\r\n br=FBl=E9e\r\n",
	       "Caf\xc3\xa9 cr\xc3\xa8me br\xc3\xbbl\xc3\xa9""e");
	expect("Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n"
	       "SGVsbG8gd29ybGQ=\r\n", "Hello world");
	test_end();
}

static void
test_html(void)
{
	test_begin("preview: HTML without markup, styles or scripts");
	expect("Content-Type: text/html; charset=utf-8\r\n\r\n"
	       "<html><head><title>T</title><style>p { color: red }</style></head>"
	       "<body><p>Fish &amp; chips</p><!-- note --><p>at&nbsp;5 &lt;sharp&gt; &#233;&#xE9;</p>"
	       "<script>alert(1)</script></body></html>\r\n",
	       "Fish & chips at 5 <sharp> \xc3\xa9\xc3\xa9");
	test_end();
}

static void
test_choice(void)
{
	test_begin("preview: text/plain before HTML; attachments and attached messages skipped");
	expect("Content-Type: multipart/alternative; boundary=b\r\n\r\n"
	       "--b\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n"
	       "--b\r\nContent-Type: text/plain\r\n\r\nplain\r\n--b--\r\n", "plain");
	expect("Content-Type: multipart/mixed; boundary=b\r\n\r\n"
	       "--b\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=a.txt\r\n"
	       "\r\nattached\r\n"
	       "--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner text\r\n"
	       "--b\r\nContent-Type: text/html\r\n\r\n<b>outer</b>\r\n--b--\r\n", "outer");
	expect("Content-Type: image/png\r\n\r\nxxxx\r\n", "");
	test_end();
}

static void
test_length(void)
{
	char msg[4096];
	struct buf out;
	size_t n;

	test_begin("preview: at most 200 characters, whole UTF-8 sequences");
	n = (size_t)snprintf(msg, sizeof(msg), "Content-Type: text/plain; charset=utf-8\r\n\r\n");
	for (int i = 0; i < 300; i++)
		n += (size_t)snprintf(msg + n, sizeof(msg) - n, "\xc3\xa9");
	preview_of(msg, &out);
	test_assert(out.len - 1 == 400);
	buf_free(&out);
	test_end();
}

/* ---- the corpus ---- */

static bool
preview_clean(const struct buf *b)
{
	size_t chars = 0;

	for (size_t i = 0; i < b->len;) {
		unsigned char c = (unsigned char)b->data[i];
		size_t n = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3
			 : (c & 0xF8) == 0xF0 ? 4 : 0;

		if (n == 0 || i + n > b->len || c < 0x20 || c == 0x7F)
			return false;
		for (size_t k = 1; k < n; k++)
			if (((unsigned char)b->data[i + k] & 0xC0) != 0x80)
				return false;
		if (c == ' ' && (i == 0 || i + 1 == b->len || b->data[i + 1] == ' '))
			return false;
		i += n;
		chars++;
	}
	return chars <= MIME_PREVIEW_CHARS;
}

static void
corpus_dir(const char *dir, unsigned *n, unsigned *bad, unsigned *nonempty)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	while (d != NULL && (de = readdir(d)) != NULL) {
		char path[2048];
		struct stat st;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (stat(path, &st) < 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			corpus_dir(path, n, bad, nonempty);
		} else if (strstr(de->d_name, ".eml") != NULL || strstr(de->d_name, ".txt") != NULL) {
			FILE *f = fopen(path, "rb");
			char *data = malloc((size_t)st.st_size + 1);
			struct mime_msg m;
			struct buf out;

			if (f == NULL || data == NULL ||
			    fread(data, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
				(*bad)++;
			} else {
				mime_parse(&m, data, (size_t)st.st_size);
				buf_init(&out, 4096);
				if (mime_preview(&m, &out) != 1 || !preview_clean(&out)) {
					printf("  %s: bad preview '%.*s'\n", path, (int)out.len,
					       out.data ? out.data : "");
					(*bad)++;
				}
				*nonempty += out.len > 0;
				buf_free(&out);
				mime_free(&m);
			}
			(*n)++;
			if (f != NULL)
				fclose(f);
			free(data);
		}
	}
	if (d != NULL)
		closedir(d);
}

static void
test_corpus(void)
{
	char dir[1024];
	unsigned n = 0, bad = 0, nonempty = 0;

	test_begin("preview: every corpus message gives clean, short UTF-8");
	test_assert(getenv("YOUJU_TESTDATA") != NULL);
	snprintf(dir, sizeof(dir), "%s/messages", getenv("YOUJU_TESTDATA"));
	corpus_dir(dir, &n, &bad, &nonempty);
	printf("  %u messages, %u with a preview, %u bad\n", n, nonempty, bad);
	test_assert(n >= 100);
	test_assert(nonempty > n / 2);
	test_assert(bad == 0);
	test_end();
}

int
main(void)
{
	static void (*const tests[])(void) = {
		test_plain, test_html, test_choice, test_length, test_corpus, NULL,
	};

	return test_run(tests);
}
