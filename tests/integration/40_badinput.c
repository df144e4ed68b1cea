/* 40_badinput.c -- every kind of bad request, one test each: the status,
 * error.code and error.field of docs/api.md, a server that keeps serving,
 * and a Redis that was not touched (the seeded key unchanged, DBSIZE and
 * XLEN as before). The cases are data (BAD_CASE); run_bad does the rest. */
#include "lib/env.h"

#include <time.h>

#define JSON "Content-Type: application/json\r\n"

typedef struct {
  const char *method, *path;
  const char *headers;   /* extra header lines (Content-Type), or NULL */
  const char *body;      /* NULL: no body */
  const char *config;    /* config file text, or NULL */
  int status;
  const char *code, *field;
  const char *allow;     /* a method the Allow header must list, or NULL */
} bad_case;

/* Seed: one context hash for user u1, no stream. */
static int seed(hrt_env_t *e) {
  redisReply *r = hrt_rcmd(e, "HSET hr:ctx:{u1} location home");
  int ok = r != NULL && r->type == REDIS_REPLY_INTEGER;

  if (r != NULL)
    freeReplyObject(r);
  return ok ? 0 : -1;
}

static int run_bad(const bad_case *c) {
  HRT_ENV(e);
  hrt_env_opts_t o = {.config_json = c->config};
  hrt_resp_t r;
  char v[256];
  json_t *j;
  int st;

  ASSERT_EQ(hrt_env_start(&e, &o), 0);
  ASSERT_EQ(seed(&e), 0);
  ASSERT_EQ(hrt_req(&e, c->method, c->path, c->headers, c->body,
                    c->body ? strlen(c->body) : 0, &r),
            0);
  st = r.status;
  j = r.body ? json_loadb(r.body, r.body_len, 0, NULL) : NULL;
  if (c->allow != NULL) {
    ASSERT_MSG(hrt_resp_header(&r, "Allow", v, sizeof(v)) != NULL,
               "no Allow header");
    ASSERT_MSG(strstr(v, c->allow) != NULL, "Allow: %s (wanted %s)", v,
               c->allow);
  }
  ASSERT_NOT_NULL(hrt_resp_header(&r, "X-Request-Id", v, sizeof(v)));
  hrt_resp_free(&r);
  ASSERT_API_ERROR(j, st, c->status, c->code, c->field);
  json_decref(j);

  /* Nothing written: the seeded key alone, unchanged; no stream. */
  ASSERT_EQ(hrt_rint(&e, "DBSIZE"), 1);
  ASSERT_EQ(hrt_rint(&e, "XLEN hr:events"), 0);
  ASSERT_EQ(hrt_rint(&e, "HLEN hr:ctx:{u1}"), 1);
  ASSERT_EQ(hrt_rstr(&e, v, sizeof(v), "HGET hr:ctx:{u1} location"), 0);
  ASSERT_STR_EQ(v, "home");
  /* And the server still serves. */
  j = hrt_get(&e, "/healthz", &st);
  ASSERT_EQ(st, 200);
  json_decref(j);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

#define BAD_CASE(name, method, path, headers, body, config, status, code,     \
                 field, allow)                                                \
  HR_TEST_T(bad_##name, 60) {                                                 \
    static const bad_case c = {method, path,   headers, body, config,         \
                               status, code,   field,   allow};               \
    return run_bad(&c);                                                       \
  }
#define BAD_POST(name, path, body, status, code, field)                       \
  BAD_CASE(name, "POST", path, JSON, body, NULL, status, code, field, NULL)

/* ---------------------------------------------------------- not JSON */
BAD_POST(invalid_json_event, "/event",
         "{\"user_id\": \"u1\", \"type\": \"click\",", 400, "invalid_json", "")
BAD_POST(invalid_json_recommend, "/recommend", "{user_id: u1}", 400,
         "invalid_json", "")
BAD_POST(json_not_object, "/recommend", "[\"u1\"]", 400, "invalid_json", "")
BAD_POST(json_trailing_garbage, "/event",
         "{\"user_id\":\"u1\",\"type\":\"view\",\"item_id\":\"i1\"} x", 400,
         "invalid_json", "")
