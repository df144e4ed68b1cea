/* 57_experiments.c -- experiments in /recommend: sticky assignment by
 * user (or session) into the weights, the variant's model slot and its id
 * in recommendation_id, the QA header. */
#include "lib/env.h"

#include <stdlib.h>
#include <string.h>

#include "hr/config.h"
#include "hr/experiments.h"

#define EXP_CFG                                                               \
  "{\"models_poll_ms\":100,\"slots\":[\"default\",\"alt\"],"                 \
  "\"experiments_force_header\":1,"                                         \
  "\"experiments\":[{\"name\":\"home\",\"salt\":\"home-1\",\"variants\":["   \
  "{\"name\":\"control\",\"weight\":50},"                                     \
  "{\"name\":\"b\",\"weight\":30,\"slot\":\"alt\"},"                          \
  "{\"name\":\"c\",\"weight\":20,\"candidates\":50}]}]}"

static const int W[3] = {50, 30, 20};
static const char *const VN[3] = {"control", "b", "c"};

static json_t *rec(hrt_env_t *e, const char *user, const char *session,
                   const char *force, int *st) {
  char hdr[128] = "", body[256];
  hrt_resp_t r = {0};
  json_t *j = NULL;
  if (force)
    hrt_fmt(hdr, sizeof(hdr), "X-Hyperrec-Variant: %s\r\n", force);
  strcat(hdr, "Content-Type: application/json\r\n");
  if (user)
    hrt_fmt(body, sizeof(body), "{\"user_id\":\"%s\",\"k\":3}", user);
  else if (session)
    hrt_fmt(body, sizeof(body),
            "{\"session_id\":\"%s\",\"history\":[\"i00001\"],\"k\":3}",
            session);
  else
    hrt_fmt(body, sizeof(body), "{\"history\":[\"i00001\"],\"k\":3}");
  *st = 0;
  if (hrt_req(e, "POST", "/recommend", hdr, body, strlen(body), &r) == 0) {
    *st = r.status;
    j = json_loads(r.body, 0, NULL);
  }
  hrt_resp_free(&r);
  return j;
}

static int variant_index(const char *name) {
  for (int i = 0; i < 3; i++)
    if (name != NULL && strcmp(name, VN[i]) == 0)
      return i;
  return -1;
}

