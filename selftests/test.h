/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * test.h - assertions for smtpguard's C tests, in the kernel selftests' style.
 *
 * Each check prints one line, "PASS name" or "FAIL name: got X, want Y",
 * which selftests/run.sh counts. A test program returns test_exit_status().
 * A failed ASSERT_* returns false so a test can stop early:
 *	if (!ASSERT_EQ(got, 2, "verdict of a truncated SYN")) return;
 */
#ifndef SMTPGUARD_TEST_H
#define SMTPGUARD_TEST_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static int test_failures;
static int test_passes;

static inline bool test_report(bool ok, const char *name, const char *fmt_detail)
{
	if (ok) {
		test_passes++;
		printf("PASS %s\n", name);
	} else {
		test_failures++;
		printf("FAIL %s: %s\n", name, fmt_detail);
	}
	fflush(stdout);
	return ok;
}

#define ASSERT_EQ(got, want, name) ({						\
	long long _g = (long long)(got), _w = (long long)(want);		\
	char _d[160];								\
	snprintf(_d, sizeof(_d), "got %lld, want %lld (%s:%d)", _g, _w,	\
		 __FILE__, __LINE__);						\
	test_report(_g == _w, (name), _d);					\
})

#define ASSERT_NEQ(got, unwanted, name) ({					\
	long long _g = (long long)(got), _u = (long long)(unwanted);		\
	char _d[160];								\
	snprintf(_d, sizeof(_d), "got %lld, which it must not be (%s:%d)",	\
		 _g, __FILE__, __LINE__);					\
	test_report(_g != _u, (name), _d);					\
})

#define ASSERT_TRUE(cond, name) ({						\
	char _d[160];								\
	snprintf(_d, sizeof(_d), "'%s' is false (%s:%d)", #cond,		\
		 __FILE__, __LINE__);						\
	test_report(!!(cond), (name), _d);					\
})

#define ASSERT_STREQ(got, want, name) ({					\
	const char *_g = (got), *_w = (want);					\
	char _d[1200];								\
	snprintf(_d, sizeof(_d), "got \"%.500s\", want \"%.500s\" (%s:%d)",	\
		 _g ? _g : "(null)", _w, __FILE__, __LINE__);			\
	test_report(_g && strcmp(_g, _w) == 0, (name), _d);			\
})

/* The message must mention every fragment (a clear error names what to fix). */
#define ASSERT_CONTAINS(haystack, needle, name) ({				\
	const char *_h = (haystack), *_n = (needle);				\
	char _d[1200];								\
	snprintf(_d, sizeof(_d), "\"%.500s\" does not contain \"%.500s\" (%s:%d)",\
		 _h ? _h : "(null)", _n, __FILE__, __LINE__);			\
	test_report(_h && strstr(_h, _n) != NULL, (name), _d);			\
})

static inline int test_exit_status(void)
{
	return test_failures ? 1 : 0;
}

#endif /* SMTPGUARD_TEST_H */
