/* The bounded buffer: buf_printf formats in place when the text fits
 * the memory the buffer has, grows it when not, and never passes max. */
#include <string.h>

#include "base/buf.h"
#include "test.h"

static void
test_buf_printf(void)
{
	struct buf b;

	test_begin("buf_printf: in place, grown, or refused at max");
	buf_init(&b, 100);
	test_assert(buf_printf(&b, "a%dc", 1) == 1);	/* into an empty buffer */
	test_assert(b.len == 3 && strcmp(b.data, "a1c") == 0);
	test_assert(b.cap >= 64);
	test_assert(buf_printf(&b, " %s", "in place") == 1);
	test_assert(b.len == 12 && strcmp(b.data, "a1c in place") == 0);
	/* Longer than the memory it has: grown and formatted again. */
	test_assert(buf_printf(&b, "%070d", 7) == 1);
	test_assert(b.len == 82 && b.data[81] == '7' && b.data[82] == '\0');
	/* Past max, whether it fits the memory or not: nothing added. */
	test_assert(b.cap > 100);
	test_assert(buf_printf(&b, "%019d", 0) == -1);
	test_assert(b.len == 82 && b.data[82] == '\0');
	test_assert(buf_printf(&b, "%0200d", 0) == -1);
	test_assert(b.len == 82 && b.data[82] == '\0' && b.data[81] == '7');
	/* Up to max exactly is fine. */
	test_assert(buf_printf(&b, "%018d", 5) == 1);
	test_assert(b.len == 100 && b.data[99] == '5' && b.data[100] == '\0');
	test_assert(buf_printf(&b, "%s", "") == 1 && b.len == 100);
	test_assert(buf_printf(&b, "x") == -1 && b.len == 100);
	buf_free(&b);

	buf_init(&b, 2);
	test_assert(buf_printf(&b, "abc") == -1 && b.len == 0 && b.data[0] == '\0');
	test_assert(buf_printf(&b, "ab") == 1 && strcmp(b.data, "ab") == 0);
	buf_free(&b);
	test_end();
}

int
main(void)
{
	static void (*const tests[])(void) = {
		test_buf_printf,
		NULL,
	};

	return test_run(tests);
}
