/* handlers.c -- /recommend, /event and the operational endpoints. */
#include "hr/api.h"
#include "hr/ctxstore.h"
#include "hr/experiments.h"
#include "hr/features.h"
#include "hr/log.h"
#include "hr/metrics.h"
#include "hr/model.h"
#include "hr/recommend.h"
#include "internal.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void hr__http_reply_json(hr_hresp_t *resp, int status, json_t *o,
                         int digits) {
  resp->status = status;
  resp->body = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER |
                                     JSON_REAL_PRECISION(digits))
                 : NULL;
  json_decref(o);
  if (resp->body == NULL) {
    hr_error_t e = {0};
    hr_error_set(&e, HR_ENOMEM, "", "out of memory");
    hr__http_error(resp, &e);
  }
}

/* Scores are floats: 7 significant digits say all they hold. */
static void reply_json(hr_hresp_t *resp, int status, json_t *o) {
  hr__http_reply_json(resp, status, o, 7);
}

/* ------------------------------------------------------------ recommend */

/* Each HTTP worker thread encodes its answers in one writer, grown as
 * needed and freed when the thread exits. */
static pthread_key_t writer_key;
static pthread_once_t writer_once = PTHREAD_ONCE_INIT;

static void writer_free(void *p) {
  hr_jsonw_free(p);
  free(p);
}

static void writer_key_make(void) { pthread_key_create(&writer_key, writer_free); }

static hr_jsonw_t *thread_writer(void) {
  hr_jsonw_t *j;
  pthread_once(&writer_once, writer_key_make);
  if ((j = pthread_getspecific(writer_key)) == NULL) {
    if ((j = calloc(1, sizeof(*j))) == NULL)
      return NULL;
    if (pthread_setspecific(writer_key, j) != 0) {
      free(j);
      return NULL;
    }
  }
  hr_jsonw_reset(j);
  return j;
}

/* {"history": [...], "context": [...]} for one item with explain. */
static void explain_json(hr_jsonw_t *j, const hr_model_t *m,
                         const hr_rec_item_t *it) {
  hr_jsonw_open(j, "explain", '{');
  hr_jsonw_open(j, "history", '[');
  for (size_t i = 0; i < it->n_similar; i++) {
    hr_jsonw_open(j, NULL, '{');
    hr_jsonw_str(j, "item_id", hr_model_item_id(m, (size_t)it->similar[i]));
    hr_jsonw_real(j, "similarity", (double)it->similarity[i], 7);
    hr_jsonw_close(j, '}');
  }
  hr_jsonw_close(j, ']');
  hr_jsonw_open(j, "context", '[');
  for (size_t i = 0; i < it->n_effects; i++) {
    hr_jsonw_open(j, NULL, '{');
    hr_jsonw_str(j, "feature", it->effects[i].feature);
    hr_jsonw_str(j, "value", it->effects[i].value);
    hr_jsonw_real(j, "effect", (double)it->effects[i].effect, 7);
    hr_jsonw_close(j, '}');
  }
  hr_jsonw_close(j, ']');
  hr_jsonw_close(j, '}');
}

/* "context" and "context_source": the context a list was made for. */
static void context_json(hr_jsonw_t *j, const hr_context_t *cx) {
  hr_jsonw_open(j, "context", '{');
  hr_jsonw_int(j, "ts", cx->ts);
  hr_jsonw_str(j, "tz", cx->val[0]);
  hr_jsonw_int(j, "hour", cx->hour);
  hr_jsonw_int(j, "weekday", cx->weekday);
  hr_jsonw_bool(j, "weekend", cx->weekend);
  for (int i = 1; i < HR_CTX_FIELDS; i++)
    hr_jsonw_str(j, hr_ctx_field_names[i], cx->val[i]);
  hr_jsonw_close(j, '}');
  hr_jsonw_open(j, "context_source", '{');
  hr_jsonw_str(j, "ts", hr_ctx_source_name(cx->ts_src));
  for (int i = 0; i < HR_CTX_FIELDS; i++)
    hr_jsonw_str(j, hr_ctx_field_names[i], hr_ctx_source_name(cx->src[i]));
  hr_jsonw_close(j, '}');
}

