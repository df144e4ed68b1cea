/* ctx.c -- protocol `ctx80` / `ctx80-rc` of ../shared/data/CONTEXT-PROTOCOL.md:
 * reading a ratings.csv in the shared layout, the seeded split, the feature
 * columns, the cases with their exclusions, ranking and the metrics, so
 * that `hyperrec-train eval --data PATH --protocol ctx80` reproduces the
 * judge's cases and numbers (evaluate_ctx.py). */
#include "hr/lab.h"

#include "../train/util.h"

#include "hr/nn.h"

#include <cblas.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LINE (1 << 16)

void openblas_set_num_threads(int n);

static const char *const never_features[] = {"end_emotion", "dominant_emotion",
                                             "interaction", NULL};

static int is_token(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
          s[i] == '_'))
      return 0;
  return 1;
}

void hr_ctx_free(hr_ctxdata_t *d) {
  hr_idmap_free(d->users);
  hr_idmap_free(d->items);
  free(d->u);
  free(d->i);
  free(d->rating);
  free(d->v);
  free(d->part);
  for (size_t c = 0; c < d->n_cols; c++) {
    free(d->col[c]);
    hr_idmap_free(d->vals[c]);
  }
  memset(d, 0, sizeof(*d));
}

static int grow(hr_ctxdata_t *d, size_t *cap) {
  size_t nc = *cap ? *cap * 2 : 4096;
  int32_t *u = realloc(d->u, nc * sizeof(*u));
  if (u)
    d->u = u;
  int32_t *i = realloc(d->i, nc * sizeof(*i));
  if (i)
    d->i = i;
  float *r = realloc(d->rating, nc * sizeof(*r));
  if (r)
    d->rating = r;
  int32_t *v = realloc(d->v, nc * (d->n_cols ? d->n_cols : 1) * sizeof(*v));
  if (v)
    d->v = v;
  if (!u || !i || !r || !v)
    return HR_ENOMEM;
  *cap = nc;
  return 0;
}

/* Columns that are item attributes copied onto rating rows (section 4). */
static void find_item_attributes(hr_ctxdata_t *d) {
  size_t ni = hr_idmap_size(d->items);
  int32_t *first = malloc(sizeof(int32_t) * (ni ? ni : 1));
  if (first == NULL)
    return; /* conservative: keep the column */
  for (size_t c = 0; c < d->n_cols; c++) {
    int repeated = 0, varies = 0;
    for (size_t k = 0; k < ni; k++)
      first[k] = -1;
    for (size_t r = 0; r < d->n && !varies; r++) {
      int32_t v = d->v[r * d->n_cols + c];
      if (v < 0)
        continue;
      if (first[d->i[r]] < 0) {
        first[d->i[r]] = v;
        continue;
      }
      repeated = 1;
      varies = first[d->i[r]] != v;
    }
    if (repeated && !varies)
      d->is_feature[c] = 0;
  }
  free(first);
}

/* The header's context columns (after user_id,item_id,rating). */
static int read_header(const char *path, char *line, hr_ctxdata_t *d,
                       hr_error_t *err) {
  if (strncmp(line, "user_id,item_id,rating", 22) != 0)
    return hr_error_set(err, HR_EFORMAT, NULL, "%s:1: header must start "
                        "with user_id,item_id,rating", path);
  line[strcspn(line, "\r\n")] = '\0';
  for (char *p = line + 22; *p == ',';) {
    char *q = strchr(p + 1, ',');
    size_t n = q ? (size_t)(q - p - 1) : strlen(p + 1);
    if (d->n_cols >= HR_CTX_MAX_COLS || n == 0 || !is_token(p + 1, n))
      return hr_error_set(err, HR_EFORMAT, NULL, "%s:1: context column %zu "
                          "is empty, not a lowercase token, or past the %d "
                          "supported", path, d->n_cols + 1, HR_CTX_MAX_COLS);
    d->col[d->n_cols] = strndup(p + 1, n);
    d->vals[d->n_cols] = hr_idmap_new(16);
    if (!d->col[d->n_cols] || !d->vals[d->n_cols])
      return hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
    d->is_feature[d->n_cols] = 1;
    for (const char *const *x = never_features; *x; x++)
      if (strcmp(*x, d->col[d->n_cols]) == 0)
        d->is_feature[d->n_cols] = 0;
    d->n_cols++;
    if (q == NULL)
      break;
    p = q;
  }
  return 0;
}

/* Data line ln (its newline still on) into row d->n. */
static int read_row(const char *path, size_t ln, char *line, size_t *cap,
                    hr_ctxdata_t *d, hr_error_t *err) {
  char *fld[3 + HR_CTX_MAX_COLS], *p = line, *end;
  size_t nf = 0, len = strlen(line);
  if (len == 0 || line[len - 1] != '\n')
    return hr_error_set(err, HR_EFORMAT, NULL, "%s:%zu: line too long or "
                        "without its newline", path, ln);
  line[len - 1] = '\0';
  for (;;) {
    if (nf == 3 + d->n_cols) {
      nf++;
      break;
    }
    fld[nf++] = p;
    char *c = strchr(p, ',');
    if (c == NULL)
      break;
    *c = '\0';
    p = c + 1;
  }
  if (nf != 3 + d->n_cols || fld[0][0] == '\0' || fld[1][0] == '\0')
    return hr_error_set(err, HR_EFORMAT, NULL, "%s:%zu: expected %zu fields "
                        "with a user and an item", path, ln, 3 + d->n_cols);
  if (d->n == *cap && grow(d, cap) != 0)
    return hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
  errno = 0;
  double r = strtod(fld[2], &end);
  if (end == fld[2] || *end != '\0' || errno != 0 || !isfinite(r))
    return hr_error_set(err, HR_EFORMAT, NULL, "%s:%zu: rating \"%.20s\" is "
                        "not a number", path, ln, fld[2]);
  long u = hr_idmap_add(d->users, fld[0], strlen(fld[0]), NULL),
       it = hr_idmap_add(d->items, fld[1], strlen(fld[1]), NULL);
  if (u < 0 || it < 0)
    return hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
  d->u[d->n] = (int32_t)u;
  d->i[d->n] = (int32_t)it;
  d->rating[d->n] = (float)r;
  for (size_t c = 0; c < d->n_cols; c++) {
    const char *v = fld[3 + c];
    size_t n = strlen(v);
    long id = -1;
    if (!is_token(v, n))
      return hr_error_set(err, HR_EFORMAT, NULL, "%s:%zu: context value "
                          "\"%.20s\" is not a lowercase token", path, ln, v);
    if (n > 0 && (id = hr_idmap_add(d->vals[c], v, n, NULL)) < 0)
      return hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
    d->v[d->n * d->n_cols + c] = (int32_t)id;
  }
  d->n++;
  return 0;
}

