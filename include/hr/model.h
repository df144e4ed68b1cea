/* model.h -- one trained model version: file format, loader, forward pass.
 *
 * A version directory (models/<name>/<version>/) holds manifest.json,
 * model.bin (a tensor table followed by 64-byte aligned tensors, mmap'd
 * read-only), items.tsv and users.tsv (external id <-> dense index). The
 * format is specified in docs/model-format.md; tensors are found by name, so
 * later model kinds add tensors without breaking older readers.
 *
 * The same forward code serves the trainer's evaluation and the server, so
 * offline metrics describe what is served. A loaded hr_model_t is immutable:
 * any number of threads may call the const functions at once. The loader
 * (hr_model_open) does blocking I/O and checksums every file: never call it
 * on a request thread. Scoring all items costs one sgemv over n_items x dim.
 */
#ifndef HR_MODEL_H
#define HR_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "hr/ann.h"
#include "hr/err.h"
#include "hr/ranker.h"

#define HR_MODEL_FORMAT_VERSION 1 /* manifest "format_version" and model.bin */
#define HR_MODEL_MAGIC "HRMODEL1" /* first 8 bytes of model.bin */
#define HR_MODEL_MAX_DIM 1024     /* largest manifest "dim" accepted */
#define HR_MODEL_MAX_EASE_DIM 5000 /* ... for kind "ease" (dim = n_items) */

typedef struct hr_model hr_model_t;

typedef enum {
  HR_DT_F32 = 1,
  HR_DT_I32 = 2,
  HR_DT_U64 = 3,
  HR_DT_I64 = 4
} hr_dtype_t;

/** A tensor view into a loaded model. Borrowed: valid while the model is. */
typedef struct {
  const char *name;
  hr_dtype_t dtype;
  int ndim;             /* 1..4 */
  uint64_t dims[4];     /* unused dims are 1 */
  const void *data;     /* 64-byte aligned */
  uint64_t nbytes;
} hr_tensor_t;

/* ----------------------------------------------------------- lifecycle */

/** Load and validate the version directory `dir`: manifest format version,
 *  the CRC-32 of every file listed in the manifest, the tensor table (bounds,
 *  alignment, dtype, shapes consistent with the manifest and the id tables).
 *  Returns a new model (free with hr_model_free) or NULL with `err` set
 *  (HR_EIO, HR_EFORMAT, HR_ECHECKSUM, HR_EVERSION, HR_ENOMEM); the reason
 *  names the file at fault. `name` and `version` are taken from the path. */
hr_model_t *hr_model_open(const char *dir, hr_error_t *err);

/** Release a model. NULL is a no-op. */
void hr_model_free(hr_model_t *m);

/* ------------------------------------------------------- introspection */

const char *hr_model_name(const hr_model_t *m);   /* slot name, e.g. "default" */
uint64_t hr_model_version(const hr_model_t *m);
const char *hr_model_kind(const hr_model_t *m);   /* manifest "kind", e.g. "ials" */
int hr_model_dim(const hr_model_t *m);
size_t hr_model_n_items(const hr_model_t *m);
size_t hr_model_n_users(const hr_model_t *m);
/** Total bytes of the version's files (for metrics). */
uint64_t hr_model_size_bytes(const hr_model_t *m);
/** The parsed manifest. Borrowed: valid while the model is. */
const json_t *hr_model_manifest(const hr_model_t *m);
/** The version's report.json (how fit chose it), parsed, or NULL when it
 *  has none. Borrowed. */
const json_t *hr_model_report(const hr_model_t *m);
/** 1 and the report's validation NDCG@10 (in [0,1]) and holdout name
 *  (borrowed) when the report carries them, else 0. */
int hr_model_validation(const hr_model_t *m, double *ndcg,
                        const char **holdout);
/** 1 when the manifest says "forced": true (fit --force): the registry's
 *  quality gate lets the version through. */
int hr_model_forced(const hr_model_t *m);
/** The version's ANN index over its item embeddings (index.bin), or NULL
 *  when it has none. Borrowed: valid while the model is. Search it with
 *  hr_model_ann_search. */
const hr_ann_t *hr_model_ann(const hr_model_t *m);

/** Candidates for user vector u from the index: the k items of largest
 *  <u, item> (approximately), best first, never one of `excl` (sorted,
 *  unique), and only items set in the filter bitmap `allow` (n_allow bits
 *  set; NULL: no filter, see hr_model_filter and hr_ann_search_filter). `s` is the calling thread's scratch for this index. Returns the
 *  number found (0 when the model has no index). Thread-safe. */
