/* 82_fit_choice.c -- `fit` with no model named chooses: every candidate is
 * scored on its own holdout, the winner follows the rule (the best NDCG@10,
 * or the cheapest within one standard error), the version is of the
 * winner's kind and carries report.json; --budget leaves out what would
 * overrun it; --kind still forces one model. */
#include "lib/env.h"

#include <stdlib.h>
#include <sys/stat.h>

/* How many times s occurs in the file at path. */
static int count_in_file(const char *path, const char *s) {
  char *text = hrt_slurp(path);
  int n = 0;
  for (const char *p = text; p && (p = strstr(p, s)) != NULL; p++)
    n++;
  free(text);
  return n;
}

/* gen's data with strong context effects, made once per run. */
static int make_data(char *dir, size_t cap) {
  char bin[PATH_MAX], log[PATH_MAX], ev[PATH_MAX];
  struct stat st;
  hrt_fmt(dir, cap, "%s/choice-data", hr_test_tmpdir());
  hrt_fmt(ev, sizeof(ev), "%s/events.csv", dir);
  if (stat(ev, &st) == 0)
    return 0;
  hrt_fmt(log, sizeof(log), "%s/gen.log", hr_test_tmpdir());
  const char *argv[] = {hrt_bin_path("hyperrec-train", bin, sizeof(bin)),
                        "gen", "--out", dir, "--users", "300", "--items",
                        "80", "--events", "9000", "--seed", "11",
                        "--context-effect", "2.5", NULL};
  return hrt_run(argv, log, 60000);
}

/* fit with the data plus `extra` into slot; the version's directory into
 * vdir (the last stdout line). Returns fit's exit status, -1 on trouble. */
static int fit(const char *data, const char *slot, const char *const *extra,
               const char *log, char *vdir, size_t cap) {
  char bin[PATH_MAX], ev[PATH_MAX], items[PATH_MAX], users[PATH_MAX];
  const char *argv[32] = {hrt_bin_path("hyperrec-train", bin, sizeof(bin)),
                          "fit", "--data", ev, "--items", items, "--users",
                          users, "--out", slot, NULL};
  int n = 10, st;
  hrt_fmt(ev, sizeof(ev), "%s/events.csv", data);
  hrt_fmt(items, sizeof(items), "%s/items.csv", data);
  hrt_fmt(users, sizeof(users), "%s/users.csv", data);
  for (; extra && *extra && n < 31; extra++)
    argv[n++] = *extra;
  argv[n] = NULL;
  st = hrt_run(argv, log, 240000);
  vdir[0] = '\0';
  char *text = hrt_slurp(log), *p, *line = NULL;
  for (p = text ? strtok(text, "\n") : NULL; p; p = strtok(NULL, "\n"))
    if (p[0] == '/')
      line = p;
  if (line != NULL)
    hrt_fmt(vdir, cap, "%s", line);
  free(text);
  return st;
}

static json_t *load_json(const char *dir, const char *name) {
  char path[PATH_MAX];
  hrt_fmt(path, sizeof(path), "%s/%s", dir, name);
  return json_load_file(path, 0, NULL);
}

