/* pipeline.c -- the recommendation pipeline (see recommend.h). */
#include "hr/recommend.h"
#include "hr/itemsets.h"

#include "hr/experiments.h"
#include "hr/grow.h"
#include "internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* Kept candidates past k whose half-precision score is rechecked in float
 * (two_stage): the index's fp16 scores are within ~1e-3 of the float ones,
 * so an item the rounding put just below the k-th is still rescored. */
#define KEPT_MARGIN 32

/* A published item list (itemsets.h) mapped to one model's dense indices;
 * mapped again only when the list's generation or the model changes. */
typedef struct {
  uint64_t gen;               /* 0: empty */
  const hr_model_t *m;
  uint64_t version;
  size_t n_items;             /* of the model: with m and version, its id */
  uint32_t *idx;              /* the ids the model knows, in list order */
  double *weight;             /* trending: their weights */
  size_t n, cap, wcap;
  unsigned long used;         /* for replacing the least recently used */
} mapped_t;

#define MAPPED_MODELS 2 /* an experiment's two models in turn */

/* Scratch of one thread: every array grows to the largest need seen and
 * stays. `xbits` (one bit per item of the largest model seen) is all zero
 * between requests: a request sets the bits of what it excludes and
 * clears them before it returns. */
struct hr_rec_worker {
  hr_model_work_t fwd;        /* the model's forward pass */
  hr_ann_scratch_t *ann;      /* index search, for up to ann_cap items */
  size_t ann_cap;
  hr_user_state_t st;         /* the user's Redis state (hr_rec_run) */
  long *hist;                 /* the request's history, newest first */
  int64_t *hist_ts;
  uint32_t *excl;             /* excluded items, in the order met */
  uint64_t *xbits;            /* the same as a bitmap */
  uint64_t *allow;            /* the filter's bitmap */
  float *scores;              /* a score per item (exact paths) */
  uint32_t *ids;              /* candidates */
  float *csc;                 /* and their scores */
  hr_scored_t *top;
  hr_rec_item_t *items;
  float *u, *base, *un;       /* user vector, its kept part, and the
                                 vector in the neutral context */
  uint32_t *kept;             /* the candidates kept for the user */
  float *kept_sc;             /* their scores for the kept vector */
  size_t hist_cap, hist_ts_cap, excl_cap, xbits_cap, allow_cap, scores_cap,
      ids_cap, csc_cap, top_cap, items_cap, u_cap, base_cap, un_cap,
      kept_cap, kept_sc_cap;
  /* this request's entry in the snapshot's cache (c NULL: none) */
  struct {
    hr__ucache_t *c;
    hr__ukey_t key;
    int hit;                  /* the entry was there */
    int store;                /* to be written back at the end */
    hr__ukept_t meta;         /* n_ids: candidates in kept[] */
  } uc;
  long explain[HR_REC_EXPLAIN_SCAN];
  int32_t explain_set[512];   /* open hash set of explain[] */
  prior_q_t pq;
  mapped_t lists[HR_SET_N][MAPPED_MODELS];
  const mapped_t *hidden;     /* this request's hidden items */
  unsigned long uses;
};

#define GROW HR_GROW

hr_rec_worker_t *hr_rec_worker_new(void) {
  return calloc(1, sizeof(hr_rec_worker_t));
}

void hr_rec_worker_free(hr_rec_worker_t *w) {
  if (w == NULL)
    return;
  hr_model_work_free(&w->fwd);
  hr_ann_scratch_free(w->ann);
  hr_user_state_destroy(&w->st);
  void *arrays[] = {w->hist,  w->hist_ts, w->excl, w->xbits, w->allow,
                    w->scores, w->ids,    w->csc,  w->top,   w->items,
                    w->u,      w->base,   w->un,   w->kept,  w->kept_sc,
                    w};
  for (int k = 0; k < HR_SET_N; k++)
    for (int j = 0; j < MAPPED_MODELS; j++) {
      free(w->lists[k][j].idx);
      free(w->lists[k][j].weight);
    }
  for (size_t i = 0; i < sizeof(arrays) / sizeof(arrays[0]); i++)
    free(arrays[i]);
}

static pthread_key_t worker_key;
static pthread_once_t worker_once = PTHREAD_ONCE_INIT;

static void worker_key_free(void *p) { hr_rec_worker_free(p); }
static void worker_key_make(void) {
  pthread_key_create(&worker_key, worker_key_free);
}

hr_rec_worker_t *hr_rec_worker_thread(void) {
  hr_rec_worker_t *w;
  pthread_once(&worker_once, worker_key_make);
  if ((w = pthread_getspecific(worker_key)) != NULL)
    return w;
  if ((w = hr_rec_worker_new()) == NULL)
    return NULL;
  if (pthread_setspecific(worker_key, w) != 0) {
    hr_rec_worker_free(w);
    return NULL;
  }
  return w;
}

/* List `kind` as model m's indices: the entry mapped last for m when
 * neither changed, else the least recently used entry mapped again.
 * NULL on out of memory. */
static const mapped_t *mapped(hr_rec_worker_t *w, hr_set_kind_t kind,
                              const hr_model_t *m) {
  uint64_t gen = hr_itemsets_gen(kind), ver = hr_model_version(m);
  size_t ni = hr_model_n_items(m);
  mapped_t *e = NULL, *lists = w->lists[kind];
  hr_itemlist_t *l;
  void *tmp_;

  for (int j = 0; j < MAPPED_MODELS; j++) {
    mapped_t *x = &lists[j];
    if (x->m == m && x->version == ver && x->n_items == ni) {
      e = x;
      break;
    }
    if (e == NULL || x->used < e->used)
      e = x;
  }
  e->used = ++w->uses;
  if (e->m == m && e->version == ver && e->n_items == ni && e->gen == gen)
    return e;
  e->m = m;
  e->version = ver;
  e->n_items = ni;
  e->gen = gen;
  e->n = 0;
  if (gen == 0 || (l = hr_itemsets_acquire(kind)) == NULL)
    return e;
  e->gen = l->gen; /* what was mapped (a newer one may have come since) */
  if (GROW(e->idx, e->cap, l->n + 1) ||
      (l->weight && GROW(e->weight, e->wcap, l->n + 1))) {
    hr_itemsets_release(l);
    e->m = NULL;
    return NULL;
  }
  for (size_t i = 0; i < l->n; i++) {
    long idx = hr_model_item_index(m, l->ids[i]);
    if (idx < 0)
      continue;
    if (l->weight)
      e->weight[e->n] = l->weight[i];
    e->idx[e->n++] = (uint32_t)idx;
  }
  hr_itemsets_release(l);
  return e;
}

