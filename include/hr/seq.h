/* seq.h -- the sequential two-tower network (model kind "seq"): an encoder
 * over the user's recent items (a causal transformer, a GRU, or a
 * Caser-style convolution) whose last output is the user vector, scored
 * against item vectors by inner product.
 *
 * The forward pass here is the one both the server (one sequence per
 * request) and hyperrec-train (batches of sequences, with the activations
 * it keeps for the backward pass in src/train/) run. Parameters live in one
 * flat float array (hr_seq_bind gives named views), so the optimiser sees a
 * single vector and model.bin stores named slices of it.
 *
 * A batch is several sequences laid end to end: rows off[s] .. off[s+1]-1
 * belong to sequence s, row t of a sequence holds its t-th item (oldest
 * first), with position embedding t for the transformer. Every encoder is
 * causal within a sequence and never crosses sequences. Pure functions:
 * thread-safe on distinct activation buffers. */
#ifndef HR_SEQ_H
#define HR_SEQ_H

#include <stddef.h>
#include <stdint.h>

#define HR_SEQ_MAX_BLOCKS 4
#define HR_SEQ_MAX_LEN 1024 /* largest L (positions) */
#define HR_SEQ_MAX_MEMBERS 8 /* networks of an ensemble (model kind seq) */

/* The user encoder: what turns the embedded rows into states. */
typedef enum {
  HR_SEQ_TRANSFORMER = 0, /* `blocks` pre-norm blocks, position vectors */
  HR_SEQ_GRU = 1,         /* one GRU layer; no position vectors, blocks 0 */
  HR_SEQ_CNN = 2          /* Caser-style: over the newest `win` rows,
                             `nh` horizontal filters of each height 1..win
                             (max-pooled) and `nv` vertical ones, then a
                             linear layer; no position vectors, blocks 0 */
} hr_seq_enc_t;

#define HR_SEQ_MAX_WIN 16 /* largest CNN window */

typedef struct {
  int d;        /* width of every vector */
  int L;        /* longest sequence (positions) */
  int blocks;   /* transformer blocks (0 for the other encoders) */
  int ffn;      /* hidden width of the feed-forward part */
  int n_items;
  int n_gap;    /* time-gap buckets (hr_seq_gap_bucket), 0: no time */
  int enc;      /* hr_seq_enc_t */
  int win, nh, nv; /* HR_SEQ_CNN: window, filters per height, vertical
                      filters */
} hr_seq_dims_t;

/** The encoder's name ("transformer", "gru", "cnn"), or NULL. */
const char *hr_seq_enc_name(int enc);
/** The encoder named s, or -1. */
int hr_seq_enc_parse(const char *s);
/** NULL when dm's encoder fields are consistent (blocks 0 for a GRU or a
 *  CNN, 1 <= win <= min(L, HR_SEQ_MAX_WIN), nh and nv in 1..256), else
 *  what is wrong. */
const char *hr_seq_enc_check(const hr_seq_dims_t *dm);

#define HR_SEQ_GAPS 24 /* buckets of hr_seq_gap_bucket */

/** The bucket of a time gap in seconds: 0 unknown (no previous item, or a
 *  timestamp missing), then 1 + floor(log2(1 + minutes)), capped at
 *  HR_SEQ_GAPS - 1. */
int hr_seq_gap_bucket(int64_t seconds, int known);

typedef struct {
  float *ln1g, *ln1b, *wq, *wk, *wv, *wo, *bo, *ln2g, *ln2b, *w1, *b1, *w2,
      *b2;
} hr_seq_block_t;

/** Named views into the flat parameter array. */
typedef struct {
  float *item;  /* n_items x d: input and output item vectors (shared) */
  size_t item_ld; /* floats from one item row to the next; 0: d (a model
                     file may keep them inside wider rows) */
  float *pos;   /* L x d */
  float *gin;   /* n_gap x d: gap to the previous item, added to inputs */
  float *gq;    /* n_gap x d: gap from the newest item to the request,
                   added to the user vector */
  hr_seq_block_t blk[HR_SEQ_MAX_BLOCKS];
  /* HR_SEQ_GRU: gates [update z | reset r | candidate n], each d wide:
   * gw d x 3d (input), gu d x 3d (recurrent), gb 3d */
  float *gw, *gu, *gb;
  /* HR_SEQ_CNN: horizontal filters, tap j (0 = the newest row) a
   * d x (win - j) nh matrix for the filters of heights j+1..win (columns
   * ordered by height, nh each), back to back; cb their biases (win nh);
   * cv vertical weights nv x win; cw (nv d + win nh) x d and cwb d, the
   * linear layer over [vertical outputs | pooled horizontal ones] */
  float *cf, *cb, *cv, *cw, *cwb;
  float *lnfg, *lnfb;
} hr_seq_params_t;

/** Number of floats of the flat parameter array. */
size_t hr_seq_param_count(const hr_seq_dims_t *dm);
/** Point p's views into flat (hr_seq_param_count floats). */
void hr_seq_bind(const hr_seq_dims_t *dm, float *flat, hr_seq_params_t *p);

/** The same views with the item table held apart (a model file stores it
 *  as its own tensor): `item` holds n_items rows of d floats item_ld
 *  floats apart (0: d), `rest` the
 *  hr_seq_param_count - n_items * d floats after it in the flat order. */
void hr_seq_bind_split(const hr_seq_dims_t *dm, float *item, size_t item_ld,
                       float *rest, hr_seq_params_t *p);

