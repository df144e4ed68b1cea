/* 97_lab.c -- the research evaluations of src/lab/ that no other test
 * runs, end to end through `hyperrec-train eval` on MovieLens's loo split
 * with a small sequential model: the cold-item study (--cold-items) and
 * the neural ranker (--rerank). Their figures are checked for what they
 * must be, not for a quality level (the model is trained for seconds). */
#include "lib/env.h"

#include <stdlib.h>

static double num(json_t *j, const char *key) {
  return json_number_value(json_object_get(j, key));
}

/* Hide a tenth of the items from training: ranked among themselves by
 * their attributes alone, for users who met them. The item tower learns
 * from the genres, so it beats a random order. */
HR_TEST_T(lab_cold_items_rank_hidden_items_by_attributes, 300) {
  char split[PATH_MAX], items[PATH_MAX], bin[PATH_MAX], log[PATH_MAX];
  HR_NEED_DATA("ml-100k/splits/loo", split);
  HR_NEED_DATA("ml-100k/u.item", items);
  hrt_fmt(log, sizeof(log), "%s/lab-cold.log", hr_test_tmpdir());
  const char *argv[] = {hrt_bin_path("hyperrec-train", bin, sizeof(bin)),
                        "eval", "--split", split, "--target", "test",
                        "--kind", "seq", "--items", items, "--cold-items",
                        "0.1", "--dim", "16", "--len", "50", "--ffn", "16",
                        "--epochs", "4", "--long-term", "0", "--quiet",
                        NULL};
  ASSERT_EQ(hrt_run(argv, log, 240000), 0);
  json_t *r = hrt_last_json(log, "hidden_items");
  ASSERT_NOT_NULL(r);
  ASSERT_STR_EQ(json_string_value(json_object_get(r, "protocol")),
                "cold-items");
  /* a tenth of the 1,682 items (those seen: all of them) */
  ASSERT(num(r, "hidden_items") >= 160 && num(r, "hidden_items") <= 170);
  ASSERT(num(r, "users") > 500);
  double nd = num(r, "NDCG@10"), rnd = num(r, "random_NDCG@10");
  ASSERT(rnd > 0 && rnd < 1 && nd <= 1);
  ASSERT_MSG(nd > rnd, "NDCG@10 %.4f not above random %.4f", nd, rnd);
  ASSERT(num(r, "HR@10") >= num(r, "NDCG@10"));
  json_decref(r);
  return 0;
}

/* The ranker over the retrieval's top 20: both lists scored, the ranker
 * reorders the same 20 items, so its HR@10 cannot exceed the retrieval's
 * HR@20 and both are real figures. */
HR_TEST_T(lab_rerank_scores_both_lists, 300) {
  char split[PATH_MAX], bin[PATH_MAX], log[PATH_MAX], topk[PATH_MAX];
  HR_NEED_DATA("ml-100k/splits/loo", split);
  hrt_fmt(log, sizeof(log), "%s/lab-rerank.log", hr_test_tmpdir());
  hrt_fmt(topk, sizeof(topk), "%s/lab-rerank.tsv", hr_test_tmpdir());
  const char *argv[] = {hrt_bin_path("hyperrec-train", bin, sizeof(bin)),
                        "eval", "--split", split, "--target", "valid",
                        "--kind", "seq", "--rerank", "20", "--dim", "16",
                        "--len", "50", "--ffn", "16", "--epochs", "4",
                        "--topk-out", topk, "--quiet", NULL};
  ASSERT_EQ(hrt_run(argv, log, 240000), 0);
  json_t *r = hrt_last_json(log, "retrieval_NDCG@10");
  ASSERT_NOT_NULL(r);
  double base = num(r, "retrieval_NDCG@10"), ours = num(r, "NDCG@10");
  ASSERT_MSG(base > 0.01 && ours > 0.01, "retrieval %.4f, reranked %.4f",
             base, ours);
  ASSERT_EQ((long)num(r, "users"), 943);
  /* the lists written: one line per user, ten items each */
  char *text = hrt_slurp(topk);
  ASSERT_NOT_NULL(text);
  size_t lines = 0, tabs = 0;
  for (char *p = text; *p; p++) {
    lines += *p == '\n';
    tabs += *p == '\t';
  }
  free(text);
  ASSERT_EQ(lines, 943);
  ASSERT_EQ(tabs, 943 * 10);
  json_decref(r);
  return 0;
}
