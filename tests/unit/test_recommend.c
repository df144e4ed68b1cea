/* test_recommend.c -- the recommendation pipeline (src/recommend) without
 * HTTP or Redis: hr_rec_rank against the model's own scores, the kept user
 * vectors against the computation from scratch, one cache per version, and
 * no allocation once a worker is warm. */
#include "test.h"

#include "hr/recommend.h"
#include "hr/train.h"
#include "lib/alloc.h"
#include "lib/models.h"
#include "../src/recommend/internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ------------------------------------------------------------- models */

/* generated data: 300 users, 150 items, context columns, times */
static int gen_data(const char *name, hr_dataset_t *ds, hr_csr_t *h) {
  char gdir[512], csv[600];
  hr_gen_opts_t g = {300, 150, 6000, 9, 1.0, 0};
  hr_error_t err = {0};
  snprintf(gdir, sizeof(gdir), "%s/%s", hr_test_tmpdir(), name);
  snprintf(csv, sizeof(csv), "%s/events.csv", gdir);
  if (hr_gen_write(gdir, &g, &err) != 0 || hr_dataset_init(ds) != 0 ||
      hr_data_read_csv(ds, csv, &err) != 0 ||
      hr_dataset_histories(ds, h) != 0) {
    fprintf(stderr, "gen_data: %s\n", err.msg);
    return -1;
  }
  return 0;
}

static char *version_dir(const char *name) {
  static char dir[512];
  snprintf(dir, sizeof(dir), "%s/%s", hr_test_tmpdir(), name);
  mkdir(dir, 0755);
  strcat(dir, "/1");
  mkdir(dir, 0755);
  return dir;
}

/* An iALS version (factors 16) with its index. */
static hr_model_t *ials_model(void) {
  hr_dataset_t ds;
  hr_csr_t h;
  hr_ials_opts_t o;
  hr_ials_t fit;
  hr_error_t err = {0};
  hr_model_t *m = NULL;
  char *dir = version_dir("rec-ials");

  if (gen_data("rec-gen", &ds, &h) != 0)
    return NULL;
  hr_ials_opts_default(&o);
  o.factors = 16;
  o.iters = 4;
  if (hr_ials_fit(&h, &o, &fit, &err) == 0) {
    if (hr_train_write_files(dir, &ds, &h, &fit, &o, NULL, "rec", 1, &err) ==
        0)
      m = hr_model_open(dir, &err);
    hr_ials_free(&fit);
  }
  if (m == NULL)
    fprintf(stderr, "ials_model: %s\n", err.msg);
  hr_csr_free(&h);
  hr_dataset_free(&ds);
  return m;
}

/* A sequential version: `members` networks (seed), context features for
 * location / mood / device, and a long-term part. */
static hr_model_t *seq_model(const char *name, int members, uint64_t seed) {
  char *dir = version_dir(name);
  hr_model_t *m = NULL;
  hr_error_t err = {0};
  int32_t *rows = NULL;
  hr_ctx_prior_t cp = {0};
  hr_seq_fit_t f = {0};
  hr_ials_t lt = {0};
  hr_seq_opts_t o;
  hr_dataset_t ds;
  hr_csr_t h;

  if (gen_data("rec-gen", &ds, &h) != 0)
    return NULL;
  hrt_small_seq_opts(&o);
  o.epochs = 2;
  o.seed = seed;
  o.members = members;
  o.index = 1;
  o.long_term = 2.5f;
  o.lt_opts.factors = 8;
  o.lt_opts.iters = 3;
  if (hr_ctx_prior_fit(&ds, h.n_items, NULL, 20.0f, &cp) == 0 &&
      hr_ctx_prior_history_rows(&cp, &ds, &h, &rows) == 0) {
    o.ctx_rows = rows;
    o.ctx_slots = (int)cp.n_fields;
    o.ctx_values = cp.n_values;
    o.ctx_prior = &cp;
    if (hr_seq_fit(&h, &o, &f, &err) == 0 &&
        hr_ials_fit(&h, &o.lt_opts, &lt, &err) == 0 &&
        hr_seq_write_files(dir, &ds, &h, &f, &lt, &o, name, 1, &err) == 0)
      m = hr_model_open(dir, &err);
  }
  if (m == NULL)
    fprintf(stderr, "seq_model: %s\n", err.msg);
  free(rows);
  hr_ctx_prior_free(&cp);
  hr_ials_free(&lt);
  hr_seq_fit_free(&f);
  hr_csr_free(&h);
  hr_dataset_free(&ds);
  return m;
}