/* Room for a model of n items and dim floats, nc candidates (at least k),
 * `kept` kept candidates, nh history entries and ne exclusions
 * besides the hidden items (mapped here into w->hidden). */
static int reserve(hr_rec_worker_t *w, const hr_model_t *m, size_t k,
                   size_t nc, size_t kept, size_t nh, size_t ne) {
  size_t n = hr_model_n_items(m), dim = (size_t)hr_model_dim(m);
  size_t words = n / 64 + 1, old = w->xbits_cap, ni = n > nc ? n : nc;
  void *tmp_;
  /* the hidden items are excluded from every answer (exclude_request) */
  if ((w->hidden = mapped(w, HR_SET_HIDDEN, m)) == NULL)
    return HR_ENOMEM;
  ne += w->hidden->n;
  if (GROW(w->hist, w->hist_cap, nh + 1) ||
      GROW(w->hist_ts, w->hist_ts_cap, nh + 1) ||
      GROW(w->excl, w->excl_cap, ne + 1) ||
      GROW(w->xbits, w->xbits_cap, words))
    return HR_ENOMEM;
  if (w->xbits_cap > old) /* new words start clear */
    memset(w->xbits + old, 0, (w->xbits_cap - old) * sizeof(*w->xbits));
  if (GROW(w->allow, w->allow_cap, words) ||
      GROW(w->scores, w->scores_cap, n + 1) ||
      GROW(w->ids, w->ids_cap, ni + 1) || GROW(w->csc, w->csc_cap, ni + 1) ||
      GROW(w->top, w->top_cap, (nc > kept ? nc : kept) + KEPT_MARGIN + 1) || GROW(w->items, w->items_cap, k + 1) ||
      GROW(w->u, w->u_cap, dim + 1) || GROW(w->base, w->base_cap, dim + 1) ||
      GROW(w->un, w->un_cap, dim + 1) ||
      GROW(w->kept, w->kept_cap, kept + 1) ||
      GROW(w->kept_sc, w->kept_sc_cap, kept + 1))
    return HR_ENOMEM;
  if (hr_model_ann(m) != NULL && (w->ann == NULL || w->ann_cap < n)) {
    hr_ann_scratch_free(w->ann);
    w->ann_cap = 0;
    if ((w->ann = hr_ann_scratch_new(hr_model_ann(m))) == NULL)
      return HR_ENOMEM;
    w->ann_cap = n;
  }
  return 0;
}

/* ------------------------------------------------------------ helpers */

const char *hr_rec_retrieval_name(hr_retrieval_t r) {
  switch (r) {
  case HR_RET_POPULARITY:
    return "popularity";
  case HR_RET_CTX_POPULARITY:
    return "context_popularity";
  case HR_RET_TRENDING:
    return "trending";
  case HR_RET_ANN:
  case HR_RET_ANN_KEPT:
  case HR_RET_ANN_EXACT:
    return "ann";
  default:
    return "exact";
  }
}

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

static inline int bit(const uint64_t *b, size_t i) {
  return (int)((b[i >> 6] >> (i & 63)) & 1u);
}

/* Exclude item i (a dense index): 1 when it was not excluded yet. */
static inline int exclude(hr_rec_worker_t *w, size_t *n_excl, long i) {
  if (bit(w->xbits, (size_t)i))
    return 0;
  w->xbits[i >> 6] |= (uint64_t)1 << (i & 63);
  w->excl[(*n_excl)++] = (uint32_t)i;
  return 1;
}

/* The request's own exclusions and the hidden items (mapped by reserve),
 * added to w->xbits / w->excl. */
static void exclude_request(hr_rec_worker_t *w, const hr_model_t *m,
                            const hr_recommend_req_t *req, size_t *n_excl) {
  for (size_t j = 0; j < req->n_exclude; j++) {
    long idx = hr_model_item_index(m, req->exclude[j]);
    if (idx >= 0)
      exclude(w, n_excl, idx);
  }
  for (size_t j = 0; w->hidden != NULL && j < w->hidden->n; j++)
    exclude(w, n_excl, (long)w->hidden->idx[j]);
}

static void clear_excluded(hr_rec_worker_t *w, size_t n_excl) {
  for (size_t j = 0; j < n_excl; j++)
    w->xbits[w->excl[j] >> 6] = 0;
}

/* ------------------------------------------------------------ history */

/* The request's history then Redis's, newest first, known items only,
 * each kept at its first (newest) position, into w->hist / w->hist_ts;
 * every one also goes into the exclusions. Returns the count. */
static size_t gather_history(hr_rec_worker_t *w, const hr_model_t *m,
                             const hr_recommend_req_t *r,
                             const hr_user_state_t *st, size_t *n_excl) {
  size_t n = 0;
  for (size_t j = 0; j < r->n_history; j++) {
    long idx = hr_model_item_index(m, r->history[j]);
    if (idx >= 0 && exclude(w, n_excl, idx)) {
      w->hist_ts[n] = -1;
      w->hist[n++] = idx;
    }
  }
  for (size_t j = 0; st != NULL && j < st->n_hist; j++) {
    long idx = hr_model_item_index(m, st->hist[j]);
    if (idx >= 0 && exclude(w, n_excl, idx)) {
      w->hist_ts[n] = (int64_t)st->hist_ts[j];
      w->hist[n++] = idx;
    }
  }
  return n;
}

/* --------------------------------------------------------- user vector */

/* The entry of this user history in the snapshot's cache (w->uc), looked
 * up by the history as it came, before any of it is mapped: on a hit,
 * w->base holds the kept part of the user vector and w->kept the kept
 * candidates. */
static void open_entry(hr_rec_worker_t *w, hr_snapshot_t *snap,
                       const hr_config_t *cfg, long user_idx,
                       const hr_recommend_req_t *req,
                       const hr_user_state_t *st) {
  size_t n_st = st ? st->n_hist : 0;
  memset(&w->uc, 0, sizeof(w->uc));
  if (user_idx < 0 && req->n_history + n_st == 0)
    return; /* nothing to keep: the prior answers */
  w->uc.c = hr__ucache_of(snap, hr_model_dim(snap->model),
                          (size_t)cfg->recommend.user_cache_mb << 20,
                          (size_t)cfg->ann.kept);
  if (w->uc.c == NULL)
    return;
  w->uc.key = hr__ukey(user_idx, req->history, req->n_history,
                       st ? (const char *const *)st->hist : NULL,
                       st ? st->hist_ts : NULL, n_st);
  w->uc.hit = hr__ucache_get(w->uc.c, w->uc.key, w->base, w->kept,
                             w->kept_sc, &w->uc.meta);
}

