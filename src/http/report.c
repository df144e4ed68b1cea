/* report.c -- GET /experiments and GET /experiments/<name>: the
 * configured experiments, and one experiment's per-variant report from the
 * counters every replica adds to in Redis (experiments.h). */
#include "hr/ctxstore.h"
#include "hr/experiments.h"
#include "internal.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#define SRM_ALPHA 0.001 /* a sample-ratio mismatch below this p-value */

/* Rates and p-values: 10 significant digits (a p-value of 1e-8 is still
 * read to its relative precision). */
static void reply(hr_hresp_t *resp, json_t *o) {
  hr__http_reply_json(resp, 200, o, 10);
}

static json_t *variant_cfg(const hr_variant_cfg_t *v) {
  return json_pack("{s:s,s:i,s:s?,s:i}", "name", v->name, "weight", v->weight,
                   "slot", v->slot[0] ? v->slot : NULL, "candidates",
                   v->candidates);
}

void hr__h_experiments(const hr_hreq_t *req, hr_hresp_t *resp) {
  const hr_config_t *cfg = req->cfg;
  json_t *list = json_array();

  for (int x = 0; x < cfg->n_experiments; x++) {
    const hr_experiment_cfg_t *e = &cfg->experiments[x];
    json_t *vs = json_array();
    for (int v = 0; v < e->n_variants; v++)
      json_array_append_new(vs, variant_cfg(&e->v[v]));
    json_array_append_new(
        list, json_pack("{s:s,s:b,s:s,s:o}", "name", e->name,
                        "splits_recommend", x == 0, "control", e->v[0].name,
                        "variants", vs));
  }
  reply(resp, json_pack("{s:o}", "experiments", list));
}

/* {"value", "ci95": [lo, hi]} of k in n, or null without trials. More
 * successes than trials (clicks on impressions another replica has not
 * written yet, or on ids that were never served) is no proportion: the
 * value is given, the interval is null. */
static json_t *rate(unsigned long long k, unsigned long long n) {
  double lo, hi;
  if (n == 0)
    return json_null();
  if (k > n)
    return json_pack("{s:f,s:n}", "value", (double)k / (double)n, "ci95");
  hr_exp_wilson(k, n, &lo, &hi);
  if (!isfinite(lo) || !isfinite(hi))
    return json_null();
  return json_pack("{s:f,s:[f,f]}", "value", (double)k / (double)n, "ci95",
                   lo, hi);
}

/* The difference of k2/n2 to the control's k1/n1, with the z-test. */
static json_t *diff(unsigned long long k1, unsigned long long n1,
                    unsigned long long k2, unsigned long long n2) {
  double z, p;
  if (k1 > n1 || k2 > n2 || hr_exp_ztest(k1, n1, k2, n2, &z, &p) != 0 ||
      !isfinite(z) || !isfinite(p))
    return json_null();
  return json_pack("{s:f,s:f,s:f}", "diff",
                   (double)k2 / (double)n2 - (double)k1 / (double)n1, "z", z,
                   "p_value", p);
}

/* Chi-square of the users per variant against the weights (variants of
 * weight 0 get no users by assignment and are left out). */
static json_t *srm(const hr_experiment_cfg_t *e, const hr_exp_totals_t *t) {
  unsigned long long users = 0;
  long wsum = 0;
  int m = 0;
  double chi = 0.0, p;

  for (int v = 0; v < e->n_variants; v++)
    if (e->v[v].weight > 0) {
      users += t[v].users;
      wsum += e->v[v].weight;
      m++;
    }
  if (m < 2 || users == 0)
    return json_null();
  for (int v = 0; v < e->n_variants; v++)
    if (e->v[v].weight > 0) {
      double want = (double)users * e->v[v].weight / (double)wsum;
      double d = (double)t[v].users - want;
      chi += d * d / want;
    }
  p = hr_exp_chi2_sf(chi, m - 1);
  return json_pack("{s:f,s:i,s:f,s:b,s:f}", "chi_square", chi, "df", m - 1,
                   "p_value", p, "mismatch", p < SRM_ALPHA, "alpha",
                   SRM_ALPHA);
}

