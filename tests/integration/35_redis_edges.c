/* 35_redis_edges.c -- Redis answers we did not ask for: a key of the wrong
 * type (a batch that cannot be applied writes nothing), a connection the
 * server killed (the next request re-dials instead of failing), an error
 * reply on a read (the answer says it is degraded). */
#include "lib/env.h"

#include <stdlib.h>

HR_TEST_T(redis_wrongtype_batch_writes_nothing, 60) {
  HRT_ENV(e);
  redisReply *r;
  json_t *j;
  int st;
  const char *batch =
      "{\"events\":[{\"user_id\":\"ok1\",\"item_id\":\"i1\",\"type\":\"view\","
      "\"event_id\":\"wt-1\"},{\"user_id\":\"bad\",\"item_id\":\"i2\",\"type\":"
      "\"view\",\"event_id\":\"wt-2\"},{\"user_id\":\"ok2\",\"item_id\":\"i3\","
      "\"type\":\"view\",\"event_id\":\"wt-3\"}]}";

  ASSERT_EQ(hrt_env_start(&e, NULL), 0);
  r = hrt_rcmd(&e, "SET hr:hist:{bad} not-a-list");
  ASSERT_NOT_NULL(r);
  freeReplyObject(r);
  j = hrt_post_text(&e, "/event", batch, &st);
  ASSERT_MSG(st == 500, "status %d %s", st, hrt_jdump(j));
  ASSERT_STR_EQ(hrt_jstr(j, "error.code"), "internal");
  json_decref(j);
  ASSERT_EQ(hrt_rint(&e, "EXISTS hr:events"), 0);
  ASSERT_EQ(hrt_rint(&e, "EXISTS hr:hist:{ok1}"), 0);
  ASSERT_EQ(hrt_rint(&e, "EXISTS hr:evid:wt-1"), 0);
  /* Once the key is repaired, the client's retry is accepted in full. */
  r = hrt_rcmd(&e, "DEL hr:hist:{bad}");
  freeReplyObject(r);
  j = hrt_post_text(&e, "/event", batch, &st);
  ASSERT_MSG(st == 202 && hrt_jint(j, "accepted") == 3 &&
                 hrt_jint(j, "duplicates") == 0,
             "retry: %d %s", st, hrt_jdump(j));
  json_decref(j);
  ASSERT_EQ(hrt_rint(&e, "XLEN hr:events"), 3);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

HR_TEST_T(redis_killed_connection_redialled_at_once, 60) {
  HRT_ENV(e);
  redisReply *r;
  json_t *j;
  int st;

  ASSERT_EQ(hrt_env_start(&e, NULL), 0);
  /* Warm every worker's connection, then have Redis drop them all. */
  for (int i = 0; i < 8; i++) {
    char id[32];
    snprintf(id, sizeof(id), "warm-%d", i);
    j = hrt_post(&e, "/event",
                 json_pack("{s:s,s:s,s:s,s:s}", "user_id", "kill-user",
                           "item_id", "i1", "type", "view", "event_id", id),
                 &st);
    ASSERT_EQ(st, 202);
    json_decref(j);
  }
  r = hrt_rcmd(&e, "CLIENT KILL TYPE normal SKIPME yes");
  ASSERT_NOT_NULL(r);
  freeReplyObject(r);
  /* Redis is healthy: no request may fail because of the dead sockets. */
  for (int i = 0; i < 8; i++) {
    char id[32];
    snprintf(id, sizeof(id), "after-%d", i);
    j = hrt_post(&e, "/event",
                 json_pack("{s:s,s:s,s:s,s:s}", "user_id", "kill-user",
                           "item_id", "i2", "type", "view", "event_id", id),
                 &st);
    ASSERT_MSG(st == 202, "event %d after CLIENT KILL: %d %s", i, st,
               hrt_jdump(j));
    json_decref(j);
  }
  r = hrt_rcmd(&e, "CLIENT KILL TYPE normal SKIPME yes");
  freeReplyObject(r);
  for (int i = 0; i < 8; i++) {
    j = hrt_post(&e, "/recommend", json_pack("{s:s}", "user_id", "kill-user"),
                 &st);
    ASSERT_EQ(st, 200);
    ASSERT_MSG(json_is_false(hrt_jget(j, "degraded")),
               "recommend %d degraded after CLIENT KILL: %s", i, hrt_jdump(j));
    json_decref(j);
  }
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

HR_TEST_T(redis_error_reply_means_degraded, 60) {
  HRT_ENV(e);
  redisReply *r;
  json_t *j;
  int st;

  ASSERT_EQ(hrt_env_start(&e, NULL), 0);
  r = hrt_rcmd(&e, "SET hr:hist:{odd} not-a-list");
  freeReplyObject(r);
  j = hrt_post(&e, "/recommend", json_pack("{s:s}", "user_id", "odd"), &st);
  ASSERT_EQ(st, 200);
  ASSERT_MSG(json_is_true(hrt_jget(j, "degraded")), "%s", hrt_jdump(j));
  json_decref(j);
  j = hrt_post(&e, "/recommend", json_pack("{s:s}", "user_id", "even"), &st);
  ASSERT_EQ(st, 200);
  ASSERT(json_is_false(hrt_jget(j, "degraded")));
  json_decref(j);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}