/* "items" (with explanations when asked) and "model" of a list. */
static void items_json(hr_jsonw_t *j, const hr_recommend_req_t *r,
                       const hr_rec_result_t *res) {
  const hr_model_t *m = res->model;
  hr_jsonw_open(j, "items", '[');
  for (size_t i = 0; i < res->n_items; i++) {
    const hr_rec_item_t *it = &res->items[i];
    hr_jsonw_open(j, NULL, '{');
    hr_jsonw_str(j, "item_id", hr_model_item_id(m, (size_t)it->index));
    hr_jsonw_real(j, "score", (double)it->score, 7);
    if (r->explain)
      explain_json(j, m, it);
    hr_jsonw_close(j, '}');
  }
  hr_jsonw_close(j, ']');
  hr_jsonw_open(j, "model", '{');
  hr_jsonw_str(j, "name", hr_model_name(m));
  hr_jsonw_int(j, "version", (long long)hr_model_version(m));
  hr_jsonw_close(j, '}');
}

/* A list's last fields (degraded, retrieval, filter_matches), closed:
 * the text, or NULL when out of memory. */
static char *finish_json(hr_jsonw_t *j, const hr_rec_result_t *res) {
  hr_jsonw_bool(j, "degraded", res->degraded);
  hr_jsonw_str(j, "retrieval", hr_rec_retrieval_name(res->retrieval));
  if (res->filtered)
    hr_jsonw_int(j, "filter_matches", (long long)res->filter_matches);
  hr_jsonw_close(j, '}');
  return hr_jsonw_take(j);
}

/* The answer of docs/api.md for a result; `rid` its recommendation id.
 * NULL when out of memory. */
static char *recommend_json(const hr_recommend_req_t *r,
                            const hr_rec_result_t *res, const char *rid) {
  const hr_context_t *cx = &res->ctx;
  hr_jsonw_t *j = thread_writer();

  if (j == NULL)
    return NULL;
  hr_jsonw_open(j, NULL, '{');
  hr_jsonw_str(j, "recommendation_id", rid);
  hr_jsonw_str(j, "user_id", r->user_id);
  items_json(j, r, res);
  if (res->variant != NULL) {
    hr_jsonw_open(j, "variant", '{');
    hr_jsonw_str(j, "experiment", res->exp->name);
    hr_jsonw_str(j, "name", res->variant->name);
    hr_jsonw_close(j, '}');
  } else {
    hr_jsonw_null(j, "variant");
  }
  context_json(j, cx);
  hr_jsonw_int(j, "history_used", (long long)res->history_used);
  return finish_json(j, res);
}

/* POST /recommend: parse, run the pipeline (recommend.h), encode, count. */
void hr__h_recommend(const hr_hreq_t *req, hr_hresp_t *resp) {
  hr_recommend_req_t r;
  hr_rec_result_t res;
  hr_error_t err = {0};
  hr_rec_worker_t *w = hr_rec_worker_thread();
  char rid[48 + 2 * HR_EXP_NAME], hex[17];

  if (hr_api_parse_recommend(req->body, req->body_len, req->cfg,
                             (long long)time(NULL), &r, &err) != 0) {
    hr__http_error(resp, &err);
    return;
  }
  if (hr_auth_allow(req->caller,
                    r.user_id ? req->cfg->auth.recommend
                              : req->cfg->auth.recommend_anonymous,
                    r.user_id, "POST /recommend", &err) != 0) {
    if (r.user_id)
      snprintf(err.field, sizeof(err.field), "user_id");
    hr__http_error(resp, &err);
    hr_recommend_req_destroy(&r);
    return;
  }
  if (w == NULL)
    hr_error_set(&err, HR_ENOMEM, "", "out of memory");
  if (w == NULL || hr_rec_run(w, req->reg, req->cfg, &r, req->force_variant,
                              &res, &err) != 0) {
    hr__http_error(resp, &err);
    resp->retry_after_s = err.code == HR_ENOMODEL ? 5 : 0;
    hr_recommend_req_destroy(&r);
    return;
  }
  hr__http_random_hex(hex);
  if (res.variant != NULL) /* the experiment and variant travel in the id;
                              a forced variant is marked, to be left out */
    snprintf(rid, sizeof(rid), "r1-%s.%s.%s%s", hex, res.exp->name,
             res.variant->name, res.forced ? ".qa" : "");
  else
    snprintf(rid, sizeof(rid), "r1-%s", hex);
  resp->status = 200;
  if ((resp->body = recommend_json(&r, &res, rid)) == NULL) {
    hr_error_set(&err, HR_ENOMEM, "", "out of memory");
    hr__http_error(resp, &err);
  }
  if (res.degraded)
    hr_metrics_degraded();
  hr_metrics_retrieval(res.retrieval);
  if (resp->status == 200 && res.variant != NULL && !res.forced) {
    /* an impression of the variant, and its user (or session) */
    const char *id = r.user_id ? r.user_id : r.session_id;
    hr_exp_count_impression((int)(res.exp - req->cfg->experiments),
                            (int)(res.variant - res.exp->v), id, strlen(id));
  }
  hr_rec_done(&res);
  hr_recommend_req_destroy(&r);
}