static void config(hr_config_t *cfg, int cache_mb) {
  hr_config_defaults(cfg);
  cfg->recommend.user_cache_mb = cache_mb;
}

/* A sequential version served by one worker, with an 8 MiB user cache. */
typedef struct {
  hr_model_t *m;
  hr_snapshot_t snap;
  hr_rec_worker_t *w;
  hr_config_t cfg;
} rig_t;

static int rig_open(rig_t *r, const char *name, int members, uint64_t seed) {
  memset(r, 0, sizeof(*r));
  r->m = seq_model(name, members, seed);
  r->w = hr_rec_worker_new();
  r->snap.model = r->m;
  config(&r->cfg, 8);
  return r->m != NULL && r->w != NULL && hr_model_ann(r->m) != NULL ? 0 : -1;
}

static void rig_close(rig_t *r) {
  hr_rec_worker_free(r->w);
  hr_snapshot_clear_aux(&r->snap);
  hr_model_free(r->m);
}

/* A request for user `uid` (NULL: anonymous with `hist`) at time ts. */
static void request(hr_recommend_req_t *r, const char *uid, int k,
                    long long ts, const char **hist, size_t n_hist) {
  memset(r, 0, sizeof(*r));
  r->user_id = uid;
  r->k = k;
  r->ts = ts;
  r->history = hist;
  r->n_history = n_hist;
}

/* ------------------------------------------------------------- tests */


/* The pipeline's exact path is the model's own scores: every item scored
 * by hr_model_user_vector + hr_model_score_items, the user's history (the
 * request's, Redis's, the stored one) and the request's exclusions left
 * out, the rest sorted. Same items, same scores, for known users with and
 * without recent events and for anonymous histories. */
HR_TEST(recommend_rank_is_the_models_scores) {
  hr_model_t *m = ials_model();
  hr_snapshot_t snap = {0};
  hr_rec_worker_t *w = hr_rec_worker_new();
  hr_config_t cfg;
  hr_error_t err = {0};
  size_t ni;
  float *sc, u[16];
  hr_scored_t *ref;

  ASSERT_NOT_NULL(m);
  ASSERT_NOT_NULL(w);
  snap.model = m;
  config(&cfg, 8);
  ni = hr_model_n_items(m);
  sc = malloc(sizeof(float) * ni);
  ref = malloc(sizeof(*ref) * ni);
  ASSERT(sc != NULL && ref != NULL);
  for (int q = 0; q < 60; q++) {
    char uid[16], *hs[3];
    const char *hist[3], *excl[2];
    long long hts[3] = {1704100000, 1704000000, -1};
    hr_user_state_t st = {0};
    hr_recommend_req_t r;
    hr_rec_result_t res;
    long hidx[3], eidx[2];
    size_t n_ref = 0, nh = 0;
    int anon = q % 3 == 2;

    snprintf(uid, sizeof(uid), "u%05d", q + 1);
    for (int j = 0; j < 3; j++) { /* three catalogue items */
      hidx[j] = (q * 7 + j * 31) % (long)ni;
      hist[j] = hr_model_item_id(m, (size_t)hidx[j]);
    }
    eidx[0] = (q * 13 + 5) % (long)ni;
    eidx[1] = (q * 17 + 9) % (long)ni;
    excl[0] = hr_model_item_id(m, (size_t)eidx[0]);
    excl[1] = hr_model_item_id(m, (size_t)eidx[1]);
    request(&r, anon ? NULL : uid, 10, 1704200000, anon ? hist : NULL,
            anon ? 3 : 0);
    r.exclude = excl;
    r.n_exclude = q % 2 ? 2 : 0;
    if (!anon && q % 3 == 1) { /* Redis-style recent events */
      for (int j = 0; j < 3; j++)
        hs[j] = (char *)hist[j];
      st.hist = hs;
      st.hist_ts = hts;
      st.n_hist = 3;
    }
    ASSERT_EQ(hr_rec_rank(w, &snap, &cfg, &r, st.n_hist ? &st : NULL, 0,
                          &res, &err),
              0);
    ASSERT_EQ(res.retrieval, HR_RET_ALL);

    /* the reference */
    long user = anon ? -1 : hr_model_user_index(m, uid);
    const int32_t *trained;
    size_t n_trained;
    int64_t ts64[3] = {1704100000, 1704000000, -1};
    if (anon || st.n_hist)
      nh = 3;
    hr_history_t h = {hidx, nh, anon ? NULL : ts64, 1704200000,
                      NULL, NULL, 0};
    if (anon) { /* the request's history has no times */
      int64_t none[3] = {-1, -1, -1};
      h.ts = none;
      ASSERT_EQ(hr_model_user_vector(m, user, &h, u), 0);
    } else {
      ASSERT_EQ(hr_model_user_vector(m, user, &h, u), 0);
    }
    hr_model_score_items(m, u, sc);
    trained = hr_model_user_history(m, user, &n_trained);
    for (size_t i = 0; i < ni; i++) {
      int out = 0;
      for (size_t j = 0; j < nh; j++)
        out |= (long)i == hidx[j];
      for (size_t j = 0; j < r.n_exclude; j++)
        out |= (long)i == eidx[j];
      for (size_t j = 0; j < n_trained; j++)
        out |= (long)i == trained[j];
      if (!out)
        ref[n_ref++] = (hr_scored_t){(long)i, sc[i]};
    }
    qsort(ref, n_ref, sizeof(*ref), hrt_cmp_scored_desc);
    ASSERT_EQ(res.n_items, 10);
    ASSERT_EQ(res.history_used, nh);
    for (size_t i = 0; i < res.n_items; i++) {
      ASSERT_EQ(res.items[i].index, ref[i].index);
      ASSERT(res.items[i].score == ref[i].score);
    }
  }
  free(sc);
  free(ref);
  hr_rec_worker_free(w);
  hr_snapshot_clear_aux(&snap);
  hr_model_free(m);
  return 0;
}

