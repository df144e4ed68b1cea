/* test_seq.c -- the sequential network end to end: the gradient of the
 * batch loss (hr_seq_batch_grad: shared forward, then the trainer's
 * backward through every layer, embeddings, time gaps and dropout mask)
 * against central finite differences for every parameter of a small
 * network; and training that lowers the loss deterministically. */
#include "test.h"

#include "hr/lab.h"
#include "lib/models.h"

#include <math.h>
#include <string.h>
#include <stdlib.h>
#include <stdio.h>
#include <sys/stat.h>

static uint64_t st = 99;

static float urand(void) {
  st = st * 6364136223846793005ull + 1442695040888963407ull;
  return (float)((double)(st >> 11) * (1.0 / 9007199254740992.0)) * 2 - 1;
}

/* The whole network's gradient (shared forward, then the trainer's
 * backward through every layer, embeddings, time gaps and a dropout mask)
 * against central differences for every parameter; `neg` > 0 goes through
 * the sampled softmax with that many negatives, re-drawn from the same
 * seed before every call (the same draws each time). */
static double grad_loss(hr_seq_work_t *wk, const hr_seq_dims_t *dm, float *w,
                        float *g, const float *mask, int ctx) {
  static const size_t off[3] = {0, 4, 7}; /* two sequences: 4 and 3 rows */
  static const int32_t inp[7] = {0, 3, 5, 2, 6, 1, 4},
                       tgt[7] = {3, 5, 2, 1, 1, 4, 0},
                       gin[7] = {0, 3, 9, 1, 0, 5, 12},
                       qg[7] = {3, 9, 1, 7, 5, 12, 2};
  /* context: two slots per row (-1: no value), rows of a 4-value table
   * held after the network's parameters */
  static const int32_t crow[14] = {0, 2, 1, -1, 0, 3, -1, -1,
                                   1, 2, 0, 3, 1, 2};
  size_t np = hr_seq_param_count(dm);
  hr_seq_work_context(wk, w + np, g ? g + np : NULL, crow, ctx ? 2 : 0);
  hr_seq_work_seed(wk, 777);
  return hr_seq_batch_grad(dm, w, inp, tgt, gin, qg, off, 2, mask, g, wk);
}

static int grad_check_dims(hr_seq_dims_t dm, int neg, int ctx) {
  size_t np = hr_seq_param_count(&dm) + (ctx ? 4 * 8 : 0), worst_i = 0;
  float *w = malloc(sizeof(float) * np), *g = calloc(np, sizeof(float));
  float mask[5 * 7 * 8]; /* embeddings + 2 per block */
  double worst = 0;
  hr_seq_work_t *wk = hr_seq_work_new(&dm, 2);

  ASSERT_NOT_NULL(w);
  ASSERT_NOT_NULL(g);
  ASSERT_NOT_NULL(wk);
  if (neg > 0)
    ASSERT_EQ(hr_seq_work_negatives(wk, &dm, neg, 12345), 0);
  for (size_t i = 0; i < np; i++)
    w[i] = 0.5f * urand();
  ASSERT_EQ(hr_seq_mask_floats(&dm, 7), (size_t)(1 + 2 * dm.blocks) * 7 * 8);
  for (int i = 0; i < 5 * 7 * 8; i++) /* dropout: some zeros, rest scaled */
    mask[i] = i % 5 == 0 ? 0.0f : 1.25f;
  double l0 = grad_loss(wk, &dm, w, g, mask, ctx);
  ASSERT(l0 > 0 && isfinite(l0));
  for (size_t i = 0; i < np; i++) {
    const float h = 1e-3f;
    float keep = w[i];
    w[i] = keep + h;
    double lp = grad_loss(wk, &dm, w, NULL, mask, ctx);
    w[i] = keep - h;
    double lm = grad_loss(wk, &dm, w, NULL, mask, ctx);
    w[i] = keep;
    double num = (lp - lm) / (2.0 * h);
    double err = fabs(num - g[i]) / fmax(1e-2, fabs(num) + fabs(g[i]));
    if (err > worst) {
      worst = err;
      worst_i = i;
    }
  }
  ASSERT_MSG(worst < 1e-2, "worst relative gradient error %.4g at parameter "
             "%zu of %zu (analytic %.6g)", worst, worst_i, np, g[worst_i]);
  hr_seq_work_free(wk);
  free(w);
  free(g);
  return 0;
}

static int grad_check(int neg, int ctx) {
  hr_seq_dims_t dm = {.d = 8, .L = 5, .blocks = 2, .ffn = 6, .n_items = 7,
                      .n_gap = HR_SEQ_GAPS};
  return grad_check_dims(dm, neg, ctx);
}

HR_TEST(seq_gradient_matches_finite_differences) { return grad_check(0, 0); }

/* The GRU encoder in the transformer's place: its gates, the state
 * carried through time, the input weights; with context features. */
HR_TEST(seq_gru_gradient_matches_finite_differences) {
  hr_seq_dims_t dm = {.d = 8, .L = 5, .ffn = 6, .n_items = 7,
                      .n_gap = HR_SEQ_GAPS, .enc = HR_SEQ_GRU};
  return grad_check_dims(dm, 0, 1);
}

/* The Caser-style CNN: horizontal filters of heights 1..3 with their
 * max-pooling (the 4-row sequence is longer than the window), vertical
 * filters, the linear layer; and through the sampled softmax. */
HR_TEST(seq_cnn_gradient_matches_finite_differences) {
  hr_seq_dims_t dm = {.d = 8, .L = 5, .ffn = 6, .n_items = 7,
                      .n_gap = HR_SEQ_GAPS, .enc = HR_SEQ_CNN, .win = 3,
                      .nh = 2, .nv = 2};
  ASSERT(grad_check_dims(dm, 0, 0) == 0);
  return grad_check_dims(dm, 4, 1);
}

