/* 29_cold_start.c -- a user the model knows nothing about: with a context
 * the model's context prior knows, /recommend ranks by popularity plus the
 * context's lifts (retrieval "context_popularity"), so the answer moves
 * with the situation; without one it is plain popularity. */
#include "lib/env.h"

#include <stdlib.h>
#include <string.h>

static json_t *rec(hrt_env_t *e, const char *user, json_t *ctx, int explain,
                   int *st) {
  json_t *b = json_pack("{s:s,s:i,s:b}", "user_id", user, "k", 10, "explain",
                        explain);
  if (ctx != NULL)
    json_object_set_new(b, "context", ctx);
  return hrt_post(e, "/recommend", b, st);
}

HR_TEST(cold_user_ranked_by_context_prior) {
  HRT_ENV(e);
  hrt_strv_t plain = {0}, gym = {0}, commute = {0};
  json_t *j;
  int st;

  ASSERT_EQ(hrt_env_start(&e, NULL), 0);
  j = rec(&e, "never-seen-1", NULL, 0, &st);
  ASSERT_EQ(st, 200);
  ASSERT_STR_EQ(hrt_jstr(j, "retrieval"), "popularity");
  ASSERT_EQ(hrt_item_ids(j, &plain), 0);
  json_decref(j);

  j = rec(&e, "never-seen-2", json_pack("{s:s}", "location", "gym"), 1, &st);
  ASSERT_MSG(st == 200, "%d %s", st, hrt_jdump(j));
  ASSERT_STR_EQ(hrt_jstr(j, "retrieval"), "context_popularity");
  ASSERT_EQ(hrt_item_ids(j, &gym), 0);
  ASSERT(hrt_scores_sorted(j));
  /* each item's explanation: the lift of location=gym */
  json_t *c = hrt_jget(j, "items[0].explain.context");
  ASSERT_MSG(json_is_array(c) && json_array_size(c) == 1, "%s", hrt_jdump(j));
  ASSERT_STR_EQ(hrt_jstr(j, "items[0].explain.context[0].feature"),
                "location");
  ASSERT_STR_EQ(hrt_jstr(j, "items[0].explain.context[0].value"), "gym");
  json_decref(j);

  j = rec(&e, "never-seen-3",
          json_pack("{s:s,s:s}", "location", "commute", "mood", "tired"), 0,
          &st);
  ASSERT_EQ(st, 200);
  ASSERT_STR_EQ(hrt_jstr(j, "retrieval"), "context_popularity");
  ASSERT_EQ(hrt_item_ids(j, &commute), 0);
  json_decref(j);
  /* The situation changes the answer. */
  size_t same_gym = 0, same_commute = 0;
  for (size_t i = 0; i < plain.n; i++) {
    same_gym += hrt_strv_has(&gym, plain.v[i]);
    same_commute += hrt_strv_has(&commute, plain.v[i]);
  }
  ASSERT_MSG(same_gym < 10 && same_commute < 10,
             "context did not move the answer (%zu, %zu of 10 shared)",
             same_gym, same_commute);
  /* A value the model never saw: popularity again. */
  j = rec(&e, "never-seen-4", json_pack("{s:s}", "location", "moon"), 0, &st);
  ASSERT_EQ(st, 200);
  ASSERT_STR_EQ(hrt_jstr(j, "retrieval"), "popularity");
  json_decref(j);
  char *mt = hrt_metrics(&e);
  ASSERT_NOT_NULL(mt);
  ASSERT(hrt_metric(mt, "hyperrec_recommend_retrieval_total",
                    "path=\"context_popularity\"", NULL) >= 2);
  free(mt);

  /* What the caller knows of the user (the fixture's users.csv has age
   * and household): the prior adds those lifts too, and explains them. */
  hrt_strv_t young = {0};
  json_t *b = json_pack("{s:s,s:i,s:b,s:{s:i,s:s}}", "user_id", "never-seen-5",
                        "k", 10, "explain", 1, "user_attrs", "age", 21,
                        "household", "family");
  j = hrt_post(&e, "/recommend", b, &st);
  ASSERT_MSG(st == 200, "%d %s", st, hrt_jdump(j));
  ASSERT_STR_EQ(hrt_jstr(j, "retrieval"), "context_popularity");
  ASSERT_EQ(hrt_item_ids(j, &young), 0);
  c = hrt_jget(j, "items[0].explain.context");
  ASSERT_MSG(json_is_array(c) && json_array_size(c) == 2, "%s", hrt_jdump(j));
  int saw_age = 0;
  for (size_t k = 0; k < 2; k++) {
    json_t *x = json_array_get(c, k);
    const char *ft = json_string_value(json_object_get(x, "feature"));
    if (ft != NULL && strcmp(ft, "user.age") == 0) {
      saw_age = 1; /* the integer age, as its group */
      ASSERT_STR_EQ(json_string_value(json_object_get(x, "value")), "18-24");
    }
  }
  ASSERT_MSG(saw_age, "%s", hrt_jdump(j));
  json_decref(j);
  size_t same_young = 0;
  for (size_t i = 0; i < plain.n; i++)
    same_young += hrt_strv_has(&young, plain.v[i]);
  ASSERT_MSG(same_young < 10, "user_attrs did not move the answer");
  /* An age as a string of digits is grouped as the trainer groups it. */
  b = json_pack("{s:s,s:i,s:b,s:{s:s}}", "user_id", "never-seen-6", "k", 10,
                "explain", 1, "user_attrs", "age", "21");
  j = hrt_post(&e, "/recommend", b, &st);
  ASSERT_MSG(st == 200, "%d %s", st, hrt_jdump(j));
  ASSERT_STR_EQ(hrt_jstr(j, "items[0].explain.context[0].value"), "18-24");
  json_decref(j);
  /* Bad user_attrs: precise 400s. */
  static const char *const bad[] = {
      "{\"user_id\":\"x\",\"user_attrs\":[1]}",
      "{\"user_id\":\"x\",\"user_attrs\":{\"age\":-3}}",
      "{\"user_id\":\"x\",\"user_attrs\":{\"household\":7}}",
      "{\"user_id\":\"x\",\"user_attrs\":{\"household\":\"\"}}",
      "{\"user_id\":\"x\",\"user_attrs\":{\"a\\u0001\":\"y\"}}",
      NULL};
  for (int k = 0; bad[k] != NULL; k++) {
    j = hrt_post_text(&e, "/recommend", bad[k], &st);
    ASSERT_MSG(st == 400, "%s: %d", bad[k], st);
    ASSERT_MSG(strncmp(hrt_jstr(j, "error.field"), "user_attrs", 10) == 0,
               "%s: %s", bad[k], hrt_jdump(j));
    json_decref(j);
  }

  hrt_strv_free(&young);
  hrt_strv_free(&plain);
  hrt_strv_free(&gym);
  hrt_strv_free(&commute);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

/* Fits models/default from `csv` (extra fit arguments in more, NULL
 * ended) and waits until the server serves a newer version. */
static int fit_and_wait(hrt_env_t *e, const char *csv, const char *const *more) {
  char bin[PATH_MAX], out[PATH_MAX], log[PATH_MAX];
  const char *argv[32] = {hrt_bin_path("hyperrec-train", bin, sizeof(bin)),
                          "fit", "--data", csv, "--out", out, "--force"};
  int n = 7, st, ok;
  json_t *j = hrt_get(e, "/models", &st);
  long long v0 = hrt_jint(j, "slots[0].version"), v1 = -1;
  json_decref(j);
  hrt_fmt(out, sizeof(out), "%s/default", e->models);
  hrt_fmt(log, sizeof(log), "%s/fit-extra.log", hr_test_tmpdir());
  for (; more && *more && n < 31; more++)
    argv[n++] = *more;
  argv[n] = NULL;
  if (hrt_run(argv, log, 120000) != 0)
    return -1;
  HRT_POLL(ok, 10000, (j = hrt_get(e, "/models", &st),
                       v1 = hrt_jint(j, "slots[0].version"), json_decref(j),
                       v1 > v0));
  return ok ? 0 : -1;
}

static json_t *rec_extra(hrt_env_t *e, const char *user, const char *comp,
                         int *st) {
  return hrt_post(e, "/recommend",
                  json_pack("{s:s,s:i,s:b,s:{s:s,s:{s:s}}}", "user_id", user,
                            "k", 5, "explain", 1, "context", "location",
                            "home", "extra", "companion", comp),
                  st);
}

/* A context column beyond tz/location/mood/device ("companion") reaches
 * the model through context.extra: the prior for new users and the
 * sequential model's context features both read it. The data: with
 * family, users pick f* items; alone, a* items. */
HR_TEST_T(context_extra_reaches_the_models, 120) {
  static const hrt_env_opts_t o = {.config_json = "{\"models_poll_ms\":100}"};
  HRT_ENV(e);
  char csv[PATH_MAX];
  json_t *j;
  int st;
  FILE *f;

  ASSERT_EQ(hrt_env_start(&e, &o), 0);
  hrt_fmt(csv, sizeof(csv), "%s/extra.csv", hr_test_tmpdir());
  f = fopen(csv, "w");
  ASSERT_NOT_NULL(f);
  fputs("user_id,item_id,rating,ts,location,companion\n", f);
  for (int u = 0; u < 60; u++)
    for (int t = 0; t < 12; t++) {
      /* who the user is with changes at random, not with the order */
      int fam = (u * 31 + t * 17 + (u * t) % 5) % 7 < 3;
      fprintf(f, "u%d,%c%d,4,%d,home,%s\n", u, fam ? 'f' : 'a',
              (u * 7 + t * 13) % 40, 1700000000 + u * 100000 + t * 3600,
              fam ? "family" : "alone");
    }
  ASSERT_EQ(fclose(f), 0);
  static const char *const ials[] = {"--kind", "ials", NULL};
  ASSERT_EQ(fit_and_wait(&e, csv, ials), 0);

  /* A new user: popularity + the lifts of location and companion. */
  const char *const comp[2] = {"family", "alone"};
  for (int k = 0; k < 2; k++) {
    j = rec_extra(&e, "newcomer", comp[k], &st);
    ASSERT_MSG(st == 200, "%d %s", st, hrt_jdump(j));
    ASSERT_STR_EQ(hrt_jstr(j, "retrieval"), "context_popularity");
    for (int i = 0; i < 5; i++) {
      char path[32];
      snprintf(path, sizeof(path), "items[%d].item_id", i);
      const char *id = hrt_jstr(j, path);
      ASSERT_MSG(id != NULL && id[0] == comp[k][0], "%s: %s", comp[k],
                 hrt_jdump(j));
    }
    ASSERT_STR_EQ(hrt_jstr(j, "items[0].explain.context[0].feature"),
                  "companion");
    json_decref(j);
  }

  /* The sequential model learns a vector for each companion value: a
   * known user's list follows it. */
  static const char *const seq[] = {"--kind",  "seq", "--dim",   "16",
                                    "--len",   "12",  "--epochs", "60",
                                    "--batch", "8",   "--lr",    "0.01",
                                    "--threads", "1", "--long-term", "0",
                                    NULL};
  ASSERT_EQ(fit_and_wait(&e, csv, seq), 0);
  /* /models says what a request can pass that this version reads */
  j = hrt_get(&e, "/models", &st);
  ASSERT_EQ(st, 200);
  ASSERT_STR_EQ(hrt_jstr(j, "slots[0].context_fields[1]"), "companion");
  ASSERT(json_is_true(hrt_jget(j, "slots[0].context_features")));
  ASSERT(json_is_array(hrt_jget(j, "slots[0].item_attributes")));
  json_decref(j);
  int follows = 0;
  for (int u = 0; u < 10; u++) {
    char user[16];
    snprintf(user, sizeof(user), "u%d", u);
    int top_ok = 1;
    for (int k = 0; k < 2; k++) {
      j = rec_extra(&e, user, comp[k], &st);
      ASSERT_MSG(st == 200, "%d %s", st, hrt_jdump(j));
      const char *id = hrt_jstr(j, "items[0].item_id");
      ASSERT_MSG(id != NULL, "%s", hrt_jdump(j));
      top_ok &= id[0] == comp[k][0];
      json_decref(j);
    }
    follows += top_ok;
  }
  ASSERT_MSG(follows >= 8, "%d of 10 users' top item follows companion",
             follows);

  /* Bad extras: precise 400s. */
  static const char *const bad[] = {
      "{\"user_id\":\"x\",\"context\":{\"extra\":[1]}}",
      "{\"user_id\":\"x\",\"context\":{\"extra\":{\"Companion\":\"a\"}}}",
      "{\"user_id\":\"x\",\"context\":{\"extra\":{\"mood\":\"a\"}}}",
      "{\"user_id\":\"x\",\"context\":{\"extra\":{\"companion\":3}}}",
      "{\"user_id\":\"x\",\"context\":{\"extra\":{\"a\":\"1\",\"b\":"
      "\"1\",\"c\":\"1\",\"d\":\"1\",\"e\":\"1\",\"f\":\"1\",\"g\":"
      "\"1\",\"h\":\"1\",\"i\":\"1\",\"j\":\"1\",\"k\":\"1\",\"l\":"
      "\"1\",\"m\":\"1\"}}}", /* 13 entries */
      NULL};
  for (int k = 0; bad[k] != NULL; k++) {
    j = hrt_post_text(&e, "/recommend", bad[k], &st);
    ASSERT_MSG(st == 400, "%s: %d", bad[k], st);
    ASSERT_MSG(strncmp(hrt_jstr(j, "error.field"), "context.extra", 13) == 0,
               "%s: %s", bad[k], hrt_jdump(j));
    json_decref(j);
  }
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

static json_t *rec_seg(hrt_env_t *e, const char *user, const char *seg,
                       int *st) {
  return hrt_post(e, "/recommend",
                  json_pack("{s:s,s:i,s:b,s:[s],s:{s:s}}", "user_id", user,
                            "k", 5, "explain", 1, "history", "n0",
                            "user_attrs", "segment", seg),
                  st);
}

/* User attributes reach the sequential model too: it learns a vector per
 * attribute value (as for context values), and the server adds the
 * request's user_attrs. The data: a "kids" user picks k* items 85 % of
 * the time, an "adult" user a* items, and a fifth of all events are
 * neutral n* items. A newcomer whose only event is n0 is ranked by the
 * sequential model, and its list follows the segment it states. */
HR_TEST_T(user_attrs_reach_the_sequential_model, 120) {
  static const hrt_env_opts_t o = {.config_json = "{\"models_poll_ms\":100}"};
  HRT_ENV(e);
  char csv[PATH_MAX], users[PATH_MAX];
  uint64_t s = 12345;
  json_t *j;
  int st;
  FILE *f, *fu;

  ASSERT_EQ(hrt_env_start(&e, &o), 0);
  hrt_fmt(csv, sizeof(csv), "%s/seg.csv", hr_test_tmpdir());
  hrt_fmt(users, sizeof(users), "%s/seg-users.csv", hr_test_tmpdir());
  f = fopen(csv, "w");
  fu = fopen(users, "w");
  ASSERT(f != NULL && fu != NULL);
  fputs("user_id,item_id,rating,ts\n", f);
  fputs("user_id,segment\n", fu);
  for (int u = 0; u < 80; u++) {
    int kids = u % 2;
    fprintf(fu, "u%d,%s\n", u, kids ? "kids" : "adult");
    for (int t = 0; t < 12; t++) {
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      unsigned r = (unsigned)(s >> 33) % 100, x = (unsigned)(s >> 40) % 20;
      char fam = r < 20 ? 'n' : (r < 88) == kids ? 'k' : 'a';
      fprintf(f, "u%d,%c%u,4,%d\n", u, fam, fam == 'n' ? x % 5 : x,
              1700000000 + u * 100000 + t * 3600);
    }
  }
  ASSERT_EQ(fclose(f), 0);
  ASSERT_EQ(fclose(fu), 0);
  const char *const seq[] = {"--users", users,   "--kind",    "seq",
                             "--dim",   "16",    "--len",     "12",
                             "--epochs", "60",   "--batch",   "8",
                             "--lr",    "0.01",  "--threads", "1",
                             "--long-term", "0", NULL};
  ASSERT_EQ(fit_and_wait(&e, csv, seq), 0);
  j = hrt_get(&e, "/models", &st);
  ASSERT_EQ(st, 200);
  ASSERT(json_is_true(hrt_jget(j, "slots[0].context_features")));
  json_decref(j);

  const char *const seg[2] = {"kids", "adult"};
  for (int k = 0; k < 2; k++) {
    int follows = 0;
    j = rec_seg(&e, "newcomer", seg[k], &st);
    ASSERT_MSG(st == 200, "%d %s", st, hrt_jdump(j));
    /* the sequential model answered, not a popularity fallback */
    ASSERT_MSG(strstr(hrt_jstr(j, "retrieval"), "popularity") == NULL, "%s",
               hrt_jdump(j));
    for (int i = 0; i < 5; i++) {
      char path[32];
      snprintf(path, sizeof(path), "items[%d].item_id", i);
      const char *id = hrt_jstr(j, path);
      ASSERT_MSG(id != NULL, "%s", hrt_jdump(j));
      follows += id[0] == seg[k][0];
    }
    ASSERT_MSG(follows >= 4, "%s: %d of 5 follow the segment: %s", seg[k],
               follows, hrt_jdump(j));
    ASSERT_STR_EQ(hrt_jstr(j, "items[0].explain.context[0].feature"),
                  "user.segment");
    ASSERT_STR_EQ(hrt_jstr(j, "items[0].explain.context[0].value"), seg[k]);
    json_decref(j);
  }
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}
