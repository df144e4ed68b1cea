/* fuzz_index.c -- index.bin: the HNSW loader, then searches over what it
 * accepted.
 *
 * Input: the bytes of an index file. Both CRC-32s (header and body) are
 * recomputed over the mutated bytes first, as anyone who can write the
 * file can do, so that the fuzzer explores the structure behind them. An
 * index that opens must answer searches (plain, with exclusions, with a
 * filter) with distinct ids below n and finite scores. */
#include "fuzz.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#include "../../src/ann/ann_internal.h"

#define HDR 128 /* index.bin's header */

static void check_results(const hr_ann_t *a, const uint32_t *ids,
                          const float *sc, size_t got, size_t k) {
  FUZZ_EXPECT(got <= k, "%zu results for k %zu", got, k);
  for (size_t i = 0; i < got; i++) {
    FUZZ_EXPECT(ids[i] < a->n, "id %u of %zu", ids[i], a->n);
    FUZZ_EXPECT(isfinite(sc[i]), "score %g", (double)sc[i]);
    for (size_t j = 0; j < i; j++)
      FUZZ_EXPECT(ids[i] != ids[j], "id %u twice", ids[i]);
  }
}

HR_FUZZ_TARGET(index) {
  uint8_t *buf;
  hr_ann_t *a;
  hr_error_t err;

  if (size < HDR)
    return 0;
  buf = malloc(size);
  if (buf == NULL)
    return 0;
  memcpy(buf, data, size);
  hr_fuzz_fix_index_crcs(buf, size);
  memset(&err, 0, sizeof(err));
  a = hr_ann_open_mem(buf, size, "fuzz", &err);
  free(buf);
  if (a == NULL) {
    FUZZ_EXPECT(err.code < 0, "refused without a code");
    return 0;
  }
  hr_fuzz_accepted++;
  hr_ann_scratch_t *s = hr_ann_scratch_new(a);
  FUZZ_EXPECT(s != NULL, "no scratch");
  size_t k = a->n < 8 ? a->n : 8;
  float *q = calloc((size_t)a->dim, sizeof(float));
  uint32_t ids[8], excl[2] = {0, (uint32_t)(a->n - 1)};
  float sc[8];
  uint64_t allow[4] = {0x5555555555555555ULL, 0x5555555555555555ULL,
                       0x5555555555555555ULL, 0x5555555555555555ULL};
  FUZZ_EXPECT(q != NULL, "out of memory");
  for (int d = 0; d < a->dim; d++)
    q[d] = (d % 3 == 0) ? 1.0f : (d % 3 == 1 ? -0.5f : 0.25f);
  size_t got = hr_ann_search(a, s, q, k, 16, NULL, 0, ids, sc);
  check_results(a, ids, sc, got, k);
  got = hr_ann_search(a, s, q, k, 4, excl, a->n > 1 ? 2 : 1, ids, sc);
  check_results(a, ids, sc, got, k);
  for (size_t i = 0; i < got; i++)
    FUZZ_EXPECT(ids[i] != 0 && ids[i] != a->n - 1, "excluded id %u", ids[i]);
  if (a->n <= 256) {
    size_t n_allow = (a->n + 1) / 2;
    got = hr_ann_search_filter(a, s, q, k, 16, NULL, 0, allow, n_allow, ids,
                               sc);
    check_results(a, ids, sc, got, k);
    for (size_t i = 0; i < got; i++)
      FUZZ_EXPECT(ids[i] % 2 == 0, "id %u is filtered out", ids[i]);
  }
  free(q);
  hr_ann_scratch_free(s);
  hr_ann_free(a);
  return 0;
}
