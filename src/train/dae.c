/* dae.c -- the denoising autoencoder recommender (Mult-DAE, Liang et al.
 * 2018): a user's items in, through one tanh layer, a softmax over the
 * catalogue out, trained to give the user's items back from a corrupted
 * copy (each item dropped with probability `dropout`) under the
 * multinomial likelihood.
 *
 *   x  = the user's distinct items, the k-th newest weighted decay^k,
 *        scaled to unit length (training: the kept ones)
 *   u  = tanh(b1 + x W1)           the user vector (d floats)
 *   s  = u W2^T + b2               the scores (softmax in training)
 *
 * Served as kind "dae" (docs/model-format.md): W2 is the item matrix, b2
 * the item prior, W1 and b1 compute the user vector from the stored and
 * live history at request time: the same user-vector x item-matrix
 * product as the other kinds. */
#include "hr/log.h"
#include "hr/nn.h"
#include "hr/train.h"
#include "spec.h"
#include "util.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void openblas_set_num_threads(int n);

void hr_dae_opts_default(hr_dae_opts_t *o) {
  /* chosen on loo's valid (docs/research/training-record.md) */
  static const hr_dae_opts_t def = {.dim = 200, .epochs = 100, .batch = 128,
                                    .lr = 1e-3f, .weight_decay = 0.01f,
                                    .dropout = 0.7f, .decay = 0.9f,
                                    .seed = 1, .threads = 2};
  *o = def;
}

size_t hr_dae_param_count(size_t n_items, int dim) {
  return 2 * n_items * (size_t)dim + (size_t)dim + n_items;
}

void hr_dae_bind(hr_dae_t *m, float *w) {
  size_t n = m->n_items, d = (size_t)m->dim;
  m->w = w;
  m->W1 = w;
  m->b1 = w + n * d;
  m->W2 = m->b1 + d;
  m->b2 = m->W2 + n * d;
}

void hr_dae_free(hr_dae_t *m) {
  free(m->w);
  memset(m, 0, sizeof(*m));
}

double hr_dae_loss_grad(const hr_dae_t *m, const float *X, const float *T,
                        size_t B, float *grad, float *work) {
  size_t n = m->n_items, d = (size_t)m->dim;
  float *H = work, *Z = H + B * d, *dH = Z + B * n;
  double loss = 0;

  /* H = tanh(X W1 + b1) */
  for (size_t b = 0; b < B; b++)
    memcpy(H + b * d, m->b1, sizeof(float) * d);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, (int)d,
              (int)n, 1.0f, X, (int)n, m->W1, (int)d, 1.0f, H, (int)d);
  for (size_t k = 0; k < B * d; k++)
    H[k] = tanhf(H[k]);
  /* Z = H W2^T + b2, then each row's softmax and the loss */
  for (size_t b = 0; b < B; b++)
    memcpy(Z + b * n, m->b2, sizeof(float) * n);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, (int)n,
              (int)d, 1.0f, H, (int)d, m->W2, (int)d, 1.0f, Z, (int)n);
  for (size_t b = 0; b < B; b++) {
    float *z = Z + b * n;
    const float *t = T + b * n;
    double mx = z[0], sum = 0, tsum = 0;
    for (size_t i = 1; i < n; i++)
      mx = z[i] > mx ? z[i] : mx;
    for (size_t i = 0; i < n; i++)
      sum += exp((double)z[i] - mx);
    double lse = mx + log(sum);
    for (size_t i = 0; i < n; i++) {
      tsum += t[i];
      if (t[i] != 0.0f)
        loss -= (double)t[i] * ((double)z[i] - lse);
    }
    /* dZ = (softmax * sum(t) - t) / B, in place */
    for (size_t i = 0; i < n; i++)
      z[i] = (float)((exp((double)z[i] - lse) * tsum - t[i]) / (double)B);
  }
  if (grad == NULL)
    return loss / (double)B;
  hr_dae_t g = *m;
  hr_dae_bind(&g, grad);
  /* dW2 += dZ^T H, db2 += colsum dZ, dH = dZ W2 */
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)n, (int)d,
              (int)B, 1.0f, Z, (int)n, H, (int)d, 1.0f, g.W2, (int)d);
  for (size_t b = 0; b < B; b++)
    for (size_t i = 0; i < n; i++)
      g.b2[i] += Z[b * n + i];
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, (int)d,
              (int)n, 1.0f, Z, (int)n, m->W2, (int)d, 0.0f, dH, (int)d);
  /* through tanh; dW1 += X^T dA, db1 += colsum dA */
  for (size_t k = 0; k < B * d; k++)
    dH[k] *= 1.0f - H[k] * H[k];
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)n, (int)d,
              (int)B, 1.0f, X, (int)n, dH, (int)d, 1.0f, g.W1, (int)d);
  for (size_t b = 0; b < B; b++)
    for (size_t k = 0; k < d; k++)
      g.b1[k] += dH[b * d + k];
  return loss / (double)B;
}

