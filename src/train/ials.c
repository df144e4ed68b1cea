/* ials.c -- implicit ALS (Hu, Koren, Volinsky 2008) with recency-weighted
 * confidences, and the model writer (see train.h).
 *
 * Each half-step solves every row exactly with hr_ials_solve (Cholesky),
 * the kernel the server's fold-in uses. Rows are split across pthreads in
 * fixed interleaved chunks; a row's result does not depend on which thread
 * solved it, so the output is identical for any thread count. OpenBLAS is
 * held to one thread so its own threads do not fight ours. */
#include "hr/train.h"
#include "spec.h"
#include "util.h"
#include "hr/log.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CHUNK 16

void hr_ials_opts_default(hr_ials_opts_t *o) {
  memset(o, 0, sizeof(*o));
  /* Chosen on the loo validation split (docs/training.md). */
  o->factors = 64;
  o->iters = 12;
  o->threads = 2;
  o->seed = 1;
  o->p.alpha = 160.0f;
  o->p.reg = 80.0f;
  o->p.decay = 0.75f;
  o->p.floor = 0.0f;
  o->p.cap = 200;
  o->prior = 1e-4f;
  o->progress = 0;
  o->index = 1;
  hr_ann_params_default(&o->ann);
  /* Factor models' item vectors have very uneven norms: M=32 reached
   * recall@200 0.956 at ef 400 for real user vectors on a 622k-item model,
   * where M=16 reached 0.890, and 0.955 at ef 600 on the 1M-item catalogue
   * (docs/benchmarks.md). */
  o->ann.M = 32;
}


/* Full symmetric Gram G = M^T M of an n x d matrix. */
static void gram(const float *M, size_t n, int d, float *G) {
  memset(G, 0, (size_t)d * d * sizeof(*G));
  if (n > 0)
    cblas_ssyrk(CblasRowMajor, CblasLower, CblasTrans, d, (int)n, 1.0f, M, d,
                0.0f, G, d);
  for (int i = 0; i < d; i++)
    for (int j = i + 1; j < d; j++)
      G[i * d + j] = G[j * d + i];
}

/* One side's rows: CSR of (other side index, confidence). */
typedef struct {
  size_t n;
  uint64_t *ptr;
  int32_t *idx;
  float *conf;
} side_t;

static void side_free(side_t *s) {
  free(s->ptr);
  free(s->idx);
  free(s->conf);
}

typedef struct {
  const side_t *side;
  const float *other;    /* the fixed factors */
  const float *G;        /* their Gram */
  float *out;            /* rows being solved */
  int d;
  float reg;
  int tid, nthreads;
  int rc;
} job_t;

static void *solve_rows(void *arg) {
  job_t *j = arg;
  hr_ials_work_t w = {0};
  size_t n = j->side->n;

  for (size_t c0 = (size_t)j->tid * CHUNK; c0 < n;
       c0 += (size_t)j->nthreads * CHUNK) {
    size_t c1 = c0 + CHUNK < n ? c0 + CHUNK : n;
    for (size_t r = c0; r < c1; r++) {
      uint64_t a = j->side->ptr[r], b = j->side->ptr[r + 1];
      int rc = hr_ials_solve(&w, j->d, j->G, j->reg, j->other,
                             j->side->idx + a, j->side->conf + a,
                             (size_t)(b - a), j->out + r * (size_t)j->d);
      if (rc != 0 && j->rc == 0)
        j->rc = rc;
    }
  }
  hr_ials_work_free(&w);
  return NULL;
}

static int half_step(const side_t *s, const float *other, const float *G,
                     float *out, int d, float reg, int threads) {
  job_t jobs[16];
  pthread_t th[16];
  int started = 0, rc = 0;

  if (threads < 1)
    threads = 1;
  if (threads > 16)
    threads = 16;
  for (int t = 0; t < threads; t++)
    jobs[t] = (job_t){s, other, G, out, d, reg, t, threads, 0};
  for (int t = 1; t < threads; t++) {
    if (pthread_create(&th[t], NULL, solve_rows, &jobs[t]) != 0)
      break;
    started = t;
  }
  /* Chunks of a thread that could not start are solved here. */
  for (int t = started + 1; t < threads; t++)
    solve_rows(&jobs[t]);
  solve_rows(&jobs[0]);
  for (int t = 1; t <= started; t++)
    pthread_join(th[t], NULL);
  for (int t = 0; t < threads; t++)
    if (jobs[t].rc != 0 && rc == 0)
      rc = jobs[t].rc;
  return rc;
}

