/* eval_lab.c -- the research evaluations of the sequential model (lab.h):
 * leave-last-out on an event file with and without context, the cold-item
 * check, and the neural reranker prototype on protocol `loo`. */
#include "hr/lab.h"
#include "hr/ranker.h"

#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../train/util.h"

/* ------------------------------------ leave-last-out on an event CSV */

int hr_eval_last_seq(const char *path, const char *users_path,
                     int target_test, const hr_seq_opts_t *o, int no_context,
                     const char *topk_out, hr_eval_result_t *res,
                     hr_error_t *err) {
  hr_dataset_t ds;
  hr_csr_t full = {0};
  hr_ctx_prior_t cp = {0};
  hr_loo_target_t *tg = NULL;
  int32_t *hide = NULL, *tctx = NULL, *trow = NULL;
  size_t nu, ni, ntg = 0, w = 0, F = 0;
  int rc;

  memset(res, 0, sizeof(*res));
  if ((rc = hr_dataset_init(&ds)) != 0)
    return hr_error_set(err, rc, NULL, "out of memory");
  if ((rc = hr_data_read_csv(&ds, path, err)) != 0)
    goto done;
  if (users_path != NULL &&
      (rc = hr_data_read_users(&ds, users_path, err)) != 0)
    goto done;
  nu = hr_idmap_size(ds.users);
  ni = hr_idmap_size(ds.items);
  if ((rc = hr_dataset_histories(&ds, &full)) != 0)
    goto oom;
  /* Each user with 3 or more distinct items: the newest is the test
   * target, the one before it the valid target; the target's item (and,
   * for valid, the test item too) leaves the user's training rows. */
  tg = malloc(sizeof(*tg) * (nu + 1));
  trow = malloc(sizeof(int32_t) * (nu + 1));
  hide = malloc(sizeof(int32_t) * 2 * (nu + 1));
  if (!tg || !trow || !hide)
    goto oom;
  for (size_t u = 0; u < nu; u++) {
    uint64_t a = full.ptr[u], n = full.ptr[u + 1] - a;
    hide[2 * u] = hide[2 * u + 1] = -1;
    if (n < 3)
      continue;
    uint64_t k = target_test ? a + n - 1 : a + n - 2;
    tg[ntg] = (hr_loo_target_t){(long)u, (long)u, full.items[k], full.ts[k]};
    trow[ntg++] = (int32_t)full.row[k];
    hide[2 * u] = full.items[a + n - 1];
    if (!target_test)
      hide[2 * u + 1] = full.items[a + n - 2];
  }
  if (ntg == 0) {
    rc = hr_error_set(err, HR_EINVAL, NULL, "%s: no user with 3 or more "
                      "items", path);
    goto done;
  }
  /* The prior's layout and each target's context, before compaction. */
  if ((rc = hr_ctx_prior_fit(&ds, ni, NULL, 20.0f, &cp)) != 0)
    goto oom;
  F = no_context ? 0 : cp.n_fields;
  tctx = malloc(sizeof(int32_t) * (ntg * F + 1));
  if (tctx == NULL)
    goto oom;
  for (size_t k = 0; F > 0 && k < ntg; k++)
    hr_ctx_prior_rows(&cp, &ds, (size_t)trow[k], tctx + k * F);
  for (size_t r = 0; r < ds.n; r++) {
    size_t u = (size_t)ds.u[r];
    if (ds.i[r] == hide[2 * u] || ds.i[r] == hide[2 * u + 1])
      continue;
    ds.u[w] = ds.u[r];
    ds.i[w] = ds.i[r];
    ds.ts[w] = ds.ts[r];
    if (ds.cv != NULL)
      memmove(ds.cv + w * HR_DS_CTX, ds.cv + r * HR_DS_CTX,
              sizeof(int32_t) * HR_DS_CTX);
    w++;
  }
  ds.n = w;
  rc = hr_eval_seq_targets(&ds, tg, ntg, ni, o, NULL, F > 0 ? &cp : NULL,
                           tctx, topk_out, res, err);
done:
  free(tg);
  free(trow);
  free(hide);
  free(tctx);
  hr_ctx_prior_free(&cp);
  hr_csr_free(&full);
  hr_dataset_free(&ds);
  return rc;
oom:
  rc = hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
  goto done;
}

