/* hnsw.c -- HNSW graph over inner product: batch-synchronous parallel
 * build and the per-query beam search (hnswlib semantics: level-0 degree 2M,
 * upper degree M, heuristic neighbour selection, ef beam).
 *
 * Why batch-synchronous: a batch of new nodes searches a frozen graph in
 * parallel (no lock: nobody writes during that phase), then the reverse links
 * are applied in parallel partitioned by target node, each target receiving
 * its new links in batch order. The result depends on (seed, input) only --
 * not on timing, and not even on the thread count. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "ann_internal.h"
#include "hr/grow.h"
#include "hr/ranker.h"

typedef struct {
  float s;
  uint32_t id;
} pair_t;

struct hr_ann_scratch {
  size_t n_cap;
  uint16_t *marks;     /* epoch tags: visited / excluded, never memset */
  unsigned epoch;
  pair_t *cand, *res;  /* max-heap of candidates, min-heap of results */
  size_t cand_cap, res_cap, cand_n, res_n;
  uint32_t *buf;       /* unvisited neighbours of the expanded node */
  size_t buf_cap;
  pair_t *sel;         /* heuristic selection buffer */
  hr_scored_t *top;    /* the results, best first */
  size_t top_cap;
  size_t sel_cap;
  float *q;            /* query padded to vstride */
  size_t q_cap;
  float *hq, *tq;      /* build: rows converted from fp16 */
  size_t hq_cap, tq_cap;
};

void hr_ann_params_default(hr_ann_params_t *p) {
  p->M = 16;
  p->ef_construction = 200;
  p->threads = 2;
  p->seed = 1;
  p->build_f32 = 0;
}

/* ------------------------------------------------------------ heaps */

static inline void maxheap_push(pair_t *h, size_t *n, pair_t v) {
  size_t i = (*n)++;
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (h[p].s >= v.s)
      break;
    h[i] = h[p];
    i = p;
  }
  h[i] = v;
}

static inline pair_t maxheap_pop(pair_t *h, size_t *n) {
  pair_t top = h[0], v = h[--*n];
  size_t i = 0, m = *n;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= m)
      break;
    if (c + 1 < m && h[c + 1].s > h[c].s)
      c++;
    if (h[c].s <= v.s)
      break;
    h[i] = h[c];
    i = c;
  }
  if (m > 0)
    h[i] = v;
  return top;
}

static inline void minheap_sift_down(pair_t *h, size_t m, pair_t v) {
  size_t i = 0;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= m)
      break;
    if (c + 1 < m && h[c + 1].s < h[c].s)
      c++;
    if (h[c].s >= v.s)
      break;
    h[i] = h[c];
    i = c;
  }
  h[i] = v;
}

static inline void minheap_push(pair_t *h, size_t *n, pair_t v) {
  size_t i = (*n)++;
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (h[p].s <= v.s)
      break;
    h[i] = h[p];
    i = p;
  }
  h[i] = v;
}

#define GROW HR_GROW

/* ---------------------------------------------------------- scratch */

static hr_ann_scratch_t *scratch_new(size_t n, size_t m0, size_t vstride) {
  hr_ann_scratch_t *s = calloc(1, sizeof(*s));
  if (s == NULL)
    return NULL;
  s->n_cap = n;
  s->marks = calloc(n ? n : 1, sizeof(uint16_t));
  void *tmp_;
  if (s->marks == NULL || GROW(s->buf, s->buf_cap, m0) ||
      GROW(s->cand, s->cand_cap, 1024) ||
      GROW(s->res, s->res_cap, 512) || GROW(s->sel, s->sel_cap, 512) ||
      GROW(s->q, s->q_cap, vstride) || GROW(s->hq, s->hq_cap, vstride) ||
      GROW(s->tq, s->tq_cap, vstride)) {
    hr_ann_scratch_free(s);
    return NULL;
  }
  return s;
}

hr_ann_scratch_t *hr_ann_scratch_new(const hr_ann_t *a) {
  if (a == NULL)
    return NULL;
  return scratch_new(a->n, (size_t)a->m0, a->vstride);
}