size_t hr_model_ann_search(const hr_model_t *m, hr_ann_scratch_t *s,
                           const float *u, size_t k, int ef,
                           const uint32_t *excl, size_t n_excl,
                           const uint64_t *allow, size_t n_allow,
                           uint32_t *ids);
/** The registry's last check before a version serves: three canned
 *  requests (the first stored user, a newcomer with one event, nobody) are
 *  embedded and score every item, and the index (if any) answers with
 *  real item ids; every number must be finite. 0, or HR_EFORMAT with the
 *  reason (HR_ENOMEM). */
int hr_model_smoke_test(const hr_model_t *m, hr_error_t *err);
/** Find a tensor by name; 0 and *out filled, or HR_ENOTFOUND. */
int hr_model_tensor(const hr_model_t *m, const char *name, hr_tensor_t *out);

/* ------------------------------------------------------------ id tables */

/** Dense index of an external item id, or -1 if unknown. O(1) average. */
long hr_model_item_index(const hr_model_t *m, const char *item_id);
/** External id of a dense item index (0 <= idx < n_items). Borrowed. */
const char *hr_model_item_id(const hr_model_t *m, size_t idx);
/** Dense index of an external user id, or -1 if unknown. */
long hr_model_user_index(const hr_model_t *m, const char *user_id);

/* ------------------------------------------------------ item attributes */

#define HR_MODEL_MAX_ATTRS 64        /* attribute columns in items.tsv */
#define HR_MODEL_MAX_ATTR_NAME 48    /* bytes in an attribute name (so that
                                        "filters.<name>[255]" fits an error
                                        field) */
#define HR_MODEL_MAX_ATTR_VALUE 256  /* bytes in one attribute value */

/* items.tsv may carry attribute columns after the id; a cell holds zero or
 * more values separated by '|' (docs/model-format.md). */
size_t hr_model_n_attrs(const hr_model_t *m);
/** Name of attribute column `col`, or NULL past the end. Borrowed. */
const char *hr_model_attr_name(const hr_model_t *m, size_t col);
/** The fields of the version's context prior ("location", "companion",
 *  "user.age", ...; 0 without one) and whether a seq version adds learned
 *  vectors for them (context features). Borrowed. */
size_t hr_model_n_context_fields(const hr_model_t *m);
const char *hr_model_context_field(const hr_model_t *m, size_t f);
int hr_model_context_features(const hr_model_t *m);
/** Column of the attribute `name`, or -1. */
long hr_model_attr_find(const hr_model_t *m, const char *name);
/** The items whose column `col` holds `value`: ascending dense indices,
 *  *n of them (0 and NULL when no item has it). Borrowed. */
const uint32_t *hr_model_attr_items(const hr_model_t *m, size_t col,
                                    const char *value, size_t *n);

/** One filter term: the item's attribute `attr` holds any of `values`. */
typedef struct {
  const char *attr;
  const char *const *values;
  size_t n_values;
} hr_filter_term_t;

/** The items passing every term (AND of terms, OR of a term's values) as
 *  a bitmap into `allow` (ceil(n_items/64) words, bit i%64 of word i/64 for
 *  item i), with the count in *n_allow. No terms: every item. A value no
 *  item has matches nothing. Returns 0, HR_EBADFIELD (field
 *  "filters.<attr>") when the model has no such attribute, or HR_ENOMEM.
 *  Thread-safe. */
int hr_model_filter(const hr_model_t *m, const hr_filter_term_t *terms,
                    size_t n_terms, uint64_t *allow, size_t *n_allow,
                    hr_error_t *err);

/** Scratch for hr_ials_solve; zero-initialise, grows on demand. One per
 *  thread. */
typedef struct {
  float *g;      /* gathered rows */
  size_t g_cap;  /* floats */
  float *a;      /* dim*dim */
  double *l;     /* dim*dim */
  double *b;     /* dim */
  int dim;
} hr_ials_work_t;

/* --------------------------------------------------------- forward pass */

/** The user's recent history as dense item indices, NEWEST FIRST (the order
 *  of the Redis list). Indices must be valid; the caller drops unknown ids. */
typedef struct {
  const long *items;
  size_t n;
  const int64_t *ts;  /* the items' times (unix seconds; <= 0 unknown), or
                         NULL: all unknown. Used by kind "seq". */
  int64_t now;        /* the request's time (unix seconds, <= 0 unknown);
                         kind "seq" */
  /* The request's context values by the names of the model's context
   * prior ("location", "mood", ...; NULL values skipped): a seq model with
   * context features adds their vectors. n_ctx 0: none. */
  const char *const *ctx_names;
  const char *const *ctx_vals;
  size_t n_ctx;
} hr_history_t;

