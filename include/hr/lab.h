/* lab.h -- the trainer's research evaluations (src/lab/): the context
 * protocols ctx80 / ctx80-rc with their own reader, leave-last-out on an
 * event file, the cold-item and cold-user studies, and the neural reranker
 * prototype. Built and tested with the rest, run by `eval`'s lab modes and
 * recorded in docs/research/training-record.md; nothing in `fit` or the
 * server depends on them. Same conventions as train.h. */
#ifndef HR_LAB_H
#define HR_LAB_H

#include "hr/rerank.h"
#include "hr/train.h"

/** Cold users: a seeded share `frac` of the users of a data set with
 *  context columns or user attributes is held out entirely; the context prior is fitted on the rest;
 *  each held-out event's item is ranked among all items by popularity
 *  alone and by popularity + the lifts of the event's context (what the
 *  server answers a user it knows nothing about). Means over the events,
 *  with the paired standard error of the NDCG difference. */
typedef struct {
  size_t users, events, fields;
  double pop_ndcg, pop_hr, ctx_ndcg, ctx_hr, diff_sq, diff_se;
} hr_cold_users_result_t;

int hr_eval_cold_users(const hr_dataset_t *ds, double frac, uint64_t seed,
                       hr_cold_users_result_t *res, hr_error_t *err);


/* ------------------------------------------------------ neural ranker */

#include "hr/rerank.h"

typedef struct {
  hr_rerank_dims_t dims;   /* D and d_seq from the retrieval model */
  int n_cand;              /* candidates per query (the retrieval's top) */
  int epochs, batch;
  float lr;
  uint64_t seed;
} hr_rerank_opts_t;

void hr_rerank_opts_default(hr_rerank_opts_t *o);
/** Train on nq queries of n_cand input rows each (X: nq x n_cand x
 *  hr_rerank_inputs floats), pos[q] the true item's row. *params_out: a
 *  new hr_rerank_param_count array (free()). HR_ENOMEM. */
int hr_rerank_fit(const hr_rerank_opts_t *o, const float *X,
                  const int32_t *pos, size_t nq, float **params_out,
                  double *loss_out, hr_error_t *err);


/** Leave-last-out on an event CSV (the layout `fit --data` reads): each
 *  user's newest distinct item is the test target and the one before it
 *  the valid target (users with 3 or more items); the model learns from
 *  the other rows (for valid, without the test item either) and ranks
 *  every item but the user's training items. The sequential model learns
 *  a vector per context value (the context prior's fields), and the
 *  target's context values are added to its user vector, and so are the
 *  user's attributes from users_path (NULL: none; hr_data_read_users);
 *  no_context trains and scores the same model without any of them (the
 *  ablation). */
int hr_eval_last_seq(const char *path, const char *users_path,
                     int target_test, const hr_seq_opts_t *o, int no_context,
                     const char *topk_out, hr_eval_result_t *res,
                     hr_error_t *err);

/** Protocol `loo` with the neural ranker: the retrieval model (seq + the
 *  long-term part) learns without each user's last training item (users
 *  with 3 or more), the ranker learns to pick that item among the
 *  retrieval's top ro->n_cand, then the targets' top N (full history in)
 *  are reordered by the ranker. *base gets the same retrieval's own top
 *  10, for comparison. */
int hr_eval_loo_rerank(const char *split_dir, int target_test,
                       const hr_seq_opts_t *o, const hr_rerank_opts_t *ro,
                       const char *topk_out, hr_eval_result_t *res,
                       hr_eval_result_t *base, hr_error_t *err);

/** The cold-item check: a seeded `frac` of the items seen in train+valid
 *  (seed o->seed) loses all its interactions; the sequential model with
 *  the item tower (attributes from items_path: u.item or items.csv) is
 *  trained on the rest, so the hidden items get vectors from their
 *  attributes alone; every user who interacted with a hidden item (train,
 *  valid or test) and keeps a visible history ranks the hidden items only,
 *  by the vector after that history. NDCG@10 / HR@10 (all of the user's
 *  hidden items relevant) against their exact expectation under a random
 *  order. */
typedef struct {
  size_t hidden, users;
  double ndcg, random_ndcg, hr, random_hr;
  double train_seconds;
} hr_cold_result_t;

int hr_eval_cold_seq(const char *split_dir, const char *items_path,
                     double frac, const hr_seq_opts_t *o,
                     hr_cold_result_t *res, hr_error_t *err);


/* --------------------------------------------- protocol ctx80 (ctx.c) */

#define HR_CTX_MAX_COLS 64
enum { HR_CTX_FIT = 0, HR_CTX_VALID = 1, HR_CTX_TEST = 2 };

/** A ratings.csv of CONTEXT-PROTOCOL.md, read with the seeded split. */
typedef struct {
  size_t n;                        /* data rows, file order = row ids */
  hr_idmap_t *users, *items;       /* items in order of first appearance */
  int32_t *u, *i;                  /* per row, dense */
  float *rating;
  size_t n_cols;                   /* context columns */
  char *col[HR_CTX_MAX_COLS];
  int is_feature[HR_CTX_MAX_COLS]; /* section 4: 0 for excluded columns */
  hr_idmap_t *vals[HR_CTX_MAX_COLS];
  int32_t *v;                      /* n x n_cols value ids, -1 unknown */
  unsigned char *part;             /* HR_CTX_FIT / VALID / TEST per row */
} hr_ctxdata_t;

/** Read and validate path (HR_EIO, HR_EFORMAT with path:line) and split
 *  it as the protocol does. Free with hr_ctx_free. */
int hr_ctx_read(const char *path, hr_ctxdata_t *d, hr_error_t *err);
void hr_ctx_free(hr_ctxdata_t *d);

typedef struct {
  int target_test;     /* 1: cases from test, fit on train; 0: valid/fit */
  int repeat;          /* 1: ctx80-rc (exclusions per user and context) */
  double threshold;    /* relevance; < 0: 4, or 1 when ratings exceed 5 */
  const char *model;   /* "pop" (MostPopular of relevant training rows),
                          "tt" (the context two-tower), "seq" (the served
                          sequential model) or "nbr" (the user's own
                          ratings + item x situation biases) */
  int no_context;      /* the ablation: every context column ignored */
  int dim, epochs;     /* tt: width, passes */
  float lr, wd;        /* tt: AdamW */
  float user_dropout;  /* tt: share of training rows without the user's
                          vector (the bias and context rank alone) */
  uint64_t seed;
  /* "seq": the served sequential model with context features and the
   * long-term part (no time gaps: these sets have no timestamps), its
   * options */
  const hr_seq_opts_t *seq;
  const char *items;   /* "seq": an items.csv for the item tower, or NULL */
  /* "nbr": the weight of the item x situation biases (0: none) and their
   * shrinkage (pseudo-rows at the value's mean over all items, > 0) */
  float nbr_weight, nbr_shrink;
} hr_ctx_eval_opts_t;

typedef struct {
  double threshold, hr, hr_se, ndcg, ndcg_se;
  size_t cases, dropped, relevant, target_rows, fit_rows, n_items;
  double train_seconds;
} hr_ctx_result_t;

/** Train on the target's training rows, rank every case's candidates and
 *  write the judge's file (ROW<TAB>items, at least 10 or all candidates)
 *  to topk_out when not NULL; metrics as the judge computes them. */
int hr_eval_ctx(const char *path, const hr_ctx_eval_opts_t *o,
                const char *topk_out, hr_ctx_result_t *res, hr_error_t *err);


#endif
