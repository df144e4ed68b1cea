/* recall.c -- `hyperrec-bench recall`: what the served retrieval finds of
 * the exact top, for the users of a live Redis, through the server's own
 * pipeline (hr_rec_rank).
 *
 *   hyperrec-bench recall --models DIR [--redis HOST:PORT] [--users 1000]
 *                  [--k 200] [--ef LIST] [--kept LIST] [--user-prefix u]
 *                  [--user-width 5] [--seed 1]
 *
 * Opens the newest version of DIR/default and, per user (u00001 ...), reads
 * the user's context and history from Redis as the server does, then asks
 * for the top k (k = ann.candidates: the candidates themselves) in a random
 * context (a location and mood the generated data uses, a time in the day
 * before now) four ways:
 *   exact  every item scored (ann.min_items above the catalogue): the truth
 *   ann    the index searched for this request (ann.kept 0)
 *   first  the two-stage path's first request: the index searched for the
 *          neutral vector, ann.kept candidates kept
 *   kept   a second request in another context, scoring the kept ones
 * and prints one JSON line per (ef, kept): recall@k of each against exact,
 * and the mean microseconds per request of each. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <dirent.h>

#include "hr/config.h"
#include "hr/ctxstore.h"
#include "hr/recommend.h"

int hr_bench_recall(int argc, char **argv);

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The newest numeric version directory of dir/default. */
static int newest_version(const char *dir, char *out, size_t n) {
  char slot[PATH_MAX];
  unsigned long long best = 0;
  struct dirent *e;
  DIR *d;
  snprintf(slot, sizeof(slot), "%s/default", dir);
  if ((d = opendir(slot)) == NULL)
    return -1;
  while ((e = readdir(d)) != NULL) {
    char *end;
    unsigned long long v = strtoull(e->d_name, &end, 10);
    if (*end == '\0' && e->d_name[0] != '\0' && v > best)
      best = v;
  }
  closedir(d);
  if (best == 0)
    return -1;
  snprintf(out, n, "%s/%llu", slot, best);
  return 0;
}

static int parse_list(const char *s, int *v, int max) {
  int n = 0;
  while (s && *s && n < max) {
    v[n++] = atoi(s);
    s = strchr(s, ',');
    if (s)
      s++;
  }
  return n;
}

typedef struct {
  double hits, total, seconds;
  size_t runs;
} tally_t;

static void add_recall(tally_t *t, const hr_rec_result_t *r,
                       const long *truth, size_t nt, double dt) {
  for (size_t a = 0; a < nt; a++)
    for (size_t b = 0; b < r->n_items; b++)
      if (r->items[b].index == truth[a]) {
        t->hits++;
        break;
      }
  t->total += (double)nt;
  t->seconds += dt;
  t->runs++;
}

/* What measure() needs. */
typedef struct {
  hr_model_t *m;
  hr_ctxstore_t *cs;
  hr_rec_worker_t *w;
  const hr_config_t *cfg;
  const char *vdir, *prefix;
  int users, k, width;
  unsigned seed;
  long *truth;
} run_t;

static const char *const locs[] = {"home", "work", "commute", "gym"};
static const char *const moods[] = {"happy", "calm", "sad", "energetic",
                                    "tired"};

/* One JSON line for beam ef and ann.kept kept. 0, or -1 (err set). */
static int measure(const run_t *x, int ef, int kept, hr_error_t *err) {
  hr_snapshot_t snap = {0};
  tally_t t_exact = {0}, t_ann = {0}, t_first = {0}, t_kept = {0};
  hr_user_state_t st = {0};
  unsigned rs = x->seed;
  long long base_ts = (long long)time(NULL);
  size_t unreadable = 0;
  int rc = 0;

  snap.model = x->m;
  for (int u = 1; u <= x->users && rc == 0; u++) {
    char uid[64];
    snprintf(uid, sizeof(uid), "%s%0*d", x->prefix, x->width, u);
    if (hr_ctxstore_read_user(x->cs, uid, (size_t)x->cfg->redis.history_cap,
                              &st, err) != 0) {
      unreadable++;
      continue;
    }
    for (int pass = 0; pass < 2 && rc == 0; pass++) {
      hr_recommend_req_t r;
      hr_rec_result_t res;
      hr_config_t c = *x->cfg;
      size_t nt;
      double t0;
      memset(&r, 0, sizeof(r));
      r.user_id = uid;
      r.k = x->k;
      rs = rs * 1103515245u + 12345u;
      r.ts = base_ts - (long long)((rs >> 8) % 86400);
      r.ctx[1] = locs[(rs >> 4) % 4];
      r.ctx[2] = moods[(rs >> 12) % 5];
      /* the truth: every item scored, same vector and exclusions */
      c.ann.min_items = INT_MAX;
      c.recommend.user_cache_mb = 0;
      t0 = now_s();
      if ((rc = hr_rec_rank(x->w, &snap, &c, &r, &st, 0, &res, err)) != 0)
        break;
      add_recall(&t_exact, &res, NULL, 0, now_s() - t0);
      for (nt = 0; nt < res.n_items; nt++)
        x->truth[nt] = res.items[nt].index;
      /* the index for this request alone */
      c = *x->cfg;
      c.ann.ef = ef;
      c.ann.kept = 0;
      c.recommend.user_cache_mb = 0;
      t0 = now_s();
      if ((rc = hr_rec_rank(x->w, &snap, &c, &r, &st, 0, &res, err)) != 0)
        break;
      add_recall(&t_ann, &res, x->truth, nt, now_s() - t0);
      /* two-stage: the first request keeps, the second uses them */
      c = *x->cfg;
      c.ann.ef = ef;
      c.ann.kept = kept;
      t0 = now_s();
      if ((rc = hr_rec_rank(x->w, &snap, &c, &r, &st, 0, &res, err)) != 0)
        break;
      add_recall(pass == 0 ? &t_first : &t_kept, &res, x->truth, nt,
                 now_s() - t0);
    }
  }
#define RATE(t) ((t).total ? (t).hits / (t).total : 0)
#define US(t) ((t).runs ? 1e6 * (t).seconds / (double)(t).runs : 0)
  if (rc == 0)
    printf("{\"bench\":\"recall\",\"model\":\"%s\",\"kind\":\"%s\","
           "\"items\":%zu,\"dim\":%d,\"users\":%zu,\"k\":%d,\"ef\":%d,"
           "\"kept\":%d,\"recall_ann\":%.4f,\"recall_first\":%.4f,"
           "\"recall_kept\":%.4f,\"us_exact\":%.1f,\"us_ann\":%.1f,"
           "\"us_first\":%.1f,\"us_kept\":%.1f,\"unreadable\":%zu}\n",
           x->vdir, hr_model_kind(x->m), hr_model_n_items(x->m),
           hr_model_dim(x->m), t_kept.runs, x->k, ef, kept, RATE(t_ann),
           RATE(t_first), RATE(t_kept), US(t_exact), US(t_ann), US(t_first),
           US(t_kept), unreadable);
#undef RATE
#undef US
  fflush(stdout);
  hr_user_state_destroy(&st);
  hr_snapshot_clear_aux(&snap);
  return rc;
}

