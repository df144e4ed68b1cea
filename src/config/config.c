/* config.c -- one table of keys drives defaults, file, env and docs. */
#include "hr/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

typedef enum { K_INT, K_LONG, K_STR, K_LIST } key_type;

typedef struct {
  const char *path;
  key_type type;
  size_t off;        /* offset of the value in hr_config_t */
  size_t size;       /* K_STR: buffer size; K_LIST: element size */
  size_t count_off;  /* K_LIST: offset of the int count */
  long min, max;     /* K_INT/K_LONG bounds; K_LIST: max elements */
  const char *def;   /* default, as a string (lists: comma-separated) */
  const char *doc;
} key_desc;

#define OFF(f) offsetof(hr_config_t, f)
#define SZ(f) sizeof(((hr_config_t *)0)->f)
#define ESZ(f) sizeof(((hr_config_t *)0)->f[0])

static const key_desc keys[] = {
  {"listen", K_STR, OFF(listen_host), SZ(listen_host), 0, 0, 0,
   "127.0.0.1:8080", "HOST:PORT to listen on; port 0 picks a free port"},
  {"threads", K_INT, OFF(threads), 0, 0, 0, 256, "0",
   "HTTP worker threads (0 = eight per core, at most 64: a worker's Redis "
   "round trip is other workers' time to compute)"},
  {"models_dir", K_STR, OFF(models_dir), SZ(models_dir), 0, 0, 0, "models",
   "directory holding one sub-directory per model slot"},
  {"slots", K_LIST, OFF(slots), ESZ(slots), OFF(n_slots), 1,
   HR_CONFIG_MAX_LIST, "default",
   "model slots to serve; the first one answers /recommend"},
  {"models_poll_ms", K_INT, OFF(models_poll_ms), 0, 0, 100, 3600000, "2000",
   "how often the model directories are scanned anyway: new versions when "
   "models_watch is 0 or notifications are unavailable, and refused "
   "versions repaired in place (the watch sees the slot directory only)"},
  {"models_watch", K_INT, OFF(models_watch), 0, 0, 0, 1, "1",
   "1: a change in a slot directory (a version renamed into place) wakes "
   "the loader at once (inotify through libuv); 0: polling only, e.g. on "
   "network file systems without notifications"},
  {"models_pin", K_LIST, OFF(pins), ESZ(pins), OFF(n_pins), 0,
   HR_CONFIG_MAX_LIST, "",
   "SLOT=VERSION entries: the slot serves exactly that version directory "
   "instead of its newest valid one (an admin rollback can still move it "
   "until POST /admin/reload)"},
  {"models_gate_max_drop_pct", K_INT, OFF(models_gate_max_drop_pct), 0, 0,
   0, 100, "10",
   "the quality gate: a new version whose report.json shows a validation "
   "NDCG@10 more than this many percent below the serving version's, on "
   "the same holdout definition, is refused (100: never)"},
  {"models_gate_min_count_pct", K_INT, OFF(models_gate_min_count_pct), 0, 0,
   0, 100, "50",
   "the quality gate: a new version with fewer items or users than this "
   "percentage of the serving version's is refused (0: never). A version "
   "written by fit --force, or named in an admin rollback, passes"},
  {"log_level", K_STR, OFF(log_level), SZ(log_level), 0, 0, 0, "info",
   "debug, info, warn or error (reloadable)"},
  {"redis.host", K_STR, OFF(redis.host), SZ(redis.host), 0, 0, 0, "127.0.0.1",
   "Redis host (or HOST:PORT in --redis / HYPERREC_REDIS)"},
  {"redis.port", K_INT, OFF(redis.port), 0, 0, 1, 65535, "6379", "Redis port"},
  {"redis.connect_timeout_ms", K_INT, OFF(redis.connect_timeout_ms), 0, 0, 1,
   60000, "200", "timeout of one connection attempt"},
  {"redis.command_timeout_ms", K_INT, OFF(redis.command_timeout_ms), 0, 0, 1,
   60000, "100", "timeout of one pipelined round trip"},
  {"redis.backoff_min_ms", K_INT, OFF(redis.backoff_min_ms), 0, 0, 1, 60000,
   "50", "first wait after a failed connection; doubles up to the max"},
  {"redis.backoff_max_ms", K_INT, OFF(redis.backoff_max_ms), 0, 0, 1, 600000,
   "2000", "longest wait between reconnection attempts"},
  {"redis.key_prefix", K_STR, OFF(redis.key_prefix), SZ(redis.key_prefix), 0,
   0, 0, "hr:", "prefix of every Redis key"},
  {"redis.history_cap", K_INT, OFF(redis.history_cap), 0, 0, 1, 10000, "200",
   "recent items kept per user (LTRIM)"},
  {"redis.stream_maxlen", K_LONG, OFF(redis.stream_maxlen), 0, 0, 0,
   1000000000000L, "5000000",
   "approximate cap of the event stream (XADD MAXLEN ~): the newest events "
   "kept for `hyperrec-train fit --from-redis` (docs/operations.md: size it "
   "to the training window); 0 keeps everything, without bound"},
  {"redis.event_id_ttl_s", K_INT, OFF(redis.event_id_ttl_s), 0, 0, 1,
   31536000, "86400", "how long an event_id is remembered for idempotency"},
  {"http.max_body_bytes", K_LONG, OFF(http.max_body_bytes), 0, 0, 64,
   67108864, "1048576", "largest accepted request body (413 above)"},
  {"http.max_connections", K_INT, OFF(http.max_connections), 0, 0, 1,
   1000000, "4096",
   "connections held at once; more are refused at accept (lowered to what "
   "the open-file limit allows, less a reserve)"},
  {"http.max_connections_per_ip", K_INT, OFF(http.max_connections_per_ip), 0,
   0, 1, 1000000, "256",
   "connections held at once from one client address (a load balancer is "
   "one address: keep this above its connection pool)"},
  {"http.connection_timeout_s", K_INT, OFF(http.connection_timeout_s), 0, 0,
   1, 3600, "30", "idle connection timeout"},
  {"http.header_timeout_s", K_INT, OFF(http.header_timeout_s), 0, 0, 1, 3600,
   "10",
   "a request's headers must be complete this long after the connection "
   "opens (after the previous answer: this plus connection_timeout_s), "
   "however slowly they trickle in"},
  {"http.body_timeout_s", K_INT, OFF(http.body_timeout_s), 0, 0, 1, 3600,
   "30", "a request's body must be complete this long after its headers"},
  {"http.shutdown_grace_ms", K_INT, OFF(http.shutdown_grace_ms), 0, 0, 0,
   600000, "5000", "how long SIGTERM waits for in-flight requests"},
  {"http.cors_origins", K_LIST, OFF(http.cors_origins), ESZ(http.cors_origins),
   OFF(http.n_cors_origins), 0, HR_CONFIG_MAX_LIST, "",
   "origins allowed by CORS (e.g. https://shop.example); empty: none, so "
   "browsers on other origins cannot call the API; \"*\" allows any "
   "(reloadable)"},
  {"http.tls_in_front", K_INT, OFF(http.tls_in_front), 0, 0, 0, 1, "0",
   "1: a load balancer or proxy in front terminates TLS (silences the "
   "warning about credentials on a non-loopback address)"},
  {"http.unknown_fields", K_STR, OFF(http.unknown_fields),
   SZ(http.unknown_fields), 0, 0, 0, "reject",
   "\"reject\" (400 unknown_field) or \"ignore\" (reloadable)"},
  {"recommend.default_k", K_INT, OFF(recommend.default_k), 0, 0, 1, 10000,
   "10", "k when the request has none (reloadable)"},
  {"recommend.max_k", K_INT, OFF(recommend.max_k), 0, 0, 1, 10000, "100",
   "largest k accepted (reloadable)"},
  {"recommend.max_history", K_INT, OFF(recommend.max_history), 0, 0, 0,
   100000, "200", "longest request `history` accepted (reloadable)"},
  {"recommend.max_exclude", K_INT, OFF(recommend.max_exclude), 0, 0, 0,
   100000, "1000", "longest request `exclude` accepted (reloadable)"},
  {"recommend.user_cache_mb", K_INT, OFF(recommend.user_cache_mb), 0, 0, 0,
   1048576, "128",
   "MiB per model version for what is kept of each user between requests "
   "(the history's part of the user vector and the index's candidates); "
   "0: nothing kept (reloadable: for versions that serve their first "
   "request after the change)"},
  {"event.max_batch", K_INT, OFF(event.max_batch), 0, 0, 1, 10000, "100",
   "most events in one /event batch (reloadable)"},
  {"ann.min_items", K_INT, OFF(ann.min_items), 0, 0, 0, 2000000000, "20000",
   "catalogues smaller than this are scored exactly, without the index "
   "(reloadable)"},
  {"ann.candidates", K_INT, OFF(ann.candidates), 0, 0, 1, 100000, "200",
   "candidates retrieved from the index before ranking; at least k "
   "(reloadable)"},
  {"ann.ef", K_INT, OFF(ann.ef), 0, 0, 1, 100000, "600",
   "index search beam width; raised to the candidate count, and to ann.kept "
   "when candidates are kept (reloadable)"},
  {"ann.exact", K_INT, OFF(ann.exact), 0, 0, 0, 1, "0",
   "1: after the index, a norm-bound pass makes the candidates the exact "
   "top by inner product (costs about a millisecond at 1M items); 0: the "
   "index's candidates alone (reloadable)"},
  {"ann.kept", K_INT, OFF(ann.kept), 0, 0, 0, 100000, "800",
   "candidates the index finds once per user history and keeps (with "
   "recommend.user_cache_mb), for every later request to score with its own "
   "vector; at least ann.candidates, else 0: the index is searched for every "
   "request (reloadable)"},
  {"items.refresh_ms", K_INT, OFF(items.refresh_ms), 0, 0, 50, 60000, "250",
   "how often each replica reads the hidden items' version and the new "
   "events of the stream from Redis: a PUT /items/<id> reaches every "
   "replica within this (plus one read)"},
  {"items.max_hidden", K_INT, OFF(items.max_hidden), 0, 0, 0, 1000000,
   "10000", "most items hidden at once (PUT /items/<id> answers 409 "
   "above)"},
  {"trending.half_life_s", K_INT, OFF(trending.half_life_s), 0, 0, 60,
   2592000, "3600",
   "POST /popular with \"trending\": an event's weight halves every this "
   "many seconds"},
  {"trending.window_s", K_INT, OFF(trending.window_s), 0, 0, 0, 31536000,
   "21600", "how far back in the event stream a starting replica reads "
   "(events older than this weigh little: six half-lives by default)"},
  {"trending.max_items", K_INT, OFF(trending.max_items), 0, 0, 100,
   10000000, "100000",
   "distinct items counted at once; past it the least-weighted half is "
   "dropped"},
  {"ui.enabled", K_INT, OFF(ui.enabled), 0, 0, 0, 1, "0",
   "1: serve the console (static pages shipped in the binary) at /ui/; it "
   "calls the same public endpoints a front end does"},
  {"experiments_force_header", K_INT, OFF(experiments_force_header), 0, 0, 0,
   1, "0",
   "1: a request's X-Hyperrec-Variant header picks the variant (for QA); "
   "0: assignment only (reloadable)"},
  {"experiments_flush_ms", K_INT, OFF(experiments_flush_ms), 0, 0, 10,
   60000, "1000",
   "how often a replica adds its experiment impressions and users to "
   "Redis"},
  {"experiments_dedupe_ttl_s", K_INT, OFF(experiments_dedupe_ttl_s), 0, 0, 1,
   31536000, "604800",
   "a recommendation's clicks (and conversions) count once within this "
   "long after the first"},
  {"admin.token", K_STR, OFF(admin.token), SZ(admin.token), 0, 0, 0, "",
   "bearer token for POST /admin/reload and /admin/models/NAME/rollback: "
   "16 to 127 printable characters without spaces; empty turns the admin "
   "endpoints off (404) (reloadable)"},
  {"auth.api_keys", K_LIST, OFF(auth.api_keys), ESZ(auth.api_keys),
   OFF(auth.n_api_keys), 0, HR_AUTH_MAX_KEYS, "",
   "API keys of server-to-server callers, as NAME:SHA256 (the key's "
   "SHA-256 in lower-case hex: `hyperrec hash-key`); NAME appears in logs "
   "and metrics (reloadable)"},
  {"auth.api_keys_file", K_STR, OFF(auth.api_keys_file),
   SZ(auth.api_keys_file), 0, 0, 0, "",
   "file of more NAME:SHA256 lines (a mounted Secret), read at start and "
   "on SIGHUP"},
  {"auth.token_secrets", K_LIST, OFF(auth.token_secrets),
   ESZ(auth.token_secrets), OFF(auth.n_token_secrets), 0,
   HR_AUTH_MAX_SECRETS, "",
   "HMAC-SHA256 keys that sign user tokens (32 to 255 printable characters "
   "without spaces or commas); a token signed with any of them is "
   "accepted, so a new key is added before the old one is removed "
   "(reloadable)"},
  {"auth.token_secrets_file", K_STR, OFF(auth.token_secrets_file),
   SZ(auth.token_secrets_file), 0, 0, 0, "",
   "file of more token secrets, one per line, read at start and on SIGHUP"},
  {"auth.event", K_STR, OFF(auth.event), SZ(auth.event), 0, 0, 0, "token",
   "what POST /event needs: \"token\" (a user token for every event's "
   "user, or an API key), \"key\" (an API key) or \"none\" (reloadable)"},
  {"auth.recommend", K_STR, OFF(auth.recommend), SZ(auth.recommend), 0, 0,
   0, "token",
   "what POST /recommend naming a user_id needs: token, key or none "
   "(reloadable)"},
  {"auth.recommend_anonymous", K_STR, OFF(auth.recommend_anonymous),
   SZ(auth.recommend_anonymous), 0, 0, 0, "none",
   "what POST /recommend without a user_id (history and context only) "
   "needs: none, token or key (reloadable)"},
  {"auth.token_max_ttl_s", K_INT, OFF(auth.token_max_ttl_s), 0, 0, 60,
   31536000, "604800",
   "a user token whose expiry is further ahead than this is refused "
   "(reloadable)"},
  {"auth.key_rps", K_INT, OFF(auth.key_rps), 0, 0, 0, 1000000, "0",
   "requests per second per API key on each replica (token bucket); 0: no "
   "limit (reloadable)"},
  {"auth.key_burst", K_INT, OFF(auth.key_burst), 0, 0, 1, 1000000, "1000",
   "bucket size of auth.key_rps (reloadable)"},
  {"auth.token_rps", K_INT, OFF(auth.token_rps), 0, 0, 0, 1000000, "10",
   "requests per second per user token on each replica; 0: no limit "
   "(reloadable)"},
  {"auth.token_burst", K_INT, OFF(auth.token_burst), 0, 0, 1, 1000000, "20",
   "bucket size of auth.token_rps (reloadable)"},
};
#define N_KEYS (sizeof(keys) / sizeof(keys[0]))

