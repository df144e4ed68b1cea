/* ann_internal.h -- private layout of the HNSW index shared by hnsw.c (build
 * and search), io.c (index.bin) and kernels.c (distances). Not installed.
 *
 * Layout (the same in memory and in index.bin, see docs/ann.md): flat arrays
 * indexed by the dense item id, offsets computed once.
 *   levels[n]        u8, the node's top level
 *   upper_off[n]     u32, start of the node's upper lists in `upper`
 *                    (UINT32_MAX for level-0 nodes)
 *   links0[n * m0]   u32, level-0 neighbours, m0 = 2M slots per node (128 B
 *                    at M=16: two cache lines), HR_ANN_NONE-terminated
 *   upper[n_upper]   u32, level l >= 1 of node i at upper_off[i]+(l-1)*M
 *   vecs[n * vstride] fp16 vectors, each row padded with zeros to vstride
 *                    halves (64 at dim 64: 128 B, cache-line aligned)
 * The fp16 vectors are the only copy of the items the index keeps: they are
 * used for the traversal and for the returned scores. */
#ifndef HR_ANN_INTERNAL_H
#define HR_ANN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "hr/ann.h"

#define HR_ANN_NONE UINT32_MAX
#define HR_ANN_MAX_LEVEL 31
#define HR_ANN_MAX_M 128
#define HR_ANN_VEC_F16 1

struct hr_ann {
  size_t n;
  int dim;
  size_t vstride;        /* halves per stored row (multiple of 8) */
  int M, m0;
  hr_ann_params_t params;
  uint32_t max_level, entry;
  size_t n_upper;
  const uint8_t *levels;
  const uint32_t *upper_off;
  const uint32_t *links0;
  const uint32_t *upper;
  const uint16_t *vecs;
  const float *rerank_x; /* borrowed float rows, or NULL */
  void *map;             /* opened: the mmap'd file */
  size_t map_len;
  void *own[5];          /* built: the malloc'd arrays */
};

/* Stored row stride in halves for a dimension: whole cache lines from 32
 * dims up, 16-byte multiples below (so small dims do not waste a line). */
static inline size_t hr_ann__vstride(int dim) {
  size_t d = (size_t)dim;
  return d >= 32 ? (d + 31) / 32 * 32 : (d + 7) / 8 * 8;
}

/* ---- io.c ---- */
/* Where index.bin's header keeps its two CRC-32s (checked in io.c). */
#define HR_ANN__BODY_CRC_OFF 120   /* of bytes [128, file_bytes) */
#define HR_ANN__HEADER_CRC_OFF 124 /* of the 124 bytes before it */

/* ---- kernels.c ---- */
typedef float (*hr_ann_dot32_fn)(const float *a, const float *b, size_t d);
/* q is padded with zeros to len floats; len is a multiple of 8. */
typedef float (*hr_ann_dot16_fn)(const float *q, const uint16_t *h,
                                 size_t len);

/* out[0..len) = the fp16 row h as floats; len is a multiple of 8. */
typedef void (*hr_ann_f16row_fn)(const uint16_t *h, float *out, size_t len);

extern hr_ann_dot32_fn hr_ann__dot32;
extern hr_ann_dot16_fn hr_ann__dot16;
extern hr_ann_f16row_fn hr_ann__f16row;

float hr_ann__dot32_scalar(const float *a, const float *b, size_t d);
float hr_ann__dot16_scalar(const float *q, const uint16_t *h, size_t len);
float hr_ann__dot32_avx2(const float *a, const float *b, size_t d);
float hr_ann__dot16_avx2(const float *q, const uint16_t *h, size_t len);
float hr_ann__dot32_avx512(const float *a, const float *b, size_t d);
float hr_ann__dot16_avx512(const float *q, const uint16_t *h, size_t len);
void hr_ann__f16row_scalar(const uint16_t *h, float *out, size_t len);
void hr_ann__f16row_avx2(const uint16_t *h, float *out, size_t len);
void hr_ann__f16row_avx512(const uint16_t *h, float *out, size_t len);
/* 0 scalar, 1 avx2+fma+f16c, 2 avx512f (what the CPU supports). */
int hr_ann__cpu_level(void);

uint16_t hr_ann__f32_to_f16(float f);
float hr_ann__f16_to_f32(uint16_t h);

#endif
