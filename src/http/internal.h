/* internal.h -- shared between the HTTP daemon and its handlers. */
#ifndef HR_HTTP_INTERNAL_H
#define HR_HTTP_INTERNAL_H

#include <stddef.h>

#include <jansson.h>

#include "hr/config.h"
#include "hr/metrics.h"
#include "hr/registry.h"

/* What a handler gets. */
typedef struct {
  const hr_config_t *cfg;  /* snapshot for this request */
  hr_registry_t *reg;
  const char *body;        /* NUL-terminated, body_len bytes */
  size_t body_len;
  const char *request_id;
  const char *url;         /* the path, for handlers of a path prefix */
  const char *force_variant; /* X-Hyperrec-Variant, or NULL */
} hr_hreq_t;

/* What a handler fills. Body is malloc'd (taken by the daemon). */
typedef struct {
  int status;
  char *body;
  const char *content_type; /* default application/json */
  int retry_after_s;        /* > 0: send Retry-After */
} hr_hresp_t;

typedef void (*hr_handler_fn)(const hr_hreq_t *req, hr_hresp_t *resp);

void hr__h_recommend(const hr_hreq_t *req, hr_hresp_t *resp);
void hr__h_event(const hr_hreq_t *req, hr_hresp_t *resp);
void hr__h_healthz(const hr_hreq_t *req, hr_hresp_t *resp);
void hr__h_readyz(const hr_hreq_t *req, hr_hresp_t *resp);
void hr__h_metrics(const hr_hreq_t *req, hr_hresp_t *resp);
void hr__h_models(const hr_hreq_t *req, hr_hresp_t *resp);
void hr__h_experiments(const hr_hreq_t *req, hr_hresp_t *resp);
void hr__h_experiment(const hr_hreq_t *req, hr_hresp_t *resp);
void hr__h_admin_reload(const hr_hreq_t *req, hr_hresp_t *resp);
void hr__h_admin_rollback(const hr_hreq_t *req, hr_hresp_t *resp);

/* Fill resp with `o` as compact JSON (taken; NULL or a failed dump is a
 * 500 out-of-memory error), reals with `digits` significant digits. */
void hr__http_reply_json(hr_hresp_t *resp, int status, json_t *o,
                         int digits);

/* Fill resp with the error body for `err` (status from the error table). */
void hr__http_error(hr_hresp_t *resp, const hr_error_t *err);

/* 16 random hex characters (per-thread generator) into buf[17]. */
void hr__http_random_hex(char buf[17]);

#endif
