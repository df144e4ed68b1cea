/* auth.h -- who is calling /recommend and /event, what they may do, and
 * how often (docs/security.md).
 *
 * Two kinds of credentials, both sent as `Authorization: Bearer <...>`:
 * - API keys, for the site's servers: any string of 16 to 255 printable
 *   characters, configured as NAME:SHA256 (auth.api_keys): the server keeps
 *   only the hash, and the key's name goes to logs and metrics. An API key
 *   may act for any user. `X-API-Key: <key>` is accepted too.
 * - User tokens, for browsers: "hrt1.<b64url(user_id)>.<expiry>.<b64url(
 *   HMAC-SHA256(secret, "hrt1.<b64url(user_id)>.<expiry>"))>", signed by
 *   the site's backend with one of auth.token_secrets. A token acts for its
 *   user only, until its expiry (unix seconds).
 * The per-credential token buckets (auth.key_rps, auth.token_rps) are kept
 * per process: a fleet of N replicas behind a balancer allows N times the
 * rate. Thread-safe. */
#ifndef HR_AUTH_H
#define HR_AUTH_H

#include <stddef.h>

#include "hr/config.h"
#include "hr/err.h"

#define HR_AUTH_MAX_USER 128 /* bytes of a token's user_id (= HR_API_MAX_ID) */
#define HR_AUTH_TOKEN_MAX 400 /* bytes of a whole token */

typedef enum {
  HR_CALLER_ANONYMOUS = 0,
  HR_CALLER_KEY,
  HR_CALLER_TOKEN
} hr_caller_kind_t;

typedef struct {
  hr_caller_kind_t kind;
  int key;                            /* HR_CALLER_KEY: index in auth.api_keys */
  char name[33];                      /* HR_CALLER_KEY: the key's name */
  char user_id[HR_AUTH_MAX_USER + 1]; /* HR_CALLER_TOKEN: its user */
  long long expires;                  /* HR_CALLER_TOKEN: unix seconds */
} hr_caller_t;

/** Identify the caller from the request's Authorization and X-API-Key
 *  header values (NULL when absent) at time `now`. No credentials: 0 and
 *  HR_CALLER_ANONYMOUS. Credentials that do not check out (an unknown key,
 *  a token that is malformed, tampered with, signed by no configured
 *  secret, expired or expiring further ahead than auth.token_max_ttl_s):
 *  HR_EUNAUTH with the reason in err. */
int hr_auth_identify(const hr_config_t *cfg, const char *authorization,
                     const char *x_api_key, long long now, hr_caller_t *out,
                     hr_error_t *err);

/** May `c` act for `user_id` (NULL: no user named) under `need` ("none",
 *  "token" or "key", from auth.*)? 0; HR_EUNAUTH when credentials are
 *  needed and there are none; HR_EFORBIDDEN when they do not cover the
 *  request (a user token of another user, a token where a key is needed).
 *  `what` names the request in the message ("POST /event"). */
int hr_auth_allow(const hr_caller_t *c, const char *need, const char *user_id,
                  const char *what, hr_error_t *err);

/** Take one request from the caller's token bucket (anonymous callers
 *  are not limited here). 0, or HR_ERATELIMITED with *retry_after_s (>= 1)
 *  set: when a request will be allowed again. */
int hr_auth_rate_take(const hr_config_t *cfg, const hr_caller_t *c,
                      int *retry_after_s);

/** A user token for user_id valid until `expires`, signed with `secret`,
 *  into out (NUL-terminated). Returns its length, or HR_EINVAL (an empty
 *  or too long user_id, cap too small). */
int hr_auth_token_sign(const char *secret, const char *user_id,
                       long long expires, char *out, size_t cap);

/** SHA-256 of `key` as 64 lower-case hex digits (the form auth.api_keys
 *  stores). */
void hr_auth_key_hash(const char *key, char out[65]);

/** The i-th API key seen (i from 0): its name, requests let through and
 *  requests refused by its rate limit, for /metrics. 0, or -1 past the
 *  last one. */
int hr_auth_key_stat(int i, const char **name, unsigned long long *allowed,
                     unsigned long long *limited);

/** Refusals so far: reason 0 missing credentials, 1 invalid or expired,
 *  2 forbidden (another user's token, ...), 3 rate limited. */
unsigned long long hr_auth_refused(int reason);

#endif
