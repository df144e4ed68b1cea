/* ease.c -- EASE (Steck 2019), the linear autoencoder: the item-item
 * matrix B minimising ||X - XB||^2 + lambda ||B||^2 with a zero diagonal,
 * in closed form from the Gram matrix of the user-item matrix X:
 * P = (X^T X + lambda I)^-1, B_ij = -P_ij / P_jj, B_jj = 0.
 *
 * Served as kind "ease" (docs/model-format.md): the item vectors are B's
 * columns (item_emb row i = B[:, i], n_items wide) and a user's vector is
 * the indicator of their distinct items, stored and live, so that the
 * score of item i is the sum of B[j][i] over the user's items j: the same
 * user-vector x item-matrix product as every other kind. */
#include "hr/log.h"
#include "hr/train.h"
#include "spec.h"
#include "util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* LAPACK (OpenBLAS carries it): Cholesky factor and inverse of a
 * symmetric positive definite matrix, column major; the trailing size_t
 * is gfortran's hidden length of the character argument. */
void dpotrf_(const char *uplo, const int *n, double *a, const int *lda,
             int *info, size_t uplo_len);
void dpotri_(const char *uplo, const int *n, double *a, const int *lda,
             int *info, size_t uplo_len);

void hr_ease_opts_default(hr_ease_opts_t *o) {
  memset(o, 0, sizeof(*o));
  o->lambda = 200.0f; /* research/training-record.md, "EASE" */
  o->decay = 0.9f;
  o->prior = 1e-4f;
}

void hr_ease_free(hr_ease_t *e) {
  free(e->items);
  free(e->prior);
  memset(e, 0, sizeof(*e));
}

int hr_ease_fit(const hr_csr_t *h, const hr_ease_opts_t *o, hr_ease_t *out,
                hr_error_t *err) {
  size_t n = h->n_items;
  double t0 = hr__now_s();
  double *G = NULL;
  int info = 0, nn = (int)n;

  memset(out, 0, sizeof(*out));
  if (n == 0 || n > HR_EASE_MAX_ITEMS)
    return hr_error_set(err, HR_EINVAL, NULL, "EASE: %zu items (at most %d: "
                        "its item matrix is n x n)", n, HR_EASE_MAX_ITEMS);
  if (!(o->lambda > 0))
    return hr_error_set(err, HR_EINVAL, NULL, "EASE: lambda must be > 0");
  G = calloc(n * n, sizeof(double));
  out->items = malloc(sizeof(float) * n * n);
  out->prior = malloc(sizeof(float) * (n + 1));
  if (G == NULL || out->items == NULL || out->prior == NULL) {
    free(G);
    hr_ease_free(out);
    return hr_error_set(err, HR_ENOMEM, NULL, "EASE: out of memory (%zu x "
                        "%zu)", n, n);
  }
  /* X^T X over each user's distinct items (the lower triangle, row major:
   * the upper one column major), then the ridge */
  for (size_t u = 0; u < h->n_users; u++)
    for (uint64_t a = h->ptr[u]; a < h->ptr[u + 1]; a++)
      for (uint64_t b = h->ptr[u]; b <= a; b++) {
        size_t i = (size_t)h->items[a], j = (size_t)h->items[b];
        if (i < j) {
          size_t t = i;
          i = j;
          j = t;
        }
        G[i * n + j] += 1.0;
      }
  for (size_t i = 0; i < n; i++)
    G[i * n + i] += o->lambda;
  dpotrf_("U", &nn, G, &nn, &info, 1);
  if (info == 0)
    dpotri_("U", &nn, G, &nn, &info, 1);
  if (info != 0) {
    free(G);
    hr_ease_free(out);
    return hr_error_set(err, HR_EINTERNAL, NULL, "EASE: the Gram matrix is "
                        "not positive definite (LAPACK info %d)", info);
  }
  /* P's lower triangle (row major) holds the inverse; item i's vector is
   * B's column i: B[j][i] = -P[j][i] / P[i][i] */
  for (size_t i = 0; i < n; i++) {
    double pii = G[i * n + i];
    for (size_t j = 0; j < n; j++) {
      double pij = i >= j ? G[i * n + j] : G[j * n + i];
      out->items[i * n + j] = i == j ? 0.0f : (float)(-pij / pii);
    }
  }
  free(G);
  out->n_items = n;
  out->n_users = h->n_users;
  hr__pop_prior(h->ptr, h->items, h->n_users, n, o->prior, out->prior);
  out->seconds = hr__now_s() - t0;
  return 0;
}

/* ---------------------------------------------------------------- writer */

/* A version's spec, its ids and its tensors. */
typedef struct {
  hr_model_spec_t s;
  hr__spec_ids_t x;
  hr_tensor_t t[6];
} ease_out_t;

static int ease_spec(const hr_dataset_t *ds, const hr_csr_t *h,
                     const hr_ease_t *e, const hr_ease_opts_t *o,
                     json_t *data, json_t *metrics, ease_out_t *w) {
  size_t ni = e->n_items;
  hr_model_spec_t *s = &w->s;
  hr__spec_ids_t *x = &w->x;
  hr_tensor_t *t = w->t;
  memset(s, 0, sizeof(*s));
  if (hr__spec_base(s, x, ds, h, ni, t + 2) != 0)
    return HR_ENOMEM;
  t[0] = (hr_tensor_t){"item_emb", HR_DT_F32, 2, {ni, ni, 1, 1}, e->items, 0};
  t[1] = (hr_tensor_t){"item_prior", HR_DT_F32, 1, {ni, 1, 1, 1}, e->prior,
                       0};
  s->kind = "ease";
  s->dim = (int)ni;
  s->tensors = t;
  s->n_tensors = 4;
  if ((s->context_prior = hr_ctx_prior_manifest(o->ctx_prior, ds, t + 4)))
    s->n_tensors = 6;
  s->params = json_pack("{so so so}", "lambda", hr__jfloat(o->lambda),
                        "decay", hr__jfloat(o->decay), "prior",
                        hr__jfloat(o->prior));
  return hr__spec_finish(s, data, metrics, o->selection, o->forced);
}

int hr_ease_write(const char *slot, const char *dir, const hr_dataset_t *ds,
                  const hr_csr_t *h, const hr_ease_t *e,
                  const hr_ease_opts_t *o, json_t *data, json_t *metrics,
                  char *path, size_t cap, hr_error_t *err) {
  ease_out_t w;
  return hr__spec_publish(&w.s, &w.x, ease_spec(ds, h, e, o, data, metrics, &w),
                          slot, dir, path, cap, err);
}
