/* handlers.c -- /recommend, /event and the operational endpoints. */
#include "hr/api.h"
#include "hr/ctxstore.h"
#include "hr/experiments.h"
#include "hr/features.h"
#include "hr/log.h"
#include "hr/metrics.h"
#include "hr/model.h"
#include "hr/ranker.h"
#include "internal.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void hr__http_reply_json(hr_hresp_t *resp, int status, json_t *o,
                         int digits) {
  resp->status = status;
  resp->body = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER |
                                     JSON_REAL_PRECISION(digits))
                 : NULL;
  json_decref(o);
  if (resp->body == NULL) {
    hr_error_t e = {0};
    hr_error_set(&e, HR_ENOMEM, "", "out of memory");
    hr__http_error(resp, &e);
  }
}

/* Scores are floats: 7 significant digits say all they hold. */
static void reply_json(hr_hresp_t *resp, int status, json_t *o) {
  hr__http_reply_json(resp, status, o, 7);
}

/* Dense indices of the ids the model knows, with each one's time carried
 * along into out_ts when not NULL (ts NULL: unknown, -1). */
static size_t map_ids(const hr_model_t *m, const char *const *ids,
                      const long long *ts, size_t n, long *out,
                      int64_t *out_ts) {
  size_t w = 0;
  for (size_t i = 0; i < n; i++) {
    long idx = hr_model_item_index(m, ids[i]);
    if (idx >= 0) {
      if (out_ts != NULL)
        out_ts[w] = ts ? (int64_t)ts[i] : -1;
      out[w++] = idx;
    }
  }
  return w;
}

/* ------------------------------------------------------------ retrieval */

/* Each worker thread keeps one ANN search scratch (visited marks and
 * heaps, O(catalogue) bytes), grown when a larger model arrives and freed
 * when the thread exits. */
typedef struct {
  hr_ann_scratch_t *s;
  size_t cap;
} scratch_slot;

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_slot_free(void *p) {
  scratch_slot *slot = p;
  hr_ann_scratch_free(slot->s);
  free(slot);
}

static void scratch_key_make(void) {
  pthread_key_create(&scratch_key, scratch_slot_free);
}

static hr_ann_scratch_t *thread_scratch(const hr_ann_t *a) {
  scratch_slot *slot;

  pthread_once(&scratch_once, scratch_key_make);
  slot = pthread_getspecific(scratch_key);
  if (slot == NULL) {
    slot = calloc(1, sizeof(*slot));
    if (slot == NULL || pthread_setspecific(scratch_key, slot) != 0) {
      free(slot);
      return NULL;
    }
  }
  if (slot->s == NULL || slot->cap < hr_ann_size(a)) {
    hr_ann_scratch_free(slot->s);
    slot->s = hr_ann_scratch_new(a);
    slot->cap = slot->s ? hr_ann_size(a) : 0;
  }
  return slot->s;
}

/* The filtered request scored exactly over the items it allows: `base`
 * (the prior, for "popularity") or the model's scores of u. Excluded
 * items (sorted) are skipped while the bitmap is walked. */
static int rank_subset(const hr_model_t *m, const float *u,
                       const float *base, const long *excl, size_t n_excl,
                       const uint64_t *allow, size_t n_allow, size_t k,
                       hr_scored_t *top, size_t *n_top) {
  size_t n = hr_model_n_items(m), w = 0, e = 0;
  uint32_t *ids = malloc(sizeof(uint32_t) * (n_allow + 1));
  float *sc = malloc(sizeof(float) * (n_allow + 1));

  if (ids == NULL || sc == NULL) {
    free(ids);
    free(sc);
    return HR_ENOMEM;
  }
  for (size_t wd = 0; wd < (n + 63) / 64; wd++)
    for (uint64_t b = allow[wd]; b != 0; b &= b - 1) {
      size_t i = wd * 64 + (size_t)__builtin_ctzll(b);
      while (e < n_excl && (size_t)excl[e] < i)
        e++;
      if (e < n_excl && (size_t)excl[e] == i)
        continue;
      ids[w++] = (uint32_t)i;
    }
  if (base != NULL)
    for (size_t j = 0; j < w; j++)
      sc[j] = base[ids[j]];
  else
    hr_model_score_subset(m, u, ids, w, sc);
  *n_top = hr_ranker_topk(sc, w, NULL, 0, k, top);
  for (size_t i = 0; i < *n_top; i++)
    top[i].index = (long)ids[top[i].index];
  free(ids);
  free(sc);
  return 0;
}

