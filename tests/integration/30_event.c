/* 30_event.c -- POST /event: what lands in Redis (stream, history, context
 * hash, idempotency keys) and how the next /recommend reflects it. */
#include "lib/env.h"

#include <time.h>

static json_t *event(hrt_env_t *e, json_t *body, int *st) {
  return hrt_post(e, "/event", body, st);
}

/* 202 with exactly these counts. */
#define ASSERT_ACK(j, st, acc, dup)                                           \
  do {                                                                        \
    ASSERT_MSG((st) == 202, "status %d, wanted 202: %s", (st), hrt_jdump(j)); \
    ASSERT_MSG(hrt_jint((j), "accepted") == (acc) &&                          \
                   hrt_jint((j), "duplicates") == (dup),                      \
               "wanted accepted %d duplicates %d: %s", (acc), (dup),          \
               hrt_jdump(j));                                                 \
  } while (0)

static int same_list(const hrt_strv_t *a, const hrt_strv_t *b) {
  if (a->n != b->n)
    return 0;
  for (size_t i = 0; i < a->n; i++)
    if (strcmp(a->v[i], b->v[i]) != 0)
      return 0;
  return 1;
}

static int top_user(hrt_env_t *e, char *user, size_t n) {
  hrt_strv_t users = {0};
  int rc = hrt_fixture_top_users(&e->fx, 1, &users);

  if (rc == 0 && users.n == 1)
    snprintf(user, n, "%s", users.v[0]);
  else
    rc = -1;
  hrt_strv_free(&users);
  return rc;
}

