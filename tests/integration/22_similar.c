/* 22_similar.c -- POST /similar: the items nearest to an item, as an exact
 * scan of the model's vectors ranks them (through the index, and through
 * the filter pass), personalised for a user (bad input: 40_badinput.c). */
#include "lib/env.h"

#include "hr/model.h"
#include "hr/ranker.h"

#include <stdlib.h>

/* The exact answer: the k items of largest <v_a, v_j> + prior_j, j != a,
 * passing `allow` (NULL: all), into ids; the count. */
static size_t exact_similar(const hr_model_t *m, size_t a,
                            const uint64_t *allow, size_t k, long *ids) {
  size_t n = hr_model_n_items(m), d = (size_t)hr_model_dim(m);
  const float *v = hr_model_item_vectors(m), *prior = hr_model_item_prior(m);
  hr_scored_t top[64];
  hr_topk_t t;
  hr_topk_init(&t, top, k);
  for (size_t j = 0; j < n; j++) {
    float s = prior[j];
    if (j == a || (allow && !((allow[j / 64] >> (j % 64)) & 1)))
      continue;
    for (size_t c = 0; c < d; c++)
      s += v[a * d + c] * v[j * d + c];
    hr_topk_push(&t, (long)j, s);
  }
  size_t got = hr_topk_finish(&t);
  for (size_t i = 0; i < got; i++)
    ids[i] = top[i].index;
  return got;
}

/* Items of a /similar answer found among the exact ones: 0..k. */
static size_t overlap(const hr_model_t *m, json_t *j, const long *ids,
                      size_t n) {
  size_t hit = 0;
  json_t *items = json_object_get(j, "items"), *it;
  size_t i;
  json_array_foreach(items, i, it) {
    const char *id = json_string_value(json_object_get(it, "item_id"));
    for (size_t x = 0; x < n && id; x++)
      hit += strcmp(id, hr_model_item_id(m, (size_t)ids[x])) == 0;
  }
  return hit;
}

/* Every item of the fixture as the anchor, through the index (ann.min_items
 * 1): recall@10 against the exact scan; with a filter (one category): the
 * exact answer, in order. */
