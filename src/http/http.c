/* http.c -- libmicrohttpd daemon, routing, bodies, CORS, request ids. */
#include "hr/http.h"
#include "hr/api.h"
#include "hr/log.h"
#include "hr/auth.h"
#include "hr/sha256.h"
#include "internal.h"

#define HR_HTTP_WORKERS_PER_CORE 8
#define HR_HTTP_WORKERS_MAX 64 /* of the default */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>


typedef struct {
  const char *path;
  const char *method;
  hr_handler_fn fn;
  hr_endpoint_t ep;
  int has_body; /* a JSON body is required */
  int admin;    /* behind admin.token; `path` is a prefix when it ends in / */
} route_t;

static const route_t routes[] = {
    {"/recommend", "POST", hr__h_recommend, HR_EP_RECOMMEND, 1, 0},
    {"/similar", "POST", hr__h_similar, HR_EP_SIMILAR, 1, 0},
    {"/popular", "POST", hr__h_popular, HR_EP_POPULAR, 1, 0},
    {"/event", "POST", hr__h_event, HR_EP_EVENT, 1, 0},
    {"/healthz", "GET", hr__h_healthz, HR_EP_HEALTHZ, 0, 0},
    {"/readyz", "GET", hr__h_readyz, HR_EP_READYZ, 0, 0},
    {"/health/redis", "GET", hr__h_health_redis, HR_EP_HEALTH_REDIS, 0, 0},
    {"/metrics", "GET", hr__h_metrics, HR_EP_METRICS, 0, 0},
    {"/models", "GET", hr__h_models, HR_EP_MODELS, 0, 0},
    {"/experiments", "GET", hr__h_experiments, HR_EP_EXPERIMENTS, 0, 0},
    /* /experiments/<name>: the report */
    {"/experiments/", "GET", hr__h_experiment, HR_EP_EXPERIMENTS, 0, 0},
    {"/admin/reload", "POST", hr__h_admin_reload, HR_EP_ADMIN, 0, 1},
    /* /admin/models/<name>/rollback, optional body {"version": N} */
    {"/admin/models/", "POST", hr__h_admin_rollback, HR_EP_ADMIN, 0, 1},
    {"/items/hidden", "GET", hr__h_items_hidden, HR_EP_ITEMS, 0, 0},
    /* /items/<id> {"hidden": bool} */
    {"/items/", "PUT", hr__h_item_put, HR_EP_ITEMS, 1, 1},
    /* the console (ui.enabled) */
    {"/ui", "GET", hr__h_ui, HR_EP_UI, 0, 0},
    {"/ui/", "GET", hr__h_ui, HR_EP_UI, 0, 0},
    {NULL, NULL, NULL, HR_EP_OTHER, 0, 0},
};

/* Does the request's Authorization header carry `Bearer <token>`? The
 * comparison takes the same time wherever the first difference is. */
static int bearer_ok(const char *header, const char *token) {
  size_t n = strlen(token);
  if (header == NULL || strncasecmp(header, "Bearer ", 7) != 0)
    return 0;
  header += 7;
  return strlen(header) == n && hr_ct_equal(header, token, n);
}

/* A configuration snapshot. The server holds one reference to the current
 * one and every request one to the snapshot it started with; a SIGHUP
 * replaces the current one, and the last release frees the old. */
typedef struct {
  hr_config_t cfg;
  int refs; /* guarded by hr_http.cfg_mu */
} cfg_ref;

struct hr_http {
  struct MHD_Daemon *d;
  hr_registry_t *reg;
  hr_acceptor_t *acc;      /* the listening socket, limits, deadlines */
  pthread_mutex_t cfg_mu;
  cfg_ref *cfg;
  int port;
  atomic_int inflight;
  atomic_int draining;
  atomic_int admin_jobs; /* admin requests working on their own thread */
};

