/* forward.c -- the forward pass shared by the server and the trainer.
 *
 * iALS user vector = a fold-in: one exact iALS row solve over the user's
 * items, newest first, with recency-weighted confidences. The trainer's user
 * step calls the same hr_ials_solve with the same confidences, so for a known
 * user without new events the fold-in reproduces the learned vector. */
#include "model_internal.h"
#include "hr/grow.h"
#include "hr/ranker.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* --------------------------------------------------------- iALS kernels */

void hr_ials_confidence(const hr_ials_params_t *p, size_t n, float *conf) {
  double w = 1.0;

  for (size_t j = 0; j < n; j++) {
    conf[j] = (float)(1.0 + p->alpha * (p->floor + (1.0 - p->floor) * w));
    w *= p->decay;
  }
}

void hr_ials_work_free(hr_ials_work_t *w) {
  if (w == NULL)
    return;
  free(w->g);
  free(w->a);
  free(w->l);
  free(w->b);
  memset(w, 0, sizeof(*w));
}

static int work_reserve(hr_ials_work_t *w, int dim, size_t n) {
  size_t d = (size_t)dim;

  if (w->dim != dim) {
    free(w->a);
    free(w->l);
    free(w->b);
    w->a = malloc(d * d * sizeof(*w->a));
    w->l = malloc(d * d * sizeof(*w->l));
    w->b = malloc(d * sizeof(*w->b));
    w->dim = dim;
    if (w->a == NULL || w->l == NULL || w->b == NULL) {
      w->dim = 0;
      return HR_ENOMEM;
    }
  }
  if (w->g_cap < n * d) {
    size_t cap = n * d + 64 * d;
    float *g = realloc(w->g, cap * sizeof(*g));
    if (g == NULL)
      return HR_ENOMEM;
    w->g = g;
    w->g_cap = cap;
  }
  return 0;
}

int hr_ials_solve(hr_ials_work_t *w, int dim, const float *gram, float reg,
                  const float *Y, const int32_t *idx, const float *conf,
                  size_t n, float *x) {
  size_t d = (size_t)dim;
  double *l, *b;
  float *a;

  if (n == 0) {
    memset(x, 0, d * sizeof(*x));
    return 0;
  }
  if (work_reserve(w, dim, n) != 0)
    return HR_ENOMEM;
  a = w->a;
  l = w->l;
  b = w->b;
  memset(b, 0, d * sizeof(*b));
  /* Rows scaled by sqrt(c - 1) so that one syrk adds sum (c-1) y y^T. */
  for (size_t j = 0; j < n; j++) {
    const float *y = Y + (size_t)idx[j] * d;
    float *g = w->g + j * d;
    float s = sqrtf(conf[j] > 1.0f ? conf[j] - 1.0f : 0.0f);
    double c = conf[j];
    for (size_t k = 0; k < d; k++) {
      g[k] = s * y[k];
      b[k] += c * y[k];
    }
  }
  memcpy(a, gram, d * d * sizeof(*a));
  cblas_ssyrk(CblasRowMajor, CblasLower, CblasTrans, dim, (int)n, 1.0f, w->g,
              dim, 1.0f, a, dim);
  /* Cholesky A = L L^T in double, lower triangle, row-major. */
  for (size_t i = 0; i < d; i++) {
    for (size_t j = 0; j <= i; j++) {
      double s = (double)a[i * d + j] + (i == j ? (double)reg : 0.0);
      const double *li = l + i * d, *lj = l + j * d;
      for (size_t k = 0; k < j; k++)
        s -= li[k] * lj[k];
      if (i == j) {
        if (!(s > 0.0)) {
          memset(x, 0, d * sizeof(*x));
          return HR_EINTERNAL;
        }
        l[i * d + i] = sqrt(s);
      } else {
        l[i * d + j] = s / lj[j];
      }
    }
  }
  /* L z = b, then L^T x = z (in place in b). */
  for (size_t i = 0; i < d; i++) {
    double s = b[i];
    for (size_t k = 0; k < i; k++)
      s -= l[i * d + k] * b[k];
    b[i] = s / l[i * d + i];
  }
  for (size_t i = d; i-- > 0;) {
    double s = b[i];
    for (size_t k = i + 1; k < d; k++)
      s -= l[k * d + i] * b[k];
    b[i] = s / l[i * d + i];
  }
  for (size_t k = 0; k < d; k++)
    x[k] = (float)b[k];
  return 0;
}

