/* 95_eval_judge.c -- `hyperrec-train eval` agrees with the reference judge
 * (../shared/eval/evaluate.py) to the 6 printed decimals, on valid and test,
 * and reaches the acceptance floor on test. */
#include "lib/env.h"

#include <stdlib.h>

static int judge(const char *target, double *ndcg) {
  char split[PATH_MAX], judge_py[PATH_MAX], bin[PATH_MAX], topk[PATH_MAX];
  char ours_log[PATH_MAX], judge_log[PATH_MAX];
  static const char *const keys[] = {"HR@10", "NDCG@10", "MRR@10",
                                     "coverage@10"};
  json_t *ours, *ref;

  HR_NEED_DATA("ml-100k/splits/loo", split);
  hrt_fmt(judge_py, sizeof(judge_py), "%s/../eval/evaluate.py",
          hr_test_shared_data());
  hrt_fmt(topk, sizeof(topk), "%s/top-%s.tsv", hr_test_tmpdir(), target);
  hrt_fmt(ours_log, sizeof(ours_log), "%s/ours-%s.log", hr_test_tmpdir(), target);
  hrt_fmt(judge_log, sizeof(judge_log), "%s/judge-%s.log", hr_test_tmpdir(),
          target);
  const char *eval_argv[] = {hrt_bin_path("hyperrec-train", bin, sizeof(bin)),
                             "eval", "--split", split, "--target", target,
                             "--kind", "ials", "--topk-out", topk, NULL};
  ASSERT_EQ(hrt_run(eval_argv, ours_log, 120000), 0);
  const char *judge_argv[] = {"python3", judge_py, split, topk, "--target",
                              target, NULL};
  ASSERT_EQ(hrt_run(judge_argv, judge_log, 120000), 0);
  ours = hrt_last_json(ours_log, "HR@10");
  ref = hrt_last_json(judge_log, "HR@10");
  ASSERT_NOT_NULL(ours);
  ASSERT_NOT_NULL(ref);
  for (size_t i = 0; i < 4; i++) {
    double a = json_number_value(json_object_get(ours, keys[i]));
    double b = json_number_value(json_object_get(ref, keys[i]));
    ASSERT_MSG(a == b, "%s %s: ours %.6f, judge %.6f", target, keys[i], a, b);
  }
  ASSERT_EQ(json_integer_value(json_object_get(ref, "missing_users")), 0);
  ASSERT_EQ(json_integer_value(json_object_get(ref, "dropped_items")), 0);
  ASSERT_EQ(json_integer_value(json_object_get(ref, "short_lists")), 0);
  *ndcg = json_number_value(json_object_get(ref, "NDCG@10"));
  fprintf(stderr, "  %s: judge %s\n", target, hrt_jdump(ref));
  json_decref(ours);
  json_decref(ref);
  return 0;
}

HR_TEST_T(eval_loo_agrees_with_reference_judge, 300) {
  double valid = 0, test = 0;
  int rc;
  if ((rc = judge("valid", &valid)) != 0)
    return rc;
  if ((rc = judge("test", &test)) != 0)
    return rc;
  ASSERT_MSG(test >= 0.045, "test NDCG@10 %.6f below the 0.045 floor", test);
  return 0;
}
