/* main.c -- bin/hyperrec-train: fit, eval, gen (docs/training.md).
 *
 * Exit status: 0 success, 1 failure (bad input data, I/O, Redis), 2 usage
 * error. Results go to stdout (fit: the new version directory; eval: one
 * JSON line); progress and logs go to stderr. */
#include "hr/log.h"
#include "hr/train.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *prog = "hyperrec-train";

static const char usage_main[] =
    "usage: hyperrec-train <command> [options]\n"
    "\n"
    "commands:\n"
    "  fit    train a model and publish a new version MODELS/NAME/<version>\n"
    "  eval   offline evaluation: the loo split of MovieLens 100K\n"
    "         (../shared/data/ml-100k/splits/loo/PROTOCOL.md), the context\n"
    "         protocols ctx80 / ctx80-rc (../shared/data/CONTEXT-PROTOCOL.md),\n"
    "         leave-last-out on an event file, cold items, cold users\n"
    "  gen    write a synthetic data set with context effects\n"
    "  index  build an ANN index (index.bin) from a VEC1 vector file\n"
    "  check-index  recall of a version's index for its own users\n"
    "\n"
    "`hyperrec-train <command> --help` describes each command.\n";

static const char usage_hyper[] =
    "model options (defaults chosen on the loo validation split):\n"
    "  --factors N     latent dimension (default 64)\n"
    "  --reg R         L2 regularisation (default 80)\n"
    "  --alpha A       confidence scale (default 160)\n"
    "  --decay D       recency decay per position from the newest item,\n"
    "                  in (0,1]; 1 = no recency weighting (default 0.75)\n"
    "  --floor F       minimum recency weight in [0,1] (default 0)\n"
    "  --cap N         only the N newest items of a user count, 0 = all\n"
    "                  (default 200)\n"
    "  --iters N       ALS iterations (default 12)\n"
    "  --seed S        random seed (default 1)\n"
    "  --threads N     worker threads (default 2)\n"
    "  --quiet         no progress on stderr\n"
    "index options (fit writes index.bin, the ANN graph over the items):\n"
    "  --no-index      do not build index.bin\n"
    "  --ann-m N       HNSW links per node (default 32)\n"
    "  --ann-efc N     HNSW build beam width (default 200)\n";

static const char usage_fit[] =
    "usage: hyperrec-train fit (--data PATH [--format movielens|csv]\n"
    "                           [--min-rating R] |\n"
    "                           --from-redis HOST:PORT [--stream KEY])\n"
    "                          --out MODELS/NAME [--items PATH] [--users PATH]\n"
    "                          [model options]\n"
    "\n"
    "  --data PATH          interactions: MovieLens `user item rating ts`\n"
    "                       (TAB or \"::\"), or CSV with a header\n"
    "                       user_id,item_id[,rating][,ts][,<context>...]\n"
    "  --format F           movielens or csv (default: csv for *.csv)\n"
    "  --min-rating R       with --data: leave out rows rated below R (kept:\n"
    "                       rows without a rating); the manifest counts them\n"
    "  --from-redis H:P     read the server's event stream instead\n"
    "  --stream KEY         stream key (default hr:events)\n"
    "  --items PATH         item catalogue CSV (item_id,<attributes>...):\n"
    "                       adds items without interactions\n"
    "  --users PATH         user attributes: users.csv (user_id,<attributes>\n"
    "                       ...) or u.user; the prior for new users and the\n"
    "                       seq model learn them (request field user_attrs)\n"
    "  --out MODELS/NAME    the model slot; prints the new version's path\n"
    "  --keep N             keep the N newest versions of the slot, remove\n"
    "                       older ones (default 5; 0 keeps every version)\n"
    "  --kind K             ials (default) or seq: the sequential model, whose\n"
    "                       options (those of `eval --kind seq`) follow it\n"
    "\n";