HR_TEST_T(fit_chooses_by_the_one_se_rule_and_reports_why, 300) {
  char data[PATH_MAX], slot[PATH_MAX], log[PATH_MAX], vdir[PATH_MAX];
  static const char *const names[] = {"popularity", "popularity+context",
                                      "ials", "ease", "dae", "seq",
                                      "seq+context", "cnn", "gru"};
  static const char *const extra[] = {"--budget", "4m", "--seed", "3", NULL};

  ASSERT_EQ(make_data(data, sizeof(data)), 0);
  hrt_fmt(slot, sizeof(slot), "%s/choice/default", hr_test_tmpdir());
  hrt_fmt(log, sizeof(log), "%s/fit-choice.log", hr_test_tmpdir());
  ASSERT_EQ(fit(data, slot, extra, log, vdir, sizeof(vdir)), 0);
  ASSERT_MSG(vdir[0] == '/', "no version path in %s", log);
  json_t *rep = load_json(vdir, "report.json");
  json_t *man = load_json(vdir, "manifest.json");
  ASSERT_NOT_NULL(rep);
  ASSERT_NOT_NULL(man);
  json_t *cands = json_object_get(rep, "candidates");
  ASSERT_EQ(json_array_size(cands), 9);
  /* every candidate scored, and the rule recomputed from the report */
  for (size_t k = 0; k < 9; k++) {
    json_t *c = json_array_get(cands, k);
    ASSERT_STR_EQ(json_string_value(json_object_get(c, "name")), names[k]);
    ASSERT_MSG(strcmp(json_string_value(json_object_get(c, "state")),
                      "scored") == 0, "%s", hrt_jdump(c));
    double x = json_number_value(json_object_get(c, "NDCG@10"));
    ASSERT(x > 0 && x < 1);
    ASSERT(json_number_value(json_object_get(c, "NDCG@10_se")) > 0);
  }
  /* the same sequential model with its three encoders */
  ASSERT_STR_EQ(hrt_jstr(json_array_get(cands, 5), "shape.encoder"),
                "transformer");
  ASSERT_STR_EQ(hrt_jstr(json_array_get(cands, 7), "shape.encoder"), "cnn");
  ASSERT_STR_EQ(hrt_jstr(json_array_get(cands, 8), "shape.encoder"), "gru");
  const char *want = hrt_one_se_winner(cands, "NDCG@10", "NDCG@10_se");
  const char *winner = json_string_value(json_object_get(rep, "winner"));
  ASSERT_NOT_NULL(winner);
  ASSERT_STR_EQ(winner, want);
  ASSERT_NOT_NULL(json_string_value(json_object_get(rep, "reason")));
  ASSERT_STR_EQ(hrt_jstr(rep, "validation.holdout"), "last-item");
  /* the version is the winner's kind, refitted on all the data */
  const char *kind = json_string_value(json_object_get(man, "kind"));
  ASSERT_STR_EQ(kind, strncmp(winner, "popularity", 10) == 0 ? "pop"
                      : strcmp(winner, "ials") == 0          ? "ials"
                      : strcmp(winner, "ease") == 0          ? "ease"
                      : strcmp(winner, "dae") == 0           ? "dae"
                                                             : "seq");
  ASSERT_NOT_NULL(json_object_get(json_object_get(man, "files"),
                                  "report.json"));
  ASSERT_EQ(hrt_jint(man, "data.rows"), 9000);
  /* the data's planted context effects: the context candidates beat their
   * plain twins by more than a standard error */
  for (size_t k = 0; k < 6; k += 5) {
    json_t *a = json_array_get(cands, k), *b = json_array_get(cands, k + 1);
    double xa = json_number_value(json_object_get(a, "NDCG@10"));
    double xb = json_number_value(json_object_get(b, "NDCG@10"));
    double se = json_number_value(json_object_get(b, "NDCG@10_se"));
    ASSERT_MSG(xb > xa + se, "%s %.4f vs %s %.4f (SE %.4f)", names[k + 1], xb,
               names[k], xa, se);
  }
  ASSERT_GE(count_in_file(log, "\"model_chosen\""), 1);
  json_decref(rep);
  json_decref(man);
  return 0;
}

HR_TEST_T(fit_budget_leaves_out_what_would_overrun, 120) {
  char data[PATH_MAX], slot[PATH_MAX], log[PATH_MAX], vdir[PATH_MAX];
  static const char *const tight[] = {"--budget", "2s", NULL};
  static const char *const ials[] = {"--kind", "ials", "--quiet", NULL};
  static const char *const bad[] = {"--budget", "0", NULL};

  ASSERT_EQ(make_data(data, sizeof(data)), 0);
  hrt_fmt(slot, sizeof(slot), "%s/budget/default", hr_test_tmpdir());
  hrt_fmt(log, sizeof(log), "%s/fit-budget.log", hr_test_tmpdir());
  ASSERT_EQ(fit(data, slot, tight, log, vdir, sizeof(vdir)), 0);
  json_t *rep = load_json(vdir, "report.json");
  ASSERT_NOT_NULL(rep);
  json_t *cands = json_object_get(rep, "candidates");
  for (size_t k = 5; k < 7; k++) {
    json_t *c = json_array_get(cands, k);
    ASSERT_MSG(strcmp(json_string_value(json_object_get(c, "state")),
                      "over_budget") == 0 &&
                   json_object_get(c, "note") != NULL,
               "%s", hrt_jdump(c));
  }
  const char *winner = json_string_value(json_object_get(rep, "winner"));
  ASSERT_MSG(winner && strncmp(winner, "seq", 3) != 0, "%s", hrt_jdump(rep));
  json_decref(rep);
  /* --kind forces one model: no holdout, no report */
  ASSERT_EQ(fit(data, slot, ials, log, vdir, sizeof(vdir)), 0);
  json_t *man = load_json(vdir, "manifest.json");
  ASSERT_STR_EQ(hrt_jstr(man, "kind"), "ials");
  ASSERT(json_object_get(json_object_get(man, "files"), "report.json") ==
         NULL);
  json_decref(man);
  ASSERT_EQ(fit(data, slot, bad, log, vdir, sizeof(vdir)), 2);
  ASSERT_GE(count_in_file(log, "not a duration"), 1);
  return 0;
}

