/* ucache.c -- what a model version keeps of a user between requests: the
 * history-dependent part of the user vector and the index's candidates
 * found for it.
 *
 * Set-associative: a key picks one of n_sets sets of WAYS entries, one mutex
 * per set (held for a compare and a copy of one entry), and a full set
 * gives up its least recently used entry. The table is one calloc'd block,
 * attached to the snapshot and freed with it: its pages are touched only as
 * entries fill, and a version never sees another version's entries. */
#include "internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define WAYS 16

typedef struct {
  hr__ukey_t key;     /* {0, 0}: empty (a real key is never both zero) */
  uint64_t used;      /* the set's clock when last read or written */
} entry_t;

struct hr__ucache {
  hr_snapshot_aux_t aux; /* first: the snapshot frees us through it */
  size_t n_sets, dim, cmax;
  size_t stride;         /* floats per entry: dim, then the candidates */
  pthread_mutex_t *mu;   /* one per set */
  uint64_t *clock;       /* one per set */
  entry_t *e;            /* n_sets * WAYS */
  float *v;              /* n_sets * WAYS * stride: the vector, then
                            uint32 count, the beam it was asked for, and
                            cmax candidate ids */
  atomic_ulong hits, misses, filled;
};

/* ------------------------------------------------------------- keys */

/* 64-bit mixing (the finaliser of a well-known multiplicative hash). */
static inline uint64_t mix(uint64_t h, uint64_t x) {
  h ^= x + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
  h ^= h >> 33;
  h *= 0xFF51AFD7ED558CCDull;
  h ^= h >> 33;
  return h;
}

hr__ukey_t hr__ukey(long user_idx, const hr_history_t *h) {
  uint64_t a = 0x243F6A8885A308D3ull, b = 0x13198A2E03707344ull;
  size_t n = h ? h->n : 0;
  a = mix(a, (uint64_t)user_idx);
  b = mix(b, (uint64_t)user_idx ^ 0xA4093822299F31D0ull);
  a = mix(a, n);
  b = mix(b, n + 0x082EFA98EC4E6C89ull);
  for (size_t j = 0; j < n; j++) {
    uint64_t it = (uint64_t)h->items[j], ts = h->ts ? (uint64_t)h->ts[j] : 0;
    a = mix(a, it * 0x9E3779B97F4A7C15ull ^ ts);
    b = mix(b, ts * 0xC2B2AE3D27D4EB4Full ^ it);
  }
  if (a == 0 && b == 0)
    a = 1;
  return (hr__ukey_t){a, b};
}

/* ------------------------------------------------------------ table */

static void ucache_free(hr_snapshot_aux_t *aux) {
  hr__ucache_t *c = (hr__ucache_t *)aux;
  for (size_t s = 0; s < c->n_sets; s++)
    pthread_mutex_destroy(&c->mu[s]);
  free(c->mu);
  free(c->clock);
  free(c->e);
  free(c->v);
  free(c);
}

static hr__ucache_t *ucache_new(int dim, size_t bytes, size_t cmax) {
  hr__ucache_t *c = calloc(1, sizeof(*c));
  size_t stride = (size_t)dim + 2 + cmax, sets;
  if (c == NULL)
    return NULL;
  /* an entry: its payload, key and clock, and its share of a set's lock */
  sets = bytes / (WAYS * (stride * 4 + sizeof(entry_t)) +
                  sizeof(pthread_mutex_t) + sizeof(uint64_t));
  if (sets == 0)
    sets = 1;
  c->aux.free = ucache_free;
  c->n_sets = sets;
  c->dim = (size_t)dim;
  c->cmax = cmax;
  c->stride = stride; /* uint32 and float are both 4 bytes */
  c->mu = malloc(sets * sizeof(*c->mu));
  c->clock = calloc(sets, sizeof(*c->clock));
  c->e = calloc(sets * WAYS, sizeof(*c->e));
  c->v = calloc(sets * WAYS * c->stride, sizeof(*c->v));
  if (c->mu == NULL || c->clock == NULL || c->e == NULL || c->v == NULL) {
    free(c->mu);
    free(c->clock);
    free(c->e);
    free(c->v);
    free(c);
    return NULL;
  }
  for (size_t s = 0; s < sets; s++)
    pthread_mutex_init(&c->mu[s], NULL);
  return c;
}