static const key_desc *find_key(const char *path) {
  for (size_t i = 0; i < N_KEYS; i++)
    if (strcmp(keys[i].path, path) == 0)
      return &keys[i];
  return NULL;
}

static int set_list(hr_config_t *c, const key_desc *k, const char *csv,
                    hr_error_t *err) {
  char *base = (char *)c + k->off;
  int *count = (int *)((char *)c + k->count_off);
  const char *p = csv;
  int n = 0;

  while (*p != '\0') {
    const char *e = strchr(p, ',');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    while (len > 0 && isspace((unsigned char)*p)) {
      p++;
      len--;
    }
    while (len > 0 && isspace((unsigned char)p[len - 1]))
      len--;
    if (len > 0) {
      if (n >= k->max)
        return hr_error_set(err, HR_EINVAL, k->path,
                            "%s: at most %ld entries", k->path, k->max);
      if (len >= k->size)
        return hr_error_set(err, HR_EINVAL, k->path,
                            "%s: entry longer than %zu bytes", k->path,
                            k->size - 1);
      memcpy(base + (size_t)n * k->size, p, len);
      base[(size_t)n * k->size + len] = '\0';
      n++;
    }
    if (e == NULL)
      break;
    p = e + 1;
  }
  if (n < k->min)
    return hr_error_set(err, HR_EINVAL, k->path,
                        "%s: needs at least %ld entries", k->path, k->min);
  *count = n;
  return 0;
}

