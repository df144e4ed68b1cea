/* recommend.h -- the recommendation pipeline: one parsed request in, one
 * ranked list out.
 *
 *   request -> experiment variant -> model snapshot -> the user's context
 *   and history (one Redis round trip) -> user vector (kept between
 *   requests) -> candidates (the index, a filter pass, or every item) ->
 *   scores -> exclusions and rules -> top-k -> explanations -> result
 *
 * The HTTP handler parses, calls hr_rec_run and encodes the result; the
 * trainer's evaluation calls hr_rec_rank, the same retrieval, scoring and
 * top-k, on a model it loaded, so offline figures are what the server
 * serves. Every list leaves out the hidden items (itemsets.h; none in a
 * process that publishes none, such as the trainer). /similar and /popular
 * (hr_rec_similar, hr_rec_popular) take the
 * same retrieval with an item's vector as the query, or with none (the
 * context prior). Nothing here speaks HTTP or JSON.
 *
 * Memory: each thread that ranks owns one hr_rec_worker_t, scratch sized
 * by the largest request and model seen (grown rarely, never shrunk), so
 * a steady stream of requests allocates nothing here. A result borrows
 * from its worker and its snapshot: it is valid until hr_rec_done, and
 * the worker's next run.
 *
 * What is kept of a user: a model's costly per-user computation (the
 * sequential model's transformer, an iALS fold-in) depends only on the
 * user and the items and times of their history, and so do the index's
 * candidates for the user's vector in the neutral context. Both are kept
 * per model version, in a cache attached to the snapshot
 * (recommend.user_cache_mb), keyed by a 128-bit hash of the user and that
 * history; the request's own terms (time since the newest event, context
 * values) are added on every request, which scores the kept candidates
 * with its own vector (the two-stage retrieval, retrieve() in pipeline.c).
 * A new event changes the history, hence the key; a new version has a new
 * cache; a miss computes. User vectors and scores are bit for bit those of
 * the computation from scratch. */
#ifndef HR_RECOMMEND_H
#define HR_RECOMMEND_H

#include <stddef.h>

#include "hr/api.h"
#include "hr/config.h"
#include "hr/ctxstore.h"
#include "hr/err.h"
#include "hr/features.h"
#include "hr/metrics.h"
#include "hr/model.h"
#include "hr/ranker.h"
#include "hr/registry.h"

#define HR_REC_EXPLAIN_HISTORY 3 /* similar history items per item */
#define HR_REC_EXPLAIN_CONTEXT 4 /* context effects per item */
#define HR_REC_EXPLAIN_SCAN 200  /* newest distinct history items compared */

typedef struct hr_rec_worker hr_rec_worker_t;

/** The calling thread's worker, created on first use and freed when the
 *  thread exits; NULL on out of memory. */
hr_rec_worker_t *hr_rec_worker_thread(void);
/** A worker owned by the caller (the trainer, tests). */
hr_rec_worker_t *hr_rec_worker_new(void);
void hr_rec_worker_free(hr_rec_worker_t *w);

/** One recommended item. */
typedef struct {
  long index;                  /* dense item index */
  float score;
  /* with explain: the history items most similar to it (positive inner
   * product of item vectors, largest first) ... */
  size_t n_similar;
  long similar[HR_REC_EXPLAIN_HISTORY];
  float similarity[HR_REC_EXPLAIN_HISTORY];
  /* ... and the context features that moved its score */
  size_t n_effects;
  hr_ctx_effect_t effects[HR_REC_EXPLAIN_CONTEXT];
} hr_rec_item_t;

/** What a request's answer says. Borrowed from the worker and the
 *  snapshot (see above). */
typedef struct {
  const hr_model_t *model;
  const hr_experiment_cfg_t *exp;   /* the experiment splitting traffic */
  const hr_variant_cfg_t *variant;  /* NULL: no variant (none, or its slot
                                       had no model and slot 0 answered) */
  int forced;                       /* the variant came from the QA header */
  hr_context_t ctx;                 /* the context used */
  const hr_rec_item_t *items;       /* best first */
  size_t n_items;
  size_t history_used;              /* distinct known history items */
  int degraded;                     /* Redis could not be read */
  hr_retrieval_t retrieval;         /* how candidates were found */
  int filtered;                     /* the request had filters ... */
  size_t filter_matches;            /* ... passed by this many items */
  int cache_hit;                    /* the user vector was kept */
  /* private: what hr_rec_done releases */
  hr_registry_t *_reg;
  hr_snapshot_t *_snap;
  int _slot;
} hr_rec_result_t;