hr__ucache_t *hr__ucache_of(hr_snapshot_t *snap, int dim, size_t bytes,
                           size_t cmax) {
  hr_snapshot_aux_t *cur = atomic_load(&snap->aux), *mine;
  if (bytes == 0) /* switched off (a reload may do it) */
    return NULL;
  if (cur != NULL)
    return cur->free == ucache_free ? (hr__ucache_t *)cur : NULL;
  if (dim <= 0)
    return NULL;
  /* the first request of a version makes it; a racing one drops its own */
  if ((mine = (hr_snapshot_aux_t *)ucache_new(dim, bytes, cmax)) == NULL)
    return NULL;
  if (!atomic_compare_exchange_strong(&snap->aux, &cur, mine)) {
    ucache_free(mine);
    return cur->free == ucache_free ? (hr__ucache_t *)cur : NULL;
  }
  return (hr__ucache_t *)mine;
}

size_t hr__ucache_cmax(const hr__ucache_t *c) { return c->cmax; }

static inline int same(hr__ukey_t x, hr__ukey_t y) {
  return x.a == y.a && x.b == y.b;
}

/* The payload's parts. */
static inline uint32_t *meta(const hr__ucache_t *c, float *p) {
  return (uint32_t *)(void *)(p + c->dim);
}

int hr__ucache_get(hr__ucache_t *c, hr__ukey_t key, float *out,
                   uint32_t *ids, size_t *n_ids, uint32_t *asked) {
  size_t s = (size_t)(key.a % c->n_sets);
  entry_t *e = c->e + s * WAYS;
  int hit = 0;
  *n_ids = 0;
  *asked = 0;
  pthread_mutex_lock(&c->mu[s]);
  for (int w = 0; w < WAYS; w++)
    if (same(e[w].key, key)) {
      float *p = c->v + (s * WAYS + (size_t)w) * c->stride;
      uint32_t *mt = meta(c, p);
      e[w].used = ++c->clock[s];
      memcpy(out, p, c->dim * sizeof(float));
      *n_ids = mt[0];
      *asked = mt[1];
      memcpy(ids, mt + 2, mt[0] * sizeof(uint32_t));
      hit = 1;
      break;
    }
  pthread_mutex_unlock(&c->mu[s]);
  atomic_fetch_add_explicit(hit ? &c->hits : &c->misses, 1,
                            memory_order_relaxed);
  return hit;
}

void hr__ucache_put(hr__ucache_t *c, hr__ukey_t key, const float *v,
                    const uint32_t *ids, size_t n_ids, uint32_t asked) {
  size_t s = (size_t)(key.a % c->n_sets);
  entry_t *e = c->e + s * WAYS;
  int at = 0;
  float *p;
  if (n_ids > c->cmax)
    n_ids = 0; /* more than an entry holds: keep the vector alone */
  pthread_mutex_lock(&c->mu[s]);
  for (int w = 0; w < WAYS; w++) {
    if (same(e[w].key, key)) { /* another thread kept it meanwhile */
      at = w;
      break;
    }
    if (e[w].used < e[at].used)
      at = w; /* the least recently used (an empty one has used 0) */
  }
  if (e[at].key.a == 0 && e[at].key.b == 0)
    atomic_fetch_add_explicit(&c->filled, 1, memory_order_relaxed);
  e[at].key = key;
  e[at].used = ++c->clock[s];
  p = c->v + (s * WAYS + (size_t)at) * c->stride;
  memcpy(p, v, c->dim * sizeof(float));
  meta(c, p)[0] = (uint32_t)n_ids;
  meta(c, p)[1] = n_ids ? asked : 0;
  memcpy(meta(c, p) + 2, ids, n_ids * sizeof(uint32_t));
  pthread_mutex_unlock(&c->mu[s]);
}

void hr__ucache_stats(const hr__ucache_t *c, unsigned long *entries,
                      unsigned long *hits, unsigned long *misses) {
  *entries = c ? atomic_load(&((hr__ucache_t *)c)->filled) : 0;
  *hits = c ? atomic_load(&((hr__ucache_t *)c)->hits) : 0;
  *misses = c ? atomic_load(&((hr__ucache_t *)c)->misses) : 0;
}
