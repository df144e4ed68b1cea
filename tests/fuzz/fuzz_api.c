/* fuzz_api.c -- the request parsers: POST /recommend, /similar, /popular
 * and /event bodies, and PUT /items/<id>.
 *
 * Input: one selector byte (bit 4: PUT /items, the id up to the first
 * newline, then the body; else odd: /event; even: /recommend, /similar
 * when bit 2 is set, /popular when bit 3 is; bit 1 sets
 * http.unknown_fields to "ignore"), then the body. A body the parser
 * accepts must hold only what the validation promises: bounded counts, ids
 * of 1..HR_API_MAX_ID bytes, times in range. A refused one must come with
 * an error code and an error body that is valid JSON. */
#include "fuzz.h"

#include <string.h>

#include <jansson.h>

#include "hr/api.h"
#include "hr/config.h"

#define NOW 1767225600LL /* 2026-01-01T00:00:00Z */

static void id_ok(const char *s, const char *what) {
  FUZZ_EXPECT(s != NULL, "%s is NULL", what);
  size_t n = strlen(s);
  FUZZ_EXPECT(n >= 1 && n <= HR_API_MAX_ID, "%s has %zu bytes", what, n);
}

static void check_error(const hr_error_t *err) {
  FUZZ_EXPECT(err->code < 0, "refused without a code");
  FUZZ_EXPECT(hr_err_status(err->code) == 400 || err->code == HR_ENOMEM,
              "refused with %s (status %d)", hr_err_name(err->code),
              hr_err_status(err->code));
  char *body = hr_api_error_body(err);
  FUZZ_EXPECT(body != NULL, "no error body");
  json_t *j = json_loads(body, 0, NULL);
  FUZZ_EXPECT(j != NULL, "error body is not JSON: %s", body);
  json_decref(j);
  free(body);
}

static void check_recommend(const hr_recommend_req_t *r,
                            const hr_config_t *cfg) {
  FUZZ_EXPECT(r->k >= 1 && r->k <= cfg->recommend.max_k, "k %d", r->k);
  FUZZ_EXPECT(r->n_history <= (size_t)cfg->recommend.max_history,
              "history %zu", r->n_history);
  FUZZ_EXPECT(r->n_exclude <= (size_t)cfg->recommend.max_exclude,
              "exclude %zu", r->n_exclude);
  FUZZ_EXPECT(r->n_filters <= HR_API_MAX_FILTERS, "filters %zu", r->n_filters);
  FUZZ_EXPECT(r->n_ctx_extra <= HR_API_MAX_CTX_EXTRA, "extra %zu",
              r->n_ctx_extra);
  FUZZ_EXPECT(r->n_uattr <= HR_API_MAX_USER_ATTRS, "user_attrs %zu",
              r->n_uattr);
  if (r->user_id)
    id_ok(r->user_id, "user_id");
  for (size_t i = 0; i < r->n_history; i++)
    id_ok(r->history[i], "history[]");
  for (size_t i = 0; i < r->n_exclude; i++)
    id_ok(r->exclude[i], "exclude[]");
  for (size_t i = 0; i < r->n_filters; i++) {
    FUZZ_EXPECT(r->filters[i].attr != NULL, "filter without attribute");
    FUZZ_EXPECT(r->filters[i].n_values <= HR_API_MAX_FILTER_VALUES,
                "filter values %zu", r->filters[i].n_values);
    for (size_t j = 0; j < r->filters[i].n_values; j++)
      FUZZ_EXPECT(r->filters[i].values[j] != NULL, "filter value NULL");
  }
  for (int f = 0; f < HR_CTX_FIELDS; f++)
    if (r->ctx[f])
      FUZZ_EXPECT(strlen(r->ctx[f]) <= HR_API_MAX_CTX_VALUE, "context %d",
                  f);
  for (size_t i = 0; i < r->n_ctx_extra; i++)
    FUZZ_EXPECT(hr_api_ctx_extra_name(r->ctx_extra_name[i]) &&
                    r->ctx_extra_val[i] != NULL,
                "context.extra[%zu]", i);
  FUZZ_EXPECT(r->ts == -1 || (r->ts >= HR_API_TS_MIN && r->ts <= NOW + 86400),
              "ts %lld", r->ts);
}

