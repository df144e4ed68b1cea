/* test.h -- the test harness: registration, assertions, helpers.
 *
 * A test is `HR_TEST(module_case) { ... return 0; }`; it registers itself at
 * start-up (a constructor), so adding a test never means editing a list. The
 * runner (tests/runner.c) forks every test into its own process with a
 * timeout, so a crash or a hang fails one test, not the run. ASSERT_* print
 * both operands with file:line and fail the test by returning 1. */
#ifndef HR_TEST_H
#define HR_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

typedef int (*hr_test_fn)(void);

void hr_test_register(const char *name, hr_test_fn fn, int timeout_s,
                      const char *file);

#define HR_TEST_T(name, timeout_s)                                            \
  static int test_##name(void);                                               \
  __attribute__((constructor)) static void register_##name(void) {            \
    hr_test_register(#name, test_##name, timeout_s, __FILE__);                \
  }                                                                           \
  static int test_##name(void)

/* Default timeout: 30 s; integration tests may ask for more. */
#define HR_TEST(name) HR_TEST_T(name, 30)

#define HR_FAIL(...)                                                          \
  do {                                                                        \
    fprintf(stderr, "  FAIL %s:%d: ", __FILE__, __LINE__);                    \
    fprintf(stderr, __VA_ARGS__);                                             \
    fputc('\n', stderr);                                                      \
    return 1;                                                                 \
  } while (0)

#define ASSERT(cond)                                                          \
  do {                                                                        \
    if (!(cond))                                                              \
      HR_FAIL("assertion failed: %s", #cond);                                 \
  } while (0)

#define ASSERT_MSG(cond, ...)                                                 \
  do {                                                                        \
    if (!(cond))                                                              \
      HR_FAIL(__VA_ARGS__);                                                   \
  } while (0)

#define ASSERT_INT_OP(a, op, b)                                               \
  do {                                                                        \
    long long a_ = (long long)(a), b_ = (long long)(b);                       \
    if (!(a_ op b_))                                                          \
      HR_FAIL("%s %s %s (%lld vs %lld)", #a, #op, #b, a_, b_);                \
  } while (0)

#define ASSERT_EQ(a, b) ASSERT_INT_OP(a, ==, b)
#define ASSERT_NE(a, b) ASSERT_INT_OP(a, !=, b)
#define ASSERT_LT(a, b) ASSERT_INT_OP(a, <, b)
#define ASSERT_LE(a, b) ASSERT_INT_OP(a, <=, b)
#define ASSERT_GT(a, b) ASSERT_INT_OP(a, >, b)
#define ASSERT_GE(a, b) ASSERT_INT_OP(a, >=, b)

#define ASSERT_DBL_NEAR(a, b, tol)                                            \
  do {                                                                        \
    double a_ = (double)(a), b_ = (double)(b);                                \
    if (!(a_ - b_ <= (tol) && b_ - a_ <= (tol)))                              \
      HR_FAIL("%s ~ %s (%.9g vs %.9g, tol %g)", #a, #b, a_, b_,               \
              (double)(tol));                                                 \
  } while (0)

#define ASSERT_STR_EQ(a, b)                                                   \
  do {                                                                        \
    const char *a_ = (a), *b_ = (b);                                          \
    if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0)                      \
      HR_FAIL("%s == %s (\"%s\" vs \"%s\")", #a, #b, a_ ? a_ : "(null)",      \
              b_ ? b_ : "(null)");                                            \
  } while (0)

#define ASSERT_NOT_NULL(p) ASSERT_MSG((p) != NULL, "%s is NULL", #p)

/* ---- helpers shared by tests (tests/runner.c) ---- */

/** A fresh temporary directory (mkdtemp under $TMPDIR), removed with
 *  everything in it by hr_test_rmtree at the end of the test process. */
const char *hr_test_tmpdir(void);
/** rm -rf path (no shell). */
void hr_test_rmtree(const char *path);
/** Path of the shared data folder (../shared/data from the project root, or
 *  $HR_SHARED_DATA). Returns NULL when missing; see HR_NEED_DATA. */
const char *hr_test_shared_data(void);
/** Project root (the runner's working directory). */
const char *hr_test_root(void);
/** Mark the test skipped (exit code 77). Under CI=true a skip is a failure. */
int hr_test_skip(const char *why);

/* A test that needs ../shared/data: fails under CI=true when it is missing,
 * is reported as skipped (and counted) otherwise. */
#define HR_NEED_DATA(relpath, outbuf)                                         \
  do {                                                                        \
    const char *d_ = hr_test_shared_data();                                   \
    if (d_ == NULL)                                                           \
      return hr_test_skip("shared data folder not found");                    \
    snprintf(outbuf, sizeof(outbuf), "%s/%s", d_, relpath);                   \
  } while (0)

#endif
