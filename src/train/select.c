/* select.c -- what `fit` and `eval` train when no model is named
 * (docs/training.md, "How fit chooses").
 *
 * Candidates (popularity, popularity with the context prior, iALS, the
 * sequential model in its best documented shape, with and without context
 * features) are each trained on the data minus a validation holdout,
 * written as a version and loaded as the server loads it, and every target
 * is ranked by the server's pipeline (hr_rec_rank) with the target's time
 * and context in the request: the score is what that version would serve.
 * The best NDCG@10 wins, except that a cheaper candidate within one
 * standard error of it wins instead; the report says why. */
#include "hr/log.h"
#include "hr/recommend.h"
#include "hr/train.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------- candidates */

size_t hr_cand_list(const hr_dataset_t *ds, const hr_ials_opts_t *io,
                    const hr_seq_opts_t *so, hr_cand_t *c) {
  size_t n = 0;
  int ctx = ds->n_ctx > 0 || ds->n_uattr > 0;

  memset(c, 0, sizeof(*c) * HR_CAND_MAX);
  hr_ease_opts_t eo;
  hr_dae_opts_t ao;
  hr_ease_opts_default(&eo);
  hr_dae_opts_default(&ao);
  ao.seed = io->seed;
  ao.threads = io->threads;
  c[n] = (hr_cand_t){"popularity", HR_CAND_POP, 0, 0, *io, eo, ao, *so};
  c[n].ials.popularity = 1;
  n++;
  if (ctx) {
    c[n] = (hr_cand_t){"popularity+context", HR_CAND_POP, 1, 1, *io, eo, ao,
                       *so};
    c[n].ials.popularity = 1;
    n++;
  }
  c[n++] = (hr_cand_t){"ials", HR_CAND_IALS, 0, 2, *io, eo, ao, *so};
  c[n++] = (hr_cand_t){"ease", HR_CAND_EASE, 0, 3, *io, eo, ao, *so};
  c[n++] = (hr_cand_t){"dae", HR_CAND_DAE, 0, 4, *io, eo, ao, *so};
  /* The sequential model's best documented shape (docs/training.md,
   * "Test"): four networks, the long-term part at weight 8, the item
   * tower with id dropout 0.1 when the items have attributes. */
  hr_seq_opts_t best = hr_cand_seq_shape(so, HR_SEQ_TRANSFORMER);
  if (ds->attrs != NULL)
    best.id_dropout = 0.1f;
  best.ctx_slots = -1;
  hr_seq_opts_t alt = best;
  c[n++] = (hr_cand_t){"seq", HR_CAND_SEQ, 0, 5, *io, eo, ao, best};
  if (ctx) {
    best.ctx_slots = 0;
    c[n++] = (hr_cand_t){"seq+context", HR_CAND_SEQ, 1, 6, *io, eo, ao,
                         best};
  }
  /* The same model with the CNN and the GRU encoder, two networks of 20
   * epochs (docs/research/training-record.md, "GRU and CNN encoders").
   * They come after the transformer, whose shape is the measured one:
   * they train in the time its refit leaves (hr_select) and rank after
   * it, so they replace it only by beating it by more than one SE. */
  c[n++] = (hr_cand_t){"cnn", HR_CAND_SEQ, 0, 7, *io, eo, ao,
                       hr_cand_seq_shape(&alt, HR_SEQ_CNN)};
  c[n++] = (hr_cand_t){"gru", HR_CAND_SEQ, 0, 8, *io, eo, ao,
                       hr_cand_seq_shape(&alt, HR_SEQ_GRU)};
  return n;
}

hr_seq_opts_t hr_cand_seq_shape(const hr_seq_opts_t *so, int enc) {
  hr_seq_opts_t o = *so;
  o.long_term = 8;
  o.dims.enc = enc;
  if (enc == HR_SEQ_TRANSFORMER) {
    o.members = 4;
    return o;
  }
  o.members = 2;
  o.epochs = 20;
  o.dims.blocks = 0;
  if (o.dims.win > o.dims.L) /* a CNN's window within the sequences */
    o.dims.win = o.dims.L;
  return o;
}