/* The user vector into w->u: the kept part (w->base, on a hit) or computed
 * (and kept at the end, keep()), then the request's terms. */
static int user_vector(hr_rec_worker_t *w, const hr_model_t *m,
                       long user_idx, const hr_history_t *h) {
  int rc;
  if (!w->uc.hit) {
    if ((rc = hr_model_user_base(m, user_idx, h, &w->fwd, w->base)) != 0)
      return rc;
    w->uc.store = w->uc.c != NULL;
    w->uc.meta.n_hist = (uint32_t)h->n;
    w->uc.meta.newest_ts = h->n > 0 ? h->ts[0] : -1;
  }
  hr_model_user_finish(m, user_idx, h, w->base, w->u);
  return 0;
}

/* Write the request's cache entry back when it changed. */
static void keep(hr_rec_worker_t *w) {
  if (w->uc.store)
    hr__ucache_put(w->uc.c, w->uc.key, w->base, w->kept, w->kept_sc,
                   &w->uc.meta);
}

/* ------------------------------------------------------------ retrieval */

/* The k best of the n candidates w->ids, scored by `base` (a score per
 * item) or the model's scores of u, into w->top. */
static size_t rank_ids(hr_rec_worker_t *w, const hr_model_t *m,
                       const float *base, size_t n, size_t k) {
  hr_topk_t t;
  if (base == NULL)
    hr_model_score_subset(m, w->u, w->ids, n, w->csc);
  hr_topk_init(&t, w->top, k);
  for (size_t j = 0; j < n; j++)
    hr_topk_push(&t, (long)w->ids[j], base ? base[w->ids[j]] : w->csc[j]);
  return hr_topk_finish(&t);
}

/* The items passing the filter and not excluded, into w->ids. */
static size_t allowed_ids(hr_rec_worker_t *w, size_t n_items) {
  size_t n = 0;
  for (size_t wd = 0; wd < (n_items + 63) / 64; wd++)
    for (uint64_t b = w->allow[wd] & ~w->xbits[wd]; b != 0; b &= b - 1)
      w->ids[n++] = (uint32_t)(wd * 64 + (size_t)__builtin_ctzll(b));
  return n;
}


/* The kept candidates scored for the request: each one's kept score for
 * the base vector plus its entries in the model's table at the request's
 * columns (its time gap, its context values) -- the request's score up to
 * float rounding, at a few floats per candidate instead of its vector; the
 * best k + KEPT_MARGIN are then scored exactly. */
static size_t first_pass(hr_rec_worker_t *w, const hr_model_t *m,
                         long user_idx, const hr_history_t *h, size_t k) {
  size_t B, nc, n;
  const float *T = hr_model_request_table(m, &B);
  uint32_t cols[1 + PRIOR_Q_MAX];
  hr_topk_t t;

  nc = hr_model_request_cols(m, user_idx, h, cols);
  hr_topk_init(&t, w->top, k + KEPT_MARGIN);
  for (size_t j = 0; j < w->uc.meta.n_ids; j++) {
    uint32_t id = w->kept[j];
    const float *row = T + (size_t)id * B;
    float s = w->kept_sc[j];
    if (j + 8 < w->uc.meta.n_ids) /* rows are scattered over the table */
      __builtin_prefetch(T + (size_t)w->kept[j + 8] * B, 0, 0);
    if (bit(w->xbits, id)) /* the request's own exclusions */
      continue;
    for (size_t c = 0; c < nc; c++)
      s += row[cols[c]];
    hr_topk_push(&t, (long)id, s);
  }
  n = hr_topk_finish(&t);
  for (size_t j = 0; j < n; j++)
    w->ids[j] = (uint32_t)w->top[j].index;
  return rank_ids(w, m, NULL, n, k);
}

/* The index's candidates kept per user (the two-stage path): the first
 * request of a history searches the index for ann.kept candidates for the
 * user's vector in the neutral context (no context values), excluding
 * what the history excludes, and keeps them with the user's vector; every
 * request then scores the kept candidates with its own vector (its time,
 * its context values) and drops its own exclusions. The margin over
 * ann.candidates keeps recall against the exact top of each request's
 * vector (measured in docs/benchmarks.md, "Retrieval"). */
static size_t two_stage(hr_rec_worker_t *w, const hr_model_t *m,
                        const hr_config_t *cfg, size_t n_key_excl,
                        long user_idx, const hr_history_t *h, size_t k,
                        hr_retrieval_t *path) {
  size_t want = (size_t)cfg->ann.kept, n = 0;
  if (w->uc.meta.n_ids == 0 || w->uc.meta.asked != want) {
    hr_history_t neutral = *h;
    int ef = cfg->ann.ef > (int)want ? cfg->ann.ef : (int)want;
    neutral.n_ctx = 0;
    hr_model_user_finish(m, user_idx, &neutral, w->base, w->un);
    w->uc.meta.n_ids = hr_model_ann_search(m, w->ann, w->un, want, ef, w->excl,
                                       n_key_excl, NULL, 0, w->kept);
    w->uc.meta.asked = (uint32_t)want;
    w->uc.store = 1;
    *path = HR_RET_ANN;
    if (hr_model_request_table(m, &(size_t){0}) != NULL) {
      /* the candidates' scores for the kept vector: a request adds its
       * own terms from the model's table (first_pass) */
      hr_model_score_subset(m, w->base, w->kept, w->uc.meta.n_ids,
                            w->kept_sc);
      w->uc.meta.scored = 1;
    } else if (!hr_model_request_terms(m)) {
      /* every request of this history has this very vector: keep the
       * candidates in the order of their final scores */
      hr_topk_t t;
      size_t nk = w->uc.meta.n_ids;
      hr_model_score_subset(m, w->un, w->kept, nk, w->csc);
      hr_topk_init(&t, w->top, nk);
      for (size_t j = 0; j < nk; j++)
        hr_topk_push(&t, (long)w->kept[j], w->csc[j]);
      w->uc.meta.n_ids = hr_topk_finish(&t);
      for (size_t j = 0; j < w->uc.meta.n_ids; j++)
        w->kept[j] = (uint32_t)w->top[j].index;
    }
  } else {
    *path = HR_RET_ANN_KEPT;
  }
  if (w->uc.meta.scored) /* the request's terms from the model's table */
    return first_pass(w, m, user_idx, h, k);
  for (size_t j = 0; j < w->uc.meta.n_ids; j++) /* the request's exclusions */
    if (!bit(w->xbits, w->kept[j]))
      w->ids[n++] = w->kept[j];
  if (!hr_model_request_terms(m)) {
    /* best first already: the first k not excluded are the answer */
    return rank_ids(w, m, NULL, n < k ? n : k, k);
  }
  if (n > k + KEPT_MARGIN) {
    /* the index's half-precision scores pick the best k + margin, which
     * the model's own vectors then score exactly */
    hr_topk_t t;
    hr_ann_score(hr_model_ann(m), w->ann, w->u, w->ids, n, w->csc);
    hr_topk_init(&t, w->top, k + KEPT_MARGIN);
    for (size_t j = 0; j < n; j++)
      hr_topk_push(&t, (long)w->ids[j], w->csc[j]);
    n = hr_topk_finish(&t);
    for (size_t j = 0; j < n; j++)
      w->ids[j] = (uint32_t)w->top[j].index;
  }
  return rank_ids(w, m, NULL, n, k);
}

