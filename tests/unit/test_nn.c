/* test_nn.c -- every backward function of nn.h against central finite
 * differences of a scalar loss L = sum(R * Y) (R fixed random, so dY = R),
 * computed in float with a step of 1e-2 and compared with a relative
 * tolerance; plus softmax cross-entropy and AdamW against hand values. */
#include "test.h"

#include "hr/nn.h"

#include <math.h>
#include <stdlib.h>

static uint64_t rs = 12345;

static float frand(void) { /* uniform in [-1, 1) */
  rs = rs * 6364136223846793005ull + 1442695040888963407ull;
  return (float)((double)(rs >> 11) * (1.0 / 9007199254740992.0)) * 2 - 1;
}

static float *rnd(size_t n) {
  float *x = malloc(sizeof(float) * (n ? n : 1));
  for (size_t i = 0; x && i < n; i++)
    x[i] = frand();
  return x;
}

static float *zeros(size_t n) { return calloc(n ? n : 1, sizeof(float)); }

static double dotf(const float *a, const float *b, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; i++)
    s += (double)a[i] * b[i];
  return s;
}

/* Compare analytic gradient g of x (n entries) with the finite difference
 * of loss(). Returns the worst relative error. */
typedef double (*loss_fn)(void *ctx);

static double check(float *x, const float *g, size_t n, loss_fn f, void *ctx) {
  double worst = 0;
  const float h = 1e-2f;
  for (size_t i = 0; i < n; i++) {
    float keep = x[i];
    x[i] = keep + h;
    double lp = f(ctx);
    x[i] = keep - h;
    double lm = f(ctx);
    x[i] = keep;
    double num = (lp - lm) / (2.0 * h);
    double err = fabs(num - g[i]) / fmax(1.0, fabs(num) + fabs(g[i]));
    if (err > worst)
      worst = err;
  }
  return worst;
}

/* ------------------------------------------------------------- linear */

typedef struct {
  float *X, *W, *b, *Y, *R;
  size_t n;
  int in, out;
} lin_t;

static double lin_loss(void *p) {
  lin_t *c = p;
  hr_nn_linear_fwd(c->X, c->n, c->in, c->out, c->W, c->b, c->Y);
  return dotf(c->Y, c->R, c->n * (size_t)c->out);
}

HR_TEST(nn_linear_gradients) {
  lin_t c = {.n = 5, .in = 7, .out = 3};
  c.X = rnd(35);
  c.W = rnd(21);
  c.b = rnd(3);
  c.Y = zeros(15);
  c.R = rnd(15);
  float *dX = zeros(35), *dW = zeros(21), *db = zeros(3);
  lin_loss(&c);
  hr_nn_linear_bwd(c.X, c.n, c.in, c.out, c.W, c.R, dX, dW, db);
  ASSERT_MSG(check(c.X, dX, 35, lin_loss, &c) < 1e-3, "dX");
  ASSERT_MSG(check(c.W, dW, 21, lin_loss, &c) < 1e-3, "dW");
  ASSERT_MSG(check(c.b, db, 3, lin_loss, &c) < 1e-3, "db");
  /* Gradients accumulate: a second call doubles them. */
  float w0 = dW[4];
  hr_nn_linear_bwd(c.X, c.n, c.in, c.out, c.W, c.R, NULL, dW, NULL);
  ASSERT_DBL_NEAR(dW[4], 2 * w0, 1e-5);
  free(c.X), free(c.W), free(c.b), free(c.Y), free(c.R);
  free(dX), free(dW), free(db);
  return 0;
}

/* ---------------------------------------------------------- layernorm */

typedef struct {
  float *X, *g, *b, *Y, *R, *mu, *rstd;
  size_t n;
  int d;
} ln_t;

static double ln_loss(void *p) {
  ln_t *c = p;
  hr_nn_layernorm_fwd(c->X, c->n, c->d, c->g, c->b, c->Y, c->mu, c->rstd);
  return dotf(c->Y, c->R, c->n * (size_t)c->d);
}

