/* test_sha256.c -- SHA-256 against FIPS 180-4's examples, HMAC-SHA256
 * against RFC 4231's test cases. */
#include "test.h"

#include <stdlib.h>

#include "hr/sha256.h"

static void hex(const uint8_t *d, size_t n, char *out) {
  for (size_t i = 0; i < n; i++)
    snprintf(out + 2 * i, 3, "%02x", d[i]);
}

HR_TEST(sha256_fips_examples) {
  static const struct {
    const char *msg, *digest;
  } v[] = {
      {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
      {"abc",
       "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
      {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
  };
  uint8_t d[HR_SHA256_LEN];
  char h[65];
  for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
    hr_sha256(v[i].msg, strlen(v[i].msg), d);
    hex(d, sizeof(d), h);
    ASSERT_STR_EQ(h, v[i].digest);
  }
  /* a million 'a', fed in uneven pieces across block boundaries */
  char *a = malloc(1000000);
  ASSERT_NOT_NULL(a);
  memset(a, 'a', 1000000);
  hr_sha256_t s;
  hr_sha256_init(&s);
  for (size_t off = 0, step = 1; off < 1000000; off += step, step = step * 7 % 191 + 1)
    hr_sha256_update(&s, a + off, off + step > 1000000 ? 1000000 - off : step);
  hr_sha256_final(&s, d);
  free(a);
  hex(d, sizeof(d), h);
  ASSERT_STR_EQ(h,
                "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  return 0;
}

HR_TEST(sha256_hmac_rfc4231) {
  uint8_t k20[20], kaa[131], k25[25], d50[50], c50[50], out[HR_SHA256_LEN];
  char h[65];
  memset(k20, 0x0b, sizeof(k20));
  memset(kaa, 0xaa, sizeof(kaa));
  for (int i = 0; i < 25; i++)
    k25[i] = (uint8_t)(i + 1);
  memset(d50, 0xdd, sizeof(d50));
  memset(c50, 0xcd, sizeof(c50));
  const char *m6 = "Test Using Larger Than Block-Size Key - Hash Key First";
  const char *m7 = "This is a test using a larger than block-size key and a "
                   "larger than block-size data. The key needs to be hashed "
                   "before being used by the HMAC algorithm.";
  const struct {
    const void *key;
    size_t klen;
    const void *msg;
    size_t mlen;
    const char *mac;
  } v[] = {
      {k20, 20, "Hi There", 8,
       "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
      {"Jefe", 4, "what do ya want for nothing?", 28,
       "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
      {kaa, 20, d50, 50,
       "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
      {k25, 25, c50, 50,
       "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
      {kaa, 131, m6, strlen(m6),
       "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
      {kaa, 131, m7, strlen(m7),
       "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
  };
  for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
    hr_hmac_sha256(v[i].key, v[i].klen, v[i].msg, v[i].mlen, out);
    hex(out, sizeof(out), h);
    ASSERT_MSG(strcmp(h, v[i].mac) == 0, "case %zu: %s", i + 1, h);
  }
  ASSERT(hr_ct_equal("abcd", "abcd", 4));
  ASSERT(!hr_ct_equal("abcd", "abce", 4));
  return 0;
}