/* The k best items for w->u, not excluded, passing the filter when there
 * is one (n_allow items):
 *  - "popularity" when u is zero (the model knows nothing of the user),
 *    "context_popularity" when the model's context prior knows a value of
 *    the request's context;
 *  - "ann": the top candidates by inner product from the index (exact
 *    with its norm-bound pass, ann.exact), scored with the prior, when the
 *    version has an index and the catalogue is at least ann.min_items;
 *  - "exact" otherwise: every item scored (one sgemv), or with a filter
 *    every item that passes it -- through the norm-bound pass alone when
 *    the catalogue is large and the filter passes many items (the pass
 *    skips filtered-out items for the price of a bit test and stops
 *    early), by scoring the matching items otherwise. The graph is not
 *    used for filters: a filter correlated with u (a category the user
 *    does not favour) costs the search far more than the pass, and recall
 *    (docs/benchmarks.md, "Attribute filters").
 * Returns the count in w->top, and the path in *path. */
static size_t retrieve(hr_rec_worker_t *w, const hr_model_t *m,
                       const hr_config_t *cfg, int candidates, int filtered,
                       size_t n_allow, size_t n_excl, size_t n_key_excl,
                       long user_idx, const hr_history_t *h, size_t k,
                       hr_retrieval_t *path) {
  size_t n = hr_model_n_items(m), dim = (size_t)hr_model_dim(m);
  const hr_ann_t *a = hr_model_ann(m);
  const float *base = NULL;
  int zero = 1;

  for (size_t i = 0; i < dim && zero; i++)
    zero = w->u[i] == 0.0f;
  if (zero) {
    /* Nothing known of the user: the context prior when the model has one
     * and the request's context has a value it knows, else popularity. */
    const prior_q_t *pq = &w->pq;
    if (hr_model_context_scores(m, pq->name, pq->val, pq->n, NULL) > 0) {
      hr_model_context_scores(m, pq->name, pq->val, pq->n, w->scores);
      base = w->scores;
      *path = HR_RET_CTX_POPULARITY;
    } else {
      base = hr_model_item_prior(m);
      *path = HR_RET_POPULARITY;
    }
    if (filtered)
      return rank_ids(w, m, base, allowed_ids(w, n), k);
    return hr_ranker_topk(base, n, NULL, 0, NULL, w->xbits, k, w->top);
  }
  /* A filter passing few items (under ann.min_items, or under 1/16 of the
   * catalogue) is cheaper to answer by scoring them: on the 622k-item
   * model the pass won from 10 % of the catalogue up and lost at 5 %
   * (docs/benchmarks.md, "Attribute filters"). */
  if (a != NULL && n >= (size_t)cfg->ann.min_items &&
      (!filtered || (n_allow >= (size_t)cfg->ann.min_items &&
                     n_allow >= n / 16))) {
    size_t want = (size_t)(candidates > 0 ? candidates : cfg->ann.candidates);
    size_t nc = want > k ? want : k, got;
    int ef = cfg->ann.ef > (int)nc ? cfg->ann.ef : (int)nc;
    if (!filtered && !cfg->ann.exact && w->uc.c != NULL &&
        (size_t)cfg->ann.kept >= nc &&
        (size_t)cfg->ann.kept <= hr__ucache_cmax(w->uc.c))
      return two_stage(w, m, cfg, n_key_excl, user_idx, h, k, path);
    if (filtered || cfg->ann.exact) {
      /* exact: the index's candidates (none with a filter: the norm pass
       * alone over what passes), then the norm-bound pass */
      got = hr_model_retrieve(m, w->ann, w->u, nc, filtered ? 0 : ef,
                              w->excl, n_excl, w->xbits,
                              filtered ? w->allow : NULL, n_allow, w->ids,
                              w->top, NULL);
      for (size_t j = 0; j < got; j++)
        w->ids[j] = (uint32_t)w->top[j].index;
      *path = filtered ? HR_RET_FILTER_PASS : HR_RET_ANN_EXACT;
    } else {
      got = hr_model_ann_search(m, w->ann, w->u, nc, ef, w->excl, n_excl,
                                NULL, 0, w->ids);
      *path = HR_RET_ANN;
    }
    return rank_ids(w, m, NULL, got, k);
  }
  if (filtered && n_allow < n) {
    *path = HR_RET_FILTER_SCAN;
    return rank_ids(w, m, NULL, allowed_ids(w, n), k);
  }
  *path = HR_RET_ALL;
  hr_model_score_items(m, w->u, w->scores);
  return hr_ranker_topk(w->scores, n, NULL, 0, NULL, w->xbits, k, w->top);
}

/* -------------------------------------------------------- explanations */

/* Add v to the open hash set (512 slots, -1 empty): 1 when new. */
static int set_add(int32_t *set, int32_t v) {
  size_t i = ((uint32_t)v * 2654435761u) & 511;
  while (set[i] != -1) {
    if (set[i] == v)
      return 0;
    i = (i + 1) & 511;
  }
  set[i] = v;
  return 1;
}

/* The history items an explanation compares with: the newest distinct
 * ones, the request's and Redis's first, then the stored training history
 * newest first. Returns the count in w->explain. */
static size_t explain_candidates(hr_rec_worker_t *w, const hr_model_t *m,
                                 long user_idx, size_t n_hist) {
  size_t n = 0, n_trained;
  const int32_t *trained = hr_model_user_history(m, user_idx, &n_trained);
  memset(w->explain_set, 0xff, sizeof(w->explain_set));
  for (size_t j = 0; j < n_hist && n < HR_REC_EXPLAIN_SCAN; j++)
    if (set_add(w->explain_set, (int32_t)w->hist[j]))
      w->explain[n++] = w->hist[j];
  for (size_t j = n_trained; j-- > 0 && n < HR_REC_EXPLAIN_SCAN;)
    if (set_add(w->explain_set, trained[j]))
      w->explain[n++] = trained[j];
  return n;
}

