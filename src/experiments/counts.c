/* counts.c -- impressions and users of experiment variants, counted in
 * the process and added to Redis in batches (experiments.h). */
#include "hr/ctxstore.h"
#include "hr/experiments.h"
#include "hr/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define IDS_MAX 65536            /* user ids in one batch, all variants */
#define IDS_EARLY (IDS_MAX / 8)  /* flush before the interval from here */
#define SET_SLOTS (2 * IDS_MAX)  /* open addressing, at most half full */

typedef struct {
  uint8_t x, v;
  char *id;
} pend_id;

typedef struct {
  uint64_t imp[HR_EXP_MAX][HR_EXP_MAX_VARIANTS];
  pend_id *ids;   /* IDS_MAX */
  size_t n_ids;
  char token[48]; /* set when the batch is first sent */
} batch_t;

static struct {
  pthread_mutex_t mu;        /* the pending batch */
  pthread_mutex_t flush_mu;  /* one flush at a time, so a flush returns
                                after every earlier impression is written */
  pthread_cond_t cv;
  pthread_t thread;
  int started, stop;
  hr_config_t cfg;
  batch_t cur;
  batch_t retry;             /* a batch that failed, sent again first
                                (under flush_mu); ids NULL when none */
  atomic_int failing;        /* the last flush failed: wait the interval */
  unsigned long tokens;      /* batches sent (under flush_mu) */
  uint64_t *seen;            /* SET_SLOTS hashes of (x, v, id) in `cur`;
                                0 = empty */
  unsigned long dropped;
} g = {.mu = PTHREAD_MUTEX_INITIALIZER,
       .flush_mu = PTHREAD_MUTEX_INITIALIZER};

static uint64_t id_hash(int x, int v, const char *id, size_t len) {
  char salt[3] = {(char)('a' + x), (char)('a' + v), 0};
  uint64_t h = hr_exp_hash(salt, id, len);
  return h ? h : 1;
}

/* Adds (x, v, id) to the pending batch unless it is there (a copy of id
 * is made only then). Called with g.mu held. */
static void add_id_locked(int x, int v, const char *id, size_t len,
                          uint64_t h) {
  size_t at = (size_t)(h % SET_SLOTS);
  char *copy;
  while (g.seen[at] != 0) {
    if (g.seen[at] == h) /* already pending */
      return;
    at = (at + 1) % SET_SLOTS;
  }
  if (g.cur.n_ids >= IDS_MAX || (copy = malloc(len + 1)) == NULL) {
    g.dropped++;
    return;
  }
  memcpy(copy, id, len);
  copy[len] = '\0';
  g.seen[at] = h;
  g.cur.ids[g.cur.n_ids++] = (pend_id){(uint8_t)x, (uint8_t)v, copy};
}

void hr_exp_count_impression(int x, int v, const char *id, size_t id_len) {
  uint64_t h;

  if (x < 0 || x >= HR_EXP_MAX || v < 0 || v >= HR_EXP_MAX_VARIANTS)
    return;
  h = id_hash(x, v, id, id_len);
  pthread_mutex_lock(&g.mu);
  if (g.started) {
    g.cur.imp[x][v]++;
    add_id_locked(x, v, id, id_len, h);
    if (g.cur.n_ids == IDS_EARLY) /* write before the batch fills up */
      pthread_cond_signal(&g.cv);
  }
  pthread_mutex_unlock(&g.mu);
}

static void batch_free(batch_t *b) {
  for (size_t i = 0; i < b->n_ids; i++)
    free(b->ids[i].id);
  free(b->ids);
  memset(b, 0, sizeof(*b));
}

/* The batch in Redis's terms: one entry per variant with something to
 * add. */