/* With context features: the context values' vectors too. */
HR_TEST(seq_context_gradient_matches_finite_differences) {
  return grad_check(0, 1);
}

/* Sampled softmax: 4 uniform negatives (a draw equal to a row's target is
 * masked). */
HR_TEST(seq_sampled_gradient_matches_finite_differences) {
  return grad_check(4, 0);
}

/* hr_seq_embed computes the last block for the newest row alone; its user
 * vector equals the full forward's newest row (+ the request gap's
 * vector), for 0, 1 and 3 blocks and sequences of 1 to 9 rows. */
HR_TEST(seq_embed_equals_the_full_forward) {
  /* blocks 0, 1, 3; then a GRU (4) and a CNN over 4 rows (5) */
  for (int blocks = 0; blocks <= 5; blocks += blocks == 1 ? 2 : 1) {
    int enc = blocks == 4 ? HR_SEQ_GRU : blocks == 5 ? HR_SEQ_CNN : 0;
    hr_seq_dims_t dm = {.d = 8, .L = 9, .blocks = enc ? 0 : blocks,
                        .ffn = 6, .n_items = 11, .n_gap = HR_SEQ_GAPS,
                        .enc = enc, .win = 4, .nh = 2, .nv = 3};
    size_t np = hr_seq_param_count(&dm);
    float *w = malloc(sizeof(float) * np);
    float *buf = malloc(sizeof(float) * hr_seq_embed_floats(&dm));
    float *full = malloc(sizeof(float) * hr_seq_embed_floats(&dm));
    hr_seq_params_t p;
    ASSERT(w && buf && full);
    for (size_t i = 0; i < np; i++)
      w[i] = 0.5f * urand();
    hr_seq_bind(&dm, w, &p);
    for (int n = 1; n <= 9; n++) {
      int32_t items[9], gaps[9];
      int64_t ts[9];
      float u[8], ref[8];
      size_t off[2] = {0, (size_t)n};
      hr_seq_acts_t a;
      for (int t = 0; t < n; t++) {
        items[t] = (t * 7 + n) % 11;
        ts[t] = 1000000 + 600 * t * t;
        gaps[t] = t > 0 ? hr_seq_gap_bucket(ts[t] - ts[t - 1], 1) : 0;
      }
      hr_seq_embed(&dm, &p, items, ts, (size_t)n, ts[n - 1] + 7200, buf, u);
      hr_seq_acts_bind(&dm, (size_t)n, &n, 1, full, &a);
      hr_seq_forward(&dm, &p, items, gaps, off, 1, NULL, &a);
      hr_seq_user_out(&dm, &p, a.y + (size_t)(n - 1) * 8,
                      hr_seq_gap_bucket(7200, 1), ref);
      for (int c = 0; c < 8; c++)
        ASSERT_MSG(fabsf(u[c] - ref[c]) <= 1e-5f * (1 + fabsf(ref[c])),
                   "blocks %d, %d rows, column %d: %g vs %g", blocks, n, c,
                   u[c], ref[c]);
    }
    free(w);
    free(buf);
    free(full);
  }
  return 0;
}

/* Users walk a cycle of 6 items (each from their own starting point):
 * the next item is always the successor, which training must learn. Two
 * fits with the same seed give identical weights. */
HR_TEST(seq_fit_learns_a_cycle_deterministically) {
  enum { NU = 24, NI = 6, LEN = 9 };
  hr_csr_t h = {0};
  hr_seq_opts_t o;
  hr_seq_fit_t a = {0}, b = {0};
  hr_error_t err = {0};
  float u[16], buf[4096];
  int ok = 0;

  h.n_users = NU;
  h.n_items = NI;
  h.ptr = calloc(NU + 1, sizeof(uint64_t));
  h.items = malloc(sizeof(int32_t) * NU * LEN);
  h.ts = malloc(sizeof(int64_t) * NU * LEN);
  ASSERT(h.ptr && h.items && h.ts);
  for (int us = 0; us < NU; us++) {
    for (int t = 0; t < LEN; t++) {
      h.items[us * LEN + t] = (us + t) % NI;
      h.ts[us * LEN + t] = 1000000 + 600 * t;
    }
    h.ptr[us + 1] = (uint64_t)(us + 1) * LEN;
  }
  hr_seq_opts_default(&o);
  o.dims.d = 16;
  o.dims.L = 8;
  o.dims.ffn = 16;
  o.epochs = 60;
  o.batch = 8;
  o.lr = 0.01f;
  o.dropout = 0;
  o.threads = 1;
  ASSERT_EQ(hr_seq_fit(&h, &o, &a, &err), 0);
  ASSERT_EQ(hr_seq_fit(&h, &o, &b, &err), 0);
  ASSERT(memcmp(a.m[0].w, b.m[0].w, sizeof(float) * hr_seq_param_count(&a.dims)) == 0);
  ASSERT_MSG(a.loss < 0.5, "loss %.3f after training (log 6 = 1.79 at "
             "chance)", a.loss);
  /* After ... 2, 3, 4 the best item is 5. */
  for (int start = 0; start < NI; start++) {
    int32_t hist[4];
    int64_t ts[4];
    for (int t = 0; t < 4; t++) {
      hist[t] = (start + t) % NI;
      ts[t] = 1000000 + 600 * t;
    }
    ASSERT(hr_seq_acts_floats(&a.dims, 8, (int[]){8}, 1) <= 4096);
    hr_seq_user_vector(&a, hist, ts, 4, ts[3] + 600, buf, u);
    int best = 0;
    float bs = -1e30f;
    for (int i = 0; i < NI; i++) {
      float sc = 0;
      for (int c = 0; c < 16; c++)
        sc += u[c] * a.items[i * 16 + c];
      if (sc > bs) {
        bs = sc;
        best = i;
      }
    }
    ok += best == (start + 4) % NI;
  }
  ASSERT_EQ(ok, NI);
  hr_seq_fit_free(&a);
  hr_seq_fit_free(&b);
  hr_csr_free(&h);
  return 0;
}

