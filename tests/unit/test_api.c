/* test_api.c -- request validation: each bad input gets its code and field. */
#include "test.h"

#include <stdlib.h>

#include "hr/api.h"

#define NOW 1800000000LL

typedef struct {
  const char *body;
  int code;
  const char *field;
} bad_case;

static const bad_case bad_recommend[] = {
    {"{\"user_id\":", HR_EBADJSON, ""},
    {"[1,2]", HR_EBADJSON, ""},
    {"{\"user_id\":\"a\",\"user_id\":\"b\"}", HR_EBADJSON, ""},
    {"{}", HR_EMISSING, "user_id"},
    {"{\"user_id\":{}}", HR_EBADFIELD, "user_id"},
    {"{\"user_id\":-3}", HR_EBADFIELD, "user_id"},
    {"{\"user_id\":\"\"}", HR_EBADFIELD, "user_id"},
    {"{\"user_id\":\"a\\u0001b\"}", HR_EBADFIELD, "user_id"},
    {"{\"user_id\":\"u\",\"k\":\"10\"}", HR_EBADFIELD, "k"},
    {"{\"user_id\":\"u\",\"k\":0}", HR_ERANGE, "k"},
    {"{\"user_id\":\"u\",\"k\":101}", HR_ERANGE, "k"},
    {"{\"user_id\":\"u\",\"k\":1.5}", HR_EBADFIELD, "k"},
    {"{\"user_id\":\"u\",\"excludes\":[]}", HR_EUNKNOWNFIELD, "excludes"},
    {"{\"user_id\":\"u\",\"exclude\":\"5\"}", HR_EBADFIELD, "exclude"},
    {"{\"user_id\":\"u\",\"exclude\":[1,{}]}", HR_EBADFIELD, "exclude[1]"},
    {"{\"history\":[true]}", HR_EBADFIELD, "history[0]"},
    {"{\"user_id\":\"u\",\"explain\":1}", HR_EBADFIELD, "explain"},
    {"{\"user_id\":\"u\",\"context\":[]}", HR_EBADFIELD, "context"},
    {"{\"user_id\":\"u\",\"context\":{\"mood\":5}}", HR_EBADFIELD, "context.mood"},
    {"{\"user_id\":\"u\",\"context\":{\"tz\":\"Mars/Base\"}}", HR_EBADFIELD, "context.tz"},
    {"{\"user_id\":\"u\",\"context\":{\"ts\":12}}", HR_ERANGE, "context.ts"},
    {"{\"user_id\":\"u\",\"context\":{\"weather\":\"rain\"}}", HR_EUNKNOWNFIELD, "context.weather"},
    {"{\"user_id\":\"u\",\"filters\":[\"news\"]}", HR_EBADFIELD, "filters"},
    {"{\"user_id\":\"u\",\"filters\":{\"category\":[]}}", HR_EBADFIELD, "filters.category"},
    {"{\"user_id\":\"u\",\"filters\":{\"category\":true}}", HR_EBADFIELD, "filters.category"},
    {"{\"user_id\":\"u\",\"filters\":{\"category\":[\"a\",{}]}}", HR_EBADFIELD, "filters.category[1]"},
    {"{\"user_id\":\"u\",\"filters\":{\"category\":\"a|b\"}}", HR_EBADFIELD, "filters.category"},
    {"{\"user_id\":\"u\",\"filters\":{\"category\":\"\"}}", HR_EBADFIELD, "filters.category"},
    {"{\"user_id\":\"u\",\"filters\":{\"\":\"x\"}}", HR_EBADFIELD, "filters"},
    {"{\"user_id\":\"u\",\"filters\":{\"a\":1,\"b\":1,\"c\":1,\"d\":1,"
     "\"e\":1,\"f\":1,\"g\":1,\"h\":1,\"i\":1,\"j\":1,\"k\":1,\"l\":1,"
     "\"m\":1,\"n\":1,\"o\":1,\"p\":1,\"q\":1}}", HR_ETOOMANY, "filters"},
};

