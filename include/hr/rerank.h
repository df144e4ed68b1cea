/* rerank.h -- the neural ranker: an MLP that reorders the retrieval's top
 * N candidates. Its input for (user, item, request) is the element-wise
 * product of the user and item vectors, the retrieval's two sub-scores
 * (sequential and long-term parts), the item's log popularity and the
 * request's time-gap bucket (one-hot); two ReLU layers, one output. The
 * forward pass here is the trainer's and the server's. */
#ifndef HR_RERANK_H
#define HR_RERANK_H

#include <stddef.h>

#include "hr/seq.h"

typedef struct {
  int D;       /* user / item vector width */
  int d_seq;   /* the sequential part's width (the rest is long-term) */
  int h1, h2;  /* hidden widths */
} hr_rerank_dims_t;

/** Input width: D + 3 + HR_SEQ_GAPS. */
int hr_rerank_inputs(const hr_rerank_dims_t *dm);
/** Floats of the flat parameter vector: W1 [F x h1], b1, W2 [h1 x h2], b2,
 *  w3 [h2 x 1], b3. */
size_t hr_rerank_param_count(const hr_rerank_dims_t *dm);

/** The input row (hr_rerank_inputs floats into x) for user vector u, item
 *  vector v (D floats each), the item's log popularity and the request's
 *  gap bucket (0..HR_SEQ_GAPS-1). */
void hr_rerank_input(const hr_rerank_dims_t *dm, const float *u,
                     const float *v, float logpop, int qgap, float *x);

/** Scores of n input rows X [n x F] into out (n); h1buf and h2buf hold
 *  n * h1 and n * h2 floats (the hidden activations, kept for the
 *  trainer's backward). */
void hr_rerank_forward(const hr_rerank_dims_t *dm, const float *params,
                       const float *X, size_t n, float *h1buf, float *h2buf,
                       float *out);

#endif