BAD_POST(empty_body, "/event", "", 400, "invalid_json", "")
BAD_POST(invalid_utf8, "/event",
         "{\"user_id\":\"u1\",\"type\":\"view\",\"item_id\":\"\xff\xfe\"}",
         400, "invalid_json", "")

/* ---------------------------------------------------------- wrong types */
BAD_POST(k_is_string, "/recommend", "{\"user_id\":\"u1\",\"k\":\"10\"}", 400,
         "invalid_field", "k")
BAD_POST(user_id_is_object, "/event",
         "{\"user_id\":{\"id\":1},\"type\":\"click\",\"item_id\":\"i1\"}", 400,
         "invalid_field", "user_id")
BAD_POST(user_id_negative, "/recommend", "{\"user_id\":-3}", 400,
         "invalid_field", "user_id")
BAD_POST(user_id_empty, "/recommend", "{\"user_id\":\"\"}", 400,
         "invalid_field", "user_id")
BAD_POST(user_id_control_char, "/event",
         "{\"user_id\":\"u\\u0001x\",\"type\":\"view\",\"item_id\":\"i1\"}",
         400, "invalid_field", "user_id")
BAD_POST(user_id_too_long, "/recommend",
         "{\"user_id\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aaaaaaaaaa\"}", /* 129 bytes */
         400, "invalid_field", "user_id")
BAD_POST(history_not_array, "/recommend", "{\"history\":\"i1\"}", 400,
         "invalid_field", "history")
BAD_POST(history_element_object, "/recommend",
         "{\"user_id\":\"u1\",\"history\":[\"i1\",{\"x\":1}]}", 400,
         "invalid_field", "history[1]")
BAD_POST(exclude_element_bool, "/recommend",
         "{\"user_id\":\"u1\",\"exclude\":[true]}", 400, "invalid_field",
         "exclude[0]")
BAD_POST(explain_not_bool, "/recommend",
         "{\"user_id\":\"u1\",\"explain\":\"yes\"}", 400, "invalid_field",
         "explain")
BAD_POST(context_mood_number, "/recommend",
         "{\"user_id\":\"u1\",\"context\":{\"mood\":5}}", 400, "invalid_field",
         "context.mood")
BAD_POST(context_not_object, "/recommend",
         "{\"user_id\":\"u1\",\"context\":\"home\"}", 400, "invalid_field",
         "context")
BAD_POST(context_bad_tz, "/recommend",
         "{\"user_id\":\"u1\",\"context\":{\"tz\":\"Mars/Olympus_Mons\"}}",
         400, "invalid_field", "context.tz")
BAD_POST(event_type_unknown, "/event",
         "{\"user_id\":\"u1\",\"type\":\"like\",\"item_id\":\"i1\"}", 400,
         "invalid_field", "type")
BAD_POST(event_value_string, "/event",
         "{\"user_id\":\"u1\",\"type\":\"rating\",\"item_id\":\"i1\","
         "\"value\":\"5\"}",
         400, "invalid_field", "value")
BAD_POST(event_context_location_array, "/event",
         "{\"user_id\":\"u1\",\"type\":\"context\",\"context\":"
         "{\"location\":[\"gym\"]}}",
         400, "invalid_field", "context.location")
BAD_POST(events_not_array, "/event", "{\"events\":{}}", 400, "invalid_field",
         "events")

BAD_POST(recommend_filters_not_object, "/recommend",
         "{\"user_id\":\"u1\",\"filters\":[\"news\"]}", 400,
         "invalid_field", "filters")
BAD_POST(recommend_filter_empty_list, "/recommend",
         "{\"user_id\":\"u1\",\"filters\":{\"category\":[]}}", 400,
         "invalid_field", "filters.category")
BAD_POST(recommend_too_many_filters, "/recommend",
         "{\"user_id\":\"u1\",\"filters\":{\"a\":1,\"b\":1,\"c\":1,"
         "\"d\":1,\"e\":1,\"f\":1,\"g\":1,\"h\":1,\"i\":1,\"j\":1,"
         "\"k\":1,\"l\":1,\"m\":1,\"n\":1,\"o\":1,\"p\":1,\"q\":1}}",
         400, "too_many", "filters")
