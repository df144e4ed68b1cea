/* eval.c -- protocol `loo` (shared/data/ml-100k/splits/loo/PROTOCOL.md) and
 * the top-k / metric helpers (see train.h).
 *
 * The evaluated model is the one a `fit` would publish: it is written to a
 * temporary version directory, loaded back with hr_model_open and ranked
 * by the server's pipeline (hr_rec_rank: user vector, exclusions,
 * retrieval, top-k). The sequential model's evaluation during training
 * scores with the trainer's own copy of the network, checked bit for bit
 * against the served one (tests/unit/test_seq.c), and the same top-k. */
#include "hr/ranker.h"
#include "hr/recommend.h"
#include "hr/train.h"

#include <cblas.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------ metrics */

int hr_metrics_init(hr_metrics_t *mt, int k, size_t n_items) {
  memset(mt, 0, sizeof(*mt));
  mt->k = k;
  mt->n_items = n_items;
  mt->covered = calloc(n_items ? n_items : 1, 1);
  return mt->covered ? 0 : HR_ENOMEM;
}

void hr_metrics_add(hr_metrics_t *mt, const int32_t *topk, size_t n,
                    int32_t target) {
  if (n > (size_t)mt->k)
    n = (size_t)mt->k;
  mt->users++;
  for (size_t r = 0; r < n; r++) {
    if (topk[r] >= 0 && (size_t)topk[r] < mt->n_items &&
        !mt->covered[topk[r]]) {
      mt->covered[topk[r]] = 1;
      mt->n_covered++;
    }
  }
  for (size_t r = 0; r < n; r++)
    if (topk[r] == target) {
      mt->hr += 1.0;
      mt->ndcg += 1.0 / log2((double)r + 2.0);
      mt->mrr += 1.0 / ((double)r + 1.0);
      break;
    }
}

void hr_metrics_result(const hr_metrics_t *mt, hr_eval_result_t *res) {
  double n = mt->users ? (double)mt->users : 1.0;
  res->users = mt->users;
  res->n_items = mt->n_items;
  res->hr = mt->hr / n;
  res->ndcg = mt->ndcg / n;
  res->mrr = mt->mrr / n;
  res->coverage = mt->n_items ? (double)mt->n_covered / (double)mt->n_items
                              : 0.0;
}

void hr_metrics_free(hr_metrics_t *mt) {
  free(mt->covered);
  mt->covered = NULL;
}

size_t hr_topk(const float *scores, const unsigned char *excluded, size_t n,
               int k, int32_t *out) {
  hr_scored_t small[64], *buf = small;
  size_t m;

  if (k <= 0)
    return 0;
  if ((size_t)k > sizeof(small) / sizeof(small[0]) &&
      (buf = malloc(sizeof(*buf) * (size_t)k)) == NULL)
    return 0;
  m = hr_ranker_topk(scores, n, NULL, 0, excluded, NULL, (size_t)k, buf);
  for (size_t j = 0; j < m; j++)
    out[j] = (int32_t)buf[j].index;
  if (buf != small)
    free(buf);
  return m;
}

/* ---------------------------------------------------------------- loo */

static int read_meta(const char *dir, size_t *n_items, hr_error_t *err) {
  char path[4096];
  json_error_t je;
  json_t *meta, *v;

  snprintf(path, sizeof(path), "%s/meta.json", dir);
  meta = json_load_file(path, 0, &je);
  if (meta == NULL)
    return hr_error_set(err, HR_EIO, NULL, "%s: %s", path, je.text);
  v = json_object_get(meta, "n_items");
  if (!json_is_integer(v) || json_integer_value(v) < 1 ||
      json_integer_value(v) > 100000000) {
    json_decref(meta);
    return hr_error_set(err, HR_EFORMAT, NULL, "%s: bad n_items", path);
  }
  *n_items = (size_t)json_integer_value(v);
  json_decref(meta);
  return 0;
}