const char *hr_cand_kind_name(hr_cand_kind_t k) {
  static const char *const names[] = {"pop", "ials", "ease", "dae", "seq"};
  return names[k];
}

/* The context prior of ds over n_items items, or none (n_fields 0) when
 * its table would pass 64M floats. */
int hr_fit_prior(const hr_dataset_t *ds, size_t n_items, hr_ctx_prior_t *cp,
                 hr_error_t *err) {
  int rc;
  memset(cp, 0, sizeof(*cp));
  if (ds->n_ctx == 0 && ds->n_uattr == 0)
    return 0;
  if ((rc = hr_ctx_prior_fit(ds, n_items, NULL, 20.0f, cp)) != 0)
    return hr_error_set(err, rc, NULL, "out of memory");
  if (cp->n_values * cp->n_items > ((size_t)64 << 20))
    hr_ctx_prior_free(cp);
  return 0;
}

/* 1 when the seq model can learn context features from cp: a field a
 * request can carry, with values the manifest can hold. */
static int context_usable(const hr_ctx_prior_t *cp, const hr_dataset_t *ds) {
  int served = 0, utf8 = 1;
  for (size_t f = 0; f < cp->n_fields; f++) {
    served += hr_ctx_prior_served(cp, f);
    const hr_idmap_t *vm =
        cp->user[f] ? ds->uattr_vals[cp->col[f]] : ds->ctx_vals[cp->col[f]];
    for (size_t v = 0; vm != NULL && v < hr_idmap_size(vm); v++)
      utf8 &= hr_utf8_valid(hr_idmap_str(vm, v), strlen(hr_idmap_str(vm, v)));
  }
  if (served > 0 && !utf8)
    fprintf(stderr, "hyperrec-train: context values that are not UTF-8: no "
                    "context features\n");
  return served > 0 && utf8;
}

static int write_ials(const hr_cand_t *c, const hr_dataset_t *ds,
                      const hr_csr_t *h, const hr_ctx_prior_t *cp,
                      const hr_cand_out_t *out, double *seconds,
                      hr_error_t *err) {
  hr_ials_opts_t o = c->ials;
  hr_ials_t m = {0};
  json_t *metrics = NULL;
  int rc;

  o.ctx_prior = c->kind == HR_CAND_POP && !c->context ? NULL : cp;
  o.index = out->index && o.index;
  o.selection = out->report;
  o.forced = out->forced;
  if ((rc = hr_ials_fit(h, &o, &m, err)) != 0)
    return rc;
  *seconds = m.seconds;
  metrics = json_pack("{sf}", "train_seconds", m.seconds);
  if (o.progress && c->kind == HR_CAND_IALS)
    json_object_set_new(metrics, "train_loss", json_real(m.loss));
  if (out->slot != NULL)
    rc = hr_train_write(out->slot, ds, h, &m, &o, out->data, metrics,
                        out->path, out->path_cap, err);
  else
    rc = hr_train_write_files(out->dir, ds, h, &m, &o, out->data, "select",
                              1, err);
  json_decref(metrics);
  hr_ials_free(&m);
  return rc;
}

