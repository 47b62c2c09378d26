/* A userspace stand-in for <kunit/test.h>: only what `sidkit vectors emit --format kunit`
 * output uses, so that the emitted suite can be compiled against the kernel's own code in the
 * oracle harness and run (tests/test_vectors_emit.py). It is a shim, not KUnit:
 *
 * - struct kunit, struct kunit_case and struct kunit_suite carry just the members the emitted
 *   code and this runner touch (the kernel's have more; the emitted code names no others);
 * - KUNIT_EXPECT_EQ_MSG evaluates both sides once into typeof() copies, as the kernel's
 *   KUNIT_BASE_BINARY_ASSERTION does, and records a failure with the message;
 * - kunit_skip() ends the case (longjmp back to the runner) like the kernel's try-catch;
 * - kunit_test_suite()/kunit_test_suites() collect the suites in kunit_shim_suites[], which
 *   kunit_shim_run() runs, printing KTAP-like lines and the expectation counts.
 *
 * Semantics follow include/kunit/test.h of Linux 6.12 for these macros.
 */
#ifndef _KUNIT_SHIM_TEST_H
#define _KUNIT_SHIM_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>

struct kunit {
	const char *name;
	unsigned long expectations;
	unsigned long failures;
	int skipped;
	jmp_buf skip;
};

struct kunit_case {
	void (*run_case)(struct kunit *test);
	const char *name;
};

struct kunit_suite {
	const char name[256];
	struct kunit_case *test_cases;
};

#define KUNIT_CASE(test_name) { .run_case = test_name, .name = #test_name }

#define kunit_test_suites(...) \
	static struct kunit_suite *kunit_shim_suites[] = { __VA_ARGS__, NULL }
#define kunit_test_suite(suite) kunit_test_suites(&suite)

static __attribute__((format(printf, 7, 8))) void
kunit_shim_fail(struct kunit *test, const char *left, const char *right,
		unsigned long long lv, unsigned long long rv, int line, const char *fmt, ...)
{
	va_list ap;

	test->failures++;
	printf("    # %s: line %d: EXPECTATION FAILED: %s == %s (0x%llx != 0x%llx): ",
	       test->name, line, left, right, lv, rv);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

#define KUNIT_EXPECT_EQ_MSG(test, left, right, fmt, ...)				\
	do {									\
		const typeof(left) __left = (left);				\
		const typeof(right) __right = (right);				\
										\
		(test)->expectations++;						\
		if (!(__left == __right))					\
			kunit_shim_fail((test), #left, #right,			\
					(unsigned long long)__left,		\
					(unsigned long long)__right, __LINE__,	\
					fmt, ##__VA_ARGS__);			\
	} while (0)

#define kunit_skip(test, fmt, ...)						\
	do {									\
		printf("    # %s: SKIP " fmt "\n", (test)->name, ##__VA_ARGS__);	\
		(test)->skipped = 1;						\
		longjmp((test)->skip, 1);					\
	} while (0)

/* Run every case of every suite; return the number of failed cases. Prints one line per
 * case and a summary "# kunit-shim: expectations=N failures=F skipped=S". */
static __attribute__((unused)) int kunit_shim_run(struct kunit_suite *const *suites)
{
	unsigned long expectations = 0, failures = 0, skipped = 0;
	int failed_cases = 0, n = 0;

	for (; *suites; suites++) {
		struct kunit_case *c;

		printf("# Subtest: %s\n", (*suites)->name);
		for (c = (*suites)->test_cases; c->run_case; c++) {
			struct kunit test = { .name = c->name };

			if (!setjmp(test.skip))
				c->run_case(&test);
			expectations += test.expectations;
			failures += test.failures;
			skipped += test.skipped;
			failed_cases += test.failures > 0;
			printf("%s %d %s%s\n", test.failures ? "not ok" : "ok", ++n, c->name,
			       test.skipped ? " # SKIP" : "");
		}
	}
	printf("# kunit-shim: expectations=%lu failures=%lu skipped=%lu\n",
	       expectations, failures, skipped);
	return failed_cases;
}

#endif
