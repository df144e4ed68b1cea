/* cli.c -- the trainer's option parsing helpers (cli.h). */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const hr_cli_prog = "hyperrec-train";

const char hr_cli_usage_hyper[] =
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

__attribute__((format(printf, 2, 3), noreturn))
void usage_error(const args_t *a, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "%s: ", hr_cli_prog);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\n(try `%s %s --help`)\n", hr_cli_prog, a->argv[0]);
  exit(2);
}

/* The value of --name (as "--name V" or "--name=V"). */
const char *value(args_t *a, const char *arg, const char *name) {
  size_t n = strlen(name);
  if (arg[n] == '=')
    return arg + n + 1;
  if (a->i + 1 >= a->argc)
    usage_error(a, "%s needs a value", name);
  return a->argv[++a->i];
}

int is_opt(const char *arg, const char *name) {
  size_t n = strlen(name);
  return strncmp(arg, name, n) == 0 && (arg[n] == '\0' || arg[n] == '=');
}

long long int_opt(args_t *a, const char *name, const char *v,
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

double dbl_opt(args_t *a, const char *name, const char *v, double lo,
                      double hi) {
  char *end;
  double x;
  errno = 0;
  x = strtod(v, &end);
  if (*v == '\0' || *end != '\0' || errno != 0 || !(x >= lo && x <= hi))
    usage_error(a, "%s: \"%s\" is not a number in [%g, %g]", name, v, lo, hi);
  return x;
}

float num_opt(args_t *a, const char *name, const char *v, double lo,
                     double hi) {
  return (float)dbl_opt(a, name, v, lo, hi);
}

/* 1 when arg is option `name`: *out gets its value, checked against
 * [lo, hi] (a usage error otherwise). */
int iopt(args_t *a, const char *arg, const char *name, long long lo,
         long long hi, int *out) {
  if (!is_opt(arg, name))
    return 0;
  *out = (int)int_opt(a, name, value(a, arg, name), lo, hi);
  return 1;
}

int fopt(args_t *a, const char *arg, const char *name, double lo, double hi,
         float *out) {
  if (!is_opt(arg, name))
    return 0;
  *out = num_opt(a, name, value(a, arg, name), lo, hi);
  return 1;
}

int dopt(args_t *a, const char *arg, const char *name, double lo, double hi,
         double *out) {
  if (!is_opt(arg, name))
    return 0;
  *out = dbl_opt(a, name, value(a, arg, name), lo, hi);
  return 1;
}

/* --seed and --threads, which every model takes. */
static int seed_threads_opt(args_t *a, const char *arg, uint64_t *seed,
                            int *threads) {
  if (is_opt(arg, "--seed")) {
    *seed = (uint64_t)int_opt(a, "--seed", value(a, arg, "--seed"), 0,
                              INT64_MAX);
    return 1;
  }
  return iopt(a, arg, "--threads", 1, 16, threads);
}

/* Model options shared by fit and eval; returns 1 when arg was one. */
int hyper_opt(args_t *a, const char *arg, hr_ials_opts_t *o) {
  if (strcmp(arg, "--quiet") == 0)
    o->progress = 0;
  else if (strcmp(arg, "--no-index") == 0)
    o->index = 0;
  else if (!(iopt(a, arg, "--factors", 1, 256, &o->factors) ||
             fopt(a, arg, "--reg", 1e-6, 1e9, &o->p.reg) ||
             fopt(a, arg, "--alpha", 0, 1e6, &o->p.alpha) ||
             fopt(a, arg, "--decay", 1e-6, 1, &o->p.decay) ||
             fopt(a, arg, "--floor", 0, 1, &o->p.floor) ||
             iopt(a, arg, "--cap", 0, 1000000000, &o->p.cap) ||
             iopt(a, arg, "--iters", 0, 1000, &o->iters) ||
             seed_threads_opt(a, arg, &o->seed, &o->threads) ||
             iopt(a, arg, "--ann-m", 2, 256, &o->ann.M) ||
             iopt(a, arg, "--ann-efc", 1, 100000, &o->ann.ef_construction)))
    return 0;
  o->ann.threads = o->threads;
  o->ann.seed = o->seed;
  return 1;
}

int help(const char *arg) {
  return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

int fail(const hr_error_t *err, int rc) {
  fprintf(stderr, "%s: %s\n", hr_cli_prog, err->code ? err->msg : hr_strerror(rc));
  return 1;
}

/* --budget: seconds, or a number with s, m or h. */
double duration_opt(args_t *a, const char *name, const char *v) {
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
int ials_model_opt(const char *arg) {
  static const char *const names[] = {"--factors", "--reg", "--alpha",
                                      "--decay", "--floor", "--cap",
                                      "--iters"};
  for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++)
    if (is_opt(arg, names[k]))
      return 1;
  return 0;
}

/* Options of the sequential model (--kind seq); returns 1 when arg was
 * one. */
int seq_opt(args_t *a, const char *arg, hr_seq_opts_t *o) {
  if (strcmp(arg, "--no-time") == 0)
    o->dims.n_gap = 0;
  else if (strcmp(arg, "--tie-shuffle") == 0)
    o->tie_shuffle = 1;
  else if (strcmp(arg, "--no-context") == 0)
    o->ctx_slots = -1; /* no context features */
  else if (is_opt(arg, "--report"))
    o->report = value(a, arg, "--report");
  else if (is_opt(arg, "--encoder")) {
    const char *v = value(a, arg, "--encoder");
    if ((o->dims.enc = hr_seq_enc_parse(v)) < 0)
      usage_error(a, "--encoder %s: transformer, gru or cnn", v);
    /* the GRU and the CNN replace the blocks */
    if (o->dims.enc != HR_SEQ_TRANSFORMER)
      o->dims.blocks = 0;
    else if (o->dims.blocks == 0) { /* back to the transformer's own */
      hr_seq_opts_t d;
      hr_seq_opts_default(&d);
      o->dims.blocks = d.dims.blocks;
    }
  } else
    return iopt(a, arg, "--dim", 1, 1024, &o->dims.d) ||
           iopt(a, arg, "--len", 1, HR_SEQ_MAX_LEN, &o->dims.L) ||
           iopt(a, arg, "--blocks", 0, HR_SEQ_MAX_BLOCKS, &o->dims.blocks) ||
           iopt(a, arg, "--ffn", 1, 4096, &o->dims.ffn) ||
           iopt(a, arg, "--members", 1, HR_SEQ_MAX_MEMBERS, &o->members) ||
           iopt(a, arg, "--epochs", 0, 10000, &o->epochs) ||
           iopt(a, arg, "--batch", 1, 4096, &o->batch) ||
           fopt(a, arg, "--lr", 1e-7, 1, &o->lr) ||
           fopt(a, arg, "--wd", 0, 1, &o->weight_decay) ||
           fopt(a, arg, "--dropout", 0, 0.95, &o->dropout) ||
           fopt(a, arg, "--block-dropout", 0, 0.95, &o->block_dropout) ||
           seed_threads_opt(a, arg, &o->seed, &o->threads) ||
           fopt(a, arg, "--long-term", 0, 1000, &o->long_term) ||
           fopt(a, arg, "--id-dropout", 0, 0.95, &o->id_dropout) ||
           iopt(a, arg, "--window", 1, HR_SEQ_MAX_WIN, &o->dims.win) ||
           iopt(a, arg, "--filters-h", 1, 256, &o->dims.nh) ||
           iopt(a, arg, "--filters-v", 1, 256, &o->dims.nv) ||
           iopt(a, arg, "--negatives", 0, 1 << 20, &o->negatives);
  return 1;
}

/* The denoising autoencoder's options (--kind dae); 1 when arg was one. */
int dae_opt(args_t *a, const char *arg, hr_dae_opts_t *o) {
  return iopt(a, arg, "--dae-dim", 1, HR_MODEL_MAX_DIM, &o->dim) ||
         iopt(a, arg, "--dae-epochs", 0, 100000, &o->epochs) ||
         fopt(a, arg, "--dae-dropout", 0, 0.95, &o->dropout) ||
         fopt(a, arg, "--dae-decay", 1e-6, 1, &o->decay) ||
         fopt(a, arg, "--dae-lr", 1e-7, 1, &o->lr) ||
         fopt(a, arg, "--dae-wd", 0, 1, &o->weight_decay);
}
