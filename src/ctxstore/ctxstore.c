/* ctxstore.c -- per-thread hiredis connections (see ctxstore.h). */
#include "hr/ctxstore.h"
#include "hr/grow.h"
#include "hr/log.h"

#include <errno.h>
#include <limits.h>
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
  unsigned long up_seen; /* g_up_epoch when this connection failed */
  int timed_out;         /* the last failure was a command timeout */
};

static hr_config_t g_cfg;
static int g_configured;
static pthread_key_t g_key;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static atomic_ulong g_errors;
/* Bumped whenever some thread reconnects after a failure: the other
 * threads then stop waiting out their backoff, so the whole server
 * recovers together instead of one worker at a time. */
static atomic_ulong g_up_epoch;

/* The whole batch, as one script: Redis runs it atomically. Pass 1 checks
 * every key's type and finds duplicates (markers already set, or repeated
 * inside the batch) without writing anything, so a batch that cannot be
 * applied writes nothing. Pass 2 writes the stream entries, histories and
 * contexts; pass 3 sets the idempotency markers last, so a marker never
 * exists for an event that was not written.
 * An event attributed to an experiment's variant adds to the variant's
 * *_events counter, and to its clicks (conversions) when the
 * recommendation's marker is new (SET NX with the dedupe ttl), and adds
 * the event's user to the variant's set of clicking (converting) users.
 * KEYS: stream, then per event: hist, ctx[, evid][, counters, marker,
 * users set].
 * ARGV: ttl, cap, maxlen, n, received_ms, dedupe ttl, then per event: item
 * ("" none), has_evid, nctx, nfields, attribution ("0" none, "click",
 * "conversion"), variant, user, ctx pairs..., stream field/values...
 * Returns an array with 1 (written), 2 (written and attributed) or 0
 * (duplicate) per event. */
static const char batch_script[] =
    "local ttl, cap, maxlen, n = ARGV[1], tonumber(ARGV[2]), "
    "tonumber(ARGV[3]), tonumber(ARGV[4])\n"
    "local now, xttl = ARGV[5], ARGV[6]\n"
    "local function want(key, kind)\n"
    "  local t = redis.call('TYPE', key).ok\n"
    "  if t ~= 'none' and t ~= kind then\n"
    "    return redis.error_reply('WRONGTYPE ' .. key .. ' holds a ' .. t ..\n"
    "      ', not a ' .. kind .. '; nothing was written')\n"
    "  end\n"
    "end\n"
    "local err = want(KEYS[1], 'stream')\n"
    "if err then return err end\n"
    "local ev, seen, a, k = {}, {}, 7, 2\n"
    "for i = 1, n do\n"
    "  local e = {item = ARGV[a], hist = KEYS[k], ctx = KEYS[k + 1]}\n"
    "  local has, nctx, nf = ARGV[a + 1], tonumber(ARGV[a + 2]), "
    "tonumber(ARGV[a + 3])\n"
    "  e.att, e.var, e.user = ARGV[a + 4], ARGV[a + 5], ARGV[a + 6]\n"
    "  a, k = a + 7, k + 2\n"
    "  if has == '1' then e.evid = KEYS[k]; k = k + 1 end\n"
    "  if e.att ~= '0' then\n"
    "    e.cnt, e.mark, e.who = KEYS[k], KEYS[k + 1], KEYS[k + 2]; k = k + 3\n"
    "  end\n"
    "  e.ca, e.nctx = a, nctx\n"
    "  a = a + 2 * nctx\n"
    "  e.fa, e.nf = a, nf\n"
    "  a = a + nf\n"
    "  err = want(e.hist, 'list') or want(e.ctx, 'hash')\n"
    "  if not err and e.cnt then\n"
    "    err = want(e.cnt, 'hash') or want(e.mark, 'string') or "
    "want(e.who, 'set')\n"
    "  end\n"
    "  if err then return err end\n"
    "  if e.evid then\n"
    "    if seen[e.evid] or redis.call('EXISTS', e.evid) == 1 then e.dup = true end\n"
    "    seen[e.evid] = true\n"
    "  end\n"
    "  ev[i] = e\n"
    "end\n"
    "local res = {}\n"
    "for i = 1, n do\n"
    "  local e = ev[i]\n"
    "  if e.dup then res[i] = 0 else\n"
    "    local f = {}\n"
    "    for j = e.fa, e.fa + e.nf - 1 do f[#f + 1] = ARGV[j] end\n"
    "    if maxlen > 0 then\n"
    "      redis.call('XADD', KEYS[1], 'MAXLEN', '~', maxlen, '*', unpack(f))\n"
    "    else\n"
    "      redis.call('XADD', KEYS[1], '*', unpack(f))\n"
    "    end\n"
    "    if e.item ~= '' then\n"
    "      if redis.call('LPUSH', e.hist, e.item) > cap then\n"
    "        redis.call('LTRIM', e.hist, 0, cap - 1)\n"
    "      end\n"
    "    end\n"
    "    if e.nctx > 0 then\n"
    "      local kv = {}\n"
    "      for j = e.ca, e.ca + 2 * e.nctx - 1 do kv[#kv + 1] = ARGV[j] end\n"
    "      kv[#kv + 1] = 'updated_at'\n"
    "      kv[#kv + 1] = now\n"
    "      redis.call('HSET', e.ctx, unpack(kv))\n"
    "    end\n"
    "    res[i] = 1\n"
    "    if e.cnt then\n"
    "      redis.call('HINCRBY', e.cnt, e.var .. ':' .. e.att .. '_events', 1)\n"
    "      if redis.call('SET', e.mark, '1', 'NX', 'EX', xttl) then\n"
    "        redis.call('HINCRBY', e.cnt, e.var .. ':' .. e.att .. 's', 1)\n"
    "      end\n"
    "      redis.call('SADD', e.who, e.user)\n"
    "      res[i] = 2\n"
    "    end\n"
    "  end\n"
    "end\n"
    "for i = 1, n do\n"
    "  local e = ev[i]\n"
    "  if e.evid and not e.dup then redis.call('SET', e.evid, '1', 'EX', ttl) end\n"
    "end\n"
    "return res\n";

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

