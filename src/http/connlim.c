/* connlim.c -- how many connections the daemon holds, in all and per client
 * address (internal.h). A few hundred sockets that send their headers one
 * byte at a time must not take every descriptor the server has: a client
 * address past http.max_connections_per_ip, or any past
 * http.max_connections, is refused at accept (libmicrohttpd's accept policy
 * acceptor, accept.c), counted, and logged at most once a second. A
 * connection is counted when it is accepted, under the same lock as the
 * check, and uncounted when it is closed, by the acceptor or by
 * libmicrohttpd.
 *
 * Open connections per address live in an open-addressing table (linear
 * probing, backward-shift deletion: no tombstones), sized for twice the
 * connection limit, under one mutex taken at accept and at close. */
#include "internal.h"

#include "hr/log.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
  uint8_t key[16];  /* IPv4 in the first 4 bytes, or IPv6 */
  uint8_t klen;     /* 0: empty */
  uint32_t count;   /* open connections from it */
} slot_t;

struct hr_connlim {
  pthread_mutex_t mu;
  slot_t *t;
  size_t mask;
  size_t total, max_total, max_per_ip;
  atomic_ulong rejected_ip, rejected_total, logged_ip, logged_total;
  atomic_llong last_log_s;
};

/* The address as table key: IPv4 (also when IPv4-mapped in IPv6), IPv6;
 * 0 for another family. */
static size_t addr_key(const struct sockaddr *sa, uint8_t key[16]) {
  if (sa == NULL)
    return 0;
  if (sa->sa_family == AF_INET) {
    memcpy(key, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
    return 4;
  }
  if (sa->sa_family == AF_INET6) {
    const uint8_t *a =
        ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(a, mapped, 12) == 0) {
      memcpy(key, a + 12, 4);
      return 4;
    }
    memcpy(key, a, 16);
    return 16;
  }
  return 0;
}

static size_t home(const hr_connlim_t *c, const uint8_t *key, size_t klen) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < klen; i++)
    h = (h ^ key[i]) * 1099511628211ull;
  return (size_t)(h ^ (h >> 29)) & c->mask;
}

/* The slot holding key, or the empty slot where it would go. */
static size_t find(const hr_connlim_t *c, const uint8_t *key, size_t klen) {
  size_t i = home(c, key, klen);
  while (c->t[i].klen != 0 &&
         !(c->t[i].klen == klen && memcmp(c->t[i].key, key, klen) == 0))
    i = (i + 1) & c->mask;
  return i;
}

hr_connlim_t *hr__connlim_new(size_t max_total, size_t max_per_ip) {
  hr_connlim_t *c = calloc(1, sizeof(*c));
  size_t cap = 64;
  if (c == NULL)
    return NULL;
  while (cap < 2 * (max_total + 1))
    cap <<= 1;
  if ((c->t = calloc(cap, sizeof(*c->t))) == NULL) {
    free(c);
    return NULL;
  }
  c->mask = cap - 1;
  c->max_total = max_total;
  c->max_per_ip = max_per_ip;
  pthread_mutex_init(&c->mu, NULL);
  return c;
}

void hr__connlim_free(hr_connlim_t *c) {
  if (c == NULL)
    return;
  pthread_mutex_destroy(&c->mu);
  free(c->t);
  free(c);
}

/* One line a second at most, with what was refused since the last one. */
static void log_refusals(hr_connlim_t *c) {
  struct timespec ts;
  long long now, last;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  now = (long long)ts.tv_sec;
  last = atomic_load(&c->last_log_s);
  if (now == last || !atomic_compare_exchange_strong(&c->last_log_s, &last,
                                                      now))
    return;
  unsigned long ip = atomic_load(&c->rejected_ip),
                tot = atomic_load(&c->rejected_total);
  hr_log(HR_LOG_WARN, "connections_refused",
         json_pack("{s:I,s:I,s:I,s:I}", "per_ip",
                   (json_int_t)(ip - atomic_exchange(&c->logged_ip, ip)),
                   "total",
                   (json_int_t)(tot - atomic_exchange(&c->logged_total, tot)),
                   "max_connections", (json_int_t)c->max_total,
                   "max_connections_per_ip", (json_int_t)c->max_per_ip));
}

int hr__connlim_take(hr_connlim_t *c, const struct sockaddr *sa) {
  uint8_t key[16];
  size_t klen = addr_key(sa, key), i = 0;
  int full, over = 0;

  pthread_mutex_lock(&c->mu);
  full = c->total >= c->max_total;
  if (!full && klen > 0) {
    i = find(c, key, klen);
    over = c->t[i].klen != 0 && c->t[i].count >= c->max_per_ip;
  }
  if (!full && !over) {
    c->total++;
    if (klen > 0) {
      if (c->t[i].klen == 0) {
        memcpy(c->t[i].key, key, klen);
        c->t[i].klen = (uint8_t)klen;
      }
      c->t[i].count++;
    }
  }
  pthread_mutex_unlock(&c->mu);
  if (!full && !over)
    return 1;
  atomic_fetch_add(full ? &c->rejected_total : &c->rejected_ip, 1);
  log_refusals(c);
  return 0;
}

void hr__connlim_release(hr_connlim_t *c, const struct sockaddr *sa) {
  uint8_t key[16];
  size_t klen = addr_key(sa, key), i, j;

  pthread_mutex_lock(&c->mu);
  if (c->total > 0)
    c->total--;
  if (klen > 0 && c->t[i = find(c, key, klen)].klen != 0 &&
      --c->t[i].count == 0) {
    /* backward-shift deletion: pull later entries of the run back */
    c->t[i].klen = 0;
    for (j = (i + 1) & c->mask; c->t[j].klen != 0; j = (j + 1) & c->mask) {
      size_t h = home(c, c->t[j].key, c->t[j].klen);
      /* entry j may move to i when its home is not in (i, j] */
      if (((j - h) & c->mask) >= ((j - i) & c->mask)) {
        c->t[i] = c->t[j];
        c->t[j].klen = 0;
        i = j;
      }
    }
  }
  pthread_mutex_unlock(&c->mu);
}

void hr__connlim_counts(hr_connlim_t *c, unsigned long *open,
                        unsigned long *rejected_ip,
                        unsigned long *rejected_total) {
  pthread_mutex_lock(&c->mu);
  *open = c->total;
  pthread_mutex_unlock(&c->mu);
  *rejected_ip = atomic_load(&c->rejected_ip);
  *rejected_total = atomic_load(&c->rejected_total);
}
