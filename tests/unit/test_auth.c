/* test_auth.c -- API keys, user tokens, what they allow, token buckets. */
#include "test.h"

#include <stdlib.h>
#include <time.h>

#include "hr/auth.h"
#include "hr/config.h"

#define SECRET "0123456789abcdef0123456789abcdef-secret"
#define NOW 1767225600LL

static void cfg_with_auth(hr_config_t *c) {
  char hex[65];
  hr_config_defaults(c);
  hr_auth_key_hash("hrk_shop_backend_key_1", hex);
  snprintf(c->auth.api_keys[0], sizeof(c->auth.api_keys[0]), "shop:%s", hex);
  hr_auth_key_hash("hrk_batch_jobs_key_2222", hex);
  snprintf(c->auth.api_keys[1], sizeof(c->auth.api_keys[1]), "batch:%s", hex);
  c->auth.n_api_keys = 2;
  snprintf(c->auth.token_secrets[0], sizeof(c->auth.token_secrets[0]), "%s",
           "a-newer-secret-of-32-characters-or-more");
  snprintf(c->auth.token_secrets[1], sizeof(c->auth.token_secrets[1]), "%s",
           SECRET);
  c->auth.n_token_secrets = 2;
}

static int identify(const hr_config_t *c, const char *authz, const char *xkey,
                    hr_caller_t *who, hr_error_t *err) {
  memset(err, 0, sizeof(*err));
  return hr_auth_identify(c, authz, xkey, NOW, who, err);
}

HR_TEST(auth_api_keys) {
  hr_config_t c;
  hr_caller_t who;
  hr_error_t err;
  cfg_with_auth(&c);
  ASSERT_EQ(hr_config_validate(&c, &err), 0);

  ASSERT_EQ(identify(&c, NULL, NULL, &who, &err), 0);
  ASSERT_EQ(who.kind, HR_CALLER_ANONYMOUS);
  ASSERT_EQ(identify(&c, "Bearer hrk_batch_jobs_key_2222", NULL, &who, &err),
            0);
  ASSERT_EQ(who.kind, HR_CALLER_KEY);
  ASSERT_STR_EQ(who.name, "batch");
  ASSERT_EQ(identify(&c, NULL, "hrk_shop_backend_key_1", &who, &err), 0);
  ASSERT_STR_EQ(who.name, "shop");
  /* an unknown key, a near miss, a short one, another scheme */
  ASSERT_EQ(identify(&c, "Bearer hrk_shop_backend_key_2", NULL, &who, &err),
            HR_EUNAUTH);
  ASSERT(strstr(err.msg, "unknown API key") != NULL);
  ASSERT_EQ(identify(&c, "Bearer short", NULL, &who, &err), HR_EUNAUTH);
  ASSERT_EQ(identify(&c, "Basic aGk6dGhlcmU=", NULL, &who, &err), HR_EUNAUTH);
  ASSERT(strstr(err.msg, "Bearer") != NULL);
  ASSERT_EQ(identify(&c, NULL, "hrk_shop_backend_key_1\x01", &who, &err),
            HR_EUNAUTH);
  /* the config refuses a malformed entry */
  hr_config_t bad = c;
  snprintf(bad.auth.api_keys[0], sizeof(bad.auth.api_keys[0]), "shop:abc");
  memset(&err, 0, sizeof(err));
  ASSERT_EQ(hr_config_validate(&bad, &err), HR_EINVAL);
  ASSERT_STR_EQ(err.field, "auth.api_keys");
  return 0;
}

