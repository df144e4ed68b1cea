/* anomaly.c -- anomalous users (bots, fraud, scripted clicking) by the
 * reconstruction error of an autoencoder over each user's behaviour
 * profile (docs/training.md, "Anomalous users").
 *
 * A recommender's autoencoder sees a user's set of items, and neither a
 * single item hammered a thousand times (one item, like a user with one
 * view) nor a script replayed by many accounts (a set it sees often, so
 * learns) looks unusual to it. The profile therefore describes the event
 * stream itself: how many events and distinct items, how repetitive, how
 * popular the items are, how regular the timing is, and how many other
 * accounts produced the very same sequence -- and how well the items
 * hang together: the loss of a small denoising autoencoder over the
 * user's items (dae.c), the recommender's own measure of a user it cannot
 * explain. Each feature is standardised
 * robustly (median and MAD, so that the anomalies do not set the scale);
 * a small autoencoder (10 -> 4 -> 10, tanh) learns to reconstruct the
 * profiles, is retrained without the worst-reconstructed tenth, and a
 * user's score is their mean squared reconstruction error, each feature's
 * residual in units of its spread among the users trained on. */
#include "hr/log.h"
#include "hr/train.h"
#include "util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define F HR_ANOM_FEATURES
#define HID 4

const char *const hr_anom_feature_names[F] = {
    "events",          "distinct_items",  "repeat_share",
    "top_item_share",  "popularity_evidence", "popularity_spread",
    "gap_regularity",  "median_gap",      "copied_sequences",
    "dae_reconstruction"};