/** Compute the user vector (dim floats into `out`).
 *  user_idx: the user's dense index or -1 for an unknown/anonymous user.
 *  recent: history newer than the model (may be NULL/empty).
 *  The model combines what it learned about a known user with `recent` (for
 *  iALS: a recency-weighted fold-in over the user's training history plus
 *  `recent`), so an event changes the next answer without retraining.
 *  A known user with no `recent` gets the stored learned vector (the same
 *  solution, without the solve). For kind "seq": the transformer over the
 *  newest L distinct items of `recent` then the stored history, with the
 *  time gaps between them and to `now` (hr_seq_embed).
 *  With no information at all the vector is all zeros and
 *  hr_model_score_items yields the popularity prior alone.
 *  Returns 0, or HR_EINVAL (bad index) / HR_ENOMEM. Thread-safe. */
int hr_model_user_vector(const hr_model_t *m, long user_idx,
                         const hr_history_t *recent, float *out);

/** Scratch for the forward pass, owned by one thread and reused across
 *  calls: it grows to the largest request seen and is never shrunk, so a
 *  steady stream of requests allocates nothing. Zero-initialise; release
 *  with hr_model_work_free. */
typedef struct {
  void *buf;
  size_t cap;              /* bytes */
  hr_ials_work_t ials;
} hr_model_work_t;

void hr_model_work_free(hr_model_work_t *w);

/** hr_model_user_vector in two steps, so that the costly part can be kept
 *  between requests. hr_model_user_base computes what depends on the user
 *  and the history alone (items and their times; dim floats into `base`):
 *  for kind "seq" each member's transformer state and the weighted
 *  long-term part, for "ials" the whole vector. hr_model_user_finish adds
 *  what depends on the request (kind "seq": the gap from the newest item
 *  to recent->now and the context values' vectors) and writes the user
 *  vector to `out` (which may be `base`). base then finish gives exactly
 *  hr_model_user_vector's floats. Same errors; finish cannot fail. */
int hr_model_user_base(const hr_model_t *m, long user_idx,
                       const hr_history_t *recent, hr_model_work_t *w,
                       float *base);
void hr_model_user_finish(const hr_model_t *m, long user_idx,
                          const hr_history_t *recent, const float *base,
                          float *out);
/** 1 when hr_model_user_finish adds anything to the base (kind "seq": the
 *  request's time gap, its context values), 0 when the user vector is the
 *  base itself (kind "ials"): every request of a history then scores the
 *  items alike. */
int hr_model_request_terms(const hr_model_t *m);

/** For a seq version with an index: each item's inner products with the
 *  terms a request may add to the user vector (hr_model_user_finish), one
 *  row of *cols floats per item (the gap buckets' embeddings, then the
 *  context rows), built at load; NULL (and *cols 0) for other versions.
 *  With hr_model_request_cols, a request's score of item i is the score of
 *  the base vector plus row i's entries at the request's columns, up to
 *  float rounding: a cheap first pass over many candidates. Borrowed. */
const float *hr_model_request_table(const hr_model_t *m, size_t *cols);
/** The request's columns of that table into cols (at most 1 +
 *  recent->n_ctx): none for a user without any history. */
size_t hr_model_request_cols(const hr_model_t *m, long user_idx,
                             const hr_history_t *recent, uint32_t *cols);

/** Score every item for a user vector: out[i] = <u, item_i> + prior_i, where
 *  prior_i is a small popularity prior that breaks ties in favour of popular
 *  items (0 when the model has none). `out` holds n_items floats.
 *  Thread-safe; one sgemv. */
void hr_model_score_items(const hr_model_t *m, const float *u, float *out);

/** The same score for the n items `ids` only (candidates from the index):
 *  out[j] = <u, item_ids[j]> + prior. Ids must be < n_items. Thread-safe. */
void hr_model_score_subset(const hr_model_t *m, const float *u,
                           const uint32_t *ids, size_t n, float *out);

/** Retrieval for user vector u with an index: the k items of largest
 *  <u, item>, best first into top[0..k) (score: the inner product, no
 *  prior), none in `excl` and all in the filter `allow` (NULL: none; as in
 *  hr_model_ann_search), EXACT. The index supplies k candidates (beam
 *  `ef`), whose k-th inner product bounds what any other item must reach;
 *  the items are then visited in decreasing norm while |u| * |item| can
 *  still beat that bound (Cauchy-Schwarz), so the result is exact, and
 *  cheap when norms are skewed (factor models: a few percent of the
 *  catalogue). `skip` is a bitmap of ceil(n_items/64) words in which
 *  exactly the items of `excl` are set; it is used as scratch and is the
 *  same on return. `ids` is scratch of k entries. *scanned (may be NULL)
 *  gets the number of items the norm pass scored; `s` is the thread's
 *  scratch. ef <= 0 skips the index: the norm pass alone, from an empty
 *  top k -- for filters, which the graph serves poorly when they correlate
 *  with u, and which the pass applies for free. Returns the count, 0
 *  without an index. Allocates nothing. Thread-safe. */
