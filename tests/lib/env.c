/* env.c -- one integration-test environment (see env.h). */
#include "lib/env.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define HTTP_TIMEOUT_MS 10000

/* ------------------------------------------------------------ lifecycle */

static int write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");

  if (f == NULL)
    return -1;
  if (fputs(text, f) < 0) {
    fclose(f);
    return -1;
  }
  return fclose(f);
}

int hrt_env_start(hrt_env_t *e, const hrt_env_opts_t *opts) {
  static const hrt_env_opts_t none = {0};
  char redis_addr[64];
  const char *args[16];
  size_t n = 0;

  if (opts == NULL)
    opts = &none;
  memset(e, 0, sizeof(*e));
  e->started = 1;
  snprintf(e->models, sizeof(e->models), "%s/models", hr_test_tmpdir());
  if (hrt_mkdirs(e->models) != 0)
    return -1;
  if (opts->no_model) {
    char slot[PATH_MAX];
    hrt_fmt(slot, sizeof(slot), "%s/default", e->models);
    if (hrt_mkdirs(slot) != 0)
      return -1;
  } else if (hrt_fixture_get(&e->fx) != 0 ||
             hrt_fixture_install(&e->fx, e->models) != 0) {
    return -1;
  }
  e->redis.durable = opts->redis_durable;
  if (hrt_redis_start(&e->redis) != 0)
    return -1;
  if (opts->redis_down)
    hrt_redis_stop(&e->redis);
  snprintf(redis_addr, sizeof(redis_addr), "127.0.0.1:%d", e->redis.port);
  args[n++] = "--listen";
  args[n++] = "127.0.0.1:0";
  args[n++] = "--redis";
  args[n++] = redis_addr;
  args[n++] = "--models";
  args[n++] = e->models;
  if (opts->config_json != NULL) {
    snprintf(e->config, sizeof(e->config), "%s/hyperrec.json",
             hr_test_tmpdir());
    if (write_file(e->config, opts->config_json) != 0) {
      fprintf(stderr, "  write %s: %s\n", e->config, strerror(errno));
      return -1;
    }
    args[n++] = "--config";
    args[n++] = e->config;
  }
  args[n++] = "--log-level";
  args[n++] = "debug";
  args[n] = NULL;
  return hrt_server_start(&e->srv, args);
}

int hrt_env_stop(hrt_env_t *e) {
  int rc = hrt_server_stop(&e->srv);

  hrt_redis_stop(&e->redis);
  if (e->rc != NULL)
    redisFree(e->rc);
  e->rc = NULL;
  e->stopped = 1;
  return rc;
}

void hrt_env_cleanup(hrt_env_t *e) {
  if (!e->started || e->stopped)
    return;
  if (e->srv.pid > 0) {
    fprintf(stderr, "  (test ended before hrt_env_stop; server log below)\n");
    hrt_print_tail("hyperrec stderr", e->srv.log, 25);
  }
  hrt_terminate(e->srv.pid, 3000);
  e->srv.pid = 0;
  hrt_redis_stop(&e->redis);
  if (e->rc != NULL)
    redisFree(e->rc);
  e->rc = NULL;
  e->stopped = 1;
}

/* ------------------------------------------------------------ HTTP + JSON */

int hrt_req(hrt_env_t *e, const char *method, const char *path,
            const char *headers, const char *body, size_t body_len,
            hrt_resp_t *out) {
  /* with the tests' API key, unless the caller brings credentials */
  char h[4096];
  if (headers == NULL)
    headers = "";
  if (strstr(headers, "Authorization:") == NULL &&
      strstr(headers, "X-API-Key:") == NULL &&
      strlen(headers) + sizeof(HRT_AUTH_HEADER) < sizeof(h)) {
    snprintf(h, sizeof(h), "%s%s", headers, HRT_AUTH_HEADER);
    headers = h;
  }
  return hrt_http(e->srv.port, method, path, headers, body, body_len,
                  HTTP_TIMEOUT_MS, out);
}

static json_t *parse_resp(hrt_resp_t *r, int *status) {
  json_t *j = NULL;

  *status = r->status;
  if (r->body != NULL && r->body_len > 0)
    j = json_loadb(r->body, r->body_len, 0, NULL);
  hrt_resp_free(r);
  return j;
}

json_t *hrt_post_text(hrt_env_t *e, const char *path, const char *body,
                      int *status) {
  hrt_resp_t r;

  hrt_req(e, "POST", path, "Content-Type: application/json\r\n", body,
          strlen(body), &r);
  return parse_resp(&r, status);
}

json_t *hrt_post(hrt_env_t *e, const char *path, json_t *body, int *status) {
  char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
  json_t *j;

  json_decref(body);
  j = hrt_post_text(e, path, text ? text : "{}", status);
  free(text);
  return j;
}

