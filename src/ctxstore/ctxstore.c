/* ctxstore.c -- per-thread hiredis connections (see ctxstore.h). */
#include "hr/ctxstore.h"
#include "hr/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis.h>

const char *const hr_ctx_field_names[HR_CTX_FIELDS] = {"tz", "location",
                                                       "mood", "device"};

struct hr_ctxstore {
  redisContext *c;
  hr_config_t cfg;
  long long next_try_ms; /* no dial before this (backoff) */
  int backoff_ms;        /* current backoff, 0 after a success */
};

static hr_config_t g_cfg;
static int g_configured;
static pthread_key_t g_key;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static atomic_ulong g_errors;

/* One event: idempotency marker, stream entry, history, context. Runs
 * atomically inside the batch's MULTI/EXEC. KEYS: stream, hist, ctx[, evid].
 * ARGV: ttl, cap, item ("" for none), maxlen, nctx, ctx pairs..., stream
 * field/value pairs... Returns 1 when written, 0 for a duplicate. */
static const char event_script[] =
    "if #KEYS == 4 then\n"
    "  if not redis.call('SET', KEYS[4], '1', 'NX', 'EX', ARGV[1]) then\n"
    "    return 0\n"
    "  end\n"
    "end\n"
    "local nctx = tonumber(ARGV[5])\n"
    "local fields = {}\n"
    "for i = 6 + 2 * nctx, #ARGV do fields[#fields + 1] = ARGV[i] end\n"
    "local maxlen = tonumber(ARGV[4])\n"
    "if maxlen > 0 then\n"
    "  redis.call('XADD', KEYS[1], 'MAXLEN', '~', maxlen, '*', unpack(fields))\n"
    "else\n"
    "  redis.call('XADD', KEYS[1], '*', unpack(fields))\n"
    "end\n"
    "if ARGV[3] ~= '' then\n"
    "  redis.call('LPUSH', KEYS[2], ARGV[3])\n"
    "  redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[2]) - 1)\n"
    "end\n"
    "if nctx > 0 then\n"
    "  local kv = {}\n"
    "  for i = 6, 5 + 2 * nctx do kv[#kv + 1] = ARGV[i] end\n"
    "  redis.call('HSET', KEYS[3], unpack(kv))\n"
    "  redis.call('HSET', KEYS[3], 'updated_at', ARGV[#ARGV])\n"
    "end\n"
    "return 1\n";

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void thread_free(void *p) { hr_ctxstore_free(p); }

static void make_key(void) { pthread_key_create(&g_key, thread_free); }

void hr_ctxstore_configure(const hr_config_t *cfg) {
  g_cfg = *cfg;
  g_configured = 1;
  pthread_once(&g_once, make_key);
}

hr_ctxstore_t *hr_ctxstore_new(const hr_config_t *cfg) {
  hr_ctxstore_t *s = calloc(1, sizeof(*s));
  if (s == NULL)
    return NULL;
  s->cfg = *cfg;
  return s;
}

void hr_ctxstore_free(hr_ctxstore_t *s) {
  if (s == NULL)
    return;
  if (s->c)
    redisFree(s->c);
  free(s);
}

hr_ctxstore_t *hr_ctxstore_thread(void) {
  hr_ctxstore_t *s;

  pthread_once(&g_once, make_key);
  s = pthread_getspecific(g_key);
  if (s == NULL && g_configured) {
    s = hr_ctxstore_new(&g_cfg);
    if (s != NULL)
      pthread_setspecific(g_key, s);
  }
  return s;
}

unsigned long hr_ctxstore_error_count(void) { return atomic_load(&g_errors); }

static struct timeval tv_ms(int ms) {
  struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
  return tv;
}

/* Drops the connection after a failure and schedules the next dial. */
static int fail(hr_ctxstore_t *s, hr_error_t *err, const char *what) {
  const char *why = s->c && s->c->errstr[0] ? s->c->errstr : "no connection";
  atomic_fetch_add(&g_errors, 1);
  hr_error_set(err, HR_EREDIS, "", "redis %s:%d: %s: %s", s->cfg.redis.host,
               s->cfg.redis.port, what, why);
  if (s->c) {
    redisFree(s->c);
    s->c = NULL;
  }
  s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2 : s->cfg.redis.backoff_min_ms;
  if (s->backoff_ms > s->cfg.redis.backoff_max_ms)
    s->backoff_ms = s->cfg.redis.backoff_max_ms;
  s->next_try_ms = now_ms() + s->backoff_ms;
  return HR_EREDIS;
}

