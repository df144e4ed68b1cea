/* 20_recommend.c -- POST /recommend against the fixture model: known,
 * unknown and anonymous users, exclusions, k, and the context echo
 * (defaults, request overrides, values stored in Redis). */
#include "lib/env.h"

#include <time.h>

/* The most active user of the generated data and the items they touched. */
static int known_user(hrt_env_t *e, size_t rank, char *user, size_t n,
                      hrt_strv_t *items) {
  hrt_strv_t users = {0};
  int rc = hrt_fixture_top_users(&e->fx, rank + 1, &users);

  if (rc == 0 && users.n == rank + 1) {
    snprintf(user, n, "%s", users.v[rank]);
    rc = items ? hrt_fixture_user_items(&e->fx, user, items) : 0;
  } else {
    rc = -1;
  }
  hrt_strv_free(&users);
  return rc;
}

static json_t *recommend(hrt_env_t *e, json_t *body, int *st) {
  return hrt_post(e, "/recommend", body, st);
}

static int no_duplicates(const hrt_strv_t *s) {
  for (size_t i = 0; i < s->n; i++)
    for (size_t j = i + 1; j < s->n; j++)
      if (strcmp(s->v[i], s->v[j]) == 0)
        return 0;
  return 1;
}

static int same_list(const hrt_strv_t *a, const hrt_strv_t *b) {
  if (a->n != b->n)
    return 0;
  for (size_t i = 0; i < a->n; i++)
    if (strcmp(a->v[i], b->v[i]) != 0)
      return 0;
  return 1;
}

/* First element of s that is in set, or NULL. */
static const char *any_in(const hrt_strv_t *s, const hrt_strv_t *set) {
  for (size_t i = 0; i < s->n; i++)
    if (hrt_strv_has(set, s->v[i]))
      return s->v[i];
  return NULL;
}

