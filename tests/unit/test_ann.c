/* test_ann.c -- the HNSW index against its brute-force twin: recall,
 * filtering, index.bin round trip and refusal of damaged or hostile files,
 * kernels against the scalar one, build determinism, tiny catalogues. */
#include "test.h"

#include <math.h>
#include <stdlib.h>

#include "../../src/ann/ann_internal.h"
#include "hr/ann.h"
#include "hr/crc.h"

/* ------------------------------------------------------------ helpers */

static uint64_t rng_next(uint64_t *s) {
  *s = *s * 6364136223846793005ull + 1442695040888963407ull;
  return *s >> 11;
}

static float rng_unif(uint64_t *s) {
  return ((float)(rng_next(s) >> 29) + 0.5f) / 16777216.0f;
}

static float rng_gauss(uint64_t *s) {
  float u = rng_unif(s), v = rng_unif(s);
  return sqrtf(-2.0f * logf(u)) * cosf(6.2831853f * v);
}

/* n L2-normalised vectors around `nc` random centres (clustered, like item
 * embeddings). Caller frees. */
static float *clustered(size_t n, int dim, int nc, uint64_t seed) {
  float *c = malloc((size_t)nc * (size_t)dim * sizeof(float));
  float *x = malloc(n * (size_t)dim * sizeof(float));
  uint64_t s = seed;
  if (!c || !x) {
    free(c);
    free(x);
    return NULL;
  }
  for (size_t i = 0; i < (size_t)nc * (size_t)dim; i++)
    c[i] = rng_gauss(&s);
  for (size_t i = 0; i < n; i++) {
    const float *ci = c + (rng_next(&s) % (uint64_t)nc) * (size_t)dim;
    float *xi = x + i * (size_t)dim, norm = 0;
    for (int j = 0; j < dim; j++) {
      xi[j] = ci[j] + 0.6f * rng_gauss(&s);
      norm += xi[j] * xi[j];
    }
    for (int j = 0; j < dim; j++)
      xi[j] /= sqrtf(norm);
  }
  free(c);
  return x;
}

static hr_ann_t *build(const float *x, size_t n, int dim, int threads,
                       uint64_t seed) {
  hr_ann_params_t p;
  hr_error_t err = {0};
  hr_ann_params_default(&p);
  p.threads = threads;
  p.seed = seed;
  p.ef_construction = 100;
  hr_ann_t *a = hr_ann_build(x, n, dim, &p, &err);
  if (a == NULL)
    fprintf(stderr, "  build: %s\n", err.msg);
  return a;
}

static size_t overlap(const uint32_t *a, size_t na, const uint32_t *b,
                      size_t nb) {
  size_t hits = 0;
  for (size_t i = 0; i < na; i++)
    for (size_t j = 0; j < nb; j++)
      if (a[i] == b[j]) {
        hits++;
        break;
      }
  return hits;
}

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  char *buf;
  long l;
  if (f == NULL)
    return NULL;
  fseek(f, 0, SEEK_END);
  l = ftell(f);
  fseek(f, 0, SEEK_SET);
  buf = malloc((size_t)l);
  if (buf && fread(buf, 1, (size_t)l, f) != (size_t)l) {
    free(buf);
    buf = NULL;
  }
  fclose(f);
  *len = (size_t)l;
  return buf;
}

static int spit(const char *path, const void *buf, size_t len) {
  FILE *f = fopen(path, "wb");
  if (f == NULL)
    return -1;
  size_t w = fwrite(buf, 1, len, f);
  fclose(f);
  return w == len ? 0 : -1;
}

/* ------------------------------------------------------------- tests */

