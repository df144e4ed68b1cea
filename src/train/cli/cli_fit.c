/* cli_fit.c -- `hyperrec-train fit`: argv into hr_fit_opts_t, then
 * hr_fit_run (src/train/fit.c). */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char usage_fit[] =
    "usage: hyperrec-train fit [--data PATH]... [--format movielens|csv]\n"
    "                          [--min-rating R]\n"
    "                          [--from-redis HOST:PORT [--stream KEY]]\n"
    "                          [--since T] --out MODELS/NAME [--items PATH]\n"
    "                          [--users PATH] [model options]\n"
    "\n"
    "  --data PATH          interactions: MovieLens `user item rating ts`\n"
    "                       (TAB or \"::\"), or CSV with a header\n"
    "                       user_id,item_id[,rating][,ts][,<context>...];\n"
    "                       repeat it for several files (at most 16)\n"
    "  --format F           movielens or csv, for every file (default: by\n"
    "                       each file's name, csv for *.csv)\n"
    "  --min-rating R       leave out the files' rows rated below R (kept:\n"
    "                       rows without a rating); the manifest counts them\n"
    "  --from-redis H:P     the server's event stream too (or alone). Give\n"
    "                       at least one source; an event found in two\n"
    "                       sources (same user, item and ts) counts once\n"
    "  --stream KEY         stream key (default hr:events)\n"
    "  --since T            only rows from T on: a window back from now\n"
    "                       (30d, 12h, 2w; s m h d w) or a time (unix\n"
    "                       seconds, 2026-11-01, 2026-11-01T08:00:00Z).\n"
    "                       Rows without a time are kept\n"
    "  --items PATH         item catalogue CSV (item_id,<attributes>...):\n"
    "                       adds items without interactions\n"
    "  --users PATH         user attributes: users.csv (user_id,<attributes>\n"
    "                       ...) or u.user; the prior for new users and the\n"
    "                       seq model learn them (request field user_attrs)\n"
    "  --out MODELS/NAME    the model slot; prints the new version's path\n"
    "  --keep N             keep the N newest versions of the slot, remove\n"
    "                       older ones (default 5; 0 keeps every version)\n"
    "  --kind K             train that model: pop, ials, ease (--lambda 200\n"
    "                       --ease-decay 0.9), dae (the denoising\n"
    "                       autoencoder: --dae-dim 200 --dae-epochs 100\n"
    "                       --dae-dropout 0.7 --dae-decay 0.9 --dae-lr 0.001\n"
    "                       --dae-wd 0.01) or seq (the sequential model,\n"
    "                       whose options, those of `eval --kind seq`,\n"
    "                       follow it). Without --kind (and without iALS\n"
    "                       model options, which imply --kind ials), fit\n"
    "                       chooses: it trains the candidates on the data\n"
    "                       minus each user's newest item, scores them there,\n"
    "                       keeps the best NDCG@10 (the cheaper within one\n"
    "                       standard error), retrains it on everything and\n"
    "                       writes report.json into the version\n"
    "                       (docs/training.md)\n"
    "  --budget D           the whole choice and refit within D (600, 90s,\n"
    "                       10m, 2h; default 10m): a candidate that would\n"
    "                       overrun it is left out and reported\n"
    "  --force              mark the version forced: the server's quality\n"
    "                       gate loads it even when it scores below the\n"
    "                       serving one\n"
    "  --report-anomalies N list the N most anomalous users (bots, scripted\n"
    "                       clicking) in report.json, with their scores\n"
    "  --drop-anomalous Q   train without the share Q (at most 0.5) of\n"
    "                       users with the highest anomaly scores\n"
    "\n";

/* --since: a window back from now (a number with s, m, h, d or w), a
 * date (YYYY-MM-DD, UTC), a UTC time (YYYY-MM-DDTHH:MM:SSZ) or unix
 * seconds; the time from which rows are kept. */