static int write_seq(const hr_cand_t *c, const hr_dataset_t *ds,
                     const hr_csr_t *h, const hr_ctx_prior_t *cp,
                     const hr_cand_out_t *out, double *seconds,
                     hr_error_t *err) {
  hr_seq_opts_t so = c->seq;
  hr_seq_fit_t sf = {0};
  hr_item_tokens_t tok = {0};
  hr_ials_t lt = {0};
  int32_t *crows = NULL;
  json_t *metrics = NULL;
  int rc = 0;

  /* the long-term part takes the iALS options (--factors, --reg, ...) */
  so.lt_opts = c->ials;
  so.lt_opts.index = 0;
  so.lt_opts.ctx_prior = NULL;
  so.lt_opts.selection = NULL;
  so.lt_opts.progress = so.progress;
  so.ctx_prior = cp;
  so.index = out->index && c->ials.index; /* --no-index, --ann-m: iALS's */
  so.ann = c->ials.ann;
  so.progress = c->ials.progress;
  so.deadline = out->deadline;
  so.selection = out->report;
  so.forced = out->forced;
  if (ds->attrs != NULL) { /* the item tower over --items' attributes */
    if ((rc = hr_item_tokens(ds, h->n_items, &tok)) != 0) {
      hr_error_set(err, rc, NULL, "out of memory");
      goto done;
    }
    so.tokens = &tok;
  }
  if (cp != NULL && so.ctx_slots >= 0 && context_usable(cp, ds)) {
    if ((rc = hr_ctx_prior_history_rows(cp, ds, h, &crows)) != 0) {
      hr_error_set(err, rc, NULL, "out of memory");
      goto done;
    }
    so.ctx_rows = crows;
    so.ctx_slots = (int)cp->n_fields;
    so.ctx_values = cp->n_values;
  }
  if ((rc = hr_seq_fit(h, &so, &sf, err)) != 0)
    goto done;
  so.epochs = sf.epochs; /* the manifest says what was trained */
  if (out->epochs != NULL)
    *out->epochs = sf.epochs;
  if (so.long_term > 0 && (rc = hr_ials_fit(h, &so.lt_opts, &lt, err)) != 0)
    goto done;
  *seconds = sf.seconds + lt.seconds;
  metrics = json_pack("{sf sf}", "train_seconds", *seconds, "train_loss",
                      sf.loss);
  if (out->slot != NULL)
    rc = hr_seq_write(out->slot, ds, h, &sf, so.long_term > 0 ? &lt : NULL,
                      &so, out->data, metrics, out->path, out->path_cap, err);
  else
    rc = hr_seq_write_files(out->dir, ds, h, &sf,
                            so.long_term > 0 ? &lt : NULL, &so, "select", 1,
                            err);
done:
  json_decref(metrics);
  hr_ials_free(&lt);
  hr_seq_fit_free(&sf);
  free(crows);
  hr_item_tokens_free(&tok);
  return rc;
}

static int write_ease(const hr_cand_t *c, const hr_dataset_t *ds,
                      const hr_csr_t *h, const hr_ctx_prior_t *cp,
                      const hr_cand_out_t *out, double *seconds,
                      hr_error_t *err) {
  hr_ease_opts_t o = c->ease;
  hr_ease_t e;
  int rc;
  o.ctx_prior = cp;
  o.selection = out->report;
  o.forced = out->forced;
  if ((rc = hr_ease_fit(h, &o, &e, err)) != 0)
    return rc;
  *seconds = e.seconds;
  json_t *metrics = json_pack("{sf}", "train_seconds", e.seconds);
  rc = hr_ease_write(out->slot, out->dir, ds, h, &e, &o, out->data, metrics,
                     out->path, out->path_cap, err);
  json_decref(metrics);
  hr_ease_free(&e);
  return rc;
}

static int write_dae(const hr_cand_t *c, const hr_dataset_t *ds,
                     const hr_csr_t *h, const hr_ctx_prior_t *cp,
                     const hr_cand_out_t *out, double *seconds,
                     hr_error_t *err) {
  hr_dae_opts_t o = c->dae;
  hr_dae_t m;
  int rc;
  o.ctx_prior = cp;
  o.selection = out->report;
  o.forced = out->forced;
  o.deadline = out->deadline;
  o.index = out->index && c->ials.index;
  o.ann = c->ials.ann;
  if ((rc = hr_dae_fit(h, &o, &m, err)) != 0)
    return rc;
  *seconds = m.seconds;
  json_t *metrics = json_pack("{sf sf}", "train_seconds", m.seconds,
                              "train_loss", m.loss);
  rc = hr_dae_write(out->slot, out->dir, ds, h, &m, &o, out->data, metrics,
                    out->path, out->path_cap, err);
  json_decref(metrics);
  hr_dae_free(&m);
  return rc;
}

int hr_cand_fit_write(const hr_cand_t *c, const hr_dataset_t *ds,
                      const hr_csr_t *h, const hr_ctx_prior_t *cp,
                      const hr_cand_out_t *out, double *seconds,
                      hr_error_t *err) {
  *seconds = 0;
  if (cp != NULL && cp->n_fields == 0)
    cp = NULL;
  if (c->kind == HR_CAND_SEQ)
    return write_seq(c, ds, h, cp, out, seconds, err);
  if (c->kind == HR_CAND_EASE)
    return write_ease(c, ds, h, cp, out, seconds, err);
  if (c->kind == HR_CAND_DAE)
    return write_dae(c, ds, h, cp, out, seconds, err);
  return write_ials(c, ds, h, cp, out, seconds, err);
}