static const char usage_eval[] =
    "usage: hyperrec-train eval --split DIR --target valid|test\n"
    "                           [--topk-out FILE] [model options]\n"
    "\n"
    "  --split DIR      train.tsv, valid.tsv, test.tsv and meta.json\n"
    "  --target T       valid: fit on train; test: fit on train+valid\n"
    "  --topk-out FILE  write the top-10 lists in the judge's TSV format\n"
    "  --items PATH     (--kind seq) item attributes, u.item or items.csv\n"
    "                   (item_id,<attributes>...): the item tower\n"
    "  --cold-items F   (--kind seq, with --items) the cold-item check: hide\n"
    "                   the fraction F of the items from training, rank them\n"
    "                   by their attributes alone; NDCG@10 vs random order\n"
    "  --min-gap S      (loo) count only targets at least S seconds after the\n"
    "                   user's newest history item: the next visit\n"
    "  --cold-users F   (with --data PATH [--format movielens|csv] [--users\n"
    "                   PATH]) hold out the fraction F of the users; rank\n"
    "                   their events' items by popularity and by the prior\n"
    "                   over context and user attributes (what a new user\n"
    "                   gets)\n"
    "  --data PATH --protocol last --kind seq  leave-last-out on an event\n"
    "                   CSV: each user's newest item is the test target, the\n"
    "                   one before it the valid target; the model learns a\n"
    "                   vector per context value and, with --users PATH,\n"
    "                   per user attribute value (--no-context: neither)\n"
    "  --data PATH      instead of --split: a ratings.csv of the context\n"
    "                   protocol, with --protocol ctx80|ctx80-rc,\n"
    "                   [--threshold T] (default 4, or 1 for counts) and\n"
    "                   --model pop (MostPopular), seq (the served sequential\n"
    "                   model with context features, file order as time;\n"
    "                   --items PATH adds the item tower over an items.csv),\n"
    "                   tt (context two-tower:\n"
    "                   --dim 32 --epochs 50 --lr 0.01 --wd 0.01 --seed 1)\n"
    "                   or nbr (the user's own ratings of an item plus\n"
    "                   item x situation biases: --nbr-weight 1\n"
    "                   --nbr-shrink 5); --no-context for the ablation\n"
    "  --kind K         ials (default) or seq (the sequential model; its\n"
    "                   options follow --kind seq):\n"
    "    --dim 64 --len 200 --blocks 2 --ffn 64 --epochs 40 --batch 64\n"
    "    --lr 0.002 --wd 0 --dropout 0.3 --block-dropout 0 --no-time\n"
    "    --seed 1 --threads 2 --report FILE (the per-epoch curve as CSV:\n"
    "    epoch,seconds,loss,hr10,ndcg10 -- metrics on the --target)\n"
    "    --negatives N (sampled softmax against N uniform items per batch;\n"
    "    0: full softmax; default full up to 20000 items, else 2048)\n"
    "    --long-term 6 (weight of the long-term iALS part; 0: none; it\n"
    "    takes the iALS options given before --kind seq, --seed too)\n"
    "    --id-dropout 0.5 (with --items: share of items trained on their\n"
    "    attribute vector alone per batch, for cold items)\n"
    "    --members 1 (networks in the ensemble, trained with seeds\n"
    "    seed, seed+1, ...; their scores add up)\n"
    "    --tie-shuffle (each epoch, shuffle the items that share a\n"
    "    timestamp: their order is unknown)\n"
    "    --no-context (fit: no context features, which are learned by\n"
    "    default when the data has context columns)\n"
    "\n"
    "Prints one JSON line: HR@10, NDCG@10, MRR@10, coverage@10, ...\n"
    "\n";

static const char usage_gen[] =
    "usage: hyperrec-train gen --out DIR [--users 2000] [--items 500]\n"
    "                          [--events 60000] [--seed 1]\n"
    "                          [--context-effect 1]\n"
    "\n"
    "Writes DIR/events.csv (user_id,item_id,rating,ts,location,mood,device),\n"
    "DIR/items.csv, DIR/users.csv (user_id,age,household) and\n"
    "DIR/contexts.csv (user_id,location,mood,tz).\n";

/* --------------------------------------------------------- option parsing */

typedef struct {
  int argc;
  char **argv;
  int i;
  const char *usage;
} args_t;

__attribute__((format(printf, 2, 3), noreturn))
static void usage_error(const args_t *a, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "%s: ", prog);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\n(try `%s %s --help`)\n", prog, a->argv[0]);
  exit(2);
}

/* The value of --name (as "--name V" or "--name=V"). */
static const char *value(args_t *a, const char *arg, const char *name) {
  size_t n = strlen(name);
  if (arg[n] == '=')
    return arg + n + 1;
  if (a->i + 1 >= a->argc)
    usage_error(a, "%s needs a value", name);
  return a->argv[++a->i];
}

static int is_opt(const char *arg, const char *name) {
  size_t n = strlen(name);
  return strncmp(arg, name, n) == 0 && (arg[n] == '\0' || arg[n] == '=');
}

static long long int_opt(args_t *a, const char *name, const char *v,
                         long long lo, long long hi) {
  char *end;
  long long x;
  errno = 0;
  x = strtoll(v, &end, 10);
  if (*v == '\0' || *end != '\0' || errno != 0 || x < lo || x > hi)
    usage_error(a, "%s: \"%s\" is not an integer in [%lld, %lld]", name, v,
                lo, hi);
  return x;
}