static const bad_case bad_event[] = {
    {"nope", HR_EBADJSON, ""},
    {"{\"item_id\":\"1\",\"type\":\"view\"}", HR_EMISSING, "user_id"},
    {"{\"user_id\":\"1\",\"type\":\"view\"}", HR_EMISSING, "item_id"},
    {"{\"user_id\":\"1\",\"item_id\":\"2\"}", HR_EMISSING, "type"},
    {"{\"user_id\":\"1\",\"item_id\":\"2\",\"type\":\"like\"}", HR_EBADFIELD, "type"},
    {"{\"user_id\":\"1\",\"item_id\":\"2\",\"type\":\"view\",\"value\":\"5\"}", HR_EBADFIELD, "value"},
    {"{\"user_id\":\"1\",\"item_id\":\"2\",\"type\":\"view\",\"value\":1e12}", HR_ERANGE, "value"},
    {"{\"user_id\":\"1\",\"item_id\":\"2\",\"type\":\"view\",\"ts\":\"now\"}", HR_EBADFIELD, "ts"},
    {"{\"user_id\":\"1\",\"item_id\":\"2\",\"type\":\"view\",\"ts\":2000000000}", HR_ERANGE, "ts"},
    {"{\"user_id\":\"1\",\"type\":\"context\"}", HR_EMISSING, "context"},
    {"{\"user_id\":\"1\",\"type\":\"context\",\"context\":{\"ts\":1}}", HR_EUNKNOWNFIELD, "context.ts"},
    {"{\"user_id\":\"1\",\"item_id\":\"2\",\"type\":\"view\",\"event_id\":7}", HR_EBADFIELD, "event_id"},
    {"{\"user_id\":\"1\",\"item_id\":\"2\",\"type\":\"view\",\"colour\":1}", HR_EUNKNOWNFIELD, "colour"},
    {"{\"events\":{}}", HR_EBADFIELD, "events"},
    {"{\"events\":[]}", HR_EBADFIELD, "events"},
    {"{\"events\":[{\"user_id\":\"1\",\"item_id\":\"2\",\"type\":\"view\"},"
     "{\"user_id\":\"1\",\"type\":\"view\"}]}", HR_EMISSING, "events[1].item_id"},
    {"{\"events\":[],\"extra\":1}", HR_EUNKNOWNFIELD, "extra"},
};

HR_TEST(api_recommend_rejects_each_bad_input) {
  hr_config_t cfg;
  hr_config_defaults(&cfg);
  for (size_t i = 0; i < sizeof(bad_recommend) / sizeof(bad_recommend[0]); i++) {
    const bad_case *c = &bad_recommend[i];
    hr_recommend_req_t r;
    hr_error_t err = {0};
    int rc = hr_api_parse_recommend(c->body, strlen(c->body), &cfg, NOW, &r, &err);
    ASSERT_MSG(rc == c->code && strcmp(err.field, c->field) == 0,
               "case %zu %s: got %s field \"%s\" (%s), want %s field \"%s\"", i,
               c->body, hr_err_name(rc), err.field, err.msg,
               hr_err_name(c->code), c->field);
    ASSERT(err.msg[0] != '\0');
  }
  return 0;
}

HR_TEST(api_event_rejects_each_bad_input) {
  hr_config_t cfg;
  hr_config_defaults(&cfg);
  for (size_t i = 0; i < sizeof(bad_event) / sizeof(bad_event[0]); i++) {
    const bad_case *c = &bad_event[i];
    hr_event_req_t r;
    hr_error_t err = {0};
    int rc = hr_api_parse_events(c->body, strlen(c->body), &cfg, NOW, &r, &err);
    ASSERT_MSG(rc == c->code && strcmp(err.field, c->field) == 0,
               "case %zu %s: got %s field \"%s\" (%s), want %s field \"%s\"", i,
               c->body, hr_err_name(rc), err.field, err.msg,
               hr_err_name(c->code), c->field);
  }
  return 0;
}