int hr_bench_recall(int argc, char **argv) {
  const char *models = NULL, *redis = "127.0.0.1:6379";
  int efs[16] = {0}, keeps[16] = {0}, n_ef = 0, n_keep = 0, rc = 0;
  char vdir[PATH_MAX], host[256], *colon;
  hr_error_t err = {0};
  hr_config_t cfg;
  run_t x = {0};

  x.users = 1000;
  x.k = 200;
  x.width = 5;
  x.prefix = "u";
  x.seed = 1;
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--help") == 0) {
      printf("usage: hyperrec-bench recall --models DIR [--redis HOST:PORT] "
             "[--users 1000] [--k 200]\n       [--ef LIST] [--kept LIST] "
             "[--user-prefix u] [--user-width 5] [--seed 1]\n");
      return 0;
    }
    if (v == NULL)
      goto usage;
    if (strcmp(a, "--models") == 0)
      models = v;
    else if (strcmp(a, "--redis") == 0)
      redis = v;
    else if (strcmp(a, "--users") == 0)
      x.users = atoi(v);
    else if (strcmp(a, "--k") == 0)
      x.k = atoi(v);
    else if (strcmp(a, "--ef") == 0)
      n_ef = parse_list(v, efs, 16);
    else if (strcmp(a, "--kept") == 0)
      n_keep = parse_list(v, keeps, 16);
    else if (strcmp(a, "--user-prefix") == 0)
      x.prefix = v;
    else if (strcmp(a, "--user-width") == 0)
      x.width = atoi(v);
    else if (strcmp(a, "--seed") == 0)
      x.seed = (unsigned)atoi(v);
    else
      goto usage;
    i++;
  }
  snprintf(host, sizeof(host), "%s", redis);
  if (models == NULL || x.users < 1 || x.k < 1 || x.k > 10000 ||
      (colon = strrchr(host, ':')) == NULL)
    goto usage;
  *colon = '\0';
  if (newest_version(models, vdir, sizeof(vdir)) != 0) {
    fprintf(stderr, "recall: no version under %s/default\n", models);
    return 1;
  }
  hr_config_defaults(&cfg);
  snprintf(cfg.redis.host, sizeof(cfg.redis.host), "%s", host);
  cfg.redis.port = atoi(colon + 1);
  cfg.recommend.max_k = x.k;
  cfg.ann.candidates = x.k;
  if (n_ef == 0)
    efs[n_ef++] = cfg.ann.ef;
  if (n_keep == 0)
    keeps[n_keep++] = cfg.ann.kept;
  x.cfg = &cfg;
  x.vdir = vdir;
  if ((x.m = hr_model_open(vdir, &err)) == NULL ||
      (x.cs = hr_ctxstore_new(&cfg)) == NULL ||
      (x.w = hr_rec_worker_new()) == NULL ||
      (x.truth = malloc(sizeof(long) * (size_t)x.k)) == NULL)
    rc = err.code ? -1 : hr_error_set(&err, HR_ENOMEM, NULL, "out of memory");
  for (int e = 0; e < n_ef && rc == 0; e++)
    for (int q = 0; q < n_keep && rc == 0; q++)
      rc = measure(&x, efs[e], keeps[q], &err);
  if (rc != 0)
    fprintf(stderr, "recall: %s\n", err.msg);
  free(x.truth);
  hr_rec_worker_free(x.w);
  hr_ctxstore_free(x.cs);
  hr_model_free(x.m);
  return rc != 0;
usage:
  fprintf(stderr, "usage: hyperrec-bench recall --models DIR "
                  "[--redis HOST:PORT] [--users 1000] [--k 200]\n"
                  "       [--ef LIST] [--kept LIST] [--user-prefix u] "
                  "[--user-width 5] [--seed 1]\n");
  return 2;
}