/* ------------------------------------------------------------- holdout */

int hr_holdout_last(const hr_dataset_t *ds, hr_dataset_t *train,
                    hr_target_t **tg_out, size_t *ntg_out, hr_error_t *err) {
  size_t nu = hr_idmap_size(ds->users), ntg = 0, w = 0;
  hr_csr_t full = {0};
  hr_target_t *tg = NULL;
  int32_t *hide = NULL;
  int rc;

  *train = *ds; /* the maps and attributes are shared: hr_holdout_free */
  train->u = train->i = NULL;
  train->ts = NULL;
  train->cv = NULL;
  train->n = train->cap = 0;
  *tg_out = NULL;
  *ntg_out = 0;
  if ((rc = hr_dataset_histories(ds, &full)) != 0)
    return hr_error_set(err, rc, NULL, "out of memory");
  tg = malloc(sizeof(*tg) * (nu + 1));
  hide = malloc(sizeof(*hide) * (nu + 1));
  train->u = malloc(sizeof(int32_t) * (ds->n + 1));
  train->i = malloc(sizeof(int32_t) * (ds->n + 1));
  train->ts = malloc(sizeof(int64_t) * (ds->n + 1));
  if (ds->cv != NULL)
    train->cv = malloc(sizeof(int32_t) * HR_DS_CTX * (ds->n + 1));
  if (!tg || !hide || !train->u || !train->i || !train->ts ||
      (ds->cv != NULL && train->cv == NULL)) {
    rc = hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
    goto done;
  }
  /* each user with 3 or more distinct items: the newest is the target */
  for (size_t u = 0; u < nu; u++) {
    uint64_t a = full.ptr[u], n = full.ptr[u + 1] - a;
    hide[u] = -1;
    if (n < 3)
      continue;
    hide[u] = full.items[a + n - 1];
    tg[ntg++] = (hr_target_t){(int32_t)u, full.items[a + n - 1],
                              full.ts[a + n - 1],
                              (int64_t)full.row[a + n - 1]};
  }
  for (size_t r = 0; r < ds->n; r++) {
    if (ds->i[r] == hide[ds->u[r]])
      continue;
    train->u[w] = ds->u[r];
    train->i[w] = ds->i[r];
    train->ts[w] = ds->ts[r];
    if (ds->cv != NULL)
      memcpy(train->cv + w * HR_DS_CTX, ds->cv + r * HR_DS_CTX,
             sizeof(int32_t) * HR_DS_CTX);
    w++;
  }
  train->n = train->cap = w;
  if (ntg == 0)
    rc = hr_error_set(err, HR_EINVAL, NULL, "no user has 3 or more distinct "
                      "items: nothing to validate a choice on (give --kind)");
done:
  free(hide);
  hr_csr_free(&full);
  if (rc != 0) {
    free(tg);
    hr_holdout_free(train);
    return rc;
  }
  *tg_out = tg;
  *ntg_out = ntg;
  return 0;
}

void hr_holdout_free(hr_dataset_t *train) {
  free(train->u);
  free(train->i);
  free(train->ts);
  free(train->cv);
  memset(train, 0, sizeof(*train));
}

/* ------------------------------------------------------------- scoring */

/* The request for target t: its user, its time, and the context values
 * and user attributes of its row in cds (NULL: none), mapped to the
 * request's fields as a caller would send them. */