HR_TEST(ann_recall_vs_brute) {
  enum { N = 20000, D = 32, NQ = 200, K = 10 };
  /* held-out queries from the same clusters as the items */
  float *x = clustered(N + NQ, D, 40, 1), *q = x + (size_t)N * D;
  uint32_t got[K], want[K];
  size_t hits = 0;
  ASSERT_NOT_NULL(x);
  hr_ann_t *a = build(x, N, D, 2, 1);
  ASSERT_NOT_NULL(a);
  hr_ann_scratch_t *s = hr_ann_scratch_new(a);
  ASSERT_NOT_NULL(s);
  ASSERT_EQ(hr_ann_size(a), N);
  ASSERT_EQ(hr_ann_dim(a), D);
  for (int i = 0; i < NQ; i++) {
    float sc[K], bsc[K];
    ASSERT_EQ(hr_ann_search(a, s, q + i * D, K, 200, NULL, 0, got, sc), K);
    ASSERT_EQ(hr_ann_brute_search(x, N, D, q + i * D, K, NULL, 0, want, bsc),
              K);
    hits += overlap(got, K, want, K);
    for (int j = 1; j < K; j++)
      ASSERT(sc[j - 1] >= sc[j]); /* best first */
    /* scores are the fp16-stored rows times the float query */
    ASSERT_DBL_NEAR(sc[0], hr_ann__dot32_scalar(q + i * D,
                                               x + (size_t)got[0] * D, D),
                    2e-3);
  }
  double recall = (double)hits / (NQ * K);
  ASSERT_MSG(recall >= 0.99, "recall@10 %.4f < 0.99", recall);
  /* with the float rows attached, scores are the exact ones */
  hr_ann_set_rerank_vectors(a, x);
  for (int i = 0; i < 20; i++) {
    float sc[K];
    ASSERT_EQ(hr_ann_search(a, s, q + i * D, K, 200, NULL, 0, got, sc), K);
    for (int j = 0; j < K; j++)
      ASSERT(sc[j] == hr_ann__dot32(q + i * D, x + (size_t)got[j] * D, D));
    for (int j = 1; j < K; j++)
      ASSERT(sc[j - 1] >= sc[j]);
  }
  hr_ann_set_rerank_vectors(a, NULL);
  hr_ann_scratch_free(s);
  hr_ann_free(a);
  free(x);
  return 0;
}

HR_TEST(ann_filtered_search_keeps_recall) {
  enum { N = 10000, D = 32, NQ = 100, K = 10 };
  float *x = clustered(N + NQ, D, 20, 3), *q = x + (size_t)N * D;
  uint32_t got[K], want[K], top[5 + 200];
  size_t hits = 0, total = 0;
  ASSERT_NOT_NULL(x);
  hr_ann_t *a = build(x, N, D, 2, 1);
  ASSERT_NOT_NULL(a);
  hr_ann_scratch_t *s = hr_ann_scratch_new(a);
  for (int i = 0; i < NQ; i++) {
    /* exclude the true top 5, plus 200 ids spread over the catalogue */
    size_t ne = hr_ann_brute_search(x, N, D, q + i * D, 5, NULL, 0, top, NULL);
    uint32_t excl[5 + 200];
    size_t n_excl = 0;
    for (size_t j = 0; j < ne; j++)
      excl[n_excl++] = top[j];
    for (uint32_t j = 0; j < 200; j++)
      excl[n_excl++] = (j * 50 + (uint32_t)i) % N;
    for (size_t u = 1; u < n_excl; u++) /* sort, unique */
      for (size_t v = u; v > 0 && excl[v - 1] > excl[v]; v--) {
        uint32_t t = excl[v];
        excl[v] = excl[v - 1];
        excl[v - 1] = t;
      }
    size_t m = 0;
    for (size_t u = 0; u < n_excl; u++)
      if (m == 0 || excl[m - 1] != excl[u])
        excl[m++] = excl[u];
    n_excl = m;
    size_t n = hr_ann_search(a, s, q + i * D, K, 100, excl, n_excl, got, NULL);
    size_t nb = hr_ann_brute_search(x, N, D, q + i * D, K, excl, n_excl, want,
                                    NULL);
    ASSERT_EQ(n, K);
    ASSERT_EQ(nb, K);
    for (size_t j = 0; j < n; j++)
      for (size_t e = 0; e < n_excl; e++)
        ASSERT_MSG(got[j] != excl[e], "excluded id %u returned", got[j]);
    hits += overlap(got, n, want, nb);
    total += nb;
  }
  double recall = (double)hits / (double)total;
  ASSERT_MSG(recall >= 0.98, "filtered recall@10 %.4f < 0.98", recall);
  hr_ann_scratch_free(s);
  hr_ann_free(a);
  free(x);
  return 0;
}

