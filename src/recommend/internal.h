/* internal.h -- shared by the pipeline (pipeline.c) and its user vector
 * cache (ucache.c) only. */
#ifndef HR_RECOMMEND_INTERNAL_H
#define HR_RECOMMEND_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "hr/model.h"
#include "hr/registry.h"

/* A 128-bit key: two independent 64-bit hashes of the same input. */
typedef struct {
  uint64_t a, b;
} hr__ukey_t;

/* The key of what a user vector's costly part depends on: the user's
 * index (-1 unknown), and the recent history's items and times. */
hr__ukey_t hr__ukey(long user_idx, const hr_history_t *h);

typedef struct hr__ucache hr__ucache_t;

/* The snapshot's cache, created on first use in about `bytes` bytes, with
 * entries of `dim` floats and up to `cmax` candidate ids (NULL with bytes
 * 0, or on out of memory: no cache). */
hr__ucache_t *hr__ucache_of(hr_snapshot_t *snap, int dim, size_t bytes,
                           size_t cmax);
/* Candidate ids an entry holds at most. */
size_t hr__ucache_cmax(const hr__ucache_t *c);
/* On a hit (1): the kept vector into out (dim floats), the kept candidates
 * into ids (*n_ids of them, 0 when none were kept) and the candidate
 * count they were retrieved for (*asked). 0 on a miss. */
int hr__ucache_get(hr__ucache_t *c, hr__ukey_t key, float *out,
                   uint32_t *ids, size_t *n_ids, uint32_t *asked);
/* Keep `v` and n_ids candidate ids (retrieved when `asked` were wanted)
 * under `key`, replacing the set's least recently used entry. */
void hr__ucache_put(hr__ucache_t *c, hr__ukey_t key, const float *v,
                    const uint32_t *ids, size_t n_ids, uint32_t asked);
void hr__ucache_stats(const hr__ucache_t *c, unsigned long *entries,
                      unsigned long *hits, unsigned long *misses);

#endif
