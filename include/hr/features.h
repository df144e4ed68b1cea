/* features.h -- the context a recommendation is made in.
 *
 * Resolves each context value from, in order: the request's override, the
 * user's context hash in Redis, a default. Time features (hour of day,
 * weekday, weekend) are local to the resolved time zone, read from the
 * system's TZif files (/usr/share/zoneinfo, or $TZDIR) and cached. All
 * strings in hr_context_t are borrowed from the inputs and live as long as
 * they do. Thread-safe: a zone lookup takes a mutex for one hash probe; a
 * zone file is read outside it, at most once per zone while the cache has
 * room. "UTC+HH:MM" offsets need no file. */
#ifndef HR_FEATURES_H
#define HR_FEATURES_H

#include "hr/ctxstore.h"

typedef enum {
  HR_SRC_NONE = 0,
  HR_SRC_REQUEST,
  HR_SRC_REDIS,
  HR_SRC_NOW,
  HR_SRC_DEFAULT
} hr_ctx_source_t;

/** Name of a source for the API ("request", "redis", "now", ...). */
const char *hr_ctx_source_name(hr_ctx_source_t s);

typedef struct {
  long long ts;                        /* unix seconds */
  hr_ctx_source_t ts_src;
  const char *val[HR_CTX_FIELDS];      /* like hr_ctx_field_names; NULL = none */
  hr_ctx_source_t src[HR_CTX_FIELDS];
  int utc_offset_s;                    /* of tz at ts */
  int hour;                            /* 0..23, local */
  int weekday;                         /* 0 = Monday, local */
  int weekend;                         /* Saturday or Sunday */
} hr_context_t;

/** Resolve the context. `req` holds request overrides (NULL entries = none),
 *  `req_ts` < 0 means "now"; `st` is the user's Redis state or NULL (no
 *  Redis). A tz from Redis that does not parse falls back to UTC with
 *  source "default"; a request tz must have been checked with
 *  hr_tz_valid. Never fails. */
void hr_features_resolve(const char *const req[HR_CTX_FIELDS], long long req_ts,
                         const hr_user_state_t *st, hr_context_t *out);

/** UTC offset of zone `tz` at `ts`. `tz` is an IANA name ("Europe/Paris"),
 *  "UTC", or "UTC+HH:MM"/"UTC-HH:MM". Returns 0 or HR_EINVAL (unknown or
 *  malformed zone, or one whose file is corrupt). */
int hr_tz_offset(const char *tz, long long ts, int *offset_s);

/** 1 when hr_tz_offset would succeed for `tz`. */
int hr_tz_valid(const char *tz);

/** Free the zone cache (at exit, for leak checkers). */
void hr_tz_cache_clear(void);

#endif