/* Why `it` is there: the (up to 3) explanation candidates whose vectors
 * have the largest positive inner product with its vector (ties: the
 * newer first), and the context features' effects on its score. */
static void explain_item(hr_rec_worker_t *w, const hr_model_t *m,
                         hr_rec_item_t *it, size_t n_cand, long user_idx,
                         const hr_history_t *h, int ctx_prior) {
  const float *V = hr_model_item_vectors(m);
  size_t d = (size_t)hr_model_dim(m);
  const float *a = V + (size_t)it->index * d;
  hr_scored_t best[HR_REC_EXPLAIN_HISTORY];
  hr_topk_t t;
  const prior_q_t *pq = &w->pq;

  hr_topk_init(&t, best, HR_REC_EXPLAIN_HISTORY);
  for (size_t j = 0; j < n_cand; j++) {
    const float *b = V + (size_t)w->explain[j] * d;
    float s = 0;
    for (size_t c = 0; c < d; c++)
      s += a[c] * b[c];
    if (s > 0) /* by position: ties keep the newer */
      hr_topk_push(&t, (long)j, s);
  }
  it->n_similar = hr_topk_finish(&t);
  for (size_t j = 0; j < it->n_similar; j++) {
    it->similar[j] = w->explain[best[j].index];
    it->similarity[j] = best[j].score;
  }
  if (!ctx_prior)
    it->n_effects = hr_model_explain_context(m, user_idx, h, (size_t)it->index,
                                             it->effects,
                                             HR_REC_EXPLAIN_CONTEXT);
  else /* ranked by the context prior: each value's lift */
    it->n_effects = hr_model_explain_prior(m, pq->name, pq->val, pq->n,
                                           (size_t)it->index, it->effects,
                                           HR_REC_EXPLAIN_CONTEXT);
}

/* ---------------------------------------------------------------- rank */

/* The request's filter as a bitmap in w->allow: 0 with *n_allow items
 * passing, HR_EBADFIELD (an attribute the model lacks) or HR_ENOMEM. */
static int filter(hr_rec_worker_t *w, const hr_model_t *m,
                  const hr_recommend_req_t *req, size_t *n_allow,
                  hr_error_t *err) {
  void *tmp_;
  if (GROW(w->allow, w->allow_cap, hr_model_n_items(m) / 64 + 1))
    return hr_error_set(err, HR_ENOMEM, "", "out of memory");
  return hr_model_filter(m, req->filters, req->n_filters, w->allow, n_allow,
                         err);
}

/* Whether the request can be answered from its kept entry alone: the
 * entry holds candidates found for the configured ann.kept, and the
 * request would take the two-stage path (an index, a large enough
 * catalogue, no filter, not ann.exact) and needs no explanation (which
 * reads the mapped history). */
static int kept_answers(const hr_rec_worker_t *w, const hr_model_t *m,
                        const hr_config_t *cfg, const hr_recommend_req_t *req,
                        int filtered, size_t nc) {
  return w->uc.hit && w->uc.meta.n_ids > 0 &&
         w->uc.meta.asked == (uint32_t)cfg->ann.kept && !req->explain &&
         !filtered && !cfg->ann.exact && hr_model_ann(m) != NULL &&
         hr_model_n_items(m) >= (size_t)cfg->ann.min_items &&
         (size_t)cfg->ann.kept >= nc &&
         (size_t)cfg->ann.kept <= hr__ucache_cmax(w->uc.c);
}

/* The result's items from w->top, with their explanations. */
static int answer(hr_rec_worker_t *w, const hr_model_t *m,
                  const hr_recommend_req_t *req, hr_rec_result_t *out,
                  size_t n_top, long user_idx, const hr_history_t *h) {
  for (size_t i = 0; i < n_top; i++) {
    w->items[i].index = w->top[i].index;
    w->items[i].score = w->top[i].score;
    w->items[i].n_similar = 0;
    w->items[i].n_effects = 0;
  }
  if (req->explain) {
    size_t n_cand = explain_candidates(w, m, user_idx, h->n);
    for (size_t i = 0; i < n_top; i++)
      explain_item(w, m, &w->items[i], n_cand, user_idx, h,
                   out->retrieval == HR_RET_CTX_POPULARITY);
  }
  out->items = w->items;
  out->n_items = n_top;
  return 0;
}

/* hr_rec_rank; n_allow >= 0: the filter is in w->allow already. */
static int rank(hr_rec_worker_t *w, hr_snapshot_t *snap,
                const hr_config_t *cfg, const hr_recommend_req_t *req,
                const hr_user_state_t *st, int candidates, long n_allow,
                hr_rec_result_t *out, hr_error_t *err) {
  const hr_model_t *m = snap->model;
  size_t k = (size_t)req->k, n_trained = 0, n_excl = 0, n_key_excl, n_hist;
  size_t n_top;
  size_t nc = (size_t)(candidates > 0 ? candidates : cfg->ann.candidates);
  const int32_t *trained;
  long user_idx = -1;
  int rc;

  out->model = m;
  out->items = NULL;
  out->n_items = 0;
  out->filtered = req->n_filters > 0;
  out->filter_matches = 0;
  out->cache_hit = 0;
  if (req->user_id != NULL)
    user_idx = hr_model_user_index(m, req->user_id);
  trained = hr_model_user_history(m, user_idx, &n_trained);
  nc = nc > k ? nc : k;
  if (reserve(w, m, k, nc, (size_t)cfg->ann.kept,
              req->n_history + (st ? st->n_hist : 0),
              req->n_history + (st ? st->n_hist : 0) + req->n_exclude +
                  n_trained) != 0)
    return hr_error_set(err, HR_ENOMEM, "", "out of memory");
  /* Filters first: an attribute this model lacks is refused before any
   * work on the user. */
  if (out->filtered && n_allow < 0) {
    size_t na;
    if ((rc = filter(w, m, req, &na, err)) != 0)
      return rc;
    n_allow = (long)na;
  }
  out->filter_matches = out->filtered ? (size_t)n_allow : 0;
  hr_features_resolve(req->ctx, req->ts, st, &out->ctx);
  prior_query(&out->ctx, req, &w->pq);

  open_entry(w, snap, cfg, user_idx, req, st);
  if (kept_answers(w, m, cfg, req, out->filtered, nc)) {
    /* This history's vector and candidates are kept: no history to map.
     * Excluded: the request's own items (the kept ones left the history
     * and the training items out already). */
    int64_t newest = w->uc.meta.newest_ts;
    hr_history_t h = {NULL,       w->uc.meta.n_hist, &newest,
                      (int64_t)out->ctx.ts, w->pq.name, w->pq.val,
                      w->pq.n};
    exclude_request(w, m, req, &n_excl);
    hr_model_user_finish(m, user_idx, &h, w->base, w->u);
    n_top = two_stage(w, m, cfg, 0, user_idx, &h, k, &out->retrieval);
    clear_excluded(w, n_excl);
    out->history_used = h.n;
    out->cache_hit = 1;
    return answer(w, m, req, out, n_top, user_idx, &h);
  }

  /* Excluded: the history, the items the user interacted with in the
   * training data (both follow from the history: n_key_excl of them),
   * then the request's own exclusions. */
  n_hist = gather_history(w, m, req, st, &n_excl);
  for (size_t j = 0; j < n_trained; j++)
    exclude(w, &n_excl, trained[j]);
  n_key_excl = n_excl;
  exclude_request(w, m, req, &n_excl);
  out->history_used = n_hist;

  hr_history_t h = {w->hist,    n_hist,     w->hist_ts, (int64_t)out->ctx.ts,
                    w->pq.name, w->pq.val,  w->pq.n};
  if (user_vector(w, m, user_idx, &h) != 0) {
    clear_excluded(w, n_excl);
    return hr_error_set(err, HR_EINTERNAL, "", "model failed to embed the "
                        "user");
  }
  out->cache_hit = w->uc.hit;
  n_top = retrieve(w, m, cfg, candidates, out->filtered,
                   out->filter_matches, n_excl, n_key_excl, user_idx, &h, k,
                   &out->retrieval);
  clear_excluded(w, n_excl);
  keep(w);
  return answer(w, m, req, out, n_top, user_idx, &h);
}