/* Run one request and copy its items out. */
static int rank_copy(hr_rec_worker_t *w, hr_snapshot_t *snap,
                     const hr_config_t *cfg, const hr_recommend_req_t *r,
                     const hr_user_state_t *st, hr_scored_t *out, size_t *n,
                     int *hit) {
  hr_rec_result_t res;
  hr_error_t err = {0};
  int rc = hr_rec_rank(w, snap, cfg, r, st, 0, &res, &err);
  if (rc != 0)
    return rc;
  for (size_t i = 0; i < res.n_items; i++)
    out[i] = (hr_scored_t){res.items[i].index, res.items[i].score};
  *n = res.n_items;
  *hit = res.cache_hit;
  return 0;
}

static int same_list(const hr_scored_t *a, size_t na, const hr_scored_t *b,
                     size_t nb) {
  if (na != nb)
    return 0;
  for (size_t i = 0; i < na; i++)
    if (a[i].index != b[i].index || fabsf(a[i].score - b[i].score) > 1e-5f)
      return 0;
  return 1;
}

/* The sequential model's kept state: a request answered from the cache
 * (another time, another context: the request's terms) scores as the same
 * request computed from scratch (user_cache_mb 0) within 1e-5 (in fact bit
 * for bit); a new event is a miss and moves the list; the first request of
 * a user is a miss. */