static void rm_version_dir(const char *dir) {
  static const char *const files[] = {"model.bin", "items.tsv", "users.tsv",
                                      "manifest.json", "index.bin",
                                      "report.json"};
  char p[4400];
  for (int i = 0; i < 6; i++) {
    snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
    unlink(p);
  }
  rmdir(dir);
}

static int cmp_target(const void *a, const void *b) {
  const hr_loo_target_t *x = a, *y = b;
  return x->uid < y->uid ? -1 : x->uid > y->uid;
}

/* The target file's rows: exactly one per user. */
static int read_targets(const char *path, const hr_dataset_t *all,
                        hr_loo_target_t **out, size_t *n_out, hr_error_t *err) {
  hr_dataset_t t;
  hr_loo_target_t *tg;
  size_t n;
  int rc;

  if ((rc = hr_dataset_init(&t)) != 0)
    return hr_error_set(err, rc, NULL, "out of memory");
  if ((rc = hr_data_read_movielens(&t, path, err)) != 0) {
    hr_dataset_free(&t);
    return rc;
  }
  tg = calloc(t.n + 1, sizeof(*tg));
  if (tg == NULL) {
    hr_dataset_free(&t);
    return hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
  }
  for (size_t k = 0; k < t.n; k++) {
    const char *u = hr_idmap_str(t.users, (size_t)t.u[k]);
    const char *i = hr_idmap_str(t.items, (size_t)t.i[k]);
    tg[k].uid = strtol(u, NULL, 10);
    tg[k].user = hr_idmap_find(all->users, u, strlen(u));
    tg[k].item = hr_idmap_find(all->items, i, strlen(i));
    tg[k].ts = t.ts[k];
    if (tg[k].item < 0 || tg[k].user < 0 || hr_idmap_size(t.users) != t.n) {
      rc = hr_error_set(err, HR_EFORMAT, NULL, "%s: user %s or item %s "
                        "unknown, or a user twice", path, u, i);
      break;
    }
  }
  n = t.n;
  hr_dataset_free(&t);
  if (rc != 0) {
    free(tg);
    return rc;
  }
  qsort(tg, n, sizeof(*tg), cmp_target);
  *out = tg;
  *n_out = n;
  return 0;
}

/* The split's training rows (train, + valid for the test target) over
 * the catalogue 1..n_items (dense index = id - 1, so that "ties by
 * ascending index" is "ties by ascending item id"), and the targets. On
 * failure ds may hold data: free it. */
static int64_t g_min_gap; /* hr_eval_set_min_gap */

void hr_eval_set_min_gap(int64_t seconds) { g_min_gap = seconds; }

int hr_loo_load(const char *split_dir, int target_test, hr_dataset_t *ds,
                    hr_loo_target_t **tg, size_t *ntg, size_t *n_items_out,
                    hr_error_t *err) {
  char path[4096];
  size_t n_items = 0;
  int rc;

  if ((rc = hr_dataset_init(ds)) != 0)
    return hr_error_set(err, rc, NULL, "out of memory");
  if ((rc = read_meta(split_dir, &n_items, err)) != 0)
    return rc;
  for (size_t i = 1; i <= n_items; i++) {
    char id[24];
    int len = snprintf(id, sizeof(id), "%zu", i);
    if (hr_idmap_add(ds->items, id, (size_t)len, NULL) < 0)
      return hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
  }
  snprintf(path, sizeof(path), "%s/train.tsv", split_dir);
  if ((rc = hr_data_read_movielens(ds, path, err)) != 0)
    return rc;
  if (target_test) {
    snprintf(path, sizeof(path), "%s/valid.tsv", split_dir);
    if ((rc = hr_data_read_movielens(ds, path, err)) != 0)
      return rc;
  }
  if (hr_idmap_size(ds->items) != n_items)
    return hr_error_set(err, HR_EFORMAT, NULL, "%s: item ids outside 1..%zu",
                        split_dir, n_items);
  snprintf(path, sizeof(path), "%s/%s.tsv", split_dir,
           target_test ? "test" : "valid");
  if ((rc = read_targets(path, ds, tg, ntg, err)) != 0)
    return rc;
  if (g_min_gap > 0) { /* only targets that come after a pause */
    size_t nu = hr_idmap_size(ds->users), w = 0;
    int64_t *last = calloc(nu + 1, sizeof(int64_t));
    if (last == NULL)
      return hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
    for (size_t r = 0; r < ds->n; r++)
      if (ds->ts[r] > last[ds->u[r]])
        last[ds->u[r]] = ds->ts[r];
    for (size_t k = 0; k < *ntg; k++)
      if ((*tg)[k].ts - last[(*tg)[k].user] >= g_min_gap)
        (*tg)[w++] = (*tg)[k];
    *ntg = w;
    free(last);
  }
  *n_items_out = n_items;
  return 0;
}