/* ------------------------------------------------------------ cold items */

/* The hidden items of the cold-item study: a seeded sample of frac of
 * the items seen in train + valid (pool[0..H)), hid[item] their position
 * or -1, and pos (users x H) each user's interactions with them (train,
 * valid and test), which the training data ds then loses. */
typedef struct {
  size_t H;
  uint32_t *pool;
  int32_t *hid;
  unsigned char *pos;
} hidden_t;

static void hidden_free(hidden_t *hd) {
  free(hd->pool);
  free(hd->hid);
  free(hd->pos);
}

static int pick_hidden(hr_dataset_t *ds, const hr_loo_target_t *tg,
                       size_t ntg, size_t n_items, double frac,
                       uint64_t seed, hidden_t *hd, hr_error_t *err) {
  size_t nu = hr_idmap_size(ds->users), np = 0, w = 0;
  uint32_t *cnt = calloc(n_items, sizeof(*cnt));
  uint64_t rng = seed * 0x9E3779B97F4A7C15ull + 11;
  hd->pool = malloc(sizeof(*hd->pool) * n_items);
  hd->hid = malloc(sizeof(*hd->hid) * n_items);
  if (!cnt || !hd->pool || !hd->hid) {
    free(cnt);
    return hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
  }
  for (size_t k = 0; k < ds->n; k++)
    cnt[ds->i[k]]++;
  for (size_t i = 0; i < n_items; i++) {
    hd->hid[i] = -1;
    if (cnt[i] > 0)
      hd->pool[np++] = (uint32_t)i;
  }
  free(cnt);
  for (size_t i = np; i > 1; i--) {
    size_t j = (size_t)(hr__sm64(&rng) % i);
    uint32_t t = hd->pool[i - 1];
    hd->pool[i - 1] = hd->pool[j];
    hd->pool[j] = t;
  }
  hd->H = (size_t)(frac * (double)np + 0.5);
  if (hd->H < 10)
    return hr_error_set(err, HR_EINVAL, NULL, "only %zu hidden items",
                        hd->H);
  for (size_t k = 0; k < hd->H; k++)
    hd->hid[hd->pool[k]] = (int32_t)k;
  if ((hd->pos = calloc(nu * hd->H, 1)) == NULL)
    return hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
  for (size_t k = 0; k < ds->n; k++) {
    if (hd->hid[ds->i[k]] >= 0) {
      hd->pos[(size_t)ds->u[k] * hd->H + (size_t)hd->hid[ds->i[k]]] = 1;
      continue;
    }
    ds->u[w] = ds->u[k];
    ds->i[w] = ds->i[k];
    ds->ts[w] = ds->ts[k];
    memmove(ds->cv + w * HR_DS_CTX, ds->cv + k * HR_DS_CTX,
            sizeof(int32_t) * HR_DS_CTX);
    w++;
  }
  ds->n = w;
  for (size_t k = 0; k < ntg; k++)
    if (hd->hid[tg[k].item] >= 0)
      hd->pos[(size_t)tg[k].user * hd->H + (size_t)hd->hid[tg[k].item]] = 1;
  return 0;
}

/* Each of the nu users with hidden items and a visible history ranks the
 * hidden items alone by <u, attribute vector> (+ the long-term part's
 * score from lrows at weight ltw); NDCG@10 and HR@10 against a random
 * order's into res. 0 or HR_ENOMEM. */
