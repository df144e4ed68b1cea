/* tz.c -- UTC offsets from TZif files (RFC 8536), cached per zone.
 *
 * Only the 64-bit (version 2+) data block is used. Past the last transition
 * the last transition's type applies; Debian's zone files carry explicit
 * transitions up to 2037, which covers the service's horizon. */
#include "hr/features.h"
#include "features_internal.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_SLOTS 4096 /* open addressing; at most half full */
#define MAX_TZFILE (1 << 20)

typedef struct {
  char name[72];
  int64_t *times;   /* transition times, ascending */
  uint8_t *idx;     /* type index per transition */
  int32_t *utoff;   /* offset per type */
  uint32_t ntimes, ntypes;
  int32_t first_off; /* offset before the first transition */
} zone;

/* Zones are loaded once and kept until hr_tz_cache_clear. Lookups take the
 * mutex for a hash probe; a file is read outside it. When the cache is half
 * full (more distinct names than the zoneinfo tree holds: someone is
 * probing), further zones are read, used and freed without being kept. */
static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static zone *cache[CACHE_SLOTS];
static int n_cache;

static size_t name_hash(const char *s) {
  uint64_t h = 1469598103934665603ULL; /* FNV-1a */
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return (size_t)(h & (CACHE_SLOTS - 1));
}

static uint32_t be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const uint8_t *p) {
  return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

static void zone_free(zone *z) {
  if (z == NULL)
    return;
  free(z->times);
  free(z->idx);
  free(z->utoff);
  free(z);
}

/* Zone names are paths below the zoneinfo directory: refuse anything that
 * could escape it. */
static int name_ok(const char *tz) {
  size_t n = strlen(tz);
  if (n == 0 || n > 64 || tz[0] == '/' || strstr(tz, "..") != NULL)
    return 0;
  return strspn(tz, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                    "0123456789/_+-") == n;
}

/* A zone from the bytes of a TZif file (version 2 or later), or NULL when
 * they are not one: every count is checked against the length before a
 * byte is read, transition times must ascend, type indexes must name a
 * type and offsets lie within +-26 h. */
static zone *zone_parse(const uint8_t *buf, size_t len, const char *tz) {
  zone *z;
  uint32_t c[6];

  if (len < 44 || memcmp(buf, "TZif", 4) != 0 || buf[4] < '2')
    return NULL;
  /* Skip the v1 block to reach the v2 header. */
  for (int i = 0; i < 6; i++)
    c[i] = be32(buf + 20 + 4 * i);
  size_t v1 = 44 + (size_t)c[3] * 5 + (size_t)c[4] * 6 + c[5] +
              (size_t)c[2] * 8 + c[1] + c[0]; /* < 2^38: no overflow */
  if (v1 > len || len - v1 < 44 || memcmp(buf + v1, "TZif", 4) != 0)
    return NULL;
  const uint8_t *h = buf + v1;
  for (int i = 0; i < 6; i++)
    c[i] = be32(h + 20 + 4 * i);
  uint32_t timecnt = c[3], typecnt = c[4];
  if (typecnt == 0 || typecnt > 256 || timecnt > 100000)
    return NULL;
  size_t need = 44 + (size_t)timecnt * 9 + (size_t)typecnt * 6;
  if (need > len - v1)
    return NULL;
  z = calloc(1, sizeof(*z));
  if (z == NULL)
    return NULL;
  z->times = malloc(sizeof(int64_t) * (timecnt ? timecnt : 1));
  z->idx = malloc(timecnt ? timecnt : 1);
  z->utoff = malloc(sizeof(int32_t) * typecnt);
  if (!z->times || !z->idx || !z->utoff)
    goto bad;
  const uint8_t *p = h + 44;
  for (uint32_t i = 0; i < timecnt; i++) {
    z->times[i] = be64(p + 8 * (size_t)i);
    if (i > 0 && z->times[i] <= z->times[i - 1])
      goto bad;
  }
  p += (size_t)timecnt * 8;
  for (uint32_t i = 0; i < timecnt; i++) {
    z->idx[i] = p[i];
    if (p[i] >= typecnt)
      goto bad;
  }
  p += timecnt;
  for (uint32_t i = 0; i < typecnt; i++) {
    int32_t off = (int32_t)be32(p + 6 * (size_t)i);
    if (off < -26 * 3600 || off > 26 * 3600)
      goto bad;
    z->utoff[i] = off;
  }
  z->ntimes = timecnt;
  z->ntypes = typecnt;
  z->first_off = z->utoff[0];
  snprintf(z->name, sizeof(z->name), "%s", tz);
  return z;
bad:
  zone_free(z);
  return NULL;
}

static zone *zone_load(const char *tz) {
  char path[256];
  const char *dir = getenv("TZDIR");
  FILE *f;
  uint8_t *buf;
  size_t len;
  zone *z;

  snprintf(path, sizeof(path), "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo",
           tz);
  f = fopen(path, "rb");
  if (f == NULL)
    return NULL;
  buf = malloc(MAX_TZFILE);
  len = buf ? fread(buf, 1, MAX_TZFILE, f) : 0;
  fclose(f);
  z = buf ? zone_parse(buf, len, tz) : NULL;
  free(buf);
  return z;
}

/* The cached zone `tz`, or NULL. Caller holds cache_mu. */
static zone *cache_find(const char *tz, size_t *slot) {
  size_t i = name_hash(tz);
  while (cache[i] != NULL) {
    if (strcmp(cache[i]->name, tz) == 0)
      return cache[i];
    i = (i + 1) & (CACHE_SLOTS - 1);
  }
  *slot = i;
  return NULL;
}

/* Offset of `tz` at ts from a loaded zone. */
static int32_t zone_offset(const zone *z, long long ts) {
  if (z->ntimes == 0 || ts < z->times[0])
    return z->first_off;
  uint32_t lo = 0, hi = z->ntimes; /* last transition <= ts */
  while (hi - lo > 1) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (z->times[mid] <= ts)
      lo = mid;
    else
      hi = mid;
  }
  return z->utoff[z->idx[lo]];
}