/* The request's context by the names a model's context prior and context
 * features use: the context fields, context.extra and user_attrs
 * ("location", "companion", "user.age", ...). */
#define PRIOR_Q_MAX \
  (HR_CTX_FIELDS + HR_API_MAX_CTX_EXTRA + HR_API_MAX_USER_ATTRS)
typedef struct {
  const char *name[PRIOR_Q_MAX];
  const char *val[PRIOR_Q_MAX];
  size_t n;
} prior_q_t;

static void prior_query(const hr_context_t *cx, const hr_recommend_req_t *r,
                        prior_q_t *q) {
  q->n = 0;
  for (int f = 0; f < HR_CTX_FIELDS; f++) {
    q->name[q->n] = hr_ctx_field_names[f];
    q->val[q->n++] = cx->val[f];
  }
  for (size_t a = 0; a < r->n_ctx_extra && q->n < PRIOR_Q_MAX; a++) {
    q->name[q->n] = r->ctx_extra_name[a];
    q->val[q->n++] = r->ctx_extra_val[a];
  }
  for (size_t a = 0; a < r->n_uattr && q->n < PRIOR_Q_MAX; a++) {
    q->name[q->n] = r->uattr_name[a];
    q->val[q->n++] = r->uattr_val[a];
  }
}

/* The k best items for user vector u, not in excl (sorted, unique), and
 * only items in the filter bitmap `allow` when it is not NULL:
 *  - "popularity" when u is zero (the model knows nothing of the user),
 *  - "ann": the top candidates by inner product from the index (exact
 *    with its norm-bound pass, ann.exact), scored with the prior, when the
 *    version has an index and the catalogue is at least ann.min_items,
 *  - "exact" otherwise: every item scored (one sgemv), or with a filter
 *    every item that passes it -- through the norm-bound pass alone when
 *    the catalogue is large and the filter passes many items (the pass
 *    skips filtered-out items for the price of a bit test and stops
 *    early), by scoring the matching items otherwise.
 *    The graph is not used for filters: a filter correlated with u (a
 *    category the user does not favour) costs the search far more than
 *    the pass, and recall (docs/benchmarks.md, "Attribute filters").
 * Returns 0 or HR_ENOMEM. */
