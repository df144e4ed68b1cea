/* metrics.c -- counters and histograms (see metrics.h). */
#include "hr/metrics.h"
#include "hr/auth.h"
#include "hr/ctxstore.h"
#include "hr/experiments.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const ep_names[] = {
#define XX(name, str) str,
    HR_ENDPOINT_MAP(XX)
#undef XX
};

/* Statuses tracked one by one; anything else is counted under
 * status="other". (libmicrohttpd answers some requests itself, e.g. 431
 * for oversized headers, without reaching the handlers: those are not
 * counted at all.) */
static const int statuses[] = {200, 202, 204, 400, 401, 404, 405, 409,
                               413, 415, 429, 500, 503};
#define N_STATUS (sizeof(statuses) / sizeof(statuses[0]))
#define N_SLOTS (N_STATUS + 1) /* + "other" */

static const double buckets[] = {0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01,
                                 0.025,   0.05,   0.1,   0.25,  0.5,   1.0};
#define N_BUCKETS (sizeof(buckets) / sizeof(buckets[0]))

static atomic_ulong req_count[HR_EP__COUNT][N_SLOTS];
static atomic_ulong lat_bucket[HR_EP__COUNT][N_BUCKETS + 1];
static atomic_ulong lat_sum_ns[HR_EP__COUNT];
static atomic_ulong ev_accepted, ev_duplicates, ev_rejected, degraded,
    attributed;

void hr_metrics_observe(hr_endpoint_t ep, int status, double seconds) {
  size_t s, b;
  if ((unsigned)ep >= HR_EP__COUNT)
    ep = HR_EP_OTHER;
  for (s = 0; s < N_STATUS && statuses[s] != status; s++)
    ;
  atomic_fetch_add_explicit(&req_count[ep][s], 1, memory_order_relaxed);
  for (b = 0; b < N_BUCKETS && seconds > buckets[b]; b++)
    ;
  atomic_fetch_add_explicit(&lat_bucket[ep][b], 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&lat_sum_ns[ep], (unsigned long)(seconds * 1e9),
                            memory_order_relaxed);
}

void hr_metrics_events(unsigned long accepted, unsigned long duplicates,
                       unsigned long rejected) {
  atomic_fetch_add_explicit(&ev_accepted, accepted, memory_order_relaxed);
  atomic_fetch_add_explicit(&ev_duplicates, duplicates, memory_order_relaxed);
  atomic_fetch_add_explicit(&ev_rejected, rejected, memory_order_relaxed);
}

void hr_metrics_attributed(unsigned long n) {
  atomic_fetch_add_explicit(&attributed, n, memory_order_relaxed);
}

void hr_metrics_degraded(void) {
  atomic_fetch_add_explicit(&degraded, 1, memory_order_relaxed);
}

static void (*_Atomic conn_source)(hr_conn_stats_t *);

void hr_metrics_connections_source(void (*fn)(hr_conn_stats_t *out)) {
  atomic_store(&conn_source, fn);
}

static atomic_ulong retrieval[HR_RET__COUNT];
static const char *const retrieval_name[HR_RET__COUNT] = {
#define XX(name, str) str,
    HR_RETRIEVAL_MAP(XX)
#undef XX
};

void hr_metrics_retrieval(hr_retrieval_t r) {
  if ((unsigned)r < HR_RET__COUNT)
    atomic_fetch_add_explicit(&retrieval[r], 1, memory_order_relaxed);
}

typedef struct {
  char *p;
  size_t len, cap;
  int oom;
} sbuf;

static void put(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(sbuf *b, const char *fmt, ...) {
  va_list ap;
  int n;
  if (b->oom)
    return;
  for (;;) {
    va_start(ap, fmt);
    n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0) {
      b->oom = 1;
      return;
    }
    if ((size_t)n < b->cap - b->len) {
      b->len += (size_t)n;
      return;
    }
    size_t nc = b->cap * 2 + (size_t)n;
    char *np = realloc(b->p, nc);
    if (np == NULL) {
      b->oom = 1;
      return;
    }
    b->p = np;
    b->cap = nc;
  }
}