/* Per-request state, from the first callback to NOTIFY_COMPLETED. */
typedef struct {
  struct timespec t0;
  const route_t *route;      /* NULL: 404 */
  int method_ok;
  const hr_config_t *cfg;    /* &cref->cfg */
  cfg_ref *cref;
  char *body;
  size_t len, cap;
  char request_id[65];
  int status;                /* of the queued response, 0 before */
  int too_big;               /* the body passed http.max_body_bytes */
  int close;                 /* answer with Connection: close */
  /* An admin request runs on its own thread with its connection
   * suspended, so that a model load never holds up the other connections
   * of an HTTP worker: 0 not started, 1 running, 2 answered in job_resp. */
  atomic_int job;
  hr_hresp_t job_resp;
  hr_http_t *h;
  struct MHD_Connection *conn;
  char url[256];
  hr_conn_t *rec;            /* the connection's deadlines */
  hr_caller_t caller;        /* /recommend, /event: who is calling */
} conn_t;

/* ------------------------------------------------------------ helpers */

static cfg_ref *cfg_acquire(hr_http_t *h) {
  cfg_ref *r;
  pthread_mutex_lock(&h->cfg_mu);
  r = h->cfg;
  r->refs++;
  pthread_mutex_unlock(&h->cfg_mu);
  return r;
}

static void cfg_release(hr_http_t *h, cfg_ref *r) {
  int last;
  if (r == NULL)
    return;
  pthread_mutex_lock(&h->cfg_mu);
  last = --r->refs == 0;
  pthread_mutex_unlock(&h->cfg_mu);
  if (last)
    free(r);
}

void hr__http_random_hex(char buf[17]) {
  static _Thread_local uint64_t s;
  static atomic_ulong salt;
  if (s == 0) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    s = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^
        ((uint64_t)getpid() << 40) ^
        (atomic_fetch_add(&salt, 1) * 0x9E3779B97F4A7C15ULL);
    if (s == 0)
      s = 1;
  }
  /* xorshift64* */
  s ^= s >> 12;
  s ^= s << 25;
  s ^= s >> 27;
  snprintf(buf, 17, "%016llx", (unsigned long long)(s * 2685821657736338717ULL));
}

void hr__http_error(hr_hresp_t *resp, const hr_error_t *err) {
  resp->status = hr_err_status(err->code);
  resp->body = hr_api_error_body(err);
  resp->content_type = "application/json";
}

static int valid_request_id(const char *s) {
  size_t n = s ? strlen(s) : 0;
  return n > 0 && n <= 64 &&
         strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                   "0123456789._-") == n;
}

static int is_json_type(const char *ct) {
  size_t n = strlen("application/json");
  if (ct == NULL || strncasecmp(ct, "application/json", n) != 0)
    return 0;
  return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ';
}

static const route_t *match(const char *url, const char *method, int *method_ok,
                            char *allow, size_t allow_len) {
  const route_t *found = NULL;
  allow[0] = '\0';
  *method_ok = 0;
  for (const route_t *r = routes; r->path; r++) {
    size_t pl = strlen(r->path);
    if (r->path[pl - 1] == '/' ? strncmp(r->path, url, pl) != 0
                               : strcmp(r->path, url) != 0)
      continue;
    found = r;
    snprintf(allow + strlen(allow), allow_len - strlen(allow), "%s%s%s",
             allow[0] ? ", " : "", r->method,
             strcmp(r->method, "GET") == 0 ? ", HEAD" : "");
    if (strcmp(r->method, method) == 0 ||
        (strcmp(method, "HEAD") == 0 && strcmp(r->method, "GET") == 0)) {
      *method_ok = 1;
      return r;
    }
  }
  if (found)
    snprintf(allow + strlen(allow), allow_len - strlen(allow), ", OPTIONS");
  return found;
}

static void add_common_headers(struct MHD_Connection *c, struct MHD_Response *r,
                               const conn_t *cc) {
  const char *origin =
      MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
  MHD_add_response_header(r, "X-Request-Id", cc->request_id);
  MHD_add_response_header(r, "Cache-Control", "no-store");
  if (origin && cc->cfg && hr_config_origin_allowed(cc->cfg, origin)) {
    MHD_add_response_header(r, "Access-Control-Allow-Origin", origin);
    MHD_add_response_header(r, "Vary", "Origin");
    MHD_add_response_header(r, "Access-Control-Expose-Headers",
                            "X-Request-Id, Retry-After");
  }
}