/* --------------------------------------------------------- forward pass */

/* Open-addressing set of item indices, to drop repeats. */
static int seen_add(int32_t *set, size_t mask, int32_t v) {
  size_t i = ((uint32_t)v * 2654435761u) & mask;
  while (set[i] != -1) {
    if (set[i] == v)
      return 0;
    i = (i + 1) & mask;
  }
  set[i] = v;
  return 1;
}

/* Kind "seq": the newest L distinct items of recent + stored history
 * (newest position wins), oldest first, through the transformer; one more
 * item before them, when there is one, gives the first row its time gap
 * (as in training). */
static long cprior_row(const hr_model_t *m, const char *name,
                       const char *val);

/* The seq_ctx row of the request's k-th context value or user attribute
 * ("user.age"), or -1 (no value, or unknown). A row the model did not
 * learn is zero (versions before user attributes had none). */
static long seq_ctx_row(const hr_model_t *m, const hr_history_t *h,
                        size_t k) {
  if (h->ctx_vals[k] == NULL)
    return -1;
  return cprior_row(m, h->ctx_names[k], h->ctx_vals[k]);
}

/* The work buffer holds at least `bytes` (grown, never shrunk). */
static void *work_bytes(hr_model_work_t *w, size_t bytes) {
  void *p = hr_grow_to(w->buf, &w->cap, bytes, 1);
  if (p != NULL)
    w->buf = p;
  return p;
}

void hr_model_work_free(hr_model_work_t *w) {
  if (w == NULL)
    return;
  free(w->buf);
  hr_ials_work_free(&w->ials);
  memset(w, 0, sizeof(*w));
}

/* Kind "seq": the newest L distinct items of recent + stored history
 * (newest position wins), oldest first, through each member's network;
 * one more item before them, when there is one, gives the first row its
 * time gap (as in training). base gets each member's state y (d floats):
 * the request's terms are added by seq_finish. */
static int seq_base(const hr_model_t *m, long user_idx,
                    const hr_history_t *recent, hr_model_work_t *w,
                    float *base) {
  size_t nrec = recent ? recent->n : 0, nhist = 0, n = 0, tsize = 16;
  size_t L = (size_t)m->seq.L + 1;
  const int32_t *hist = NULL;
  const int64_t *hts = NULL;
  int32_t *items, *set;
  int64_t *ts;
  float *buf;

  if (user_idx >= 0) {
    hist = hr_model_user_history(m, user_idx, &nhist);
    hts = m->hist_ts + m->hist_ptr[user_idx];
  }
  while (tsize < 2 * L)
    tsize <<= 1;
  /* One block: the 8-byte timestamps first, then the 4-byte parts. */
  ts = work_bytes(w, L * sizeof(*ts) + L * sizeof(*items) +
                         tsize * sizeof(*set) +
                         hr_seq_embed_floats(&m->seq) * sizeof(*buf));
  if (ts == NULL)
    return HR_ENOMEM;
  items = (int32_t *)(ts + L);
  set = items + L;
  buf = (float *)(set + tsize);
  memset(set, 0xff, tsize * sizeof(*set));
  /* Filled newest first from the end of the arrays. */
  for (size_t j = 0; j < nrec && n < L; j++)
    if (seen_add(set, tsize - 1, (int32_t)recent->items[j])) {
      n++;
      items[L - n] = (int32_t)recent->items[j];
      ts[L - n] = recent->ts ? recent->ts[j] : -1;
    }
  for (size_t j = nhist; j-- > 0 && n < L;)
    if (seen_add(set, tsize - 1, hist[j])) {
      n++;
      items[L - n] = hist[j];
      ts[L - n] = hts[j];
    }
  for (int k = 0; k < m->seq_members; k++) /* [y^1 | ... | y^members] */
    hr_seq_embed_state(&m->seq, &m->seqp[k], items + (L - n), ts + (L - n),
                       n, buf, base + (size_t)k * m->seq.d);
  return 0;
}

/* The newest item of recent + stored history: whether there is one, and
 * its time (-1 unknown). recent's first item is its newest. */
