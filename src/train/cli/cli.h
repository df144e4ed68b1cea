/* cli.h -- bin/hyperrec-train's command line (src/train/cli/, linked into
 * the trainer binary only): argv into the option structs of train.h and
 * lab.h, nothing else. Usage errors print the reason and exit with 2. */
#ifndef HR_TRAIN_CLI_H
#define HR_TRAIN_CLI_H

#include "hr/lab.h"

typedef struct {
  int argc;
  char **argv;
  int i;       /* the argument being parsed */
} args_t;

extern const char *const hr_cli_prog;     /* "hyperrec-train" */
extern const char hr_cli_usage_hyper[];   /* the model options' help */

__attribute__((format(printf, 2, 3), noreturn))
void usage_error(const args_t *a, const char *fmt, ...);
/** The value of --name (as "--name V" or "--name=V"). */
const char *value(args_t *a, const char *arg, const char *name);
/** arg is --name or --name=... */
int is_opt(const char *arg, const char *name);
long long int_opt(args_t *a, const char *name, const char *v, long long lo,
                  long long hi);
double dbl_opt(args_t *a, const char *name, const char *v, double lo,
               double hi);
float num_opt(args_t *a, const char *name, const char *v, double lo,
              double hi);
/** 1 when arg is option `name` (`--name V` or `--name=V`): *out gets V,
 *  checked against [lo, hi] (a usage error otherwise). */
int iopt(args_t *a, const char *arg, const char *name, long long lo,
         long long hi, int *out);
int fopt(args_t *a, const char *arg, const char *name, double lo, double hi,
         float *out);
int dopt(args_t *a, const char *arg, const char *name, double lo, double hi,
         double *out);
/** A duration: seconds, or a number with s, m or h (1 s .. 7 days). */
double duration_opt(args_t *a, const char *name, const char *v);
/** iALS options (and --seed, --threads, --quiet, --no-index, --ann-*):
 *  1 when arg was one. */
int hyper_opt(args_t *a, const char *arg, hr_ials_opts_t *o);
/** 1 for the iALS options that name a model (--factors, --reg, ...). */
int ials_model_opt(const char *arg);
/** The sequential model's options: 1 when arg was one. */
int seq_opt(args_t *a, const char *arg, hr_seq_opts_t *o);
/** The denoising autoencoder's options: 1 when arg was one. */
int dae_opt(args_t *a, const char *arg, hr_dae_opts_t *o);
int help(const char *arg);
/** Print err (or rc's text) and return 1. */
int fail(const hr_error_t *err, int rc);

int cmd_fit(args_t *a);
int cmd_eval(args_t *a);
int cmd_gen(args_t *a);
int cmd_index(args_t *a);
int cmd_check(args_t *a);

#endif
