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

/* The key of what is kept of a user: the user's index (-1 unknown) and
 * the history as the request and Redis give it (ids as strings, Redis's
 * times): what the kept part follows from, within one model version. A
 * request whose entry is kept needs not map its history at all. */
hr__ukey_t hr__ukey(long user_idx, const char *const *req_hist, size_t n_req,
                    const char *const *hist, const long long *ts,
                    size_t n_hist);

/* What an entry holds besides the vector and the candidates. */
typedef struct {
  uint32_t n_ids;     /* candidates kept (0: none) */
  uint32_t asked;     /* ann.kept when they were found */
  uint32_t n_hist;    /* the history's distinct known items */
  uint32_t scored;    /* 1: the candidates' scores for the kept vector
                         (the base) are kept too */
  int64_t newest_ts;  /* the newest of them's time (-1 unknown) */
} hr__ukept_t;

typedef struct hr__ucache hr__ucache_t;

/* The snapshot's cache, created on first use in about `bytes` bytes, with
 * entries of `dim` floats and up to `cmax` candidate ids (NULL with bytes
 * 0, or on out of memory: no cache). */
hr__ucache_t *hr__ucache_of(hr_snapshot_t *snap, int dim, size_t bytes,
                           size_t cmax);
/* Candidate ids an entry holds at most. */
size_t hr__ucache_cmax(const hr__ucache_t *c);
/* On a hit (1): the kept vector into out (dim floats), the kept candidates
 * into ids (meta->n_ids of them, 0 when none were kept), their scores into
 * `scores` when meta->scored, and the rest into meta. 0 on a miss. */
int hr__ucache_get(hr__ucache_t *c, hr__ukey_t key, float *out,
                   uint32_t *ids, float *scores, hr__ukept_t *meta);
/* Keep `v`, meta->n_ids candidate ids (with their scores when
 * meta->scored) and meta under `key`, replacing the set's least recently
 * used entry. */
void hr__ucache_put(hr__ucache_t *c, hr__ukey_t key, const float *v,
                    const uint32_t *ids, const float *scores,
                    const hr__ukept_t *meta);
void hr__ucache_stats(const hr__ucache_t *c, unsigned long *entries,
                      unsigned long *hits, unsigned long *misses);

#endif