/* The split (section 2): splitmix64 from 42, Fisher-Yates; a fifth test,
 * a tenth of the rest valid. */
static int split_rows(hr_ctxdata_t *d) {
  size_t *order = malloc(sizeof(size_t) * d->n);
  uint64_t st = 42;
  size_t n_test = d->n / 5, n_valid = (d->n - n_test) / 10;
  d->part = malloc(d->n);
  if (order == NULL || d->part == NULL) {
    free(order);
    return HR_ENOMEM;
  }
  for (size_t k = 0; k < d->n; k++)
    order[k] = k;
  for (size_t k = d->n - 1; k >= 1; k--) {
    size_t j = (size_t)(hr__sm64(&st) % (uint64_t)(k + 1)), t = order[k];
    order[k] = order[j];
    order[j] = t;
  }
  for (size_t pos = 0; pos < d->n; pos++)
    d->part[order[pos]] = pos < n_test ? HR_CTX_TEST
                          : pos < n_test + n_valid ? HR_CTX_VALID
                                                   : HR_CTX_FIT;
  free(order);
  return 0;
}

int hr_ctx_read(const char *path, hr_ctxdata_t *d, hr_error_t *err) {
  FILE *f = fopen(path, "r");
  char *line = malloc(MAX_LINE);
  size_t cap = 0, ln = 1;
  int rc = 0;

  memset(d, 0, sizeof(*d));
  if (f == NULL || line == NULL) {
    free(line);
    if (f)
      fclose(f);
    return hr_error_set(err, HR_EIO, NULL, "%s: %s", path,
                        f ? "out of memory" : strerror(errno));
  }
  d->users = hr_idmap_new(1024);
  d->items = hr_idmap_new(1024);
  if (!d->users || !d->items) {
    rc = hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
    goto out;
  }
  if (fgets(line, MAX_LINE, f) == NULL)
    rc = hr_error_set(err, HR_EFORMAT, NULL, "%s:1: header must start with "
                      "user_id,item_id,rating", path);
  else
    rc = read_header(path, line, d, err);
  while (rc == 0 && fgets(line, MAX_LINE, f) != NULL)
    rc = read_row(path, ++ln, line, &cap, d, err);
  if (rc == 0 && d->n < 5)
    rc = hr_error_set(err, HR_EFORMAT, NULL, "%s: only %zu data rows", path,
                      d->n);
  if (rc != 0)
    goto out;
  find_item_attributes(d);
  if ((rc = split_rows(d)) != 0)
    hr_error_set(err, rc, NULL, "out of memory");
out:
  free(line);
  fclose(f);
  if (rc != 0)
    hr_ctx_free(d);
  return rc;
}

/* ------------------------------------------------------------ evaluation */

/* Item order for ties (section 6): numeric when every id is a decimal
 * integer, else byte-wise. */
static const hr_idmap_t *g_items;
static int g_numeric;

static int cmp_item_id(const void *a, const void *b) {
  const char *x = hr_idmap_str(g_items, *(const uint32_t *)a),
             *y = hr_idmap_str(g_items, *(const uint32_t *)b);
  if (g_numeric) {
    size_t lx, ly;
    while (*x == '0' && x[1] != '\0')
      x++;
    while (*y == '0' && y[1] != '\0')
      y++;
    lx = strlen(x);
    ly = strlen(y);
    if (lx != ly)
      return lx < ly ? -1 : 1;
    int c = strcmp(x, y);
    if (c != 0)
      return c;
    x = hr_idmap_str(g_items, *(const uint32_t *)a);
    y = hr_idmap_str(g_items, *(const uint32_t *)b);
  }
  return strcmp(x, y);
}

/* The exclusion key of a row: its user (ctx80), or its user and feature
 * values (ctx80-rc), as bytes. */
static size_t row_key(const hr_ctxdata_t *d, size_t r, int repeat,
                      char *buf) {
  size_t n = 0;
  memcpy(buf, &d->u[r], sizeof(int32_t));
  n += sizeof(int32_t);
  if (repeat)
    for (size_t c = 0; c < d->n_cols; c++)
      if (d->is_feature[c]) {
        memcpy(buf + n, &d->v[r * d->n_cols + c], sizeof(int32_t));
        n += sizeof(int32_t);
      }
  return n;
}

typedef struct {
  int32_t key, item;
} pair_t;

static int cmp_pair(const void *a, const void *b) {
  const pair_t *x = a, *y = b;
  if (x->key != y->key)
    return x->key < y->key ? -1 : 1;
  return (x->item > y->item) - (x->item < y->item);
}

/* ----------------------------------------------- the context two-tower */

/* score(user, ctx, item) = <U[user] + sum_v C[v], V[item]> + b[item]: the
 * user tower adds one vector per known feature value of the request's
 * context to the user's own; the item tower is the item's vector. Trained
 * on the relevant training rows with a full softmax over the catalogue,
 * AdamW, one thread, deterministic for a seed. With no_context the C part
 * is left out everywhere (the protocol's ablation). */
