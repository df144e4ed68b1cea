/* redis.c -- read the server's event stream (XRANGE in chunks) as training
 * interactions (see train.h). hiredis 0.14: redisConnectWithTimeout and
 * redisSetTimeout, no options struct. */
#include "hr/train.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#define CHUNK 2000

static const redisReply *field(const redisReply *kv, const char *name) {
  for (size_t k = 0; k + 1 < kv->elements; k += 2)
    if (kv->element[k]->type == REDIS_REPLY_STRING &&
        strcmp(kv->element[k]->str, name) == 0 &&
        kv->element[k + 1]->type == REDIS_REPLY_STRING)
      return kv->element[k + 1];
  return NULL;
}

/* ctx.<name> fields: collect their vocabularies like CSV context columns;
 * the value ids of the first HR_DS_CTX columns go to vid (-1 unknown). */
static int add_ctx(hr_dataset_t *ds, const redisReply *kv, int32_t *vid) {
  for (int c = 0; c < HR_DS_CTX; c++)
    vid[c] = -1;
  for (size_t k = 0; k + 1 < kv->elements; k += 2) {
    const redisReply *key = kv->element[k], *val = kv->element[k + 1];
    size_t c;
    if (key->type != REDIS_REPLY_STRING || val->type != REDIS_REPLY_STRING ||
        strncmp(key->str, "ctx.", 4) != 0 || val->len == 0)
      continue;
    for (c = 0; c < ds->n_ctx; c++)
      if (strcmp(ds->ctx_name[c], key->str + 4) == 0)
        break;
    if (c == ds->n_ctx) {
      if (c == 64)
        continue;
      ds->ctx_name[c] = strdup(key->str + 4);
      ds->ctx_vals[c] = hr_idmap_new(16);
      if (ds->ctx_name[c] == NULL || ds->ctx_vals[c] == NULL) {
        free(ds->ctx_name[c]);
        hr_idmap_free(ds->ctx_vals[c]);
        return HR_ENOMEM;
      }
      if (ds->n_slots < HR_DS_CTX && !hr_ctx_never_feature(ds->ctx_name[c]))
        ds->cv_slot[c] = ds->n_slots++;
      ds->n_ctx++;
    }
    long v = hr_idmap_add(ds->ctx_vals[c], val->str, val->len, NULL);
    if (v < 0)
      return HR_ENOMEM;
    if (ds->cv_slot[c] >= 0)
      vid[ds->cv_slot[c]] = (int32_t)v;
  }
  return 0;
}

int hr_data_read_redis(hr_dataset_t *ds, const char *hostport,
                       const char *stream, hr_error_t *err) {
  char host[256], start[64] = "-";
  const char *colon = strrchr(hostport, ':');
  struct timeval tv = {5, 0};
  redisContext *c;
  long port;
  char *end;
  int rc = 0;

  if (colon == NULL || colon == hostport ||
      (size_t)(colon - hostport) >= sizeof(host))
    return hr_error_set(err, HR_EINVAL, "--from-redis", "expected HOST:PORT, "
                        "got \"%s\"", hostport);
  port = strtol(colon + 1, &end, 10);
  if (*end != '\0' || port < 1 || port > 65535)
    return hr_error_set(err, HR_EINVAL, "--from-redis", "bad port in \"%s\"",
                        hostport);
  snprintf(host, sizeof(host), "%.*s", (int)(colon - hostport), hostport);
  c = redisConnectWithTimeout(host, (int)port, tv);
  if (c == NULL || c->err) {
    rc = hr_error_set(err, HR_EREDIS, NULL, "redis %s: %s", hostport,
                      c ? c->errstr : "out of memory");
    redisFree(c);
    return rc;
  }
  redisSetTimeout(c, (struct timeval){30, 0});
  for (;;) {
    redisReply *r = redisCommand(c, "XRANGE %s %s + COUNT %d", stream, start,
                                 CHUNK);
    if (r == NULL) {
      rc = hr_error_set(err, HR_EREDIS, NULL, "redis %s: %s", hostport,
                        c->errstr);
      break;
    }
    if (r->type != REDIS_REPLY_ARRAY) {
      rc = hr_error_set(err, HR_EREDIS, NULL, "XRANGE %s: %s", stream,
                        r->type == REDIS_REPLY_ERROR ? r->str
                                                     : "unexpected reply");
      freeReplyObject(r);
      break;
    }
    for (size_t k = 0; k < r->elements && rc == 0; k++) {
      const redisReply *e = r->element[k], *kv, *user, *item, *ts, *type;
      int64_t t;
      if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
          e->element[0]->type != REDIS_REPLY_STRING ||
          e->element[1]->type != REDIS_REPLY_ARRAY) {
        rc = hr_error_set(err, HR_EFORMAT, NULL, "stream %s: malformed "
                          "entry", stream);
        break;
      }
      snprintf(start, sizeof(start), "(%s", e->element[0]->str);
      kv = e->element[1];
      user = field(kv, "user_id");
      item = field(kv, "item_id");
      type = field(kv, "type");
      ts = field(kv, "ts");
      if (item == NULL || item->len == 0 ||
          (type != NULL && strcmp(type->str, "context") == 0))
        continue;
      if (user == NULL || user->len == 0) {
        rc = hr_error_set(err, HR_EFORMAT, NULL, "stream %s entry %s: "
                          "item_id without user_id", stream,
                          e->element[0]->str);
        break;
      }
      /* The entry id's milliseconds stand in for a missing ts. */
      t = ts ? strtoll(ts->str, &end, 10) : 0;
      if (ts == NULL || *end != '\0' || ts->len == 0)
        t = strtoll(e->element[0]->str, NULL, 10) / 1000;
      if (hr_dataset_before_since(ds, t))
        continue;
      int32_t vid[HR_DS_CTX];
      if ((rc = add_ctx(ds, kv, vid)) != 0 ||
          (rc = hr_dataset_add(ds, user->str, user->len, item->str,
                               item->len, t)) != 0)
        hr_error_set(err, rc, NULL, "out of memory");
      else
        memcpy(ds->cv + (ds->n - 1) * HR_DS_CTX, vid, sizeof(vid));
    }
    size_t got = r->elements;
    freeReplyObject(r);
    if (rc != 0 || got < CHUNK)
      break;
  }
  redisFree(c);
  return rc;
}