/* ------------------------------------------------ one forward, two users */

/* A small sequential model trained on generated data and written as a
 * version directory <tmp>/seqm/1; the fit and the dataset stay open. */
typedef struct {
  hr_dataset_t ds;
  hr_csr_t h;
  hr_seq_opts_t o;
  hr_seq_fit_t f;
  hr_ials_t lt;            /* the long-term part when with_lt */
  char dir[512];
} seq_fixture_t;

/* members networks (seeds 1, 2, ...) with encoder enc, with a long-term
 * part or not */
static int seq_fixture_e(seq_fixture_t *x, int with_lt, int members,
                         int enc) {
  char gdir[512], csv[600];
  hr_gen_opts_t g = {200, 80, 4000, 5, 1.0, 0};
  hr_error_t err = {0};

  memset(x, 0, sizeof(*x));
  snprintf(gdir, sizeof(gdir), "%s/seqgen", hr_test_tmpdir());
  snprintf(csv, sizeof(csv), "%s/events.csv", gdir);
  snprintf(x->dir, sizeof(x->dir), "%s/seqm%d_%d_%d", hr_test_tmpdir(),
           with_lt, members, enc);
  mkdir(x->dir, 0755);
  strcat(x->dir, "/1");
  mkdir(x->dir, 0755);
  hrt_small_seq_opts(&x->o);
  x->o.index = 1;
  x->o.long_term = with_lt ? 2.5f : 0;
  x->o.lt_opts.factors = 8;
  x->o.lt_opts.iters = 3;
  x->o.members = members;
  x->o.dims.enc = enc;
  if (enc != HR_SEQ_TRANSFORMER)
    x->o.dims.blocks = 0;
  x->o.dims.win = 3;
  x->o.dims.nh = 4;
  x->o.dims.nv = 2;
  if (hr_gen_write(gdir, &g, &err) != 0 || hr_dataset_init(&x->ds) != 0 ||
      hr_data_read_csv(&x->ds, csv, &err) != 0 ||
      hr_dataset_histories(&x->ds, &x->h) != 0 ||
      hr_seq_fit(&x->h, &x->o, &x->f, &err) != 0 ||
      (with_lt && hr_ials_fit(&x->h, &x->o.lt_opts, &x->lt, &err) != 0) ||
      hr_seq_write_files(x->dir, &x->ds, &x->h, &x->f,
                         with_lt ? &x->lt : NULL, &x->o, "seqm", 1,
                         &err) != 0) {
    fprintf(stderr, "seq_fixture: %s\n", err.msg);
    return -1;
  }
  return 0;
}

static int seq_fixture_m(seq_fixture_t *x, int with_lt, int members) {
  return seq_fixture_e(x, with_lt, members, HR_SEQ_TRANSFORMER);
}

static int seq_fixture_lt(seq_fixture_t *x, int with_lt) {
  return seq_fixture_m(x, with_lt, 1);
}

static int seq_fixture(seq_fixture_t *x) { return seq_fixture_lt(x, 0); }

static void seq_fixture_free(seq_fixture_t *x) {
  hr_ials_free(&x->lt);
  hr_seq_fit_free(&x->f);
  hr_csr_free(&x->h);
  hr_dataset_free(&x->ds);
}

/* The server's user vector (hr_model_user_vector on the loaded version:
 * stored history + Redis-style recent events, newest first) equals, bit
 * for bit, the trainer's (hr_seq_user_vector on the same sequence), and
 * so do the item scores; for the fixture's model, without a long-term
 * part (x is the caller's). */
static int server_matches_trainer(seq_fixture_t *xp) {
#define x (*xp)
  hr_error_t err = {0};
  hr_model_t *m;
  size_t d = (size_t)x.f.width, ni, checked = 0;
  float *buf, us[64], ut[64], u0[64], *ss, *st_;

  ASSERT(d <= 64);
  m = hr_model_open(x.dir, &err);
  ASSERT_MSG(m != NULL, "open: %s", err.msg);
  ASSERT_STR_EQ(hr_model_kind(m), "seq");
  ni = hr_model_n_items(m);
  buf = malloc(sizeof(float) * hr_seq_embed_floats(&x.f.dims));
  ss = malloc(sizeof(float) * ni);
  st_ = malloc(sizeof(float) * ni);
  ASSERT(buf && ss && st_);
  for (long u = 0; u < 40 && (size_t)u < x.h.n_users; u++) {
    size_t n = x.h.ptr[u + 1] - x.h.ptr[u], nt = 0;
    const int32_t *hi = x.h.items + x.h.ptr[u];
    const int64_t *ht = x.h.ts + x.h.ptr[u];
    int64_t now = ht[n - 1] + 3600;
    int32_t seq[1024];
    int64_t sts[1024];
    long recent[2];
    int64_t rts[2];

    ASSERT(n > 1 && n + 2 <= 1024);
    /* Nothing new since training. */
    hr_history_t none = {NULL, 0, NULL, now, NULL, NULL, 0};
    ASSERT_EQ(hr_model_user_vector(m, u, &none, us), 0);
    hr_seq_user_vector(&x.f, hi, ht, n, now, buf, ut);
    ASSERT_MSG(memcmp(us, ut, sizeof(float) * d) == 0, "user %ld, no recent",
               u);
    memcpy(u0, us, sizeof(float) * d);

    /* Two new events, newest first: an item the user already had (it
     * moves to the end of the sequence) and one of unknown time. */
    recent[0] = (u * 7 + 3) % (long)ni;
    rts[0] = -1;
    recent[1] = hi[0];
    rts[1] = now - 60;
    if (recent[0] == recent[1])
      recent[0] = (recent[0] + 1) % (long)ni;
    for (size_t j = 0; j < n; j++)
      if (hi[j] != recent[0] && hi[j] != recent[1]) {
        seq[nt] = hi[j];
        sts[nt++] = ht[j];
      }
    seq[nt] = (int32_t)recent[1];
    sts[nt++] = rts[1];
    seq[nt] = (int32_t)recent[0];
    sts[nt++] = rts[0];
    hr_history_t h = {recent, 2, rts, now, NULL, NULL, 0};
    ASSERT_EQ(hr_model_user_vector(m, u, &h, us), 0);
    hr_seq_user_vector(&x.f, seq, sts, nt, now, buf, ut);
    ASSERT_MSG(memcmp(us, ut, sizeof(float) * d) == 0,
               "user %ld, with recent", u);
    /* the new events change the vector (and so the next answer) */
    ASSERT_MSG(memcmp(us, u0, sizeof(float) * d) != 0, "user %ld", u);

    /* Scores: the server's against the trainer's item table + prior. */
    hr_model_score_items(m, us, ss);
    for (size_t i = 0; i < ni; i++) {
      float s = 0;
      for (size_t c = 0; c < d; c++)
        s += ut[c] * x.f.items[i * d + c];
      st_[i] = s + hr_model_item_prior(m)[i];
    }
    for (size_t i = 0; i < ni; i++)
      ASSERT_MSG(fabsf(ss[i] - st_[i]) <= 1e-5f * (1 + fabsf(st_[i])),
                 "user %ld item %zu: %g vs %g", u, i, ss[i], st_[i]);
    checked++;
  }
  ASSERT(checked >= 20);
  /* A user with no history at all: zeros, so the prior alone ranks. */
  {
    hr_history_t none = {NULL, 0, NULL, 0, NULL, NULL, 0};
    ASSERT_EQ(hr_model_user_vector(m, -1, &none, us), 0);
    for (size_t c = 0; c < d; c++)
      ASSERT(us[c] == 0.0f);
  }
  free(buf);
  free(ss);
  free(st_);
  hr_model_free(m);
  return 0;
#undef x
}

