/* counts.c -- impressions and users of experiment variants, counted in
 * the process and added to Redis in batches (experiments.h). */
#include "hr/ctxstore.h"
#include "hr/experiments.h"
#include "hr/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define IDS_MAX 65536            /* user ids in one batch, all variants */
#define SET_SLOTS (2 * IDS_MAX)  /* open addressing, at most half full */

typedef struct {
  uint8_t x, v;
  char *id;
} pend_id;

typedef struct {
  uint64_t imp[HR_EXP_MAX][HR_EXP_MAX_VARIANTS];
  pend_id *ids;   /* IDS_MAX */
  size_t n_ids;
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
  uint64_t *seen;            /* SET_SLOTS hashes of (x, v, id) in `cur`;
                                0 = empty */
  unsigned long dropped;
} g = {.mu = PTHREAD_MUTEX_INITIALIZER,
       .flush_mu = PTHREAD_MUTEX_INITIALIZER,
       .cv = PTHREAD_COND_INITIALIZER};

static uint64_t id_hash(int x, int v, const char *id, size_t len) {
  char salt[3] = {(char)('a' + x), (char)('a' + v), 0};
  uint64_t h = hr_exp_hash(salt, id, len);
  return h ? h : 1;
}

/* Adds (x, v, id) to the pending batch unless it is there; takes `id`
 * (malloc'd) or frees it. Called with g.mu held. */
static void add_id_locked(int x, int v, char *id, uint64_t h) {
  size_t at = (size_t)(h % SET_SLOTS);
  while (g.seen[at] != 0) {
    if (g.seen[at] == h) { /* already pending */
      free(id);
      return;
    }
    at = (at + 1) % SET_SLOTS;
  }
  if (g.cur.n_ids >= IDS_MAX) {
    g.dropped++;
    free(id);
    return;
  }
  g.seen[at] = h;
  g.cur.ids[g.cur.n_ids++] = (pend_id){(uint8_t)x, (uint8_t)v, id};
}

void hr_exp_count_impression(int x, int v, const char *id, size_t id_len) {
  uint64_t h = id_hash(x, v, id, id_len);
  char *copy;

  if (x < 0 || x >= HR_EXP_MAX || v < 0 || v >= HR_EXP_MAX_VARIANTS)
    return;
  copy = malloc(id_len + 1);
  pthread_mutex_lock(&g.mu);
  if (!g.started || copy == NULL) {
    if (g.started)
      g.dropped++;
    pthread_mutex_unlock(&g.mu);
    free(copy);
    return;
  }
  memcpy(copy, id, id_len);
  copy[id_len] = '\0';
  g.cur.imp[x][v]++;
  add_id_locked(x, v, copy, h);
  if (g.cur.n_ids >= IDS_MAX / 2) /* write before the batch fills up */
    pthread_cond_signal(&g.cv);
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
  rc = n > 0 ? hr_ctxstore_exp_add(cs, add, n, err) : 0;
  free(ids);
  return rc;
}

int hr_exp_counts_flush(hr_error_t *err) {
  batch_t b;
  pend_id *fresh;
  int rc;

  pthread_mutex_lock(&g.flush_mu);
  fresh = malloc(sizeof(pend_id) * IDS_MAX);
  pthread_mutex_lock(&g.mu);
  if (!g.started || fresh == NULL) {
    int started = g.started;
    pthread_mutex_unlock(&g.mu);
    pthread_mutex_unlock(&g.flush_mu);
    free(fresh);
    return started ? hr_error_set(err, HR_ENOMEM, "", "out of memory") : 0;
  }
  b = g.cur;
  memset(&g.cur, 0, sizeof(g.cur));
  g.cur.ids = fresh;
  memset(g.seen, 0, sizeof(uint64_t) * SET_SLOTS);
  pthread_mutex_unlock(&g.mu);

  rc = write_batch(&b, err);
  if (rc != 0) { /* keep it for the next flush */
    pthread_mutex_lock(&g.mu);
    for (int x = 0; x < HR_EXP_MAX; x++)
      for (int v = 0; v < HR_EXP_MAX_VARIANTS; v++)
        g.cur.imp[x][v] += b.imp[x][v];
    for (size_t i = 0; i < b.n_ids; i++) {
      const pend_id *p = &b.ids[i];
      add_id_locked(p->x, p->v, p->id,
                    id_hash(p->x, p->v, p->id, strlen(p->id)));
    }
    pthread_mutex_unlock(&g.mu);
    b.n_ids = 0; /* taken back */
  }
  batch_free(&b);
  pthread_mutex_unlock(&g.flush_mu);
  return rc;
}

static void *flusher(void *arg) {
  (void)arg;
  pthread_mutex_lock(&g.mu);
  while (!g.stop) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += g.cfg.experiments_flush_ms / 1000;
    until.tv_nsec += (long)(g.cfg.experiments_flush_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
      until.tv_sec++;
      until.tv_nsec -= 1000000000L;
    }
    while (!g.stop && g.cur.n_ids < IDS_MAX / 2 &&
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
  g.cfg = *cfg;
  g.stop = 0;
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
    unsigned long lost = 0;
    for (int x = 0; x < HR_EXP_MAX; x++)
      for (int v = 0; v < HR_EXP_MAX_VARIANTS; v++)
        lost += g.cur.imp[x][v];
    hr_log(HR_LOG_ERROR, "experiment_counts_lost",
           json_pack("{s:s,s:I,s:I}", "reason", err.msg, "impressions",
                     (json_int_t)lost, "users", (json_int_t)g.cur.n_ids));
  }
  pthread_mutex_lock(&g.mu);
  g.started = 0;
  batch_free(&g.cur);
  free(g.seen);
  g.seen = NULL;
  pthread_mutex_unlock(&g.mu);
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