/* Checked against the serving model: it has no such attribute. */
BAD_POST(recommend_filter_unknown_attribute, "/recommend",
         "{\"user_id\":\"u1\",\"filters\":{\"colour\":\"red\"}}", 400,
         "invalid_field", "filters.colour")

/* ---------------------------------------------------------- missing */
BAD_POST(recommend_missing_user_id, "/recommend", "{\"k\":5}", 400,
         "missing_field", "user_id")
BAD_POST(event_missing_user_id, "/event",
         "{\"type\":\"click\",\"item_id\":\"i1\"}", 400, "missing_field",
         "user_id")
BAD_POST(event_missing_type, "/event",
         "{\"user_id\":\"u1\",\"item_id\":\"i1\"}", 400, "missing_field",
         "type")
BAD_POST(event_missing_item_id, "/event",
         "{\"user_id\":\"u1\",\"type\":\"click\"}", 400, "missing_field",
         "item_id")
BAD_POST(context_event_missing_context, "/event",
         "{\"user_id\":\"u1\",\"type\":\"context\"}", 400, "missing_field",
         "context")

/* ---------------------------------------------------------- out of range */
BAD_POST(k_zero, "/recommend", "{\"user_id\":\"u1\",\"k\":0}", 400,
         "out_of_range", "k")
BAD_POST(k_over_max, "/recommend", "{\"user_id\":\"u1\",\"k\":101}", 400,
         "out_of_range", "k")
BAD_CASE(k_over_configured_max, "POST", "/recommend", JSON,
         "{\"user_id\":\"u1\",\"k\":21}", "{\"recommend\":{\"max_k\":20}}",
         400, "out_of_range", "k", NULL)
BAD_POST(event_ts_before_2000, "/event",
         "{\"user_id\":\"u1\",\"type\":\"view\",\"item_id\":\"i1\","
         "\"ts\":946684799}",
         400, "out_of_range", "ts")
BAD_POST(event_value_too_big, "/event",
         "{\"user_id\":\"u1\",\"type\":\"rating\",\"item_id\":\"i1\","
         "\"value\":1e10}",
         400, "out_of_range", "value")
BAD_POST(recommend_ts_before_2000, "/recommend",
         "{\"user_id\":\"u1\",\"context\":{\"ts\":12}}", 400, "out_of_range",
         "context.ts")

/* A timestamp two days ahead: the body depends on the clock. */
HR_TEST_T(bad_event_ts_in_future, 60) {
  static char body[256];
  bad_case c = {"POST", "/event", JSON, body, NULL, 400, "out_of_range",
                "ts", NULL};

  snprintf(body, sizeof(body),
           "{\"user_id\":\"u1\",\"type\":\"view\",\"item_id\":\"i1\","
           "\"ts\":%lld}",
           (long long)time(NULL) + 2 * 86400);
  return run_bad(&c);
}

/* ---------------------------------------------------------- unknown fields */
BAD_POST(unknown_field_top, "/recommend",
         "{\"user_id\":\"u1\",\"excludes\":[\"i1\"]}", 400, "unknown_field",
         "excludes")
BAD_POST(unknown_field_in_context, "/event",
         "{\"user_id\":\"u1\",\"type\":\"context\",\"context\":"
         "{\"location\":\"gym\",\"colour\":\"red\"}}",
         400, "unknown_field", "context.colour")
BAD_POST(unknown_field_in_batch_event, "/event",
         "{\"events\":[{\"user_id\":\"u1\",\"type\":\"view\",\"item_id\":"
         "\"i1\"},{\"user_id\":\"u1\",\"type\":\"view\",\"item_id\":\"i2\","
         "\"foo\":1}]}",
         400, "unknown_field", "events[1].foo")

/* ---------------------------------------------------------- batches */
BAD_POST(one_bad_event_in_batch_writes_nothing, "/event",
         "{\"events\":["
         "{\"user_id\":\"u1\",\"type\":\"view\",\"item_id\":\"i1\"},"
         "{\"user_id\":\"u1\",\"type\":\"click\"},"
         "{\"user_id\":\"u1\",\"type\":\"context\",\"context\":"
         "{\"location\":\"gym\"}}]}",
         400, "missing_field", "events[1].item_id")
