/* cli_tools.c -- `hyperrec-train gen`, `index` and `check-index`. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage_gen[] =
    "usage: hyperrec-train gen --out DIR [--users 2000] [--items 500]\n"
    "                          [--events 60000] [--seed 1]\n"
    "                          [--context-effect 1] [--bots F]\n"
    "\n"
    "Writes DIR/events.csv (user_id,item_id,rating,ts,location,mood,device),\n"
    "DIR/items.csv, DIR/users.csv (user_id,age,household) and\n"
    "DIR/contexts.csv (user_id,location,mood,tz). --context-effect S scales\n"
    "the context's pull on what users pick; --bots F adds F x users bot\n"
    "accounts (random items, one item hammered, a script copied across\n"
    "accounts) to events.csv and names them in DIR/bots.csv (user_id,kind).\n";

/* ------------------------------------------------------------------ gen */

int cmd_gen(args_t *a) {
  hr_gen_opts_t o = {2000, 500, 60000, 1, 1.0, 0};
  const char *out = NULL;
  hr_error_t err = {0};
  int rc;

  for (a->i = 1; a->i < a->argc; a->i++) {
    const char *arg = a->argv[a->i];
    if (help(arg)) {
      fputs(usage_gen, stdout);
      return 0;
    } else if (is_opt(arg, "--out"))
      out = value(a, arg, "--out");
    else if (is_opt(arg, "--users"))
      o.users = (size_t)int_opt(a, "--users", value(a, arg, "--users"), 1,
                                10000000);
    else if (is_opt(arg, "--items"))
      o.items = (size_t)int_opt(a, "--items", value(a, arg, "--items"), 40,
                                10000000);
    else if (is_opt(arg, "--events"))
      o.events = (size_t)int_opt(a, "--events", value(a, arg, "--events"), 1,
                                 100000000);
    else if (is_opt(arg, "--seed"))
      o.seed = (uint64_t)int_opt(a, "--seed", value(a, arg, "--seed"), 0,
                                 INT64_MAX);
    else if (is_opt(arg, "--bots"))
      o.bots = dbl_opt(a, "--bots", value(a, arg, "--bots"), 0, 1);
    else if (is_opt(arg, "--context-effect"))
      o.context_effect = dbl_opt(a, "--context-effect",
                                 value(a, arg, "--context-effect"), 0, 10);
    else
      usage_error(a, "unknown option \"%s\"", arg);
  }
  if (out == NULL)
    usage_error(a, "--out DIR is required");
  if ((rc = hr_gen_write(out, &o, &err)) != 0)
    return fail(&err, rc);
  printf("%s\n", out);
  return 0;
}

static const char usage_index[] =
    "usage: hyperrec-train index --vectors FILE.vec --out PATH [--ann-m N]\n"
    "                            [--ann-efc N] [--threads N] [--seed S]\n"
    "\n"
    "Builds the HNSW graph over the vectors of a VEC1 file (docs/ann.md) and\n"
    "writes it to PATH atomically. Inner product; normalise the vectors\n"
    "first for cosine similarity.\n";

int cmd_index(args_t *a) {
  const char *vecs = NULL, *out = NULL;
  hr_ann_params_t p;
  hr_error_t err = {0};
  hr_ann_t *ann;
  size_t n;
  int dim, rc;
  float *x;

  hr_ann_params_default(&p);
  for (a->i = 1; a->i < a->argc; a->i++) {
    const char *arg = a->argv[a->i];
    if (help(arg)) {
      fputs(usage_index, stdout);
      return 0;
    } else if (is_opt(arg, "--vectors"))
      vecs = value(a, arg, "--vectors");
    else if (is_opt(arg, "--out"))
      out = value(a, arg, "--out");
    else if (is_opt(arg, "--ann-m"))
      p.M = (int)int_opt(a, "--ann-m", value(a, arg, "--ann-m"), 2, 256);
    else if (is_opt(arg, "--ann-efc"))
      p.ef_construction =
          (int)int_opt(a, "--ann-efc", value(a, arg, "--ann-efc"), 1, 100000);
    else if (is_opt(arg, "--threads"))
      p.threads =
          (int)int_opt(a, "--threads", value(a, arg, "--threads"), 1, 256);
    else if (is_opt(arg, "--seed"))
      p.seed = (uint64_t)int_opt(a, "--seed", value(a, arg, "--seed"), 0,
                                 INT64_MAX);
    else
      usage_error(a, "unknown option \"%s\"", arg);
  }
  if (vecs == NULL || out == NULL)
    usage_error(a, "--vectors FILE and --out PATH are required");
  if ((x = hr_vec_read(vecs, &n, &dim, &err)) == NULL)
    return fail(&err, err.code);
  ann = hr_ann_build(x, n, dim, &p, &err);
  free(x);
  if (ann == NULL)
    return fail(&err, err.code ? err.code : HR_ENOMEM);
  rc = hr_ann_save(ann, out, &err);
  hr_ann_free(ann);
  if (rc != 0)
    return fail(&err, rc);
  printf("%s\n", out);
  return 0;
}

static const char usage_check[] =
    "usage: hyperrec-train check-index --model MODELS/NAME/VERSION\n"
    "                                  [--users 1000] [--n 200] [--ef LIST]\n"
    "\n"
    "For evenly spaced known users: the real user vector, the training\n"
    "history excluded, the index's top-n against the exact top-n by inner\n"
    "product. One JSON line per ef: recall@n and searches per second.\n";

int cmd_check(args_t *a) {
  const char *model = NULL, *eflist = "200";
  size_t users = 1000, n = 200;
  hr_error_t err = {0};
  char buf[256];

  for (a->i = 1; a->i < a->argc; a->i++) {
    const char *arg = a->argv[a->i];
    if (help(arg)) {
      fputs(usage_check, stdout);
      return 0;
    } else if (is_opt(arg, "--model"))
      model = value(a, arg, "--model");
    else if (is_opt(arg, "--users"))
      users = (size_t)int_opt(a, "--users", value(a, arg, "--users"), 1,
                              10000000);
    else if (is_opt(arg, "--n"))
      n = (size_t)int_opt(a, "--n", value(a, arg, "--n"), 1, 100000);
    else if (is_opt(arg, "--ef"))
      eflist = value(a, arg, "--ef");
    else
      usage_error(a, "unknown option \"%s\"", arg);
  }
  if (model == NULL)
    usage_error(a, "--model MODELS/NAME/VERSION is required");
  snprintf(buf, sizeof(buf), "%s", eflist);
  for (char *save = NULL, *t = strtok_r(buf, ",", &save); t;
       t = strtok_r(NULL, ",", &save)) {
    hr_check_result_t r;
    int ef = (int)int_opt(a, "--ef", t, 1, 1000000), rc;
    if ((rc = hr_check_index(model, users, n, ef, &r, &err)) != 0)
      return fail(&err, rc);
    printf("{\"users\":%zu,\"n\":%zu,\"ef\":%d,\"ann_recall\":%.4f,"
           "\"ann_qps\":%.1f,\"retrieve_recall\":%.4f,\"retrieve_qps\":%.1f,"
           "\"scanned\":%.4f,\"exact_qps\":%.1f}\n",
           r.users, n, ef, r.recall, r.ann_qps, r.retrieve_recall,
           r.retrieve_qps, r.scanned_frac, r.exact_qps);
    fflush(stdout);
  }
  return 0;
}