json_t *hrt_get(hrt_env_t *e, const char *path, int *status) {
  hrt_resp_t r;

  hrt_req(e, "GET", path, NULL, NULL, 0, &r);
  return parse_resp(&r, status);
}

json_t *hrt_jget(json_t *root, const char *path) {
  json_t *cur = root;
  const char *p = path;
  char key[128];

  while (cur != NULL && *p != '\0') {
    if (*p == '.') {
      p++;
      continue;
    }
    if (*p == '[') {
      char *end;
      long idx = strtol(p + 1, &end, 10);
      if (*end != ']')
        return NULL;
      cur = json_array_get(cur, (size_t)idx);
      p = end + 1;
      continue;
    }
    size_t len = strcspn(p, ".[");
    if (len >= sizeof(key))
      return NULL;
    memcpy(key, p, len);
    key[len] = '\0';
    cur = json_object_get(cur, key);
    p += len;
  }
  return cur;
}

const char *hrt_jstr(json_t *root, const char *path) {
  return json_string_value(hrt_jget(root, path));
}

long long hrt_jint(json_t *root, const char *path) {
  json_t *v = hrt_jget(root, path);
  return json_is_integer(v) ? (long long)json_integer_value(v) : LLONG_MIN;
}

int hrt_item_ids(json_t *resp, hrt_strv_t *out) {
  json_t *items = json_object_get(resp, "items");
  size_t i;
  json_t *it;

  if (!json_is_array(items))
    return -1;
  json_array_foreach(items, i, it) {
    const char *id = json_string_value(json_object_get(it, "item_id"));
    if (id == NULL || hrt_strv_add(out, id) != 0)
      return -1;
  }
  return 0;
}

int hrt_scores_sorted(json_t *resp) {
  json_t *items = json_object_get(resp, "items");
  double prev = 0;
  size_t i;
  json_t *it;

  json_array_foreach(items, i, it) {
    json_t *s = json_object_get(it, "score");
    if (!json_is_number(s))
      return 0;
    if (i > 0 && json_number_value(s) > prev)
      return 0;
    prev = json_number_value(s);
  }
  return 1;
}

const char *hrt_jdump(const json_t *j) {
  static char buf[1024];
  char *s;

  if (j == NULL)
    return "(no JSON body)";
  s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
  snprintf(buf, sizeof(buf), "%s", s ? s : "?");
  if (s != NULL && strlen(s) >= sizeof(buf))
    memcpy(buf + sizeof(buf) - 4, "...", 4);
  free(s);
  return buf;
}

/* ------------------------------------------------------------ Redis */

static redisContext *connect_inspector(const hrt_env_t *e) {
  struct timeval tv = {2 * hrt_mult(), 0};
  redisContext *c = redisConnectWithTimeout("127.0.0.1", e->redis.port, tv);

  if (c == NULL)
    return NULL;
  if (c->err != 0) {
    fprintf(stderr, "  redis: %s\n", c->errstr);
    redisFree(c);
    return NULL;
  }
  redisSetTimeout(c, tv);
  return c;
}

/* A connection that broke (Redis restarted under the test) is dialled
 * again once, so callers need not care. */
static redisReply *vcmd(hrt_env_t *e, const char *fmt, va_list ap) {
  redisReply *r = NULL;

  for (int attempt = 0; attempt < 2 && r == NULL; attempt++) {
    va_list aq;
    if (e->rc != NULL && e->rc->err != 0) {
      redisFree(e->rc);
      e->rc = NULL;
    }
    if (e->rc == NULL && (e->rc = connect_inspector(e)) == NULL)
      return NULL;
    va_copy(aq, ap);
    r = redisvCommand(e->rc, fmt, aq);
    va_end(aq);
    if (r == NULL && attempt == 1)
      fprintf(stderr, "  redis: %s\n", e->rc->errstr);
  }
  return r;
}

redisReply *hrt_rcmd(hrt_env_t *e, const char *fmt, ...) {
  va_list ap;
  redisReply *r;

  va_start(ap, fmt);
  r = vcmd(e, fmt, ap);
  va_end(ap);
  return r;
}

long long hrt_rint(hrt_env_t *e, const char *fmt, ...) {
  va_list ap;
  redisReply *r;
  long long v = -1;

  va_start(ap, fmt);
  r = vcmd(e, fmt, ap);
  va_end(ap);
  if (r != NULL && r->type == REDIS_REPLY_INTEGER)
    v = r->integer;
  else if (r != NULL && r->type == REDIS_REPLY_ERROR)
    fprintf(stderr, "  redis: %s: %s\n", fmt, r->str);
  if (r != NULL)
    freeReplyObject(r);
  return v;
}

