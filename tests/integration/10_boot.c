/* 10_boot.c -- start-up, liveness/readiness, /models, /metrics, request ids,
 * CORS pre-flight, and the graceful SIGTERM exit every test relies on. */
#include "lib/env.h"

#include <ctype.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

HR_TEST_T(boot_healthz_and_graceful_exit, 60) {
  HRT_ENV(e);
  hrt_resp_t r;
  char buf[256];
  json_t *j;
  int st;

  ASSERT_EQ(hrt_env_start(&e, NULL), 0);
  ASSERT_GT(e.srv.port, 0);
  ASSERT_EQ(hrt_server_log_count(&e.srv, "\"listening\"", NULL), 1);
  ASSERT_EQ(hrt_req(&e, "GET", "/healthz", NULL, NULL, 0, &r), 0);
  ASSERT_EQ(r.status, 200);
  ASSERT_NOT_NULL(hrt_resp_header(&r, "Content-Type", buf, sizeof(buf)));
  ASSERT_MSG(strncmp(buf, "application/json", 16) == 0, "Content-Type %s",
             buf);
  ASSERT_NOT_NULL(hrt_resp_header(&r, "X-Request-Id", buf, sizeof(buf)));
  ASSERT_GT(strlen(buf), 0);
  j = json_loadb(r.body, r.body_len, 0, NULL);
  hrt_resp_free(&r);
  ASSERT_NOT_NULL(j);
  ASSERT_STR_EQ(hrt_jstr(j, "status"), "ok");
  json_decref(j);
  /* HEAD-less clients poll /healthz; a second call must work the same. */
  j = hrt_get(&e, "/healthz", &st);
  ASSERT_EQ(st, 200);
  json_decref(j);
  ASSERT_EQ(hrt_env_stop(&e), 0); /* SIGTERM -> exit 0, no sanitizer report */
  return 0;
}

/* `hyperrec healthcheck` (the image's HEALTHCHECK) reads the server's
 * configuration: a flag or a config file's wildcard address lead it to the
 * port; a stopped server is exit 1, a port it cannot know exit 2. */
HR_TEST_T(boot_healthcheck_command_follows_the_port, 60) {
  HRT_ENV(e);
  char bin[PATH_MAX], listen[64], cfg[PATH_MAX], log[PATH_MAX];

  ASSERT_EQ(hrt_env_start(&e, NULL), 0);
  hrt_bin_path("hyperrec", bin, sizeof(bin));
  snprintf(listen, sizeof(listen), "127.0.0.1:%d", e.srv.port);
  snprintf(log, sizeof(log), "%s/healthcheck.log", hr_test_tmpdir());
  snprintf(cfg, sizeof(cfg), "%s/healthcheck.json", hr_test_tmpdir());
  FILE *f = fopen(cfg, "w");
  ASSERT_NOT_NULL(f);
  fprintf(f, "{\"listen\": \"0.0.0.0:%d\"}\n", e.srv.port);
  ASSERT_EQ(fclose(f), 0);
  const char *by_flag[] = {bin, "healthcheck", "--listen", listen, NULL};
  const char *by_file[] = {bin, "healthcheck", "--config", cfg, NULL};
  const char *no_port[] = {bin, "healthcheck", "--listen", "127.0.0.1:0",
                           NULL};
  ASSERT_EQ(hrt_run(by_flag, log, 10000), 0);
  ASSERT_EQ(hrt_run(by_file, log, 10000), 0);
  ASSERT_EQ(hrt_run(no_port, log, 10000), 2);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  ASSERT_EQ(hrt_run(by_flag, log, 10000), 1);
  char *text = hrt_slurp(log);
  int named = text != NULL && strstr(text, listen) != NULL &&
              strstr(text, "no answer") != NULL;
  free(text);
  ASSERT_MSG(named, "no message naming %s (%s)", listen, log);
  return 0;
}

/* A second server on the port the first one holds exits 1 naming the
 * address, instead of sharing the port (SO_REUSEPORT would let it). */