/* Users' rows newest first with their confidences, and the transpose. */
static int build_sides(const hr_csr_t *h, const hr_ials_params_t *p,
                       side_t *us, side_t *is) {
  size_t nu = h->n_users, ni = h->n_items, nnz = 0;
  uint64_t *fill = NULL;
  float *conf = NULL;

  memset(us, 0, sizeof(*us));
  memset(is, 0, sizeof(*is));
  us->n = nu;
  is->n = ni;
  us->ptr = calloc(nu + 1, sizeof(*us->ptr));
  is->ptr = calloc(ni + 1, sizeof(*is->ptr));
  if (us->ptr == NULL || is->ptr == NULL)
    return HR_ENOMEM;
  for (size_t u = 0; u < nu; u++) {
    size_t n = (size_t)(h->ptr[u + 1] - h->ptr[u]);
    if (p->cap > 0 && n > (size_t)p->cap)
      n = (size_t)p->cap;
    nnz += n;
    us->ptr[u + 1] = nnz;
  }
  us->idx = malloc((nnz ? nnz : 1) * sizeof(*us->idx));
  us->conf = malloc((nnz ? nnz : 1) * sizeof(*us->conf));
  is->idx = malloc((nnz ? nnz : 1) * sizeof(*is->idx));
  is->conf = malloc((nnz ? nnz : 1) * sizeof(*is->conf));
  conf = malloc((h->ptr[nu] + 1) * sizeof(*conf));
  fill = calloc(ni + 1, sizeof(*fill));
  if (!us->idx || !us->conf || !is->idx || !is->conf || !conf || !fill) {
    free(conf);
    free(fill);
    return HR_ENOMEM;
  }
  for (size_t u = 0; u < nu; u++) {
    uint64_t a = us->ptr[u], n = us->ptr[u + 1] - a;
    const int32_t *hist = h->items + h->ptr[u];
    size_t hn = (size_t)(h->ptr[u + 1] - h->ptr[u]);
    hr_ials_confidence(p, (size_t)n, conf);
    for (uint64_t j = 0; j < n; j++) {
      us->idx[a + j] = hist[hn - 1 - j];
      us->conf[a + j] = conf[j];
      is->ptr[us->idx[a + j] + 1]++;
    }
  }
  for (size_t i = 0; i < ni; i++)
    is->ptr[i + 1] += is->ptr[i];
  memcpy(fill, is->ptr, (ni + 1) * sizeof(*fill));
  for (size_t u = 0; u < nu; u++)
    for (uint64_t k = us->ptr[u]; k < us->ptr[u + 1]; k++) {
      uint64_t at = fill[us->idx[k]]++;
      is->idx[at] = (int32_t)u;
      is->conf[at] = us->conf[k];
    }
  free(conf);
  free(fill);
  return 0;
}

/* Loss per interaction: sum_obs c (1 - p)^2 + sum_unobs p^2 + reg ||.||^2,
 * with sum over all pairs of p^2 = <X^T X, Y^T Y>. */
static double loss_of(const side_t *us, const float *X, const float *Y,
                      const float *XtX, const float *YtY, int d, float reg,
                      size_t nu, size_t ni) {
  double l = 0, all = 0, norm = 0;
  for (size_t u = 0; u < nu; u++)
    for (uint64_t k = us->ptr[u]; k < us->ptr[u + 1]; k++) {
      const float *x = X + u * (size_t)d, *y = Y + (size_t)us->idx[k] * d;
      double p = 0;
      for (int f = 0; f < d; f++)
        p += (double)x[f] * y[f];
      l += us->conf[k] * (1 - p) * (1 - p) - p * p;
    }
  for (int f = 0; f < d * d; f++)
    all += (double)XtX[f] * YtY[f];
  for (size_t f = 0; f < nu * (size_t)d; f++)
    norm += (double)X[f] * X[f];
  for (size_t f = 0; f < ni * (size_t)d; f++)
    norm += (double)Y[f] * Y[f];
  l += all + reg * norm;
  return us->ptr[nu] ? l / (double)us->ptr[nu] : 0;
}