/* Attribute filters: only items whose bit is set come back, and recall
 * against the brute-force top 10 of the allowed items holds for spread
 * (30 %, 10 %) and geometrically correlated (a half-space) filters. */
HR_TEST(ann_attribute_filter_keeps_recall) {
  enum { N = 10000, D = 32, NQ = 100, K = 10 };
  float *x = clustered(N + NQ, D, 20, 5), *q = x + (size_t)N * D;
  uint64_t allow[(N + 63) / 64];
  uint32_t *excl = malloc(sizeof(uint32_t) * N), got[K], want[K];
  ASSERT_NOT_NULL(x);
  ASSERT_NOT_NULL(excl);
  hr_ann_t *a = build(x, N, D, 2, 1);
  ASSERT_NOT_NULL(a);
  hr_ann_scratch_t *s = hr_ann_scratch_new(a);
  for (int f = 0; f < 3; f++) {
    size_t n_allow = 0, n_out = 0, hits = 0, total = 0;
    memset(allow, 0, sizeof(allow));
    for (uint32_t i = 0; i < N; i++) {
      int ok = f == 0 ? i % 10 < 3 : f == 1 ? i % 10 == 7 : x[(size_t)i * D] < 0;
      if (ok) {
        allow[i >> 6] |= (uint64_t)1 << (i & 63);
        n_allow++;
      } else {
        excl[n_out++] = i; /* the brute-force twin's view of the filter */
      }
    }
    for (int i = 0; i < NQ; i++) {
      size_t n = hr_ann_search_filter(a, s, q + i * D, K, 100, NULL, 0, allow,
                                      n_allow, got, NULL);
      size_t nb = hr_ann_brute_search(x, N, D, q + i * D, K, excl, n_out,
                                      want, NULL);
      ASSERT_EQ(n, K);
      ASSERT_EQ(nb, K);
      for (size_t j = 0; j < n; j++)
        ASSERT_MSG((allow[got[j] >> 6] >> (got[j] & 63)) & 1,
                   "filter %d: item %u is filtered out", f, got[j]);
      hits += overlap(got, n, want, nb);
      total += nb;
    }
    double recall = (double)hits / (double)total;
    ASSERT_MSG(recall >= 0.98, "filter %d (%zu items): recall@10 %.4f", f,
               n_allow, recall);
  }
  /* A filter nothing passes: no result, no endless search. */
  memset(allow, 0, sizeof(allow));
  ASSERT_EQ(hr_ann_search_filter(a, s, q, K, 100, NULL, 0, allow, 0, got,
                                 NULL), 0);
  hr_ann_scratch_free(s);
  hr_ann_free(a);
  free(excl);
  free(x);
  return 0;
}

HR_TEST(ann_save_open_identical) {
  enum { N = 3000, D = 24, K = 10 };
  float *x = clustered(N, D, 10, 5);
  char path[512];
  hr_error_t err = {0};
  snprintf(path, sizeof(path), "%s/index.bin", hr_test_tmpdir());
  hr_ann_t *a = build(x, N, D, 2, 7);
  ASSERT_NOT_NULL(a);
  ASSERT_EQ(hr_ann_save(a, path, &err), 0);
  hr_ann_t *b = hr_ann_open(path, &err);
  ASSERT_MSG(b != NULL, "open: %s", err.msg);
  ASSERT_EQ(hr_ann_size(b), N);
  ASSERT_EQ(hr_ann_dim(b), D);
  ASSERT_EQ(hr_ann_memory_bytes(b), hr_ann_memory_bytes(a));
  ASSERT_EQ(hr_ann_params(b)->M, 16);
  ASSERT_EQ(hr_ann_params(b)->seed, 7);
  hr_ann_scratch_t *sa = hr_ann_scratch_new(a), *sb = hr_ann_scratch_new(b);
  for (int i = 0; i < 100; i++) {
    uint32_t ia[K], ib[K];
    float fa[K], fb[K];
    const float *q = x + (size_t)(i * 29 % N) * D;
    size_t na = hr_ann_search(a, sa, q, K, 40, NULL, 0, ia, fa);
    size_t nb = hr_ann_search(b, sb, q, K, 40, NULL, 0, ib, fb);
    ASSERT_EQ(na, nb);
    ASSERT(memcmp(ia, ib, na * sizeof(uint32_t)) == 0);
    ASSERT(memcmp(fa, fb, na * sizeof(float)) == 0);
  }
  hr_ann_scratch_free(sa);
  hr_ann_scratch_free(sb);
  hr_ann_free(a);
  hr_ann_free(b);
  free(x);
  return 0;
}