static double dbl_opt(args_t *a, const char *name, const char *v, double lo,
                      double hi) {
  char *end;
  double x;
  errno = 0;
  x = strtod(v, &end);
  if (*v == '\0' || *end != '\0' || errno != 0 || !(x >= lo && x <= hi))
    usage_error(a, "%s: \"%s\" is not a number in [%g, %g]", name, v, lo, hi);
  return x;
}

static float num_opt(args_t *a, const char *name, const char *v, double lo,
                     double hi) {
  return (float)dbl_opt(a, name, v, lo, hi);
}

/* Model options shared by fit and eval; returns 1 when arg was one. */
static int hyper_opt(args_t *a, const char *arg, hr_ials_opts_t *o) {
  if (is_opt(arg, "--factors"))
    o->factors = (int)int_opt(a, "--factors", value(a, arg, "--factors"), 1,
                              256);
  else if (is_opt(arg, "--reg"))
    o->p.reg = num_opt(a, "--reg", value(a, arg, "--reg"), 1e-6, 1e9);
  else if (is_opt(arg, "--alpha"))
    o->p.alpha = num_opt(a, "--alpha", value(a, arg, "--alpha"), 0, 1e6);
  else if (is_opt(arg, "--decay"))
    o->p.decay = num_opt(a, "--decay", value(a, arg, "--decay"), 1e-6, 1);
  else if (is_opt(arg, "--floor"))
    o->p.floor = num_opt(a, "--floor", value(a, arg, "--floor"), 0, 1);
  else if (is_opt(arg, "--cap"))
    o->p.cap = (int)int_opt(a, "--cap", value(a, arg, "--cap"), 0,
                            1000000000);
  else if (is_opt(arg, "--iters"))
    o->iters = (int)int_opt(a, "--iters", value(a, arg, "--iters"), 0, 1000);
  else if (is_opt(arg, "--seed"))
    o->seed = (uint64_t)int_opt(a, "--seed", value(a, arg, "--seed"), 0,
                                INT64_MAX);
  else if (is_opt(arg, "--threads"))
    o->threads = (int)int_opt(a, "--threads", value(a, arg, "--threads"), 1,
                              16);
  else if (strcmp(arg, "--quiet") == 0)
    o->progress = 0;
  else if (strcmp(arg, "--no-index") == 0)
    o->index = 0;
  else if (is_opt(arg, "--ann-m"))
    o->ann.M = (int)int_opt(a, "--ann-m", value(a, arg, "--ann-m"), 2, 256);
  else if (is_opt(arg, "--ann-efc"))
    o->ann.ef_construction =
        (int)int_opt(a, "--ann-efc", value(a, arg, "--ann-efc"), 1, 100000);
  else
    return 0;
  o->ann.threads = o->threads;
  o->ann.seed = o->seed;
  return 1;
}

static int help(const char *arg) {
  return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

static int fail(const hr_error_t *err, int rc) {
  fprintf(stderr, "%s: %s\n", prog, err->code ? err->msg : hr_strerror(rc));
  return 1;
}

/* ------------------------------------------------------------------ fit */

static int seq_opt(args_t *a, const char *arg, hr_seq_opts_t *o);

/* --budget: seconds, or a number with s, m or h. */
static double duration_opt(args_t *a, const char *name, const char *v) {
  char *end;
  double x, unit = 1;
  errno = 0;
  x = strtod(v, &end);
  if (end != v && strcmp(end, "m") == 0)
    unit = 60;
  else if (end != v && strcmp(end, "h") == 0)
    unit = 3600;
  else if (end == v || (*end != '\0' && strcmp(end, "s") != 0))
    x = -1;
  if (errno != 0 || !(x * unit >= 1 && x * unit <= 7 * 86400.0))
    usage_error(a, "%s: \"%s\" is not a duration between 1s and 7 days "
                   "(e.g. 600, 90s, 10m, 2h)", name, v);
  return x * unit;
}

/* iALS options that name a model (rather than threads, seeds, output). */
static int ials_model_opt(const char *arg) {
  static const char *const names[] = {"--factors", "--reg", "--alpha",
                                      "--decay", "--floor", "--cap",
                                      "--iters"};
  for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++)
    if (is_opt(arg, names[k]))
      return 1;
  return 0;
}