static void progress(const hr_ials_opts_t *o, int it, double loss,
                     double t0) {
  double el = hr__now_s() - t0, eta = el / (it + 1) * (o->iters - it - 1);

  if (!o->progress)
    return;
  if (isatty(2)) {
    fprintf(stderr, "\riALS epoch %d/%d  loss %.5f  elapsed %.1fs  ETA %.1fs ",
            it + 1, o->iters, loss, el, eta);
    if (it + 1 == o->iters)
      fputc('\n', stderr);
  } else {
    hr_log(HR_LOG_INFO, "train_epoch",
           json_pack("{si si sf sf sf}", "epoch", it + 1, "epochs", o->iters,
                     "loss", loss, "elapsed_s", el, "eta_s", eta));
  }
}

void hr_ials_free(hr_ials_t *m) {
  if (m == NULL)
    return;
  free(m->X);
  free(m->Y);
  free(m->yty);
  free(m->prior);
  memset(m, 0, sizeof(*m));
}

int hr_ials_fit(const hr_csr_t *h, const hr_ials_opts_t *o, hr_ials_t *out,
                hr_error_t *err) {
  size_t nu = h->n_users, ni = h->n_items, d = (size_t)o->factors;
  float *XtX = NULL;
  side_t us, is;
  double t0 = hr__now_s();
  uint64_t seed = o->seed;
  int rc;

  memset(out, 0, sizeof(*out));
  if (o->popularity)
    d = 1;
  if (o->factors < 1 || o->factors > 1024 || o->iters < 0 ||
      !(o->p.reg > 0) || !(o->p.alpha >= 0) || !(o->p.decay > 0) ||
      o->p.decay > 1 || !(o->p.floor >= 0) || o->p.floor > 1 || o->p.cap < 0)
    return hr_error_set(err, HR_EINVAL, NULL, "bad iALS hyper-parameters");
  openblas_set_num_threads(1);
  out->dim = (int)d;
  out->n_users = nu;
  out->n_items = ni;
  out->X = calloc(nu * d + 1, sizeof(float));
  out->Y = malloc((ni * d + 1) * sizeof(float));
  out->yty = malloc(d * d * sizeof(float));
  out->prior = calloc(ni + 1, sizeof(float));
  XtX = malloc(d * d * sizeof(float));
  if ((rc = build_sides(h, &o->p, &us, &is)) != 0 || !out->X || !out->Y ||
      !out->yty || !out->prior || !XtX) {
    rc = hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
    goto done;
  }
  /* Small random item factors; users start from the first user step. */
  for (size_t k = 0; k < ni * d; k++) {
    double r = hr__gauss(&seed);
    out->Y[k] = (float)(0.01 * r);
  }
  if (o->popularity) { /* no factors: zero vectors, the prior ranks */
    memset(out->Y, 0, sizeof(float) * ni * d);
    memset(out->yty, 0, sizeof(float) * d * d);
  }
  for (int it = 0; it < o->iters && !o->popularity; it++) {
    gram(out->Y, ni, (int)d, out->yty);
    if ((rc = half_step(&us, out->Y, out->yty, out->X, (int)d, o->p.reg,
                        o->threads)) != 0)
      break;
    gram(out->X, nu, (int)d, XtX);
    if ((rc = half_step(&is, out->X, XtX, out->Y, (int)d, o->p.reg,
                        o->threads)) != 0)
      break;
    if (o->progress) {
      gram(out->Y, ni, (int)d, out->yty);
      out->loss = loss_of(&us, out->X, out->Y, XtX, out->yty, (int)d,
                          o->p.reg, nu, ni);
      progress(o, it, out->loss, t0);
    }
  }
  /* Last: a user step against the final items, so that the learned user
   * vectors are exactly the server's fold-in of the stored histories. */
  if (rc == 0 && !o->popularity) {
    gram(out->Y, ni, (int)d, out->yty);
    rc = half_step(&us, out->Y, out->yty, out->X, (int)d, o->p.reg,
                   o->threads);
  }
  if (rc != 0) {
    hr_error_set(err, rc, NULL, "iALS solve failed (%s)", hr_strerror(rc));
    goto done;
  }
  /* Popularity prior: tiny, so it orders only (near-)ties and users about
   * whom nothing is known. */
  {
    double mx = 0;
    for (size_t i = 0; i < ni; i++)
      if ((double)(is.ptr[i + 1] - is.ptr[i]) > mx)
        mx = (double)(is.ptr[i + 1] - is.ptr[i]);
    for (size_t i = 0; i < ni && mx > 0; i++)
      out->prior[i] = (float)(o->prior *
                              log1p((double)(is.ptr[i + 1] - is.ptr[i])) /
                              log1p(mx));
  }
  out->seconds = hr__now_s() - t0;
done:
  side_free(&us);
  side_free(&is);
  free(XtX);
  if (rc != 0)
    hr_ials_free(out);
  return rc;
}