void hr_ann_scratch_free(hr_ann_scratch_t *s) {
  if (s == NULL)
    return;
  free(s->marks);
  free(s->cand);
  free(s->res);
  free(s->buf);
  free(s->sel);
  free(s->q);
  free(s->top);
  free(s->hq);
  free(s->tq);
  free(s);
}

/* A fresh epoch: tag V means visited, V - 1 excluded-not-yet-visited; older
 * tags are smaller than both. The array is cleared once every ~21k queries. */
static inline unsigned begin_epoch(hr_ann_scratch_t *s) {
  if (s->epoch > 65535u - 6u) {
    memset(s->marks, 0, s->n_cap * sizeof(uint16_t));
    s->epoch = 0;
  }
  s->epoch += 3;
  return s->epoch;
}

/* ----------------------------------------------------------- search */

static inline const uint32_t *links_at(const hr_ann_t *a, uint32_t id,
                                       int lev) {
  return lev == 0 ? a->links0 + (size_t)id * (size_t)a->m0
                  : a->upper + a->upper_off[id] + (size_t)(lev - 1) * (size_t)a->M;
}

/* The distance from the query to an item: the build scores float32 input
 * rows (x32 != NULL), searches score the stored fp16 rows. */
static inline float score(const hr_ann_t *a, const float *x32, const float *q,
                          uint32_t id) {
  if (x32)
    return hr_ann__dot32(q, x32 + (size_t)id * (size_t)a->dim, (size_t)a->dim);
  return hr_ann__dot16(q, a->vecs + (size_t)id * a->vstride, a->vstride);
}

static inline void prefetch_vec(const hr_ann_t *a, const float *x32,
                                uint32_t id) {
  if (x32) {
    const char *p = (const char *)(x32 + (size_t)id * (size_t)a->dim);
    __builtin_prefetch(p, 0, 3);
    __builtin_prefetch(p + 64, 0, 3);
    __builtin_prefetch(p + 128, 0, 3);
    __builtin_prefetch(p + 192, 0, 3);
  } else {
    const char *p = (const char *)(a->vecs + (size_t)id * a->vstride);
    __builtin_prefetch(p, 0, 3);
    __builtin_prefetch(p + 64, 0, 3);
  }
}

/* Every line of item id's fp16 row (candidates scattered over the index:
 * each row a new stream for the hardware prefetcher). */
static inline void prefetch_row(const hr_ann_t *a, uint32_t id) {
  const char *p = (const char *)(a->vecs + (size_t)id * a->vstride);
  for (size_t b = 0; b < a->vstride * sizeof(uint16_t); b += 64)
    __builtin_prefetch(p + b, 0, 0);
}

/* Greedy walk on one upper level: move to the best neighbour while it
 * improves. */
static inline uint32_t greedy(const hr_ann_t *a, const float *x32,
                              const float *q, uint32_t ep, float *ep_s,
                              int lev) {
  int changed = 1;
  while (changed) {
    const uint32_t *l = links_at(a, ep, lev);
    changed = 0;
    for (int j = 0; j < a->M && l[j] != HR_ANN_NONE; j++)
      prefetch_vec(a, x32, l[j]);
    for (int j = 0; j < a->M && l[j] != HR_ANN_NONE; j++) {
      float d = score(a, x32, q, l[j]);
      if (d > *ep_s) {
        *ep_s = d;
        ep = l[j];
        changed = 1;
      }
    }
  }
  return ep;
}

/* Whether the filter bitmap lets item `id` be returned (no filter: yes). */
static inline int allowed(const uint64_t *allow, uint32_t id) {
  return allow == NULL || (allow[id >> 6] >> (id & 63)) & 1u;
}

/* Beam search of one level from `ep`. Leaves at most `ef` results (plus as
 * many more as excluded items were met, which are traversed but never kept)
 * in s->res as a min-heap. Marks must have been begun by the caller. */