static int write_batch(const batch_t *b, hr_error_t *err) {
  hr_exp_add_t add[HR_EXP_MAX * HR_EXP_MAX_VARIANTS];
  const char **ids = NULL;
  size_t n = 0, at = 0;
  int rc;
  hr_ctxstore_t *cs = hr_ctxstore_thread();

  if (cs == NULL)
    return hr_error_set(err, HR_ENOMEM, "", "out of memory");
  if (b->n_ids > 0 && (ids = malloc(sizeof(char *) * b->n_ids)) == NULL)
    return hr_error_set(err, HR_ENOMEM, "", "out of memory");
  for (int x = 0; x < g.cfg.n_experiments; x++)
    for (int v = 0; v < g.cfg.experiments[x].n_variants; v++) {
      hr_exp_add_t *a = &add[n];
      a->experiment = g.cfg.experiments[x].name;
      a->variant = g.cfg.experiments[x].v[v].name;
      a->impressions = b->imp[x][v];
      a->ids = ids + at;
      a->n_ids = 0;
      for (size_t i = 0; i < b->n_ids; i++)
        if (b->ids[i].x == x && b->ids[i].v == v)
          ids[at + a->n_ids++] = b->ids[i].id;
      at += a->n_ids;
      if (a->impressions > 0 || a->n_ids > 0)
        n++;
    }
  rc = n > 0 ? hr_ctxstore_exp_add(cs, b->token, add, n, err) : 0;
  free(ids);
  return rc;
}

/* A token no other batch of any replica has: host, process, clock and a
 * counter, hashed. */
static void make_token(batch_t *b) {
  char host[64] = "", buf[160];
  struct timespec ts;
  int n;
  gethostname(host, sizeof(host) - 1);
  clock_gettime(CLOCK_REALTIME, &ts);
  n = snprintf(buf, sizeof(buf), "%s/%ld/%lld.%09ld/%lu", host,
               (long)getpid(), (long long)ts.tv_sec, ts.tv_nsec, ++g.tokens);
  snprintf(b->token, sizeof(b->token), "%016llx%016llx",
           (unsigned long long)hr_exp_hash("batch-a", buf, (size_t)n),
           (unsigned long long)hr_exp_hash("batch-b", buf, (size_t)n));
}

int hr_exp_counts_flush(hr_error_t *err) {
  batch_t b;
  pend_id *fresh = NULL;
  int rc = 0;

  pthread_mutex_lock(&g.flush_mu);
  if (!g.started)
    goto out;
  /* a batch that failed goes first, with its token: if its reply was
   * lost after Redis applied it, Redis ignores it now */
  if (g.retry.ids != NULL) {
    /* applied already (its reply was lost)? Then a cheap EXISTS says so
     * and the batch, which can be large, is not sent again */
    hr_ctxstore_t *cs = hr_ctxstore_thread();
    int applied;
    if (cs == NULL) {
      rc = hr_error_set(err, HR_ENOMEM, "", "out of memory");
      goto out;
    }
    if ((applied = hr_ctxstore_exp_applied(cs, g.retry.token, err)) < 0) {
      rc = err->code;
      goto out;
    }
    if (!applied && (rc = write_batch(&g.retry, err)) != 0)
      goto out;
    batch_free(&g.retry);
  }
  pthread_mutex_lock(&g.mu);
  int empty = g.cur.n_ids == 0;
  for (int x = 0; x < HR_EXP_MAX && empty; x++)
    for (int v = 0; v < HR_EXP_MAX_VARIANTS; v++)
      empty &= g.cur.imp[x][v] == 0;
  pthread_mutex_unlock(&g.mu);
  if (empty) /* new impressions may arrive now: the next flush has them */
    goto out;
  fresh = malloc(sizeof(pend_id) * IDS_MAX);
  if (fresh == NULL) {
    rc = hr_error_set(err, HR_ENOMEM, "", "out of memory");
    goto out;
  }
  pthread_mutex_lock(&g.mu);
  b = g.cur;
  memset(&g.cur, 0, sizeof(g.cur));
  g.cur.ids = fresh;
  if (b.n_ids > 0)
    memset(g.seen, 0, sizeof(uint64_t) * SET_SLOTS);
  pthread_mutex_unlock(&g.mu);
  make_token(&b);
  if ((rc = write_batch(&b, err)) != 0)
    g.retry = b; /* kept whole, token and all */
  else
    batch_free(&b);
out:
  atomic_store(&g.failing, rc != 0);
  pthread_mutex_unlock(&g.flush_mu);
  return rc;
}