static int rank_hidden(const hr_csr_t *h, size_t nu, const hr_seq_fit_t *fit,
                       const hr_ials_t *lt, const float *lrows, float ltw,
                       const hidden_t *hd, hr_cold_result_t *res) {
  size_t H = hd->H;
  float *vec = malloc(sizeof(float) * (size_t)fit->width);
  float *buf = malloc(sizeof(float) * hr_seq_embed_floats(&fit->dims));
  float *sc = malloc(sizeof(float) * H);
  double disc[10], sum_ndcg = 0, sum_rnd = 0, sum_hr = 0, sum_rhr = 0;
  if (!vec || !buf || !sc) {
    free(vec);
    free(buf);
    free(sc);
    return HR_ENOMEM;
  }
  for (int p = 0; p < 10; p++)
    disc[p] = 1.0 / log2(p + 2.0);
  for (size_t u = 0; u < nu && u < h->n_users; u++) {
    size_t nh = (size_t)(h->ptr[u + 1] - h->ptr[u]), np_ = 0, kk;
    const int32_t *hist = h->items + h->ptr[u];
    const int64_t *ts = h->ts + h->ptr[u];
    double dcg = 0, idcg = 0, edcg = 0;
    int32_t top[10];
    for (size_t j = 0; j < H; j++)
      np_ += hd->pos[u * H + j];
    if (np_ == 0 || nh == 0)
      continue;
    hr_seq_user_vector(fit, hist, ts, nh, ts[nh - 1] + 1, buf, vec);
    for (size_t j = 0; j < H; j++) {
      const float *x = fit->items + (size_t)hd->pool[j] * (size_t)fit->width;
      float s = 0;
      for (int c = 0; c < fit->width; c++)
        s += vec[c] * x[c];
      if (lrows != NULL) {
        const float *y = lrows + (size_t)hd->pool[j] * (size_t)lt->dim,
                    *xu = lt->X + u * (size_t)lt->dim;
        float l = 0;
        for (int c = 0; c < lt->dim; c++)
          l += xu[c] * y[c];
        s += ltw * l;
      }
      sc[j] = s;
    }
    kk = hr_topk(sc, NULL, H, 10, top);
    int hit = 0;
    for (size_t p = 0; p < kk; p++)
      if (hd->pos[u * H + (size_t)top[p]]) {
        dcg += disc[p];
        hit = 1;
      }
    for (size_t p = 0; p < np_ && p < 10; p++)
      idcg += disc[p];
    for (size_t p = 0; p < 10 && p < H; p++)
      edcg += disc[p] * (double)np_ / (double)H;
    /* random order: P(no relevant item in the top 10) */
    double miss = 1;
    for (size_t p = 0; p < 10 && p < H; p++)
      miss *= (double)(H - np_ - p) / (double)(H - p);
    sum_ndcg += dcg / idcg;
    sum_rnd += edcg / idcg;
    sum_hr += hit;
    sum_rhr += 1 - (miss > 0 ? miss : 0);
    res->users++;
  }
  res->hidden = H;
  if (res->users > 0) {
    res->ndcg = sum_ndcg / (double)res->users;
    res->random_ndcg = sum_rnd / (double)res->users;
    res->hr = sum_hr / (double)res->users;
    res->random_hr = sum_rhr / (double)res->users;
  }
  free(vec);
  free(buf);
  free(sc);
  return 0;
}

int hr_eval_cold_seq(const char *split_dir, const char *items_path,
                     double frac, const hr_seq_opts_t *o,
                     hr_cold_result_t *res, hr_error_t *err) {
  hr_dataset_t ds = {0};
  hr_csr_t h = {0};
  hr_seq_fit_t fit = {0};
  hr_item_tokens_t tok = {0};
  hr_loo_target_t *tg = NULL;
  size_t n_items = 0, ntg = 0;
  hidden_t hd = {0};
  float *lrows = NULL;
  hr_ials_t lt = {0};
  hr_seq_opts_t oo = *o;
  int rc;

  memset(res, 0, sizeof(*res));
  if (!(frac > 0 && frac < 1))
    return hr_error_set(err, HR_EINVAL, NULL, "--cold-items must be in "
                        "(0, 1)");
  if ((rc = hr_loo_load(split_dir, 1, &ds, &tg, &ntg, &n_items, err)) != 0 ||
      (rc = hr_data_read_items(&ds, items_path, err)) != 0)
    goto done;
  if (hr_idmap_size(ds.items) != n_items || ds.attrs == NULL) {
    rc = hr_error_set(err, HR_EFORMAT, NULL, "%s: item ids outside 1..%zu, "
                      "or no attributes", items_path, n_items);
    goto done;
  }
  if ((rc = pick_hidden(&ds, tg, ntg, n_items, frac, o->seed, &hd, err)) !=
      0)
    goto done;
  if ((rc = hr_dataset_histories(&ds, &h)) != 0 ||
      (rc = hr_item_tokens(&ds, n_items, &tok)) != 0) {
    hr_error_set(err, rc, NULL, "out of memory");
    goto done;
  }
  oo.tokens = &tok;
  oo.validate = NULL;
  if ((rc = hr_seq_fit(&h, &oo, &fit, err)) != 0)
    goto done;
  res->train_seconds = fit.seconds;
  if (o->long_term > 0) { /* as served: + w x_u . (rows from tokens) */
    if ((rc = hr_seq_long_term_fit(&h, o, &lt, err)) != 0)
      goto done;
    res->train_seconds += lt.seconds;
    lrows = malloc(sizeof(float) * n_items * (size_t)lt.dim);
    if (lrows == NULL || hr_item_tokens_project(&tok, &h, lt.Y,
                                                (size_t)lt.dim,
                                                HR_LT_TOKEN_SHRINK,
                                                lrows) != 0)
      goto oom;
  }
  if (rank_hidden(&h, hr_idmap_size(ds.users), &fit, &lt, lrows,
                  o->long_term, &hd, res) == 0)
    goto done;
oom:
  rc = hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
done:
  hidden_free(&hd);
  free(lrows);
  free(tg);
  hr_item_tokens_free(&tok);
  hr_ials_free(&lt);
  hr_seq_fit_free(&fit);
  hr_csr_free(&h);
  hr_dataset_free(&ds);
  return rc;
}

