/* test_train.c -- src/train: readers (and their refusals), history order,
 * top-k ties, the protocol metrics on a hand-made case, deterministic
 * generation and fitting, atomic versioned publishing, and the loo
 * acceptance figure on the real MovieLens split. */
#include "test.h"

#include "hr/train.h"
#include "lib/models.h"

#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Wall-clock limits stretch under sanitizers/valgrind like the timeouts. */
static long time_mult(void) {
  const char *m = getenv("HR_TEST_TIMEOUT_MULT");
  return m && atoi(m) > 0 ? atoi(m) : 1;
}

static const char *write_tmp(const char *name, const char *text) {
  static char path[8][600];
  static int k;
  char *p = path[k++ % 8];
  FILE *f;
  snprintf(p, 600, "%s/%s", hr_test_tmpdir(), name);
  f = fopen(p, "w");
  if (f == NULL)
    return NULL;
  fputs(text, f);
  fclose(f);
  return p;
}

static int same_file(const char *a, const char *b) {
  FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
  int ca, cb, same = fa && fb;
  while (same) {
    ca = fgetc(fa);
    cb = fgetc(fb);
    if (ca != cb)
      same = 0;
    if (ca == EOF)
      break;
  }
  if (fa)
    fclose(fa);
  if (fb)
    fclose(fb);
  return same;
}

/* ---------------------------------------------------------------- metrics */

HR_TEST(train_metrics_hand_made) {
  /* 4 users over 20 items: hit at rank 1, hit at rank 3, miss, hit at 10. */
  int32_t l1[10] = {5, 1, 2, 3, 4, 6, 7, 8, 9, 10};
  int32_t l2[10] = {1, 2, 7, 3, 4, 5, 6, 8, 9, 10};
  int32_t l3[10] = {11, 12, 13, 14, 15, 16, 17, 18, 19, 0};
  int32_t l4[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 19};
  hr_metrics_t mt;
  hr_eval_result_t r;

  ASSERT_EQ(hr_metrics_init(&mt, 10, 20), 0);
  hr_metrics_add(&mt, l1, 10, 5);
  hr_metrics_add(&mt, l2, 10, 7);
  hr_metrics_add(&mt, l3, 10, 1);
  hr_metrics_add(&mt, l4, 10, 19);
  hr_metrics_result(&mt, &r);
  hr_metrics_free(&mt);
  ASSERT_EQ(r.users, 4);
  ASSERT_DBL_NEAR(r.hr, 0.75, 1e-12);
  ASSERT_DBL_NEAR(r.ndcg, (1.0 + 0.5 + 1.0 / log2(11.0)) / 4, 1e-12);
  ASSERT_DBL_NEAR(r.mrr, (1.0 + 1.0 / 3 + 0.1) / 4, 1e-12);
  ASSERT_DBL_NEAR(r.coverage, 20.0 / 20, 1e-12); /* 0..19 all shown */
  /* Only the first k count. */
  ASSERT_EQ(hr_metrics_init(&mt, 2, 20), 0);
  hr_metrics_add(&mt, l2, 10, 7);
  hr_metrics_result(&mt, &r);
  hr_metrics_free(&mt);
  ASSERT_DBL_NEAR(r.hr, 0.0, 1e-12);
  ASSERT_DBL_NEAR(r.coverage, 2.0 / 20, 1e-12);
  return 0;
}

HR_TEST(train_topk_ties_and_exclusions) {
  float s[8] = {0.5f, 0.9f, 0.5f, 0.9f, 0.1f, 0.5f, 2.0f, 0.5f};
  unsigned char ex[8] = {0, 0, 0, 0, 0, 0, 1, 0};
  int32_t out[5];

  ASSERT_EQ(hr_topk(s, ex, 8, 5, out), 5);
  ASSERT_EQ(out[0], 1); /* 0.9, lower index first */
  ASSERT_EQ(out[1], 3);
  ASSERT_EQ(out[2], 0); /* 0.5 x4: 0, 2, 5 (7 cut) */
  ASSERT_EQ(out[3], 2);
  ASSERT_EQ(out[4], 5);
  ASSERT_EQ(hr_topk(s, NULL, 8, 1, out), 1);
  ASSERT_EQ(out[0], 6);
  ASSERT_EQ(hr_topk(s, NULL, 3, 10, out), 3);
  return 0;
}

/* ---------------------------------------------------------------- readers */

HR_TEST(train_csv_reader) {
  const char *p = write_tmp("r.csv",
                            "user_id,item_id,rating,ts,location,mood\n"
                            "u1,i1,5,100,home,happy\n"
                            "u1,i2,,101,,sad\n"
                            "u2,i1,3,,work,\n");
  hr_dataset_t ds;
  hr_error_t err = {0};

  ASSERT_NOT_NULL(p);
  ASSERT_EQ(hr_dataset_init(&ds), 0);
  ASSERT_EQ(hr_data_read_csv(&ds, p, &err), 0);
  ASSERT_EQ(ds.n, 3);
  ASSERT_EQ(hr_idmap_size(ds.users), 2);
  ASSERT_EQ(hr_idmap_size(ds.items), 2);
  ASSERT_EQ(ds.n_ctx, 2);
  ASSERT_STR_EQ(ds.ctx_name[0], "location");
  ASSERT_EQ(hr_idmap_size(ds.ctx_vals[0]), 2);
  ASSERT_EQ(ds.ts[1], 101);
  hr_dataset_free(&ds);

  /* A malformed line is an error naming file:line, not a skip. */
  p = write_tmp("bad.csv", "user_id,item_id,ts\nu1,i1,5\nu1,i2,later\n");
  ASSERT_EQ(hr_dataset_init(&ds), 0);
  ASSERT_EQ(hr_data_read_csv(&ds, p, &err), HR_EFORMAT);
  ASSERT_MSG(strstr(err.msg, "bad.csv:3:") != NULL, "%s", err.msg);
  hr_dataset_free(&ds);

  hr_error_clear(&err);
  p = write_tmp("short.csv", "user_id,item_id,mood\nu1,i1\n");
  ASSERT_EQ(hr_dataset_init(&ds), 0);
  ASSERT_EQ(hr_data_read_csv(&ds, p, &err), HR_EFORMAT);
  ASSERT_MSG(strstr(err.msg, "short.csv:2:") != NULL, "%s", err.msg);
  hr_dataset_free(&ds);

  hr_error_clear(&err);
  p = write_tmp("nohdr.csv", "1,2,3\n");
  ASSERT_EQ(hr_dataset_init(&ds), 0);
  ASSERT_EQ(hr_data_read_csv(&ds, p, &err), HR_EFORMAT);
  hr_dataset_free(&ds);
  return 0;
}