BAD_POST(batch_event_bad_type, "/event",
         "{\"events\":["
         "{\"user_id\":\"u1\",\"type\":\"view\",\"item_id\":\"i1\"},"
         "{\"user_id\":\"u1\",\"type\":\"view\",\"item_id\":\"i2\"},"
         "{\"user_id\":\"u1\",\"type\":\"zzz\",\"item_id\":\"i3\"}]}",
         400, "invalid_field", "events[2].type")

/* 101 events with the default event.max_batch of 100. */
HR_TEST_T(bad_too_many_events, 60) {
  static char body[16384];
  bad_case c = {"POST", "/event", JSON, body, NULL, 400, "too_many",
                "events", NULL};
  size_t n = 0;

  n += (size_t)snprintf(body + n, sizeof(body) - n, "{\"events\":[");
  for (int i = 0; i < 101; i++)
    n += (size_t)snprintf(body + n, sizeof(body) - n,
                          "%s{\"user_id\":\"u1\",\"type\":\"view\","
                          "\"item_id\":\"i%d\"}",
                          i ? "," : "", i);
  snprintf(body + n, sizeof(body) - n, "]}");
  return run_bad(&c);
}

/* 201 history items with the default recommend.max_history of 200. */
HR_TEST_T(bad_too_long_history, 60) {
  static char body[16384];
  bad_case c = {"POST", "/recommend", JSON, body, NULL, 400, "too_many",
                "history", NULL};
  size_t n = 0;

  n += (size_t)snprintf(body + n, sizeof(body) - n,
                        "{\"user_id\":\"u1\",\"history\":[");
  for (int i = 0; i < 201; i++)
    n += (size_t)snprintf(body + n, sizeof(body) - n, "%s\"i%d\"",
                          i ? "," : "", i);
  snprintf(body + n, sizeof(body) - n, "]}");
  return run_bad(&c);
}

/* ---------------------------------------------------------- body size */
/* 4 KB of otherwise valid JSON over a 1 KiB limit. */
static void big_body(char *body, size_t size, const char *head) {
  size_t n = (size_t)snprintf(body, size, "%s", head);
  for (int i = 0; n + 64 < size && n < 4096; i++)
    n += (size_t)snprintf(body + n, size - n, "%s\"item-%06d\"",
                          i ? "," : "", i);
  snprintf(body + n, size - n, "]}");
}

HR_TEST_T(bad_body_too_large_recommend, 60) {
  static char body[8192];
  bad_case c = {"POST", "/recommend", JSON, body,
                "{\"http\":{\"max_body_bytes\":1024}}", 413,
                "payload_too_large", "", NULL};

  big_body(body, sizeof(body), "{\"user_id\":\"u1\",\"history\":[");
  return run_bad(&c);
}

HR_TEST_T(bad_body_too_large_event, 60) {
  static char body[8192];
  bad_case c = {"POST", "/event", JSON, body,
                "{\"http\":{\"max_body_bytes\":1024}}", 413,
                "payload_too_large", "", NULL};

  big_body(body, sizeof(body),
           "{\"user_id\":\"u1\",\"type\":\"context\",\"context\":"
           "{\"location\":\"gym\"},\"x\":[");
  return run_bad(&c);
}

/* The client announces the body and may wait for 100 Continue; the server
 * can refuse from the Content-Length alone. */
HR_TEST_T(bad_body_too_large_expect_continue, 60) {
  static char body[8192];
  bad_case c = {"POST", "/event", JSON "Expect: 100-continue\r\n", body,
                "{\"http\":{\"max_body_bytes\":1024}}", 413,
                "payload_too_large", "", NULL};

  big_body(body, sizeof(body),
           "{\"user_id\":\"u1\",\"type\":\"view\",\"item_id\":\"i1\","
           "\"x\":[");
  return run_bad(&c);
}

