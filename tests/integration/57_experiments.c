/* 57_experiments.c -- experiments in /recommend: sticky assignment by
 * user (or session) into the weights, the variant's model slot and its id
 * in recommendation_id, the QA header. */
#include "lib/env.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hr/config.h"
#include "hr/ctxstore.h"
#include "hr/experiments.h"

#define EXP_CFG                                                               \
  "{\"models_poll_ms\":100,\"slots\":[\"default\",\"alt\"],"                 \
  "\"experiments_force_header\":1,"                                         \
  "\"experiments\":[{\"name\":\"home\",\"salt\":\"home-1\",\"variants\":["   \
  "{\"name\":\"control\",\"weight\":50},"                                     \
  "{\"name\":\"b\",\"weight\":30,\"slot\":\"alt\"},"                          \
  "{\"name\":\"c\",\"weight\":20,\"candidates\":50}]}]}"

static const int W[3] = {50, 30, 20};
static const char *const VN[3] = {"control", "b", "c"};

static json_t *rec(hrt_env_t *e, const char *user, const char *session,
                   const char *force, int *st) {
  char hdr[128] = "", body[256];
  hrt_resp_t r = {0};
  json_t *j = NULL;
  if (force)
    hrt_fmt(hdr, sizeof(hdr), "X-Hyperrec-Variant: %s\r\n", force);
  strcat(hdr, "Content-Type: application/json\r\n");
  if (user)
    hrt_fmt(body, sizeof(body), "{\"user_id\":\"%s\",\"k\":3}", user);
  else if (session)
    hrt_fmt(body, sizeof(body),
            "{\"session_id\":\"%s\",\"history\":[\"i00001\"],\"k\":3}",
            session);
  else
    hrt_fmt(body, sizeof(body), "{\"history\":[\"i00001\"],\"k\":3}");
  *st = 0;
  if (hrt_req(e, "POST", "/recommend", hdr, body, strlen(body), &r) == 0) {
    *st = r.status;
    j = json_loads(r.body, 0, NULL);
  }
  hrt_resp_free(&r);
  return j;
}

static int variant_index(const char *name) {
  for (int i = 0; i < 3; i++)
    if (name != NULL && strcmp(name, VN[i]) == 0)
      return i;
  return -1;
}