HR_TEST(api_recommend_valid) {
  hr_config_t cfg;
  hr_recommend_req_t r;
  hr_error_t err = {0};
  const char *body =
      "{\"user_id\":42,\"k\":5,\"history\":[\"7\",8],\"exclude\":[9],"
      "\"explain\":true,\"context\":{\"tz\":\"Europe/Paris\",\"mood\":\"happy\","
      "\"ts\":1700000000}}";

  hr_config_defaults(&cfg);
  ASSERT_EQ(hr_api_parse_recommend(body, strlen(body), &cfg, NOW, &r, &err), 0);
  ASSERT_STR_EQ(r.user_id, "42");
  ASSERT_EQ(r.k, 5);
  ASSERT_EQ(r.n_history, 2);
  ASSERT_STR_EQ(r.history[1], "8");
  ASSERT_EQ(r.n_exclude, 1);
  ASSERT_STR_EQ(r.exclude[0], "9");
  ASSERT_EQ(r.explain, 1);
  ASSERT_STR_EQ(r.ctx[0], "Europe/Paris");
  ASSERT_STR_EQ(r.ctx[2], "happy");
  ASSERT(r.ctx[1] == NULL);
  ASSERT_EQ(r.ts, 1700000000LL);
  hr_recommend_req_destroy(&r);
  /* Filters: one value or a list; integers become their decimal text. */
  body = "{\"user_id\":\"u\",\"filters\":{\"category\":[\"news\",\"podcast\"],"
         "\"duration_min\":3}}";
  ASSERT_EQ(hr_api_parse_recommend(body, strlen(body), &cfg, NOW, &r, &err), 0);
  ASSERT_EQ(r.n_filters, 2);
  ASSERT_STR_EQ(r.filters[0].attr, "category");
  ASSERT_EQ(r.filters[0].n_values, 2);
  ASSERT_STR_EQ(r.filters[0].values[1], "podcast");
  ASSERT_STR_EQ(r.filters[1].attr, "duration_min");
  ASSERT_EQ(r.filters[1].n_values, 1);
  ASSERT_STR_EQ(r.filters[1].values[0], "3");
  hr_recommend_req_destroy(&r);
  /* Anonymous, defaults. */
  body = "{\"history\":[]}";
  ASSERT_EQ(hr_api_parse_recommend(body, strlen(body), &cfg, NOW, &r, &err), 0);
  ASSERT(r.user_id == NULL);
  ASSERT_EQ(r.k, cfg.recommend.default_k);
  ASSERT_EQ(r.ts, -1);
  hr_recommend_req_destroy(&r);
  /* The ignore policy lets unknown fields through. */
  snprintf(cfg.http.unknown_fields, sizeof(cfg.http.unknown_fields), "ignore");
  body = "{\"user_id\":\"u\",\"future_field\":1}";
  ASSERT_EQ(hr_api_parse_recommend(body, strlen(body), &cfg, NOW, &r, &err), 0);
  hr_recommend_req_destroy(&r);
  return 0;
}

/* context.extra takes as many entries as the trainer keeps context columns
 * (12: none of them need be a named field), and refuses one more by its
 * path. */
HR_TEST(api_recommend_context_extra_limit) {
  hr_config_t cfg;
  hr_recommend_req_t r;
  hr_error_t err = {0};
  char body[1024];
  size_t n;

  hr_config_defaults(&cfg);
  for (int total = HR_API_MAX_CTX_EXTRA; total <= HR_API_MAX_CTX_EXTRA + 1;
       total++) {
    n = (size_t)snprintf(body, sizeof(body),
                         "{\"user_id\":\"u\",\"context\":{\"extra\":{");
    for (int e = 0; e < total; e++)
      n += (size_t)snprintf(body + n, sizeof(body) - n, "%s\"c%d\":\"v\"",
                            e ? "," : "", e);
    n += (size_t)snprintf(body + n, sizeof(body) - n, "}}}");
    ASSERT(n < sizeof(body));
    if (total == HR_API_MAX_CTX_EXTRA) {
      ASSERT_EQ(hr_api_parse_recommend(body, n, &cfg, NOW, &r, &err), 0);
      ASSERT_EQ(r.n_ctx_extra, 12);
      ASSERT_STR_EQ(r.ctx_extra_name[11], "c11");
      hr_recommend_req_destroy(&r);
    } else {
      ASSERT_EQ(hr_api_parse_recommend(body, n, &cfg, NOW, &r, &err),
                HR_ETOOMANY);
      ASSERT_STR_EQ(err.field, "context.extra");
      hr_error_clear(&err);
    }
  }
  return 0;
}