static int rank_items(const hr_model_t *m, const hr_config_t *cfg,
                      int candidates, const float *u, const prior_q_t *pq,
                      const long *excl, size_t n_excl,
                      const uint64_t *allow, size_t n_allow, size_t k,
                      hr_scored_t *top, size_t *n_top, const char **path) {
  size_t n = hr_model_n_items(m);
  const hr_ann_t *a = hr_model_ann(m);
  int zero = 1;

  for (int i = 0; i < hr_model_dim(m) && zero; i++)
    zero = u[i] == 0.0f;
  if (zero) {
    /* Nothing known of the user: the context prior when the model has one
     * and the request's context has a value it knows, else popularity. */
    if (hr_model_context_scores(m, pq->name, pq->val, pq->n,
                                NULL) > 0) {
      int rc = 0;
      float *cs = malloc(sizeof(float) * (n + 1));
      if (cs == NULL)
        return HR_ENOMEM;
      hr_model_context_scores(m, pq->name, pq->val, pq->n, cs);
      *path = "context_popularity";
      hr_metrics_retrieval(HR_RET_CTX_POPULARITY);
      if (allow != NULL)
        rc = rank_subset(m, u, cs, excl, n_excl, allow, n_allow, k, top,
                         n_top);
      else
        *n_top = hr_ranker_topk(cs, n, excl, n_excl, k, top);
      free(cs);
      return rc;
    }
    *path = "popularity";
    hr_metrics_retrieval(HR_RET_POPULARITY);
    if (allow != NULL)
      return rank_subset(m, u, hr_model_item_prior(m), excl, n_excl, allow,
                         n_allow, k, top, n_top);
    *n_top = hr_ranker_topk(hr_model_item_prior(m), n, excl, n_excl, k, top);
    return 0;
  }
  /* A filter passing few items (under ann.min_items, or under 1/16 of the
   * catalogue) is cheaper to answer by scoring them: on the 622k-item
   * model the pass won from 10 % of the catalogue up and lost at 5 %
   * (docs/benchmarks.md, "Attribute filters"). */
  if (a != NULL && n >= (size_t)cfg->ann.min_items &&
      (allow == NULL || (n_allow >= (size_t)cfg->ann.min_items &&
                         n_allow >= n / 16))) {
    size_t want = (size_t)(candidates > 0 ? candidates : cfg->ann.candidates);
    size_t nc = want > k ? want : k;
    int ef = cfg->ann.ef > (int)nc ? cfg->ann.ef : (int)nc;
    hr_ann_scratch_t *s = thread_scratch(a);
    uint32_t *ids = malloc(sizeof(uint32_t) * (nc + n_excl + 1));
    float *sc = malloc(sizeof(float) * (nc + 1));
    uint32_t *ex = ids + nc;
    size_t got, scanned = 0;

    if (s == NULL || ids == NULL || sc == NULL) {
      free(ids);
      free(sc);
      return HR_ENOMEM;
    }
    for (size_t i = 0; i < n_excl; i++)
      ex[i] = (uint32_t)excl[i];
    if (allow != NULL) /* exact: the norm pass alone over what passes */
      got = hr_model_retrieve(m, s, u, nc, 0, ex, n_excl, allow, n_allow,
                              ids, sc, &scanned);
    else if (cfg->ann.exact)
      got = hr_model_retrieve(m, s, u, nc, ef, ex, n_excl, NULL, 0, ids, sc,
                              &scanned);
    else
      got = hr_model_ann_search(m, s, u, nc, ef, ex, n_excl, NULL, 0, ids);
    if (scanned == SIZE_MAX) { /* the exact pass ran out of memory */
      free(ids);
      free(sc);
      return HR_ENOMEM;
    }
    hr_model_score_subset(m, u, ids, got, sc);
    *n_top = hr_ranker_topk(sc, got, NULL, 0, k, top);
    for (size_t i = 0; i < *n_top; i++)
      top[i].index = (long)ids[top[i].index];
    free(ids);
    free(sc);
    *path = allow != NULL ? "exact" : "ann";
    hr_metrics_retrieval(allow != NULL    ? HR_RET_FILTER_PASS
                         : cfg->ann.exact ? HR_RET_ANN_EXACT
                                          : HR_RET_ANN);
    return 0;
  }
  *path = "exact";
  hr_metrics_retrieval(allow != NULL && n_allow < n ? HR_RET_FILTER_SCAN
                                                    : HR_RET_ALL);
  if (allow != NULL && n_allow < n)
    return rank_subset(m, u, NULL, excl, n_excl, allow, n_allow, k, top,
                       n_top);
  float *scores = malloc(sizeof(float) * (n + 1));
  if (scores == NULL)
    return HR_ENOMEM;
  hr_model_score_items(m, u, scores);
  *n_top = hr_ranker_topk(scores, n, excl, n_excl, k, top);
  free(scores);
  return 0;
}

typedef struct {
  long idx;
  size_t pos;
} idx_pos;

static int cmp_idx_pos(const void *a, const void *b) {
  const idx_pos *x = a, *y = b;
  if (x->idx != y->idx)
    return (x->idx > y->idx) - (x->idx < y->idx);
  return (x->pos > y->pos) - (x->pos < y->pos);
}

/* Drops repeated items, keeping each one's first (newest) position and the
 * order, and ts[] (may be NULL) in step. O(n log n): histories can be long
 * (recommend.max_history). */
static size_t dedupe_keep_first(long *v, int64_t *ts, size_t n) {
  idx_pos *t;
  size_t w = 0;

  if (n < 2)
    return n;
  t = malloc(sizeof(*t) * n);
  if (t == NULL) { /* keep duplicates rather than fail the request */
    return n;
  }
  for (size_t i = 0; i < n; i++)
    t[i] = (idx_pos){v[i], i};
  qsort(t, n, sizeof(*t), cmp_idx_pos);
  for (size_t i = 0; i < n; i++) /* mark later copies */
    if (i > 0 && t[i].idx == t[i - 1].idx)
      v[t[i].pos] = -1;
  free(t);
  for (size_t i = 0; i < n; i++)
    if (v[i] >= 0) {
      if (ts)
        ts[w] = ts[i];
      v[w++] = v[i];
    }
  return w;
}

