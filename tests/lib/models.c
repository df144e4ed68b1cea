/* models.c -- see models.h. */
#include "models.h"

#include "test.h"

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

int hrt_fit_gen(hr_dataset_t *ds, hr_csr_t *h, hr_ials_t *m, int threads) {
  char g[600], csv[700];
  hr_gen_opts_t go = {200, 80, 3000, 5, 1.0, 0};
  hr_ials_opts_t o;
  hr_error_t err = {0};

  snprintf(g, sizeof(g), "%s/fitgen", hr_test_tmpdir());
  snprintf(csv, sizeof(csv), "%s/events.csv", g);
  hr_ials_opts_default(&o);
  o.factors = 8;
  o.iters = 3;
  o.threads = threads;
  if (hr_gen_write(g, &go, &err) != 0 || hr_dataset_init(ds) != 0 ||
      hr_data_read_csv(ds, csv, &err) != 0 || hr_dataset_histories(ds, h))
    return -1;
  return hr_ials_fit(h, &o, m, &err);
}