HR_TEST(auth_user_tokens) {
  hr_config_t c;
  hr_caller_t who;
  hr_error_t err;
  char tok[HR_AUTH_TOKEN_MAX + 1], bad[HR_AUTH_TOKEN_MAX + 1];
  cfg_with_auth(&c);

  /* signed with the older of two secrets (rotation), a UTF-8 user id */
  ASSERT_GT(hr_auth_token_sign(SECRET, "u\xc3\xa9-42", NOW + 3600, tok,
                               sizeof(tok)),
            0);
  ASSERT(strncmp(tok, "hrt1.", 5) == 0);
  char authz[HR_AUTH_TOKEN_MAX + 16];
  snprintf(authz, sizeof(authz), "Bearer %s", tok);
  ASSERT_EQ(identify(&c, authz, NULL, &who, &err), 0);
  ASSERT_EQ(who.kind, HR_CALLER_TOKEN);
  ASSERT_STR_EQ(who.user_id, "u\xc3\xa9-42");
  ASSERT_EQ(who.expires, NOW + 3600);

  /* every byte of the token matters: flip each in turn */
  for (size_t i = 5; i < strlen(tok); i++) {
    snprintf(bad, sizeof(bad), "%s", tok);
    bad[i] = bad[i] == 'A' ? 'B' : 'A';
    if (strcmp(bad, tok) == 0)
      continue;
    snprintf(authz, sizeof(authz), "Bearer %s", bad);
    ASSERT_MSG(identify(&c, authz, NULL, &who, &err) == HR_EUNAUTH,
               "byte %zu changed, still accepted: %s", i, bad);
  }
  /* another secret, expired, too far ahead, malformed */
  ASSERT_GT(hr_auth_token_sign("some-other-secret-of-32-chars-at-least", "u1",
                               NOW + 60, tok, sizeof(tok)),
            0);
  snprintf(authz, sizeof(authz), "Bearer %s", tok);
  ASSERT_EQ(identify(&c, authz, NULL, &who, &err), HR_EUNAUTH);
  ASSERT(strstr(err.msg, "signature") != NULL);
  ASSERT_GT(hr_auth_token_sign(SECRET, "u1", NOW, tok, sizeof(tok)), 0);
  snprintf(authz, sizeof(authz), "Bearer %s", tok);
  ASSERT_EQ(identify(&c, authz, NULL, &who, &err), HR_EUNAUTH);
  ASSERT(strstr(err.msg, "expired") != NULL);
  ASSERT_GT(hr_auth_token_sign(SECRET, "u1", NOW + 30 * 86400LL, tok,
                               sizeof(tok)),
            0);
  snprintf(authz, sizeof(authz), "Bearer %s", tok);
  ASSERT_EQ(identify(&c, authz, NULL, &who, &err), HR_EUNAUTH);
  ASSERT(strstr(err.msg, "token_max_ttl_s") != NULL);
  static const char *const malformed[] = {
      "Bearer hrt1.", "Bearer hrt1.dTE.1767229200", "Bearer hrt1..1.AAAA",
      "Bearer hrt1.dTE.17a67229200.AAAA", "Bearer hrt1.dTE.1767229200.AAAA.x",
      "Bearer hrt1.d.1767229200.AAAA", "Bearer hrt1.dTE..AAAA"};
  for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++)
    ASSERT_MSG(identify(&c, malformed[i], NULL, &who, &err) == HR_EUNAUTH,
               "%s accepted", malformed[i]);
  /* no user, or one too long, cannot be signed */
  ASSERT_EQ(hr_auth_token_sign(SECRET, "", NOW + 60, tok, sizeof(tok)),
            HR_EINVAL);
  char long_user[HR_AUTH_MAX_USER + 2];
  memset(long_user, 'x', sizeof(long_user) - 1);
  long_user[sizeof(long_user) - 1] = '\0';
  ASSERT_EQ(hr_auth_token_sign(SECRET, long_user, NOW + 60, tok, sizeof(tok)),
            HR_EINVAL);
  return 0;
}