static atomic_int g_up; /* the last PING's or round trip's outcome */

int hr_ctxstore_up(void) { return atomic_load(&g_up); }

static struct timeval tv_ms(int ms) {
  struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
  return tv;
}

/* Drops the connection after a failure and schedules the next dial. */
static int fail(hr_ctxstore_t *s, hr_error_t *err, const char *what) {
  const char *why = s->c && s->c->errstr[0] ? s->c->errstr : "no connection";
  int e = errno;
  s->timed_out = s->c && s->c->err == REDIS_ERR_IO &&
                 (e == EAGAIN || e == EWOULDBLOCK || e == ETIMEDOUT);
  atomic_fetch_add(&g_errors, 1);
  atomic_store(&g_up, 0);
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
  s->up_seen = atomic_load(&g_up_epoch);
  return HR_EREDIS;
}

static int ensure(hr_ctxstore_t *s, hr_error_t *err) {
  if (s->c != NULL)
    return 0;
  if (now_ms() < s->next_try_ms && atomic_load(&g_up_epoch) == s->up_seen)
    return hr_error_set(err, HR_EREDIS, "",
                        "redis %s:%d unavailable (reconnecting)",
                        s->cfg.redis.host, s->cfg.redis.port);
  s->c = redisConnectWithTimeout(s->cfg.redis.host, s->cfg.redis.port,
                                 tv_ms(s->cfg.redis.connect_timeout_ms));
  if (s->c == NULL || s->c->err)
    return fail(s, err, "connect");
  if (redisSetTimeout(s->c, tv_ms(s->cfg.redis.command_timeout_ms)) != REDIS_OK)
    return fail(s, err, "set timeout");
  if (s->backoff_ms) {
    /* After a failure a TCP connect proves little (a hung Redis accepts
     * it): only an answer does. Without one, the backoff keeps doubling
     * and the other threads are not woken. */
    redisReply *r = redisCommand(s->c, "PING");
    if (r == NULL)
      return fail(s, err, "ping");
    /* An error reply (LOADING, NOAUTH, ...) is an answer too: the commands
     * that follow fail with Redis's own message (redis_reply_error). */
    freeReplyObject(r);
    atomic_fetch_add(&g_up_epoch, 1);
    hr_log(HR_LOG_INFO, "redis_reconnected",
           json_pack("{s:s,s:i}", "host", s->cfg.redis.host, "port",
                     s->cfg.redis.port));
  }
  s->backoff_ms = 0;
  return 0;
}

int hr_ctxstore_user_key(const char *prefix, const char *kind,
                         const char *user_id, char *buf, size_t len) {
  int n = snprintf(buf, len, "%s%s:{%s}", prefix, kind, user_id);
  return n < 0 || (size_t)n >= len ? HR_EINVAL : 0;
}

void hr_user_state_destroy(hr_user_state_t *st) {
  free(st->_buf);
  free(st->hist);
  free(st->hist_ts);
  memset(st, 0, sizeof(*st));
}

/* Room in st for n history entries and `bytes` of strings; what was there
 * is dropped (the storage is kept, grown when short). */
static int state_reserve(hr_user_state_t *st, size_t n, size_t bytes) {
  size_t tcap = st->_hist_cap;
  void *tmp_;
  for (int i = 0; i < HR_CTX_FIELDS; i++)
    st->ctx[i] = NULL;
  st->n_hist = 0;
  if (HR_GROW(st->hist_ts, tcap, n) || HR_GROW(st->hist, st->_hist_cap, n) ||
      HR_GROW(st->_buf, st->_buf_cap, bytes))
    return HR_ENOMEM;
  return 0;
}

/* A history entry "<item_id>\t<ts>" (or a bare id, as an operator may
 * push): the id's length, with *ts the unix seconds or -1 when absent or
 * not a plain non-negative integer. */
static size_t hist_entry(const char *s, size_t len, long long *ts) {
  const char *tab = memchr(s, '\t', len);
  long long v = 0;
  *ts = -1;
  if (tab == NULL)
    return len;
  for (const char *p = tab + 1; p < s + len; p++) {
    if (*p < '0' || *p > '9' || v > (LLONG_MAX - 9) / 10)
      return (size_t)(tab - s);
    v = v * 10 + (*p - '0');
  }
  if (tab + 1 < s + len)
    *ts = v;
  return (size_t)(tab - s);
}