/* ---------------------------------------------------- the neural ranker */

/* The retrieval side of the ranker study: the seq model and its
 * long-term part, their concatenated item rows, and one user's scores. */
typedef struct {
  const hr_seq_fit_t *fit;
  const hr_ials_t *lt;
  float lt_w;
  size_t n_items, d, f, D;
  int N;                       /* candidates per list */
  float *cat, *uc, *sc, *buf, *logpop;
  unsigned char *ex;
  int32_t *cand;
} rr_t;

/* user u's [u_seq | w x_u] after the n items of hist at time now, and
 * every item's score against it into x->sc. */
static void rr_user(rr_t *x, size_t u, const int32_t *hist,
                    const int64_t *hts, size_t n, int64_t now) {
  hr_seq_user_vector(x->fit, hist, hts, n, now, x->buf, x->uc);
  for (size_t c = 0; c < x->f; c++)
    x->uc[x->d + c] = x->lt_w * x->lt->X[u * x->f + c];
  cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)x->n_items, (int)x->D, 1.0f,
              x->cat, (int)x->D, x->uc, 1, 0.0f, x->sc, 1);
}

/* The top x->N of x->sc outside hist[0..n) into x->cand; the count. */
static size_t rr_top(rr_t *x, const int32_t *hist, size_t n) {
  size_t got;
  for (size_t j = 0; j < n; j++)
    x->ex[hist[j]] = 1;
  got = hr_topk(x->sc, x->ex, x->n_items, (size_t)x->N, x->cand);
  for (size_t j = 0; j < n; j++)
    x->ex[hist[j]] = 0;
  return got;
}

/* h without each user's last item (users with 3 or more) into hf; that
 * item and its time into hold/hold_ts (-1 and 0: none). */
static int rr_holdout(const hr_csr_t *h, hr_csr_t *hf, int32_t **hold,
                      int64_t **hold_ts) {
  size_t nu = h->n_users;
  hf->n_users = nu;
  hf->n_items = h->n_items;
  hf->ptr = calloc(nu + 1, sizeof(uint64_t));
  hf->items = malloc(sizeof(int32_t) * (h->ptr[nu] + 1));
  hf->ts = malloc(sizeof(int64_t) * (h->ptr[nu] + 1));
  *hold = malloc(sizeof(int32_t) * (nu + 1));
  *hold_ts = malloc(sizeof(int64_t) * (nu + 1));
  if (!hf->ptr || !hf->items || !hf->ts || !*hold || !*hold_ts)
    return HR_ENOMEM;
  for (size_t u = 0; u < nu; u++) {
    size_t n = (size_t)(h->ptr[u + 1] - h->ptr[u]), keep = n >= 3 ? n - 1 : n;
    memcpy(hf->items + hf->ptr[u], h->items + h->ptr[u],
           sizeof(int32_t) * keep);
    memcpy(hf->ts + hf->ptr[u], h->ts + h->ptr[u], sizeof(int64_t) * keep);
    hf->ptr[u + 1] = hf->ptr[u] + keep;
    (*hold)[u] = n >= 3 ? h->items[h->ptr[u] + n - 1] : -1;
    (*hold_ts)[u] = n >= 3 ? h->ts[h->ptr[u] + n - 1] : 0;
  }
  return 0;
}