/* Counted when the response is queued, before the client can see it, so a
 * client that reads /metrics right after a response finds it counted. */
static void observe(conn_t *cc, int status) {
  struct timespec t1;
  clock_gettime(CLOCK_MONOTONIC, &t1);
  cc->status = status;
  hr_metrics_observe(cc->route ? cc->route->ep : HR_EP_OTHER, status,
                     (double)(t1.tv_sec - cc->t0.tv_sec) +
                         (t1.tv_nsec - cc->t0.tv_nsec) / 1e9);
}

static enum MHD_Result send_body(struct MHD_Connection *c, conn_t *cc,
                                 int status, char *body, const char *ctype,
                                 int retry_after, const char *allow) {
  struct MHD_Response *r;
  enum MHD_Result ret;
  size_t len = body ? strlen(body) : 0;

  r = MHD_create_response_from_buffer(len, body ? body : (char *)"",
                                      body ? MHD_RESPMEM_MUST_FREE
                                           : MHD_RESPMEM_PERSISTENT);
  if (r == NULL) {
    free(body);
    return MHD_NO;
  }
  add_common_headers(c, r, cc);
  if (ctype)
    MHD_add_response_header(r, "Content-Type", ctype);
  if (retry_after > 0) {
    char ra[16];
    snprintf(ra, sizeof(ra), "%d", retry_after);
    MHD_add_response_header(r, "Retry-After", ra);
  }
  if (allow && allow[0])
    MHD_add_response_header(r, "Allow", allow);
  if (status == 401)
    MHD_add_response_header(r, "WWW-Authenticate", "Bearer");
  if (cc->route && cc->route->ep == HR_EP_UI) {
    /* the console: its own files and this server, nothing else */
    MHD_add_response_header(r, "Content-Security-Policy",
                            "default-src 'none'; script-src 'self'; "
                            "style-src 'self'; connect-src 'self'; "
                            "img-src 'self' data:; base-uri 'none'; "
                            "form-action 'none'; frame-ancestors 'none'");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
  }
  if (cc->close)
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
  observe(cc, status);
  ret = MHD_queue_response(c, (unsigned)status, r);
  MHD_destroy_response(r);
  return ret;
}

static enum MHD_Result send_error(struct MHD_Connection *c, conn_t *cc,
                                  int code, const char *field, const char *msg,
                                  int retry_after, const char *allow) {
  hr_error_t err = {0};
  hr_error_set(&err, code, field, "%s", msg);
  return send_body(c, cc, hr_err_status(code), hr_api_error_body(&err),
                   "application/json", retry_after, allow);
}

static enum MHD_Result send_too_big(struct MHD_Connection *c, conn_t *cc) {
  char msg[96];
  snprintf(msg, sizeof(msg), "request body exceeds %ld bytes",
           cc->cfg->http.max_body_bytes);
  return send_error(c, cc, HR_ETOOBIG, "", msg, 0, NULL);
}

static enum MHD_Result send_preflight(struct MHD_Connection *c, conn_t *cc) {
  struct MHD_Response *r =
      MHD_create_response_from_buffer(0, (char *)"", MHD_RESPMEM_PERSISTENT);
  enum MHD_Result ret;
  if (r == NULL)
    return MHD_NO;
  add_common_headers(c, r, cc);
  MHD_add_response_header(r, "Access-Control-Allow-Methods",
                          "GET, POST, PUT, OPTIONS");
  MHD_add_response_header(r, "Access-Control-Allow-Headers",
                          "Content-Type, Authorization, X-API-Key, "
                          "X-Request-Id, X-Hyperrec-Variant");
  MHD_add_response_header(r, "Access-Control-Max-Age", "600");
  observe(cc, 204);
  ret = MHD_queue_response(c, 204, r);
  MHD_destroy_response(r);
  return ret;
}

/* ------------------------------------------------------------ framing */

typedef struct {
  int n_length, n_te;
  const char *length, *te;
} framing_t;

static enum MHD_Result count_framing(void *cls, enum MHD_ValueKind kind,
                                     const char *key, const char *value) {
  framing_t *f = cls;
  (void)kind;
  if (strcasecmp(key, "Content-Length") == 0) {
    f->n_length++;
    f->length = value;
  } else if (strcasecmp(key, "Transfer-Encoding") == 0) {
    f->n_te++;
    f->te = value;
  }
  return MHD_YES;
}

