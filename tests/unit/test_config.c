/* test_config.c -- defaults, file, env, flags, validation. */
#include "test.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "hr/config.h"

static int write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (f == NULL)
    return -1;
  fputs(text, f);
  fclose(f);
  return 0;
}

HR_TEST(config_defaults_are_valid) {
  hr_config_t c;
  hr_error_t err = {0};
  hr_config_defaults(&c);
  ASSERT_EQ(hr_config_validate(&c, &err), 0);
  ASSERT_STR_EQ(c.listen_host, "127.0.0.1");
  ASSERT_EQ(c.listen_port, 8080);
  ASSERT_EQ(c.redis.port, 6379);
  ASSERT_EQ(c.recommend.default_k, 10);
  ASSERT_EQ(c.n_slots, 1);
  ASSERT_STR_EQ(c.slots[0], "default");
  ASSERT_EQ(c.http.n_cors_origins, 0); /* no origin unless configured */
  ASSERT_STR_EQ(c.http.unknown_fields, "reject");
  /* safe for a server on the internet: writes and personal answers need
   * credentials, the event stream is capped */
  ASSERT_STR_EQ(c.auth.event, "token");
  ASSERT_STR_EQ(c.auth.recommend, "token");
  ASSERT_STR_EQ(c.auth.recommend_anonymous, "none");
  ASSERT_EQ(c.auth.n_api_keys, 0);
  ASSERT_GT(c.redis.stream_maxlen, 0);
  return 0;
}

/* docs/configuration.md calls config/hyperrec.json an example holding
 * every default: loading it over the defaults changes nothing. */
HR_TEST(config_example_file_holds_the_defaults) {
  char path[PATH_MAX];
  hr_config_t def, ex;
  hr_error_t err = {0};

  snprintf(path, sizeof(path), "%s/config/hyperrec.json", hr_test_root());
  hr_config_defaults(&def);
  hr_config_defaults(&ex);
  ASSERT_MSG(hr_config_load_file(&ex, path, &err) == 0, "%s", err.msg);
#define SAME(part, name)                                                   \
  ASSERT_MSG(memcmp(&def.part, &ex.part, sizeof(def.part)) == 0,           \
             "config/hyperrec.json: %s differs from the default "          \
             "(bin/hyperrec --help-config)", name)
  SAME(redis, "redis.*");
  SAME(http, "http.*");
  SAME(recommend, "recommend.*");
  SAME(event, "event.*");
  SAME(ann, "ann.*");
#undef SAME
  ASSERT_STR_EQ(ex.config_path, path); /* the one field that should differ */
  memcpy(def.config_path, ex.config_path, sizeof(def.config_path));
  ASSERT_MSG(memcmp(&def, &ex, sizeof(def)) == 0,
             "config/hyperrec.json differs from the defaults "
             "(bin/hyperrec --help-config)");
  return 0;
}

HR_TEST(config_file_env_flag_precedence) {
  char path[512];
  hr_config_t c;
  hr_error_t err = {0};
  char *env[] = {"HYPERREC_REDIS_COMMAND_TIMEOUT_MS=250",
                 "HYPERREC_RECOMMEND_MAX_K=50", "HYPERREC_REDIS=10.0.0.1:7000",
                 "OTHER=1", NULL};

  snprintf(path, sizeof(path), "%s/c.json", hr_test_tmpdir());
  ASSERT_EQ(write_file(path, "{\"redis\":{\"command_timeout_ms\":150,"
                             "\"history_cap\":33},\"recommend\":{\"max_k\":"
                             "20},\"http\":{\"cors_origins\":[\"https://a."
                             "example\",\"https://b.example\"]}}"),
            0);
  hr_config_defaults(&c);
  ASSERT_EQ(hr_config_load_file(&c, path, &err), 0);
  ASSERT_EQ(c.redis.command_timeout_ms, 150);
  ASSERT_EQ(c.redis.history_cap, 33);
  ASSERT_EQ(c.http.n_cors_origins, 2);
  ASSERT(hr_config_origin_allowed(&c, "https://b.example"));
  ASSERT(!hr_config_origin_allowed(&c, "https://evil.example"));
  ASSERT_EQ(hr_config_load_env(&c, env, &err), 0);
  ASSERT_EQ(c.redis.command_timeout_ms, 250);
  ASSERT_EQ(c.recommend.max_k, 50);
  ASSERT_STR_EQ(c.redis.host, "10.0.0.1");
  ASSERT_EQ(c.redis.port, 7000);
  ASSERT_EQ(hr_config_set(&c, "listen", "0.0.0.0:0", &err), 0);
  ASSERT_EQ(c.listen_port, 0);
  ASSERT_EQ(hr_config_validate(&c, &err), 0);
  return 0;
}