typedef struct {
  int d, nu, ni, nc;
  size_t coff[HR_CTX_MAX_COLS]; /* offset of each feature column's values */
  float *w;                     /* U | V | C | b */
  float *U, *V, *C, *b;
  int use_ctx;
} tt_t;

static void tt_user(const tt_t *m, const hr_ctxdata_t *d, size_t r,
                    float um, float *u) {
  const float *uv = m->U + (size_t)d->u[r] * (size_t)m->d;
  for (int k = 0; k < m->d; k++)
    u[k] = um * uv[k];
  if (!m->use_ctx)
    return;
  for (size_t c = 0; c < d->n_cols; c++) {
    int32_t v = d->v[r * d->n_cols + c];
    if (!d->is_feature[c] || v < 0)
      continue;
    const float *cv = m->C + (m->coff[c] + (size_t)v) * (size_t)m->d;
    for (int k = 0; k < m->d; k++)
      u[k] += cv[k];
  }
}

static void tt_score(const tt_t *m, const hr_ctxdata_t *d, size_t r,
                     float *u, float *score) {
  tt_user(m, d, r, 1.0f, u);
  for (int i = 0; i < m->ni; i++) {
    const float *v = m->V + (size_t)i * (size_t)m->d;
    float s = m->b[i];
    for (int k = 0; k < m->d; k++)
      s += u[k] * v[k];
    score[i] = s;
  }
}

static int tt_fit(tt_t *m, const hr_ctxdata_t *d, const unsigned char *fitrow,
                  double threshold, const hr_ctx_eval_opts_t *o) {
  size_t n = 0, np, dd;
  size_t *rows = malloc(sizeof(size_t) * d->n);
  float *g = NULL, *m1 = NULL, *m2 = NULL, *logit = NULL, *uu = NULL;
  int32_t *tg = NULL;
  float um[64];
  uint64_t rng = o->seed * 0x9E3779B97F4A7C15ull + 11;
  const int B = 64;
  int rc = 0;

  m->d = o->dim;
  dd = (size_t)m->d;
  m->nu = (int)hr_idmap_size(d->users);
  m->ni = (int)hr_idmap_size(d->items);
  m->nc = 0;
  for (size_t c = 0; c < d->n_cols; c++) {
    m->coff[c] = (size_t)m->nc;
    m->nc += (int)hr_idmap_size(d->vals[c]);
  }
  m->use_ctx = !o->no_context;
  np = ((size_t)m->nu + (size_t)m->ni + (size_t)m->nc) * dd + (size_t)m->ni;
  m->w = calloc(np, sizeof(float));
  g = calloc(np, sizeof(float));
  m1 = calloc(np, sizeof(float));
  m2 = calloc(np, sizeof(float));
  logit = malloc(sizeof(float) * (size_t)B * (size_t)m->ni);
  uu = malloc(sizeof(float) * (size_t)B * dd);
  tg = malloc(sizeof(int32_t) * (size_t)B);
  if (!rows || !m->w || !g || !m1 || !m2 || !logit || !uu || !tg) {
    rc = HR_ENOMEM;
    goto out;
  }
  m->U = m->w;
  m->V = m->U + (size_t)m->nu * dd;
  m->C = m->V + (size_t)m->ni * dd;
  m->b = m->C + (size_t)m->nc * dd;
  for (size_t k = 0; k < (size_t)(m->nu + m->ni) * dd; k++)
    m->w[k] = 0.1f * (float)hr__gauss(&rng);
  for (size_t r = 0; r < d->n; r++)
    if (fitrow[r] && d->rating[r] >= threshold) {
      rows[n++] = r;
      m->b[d->i[r]] += 1.0f;
    }
  /* The item bias starts at log popularity: the model begins as
   * MostPopular and learns what the user and the context change. */
  for (int i = 0; i < m->ni; i++)
    m->b[i] = logf(m->b[i] + 1.0f);
  hr_nn_adam_t adam = {o->lr, 0.9f, 0.999f, 1e-8f, o->wd};
  long step = 0;
  for (int ep = 0; ep < o->epochs; ep++) {
    for (size_t k = n; k > 1; k--) {
      size_t j = (size_t)(hr__sm64(&rng) % k), t = rows[k - 1];
      rows[k - 1] = rows[j];
      rows[j] = t;
    }
    for (size_t b0 = 0; b0 < n; b0 += (size_t)B) {
      size_t nb = n - b0 < (size_t)B ? n - b0 : (size_t)B;
      for (size_t k = 0; k < nb; k++) {
        /* user dropout: the bias and the context must rank on their own
         * too; the user's vector adds what is personal */
        um[k] = o->user_dropout > 0
                    ? (hr__unif(&rng) < o->user_dropout
                           ? 0.0f
                           : 1.0f / (1.0f - o->user_dropout))
                    : 1.0f;
        tt_user(m, d, rows[b0 + k], um[k], uu + k * dd);
        tg[k] = d->i[rows[b0 + k]];
        for (int i = 0; i < m->ni; i++)
          logit[k * (size_t)m->ni + (size_t)i] = m->b[i];
      }
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, m->ni,
                  m->d, 1.0f, uu, m->d, m->V, m->d, 1.0f, logit, m->ni);
      hr_nn_softmax_xent(logit, nb, m->ni, tg, 1.0f / (float)nb, logit);
      memset(g, 0, sizeof(float) * np);
      float *gU = g, *gV = gU + (size_t)m->nu * dd,
            *gC = gV + (size_t)m->ni * dd, *gb = gC + (size_t)m->nc * dd;
      /* dV += dlogit^T u, du = dlogit V, db += colsum */
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m->ni, m->d,
                  (int)nb, 1.0f, logit, m->ni, uu, m->d, 1.0f, gV, m->d);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nb, m->d,
                  m->ni, 1.0f, logit, m->ni, m->V, m->d, 0.0f, uu, m->d);
      for (size_t k = 0; k < nb; k++) {
        size_t r = rows[b0 + k];
        for (int i = 0; i < m->ni; i++)
          gb[i] += logit[k * (size_t)m->ni + (size_t)i];
        float *gu = gU + (size_t)d->u[r] * dd;
        for (size_t q = 0; q < dd; q++)
          gu[q] += um[k] * uu[k * dd + q];
        if (!m->use_ctx)
          continue;
        for (size_t c = 0; c < d->n_cols; c++) {
          int32_t v = d->v[r * d->n_cols + c];
          if (!d->is_feature[c] || v < 0)
            continue;
          float *gc = gC + (m->coff[c] + (size_t)v) * dd;
          for (size_t q = 0; q < dd; q++)
            gc[q] += uu[k * dd + q];
        }
      }
      hr_nn_adam_step(&adam, ++step, m->w, g, m1, m2, np);
    }
  }
