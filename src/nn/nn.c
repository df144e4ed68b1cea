/* nn.c -- the layers of nn.h: dense products through cblas_sgemm, the
 * rest as plain loops the compiler vectorises. */
#include "hr/nn.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

/* ------------------------------------------------------------- linear */

void hr_nn_linear_fwd(const float *X, size_t n, int in, int out,
                      const float *W, const float *b, float *Y) {
  if (n == 0)
    return;
  if (b != NULL)
    for (size_t r = 0; r < n; r++)
      memcpy(Y + r * (size_t)out, b, sizeof(float) * (size_t)out);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, out, in,
              1.0f, X, in, W, out, b != NULL ? 1.0f : 0.0f, Y, out);
}

void hr_nn_linear_bwd(const float *X, size_t n, int in, int out,
                      const float *W, const float *dY, float *dX, float *dW,
                      float *db) {
  if (n == 0)
    return;
  if (dX != NULL)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, in, out,
                1.0f, dY, out, W, out, 1.0f, dX, in);
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, in, out, (int)n, 1.0f,
              X, in, dY, out, 1.0f, dW, out);
  if (db != NULL)
    for (size_t r = 0; r < n; r++)
      for (int c = 0; c < out; c++)
        db[c] += dY[r * (size_t)out + (size_t)c];
}

/* ---------------------------------------------------------- layernorm */

/* Four rows at once: each row's sums are added in the same order as one
 * row alone (the same floats, bit for bit), but the four chains of
 * dependent double adds overlap instead of waiting on each other. */
static void layernorm4(const float *X, int d, const float *g, const float *b,
                       float *Y, float *mean, float *rstd) {
  const float *x0 = X, *x1 = X + d, *x2 = X + 2 * d, *x3 = X + 3 * d;
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0, q0 = 0, q1 = 0, q2 = 0, q3 = 0;
  float mu[4], rs[4];
  for (int c = 0; c < d; c++) {
    s0 += x0[c];
    s1 += x1[c];
    s2 += x2[c];
    s3 += x3[c];
  }
  mu[0] = (float)(s0 / d);
  mu[1] = (float)(s1 / d);
  mu[2] = (float)(s2 / d);
  mu[3] = (float)(s3 / d);
  for (int c = 0; c < d; c++) {
    q0 += (double)(x0[c] - mu[0]) * (x0[c] - mu[0]);
    q1 += (double)(x1[c] - mu[1]) * (x1[c] - mu[1]);
    q2 += (double)(x2[c] - mu[2]) * (x2[c] - mu[2]);
    q3 += (double)(x3[c] - mu[3]) * (x3[c] - mu[3]);
  }
  rs[0] = (float)(1.0 / sqrt(q0 / d + HR_NN_LN_EPS));
  rs[1] = (float)(1.0 / sqrt(q1 / d + HR_NN_LN_EPS));
  rs[2] = (float)(1.0 / sqrt(q2 / d + HR_NN_LN_EPS));
  rs[3] = (float)(1.0 / sqrt(q3 / d + HR_NN_LN_EPS));
  for (int k = 0; k < 4; k++) {
    /* element-wise, vectorised: the rows do not overlap Y here */
    const float *restrict x = X + (size_t)k * (size_t)d;
    const float *restrict gg = g, *restrict bb = b;
    float *restrict y = Y + (size_t)k * (size_t)d;
    float m = mu[k], r = rs[k];
    for (int c = 0; c < d; c++)
      y[c] = (x[c] - m) * r * gg[c] + bb[c];
    if (mean != NULL)
      mean[k] = mu[k];
    if (rstd != NULL)
      rstd[k] = rs[k];
  }
}

void hr_nn_layernorm_fwd(const float *X, size_t n, int d, const float *g,
                         const float *b, float *Y, float *mean, float *rstd) {
  size_t r = 0;
  /* Y may alias X: a group reads its four rows before writing them */
  for (; r + 4 <= n && Y != X; r += 4)
    layernorm4(X + r * (size_t)d, d, g, b, Y + r * (size_t)d,
               mean ? mean + r : NULL, rstd ? rstd + r : NULL);
  for (; r < n; r++) {
    const float *x = X + r * (size_t)d;
    float *y = Y + r * (size_t)d;
    double s = 0, q = 0;
    float mu, rs;
    for (int c = 0; c < d; c++)
      s += x[c];
    mu = (float)(s / d);
    for (int c = 0; c < d; c++)
      q += (double)(x[c] - mu) * (x[c] - mu);
    rs = (float)(1.0 / sqrt(q / d + HR_NN_LN_EPS));
    for (int c = 0; c < d; c++)
      y[c] = (x[c] - mu) * rs * g[c] + b[c];
    if (mean != NULL)
      mean[r] = mu;
    if (rstd != NULL)
      rstd[r] = rs;
  }
}

void hr_nn_layernorm_bwd(const float *X, size_t n, int d, const float *g,
                         const float *mean, const float *rstd, const float *dY,
                         float *dX, float *dg, float *db) {
  for (size_t r = 0; r < n; r++) {
    const float *x = X + r * (size_t)d, *dy = dY + r * (size_t)d;
    float *dx = dX + r * (size_t)d;
    float mu = mean[r], rs = rstd[r];
    double s1 = 0, s2 = 0;
    for (int c = 0; c < d; c++) {
      float xh = (x[c] - mu) * rs, dxh = dy[c] * g[c];
      dg[c] += dy[c] * xh;
      db[c] += dy[c];
      s1 += dxh;
      s2 += (double)dxh * xh;
    }
    float m1 = (float)(s1 / d), m2 = (float)(s2 / d);
    for (int c = 0; c < d; c++) {
      float xh = (x[c] - mu) * rs;
      dx[c] += rs * (dy[c] * g[c] - m1 - xh * m2);
    }
  }
}