/* Header field offsets of index.bin (docs/ann.md). */
#define H_VERSION 8
#define H_FILE_BYTES 16
#define H_N 24
#define H_ENTRY 60
#define H_OFF_LINKS0 96
#define H_BODY_CRC 120
#define H_HEADER_CRC 124

static void put32(char *b, size_t off, uint32_t v) { memcpy(b + off, &v, 4); }
static void put64(char *b, size_t off, uint64_t v) { memcpy(b + off, &v, 8); }
static void fix_crcs(char *b, size_t len) {
  put32(b, H_BODY_CRC, hr_crc32(0, b + 128, len - 128));
  put32(b, H_HEADER_CRC, hr_crc32(0, b, H_HEADER_CRC));
}

/* Writes a damaged copy and expects hr_ann_open to refuse it with `code`. */
static int expect_refused(const char *dir, const char *name, const char *buf,
                          size_t len, int code) {
  char path[512];
  hr_error_t err = {0};
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  if (spit(path, buf, len) != 0)
    HR_FAIL("cannot write %s", path);
  hr_ann_t *a = hr_ann_open(path, &err);
  if (a != NULL) {
    hr_ann_free(a);
    HR_FAIL("%s: opened, expected %s", name, hr_err_name(code));
  }
  ASSERT_MSG(err.code == code, "%s: got %s (%s), expected %s", name,
             hr_err_name(err.code), err.msg, hr_err_name(code));
  ASSERT_MSG(strstr(err.msg, path) != NULL, "message names no file: %s",
             err.msg);
  return 0;
}