/* ---------------------------------------------------------- explanations */

static int cmp_long(const void *a, const void *b) {
  long x = *(const long *)a, y = *(const long *)b;
  return (x > y) - (x < y);
}

#define EXPLAIN_HISTORY 3    /* history items per recommended item */
#define EXPLAIN_SCAN 200     /* newest distinct history items considered */

/* {"history": [...], "context": [...]} for one recommended item: the (up
 * to 3) history items whose vectors are most similar to its vector
 * (positive inner product only, largest first) -- `cand` are the history's
 * newest distinct items -- and the context features' effects on its score
 * (hr_model_explain_context). */
static json_t *explain_item(const hr_model_t *m, long item, const long *cand,
                            size_t n_cand, long user_idx,
                            const hr_history_t *h, const prior_q_t *pq,
                            int ctx_prior) {
  const float *V = hr_model_item_vectors(m);
  size_t d = (size_t)hr_model_dim(m), nb = 0;
  long best[EXPLAIN_HISTORY];
  float bs[EXPLAIN_HISTORY];
  hr_ctx_effect_t fx[4];
  size_t nfx;
  json_t *hist = json_array(), *ctx = json_array();

  for (size_t j = 0; j < n_cand; j++) {
    const float *a = V + (size_t)item * d, *b = V + (size_t)cand[j] * d;
    float s = 0;
    size_t at;
    for (size_t c = 0; c < d; c++)
      s += a[c] * b[c];
    if (!(s > 0))
      continue;
    at = nb < EXPLAIN_HISTORY ? nb++ : EXPLAIN_HISTORY;
    if (at == EXPLAIN_HISTORY) {
      if (s <= bs[EXPLAIN_HISTORY - 1])
        continue;
      at = EXPLAIN_HISTORY - 1;
    }
    while (at > 0 && bs[at - 1] < s) { /* insertion: largest first */
      bs[at] = bs[at - 1];
      best[at] = best[at - 1];
      at--;
    }
    bs[at] = s;
    best[at] = cand[j];
  }
  for (size_t j = 0; j < nb; j++)
    json_array_append_new(
        hist, json_pack("{s:s,s:f}", "item_id",
                        hr_model_item_id(m, (size_t)best[j]), "similarity",
                        (double)bs[j]));
  if (!ctx_prior)
    nfx = hr_model_explain_context(m, user_idx, h, (size_t)item, fx,
                                   sizeof(fx) / sizeof(fx[0]));
  else /* ranked by the context prior: each value's lift */
    nfx = hr_model_explain_prior(m, pq->name, pq->val, pq->n, (size_t)item,
                                 fx, sizeof(fx) / sizeof(fx[0]));
  for (size_t j = 0; j < nfx; j++)
    json_array_append_new(ctx, json_pack("{s:s,s:s,s:f}", "feature",
                                         fx[j].feature, "value", fx[j].value,
                                         "effect", (double)fx[j].effect));
  return json_pack("{s:o,s:o}", "history", hist, "context", ctx);
}