static int ensure(hr_ctxstore_t *s, hr_error_t *err) {
  if (s->c != NULL)
    return 0;
  if (now_ms() < s->next_try_ms)
    return hr_error_set(err, HR_EREDIS, "",
                        "redis %s:%d unavailable (reconnecting)",
                        s->cfg.redis.host, s->cfg.redis.port);
  s->c = redisConnectWithTimeout(s->cfg.redis.host, s->cfg.redis.port,
                                 tv_ms(s->cfg.redis.connect_timeout_ms));
  if (s->c == NULL || s->c->err)
    return fail(s, err, "connect");
  if (redisSetTimeout(s->c, tv_ms(s->cfg.redis.command_timeout_ms)) != REDIS_OK)
    return fail(s, err, "set timeout");
  if (s->backoff_ms)
    hr_log(HR_LOG_INFO, "redis_reconnected",
           json_pack("{s:s,s:i}", "host", s->cfg.redis.host, "port",
                     s->cfg.redis.port));
  s->backoff_ms = 0;
  return 0;
}

int hr_ctxstore_user_key(const char *prefix, const char *kind,
                         const char *user_id, char *buf, size_t len) {
  int n = snprintf(buf, len, "%s%s:{%s}", prefix, kind, user_id);
  return n < 0 || (size_t)n >= len ? HR_EINVAL : 0;
}

void hr_user_state_destroy(hr_user_state_t *st) {
  for (int i = 0; i < HR_CTX_FIELDS; i++)
    free(st->ctx[i]);
  for (size_t i = 0; i < st->n_hist; i++)
    free(st->hist[i]);
  free(st->hist);
  memset(st, 0, sizeof(*st));
}

int hr_ctxstore_read_user(hr_ctxstore_t *s, const char *user_id,
                          size_t max_hist, hr_user_state_t *out,
                          hr_error_t *err) {
  char kctx[512], khist[512];
  redisReply *r1 = NULL, *r2 = NULL;
  int rc = 0;

  memset(out, 0, sizeof(*out));
  if (hr_ctxstore_user_key(s->cfg.redis.key_prefix, "ctx", user_id, kctx,
                           sizeof(kctx)) ||
      hr_ctxstore_user_key(s->cfg.redis.key_prefix, "hist", user_id, khist,
                           sizeof(khist)))
    return hr_error_set(err, HR_EINVAL, "user_id", "user_id too long");
  if ((rc = ensure(s, err)) != 0)
    return rc;
  if (redisAppendCommand(s->c, "HGETALL %s", kctx) != REDIS_OK ||
      redisAppendCommand(s->c, "LRANGE %s 0 %lld", khist,
                         (long long)(max_hist ? max_hist : 1) - 1) != REDIS_OK)
    return fail(s, err, "append");
  if (redisGetReply(s->c, (void **)&r1) != REDIS_OK ||
      redisGetReply(s->c, (void **)&r2) != REDIS_OK) {
    if (r1)
      freeReplyObject(r1);
    return fail(s, err, "read");
  }
  if (r1->type == REDIS_REPLY_ARRAY) {
    for (size_t i = 0; i + 1 < r1->elements; i += 2) {
      redisReply *k = r1->element[i], *v = r1->element[i + 1];
      if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
        continue;
      for (int f = 0; f < HR_CTX_FIELDS; f++) {
        if (strcmp(k->str, hr_ctx_field_names[f]) == 0 && out->ctx[f] == NULL) {
          out->ctx[f] = strndup(v->str, v->len);
          if (out->ctx[f] == NULL)
            rc = HR_ENOMEM;
        }
      }
    }
  } else if (r1->type == REDIS_REPLY_ERROR) {
    hr_log(HR_LOG_WARN, "redis_reply_error",
           json_pack("{s:s,s:s}", "key", kctx, "error", r1->str));
  }
  if (r2->type == REDIS_REPLY_ARRAY && max_hist > 0 && r2->elements > 0) {
    out->hist = calloc(r2->elements, sizeof(char *));
    if (out->hist == NULL)
      rc = HR_ENOMEM;
    for (size_t i = 0; out->hist && i < r2->elements; i++) {
      redisReply *e = r2->element[i];
      if (e->type != REDIS_REPLY_STRING)
        continue;
      out->hist[out->n_hist] = strndup(e->str, e->len);
      if (out->hist[out->n_hist] == NULL) {
        rc = HR_ENOMEM;
        break;
      }
      out->n_hist++;
    }
  } else if (r2->type == REDIS_REPLY_ERROR) {
    hr_log(HR_LOG_WARN, "redis_reply_error",
           json_pack("{s:s,s:s}", "key", khist, "error", r2->str));
  }
  freeReplyObject(r1);
  freeReplyObject(r2);
  if (rc != 0) {
    hr_user_state_destroy(out);
    return hr_error_set(err, rc, "", "out of memory reading user state");
  }
  return 0;
}