int hr_eval_loo(const char *split_dir, int target_test,
                const hr_ials_opts_t *o, const char *topk_out,
                hr_eval_result_t *res, hr_error_t *err) {
  char tmp[] = "/tmp/hr-eval-XXXXXX", vdir[4200];
  hr_dataset_t ds = {0};
  hr_csr_t h = {0};
  hr_ials_t fit = {0};
  hr_model_t *m = NULL;
  hr_metrics_t mt = {0};
  hr_loo_target_t *tg = NULL;
  size_t n_items = 0, ntg = 0;
  hr_config_t cfg;
  hr_snapshot_t snap = {0};
  hr_rec_worker_t *w = NULL;
  FILE *out = NULL;
  int have_tmp = 0, rc;

  memset(res, 0, sizeof(*res));
  if ((rc = hr_loo_load(split_dir, target_test, &ds, &tg, &ntg, &n_items,
                     err)) != 0)
    goto done;
  if ((rc = hr_dataset_histories(&ds, &h)) != 0) {
    hr_error_set(err, rc, NULL, "out of memory");
    goto done;
  }
  if ((rc = hr_ials_fit(&h, o, &fit, err)) != 0)
    goto done;
  res->train_seconds = fit.seconds;

  if (mkdtemp(tmp) == NULL) {
    rc = hr_error_set(err, HR_EIO, NULL, "mkdtemp: %s", strerror(errno));
    goto done;
  }
  have_tmp = 1;
  snprintf(vdir, sizeof(vdir), "%s/1", tmp);
  if (mkdir(vdir, 0700) != 0) {
    rc = hr_error_set(err, HR_EIO, NULL, "mkdir %s: %s", vdir,
                      strerror(errno));
    goto done;
  }
  {
    /* The protocol ranks the full catalogue exactly: no index needed. */
    hr_ials_opts_t wo = *o;
    wo.index = 0;
    if ((rc = hr_train_write_files(vdir, &ds, &h, &fit, &wo, NULL, "eval", 1,
                                   err)) != 0)
      goto done;
  }
  if ((m = hr_model_open(vdir, err)) == NULL) {
    rc = err && err->code ? err->code : HR_EFORMAT;
    goto done;
  }

  /* Ranked by the server's pipeline: the same user vector, exclusions
   * (the stored history), retrieval (every item: no index) and top-k. */
  hr_config_defaults(&cfg);
  cfg.recommend.user_cache_mb = 0;
  snap.model = m;
  if ((w = hr_rec_worker_new()) == NULL ||
      hr_metrics_init(&mt, 10, n_items) != 0) {
    rc = hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
    goto done;
  }
  if (topk_out != NULL && (out = fopen(topk_out, "w")) == NULL) {
    rc = hr_error_set(err, HR_EIO, NULL, "%s: %s", topk_out, strerror(errno));
    goto done;
  }
  for (size_t k = 0; k < ntg; k++) {
    hr_recommend_req_t r = {0};
    hr_rec_result_t got;
    int32_t top[10];

    r.user_id = hr_idmap_str(ds.users, (size_t)tg[k].user);
    r.k = 10;
    r.ts = -1;
    if ((rc = hr_rec_rank(w, &snap, &cfg, &r, NULL, 0, &got, err)) != 0)
      goto done;
    for (size_t j = 0; j < got.n_items; j++)
      top[j] = (int32_t)got.items[j].index;
    hr_metrics_add(&mt, top, got.n_items, (int32_t)tg[k].item);
    if (out != NULL) {
      fputs(r.user_id, out);
      for (size_t j = 0; j < got.n_items; j++)
        fprintf(out, "\t%s", hr_model_item_id(m, (size_t)top[j]));
      fputc('\n', out);
    }
  }
  hr_metrics_result(&mt, res);
done:
  if (out != NULL && fclose(out) != 0 && rc == 0)
    rc = hr_error_set(err, HR_EIO, NULL, "%s: write failed", topk_out);
  hr_metrics_free(&mt);
  hr_rec_worker_free(w);
  free(tg);
  hr_model_free(m);
  hr_ials_free(&fit);
  hr_csr_free(&h);
  hr_dataset_free(&ds);
  if (have_tmp) {
    rm_version_dir(vdir);
    rmdir(tmp);
  }
  return rc;
}