size_t hr_model_retrieve(const hr_model_t *m, hr_ann_scratch_t *s,
                         const float *u, size_t k, int ef,
                         const uint32_t *excl, size_t n_excl, uint64_t *skip,
                         const uint64_t *allow, size_t n_allow,
                         uint32_t *ids, hr_scored_t *top, size_t *scanned);

/* -------------------------------------------------------- explanations */

/** One context feature's part in an item's score. */
typedef struct {
  const char *feature;  /* e.g. "since_last_event" (static string) */
  char value[HR_MODEL_MAX_ATTR_VALUE + 1]; /* its value, e.g. "1-2 h" */
  float effect;         /* score(item) - score(item | the feature unknown) */
} hr_ctx_effect_t;

/** The context features the model used for this request and how each
 *  moved item's score (against the neutral context: the feature unknown),
 *  largest |effect| first; at most `max` into out, returns the count.
 *  Kind "seq": the time from the newest history item (recent's first, else
 *  the stored history's last) to recent->now, and, for a version with
 *  context features and a user with a history, each of recent's context
 *  values the model knows (context fields, context.extra names and user.*
 *  attributes: its learned vector against the item).
 *  Kind "ials" uses no context: 0. Thread-safe. */
size_t hr_model_explain_context(const hr_model_t *m, long user_idx,
                                const hr_history_t *recent, size_t item,
                                hr_ctx_effect_t *out, size_t max);

/* ------------------------------------------------------ context prior */

#define HR_MODEL_MAX_CFIELDS 20 /* fields of a "context_prior" */

/** Scores for a user the model knows nothing about, in the context given
 *  as n (name, value) pairs (NULL value: unknown): out[i] = the item's log
 *  popularity + the lift of every known value the model's context prior
 *  has (docs/model-format.md). Returns how many values applied; 0 (out
 *  untouched) when the model has no context prior or none applies. With
 *  out NULL it only counts. Thread-safe. */
size_t hr_model_context_scores(const hr_model_t *m, const char *const *names,
                               const char *const *vals, size_t n, float *out);
/** How the context prior's values among names/vals (NULL values skipped)
 *  moved item's score: each known value's lift, largest |effect| first, at
 *  most `max` into out; returns the count. Thread-safe. */
size_t hr_model_explain_prior(const hr_model_t *m, const char *const *names,
                              const char *const *vals, size_t n, size_t item,
                              hr_ctx_effect_t *out, size_t max);

/** The item vectors (n_items x dim, row-major). Borrowed. */
const float *hr_model_item_vectors(const hr_model_t *m);

/** The popularity prior alone (n_items floats; zeros when the model has
 *  none): the ranking for a user the model knows nothing about. */
const float *hr_model_item_prior(const hr_model_t *m);

/* ============================================================ additions
 * Below: the writer, the id map and the iALS kernels, shared by the loader,
 * the server's forward pass and the trainer (src/train), so that what the
 * trainer learns and evaluates is exactly what the server computes. */

/* -------------------------------------------------------------- writer */

/** Everything a version directory holds. All pointers borrowed for the call. */
typedef struct {
  const char *kind;                 /* manifest "kind", e.g. "ials" */
  int dim;
  size_t n_items, n_users;
  const char *const *item_ids;      /* n_items ids: no TAB, CR or LF, unique */
  const char *item_attr_header;     /* NULL, or TAB-joined attribute names */
  const char *const *item_attrs;    /* NULL, or n_items TAB-joined values */
  const char *const *user_ids;      /* n_users ids, same rules */
  const hr_tensor_t *tensors;       /* .nbytes is computed from dims/dtype */
  size_t n_tensors;
  json_t *params;                   /* manifest "params" (copied), required */
  json_t *data;                     /* manifest "data" (copied), may be NULL */
  json_t *metrics;                  /* manifest "metrics" (copied), NULL ok */
  /* When not NULL, an ANN index over the "item_emb" tensor is built with
   * these parameters and written as index.bin (docs/ann.md). */
  const hr_ann_params_t *ann;
  json_t *context_prior;            /* manifest "context_prior", NULL ok */
  json_t *report;                   /* NULL, or written as report.json
                                       (fit's model selection) */
  int forced;                       /* manifest "forced": true (the
                                       registry's quality gate passes it) */
} hr_model_spec_t;