/* Why the request's framing is ambiguous or unsupported (RFC 9112 section
 * 6: a server must reject these rather than guess, or a proxy in front
 * and this server may read different requests from the same bytes), or
 * NULL. */
static const char *bad_framing(struct MHD_Connection *c, const char *version) {
  framing_t f = {0, 0, NULL, NULL};
  MHD_get_connection_values(c, MHD_HEADER_KIND, count_framing, &f);
  if (f.n_length > 1)
    return "more than one Content-Length header";
  if (f.n_length == 1 &&
      (f.length[0] == '\0' || strspn(f.length, "0123456789") !=
                                   strlen(f.length)))
    return "Content-Length is not a number";
  if (f.n_te > 1 || (f.n_te == 1 && strcasecmp(f.te, "chunked") != 0))
    return "Transfer-Encoding other than chunked";
  if (f.n_te == 1 && f.n_length == 1)
    return "both Content-Length and Transfer-Encoding";
  if (strcmp(version, MHD_HTTP_VERSION_1_1) == 0 &&
      MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host") == NULL)
    return "HTTP/1.1 request without Host";
  return NULL;
}

/* ------------------------------------------------------- connections */

static void on_connection(void *cls, struct MHD_Connection *c,
                          void **socket_context,
                          enum MHD_ConnectionNotificationCode toe) {
  hr_http_t *h = cls;
  if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    *socket_context = ci ? hr__conn_started(h->acc, ci->connect_fd) : NULL;
  } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
    hr__conn_closed(h->acc, *socket_context);
    *socket_context = NULL;
  }
}

/* The connection's deadline record (NULL if it has none). */
static hr_conn_t *conn_rec(struct MHD_Connection *c) {
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  return ci ? ci->socket_context : NULL;
}

static hr_http_t *g_conn_source; /* for /metrics (one server a process) */

static void conn_counts(hr_conn_stats_t *out) {
  if (g_conn_source != NULL)
    hr__acceptor_stats(g_conn_source->acc, out);
}

/* --------------------------------------------------------- callbacks */

/* An admin request's own thread: runs the handler (which may load a model
 * for a while), then resumes the connection to send the answer. */
static void *admin_job(void *arg) {
  conn_t *cc = arg;
  hr_http_t *h = cc->h;
  hr_hreq_t req = {cc->cfg, h->reg, cc->body ? cc->body : "", cc->len,
                   cc->request_id, cc->url, NULL, NULL,
                   atomic_load(&h->draining)};
  cc->job_resp = (hr_hresp_t){200, NULL, "application/json", 0};
  cc->route->fn(&req, &cc->job_resp);
  atomic_store(&cc->job, 2);
  MHD_resume_connection(cc->conn);
  atomic_fetch_sub(&h->admin_jobs, 1);
  return NULL;
}

/* /recommend and /event: credentials, then the caller's rate, from the
 * headers alone (what they allow depends on the body, whose user: the
 * handler asks). An answer queued in *ret: 1; else 0. */
static int caller_refused(struct MHD_Connection *c, conn_t *cc,
                          enum MHD_Result *ret) {
  hr_error_t err = {0};
  int retry = 0;
  char msg[160];

  if (hr_auth_identify(cc->cfg,
                       MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                   "Authorization"),
                       MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                   "X-API-Key"),
                       (long long)time(NULL), &cc->caller, &err) != 0 ||
      (cc->route->ep == HR_EP_EVENT &&
       cc->caller.kind == HR_CALLER_ANONYMOUS &&
       hr_auth_allow(&cc->caller, cc->cfg->auth.event, NULL, "POST /event",
                     &err) != 0)) {
    *ret = send_error(c, cc, err.code, "", err.msg, 0, NULL);
    return 1;
  }
  if (hr_auth_rate_take(cc->cfg, &cc->caller, &retry) == 0)
    return 0;
  snprintf(msg, sizeof(msg), "rate limit of this %s reached (%d per second "
           "on this server); retry after %d s",
           cc->caller.kind == HR_CALLER_KEY ? "API key" : "user token",
           cc->caller.kind == HR_CALLER_KEY ? cc->cfg->auth.key_rps
                                            : cc->cfg->auth.token_rps,
           retry);
  *ret = send_error(c, cc, HR_ERATELIMITED, "", msg, retry, NULL);
  return 1;
}

