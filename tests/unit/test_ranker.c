/* test_ranker.c -- top-k selection against a brute-force sort. */
#include "test.h"

#include <math.h>
#include <stdlib.h>

#include "hr/ranker.h"
#include "lib/models.h"

static int cmp_long(const void *a, const void *b) {
  long x = *(const long *)a, y = *(const long *)b;
  return (x > y) - (x < y);
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
    qsort(excl, n_excl, sizeof(long), cmp_long);
    for (size_t i = 1, w = 1; i <= n_excl; i++) /* unique */
      if (i == n_excl)
        n_excl = w;
      else if (excl[i] != excl[w - 1])
        excl[w++] = excl[i];
    for (int i = 0, e = 0; i < N; i++) {
      while ((size_t)e < n_excl && excl[e] < i)
        e++;
      if ((size_t)e < n_excl && excl[e] == i)
        continue;
      ref[n_ref++] = (hr_scored_t){i, s[i]};
    }
    qsort(ref, n_ref, sizeof(ref[0]), hrt_cmp_scored_desc);
    size_t got = hr_ranker_topk(s, N, excl, n_excl, NULL, NULL, k, out);
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
  size_t got = hr_ranker_topk(s, 5, excl, 1, NULL, NULL, 10, out);
  ASSERT_EQ(got, 3); /* 0 excluded, 1 is NaN */
  ASSERT_EQ(out[0].index, 2); /* tie 3.0: lower index first */
  ASSERT_EQ(out[1].index, 4);
  ASSERT_EQ(out[2].index, 3);
  ASSERT_EQ(hr_ranker_topk(s, 5, NULL, 0, NULL, NULL, 0, out), 0);
  return 0;
}

/* The collector takes items in any order (the index's candidates arrive
 * by graph distance, the norm pass by norm) and still keeps the k best
 * with ties by lower index; the byte mask and the bitmap exclude like the
 * sorted list. */
HR_TEST(ranker_collector_any_order_and_masks) {
  enum { N = 1500 };
  static float s[N];
  static hr_scored_t ref[N], out[N], buf[N];
  static unsigned char mask[N];
  static uint64_t bits[N / 64 + 1];
  static long perm[N];
  unsigned seed = 11;

  for (int round = 0; round < 10; round++) {
    size_t k = (size_t)(1 + round * 53 % 200), n_ref = 0;
    hr_topk_t t;
    for (int i = 0; i < N; i++) {
      s[i] = (float)((seed = seed * 1103515245u + 12345u) >> 20 & 31);
      mask[i] = ((seed >> 9) & 7) == 0;
      perm[i] = i;
    }
    for (int i = N - 1; i > 0; i--) { /* shuffle the offer order */
      long j = (long)((seed = seed * 1103515245u + 12345u) >> 8) % (i + 1);
      long x = perm[i];
      perm[i] = perm[j];
      perm[j] = x;
    }
    for (int i = 0; i < N; i++)
      if (!mask[i])
        ref[n_ref++] = (hr_scored_t){i, s[i]};
    qsort(ref, n_ref, sizeof(ref[0]), hrt_cmp_scored_desc);
    hr_topk_init(&t, buf, k);
    for (int i = 0; i < N; i++)
      if (!mask[perm[i]])
        hr_topk_push(&t, perm[i], s[perm[i]]);
    ASSERT(hr_topk_bar(&t) == buf[0].score);
    ASSERT_EQ(hr_topk_finish(&t), k);
    for (size_t i = 0; i < k; i++)
      ASSERT_EQ(buf[i].index, ref[i].index);
    /* the same through the array form, by mask and by bitmap */
    ASSERT_EQ(hr_ranker_topk(s, N, NULL, 0, mask, NULL, k, out), k);
    for (size_t i = 0; i < k; i++)
      ASSERT_EQ(out[i].index, ref[i].index);
    for (int i = 0; i < N; i++)
      bits[i >> 6] = mask[i] ? bits[i >> 6] | (uint64_t)1 << (i & 63)
                             : bits[i >> 6] & ~((uint64_t)1 << (i & 63));
    ASSERT_EQ(hr_ranker_topk(s, N, NULL, 0, NULL, bits, k, out), k);
    for (size_t i = 0; i < k; i++)
      ASSERT_EQ(out[i].index, ref[i].index);
  }
  return 0;
}