static int newest_item(const hr_model_t *m, long user_idx,
                       const hr_history_t *recent, int64_t *ts) {
  size_t nhist = 0;
  *ts = -1;
  if (recent != NULL && recent->n > 0) {
    *ts = recent->ts ? recent->ts[0] : -1;
    return 1;
  }
  if (user_idx >= 0)
    hr_model_user_history(m, user_idx, &nhist);
  if (nhist == 0)
    return 0;
  *ts = m->hist_ts[m->hist_ptr[user_idx] + nhist - 1];
  return 1;
}

/* The request's terms of a seq user vector: each member's gap embedding
 * for the time from the newest item to recent->now, and the vectors of
 * the request's context values (a user with no history at all keeps the
 * zero vector: the context prior answers for them). */
static void seq_finish(const hr_model_t *m, long user_idx,
                       const hr_history_t *recent, const float *base,
                       float *out) {
  int64_t newest;
  size_t d = (size_t)m->seq.d;
  int any = newest_item(m, user_idx, recent, &newest);

  if (!any) {
    memset(out, 0, sizeof(float) * (size_t)m->seq_width);
    return;
  }
  for (int k = 0; k < m->seq_members; k++)
    hr_seq_user_out(&m->seq, &m->seqp[k], base + (size_t)k * d,
                    hr_seq_request_gap(&newest, 1, recent ? recent->now : 0),
                    out + (size_t)k * d);
  for (size_t k = 0; m->seq_ctx != NULL && recent != NULL && k < recent->n_ctx;
       k++) {
    long row = seq_ctx_row(m, recent, k);
    if (row >= 0)
      hr_seq_add_context(out, m->seq_ctx + (size_t)row * (size_t)m->seq_width,
                         (size_t)m->seq_width);
  }
}

/* The iALS fold-in over item factors Y (f columns; the model's yty,
 * user_emb and ials parameters): the user's vector from recent + stored
 * history, or the stored one when nothing is new. */
static int ials_vector(const hr_model_t *m, const float *Y, int f,
                       long user_idx, const hr_history_t *recent,
                       hr_model_work_t *w, float *out) {
  size_t d = (size_t)f, nrec = recent ? recent->n : 0, nhist = 0;
  size_t cap, total, n = 0, tsize = 16;
  const int32_t *hist = NULL;
  int32_t *list, *set;
  float *conf;

  if (user_idx >= 0 && nrec == 0) {
    /* Nothing new since training: the fold-in would solve exactly the
     * system of the trainer's final user step, whose answer is stored. */
    memcpy(out, m->user_emb + (size_t)user_idx * d, d * sizeof(*out));
    return 0;
  }
  if (user_idx >= 0)
    hist = hr_model_user_history(m, user_idx, &nhist);
  total = nrec + nhist;
  cap = m->ials.cap > 0 ? (size_t)m->ials.cap : total;
  if (cap > total)
    cap = total;
  if (cap == 0) {
    memset(out, 0, d * sizeof(*out));
    return 0;
  }
  while (tsize < 2 * cap)
    tsize <<= 1;
  list = work_bytes(w, cap * sizeof(*list) + cap * sizeof(*conf) +
                           tsize * sizeof(*set));
  if (list == NULL)
    return HR_ENOMEM;
  conf = (float *)(list + cap);
  set = (int32_t *)(conf + cap);
  memset(set, 0xff, tsize * sizeof(*set));
  /* Newest first: the recent events, then the stored history backwards. */
  for (size_t j = 0; j < nrec && n < cap; j++)
    if (seen_add(set, tsize - 1, (int32_t)recent->items[j]))
      list[n++] = (int32_t)recent->items[j];
  for (size_t j = nhist; j-- > 0 && n < cap;)
    if (seen_add(set, tsize - 1, hist[j]))
      list[n++] = hist[j];
  hr_ials_confidence(&m->ials, n, conf);
  return hr_ials_solve(&w->ials, f, m->yty, m->ials.reg, Y, list, conf, n,
                       out);
}

static int check_args(const hr_model_t *m, long user_idx,
                      const hr_history_t *recent) {
  size_t nrec = recent ? recent->n : 0;
  if (user_idx < -1 || (user_idx >= 0 && (size_t)user_idx >= m->n_users))
    return HR_EINVAL;
  for (size_t j = 0; j < nrec; j++)
    if (recent->items[j] < 0 || (size_t)recent->items[j] >= m->n_items)
      return HR_EINVAL;
  return 0;
}

/* Kind "ease": the user's distinct items, live then stored, newest first,
 * the k-th weighted decay^k (n_items floats; the rest 0). */
