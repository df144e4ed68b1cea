/* ucache.c -- what a model version keeps of a user between requests: the
 * history-dependent part of the user vector and the index's candidates
 * found for it.
 *
 * Set-associative: a key may live in either of two sets of WAYS entries
 * (two hashes; an insertion takes the less crowded), one mutex per set
 * (held for a compare and a copy of one entry), and a full pair of sets
 * gives up its least recently used entry. The table is one calloc'd block,
 * attached to the snapshot and freed with it: its pages are touched only as
 * entries fill, and a version never sees another version's entries. */
#include "internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define WAYS 16
/* the hr__ukept_t of an entry, in floats (4 bytes) */
#define META ((sizeof(hr__ukept_t) + 3) / 4)

typedef struct {
  hr__ukey_t key;     /* {0, 0}: empty (a real key is never both zero) */
  uint64_t used;      /* the clock when last read or written (0: empty) */
} entry_t;

struct hr__ucache {
  hr_snapshot_aux_t aux; /* first: the snapshot frees us through it */
  size_t n_sets, dim, cmax;
  size_t stride;         /* floats per entry: dim, then the meta, then
                            the candidates */
  pthread_mutex_t *mu;   /* one per set */
  atomic_ullong clock;   /* ticks at every use: an entry's age */
  entry_t *e;            /* n_sets * WAYS */
  size_t v_bytes;        /* the mapping's size */
  float *v;              /* n_sets * WAYS * stride: the vector, an
                            hr__ukept_t, cmax candidate ids and as many
                            scores */
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

/* A string's bytes into both hashes, 8 at a time. */
static void mix_str(uint64_t *a, uint64_t *b, const char *s) {
  size_t n = strlen(s);
  uint64_t w;
  for (; n >= 8; n -= 8, s += 8) {
    memcpy(&w, s, 8);
    *a = mix(*a, w);
    *b = mix(*b, w * 0xC2B2AE3D27D4EB4Full);
  }
  w = n; /* the tail, and the length (no two strings alike) */
  memcpy(&w, s, n);
  *a = mix(*a, w ^ ((uint64_t)n << 56));
  *b = mix(*b, (w * 0x9E3779B97F4A7C15ull) ^ n);
}

hr__ukey_t hr__ukey(long user_idx, const char *const *req_hist, size_t n_req,
                    const char *const *hist, const long long *ts,
                    size_t n_hist) {
  uint64_t a = 0x243F6A8885A308D3ull, b = 0x13198A2E03707344ull;
  a = mix(a, (uint64_t)user_idx);
  b = mix(b, (uint64_t)user_idx ^ 0xA4093822299F31D0ull);
  a = mix(a, n_req);
  b = mix(b, n_hist + 0x082EFA98EC4E6C89ull);
  for (size_t j = 0; j < n_req; j++)
    mix_str(&a, &b, req_hist[j]);
  for (size_t j = 0; j < n_hist; j++) {
    mix_str(&a, &b, hist[j]);
    a = mix(a, (uint64_t)ts[j]);
    b = mix(b, (uint64_t)ts[j] * 0x9E3779B97F4A7C15ull);
  }
  if (a == 0 && b == 0)
    a = 1;
  return (hr__ukey_t){a, b};
}

/* ------------------------------------------------------------ table */

/* The payloads are one anonymous mapping: zero pages until an entry is
 * written, and returned whole to the system when the version goes (not
 * kept by an allocator, nor by a sanitizer's quarantine of freed blocks). */
static void *map_zeroed(size_t bytes) {
  void *p = mmap(NULL, bytes ? bytes : 1, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

static void ucache_free(hr_snapshot_aux_t *aux) {
  hr__ucache_t *c = (hr__ucache_t *)aux;
  for (size_t s = 0; s < c->n_sets; s++)
    pthread_mutex_destroy(&c->mu[s]);
  free(c->mu);
  free(c->e);
  if (c->v != NULL)
    munmap(c->v, c->v_bytes);
  free(c);
}

static hr__ucache_t *ucache_new(int dim, size_t bytes, size_t cmax) {
  hr__ucache_t *c = calloc(1, sizeof(*c));
  size_t stride = (size_t)dim + META + 2 * cmax, sets;
  if (c == NULL)
    return NULL;
  /* an entry: its payload, key and clock, and its share of a set's lock */
  sets = bytes / (WAYS * (stride * 4 + sizeof(entry_t)) +
                  sizeof(pthread_mutex_t));
  if (sets == 0)
    sets = 1;
  c->aux.free = ucache_free;
  c->n_sets = sets;
  c->dim = (size_t)dim;
  c->cmax = cmax;
  c->stride = stride; /* uint32 and float are both 4 bytes */
  c->mu = malloc(sets * sizeof(*c->mu));
  c->e = calloc(sets * WAYS, sizeof(*c->e));
  c->v_bytes = sets * WAYS * c->stride * sizeof(*c->v);
  c->v = map_zeroed(c->v_bytes);
  if (c->mu == NULL || c->e == NULL || c->v == NULL) {
    free(c->mu);
    free(c->e);
    if (c->v != NULL)
      munmap(c->v, c->v_bytes);
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

/* The payload's parts: the vector, the meta (copied in and out with
 * memcpy: it is only 4-byte aligned there), the candidates. */
static inline void *meta_of(const hr__ucache_t *c, float *p) {
  return p + c->dim;
}

static inline uint32_t *ids_of(const hr__ucache_t *c, float *p) {
  return (uint32_t *)(void *)(p + c->dim + META);
}

static inline float *scores_of(const hr__ucache_t *c, float *p) {
  return p + c->dim + META + c->cmax;
}

/* A key's two sets (two independent hashes): an entry goes to the less
 * crowded one, which keeps sets from overflowing long before the table is
 * full (the power of two choices). */
static inline size_t set_of(const hr__ucache_t *c, hr__ukey_t key, int i) {
  return (size_t)((i ? key.b : key.a) % c->n_sets);
}

/* The way of set s holding key, or -1. Under the set's lock. */
static int find(const hr__ucache_t *c, size_t s, hr__ukey_t key) {
  const entry_t *e = c->e + s * WAYS;
  for (int w = 0; w < WAYS; w++)
    if (same(e[w].key, key))
      return w;
  return -1;
}

/* The way of set s an insertion would take: an empty one, else the least
 * recently used. *filled (may be NULL): the set's ways in use. */
static int victim(const hr__ucache_t *c, size_t s, int *filled) {
  const entry_t *e = c->e + s * WAYS;
  int at = 0, n = 0;
  for (int w = 0; w < WAYS; w++) {
    n += e[w].used != 0;
    if (e[w].used < e[at].used)
      at = w;
  }
  if (filled != NULL)
    *filled = n;
  return at;
}

static inline uint64_t tick(hr__ucache_t *c) {
  return atomic_fetch_add_explicit(&c->clock, 1, memory_order_relaxed) + 1;
}

int hr__ucache_get(hr__ucache_t *c, hr__ukey_t key, float *out,
                   uint32_t *ids, float *scores, hr__ukept_t *meta) {
  int hit = 0;
  memset(meta, 0, sizeof(*meta));
  for (int i = 0; i < 2 && !hit; i++) {
    size_t s = set_of(c, key, i);
    int w;
    pthread_mutex_lock(&c->mu[s]);
    if ((w = find(c, s, key)) >= 0) {
      float *p = c->v + (s * WAYS + (size_t)w) * c->stride;
      c->e[s * WAYS + (size_t)w].used = tick(c);
      memcpy(out, p, c->dim * sizeof(float));
      memcpy(meta, meta_of(c, p), sizeof(*meta));
      memcpy(ids, ids_of(c, p), meta->n_ids * sizeof(uint32_t));
      if (meta->scored)
        memcpy(scores, scores_of(c, p), meta->n_ids * sizeof(float));
      hit = 1;
    }
    pthread_mutex_unlock(&c->mu[s]);
  }
  atomic_fetch_add_explicit(hit ? &c->hits : &c->misses, 1,
                            memory_order_relaxed);
  return hit;
}

/* Write entry (s, w). Under the set's lock. */
static void store(hr__ucache_t *c, size_t s, int w, hr__ukey_t key,
                  const float *v, const uint32_t *ids, const float *scores,
                  const hr__ukept_t *mt) {
  entry_t *e = c->e + s * WAYS + (size_t)w;
  float *p = c->v + (s * WAYS + (size_t)w) * c->stride;
  if (e->key.a == 0 && e->key.b == 0)
    atomic_fetch_add_explicit(&c->filled, 1, memory_order_relaxed);
  e->key = key;
  e->used = tick(c);
  memcpy(p, v, c->dim * sizeof(float));
  memcpy(meta_of(c, p), mt, sizeof(*mt));
  memcpy(ids_of(c, p), ids, mt->n_ids * sizeof(uint32_t));
  if (mt->scored)
    memcpy(scores_of(c, p), scores, mt->n_ids * sizeof(float));
}

void hr__ucache_put(hr__ucache_t *c, hr__ukey_t key, const float *v,
                    const uint32_t *ids, const float *scores,
                    const hr__ukept_t *meta) {
  hr__ukept_t mt = *meta;
  int filled[2] = {0, 0};
  size_t target;
  int w;
  if (mt.n_ids > c->cmax) /* more than an entry holds: the vector alone */
    mt.n_ids = 0;
  if (mt.n_ids == 0)
    mt.asked = mt.scored = 0;
  /* the key's entry when there is one (another thread kept it meanwhile);
   * else how crowded each of its sets is */
  for (int i = 0; i < 2; i++) {
    size_t s = set_of(c, key, i);
    pthread_mutex_lock(&c->mu[s]);
    if ((w = find(c, s, key)) >= 0) {
      store(c, s, w, key, v, ids, scores, &mt);
      pthread_mutex_unlock(&c->mu[s]);
      return;
    }
    victim(c, s, &filled[i]);
    pthread_mutex_unlock(&c->mu[s]);
  }
  /* the less crowded set (when both are full, its least recently used
   * entry goes) */
  target = set_of(c, key, filled[1] < filled[0]);
  pthread_mutex_lock(&c->mu[target]);
  if ((w = find(c, target, key)) < 0)
    w = victim(c, target, NULL);
  store(c, target, w, key, v, ids, scores, &mt);
  pthread_mutex_unlock(&c->mu[target]);
}

void hr__ucache_stats(const hr__ucache_t *c, unsigned long *entries,
                      unsigned long *hits, unsigned long *misses) {
  *entries = c ? atomic_load(&((hr__ucache_t *)c)->filled) : 0;
  *hits = c ? atomic_load(&((hr__ucache_t *)c)->hits) : 0;
  *misses = c ? atomic_load(&((hr__ucache_t *)c)->misses) : 0;
}
