/* nn.h -- the neural network layers shared by the server and the trainer.
 *
 * One implementation of every forward pass, used by the server (forward
 * only) and by hyperrec-train (forward and backward), so that what the
 * trainer evaluates is what the server computes. Plain functions over
 * row-major float arrays: the caller owns every buffer, nothing here
 * allocates, logs or keeps state, and all functions are thread-safe on
 * distinct outputs. Dense products go through OpenBLAS (cblas_sgemm); call
 * openblas_set_num_threads(1) where threads are managed above (the server's
 * request threads, the trainer's workers).
 *
 * Conventions: a matrix "[n x d]" is n rows of d floats, contiguous unless a
 * leading dimension `ld` (floats between rows) is given. Backward functions
 * ADD into every gradient output (parameters and inputs alike), so residual
 * branches and shared parameters simply accumulate; zero them first. Every
 * backward function is checked against central finite differences in
 * tests/unit/test_nn.c. */
#ifndef HR_NN_H
#define HR_NN_H

#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------- linear */

/** Y[n x out] = X[n x in] W[in x out] (+ b[out] when b is not NULL). */
void hr_nn_linear_fwd(const float *X, size_t n, int in, int out,
                      const float *W, const float *b, float *Y);
/** Given dY: dX += dY W^T (dX may be NULL), dW += X^T dY, db += colsum(dY)
 *  (db may be NULL). */
void hr_nn_linear_bwd(const float *X, size_t n, int in, int out,
                      const float *W, const float *dY, float *dX, float *dW,
                      float *db);

/* ---------------------------------------------------------- layernorm */

#define HR_NN_LN_EPS 1e-5f

/** Per row of X[n x d]: Y = (X - mean) / sqrt(var + eps) * g + b. Saves the
 *  row means and reciprocal standard deviations (n each) for backward;
 *  mean/rstd may be NULL in forward-only use. Y may alias X. */
void hr_nn_layernorm_fwd(const float *X, size_t n, int d, const float *g,
                         const float *b, float *Y, float *mean, float *rstd);
/** X is the forward input (not aliased by Y). */
void hr_nn_layernorm_bwd(const float *X, size_t n, int d, const float *g,
                         const float *mean, const float *rstd, const float *dY,
                         float *dX, float *dg, float *db);

/* --------------------------------------------------------------- relu */

/** Y = max(X, 0) over n floats; Y may alias X. */
void hr_nn_relu_fwd(const float *X, size_t n, float *Y);
/** dX += dY where the forward OUTPUT Y > 0. */
void hr_nn_relu_bwd(const float *Y, size_t n, const float *dY, float *dX);

/* ---------------------------------------------------------- attention */

/** Causal scaled dot-product attention for one sequence and one head:
 *  S[i][j] = <Q_i, K_j> * scale for first <= j <= i, P = softmax over j,
 *  O_i = sum_j P[i][j] V_j. Rows i < first (left padding) have no keys:
 *  their P row and O row are 0. Q, K, V, O are [L x d] with leading
 *  dimension ld (so heads can be slices of one [L x ld] matrix); P is
 *  [L x L], saved for backward (rows above the diagonal are 0). */
void hr_nn_attn_fwd(const float *Q, const float *K, const float *V, int L,
                    int d, int ld, int first, float scale, float *P, float *O);
/** Given dO: dQ, dK, dV += (same layout as the inputs). `work` holds
 *  L * L floats. */
void hr_nn_attn_bwd(const float *Q, const float *K, const float *V,
                    const float *P, int L, int d, int ld, int first,
                    float scale, const float *dO, float *dQ, float *dK,
                    float *dV, float *work);

/* ------------------------------------------------------------- losses */

/** Softmax cross-entropy of each row of logits[n x C] against target[r]
 *  (rows with target < 0 are skipped). Returns the summed loss (double);
 *  when dlogits is not NULL it is SET to (softmax - onehot) * scale for
 *  the counted rows and 0 for skipped ones. logits may alias dlogits. */
double hr_nn_softmax_xent(float *logits, size_t n, int C,
                          const int32_t *target, float scale, float *dlogits);

/* ---------------------------------------------------------- optimiser */

typedef struct {
  float lr;           /* step size */
  float beta1, beta2; /* 0.9, 0.999 */
  float eps;          /* 1e-8 */
  float weight_decay; /* decoupled (AdamW): w -= lr * wd * w */
} hr_nn_adam_t;

/** One AdamW step (t = 1, 2, ... the step count, for bias correction) over
 *  n parameters w with gradients g and moments m, v (zero-initialised). */
void hr_nn_adam_step(const hr_nn_adam_t *o, long t, float *w, const float *g,
                     float *m, float *v, size_t n);

/** Sum of squares of x[0..n), in double (for global-norm clipping). */
double hr_nn_sqnorm(const float *x, size_t n);

#endif
