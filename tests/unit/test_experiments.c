/* test_experiments.c -- sticky assignment: shares, stability, salts. */
#include "test.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "hr/experiments.h"

/* 100,000 synthetic users split 50/30/20 land within 1 percentage point of
 * the weights. */
HR_TEST(experiments_assignment_follows_weights) {
  static const int w[3] = {50, 30, 20};
  long count[3] = {0};
  char id[32];
  for (int u = 0; u < 100000; u++) {
    int n = snprintf(id, sizeof(id), "user-%d", u);
    int v = hr_exp_assign("homepage-2026-12", id, (size_t)n, w, 3);
    ASSERT(v >= 0 && v < 3);
    count[v]++;
  }
  for (int v = 0; v < 3; v++)
    ASSERT_MSG(count[v] > (w[v] - 1) * 1000 && count[v] < (w[v] + 1) * 1000,
               "variant %d: %ld of 100000 (weight %d %%)", v, count[v], w[v]);
  return 0;
}

/* The same id always gets the same variant, on any build: the hash is
 * pinned (a change would move users between variants of running
 * experiments); another salt assigns independently. */
HR_TEST(experiments_assignment_is_sticky_and_salted) {
  static const int w[2] = {1, 1};
  int same = 0;
  /* the value from an independent Python implementation of the hash */
  ASSERT_EQ(hr_exp_hash("s", "u1", 2), 0xa11bf7307878353dull);
  ASSERT(hr_exp_hash("a", "bc", 2) != hr_exp_hash("ab", "c", 1));
  for (int u = 0; u < 10000; u++) {
    char id[32];
    int n = snprintf(id, sizeof(id), "u%d", u);
    int a = hr_exp_assign("one", id, (size_t)n, w, 2);
    ASSERT_EQ(a, hr_exp_assign("one", id, (size_t)n, w, 2));
    same += a == hr_exp_assign("two", id, (size_t)n, w, 2);
  }
  /* independent salts agree on about half of the users */
  ASSERT_MSG(same > 4700 && same < 5300, "%d of 10000 agree", same);
  /* zero weights: that variant never comes up; nothing to assign: -1 */
  static const int z[3] = {0, 5, 0};
  ASSERT_EQ(hr_exp_assign("s", "x", 1, z, 3), 1);
  static const int none[2] = {0, 0};
  ASSERT_EQ(hr_exp_assign("s", "x", 1, none, 2), -1);
  ASSERT_EQ(hr_exp_assign("s", "x", 1, w, 0), -1);
  return 0;
}

/* The 95 % Wilson interval against published values: 20 of 100 is
 * [0.1333669, 0.2888292] (R's prop.test without continuity correction);
 * the bounds stay in [0, 1] at 0 and n successes. */
HR_TEST(experiments_wilson_interval) {
  double lo, hi;
  hr_exp_wilson(20, 100, &lo, &hi);
  ASSERT_MSG(fabs(lo - 0.1333669) < 1e-6 && fabs(hi - 0.2888292) < 1e-6,
             "[%.7f, %.7f]", lo, hi);
  hr_exp_wilson(0, 50, &lo, &hi);
  ASSERT(lo == 0.0 && fabs(hi - 0.0713476) < 1e-6);
  hr_exp_wilson(50, 50, &lo, &hi);
  ASSERT(hi == 1.0 && fabs(lo - 0.9286524) < 1e-6);
  return 0;
}

/* The chi-square tail against its closed forms for 1 to 4 degrees of
 * freedom, and the 5 % critical values of tables. */
HR_TEST(experiments_chi_square_tail) {
  static const double xs[] = {0.01, 0.5, 1.0, 2.5, 3.841459, 10.0, 30.0,
                              80.0};
  for (size_t i = 0; i < sizeof(xs) / sizeof(xs[0]); i++) {
    double x = xs[i], e = exp(-x / 2.0);
    double q1 = erfc(sqrt(x / 2.0));
    double q2 = e;
    double q3 = q1 + sqrt(2.0 * x / M_PI) * e;
    double q4 = e * (1.0 + x / 2.0);
    double want[4] = {q1, q2, q3, q4};
    for (int df = 1; df <= 4; df++) {
      double got = hr_exp_chi2_sf(x, df);
      ASSERT_MSG(fabs(got - want[df - 1]) <= 1e-12 + 1e-9 * want[df - 1],
                 "x %g df %d: %.15g, want %.15g", x, df, got, want[df - 1]);
    }
  }
  ASSERT(fabs(hr_exp_chi2_sf(3.841459, 1) - 0.05) < 1e-6);
  ASSERT(fabs(hr_exp_chi2_sf(5.991465, 2) - 0.05) < 1e-6);
  ASSERT(fabs(hr_exp_chi2_sf(14.06714, 7) - 0.05) < 1e-6);
  ASSERT(hr_exp_chi2_sf(0.0, 3) == 1.0);
  return 0;
}