/* The model registry's part: versions, catalogue sizes, refusals. */
static void render_models(sbuf *b, hr_registry_t *reg) {
  put(b, "# HELP hyperrec_model_version Serving model version per slot "
          "(0: none).\n# TYPE hyperrec_model_version gauge\n");
  for (int i = 0; i < hr_registry_n_slots(reg); i++) {
    hr_snapshot_t *s = hr_registry_acquire(reg, i);
    put(b, "hyperrec_model_version{slot=\"%s\"} %llu\n",
        hr_registry_slot_name(reg, i),
        s ? (unsigned long long)hr_model_version(s->model) : 0ULL);
    hr_snapshot_release(reg, i, s);
  }
  put(b, "# HELP hyperrec_model_items Catalogue size per slot.\n"
          "# TYPE hyperrec_model_items gauge\n");
  for (int i = 0; i < hr_registry_n_slots(reg); i++) {
    hr_snapshot_t *s = hr_registry_acquire(reg, i);
    put(b, "hyperrec_model_items{slot=\"%s\"} %zu\n",
        hr_registry_slot_name(reg, i), s ? hr_model_n_items(s->model) : 0);
    hr_snapshot_release(reg, i, s);
  }
  put(b, "# HELP hyperrec_model_refused_total Model versions refused at "
          "load.\n# TYPE hyperrec_model_refused_total counter\n"
          "hyperrec_model_refused_total %lu\n",
      hr_registry_refused_count(reg));
  put(b, "# HELP hyperrec_model_gated_total Model versions the quality "
          "gate refused (a score or count drop; part of refused_total).\n"
          "# TYPE hyperrec_model_gated_total counter\n"
          "hyperrec_model_gated_total %lu\n",
      hr_registry_gated_count(reg));
  put(b, "# HELP hyperrec_model_rollbacks_total Rollbacks done through "
          "POST /admin/models/NAME/rollback.\n"
          "# TYPE hyperrec_model_rollbacks_total counter\n"
          "hyperrec_model_rollbacks_total %lu\n",
      hr_registry_rollbacks(reg));
}

