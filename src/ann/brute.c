/* brute.c -- the exact twin of the HNSW search: every item scored with one
 * OpenBLAS sgemv, then a bounded min-heap keeps the best k (ties: lower id
 * first). Used for small catalogues and to measure recall. */
#include <cblas.h>
#include <stdlib.h>

#include "ann_internal.h"

typedef struct {
  float s;
  uint32_t id;
} item_t;

/* a ranks below b: lower score, or equal score and higher id */
static inline int worse(item_t a, item_t b) {
  return a.s < b.s || (a.s == b.s && a.id > b.id);
}

static void sift_down(item_t *h, size_t n, size_t i) {
  item_t v = h[i];
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= n)
      break;
    if (c + 1 < n && worse(h[c + 1], h[c]))
      c++;
    if (!worse(h[c], v))
      break;
    h[i] = h[c];
    i = c;
  }
  h[i] = v;
}

static int cmp_best_first(const void *x, const void *y) {
  item_t a = *(const item_t *)x, b = *(const item_t *)y;
  return worse(a, b) ? 1 : worse(b, a) ? -1 : 0;
}

size_t hr_ann_brute_search(const float *x, size_t n, int dim, const float *q,
                           size_t k, const uint32_t *excl, size_t n_excl,
                           uint32_t *ids, float *scores) {
  float *sc;
  item_t *h;
  size_t nh = 0, e = 0;

  if (x == NULL || q == NULL || ids == NULL || n == 0 || dim < 1 || k == 0)
    return 0;
  sc = malloc(n * sizeof(float));
  h = malloc((k < n ? k : n) * sizeof(item_t));
  if (sc == NULL || h == NULL) {
    free(sc);
    free(h);
    return 0;
  }
  cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)n, dim, 1.0f, x, dim, q, 1,
              0.0f, sc, 1);
  for (size_t i = 0; i < n; i++) {
    item_t it = {sc[i], (uint32_t)i};
    while (e < n_excl && excl[e] < i)
      e++;
    if (e < n_excl && excl[e] == i)
      continue;
    if (it.s != it.s) /* NaN never ranks */
      continue;
    if (nh < k) {
      size_t j = nh++;
      while (j > 0 && worse(it, h[(j - 1) / 2])) {
        h[j] = h[(j - 1) / 2];
        j = (j - 1) / 2;
      }
      h[j] = it;
    } else if (worse(h[0], it)) {
      h[0] = it;
      sift_down(h, nh, 0);
    }
  }
  qsort(h, nh, sizeof(item_t), cmp_best_first);
  for (size_t i = 0; i < nh; i++) {
    ids[i] = h[i].id;
    if (scores)
      scores[i] = h[i].s;
  }
  free(sc);
  free(h);
  return nh;
}