/* Argument vector of one EVAL, built on the stack-ish arena `a`. */
typedef struct {
  const char *argv[64];
  size_t len[64];
  int n;
  char buf[2048]; /* formatted numbers and keys */
  size_t used;
} argvec;

static void push(argvec *a, const char *s) {
  a->argv[a->n] = s;
  a->len[a->n] = strlen(s);
  a->n++;
}

static const char *fmt(argvec *a, const char *f, ...)
    __attribute__((format(printf, 2, 3)));
static const char *fmt(argvec *a, const char *f, ...) {
  va_list ap;
  char *p = a->buf + a->used;
  int w;

  va_start(ap, f);
  w = vsnprintf(p, sizeof(a->buf) - a->used, f, ap);
  va_end(ap);
  if (w < 0 || (size_t)w >= sizeof(a->buf) - a->used)
    return NULL;
  a->used += (size_t)w + 1;
  return p;
}

static int build_eval(argvec *a, const hr_config_t *cfg, const hr_event_t *e) {
  const char *kstream, *khist, *kctx, *kevid = NULL, *s;
  int nctx = 0;
  struct timespec now;

  memset(a, 0, sizeof(*a) - sizeof(a->buf));
  a->used = 0;
  clock_gettime(CLOCK_REALTIME, &now);
  kstream = fmt(a, "%sevents", cfg->redis.key_prefix);
  khist = fmt(a, "%shist:{%s}", cfg->redis.key_prefix, e->user_id);
  kctx = fmt(a, "%sctx:{%s}", cfg->redis.key_prefix, e->user_id);
  if (e->event_id)
    kevid = fmt(a, "%sevid:%s", cfg->redis.key_prefix, e->event_id);
  if (!kstream || !khist || !kctx || (e->event_id && !kevid))
    return HR_EINVAL;
  push(a, "EVAL");
  push(a, event_script);
  push(a, kevid ? "4" : "3");
  push(a, kstream);
  push(a, khist);
  push(a, kctx);
  if (kevid)
    push(a, kevid);
  push(a, fmt(a, "%d", cfg->redis.event_id_ttl_s));
  push(a, fmt(a, "%d", cfg->redis.history_cap));
  push(a, e->item_id ? e->item_id : "");
  push(a, fmt(a, "%ld", cfg->redis.stream_maxlen));
  for (int i = 0; i < HR_CTX_FIELDS; i++)
    nctx += e->ctx[i] != NULL;
  push(a, fmt(a, "%d", nctx));
  for (int i = 0; i < HR_CTX_FIELDS; i++) {
    if (e->ctx[i]) {
      push(a, hr_ctx_field_names[i]);
      push(a, e->ctx[i]);
    }
  }
  /* stream entry */
  push(a, "user_id");
  push(a, e->user_id);
  push(a, "type");
  push(a, e->type);
  if (e->item_id) {
    push(a, "item_id");
    push(a, e->item_id);
  }
  if (e->has_value) {
    push(a, "value");
    push(a, fmt(a, "%.17g", e->value));
  }
  push(a, "ts");
  push(a, fmt(a, "%lld", e->ts));
  if (e->event_id) {
    push(a, "event_id");
    push(a, e->event_id);
  }
  if (e->recommendation_id) {
    push(a, "recommendation_id");
    push(a, e->recommendation_id);
  }
  for (int i = 0; i < HR_CTX_FIELDS; i++) {
    if (e->ctx[i]) {
      push(a, fmt(a, "ctx.%s", hr_ctx_field_names[i]));
      push(a, e->ctx[i]);
    }
  }
  /* last: received time, also used as the context's updated_at */
  push(a, "received_ms");
  s = fmt(a, "%lld", (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000);
  push(a, s);
  for (int i = 0; i < a->n; i++)
    if (a->argv[i] == NULL)
      return HR_EINVAL;
  return 0;
}

int hr_ctxstore_write_events(hr_ctxstore_t *s, const hr_event_t *ev, size_t n,
                             int *dup, hr_error_t *err) {
  argvec a;
  redisReply *r = NULL;
  int rc;

  if ((rc = ensure(s, err)) != 0)
    return rc;
  if (redisAppendCommand(s->c, "MULTI") != REDIS_OK)
    return fail(s, err, "append");
  for (size_t i = 0; i < n; i++) {
    if (build_eval(&a, &s->cfg, &ev[i]) != 0) {
      /* Cannot happen for validated input; keep the pipeline consistent. */
      redisAppendCommand(s->c, "DISCARD");
      for (size_t j = 0; j < i + 2; j++) {
        if (redisGetReply(s->c, (void **)&r) != REDIS_OK)
          return fail(s, err, "read");
        freeReplyObject(r);
      }
      return hr_error_set(err, HR_EINVAL, "", "event %zu too large", i);
    }
    if (redisAppendCommandArgv(s->c, a.n, a.argv, a.len) != REDIS_OK)
      return fail(s, err, "append");
  }
  if (redisAppendCommand(s->c, "EXEC") != REDIS_OK)
    return fail(s, err, "append");
  /* MULTI's +OK and one +QUEUED per event, then EXEC's array. */
  for (size_t i = 0; i < n + 1; i++) {
    if (redisGetReply(s->c, (void **)&r) != REDIS_OK)
      return fail(s, err, "read");
    int bad = r->type == REDIS_REPLY_ERROR;
    if (bad)
      hr_log(HR_LOG_ERROR, "redis_queue_error",
             json_pack("{s:s}", "error", r->str));
    freeReplyObject(r);
    if (bad)
      rc = HR_EINTERNAL;
  }
  if (redisGetReply(s->c, (void **)&r) != REDIS_OK)
    return fail(s, err, "read");
  if (rc != 0 || r->type != REDIS_REPLY_ARRAY || r->elements != n) {
    /* EXECABORT or a nil (aborted) transaction: nothing was written. */
    if (r->type == REDIS_REPLY_ERROR)
      hr_log(HR_LOG_ERROR, "redis_exec_error",
             json_pack("{s:s}", "error", r->str));
    freeReplyObject(r);
    atomic_fetch_add(&g_errors, 1);
    return hr_error_set(err, HR_EINTERNAL, "", "redis refused the transaction");
  }
  for (size_t i = 0; i < n; i++) {
    redisReply *e = r->element[i];
    if (e->type == REDIS_REPLY_ERROR) {
      /* A script error (e.g. WRONGTYPE on a key written by someone else).
       * Earlier events of the batch are applied; say so precisely. */
      hr_log(HR_LOG_ERROR, "redis_event_error",
             json_pack("{s:I,s:s}", "index", (json_int_t)i, "error", e->str));
      freeReplyObject(r);
      atomic_fetch_add(&g_errors, 1);
      return hr_error_set(err, HR_EINTERNAL, "", "redis rejected event %zu",
                          i);
    }
    dup[i] = e->type == REDIS_REPLY_INTEGER && e->integer == 0;
  }
  freeReplyObject(r);
  return 0;
}

int hr_ctxstore_ping(hr_ctxstore_t *s) {
  redisReply *r;
  int ok;

  if (ensure(s, NULL) != 0)
    return HR_EREDIS;
  r = redisCommand(s->c, "PING");
  if (r == NULL)
    return fail(s, NULL, "ping");
  ok = r->type == REDIS_REPLY_STATUS;
  freeReplyObject(r);
  return ok ? 0 : HR_EREDIS;
}
