/* ranker.h -- top-k selection: the one implementation in the code base.
 *
 * Every ranked list the server answers and the trainer evaluates is chosen
 * here: a bounded min-heap over the caller's buffer keeps the k best
 * (index, score) pairs offered, O(n log k), and sorts them best first at
 * the end. "Best" is the higher score; equal scores are ordered by the
 * lower index (the trainer assigns dense indices in ascending item-id
 * order, matching the evaluation protocol). NaN scores are never kept.
 * Pure functions over caller-owned memory: thread-safe, no allocation. */
#ifndef HR_RANKER_H
#define HR_RANKER_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  long index;   /* dense item index (or a position, for the caller) */
  float score;
} hr_scored_t;

/** A top-k collector over a buffer of k entries. */
typedef struct {
  hr_scored_t *h; /* min-heap (worst kept at h[0]) while collecting */
  size_t n, k;
} hr_topk_t;

/** Start collecting the k best into buf (k entries). */
void hr_topk_init(hr_topk_t *t, hr_scored_t *buf, size_t k);

/** The score an item must beat to enter (equal scores by lower index):
 *  -INFINITY until k items are held. */
static inline float hr_topk_bar(const hr_topk_t *t) {
  return t->n < t->k ? -__builtin_inff() : t->h[0].score;
}

/** Offer item `index` with `score`. Returns 1 when it was kept. */
int hr_topk_push(hr_topk_t *t, long index, float score);

/** Sort what was kept best first, in place in the buffer; returns the
 *  count (the collector is then spent: init it again to reuse). */
size_t hr_topk_finish(hr_topk_t *t);

/** The k best of scores[0..n) whose index is not excluded, best first,
 *  into out[0..k); returns how many (< k when fewer items remain).
 *  Excluded: listed in `excl` (sorted ascending, unique; may be NULL), or
 *  with a set byte in `mask` (n bytes; may be NULL), or with a set bit in
 *  `bits` (ceil(n/64) words; may be NULL). */
size_t hr_ranker_topk(const float *scores, size_t n, const long *excl,
                      size_t n_excl, const unsigned char *mask,
                      const uint64_t *bits, size_t k, hr_scored_t *out);

#endif
