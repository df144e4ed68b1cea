/* grow.h -- arrays that grow to the largest size asked of them and stay:
 * the scratch of request threads, which must not allocate once warm.
 *
 *   void *tmp_;
 *   if (HR_GROW(s->ids, s->ids_cap, n)) -> out of memory (ids kept)
 *
 * Capacities count elements and at least double. */
#ifndef HR_GROW_H
#define HR_GROW_H

#include <stddef.h>

/** arr made to hold `need` elements of `elem` bytes: the (maybe moved)
 *  array with *cap updated, or NULL with arr and *cap left alone. */
void *hr_grow_to(void *arr, size_t *cap, size_t need, size_t elem);

/** 0 when arr holds `need` elements (grown if short), -1 on out of memory
 *  (arr kept). Needs a `void *tmp_` in scope. */
#define HR_GROW(arr, cap, need)                                               \
  ((need) <= (cap) ? 0                                                        \
   : (tmp_ = hr_grow_to((arr), &(cap), (need), sizeof(*(arr)))) == NULL       \
       ? -1                                                                   \
       : ((arr) = tmp_, 0))

#endif