static inline __attribute__((always_inline)) void
search_layer(const hr_ann_t *a, hr_ann_scratch_t *s, const float *x32,
             const float *q, uint32_t ep, float ep_s, int lev, size_t ef,
             unsigned V, size_t max_ef, const uint64_t *allow) {
  const int deg = lev == 0 ? a->m0 : a->M;
  uint16_t *marks = s->marks;
  uint16_t excl_tag = (uint16_t)(V - 1);
  size_t nc = 0, nr = 0;
  pair_t *cand = s->cand, *res = s->res;
  void *tmp_;

  if (marks[ep] == excl_tag) {
    if (ef < max_ef)
      ef++;
  } else if (allowed(allow, ep)) {
    res[nr++] = (pair_t){ep_s, ep};
  }
  marks[ep] = (uint16_t)V;
  cand[nc++] = (pair_t){ep_s, ep};

  while (nc > 0) {
    pair_t c = maxheap_pop(cand, &nc);
    if (nr >= ef && c.s < res[0].s)
      break;
    const uint32_t *l = links_at(a, c.id, lev);
    uint32_t *buf = s->buf;
    int nb = 0;
    for (int j = 0; j < deg; j++) {
      uint32_t id = l[j];
      if (id == HR_ANN_NONE)
        break;
      if (marks[id] == (uint16_t)V)
        continue;
      buf[nb++] = id;
      prefetch_vec(a, x32, id);
    }
    for (int j = 0; j < nb; j++) {
      uint32_t id = buf[j];
      int ex = marks[id] == excl_tag, flt = !allowed(allow, id);
      float d;
      marks[id] = (uint16_t)V;
      d = score(a, x32, q, id);
      if (nr < ef || d > res[0].s) {
        if (GROW(s->cand, s->cand_cap, nc + 1) != 0)
          continue; /* out of memory: drop the candidate, keep going */
        cand = s->cand;
        maxheap_push(cand, &nc, (pair_t){d, id});
        if (ex || flt) { /* traverse through it, never return it */
          if (ex && ef < max_ef) /* excluded: widen */
            ef++;
          continue;
        }
        if (nr < ef) {
          if (GROW(s->res, s->res_cap, nr + 1) != 0)
            continue;
          res = s->res;
          minheap_push(res, &nr, (pair_t){d, id});
        } else {
          minheap_sift_down(res, nr, (pair_t){d, id});
        }
      }
    }
    if (nc > 0)
      __builtin_prefetch(links_at(a, cand[0].id, lev), 0, 3);
  }
  s->res_n = nr;
  s->cand_n = 0;
}

static int cmp_pair_desc(const void *x, const void *y) {
  const pair_t *a = x, *b = y;
  if (a->s != b->s)
    return a->s < b->s ? 1 : -1;
  return (a->id > b->id) - (a->id < b->id);
}

size_t hr_ann_search(const hr_ann_t *a, hr_ann_scratch_t *s, const float *q,
                     size_t k, int ef, const uint32_t *excl, size_t n_excl,
                     uint32_t *ids, float *scores) {
  return hr_ann_search_filter(a, s, q, k, ef, excl, n_excl, NULL, 0, ids,
                              scores);
}

