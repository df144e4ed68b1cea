/* env.h -- one integration-test environment: a private redis-server, the
 * fixture model, a config file and bin/hyperrec, plus the helpers tests use
 * to talk to them (JSON over HTTP, Redis inspection, Prometheus text).
 *
 * Declare it with HRT_ENV(e): the cleanup attribute stops whatever is still
 * running when the test returns early (a failed ASSERT), printing the
 * server's log tail, so no test leaks a process. A test that reaches its end
 * calls hrt_env_stop() and asserts the graceful exit (0, no sanitizer
 * report). Everything listens on 127.0.0.1 only. */
#ifndef HRT_ENV_H
#define HRT_ENV_H

#include "lib/fixture.h"
#include "lib/httpc.h"
#include "lib/proc.h"
#include "test.h"

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <limits.h>

typedef struct {
  const char *config_json; /* written to tmp/hyperrec.json, passed --config */
  int no_model;            /* an empty models directory */
  int redis_down;          /* Redis' port is known but nothing listens */
  int redis_durable;       /* AOF, appendfsync always (hrt_redis_t) */
} hrt_env_opts_t;

typedef struct {
  hrt_redis_t redis;
  hrt_server_t srv;
  hrt_fixture_t fx;        /* valid unless opts.no_model */
  char models[PATH_MAX];   /* --models */
  char config[PATH_MAX];   /* "" when no config file */
  redisContext *rc;        /* inspection connection (lazy) */
  int started, stopped;
} hrt_env_t;

void hrt_env_cleanup(hrt_env_t *e);
#define HRT_ENV(name)                                                         \
  hrt_env_t name __attribute__((cleanup(hrt_env_cleanup))) = {0}

/** Start Redis (unless opts->redis_down) and hyperrec on the fixture model.
 *  opts may be NULL. Returns 0 or -1 (reason on stderr). */
int hrt_env_start(hrt_env_t *e, const hrt_env_opts_t *opts);
/** Stop hyperrec (SIGTERM) and Redis. Returns the server's exit status as
 *  hrt_server_stop does: 0 means a graceful, sanitizer-clean exit. */
int hrt_env_stop(hrt_env_t *e);

/* ------------------------------------------------------------ HTTP + JSON */

/** POST body (taken, even on failure; NULL sends "{}") as JSON to path.
 *  Returns the parsed response body (new reference) or NULL when it is not
 *  JSON; *status is the HTTP status (0 without an answer). */
/* The API key every test server accepts (tests/runner.c puts its hash in
 * HYPERREC_AUTH_API_KEYS); hrt_post and hrt_post_text send it. */
#define HRT_API_KEY "hrk_tests_0123456789abcdef"
#define HRT_AUTH_HEADER "Authorization: Bearer " HRT_API_KEY "\r\n"

json_t *hrt_post(hrt_env_t *e, const char *path, json_t *body, int *status);
/** The same with a literal body text. */
json_t *hrt_post_text(hrt_env_t *e, const char *path, const char *body,
                      int *status);
/** GET path; the response body parsed as JSON (NULL if it is not). */
json_t *hrt_get(hrt_env_t *e, const char *path, int *status);
/** Raw request: method, path, extra header lines, body (may be NULL). */
int hrt_req(hrt_env_t *e, const char *method, const char *path,
            const char *headers, const char *body, size_t body_len,
            hrt_resp_t *out);

/** Value at a path like "error.field", "items[0].item_id" (borrowed). */
json_t *hrt_jget(json_t *root, const char *path);
/** String at path, or NULL when absent or not a string. */
const char *hrt_jstr(json_t *root, const char *path);
/** Integer at path, or LLONG_MIN when absent or not an integer. */
long long hrt_jint(json_t *root, const char *path);
/** The version slot 0 serves (GET /models), -1 on failure. */
long long hrt_served_version(hrt_env_t *e);
/** fit's rule over a list of candidates (JSON objects in cost order, the
 *  cheapest first): the name of the cheapest whose score (key `score`) is
 *  within one standard error (key `se`) of the best's. NULL if none. */
const char *hrt_one_se_winner(json_t *list, const char *score,
                              const char *se);
/** Item ids of a /recommend answer, in order. Returns 0 or -1. */
int hrt_item_ids(json_t *resp, hrt_strv_t *out);
/** 1 when the scores of a /recommend answer never increase, else 0. */
int hrt_scores_sorted(json_t *resp);
/** Compact dump for messages (static buffer, truncated). */
const char *hrt_jdump(const json_t *j);

/** A JSON body (Content-Type set) with extra header lines (may be NULL). */
json_t *hrt_send(hrt_env_t *e, const char *method, const char *path,
                 const char *headers, const char *body, int *status);
/** A request to another server on 127.0.0.1:port with the tests' API key;
 *  body NULL sends none. The answer parsed as JSON. */
json_t *hrt_port_json(int port, const char *method, const char *path,
                      const char *headers, const char *body, int *status);

/* An API error: status, error.code and error.field (and a message). */
#define ASSERT_API_ERROR(j, status, want_status, want_code, want_field)      \
  do {                                                                        \
    ASSERT_MSG((status) == (want_status), "status %d, wanted %d; body %s",    \
               (status), (want_status), hrt_jdump(j));                       \
    ASSERT_MSG(hrt_jstr((j), "error.code") != NULL &&                        \
                   strcmp(hrt_jstr((j), "error.code"), (want_code)) == 0,    \
               "error.code: wanted \"%s\"; body %s", (want_code),             \
               hrt_jdump(j));                                                 \
    ASSERT_MSG(hrt_jstr((j), "error.field") != NULL &&                       \
                   strcmp(hrt_jstr((j), "error.field"), (want_field)) == 0,  \
               "error.field: wanted \"%s\"; body %s", (want_field),           \
               hrt_jdump(j));                                                 \
    ASSERT_MSG(hrt_jstr((j), "error.message") != NULL &&                     \
                   *hrt_jstr((j), "error.message") != '\0',                   \
               "error.message missing; body %s", hrt_jdump(j));               \
  } while (0)

/* Poll cond every 25 ms for up to timeout_ms (x mult); ok gets the result. */
#define HRT_POLL(ok, timeout_ms, cond)                                        \
  do {                                                                        \
    long long d_ = hrt_now_ms() + (long long)(timeout_ms) * hrt_mult();      \
    while (!((ok) = (cond)) && hrt_now_ms() < d_)                             \
      hrt_sleep_ms(25);                                                       \
  } while (0)

/* ------------------------------------------------------------ Redis */

/** A command's reply (caller frees with freeReplyObject), NULL on error.
 *  Connects lazily and reconnects after an error. */
redisReply *hrt_rcmd(hrt_env_t *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/** An integer reply (DBSIZE, XLEN, LLEN, EXISTS...), or -1. */
long long hrt_rint(hrt_env_t *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/** A bulk-string reply copied to out; 0, or -1 for nil/error. */
int hrt_rstr(hrt_env_t *e, char *out, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/** An array of strings (LRANGE...) appended to out; 0 or -1. */
int hrt_rlist(hrt_env_t *e, hrt_strv_t *out, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ------------------------------------------------------------ metrics */

/** Fetch /metrics; the text (malloc'd, caller frees) or NULL. */
char *hrt_metrics(hrt_env_t *e);
/** Sum of the samples of metric `name` (exact name, any labels) whose label
 *  set contains every given substring (NULL-terminated list). Returns -1
 *  when no sample matched. */
double hrt_metric(const char *text, const char *name, ...)
    __attribute__((sentinel));

#endif
