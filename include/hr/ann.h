/* ann.h -- approximate nearest-neighbour retrieval by inner product: an HNSW
 * graph over item embeddings, and its exact brute-force twin.
 *
 * The trainer builds an index after the item vectors (hr_ann_build) and
 * writes it to the model directory (hr_ann_save -> index.bin); the server
 * maps it read-only (hr_ann_open) and searches it on every request thread.
 * For cosine similarity, normalise the vectors (and queries) first.
 *
 * Threads: a built or opened index is immutable; any number of threads may
 * search it at once, each with its own hr_ann_scratch_t (visited marks,
 * heaps: O(n) bytes, allocate once per thread and reuse). Building uses
 * `threads` worker threads and is deterministic for a given (seed, threads,
 * input). Errors: constructors return NULL with `err` set; others return 0
 * or a negative HR_E* code (err.h). Nothing here logs.
 *
 * index.bin starts with a header (magic, format version, dim, counts,
 * parameters, a CRC-32 of everything after the header); hr_ann_open
 * refuses a file whose magic, version, sizes or checksum do not add up, with
 * a message naming the file. Format and algorithm: docs/ann.md. */
#ifndef HR_ANN_H
#define HR_ANN_H

#include <stddef.h>
#include <stdint.h>

#include "hr/err.h"

#define HR_ANN_MAGIC "HRANN001" /* first 8 bytes of index.bin */
#define HR_ANN_FORMAT_VERSION 1

typedef struct hr_ann hr_ann_t;
typedef struct hr_ann_scratch hr_ann_scratch_t;

typedef struct {
  int M;               /* links per node on upper levels (level 0: 2*M); 16 */
  int ef_construction; /* beam width while building; 200 */
  int threads;         /* build threads; 2 */
  uint64_t seed;       /* level draws and tie-breaks; 1 */
  int build_f32;       /* 1: build on the float input instead of the fp16
                          rows; needed when item-item inner products differ
                          below fp16 resolution (MIPS-augmented rows); 0 */
} hr_ann_params_t;

/** Fill `p` with the defaults above. */
void hr_ann_params_default(hr_ann_params_t *p);

/* ----------------------------------------------------------- lifecycle */

/** Build an index over n row-major vectors of `dim` floats (borrowed for
 *  the call; the index keeps what it needs). n >= 1, 1 <= dim <= 4096.
 *  Returns a new index or NULL (HR_EINVAL, HR_ENOMEM). */
hr_ann_t *hr_ann_build(const float *x, size_t n, int dim,
                       const hr_ann_params_t *p, hr_error_t *err);

/** Write the index to `path` (written to path.tmp, fsync'd, renamed).
 *  Returns 0 or HR_EIO. */
int hr_ann_save(const hr_ann_t *a, const char *path, hr_error_t *err);

/** Map `path` read-only and validate it (HR_EIO, HR_EFORMAT, HR_EVERSION,
 *  HR_ECHECKSUM). Load time is a checksum pass, not a rebuild. */
hr_ann_t *hr_ann_open(const char *path, hr_error_t *err);

/** hr_ann_open over `len` bytes in memory (copied; `name` stands for the
 *  file in messages): the same validation. */
hr_ann_t *hr_ann_open_mem(const void *buf, size_t len, const char *name,
                          hr_error_t *err);

/** Release an index (built or opened). NULL is a no-op. */
void hr_ann_free(hr_ann_t *a);

/** Per-thread search scratch for `a` (or any index with no more items). */
hr_ann_scratch_t *hr_ann_scratch_new(const hr_ann_t *a);
void hr_ann_scratch_free(hr_ann_scratch_t *s);

/* ------------------------------------------------------------- search */

/** The k items with the largest inner product with q (dim floats), best
 *  first, into ids/scores (k entries each; scores may be NULL). `ef` is the
 *  beam width (raised to k when smaller). Items listed in `excl` (sorted
 *  ascending, unique dense ids) are never returned, and the search widens
 *  so that excluding them costs no recall. Scores are the inner products
 *  of the float query with the index's stored fp16 rows (the only copy of
 *  the items it keeps), within about 1e-3 of the float32 ones; rescore with
 *  the model's own vectors where exact values matter. Returns the number of
 *  results (< k only when fewer items remain, or 0 when `s` was made for an
 *  index with fewer items). Thread-safe with one scratch per thread. */
