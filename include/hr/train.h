/* train.h -- the offline trainer (bin/hyperrec-train): data readers, the
 * models (iALS, popularity, the sequential model), fit's model selection,
 * the writers, the `loo` evaluation and the synthetic data generator: what
 * `fit` and `eval` need. The research evaluations are in lab.h.
 *
 * Everything here runs in the trainer process (and in unit tests), never in
 * the server. The trainer writes models with hr_model_write and evaluates
 * them through hr_model_open + hr_model_user_vector/hr_model_score_items, so
 * offline metrics are computed by the code that serves. Functions are not
 * thread-safe unless stated; hr_ials_fit runs its own worker threads. Errors
 * are 0 or a negative HR_E* with the detail (file:line for input) in err. */
#ifndef HR_TRAIN_H
#define HR_TRAIN_H

#include <stdio.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "hr/err.h"
#include "hr/ann.h"
#include "hr/model.h"

/* ------------------------------------------------------------ data set */

/** Interactions as read, one per row/event, in input order. */
typedef struct {
  hr_idmap_t *users, *items;   /* external id <-> dense index */
  int32_t *u, *i;              /* per interaction */
  int64_t *ts;                 /* unix seconds, 0 when unknown */
  size_t n, cap;
  int64_t ts_min, ts_max;
  /* Optional item attributes (--items): header and one row per item index
   * (NULL where unknown). */
  char *attr_header;
  char **attrs;
  size_t attrs_cap;
  /* Context columns of a CSV / the ctx.* fields of a stream, with their
   * values (the vocabulary goes into the manifest). */
  size_t n_ctx;
  char *ctx_name[64];
  hr_idmap_t *ctx_vals[64];
  /* Per interaction, the value (index into ctx_vals[c]) of up to
   * HR_DS_CTX context columns, -1 unknown: n x HR_DS_CTX. Column c uses
   * slot cv_slot[c] (-1: not kept): the first HR_DS_CTX columns a request
   * can carry (hr_ctx_never_feature ones are skipped). */
  int32_t *cv;
  int cv_slot[64];
  int n_slots;
  /* Optional user attributes (--users): n_uattr columns named "user.<col>"
   * with their value vocabularies, and for the first uattr_users users the
   * value index of each column (-1 unknown): uattr[u * HR_DS_UATTR + c]. */
  size_t n_uattr, uattr_users;
  char *uattr_name[8];
  hr_idmap_t *uattr_vals[8];
  int32_t *uattr;
  /* Set before reading (fit --min-rating): the readers skip rows whose
   * rating is below min_rating, and count them; rows without a rating are
   * kept. */
  int min_rating_set;
  double min_rating;
  size_t below_min_rating;
  /* Set before reading (fit --since): the readers skip rows whose time is
   * known and earlier than since, and count them; undated rows are kept. */
  int since_set;
  int64_t since;
  size_t before_since;
} hr_dataset_t;

#define HR_DS_UATTR 8        /* user attribute columns */
#define HR_DS_UATTR_VALUE 64 /* bytes in one of their values */

/** 1 for the context columns a live request cannot carry (felt during or
 *  after the consumption, or a property of the answer: CONTEXT-PROTOCOL.md
 *  section 4): end_emotion, dominant_emotion, interaction. */
int hr_ctx_never_feature(const char *name);

#define HR_DS_CTX 12

/** Empty data set; HR_ENOMEM. Free with hr_dataset_free. */
int hr_dataset_init(hr_dataset_t *ds);
void hr_dataset_free(hr_dataset_t *ds);
/** Append one interaction (ids copied); HR_ENOMEM. */
int hr_dataset_add(hr_dataset_t *ds, const char *user, size_t ulen,
                   const char *item, size_t ilen, int64_t ts);

/** 1 when a row of this time is left out by the --since window (ds->since;
 *  ts 0, unknown, is kept), and counts it in ds->before_since. */
int hr_dataset_before_since(hr_dataset_t *ds, int64_t ts);
/** Rows [bounds[k-1], bounds[k]) came from source k (bounds[0] = 0,
 *  bounds[n_sources] = ds->n): drops each dated row whose (user, item, ts)
 *  an earlier source already holds -- an event exported to a file and
 *  still in the stream counts once; repeats within one source stay.
 *  dups[k] gets source k's dropped rows. HR_ENOMEM. */
int hr_dataset_dedup_sources(hr_dataset_t *ds, const size_t *bounds,
                             size_t n_sources, size_t *dups);

/** MovieLens-style lines `user item [rating [ts]]`, TAB or "::" separated
 *  (u.data, ratings.dat, the loo split files). HR_EIO, HR_EFORMAT (with
 *  "path:line: reason"), HR_ENOMEM. */
int hr_data_read_movielens(hr_dataset_t *ds, const char *path,
                           hr_error_t *err);
/** CSV with a header `user_id,item_id[,rating][,ts][,<context>...]`; every
 *  other column is a categorical context. Same errors. */
int hr_data_read_csv(hr_dataset_t *ds, const char *path, hr_error_t *err);
/** A catalogue CSV (header; first column item_id, the rest attributes):
 *  adds items never interacted with and keeps their attributes. */
int hr_data_read_items(hr_dataset_t *ds, const char *path, hr_error_t *err);
/** User attributes (read after the interactions): a CSV with a header
 *  `user_id,<attribute>,...` (at most HR_DS_UATTR attributes; an empty cell
 *  is unknown) or MovieLens's u.user (age, gender, occupation; the zip code
 *  is dropped). A numeric "age" becomes its MovieLens age group (under_18,
 *  18-24, 25-34, 35-44, 45-49, 50-55, 56+). Users without interactions are
 *  skipped. Same errors as the other readers. */
