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

/* {"history": [...], "context": [...]} for one item with explain. */
static json_t *explain_json(const hr_model_t *m, const hr_rec_item_t *it) {
  json_t *hist = json_array(), *ctx = json_array();
  for (size_t j = 0; j < it->n_similar; j++)
    json_array_append_new(
        hist, json_pack("{s:s,s:f}", "item_id",
                        hr_model_item_id(m, (size_t)it->similar[j]),
                        "similarity", (double)it->similarity[j]));
  for (size_t j = 0; j < it->n_effects; j++)
    json_array_append_new(ctx, json_pack("{s:s,s:s,s:f}", "feature",
                                         it->effects[j].feature, "value",
                                         it->effects[j].value, "effect",
                                         (double)it->effects[j].effect));
  return json_pack("{s:o,s:o}", "history", hist, "context", ctx);
}

/* The answer of docs/api.md for a result; `rid` its recommendation id. */
static json_t *recommend_json(const hr_recommend_req_t *r,
                              const hr_rec_result_t *res, const char *rid) {
  const hr_model_t *m = res->model;
  const hr_context_t *cx = &res->ctx;
  json_t *items = json_array(), *c, *src, *o;

  for (size_t i = 0; i < res->n_items; i++) {
    const hr_rec_item_t *it = &res->items[i];
    json_t *j = json_pack("{s:s,s:f}", "item_id",
                          hr_model_item_id(m, (size_t)it->index), "score",
                          (double)it->score);
    if (r->explain)
      json_object_set_new(j, "explain", explain_json(m, it));
    json_array_append_new(items, j);
  }
  c = json_pack("{s:I,s:s,s:i,s:i,s:b}", "ts", (json_int_t)cx->ts, "tz",
                cx->val[0], "hour", cx->hour, "weekday", cx->weekday,
                "weekend", cx->weekend);
  src = json_pack("{s:s,s:s}", "ts", hr_ctx_source_name(cx->ts_src), "tz",
                  hr_ctx_source_name(cx->src[0]));
  for (int i = 1; i < HR_CTX_FIELDS; i++) {
    json_object_set_new(c, hr_ctx_field_names[i],
                        cx->val[i] ? json_string(cx->val[i]) : json_null());
    json_object_set_new(src, hr_ctx_field_names[i],
                        json_string(hr_ctx_source_name(cx->src[i])));
  }
  o = json_pack(
      "{s:s,s:o,s:o,s:{s:s,s:I},s:o,s:o,s:o,s:I,s:b}", "recommendation_id",
      rid, "user_id", r->user_id ? json_string(r->user_id) : json_null(),
      "items", items, "model", "name", hr_model_name(m), "version",
      (json_int_t)hr_model_version(m), "variant",
      res->variant ? json_pack("{s:s,s:s}", "experiment", res->exp->name,
                               "name", res->variant->name)
                   : json_null(),
      "context", c, "context_source", src, "history_used",
      (json_int_t)res->history_used, "degraded", res->degraded);
  json_object_set_new(o, "retrieval",
                      json_string(hr_rec_retrieval_name(res->retrieval)));
  if (res->filtered)
    json_object_set_new(o, "filter_matches",
                        json_integer((json_int_t)res->filter_matches));
  return o;
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
  reply_json(resp, 200, recommend_json(&r, &res, rid));
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

void hr__h_readyz(const hr_hreq_t *req, hr_hresp_t *resp) {
  hr_snapshot_t *s = hr_registry_acquire(req->reg, 0);
  hr_ctxstore_t *cs = hr_ctxstore_thread();
  int model = s != NULL;
  int redis = cs != NULL && hr_ctxstore_ping(cs) == 0;
  hr_snapshot_release(req->reg, 0, s);
  reply_json(resp, model && redis ? 200 : 503,
             json_pack("{s:s,s:b,s:b}", "status",
                       model && redis ? "ready" : "not_ready", "model", model,
                       "redis", redis));
}

void hr__h_metrics(const hr_hreq_t *req, hr_hresp_t *resp) {
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