/* Nothing to validate on: a clear error, not a model. */
HR_TEST(fit_without_a_holdout_says_so) {
  char csv[PATH_MAX], slot[PATH_MAX], log[PATH_MAX], bin[PATH_MAX];
  hrt_fmt(csv, sizeof(csv), "%s/two.csv", hr_test_tmpdir());
  hrt_fmt(slot, sizeof(slot), "%s/two/default", hr_test_tmpdir());
  hrt_fmt(log, sizeof(log), "%s/fit-two.log", hr_test_tmpdir());
  FILE *f = fopen(csv, "w");
  ASSERT_NOT_NULL(f);
  fputs("user_id,item_id\nu1,i1\nu1,i2\nu2,i1\n", f);
  ASSERT_EQ(fclose(f), 0);
  const char *argv[] = {hrt_bin_path("hyperrec-train", bin, sizeof(bin)),
                        "fit", "--data", csv, "--out", slot, NULL};
  ASSERT_EQ(hrt_run(argv, log, 60000), 1);
  ASSERT_GE(count_in_file(log, "no user has 3 or more distinct items"),
            1);
  return 0;
}

/* gen --bots: three kinds of bot accounts named in bots.csv; the anomaly
 * scores separate each kind from the people (ROC AUC, eval
 * --anomaly-truth), fit --report-anomalies lists them in report.json and
 * --drop-anomalous trains without them. */
HR_TEST_T(anomaly_scores_find_each_kind_of_bot, 180) {
  char bin[PATH_MAX], dir[PATH_MAX], log[PATH_MAX], ev[PATH_MAX], bots[PATH_MAX];
  char slot[PATH_MAX], vdir[PATH_MAX];
  hrt_fmt(dir, sizeof(dir), "%s/bots-data", hr_test_tmpdir());
  hrt_fmt(log, sizeof(log), "%s/bots.log", hr_test_tmpdir());
  hrt_fmt(ev, sizeof(ev), "%s/events.csv", dir);
  hrt_fmt(bots, sizeof(bots), "%s/bots.csv", dir);
  const char *gen[] = {hrt_bin_path("hyperrec-train", bin, sizeof(bin)),
                       "gen", "--out", dir, "--seed", "21", "--bots", "0.05",
                       NULL}; /* 2000 users, 500 items, 60000 events */
  ASSERT_EQ(hrt_run(gen, log, 60000), 0);
  ASSERT_EQ(count_in_file(bots, ",random\n"), 34);
  ASSERT_EQ(count_in_file(bots, ",hammer\n"), 33);
  ASSERT_EQ(count_in_file(bots, ",script\n"), 33);
  const char *eval[] = {bin, "eval", "--data", ev, "--anomaly-truth", bots,
                        NULL};
  ASSERT_EQ(hrt_run(eval, log, 60000), 0);
  char *text = hrt_slurp(log);
  char *line = text ? strstr(text, "{\"protocol\":\"anomalies\"") : NULL;
  json_t *j = line ? json_loads(line, 0, NULL) : NULL;
  free(text);
  ASSERT_NOT_NULL(j);
  static const char *const kinds[] = {"random", "hammer", "script"};
  for (int k = 0; k < 3; k++) {
    double auc = json_number_value(json_object_get(
        json_object_get(j, "ROC_AUC"), kinds[k]));
    fprintf(stderr, "  %s bots: ROC AUC %.4f\n", kinds[k], auc);
    ASSERT_MSG(auc >= 0.95, "%s bots: ROC AUC %.4f", kinds[k], auc);
  }
  json_decref(j);
  /* the report lists them; --drop-anomalous leaves their rows out */
  hrt_fmt(slot, sizeof(slot), "%s/bots-model/default", hr_test_tmpdir());
  static const char *const extra[] = {"--kind", "ials", "--quiet",
                                      "--report-anomalies", "80",
                                      "--drop-anomalous", "0.05", NULL};
  const char *data = dir;
  ASSERT_EQ(fit(data, slot, extra, log, vdir, sizeof(vdir)), 0);
  json_t *rep = load_json(vdir, "report.json");
  json_t *man = load_json(vdir, "manifest.json");
  ASSERT_NOT_NULL(rep);
  json_t *top = json_object_get(json_object_get(rep, "anomalies"),
                                "most_anomalous");
  ASSERT_EQ(json_array_size(top), 80);
  char *truth = hrt_slurp(bots);
  int hits = 0;
  for (size_t k = 0; k < json_array_size(top); k++) {
    char id[64];
    hrt_fmt(id, sizeof(id), "%s,", json_string_value(json_object_get(
                                        json_array_get(top, k), "user_id")));
    hits += truth != NULL && strstr(truth, id) != NULL;
  }
  free(truth);
  fprintf(stderr, "  bots among the 80 most anomalous: %d\n", hits);
  ASSERT_GE(hits, 60); /* 66 measured; deterministic for the seeds */
  ASSERT_EQ(hrt_jint(rep, "anomalies.dropped_users"), 105); /* 5 % of 2100 */
  /* the rows of the dropped accounts are gone: most bot events */
  ASSERT(hrt_jint(man, "data.rows") < 60000 + 34 * 40 + 33 * 60 + 33 * 25 -
                                          2000);
  json_decref(rep);
  json_decref(man);
  return 0;
}