HR_TEST(seq_server_forward_matches_trainer) {
  seq_fixture_t x;
  int rc;
  ASSERT_EQ(seq_fixture(&x), 0);
  rc = server_matches_trainer(&x);
  seq_fixture_free(&x);
  return rc;
}

/* The GRU and the CNN encoders the same way: written (params.encoder,
 * window, filters_h, filters_v), loaded, and served as trained; a CNN
 * in an ensemble of two. */
HR_TEST(seq_gru_and_cnn_served_as_trained) {
  for (int enc = HR_SEQ_GRU; enc <= HR_SEQ_CNN; enc++) {
    seq_fixture_t x;
    ASSERT_EQ(seq_fixture_e(&x, 0, enc == HR_SEQ_CNN ? 2 : 1, enc), 0);
    if (server_matches_trainer(&x) != 0)
      return 1;
    hr_error_t err = {0};
    hr_model_t *m = hr_model_open(x.dir, &err);
    ASSERT_MSG(m != NULL, "open: %s", err.msg);
    json_t *pa = json_object_get((json_t *)hr_model_manifest(m), "params");
    ASSERT_STR_EQ(json_string_value(json_object_get(pa, "encoder")),
                  hr_seq_enc_name(enc));
    ASSERT_EQ(json_object_get(pa, "window") != NULL, enc == HR_SEQ_CNN);
    hr_model_free(m);
    seq_fixture_free(&x);
  }
  return 0;
}

/* An ensemble (params.members 3): the server runs the three networks and
 * its user vector is [u^1 | u^2 | u^3] against item rows [v^1 | v^2 |
 * v^3], equal to the trainer's; member k is the network a single fit with
 * seed 1 + k gives, bit for bit. */
HR_TEST(seq_ensemble_server_matches_trainer) {
  seq_fixture_t x;
  hr_seq_fit_t one = {0};
  hr_error_t err = {0};
  float buf[16384], ue[48], u1[16];

  ASSERT_EQ(seq_fixture_m(&x, 0, 3), 0);
  if (server_matches_trainer(&x) != 0)
    return 1;
  ASSERT_EQ(x.f.members, 3);
  ASSERT_EQ(x.f.width, 48);
  ASSERT(hr_seq_embed_floats(&x.f.dims) <= sizeof(buf) / sizeof(buf[0]));
  x.o.members = 1;
  x.o.seed = 2; /* member 1 of the ensemble */
  ASSERT_EQ(hr_seq_fit(&x.h, &x.o, &one, &err), 0);
  for (long u = 0; u < 10; u++) {
    size_t n = x.h.ptr[u + 1] - x.h.ptr[u];
    const int32_t *hi = x.h.items + x.h.ptr[u];
    const int64_t *ht = x.h.ts + x.h.ptr[u];
    hr_seq_user_vector(&x.f, hi, ht, n, ht[n - 1] + 60, buf, ue);
    hr_seq_user_vector(&one, hi, ht, n, ht[n - 1] + 60, buf, u1);
    ASSERT_MSG(memcmp(ue + 16, u1, sizeof(u1)) == 0, "user %ld", u);
    ASSERT(memcmp(ue, u1, sizeof(u1)) != 0); /* member 0: another seed */
  }
  for (size_t i = 0; i < x.h.n_items; i++)
    ASSERT(memcmp(x.f.items + i * 48 + 16, one.items + i * 16,
                  16 * sizeof(float)) == 0);
  hr_seq_fit_free(&one);
  seq_fixture_free(&x);
  return 0;
}

/* With two threads the members train side by side, each on one OpenBLAS
 * thread: twice the same weights, and member k is exactly the network a
 * single fit with seed 1 + k and one thread gives. */