HR_TEST(recommend_kept_user_vectors_equal_computed) {
  hr_model_t *m = seq_model("rec-seq", 2, 1);
  hr_snapshot_t snap = {0}, cold = {0};
  hr_rec_worker_t *w = hr_rec_worker_new();
  hr_config_t cfg, none;
  hr_scored_t a[20], b[20];
  size_t na, nb;
  int hit, moved = 0;
  unsigned long entries, hits, misses;
  static const char *const locs[] = {"home", "gym", "work"};

  ASSERT_NOT_NULL(m);
  ASSERT(hr_model_context_features(m));
  snap.model = cold.model = m;
  config(&cfg, 8);
  config(&none, 0);
  for (int q = 0; q < 40; q++) {
    char uid[16], *hs[2];
    const char *hist[2];
    long long hts[2] = {1704100000 + q, 1704000000};
    hr_user_state_t st = {0};
    hr_recommend_req_t r;

    snprintf(uid, sizeof(uid), "u%05d", q + 1);
    hist[0] = hr_model_item_id(m, (size_t)(q * 7 % 150));
    hist[1] = hr_model_item_id(m, (size_t)(q * 11 % 150 + 1) % 150);
    hs[0] = (char *)hist[0];
    hs[1] = (char *)hist[1];
    st.hist = hs;
    st.hist_ts = hts;
    st.n_hist = 1;
    for (int t = 0; t < 3; t++) {
      request(&r, uid, 20, 1704200000 + 3600LL * t * t, NULL, 0);
      r.ctx[1] = locs[t];
      ASSERT_EQ(rank_copy(w, &snap, &cfg, &r, &st, a, &na, &hit), 0);
      ASSERT_EQ(hit, t > 0); /* the first is computed, then kept */
      ASSERT_EQ(rank_copy(w, &cold, &none, &r, &st, b, &nb, &hit), 0);
      ASSERT_EQ(hit, 0);
      ASSERT(same_list(a, na, b, nb));
      for (size_t i = 0; i < na; i++)
        ASSERT(a[i].score == b[i].score); /* bit for bit */
    }
    /* an event: the history grows, the key changes, the list moves */
    st.n_hist = 2;
    ASSERT_EQ(rank_copy(w, &snap, &cfg, &r, &st, b, &nb, &hit), 0);
    ASSERT_EQ(hit, 0);
    moved += !same_list(a, na, b, nb);
    ASSERT_EQ(rank_copy(w, &cold, &none, &r, &st, a, &na, &hit), 0);
    ASSERT(same_list(a, na, b, nb));
  }
  ASSERT_GE(moved, 30);
  hr_rec_cache_stats(&snap, &entries, &hits, &misses);
  ASSERT_EQ(hits, 80);
  ASSERT_EQ(misses, 80);
  ASSERT_EQ(entries, 80);
  hr_rec_cache_stats(&cold, &entries, &hits, &misses);
  ASSERT_EQ(entries + hits + misses, 0);
  hr_rec_worker_free(w);
  hr_snapshot_clear_aux(&snap);
  hr_model_free(m);
  return 0;
}

/* Two versions of the same shape (other seeds) never share kept vectors:
 * each snapshot has its own cache, and each answer is its own model's. */
HR_TEST(recommend_cache_is_per_version) {
  hr_model_t *m1 = seq_model("rec-v1", 1, 1), *m2 = seq_model("rec-v2", 1, 7);
  hr_snapshot_t s1 = {0}, s2 = {0}, c2 = {0};
  hr_rec_worker_t *w = hr_rec_worker_new();
  hr_config_t cfg, none;
  hr_scored_t a[10], b[10];
  size_t na, nb;
  int hit, differ = 0;
  unsigned long e1, h1, x1, e2, h2, x2;

  ASSERT(m1 != NULL && m2 != NULL);
  ASSERT_EQ(hr_model_dim(m1), hr_model_dim(m2));
  s1.model = m1;
  s2.model = c2.model = m2;
  config(&cfg, 8);
  config(&none, 0);
  for (int q = 0; q < 30; q++) {
    char uid[16];
    hr_recommend_req_t r;
    snprintf(uid, sizeof(uid), "u%05d", q + 1);
    request(&r, uid, 10, 1704200000, NULL, 0);
    ASSERT_EQ(rank_copy(w, &s1, &cfg, &r, NULL, a, &na, &hit), 0);
    ASSERT_EQ(rank_copy(w, &s2, &cfg, &r, NULL, b, &nb, &hit), 0);
    ASSERT_EQ(hit, 0); /* m1's vector of this user is not m2's */
    differ += !same_list(a, na, b, nb);
    ASSERT_EQ(rank_copy(w, &c2, &none, &r, NULL, a, &na, &hit), 0);
    ASSERT(same_list(a, na, b, nb));
  }
  ASSERT_GE(differ, 20);
  hr_rec_cache_stats(&s1, &e1, &h1, &x1);
  hr_rec_cache_stats(&s2, &e2, &h2, &x2);
  ASSERT(e1 == 30 && x1 == 30 && h1 == 0 && e2 == 30 && x2 == 30 && h2 == 0);
  hr_rec_worker_free(w);
  hr_snapshot_clear_aux(&s1);
  hr_snapshot_clear_aux(&s2);
  hr_model_free(m1);
  hr_model_free(m2);
  return 0;
}