static void fit_args(args_t *a, hr_fit_opts_t *o) {
  int ials_flags = 0;
  for (a->i = 1; a->i < a->argc; a->i++) {
    const char *arg = a->argv[a->i];
    if (help(arg)) {
      fputs(usage_fit, stdout);
      fputs(usage_hyper, stdout);
      exit(0);
    } else if (is_opt(arg, "--kind"))
      o->kind = value(a, arg, "--kind");
    else if (o->kind != NULL && strcmp(o->kind, "seq") == 0 &&
             seq_opt(a, arg, &o->seq))
      ;
    else if (is_opt(arg, "--data"))
      o->data = value(a, arg, "--data");
    else if (is_opt(arg, "--format"))
      o->format = value(a, arg, "--format");
    else if (is_opt(arg, "--from-redis"))
      o->redis = value(a, arg, "--from-redis");
    else if (is_opt(arg, "--stream"))
      o->stream = value(a, arg, "--stream");
    else if (is_opt(arg, "--out"))
      o->out = value(a, arg, "--out");
    else if (is_opt(arg, "--items"))
      o->items = value(a, arg, "--items");
    else if (is_opt(arg, "--users"))
      o->users = value(a, arg, "--users");
    else if (is_opt(arg, "--keep"))
      o->keep = (int)int_opt(a, "--keep", value(a, arg, "--keep"), 0, 100000);
    else if (is_opt(arg, "--budget"))
      o->budget_s = duration_opt(a, "--budget", value(a, arg, "--budget"));
    else if (strcmp(arg, "--force") == 0)
      o->force = 1;
    else if (is_opt(arg, "--min-rating")) {
      o->min_rating = dbl_opt(a, "--min-rating",
                              value(a, arg, "--min-rating"), -1e9, 1e9);
      o->min_rating_set = 1;
    } else if (hyper_opt(a, arg, &o->ials))
      ials_flags |= ials_model_opt(arg);
    else
      usage_error(a, "unknown option \"%s\"", arg);
  }
  if (o->kind == NULL && ials_flags) /* iALS options name the model */
    o->kind = "ials";
}

static void fit_check(args_t *a, hr_fit_opts_t *o) {
  if (o->kind != NULL && strcmp(o->kind, "ials") != 0 &&
      strcmp(o->kind, "seq") != 0 && strcmp(o->kind, "pop") != 0)
    usage_error(a, "--kind must be pop, ials or seq");
  int nm = o->seq.members > 1 ? o->seq.members : 1;
  if (o->kind != NULL && strcmp(o->kind, "seq") == 0 &&
      nm * o->seq.dims.d + (o->seq.long_term > 0 ? o->ials.factors : 0) >
          HR_MODEL_MAX_DIM)
    usage_error(a, "--members %d x --dim %d (+ --factors %d with a "
                   "long-term part) is over %d, the widest model the "
                   "server loads", nm, o->seq.dims.d,
                o->seq.long_term > 0 ? o->ials.factors : 0, HR_MODEL_MAX_DIM);
  if ((o->data == NULL) == (o->redis == NULL))
    usage_error(a, "give exactly one of --data and --from-redis");
  if (o->out == NULL || o->out[0] == '\0')
    usage_error(a, "--out MODELS/NAME is required");
  if (o->redis != NULL && o->format != NULL)
    usage_error(a, "--format goes with --data, not --from-redis");
  if (o->redis != NULL && o->min_rating_set)
    usage_error(a, "--min-rating goes with --data (a file's rating column), "
                   "not --from-redis");
  if (o->data != NULL && o->format == NULL) {
    size_t n = strlen(o->data);
    o->format = n > 4 && strcmp(o->data + n - 4, ".csv") == 0 ? "csv"
                                                              : "movielens";
  }
  if (o->format != NULL && strcmp(o->format, "csv") != 0 &&
      strcmp(o->format, "movielens") != 0)
    usage_error(a, "--format must be movielens or csv, not \"%s\"",
                o->format);
}

static int cmd_fit(args_t *a) {
  hr_fit_opts_t o;
  hr_error_t err = {0};
  char path[4096];
  int rc;

  hr_fit_opts_default(&o);
  fit_args(a, &o);
  fit_check(a, &o);
  if ((rc = hr_fit_run(&o, path, sizeof(path), &err)) != 0)
    return fail(&err, rc);
  printf("%s\n", path);
  return 0;
}

/* ----------------------------------------------------------------- eval */

/* Options of the sequential model (--kind seq); returns 1 when arg was
 * one. */