int hr_data_read_users(hr_dataset_t *ds, const char *path, hr_error_t *err);
/** Export of the server's event stream (XRANGE in chunks): fields user_id,
 *  item_id, ts, type, ctx.*; events without item_id are skipped. HR_EREDIS
 *  when Redis cannot be reached or answers an error. */
int hr_data_read_redis(hr_dataset_t *ds, const char *hostport,
                       const char *stream, hr_error_t *err);

/** Per-user histories: CSR over dense user indices, each user's distinct
 *  items OLDEST first, ordered by (ts, item id -- numerically when both ids
 *  are integers --, input order); a repeated item counts at its latest
 *  position. */
typedef struct {
  size_t n_users, n_items;
  uint64_t *ptr;     /* n_users + 1 */
  int32_t *items;    /* ptr[n_users] */
  int64_t *ts;       /* the items' timestamps (the kept position's) */
  uint32_t *row;     /* the kept position's row of the data set (NULL in a
                        CSR not built by hr_dataset_histories) */
} hr_csr_t;

int hr_dataset_histories(const hr_dataset_t *ds, hr_csr_t *out);
void hr_csr_free(hr_csr_t *c);

/* ---------------------------------------------------------------- iALS */

struct hr_ctx_prior;

typedef struct {
  int factors;             /* dim */
  int iters;
  int threads;
  uint64_t seed;
  hr_ials_params_t p;      /* alpha, reg, decay, floor, cap */
  float prior;             /* scale of the popularity prior */
  int progress;            /* 1: epoch lines on stderr */
  int index;               /* 1: build index.bin over the item vectors */
  hr_ann_params_t ann;     /* its parameters */
  const struct hr_ctx_prior *ctx_prior; /* writer: the context prior, or
                                            NULL */
  int popularity;          /* 1: no factors -- a model of kind "pop" (one
                              dimension, all zeros), which the server
                              answers with the popularity prior and the
                              context prior for every user */
  json_t *selection;       /* writer: report.json, or NULL */
  int forced;              /* writer: manifest "forced" */
} hr_ials_opts_t;

/** The tuned defaults (docs/training.md). */
void hr_ials_opts_default(hr_ials_opts_t *o);

typedef struct hr_ials {
  int dim;
  size_t n_users, n_items;
  float *X;       /* n_users x dim */
  float *Y;       /* n_items x dim */
  float *yty;     /* dim x dim, Gram of Y (full, symmetric) */
  float *prior;   /* n_items */
  double seconds; /* wall time of the fit */
  double loss;    /* last epoch's loss per interaction */
} hr_ials_t;

/** Fit iALS on the histories with the confidences of hr_ials_confidence
 *  (newest first per user). The last step is a user step, so X[u] equals
 *  hr_model_user_vector for u without recent events. Deterministic for a
 *  seed whatever the thread count. HR_EINVAL, HR_ENOMEM. */
int hr_ials_fit(const hr_csr_t *h, const hr_ials_opts_t *o, hr_ials_t *out,
                hr_error_t *err);
void hr_ials_free(hr_ials_t *m);

/** Write the trained model as a new version of slot_dir (hr_model_write);
 *  `data` (borrowed, may be NULL) is the manifest's training summary. */
int hr_train_write(const char *slot_dir, const hr_dataset_t *ds,
                   const hr_csr_t *h, const hr_ials_t *m,
                   const hr_ials_opts_t *o, json_t *data, json_t *metrics,
                   char *path_out, size_t path_cap, hr_error_t *err);
/** The same into an existing directory with a given name/version. */
int hr_train_write_files(const char *dir, const hr_dataset_t *ds,
                         const hr_csr_t *h, const hr_ials_t *m,
                         const hr_ials_opts_t *o, json_t *data,
                         const char *name, uint64_t version,
                         hr_error_t *err);

/* ---------------------------------------------------------------- EASE */

#define HR_EASE_MAX_ITEMS 5000 /* its n x n item matrix is served as is */

typedef struct {
  float lambda;            /* the ridge on B */
  float decay;             /* the served user vector weighs the k-th
                              newest distinct item decay^k, in (0, 1] */
  float prior;             /* scale of the popularity prior */
  const struct hr_ctx_prior *ctx_prior; /* writer: the context prior */
  json_t *selection;       /* writer: report.json, or NULL */
  int forced;              /* writer: manifest "forced" */
} hr_ease_opts_t;

void hr_ease_opts_default(hr_ease_opts_t *o);

typedef struct {
  size_t n_items, n_users;
  float *items;            /* n_items x n_items: row i = B[:, i] */
  float *prior;            /* n_items */
  double seconds;
} hr_ease_t;

/** EASE on the histories' distinct items (ease.c). HR_EINVAL (over
 *  HR_EASE_MAX_ITEMS items), HR_ENOMEM, HR_EINTERNAL. */
int hr_ease_fit(const hr_csr_t *h, const hr_ease_opts_t *o, hr_ease_t *out,
                hr_error_t *err);
void hr_ease_free(hr_ease_t *e);
/** Write it (kind "ease") as a new version of slot (path out) or, slot
 *  NULL, into the existing directory dir. */
int hr_ease_write(const char *slot, const char *dir, const hr_dataset_t *ds,
                  const hr_csr_t *h, const hr_ease_t *e,
                  const hr_ease_opts_t *o, json_t *data, json_t *metrics,
                  char *path, size_t cap, hr_error_t *err);

/* ------------------------------------------- denoising autoencoder */

