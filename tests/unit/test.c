#include "test.h"

#include <stdio.h>

static const char *test_name = "?";
static bool test_ok;
static unsigned test_passed, test_failed;

void
test_begin(const char *name)
{
	test_name = name;
	test_ok = true;
}

void
test_end(void)
{
	if (test_ok)
		test_passed++;
	else
		test_failed++;
	printf("%-50s %s\n", test_name, test_ok ? "ok" : "FAILED");
}

void
test_fail(const char *file, int line, const char *what)
{
	test_ok = false;
	printf("  %s:%d: assertion failed: %s\n", file, line, what);
}

void
test_fail_str(const char *file, int line, const char *got, const char *want)
{
	test_ok = false;
	printf("  %s:%d: got \"%s\", want \"%s\"\n", file, line, got, want);
}

int
test_run(void (*const tests[])(void))
{
	for (size_t i = 0; tests[i] != NULL; i++)
		tests[i]();
	printf("%u passed, %u failed\n", test_passed, test_failed);
	return test_failed == 0 ? 0 : 1;
}
