/* util.h -- small helpers shared by the trainer's files (not an API):
 * a monotonic clock and the splitmix64 generator with its uniform and
 * normal draws. Static inline, so each file keeps its own copy. */
#ifndef HR_TRAIN_UTIL_H
#define HR_TRAIN_UTIL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <jansson.h>

static inline double hr__now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* splitmix64: the next 64 random bits of state *s. */
static inline uint64_t hr__sm64(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* Uniform in (0, 1). */
static inline double hr__unif(uint64_t *s) {
  return ((double)(hr__sm64(s) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

/* Standard normal (Box-Muller). */
static inline double hr__gauss(uint64_t *s) {
  return sqrt(-2.0 * log(hr__unif(s))) * cos(6.283185307179586 *
                                             hr__unif(s));
}

/* The shortest decimal that reads back as the same float, so that a
 * manifest says 0.9 and not 0.89999997615814209. */
static inline json_t *hr__jfloat(float f) {
  char buf[32];
  for (int prec = 6; prec <= 9; prec++) {
    snprintf(buf, sizeof(buf), "%.*g", prec, (double)f);
    if ((float)strtod(buf, NULL) == f)
      break;
  }
  return json_real(strtod(buf, NULL));
}

/* Popularity prior of the models' score: scale * log1p(count) /
 * log1p(max count) per item (n_items floats into out). */
static inline void hr__pop_prior(const uint64_t *ptr, const int32_t *items,
                                 size_t n_users, size_t n_items, float scale,
                                 float *out) {
  double mx = 0;
  for (size_t i = 0; i < n_items; i++)
    out[i] = 0.0f;
  for (uint64_t k = 0; k < ptr[n_users]; k++)
    out[items[k]] += 1.0f;
  for (size_t i = 0; i < n_items; i++)
    mx = out[i] > mx ? out[i] : mx;
  for (size_t i = 0; i < n_items; i++)
    out[i] = mx > 0 ? (float)(scale * log1p(out[i]) / log1p(mx)) : 0.0f;
}

#endif
