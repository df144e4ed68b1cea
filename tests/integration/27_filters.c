/* 27_filters.c -- /recommend with attribute filters ("filters"): every
 * returned item has the requested attribute values (OR within an attribute,
 * AND across attributes) on each retrieval path -- exact scoring, the
 * exact subset scan of a selective filter, the ANN index searched with the
 * filter, and popularity -- and the index's filtered answers match exact
 * scoring. The truth comes from the fixture's items.csv. */
#include "lib/env.h"

#include <stdio.h>
#include <stdlib.h>

/* items.csv of the fixture: item_id,category,style,duration_min */
typedef struct {
  hrt_strv_t id, cat, style;
} catalogue_t;

static int load_catalogue(const hrt_fixture_t *f, catalogue_t *c) {
  char path[PATH_MAX + 16], line[512];
  FILE *fp;

  memset(c, 0, sizeof(*c));
  snprintf(path, sizeof(path), "%s/items.csv", f->data);
  fp = fopen(path, "r");
  if (fp == NULL)
    return -1;
  if (fgets(line, sizeof(line), fp) == NULL) { /* header */
    fclose(fp);
    return -1;
  }
  while (fgets(line, sizeof(line), fp) != NULL) {
    char *id = strtok(line, ",\n"), *cat = strtok(NULL, ",\n"),
         *st = strtok(NULL, ",\n");
    if (id == NULL || cat == NULL || st == NULL ||
        hrt_strv_add(&c->id, id) || hrt_strv_add(&c->cat, cat) ||
        hrt_strv_add(&c->style, st)) {
      fclose(fp);
      return -1;
    }
  }
  fclose(fp);
  return c->id.n > 0 ? 0 : -1;
}

static void free_catalogue(catalogue_t *c) {
  hrt_strv_free(&c->id);
  hrt_strv_free(&c->cat);
  hrt_strv_free(&c->style);
}

static long find(const catalogue_t *c, const char *id) {
  for (size_t i = 0; i < c->id.n; i++)
    if (strcmp(c->id.v[i], id) == 0)
      return (long)i;
  return -1;
}

static size_t count_cat(const catalogue_t *c, const char *cat,
                        const char *style) {
  size_t n = 0;
  for (size_t i = 0; i < c->id.n; i++)
    n += strcmp(c->cat.v[i], cat) == 0 &&
         (style == NULL || strcmp(c->style.v[i], style) == 0);
  return n;
}

/* POST /recommend {user_id (or history), k, filters}; 200 or NULL. */
static json_t *rec(hrt_env_t *e, const char *user, int k, json_t *filters) {
  int st;
  json_t *b = user ? json_pack("{s:s,s:i,s:o}", "user_id", user, "k", k,
                               "filters", filters)
                   : json_pack("{s:[],s:i,s:o}", "history", "k", k, "filters",
                               filters);
  json_t *j = hrt_post(e, "/recommend", b, &st);
  if (st != 200) {
    fprintf(stderr, "status %d: %s\n", st, hrt_jdump(j));
    json_decref(j);
    return NULL;
  }
  return j;
}

/* Every item of j is in one of cats (NULL-terminated) and, when style is
 * not NULL, of that style. */
static int all_match(const catalogue_t *c, json_t *j, const char *const *cats,
                     const char *style) {
  hrt_strv_t ids = {0};
  int ok = hrt_item_ids(j, &ids) == 0;
  for (size_t i = 0; ok && i < ids.n; i++) {
    long x = find(c, ids.v[i]);
    int in = 0;
    for (const char *const *p = cats; x >= 0 && *p; p++)
      in |= strcmp(c->cat.v[x], *p) == 0;
    if (!in || (style && strcmp(c->style.v[x], style) != 0)) {
      fprintf(stderr, "item %s (%s, %s) does not pass the filter\n", ids.v[i],
              x >= 0 ? c->cat.v[x] : "?", x >= 0 ? c->style.v[x] : "?");
      ok = 0;
    }
  }
  hrt_strv_free(&ids);
  return ok;
}