static int read_once(hr_ctxstore_t *s, const char *user_id, size_t max_hist,
                     hr_user_state_t *out, hr_error_t *err) {
  char kctx[512], khist[512];
  redisReply *r1 = NULL, *r2 = NULL;
  int rc = 0;

  state_reserve(out, 0, 0); /* empty until read; cannot fail */
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
  if (r1->type == REDIS_REPLY_ERROR || r2->type == REDIS_REPLY_ERROR) {
    /* NOAUTH, LOADING, WRONGTYPE...: Redis answered but gave us nothing to
     * use; the request is degraded like in an outage, the connection kept. */
    const char *msg = r1->type == REDIS_REPLY_ERROR ? r1->str : r2->str;
    atomic_fetch_add(&g_errors, 1);
    hr_log(HR_LOG_WARN, "redis_reply_error",
           json_pack("{s:s,s:s}", "user_id", user_id, "error", msg));
    rc = hr_error_set(err, HR_EREDIS, "", "redis: %s", msg);
    freeReplyObject(r1);
    freeReplyObject(r2);
    return rc;
  }
  {
    /* the strings kept go to out's storage, sized first */
    size_t bytes = 0, nh = 0;
    char *w;
    if (r1->type == REDIS_REPLY_ARRAY)
      for (size_t i = 0; i + 1 < r1->elements; i += 2)
        if (r1->element[i + 1]->type == REDIS_REPLY_STRING)
          bytes += r1->element[i + 1]->len + 1;
    if (r2->type == REDIS_REPLY_ARRAY && max_hist > 0)
      for (size_t i = 0; i < r2->elements; i++)
        if (r2->element[i]->type == REDIS_REPLY_STRING) {
          bytes += r2->element[i]->len + 1;
          nh++;
        }
    rc = state_reserve(out, nh, bytes);
    w = out->_buf;
    if (rc == 0 && r1->type == REDIS_REPLY_ARRAY) {
      for (size_t i = 0; i + 1 < r1->elements; i += 2) {
        redisReply *k = r1->element[i], *v = r1->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
          continue;
        for (int f = 0; f < HR_CTX_FIELDS; f++) {
          if (strcmp(k->str, hr_ctx_field_names[f]) == 0 &&
              out->ctx[f] == NULL) {
            out->ctx[f] = w;
            memcpy(w, v->str, v->len);
            w[v->len] = '\0';
            w += v->len + 1;
          }
        }
      }
    }
    for (size_t i = 0; rc == 0 && nh > 0 && i < r2->elements; i++) {
      redisReply *e = r2->element[i];
      size_t len;
      if (e->type != REDIS_REPLY_STRING)
        continue;
      len = hist_entry(e->str, e->len, &out->hist_ts[out->n_hist]);
      out->hist[out->n_hist++] = w;
      memcpy(w, e->str, len);
      w[len] = '\0';
      w += len + 1;
    }
  }
  freeReplyObject(r1);
  freeReplyObject(r2);
  if (rc != 0) {
    state_reserve(out, 0, 0); /* empty, storage kept */
    return hr_error_set(err, rc, "", "out of memory reading user state");
  }
  return 0;
}

int hr_ctxstore_read_user(hr_ctxstore_t *s, const char *user_id,
                          size_t max_hist, hr_user_state_t *out,
                          hr_error_t *err) {
  int reused = s->c != NULL;
  hr_error_t first = {0};
  int rc = read_once(s, user_id, max_hist, out, &first);
  /* Reads are safe to repeat: a connection the peer closed while idle is
   * re-dialled at once and the read tried again (not after a timeout: a
   * Redis that does not answer would cost the request a second one). */
  if (rc == HR_EREDIS && reused && s->c == NULL && !s->timed_out) {
    s->next_try_ms = 0;
    return read_once(s, user_id, max_hist, out, err);
  }
  if (rc != 0 && err && err->code == 0)
    *err = first;
  return rc;
}

/* The argument vector of the batch's EVAL: pointer and length arrays plus
 * an arena for the strings we format (keys, numbers). Sized up front from
 * the event count, so nothing is reallocated while pointers are taken. */
typedef struct {
  const char **argv;
  size_t *len;
  int n, cap;
  char *arena;
  size_t used, arena_cap;
  int overflow;
} argvec;

#define ARGS_PER_EVENT (13 + 2 * HR_CTX_FIELDS + 2 * (7 + HR_CTX_FIELDS))
#define ARENA_PER_EVENT 2048 /* 3 keys of <= 32+4+128+2 bytes, 3 of
                              <= 32+5+32+4+128, the history entry (id +
                              ts), 2 numbers */

static int argvec_init(argvec *a, size_t n_events) {
  memset(a, 0, sizeof(*a));
  a->cap = (int)(8 + n_events * ARGS_PER_EVENT);
  a->arena_cap = 256 + n_events * ARENA_PER_EVENT;
  a->argv = malloc(sizeof(char *) * (size_t)a->cap);
  a->len = malloc(sizeof(size_t) * (size_t)a->cap);
  a->arena = malloc(a->arena_cap);
  return a->argv && a->len && a->arena ? 0 : HR_ENOMEM;
}

static void argvec_free(argvec *a) {
  free(a->argv);
  free(a->len);
  free(a->arena);
}

static void push(argvec *a, const char *s) {
  if (s == NULL || a->n >= a->cap) {
    a->overflow = 1;
    return;
  }
  a->argv[a->n] = s;
  a->len[a->n] = strlen(s);
  a->n++;
}

static const char *fmt(argvec *a, const char *f, ...)
    __attribute__((format(printf, 2, 3)));
static const char *fmt(argvec *a, const char *f, ...) {
  va_list ap;
  char *p = a->arena + a->used;
  int w;

  va_start(ap, f);
  w = vsnprintf(p, a->arena_cap - a->used, f, ap);
  va_end(ap);
  if (w < 0 || (size_t)w >= a->arena_cap - a->used) {
    a->overflow = 1;
    return NULL;
  }
  a->used += (size_t)w + 1;
  return p;
}