out:
  free(rows);
  free(g);
  free(m1);
  free(m2);
  free(logit);
  free(uu);
  free(tg);
  return rc;
}


/* ------------------------------------------ the served sequential model */

/* The sequential model with context features on the fit rows that are
 * relevant (rating >= threshold), each user's rows in file order (the sets
 * have no timestamps: the time features are off); its context features
 * are the feature columns' values (none with no_context). */
typedef struct {
  hr_seq_fit_t fit;
  hr_ials_t lt;      /* the long-term part (weight w > 0) */
  float w;
  float *lts;        /* n_items scratch */
  hr_csr_t h;
  size_t F, *off;    /* feature columns and their first row */
  int32_t *cols;     /* F column indices */
  float *buf;
  hr_item_tokens_t tok; /* --items: the item tower's attribute tokens */
  float *lt_rows;    /* with tokens: the long-term rows, new items' from
                        their tokens (as served) */
  int lt_only;       /* --model ials: the factor part alone, weight 1 */
} sq_t;

static void sq_free(sq_t *m) {
  hr_seq_fit_free(&m->fit);
  hr_ials_free(&m->lt);
  free(m->lts);
  hr_csr_free(&m->h);
  free(m->off);
  free(m->cols);
  free(m->buf);
  hr_item_tokens_free(&m->tok);
  free(m->lt_rows);
}

/* Row r's context rows of the model (one per feature column, -1 none). */
static void sq_rows(const sq_t *m, const hr_ctxdata_t *d, size_t r,
                    int32_t *out) {
  for (size_t f = 0; f < m->F; f++) {
    int32_t v = d->v[r * d->n_cols + (size_t)m->cols[f]];
    out[f] = v < 0 ? -1 : (int32_t)(m->off[f] + (size_t)v);
  }
}

static int sq_fit(sq_t *m, const hr_ctxdata_t *d, const unsigned char *fitrow,
                  double threshold, const hr_ctx_eval_opts_t *o, int lt_only,
                  hr_error_t *err) {
  hr_dataset_t ds;
  hr_seq_opts_t so = *o->seq;
  uint32_t *src = NULL;
  int32_t *rows = NULL;
  size_t nv = 0;
  int rc;

  memset(m, 0, sizeof(*m));
  m->lt_only = lt_only;
  if ((rc = hr_dataset_init(&ds)) != 0)
    return hr_error_set(err, rc, NULL, "out of memory");
  /* the same dense user and item indices as d */
  for (size_t u = 0; u < hr_idmap_size(d->users); u++) {
    const char *s = hr_idmap_str(d->users, u);
    if (hr_idmap_add(ds.users, s, strlen(s), NULL) < 0)
      goto oom;
  }
  for (size_t i = 0; i < hr_idmap_size(d->items); i++) {
    const char *s = hr_idmap_str(d->items, i);
    if (hr_idmap_add(ds.items, s, strlen(s), NULL) < 0)
      goto oom;
  }
  src = malloc(sizeof(uint32_t) * (d->n + 1));
  if (src == NULL)
    goto oom;
  for (size_t r = 0; r < d->n; r++) {
    if (!fitrow[r] || d->rating[r] < threshold)
      continue;
    const char *us = hr_idmap_str(d->users, (size_t)d->u[r]),
               *is = hr_idmap_str(d->items, (size_t)d->i[r]);
    src[ds.n] = (uint32_t)r;
    /* file order as time: one second apart */
    if (hr_dataset_add(&ds, us, strlen(us), is, strlen(is),
                       (int64_t)r + 1) != 0)
      goto oom;
  }
  if ((rc = hr_dataset_histories(&ds, &m->h)) != 0)
    goto oom;
  if (lt_only) { /* iALS alone, as fit trains it */
    so.long_term = 1;
    m->w = 1;
    if ((rc = hr_seq_long_term_fit(&m->h, &so, &m->lt, err)) != 0)
      goto done;
    goto done;
  }
  m->off = calloc(HR_CTX_MAX_COLS + 1, sizeof(size_t));
  m->cols = calloc(HR_CTX_MAX_COLS + 1, sizeof(int32_t));
  if (m->off == NULL || m->cols == NULL)
    goto oom;
  /* the columns fit gives context features: the first HR_DS_CTX that are
   * not never-features (the CSV reader's slots), whose names a request can
   * carry; the protocol's excluded columns stay out too */
  for (size_t c = 0, slots = 0; c < d->n_cols && !o->no_context; c++) {
    if (hr_ctx_never_feature(d->col[c]))
      continue;
    if (++slots > HR_DS_CTX)
      break;
    if (!d->is_feature[c] || !hr_ctx_name_served(d->col[c]))
      continue;
    m->cols[m->F] = (int32_t)c;
    m->off[m->F++] = nv;
    nv += hr_idmap_size(d->vals[c]);
  }
  if (m->F > 0) {
    size_t n = (size_t)m->h.ptr[m->h.n_users];
    rows = malloc(sizeof(int32_t) * (n * m->F + 1));
    if (rows == NULL)
      goto oom;
    for (size_t k = 0; k < n; k++)
      sq_rows(m, d, src[m->h.row[k]], rows + k * m->F);
    so.ctx_rows = rows;
    so.ctx_slots = (int)m->F;
    so.ctx_values = nv;
  }
  so.dims.n_gap = 0;
  so.progress = 0;
  so.validate = NULL;
  so.report = NULL;
  so.tokens = NULL;
  if (o->items != NULL) { /* the item tower: attributes of d's items */
    hr_dataset_t it;
    size_t ni = hr_idmap_size(d->items);
    if ((rc = hr_dataset_init(&it)) != 0)
      goto oom;
    if ((rc = hr_data_read_items(&it, o->items, err)) != 0) {
      hr_dataset_free(&it);
      goto done;
    }
    ds.attrs = calloc(ni + 1, sizeof(char *));
    ds.attrs_cap = ni + 1;
    if (ds.attrs == NULL ||
        (it.attr_header && !(ds.attr_header = strdup(it.attr_header))))
      rc = HR_ENOMEM;
    for (size_t i = 0; rc == 0 && i < ni; i++) {
      const char *id = hr_idmap_str(d->items, i);
      long k = hr_idmap_find(it.items, id, strlen(id));
      if (k >= 0 && (size_t)k < it.attrs_cap && it.attrs[k] != NULL &&
          (ds.attrs[i] = strdup(it.attrs[k])) == NULL)
        rc = HR_ENOMEM;
    }
    hr_dataset_free(&it);
    if (rc != 0 || hr_item_tokens(&ds, ni, &m->tok) != 0)
      goto oom;
    if (m->tok.n_tokens == 0) { /* nothing to learn from: say so */
      rc = hr_error_set(err, HR_EINVAL, NULL,
                        "%s: no item of the ratings has an attribute value "
                        "there", o->items);
      goto done;
    }
    so.tokens = &m->tok;
  }
  rc = hr_seq_fit(&m->h, &so, &m->fit, err);
  if (rc == 0 &&
      (m->buf = malloc(sizeof(float) * hr_seq_embed_floats(&m->fit.dims))) ==
          NULL)
    goto oom;
  if (rc == 0 && so.long_term > 0) { /* as served: + w <x_u, y_i> */
    m->w = so.long_term;
    if ((rc = hr_seq_long_term_fit(&m->h, &so, &m->lt, err)) == 0 &&
        (m->lts = malloc(sizeof(float) * (m->h.n_items + 1))) == NULL)
      goto oom;
    if (rc == 0 && m->tok.n_tokens > 0 &&
        ((m->lt_rows = malloc(sizeof(float) * m->h.n_items *
                              (size_t)m->lt.dim)) == NULL ||
         hr_item_tokens_project(&m->tok, &m->h, m->lt.Y, (size_t)m->lt.dim,
                                HR_LT_TOKEN_SHRINK, m->lt_rows) != 0))
      goto oom;
  }
  goto done;
oom:
  rc = hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
done:
  free(src);
  free(rows);
  hr_dataset_free(&ds);
  return rc;
}