HR_TEST(seq_members_train_in_parallel_deterministically) {
  seq_fixture_t x;
  hr_seq_fit_t a = {0}, b = {0}, one = {0};
  hr_error_t err = {0};

  ASSERT_EQ(seq_fixture(&x), 0); /* the data and options */
  x.o.members = 2;
  x.o.threads = 2;
  ASSERT_EQ(hr_seq_fit(&x.h, &x.o, &a, &err), 0);
  ASSERT_EQ(hr_seq_fit(&x.h, &x.o, &b, &err), 0);
  ASSERT_EQ(a.members, 2);
  for (int k = 0; k < 2; k++)
    ASSERT(memcmp(a.m[k].w, b.m[k].w,
                  sizeof(float) * hr_seq_param_count(&a.dims)) == 0);
  x.o.members = 1;
  x.o.threads = 1;
  x.o.seed = 2;
  ASSERT_EQ(hr_seq_fit(&x.h, &x.o, &one, &err), 0);
  ASSERT(memcmp(a.m[1].w, one.m[0].w,
                sizeof(float) * hr_seq_param_count(&a.dims)) == 0);
  ASSERT(memcmp(a.m[0].w, one.m[0].w,
                sizeof(float) * hr_seq_param_count(&a.dims)) != 0);
  hr_seq_fit_free(&a);
  hr_seq_fit_free(&b);
  hr_seq_fit_free(&one);
  seq_fixture_free(&x);
  return 0;
}

/* An ensemble wider than the server loads (8 x 129 > HR_MODEL_MAX_DIM) is
 * refused by the writer, before anything is published. */
HR_TEST(seq_writer_refuses_a_model_too_wide_to_load) {
  seq_fixture_t x;
  hr_seq_fit_t f = {0};
  hr_error_t err = {0};
  char dir[600];

  ASSERT_EQ(seq_fixture(&x), 0); /* the data and options */
  x.o.members = 8;
  x.o.dims.d = 129;
  x.o.epochs = 1;
  ASSERT_EQ(hr_seq_fit(&x.h, &x.o, &f, &err), 0);
  ASSERT_EQ(f.width, 8 * 129);
  snprintf(dir, sizeof(dir), "%s/seqwide", hr_test_tmpdir());
  mkdir(dir, 0755);
  ASSERT(hr_seq_write(dir, &x.ds, &x.h, &f, NULL, &x.o, NULL, NULL, NULL, 0,
                      &err) != 0);
  ASSERT_MSG(strstr(err.msg, "widest a server loads") != NULL, "%s", err.msg);
  hr_seq_fit_free(&f);
  seq_fixture_free(&x);
  return 0;
}

/* Context features: fit learns a vector per context value (the prior's
 * rows, from the generated data's location / mood / device); the written
 * version carries them (seq_ctx, params.context_features), and the
 * server's user vector in a context equals the trainer's vector plus
 * those rows, bit for bit. Different contexts give different vectors.
 * For one network and for an ensemble of two (each its own rows). */
static int context_matches(int members) {
  seq_fixture_t x;
  hr_ctx_prior_t cp = {0};
  int32_t *rows = NULL;
  hr_error_t err = {0};
  hr_model_t *m;
  size_t wd = 16 * (size_t)members;
  float buf[16384], us[32], ut[32], ug[32];
  char gdir[512], csv[600];
  hr_gen_opts_t g = {200, 80, 4000, 5, 1.0, 0};

  memset(&x, 0, sizeof(x));
  snprintf(gdir, sizeof(gdir), "%s/seqgen", hr_test_tmpdir());
  snprintf(csv, sizeof(csv), "%s/events.csv", gdir);
  snprintf(x.dir, sizeof(x.dir), "%s/seqctx%d", hr_test_tmpdir(), members);
  mkdir(x.dir, 0755);
  strcat(x.dir, "/1");
  mkdir(x.dir, 0755);
  hrt_small_seq_opts(&x.o);
  x.o.long_term = 0;
  x.o.members = members;
  ASSERT(wd <= 32);
  ASSERT_EQ(hr_gen_write(gdir, &g, &err), 0);
  ASSERT_EQ(hr_dataset_init(&x.ds), 0);
  ASSERT_EQ(hr_data_read_csv(&x.ds, csv, &err), 0);
  ASSERT_EQ(hr_dataset_histories(&x.ds, &x.h), 0);
  ASSERT_EQ(hr_ctx_prior_fit(&x.ds, x.h.n_items, NULL, 20.0f, &cp), 0);
  ASSERT_EQ(cp.n_fields, 3); /* location, mood, device */
  ASSERT_EQ(hr_ctx_prior_history_rows(&cp, &x.ds, &x.h, &rows), 0);
  x.o.ctx_rows = rows;
  x.o.ctx_slots = (int)cp.n_fields;
  x.o.ctx_values = cp.n_values;
  x.o.ctx_prior = &cp;
  ASSERT_EQ(hr_seq_fit(&x.h, &x.o, &x.f, &err), 0);
  ASSERT_NOT_NULL(x.f.ctx);
  ASSERT_EQ(hr_seq_write_files(x.dir, &x.ds, &x.h, &x.f, NULL, &x.o, "seqc",
                               1, &err),
            0);
  m = hr_model_open(x.dir, &err);
  ASSERT_MSG(m != NULL, "open: %s", err.msg);
  ASSERT(hr_seq_embed_floats(&x.f.dims) <= sizeof(buf) / sizeof(buf[0]));

  static const char *const names[] = {"location", "mood", "tz", "device"};
  static const char *const gym[] = {"gym", "energetic", "UTC", "mobile"};
  static const char *const home[] = {"home", "tired", "UTC", NULL};
  int moved = 0;
  for (long u = 0; u < 20; u++) {
    size_t n = x.h.ptr[u + 1] - x.h.ptr[u];
    const int32_t *hi = x.h.items + x.h.ptr[u];
    const int64_t *ht = x.h.ts + x.h.ptr[u];
    int64_t now = ht[n - 1] + 3600;
    const char *const *vals[2] = {gym, home};
    for (int k = 0; k < 2; k++) {
      hr_history_t h = {NULL, 0, NULL, now, names, vals[k], 4};
      ASSERT_EQ(hr_model_user_vector(m, u, &h, us), 0);
      hr_seq_user_vector(&x.f, hi, ht, n, now, buf, ut);
      /* the trainer's side: the prior's row of each known value */
      for (size_t f = 0; f < cp.n_fields; f++)
        for (int q = 0; q < 4; q++) {
          if (vals[k][q] == NULL || strcmp(cp.field[f], names[q]) != 0)
            continue;
          const hr_idmap_t *vm = x.ds.ctx_vals[cp.col[f]];
          long v = hr_idmap_find(vm, vals[k][q], strlen(vals[k][q]));
          ASSERT(v >= 0);
          hr_seq_add_context(ut, x.f.ctx + (cp.off[f] + (size_t)v) * wd, wd);
        }
      ASSERT_MSG(memcmp(us, ut, sizeof(float) * wd) == 0,
                 "user %ld context %d", u, k);
      if (k == 0)
        memcpy(ug, us, sizeof(float) * wd);
      else
        moved += memcmp(ug, us, sizeof(float) * wd) != 0;
    }
  }
  ASSERT_EQ(moved, 20);
  free(rows);
  hr_ctx_prior_free(&cp);
  hr_model_free(m);
  seq_fixture_free(&x);
  return 0;
}

