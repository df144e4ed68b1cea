/* 80_train_loop.c -- the loop the service exists for: events posted to
 * /event land in the Redis stream, `hyperrec-train fit --from-redis` learns
 * from them and publishes a version, and the running server picks it up. */
#include "lib/env.h"

#include <stdlib.h>
#include <time.h>

HR_TEST_T(train_loop_events_to_new_served_model, 180) {
  HRT_ENV(e);
  hrt_env_opts_t o = {.config_json = "{\"models_poll_ms\":100}"};
  char bin[PATH_MAX], out[PATH_MAX], redis[64], log[PATH_MAX];
  json_t *batch, *j;
  int st, ok;
  long long v0;

  ASSERT_EQ(hrt_env_start(&e, &o), 0);
  j = hrt_get(&e, "/models", &st);
  v0 = hrt_jint(j, "slots[0].version");
  json_decref(j);
  /* 40 users over 30 items in two taste groups: even users like even items. */
  for (int u = 0; u < 40; u++) {
    batch = json_array();
    for (int k = 0; k < 8; k++) {
      char uid[32], iid[32];
      snprintf(uid, sizeof(uid), "loop-u%d", u);
      snprintf(iid, sizeof(iid), "loop-i%d", (u % 2) + 2 * ((u + k) % 15));
      json_array_append_new(
          batch, json_pack("{s:s,s:s,s:s,s:I,s:{s:s}}", "user_id", uid,
                           "item_id", iid, "type", "click", "ts",
                           (json_int_t)(1700000000 + u * 100 + k), "context",
                           "mood", k % 2 ? "happy" : "calm"));
    }
    j = hrt_post(&e, "/event", json_pack("{s:o}", "events", batch), &st);
    ASSERT_MSG(st == 202, "event batch %d: %d %s", u, st, hrt_jdump(j));
    json_decref(j);
  }
  ASSERT_EQ(hrt_rint(&e, "XLEN hr:events"), 320);
  hrt_fmt(redis, sizeof(redis), "127.0.0.1:%d", e.redis.port);
  hrt_fmt(out, sizeof(out), "%s/default", e.models);
  hrt_fmt(log, sizeof(log), "%s/fit.log", hr_test_tmpdir());
  const char *argv[] = {hrt_bin_path("hyperrec-train", bin, sizeof(bin)),
                        "fit", "--from-redis", redis, "--out", out,
                        "--factors", "8", "--iters", "5", "--force", NULL};
  ASSERT_EQ(hrt_run(argv, log, 120000), 0);
  /* The server serves the new version, which knows the new users. */
  long long v1 = -1;
  HRT_POLL(ok, 10000, (j = hrt_get(&e, "/models", &st),
                       v1 = hrt_jint(j, "slots[0].version"), json_decref(j),
                       v1 > v0));
  ASSERT_MSG(ok, "new version not served (still %lld)", v1);
  j = hrt_get(&e, "/models", &st);
  ASSERT_EQ(hrt_jint(j, "slots[0].n_users"), 40);
  ASSERT_EQ(hrt_jint(j, "slots[0].n_items"), 30);
  json_decref(j);
  j = hrt_post(&e, "/recommend",
               json_pack("{s:s,s:i}", "user_id", "loop-u0", "k", 5), &st);
  ASSERT_EQ(st, 200);
  ASSERT_EQ(hrt_jint(j, "model.version"), v1);
  /* Recommendations for an even user are mostly even items, none seen. */
  hrt_strv_t ids = {0};
  ASSERT_EQ(hrt_item_ids(j, &ids), 0);
  ASSERT_EQ(ids.n, 5);
  int even = 0;
  for (size_t i = 0; i < ids.n; i++)
    even += atoi(ids.v[i] + strlen("loop-i")) % 2 == 0;
  ASSERT_MSG(even >= 4, "only %d of 5 items match the user's group: %s", even,
             hrt_jdump(j));
  hrt_strv_free(&ids);
  json_decref(j);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

/* The manifest of the version whose path fit printed last in `log` (a
 * path containing `marker`): 1 and its path in man, or 0. */
static int version_manifest(const char *log, const char *marker, char *man,
                            size_t cap) {
  char *text = hrt_slurp(log), *line = text;
  int found = 0;
  for (char *p = text; p && *p; p++) /* the last line: the version's path */
    if (*p == '\n') {
      *p = '\0';
      if (p[1] != '\0')
        line = p + 1;
    }
  if (line != NULL && strstr(line, marker) != NULL) {
    hrt_fmt(man, cap, "%s/manifest.json", line);
    found = 1;
  }
  free(text);
  return found;
}

/* 1 when argv exits with `status` and its output names `message`. */
static int exits_saying(const char *const argv[], const char *log,
                        int status, const char *message) {
  return hrt_run(argv, log, 60000) == status && hrt_file_has(log, message);
}

/* fit --min-rating: rows rated below the bar are left out and the manifest
 * says how many; the option needs a file's rating column. */
HR_TEST_T(fit_min_rating_leaves_out_low_rows, 60) {
  char csv[PATH_MAX], out[PATH_MAX], log[PATH_MAX], bin[PATH_MAX];
  char man[PATH_MAX];
  hrt_fmt(csv, sizeof(csv), "%s/mr.csv", hr_test_tmpdir());
  hrt_fmt(out, sizeof(out), "%s/mr-models/default", hr_test_tmpdir());
  hrt_fmt(log, sizeof(log), "%s/mr-fit.log", hr_test_tmpdir());
  FILE *f = fopen(csv, "w");
  ASSERT_NOT_NULL(f);
  fputs("user_id,item_id,rating,ts\n", f);
  for (int u = 0; u < 20; u++)
    for (int k = 0; k < 6; k++) /* ratings 1..6: 1-3 fall below 4 */
      fprintf(f, "u%d,i%d,%d,%d\n", u, (u + k) % 12, 1 + k, 1700000000 + k);
  ASSERT_EQ(fclose(f), 0);
  const char *argv[] = {hrt_bin_path("hyperrec-train", bin, sizeof(bin)),
                        "fit", "--data", csv, "--min-rating", "4", "--out",
                        out, "--iters", "2", NULL};
  ASSERT_EQ(hrt_run(argv, log, 60000), 0);
  ASSERT_MSG(version_manifest(log, "/mr-models/default/", man, sizeof(man)),
             "no version path in %s", log);
  json_t *m = json_load_file(man, 0, NULL);
  ASSERT_NOT_NULL(m);
  json_t *d = json_object_get(m, "data");
  ASSERT_EQ(json_integer_value(json_object_get(d, "rows")), 60);
  ASSERT_EQ(json_integer_value(json_object_get(d, "rows_below_min_rating")),
            60);
  ASSERT_MSG(json_real_value(json_object_get(d, "min_rating")) == 4.0, "%s",
             man);
  json_decref(m);
  const char *redis_argv[] = {bin, "fit", "--from-redis", "127.0.0.1:1",
                              "--min-rating", "4", "--out", out, NULL};
  ASSERT_EQ(hrt_run(redis_argv, log, 60000), 2);
  /* A bar that is not a binary fraction keeps a row rated exactly at it;
   * a bar above every rating names the rows it left out. */
  f = fopen(csv, "w");
  ASSERT_NOT_NULL(f);
  fputs("user_id,item_id,rating\nu1,i1,3.7\nu1,i2,3.6\nu2,i1,4\n", f);
  ASSERT_EQ(fclose(f), 0);
  const char *frac_argv[] = {bin, "fit", "--data", csv, "--min-rating", "3.7",
                             "--out", out, "--iters", "2", NULL};
  ASSERT_EQ(hrt_run(frac_argv, log, 60000), 0);
  ASSERT_MSG(hrt_file_has(log, "\"interactions\":2"),
             "--min-rating 3.7 did not keep the 3.7 row (%s)", log);
  const char *high_argv[] = {bin, "fit", "--data", csv, "--min-rating", "5",
                             "--out", out, NULL};
  ASSERT_MSG(exits_saying(high_argv, log, 1, "left out all 3 rated rows"),
             "no exit 1 naming the rows left out (%s)", log);
  return 0;
}

/* Runs fit (argv), which must succeed, and returns its version's
 * manifest (NULL when there is none); fails the test otherwise. */
static json_t *fit_manifest(const char *const argv[], const char *log,
                            const char *marker) {
  char man[PATH_MAX];
  if (hrt_run(argv, log, 60000) != 0 ||
      !version_manifest(log, marker, man, sizeof(man))) {
    hrt_print_tail("fit", log, 20);
    return NULL;
  }
  return json_load_file(man, 0, NULL);
}

/* fit reads several sources at once: two files (CSV and MovieLens) and the
 * server's stream. An event exported to a file and still in the stream
 * counts once; --since keeps a window. The manifest lists each source. */
HR_TEST_T(fit_combines_files_and_the_stream_with_a_window, 120) {
  HRT_ENV(e);
  char csv[PATH_MAX], ml[PATH_MAX], out[PATH_MAX], log[PATH_MAX];
  char bin[PATH_MAX], redis[64], since[32];
  long long now = (long long)time(NULL), old = 1700000000;
  json_t *batch, *j, *m, *d;
  int st;

  ASSERT_EQ(hrt_env_start(&e, NULL), 0);
  hrt_fmt(csv, sizeof(csv), "%s/ms-history.csv", hr_test_tmpdir());
  hrt_fmt(ml, sizeof(ml), "%s/ms-older.data", hr_test_tmpdir());
  hrt_fmt(out, sizeof(out), "%s/ms-models/default", hr_test_tmpdir());
  hrt_fmt(log, sizeof(log), "%s/ms-fit.log", hr_test_tmpdir());
  hrt_fmt(redis, sizeof(redis), "127.0.0.1:%d", e.redis.port);
  /* The CSV: 10 users x 4 old rows + 1 recent row each (50 rows). */
  FILE *f = fopen(csv, "w");
  ASSERT_NOT_NULL(f);
  fputs("user_id,item_id,rating,ts\n", f);
  for (int u = 0; u < 10; u++) {
    for (int k = 0; k < 4; k++)
      fprintf(f, "f%d,i%d,4,%lld\n", u, (u + k) % 20, old + k);
    fprintf(f, "f%d,i%d,5,%lld\n", u, (u + 7) % 20, now - 3600 - u);
  }
  ASSERT_EQ(fclose(f), 0);
  /* The MovieLens file: 5 other users, old rows only (15 rows). */
  f = fopen(ml, "w");
  ASSERT_NOT_NULL(f);
  for (int u = 0; u < 5; u++)
    for (int k = 0; k < 3; k++)
      fprintf(f, "m%d\ti%d\t3\t%lld\n", u, (u * 3 + k) % 20, old + 10 + k);
  ASSERT_EQ(fclose(f), 0);
  /* The stream: 6 new users x 3 recent events, and f0's recent row again
   * (the same user, item and time: an event the CSV export already has). */
  batch = json_array();
  for (int u = 0; u < 6; u++)
    for (int k = 0; k < 3; k++) {
      char uid[16], iid[16];
      snprintf(uid, sizeof(uid), "s%d", u);
      snprintf(iid, sizeof(iid), "i%d", (u + 2 * k) % 20);
      json_array_append_new(batch, json_pack("{ss ss ss sI}", "user_id", uid,
                                             "item_id", iid, "type", "click",
                                             "ts", (json_int_t)(now - 60)));
    }
  json_array_append_new(batch, json_pack("{ss ss ss sI}", "user_id", "f0",
                                         "item_id", "i7", "type", "click",
                                         "ts", (json_int_t)(now - 3600)));
  j = hrt_post(&e, "/event", json_pack("{so}", "events", batch), &st);
  ASSERT_MSG(st == 202, "%d %s", st, hrt_jdump(j));
  json_decref(j);

  const char *all[] = {hrt_bin_path("hyperrec-train", bin, sizeof(bin)),
                       "fit", "--data", csv, "--data", ml, "--from-redis",
                       redis, "--out", out, "--kind", "ials", "--factors", "4",
                       "--iters", "2", NULL};
  m = fit_manifest(all, log, "/ms-models/default/");
  ASSERT_NOT_NULL(m);
  d = json_object_get(m, "data");
  ASSERT_EQ(json_integer_value(json_object_get(d, "rows")), 50 + 15 + 18);
  ASSERT_EQ(json_integer_value(json_object_get(d, "users")), 10 + 5 + 6);
  ASSERT_EQ(json_array_size(json_object_get(d, "sources")), 3);
  ASSERT_EQ(hrt_jint(d, "sources[0].rows"), 50);
  ASSERT_EQ(hrt_jint(d, "sources[1].rows"), 15);
  ASSERT_STR_EQ(hrt_jstr(d, "sources[1].format"), "movielens");
  ASSERT_EQ(hrt_jint(d, "sources[2].rows"), 18);
  ASSERT_EQ(hrt_jint(d, "sources[2].duplicates"), 1);
  ASSERT_STR_EQ(hrt_jstr(d, "sources[2].format"), "redis-stream");
  json_decref(m);

  /* The last day only: the 10 recent CSV rows and the stream's 18. */
  const char *window[] = {bin, "fit", "--data", csv, "--data", ml,
                          "--from-redis", redis, "--since", "1d", "--out",
                          out, "--kind", "ials", "--factors", "4", "--iters",
                          "2", NULL};
  m = fit_manifest(window, log, "/ms-models/default/");
  ASSERT_NOT_NULL(m);
  d = json_object_get(m, "data");
  ASSERT_EQ(json_integer_value(json_object_get(d, "rows")), 10 + 18);
  ASSERT_EQ(json_integer_value(json_object_get(d, "rows_before_since")), 55);
  ASSERT_EQ(json_integer_value(json_object_get(d, "users")), 10 + 6);
  ASSERT_MSG(json_integer_value(json_object_get(d, "since")) >= now - 86400,
             "%s", hrt_jdump(d));
  json_decref(m);

  /* A window that leaves nothing, a window that is no time, no source. */
  hrt_fmt(since, sizeof(since), "%lld", now + 3600);
  const char *empty[] = {bin, "fit", "--data", ml, "--since", since, "--out",
                         out, NULL};
  ASSERT_MSG(exits_saying(empty, log, 1, "left out all 15 dated rows"),
             "no exit 1 naming the rows left out (%s)", log);
  const char *bad[] = {bin, "fit", "--data", ml, "--since", "yesterday",
                       "--out", out, NULL};
  ASSERT_MSG(exits_saying(bad, log, 2, "--since: \"yesterday\""),
             "no usage error naming --since (%s)", log);
  const char *none[] = {bin, "fit", "--out", out, NULL};
  ASSERT_EQ(hrt_run(none, log, 60000), 2);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}
