/* assign.c -- sticky variant assignment (experiments.h). */
#include "hr/experiments.h"

uint64_t hr_exp_hash(const char *salt, const char *id, size_t id_len) {
  uint64_t h = 1469598103934665603ull;
  for (const unsigned char *p = (const unsigned char *)salt; *p; p++)
    h = (h ^ *p) * 1099511628211ull;
  h = (h ^ 0) * 1099511628211ull; /* salt "a" + id "bc" != salt "ab" + "c" */
  for (size_t i = 0; i < id_len; i++)
    h = (h ^ (unsigned char)id[i]) * 1099511628211ull;
  /* splitmix64's finaliser: every input bit reaches every output bit */
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  h ^= h >> 31;
  return h;
}

int hr_exp_assign(const char *salt, const char *id, size_t id_len,
                  const int *weights, int n) {
  uint64_t total = 0, b, acc = 0;
  for (int i = 0; i < n; i++)
    total += weights[i] > 0 ? (uint64_t)weights[i] : 0;
  if (n <= 0 || total == 0)
    return -1;
  /* the top 32 bits scaled onto [0, total): no modulo bias worth the
   * name for totals up to millions */
  b = ((hr_exp_hash(salt, id, id_len) >> 32) * total) >> 32;
  for (int i = 0; i < n; i++) {
    acc += weights[i] > 0 ? (uint64_t)weights[i] : 0;
    if (b < acc)
      return i;
  }
  return n - 1; /* not reached */
}