static enum MHD_Result on_upload(conn_t *cc, const char *upload,
                                 size_t *upload_size) {
  size_t n = *upload_size;
  *upload_size = 0;
  if (cc->too_big || cc->len + n > (size_t)cc->cfg->http.max_body_bytes) {
    /* A body without Content-Length grew past the cap. libmicrohttpd
     * 0.9.75 cannot answer in the middle of an upload, so the rest is
     * read and dropped, up to as much again (at least 1 MiB) for a clean
     * 413; past that the connection is closed. */
    size_t allowance = (size_t)cc->cfg->http.max_body_bytes;
    if (allowance < (1u << 20))
      allowance = 1u << 20;
    if (!cc->too_big) {
      free(cc->body);
      cc->body = NULL;
      cc->cap = 0;
      cc->too_big = 1;
    }
    cc->len += n;
    return cc->len > (size_t)cc->cfg->http.max_body_bytes + allowance
               ? MHD_NO
               : MHD_YES;
  }
  if (cc->len + n + 1 > cc->cap) {
    size_t nc = cc->cap ? cc->cap * 2 : 4096;
    while (nc < cc->len + n + 1)
      nc *= 2;
    char *nb = realloc(cc->body, nc);
    if (nb == NULL)
      return MHD_NO;
    cc->body = nb;
    cc->cap = nc;
  }
  memcpy(cc->body + cc->len, upload, n);
  cc->len += n;
  cc->body[cc->len] = '\0';
  return MHD_YES;
}

/* An admin request whose body is here: on its own thread, with the
 * connection suspended until the job's answer is ready. */