static int build_batch(argvec *keys, argvec *args, const hr_config_t *cfg,
                       const hr_event_t *ev, size_t n) {
  const char *prefix = cfg->redis.key_prefix;
  struct timespec now;

  clock_gettime(CLOCK_REALTIME, &now);
  push(keys, fmt(keys, "%sevents", prefix));
  push(args, fmt(args, "%d", cfg->redis.event_id_ttl_s));
  push(args, fmt(args, "%d", cfg->redis.history_cap));
  push(args, fmt(args, "%ld", cfg->redis.stream_maxlen));
  push(args, fmt(args, "%zu", n));
  push(args, fmt(args, "%lld",
                 (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000));
  push(args, fmt(args, "%d", cfg->experiments_dedupe_ttl_s));
  for (size_t i = 0; i < n; i++) {
    const hr_event_t *e = &ev[i];
    int nctx = 0, nf = 8; /* user_id, type, ts, received_ms */

    push(keys, fmt(keys, "%shist:{%s}", prefix, e->user_id));
    push(keys, fmt(keys, "%sctx:{%s}", prefix, e->user_id));
    if (e->event_id)
      push(keys, fmt(keys, "%sevid:%s", prefix, e->event_id));
    if (e->exp_kind != 0) {
      push(keys, fmt(keys, "%sexp:{%s}", prefix, e->exp_name));
      push(keys, fmt(keys, "%sexp:{%s}:%s:%s", prefix, e->exp_name,
                     e->exp_kind == HR_EXP_CLICK ? "c" : "v",
                     e->recommendation_id));
      push(keys, fmt(keys, "%sexp:{%s}:%s:%s", prefix, e->exp_name,
                     e->exp_kind == HR_EXP_CLICK ? "clickers" : "converters",
                     e->exp_variant));
    }
    for (int f = 0; f < HR_CTX_FIELDS; f++)
      nctx += e->ctx[f] != NULL;
    nf += 2 * ((e->item_id != NULL) + e->has_value + (e->event_id != NULL) +
               (e->recommendation_id != NULL) + nctx);
    /* History entries are "<item_id>\t<ts>" (ids hold no control
     * characters), so the server knows when each item was seen. */
    push(args, e->item_id ? fmt(args, "%s\t%lld", e->item_id, e->ts) : "");
    push(args, e->event_id ? "1" : "0");
    push(args, fmt(args, "%d", nctx));
    push(args, fmt(args, "%d", nf));
    push(args, e->exp_kind == HR_EXP_CLICK        ? "click"
               : e->exp_kind == HR_EXP_CONVERSION ? "conversion"
                                                  : "0");
    push(args, e->exp_kind != 0 ? e->exp_variant : "");
    push(args, e->user_id);
    for (int f = 0; f < HR_CTX_FIELDS; f++) {
      if (e->ctx[f]) {
        push(args, hr_ctx_field_names[f]);
        push(args, e->ctx[f]);
      }
    }
    /* The stream entry: nf strings. */
    push(args, "user_id");
    push(args, e->user_id);
    push(args, "type");
    push(args, e->type);
    if (e->item_id) {
      push(args, "item_id");
      push(args, e->item_id);
    }
    if (e->has_value) {
      push(args, "value");
      push(args, fmt(args, "%.17g", e->value));
    }
    push(args, "ts");
    push(args, fmt(args, "%lld", e->ts));
    if (e->event_id) {
      push(args, "event_id");
      push(args, e->event_id);
    }
    if (e->recommendation_id) {
      push(args, "recommendation_id");
      push(args, e->recommendation_id);
    }
    for (int f = 0; f < HR_CTX_FIELDS; f++) {
      if (e->ctx[f]) {
        push(args, fmt(args, "ctx.%s", hr_ctx_field_names[f]));
        push(args, e->ctx[f]);
      }
    }
    push(args, "received_ms");
    push(args, args->argv[4]);
  }
  return keys->overflow || args->overflow ? HR_EINVAL : 0;
}

/* Errors that mean "Redis cannot take writes right now" rather than "this
 * request is wrong": the client should retry later. */
static int transient_reply(const char *msg) {
  static const char *const kinds[] = {"OOM", "READONLY", "LOADING",
                                      "MASTERDOWN", "BUSY", "NOREPLICAS",
                                      "TRYAGAIN", "CLUSTERDOWN"};
  for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
    if (strncmp(msg, kinds[i], strlen(kinds[i])) == 0)
      return 1;
  return 0;
}

/* The batch script's SHA-1 as Redis names it (SCRIPT LOAD's answer), once
 * known: events are then sent as EVALSHA, not the script's 4 KiB text that
 * Redis would hash again for every batch. */
static pthread_mutex_t g_sha_mu = PTHREAD_MUTEX_INITIALIZER;
static char g_sha[41];

/* The script's SHA-1 into sha (41 bytes): 1, or 0 when not known (and
 * Redis would not say: the caller sends EVAL). */
static int batch_sha(hr_ctxstore_t *s, char *sha) {
  redisReply *r;
  pthread_mutex_lock(&g_sha_mu);
  memcpy(sha, g_sha, sizeof(g_sha));
  pthread_mutex_unlock(&g_sha_mu);
  if (sha[0] != '\0')
    return 1;
  r = redisCommand(s->c, "SCRIPT LOAD %b", batch_script,
                   sizeof(batch_script) - 1);
  if (r != NULL && r->type == REDIS_REPLY_STRING && r->len == 40) {
    memcpy(sha, r->str, 40);
    sha[40] = '\0';
    pthread_mutex_lock(&g_sha_mu);
    memcpy(g_sha, sha, sizeof(g_sha));
    pthread_mutex_unlock(&g_sha_mu);
  }
  if (r != NULL)
    freeReplyObject(r);
  return sha[0] != '\0';
}

static int write_once(hr_ctxstore_t *s, const hr_event_t *ev, size_t n,
                      int *status, hr_error_t *err) {
  argvec keys, args;
  const char **argv = NULL;
  size_t *lens = NULL;
  redisReply *r = NULL;
  char nkeys[24], sha[41];
  int rc = 0, total, use_sha = 1;

  if ((rc = ensure(s, err)) != 0)
    return rc;
  if (argvec_init(&keys, n) != 0 || argvec_init(&args, n) != 0) {
    argvec_free(&keys);
    return hr_error_set(err, HR_ENOMEM, "", "out of memory");
  }
  if (build_batch(&keys, &args, &s->cfg, ev, n) != 0) {
    rc = hr_error_set(err, HR_EINVAL, "", "event batch too large to encode");
    goto out;
  }
  total = 3 + keys.n + args.n;
  argv = malloc(sizeof(char *) * (size_t)total);
  lens = malloc(sizeof(size_t) * (size_t)total);
  if (argv == NULL || lens == NULL) {
    rc = hr_error_set(err, HR_ENOMEM, "", "out of memory");
    goto out;
  }
  snprintf(nkeys, sizeof(nkeys), "%d", keys.n);
  /* by its SHA-1 when Redis has it cached (a Redis restart or SCRIPT
   * FLUSH empties the cache: NOSCRIPT, then the text, below) */
  use_sha = use_sha && batch_sha(s, sha);
again:
  argv[0] = use_sha ? "EVALSHA" : "EVAL";
  argv[1] = use_sha ? sha : batch_script;
  argv[2] = nkeys;
  for (int i = 0; i < 3; i++)
    lens[i] = strlen(argv[i]);
  memcpy(argv + 3, keys.argv, sizeof(char *) * (size_t)keys.n);
  memcpy(lens + 3, keys.len, sizeof(size_t) * (size_t)keys.n);
  memcpy(argv + 3 + keys.n, args.argv, sizeof(char *) * (size_t)args.n);
  memcpy(lens + 3 + keys.n, args.len, sizeof(size_t) * (size_t)args.n);
  /* One round trip: the script runs atomically (Redis runs nothing else
   * meanwhile, and a script that fails before its first write writes
   * nothing). */
  if (redisAppendCommandArgv(s->c, total, argv, lens) != REDIS_OK) {
    rc = fail(s, err, "append");
    goto out;
  }
  if (redisGetReply(s->c, (void **)&r) != REDIS_OK) {
    r = NULL;
    rc = fail(s, err, "read");
    goto out;
  }
  /* [per-event results] or an error */
  redisReply *res = r;
  if (use_sha && res->type == REDIS_REPLY_ERROR &&
      strncmp(res->str, "NOSCRIPT", 8) == 0) {
    /* the script did not run: nothing was written; send its text */
    freeReplyObject(r);
    r = NULL;
    use_sha = 0;
    goto again;
  }
  if (res->type == REDIS_REPLY_ERROR) {
    const char *msg = res->str;
    atomic_fetch_add(&g_errors, 1);
    hr_log(HR_LOG_ERROR, "redis_event_error", json_pack("{s:s}", "error", msg));
    rc = hr_error_set(err, transient_reply(msg) ? HR_EREDIS : HR_EINTERNAL, "",
                      "redis refused the events (%s); nothing was written",
                      msg);
    goto out;
  }
  if (res->type != REDIS_REPLY_ARRAY || res->elements != n) {
    atomic_fetch_add(&g_errors, 1);
    rc = hr_error_set(err, HR_EINTERNAL, "", "unexpected reply to the event "
                                             "script");
    goto out;
  }
  for (size_t i = 0; i < n; i++) {
    int one = res->element[i]->type == REDIS_REPLY_INTEGER
                  ? (int)res->element[i]->integer
                  : -1;
    status[i] = one == 0   ? HR_EV_DUPLICATE
                : one == 2 ? HR_EV_ATTRIBUTED
                           : HR_EV_WRITTEN;
  }
out:
  if (r)
    freeReplyObject(r);
  free(argv);
  free(lens);
  argvec_free(&keys);
  argvec_free(&args);
  return rc;
}

int hr_ctxstore_write_events(hr_ctxstore_t *s, const hr_event_t *ev, size_t n,
                             int *status, hr_error_t *err) {
  int reused = s->c != NULL, rc;
  hr_error_t first = {0};

  rc = write_once(s, ev, n, status, &first);
  /* A connection that worked before and broke now was most likely closed
   * by the peer while idle (a Redis restart, a timeout, CLIENT KILL): dial
   * again at once. Retrying the write itself is safe only when every event
   * carries an event_id, because the lost reply may have followed a
   * successful write. Not after a timeout: Redis is not answering. */
  if (rc == HR_EREDIS && reused && s->c == NULL && !s->timed_out) {
    s->next_try_ms = 0;
    int all_ids = 1;
    for (size_t i = 0; i < n; i++)
      all_ids &= ev[i].event_id != NULL;
    if (all_ids) {
      hr_error_t again = {0};
      rc = write_once(s, ev, n, status, &again);
      if (rc != 0 && err)
        *err = again;
      return rc;
    }
  }
  if (rc != 0 && err && err->code == 0)
    *err = first;
  return rc;
}

int hr_ctxstore_ping(hr_ctxstore_t *s) {
  redisReply *r;
  int ok;

  for (int attempt = 0;; attempt++) {
    int reused = s->c != NULL;
    if (ensure(s, NULL) != 0)
      return HR_EREDIS;
    if ((r = redisCommand(s->c, "PING")) != NULL)
      break;
    fail(s, NULL, "ping");
    /* A connection that Redis closed while idle (a restart) fails its
     * first command, which says nothing of Redis now: dial again at once,
     * as hr_ctxstore_write_events does, so that a health check or a
     * metrics scrape on this thread does not report a Redis that is up
     * as down. Not after a timeout: Redis is not answering. */
    if (attempt > 0 || !reused || s->timed_out)
      return HR_EREDIS;
    s->next_try_ms = 0;
  }
  ok = r->type == REDIS_REPLY_STATUS;
  freeReplyObject(r);
  atomic_store(&g_up, ok);
  return ok ? 0 : HR_EREDIS;
}

/* ------------------------------------------------------- experiments */

/* One batch of impressions and users, applied whole or not at all: key
 * types are checked before anything is written, and the batch's token is
 * set with it, so a batch sent again (its reply was lost) adds nothing.
 * KEYS: token, then per entry: counters hash, users set.
 * ARGV: token ttl, n, then per entry: field, count, n_ids, ids...
 * Returns 1 (applied) or 0 (the token was seen: applied before). */
static const char exp_add_script[] =
    "if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end\n"
    "local n = tonumber(ARGV[2])\n"
    "for i = 1, n do\n"
    "  for _, key in ipairs({KEYS[2 * i], KEYS[2 * i + 1]}) do\n"
    "    local t = redis.call('TYPE', key).ok\n"
    "    local want = key == KEYS[2 * i] and 'hash' or 'set'\n"
    "    if t ~= 'none' and t ~= want then\n"
    "      return redis.error_reply('WRONGTYPE ' .. key .. ' holds a ' .. t ..\n"
    "        ', not a ' .. want .. '; nothing was counted')\n"
    "    end\n"
    "  end\n"
    "end\n"
    "local a = 3\n"
    "for i = 1, n do\n"
    "  local f, c, m = ARGV[a], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])\n"
    "  a = a + 3\n"
    "  if c > 0 then redis.call('HINCRBY', KEYS[2 * i], f, c) end\n"
    "  for j = a, a + m - 1, 1000 do\n"
    "    redis.call('SADD', KEYS[2 * i + 1], "
    "unpack(ARGV, j, math.min(j + 999, a + m - 1)))\n"
    "  end\n"
    "  a = a + m\n"
    "end\n"
    "redis.call('SET', KEYS[1], '1', 'EX', ARGV[1])\n"
    "return 1\n";

#define EXP_TOKEN_TTL_S 86400 /* a lost reply is retried well within this */

int hr_ctxstore_exp_add(hr_ctxstore_t *s, const char *token,
                        const hr_exp_add_t *add, size_t n, hr_error_t *err) {
  const char *prefix = s->cfg.redis.key_prefix;
  /* EVAL, script, numkeys, token key, 2 keys per entry, ttl, n, then per
   * entry its field, count, id count and ids */
  size_t total = 6 + 2 * n, at = 0, arena_len;
  const char **argv;
  size_t *lens;
  char *arena, *w;
  redisReply *r = NULL;
  int rc;

  for (size_t i = 0; i < n; i++)
    total += 3 + add[i].n_ids;
  /* keys (token, per entry 2) and the numbers, formatted into one arena */
  arena_len = (size_t)HR_CONFIG_STR + 256 +
              n * (2 * (HR_CONFIG_STR + 2 * HR_EXP_NAME + 32) +
                   HR_EXP_NAME + 64);
  argv = malloc(sizeof(char *) * total);
  lens = malloc(sizeof(size_t) * total);
  arena = malloc(arena_len);
  if (argv == NULL || lens == NULL || arena == NULL) {
    rc = hr_error_set(err, HR_ENOMEM, "", "out of memory");
    goto out;
  }
  w = arena;
#define PUT(...)                                                              \
  do {                                                                        \
    size_t room_ = arena_len - (size_t)(w - arena);                           \
    int len_ = snprintf(w, room_, __VA_ARGS__);                               \
    if (len_ < 0 || (size_t)len_ >= room_ || at >= total) {                   \
      rc = hr_error_set(err, HR_EINVAL, "", "experiment batch too large to "  \
                        "encode");                                            \
      goto out;                                                               \
    }                                                                         \
    argv[at] = w;                                                             \
    lens[at++] = (size_t)len_;                                                \
    w += len_ + 1;                                                            \
  } while (0)
  argv[at] = "EVAL";
  lens[at++] = 4;
  argv[at] = exp_add_script;
  lens[at++] = sizeof(exp_add_script) - 1;
  PUT("%zu", 1 + 2 * n);
  PUT("%sexp:batch:%s", prefix, token);
  for (size_t i = 0; i < n; i++) {
    PUT("%sexp:{%s}", prefix, add[i].experiment);
    PUT("%sexp:{%s}:users:%s", prefix, add[i].experiment, add[i].variant);
  }
  PUT("%d", EXP_TOKEN_TTL_S);
  PUT("%zu", n);
  for (size_t i = 0; i < n; i++) {
    PUT("%s:impressions", add[i].variant);
    PUT("%llu", add[i].impressions);
    PUT("%zu", add[i].n_ids);
    for (size_t j = 0; j < add[i].n_ids; j++) {
      argv[at] = add[i].ids[j];
      lens[at++] = strlen(add[i].ids[j]);
    }
  }
#undef PUT
  if ((rc = ensure(s, err)) != 0)
    goto out;
  r = redisCommandArgv(s->c, (int)at, argv, lens);
  if (r == NULL) {
    rc = fail(s, err, "experiment counters");
  } else if (r->type == REDIS_REPLY_ERROR) {
    atomic_fetch_add(&g_errors, 1);
    rc = hr_error_set(err, transient_reply(r->str) ? HR_EREDIS : HR_EINTERNAL,
                      "", "redis refused the experiment counters (%s)",
                      r->str);
  } else if (r->type != REDIS_REPLY_INTEGER) {
    rc = hr_error_set(err, HR_EINTERNAL, "", "unexpected reply to the "
                                             "experiment counters' script");
  }
out:
  if (r != NULL)
    freeReplyObject(r);
  free(argv);
  free(lens);
  free(arena);
  return rc;
}

int hr_ctxstore_exp_applied(hr_ctxstore_t *s, const char *token,
                            hr_error_t *err) {
  redisReply *r;
  int applied;

  if (ensure(s, err) != 0)
    return -1;
  r = redisCommand(s->c, "EXISTS %sexp:batch:%s", s->cfg.redis.key_prefix,
                   token);
  if (r == NULL) {
    fail(s, err, "experiment batch marker");
    return -1;
  }
  applied = r->type == REDIS_REPLY_INTEGER ? r->integer == 1 : -1;
  if (applied < 0)
    hr_error_set(err, HR_EREDIS, "", "unexpected reply to EXISTS (%s)",
                 r->type == REDIS_REPLY_ERROR ? r->str : "not a number");
  freeReplyObject(r);
  return applied;
}

int hr_ctxstore_exp_read(hr_ctxstore_t *s, const char *experiment,
                         const char *const *variants, size_t n,
                         hr_exp_totals_t *out, hr_error_t *err) {
  const char *prefix = s->cfg.redis.key_prefix;
  char key[HR_CONFIG_STR + 2 * HR_EXP_NAME + 32];
  static const char *const sets[3] = {"users", "clickers", "converters"};
  redisReply *h = NULL, *r;
  int rc = 0;

  memset(out, 0, sizeof(*out) * n);
  if ((rc = ensure(s, err)) != 0)
    return rc;
  snprintf(key, sizeof(key), "%sexp:{%s}", prefix, experiment);
  if (redisAppendCommand(s->c, "HGETALL %s", key) != REDIS_OK)
    return fail(s, err, "append");
  for (size_t i = 0; i < 3 * n; i++) {
    snprintf(key, sizeof(key), "%sexp:{%s}:%s:%s", prefix, experiment,
             sets[i % 3], variants[i / 3]);
    if (redisAppendCommand(s->c, "SCARD %s", key) != REDIS_OK)
      return fail(s, err, "append");
  }
  if (redisGetReply(s->c, (void **)&h) != REDIS_OK)
    return fail(s, err, "read");
  for (size_t i = 0; i < 3 * n; i++) {
    unsigned long long *to[3] = {&out[i / 3].users, &out[i / 3].users_clicked,
                                 &out[i / 3].users_converted};
    if (redisGetReply(s->c, (void **)&r) != REDIS_OK) {
      freeReplyObject(h);
      return fail(s, err, "read");
    }
    if (r->type == REDIS_REPLY_INTEGER)
      *to[i % 3] = (unsigned long long)r->integer;
    else if (rc == 0)
      rc = hr_error_set(err,
                        r->type == REDIS_REPLY_ERROR && transient_reply(r->str)
                            ? HR_EREDIS
                            : HR_EINTERNAL,
                        "", "SCARD %sexp:{%s}:%s:%s: %s", prefix, experiment,
                        sets[i % 3], variants[i / 3],
                        r->type == REDIS_REPLY_ERROR ? r->str
                                                     : "unexpected reply");
    freeReplyObject(r);
  }
  if (h->type != REDIS_REPLY_ARRAY) {
    if (rc == 0)
      rc = hr_error_set(err,
                        h->type == REDIS_REPLY_ERROR && transient_reply(h->str)
                            ? HR_EREDIS
                            : HR_EINTERNAL,
                        "", "HGETALL %sexp:{%s}: %s", prefix, experiment,
                        h->type == REDIS_REPLY_ERROR ? h->str
                                                     : "unexpected reply");
    freeReplyObject(h);
    return rc;
  }
  for (size_t i = 0; i + 1 < h->elements && rc == 0; i += 2) {
    static const char *const names[] = {"impressions", "clicks",
                                        "click_events", "conversions",
                                        "conversion_events"};
    const char *f = h->element[i]->str, *colon, *val = h->element[i + 1]->str;
    char *end;
    unsigned long long num;
    if (f == NULL || val == NULL || (colon = strchr(f, ':')) == NULL)
      continue;
    errno = 0;
    num = strtoull(val, &end, 10);
    for (size_t v = 0; v < n; v++) {
      unsigned long long *slot[] = {&out[v].impressions, &out[v].clicks,
                                    &out[v].click_events, &out[v].conversions,
                                    &out[v].conversion_events};
      if (strlen(variants[v]) != (size_t)(colon - f) ||
          strncmp(variants[v], f, (size_t)(colon - f)) != 0)
        continue;
      for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++)
        if (strcmp(colon + 1, names[k]) == 0) {
          if (errno != 0 || *end != '\0' || val[0] == '-')
            rc = hr_error_set(err, HR_EINTERNAL, "", "%sexp:{%s} field %s "
                              "is not a count: %.32s", prefix, experiment, f,
                              val);
          else
            *slot[k] = num;
        }
    }
  }
  freeReplyObject(h);
  return rc;
}

