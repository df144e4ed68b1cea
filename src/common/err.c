/* err.c -- names, messages and HTTP statuses of the HR_E* codes. */
#include "hr/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *hr_err_name(int code) {
  switch (code) {
  case 0: return "OK";
#define XX(name, val, status, msg) case -(val): return #name;
  HR_ERR_MAP(XX)
#undef XX
  }
  return "UNKNOWN";
}

const char *hr_strerror(int code) {
  switch (code) {
  case 0: return "success";
#define XX(name, val, status, msg) case -(val): return msg;
  HR_ERR_MAP(XX)
#undef XX
  }
  return "unknown error";
}

int hr_err_status(int code) {
  switch (code) {
  case 0: return 200;
#define XX(name, val, status, msg) case -(val): return status;
  HR_ERR_MAP(XX)
#undef XX
  }
  return 500;
}

const char *hr_err_api_code(int code) {
  /* Stable snake_case names for clients; kept beside the table so that a new
   * code cannot be added without one. */
  switch (code) {
  case HR_EINVAL: return "invalid_argument";
  case HR_EBADJSON: return "invalid_json";
  case HR_EBADREQUEST: return "bad_request";
  case HR_EBADFIELD: return "invalid_field";
  case HR_EMISSING: return "missing_field";
  case HR_EUNKNOWNFIELD: return "unknown_field";
  case HR_ERANGE: return "out_of_range";
  case HR_ETOOMANY: return "too_many";
  case HR_ENOTFOUND: return "not_found";
  case HR_EMETHOD: return "method_not_allowed";
  case HR_ETOOBIG: return "payload_too_large";
  case HR_EMEDIATYPE: return "unsupported_media_type";
  case HR_EUNAUTH: return "unauthorized";
  case HR_ENOMEM: return "out_of_memory";
  case HR_EIO: return "io_error";
  case HR_EFORMAT: return "bad_format";
  case HR_ECHECKSUM: return "bad_checksum";
  case HR_EVERSION: return "bad_version";
  case HR_EINTERNAL: return "internal";
  case HR_EREDIS: return "context_store_unavailable";
  case HR_ENOMODEL: return "no_model";
  case HR_ETIMEOUT: return "timeout";
  case HR_ESHUTDOWN: return "shutting_down";
  case HR_ECONFLICT: return "conflict";
  case HR_EFORBIDDEN: return "forbidden";
  case HR_ERATELIMITED: return "rate_limited";
  }
  return "unknown";
}

/* The length of the well-formed UTF-8 sequence at p (at most `left`
 * bytes), or 0 when it is not one. */
static int utf8_seq(const unsigned char *p, size_t left) {
  int n = *p < 0x80 ? 1 : (*p & 0xE0) == 0xC0 ? 2 : (*p & 0xF0) == 0xE0 ? 3
          : (*p & 0xF8) == 0xF0 ? 4 : 0;
  int ok = n > 0 && (size_t)n <= left && !(n == 2 && *p < 0xC2) &&
           !(n == 4 && *p > 0xF4);
  for (int i = 1; ok && i < n; i++)
    ok = (p[i] & 0xC0) == 0x80;
  if (ok && n == 3) {
    unsigned cp = (unsigned)(p[0] & 0x0F) << 12 | (unsigned)(p[1] & 0x3F) << 6;
    ok = cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF);
  }
  if (ok && n == 4) {
    unsigned cp = (unsigned)(p[0] & 0x07) << 18 | (unsigned)(p[1] & 0x3F) << 12;
    ok = cp >= 0x10000 && cp <= 0x10FFFF;
  }
  return ok ? n : 0;
}

int hr_utf8_valid(const char *s, size_t len) {
  const unsigned char *p = (const unsigned char *)s;
  for (size_t i = 0; i < len;) {
    int n = p[i] ? utf8_seq(p + i, len - i) : 0;
    if (n == 0)
      return 0;
    i += (size_t)n;
  }
  return 1;
}

/* Makes `s` valid UTF-8 in place: bytes that do not start a complete,
 * well-formed sequence become '?'. snprintf may have cut a character in
 * two, and client bytes (a method, a field name) may be anything; an error
 * text must still encode as JSON. */
static void utf8_sanitize(char *s) {
  unsigned char *p = (unsigned char *)s;
  size_t left = strlen(s);
  while (left > 0) {
    int n = utf8_seq(p, left);
    if (n == 0) {
      *p++ = '?';
      left--;
      continue;
    }
    p += n;
    left -= (size_t)n;
  }
}

int hr_error_set(hr_error_t *err, int code, const char *field,
                 const char *fmt, ...) {
  va_list ap;

  if (err == NULL || err->code != 0)
    return code;
  err->code = code;
  snprintf(err->field, sizeof(err->field), "%s", field ? field : "");
  va_start(ap, fmt);
  vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
  va_end(ap);
  utf8_sanitize(err->field);
  utf8_sanitize(err->msg);
  return code;
}

void hr_error_clear(hr_error_t *err) {
  if (err != NULL)
    memset(err, 0, sizeof(*err));
}