typedef struct {
  int dim;                 /* the hidden layer: the user vector's width */
  int epochs, batch;
  float lr, weight_decay;  /* AdamW */
  float dropout;           /* share of a user's items dropped in training */
  float decay;             /* the k-th newest item weighs decay^k */
  uint64_t seed;
  int threads, progress;
  double deadline;         /* as hr_seq_opts_t.deadline (0: none) */
  int index;               /* writer: build index.bin */
  hr_ann_params_t ann;
  const struct hr_ctx_prior *ctx_prior; /* writer: the context prior */
  json_t *selection;       /* writer: report.json, or NULL */
  int forced;              /* writer: manifest "forced" */
} hr_dae_opts_t;

void hr_dae_opts_default(hr_dae_opts_t *o);

/** A Mult-DAE (dae.c): W1, W2 n_items x dim, b1 dim, b2 n_items, views
 *  into one parameter vector w (hr_dae_param_count floats). */
typedef struct {
  size_t n_items, n_users;
  int dim;
  float *w, *W1, *b1, *W2, *b2;
  double seconds, loss;
} hr_dae_t;

size_t hr_dae_param_count(size_t n_items, int dim);
/** Point m's views into w (m->n_items and m->dim set). */
void hr_dae_bind(hr_dae_t *m, float *w);
/** Floats of scratch hr_dae_loss_grad needs for B rows. */
size_t hr_dae_work_floats(size_t n_items, int dim, size_t B);
/** Mean multinomial loss of B rows (inputs X, targets T: B x n_items
 *  each) and, when grad is not NULL, its gradient w.r.t. m's parameters
 *  ADDED into grad (laid out as m->w). */
double hr_dae_loss_grad(const hr_dae_t *m, const float *X, const float *T,
                        size_t B, float *grad, float *work);
/** Train on the histories (HR_EINVAL, HR_ENOMEM, HR_ETIMEOUT). */
int hr_dae_fit(const hr_csr_t *h, const hr_dae_opts_t *o, hr_dae_t *out,
               hr_error_t *err);
void hr_dae_free(hr_dae_t *m);
/** Write it (kind "dae") as a new version of slot or into dir. */
int hr_dae_write(const char *slot, const char *dir, const hr_dataset_t *ds,
                 const hr_csr_t *h, const hr_dae_t *m, const hr_dae_opts_t *o,
                 json_t *data, json_t *metrics, char *path, size_t cap,
                 hr_error_t *err);

/* ------------------------------------------------- anomalous users */

#define HR_ANOM_FEATURES 10

/** Each user's anomaly score (anomaly.c): the reconstruction error of an
 *  autoencoder over the user's behaviour profile (events, distinct items,
 *  repetition, item popularity, timing regularity, copied sequences, the
 *  loss of a small denoising autoencoder over the user's items). */
typedef struct {
  size_t n_users;          /* the data set's users, dense indices */
  float *score;            /* n_users: larger is more anomalous */
  float *feat;             /* n_users x HR_ANOM_FEATURES, standardised */
  double seconds;
} hr_anomaly_t;

extern const char *const hr_anom_feature_names[HR_ANOM_FEATURES];
/** Score every user of ds (seeded). HR_ENOMEM. */
int hr_anomaly_scores(const hr_dataset_t *ds, uint64_t seed, hr_anomaly_t *out,
                      hr_error_t *err);
void hr_anomaly_free(hr_anomaly_t *a);
/** report.json's "anomalies": the method and the `top` most anomalous
 *  users with their scores and profiles. */
json_t *hr_anomaly_report(const hr_anomaly_t *a, const hr_dataset_t *ds,
                          size_t top);
/** Remove from ds the rows of the share q of users with the highest
 *  scores (*dropped: how many users). HR_ENOMEM. */
int hr_anomaly_drop(hr_dataset_t *ds, const hr_anomaly_t *a, double q,
                    size_t *dropped);

/* ------------------------------------------------------- item tokens */

/** Item attributes as tokens for the item tower: every (column, value) of
 *  the data set's attribute table (--items) is a token; item i has tokens
 *  tok[ptr[i] .. ptr[i+1]) with weights w (1 / its token count), so its
 *  attribute vector is the mean of its tokens' vectors. */
typedef struct {
  size_t n_items, n_tokens;
  uint64_t *ptr;           /* n_items + 1 */
  int32_t *tok;
  float *w;
} hr_item_tokens_t;

/** Tokens of the first n_items items of ds (none: n_tokens 0). HR_ENOMEM. */
int hr_item_tokens(const hr_dataset_t *ds, size_t n_items,
                   hr_item_tokens_t *out);
void hr_item_tokens_free(hr_item_tokens_t *t);

/** A factor table for the items nobody has touched yet: rows = Y
 *  (n_items x f), except that each item with tokens and no interaction in
 *  h gets the weighted mean of its tokens' factors, a token's factor being
 *  the sum of Y over the touched items carrying it / (their count +
 *  shrink). The long-term part of a seq model scores new catalogue items
 *  through it. HR_ENOMEM. */
#define HR_LT_TOKEN_SHRINK 5.0f /* hr_item_tokens_project's default */
int hr_item_tokens_project(const hr_item_tokens_t *t, const hr_csr_t *h,
                           const float *Y, size_t f, float shrink,
                           float *rows);

/* ------------------------------------------------------- context prior */

/** What a model knows for a user it knows nothing about: the log
 *  popularity of each item and, per context value (location=home,
 *  mood=happy, ...), how that value changes it (naive Bayes with a
 *  smoothed conditional): lift[v][i] = log P(i | v) - log P(i), with
 *  P(i) = (c_i + 1) / (N + n_items) and P(i | v) = (c_vi + m P(i)) /
 *  (n_v + m). Fields: the data set's context columns with a cv slot,
 *  except one whose name is over HR_MODEL_MAX_ATTR_NAME bytes or that has
 *  more than 100,000 values or a value over 64 bytes (a request could not
 *  carry it; the loader would refuse the version). */
