/* 24_items.c -- hidden items (PUT /items/<id>, GET /items/hidden) applied
 * by /recommend, /similar and /popular on two replicas of one Redis within
 * a second; /popular's trending list from the event stream; the hidden
 * items' limit (bad input: 40_badinput.c). */
#include "lib/env.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ITEMS_TOKEN "test-admin-token-0123456789"
#define ITEMS_AUTH "Authorization: Bearer " ITEMS_TOKEN "\r\n"
#define ITEMS_CFG "{\"admin\": {\"token\": \"" ITEMS_TOKEN "\"}}"

/* A second server on e's Redis, models and config. */
static int start_replica(hrt_env_t *e, hrt_server_t *b) {
  char redis_addr[32];
  hrt_fmt(redis_addr, sizeof(redis_addr), "127.0.0.1:%d", e->redis.port);
  const char *args[] = {"--listen", "127.0.0.1:0", "--redis", redis_addr,
                        "--models", e->models, "--config", e->config, NULL};
  return hrt_server_start(b, args);
}

static int hide(int port, const char *item, int hidden) {
  char path[200], body[32];
  int st;
  hrt_fmt(path, sizeof(path), "/items/%s", item);
  hrt_fmt(body, sizeof(body), "{\"hidden\": %s}", hidden ? "true" : "false");
  json_t *j = hrt_port_json(port, "PUT", path, ITEMS_AUTH, body, &st);
  int ok = st == 200 && hrt_jget(j, "hidden") != NULL &&
           json_is_true(hrt_jget(j, "hidden")) == hidden;
  if (!ok)
    fprintf(stderr, "  PUT %s: %d %s\n", path, st, hrt_jdump(j));
  json_decref(j);
  return ok ? 0 : -1;
}

/* The item ids of one list answer (0 on success). */
static int list_ids(int port, const char *path, const char *body,
                    hrt_strv_t *out) {
  int st;
  json_t *j = hrt_port_json(port, "POST", path, NULL, body, &st);
  hrt_strv_free(out);
  int rc = st == 200 ? hrt_item_ids(j, out) : -1;
  if (rc != 0)
    fprintf(stderr, "  %s %s: %d %s\n", path, body, st, hrt_jdump(j));
  json_decref(j);
  return rc;
}

static int has(const hrt_strv_t *v, const char *id) {
  for (size_t i = 0; i < v->n; i++)
    if (strcmp(v->v[i], id) == 0)
      return 1;
  return 0;
}

#define N_ENDPOINTS 3
static const char *const ep_path[N_ENDPOINTS] = {"/recommend", "/similar",
                                                 "/popular"};

/* 1 when none of the three answers of the server on `port` holds any of
 * the n ids (want_present 0), or when each holds its own (1). */
static int lists_match(int port, char bodies[N_ENDPOINTS][128],
                       char ids[N_ENDPOINTS][64], int want_present) {
  for (int i = 0; i < N_ENDPOINTS; i++) {
    hrt_strv_t v = {0};
    if (list_ids(port, ep_path[i], bodies[i], &v) != 0)
      return 0;
    int present = has(&v, ids[i]);
    hrt_strv_free(&v);
    if (present != want_present)
      return 0;
  }
  return 1;
}

/* An item hidden through one replica leaves the answers of /recommend,
 * /similar and /popular on both replicas within one second (the refresh
 * runs every items.refresh_ms, 250 by default), is listed by GET
 * /items/hidden on both, and comes back to all of them when shown again. */