/** Activations of one forward pass over R rows (sized by
 *  hr_seq_acts_floats; the caller owns the memory). */
/* One block's activations: input, LN1 (with its row stats), Q/K/V,
 * attention output, after attention + residual, LN2, FFN hidden (post
 * ReLU). */
typedef struct {
  float *x, *a, *mu1, *rs1, *q, *k, *v, *o, *h, *c, *mu2, *rs2, *f1;
} hr_seq_block_acts_t;

typedef struct {
  float *x0;                    /* R x d: embeddings in */
  hr_seq_block_acts_t b[HR_SEQ_MAX_BLOCKS];
  float *gz;   /* HR_SEQ_GRU: R x 3d gates after their nonlinearities */
  float *gh;   /* HR_SEQ_GRU: R x 3d, the previous state times gu */
  float *gs;   /* HR_SEQ_GRU: scratch, 4 d floats per sequence */
  float *cc;   /* HR_SEQ_CNN: R x win nh horizontal filters (after ReLU) */
  float *ca;   /* HR_SEQ_CNN: R x win nh, rows back to each pooled max */
  float *cz;   /* HR_SEQ_CNN: R x (nv d + win nh), the linear layer's in */
  float *p;                     /* attention probabilities, all blocks */
  float *xl;                    /* R x d: last block's output */
  float *y, *muf, *rsf;         /* R x d: final LN (the user vectors) */
} hr_seq_acts_t;

/** Floats needed for R rows whose sequences have lengths len[0..ns):
 *  the attention matrices take sum(len^2) per block. */
size_t hr_seq_acts_floats(const hr_seq_dims_t *dm, size_t R,
                          const int *len, size_t ns);
/** Carve `buf` (hr_seq_acts_floats floats) into a. */
void hr_seq_acts_bind(const hr_seq_dims_t *dm, size_t R, const int *len,
                      size_t ns, float *buf, hr_seq_acts_t *a);

/** Forward over ns sequences: items[r] (dense indices) for rows
 *  off[0]=0 .. off[ns]-1, off[s+1]-off[s] <= L. Fills every activation;
 *  gaps[r] (or NULL: all 0) is the gap bucket of row r to the row before.
 *  a->y row r is the state after reading rows off[s]..r. `mask` (or
 *  NULL) is the trainer's dropout: 1 + 2 * blocks matrices of R x d that
 *  multiply the input embeddings, then each block's attention and
 *  feed-forward outputs before their residual adds (hr_seq_mask_floats);
 *  the server passes NULL. */
void hr_seq_forward(const hr_seq_dims_t *dm, const hr_seq_params_t *p,
                    const int32_t *items, const int32_t *gaps,
                    const size_t *off, size_t ns, const float *mask,
                    hr_seq_acts_t *a);

/** The encoder part of hr_seq_forward for a GRU or a CNN: a->x0 (filled)
 *  into a->xl, and the encoder's activations. */
void hr_seq_enc_fwd(const hr_seq_dims_t *dm, const hr_seq_params_t *p,
                    const size_t *off, size_t ns, hr_seq_acts_t *a);
/** Floats of a GRU's or a CNN's own parameters (0 for the transformer). */
size_t hr_seq_enc_param_count(const hr_seq_dims_t *dm);

/** Floats of a dropout mask for R rows. */
size_t hr_seq_mask_floats(const hr_seq_dims_t *dm, size_t R);

/** The user vector from a row y of a->y and the request's gap bucket:
 *  u = y + gq[qgap] (u may alias y). */
void hr_seq_user_out(const hr_seq_dims_t *dm, const hr_seq_params_t *p,
                     const float *y, int qgap, float *u);

/** Context features: the user vector of a request in a given context is
 *  u + the vector of each context value it has (a table the model learns,
 *  one row per value of its context prior); this adds one row of d. */
void hr_seq_add_context(float *u, const float *row, size_t d);

/** Floats of the scratch hr_seq_embed needs (one sequence of L rows). */
size_t hr_seq_embed_floats(const hr_seq_dims_t *dm);

/** The user vector (d floats into u) after reading items[0..n) (dense
 *  indices, OLDEST first; only the newest L count, the newest `win` for a
 *  CNN) whose timestamps are
 *  ts[0..n) (unix seconds; a time is known when > 0; ts NULL: all
 *  unknown), for a request at time `now` (<= 0: unknown). n = 0 gives
 *  zeros. `buf` holds
 *  hr_seq_embed_floats floats. The one user forward of the trainer's
 *  evaluation and of the server: hr_seq_forward's newest row, with the
 *  last block computed for that row alone (keys and values for all).
 *  Thread-safe on distinct buffers. */
void hr_seq_embed(const hr_seq_dims_t *dm, const hr_seq_params_t *p,
                  const int32_t *items, const int64_t *ts, size_t n,
                  int64_t now, float *buf, float *u);

/** hr_seq_embed in its two parts: the state after reading the items (the
 *  final norm's newest row, y: d floats), which depends on the items and
 *  their times only, and the request's gap bucket from the newest item's
 *  time ts[n-1] to `now`; hr_seq_embed is hr_seq_user_out(y, gap) (for
 *  n > 0), bit for bit. The server keeps y between requests. */
void hr_seq_embed_state(const hr_seq_dims_t *dm, const hr_seq_params_t *p,
                        const int32_t *items, const int64_t *ts, size_t n,
                        float *buf, float *y);
int hr_seq_request_gap(const int64_t *ts, size_t n, int64_t now);

#endif
