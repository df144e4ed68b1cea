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

typedef struct {
  long uid;     /* numeric user id, for the judge's order */
  long user;    /* dense (data set) index */
  long item;    /* dense item index */
  int64_t ts;   /* the target row's timestamp (the request time) */
} target_t;

static int cmp_target(const void *a, const void *b) {
  const target_t *x = a, *y = b;
  return x->uid < y->uid ? -1 : x->uid > y->uid;
}

/* The target file's rows: exactly one per user. */
static int read_targets(const char *path, const hr_dataset_t *all,
                        target_t **out, size_t *n_out, hr_error_t *err) {
  hr_dataset_t t;
  target_t *tg;
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

static int load_loo(const char *split_dir, int target_test, hr_dataset_t *ds,
                    target_t **tg, size_t *ntg, size_t *n_items_out,
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
  target_t *tg = NULL;
  size_t n_items = 0, ntg = 0;
  hr_config_t cfg;
  hr_snapshot_t snap = {0};
  hr_rec_worker_t *w = NULL;
  FILE *out = NULL;
  int have_tmp = 0, rc;

  memset(res, 0, sizeof(*res));
  if ((rc = load_loo(split_dir, target_test, &ds, &tg, &ntg, &n_items,
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
  const target_t *tg;
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
static int run_seq(hr_dataset_t *ds, const target_t *tg, size_t ntg,
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
  target_t *tg = NULL;
  size_t n_items = 0, ntg = 0;
  hr_item_tokens_t tok = {0};
  int rc;

  memset(res, 0, sizeof(*res));
  if ((rc = load_loo(split_dir, target_test, &ds, &tg, &ntg, &n_items,
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
  rc = run_seq(&ds, tg, ntg, n_items, o, items_path ? &tok : NULL, NULL,
               NULL, topk_out, res, err);
done:
  free(tg);
  hr_item_tokens_free(&tok);
  hr_dataset_free(&ds);
  return rc;
}

/* ------------------------------------ leave-last-out on an event CSV */

int hr_eval_last_seq(const char *path, const char *users_path,
                     int target_test, const hr_seq_opts_t *o, int no_context,
                     const char *topk_out, hr_eval_result_t *res,
                     hr_error_t *err) {
  hr_dataset_t ds;
  hr_csr_t full = {0};
  hr_ctx_prior_t cp = {0};
  target_t *tg = NULL;
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
    tg[ntg] = (target_t){(long)u, (long)u, full.items[k], full.ts[k]};
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
  rc = run_seq(&ds, tg, ntg, ni, o, NULL, F > 0 ? &cp : NULL, tctx, topk_out,
               res, err);
  goto done;
oom:
  rc = hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
done:
  free(tg);
  free(trow);
  free(hide);
  free(tctx);
  hr_ctx_prior_free(&cp);
  hr_csr_free(&full);
  hr_dataset_free(&ds);
  return rc;
}

/* ------------------------------------------------------------ cold items */

int hr_eval_cold_seq(const char *split_dir, const char *items_path,
                     double frac, const hr_seq_opts_t *o,
                     hr_cold_result_t *res, hr_error_t *err) {
  hr_dataset_t ds = {0};
  hr_csr_t h = {0};
  hr_seq_fit_t fit = {0};
  hr_item_tokens_t tok = {0};
  target_t *tg = NULL;
  size_t n_items = 0, ntg = 0, nu, H = 0, w = 0;
  uint32_t *cnt = NULL, *pool = NULL;
  int32_t *hid = NULL;          /* item -> position among the hidden, -1 */
  unsigned char *pos = NULL;    /* user x hidden: a relevant pair */
  float *vec = NULL, *buf = NULL, *sc = NULL, *lrows = NULL;
  hr_ials_t lt = {0};
  uint64_t rng = o->seed * 0x9E3779B97F4A7C15ull + 11;
  hr_seq_opts_t oo = *o;
  int rc;

  memset(res, 0, sizeof(*res));
  if (!(frac > 0 && frac < 1))
    return hr_error_set(err, HR_EINVAL, NULL, "--cold-items must be in "
                        "(0, 1)");
  if ((rc = load_loo(split_dir, 1, &ds, &tg, &ntg, &n_items, err)) != 0 ||
      (rc = hr_data_read_items(&ds, items_path, err)) != 0)
    goto done;
  if (hr_idmap_size(ds.items) != n_items || ds.attrs == NULL) {
    rc = hr_error_set(err, HR_EFORMAT, NULL, "%s: item ids outside 1..%zu, "
                      "or no attributes", items_path, n_items);
    goto done;
  }
  nu = hr_idmap_size(ds.users);
  cnt = calloc(n_items, sizeof(*cnt));
  pool = malloc(sizeof(*pool) * n_items);
  hid = malloc(sizeof(*hid) * n_items);
  if (!cnt || !pool || !hid)
    goto oom;
  /* The hidden items: a seeded sample of frac of the items seen in
   * train + valid. */
  for (size_t k = 0; k < ds.n; k++)
    cnt[ds.i[k]]++;
  size_t np = 0;
  for (size_t i = 0; i < n_items; i++) {
    hid[i] = -1;
    if (cnt[i] > 0)
      pool[np++] = (uint32_t)i;
  }
  for (size_t i = np; i > 1; i--) {
    size_t j = (size_t)(hr__sm64(&rng) % i);
    uint32_t t = pool[i - 1];
    pool[i - 1] = pool[j];
    pool[j] = t;
  }
  H = (size_t)(frac * (double)np + 0.5);
  if (H < 10) {
    rc = hr_error_set(err, HR_EINVAL, NULL, "only %zu hidden items", H);
    goto done;
  }
  for (size_t k = 0; k < H; k++)
    hid[pool[k]] = (int32_t)k;
  pos = calloc(nu * H, 1);
  if (pos == NULL)
    goto oom;
  /* Relevant: every interaction of a user with a hidden item (train,
   * valid and test); the training data loses them all. */
  for (size_t k = 0; k < ds.n; k++) {
    if (hid[ds.i[k]] >= 0) {
      pos[(size_t)ds.u[k] * H + (size_t)hid[ds.i[k]]] = 1;
      continue;
    }
    ds.u[w] = ds.u[k];
    ds.i[w] = ds.i[k];
    ds.ts[w] = ds.ts[k];
    memmove(ds.cv + w * HR_DS_CTX, ds.cv + k * HR_DS_CTX,
            sizeof(int32_t) * HR_DS_CTX);
    w++;
  }
  ds.n = w;
  for (size_t k = 0; k < ntg; k++)
    if (hid[tg[k].item] >= 0)
      pos[(size_t)tg[k].user * H + (size_t)hid[tg[k].item]] = 1;
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
  vec = malloc(sizeof(float) * (size_t)fit.width);
  buf = malloc(sizeof(float) * hr_seq_embed_floats(&fit.dims));
  sc = malloc(sizeof(float) * H);
  if (!vec || !buf || !sc)
    goto oom;
  /* Each user with hidden items and a visible history ranks the hidden
   * items alone by <u, attribute vector>. */
  double disc[10], sum_ndcg = 0, sum_rnd = 0, sum_hr = 0, sum_rhr = 0;
  for (int p = 0; p < 10; p++)
    disc[p] = 1.0 / log2(p + 2.0);
  for (size_t u = 0; u < nu && u < h.n_users; u++) {
    size_t nh = (size_t)(h.ptr[u + 1] - h.ptr[u]), np_ = 0, kk;
    const int32_t *hist = h.items + h.ptr[u];
    const int64_t *ts = h.ts + h.ptr[u];
    double dcg = 0, idcg = 0, edcg = 0;
    int32_t top[10];
    for (size_t j = 0; j < H; j++)
      np_ += pos[u * H + j];
    if (np_ == 0 || nh == 0)
      continue;
    hr_seq_user_vector(&fit, hist, ts, nh, ts[nh - 1] + 1, buf, vec);
    for (size_t j = 0; j < H; j++) {
      const float *x = fit.items + (size_t)pool[j] * (size_t)fit.width;
      float s = 0;
      for (int c = 0; c < fit.width; c++)
        s += vec[c] * x[c];
      if (lrows != NULL) {
        const float *y = lrows + (size_t)pool[j] * (size_t)lt.dim,
                    *xu = lt.X + u * (size_t)lt.dim;
        float l = 0;
        for (int c = 0; c < lt.dim; c++)
          l += xu[c] * y[c];
        s += o->long_term * l;
      }
      sc[j] = s;
    }
    kk = hr_topk(sc, NULL, H, 10, top);
    int hit = 0;
    for (size_t p = 0; p < kk; p++)
      if (pos[u * H + (size_t)top[p]]) {
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
  goto done;
oom:
  rc = hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
done:
  free(cnt);
  free(pool);
  free(hid);
  free(pos);
  free(vec);
  free(buf);
  free(sc);
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

int hr_eval_loo_rerank(const char *split_dir, int target_test,
                       const hr_seq_opts_t *o, const hr_rerank_opts_t *ro,
                       const char *topk_out, hr_eval_result_t *res,
                       hr_eval_result_t *base, hr_error_t *err) {
  hr_dataset_t ds = {0};
  hr_csr_t h = {0}, hf = {0};
  hr_seq_fit_t fit = {0};
  hr_ials_t lt = {0};
  hr_metrics_t mt = {0}, mb = {0};
  target_t *tg = NULL;
  size_t n_items = 0, ntg = 0, nu, D, d, f, F, nq = 0;
  int32_t *hold = NULL, *cand = NULL, *pos = NULL;
  int64_t *hold_ts = NULL;
  float *cat = NULL, *uc = NULL, *sc = NULL, *buf = NULL, *X = NULL,
        *logpop = NULL, *rp = NULL, *h1 = NULL, *h2 = NULL, *rs = NULL;
  unsigned char *ex = NULL;
  hr_rerank_opts_t r = *ro;
  FILE *out = NULL;
  int N = ro->n_cand, rc;

  memset(res, 0, sizeof(*res));
  memset(base, 0, sizeof(*base));
  if ((rc = load_loo(split_dir, target_test, &ds, &tg, &ntg, &n_items,
                     err)) != 0)
    goto done;
  if ((rc = hr_dataset_histories(&ds, &h)) != 0)
    goto oom;
  nu = h.n_users;
  /* The retrieval models learn without each user's last item (users with
   * 3 or more), which becomes the ranker's training target. */
  hf.n_users = nu;
  hf.n_items = h.n_items;
  hf.ptr = calloc(nu + 1, sizeof(uint64_t));
  hf.items = malloc(sizeof(int32_t) * (h.ptr[nu] + 1));
  hf.ts = malloc(sizeof(int64_t) * (h.ptr[nu] + 1));
  hold = malloc(sizeof(int32_t) * (nu + 1));
  hold_ts = malloc(sizeof(int64_t) * (nu + 1));
  if (!hf.ptr || !hf.items || !hf.ts || !hold || !hold_ts)
    goto oom;
  for (size_t u = 0; u < nu; u++) {
    size_t n = (size_t)(h.ptr[u + 1] - h.ptr[u]), keep = n >= 3 ? n - 1 : n;
    memcpy(hf.items + hf.ptr[u], h.items + h.ptr[u], sizeof(int32_t) * keep);
    memcpy(hf.ts + hf.ptr[u], h.ts + h.ptr[u], sizeof(int64_t) * keep);
    hf.ptr[u + 1] = hf.ptr[u] + keep;
    hold[u] = n >= 3 ? h.items[h.ptr[u] + n - 1] : -1;
    hold_ts[u] = n >= 3 ? h.ts[h.ptr[u] + n - 1] : 0;
  }
  if ((rc = hr_seq_fit(&hf, o, &fit, err)) != 0)
    goto done;
  if ((rc = hr_seq_long_term_fit(&hf, o, &lt, err)) != 0)
    goto done;
  d = (size_t)fit.width;
  f = (size_t)lt.dim;
  D = d + f;
  r.dims.D = (int)D;
  r.dims.d_seq = (int)d;
  F = (size_t)hr_rerank_inputs(&r.dims);
  cat = malloc(sizeof(float) * n_items * D);
  uc = malloc(sizeof(float) * D);
  sc = malloc(sizeof(float) * n_items);
  buf = malloc(sizeof(float) * hr_seq_embed_floats(&fit.dims));
  logpop = calloc(n_items, sizeof(float));
  ex = calloc(n_items, 1);
  cand = malloc(sizeof(int32_t) * (size_t)N);
  X = malloc(sizeof(float) * nu * (size_t)N * F);
  pos = malloc(sizeof(int32_t) * nu);
  if (!cat || !uc || !sc || !buf || !logpop || !ex || !cand || !X || !pos)
    goto oom;
  hr_seq_concat_items(&fit, &lt, NULL, cat);
  for (uint64_t k = 0; k < hf.ptr[nu]; k++)
    logpop[hf.items[k]] += 1;
  for (size_t i = 0; i < n_items; i++)
    logpop[i] = logf(1 + logpop[i]);

  /* user u's [u_seq | w x_u] after `n` items of `hist` at time now */
#define USER_VEC(hist, hts, n, now)                                           \
  do {                                                                        \
    hr_seq_user_vector(&fit, (hist), (hts), (n), (now), buf, uc);             \
    for (size_t c_ = 0; c_ < f; c_++)                                         \
      uc[d + c_] = o->long_term * lt.X[u * f + c_];                           \
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)n_items, (int)D, 1.0f, cat, \
                (int)D, uc, 1, 0.0f, sc, 1);                                  \
  } while (0)

  /* Training queries: the retrieval's top N for the held-out item's
   * request, when it holds that item (an item put in by hand would teach
   * the ranker to distrust the retrieval's scores). */
  for (size_t u = 0; u < nu; u++) {
    size_t n = (size_t)(hf.ptr[u + 1] - hf.ptr[u]), got;
    const int32_t *hi = hf.items + hf.ptr[u];
    const int64_t *ht = hf.ts + hf.ptr[u];
    int p = -1, qgap;
    if (hold[u] < 0 || n == 0)
      continue;
    USER_VEC(hi, ht, n, hold_ts[u]);
    for (size_t j = 0; j < n; j++)
      ex[hi[j]] = 1;
    got = hr_topk(sc, ex, n_items, N, cand);
    for (size_t j = 0; j < n; j++)
      ex[hi[j]] = 0;
    if (got < (size_t)N)
      continue;
    for (int k = 0; k < N; k++)
      if (cand[k] == hold[u])
        p = k;
    if (p < 0) /* only lists the retrieval would serve */
      continue;
    qgap = hr_seq_gap_bucket(hold_ts[u] - ht[n - 1], 1);
    for (int k = 0; k < N; k++)
      hr_rerank_input(&r.dims, uc, cat + (size_t)cand[k] * D,
                      logpop[cand[k]], qgap,
                      X + (nq * (size_t)N + (size_t)k) * F);
    pos[nq++] = p;
  }
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
    USER_VEC(hi, ht, n, tg[k].ts);
    for (size_t j = 0; j < n; j++)
      ex[hi[j]] = 1;
    got = hr_topk(sc, ex, n_items, N, cand);
    for (size_t j = 0; j < n; j++)
      ex[hi[j]] = 0;
    hr_metrics_add(&mb, cand, got < 10 ? got : 10, (int32_t)tg[k].item);
    for (size_t q = 0; q < got; q++)
      hr_rerank_input(&r.dims, uc, cat + (size_t)cand[q] * D,
                      logpop[cand[q]], qgap, X + q * F);
    hr_rerank_forward(&r.dims, rp, X, got, h1, h2, rs);
    size_t nt = hr_topk(rs, NULL, got, 10, top);
    for (size_t q = 0; q < nt; q++)
      top[q] = cand[top[q]];
    hr_metrics_add(&mt, top, nt, (int32_t)tg[k].item);
    if (out != NULL) {
      fputs(hr_idmap_str(ds.users, u), out);
      for (size_t j = 0; j < nt; j++)
        fprintf(out, "\t%s", hr_idmap_str(ds.items, (size_t)top[j]));
      fputc('\n', out);
    }
  }
#undef USER_VEC
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
  free(cand);
  free(pos);
  free(cat);
  free(uc);
  free(sc);
  free(buf);
  free(X);
  free(logpop);
  free(rp);
  free(h1);
  free(h2);
  free(rs);
  free(ex);
  free(tg);
  hr_ials_free(&lt);
  hr_seq_fit_free(&fit);
  hr_csr_free(&hf);
  hr_csr_free(&h);
  hr_dataset_free(&ds);
  return rc;
}

/* ------------------------------------------- loo with fit's selection */

/* load_loo's targets as the selection's. */
static hr_target_t *loo_targets(const target_t *tg, size_t n) {
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

int hr_eval_loo_select(const char *split_dir, int target_test,
                       const hr_select_opts_t *so, const char *topk_out,
                       hr_eval_result_t *res, hr_selection_t *sel,
                       hr_error_t *err) {
  hr_dataset_t ds = {0}, all = {0};
  target_t *tg = NULL, *tt = NULL;
  hr_target_t *v = NULL, *t = NULL;
  size_t n_items = 0, ntg = 0, ntt = 0;
  int rc;

  memset(res, 0, sizeof(*res));
  memset(sel, 0, sizeof(*sel));
  /* chosen on the split's own train -> valid */
  if ((rc = load_loo(split_dir, 0, &ds, &tg, &ntg, &n_items, err)) != 0)
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
  if ((rc = load_loo(split_dir, 1, &all, &tt, &ntt, &n_items, err)) != 0)
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