#define HR_PRIOR_FIELDS (HR_DS_CTX + HR_DS_UATTR)
typedef struct hr_ctx_prior {
  size_t n_items, n_fields, n_values;
  const char *field[HR_PRIOR_FIELDS]; /* borrowed from the data set */
  int user[HR_PRIOR_FIELDS];     /* 1: a user attribute (column col of
                                    uattr), 0: a context column */
  size_t col[HR_PRIOR_FIELDS];   /* its context / user attribute column */
  size_t slot[HR_PRIOR_FIELDS];  /* a context column's slot in cv */
  size_t off[HR_PRIOR_FIELDS + 1]; /* rows of each field in lift */
  float m;
  float *logpop;                 /* n_items */
  float *lift;                   /* n_values x n_items */
} hr_ctx_prior_t;

/** Fit on the rows of ds with use[r] != 0 (use NULL: all). n_fields 0
 *  when the data has no usable context. HR_ENOMEM. */
int hr_ctx_prior_fit(const hr_dataset_t *ds, size_t n_items,
                     const unsigned char *use, float m, hr_ctx_prior_t *out);
void hr_ctx_prior_free(hr_ctx_prior_t *p);
/** 1 when a request can carry field f's values, so that the seq model's
 *  context features can use it: a context field (tz, location, mood,
 *  device), a context.extra name (hr_api_ctx_extra_name) or a user
 *  attribute (user_attrs); 0 for names a request cannot carry. */
int hr_ctx_prior_served(const hr_ctx_prior_t *p, size_t f);
/** The same test on a column name. */
int hr_ctx_name_served(const char *name);
/** The prior's rows (index into lift) of data set row r's context values
 *  and its user's attributes, one per field into out[0..n_fields) (-1: no
 *  value, or a field that is not hr_ctx_prior_served). */
void hr_ctx_prior_rows(const hr_ctx_prior_t *p, const hr_dataset_t *ds,
                       size_t r, int32_t *out);
/** The same for every entry of h (hr_dataset_histories of ds): *rows gets
 *  h->ptr[n_users] x n_fields (free()). The seq model's context features
 *  (hr_seq_opts_t.ctx_rows). HR_ENOMEM. */
int hr_ctx_prior_history_rows(const hr_ctx_prior_t *p, const hr_dataset_t *ds,
                              const hr_csr_t *h, int32_t **rows);
/** Its manifest object ({"smoothing", "fields": [{"name","values"}]}) and
 *  tensors ("pop_log" [n_items], "ctx_lift" [n_values, n_items]) into
 *  t[0..1]; NULL (no tensors) when it has no field. */
json_t *hr_ctx_prior_manifest(const hr_ctx_prior_t *p, const hr_dataset_t *ds,
                              hr_tensor_t *t);

/* ------------------------------------------------------------ progress */

/** Per-epoch report: a line per epoch on stderr (loss, validation metrics,
 *  elapsed, ETA; while an epoch runs, a redrawn bar when stderr is a
 *  terminal) and the curve as CSV (epoch,seconds,loss[,hr10,ndcg10];
 *  seconds exclude the validation passes). */
typedef struct {
  const char *label;
  int epochs, print, tty, header;
  double t0, last_draw, extra_s;
  FILE *csv;
} hr_progress_t;

int hr_progress_begin(hr_progress_t *p, const char *label, int epochs,
                      int print, const char *report, hr_error_t *err);
/** Within epoch `epoch` (0-based), fraction `frac` done: redraws the bar. */
void hr_progress_batch(hr_progress_t *p, int epoch, double frac);
/** Epoch `epoch` ended with `loss` and n_metric (0..2) metrics HR@10,
 *  NDCG@10 that took metric_seconds to compute. */
void hr_progress_epoch(hr_progress_t *p, int epoch, double loss,
                       const double *metric, int n_metric,
                       double metric_seconds);
/** Closes the CSV; HR_EIO when it could not be written. */
int hr_progress_end(hr_progress_t *p, hr_error_t *err);

/* ------------------------------------------------- sequential (seq.h) */

#include "hr/seq.h"

struct hr_seq_fit;

typedef struct {
  hr_seq_dims_t dims;      /* d, L, blocks, ffn (n_items from the data) */
  int epochs;
  int batch;               /* sequences per step */
  float lr, weight_decay, clip;
  float init_std;          /* embeddings ~ N(0, init_std) */
  float dropout;           /* inverted dropout on the input embeddings */
  float block_dropout;     /* ... and on the blocks' sublayer outputs */
  int threads;             /* OpenBLAS threads while training */
  uint64_t seed;
  int progress;            /* 1: epoch lines on stderr */
  float prior;             /* scale of the popularity prior (writer) */
  int index;               /* 1: the writer builds index.bin */
  hr_ann_params_t ann;     /* its parameters */
  const char *report;      /* per-epoch CSV (hr_progress_t), or NULL */
  const struct hr_ctx_prior *ctx_prior; /* writer: the context prior */
  /* Item tower (NULL or no tokens: id embeddings alone): an item's vector
   * is its id vector plus the mean of its attribute tokens' vectors,
   * learned jointly. Items with attributes and no interaction ("cold")
   * are kept out of the softmax and get their attribute vector alone. */
  const hr_item_tokens_t *tokens;
  float long_term;         /* > 0: add a long-term part (iALS, lt_opts)
                              with this weight: user vector
                              [u_seq | w x_u] against items [v_i | y_i] */
  hr_ials_opts_t lt_opts;
  float id_dropout;        /* with tokens: share of items shown by their
                              attribute vector alone in each batch */
  /* Context features (ctx_slots > 0 and ctx_rows set; a negative
   * ctx_slots is the caller's "none", as `--no-context` sets it): history
   * entry k of h was chosen in the context values ctx_rows[k * ctx_slots
   * + j] (rows of a table of ctx_values vectors, -1 none), and the user
   * vector that predicts it gets those rows added (hr_seq_work_context). */
  const int32_t *ctx_rows;
  int ctx_slots;
  size_t ctx_values;
  int members;             /* networks in the ensemble (0 or 1: one) */
  int tie_shuffle;         /* 1: each epoch, reorder the items that share
                              a timestamp at random (their order is
                              unknown) */
  int negatives;           /* sampled softmax with this many uniform
                              negatives per batch; 0 full softmax; -1
                              (default) full up to HR_SEQ_FULL_SOFTMAX_MAX
                              items, else 2048 */
  /* After each epoch, when set: HR@10 and NDCG@10 of the model so far on
   * held-out targets into m[0..1] (the eval command's target). */
  int (*validate)(void *arg, const struct hr_seq_fit *f, double *m);
  void *validate_arg;
  /* When > 0 (hr__now_s() time): after each epoch, when the epochs so far
   * project the end of training past it, every member trains fewer epochs
   * (hr_seq_fit_t.epochs), as many as end by it; when that is under half
   * of `epochs`, hr_seq_fit stops and returns HR_ETIMEOUT ("over
   * budget"). fit's selection bounds a candidate so. */
  double deadline;
  json_t *selection;       /* writer: report.json, or NULL */
  int forced;              /* writer: manifest "forced" */
} hr_seq_opts_t;

