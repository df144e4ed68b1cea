/* 60_faults.c -- Redis outages while the server runs (stopped, hung, absent
 * at start) and graceful shutdown. The server must degrade, refuse writes
 * with 503 + Retry-After, and recover by itself when Redis is back on the
 * same port: no server restart. Short Redis timeouts and backoff keep the
 * tests fast; every wait is a bounded poll. */
#include "lib/env.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#define FAULT_CONFIG                                                          \
  "{\"redis\":{\"connect_timeout_ms\":200,\"command_timeout_ms\":200,"        \
  "\"backoff_min_ms\":20,\"backoff_max_ms\":200}}"

/* Bound on one request while Redis is down or hung: the command timeout
 * plus generous slack, never the HTTP client's 10 s. */
#define DEGRADED_MS 2000

static const hrt_env_opts_t fault_opts = {.config_json = FAULT_CONFIG};

static json_t *recommend_user(hrt_env_t *e, const char *user, int *st,
                              long long *ms) {
  long long t0 = hrt_now_ms();
  json_t *j = hrt_post(e, "/recommend", json_pack("{s:s}", "user_id", user),
                       st);
  *ms = hrt_now_ms() - t0;
  return j;
}

static json_t *click(hrt_env_t *e, const char *user, const char *item,
                     const char *event_id, int *st, long long *ms) {
  long long t0 = hrt_now_ms();
  json_t *j = hrt_post(e, "/event",
                       json_pack("{s:s,s:s,s:s,s:s}", "user_id", user, "type",
                                 "click", "item_id", item, "event_id",
                                 event_id),
                       st);
  *ms = hrt_now_ms() - t0;
  return j;
}

/* 200 with degraded:false, i.e. Redis is read again. */
static int recommend_healthy(hrt_env_t *e, const char *user) {
  long long ms;
  int st;
  json_t *j = recommend_user(e, user, &st, &ms);
  int ok = st == 200 && json_is_false(hrt_jget(j, "degraded"));

  json_decref(j);
  return ok;
}

static int status_of(hrt_env_t *e, const char *path) {
  int st;
  json_t *j = hrt_get(e, path, &st);

  json_decref(j);
  return st;
}

static int readyz_status(hrt_env_t *e) { return status_of(e, "/readyz"); }

static int hset_ctx(hrt_env_t *e, const char *user, const char *loc) {
  redisReply *r = hrt_rcmd(e, "HSET hr:ctx:{%s} location %s", user, loc);
  int ok = r != NULL && r->type == REDIS_REPLY_INTEGER;

  if (r != NULL)
    freeReplyObject(r);
  return ok ? 0 : -1;
}