void hr__h_recommend(const hr_hreq_t *req, hr_hresp_t *resp) {
  const hr_config_t *cfg = req->cfg;
  hr_recommend_req_t r;
  hr_error_t err = {0};
  hr_snapshot_t *snap = NULL;
  hr_user_state_t st = {0};
  int have_state = 0, degraded = 0;
  hr_context_t ctx;
  prior_q_t pq;
  long *hist = NULL, *excl = NULL, *cand = NULL;
  int64_t *hist_ts = NULL;
  size_t n_cand = 0;
  uint64_t *allow = NULL;
  size_t n_allow = 0;
  float *uvec = NULL;
  const char *retrieval = "exact";
  hr_scored_t *top = NULL;
  size_t n_hist = 0, n_excl = 0, n_top;
  const hr_model_t *m;
  long user_idx = -1;
  const int32_t *trained = NULL;
  size_t n_trained = 0;
  char rid[48 + 2 * HR_EXP_NAME], hex[17];
  const hr_experiment_cfg_t *exp = NULL;
  const hr_variant_cfg_t *var = NULL;
  int slot = 0, forced = 0;

  if (hr_api_parse_recommend(req->body, req->body_len, cfg,
                             (long long)time(NULL), &r, &err) != 0) {
    hr__http_error(resp, &err);
    return;
  }
  if (cfg->n_experiments > 0) {
    /* the first experiment splits /recommend: sticky by user, or by
     * session for anonymous requests; a QA header can force a variant */
    exp = &cfg->experiments[0];
    if (req->force_variant != NULL && cfg->experiments_force_header) {
      for (int i = 0; i < exp->n_variants && var == NULL; i++)
        if (strcmp(exp->v[i].name, req->force_variant) == 0)
          var = &exp->v[i];
      if (var == NULL) {
        hr_error_set(&err, HR_EBADFIELD, "X-Hyperrec-Variant", "experiment "
                     "%s has no such variant", exp->name);
        hr__http_error(resp, &err);
        goto out;
      }
      forced = 1;
    } else {
      const char *id = r.user_id ? r.user_id : r.session_id;
      int w[HR_EXP_MAX_VARIANTS], v;
      for (int i = 0; i < exp->n_variants; i++)
        w[i] = exp->v[i].weight;
      v = id ? hr_exp_assign(exp->salt, id, strlen(id), w, exp->n_variants)
             : -1;
      var = v >= 0 ? &exp->v[v] : NULL;
    }
    if (var != NULL && var->slot[0] != '\0' &&
        (slot = hr_registry_find(req->reg, var->slot)) < 0)
      slot = 0; /* checked at start; a slot list cannot change since */
  }
  snap = hr_registry_acquire(req->reg, slot);
  if (snap == NULL && slot != 0) {
    /* the variant's slot has no model (yet): the first slot answers, and
     * the request counts for no variant */
    slot = 0;
    var = NULL;
    snap = hr_registry_acquire(req->reg, slot);
  }
  if (snap == NULL) {
    hr_error_set(&err, HR_ENOMODEL, "", "no model is loaded yet");
    hr__http_error(resp, &err);
    resp->retry_after_s = 5;
    goto out;
  }
  m = snap->model;
  /* Filters first: an attribute this model lacks is refused before any
   * Redis round trip or fold-in. */
  if (r.n_filters > 0) {
    allow = malloc(sizeof(uint64_t) * ((hr_model_n_items(m) + 63) / 64 + 1));
    if (allow == NULL) {
      hr_error_set(&err, HR_ENOMEM, "", "out of memory");
      hr__http_error(resp, &err);
      goto out;
    }
    if (hr_model_filter(m, r.filters, r.n_filters, allow, &n_allow, &err)) {
      hr__http_error(resp, &err);
      goto out;
    }
  }
  if (r.user_id != NULL) {
    hr_ctxstore_t *cs = hr_ctxstore_thread();
    if (cs != NULL && hr_ctxstore_read_user(cs, r.user_id,
                                            (size_t)cfg->redis.history_cap,
                                            &st, NULL) == 0) {
      have_state = 1;
    } else {
      degraded = 1;
      hr_metrics_degraded();
    }
    user_idx = hr_model_user_index(m, r.user_id);
  }
  hr_features_resolve(r.ctx, r.ts, have_state ? &st : NULL, &ctx);

  /* History, newest first: the request's, then Redis's. */
  hist = malloc(sizeof(long) * (r.n_history + st.n_hist + 1));
  hist_ts = malloc(sizeof(int64_t) * (r.n_history + st.n_hist + 1));
  /* Items the user interacted with in the training data are excluded too. */
  trained = hr_model_user_history(m, user_idx, &n_trained);
  excl = malloc(sizeof(long) *
                (r.n_history + st.n_hist + r.n_exclude + n_trained + 1));
  uvec = malloc(sizeof(float) * (size_t)(hr_model_dim(m) > 0 ? hr_model_dim(m) : 1));
  top = malloc(sizeof(hr_scored_t) * (size_t)r.k);
  if (!hist || !hist_ts || !excl || !uvec || !top) {
    hr_error_set(&err, HR_ENOMEM, "", "out of memory");
    hr__http_error(resp, &err);
    goto out;
  }
  n_hist = map_ids(m, r.history, NULL, r.n_history, hist, hist_ts);
  n_hist += map_ids(m, (const char *const *)st.hist, st.hist_ts, st.n_hist,
                    hist + n_hist, hist_ts + n_hist);
  n_hist = dedupe_keep_first(hist, hist_ts, n_hist);
  prior_query(&ctx, &r, &pq);
  hr_history_t h = {hist,    n_hist,  hist_ts, (int64_t)ctx.ts,
                    pq.name, pq.val,  pq.n};
  if (hr_model_user_vector(m, user_idx, &h, uvec) != 0) {
    hr_error_set(&err, HR_EINTERNAL, "", "model failed to embed the user");
    hr__http_error(resp, &err);
    goto out;
  }
  memcpy(excl, hist, sizeof(long) * n_hist);
  n_excl = n_hist +
           map_ids(m, r.exclude, NULL, r.n_exclude, excl + n_hist, NULL);
  for (size_t i = 0; i < n_trained; i++)
    excl[n_excl++] = trained[i];
  n_excl = hr_ranker_sort_unique(excl, n_excl);
  if (rank_items(m, cfg, var ? var->candidates : 0, uvec, &pq, excl, n_excl,
                 allow, n_allow, (size_t)r.k, top, &n_top, &retrieval) != 0) {
    hr_error_set(&err, HR_ENOMEM, "", "out of memory");
    hr__http_error(resp, &err);
    goto out;
  }

  hr__http_random_hex(hex);
  if (var != NULL) /* the experiment and variant travel in the id; a
                      forced variant is marked, to be left out of reports */
    snprintf(rid, sizeof(rid), "r1-%s.%s.%s%s", hex, exp->name, var->name,
             forced ? ".qa" : "");
  else
    snprintf(rid, sizeof(rid), "r1-%s", hex);
  if (r.explain) {
    /* The newest distinct history items: the request's and Redis's
     * (already deduplicated), then the stored ones newest first. */
    size_t n = 0;
    cand = malloc(sizeof(long) * EXPLAIN_SCAN);
    if (cand == NULL) {
      hr_error_set(&err, HR_ENOMEM, "", "out of memory");
      hr__http_error(resp, &err);
      goto out;
    }
    for (size_t j = 0; j < n_hist && n < EXPLAIN_SCAN; j++)
      cand[n++] = hist[j];
    /* then the stored ones not already there, looked up in a sorted copy
     * of the (at most EXPLAIN_SCAN) taken so far */
    long sorted[EXPLAIN_SCAN];
    memcpy(sorted, cand, sizeof(long) * n);
    size_t ns = hr_ranker_sort_unique(sorted, n);
    for (size_t j = n_trained; j-- > 0 && n < EXPLAIN_SCAN;) {
      long key = trained[j];
      if (bsearch(&key, sorted, ns, sizeof(long), cmp_long) == NULL)
        cand[n++] = key;
    }
    n_cand = n;
  }
  {
    json_t *items = json_array(), *c, *src;
    for (size_t i = 0; i < n_top; i++) {
      json_t *it = json_pack("{s:s,s:f}", "item_id",
                             hr_model_item_id(m, (size_t)top[i].index),
                             "score", (double)top[i].score);
      if (r.explain)
        json_object_set_new(it, "explain",
                            explain_item(m, top[i].index, cand, n_cand,
                                         user_idx, &h, &pq,
                                         strcmp(retrieval,
                                                "context_popularity") == 0));
      json_array_append_new(items, it);
    }
    c = json_pack("{s:I,s:s,s:i,s:i,s:b}", "ts", (json_int_t)ctx.ts, "tz",
                  ctx.val[0], "hour", ctx.hour, "weekday", ctx.weekday,
                  "weekend", ctx.weekend);
    src = json_pack("{s:s,s:s}", "ts", hr_ctx_source_name(ctx.ts_src), "tz",
                    hr_ctx_source_name(ctx.src[0]));
    for (int i = 1; i < HR_CTX_FIELDS; i++) {
      json_object_set_new(c, hr_ctx_field_names[i],
                          ctx.val[i] ? json_string(ctx.val[i]) : json_null());
      json_object_set_new(src, hr_ctx_field_names[i],
                          json_string(hr_ctx_source_name(ctx.src[i])));
    }
    json_t *o = json_pack(
        "{s:s,s:o,s:o,s:{s:s,s:I},s:o,s:o,s:o,s:I,s:b}", "recommendation_id",
        rid, "user_id", r.user_id ? json_string(r.user_id) : json_null(),
        "items", items, "model", "name", hr_model_name(m), "version",
        (json_int_t)hr_model_version(m), "variant",
        var ? json_pack("{s:s,s:s}", "experiment", exp->name, "name",
                        var->name)
            : json_null(),
        "context", c, "context_source", src, "history_used",
        (json_int_t)n_hist, "degraded", degraded);
    json_object_set_new(o, "retrieval", json_string(retrieval));
    if (allow != NULL)
      json_object_set_new(o, "filter_matches", json_integer((json_int_t)n_allow));
    reply_json(resp, 200, o);
  }
  if (resp->status == 200 && var != NULL && !forced) {
    /* an impression of the variant, and its user (or session) */
    const char *id = r.user_id ? r.user_id : r.session_id;
    hr_exp_count_impression((int)(exp - cfg->experiments),
                            (int)(var - exp->v), id, strlen(id));
  }
out:
  free(hist);
  free(hist_ts);
  free(cand);
  free(excl);
  free(allow);
  free(uvec);
  free(top);
  if (have_state)
    hr_user_state_destroy(&st);
  hr_snapshot_release(req->reg, slot, snap);
  hr_recommend_req_destroy(&r);
}