HR_TEST_T(event_then_recommend_reflects_it, 60) {
  HRT_ENV(e);
  hrt_strv_t before = {0}, after = {0}, unmoved = {0}, hist = {0};
  const char *u = "fresh-event-user";
  char item[256];
  json_t *j;
  int st;

  ASSERT_EQ(hrt_env_start(&e, NULL), 0);
  j = hrt_post(&e, "/recommend", json_pack("{s:s,s:i}", "user_id", u, "k", 20),
               &st);
  ASSERT_EQ(st, 200);
  ASSERT_EQ(hrt_item_ids(j, &before), 0);
  json_decref(j);
  ASSERT_EQ(before.n, 20);
  snprintf(item, sizeof(item), "%s", before.v[0]);
  for (size_t i = 1; i < before.n && unmoved.n < 10; i++)
    hrt_strv_add(&unmoved, before.v[i]);

  j = event(&e, json_pack("{s:s,s:s,s:s}", "user_id", u, "type", "click",
                          "item_id", item),
            &st);
  ASSERT_ACK(j, st, 1, 0);
  json_decref(j);
  ASSERT_EQ(hrt_rint(&e, "XLEN hr:events"), 1);
  ASSERT_EQ(hrt_rlist(&e, &hist, "LRANGE hr:hist:{%s} 0 -1", u), 0);
  ASSERT_EQ(hist.n, 1);
  /* "<item_id>\t<ts>": the id, then the event's time. */
  ASSERT_EQ(strncmp(hist.v[0], item, strlen(item)), 0);
  ASSERT_EQ(hist.v[0][strlen(item)], '\t');

  j = hrt_post(&e, "/recommend", json_pack("{s:s,s:i}", "user_id", u, "k", 10),
               &st);
  ASSERT_EQ(st, 200);
  ASSERT_EQ(hrt_jint(j, "history_used"), 1);
  ASSERT_EQ(hrt_item_ids(j, &after), 0);
  json_decref(j);
  ASSERT_EQ(after.n, 10);
  ASSERT_MSG(!hrt_strv_has(&after, item), "clicked item %s still recommended",
             item);
  /* Not just filtered: the history moved the ranking itself. */
  ASSERT_MSG(!same_list(&after, &unmoved),
             "the answer is the old one minus the clicked item");
  hrt_strv_free(&before);
  hrt_strv_free(&after);
  hrt_strv_free(&unmoved);
  hrt_strv_free(&hist);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

HR_TEST_T(event_known_user_item_not_recommended_again, 60) {
  HRT_ENV(e);
  hrt_strv_t top = {0}, next = {0};
  char user[256], item[256];
  json_t *j;
  int st;

  ASSERT_EQ(hrt_env_start(&e, NULL), 0);
  ASSERT_EQ(top_user(&e, user, sizeof(user)), 0);
  j = hrt_post(&e, "/recommend", json_pack("{s:s}", "user_id", user), &st);
  ASSERT_EQ(st, 200);
  ASSERT_EQ(hrt_item_ids(j, &top), 0);
  json_decref(j);
  ASSERT_GT(top.n, 0);
  snprintf(item, sizeof(item), "%s", top.v[0]);
  j = event(&e, json_pack("{s:s,s:s,s:s,s:f}", "user_id", user, "type",
                          "purchase", "item_id", item, "value", 19.99),
            &st);
  ASSERT_ACK(j, st, 1, 0);
  json_decref(j);
  j = hrt_post(&e, "/recommend", json_pack("{s:s}", "user_id", user), &st);
  ASSERT_EQ(st, 200);
  ASSERT_GE(hrt_jint(j, "history_used"), 1);
  ASSERT_EQ(hrt_item_ids(j, &next), 0);
  json_decref(j);
  ASSERT_EQ(next.n, top.n);
  ASSERT_MSG(!hrt_strv_has(&next, item), "purchased %s recommended again",
             item);
  hrt_strv_free(&top);
  hrt_strv_free(&next);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

/* 1 when some field value of stream entry `entry` equals v. */
static int entry_has_value(const redisReply *entry, const char *v) {
  const redisReply *kv;

  if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2)
    return 0;
  kv = entry->element[1];
  for (size_t i = 1; i < kv->elements; i += 2)
    if (kv->element[i]->type == REDIS_REPLY_STRING &&
        strcmp(kv->element[i]->str, v) == 0)
      return 1;
  return 0;
}

HR_TEST_T(event_batch_written_together, 60) {
  HRT_ENV(e);
  long long t0 = (long long)time(NULL) - 100;
  hrt_strv_t hist = {0};
  redisReply *r;
  json_t *j;
  int st;

  ASSERT_EQ(hrt_env_start(&e, NULL), 0);
  j = event(&e,
            json_pack("{s:[{s:s,s:s,s:s,s:I},{s:s,s:s,s:s,s:I,s:f},"
                      "{s:s,s:s,s:s,s:I,s:s}]}",
                      "events",
                      "user_id", "batch-user", "type", "view", "item_id",
                      "item-a", "ts", t0,
                      "user_id", "batch-user", "type", "rating", "item_id",
                      "item-b", "ts", t0 + 1, "value", 4.5,
                      "user_id", "batch-user", "type", "click", "item_id",
                      "item-c", "ts", t0 + 2, "recommendation_id", "r1-abc"),
            &st);
  ASSERT_ACK(j, st, 3, 0);
  json_decref(j);
  ASSERT_EQ(hrt_rint(&e, "XLEN hr:events"), 3);
  ASSERT_EQ(hrt_rlist(&e, &hist, "LRANGE hr:hist:{batch-user} 0 -1"), 0);
  ASSERT_EQ(hist.n, 3);
  { /* newest first, each with its event's time */
    char want[64];
    snprintf(want, sizeof(want), "item-c\t%lld", (long long)t0 + 2);
    ASSERT_STR_EQ(hist.v[0], want);
    snprintf(want, sizeof(want), "item-b\t%lld", (long long)t0 + 1);
    ASSERT_STR_EQ(hist.v[1], want);
    snprintf(want, sizeof(want), "item-a\t%lld", (long long)t0);
    ASSERT_STR_EQ(hist.v[2], want);
  }
  hrt_strv_free(&hist);
  /* The stream entries (the trainer's input) carry the events, in order. */
  r = hrt_rcmd(&e, "XRANGE hr:events - +");
  ASSERT_NOT_NULL(r);
  ASSERT_EQ(r->type, REDIS_REPLY_ARRAY);
  ASSERT_EQ(r->elements, 3);
  ASSERT(entry_has_value(r->element[0], "batch-user"));
  ASSERT(entry_has_value(r->element[0], "item-a"));
  ASSERT(entry_has_value(r->element[0], "view"));
  ASSERT(entry_has_value(r->element[1], "item-b"));
  ASSERT(entry_has_value(r->element[1], "rating"));
  ASSERT(entry_has_value(r->element[2], "item-c"));
  ASSERT(entry_has_value(r->element[2], "r1-abc"));
  freeReplyObject(r);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

HR_TEST_T(event_duplicate_event_id_written_once, 60) {
  HRT_ENV(e);
  long long ttl;
  json_t *j;
  int st;

  ASSERT_EQ(hrt_env_start(&e, NULL), 0);
  for (int round = 0; round < 2; round++) {
    j = event(&e, json_pack("{s:s,s:s,s:s,s:s}", "user_id", "dup-user",
                            "type", "click", "item_id", "item-d", "event_id",
                            "evt-0001"),
              &st);
    if (round == 0)
      ASSERT_ACK(j, st, 1, 0);
    else
      ASSERT_ACK(j, st, 0, 1);
    json_decref(j);
  }
  ASSERT_EQ(hrt_rint(&e, "XLEN hr:events"), 1);
  ASSERT_EQ(hrt_rint(&e, "LLEN hr:hist:{dup-user}"), 1);
  ASSERT_EQ(hrt_rint(&e, "EXISTS hr:evid:evt-0001"), 1);
  ttl = hrt_rint(&e, "TTL hr:evid:evt-0001");
  ASSERT_MSG(ttl > 86400 - 60 && ttl <= 86400,
             "TTL %lld, wanted redis.event_id_ttl_s (86400)", ttl);

  /* A batch mixing the old id and a new one: one written, one duplicate. */
  j = event(&e,
            json_pack("{s:[{s:s,s:s,s:s,s:s},{s:s,s:s,s:s,s:s}]}", "events",
                      "user_id", "dup-user", "type", "click", "item_id",
                      "item-d", "event_id", "evt-0001",
                      "user_id", "dup-user", "type", "view", "item_id",
                      "item-e", "event_id", "evt-0002"),
            &st);
  ASSERT_ACK(j, st, 1, 1);
  json_decref(j);
  ASSERT_EQ(hrt_rint(&e, "XLEN hr:events"), 2);
  ASSERT_EQ(hrt_rint(&e, "LLEN hr:hist:{dup-user}"), 2);
  ASSERT_EQ(hrt_rint(&e, "EXISTS hr:evid:evt-0002"), 1);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

HR_TEST_T(event_context_then_recommend_from_redis, 60) {
  HRT_ENV(e);
  char v[128];
  json_t *j;
  int st;

  ASSERT_EQ(hrt_env_start(&e, NULL), 0);
  j = event(&e, json_pack("{s:s,s:s,s:{s:s,s:s,s:s}}", "user_id", "ctx-ev",
                          "type", "context", "context", "location", "gym",
                          "mood", "energetic", "tz", "Asia/Tokyo"),
            &st);
  ASSERT_ACK(j, st, 1, 0);
  json_decref(j);
  ASSERT_EQ(hrt_rstr(&e, v, sizeof(v), "HGET hr:ctx:{ctx-ev} location"), 0);
  ASSERT_STR_EQ(v, "gym");
  ASSERT_EQ(hrt_rstr(&e, v, sizeof(v), "HGET hr:ctx:{ctx-ev} mood"), 0);
  ASSERT_STR_EQ(v, "energetic");
  ASSERT_EQ(hrt_rstr(&e, v, sizeof(v), "HGET hr:ctx:{ctx-ev} tz"), 0);
  ASSERT_STR_EQ(v, "Asia/Tokyo");
  ASSERT_EQ(hrt_rint(&e, "LLEN hr:hist:{ctx-ev}"), 0); /* no item */
  ASSERT_EQ(hrt_rint(&e, "XLEN hr:events"), 1);

  j = hrt_post(&e, "/recommend", json_pack("{s:s}", "user_id", "ctx-ev"), &st);
  ASSERT_MSG(st == 200, "status %d: %s", st, hrt_jdump(j));
  ASSERT_STR_EQ(hrt_jstr(j, "context.location"), "gym");
  ASSERT_STR_EQ(hrt_jstr(j, "context_source.location"), "redis");
  ASSERT_STR_EQ(hrt_jstr(j, "context.mood"), "energetic");
  ASSERT_STR_EQ(hrt_jstr(j, "context_source.mood"), "redis");
  ASSERT_STR_EQ(hrt_jstr(j, "context.tz"), "Asia/Tokyo");
  ASSERT_STR_EQ(hrt_jstr(j, "context_source.tz"), "redis");
  ASSERT(json_is_null(hrt_jget(j, "context.device")));
  ASSERT_STR_EQ(hrt_jstr(j, "context_source.device"), "none");
  json_decref(j);

  /* A per-request override wins for that field only. */
  j = hrt_post(&e, "/recommend",
               json_pack("{s:s,s:{s:s}}", "user_id", "ctx-ev", "context",
                         "location", "home"),
               &st);
  ASSERT_EQ(st, 200);
  ASSERT_STR_EQ(hrt_jstr(j, "context.location"), "home");
  ASSERT_STR_EQ(hrt_jstr(j, "context_source.location"), "request");
  ASSERT_STR_EQ(hrt_jstr(j, "context.mood"), "energetic");
  ASSERT_STR_EQ(hrt_jstr(j, "context_source.mood"), "redis");
  json_decref(j);
  /* ...and is not stored. */
  ASSERT_EQ(hrt_rstr(&e, v, sizeof(v), "HGET hr:ctx:{ctx-ev} location"), 0);
  ASSERT_STR_EQ(v, "gym");

  /* A later context event replaces the stored value. */
  j = event(&e, json_pack("{s:s,s:s,s:{s:s}}", "user_id", "ctx-ev", "type",
                          "context", "context", "location", "office"),
            &st);
  ASSERT_ACK(j, st, 1, 0);
  json_decref(j);
  j = hrt_post(&e, "/recommend", json_pack("{s:s}", "user_id", "ctx-ev"), &st);
  ASSERT_EQ(st, 200);
  ASSERT_STR_EQ(hrt_jstr(j, "context.location"), "office");
  ASSERT_STR_EQ(hrt_jstr(j, "context.mood"), "energetic");
  json_decref(j);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

HR_TEST_T(event_integer_and_new_ids, 60) {
  HRT_ENV(e);
  hrt_strv_t hist = {0};
  json_t *j;
  int st;

  ASSERT_EQ(hrt_env_start(&e, NULL), 0);
  /* Integers mean their decimal strings; unknown items are stored too. */
  j = event(&e, json_pack("{s:i,s:s,s:i}", "user_id", 7, "type", "view",
                          "item_id", 12),
            &st);
  ASSERT_ACK(j, st, 1, 0);
  json_decref(j);
  j = event(&e, json_pack("{s:i,s:s,s:s}", "user_id", 7, "type", "view",
                          "item_id", "brand-new-item-not-in-model"),
            &st);
  ASSERT_ACK(j, st, 1, 0);
  json_decref(j);
  ASSERT_EQ(hrt_rlist(&e, &hist, "LRANGE hr:hist:{7} 0 -1"), 0);
  ASSERT_EQ(hist.n, 2);
  ASSERT_EQ(strncmp(hist.v[0], "brand-new-item-not-in-model\t", 28), 0);
  ASSERT_EQ(strncmp(hist.v[1], "12\t", 3), 0);
  hrt_strv_free(&hist);
  /* The unknown item cannot be scored but does not break /recommend. */
  j = hrt_post(&e, "/recommend", json_pack("{s:s}", "user_id", "7"), &st);
  ASSERT_MSG(st == 200, "status %d: %s", st, hrt_jdump(j));
  ASSERT_EQ(json_array_size(hrt_jget(j, "items")), 10);
  json_decref(j);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

/* Batches go to Redis by the script's SHA-1 once it is known. When Redis
 * has forgotten the script (SCRIPT FLUSH; a restart does the same), the
 * batch is not lost: the text goes again, and the next batch is by SHA-1
 * once more. Every event is written once. */
HR_TEST_T(event_script_forgotten_by_redis, 60) {
  HRT_ENV(e);
  char id[32], stats[8192];
  json_t *j;
  int st;
  redisReply *r;

  ASSERT_EQ(hrt_env_start(&e, NULL), 0);
  for (int round = 0; round < 3; round++) {
    for (int i = 0; i < 3; i++) {
      snprintf(id, sizeof(id), "flush-%d-%d", round, i);
      j = event(&e, json_pack("{s:s,s:s,s:s,s:s}", "user_id", "flush-user",
                              "type", "view", "item_id", "i00001",
                              "event_id", id),
                &st);
      ASSERT_ACK(j, st, 1, 0);
      json_decref(j);
    }
    r = hrt_rcmd(&e, "SCRIPT FLUSH");
    ASSERT_NOT_NULL(r);
    freeReplyObject(r);
  }
  ASSERT_EQ(hrt_rint(&e, "XLEN hr:events"), 9);
  ASSERT_EQ(hrt_rint(&e, "LLEN hr:hist:{flush-user}"), 9);
  /* most batches went by SHA-1 */
  ASSERT_EQ(hrt_rstr(&e, stats, sizeof(stats), "INFO commandstats"), 0);
  ASSERT_MSG(strstr(stats, "cmdstat_evalsha:calls=") != NULL, "%s", stats);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

/* A user's history keeps the redis.history_cap newest items (the script
 * trims only when the list grows past it). */
HR_TEST_T(event_history_capped, 60) {
  HRT_ENV(e);
  hrt_env_opts_t o = {.config_json = "{\"redis\":{\"history_cap\":3}}"};
  hrt_strv_t hist = {0};
  char item[16];
  json_t *j;
  int st;

  ASSERT_EQ(hrt_env_start(&e, &o), 0);
  for (int i = 1; i <= 5; i++) {
    snprintf(item, sizeof(item), "i%05d", i);
    j = event(&e, json_pack("{s:s,s:s,s:s}", "user_id", "capped", "type",
                            "view", "item_id", item),
              &st);
    ASSERT_ACK(j, st, 1, 0);
    json_decref(j);
    ASSERT_EQ(hrt_rint(&e, "LLEN hr:hist:{capped}"), i < 3 ? i : 3);
  }
  ASSERT_EQ(hrt_rlist(&e, &hist, "LRANGE hr:hist:{capped} 0 -1"), 0);
  ASSERT_EQ(hist.n, 3);
  ASSERT_EQ(strncmp(hist.v[0], "i00005\t", 7), 0); /* newest first */
  ASSERT_EQ(strncmp(hist.v[2], "i00003\t", 7), 0);
  hrt_strv_free(&hist);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}
