/* internal.h -- shared between the HTTP daemon and its handlers. */
#ifndef HR_HTTP_INTERNAL_H
#define HR_HTTP_INTERNAL_H

#include <stddef.h>
#include <sys/socket.h>

#include <jansson.h>

#include "hr/auth.h"
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
  const hr_caller_t *caller; /* who is calling (auth.h) */
  int draining;            /* the server is shutting down */
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
void hr__h_similar(const hr_hreq_t *req, hr_hresp_t *resp);
void hr__h_popular(const hr_hreq_t *req, hr_hresp_t *resp);
void hr__h_event(const hr_hreq_t *req, hr_hresp_t *resp);
void hr__h_healthz(const hr_hreq_t *req, hr_hresp_t *resp);
void hr__h_readyz(const hr_hreq_t *req, hr_hresp_t *resp);
void hr__h_health_redis(const hr_hreq_t *req, hr_hresp_t *resp);
void hr__h_metrics(const hr_hreq_t *req, hr_hresp_t *resp);
void hr__h_models(const hr_hreq_t *req, hr_hresp_t *resp);
void hr__h_experiments(const hr_hreq_t *req, hr_hresp_t *resp);
void hr__h_experiment(const hr_hreq_t *req, hr_hresp_t *resp);
void hr__h_admin_reload(const hr_hreq_t *req, hr_hresp_t *resp);
void hr__h_admin_rollback(const hr_hreq_t *req, hr_hresp_t *resp);
void hr__h_item_put(const hr_hreq_t *req, hr_hresp_t *resp);
void hr__h_items_hidden(const hr_hreq_t *req, hr_hresp_t *resp);
void hr__h_ui(const hr_hreq_t *req, hr_hresp_t *resp);

/* Fill resp with `o` as compact JSON (taken; NULL or a failed dump is a
 * 500 out-of-memory error), reals with `digits` significant digits. */
void hr__http_reply_json(hr_hresp_t *resp, int status, json_t *o,
                         int digits);

/* Fill resp with the error body for `err` (status from the error table). */
void hr__http_error(hr_hresp_t *resp, const hr_error_t *err);

/* A JSON writer (jsonw.c): values appended to a buffer that grows and is
 * reused, giving the bytes jansson's compact, order-preserving dump gives.
 * A `key` is the member name inside an object, NULL inside an array. */
typedef struct {
  char *buf;
  size_t len, cap;
  int comma; /* the next value needs a ',' first */
  int oom;   /* a write failed: the text is incomplete */
} hr_jsonw_t;

void hr_jsonw_reset(hr_jsonw_t *j);
void hr_jsonw_free(hr_jsonw_t *j);
void hr_jsonw_open(hr_jsonw_t *j, const char *key, char brace); /* { [ */
void hr_jsonw_close(hr_jsonw_t *j, char brace);                 /* } ] */
void hr_jsonw_key(hr_jsonw_t *j, const char *key);
void hr_jsonw_str(hr_jsonw_t *j, const char *key, const char *s); /* NULL:
                                                                     null */
void hr_jsonw_int(hr_jsonw_t *j, const char *key, long long v);
void hr_jsonw_bool(hr_jsonw_t *j, const char *key, int v);
void hr_jsonw_null(hr_jsonw_t *j, const char *key);
void hr_jsonw_real(hr_jsonw_t *j, const char *key, double v, int precision);
/* A malloc'd copy of the text, or NULL (out of memory). */
char *hr_jsonw_take(hr_jsonw_t *j);

/* Connections held, in all and per client address (connlim.c). */
struct sockaddr;
typedef struct hr_connlim hr_connlim_t;

hr_connlim_t *hr__connlim_new(size_t max_total, size_t max_per_ip);
void hr__connlim_free(hr_connlim_t *c);
/* 1 when a new connection from sa fits the limits, and then counted; 0
 * (the refusal counted, logged at most once a second) when it does not. */
int hr__connlim_take(hr_connlim_t *c, const struct sockaddr *sa);
/* A connection taken from sa closed. */
void hr__connlim_release(hr_connlim_t *c, const struct sockaddr *sa);
void hr__connlim_counts(hr_connlim_t *c, unsigned long *open,
                        unsigned long *rejected_ip,
                        unsigned long *rejected_total);

/* The listening socket, the first bytes of each connection and every
 * connection's deadlines (accept.c). */
struct MHD_Daemon;
typedef struct hr_acceptor hr_acceptor_t;
typedef struct hr_conn hr_conn_t; /* one connection libmicrohttpd serves */
enum { HR_CONN_NONE = 0, HR_CONN_HEADERS = 1, HR_CONN_BODY = 2 };

/* Bind and listen on sa (errors in err: "cannot listen" material); the
 * connection limits are max_conn in all and http.max_connections_per_ip. */
hr_acceptor_t *hr__acceptor_open(const struct sockaddr *sa, socklen_t sl,
                                 const hr_config_t *cfg, size_t max_conn,
                                 hr_error_t *err);
/* Start accepting, handing connections to d (started with
 * MHD_USE_NO_LISTEN_SOCKET and MHD_USE_ITC). */
int hr__acceptor_run(hr_acceptor_t *a, struct MHD_Daemon *d);
int hr__acceptor_port(const hr_acceptor_t *a);
/* Close the listening socket (new clients are refused at once); the
 * deadlines keep being enforced. */
void hr__acceptor_stop_listening(hr_acceptor_t *a);
/* After MHD_stop_daemon. */
void hr__acceptor_free(hr_acceptor_t *a);
void hr__acceptor_stats(hr_acceptor_t *a, hr_conn_stats_t *out);
/* libmicrohttpd's start and close notifications for descriptor fd. */
hr_conn_t *hr__conn_started(hr_acceptor_t *a, int fd);
void hr__conn_closed(hr_acceptor_t *a, hr_conn_t *c);
/* What the connection waits for now: HR_CONN_BODY (its headers are here),
 * HR_CONN_NONE (the whole request is here), HR_CONN_HEADERS (answered: the
 * next request's headers, within the idle timeout plus the header one). */
void hr__conn_phase(hr_acceptor_t *a, hr_conn_t *c, int phase);

/* 16 random hex characters (per-thread generator) into buf[17]. */
void hr__http_random_hex(char buf[17]);

#endif
