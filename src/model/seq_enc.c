/* seq_enc.c -- the recurrent and convolutional user encoders of the
 * sequential network (seq.h): alternatives to the transformer blocks,
 * each turning the embedded rows a->x0 of every sequence into states
 * a->xl, row r depending on rows off[s]..r alone. The trainer's backward
 * passes are in src/train/seq_enc.c. */
#include "hr/seq.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

const char *hr_seq_enc_name(int enc) {
  switch (enc) {
  case HR_SEQ_TRANSFORMER:
    return "transformer";
  case HR_SEQ_GRU:
    return "gru";
  case HR_SEQ_CNN:
    return "cnn";
  }
  return NULL;
}

int hr_seq_enc_parse(const char *s) {
  for (int e = HR_SEQ_TRANSFORMER; e <= HR_SEQ_CNN; e++)
    if (strcmp(s, hr_seq_enc_name(e)) == 0)
      return e;
  return -1;
}

const char *hr_seq_enc_check(const hr_seq_dims_t *dm) {
  if (hr_seq_enc_name(dm->enc) == NULL)
    return "unknown encoder";
  if (dm->enc != HR_SEQ_TRANSFORMER && dm->blocks != 0)
    return "a GRU or CNN encoder has no transformer blocks (blocks 0)";
  if (dm->enc == HR_SEQ_CNN &&
      (dm->win < 1 || dm->win > HR_SEQ_MAX_WIN || dm->win > dm->L ||
       dm->nh < 1 || dm->nh > 256 || dm->nv < 1 || dm->nv > 256))
    return "a CNN needs 1 <= window <= min(len, 16) and 1 to 256 filters of "
           "each kind";
  return NULL;
}

static float sigm(float x) { return 1.0f / (1.0f + expf(-x)); }

/* h_t = (1 - z) n + z h_{t-1}, z = sig(x Wz + h Uz + bz),
 * r = sig(x Wr + h Ur + br), n = tanh(x Wn + bn + r (h Un)); h_{-1} = 0.
 * a->gz holds the input projections, then the gates in place. Step t of
 * every sequence that long at once: their previous states gathered into
 * one matrix, times gu in one product (a->gs is the scratch). */
static void gru_fwd(const hr_seq_dims_t *dm, const hr_seq_params_t *p,
                    const size_t *off, size_t ns, hr_seq_acts_t *a) {
  size_t d = (size_t)dm->d, R = off[ns], T = 0;
  float *hp = a->gs, *hu = a->gs + ns * d;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)R, 3 * (int)d,
              (int)d, 1.0f, a->x0, (int)d, p->gw, 3 * (int)d, 0.0f, a->gz,
              3 * (int)d);
  for (size_t s = 0; s < ns; s++)
    T = off[s + 1] - off[s] > T ? off[s + 1] - off[s] : T;
  for (size_t t = 0; t < T; t++) {
    size_t m = 0;
    for (size_t s = 0; s < ns; s++) /* the states before step t */
      if (t > 0 && off[s] + t < off[s + 1])
        memcpy(hp + m++ * d, a->xl + (off[s] + t - 1) * d, sizeof(float) * d);
    if (m > 0)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m,
                  3 * (int)d, (int)d, 1.0f, hp, (int)d, p->gu, 3 * (int)d,
                  0.0f, hu, 3 * (int)d);
    m = 0;
    for (size_t s = 0; s < ns; s++) {
      size_t r = off[s] + t;
      if (r >= off[s + 1])
        continue;
      float *g = a->gz + r * 3 * d, *h = a->xl + r * d, *gh = a->gh + r * 3 * d;
      const float *prev = t > 0 ? a->xl + (r - 1) * d : NULL;
      if (prev != NULL)
        memcpy(gh, hu + m++ * 3 * d, sizeof(float) * 3 * d);
      else
        memset(gh, 0, sizeof(float) * 3 * d);
      for (size_t c = 0; c < d; c++) {
        float z = sigm(g[c] + p->gb[c] + gh[c]);
        float rr = sigm(g[d + c] + p->gb[d + c] + gh[d + c]);
        float n = tanhf(g[2 * d + c] + p->gb[2 * d + c] + rr * gh[2 * d + c]);
        g[c] = z;
        g[d + c] = rr;
        g[2 * d + c] = n;
        h[c] = (1.0f - z) * n + (prev ? z * prev[c] : 0.0f);
      }
    }
  }
}

