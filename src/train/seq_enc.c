/* seq_enc.c -- the trainer's side of the GRU and CNN user encoders
 * (src/model/seq_enc.c has their forward passes): initial weights and the
 * backward passes, from the gradient of the states a->xl to those of the
 * encoder's weights and of the embedded rows a->x0. */
#include "seq_enc.h"

#include "util.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

void hr__seq_enc_init(const hr_seq_dims_t *dm, hr_seq_params_t *p,
                      uint64_t *s) {
  size_t d = (size_t)dm->d;
  float sd = 1.0f / sqrtf((float)d);
  if (dm->enc == HR_SEQ_GRU) {
    for (size_t i = 0; i < d * 3 * d; i++) {
      p->gw[i] = sd * (float)hr__gauss(s);
      p->gu[i] = sd * (float)hr__gauss(s);
    }
    memset(p->gb, 0, sizeof(float) * 3 * d);
  } else if (dm->enc == HR_SEQ_CNN) {
    size_t W = (size_t)dm->win, nh = (size_t)dm->nh, nv = (size_t)dm->nv;
    size_t F = nv * d + W * nh;
    for (size_t i = 0; i < d * nh * W * (W + 1) / 2; i++)
      p->cf[i] = sd * (float)hr__gauss(s);
    memset(p->cb, 0, sizeof(float) * W * nh);
    /* vertical filters start as a plain mean of the window */
    for (size_t i = 0; i < nv * W; i++)
      p->cv[i] = 1.0f / (float)W + 0.1f * (float)hr__gauss(s);
    for (size_t i = 0; i < F * d; i++)
      p->cw[i] = (1.0f / sqrtf((float)F)) * (float)hr__gauss(s);
    memset(p->cwb, 0, sizeof(float) * d);
  }
}

size_t hr__seq_enc_work_floats(const hr_seq_dims_t *dm, size_t R) {
  size_t d = (size_t)dm->d, NH = (size_t)dm->win * (size_t)dm->nh;
  if (dm->enc == HR_SEQ_GRU) /* dG; per sequence carry, dgh, hp, back */
    return R * 3 * d + R * 6 * d;
  if (dm->enc == HR_SEQ_CNN)
    return R * ((size_t)dm->nv * d + NH) + R * NH;
  return 0;
}

/* Through time, newest step first, each sequence's state gradient
 * carried back (carry, ns x d); step t of every sequence that long at
 * once, as in the forward. dG (R x 3d) collects the gates'
 * pre-activation gradients, which then give the input weights' and the
 * rows'. */
static void gru_bwd(const hr_seq_dims_t *dm, const hr_seq_params_t *p,
                    const hr_seq_params_t *g, const hr_seq_acts_t *a,
                    const size_t *off, size_t ns, float *dx, float *work) {
  size_t d = (size_t)dm->d, R = off[ns], T = 0;
  float *dG = work, *carry = dG + R * 3 * d, *dgh = carry + ns * d;
  float *hp = dgh + ns * 3 * d, *back = hp + ns * d;
  memset(carry, 0, sizeof(float) * ns * d);
  for (size_t s = 0; s < ns; s++)
    T = off[s + 1] - off[s] > T ? off[s + 1] - off[s] : T;
  for (size_t t = T; t-- > 0;) {
    size_t m = 0;
    for (size_t s = 0; s < ns; s++) {
      size_t r = off[s] + t;
      if (r >= off[s + 1])
        continue;
      const float *z = a->gz + r * 3 * d, *rr = z + d, *n = z + 2 * d;
      const float *hun = a->gh + r * 3 * d + 2 * d;
      const float *prev = t > 0 ? a->xl + (r - 1) * d : NULL;
      float *dg = dG + r * 3 * d, *cs = carry + s * d, *dh3 = dgh + m * 3 * d;
      for (size_t c = 0; c < d; c++) {
        float dh = dx[r * d + c] + cs[c];
        float hprev = prev ? prev[c] : 0.0f;
        float dan = dh * (1.0f - z[c]) * (1.0f - n[c] * n[c]);
        float daz = dh * (hprev - n[c]) * z[c] * (1.0f - z[c]);
        float dar = dan * hun[c] * rr[c] * (1.0f - rr[c]);
        dg[c] = dh3[c] = daz;
        dg[d + c] = dh3[d + c] = dar;
        dg[2 * d + c] = dan;
        dh3[2 * d + c] = dan * rr[c];
        cs[c] = dh * z[c];
      }
      if (prev != NULL)
        memcpy(hp + m * d, prev, sizeof(float) * d);
      m++;
    }
    if (t == 0 || m == 0)
      continue;
    /* gh = h_{t-1} gu: gu's gradient, and the earlier states' */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)d, 3 * (int)d,
                (int)m, 1.0f, hp, (int)d, dgh, 3 * (int)d, 1.0f, g->gu,
                3 * (int)d);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)d,
                3 * (int)d, 1.0f, dgh, 3 * (int)d, p->gu, 3 * (int)d, 0.0f,
                back, (int)d);
    m = 0;
    for (size_t s = 0; s < ns; s++)
      if (off[s] + t < off[s + 1]) {
        for (size_t c = 0; c < d; c++)
          carry[s * d + c] += back[m * d + c];
        m++;
      }
  }
  for (size_t r = 0; r < R; r++)
    for (size_t c = 0; c < 3 * d; c++)
      g->gb[c] += dG[r * 3 * d + c];
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)d, 3 * (int)d,
              (int)R, 1.0f, a->x0, (int)d, dG, 3 * (int)d, 1.0f, g->gw,
              3 * (int)d);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)R, (int)d,
              3 * (int)d, 1.0f, dG, 3 * (int)d, p->gw, 3 * (int)d, 0.0f, dx,
              (int)d);
}