static void ease_vector(const hr_model_t *m, long user_idx,
                        const hr_history_t *recent, float *out) {
  size_t nhist = 0;
  const int32_t *hist = user_idx >= 0
                            ? hr_model_user_history(m, user_idx, &nhist)
                            : NULL;
  float w = 1.0f;
  memset(out, 0, sizeof(float) * m->n_items);
  for (size_t j = 0; recent != NULL && j < recent->n; j++)
    if (out[recent->items[j]] == 0.0f) {
      out[recent->items[j]] = w;
      w = w * m->ease_decay > 1e-30f ? w * m->ease_decay : 1e-30f;
    }
  for (size_t j = nhist; j-- > 0;)
    if (out[hist[j]] == 0.0f) {
      out[hist[j]] = w;
      w = w * m->ease_decay > 1e-30f ? w * m->ease_decay : 1e-30f;
    }
}

/* Kind "dae": tanh(enc_bias + x enc), x the user's distinct items (live,
 * then stored, newest first) weighted decay^k at unit length; zeros for a
 * user without any (the priors answer then). */
static int dae_vector(const hr_model_t *m, long user_idx,
                      const hr_history_t *recent, hr_model_work_t *w,
                      float *out) {
  size_t d = (size_t)m->dim, nrec = recent ? recent->n : 0, nhist = 0;
  size_t n = 0, tsize = 16;
  const int32_t *hist = user_idx >= 0
                            ? hr_model_user_history(m, user_idx, &nhist)
                            : NULL;
  int32_t *list, *set;
  double norm = 0, wk = 1;

  while (tsize < 2 * (nrec + nhist + 1))
    tsize <<= 1;
  list = work_bytes(w, (nrec + nhist + 1) * sizeof(*list) +
                           tsize * sizeof(*set));
  if (list == NULL)
    return HR_ENOMEM;
  set = list + nrec + nhist + 1;
  memset(set, 0xff, tsize * sizeof(*set));
  for (size_t j = 0; j < nrec; j++)
    if (seen_add(set, tsize - 1, (int32_t)recent->items[j]))
      list[n++] = (int32_t)recent->items[j];
  for (size_t j = nhist; j-- > 0;)
    if (seen_add(set, tsize - 1, hist[j]))
      list[n++] = hist[j];
  memset(out, 0, d * sizeof(*out));
  if (n == 0)
    return 0;
  for (size_t k = 0; k < n; k++, wk *= m->ease_decay)
    norm += wk * wk;
  memcpy(out, m->dae_enc_bias, d * sizeof(*out));
  wk = 1 / sqrt(norm);
  for (size_t k = 0; k < n; k++, wk *= m->ease_decay)
    cblas_saxpy((int)d, (float)wk, m->dae_enc + (size_t)list[k] * d, 1, out,
                1);
  for (size_t k = 0; k < d; k++)
    out[k] = tanhf(out[k]);
  return 0;
}

int hr_model_user_base(const hr_model_t *m, long user_idx,
                       const hr_history_t *recent, hr_model_work_t *w,
                       float *base) {
  int rc;

  if ((rc = check_args(m, user_idx, recent)) != 0)
    return rc;
  if (m->ease) {
    ease_vector(m, user_idx, recent, base);
    return 0;
  }
  if (m->dae_enc != NULL)
    return dae_vector(m, user_idx, recent, w, base);
  if (m->hist_ts == NULL)
    return ials_vector(m, m->item_emb, m->dim, user_idx, recent, w, base);
  if ((rc = seq_base(m, user_idx, recent, w, base)) != 0 || m->lt_dim == 0)
    return rc;
  /* [sequential | weight * long-term]: scores add up over item_emb's
   * [sequential | long-term] rows */
  float *x = base + m->seq_width;
  if ((rc = ials_vector(m, m->lt_item, m->lt_dim, user_idx, recent, w, x)) !=
      0)
    return rc;
  for (int k = 0; k < m->lt_dim; k++)
    x[k] *= m->lt_weight;
  return 0;
}

int hr_model_request_terms(const hr_model_t *m) { return m->hist_ts != NULL; }