/* The loo targets' metrics for a (possibly partly trained) sequential
 * model; the top-10 lists go to `out` when not NULL. */
typedef struct {
  const hr_dataset_t *ds;
  const hr_csr_t *h;
  const hr_loo_target_t *tg;
  size_t ntg, n_items;
  float *vec, *scores, *buf;
  unsigned char *ex;
  const hr_ials_t *lt;   /* the long-term part, or NULL */
  float lt_w;            /* its weight */
  float *cat;            /* n_items x (d + f): [sequential | long-term] */
  float *lt_rows;        /* NULL, or the long-term rows with new items'
                            from their tokens */
  float *ucat;           /* d + f */
  const int32_t *tctx;   /* ntg x cslots: each target's context rows */
  int cslots;
} seq_scorer_t;


static int seq_score(seq_scorer_t *sc, const hr_seq_fit_t *fit, FILE *out,
                     hr_eval_result_t *res) {
  const hr_csr_t *h = sc->h;
  hr_metrics_t mt = {0};

  if (sc->lt != NULL)
    hr_seq_concat_items(fit, sc->lt, sc->lt_rows, sc->cat);

  if (hr_metrics_init(&mt, 10, sc->n_items))
    return HR_ENOMEM;
  for (size_t k = 0; k < sc->ntg; k++) {
    size_t u = (size_t)sc->tg[k].user, nh = (size_t)(h->ptr[u + 1] - h->ptr[u]);
    const int32_t *hist = h->items + h->ptr[u];
    int32_t top[10];
    size_t nt;
    hr_seq_user_vector(fit, hist, h->ts + h->ptr[u], nh, sc->tg[k].ts,
                       sc->buf, sc->vec);
    for (int j = 0; fit->ctx != NULL && j < sc->cslots; j++) {
      int32_t row = sc->tctx[k * (size_t)sc->cslots + (size_t)j];
      if (row >= 0 && (size_t)row < fit->n_ctx)
        hr_seq_add_context(sc->vec, fit->ctx + (size_t)row * fit->width,
                           (size_t)fit->width);
    }
    if (sc->lt != NULL) { /* as the server: [u_seq | w x_u] . [v | y] */
      size_t d = (size_t)fit->width, f = (size_t)sc->lt->dim;
      memcpy(sc->ucat, sc->vec, sizeof(float) * d);
      for (size_t c = 0; c < f; c++)
        sc->ucat[d + c] = sc->lt_w * sc->lt->X[u * f + c];
      cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)sc->n_items, (int)(d + f),
                  1.0f, sc->cat, (int)(d + f), sc->ucat, 1, 0.0f, sc->scores,
                  1);
    } else
      cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)sc->n_items, fit->width,
                  1.0f, fit->items, fit->width, sc->vec, 1, 0.0f,
                  sc->scores, 1);
    for (size_t j = 0; j < nh; j++)
      sc->ex[hist[j]] = 1;
    nt = hr_topk(sc->scores, sc->ex, sc->n_items, 10, top);
    for (size_t j = 0; j < nh; j++)
      sc->ex[hist[j]] = 0;
    hr_metrics_add(&mt, top, nt, (int32_t)sc->tg[k].item);
    if (out != NULL) {
      fputs(hr_idmap_str(sc->ds->users, u), out);
      for (size_t j = 0; j < nt; j++)
        fprintf(out, "\t%s", hr_idmap_str(sc->ds->items, (size_t)top[j]));
      fputc('\n', out);
    }
  }
  hr_metrics_result(&mt, res);
  hr_metrics_free(&mt);
  return 0;
}