/* The report's counts, and its rates (successes over trials), by their
 * place in hr_exp_totals_t. */
#define COUNT(t, off) (*(const unsigned long long *)((const char *)(t) + (off)))
#define OFF(f) offsetof(hr_exp_totals_t, f)
static const struct {
  const char *name;
  size_t off;
} counts[] = {{"users", OFF(users)},
              {"users_clicked", OFF(users_clicked)},
              {"users_converted", OFF(users_converted)},
              {"impressions", OFF(impressions)},
              {"clicks", OFF(clicks)},
              {"click_events", OFF(click_events)},
              {"conversions", OFF(conversions)},
              {"conversion_events", OFF(conversion_events)}};
static const struct {
  const char *name;
  size_t k, n;
} rates[] = {{"user_click_rate", OFF(users_clicked), OFF(users)},
             {"user_conversion_rate", OFF(users_converted), OFF(users)},
             {"ctr", OFF(clicks), OFF(impressions)},
             {"conversion_rate", OFF(conversions), OFF(impressions)}};

void hr__h_experiment(const hr_hreq_t *req, hr_hresp_t *resp) {
  const hr_config_t *cfg = req->cfg;
  const char *name = req->url + strlen("/experiments/");
  const hr_experiment_cfg_t *e = NULL;
  const char *vn[HR_EXP_MAX_VARIANTS];
  hr_exp_totals_t t[HR_EXP_MAX_VARIANTS];
  hr_error_t err = {0};
  hr_ctxstore_t *cs;
  json_t *vs;

  for (int x = 0; x < cfg->n_experiments && e == NULL; x++)
    if (strcmp(cfg->experiments[x].name, name) == 0)
      e = &cfg->experiments[x];
  if (e == NULL) {
    hr_error_set(&err, HR_ENOTFOUND, "", "no experiment named \"%.64s\" "
                 "(GET /experiments lists them)", name);
    hr__http_error(resp, &err);
    return;
  }
  for (int v = 0; v < e->n_variants; v++)
    vn[v] = e->v[v].name;
  /* this replica's pending impressions first: the report then holds every
   * impression this replica served before the request */
  if (hr_exp_counts_flush(&err) != 0 ||
      (cs = hr_ctxstore_thread()) == NULL ||
      hr_ctxstore_exp_read(cs, e->name, vn, (size_t)e->n_variants, t,
                           &err) != 0) {
    if (err.code == 0)
      hr_error_set(&err, HR_ENOMEM, "", "out of memory");
    if (err.code == HR_EREDIS)
      resp->retry_after_s = 1;
    hr__http_error(resp, &err);
    return;
  }
  vs = json_array();
  for (int v = 0; v < e->n_variants; v++) {
    json_t *o = variant_cfg(&e->v[v]);
    json_t *d = v == 0 ? json_null() : json_object();
    for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++)
      json_object_set_new(o, counts[i].name,
                          json_integer((json_int_t)COUNT(&t[v], counts[i].off)));
    for (size_t i = 0; i < sizeof(rates) / sizeof(rates[0]); i++) {
      json_object_set_new(o, rates[i].name,
                          rate(COUNT(&t[v], rates[i].k),
                               COUNT(&t[v], rates[i].n)));
      if (v > 0)
        json_object_set_new(d, rates[i].name,
                            diff(COUNT(&t[0], rates[i].k),
                                 COUNT(&t[0], rates[i].n),
                                 COUNT(&t[v], rates[i].k),
                                 COUNT(&t[v], rates[i].n)));
    }
    json_object_set_new(o, "vs_control", d);
    json_array_append_new(vs, o);
  }
  reply(resp, json_pack("{s:s,s:b,s:s,s:o,s:o,s:i}", "experiment", e->name,
                        "splits_recommend", e == &cfg->experiments[0],
                        "control", e->v[0].name, "variants", vs, "srm",
                        srm(e, t), "flush_ms", cfg->experiments_flush_ms));
}