HR_TEST_T(experiments_assign_route_and_tag_recommendations, 120) {
  HRT_ENV(e);
  hrt_env_opts_t o = {.config_json = EXP_CFG};
  char dir[PATH_MAX], user[32];
  long count[3] = {0};
  int ok, st;
  json_t *j;

  ASSERT_EQ(hrt_env_start(&e, &o), 0);
  /* Before slot alt has a model, its variant's users are answered by the
   * first slot, for no variant. */
  for (int u = 0; u < 50; u++) {
    hrt_fmt(user, sizeof(user), "u%05d", u + 1);
    if (hr_exp_assign("home-1", user, strlen(user), W, 3) != 1)
      continue;
    j = rec(&e, user, NULL, NULL, &st);
    ASSERT_MSG(st == 200, "%d %s", st, hrt_jdump(j));
    ASSERT(json_is_null(hrt_jget(j, "variant")));
    ASSERT_STR_EQ(hrt_jstr(j, "model.name"), "default");
    json_decref(j);
    break;
  }
  hrt_fmt(dir, sizeof(dir), "%s/alt", e.models);
  ASSERT_EQ(hrt_mkdirs(dir), 0);
  hrt_fmt(dir, sizeof(dir), "%s/alt/.tmp-copy", e.models);
  ASSERT_EQ(hrt_copy_tree(e.fx.version_dir, dir), 0);
  char to[PATH_MAX];
  hrt_fmt(to, sizeof(to), "%s/alt/%lld", e.models, e.fx.version);
  ASSERT_EQ(rename(dir, to), 0);
  HRT_POLL(ok, 5000, (j = hrt_get(&e, "/models", &st),
                      st = (int)hrt_jint(j, "slots[1].version"),
                      json_decref(j), st > 0));
  ASSERT_MSG(ok, "slot alt not served");

  /* 2,000 users: each answer names the variant the hash gives (the same
   * function in this process: assignment does not depend on the server
   * process), the variant's slot answers, and the id carries both. */
  for (int u = 0; u < 2000; u++) {
    hrt_fmt(user, sizeof(user), "u%05d", u + 1);
    int want = hr_exp_assign("home-1", user, strlen(user), W, 3);
    j = rec(&e, user, NULL, NULL, &st);
    ASSERT_MSG(st == 200, "%d %s", st, hrt_jdump(j));
    int got = variant_index(hrt_jstr(j, "variant.name"));
    ASSERT_MSG(got == want, "%s: variant %s, expected %s", user,
               hrt_jstr(j, "variant.name"), VN[want]);
    ASSERT_STR_EQ(hrt_jstr(j, "variant.experiment"), "home");
    ASSERT_STR_EQ(hrt_jstr(j, "model.name"), got == 1 ? "alt" : "default");
    char tail[64];
    hrt_fmt(tail, sizeof(tail), ".home.%s", VN[got]);
    const char *rid = hrt_jstr(j, "recommendation_id");
    ASSERT_MSG(rid && strlen(rid) > strlen(tail) &&
                   strcmp(rid + strlen(rid) - strlen(tail), tail) == 0,
               "%s", rid ? rid : "(none)");
    count[got]++;
    json_decref(j);
  }
  for (int v = 0; v < 3; v++) /* 2,000 draws: SE about 1.1 points */
    ASSERT_MSG(labs(count[v] - 20 * W[v]) < 80, "variant %s: %ld of 2000",
               VN[v], count[v]);

  /* Anonymous: by session id; without one, no experiment. */
  j = rec(&e, NULL, "sess-42", NULL, &st);
  ASSERT_EQ(st, 200);
  ASSERT_EQ(variant_index(hrt_jstr(j, "variant.name")),
            hr_exp_assign("home-1", "sess-42", 7, W, 3));
  json_decref(j);
  j = rec(&e, NULL, NULL, NULL, &st);
  ASSERT_EQ(st, 200);
  ASSERT(json_is_null(hrt_jget(j, "variant")));
  json_decref(j);

  /* The QA header forces a variant; an unknown one is a 400. */
  j = rec(&e, "u00001", NULL, "b", &st);
  ASSERT_EQ(st, 200);
  ASSERT_STR_EQ(hrt_jstr(j, "variant.name"), "b");
  ASSERT_STR_EQ(hrt_jstr(j, "model.name"), "alt");
  const char *qa = hrt_jstr(j, "recommendation_id");
  ASSERT_MSG(qa && strstr(qa, ".home.b.qa") != NULL, "%s", qa ? qa : "");
  json_decref(j);
  j = rec(&e, "u00001", NULL, "nope", &st);
  ASSERT_API_ERROR(j, st, 400, "invalid_field", "X-Hyperrec-Variant");
  json_decref(j);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

/* Bad experiment declarations stop the server at start with a message
 * naming the key (exit 2), like any configuration error. */
HR_TEST(experiments_config_is_validated) {
  hr_config_t c;
  hr_error_t err = {0};
  static const char *const bad[] = {
      "[{\"name\":\"Home\",\"salt\":\"s\",\"variants\":[{\"name\":\"a\","
      "\"weight\":1}]}]",
      "[{\"name\":\"h\",\"salt\":\"\",\"variants\":[{\"name\":\"a\","
      "\"weight\":1}]}]",
      "[{\"name\":\"h\",\"salt\":\"s\",\"variants\":[]}]",
      "[{\"name\":\"h\",\"salt\":\"s\",\"variants\":[{\"name\":\"a\","
      "\"weight\":0}]}]",
      "[{\"name\":\"h\",\"salt\":\"s\",\"variants\":[{\"name\":\"a\","
      "\"weight\":1},{\"name\":\"a\",\"weight\":1}]}]",
      "[{\"name\":\"h\",\"salt\":\"s\",\"variants\":[{\"name\":\"a\","
      "\"weight\":-1}]}]",
      "[{\"name\":\"h\",\"salt\":\"s\",\"variants\":[{\"name\":\"a\","
      "\"weight\":1,\"colour\":\"red\"}]}]",
      "{\"name\":\"h\"}",
      NULL};
  for (int k = 0; bad[k] != NULL; k++) {
    hr_config_defaults(&c);
    hr_error_clear(&err);
    ASSERT_MSG(hr_config_set(&c, "experiments", bad[k], &err) == HR_EINVAL,
               "%s", bad[k]);
    ASSERT_STR_EQ(err.field, "experiments");
  }
  /* a slot that is not served */
  hr_config_defaults(&c);
  hr_error_clear(&err);
  ASSERT_EQ(hr_config_set(&c, "experiments",
                          "[{\"name\":\"h\",\"salt\":\"s\",\"variants\":[{"
                          "\"name\":\"a\",\"weight\":1,\"slot\":\"x\"}]}]",
                          &err), 0);
  ASSERT_EQ(hr_config_validate(&c, &err), HR_EINVAL);
  ASSERT_STR_EQ(err.field, "experiments");
  return 0;
}