static int seq_opt(args_t *a, const char *arg, hr_seq_opts_t *o) {
  if (is_opt(arg, "--dim"))
    o->dims.d = (int)int_opt(a, "--dim", value(a, arg, "--dim"), 1, 1024);
  else if (is_opt(arg, "--len"))
    o->dims.L = (int)int_opt(a, "--len", value(a, arg, "--len"), 1, HR_SEQ_MAX_LEN);
  else if (is_opt(arg, "--blocks"))
    o->dims.blocks = (int)int_opt(a, "--blocks", value(a, arg, "--blocks"), 0,
                                  HR_SEQ_MAX_BLOCKS);
  else if (is_opt(arg, "--ffn"))
    o->dims.ffn = (int)int_opt(a, "--ffn", value(a, arg, "--ffn"), 1, 4096);
  else if (is_opt(arg, "--members"))
    o->members = (int)int_opt(a, "--members", value(a, arg, "--members"), 1,
                              HR_SEQ_MAX_MEMBERS);
  else if (is_opt(arg, "--epochs"))
    o->epochs = (int)int_opt(a, "--epochs", value(a, arg, "--epochs"), 0,
                             10000);
  else if (is_opt(arg, "--batch"))
    o->batch = (int)int_opt(a, "--batch", value(a, arg, "--batch"), 1, 4096);
  else if (is_opt(arg, "--lr"))
    o->lr = num_opt(a, "--lr", value(a, arg, "--lr"), 1e-7, 1);
  else if (is_opt(arg, "--wd"))
    o->weight_decay = num_opt(a, "--wd", value(a, arg, "--wd"), 0, 1);
  else if (is_opt(arg, "--dropout"))
    o->dropout = num_opt(a, "--dropout", value(a, arg, "--dropout"), 0, 0.95);
  else if (is_opt(arg, "--block-dropout"))
    o->block_dropout = num_opt(a, "--block-dropout",
                               value(a, arg, "--block-dropout"), 0, 0.95);
  else if (is_opt(arg, "--seed"))
    o->seed = (uint64_t)int_opt(a, "--seed", value(a, arg, "--seed"), 0,
                                INT64_MAX);
  else if (is_opt(arg, "--threads"))
    o->threads = (int)int_opt(a, "--threads", value(a, arg, "--threads"), 1,
                              16);
  else if (strcmp(arg, "--no-time") == 0)
    o->dims.n_gap = 0;
  else if (strcmp(arg, "--tie-shuffle") == 0)
    o->tie_shuffle = 1;
  else if (strcmp(arg, "--no-context") == 0)
    o->ctx_slots = -1; /* no context features */
  else if (is_opt(arg, "--report"))
    o->report = value(a, arg, "--report");
  else if (is_opt(arg, "--long-term"))
    o->long_term = num_opt(a, "--long-term", value(a, arg, "--long-term"), 0,
                           1000);
  else if (is_opt(arg, "--id-dropout"))
    o->id_dropout = num_opt(a, "--id-dropout", value(a, arg, "--id-dropout"),
                            0, 0.95);
  else if (is_opt(arg, "--negatives"))
    o->negatives = (int)int_opt(a, "--negatives",
                                value(a, arg, "--negatives"), 0, 1 << 20);
  else
    return 0;
  return 1;
}

/* eval --data PATH --protocol ctx80|ctx80-rc (CONTEXT-PROTOCOL.md). */
static int eval_ctx(args_t *a, const char *data, const char *protocol,
                    const char *target, const char *topk, double threshold,
                    const char *model, int no_context, double user_dropout,
                    const hr_seq_opts_t *so, double nbr_weight,
                    double nbr_shrink, const char *items) {
  hr_ctx_eval_opts_t o = {0};
  hr_ctx_result_t res;
  hr_error_t err = {0};
  int rc;

  if (strcmp(protocol, "ctx80") != 0 && strcmp(protocol, "ctx80-rc") != 0)
    usage_error(a, "--protocol must be ctx80 or ctx80-rc with --data");
  o.target_test = strcmp(target, "test") == 0;
  o.repeat = strcmp(protocol, "ctx80-rc") == 0;
  o.threshold = threshold;
  o.model = model;
  o.no_context = no_context;
  o.dim = so->dims.d;
  o.epochs = so->epochs;
  o.lr = so->lr;
  o.wd = so->weight_decay;
  o.user_dropout = (float)user_dropout;
  o.seed = so->seed;
  o.seq = so;
  o.nbr_weight = (float)nbr_weight;
  o.nbr_shrink = (float)nbr_shrink;
  o.items = items;
  if (items != NULL && strcmp(model, "seq") != 0)
    usage_error(a, "--items goes with --model seq (the item tower)");
  if ((rc = hr_eval_ctx(data, &o, topk, &res, &err)) != 0)
    return fail(&err, rc);
  printf("{\"protocol\":\"%s\",\"target\":\"%s\",\"k\":10,"
         "\"threshold\":%g,\"HR@10\":%.6f,\"HR@10_se\":%.6f,"
         "\"NDCG@10\":%.6f,\"NDCG@10_se\":%.6f,\"cases\":%zu,"
         "\"dropped_cases\":%zu,\"relevant_rows\":%zu,"
         "\"target_rows\":%zu,\"fit_rows\":%zu,\"n_items\":%zu,"
         "\"model\":\"%s\",\"train_seconds\":%.3f}\n",
         protocol, target, res.threshold, res.hr, res.hr_se, res.ndcg,
         res.ndcg_se, res.cases, res.dropped, res.relevant, res.target_rows,
         res.fit_rows, res.n_items, model, res.train_seconds);
  return 0;
}