/* ------------------------------------------------------------- similar */

/* The answer of /similar (r->item_id set) or /popular. */
static char *list_json(const hr_recommend_req_t *r, const hr_rec_result_t *res,
                       const char *rid) {
  hr_jsonw_t *j = thread_writer();

  if (j == NULL)
    return NULL;
  hr_jsonw_open(j, NULL, '{');
  hr_jsonw_str(j, "recommendation_id", rid);
  if (r->item_id != NULL) {
    hr_jsonw_str(j, "item_id", r->item_id);
    hr_jsonw_str(j, "user_id", r->user_id);
  }
  items_json(j, r, res);
  if (r->item_id == NULL)
    context_json(j, &res->ctx);
  if (r->user_id != NULL)
    hr_jsonw_int(j, "history_used", (long long)res->history_used);
  return finish_json(j, res);
}

/* The pipeline call of a list endpoint (hr_rec_similar, hr_rec_popular). */
typedef int (*list_run_fn)(hr_rec_worker_t *, hr_registry_t *,
                           const hr_config_t *, const hr_recommend_req_t *,
                           hr_rec_result_t *, hr_error_t *);

/* POST /similar and /popular: parse (done by the caller into r), check
 * the caller, run, encode. A user_id needs what a /recommend for that user
 * needs; no user, what an anonymous /recommend needs. Takes r. */
static void run_list(const hr_hreq_t *req, hr_hresp_t *resp,
                     hr_recommend_req_t *r, const char *what,
                     const char *rid_prefix, list_run_fn run) {
  hr_rec_result_t res;
  hr_error_t err = {0};
  hr_rec_worker_t *w = hr_rec_worker_thread();
  char rid[24], hex[17];

  if (hr_auth_allow(req->caller,
                    r->user_id ? req->cfg->auth.recommend
                               : req->cfg->auth.recommend_anonymous,
                    r->user_id, what, &err) != 0) {
    if (r->user_id)
      snprintf(err.field, sizeof(err.field), "user_id");
    hr__http_error(resp, &err);
    hr_recommend_req_destroy(r);
    return;
  }
  if (w == NULL)
    hr_error_set(&err, HR_ENOMEM, "", "out of memory");
  if (w == NULL || run(w, req->reg, req->cfg, r, &res, &err) != 0) {
    hr__http_error(resp, &err);
    resp->retry_after_s = err.code == HR_ENOMODEL ? 5 : 0;
    hr_recommend_req_destroy(r);
    return;
  }
  hr__http_random_hex(hex);
  snprintf(rid, sizeof(rid), "%s%s", rid_prefix, hex);
  resp->status = 200;
  if ((resp->body = list_json(r, &res, rid)) == NULL) {
    hr_error_set(&err, HR_ENOMEM, "", "out of memory");
    hr__http_error(resp, &err);
  }
  if (res.degraded)
    hr_metrics_degraded();
  hr_rec_done(&res);
  hr_recommend_req_destroy(r);
}

typedef int (*list_parse_fn)(const char *, size_t, const hr_config_t *,
                             long long, hr_recommend_req_t *, hr_error_t *);

static void list_endpoint(const hr_hreq_t *req, hr_hresp_t *resp,
                          list_parse_fn parse, const char *what,
                          const char *rid_prefix, list_run_fn run) {
  hr_recommend_req_t r;
  hr_error_t err = {0};
  if (parse(req->body, req->body_len, req->cfg, (long long)time(NULL), &r,
            &err) != 0)
    hr__http_error(resp, &err);
  else
    run_list(req, resp, &r, what, rid_prefix, run);
}

void hr__h_similar(const hr_hreq_t *req, hr_hresp_t *resp) {
  list_endpoint(req, resp, hr_api_parse_similar, "POST /similar", "s1-",
                hr_rec_similar);
}

void hr__h_popular(const hr_hreq_t *req, hr_hresp_t *resp) {
  list_endpoint(req, resp, hr_api_parse_popular, "POST /popular", "p1-",
                hr_rec_popular);
}