HR_TEST(api_event_batch_limits_and_defaults) {
  hr_config_t cfg;
  hr_event_req_t r;
  hr_error_t err = {0};
  char body[4096];
  size_t n = 0;

  hr_config_defaults(&cfg);
  cfg.event.max_batch = 3;
  n += (size_t)snprintf(body + n, sizeof(body) - n, "{\"events\":[");
  for (int i = 0; i < 4; i++)
    n += (size_t)snprintf(body + n, sizeof(body) - n,
                          "%s{\"user_id\":\"u\",\"item_id\":%d,\"type\":\"view\"}",
                          i ? "," : "", i);
  snprintf(body + n, sizeof(body) - n, "]}");
  ASSERT_EQ(hr_api_parse_events(body, strlen(body), &cfg, NOW, &r, &err), HR_ETOOMANY);
  ASSERT_STR_EQ(err.field, "events");
  cfg.event.max_batch = 4;
  hr_error_clear(&err);
  ASSERT_EQ(hr_api_parse_events(body, strlen(body), &cfg, NOW, &r, &err), 0);
  ASSERT_EQ(r.n, 4);
  ASSERT_EQ(r.batch, 1);
  ASSERT_STR_EQ(r.events[3].item_id, "3");
  ASSERT_EQ(r.events[0].ts, NOW);
  hr_event_req_destroy(&r);
  const char *one = "{\"user_id\":\"u\",\"type\":\"context\",\"context\":"
                    "{\"location\":\"gym\"},\"ts\":1700000000,\"value\":2.5,"
                    "\"event_id\":\"e-1\",\"recommendation_id\":\"r1-x\"}";
  ASSERT_EQ(hr_api_parse_events(one, strlen(one), &cfg, NOW, &r, &err), 0);
  ASSERT_EQ(r.n, 1);
  ASSERT(r.events[0].item_id == NULL);
  ASSERT_STR_EQ(r.events[0].ctx[1], "gym");
  ASSERT_EQ(r.events[0].ts, 1700000000LL);
  ASSERT(r.events[0].has_value && r.events[0].value == 2.5);
  ASSERT_STR_EQ(r.events[0].event_id, "e-1");
  hr_event_req_destroy(&r);
  return 0;
}

HR_TEST(api_error_body_shape) {
  hr_error_t err = {0};
  hr_error_set(&err, HR_ERANGE, "k", "k must be an integer from 1 to %d", 100);
  char *s = hr_api_error_body(&err);
  ASSERT_STR_EQ(s, "{\"error\":{\"code\":\"out_of_range\",\"message\":\"k must "
                   "be an integer from 1 to 100\",\"field\":\"k\"}}");
  free(s);
  ASSERT_EQ(hr_err_status(HR_ETOOBIG), 413);
  ASSERT_EQ(hr_err_status(HR_EMEDIATYPE), 415);
  ASSERT_STR_EQ(hr_err_name(HR_EREDIS), "REDIS");
  return 0;
}

HR_TEST(api_error_body_always_valid_json) {
  hr_config_t cfg;
  hr_recommend_req_t r;
  hr_error_t err = {0};
  char body[512] = "{\"user_id\":\"u\",\"";
  size_t n = strlen(body);

  /* An unknown field name of 40 two-byte characters: the error's field and
   * message are cut to fixed sizes, possibly inside a character. */
  for (int i = 0; i < 40; i++) {
    body[n++] = (char)0xc3;
    body[n++] = (char)0xa9;
  }
  snprintf(body + n, sizeof(body) - n, "\":1}");
  hr_config_defaults(&cfg);
  ASSERT_EQ(hr_api_parse_recommend(body, strlen(body), &cfg, NOW, &r, &err),
            HR_EUNKNOWNFIELD);
  char *s = hr_api_error_body(&err);
  ASSERT_NOT_NULL(s);
  json_t *j = json_loads(s, 0, NULL);
  ASSERT_MSG(j != NULL, "not JSON: %s", s);
  ASSERT_STR_EQ(json_string_value(json_object_get(json_object_get(j, "error"), "code")),
                "unknown_field");
  json_decref(j);
  free(s);
  /* Raw bytes that are not UTF-8 at all. */
  hr_error_clear(&err);
  hr_error_set(&err, HR_EMETHOD, "", "%s not allowed", "F\xc3O\xff");
  s = hr_api_error_body(&err);
  j = json_loads(s, 0, NULL);
  ASSERT_MSG(j != NULL, "not JSON: %s", s);
  json_decref(j);
  free(s);
  /* "history": null does not make an anonymous request. */
  hr_error_clear(&err);
  ASSERT_EQ(hr_api_parse_recommend("{\"history\":null}", 16, &cfg, NOW, &r, &err),
            HR_EMISSING);
  return 0;
}