static enum MHD_Result run_admin(hr_http_t *h, struct MHD_Connection *c,
                                 conn_t *cc, const char *url) {
  int j = atomic_load(&cc->job);
  if (j == 2) { /* resumed: the job's answer (send_body takes the body) */
    char *b = cc->job_resp.body;
    cc->job_resp.body = NULL;
    return send_body(c, cc, cc->job_resp.status, b,
                     cc->job_resp.content_type, cc->job_resp.retry_after_s,
                     NULL);
  }
  if (j == 1) /* spurious call while suspended */
    return MHD_YES;
  pthread_t t;
  pthread_attr_t at;
  /* counted before the draining check: hr_http_stop sets draining, then
   * waits for admin_jobs to reach 0, so a job is either refused here or
   * waited for there */
  atomic_fetch_add(&h->admin_jobs, 1);
  if (atomic_load(&h->draining)) {
    atomic_fetch_sub(&h->admin_jobs, 1);
    return send_error(c, cc, HR_ESHUTDOWN, "", "server is shutting down", 1,
                      NULL);
  }
  cc->h = h;
  cc->conn = c;
  snprintf(cc->url, sizeof(cc->url), "%s", url);
  atomic_store(&cc->job, 1);
  MHD_suspend_connection(c);
  pthread_attr_init(&at);
  pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
  int rc = pthread_create(&t, &at, admin_job, cc);
  pthread_attr_destroy(&at);
  if (rc == 0)
    return MHD_YES;
  atomic_fetch_sub(&h->admin_jobs, 1);
  atomic_store(&cc->job, 0);
  MHD_resume_connection(c);
  return send_error(c, cc, HR_ENOMEM, "", "could not start the admin job",
                    0, NULL);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls) {
  hr_http_t *h = cls;
  conn_t *cc = *con_cls;
  char allow[128];

  if (cc == NULL) {
    const char *rid, *cl;
    cc = calloc(1, sizeof(*cc));
    if (cc == NULL)
      return MHD_NO;
    *con_cls = cc;
    cc->rec = conn_rec(c);
    hr__conn_phase(h->acc, cc->rec, HR_CONN_BODY); /* headers are here */
    atomic_fetch_add(&h->inflight, 1);
    clock_gettime(CLOCK_MONOTONIC, &cc->t0);
    cc->cref = cfg_acquire(h);
    cc->cfg = &cc->cref->cfg;
    rid = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Request-Id");
    if (valid_request_id(rid))
      snprintf(cc->request_id, sizeof(cc->request_id), "%s", rid);
    else
      hr__http_random_hex(cc->request_id);
    cc->route = match(url, method, &cc->method_ok, allow, sizeof(allow));
    /* Draining: a request that arrives on a connection already open (a
     * load balancer's pooled one) is still answered -- refusing it would
     * be an error its client sees -- and the connection closes after it,
     * so the next request goes to another replica. */
    if (atomic_load(&h->draining))
      cc->close = 1;
    /* Refuse what can be refused from the headers alone, before a byte of
     * the body is read: a client cannot make us read a body we will not
     * use. Ambiguous framing first: the rest of the stream cannot be
     * trusted, so the connection closes after the answer. */
    const char *why = bad_framing(c, version);
    if (why != NULL) {
      cc->close = 1;
      return send_error(c, cc, HR_EBADREQUEST, "", why, 0, NULL);
    }
    if (cc->route == NULL)
      return send_error(c, cc, HR_ENOTFOUND, "", "no such path", 0, NULL);
    if (strcmp(method, "OPTIONS") == 0)
      return send_preflight(c, cc);
    if (cc->route->admin) { /* before a byte of the body is read */
      if (cc->cfg->admin.token[0] == '\0')
        return send_error(c, cc, HR_ENOTFOUND, "", "no such path (the admin "
                          "endpoints are off: admin.token is not set)", 0,
                          NULL);
      if (!bearer_ok(MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                 "Authorization"),
                     cc->cfg->admin.token))
        return send_error(c, cc, HR_EUNAUTH, "", "admin endpoints need "
                          "Authorization: Bearer <admin.token>", 0, NULL);
    }
    if (!cc->method_ok) {
      char msg[160];
      snprintf(msg, sizeof(msg), "%.16s is not allowed on %s (allowed: %s)",
               method, cc->route->path, allow);
      return send_error(c, cc, HR_EMETHOD, "", msg, 0, allow);
    }
    enum MHD_Result ret = MHD_NO;
    if ((cc->route->ep == HR_EP_RECOMMEND || cc->route->ep == HR_EP_SIMILAR ||
         cc->route->ep == HR_EP_POPULAR || cc->route->ep == HR_EP_EVENT) &&
        caller_refused(c, cc, &ret))
      return ret;
    if (cc->route->has_body || cc->route->admin) {
      /* a JSON body: required on has_body routes, optional on admin ones */
      const char *ct =
          MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
      unsigned long long len;
      cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
      len = cl ? strtoull(cl, NULL, 10) : 0;
      if ((cc->route->has_body || ct != NULL || len > 0) && !is_json_type(ct))
        return send_error(c, cc, HR_EMEDIATYPE, "",
                          "Content-Type must be application/json", 0, NULL);
      if (len > (unsigned long long)cc->cfg->http.max_body_bytes)
        return send_too_big(c, cc);
    }
    return MHD_YES;
  }

  if (cc->status != 0) {
    /* Answered early (404, 405, 413, ...): whatever still comes is dropped. */
    *upload_size = 0;
    return MHD_YES;
  }
  if (*upload_size > 0)
    return on_upload(cc, upload, upload_size);

  /* The whole request is here: answer it. */
  hr__conn_phase(h->acc, cc->rec, HR_CONN_NONE);
  if (cc->too_big)
    return send_too_big(c, cc);
  if (cc->route->admin)
    return run_admin(h, c, cc, url);
  {
    hr_hreq_t req = {cc->cfg, h->reg, cc->body ? cc->body : "", cc->len,
                     cc->request_id, url,
                     MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                 "X-Hyperrec-Variant"),
                     &cc->caller, atomic_load(&h->draining)};
    hr_hresp_t resp = {200, NULL, "application/json", 0};
    cc->route->fn(&req, &resp);
    return send_body(c, cc, resp.status, resp.body, resp.content_type,
                     resp.retry_after_s, NULL);
  }
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  hr_http_t *h = cls;
  conn_t *cc = *con_cls;
  (void)toe;

  /* kept alive: the next request's headers, within the idle timeout */
  hr__conn_phase(h->acc, cc ? cc->rec : conn_rec(c), HR_CONN_HEADERS);
  if (cc == NULL)
    return;
  cfg_release(h, cc->cref);
  free(cc->body);
  free(cc->job_resp.body); /* an admin answer never sent (client gone) */
  free(cc);
  *con_cls = NULL;
  atomic_fetch_sub(&h->inflight, 1);
}

