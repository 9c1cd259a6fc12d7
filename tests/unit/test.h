/* test.h - a tiny unit test kit: table of functions, assertions that
 * report file:line and carry on, one summary line at the end. */
#ifndef YJ_TEST_H
#define YJ_TEST_H

#include <stdbool.h>
#include <stddef.h>

void test_begin(const char *name);
void test_end(void);
void test_fail(const char *file, int line, const char *what);
/* Runs each function (NULL-terminated) and returns the exit status. */
int test_run(void (*const tests[])(void));

#define test_assert(expr) \
	do { if (!(expr)) test_fail(__FILE__, __LINE__, #expr); } while (0)
#define test_assert_strcmp(a, b) \
	do { if (strcmp((a), (b)) != 0) test_fail_str(__FILE__, __LINE__, (a), (b)); } while (0)
void test_fail_str(const char *file, int line, const char *got, const char *want);

#endif
