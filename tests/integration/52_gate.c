/* 52_gate.c -- the quality gate at load: a version whose report shows a
 * validation score well below the serving version's (same holdout), or
 * whose catalogue or user base collapsed, is refused with its reason while
 * the old version keeps serving; fit --force's manifest flag and an admin
 * rollback naming the version take it anyway. */
#include "lib/env.h"

#include "hr/crc.h"

#include <inttypes.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define GATE_TOKEN "test-admin-token-0123456789"

/* Add report.json (validation NDCG@10 `ndcg` on holdout "last-item") to
 * the version directory dir and list it, with its CRC, in the manifest;
 * forced: also "forced": true. Returns 0 or -1. */
static int set_report(const char *dir, double ndcg, int forced) {
  char path[PATH_MAX], hex[9];
  json_t *rep = json_pack("{ss s{ss sf sf}}", "winner", "ials", "validation",
                          "holdout", "last-item", "NDCG@10", ndcg,
                          "NDCG@10_se", 0.005);
  char *text = json_dumps(rep, JSON_COMPACT);
  json_decref(rep);
  if (text == NULL)
    return -1;
  hrt_fmt(path, sizeof(path), "%s/report.json", dir);
  FILE *f = fopen(path, "w");
  if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0) {
    free(text);
    return -1;
  }
  snprintf(hex, sizeof(hex), "%08" PRIx32,
           hr_crc32(0, text, strlen(text)));
  hrt_fmt(path, sizeof(path), "%s/manifest.json", dir);
  json_t *man = json_load_file(path, 0, NULL);
  json_object_set_new(json_object_get(man, "files"), "report.json",
                      json_pack("{sI ss}", "bytes",
                                (json_int_t)strlen(text), "crc32", hex));
  if (forced)
    json_object_set_new(man, "forced", json_true());
  free(text);
  int rc = json_dump_file(man, path, JSON_INDENT(2));
  json_decref(man);
  return rc;
}

/* Publish `from` as version v of the default slot (one rename), with a
 * report of score ndcg (< 0: none). */
static int publish_as(hrt_env_t *e, const char *from, long long v,
                      double ndcg, int forced) {
  char tmp[PATH_MAX], dir[PATH_MAX];
  hrt_fmt(tmp, sizeof(tmp), "%s/default/.tmp-gate-%lld", e->models, v);
  hrt_fmt(dir, sizeof(dir), "%s/default/%lld", e->models, v);
  if (hrt_copy_tree(from, tmp) != 0 ||
      (ndcg >= 0 && set_report(tmp, ndcg, forced) != 0))
    return -1;
  return rename(tmp, dir);
}

/* A model of one user and three items, trained by hyperrec-train into
 * its own slot: the collapse a nearly empty stream would publish. */
static int collapsed_version(char *out, size_t cap) {
  char csv[PATH_MAX], slot[PATH_MAX], log[PATH_MAX], bin[PATH_MAX];
  hrt_fmt(csv, sizeof(csv), "%s/collapsed.csv", hr_test_tmpdir());
  hrt_fmt(slot, sizeof(slot), "%s/collapsed/default", hr_test_tmpdir());
  hrt_fmt(log, sizeof(log), "%s/collapsed.log", hr_test_tmpdir());
  FILE *f = fopen(csv, "w");
  if (f == NULL)
    return -1;
  fputs("user_id,item_id\nlonely,i1\nlonely,i2\nlonely,i3\n", f);
  if (fclose(f) != 0)
    return -1;
  const char *argv[] = {hrt_bin_path("hyperrec-train", bin, sizeof(bin)),
                        "fit", "--data", csv, "--out", slot, "--kind",
                        "ials", "--quiet", NULL};
  if (hrt_run(argv, log, 60000) != 0)
    return -1;
  char *text = hrt_slurp(log), *nl; /* its last line: the version */
  if (text == NULL)
    return -1;
  while ((nl = strrchr(text, '\n')) != NULL && nl[1] == '\0')
    *nl = '\0';
  hrt_fmt(out, cap, "%s", (nl = strrchr(text, '\n')) ? nl + 1 : text);
  free(text);
  return 0;
}