size_t hr_ann_search_filter(const hr_ann_t *a, hr_ann_scratch_t *s,
                            const float *q, size_t k, int ef,
                            const uint32_t *excl, size_t n_excl,
                            const uint64_t *allow, size_t n_allow,
                            uint32_t *ids, float *scores) {
  size_t efz, nr, out, max_ef, m;
  hr_topk_t t;
  unsigned V;
  uint32_t ep;
  float ep_s;
  void *tmp_;

  if (a == NULL || s == NULL || q == NULL || ids == NULL || k == 0 ||
      s->n_cap < a->n || a->n == 0 || GROW(s->buf, s->buf_cap, (size_t)a->m0) ||
      GROW(s->q, s->q_cap, a->vstride))
    return 0;
  efz = ef > 0 ? (size_t)ef : 0;
  if (efz < k)
    efz = k;
  /* Every excluded item the beam meets widens it by one (traversed, never
   * kept), up to all of them. Filtered-out items are traversed and never
   * kept too, without widening: the beam counts allowed results only, so
   * it goes on until it holds ef of them (or the graph is exhausted). */
  max_ef = efz + n_excl;
  if (allow != NULL && n_allow == 0)
    return 0;
  memcpy(s->q, q, (size_t)a->dim * sizeof(float));
  memset(s->q + a->dim, 0, (a->vstride - (size_t)a->dim) * sizeof(float));
  V = begin_epoch(s);
  for (size_t i = 0; i < n_excl; i++)
    if (excl[i] < a->n)
      s->marks[excl[i]] = (uint16_t)(V - 1);

  ep = a->entry;
  ep_s = score(a, NULL, s->q, ep);
  for (int lev = (int)a->max_level; lev > 0; lev--)
    ep = greedy(a, NULL, s->q, ep, &ep_s, lev);
  search_layer(a, s, NULL, s->q, ep, ep_s, 0, efz, V, max_ef, allow);

  /* The best of the beam, best first (ties: lower id), by the ranker's
   * top-k; with float rows, fp16 rounding (~1e-4) is undone by rescoring
   * a margin past k in float32 and choosing again. */
  nr = s->res_n;
  out = nr < k ? nr : k;
  m = a->rerank_x ? (2 * k > k + 10 ? 2 * k : k + 10) : k;
  if (m > nr)
    m = nr;
  if (GROW(s->top, s->top_cap, 2 * m + 1))
    return 0;
  hr_topk_init(&t, s->top, m);
  for (size_t i = 0; i < nr; i++)
    hr_topk_push(&t, (long)s->res[i].id, s->res[i].s);
  m = hr_topk_finish(&t);
  if (a->rerank_x) {
    hr_scored_t *fp16 = s->top + m + 1;
    memcpy(fp16, s->top, m * sizeof(*fp16));
    hr_topk_init(&t, s->top, out);
    for (size_t i = 0; i < m; i++)
      hr_topk_push(&t, fp16[i].index,
                   hr_ann__dot32(q,
                                 a->rerank_x + (size_t)fp16[i].index *
                                                   (size_t)a->dim,
                                 (size_t)a->dim));
    hr_topk_finish(&t);
  }
  for (size_t i = 0; i < out; i++) {
    ids[i] = (uint32_t)s->top[i].index;
    if (scores)
      scores[i] = s->top[i].score;
  }
  return out;
}

void hr_ann_score(const hr_ann_t *a, hr_ann_scratch_t *s, const float *q,
                  const uint32_t *ids, size_t n, float *out) {
  void *tmp_;
  size_t ahead = 4;
  if (GROW(s->q, s->q_cap, a->vstride)) {
    for (size_t j = 0; j < n; j++) /* out of memory: the float kernel */
      out[j] = -__builtin_inff();
    return;
  }
  memcpy(s->q, q, (size_t)a->dim * sizeof(float));
  memset(s->q + a->dim, 0, (a->vstride - (size_t)a->dim) * sizeof(float));
  for (size_t j = 0; j < n && j < ahead; j++)
    prefetch_row(a, ids[j]);
  for (size_t j = 0; j < n; j++) {
    if (j + ahead < n)
      prefetch_row(a, ids[j + ahead]);
    out[j] = hr_ann__dot16(s->q, a->vecs + (size_t)ids[j] * a->vstride,
                           a->vstride);
  }
}

/* ------------------------------------------------------------ build */

/* A reusable barrier whose head count can be lowered when a worker failed
 * to start (pthread_barrier_t cannot). Spins briefly before sleeping: the
 * phases are milliseconds long and the threads arrive close together. */
typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int count, waiting;
  atomic_uint gen;
} barrier_t;

