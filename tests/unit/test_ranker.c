/* test_ranker.c -- top-k selection against a brute-force sort. */
#include "test.h"

#include <math.h>
#include <stdlib.h>

#include "hr/ranker.h"

static int cmp_ref(const void *a, const void *b) {
  const hr_scored_t *x = a, *y = b;
  if (x->score != y->score)
    return x->score < y->score ? 1 : -1;
  return (x->index > y->index) - (x->index < y->index);
}

HR_TEST(ranker_topk_matches_sort) {
  enum { N = 2000 };
  static float s[N];
  static hr_scored_t ref[N], out[N];
  long excl[300];
  unsigned seed = 7;

  for (int round = 0; round < 20; round++) {
    size_t n_ref = 0, n_excl = 0, k = (size_t)(1 + round * 37 % 150);
    for (int i = 0; i < N; i++) /* coarse values force ties */
      s[i] = (float)((seed = seed * 1103515245u + 12345u) >> 20 & 63);
    for (int i = 0; i < 300; i++)
      excl[n_excl++] = (long)((seed = seed * 1103515245u + 12345u) >> 8) % N;
    n_excl = hr_ranker_sort_unique(excl, n_excl);
    for (size_t i = 1; i < n_excl; i++)
      ASSERT_LT(excl[i - 1], excl[i]);
    for (int i = 0, e = 0; i < N; i++) {
      while ((size_t)e < n_excl && excl[e] < i)
        e++;
      if ((size_t)e < n_excl && excl[e] == i)
        continue;
      ref[n_ref++] = (hr_scored_t){i, s[i]};
    }
    qsort(ref, n_ref, sizeof(ref[0]), cmp_ref);
    size_t got = hr_ranker_topk(s, N, excl, n_excl, k, out);
    ASSERT_EQ(got, k);
    for (size_t i = 0; i < k; i++) {
      ASSERT_EQ(out[i].index, ref[i].index);
      ASSERT(out[i].score == ref[i].score);
    }
  }
  return 0;
}

HR_TEST(ranker_short_catalogue_and_nan) {
  float s[5] = {1.0f, NAN, 3.0f, 2.0f, 3.0f};
  long excl[1] = {0};
  hr_scored_t out[10];
  size_t got = hr_ranker_topk(s, 5, excl, 1, 10, out);
  ASSERT_EQ(got, 3); /* 0 excluded, 1 is NaN */
  ASSERT_EQ(out[0].index, 2); /* tie 3.0: lower index first */
  ASSERT_EQ(out[1].index, 4);
  ASSERT_EQ(out[2].index, 3);
  ASSERT_EQ(hr_ranker_topk(s, 5, NULL, 0, 0, out), 0);
  return 0;
}