HR_TEST_T(hidden_items_leave_every_endpoint_on_two_replicas, 90) {
  HRT_ENV(e);
  hrt_env_opts_t o = {.config_json = ITEMS_CFG};
  hrt_server_t b = {0};
  hrt_strv_t users = {0}, v = {0};
  char bodies[N_ENDPOINTS][128], ids[N_ENDPOINTS][64];
  int st, ok = 0;

  ASSERT_EQ(hrt_env_start(&e, &o), 0);
  ASSERT_EQ(start_replica(&e, &b), 0);
  ASSERT_EQ(hrt_fixture_top_users(&e.fx, 1, &users), 0);
  /* the anchor of /similar: the top popular item; the hidden ones: the
   * first item of each endpoint's answer on replica b */
  ASSERT_EQ(list_ids(b.port, "/popular", "{\"k\": 3}", &v), 0);
  hrt_fmt(bodies[0], sizeof(bodies[0]), "{\"user_id\": \"%s\", \"k\": 10}",
          users.v[0]);
  hrt_fmt(bodies[1], sizeof(bodies[1]), "{\"item_id\": \"%s\", \"k\": 10}",
          v.v[0]);
  hrt_fmt(bodies[2], sizeof(bodies[2]), "{\"k\": 10}");
  for (int i = 0; i < N_ENDPOINTS; i++) { /* three different items */
    size_t k = 0;
    ASSERT_EQ(list_ids(b.port, ep_path[i], bodies[i], &v), 0);
    while (k < v.n && ((i > 0 && strcmp(v.v[k], ids[0]) == 0) ||
                       (i > 1 && strcmp(v.v[k], ids[1]) == 0)))
      k++;
    ASSERT_LT(k, v.n);
    hrt_fmt(ids[i], sizeof(ids[i]), "%s", v.v[k]);
  }
  ASSERT(lists_match(e.srv.port, bodies, ids, 1));
  ASSERT(lists_match(b.port, bodies, ids, 1));

  long long keys0 = hrt_rint(&e, "DBSIZE");
  long long t0 = hrt_now_ms();
  for (int i = 0; i < N_ENDPOINTS; i++)
    ASSERT_EQ(hide(e.srv.port, ids[i], 1), 0);
  long long t_put = hrt_now_ms();
  /* replica b hears of it through Redis alone */
  HRT_POLL(ok, 3000, lists_match(b.port, bodies, ids, 0));
  long long t_b = hrt_now_ms();
  ASSERT_MSG(ok, "replica b still shows a hidden item after 3 s");
  ASSERT(lists_match(e.srv.port, bodies, ids, 0));
  printf("  hidden on replica b %lld ms after the last PUT answered "
         "(%lld ms after the first was sent)\n", t_b - t_put, t_b - t0);
  ASSERT_MSG(t_b - t_put < 1000 * hrt_mult(), "%lld ms", t_b - t_put);
  /* the set and its version: two keys, nothing else written */
  ASSERT_EQ(hrt_rint(&e, "DBSIZE"), keys0 + 2);
  ASSERT_EQ(hrt_rint(&e, "SCARD hr:items:{hidden}"), 3);

  int ports[2] = {e.srv.port, b.port};
  for (int p = 0; p < 2; p++) {
    json_t *j = hrt_port_json(ports[p], "GET", "/items/hidden", NULL, NULL,
                              &st);
    ASSERT_MSG(st == 200, "%d %s", st, hrt_jdump(j));
    ASSERT_EQ(hrt_jint(j, "count"), 3);
    ASSERT_EQ(hrt_jint(j, "applied_here"), 3);
    ASSERT_EQ(hrt_jint(j, "version"), 3);
    json_t *items = hrt_jget(j, "items");
    ASSERT(json_is_array(items) && json_array_size(items) == 3);
    for (int i = 0; i < N_ENDPOINTS; i++) {
      int found = 0;
      for (size_t k = 0; k < 3; k++)
        found += strcmp(json_string_value(json_array_get(items, k)),
                        ids[i]) == 0;
      ASSERT_MSG(found == 1, "%s not listed: %s", ids[i], hrt_jdump(j));
    }
    json_decref(j);
  }
  /* hiding again changes nothing (no new version) */
  json_t *j = hrt_port_json(b.port, "PUT", "/items/x", ITEMS_AUTH,
                            "{\"hidden\": false}", &st);
  ASSERT_EQ(st, 200);
  ASSERT(json_is_false(hrt_jget(j, "changed")));
  json_decref(j);
  char ver[32];
  ASSERT_EQ(hrt_rstr(&e, ver, sizeof(ver), "GET hr:items:{hidden}:version"),
            0);
  ASSERT_STR_EQ(ver, "3");

  /* shown again through replica b: back on both */
  for (int i = 0; i < N_ENDPOINTS; i++)
    ASSERT_EQ(hide(b.port, ids[i], 0), 0);
  t_put = hrt_now_ms();
  HRT_POLL(ok, 3000, lists_match(e.srv.port, bodies, ids, 1));
  ASSERT_MSG(ok, "replica a still hides an item shown again");
  printf("  shown again on replica a %lld ms after the last PUT\n",
         hrt_now_ms() - t_put);
  ASSERT(lists_match(b.port, bodies, ids, 1));
  ASSERT_EQ(hrt_rint(&e, "SCARD hr:items:{hidden}"), 0);

  hrt_strv_free(&users);
  hrt_strv_free(&v);
  ASSERT_EQ(hrt_server_stop(&b), 0);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

/* A replica that starts after an item was hidden never serves it: the set
 * is read before it listens. */
HR_TEST_T(hidden_items_apply_from_a_replicas_first_request, 60) {
  HRT_ENV(e);
  hrt_env_opts_t o = {.config_json = ITEMS_CFG};
  hrt_server_t b = {0};
  hrt_strv_t v = {0};

  ASSERT_EQ(hrt_env_start(&e, &o), 0);
  ASSERT_EQ(list_ids(e.srv.port, "/popular", "{\"k\": 5}", &v), 0);
  char top[64];
  hrt_fmt(top, sizeof(top), "%s", v.v[0]);
  ASSERT_EQ(hide(e.srv.port, top, 1), 0);
  ASSERT_EQ(start_replica(&e, &b), 0);
  ASSERT_EQ(list_ids(b.port, "/popular", "{\"k\": 5}", &v), 0);
  ASSERT_EQ(v.n, 5);
  ASSERT(!has(&v, top));
  hrt_strv_free(&v);
  ASSERT_EQ(hrt_server_stop(&b), 0);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

/* POST /popular {"trending": true}: items weighted by their recent events
 * in the stream, on every replica (each reads the stream); the rest of
 * the list from popularity with score 0; hidden items left out. */
HR_TEST_T(popular_trending_follows_the_event_stream, 90) {
  HRT_ENV(e);
  hrt_env_opts_t o = {.config_json = ITEMS_CFG};
  hrt_server_t b = {0};
  hrt_strv_t pop = {0}, v = {0};
  char ev[4096], a[64], c[64];
  int st, ok = 0;

  ASSERT_EQ(hrt_env_start(&e, &o), 0);
  ASSERT_EQ(start_replica(&e, &b), 0);
  /* two items far down the popularity list: c gets 3 events, a gets 1 */
  ASSERT_EQ(list_ids(b.port, "/popular", "{\"k\": 40}", &pop), 0);
  ASSERT_EQ(pop.n, 40);
  hrt_fmt(c, sizeof(c), "%s", pop.v[39]);
  hrt_fmt(a, sizeof(a), "%s", pop.v[30]);
  hrt_fmt(ev, sizeof(ev),
          "{\"events\": [{\"user_id\": \"t1\", \"item_id\": \"%s\", "
          "\"type\": \"view\"}, {\"user_id\": \"t2\", \"item_id\": \"%s\", "
          "\"type\": \"view\"}, {\"user_id\": \"t3\", \"item_id\": \"%s\", "
          "\"type\": \"click\"}, {\"user_id\": \"t4\", \"item_id\": \"%s\", "
          "\"type\": \"view\"}]}",
          c, c, c, a);
  json_t *j = hrt_port_json(e.srv.port, "POST", "/event", NULL, ev, &st);
  ASSERT_MSG(st == 202, "%d %s", st, hrt_jdump(j));
  json_decref(j);
  const char *body = "{\"k\": 5, \"trending\": true}";
  HRT_POLL(ok, 3000, list_ids(b.port, "/popular", body, &v) == 0 &&
                         v.n == 5 && strcmp(v.v[0], c) == 0 &&
                         strcmp(v.v[1], a) == 0);
  ASSERT_MSG(ok, "replica b's trending list does not start with %s, %s",
             c, a);
  j = hrt_port_json(b.port, "POST", "/popular", NULL, body, &st);
  ASSERT_EQ(st, 200);
  ASSERT_STR_EQ(hrt_jstr(j, "retrieval"), "trending");
  double s0 = json_real_value(hrt_jget(j, "items[0].score"));
  double s1 = json_real_value(hrt_jget(j, "items[1].score"));
  ASSERT_MSG(s0 > 2.9 && s0 <= 3.0 && s1 > 0.9 && s1 <= 1.0,
             "weights %g %g", s0, s1);
  /* the rest: popularity, score 0, without the trending two */
  json_t *sc = hrt_jget(j, "items[2].score");
  ASSERT(sc != NULL && json_number_value(sc) == 0.0);
  ASSERT_STR_EQ(hrt_jstr(j, "items[2].item_id"), pop.v[0]);
  json_decref(j);
  /* hidden: out of the trending list too */
  ASSERT_EQ(hide(e.srv.port, c, 1), 0);
  HRT_POLL(ok, 3000, list_ids(b.port, "/popular", body, &v) == 0 &&
                         v.n == 5 && strcmp(v.v[0], a) == 0 && !has(&v, c));
  ASSERT_MSG(ok, "a hidden item stays in the trending list");
  /* filters apply: an exclusion drops the trending item */
  hrt_fmt(ev, sizeof(ev), "{\"k\": 5, \"trending\": true, \"exclude\": "
          "[\"%s\"]}", a);
  ASSERT_EQ(list_ids(e.srv.port, "/popular", ev, &v), 0);
  ASSERT(!has(&v, a) && !has(&v, c));
  hrt_strv_free(&pop);
  hrt_strv_free(&v);
  ASSERT_EQ(hrt_server_stop(&b), 0);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}


/* items.max_hidden: past it, 409 and nothing written. */
HR_TEST_T(items_hidden_limit_is_a_conflict, 60) {
  HRT_ENV(e);
  hrt_env_opts_t o = {.config_json = "{\"admin\": {\"token\": \"" ITEMS_TOKEN
                                     "\"}, \"items\": {\"max_hidden\": 2}}"};
  int st;

  ASSERT_EQ(hrt_env_start(&e, &o), 0);
  ASSERT_EQ(hide(e.srv.port, "a", 1), 0);
  ASSERT_EQ(hide(e.srv.port, "b", 1), 0);
  json_t *j = hrt_send(&e, "PUT", "/items/c", ITEMS_AUTH,
                       "{\"hidden\": true}", &st);
  ASSERT_API_ERROR(j, st, 409, "conflict", "");
  json_decref(j);
  ASSERT_EQ(hrt_rint(&e, "SCARD hr:items:{hidden}"), 2);
  char ver[32];
  ASSERT_EQ(hrt_rstr(&e, ver, sizeof(ver), "GET hr:items:{hidden}:version"),
            0);
  ASSERT_STR_EQ(ver, "2");
  ASSERT_EQ(hide(e.srv.port, "a", 1), 0); /* already hidden: fine */
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}