void hr_seq_opts_default(hr_seq_opts_t *o);

/* One network of an ensemble. */
typedef struct {
  float *w;                /* hr_seq_param_count floats, then the item
                              tower's token vectors and the context
                              vectors */
  hr_seq_params_t p;       /* views into w */
  float *ctx;              /* n_ctx x d context values' vectors (in w), or
                              NULL */
  double loss;
} hr_seq_member_t;

typedef struct hr_seq_fit {
  hr_seq_dims_t dims;      /* one member's network */
  int members;             /* networks, trained with seeds seed, seed+1,
                              ...; their scores add up */
  int width;               /* members * d: user vectors and item rows */
  hr_seq_member_t m[HR_SEQ_MAX_MEMBERS];
  const float *items;      /* n_items x width: [v^1 | ... | v^members] */
  const float *ctx;        /* n_ctx x width: the context rows the same
                              way, or NULL */
  size_t n_ctx;
  float *items_cat, *ctx_cat; /* the concatenations when members > 1 */
  double seconds, loss;    /* training time of all; mean last loss */
  int epochs;              /* epochs trained (fewer than asked when the
                              deadline cut them) */
} hr_seq_fit_t;

/** Train on the histories (oldest first): every user's last L+1 items
 *  give L next-item targets, full softmax over the catalogue, AdamW;
 *  o->members networks (seeds o->seed + k): side by side, one OpenBLAS
 *  thread each, when o->threads > 1, else one after the other.
 *  Deterministic for a seed and thread count. */
int hr_seq_fit(const hr_csr_t *h, const hr_seq_opts_t *o, hr_seq_fit_t *out,
               hr_error_t *err);
void hr_seq_fit_free(hr_seq_fit_t *f);
/** The long-term part of a seq model: iALS with o->lt_opts on the same
 *  histories, quietly (no index, no progress, no prior). */
int hr_seq_long_term_fit(const hr_csr_t *h, const hr_seq_opts_t *o,
                         hr_ials_t *lt, hr_error_t *err);

#define HR_SEQ_FULL_SOFTMAX_MAX 20000 /* items */

/** The item table of a seq model with a long-term part: rows [v_i | y_i]
 *  (n_items x (fit->width + lt->dim) floats into cat; v_i the members'
 *  [v^1 | ... | v^members]), y_i from lt_rows
 *  (hr_item_tokens_project) when not NULL, else lt->Y. */
void hr_seq_concat_items(const hr_seq_fit_t *fit, const struct hr_ials *lt,
                         const float *lt_rows, float *cat);

/** Buffers for batches of up to max_seqs sequences (L rows each). */
typedef struct hr_seq_work hr_seq_work_t;
/** Context features for the next hr_seq_batch_grad calls: row r's user
 *  vector gets + C[crow[r * slots + k]] for each k with a row >= 0 (C:
 *  n x d, the context values' vectors), and their gradient goes into gC
 *  (when not NULL). slots 0: none. The arrays are borrowed. */
void hr_seq_work_context(hr_seq_work_t *w, const float *C, float *gC,
                         const int32_t *crow, int slots);
hr_seq_work_t *hr_seq_work_new(const hr_seq_dims_t *dm, int max_seqs);
void hr_seq_work_free(hr_seq_work_t *w);
/** Switch w to a sampled softmax: each row's target against `neg` items
 *  drawn uniformly per batch from the generator state `seed` (0: back to
 *  the full softmax). HR_ENOMEM. */
int hr_seq_work_negatives(hr_seq_work_t *w, const hr_seq_dims_t *dm,
                          int neg, uint64_t seed);
/** Keep the items with excl[i] != 0 out of the softmax (their logits are
 *  masked); `excl` (n_items flags) is borrowed. NULL: none. HR_ENOMEM. */
int hr_seq_work_exclude(hr_seq_work_t *w, const unsigned char *excl,
                        size_t n_items);
/** The draws of the next hr_seq_batch_grad come from `seed` (the same
 *  seed: the same negatives, as a finite-difference check needs). */
void hr_seq_work_seed(hr_seq_work_t *w, uint64_t seed);
/** Mean next-item loss of one batch (rows off[0]..off[ns]-1: inputs inp,
 *  targets tgt, input gap buckets gin and request gap buckets qg, either
 *  may be NULL; mask: dropout (hr_seq_mask_floats) or NULL) and, when grad is not
 *  NULL, its gradient w.r.t. params ADDED into grad
 *  (hr_seq_param_count floats). The loss buffer is the one
 *  hr_seq_work_negatives sized, or the full softmax's, allocated on first
 *  use: NaN when that fails. */