static void barrier_wait(barrier_t *br) {
  unsigned g;
  pthread_mutex_lock(&br->mu);
  g = atomic_load(&br->gen);
  if (++br->waiting >= br->count) {
    br->waiting = 0;
    atomic_fetch_add(&br->gen, 1);
    pthread_cond_broadcast(&br->cv);
    pthread_mutex_unlock(&br->mu);
    return;
  }
  pthread_mutex_unlock(&br->mu);
  for (int spin = 0; spin < 2000; spin++)
    if (atomic_load(&br->gen) != g)
      return;
  pthread_mutex_lock(&br->mu);
  while (atomic_load(&br->gen) == g)
    pthread_cond_wait(&br->cv, &br->mu);
  pthread_mutex_unlock(&br->mu);
}

typedef struct {
  hr_ann_t *a;
  const float *x;      /* the input rows: float32 distances, or NULL: fp16 */
  int threads, efc;
  /* frozen state for the current batch */
  size_t lo, hi;
  uint32_t entry, max_level;
  atomic_size_t next;
  int stop;
  atomic_int failed;
  barrier_t bar;
  hr_ann_scratch_t **scr;
  uint8_t *levels;
  uint32_t *links0, *upper, *upper_off;
} build_t;

/* hnswlib's heuristic: walk candidates best first and keep one unless an
 * already kept neighbour is closer to it than the base is. `c` is sorted by
 * descending score to the base; keeps at most `lim`, returns the count. */
static size_t heuristic(const build_t *b, hr_ann_scratch_t *s, pair_t *c,
                        size_t nc, size_t lim) {
  const hr_ann_t *a = b->a;
  const size_t dim = (size_t)a->dim;
  size_t kept = 0;
  for (size_t i = 0; i < nc && kept < lim; i++) {
    int good = 1;
    if (kept > 0 && b->x == NULL)
      hr_ann__f16row(a->vecs + (size_t)c[i].id * a->vstride, s->hq, a->vstride);
    for (size_t r = 0; r < kept; r++) {
      float d = b->x ? hr_ann__dot32(b->x + (size_t)c[i].id * dim,
                                     b->x + (size_t)c[r].id * dim, dim)
                     : score(a, NULL, s->hq, c[r].id);
      if (d > c[i].s) {
        good = 0;
        break;
      }
    }
    if (good)
      c[kept++] = c[i];
  }
  return kept;
}

/* The row of item id as the float query of a build step. */
static const float *build_query(const build_t *b, float *buf, uint32_t id) {
  const hr_ann_t *a = b->a;
  if (b->x)
    return b->x + (size_t)id * (size_t)a->dim;
  hr_ann__f16row(a->vecs + (size_t)id * a->vstride, buf, a->vstride);
  return buf;
}

static uint32_t *wlinks(build_t *b, uint32_t id, int lev) {
  return (uint32_t *)links_at(b->a, id, lev);
}

/* Phase 1 for node i: search the frozen graph, write i's own lists. */
static int insert_search(build_t *b, hr_ann_scratch_t *s, uint32_t i) {
  hr_ann_t *a = b->a;
  const float *q = build_query(b, s->q, i);
  int L = b->levels[i], top = (int)b->max_level;
  uint32_t ep = b->entry;
  float ep_s = score(a, b->x, q, ep);

  for (int lev = top; lev > L; lev--)
    ep = greedy(a, b->x, q, ep, &ep_s, lev);
  for (int lev = L < top ? L : top; lev >= 0; lev--) {
    unsigned V = begin_epoch(s);
    size_t nr, kept;
    void *tmp_;
      uint32_t *l = wlinks(b, i, lev);
    search_layer(a, s, b->x, q, ep, ep_s, lev, (size_t)b->efc, V,
                 (size_t)b->efc, NULL);
    nr = s->res_n;
    if (GROW(s->sel, s->sel_cap, nr) != 0)
      return -1;
    memcpy(s->sel, s->res, nr * sizeof(pair_t));
    qsort(s->sel, nr, sizeof(pair_t), cmp_pair_desc);
    ep = s->sel[0].id;
    ep_s = s->sel[0].s;
    kept = heuristic(b, s, s->sel, nr, (size_t)a->M);
    for (size_t j = 0; j < kept; j++)
      l[j] = s->sel[j].id;
  }
  return 0;
}