HR_TEST(ann_open_refuses_damaged_files) {
  enum { N = 500, D = 16 };
  float *x = clustered(N, D, 5, 9);
  const char *dir = hr_test_tmpdir();
  char path[512];
  hr_error_t err = {0};
  size_t len;
  snprintf(path, sizeof(path), "%s/good.bin", dir);
  hr_ann_t *a = build(x, N, D, 1, 1);
  ASSERT_NOT_NULL(a);
  ASSERT_EQ(hr_ann_save(a, path, &err), 0);
  char *good = slurp(path, &len), *b = malloc(len);
  ASSERT_NOT_NULL(good);
  ASSERT_GT(len, 4096);
  hr_ann_t *ok = hr_ann_open(path, &err);
  ASSERT_NOT_NULL(ok);
  hr_ann_free(ok);

  err = (hr_error_t){0};
  ASSERT(hr_ann_open("/nonexistent/index.bin", &err) == NULL);
  ASSERT_EQ(err.code, HR_EIO);
  if (expect_refused(dir, "empty", good, 0, HR_EFORMAT) ||
      expect_refused(dir, "short-header", good, 100, HR_EFORMAT) ||
      expect_refused(dir, "truncated", good, len - 1, HR_EFORMAT) ||
      expect_refused(dir, "half", good, len / 2, HR_EFORMAT))
    return 1;
  memcpy(b, good, len);
  b[0] = 'X';
  if (expect_refused(dir, "magic", b, len, HR_EFORMAT))
    return 1;
  memcpy(b, good, len);
  put32(b, H_VERSION, 2);
  if (expect_refused(dir, "version", b, len, HR_EVERSION))
    return 1;
  memcpy(b, good, len);
  b[len - 7] ^= 0x10; /* a vector byte */
  if (expect_refused(dir, "flipped-body", b, len, HR_ECHECKSUM))
    return 1;
  memcpy(b, good, len);
  b[H_N] ^= 0x01; /* a header byte */
  if (expect_refused(dir, "flipped-header", b, len, HR_ECHECKSUM))
    return 1;
  /* Hostile values with correct checksums: refused by the bounds checks. */
  memcpy(b, good, len);
  put64(b, H_N, 0xfffffff0u);
  fix_crcs(b, len);
  if (expect_refused(dir, "huge-n", b, len, HR_EFORMAT))
    return 1;
  memcpy(b, good, len);
  put32(b, H_ENTRY, N);
  fix_crcs(b, len);
  if (expect_refused(dir, "entry", b, len, HR_EFORMAT))
    return 1;
  memcpy(b, good, len);
  put64(b, H_OFF_LINKS0, len - 64);
  fix_crcs(b, len);
  if (expect_refused(dir, "offset", b, len, HR_EFORMAT))
    return 1;
  memcpy(b, good, len);
  put64(b, H_FILE_BYTES, len + 64);
  fix_crcs(b, len);
  if (expect_refused(dir, "file-bytes", b, len, HR_EFORMAT))
    return 1;
  memcpy(b, good, len);
  { /* a neighbour id past n in the level-0 lists */
    uint64_t off;
    memcpy(&off, good + H_OFF_LINKS0, 8);
    put32(b, (size_t)off + 4, N + 3);
  }
  fix_crcs(b, len);
  if (expect_refused(dir, "neighbour", b, len, HR_EFORMAT))
    return 1;
  { /* The entry point's level-1 list names a node with no upper level: a
     * search's greedy walk would read that node's upper lists, which it
     * has not (upper_off 0xFFFFFFFF: far outside the link array). Such a
     * file crashed the server, at every start, before it was refused. */
    uint64_t off_levels, off_upper_off, off_upper;
    uint32_t entry, uo, zero = 0;
    memcpy(&off_levels, good + 80, 8);
    memcpy(&off_upper_off, good + 88, 8);
    memcpy(&off_upper, good + 104, 8);
    memcpy(&entry, good + H_ENTRY, 4);
    ASSERT_GT((unsigned char)good[off_levels + entry], 0);
    while (good[off_levels + zero] != 0)
      zero++;
    memcpy(&uo, good + off_upper_off + 4 * (size_t)entry, 4);
    memcpy(b, good, len);
    put32(b, (size_t)off_upper + 4 * (size_t)uo, zero);
    fix_crcs(b, len);
    if (expect_refused(dir, "upper-level", b, len, HR_EFORMAT))
      return 1;
  }
  { /* node 0's level-0 list names its first neighbour twice: a search
     * returned that item twice (found by fuzz_index) */
    uint64_t off;
    uint32_t first;
    memcpy(b, good, len);
    memcpy(&off, good + H_OFF_LINKS0, 8);
    memcpy(&first, good + off, 4);
    put32(b, (size_t)off + 4, first);
    fix_crcs(b, len);
    if (expect_refused(dir, "listed-twice", b, len, HR_EFORMAT))
      return 1;
  }
  { /* a stored row with an infinity, then one with bytes in its padding */
    uint64_t off_vecs;
    uint16_t inf = 0x7c00, one = 0x3c00;
    memcpy(&off_vecs, good + 112, 8);
    memcpy(b, good, len);
    memcpy(b + off_vecs + 2 * 3, &inf, 2);
    fix_crcs(b, len);
    if (expect_refused(dir, "infinite-row", b, len, HR_EFORMAT))
      return 1;
    (void)one;
  }
  { /* bytes in a row's padding (dim 20: rows of 24 halves) */
    float *x20 = clustered(100, 20, 3, 4);
    hr_ann_t *a20 = build(x20, 100, 20, 1, 1);
    char p20[512], *g20;
    size_t len20;
    uint64_t off_vecs;
    uint16_t one = 0x3c00;
    ASSERT_NOT_NULL(a20);
    snprintf(p20, sizeof(p20), "%s/good20.bin", dir);
    ASSERT_EQ(hr_ann_save(a20, p20, &err), 0);
    g20 = slurp(p20, &len20);
    ASSERT_NOT_NULL(g20);
    memcpy(&off_vecs, g20 + 112, 8);
    memcpy(g20 + off_vecs + 2 * 20, &one, 2);
    fix_crcs(g20, len20);
    if (expect_refused(dir, "padding", g20, len20, HR_EFORMAT))
      return 1;
    free(g20);
    hr_ann_free(a20);
    free(x20);
  }
  free(good);
  free(b);
  hr_ann_free(a);
  free(x);
  return 0;
}