double hr_seq_batch_grad(const hr_seq_dims_t *dm, float *params,
                         const int32_t *inp, const int32_t *tgt,
                         const int32_t *gin, const int32_t *qg,
                         const size_t *off, size_t ns, const float *mask,
                         float *grad, hr_seq_work_t *w);
/** The user vector after reading hist[0..n) (oldest first, timestamps ts
 *  or NULL; the last L count) for a request at time `now`, into u (width
 *  floats: each member's d); `buf` holds hr_seq_acts_floats(dims, L, &L,
 *  1) floats. */
void hr_seq_user_vector(const hr_seq_fit_t *f, const int32_t *hist,
                        const int64_t *ts, size_t n, int64_t now, float *buf,
                        float *u);

/** Write a trained sequential model (kind "seq", docs/model-format.md) as
 *  a new version of slot_dir: its weights, the training histories with
 *  their timestamps (the server continues them with Redis's events), a
 *  popularity prior, and index.bin when o->index; with lt (NULL: none)
 *  the long-term part (weight o->long_term, fold-in o->lt_opts). */
int hr_seq_write(const char *slot_dir, const hr_dataset_t *ds,
                 const hr_csr_t *h, const hr_seq_fit_t *f,
                 const struct hr_ials *lt, const hr_seq_opts_t *o,
                 json_t *data, json_t *metrics, char *path_out,
                 size_t path_cap, hr_error_t *err);
/** The same into an existing directory with a given name/version. */
int hr_seq_write_files(const char *dir, const hr_dataset_t *ds,
                       const hr_csr_t *h, const hr_seq_fit_t *f,
                       const struct hr_ials *lt, const hr_seq_opts_t *o,
                       const char *name, uint64_t version, hr_error_t *err);

/* ----------------------------------------------------- model selection */

/* What `fit` and `eval` train when no model is named (select.c,
 * docs/training.md "How fit chooses"). */
typedef enum {
  HR_CAND_POP = 0,
  HR_CAND_IALS,
  HR_CAND_EASE,
  HR_CAND_DAE,
  HR_CAND_SEQ
} hr_cand_kind_t;

#define HR_CAND_MAX 12

/** One candidate model and its options. */
typedef struct {
  char name[32];           /* "popularity", "ials", "seq+context", ... */
  hr_cand_kind_t kind;
  int context;             /* uses the context (prior or features) */
  int cost;                /* rank by training and serving cost, 0 the
                              cheapest, the transformer before its GRU
                              and CNN alternatives: the lower rank wins
                              within one SE */
  hr_ials_opts_t ials;     /* iALS; the seq model's long-term part */
  hr_ease_opts_t ease;
  hr_dae_opts_t dae;
  hr_seq_opts_t seq;
} hr_cand_t;

/** The candidates for a data set, from the iALS and seq options given
 *  (the defaults, or the user's): popularity, popularity with the context
 *  prior (data with context columns or user attributes), iALS, EASE, the
 *  denoising autoencoder, the seq model in its best documented shape, the
 *  same with context features, and the seq model with a CNN and with a
 *  GRU encoder. Returns the count (<= HR_CAND_MAX). */
size_t hr_cand_list(const hr_dataset_t *ds, const hr_ials_opts_t *io,
                    const hr_seq_opts_t *so, hr_cand_t *c);
/** The sequential candidates' shape with encoder enc (hr_seq_enc_t), from
 *  the options so: the transformer's four networks, or the GRU's and the
 *  CNN's two networks of 20 epochs (a CNN's window at most the sequence
 *  length); the long-term part at weight 8 for all. fit's and eval's. */
hr_seq_opts_t hr_cand_seq_shape(const hr_seq_opts_t *so, int enc);
/** "pop", "ials", "ease", "dae" or "seq" (the manifest's kind). */
const char *hr_cand_kind_name(hr_cand_kind_t k);

/** The context prior of ds over n_items items; none (n_fields 0) without
 *  context columns and user attributes, or when its table would pass 64M
 *  floats. HR_ENOMEM. */
int hr_fit_prior(const hr_dataset_t *ds, size_t n_items, hr_ctx_prior_t *cp,
                 hr_error_t *err);

/** Where hr_cand_fit_write puts the model. */
typedef struct {
  const char *slot;        /* a new version of this slot (path out) ... */
  const char *dir;         /* ... or, slot NULL, this existing directory */
  json_t *data;            /* manifest "data" (borrowed, may be NULL) */
  json_t *report;          /* report.json (borrowed, may be NULL) */
  int forced;              /* manifest "forced" */
  int index;               /* build index.bin (when the options allow) */
  double deadline;         /* seq: hr_seq_opts_t.deadline (0 none) */
  int *epochs;             /* seq: gets the epochs trained, or NULL */
  char *path;              /* slot: the new version's path */
  size_t path_cap;
} hr_cand_out_t;

/** Train candidate c on ds (histories h, context prior cp or NULL) and
 *  write it; *seconds gets the training time. Errors of the fit (HR_E*,
 *  HR_ETIMEOUT past the deadline) and of the writer. */
int hr_cand_fit_write(const hr_cand_t *c, const hr_dataset_t *ds,
                      const hr_csr_t *h, const hr_ctx_prior_t *cp,
                      const hr_cand_out_t *out, double *seconds,
                      hr_error_t *err);

/** A validation target: the user's item to find, at its time, with the
 *  context of its row (of the data set the caller names; -1 none). */
