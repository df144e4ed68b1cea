/* experiments.h -- sticky assignment of users to experiment variants.
 *
 * A user (or, for anonymous requests, a session id) is assigned by a
 * deterministic hash of (salt, id) into the variants' integer weights: the
 * same id gets the same variant on every replica, after restarts and on
 * any build, since the hash is fixed here and pinned by a unit test
 * (changing it would reshuffle every running experiment). Changing the
 * salt gives an independent assignment. Thread-safe, no state. */
#ifndef HR_EXPERIMENTS_H
#define HR_EXPERIMENTS_H

#include <stddef.h>
#include <stdint.h>

/** The 64-bit hash of salt and id (FNV-1a over salt, a 0 byte and id,
 *  then the splitmix64 finaliser). */
uint64_t hr_exp_hash(const char *salt, const char *id, size_t id_len);

/** The variant (0..n-1) of id among n variants with these weights (each
 *  >= 0, sum > 0): the hash is mapped onto [0, sum of weights) and the
 *  variant owning that bucket is returned. -1 when the weights are empty
 *  or sum to 0. */
int hr_exp_assign(const char *salt, const char *id, size_t id_len,
                  const int *weights, int n);

#endif