int hr__model_request_table(hr_model_t *m) {
  size_t d = (size_t)m->seq.d, wd = (size_t)m->seq_width;
  size_t n_gap = (size_t)(m->seq.n_gap > 0 ? m->seq.n_gap : 0), rows = 0;
  size_t B;
  float *basis;

  if (m->seq_ctx != NULL && m->n_cfields > 0)
    rows = m->coff[m->n_cfields - 1] + hr_idmap_size(m->cvals[m->n_cfields - 1]);
  B = n_gap + rows;
  if (B == 0 || m->n_items == 0)
    return 0;
  /* basis [wd x B]: column b < n_gap is gap bucket b's embedding of every
   * member side by side, column n_gap + r the context row r */
  basis = malloc(sizeof(float) * wd * B);
  m->req_proj = malloc(sizeof(float) * m->n_items * B);
  if (basis == NULL || m->req_proj == NULL) {
    free(basis);
    free(m->req_proj);
    m->req_proj = NULL;
    return HR_ENOMEM;
  }
  for (size_t b = 0; b < n_gap; b++)
    for (int k = 0; k < m->seq_members; k++)
      for (size_t c = 0; c < d; c++)
        basis[((size_t)k * d + c) * B + b] = m->seqp[k].gq[b * d + c];
  for (size_t r = 0; r < rows; r++)
    for (size_t c = 0; c < wd; c++)
      basis[c * B + n_gap + r] = m->seq_ctx[r * wd + c];
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m->n_items,
              (int)B, (int)wd, 1.0f, m->item_emb, m->dim, basis, (int)B, 0.0f,
              m->req_proj, (int)B);
  free(basis);
  m->req_cols = B;
  return 0;
}

const float *hr_model_request_table(const hr_model_t *m, size_t *cols) {
  *cols = m->req_cols;
  return m->req_proj;
}

size_t hr_model_request_cols(const hr_model_t *m, long user_idx,
                             const hr_history_t *recent, uint32_t *cols) {
  int64_t newest;
  size_t n = 0, n_gap = (size_t)(m->seq.n_gap > 0 ? m->seq.n_gap : 0);
  if (m->req_proj == NULL || !newest_item(m, user_idx, recent, &newest))
    return 0; /* no history: no request terms (seq_finish) */
  if (n_gap > 0) { /* as hr_seq_user_out adds it */
    int g = hr_seq_request_gap(&newest, 1, recent ? recent->now : 0);
    if (g >= 0 && (size_t)g < n_gap)
      cols[n++] = (uint32_t)g;
  }
  for (size_t k = 0; m->seq_ctx != NULL && recent != NULL && k < recent->n_ctx;
       k++) {
    long row = seq_ctx_row(m, recent, k);
    if (row >= 0)
      cols[n++] = (uint32_t)(n_gap + (size_t)row);
  }
  return n;
}

void hr_model_user_finish(const hr_model_t *m, long user_idx,
                          const hr_history_t *recent, const float *base,
                          float *out) {
  if (m->hist_ts == NULL) {
    if (out != base)
      memcpy(out, base, sizeof(float) * (size_t)m->dim);
    return;
  }
  seq_finish(m, user_idx, recent, base, out);
  if (m->lt_dim > 0 && out != base)
    memcpy(out + m->seq_width, base + m->seq_width,
           sizeof(float) * (size_t)m->lt_dim);
}

int hr_model_user_vector(const hr_model_t *m, long user_idx,
                         const hr_history_t *recent, float *out) {
  hr_model_work_t w = {0};
  int rc = hr_model_user_base(m, user_idx, recent, &w, out);
  if (rc == 0)
    hr_model_user_finish(m, user_idx, recent, out, out);
  hr_model_work_free(&w);
  return rc;
}

void hr_model_score_items(const hr_model_t *m, const float *u, float *out) {
  if (m->n_items == 0)
    return;
  memcpy(out, m->item_prior, m->n_items * sizeof(*out));
  cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)m->n_items, m->dim, 1.0f,
              m->item_emb, m->dim, u, 1, 1.0f, out, 1);
}

/* <u, x> over d floats with 8 independent sums (vectorised by the
 * compiler): for one row at a time, cheaper than a BLAS call. */
static inline float dot8(const float *u, const float *x, size_t d) {
  float a8[8] = {0, 0, 0, 0, 0, 0, 0, 0}, acc = 0;
  size_t t = 0;
  for (; t + 8 <= d; t += 8)
    for (int l = 0; l < 8; l++)
      a8[l] += u[t + l] * x[t + l];
  for (; t < d; t++)
    acc += u[t] * x[t];
  for (int l = 0; l < 8; l++)
    acc += a8[l];
  return acc;
}