/* eval --split with no model named: fit's selection (train -> valid),
 * the winner scored on the target. */
static int eval_select(const char *split, const char *target,
                       const char *topk, const hr_ials_opts_t *o,
                       const hr_seq_opts_t *so, double budget) {
  hr_select_opts_t sel_o = {o, so, 0, budget, "loo-valid",
                            "the split's valid.tsv (each user's second "
                            "newest item); the models learn from train.tsv"};
  hr_selection_t sel;
  hr_eval_result_t res;
  hr_error_t err = {0};
  int rc;

  rc = hr_eval_loo_select(split, strcmp(target, "test") == 0, &sel_o, topk,
                          &res, &sel, &err);
  if (rc != 0) {
    hr_selection_free(&sel);
    return fail(&err, rc);
  }
  json_t *out = json_pack(
      "{ss ss si sf sf sf sf si si ss sf so}", "protocol", "loo", "target",
      target, "k", 10, "HR@10", res.hr, "NDCG@10", res.ndcg, "MRR@10",
      res.mrr, "coverage@10", res.coverage, "users", (int)res.users,
      "n_items", (int)res.n_items, "model", sel.r[sel.winner].cand.name,
      "train_seconds", res.train_seconds, "selection", sel.report);
  sel.report = NULL; /* now out's */
  char *text = json_dumps(out, JSON_COMPACT | JSON_PRESERVE_ORDER);
  printf("%s\n", text ? text : "{}");
  free(text);
  json_decref(out);
  hr_selection_free(&sel);
  return 0;
}