HR_TEST_T(faults_redis_down_recommend_degrades_then_recovers, 90) {
  HRT_ENV(e);
  double degraded0, degraded1, errors;
  char *m;
  long long ms;
  json_t *j;
  int st, ok;

  ASSERT_EQ(hrt_env_start(&e, &fault_opts), 0);
  ASSERT_EQ(hset_ctx(&e, "outage-user", "office"), 0);
  j = recommend_user(&e, "outage-user", &st, &ms);
  ASSERT_EQ(st, 200);
  ASSERT(json_is_false(hrt_jget(j, "degraded")));
  ASSERT_STR_EQ(hrt_jstr(j, "context_source.location"), "redis");
  json_decref(j);
  m = hrt_metrics(&e);
  ASSERT_NOT_NULL(m);
  degraded0 = hrt_metric(m, "hyperrec_recommend_degraded_total", NULL);
  free(m);
  ASSERT_DBL_NEAR(degraded0, 0, 1e-9);

  hrt_redis_stop(&e.redis);
  for (int i = 0; i < 5; i++) {
    j = recommend_user(&e, "outage-user", &st, &ms);
    ASSERT_MSG(st == 200, "Redis down: status %d: %s", st, hrt_jdump(j));
    ASSERT_MSG(json_is_true(hrt_jget(j, "degraded")), "not degraded: %s",
               hrt_jdump(j));
    ASSERT_EQ(json_array_size(hrt_jget(j, "items")), 10); /* model only */
    /* No stored context without Redis. */
    ASSERT(json_is_null(hrt_jget(j, "context.location")));
    ASSERT_STR_EQ(hrt_jstr(j, "context_source.location"), "none");
    ASSERT_EQ(hrt_jint(j, "history_used"), 0);
    ASSERT_MSG(ms < DEGRADED_MS * hrt_mult(), "degraded answer took %lld ms",
               ms);
    json_decref(j);
  }
  /* still ready: /recommend answers (degraded), so the load balancer
   * must keep sending it traffic; Redis is reported apart */
  j = hrt_get(&e, "/readyz", &st);
  ASSERT_MSG(st == 200, "readyz with Redis down: %d %s", st, hrt_jdump(j));
  ASSERT_STR_EQ(hrt_jstr(j, "status"), "ready");
  ASSERT(json_is_true(hrt_jget(j, "model")));
  ASSERT(json_is_false(hrt_jget(j, "redis")));
  ASSERT(json_is_false(hrt_jget(j, "draining")));
  json_decref(j);
  j = hrt_get(&e, "/health/redis", &st);
  ASSERT_MSG(st == 503, "/health/redis with Redis down: %d %s", st,
             hrt_jdump(j));
  ASSERT_STR_EQ(hrt_jstr(j, "redis"), "down");
  json_decref(j);
  j = hrt_get(&e, "/healthz", &st);
  ASSERT_EQ(st, 200); /* alive all along */
  json_decref(j);
  m = hrt_metrics(&e);
  ASSERT_NOT_NULL(m);
  degraded1 = hrt_metric(m, "hyperrec_recommend_degraded_total", NULL);
  ASSERT_DBL_NEAR(hrt_metric(m, "hyperrec_redis_up", NULL), 0, 1e-9);
  errors = hrt_metric(m, "hyperrec_redis_errors_total", NULL);
  free(m);
  ASSERT_DBL_NEAR(degraded1 - degraded0, 5, 1e-9);
  ASSERT_GT(errors, 0);

  /* Redis back on the same port (empty: no persistence). */
  ASSERT_EQ(hrt_redis_restart(&e.redis), 0);
  ASSERT_EQ(hset_ctx(&e, "outage-user", "gym"), 0);
  /* The first healthy answer is the one checked: a second request may go
   * to another worker, whose single read can still time out on a busy
   * machine (and then degrades, as designed). */
  j = NULL;
  HRT_POLL(ok, 10000, (json_decref(j), j = recommend_user(&e, "outage-user",
                                                          &st, &ms),
                       st == 200 && json_is_false(hrt_jget(j, "degraded"))));
  ASSERT_MSG(ok, "/recommend still degraded 10 s after Redis came back");
  ASSERT_STR_EQ(hrt_jstr(j, "context.location"), "gym");
  ASSERT_STR_EQ(hrt_jstr(j, "context_source.location"), "redis");
  json_decref(j);
  HRT_POLL(ok, 10000, status_of(&e, "/health/redis") == 200);
  ASSERT_MSG(ok, "/health/redis not 200 10 s after Redis came back");
  m = hrt_metrics(&e);
  ASSERT_NOT_NULL(m);
  ASSERT_DBL_NEAR(hrt_metric(m, "hyperrec_redis_up", NULL), 1, 1e-9);
  free(m);
  ASSERT_EQ(readyz_status(&e), 200);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

/* 503 context_store_unavailable with a Retry-After of whole seconds. */
static int check_unavailable(hrt_resp_t *r, char *why, size_t n) {
  json_t *j = r->body ? json_loadb(r->body, r->body_len, 0, NULL) : NULL;
  const char *code = hrt_jstr(j, "error.code");
  char ra[32];
  int ok = r->status == 503 && code != NULL &&
           strcmp(code, "context_store_unavailable") == 0 &&
           hrt_resp_header(r, "Retry-After", ra, sizeof(ra)) != NULL &&
           atoi(ra) >= 1 && strspn(ra, "0123456789") == strlen(ra);

  if (!ok)
    snprintf(why, n, "status %d, Retry-After %s, body %s", r->status,
             hrt_resp_header(r, "Retry-After", ra, sizeof(ra)) ? ra : "(none)",
             hrt_jdump(j));
  json_decref(j);
  return ok;
}

HR_TEST_T(faults_redis_down_event_503_then_recovers, 90) {
  HRT_ENV(e);
  const char *ev = "{\"user_id\":\"w\",\"type\":\"click\",\"item_id\":\"i9\","
                   "\"event_id\":\"outage-evt-1\"}";
  const char *batch = "{\"events\":[{\"user_id\":\"w\",\"type\":\"view\","
                      "\"item_id\":\"i1\"},{\"user_id\":\"w\",\"type\":"
                      "\"context\",\"context\":{\"mood\":\"calm\"}}]}";
  char why[1200];
  hrt_resp_t r;
  long long t0, ms;
  json_t *j;
  int st, ok;

  ASSERT_EQ(hrt_env_start(&e, &fault_opts), 0);
  j = click(&e, "w", "i0", "before-outage", &st, &ms);
  ASSERT_EQ(st, 202);
  json_decref(j);
  ASSERT_EQ(hrt_rint(&e, "XLEN hr:events"), 1);

  hrt_redis_stop(&e.redis);
  for (int i = 0; i < 3; i++) {
    t0 = hrt_now_ms();
    ASSERT_EQ(hrt_req(&e, "POST", "/event", "Content-Type: application/json"
                                            "\r\n",
                      ev, strlen(ev), &r),
              0);
    ms = hrt_now_ms() - t0;
    ASSERT_MSG(check_unavailable(&r, why, sizeof(why)), "single: %s", why);
    hrt_resp_free(&r);
    ASSERT_MSG(ms < DEGRADED_MS * hrt_mult(), "503 took %lld ms", ms);
    ASSERT_EQ(hrt_req(&e, "POST", "/event", "Content-Type: application/json"
                                            "\r\n",
                      batch, strlen(batch), &r),
              0);
    ASSERT_MSG(check_unavailable(&r, why, sizeof(why)), "batch: %s", why);
    hrt_resp_free(&r);
  }

  /* Back on the same port: the client's retry of the same event is
   * accepted exactly once, with no server restart. */
  ASSERT_EQ(hrt_redis_restart(&e.redis), 0);
  HRT_POLL(ok, 10000,
           (j = hrt_post_text(&e, "/event", ev, &st), json_decref(j),
            st != 503));
  ASSERT_MSG(ok, "/event still 503 10 s after Redis came back");
  ASSERT_EQ(st, 202);
  ASSERT_EQ(hrt_rint(&e, "XLEN hr:events"), 1);
  ASSERT_EQ(hrt_rint(&e, "EXISTS hr:evid:outage-evt-1"), 1);
  j = hrt_post_text(&e, "/event", batch, &st);
  ASSERT_MSG(st == 202 && hrt_jint(j, "accepted") == 2, "batch: %d %s", st,
             hrt_jdump(j));
  json_decref(j);
  ASSERT_EQ(hrt_rint(&e, "XLEN hr:events"), 3);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

HR_TEST_T(faults_redis_hung_requests_bounded, 90) {
  HRT_ENV(e);
  /* one HTTP worker, so that the same connection sees the freeze and the
   * thaw whatever the core count */
  static const hrt_env_opts_t o1 = {
      .config_json = "{\"threads\":1,\"redis\":{\"connect_timeout_ms\":200,"
                     "\"command_timeout_ms\":200,\"backoff_min_ms\":20,"
                     "\"backoff_max_ms\":200}}"};
  long long ms;
  double err0, err1;
  char *m;
  json_t *j;
  int st, ok;

  ASSERT_EQ(hrt_env_start(&e, &o1), 0);
  ASSERT(recommend_healthy(&e, "hung-user"));
  m = hrt_metrics(&e);
  ASSERT_NOT_NULL(m);
  err0 = hrt_metric(m, "hyperrec_redis_errors_total", NULL);
  free(m);
  /* A frozen Redis accepts connections' bytes but never answers: only the
   * server's command timeout saves the request. */
  hrt_redis_pause(&e.redis, 1);
  j = recommend_user(&e, "hung-user", &st, &ms);
  ASSERT_MSG(st == 200 && json_is_true(hrt_jget(j, "degraded")),
             "hung Redis: status %d: %s", st, hrt_jdump(j));
  ASSERT_MSG(ms < DEGRADED_MS * hrt_mult(), "took %lld ms", ms);
  json_decref(j);
  /* one timeout, not a second one from re-dialling and reading again */
  m = hrt_metrics(&e);
  ASSERT_NOT_NULL(m);
  err1 = hrt_metric(m, "hyperrec_redis_errors_total", NULL);
  free(m);
  ASSERT_DBL_NEAR(err1 - err0, 1, 1e-9);
  j = click(&e, "hung-user", "i1", "hung-evt-1", &st, &ms);
  ASSERT_MSG(st == 503, "hung Redis: /event status %d: %s", st, hrt_jdump(j));
  ASSERT_STR_EQ(hrt_jstr(j, "error.code"), "context_store_unavailable");
  ASSERT_MSG(ms < DEGRADED_MS * hrt_mult(), "took %lld ms", ms);
  json_decref(j);
  /* Past several backoffs the TCP connect to the frozen Redis succeeds,
   * but nothing answers: that is no reconnection (which would reset the
   * backoff and wake every worker into another timeout). */
  for (int k = 0; k < 6; k++) {
    usleep(100 * 1000);
    j = recommend_user(&e, "hung-user", &st, &ms);
    ASSERT_MSG(st == 200 && json_is_true(hrt_jget(j, "degraded")),
               "hung Redis, request %d: status %d: %s", k, st, hrt_jdump(j));
    json_decref(j);
  }
  ASSERT_EQ(hrt_server_log_count(&e.srv, "\"redis_reconnected\"", NULL), 0);

  /* Thawed, Redis may still execute what was queued before the timeout
   * (the 503 promised nothing either way); a retry with the same event_id
   * must leave exactly one copy. */
  hrt_redis_pause(&e.redis, 0);
  HRT_POLL(ok, 10000, recommend_healthy(&e, "hung-user"));
  ASSERT_MSG(ok, "still degraded 10 s after Redis resumed");
  ASSERT_GT(hrt_server_log_count(&e.srv, "\"redis_reconnected\"", NULL), 0);
  HRT_POLL(ok, 10000,
           (j = click(&e, "hung-user", "i1", "hung-evt-1", &st, &ms),
            json_decref(j), st == 202));
  ASSERT_MSG(ok, "/event not 202 10 s after Redis resumed (last %d)", st);
  ASSERT_EQ(hrt_rint(&e, "XLEN hr:events"), 1);
  ASSERT_EQ(hrt_rint(&e, "LLEN hr:hist:{hung-user}"), 1);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

HR_TEST_T(faults_server_starts_without_redis, 90) {
  HRT_ENV(e);
  hrt_env_opts_t o = {.config_json = FAULT_CONFIG, .redis_down = 1};
  long long ms;
  json_t *j;
  int st, ok;

  ASSERT_EQ(hrt_env_start(&e, &o), 0);
  j = hrt_get(&e, "/healthz", &st);
  ASSERT_EQ(st, 200);
  json_decref(j);
  /* a model is loaded: ready, Redis or not */
  ASSERT_EQ(readyz_status(&e), 200);
  ASSERT_EQ(status_of(&e, "/health/redis"), 503);
  j = recommend_user(&e, "early-user", &st, &ms);
  ASSERT_MSG(st == 200 && json_is_true(hrt_jget(j, "degraded")),
             "status %d: %s", st, hrt_jdump(j));
  json_decref(j);
  j = click(&e, "early-user", "i1", "early-1", &st, &ms);
  ASSERT_EQ(st, 503);
  json_decref(j);

  ASSERT_EQ(hrt_redis_restart(&e.redis), 0);
  HRT_POLL(ok, 10000, status_of(&e, "/health/redis") == 200);
  ASSERT_MSG(ok, "/health/redis not 200 10 s after Redis started");
  HRT_POLL(ok, 10000,
           (j = click(&e, "early-user", "i1", "early-1", &st, &ms),
            json_decref(j), st == 202));
  ASSERT_MSG(ok, "/event not 202 10 s after Redis started");
  ASSERT_EQ(hrt_rint(&e, "XLEN hr:events"), 1);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

/* A client that sent half a request must not hold the shutdown hostage. */
HR_TEST_T(faults_sigterm_with_idle_client_exits_0, 60) {
  HRT_ENV(e);
  hrt_env_opts_t o = {.config_json = "{\"http\":{\"shutdown_grace_ms\":500}}"};
  struct sockaddr_in a = {0};
  const char *partial = "POST /recommend HTTP/1.1\r\nHost: x\r\n";
  long long t0;
  int fd, rc;

  ASSERT_EQ(hrt_env_start(&e, &o), 0);
  ASSERT(recommend_healthy(&e, "u"));
  fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT(fd >= 0);
  a.sin_family = AF_INET;
  a.sin_port = htons((unsigned short)e.srv.port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
  ASSERT_EQ(write(fd, partial, strlen(partial)), (long long)strlen(partial));
  t0 = hrt_now_ms();
  rc = hrt_server_stop(&e.srv);
  close(fd);
  ASSERT_EQ(rc, 0);
  ASSERT_MSG(hrt_now_ms() - t0 < 5000LL * hrt_mult(),
             "SIGTERM took %lld ms with a grace of 500 ms",
             hrt_now_ms() - t0);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

/* After SIGTERM the port refuses new connections at once, while a request
 * already in flight (held up by a frozen Redis) is still answered. */
HR_TEST_T(faults_sigterm_refuses_new_connections, 60) {
  HRT_ENV(e);
  hrt_env_opts_t o = {
      .config_json = "{\"http\":{\"shutdown_grace_ms\":3000},"
                     "\"redis\":{\"command_timeout_ms\":1500}}"};
  struct sockaddr_in a = {0};
  const char *req = "POST /recommend HTTP/1.1\r\nHost: x\r\n" HRT_AUTH_HEADER
                    "Content-Type: application/json\r\nContent-Length: 16\r\n"
                    "Connection: close\r\n\r\n{\"user_id\":\"u1\"}";
  char buf[64] = {0};
  int fd, fd2, rc, err2;
  long long t0;

  ASSERT_EQ(hrt_env_start(&e, &o), 0);
  ASSERT(recommend_healthy(&e, "u1"));
  a.sin_family = AF_INET;
  a.sin_port = htons((unsigned short)e.srv.port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  hrt_redis_pause(&e.redis, 1);
  fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT(fd >= 0);
  ASSERT_EQ(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
  ASSERT_EQ(write(fd, req, strlen(req)), (long long)strlen(req));
  usleep(200 * 1000); /* the request now waits on Redis */
  kill(e.srv.pid, SIGTERM);
  usleep(300 * 1000 * (useconds_t)hrt_mult());
  t0 = hrt_now_ms();
  fd2 = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT(fd2 >= 0);
  rc = connect(fd2, (struct sockaddr *)&a, sizeof(a));
  err2 = errno;
  close(fd2);
  ASSERT_MSG(rc != 0 && err2 == ECONNREFUSED,
             "a new connection after SIGTERM: rc %d, %s", rc, strerror(err2));
  ASSERT_MSG(hrt_now_ms() - t0 < 1000LL * hrt_mult(), "refused after %lld ms",
             hrt_now_ms() - t0);
  /* the request in flight still gets its (degraded) answer */
  ASSERT_GT(read(fd, buf, sizeof(buf) - 1), 12);
  ASSERT_MSG(strncmp(buf, "HTTP/1.1 200", 12) == 0, "in flight: %s", buf);
  close(fd);
  hrt_redis_pause(&e.redis, 0);
  rc = hrt_wait(e.srv.pid, 10000 * hrt_mult());
  if (rc != -1)
    e.srv.pid = 0;
  ASSERT_MSG(rc == 0, "exit status %d", rc);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

HR_TEST_T(faults_sigint_exits_0, 60) {
  HRT_ENV(e);
  int rc;

  ASSERT_EQ(hrt_env_start(&e, NULL), 0);
  ASSERT(recommend_healthy(&e, "u"));
  kill(e.srv.pid, SIGINT);
  rc = hrt_wait(e.srv.pid, 10000 * hrt_mult());
  if (rc != -1)
    e.srv.pid = 0;
  ASSERT_MSG(rc == 0, "SIGINT: exit status %d", rc);
  ASSERT_MSG(!hrt_file_has_sanitizer_report(e.srv.log), "sanitizer report");
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

/* ---------------------------------------------- acknowledged = durable */

/* Writers that send events with unique event_ids and remember the ones
 * the server acknowledged (202) while Redis is SIGKILLed and restarted. */
enum { WRITERS = 4, MAX_ACKS = 4000 };
typedef struct {
  int port, id;
  atomic_int *stop;
  int acked[MAX_ACKS], n_acked, n_503, n_other, sent;
} writer_t;

static void *writer(void *arg) {
  writer_t *w = arg;
  char body[256];
  for (int n = 0; !atomic_load(w->stop) && w->n_acked < MAX_ACKS; n++) {
    hrt_resp_t r;
    int len = snprintf(body, sizeof(body),
                       "{\"user_id\":\"k%d\",\"item_id\":\"i%d\",\"type\":"
                       "\"click\",\"event_id\":\"kill-%d-%d\"}",
                       w->id, n % 50, w->id, n);
    w->sent++;
    if (hrt_http(w->port, "POST", "/event",
                 "Content-Type: application/json\r\n" HRT_AUTH_HEADER, body,
                 (size_t)len, 5000, &r) != 0) {
      w->n_other++;
      continue;
    }
    if (r.status == 202)
      w->acked[w->n_acked++] = n;
    else if (r.status == 503)
      w->n_503++;
    else
      w->n_other++;
    hrt_resp_free(&r);
  }
  return NULL;
}

static int total_acked(writer_t *w) {
  int n = 0;
  for (int i = 0; i < WRITERS; i++)
    n += w[i].n_acked;
  return n;
}

/* Redis with appendfsync always is SIGKILLed under a steady stream of
 * events and started again on its append-only file: every event the server
 * acknowledged is in the stream afterwards (issue 17: what held, kept). */
HR_TEST_T(faults_redis_sigkill_loses_no_acknowledged_event, 120) {
  HRT_ENV(e);
  hrt_env_opts_t o = {.config_json = FAULT_CONFIG, .redis_durable = 1};
  static writer_t w[WRITERS];
  pthread_t t[WRITERS];
  atomic_int stop = 0;
  int ok, before_kill, lost = 0;

  ASSERT_EQ(hrt_env_start(&e, &o), 0);
  for (int i = 0; i < WRITERS; i++) {
    memset(&w[i], 0, sizeof(w[i]));
    w[i].port = e.srv.port;
    w[i].id = i;
    w[i].stop = &stop;
    ASSERT_EQ(pthread_create(&t[i], NULL, writer, &w[i]), 0);
  }
  HRT_POLL(ok, 30000, total_acked(w) >= 300);
  ASSERT_MSG(ok, "only %d events acknowledged before the kill",
             total_acked(w));
  ASSERT_EQ(kill(e.redis.pid, SIGKILL), 0); /* mid-load, no warning */
  ASSERT_GE(hrt_wait(e.redis.pid, 5000), 0);
  e.redis.pid = 0;
  before_kill = total_acked(w);
  /* while it is down the writers get 503s; then it comes back */
  HRT_POLL(ok, 10000, w[0].n_503 + w[1].n_503 + w[2].n_503 + w[3].n_503 > 0);
  ASSERT_MSG(ok, "no 503 while Redis was down");
  ASSERT_EQ(hrt_redis_restart(&e.redis), 0);
  HRT_POLL(ok, 30000, total_acked(w) >= before_kill + 300);
  atomic_store(&stop, 1);
  for (int i = 0; i < WRITERS; i++)
    pthread_join(t[i], NULL);
  ASSERT_MSG(ok, "%d acknowledged after the restart", total_acked(w) -
                                                            before_kill);

  /* every acknowledged event_id is in the stream */
  redisReply *x = hrt_rcmd(&e, "XRANGE hr:events - +");
  ASSERT_MSG(x != NULL && x->type == REDIS_REPLY_ARRAY, "XRANGE failed");
  static unsigned char seen[WRITERS][MAX_ACKS * 4];
  memset(seen, 0, sizeof(seen));
  for (size_t i = 0; i < x->elements; i++) {
    redisReply *f = x->element[i]->element[1];
    for (size_t j = 0; j + 1 < f->elements; j += 2) {
      int wid, n;
      if (strcmp(f->element[j]->str, "event_id") == 0 &&
          sscanf(f->element[j + 1]->str, "kill-%d-%d", &wid, &n) == 2 &&
          wid >= 0 && wid < WRITERS && n >= 0 && n < MAX_ACKS * 4)
        seen[wid][n] = 1;
    }
  }
  size_t in_stream = x->elements;
  freeReplyObject(x);
  int sent = 0, n503 = 0, other = 0;
  for (int i = 0; i < WRITERS; i++) {
    sent += w[i].sent, n503 += w[i].n_503, other += w[i].n_other;
    for (int k = 0; k < w[i].n_acked; k++)
      lost += w[i].acked[k] >= MAX_ACKS * 4 || !seen[i][w[i].acked[k]];
  }
  fprintf(stderr, "  sigkill: %d sent, %d acknowledged (%d before the "
          "kill), %d answered 503, %d other, %zu in the stream, %d lost\n",
          sent, total_acked(w), before_kill, n503, other, in_stream, lost);
  ASSERT_EQ(lost, 0);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}