static int seq_validate(void *arg, const hr_seq_fit_t *fit, double *m) {
  hr_eval_result_t r;
  if (seq_score(arg, fit, NULL, &r) != 0)
    return 0;
  m[0] = r.hr;
  m[1] = r.ndcg;
  return 2;
}

/* The sequential model (+ the long-term part) fitted on ds's histories and
 * scored on the targets; with a context prior cp (NULL: none) the fit
 * learns its values' vectors from each history entry's context, and each
 * target's user vector gets its tctx rows (ntg x cp->n_fields). */
int hr_eval_seq_targets(hr_dataset_t *ds, const hr_loo_target_t *tg, size_t ntg,
                   size_t n_items, const hr_seq_opts_t *o,
                   const hr_item_tokens_t *tokens, const hr_ctx_prior_t *cp,
                   const int32_t *tctx, const char *topk_out,
                   hr_eval_result_t *res, hr_error_t *err) {
  hr_ials_t lt = {0};
  hr_csr_t h = {0};
  hr_seq_fit_t fit = {0};
  seq_scorer_t sc = {0};
  hr_seq_opts_t oo = *o;
  FILE *out = NULL;
  hr_seq_dims_t dm = o->dims;
  int32_t *crows = NULL;
  size_t wd;
  int rc;

  oo.tokens = tokens;
  if ((rc = hr_dataset_histories(ds, &h)) != 0) {
    hr_error_set(err, rc, NULL, "out of memory");
    goto done;
  }
  if (cp != NULL && cp->n_fields > 0) {
    if ((rc = hr_ctx_prior_history_rows(cp, ds, &h, &crows)) != 0) {
      hr_error_set(err, rc, NULL, "out of memory");
      goto done;
    }
    oo.ctx_rows = crows;
    oo.ctx_slots = (int)cp->n_fields;
    oo.ctx_values = cp->n_values;
  }
  dm.n_items = (int)n_items;
  sc = (seq_scorer_t){ds, &h, tg, ntg, n_items, NULL, NULL, NULL, NULL,
                      NULL, 0, NULL, NULL, NULL, tctx,
                      oo.ctx_rows ? oo.ctx_slots : 0};
  /* the ensemble's width */
  wd = (size_t)dm.d * (size_t)(o->members > 1 ? o->members : 1);
  sc.vec = malloc(sizeof(float) * wd);
  sc.scores = malloc(n_items * sizeof(float));
  sc.buf = malloc(sizeof(float) * hr_seq_embed_floats(&dm));
  sc.ex = calloc(n_items, 1);
  if (!sc.vec || !sc.scores || !sc.buf || !sc.ex) {
    rc = hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
    goto done;
  }
  if (topk_out != NULL && (out = fopen(topk_out, "w")) == NULL) {
    rc = hr_error_set(err, HR_EIO, NULL, "%s: %s", topk_out, strerror(errno));
    goto done;
  }
  if (o->long_term > 0) { /* the long-term part */
    if ((rc = hr_seq_long_term_fit(&h, o, &lt, err)) != 0)
      goto done;
    sc.lt = &lt;
    sc.lt_w = o->long_term;
    sc.cat = malloc(sizeof(float) * n_items * (wd + (size_t)lt.dim));
    sc.ucat = malloc(sizeof(float) * (wd + (size_t)lt.dim));
    if (sc.cat == NULL || sc.ucat == NULL) {
      rc = hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
      goto done;
    }
    res->train_seconds += lt.seconds;
    if (oo.tokens != NULL && oo.tokens->n_tokens > 0) {
      sc.lt_rows = malloc(sizeof(float) * n_items * (size_t)lt.dim);
      if (sc.lt_rows == NULL ||
          hr_item_tokens_project(oo.tokens, &h, lt.Y, (size_t)lt.dim,
                                 HR_LT_TOKEN_SHRINK, sc.lt_rows) != 0) {
        rc = hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
        goto done;
      }
    }
  }
  if (o->progress || o->report) { /* the curve: metrics after each epoch */
    oo.validate = seq_validate;
    oo.validate_arg = &sc;
  }
  if ((rc = hr_seq_fit(&h, &oo, &fit, err)) != 0)
    goto done;
  if ((rc = seq_score(&sc, &fit, out, res)) != 0) {
    hr_error_set(err, rc, NULL, "out of memory");
    goto done;
  }
  res->train_seconds = fit.seconds + lt.seconds;
done:
  if (out != NULL && fclose(out) != 0 && rc == 0)
    rc = hr_error_set(err, HR_EIO, NULL, "%s: write failed", topk_out);
  free(sc.vec);
  free(sc.scores);
  free(sc.buf);
  free(sc.ex);
  free(sc.cat);
  free(sc.lt_rows);
  free(sc.ucat);
  hr_ials_free(&lt);
  free(crows);
  hr_seq_fit_free(&fit);
  hr_csr_free(&h);
  return rc;
}