HR_TEST(config_rejects_bad_input) {
  char path[512];
  hr_config_t c;
  hr_error_t err = {0};
  char *bad_env[] = {"HYPERREC_NO_SUCH_KEY=1", NULL};

  snprintf(path, sizeof(path), "%s/c.json", hr_test_tmpdir());
  hr_config_defaults(&c);
  ASSERT_EQ(write_file(path, "{\"redis\":{\"comand_timeout_ms\":1}}"), 0);
  ASSERT_EQ(hr_config_load_file(&c, path, &err), HR_EINVAL);
  ASSERT_STR_EQ(err.field, "redis.comand_timeout_ms");
  hr_error_clear(&err);
  ASSERT_EQ(write_file(path, "{\"recommend\":{\"max_k\":\"ten\"}}"), 0);
  ASSERT_EQ(hr_config_load_file(&c, path, &err), HR_EINVAL);
  ASSERT_STR_EQ(err.field, "recommend.max_k");
  hr_error_clear(&err);
  ASSERT_EQ(write_file(path, "{\"redis\":{\"port\":70000}}"), 0);
  ASSERT_EQ(hr_config_load_file(&c, path, &err), HR_EINVAL);
  hr_error_clear(&err);
  ASSERT_EQ(write_file(path, "{not json"), 0);
  ASSERT_EQ(hr_config_load_file(&c, path, &err), HR_EIO);
  hr_error_clear(&err);
  ASSERT_EQ(hr_config_load_env(&c, bad_env, &err), HR_EINVAL);
  hr_error_clear(&err);
  ASSERT_EQ(hr_config_set(&c, "listen", "nohostport", &err), HR_EINVAL);
  hr_error_clear(&err);
  ASSERT_EQ(hr_config_set(&c, "listen", "h:99999", &err), HR_EINVAL);
  hr_error_clear(&err);
  hr_config_defaults(&c);
  c.recommend.default_k = 500;
  ASSERT_EQ(hr_config_validate(&c, &err), HR_EINVAL);
  hr_error_clear(&err);
  hr_config_defaults(&c);
  ASSERT_EQ(hr_config_set(&c, "slots", "../etc", &err), 0);
  ASSERT_EQ(hr_config_validate(&c, &err), HR_EINVAL);
  return 0;
}

HR_TEST(config_hostport) {
  char host[64];
  int port;
  ASSERT_EQ(hr_config_parse_hostport("127.0.0.1:6379", host, sizeof(host), &port), 0);
  ASSERT_STR_EQ(host, "127.0.0.1");
  ASSERT_EQ(port, 6379);
  ASSERT_EQ(hr_config_parse_hostport("[::1]:80", host, sizeof(host), &port), 0);
  ASSERT_STR_EQ(host, "::1");
  ASSERT_EQ(hr_config_parse_hostport(":80", host, sizeof(host), &port), HR_EINVAL);
  ASSERT_EQ(hr_config_parse_hostport("h:", host, sizeof(host), &port), HR_EINVAL);
  ASSERT_EQ(hr_config_parse_hostport("h:-1", host, sizeof(host), &port), HR_EINVAL);
  return 0;
}

/* models_pin entries and admin.token are checked at start. */
HR_TEST(config_pins_and_admin_token) {
  hr_config_t c;
  hr_error_t err = {0};
  static const char *const bad_pins[] = {"default", "default=", "default=0",
                                         "default=12x", "other=5",
                                         "default=5,default=6", NULL};
  hr_config_defaults(&c);
  ASSERT_EQ(c.n_pins, 0);
  ASSERT_EQ(c.models_watch, 1);
  ASSERT_STR_EQ(c.admin.token, "");
  ASSERT_EQ(hr_config_set(&c, "slots", "default,other", &err), 0);
  ASSERT_EQ(hr_config_set(&c, "models_pin", "default=17,other=1732712345",
                          &err), 0);
  ASSERT_EQ(hr_config_validate(&c, &err), 0);
  ASSERT_EQ(c.n_pins, 2);
  for (int k = 0; bad_pins[k] != NULL; k++) {
    hr_config_defaults(&c);
    hr_error_clear(&err);
    ASSERT_EQ(hr_config_set(&c, "models_pin", bad_pins[k], &err), 0);
    ASSERT_MSG(hr_config_validate(&c, &err) == HR_EINVAL, "%s", bad_pins[k]);
    ASSERT_STR_EQ(err.field, "models_pin");
  }
  hr_config_defaults(&c);
  hr_error_clear(&err);
  ASSERT_EQ(hr_config_set(&c, "admin.token", "short", &err), 0);
  ASSERT_EQ(hr_config_validate(&c, &err), HR_EINVAL);
  ASSERT_STR_EQ(err.field, "admin.token");
  hr_error_clear(&err);
  ASSERT_EQ(hr_config_set(&c, "admin.token", "sixteen chars ok", &err), 0);
  ASSERT_EQ(hr_config_validate(&c, &err), HR_EINVAL); /* a space */
  hr_error_clear(&err);
  ASSERT_EQ(hr_config_set(&c, "admin.token", "sixteen-chars-ok", &err), 0);
  ASSERT_EQ(hr_config_validate(&c, &err), 0);
  return 0;
}
