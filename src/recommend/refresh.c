/* refresh.c -- the thread that keeps this replica's item lists in step
 * with Redis: the hidden set when its version moves, and the trending
 * counts from the event stream's new entries. */
#include "hr/ctxstore.h"
#include "hr/itemsets.h"
#include "hr/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STREAM_BATCH 2000  /* entries per XRANGE */
#define STREAM_ROUNDS 50   /* XRANGEs per round at most (catching up) */
#define TRENDING_TOP 1000  /* items published */

static struct {
  pthread_t t;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int running, stop, wake;
  hr_config_t cfg;
  hr_ctxstore_t *st;
  hr_trend_t *trend;
  long long hidden_version; /* -1: not read yet */
  char after[64];           /* the last stream entry read */
  int failing;              /* the last round failed (logged once) */
} R = {.mu = PTHREAD_MUTEX_INITIALIZER};

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int refresh_hidden(hr_error_t *err) {
  long long v;
  char **ids;
  size_t n;
  int rc;
  if ((rc = hr_ctxstore_hidden_version(R.st, &v, err)) != 0)
    return rc;
  if (v == R.hidden_version)
    return 0;
  if ((rc = hr_ctxstore_hidden_list(R.st, (size_t)R.cfg.items.max_hidden, &v,
                                    &ids, &n, err)) != 0)
    return rc;
  rc = hr_itemsets_publish(HR_SET_HIDDEN, (const char *const *)ids, NULL, n,
                           now_ms());
  hr_ctxstore_free_ids(ids, n);
  if (rc != 0)
    return hr_error_set(err, rc, "", "out of memory");
  if (R.hidden_version >= 0)
    hr_log(HR_LOG_INFO, "hidden_items_changed",
           json_pack("{s:I,s:I}", "version", (json_int_t)v, "hidden",
                     (json_int_t)n));
  R.hidden_version = v;
  return 0;
}

static int count_item(void *arg, const char *item, long long t_ms) {
  return hr_trend_add(arg, item, t_ms);
}

static int refresh_trending(hr_error_t *err) {
  size_t n = 0, total = 0;
  int rc = 0;
  for (int i = 0; i < STREAM_ROUNDS; i++) {
    rc = hr_ctxstore_stream_items(R.st, R.after, sizeof(R.after),
                                  STREAM_BATCH, count_item, R.trend, &n, err);
    total += n;
    if (rc != 0 || n < STREAM_BATCH)
      break;
  }
  /* weights decay alike, so the order only moves with new events */
  if (total > 0 || hr_itemsets_gen(HR_SET_TRENDING) == 0)
    if (hr_trend_publish(R.trend, TRENDING_TOP, now_ms()) != 0 && rc == 0)
      rc = hr_error_set(err, HR_ENOMEM, "", "out of memory");
  return rc;
}

/* One round; logs a failure once, and the recovery. */
static void refresh(void) {
  hr_error_t err = {0};
  int rc = refresh_hidden(&err);
  if (rc == 0)
    rc = refresh_trending(&err);
  if (rc != 0 && !R.failing)
    hr_log(HR_LOG_WARN, "item_sets_stale",
           json_pack("{s:s,s:s}", "reason", err.msg, "msg",
                     "hidden and trending items keep their last state until "
                     "Redis answers"));
  else if (rc == 0 && R.failing)
    hr_log(HR_LOG_INFO, "item_sets_refreshed", NULL);
  R.failing = rc != 0;
}

static void *loop(void *arg) {
  (void)arg;
  pthread_mutex_lock(&R.mu);
  while (!R.stop) {
    struct timespec dl;
    pthread_mutex_unlock(&R.mu);
    refresh();
    pthread_mutex_lock(&R.mu);
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += R.cfg.items.refresh_ms / 1000;
    dl.tv_nsec += (long)(R.cfg.items.refresh_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
      dl.tv_sec++;
      dl.tv_nsec -= 1000000000L;
    }
    while (!R.stop && !R.wake &&
           pthread_cond_timedwait(&R.cv, &R.mu, &dl) != ETIMEDOUT)
      ;
    R.wake = 0;
  }
  pthread_mutex_unlock(&R.mu);
  return NULL;
}

int hr_itemsets_start(const hr_config_t *cfg) {
  long long from;
  R.cfg = *cfg;
  R.hidden_version = -1;
  R.failing = 0;
  R.stop = R.wake = 0;
  from = now_ms() - (long long)cfg->trending.window_s * 1000;
  snprintf(R.after, sizeof(R.after), "%lld-0", from > 0 ? from : 0);
  if ((R.st = hr_ctxstore_new(cfg)) == NULL ||
      (R.trend = hr_trend_new(cfg->trending.half_life_s,
                              (size_t)cfg->trending.max_items)) == NULL) {
    hr_ctxstore_free(R.st);
    R.st = NULL;
    return HR_ENOMEM;
  }
  /* the hidden set before the first request: a replica that starts never
   * serves an item the others hide (unless Redis is down: then it starts
   * without, and the thread reads it when Redis answers) */
  hr_error_t err = {0};
  if (refresh_hidden(&err) != 0) {
    R.failing = 1;
    hr_log(HR_LOG_WARN, "item_sets_stale",
           json_pack("{s:s}", "reason", err.msg));
  }
  pthread_cond_init(&R.cv, NULL);
  if (pthread_create(&R.t, NULL, loop, NULL) != 0) {
    pthread_cond_destroy(&R.cv);
    hr_trend_free(R.trend);
    hr_ctxstore_free(R.st);
    R.trend = NULL;
    R.st = NULL;
    return HR_ENOMEM;
  }
  R.running = 1;
  return 0;
}

void hr_itemsets_wake(void) {
  pthread_mutex_lock(&R.mu);
  R.wake = 1;
  if (R.running)
    pthread_cond_signal(&R.cv);
  pthread_mutex_unlock(&R.mu);
}

void hr_itemsets_stop(void) {
  if (!R.running)
    return;
  pthread_mutex_lock(&R.mu);
  R.stop = 1;
  pthread_cond_signal(&R.cv);
  pthread_mutex_unlock(&R.mu);
  pthread_join(R.t, NULL);
  pthread_cond_destroy(&R.cv);
  hr_trend_free(R.trend);
  hr_ctxstore_free(R.st);
  R.trend = NULL;
  R.st = NULL;
  R.running = 0;
  hr_itemsets_reset();
}
