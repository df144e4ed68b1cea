/* itemsets.h -- item lists that every endpoint applies and every replica
 * shares through Redis: the hidden items (PUT /items/<id>) and the
 * trending items (the event stream, weighted by recency).
 *
 * The server's control loop reads Redis every items.refresh_ms (the hidden
 * set only when its version changed, the stream from where it stopped) and
 * publishes each list here as an immutable value with a new generation. A
 * ranking thread compares the generation with the one it mapped last and
 * maps the ids to a model's dense indices only when one changed, so a
 * request that finds nothing new takes no lock. A process that publishes
 * nothing (the trainer) has empty lists. */
#ifndef HR_ITEMSETS_H
#define HR_ITEMSETS_H

#include <stddef.h>
#include <stdint.h>

#include "hr/config.h"

typedef enum { HR_SET_HIDDEN = 0, HR_SET_TRENDING = 1, HR_SET_N } hr_set_kind_t;

/** A published list: ids (and for trending their weights, largest
 *  first). Immutable; held by reference. */
typedef struct {
  uint64_t gen;
  size_t n;
  char **ids;
  double *weight;   /* NULL for the hidden set */
  long long at_ms;  /* the time the weights are for (trending) */
  int refs;         /* private */
} hr_itemlist_t;

/** Replace list `kind` by ids[0..n) (copied; weights may be NULL). */
int hr_itemsets_publish(hr_set_kind_t kind, const char *const *ids,
                        const double *weight, size_t n, long long at_ms);

/** The generation of the current list (0: nothing published yet). */
uint64_t hr_itemsets_gen(hr_set_kind_t kind);

/** The current list, held until hr_itemsets_release; NULL when nothing was
 *  published. */
hr_itemlist_t *hr_itemsets_acquire(hr_set_kind_t kind);
void hr_itemsets_release(hr_itemlist_t *l);

/** Drop every list (tests, shutdown). */
void hr_itemsets_reset(void);

/* ----------------------------------------------------------- refresher */

/** Read the hidden set now (so that the first request already applies
 *  it), then start the thread that refreshes both lists every
 *  items.refresh_ms. 0 or HR_ENOMEM. */
int hr_itemsets_start(const hr_config_t *cfg);
/** Refresh at once (after this replica changed the hidden set). */
void hr_itemsets_wake(void);
/** Stop the thread and drop the lists. */
void hr_itemsets_stop(void);

/* ------------------------------------------------------------ trending */

/** Recency-weighted event counts: each event adds 1, halved every
 *  half_life_s. At most max_items distinct items are counted; past that
 *  the least-weighted half is dropped. */
typedef struct hr_trend hr_trend_t;

hr_trend_t *hr_trend_new(int half_life_s, size_t max_items);
void hr_trend_free(hr_trend_t *t);
/** Count one event on `item` at time t_ms (unix ms). 0 or HR_ENOMEM. */
int hr_trend_add(hr_trend_t *t, const char *item, long long t_ms);
/** Publish the `top` heaviest items as of now_ms as HR_SET_TRENDING.
 *  Returns 0 or HR_ENOMEM. */
int hr_trend_publish(hr_trend_t *t, size_t top, long long now_ms);
size_t hr_trend_count(const hr_trend_t *t);

#endif
