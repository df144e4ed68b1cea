/* 96_ctx_judge.c -- `hyperrec-train eval --data ... --protocol ctx80|ctx80-rc`
 * reproduces the reference judge (../shared/eval/evaluate_ctx.py): the same
 * cases and dropped rows, and the same HR@10, NDCG@10 and standard errors to
 * the 6 printed decimals, on the three context data sets, both protocols and
 * both targets (MostPopular, the protocol's baseline; and once each with
 * the context two-tower, the served sequential model and the rating
 * neighbourhood). */
#include "lib/env.h"

#include <stdlib.h>

/* Runs eval on set and the judge on its file; extra (NULL or a
 * NULL-terminated list of up to 6 arguments) goes to eval. */
static int agree_with(const char *set, const char *protocol,
                      const char *target, const char *model,
                      const char *const *extra, const char *tag) {
  char rel[64], data[PATH_MAX], judge_py[PATH_MAX], bin[PATH_MAX];
  char recs[PATH_MAX], ours_log[PATH_MAX], judge_log[PATH_MAX];
  static const char *const keys[] = {"NDCG@10", "NDCG@10_se", "HR@10",
                                     "HR@10_se", "cases", "dropped_cases",
                                     "fit_rows"};
  json_t *ours, *ref;

  hrt_fmt(rel, sizeof(rel), "%s/ratings.csv", set);
  HR_NEED_DATA(rel, data);
  hrt_fmt(judge_py, sizeof(judge_py), "%s/../eval/evaluate_ctx.py",
          hr_test_shared_data());
  hrt_fmt(recs, sizeof(recs), "%s/%s-%s-%s-%s%s.tsv", hr_test_tmpdir(), set,
          protocol, target, model, tag);
  hrt_fmt(ours_log, sizeof(ours_log), "%s.ours", recs);
  hrt_fmt(judge_log, sizeof(judge_log), "%s.judge", recs);
  const char *eval_argv[20] = {
      hrt_bin_path("hyperrec-train", bin, sizeof(bin)), "eval", "--data", data,
      "--protocol", protocol, "--target", target, "--model", model,
      "--topk-out", recs};
  for (size_t k = 0; extra != NULL && extra[k] != NULL && k < 6; k++)
    eval_argv[12 + k] = extra[k];
  ASSERT_EQ(hrt_run(eval_argv, ours_log, 60000), 0);
  const char *judge_argv[] = {"python3", judge_py, data, recs, "--threshold",
                              "4", "--protocol", protocol, "--target",
                              target, NULL};
  ASSERT_EQ(hrt_run(judge_argv, judge_log, 60000), 0);
  ours = hrt_last_json(ours_log, "NDCG@10");
  ref = hrt_last_json(judge_log, "NDCG@10");
  ASSERT_NOT_NULL(ours);
  ASSERT_NOT_NULL(ref);
  for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
    double a = json_number_value(json_object_get(ours, keys[i]));
    double b = json_number_value(json_object_get(ref, keys[i]));
    ASSERT_MSG(a == b, "%s %s %s %s: ours %.6f, judge %.6f", set, protocol,
               target, keys[i], a, b);
  }
  ASSERT_EQ(json_integer_value(json_object_get(ref, "missing_cases")), 0);
  ASSERT_EQ(json_integer_value(json_object_get(ref, "short_lists")), 0);
  json_decref(ours);
  json_decref(ref);
  return 0;
}

static int agree(const char *set, const char *protocol, const char *target,
                 const char *model) {
  return agree_with(set, protocol, target, model, NULL, "");
}

HR_TEST_T(eval_ctx_agrees_with_reference_judge, 300) {
  static const char *const sets[] = {"ldos-comoda", "depaulmovie",
                                     "incarmusic"};
  static const char *const protos[] = {"ctx80", "ctx80-rc"};
  static const char *const targets[] = {"test", "valid"};
  for (size_t s = 0; s < 3; s++)
    for (size_t p = 0; p < 2; p++)
      for (size_t t = 0; t < 2; t++) {
        int rc = agree(sets[s], protos[p], targets[t], "pop");
        if (rc != 0)
          return rc;
      }
  /* The context two-tower's files and metrics too, and the served
   * sequential model's (their quality is measured in docs/training.md, not
   * here). */
  int rc = agree("ldos-comoda", "ctx80", "test", "tt");
  if (rc == 0)
    rc = agree("depaulmovie", "ctx80-rc", "valid", "seq");
  return rc != 0 ? rc : agree("incarmusic", "ctx80-rc", "valid", "nbr");
}

/* NDCG@10 of `eval --model nbr` on path (ctx80-rc, target test), with
 * extra arguments, or -1. */