char *hr_metrics_render(hr_registry_t *reg) {
  sbuf b = {malloc(8192), 0, 8192, 0};
  if (b.p == NULL)
    return NULL;
  b.p[0] = '\0';

  put(&b, "# HELP hyperrec_build_info Build information.\n"
          "# TYPE hyperrec_build_info gauge\n"
          "hyperrec_build_info{version=\"%s\"} 1\n", HR_VERSION);
  put(&b, "# HELP hyperrec_http_requests_total HTTP requests by endpoint and "
          "status.\n# TYPE hyperrec_http_requests_total counter\n");
  for (int e = 0; e < HR_EP__COUNT; e++) {
    for (size_t s = 0; s < N_SLOTS; s++) {
      unsigned long v = atomic_load_explicit(&req_count[e][s], memory_order_relaxed);
      if (v == 0)
        continue;
      if (s < N_STATUS)
        put(&b, "hyperrec_http_requests_total{endpoint=\"%s\",status=\"%d\"} %lu\n",
            ep_names[e], statuses[s], v);
      else
        put(&b, "hyperrec_http_requests_total{endpoint=\"%s\",status=\"other\"} %lu\n",
            ep_names[e], v);
    }
  }
  put(&b, "# HELP hyperrec_http_request_duration_seconds Request latency.\n"
          "# TYPE hyperrec_http_request_duration_seconds histogram\n");
  for (int e = 0; e < HR_EP__COUNT; e++) {
    unsigned long cum = 0;
    for (size_t k = 0; k <= N_BUCKETS; k++) {
      cum += atomic_load_explicit(&lat_bucket[e][k], memory_order_relaxed);
      if (k < N_BUCKETS)
        put(&b, "hyperrec_http_request_duration_seconds_bucket{endpoint=\"%s\","
                "le=\"%g\"} %lu\n", ep_names[e], buckets[k], cum);
      else
        put(&b, "hyperrec_http_request_duration_seconds_bucket{endpoint=\"%s\","
                "le=\"+Inf\"} %lu\n", ep_names[e], cum);
    }
    put(&b, "hyperrec_http_request_duration_seconds_sum{endpoint=\"%s\"} %.9f\n",
        ep_names[e], atomic_load(&lat_sum_ns[e]) / 1e9);
    put(&b, "hyperrec_http_request_duration_seconds_count{endpoint=\"%s\"} %lu\n",
        ep_names[e], cum);
  }
  {
    void (*fn)(hr_conn_stats_t *) = atomic_load(&conn_source);
    hr_conn_stats_t cs = {0, 0, 0, 0, 0, 0};
    if (fn != NULL)
      fn(&cs);
    put(&b, "# HELP hyperrec_http_connections Connections held now.\n"
            "# TYPE hyperrec_http_connections gauge\n"
            "hyperrec_http_connections %lu\n"
            "# HELP hyperrec_http_connections_refused_total Connections "
            "refused at accept, by the limit they met.\n"
            "# TYPE hyperrec_http_connections_refused_total counter\n"
            "hyperrec_http_connections_refused_total{limit=\"per_ip\"} %lu\n"
            "hyperrec_http_connections_refused_total{limit=\"total\"} %lu\n"
            "# HELP hyperrec_http_connections_closed_total Connections the "
            "server closed, by reason.\n"
            "# TYPE hyperrec_http_connections_closed_total counter\n"
            "hyperrec_http_connections_closed_total{reason=\"not_http\"} %lu\n"
            "hyperrec_http_connections_closed_total{reason=\"header_timeout\"} "
            "%lu\n"
            "hyperrec_http_connections_closed_total{reason=\"body_timeout\"} "
            "%lu\n",
        cs.open, cs.refused_per_ip, cs.refused_total, cs.not_http,
        cs.header_timeout, cs.body_timeout);
  }
  put(&b, "# HELP hyperrec_auth_refused_total Requests to /recommend and "
          "/event refused for their credentials or rate.\n"
          "# TYPE hyperrec_auth_refused_total counter\n"
          "hyperrec_auth_refused_total{reason=\"missing\"} %llu\n"
          "hyperrec_auth_refused_total{reason=\"invalid\"} %llu\n"
          "hyperrec_auth_refused_total{reason=\"forbidden\"} %llu\n"
          "hyperrec_auth_refused_total{reason=\"rate_limited\"} %llu\n",
      hr_auth_refused(0), hr_auth_refused(1), hr_auth_refused(2),
      hr_auth_refused(3));
  {
    const char *name;
    unsigned long long ok, limited;
    put(&b, "# HELP hyperrec_api_key_requests_total Requests per API key "
            "name, let through or refused by its rate limit.\n"
            "# TYPE hyperrec_api_key_requests_total counter\n");
    for (int i = 0; hr_auth_key_stat(i, &name, &ok, &limited) == 0; i++)
      put(&b, "hyperrec_api_key_requests_total{key=\"%s\",outcome=\"allowed\"} "
              "%llu\nhyperrec_api_key_requests_total{key=\"%s\","
              "outcome=\"rate_limited\"} %llu\n",
          name, ok, name, limited);
  }
  put(&b, "# HELP hyperrec_redis_up 1 when Redis answered the last PING "
          "(taken at each scrape), else 0.\n"
          "# TYPE hyperrec_redis_up gauge\n"
          "hyperrec_redis_up %d\n", hr_ctxstore_up());
  put(&b, "# HELP hyperrec_redis_errors_total Failed Redis round trips.\n"
          "# TYPE hyperrec_redis_errors_total counter\n"
          "hyperrec_redis_errors_total %lu\n", hr_ctxstore_error_count());
  put(&b, "# HELP hyperrec_events_total Events by outcome.\n"
          "# TYPE hyperrec_events_total counter\n"
          "hyperrec_events_total{result=\"accepted\"} %lu\n"
          "hyperrec_events_total{result=\"duplicate\"} %lu\n"
          "hyperrec_events_total{result=\"rejected\"} %lu\n",
      atomic_load(&ev_accepted), atomic_load(&ev_duplicates),
      atomic_load(&ev_rejected));
  put(&b, "# HELP hyperrec_events_attributed_total Clicks and purchases "
          "counted to an experiment's variant.\n"
          "# TYPE hyperrec_events_attributed_total counter\n"
          "hyperrec_events_attributed_total %lu\n", atomic_load(&attributed));
  put(&b, "# HELP hyperrec_experiment_ids_dropped_total Users (or sessions) "
          "left out of an experiment's user count because the batch for "
          "Redis was full.\n"
          "# TYPE hyperrec_experiment_ids_dropped_total counter\n"
          "hyperrec_experiment_ids_dropped_total %lu\n",
      hr_exp_counts_dropped());
  put(&b, "# HELP hyperrec_recommend_degraded_total Recommendations answered "
          "without Redis.\n# TYPE hyperrec_recommend_degraded_total counter\n"
          "hyperrec_recommend_degraded_total %lu\n", atomic_load(&degraded));
  put(&b, "# HELP hyperrec_recommend_retrieval_total Recommendations by how "
          "candidates were found.\n"
          "# TYPE hyperrec_recommend_retrieval_total counter\n");
  for (int r = 0; r < HR_RET__COUNT; r++)
    put(&b, "hyperrec_recommend_retrieval_total{path=\"%s\"} %lu\n",
        retrieval_name[r], atomic_load(&retrieval[r]));
  if (reg != NULL)
    render_models(&b, reg);
  if (b.oom) {
    free(b.p);
    return NULL;
  }
  return b.p;
}