static int64_t since_opt(args_t *a, const char *v, time_t now) {
  static const struct { char c; double s; } units[] = {
      {'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}, {'w', 604800}};
  struct tm tm = {0};
  char *end;
  const char *rest;

  errno = 0;
  double x = strtod(v, &end);
  for (size_t k = 0; end != v && k < sizeof(units) / sizeof(units[0]); k++)
    if (end[0] == units[k].c && end[1] == '\0' && errno == 0 && x > 0 &&
        x * units[k].s <= 100.0 * 365 * 86400)
      return (int64_t)now - (int64_t)(x * units[k].s);
  if ((rest = strptime(v, "%Y-%m-%d", &tm)) != NULL &&
      (*rest == '\0' ||
       ((rest = strptime(rest, "T%H:%M:%SZ", &tm)) != NULL && *rest == '\0')))
    return (int64_t)timegm(&tm);
  if (end != v && *end == '\0' && errno == 0 && x >= 0 && x <= 4e9 &&
      x == (double)(int64_t)x)
    return (int64_t)x;
  usage_error(a, "--since: \"%s\" is neither a window (30d, 12h, 2w) nor "
                 "a time (unix seconds, 2026-11-01, 2026-11-01T08:00:00Z)",
              v);
  return 0;
}

static void fit_args(args_t *a, hr_fit_opts_t *o) {
  int ials_flags = 0;
  for (a->i = 1; a->i < a->argc; a->i++) {
    const char *arg = a->argv[a->i];
    if (help(arg)) {
      fputs(usage_fit, stdout);
      fputs(hr_cli_usage_hyper, stdout);
      exit(0);
    } else if (is_opt(arg, "--kind"))
      o->kind = value(a, arg, "--kind");
    else if (o->kind != NULL && strcmp(o->kind, "seq") == 0 &&
             seq_opt(a, arg, &o->seq))
      ;
    else if (o->kind != NULL && strcmp(o->kind, "dae") == 0 &&
             dae_opt(a, arg, &o->dae))
      ;
    else if (o->kind != NULL && strcmp(o->kind, "ease") == 0 &&
             is_opt(arg, "--lambda"))
      o->ease.lambda = num_opt(a, "--lambda", value(a, arg, "--lambda"),
                               1e-3, 1e9);
    else if (o->kind != NULL && strcmp(o->kind, "ease") == 0 &&
             is_opt(arg, "--ease-decay"))
      o->ease.decay = num_opt(a, "--ease-decay",
                              value(a, arg, "--ease-decay"), 1e-6, 1);
    else if (is_opt(arg, "--data")) {
      if (o->n_data == HR_FIT_MAX_DATA)
        usage_error(a, "at most %d --data files", HR_FIT_MAX_DATA);
      o->data[o->n_data++] = value(a, arg, "--data");
    } else if (is_opt(arg, "--since")) {
      o->since = since_opt(a, value(a, arg, "--since"), time(NULL));
      o->since_set = 1;
    }
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
    else if (is_opt(arg, "--report-anomalies"))
      o->report_anomalies = (size_t)int_opt(a, "--report-anomalies",
                                            value(a, arg,
                                                  "--report-anomalies"),
                                            0, 100000);
    else if (is_opt(arg, "--drop-anomalous"))
      o->drop_anomalous = dbl_opt(a, "--drop-anomalous",
                                  value(a, arg, "--drop-anomalous"), 0, 0.5);
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
      strcmp(o->kind, "seq") != 0 && strcmp(o->kind, "pop") != 0 &&
      strcmp(o->kind, "ease") != 0 && strcmp(o->kind, "dae") != 0)
    usage_error(a, "--kind must be pop, ials, ease, dae or seq");
  int nm = o->seq.members > 1 ? o->seq.members : 1;
  if (o->kind != NULL && strcmp(o->kind, "seq") == 0 &&
      nm * o->seq.dims.d + (o->seq.long_term > 0 ? o->ials.factors : 0) >
          HR_MODEL_MAX_DIM)
    usage_error(a, "--members %d x --dim %d (+ --factors %d with a "
                   "long-term part) is over %d, the widest model the "
                   "server loads", nm, o->seq.dims.d,
                o->seq.long_term > 0 ? o->ials.factors : 0, HR_MODEL_MAX_DIM);
  if (o->n_data == 0 && o->redis == NULL)
    usage_error(a, "give a source: --data PATH (one or more), --from-redis "
                   "HOST:PORT, or both");
  if (o->out == NULL || o->out[0] == '\0')
    usage_error(a, "--out MODELS/NAME is required");
  if (o->n_data == 0 && o->format != NULL)
    usage_error(a, "--format goes with --data, not --from-redis");
  if (o->n_data == 0 && o->min_rating_set)
    usage_error(a, "--min-rating goes with --data (a file's rating column); "
                   "the stream's events have none");
  if (o->format != NULL && strcmp(o->format, "csv") != 0 &&
      strcmp(o->format, "movielens") != 0)
    usage_error(a, "--format must be movielens or csv, not \"%s\"",
                o->format);
}

int cmd_fit(args_t *a) {
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

