/* features.c -- context resolution (see features.h). */
#include "hr/features.h"

#include <time.h>

static const char *const source_names[] = {"none", "request", "redis", "now",
                                           "default"};

const char *hr_ctx_source_name(hr_ctx_source_t s) {
  return (unsigned)s < sizeof(source_names) / sizeof(source_names[0])
             ? source_names[s]
             : "none";
}

static long long floor_div(long long a, long long b) {
  long long q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

void hr_features_resolve(const char *const req[HR_CTX_FIELDS], long long req_ts,
                         const hr_user_state_t *st, hr_context_t *out) {
  enum { TZ = 0 }; /* hr_ctx_field_names[0] is "tz" */
  long long local;

  for (int i = 0; i < HR_CTX_FIELDS; i++) {
    out->val[i] = NULL;
    out->src[i] = HR_SRC_NONE;
    if (req && req[i]) {
      out->val[i] = req[i];
      out->src[i] = HR_SRC_REQUEST;
    } else if (st && st->ctx[i]) {
      out->val[i] = st->ctx[i];
      out->src[i] = HR_SRC_REDIS;
    }
  }
  if (req_ts >= 0) {
    out->ts = req_ts;
    out->ts_src = HR_SRC_REQUEST;
  } else {
    out->ts = (long long)time(NULL);
    out->ts_src = HR_SRC_NOW;
  }
  out->utc_offset_s = 0;
  if (out->val[TZ] == NULL ||
      hr_tz_offset(out->val[TZ], out->ts, &out->utc_offset_s) != 0) {
    out->val[TZ] = "UTC";
    out->src[TZ] = HR_SRC_DEFAULT;
    out->utc_offset_s = 0;
  }
  local = out->ts + out->utc_offset_s;
  out->hour = (int)(floor_div(local, 3600) % 24);
  if (out->hour < 0)
    out->hour += 24;
  /* 1970-01-01 was a Thursday (3 with Monday = 0). */
  out->weekday = (int)((floor_div(local, 86400) + 3) % 7);
  if (out->weekday < 0)
    out->weekday += 7;
  out->weekend = out->weekday >= 5;
}