/* libmicrohttpd's own messages (a client gone mid-request, a socket
 * error): at most HR_HTTP_LOG_PER_S lines a second, the rest counted in
 * the next line, so that many abandoned sockets cannot flood the log. */
#define HR_HTTP_LOG_PER_S 5
static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
  static atomic_llong window;
  static atomic_int in_window;
  static atomic_ulong suppressed;
  char msg[512];
  struct timespec ts;
  (void)cls;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  long long now = (long long)ts.tv_sec, w = atomic_load(&window);
  if (w != now && atomic_compare_exchange_strong(&window, &w, now))
    atomic_store(&in_window, 0);
  if (atomic_fetch_add(&in_window, 1) >= HR_HTTP_LOG_PER_S) {
    atomic_fetch_add(&suppressed, 1);
    return;
  }
  vsnprintf(msg, sizeof(msg), fmt, ap);
  size_t n = strlen(msg);
  while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
    msg[--n] = '\0';
  hr_log(HR_LOG_WARN, "http_daemon",
         json_pack("{s:s,s:I}", "msg", msg, "suppressed_before",
                   (json_int_t)atomic_exchange(&suppressed, 0)));
}

/* ---------------------------------------------------------- lifecycle */

/* http.max_connections, lowered to what the open-file limit allows: the
 * soft limit is first raised to the hard one, and a reserve is kept for
 * the workers' Redis connections, the model files and the rest. */
static size_t conn_budget(const hr_config_t *cfg, unsigned threads) {
  struct rlimit rl;
  size_t want = (size_t)cfg->http.max_connections, reserve = 64 + 2 * threads;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
    return want;
  if (rl.rlim_cur < rl.rlim_max) {
    rlim_t was = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
      rl.rlim_cur = was;
  }
  if (rl.rlim_cur != RLIM_INFINITY && (size_t)rl.rlim_cur < want + reserve) {
    size_t fit = (size_t)rl.rlim_cur > 2 * reserve
                     ? (size_t)rl.rlim_cur - reserve
                     : (size_t)rl.rlim_cur / 2;
    hr_log(HR_LOG_WARN, "max_connections_lowered",
           json_pack("{s:I,s:I,s:I}", "configured", (json_int_t)want,
                     "open_file_limit", (json_int_t)rl.rlim_cur, "now",
                     (json_int_t)fit));
    want = fit;
  }
  return want;
}