int hr_eval_loo_seq(const char *split_dir, int target_test,
                    const hr_seq_opts_t *o, const char *items_path,
                    const char *topk_out, hr_eval_result_t *res,
                    hr_error_t *err) {
  hr_dataset_t ds = {0};
  hr_loo_target_t *tg = NULL;
  size_t n_items = 0, ntg = 0;
  hr_item_tokens_t tok = {0};
  int rc;

  memset(res, 0, sizeof(*res));
  if ((rc = hr_loo_load(split_dir, target_test, &ds, &tg, &ntg, &n_items,
                     err)) != 0)
    goto done;
  if (items_path != NULL) {
    if ((rc = hr_data_read_items(&ds, items_path, err)) != 0)
      goto done;
    if (hr_idmap_size(ds.items) != n_items) {
      rc = hr_error_set(err, HR_EFORMAT, NULL, "%s: item ids outside 1..%zu",
                        items_path, n_items);
      goto done;
    }
    if ((rc = hr_item_tokens(&ds, n_items, &tok)) != 0) {
      hr_error_set(err, rc, NULL, "out of memory");
      goto done;
    }
  }
  rc = hr_eval_seq_targets(&ds, tg, ntg, n_items, o, items_path ? &tok : NULL, NULL,
               NULL, topk_out, res, err);
done:
  free(tg);
  hr_item_tokens_free(&tok);
  hr_dataset_free(&ds);
  return rc;
}

/* ------------------------------------------- loo with fit's selection */

/* load_loo's targets as the selection's. */
static hr_target_t *loo_targets(const hr_loo_target_t *tg, size_t n) {
  hr_target_t *t = malloc(sizeof(*t) * (n + 1));
  for (size_t k = 0; t != NULL && k < n; k++)
    t[k] = (hr_target_t){(int32_t)tg[k].user, (int32_t)tg[k].item, tg[k].ts,
                         -1};
  return t;
}

/* The winner c trained on ds and scored on its targets (topk_out: the
 * judge's file, when not NULL). */