static int set_value(hr_config_t *c, const key_desc *k, const char *v,
                     hr_error_t *err) {
  char *dst = (char *)c + k->off;
  char *end;
  long long n;

  switch (k->type) {
  case K_INT:
  case K_LONG:
    errno = 0;
    n = strtoll(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0')
      return hr_error_set(err, HR_EINVAL, k->path,
                          "%s: \"%s\" is not an integer", k->path, v);
    if (n < k->min || n > k->max)
      return hr_error_set(err, HR_EINVAL, k->path,
                          "%s: %lld is outside %ld..%ld", k->path, n, k->min,
                          k->max);
    if (k->type == K_INT)
      *(int *)dst = (int)n;
    else
      *(long *)dst = (long)n;
    return 0;
  case K_STR:
    if (strlen(v) >= k->size)
      return hr_error_set(err, HR_EINVAL, k->path,
                          "%s: longer than %zu bytes", k->path, k->size - 1);
    memcpy(dst, v, strlen(v) + 1);
    return 0;
  case K_LIST:
    return set_list(c, k, v, err);
  }
  return HR_EINTERNAL;
}

/* "listen" and "redis" (as HOST:PORT) are shorthands handled here so that
 * flags, env and file agree. */
static int exp_name_ok(const char *s) {
  size_t n = strlen(s);
  return n >= 1 && n <= HR_EXP_NAME &&
         strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

/* "experiments": [{"name", "salt", "variants": [{"name", "weight",
 * "slot", "candidates"}]}]; every field checked, unknown ones refused. */
static int set_experiments(hr_config_t *c, const json_t *arr,
                           hr_error_t *err) {
  size_t i, j;
  const json_t *e, *v;
  const char *F = "experiments";

  if (!json_is_array(arr) || json_array_size(arr) > HR_EXP_MAX)
    return hr_error_set(err, HR_EINVAL, F, "experiments must be an array of "
                        "at most %d objects", HR_EXP_MAX);
  memset(c->experiments, 0, sizeof(c->experiments));
  c->n_experiments = 0;
  json_array_foreach(arr, i, e) {
    hr_experiment_cfg_t *x = &c->experiments[i];
    const json_t *name = json_object_get(e, "name"),
                 *salt = json_object_get(e, "salt"),
                 *vs = json_object_get(e, "variants");
    const char *k;
    json_t *val;
    if (!json_is_object(e))
      return hr_error_set(err, HR_EINVAL, F, "experiments[%zu] must be an "
                          "object", i);
    json_object_foreach((json_t *)e, k, val)
      if (strcmp(k, "name") && strcmp(k, "salt") && strcmp(k, "variants"))
        return hr_error_set(err, HR_EINVAL, F, "experiments[%zu]: unknown "
                            "field \"%s\"", i, k);
    if (!json_is_string(name) || !exp_name_ok(json_string_value(name)))
      return hr_error_set(err, HR_EINVAL, F, "experiments[%zu].name must be "
                          "1 to %d characters of a-z, 0-9, _ and -", i,
                          HR_EXP_NAME);
    if (!json_is_string(salt) || json_string_length(salt) < 1 ||
        json_string_length(salt) > 64)
      return hr_error_set(err, HR_EINVAL, F, "experiments[%zu].salt must be "
                          "a string of 1 to 64 bytes", i);
    if (!json_is_array(vs) || json_array_size(vs) < 1 ||
        json_array_size(vs) > HR_EXP_MAX_VARIANTS)
      return hr_error_set(err, HR_EINVAL, F, "experiments[%zu].variants must "
                          "be 1 to %d objects", i, HR_EXP_MAX_VARIANTS);
    snprintf(x->name, sizeof(x->name), "%s", json_string_value(name));
    snprintf(x->salt, sizeof(x->salt), "%s", json_string_value(salt));
    for (size_t p = 0; p < i; p++)
      if (strcmp(c->experiments[p].name, x->name) == 0)
        return hr_error_set(err, HR_EINVAL, F, "experiment \"%s\" is "
                            "declared twice", x->name);
    long sum = 0;
    json_array_foreach(vs, j, v) {
      hr_variant_cfg_t *y = &x->v[j];
      const json_t *vn = json_object_get(v, "name"),
                   *w = json_object_get(v, "weight"),
                   *sl = json_object_get(v, "slot"),
                   *cd = json_object_get(v, "candidates");
      if (!json_is_object(v))
        return hr_error_set(err, HR_EINVAL, F, "%s.variants[%zu] must be an "
                            "object", x->name, j);
      json_object_foreach((json_t *)v, k, val)
        if (strcmp(k, "name") && strcmp(k, "weight") && strcmp(k, "slot") &&
            strcmp(k, "candidates"))
          return hr_error_set(err, HR_EINVAL, F, "%s.variants[%zu]: unknown "
                              "field \"%s\"", x->name, j, k);
      if (!json_is_string(vn) || !exp_name_ok(json_string_value(vn)))
        return hr_error_set(err, HR_EINVAL, F, "%s.variants[%zu].name must "
                            "be 1 to %d characters of a-z, 0-9, _ and -",
                            x->name, j, HR_EXP_NAME);
      if (!json_is_integer(w) || json_integer_value(w) < 0 ||
          json_integer_value(w) > 1000000)
        return hr_error_set(err, HR_EINVAL, F, "%s.variants[%zu].weight must "
                            "be an integer from 0 to 1000000", x->name, j);
      if (sl != NULL && (!json_is_string(sl) || json_string_length(sl) < 1 ||
                         json_string_length(sl) >= sizeof(y->slot)))
        return hr_error_set(err, HR_EINVAL, F, "%s.variants[%zu].slot must "
                            "name a model slot", x->name, j);
      if (cd != NULL && (!json_is_integer(cd) || json_integer_value(cd) < 0 ||
                         json_integer_value(cd) > 100000))
        return hr_error_set(err, HR_EINVAL, F, "%s.variants[%zu].candidates "
                            "must be an integer from 0 to 100000", x->name,
                            j);
      snprintf(y->name, sizeof(y->name), "%s", json_string_value(vn));
      for (size_t p = 0; p < j; p++)
        if (strcmp(x->v[p].name, y->name) == 0)
          return hr_error_set(err, HR_EINVAL, F, "%s: variant \"%s\" is "
                              "declared twice", x->name, y->name);
      y->weight = (int)json_integer_value(w);
      sum += y->weight;
      snprintf(y->slot, sizeof(y->slot), "%s",
               sl ? json_string_value(sl) : "");
      y->candidates = cd ? (int)json_integer_value(cd) : 0;
    }
    if (sum <= 0)
      return hr_error_set(err, HR_EINVAL, F, "%s: the weights sum to 0",
                          x->name);
    x->n_variants = (int)json_array_size(vs);
    c->n_experiments = (int)i + 1;
  }
  return 0;
}

static int set_special(hr_config_t *c, const char *key, const char *value,
                       hr_error_t *err, int *handled) {
  char host[HR_CONFIG_STR];
  int port;

  *handled = 0;
  if (strcmp(key, "experiments") == 0) {
    json_error_t jerr;
    json_t *a = json_loads(value, JSON_REJECT_DUPLICATES, &jerr);
    int rc;
    *handled = 1;
    if (a == NULL)
      return hr_error_set(err, HR_EINVAL, key, "experiments: %s", jerr.text);
    rc = set_experiments(c, a, err);
    json_decref(a);
    return rc;
  }
  if (strcmp(key, "listen") == 0 || strcmp(key, "redis") == 0) {
    *handled = 1;
    if (hr_config_parse_hostport(value, host, sizeof(host), &port) != 0)
      return hr_error_set(err, HR_EINVAL, key,
                          "%s: \"%s\" is not HOST:PORT with a port 0-65535",
                          key, value);
    if (key[0] == 'l') {
      snprintf(c->listen_host, sizeof(c->listen_host), "%s", host);
      c->listen_port = port;
    } else {
      if (port == 0)
        return hr_error_set(err, HR_EINVAL, key, "redis: port 0 is invalid");
      snprintf(c->redis.host, sizeof(c->redis.host), "%s", host);
      c->redis.port = port;
    }
  }
  return 0;
}

int hr_config_set(hr_config_t *c, const char *key, const char *value,
                  hr_error_t *err) {
  const key_desc *k;
  int handled, rc;

  rc = set_special(c, key, value, err, &handled);
  if (handled)
    return rc;
  k = find_key(key);
  if (k == NULL)
    return hr_error_set(err, HR_EINVAL, key, "unknown configuration key \"%s\"",
                        key);
  return set_value(c, k, value, err);
}

int hr_config_parse_hostport(const char *s, char *host, size_t host_len,
                             int *port) {
  const char *colon = strrchr(s, ':');
  char *end;
  long p;
  size_t hl;

  if (colon == NULL || colon == s)
    return HR_EINVAL;
  hl = (size_t)(colon - s);
  if (s[0] == '[' && colon[-1] == ']') { /* [::1]:80 */
    s++;
    hl -= 2;
  }
  if (hl == 0 || hl >= host_len)
    return HR_EINVAL;
  errno = 0;
  p = strtol(colon + 1, &end, 10);
  if (errno || end == colon + 1 || *end != '\0' || p < 0 || p > 65535)
    return HR_EINVAL;
  memcpy(host, s, hl);
  host[hl] = '\0';
  *port = (int)p;
  return 0;
}

void hr_config_defaults(hr_config_t *c) {
  memset(c, 0, sizeof(*c));
  for (size_t i = 0; i < N_KEYS; i++) {
    int rc = hr_config_set(c, keys[i].path, keys[i].def, NULL);
    (void)rc; /* the defaults are valid by construction (unit-tested) */
  }
}

/* Flattens one JSON value to the string form set_value parses. */
static int json_to_string(const key_desc *k, const char *path, json_t *v,
                          char *buf, size_t len, hr_error_t *err) {
  if (k->type == K_INT || k->type == K_LONG) {
    if (!json_is_integer(v))
      return hr_error_set(err, HR_EINVAL, path, "%s: expected an integer",
                          path);
    snprintf(buf, len, "%lld", (long long)json_integer_value(v));
    return 0;
  }
  if (k->type == K_STR) {
    if (!json_is_string(v))
      return hr_error_set(err, HR_EINVAL, path, "%s: expected a string", path);
    if (json_string_length(v) >= len)
      return hr_error_set(err, HR_EINVAL, path, "%s: too long", path);
    snprintf(buf, len, "%s", json_string_value(v));
    return 0;
  }
  /* K_LIST: array of strings without commas */
  if (!json_is_array(v))
    return hr_error_set(err, HR_EINVAL, path, "%s: expected an array of strings",
                        path);
  buf[0] = '\0';
  size_t i, used = 0;
  json_t *e;
  json_array_foreach(v, i, e) {
    const char *s = json_string_value(e);
    if (s == NULL || strchr(s, ',') != NULL)
      return hr_error_set(err, HR_EINVAL, path,
                          "%s[%zu]: expected a string without commas", path, i);
    int w = snprintf(buf + used, len - used, "%s%s", i ? "," : "", s);
    if (w < 0 || (size_t)w >= len - used)
      return hr_error_set(err, HR_EINVAL, path, "%s: too long", path);
    used += (size_t)w;
  }
  if (json_array_size(v) == 0 && k->min > 0)
    return hr_error_set(err, HR_EINVAL, path, "%s: must not be empty", path);
  return 0;
}

static int merge_object(hr_config_t *c, json_t *obj, const char *prefix,
                        hr_error_t *err) {
  const char *name;
  json_t *v;
  char path[128];
  char buf[HR_AUTH_MAX_KEYS * HR_AUTH_KEY_ENTRY + 64];
  int rc, handled;

  json_object_foreach(obj, name, v) {
    snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "", name);
    if (strcmp(path, "experiments") == 0) {
      if ((rc = set_experiments(c, v, err)) != 0)
        return rc;
      continue;
    }
    if (json_is_object(v)) {
      if ((rc = merge_object(c, v, path, err)) != 0)
        return rc;
      continue;
    }
    if (strcmp(path, "redis") == 0 && json_is_string(v)) {
      rc = set_special(c, path, json_string_value(v), err, &handled);
      if (rc != 0)
        return rc;
      continue;
    }
    const key_desc *k = find_key(path);
    if (k == NULL)
      return hr_error_set(err, HR_EINVAL, path,
                          "unknown configuration key \"%s\"", path);
    if ((rc = json_to_string(k, path, v, buf, sizeof(buf), err)) != 0)
      return rc;
    if (strcmp(path, "listen") == 0)
      rc = set_special(c, path, buf, err, &handled);
    else
      rc = set_value(c, k, buf, err);
    if (rc != 0)
      return rc;
  }
  return 0;
}

/* Merge a parsed document (taken over) named `name`. */
static int load_root(hr_config_t *c, json_t *root, const json_error_t *jerr,
                     const char *name, hr_error_t *err) {
  int rc;

  if (root == NULL)
    return hr_error_set(err, HR_EIO, "", "%s:%d:%d: %s", name, jerr->line,
                        jerr->column, jerr->text);
  if (!json_is_object(root)) {
    json_decref(root);
    return hr_error_set(err, HR_EINVAL, "", "%s: top level is not an object",
                        name);
  }
  rc = merge_object(c, root, "", err);
  json_decref(root);
  if (rc == 0)
    snprintf(c->config_path, sizeof(c->config_path), "%s", name);
  return rc;
}

int hr_config_load_file(hr_config_t *c, const char *path, hr_error_t *err) {
  json_error_t jerr;
  json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
  return load_root(c, root, &jerr, path, err);
}

int hr_config_load_buffer(hr_config_t *c, const char *buf, size_t len,
                          const char *name, hr_error_t *err) {
  json_error_t jerr;
  json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
  return load_root(c, root, &jerr, name, err);
}

/* Appends the lines of `path` to the list at base (entries of `size`
 * bytes, *n of max used). */
static int append_lines(const char *path, const char *key, char *base,
                        size_t size, int *n, int max, hr_error_t *err) {
  FILE *f = fopen(path, "r");
  char line[1024];
  int lineno = 0;

  if (f == NULL)
    return hr_error_set(err, HR_EIO, key, "%s: %s: %s", key, path,
                        strerror(errno));
  while (fgets(line, sizeof(line), f) != NULL) {
    size_t len = strlen(line);
    char *p = line;
    lineno++;
    if (len == sizeof(line) - 1 && line[len - 1] != '\n') {
      fclose(f);
      return hr_error_set(err, HR_EINVAL, key, "%s: %s:%d: line too long",
                          key, path, lineno);
    }
    while (len > 0 && isspace((unsigned char)line[len - 1]))
      line[--len] = '\0';
    while (isspace((unsigned char)*p))
      p++, len--;
    if (len == 0 || *p == '#')
      continue;
    if (*n >= max || len >= size) {
      fclose(f);
      return hr_error_set(err, HR_EINVAL, key, "%s: %s:%d: %s", key, path,
                          lineno, *n >= max ? "too many entries"
                                            : "entry too long");
    }
    memcpy(base + (size_t)*n * size, p, len + 1);
    (*n)++;
  }
  fclose(f);
  return 0;
}

int hr_config_load_secrets(hr_config_t *c, hr_error_t *err) {
  int rc = 0;
  if (c->auth.api_keys_file[0] != '\0')
    rc = append_lines(c->auth.api_keys_file, "auth.api_keys_file",
                      c->auth.api_keys[0], HR_AUTH_KEY_ENTRY,
                      &c->auth.n_api_keys, HR_AUTH_MAX_KEYS, err);
  if (rc == 0 && c->auth.token_secrets_file[0] != '\0')
    rc = append_lines(c->auth.token_secrets_file, "auth.token_secrets_file",
                      c->auth.token_secrets[0], HR_AUTH_SECRET,
                      &c->auth.n_token_secrets, HR_AUTH_MAX_SECRETS, err);
  return rc;
}

int hr_config_load_env(hr_config_t *c, char *const *envp, hr_error_t *err) {
  static const char pfx[] = "HYPERREC_";
  char key[128];

  for (; envp && *envp; envp++) {
    const char *e = *envp, *eq = strchr(e, '=');
    size_t n;

    if (strncmp(e, pfx, sizeof(pfx) - 1) != 0 || eq == NULL)
      continue;
    n = (size_t)(eq - e) - (sizeof(pfx) - 1);
    if (n == 0 || n >= sizeof(key))
      continue;
    memcpy(key, e + sizeof(pfx) - 1, n);
    key[n] = '\0';
    if (strcmp(key, "CONFIG") == 0)
      continue; /* handled by main: it names the file */
    /* Map to a dotted path: find the key whose mangled form matches. */
    const char *match = NULL;
    if (strcmp(key, "REDIS") == 0)
      match = "redis";
    if (strcmp(key, "EXPERIMENTS") == 0)
      match = "experiments";
    for (size_t i = 0; match == NULL && i < N_KEYS; i++) {
      const char *p = keys[i].path;
      size_t j = 0;
      for (; p[j] && key[j]; j++) {
        char m = p[j] == '.' ? '_' : (char)toupper((unsigned char)p[j]);
        if (m != key[j])
          break;
      }
      if (p[j] == '\0' && key[j] == '\0')
        match = p;
    }
    if (match == NULL)
      return hr_error_set(err, HR_EINVAL, key,
                          "unknown environment variable HYPERREC_%s", key);
    int rc = hr_config_set(c, match, eq + 1, err);
    if (rc != 0)
      return rc;
  }
  return 0;
}

/* Is models_pin entry e ("slot=version") about slot `slot`? */
static int pin_slot_is(const char *e, const char *slot) {
  size_t n = strlen(slot);
  return strncmp(e, slot, n) == 0 && e[n] == '=';
}

uint64_t hr_config_pin(const hr_config_t *c, const char *slot) {
  for (int k = 0; k < c->n_pins; k++)
    if (pin_slot_is(c->pins[k], slot))
      return strtoull(c->pins[k] + strlen(slot) + 1, NULL, 10);
  return 0;
}

int hr_config_validate(const hr_config_t *c, hr_error_t *err) {
  hr_log_level_t lvl;

  if (c->recommend.default_k > c->recommend.max_k)
    return hr_error_set(err, HR_EINVAL, "recommend.default_k",
                        "recommend.default_k (%d) exceeds recommend.max_k (%d)",
                        c->recommend.default_k, c->recommend.max_k);
  if (c->redis.backoff_min_ms > c->redis.backoff_max_ms)
    return hr_error_set(err, HR_EINVAL, "redis.backoff_min_ms",
                        "redis.backoff_min_ms exceeds redis.backoff_max_ms");
  if (strcmp(c->http.unknown_fields, "reject") != 0 &&
      strcmp(c->http.unknown_fields, "ignore") != 0)
    return hr_error_set(err, HR_EINVAL, "http.unknown_fields",
                        "http.unknown_fields must be \"reject\" or \"ignore\"");
  if (hr_log_parse_level(c->log_level, &lvl) != 0)
    return hr_error_set(err, HR_EINVAL, "log_level",
                        "log_level must be debug, info, warn or error");
  for (int i = 0; i < c->n_pins; i++) {
    const char *p = c->pins[i], *eq = strchr(p, '=');
    int known = 0;
    if (eq == NULL || eq[1] < '1' || eq[1] > '9' ||
        strspn(eq + 1, "0123456789") != strlen(eq + 1) || strlen(eq + 1) > 19)
      return hr_error_set(err, HR_EINVAL, "models_pin",
                          "models_pin entry \"%s\" must be SLOT=VERSION (a "
                          "version directory's number)", p);
    for (int k = 0; k < c->n_slots; k++)
      if (pin_slot_is(p, c->slots[k])) {
        known = 1;
        for (int j = 0; j < i; j++)
          if (pin_slot_is(c->pins[j], c->slots[k]))
            return hr_error_set(err, HR_EINVAL, "models_pin",
                                "models_pin pins slot %s twice", c->slots[k]);
      }
    if (!known)
      return hr_error_set(err, HR_EINVAL, "models_pin",
                          "models_pin entry \"%s\" names no slot in slots", p);
  }
  for (int i = 0; i < c->n_experiments; i++)
    for (int j = 0; j < c->experiments[i].n_variants; j++) {
      const char *sl = c->experiments[i].v[j].slot;
      int known = sl[0] == '\0';
      for (int k = 0; !known && k < c->n_slots; k++)
        known = strcmp(sl, c->slots[k]) == 0;
      if (!known)
        return hr_error_set(err, HR_EINVAL, "experiments",
                            "%s.%s: slot \"%s\" is not in slots",
                            c->experiments[i].name,
                            c->experiments[i].v[j].name, sl);
    }
  if (c->admin.token[0] != '\0') {
    size_t n = strlen(c->admin.token);
    int ok = n >= 16;
    for (size_t i = 0; ok && i < n; i++)
      ok = c->admin.token[i] > 0x20 && c->admin.token[i] < 0x7f;
    if (!ok)
      return hr_error_set(err, HR_EINVAL, "admin.token",
                          "admin.token must be 16 to 127 printable characters "
                          "without spaces (or empty: admin endpoints off)");
  }
  {
    static const char *const what[] = {"auth.event", "auth.recommend",
                                        "auth.recommend_anonymous"};
    const char *val[] = {c->auth.event, c->auth.recommend,
                         c->auth.recommend_anonymous};
    for (int i = 0; i < 3; i++)
      if (strcmp(val[i], "none") != 0 && strcmp(val[i], "token") != 0 &&
          strcmp(val[i], "key") != 0)
        return hr_error_set(err, HR_EINVAL, what[i],
                            "%s must be \"none\", \"token\" or \"key\"",
                            what[i]);
  }
  for (int i = 0; i < c->auth.n_api_keys; i++) {
    const char *e = c->auth.api_keys[i], *colon = strchr(e, ':');
    size_t nl = colon ? (size_t)(colon - e) : 0;
    if (colon == NULL || nl < 1 || nl > 32 ||
        strspn(e, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                  "0123456789_.-") != nl ||
        strlen(colon + 1) != 64 ||
        strspn(colon + 1, "0123456789abcdef") != 64)
      return hr_error_set(err, HR_EINVAL, "auth.api_keys",
                          "auth.api_keys entry %d must be NAME:SHA256 (a "
                          "name of 1 to 32 of [A-Za-z0-9_.-], then the key's "
                          "SHA-256 as 64 lower-case hex digits; `hyperrec "
                          "hash-key` prints it)", i + 1);
    for (int j = 0; j < i; j++)
      if (strncmp(c->auth.api_keys[j], e, nl + 1) == 0)
        return hr_error_set(err, HR_EINVAL, "auth.api_keys",
                            "auth.api_keys names key \"%.*s\" twice",
                            (int)nl, e);
  }
  for (int i = 0; i < c->auth.n_token_secrets; i++) {
    const char *t = c->auth.token_secrets[i];
    size_t n = strlen(t);
    int ok = n >= 32;
    for (size_t j = 0; ok && j < n; j++)
      ok = t[j] > 0x20 && t[j] < 0x7f && t[j] != ',';
    if (!ok)
      return hr_error_set(err, HR_EINVAL, "auth.token_secrets",
                          "auth.token_secrets entry %d must be 32 to 255 "
                          "printable characters without spaces or commas",
                          i + 1);
  }
  for (int i = 0; i < c->n_slots; i++) {
    const char *s = c->slots[i];
    if (s[0] == '\0' || s[0] == '.' ||
        strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                  "0123456789_-.") != strlen(s))
      return hr_error_set(err, HR_EINVAL, "slots",
                          "slot name \"%s\" must be [A-Za-z0-9_.-]+", s);
  }
  return 0;
}