HR_TEST(nn_layernorm_gradients) {
  ln_t c = {.n = 4, .d = 8};
  c.X = rnd(32);
  c.g = rnd(8);
  c.b = rnd(8);
  c.Y = zeros(32);
  c.R = rnd(32);
  c.mu = zeros(4);
  c.rstd = zeros(4);
  float *dX = zeros(32), *dg = zeros(8), *db = zeros(8);
  ln_loss(&c);
  /* each row: mean 0 and variance 1 before the affine part */
  hr_nn_layernorm_bwd(c.X, c.n, c.d, c.g, c.mu, c.rstd, c.R, dX, dg, db);
  ASSERT_MSG(check(c.X, dX, 32, ln_loss, &c) < 2e-3, "dX");
  ASSERT_MSG(check(c.g, dg, 8, ln_loss, &c) < 1e-3, "dg");
  ASSERT_MSG(check(c.b, db, 8, ln_loss, &c) < 1e-3, "db");
  free(c.X), free(c.g), free(c.b), free(c.Y), free(c.R), free(c.mu);
  free(c.rstd), free(dX), free(dg), free(db);
  return 0;
}

/* --------------------------------------------------------------- relu */

typedef struct {
  float *X, *Y, *R;
  size_t n;
} relu_t;

static double relu_loss(void *p) {
  relu_t *c = p;
  hr_nn_relu_fwd(c->X, c->n, c->Y);
  return dotf(c->Y, c->R, c->n);
}

HR_TEST(nn_relu_gradients) {
  relu_t c = {.n = 40};
  c.X = rnd(40);
  for (size_t i = 0; i < 40; i++) /* keep away from the kink */
    if (fabsf(c.X[i]) < 0.05f)
      c.X[i] = 0.5f;
  c.Y = zeros(40);
  c.R = rnd(40);
  float *dX = zeros(40);
  relu_loss(&c);
  hr_nn_relu_bwd(c.Y, c.n, c.R, dX);
  ASSERT_MSG(check(c.X, dX, 40, relu_loss, &c) < 1e-3, "dX");
  free(c.X), free(c.Y), free(c.R), free(dX);
  return 0;
}

/* ---------------------------------------------------------- attention */

typedef struct {
  float *Q, *K, *V, *P, *O, *R;
  int L, d, ld, first;
  float scale;
} att_t;

static double att_loss(void *p) {
  att_t *c = p;
  hr_nn_attn_fwd(c->Q, c->K, c->V, c->L, c->d, c->ld, c->first, c->scale,
                 c->P, c->O);
  /* only this head's columns of O count */
  double s = 0;
  for (int i = 0; i < c->L; i++)
    for (int j = 0; j < c->d; j++)
      s += (double)c->O[i * c->ld + j] * c->R[i * c->ld + j];
  return s;
}

HR_TEST(nn_attention_gradients) {
  /* one head of width 4 inside rows of 6 floats, 2 rows of left padding */
  att_t c = {.L = 6, .d = 4, .ld = 6, .first = 2};
  size_t m = 36;
  c.scale = 0.5f;
  c.Q = rnd(m);
  c.K = rnd(m);
  c.V = rnd(m);
  c.O = zeros(m);
  c.P = zeros(36);
  c.R = rnd(m);
  float *dQ = zeros(m), *dK = zeros(m), *dV = zeros(m), *w = zeros(36);
  att_loss(&c);
  /* causal and padded: nothing above the diagonal or left of `first`, and
   * each live row sums to 1 */
  for (int i = 0; i < c.L; i++) {
    double s = 0;
    for (int j = 0; j < c.L; j++) {
      if (j > i || j < c.first || i < c.first)
        ASSERT(c.P[i * c.L + j] == 0.0f);
      s += c.P[i * c.L + j];
    }
    ASSERT_DBL_NEAR(s, i < c.first ? 0.0 : 1.0, 1e-5);
  }
  hr_nn_attn_bwd(c.Q, c.K, c.V, c.P, c.L, c.d, c.ld, c.first, c.scale, c.R,
                 dQ, dK, dV, w);
  ASSERT_MSG(check(c.Q, dQ, m, att_loss, &c) < 2e-3, "dQ");
  ASSERT_MSG(check(c.K, dK, m, att_loss, &c) < 2e-3, "dK");
  ASSERT_MSG(check(c.V, dV, m, att_loss, &c) < 2e-3, "dV");
  /* columns outside the head get no gradient */
  for (int i = 0; i < c.L; i++)
    for (int j = c.d; j < c.ld; j++)
      ASSERT(dQ[i * c.ld + j] == 0.0f && dV[i * c.ld + j] == 0.0f);
  free(c.Q), free(c.K), free(c.V), free(c.O), free(c.P), free(c.R);
  free(dQ), free(dK), free(dV), free(w);
  return 0;
}