/* Caser over the newest win rows of each row r (fewer near the start):
 * horizontal filter of height k at row t reads rows t-k+1..t (rows
 * before the sequence's first are zeros), ReLU, max over the t whose
 * reach lies within the window; vertical filter k: sum_j cv[k][j] x_{r-j};
 * then xl = [vertical | pooled] cw + cwb. */
static void cnn_fwd(const hr_seq_dims_t *dm, const hr_seq_params_t *p,
                    const size_t *off, size_t ns, hr_seq_acts_t *a) {
  size_t d = (size_t)dm->d, R = off[ns], W = (size_t)dm->win;
  size_t NH = W * (size_t)dm->nh, nv = (size_t)dm->nv, F = nv * d + NH;
  for (size_t r = 0; r < R; r++)
    memcpy(a->cc + r * NH, p->cb, sizeof(float) * NH);
  for (size_t s = 0; s < ns; s++) {
    size_t len = off[s + 1] - off[s];
    const float *f = p->cf;
    for (size_t j = 0; j < W; j++) { /* tap j: rows t-j into rows t */
      size_t cols = (W - j) * (size_t)dm->nh;
      if (j < len)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans,
                    (int)(len - j), (int)cols, (int)d, 1.0f,
                    a->x0 + off[s] * d, (int)d, f, (int)cols, 1.0f,
                    a->cc + (off[s] + j) * NH + j * (size_t)dm->nh, (int)NH);
      f += d * cols;
    }
  }
  for (size_t i = 0; i < R * NH; i++)
    a->cc[i] = a->cc[i] > 0 ? a->cc[i] : 0.0f;
  for (size_t s = 0; s < ns; s++)
    for (size_t r = off[s]; r < off[s + 1]; r++) {
      float *z = a->cz + r * F;
      memset(z, 0, sizeof(float) * nv * d);
      for (size_t k = 0; k < nv; k++)
        for (size_t j = 0; j < W && j <= r - off[s]; j++) {
          float wv = p->cv[k * W + j];
          const float *x = a->x0 + (r - j) * d;
          for (size_t c = 0; c < d; c++)
            z[k * d + c] += wv * x[c];
        }
      for (size_t col = 0; col < NH; col++) {
        size_t height = col / (size_t)dm->nh + 1, back = 0;
        float best = a->cc[r * NH + col];
        /* positions r - b whose filter reaches no further back than the
         * window's first row r - W + 1 */
        for (size_t b = 1; b + height <= W && b <= r - off[s]; b++)
          if (a->cc[(r - b) * NH + col] > best) {
            best = a->cc[(r - b) * NH + col];
            back = b;
          }
        z[nv * d + col] = best;
        a->ca[r * NH + col] = (float)back;
      }
    }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)R, (int)d,
              (int)F, 1.0f, a->cz, (int)F, p->cw, (int)d, 0.0f, a->xl,
              (int)d);
  for (size_t r = 0; r < R; r++)
    for (size_t c = 0; c < d; c++)
      a->xl[r * d + c] += p->cwb[c];
}

void hr_seq_enc_fwd(const hr_seq_dims_t *dm, const hr_seq_params_t *p,
                    const size_t *off, size_t ns, hr_seq_acts_t *a) {
  if (dm->enc == HR_SEQ_GRU)
    gru_fwd(dm, p, off, ns, a);
  else if (dm->enc == HR_SEQ_CNN)
    cnn_fwd(dm, p, off, ns, a);
}

size_t hr_seq_enc_param_count(const hr_seq_dims_t *dm) {
  size_t d = (size_t)dm->d, W = (size_t)dm->win, nh = (size_t)dm->nh;
  if (dm->enc == HR_SEQ_GRU)
    return 2 * d * 3 * d + 3 * d;
  if (dm->enc == HR_SEQ_CNN)
    return d * nh * W * (W + 1) / 2 + W * nh + (size_t)dm->nv * W +
           ((size_t)dm->nv * d + W * nh) * d + d;
  return 0;
}