HR_TEST(seq_context_features_server_matches_trainer) {
  if (context_matches(1) != 0)
    return 1;
  return context_matches(2);
}

/* eval --protocol last on a small generated log: both the model with
 * context features and the ablation run (and, under ASan, stay in bounds),
 * score every user with 3 or more items, and differ. With --tie-shuffle
 * the context rows move with their items. */
HR_TEST(seq_eval_last_with_and_without_context) {
  char gdir[512], csv[600];
  hr_gen_opts_t g = {200, 80, 4000, 5, 1.0, 0};
  hr_seq_opts_t o;
  hr_eval_result_t a, b, c;
  hr_error_t err = {0};

  snprintf(gdir, sizeof(gdir), "%s/seqlast", hr_test_tmpdir());
  snprintf(csv, sizeof(csv), "%s/events.csv", gdir);
  ASSERT_EQ(hr_gen_write(gdir, &g, &err), 0);
  hrt_small_seq_opts(&o);
  o.long_term = 0;
  ASSERT_EQ(hr_eval_last_seq(csv, NULL, 0, &o, 0, NULL, &a, &err), 0);
  ASSERT_EQ(hr_eval_last_seq(csv, NULL, 0, &o, 1, NULL, &b, &err), 0);
  o.tie_shuffle = 1;
  ASSERT_EQ(hr_eval_last_seq(csv, NULL, 1, &o, 0, NULL, &c, &err), 0);
  ASSERT(a.users >= 150 && a.users == b.users && c.users == a.users);
  ASSERT(a.ndcg > 0 && b.ndcg > 0 && c.ndcg > 0);
  ASSERT(a.ndcg != b.ndcg);
  return 0;
}

/* A seq version whose manifest disagrees with its weights is refused. */
HR_TEST(seq_model_refuses_inconsistent_params) {
  seq_fixture_t x;
  hr_error_t err = {0};
  char path[700];
  static const char *const bad[][2] = {
      {"\"len\": 12", "\"len\": 11"},      /* seq_rest size no longer fits */
      {"\"gaps\": 24", "\"gaps\": 5"},     /* neither 0 nor 24 */
      {"\"blocks\": 2", "\"blocks\": 9"},  /* over the limit */
      {"\"kind\": \"seq\"", "\"kind\": \"sek\""},
      /* context features without a context prior (nor seq_ctx) */
      {"\"len\": 12", "\"context_features\": true, \"len\": 12"},
      {"\"len\": 12", "\"context_features\": 1, \"len\": 12"},
      /* members: 16 columns do not split in 3; 2 x 8 does not fit
       * seq_rest; over the limit */
      {"\"len\": 12", "\"members\": 3, \"len\": 12"},
      {"\"len\": 12", "\"members\": 2, \"len\": 12"},
      {"\"len\": 12", "\"members\": 9, \"len\": 12"},
      /* an unknown encoder; a GRU with the transformer's blocks; a CNN
       * without its window */
      {"\"len\": 12", "\"encoder\": \"lstm\", \"len\": 12"},
      {"\"len\": 12", "\"encoder\": 2, \"len\": 12"},
      {"\"len\": 12", "\"encoder\": \"gru\", \"len\": 12"},
      {"\"len\": 12", "\"encoder\": \"cnn\", \"len\": 12"},
  };

  ASSERT_EQ(seq_fixture(&x), 0);
  snprintf(path, sizeof(path), "%s/manifest.json", x.dir);
  for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
    FILE *fp = fopen(path, "rb");
    char text[8192], *at;
    size_t n;
    ASSERT_NOT_NULL(fp);
    n = fread(text, 1, sizeof(text) - 1, fp);
    fclose(fp);
    text[n] = '\0';
    at = strstr(text, bad[k][0]);
    ASSERT_MSG(at != NULL, "manifest lacks %s", bad[k][0]);
    char *edited = malloc(n + 64);
    ASSERT_NOT_NULL(edited);
    snprintf(edited, n + 64, "%.*s%s%s", (int)(at - text), text, bad[k][1],
             at + strlen(bad[k][0]));
    fp = fopen(path, "wb");
    ASSERT_NOT_NULL(fp);
    fputs(edited, fp);
    fclose(fp);
    hr_model_t *m = hr_model_open(x.dir, &err);
    ASSERT_MSG(m == NULL, "accepted %s", bad[k][1]);
    ASSERT(err.code == HR_EFORMAT);
    fp = fopen(path, "wb"); /* restore */
    ASSERT_NOT_NULL(fp);
    fputs(text, fp);
    fclose(fp);
    free(edited);
    hr_model_t *ok = hr_model_open(x.dir, &err);
    ASSERT_MSG(ok != NULL, "restored manifest refused: %s", err.msg);
    hr_model_free(ok);
  }
  seq_fixture_free(&x);
  return 0;
}