/* Every cache line of row id: candidates are rows scattered over the
 * table, each a new stream for the hardware prefetcher. */
static inline void prefetch_row(const hr_model_t *m, uint32_t id) {
  const char *p = (const char *)(m->item_emb + (size_t)id * (size_t)m->dim);
  for (size_t b = 0; b < (size_t)m->dim * sizeof(float); b += 64)
    __builtin_prefetch(p + b, 0, 0);
  __builtin_prefetch(m->item_prior + id, 0, 0);
}

void hr_model_score_subset(const hr_model_t *m, const float *u,
                           const uint32_t *ids, size_t n, float *out) {
  size_t d = (size_t)m->dim, ahead = 4;
  for (size_t j = 0; j < n && j < ahead; j++)
    prefetch_row(m, ids[j]);
  for (size_t j = 0; j < n; j++) {
    if (j + ahead < n)
      prefetch_row(m, ids[j + ahead]);
    out[j] = dot8(u, m->item_emb + (size_t)ids[j] * d, d) +
             m->item_prior[ids[j]];
  }
}

const float *hr_model_item_prior(const hr_model_t *m) { return m->item_prior; }

size_t hr_model_ann_search(const hr_model_t *m, hr_ann_scratch_t *s,
                           const float *u, size_t k, int ef,
                           const uint32_t *excl, size_t n_excl,
                           const uint64_t *allow, size_t n_allow,
                           uint32_t *ids) {
  if (m->ann == NULL)
    return 0;
  return hr_ann_search_filter(m->ann, s, u, k, ef, excl, n_excl, allow,
                              n_allow, ids, NULL);
}

static inline int bit_test(const uint64_t *b, uint32_t i) {
  return (int)((b[i >> 6] >> (i & 63)) & 1u);
}

size_t hr_model_retrieve(const hr_model_t *m, hr_ann_scratch_t *s,
                         const float *u, size_t k, int ef,
                         const uint32_t *excl, size_t n_excl, uint64_t *skip,
                         const uint64_t *allow, size_t n_allow,
                         uint32_t *ids, hr_scored_t *top, size_t *scanned) {
  size_t got, d = (size_t)m->dim, n_scan = 0;
  hr_topk_t t;
  double un = 0;

  if (scanned)
    *scanned = 0;
  if (m->ann == NULL || k == 0)
    return 0;
  got = ef > 0 ? hr_ann_search_filter(m->ann, s, u, k, ef, excl, n_excl,
                                      allow, n_allow, ids, NULL)
               : 0; /* the norm pass alone */
  hr_topk_init(&t, top, k);
  for (size_t j = 0; j < got; j++) { /* marked so the pass skips them */
    hr_topk_push(&t, (long)ids[j],
                 dot8(u, m->item_emb + (size_t)ids[j] * d, d));
    skip[ids[j] >> 6] |= (uint64_t)1 << (ids[j] & 63);
  }
  for (size_t j = 0; j < d; j++)
    un += (double)u[j] * u[j];
  un = sqrt(un) * (1 + 1e-5); /* slack for float rounding of the bound */
  for (size_t r = 0; r < m->n_items; r++) {
    uint32_t i = m->by_norm[r];
    if (t.n == k && (double)m->norm_sorted[r] * un < (double)t.h[0].score)
      break; /* no item from here on can enter the top k */
    if ((allow != NULL && !bit_test(allow, i)) || bit_test(skip, i))
      continue;
    hr_topk_push(&t, (long)i,
                 dot8(u, r < m->n_head ? m->head + r * d
                                       : m->item_emb + (size_t)i * d,
                      d));
    n_scan++;
  }
  for (size_t j = 0; j < got; j++)
    skip[ids[j] >> 6] &= ~((uint64_t)1 << (ids[j] & 63));
  if (scanned)
    *scanned = n_scan;
  return hr_topk_finish(&t);
}

const float *hr_model_item_vectors(const hr_model_t *m) { return m->item_emb; }

/* "3-6 min", "2-4 h", "over 5 d": the span of a gap bucket b >= 1, which
 * holds gaps of 2^(b-1) - 1 to 2^b - 2 whole minutes (hr_seq_gap_bucket). */