/* Once a worker has served the largest request of a stream, the stream
 * allocates nothing in the project's code: known and anonymous users,
 * Redis histories, exclusions, explanations, cache hits and misses. */
HR_TEST(recommend_steady_state_allocates_nothing) {
  rig_t rg;
  unsigned long n;

  ASSERT_EQ(rig_open(&rg, "rec-alloc", 2, 3), 0);
  { /* the counter sees the project's allocations */
    void *volatile p;
    hrt_alloc_count_start();
    p = malloc(24);
    free(p);
    ASSERT_EQ(hrt_alloc_count_stop(), 1);
  }
  for (int pass = 0; pass < 2; pass++) {
    if (pass == 1)
      hrt_alloc_count_start();
    for (int q = 0; q < 50; q++) {
      char uid[16], *hs[4];
      const char *hist[4], *excl[1];
      long long hts[4] = {1704100000, 1704000000, 1703900000, -1};
      hr_user_state_t st = {0};
      hr_recommend_req_t r;
      hr_rec_result_t res;
      hr_error_t err = {0};
      snprintf(uid, sizeof(uid), q % 5 == 4 ? "new%04d" : "u%05d", q + 1);
      for (int j = 0; j < 4; j++)
        hs[j] = (char *)(hist[j] =
                             hr_model_item_id(rg.m, (size_t)(q * 3 + j * 17) % 150));
      excl[0] = hist[3];
      st.hist = hs;
      st.hist_ts = hts;
      st.n_hist = (size_t)(q % 5);
      request(&r, q % 7 == 6 ? NULL : uid, 1 + q % 20, 1704200000 + q,
              q % 7 == 6 ? hist : NULL, q % 7 == 6 ? 2 : 0);
      r.exclude = excl;
      r.n_exclude = 1;
      r.explain = q % 3 == 0;
      r.ctx[1] = q % 2 ? "home" : "gym";
      /* every other request through the index (two-stage) */
      rg.cfg.ann.min_items = q % 2 ? 0 : 20000;
      rg.cfg.ann.candidates = 40;
      ASSERT_EQ(hr_rec_rank(rg.w, &rg.snap, &rg.cfg, &r, &st, 0, &res, &err), 0);
      ASSERT_GT(res.n_items, 0);
    }
  }
  n = hrt_alloc_count_stop();
  ASSERT_MSG(n == 0, "%lu allocations in the second pass", n);
  rig_close(&rg);
  return 0;
}

/* The two-stage path: through the index, the first request of a history
 * keeps 2 x ann.candidates candidates for the user's neutral vector, and
 * later requests (other times, other contexts) score them with their own
 * vector. Every answer's scores are the model's exact scores of its items
 * for the request's vector, never an excluded item, and its top 40 hold
 * most of the exact top 40 of that vector (recall over 100 requests). A
 * new event is a miss and searches again. */