/* The item tower: even users only take items of category "a", odd users
 * items of "b". Items c0, c2 ("a") and c1 ("b") have attributes and no
 * interaction: they are kept out of the softmax and get their attribute
 * vector alone (c0 and c2 the same one), which ranks the cold "a" items
 * above the cold "b" item for even users and below it for odd users. */
HR_TEST(seq_item_tower_ranks_cold_items_by_attributes) {
  hr_dataset_t ds;
  hr_csr_t h = {0};
  hr_item_tokens_t tok = {0};
  hr_seq_opts_t o;
  hr_seq_fit_t f = {0};
  hr_error_t err = {0};
  char path[600], id[32], uid[32];
  FILE *fp;
  float u[16], buf[8192];
  int right = 0, users = 0;

  snprintf(path, sizeof(path), "%s/tower-items.csv", hr_test_tmpdir());
  fp = fopen(path, "w");
  ASSERT_NOT_NULL(fp);
  fputs("item_id,category\n", fp);
  for (int i = 0; i < 20; i++)
    fprintf(fp, "w%d,%s\n", i, i < 10 ? "a" : "b");
  fputs("c0,a\nc1,b\nc2,a\n", fp);
  fclose(fp);
  ASSERT_EQ(hr_dataset_init(&ds), 0);
  ASSERT_EQ(hr_data_read_items(&ds, path, &err), 0);
  for (int us = 0; us < 40; us++)
    for (int t = 0; t < 8; t++) {
      int it = (us % 2) * 10 + (us * 3 + t * 7) % 10;
      snprintf(uid, sizeof(uid), "u%d", us);
      snprintf(id, sizeof(id), "w%d", it);
      ASSERT_EQ(hr_dataset_add(&ds, uid, strlen(uid), id, strlen(id),
                               1000000 + 600 * t),
                0);
    }
  ASSERT_EQ(hr_dataset_histories(&ds, &h), 0);
  ASSERT_EQ(h.n_items, 23);
  ASSERT_EQ(hr_item_tokens(&ds, h.n_items, &tok), 0);
  ASSERT_EQ(tok.n_tokens, 2);
  hr_seq_opts_default(&o);
  o.dims.d = 16;
  o.dims.L = 8;
  o.dims.ffn = 16;
  o.epochs = 30;
  o.batch = 8;
  o.lr = 0.01f;
  o.dropout = 0;
  o.threads = 1;
  o.tokens = &tok;
  ASSERT_EQ(hr_seq_fit(&h, &o, &f, &err), 0);
  long c0 = hr_idmap_find(ds.items, "c0", 2), c1 = hr_idmap_find(ds.items, "c1", 2),
       c2 = hr_idmap_find(ds.items, "c2", 2);
  ASSERT(c0 >= 0 && c1 >= 0 && c2 >= 0);
  ASSERT(memcmp(f.items + c0 * 16, f.items + c2 * 16, 16 * sizeof(float)) ==
         0);
  ASSERT(memcmp(f.items + c0 * 16, f.items + c1 * 16, 16 * sizeof(float)) !=
         0);
  ASSERT(hr_seq_embed_floats(&f.dims) <= sizeof(buf) / sizeof(buf[0]));
  for (size_t us = 0; us < h.n_users; us++) {
    size_t n = (size_t)(h.ptr[us + 1] - h.ptr[us]);
    const char *name = hr_idmap_str(ds.users, us);
    int even = atoi(name + 1) % 2 == 0;
    float sa = 0, sb = 0;
    hr_seq_user_vector(&f, h.items + h.ptr[us], h.ts + h.ptr[us], n,
                       h.ts[h.ptr[us] + n - 1] + 600, buf, u);
    for (int c = 0; c < 16; c++) {
      sa += u[c] * f.items[c0 * 16 + c];
      sb += u[c] * f.items[c1 * 16 + c];
    }
    right += even ? sa > sb : sb > sa;
    users++;
  }
  ASSERT_MSG(right >= users * 9 / 10, "%d of %d users rank the cold item of "
             "their category first", right, users);

  /* The long-term part reaches the new items through their tokens: a
   * token's factor is the shrunk mean of its touched items' rows, and the
   * users' long-term vectors alone rank the new items by category. */
  hr_ials_opts_t io;
  hr_ials_t lt = {0};
  hr_ials_opts_default(&io);
  io.factors = 8;
  io.index = 0;
  io.threads = 1;
  ASSERT_EQ(hr_ials_fit(&h, &io, &lt, &err), 0);
  size_t F = (size_t)lt.dim;
  float *rows = malloc(sizeof(float) * h.n_items * F), want[8] = {0};
  ASSERT_NOT_NULL(rows);
  ASSERT_EQ(hr_item_tokens_project(&tok, &h, lt.Y, F, 5.0f, rows), 0);
  for (size_t i = 0; i < h.n_items; i++)
    if (i != (size_t)c0 && i != (size_t)c1 && i != (size_t)c2)
      ASSERT(memcmp(rows + i * F, lt.Y + i * F, F * sizeof(float)) == 0);
  for (int i = 0; i < 10; i++) {
    snprintf(id, sizeof(id), "w%d", i);
    long wi = hr_idmap_find(ds.items, id, strlen(id));
    for (size_t c = 0; c < F; c++)
      want[c] += lt.Y[(size_t)wi * F + c] / (10 + 5.0f);
  }
  for (size_t c = 0; c < F; c++) {
    ASSERT_DBL_NEAR(rows[(size_t)c0 * F + c], want[c], 1e-5);
    ASSERT_DBL_NEAR(rows[(size_t)c2 * F + c], want[c], 1e-5);
  }
  right = 0;
  for (size_t us = 0; us < h.n_users; us++) {
    int even = atoi(hr_idmap_str(ds.users, us) + 1) % 2 == 0;
    float sa = 0, sb = 0;
    for (size_t c = 0; c < F; c++) {
      sa += lt.X[us * F + c] * rows[(size_t)c0 * F + c];
      sb += lt.X[us * F + c] * rows[(size_t)c1 * F + c];
    }
    right += even ? sa > sb : sb > sa;
  }
  ASSERT_MSG(right >= users * 9 / 10, "long-term part: %d of %d users",
             right, users);
  free(rows);
  hr_ials_free(&lt);
  hr_seq_fit_free(&f);
  hr_item_tokens_free(&tok);
  hr_csr_free(&h);
  hr_dataset_free(&ds);
  return 0;
}