size_t hr_dae_work_floats(size_t n_items, int dim, size_t B) {
  return B * (size_t)dim * 2 + B * n_items;
}

/* Row b of X: the user's items newest first weighted decay^k, the ones
 * kept by `drop` (NULL: all), at unit length; row b of T: 1/|items| on
 * each of the user's items. */
static void user_rows(const hr_csr_t *h, size_t u, const hr_dae_opts_t *o,
                      uint64_t *rng, float drop, float *x, float *t) {
  uint64_t a = h->ptr[u], e = h->ptr[u + 1];
  double w = 1, norm = 0;
  if (e == a)
    return;
  for (uint64_t k = e; k-- > a; w *= o->decay) {
    int32_t i = h->items[k];
    t[i] = 1.0f / (float)(e - a);
    if (drop > 0 && hr__unif(rng) < drop)
      continue;
    x[i] = (float)w;
    norm += w * w;
  }
  for (uint64_t k = a; k < e && norm > 0; k++)
    x[h->items[k]] /= (float)sqrt(norm);
}

/* The epochs of AdamW over shuffled batches of users with a history. */
static int dae_train(const hr_csr_t *h, const hr_dae_opts_t *o,
                     hr_dae_t *m, hr_error_t *err) {
  size_t n = m->n_items, np = hr_dae_param_count(n, m->dim), B = (size_t)o->batch;
  size_t nu = 0, *order = malloc(sizeof(size_t) * (h->n_users + 1));
  float *grad = calloc(np, sizeof(float)), *m1 = calloc(np, sizeof(float));
  float *m2 = calloc(np, sizeof(float));
  float *X = malloc(sizeof(float) * B * n), *T = malloc(sizeof(float) * B * n);
  float *work = malloc(sizeof(float) * hr_dae_work_floats(n, m->dim, B));
  uint64_t rng = o->seed * 0x9E3779B97F4A7C15ull + 17;
  hr_nn_adam_t adam = {o->lr, 0.9f, 0.999f, 1e-8f, o->weight_decay};
  double t0 = hr__now_s();
  long step = 0;
  int rc = 0;

  if (!order || !grad || !m1 || !m2 || !X || !T || !work) {
    rc = hr_error_set(err, HR_ENOMEM, NULL, "DAE: out of memory");
    goto done;
  }
  for (size_t u = 0; u < h->n_users; u++)
    if (h->ptr[u + 1] > h->ptr[u])
      order[nu++] = u;
  for (int ep = 0; ep < o->epochs && nu > 0; ep++) {
    double loss = 0;
    for (size_t i = nu; i > 1; i--) {
      size_t j = (size_t)(hr__sm64(&rng) % i), t = order[i - 1];
      order[i - 1] = order[j];
      order[j] = t;
    }
    for (size_t b0 = 0; b0 < nu; b0 += B) {
      size_t nb = nu - b0 < B ? nu - b0 : B;
      memset(X, 0, sizeof(float) * nb * n);
      memset(T, 0, sizeof(float) * nb * n);
      for (size_t b = 0; b < nb; b++)
        user_rows(h, order[b0 + b], o, &rng, o->dropout, X + b * n, T + b * n);
      memset(grad, 0, sizeof(float) * np);
      loss += hr_dae_loss_grad(m, X, T, nb, grad, work) * (double)nb;
      hr_nn_adam_step(&adam, ++step, m->w, grad, m1, m2, np);
    }
    m->loss = loss / (double)nu;
    if (o->progress)
      hr_log(HR_LOG_INFO, "train_epoch",
             json_pack("{ss si si sf sf}", "model", "dae", "epoch", ep + 1,
                       "epochs", o->epochs, "loss", m->loss, "elapsed_s",
                       hr__now_s() - t0));
    double now = hr__now_s();
    if (o->deadline > 0 && ep >= 1 &&
        t0 + (now - t0) / (ep + 1) * o->epochs > o->deadline) {
      rc = hr_error_set(err, HR_ETIMEOUT, NULL, "over budget: the epochs so "
                        "far project the end of training past the deadline");
      break;
    }
  }
done:
  free(order);
  free(grad);
  free(m1);
  free(m2);
  free(X);
  free(T);
  free(work);
  return rc;
}