/* Finds or loads `tz` and computes its offset; 0 or HR_EINVAL. */
static int zone_lookup(const char *tz, long long ts, int *offset_s) {
  zone *z, *loaded;
  size_t slot = 0;

  pthread_mutex_lock(&cache_mu);
  z = cache_find(tz, &slot);
  if (z != NULL) {
    *offset_s = zone_offset(z, ts);
    pthread_mutex_unlock(&cache_mu);
    return 0;
  }
  pthread_mutex_unlock(&cache_mu);
  loaded = zone_load(tz);
  if (loaded == NULL)
    return HR_EINVAL;
  *offset_s = zone_offset(loaded, ts);
  pthread_mutex_lock(&cache_mu);
  z = cache_find(tz, &slot);
  if (z == NULL && n_cache < CACHE_SLOTS / 2) {
    cache[slot] = loaded;
    n_cache++;
    loaded = NULL;
  }
  pthread_mutex_unlock(&cache_mu);
  zone_free(loaded); /* another thread cached it first, or no room */
  return 0;
}

void hr_tz_cache_clear(void) {
  pthread_mutex_lock(&cache_mu);
  for (size_t i = 0; i < CACHE_SLOTS; i++) {
    zone_free(cache[i]);
    cache[i] = NULL;
  }
  n_cache = 0;
  pthread_mutex_unlock(&cache_mu);
}

/* "UTC", "Z", "UTC+HH", "UTC+HH:MM" (also with '-'); 1 if it is one, 0 if
 * it is not of that form, -1 if it is but the numbers are out of range. */
static int parse_fixed(const char *tz, int *off) {
  const char *p = tz + 4;
  int h, m = 0, sign;

  if (strcmp(tz, "UTC") == 0 || strcmp(tz, "Z") == 0 ||
      strcmp(tz, "Etc/UTC") == 0) {
    *off = 0;
    return 1;
  }
  if (strncmp(tz, "UTC", 3) != 0 || (tz[3] != '+' && tz[3] != '-'))
    return 0;
  sign = tz[3] == '-' ? -1 : 1;
#define DIGIT(c) ((c) >= '0' && (c) <= '9')
  if (!DIGIT(p[0]) || !DIGIT(p[1]))
    return -1;
  h = (p[0] - '0') * 10 + (p[1] - '0');
  p += 2;
  if (*p == ':') {
    if (!DIGIT(p[1]) || !DIGIT(p[2]))
      return -1;
    m = (p[1] - '0') * 10 + (p[2] - '0');
    p += 3;
  }
#undef DIGIT
  if (*p != '\0' || h > 14 || m > 59)
    return -1;
  *off = sign * (h * 3600 + m * 60);
  return 1;
}

int hr_tz_offset(const char *tz, long long ts, int *offset_s) {
  int r = parse_fixed(tz, offset_s);

  if (r == 1)
    return 0;
  if (r < 0 || !name_ok(tz))
    return HR_EINVAL;
  return zone_lookup(tz, ts, offset_s);
}

int hr__tz_parse_offsets(const uint8_t *buf, size_t len, const long long *ts,
                         size_t n, int *out) {
  zone *z = zone_parse(buf, len, "fuzz");
  if (z == NULL)
    return HR_EFORMAT;
  for (size_t i = 0; i < n; i++)
    out[i] = zone_offset(z, ts[i]);
  zone_free(z);
  return 0;
}

int hr_tz_valid(const char *tz) {
  int off;
  return hr_tz_offset(tz, 0, &off) == 0;
}