/* With the long-term part: the server's vector is [u_seq | w x_u] and its
 * scores are those of the trainer's concatenated item table. */
HR_TEST(seq_long_term_server_matches_trainer) {
  seq_fixture_t x;
  hr_error_t err = {0};
  hr_model_t *m;
  size_t d = 16, f = 8, ni;
  float *buf, us[24], ut[16], *ss, *cat;

  ASSERT_EQ(seq_fixture_lt(&x, 1), 0);
  m = hr_model_open(x.dir, &err);
  ASSERT_MSG(m != NULL, "open: %s", err.msg);
  ASSERT_EQ(hr_model_dim(m), 24);
  ni = hr_model_n_items(m);
  buf = malloc(sizeof(float) * hr_seq_embed_floats(&x.f.dims));
  ss = malloc(sizeof(float) * ni);
  cat = malloc(sizeof(float) * ni * (d + f));
  ASSERT(buf && ss && cat);
  hr_seq_concat_items(&x.f, &x.lt, NULL, cat);
  for (long u = 0; u < 30; u++) {
    size_t n = x.h.ptr[u + 1] - x.h.ptr[u];
    const int64_t *ht = x.h.ts + x.h.ptr[u];
    int64_t now = ht[n - 1] + 60;
    hr_history_t none = {NULL, 0, NULL, now, NULL, NULL, 0};
    ASSERT_EQ(hr_model_user_vector(m, u, &none, us), 0);
    hr_seq_user_vector(&x.f, x.h.items + x.h.ptr[u], ht, n, now, buf, ut);
    ASSERT_MSG(memcmp(us, ut, sizeof(ut)) == 0, "user %ld: sequential part",
               u);
    for (size_t c = 0; c < f; c++)
      ASSERT_MSG(us[d + c] == 2.5f * x.lt.X[(size_t)u * f + c],
                 "user %ld: long-term part", u);
    hr_model_score_items(m, us, ss);
    for (size_t i = 0; i < ni; i++) {
      float s = hr_model_item_prior(m)[i];
      for (size_t c = 0; c < d + f; c++)
        s += us[c] * cat[i * (d + f) + c];
      ASSERT_MSG(fabsf(ss[i] - s) <= 1e-5f * (1 + fabsf(s)), "user %ld item "
                 "%zu: %g vs %g", u, i, ss[i], s);
    }
  }
  free(buf);
  free(ss);
  free(cat);
  hr_model_free(m);
  seq_fixture_free(&x);
  return 0;
}

/* The neural ranker learns a rule its inputs carry: in each query of 8
 * candidates the true item is the one whose long-term sub-score is largest
 * (the sequential one is noise). After training it puts that item first in
 * most held-out queries; chance is 1 in 8. */
HR_TEST(rerank_learns_which_score_to_trust) {
  hr_rerank_opts_t o;
  hr_error_t err = {0};
  enum { NQ = 400, N = 8, D = 4 };
  float *X, *params = NULL, h1[N * 64], h2[N * 32], s[N];
  int32_t pos[NQ];
  int F, right = 0;

  hr_rerank_opts_default(&o);
  o.dims.D = D;
  o.dims.d_seq = 2;
  o.n_cand = N;
  o.epochs = 30;
  F = hr_rerank_inputs(&o.dims);
  X = malloc(sizeof(float) * (NQ + 100) * N * (size_t)F);
  ASSERT_NOT_NULL(X);
  for (int q = 0; q < NQ + 100; q++) {
    float best = -1e9f;
    for (int k = 0; k < N; k++) {
      float u[D], v[D];
      for (int c = 0; c < D; c++) {
        u[c] = 1.0f;
        v[c] = urand();
      }
      hr_rerank_input(&o.dims, u, v, 0.0f, q % HR_SEQ_GAPS,
                      X + ((size_t)q * N + (size_t)k) * (size_t)F);
      float lt = v[2] + v[3];
      if (q < NQ && lt > best) {
        best = lt;
        pos[q] = k;
      }
    }
  }
  double loss;
  ASSERT_EQ(hr_rerank_fit(&o, X, pos, NQ, &params, &loss, &err), 0);
  ASSERT_NOT_NULL(params);
  for (int q = NQ; q < NQ + 100; q++) {
    const float *xq = X + (size_t)q * N * (size_t)F;
    int want = 0, got = 0;
    hr_rerank_forward(&o.dims, params, xq, N, h1, h2, s);
    for (int k = 1; k < N; k++) {
      if (xq[(size_t)k * F + D + 1] > xq[(size_t)want * F + D + 1])
        want = k;
      if (s[k] > s[got])
        got = k;
    }
    right += got == want;
  }
  ASSERT_MSG(right >= 70, "the ranker found the item in %d of 100 queries",
             right);
  free(params);
  free(X);
  return 0;
}