static void gap_label(int b, char *out, size_t n) {
  double lo = (double)((1ull << (b - 1)) - 1), hi = (double)((1ull << b) - 1);
  const char *u = "min";
  double div = 1;
  if (b <= 1) {
    snprintf(out, n, "under 1 min");
    return;
  }
  if (lo >= 2880) {
    u = "d";
    div = 1440;
  } else if (lo >= 120) {
    u = "h";
    div = 60;
  }
  if (b >= HR_SEQ_GAPS - 1)
    snprintf(out, n, "over %.0f %s", lo / div, u);
  else
    snprintf(out, n, "%.0f-%.0f %s", lo / div, hi / div, u);
}

/* Keep out[0..*n) sorted by |effect|, at most max: insert e. */
static void effect_insert(hr_ctx_effect_t *out, size_t *n, size_t max,
                          const hr_ctx_effect_t *e) {
  size_t q;
  if (*n == max && fabsf(e->effect) <= fabsf(out[max - 1].effect))
    return;
  q = *n < max ? (*n)++ : max - 1;
  out[q] = *e;
  for (; q > 0 && fabsf(out[q].effect) > fabsf(out[q - 1].effect); q--) {
    hr_ctx_effect_t t = out[q];
    out[q] = out[q - 1];
    out[q - 1] = t;
  }
}

size_t hr_model_explain_context(const hr_model_t *m, long user_idx,
                                const hr_history_t *recent, size_t item,
                                hr_ctx_effect_t *out, size_t max) {
  int64_t last = -1;
  size_t d = (size_t)m->seq.d, wd = (size_t)m->seq_width, nh = 0, n = 0;
  const float *y;
  hr_ctx_effect_t e;

  if (m->hist_ts == NULL || max == 0 || item >= m->n_items || recent == NULL)
    return 0;
  y = m->item_emb + item * (size_t)m->dim; /* its members' parts */
  if (recent->n > 0)
    last = recent->ts ? recent->ts[0] : -1;
  else if (user_idx >= 0 && (size_t)user_idx < m->n_users) {
    hr_model_user_history(m, user_idx, &nh);
    if (nh > 0)
      last = m->hist_ts[m->hist_ptr[user_idx] + nh - 1];
  }
  /* the time since the newest event (unknown: the neutral bucket 0) */
  if (m->seq.n_gap > 0 && last > 0 && recent->now > 0) {
    int b = hr_seq_gap_bucket(recent->now - last, 1);
    e.effect = 0;
    for (int k = 0; k < m->seq_members; k++) {
      const float *g = m->seqp[k].gq + (size_t)b * d, *g0 = m->seqp[k].gq,
                  *yk = y + (size_t)k * d;
      for (size_t c = 0; c < d; c++)
        e.effect += (g[c] - g0[c]) * yk[c];
    }
    e.feature = "since_last_event";
    gap_label(b, e.value, sizeof(e.value));
    effect_insert(out, &n, max, &e);
  }
  /* each context value's vector (the neutral context adds none); as in
   * seq_user_vector, only for a user with a history */
  if (m->seq_ctx != NULL && (recent->n > 0 || nh > 0))
    for (size_t k = 0; k < recent->n_ctx; k++) {
      long row = seq_ctx_row(m, recent, k);
      if (row < 0)
        continue;
      const float *cr = m->seq_ctx + (size_t)row * wd;
      e.effect = 0;
      for (size_t c = 0; c < wd; c++)
        e.effect += cr[c] * y[c];
      e.feature = recent->ctx_names[k];
      snprintf(e.value, sizeof(e.value), "%s", recent->ctx_vals[k]);
      effect_insert(out, &n, max, &e);
    }
  return n;
}

/* The row of field `name` = `val` in ctx_lift, or -1. */
static long cprior_row(const hr_model_t *m, const char *name,
                       const char *val) {
  for (size_t f = 0; f < m->n_cfields; f++)
    if (strcmp(m->cfield[f], name) == 0) {
      long v = hr_idmap_find(m->cvals[f], val, strlen(val));
      return v < 0 ? -1 : (long)m->coff[f] + v;
    }
  return -1;
}

size_t hr_model_context_scores(const hr_model_t *m, const char *const *names,
                               const char *const *vals, size_t n,
                               float *out) {
  size_t used = 0, ni = m->n_items;
  if (m->n_cfields == 0)
    return 0;
  for (size_t k = 0; k < n; k++) {
    long row = vals[k] ? cprior_row(m, names[k], vals[k]) : -1;
    if (row < 0)
      continue;
    if (used++ == 0 && out != NULL)
      memcpy(out, m->pop_log, ni * sizeof(*out));
    if (out == NULL)
      continue;
    const float *l = m->ctx_lift + (size_t)row * ni;
    for (size_t i = 0; i < ni; i++)
      out[i] += l[i];
  }
  return used;
}

