/* jsonw.c -- a JSON writer into a growing buffer, for the answers on the
 * request path: the bytes jansson's json_dumps(JSON_COMPACT |
 * JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(p)) gives for the same values,
 * without building a tree of allocated nodes first. */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Room for n more bytes (and a NUL); sets oom on failure, after which
 * writes are dropped. */
static int room(hr_jsonw_t *j, size_t n) {
  if (j->oom)
    return 0;
  if (j->len + n + 1 > j->cap) {
    size_t cap = j->cap ? j->cap : 1024;
    char *b;
    while (cap < j->len + n + 1)
      cap *= 2;
    if ((b = realloc(j->buf, cap)) == NULL) {
      j->oom = 1;
      return 0;
    }
    j->buf = b;
    j->cap = cap;
  }
  return 1;
}

void hr_jsonw_reset(hr_jsonw_t *j) {
  j->len = 0;
  j->oom = 0;
  j->comma = 0;
  if (room(j, 0))
    j->buf[0] = '\0';
}

void hr_jsonw_free(hr_jsonw_t *j) {
  free(j->buf);
  memset(j, 0, sizeof(*j));
}

static void put(hr_jsonw_t *j, const char *s, size_t n) {
  if (!room(j, n))
    return;
  memcpy(j->buf + j->len, s, n);
  j->len += n;
  j->buf[j->len] = '\0';
}

/* A comma before a value that follows another in the same container. */
static void sep(hr_jsonw_t *j) {
  if (j->comma)
    put(j, ",", 1);
  j->comma = 1;
}

static void quoted(hr_jsonw_t *j, const char *s) {
  /* the short escapes of control characters, \u00XX for the others */
  static const char hex[] = "0123456789ABCDEF", shorts[32] = {
      ['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n', ['\r'] = 'r', ['\t'] = 't'};
  const char *run = s;
  put(j, "\"", 1);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    char esc[6] = {'\\', 'u', '0', '0', 0, 0};
    if (c >= 0x20 && c != '"' && c != '\\')
      continue;
    put(j, run, (size_t)(s - run));
    run = s + 1;
    if (c >= 0x20 || shorts[c]) {
      esc[1] = c >= 0x20 ? (char)c : shorts[c];
      put(j, esc, 2);
    } else {
      esc[4] = hex[c >> 4];
      esc[5] = hex[c & 15];
      put(j, esc, 6);
    }
  }
  put(j, run, (size_t)(s - run));
  put(j, "\"", 1);
}

void hr_jsonw_open(hr_jsonw_t *j, const char *key, char brace) {
  if (key != NULL)
    hr_jsonw_key(j, key);
  else
    sep(j);
  put(j, &brace, 1);
  j->comma = 0;
}

void hr_jsonw_close(hr_jsonw_t *j, char brace) {
  put(j, &brace, 1);
  j->comma = 1;
}

void hr_jsonw_key(hr_jsonw_t *j, const char *key) {
  sep(j);
  quoted(j, key);
  put(j, ":", 1);
  j->comma = 0;
}

void hr_jsonw_str(hr_jsonw_t *j, const char *key, const char *s) {
  if (key != NULL)
    hr_jsonw_key(j, key);
  sep(j);
  if (s == NULL)
    put(j, "null", 4);
  else
    quoted(j, s);
}

void hr_jsonw_int(hr_jsonw_t *j, const char *key, long long v) {
  char b[24];
  int n = snprintf(b, sizeof(b), "%lld", v);
  if (key != NULL)
    hr_jsonw_key(j, key);
  sep(j);
  put(j, b, (size_t)n);
}

void hr_jsonw_bool(hr_jsonw_t *j, const char *key, int v) {
  if (key != NULL)
    hr_jsonw_key(j, key);
  sep(j);
  put(j, v ? "true" : "false", v ? 4 : 5);
}

void hr_jsonw_null(hr_jsonw_t *j, const char *key) {
  hr_jsonw_str(j, key, NULL);
}

/* jansson's real: "%.<p>g", ".0" added when it reads as an integer, and
 * the exponent without '+' or leading zeros. */
void hr_jsonw_real(hr_jsonw_t *j, const char *key, double v, int precision) {
  char b[40], out[40], *e;
  size_t n, w;
  if (key != NULL)
    hr_jsonw_key(j, key);
  sep(j);
  if (!isfinite(v)) { /* JSON has no such number */
    put(j, "null", 4);
    return;
  }
  n = (size_t)snprintf(b, sizeof(b), "%.*g", precision, v);
  if (strchr(b, '.') == NULL && strchr(b, 'e') == NULL && n + 2 < sizeof(b)) {
    memcpy(b + n, ".0", 3);
    n += 2;
  }
  if ((e = strchr(b, 'e')) == NULL) {
    put(j, b, n);
    return;
  }
  w = (size_t)(e - b) + 1;
  memcpy(out, b, w);
  e++;
  if (*e == '+')
    e++;
  else if (*e == '-')
    out[w++] = *e++;
  while (*e == '0' && e[1] != '\0')
    e++;
  while (*e)
    out[w++] = *e++;
  put(j, out, w);
}

char *hr_jsonw_take(hr_jsonw_t *j) {
  char *s;
  if (j->oom || (s = malloc(j->len + 1)) == NULL)
    return NULL;
  memcpy(s, j->buf, j->len + 1);
  return s;
}
