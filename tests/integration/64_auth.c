/* 64_auth.c -- credentials of /recommend and /event against a live server
 * (docs/security.md): the defaults refuse anonymous writes, a user token
 * acts for its user only, an API key for anyone, rate limits answer 429
 * with Retry-After without touching other keys, keys rotate on SIGHUP. */
#include "test.h"
#include "lib/env.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hr/auth.h"

#define SECRET "test-secret-0123456789-abcdefghijklmnop"
#define KEY_A "hrk_key_a_0123456789abcdef"
#define KEY_B "hrk_key_b_0123456789abcdef"

/* A request with exactly the given credential header ("" for none). */
static int call(hrt_env_t *e, const char *path, const char *cred,
                const char *body, hrt_resp_t *r) {
  char h[1024];
  hrt_fmt(h, sizeof(h), "Content-Type: application/json\r\n%s", cred);
  return hrt_http(e->srv.port, "POST", path, h, body, strlen(body), 10000, r);
}

static int status_of(hrt_env_t *e, const char *path, const char *cred,
                     const char *body, char *code, size_t code_len,
                     char *field, size_t field_len) {
  hrt_resp_t r;
  if (call(e, path, cred, body, &r) != 0)
    return -1;
  json_t *j = r.body ? json_loads(r.body, 0, NULL) : NULL;
  if (code)
    snprintf(code, code_len, "%s",
             hrt_jstr(j, "error.code") ? hrt_jstr(j, "error.code") : "");
  if (field)
    snprintf(field, field_len, "%s",
             hrt_jstr(j, "error.field") ? hrt_jstr(j, "error.field") : "");
  if (r.status >= 400)
    fprintf(stderr, "    %s -> %d %s\n", path, r.status,
            r.body ? r.body : "");
  json_decref(j);
  int st = r.status;
  hrt_resp_free(&r);
  return st;
}

/* The header for a user token of `user` expiring `ttl` s from now. */
static void token_header(const char *user, long long ttl, char *out,
                         size_t n) {
  char tok[HR_AUTH_TOKEN_MAX + 1];
  hr_auth_token_sign(SECRET, user, (long long)time(NULL) + ttl, tok,
                     sizeof(tok));
  hrt_fmt(out, n, "Authorization: Bearer %s\r\n", tok);
}

static void key_entry(const char *name, const char *key, char *out, size_t n) {
  char hex[65];
  hr_auth_key_hash(key, hex);
  hrt_fmt(out, n, "%s:%s", name, hex);
}

static int start_with(hrt_env_t *e, const char *extra_json) {
  char a[128], b[128], cfg[1024];
  unsetenv("HRT_SERVER_API_KEYS"); /* this server has only what is below */
  key_entry("alpha", KEY_A, a, sizeof(a));
  key_entry("beta", KEY_B, b, sizeof(b));
  hrt_fmt(cfg, sizeof(cfg),
          "{\"auth\":{\"api_keys\":[\"%s\",\"%s\"],\"token_secrets\":"
          "[\"" SECRET "\"]%s%s}}",
          a, b, extra_json ? "," : "", extra_json ? extra_json : "");
  hrt_env_opts_t o = {.config_json = cfg};
  return hrt_env_start(e, &o);
}