static double nbr_ndcg(const char *path, const char *extra, const char *tag) {
  char bin[PATH_MAX], log[PATH_MAX];
  double v = -1;
  hrt_fmt(log, sizeof(log), "%s/nbr-%s.log", hr_test_tmpdir(), tag);
  const char *argv[] = {hrt_bin_path("hyperrec-train", bin, sizeof(bin)),
                        "eval", "--data", path, "--protocol", "ctx80-rc",
                        "--target", "test", "--model", "nbr", extra, NULL};
  if (hrt_run(argv, log, 60000) != 0)
    return -1;
  json_t *j = hrt_last_json(log, "NDCG@10");
  if (j != NULL)
    v = json_number_value(json_object_get(j, "NDCG@10"));
  json_decref(j);
  return v;
}

/* The rating neighbourhood's item x situation biases reorder a user's own
 * items: in a generated file where items 1-2 are rated 5 at home and 1 at
 * the cinema, items 3-4 the reverse (and 3 with no situation), the user's
 * mean over other situations points the wrong way and only the biases,
 * learnt from the other users, put the case's item first. */
HR_TEST_T(nbr_item_situation_biases_reorder_a_users_items, 60) {
  char path[PATH_MAX];
  hrt_fmt(path, sizeof(path), "%s/nbr-ctx.csv", hr_test_tmpdir());
  FILE *f = fopen(path, "w");
  ASSERT_NOT_NULL(f);
  fputs("user_id,item_id,rating,location\n", f);
  for (int u = 1; u <= 40; u++)
    for (int i = 1; i <= 4; i++) {
      int home = i <= 2 ? 5 : 1;
      fprintf(f, "%d,%d,3,\n%d,%d,%d,home\n%d,%d,%d,cinema\n", u, i, u, i,
              home, u, i, 6 - home);
    }
  ASSERT_EQ(fclose(f), 0);
  double with = nbr_ndcg(path, "--nbr-weight=1", "with");
  double without = nbr_ndcg(path, "--no-context", "without");
  ASSERT_MSG(with >= 0 && without >= 0, "eval failed: %f %f", with, without);
  ASSERT_MSG(with > without + 0.1, "with context %.4f, without %.4f", with,
             without);
  ASSERT_MSG(with > 0.9, "with context %.4f", with);
  return 0;
}

/* Under ctx80 every item a user rated is excluded, so nbr ranks by
 * popularity alone and must write MostPopular's lists, also on a count
 * file whose large ratings would swamp a popularity term added to them. */
HR_TEST_T(nbr_keeps_the_popularity_order_on_large_counts, 60) {
  char path[PATH_MAX], bin[PATH_MAX], out[2][PATH_MAX], log[PATH_MAX];
  static const char *const models[] = {"pop", "nbr"};
  unsigned long long x = 7;
  hrt_fmt(path, sizeof(path), "%s/nbr-counts.csv", hr_test_tmpdir());
  FILE *f = fopen(path, "w");
  ASSERT_NOT_NULL(f);
  fputs("user_id,item_id,rating,mood\n", f);
  for (int u = 1; u <= 60; u++)
    for (int k = 0; k < 12; k++) { /* popularity unrelated to the id */
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      int item = 1 + (int)((x >> 33) % 40) % (1 + (int)((x >> 20) % 40));
      fprintf(f, "%d,%d,%d,%s\n", u, item, 2000000 + (int)((x >> 40) % 6000000),
              k % 2 ? "happy" : "");
    }
  ASSERT_EQ(fclose(f), 0);
  for (int m = 0; m < 2; m++) {
    hrt_fmt(out[m], sizeof(out[m]), "%s/nbr-counts-%s.tsv", hr_test_tmpdir(),
            models[m]);
    hrt_fmt(log, sizeof(log), "%s.log", out[m]);
    const char *argv[] = {hrt_bin_path("hyperrec-train", bin, sizeof(bin)),
                          "eval", "--data", path, "--protocol", "ctx80",
                          "--target", "test", "--model", models[m],
                          "--topk-out", out[m], NULL};
    ASSERT_EQ(hrt_run(argv, log, 60000), 0);
  }
  char *a = hrt_slurp(out[0]), *b = hrt_slurp(out[1]);
  int same = a != NULL && b != NULL && strchr(a, '\t') != NULL &&
             strcmp(a, b) == 0;
  free(a);
  free(b);
  ASSERT_MSG(same, "nbr's lists differ from MostPopular's (%s, %s)", out[0],
             out[1]);
  return 0;
}

/* `--model seq --items PATH`: the item tower over a side file, here
 * ldos-comoda's RFC 4180 items.csv as shipped. The run must change the
 * lists (the attributes reach the model) and still agree with the judge;
 * --items with another model is refused. */