int hr_rec_rank(hr_rec_worker_t *w, hr_snapshot_t *snap,
                const hr_config_t *cfg, const hr_recommend_req_t *req,
                const hr_user_state_t *st, int candidates,
                hr_rec_result_t *out, hr_error_t *err) {
  return rank(w, snap, cfg, req, st, candidates, -1, out, err);
}

/* ----------------------------------------------------------------- run */

/* The first experiment's variant for this request: 0 and *var (NULL: none
 * applies), or HR_EBADFIELD for a forced variant it does not have. */
static int pick_variant(const hr_config_t *cfg, const hr_recommend_req_t *r,
                        const char *force, hr_rec_result_t *out,
                        hr_error_t *err) {
  const hr_experiment_cfg_t *exp;
  out->exp = NULL;
  out->variant = NULL;
  out->forced = 0;
  if (cfg->n_experiments == 0)
    return 0;
  /* the first experiment splits /recommend: sticky by user, or by session
   * for anonymous requests; a QA header can force a variant */
  exp = out->exp = &cfg->experiments[0];
  if (force != NULL && cfg->experiments_force_header) {
    for (int i = 0; i < exp->n_variants && out->variant == NULL; i++)
      if (strcmp(exp->v[i].name, force) == 0)
        out->variant = &exp->v[i];
    if (out->variant == NULL)
      return hr_error_set(err, HR_EBADFIELD, "X-Hyperrec-Variant",
                          "experiment %s has no such variant", exp->name);
    out->forced = 1;
    return 0;
  }
  const char *id = r->user_id ? r->user_id : r->session_id;
  int wt[HR_EXP_MAX_VARIANTS], v;
  for (int i = 0; i < exp->n_variants; i++)
    wt[i] = exp->v[i].weight;
  v = id ? hr_exp_assign(exp->salt, id, strlen(id), wt, exp->n_variants) : -1;
  out->variant = v >= 0 ? &exp->v[v] : NULL;
  return 0;
}

/* The user's Redis state into w->st (the calling thread's connection):
 * &w->st, or NULL with out->degraded set when Redis cannot be read. */
static hr_user_state_t *read_user(hr_rec_worker_t *w, const hr_config_t *cfg,
                                  const char *user_id, hr_rec_result_t *out) {
  hr_ctxstore_t *cs = hr_ctxstore_thread();
  if (cs != NULL && hr_ctxstore_read_user(cs, user_id,
                                          (size_t)cfg->redis.history_cap,
                                          &w->st, NULL) == 0)
    return &w->st;
  out->degraded = 1;
  return NULL;
}

int hr_rec_run(hr_rec_worker_t *w, hr_registry_t *reg,
               const hr_config_t *cfg, const hr_recommend_req_t *req,
               const char *force_variant, hr_rec_result_t *out,
               hr_error_t *err) {
  hr_user_state_t *st = NULL;
  long n_allow = -1;
  int slot = 0, rc;

  memset(out, 0, sizeof(*out));
  if ((rc = pick_variant(cfg, req, force_variant, out, err)) != 0)
    return rc;
  if (out->variant != NULL && out->variant->slot[0] != '\0' &&
      (slot = hr_registry_find(reg, out->variant->slot)) < 0)
    slot = 0; /* checked at start; a slot list cannot change since */
  out->_snap = hr_registry_acquire(reg, slot);
  if (out->_snap == NULL && slot != 0) {
    /* the variant's slot has no model (yet): the first slot answers, and
     * the request counts for no variant */
    slot = 0;
    out->variant = NULL;
    out->_snap = hr_registry_acquire(reg, slot);
  }
  if (out->_snap == NULL)
    return hr_error_set(err, HR_ENOMODEL, "", "no model is loaded yet");
  out->_reg = reg;
  out->_slot = slot;
  /* Filters before the Redis round trip: an attribute this model lacks
   * is refused without one. */
  if (req->n_filters > 0) {
    size_t na;
    if ((rc = filter(w, out->_snap->model, req, &na, err)) != 0) {
      hr_rec_done(out);
      return rc;
    }
    n_allow = (long)na;
  }
  if (req->user_id != NULL)
    st = read_user(w, cfg, req->user_id, out);
  rc = rank(w, out->_snap, cfg, req, st,
            out->variant ? out->variant->candidates : 0, n_allow, out, err);
  if (rc != 0) /* nothing to release for the caller */
    hr_rec_done(out);
  return rc;
}

/* ------------------------------------------------------------- similar */

/* The first slot's snapshot into a cleared out (release with
 * hr_rec_done): its model, or NULL with HR_ENOMODEL in err. */
static const hr_model_t *first_slot(hr_registry_t *reg, hr_rec_result_t *out,
                                    hr_error_t *err) {
  memset(out, 0, sizeof(*out));
  if ((out->_snap = hr_registry_acquire(reg, 0)) == NULL) {
    hr_error_set(err, HR_ENOMODEL, "", "no model is loaded yet");
    return NULL;
  }
  out->_reg = reg;
  return out->model = out->_snap->model;
}

