/* rerank.c -- the neural ranker's input rows and forward pass (rerank.h). */
#include "hr/rerank.h"

#include "hr/nn.h"

#include <string.h>

int hr_rerank_inputs(const hr_rerank_dims_t *dm) {
  return dm->D + 3 + HR_SEQ_GAPS;
}

size_t hr_rerank_param_count(const hr_rerank_dims_t *dm) {
  size_t F = (size_t)hr_rerank_inputs(dm), a = (size_t)dm->h1,
         b = (size_t)dm->h2;
  return F * a + a + a * b + b + b + 1;
}

void hr_rerank_input(const hr_rerank_dims_t *dm, const float *u,
                     const float *v, float logpop, int qgap, float *x) {
  float ss = 0, sl = 0;
  for (int c = 0; c < dm->D; c++) {
    x[c] = u[c] * v[c];
    if (c < dm->d_seq)
      ss += x[c];
    else
      sl += x[c];
  }
  x[dm->D] = ss;
  x[dm->D + 1] = sl;
  x[dm->D + 2] = logpop;
  memset(x + dm->D + 3, 0, sizeof(float) * HR_SEQ_GAPS);
  if (qgap >= 0 && qgap < HR_SEQ_GAPS)
    x[dm->D + 3 + qgap] = 1.0f;
}

void hr_rerank_forward(const hr_rerank_dims_t *dm, const float *params,
                       const float *X, size_t n, float *h1buf, float *h2buf,
                       float *out) {
  int F = hr_rerank_inputs(dm), a = dm->h1, b = dm->h2;
  const float *W1 = params, *b1 = W1 + (size_t)F * a, *W2 = b1 + a,
              *b2 = W2 + (size_t)a * b, *w3 = b2 + b, *b3 = w3 + b;
  hr_nn_linear_fwd(X, n, F, a, W1, b1, h1buf);
  hr_nn_relu_fwd(h1buf, n * (size_t)a, h1buf);
  hr_nn_linear_fwd(h1buf, n, a, b, W2, b2, h2buf);
  hr_nn_relu_fwd(h2buf, n * (size_t)b, h2buf);
  hr_nn_linear_fwd(h2buf, n, b, 1, w3, b3, out);
}
