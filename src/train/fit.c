/* fit.c -- `hyperrec-train fit`: read the interactions, choose a model
 * (select.c) unless one is named, train it on all the data and publish it
 * as a new version of the slot (docs/training.md). */
#include "hr/log.h"
#include "hr/train.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void hr_fit_opts_default(hr_fit_opts_t *o) {
  memset(o, 0, sizeof(*o));
  o->stream = "hr:events";
  o->keep = 5;
  o->budget_s = HR_FIT_BUDGET_DEFAULT;
  hr_ials_opts_default(&o->ials);
  o->ials.progress = 1;
  hr_ease_opts_default(&o->ease);
  hr_dae_opts_default(&o->dae);
  o->dae.progress = 1;
  hr_seq_opts_default(&o->seq);
  o->seq.progress = 1;
}

/* The manifest's "data": where the interactions came from and what they
 * hold. */
/* Where the rows came from: fit's sources, each with its rows and the rows
 * dropped as already seen in an earlier source. */
typedef struct {
  char name[HR_FIT_MAX_DATA + 1][512];
  const char *format[HR_FIT_MAX_DATA + 1];
  size_t bounds[HR_FIT_MAX_DATA + 2], dups[HR_FIT_MAX_DATA + 1];
  size_t n;
} sources_t;

static json_t *data_summary(const hr_dataset_t *ds, const hr_csr_t *h,
                            const sources_t *src) {
  json_t *d = json_object(), *ctx = json_object(), *list = json_array();
  char joined[1024] = "", formats[256] = "";

  for (size_t k = 0; k < src->n; k++) {
    size_t n = strlen(joined), m = strlen(formats);
    snprintf(joined + n, sizeof(joined) - n, "%s%s", k ? " + " : "",
             src->name[k]);
    if (strstr(formats, src->format[k]) == NULL)
      snprintf(formats + m, sizeof(formats) - m, "%s%s", m ? " + " : "",
               src->format[k]);
    json_array_append_new(
        list, json_pack("{ss ss sI sI}", "source", src->name[k], "format",
                        src->format[k], "rows",
                        (json_int_t)(src->bounds[k + 1] - src->bounds[k] -
                                     src->dups[k]),
                        "duplicates", (json_int_t)src->dups[k]));
  }
  json_object_set_new(d, "source", json_string(joined));
  json_object_set_new(d, "format", json_string(formats));
  json_object_set_new(d, "sources", list);
  json_object_set_new(d, "rows", json_integer((json_int_t)ds->n));
  if (ds->min_rating_set) { /* fit --min-rating: the rows it left out */
    json_object_set_new(d, "min_rating", json_real(ds->min_rating));
    json_object_set_new(d, "rows_below_min_rating",
                        json_integer((json_int_t)ds->below_min_rating));
  }
  if (ds->since_set) { /* fit --since: the window's start, rows before it */
    json_object_set_new(d, "since", json_integer((json_int_t)ds->since));
    json_object_set_new(d, "rows_before_since",
                        json_integer((json_int_t)ds->before_since));
  }
  json_object_set_new(d, "interactions",
                      json_integer((json_int_t)h->ptr[h->n_users]));
  json_object_set_new(d, "users", json_integer((json_int_t)h->n_users));
  json_object_set_new(d, "items", json_integer((json_int_t)h->n_items));
  json_object_set_new(d, "ts_min", json_integer(ds->n ? ds->ts_min : 0));
  json_object_set_new(d, "ts_max", json_integer(ds->n ? ds->ts_max : 0));
  for (size_t c = 0; c < ds->n_ctx; c++) {
    json_t *vals = json_array();
    for (size_t v = 0; v < hr_idmap_size(ds->ctx_vals[c]) && v < 1000; v++)
      json_array_append_new(vals,
                            json_string(hr_idmap_str(ds->ctx_vals[c], v)));
    json_object_set_new(ctx, ds->ctx_name[c], vals);
  }
  json_object_set_new(d, "context", ctx);
  return d;
}

/* Why no interaction is left, in the words of the option that left them
 * out. */
static int no_rows(const hr_fit_opts_t *o, const hr_dataset_t *ds,
                   const sources_t *src, hr_error_t *err) {
  const char *what = src->n > 1 ? "the sources" : src->name[0];
  if (ds->before_since > 0)
    return hr_error_set(err, HR_EINVAL, NULL,
                        "%s: no interactions left: --since %lld left out all "
                        "%zu dated rows", what, (long long)o->since,
                        ds->before_since);
  if (ds->below_min_rating > 0)
    return hr_error_set(err, HR_EINVAL, NULL,
                        "%s: no interactions left: --min-rating %g left out "
                        "all %zu rated rows", what, o->min_rating,
                        ds->below_min_rating);
  return hr_error_set(err, HR_EINVAL, NULL, "%s: no interactions", what);
}