static int loo_winner(const hr_cand_t *c, const hr_dataset_t *ds,
                      const hr_target_t *tg, size_t ntg, size_t n_items,
                      const char *topk_out, hr_eval_result_t *res,
                      hr_error_t *err) {
  char tmp[] = "/tmp/hr-eval-XXXXXX", vdir[64];
  hr_csr_t h = {0};
  hr_ctx_prior_t cp = {0};
  hr_cand_out_t out = {0};
  hr_score_t s;
  FILE *f = NULL;
  int rc;

  if (mkdtemp(tmp) == NULL)
    return hr_error_set(err, HR_EIO, NULL, "mkdtemp: %s", strerror(errno));
  snprintf(vdir, sizeof(vdir), "%s/1", tmp);
  if (mkdir(vdir, 0700) != 0) {
    rc = hr_error_set(err, HR_EIO, NULL, "mkdir: %s", strerror(errno));
    goto done;
  }
  if ((rc = hr_dataset_histories(ds, &h)) != 0 ||
      (rc = hr_fit_prior(ds, h.n_items, &cp, err)) != 0) {
    hr_error_set(err, rc, NULL, "out of memory");
    goto done;
  }
  out.dir = vdir;
  if ((rc = hr_cand_fit_write(c, ds, &h, &cp, &out, &res->train_seconds,
                              err)) != 0)
    goto done;
  if (topk_out != NULL && (f = fopen(topk_out, "w")) == NULL) {
    rc = hr_error_set(err, HR_EIO, NULL, "%s: %s", topk_out, strerror(errno));
    goto done;
  }
  if ((rc = hr_score_version(vdir, ds, tg, ntg, NULL, f, &s, err)) != 0)
    goto done;
  res->hr = s.hr;
  res->ndcg = s.ndcg;
  res->mrr = s.mrr;
  res->coverage = s.coverage;
  res->users = s.users;
  res->n_items = n_items;
done:
  if (f != NULL && fclose(f) != 0 && rc == 0)
    rc = hr_error_set(err, HR_EIO, NULL, "%s: write failed", topk_out);
  hr_ctx_prior_free(&cp);
  hr_csr_free(&h);
  rm_version_dir(vdir);
  rmdir(tmp);
  return rc;
}

int hr_eval_loo_cand(const char *split_dir, int target_test,
                     const hr_cand_t *c, const char *topk_out,
                     hr_eval_result_t *res, hr_error_t *err) {
  hr_dataset_t ds = {0};
  hr_loo_target_t *tg = NULL;
  hr_target_t *t = NULL;
  size_t n_items = 0, ntg = 0;
  int rc;

  memset(res, 0, sizeof(*res));
  if ((rc = hr_loo_load(split_dir, target_test, &ds, &tg, &ntg, &n_items,
                        err)) == 0) {
    if ((t = loo_targets(tg, ntg)) == NULL)
      rc = hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
    else
      rc = loo_winner(c, &ds, t, ntg, n_items, topk_out, res, err);
  }
  free(tg);
  free(t);
  hr_dataset_free(&ds);
  return rc;
}

int hr_eval_loo_select(const char *split_dir, int target_test,
                       const hr_select_opts_t *so, const char *topk_out,
                       hr_eval_result_t *res, hr_selection_t *sel,
                       hr_error_t *err) {
  hr_dataset_t ds = {0}, all = {0};
  hr_loo_target_t *tg = NULL, *tt = NULL;
  hr_target_t *v = NULL, *t = NULL;
  size_t n_items = 0, ntg = 0, ntt = 0;
  int rc;

  memset(res, 0, sizeof(*res));
  memset(sel, 0, sizeof(*sel));
  /* chosen on the split's own train -> valid */
  if ((rc = hr_loo_load(split_dir, 0, &ds, &tg, &ntg, &n_items, err)) != 0)
    goto done;
  if ((v = loo_targets(tg, ntg)) == NULL) {
    rc = hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
    goto done;
  }
  if ((rc = hr_select(&ds, v, ntg, NULL, so, sel, err)) != 0)
    goto done;
  /* the winner, trained as fit would for the target */
  const hr_cand_t *c = &sel->r[sel->winner].cand;
  if (!target_test) {
    rc = loo_winner(c, &ds, v, ntg, n_items, topk_out, res, err);
    goto done;
  }
  if ((rc = hr_loo_load(split_dir, 1, &all, &tt, &ntt, &n_items, err)) != 0)
    goto done;
  if ((t = loo_targets(tt, ntt)) == NULL) {
    rc = hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
    goto done;
  }
  rc = loo_winner(c, &all, t, ntt, n_items, topk_out, res, err);
done:
  free(tg);
  free(tt);
  free(v);
  free(t);
  hr_dataset_free(&ds);
  hr_dataset_free(&all);
  return rc;
}