HR_TEST(recommend_two_stage_candidates) {
  rig_t rg;
  hr_model_t *m;
  hr_error_t err = {0};
  size_t ni, hits = 0, total = 0, kept = 0, d;
  float *sc, u[64];
  static const char *const locs[] = {"home", "gym", "work", "commute"};

  ASSERT_EQ(rig_open(&rg, "rec-2s", 2, 5), 0);
  m = rg.m;
  rg.cfg.ann.min_items = 0;
  rg.cfg.ann.candidates = 40;
  ni = hr_model_n_items(m);
  d = (size_t)hr_model_dim(m);
  ASSERT(d <= 64);
  sc = malloc(sizeof(float) * ni);
  ASSERT_NOT_NULL(sc);
  for (int q = 0; q < 100; q++) {
    char uid[16], *hs[2];
    const char *excl[1];
    long long hts[2] = {1704100000, 1704000000};
    hr_user_state_t st = {0};
    hr_recommend_req_t r;
    hr_rec_result_t res;
    long hidx[2];
    int64_t hts64[2] = {1704100000, 1704000000};
    size_t nh = (size_t)(1 + (q / 50));

    snprintf(uid, sizeof(uid), "u%05d", q % 25 + 1);
    for (int j = 0; j < 2; j++) {
      hidx[j] = (q % 25 * 5 + j * 3) % (long)ni;
      hs[j] = (char *)hr_model_item_id(m, (size_t)hidx[j]);
    }
    st.hist = hs;
    st.hist_ts = hts;
    st.n_hist = nh; /* the second 50: one event more, a new history */
    request(&r, uid, 40, 1704200000 + 600LL * q, NULL, 0);
    r.ctx[1] = locs[q % 4];
    excl[0] = hr_model_item_id(m, (size_t)(q * 7 % (int)ni));
    r.exclude = excl;
    r.n_exclude = q % 3 == 0;
    ASSERT_EQ(hr_rec_rank(rg.w, &rg.snap, &rg.cfg, &r, &st, 0, &res, &err), 0);
    ASSERT(res.retrieval == (q % 50 < 25 ? HR_RET_ANN : HR_RET_ANN_KEPT));
    kept += res.retrieval == HR_RET_ANN_KEPT;

    /* the request's own vector and the model's exact scores */
    long user = hr_model_user_index(m, uid);
    const char *names[HR_CTX_FIELDS];
    const char *vals[HR_CTX_FIELDS] = {"UTC", locs[q % 4], NULL, NULL};
    for (int f = 0; f < HR_CTX_FIELDS; f++)
      names[f] = hr_ctx_field_names[f];
    hr_history_t h = {hidx, nh, hts64, 1704200000 + 600LL * q,
                      names, vals, HR_CTX_FIELDS};
    ASSERT_EQ(hr_model_user_vector(m, user, &h, u), 0);
    hr_model_score_items(m, u, sc);
    for (size_t i = 0; i < res.n_items; i++) {
      long it = res.items[i].index;
      ASSERT(fabsf(res.items[i].score - sc[it]) <= 1e-5f * fmaxf(1.0f, fabsf(sc[it])));
      ASSERT(it != hidx[0] && (nh < 2 || it != hidx[1]));
      ASSERT(!(r.n_exclude && strcmp(hr_model_item_id(m, (size_t)it), excl[0]) == 0));
    }
    /* recall of the exact top 40 among the allowed items */
    {
      size_t n_trained, nt = 0;
      const int32_t *tr = hr_model_user_history(m, user, &n_trained);
      hr_scored_t top[40];
      hr_topk_t t;
      hr_topk_init(&t, top, 40);
      for (size_t i = 0; i < ni; i++) {
        int out = (long)i == hidx[0] || (nh > 1 && (long)i == hidx[1]) ||
                  (r.n_exclude && strcmp(hr_model_item_id(m, i), excl[0]) == 0);
        for (size_t j = 0; j < n_trained && !out; j++)
          out = tr[j] == (int32_t)i;
        if (!out)
          hr_topk_push(&t, (long)i, sc[i]);
      }
      nt = hr_topk_finish(&t);
      for (size_t a = 0; a < nt; a++)
        for (size_t b = 0; b < res.n_items; b++)
          hits += res.items[b].index == top[a].index;
      total += nt;
    }
  }
  ASSERT_EQ(kept, 50);
  ASSERT_MSG((double)hits / (double)total >= 0.9, "recall %.3f",
             (double)hits / (double)total);
  free(sc);
  rig_close(&rg);
  return 0;
}

/* A factor model has no request terms: the two-stage path keeps its
 * candidates in the order of their final scores and answers from them
 * without scoring them again. With every item kept (150 items, ann.kept
 * 800) that answer is the exact one, on the first request of a history
 * and on the later ones, with and without the request's own exclusions. */
