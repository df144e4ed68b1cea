/* stats.c -- the statistics of an experiment's report (experiments.h). */
#include "hr/experiments.h"

#include <math.h>

#define Z95 1.959963984540054 /* the normal's 97.5th percentile */

void hr_exp_wilson(uint64_t k, uint64_t n, double *lo, double *hi) {
  double nn = (double)n, p = (double)k / nn, z2 = Z95 * Z95;
  double den = 1.0 + z2 / nn;
  double mid = (p + z2 / (2.0 * nn)) / den;
  double half =
      Z95 * sqrt(p * (1.0 - p) / nn + z2 / (4.0 * nn * nn)) / den;
  /* exactly 0 (1) at no (all) successes, where rounding leaves 1e-17 */
  *lo = k == 0 || mid - half < 0.0 ? 0.0 : mid - half;
  *hi = k == n || mid + half > 1.0 ? 1.0 : mid + half;
}

int hr_exp_ztest(uint64_t k1, uint64_t n1, uint64_t k2, uint64_t n2,
                 double *z, double *p) {
  double pool, se;
  if (n1 == 0 || n2 == 0)
    return -1;
  pool = (double)(k1 + k2) / (double)(n1 + n2);
  se = sqrt(pool * (1.0 - pool) * (1.0 / (double)n1 + 1.0 / (double)n2));
  if (!(se > 0.0))
    return -1;
  *z = ((double)k2 / (double)n2 - (double)k1 / (double)n1) / se;
  *p = erfc(fabs(*z) / sqrt(2.0));
  return 0;
}

/* Q(a, x), the upper regularised incomplete gamma function: by its series
 * (through P = 1 - Q) below x = a + 1, by its continued fraction (modified
 * Lentz) above, where each converges fast. */
static double gamma_q(double a, double x) {
  const double eps = 1e-15, tiny = 1e-300;
  double lead;
  if (!(x > 0.0))
    return 1.0;
  lead = exp(-x + a * log(x) - lgamma(a));
  if (x < a + 1.0) {
    double term = 1.0 / a, sum = term;
    for (int n = 1; n < 10000; n++) {
      term *= x / (a + n);
      sum += term;
      if (fabs(term) < fabs(sum) * eps)
        break;
    }
    double q = 1.0 - sum * lead;
    return q < 0.0 ? 0.0 : q;
  }
  double b = x + 1.0 - a, c = 1.0 / tiny, d = 1.0 / b, h = d;
  for (int i = 1; i < 10000; i++) {
    double an = -i * (i - a), del;
    b += 2.0;
    d = an * d + b;
    if (fabs(d) < tiny)
      d = tiny;
    c = b + an / c;
    if (fabs(c) < tiny)
      c = tiny;
    d = 1.0 / d;
    del = d * c;
    h *= del;
    if (fabs(del - 1.0) < eps)
      break;
  }
  return lead * h;
}

double hr_exp_chi2_sf(double x, int df) {
  if (df < 1)
    return NAN;
  return gamma_q(df / 2.0, x / 2.0);
}
