/* items.c -- PUT /items/<id> (hide or show an item) and GET /items/hidden. */
#include "hr/api.h"
#include "hr/ctxstore.h"
#include "hr/itemsets.h"
#include "hr/log.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* PUT /items/<id> {"hidden": bool}, behind admin.token, on an admin job's
 * thread: the change is written to Redis (set and version in one script),
 * then this replica reads it at once; the others within
 * items.refresh_ms. */
void hr__h_item_put(const hr_hreq_t *req, hr_hresp_t *resp) {
  const char *id = req->url + strlen("/items/");
  hr_ctxstore_t *st = hr_ctxstore_thread();
  hr_error_t err = {0};
  int hidden = 0, changed = 0;

  if (hr_api_parse_item_update(id, req->body, req->body_len, req->cfg,
                               &hidden, &err) != 0) {
    hr__http_error(resp, &err);
    return;
  }
  if (st == NULL) {
    hr_error_set(&err, HR_ENOMEM, "", "out of memory");
    hr__http_error(resp, &err);
    return;
  }
  if (hr_ctxstore_hidden_set(st, id, hidden, &changed, &err) != 0) {
    hr__http_error(resp, &err);
    resp->retry_after_s = err.code == HR_EREDIS ? 1 : 0;
    return;
  }
  if (changed) {
    hr_itemsets_wake();
    hr_log(HR_LOG_INFO, hidden ? "item_hidden" : "item_shown",
           json_pack("{s:s,s:s}", "item_id", id, "request_id",
                     req->request_id));
  }
  hr__http_reply_json(resp, 200,
                      json_pack("{s:s,s:b,s:b}", "item_id", id, "hidden",
                                hidden, "changed", changed),
                      7);
}

/* GET /items/hidden: Redis's list (what every replica converges to), with
 * what this replica applies now. */
void hr__h_items_hidden(const hr_hreq_t *req, hr_hresp_t *resp) {
  hr_ctxstore_t *st = hr_ctxstore_thread();
  hr_error_t err = {0};
  long long version = 0;
  char **ids = NULL;
  size_t n = 0;
  json_t *arr;
  hr_itemlist_t *local;

  if (st == NULL) {
    hr_error_set(&err, HR_ENOMEM, "", "out of memory");
    hr__http_error(resp, &err);
    return;
  }
  if (hr_ctxstore_hidden_list(st, (size_t)req->cfg->items.max_hidden,
                              &version, &ids, &n, &err) != 0) {
    hr__http_error(resp, &err);
    resp->retry_after_s = err.code == HR_EREDIS ? 1 : 0;
    return;
  }
  arr = json_array();
  for (size_t i = 0; arr && i < n; i++)
    json_array_append_new(arr, json_string(ids[i]));
  hr_ctxstore_free_ids(ids, n);
  local = hr_itemsets_acquire(HR_SET_HIDDEN);
  hr__http_reply_json(
      resp, 200,
      json_pack("{s:o*,s:I,s:I,s:I}", "items", arr, "count", (json_int_t)n,
                "version", (json_int_t)version, "applied_here",
                (json_int_t)(local ? local->n : 0)),
      7);
  hr_itemsets_release(local);
}
