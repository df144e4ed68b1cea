/* brute.c -- the exact twin of the HNSW search: every item scored with one
 * OpenBLAS sgemv, then the ranker's top-k keeps the best k (ties: lower id
 * first). Used for small catalogues and to measure recall. */
#include <cblas.h>
#include <stdlib.h>

#include "ann_internal.h"
#include "hr/ranker.h"

size_t hr_ann_brute_search(const float *x, size_t n, int dim, const float *q,
                           size_t k, const uint32_t *excl, size_t n_excl,
                           uint32_t *ids, float *scores) {
  float *sc;
  hr_scored_t *top;
  hr_topk_t t;
  size_t e = 0, got;

  if (x == NULL || q == NULL || ids == NULL || n == 0 || dim < 1 || k == 0)
    return 0;
  if (k > n)
    k = n;
  sc = malloc(n * sizeof(float));
  top = malloc(k * sizeof(*top));
  if (sc == NULL || top == NULL) {
    free(sc);
    free(top);
    return 0;
  }
  cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)n, dim, 1.0f, x, dim, q, 1,
              0.0f, sc, 1);
  hr_topk_init(&t, top, k);
  for (size_t i = 0; i < n; i++) {
    while (e < n_excl && excl[e] < i)
      e++;
    if (e < n_excl && excl[e] == i)
      continue;
    hr_topk_push(&t, (long)i, sc[i]);
  }
  got = hr_topk_finish(&t);
  for (size_t i = 0; i < got; i++) {
    ids[i] = (uint32_t)top[i].index;
    if (scores)
      scores[i] = top[i].score;
  }
  free(sc);
  free(top);
  return got;
}