void hr_anomaly_free(hr_anomaly_t *a) {
  free(a->score);
  free(a->feat);
  memset(a, 0, sizeof(*a));
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

static int cmp_f(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return x < y ? -1 : x > y;
}

/* 64-bit hash of the user's first (up to) 10 items in time order. */
static uint64_t seq_hash(const hr_csr_t *h, size_t u) {
  uint64_t x = 1469598103934665603ull, a = h->ptr[u], e = h->ptr[u + 1];
  for (uint64_t k = a; k < e && k < a + 10; k++)
    x = (x ^ (uint64_t)(uint32_t)h->items[k]) * 1099511628211ull;
  return x ^ (e - a);
}

typedef struct {
  uint64_t hash;
  size_t user;
} hu_t;

static int cmp_hu(const void *a, const void *b) {
  const hu_t *x = a, *y = b;
  return x->hash < y->hash ? -1 : x->hash > y->hash;
}

/* The raw profile of every user into X (n_users x F). */
static int profiles(const hr_dataset_t *ds, const hr_csr_t *h, float *X) {
  size_t nu = h->n_users, ni = h->n_items;
  uint32_t *pop = calloc(ni + 1, sizeof(*pop)), *cnt = calloc(ni + 1, 4);
  uint64_t *rows = calloc(nu + 2, sizeof(*rows));
  int64_t *ts = malloc(sizeof(int64_t) * (ds->n + 1));
  size_t *order = malloc(sizeof(size_t) * (ds->n + 1));
  hu_t *hu = malloc(sizeof(hu_t) * (nu + 1));
  if (!pop || !cnt || !rows || !ts || !order || !hu) {
    free(pop), free(cnt), free(rows), free(ts), free(order), free(hu);
    return HR_ENOMEM;
  }
  for (uint64_t k = 0; k < h->ptr[nu]; k++)
    pop[h->items[k]]++;
  /* the data set's rows grouped by user (counting sort) */
  for (size_t r = 0; r < ds->n; r++)
    rows[ds->u[r] + 2]++;
  for (size_t u = 0; u < nu; u++)
    rows[u + 2] += rows[u + 1];
  for (size_t r = 0; r < ds->n; r++)
    order[rows[ds->u[r] + 1]++] = r;
  for (size_t u = 0; u < nu; u++)
    hu[u] = (hu_t){seq_hash(h, u), u};
  qsort(hu, nu, sizeof(*hu), cmp_hu);
  for (size_t a = 0, b; a < nu; a = b) {
    for (b = a + 1; b < nu && hu[b].hash == hu[a].hash; b++)
      ;
    for (size_t k = a; k < b; k++)
      X[hu[k].user * F + 8] = (float)log1p((double)(b - a - 1));
  }
  for (size_t u = 0; u < nu; u++) {
    float *x = X + u * F;
    uint64_t a = h->ptr[u], e = h->ptr[u + 1], r0 = rows[u], r1 = rows[u + 1];
    size_t n = (size_t)(r1 - r0), dn = (size_t)(e - a), top = 0, nt = 0;
    double lp = 0, lp2 = 0;
    for (uint64_t k = r0; k < r1; k++) {
      size_t i = (size_t)ds->i[order[k]];
      if (++cnt[i] > top)
        top = cnt[i];
      if (ds->ts[order[k]] > 0)
        ts[nt++] = ds->ts[order[k]];
    }
    for (uint64_t k = r0; k < r1; k++)
      cnt[ds->i[order[k]]] = 0;
    /* the evidence, summed over the user's items, that they were picked
     * by popularity rather than at random: log(P(i) / (1 / n_items)) */
    for (uint64_t k = a; k < e; k++) {
      double p = log((double)pop[h->items[k]] * (double)ni /
                     (double)h->ptr[nu]);
      lp += p;
      lp2 += p * p;
    }
    x[0] = (float)log1p((double)n);
    x[1] = (float)log1p((double)dn);
    x[2] = n ? (float)(1.0 - (double)dn / (double)n) : 0;
    x[3] = n ? (float)top / (float)n : 0;
    x[4] = (float)lp;
    x[5] = dn ? (float)sqrt(fmax(0, lp2 / (double)dn - (lp / dn) * (lp / dn)))
              : 0;
    /* timing: gaps between the user's events in time order */
    qsort(ts, nt, sizeof(*ts), cmp_i64);
    double gs = 0, gs2 = 0;
    for (size_t k = 1; k < nt; k++) {
      double g = (double)(ts[k] - ts[k - 1]);
      gs += g;
      gs2 += g * g;
      ts[k - 1] = ts[k] - ts[k - 1];
    }
    if (nt >= 3) {
      double m = gs / (double)(nt - 1);
      double sd = sqrt(fmax(0, gs2 / (double)(nt - 1) - m * m));
      x[6] = m > 0 ? (float)(sd / m) : 0;
      qsort(ts, nt - 1, sizeof(*ts), cmp_i64);
      x[7] = (float)log1p((double)ts[(nt - 1) / 2]);
    } else {
      x[6] = 1; /* unknown: a typical human value */
      x[7] = 0;
    }
  }
  free(pop), free(cnt), free(rows), free(ts), free(order), free(hu);
  return 0;
}

/* Robust standardisation of each column: (x - median) / scale, scale the
 * MAD x 1.4826, at least a tenth of the standard deviation; clipped to
 * +-50. */
static int standardise(float *X, size_t n) {
  float *col = malloc(sizeof(float) * (n + 1));
  if (col == NULL)
    return HR_ENOMEM;
  for (int f = 0; f < F; f++) {
    double s = 0, s2 = 0;
    for (size_t u = 0; u < n; u++) {
      col[u] = X[u * F + f];
      s += col[u];
      s2 += (double)col[u] * col[u];
    }
    qsort(col, n, sizeof(float), cmp_f);
    float med = col[n / 2];
    for (size_t u = 0; u < n; u++)
      col[u] = fabsf(X[u * F + f] - med);
    qsort(col, n, sizeof(float), cmp_f);
    double sd = sqrt(fmax(0, s2 / (double)n - (s / n) * (s / n)));
    double scale = fmax(fmax(1.4826 * col[n / 2], 0.1 * sd), 1e-3);
    for (size_t u = 0; u < n; u++) {
      double z = (X[u * F + f] - med) / scale;
      X[u * F + f] = (float)fmax(-50, fmin(50, z));
    }
  }
  free(col);
  return 0;
}

/* The autoencoder: W1 HID x F, b1 HID, W2 F x HID, b2 F. */
#define NP (HID * F + HID + F * HID + F)

static double recon(const float *w, const float *x, float *h, float *y) {
  const float *W1 = w, *b1 = W1 + HID * F, *W2 = b1 + HID, *b2 = W2 + F * HID;
  double e = 0;
  for (int j = 0; j < HID; j++) {
    double a = b1[j];
    for (int f = 0; f < F; f++)
      a += W1[j * F + f] * x[f];
    h[j] = (float)tanh(a);
  }
  for (int f = 0; f < F; f++) {
    double a = b2[f];
    for (int j = 0; j < HID; j++)
      a += W2[f * HID + j] * h[j];
    y[f] = (float)a;
    e += (a - x[f]) * (a - x[f]);
  }
  return e / F;
}

/* Adam on the users with use[u] (full batch). */
static void train_ae(float *w, const float *X, size_t n,
                     const unsigned char *use, uint64_t seed) {
  float g[NP], m1[NP] = {0}, m2[NP] = {0}, h[HID], y[F];
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 5;
  for (int k = 0; k < NP; k++)
    w[k] = (float)(0.3 * hr__gauss(&s));
  for (int it = 1; it <= 400; it++) {
    size_t cnt = 0;
    memset(g, 0, sizeof(g));
    const float *W2 = w + HID * F + HID;
    float *gW1 = g, *gb1 = g + HID * F, *gW2 = gb1 + HID, *gb2 = gW2 + F * HID;
    for (size_t u = 0; u < n; u++) {
      const float *x = X + u * F;
      float dy[F], dh[HID] = {0};
      if (!use[u])
        continue;
      cnt++;
      recon(w, x, h, y);
      for (int f = 0; f < F; f++) {
        dy[f] = 2.0f * (y[f] - x[f]) / F;
        gb2[f] += dy[f];
        for (int j = 0; j < HID; j++) {
          gW2[f * HID + j] += dy[f] * h[j];
          dh[j] += dy[f] * W2[f * HID + j];
        }
      }
      for (int j = 0; j < HID; j++) {
        float da = dh[j] * (1.0f - h[j] * h[j]);
        gb1[j] += da;
        for (int f = 0; f < F; f++)
          gW1[j * F + f] += da * x[f];
      }
    }
    for (int k = 0; k < NP && cnt > 0; k++) {
      double gk = g[k] / (double)cnt;
      m1[k] = (float)(0.9 * m1[k] + 0.1 * gk);
      m2[k] = (float)(0.999 * m2[k] + 0.001 * gk * gk);
      double mh = m1[k] / (1 - pow(0.9, it)), vh = m2[k] / (1 - pow(0.999, it));
      w[k] -= (float)(0.02 * mh / (sqrt(vh) + 1e-8));
    }
  }
}

/* Feature 9: each user's loss under a small Mult-DAE trained on all of
 * them (their items in, their items back: how typical the set is). */
static int dae_feature(const hr_csr_t *h, uint64_t seed, float *X,
                       hr_error_t *err) {
  hr_dae_opts_t o;
  hr_dae_t m;
  size_t n = h->n_items, B = 64;
  int rc;
  hr_dae_opts_default(&o);
  o.dim = 32;
  o.epochs = 30;
  o.decay = 1.0f;
  o.dropout = 0.5f;
  o.seed = seed;
  o.threads = 1;
  if ((rc = hr_dae_fit(h, &o, &m, err)) != 0)
    return rc;
  float *x = calloc(B * n, sizeof(float)), *t = calloc(B * n, sizeof(float));
  float *work = malloc(sizeof(float) * hr_dae_work_floats(n, o.dim, 1));
  if (!x || !t || !work) {
    rc = hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
    goto done;
  }
  for (size_t u = 0; u < h->n_users; u++) {
    uint64_t a = h->ptr[u], e = h->ptr[u + 1];
    if (e == a)
      continue;
    memset(x, 0, sizeof(float) * n);
    memset(t, 0, sizeof(float) * n);
    for (uint64_t k = a; k < e; k++) {
      x[h->items[k]] = 1.0f / (float)sqrt((double)(e - a));
      t[h->items[k]] = 1.0f / (float)(e - a);
    }
    X[u * F + 9] = (float)hr_dae_loss_grad(&m, x, t, 1, NULL, work);
  }
done:
  free(x);
  free(t);
  free(work);
  hr_dae_free(&m);
  return rc;
}

int hr_anomaly_scores(const hr_dataset_t *ds, uint64_t seed, hr_anomaly_t *out,
                      hr_error_t *err) {
  hr_csr_t h = {0};
  double t0 = hr__now_s();
  float w[NP], hbuf[HID], y[F];
  unsigned char *use = NULL;
  float *sorted = NULL;
  int rc;

  memset(out, 0, sizeof(*out));
  if ((rc = hr_dataset_histories(ds, &h)) != 0)
    return hr_error_set(err, rc, NULL, "out of memory");
  size_t n = h.n_users;
  out->n_users = n;
  out->feat = calloc(n * F + 1, sizeof(float));
  out->score = calloc(n + 1, sizeof(float));
  use = malloc(n + 1);
  sorted = malloc(sizeof(float) * (n + 1));
  if (!out->feat || !out->score || !use || !sorted ||
      profiles(ds, &h, out->feat) != 0) {
    rc = hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
    goto done;
  }
  if ((rc = dae_feature(&h, seed, out->feat, err)) != 0)
    goto done;
  if (standardise(out->feat, n) != 0) {
    rc = hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
    goto done;
  }
  /* train on everyone, then again without the worst-reconstructed tenth;
   * a user's score: the squared reconstruction residuals, each feature's
   * in units of its spread among the users trained on (a feature the
   * model reconstructs well for people counts more when it fails) */
  memset(use, 1, n);
  for (int pass = 0; pass < 2 && n > 0; pass++) {
    double rms[F] = {0};
    size_t kept = 0;
    train_ae(w, out->feat, n, use, seed + (uint64_t)pass);
    for (size_t u = 0; u < n; u++) {
      recon(w, out->feat + u * F, hbuf, y);
      for (int f = 0; f < F && use[u]; f++)
        rms[f] += (y[f] - out->feat[u * F + f]) * (y[f] - out->feat[u * F + f]);
      kept += use[u];
    }
    for (int f = 0; f < F; f++)
      rms[f] = sqrt(rms[f] / (double)(kept ? kept : 1)) + 1e-3;
    for (size_t u = 0; u < n; u++) {
      double e = 0;
      recon(w, out->feat + u * F, hbuf, y);
      for (int f = 0; f < F; f++) {
        double r = (y[f] - out->feat[u * F + f]) / rms[f];
        e += r * r;
      }
      sorted[u] = out->score[u] = (float)(e / F);
    }
    qsort(sorted, n, sizeof(float), cmp_f);
    float cut = sorted[n - 1 - n / 10];
    for (size_t u = 0; u < n; u++)
      use[u] = out->score[u] <= cut;
  }
  out->seconds = hr__now_s() - t0;
done:
  free(use);
  free(sorted);
  hr_csr_free(&h);
  if (rc != 0)
    hr_anomaly_free(out);
  return rc;
}

/* Users by descending score (ties: index). */
static int cmp_desc(const void *a, const void *b, void *arg) {
  const float *sc = arg;
  size_t x = *(const size_t *)a, y = *(const size_t *)b;
  if (sc[x] != sc[y])
    return sc[x] > sc[y] ? -1 : 1;
  return x < y ? -1 : x > y;
}

static size_t *ranked(const hr_anomaly_t *a) {
  size_t *r = malloc(sizeof(size_t) * (a->n_users + 1));
  if (r == NULL)
    return NULL;
  for (size_t u = 0; u < a->n_users; u++)
    r[u] = u;
  qsort_r(r, a->n_users, sizeof(size_t), cmp_desc, a->score);
  return r;
}

json_t *hr_anomaly_report(const hr_anomaly_t *a, const hr_dataset_t *ds,
                          size_t top) {
  size_t *r = ranked(a);
  json_t *users = json_array();
  for (size_t k = 0; r != NULL && k < top && k < a->n_users; k++) {
    size_t u = r[k];
    const float *z = a->feat + u * F;
    json_t *feat = json_object();
    for (int f = 0; f < F; f++) /* the profile's standardised values */
      json_object_set_new(feat, hr_anom_feature_names[f],
                          json_real(round(z[f] * 100) / 100));
    json_array_append_new(
        users, json_pack("{ss sf so}", "user_id",
                         hr_idmap_str(ds->users, u), "score",
                         (double)a->score[u], "profile", feat));
  }
  free(r);
  return json_pack("{ss si so}", "method",
                   "reconstruction error of an autoencoder over each user's "
                   "behaviour profile (docs/training.md)",
                   "users_scored", (int)a->n_users, "most_anomalous", users);
}

int hr_anomaly_drop(hr_dataset_t *ds, const hr_anomaly_t *a, double q,
                    size_t *dropped) {
  size_t *r = ranked(a), nd = (size_t)(q * (double)a->n_users + 0.5), w = 0;
  unsigned char *out = calloc(a->n_users + 1, 1);
  if (r == NULL || out == NULL) {
    free(r);
    free(out);
    return HR_ENOMEM;
  }
  for (size_t k = 0; k < nd && k < a->n_users; k++)
    out[r[k]] = 1;
  for (size_t i = 0; i < ds->n; i++) {
    if (out[ds->u[i]])
      continue;
    ds->u[w] = ds->u[i];
    ds->i[w] = ds->i[i];
    ds->ts[w] = ds->ts[i];
    if (ds->cv != NULL)
      memmove(ds->cv + w * HR_DS_CTX, ds->cv + i * HR_DS_CTX,
              sizeof(int32_t) * HR_DS_CTX);
    w++;
  }
  ds->n = w;
  *dropped = nd < a->n_users ? nd : a->n_users;
  free(r);
  free(out);
  return 0;
}