/* The pooled two-proportion z-test is the 2x2 table's Pearson chi-square:
 * z^2 equals it and the p-values agree. Undefined without trials or with
 * a pooled rate of 0 or 1. */
HR_TEST(experiments_two_proportion_z_test) {
  static const unsigned long long t[][4] = {
      {100, 1000, 130, 1000}, {30, 400, 20, 600}, {7, 50, 7, 50},
      {1, 20000, 9, 30000}};
  for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
    double a = (double)t[i][0], b = (double)(t[i][1] - t[i][0]);
    double c = (double)t[i][2], d = (double)(t[i][3] - t[i][2]);
    double n = a + b + c + d;
    double chi = n * (a * d - b * c) * (a * d - b * c) /
                 ((a + b) * (c + d) * (a + c) * (b + d));
    double z, p;
    ASSERT_EQ(hr_exp_ztest(t[i][0], t[i][1], t[i][2], t[i][3], &z, &p), 0);
    ASSERT_MSG(fabs(z * z - chi) < 1e-9 * (1 + chi), "%g vs %g", z * z, chi);
    ASSERT(fabs(p - hr_exp_chi2_sf(chi, 1)) < 1e-9);
    ASSERT((z > 0) == (c / (c + d) > a / (a + b)));
  }
  double z, p;
  ASSERT_EQ(hr_exp_ztest(0, 0, 3, 10, &z, &p), -1);
  ASSERT_EQ(hr_exp_ztest(0, 10, 0, 10, &z, &p), -1);
  ASSERT_EQ(hr_exp_ztest(10, 10, 5, 5, &z, &p), -1);
  return 0;
}

/* Recommendation ids name a configured experiment and variant; forced
 * (.qa) ids, unknown names and ids without an experiment do not count. */
HR_TEST(experiments_recommendation_id_parts) {
  hr_config_t c;
  int x, v;
  hr_config_defaults(&c);
  c.n_experiments = 2;
  strcpy(c.experiments[0].name, "home");
  c.experiments[0].n_variants = 2;
  strcpy(c.experiments[0].v[0].name, "a");
  strcpy(c.experiments[0].v[1].name, "qa");
  strcpy(c.experiments[1].name, "home-2");
  c.experiments[1].n_variants = 1;
  strcpy(c.experiments[1].v[0].name, "b");
  ASSERT_EQ(hr_exp_parse_rid(&c, "r1-00ff00ff00ff00ff.home.a", &x, &v), 1);
  ASSERT(x == 0 && v == 0);
  ASSERT_EQ(hr_exp_parse_rid(&c, "r1-00ff00ff00ff00ff.home.qa", &x, &v), 1);
  ASSERT(x == 0 && v == 1);
  ASSERT_EQ(hr_exp_parse_rid(&c, "r1-00ff00ff00ff00ff.home-2.b", &x, &v), 1);
  ASSERT(x == 1 && v == 0);
  ASSERT_EQ(hr_exp_parse_rid(&c, "r1-00ff00ff00ff00ff.home.a.qa", &x, &v), 0);
  ASSERT_EQ(hr_exp_parse_rid(&c, "r1-00ff00ff00ff00ff.home.c", &x, &v), 0);
  ASSERT_EQ(hr_exp_parse_rid(&c, "r1-00ff00ff00ff00ff.hom.a", &x, &v), 0);
  ASSERT_EQ(hr_exp_parse_rid(&c, "r1-00ff00ff00ff00ff", &x, &v), 0);
  ASSERT_EQ(hr_exp_parse_rid(&c, "x1-00ff.home.a", &x, &v), 0);
  ASSERT_EQ(hr_exp_parse_rid(&c, "r1-.home.", &x, &v), 0);
  return 0;
}
