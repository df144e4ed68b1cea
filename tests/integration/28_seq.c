/* 28_seq.c -- the sequential model (kind "seq") served: `hyperrec-train fit
 * --kind seq` publishes a version the running server picks up; /recommend
 * runs the transformer over the stored history plus Redis's events, so a
 * new event changes the next answer at once; anonymous requests with a
 * history and attribute filters work on it too. */
#include "lib/env.h"

#include <stdlib.h>
#include <string.h>

/* Starts the environment and replaces the fixture's iALS model by a small
 * seq model fitted on the same data; *v gets its version. */
static int start_seq(hrt_env_t *e, long long *v) {
  static const hrt_env_opts_t o = {.config_json = "{\"models_poll_ms\":100}"};
  char bin[PATH_MAX], out[PATH_MAX], events[PATH_MAX + 16],
      items[PATH_MAX + 16], log[PATH_MAX];
  json_t *j;
  int st, ok;
  long long v0, v1 = -1;
  const char *kind = NULL;

  if (hrt_env_start(e, &o) != 0)
    return -1;
  j = hrt_get(e, "/models", &st);
  v0 = hrt_jint(j, "slots[0].version");
  json_decref(j);
  hrt_fmt(out, sizeof(out), "%s/default", e->models);
  hrt_fmt(events, sizeof(events), "%s/events.csv", e->fx.data);
  hrt_fmt(items, sizeof(items), "%s/items.csv", e->fx.data);
  hrt_fmt(log, sizeof(log), "%s/fit-seq.log", hr_test_tmpdir());
  const char *argv[] = {hrt_bin_path("hyperrec-train", bin, sizeof(bin)),
                        "fit", "--data", events, "--items", items, "--out",
                        out, "--force", "--kind", "seq", "--dim", "16", "--len", "30",
                        "--epochs", "4", "--threads", "1", NULL};
  if (hrt_run(argv, log, 120000) != 0)
    return -1;
  HRT_POLL(ok, 10000, (j = hrt_get(e, "/models", &st),
                       v1 = hrt_jint(j, "slots[0].version"),
                       kind = v1 > v0 ? "seq" : NULL, json_decref(j),
                       v1 > v0));
  if (!ok || kind == NULL) {
    fprintf(stderr, "seq version not served (still %lld)\n", v1);
    return -1;
  }
  j = hrt_get(e, "/models", &st);
  ok = strcmp(hrt_jstr(j, "slots[0].kind"), "seq") == 0;
  json_decref(j);
  *v = v1;
  return ok ? 0 : -1;
}