int hrt_rstr(hrt_env_t *e, char *out, size_t n, const char *fmt, ...) {
  va_list ap;
  redisReply *r;
  int rc = -1;

  va_start(ap, fmt);
  r = vcmd(e, fmt, ap);
  va_end(ap);
  if (r != NULL &&
      (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)) {
    snprintf(out, n, "%.*s", (int)r->len, r->str);
    rc = 0;
  }
  if (r != NULL)
    freeReplyObject(r);
  return rc;
}

int hrt_rlist(hrt_env_t *e, hrt_strv_t *out, const char *fmt, ...) {
  va_list ap;
  redisReply *r;
  int rc = -1;

  va_start(ap, fmt);
  r = vcmd(e, fmt, ap);
  va_end(ap);
  if (r != NULL && r->type == REDIS_REPLY_ARRAY) {
    rc = 0;
    for (size_t i = 0; rc == 0 && i < r->elements; i++)
      if (r->element[i]->type == REDIS_REPLY_STRING)
        rc = hrt_strv_add(out, r->element[i]->str);
  }
  if (r != NULL)
    freeReplyObject(r);
  return rc;
}

/* ------------------------------------------------------------ metrics */

char *hrt_metrics(hrt_env_t *e) {
  hrt_resp_t r;
  char *text = NULL;

  if (hrt_req(e, "GET", "/metrics", NULL, NULL, 0, &r) == 0 &&
      r.status == 200) {
    text = r.body;
    r.body = NULL;
  }
  hrt_resp_free(&r);
  return text;
}

double hrt_metric(const char *text, const char *name, ...) {
  size_t nlen = strlen(name);
  double sum = -1;
  const char *line = text;

  while (line != NULL && *line != '\0') {
    const char *eol = strchr(line, '\n');
    size_t llen = eol ? (size_t)(eol - line) : strlen(line);
    char buf[2048];

    if (llen < sizeof(buf) && line[0] != '#' && llen > nlen &&
        strncmp(line, name, nlen) == 0 &&
        (line[nlen] == '{' || line[nlen] == ' ')) {
      const char *labels, *value;
      int all = 1;
      va_list ap;
      const char *want;

      memcpy(buf, line, llen);
      buf[llen] = '\0';
      labels = buf + nlen;
      value = line[nlen] == '{' ? strchr(labels, '}') : labels;
      if (value != NULL) {
        value = strchr(value, ' ');
        va_start(ap, name);
        while ((want = va_arg(ap, const char *)) != NULL)
          if (line[nlen] != '{' || strstr(labels, want) == NULL ||
              strstr(labels, want) > value)
            all = 0;
        va_end(ap);
        if (all && value != NULL) {
          char *end;
          double v = strtod(value, &end);
          if (end != value)
            sum = (sum < 0 ? 0 : sum) + v;
        }
      }
    }
    line = eol ? eol + 1 : NULL;
  }
  return sum;
}

long long hrt_served_version(hrt_env_t *e) {
  int st;
  json_t *j = hrt_get(e, "/models", &st);
  long long v = st == 200 ? hrt_jint(j, "slots[0].version") : -1;
  json_decref(j);
  return v;
}

const char *hrt_one_se_winner(json_t *list, const char *score,
                              const char *se) {
  double best = -1, best_se = 0;
  for (size_t k = 0; k < json_array_size(list); k++) {
    json_t *c = json_array_get(list, k);
    double x = json_number_value(json_object_get(c, score));
    if (json_object_get(c, score) != NULL && x > best) {
      best = x;
      best_se = json_number_value(json_object_get(c, se));
    }
  }
  for (size_t k = 0; k < json_array_size(list); k++) {
    json_t *c = json_array_get(list, k);
    if (json_object_get(c, score) != NULL &&
        json_number_value(json_object_get(c, score)) >= best - best_se)
      return json_string_value(json_object_get(c, "name"));
  }
  return NULL;
}

json_t *hrt_send(hrt_env_t *e, const char *method, const char *path,
                 const char *headers, const char *body, int *status) {
  hrt_resp_t r;
  char hdr[512];
  hrt_fmt(hdr, sizeof(hdr), "Content-Type: application/json\r\n%s",
          headers ? headers : "");
  hrt_req(e, method, path, hdr, body, strlen(body), &r);
  return parse_resp(&r, status);
}

json_t *hrt_port_json(int port, const char *method, const char *path,
                      const char *headers, const char *body, int *status) {
  char hdr[512];
  hrt_resp_t r = {0};
  json_t *j = NULL;
  hrt_fmt(hdr, sizeof(hdr), "%s%s%s", headers ? headers : "",
          body ? "Content-Type: application/json\r\n" : "",
          headers && strstr(headers, "Authorization:") ? "" : HRT_AUTH_HEADER);
  *status = 0;
  if (hrt_http(port, method, path, hdr, body,
               body ? strlen(body) : 0, 10000, &r) == 0) {
    *status = r.status;
    j = json_loads(r.body, 0, NULL);
  }
  hrt_resp_free(&r);
  return j;
}