hr_http_t *hr_http_start(const hr_config_t *cfg, hr_registry_t *reg,
                         hr_error_t *err) {
  hr_http_t *h;
  struct sockaddr_storage ss;
  socklen_t sl;
  unsigned threads;
  size_t max_conn;

  memset(&ss, 0, sizeof(ss));
  if (inet_pton(AF_INET, cfg->listen_host, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)cfg->listen_port);
    sl = sizeof(*a);
  } else if (inet_pton(AF_INET6, cfg->listen_host,
                       &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons((uint16_t)cfg->listen_port);
    sl = sizeof(*a);
  } else if (strcmp(cfg->listen_host, "localhost") == 0) {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a->sin_port = htons((uint16_t)cfg->listen_port);
    sl = sizeof(*a);
  } else {
    hr_error_set(err, HR_EINVAL, "listen",
                 "listen host \"%s\" is not an IP address", cfg->listen_host);
    return NULL;
  }
  h = calloc(1, sizeof(*h));
  if (h == NULL)
    return NULL;
  h->reg = reg;
  pthread_mutex_init(&h->cfg_mu, NULL);
  if (hr_http_set_config(h, cfg) != 0) {
    pthread_mutex_destroy(&h->cfg_mu);
    free(h);
    return NULL;
  }
  /* A worker waits out its Redis round trip doing nothing: with several
   * workers per core another request's work fills that wait (the default,
   * HR_HTTP_WORKERS_PER_CORE; docs/benchmarks.md measures it). */
  threads = cfg->threads > 0
                ? (unsigned)cfg->threads
                : HR_HTTP_WORKERS_PER_CORE *
                      (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
  if (cfg->threads <= 0 && threads > HR_HTTP_WORKERS_MAX)
    threads = HR_HTTP_WORKERS_MAX; /* each keeps its scratch */
  if (threads < 1)
    threads = 1;
  max_conn = conn_budget(cfg, threads);
  hr_error_t aerr = {0};
  h->acc = hr__acceptor_open((struct sockaddr *)&ss, sl, cfg, max_conn, &aerr);
  if (h->acc != NULL)
    h->d = MHD_start_daemon(
        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG | MHD_USE_ITC |
            MHD_ALLOW_SUSPEND_RESUME | MHD_USE_NO_LISTEN_SOCKET,
        0, NULL, NULL, on_request, h,
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
        MHD_OPTION_THREAD_POOL_SIZE, threads,
        MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)cfg->http.connection_timeout_s,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, h,
        /* a backstop far above our own limits (accept.c): connections are
         * spread over the workers unevenly */
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)(2 * max_conn + threads),
        MHD_OPTION_END);
  if (h->d == NULL || hr__acceptor_run(h->acc, h->d) != 0) {
    if (h->acc != NULL)
      snprintf(aerr.msg, sizeof(aerr.msg), "the HTTP daemon did not start");
    hr_error_set(err, HR_EIO, "listen", "cannot listen on %s:%d: %s",
                 cfg->listen_host, cfg->listen_port, aerr.msg);
    if (h->d != NULL)
      MHD_stop_daemon(h->d);
    hr__acceptor_free(h->acc);
    cfg_release(h, h->cfg);
    pthread_mutex_destroy(&h->cfg_mu);
    free(h);
    return NULL;
  }
  g_conn_source = h;
  hr_metrics_connections_source(conn_counts);
  h->port = hr__acceptor_port(h->acc);
  return h;
}

int hr_http_port(const hr_http_t *h) { return h->port; }

int hr_http_set_config(hr_http_t *h, const hr_config_t *cfg) {
  cfg_ref *r = malloc(sizeof(*r)), *old;
  if (r == NULL)
    return HR_ENOMEM;
  r->cfg = *cfg;
  r->refs = 1; /* the server's */
  pthread_mutex_lock(&h->cfg_mu);
  old = h->cfg;
  h->cfg = r;
  pthread_mutex_unlock(&h->cfg_mu);
  cfg_release(h, old);
  return 0;
}

void hr_http_stop(hr_http_t *h, int grace_ms) {
  struct timespec t0, t;
  if (h == NULL)
    return;
  atomic_store(&h->draining, 1);
  /* Stop accepting; connections already open are served until done. The
   * listening socket is closed, so new clients are refused at once and go
   * to another replica rather than wait in its backlog. */
  hr__acceptor_stop_listening(h->acc);
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (;;) {
    clock_gettime(CLOCK_MONOTONIC, &t);
    if (atomic_load(&h->inflight) == 0 ||
        (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 >=
            grace_ms)
      break;
    usleep(5000);
  }
  if (atomic_load(&h->inflight) > 0)
    hr_log(HR_LOG_WARN, "drain_timeout",
           json_pack("{s:i}", "inflight", atomic_load(&h->inflight)));
  /* A suspended admin request must be resumed before the daemon stops:
   * wait for its job (a model load) to end, however long the grace. */
  while (atomic_load(&h->admin_jobs) > 0)
    usleep(5000);
  MHD_stop_daemon(h->d);
  hr_metrics_connections_source(NULL);
  g_conn_source = NULL;
  hr__acceptor_free(h->acc);
  cfg_release(h, h->cfg);
  pthread_mutex_destroy(&h->cfg_mu);
  free(h);
}