size_t hr_model_explain_prior(const hr_model_t *m, const char *const *names,
                              const char *const *vals, size_t n, size_t item,
                              hr_ctx_effect_t *out, size_t max) {
  size_t k = 0;
  hr_ctx_effect_t e;
  if (m->n_cfields == 0 || item >= m->n_items || max == 0)
    return 0;
  for (size_t f = 0; f < n; f++) {
    long row = vals[f] ? cprior_row(m, names[f], vals[f]) : -1;
    if (row < 0)
      continue;
    e.feature = names[f];
    snprintf(e.value, sizeof(e.value), "%s", vals[f]);
    e.effect = m->ctx_lift[(size_t)row * m->n_items + item];
    effect_insert(out, &k, max, &e);
  }
  return k;
}

size_t hr_model_n_context_fields(const hr_model_t *m) { return m->n_cfields; }

const char *hr_model_context_field(const hr_model_t *m, size_t f) {
  return f < m->n_cfields ? m->cfield[f] : NULL;
}

int hr_model_context_features(const hr_model_t *m) {
  return m->seq_ctx != NULL;
}

/* ------------------------------------------------------- smoke test */

int hr_model_smoke_test(const hr_model_t *m, hr_error_t *err) {
  size_t ni = m->n_items, d = (size_t)m->dim, k = ni < 10 ? ni : 10;
  float *u = malloc(sizeof(float) * (d ? d : 1)),
        *sc = malloc(sizeof(float) * (ni ? ni : 1));
  uint32_t *ids = malloc(sizeof(uint32_t) * (k ? k : 1));
  hr_ann_scratch_t *s = NULL;
  long item0 = 0;
  int64_t now = (int64_t)time(NULL), ts = now - 60;
  int rc = 0;

  if (u == NULL || sc == NULL || ids == NULL) {
    rc = hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
    goto out;
  }
  /* three canned requests: the first known user as stored, a newcomer
   * with one event a minute old, and nobody at all */
  for (int q = 0; q < 3 && rc == 0; q++) {
    hr_history_t h = {&item0, 1, &ts, now, NULL, NULL, 0};
    long user = q == 0 && m->n_users > 0 ? 0 : -1;
    if (q == 0 && m->n_users == 0)
      continue;
    if (ni == 0 || hr_model_user_vector(m, user, q == 1 ? &h : NULL, u) != 0) {
      rc = hr_error_set(err, HR_EFORMAT, NULL, "smoke test: the canned "
                        "request %d could not be embedded", q + 1);
      break;
    }
    for (size_t c = 0; c < d; c++)
      if (!isfinite(u[c])) {
        rc = hr_error_set(err, HR_EFORMAT, NULL, "smoke test: the canned "
                          "request %d's user vector is not finite", q + 1);
        break;
      }
    if (rc != 0)
      break;
    hr_model_score_items(m, u, sc);
    for (size_t i = 0; i < ni; i++)
      if (!isfinite(sc[i])) {
        rc = hr_error_set(err, HR_EFORMAT, NULL, "smoke test: the canned "
                          "request %d scores item %zu as %g", q + 1, i,
                          (double)sc[i]);
        break;
      }
    if (rc == 0 && m->ann != NULL) { /* the index answers, with real ids */
      size_t got;
      if (s == NULL && (s = hr_ann_scratch_new(m->ann)) == NULL) {
        rc = hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
        break;
      }
      got = hr_model_ann_search(m, s, u, k, 0, NULL, 0, NULL, 0, ids);
      if (got == 0 && ni > 0)
        rc = hr_error_set(err, HR_EFORMAT, "index.bin", "smoke test: the "
                          "index returned no item");
      for (size_t j = 0; j < got && rc == 0; j++)
        if (ids[j] >= ni)
          rc = hr_error_set(err, HR_EFORMAT, "index.bin", "smoke test: the "
                            "index returned item %u of %zu", ids[j], ni);
    }
  }
out:
  hr_ann_scratch_free(s);
  free(u);
  free(sc);
  free(ids);
  return rc;
}