/* Training queries: the retrieval's top N for the held-out item's
 * request, when it holds that item (an item put in by hand would teach
 * the ranker to distrust the retrieval's scores); inputs into X, the
 * held-out item's place into pos. Returns the count. */
static size_t rr_queries(rr_t *x, const hr_csr_t *hf, const int32_t *hold,
                         const int64_t *hold_ts, const hr_rerank_dims_t *rd,
                         float *X, int32_t *pos) {
  size_t nq = 0, N = (size_t)x->N;
  size_t F = (size_t)hr_rerank_inputs(rd);
  for (size_t u = 0; u < hf->n_users; u++) {
    size_t n = (size_t)(hf->ptr[u + 1] - hf->ptr[u]);
    const int32_t *hi = hf->items + hf->ptr[u];
    const int64_t *ht = hf->ts + hf->ptr[u];
    int p = -1, qgap;
    if (hold[u] < 0 || n == 0)
      continue;
    rr_user(x, u, hi, ht, n, hold_ts[u]);
    if (rr_top(x, hi, n) < N)
      continue;
    for (size_t k = 0; k < N; k++)
      if (x->cand[k] == hold[u])
        p = (int)k;
    if (p < 0) /* only lists the retrieval would serve */
      continue;
    qgap = hr_seq_gap_bucket(hold_ts[u] - ht[n - 1], 1);
    for (size_t k = 0; k < N; k++)
      hr_rerank_input(rd, x->uc, x->cat + (size_t)x->cand[k] * x->D,
                      x->logpop[x->cand[k]], qgap,
                      X + (nq * N + k) * F);
    pos[nq++] = p;
  }
  return nq;
}

