/* sha256.h -- SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104).
 *
 * What the credentials need: API keys are stored as SHA-256 hex digests,
 * user tokens carry an HMAC-SHA256 signature (docs/security.md). Plain C,
 * no state, thread-safe; tested against FIPS 180-4's examples and the
 * RFC 4231 vectors. */
#ifndef HR_SHA256_H
#define HR_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define HR_SHA256_LEN 32

typedef struct {
  uint32_t h[8];
  uint64_t bytes;      /* message length so far */
  uint8_t buf[64];
  size_t n;            /* bytes in buf */
} hr_sha256_t;

void hr_sha256_init(hr_sha256_t *s);
void hr_sha256_update(hr_sha256_t *s, const void *data, size_t n);
void hr_sha256_final(hr_sha256_t *s, uint8_t out[HR_SHA256_LEN]);

/** SHA-256 of n bytes in one call. */
void hr_sha256(const void *data, size_t n, uint8_t out[HR_SHA256_LEN]);

/** HMAC-SHA256 of msg under key (any length). */
void hr_hmac_sha256(const void *key, size_t key_len, const void *msg,
                    size_t msg_len, uint8_t out[HR_SHA256_LEN]);

/** 1 when the n bytes of a and b are equal, in time that does not depend
 *  on where they differ. */
int hr_ct_equal(const void *a, const void *b, size_t n);

#endif
