/* ranker.h -- from item scores to the final top-k.
 *
 * v1 is exact: every catalogue item is scored (one sgemv in the model) and
 * the k best that are not excluded are selected with a bounded min-heap,
 * O(n log k). Ties are broken by ascending dense index, which the trainer
 * assigns in ascending item-id order, matching the evaluation protocol.
 * Pure functions: thread-safe, no allocation beyond the caller's buffers. */
#ifndef HR_RANKER_H
#define HR_RANKER_H

#include <stddef.h>

typedef struct {
  long index;   /* dense item index */
  float score;
} hr_scored_t;

/** Sort `idx` ascending and drop duplicates; returns the new length. Use on
 *  an exclusion list before hr_ranker_topk. */
size_t hr_ranker_sort_unique(long *idx, size_t n);

/** The k best items of scores[0..n) not in `excl` (sorted, unique), best
 *  first, written to out[0..k). Returns how many were written (< k when
 *  fewer items remain). NaN scores are never selected. */
size_t hr_ranker_topk(const float *scores, size_t n, const long *excl,
                      size_t n_excl, size_t k, hr_scored_t *out);

#endif