/* Scores of every item for row r's user in row r's context; a user with
 * no relevant training row gets popularity (pop), as the server answers a
 * user it knows nothing about. */
static void sq_score(sq_t *m, const hr_ctxdata_t *d, size_t r, float *vec,
                     const float *pop, float *score) {
  size_t u = (size_t)d->u[r], d_ = (size_t)m->fit.width;
  size_t n = u < m->h.n_users ? (size_t)(m->h.ptr[u + 1] - m->h.ptr[u]) : 0;
  int32_t crow[HR_CTX_MAX_COLS];
  if (n == 0) {
    memcpy(score, pop, sizeof(float) * m->h.n_items);
    return;
  }
  if (m->lt_only) {
    size_t f = (size_t)m->lt.dim;
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)m->h.n_items, (int)f, 1.0f,
                m->lt.Y, (int)f, m->lt.X + u * f, 1, 0.0f, score, 1);
    return;
  }
  hr_seq_user_vector(&m->fit, n ? m->h.items + m->h.ptr[u] : NULL,
                     n ? m->h.ts + m->h.ptr[u] : NULL, n, 0, m->buf, vec);
  sq_rows(m, d, r, crow);
  for (size_t f = 0; n > 0 && f < m->F; f++)
    if (crow[f] >= 0)
      hr_seq_add_context(vec, m->fit.ctx + (size_t)crow[f] * d_, d_);
  cblas_sgemv(CblasRowMajor, CblasNoTrans, m->fit.dims.n_items, (int)d_, 1.0f,
              m->fit.items, (int)d_, vec, 1, 0.0f, score, 1);
  if (m->lts != NULL && u < m->h.n_users) {
    size_t f = (size_t)m->lt.dim;
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)m->h.n_items, (int)f,
                m->w, m->lt_rows ? m->lt_rows : m->lt.Y, (int)f,
                m->lt.X + u * f, 1, 1.0f, score, 1);
  }
}

/* ------------------------------------------ the rating neighbourhood */

/* --model nbr, for data where users rate the same item in several
 * situations (ctx80-rc). An item the user rated in training rows scores the
 * mean of those ratings; with context, plus weight x the sum, over the
 * case's known feature values, of the item's mean deviation in that value
 * (shrunk towards the value's mean over all items by `shrink` pseudo-rows)
 * less the value's mean: an item x situation bias in the manner of
 * CAMF-CI (Baltrunas, Ludwig and Ricci, RecSys 2011), estimated in closed
 * form. A row's deviation is its rating less the mean of the same user's
 * other training rows of the item, so a pair rated once gives none. Items
 * the user never rated follow all rated ones, by popularity. Nothing is
 * drawn: the seed changes nothing. It exists to measure how much an
 * explicit item x situation term moves the ranking (docs/training.md). */