HR_TEST_T(auth_defaults_refuse_anonymous_writes, 60) {
  HRT_ENV(e);
  char code[64], field[64];

  unsetenv("HRT_SERVER_API_KEYS");
  ASSERT_EQ(hrt_env_start(&e, NULL), 0); /* no credentials configured */
  ASSERT_EQ(status_of(&e, "/event", "",
                      "{\"user_id\":\"u1\",\"item_id\":\"i1\",\"type\":"
                      "\"click\"}",
                      code, sizeof(code), NULL, 0),
            401);
  ASSERT_STR_EQ(code, "unauthorized");
  ASSERT_EQ(status_of(&e, "/recommend", "", "{\"user_id\":\"u1\"}", code,
                      sizeof(code), field, sizeof(field)),
            401);
  ASSERT_STR_EQ(field, "user_id");
  /* history and context only: open by default */
  ASSERT_EQ(status_of(&e, "/recommend", "", "{\"history\":[\"i1\"],\"k\":3}",
                      NULL, 0, NULL, 0),
            200);
  ASSERT_EQ(hrt_rint(&e, "XLEN hr:events"), 0);
  char *m = hrt_metrics(&e);
  ASSERT_NOT_NULL(m);
  ASSERT_EQ(hrt_metric(m, "hyperrec_auth_refused_total", "missing", NULL), 2);
  free(m);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

HR_TEST_T(auth_user_token_acts_for_its_user_only, 60) {
  HRT_ENV(e);
  char tok_u1[600], expired[600], tampered[600], code[64], field[64];

  ASSERT_EQ(start_with(&e, NULL), 0);
  token_header("u1", 3600, tok_u1, sizeof(tok_u1));
  ASSERT_EQ(status_of(&e, "/recommend", tok_u1, "{\"user_id\":\"u1\"}", NULL,
                      0, NULL, 0),
            200);
  ASSERT_EQ(status_of(&e, "/recommend", tok_u1, "{\"user_id\":\"u2\"}", code,
                      sizeof(code), field, sizeof(field)),
            403);
  ASSERT_STR_EQ(code, "forbidden");
  ASSERT_STR_EQ(field, "user_id");
  ASSERT_EQ(status_of(&e, "/event", tok_u1,
                      "{\"user_id\":\"u1\",\"item_id\":\"i1\",\"type\":"
                      "\"click\"}",
                      NULL, 0, NULL, 0),
            202);
  ASSERT_EQ(hrt_rint(&e, "XLEN hr:events"), 1);
  /* one event of another user in a batch: nothing is written */
  ASSERT_EQ(status_of(&e, "/event", tok_u1,
                      "{\"events\":[{\"user_id\":\"u1\",\"item_id\":\"i2\","
                      "\"type\":\"click\"},{\"user_id\":\"u2\",\"item_id\":"
                      "\"i2\",\"type\":\"click\"}]}",
                      code, sizeof(code), field, sizeof(field)),
            403);
  ASSERT_STR_EQ(field, "events[1].user_id");
  ASSERT_EQ(hrt_rint(&e, "XLEN hr:events"), 1);
  /* expired, tampered with (one signature character), garbage */
  token_header("u1", -10, expired, sizeof(expired));
  ASSERT_EQ(status_of(&e, "/event", expired,
                      "{\"user_id\":\"u1\",\"item_id\":\"i1\",\"type\":"
                      "\"click\"}",
                      code, sizeof(code), NULL, 0),
            401);
  hrt_fmt(tampered, sizeof(tampered), "%s", tok_u1);
  char *sig = strrchr(tampered, '.') + 1;
  sig[3] = sig[3] == 'x' ? 'y' : 'x';
  ASSERT_EQ(status_of(&e, "/recommend", tampered, "{\"user_id\":\"u1\"}",
                      NULL, 0, NULL, 0),
            401);
  ASSERT_EQ(status_of(&e, "/recommend",
                      "Authorization: Bearer hrt1.garbage\r\n",
                      "{\"user_id\":\"u1\"}", NULL, 0, NULL, 0),
            401);
  ASSERT_EQ(hrt_rint(&e, "XLEN hr:events"), 1);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

/* The Python signer printed in docs/security.md makes tokens this server
 * accepts: the documentation is run, not just read. */
HR_TEST_T(auth_documented_python_signer_works, 60) {
  HRT_ENV(e);
  char doc[PATH_MAX], py[PATH_MAX], out[PATH_MAX], hdr[700];
  char *text, *start, *end;

  hrt_fmt(doc, sizeof(doc), "%s/docs/security.md", hr_test_root());
  text = hrt_slurp(doc);
  ASSERT_NOT_NULL(text);
  start = strstr(text, "```python\n");
  ASSERT_MSG(start != NULL, "docs/security.md has no python block");
  start += strlen("```python\n");
  end = strstr(start, "```");
  ASSERT_NOT_NULL(end);
  *end = '\0';
  hrt_fmt(py, sizeof(py), "%s/signer.py", hr_test_tmpdir());
  FILE *f = fopen(py, "w");
  ASSERT_NOT_NULL(f);
  fprintf(f, "%s\nprint(user_token(\"%s\", \"u\\u00e9\"), end=\"\")\n", start,
          SECRET);
  fclose(f);
  free(text);
  hrt_fmt(out, sizeof(out), "%s/signer.out", hr_test_tmpdir());
  const char *argv[] = {"python3", py, NULL};
  ASSERT_EQ(hrt_run(argv, out, 20000), 0);
  char *tok = hrt_slurp(out);
  ASSERT_NOT_NULL(tok);
  hrt_fmt(hdr, sizeof(hdr), "Authorization: Bearer %s\r\n", tok);
  free(tok);

  ASSERT_EQ(start_with(&e, NULL), 0);
  ASSERT_EQ(status_of(&e, "/recommend", hdr, "{\"user_id\":\"u\xc3\xa9\"}",
                      NULL, 0, NULL, 0),
            200);
  ASSERT_EQ(status_of(&e, "/recommend", hdr, "{\"user_id\":\"u1\"}", NULL, 0,
                      NULL, 0),
            403);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

HR_TEST_T(auth_api_key_acts_for_any_user, 60) {
  HRT_ENV(e);
  ASSERT_EQ(start_with(&e, NULL), 0);
  ASSERT_EQ(status_of(&e, "/event", "Authorization: Bearer " KEY_A "\r\n",
                      "{\"events\":[{\"user_id\":\"u7\",\"item_id\":\"i1\","
                      "\"type\":\"click\"},{\"user_id\":\"u8\",\"item_id\":"
                      "\"i1\",\"type\":\"click\"}]}",
                      NULL, 0, NULL, 0),
            202);
  ASSERT_EQ(status_of(&e, "/recommend", "X-API-Key: " KEY_B "\r\n",
                      "{\"user_id\":\"u9\"}", NULL, 0, NULL, 0),
            200);
  ASSERT_EQ(status_of(&e, "/recommend",
                      "Authorization: Bearer hrk_not_a_key_0123456789\r\n",
                      "{\"user_id\":\"u9\"}", NULL, 0, NULL, 0),
            401);
  ASSERT_EQ(hrt_rint(&e, "XLEN hr:events"), 2);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

HR_TEST_T(auth_rate_limit_429_per_key, 60) {
  HRT_ENV(e);
  char tok[600];
  enum { SENT = 40, BURST = 20 };
  int ok = 0, limited = 0, retry_after_ok = 1;

  ASSERT_EQ(start_with(&e, "\"key_rps\":1,\"key_burst\":20,"
                           "\"token_rps\":1,\"token_burst\":2"),
            0);
  long long t0 = hrt_now_ms();
  for (int i = 0; i < SENT; i++) {
    hrt_resp_t r;
    char ra[32];
    ASSERT_EQ(call(&e, "/recommend", "Authorization: Bearer " KEY_A "\r\n",
                   "{\"user_id\":\"u1\",\"k\":1}", &r),
              0);
    if (r.status == 200)
      ok++;
    if (r.status == 429) {
      limited++;
      const char *v = hrt_resp_header(&r, "Retry-After", ra, sizeof(ra));
      retry_after_ok &= v != NULL && atoi(v) >= 1;
      retry_after_ok &= strstr(r.body, "\"rate_limited\"") != NULL;
    }
    hrt_resp_free(&r);
  }
  double secs = (double)(hrt_now_ms() - t0) / 1000.0;
  fprintf(stderr, "  rate: %d requests with one key in %.2f s: %d let "
          "through, %d answered 429\n", SENT, secs, ok, limited);
  /* at most the burst plus what refilled meanwhile (1 a second) */
  ASSERT_MSG(ok <= BURST + (int)secs + 1 && ok >= BURST,
             "%d of %d let through in %.1f s", ok, SENT, secs);
  ASSERT_EQ(ok + limited, SENT);
  ASSERT_GT(limited, 0);
  ASSERT(retry_after_ok);
  /* the other key and a user token have their own buckets */
  ASSERT_EQ(status_of(&e, "/recommend", "Authorization: Bearer " KEY_B "\r\n",
                      "{\"user_id\":\"u1\"}", NULL, 0, NULL, 0),
            200);
  token_header("u5", 3600, tok, sizeof(tok));
  ASSERT_EQ(status_of(&e, "/recommend", tok, "{\"user_id\":\"u5\"}", NULL, 0,
                      NULL, 0),
            200);
  char *m = hrt_metrics(&e);
  ASSERT_NOT_NULL(m);
  ASSERT_EQ(hrt_metric(m, "hyperrec_api_key_requests_total", "alpha",
                       "rate_limited", NULL),
            limited);
  ASSERT_EQ(hrt_metric(m, "hyperrec_api_key_requests_total", "beta",
                       "allowed", NULL),
            1);
  free(m);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

HR_TEST_T(auth_keys_rotate_on_sighup, 60) {
  HRT_ENV(e);
  char file[PATH_MAX], entry[128], cfg[512];
  int ok;

  unsetenv("HRT_SERVER_API_KEYS");
  hrt_fmt(file, sizeof(file), "%s/api-keys", hr_test_tmpdir());
  key_entry("old", KEY_A, entry, sizeof(entry));
  FILE *f = fopen(file, "w");
  ASSERT_NOT_NULL(f);
  fprintf(f, "# rotated by the test\n%s\n", entry);
  fclose(f);
  hrt_fmt(cfg, sizeof(cfg), "{\"auth\":{\"api_keys_file\":\"%s\"}}", file);
  hrt_env_opts_t o = {.config_json = cfg};
  ASSERT_EQ(hrt_env_start(&e, &o), 0);
  ASSERT_EQ(status_of(&e, "/recommend", "Authorization: Bearer " KEY_A "\r\n",
                      "{\"user_id\":\"u1\"}", NULL, 0, NULL, 0),
            200);
  key_entry("new", KEY_B, entry, sizeof(entry));
  f = fopen(file, "w");
  ASSERT_NOT_NULL(f);
  fprintf(f, "%s\n", entry);
  fclose(f);
  ASSERT_EQ(kill(e.srv.pid, SIGHUP), 0);
  HRT_POLL(ok, 10000,
           hrt_server_log_count(&e.srv, "\"config_reloaded\"", NULL) >= 1);
  ASSERT_MSG(ok, "no config_reloaded in the log");
  ASSERT_EQ(status_of(&e, "/recommend", "Authorization: Bearer " KEY_B "\r\n",
                      "{\"user_id\":\"u1\"}", NULL, 0, NULL, 0),
            200);
  ASSERT_EQ(status_of(&e, "/recommend", "Authorization: Bearer " KEY_A "\r\n",
                      "{\"user_id\":\"u1\"}", NULL, 0, NULL, 0),
            401);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}