int hr_dae_fit(const hr_csr_t *h, const hr_dae_opts_t *o, hr_dae_t *out,
               hr_error_t *err) {
  size_t n = h->n_items, np;
  uint64_t s = o->seed * 0x2545F4914F6CDD1Dull + 3;
  double t0 = hr__now_s();
  int rc;

  memset(out, 0, sizeof(*out));
  if (o->dim < 1 || o->dim > HR_MODEL_MAX_DIM || o->batch < 1 ||
      o->epochs < 0 || !(o->decay > 0) || o->decay > 1 ||
      !(o->dropout >= 0) || o->dropout >= 1 || n == 0)
    return hr_error_set(err, HR_EINVAL, NULL, "bad DAE options");
  out->n_items = n;
  out->n_users = h->n_users;
  out->dim = o->dim;
  np = hr_dae_param_count(n, o->dim);
  float *w = calloc(np, sizeof(float));
  if (w == NULL)
    return hr_error_set(err, HR_ENOMEM, NULL, "DAE: out of memory");
  hr_dae_bind(out, w);
  /* Glorot: both matrices are n x d */
  double sd = sqrt(2.0 / ((double)n + o->dim));
  for (size_t k = 0; k < n * (size_t)o->dim; k++) {
    out->W1[k] = (float)(sd * hr__gauss(&s));
    out->W2[k] = (float)(sd * hr__gauss(&s));
  }
  openblas_set_num_threads(o->threads > 0 ? o->threads : 1);
  rc = dae_train(h, o, out, err);
  out->seconds = hr__now_s() - t0;
  if (rc != 0)
    hr_dae_free(out);
  return rc;
}

/* ---------------------------------------------------------------- writer */

int hr_dae_write(const char *slot, const char *dir, const hr_dataset_t *ds,
                 const hr_csr_t *h, const hr_dae_t *m, const hr_dae_opts_t *o,
                 json_t *data, json_t *metrics, char *path, size_t cap,
                 hr_error_t *err) {
  size_t ni = m->n_items;
  uint64_t d = (uint64_t)m->dim;
  hr__spec_ids_t x;
  hr_model_spec_t s = {0};
  hr_tensor_t t[8];
  int rc = hr__spec_base(&s, &x, ds, h, ni, t + 2);

  t[0] = (hr_tensor_t){"item_emb", HR_DT_F32, 2, {ni, d, 1, 1}, m->W2, 0};
  t[1] = (hr_tensor_t){"item_prior", HR_DT_F32, 1, {ni, 1, 1, 1}, m->b2, 0};
  t[4] = (hr_tensor_t){"dae_enc", HR_DT_F32, 2, {ni, d, 1, 1}, m->W1, 0};
  t[5] = (hr_tensor_t){"dae_enc_bias", HR_DT_F32, 1, {d, 1, 1, 1}, m->b1, 0};
  s.kind = "dae";
  s.dim = m->dim;
  s.tensors = t;
  s.n_tensors = 6;
  if ((s.context_prior = hr_ctx_prior_manifest(o->ctx_prior, ds, t + 6)))
    s.n_tensors = 8;
  s.params = json_pack("{si so si so so so sI}", "dim", m->dim, "decay",
                       hr__jfloat(o->decay), "epochs", o->epochs, "dropout",
                       hr__jfloat(o->dropout), "lr", hr__jfloat(o->lr), "wd",
                       hr__jfloat(o->weight_decay), "seed",
                       (json_int_t)o->seed);
  s.ann = o->index ? &o->ann : NULL;
  if (hr__spec_finish(&s, data, metrics, o->selection, o->forced) != 0 &&
      rc == 0)
    rc = HR_ENOMEM;
  return hr__spec_publish(&s, &x, rc, slot, dir, path, cap, err);
}