HR_TEST_T(experiments_assign_route_and_tag_recommendations, 120) {
  HRT_ENV(e);
  hrt_env_opts_t o = {.config_json = EXP_CFG};
  char dir[PATH_MAX], user[32];
  long count[3] = {0};
  int ok, st;
  json_t *j;

  ASSERT_EQ(hrt_env_start(&e, &o), 0);
  /* Before slot alt has a model, its variant's users are answered by the
   * first slot, for no variant. */
  for (int u = 0; u < 50; u++) {
    hrt_fmt(user, sizeof(user), "u%05d", u + 1);
    if (hr_exp_assign("home-1", user, strlen(user), W, 3) != 1)
      continue;
    j = rec(&e, user, NULL, NULL, &st);
    ASSERT_MSG(st == 200, "%d %s", st, hrt_jdump(j));
    ASSERT(json_is_null(hrt_jget(j, "variant")));
    ASSERT_STR_EQ(hrt_jstr(j, "model.name"), "default");
    json_decref(j);
    break;
  }
  hrt_fmt(dir, sizeof(dir), "%s/alt", e.models);
  ASSERT_EQ(hrt_mkdirs(dir), 0);
  hrt_fmt(dir, sizeof(dir), "%s/alt/.tmp-copy", e.models);
  ASSERT_EQ(hrt_copy_tree(e.fx.version_dir, dir), 0);
  char to[PATH_MAX];
  hrt_fmt(to, sizeof(to), "%s/alt/%lld", e.models, e.fx.version);
  ASSERT_EQ(rename(dir, to), 0);
  HRT_POLL(ok, 5000, (j = hrt_get(&e, "/models", &st),
                      st = (int)hrt_jint(j, "slots[1].version"),
                      json_decref(j), st > 0));
  ASSERT_MSG(ok, "slot alt not served");

  /* 2,000 users: each answer names the variant the hash gives (the same
   * function in this process: assignment does not depend on the server
   * process), the variant's slot answers, and the id carries both. */
  for (int u = 0; u < 2000; u++) {
    hrt_fmt(user, sizeof(user), "u%05d", u + 1);
    int want = hr_exp_assign("home-1", user, strlen(user), W, 3);
    j = rec(&e, user, NULL, NULL, &st);
    ASSERT_MSG(st == 200, "%d %s", st, hrt_jdump(j));
    int got = variant_index(hrt_jstr(j, "variant.name"));
    ASSERT_MSG(got == want, "%s: variant %s, expected %s", user,
               hrt_jstr(j, "variant.name"), VN[want]);
    ASSERT_STR_EQ(hrt_jstr(j, "variant.experiment"), "home");
    ASSERT_STR_EQ(hrt_jstr(j, "model.name"), got == 1 ? "alt" : "default");
    char tail[64];
    hrt_fmt(tail, sizeof(tail), ".home.%s", VN[got]);
    const char *rid = hrt_jstr(j, "recommendation_id");
    ASSERT_MSG(rid && strlen(rid) > strlen(tail) &&
                   strcmp(rid + strlen(rid) - strlen(tail), tail) == 0,
               "%s", rid ? rid : "(none)");
    count[got]++;
    json_decref(j);
  }
  for (int v = 0; v < 3; v++) /* 2,000 draws: SE about 1.1 points */
    ASSERT_MSG(labs(count[v] - 20 * W[v]) < 80, "variant %s: %ld of 2000",
               VN[v], count[v]);

  /* Anonymous: by session id; without one, no experiment. */
  j = rec(&e, NULL, "sess-42", NULL, &st);
  ASSERT_EQ(st, 200);
  ASSERT_EQ(variant_index(hrt_jstr(j, "variant.name")),
            hr_exp_assign("home-1", "sess-42", 7, W, 3));
  json_decref(j);
  j = rec(&e, NULL, NULL, NULL, &st);
  ASSERT_EQ(st, 200);
  ASSERT(json_is_null(hrt_jget(j, "variant")));
  json_decref(j);

  /* The QA header forces a variant; an unknown one is a 400. */
  j = rec(&e, "u00001", NULL, "b", &st);
  ASSERT_EQ(st, 200);
  ASSERT_STR_EQ(hrt_jstr(j, "variant.name"), "b");
  ASSERT_STR_EQ(hrt_jstr(j, "model.name"), "alt");
  const char *qa = hrt_jstr(j, "recommendation_id");
  ASSERT_MSG(qa && strstr(qa, ".home.b.qa") != NULL, "%s", qa ? qa : "");
  json_decref(j);
  j = rec(&e, "u00001", NULL, "nope", &st);
  ASSERT_API_ERROR(j, st, 400, "invalid_field", "X-Hyperrec-Variant");
  json_decref(j);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

/* Bad experiment declarations stop the server at start with a message
 * naming the key (exit 2), like any configuration error. */
HR_TEST(experiments_config_is_validated) {
  hr_config_t c;
  hr_error_t err = {0};
  static const char *const bad[] = {
      "[{\"name\":\"Home\",\"salt\":\"s\",\"variants\":[{\"name\":\"a\","
      "\"weight\":1}]}]",
      "[{\"name\":\"h\",\"salt\":\"\",\"variants\":[{\"name\":\"a\","
      "\"weight\":1}]}]",
      "[{\"name\":\"h\",\"salt\":\"s\",\"variants\":[]}]",
      "[{\"name\":\"h\",\"salt\":\"s\",\"variants\":[{\"name\":\"a\","
      "\"weight\":0}]}]",
      "[{\"name\":\"h\",\"salt\":\"s\",\"variants\":[{\"name\":\"a\","
      "\"weight\":1},{\"name\":\"a\",\"weight\":1}]}]",
      "[{\"name\":\"h\",\"salt\":\"s\",\"variants\":[{\"name\":\"a\","
      "\"weight\":-1}]}]",
      "[{\"name\":\"h\",\"salt\":\"s\",\"variants\":[{\"name\":\"a\","
      "\"weight\":1,\"colour\":\"red\"}]}]",
      "{\"name\":\"h\"}",
      NULL};
  for (int k = 0; bad[k] != NULL; k++) {
    hr_config_defaults(&c);
    hr_error_clear(&err);
    ASSERT_MSG(hr_config_set(&c, "experiments", bad[k], &err) == HR_EINVAL,
               "%s", bad[k]);
    ASSERT_STR_EQ(err.field, "experiments");
  }
  /* a slot that is not served */
  hr_config_defaults(&c);
  hr_error_clear(&err);
  ASSERT_EQ(hr_config_set(&c, "experiments",
                          "[{\"name\":\"h\",\"salt\":\"s\",\"variants\":[{"
                          "\"name\":\"a\",\"weight\":1,\"slot\":\"x\"}]}]",
                          &err), 0);
  ASSERT_EQ(hr_config_validate(&c, &err), HR_EINVAL);
  ASSERT_STR_EQ(err.field, "experiments");
  return 0;
}

/* ------------------------------------------------- attribution, report */

#define REPORT_CFG                                                            \
  "{\"experiments_force_header\":1,\"experiments_flush_ms\":60000,"          \
  "\"experiments\":[{\"name\":\"home\",\"salt\":\"home-1\",\"variants\":["   \
  "{\"name\":\"control\",\"weight\":50},{\"name\":\"b\",\"weight\":30},"     \
  "{\"name\":\"c\",\"weight\":20}]},"                                         \
  "{\"name\":\"checkout\",\"salt\":\"co\",\"variants\":["                    \
  "{\"name\":\"a\",\"weight\":1},{\"name\":\"b\",\"weight\":1}]}]}"

/* The reference computations the report must agree with, written
 * differently from the server's: the Wilson bounds as the roots of
 * (p^ - p)^2 = z^2 p (1 - p) / n, the z-test's p-value from the 2x2
 * table's Pearson chi-square, the 2-degree chi-square tail exp(-x/2). */
static void ref_wilson(double k, double n, double *lo, double *hi) {
  const double z2 = 1.959963984540054 * 1.959963984540054;
  double ph = k / n, a = 1.0 + z2 / n, b = -(2.0 * ph + z2 / n),
         c = ph * ph, disc = sqrt(b * b - 4.0 * a * c);
  *lo = (-b - disc) / (2.0 * a);
  *hi = (-b + disc) / (2.0 * a);
}

static double ref_ztest_p(double k1, double n1, double k2, double n2) {
  double a = k1, b = n1 - k1, c = k2, d = n2 - k2, n = n1 + n2;
  double chi = n * (a * d - b * c) * (a * d - b * c) /
               ((a + b) * (c + d) * (a + c) * (b + d));
  return erfc(sqrt(chi / 2.0));
}

static int near(double got, double want) {
  return fabs(got - want) <= 1e-9 + 1e-7 * fabs(want);
}

typedef struct {
  long users, users_clicked, users_converted, impressions, clicks,
      click_events, conversions, conversion_events;
} tally_t;

/* Checks one variant's row of a report against the test's tally, and its
 * rates, intervals and z-test against the references. */
static int check_row(json_t *row, const tally_t *t, const tally_t *ctl,
                     int is_control) {
  char what[64];
  const char *names[] = {"users", "users_clicked", "users_converted",
                         "impressions", "clicks", "click_events",
                         "conversions", "conversion_events"};
  const long want[] = {t->users, t->users_clicked, t->users_converted,
                       t->impressions, t->clicks, t->click_events,
                       t->conversions, t->conversion_events};
  for (int i = 0; i < 8; i++)
    ASSERT_MSG(hrt_jint(row, names[i]) == want[i], "%s %s: %lld, want %ld",
               hrt_jstr(row, "name"), names[i], hrt_jint(row, names[i]),
               want[i]);
  /* per impression, then per user (the unit of assignment) */
  for (int r = 0; r < 4; r++) {
    static const char *const keys[] = {"ctr", "conversion_rate",
                                       "user_click_rate",
                                       "user_conversion_rate"};
    const long ks[] = {t->clicks, t->conversions, t->users_clicked,
                       t->users_converted};
    const long k1s[] = {ctl->clicks, ctl->conversions, ctl->users_clicked,
                        ctl->users_converted};
    double k = (double)ks[r], lo, hi;
    double n = r < 2 ? (double)t->impressions : (double)t->users;
    double n1 = r < 2 ? (double)ctl->impressions : (double)ctl->users;
    const char *key = keys[r];
    json_t *o = json_object_get(row, key);
    ref_wilson(k, n, &lo, &hi);
    hrt_fmt(what, sizeof(what), "%s %s", hrt_jstr(row, "name"), key);
    ASSERT_MSG(near(json_real_value(json_object_get(o, "value")), k / n),
               "%s", what);
    ASSERT_MSG(near(json_real_value(hrt_jget(o, "ci95[0]")), lo) &&
                   near(json_real_value(hrt_jget(o, "ci95[1]")), hi),
               "%s: %s, want [%.9f, %.9f]", what, hrt_jdump(o), lo, hi);
    json_t *vs = hrt_jget(row, "vs_control");
    if (is_control) {
      ASSERT(json_is_null(vs));
      continue;
    }
    double k1 = (double)k1s[r];
    json_t *d = json_object_get(vs, key);
    ASSERT_MSG(near(json_real_value(json_object_get(d, "diff")),
                    k / n - k1 / n1),
               "%s diff %s", what, hrt_jdump(d));
    ASSERT_MSG(near(json_real_value(json_object_get(d, "p_value")),
                    ref_ztest_p(k1, n1, k, n)),
               "%s p %s", what, hrt_jdump(d));
  }
  return 0;
}

/* Two server processes on one Redis: the same user gets the same variant
 * from both; impressions and users from both add up (one replica's through
 * its report-time flush, the other's through its flush at shutdown);
 * clicks and purchases sent with recommendation ids to either are counted
 * to the right variants -- once per recommendation, not for forced (.qa),
 * unknown or duplicate ones -- and the report's CTRs, intervals, z-test
 * p-values and sample-ratio check match the reference computations. */
HR_TEST_T(experiments_attribution_and_report_match_reference, 180) {
  HRT_ENV(e);
  hrt_env_opts_t o = {.config_json = REPORT_CFG};
  hrt_server_t b = {0};
  char redis_addr[32], user[32], body[512], ev[65536];
  static const int rate[3] = {3, 5, 2}; /* clicks per 10 impressions */
  tally_t t[3] = {{0}};
  long seen[3] = {0}, clicks_seen[3] = {0}, attributed = 0, got_attr = 0;
  int u2_clicked = 0;
  int st, n_ev = 0, ev_id = 0, port_a;
  json_t *j, *rep = NULL;

  ASSERT_EQ(hrt_env_start(&e, &o), 0);
  port_a = e.srv.port;
  hrt_fmt(redis_addr, sizeof(redis_addr), "127.0.0.1:%d", e.redis.port);
  const char *args[] = {"--listen", "127.0.0.1:0", "--redis", redis_addr,
                        "--models", e.models, "--config", e.config,
                        "--log-level", "debug", NULL};
  ASSERT_EQ(hrt_server_start(&b, args), 0);

  strcpy(ev, "{\"events\":[");
  for (int u = 0; u < 600; u++) {
    int reqs = u % 3 == 0 ? 2 : 1, vi = -1, clicked = 0, bought = 0;
    hrt_fmt(user, sizeof(user), "u%05d", u + 1);
    for (int q = 0; q < reqs; q++) {
      hrt_fmt(body, sizeof(body), "{\"user_id\":\"%s\",\"k\":3}", user);
      j = hrt_port_json(q == 0 ? port_a : b.port, "POST", "/recommend", NULL,
                    body, &st);
      ASSERT_MSG(st == 200, "%d %s", st, hrt_jdump(j));
      int v = variant_index(hrt_jstr(j, "variant.name"));
      ASSERT(v >= 0);
      ASSERT_MSG(vi < 0 || v == vi, "%s: %s from one server, %s from the "
                 "other", user, VN[vi], VN[v]);
      vi = v;
      t[v].impressions++;
      if (q == 0)
        t[v].users++;
      /* clicks on rate[v] of every 10 impressions; a purchase after every
       * 4th click */
      if (seen[v]++ % 10 < rate[v]) {
        const char *rid = hrt_jstr(j, "recommendation_id");
        int buy = clicks_seen[v]++ % 4 == 0;
        for (int k = 0; k <= buy; k++) {
          hrt_fmt(ev + strlen(ev), sizeof(ev) - strlen(ev),
                  "%s{\"user_id\":\"%s\",\"item_id\":\"i00002\",\"type\":"
                  "\"%s\",\"recommendation_id\":\"%s\",\"event_id\":"
                  "\"ev%d\"}", n_ev ? "," : "", user,
                  k ? "purchase" : "click", rid, ev_id++);
          n_ev++;
        }
        t[v].users_clicked += !clicked;
        t[v].users_converted += buy && !bought;
        clicked = 1;
        bought |= buy;
        u2_clicked |= u == 1;
        t[v].clicks++;
        t[v].click_events++;
        t[v].conversions += buy;
        t[v].conversion_events += buy;
        attributed += 1 + buy;
      }
      json_decref(j);
      if (n_ev >= 60) { /* a batch, to each server in turn */
        strcat(ev, "]}");
        j = hrt_port_json(ev_id % 2 ? port_a : b.port, "POST", "/event", NULL,
                      ev, &st);
        ASSERT_MSG(st == 202, "%d %s", st, hrt_jdump(j));
        got_attr += hrt_jint(j, "attributed");
        json_decref(j);
        /* the same batch again: every event_id is a duplicate */
        j = hrt_port_json(port_a, "POST", "/event", NULL, ev, &st);
        ASSERT_EQ(st, 202);
        ASSERT_EQ(hrt_jint(j, "duplicates"), n_ev);
        ASSERT_EQ(hrt_jint(j, "attributed"), 0);
        json_decref(j);
        strcpy(ev, "{\"events\":[");
        n_ev = 0;
      }
    }
  }
  if (n_ev > 0) {
    strcat(ev, "]}");
    j = hrt_port_json(b.port, "POST", "/event", NULL, ev, &st);
    ASSERT_EQ(st, 202);
    got_attr += hrt_jint(j, "attributed");
    json_decref(j);
  }
  ASSERT_EQ(got_attr, attributed);

  /* A second click on a clicked recommendation is a click event, not a
   * second click; forced (.qa), unknown and view events are not counted. */
  {
    char rid[128], qa[128];
    int v0;
    hrt_fmt(body, sizeof(body), "{\"user_id\":\"u00002\",\"k\":3}");
    j = hrt_port_json(port_a, "POST", "/recommend", NULL, body, &st);
    ASSERT_EQ(st, 200);
    v0 = variant_index(hrt_jstr(j, "variant.name"));
    hrt_fmt(rid, sizeof(rid), "%s", hrt_jstr(j, "recommendation_id"));
    json_decref(j);
    t[v0].impressions++;
    j = hrt_port_json(b.port, "POST", "/recommend", "X-Hyperrec-Variant: c\r\n",
                  body, &st);
    ASSERT_EQ(st, 200);
    hrt_fmt(qa, sizeof(qa), "%s", hrt_jstr(j, "recommendation_id"));
    json_decref(j);
    hrt_fmt(ev, sizeof(ev),
            "{\"events\":["
            "{\"user_id\":\"u00002\",\"item_id\":\"i00002\",\"type\":\"click\","
            "\"recommendation_id\":\"%s\"},"
            "{\"user_id\":\"u00002\",\"item_id\":\"i00002\",\"type\":\"click\","
            "\"recommendation_id\":\"%s\"},"
            "{\"user_id\":\"u00002\",\"item_id\":\"i00002\",\"type\":\"click\","
            "\"recommendation_id\":\"%s\"},"
            "{\"user_id\":\"u00002\",\"item_id\":\"i00002\",\"type\":\"view\","
            "\"recommendation_id\":\"%s\"},"
            "{\"user_id\":\"u00002\",\"item_id\":\"i00002\",\"type\":\"click\","
            "\"recommendation_id\":\"r1-0123456789abcdef.other.b\"}]}",
            rid, rid, qa, rid);
    j = hrt_port_json(b.port, "POST", "/event", NULL, ev, &st);
    ASSERT_MSG(st == 202, "%d %s", st, hrt_jdump(j));
    ASSERT_EQ(hrt_jint(j, "accepted"), 5);
    ASSERT_EQ(hrt_jint(j, "attributed"), 2);
    json_decref(j);
    t[v0].clicks++;
    t[v0].click_events += 2;
    t[v0].users_clicked += !u2_clicked; /* unless it had clicked before */
    ASSERT_EQ(hrt_rint(&e, "SISMEMBER hr:exp:{home}:clickers:%s u00002",
                       VN[v0]), 1);
  }

  /* Server A stops (its pending impressions go to Redis on the way out);
   * B's report flushes B's and reads the sum. */
  ASSERT_EQ(hrt_server_stop(&e.srv), 0);
  rep = hrt_port_json(b.port, "GET", "/experiments/home", NULL, NULL, &st);
  ASSERT_MSG(st == 200, "%d %s", st, hrt_jdump(rep));
  ASSERT_STR_EQ(hrt_jstr(rep, "control"), "control");
  ASSERT_EQ(json_array_size(hrt_jget(rep, "variants")), 3);
  for (int v = 0; v < 3; v++) {
    char path[32];
    hrt_fmt(path, sizeof(path), "variants[%d]", v);
    ASSERT_STR_EQ(hrt_jstr(hrt_jget(rep, path), "name"), VN[v]);
    if (check_row(hrt_jget(rep, path), &t[v], &t[0], v == 0) != 0) {
      json_decref(rep);
      hrt_server_stop(&b);
      return 1;
    }
  }
  {
    double users = (double)(t[0].users + t[1].users + t[2].users), chi = 0;
    for (int v = 0; v < 3; v++) {
      double want = users * W[v] / 100.0;
      chi += ((double)t[v].users - want) * ((double)t[v].users - want) / want;
    }
    ASSERT_MSG(near(json_real_value(hrt_jget(rep, "srm.chi_square")), chi),
               "%s vs %g", hrt_jdump(hrt_jget(rep, "srm")), chi);
    ASSERT_EQ(hrt_jint(rep, "srm.df"), 2);
    ASSERT(near(json_real_value(hrt_jget(rep, "srm.p_value")),
                exp(-chi / 2.0)));
    ASSERT_EQ(json_is_true(hrt_jget(rep, "srm.mismatch")),
              exp(-chi / 2.0) < 0.001);
  }
  json_decref(rep);

  /* The sample-ratio check and the z-test on counts large enough to
   * matter: 1,000 against 800 users at 1:1 is a mismatch (chi-square 22.2,
   * p 2.4e-6), and 1,100 clicks in 10,000 against 1,000 gives p 0.0213. */
  {
    redisReply *r;
    r = hrt_rcmd(&e, "HSET hr:exp:{checkout} a:impressions 10000 a:clicks "
                     "1000 b:impressions 10000 b:clicks 1100");
    ASSERT(r != NULL);
    freeReplyObject(r);
    for (int i = 0; i < 1800; i++) {
      r = hrt_rcmd(&e, "SADD hr:exp:{checkout}:users:%s x%d",
                   i < 1000 ? "a" : "b", i);
      ASSERT(r != NULL);
      freeReplyObject(r);
    }
    rep = hrt_port_json(b.port, "GET", "/experiments/checkout", NULL, NULL, &st);
    ASSERT_MSG(st == 200, "%d %s", st, hrt_jdump(rep));
    ASSERT(near(json_real_value(hrt_jget(rep, "srm.chi_square")),
                100.0 * 100.0 / 900.0 * 2.0));
    ASSERT(near(json_real_value(hrt_jget(rep, "srm.p_value")),
                erfc(sqrt(100.0 * 100.0 / 900.0))));
    ASSERT(json_is_true(hrt_jget(rep, "srm.mismatch")));
    double p = json_real_value(hrt_jget(rep, "variants[1].vs_control.ctr."
                                             "p_value"));
    ASSERT_MSG(near(p, ref_ztest_p(1000, 10000, 1100, 10000)) &&
                   fabs(p - 0.0213) < 0.0005, "%g", p);
    json_decref(rep);
  }

  /* The list, and errors */
  j = hrt_port_json(b.port, "GET", "/experiments", NULL, NULL, &st);
  ASSERT_EQ(st, 200);
  ASSERT_STR_EQ(hrt_jstr(j, "experiments[1].name"), "checkout");
  ASSERT(json_is_true(hrt_jget(j, "experiments[0].splits_recommend")));
  ASSERT_EQ(hrt_jint(j, "experiments[0].variants[1].weight"), 30);
  json_decref(j);
  j = hrt_port_json(b.port, "GET", "/experiments/nope", NULL, NULL, &st);
  ASSERT_API_ERROR(j, st, 404, "not_found", "");
  json_decref(j);
  ASSERT_EQ(hrt_server_stop(&b), 0);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

/* Counting through Redis failures: a batch Redis refuses (a key of the
 * wrong type) makes the report a 500 naming the key, is kept, and is
 * counted exactly once when the key is fixed; a batch sent twice with its
 * token (a lost reply) is counted once; while Redis is down the report is
 * a 503 and the impressions wait for it. */
HR_TEST_T(experiments_counts_survive_redis_errors, 120) {
  HRT_ENV(e);
  hrt_env_opts_t o = {.config_json = REPORT_CFG};
  char user[32], body[128], redis_addr[32];
  long imp = 0, want[3] = {0};
  int st, ok;
  json_t *j;
  redisReply *r;

  ASSERT_EQ(hrt_env_start(&e, &o), 0);
  r = hrt_rcmd(&e, "SET hr:exp:{home}:users:b oops");
  ASSERT(r != NULL);
  freeReplyObject(r);
  for (int u = 0; u < 30; u++) {
    hrt_fmt(user, sizeof(user), "w%03d", u);
    hrt_fmt(body, sizeof(body), "{\"user_id\":\"%s\",\"k\":2}", user);
    j = hrt_post_text(&e, "/recommend", body, &st);
    ASSERT_EQ(st, 200);
    want[variant_index(hrt_jstr(j, "variant.name"))]++;
    imp++;
    json_decref(j);
  }
  ASSERT(want[1] > 0);
  j = hrt_get(&e, "/experiments/home", &st);
  ASSERT_API_ERROR(j, st, 500, "internal", "");
  ASSERT_MSG(strstr(hrt_jstr(j, "error.message"), "hr:exp:{home}:users:b") &&
                 strstr(hrt_jstr(j, "error.message"), "WRONGTYPE"),
             "%s", hrt_jdump(j));
  json_decref(j);
  ASSERT_EQ(hrt_rint(&e, "EXISTS hr:exp:{home}"), 0); /* nothing written */
  r = hrt_rcmd(&e, "DEL hr:exp:{home}:users:b");
  freeReplyObject(r);
  for (int k = 0; k < 2; k++) { /* counted once, and not again */
    j = hrt_get(&e, "/experiments/home", &st);
    ASSERT_MSG(st == 200, "%d %s", st, hrt_jdump(j));
    for (int v = 0; v < 3; v++) {
      char path[48];
      hrt_fmt(path, sizeof(path), "variants[%d].impressions", v);
      ASSERT_EQ(hrt_jint(j, path), want[v]);
      hrt_fmt(path, sizeof(path), "variants[%d].users", v);
      ASSERT_EQ(hrt_jint(j, path), want[v]);
    }
    json_decref(j);
  }

  /* The same batch twice, as after a lost reply: added once. */
  {
    hr_config_t c;
    hr_error_t err = {0};
    hr_ctxstore_t *cs;
    const char *ids[] = {"t1", "t2"};
    hr_exp_add_t add = {"home", "c", 5, ids, 2};
    hr_config_defaults(&c);
    hrt_fmt(redis_addr, sizeof(redis_addr), "%d", e.redis.port);
    ASSERT_EQ(hr_config_set(&c, "redis.port", redis_addr, &err), 0);
    cs = hr_ctxstore_new(&c);
    ASSERT(cs != NULL);
    ASSERT_EQ(hr_ctxstore_exp_add(cs, "tok-1", &add, 1, &err), 0);
    ASSERT_EQ(hr_ctxstore_exp_add(cs, "tok-1", &add, 1, &err), 0);
    hr_ctxstore_free(cs);
    char got[32] = "";
    ASSERT_EQ(hrt_rstr(&e, got, sizeof(got), "HGET hr:exp:{home} "
                       "c:impressions"), 0);
    ASSERT_EQ(atol(got), want[2] + 5);
    ASSERT_EQ(hrt_rint(&e, "SCARD hr:exp:{home}:users:c"), want[2] + 2);
  }

  /* Redis down: 503, and the impressions wait for it (a restarted Redis
   * starts empty, so it then holds exactly these). */
  hrt_redis_stop(&e.redis);
  for (int u = 0; u < 10; u++) {
    hrt_fmt(body, sizeof(body), "{\"user_id\":\"x%03d\",\"k\":2}", u);
    j = hrt_post_text(&e, "/recommend", body, &st);
    ASSERT_EQ(st, 200);
    json_decref(j);
  }
  j = hrt_get(&e, "/experiments/home", &st);
  ASSERT_API_ERROR(j, st, 503, "context_store_unavailable", "");
  json_decref(j);
  if (e.rc != NULL) {
    redisFree(e.rc);
    e.rc = NULL;
  }
  ASSERT_EQ(hrt_redis_restart(&e.redis), 0);
  long total = 0;
  HRT_POLL(ok, 10000, (j = hrt_get(&e, "/experiments/home", &st),
                       total = st == 200
                                   ? hrt_jint(j, "variants[0].impressions") +
                                         hrt_jint(j, "variants[1].impressions") +
                                         hrt_jint(j, "variants[2].impressions")
                                   : -1,
                       json_decref(j), st == 200));
  ASSERT_MSG(ok, "no report after Redis came back");
  ASSERT_EQ(total, 10);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}