typedef struct {
  hr_idmap_t *pairs;   /* (user, item) of the training rows -> pair */
  double *sum;         /* per pair: the sum and the count of its ratings */
  uint32_t *cnt;
  int32_t *pitem;      /* per pair: its item */
  size_t *uptr, *upair; /* per user: its pairs */
  hr_idmap_t *iv;      /* (item, value slot) -> index */
  double *ivs, *gs;    /* deviation sums per (item, slot) and per slot */
  uint32_t *ivn, *gn;
  size_t coff[HR_CTX_MAX_COLS];
  double *raw;         /* per item, scratch of nb_score */
  double top;          /* 1 + the largest popularity count */
  float weight, shrink;
  int use_ctx;
} nb_t;

static void nb_free(nb_t *m) {
  hr_idmap_free(m->pairs);
  hr_idmap_free(m->iv);
  free(m->sum);
  free(m->cnt);
  free(m->pitem);
  free(m->uptr);
  free(m->upair);
  free(m->ivs);
  free(m->ivn);
  free(m->gs);
  free(m->gn);
  free(m->raw);
}

/* pop: the MostPopular counts of the ni items. */
static int nb_fit(nb_t *m, const hr_ctxdata_t *d, const unsigned char *fitrow,
                  const hr_ctx_eval_opts_t *o, const float *pop, size_t ni) {
  size_t nf = 0, np, nu = hr_idmap_size(d->users), ns = 0, *pr = NULL;
  int32_t key[2];
  m->weight = o->nbr_weight;
  m->shrink = o->nbr_shrink;
  m->use_ctx = !o->no_context && o->nbr_weight > 0;
  m->top = 1;
  for (size_t i = 0; i < ni; i++)
    m->top = pop[i] + 1 > m->top ? pop[i] + 1 : m->top;
  for (size_t r = 0; r < d->n; r++)
    nf += fitrow[r];
  for (size_t c = 0; c < d->n_cols; c++) {
    m->coff[c] = ns;
    if (d->is_feature[c])
      ns += hr_idmap_size(d->vals[c]);
  }
  m->pairs = hr_idmap_new(nf + 1);
  m->iv = hr_idmap_new(nf + 1);
  m->sum = calloc(nf + 1, sizeof(double));
  m->cnt = calloc(nf + 1, sizeof(uint32_t));
  m->pitem = malloc(sizeof(int32_t) * (nf + 1));
  m->uptr = calloc(nu + 1, sizeof(size_t));
  m->upair = malloc(sizeof(size_t) * (nf + 1));
  m->ivs = calloc(nf * d->n_cols + 1, sizeof(double));
  m->ivn = calloc(nf * d->n_cols + 1, sizeof(uint32_t));
  m->gs = calloc(ns + 1, sizeof(double));
  m->gn = calloc(ns + 1, sizeof(uint32_t));
  m->raw = calloc(ni + 1, sizeof(double));
  pr = malloc(sizeof(size_t) * (d->n + 1));
  if (!m->raw || !m->pairs || !m->iv || !m->sum || !m->cnt || !m->pitem ||
      !m->uptr || !m->upair || !m->ivs || !m->ivn || !m->gs || !m->gn || !pr)
    goto oom;
  for (size_t r = 0; r < d->n; r++) { /* the pairs and their ratings */
    int added;
    long p;
    if (!fitrow[r])
      continue;
    key[0] = d->u[r];
    key[1] = d->i[r];
    if ((p = hr_idmap_add(m->pairs, (const char *)key, sizeof(key), &added)) <
        0)
      goto oom;
    pr[r] = (size_t)p;
    m->pitem[p] = d->i[r];
    m->sum[p] += d->rating[r];
    m->cnt[p]++;
    if (added)
      m->uptr[d->u[r] + 1]++;
  }
  np = hr_idmap_size(m->pairs);
  for (size_t u = 0; u < nu; u++)
    m->uptr[u + 1] += m->uptr[u];
  {
    size_t *at = malloc(sizeof(size_t) * (nu + 1));
    if (at == NULL)
      goto oom;
    memcpy(at, m->uptr, sizeof(size_t) * (nu + 1));
    for (size_t p = 0; p < np; p++) { /* a pair's key starts with its user */
      int32_t u;
      memcpy(&u, hr_idmap_str(m->pairs, p), sizeof(u));
      m->upair[at[u]++] = p;
    }
    free(at);
  }
  for (size_t r = 0; m->use_ctx && r < d->n; r++) { /* the deviations */
    size_t p;
    double dev;
    if (!fitrow[r] || m->cnt[p = pr[r]] < 2)
      continue;
    dev = d->rating[r] - (m->sum[p] - d->rating[r]) / (double)(m->cnt[p] - 1);
    for (size_t c = 0; c < d->n_cols; c++) {
      int32_t v = d->v[r * d->n_cols + c];
      long k;
      if (!d->is_feature[c] || v < 0)
        continue;
      key[0] = d->i[r];
      key[1] = (int32_t)(m->coff[c] + (size_t)v);
      if ((k = hr_idmap_add(m->iv, (const char *)key, sizeof(key), NULL)) < 0)
        goto oom;
      m->ivs[k] += dev;
      m->ivn[k]++;
      m->gs[key[1]] += dev;
      m->gn[key[1]]++;
    }
  }
  free(pr);
  return 0;
oom:
  free(pr);
  return -1;
}