HR_TEST_T(boot_taken_port_exits_1, 60) {
  HRT_ENV(e);
  char bin[PATH_MAX], listen[64], redis[64], log[PATH_MAX], *text;
  int st, rc;
  json_t *j;

  ASSERT_EQ(hrt_env_start(&e, NULL), 0);
  snprintf(listen, sizeof(listen), "127.0.0.1:%d", e.srv.port);
  snprintf(redis, sizeof(redis), "127.0.0.1:%d", e.redis.port);
  snprintf(log, sizeof(log), "%s/second.log", hr_test_tmpdir());
  const char *argv[] = {hrt_bin_path("hyperrec", bin, sizeof(bin)),
                        "--listen", listen, "--redis", redis, "--models",
                        e.models, NULL};
  rc = hrt_run(argv, log, 10000 * hrt_mult());
  ASSERT_MSG(rc == 1, "second server on %s: exit %d", listen, rc);
  text = hrt_slurp(log);
  ASSERT_NOT_NULL(text);
  ASSERT_MSG(strstr(text, listen) != NULL, "log does not name %s: %s",
             listen, text);
  free(text);
  ASSERT_MSG(!hrt_file_has_sanitizer_report(log),
             "sanitizer report from the server that could not start");
  /* the first one still answers */
  j = hrt_get(&e, "/healthz", &st);
  ASSERT_EQ(st, 200);
  json_decref(j);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

HR_TEST_T(boot_readyz_ready_with_model_and_redis, 60) {
  HRT_ENV(e);
  json_t *j;
  int st;

  ASSERT_EQ(hrt_env_start(&e, NULL), 0);
  j = hrt_get(&e, "/readyz", &st);
  ASSERT_MSG(st == 200, "readyz %d: %s", st, hrt_jdump(j));
  ASSERT_STR_EQ(hrt_jstr(j, "status"), "ready");
  ASSERT(json_is_true(hrt_jget(j, "model")));
  ASSERT(json_is_true(hrt_jget(j, "redis")));
  json_decref(j);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

HR_TEST_T(boot_without_model_not_ready, 60) {
  HRT_ENV(e);
  hrt_env_opts_t o = {.no_model = 1};
  json_t *j;
  int st;

  ASSERT_EQ(hrt_env_start(&e, &o), 0);
  j = hrt_get(&e, "/healthz", &st);
  ASSERT_EQ(st, 200); /* alive, just not ready */
  json_decref(j);
  j = hrt_get(&e, "/readyz", &st);
  ASSERT_MSG(st == 503, "readyz %d: %s", st, hrt_jdump(j));
  ASSERT_STR_EQ(hrt_jstr(j, "status"), "not_ready");
  ASSERT(json_is_false(hrt_jget(j, "model")));
  ASSERT(json_is_true(hrt_jget(j, "redis")));
  json_decref(j);
  j = hrt_post(&e, "/recommend", json_pack("{s:s}", "user_id", "u1"), &st);
  ASSERT_API_ERROR(j, st, 503, "no_model", "");
  json_decref(j);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

HR_TEST_T(boot_models_lists_default_slot, 60) {
  HRT_ENV(e);
  json_t *j, *slot;
  char want[64];
  int st;

  ASSERT_EQ(hrt_env_start(&e, NULL), 0);
  j = hrt_get(&e, "/models", &st);
  ASSERT_MSG(st == 200, "/models %d: %s", st, hrt_jdump(j));
  ASSERT_EQ(json_array_size(hrt_jget(j, "slots")), 1);
  slot = hrt_jget(j, "slots[0]");
  ASSERT_STR_EQ(hrt_jstr(slot, "name"), "default");
  ASSERT_EQ(hrt_jint(slot, "version"), e.fx.version);
  ASSERT_NOT_NULL(hrt_jstr(slot, "kind"));
  ASSERT_NOT_NULL(hrt_jstr(slot, "loaded_at"));
  ASSERT_GT(hrt_jint(slot, "dim"), 0);
  ASSERT_GT(hrt_jint(slot, "n_items"), HRT_FIXTURE_ITEMS / 2);
  ASSERT_LE(hrt_jint(slot, "n_items"), HRT_FIXTURE_ITEMS);
  ASSERT_GT(hrt_jint(slot, "n_users"), HRT_FIXTURE_USERS / 2);
  ASSERT_LE(hrt_jint(slot, "n_users"), HRT_FIXTURE_USERS);
  ASSERT_GT(hrt_jint(slot, "size_bytes"), 0);
  snprintf(want, sizeof(want), "default/%lld", e.fx.version);
  ASSERT_MSG(hrt_jstr(slot, "path") != NULL &&
                 strstr(hrt_jstr(slot, "path"), want) != NULL,
             "path should name %s: %s", want, hrt_jdump(slot));
  json_decref(j);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

/* Flip one byte in the middle of every file but the manifest, so each
 * per-file checksum fails. */
static int corrupt_version(const char *dir) {
  static const char *const names[] = {"model.bin", "items.tsv", "index.bin"};
  int n = 0;

  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
    char path[PATH_MAX];
    struct stat sb;
    unsigned char c;
    int fd;
    hrt_fmt(path, sizeof(path), "%s/%s", dir, names[i]);
    if (stat(path, &sb) != 0 || sb.st_size == 0)
      continue;
    fd = open(path, O_RDWR);
    if (fd < 0)
      return -1;
    if (pread(fd, &c, 1, sb.st_size / 2) != 1)
      c = 0;
    c ^= 0x5a;
    if (pwrite(fd, &c, 1, sb.st_size / 2) != 1) {
      close(fd);
      return -1;
    }
    close(fd);
    n++;
  }
  return n;
}

HR_TEST_T(boot_serves_newest_valid_version, 60) {
  HRT_ENV(e);
  hrt_fixture_t fx;
  char from[PATH_MAX], older[PATH_MAX], newer[PATH_MAX], models[PATH_MAX];
  json_t *j;
  int st;

  /* models/default/{V-1 (a copy), V (the real one), V+1 (corrupt)}: the
   * server must skip the broken newest and serve V. */
  ASSERT_EQ(hrt_fixture_get(&fx), 0);
  hrt_fmt(models, sizeof(models), "%s/models", hr_test_tmpdir());
  ASSERT_EQ(hrt_fixture_install(&fx, models), 0);
  hrt_fmt(from, sizeof(from), "%s/default/%lld", models, fx.version);
  hrt_fmt(older, sizeof(older), "%s/default/%lld", models, fx.version - 1);
  hrt_fmt(newer, sizeof(newer), "%s/default/%lld", models, fx.version + 1);
  ASSERT_EQ(hrt_copy_tree(from, older), 0);
  ASSERT_EQ(hrt_copy_tree(from, newer), 0);
  ASSERT_GT(corrupt_version(newer), 0);

  ASSERT_EQ(hrt_env_start(&e, NULL), 0); /* installs V again: same files */
  j = hrt_get(&e, "/models", &st);
  ASSERT_EQ(st, 200);
  ASSERT_MSG(hrt_jint(j, "slots[0].version") == fx.version,
             "wanted version %lld: %s", fx.version, hrt_jdump(j));
  json_decref(j);
  j = hrt_get(&e, "/readyz", &st);
  ASSERT_EQ(st, 200);
  json_decref(j);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

static json_t *recommend_k(hrt_env_t *e, const char *user, int k, int *st) {
  return hrt_post(e, "/recommend", json_pack("{s:s,s:i}", "user_id", user,
                                             "k", k), st);
}

HR_TEST_T(boot_metrics_names_and_counters, 60) {
  HRT_ENV(e);
  static const char *const names[] = {
      "hyperrec_http_requests_total",
      "hyperrec_http_request_duration_seconds_bucket",
      "hyperrec_http_request_duration_seconds_count",
      "hyperrec_http_request_duration_seconds_sum",
      "hyperrec_redis_errors_total",
      "hyperrec_events_total",
      "hyperrec_recommend_degraded_total",
      "hyperrec_model_version",
      "hyperrec_model_items",
      "hyperrec_build_info"};
  hrt_resp_t r;
  char ct[128], *m0, *m1;
  double req0, req1, cnt0, cnt1, ev0, ev1;
  json_t *j;
  int st;

  ASSERT_EQ(hrt_env_start(&e, NULL), 0);
  /* One of each so that labelled series exist. */
  j = recommend_k(&e, "metrics-user", 3, &st);
  ASSERT_EQ(st, 200);
  json_decref(j);
  j = hrt_post(&e, "/event",
               json_pack("{s:s,s:s,s:s}", "user_id", "metrics-user", "type",
                         "view", "item_id", "some-item"),
               &st);
  ASSERT_EQ(st, 202);
  json_decref(j);

  ASSERT_EQ(hrt_req(&e, "GET", "/metrics", NULL, NULL, 0, &r), 0);
  ASSERT_EQ(r.status, 200);
  ASSERT_NOT_NULL(hrt_resp_header(&r, "Content-Type", ct, sizeof(ct)));
  ASSERT_MSG(strncmp(ct, "text/plain", 10) == 0, "Content-Type %s", ct);
  m0 = r.body;
  r.body = NULL;
  hrt_resp_free(&r);
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
    ASSERT_MSG(hrt_metric(m0, names[i], NULL) >= 0, "no sample of %s",
               names[i]);
  ASSERT_MSG(strstr(m0, "# TYPE hyperrec_http_requests_total counter"),
             "no TYPE line for hyperrec_http_requests_total");
  ASSERT_MSG(strstr(m0, "# TYPE hyperrec_http_request_duration_seconds "
                        "histogram"),
             "no TYPE line for the latency histogram");
  ASSERT_DBL_NEAR(hrt_metric(m0, "hyperrec_model_version",
                             "slot=\"default\"", NULL),
                  (double)e.fx.version, 0.5);
  ASSERT_GT(hrt_metric(m0, "hyperrec_model_items", "slot=\"default\"", NULL),
            0);
  req0 = hrt_metric(m0, "hyperrec_http_requests_total", "recommend",
                    "status=\"200\"", NULL);
  cnt0 = hrt_metric(m0, "hyperrec_http_request_duration_seconds_count",
                    "recommend", NULL);
  ev0 = hrt_metric(m0, "hyperrec_events_total", NULL);
  ASSERT_DBL_NEAR(req0, 1, 1e-9);
  ASSERT_DBL_NEAR(ev0, 1, 1e-9);

  for (int i = 0; i < 3; i++) {
    j = recommend_k(&e, "metrics-user", 3, &st);
    ASSERT_EQ(st, 200);
    json_decref(j);
  }
  j = hrt_post(&e, "/event",
               json_pack("{s:s,s:s,s:s}", "user_id", "metrics-user", "type",
                         "click", "item_id", "other-item"),
               &st);
  ASSERT_EQ(st, 202);
  json_decref(j);
  m1 = hrt_metrics(&e);
  ASSERT_NOT_NULL(m1);
  req1 = hrt_metric(m1, "hyperrec_http_requests_total", "recommend",
                    "status=\"200\"", NULL);
  cnt1 = hrt_metric(m1, "hyperrec_http_request_duration_seconds_count",
                    "recommend", NULL);
  ev1 = hrt_metric(m1, "hyperrec_events_total", NULL);
  ASSERT_DBL_NEAR(req1 - req0, 3, 1e-9);
  ASSERT_DBL_NEAR(cnt1 - cnt0, 3, 1e-9);
  ASSERT_DBL_NEAR(ev1 - ev0, 1, 1e-9);
  /* The /event 202s are counted under their own endpoint. */
  ASSERT_DBL_NEAR(hrt_metric(m1, "hyperrec_http_requests_total", "event",
                             "status=\"202\"", NULL),
                  2, 1e-9);
  free(m0);
  free(m1);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

static int valid_request_id(const char *s) {
  if (*s == '\0' || strlen(s) > 64)
    return 0;
  for (; *s; s++)
    if (!isalnum((unsigned char)*s) && *s != '.' && *s != '_' && *s != '-')
      return 0;
  return 1;
}

HR_TEST_T(boot_request_id_echoed_or_generated, 60) {
  HRT_ENV(e);
  hrt_resp_t r;
  char id[128], id2[128];

  ASSERT_EQ(hrt_env_start(&e, NULL), 0);
  ASSERT_EQ(hrt_req(&e, "GET", "/healthz", "X-Request-Id: trace-42.a_b\r\n",
                    NULL, 0, &r),
            0);
  ASSERT_STR_EQ(hrt_resp_header(&r, "X-Request-Id", id, sizeof(id)),
                "trace-42.a_b");
  hrt_resp_free(&r);
  /* Invalid characters: the server makes its own id. */
  ASSERT_EQ(hrt_req(&e, "GET", "/healthz", "X-Request-Id: bad id!{}\r\n", NULL,
                    0, &r),
            0);
  ASSERT_NOT_NULL(hrt_resp_header(&r, "X-Request-Id", id, sizeof(id)));
  ASSERT_MSG(strcmp(id, "bad id!{}") != 0 && valid_request_id(id),
             "X-Request-Id %s", id);
  hrt_resp_free(&r);
  /* Generated ids differ between requests, and error answers carry one. */
  ASSERT_EQ(hrt_req(&e, "GET", "/no-such-path", NULL, NULL, 0, &r), 0);
  ASSERT_EQ(r.status, 404);
  ASSERT_NOT_NULL(hrt_resp_header(&r, "X-Request-Id", id2, sizeof(id2)));
  ASSERT_MSG(strcmp(id, id2) != 0, "same generated id twice: %s", id);
  hrt_resp_free(&r);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

/* By default no origin is allowed: a page on another site cannot call the
 * API from its visitors' browsers (issue 17). */
HR_TEST_T(boot_cors_none_by_default, 60) {
  HRT_ENV(e);
  hrt_resp_t r;
  char v[256];

  ASSERT_EQ(hrt_env_start(&e, NULL), 0);
  ASSERT_EQ(hrt_req(&e, "OPTIONS", "/recommend",
                    "Origin: http://shop.example\r\n"
                    "Access-Control-Request-Method: POST\r\n",
                    NULL, 0, &r),
            0);
  ASSERT_EQ(r.status, 204);
  ASSERT_MSG(hrt_resp_header(&r, "Access-Control-Allow-Origin", v,
                             sizeof(v)) == NULL,
             "preflight: Access-Control-Allow-Origin: %s by default", v);
  hrt_resp_free(&r);
  ASSERT_EQ(hrt_req(&e, "POST", "/recommend",
                    "Content-Type: application/json\r\n"
                    "Origin: http://shop.example\r\n",
                    "{\"user_id\":\"u1\"}", 16, &r),
            0);
  ASSERT_EQ(r.status, 200);
  ASSERT_MSG(hrt_resp_header(&r, "Access-Control-Allow-Origin", v,
                             sizeof(v)) == NULL,
             "Access-Control-Allow-Origin: %s by default", v);
  hrt_resp_free(&r);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

HR_TEST_T(boot_cors_preflight, 60) {
  HRT_ENV(e);
  hrt_env_opts_t o = {
      .config_json = "{\"http\":{\"cors_origins\":[\"http://shop.example\"]}}"};
  hrt_resp_t r;
  char v[256];

  ASSERT_EQ(hrt_env_start(&e, &o), 0);
  ASSERT_EQ(hrt_req(&e, "OPTIONS", "/recommend",
                    "Origin: http://shop.example\r\n"
                    "Access-Control-Request-Method: POST\r\n"
                    "Access-Control-Request-Headers: content-type, "
                    "authorization\r\n",
                    NULL, 0, &r),
            0);
  ASSERT_EQ(r.status, 204);
  ASSERT_STR_EQ(
      hrt_resp_header(&r, "Access-Control-Allow-Origin", v, sizeof(v)),
      "http://shop.example");
  ASSERT_NOT_NULL(
      hrt_resp_header(&r, "Access-Control-Allow-Methods", v, sizeof(v)));
  ASSERT_MSG(strstr(v, "POST") != NULL, "Access-Control-Allow-Methods: %s", v);
  ASSERT_NOT_NULL(
      hrt_resp_header(&r, "Access-Control-Allow-Headers", v, sizeof(v)));
  ASSERT_MSG(strstr(v, "Authorization") != NULL &&
                 strstr(v, "X-API-Key") != NULL,
             "Access-Control-Allow-Headers: %s", v);
  hrt_resp_free(&r);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

HR_TEST_T(boot_cors_only_configured_origins, 60) {
  HRT_ENV(e);
  hrt_env_opts_t o = {
      .config_json = "{\"http\":{\"cors_origins\":[\"https://a.example\"]}}"};
  const char *body = "{\"user_id\":\"u1\",\"k\":1}";
  hrt_resp_t r;
  char v[256];

  ASSERT_EQ(hrt_env_start(&e, &o), 0);
  ASSERT_EQ(hrt_req(&e, "POST", "/recommend",
                    "Content-Type: application/json\r\n"
                    "Origin: https://a.example\r\n",
                    body, strlen(body), &r),
            0);
  ASSERT_EQ(r.status, 200);
  ASSERT_STR_EQ(
      hrt_resp_header(&r, "Access-Control-Allow-Origin", v, sizeof(v)),
      "https://a.example");
  hrt_resp_free(&r);
  ASSERT_EQ(hrt_req(&e, "POST", "/recommend",
                    "Content-Type: application/json\r\n"
                    "Origin: https://evil.example\r\n",
                    body, strlen(body), &r),
            0);
  ASSERT_EQ(r.status, 200); /* CORS is the browser's check, not a 403 */
  ASSERT_MSG(hrt_resp_header(&r, "Access-Control-Allow-Origin", v,
                             sizeof(v)) == NULL,
             "Access-Control-Allow-Origin: %s for a foreign origin", v);
  hrt_resp_free(&r);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}
