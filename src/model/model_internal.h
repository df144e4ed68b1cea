/* model_internal.h -- the model struct, shared by load.c and forward.c only.
 * Everything else goes through include/hr/model.h. */
#ifndef HR_MODEL_INTERNAL_H
#define HR_MODEL_INTERNAL_H

#include "hr/model.h"
#include "hr/seq.h"

/* model.bin layout constants (docs/model-format.md). */
#define HR__MB_HEADER 64
#define HR__MB_ENTRY 128
#define HR__MB_NAME 48
#define HR__MB_ALIGN 64
#define HR__MB_MAX_TENSORS 4096

/* One attribute column of items.tsv (attrs.c): its values and, per value,
 * the ascending items that have it: items[ptr[v] .. ptr[v+1]). */
typedef struct {
  char *name;
  hr_idmap_t *values;
  size_t *ptr;            /* n_values + 1 */
  uint32_t *items;
} hr__attr_col_t;

struct hr_model {
  char *name;
  uint64_t version;
  char *kind;
  int dim;
  int ease;                /* kind "ease": dim == n_items, the user vector
                              is the indicator of the user's items, ... */
  float ease_decay;        /* ... weighted decay^k for the k-th newest */
  /* kind "dae": the encoder (n_items x dim) and its bias (dim); the user
   * vector is tanh(enc_bias + x enc), x the user's items weighted
   * ease_decay^k by recency, at unit length */
  const float *dae_enc, *dae_enc_bias;
  size_t n_items, n_users;
  uint64_t size_bytes;
  json_t *manifest;
  json_t *report;          /* report.json, or NULL */

  void *map;              /* model.bin, mmap'd read-only */
  size_t map_len;
  hr_tensor_t *tensors;   /* views into map; names point into map too */
  size_t n_tensors;

  hr_idmap_t *items, *users;
  hr__attr_col_t *attrs;  /* item attribute columns (may be none) */
  size_t n_attrs;
  hr_ann_t *ann;          /* index.bin, NULL when the version has none */
  /* Items by decreasing norm (with their norms), for the exact norm-bound
   * pass of hr_model_retrieve; built at load when there is an index. */
  uint32_t *by_norm;
  float *norm_sorted;
  float *head;            /* the first n_head items of by_norm, contiguous */
  size_t n_head;

  /* every kind */
  const float *item_emb;  /* n_items x dim */
  const float *item_prior;/* n_items */
  const uint64_t *hist_ptr;   /* n_users + 1 */
  const int32_t *hist_items;  /* hist_ptr[n_users] */

  /* kind "ials" */
  hr_ials_params_t ials;
  const float *yty;       /* dim x dim */
  const float *user_emb;  /* n_users x dim */

  /* context prior (manifest "context_prior"; n_cfields 0 without) */
  size_t n_cfields;
  char *cfield[HR_MODEL_MAX_CFIELDS];
  hr_idmap_t *cvals[HR_MODEL_MAX_CFIELDS];
  size_t coff[HR_MODEL_MAX_CFIELDS];
  const float *pop_log;   /* n_items */
  const float *ctx_lift;  /* n_values x n_items */

  /* kind "seq" */
  int lt_dim;             /* long-term (iALS) part: f columns after the
                             sequential ones in item_emb (0: none) */
  float lt_weight;        /* its weight in the user vector */
  const float *lt_item;   /* n_items x lt_dim: iALS Y (the fold-in's) */
  hr_seq_dims_t seq;      /* one member's network */
  int seq_members;        /* networks whose scores add up; member k's
                             item vectors are columns k*d.. of item_emb */
  int seq_width;          /* seq_members * seq.d */
  hr_seq_params_t seqp[HR_SEQ_MAX_MEMBERS]; /* views into the map (read
                                               only) */
  const int64_t *hist_ts; /* hist_ptr[n_users]: unix seconds, -1 unknown */
  const float *seq_ctx;   /* NULL, or a vector (seq_width: each member's d)
                             per context prior row: added for the
                             request's context values */
  /* Each item's inner products with the request's possible terms (kind seq
   * with an index): n_items rows of req_cols floats, the gap buckets'
   * embeddings (all members) then seq_ctx's rows (hr_model_request_table). */
  float *req_proj;
  size_t req_cols;
};

/* Build m->req_proj (forward.c). 0 or HR_ENOMEM. */
int hr__model_request_table(hr_model_t *m);

/* hr_model_open over files held in memory instead of a directory (the fuzz
 * harness: the same checks without a system call per file). `dir` still
 * names the version ("<...>/<name>/<version>"); a file not among `files`
 * is missing. The bytes are copied where the model keeps them. */
typedef struct {
  const char *name;
  const void *data;
  size_t len;
} hr__model_file_t;
hr_model_t *hr__model_open_mem(const char *dir, const hr__model_file_t *files,
                               size_t n_files, hr_error_t *err);

/* Read the attribute columns of items.tsv (after its ids were parsed);
 * `where` prefixes error messages. 0, HR_EFORMAT or HR_ENOMEM. */
int hr__model_parse_attrs(hr_model_t *m, const char *text, size_t size,
                          const char *where, hr_error_t *err);
void hr__model_attrs_free(hr_model_t *m);

/* Element size of a known dtype, 0 for an unknown one. */
size_t hr__model_dtype_size(uint32_t dtype);

#endif