/** The public name of a retrieval path, as /recommend's "retrieval":
 *  "popularity", "context_popularity", "ann" or "exact". */
const char *hr_rec_retrieval_name(hr_retrieval_t r);

/** The whole pipeline for a parsed /recommend: picks the variant of the
 *  first experiment (sticky by user, else by session; `force_variant`,
 *  the X-Hyperrec-Variant header or NULL, when cfg allows it), takes the
 *  slot's snapshot, reads the user's context and history from Redis (the
 *  calling thread's connection; unreachable: degraded, not an error) and
 *  ranks with hr_rec_rank. Returns 0 (release with hr_rec_done), or
 *  HR_ENOMODEL (nothing loaded yet), HR_EBADFIELD (unknown forced variant;
 *  a filter attribute the model lacks), HR_EINTERNAL, HR_ENOMEM with err
 *  set; nothing to release then. */
int hr_rec_run(hr_rec_worker_t *w, hr_registry_t *reg,
               const hr_config_t *cfg, const hr_recommend_req_t *req,
               const char *force_variant, hr_rec_result_t *out,
               hr_error_t *err);

/** POST /similar: the k items nearest to req->item_id in the first slot's
 *  model, by the score a user whose vector were that item's would give
 *  (<item, other> plus the popularity prior), through the same retrieval,
 *  filter and exclusion paths as hr_rec_run; the item itself and
 *  req->exclude are left out. With req->user_id, the user's history (Redis
 *  and training) is left out too, and the nearest max(5k, 50) are ordered
 *  by that score plus the user's own (<user, other>): similar items this
 *  user is likely to want. Redis unreachable: not personalised, degraded.
 *  Returns 0 (release with hr_rec_done), HR_ENOMODEL, HR_ENOTFOUND (an
 *  item_id the model does not know), HR_EBADFIELD (filter), HR_EINTERNAL
 *  or HR_ENOMEM. */
int hr_rec_similar(hr_rec_worker_t *w, hr_registry_t *reg,
                   const hr_config_t *cfg, const hr_recommend_req_t *req,
                   hr_rec_result_t *out, hr_error_t *err);

/** POST /popular: what the first slot's model ranks for nobody in the
 *  request's context -- its context prior (log popularity lifted by each
 *  context value and user attribute it knows), or plain popularity when it
 *  knows none -- with req's filters and exclusions; no Redis. With
 *  req->trending, the published trending items first (score: their recent
 *  weight), then that order with score 0. Returns 0
 *  (release with hr_rec_done), HR_ENOMODEL, HR_EBADFIELD (filter) or
 *  HR_ENOMEM. */
int hr_rec_popular(hr_rec_worker_t *w, hr_registry_t *reg,
                   const hr_config_t *cfg, const hr_recommend_req_t *req,
                   hr_rec_result_t *out, hr_error_t *err);

/** Release what a result holds (its snapshot reference). */
void hr_rec_done(hr_rec_result_t *res);

/** Rank for a request against one snapshot's model, given the user's
 *  Redis state (`st`, NULL: none). `candidates` overrides
 *  cfg->ann.candidates when > 0 (an experiment variant's). Fills out (its
 *  experiment fields and degraded flag are left to the caller). Returns 0,
 *  HR_EBADFIELD (filter), HR_EINTERNAL (the model could not embed the
 *  user) or HR_ENOMEM. */
int hr_rec_rank(hr_rec_worker_t *w, hr_snapshot_t *snap,
                const hr_config_t *cfg, const hr_recommend_req_t *req,
                const hr_user_state_t *st, int candidates,
                hr_rec_result_t *out, hr_error_t *err);

/** The user cache of a snapshot: entries filled, hits and misses so far (0
 *  before its first request, or with recommend.user_cache_mb 0). */
void hr_rec_cache_stats(const hr_snapshot_t *snap, unsigned long *entries,
                        unsigned long *hits, unsigned long *misses);

#endif
