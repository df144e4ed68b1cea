/* config.h -- the server's configuration: defaults, JSON file, environment,
 * command-line flags, validated once at start.
 *
 * Precedence, lowest first: built-in defaults, the JSON file (--config, or
 * HYPERREC_CONFIG), HYPERREC_<KEY> environment variables (the key's dotted
 * path upper-cased with '.' -> '_', e.g. HYPERREC_REDIS_COMMAND_TIMEOUT_MS),
 * then flags. Every key is described in one table (config.c) which also
 * produces docs/configuration.md's list via `hyperrec --help-config`.
 * An hr_config_t is a plain value without pointers: copy it freely. It is
 * loaded on the main thread; the server publishes an immutable copy that
 * SIGHUP may replace (only keys marked reloadable change). */
#ifndef HR_CONFIG_H
#define HR_CONFIG_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "hr/err.h"
#include "hr/log.h"

#define HR_CONFIG_MAX_LIST 16
#define HR_CONFIG_STR 256
#define HR_EXP_MAX 4            /* experiments */
#define HR_EXP_MAX_VARIANTS 8   /* variants per experiment */
#define HR_EXP_NAME 32          /* [a-z0-9_-], for names in ids */
#define HR_AUTH_MAX_KEYS 64     /* API keys, from the config and its file */
#define HR_AUTH_KEY_ENTRY 100   /* "name:<64 hex>" and its NUL */
#define HR_AUTH_MAX_SECRETS 4   /* token signing keys (rotation) */
#define HR_AUTH_SECRET 256

typedef struct {
  char name[HR_EXP_NAME + 1];
  int weight;                   /* >= 0; the shares are weight / sum */
  char slot[64];                /* the model slot that answers */
  int candidates;               /* ANN candidates, 0: ann.candidates */
} hr_variant_cfg_t;

typedef struct {
  char name[HR_EXP_NAME + 1];
  char salt[65];
  int n_variants;               /* the first is the control */
  hr_variant_cfg_t v[HR_EXP_MAX_VARIANTS];
} hr_experiment_cfg_t;

typedef struct {
  char config_path[PATH_MAX];   /* file the values came from, "" if none */
  char listen_host[HR_CONFIG_STR];
  int listen_port;              /* 0: pick a free port */
  int threads;                  /* HTTP worker threads, 0 = 8 per core */
  char models_dir[PATH_MAX];
  char slots[HR_CONFIG_MAX_LIST][64];
  int n_slots;
  int models_poll_ms;           /* how often to look for new versions */
  int models_watch;             /* 1: also on inotify events */
  int models_gate_max_drop_pct; /* quality gate: score drop refused */
  int models_gate_min_count_pct; /* quality gate: items/users kept */
  char pins[HR_CONFIG_MAX_LIST][96]; /* "slot=version" */
  int n_pins;
  char log_level[16];
  struct {
    char host[HR_CONFIG_STR];
    int port;
    int connect_timeout_ms;
    int command_timeout_ms;
    int backoff_min_ms;
    int backoff_max_ms;
    char key_prefix[32];
    int history_cap;
    long stream_maxlen;         /* 0: never trim the event stream */
    int event_id_ttl_s;
  } redis;
  struct {
    long max_body_bytes;
    int connection_timeout_s;
    int header_timeout_s;       /* headers complete, from the connection */
    int body_timeout_s;         /* body complete, from the headers */
    int shutdown_grace_ms;
    char cors_origins[HR_CONFIG_MAX_LIST][HR_CONFIG_STR];
    int n_cors_origins;
    int tls_in_front;           /* 1: a TLS proxy terminates in front */
    int max_connections;        /* held at once, in all */
    int max_connections_per_ip; /* held at once from one address */
    char unknown_fields[16];    /* "reject" or "ignore" */
  } http;
  struct {
    int default_k;
    int max_k;
    int max_history;
    int max_exclude;
    int user_cache_mb;          /* kept of users per model version, MiB */
  } recommend;
  struct {
    int max_batch;
  } event;
  struct {
    char token[128];            /* bearer token of the admin endpoints */
  } admin;
  /* Credentials of /recommend and /event (docs/security.md). The files'
   * entries are appended by hr_config_load_secrets. */
  struct {
    char api_keys[HR_AUTH_MAX_KEYS][HR_AUTH_KEY_ENTRY]; /* "name:sha256" */
    int n_api_keys;
    char api_keys_file[PATH_MAX];
    char token_secrets[HR_AUTH_MAX_SECRETS][HR_AUTH_SECRET];
    int n_token_secrets;
    char token_secrets_file[PATH_MAX];
    char event[8];              /* "none", "token" or "key" */
    char recommend[8];          /* requests naming a user_id */
    char recommend_anonymous[8]; /* requests without one */
    int token_max_ttl_s;        /* a token expiring later is refused */
    int key_rps, key_burst;     /* per API key, per replica; 0: no limit */
    int token_rps, token_burst; /* per user token, per replica */
  } auth;
  /* "experiments": [...] in the file, HYPERREC_EXPERIMENTS as JSON; the
   * first one splits /recommend */
  hr_experiment_cfg_t experiments[HR_EXP_MAX];
  int n_experiments;
  int experiments_force_header; /* 1: X-Hyperrec-Variant picks a variant */
  int experiments_flush_ms;     /* impressions reach Redis this often */
  int experiments_dedupe_ttl_s; /* a recommendation's click counts once
                                   within this long */
  struct {
    int min_items;              /* smaller catalogues are scored exactly */
    int candidates;             /* retrieved from the index, then ranked */
    int ef;                     /* search beam width */
    int exact;                  /* 1: norm-bound pass makes retrieval exact */
    int kept;                   /* candidates kept per user history */
  } ann;
  /* Item sets every replica reads from Redis (itemsets.h). */
  struct {
    int refresh_ms;             /* hidden set and event stream read this often */
    int max_hidden;             /* items hidden at once */
  } items;
  struct {
    int half_life_s;            /* an event's weight halves this often */
    int window_s;               /* read back at start */
    int max_items;              /* items counted at once */
  } trending;
  struct {
    int enabled;                /* 1: the console at /ui/ */
  } ui;
} hr_config_t;

