/* err.h -- the one error table of hyperrec, and the error detail out-param.
 *
 * Every fallible function returns 0 or a negative HR_E* code from
 * HR_ERR_MAP; constructors return NULL. Detail travels in an optional
 * hr_error_t (caller-owned, NULL allowed, the first error set wins), the way
 * jansson's json_error_t does. Each code carries the HTTP status it maps to,
 * so the HTTP layer never has to translate. Thread-safe: no state. */
#ifndef HR_ERR_H
#define HR_ERR_H

#include <stddef.h>

/* XX(name, value, http_status, message) */
#define HR_ERR_MAP(XX)                                                        \
  XX(INVAL,        1, 400, "invalid argument")                                \
  XX(BADJSON,      2, 400, "request body is not valid JSON")                  \
  XX(BADFIELD,     3, 400, "invalid field")                                   \
  XX(MISSING,      4, 400, "missing required field")                          \
  XX(UNKNOWNFIELD, 5, 400, "unknown field")                                   \
  XX(RANGE,        6, 400, "value out of range")                              \
  XX(TOOMANY,      7, 400, "too many elements")                               \
  XX(NOTFOUND,     8, 404, "not found")                                       \
  XX(METHOD,       9, 405, "method not allowed")                              \
  XX(TOOBIG,      10, 413, "request body too large")                          \
  XX(MEDIATYPE,   11, 415, "unsupported media type, use application/json")   \
  XX(UNAUTH,      12, 401, "missing or invalid credentials")                  \
  XX(NOMEM,       13, 500, "out of memory")                                   \
  XX(IO,          14, 500, "input/output error")                              \
  XX(FORMAT,      15, 500, "malformed file")                                  \
  XX(CHECKSUM,    16, 500, "checksum mismatch")                               \
  XX(VERSION,     17, 500, "unsupported format version")                      \
  XX(INTERNAL,    18, 500, "internal error")                                  \
  XX(REDIS,       19, 503, "context store unavailable")                       \
  XX(NOMODEL,     20, 503, "no model loaded")                                 \
  XX(TIMEOUT,     21, 503, "timed out")                                       \
  XX(SHUTDOWN,    22, 503, "server is shutting down")                        \
  XX(CONFLICT,    23, 409, "conflict with the current state")            \
  XX(BADREQUEST,  24, 400, "malformed HTTP request")                          \
  XX(FORBIDDEN,   25, 403, "these credentials do not allow this request")    \
  XX(RATELIMITED, 26, 429, "too many requests")

typedef enum {
  HR_OK = 0,
#define XX(name, val, status, msg) HR_E##name = -(val),
  HR_ERR_MAP(XX)
#undef XX
} hr_errcode_t;

/** Detail of an error: which field and a human sentence. Caller-owned. */
typedef struct {
  int code;            /* HR_E* (negative), 0 while unset */
  char field[64];      /* JSON path of the offending field, "" if none */
  char msg[160];       /* human-readable sentence */
} hr_error_t;

/** Name of a code without the HR_E prefix, e.g. "BADFIELD"; "UNKNOWN" else. */
const char *hr_err_name(int code);
/** The table's generic message for a code. */
const char *hr_strerror(int code);
/** HTTP status for a code (500 for unknown codes). */
int hr_err_status(int code);
/** Lower-case machine code for API bodies, e.g. "bad_field". */
const char *hr_err_api_code(int code);

/** 1 when s[0..len) is well-formed UTF-8 without NUL bytes. */
int hr_utf8_valid(const char *s, size_t len);

/** Set the detail unless err is NULL or already set; returns code so that
 *  callers can write `return hr_error_set(err, HR_EINVAL, "k", "...")`.
 *  field may be NULL. fmt is printf-style. */
int hr_error_set(hr_error_t *err, int code, const char *field,
                 const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/** Forget a previous error so the struct can be reused. */
void hr_error_clear(hr_error_t *err);

#endif
