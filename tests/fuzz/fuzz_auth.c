/* fuzz_auth.c -- credentials from request headers: the Authorization and
 * X-API-Key values through hr_auth_identify, with two API keys and two
 * token secrets configured, then hr_auth_allow.
 *
 * Input: a selector byte (bit 0: the bytes are X-API-Key, else
 * Authorization), then the header value (cut at the first NUL, as a header
 * would be). An accepted token must carry a user id of 1 to 128 bytes of
 * UTF-8 and an expiry within auth.token_max_ttl_s of now; an accepted key
 * one of the configured names; a refusal must be HR_EUNAUTH. */
#include "fuzz.h"

#include <string.h>

#include "hr/auth.h"
#include "hr/config.h"

#define NOW 1767225600LL

static hr_config_t cfg;

static void setup(void) {
  static int done;
  char hex[65];
  if (done++)
    return;
  hr_config_defaults(&cfg);
  hr_auth_key_hash("hrk_fuzz_key_number_one", hex);
  snprintf(cfg.auth.api_keys[0], sizeof(cfg.auth.api_keys[0]), "one:%s", hex);
  hr_auth_key_hash("hrk_fuzz_key_number_two", hex);
  snprintf(cfg.auth.api_keys[1], sizeof(cfg.auth.api_keys[1]), "two:%s", hex);
  cfg.auth.n_api_keys = 2;
  snprintf(cfg.auth.token_secrets[0], sizeof(cfg.auth.token_secrets[0]),
           "fuzz-secret-one-0123456789abcdefghij");
  snprintf(cfg.auth.token_secrets[1], sizeof(cfg.auth.token_secrets[1]),
           "fuzz-secret-two-0123456789abcdefghij");
  cfg.auth.n_token_secrets = 2;
}

HR_FUZZ_TARGET(auth) {
  char value[1024];
  hr_caller_t who;
  hr_error_t err = {0};

  if (size < 1)
    return 0;
  setup();
  size_t n = size - 1 < sizeof(value) - 1 ? size - 1 : sizeof(value) - 1;
  memcpy(value, data + 1, n);
  value[n] = '\0';
  int rc = (data[0] & 1) ? hr_auth_identify(&cfg, NULL, value, NOW, &who, &err)
                         : hr_auth_identify(&cfg, value, NULL, NOW, &who, &err);
  if (rc != 0) {
    FUZZ_EXPECT(rc == HR_EUNAUTH && err.code == rc, "rc %d", rc);
    return 0;
  }
  hr_fuzz_accepted++;
  if (who.kind == HR_CALLER_TOKEN) {
    size_t ul = strlen(who.user_id);
    FUZZ_EXPECT(ul >= 1 && ul <= HR_AUTH_MAX_USER &&
                    hr_utf8_valid(who.user_id, ul),
                "user id of %zu bytes", ul);
    FUZZ_EXPECT(who.expires > NOW &&
                    who.expires - NOW <= cfg.auth.token_max_ttl_s,
                "expiry %lld", who.expires);
    memset(&err, 0, sizeof(err));
    FUZZ_EXPECT(hr_auth_allow(&who, "token", who.user_id, "fuzz", &err) == 0,
                "its own user refused");
    FUZZ_EXPECT(hr_auth_allow(&who, "key", NULL, "fuzz", &err) ==
                    HR_EFORBIDDEN,
                "a token passed for a key");
  } else if (who.kind == HR_CALLER_KEY) {
    FUZZ_EXPECT(strcmp(who.name, "one") == 0 || strcmp(who.name, "two") == 0,
                "key name %s", who.name);
  }
  return 0;
}
