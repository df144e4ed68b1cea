/* test_seq.c -- the sequential network end to end: the gradient of the
 * batch loss (hr_seq_batch_grad: shared forward, then the trainer's
 * backward through every layer, embeddings, time gaps and dropout mask)
 * against central finite differences for every parameter of a small
 * network; and training that lowers the loss deterministically. */
#include "test.h"

#include "hr/train.h"

#include <math.h>
#include <stdlib.h>

static uint64_t st = 99;

static float urand(void) {
  st = st * 6364136223846793005ull + 1442695040888963407ull;
  return (float)((double)(st >> 11) * (1.0 / 9007199254740992.0)) * 2 - 1;
}

HR_TEST(seq_gradient_matches_finite_differences) {
  hr_seq_dims_t dm = {.d = 8, .L = 5, .blocks = 2, .ffn = 6, .n_items = 7,
                      .n_gap = HR_SEQ_GAPS};
  size_t np = hr_seq_param_count(&dm), worst_i = 0;
  float *w = malloc(sizeof(float) * np), *g = calloc(np, sizeof(float));
  /* two sequences: 4 and 3 rows */
  size_t off[3] = {0, 4, 7};
  int32_t inp[7] = {0, 3, 5, 2, 6, 1, 4}, tgt[7] = {3, 5, 2, 1, 1, 4, 0};
  int32_t gin[7] = {0, 3, 9, 1, 0, 5, 12}, qg[7] = {3, 9, 1, 7, 5, 12, 2};
  float mask[5 * 7 * 8]; /* embeddings + 2 per block */
  double worst = 0;
  hr_seq_work_t *wk = hr_seq_work_new(&dm, 2);

  ASSERT_NOT_NULL(w);
  ASSERT_NOT_NULL(g);
  ASSERT_NOT_NULL(wk);
  for (size_t i = 0; i < np; i++)
    w[i] = 0.5f * urand();
  ASSERT_EQ(hr_seq_mask_floats(&dm, 7), 5 * 7 * 8);
  for (int i = 0; i < 5 * 7 * 8; i++) /* dropout: some zeros, rest scaled */
    mask[i] = i % 5 == 0 ? 0.0f : 1.25f;
  double l0 = hr_seq_batch_grad(&dm, w, inp, tgt, gin, qg, off, 2, mask, g,
                                wk);
  ASSERT(l0 > 0 && isfinite(l0));
  for (size_t i = 0; i < np; i++) {
    const float h = 1e-3f;
    float keep = w[i];
    w[i] = keep + h;
    double lp = hr_seq_batch_grad(&dm, w, inp, tgt, gin, qg, off, 2, mask,
                                  NULL, wk);
    w[i] = keep - h;
    double lm = hr_seq_batch_grad(&dm, w, inp, tgt, gin, qg, off, 2, mask,
                                  NULL, wk);
    w[i] = keep;
    double num = (lp - lm) / (2.0 * h);
    double err = fabs(num - g[i]) / fmax(1e-2, fabs(num) + fabs(g[i]));
    if (err > worst) {
      worst = err;
      worst_i = i;
    }
  }
  ASSERT_MSG(worst < 1e-2, "worst relative gradient error %.4g at parameter "
             "%zu of %zu (analytic %.6g)", worst, worst_i, np, g[worst_i]);
  hr_seq_work_free(wk);
  free(w);
  free(g);
  return 0;
}