void hr__h_event(const hr_hreq_t *req, hr_hresp_t *resp) {
  hr_event_req_t r;
  hr_error_t err = {0};
  hr_ctxstore_t *cs;
  int *status = NULL;
  size_t ndup = 0, nattr = 0;
  int rc;

  if (hr_api_parse_events(req->body, req->body_len, req->cfg,
                          (long long)time(NULL), &r, &err) != 0) {
    hr_metrics_events(0, 0, 1);
    hr__http_error(resp, &err);
    return;
  }
  for (size_t i = 0; i < r.n; i++)
    if (hr_auth_allow(req->caller, req->cfg->auth.event, r.events[i].user_id,
                      "POST /event", &err) != 0) {
      if (r.batch)
        snprintf(err.field, sizeof(err.field), "events[%zu].user_id", i);
      else
        snprintf(err.field, sizeof(err.field), "user_id");
      hr__http_error(resp, &err);
      goto out;
    }
  /* clicks and purchases that name an experiment's recommendation count
   * to its variant */
  for (size_t i = 0; i < r.n; i++) {
    hr_event_t *e = &r.events[i];
    int x, v, kind = strcmp(e->type, "click") == 0      ? HR_EXP_CLICK
                     : strcmp(e->type, "purchase") == 0 ? HR_EXP_CONVERSION
                                                        : 0;
    if (kind != 0 && e->recommendation_id != NULL &&
        hr_exp_parse_rid(req->cfg, e->recommendation_id, &x, &v)) {
      e->exp_kind = kind;
      e->exp_name = req->cfg->experiments[x].name;
      e->exp_variant = req->cfg->experiments[x].v[v].name;
    }
  }
  status = calloc(r.n, sizeof(int));
  cs = hr_ctxstore_thread();
  if (status == NULL || cs == NULL) {
    hr_error_set(&err, HR_ENOMEM, "", "out of memory");
    hr__http_error(resp, &err);
    goto out;
  }
  rc = hr_ctxstore_write_events(cs, r.events, r.n, status, &err);
  if (rc != 0) {
    hr_log(HR_LOG_WARN, "event_write_failed",
           json_pack("{s:s,s:s,s:I}", "request_id", req->request_id, "reason",
                     err.msg, "events", (json_int_t)r.n));
    if (rc == HR_EREDIS) {
      hr_error_clear(&err);
      hr_error_set(&err, HR_EREDIS, "",
                   "the event store is unavailable; nothing was written, "
                   "retry later");
      resp->retry_after_s = 1;
    }
    hr__http_error(resp, &err);
    goto out;
  }
  for (size_t i = 0; i < r.n; i++) {
    ndup += status[i] == HR_EV_DUPLICATE;
    nattr += status[i] == HR_EV_ATTRIBUTED;
  }
  hr_metrics_events(r.n - ndup, ndup, 0);
  hr_metrics_attributed(nattr);
  reply_json(resp, 202,
             json_pack("{s:I,s:I,s:I}", "accepted", (json_int_t)(r.n - ndup),
                       "duplicates", (json_int_t)ndup, "attributed",
                       (json_int_t)nattr));
out:
  free(status);
  hr_event_req_destroy(&r);
}

void hr__h_healthz(const hr_hreq_t *req, hr_hresp_t *resp) {
  (void)req;
  reply_json(resp, 200, json_pack("{s:s}", "status", "ok"));
}

/* Does Redis answer a PING now (from this worker's connection)? */
static int redis_answers(void) {
  hr_ctxstore_t *cs = hr_ctxstore_thread();
  return cs != NULL && hr_ctxstore_ping(cs) == 0;
}

/* Ready means "can answer /recommend": a model is loaded and the server
 * is not draining. Redis is reported, not required: without it
 * /recommend answers from the model (degraded), and a replica taken out
 * of the load balancer for it would take that answer away too. */
void hr__h_readyz(const hr_hreq_t *req, hr_hresp_t *resp) {
  hr_snapshot_t *s = hr_registry_acquire(req->reg, 0);
  int model = s != NULL, ready = model && !req->draining;
  hr_snapshot_release(req->reg, 0, s);
  reply_json(resp, ready ? 200 : 503,
             json_pack("{s:s,s:b,s:b,s:b}", "status",
                       ready ? "ready" : "not_ready", "model", model,
                       "draining", req->draining, "redis", redis_answers()));
}