/* A file's format: --format, else by its extension. */
static const char *file_format(const hr_fit_opts_t *o, const char *path) {
  size_t n = strlen(path);
  if (o->format != NULL)
    return o->format;
  return n > 4 && strcmp(path + n - 4, ".csv") == 0 ? "csv" : "movielens";
}

/* The interactions of every source in o (files in order, then the
 * stream), and the catalogue and user attributes, into ds. */
static int read_input(const hr_fit_opts_t *o, hr_dataset_t *ds,
                      sources_t *src, hr_error_t *err) {
  int rc = 0;

  memset(src, 0, sizeof(*src));
  ds->min_rating_set = o->min_rating_set;
  ds->min_rating = o->min_rating;
  ds->since_set = o->since_set;
  ds->since = o->since;
  if (o->items != NULL && (rc = hr_data_read_items(ds, o->items, err)) != 0)
    return rc;
  for (size_t k = 0; k < o->n_data && rc == 0; k++, src->n++) {
    src->format[k] = file_format(o, o->data[k]);
    rc = strcmp(src->format[k], "csv") == 0
             ? hr_data_read_csv(ds, o->data[k], err)
             : hr_data_read_movielens(ds, o->data[k], err);
    snprintf(src->name[k], sizeof(src->name[k]), "%s", o->data[k]);
    src->bounds[k + 1] = ds->n;
  }
  if (rc == 0 && o->redis != NULL) {
    rc = hr_data_read_redis(ds, o->redis, o->stream, err);
    snprintf(src->name[src->n], sizeof(src->name[0]), "redis://%s/%s",
             o->redis, o->stream);
    src->format[src->n++] = "redis-stream";
    src->bounds[src->n] = ds->n;
  }
  if (rc == 0 && (rc = hr_dataset_dedup_sources(ds, src->bounds, src->n,
                                                src->dups)) != 0)
    hr_error_set(err, rc, NULL, "out of memory");
  if (rc == 0 && o->users != NULL)
    rc = hr_data_read_users(ds, o->users, err);
  if (rc != 0)
    return rc;
  if (ds->n == 0)
    return no_rows(o, ds, src, err);
  return 0;
}

/* The candidate --kind names, with the options given. */
static int forced_candidate(const hr_fit_opts_t *o, const hr_dataset_t *ds,
                            hr_cand_t *c, hr_error_t *err) {
  memset(c, 0, sizeof(*c));
  c->ials = o->ials;
  c->seq = o->seq;
  snprintf(c->name, sizeof(c->name), "%s", o->kind);
  if (strcmp(o->kind, "ials") == 0)
    c->kind = HR_CAND_IALS;
  else if (strcmp(o->kind, "seq") == 0) {
    c->kind = HR_CAND_SEQ;
    c->context = o->seq.ctx_slots >= 0;
  } else if (strcmp(o->kind, "ease") == 0) {
    c->kind = HR_CAND_EASE;
    c->ease = o->ease;
  } else if (strcmp(o->kind, "dae") == 0) {
    c->kind = HR_CAND_DAE;
    c->dae = o->dae;
    c->dae.seed = o->ials.seed;
    c->dae.threads = o->ials.threads;
    c->dae.progress = o->ials.progress;
  } else if (strcmp(o->kind, "pop") == 0) {
    c->kind = HR_CAND_POP;
    c->ials.popularity = 1;
    c->context = ds->n_ctx > 0 || ds->n_uattr > 0;
  } else
    return hr_error_set(err, HR_EINVAL, NULL, "unknown --kind \"%s\"",
                        o->kind);
  return 0;
}

/* fit's own choice: candidates trained without each user's newest item,
 * scored on it; *winner gets the chosen one, sel the report. */
static int choose(const hr_fit_opts_t *o, const hr_dataset_t *ds, double t0,
                  hr_selection_t *sel, hr_cand_t *winner, hr_error_t *err) {
  hr_dataset_t train;
  hr_target_t *tg = NULL;
  size_t ntg = 0;
  hr_select_opts_t so = {&o->ials, &o->seq, t0, o->budget_s, "last-item",
                         "each user's newest distinct item (users with 3 or "
                         "more distinct items); the models learn from the "
                         "other rows"};
  int rc = hr_holdout_last(ds, &train, &tg, &ntg, err);

  if (rc != 0)
    return rc;
  rc = hr_select(&train, tg, ntg, ds, &so, sel, err);
  free(tg);
  hr_holdout_free(&train);
  if (rc != 0)
    return rc;
  *winner = sel->r[sel->winner].cand;
  hr_log(HR_LOG_INFO, "model_chosen",
         json_pack("{ss sf sf ss}", "candidate", winner->name, "ndcg10",
                   sel->r[sel->winner].score.ndcg, "ndcg10_se",
                   sel->r[sel->winner].score.ndcg_se, "reason", sel->why));
  return 0;
}

