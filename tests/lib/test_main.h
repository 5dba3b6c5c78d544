#ifndef TESTS_TEST_MAIN_H
#define TESTS_TEST_MAIN_H

/*
 * The main() of every cmocka program in tests/: runs the listed tests and
 * prints "N passed, N failed" as its last line, which tests/run and
 * tests/lib/suite.sh read. Exit status 0 only when nothing failed.
 *
 *     TEST_MAIN(cmocka_unit_test(test_a), cmocka_unit_test(test_b))
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#define TEST_MAIN(...)                                                         \
	int main(void)                                                         \
	{                                                                      \
		const struct CMUnitTest tests_[] = {__VA_ARGS__};              \
		size_t count_ = sizeof(tests_) / sizeof(tests_[0]);            \
		int failed_ = cmocka_run_group_tests(tests_, NULL, NULL);      \
		fflush(stderr);                                                \
		printf("%zu passed, %d failed\n", count_ - (size_t)failed_,     \
		       failed_);                                               \
		return failed_ != 0;                                           \
	}

#endif