static void target_request(const hr_dataset_t *ids, const hr_target_t *t,
                           const hr_dataset_t *cds, hr_recommend_req_t *r) {
  memset(r, 0, sizeof(*r));
  r->user_id = hr_idmap_str(ids->users, (size_t)t->user);
  r->k = 10;
  r->ts = t->ts > 0 ? t->ts : -1;
  if (cds == NULL || t->row < 0 || (size_t)t->row >= cds->n)
    return;
  for (size_t c = 0; cds->cv != NULL && c < cds->n_ctx; c++) {
    int slot = cds->cv_slot[c], f;
    if (slot < 0)
      continue;
    int32_t v = cds->cv[(size_t)t->row * HR_DS_CTX + (size_t)slot];
    if (v < 0)
      continue;
    const char *name = cds->ctx_name[c];
    const char *val = hr_idmap_str(cds->ctx_vals[c], (size_t)v);
    for (f = 0; f < HR_CTX_FIELDS; f++)
      if (strcmp(name, hr_ctx_field_names[f]) == 0)
        break;
    if (f < HR_CTX_FIELDS) {
      if (strcmp(name, "tz") != 0 || hr_tz_valid(val))
        r->ctx[f] = val;
    } else if (hr_api_ctx_extra_name(name) &&
               r->n_ctx_extra < HR_API_MAX_CTX_EXTRA) {
      r->ctx_extra_name[r->n_ctx_extra] = name;
      r->ctx_extra_val[r->n_ctx_extra++] = val;
    }
  }
  size_t u = (size_t)hr_idmap_find(cds->users, r->user_id, strlen(r->user_id));
  for (size_t c = 0; c < cds->n_uattr && u < cds->uattr_users &&
                     r->n_uattr < HR_API_MAX_USER_ATTRS; c++) {
    int32_t v = cds->uattr[u * HR_DS_UATTR + c];
    if (v < 0)
      continue;
    r->uattr_name[r->n_uattr] = cds->uattr_name[c];
    r->uattr_val[r->n_uattr++] = hr_idmap_str(cds->uattr_vals[c], (size_t)v);
  }
}

int hr_score_version(const char *vdir, const hr_dataset_t *ids,
                     const hr_target_t *tg, size_t ntg,
                     const hr_dataset_t *cds, FILE *topk, hr_score_t *res,
                     hr_error_t *err) {
  hr_model_t *m = hr_model_open(vdir, err);
  hr_rec_worker_t *w = NULL;
  hr_snapshot_t snap = {0};
  hr_config_t cfg;
  double s1 = 0, s2 = 0, h1 = 0, rr = 0;
  size_t shown = 0;
  unsigned char *seen = NULL;
  int rc = 0;

  memset(res, 0, sizeof(*res));
  if (m == NULL)
    return err && err->code ? err->code : HR_EFORMAT;
  if ((seen = calloc(hr_model_n_items(m) + 1, 1)) == NULL) {
    hr_model_free(m);
    return hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
  }
  /* the server's pipeline: the same user vector, exclusions (the stored
   * history), retrieval (every item: no index) and top-k */
  hr_config_defaults(&cfg);
  cfg.recommend.user_cache_mb = 0;
  snap.model = m;
  if ((w = hr_rec_worker_new()) == NULL) {
    rc = hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
    goto done;
  }
  for (size_t k = 0; k < ntg; k++) {
    hr_recommend_req_t r;
    hr_rec_result_t got;
    const char *iid = hr_idmap_str(ids->items, (size_t)tg[k].item);
    long want = hr_model_item_index(m, iid);
    double g = 0;

    target_request(ids, &tg[k], cds, &r);
    if ((rc = hr_rec_rank(w, &snap, &cfg, &r, NULL, 0, &got, err)) != 0)
      goto done;
    for (size_t j = 0; j < got.n_items; j++) {
      if (got.items[j].index == want && want >= 0) {
        g = 1.0 / log2((double)j + 2.0);
        h1 += 1;
        rr += 1.0 / ((double)j + 1.0);
      }
      shown += !seen[got.items[j].index];
      seen[got.items[j].index] = 1;
    }
    s1 += g;
    s2 += g * g;
    if (topk != NULL) {
      fputs(r.user_id, topk);
      for (size_t j = 0; j < got.n_items; j++)
        fprintf(topk, "\t%s", hr_model_item_id(m, (size_t)got.items[j].index));
      fputc('\n', topk);
    }
  }
  res->users = ntg;
  if (ntg > 0) {
    double n = (double)ntg, mean = s1 / n, hr = h1 / n;
    res->ndcg = mean;
    res->hr = hr;
    res->mrr = rr / n;
    res->coverage = (double)shown / (double)hr_model_n_items(m);
    res->ndcg_se = ntg > 1 ? sqrt((s2 / n - mean * mean) * n / (n - 1) / n)
                           : 0;
    res->hr_se = ntg > 1 ? sqrt(hr * (1 - hr) / (n - 1)) : 0;
  }
done:
  free(seen);
  hr_rec_worker_free(w);
  hr_model_free(m);
  return rc;
}