void hr__h_event(const hr_hreq_t *req, hr_hresp_t *resp) {
  hr_event_req_t r;
  hr_error_t err = {0};
  hr_ctxstore_t *cs;
  int *status = NULL;
  size_t ndup = 0, nattr = 0;
  int rc;

  if (hr_api_parse_events(req->body, req->body_len, req->cfg,
                          (long long)time(NULL), &r, &err) != 0) {
    hr_metrics_events(0, 0, 1);
    hr__http_error(resp, &err);
    return;
  }
  /* clicks and purchases that name an experiment's recommendation count
   * to its variant */
  for (size_t i = 0; i < r.n; i++) {
    hr_event_t *e = &r.events[i];
    int x, v, kind = strcmp(e->type, "click") == 0      ? HR_EXP_CLICK
                     : strcmp(e->type, "purchase") == 0 ? HR_EXP_CONVERSION
                                                        : 0;
    if (kind != 0 && e->recommendation_id != NULL &&
        hr_exp_parse_rid(req->cfg, e->recommendation_id, &x, &v)) {
      e->exp_kind = kind;
      e->exp_name = req->cfg->experiments[x].name;
      e->exp_variant = req->cfg->experiments[x].v[v].name;
    }
  }
  status = calloc(r.n, sizeof(int));
  cs = hr_ctxstore_thread();
  if (status == NULL || cs == NULL) {
    hr_error_set(&err, HR_ENOMEM, "", "out of memory");
    hr__http_error(resp, &err);
    goto out;
  }
  rc = hr_ctxstore_write_events(cs, r.events, r.n, status, &err);
  if (rc != 0) {
    hr_log(HR_LOG_WARN, "event_write_failed",
           json_pack("{s:s,s:s,s:I}", "request_id", req->request_id, "reason",
                     err.msg, "events", (json_int_t)r.n));
    if (rc == HR_EREDIS) {
      hr_error_clear(&err);
      hr_error_set(&err, HR_EREDIS, "",
                   "the event store is unavailable; nothing was written, "
                   "retry later");
      resp->retry_after_s = 1;
    }
    hr__http_error(resp, &err);
    goto out;
  }
  for (size_t i = 0; i < r.n; i++) {
    ndup += status[i] == HR_EV_DUPLICATE;
    nattr += status[i] == HR_EV_ATTRIBUTED;
  }
  hr_metrics_events(r.n - ndup, ndup, 0);
  hr_metrics_attributed(nattr);
  reply_json(resp, 202,
             json_pack("{s:I,s:I,s:I}", "accepted", (json_int_t)(r.n - ndup),
                       "duplicates", (json_int_t)ndup, "attributed",
                       (json_int_t)nattr));
out:
  free(status);
  hr_event_req_destroy(&r);
}