/* Scratch for a list of k (nc candidates, `kept` kept, nh history
 * entries, ne exclusions) and the request's filter into w->allow: 0, or
 * HR_ENOMEM / HR_EBADFIELD with err set. */
static int prepare(hr_rec_worker_t *w, const hr_model_t *m,
                   const hr_recommend_req_t *req, size_t k, size_t nc,
                   size_t kept, size_t nh, size_t ne, hr_rec_result_t *out,
                   size_t *n_allow, hr_error_t *err) {
  int rc;
  if (reserve(w, m, k, nc, kept, nh, ne) != 0)
    return hr_error_set(err, HR_ENOMEM, "", "out of memory");
  out->filtered = req->n_filters > 0;
  if (out->filtered && (rc = filter(w, m, req, n_allow, err)) != 0)
    return rc;
  out->filter_matches = *n_allow;
  return 0;
}

/* The result's items from w->top[0..n), without explanations. */
static void plain_items(hr_rec_worker_t *w, hr_rec_result_t *out, size_t n) {
  for (size_t i = 0; i < n; i++) {
    memset(&w->items[i], 0, sizeof(w->items[i]));
    w->items[i].index = w->top[i].index;
    w->items[i].score = w->top[i].score;
  }
  out->items = w->items;
  out->n_items = n;
}

/* The neighbours in w->top[0..n) re-scored with the user's vector w->un
 * added (personalised /similar); the best k first. Returns the count. */
static size_t personalise(hr_rec_worker_t *w, const hr_model_t *m, size_t n,
                          size_t k) {
  hr_topk_t t;
  for (size_t j = 0; j < n; j++)
    w->ids[j] = (uint32_t)w->top[j].index;
  hr_model_score_subset(m, w->un, w->ids, n, w->csc);
  for (size_t j = 0; j < n; j++) /* the prior is in both: count it once */
    w->csc[j] += w->top[j].score - hr_model_item_prior(m)[w->ids[j]];
  hr_topk_init(&t, w->top, k);
  for (size_t j = 0; j < n; j++)
    hr_topk_push(&t, (long)w->ids[j], w->csc[j]);
  return hr_topk_finish(&t);
}

/* The user's state for a personalised /similar: their history excluded
 * (and mapped into w->hist), their vector into w->un. 0, or HR_EINTERNAL. */
static int similar_user(hr_rec_worker_t *w, const hr_model_t *m,
                        const hr_recommend_req_t *req,
                        const hr_user_state_t *st, size_t *n_excl,
                        hr_rec_result_t *out) {
  long user_idx = hr_model_user_index(m, req->user_id);
  size_t n_trained = 0;
  const int32_t *trained = hr_model_user_history(m, user_idx, &n_trained);
  size_t n_hist = gather_history(w, m, req, st, n_excl);
  for (size_t j = 0; j < n_trained; j++)
    exclude(w, n_excl, trained[j]);
  out->history_used = n_hist;
  hr_history_t h = {w->hist, n_hist, w->hist_ts, (int64_t)time(NULL),
                    NULL, NULL, 0};
  if (hr_model_user_base(m, user_idx, &h, &w->fwd, w->base) != 0)
    return HR_EINTERNAL;
  hr_model_user_finish(m, user_idx, &h, w->base, w->un);
  return 0;
}

/* The anchor's neighbours by retrieval (w->u holds its vector): the best
 * nc of at least ann.candidates candidates, so that the prior reorders the
 * best by inner product as it does for /recommend. The count in w->top. */
static size_t neighbours(hr_rec_worker_t *w, const hr_model_t *m,
                         const hr_config_t *cfg, int filtered, size_t n_allow,
                         size_t n_excl, size_t nc, hr_retrieval_t *path) {
  hr_history_t none = {NULL, 0, NULL, -1, NULL, NULL, 0};
  int cands = nc > (size_t)cfg->ann.candidates ? (int)nc : cfg->ann.candidates;
  memset(&w->uc, 0, sizeof(w->uc)); /* no user entry, no context prior */
  w->pq.n = 0;
  return retrieve(w, m, cfg, cands, filtered, n_allow, n_excl, n_excl, -1,
                  &none, nc, path);
}

/* An anchor's neighbours are the same for every plain request (no filter,
 * no user): the best ann.candidates of them, with the anchor alone
 * excluded, are kept in the snapshot's cache under a key no user has.
 * Into w->kept / w->kept_sc (found now or kept), with their count in
 * *n_kept and the path that found them in *path; 0 when there is no cache
 * or it cannot hold them. Call with only the anchor excluded. */
static int kept_neighbours(hr_rec_worker_t *w, hr_snapshot_t *snap,
                           const hr_config_t *cfg, long anchor, size_t k,
                           size_t *n_kept, hr_retrieval_t *path) {
  const hr_model_t *m = snap->model;
  size_t want = (size_t)cfg->ann.candidates, got;
  hr__ucache_t *c = hr__ucache_of(snap, hr_model_dim(m),
                                  (size_t)cfg->recommend.user_cache_mb << 20,
                                  (size_t)cfg->ann.kept);
  hr__ukey_t key = hr__ukey(-2 - anchor, NULL, 0, NULL, NULL, 0);
  hr__ukept_t meta;

  if (c == NULL || want > hr__ucache_cmax(c) || want < k)
    return 0;
  if (!hr__ucache_get(c, key, w->base, w->kept, w->kept_sc, &meta) ||
      meta.asked != want) {
    got = neighbours(w, m, cfg, 0, 0, 1, want, path);
    for (size_t j = 0; j < got; j++) {
      w->kept[j] = (uint32_t)w->top[j].index;
      w->kept_sc[j] = w->top[j].score;
    }
    /* an entry of no user: n_hist carries the retrieval path */
    meta = (hr__ukept_t){(uint32_t)got, (uint32_t)want, (uint32_t)*path, 1,
                         -1};
    hr__ucache_put(c, key, w->u, w->kept, w->kept_sc, &meta);
  }
  *path = (hr_retrieval_t)meta.n_hist;
  *n_kept = meta.n_ids;
  return 1;
}

/* The first k kept neighbours the request does not exclude, into w->top;
 * their count. */
static size_t take_kept(hr_rec_worker_t *w, size_t n_kept, size_t k) {
  size_t got = 0;
  for (size_t j = 0; j < n_kept && got < k; j++)
    if (!bit(w->xbits, w->kept[j])) {
      w->top[got].index = (long)w->kept[j];
      w->top[got++].score = w->kept_sc[j];
    }
  return got;
}