size_t hr_ann_search(const hr_ann_t *a, hr_ann_scratch_t *s, const float *q,
                     size_t k, int ef, const uint32_t *excl, size_t n_excl,
                     uint32_t *ids, float *scores);

/** hr_ann_search restricted to a filter: only items whose bit is set in
 *  `allow` (a bitmap of ceil(n/64) words, bit i%64 of word i/64 for item i)
 *  are returned; `n_allow` is the number of bits set. Filtered-out items
 *  are traversed but never kept, and the beam goes on until it holds ef
 *  allowed items. Recall holds for filters unrelated to the vectors
 *  (>= 0.98 at ef 100 in the unit tests), but a filter correlated with the
 *  query direction (a category the user does not favour) makes the search
 *  cross long filtered-out regions: on a 622k-item factor model it reached
 *  recall@100 0.85-0.95 at 3-4 ms (docs/benchmarks.md). The server answers
 *  filtered requests with an exact pass instead (hr_model_retrieve, ef 0).
 *  allow == NULL means no filter. Returns 0 when n_allow is 0. */
size_t hr_ann_search_filter(const hr_ann_t *a, hr_ann_scratch_t *s,
                            const float *q, size_t k, int ef,
                            const uint32_t *excl, size_t n_excl,
                            const uint64_t *allow, size_t n_allow,
                            uint32_t *ids, float *scores);
/** The index's own (fp16) inner products of q with the n items `ids`
 *  into out: a first pass over many candidates at half the memory traffic
 *  of the float rows, within about 1e-3 of the float32 ones (rescore the
 *  best with the model's vectors). `s` is the thread's scratch. */
void hr_ann_score(const hr_ann_t *a, hr_ann_scratch_t *s, const float *q,
                  const uint32_t *ids, size_t n, float *out);

/** Optional exact re-ranking (an addition to the first contract): borrow
 *  float32 rows of the same items (n x dim, row-major; typically the model's
 *  item vectors, which the server maps anyway, so the index stays at fp16
 *  size). Searches then rescore their best max(2k, k+10) candidates with
 *  them: scores are exact float inner products and recall is no longer
 *  capped by fp16 rounding (0.9988 at dim 64 on ../shared/bench data).
 *  The rows must outlive the index or be detached with x = NULL. Not
 *  thread-safe against searches in flight: set it before sharing `a`. */
void hr_ann_set_rerank_vectors(hr_ann_t *a, const float *x);

/** The exact twin: the same contract computed by scoring every vector
 *  (OpenBLAS sgemv) and selecting the top k. x is n x dim, row-major. */
size_t hr_ann_brute_search(const float *x, size_t n, int dim, const float *q,
                           size_t k, const uint32_t *excl, size_t n_excl,
                           uint32_t *ids, float *scores);

/** Whether the index holds exactly these vectors (n rows of dim floats):
 *  -1 when every stored row is the half-precision value of x's row, else
 *  the first row that is not (0 also for another count or dimension). An
 *  index is bound to the item vectors it was built from: one from another
 *  fit of the same data has the same shape and other rows. O(n x dim). */
long hr_ann_rows_match(const hr_ann_t *a, const float *x, size_t n, int dim);

/* ------------------------------------------------------- introspection */

size_t hr_ann_size(const hr_ann_t *a);      /* number of items */
int hr_ann_dim(const hr_ann_t *a);
/** Bytes the index occupies in memory (everything search touches). */
size_t hr_ann_memory_bytes(const hr_ann_t *a);
const hr_ann_params_t *hr_ann_params(const hr_ann_t *a);
/** Name of the distance kernel chosen at start ("avx512", "avx2",
 *  "scalar"). */
const char *hr_ann_kernel_name(void);

#endif