/* Phase 2: add reverse link t -> i at `lev`, pruning t's list with the
 * heuristic when it is full. */
static int add_link(build_t *b, hr_ann_scratch_t *s, uint32_t t, uint32_t i,
                    int lev) {
  hr_ann_t *a = b->a;
  const size_t cap = lev == 0 ? (size_t)a->m0 : (size_t)a->M;
  uint32_t *l = wlinks(b, t, lev);
  const float *xt;
  size_t cnt = 0, kept;
  void *tmp_;

  while (cnt < cap && l[cnt] != HR_ANN_NONE)
    cnt++;
  if (cnt < cap) {
    l[cnt] = i;
    return 0;
  }
  if (GROW(s->sel, s->sel_cap, cap + 1) != 0)
    return -1;
  xt = build_query(b, s->tq, t);
  for (size_t j = 0; j < cap; j++)
    s->sel[j] = (pair_t){score(a, b->x, xt, l[j]), l[j]};
  s->sel[cap] = (pair_t){score(a, b->x, xt, i), i};
  qsort(s->sel, cap + 1, sizeof(pair_t), cmp_pair_desc);
  kept = heuristic(b, s, s->sel, cap + 1, cap);
  for (size_t j = 0; j < cap; j++)
    l[j] = j < kept ? s->sel[j].id : HR_ANN_NONE;
  return 0;
}

static void run_batch(build_t *b, int tid) {
  hr_ann_scratch_t *s = b->scr[tid];
  size_t i;
  /* phase 1: dynamic split; every node's result is a pure function of the
   * frozen graph, so who computes it does not matter */
  while ((i = atomic_fetch_add(&b->next, 1) + b->lo) < b->hi)
    if (insert_search(b, s, (uint32_t)i) != 0)
      b->failed = 1;
  barrier_wait(&b->bar);
  /* phase 2: targets partitioned by id, links added in batch order */
  for (i = b->lo; i < b->hi; i++) {
    int L = b->levels[i], top = (int)b->max_level;
    for (int lev = L < top ? L : top; lev >= 0; lev--) {
      const uint32_t *l = links_at(b->a, (uint32_t)i, lev);
      for (int j = 0; j < b->a->M && l[j] != HR_ANN_NONE; j++)
        if ((int)(l[j] % (uint32_t)b->threads) == tid &&
            add_link(b, s, l[j], (uint32_t)i, lev) != 0)
          b->failed = 1;
    }
  }
}

typedef struct {
  build_t *b;
  int tid;
} worker_arg_t;

static void *worker(void *arg) {
  worker_arg_t *w = arg;
  build_t *b = w->b;
  for (;;) {
    barrier_wait(&b->bar); /* batch published */
    if (b->stop)
      return NULL;
    run_batch(b, w->tid);
    barrier_wait(&b->bar); /* batch done */
  }
}

static uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

static void *alloc64(size_t bytes) {
  size_t r = (bytes + 63) / 64 * 64;
  return aligned_alloc(64, r ? r : 64);
}

/* The arrays of a new index over x (a->n, dim, M, m0 and vstride set):
 * every node's level and upper offset, empty link lists, the fp16 rows.
 * 0, or -1 out of memory (what was allocated is in a->own, freed with a). */