/* ------------------------------------------------------- hidden items */

/* KEYS: the set, its version. ARGV: item, "1" hide / "0" show, the most
 * hidden at once. Returns 1 (changed: the version moved), 0 (already so)
 * or -1 (full: nothing written). */
static const char hidden_script[] =
    "if ARGV[2] == '1' then\n"
    "  if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then return 0 end\n"
    "  if redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[3]) then return -1 end\n"
    "  redis.call('SADD', KEYS[1], ARGV[1])\n"
    "elseif redis.call('SREM', KEYS[1], ARGV[1]) == 0 then return 0 end\n"
    "redis.call('INCR', KEYS[2])\n"
    "return 1\n";

int hr_ctxstore_hidden_set(hr_ctxstore_t *s, const char *item_id, int hidden,
                           int *changed, hr_error_t *err) {
  const char *prefix = s->cfg.redis.key_prefix;
  redisReply *r;
  int rc = 0;

  if ((rc = ensure(s, err)) != 0)
    return rc;
  r = redisCommand(s->c, "EVAL %s 2 %sitems:{hidden} %sitems:{hidden}:version "
                   "%s %s %d", hidden_script, prefix, prefix, item_id,
                   hidden ? "1" : "0", s->cfg.items.max_hidden);
  if (r == NULL)
    return fail(s, err, "hide item");
  if (r->type == REDIS_REPLY_INTEGER && r->integer >= 0) {
    *changed = (int)r->integer;
  } else if (r->type == REDIS_REPLY_INTEGER) {
    rc = hr_error_set(err, HR_ECONFLICT, "", "%d items are hidden already "
                      "(items.max_hidden); show one first",
                      s->cfg.items.max_hidden);
  } else {
    rc = hr_error_set(err, r->type == REDIS_REPLY_ERROR &&
                               transient_reply(r->str) ? HR_EREDIS
                                                       : HR_EINTERNAL,
                      "", "redis refused the change (%s); nothing was "
                      "written", r->type == REDIS_REPLY_ERROR ? r->str
                                                              : "bad reply");
  }
  freeReplyObject(r);
  return rc;
}