typedef struct {
  int32_t user, item;      /* dense indices */
  int64_t ts;              /* the request time (<= 0 unknown) */
  int64_t row;
} hr_target_t;

/** fit's validation holdout: every user with 3 or more distinct items
 *  gives their newest one as a target (row: its row of ds), and *train is
 *  ds without those rows (sharing ds's id maps and attributes: release it
 *  with hr_holdout_free before ds). HR_EINVAL when no user qualifies. */
int hr_holdout_last(const hr_dataset_t *ds, hr_dataset_t *train,
                    hr_target_t **tg, size_t *ntg, hr_error_t *err);
void hr_holdout_free(hr_dataset_t *train);

typedef struct {
  double ndcg, ndcg_se, hr, hr_se; /* @10, means over the targets */
  double mrr, coverage;            /* MRR@10; distinct items shown / all */
  size_t users;
} hr_score_t;

/** Load the version `vdir` as the server does and rank each target's
 *  request (user, time, context and user attributes of its row in cds,
 *  NULL: none) with hr_rec_rank: NDCG@10 and HR@10 with their standard
 *  errors; the top-10 lists (user TAB items) go to topk when not NULL.
 *  ids: the data set whose dense indices tg uses. */
int hr_score_version(const char *vdir, const hr_dataset_t *ids,
                     const hr_target_t *tg, size_t ntg,
                     const hr_dataset_t *cds, FILE *topk, hr_score_t *res,
                     hr_error_t *err);

enum { HR_CAND_SCORED = 0, HR_CAND_OVER_BUDGET, HR_CAND_FAILED,
       HR_CAND_SKIPPED };

typedef struct {
  hr_cand_t cand;
  int state;               /* HR_CAND_SCORED, ... */
  char note[256];          /* why it was not scored */
  double seconds;          /* training time */
  hr_score_t score;
} hr_cand_result_t;

typedef struct {
  const hr_ials_opts_t *ials;
  const hr_seq_opts_t *seq;
  double t0, budget_s;     /* the run began at t0 (CLOCK_MONOTONIC
                              seconds; 0: when hr_select is called) and
                              must end within budget_s, the winner's refit
                              included */
  const char *holdout;     /* the holdout's name ("last-item", ...) */
  const char *holdout_desc;
} hr_select_opts_t;

typedef struct {
  hr_cand_result_t r[HR_CAND_MAX];
  size_t n;
  long winner;             /* index into r, -1 none */
  char why[512];
  json_t *report;          /* report.json (owned) */
} hr_selection_t;

/** Train every candidate on train, score it on the targets (context from
 *  cds), and choose; sel->report describes it all. A candidate that fails
 *  or would overrun the budget is reported, not fatal; HR_EINTERNAL when
 *  none could be scored, HR_ENOMEM / HR_EIO. Free with hr_selection_free
 *  (also after an error). */
int hr_select(const hr_dataset_t *train, const hr_target_t *tg, size_t ntg,
              const hr_dataset_t *cds, const hr_select_opts_t *o,
              hr_selection_t *sel, hr_error_t *err);
void hr_selection_free(hr_selection_t *sel);

/* ------------------------------------------------------------------ fit */

#define HR_FIT_MAX_DATA 16 /* --data files in one fit */
#define HR_FIT_BUDGET_DEFAULT 600.0 /* seconds: ml-100k's selection and
                                       refit on 2 cores */

/** What `hyperrec-train fit` was asked (main.c fills it from argv). */
typedef struct {
  const char *data[HR_FIT_MAX_DATA]; /* --data PATH, each */
  size_t n_data;
  const char *format;          /* --format: "csv", "movielens" or NULL
                                  (each file by its extension) */
  const char *redis, *stream;  /* --from-redis HOST:PORT, its stream key */
  int since_set;               /* --since: rows older than since are */
  int64_t since;               /* left out (unix seconds) */
  const char *items, *users;   /* --items, --users */
  const char *out;             /* the slot, MODELS/NAME */
  int keep;                    /* versions kept (0 all) */
  int min_rating_set;
  double min_rating;
  const char *kind;            /* NULL: choose; "pop", "ials", "ease",
                                  "dae" or "seq" */
  hr_ials_opts_t ials;         /* iALS options (and seq's long-term part) */
  hr_ease_opts_t ease;         /* EASE options */
  hr_dae_opts_t dae;           /* DAE options */
  hr_seq_opts_t seq;           /* seq options */
  double budget_s;             /* the whole run's bound when choosing */
  int force;                   /* manifest "forced": past the load gate */
  size_t report_anomalies;     /* list this many in report.json (0: no) */
  double drop_anomalous;       /* train without this share of users, the
                                  most anomalous (0: none) */
} hr_fit_opts_t;

void hr_fit_opts_default(hr_fit_opts_t *o);
/** Read, choose (unless o->kind), train on all the data, publish: the new
 *  version's path into path. */
int hr_fit_run(const hr_fit_opts_t *o, char *path, size_t cap,
               hr_error_t *err);

/* ---------------------------------------------------------- evaluation */

typedef struct {
  double hr, ndcg, mrr, coverage;
  size_t users, n_items;
  double train_seconds;
} hr_eval_result_t;

/** Accumulates PROTOCOL.md section 6 metrics: add one user's top-k (dense
 *  item indices, best first) and relevant item, in ascending user order. */
typedef struct {
  int k;
  size_t n_items, users;
  double hr, ndcg, mrr;
  unsigned char *covered;   /* n_items flags */
  size_t n_covered;
} hr_metrics_t;

int hr_metrics_init(hr_metrics_t *mt, int k, size_t n_items);
void hr_metrics_add(hr_metrics_t *mt, const int32_t *topk, size_t n,
                    int32_t target);