int hr_eval_loo_rerank(const char *split_dir, int target_test,
                       const hr_seq_opts_t *o, const hr_rerank_opts_t *ro,
                       const char *topk_out, hr_eval_result_t *res,
                       hr_eval_result_t *base, hr_error_t *err) {
  hr_dataset_t ds = {0};
  hr_csr_t h = {0}, hf = {0};
  hr_seq_fit_t fit = {0};
  hr_ials_t lt = {0};
  hr_metrics_t mt = {0}, mb = {0};
  hr_loo_target_t *tg = NULL;
  size_t n_items = 0, ntg = 0, nu, F, nq = 0;
  int32_t *hold = NULL, *pos = NULL;
  int64_t *hold_ts = NULL;
  float *X = NULL, *rp = NULL, *h1 = NULL, *h2 = NULL, *rs = NULL;
  hr_rerank_opts_t r = *ro;
  rr_t x = {0};
  FILE *out = NULL;
  int N = ro->n_cand, rc;

  memset(res, 0, sizeof(*res));
  memset(base, 0, sizeof(*base));
  if ((rc = hr_loo_load(split_dir, target_test, &ds, &tg, &ntg, &n_items,
                     err)) != 0)
    goto done;
  if ((rc = hr_dataset_histories(&ds, &h)) != 0)
    goto oom;
  nu = h.n_users;
  /* The retrieval models learn without each user's last item (users with
   * 3 or more), which becomes the ranker's training target. */
  if (rr_holdout(&h, &hf, &hold, &hold_ts) != 0)
    goto oom;
  if ((rc = hr_seq_fit(&hf, o, &fit, err)) != 0)
    goto done;
  if ((rc = hr_seq_long_term_fit(&hf, o, &lt, err)) != 0)
    goto done;
  x = (rr_t){&fit, &lt, o->long_term, n_items, (size_t)fit.width,
             (size_t)lt.dim, (size_t)fit.width + (size_t)lt.dim, N,
             NULL, NULL, NULL, NULL, NULL, NULL, NULL};
  r.dims.D = (int)x.D;
  r.dims.d_seq = (int)x.d;
  F = (size_t)hr_rerank_inputs(&r.dims);
  x.cat = malloc(sizeof(float) * n_items * x.D);
  x.uc = malloc(sizeof(float) * x.D);
  x.sc = malloc(sizeof(float) * n_items);
  x.buf = malloc(sizeof(float) * hr_seq_embed_floats(&fit.dims));
  x.logpop = calloc(n_items, sizeof(float));
  x.ex = calloc(n_items, 1);
  x.cand = malloc(sizeof(int32_t) * (size_t)N);
  X = malloc(sizeof(float) * nu * (size_t)N * F);
  pos = malloc(sizeof(int32_t) * nu);
  if (!x.cat || !x.uc || !x.sc || !x.buf || !x.logpop || !x.ex || !x.cand ||
      !X || !pos)
    goto oom;
  hr_seq_concat_items(&fit, &lt, NULL, x.cat);
  for (uint64_t k = 0; k < hf.ptr[nu]; k++)
    x.logpop[hf.items[k]] += 1;
  for (size_t i = 0; i < n_items; i++)
    x.logpop[i] = logf(1 + x.logpop[i]);
  nq = rr_queries(&x, &hf, hold, hold_ts, &r.dims, X, pos);
  {
    double rl;
    if ((rc = hr_rerank_fit(&r, X, pos, nq, &rp, &rl, err)) != 0)
      goto done;
    if (o->progress)
      fprintf(stderr, "rerank: %zu queries, final loss %.4f\n", nq, rl);
  }
  h1 = malloc(sizeof(float) * (size_t)N * (size_t)r.dims.h1);
  h2 = malloc(sizeof(float) * (size_t)N * (size_t)r.dims.h2);
  rs = malloc(sizeof(float) * (size_t)N);
  if (!h1 || !h2 || !rs || hr_metrics_init(&mt, 10, n_items) ||
      hr_metrics_init(&mb, 10, n_items))
    goto oom;
  if (topk_out != NULL && (out = fopen(topk_out, "w")) == NULL) {
    rc = hr_error_set(err, HR_EIO, NULL, "%s: %s", topk_out, strerror(errno));
    goto done;
  }
  /* The targets: the full history in, retrieval's top N, reordered. */
  for (size_t k = 0; k < ntg; k++) {
    size_t u = (size_t)tg[k].user, n = (size_t)(h.ptr[u + 1] - h.ptr[u]), got;
    const int32_t *hi = h.items + h.ptr[u];
    const int64_t *ht = h.ts + h.ptr[u];
    int32_t top[10];
    int qgap = hr_seq_gap_bucket(tg[k].ts - ht[n - 1], 1);
    rr_user(&x, u, hi, ht, n, tg[k].ts);
    got = rr_top(&x, hi, n);
    hr_metrics_add(&mb, x.cand, got < 10 ? got : 10, (int32_t)tg[k].item);
    for (size_t q = 0; q < got; q++)
      hr_rerank_input(&r.dims, x.uc, x.cat + (size_t)x.cand[q] * x.D,
                      x.logpop[x.cand[q]], qgap, X + q * F);
    hr_rerank_forward(&r.dims, rp, X, got, h1, h2, rs);
    size_t nt = hr_topk(rs, NULL, got, 10, top);
    for (size_t q = 0; q < nt; q++)
      top[q] = x.cand[top[q]];
    hr_metrics_add(&mt, top, nt, (int32_t)tg[k].item);
    if (out != NULL) {
      fputs(hr_idmap_str(ds.users, u), out);
      for (size_t j = 0; j < nt; j++)
        fprintf(out, "\t%s", hr_idmap_str(ds.items, (size_t)top[j]));
      fputc('\n', out);
    }
  }
  hr_metrics_result(&mt, res);
  hr_metrics_result(&mb, base);
  res->train_seconds = base->train_seconds = fit.seconds + lt.seconds;
  goto done;
oom:
  rc = hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
done:
  if (out != NULL && fclose(out) != 0 && rc == 0)
    rc = hr_error_set(err, HR_EIO, NULL, "%s: write failed", topk_out);
  hr_metrics_free(&mt);
  hr_metrics_free(&mb);
  free(hold);
  free(hold_ts);
  free(pos);
  free(x.cand);
  free(x.cat);
  free(x.uc);
  free(x.sc);
  free(x.buf);
  free(X);
  free(x.logpop);
  free(rp);
  free(h1);
  free(h2);
  free(rs);
  free(x.ex);
  free(tg);
  hr_ials_free(&lt);
  hr_seq_fit_free(&fit);
  hr_csr_free(&hf);
  hr_csr_free(&h);
  hr_dataset_free(&ds);
  return rc;
}
