/* auth.c -- API keys, signed user tokens, token buckets (auth.h). */
#include "hr/auth.h"

#include <inttypes.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hr/sha256.h"

#define TOKEN_PREFIX "hrt1."

/* ------------------------------------------------------------ refusals */

static atomic_ullong refused[4];

unsigned long long hr_auth_refused(int reason) {
  return reason >= 0 && reason < 4 ? atomic_load(&refused[reason]) : 0;
}

__attribute__((format(printf, 4, 5)))
static int refuse(int reason, hr_error_t *err, int code, const char *fmt,
                  ...) {
  char msg[sizeof(((hr_error_t *)0)->msg)];
  va_list ap;
  atomic_fetch_add(&refused[reason], 1);
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  return hr_error_set(err, code, "", "%s", msg);
}

/* ------------------------------------------------------------ base64url */

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Unpadded base64url of n bytes into out (cap bytes with the NUL);
 * returns the length or -1. */
static int b64url_encode(const uint8_t *in, size_t n, char *out, size_t cap) {
  size_t o = 0;
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16;
    size_t take = n - i < 3 ? n - i : 3;
    if (take > 1)
      v |= (uint32_t)in[i + 1] << 8;
    if (take > 2)
      v |= in[i + 2];
    if (o + take + 2 > cap)
      return -1;
    out[o++] = b64[v >> 18 & 63];
    out[o++] = b64[v >> 12 & 63];
    if (take > 1)
      out[o++] = b64[v >> 6 & 63];
    if (take > 2)
      out[o++] = b64[v & 63];
  }
  out[o] = '\0';
  return (int)o;
}

static int b64_val(char c) {
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  return c == '-' ? 62 : c == '_' ? 63 : -1;
}

/* Decodes n characters of unpadded base64url (canonical: no stray bits)
 * into out (cap bytes); returns the byte count or -1. */
static int b64url_decode(const char *in, size_t n, uint8_t *out, size_t cap) {
  size_t o = 0;
  uint32_t acc = 0;
  int bits = 0;
  if (n % 4 == 1)
    return -1;
  for (size_t i = 0; i < n; i++) {
    int v = b64_val(in[i]);
    if (v < 0)
      return -1;
    acc = acc << 6 | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (o >= cap)
        return -1;
      out[o++] = (uint8_t)(acc >> bits);
    }
  }
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
    return -1;
  return (int)o;
}

/* ------------------------------------------------------------ keys */