static int alloc_layout(hr_ann_t *a, const float *x, const hr_ann_params_t *p) {
  size_t n = a->n, n_upper = 0, dim = (size_t)a->dim;
  double mult;

  /* levels: one draw per node from (seed, id), as hnswlib's
   * floor(-ln(U) / ln(M)) */
  uint8_t *levels = alloc64(n);
  uint32_t *upper_off = alloc64(n * sizeof(uint32_t));
  a->own[0] = levels;
  a->own[1] = upper_off;
  if (!levels || !upper_off)
    return -1;
  mult = 1.0 / log((double)p->M);
  for (size_t i = 0; i < n; i++) {
    uint64_t r = splitmix64(p->seed * 0x9e3779b97f4a7c15ull ^ splitmix64(i));
    double u = ((double)(r >> 11) + 1.0) * (1.0 / 9007199254740992.0);
    double lv = -log(u) * mult;
    levels[i] = (uint8_t)(lv > HR_ANN_MAX_LEVEL ? HR_ANN_MAX_LEVEL : (int)lv);
    upper_off[i] = levels[i] ? (uint32_t)n_upper : HR_ANN_NONE;
    n_upper += (size_t)levels[i] * (size_t)p->M;
    if (n_upper >= HR_ANN_NONE)
      return -1;
  }
  a->n_upper = n_upper;
  uint32_t *links0 = alloc64(n * (size_t)a->m0 * sizeof(uint32_t));
  uint32_t *upper = alloc64(n_upper * sizeof(uint32_t));
  uint16_t *vecs = alloc64(n * a->vstride * sizeof(uint16_t));
  a->own[2] = links0;
  a->own[3] = upper;
  a->own[4] = vecs;
  if (!links0 || !upper || !vecs)
    return -1;
  memset(links0, 0xff, n * (size_t)a->m0 * sizeof(uint32_t));
  memset(upper, 0xff, n_upper * sizeof(uint32_t));
  for (size_t i = 0; i < n; i++) {
    uint16_t *v = vecs + i * a->vstride;
    for (size_t j = 0; j < a->vstride; j++)
      v[j] = j < dim ? hr_ann__f32_to_f16(x[i * dim + j]) : 0;
  }
  a->levels = levels;
  a->upper_off = upper_off;
  a->links0 = links0;
  a->upper = upper;
  a->vecs = vecs;
  return 0;
}

/* Inserts nodes 1..n-1 in batches; the caller's thread is worker 0 and
 * the others wait at the barrier. */
static void insert_batches(build_t *b) {
  hr_ann_t *a = b->a;
  size_t n = a->n;
  for (size_t lo = 1; lo < n && !b->failed;) {
    /* Batches grow with the graph (1/32 of it, at most 512 nodes) so that
     * nodes of one batch, which cannot see each other, are rarely close. */
    size_t bs = lo / 32;
    if (bs < 1)
      bs = 1;
    if (bs > 512)
      bs = 512;
    if (bs > n - lo)
      bs = n - lo;
    b->lo = lo;
    b->hi = lo + bs;
    b->entry = a->entry;
    b->max_level = a->max_level;
    atomic_store(&b->next, 0);
    barrier_wait(&b->bar);
    run_batch(b, 0);
    barrier_wait(&b->bar);
    for (size_t i = lo; i < lo + bs; i++)
      if (b->levels[i] > a->max_level) {
        a->max_level = b->levels[i];
        a->entry = (uint32_t)i;
      }
    lo += bs;
  }
}

