/* 50_lifecycle.c -- SIGHUP reload, pick-up of a new model version, refusal
 * of a corrupt one, a valgrind start/serve/stop cycle, and the drain of
 * connections already open. */
#include "lib/env.h"

#include "hr/crc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

static int write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (f == NULL)
    return -1;
  fputs(text, f);
  return fclose(f);
}

/* Copy a version into place as the trainer does: into a temporary
 * directory, then one rename (the server watches the slot directory and
 * would otherwise see a half-copied version). */
static int publish(const char *from, const char *dir) {
  char tmp[PATH_MAX];
  hrt_fmt(tmp, sizeof(tmp), "%s.tmp-copy", dir);
  if (hrt_copy_tree(from, tmp) != 0)
    return -1;
  return rename(tmp, dir);
}

static int recommend_status(hrt_env_t *e, int k) {
  int st;
  json_t *j = hrt_post(e, "/recommend",
                       json_pack("{s:s,s:i}", "user_id", "hup-user", "k", k), &st);
  json_decref(j);
  return st;
}

HR_TEST_T(lifecycle_sighup_reloads_limits, 60) {
  HRT_ENV(e);
  hrt_env_opts_t o = {.config_json = "{\"recommend\":{\"max_k\":5,\"default_k\":5}}"};
  int ok;

  ASSERT_EQ(hrt_env_start(&e, &o), 0);
  ASSERT_EQ(recommend_status(&e, 6), 400);
  ASSERT_EQ(recommend_status(&e, 5), 200);
  ASSERT_EQ(write_text(e.config, "{\"recommend\":{\"max_k\":50,\"default_k\":5}}"), 0);
  ASSERT_EQ(kill(e.srv.pid, SIGHUP), 0);
  HRT_POLL(ok, 5000, recommend_status(&e, 6) == 200);
  ASSERT_MSG(ok, "k=6 still refused after SIGHUP");
  ASSERT_EQ(hrt_server_log_count(&e.srv, "\"config_reloaded\"", NULL), 1);
  /* An invalid file is refused and changes nothing. */
  ASSERT_EQ(write_text(e.config, "{\"recommend\":{\"max_k\":\"lots\"}}"), 0);
  ASSERT_EQ(kill(e.srv.pid, SIGHUP), 0);
  HRT_POLL(ok, 5000,
           hrt_server_log_count(&e.srv, "\"config_reload_failed\"", NULL) == 1);
  ASSERT(ok);
  ASSERT_EQ(recommend_status(&e, 6), 200);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

HR_TEST_T(lifecycle_new_version_served_corrupt_refused, 90) {
  HRT_ENV(e);
  hrt_env_opts_t o = {.config_json = "{\"models_poll_ms\":100}"};
  char dir[PATH_MAX], file[PATH_MAX];
  long long v0;
  int ok, st;
  json_t *j;
  FILE *f;

  ASSERT_EQ(hrt_env_start(&e, &o), 0);
  v0 = hrt_served_version(&e);
  ASSERT_EQ(v0, e.fx.version);
  /* A newer copy of the same model is picked up without a restart. */
  hrt_fmt(dir, sizeof(dir), "%s/default/%lld", e.models, v0 + 10);
  ASSERT_EQ(publish(e.fx.version_dir, dir), 0);
  HRT_POLL(ok, 5000, hrt_served_version(&e) == v0 + 10);
  ASSERT_MSG(ok, "version %lld not served", v0 + 10);
  /* A still newer one with a truncated model.bin is refused; v0+10 serves. */
  hrt_fmt(dir, sizeof(dir), "%s/default/.tmp-%lld", e.models, v0 + 20);
  ASSERT_EQ(hrt_copy_tree(e.fx.version_dir, dir), 0);
  hrt_fmt(file, sizeof(file), "%s/model.bin", dir);
  ASSERT_EQ(truncate(file, 100), 0);
  hrt_fmt(file, sizeof(file), "%s/default/%lld", e.models, v0 + 20);
  ASSERT_EQ(rename(dir, file), 0);
  HRT_POLL(ok, 5000,
           hrt_server_log_count(&e.srv, "\"model_refused\"", NULL) >= 1);
  ASSERT_MSG(ok, "no model_refused log line");
  ASSERT_EQ(hrt_served_version(&e), v0 + 10);
  j = hrt_get(&e, "/models", &st);
  ASSERT_EQ(hrt_jint(j, "slots[0].refused[0].version"), v0 + 20);
  ASSERT_NOT_NULL(hrt_jstr(j, "slots[0].refused[0].reason"));
  json_decref(j);
  char *m = hrt_metrics(&e);
  ASSERT_NOT_NULL(m);
  ASSERT_DBL_NEAR(hrt_metric(m, "hyperrec_model_refused_total", NULL), 1, 1e-9);
  free(m);
  /* Requests keep working on the serving version. */
  j = hrt_post(&e, "/recommend", json_pack("{s:s}", "user_id", "x"), &st);
  ASSERT_EQ(st, 200);
  ASSERT_EQ(hrt_jint(j, "model.version"), v0 + 10);
  json_decref(j);
  /* A version directory still being written (no final rename) is ignored. */
  hrt_fmt(dir, sizeof(dir), "%s/default/.tmp-%lld-1", e.models, v0 + 30);
  ASSERT_EQ(hrt_copy_tree(e.fx.version_dir, dir), 0);
  hrt_sleep_ms(300);
  ASSERT_EQ(hrt_served_version(&e), v0 + 10);
  (void)f;
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

/* The non-sanitizer server binary: valgrind cannot run an ASan build, so
 * `make asan` points HR_VALGRIND_BIN at the plain build. */
static const char *valgrind_target(char *buf, size_t n) {
  const char *v = getenv("HR_VALGRIND_BIN");
  if (v && *v) {
    if (v[0] == '/')
      hrt_fmt(buf, n, "%s", v);
    else
      hrt_fmt(buf, n, "%s/%s", hr_test_root(), v);
    return buf;
  }
  return hrt_bin_path("hyperrec", buf, n);
}

HR_TEST_T(lifecycle_valgrind_start_serve_stop_no_leak, 240) {
  HRT_ENV(e);
  hrt_env_opts_t o = {.no_model = 1}; /* only Redis; we start the server */
  char bin[PATH_MAX], log[PATH_MAX], redis[64], line[512];
  const char *argv[16];
  pid_t pid;
  int port = 0, st, n = 0;
  json_t *j;
  FILE *f;

  ASSERT_EQ(hrt_env_start(&e, &o), 0);
  ASSERT_EQ(hrt_server_stop(&e.srv), 0); /* the env's own server */
  ASSERT_EQ(hrt_fixture_get(&e.fx), 0);
  ASSERT_EQ(hrt_fixture_install(&e.fx, e.models), 0);
  hrt_fmt(redis, sizeof(redis), "127.0.0.1:%d", e.redis.port);
  hrt_fmt(log, sizeof(log), "%s/valgrind.log", hr_test_tmpdir());
  argv[n++] = "valgrind";
  argv[n++] = "--leak-check=full";
  argv[n++] = "--show-leak-kinds=definite,indirect,possible";
  argv[n++] = "--errors-for-leak-kinds=definite,indirect,possible";
  argv[n++] = "--error-exitcode=97";
  argv[n++] = valgrind_target(bin, sizeof(bin));
  argv[n++] = "--listen";
  argv[n++] = "127.0.0.1:0";
  argv[n++] = "--redis";
  argv[n++] = redis;
  argv[n++] = "--models";
  argv[n++] = e.models;
  argv[n] = NULL;
  pid = hrt_spawn(argv, log);
  ASSERT_GT(pid, 0);
  for (long long d = hrt_now_ms() + 60000; port == 0 && hrt_now_ms() < d;) {
    f = fopen(log, "r");
    while (f && fgets(line, sizeof(line), f)) {
      char *p = strstr(line, "\"event\":\"listening\"");
      char *q = p ? strstr(p, "\"port\":") : NULL;
      if (q)
        port = atoi(q + 7);
    }
    if (f)
      fclose(f);
    if (port == 0)
      hrt_sleep_ms(50);
  }
  if (port == 0) {
    hrt_terminate(pid, 1000);
    hrt_print_tail("valgrind log", log, 40);
    HR_FAIL("server under valgrind did not start (is valgrind installed?)");
  }
  e.srv.port = port; /* talk to the valgrind server through the env helpers */
  for (int i = 0; i < 3; i++) {
    j = hrt_post(&e, "/recommend",
                 json_pack("{s:s,s:i,s:{s:s}}", "user_id", "vg-user", "k", 5,
                           "context", "tz", "Europe/Paris"), &st);
    ASSERT_EQ(st, 200);
    json_decref(j);
    j = hrt_post(&e, "/event",
                 json_pack("{s:[{s:s,s:s,s:s,s:s}]}", "events", "user_id",
                           "vg-user", "item_id", "vg-item", "type", "click",
                           "event_id", i == 1 ? "dup" : (i ? "b" : "dup")),
                 &st);
    ASSERT_EQ(st, 202);
    json_decref(j);
    j = hrt_post_text(&e, "/recommend", "{\"user_id\":", &st);
    ASSERT_EQ(st, 400);
    json_decref(j);
    json_decref(hrt_get(&e, "/metrics", &st));
    json_decref(hrt_get(&e, "/models", &st));
    json_decref(hrt_get(&e, "/readyz", &st));
  }
  e.srv.port = 0;
  st = hrt_terminate(pid, 60000);
  if (st != 0)
    hrt_print_tail("valgrind log", log, 60);
  ASSERT_MSG(st == 0, "server under valgrind exited with %d (97: valgrind "
                      "found errors or leaks)", st);
  int clean = 0;
  f = fopen(log, "r");
  while (f && fgets(line, sizeof(line), f))
    if (strstr(line, "All heap blocks were freed") ||
        strstr(line, "definitely lost: 0 bytes"))
      clean = 1;
  if (f)
    fclose(f);
  ASSERT_MSG(clean, "no clean leak summary in %s", log);
  hrt_redis_stop(&e.redis);
  e.stopped = 1;
  return 0;
}

HR_TEST_T(lifecycle_many_sighups_keep_working, 90) {
  HRT_ENV(e);
  hrt_env_opts_t o = {.config_json = "{\"recommend\":{\"max_k\":50}}"};
  int ok;

  ASSERT_EQ(hrt_env_start(&e, &o), 0);
  for (int i = 1; i <= 100; i++) {
    ASSERT_EQ(kill(e.srv.pid, SIGHUP), 0);
    HRT_POLL(ok, 5000,
             hrt_server_log_count(&e.srv, "\"config_reloaded\"", NULL) == i);
    ASSERT_MSG(ok, "reload %d not applied", i);
    if (i % 10 == 0)
      ASSERT_EQ(recommend_status(&e, 6), 200);
  }
  ASSERT_EQ(hrt_server_log_count(&e.srv, "\"config_reload_failed\"", NULL), 0);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

HR_TEST_T(lifecycle_many_versions_refused_once, 120) {
  HRT_ENV(e);
  hrt_env_opts_t o = {.config_json = "{\"models_poll_ms\":100}", .no_model = 1};
  char dir[PATH_MAX];
  int ok;

  ASSERT_EQ(hrt_env_start(&e, &o), 0);
  ASSERT_EQ(hrt_fixture_get(&e.fx), 0);
  /* 3000 broken versions newer than the one valid version, created before
   * it so that the directory listing does not put the newest first. */
  for (int v = 2000; v < 5000; v++) {
    hrt_fmt(dir, sizeof(dir), "%s/default/%d", e.models, v);
    ASSERT_EQ(hrt_mkdirs(dir), 0);
  }
  hrt_fmt(dir, sizeof(dir), "%s/default/1000", e.models);
  ASSERT_EQ(publish(e.fx.version_dir, dir), 0);
  HRT_POLL(ok, 20000, hrt_served_version(&e) == 1000);
  ASSERT_MSG(ok, "version 1000 not served (%lld)", hrt_served_version(&e));
  hrt_sleep_ms(500); /* several more scans */
  char *m = hrt_metrics(&e);
  ASSERT_NOT_NULL(m);
  ASSERT_DBL_NEAR(hrt_metric(m, "hyperrec_model_refused_total", NULL), 3000,
                  1e-9);
  free(m);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

#define ADMIN_TOKEN "test-admin-token-0123456789"

/* POST to an admin path with the given Authorization value (NULL: none)
 * and a body of Content-Type ct (none when ct is NULL); the parsed answer
 * (NULL if not JSON), status in *st, WWW-Authenticate into www. */
static json_t *admin_req(hrt_env_t *e, const char *path, const char *auth,
                         const char *ct, const char *body, int *st, char *www,
                         size_t nw) {
  char hdr[256];
  hrt_resp_t r = {0};
  json_t *j = NULL;
  hrt_fmt(hdr, sizeof(hdr), "%s%s%s%s%s%s",
          auth ? "Authorization: " : "", auth ? auth : "", auth ? "\r\n" : "",
          ct ? "Content-Type: " : "", ct ? ct : "", ct ? "\r\n" : "");
  *st = 0;
  if (hrt_req(e, "POST", path, hdr, body, body ? strlen(body) : 0, &r) == 0) {
    *st = r.status;
    j = json_loads(r.body, 0, NULL);
    if (www != NULL && hrt_resp_header(&r, "WWW-Authenticate", www, nw) == NULL)
      www[0] = '\0';
  }
  hrt_resp_free(&r);
  return j;
}

/* The same with a JSON body (NULL: none). */
static json_t *admin_post(hrt_env_t *e, const char *path, const char *auth,
                          const char *body, int *st, char *www, size_t nw) {
  return admin_req(e, path, auth, body ? "application/json" : NULL, body, st,
                   www, nw);
}

/* Publish the fixture as version v of the default slot and wait until it
 * serves. Returns 0, or 1 after printing why. */
static int serve_new(hrt_env_t *e, long long v) {
  char dir[PATH_MAX];
  int ok;
  hrt_fmt(dir, sizeof(dir), "%s/default/%lld", e->models, v);
  ASSERT_EQ(publish(e->fx.version_dir, dir), 0);
  HRT_POLL(ok, 5000, hrt_served_version(e) == v);
  ASSERT_MSG(ok, "version %lld not served", v);
  return 0;
}

/* POST a rollback without a version: 200 from `from` to `to`, which then
 * serves. Returns 0, or 1 after printing why. */
static int rollback_to(hrt_env_t *e, const char *bearer, long long from,
                       long long to) {
  int st;
  json_t *j = admin_post(e, "/admin/models/default/rollback", bearer, NULL,
                         &st, NULL, 0);
  int ok = st == 200 && hrt_jint(j, "from") == from && hrt_jint(j, "to") == to;
  if (!ok)
    fprintf(stderr, "  rollback %lld -> %lld: %d %s\n", from, to, st,
            hrt_jdump(j));
  json_decref(j);
  ASSERT_EQ(hrt_served_version(e), to);
  return !ok;
}

/* A rollback without a version passes over a broken older version (it is
 * refused, with its reason) and serves the newest valid one, in one call. */
HR_TEST_T(lifecycle_rollback_skips_a_broken_older_version, 90) {
  HRT_ENV(e);
  hrt_env_opts_t o = {.config_json = "{\"models_poll_ms\":100,\"admin\":"
                                     "{\"token\":\"" ADMIN_TOKEN "\"}}"};
  const char *bearer = "Bearer " ADMIN_TOKEN;
  char dir[PATH_MAX], file[PATH_MAX], tmp[PATH_MAX];
  long long v0;
  int st;
  json_t *j;

  ASSERT_EQ(hrt_env_start(&e, &o), 0);
  v0 = hrt_served_version(&e);
  /* v0 + 20 serves; then a broken v0 + 10 appears, whole, in one rename:
   * older than the serving version, the scanner never looks at it, so
   * only the rollback meets it */
  ASSERT_EQ(serve_new(&e, v0 + 20), 0);
  hrt_fmt(tmp, sizeof(tmp), "%s/default/.tmp-broken", e.models);
  ASSERT_EQ(hrt_copy_tree(e.fx.version_dir, tmp), 0);
  hrt_fmt(file, sizeof(file), "%s/model.bin", tmp);
  ASSERT_EQ(truncate(file, 100), 0);
  hrt_fmt(dir, sizeof(dir), "%s/default/%lld", e.models, v0 + 10);
  ASSERT_EQ(rename(tmp, dir), 0);
  hrt_sleep_ms(300); /* a scan or two: still not refused, still v0 + 20 */
  ASSERT_EQ(hrt_served_version(&e), v0 + 20);
  j = hrt_get(&e, "/models", &st);
  ASSERT_EQ(json_array_size(hrt_jget(j, "slots[0].refused")), 0);
  json_decref(j);
  ASSERT_EQ(rollback_to(&e, bearer, v0 + 20, v0), 0);
  j = hrt_get(&e, "/models", &st);
  ASSERT_EQ(hrt_jint(j, "slots[0].refused[0].version"), v0 + 10);
  ASSERT_MSG(strstr(hrt_jstr(j, "slots[0].refused[0].reason"), "model.bin") !=
                 NULL,
             "%s", hrt_jdump(j));
  json_decref(j);
  /* nothing older is left: 409 */
  j = admin_post(&e, "/admin/models/default/rollback", bearer, NULL, &st,
                 NULL, 0);
  ASSERT_API_ERROR(j, st, 409, "conflict", "version");
  json_decref(j);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

/* Rollback through the admin API: bearer token, the previous version
 * served and pinned (a newer version is not picked up until
 * /admin/reload), visible in /models and /metrics; bad requests get
 * precise errors. */
HR_TEST_T(lifecycle_admin_rollback_and_reload, 90) {
  HRT_ENV(e);
  hrt_env_opts_t o = {.config_json = "{\"models_poll_ms\":100,\"admin\":"
                                     "{\"token\":\"" ADMIN_TOKEN "\"}}"};
  const char *bearer = "Bearer " ADMIN_TOKEN;
  char dir[PATH_MAX], www[64];
  long long v0;
  int ok, st;
  json_t *j;
  char *m;

  ASSERT_EQ(hrt_env_start(&e, &o), 0);
  v0 = hrt_served_version(&e);
  ASSERT_EQ(serve_new(&e, v0 + 10), 0);

  /* No token, a wrong one, another scheme: 401 with WWW-Authenticate. */
  static const char *const bad_auth[] = {
      NULL, "Bearer wrong-token-0123456789ab", "Bearer " ADMIN_TOKEN "x",
      "Bearer test-admin-token-012345678", "Basic " ADMIN_TOKEN, "Bearer "};
  for (size_t k = 0; k < sizeof(bad_auth) / sizeof(bad_auth[0]); k++) {
    j = admin_post(&e, "/admin/models/default/rollback", bad_auth[k], NULL,
                   &st, www, sizeof(www));
    ASSERT_MSG(st == 401, "auth %zu: %d", k, st);
    ASSERT_STR_EQ(hrt_jstr(j, "error.code"), "unauthorized");
    ASSERT_STR_EQ(www, "Bearer");
    json_decref(j);
  }
  ASSERT_EQ(hrt_served_version(&e), v0 + 10);

  /* Bad requests. */
  j = admin_post(&e, "/admin/models/nope/rollback", bearer, NULL, &st, NULL, 0);
  ASSERT_API_ERROR(j, st, 404, "not_found", "");
  json_decref(j);
  j = admin_post(&e, "/admin/models/default/rollback", bearer,
                 "{\"version\":\"old\"}", &st, NULL, 0);
  ASSERT_API_ERROR(j, st, 400, "invalid_field", "version");
  json_decref(j);
  j = admin_post(&e, "/admin/models/default/rollback", bearer,
                 "{\"version\":12345}", &st, NULL, 0);
  ASSERT_API_ERROR(j, st, 404, "not_found", "version");
  json_decref(j);
  j = admin_post(&e, "/admin/models/default/rollback", bearer, "[1]", &st,
                 NULL, 0);
  ASSERT_API_ERROR(j, st, 400, "invalid_json", "");
  json_decref(j);

  /* Roll back to the previous version: served at once, pinned. */
  ASSERT_EQ(rollback_to(&e, bearer, v0 + 10, v0), 0);
  j = hrt_get(&e, "/models", &st);
  ASSERT_EQ(hrt_jint(j, "slots[0].pinned"), v0);
  json_decref(j);
  m = hrt_metrics(&e);
  ASSERT_NOT_NULL(m);
  ASSERT_DBL_NEAR(hrt_metric(m, "hyperrec_model_rollbacks_total", NULL), 1,
                  1e-9);
  ASSERT_DBL_NEAR(
      hrt_metric(m, "hyperrec_model_version", "slot=\"default\"", NULL),
      (double)v0, 0.5);
  free(m);
  j = hrt_post(&e, "/recommend", json_pack("{s:s}", "user_id", "x"), &st);
  ASSERT_EQ(st, 200);
  ASSERT_EQ(hrt_jint(j, "model.version"), v0);
  json_decref(j);
  /* Nothing older than v0: 409. */
  j = admin_post(&e, "/admin/models/default/rollback", bearer, "{}", &st,
                 NULL, 0);
  ASSERT_API_ERROR(j, st, 409, "conflict", "version");
  json_decref(j);

  /* A newer version appears: the pinned slot stays on v0 ... */
  hrt_fmt(dir, sizeof(dir), "%s/default/%lld", e.models, v0 + 20);
  ASSERT_EQ(publish(e.fx.version_dir, dir), 0);
  usleep(600 * 1000); /* six poll intervals */
  ASSERT_EQ(hrt_served_version(&e), v0);
  /* ... until /admin/reload clears the pin and serves the newest. */
  j = admin_post(&e, "/admin/reload", bearer, NULL, &st, NULL, 0);
  ASSERT_MSG(st == 200, "%d %s", st, hrt_jdump(j));
  ASSERT_EQ(hrt_jint(j, "unpinned"), 1);
  json_decref(j);
  HRT_POLL(ok, 5000, hrt_served_version(&e) == v0 + 20);
  ASSERT(ok);
  j = hrt_get(&e, "/models", &st);
  ASSERT(json_is_null(hrt_jget(j, "slots[0].pinned")));
  json_decref(j);
  /* A given version. */
  char body[64];
  hrt_fmt(body, sizeof(body), "{\"version\":%lld}", v0 + 10);
  j = admin_post(&e, "/admin/models/default/rollback", bearer, body, &st,
                 NULL, 0);
  ASSERT_MSG(st == 200, "%d %s", st, hrt_jdump(j));
  ASSERT_EQ(hrt_jint(j, "to"), v0 + 10);
  json_decref(j);
  ASSERT_EQ(hrt_served_version(&e), v0 + 10);
  ASSERT_EQ(hrt_server_log_count(&e.srv, "\"model_rollback\"", NULL), 2);
  /* The serving version again: 409. */
  j = admin_post(&e, "/admin/models/default/rollback", bearer, body, &st,
                 NULL, 0);
  ASSERT_API_ERROR(j, st, 409, "conflict", "version");
  json_decref(j);
  /* A version that fails its checks: 409 with the reason, still v0+10. */
  hrt_fmt(dir, sizeof(dir), "%s/default/%lld", e.models, v0 + 30);
  ASSERT_EQ(hrt_copy_tree(e.fx.version_dir, dir), 0);
  hrt_fmt(body, sizeof(body), "%s/model.bin", dir);
  ASSERT_EQ(truncate(body, 100), 0);
  hrt_fmt(body, sizeof(body), "{\"version\":%lld}", v0 + 30);
  j = admin_post(&e, "/admin/models/default/rollback", bearer, body, &st,
                 NULL, 0);
  ASSERT_API_ERROR(j, st, 409, "conflict", "version");
  ASSERT_MSG(strstr(hrt_jstr(j, "error.message"), "model.bin") != NULL, "%s",
             hrt_jdump(j));
  json_decref(j);
  ASSERT_EQ(hrt_served_version(&e), v0 + 10);
  { /* the conflicts are counted under their own status */
    char *m = hrt_metrics(&e);
    ASSERT_NOT_NULL(m);
    double n409 = hrt_metric(m, "hyperrec_http_requests_total",
                             "endpoint=\"admin\"", "status=\"409\"", NULL);
    free(m);
    ASSERT_MSG(n409 >= 3, "admin 409s counted: %g", n409);
  }
  /* A body that is not JSON: 415. */
  j = admin_req(&e, "/admin/reload", bearer, "text/plain", "x", &st, NULL, 0);
  ASSERT_API_ERROR(j, st, 415, "unsupported_media_type", "");
  json_decref(j);
  /* The token rotates with SIGHUP. */
  ASSERT_EQ(write_text(e.config, "{\"models_poll_ms\":100,\"admin\":"
                       "{\"token\":\"rotated-token-abcdefghij\"}}"), 0);
  ASSERT_EQ(kill(e.srv.pid, SIGHUP), 0);
  HRT_POLL(ok, 5000,
           hrt_server_log_count(&e.srv, "\"config_reloaded\"", NULL) == 1);
  ASSERT(ok);
  j = admin_post(&e, "/admin/reload", bearer, NULL, &st, NULL, 0);
  ASSERT_EQ(st, 401);
  json_decref(j);
  j = admin_post(&e, "/admin/reload", "Bearer rotated-token-abcdefghij", NULL,
                 &st, NULL, 0);
  ASSERT_EQ(st, 200);
  json_decref(j);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

/* A rollback's load runs on a thread of its own: with one HTTP worker,
 * /healthz and /recommend are answered while a rollback waits on a version
 * whose manifest is a FIFO nobody writes yet. */
typedef struct {
  hrt_env_t *e;
  int status;
  char body[64];
} rb_arg_t;

static void *rollback_thread(void *p) {
  rb_arg_t *a = p;
  json_t *j = admin_post(a->e, "/admin/models/default/rollback",
                         "Bearer " ADMIN_TOKEN, a->body, &a->status, NULL, 0);
  json_decref(j);
  return NULL;
}

HR_TEST_T(lifecycle_admin_load_does_not_block_requests, 60) {
  HRT_ENV(e);
  hrt_env_opts_t o = {.config_json = "{\"threads\":1,\"admin\":"
                                     "{\"token\":\"" ADMIN_TOKEN "\"}}"};
  char dir[PATH_MAX], fifo[PATH_MAX];
  rb_arg_t a = {0};
  pthread_t t;
  long long v0;
  int st, ok, fd;
  json_t *j;

  ASSERT_EQ(hrt_env_start(&e, &o), 0);
  v0 = hrt_served_version(&e);
  hrt_fmt(dir, sizeof(dir), "%s/default/%lld", e.models, v0 - 1);
  ASSERT_EQ(hrt_copy_tree(e.fx.version_dir, dir), 0);
  hrt_fmt(fifo, sizeof(fifo), "%s/manifest.json", dir);
  ASSERT_EQ(unlink(fifo), 0);
  ASSERT_EQ(mkfifo(fifo, 0600), 0);
  a.e = &e;
  hrt_fmt(a.body, sizeof(a.body), "{\"version\":%lld}", v0 - 1);
  ASSERT_EQ(pthread_create(&t, NULL, rollback_thread, &a), 0);
  hrt_sleep_ms(300); /* the rollback is now blocked on the FIFO */
  ASSERT_EQ(a.status, 0);
  for (int k = 0; k < 5; k++) {
    j = hrt_get(&e, "/healthz", &st);
    ASSERT_EQ(st, 200);
    json_decref(j);
    j = hrt_post(&e, "/recommend", json_pack("{s:s}", "user_id", "x"), &st);
    ASSERT_EQ(st, 200);
    json_decref(j);
  }
  ASSERT_EQ(a.status, 0);
  /* Unblock it: the loader's open returns, and a manifest that is not a
   * regular file is refused, 409. */
  fd = open(fifo, O_WRONLY);
  ASSERT(fd >= 0);
  close(fd);
  ASSERT_EQ(pthread_join(t, NULL), 0);
  ASSERT_EQ(a.status, 409);
  HRT_POLL(ok, 1000, hrt_served_version(&e) == v0);
  ASSERT(ok);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

/* Without admin.token the admin endpoints do not exist. */
HR_TEST_T(lifecycle_admin_off_without_token, 30) {
  HRT_ENV(e);
  int st;
  json_t *j;
  ASSERT_EQ(hrt_env_start(&e, NULL), 0);
  j = admin_post(&e, "/admin/reload", "Bearer " ADMIN_TOKEN, NULL, &st, NULL,
                 0);
  ASSERT_API_ERROR(j, st, 404, "not_found", "");
  ASSERT_MSG(strstr(hrt_jstr(j, "error.message"), "admin.token") != NULL,
             "%s", hrt_jdump(j));
  json_decref(j);
  /* another method too: 404, not 405 */
  j = hrt_get(&e, "/admin/reload", &st);
  ASSERT_API_ERROR(j, st, 404, "not_found", "");
  json_decref(j);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

/* Flip one byte of `file` at its middle. */
static int flip_middle(const char *file) {
  struct stat st;
  FILE *f;
  int c;
  if (stat(file, &st) != 0 || st.st_size < 2 || (f = fopen(file, "r+b")) == NULL)
    return -1;
  fseek(f, st.st_size / 2, SEEK_SET);
  c = fgetc(f);
  fseek(f, st.st_size / 2, SEEK_SET);
  fputc(c ^ 0x5a, f);
  return fclose(f);
}

static int file_replace(const char *file, const char *from, const char *to) {
  FILE *f = fopen(file, "rb");
  char buf[65536], out[65536 + 64], *p;
  size_t n;
  if (f == NULL)
    return -1;
  n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  if ((p = strstr(buf, from)) == NULL)
    return -1;
  hrt_fmt(out, sizeof(out), "%.*s%s%s", (int)(p - buf), buf, to,
          p + strlen(from));
  return write_text(file, out);
}

static int copy_file(const char *from, const char *to) {
  FILE *in = fopen(from, "rb"), *out = in ? fopen(to, "wb") : NULL;
  char buf[8192];
  size_t n;
  int rc = 0;
  if (in == NULL || out == NULL) {
    if (in)
      fclose(in);
    return -1;
  }
  while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
    if (fwrite(buf, 1, n, out) != n)
      rc = -1;
  fclose(in);
  return fclose(out) != 0 ? -1 : rc;
}

/* index.bin made hostile with every checksum right, as anyone who can
 * write the files could. Kind 0: the entry point's level-1 list names a
 * node that has no upper level (a search would read that node's absent
 * upper lists: such a file crashed the server at every start). Kind 1:
 * node 0's level-0 list names its first neighbour twice (searches returned
 * that item twice; found by the fuzzer). The header's CRCs and the
 * manifest's CRC-32 of the file are recomputed. 0 or -1. */
static int hostile_index(const char *vdir, int kind) {
  char path[PATH_MAX], hex[9], old_hex[16];
  FILE *f;
  unsigned char *b;
  long len;
  uint64_t off_levels, off_upper_off, off_upper;
  uint32_t entry, uo, zero = 0, crc;
  json_t *man;
  json_error_t je;

  hrt_fmt(path, sizeof(path), "%s/index.bin", vdir);
  if ((f = fopen(path, "rb")) == NULL)
    return -1;
  fseek(f, 0, SEEK_END);
  len = ftell(f);
  rewind(f);
  b = malloc((size_t)len);
  if (b == NULL || fread(b, 1, (size_t)len, f) != (size_t)len) {
    fclose(f);
    free(b);
    return -1;
  }
  fclose(f);
  memcpy(&off_levels, b + 80, 8);
  memcpy(&off_upper_off, b + 88, 8);
  memcpy(&off_upper, b + 104, 8);
  memcpy(&entry, b + 60, 4);
  if (kind == 1) {
    uint64_t off_links0;
    memcpy(&off_links0, b + 96, 8);
    memcpy(b + off_links0 + 4, b + off_links0, 4);
  } else {
    if (b[off_levels + entry] == 0) { /* a graph with no upper level */
      free(b);
      return -1;
    }
    while (b[off_levels + zero] != 0)
      zero++;
    memcpy(&uo, b + off_upper_off + 4 * (size_t)entry, 4);
    memcpy(b + off_upper + 4 * (size_t)uo, &zero, 4);
  }
  crc = hr_crc32(0, b + 128, (size_t)len - 128);
  memcpy(b + 120, &crc, 4);
  crc = hr_crc32(0, b, 124);
  memcpy(b + 124, &crc, 4);
  crc = hr_crc32(0, b, (size_t)len);
  if ((f = fopen(path, "wb")) == NULL ||
      fwrite(b, 1, (size_t)len, f) != (size_t)len) {
    if (f)
      fclose(f);
    free(b);
    return -1;
  }
  fclose(f);
  free(b);
  hrt_fmt(path, sizeof(path), "%s/manifest.json", vdir);
  if ((man = json_load_file(path, 0, &je)) == NULL)
    return -1;
  snprintf(hex, sizeof(hex), "%08x", crc);
  json_t *entry_j =
      json_object_get(json_object_get(man, "files"), "index.bin");
  snprintf(old_hex, sizeof(old_hex), "%s",
           json_string_value(json_object_get(entry_j, "crc32")));
  json_object_set_new(entry_j, "crc32", json_string(hex));
  int rc = json_dump_file(man, path, JSON_INDENT(2));
  json_decref(man);
  return rc == 0 && strcmp(old_hex, hex) != 0 ? 0 : -1;
}

/* Each kind of broken version is refused with a reason that names what is
 * wrong, the serving version keeps serving, and a refused version is tried
 * again once its files change (here: repaired). */
HR_TEST_T(lifecycle_corrupt_versions_refused_with_reasons, 90) {
  HRT_ENV(e);
  hrt_env_opts_t o = {.config_json = "{\"models_poll_ms\":100}"};
  char dir[PATH_MAX], file[PATH_MAX];
  long long v0;
  int ok, st;
  json_t *j;
  static const struct {
    const char *what, *file, *reason;
  } cases[] = {
      {"truncated", "model.bin", "model.bin"},
      {"flipped", "index.bin", "index.bin"},
      {"format", "manifest.json", "format_version"},
      {"hostile graph", "index.bin", "not on that level"},
      {"listed twice", "index.bin", "names a node twice"},
      {"missing", "items.tsv", "items.tsv"},
  };
  const int nc = (int)(sizeof(cases) / sizeof(cases[0]));

  ASSERT_EQ(hrt_env_start(&e, &o), 0);
  v0 = hrt_served_version(&e);
  for (int k = 0; k < nc; k++) {
    char tmp[PATH_MAX];
    /* broken before it is renamed into place, as a trainer would leave it */
    hrt_fmt(tmp, sizeof(tmp), "%s/default/.tmp-%d", e.models, k);
    hrt_fmt(dir, sizeof(dir), "%s/default/%lld", e.models, v0 + 10 * (k + 1));
    ASSERT_EQ(hrt_copy_tree(e.fx.version_dir, tmp), 0);
    hrt_fmt(file, sizeof(file), "%s/%s", tmp, cases[k].file);
    if (k == 0)
      ASSERT_EQ(truncate(file, 100), 0);
    else if (k == 1)
      ASSERT_EQ(flip_middle(file), 0);
    else if (k == 2)
      ASSERT_EQ(file_replace(file, "\"format_version\": 1",
                             "\"format_version\": 99"), 0);
    else if (k == 3 || k == 4)
      ASSERT_EQ(hostile_index(tmp, k - 3), 0);
    else
      ASSERT_EQ(unlink(file), 0);
    ASSERT_EQ(rename(tmp, dir), 0);
    HRT_POLL(ok, 5000, hrt_server_log_count(&e.srv, "\"model_refused\"",
                                            NULL) >= k + 1);
    ASSERT_MSG(ok, "%s: not refused", cases[k].what);
    ASSERT_EQ(hrt_served_version(&e), v0);
    j = hrt_get(&e, "/models", &st);
    ASSERT_EQ(hrt_jint(j, "slots[0].refused[0].version"), v0 + 10 * (k + 1));
    const char *why = hrt_jstr(j, "slots[0].refused[0].reason");
    ASSERT_MSG(why != NULL && strstr(why, cases[k].reason) != NULL,
               "%s: reason %s", cases[k].what, why ? why : "(none)");
    json_decref(j);
  }
  /* Written without the final rename: never looked at. */
  hrt_fmt(dir, sizeof(dir), "%s/default/.tmp-%lld-7", e.models, v0 + 90);
  ASSERT_EQ(hrt_copy_tree(e.fx.version_dir, dir), 0);
  hrt_sleep_ms(300);
  ASSERT_EQ(hrt_served_version(&e), v0);
  ASSERT_EQ(hrt_server_log_count(&e.srv, "\"model_refused\"", NULL), nc);
  /* Requests are answered by the serving version throughout. */
  j = hrt_post(&e, "/recommend", json_pack("{s:s}", "user_id", "x"), &st);
  ASSERT_EQ(st, 200);
  ASSERT_EQ(hrt_jint(j, "model.version"), v0);
  json_decref(j);
  /* Repair the newest broken one (the missing file comes back): its files
   * changed, so it is tried again and served. */
  hrt_fmt(dir, sizeof(dir), "%s/items.fix", hr_test_tmpdir());
  hrt_fmt(file, sizeof(file), "%s/items.tsv", e.fx.version_dir);
  ASSERT_EQ(copy_file(file, dir), 0);
  hrt_fmt(file, sizeof(file), "%s/default/%lld/items.tsv", e.models,
          v0 + 10 * nc);
  ASSERT_EQ(rename(dir, file), 0); /* whole, in one step */
  HRT_POLL(ok, 5000, hrt_served_version(&e) == v0 + 10 * nc);
  ASSERT_MSG(ok, "repaired version not served (%lld)", hrt_served_version(&e));
  ASSERT_GE(hrt_server_log_count(&e.srv, "\"model_retry\"", NULL), 1);
  /* /models no longer lists it as refused; the other broken ones stay */
  j = hrt_get(&e, "/models", &st);
  ASSERT_EQ(st, 200);
  json_t *rf = hrt_jget(j, "slots[0].refused");
  ASSERT_MSG(json_array_size(rf) == (size_t)nc - 1, "%s", hrt_jdump(rf));
  for (size_t k = 0; k < json_array_size(rf); k++)
    ASSERT(json_integer_value(json_object_get(json_array_get(rf, k),
                                              "version")) != v0 + 10 * nc);
  json_decref(j);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

/* With models_watch (the default) a version renamed into place is served
 * at once, long before the next poll; without it, only the poll finds it. */
HR_TEST_T(lifecycle_watch_serves_a_renamed_version_at_once, 60) {
  for (int watch = 1; watch >= 0; watch--) {
    HRT_ENV(e);
    char cfg[128], tmp[PATH_MAX], dir[PATH_MAX];
    long long v0;
    int ok;
    hrt_fmt(cfg, sizeof(cfg),
            "{\"models_poll_ms\":600000,\"models_watch\":%d}", watch);
    hrt_env_opts_t o = {.config_json = cfg};
    ASSERT_EQ(hrt_env_start(&e, &o), 0);
    v0 = hrt_served_version(&e);
    hrt_fmt(tmp, sizeof(tmp), "%s/default/.tmp-%lld-1", e.models, v0 + 5);
    hrt_fmt(dir, sizeof(dir), "%s/default/%lld", e.models, v0 + 5);
    ASSERT_EQ(hrt_copy_tree(e.fx.version_dir, tmp), 0);
    ASSERT_EQ(rename(tmp, dir), 0);
    HRT_POLL(ok, 2000, hrt_served_version(&e) == v0 + 5);
    ASSERT_MSG(ok == watch, "models_watch %d: version %s within 2 s", watch,
               ok ? "served" : "not served");
    ASSERT_EQ(hrt_server_log_count(&e.srv, "\"model_watch_unavailable\"",
                                   NULL), 0);
    ASSERT_EQ(hrt_env_stop(&e), 0);
  }
  return 0;
}

/* models_pin: the slot serves that version, not the newest; a rollback
 * moves it until /admin/reload, which goes back to the pinned one. */
HR_TEST_T(lifecycle_config_pin_holds_a_version, 60) {
  HRT_ENV(e);
  char cfg[256], dir[PATH_MAX];
  hrt_fixture_t fx;
  long long v0;
  json_t *j;
  int st, ok;

  ASSERT_EQ(hrt_fixture_get(&fx), 0);
  v0 = fx.version;
  hrt_fmt(cfg, sizeof(cfg),
          "{\"models_poll_ms\":100,\"models_pin\":[\"default=%lld\"],"
          "\"admin\":{\"token\":\"" ADMIN_TOKEN "\"}}", v0);
  hrt_env_opts_t o = {.config_json = cfg};
  ASSERT_EQ(hrt_env_start(&e, &o), 0);
  ASSERT_EQ(hrt_served_version(&e), v0);
  hrt_fmt(dir, sizeof(dir), "%s/default/%lld", e.models, v0 + 10);
  ASSERT_EQ(publish(e.fx.version_dir, dir), 0);
  hrt_sleep_ms(500);
  ASSERT_EQ(hrt_served_version(&e), v0);
  j = hrt_get(&e, "/models", &st);
  ASSERT_EQ(hrt_jint(j, "slots[0].pinned"), v0);
  ASSERT_STR_EQ(hrt_jstr(j, "slots[0].pinned_by"), "config");
  json_decref(j);
  char body[64];
  hrt_fmt(body, sizeof(body), "{\"version\":%lld}", v0 + 10);
  j = admin_post(&e, "/admin/models/default/rollback", "Bearer " ADMIN_TOKEN,
                 body, &st, NULL, 0);
  ASSERT_MSG(st == 200, "%d %s", st, hrt_jdump(j));
  json_decref(j);
  ASSERT_EQ(hrt_served_version(&e), v0 + 10);
  j = hrt_get(&e, "/models", &st);
  ASSERT_STR_EQ(hrt_jstr(j, "slots[0].pinned_by"), "rollback");
  json_decref(j);
  j = admin_post(&e, "/admin/reload", "Bearer " ADMIN_TOKEN, NULL, &st, NULL,
                 0);
  ASSERT_EQ(st, 200);
  json_decref(j);
  HRT_POLL(ok, 3000, hrt_served_version(&e) == v0);
  ASSERT(ok);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

/* ------------------------------------------------- drain, open connections */

/* A TCP connection to 127.0.0.1:port with 5 s timeouts; -1 on failure. */
static int dial(int port) {
  struct sockaddr_in a = {0};
  struct timeval tv = {5, 0};
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* Sends req on fd (a connection kept open) and reads one whole answer
 * (headers and Content-Length bytes) into out; its length, or -1. */
static int ask(int fd, const char *req, char *out, size_t cap) {
  size_t got = 0;
  if (req != NULL &&
      send(fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req))
    return -1;
  while (got + 1 < cap) {
    ssize_t n = recv(fd, out + got, cap - 1 - got, 0);
    char *end, *cl;
    if (n <= 0)
      return -1;
    got += (size_t)n;
    out[got] = '\0';
    if ((end = strstr(out, "\r\n\r\n")) != NULL &&
        (cl = strcasestr(out, "Content-Length: ")) != NULL && cl < end &&
        got >= (size_t)(end + 4 - out) + strtoul(cl + 16, NULL, 10))
      return (int)got;
  }
  return -1;
}

/* After SIGTERM the server drains: a request still on its way keeps it up
 * (up to http.shutdown_grace_ms), new connections are refused, and a
 * request that arrives on a connection opened before (a load balancer's
 * pooled one) is answered -- not refused with 503 -- with Connection:
 * close, so that its client moves on to another replica. */
HR_TEST_T(lifecycle_drain_answers_open_connections_and_closes_them, 60) {
  HRT_ENV(e);
  static const char body[] =
      "{\"user_id\":\"u1\",\"type\":\"click\",\"item_id\":\"i2\"}";
  char req[512], out[8192];
  int slow, pooled, fresh, ok;

  ASSERT_EQ(hrt_env_start(&e, NULL), 0);
  const char *rec = "POST /recommend HTTP/1.1\r\nHost: t\r\n" HRT_AUTH_HEADER
                    "Content-Type: application/json\r\nContent-Length: 22"
                    "\r\n\r\n{\"user_id\":\"u1\",\"k\":3}";
  /* a request whose body is half sent: in flight until it is finished */
  snprintf(req, sizeof(req),
           "POST /event HTTP/1.1\r\nHost: t\r\n" HRT_AUTH_HEADER
           "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n"
           "%.10s", strlen(body), body);
  ASSERT((slow = dial(e.srv.port)) >= 0);
  ASSERT_EQ(send(slow, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
  /* a kept-alive connection, idle after one answer */
  ASSERT((pooled = dial(e.srv.port)) >= 0);
  ASSERT_MSG(ask(pooled, rec, out, sizeof(out)) > 0 &&
                 strncmp(out, "HTTP/1.1 200", 12) == 0 &&
                 strcasestr(out, "Connection: close") == NULL,
             "%s", out);
  ASSERT_EQ(kill(e.srv.pid, SIGTERM), 0);
  /* draining once a new connection is refused */
  HRT_POLL(ok, 5000, ((fresh = dial(e.srv.port)) < 0 || (close(fresh), 0)));
  ASSERT_MSG(ok, "new connections still accepted after SIGTERM");
  int n = ask(pooled, rec, out, sizeof(out));
  ASSERT_MSG(n > 0 && strncmp(out, "HTTP/1.1 200", 12) == 0 &&
                 strcasestr(out, "Connection: close") != NULL,
             "the pooled connection's request: %s", n > 0 ? out : "no answer");
  ASSERT_EQ(recv(pooled, out, sizeof(out), 0), 0); /* then closed */
  close(pooled);
  /* the half-sent request is finished and acknowledged */
  ASSERT_EQ(send(slow, body + 10, strlen(body) - 10, MSG_NOSIGNAL),
            (ssize_t)(strlen(body) - 10));
  n = ask(slow, NULL, out, sizeof(out));
  ASSERT_MSG(n > 0 && strncmp(out, "HTTP/1.1 202", 12) == 0, "%s",
             n > 0 ? out : "no answer");
  close(slow);
  ASSERT_EQ(hrt_wait(e.srv.pid, 10000), 0);
  e.srv.pid = 0;
  ASSERT_EQ(hrt_server_log_count(&e.srv, "\"stopped\"", NULL), 1);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}