HR_TEST(recommend_two_stage_factor_model_answers_from_the_kept_order) {
  hr_model_t *m = ials_model();
  hr_snapshot_t snap = {0}, exact = {0};
  hr_rec_worker_t *w = hr_rec_worker_new();
  hr_config_t cfg, ex;
  hr_scored_t a[30], b[30];
  size_t na, nb;
  int hit;

  ASSERT(m != NULL && w != NULL && hr_model_ann(m) != NULL);
  ASSERT(!hr_model_request_terms(m));
  snap.model = exact.model = m;
  config(&cfg, 8);
  cfg.ann.min_items = 0;
  cfg.ann.candidates = 30;
  config(&ex, 0);
  for (int q = 0; q < 60; q++) {
    char uid[16];
    const char *excl[1];
    hr_recommend_req_t r;
    snprintf(uid, sizeof(uid), "u%05d", q % 20 + 1);
    request(&r, uid, 30, 1704200000, NULL, 0);
    excl[0] = hr_model_item_id(m, (size_t)(q * 13 % 150));
    r.exclude = excl;
    r.n_exclude = q % 2;
    ASSERT_EQ(rank_copy(w, &snap, &cfg, &r, NULL, a, &na, &hit), 0);
    ASSERT_EQ(hit, q >= 20);
    ASSERT_EQ(rank_copy(w, &exact, &ex, &r, NULL, b, &nb, &hit), 0);
    ASSERT_EQ(na, nb);
    /* same items; scores to float rounding (sgemv there, a dot here) */
    ASSERT(same_list(a, na, b, nb));
  }
  hr_rec_worker_free(w);
  hr_snapshot_clear_aux(&snap);
  hr_model_free(m);
  return 0;
}

/* The kept-entry table holds as many entries as its size allows before it
 * evicts: 700 users in a table of about 1,000 entries (16-way sets, each
 * key with two candidate sets) are all still there, each with its own
 * vector, candidates and scores; past the size, the least recently used go. */
HR_TEST(recommend_cache_fills_before_it_evicts) {
  hr_snapshot_t snap = {0};
  enum { DIM = 8, CMAX = 4 };
  /* an entry: (DIM + meta + 2 CMAX) floats + key and age, + its lock share */
  size_t per = (DIM + 6 + 2 * CMAX) * 4 + 24 + 3;
  hr__ucache_t *c = hr__ucache_of(&snap, DIM, 1000 * per, CMAX);
  unsigned long entries, hits, misses;
  float v[DIM], out[DIM], sc[CMAX], osc[CMAX];
  uint32_t ids[CMAX], oids[CMAX];
  hr__ukept_t mt = {CMAX, 9, 3, 1, 1704000000}, got;

  ASSERT_NOT_NULL(c);
  for (int u = 0; u < 700; u++) {
    hr__ukey_t k = hr__ukey(u, NULL, 0, NULL, NULL, 0);
    for (int j = 0; j < DIM; j++)
      v[j] = (float)(u * DIM + j);
    for (int j = 0; j < CMAX; j++) {
      ids[j] = (uint32_t)(u + j);
      sc[j] = (float)u / (float)(j + 1);
    }
    hr__ucache_put(c, k, v, ids, sc, &mt);
  }
  for (int u = 0; u < 700; u++) {
    hr__ukey_t k = hr__ukey(u, NULL, 0, NULL, NULL, 0);
    ASSERT_MSG(hr__ucache_get(c, k, out, oids, osc, &got), "user %d gone", u);
    ASSERT(got.n_ids == CMAX && got.asked == 9 && got.n_hist == 3 &&
           got.scored == 1 && got.newest_ts == 1704000000);
    ASSERT(out[DIM - 1] == (float)(u * DIM + DIM - 1));
    ASSERT(oids[CMAX - 1] == (uint32_t)(u + CMAX - 1));
    ASSERT(osc[1] == (float)u / 2.0f);
  }
  hr_rec_cache_stats(&snap, &entries, &hits, &misses);
  ASSERT_EQ(entries, 700);
  ASSERT_EQ(hits, 700);
  /* twice the size: the older users make room */
  for (int u = 700; u < 2700; u++) {
    hr__ukey_t k = hr__ukey(u, NULL, 0, NULL, NULL, 0);
    hr__ucache_put(c, k, v, ids, sc, &mt);
  }
  hr_rec_cache_stats(&snap, &entries, &hits, &misses);
  ASSERT(entries <= 1100 && entries >= 900);
  ASSERT(!hr__ucache_get(c, hr__ukey(0, NULL, 0, NULL, NULL, 0), out, oids,
                         osc, &got));
  hr_snapshot_clear_aux(&snap);
  return 0;
}