void hr_auth_key_hash(const char *key, char out[65]) {
  uint8_t d[HR_SHA256_LEN];
  hr_sha256(key, strlen(key), d);
  for (int i = 0; i < HR_SHA256_LEN; i++)
    snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* Per-name counters of API keys (names survive a reload that reorders
 * auth.api_keys). Entries are appended under the mutex and never removed;
 * readers see n with acquire order. */
typedef struct {
  char name[33];
  atomic_ullong allowed, limited;
} key_stat_t;
static key_stat_t key_stats[HR_AUTH_MAX_KEYS * 2];
static atomic_int n_key_stats;
static pthread_mutex_t key_stats_mu = PTHREAD_MUTEX_INITIALIZER;

static key_stat_t *key_stat(const char *name) {
  int n = atomic_load_explicit(&n_key_stats, memory_order_acquire);
  for (int i = 0; i < n; i++)
    if (strcmp(key_stats[i].name, name) == 0)
      return &key_stats[i];
  pthread_mutex_lock(&key_stats_mu);
  n = atomic_load(&n_key_stats);
  for (int i = 0; i < n; i++)
    if (strcmp(key_stats[i].name, name) == 0) {
      pthread_mutex_unlock(&key_stats_mu);
      return &key_stats[i];
    }
  key_stat_t *s = NULL;
  if (n < (int)(sizeof(key_stats) / sizeof(key_stats[0]))) {
    s = &key_stats[n];
    snprintf(s->name, sizeof(s->name), "%s", name);
    atomic_store_explicit(&n_key_stats, n + 1, memory_order_release);
  }
  pthread_mutex_unlock(&key_stats_mu);
  return s;
}

int hr_auth_key_stat(int i, const char **name, unsigned long long *allowed,
                     unsigned long long *limited) {
  if (i < 0 || i >= atomic_load_explicit(&n_key_stats, memory_order_acquire))
    return -1;
  *name = key_stats[i].name;
  *allowed = atomic_load(&key_stats[i].allowed);
  *limited = atomic_load(&key_stats[i].limited);
  return 0;
}

static int identify_key(const hr_config_t *cfg, const char *key,
                        hr_caller_t *out, hr_error_t *err) {
  size_t n = strlen(key);
  char hex[65];
  int found = -1;

  for (size_t i = 0; i < n; i++)
    if (key[i] <= 0x20 || key[i] >= 0x7f)
      return refuse(1, err, HR_EUNAUTH, "the API key holds a character "
                    "that no key has");
  if (n < 16 || n > 255)
    return refuse(1, err, HR_EUNAUTH, "unknown API key");
  hr_auth_key_hash(key, hex);
  /* every entry compared in full, in constant time */
  for (int i = 0; i < cfg->auth.n_api_keys; i++) {
    const char *e = cfg->auth.api_keys[i], *colon = strchr(e, ':');
    if (colon != NULL && strlen(colon + 1) == 64 &&
        hr_ct_equal(colon + 1, hex, 64) && found < 0)
      found = i;
  }
  if (found < 0)
    return refuse(1, err, HR_EUNAUTH, "unknown API key");
  const char *e = cfg->auth.api_keys[found];
  size_t nl = (size_t)(strchr(e, ':') - e);
  out->kind = HR_CALLER_KEY;
  out->key = found;
  snprintf(out->name, sizeof(out->name), "%.*s", (int)(nl < 32 ? nl : 32), e);
  return 0;
}

/* ------------------------------------------------------------ tokens */

int hr_auth_token_sign(const char *secret, const char *user_id,
                       long long expires, char *out, size_t cap) {
  size_t ul = user_id ? strlen(user_id) : 0;
  char u64[(HR_AUTH_MAX_USER + 2) / 3 * 4 + 1], sig64[48];
  uint8_t mac[HR_SHA256_LEN];
  int n;

  if (ul == 0 || ul > HR_AUTH_MAX_USER || secret == NULL || expires < 0)
    return HR_EINVAL;
  b64url_encode((const uint8_t *)user_id, ul, u64, sizeof(u64));
  n = snprintf(out, cap, TOKEN_PREFIX "%s.%lld", u64, expires);
  if (n < 0 || (size_t)n >= cap)
    return HR_EINVAL;
  hr_hmac_sha256(secret, strlen(secret), out, (size_t)n, mac);
  b64url_encode(mac, sizeof(mac), sig64, sizeof(sig64));
  if ((size_t)n + 1 + strlen(sig64) >= cap)
    return HR_EINVAL;
  n += snprintf(out + n, cap - (size_t)n, ".%s", sig64);
  return n;
}

static int identify_token(const hr_config_t *cfg, const char *tok,
                          long long now, hr_caller_t *out, hr_error_t *err) {
  size_t n = strlen(tok);
  const char *u, *x, *s, *dot;
  uint8_t user[HR_AUTH_MAX_USER + 1], sig[HR_SHA256_LEN + 1],
      mac[HR_SHA256_LEN];
  long long exp = 0;
  int ul, ok = 0;

  if (n > HR_AUTH_TOKEN_MAX)
    return refuse(1, err, HR_EUNAUTH, "malformed user token (longer than "
                  "any token)");
  u = tok + strlen(TOKEN_PREFIX);
  if ((dot = strchr(u, '.')) == NULL)
    goto malformed;
  x = dot + 1;
  if ((dot = strchr(x, '.')) == NULL)
    goto malformed;
  s = dot + 1;
  if (strchr(s, '.') != NULL || x + 1 > s - 1 || s - 1 - x > 12)
    goto malformed;
  for (const char *p = x; p < s - 1; p++) {
    if (*p < '0' || *p > '9')
      goto malformed;
    exp = exp * 10 + (*p - '0');
  }
  ul = b64url_decode(u, (size_t)(x - 1 - u), user, HR_AUTH_MAX_USER);
  if (ul < 1 || !hr_utf8_valid((const char *)user, (size_t)ul) ||
      b64url_decode(s, strlen(s), sig, sizeof(sig)) != HR_SHA256_LEN)
    goto malformed;
  for (int i = 0; i < cfg->auth.n_token_secrets; i++) {
    const char *k = cfg->auth.token_secrets[i];
    hr_hmac_sha256(k, strlen(k), tok, (size_t)(s - 1 - tok), mac);
    ok |= hr_ct_equal(mac, sig, HR_SHA256_LEN);
  }
  if (!ok)
    return refuse(1, err, HR_EUNAUTH, "the user token's signature does not "
                  "match (tampered with, or signed with a secret this "
                  "server does not have)");
  if (exp <= now)
    return refuse(1, err, HR_EUNAUTH, "the user token has expired");
  if (exp - now > cfg->auth.token_max_ttl_s)
    return refuse(1, err, HR_EUNAUTH, "the user token expires further ahead "
                  "than auth.token_max_ttl_s allows");
  out->kind = HR_CALLER_TOKEN;
  memcpy(out->user_id, user, (size_t)ul);
  out->user_id[ul] = '\0';
  out->expires = exp;
  return 0;
malformed:
  return refuse(1, err, HR_EUNAUTH, "malformed user token (expected "
                "hrt1.<user>.<expiry>.<signature>)");
}

int hr_auth_identify(const hr_config_t *cfg, const char *authorization,
                     const char *x_api_key, long long now, hr_caller_t *out,
                     hr_error_t *err) {
  memset(out, 0, sizeof(*out));
  out->kind = HR_CALLER_ANONYMOUS;
  out->key = -1;
  if (authorization != NULL) {
    const char *v = authorization;
    if (strncmp(v, "Bearer ", 7) != 0)
      return refuse(1, err, HR_EUNAUTH, "Authorization must be \"Bearer "
                    "<API key or user token>\"");
    v += 7;
    while (*v == ' ')
      v++;
    if (strncmp(v, TOKEN_PREFIX, strlen(TOKEN_PREFIX)) == 0)
      return identify_token(cfg, v, now, out, err);
    return identify_key(cfg, v, out, err);
  }
  if (x_api_key != NULL)
    return identify_key(cfg, x_api_key, out, err);
  return 0;
}

int hr_auth_allow(const hr_caller_t *c, const char *need, const char *user_id,
                  const char *what, hr_error_t *err) {
  if (strcmp(need, "none") == 0 || c->kind == HR_CALLER_KEY)
    return 0;
  if (strcmp(need, "key") == 0) {
    if (c->kind == HR_CALLER_ANONYMOUS)
      return refuse(0, err, HR_EUNAUTH, "%s needs an API key (Authorization: "
                    "Bearer <key>)", what);
    return refuse(2, err, HR_EFORBIDDEN, "%s needs an API key; a user token "
                  "is not enough", what);
  }
  if (c->kind == HR_CALLER_ANONYMOUS)
    return refuse(0, err, HR_EUNAUTH, "%s needs a user token for its user or "
                  "an API key (Authorization: Bearer <...>)", what);
  if (user_id != NULL && strcmp(user_id, c->user_id) != 0)
    return refuse(2, err, HR_EFORBIDDEN, "the user token is for another user "
                  "than %s's user_id \"%.128s\"", what, user_id);
  return 0;
}

/* ------------------------------------------------------------ buckets */

#define SLOTS 16384 /* power of two */
#define STRIPES 64
#define PROBE 16

typedef struct {
  char id[HR_AUTH_MAX_USER + 3]; /* "k:<name>" or "t:<user>", "" free */
  double tokens;
  int64_t last_ns;
} bucket_t;

static bucket_t buckets[SLOTS];
static pthread_mutex_t stripes[STRIPES] = {
#define M PTHREAD_MUTEX_INITIALIZER
    M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M,
    M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M,
    M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M
#undef M
};

static int64_t mono_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static uint64_t fnv(const char *s) {
  uint64_t h = 1469598103934665603ULL;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return h;
}

int hr_auth_rate_take(const hr_config_t *cfg, const hr_caller_t *c,
                      int *retry_after_s) {
  int rps, burst;
  char id[sizeof(((bucket_t *)0)->id)];
  key_stat_t *ks = NULL;

  *retry_after_s = 0;
  if (c->kind == HR_CALLER_KEY) {
    rps = cfg->auth.key_rps, burst = cfg->auth.key_burst;
    snprintf(id, sizeof(id), "k:%s", c->name);
    ks = key_stat(c->name);
  } else if (c->kind == HR_CALLER_TOKEN) {
    rps = cfg->auth.token_rps, burst = cfg->auth.token_burst;
    snprintf(id, sizeof(id), "t:%s", c->user_id);
  } else {
    return 0;
  }
  if (rps <= 0) {
    if (ks)
      atomic_fetch_add(&ks->allowed, 1);
    return 0;
  }
  /* The probe window lies in one stripe: slots [base, base + PROBE) with
   * base a multiple of PROBE, locked by stripe (base / PROBE) % STRIPES. */
  uint64_t h = fnv(id);
  size_t base = (size_t)(h % (SLOTS / PROBE)) * PROBE;
  pthread_mutex_t *mu = &stripes[(base / PROBE) % STRIPES];
  int64_t now = mono_ns();
  bucket_t *b = NULL, *oldest = NULL;
  int rc = 0;

  pthread_mutex_lock(mu);
  for (size_t i = base; i < base + PROBE; i++) {
    if (strcmp(buckets[i].id, id) == 0) {
      b = &buckets[i];
      break;
    }
    if (oldest == NULL || buckets[i].id[0] == '\0' ||
        (oldest->id[0] != '\0' && buckets[i].last_ns < oldest->last_ns))
      oldest = &buckets[i];
  }
  if (b == NULL) { /* a full bucket: the same as one never used */
    b = oldest;
    snprintf(b->id, sizeof(b->id), "%s", id);
    b->tokens = burst;
    b->last_ns = now;
  }
  b->tokens += (double)(now - b->last_ns) * 1e-9 * rps;
  if (b->tokens > burst)
    b->tokens = burst;
  b->last_ns = now;
  if (b->tokens >= 1.0) {
    b->tokens -= 1.0;
  } else {
    double wait = (1.0 - b->tokens) / rps;
    *retry_after_s = (int)wait + ((double)(int)wait < wait ? 1 : 0);
    if (*retry_after_s < 1)
      *retry_after_s = 1;
    rc = HR_ERATELIMITED;
  }
  pthread_mutex_unlock(mu);
  if (ks)
    atomic_fetch_add(rc ? &ks->limited : &ks->allowed, 1);
  if (rc != 0)
    return refuse(3, NULL, rc, "retry after %d s", *retry_after_s);
  return 0;
}
