/* metrics.h -- process counters and latency histograms, rendered in the
 * Prometheus text exposition format (0.0.4).
 *
 * Every counter is a relaxed atomic: recording costs a few atomic adds and
 * never blocks a request thread. Rendering reads the counters without a
 * lock, so a scrape may see one request's counters half-updated; that is
 * the usual Prometheus contract. */
#ifndef HR_METRICS_H
#define HR_METRICS_H

#include "hr/registry.h"

#define HR_ENDPOINT_MAP(XX)                                                   \
  XX(RECOMMEND, "recommend")                                                  \
  XX(SIMILAR, "similar")                                                      \
  XX(POPULAR, "popular")                                                      \
  XX(EVENT, "event")                                                          \
  XX(HEALTHZ, "healthz")                                                      \
  XX(READYZ, "readyz")                                                        \
  XX(HEALTH_REDIS, "health_redis")                                            \
  XX(METRICS, "metrics")                                                      \
  XX(MODELS, "models")                                                        \
  XX(EXPERIMENTS, "experiments")                                              \
  XX(ADMIN, "admin")                                                          \
  XX(ITEMS, "items")                                                          \
  XX(UI, "ui")                                                                \
  XX(OTHER, "other")

typedef enum {
#define XX(name, str) HR_EP_##name,
  HR_ENDPOINT_MAP(XX)
#undef XX
  HR_EP__COUNT
} hr_endpoint_t;

/** Count one finished request and its latency. */
void hr_metrics_observe(hr_endpoint_t ep, int status, double seconds);
/** Count events by outcome. */
void hr_metrics_events(unsigned long accepted, unsigned long duplicates,
                       unsigned long rejected);
/** Count a /recommend answered without Redis. */
void hr_metrics_degraded(void);
/** Count events attributed to an experiment's variant. */
void hr_metrics_attributed(unsigned long n);

/* How /recommend found its candidates (the label of
 * hyperrec_recommend_retrieval_total). */
#define HR_RETRIEVAL_MAP(XX)                                                  \
  XX(POPULARITY, "popularity")                                                \
  XX(CTX_POPULARITY, "context_popularity") /* the context prior */            \
  XX(ALL, "all_items")       /* every item scored */                          \
  XX(ANN, "ann")             /* the index */                                  \
  XX(ANN_KEPT, "ann_kept")   /* the index's candidates kept for the user */   \
  XX(ANN_EXACT, "ann_exact") /* the index + the norm-bound pass */            \
  XX(FILTER_PASS, "filter_pass") /* filtered: the norm-bound pass alone */    \
  XX(FILTER_SCAN, "filter_scan") /* filtered: the matching items scored */ \
  XX(TRENDING, "trending")   /* /popular's recent events */

typedef enum {
#define XX(name, str) HR_RET_##name,
  HR_RETRIEVAL_MAP(XX)
#undef XX
  HR_RET__COUNT
} hr_retrieval_t;

/** Count one /recommend's retrieval path. */
void hr_metrics_retrieval(hr_retrieval_t r);

/** The HTTP server's connections, for /metrics. */
typedef struct {
  unsigned long open;            /* held now */
  unsigned long refused_per_ip;  /* closed at accept: per-address limit */
  unsigned long refused_total;   /* closed at accept: total limit */
  unsigned long not_http;        /* answered 400: the first bytes not HTTP */
  unsigned long header_timeout;  /* closed: headers not complete in time */
  unsigned long body_timeout;    /* closed: body not complete in time */
} hr_conn_stats_t;

/** Where /metrics reads them from; NULL: none (all zero). */
void hr_metrics_connections_source(void (*fn)(hr_conn_stats_t *out));

/** Render everything, plus the registry's model gauges (reg may be NULL).
 *  Returns a new string (free()) or NULL on OOM. */
char *hr_metrics_render(hr_registry_t *reg);

#endif
