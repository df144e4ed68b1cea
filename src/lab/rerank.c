/* rerank.c -- training the neural ranker (rerank.h): listwise softmax over
 * each query's candidates (the retrieval's top N, the true next item among
 * them), Adam, mini-batches of queries, deterministic for a seed. */
#include "hr/rerank.h"
#include "hr/nn.h"
#include "hr/lab.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../train/util.h"

void hr_rerank_opts_default(hr_rerank_opts_t *o) {
  memset(o, 0, sizeof(*o));
  o->dims.h1 = 64;
  o->dims.h2 = 32;
  o->n_cand = 50;
  o->epochs = 20;
  o->batch = 32;
  o->lr = 1e-3f;
  o->seed = 1;
}

int hr_rerank_fit(const hr_rerank_opts_t *o, const float *X,
                  const int32_t *pos, size_t nq, float **params_out,
                  double *loss_out, hr_error_t *err) {
  const hr_rerank_dims_t *dm = &o->dims;
  int F = hr_rerank_inputs(dm), a = dm->h1, b = dm->h2, N = o->n_cand;
  size_t np = hr_rerank_param_count(dm), B = (size_t)o->batch, maxn = B * N;
  float *w = calloc(np, sizeof(float)), *g = malloc(sizeof(float) * np),
        *m1 = calloc(np, sizeof(float)), *m2 = calloc(np, sizeof(float));
  float *h1 = malloc(sizeof(float) * maxn * a),
        *h2 = malloc(sizeof(float) * maxn * b),
        *s = malloc(sizeof(float) * maxn), *dh1 = malloc(sizeof(float) * maxn * a),
        *dh2 = malloc(sizeof(float) * maxn * b), *Xb = malloc(sizeof(float) * maxn * F);
  size_t *order = malloc(sizeof(size_t) * (nq + 1));
  int32_t *tg = malloc(sizeof(int32_t) * B);
  uint64_t rng = o->seed * 0x9E3779B97F4A7C15ull + 17;
  hr_nn_adam_t adam = {o->lr, 0.9f, 0.999f, 1e-8f, 0.0f};
  long step = 0;
  double loss = 0;

  *params_out = NULL;
  if (!w || !g || !m1 || !m2 || !h1 || !h2 || !s || !dh1 || !dh2 || !Xb ||
      !order || !tg) {
    free(w);
    w = NULL;
    hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
    goto out;
  }
  { /* He initialisation; the output layer starts small */
    float *W1 = w, *W2 = W1 + (size_t)F * a + a, *w3 = W2 + (size_t)a * b + b;
    for (size_t i = 0; i < (size_t)F * a; i++)
      W1[i] = (float)(sqrt(2.0 / F) * hr__gauss(&rng));
    for (size_t i = 0; i < (size_t)a * b; i++)
      W2[i] = (float)(sqrt(2.0 / a) * hr__gauss(&rng));
    for (int i = 0; i < b; i++)
      w3[i] = (float)(0.1 * sqrt(1.0 / b) * hr__gauss(&rng));
  }
  for (size_t q = 0; q < nq; q++)
    order[q] = q;
  for (int ep = 0; ep < o->epochs; ep++) {
    loss = 0;
    for (size_t i = nq; i > 1; i--) {
      size_t j = (size_t)(hr__sm64(&rng) % i), t = order[i - 1];
      order[i - 1] = order[j];
      order[j] = t;
    }
    for (size_t q0 = 0; q0 < nq; q0 += B) {
      size_t nb = nq - q0 < B ? nq - q0 : B, n = nb * (size_t)N;
      float *W1 = w, *b1 = W1 + (size_t)F * a, *W2 = b1 + a,
            *b2 = W2 + (size_t)a * b, *w3 = b2 + b;
      float *gW1 = g, *gb1 = gW1 + (size_t)F * a, *gW2 = gb1 + a,
            *gb2 = gW2 + (size_t)a * b, *gw3 = gb2 + b, *gb3 = gw3 + b;
      for (size_t k = 0; k < nb; k++) {
        memcpy(Xb + k * N * F, X + order[q0 + k] * N * F,
               sizeof(float) * (size_t)N * F);
        tg[k] = pos[order[q0 + k]];
      }
      hr_rerank_forward(dm, w, Xb, n, h1, h2, s);
      loss += hr_nn_softmax_xent(s, nb, N, tg, 1.0f / (float)nb, s);
      memset(g, 0, sizeof(float) * np);
      memset(dh2, 0, sizeof(float) * n * b);
      memset(dh1, 0, sizeof(float) * n * a);
      hr_nn_linear_bwd(h2, n, b, 1, w3, s, dh2, gw3, gb3);
      for (size_t i = 0; i < n * (size_t)b; i++) /* relu: output > 0 */
        if (!(h2[i] > 0))
          dh2[i] = 0;
      hr_nn_linear_bwd(h1, n, a, b, W2, dh2, dh1, gW2, gb2);
      for (size_t i = 0; i < n * (size_t)a; i++)
        if (!(h1[i] > 0))
          dh1[i] = 0;
      hr_nn_linear_bwd(Xb, n, F, a, W1, dh1, NULL, gW1, gb1);
      hr_nn_adam_step(&adam, ++step, w, g, m1, m2, np);
    }
    loss /= (double)(nq ? nq : 1);
  }
out:
  if (loss_out)
    *loss_out = loss;
  *params_out = w;
  free(g);
  free(m1);
  free(m2);
  free(h1);
  free(h2);
  free(s);
  free(dh1);
  free(dh2);
  free(Xb);
  free(order);
  free(tg);
  return w ? 0 : HR_ENOMEM;
}
