/* 27_filters.c -- /recommend with attribute filters ("filters"): every
 * returned item has the requested attribute values (OR within an attribute,
 * AND across attributes) on each retrieval path -- exact scoring of every
 * item, scoring of the matching items, the norm-bound pass of an indexed
 * catalogue, and popularity -- and all of them give the same answer. The
 * truth comes from the fixture's items.csv. */
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
  /* An integer value matches the attribute's decimal text. */
  j = rec(&e, users.v[0], 100, json_pack("{s:i}", "duration_min", 3));
  ASSERT_NOT_NULL(j);
  {
    size_t want = 0;
    char path[PATH_MAX + 16], line[512];
    FILE *fp;
    snprintf(path, sizeof(path), "%s/items.csv", e.fx.data);
    fp = fopen(path, "r");
    ASSERT_NOT_NULL(fp);
    while (fgets(line, sizeof(line), fp) != NULL) {
      char *last = strrchr(line, ',');
      want += last != NULL && strcmp(last, ",3\n") == 0;
    }
    fclose(fp);
    ASSERT_GT(want, 0);
    ASSERT_EQ(hrt_jint(j, "filter_matches"), (long long)want);
    ASSERT_LE(json_array_size(hrt_jget(j, "items")), want);
    ASSERT_GT(json_array_size(hrt_jget(j, "items")), 0);
  }
  json_decref(j);
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

/* On a catalogue served through the index (ann.min_items 30 here), a
 * filter passing at least ann.min_items items is answered by the exact
 * norm-bound pass over the matching items, and a smaller one by scoring
 * them; both must give exactly what a server scoring every item gives. */
HR_TEST_T(filters_indexed_catalogue_matches_exact, 90) {
  HRT_ENV(exact);
  HRT_ENV(idx);
  hrt_env_opts_t oi = {.config_json = "{\"ann\":{\"min_items\":30}}"};
  catalogue_t c;
  hrt_strv_t users = {0};
  static const char *const two[] = {"drama", "kids", NULL},
                           *news[] = {"news", NULL};

  ASSERT_EQ(hrt_env_start(&exact, NULL), 0);
  ASSERT_EQ(hrt_env_start(&idx, &oi), 0);
  ASSERT_EQ(load_catalogue(&idx.fx, &c), 0);
  ASSERT_GE(count_cat(&c, "drama", NULL) + count_cat(&c, "kids", NULL), 30);
  ASSERT_LT(count_cat(&c, "news", NULL), 30);
  ASSERT_EQ(hrt_fixture_top_users(&idx.fx, 20, &users), 0);
  for (size_t u = 0; u < users.n; u++) {
    for (int f = 0; f < 2; f++) {
      json_t *flt = f == 0 ? json_pack("{s:[s,s]}", "category", "drama", "kids")
                           : json_pack("{s:s}", "category", "news");
      json_t *a = rec(&idx, users.v[u], 10, json_incref(flt));
      json_t *x = rec(&exact, users.v[u], 10, flt);
      hrt_strv_t ia = {0}, ix = {0};
      ASSERT_NOT_NULL(a);
      ASSERT_NOT_NULL(x);
      ASSERT_STR_EQ(hrt_jstr(a, "retrieval"), "exact");
      ASSERT_STR_EQ(hrt_jstr(x, "retrieval"), "exact");
      ASSERT_MSG(all_match(&c, a, f == 0 ? two : news, NULL), "%s",
                 hrt_jdump(a));
      ASSERT_EQ(hrt_item_ids(a, &ia), 0);
      ASSERT_EQ(hrt_item_ids(x, &ix), 0);
      ASSERT_GT(ia.n, 0);
      ASSERT_EQ(ia.n, ix.n);
      for (size_t i = 0; i < ia.n; i++)
        ASSERT_MSG(strcmp(ia.v[i], ix.v[i]) == 0, "user %s filter %d: %s",
                   users.v[u], f, hrt_jdump(a));
      hrt_strv_free(&ia);
      hrt_strv_free(&ix);
      json_decref(a);
      json_decref(x);
    }
  }
  /* Both filtered paths ran (the responses say "exact" for both). */
  char *text = hrt_metrics(&idx);
  ASSERT_NOT_NULL(text);
  ASSERT_DBL_NEAR(hrt_metric(text, "hyperrec_recommend_retrieval_total",
                             "filter_pass", NULL), 20, 1e-9);
  ASSERT_DBL_NEAR(hrt_metric(text, "hyperrec_recommend_retrieval_total",
                             "filter_scan", NULL), 20, 1e-9);
  free(text);
  /* Unfiltered, the same server goes through the index. */
  int st;
  json_t *j = hrt_post(&idx, "/recommend",
                       json_pack("{s:s}", "user_id", users.v[0]), &st);
  ASSERT_EQ(st, 200);
  ASSERT_STR_EQ(hrt_jstr(j, "retrieval"), "ann");
  ASSERT(hrt_jget(j, "filter_matches") == NULL);
  json_decref(j);
  hrt_strv_free(&users);
  free_catalogue(&c);
  ASSERT_EQ(hrt_env_stop(&idx), 0);
  ASSERT_EQ(hrt_env_stop(&exact), 0);
  return 0;
}