/* A NUL byte cannot be part of an id or a value: every reader refuses the
 * line that holds one, naming it, instead of cutting the id short. */
HR_TEST(train_readers_refuse_nul_bytes) {
  static const struct {
    const char *name;
    const char *text;
    size_t len;
    const char *where;
  } cases[] = {
#define NUL_CASE(name, text, where) {name, text, sizeof(text) - 1, where}
      NUL_CASE("n.csv", "user_id,item_id\nu1,i\0" "1\n", "n.csv:2: a NUL byte"),
      NUL_CASE("n.data", "1\t1\n1\t2\0\n", "n.data:2: a NUL byte"),
      NUL_CASE("ni.csv", "item\0_id,g\ni1,a\n", "ni.csv:1: a NUL byte"),
      NUL_CASE("nu.csv", "user_id,age\nu1,3\0" "0\n", "nu.csv:2: a NUL byte"),
#undef NUL_CASE
  };
  for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
    char path[600];
    hr_dataset_t ds;
    hr_error_t err = {0};
    int rc;
    snprintf(path, sizeof(path), "%s/%s", hr_test_tmpdir(), cases[k].name);
    FILE *f = fopen(path, "w");
    ASSERT_NOT_NULL(f);
    ASSERT_EQ(fwrite(cases[k].text, 1, cases[k].len, f), cases[k].len);
    ASSERT_EQ(fclose(f), 0);
    ASSERT_EQ(hr_dataset_init(&ds), 0);
    if (k == 0)
      rc = hr_data_read_csv(&ds, path, &err);
    else if (k == 1)
      rc = hr_data_read_movielens(&ds, path, &err);
    else if (k == 2)
      rc = hr_data_read_items(&ds, path, &err);
    else {
      ASSERT_EQ(hr_dataset_add(&ds, "u1", 2, "i1", 2, 1), 0);
      rc = hr_data_read_users(&ds, path, &err);
    }
    hr_dataset_free(&ds);
    ASSERT_MSG(rc == HR_EFORMAT && strstr(err.msg, cases[k].where) != NULL,
               "case %zu: rc %d, %s", k, rc, err.msg);
  }
  return 0;
}

/* fit --min-rating: both readers leave out (and count) rows rated below
 * the bar, before their context values enter the vocabulary; rows without
 * a rating stay; a NaN rating is an error, not a skip. */
HR_TEST(train_readers_leave_out_rows_below_min_rating) {
  const char *csv = write_tmp("mr.csv", "user_id,item_id,rating,mood\n"
                                        "u1,i1,5,happy\n"
                                        "u1,i2,2,sad\n"
                                        "u2,i1,,happy\n"
                                        "u2,i3,4,\n"
                                        "u3,i4,3.5,calm\n");
  const char *ml = write_tmp("mr.data", "1\t10\t5\t1\n1\t11\t3\t2\n2\t10\n");
  const char *nan = write_tmp("nan.csv", "user_id,item_id,rating\nu1,i1,nan\n");
  hr_dataset_t ds;
  hr_error_t err = {0};

  ASSERT_EQ(hr_dataset_init(&ds), 0);
  ds.min_rating_set = 1;
  ds.min_rating = 4;
  ASSERT_EQ(hr_data_read_csv(&ds, csv, &err), 0);
  ASSERT_EQ(ds.n, 3);
  ASSERT_EQ(ds.below_min_rating, 2);
  ASSERT_EQ(hr_idmap_size(ds.users), 2); /* u3 had only a 3.5 */
  ASSERT_EQ(hr_idmap_size(ds.ctx_vals[0]), 1); /* happy; not sad, calm */
  hr_dataset_free(&ds);

  ASSERT_EQ(hr_dataset_init(&ds), 0);
  ds.min_rating_set = 1;
  ds.min_rating = 4;
  ASSERT_EQ(hr_data_read_movielens(&ds, ml, &err), 0);
  ASSERT_EQ(ds.n, 2);
  ASSERT_EQ(ds.below_min_rating, 1);
  hr_dataset_free(&ds);

  ASSERT_EQ(hr_dataset_init(&ds), 0); /* without the bar every row stays */
  ASSERT_EQ(hr_data_read_csv(&ds, csv, &err), 0);
  ASSERT_EQ(ds.n, 5);
  ASSERT_EQ(ds.below_min_rating, 0);
  ASSERT_EQ(hr_data_read_csv(&ds, nan, &err), HR_EFORMAT);
  ASSERT_MSG(strstr(err.msg, "nan.csv:2:") != NULL, "%s", err.msg);
  hr_error_clear(&err);
  const char *inf = write_tmp("inf.data", "1\t10\t5\n1\t11\t-inf\n");
  ASSERT_EQ(hr_data_read_movielens(&ds, inf, &err), HR_EFORMAT);
  ASSERT_MSG(strstr(err.msg, "inf.data:2:") != NULL, "%s", err.msg);
  hr_dataset_free(&ds);
  return 0;
}

/* The item catalogue: attribute columns are checked against what the
 * model loader accepts, so fit never writes a version the server refuses. */
