/* test_itemsets.c -- the published item lists and the trending counts:
 * generations, decay by half-lives, order, and the bound on what is
 * counted. */
#include "test.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "hr/itemsets.h"

HR_TEST(itemsets_publish_replaces_and_holds) {
  const char *a[] = {"x", "y"}, *b[] = {"z"};
  hr_itemsets_reset();
  ASSERT_EQ(hr_itemsets_gen(HR_SET_HIDDEN), 0);
  ASSERT(hr_itemsets_acquire(HR_SET_HIDDEN) == NULL);
  ASSERT_EQ(hr_itemsets_publish(HR_SET_HIDDEN, a, NULL, 2, 5), 0);
  uint64_t g1 = hr_itemsets_gen(HR_SET_HIDDEN);
  ASSERT_GT(g1, 0);
  hr_itemlist_t *held = hr_itemsets_acquire(HR_SET_HIDDEN);
  ASSERT_EQ(hr_itemsets_publish(HR_SET_HIDDEN, b, NULL, 1, 6), 0);
  ASSERT_GT(hr_itemsets_gen(HR_SET_HIDDEN), g1);
  /* the held list is intact after it was replaced */
  ASSERT_EQ(held->n, 2);
  ASSERT_STR_EQ(held->ids[1], "y");
  ASSERT_EQ(held->gen, g1);
  hr_itemsets_release(held);
  hr_itemlist_t *now = hr_itemsets_acquire(HR_SET_HIDDEN);
  ASSERT_EQ(now->n, 1);
  ASSERT_STR_EQ(now->ids[0], "z");
  hr_itemsets_release(now);
  ASSERT_EQ(hr_itemsets_gen(HR_SET_TRENDING), 0); /* kinds apart */
  hr_itemsets_reset();
  ASSERT_EQ(hr_itemsets_gen(HR_SET_HIDDEN), 0);
  return 0;
}

HR_TEST(trending_weights_halve_every_half_life) {
  const long long h = 3600 * 1000LL, t0 = 1767225600000LL;
  hr_trend_t *t = hr_trend_new(3600, 1000);
  ASSERT_NOT_NULL(t);
  hr_itemsets_reset();
  /* a: 4 events an hour before; b: 3 now; c: 1 now and 1 late-read old
   * event (two half-lives back: weighs 1/4) */
  for (int i = 0; i < 4; i++)
    ASSERT_EQ(hr_trend_add(t, "a", t0 - h), 0);
  for (int i = 0; i < 3; i++)
    ASSERT_EQ(hr_trend_add(t, "b", t0), 0);
  ASSERT_EQ(hr_trend_add(t, "c", t0), 0);
  ASSERT_EQ(hr_trend_add(t, "c", t0 - 2 * h), 0);
  ASSERT_EQ(hr_trend_count(t), 3);
  ASSERT_EQ(hr_trend_publish(t, 10, t0), 0);
  hr_itemlist_t *l = hr_itemsets_acquire(HR_SET_TRENDING);
  ASSERT_EQ(l->n, 3);
  ASSERT_STR_EQ(l->ids[0], "b");
  ASSERT_STR_EQ(l->ids[1], "a");
  ASSERT_STR_EQ(l->ids[2], "c");
  ASSERT(fabs(l->weight[0] - 3.0) < 1e-9);
  ASSERT(fabs(l->weight[1] - 2.0) < 1e-9);
  ASSERT(fabs(l->weight[2] - 1.25) < 1e-9);
  hr_itemsets_release(l);
  /* an hour later every weight has halved; the top 2 only */
  ASSERT_EQ(hr_trend_publish(t, 2, t0 + h), 0);
  l = hr_itemsets_acquire(HR_SET_TRENDING);
  ASSERT_EQ(l->n, 2);
  ASSERT(fabs(l->weight[0] - 1.5) < 1e-9 && fabs(l->weight[1] - 1.0) < 1e-9);
  ASSERT_EQ(l->at_ms, t0 + h);
  hr_itemsets_release(l);
  hr_trend_free(t);
  hr_itemsets_reset();
  return 0;
}

/* Past max_items the least-weighted half goes; the heavy ones stay. */
HR_TEST(trending_stays_within_its_bound) {
  const long long t0 = 1767225600000LL;
  hr_trend_t *t = hr_trend_new(3600, 100);
  char id[32];
  ASSERT_NOT_NULL(t);
  hr_itemsets_reset();
  for (int k = 0; k < 5; k++) /* five heavy items */
    for (int i = 0; i < 50; i++) {
      snprintf(id, sizeof(id), "heavy%d", k);
      ASSERT_EQ(hr_trend_add(t, id, t0), 0);
    }
  for (int i = 0; i < 5000; i++) { /* many one-off items */
    snprintf(id, sizeof(id), "once%d", i);
    ASSERT_EQ(hr_trend_add(t, id, t0 + i), 0);
    ASSERT_LE(hr_trend_count(t), 100);
  }
  ASSERT_EQ(hr_trend_publish(t, 5, t0 + 5000), 0);
  hr_itemlist_t *l = hr_itemsets_acquire(HR_SET_TRENDING);
  ASSERT_EQ(l->n, 5);
  for (size_t i = 0; i < 5; i++)
    ASSERT_MSG(strncmp(l->ids[i], "heavy", 5) == 0, "%s", l->ids[i]);
  hr_itemsets_release(l);
  hr_trend_free(t);
  hr_itemsets_reset();
  return 0;
}