HR_TEST(auth_allow_matrix) {
  hr_caller_t anon = {.kind = HR_CALLER_ANONYMOUS, .key = -1},
              key = {.kind = HR_CALLER_KEY, .key = 0, .name = "shop"},
              tok = {.kind = HR_CALLER_TOKEN, .user_id = "u1"};
  hr_error_t err;
#define ALLOW(c, need, user, want)                                            \
  do {                                                                        \
    memset(&err, 0, sizeof(err));                                             \
    ASSERT_EQ(hr_auth_allow(&(c), need, user, "POST /event", &err), want);    \
  } while (0)
  ALLOW(anon, "none", "u1", 0);
  ALLOW(anon, "token", "u1", HR_EUNAUTH);
  ALLOW(anon, "token", NULL, HR_EUNAUTH);
  ALLOW(anon, "key", "u1", HR_EUNAUTH);
  ALLOW(key, "token", "u2", 0);
  ALLOW(key, "key", "u2", 0);
  ALLOW(tok, "token", "u1", 0);
  ALLOW(tok, "token", NULL, 0);
  ALLOW(tok, "token", "u2", HR_EFORBIDDEN);
  ASSERT(strstr(err.msg, "another user") != NULL);
  ALLOW(tok, "key", "u1", HR_EFORBIDDEN);
#undef ALLOW
  return 0;
}

HR_TEST(auth_rate_buckets) {
  hr_config_t c;
  hr_caller_t a = {.kind = HR_CALLER_KEY, .key = 0, .name = "rate-a"},
              b = {.kind = HR_CALLER_KEY, .key = 1, .name = "rate-b"},
              t = {.kind = HR_CALLER_TOKEN, .user_id = "rate-u"},
              anon = {.kind = HR_CALLER_ANONYMOUS};
  int retry = 0;
  hr_config_defaults(&c);
  c.auth.key_rps = 1; /* one a second: the test runs well within one */
  c.auth.key_burst = 3;
  c.auth.token_rps = 1;
  c.auth.token_burst = 2;
  for (int i = 0; i < 3; i++)
    ASSERT_EQ(hr_auth_rate_take(&c, &a, &retry), 0);
  ASSERT_EQ(hr_auth_rate_take(&c, &a, &retry), HR_ERATELIMITED);
  ASSERT_EQ(retry, 1);
  ASSERT_EQ(hr_auth_rate_take(&c, &b, &retry), 0); /* another key: its own */
  ASSERT_EQ(hr_auth_rate_take(&c, &t, &retry), 0);
  ASSERT_EQ(hr_auth_rate_take(&c, &t, &retry), 0);
  ASSERT_EQ(hr_auth_rate_take(&c, &t, &retry), HR_ERATELIMITED);
  for (int i = 0; i < 100; i++) /* anonymous callers: not limited here */
    ASSERT_EQ(hr_auth_rate_take(&c, &anon, &retry), 0);
  const char *name;
  unsigned long long ok, limited;
  int found = 0;
  for (int i = 0; hr_auth_key_stat(i, &name, &ok, &limited) == 0; i++)
    if (strcmp(name, "rate-a") == 0) {
      ASSERT_EQ(ok, 3);
      ASSERT_EQ(limited, 1);
      found = 1;
    }
  ASSERT(found);
  return 0;
}

HR_TEST(auth_credentials_exposed_warning) {
  hr_config_t c;
  hr_config_defaults(&c);
  snprintf(c.listen_host, sizeof(c.listen_host), "0.0.0.0");
  ASSERT_EQ(hr_config_credentials_exposed(&c), 0); /* nothing to expose */
  cfg_with_auth(&c);
  snprintf(c.listen_host, sizeof(c.listen_host), "0.0.0.0");
  ASSERT_EQ(hr_config_credentials_exposed(&c), 1);
  c.http.tls_in_front = 1;
  ASSERT_EQ(hr_config_credentials_exposed(&c), 0);
  c.http.tls_in_front = 0;
  snprintf(c.listen_host, sizeof(c.listen_host), "127.0.0.1");
  ASSERT_EQ(hr_config_credentials_exposed(&c), 0);
  hr_config_defaults(&c);
  snprintf(c.admin.token, sizeof(c.admin.token), "0123456789abcdef0123");
  snprintf(c.listen_host, sizeof(c.listen_host), "10.0.0.5");
  ASSERT_EQ(hr_config_credentials_exposed(&c), 1);
  return 0;
}