/* ----------------------------------------------------------- selection */

/* Remove a version directory written for scoring (its files, then it). */
static void rm_dir(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *e;
  char p[4400];
  while (d != NULL && (e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
    unlink(p);
  }
  if (d != NULL)
    closedir(d);
  rmdir(dir);
}

/* Train candidate c on train, write it to a private directory, score it on
 * the targets; r gets the outcome (a candidate that fails or runs over its
 * deadline is marked so, not an error of the selection). */
static int try_candidate(const hr_cand_t *c, const hr_dataset_t *train,
                         const hr_csr_t *h, const hr_ctx_prior_t *cp,
                         const hr_target_t *tg, size_t ntg,
                         const hr_dataset_t *cds, double deadline,
                         hr_cand_result_t *r, hr_error_t *err) {
  char tmp[] = "/tmp/hr-select-XXXXXX", vdir[64];
  hr_cand_out_t out = {0};
  hr_error_t e = {0};
  hr_score_t s;
  int rc, epochs = c->seq.epochs;

  if (mkdtemp(tmp) == NULL)
    return hr_error_set(err, HR_EIO, NULL, "mkdtemp: %s", strerror(errno));
  snprintf(vdir, sizeof(vdir), "%s/1", tmp);
  if (mkdir(vdir, 0700) != 0) {
    rmdir(tmp);
    return hr_error_set(err, HR_EIO, NULL, "mkdir %s: %s", vdir,
                        strerror(errno));
  }
  out.dir = vdir;
  out.deadline = deadline;
  out.epochs = &epochs;
  hr_cand_t quiet = *c; /* one log line per candidate, not per epoch */
  quiet.ials.progress = 0;
  quiet.seq.progress = 0;
  hr_log(HR_LOG_INFO, "candidate_training",
         json_pack("{ss sf}", "name", c->name, "deadline_in_s",
                   deadline > 0 ? deadline - hr__now_s() : 0.0));
  double t0 = hr__now_s();
  rc = hr_cand_fit_write(&quiet, train, h, cp, &out, &r->seconds, &e);
  if (rc != 0) /* the time it had before it stopped */
    r->seconds = hr__now_s() - t0;
  if (rc == 0)
    rc = hr_score_version(vdir, train, tg, ntg, cds, NULL, &s, &e);
  rm_dir(vdir);
  rmdir(tmp);
  if (rc == HR_ENOMEM || rc == HR_EIO) {
    *err = e;
    return rc;
  }
  if (rc != 0) {
    r->state = rc == HR_ETIMEOUT ? HR_CAND_OVER_BUDGET : HR_CAND_FAILED;
    snprintf(r->note, sizeof(r->note), "%s", e.msg);
    return 0;
  }
  r->state = HR_CAND_SCORED;
  r->score = s;
  if (c->kind == HR_CAND_SEQ && epochs < c->seq.epochs) {
    /* the refit trains what was scored */
    snprintf(r->note, sizeof(r->note), "trained %d of %d epochs to keep "
             "within the budget", epochs, c->seq.epochs);
    r->cand.seq.epochs = epochs;
  }
  return 0;
}

/* The winner among the scored: the best NDCG@10, or the cheapest within
 * one standard error of it; its index, with the reason in why. */
static long choose(const hr_cand_result_t *r, size_t n, char *why,
                   size_t cap) {
  long best = -1, win = -1;
  for (size_t k = 0; k < n; k++)
    if (r[k].state == HR_CAND_SCORED &&
        (best < 0 || r[k].score.ndcg > r[best].score.ndcg))
      best = (long)k;
  if (best < 0)
    return -1;
  double bar = r[best].score.ndcg - r[best].score.ndcg_se;
  for (size_t k = 0; k < n; k++)
    if (r[k].state == HR_CAND_SCORED && r[k].score.ndcg >= bar &&
        (win < 0 || r[k].cand.cost < r[win].cand.cost))
      win = (long)k;
  if (win == best)
    snprintf(why, cap, "%s has the best validation NDCG@10 (%.4f, SE %.4f); "
             "no candidate before it in the cost order is within one "
             "standard error of it",
             r[win].cand.name, r[win].score.ndcg, r[win].score.ndcg_se);
  else
    snprintf(why, cap, "%s (NDCG@10 %.4f) is within one standard error of "
             "the best, %s (%.4f, SE %.4f), and comes first in the cost "
             "order (docs/training.md, \"How fit chooses\")",
             r[win].cand.name, r[win].score.ndcg, r[best].cand.name,
             r[best].score.ndcg, r[best].score.ndcg_se);
  return win;
}

static const char *const state_name[] = {"scored", "over_budget", "failed",
                                         "skipped"};

static json_t *report_json(const hr_selection_t *sel,
                           const hr_select_opts_t *o, int item_tower,
                           size_t ntg, double seconds) {
  json_t *cands = json_array();
  for (size_t k = 0; k < sel->n; k++) {
    const hr_cand_result_t *r = &sel->r[k];
    json_t *c = json_pack("{ss ss sb si ss sf}", "name", r->cand.name,
                          "kind", hr_cand_kind_name(r->cand.kind), "context",
                          r->cand.context, "cost_rank", r->cand.cost,
                          "state", state_name[r->state], "train_seconds",
                          r->seconds);
    if (r->state == HR_CAND_SCORED) {
      json_object_set_new(c, "NDCG@10", json_real(r->score.ndcg));
      json_object_set_new(c, "NDCG@10_se", json_real(r->score.ndcg_se));
      json_object_set_new(c, "HR@10", json_real(r->score.hr));
    }
    if (r->cand.kind == HR_CAND_SEQ)
      json_object_set_new(
          c, "shape",
          json_pack("{ss si si so sb}", "encoder",
                    hr_seq_enc_name(r->cand.seq.dims.enc), "members",
                    r->cand.seq.members, "epochs", r->cand.seq.epochs,
                    "long_term", hr__jfloat(r->cand.seq.long_term),
                    "item_tower", item_tower));
    if (r->note[0] != '\0')
      json_object_set_new(c, "note", json_string(r->note));
    json_array_append_new(cands, c);
  }
  json_t *rep = json_pack("{ss s{ss ss si} sf sf so}", "metric", "NDCG@10",
                          "holdout", "definition", o->holdout,
                          "description", o->holdout_desc, "targets",
                          (int)ntg, "budget_seconds", o->budget_s,
                          "selection_seconds", seconds, "candidates", cands);
  if (sel->winner >= 0) {
    const hr_cand_result_t *w = &sel->r[sel->winner];
    json_object_set_new(rep, "winner", json_string(w->cand.name));
    json_object_set_new(rep, "reason", json_string(sel->why));
    json_object_set_new(rep, "validation",
                        json_pack("{ss sf sf sf si}", "holdout", o->holdout,
                                  "NDCG@10", w->score.ndcg, "NDCG@10_se",
                                  w->score.ndcg_se, "HR@10", w->score.hr,
                                  "targets", (int)ntg));
  }
  return rep;
}

/* 1 for the GRU and CNN candidates, which train after the others. */
static int is_extra(const hr_cand_t *c) {
  return c->kind == HR_CAND_SEQ && c->seq.dims.enc != HR_SEQ_TRANSFORMER;
}

/* When candidate k of c[0..n) must end (0: no deadline, a cheap model)
 * with `left` seconds of the budget left at `now`. A neural candidate
 * leaves room for the neural ones after it and for its own refit: an
 * equal share each. The GRU and CNN ones (last) share what is left after
 * the refit of the best scored so far (r[0..k)), its training time and
 * a tenth, with their own refits. */
static double cand_deadline(const hr_cand_t *c, size_t k, size_t n,
                            const hr_cand_result_t *r, double now,
                            double left) {
  size_t more = 0;
  long best = -1;
  if (c[k].kind != HR_CAND_SEQ && c[k].kind != HR_CAND_DAE)
    return 0;
  for (size_t j = k; j < n; j++)
    more += (c[j].kind == HR_CAND_SEQ || c[j].kind == HR_CAND_DAE) &&
            is_extra(&c[j]) == is_extra(&c[k]);
  if (!is_extra(&c[k]))
    return now + left / (double)(more + 1);
  for (size_t j = 0; j < k; j++)
    if (r[j].state == HR_CAND_SCORED &&
        (best < 0 || r[j].score.ndcg > r[best].score.ndcg))
      best = (long)j;
  if (best >= 0)
    left -= 1.1 * r[best].seconds;
  return now + (left > 0 ? left : 0) / (double)(more + 1);
}

int hr_select(const hr_dataset_t *train, const hr_target_t *tg, size_t ntg,
              const hr_dataset_t *cds, const hr_select_opts_t *o,
              hr_selection_t *sel, hr_error_t *err) {
  hr_csr_t h = {0};
  hr_ctx_prior_t cp = {0};
  hr_cand_t c[HR_CAND_MAX];
  double t0 = hr__now_s();
  int rc;

  memset(sel, 0, sizeof(*sel));
  sel->winner = -1;
  if ((rc = hr_dataset_histories(train, &h)) != 0)
    return hr_error_set(err, rc, NULL, "out of memory");
  if ((rc = hr_fit_prior(train, h.n_items, &cp, err)) != 0)
    goto done;
  sel->n = hr_cand_list(train, o->ials, o->seq, c);
  for (size_t k = 0; k < sel->n; k++) {
    hr_cand_result_t *r = &sel->r[k];
    double now = hr__now_s();
    double left = (o->t0 > 0 ? o->t0 : t0) + o->budget_s - now;
    r->cand = c[k];
    if (c[k].context && (cp.n_fields == 0 ||
                         (c[k].kind == HR_CAND_SEQ &&
                          !context_usable(&cp, train)))) {
      r->state = HR_CAND_SKIPPED;
      snprintf(r->note, sizeof(r->note), "no context field a request can "
               "carry");
      continue;
    }
    if (c[k].kind == HR_CAND_EASE && h.n_items > HR_EASE_MAX_ITEMS) {
      r->state = HR_CAND_SKIPPED;
      snprintf(r->note, sizeof(r->note), "%zu items: over %d, EASE's n x n "
               "item matrix would be too large to serve", h.n_items,
               HR_EASE_MAX_ITEMS);
      continue;
    }
    if (left <= 0) {
      r->state = HR_CAND_OVER_BUDGET;
      snprintf(r->note, sizeof(r->note), "not trained: the budget was spent");
      continue;
    }
    double deadline = cand_deadline(c, k, sel->n, sel->r, now, left);
    if (deadline > 0 && deadline < now + 1) {
      r->state = HR_CAND_OVER_BUDGET;
      snprintf(r->note, sizeof(r->note), "not trained: the time left is "
               "the refit's of the best so far");
      continue;
    }
    if ((rc = try_candidate(&c[k], train, &h, &cp, tg, ntg, cds, deadline, r,
                            err)) != 0)
      goto done;
    hr_log(HR_LOG_INFO, "candidate",
           json_pack("{ss ss sf sf sf}", "name", r->cand.name, "state",
                     state_name[r->state], "ndcg10", r->score.ndcg,
                     "ndcg10_se", r->score.ndcg_se, "train_seconds",
                     r->seconds));
  }
  sel->winner = choose(sel->r, sel->n, sel->why, sizeof(sel->why));
  sel->report = report_json(sel, o, train->attrs != NULL, ntg,
                            hr__now_s() - t0);
  if (sel->winner < 0)
    rc = hr_error_set(err, HR_EINTERNAL, NULL, "no candidate could be "
                      "trained and scored (report: %s)",
                      sel->r[0].note[0] ? sel->r[0].note : "no detail");
done:
  hr_ctx_prior_free(&cp);
  hr_csr_free(&h);
  return rc;
}

void hr_selection_free(hr_selection_t *sel) {
  json_decref(sel->report);
  sel->report = NULL;
}
