/* itemsets.c -- the published hidden and trending lists; trending counts. */
#include "hr/itemsets.h"
#include "hr/err.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static hr_itemlist_t *g_list[HR_SET_N];
static atomic_ullong g_gen[HR_SET_N];
static atomic_ullong g_next = 1; /* generations are unique across kinds */

static void list_free(hr_itemlist_t *l) {
  if (l == NULL)
    return;
  for (size_t i = 0; i < l->n; i++)
    free(l->ids[i]);
  free(l->ids);
  free(l->weight);
  free(l);
}

int hr_itemsets_publish(hr_set_kind_t kind, const char *const *ids,
                        const double *weight, size_t n, long long at_ms) {
  hr_itemlist_t *l = calloc(1, sizeof(*l)), *old;
  if (l == NULL || (n > 0 && (l->ids = calloc(n, sizeof(char *))) == NULL) ||
      (weight != NULL && n > 0 &&
       (l->weight = malloc(n * sizeof(double))) == NULL)) {
    list_free(l);
    return HR_ENOMEM;
  }
  for (size_t i = 0; i < n; i++) {
    if ((l->ids[i] = strdup(ids[i])) == NULL) {
      l->n = i;
      list_free(l);
      return HR_ENOMEM;
    }
    if (weight != NULL)
      l->weight[i] = weight[i];
  }
  l->n = n;
  l->at_ms = at_ms;
  l->refs = 1; /* the published reference */
  l->gen = atomic_fetch_add(&g_next, 1);
  pthread_mutex_lock(&g_mu);
  old = g_list[kind];
  g_list[kind] = l;
  atomic_store(&g_gen[kind], l->gen);
  pthread_mutex_unlock(&g_mu);
  hr_itemsets_release(old);
  return 0;
}

uint64_t hr_itemsets_gen(hr_set_kind_t kind) {
  return atomic_load(&g_gen[kind]);
}

hr_itemlist_t *hr_itemsets_acquire(hr_set_kind_t kind) {
  hr_itemlist_t *l;
  pthread_mutex_lock(&g_mu);
  if ((l = g_list[kind]) != NULL)
    l->refs++;
  pthread_mutex_unlock(&g_mu);
  return l;
}

void hr_itemsets_release(hr_itemlist_t *l) {
  int last;
  if (l == NULL)
    return;
  pthread_mutex_lock(&g_mu);
  last = --l->refs == 0;
  pthread_mutex_unlock(&g_mu);
  if (last)
    list_free(l);
}

void hr_itemsets_reset(void) {
  for (int k = 0; k < HR_SET_N; k++) {
    hr_itemlist_t *old;
    pthread_mutex_lock(&g_mu);
    old = g_list[k];
    g_list[k] = NULL;
    atomic_store(&g_gen[k], 0);
    pthread_mutex_unlock(&g_mu);
    hr_itemsets_release(old);
  }
}

/* ------------------------------------------------------------ trending */

typedef struct {
  char *id;        /* NULL: empty slot */
  double v;        /* weight as of t */
  long long t;     /* ms */
} tslot;

struct hr_trend {
  tslot *s;
  size_t cap, n, max;
  double half_ms;
};

static uint64_t hash_str(const char *s) {
  uint64_t h = 1469598103934665603ULL; /* FNV-1a */
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return h;
}

static double decay(const hr_trend_t *t, double v, long long from,
                    long long to) {
  return to <= from ? v : v * exp2(-(double)(to - from) / t->half_ms);
}

hr_trend_t *hr_trend_new(int half_life_s, size_t max_items) {
  hr_trend_t *t = calloc(1, sizeof(*t));
  if (t == NULL)
    return NULL;
  t->max = max_items < 16 ? 16 : max_items;
  t->cap = 64;
  while (t->cap < 2 * t->max && t->cap < 1024)
    t->cap *= 2;
  t->half_ms = (half_life_s > 0 ? half_life_s : 1) * 1000.0;
  if ((t->s = calloc(t->cap, sizeof(tslot))) == NULL) {
    free(t);
    return NULL;
  }
  return t;
}

void hr_trend_free(hr_trend_t *t) {
  if (t == NULL)
    return;
  for (size_t i = 0; i < t->cap; i++)
    free(t->s[i].id);
  free(t->s);
  free(t);
}

size_t hr_trend_count(const hr_trend_t *t) { return t->n; }

static tslot *find(tslot *s, size_t cap, const char *id) {
  size_t i = (size_t)hash_str(id) & (cap - 1);
  while (s[i].id != NULL && strcmp(s[i].id, id) != 0)
    i = (i + 1) & (cap - 1);
  return &s[i];
}