HR_TEST_T(recommend_known_user, 60) {
  HRT_ENV(e);
  char user[256], user2[256];
  hrt_strv_t seen = {0}, top10 = {0}, top5 = {0}, other = {0};
  json_t *j;
  int st;

  ASSERT_EQ(hrt_env_start(&e, NULL), 0);
  ASSERT_EQ(known_user(&e, 0, user, sizeof(user), &seen), 0);
  j = recommend(&e, json_pack("{s:s,s:i}", "user_id", user, "k", 10), &st);
  ASSERT_MSG(st == 200, "status %d: %s", st, hrt_jdump(j));
  ASSERT_STR_EQ(hrt_jstr(j, "user_id"), user);
  ASSERT_EQ(hrt_item_ids(j, &top10), 0);
  ASSERT_EQ(top10.n, 10);
  ASSERT(no_duplicates(&top10));
  ASSERT_MSG(hrt_scores_sorted(j), "scores not descending: %s", hrt_jdump(j));
  ASSERT_MSG(any_in(&top10, &seen) == NULL,
             "item %s from the user's training history was recommended",
             any_in(&top10, &seen));
  ASSERT_STR_EQ(hrt_jstr(j, "model.name"), "default");
  ASSERT_EQ(hrt_jint(j, "model.version"), e.fx.version);
  ASSERT(json_is_null(hrt_jget(j, "variant")));
  ASSERT(json_is_false(hrt_jget(j, "degraded")));
  ASSERT_MSG(hrt_jstr(j, "recommendation_id") != NULL &&
                 *hrt_jstr(j, "recommendation_id") != '\0',
             "no recommendation_id: %s", hrt_jdump(j));
  ASSERT_GE(hrt_jint(j, "history_used"), 0);
  json_decref(j);

  /* The same user with k=5 gets the head of the same ranking. */
  j = recommend(&e, json_pack("{s:s,s:i}", "user_id", user, "k", 5), &st);
  ASSERT_EQ(st, 200);
  ASSERT_EQ(hrt_item_ids(j, &top5), 0);
  json_decref(j);
  ASSERT_EQ(top5.n, 5);
  for (size_t i = 0; i < 5; i++)
    ASSERT_STR_EQ(top5.v[i], top10.v[i]);

  /* Personalised: the second most active user gets another list. */
  ASSERT_EQ(known_user(&e, 1, user2, sizeof(user2), NULL), 0);
  j = recommend(&e, json_pack("{s:s,s:i}", "user_id", user2, "k", 10), &st);
  ASSERT_EQ(st, 200);
  ASSERT_EQ(hrt_item_ids(j, &other), 0);
  json_decref(j);
  ASSERT_MSG(!same_list(&top10, &other), "users %s and %s got the same list",
             user, user2);
  /* Reads never write. */
  ASSERT_EQ(hrt_rint(&e, "DBSIZE"), 0);
  hrt_strv_free(&seen);
  hrt_strv_free(&top10);
  hrt_strv_free(&top5);
  hrt_strv_free(&other);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

HR_TEST_T(recommend_unknown_user, 60) {
  HRT_ENV(e);
  hrt_strv_t ids = {0};
  json_t *j;
  int st;

  ASSERT_EQ(hrt_env_start(&e, NULL), 0);
  j = recommend(&e, json_pack("{s:s}", "user_id", "never-seen-user-0001"),
                &st);
  ASSERT_MSG(st == 200, "status %d: %s", st, hrt_jdump(j));
  ASSERT_STR_EQ(hrt_jstr(j, "user_id"), "never-seen-user-0001");
  ASSERT_EQ(hrt_item_ids(j, &ids), 0);
  ASSERT_EQ(ids.n, 10); /* recommend.default_k */
  ASSERT(no_duplicates(&ids));
  ASSERT(hrt_scores_sorted(j));
  ASSERT(json_is_false(hrt_jget(j, "degraded")));
  ASSERT_EQ(hrt_jint(j, "history_used"), 0);
  json_decref(j);
  hrt_strv_free(&ids);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

HR_TEST_T(recommend_anonymous_with_history, 60) {
  HRT_ENV(e);
  char u1[256], u2[256];
  hrt_strv_t h1 = {0}, h2 = {0}, a = {0}, b = {0};
  hrt_strv_t base = {0}, unmoved = {0};
  json_t *hist, *j;
  int st;

  ASSERT_EQ(hrt_env_start(&e, NULL), 0);
  ASSERT_EQ(known_user(&e, 0, u1, sizeof(u1), &h1), 0);
  ASSERT_EQ(known_user(&e, 1, u2, sizeof(u2), &h2), 0);

  hist = json_array();
  for (size_t i = 0; i < 8 && i < h1.n; i++)
    json_array_append_new(hist, json_string(h1.v[i]));
  j = recommend(&e, json_pack("{s:o,s:i}", "history", hist, "k", 10), &st);
  ASSERT_MSG(st == 200, "status %d: %s", st, hrt_jdump(j));
  ASSERT_MSG(hrt_jget(j, "user_id") == NULL ||
                 json_is_null(hrt_jget(j, "user_id")),
             "anonymous answer names a user: %s", hrt_jdump(j));
  ASSERT_EQ(hrt_item_ids(j, &a), 0);
  ASSERT_EQ(a.n, 10);
  ASSERT(hrt_scores_sorted(j));
  ASSERT_EQ(hrt_jint(j, "history_used"), h1.n < 8 ? (long long)h1.n : 8);
  json_decref(j);
  for (size_t i = 0; i < a.n; i++)
    for (size_t k = 0; k < 8 && k < h1.n; k++)
      ASSERT_MSG(strcmp(a.v[i], h1.v[k]) != 0,
                 "history item %s was recommended back", a.v[i]);

  /* Not merely the anonymous baseline with the history filtered out: the
   * history moved the ranking itself. */
  j = recommend(&e, json_pack("{s:s,s:i}", "user_id", "no-history-user", "k",
                              30),
                &st);
  ASSERT_EQ(st, 200);
  ASSERT_EQ(hrt_item_ids(j, &base), 0);
  json_decref(j);
  for (size_t i = 0; i < base.n && unmoved.n < 10; i++) {
    int in_hist = 0;
    for (size_t k = 0; k < 8 && k < h1.n; k++)
      in_hist |= strcmp(base.v[i], h1.v[k]) == 0;
    if (!in_hist)
      hrt_strv_add(&unmoved, base.v[i]);
  }
  ASSERT_MSG(!same_list(&a, &unmoved),
             "the answer is the no-history ranking minus the history");

  /* Another history, another answer: the history drives the result. */
  hist = json_array();
  for (size_t i = 0; i < 8 && i < h2.n; i++)
    json_array_append_new(hist, json_string(h2.v[i]));
  j = recommend(&e, json_pack("{s:o,s:i}", "history", hist, "k", 10), &st);
  ASSERT_EQ(st, 200);
  ASSERT_EQ(hrt_item_ids(j, &b), 0);
  json_decref(j);
  ASSERT_MSG(!same_list(&a, &b), "two different histories, same answer");
  ASSERT_EQ(hrt_rint(&e, "DBSIZE"), 0);
  hrt_strv_free(&h1);
  hrt_strv_free(&h2);
  hrt_strv_free(&a);
  hrt_strv_free(&b);
  hrt_strv_free(&base);
  hrt_strv_free(&unmoved);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

HR_TEST_T(recommend_exclude_removes_items, 60) {
  HRT_ENV(e);
  char user[256];
  hrt_strv_t all = {0}, rest = {0};
  json_t *j;
  int st;

  ASSERT_EQ(hrt_env_start(&e, NULL), 0);
  ASSERT_EQ(known_user(&e, 0, user, sizeof(user), NULL), 0);
  j = recommend(&e, json_pack("{s:s,s:i}", "user_id", user, "k", 10), &st);
  ASSERT_EQ(st, 200);
  ASSERT_EQ(hrt_item_ids(j, &all), 0);
  json_decref(j);
  ASSERT_EQ(all.n, 10);
  /* Exclude the top three (plus an id the model does not know, ignored). */
  j = recommend(&e,
                json_pack("{s:s,s:i,s:[s,s,s,s]}", "user_id", user, "k", 10,
                          "exclude", all.v[0], all.v[1], all.v[2],
                          "no-such-item-xyz"),
                &st);
  ASSERT_MSG(st == 200, "status %d: %s", st, hrt_jdump(j));
  ASSERT_EQ(hrt_item_ids(j, &rest), 0);
  json_decref(j);
  ASSERT_EQ(rest.n, 10);
  for (size_t i = 0; i < 3; i++)
    ASSERT_MSG(!hrt_strv_has(&rest, all.v[i]), "excluded %s returned",
               all.v[i]);
  /* Exclusion does not change scores: the rest keeps its order. */
  for (size_t i = 0; i < 7; i++)
    ASSERT_STR_EQ(rest.v[i], all.v[i + 3]);
  hrt_strv_free(&all);
  hrt_strv_free(&rest);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

HR_TEST_T(recommend_k_limits_and_integer_ids, 60) {
  HRT_ENV(e);
  hrt_strv_t ids = {0};
  long long n_items;
  json_t *j;
  int st;

  ASSERT_EQ(hrt_env_start(&e, NULL), 0);
  j = hrt_get(&e, "/models", &st);
  n_items = hrt_jint(j, "slots[0].n_items");
  json_decref(j);
  ASSERT_GT(n_items, 0);

  j = recommend(&e, json_pack("{s:s,s:i}", "user_id", "kk", "k", 1), &st);
  ASSERT_EQ(st, 200);
  ASSERT_EQ(json_array_size(hrt_jget(j, "items")), 1);
  json_decref(j);
  /* k = recommend.max_k (100) is accepted; an unknown user has no history,
   * so the whole catalogue is eligible. */
  j = recommend(&e, json_pack("{s:s,s:i}", "user_id", "kk", "k", 100), &st);
  ASSERT_MSG(st == 200, "status %d: %s", st, hrt_jdump(j));
  ASSERT_EQ(hrt_item_ids(j, &ids), 0);
  ASSERT_EQ(ids.n, n_items < 100 ? n_items : 100);
  ASSERT(no_duplicates(&ids));
  ASSERT(hrt_scores_sorted(j));
  json_decref(j);
  /* A non-negative integer id means its decimal string. */
  j = recommend(&e, json_pack("{s:i,s:[i,i],s:b}", "user_id", 42, "history",
                              1, 2, "explain", 1),
                &st);
  ASSERT_MSG(st == 200, "status %d: %s", st, hrt_jdump(j));
  ASSERT_STR_EQ(hrt_jstr(j, "user_id"), "42");
  json_decref(j);
  hrt_strv_free(&ids);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

/* The context block must agree with ts rendered in a fixed UTC offset. */
static int check_clock(json_t *ctx, long long ts, int offset_s, char *why,
                       size_t n) {
  time_t t = (time_t)(ts + offset_s);
  struct tm tm;
  int wd;

  gmtime_r(&t, &tm);
  wd = (tm.tm_wday + 6) % 7; /* 0 = Monday */
  if (hrt_jint(ctx, "hour") != tm.tm_hour ||
      hrt_jint(ctx, "weekday") != wd ||
      !json_is_boolean(hrt_jget(ctx, "weekend")) ||
      json_is_true(hrt_jget(ctx, "weekend")) != (wd >= 5)) {
    snprintf(why, n, "wanted hour %d weekday %d weekend %d: %s", tm.tm_hour,
             wd, wd >= 5, hrt_jdump(ctx));
    return 0;
  }
  return 1;
}

HR_TEST_T(recommend_context_defaults, 60) {
  HRT_ENV(e);
  char why[1200];
  long long ts, now = (long long)time(NULL);
  json_t *j, *ctx, *src;
  int st;

  ASSERT_EQ(hrt_env_start(&e, NULL), 0);
  j = recommend(&e, json_pack("{s:s}", "user_id", "ctx-default-user"), &st);
  ASSERT_EQ(st, 200);
  ctx = hrt_jget(j, "context");
  src = hrt_jget(j, "context_source");
  ASSERT_MSG(json_is_object(ctx) && json_is_object(src), "%s", hrt_jdump(j));
  ts = hrt_jint(ctx, "ts");
  ASSERT_MSG(ts >= now - 5 && ts <= now + 5, "ts %lld, now %lld", ts, now);
  ASSERT_STR_EQ(hrt_jstr(src, "ts"), "now");
  ASSERT_STR_EQ(hrt_jstr(ctx, "tz"), "UTC");
  ASSERT_STR_EQ(hrt_jstr(src, "tz"), "default");
  ASSERT_MSG(check_clock(ctx, ts, 0, why, sizeof(why)), "%s", why);
  ASSERT(json_is_null(hrt_jget(ctx, "location")));
  ASSERT_STR_EQ(hrt_jstr(src, "location"), "none");
  ASSERT(json_is_null(hrt_jget(ctx, "mood")));
  ASSERT_STR_EQ(hrt_jstr(src, "mood"), "none");
  ASSERT(json_is_null(hrt_jget(ctx, "device")));
  ASSERT_STR_EQ(hrt_jstr(src, "device"), "none");
  json_decref(j);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

/* Friday 2026-01-02 22:00 UTC: Saturday morning in Tokyo. */
#define FRI_22_UTC 1767391200LL

HR_TEST_T(recommend_context_override_from_request, 60) {
  HRT_ENV(e);
  static const struct {
    const char *tz;
    int offset_s;
  } zones[] = {{"Asia/Tokyo", 9 * 3600},
               {"America/New_York", -5 * 3600},
               {"UTC+05:30", 5 * 3600 + 1800},
               {"UTC-09:30", -(9 * 3600 + 1800)}};
  char why[1200];
  redisReply *r;
  json_t *j, *ctx, *src;
  int st;

  ASSERT_EQ(hrt_env_start(&e, NULL), 0);
  /* Stored values exist, and the request's own values still win. */
  r = hrt_rcmd(&e, "HSET hr:ctx:{ctx-user} location office mood tired "
                   "tz Europe/Paris device desktop");
  ASSERT_NOT_NULL(r);
  freeReplyObject(r);
  for (size_t i = 0; i < sizeof(zones) / sizeof(zones[0]); i++) {
    j = recommend(&e,
                  json_pack("{s:s,s:{s:I,s:s,s:s,s:s,s:s}}", "user_id",
                            "ctx-user", "context", "ts", FRI_22_UTC, "tz",
                            zones[i].tz, "location", "gym", "mood", "happy",
                            "device", "mobile"),
                  &st);
    ASSERT_MSG(st == 200, "tz %s: status %d: %s", zones[i].tz, st,
               hrt_jdump(j));
    ctx = hrt_jget(j, "context");
    src = hrt_jget(j, "context_source");
    ASSERT_EQ(hrt_jint(ctx, "ts"), FRI_22_UTC);
    ASSERT_STR_EQ(hrt_jstr(ctx, "tz"), zones[i].tz);
    ASSERT_MSG(check_clock(ctx, FRI_22_UTC, zones[i].offset_s, why,
                           sizeof(why)),
               "tz %s: %s", zones[i].tz, why);
    ASSERT_STR_EQ(hrt_jstr(ctx, "location"), "gym");
    ASSERT_STR_EQ(hrt_jstr(ctx, "mood"), "happy");
    ASSERT_STR_EQ(hrt_jstr(ctx, "device"), "mobile");
    ASSERT_STR_EQ(hrt_jstr(src, "ts"), "request");
    ASSERT_STR_EQ(hrt_jstr(src, "tz"), "request");
    ASSERT_STR_EQ(hrt_jstr(src, "location"), "request");
    ASSERT_STR_EQ(hrt_jstr(src, "mood"), "request");
    ASSERT_STR_EQ(hrt_jstr(src, "device"), "request");
    json_decref(j);
  }
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

HR_TEST_T(recommend_context_from_redis_hash, 60) {
  HRT_ENV(e);
  char why[1200];
  redisReply *r;
  json_t *j, *ctx, *src;
  int st;

  ASSERT_EQ(hrt_env_start(&e, NULL), 0);
  r = hrt_rcmd(&e, "HSET hr:ctx:{ctx-user} location office mood tired "
                   "tz America/New_York device desktop");
  ASSERT_NOT_NULL(r);
  freeReplyObject(r);
  /* Only mood and ts come from the request; the rest from Redis. */
  j = recommend(&e,
                json_pack("{s:s,s:{s:I,s:s}}", "user_id", "ctx-user",
                          "context", "ts", FRI_22_UTC, "mood", "curious"),
                &st);
  ASSERT_MSG(st == 200, "status %d: %s", st, hrt_jdump(j));
  ctx = hrt_jget(j, "context");
  src = hrt_jget(j, "context_source");
  ASSERT_STR_EQ(hrt_jstr(ctx, "location"), "office");
  ASSERT_STR_EQ(hrt_jstr(src, "location"), "redis");
  ASSERT_STR_EQ(hrt_jstr(ctx, "tz"), "America/New_York");
  ASSERT_STR_EQ(hrt_jstr(src, "tz"), "redis");
  ASSERT_STR_EQ(hrt_jstr(ctx, "device"), "desktop");
  ASSERT_STR_EQ(hrt_jstr(src, "device"), "redis");
  ASSERT_STR_EQ(hrt_jstr(ctx, "mood"), "curious");
  ASSERT_STR_EQ(hrt_jstr(src, "mood"), "request");
  ASSERT_STR_EQ(hrt_jstr(src, "ts"), "request");
  ASSERT_MSG(check_clock(ctx, FRI_22_UTC, -5 * 3600, why, sizeof(why)), "%s",
             why); /* New York is UTC-5 in January */
  ASSERT(json_is_false(hrt_jget(j, "degraded")));
  json_decref(j);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

HR_TEST_T(recommend_uses_redis_history, 60) {
  HRT_ENV(e);
  char user[256];
  hrt_strv_t seen = {0}, hist = {0}, before = {0}, after = {0};
  hrt_strv_t unmoved = {0};
  redisReply *r;
  json_t *j;
  int st;

  ASSERT_EQ(hrt_env_start(&e, NULL), 0);
  ASSERT_EQ(known_user(&e, 0, user, sizeof(user), &seen), 0);
  ASSERT_GE(seen.n, 5);
  for (size_t i = 0; i < 5; i++)
    hrt_strv_add(&hist, seen.v[i]);
  j = recommend(&e, json_pack("{s:s,s:i}", "user_id", "fresh-hist-user", "k",
                              20),
                &st);
  ASSERT_EQ(st, 200);
  ASSERT_EQ(hrt_item_ids(j, &before), 0);
  json_decref(j);
  /* What an implementation that only filters the history out would say. */
  for (size_t i = 0; i < before.n && unmoved.n < 10; i++)
    if (!hrt_strv_has(&hist, before.v[i]))
      hrt_strv_add(&unmoved, before.v[i]);
  /* Seed the recent history directly (newest first, as the server keeps
   * it) with the active user's first five items. */
  r = hrt_rcmd(&e, "RPUSH hr:hist:{fresh-hist-user} %s %s %s %s %s",
               hist.v[0], hist.v[1], hist.v[2], hist.v[3], hist.v[4]);
  ASSERT_NOT_NULL(r);
  freeReplyObject(r);
  j = recommend(&e, json_pack("{s:s}", "user_id", "fresh-hist-user"), &st);
  ASSERT_EQ(st, 200);
  ASSERT_EQ(hrt_jint(j, "history_used"), 5);
  ASSERT_EQ(hrt_item_ids(j, &after), 0);
  json_decref(j);
  ASSERT_EQ(after.n, 10);
  ASSERT_MSG(any_in(&after, &hist) == NULL, "history item %s recommended",
             any_in(&after, &hist));
  ASSERT_MSG(!same_list(&unmoved, &after),
             "the Redis history only filtered the answer, it did not move it");
  hrt_strv_free(&seen);
  hrt_strv_free(&hist);
  hrt_strv_free(&before);
  hrt_strv_free(&after);
  hrt_strv_free(&unmoved);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

HR_TEST_T(recommend_fewer_items_than_k, 60) {
  HRT_ENV(e);
  hrt_strv_t first = {0}, second = {0}, last = {0};
  json_t *j, *excl;
  long long n_items;
  int st;

  ASSERT_EQ(hrt_env_start(&e, NULL), 0);
  j = hrt_get(&e, "/models", &st);
  n_items = hrt_jint(j, "slots[0].n_items");
  json_decref(j);
  ASSERT_GT(n_items, 100);
  ASSERT_LE(n_items, 200);
  /* Walk the whole catalogue in two pages of at most 100. */
  j = recommend(&e, json_pack("{s:s,s:i}", "user_id", "pager", "k", 100), &st);
  ASSERT_EQ(st, 200);
  ASSERT_EQ(hrt_item_ids(j, &first), 0);
  json_decref(j);
  ASSERT_EQ(first.n, 100);
  excl = json_array();
  for (size_t i = 0; i < first.n; i++)
    json_array_append_new(excl, json_string(first.v[i]));
  j = recommend(&e,
                json_pack("{s:s,s:i,s:O}", "user_id", "pager", "k", 100,
                          "exclude", excl),
                &st);
  ASSERT_EQ(st, 200);
  ASSERT_EQ(hrt_item_ids(j, &second), 0);
  json_decref(j);
  ASSERT_EQ((long long)second.n, n_items - 100);
  /* Exclude all but the last five: k = 10 yields exactly those five. */
  for (size_t i = 0; i + 5 < second.n; i++)
    json_array_append_new(excl, json_string(second.v[i]));
  j = recommend(&e,
                json_pack("{s:s,s:i,s:o}", "user_id", "pager", "k", 10,
                          "exclude", excl),
                &st);
  ASSERT_MSG(st == 200, "status %d: %s", st, hrt_jdump(j));
  ASSERT_EQ(hrt_item_ids(j, &last), 0);
  json_decref(j);
  ASSERT_EQ(last.n, 5);
  for (size_t i = 0; i < 5; i++)
    ASSERT_STR_EQ(last.v[i], second.v[second.n - 5 + i]);
  hrt_strv_free(&first);
  hrt_strv_free(&second);
  hrt_strv_free(&last);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}