/* Scores of every item for row r's user in row r's context. */
static void nb_score(nb_t *m, const hr_ctxdata_t *d, size_t r,
                     const float *pop, size_t ni, float *score) {
  size_t u = (size_t)d->u[r];
  int32_t key[2];
  double lo = 0;
  for (size_t j = m->uptr[u]; j < m->uptr[u + 1]; j++) {
    size_t p = m->upair[j];
    int32_t item = m->pitem[p];
    double s = m->sum[p] / (double)m->cnt[p];
    for (size_t c = 0; m->use_ctx && c < d->n_cols; c++) {
      int32_t v = d->v[r * d->n_cols + c];
      size_t slot;
      double g, a = 0, n = 0;
      long k;
      if (!d->is_feature[c] || v < 0)
        continue;
      slot = m->coff[c] + (size_t)v;
      g = m->gn[slot] ? m->gs[slot] / m->gn[slot] : 0.0;
      key[0] = item;
      key[1] = (int32_t)slot;
      if ((k = hr_idmap_find(m->iv, (const char *)key, sizeof(key))) >= 0) {
        a = m->ivs[k];
        n = m->ivn[k];
      }
      s += m->weight * ((a + m->shrink * g) / (n + m->shrink) - g);
    }
    m->raw[item] = s;
    lo = j == m->uptr[u] || s < lo ? s : lo;
  }
  /* every item by popularity in [-2, -1), then the rated ones from 0 up:
   * relative to the lowest rated score, so that neither order loses
   * precision to the scale of the ratings (counts can be large) */
  for (size_t i = 0; i < ni; i++)
    score[i] = (float)(pop[i] / m->top - 2);
  for (size_t j = m->uptr[u]; j < m->uptr[u + 1]; j++) {
    int32_t item = m->pitem[m->upair[j]];
    score[item] = (float)(m->raw[item] - lo);
  }
}

/* The model hr_eval_ctx ranks with, and its scratch. */
typedef struct {
  tt_t tt;
  sq_t sq;
  nb_t nb;
  float *uvec, *pop;
  int is_tt, is_seq, is_nbr, is_ials;
} ctx_model_t;

/* Fit o->model on the fit rows; score gets the MostPopular counts of the
 * relevant ones (the "pop" model, and the others' answer for a user they
 * know nothing about). 0, HR_EINVAL (unknown model), HR_ENOMEM. */
static int fit_model(ctx_model_t *m, const hr_ctxdata_t *d,
                     const unsigned char *fitrow, const hr_ctx_eval_opts_t *o,
                     double threshold, float *score, size_t ni,
                     hr_error_t *err) {
  int rc;
  m->is_tt = o->model != NULL && strcmp(o->model, "tt") == 0;
  m->is_seq = o->model != NULL && strcmp(o->model, "seq") == 0 && o->seq;
  m->is_nbr = o->model != NULL && strcmp(o->model, "nbr") == 0;
  m->is_ials = o->model != NULL && strcmp(o->model, "ials") == 0 && o->seq;
  if (o->model != NULL && strcmp(o->model, "pop") != 0 && !m->is_tt &&
      !m->is_seq && !m->is_nbr && !m->is_ials)
    return hr_error_set(err, HR_EINVAL, NULL, "unknown model \"%s\"",
                        o->model);
  for (size_t r = 0; r < d->n; r++)
    if (fitrow[r] && d->rating[r] >= threshold)
      score[d->i[r]] += 1.0f;
  if (m->is_tt) {
    openblas_set_num_threads(1);
    if ((m->uvec = malloc(sizeof(float) *
                          (size_t)(o->dim > 0 ? o->dim : 1))) == NULL ||
        tt_fit(&m->tt, d, fitrow, threshold, o) != 0)
      return hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
  }
  if (m->is_nbr && nb_fit(&m->nb, d, fitrow, o, score, ni) != 0)
    return hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
  if ((m->is_seq || m->is_ials) &&
      (rc = sq_fit(&m->sq, d, fitrow, threshold, o, m->is_ials, err)) != 0)
    return rc;
  if (m->is_seq || m->is_nbr || m->is_ials) {
    if ((m->pop = malloc(sizeof(float) * (ni + 1))) == NULL)
      return hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
    memcpy(m->pop, score, sizeof(float) * ni); /* the MostPopular counts */
  }
  if (m->is_seq &&
      (m->uvec = malloc(sizeof(float) * (size_t)m->sq.fit.width)) == NULL)
    return hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
  return 0;
}

/* HR@10 and NDCG@10 over the cases, with their standard errors. */
static void ctx_summary(hr_ctx_result_t *res, const double *hit,
                        const double *gain) {
  size_t n = res->cases;
  double sh = 0, sg = 0, vh = 0, vg = 0;
  for (size_t c = 0; c < n; c++) {
    sh += hit[c];
    sg += gain[c];
  }
  res->hr = n ? sh / (double)n : 0;
  res->ndcg = n ? sg / (double)n : 0;
  for (size_t c = 0; c < n; c++) {
    vh += (hit[c] - res->hr) * (hit[c] - res->hr);
    vg += (gain[c] - res->ndcg) * (gain[c] - res->ndcg);
  }
  res->hr_se = n > 1 ? sqrt(vh / (double)(n - 1)) / sqrt((double)n) : 0;
  res->ndcg_se = n > 1 ? sqrt(vg / (double)(n - 1)) / sqrt((double)n) : 0;
}

/* by_id: the items in the judge's tie order (numerically when every id
 * is a number). */
static void tie_order(const hr_ctxdata_t *d, uint32_t *by_id, size_t ni) {
  g_items = d->items;
  g_numeric = 1;
  for (size_t k = 0; k < ni && g_numeric; k++) {
    const char *s = hr_idmap_str(d->items, k);
    for (; *s && g_numeric; s++)
      g_numeric = *s >= '0' && *s <= '9';
  }
  for (size_t k = 0; k < ni; k++)
    by_id[k] = (uint32_t)k;
  qsort(by_id, ni, sizeof(uint32_t), cmp_item_id);
}