HR_TEST_T(seq_model_served_and_moved_by_events, 180) {
  HRT_ENV(e);
  hrt_strv_t users = {0}, before = {0}, after = {0};
  json_t *j;
  int st;
  long long v;
  char ts[32];

  ASSERT_EQ(start_seq(&e, &v), 0);
  ASSERT_EQ(hrt_fixture_top_users(&e.fx, 1, &users), 0);
  j = hrt_post(&e, "/recommend",
               json_pack("{s:s,s:i}", "user_id", users.v[0], "k", 10), &st);
  ASSERT_MSG(st == 200, "%d %s", st, hrt_jdump(j));
  ASSERT_EQ(hrt_jint(j, "model.version"), v);
  ASSERT_EQ(hrt_item_ids(j, &before), 0);
  ASSERT_EQ(before.n, 10);
  ASSERT(hrt_scores_sorted(j));
  json_decref(j);

  /* Click the top item now: it leaves the list and the sequence's newest
   * position changes the user vector, so the rest moves too. */
  j = hrt_post(&e, "/event",
               json_pack("{s:s,s:s,s:s}", "user_id", users.v[0], "item_id",
                         before.v[0], "type", "click"),
               &st);
  ASSERT_EQ(st, 202);
  json_decref(j);
  j = hrt_post(&e, "/recommend",
               json_pack("{s:s,s:i}", "user_id", users.v[0], "k", 10), &st);
  ASSERT_EQ(st, 200);
  ASSERT_EQ(hrt_item_ids(j, &after), 0);
  ASSERT_EQ(after.n, 10);
  ASSERT(!hrt_strv_has(&after, before.v[0]));
  size_t same = 0;
  for (size_t i = 1; i < 10; i++)
    same += strcmp(before.v[i], after.v[i - 1]) == 0;
  ASSERT_MSG(same < 9, "the rest of the list did not move: %s",
             hrt_jdump(j));
  json_decref(j);

  /* Explanations: each item names up to 3 of the user's history items,
   * most similar first, and the time since the click (the one context
   * feature this model reads) with its effect on the score. */
  j = hrt_post(&e, "/recommend",
               json_pack("{s:s,s:i,s:b}", "user_id", users.v[0], "k", 5,
                         "explain", 1),
               &st);
  ASSERT_EQ(st, 200);
  {
    hrt_strv_t mine = {0};
    json_t *items = hrt_jget(j, "items");
    ASSERT_EQ(hrt_fixture_user_items(&e.fx, users.v[0], &mine), 0);
    hrt_strv_add(&mine, before.v[0]);
    ASSERT_EQ(json_array_size(items), 5);
    for (size_t i = 0; i < 5; i++) {
      json_t *it = json_array_get(items, i);
      json_t *h = json_object_get(json_object_get(it, "explain"), "history");
      json_t *c = json_object_get(json_object_get(it, "explain"), "context");
      ASSERT_MSG(json_is_array(h) && json_array_size(h) >= 1 &&
                     json_array_size(h) <= 3,
                 "item %zu: %s", i, hrt_jdump(it));
      double prev = 1e30;
      for (size_t q = 0; q < json_array_size(h); q++) {
        json_t *x = json_array_get(h, q);
        double sim = json_real_value(json_object_get(x, "similarity"));
        ASSERT(hrt_strv_has(&mine,
                            json_string_value(json_object_get(x, "item_id"))));
        ASSERT(sim > 0 && sim <= prev);
        prev = sim;
      }
      ASSERT_MSG(json_is_array(c) && json_array_size(c) == 1, "%s",
                 hrt_jdump(it));
      ASSERT_STR_EQ(json_string_value(json_object_get(json_array_get(c, 0),
                                                      "feature")),
                    "since_last_event");
      ASSERT_STR_EQ(json_string_value(json_object_get(json_array_get(c, 0),
                                                      "value")),
                    "under 1 min");
      ASSERT(json_is_number(json_object_get(json_array_get(c, 0), "effect")));
    }
    hrt_strv_free(&mine);
  }
  json_decref(j);
  /* The version learned context features (the data's location, mood and
   * device): the request's context moves the list, and each value's
   * effect is explained. */
  {
    hrt_strv_t gym = {0}, home = {0};
    j = hrt_post(&e, "/recommend",
                 json_pack("{s:s,s:i,s:b,s:{s:s,s:s}}", "user_id", users.v[0],
                           "k", 10, "explain", 1, "context", "location", "gym",
                           "mood", "energetic"),
                 &st);
    ASSERT_EQ(st, 200);
    ASSERT_EQ(hrt_item_ids(j, &gym), 0);
    json_t *c = hrt_jget(j, "items[0].explain.context");
    int saw_loc = 0, saw_mood = 0;
    for (size_t q = 0; json_is_array(c) && q < json_array_size(c); q++) {
      const char *ft = json_string_value(
          json_object_get(json_array_get(c, q), "feature"));
      saw_loc += ft != NULL && strcmp(ft, "location") == 0;
      saw_mood += ft != NULL && strcmp(ft, "mood") == 0;
    }
    ASSERT_MSG(saw_loc == 1 && saw_mood == 1, "%s", hrt_jdump(c));
    json_decref(j);
    j = hrt_post(&e, "/recommend",
                 json_pack("{s:s,s:i,s:{s:s,s:s}}", "user_id", users.v[0],
                           "k", 10, "context", "location", "home", "mood",
                           "tired"),
                 &st);
    ASSERT_EQ(st, 200);
    ASSERT_EQ(hrt_item_ids(j, &home), 0);
    json_decref(j);
    size_t same_pos = 0;
    for (size_t i = 0; i < gym.n && i < home.n; i++)
      same_pos += strcmp(gym.v[i], home.v[i]) == 0;
    ASSERT_MSG(same_pos < 10, "the context did not move the list");
    hrt_strv_free(&gym);
    hrt_strv_free(&home);
  }
  /* Without "explain" the items carry none. */
  j = hrt_post(&e, "/recommend",
               json_pack("{s:s,s:i}", "user_id", users.v[0], "k", 2), &st);
  ASSERT_EQ(st, 200);
  ASSERT(json_object_get(json_array_get(hrt_jget(j, "items"), 0),
                         "explain") == NULL);
  json_decref(j);

  /* An anonymous request with a history: none of it comes back. */
  hrt_fmt(ts, sizeof(ts), "%s", after.v[0]);
  j = hrt_post(&e, "/recommend",
               json_pack("{s:[s,s],s:i}", "history", before.v[1], ts, "k", 5),
               &st);
  ASSERT_MSG(st == 200, "%d %s", st, hrt_jdump(j));
  hrt_strv_t anon = {0};
  ASSERT_EQ(hrt_item_ids(j, &anon), 0);
  ASSERT_EQ(anon.n, 5);
  ASSERT(!hrt_strv_has(&anon, before.v[1]) && !hrt_strv_has(&anon, ts));
  hrt_strv_free(&anon);
  json_decref(j);

  /* Filters apply to the seq model's candidates as to any other. */
  j = hrt_post(&e, "/recommend",
               json_pack("{s:s,s:i,s:{s:s}}", "user_id", users.v[0], "k", 5,
                         "filters", "category", "news"),
               &st);
  ASSERT_MSG(st == 200, "%d %s", st, hrt_jdump(j));
  ASSERT(hrt_jint(j, "filter_matches") > 0);
  json_decref(j);

  hrt_strv_free(&users);
  hrt_strv_free(&before);
  hrt_strv_free(&after);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

/* The factor model (the fixture) explains by history similarity only: it
 * reads no context, so "context" is empty. */
HR_TEST(explain_on_factor_model) {
  HRT_ENV(e);
  hrt_strv_t users = {0}, mine = {0};
  json_t *j, *items;
  int st;

  ASSERT_EQ(hrt_env_start(&e, NULL), 0);
  ASSERT_EQ(hrt_fixture_top_users(&e.fx, 1, &users), 0);
  ASSERT_EQ(hrt_fixture_user_items(&e.fx, users.v[0], &mine), 0);
  j = hrt_post(&e, "/recommend",
               json_pack("{s:s,s:i,s:b}", "user_id", users.v[0], "k", 5,
                         "explain", 1),
               &st);
  ASSERT_MSG(st == 200, "%d %s", st, hrt_jdump(j));
  items = hrt_jget(j, "items");
  size_t with_history = 0;
  for (size_t i = 0; i < json_array_size(items); i++) {
    json_t *x = json_object_get(json_array_get(items, i), "explain");
    json_t *h = json_object_get(x, "history");
    ASSERT(json_is_array(h) && json_array_size(h) <= 3);
    ASSERT(json_is_array(json_object_get(x, "context")) &&
           json_array_size(json_object_get(x, "context")) == 0);
    for (size_t q = 0; q < json_array_size(h); q++)
      ASSERT(hrt_strv_has(&mine, json_string_value(json_object_get(
                                     json_array_get(h, q), "item_id"))));
    with_history += json_array_size(h) > 0;
  }
  ASSERT(with_history >= 3);
  json_decref(j);
  hrt_strv_free(&users);
  hrt_strv_free(&mine);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

/* The loop with the sequential model: events posted to /event (with their
 * times) are read back from the stream by `fit --kind seq --from-redis`,
 * and the new version serves them: a user whose sequence is a fixed cycle
 * gets the cycle's next item first. */
HR_TEST_T(seq_train_loop_from_redis, 180) {
  HRT_ENV(e);
  hrt_env_opts_t o = {.config_json = "{\"models_poll_ms\":100}"};
  char bin[PATH_MAX], out[PATH_MAX], redis[64], log[PATH_MAX];
  json_t *j, *batch;
  int st, ok;
  long long v0, v1 = -1;

  ASSERT_EQ(hrt_env_start(&e, &o), 0);
  j = hrt_get(&e, "/models", &st);
  v0 = hrt_jint(j, "slots[0].version");
  json_decref(j);
  /* 60 users walk a cycle of 30 items, each from their own start, one
   * event a minute */
  for (int u = 0; u < 60; u++) {
    batch = json_array();
    for (int k = 0; k < 10; k++) {
      char uid[32], iid[32];
      snprintf(uid, sizeof(uid), "cyc-u%d", u);
      snprintf(iid, sizeof(iid), "cyc-i%d", (u + k) % 30);
      json_array_append_new(
          batch, json_pack("{s:s,s:s,s:s,s:I}", "user_id", uid, "item_id",
                           iid, "type", "view", "ts",
                           (json_int_t)(1700000000 + u * 1000 + k * 60)));
    }
    j = hrt_post(&e, "/event", json_pack("{s:o}", "events", batch), &st);
    ASSERT_MSG(st == 202, "%d %s", st, hrt_jdump(j));
    json_decref(j);
  }
  hrt_fmt(redis, sizeof(redis), "127.0.0.1:%d", e.redis.port);
  hrt_fmt(out, sizeof(out), "%s/default", e.models);
  hrt_fmt(log, sizeof(log), "%s/fit-seq-redis.log", hr_test_tmpdir());
  const char *argv[] = {hrt_bin_path("hyperrec-train", bin, sizeof(bin)),
                        "fit", "--from-redis", redis, "--out", out, "--force",
                        "--kind", "seq", "--dim", "16", "--len", "12", "--epochs", "60",
                        "--lr", "0.01", "--dropout", "0", "--threads", "1",
                        "--long-term", "0", NULL};
  ASSERT_EQ(hrt_run(argv, log, 120000), 0);
  HRT_POLL(ok, 10000, (j = hrt_get(&e, "/models", &st),
                       v1 = hrt_jint(j, "slots[0].version"), json_decref(j),
                       v1 > v0));
  ASSERT_MSG(ok, "new version not served (still %lld)", v1);
  /* user 0 saw items 0..9: next in the cycle is 10 (of 20 unseen) */
  j = hrt_post(&e, "/recommend",
               json_pack("{s:s,s:i}", "user_id", "cyc-u0", "k", 3), &st);
  ASSERT_EQ(st, 200);
  ASSERT_EQ(hrt_jint(j, "model.version"), v1);
  ASSERT_STR_EQ(hrt_jstr(j, "items[0].item_id"), "cyc-i10");
  json_decref(j);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}