HR_TEST_T(filters_exact_path_only_matching_items, 60) {
  HRT_ENV(e);
  catalogue_t c;
  hrt_strv_t users = {0};
  static const char *const news[] = {"news", NULL},
                           *two[] = {"comedy", "drama", NULL};
  json_t *j;

  ASSERT_EQ(hrt_env_start(&e, NULL), 0);
  ASSERT_EQ(load_catalogue(&e.fx, &c), 0);
  ASSERT_EQ(hrt_fixture_top_users(&e.fx, 5, &users), 0);
  for (size_t u = 0; u < users.n; u++) {
    j = rec(&e, users.v[u], 10, json_pack("{s:s}", "category", "news"));
    ASSERT_NOT_NULL(j);
    ASSERT_STR_EQ(hrt_jstr(j, "retrieval"), "exact");
    ASSERT_EQ(hrt_jint(j, "filter_matches"),
              (long long)count_cat(&c, "news", NULL));
    ASSERT_GT(json_array_size(hrt_jget(j, "items")), 0);
    ASSERT(hrt_scores_sorted(j));
    ASSERT_MSG(all_match(&c, j, news, NULL), "%s", hrt_jdump(j));
    json_decref(j);
    /* OR within an attribute, AND across attributes. */
    j = rec(&e, users.v[u], 10,
            json_pack("{s:[s,s],s:s}", "category", "comedy", "drama", "style",
                      "indie"));
    ASSERT_NOT_NULL(j);
    ASSERT_EQ(hrt_jint(j, "filter_matches"),
              (long long)(count_cat(&c, "comedy", "indie") +
                          count_cat(&c, "drama", "indie")));
    ASSERT_MSG(all_match(&c, j, two, "indie"), "%s", hrt_jdump(j));
    json_decref(j);
  }
  /* A value no item has: an empty answer, not an error. */
  j = rec(&e, users.v[0], 10, json_pack("{s:s}", "category", "opera"));
  ASSERT_NOT_NULL(j);
  ASSERT_EQ(json_array_size(hrt_jget(j, "items")), 0);
  ASSERT_EQ(hrt_jint(j, "filter_matches"), 0);
  json_decref(j);
  /* Anonymous with no history: popularity, filtered. */
  j = rec(&e, NULL, 5, json_pack("{s:s}", "category", "news"));
  ASSERT_NOT_NULL(j);
  ASSERT_STR_EQ(hrt_jstr(j, "retrieval"), "popularity");
  ASSERT_EQ(json_array_size(hrt_jget(j, "items")), 5);
  ASSERT_MSG(all_match(&c, j, news, NULL), "%s", hrt_jdump(j));
  json_decref(j);
  hrt_strv_free(&users);
  free_catalogue(&c);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

/* The index searched with the filter (filter_scan_pct 0 keeps every
 * filtered request on the index) against exact scoring of the same
 * filter on a second server; a third server, told to scan anything below
 * 100 %, answers the same through the exact subset scan. */
HR_TEST_T(filters_ann_path_matches_exact, 90) {
  HRT_ENV(exact);
  HRT_ENV(ann);
  HRT_ENV(scan);
  hrt_env_opts_t oa = {.config_json =
                           "{\"ann\":{\"min_items\":1,\"candidates\":50,"
                           "\"ef\":200,\"filter_scan_pct\":0}}"};
  hrt_env_opts_t os = {.config_json =
                           "{\"ann\":{\"min_items\":1,\"filter_scan_pct\":"
                           "100}}"};
  catalogue_t c;
  hrt_strv_t users = {0};
  static const char *const two[] = {"drama", "kids", NULL};
  int same = 0;

  ASSERT_EQ(hrt_env_start(&exact, NULL), 0);
  ASSERT_EQ(hrt_env_start(&ann, &oa), 0);
  ASSERT_EQ(hrt_env_start(&scan, &os), 0);
  ASSERT_EQ(load_catalogue(&ann.fx, &c), 0);
  ASSERT_EQ(hrt_fixture_top_users(&ann.fx, 20, &users), 0);
  for (size_t u = 0; u < users.n; u++) {
    json_t *a = rec(&ann, users.v[u], 10,
                    json_pack("{s:[s,s]}", "category", "drama", "kids"));
    json_t *x = rec(&exact, users.v[u], 10,
                    json_pack("{s:[s,s]}", "category", "drama", "kids"));
    json_t *s = rec(&scan, users.v[u], 10,
                    json_pack("{s:[s,s]}", "category", "drama", "kids"));
    hrt_strv_t ia = {0}, ix = {0}, is = {0};
    ASSERT_NOT_NULL(a);
    ASSERT_NOT_NULL(x);
    ASSERT_NOT_NULL(s);
    ASSERT_STR_EQ(hrt_jstr(a, "retrieval"), "ann");
    ASSERT_STR_EQ(hrt_jstr(x, "retrieval"), "exact");
    ASSERT_STR_EQ(hrt_jstr(s, "retrieval"), "exact");
    ASSERT_MSG(all_match(&c, a, two, NULL), "%s", hrt_jdump(a));
    ASSERT_EQ(hrt_item_ids(a, &ia), 0);
    ASSERT_EQ(hrt_item_ids(x, &ix), 0);
    ASSERT_EQ(hrt_item_ids(s, &is), 0);
    ASSERT_EQ(ia.n, 10);
    ASSERT_EQ(is.n, ix.n);
    for (size_t i = 0; i < is.n; i++) /* both exact: identical */
      ASSERT_STR_EQ(is.v[i], ix.v[i]);
    int match = ia.n == ix.n;
    for (size_t i = 0; match && i < ia.n; i++)
      match = strcmp(ia.v[i], ix.v[i]) == 0;
    same += match;
    hrt_strv_free(&ia);
    hrt_strv_free(&ix);
    hrt_strv_free(&is);
    json_decref(a);
    json_decref(x);
    json_decref(s);
  }
  ASSERT_MSG(same >= 19, "only %d of 20 users got the exact filtered top 10",
             same);
  hrt_strv_free(&users);
  free_catalogue(&c);
  ASSERT_EQ(hrt_env_stop(&scan), 0);
  ASSERT_EQ(hrt_env_stop(&ann), 0);
  ASSERT_EQ(hrt_env_stop(&exact), 0);
  return 0;
}
