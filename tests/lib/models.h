/* models.h -- small models and orders shared by the unit tests. */
#ifndef HRT_MODELS_H
#define HRT_MODELS_H

#include "hr/train.h"

/** A small sequential network for end-to-end tests: d 16, 12 positions,
 *  ffn 16, 3 epochs, batch 16, one thread (the rest hr_seq_opts_default). */
void hrt_small_seq_opts(hr_seq_opts_t *o);

/** gen's data (200 users, 80 items, 3000 events) in <tmp>/fitgen, read
 *  into ds and h, and an 8-factor iALS model fitted on it with `threads`
 *  threads. 0, or -1 / an HR_E* code. */
int hrt_fit_gen(hr_dataset_t *ds, hr_csr_t *h, hr_ials_t *m, int threads);

/** qsort order of hr_scored_t, best first: higher score, then lower index
 *  (the ranker's order). */
int hrt_cmp_scored_desc(const void *a, const void *b);

#endif