int hr_rec_similar(hr_rec_worker_t *w, hr_registry_t *reg,
                   const hr_config_t *cfg, const hr_recommend_req_t *req,
                   hr_rec_result_t *out, hr_error_t *err) {
  hr_user_state_t *st = NULL;
  const hr_model_t *m;
  size_t k = (size_t)req->k, n_excl = 0, n_allow = 0, n_top, nh, nt = 0;
  size_t nc, dim, n_kept = 0;
  long anchor;
  int rc = 0, personal = req->user_id != NULL, kept;

  if ((m = first_slot(reg, out, err)) == NULL)
    return err->code;
  dim = (size_t)hr_model_dim(m);
  if ((anchor = hr_model_item_index(m, req->item_id)) < 0) {
    rc = hr_error_set(err, HR_ENOTFOUND, "item_id", "item \"%.128s\" is not "
                      "in the serving model", req->item_id);
    goto fail;
  }
  nc = personal ? (5 * k > 50 ? 5 * k : 50) : k;
  if (personal) {
    st = read_user(w, cfg, req->user_id, out);
    hr_model_user_history(m, hr_model_user_index(m, req->user_id), &nt);
  }
  nh = req->n_history + (st ? st->n_hist : 0);
  if ((rc = prepare(w, m, req, nc,
                    nc > (size_t)cfg->ann.candidates
                        ? nc : (size_t)cfg->ann.candidates,
                    (size_t)cfg->ann.kept, nh, nh + nt + req->n_exclude + 1,
                    out, &n_allow, err)) != 0)
    goto fail;
  exclude(w, &n_excl, anchor);
  /* the anchor's vector is the query */
  memcpy(w->u, hr_model_item_vectors(m) + (size_t)anchor * dim,
         dim * sizeof(float));
  kept = !personal && !out->filtered && !cfg->ann.exact &&
         kept_neighbours(w, out->_snap, cfg, anchor, k, &n_kept,
                         &out->retrieval);
  exclude_request(w, m, req, &n_excl);
  /* the kept list answers unless the exclusions took it below k while
   * more neighbours exist past its end */
  if (kept && ((n_top = take_kept(w, n_kept, k)) == k ||
               n_kept < (size_t)cfg->ann.candidates))
    goto found;
  if (personal && similar_user(w, m, req, st, &n_excl, out) != 0) {
    clear_excluded(w, n_excl);
    rc = hr_error_set(err, HR_EINTERNAL, "", "model failed to embed the user");
    goto fail;
  }
  n_top = neighbours(w, m, cfg, out->filtered, n_allow, n_excl, nc,
                     &out->retrieval);
found:
  clear_excluded(w, n_excl);
  if (personal)
    n_top = personalise(w, m, n_top, k);
  plain_items(w, out, n_top < k ? n_top : k);
  return 0;
fail:
  hr_rec_done(out);
  return rc;
}

/* ------------------------------------------------------------- popular */

/* The heaviest trending items this request may show (not excluded, not
 * hidden, passing its filters), at most k, into w->kept / w->kept_sc, each
 * then excluded so the rest of the list cannot repeat it. Returns the
 * count, (size_t)-1 on out of memory. */
static size_t trending(hr_rec_worker_t *w, const hr_model_t *m, int filtered,
                       size_t k, size_t *n_excl) {
  const mapped_t *t = mapped(w, HR_SET_TRENDING, m);
  size_t n = 0;
  if (t == NULL)
    return (size_t)-1;
  for (size_t j = 0; j < t->n && n < k; j++) {
    long i = (long)t->idx[j];
    if (bit(w->xbits, (size_t)i) || (filtered && !bit(w->allow, (size_t)i)))
      continue;
    w->kept[n] = (uint32_t)i;
    w->kept_sc[n++] = (float)t->weight[j];
    exclude(w, n_excl, i);
  }
  return n;
}

int hr_rec_popular(hr_rec_worker_t *w, hr_registry_t *reg,
                   const hr_config_t *cfg, const hr_recommend_req_t *req,
                   hr_rec_result_t *out, hr_error_t *err) {
  const hr_model_t *m;
  size_t k = (size_t)req->k, n_excl = 0, n_allow = 0, n_top, n_trend = 0;
  int rc = 0;

  if ((m = first_slot(reg, out, err)) == NULL)
    return err->code;
  if ((rc = prepare(w, m, req, k, k, req->trending ? k : 0, 0,
                    req->n_exclude + 1 + (req->trending ? k : 0), out,
                    &n_allow, err)) != 0)
    goto fail;
  hr_features_resolve(req->ctx, req->ts, NULL, &out->ctx);
  prior_query(&out->ctx, req, &w->pq);
  exclude_request(w, m, req, &n_excl);
  if (req->trending && (n_trend = trending(w, m, out->filtered, k, &n_excl)) ==
                           (size_t)-1) {
    clear_excluded(w, n_excl);
    rc = hr_error_set(err, HR_ENOMEM, "", "out of memory");
    goto fail;
  }
  /* nobody: the context prior, or popularity (retrieve's zero vector);
   * after trending items, the rest of the list */
  memset(w->u, 0, (size_t)hr_model_dim(m) * sizeof(float));
  memset(&w->uc, 0, sizeof(w->uc));
  hr_history_t none = {NULL, 0, NULL, -1, NULL, NULL, 0};
  n_top = n_trend < k ? retrieve(w, m, cfg, 0, out->filtered, n_allow,
                                 n_excl, n_excl, -1, &none, k - n_trend,
                                 &out->retrieval)
                      : 0;
  clear_excluded(w, n_excl);
  if (req->trending) {
    memmove(w->top + n_trend, w->top, n_top * sizeof(*w->top));
    for (size_t j = 0; j < n_top; j++) /* no recent event counted */
      w->top[n_trend + j].score = 0;
    for (size_t j = 0; j < n_trend; j++) {
      w->top[j].index = (long)w->kept[j];
      w->top[j].score = w->kept_sc[j];
    }
    n_top += n_trend;
    out->retrieval = HR_RET_TRENDING;
  }
  plain_items(w, out, n_top < k ? n_top : k);
  return 0;
fail:
  hr_rec_done(out);
  return rc;
}

void hr_rec_done(hr_rec_result_t *res) {
  if (res->_snap != NULL)
    hr_snapshot_release(res->_reg, res->_slot, res->_snap);
  res->_snap = NULL;
}

void hr_rec_cache_stats(const hr_snapshot_t *snap, unsigned long *entries,
                        unsigned long *hits, unsigned long *misses) {
  hr_snapshot_aux_t *a = atomic_load(&((hr_snapshot_t *)snap)->aux);
  hr__ucache_t *c = a ? hr__ucache_of((hr_snapshot_t *)snap, 0, 1, 0) : NULL;
  hr__ucache_stats(c, entries, hits, misses);
}