/* The linear layer, the pooling (to the row that won), the ReLU, the
 * horizontal filters' taps and the vertical filters, in that order. */
static void cnn_bwd(const hr_seq_dims_t *dm, const hr_seq_params_t *p,
                    const hr_seq_params_t *g, const hr_seq_acts_t *a,
                    const size_t *off, size_t ns, float *dx, float *work) {
  size_t d = (size_t)dm->d, R = off[ns], W = (size_t)dm->win;
  size_t nh = (size_t)dm->nh, NH = W * nh, nv = (size_t)dm->nv;
  size_t F = nv * d + NH;
  float *dz = work, *dc = work + R * F;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)R, (int)F,
              (int)d, 1.0f, dx, (int)d, p->cw, (int)d, 0.0f, dz, (int)F);
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)F, (int)d,
              (int)R, 1.0f, a->cz, (int)F, dx, (int)d, 1.0f, g->cw, (int)d);
  for (size_t r = 0; r < R; r++)
    for (size_t c = 0; c < d; c++)
      g->cwb[c] += dx[r * d + c];
  memset(dx, 0, sizeof(float) * R * d);
  memset(dc, 0, sizeof(float) * R * NH);
  for (size_t s = 0; s < ns; s++)
    for (size_t r = off[s]; r < off[s + 1]; r++) {
      const float *dzr = dz + r * F;
      for (size_t k = 0; k < nv; k++)
        for (size_t j = 0; j < W && j <= r - off[s]; j++) {
          const float *x = a->x0 + (r - j) * d, *dv = dzr + k * d;
          float wv = p->cv[k * W + j], acc = 0;
          for (size_t c = 0; c < d; c++) {
            dx[(r - j) * d + c] += wv * dv[c];
            acc += dv[c] * x[c];
          }
          g->cv[k * W + j] += acc;
        }
      for (size_t col = 0; col < NH; col++) {
        size_t from = r - (size_t)a->ca[r * NH + col];
        dc[from * NH + col] += dzr[nv * d + col];
      }
    }
  for (size_t i = 0; i < R * NH; i++)
    if (!(a->cc[i] > 0))
      dc[i] = 0;
  for (size_t r = 0; r < R; r++)
    for (size_t col = 0; col < NH; col++)
      g->cb[col] += dc[r * NH + col];
  for (size_t s = 0; s < ns; s++) {
    size_t len = off[s + 1] - off[s];
    const float *f = p->cf;
    float *gf = g->cf;
    for (size_t j = 0; j < W; j++) {
      size_t cols = (W - j) * nh;
      const float *dcj = dc + (off[s] + j) * NH + j * nh;
      if (j < len) {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)d,
                    (int)cols, (int)(len - j), 1.0f, a->x0 + off[s] * d,
                    (int)d, dcj, (int)NH, 1.0f, gf, (int)cols);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(len - j),
                    (int)d, (int)cols, 1.0f, dcj, (int)NH, f, (int)cols,
                    1.0f, dx + off[s] * d, (int)d);
      }
      f += d * cols;
      gf += d * cols;
    }
  }
}

void hr__seq_enc_bwd(const hr_seq_dims_t *dm, const hr_seq_params_t *p,
                     const hr_seq_params_t *g, const hr_seq_acts_t *a,
                     const size_t *off, size_t ns, float *dx, float *work) {
  if (dm->enc == HR_SEQ_GRU)
    gru_bwd(dm, p, g, a, off, ns, dx, work);
  else if (dm->enc == HR_SEQ_CNN)
    cnn_bwd(dm, p, g, a, off, ns, dx, work);
}