static void check_events(const hr_event_req_t *r, const hr_config_t *cfg) {
  FUZZ_EXPECT(r->n >= 1 && r->n <= (size_t)cfg->event.max_batch,
              "%zu events", r->n);
  for (size_t i = 0; i < r->n; i++) {
    const hr_event_t *e = &r->events[i];
    id_ok(e->user_id, "user_id");
    id_ok(e->type, "type");
    if (e->item_id)
      id_ok(e->item_id, "item_id");
    else
      FUZZ_EXPECT(strcmp(e->type, "context") == 0, "no item_id for %s",
                  e->type);
    if (e->event_id)
      id_ok(e->event_id, "event_id");
    FUZZ_EXPECT(e->ts >= HR_API_TS_MIN && e->ts <= NOW + 86400, "ts %lld",
                e->ts);
    FUZZ_EXPECT(!e->has_value || (e->value == e->value &&
                                  e->value - e->value == 0),
                "value is not finite");
    FUZZ_EXPECT(e->exp_kind == 0 ||
                    (e->exp_name != NULL && e->exp_variant != NULL),
                "attribution without names");
    for (int f = 0; f < HR_CTX_FIELDS; f++)
      if (e->ctx[f])
        FUZZ_EXPECT(strlen(e->ctx[f]) <= HR_API_MAX_CTX_VALUE, "context %d",
                    f);
  }
}

HR_FUZZ_TARGET(api) {
  hr_config_t cfg;
  hr_error_t err;

  if (size < 1)
    return 0;
  hr_config_defaults(&cfg);
  if (data[0] & 2)
    snprintf(cfg.http.unknown_fields, sizeof(cfg.http.unknown_fields), "%s",
             "ignore");
  const char *body = (const char *)data + 1;
  size_t len = size - 1;
  memset(&err, 0, sizeof(err));
  if (data[0] & 16) {
    /* the id is a C string from the path: up to the first newline */
    const char *nl = memchr(body, '\n', len);
    size_t il = nl ? (size_t)(nl - body) : len;
    char id[512];
    int hidden = -1;
    if (il >= sizeof(id) || memchr(body, '\0', il) != NULL)
      return 0;
    memcpy(id, body, il);
    id[il] = '\0';
    body += nl ? il + 1 : il;
    len -= nl ? il + 1 : il;
    if (hr_api_parse_item_update(id, body, len, &cfg, &hidden, &err) == 0) {
      hr_fuzz_accepted++;
      id_ok(id, "the path's item id");
      FUZZ_EXPECT(hidden == 0 || hidden == 1, "hidden %d", hidden);
    } else {
      check_error(&err);
    }
  } else if ((data[0] & 13) == 8) {
    hr_recommend_req_t r;
    if (hr_api_parse_popular(body, len, &cfg, NOW, &r, &err) == 0) {
      hr_fuzz_accepted++;
      FUZZ_EXPECT(r.user_id == NULL && r.n_history == 0 && r.item_id == NULL,
                  "/popular took a field it does not have");
      FUZZ_EXPECT(!r.trending ||
                      (r.n_uattr == 0 && r.n_ctx_extra == 0 && r.ts == -1 &&
                       !r.ctx[0] && !r.ctx[1] && !r.ctx[2] && !r.ctx[3]),
                  "trending with a context");
      check_recommend(&r, &cfg);
      hr_recommend_req_destroy(&r);
    } else {
      check_error(&err);
    }
  } else if ((data[0] & 5) == 4) {
    hr_recommend_req_t r;
    if (hr_api_parse_similar(body, len, &cfg, NOW, &r, &err) == 0) {
      hr_fuzz_accepted++;
      id_ok(r.item_id, "item_id");
      FUZZ_EXPECT(r.n_history == 0 && r.n_ctx_extra == 0 && r.n_uattr == 0,
                  "/similar took a field it does not have");
      check_recommend(&r, &cfg);
      hr_recommend_req_destroy(&r);
    } else {
      check_error(&err);
    }
  } else if ((data[0] & 1) == 0) {
    hr_recommend_req_t r;
    if (hr_api_parse_recommend(body, len, &cfg, NOW, &r, &err) == 0) {
      hr_fuzz_accepted++;
      check_recommend(&r, &cfg);
      hr_recommend_req_destroy(&r);
    } else {
      check_error(&err);
    }
  } else {
    hr_event_req_t r;
    if (hr_api_parse_events(body, len, &cfg, NOW, &r, &err) == 0) {
      hr_fuzz_accepted++;
      check_events(&r, &cfg);
      hr_event_req_destroy(&r);
    } else {
      check_error(&err);
    }
  }
  return 0;
}
