/* seq_enc.h -- the trainer's parts of the GRU and CNN user encoders
 * (seq_enc.c); internal to src/train/seq.c. */
#ifndef HR_TRAIN_SEQ_ENC_H
#define HR_TRAIN_SEQ_ENC_H

#include "hr/seq.h"

#include <stddef.h>
#include <stdint.h>

/** Initial weights of p's encoder (nothing for the transformer). */
void hr__seq_enc_init(const hr_seq_dims_t *dm, hr_seq_params_t *p,
                      uint64_t *seed);
/** Scratch floats hr__seq_enc_bwd needs for R rows. */
size_t hr__seq_enc_work_floats(const hr_seq_dims_t *dm, size_t R);
/** Given dx = the gradient of a->xl (R x d), add the encoder weights'
 *  gradients into g and leave the gradient of a->x0 in dx. */
void hr__seq_enc_bwd(const hr_seq_dims_t *dm, const hr_seq_params_t *p,
                     const hr_seq_params_t *g, const hr_seq_acts_t *a,
                     const size_t *off, size_t ns, float *dx, float *work);

#endif