int hr_eval_ctx(const char *path, const hr_ctx_eval_opts_t *o,
                const char *topk_out, hr_ctx_result_t *res, hr_error_t *err) {
  hr_ctxdata_t d;
  hr_idmap_t *keys = NULL;
  pair_t *pairs = NULL;
  size_t *kptr = NULL, np = 0, nk, ni;
  uint32_t *by_id = NULL;
  float *score = NULL, *ps = NULL;
  unsigned char *ex = NULL, *pex = NULL, *fitrow = NULL;
  double *gain = NULL, *hit = NULL, t0 = hr__now_s();
  FILE *out = NULL;
  char kb[4 * (1 + HR_CTX_MAX_COLS)];
  ctx_model_t mm = {0};
  int rc, target = o->target_test ? HR_CTX_TEST : HR_CTX_VALID;

  memset(res, 0, sizeof(*res));
  if ((rc = hr_ctx_read(path, &d, err)) != 0)
    return rc;
  ni = hr_idmap_size(d.items);
  res->n_items = ni;
  res->threshold = o->threshold;
  if (res->threshold < 0) {
    res->threshold = 4;
    for (size_t r = 0; r < d.n; r++)
      if (d.rating[r] > 5)
        res->threshold = 1;
  }
  keys = hr_idmap_new(1024);
  pairs = malloc(sizeof(pair_t) * d.n);
  fitrow = calloc(d.n, 1);
  by_id = malloc(sizeof(uint32_t) * ni);
  score = calloc(ni, sizeof(float));
  ps = malloc(sizeof(float) * ni);
  ex = calloc(ni, 1);
  pex = malloc(ni ? ni : 1);
  gain = calloc(d.n, sizeof(double));
  hit = calloc(d.n, sizeof(double));
  if (!keys || !pairs || !fitrow || !by_id || !score || !ps || !ex || !pex ||
      !gain || !hit) {
    rc = hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
    goto done;
  }
  /* Training rows and their exclusion keys. */
  for (size_t r = 0; r < d.n; r++) {
    fitrow[r] = o->target_test ? d.part[r] != HR_CTX_TEST
                               : d.part[r] == HR_CTX_FIT;
    res->fit_rows += fitrow[r];
    res->target_rows += d.part[r] == target;
    if (!fitrow[r])
      continue;
    long k = hr_idmap_add(keys, kb, row_key(&d, r, o->repeat, kb), NULL);
    if (k < 0) {
      rc = hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
      goto done;
    }
    pairs[np++] = (pair_t){(int32_t)k, d.i[r]};
  }
  qsort(pairs, np, sizeof(pair_t), cmp_pair);
  nk = hr_idmap_size(keys);
  kptr = calloc(nk + 1, sizeof(size_t));
  if (kptr == NULL) {
    rc = hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
    goto done;
  }
  for (size_t k = 0; k < np; k++)
    kptr[pairs[k].key + 1]++;
  for (size_t k = 0; k < nk; k++)
    kptr[k + 1] += kptr[k];
  /* The model: MostPopular over the relevant training rows, the context
   * two-tower, the served sequential model (or its factor part alone) or
   * the rating neighbourhood. */
  if ((rc = fit_model(&mm, &d, fitrow, o, res->threshold, score, ni, err)) !=
      0)
    goto done;
  res->train_seconds = hr__now_s() - t0;
  tie_order(&d, by_id, ni);
  if (topk_out != NULL && (out = fopen(topk_out, "w")) == NULL) {
    rc = hr_error_set(err, HR_EIO, NULL, "%s: %s", topk_out, strerror(errno));
    goto done;
  }
  for (size_t r = 0; r < d.n; r++) {
    if (d.part[r] != target || d.rating[r] < res->threshold)
      continue;
    res->relevant++;
    long k = hr_idmap_find(keys, kb, row_key(&d, r, o->repeat, kb));
    const pair_t *e = k >= 0 ? pairs + kptr[k] : NULL;
    size_t ne = k >= 0 ? kptr[k + 1] - kptr[k] : 0, dropped = 0;
    for (size_t j = 0; j < ne; j++)
      dropped |= e[j].item == d.i[r];
    if (dropped) {
      res->dropped++;
      continue;
    }
    res->cases++;
    /* scores and exclusions permuted into tie order (hr_topk prefers the
     * lower index on ties) */
    for (size_t j = 0; j < ne; j++)
      ex[e[j].item] = 1;
    int32_t top[10];
    size_t nt;
    if (mm.is_tt)
      tt_score(&mm.tt, &d, r, mm.uvec, score);
    else if (mm.is_seq || mm.is_ials)
      sq_score(&mm.sq, &d, r, mm.uvec, mm.pop, score);
    else if (mm.is_nbr)
      nb_score(&mm.nb, &d, r, mm.pop, ni, score);
    for (size_t j = 0; j < ni; j++) {
      ps[j] = score[by_id[j]];
      pex[j] = ex[by_id[j]];
    }
    nt = hr_topk(ps, pex, ni, 10, top);
    for (size_t j = 0; j < ne; j++)
      ex[e[j].item] = 0;
    for (size_t j = 0; j < nt; j++) {
      top[j] = (int32_t)by_id[top[j]];
      if (top[j] == d.i[r]) {
        hit[res->cases - 1] = 1;
        gain[res->cases - 1] = 1.0 / log2((double)j + 2.0);
      }
    }
    if (out != NULL) {
      fprintf(out, "%zu", r);
      for (size_t j = 0; j < nt; j++)
        fprintf(out, "\t%s", hr_idmap_str(d.items, (size_t)top[j]));
      fputc('\n', out);
    }
  }
  ctx_summary(res, hit, gain);
done:
  if (out != NULL && fclose(out) != 0 && rc == 0)
    rc = hr_error_set(err, HR_EIO, NULL, "%s: write failed", topk_out);
  hr_idmap_free(keys);
  free(pairs);
  free(kptr);
  free(by_id);
  free(score);
  free(ps);
  free(ex);
  free(pex);
  free(fitrow);
  free(gain);
  free(hit);
  free(mm.tt.w);
  sq_free(&mm.sq);
  nb_free(&mm.nb);
  free(mm.pop);
  free(mm.uvec);
  hr_ctx_free(&d);
  return rc;
}