/* ------------------------------------------------------------- losses */

typedef struct {
  float *Z, *tmp;
  int32_t *t;
  size_t n;
  int C;
} xent_t;

static double xent_loss(void *p) {
  xent_t *c = p;
  memcpy(c->tmp, c->Z, sizeof(float) * c->n * (size_t)c->C);
  return hr_nn_softmax_xent(c->tmp, c->n, c->C, c->t, 1.0f, NULL);
}

HR_TEST(nn_softmax_xent_gradients_and_values) {
  int32_t t[3] = {2, -1, 0};
  xent_t c = {.n = 3, .C = 5, .t = t};
  c.Z = rnd(15);
  c.tmp = zeros(15);
  float *dZ = zeros(15);
  /* hand value: uniform logits over 5 classes cost log 5 per row */
  float u[5] = {3, 3, 3, 3, 3};
  int32_t t0 = 4;
  ASSERT_DBL_NEAR(hr_nn_softmax_xent(u, 1, 5, &t0, 1.0f, NULL), log(5.0),
                  1e-6);
  memcpy(c.tmp, c.Z, sizeof(float) * 15);
  hr_nn_softmax_xent(c.tmp, 3, 5, t, 1.0f, dZ);
  for (int k = 0; k < 5; k++) /* the skipped row has no gradient */
    ASSERT(dZ[5 + k] == 0.0f);
  ASSERT_MSG(check(c.Z, dZ, 15, xent_loss, &c) < 1e-3, "dZ");
  /* in place: logits == dlogits */
  memcpy(c.tmp, c.Z, sizeof(float) * 15);
  double l1 = hr_nn_softmax_xent(c.tmp, 3, 5, t, 1.0f, c.tmp);
  ASSERT_DBL_NEAR(l1, xent_loss(&c), 1e-6);
  memcpy(c.tmp, c.Z, sizeof(float) * 15);
  hr_nn_softmax_xent(c.tmp, 3, 5, t, 1.0f, c.tmp);
  for (int k = 0; k < 15; k++)
    ASSERT_DBL_NEAR(c.tmp[k], dZ[k], 1e-6);
  free(c.Z), free(c.tmp), free(dZ);
  return 0;
}

/* ---------------------------------------------------------- optimiser */

HR_TEST(nn_adam_matches_hand_computation) {
  hr_nn_adam_t o = {.lr = 0.1f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
                    .weight_decay = 0.01f};
  float w[2] = {1.0f, -2.0f}, g[2] = {0.5f, -0.25f}, m[2] = {0}, v[2] = {0};
  /* step 1: mhat = g, vhat = g^2, so the move is lr * sign(g) (+ decay) */
  hr_nn_adam_step(&o, 1, w, g, m, v, 2);
  ASSERT_DBL_NEAR(w[0], 1.0 - 0.1 - 0.1 * 0.01 * 1.0, 1e-5);
  ASSERT_DBL_NEAR(w[1], -2.0 + 0.1 - 0.1 * 0.01 * -2.0, 1e-5);
  ASSERT_DBL_NEAR(m[0], 0.05, 1e-7);
  ASSERT_DBL_NEAR(v[1], 0.001 * 0.0625, 1e-9);
  ASSERT_DBL_NEAR(hr_nn_sqnorm(g, 2), 0.3125, 1e-9);
  return 0;
}