HR_TEST_T(similar_agrees_with_an_exact_scan, 120) {
  HRT_ENV(e);
  hrt_env_opts_t o = {.config_json = "{\"ann\": {\"min_items\": 1}}"};
  hr_error_t err = {0};
  long ids[10];
  size_t found = 0, wanted = 0, via_index = 0;
  int st;

  ASSERT_EQ(hrt_env_start(&e, &o), 0);
  hr_model_t *m = hr_model_open(e.fx.version_dir, &err);
  ASSERT_MSG(m != NULL, "%s", err.msg);
  size_t n = hr_model_n_items(m);
  for (size_t a = 0; a < n; a++) {
    json_t *j = hrt_post(&e, "/similar",
                         json_pack("{ss si}", "item_id",
                                   hr_model_item_id(m, a), "k", 10), &st);
    ASSERT_MSG(st == 200, "%d %s", st, hrt_jdump(j));
    size_t ne = exact_similar(m, a, NULL, 10, ids);
    found += overlap(m, j, ids, ne);
    wanted += ne;
    via_index += hrt_jstr(j, "retrieval") &&
                 strcmp(hrt_jstr(j, "retrieval"), "ann") == 0;
    json_decref(j);
  }
  double recall = (double)found / (double)wanted;
  fprintf(stderr, "  /similar recall@10 over %zu anchors: %.4f (%zu by the "
          "index)\n", n, recall, via_index);
  ASSERT_MSG(recall >= 0.95, "recall@10 %.4f", recall);
  ASSERT_EQ(via_index, n);

  /* a kept list (the anchors above were all asked once) with the
   * request's own exclusion: the exact list without the excluded item */
  for (size_t a = 0; a < n; a += 7) {
    long ids11[11];
    size_t ne = exact_similar(m, a, NULL, 11, ids11);
    ASSERT_EQ(ne, 11);
    json_t *j = hrt_post(&e, "/similar",
                         json_pack("{ss si s[s]}", "item_id",
                                   hr_model_item_id(m, a), "k", 10, "exclude",
                                   hr_model_item_id(m, (size_t)ids11[0])),
                         &st);
    ASSERT_MSG(st == 200, "%d %s", st, hrt_jdump(j));
    ASSERT_EQ(overlap(m, j, ids11 + 1, 10), 10);
    json_decref(j);
  }

  /* a filter: exact, in order */
  const char *vals[] = {"drama"};
  hr_filter_term_t term = {"category", vals, 1};
  uint64_t allow[(HRT_FIXTURE_ITEMS + 63) / 64 + 1];
  size_t n_allow;
  ASSERT_EQ(hr_model_filter(m, &term, 1, allow, &n_allow, &err), 0);
  ASSERT_GT(n_allow, 10);
  for (size_t a = 0; a < n; a += 10) {
    json_t *j = hrt_post(&e, "/similar",
                         json_pack("{ss si s{ss}}", "item_id",
                                   hr_model_item_id(m, a), "k", 5, "filters",
                                   "category", "drama"), &st);
    ASSERT_MSG(st == 200, "%d %s", st, hrt_jdump(j));
    size_t ne = exact_similar(m, a, allow, 5, ids);
    ASSERT_EQ(json_array_size(json_object_get(j, "items")), ne);
    for (size_t i = 0; i < ne; i++) {
      char path[32];
      snprintf(path, sizeof(path), "items[%zu].item_id", i);
      ASSERT_MSG(strcmp(hrt_jstr(j, path), hr_model_item_id(m, (size_t)ids[i])) == 0,
                 "anchor %zu, rank %zu: %s", a, i, hrt_jdump(j));
    }
    ASSERT_EQ(hrt_jint(j, "filter_matches"), (long long)n_allow);
    json_decref(j);
  }
  hr_model_free(m);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

/* With a user_id: never an item of the user's history (the training data's
 * and Redis's), nor the anchor, nor `exclude`. */
HR_TEST_T(similar_for_a_user_leaves_out_what_they_had, 60) {
  HRT_ENV(e);
  hrt_strv_t users = {0}, had = {0}, got = {0};
  int st;

  ASSERT_EQ(hrt_env_start(&e, NULL), 0);
  ASSERT_EQ(hrt_fixture_top_users(&e.fx, 1, &users), 0);
  ASSERT_EQ(hrt_fixture_user_items(&e.fx, users.v[0], &had), 0);
  ASSERT_GT(had.n, 3);
  /* one more item through /event: Redis's history */
  json_t *j = hrt_post(&e, "/event",
                       json_pack("{ss ss ss}", "user_id", users.v[0], "type",
                                 "click", "item_id", "i00007"), &st);
  ASSERT_EQ(st, 202);
  json_decref(j);
  hrt_strv_add(&had, "i00007");
  j = hrt_post(&e, "/similar",
               json_pack("{ss ss si s[s]}", "item_id", had.v[0], "user_id",
                         users.v[0], "k", 30, "exclude", "i00009"), &st);
  ASSERT_MSG(st == 200, "%d %s", st, hrt_jdump(j));
  ASSERT_EQ(hrt_item_ids(j, &got), 0);
  ASSERT_GT(got.n, 0);
  for (size_t i = 0; i < got.n; i++) {
    ASSERT_MSG(!hrt_strv_has(&had, got.v[i]), "%s is in the history: %s",
               got.v[i], hrt_jdump(j));
    ASSERT_MSG(strcmp(got.v[i], "i00009") != 0, "excluded item returned");
  }
  ASSERT(hrt_jint(j, "history_used") >= 1);
  ASSERT(hrt_scores_sorted(j));
  json_decref(j);
  hrt_strv_free(&users);
  hrt_strv_free(&had);
  hrt_strv_free(&got);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}