int hr_ctxstore_hidden_version(hr_ctxstore_t *s, long long *version,
                               hr_error_t *err) {
  redisReply *r;
  int rc = 0;
  if ((rc = ensure(s, err)) != 0)
    return rc;
  r = redisCommand(s->c, "GET %sitems:{hidden}:version",
                   s->cfg.redis.key_prefix);
  if (r == NULL)
    return fail(s, err, "hidden items' version");
  if (r->type == REDIS_REPLY_NIL)
    *version = 0;
  else if (r->type == REDIS_REPLY_STRING)
    *version = strtoll(r->str, NULL, 10);
  else
    rc = hr_error_set(err, HR_EINTERNAL, "", "unexpected reply to GET of the "
                      "hidden items' version");
  freeReplyObject(r);
  return rc;
}

int hr_ctxstore_hidden_list(hr_ctxstore_t *s, size_t max, long long *version,
                            char ***ids, size_t *n, hr_error_t *err) {
  const char *prefix = s->cfg.redis.key_prefix;
  redisReply *r = NULL, *e;
  int rc = 0;

  *ids = NULL;
  *n = 0;
  if ((rc = ensure(s, err)) != 0)
    return rc;
  /* one transaction: the version and the members that go with it */
  if (redisAppendCommand(s->c, "MULTI") != REDIS_OK ||
      redisAppendCommand(s->c, "GET %sitems:{hidden}:version", prefix) !=
          REDIS_OK ||
      redisAppendCommand(s->c, "SMEMBERS %sitems:{hidden}", prefix) !=
          REDIS_OK ||
      redisAppendCommand(s->c, "EXEC") != REDIS_OK)
    return fail(s, err, "append");
  for (int i = 0; i < 4; i++) {
    if (redisGetReply(s->c, (void **)&r) != REDIS_OK || r == NULL)
      return fail(s, err, "hidden items");
    if (i < 3) {
      freeReplyObject(r);
      r = NULL;
    }
  }
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
      (r->element[0]->type != REDIS_REPLY_NIL &&
       r->element[0]->type != REDIS_REPLY_STRING) ||
      r->element[1]->type != REDIS_REPLY_ARRAY) {
    freeReplyObject(r);
    return hr_error_set(err, HR_EINTERNAL, "", "unexpected reply reading the "
                        "hidden items (a key of another type?)");
  }
  *version = r->element[0]->type == REDIS_REPLY_STRING
                 ? strtoll(r->element[0]->str, NULL, 10) : 0;
  e = r->element[1];
  size_t m = e->elements < max ? e->elements : max;
  if (m > 0 && (*ids = calloc(m, sizeof(char *))) == NULL)
    rc = hr_error_set(err, HR_ENOMEM, "", "out of memory");
  for (size_t i = 0; rc == 0 && i < m; i++) {
    if (e->element[i]->type != REDIS_REPLY_STRING)
      continue;
    if (((*ids)[*n] = strdup(e->element[i]->str)) == NULL)
      rc = hr_error_set(err, HR_ENOMEM, "", "out of memory");
    else
      (*n)++;
  }
  freeReplyObject(r);
  if (rc != 0) {
    hr_ctxstore_free_ids(*ids, *n);
    *ids = NULL;
    *n = 0;
  }
  return rc;
}