static void prune(const hr_fit_opts_t *o) {
  int removed = 0;
  hr_error_t perr = {0};
  if (hr_model_prune(o->out, o->keep, &removed, &perr) != 0)
    hr_log(HR_LOG_WARN, "prune_failed",
           json_pack("{ss ss}", "slot", o->out, "reason", perr.msg));
  else if (removed > 0)
    hr_log(HR_LOG_INFO, "versions_pruned",
           json_pack("{ss si si}", "slot", o->out, "removed", removed, "kept",
                     o->keep));
}

/* fit --report-anomalies / --drop-anomalous: score the users, drop the
 * most anomalous share from ds; *anom gets report.json's "anomalies". */
static int anomalies(const hr_fit_opts_t *o, hr_dataset_t *ds, json_t **anom,
                     hr_error_t *err) {
  hr_anomaly_t a;
  size_t dropped = 0;
  int rc;
  *anom = NULL;
  if (o->report_anomalies == 0 && !(o->drop_anomalous > 0))
    return 0;
  if ((rc = hr_anomaly_scores(ds, o->ials.seed, &a, err)) != 0)
    return rc;
  *anom = hr_anomaly_report(&a, ds, o->report_anomalies);
  if (o->drop_anomalous > 0 &&
      (rc = hr_anomaly_drop(ds, &a, o->drop_anomalous, &dropped)) != 0)
    rc = hr_error_set(err, rc, NULL, "out of memory");
  json_object_set_new(*anom, "dropped_users", json_integer((json_int_t)dropped));
  json_object_set_new(*anom, "drop_share", json_real(o->drop_anomalous));
  hr_log(HR_LOG_INFO, "anomalies_scored",
         json_pack("{si si sf}", "users", (int)a.n_users, "dropped",
                   (int)dropped, "seconds", a.seconds));
  hr_anomaly_free(&a);
  return rc;
}

int hr_fit_run(const hr_fit_opts_t *o, char *path, size_t cap,
               hr_error_t *err) {
  sources_t *src = malloc(sizeof(*src));
  double t0 = hr__now_s(), seconds = 0;
  hr_dataset_t ds;
  hr_csr_t h = {0};
  hr_ctx_prior_t cp = {0};
  hr_selection_t sel = {0};
  hr_cand_t c;
  json_t *summary = NULL, *anom = NULL, *report = NULL;
  int rc;

  if (src == NULL || (rc = hr_dataset_init(&ds)) != 0) {
    free(src);
    return hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
  }
  if ((rc = read_input(o, &ds, src, err)) != 0 ||
      (rc = anomalies(o, &ds, &anom, err)) != 0)
    goto done;
  if (o->kind != NULL)
    rc = forced_candidate(o, &ds, &c, err);
  else
    rc = choose(o, &ds, t0, &sel, &c, err);
  if (rc != 0)
    goto done;
  if ((rc = hr_dataset_histories(&ds, &h)) != 0) {
    hr_error_set(err, rc, NULL, "out of memory");
    goto done;
  }
  if ((rc = hr_fit_prior(&ds, h.n_items, &cp, err)) != 0)
    goto done;
  summary = data_summary(&ds, &h, src);
  if (sel.report != NULL)
    json_object_set_new(sel.report, "refit",
                        json_pack("{ss si si}", "candidate", c.name, "rows",
                                  (int)ds.n, "users", (int)h.n_users));
  report = sel.report != NULL ? json_incref(sel.report)
           : anom != NULL     ? json_object()
                              : NULL;
  if (anom != NULL)
    json_object_set(report, "anomalies", anom);
  hr_cand_out_t out = {o->out, NULL, summary, report, o->force, 1, 0, NULL,
                       path, cap};
  if ((rc = hr_cand_fit_write(&c, &ds, &h, &cp, &out, &seconds, err)) != 0)
    goto done;
  prune(o);
  hr_log(HR_LOG_INFO, "model_written",
         json_pack("{ss ss ss si si si sf sf}", "path", path, "candidate",
                   c.name, "kind", hr_cand_kind_name(c.kind), "users",
                   (int)h.n_users, "items", (int)h.n_items, "interactions",
                   (int)h.ptr[h.n_users], "train_seconds", seconds,
                   "total_seconds", hr__now_s() - t0));
done:
  hr_selection_free(&sel);
  json_decref(report);
  json_decref(anom);
  json_decref(summary);
  hr_ctx_prior_free(&cp);
  hr_csr_free(&h);
  hr_dataset_free(&ds);
  free(src);
  return rc;
}