static void *flusher(void *arg) {
  (void)arg;
  pthread_mutex_lock(&g.mu);
  while (!g.stop) {
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += g.cfg.experiments_flush_ms / 1000;
    until.tv_nsec += (long)(g.cfg.experiments_flush_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
      until.tv_sec++;
      until.tv_nsec -= 1000000000L;
    }
    /* the interval, or less when ids pile up -- but never less after a
     * failure, so an unreachable Redis is not retried in a tight loop */
    while (!g.stop &&
           (atomic_load(&g.failing) || g.cur.n_ids < IDS_EARLY) &&
           pthread_cond_timedwait(&g.cv, &g.mu, &until) != ETIMEDOUT)
      ;
    if (g.stop)
      break;
    pthread_mutex_unlock(&g.mu);
    hr_error_t err = {0};
    if (hr_exp_counts_flush(&err) != 0)
      hr_log(HR_LOG_WARN, "experiment_flush_failed",
             json_pack("{s:s}", "reason", err.msg));
    pthread_mutex_lock(&g.mu);
  }
  pthread_mutex_unlock(&g.mu);
  return NULL;
}

int hr_exp_counts_start(const hr_config_t *cfg) {
  if (cfg->n_experiments == 0 || g.started)
    return 0;
  pthread_condattr_t ca;
  g.cfg = *cfg;
  g.stop = 0;
  atomic_store(&g.failing, 0);
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&g.cv, &ca);
  pthread_condattr_destroy(&ca);
  g.seen = calloc(SET_SLOTS, sizeof(uint64_t));
  g.cur.ids = malloc(sizeof(pend_id) * IDS_MAX);
  if (g.seen == NULL || g.cur.ids == NULL)
    goto fail;
  g.started = 1;
  if (pthread_create(&g.thread, NULL, flusher, NULL) != 0) {
    g.started = 0;
    goto fail;
  }
  return 0;
fail:
  free(g.seen);
  free(g.cur.ids);
  g.seen = NULL;
  g.cur.ids = NULL;
  return HR_ENOMEM;
}

void hr_exp_counts_stop(void) {
  hr_error_t err = {0};
  if (!g.started)
    return;
  pthread_mutex_lock(&g.mu);
  g.stop = 1;
  pthread_cond_signal(&g.cv);
  pthread_mutex_unlock(&g.mu);
  pthread_join(g.thread, NULL);
  if (hr_exp_counts_flush(&err) != 0) {
    unsigned long lost = 0, ids;
    pthread_mutex_lock(&g.flush_mu);
    pthread_mutex_lock(&g.mu);
    for (int x = 0; x < HR_EXP_MAX; x++)
      for (int v = 0; v < HR_EXP_MAX_VARIANTS; v++)
        lost += g.cur.imp[x][v] + g.retry.imp[x][v];
    ids = g.cur.n_ids + g.retry.n_ids;
    pthread_mutex_unlock(&g.mu);
    pthread_mutex_unlock(&g.flush_mu);
    hr_log(HR_LOG_ERROR, "experiment_counts_lost",
           json_pack("{s:s,s:I,s:I}", "reason", err.msg, "impressions",
                     (json_int_t)lost, "users", (json_int_t)ids));
  }
  pthread_mutex_lock(&g.flush_mu); /* no flush on another thread now */
  pthread_mutex_lock(&g.mu);
  g.started = 0;
  batch_free(&g.cur);
  batch_free(&g.retry);
  pthread_cond_destroy(&g.cv);
  free(g.seen);
  g.seen = NULL;
  atomic_store(&g.failing, 0);
  pthread_mutex_unlock(&g.mu);
  pthread_mutex_unlock(&g.flush_mu);
}

unsigned long hr_exp_counts_dropped(void) {
  unsigned long d;
  pthread_mutex_lock(&g.mu);
  d = g.dropped;
  pthread_mutex_unlock(&g.mu);
  return d;
}

int hr_exp_parse_rid(const hr_config_t *cfg, const char *rid, int *x,
                     int *v) {
  const char *p, *dot;
  size_t len;

  if (strncmp(rid, "r1-", 3) != 0 || (p = strchr(rid, '.')) == NULL)
    return 0;
  p++;
  if ((dot = strchr(p, '.')) == NULL)
    return 0;
  len = (size_t)(dot - p);
  for (*x = 0; *x < cfg->n_experiments; (*x)++) {
    const hr_experiment_cfg_t *e = &cfg->experiments[*x];
    if (strlen(e->name) != len || strncmp(e->name, p, len) != 0)
      continue;
    for (*v = 0; *v < e->n_variants; (*v)++)
      if (strcmp(e->v[*v].name, dot + 1) == 0)
        return 1; /* a ".qa" tail makes the variant name differ */
    return 0;
  }
  return 0;
}
