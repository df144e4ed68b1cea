/* test_experiments.c -- sticky assignment: shares, stability, salts. */
#include "test.h"

#include <stdio.h>
#include <string.h>

#include "hr/experiments.h"

/* 100,000 synthetic users split 50/30/20 land within 1 percentage point of
 * the weights. */
HR_TEST(experiments_assignment_follows_weights) {
  static const int w[3] = {50, 30, 20};
  long count[3] = {0};
  char id[32];
  for (int u = 0; u < 100000; u++) {
    int n = snprintf(id, sizeof(id), "user-%d", u);
    int v = hr_exp_assign("homepage-2026-12", id, (size_t)n, w, 3);
    ASSERT(v >= 0 && v < 3);
    count[v]++;
  }
  for (int v = 0; v < 3; v++)
    ASSERT_MSG(count[v] > (w[v] - 1) * 1000 && count[v] < (w[v] + 1) * 1000,
               "variant %d: %ld of 100000 (weight %d %%)", v, count[v], w[v]);
  return 0;
}

/* The same id always gets the same variant, on any build: the hash is
 * pinned (a change would move users between variants of running
 * experiments); another salt assigns independently. */
HR_TEST(experiments_assignment_is_sticky_and_salted) {
  static const int w[2] = {1, 1};
  int same = 0;
  /* the value from an independent Python implementation of the hash */
  ASSERT_EQ(hr_exp_hash("s", "u1", 2), 0xa11bf7307878353dull);
  ASSERT(hr_exp_hash("a", "bc", 2) != hr_exp_hash("ab", "c", 1));
  for (int u = 0; u < 10000; u++) {
    char id[32];
    int n = snprintf(id, sizeof(id), "u%d", u);
    int a = hr_exp_assign("one", id, (size_t)n, w, 2);
    ASSERT_EQ(a, hr_exp_assign("one", id, (size_t)n, w, 2));
    same += a == hr_exp_assign("two", id, (size_t)n, w, 2);
  }
  /* independent salts agree on about half of the users */
  ASSERT_MSG(same > 4700 && same < 5300, "%d of 10000 agree", same);
  /* zero weights: that variant never comes up; nothing to assign: -1 */
  static const int z[3] = {0, 5, 0};
  ASSERT_EQ(hr_exp_assign("s", "x", 1, z, 3), 1);
  static const int none[2] = {0, 0};
  ASSERT_EQ(hr_exp_assign("s", "x", 1, none, 2), -1);
  ASSERT_EQ(hr_exp_assign("s", "x", 1, w, 0), -1);
  return 0;
}