/* Re-insert the slots whose weight at `now` is at least `keep` into a table
 * of `cap` slots; the others are freed. */
static int rebuild(hr_trend_t *t, size_t cap, double keep, long long now) {
  tslot *ns = calloc(cap, sizeof(tslot));
  if (ns == NULL)
    return HR_ENOMEM;
  t->n = 0;
  for (size_t i = 0; i < t->cap; i++) {
    tslot *o = &t->s[i];
    if (o->id == NULL)
      continue;
    if (decay(t, o->v, o->t, now) < keep) {
      free(o->id);
      continue;
    }
    *find(ns, cap, o->id) = *o;
    t->n++;
  }
  free(t->s);
  t->s = ns;
  t->cap = cap;
  return 0;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Full: drop the least-weighted half (ties at the median may go too). */
static int evict(hr_trend_t *t, long long now) {
  double *w = malloc(t->n * sizeof(double)), med;
  size_t m = 0;
  int rc;
  if (w == NULL)
    return HR_ENOMEM;
  for (size_t i = 0; i < t->cap; i++)
    if (t->s[i].id != NULL)
      w[m++] = decay(t, t->s[i].v, t->s[i].t, now);
  qsort(w, m, sizeof(double), cmp_double);
  med = w[m / 2];
  free(w);
  rc = rebuild(t, t->cap, med, now);
  if (rc == 0 && t->n >= t->max) /* all equal: keep none of them */
    rc = rebuild(t, t->cap, INFINITY, now);
  return rc;
}

int hr_trend_add(hr_trend_t *t, const char *item, long long t_ms) {
  tslot *s;
  int rc;
  if (t->n >= t->max && find(t->s, t->cap, item)->id == NULL &&
      (rc = evict(t, t_ms)) != 0)
    return rc;
  if (2 * (t->n + 1) > t->cap && (rc = rebuild(t, t->cap * 2, 0, 0)) != 0)
    return rc;
  s = find(t->s, t->cap, item);
  if (s->id == NULL) {
    if ((s->id = strdup(item)) == NULL)
      return HR_ENOMEM;
    s->v = 1;
    s->t = t_ms;
    t->n++;
  } else if (t_ms >= s->t) {
    s->v = decay(t, s->v, s->t, t_ms) + 1;
    s->t = t_ms;
  } else { /* an older event read late */
    s->v += decay(t, 1, t_ms, s->t);
  }
  return 0;
}

typedef struct {
  double w;
  const char *id;
} wid;

/* min-heap on w */
static void sift_down(wid *h, size_t n, size_t i) {
  for (;;) {
    size_t l = 2 * i + 1, m = i;
    if (l < n && h[l].w < h[m].w)
      m = l;
    if (l + 1 < n && h[l + 1].w < h[m].w)
      m = l + 1;
    if (m == i)
      return;
    wid x = h[i];
    h[i] = h[m];
    h[m] = x;
    i = m;
  }
}

static int cmp_wid_desc(const void *a, const void *b) {
  const wid *x = a, *y = b;
  if (x->w != y->w)
    return (x->w < y->w) - (x->w > y->w);
  return strcmp(x->id, y->id);
}

int hr_trend_publish(hr_trend_t *t, size_t top, long long now_ms) {
  wid *h = malloc((top ? top : 1) * sizeof(wid));
  const char **ids = NULL;
  double *w = NULL;
  size_t n = 0;
  int rc = HR_ENOMEM;
  if (h == NULL)
    return HR_ENOMEM;
  for (size_t i = 0; i < t->cap && top > 0; i++) {
    if (t->s[i].id == NULL)
      continue;
    wid x = {decay(t, t->s[i].v, t->s[i].t, now_ms), t->s[i].id};
    if (n < top) {
      h[n++] = x;
      if (n == top)
        for (size_t j = n / 2 + 1; j-- > 0;)
          sift_down(h, n, j);
    } else if (x.w > h[0].w) {
      h[0] = x;
      sift_down(h, n, 0);
    }
  }
  qsort(h, n, sizeof(wid), cmp_wid_desc);
  if ((ids = malloc((n ? n : 1) * sizeof(char *))) != NULL &&
      (w = malloc((n ? n : 1) * sizeof(double))) != NULL) {
    for (size_t i = 0; i < n; i++) {
      ids[i] = h[i].id;
      w[i] = h[i].w;
    }
    rc = hr_itemsets_publish(HR_SET_TRENDING, ids, w, n, now_ms);
  }
  free(ids);
  free(w);
  free(h);
  return rc;
}