HR_TEST(ann_kernels_agree_with_scalar) {
  uint64_t s = 11;
  int level = hr_ann__cpu_level();
  static float a[4096], q[4096];
  static uint16_t h[4096];
  static const int dims[] = {1, 3, 8, 15, 16, 17, 31, 32, 33, 64, 100, 128,
                             129, 300, 4096};
  for (size_t t = 0; t < sizeof(dims) / sizeof(dims[0]); t++) {
    int d = dims[t];
    size_t len = hr_ann__vstride(d);
    for (size_t i = 0; i < 4096; i++) {
      a[i] = rng_gauss(&s);
      q[i] = i < (size_t)d ? rng_gauss(&s) : 0.0f;
      h[i] = i < (size_t)d ? hr_ann__f32_to_f16(rng_gauss(&s)) : 0;
    }
    float r32 = hr_ann__dot32_scalar(a, q, (size_t)d);
    float r16 = hr_ann__dot16_scalar(q, h, len);
    double tol = 1e-5 * sqrt((double)d) * 4 + 1e-6;
    if (level >= 1) {
      ASSERT_DBL_NEAR(hr_ann__dot32_avx2(a, q, (size_t)d), r32, tol);
      ASSERT_DBL_NEAR(hr_ann__dot16_avx2(q, h, len), r16, tol);
    }
    if (level >= 2) {
      ASSERT_DBL_NEAR(hr_ann__dot32_avx512(a, q, (size_t)d), r32, tol);
      ASSERT_DBL_NEAR(hr_ann__dot16_avx512(q, h, len), r16, tol);
    }
    ASSERT_DBL_NEAR(hr_ann__dot32(a, q, (size_t)d), r32, tol);
    ASSERT_DBL_NEAR(hr_ann__dot16(q, h, len), r16, tol);
  }
  /* fp16 conversion: exact values, rounding to nearest even, limits */
  ASSERT_EQ(hr_ann__f32_to_f16(1.0f), 0x3c00);
  ASSERT_EQ(hr_ann__f32_to_f16(-2.0f), 0xc000);
  ASSERT_EQ(hr_ann__f32_to_f16(65504.0f), 0x7bff);
  ASSERT_EQ(hr_ann__f32_to_f16(1e6f), 0x7c00);
  ASSERT_EQ(hr_ann__f32_to_f16(1.0f + 1.0f / 2048), 0x3c00); /* tie: even */
  ASSERT_EQ(hr_ann__f32_to_f16(1.0f + 3.0f / 2048), 0x3c02); /* tie: even */
  ASSERT_EQ(hr_ann__f32_to_f16(5.9604645e-8f), 0x0001);      /* 2^-24 */
  ASSERT_EQ(hr_ann__f32_to_f16(6.1035156e-5f), 0x0400);      /* 2^-14 */
  for (uint32_t v = 0; v < 0x7c00; v++) /* every finite half round-trips */
    ASSERT_EQ(hr_ann__f32_to_f16(hr_ann__f16_to_f32((uint16_t)v)), v);
  ASSERT(strcmp(hr_ann_kernel_name(),
                level == 2 ? "avx512" : level == 1 ? "avx2" : "scalar") == 0);
  return 0;
}