static int cmd_eval(args_t *a) {
  const char *split = NULL, *target = NULL, *topk = NULL, *kind = NULL;
  double budget = HR_FIT_BUDGET_DEFAULT;
  int named = 0; /* a model was named (--kind, --model, iALS options) */
  const char *data = NULL, *protocol = "loo", *model = "pop", *items = NULL;
  const char *users = NULL, *format = NULL;
  double cold = 0, udrop = 0, cold_users = 0, nbr_w = 1, nbr_s = 5;
  int rerank = 0;
  double threshold = -1;
  int no_context = 0, ctx = 0, last = 0;
  hr_seq_opts_t so;
  hr_ials_opts_t o;
  hr_eval_result_t res;
  hr_error_t err = {0};
  int rc;

  hr_ials_opts_default(&o);
  hr_seq_opts_default(&so);
  o.progress = 1;
  so.progress = 1;
  for (int i = 1; i < a->argc; i++) {
    ctx |= is_opt(a->argv[i], "--data");
    last |= strcmp(a->argv[i], "--protocol=last") == 0 ||
            (strcmp(a->argv[i], "--protocol") == 0 && i + 1 < a->argc &&
             strcmp(a->argv[i + 1], "last") == 0);
  }
  if (ctx && !last) { /* the context two-tower's defaults (--model tt) */
    so.dims.d = 32;
    so.epochs = 50;
    so.lr = 0.01f;
    so.weight_decay = 0.01f;
  }
  for (a->i = 1; a->i < a->argc; a->i++) {
    const char *arg = a->argv[a->i];
    if (help(arg)) {
      fputs(usage_eval, stdout);
      fputs(usage_hyper, stdout);
      return 0;
    } else if (is_opt(arg, "--kind")) {
      kind = value(a, arg, "--kind");
      named = 1;
    } else if (kind != NULL && strcmp(kind, "seq") == 0 &&
               seq_opt(a, arg, &so))
      ;
    else if (is_opt(arg, "--budget"))
      budget = duration_opt(a, "--budget", value(a, arg, "--budget"));
    else if (is_opt(arg, "--split"))
      split = value(a, arg, "--split");
    else if (is_opt(arg, "--data"))
      data = value(a, arg, "--data");
    else if (is_opt(arg, "--protocol"))
      protocol = value(a, arg, "--protocol");
    else if (is_opt(arg, "--threshold"))
      threshold = dbl_opt(a, "--threshold", value(a, arg, "--threshold"), 0,
                          1e9);
    else if (is_opt(arg, "--model")) {
      model = value(a, arg, "--model");
      named = 1;
    }
    else if (strcmp(arg, "--no-context") == 0)
      no_context = 1;
    else if (is_opt(arg, "--user-dropout"))
      udrop = num_opt(a, "--user-dropout", value(a, arg, "--user-dropout"), 0,
                      0.99);
    else if (is_opt(arg, "--nbr-weight"))
      nbr_w = num_opt(a, "--nbr-weight", value(a, arg, "--nbr-weight"), 0,
                      100);
    else if (is_opt(arg, "--nbr-shrink"))
      nbr_s = num_opt(a, "--nbr-shrink", value(a, arg, "--nbr-shrink"), 0.01,
                      1e6);
    else if (ctx && seq_opt(a, arg, &so))
      ;
    else if (is_opt(arg, "--target"))
      target = value(a, arg, "--target");
    else if (is_opt(arg, "--topk-out"))
      topk = value(a, arg, "--topk-out");
    else if (is_opt(arg, "--items"))
      items = value(a, arg, "--items");
    else if (is_opt(arg, "--users"))
      users = value(a, arg, "--users");
    else if (is_opt(arg, "--format"))
      format = value(a, arg, "--format");
    else if (is_opt(arg, "--rerank"))
      rerank = (int)int_opt(a, "--rerank", value(a, arg, "--rerank"), 10,
                            1000);
    else if (is_opt(arg, "--min-gap"))
      hr_eval_set_min_gap((int64_t)int_opt(a, "--min-gap",
                                           value(a, arg, "--min-gap"), 0,
                                           INT64_MAX));
    else if (is_opt(arg, "--cold-users"))
      cold_users = num_opt(a, "--cold-users", value(a, arg, "--cold-users"),
                           0.001, 0.9);
    else if (is_opt(arg, "--cold-items"))
      cold = num_opt(a, "--cold-items", value(a, arg, "--cold-items"), 0.001,
                     0.9);
    else if (hyper_opt(a, arg, &o))
      named |= ials_model_opt(arg);
    else
      usage_error(a, "unknown option \"%s\"", arg);
  }
  if (split != NULL && !named && cold == 0 && rerank == 0 &&
      cold_users == 0 && data == NULL && items == NULL) {
    if (target == NULL ||
        (strcmp(target, "valid") != 0 && strcmp(target, "test") != 0))
      usage_error(a, "--target must be valid or test");
    return eval_select(split, target, topk, &o, &so, budget);
  }
  if (kind == NULL)
    kind = "ials";
  if (cold_users > 0) { /* cold users: the context prior vs popularity */
    hr_cold_users_result_t cu;
    hr_dataset_t ds;
    size_t n = data ? strlen(data) : 0;
    if (data == NULL)
      usage_error(a, "--cold-users goes with --data PATH");
    if (items != NULL)
      usage_error(a, "--items is not used by --cold-users (the prior ranks "
                     "by context and user attributes)");
    if (format == NULL)
      format = n > 4 && strcmp(data + n - 4, ".csv") == 0 ? "csv"
                                                          : "movielens";
    if (strcmp(format, "csv") != 0 && strcmp(format, "movielens") != 0)
      usage_error(a, "--format must be movielens or csv, not \"%s\"",
                  format);
    if ((rc = hr_dataset_init(&ds)) != 0)
      return fail(&err, rc);
    rc = strcmp(format, "csv") == 0 ? hr_data_read_csv(&ds, data, &err)
                                    : hr_data_read_movielens(&ds, data, &err);
    if (rc == 0 && users != NULL)
      rc = hr_data_read_users(&ds, users, &err);
    if (rc == 0)
      rc = hr_eval_cold_users(&ds, cold_users, so.seed, &cu, &err);
    hr_dataset_free(&ds);
    if (rc != 0)
      return fail(&err, rc);
    printf("{\"protocol\":\"cold-users\",\"users\":%zu,\"events\":%zu,"
           "\"prior_fields\":%zu,\"popularity_NDCG@10\":%.6f,"
           "\"popularity_HR@10\":%.6f,\"context_NDCG@10\":%.6f,"
           "\"context_HR@10\":%.6f,\"diff_NDCG@10\":%.6f,"
           "\"diff_NDCG@10_se\":%.6f}\n",
           cu.users, cu.events, cu.fields, cu.pop_ndcg, cu.pop_hr,
           cu.ctx_ndcg, cu.ctx_hr, cu.ctx_ndcg - cu.pop_ndcg, cu.diff_se);
    return 0;
  }
  if (cold > 0) { /* the cold-item check (needs --items, kind seq) */
    hr_cold_result_t cr;
    if (split == NULL || items == NULL || strcmp(kind, "seq") != 0)
      usage_error(a, "--cold-items goes with --split, --items and --kind "
                     "seq");
    if ((rc = hr_eval_cold_seq(split, items, cold, &so, &cr, &err)) != 0)
      return fail(&err, rc);
    printf("{\"protocol\":\"cold-items\",\"hidden_items\":%zu,"
           "\"users\":%zu,\"NDCG@10\":%.6f,\"random_NDCG@10\":%.6f,"
           "\"ratio\":%.3f,\"HR@10\":%.6f,\"random_HR@10\":%.6f,"
           "\"train_seconds\":%.3f}\n",
           cr.hidden, cr.users, cr.ndcg, cr.random_ndcg,
           cr.random_ndcg > 0 ? cr.ndcg / cr.random_ndcg : 0.0, cr.hr,
           cr.random_hr, cr.train_seconds);
    return 0;
  }
  if (items != NULL && strcmp(kind, "seq") != 0 && data == NULL)
    usage_error(a, "--items goes with --kind seq (the item tower)");
  if (target == NULL ||
      (strcmp(target, "valid") != 0 && strcmp(target, "test") != 0))
    usage_error(a, "--target must be valid or test");
  if (so.ctx_slots < 0) /* read by seq_opt */
    no_context = 1;
  so.lt_opts = o; /* the seq model's long-term part: the iALS options */
  if (data != NULL && last) { /* leave-last-out on an event CSV */
    if (strcmp(kind, "seq") != 0)
      usage_error(a, "--protocol last goes with --kind seq");
    if (items != NULL)
      usage_error(a, "--items is not used by --protocol last");
    if ((rc = hr_eval_last_seq(data, users, strcmp(target, "test") == 0,
                               &so, no_context, topk, &res, &err)) != 0)
      return fail(&err, rc);
    printf("{\"protocol\":\"last\",\"target\":\"%s\",\"context\":%s,"
           "\"k\":10,\"HR@10\":%.6f,\"NDCG@10\":%.6f,\"MRR@10\":%.6f,"
           "\"coverage@10\":%.6f,\"users\":%zu,\"n_items\":%zu,"
           "\"train_seconds\":%.3f}\n",
           target, no_context ? "false" : "true", res.hr, res.ndcg, res.mrr,
           res.coverage, res.users, res.n_items, res.train_seconds);
    return 0;
  }
  if (data != NULL)
    return eval_ctx(a, data, protocol, target, topk, threshold, model,
                    no_context, udrop, &so, nbr_w, nbr_s, items);
  if (split == NULL)
    usage_error(a, "--split DIR (protocol loo) or --data PATH (ctx80) is "
                   "required");
  if (strcmp(kind, "seq") == 0 && rerank > 0) {
    hr_rerank_opts_t ro;
    hr_eval_result_t base;
    hr_rerank_opts_default(&ro);
    ro.n_cand = rerank;
    rc = hr_eval_loo_rerank(split, strcmp(target, "test") == 0, &so, &ro,
                            topk, &res, &base, &err);
    if (rc == 0)
      fprintf(stderr, "retrieval alone: HR@10 %.6f NDCG@10 %.6f\n", base.hr,
              base.ndcg);
  } else if (strcmp(kind, "seq") == 0)
    rc = hr_eval_loo_seq(split, strcmp(target, "test") == 0, &so, items, topk,
                         &res, &err);
  else if (strcmp(kind, "ials") == 0)
    rc = hr_eval_loo(split, strcmp(target, "test") == 0, &o, topk, &res,
                     &err);
  else
    usage_error(a, "--kind must be ials or seq");
  if (rc != 0)
    return fail(&err, rc);
  printf("{\"protocol\":\"loo\",\"target\":\"%s\",\"k\":10,\"HR@10\":%.6f,"
         "\"NDCG@10\":%.6f,\"MRR@10\":%.6f,\"coverage@10\":%.6f,"
         "\"users\":%zu,\"n_items\":%zu,\"train_seconds\":%.3f}\n",
         target, res.hr, res.ndcg, res.mrr, res.coverage, res.users,
         res.n_items, res.train_seconds);
  return 0;
}

/* ------------------------------------------------------------------ gen */

static int cmd_gen(args_t *a) {
  hr_gen_opts_t o = {2000, 500, 60000, 1, 1.0};
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

static int cmd_index(args_t *a) {
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

static int cmd_check(args_t *a) {
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

int main(int argc, char **argv) {
  args_t a = {argc - 1, argv + 1, 0, NULL};

  if (argc < 2) {
    fputs(usage_main, stderr);
    return 2;
  }
  if (help(argv[1])) {
    fputs(usage_main, stdout);
    return 0;
  }
  if (strcmp(argv[1], "fit") == 0)
    return cmd_fit(&a);
  if (strcmp(argv[1], "eval") == 0)
    return cmd_eval(&a);
  if (strcmp(argv[1], "gen") == 0)
    return cmd_gen(&a);
  if (strcmp(argv[1], "index") == 0)
    return cmd_index(&a);
  if (strcmp(argv[1], "check-index") == 0)
    return cmd_check(&a);
  fprintf(stderr, "%s: unknown command \"%s\"\n\n%s", prog, argv[1],
          usage_main);
  return 2;
}
