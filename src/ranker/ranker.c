/* ranker.c -- exclusion-aware top-k selection (see ranker.h). */
#include "hr/ranker.h"

#include <math.h>
#include <stdlib.h>

static int cmp_long(const void *a, const void *b) {
  long x = *(const long *)a, y = *(const long *)b;
  return (x > y) - (x < y);
}

size_t hr_ranker_sort_unique(long *idx, size_t n) {
  size_t w = 0;
  if (n == 0)
    return 0;
  qsort(idx, n, sizeof(long), cmp_long);
  for (size_t i = 1; i < n; i++)
    if (idx[i] != idx[w])
      idx[++w] = idx[i];
  return w + 1;
}

/* a ranks below b: lower score, or equal score and higher index. */
static int worse(const hr_scored_t *a, const hr_scored_t *b) {
  return a->score < b->score || (a->score == b->score && a->index > b->index);
}

static void sift_down(hr_scored_t *h, size_t n, size_t i) {
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < n && worse(&h[l], &h[m]))
      m = l;
    if (r < n && worse(&h[r], &h[m]))
      m = r;
    if (m == i)
      return;
    hr_scored_t t = h[i];
    h[i] = h[m];
    h[m] = t;
    i = m;
  }
}

static void sift_up(hr_scored_t *h, size_t i) {
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (!worse(&h[i], &h[p]))
      return;
    hr_scored_t t = h[i];
    h[i] = h[p];
    h[p] = t;
    i = p;
  }
}

size_t hr_ranker_topk(const float *scores, size_t n, const long *excl,
                      size_t n_excl, size_t k, hr_scored_t *out) {
  size_t len = 0, e = 0;

  if (k == 0)
    return 0;
  /* out[] is a min-heap (worst at the root) while scanning. */
  for (size_t i = 0; i < n; i++) {
    while (e < n_excl && excl[e] < (long)i)
      e++;
    if (e < n_excl && excl[e] == (long)i)
      continue;
    if (isnan(scores[i]))
      continue;
    hr_scored_t c = {(long)i, scores[i]};
    if (len < k) {
      out[len] = c;
      sift_up(out, len++);
    } else if (worse(&out[0], &c)) {
      out[0] = c;
      sift_down(out, len, 0);
    }
  }
  /* Heap sort in place: repeatedly move the worst to the end. */
  for (size_t end = len; end > 1; end--) {
    hr_scored_t t = out[0];
    out[0] = out[end - 1];
    out[end - 1] = t;
    sift_down(out, end - 1, 0);
  }
  return len;
}
