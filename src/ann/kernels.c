/* kernels.c -- inner-product kernels (float32 x float32 for building,
 * float32 query x fp16 item for searching) in scalar, AVX2+FMA+F16C and
 * AVX-512F flavours. Each SIMD function carries its own target attribute, so
 * the file builds with plain -O2 and the best flavour the CPU runs is picked
 * once, by a constructor, before main. */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "ann_internal.h"

/* ------------------------------------------------------------ fp16 */

uint16_t hr_ann__f32_to_f16(float f) {
  uint32_t x, sign, absx, h, rem;
  memcpy(&x, &f, 4);
  sign = (x >> 16) & 0x8000u;
  absx = x & 0x7fffffffu;
  if (absx >= 0x7f800000u) /* inf, nan */
    return (uint16_t)(sign | (absx > 0x7f800000u ? 0x7e00u : 0x7c00u));
  if (absx >= 0x47800000u) /* >= 65536: overflow */
    return (uint16_t)(sign | 0x7c00u);
  if (absx < 0x38800000u) { /* below 2^-14: subnormal half (or zero) */
    float a;
    memcpy(&a, &absx, 4);
    return (uint16_t)(sign | (uint32_t)rintf(a * 16777216.0f));
  }
  h = ((absx >> 23) - 112u) << 10 | (absx & 0x7fffffu) >> 13;
  rem = absx & 0x1fffu; /* round to nearest, ties to even */
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u)))
    h++;
  return (uint16_t)(sign | h);
}

float hr_ann__f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu,
           m = h & 0x3ffu, x;
  float f;
  if (e == 0) {
    f = (float)m * (1.0f / 16777216.0f);
    return sign ? -f : f;
  }
  x = e == 31 ? sign | 0x7f800000u | m << 13 : sign | (e + 112u) << 23 | m << 13;
  memcpy(&f, &x, 4);
  return f;
}

/* ---------------------------------------------------------- scalar */

float hr_ann__dot32_scalar(const float *a, const float *b, size_t d) {
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  size_t i = 0;
  for (; i + 4 <= d; i += 4) {
    s0 += a[i] * b[i];
    s1 += a[i + 1] * b[i + 1];
    s2 += a[i + 2] * b[i + 2];
    s3 += a[i + 3] * b[i + 3];
  }
  for (; i < d; i++)
    s0 += a[i] * b[i];
  return (s0 + s1) + (s2 + s3);
}

float hr_ann__dot16_scalar(const float *q, const uint16_t *h, size_t len) {
  float s0 = 0, s1 = 0;
  for (size_t i = 0; i < len; i += 2) {
    s0 += q[i] * hr_ann__f16_to_f32(h[i]);
    s1 += q[i + 1] * hr_ann__f16_to_f32(h[i + 1]);
  }
  return s0 + s1;
}

void hr_ann__f16row_scalar(const uint16_t *h, float *out, size_t len) {
  for (size_t i = 0; i < len; i++)
    out[i] = hr_ann__f16_to_f32(h[i]);
}

/* ------------------------------------------------------------ AVX2 */

__attribute__((target("avx2,f16c")))
void hr_ann__f16row_avx2(const uint16_t *h, float *out, size_t len) {
  for (size_t i = 0; i < len; i += 8)
    _mm256_storeu_ps(out + i,
                     _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i))));
}

__attribute__((target("avx2,fma"))) static inline float hsum256(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

__attribute__((target("avx2,fma")))
float hr_ann__dot32_avx2(const float *a, const float *b, size_t d) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  size_t i = 0;
  float t;
  for (; i + 16 <= d; i += 16) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8),
                         s1);
  }
  if (i + 8 <= d) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    i += 8;
  }
  t = hsum256(_mm256_add_ps(s0, s1));
  for (; i < d; i++)
    t += a[i] * b[i];
  return t;
}

__attribute__((target("avx2,fma,f16c")))
float hr_ann__dot16_avx2(const float *q, const uint16_t *h, size_t len) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= len; i += 16) {
    __m256 h0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i)));
    __m256 h1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i + 8)));
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), h0, s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), h1, s1);
  }
  if (i < len)
    s0 = _mm256_fmadd_ps(
        _mm256_loadu_ps(q + i),
        _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i))), s0);
  return hsum256(_mm256_add_ps(s0, s1));
}

/* --------------------------------------------------------- AVX-512 */

__attribute__((target("avx512f")))
float hr_ann__dot32_avx512(const float *a, const float *b, size_t d) {
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= d; i += 32) {
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16),
                         _mm512_loadu_ps(b + i + 16), s1);
  }
  if (i + 16 <= d) {
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    i += 16;
  }
  if (i < d) {
    __mmask16 m = (__mmask16)((1u << (d - i)) - 1u);
    s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i),
                         _mm512_maskz_loadu_ps(m, b + i), s1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

__attribute__((target("avx512f")))
float hr_ann__dot16_avx512(const float *q, const uint16_t *h, size_t len) {
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= len; i += 32) {
    __m512 h0 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(h + i)));
    __m512 h1 =
        _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(h + i + 16)));
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), h0, s0);
    s1 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i + 16), h1, s1);
  }
  if (i + 16 <= len) {
    s0 = _mm512_fmadd_ps(
        _mm512_loadu_ps(q + i),
        _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(h + i))), s0);
    i += 16;
  }
  if (i < len) { /* len is a multiple of 8: one half-register left */
    __m512 hv = _mm512_cvtph_ps(
        _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(h + i))));
    s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(0x00ff, q + i), hv, s1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

__attribute__((target("avx512f")))
void hr_ann__f16row_avx512(const uint16_t *h, float *out, size_t len) {
  size_t i = 0;
  for (; i + 16 <= len; i += 16)
    _mm512_storeu_ps(out + i, _mm512_cvtph_ps(_mm256_loadu_si256(
                                  (const __m256i *)(h + i))));
  if (i < len)
    _mm512_mask_storeu_ps(out + i, 0x00ff,
                          _mm512_cvtph_ps(_mm256_castsi128_si256(
                              _mm_loadu_si128((const __m128i *)(h + i)))));
}

/* ------------------------------------------------------- selection */

hr_ann_dot32_fn hr_ann__dot32 = hr_ann__dot32_scalar;
hr_ann_dot16_fn hr_ann__dot16 = hr_ann__dot16_scalar;
hr_ann_f16row_fn hr_ann__f16row = hr_ann__f16row_scalar;
static int cpu_level;

int hr_ann__cpu_level(void) {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f"))
    return 2;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    unsigned a, b, c, d; /* F16C is CPUID.1:ECX bit 29 */
    __asm__("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(1), "c"(0));
    if (c >> 29 & 1u)
      return 1;
  }
  return 0;
}

__attribute__((constructor)) static void pick_kernels(void) {
  cpu_level = hr_ann__cpu_level();
  if (cpu_level == 2) {
    hr_ann__dot32 = hr_ann__dot32_avx512;
    hr_ann__dot16 = hr_ann__dot16_avx512;
    hr_ann__f16row = hr_ann__f16row_avx512;
  } else if (cpu_level == 1) {
    hr_ann__dot32 = hr_ann__dot32_avx2;
    hr_ann__dot16 = hr_ann__dot16_avx2;
    hr_ann__f16row = hr_ann__f16row_avx2;
  }
}

const char *hr_ann_kernel_name(void) {
  return cpu_level == 2 ? "avx512" : cpu_level == 1 ? "avx2" : "scalar";
}
