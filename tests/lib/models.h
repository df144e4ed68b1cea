/* models.h -- small models and orders shared by the unit tests. */
#ifndef HRT_MODELS_H
#define HRT_MODELS_H

#include "hr/train.h"

/** A small sequential network for end-to-end tests: d 16, 12 positions,
 *  ffn 16, 3 epochs, batch 16, one thread (the rest hr_seq_opts_default). */
void hrt_small_seq_opts(hr_seq_opts_t *o);

/** qsort order of hr_scored_t, best first: higher score, then lower index
 *  (the ranker's order). */
int hrt_cmp_scored_desc(const void *a, const void *b);

#endif