HR_TEST_T(eval_ctx_seq_reads_an_items_file, 120) {
  char items[PATH_MAX], ratings[PATH_MAX], a[PATH_MAX], b[PATH_MAX];
  char bin[PATH_MAX], log[PATH_MAX];
  HR_NEED_DATA("ldos-comoda/items.csv", items);
  HR_NEED_DATA("ldos-comoda/ratings.csv", ratings);
  const char *const with[] = {"--items", items, "--epochs", "2", NULL};
  const char *const without[] = {"--epochs", "2", NULL};
  int rc = agree_with("ldos-comoda", "ctx80", "valid", "seq", with, "-items");
  if (rc == 0)
    rc = agree_with("ldos-comoda", "ctx80", "valid", "seq", without, "-2");
  if (rc != 0)
    return rc;
  hrt_fmt(a, sizeof(a), "%s/ldos-comoda-ctx80-valid-seq-items.tsv",
          hr_test_tmpdir());
  hrt_fmt(b, sizeof(b), "%s/ldos-comoda-ctx80-valid-seq-2.tsv",
          hr_test_tmpdir());
  char *x = hrt_slurp(a), *y = hrt_slurp(b);
  int differ = x != NULL && y != NULL && strcmp(x, y) != 0;
  free(x);
  free(y);
  ASSERT_MSG(differ, "--items changed no list (%s, %s)", a, b);
  hrt_fmt(log, sizeof(log), "%s/items-pop.log", hr_test_tmpdir());
  const char *argv[] = {hrt_bin_path("hyperrec-train", bin, sizeof(bin)),
                        "eval", "--data", ratings, "--protocol", "ctx80",
                        "--target", "valid", "--model", "pop", "--items",
                        items, NULL};
  ASSERT_EQ(hrt_run(argv, log, 60000), 2);
  char *msg = hrt_slurp(log);
  int named = msg != NULL && strstr(msg, "--items goes with --model seq");
  free(msg);
  ASSERT_MSG(named, "no usage error naming --items (%s)", log);
  /* A side file that names none of the ratings' items is refused, not
   * silently a run without the tower. */
  char other[PATH_MAX];
  hrt_fmt(other, sizeof(other), "%s/other-items.csv", hr_test_tmpdir());
  FILE *f = fopen(other, "w");
  ASSERT_NOT_NULL(f);
  fputs("item_id,genre\nnot-an-item,drama\n", f);
  ASSERT_EQ(fclose(f), 0);
  const char *none_argv[] = {bin, "eval", "--data", ratings, "--protocol",
                             "ctx80", "--target", "valid", "--model", "seq",
                             "--items", other, NULL};
  ASSERT_EQ(hrt_run(none_argv, log, 60000), 1);
  msg = hrt_slurp(log);
  named = msg != NULL && strstr(msg, "no item of the ratings has an "
                                     "attribute value there");
  free(msg);
  ASSERT_MSG(named, "no error naming the unmatched items file (%s)", log);
  /* The eval modes that have no use for it refuse it too. */
  const char *last_argv[] = {bin, "eval", "--data", ratings, "--protocol",
                             "last", "--kind", "seq", "--target", "valid",
                             "--items", items, NULL};
  ASSERT_EQ(hrt_run(last_argv, log, 60000), 2);
  const char *cold_argv[] = {bin, "eval", "--data", ratings, "--cold-users",
                             "0.2", "--items", items, NULL};
  ASSERT_EQ(hrt_run(cold_argv, log, 60000), 2);
  return 0;
}

/* eval --data with no model named: fit's candidates scored on the
 * protocol's valid cases, the winner by the one-standard-error rule
 * (recomputed here from the listing), its own figures on the target. */
HR_TEST_T(eval_ctx_without_a_model_chooses_by_the_rule, 180) {
  char ratings[PATH_MAX], bin[PATH_MAX], log[PATH_MAX];
  HR_NEED_DATA("depaulmovie/ratings.csv", ratings);
  hrt_fmt(log, sizeof(log), "%s/ctx-select.log", hr_test_tmpdir());
  const char *argv[] = {hrt_bin_path("hyperrec-train", bin, sizeof(bin)),
                        "eval", "--data", ratings, "--protocol", "ctx80-rc",
                        "--target", "test", "--seed", "1", NULL};
  ASSERT_EQ(hrt_run(argv, log, 150000), 0);
  json_t *j = hrt_last_json(log, "NDCG@10");
  ASSERT_NOT_NULL(j);
  json_t *sel = json_object_get(j, "selection");
  /* popularity, ials, seq, seq+context, cnn, gru: in the cost order */
  ASSERT_EQ(json_array_size(sel), 6);
  const char *want = hrt_one_se_winner(sel, "valid_NDCG@10",
                                       "valid_NDCG@10_se");
  double won_test = -1;
  for (size_t k = 0; k < 6; k++) {
    json_t *c = json_array_get(sel, k);
    if (want != NULL &&
        strcmp(json_string_value(json_object_get(c, "name")), want) == 0)
      won_test = json_number_value(json_object_get(c, "target_NDCG@10"));
  }
  ASSERT_STR_EQ(hrt_jstr(j, "winner"), want);
  ASSERT_DBL_NEAR(json_number_value(json_object_get(j, "NDCG@10")), won_test,
                  1e-6);
  fprintf(stderr, "  depaulmovie: %s, test NDCG@10 %.4f\n", want, won_test);
  json_decref(j);
  return 0;
}