/* Encode text as chunks of `chunk` bytes. */
static void chunked(char *out, size_t size, const char *text, size_t chunk) {
  size_t n = 0, len = strlen(text);

  for (size_t off = 0; off < len; off += chunk) {
    size_t c = len - off < chunk ? len - off : chunk;
    n += (size_t)snprintf(out + n, size - n, "%zx\r\n%.*s\r\n", c, (int)c,
                          text + off);
  }
  snprintf(out + n, size - n, "0\r\n\r\n");
}

/* No Content-Length at all: the limit must hold while the body streams. */
HR_TEST_T(bad_body_too_large_chunked, 60) {
  static char text[8192], body[12288];
  bad_case c = {"POST", "/recommend",
                JSON "Transfer-Encoding: chunked\r\n", body,
                "{\"http\":{\"max_body_bytes\":1024}}", 413,
                "payload_too_large", "", NULL};

  big_body(text, sizeof(text), "{\"user_id\":\"u1\",\"history\":[");
  chunked(body, sizeof(body), text, 300);
  return run_bad(&c);
}

/* ---------------------------------------------------------- routing, media */
BAD_CASE(unknown_path, "GET", "/nope", NULL, NULL, NULL, 404, "not_found", "",
         NULL)
BAD_CASE(unknown_path_post, "POST", "/recommend/extra", JSON,
         "{\"user_id\":\"u1\"}", NULL, 404, "not_found", "", NULL)
BAD_CASE(wrong_method_recommend, "GET", "/recommend", NULL, NULL, NULL, 405,
         "method_not_allowed", "", "POST")
BAD_CASE(wrong_method_event, "PUT", "/event", JSON,
         "{\"user_id\":\"u1\",\"type\":\"view\",\"item_id\":\"i1\"}", NULL,
         405, "method_not_allowed", "", "POST")
BAD_CASE(wrong_method_healthz, "DELETE", "/healthz", NULL, NULL, NULL, 405,
         "method_not_allowed", "", "GET")
BAD_CASE(content_type_text, "POST", "/event", "Content-Type: text/plain\r\n",
         "{\"user_id\":\"u1\",\"type\":\"view\",\"item_id\":\"i1\"}", NULL,
         415, "unsupported_media_type", "", NULL)
BAD_CASE(content_type_form, "POST", "/recommend",
         "Content-Type: application/x-www-form-urlencoded\r\n",
         "user_id=u1", NULL, 415, "unsupported_media_type", "", NULL)
BAD_CASE(content_type_missing, "POST", "/event", NULL,
         "{\"user_id\":\"u1\",\"type\":\"view\",\"item_id\":\"i1\"}", NULL,
         415, "unsupported_media_type", "", NULL)