void hr_ctxstore_free_ids(char **ids, size_t n) {
  for (size_t i = 0; i < n; i++)
    free(ids[i]);
  free(ids);
}

/* ------------------------------------------------------ stream reading */

int hr_ctxstore_stream_items(hr_ctxstore_t *s, char *after, size_t after_len,
                             size_t count, hr_stream_item_fn fn, void *arg,
                             size_t *n_read, hr_error_t *err) {
  redisReply *r;
  int rc = 0;

  *n_read = 0;
  if ((rc = ensure(s, err)) != 0)
    return rc;
  char cnt[24];
  snprintf(cnt, sizeof(cnt), "%zu", count);
  r = redisCommand(s->c, "XRANGE %sevents (%s + COUNT %s",
                   s->cfg.redis.key_prefix, after, cnt);
  if (r == NULL)
    return fail(s, err, "read the event stream");
  if (r->type != REDIS_REPLY_ARRAY) {
    rc = hr_error_set(err, HR_EINTERNAL, "", "unexpected reply to XRANGE "
                      "(%s)", r->type == REDIS_REPLY_ERROR ? r->str
                                                           : "not an array");
    freeReplyObject(r);
    return rc;
  }
  for (size_t i = 0; i < r->elements && rc == 0; i++) {
    redisReply *en = r->element[i], *f;
    const char *item = NULL;
    if (en->type != REDIS_REPLY_ARRAY || en->elements != 2 ||
        en->element[0]->type != REDIS_REPLY_STRING)
      continue;
    f = en->element[1];
    for (size_t j = 0; f->type == REDIS_REPLY_ARRAY && j + 1 < f->elements;
         j += 2)
      if (f->element[j]->type == REDIS_REPLY_STRING &&
          f->element[j + 1]->type == REDIS_REPLY_STRING &&
          strcmp(f->element[j]->str, "item_id") == 0)
        item = f->element[j + 1]->str;
    snprintf(after, after_len, "%s", en->element[0]->str);
    (*n_read)++;
    if (item != NULL)
      rc = fn(arg, item, strtoll(en->element[0]->str, NULL, 10));
  }
  freeReplyObject(r);
  return rc;
}