hr_ann_t *hr_ann_build(const float *x, size_t n, int dim,
                       const hr_ann_params_t *p, hr_error_t *err) {
  hr_ann_params_t prm;
  hr_ann_t *a;
  build_t b;
  pthread_t *th = NULL;
  worker_arg_t *wa = NULL;
  int nth = 0, T;

  if (p == NULL)
    hr_ann_params_default(&prm);
  else
    prm = *p;
  if (x == NULL || n < 1 || n >= HR_ANN_NONE || dim < 1 || dim > 4096 ||
      prm.M < 2 || prm.M > HR_ANN_MAX_M || prm.ef_construction < 1 ||
      prm.ef_construction > 100000 || prm.threads < 1 || prm.threads > 256) {
    hr_error_set(err, HR_EINVAL, NULL,
                 "ann build: need x, 1 <= n < 2^32-1, 1 <= dim <= 4096, "
                 "2 <= M <= %d, ef_construction >= 1, 1 <= threads <= 256",
                 HR_ANN_MAX_M);
    return NULL;
  }
  T = prm.threads;
  a = calloc(1, sizeof(*a));
  if (a == NULL)
    goto nomem;
  a->n = n;
  a->dim = dim;
  a->vstride = hr_ann__vstride(dim);
  a->M = prm.M;
  a->m0 = 2 * prm.M;
  a->params = prm;

  if (alloc_layout(a, x, &prm) != 0)
    goto nomem;
  a->entry = 0;
  a->max_level = a->levels[0];

  memset(&b, 0, sizeof(b));
  b.a = a;
  /* Distances on the fp16 rows: half the memory traffic of the float input,
   * and the graph is built in the geometry it is searched in. build_f32
   * (or HR_ANN_BUILD_F32=1, for measurements) builds on the float rows. */
  b.x = prm.build_f32 || (getenv("HR_ANN_BUILD_F32") &&
                          *getenv("HR_ANN_BUILD_F32") == '1')
            ? x
            : NULL;
  b.threads = T;
  b.efc = prm.ef_construction;
  b.levels = a->own[0]; /* the index's arrays, writable while it is built */
  b.upper_off = a->own[1];
  b.links0 = a->own[2];
  b.upper = a->own[3];
  b.scr = calloc((size_t)T, sizeof(*b.scr));
  if (b.scr == NULL)
    goto nomem;
  for (int t = 0; t < T; t++)
    if ((b.scr[t] = scratch_new(n, (size_t)a->m0, a->vstride)) == NULL) {
      b.failed = 1;
      goto fail;
    }
  pthread_mutex_init(&b.bar.mu, NULL);
  pthread_cond_init(&b.bar.cv, NULL);
  b.bar.count = T;
  th = calloc((size_t)T, sizeof(*th));
  wa = calloc((size_t)T, sizeof(*wa));
  if (th && wa)
    for (int t = 1; t < T; t++) {
      wa[t] = (worker_arg_t){&b, t};
      if (pthread_create(&th[t], NULL, worker, &wa[t]) != 0)
        break;
      nth++;
    }
  if (nth == T - 1) {
    insert_batches(&b);
  } else { /* not every worker started: release those that did */
    pthread_mutex_lock(&b.bar.mu);
    b.bar.count = nth + 1;
    pthread_mutex_unlock(&b.bar.mu);
    b.failed = 1;
  }
  b.stop = 1;
  barrier_wait(&b.bar);
  for (int t = 1; t <= nth; t++)
    pthread_join(th[t], NULL);
  pthread_mutex_destroy(&b.bar.mu);
  pthread_cond_destroy(&b.bar.cv);
  free(th);
  free(wa);
fail:
  if (b.scr)
    for (int t = 0; t < T; t++)
      hr_ann_scratch_free(b.scr[t]);
  free(b.scr);
  if (b.failed) {
    hr_ann_free(a);
    hr_error_set(err, HR_ENOMEM, NULL, "ann build: out of memory or threads");
    return NULL;
  }
  return a;
nomem:
  hr_ann_free(a);
  hr_error_set(err, HR_ENOMEM, NULL, "ann build: out of memory");
  return NULL;
}

void hr_ann_set_rerank_vectors(hr_ann_t *a, const float *x) {
  if (a)
    a->rerank_x = x;
}

/* ---------------------------------------------------- introspection */

size_t hr_ann_size(const hr_ann_t *a) { return a ? a->n : 0; }
int hr_ann_dim(const hr_ann_t *a) { return a ? a->dim : 0; }
const hr_ann_params_t *hr_ann_params(const hr_ann_t *a) {
  return a ? &a->params : NULL;
}

size_t hr_ann_memory_bytes(const hr_ann_t *a) {
  if (a == NULL)
    return 0;
  return sizeof(*a) + a->n * (1 + sizeof(uint32_t)) +
         a->n * (size_t)a->m0 * sizeof(uint32_t) +
         a->n_upper * sizeof(uint32_t) + a->n * a->vstride * sizeof(uint16_t);
}
