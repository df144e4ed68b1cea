/* 23_popular.c -- POST /popular: the model's context prior for nobody
 * (the generator plants a context effect: the lists differ by context),
 * plain popularity without a known context value, filters and exclusions
 * (bad input: 40_badinput.c). */
#include "lib/env.h"

#include <stdlib.h>

static json_t *popular(hrt_env_t *e, json_t *body, int *st) {
  return hrt_post(e, "/popular", body, st);
}

HR_TEST_T(popular_differs_by_context, 60) {
  HRT_ENV(e);
  hrt_strv_t home = {0}, work = {0}, plain = {0}, again = {0};
  int st;

  ASSERT_EQ(hrt_env_start(&e, NULL), 0);
  json_t *j = popular(&e, json_pack("{si s{ss}}", "k", 10, "context",
                                    "location", "home"), &st);
  ASSERT_MSG(st == 200, "%d %s", st, hrt_jdump(j));
  ASSERT_STR_EQ(hrt_jstr(j, "retrieval"), "context_popularity");
  ASSERT_STR_EQ(hrt_jstr(j, "context.location"), "home");
  ASSERT_EQ(hrt_item_ids(j, &home), 0);
  ASSERT(hrt_scores_sorted(j));
  json_decref(j);
  j = popular(&e, json_pack("{si s{ss}}", "k", 10, "context", "location",
                            "work"), &st);
  ASSERT_EQ(st, 200);
  ASSERT_EQ(hrt_item_ids(j, &work), 0);
  json_decref(j);
  ASSERT_EQ(home.n, 10);
  ASSERT_EQ(work.n, 10);
  size_t same = 0;
  for (size_t i = 0; i < home.n; i++)
    same += strcmp(home.v[i], work.v[i]) == 0;
  ASSERT_MSG(same < 10, "home and work give the same list");
  /* no context value the model knows: plain popularity, the same every
   * time; a value it does not know changes nothing */
  j = popular(&e, json_pack("{si}", "k", 10), &st);
  ASSERT_EQ(st, 200);
  ASSERT_STR_EQ(hrt_jstr(j, "retrieval"), "popularity");
  ASSERT_EQ(hrt_item_ids(j, &plain), 0);
  json_decref(j);
  j = popular(&e, json_pack("{si s{ss}}", "k", 10, "context", "location",
                            "moon"), &st);
  ASSERT_EQ(st, 200);
  ASSERT_STR_EQ(hrt_jstr(j, "retrieval"), "popularity");
  ASSERT_EQ(hrt_item_ids(j, &again), 0);
  json_decref(j);
  ASSERT_EQ(plain.n, again.n);
  for (size_t i = 0; i < plain.n; i++)
    ASSERT_STR_EQ(plain.v[i], again.v[i]);
  hrt_strv_free(&home);
  hrt_strv_free(&work);
  hrt_strv_free(&plain);
  hrt_strv_free(&again);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

/* Filters keep only matching items (counted in filter_matches); exclude
 * drops the ones named; nothing is written. */
HR_TEST_T(popular_filters_and_exclusions, 60) {
  HRT_ENV(e);
  hrt_strv_t first = {0}, second = {0};
  int st;

  ASSERT_EQ(hrt_env_start(&e, NULL), 0);
  long long keys0 = hrt_rint(&e, "DBSIZE");
  json_t *j = popular(&e, json_pack("{si s{ss} s{ss}}", "k", 5, "context",
                                    "mood", "happy", "filters", "category",
                                    "drama"), &st);
  ASSERT_MSG(st == 200, "%d %s", st, hrt_jdump(j));
  ASSERT_GT(hrt_jint(j, "filter_matches"), 5);
  ASSERT_EQ(hrt_item_ids(j, &first), 0);
  json_decref(j);
  /* every answer is a drama: asked again with the first excluded, the
   * rest moves up by one */
  j = popular(&e, json_pack("{si s{ss} s{ss} s[s]}", "k", 5, "context",
                            "mood", "happy", "filters", "category", "drama",
                            "exclude", first.v[0]), &st);
  ASSERT_EQ(st, 200);
  ASSERT_EQ(hrt_item_ids(j, &second), 0);
  json_decref(j);
  ASSERT_EQ(second.n, 5);
  for (size_t i = 0; i + 1 < first.n; i++)
    ASSERT_STR_EQ(second.v[i], first.v[i + 1]);
  ASSERT_EQ(hrt_rint(&e, "DBSIZE"), keys0);
  hrt_strv_free(&first);
  hrt_strv_free(&second);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