void hr__h_healthz(const hr_hreq_t *req, hr_hresp_t *resp) {
  (void)req;
  reply_json(resp, 200, json_pack("{s:s}", "status", "ok"));
}

void hr__h_readyz(const hr_hreq_t *req, hr_hresp_t *resp) {
  hr_snapshot_t *s = hr_registry_acquire(req->reg, 0);
  hr_ctxstore_t *cs = hr_ctxstore_thread();
  int model = s != NULL;
  int redis = cs != NULL && hr_ctxstore_ping(cs) == 0;
  hr_snapshot_release(req->reg, 0, s);
  reply_json(resp, model && redis ? 200 : 503,
             json_pack("{s:s,s:b,s:b}", "status",
                       model && redis ? "ready" : "not_ready", "model", model,
                       "redis", redis));
}

void hr__h_metrics(const hr_hreq_t *req, hr_hresp_t *resp) {
  resp->status = 200;
  resp->body = hr_metrics_render(req->reg);
  resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
  if (resp->body == NULL) {
    hr_error_t e = {0};
    hr_error_set(&e, HR_ENOMEM, "", "out of memory");
    hr__http_error(resp, &e);
  }
}

void hr__h_models(const hr_hreq_t *req, hr_hresp_t *resp) {
  reply_json(resp, 200, hr_registry_describe(req->reg));
}

