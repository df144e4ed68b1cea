/* 25_ann.c -- /recommend through the ANN index: the fixture model carries
 * index.bin; with ann.min_items lowered the server retrieves candidates from
 * it, and the answers match exact scoring, exclusions and events included. */
#include "lib/env.h"

#include <stdlib.h>

static json_t *rec(hrt_env_t *e, const char *user, int k) {
  int st;
  json_t *j = hrt_post(e, "/recommend",
                       json_pack("{s:s,s:i}", "user_id", user, "k", k), &st);
  return st == 200 ? j : (json_decref(j), NULL);
}

HR_TEST_T(ann_retrieval_matches_exact, 90) {
  HRT_ENV(exact);
  HRT_ENV(ann);
  hrt_env_opts_t oa = {.config_json =
                           "{\"ann\":{\"min_items\":1,\"candidates\":50,"
                           "\"ef\":200}}"};
  hrt_strv_t users = {0};

  ASSERT_EQ(hrt_env_start(&exact, NULL), 0);
  ASSERT_EQ(hrt_env_start(&ann, &oa), 0);
  ASSERT_EQ(hrt_fixture_top_users(&ann.fx, 20, &users), 0);
  int same = 0;
  for (size_t u = 0; u < users.n; u++) {
    json_t *a = rec(&ann, users.v[u], 10), *x = rec(&exact, users.v[u], 10);
    hrt_strv_t ia = {0}, ix = {0};
    ASSERT_NOT_NULL(a);
    ASSERT_NOT_NULL(x);
    ASSERT_STR_EQ(hrt_jstr(a, "retrieval"), "ann");
    ASSERT_STR_EQ(hrt_jstr(x, "retrieval"), "exact");
    ASSERT_EQ(hrt_item_ids(a, &ia), 0);
    ASSERT_EQ(hrt_item_ids(x, &ix), 0);
    ASSERT_EQ(ia.n, 10);
    int match = ia.n == ix.n;
    for (size_t i = 0; match && i < ia.n; i++)
      match = strcmp(ia.v[i], ix.v[i]) == 0;
    same += match;
    /* Nothing the user already has comes back through the index. */
    hrt_strv_t seen = {0};
    ASSERT_EQ(hrt_fixture_user_items(&ann.fx, users.v[u], &seen), 0);
    for (size_t i = 0; i < ia.n; i++)
      ASSERT_MSG(!hrt_strv_has(&seen, ia.v[i]), "%s got seen item %s",
                 users.v[u], ia.v[i]);
    hrt_strv_free(&seen);
    hrt_strv_free(&ia);
    hrt_strv_free(&ix);
    json_decref(a);
    json_decref(x);
  }
  /* 200 items, 50 candidates, ef 200: the index should find the exact top
   * 10 for (almost) every user. */
  ASSERT_MSG(same >= 19, "only %d of 20 users got the exact top 10", same);
  hrt_strv_free(&users);
  ASSERT_EQ(hrt_env_stop(&ann), 0);
  ASSERT_EQ(hrt_env_stop(&exact), 0);
  return 0;
}

HR_TEST_T(ann_event_excludes_and_moves_answer, 60) {
  HRT_ENV(e);
  hrt_env_opts_t o = {.config_json = "{\"ann\":{\"min_items\":1}}"};
  hrt_strv_t users = {0}, before = {0}, after = {0};
  json_t *j;
  int st;

  ASSERT_EQ(hrt_env_start(&e, &o), 0);
  ASSERT_EQ(hrt_fixture_top_users(&e.fx, 1, &users), 0);
  j = rec(&e, users.v[0], 10);
  ASSERT_NOT_NULL(j);
  ASSERT_EQ(hrt_item_ids(j, &before), 0);
  json_decref(j);
  j = hrt_post(&e, "/event",
               json_pack("{s:s,s:s,s:s}", "user_id", users.v[0], "item_id",
                         before.v[0], "type", "purchase"),
               &st);
  ASSERT_EQ(st, 202);
  json_decref(j);
  j = rec(&e, users.v[0], 10);
  ASSERT_NOT_NULL(j);
  ASSERT_STR_EQ(hrt_jstr(j, "retrieval"), "ann");
  ASSERT_EQ(hrt_item_ids(j, &after), 0);
  ASSERT_MSG(!hrt_strv_has(&after, before.v[0]), "purchased item returned: %s",
             hrt_jdump(j));
  json_decref(j);
  hrt_strv_free(&users);
  hrt_strv_free(&before);
  hrt_strv_free(&after);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}