/* --------------------------------------------------------------- writer */

static int make_spec(const hr_dataset_t *ds, const hr_csr_t *h,
                     const hr_ials_t *m, const hr_ials_opts_t *o,
                     json_t *data, json_t *metrics, hr_model_spec_t *s,
                     hr__spec_ids_t *x, hr_tensor_t *t) {
  size_t ni = m->n_items, nu = m->n_users;
  uint64_t d = (uint64_t)m->dim;

  memset(s, 0, sizeof(*s));
  if (hr__spec_base(s, x, ds, h, ni, t + 4) != 0)
    return HR_ENOMEM;
  t[0] = (hr_tensor_t){"item_emb", HR_DT_F32, 2, {ni, d, 1, 1}, m->Y, 0};
  t[1] = (hr_tensor_t){"yty", HR_DT_F32, 2, {d, d, 1, 1}, m->yty, 0};
  t[2] = (hr_tensor_t){"user_emb", HR_DT_F32, 2, {nu, d, 1, 1}, m->X, 0};
  t[3] = (hr_tensor_t){"item_prior", HR_DT_F32, 1, {ni, 1, 1, 1}, m->prior,
                       0};
  s->kind = o->popularity ? "pop" : "ials";
  s->ann = o->index && !o->popularity ? &o->ann : NULL;
  s->dim = m->dim;
  s->tensors = t;
  s->n_tensors = 6;
  if ((s->context_prior = hr_ctx_prior_manifest(o->ctx_prior, ds, t + 6)))
    s->n_tensors = 8;
  s->params = json_pack("{so so so so si si si sI so}", "alpha",
                        hr__jfloat(o->p.alpha), "reg", hr__jfloat(o->p.reg), "decay",
                        hr__jfloat(o->p.decay), "floor", hr__jfloat(o->p.floor),
                        "cap", o->p.cap, "factors", o->factors, "iters",
                        o->iters, "seed", (json_int_t)o->seed, "prior",
                        hr__jfloat(o->prior));
  return hr__spec_finish(s, data, metrics, o->selection, o->forced);
}

int hr_train_write(const char *slot_dir, const hr_dataset_t *ds,
                   const hr_csr_t *h, const hr_ials_t *m,
                   const hr_ials_opts_t *o, json_t *data, json_t *metrics,
                   char *path_out, size_t path_cap, hr_error_t *err) {
  hr_model_spec_t s;
  hr_tensor_t t[8];
  hr__spec_ids_t x;
  int rc = make_spec(ds, h, m, o, data, metrics, &s, &x, t);
  return hr__spec_publish(&s, &x, rc, slot_dir, NULL, path_out, path_cap,
                          err);
}

int hr_train_write_files(const char *dir, const hr_dataset_t *ds,
                         const hr_csr_t *h, const hr_ials_t *m,
                         const hr_ials_opts_t *o, json_t *data,
                         const char *name, uint64_t version,
                         hr_error_t *err) {
  hr_model_spec_t s;
  hr_tensor_t t[8];
  hr__spec_ids_t x;
  int rc = make_spec(ds, h, m, o, data, NULL, &s, &x, t);

  if (rc != 0)
    rc = hr_error_set(err, rc, NULL, "out of memory");
  else
    rc = hr_model_write_files(dir, &s, name, version, err);
  hr__spec_ids_free(&x);
  json_decref(s.params);
  json_decref(s.context_prior);
  return rc;
}