void hr_config_print_reference(void) {
  printf("| key | environment | type | default | description |\n");
  printf("| --- | --- | --- | --- | --- |\n");
  for (size_t i = 0; i < N_KEYS; i++) {
    const key_desc *k = &keys[i];
    char env[128];
    size_t j;
    for (j = 0; k->path[j] && j < sizeof(env) - 1; j++)
      env[j] = k->path[j] == '.' ? '_' : (char)toupper((unsigned char)k->path[j]);
    env[j] = '\0';
    printf("| `%s` | `HYPERREC_%s` | %s | `%s` | %s |\n", k->path, env,
           k->type == K_STR ? "string" : k->type == K_LIST ? "list" : "integer",
           k->def, k->doc);
  }
}

int hr_config_credentials_exposed(const hr_config_t *c) {
  const char *h = c->listen_host;
  int loopback = strncmp(h, "127.", 4) == 0 || strcmp(h, "localhost") == 0 ||
                 strcmp(h, "::1") == 0 || strcmp(h, "[::1]") == 0;
  int creds = c->admin.token[0] != '\0' || c->auth.n_api_keys > 0 ||
              c->auth.n_token_secrets > 0;
  return creds && !loopback && !c->http.tls_in_front;
}

int hr_config_origin_allowed(const hr_config_t *c, const char *origin) {
  for (int i = 0; i < c->http.n_cors_origins; i++)
    if (strcmp(c->http.cors_origins[i], "*") == 0 ||
        strcmp(c->http.cors_origins[i], origin) == 0)
      return 1;
  return 0;
}
