/* tz.c -- UTC offsets from TZif files (RFC 8536), cached per zone.
 *
 * Only the 64-bit (version 2+) data block is used. Past the last transition
 * the last transition's type applies; Debian's zone files carry explicit
 * transitions up to 2037, which covers the service's horizon. */
#include "hr/features.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ZONES 1024
#define MAX_TZFILE (1 << 20)

typedef struct {
  char name[72];
  int64_t *times;   /* transition times, ascending */
  uint8_t *idx;     /* type index per transition */
  int32_t *utoff;   /* offset per type */
  uint32_t ntimes, ntypes;
  int32_t first_off; /* offset before the first transition */
} zone;

static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static zone *cache[MAX_ZONES];
static int n_cache;

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

static zone *zone_load(const char *tz) {
  char path[256];
  const char *dir = getenv("TZDIR");
  FILE *f;
  uint8_t *buf = NULL;
  size_t len;
  zone *z = NULL;

  snprintf(path, sizeof(path), "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo",
           tz);
  f = fopen(path, "rb");
  if (f == NULL)
    return NULL;
  buf = malloc(MAX_TZFILE);
  len = buf ? fread(buf, 1, MAX_TZFILE, f) : 0;
  fclose(f);
  if (buf == NULL || len < 44 || memcmp(buf, "TZif", 4) != 0 || buf[4] < '2')
    goto out;
  {
    /* Skip the v1 block to reach the v2 header. */
    uint32_t c[6];
    for (int i = 0; i < 6; i++)
      c[i] = be32(buf + 20 + 4 * i);
    size_t v1 = 44 + (size_t)c[3] * 5 + (size_t)c[4] * 6 + c[5] +
                (size_t)c[2] * 8 + c[1] + c[0];
    if (v1 + 44 > len || memcmp(buf + v1, "TZif", 4) != 0)
      goto out;
    const uint8_t *h = buf + v1;
    for (int i = 0; i < 6; i++)
      c[i] = be32(h + 20 + 4 * i);
    uint32_t timecnt = c[3], typecnt = c[4];
    if (typecnt == 0 || typecnt > 256 || timecnt > 100000)
      goto out;
    size_t need = 44 + (size_t)timecnt * 9 + (size_t)typecnt * 6;
    if (v1 + need > len)
      goto out;
    z = calloc(1, sizeof(*z));
    if (z == NULL)
      goto out;
    z->times = malloc(sizeof(int64_t) * (timecnt ? timecnt : 1));
    z->idx = malloc(timecnt ? timecnt : 1);
    z->utoff = malloc(sizeof(int32_t) * typecnt);
    if (!z->times || !z->idx || !z->utoff) {
      zone_free(z);
      z = NULL;
      goto out;
    }
    const uint8_t *p = h + 44;
    for (uint32_t i = 0; i < timecnt; i++)
      z->times[i] = be64(p + 8 * (size_t)i);
    p += (size_t)timecnt * 8;
    for (uint32_t i = 0; i < timecnt; i++) {
      z->idx[i] = p[i];
      if (p[i] >= typecnt) {
        zone_free(z);
        z = NULL;
        goto out;
      }
    }
    p += timecnt;
    for (uint32_t i = 0; i < typecnt; i++) {
      int32_t off = (int32_t)be32(p + 6 * (size_t)i);
      if (off < -26 * 3600 || off > 26 * 3600) {
        zone_free(z);
        z = NULL;
        goto out;
      }
      z->utoff[i] = off;
    }
    z->ntimes = timecnt;
    z->ntypes = typecnt;
    z->first_off = z->utoff[0];
    snprintf(z->name, sizeof(z->name), "%s", tz);
  }
out:
  free(buf);
  return z;
}

static const zone *zone_get(const char *tz) {
  zone *z = NULL;

  pthread_mutex_lock(&cache_mu);
  for (int i = 0; i < n_cache; i++) {
    if (strcmp(cache[i]->name, tz) == 0) {
      z = cache[i];
      break;
    }
  }
  if (z == NULL && n_cache < MAX_ZONES) {
    z = zone_load(tz);
    if (z != NULL)
      cache[n_cache++] = z;
  }
  pthread_mutex_unlock(&cache_mu);
  /* Zones are never freed while the process serves, so z stays valid. */
  return z;
}

void hr_tz_cache_clear(void) {
  pthread_mutex_lock(&cache_mu);
  for (int i = 0; i < n_cache; i++)
    zone_free(cache[i]);
  n_cache = 0;
  pthread_mutex_unlock(&cache_mu);
}

/* "UTC", "UTC+HH:MM", "UTC-HH", "Z". */
static int parse_fixed(const char *tz, int *off) {
  int h = 0, m = 0, sign, n = 0;
  if (strcmp(tz, "UTC") == 0 || strcmp(tz, "Z") == 0 || strcmp(tz, "Etc/UTC") == 0) {
    *off = 0;
    return 1;
  }
  if (strncmp(tz, "UTC", 3) != 0 || (tz[3] != '+' && tz[3] != '-'))
    return 0;
  sign = tz[3] == '-' ? -1 : 1;
  if (sscanf(tz + 4, "%2d:%2d%n", &h, &m, &n) == 2 && tz[4 + n] == '\0') {
  } else if (sscanf(tz + 4, "%2d%n", &h, &n) == 1 && tz[4 + n] == '\0') {
    m = 0;
  } else {
    return -1;
  }
  if (h > 14 || m > 59 || h < 0 || m < 0)
    return -1;
  *off = sign * (h * 3600 + m * 60);
  return 1;
}

int hr_tz_offset(const char *tz, long long ts, int *offset_s) {
  const zone *z;
  int r = parse_fixed(tz, offset_s);

  if (r == 1)
    return 0;
  if (r < 0 || !name_ok(tz))
    return HR_EINVAL;
  z = zone_get(tz);
  if (z == NULL)
    return HR_EINVAL;
  if (z->ntimes == 0 || ts < z->times[0]) {
    *offset_s = z->first_off;
    return 0;
  }
  /* Last transition <= ts. */
  uint32_t lo = 0, hi = z->ntimes;
  while (hi - lo > 1) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (z->times[mid] <= ts)
      lo = mid;
    else
      hi = mid;
  }
  *offset_s = z->utoff[z->idx[lo]];
  return 0;
}

int hr_tz_valid(const char *tz) {
  int off;
  return hr_tz_offset(tz, 0, &off) == 0;
}
