/* test_seq.c -- the sequential network end to end: the gradient of the
 * batch loss (hr_seq_batch_grad: shared forward, then the trainer's
 * backward through every layer, embeddings, time gaps and dropout mask)
 * against central finite differences for every parameter of a small
 * network; and training that lowers the loss deterministically. */
#include "test.h"

#include "hr/train.h"

#include <math.h>
#include <string.h>
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

/* Users walk a cycle of 6 items (each from their own starting point):
 * the next item is always the successor, which training must learn. Two
 * fits with the same seed give identical weights. */
HR_TEST(seq_fit_learns_a_cycle_deterministically) {
  enum { NU = 24, NI = 6, LEN = 9 };
  hr_csr_t h = {0};
  hr_seq_opts_t o;
  hr_seq_fit_t a = {0}, b = {0};
  hr_error_t err = {0};
  float u[16], buf[4096];
  int ok = 0;

  h.n_users = NU;
  h.n_items = NI;
  h.ptr = calloc(NU + 1, sizeof(uint64_t));
  h.items = malloc(sizeof(int32_t) * NU * LEN);
  h.ts = malloc(sizeof(int64_t) * NU * LEN);
  ASSERT(h.ptr && h.items && h.ts);
  for (int us = 0; us < NU; us++) {
    for (int t = 0; t < LEN; t++) {
      h.items[us * LEN + t] = (us + t) % NI;
      h.ts[us * LEN + t] = 1000000 + 600 * t;
    }
    h.ptr[us + 1] = (uint64_t)(us + 1) * LEN;
  }
  hr_seq_opts_default(&o);
  o.dims.d = 16;
  o.dims.L = 8;
  o.dims.ffn = 16;
  o.epochs = 60;
  o.batch = 8;
  o.lr = 0.01f;
  o.dropout = 0;
  o.threads = 1;
  ASSERT_EQ(hr_seq_fit(&h, &o, &a, &err), 0);
  ASSERT_EQ(hr_seq_fit(&h, &o, &b, &err), 0);
  ASSERT(memcmp(a.w, b.w, sizeof(float) * hr_seq_param_count(&a.dims)) == 0);
  ASSERT_MSG(a.loss < 0.5, "loss %.3f after training (log 6 = 1.79 at "
             "chance)", a.loss);
  /* After ... 2, 3, 4 the best item is 5. */
  for (int start = 0; start < NI; start++) {
    int32_t hist[4];
    int64_t ts[4];
    for (int t = 0; t < 4; t++) {
      hist[t] = (start + t) % NI;
      ts[t] = 1000000 + 600 * t;
    }
    ASSERT(hr_seq_acts_floats(&a.dims, 8, (int[]){8}, 1) <= 4096);
    hr_seq_user_vector(&a, hist, ts, 4, ts[3] + 600, buf, u);
    int best = 0;
    float bs = -1e30f;
    for (int i = 0; i < NI; i++) {
      float sc = 0;
      for (int c = 0; c < 16; c++)
        sc += u[c] * a.p.item[i * 16 + c];
      if (sc > bs) {
        bs = sc;
        best = i;
      }
    }
    ok += best == (start + 4) % NI;
  }
  ASSERT_EQ(ok, NI);
  hr_seq_fit_free(&a);
  hr_seq_fit_free(&b);
  hr_csr_free(&h);
  return 0;
}