HR_TEST(train_items_reader_checks_attributes) {
  static const struct {
    const char *text, *msg; /* msg NULL: accepted */
  } cases[] = {
      {"item_id,genres,year\ni1,Comedy|Drama,1995\ni2,,\ni3\n", NULL},
      {"item_id,genres,\ni1,a,b\n", "attribute column 2: empty"},
      {"item_id,g,g\ni1,a,b\n", "named twice"},
      {"item_id,g\ni1,a,b\n", ":2: 2 attribute fields, the header names 1"},
      {"item_id,g\ni1,a\x01b\n", "control character"},
      /* RFC 4180 quotes: commas and "" inside, any field */
      {"\"item_id\",\"genres\",year\n\"i1\",\"Comedy|Drama\",\"1995\"\n", NULL},
      {"item_id,g\ni1,\"a, \"\"b\"\"\",c\n", ":2: 2 attribute fields, the header names 1"},
      {"item_id,g\ni1,\"open\n", ":2: a quoted field does not end on its line"},
      {"item_id,g\ni1,\"a\"b\n", ":2: text after a quoted field's closing quote"},
      {"item_id,g\ni1,a\tb\n", ":2: a TAB inside a field"},
      {"item_id,g\n,a\n", ":2: empty item_id"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    const char *p = write_tmp("items.csv", cases[i].text);
    hr_dataset_t ds;
    hr_error_t err = {0};
    ASSERT_NOT_NULL(p);
    ASSERT_EQ(hr_dataset_init(&ds), 0);
    int rc = hr_data_read_items(&ds, p, &err);
    if (cases[i].msg == NULL) {
      ASSERT_MSG(rc == 0, "case %zu: %s", i, err.msg);
      ASSERT_STR_EQ(ds.attr_header, "genres\tyear");
      ASSERT_STR_EQ(ds.attrs[0], "Comedy|Drama\t1995");
    } else {
      ASSERT_EQ(rc, HR_EFORMAT);
      ASSERT_MSG(strstr(err.msg, cases[i].msg) != NULL, "case %zu: %s", i,
                 err.msg);
    }
    hr_dataset_free(&ds);
  }
  /* A value longer than the loader's limit. */
  char text[600] = "item_id,g\ni1,";
  memset(text + strlen(text), 'v', HR_MODEL_MAX_ATTR_VALUE + 1);
  strcat(text, "\n");
  const char *p = write_tmp("items.csv", text);
  hr_dataset_t ds;
  hr_error_t err = {0};
  ASSERT_EQ(hr_dataset_init(&ds), 0);
  ASSERT_EQ(hr_data_read_items(&ds, p, &err), HR_EFORMAT);
  ASSERT_MSG(strstr(err.msg, "longer than 256") != NULL, "%s", err.msg);
  hr_dataset_free(&ds);
  /* Ids and values must be UTF-8, as items.tsv and JSON answers are. */
  hr_error_clear(&err);
  p = write_tmp("items.csv", "item_id,g\ni1,caf\xe9\n");
  ASSERT_EQ(hr_dataset_init(&ds), 0);
  ASSERT_EQ(hr_data_read_items(&ds, p, &err), HR_EFORMAT);
  ASSERT_MSG(strstr(err.msg, ":2: an item id or attribute that is not UTF-8"),
             "%s", err.msg);
  hr_dataset_free(&ds);
  hr_error_clear(&err);
  p = write_tmp("l1.csv", "user_id,item_id\nu1,ok\nu1,caf\xe9\n");
  ASSERT_EQ(hr_dataset_init(&ds), 0);
  ASSERT_EQ(hr_data_read_csv(&ds, p, &err), HR_EFORMAT);
  ASSERT_MSG(strstr(err.msg, "l1.csv:3: a user_id or item_id that is not "
                             "UTF-8"), "%s", err.msg);
  hr_error_clear(&err);
  p = write_tmp("l1.data", "1\tcaf\xe9\n");
  ASSERT_EQ(hr_data_read_movielens(&ds, p, &err), HR_EFORMAT);
  ASSERT_MSG(strstr(err.msg, "l1.data:1: a user or item id that is not "
                             "UTF-8"), "%s", err.msg);
  hr_dataset_free(&ds);
  hr_error_clear(&err);
  /* A quoted header is a CSV header even with a '|' in it (u.item has
   * '|' but no item_id). */
  p = write_tmp("items.csv", "\"item_id\",\"tags|x\"\ni1,a\n");
  ASSERT_EQ(hr_dataset_init(&ds), 0);
  ASSERT_MSG(hr_data_read_items(&ds, p, &err) == 0, "%s", err.msg);
  ASSERT_STR_EQ(ds.attr_header, "tags|x");
  hr_dataset_free(&ds);
  /* A quoted value keeps its comma and its quotes; the cell after it is
   * the next attribute. */
  p = write_tmp("items.csv", "item_id,actor,year\n"
                             "i1,\"Harry Connick, Jr.\",1998\n"
                             "i2,\"Say \"\"hi\"\"\",\n"
                             "i3,plain,\"\"\n");
  ASSERT_EQ(hr_dataset_init(&ds), 0);
  ASSERT_MSG(hr_data_read_items(&ds, p, &err) == 0, "%s", err.msg);
  ASSERT_STR_EQ(ds.attrs[0], "Harry Connick, Jr.\t1998");
  ASSERT_STR_EQ(ds.attrs[1], "Say \"hi\"\t");
  ASSERT_STR_EQ(ds.attrs[2], "plain\t");
  hr_dataset_free(&ds);
  return 0;
}

HR_TEST(train_movielens_reader) {
  const char *p = write_tmp("u.data", "1\t10\t5\t881250949\n"
                                      "2\t20\t3\t881250950\n");
  const char *q = write_tmp("ratings.dat", "1::10::5::978300760\n");
  const char *bad = write_tmp("bad.data", "1\t10\t5\t1\n1\t11\t4\tx\n");
  hr_dataset_t ds;
  hr_error_t err = {0};

  ASSERT_EQ(hr_dataset_init(&ds), 0);
  ASSERT_EQ(hr_data_read_movielens(&ds, p, &err), 0);
  ASSERT_EQ(hr_data_read_movielens(&ds, q, &err), 0);
  ASSERT_EQ(ds.n, 3);
  ASSERT_EQ(hr_idmap_size(ds.items), 2);
  ASSERT_EQ(ds.ts[2], 978300760);
  ASSERT_EQ(hr_data_read_movielens(&ds, bad, &err), HR_EFORMAT);
  ASSERT_MSG(strstr(err.msg, "bad.data:2:") != NULL, "%s", err.msg);
  hr_error_clear(&err);
  ASSERT_EQ(hr_data_read_movielens(&ds, "/nonexistent/u.data", &err),
            HR_EIO);
  hr_dataset_free(&ds);
  return 0;
}

HR_TEST(train_user_attribute_reader) {
  const char *ev = write_tmp("ua.data", "1\t10\t5\t1\n2\t20\t3\t2\n"
                                        "3\t20\t3\t2\n");
  const char *uu = write_tmp("u.user", "1|24|M|technician|85711\n"
                                       "2|53|F|other|94043\n"
                                       "9|30|F|writer|10001\n");
  const char *csv = write_tmp("users.csv", "user_id,age,plan\n1,17,free\n"
                                           "3,,pro\n");
  const char *bad_hdr = write_tmp("bad1.csv", "id,age\n1,3\n");
  const char *bad_row = write_tmp("bad2.csv", "user_id,age\n1,3,4\n");
  const char *wide = write_tmp("bad3.csv", "user_id,a,b,c,d,e,f,g,h,i\n");
  const char *latin1 = write_tmp("bad4.csv", "user_id,city\n1,M\xfcnchen\n");
  const char *bad_name = write_tmp("bad5.csv", "user_id,c\xfcty\n1,x\n");
  hr_dataset_t ds;
  hr_error_t err = {0};

  ASSERT_EQ(hr_dataset_init(&ds), 0);
  ASSERT_EQ(hr_data_read_movielens(&ds, ev, &err), 0);
  ASSERT_EQ(hr_data_read_users(&ds, uu, &err), 0);
  ASSERT_EQ(ds.n_uattr, 3);
  ASSERT_STR_EQ(ds.uattr_name[0], "user.age");
  ASSERT_STR_EQ(ds.uattr_name[2], "user.occupation");
  /* ages become groups; user 9 has no interaction and is skipped; user 3
   * is not in the file: unknown */
  ASSERT_STR_EQ(hr_idmap_str(ds.uattr_vals[0], (size_t)ds.uattr[0]),
                "18-24");
  ASSERT_STR_EQ(hr_idmap_str(ds.uattr_vals[0],
                             (size_t)ds.uattr[1 * HR_DS_UATTR]),
                "50-55");
  ASSERT_EQ(hr_idmap_size(ds.uattr_vals[2]), 2);
  ASSERT_EQ(ds.uattr[2 * HR_DS_UATTR], -1);
  ASSERT_EQ(hr_data_read_users(&ds, csv, &err), HR_EINVAL); /* twice */
  hr_error_clear(&err);
  hr_dataset_free(&ds);

  ASSERT_EQ(hr_dataset_init(&ds), 0);
  ASSERT_EQ(hr_data_read_movielens(&ds, ev, &err), 0);
  ASSERT_EQ(hr_data_read_users(&ds, csv, &err), 0);
  ASSERT_EQ(ds.n_uattr, 2);
  ASSERT_STR_EQ(ds.uattr_name[1], "user.plan");
  ASSERT_STR_EQ(hr_idmap_str(ds.uattr_vals[0], (size_t)ds.uattr[0]),
                "under_18");
  ASSERT_EQ(ds.uattr[2 * HR_DS_UATTR], -1); /* an empty cell: unknown */
  ASSERT_STR_EQ(hr_idmap_str(ds.uattr_vals[1],
                             (size_t)ds.uattr[2 * HR_DS_UATTR + 1]),
                "pro");
  /* the prior learns the attributes as fields "user.<name>" */
  hr_ctx_prior_t cp;
  ASSERT_EQ(hr_ctx_prior_fit(&ds, hr_idmap_size(ds.items), NULL, 20.0f, &cp),
            0);
  ASSERT_EQ(cp.n_fields, 2);
  ASSERT(cp.user[0] && cp.user[1]);
  ASSERT_EQ(cp.n_values, 1 + 2); /* under_18; free, pro */
  hr_ctx_prior_free(&cp);
  hr_dataset_free(&ds);

  ASSERT_EQ(hr_dataset_init(&ds), 0);
  ASSERT_EQ(hr_data_read_movielens(&ds, ev, &err), 0);
  ASSERT_EQ(hr_data_read_users(&ds, bad_hdr, &err), HR_EFORMAT);
  ASSERT_MSG(strstr(err.msg, "bad1.csv:1:") != NULL, "%s", err.msg);
  hr_error_clear(&err);
  hr_dataset_free(&ds);
  ASSERT_EQ(hr_dataset_init(&ds), 0);
  ASSERT_EQ(hr_data_read_movielens(&ds, ev, &err), 0);
  ASSERT_EQ(hr_data_read_users(&ds, bad_row, &err), HR_EFORMAT);
  ASSERT_MSG(strstr(err.msg, "bad2.csv:2:") != NULL, "%s", err.msg);
  hr_error_clear(&err);
  hr_dataset_free(&ds);
  /* more attributes than HR_DS_UATTR; bytes that are not UTF-8 */
  const char *const refused[] = {wide, latin1, bad_name};
  for (int k = 0; k < 3; k++) {
    ASSERT_EQ(hr_dataset_init(&ds), 0);
    ASSERT_EQ(hr_data_read_movielens(&ds, ev, &err), 0);
    ASSERT_EQ(hr_data_read_users(&ds, refused[k], &err), HR_EFORMAT);
    hr_error_clear(&err);
    hr_dataset_free(&ds);
  }
  return 0;
}

HR_TEST(train_history_order) {
  /* Same timestamp: ascending numeric item id (9 before 10); a repeated
   * item counts at its latest position. */
  const char *p = write_tmp("h.data", "1\t10\t1\t5\n"
                                      "1\t9\t1\t5\n"
                                      "1\t3\t1\t1\n"
                                      "1\t7\t1\t6\n"
                                      "1\t3\t1\t7\n"
                                      "2\t9\t1\t1\n");
  hr_dataset_t ds;
  hr_csr_t h;
  hr_error_t err = {0};

  ASSERT_EQ(hr_dataset_init(&ds), 0);
  ASSERT_EQ(hr_data_read_movielens(&ds, p, &err), 0);
  ASSERT_EQ(hr_dataset_histories(&ds, &h), 0);
  ASSERT_EQ(h.n_users, 2);
  ASSERT_EQ(h.ptr[1], 4);
  ASSERT_EQ(h.ptr[2], 5);
  const char *want[4] = {"9", "10", "7", "3"};
  for (int k = 0; k < 4; k++)
    ASSERT_STR_EQ(hr_idmap_str(ds.items, (size_t)h.items[k]), want[k]);
  hr_csr_free(&h);
  hr_dataset_free(&ds);
  return 0;
}

/* ------------------------------------------------------------- generator */

HR_TEST(train_gen_is_deterministic) {
  char a[600], b[600], c[600], fa[700], fb[700];
  hr_gen_opts_t o = {2000, 500, 60000, 1, 1.0, 0};
  hr_error_t err = {0};
  struct timespec t0, t1;
  static const char *files[3] = {"events.csv", "items.csv", "contexts.csv"};

  snprintf(a, sizeof(a), "%s/ga", hr_test_tmpdir());
  snprintf(b, sizeof(b), "%s/gb", hr_test_tmpdir());
  snprintf(c, sizeof(c), "%s/gc", hr_test_tmpdir());
  clock_gettime(CLOCK_MONOTONIC, &t0);
  ASSERT_EQ(hr_gen_write(a, &o, &err), 0);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  ASSERT_LT((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000,
            2000 * time_mult());
  ASSERT_EQ(hr_gen_write(b, &o, &err), 0);
  o.seed = 2;
  ASSERT_EQ(hr_gen_write(c, &o, &err), 0);
  for (int k = 0; k < 3; k++) {
    snprintf(fa, sizeof(fa), "%s/%s", a, files[k]);
    snprintf(fb, sizeof(fb), "%s/%s", b, files[k]);
    ASSERT_MSG(same_file(fa, fb), "%s differs for the same seed", files[k]);
  }
  snprintf(fa, sizeof(fa), "%s/events.csv", a);
  snprintf(fb, sizeof(fb), "%s/events.csv", c);
  ASSERT_MSG(!same_file(fa, fb), "seed 2 gave the same events");

  /* The output is what `fit --format csv` reads: 60000 rows, every column
   * after ts a context. */
  hr_dataset_t ds;
  ASSERT_EQ(hr_dataset_init(&ds), 0);
  snprintf(fa, sizeof(fa), "%s/events.csv", a);
  ASSERT_EQ(hr_data_read_csv(&ds, fa, &err), 0);
  ASSERT_EQ(ds.n, 60000);
  ASSERT_EQ(ds.n_ctx, 3);
  ASSERT_STR_EQ(ds.ctx_name[2], "device");
  hr_dataset_free(&ds);
  return 0;
}

/* ----------------------------------------------------------- fit + write */

HR_TEST(train_fit_is_deterministic) {
  hr_dataset_t d1, d2;
  hr_csr_t h1, h2;
  hr_ials_t m1, m2;

  ASSERT_EQ(hrt_fit_gen(&d1, &h1, &m1, 1), 0);
  ASSERT_EQ(hrt_fit_gen(&d2, &h2, &m2, 2), 0);
  ASSERT(memcmp(m1.X, m2.X, m1.n_users * 8 * sizeof(float)) == 0);
  ASSERT(memcmp(m1.Y, m2.Y, m1.n_items * 8 * sizeof(float)) == 0);
  hr_ials_free(&m1);
  hr_ials_free(&m2);
  hr_csr_free(&h1);
  hr_csr_free(&h2);
  hr_dataset_free(&d1);
  hr_dataset_free(&d2);
  return 0;
}

HR_TEST(train_write_publishes_new_versions) {
  char slot[600], p1[700], p2[700];
  hr_dataset_t ds;
  hr_csr_t h;
  hr_ials_t m;
  hr_ials_opts_t o;
  hr_error_t err = {0};
  hr_model_t *a, *b;
  DIR *d;
  struct dirent *e;

  ASSERT_EQ(hrt_fit_gen(&ds, &h, &m, 2), 0);
  hr_ials_opts_default(&o);
  o.factors = 8;
  snprintf(slot, sizeof(slot), "%s/models/default", hr_test_tmpdir());
  ASSERT_EQ(hr_train_write(slot, &ds, &h, &m, &o, NULL, NULL, p1, sizeof(p1),
                           &err), 0);
  ASSERT_EQ(hr_train_write(slot, &ds, &h, &m, &o, NULL, NULL, p2, sizeof(p2),
                           &err), 0);
  a = hr_model_open(p1, &err);
  ASSERT_MSG(a != NULL, "%s", err.msg);
  b = hr_model_open(p2, &err);
  ASSERT_MSG(b != NULL, "%s", err.msg);
  ASSERT_GT(hr_model_version(b), hr_model_version(a));
  ASSERT_GE(hr_model_version(a), (uint64_t)time(NULL) - 60);
  ASSERT_STR_EQ(hr_model_name(a), "default");
  ASSERT_EQ(json_integer_value(json_object_get(hr_model_manifest(b),
                                               "version")),
            (json_int_t)hr_model_version(b));
  hr_model_free(a);
  hr_model_free(b);
  /* No temporary directory is left behind. */
  d = opendir(slot);
  ASSERT_NOT_NULL(d);
  while ((e = readdir(d)) != NULL)
    ASSERT_MSG(strncmp(e->d_name, ".tmp", 4) != 0, "left %s", e->d_name);
  closedir(d);
  /* A far-future version keeps the order: next = that + 1. */
  char fut[700];
  snprintf(fut, sizeof(fut), "%s/99999999999", slot);
  ASSERT_EQ(mkdir(fut, 0755), 0);
  ASSERT_EQ(hr_train_write(slot, &ds, &h, &m, &o, NULL, NULL, p1, sizeof(p1),
                           &err), 0);
  ASSERT_MSG(strstr(p1, "/100000000000") != NULL, "%s", p1);
  /* Pruning keeps the newest versions; other entries are left alone. */
  {
    int removed = -1, left = 0;
    char other[700];
    snprintf(other, sizeof(other), "%s/notes", slot);
    ASSERT_EQ(mkdir(other, 0755), 0);
    ASSERT_EQ(hr_model_prune(slot, 0, &removed, &err), 0); /* keep all */
    ASSERT_EQ(removed, 0);
    ASSERT_EQ(hr_model_prune(slot, 2, &removed, &err), 0);
    ASSERT_EQ(removed, 2); /* of 4 versions */
    a = hr_model_open(p1, &err); /* the newest survives intact */
    ASSERT_MSG(a != NULL, "%s", err.msg);
    hr_model_free(a);
    ASSERT_EQ(access(fut, F_OK), 0);
    ASSERT_EQ(access(p2, F_OK), -1);
    ASSERT_EQ(access(other, F_OK), 0);
    d = opendir(slot);
    ASSERT_NOT_NULL(d);
    while ((e = readdir(d)) != NULL) {
      ASSERT_MSG(strncmp(e->d_name, ".tmp", 4) != 0, "left %s", e->d_name);
      left += e->d_name[0] >= '1' && e->d_name[0] <= '9';
    }
    closedir(d);
    ASSERT_EQ(left, 2);
  }
  hr_ials_free(&m);
  hr_csr_free(&h);
  hr_dataset_free(&ds);
  return 0;
}

/* ------------------------------------------------------------------- loo */

/* A loo split of 3 users and 6 items in the test's directory. */
static int tiny_split(char *dir, size_t cap) {
  snprintf(dir, cap, "%s/split", hr_test_tmpdir());
  ASSERT_EQ(mkdir(dir, 0755), 0);
  ASSERT_NOT_NULL(write_tmp("split/meta.json", "{\"n_users\":3,"
                                               "\"n_items\":6}"));
  ASSERT_NOT_NULL(write_tmp("split/train.tsv",
                            "1\t1\t5\t1\n1\t2\t5\t2\n2\t1\t5\t1\n"
                            "2\t3\t5\t2\n3\t2\t5\t1\n3\t3\t5\t2\n"));
  ASSERT_NOT_NULL(write_tmp("split/valid.tsv",
                            "1\t3\t5\t3\n2\t2\t5\t3\n3\t1\t5\t3\n"));
  ASSERT_NOT_NULL(write_tmp("split/test.tsv",
                            "1\t4\t5\t4\n2\t5\t5\t4\n3\t6\t5\t4\n"));
  return 0;
}

HR_TEST(train_loo_tiny_split) {
  /* 3 users, 6 items; checks plumbing and the TSV, not quality. */
  char dir[600], out[700];
  hr_ials_opts_t o;
  hr_eval_result_t r;
  hr_error_t err = {0};
  FILE *f;
  char line[256];
  int lines = 0;

  ASSERT_EQ(tiny_split(dir, sizeof(dir)), 0);
  snprintf(out, sizeof(out), "%s/top.tsv", hr_test_tmpdir());
  hr_ials_opts_default(&o);
  o.factors = 4;
  o.iters = 2;
  ASSERT_EQ(hr_eval_loo(dir, 0, &o, out, &r, &err), 0);
  ASSERT_EQ(r.users, 3);
  ASSERT_EQ(r.n_items, 6);
  /* Valid: every user's valid item is one of the 4 rankable ones, so a
   * 10-list holds it: HR = 1. */
  ASSERT_DBL_NEAR(r.hr, 1.0, 1e-12);
  f = fopen(out, "r");
  ASSERT_NOT_NULL(f);
  while (fgets(line, sizeof(line), f) != NULL) {
    int tabs = 0;
    for (char *p = line; *p; p++)
      tabs += *p == '\t';
    ASSERT_EQ(tabs, 4); /* user + 6 - 2 excluded items */
    lines++;
  }
  fclose(f);
  ASSERT_EQ(lines, 3);
  ASSERT_EQ(hr_eval_loo(dir, 1, &o, NULL, &r, &err), 0);
  ASSERT_EQ(r.users, 3);
  return 0;
}

/* eval with no model named: fit's selection on train -> valid, the winner
 * refitted on train+valid and scored on test (plumbing, small models). */
HR_TEST(train_loo_select_tiny_split) {
  char dir[600];
  hr_ials_opts_t o;
  hr_seq_opts_t so;
  hr_eval_result_t r;
  hr_selection_t sel;
  hr_error_t err = {0};

  ASSERT_EQ(tiny_split(dir, sizeof(dir)), 0);
  hr_ials_opts_default(&o);
  o.factors = 4;
  o.iters = 2;
  hrt_small_seq_opts(&so);
  so.dims.L = 4; /* shorter than the CNN's window: it shrinks to 4 */
  hr_select_opts_t opts = {&o, &so, 0, 600, "loo-valid", "tiny"};
  int rc = hr_eval_loo_select(dir, 1, &opts, NULL, &r, &sel, &err);
  ASSERT_MSG(rc == 0, "%d: %s", rc, err.msg);
  /* no context: popularity, ials, ease, dae, seq, cnn, gru */
  ASSERT_EQ(sel.n, 7);
  ASSERT(sel.winner >= 0 && (size_t)sel.winner < sel.n);
  for (size_t k = 0; k < sel.n; k++)
    ASSERT_MSG(sel.r[k].state == HR_CAND_SCORED, "%s: %s", sel.r[k].cand.name,
               sel.r[k].note);
  ASSERT_STR_EQ(json_string_value(json_object_get(sel.report, "winner")),
                sel.r[sel.winner].cand.name);
  ASSERT_EQ(r.users, 3);
  ASSERT_EQ(r.n_items, 6);
  hr_selection_free(&sel);
  return 0;
}

HR_TEST_T(train_loo_ml100k_acceptance, 120) {
  char dir[1024];
  hr_ials_opts_t o;
  hr_eval_result_t r;
  hr_error_t err = {0};

  HR_NEED_DATA("ml-100k/splits/loo", dir);
  hr_ials_opts_default(&o);
  ASSERT_EQ(hr_eval_loo(dir, 1, &o, NULL, &r, &err), 0);
  fprintf(stderr, "  loo test: HR@10 %.6f NDCG@10 %.6f train %.2fs\n", r.hr,
          r.ndcg, r.train_seconds);
  ASSERT_EQ(r.users, 943);
  ASSERT_EQ(r.n_items, 1682);
  ASSERT_MSG(r.ndcg >= 0.045, "NDCG@10 %.6f < 0.045", r.ndcg);
  ASSERT_MSG(r.train_seconds < 30.0 * (double)time_mult(),
             "training took %.1f s", r.train_seconds);
  return 0;
}

/* MovieLens u.item: the genre flags and the release decade become
 * attributes; a malformed line is refused with its number. */
HR_TEST(train_items_reader_reads_uitem) {
  const char *p = write_tmp(
      "u.item",
      "1|Toy Story (1995)|01-Jan-1995||http://x|0|0|0|1|1|1|0|0|0|0|0|0|0|0|"
      "0|0|0|0|0\n"
      "2|Unknown (1967)||||1|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0\n");
  hr_dataset_t ds;
  hr_error_t err = {0};
  ASSERT_EQ(hr_dataset_init(&ds), 0);
  ASSERT_EQ(hr_data_read_items(&ds, p, &err), 0);
  ASSERT_STR_EQ(ds.attr_header, "genre\tdecade");
  ASSERT_STR_EQ(ds.attrs[hr_idmap_find(ds.items, "1", 1)],
                "Animation|Children's|Comedy\t1990s");
  ASSERT_STR_EQ(ds.attrs[hr_idmap_find(ds.items, "2", 1)], "unknown\t");
  hr_dataset_free(&ds);
  p = write_tmp("u.item", "1|T (1995)|01-Jan-1995||http://x|0|2|0\n");
  ASSERT_EQ(hr_dataset_init(&ds), 0);
  ASSERT_EQ(hr_data_read_items(&ds, p, &err), HR_EFORMAT);
  ASSERT_MSG(strstr(err.msg, ":1:") != NULL, "%s", err.msg);
  hr_dataset_free(&ds);
  return 0;
}

/* EASE's closed form on a hand-made case, and the served user vector
 * (recency-weighted indicator) times the item matrix. Users u1 {a, b},
 * u2 {a}, lambda 1: G + I = [[3,1],[1,2]], P = [[2,-1],[-1,3]] / 5, so
 * B[a][b] = -P_ab / P_bb = 1/3 and B[b][a] = -P_ba / P_aa = 1/2. */
HR_TEST(train_ease_closed_form_and_served_scores) {
  char dir[700];
  hr_dataset_t ds;
  hr_csr_t h = {0};
  hr_ease_opts_t o;
  hr_ease_t e;
  hr_error_t err = {0};
  float u[2], s[2];

  ASSERT_EQ(hr_dataset_init(&ds), 0);
  ASSERT_EQ(hr_dataset_add(&ds, "u1", 2, "a", 1, 1), 0);
  ASSERT_EQ(hr_dataset_add(&ds, "u1", 2, "b", 1, 2), 0);
  ASSERT_EQ(hr_dataset_add(&ds, "u2", 2, "a", 1, 3), 0);
  ASSERT_EQ(hr_dataset_histories(&ds, &h), 0);
  hr_ease_opts_default(&o);
  o.lambda = 1.0f;
  o.decay = 0.5f;
  ASSERT_EQ(hr_ease_fit(&h, &o, &e, &err), 0);
  /* item_emb row i = B[:, i]: a = (B_aa, B_ba) = (0, 1/2), b = (1/3, 0) */
  ASSERT_DBL_NEAR(e.items[0], 0.0, 1e-6);
  ASSERT_DBL_NEAR(e.items[1], 0.5, 1e-6);
  ASSERT_DBL_NEAR(e.items[2], 1.0 / 3.0, 1e-6);
  ASSERT_DBL_NEAR(e.items[3], 0.0, 1e-6);
  char parent[700];
  snprintf(parent, sizeof(parent), "%s/ease", hr_test_tmpdir());
  snprintf(dir, sizeof(dir), "%s/7", parent);
  ASSERT_EQ(mkdir(parent, 0755), 0);
  ASSERT_EQ(mkdir(dir, 0755), 0);
  ASSERT_EQ(hr_ease_write(NULL, dir, &ds, &h, &e, &o, NULL, NULL, NULL, 0,
                          &err), 0);
  hr_model_t *m = hr_model_open(dir, &err);
  ASSERT_MSG(m != NULL, "%s", err.msg);
  ASSERT_STR_EQ(hr_model_kind(m), "ease");
  ASSERT_EQ(hr_model_dim(m), 2);
  /* u1, newest first b then a: vector (a 0.5, b 1); scores a = 1 * B[b][a]
   * = 0.5, b = 0.5 * B[a][b] = 1/6, plus the popularity prior */
  long u1 = hr_model_user_index(m, "u1");
  ASSERT_EQ(hr_model_user_vector(m, u1, NULL, u), 0);
  ASSERT_DBL_NEAR(u[0], 0.5, 1e-6);
  ASSERT_DBL_NEAR(u[1], 1.0, 1e-6);
  hr_model_score_items(m, u, s);
  ASSERT_DBL_NEAR(s[0], 0.5, 2e-4);
  ASSERT_DBL_NEAR(s[1], 1.0 / 6.0, 2e-4);
  /* a live event on b for u2 comes first: (a 0.5, b 1) as well */
  long items[1] = {1};
  hr_history_t rec = {items, 1, NULL, 0, NULL, NULL, 0};
  ASSERT_EQ(hr_model_user_vector(m, hr_model_user_index(m, "u2"), &rec,
                                 u), 0);
  ASSERT_DBL_NEAR(u[0], 0.5, 1e-6);
  ASSERT_DBL_NEAR(u[1], 1.0, 1e-6);
  hr_model_free(m);
  hr_ease_free(&e);
  hr_csr_free(&h);
  hr_dataset_free(&ds);
  return 0;
}

/* The DAE's gradient against central finite differences, every
 * parameter of a small network. */
HR_TEST(train_dae_gradient_matches_finite_differences) {
  hr_dae_t m = {0};
  size_t n = 7, B = 2, np;
  uint64_t s = 12345;
  m.n_items = n;
  m.dim = 3;
  np = hr_dae_param_count(n, 3);
  float *w = malloc(sizeof(float) * np), *g = calloc(np, sizeof(float));
  float *work = malloc(sizeof(float) * hr_dae_work_floats(n, 3, B));
  float X[14], T[14] = {0};
  ASSERT(w && g && work);
  for (size_t k = 0; k < np; k++) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    w[k] = (float)((double)(s >> 11) / 9007199254740992.0 - 0.5);
  }
  for (size_t k = 0; k < 14; k++)
    X[k] = (float)((k * 7 % 5) * 0.2);
  T[1] = T[4] = 0.5f;
  T[7 + 0] = T[7 + 2] = T[7 + 6] = 1.0f / 3;
  hr_dae_bind(&m, w);
  hr_dae_loss_grad(&m, X, T, B, g, work);
  int bad = 0;
  for (size_t k = 0; k < np; k++) {
    float keep = w[k], h = 1e-2f;
    w[k] = keep + h;
    double up = hr_dae_loss_grad(&m, X, T, B, NULL, work);
    w[k] = keep - h;
    double dn = hr_dae_loss_grad(&m, X, T, B, NULL, work);
    w[k] = keep;
    double num = (up - dn) / (2.0 * h);
    if (fabs(num - g[k]) > 2e-3 + 2e-2 * fabs(num)) {
      fprintf(stderr, "  param %zu: analytic %.6f numeric %.6f\n", k, g[k],
              num);
      bad++;
    }
  }
  ASSERT_EQ(bad, 0);
  free(w);
  free(g);
  free(work);
  return 0;
}

/* The served DAE (kind dae) computes the trainer's user vector and
 * scores: tanh(b1 + x W1), x the user's items weighted decay^k by recency
 * at unit length, then W2 u + b2. */
HR_TEST(train_dae_served_matches_trainer) {
  char parent[700], dir[760];
  hr_dataset_t ds;
  hr_csr_t h = {0};
  hr_dae_opts_t o;
  hr_dae_t m;
  hr_error_t err = {0};

  ASSERT_EQ(hr_dataset_init(&ds), 0);
  static const char *const rows[][2] = {
      {"u1", "a"}, {"u1", "b"}, {"u1", "c"}, {"u2", "b"}, {"u2", "d"},
      {"u3", "a"}, {"u3", "d"}, {"u3", "e"}, {"u3", "b"}};
  for (int r = 0; r < 9; r++)
    ASSERT_EQ(hr_dataset_add(&ds, rows[r][0], 2, rows[r][1], 1, r + 1), 0);
  ASSERT_EQ(hr_dataset_histories(&ds, &h), 0);
  hr_dae_opts_default(&o);
  o.dim = 4;
  o.epochs = 20;
  o.batch = o.dim / 2; /* two of the three users a batch */
  o.threads = 1;
  o.decay = 0.7f;
  ASSERT_EQ(hr_dae_fit(&h, &o, &m, &err), 0);
  snprintf(parent, sizeof(parent), "%s/dae", hr_test_tmpdir());
  snprintf(dir, sizeof(dir), "%s/3", parent);
  ASSERT_EQ(mkdir(parent, 0755), 0);
  ASSERT_EQ(mkdir(dir, 0755), 0);
  ASSERT_EQ(hr_dae_write(NULL, dir, &ds, &h, &m, &o, NULL, NULL, NULL, 0,
                         &err), 0);
  hr_model_t *mm = hr_model_open(dir, &err);
  ASSERT_MSG(mm != NULL, "%s", err.msg);
  ASSERT_STR_EQ(hr_model_kind(mm), "dae");
  /* u3: e (newest), d, a and b's positions as the trainer keeps them */
  long u = hr_model_user_index(mm, "u3");
  size_t nh;
  const int32_t *hist = hr_model_user_history(mm, u, &nh);
  ASSERT_EQ(nh, 4);
  float want[4], got[4], sc[5];
  double norm = 0, wk = 1;
  for (size_t k = 0; k < nh; k++, wk *= 0.7)
    norm += wk * wk;
  for (int c = 0; c < 4; c++) {
    double a = m.b1[c];
    wk = 1 / sqrt(norm);
    for (size_t k = nh; k-- > 0; wk *= 0.7)
      a += wk * m.W1[(size_t)hist[k] * 4 + (size_t)c];
    want[c] = (float)tanh(a);
  }
  ASSERT_EQ(hr_model_user_vector(mm, u, NULL, got), 0);
  for (int c = 0; c < 4; c++)
    ASSERT_DBL_NEAR(got[c], want[c], 1e-5);
  hr_model_score_items(mm, got, sc);
  for (size_t i = 0; i < 5; i++) {
    double z = m.b2[i];
    for (int c = 0; c < 4; c++)
      z += (double)m.W2[i * 4 + (size_t)c] * got[c];
    ASSERT_DBL_NEAR(sc[i], z, 1e-4);
  }
  /* nobody: zeros, so that the priors answer */
  ASSERT_EQ(hr_model_user_vector(mm, -1, NULL, got), 0);
  for (int c = 0; c < 4; c++)
    ASSERT_DBL_NEAR(got[c], 0.0, 0);
  hr_model_free(mm);
  hr_dae_free(&m);
  hr_csr_free(&h);
  hr_dataset_free(&ds);
  return 0;
}