/** Fill `c` with the built-in defaults. */
void hr_config_defaults(hr_config_t *c);

/** Merge a JSON file over `c`. Unknown keys, wrong types and values out of
 *  range are errors (HR_EINVAL/HR_EIO) naming the key in err->field. */
int hr_config_load_file(hr_config_t *c, const char *path, hr_error_t *err);

/** hr_config_load_file over `len` bytes of JSON in memory; `name` stands for
 *  the file in messages (and becomes config_path on success). */
int hr_config_load_buffer(hr_config_t *c, const char *buf, size_t len,
                          const char *name, hr_error_t *err);

/** Append the entries of auth.api_keys_file and auth.token_secrets_file
 *  (when set) to auth.api_keys and auth.token_secrets: one per line,
 *  blank lines and lines starting with # skipped. HR_EIO when a file
 *  cannot be read, HR_EINVAL (field named) when there are too many. Called
 *  after the other sources, at start and on SIGHUP (rotation). */
int hr_config_load_secrets(hr_config_t *c, hr_error_t *err);

/** Merge HYPERREC_* variables from `envp` (NULL-terminated, e.g. environ).
 *  An unknown HYPERREC_ variable is an error, so typos are not ignored. */
int hr_config_load_env(hr_config_t *c, char *const *envp, hr_error_t *err);

/** Set one key by dotted path from a string ("redis.port", "6380"). */
int hr_config_set(hr_config_t *c, const char *key, const char *value,
                  hr_error_t *err);

/** Parse "HOST:PORT" (port 0-65535) into host/port buffers. */
int hr_config_parse_hostport(const char *s, char *host, size_t host_len,
                             int *port);

/** The version models_pin pins `slot` to (the first entry for it), 0 when
 *  none. */
uint64_t hr_config_pin(const hr_config_t *c, const char *slot);

/** Cross-field checks (e.g. default_k <= max_k). Call after all merges. */
int hr_config_validate(const hr_config_t *c, hr_error_t *err);

/** Print every key, its type, default and description (Markdown table). */
void hr_config_print_reference(void);

/** Is `origin` allowed by http.cors_origins ("*" allows all)? */
int hr_config_origin_allowed(const hr_config_t *c, const char *origin);

/** 1 when credentials (admin token, API keys, token secrets) are set, the
 *  listen address is not loopback and http.tls_in_front is 0: they would
 *  cross the network in clear text (the server warns at start). */
int hr_config_credentials_exposed(const hr_config_t *c);

#endif