/* ---------------------------------------------------------- /similar */
#define BAD_SIMILAR(name, body, status, code, field)                          \
  BAD_POST(similar_##name, "/similar", body, status, code, field)
BAD_SIMILAR(no_item_id, "{}", 400, "missing_field", "item_id")
BAD_SIMILAR(item_id_null, "{\"item_id\": null}", 400, "missing_field",
            "item_id")
BAD_SIMILAR(item_id_empty, "{\"item_id\": \"\"}", 400, "invalid_field",
            "item_id")
BAD_SIMILAR(item_id_array, "{\"item_id\": [1]}", 400, "invalid_field",
            "item_id")
BAD_SIMILAR(item_id_negative, "{\"item_id\": -3}", 400, "invalid_field",
            "item_id")
BAD_SIMILAR(item_unknown, "{\"item_id\": \"no-such-item\"}", 404,
            "not_found", "item_id")
BAD_SIMILAR(k_zero, "{\"item_id\": \"i00001\", \"k\": 0}", 400,
            "out_of_range", "k")
BAD_SIMILAR(k_too_big, "{\"item_id\": \"i00001\", \"k\": 101}", 400,
            "out_of_range", "k")
BAD_SIMILAR(k_string, "{\"item_id\": \"i00001\", \"k\": \"3\"}", 400,
            "invalid_field", "k")
BAD_SIMILAR(exclude_string, "{\"item_id\": \"i00001\", \"exclude\": \"i2\"}",
            400, "invalid_field", "exclude")
BAD_SIMILAR(filter_unknown_attribute,
            "{\"item_id\": \"i00001\", \"filters\": {\"colour\": \"red\"}}",
            400, "invalid_field", "filters.colour")
BAD_SIMILAR(history_unknown, "{\"item_id\": \"i00001\", \"history\": []}",
            400, "unknown_field", "history")
BAD_SIMILAR(user_id_object, "{\"item_id\": \"i00001\", \"user_id\": {}}", 400,
            "invalid_field", "user_id")
BAD_SIMILAR(json_array, "[\"i00001\"]", 400, "invalid_json", "")
BAD_SIMILAR(json_cut, "{\"item_id\": \"i00001\",", 400, "invalid_json", "")

/* ---------------------------------------------------------- /popular */
#define BAD_POPULAR(name, body, status, code, field)                          \
  BAD_POST(popular_##name, "/popular", body, status, code, field)
BAD_POPULAR(k_zero, "{\"k\": 0}", 400, "out_of_range", "k")
BAD_POPULAR(k_fraction, "{\"k\": 1.5}", 400, "invalid_field", "k")
BAD_POPULAR(context_string, "{\"context\": \"home\"}", 400, "invalid_field",
            "context")
BAD_POPULAR(context_bad_tz, "{\"context\": {\"tz\": \"Mars/Olympus\"}}", 400,
            "invalid_field", "context.tz")
BAD_POPULAR(context_unknown_field, "{\"context\": {\"planet\": \"mars\"}}",
            400, "unknown_field", "context.planet")
BAD_POPULAR(context_extra_bad_name,
            "{\"context\": {\"extra\": {\"Bad Name\": \"x\"}}}", 400,
            "invalid_field", "context.extra.Bad Name")
BAD_POPULAR(filter_unknown_attribute, "{\"filters\": {\"colour\": \"red\"}}",
            400, "invalid_field", "filters.colour")
BAD_POPULAR(exclude_object, "{\"exclude\": {}}", 400, "invalid_field",
            "exclude")
BAD_POPULAR(user_id_unknown, "{\"user_id\": \"u1\"}", 400, "unknown_field",
            "user_id")
BAD_POPULAR(user_age_out_of_range, "{\"user_attrs\": {\"age\": 500}}", 400,
            "out_of_range", "user_attrs.age")
BAD_POPULAR(not_json, "nope", 400, "invalid_json", "")
BAD_POPULAR(trending_string, "{\"trending\": \"yes\"}", 400, "invalid_field",
            "trending")
BAD_POPULAR(trending_with_context,
            "{\"trending\": true, \"context\": {\"mood\": \"happy\"}}", 400,
            "invalid_field", "context")
BAD_POPULAR(trending_with_user_attrs,
            "{\"trending\": true, \"user_attrs\": {\"age\": 30}}", 400,
            "invalid_field", "user_attrs")

/* ---------------------------------------------------------- /items */
#define ITEMS_TOKEN "test-admin-token-0123456789"
#define ITEMS_CFG "{\"admin\": {\"token\": \"" ITEMS_TOKEN "\"}}"
#define ADMIN_JSON JSON "Authorization: Bearer " ITEMS_TOKEN "\r\n"
#define BAD_ITEM(name, path, headers, body, status, code, field)              \
  BAD_CASE(item_##name, "PUT", path, headers, body, ITEMS_CFG, status, code,  \
           field, NULL)
BAD_ITEM(no_hidden, "/items/i1", ADMIN_JSON, "{}", 400, "missing_field",
         "hidden")
BAD_ITEM(hidden_string, "/items/i1", ADMIN_JSON, "{\"hidden\": \"yes\"}", 400,
         "invalid_field", "hidden")
BAD_ITEM(hidden_number, "/items/i1", ADMIN_JSON, "{\"hidden\": 1}", 400,
         "invalid_field", "hidden")
BAD_ITEM(unknown_field, "/items/i1", ADMIN_JSON,
         "{\"hidden\": true, \"reason\": \"x\"}", 400, "unknown_field",
         "reason")
BAD_ITEM(json_array, "/items/i1", ADMIN_JSON, "[true]", 400, "invalid_json",
         "")
BAD_ITEM(not_json, "/items/i1", ADMIN_JSON, "nope", 400, "invalid_json", "")
BAD_ITEM(id_empty, "/items/", ADMIN_JSON, "{\"hidden\": true}", 400,
         "invalid_field", "item_id")
BAD_ITEM(id_too_long,
         "/items/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aa", /* 129 bytes */
         ADMIN_JSON, "{\"hidden\": true}", 400, "invalid_field", "item_id")
BAD_ITEM(no_token, "/items/i1", JSON, "{\"hidden\": true}", 401,
         "unauthorized", "")
BAD_ITEM(wrong_token, "/items/i1",
         JSON "Authorization: Bearer wrong-token-0123456789\r\n",
         "{\"hidden\": true}", 401, "unauthorized", "")
BAD_ITEM(not_json_type, "/items/i1",
         "Content-Type: text/plain\r\nAuthorization: Bearer " ITEMS_TOKEN
         "\r\n",
         "{\"hidden\": true}", 415, "unsupported_media_type", "")
BAD_ITEM(no_body, "/items/i1", ADMIN_JSON, "", 400, "invalid_json", "")
BAD_CASE(item_post, "POST", "/items/i1", ADMIN_JSON, "{\"hidden\": true}",
         ITEMS_CFG, 405, "method_not_allowed", "", "PUT")
BAD_CASE(item_without_admin_token, "PUT", "/items/i1", JSON,
         "{\"hidden\": true}", NULL, 404, "not_found", "", NULL)

/* ---------------------------------------------------------- the good twins */
/* The policy's other setting, and a charset parameter, are accepted. */
HR_TEST_T(unknown_fields_ignored_by_policy, 60) {
  HRT_ENV(e);
  hrt_env_opts_t o = {.config_json = "{\"http\":{\"unknown_fields\":"
                                     "\"ignore\"}}"};
  json_t *j;
  int st;

  ASSERT_EQ(hrt_env_start(&e, &o), 0);
  j = hrt_post_text(&e, "/recommend",
                    "{\"user_id\":\"u1\",\"excludes\":[\"i1\"],\"k\":3}", &st);
  ASSERT_MSG(st == 200, "status %d: %s", st, hrt_jdump(j));
  ASSERT_EQ(json_array_size(hrt_jget(j, "items")), 3);
  json_decref(j);
  j = hrt_post_text(&e, "/event",
                    "{\"user_id\":\"u1\",\"type\":\"view\",\"item_id\":\"i1\","
                    "\"colour\":\"red\"}",
                    &st);
  ASSERT_MSG(st == 202, "status %d: %s", st, hrt_jdump(j));
  json_decref(j);
  ASSERT_EQ(hrt_rint(&e, "XLEN hr:events"), 1);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

HR_TEST_T(content_type_with_charset_accepted, 60) {
  HRT_ENV(e);
  hrt_resp_t r;
  const char *body = "{\"user_id\":\"u1\",\"k\":2}";

  ASSERT_EQ(hrt_env_start(&e, NULL), 0);
  ASSERT_EQ(hrt_req(&e, "POST", "/recommend",
                    "Content-Type: application/json; charset=utf-8\r\n", body,
                    strlen(body), &r),
            0);
  ASSERT_MSG(r.status == 200, "status %d: %s", r.status, r.body);
  hrt_resp_free(&r);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

HR_TEST_T(chunked_request_body_accepted, 60) {
  HRT_ENV(e);
  static char body[1024];
  const char *text = "{\"user_id\":\"u1\",\"type\":\"view\","
                     "\"item_id\":\"i1\"}";
  hrt_resp_t r;

  chunked(body, sizeof(body), text, 7);
  ASSERT_EQ(hrt_env_start(&e, NULL), 0);
  ASSERT_EQ(hrt_req(&e, "POST", "/event",
                    JSON "Transfer-Encoding: chunked\r\n", body, strlen(body),
                    &r),
            0);
  ASSERT_MSG(r.status == 202, "status %d: %s", r.status, r.body);
  hrt_resp_free(&r);
  ASSERT_EQ(hrt_rint(&e, "XLEN hr:events"), 1);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}