/** Averages into res (users, n_items, hr, ndcg, mrr, coverage). */
void hr_metrics_result(const hr_metrics_t *mt, hr_eval_result_t *res);
void hr_metrics_free(hr_metrics_t *mt);

/** Top-k of scores (n entries) skipping excluded[i] != 0: score descending,
 *  ties by ascending index (hr_ranker_topk, the server's selection, with
 *  int32 indices out). Returns the count written to out (<= k; 0 when k
 *  is over 64 and its buffer cannot be allocated). */
size_t hr_topk(const float *scores, const unsigned char *excluded, size_t n,
               int k, int32_t *out);

/** Protocol `loo` on split_dir (train.tsv, valid.tsv, test.tsv, meta.json):
 *  target 0 = valid (fit on train), 1 = test (fit on train+valid). Writes
 *  the judge's TSV to topk_out when not NULL. */
int hr_eval_loo(const char *split_dir, int target_test,
                const hr_ials_opts_t *o, const char *topk_out,
                hr_eval_result_t *res, hr_error_t *err);

/** Protocol `loo` with fit's choice: the candidates are trained on the
 *  split's train and scored on valid (hr_select with opts so); the winner
 *  is then trained on train (target valid) or train+valid (test) and
 *  scored on the target by the server's pipeline. sel gets the choice
 *  (hr_selection_free it, also after an error). */
int hr_eval_loo_select(const char *split_dir, int target_test,
                       const hr_select_opts_t *so, const char *topk_out,
                       hr_eval_result_t *res, hr_selection_t *sel,
                       hr_error_t *err);
/** Protocol `loo` for one candidate, as fit would train and serve it:
 *  trained on train (+ valid for test), written, loaded, ranked by the
 *  server's pipeline. */
int hr_eval_loo_cand(const char *split_dir, int target_test,
                     const hr_cand_t *c, const char *topk_out,
                     hr_eval_result_t *res, hr_error_t *err);

/** From now on the loo evaluations count only the targets that come at
 *  least `seconds` after the user's newest history item (0: all): the
 *  next visit rather than the next rating of a session. */
void hr_eval_set_min_gap(int64_t seconds);

/** A target of protocol `loo`: the user's held-out item. */
typedef struct {
  long uid;     /* numeric user id, for the judge's order */
  long user;    /* dense (data set) index */
  long item;    /* dense item index */
  int64_t ts;   /* the target row's timestamp (the request time) */
} hr_loo_target_t;

/** The split's training rows (train, + valid for the test target) over
 *  the catalogue 1..n_items of meta.json (dense index = id - 1) into ds,
 *  and the target file's rows (*tg, ascending user id; free()). On
 *  failure ds may hold data: free it (hr_dataset_free). */
int hr_loo_load(const char *split_dir, int target_test, hr_dataset_t *ds,
                hr_loo_target_t **tg, size_t *ntg, size_t *n_items,
                hr_error_t *err);

/** The sequential model (+ the long-term part) fitted on ds's histories
 *  and scored on the targets by the trainer's copy of the network; with a
 *  context prior cp (NULL: none) the fit learns its values' vectors from
 *  each history entry's context, and each target's user vector gets its
 *  tctx rows (ntg x cp->n_fields). tokens: the item tower, or NULL. */
int hr_eval_seq_targets(hr_dataset_t *ds, const hr_loo_target_t *tg,
                        size_t ntg, size_t n_items, const hr_seq_opts_t *o,
                        const hr_item_tokens_t *tokens,
                        const hr_ctx_prior_t *cp, const int32_t *tctx,
                        const char *topk_out, hr_eval_result_t *res,
                        hr_error_t *err);

/** Protocol `loo` with the sequential model (hr_seq_fit), scored by its
 *  shared forward pass. */
int hr_eval_loo_seq(const char *split_dir, int target_test,
                    const hr_seq_opts_t *o, const char *items_path,
                    const char *topk_out, hr_eval_result_t *res,
                    hr_error_t *err);

/* ----------------------------------------------------------- generator */

typedef struct {
  size_t users, items, events;
  uint64_t seed;
  double context_effect;   /* scales every context boost of the category
                              choice (0 or 1: as designed) */
  double bots;             /* bot accounts, a share of users (0: none):
                              random items, one item hammered, a script
                              copied across accounts; bots.csv names them */
} hr_gen_opts_t;

/** Synthetic data with context effects into dir (created if missing):
 *  events.csv, items.csv, contexts.csv. Deterministic for a seed. */
int hr_gen_write(const char *dir, const hr_gen_opts_t *o, hr_error_t *err);

/* ----------------------------------------------------------- vectors */

/** Read a VEC1 file (../shared/bench/README.md): a new n x dim row-major
 *  array (free()), or NULL with err set (HR_EIO, HR_EFORMAT, HR_ENOMEM).
 *  The header must match the file size exactly. */
float *hr_vec_read(const char *path, size_t *n, int *dim, hr_error_t *err);

/* ------------------------------------------------------- index check */

typedef struct {
  size_t users;      /* users measured */
  double recall;     /* |index top-n ∩ exact top-n| / |exact top-n| */
  double ann_qps;    /* index searches per second, one thread */
  double exact_qps;  /* brute-force searches per second, one thread */
  double retrieve_recall; /* hr_model_retrieve (index + norm-bound pass) */
  double retrieve_qps;
  double scanned_frac;    /* share of the catalogue the norm pass scored */
} hr_check_result_t;

/** Recall@n of the version `dir`'s index for `users` of its known users
 *  (evenly spaced), with their real vectors and their training history
 *  excluded, against the exact top-n; search beam `ef`. 0 or HR_E*. */
int hr_check_index(const char *dir, size_t users, size_t n, int ef,
                   hr_check_result_t *res, hr_error_t *err);

#endif