/** Write a new version of the slot `slot_dir` (MODELS/NAME, created if
 *  missing) atomically: files go to slot_dir/.tmp-<version>-<pid>/, each is
 *  fsync'd, then the directory, which is renamed to slot_dir/<version>; the
 *  slot directory is fsync'd last. version = max(largest existing numeric
 *  version + 1, unix seconds now); when a concurrent writer took it first the
 *  next number is tried. The final path goes to path_out (NUL-terminated).
 *  Returns 0, HR_EINVAL (spec), HR_EIO (with the path and errno text in
 *  err), HR_ENOMEM. Not thread-safe for the same slot within one process. */
/** Keep the `keep` newest version directories of a slot and remove the
 *  others (each renamed out of sight first, so that a server never sees a
 *  half-removed version); keep <= 0 keeps all. *removed: how many went.
 *  A server still serving a removed version keeps its mapping. */
int hr_model_prune(const char *slot_dir, int keep, int *removed,
                   hr_error_t *err);
int hr_model_write(const char *slot_dir, const hr_model_spec_t *spec,
                   char *path_out, size_t path_cap, hr_error_t *err);

/** The same files written into an existing directory `dir`, without the
 *  rename dance (tests, tools). name/version go into the manifest. */
int hr_model_write_files(const char *dir, const hr_model_spec_t *spec,
                         const char *name, uint64_t version,
                         hr_error_t *err);

/* -------------------------------------------------------------- id map */

/** String -> dense index (0, 1, 2, ... in insertion order), open addressing
 *  with FNV-1a hashes; owns copies of the strings. Reads may run
 *  concurrently; an add must not. */
typedef struct hr_idmap hr_idmap_t;

/** MovieLens's age groups (ML-1M): under_18, 18-24, 25-34, 35-44, 45-49,
 *  50-55, 56+. The trainer stores a numeric "age" user attribute as its
 *  group, and the server maps a request's integer age the same way. */
const char *hr_age_group(long long age);

hr_idmap_t *hr_idmap_new(size_t cap_hint);  /* NULL on OOM */
void hr_idmap_free(hr_idmap_t *m);          /* NULL is a no-op */
/** Index of s[0..len), or -1. */
long hr_idmap_find(const hr_idmap_t *m, const char *s, size_t len);
/** Index of s, adding it when new; HR_ENOMEM. *added (may be NULL) tells. */
long hr_idmap_add(hr_idmap_t *m, const char *s, size_t len, int *added);
size_t hr_idmap_size(const hr_idmap_t *m);
/** The string of an index (NUL-terminated). Borrowed: valid until the next
 *  hr_idmap_add or hr_idmap_free. */
const char *hr_idmap_str(const hr_idmap_t *m, size_t idx);

/* --------------------------------------------------------- iALS kernels */

/** Fold-in hyper-parameters (manifest "params"). A user's items, newest
 *  first, get confidence c_j = 1 + alpha * (floor + (1-floor) * decay^j);
 *  only the `cap` newest count (0 = all). */
typedef struct {
  float alpha;
  float reg;
  float decay;
  float floor;
  int cap;
} hr_ials_params_t;


void hr_ials_work_free(hr_ials_work_t *w);

/** conf[j] for j < n as above (n newest-first positions). */
void hr_ials_confidence(const hr_ials_params_t *p, size_t n, float *conf);

/** One iALS row: solve (G + sum_j (c_j-1) y_j y_j^T + reg I) x = sum_j c_j y_j
 *  where y_j = Y[idx[j]] (rows of `dim` floats) and G = Y^T Y (dim*dim).
 *  Cholesky in double. n may be 0 (x = 0). Returns 0, HR_ENOMEM, or
 *  HR_EINTERNAL when the system is not positive definite (x zeroed). */
int hr_ials_solve(hr_ials_work_t *w, int dim, const float *gram, float reg,
                  const float *Y, const int32_t *idx, const float *conf,
                  size_t n, float *x);

/** The fold-in parameters a loaded iALS model uses (from its manifest). */
const hr_ials_params_t *hr_model_ials_params(const hr_model_t *m);

/** The user's stored training history (dense item indices, OLDEST first);
 *  *n = 0 for an unknown index. Borrowed. */
const int32_t *hr_model_user_history(const hr_model_t *m, long user_idx,
                                     size_t *n);

#endif
