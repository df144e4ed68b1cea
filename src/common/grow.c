/* grow.c -- see grow.h. */
#include "hr/grow.h"

#include <stdlib.h>

void *hr_grow_to(void *arr, size_t *cap, size_t need, size_t elem) {
  size_t c = *cap ? *cap : 64;
  void *p;
  while (c < need)
    c *= 2;
  if (c == *cap && arr != NULL)
    return arr;
  if ((p = realloc(arr, c * elem)) != NULL)
    *cap = c;
  return p;
}