/* ------------------------------------------------------------ admin */

/* POST /admin/reload: clear rollback pins and look for new versions now
 * (on the admin request's own thread, serialised with the loader). */
void hr__h_admin_reload(const hr_hreq_t *req, hr_hresp_t *resp) {
  int changed = 0, unpinned = hr_registry_reload(req->reg, &changed);
  hr_log(HR_LOG_INFO, "admin_reload",
         json_pack("{s:i,s:i}", "unpinned", unpinned, "changed", changed));
  reply_json(resp, 200,
             json_pack("{s:i,s:i,s:o}", "unpinned", unpinned, "changed",
                       changed, "models", hr_registry_describe(req->reg)));
}

/* POST /admin/models/<name>/rollback with an optional body
 * {"version": N}: serve version N, or the newest valid version older than
 * the serving one, and pin the slot to it until /admin/reload. */
void hr__h_admin_rollback(const hr_hreq_t *req, hr_hresp_t *resp) {
  static const char pre[] = "/admin/models/", suf[] = "/rollback";
  const char *name = req->url + strlen(pre);
  size_t nl = strlen(name), sl = strlen(suf);
  char slot[64];
  uint64_t version = 0, from = 0, to = 0;
  hr_error_t err = {0};
  int idx, rc;

  if (nl <= sl || strcmp(name + nl - sl, suf) != 0 ||
      nl - sl >= sizeof(slot) || memchr(name, '/', nl - sl) != NULL) {
    hr_error_set(&err, HR_ENOTFOUND, "", "no such path (POST "
                 "/admin/models/<name>/rollback)");
    hr__http_error(resp, &err);
    return;
  }
  memcpy(slot, name, nl - sl);
  slot[nl - sl] = '\0';
  if ((idx = hr_registry_find(req->reg, slot)) < 0) {
    hr_error_set(&err, HR_ENOTFOUND, "", "no model slot \"%s\"", slot);
    hr__http_error(resp, &err);
    return;
  }
  if (req->body_len > 0) { /* {} or {"version": N} */
    json_error_t jerr;
    json_t *root = json_loadb(req->body, req->body_len,
                              JSON_REJECT_DUPLICATES, &jerr), *v;
    const char *key;
    if (root == NULL || !json_is_object(root)) {
      json_decref(root);
      hr_error_set(&err, HR_EBADJSON, "", "the body must be a JSON object "
                   "({} or {\"version\": N})");
      hr__http_error(resp, &err);
      return;
    }
    json_object_foreach(root, key, v) {
      if (strcmp(key, "version") != 0) {
        hr_error_set(&err, HR_EUNKNOWNFIELD, key, "unknown field");
        break;
      }
      if (!json_is_integer(v) || json_integer_value(v) <= 0) {
        hr_error_set(&err, HR_EBADFIELD, "version", "version must be a "
                     "positive integer (a version directory's name)");
        break;
      }
      version = (uint64_t)json_integer_value(v);
    }
    json_decref(root);
    if (err.code != 0) {
      hr__http_error(resp, &err);
      return;
    }
  }
  rc = hr_registry_rollback(req->reg, idx, version, &from, &to, &err);
  if (rc != 0) {
    hr__http_error(resp, &err);
    return;
  }
  reply_json(resp, 200,
             json_pack("{s:s,s:I,s:I,s:b}", "slot", slot, "from",
                       (json_int_t)from, "to", (json_int_t)to, "pinned", 1));
}
