/* models.c -- see models.h. */
#include "models.h"

#include "hr/ranker.h"

void hrt_small_seq_opts(hr_seq_opts_t *o) {
  hr_seq_opts_default(o);
  o->dims.d = 16;
  o->dims.L = 12;
  o->dims.ffn = 16;
  o->epochs = 3;
  o->batch = 16;
  o->threads = 1;
}

int hrt_cmp_scored_desc(const void *a, const void *b) {
  const hr_scored_t *x = a, *y = b;
  if (x->score != y->score)
    return x->score < y->score ? 1 : -1;
  return (x->index > y->index) - (x->index < y->index);
}
