/* cold_users.c -- the cold-user study (lab.h): what the context prior is
 * worth to users the model has never seen, against popularity alone. */
#include "hr/lab.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../train/util.h"

/* ---------------------------------------------------------- cold users */

/* NDCG@10 / HR@10 of `item` under scores s (n items; ties by index). */
static void rank_metrics(const float *s, size_t n, int32_t item, double *ndcg,
                         double *hit) {
  size_t better = 0;
  for (size_t i = 0; i < n; i++)
    if (s[i] > s[item] || (s[i] == s[item] && i < (size_t)item))
      better++;
  *hit = better < 10;
  *ndcg = better < 10 ? 1.0 / log2((double)better + 2.0) : 0.0;
}

/* Row r's value index of prior field f, -1 unknown. */
static int32_t field_value(const hr_ctx_prior_t *p, const hr_dataset_t *ds,
                           size_t f, size_t r) {
  size_t u = (size_t)ds->u[r];
  if (!p->user[f])
    return ds->cv[r * HR_DS_CTX + p->slot[f]];
  return u < ds->uattr_users ? ds->uattr[u * HR_DS_UATTR + p->col[f]] : -1;
}

int hr_eval_cold_users(const hr_dataset_t *dsp, double frac, uint64_t seed,
                       hr_cold_users_result_t *res, hr_error_t *err) {
  const hr_dataset_t *ds = dsp;
  hr_ctx_prior_t cp = {0};
  unsigned char *held = NULL, *use = NULL;
  float *ctx = NULL;
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 3;
  size_t nu, ni;
  int rc;

  memset(res, 0, sizeof(*res));
  if (!(frac > 0 && frac < 1))
    return hr_error_set(err, HR_EINVAL, NULL, "--cold-users must be in "
                        "(0, 1)");
  nu = hr_idmap_size(ds->users);
  ni = hr_idmap_size(ds->items);
  held = calloc(nu + 1, 1);
  use = calloc(ds->n + 1, 1);
  ctx = malloc(sizeof(float) * (ni + 1));
  if (!held || !use || !ctx) {
    rc = hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
    goto done;
  }
  /* A seeded share of the users is held out entirely. */
  for (size_t u = 0; u < nu; u++)
    held[u] = hr__unif(&s) < frac;
  for (size_t r = 0; r < ds->n; r++)
    use[r] = !held[ds->u[r]];
  if ((rc = hr_ctx_prior_fit(ds, ni, use, 20.0f, &cp)) != 0) {
    hr_error_set(err, rc, NULL, "out of memory");
    goto done;
  }
  if (cp.n_fields == 0) {
    rc = hr_error_set(err, HR_EINVAL, NULL, "no context columns and no user "
                      "attributes (--users) to learn from");
    goto done;
  }
  res->fields = cp.n_fields;
  for (size_t r = 0; r < ds->n; r++) {
    double n1, h1, n2, h2;
    if (use[r])
      continue;
    /* the context prior's scores, as the server computes them */
    memcpy(ctx, cp.logpop, sizeof(float) * ni);
    for (size_t f = 0; f < cp.n_fields; f++) {
      int32_t v = field_value(&cp, ds, f, r);
      if (v >= 0) {
        const float *l = cp.lift + (cp.off[f] + (size_t)v) * ni;
        for (size_t i = 0; i < ni; i++)
          ctx[i] += l[i];
      }
    }
    rank_metrics(cp.logpop, ni, ds->i[r], &n1, &h1);
    rank_metrics(ctx, ni, ds->i[r], &n2, &h2);
    res->pop_ndcg += n1;
    res->pop_hr += h1;
    res->ctx_ndcg += n2;
    res->ctx_hr += h2;
    res->diff_sq += (n2 - n1) * (n2 - n1);
    res->events++;
  }
  for (size_t u = 0; u < nu; u++)
    res->users += held[u];
  if (res->events > 0) {
    double n = (double)res->events, md;
    res->pop_ndcg /= n;
    res->pop_hr /= n;
    res->ctx_ndcg /= n;
    res->ctx_hr /= n;
    md = res->ctx_ndcg - res->pop_ndcg;
    res->diff_se = n > 1 ? sqrt((res->diff_sq / n - md * md) * n / (n - 1)) /
                               sqrt(n)
                         : 0;
  }
done:
  free(held);
  free(use);
  free(ctx);
  hr_ctx_prior_free(&cp);
  return rc;
}