static const char *refusal_reason(hrt_env_t *e, long long v, char *buf,
                                  size_t cap) {
  int st;
  json_t *j = hrt_get(e, "/models", &st);
  json_t *list = hrt_jget(j, "slots[0].refused");
  buf[0] = '\0';
  for (size_t k = 0; k < json_array_size(list); k++) {
    json_t *r = json_array_get(list, k);
    if (json_integer_value(json_object_get(r, "version")) == v)
      hrt_fmt(buf, cap, "%s",
              json_string_value(json_object_get(r, "reason")));
  }
  json_decref(j);
  return buf[0] ? buf : NULL;
}

HR_TEST_T(gate_refuses_worse_and_collapsed_versions_forced_ones_pass, 120) {
  HRT_ENV(e);
  hrt_env_opts_t o = {.config_json = "{\"models_poll_ms\":100,\"admin\":"
                                     "{\"token\":\"" GATE_TOKEN "\"}}"};
  char collapsed[PATH_MAX], why[400], body[64];
  long long v0;
  int ok, st;
  json_t *j;

  ASSERT_EQ(collapsed_version(collapsed, sizeof(collapsed)), 0);
  ASSERT_EQ(hrt_env_start(&e, &o), 0);
  v0 = hrt_served_version(&e);
  /* a version with a report (validation NDCG@10 0.20) serves */
  ASSERT_EQ(publish_as(&e, e.fx.version_dir, v0 + 10, 0.20, 0), 0);
  HRT_POLL(ok, 5000, hrt_served_version(&e) == v0 + 10);
  ASSERT_MSG(ok, "v0+10 not served");
  /* 20 % worse on the same holdout: refused, v0+10 keeps serving */
  ASSERT_EQ(publish_as(&e, e.fx.version_dir, v0 + 20, 0.16, 0), 0);
  HRT_POLL(ok, 5000, refusal_reason(&e, v0 + 20, why, sizeof(why)) != NULL);
  ASSERT_MSG(ok, "the worse version was not refused");
  ASSERT_MSG(strstr(why, "quality gate") && strstr(why, "0.1600") &&
                 strstr(why, "20.0 %") && strstr(why, "0.2000"),
             "reason: %s", why);
  ASSERT_EQ(hrt_served_version(&e), v0 + 10);
  /* collapsed (1 user, 3 items): refused by the counts */
  ASSERT_EQ(publish_as(&e, collapsed, v0 + 30, -1, 0), 0);
  HRT_POLL(ok, 5000, refusal_reason(&e, v0 + 30, why, sizeof(why)) != NULL);
  ASSERT_MSG(ok, "the collapsed version was not refused");
  ASSERT_MSG(strstr(why, "quality gate") && strstr(why, "3 items") &&
                 strstr(why, "1 users"),
             "reason: %s", why);
  ASSERT_EQ(hrt_served_version(&e), v0 + 10);
  j = hrt_post(&e, "/recommend", json_pack("{s:s}", "user_id", "x"), &st);
  ASSERT_EQ(st, 200);
  ASSERT_EQ(hrt_jint(j, "model.version"), v0 + 10);
  json_decref(j);
  char *m = hrt_metrics(&e);
  ASSERT_NOT_NULL(m);
  ASSERT_DBL_NEAR(hrt_metric(m, "hyperrec_model_gated_total", NULL), 2, 1e-9);
  free(m);
  ASSERT_GE(hrt_server_log_count(&e.srv, "\"quality_gate\":true", NULL), 2);
  /* the same worse model written with fit --force: taken */
  ASSERT_EQ(publish_as(&e, e.fx.version_dir, v0 + 40, 0.16, 1), 0);
  HRT_POLL(ok, 5000, hrt_served_version(&e) == v0 + 40);
  ASSERT_MSG(ok, "the forced version was not served");
  /* an admin rollback naming the collapsed version takes it too */
  hrt_fmt(body, sizeof(body), "{\"version\":%lld}", v0 + 30);
  hrt_resp_t r = {0};
  ASSERT_EQ(hrt_req(&e, "POST", "/admin/models/default/rollback",
                    "Authorization: Bearer " GATE_TOKEN
                    "\r\nContent-Type: application/json\r\n",
                    body, strlen(body), &r),
            0);
  ASSERT_MSG(r.status == 200, "rollback: %d %s", r.status, r.body);
  hrt_resp_free(&r);
  ASSERT_EQ(hrt_served_version(&e), v0 + 30);
  ASSERT(refusal_reason(&e, v0 + 30, why, sizeof(why)) == NULL);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}