HR_TEST(ann_build_is_deterministic) {
  enum { N = 4000, D = 16 };
  float *x = clustered(N, D, 8, 13);
  const char *dir = hr_test_tmpdir();
  char p[4][512];
  char *buf[4];
  size_t len[4];
  hr_error_t err = {0};
  static const struct {
    int threads;
    uint64_t seed;
  } runs[4] = {{2, 5}, {2, 5}, {1, 5}, {2, 6}};
  for (int r = 0; r < 4; r++) {
    snprintf(p[r], sizeof(p[r]), "%s/run%d.bin", dir, r);
    hr_ann_t *a = build(x, N, D, runs[r].threads, runs[r].seed);
    ASSERT_NOT_NULL(a);
    ASSERT_EQ(hr_ann_save(a, p[r], &err), 0);
    hr_ann_free(a);
    buf[r] = slurp(p[r], &len[r]);
    ASSERT_NOT_NULL(buf[r]);
  }
  /* same seed and threads: byte-identical; the header records the thread
   * count, so compare the 1-thread body too (the graph does not depend on
   * it); another seed gives another graph */
  ASSERT_EQ(len[0], len[1]);
  ASSERT(memcmp(buf[0], buf[1], len[0]) == 0);
  ASSERT_EQ(len[0], len[2]);
  ASSERT(memcmp(buf[0] + 128, buf[2] + 128, len[0] - 128) == 0);
  ASSERT(len[0] != len[3] || memcmp(buf[0] + 128, buf[3] + 128, len[0] - 128));
  for (int r = 0; r < 4; r++)
    free(buf[r]);
  free(x);
  return 0;
}

HR_TEST(ann_tiny_catalogues) {
  float x[3 * 4] = {1, 0, 0, 0, 0, 1, 0, 0, 0.6f, 0.8f, 0, 0};
  float q[4] = {0, 1, 0, 0};
  uint32_t ids[10], excl_all[3] = {0, 1, 2}, excl1[1] = {1};
  float sc[10];
  hr_error_t err = {0};

  /* n = 1 */
  hr_ann_t *a = build(x, 1, 4, 2, 1);
  ASSERT_NOT_NULL(a);
  hr_ann_scratch_t *s = hr_ann_scratch_new(a);
  ASSERT_EQ(hr_ann_search(a, s, q, 10, 10, NULL, 0, ids, sc), 1);
  ASSERT_EQ(ids[0], 0);
  ASSERT_EQ(hr_ann_search(a, s, q, 10, 10, excl_all, 1, ids, sc), 0);
  hr_ann_scratch_free(s);
  hr_ann_free(a);

  /* n < k, exclusions, k = 0, ef < k */
  a = build(x, 3, 4, 2, 1);
  ASSERT_NOT_NULL(a);
  s = hr_ann_scratch_new(a);
  ASSERT_EQ(hr_ann_search(a, s, q, 10, 1, NULL, 0, ids, sc), 3);
  ASSERT_EQ(ids[0], 1);
  ASSERT_EQ(ids[1], 2);
  ASSERT_EQ(ids[2], 0);
  ASSERT_DBL_NEAR(sc[0], 1.0, 1e-6);
  ASSERT_DBL_NEAR(sc[1], 0.8, 1e-3);
  ASSERT_EQ(hr_ann_search(a, s, q, 10, 10, excl1, 1, ids, NULL), 2);
  ASSERT_EQ(ids[0], 2);
  ASSERT_EQ(hr_ann_search(a, s, q, 10, 10, excl_all, 3, ids, sc), 0);
  ASSERT_EQ(hr_ann_search(a, s, q, 0, 10, NULL, 0, ids, sc), 0);
  ASSERT_EQ(hr_ann_brute_search(x, 3, 4, q, 10, excl1, 1, ids, sc), 2);
  ASSERT_EQ(ids[0], 2);
  ASSERT_EQ(ids[1], 0);
  ASSERT_EQ(hr_ann_brute_search(x, 3, 4, q, 10, excl_all, 3, ids, sc), 0);
  hr_ann_scratch_free(s);
  hr_ann_free(a);

  /* invalid arguments */
  ASSERT(hr_ann_build(NULL, 3, 4, NULL, &err) == NULL);
  ASSERT_EQ(err.code, HR_EINVAL);
  err = (hr_error_t){0};
  ASSERT(hr_ann_build(x, 3, 0, NULL, &err) == NULL);
  ASSERT_EQ(err.code, HR_EINVAL);
  hr_ann_free(NULL);
  hr_ann_scratch_free(NULL);
  return 0;
}
