/* ranker.c -- the top-k collector and its array form (see ranker.h). */
#include "hr/ranker.h"

#include <math.h>

/* a ranks below b: lower score, or equal score and higher index. */
static inline int worse(const hr_scored_t *a, const hr_scored_t *b) {
  return a->score < b->score || (a->score == b->score && a->index > b->index);
}

static void sift_down(hr_scored_t *h, size_t n, size_t i) {
  hr_scored_t v = h[i];
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= n)
      break;
    if (c + 1 < n && worse(&h[c + 1], &h[c]))
      c++;
    if (!worse(&h[c], &v))
      break;
    h[i] = h[c];
    i = c;
  }
  h[i] = v;
}

void hr_topk_init(hr_topk_t *t, hr_scored_t *buf, size_t k) {
  t->h = buf;
  t->n = 0;
  t->k = k;
}

int hr_topk_push(hr_topk_t *t, long index, float score) {
  hr_scored_t c = {index, score};
  if (isnan(score) || t->k == 0)
    return 0;
  if (t->n < t->k) {
    size_t i = t->n++;
    while (i > 0 && worse(&c, &t->h[(i - 1) / 2])) {
      t->h[i] = t->h[(i - 1) / 2];
      i = (i - 1) / 2;
    }
    t->h[i] = c;
    return 1;
  }
  if (!worse(&t->h[0], &c))
    return 0;
  t->h[0] = c;
  sift_down(t->h, t->n, 0);
  return 1;
}

size_t hr_topk_finish(hr_topk_t *t) {
  /* heap sort: the worst goes to the end, repeatedly */
  for (size_t end = t->n; end > 1; end--) {
    hr_scored_t w = t->h[0];
    t->h[0] = t->h[end - 1];
    t->h[end - 1] = w;
    sift_down(t->h, end - 1, 0);
  }
  return t->n;
}

size_t hr_ranker_topk(const float *scores, size_t n, const long *excl,
                      size_t n_excl, const unsigned char *mask,
                      const uint64_t *bits, size_t k, hr_scored_t *out) {
  hr_topk_t t;
  size_t e = 0;

  hr_topk_init(&t, out, k);
  if (k == 0)
    return 0;
  for (size_t i = 0; i < n; i++) {
    if (excl != NULL) {
      while (e < n_excl && excl[e] < (long)i)
        e++;
      if (e < n_excl && excl[e] == (long)i)
        continue;
    }
    if ((mask != NULL && mask[i]) ||
        (bits != NULL && ((bits[i >> 6] >> (i & 63)) & 1u)))
      continue;
    if (t.n == k && !(scores[i] > t.h[0].score))
      continue; /* cannot enter: an equal score has a higher index */
    hr_topk_push(&t, (long)i, scores[i]);
  }
  return hr_topk_finish(&t);
}