/* GET /health/redis: for dashboards and alerts, not for probes. */
void hr__h_health_redis(const hr_hreq_t *req, hr_hresp_t *resp) {
  int up = redis_answers();
  (void)req;
  reply_json(resp, up ? 200 : 503,
             json_pack("{s:s}", "redis", up ? "up" : "down"));
}

void hr__h_metrics(const hr_hreq_t *req, hr_hresp_t *resp) {
  (void)redis_answers(); /* hyperrec_redis_up as of this scrape */
  resp->status = 200;
  resp->body = hr_metrics_render(req->reg);
  resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
  if (resp->body == NULL) {
    hr_error_t e = {0};
    hr_error_set(&e, HR_ENOMEM, "", "out of memory");
    hr__http_error(resp, &e);
  }
}

void hr__h_models(const hr_hreq_t *req, hr_hresp_t *resp) {
  reply_json(resp, 200, hr_registry_describe(req->reg));
}

/* ------------------------------------------------------------ admin */

/* POST /admin/reload: clear rollback pins and look for new versions now
 * (on the admin request's own thread, serialised with the loader). */
void hr__h_admin_reload(const hr_hreq_t *req, hr_hresp_t *resp) {
  int changed = 0, unpinned = hr_registry_reload(req->reg, &changed);
  hr_log(HR_LOG_INFO, "admin_reload",
         json_pack("{s:i,s:i}", "unpinned", unpinned, "changed", changed));
  reply_json(resp, 200,
             json_pack("{s:i,s:i,s:o}", "unpinned", unpinned, "changed",
                       changed, "models", hr_registry_describe(req->reg)));
}

/* POST /admin/models/<name>/rollback with an optional body
 * {"version": N}: serve version N, or the newest valid version older than
 * the serving one, and pin the slot to it until /admin/reload. */
void hr__h_admin_rollback(const hr_hreq_t *req, hr_hresp_t *resp) {
  static const char pre[] = "/admin/models/", suf[] = "/rollback";
  const char *name = req->url + strlen(pre);
  size_t nl = strlen(name), sl = strlen(suf);
  char slot[64];
  uint64_t version = 0, from = 0, to = 0;
  hr_error_t err = {0};
  int idx, rc;

  if (nl <= sl || strcmp(name + nl - sl, suf) != 0 ||
      nl - sl >= sizeof(slot) || memchr(name, '/', nl - sl) != NULL) {
    hr_error_set(&err, HR_ENOTFOUND, "", "no such path (POST "
                 "/admin/models/<name>/rollback)");
    hr__http_error(resp, &err);
    return;
  }
  memcpy(slot, name, nl - sl);
  slot[nl - sl] = '\0';
  if ((idx = hr_registry_find(req->reg, slot)) < 0) {
    hr_error_set(&err, HR_ENOTFOUND, "", "no model slot \"%s\"", slot);
    hr__http_error(resp, &err);
    return;
  }
  if (req->body_len > 0) { /* {} or {"version": N} */
    json_error_t jerr;
    json_t *root = json_loadb(req->body, req->body_len,
                              JSON_REJECT_DUPLICATES, &jerr), *v;
    const char *key;
    if (root == NULL || !json_is_object(root)) {
      json_decref(root);
      hr_error_set(&err, HR_EBADJSON, "", "the body must be a JSON object "
                   "({} or {\"version\": N})");
      hr__http_error(resp, &err);
      return;
    }
    json_object_foreach(root, key, v) {
      if (strcmp(key, "version") != 0) {
        hr_error_set(&err, HR_EUNKNOWNFIELD, key, "unknown field");
        break;
      }
      if (!json_is_integer(v) || json_integer_value(v) <= 0) {
        hr_error_set(&err, HR_EBADFIELD, "version", "version must be a "
                     "positive integer (a version directory's name)");
        break;
      }
      version = (uint64_t)json_integer_value(v);
    }
    json_decref(root);
    if (err.code != 0) {
      hr__http_error(resp, &err);
      return;
    }
  }
  rc = hr_registry_rollback(req->reg, idx, version, &from, &to, &err);
  if (rc != 0) {
    hr__http_error(resp, &err);
    return;
  }
  reply_json(resp, 200,
             json_pack("{s:s,s:I,s:I,s:b}", "slot", slot, "from",
                       (json_int_t)from, "to", (json_int_t)to, "pinned", 1));
}