/* --------------------------------------------------------------- relu */

void hr_nn_relu_fwd(const float *X, size_t n, float *Y) {
  for (size_t i = 0; i < n; i++)
    Y[i] = X[i] > 0 ? X[i] : 0;
}

void hr_nn_relu_bwd(const float *Y, size_t n, const float *dY, float *dX) {
  for (size_t i = 0; i < n; i++)
    if (Y[i] > 0)
      dX[i] += dY[i];
}

/* ---------------------------------------------------------- attention */

void hr_nn_attn_fwd(const float *Q, const float *K, const float *V, int L,
                    int d, int ld, int first, float scale, float *P,
                    float *O) {
  if (L <= 0)
    return;
  if (first < 0)
    first = 0;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, L, L, d, scale, Q, ld,
              K, ld, 0.0f, P, L);
  for (int i = 0; i < L; i++) {
    float *p = P + (size_t)i * (size_t)L, mx = -INFINITY;
    double sum = 0;
    if (i < first) {
      memset(p, 0, sizeof(float) * (size_t)L);
      continue;
    }
    for (int j = first; j <= i; j++)
      mx = p[j] > mx ? p[j] : mx;
    for (int j = first; j <= i; j++) {
      p[j] = expf(p[j] - mx);
      sum += p[j];
    }
    for (int j = first; j <= i; j++)
      p[j] = (float)(p[j] / sum);
    for (int j = 0; j < first; j++)
      p[j] = 0;
    for (int j = i + 1; j < L; j++)
      p[j] = 0;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, L, d, L, 1.0f, P, L,
              V, ld, 0.0f, O, ld);
}

void hr_nn_attn_bwd(const float *Q, const float *K, const float *V,
                    const float *P, int L, int d, int ld, int first,
                    float scale, const float *dO, float *dQ, float *dK,
                    float *dV, float *work) {
  if (L <= 0)
    return;
  if (first < 0)
    first = 0;
  /* dV += P^T dO */
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, L, d, L, 1.0f, P, L,
              dO, ld, 1.0f, dV, ld);
  /* dP = dO V^T, then dS = P * (dP - rowsum(P * dP)) in place */
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, L, L, d, 1.0f, dO, ld,
              V, ld, 0.0f, work, L);
  for (int i = 0; i < L; i++) {
    const float *p = P + (size_t)i * (size_t)L;
    float *w = work + (size_t)i * (size_t)L;
    double dot = 0;
    if (i < first) {
      memset(w, 0, sizeof(float) * (size_t)L);
      continue;
    }
    for (int j = first; j <= i; j++)
      dot += (double)p[j] * w[j];
    for (int j = 0; j < L; j++)
      w[j] = (j >= first && j <= i) ? p[j] * (w[j] - (float)dot) : 0.0f;
  }
  /* dQ += scale dS K, dK += scale dS^T Q */
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, L, d, L, scale, work,
              L, K, ld, 1.0f, dQ, ld);
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, L, d, L, scale, work,
              L, Q, ld, 1.0f, dK, ld);
}

/* ------------------------------------------------------------- losses */

double hr_nn_softmax_xent(float *logits, size_t n, int C,
                          const int32_t *target, float scale, float *dlogits) {
  double loss = 0;
  for (size_t r = 0; r < n; r++) {
    float *z = logits + r * (size_t)C, mx = -INFINITY;
    float *dz = dlogits ? dlogits + r * (size_t)C : NULL;
    double sum = 0;
    if (target[r] < 0 || target[r] >= C) {
      if (dz != NULL)
        memset(dz, 0, sizeof(float) * (size_t)C);
      continue;
    }
    for (int c = 0; c < C; c++)
      mx = z[c] > mx ? z[c] : mx;
    for (int c = 0; c < C; c++)
      sum += exp((double)(z[c] - mx));
    loss += log(sum) - (double)(z[target[r]] - mx);
    if (dz != NULL) {
      float inv = (float)(1.0 / sum);
      for (int c = 0; c < C; c++)
        dz[c] = expf(z[c] - mx) * inv * scale;
      dz[target[r]] -= scale;
    }
  }
  return loss;
}

/* ---------------------------------------------------------- optimiser */

void hr_nn_adam_step(const hr_nn_adam_t *o, long t, float *w, const float *g,
                     float *m, float *v, size_t n) {
  float c1 = 1.0f - powf(o->beta1, (float)t), c2 = 1.0f - powf(o->beta2,
                                                               (float)t);
  float step = o->lr / c1, rc2 = 1.0f / sqrtf(c2), decay = o->lr *
                                                           o->weight_decay;
  for (size_t i = 0; i < n; i++) {
    m[i] = o->beta1 * m[i] + (1.0f - o->beta1) * g[i];
    v[i] = o->beta2 * v[i] + (1.0f - o->beta2) * g[i] * g[i];
    w[i] -= step * m[i] / (sqrtf(v[i]) * rc2 + o->eps) + decay * w[i];
  }
}

double hr_nn_sqnorm(const float *x, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; i++)
    s += (double)x[i] * x[i];
  return s;
}
