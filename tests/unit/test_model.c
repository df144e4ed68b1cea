/* test_model.c -- src/model: writer -> loader round trip, refusal of
 * corrupt version directories with the right code, id lookups, CRC-32 and
 * the iALS fold-in. */
#include "test.h"

#include "hr/crc.h"
#include "hr/model.h"
#include "hr/train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------- helpers */

#define D 4
#define NI 6
#define NU 3

static float item_emb[NI * D], user_emb[NU * D], yty[D * D], prior[NI];
static uint64_t hptr[NU + 1] = {0, 2, 5, 6};
static int32_t hitems[6] = {0, 1, 2, 3, 4, 5};
static float extra[3] = {1, 2, 3};
static float item_scale = 1, user_scale = 1; /* for the smoke test */

/* A small hand-made iALS model in <tmp>/slot/7; returns its path. */
static const char *write_small(int with_extra) {
  static char dir[512];
  static const char *items[NI] = {"a", "b", "c", "d", "e", "f"};
  static const char *attrs[NI] = {"x\t1", "y\t2", "z\t3", "x\t4", "y\t5",
                                  "z\t6"};
  static const char *users[NU] = {"alice", "bob", "carol"};
  hr_tensor_t t[7] = {
      {"item_emb", HR_DT_F32, 2, {NI, D, 1, 1}, item_emb, 0},
      {"yty", HR_DT_F32, 2, {D, D, 1, 1}, yty, 0},
      {"user_emb", HR_DT_F32, 2, {NU, D, 1, 1}, user_emb, 0},
      {"item_prior", HR_DT_F32, 1, {NI, 1, 1, 1}, prior, 0},
      {"user_hist_ptr", HR_DT_U64, 1, {NU + 1, 1, 1, 1}, hptr, 0},
      {"user_hist_items", HR_DT_I32, 1, {6, 1, 1, 1}, hitems, 0},
      {"future_ann_graph", HR_DT_F32, 1, {3, 1, 1, 1}, extra, 0},
  };
  hr_model_spec_t s = {0};
  hr_error_t err = {0};

  for (int i = 0; i < NI * D; i++)
    item_emb[i] = item_scale * ((float)((i * 37) % 11) / 10.0f - 0.5f);
  for (int i = 0; i < NU * D; i++)
    user_emb[i] = user_scale * (float)((i * 13) % 7) / 7.0f;
  for (int i = 0; i < D; i++)
    for (int j = 0; j < D; j++) {
      double g = 0;
      for (int k = 0; k < NI; k++)
        g += item_emb[k * D + i] * item_emb[k * D + j];
      yty[i * D + j] = (float)g;
    }
  for (int i = 0; i < NI; i++)
    prior[i] = 1e-4f * (float)(NI - i);
  s.kind = "ials";
  s.dim = D;
  s.n_items = NI;
  s.n_users = NU;
  s.item_ids = items;
  s.item_attr_header = "category\tlength";
  s.item_attrs = attrs;
  s.user_ids = users;
  s.tensors = t;
  s.n_tensors = with_extra ? 7 : 6;
  s.params = json_pack("{sf sf sf sf si}", "alpha", 10.0, "reg", 1.0,
                       "decay", 0.9, "floor", 0.0, "cap", 0);
  snprintf(dir, sizeof(dir), "%s/slot/7", hr_test_tmpdir());
  char slot[512];
  snprintf(slot, sizeof(slot), "%s/slot", hr_test_tmpdir());
  mkdir(slot, 0755);
  mkdir(dir, 0755);
  int rc = hr_model_write_files(dir, &s, "slot", 7, &err);
  json_decref(s.params);
  if (rc != 0) {
    fprintf(stderr, "write failed: %s\n", err.msg);
    return NULL;
  }
  return dir;
}

static char *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  char *buf;
  long len;
  if (f == NULL)
    return NULL;
  fseek(f, 0, SEEK_END);
  len = ftell(f);
  fseek(f, 0, SEEK_SET);
  buf = malloc((size_t)len + 1);
  if (buf && fread(buf, 1, (size_t)len, f) != (size_t)len) {
    free(buf);
    buf = NULL;
  }
  fclose(f);
  *n = (size_t)len;
  return buf;
}

static int spit(const char *path, const char *buf, size_t n) {
  FILE *f = fopen(path, "wb");
  if (f == NULL)
    return -1;
  size_t w = fwrite(buf, 1, n, f);
  fclose(f);
  return w == n ? 0 : -1;
}

/* Patch bytes of dir/file at off, then make the manifest agree with the new
 * contents (so that the loader's deeper checks are reached). */
static int patch(const char *dir, const char *file, size_t off,
                 const void *bytes, size_t n, int fix_manifest) {
  char path[600], mpath[600], hex[9];
  size_t len;
  char *buf;
  json_t *man;

  snprintf(path, sizeof(path), "%s/%s", dir, file);
  buf = slurp(path, &len);
  if (buf == NULL || off + n > len)
    return -1;
  memcpy(buf + off, bytes, n);
  if (spit(path, buf, len) != 0)
    return -1;
  if (fix_manifest) {
    snprintf(mpath, sizeof(mpath), "%s/manifest.json", dir);
    man = json_load_file(mpath, 0, NULL);
    snprintf(hex, sizeof(hex), "%08x", hr_crc32(0, buf, len));
    json_object_set_new(json_object_get(json_object_get(man, "files"), file),
                        "crc32", json_string(hex));
    json_dump_file(man, mpath, JSON_INDENT(2));
    json_decref(man);
  }
  free(buf);
  return 0;
}

static void put32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}

/* Re-seal the model.bin header CRC after editing bytes 0..59. */
static int reseal_header(const char *dir) {
  char path[600];
  unsigned char crc[4];
  size_t len;
  char *buf;

  snprintf(path, sizeof(path), "%s/model.bin", dir);
  buf = slurp(path, &len);
  if (buf == NULL)
    return -1;
  put32(crc, hr_crc32(0, buf, 60));
  free(buf);
  return patch(dir, "model.bin", 60, crc, 4, 1);
}

/* ---------------------------------------------------------------- tests */

HR_TEST(model_crc32_known_vectors) {
  ASSERT_EQ(hr_crc32(0, "123456789", 9), 0xcbf43926u);
  ASSERT_EQ(hr_crc32(0, NULL, 0), 0u);
  ASSERT_EQ(hr_crc32(hr_crc32(0, "12345", 5), "6789", 4), 0xcbf43926u);
  ASSERT_EQ(hr_crc32(0, "a", 1), 0xe8b7be43u);
  return 0;
}

HR_TEST(model_roundtrip) {
  const char *dir = write_small(1);
  hr_error_t err = {0};
  hr_model_t *m;
  hr_tensor_t t;

  ASSERT_NOT_NULL(dir);
  m = hr_model_open(dir, &err);
  ASSERT_MSG(m != NULL, "open failed: %s", err.msg);
  ASSERT_STR_EQ(hr_model_name(m), "slot");
  ASSERT_EQ(hr_model_version(m), 7);
  ASSERT_STR_EQ(hr_model_kind(m), "ials");
  ASSERT_EQ(hr_model_dim(m), D);
  ASSERT_EQ(hr_model_n_items(m), NI);
  ASSERT_EQ(hr_model_n_users(m), NU);
  ASSERT_GT(hr_model_size_bytes(m), 64 + 7 * 128);
  ASSERT_EQ(hr_model_tensor(m, "item_emb", &t), 0);
  ASSERT_EQ(t.nbytes, sizeof(item_emb));
  ASSERT_EQ(((uintptr_t)t.data) % 64, 0);
  ASSERT(memcmp(t.data, item_emb, sizeof(item_emb)) == 0);
  ASSERT_EQ(hr_model_tensor(m, "user_hist_ptr", &t), 0);
  ASSERT_EQ(t.dtype, HR_DT_U64);
  ASSERT(memcmp(t.data, hptr, sizeof(hptr)) == 0);
  /* A tensor this reader has no use for is still there, and harmless. */
  ASSERT_EQ(hr_model_tensor(m, "future_ann_graph", &t), 0);
  ASSERT_EQ(hr_model_tensor(m, "nope", &t), HR_ENOTFOUND);
  ASSERT_EQ(json_integer_value(json_object_get(hr_model_manifest(m),
                                               "format_version")), 1);
  hr_model_free(m);
  hr_model_free(NULL);
  return 0;
}

/* Finite weights can still give scores that are not: every tensor passes
 * the loader, and the smoke test refuses the version. */
HR_TEST(model_smoke_test_refuses_overflowing_scores) {
  hr_error_t err = {0};
  hr_model_t *m;
  const char *dir = write_small(0);
  ASSERT_NOT_NULL(dir);
  m = hr_model_open(dir, &err);
  ASSERT_MSG(m != NULL, "%s", err.msg);
  ASSERT_EQ(hr_model_smoke_test(m, &err), 0);
  hr_model_free(m);
  static const char *const files[] = {"model.bin", "manifest.json",
                                      "items.tsv", "users.tsv"};
  for (size_t k = 0; k < sizeof(files) / sizeof(files[0]); k++) {
    char p[600];
    snprintf(p, sizeof(p), "%s/%s", dir, files[k]);
    unlink(p);
  }
  item_scale = 1e19f; /* Y'Y stays finite, <x_u, y_i> does not */
  user_scale = 1e21f;
  dir = write_small(0);
  item_scale = user_scale = 1;
  ASSERT_NOT_NULL(dir);
  m = hr_model_open(dir, &err);
  ASSERT_MSG(m != NULL, "the loader refused it already: %s", err.msg);
  ASSERT_EQ(hr_model_smoke_test(m, &err), HR_EFORMAT);
  ASSERT_MSG(strstr(err.msg, "smoke test") != NULL, "%s", err.msg);
  hr_model_free(m);
  return 0;
}

HR_TEST(model_id_lookups) {
  const char *dir = write_small(0);
  hr_model_t *m = dir ? hr_model_open(dir, NULL) : NULL;
  ASSERT_NOT_NULL(m);
  ASSERT_EQ(hr_model_item_index(m, "a"), 0);
  ASSERT_EQ(hr_model_item_index(m, "f"), 5);
  ASSERT_EQ(hr_model_item_index(m, "g"), -1);
  ASSERT_EQ(hr_model_item_index(m, ""), -1);
  ASSERT_STR_EQ(hr_model_item_id(m, 3), "d");
  ASSERT(hr_model_item_id(m, NI) == NULL);
  ASSERT_EQ(hr_model_user_index(m, "bob"), 1);
  ASSERT_EQ(hr_model_user_index(m, "Bob"), -1);
  size_t n;
  const int32_t *h = hr_model_user_history(m, 1, &n);
  ASSERT_EQ(n, 3);
  ASSERT_EQ(h[0], 2);
  hr_model_free(m);
  return 0;
}

/* Replace dir/items.tsv with `text` and make the manifest agree. */
static int rewrite_items(const char *dir, const char *text) {
  char path[600], mpath[600], hex[9];
  json_t *man, *e;

  snprintf(path, sizeof(path), "%s/items.tsv", dir);
  if (spit(path, text, strlen(text)) != 0)
    return -1;
  snprintf(mpath, sizeof(mpath), "%s/manifest.json", dir);
  man = json_load_file(mpath, 0, NULL);
  if (man == NULL)
    return -1;
  e = json_object_get(json_object_get(man, "files"), "items.tsv");
  snprintf(hex, sizeof(hex), "%08x", hr_crc32(0, text, strlen(text)));
  json_object_set_new(e, "crc32", json_string(hex));
  json_object_set_new(e, "bytes", json_integer((json_int_t)strlen(text)));
  json_dump_file(man, mpath, JSON_INDENT(2));
  json_decref(man);
  return 0;
}

static size_t filter_count(const hr_model_t *m, const hr_filter_term_t *t,
                           size_t n, uint64_t *bits, hr_error_t *err) {
  size_t n_allow = 0;
  if (hr_model_filter(m, t, n, bits, &n_allow, err) != 0)
    return SIZE_MAX;
  return n_allow;
}

HR_TEST(model_item_attributes_and_filters) {
  const char *dir = write_small(0);
  hr_error_t err = {0};
  hr_model_t *m;
  uint64_t bits[1];
  size_t n;
  const uint32_t *it;

  ASSERT_NOT_NULL(dir);
  /* genres is multi-valued ('|'), with a repeat and an empty cell; the
   * last row has no year at all. */
  ASSERT_EQ(rewrite_items(dir, "index\titem_id\tgenres\tyear\n"
                               "0\ta\tComedy|Drama\t1995\n"
                               "1\tb\tDrama\t1995\n"
                               "2\tc\t\t1997\n"
                               "3\td\tComedy|Comedy\t1997\n"
                               "4\te\tHorror|Drama\t1995\n"
                               "5\tf\tComedy\n"), 0);
  m = hr_model_open(dir, &err);
  ASSERT_MSG(m != NULL, "open failed: %s", err.msg);
  ASSERT_EQ(hr_model_n_attrs(m), 2);
  ASSERT_STR_EQ(hr_model_attr_name(m, 0), "genres");
  ASSERT_STR_EQ(hr_model_attr_name(m, 1), "year");
  ASSERT(hr_model_attr_name(m, 2) == NULL);
  ASSERT_EQ(hr_model_attr_find(m, "year"), 1);
  ASSERT_EQ(hr_model_attr_find(m, "Year"), -1);
  it = hr_model_attr_items(m, 0, "Comedy", &n);
  ASSERT_EQ(n, 3); /* a, d (once), f */
  ASSERT_EQ(it[0], 0);
  ASSERT_EQ(it[1], 3);
  ASSERT_EQ(it[2], 5);
  it = hr_model_attr_items(m, 0, "Drama", &n);
  ASSERT_EQ(n, 3);
  ASSERT(hr_model_attr_items(m, 0, "Western", &n) == NULL && n == 0);
  ASSERT(hr_model_attr_items(m, 0, "", &n) == NULL && n == 0);

  const char *comedy[] = {"Comedy"}, *cd[] = {"Comedy", "Horror"},
             *y95[] = {"1995"}, *none[] = {"Western"};
  hr_filter_term_t t1[] = {{"genres", comedy, 1}};
  ASSERT_EQ(filter_count(m, t1, 1, bits, &err), 3);
  ASSERT_EQ(bits[0], (uint64_t)0x29); /* items 0, 3, 5 */
  hr_filter_term_t t2[] = {{"genres", cd, 2}, {"year", y95, 1}};
  ASSERT_EQ(filter_count(m, t2, 2, bits, &err), 2);
  ASSERT_EQ(bits[0], (uint64_t)0x11); /* a (Comedy, 1995), e (Horror) */
  /* A value listed twice counts once. */
  const char *twice[] = {"Comedy", "Comedy", "Western"};
  hr_filter_term_t t5[] = {{"genres", twice, 3}};
  ASSERT_EQ(filter_count(m, t5, 1, bits, &err), 3);
  hr_filter_term_t t3[] = {{"genres", none, 1}};
  ASSERT_EQ(filter_count(m, t3, 1, bits, &err), 0);
  ASSERT_EQ(bits[0], 0);
  ASSERT_EQ(filter_count(m, NULL, 0, bits, &err), NI);
  ASSERT_EQ(bits[0], (uint64_t)0x3f);
  hr_filter_term_t t4[] = {{"genres", comedy, 1}, {"colour", comedy, 1}};
  ASSERT_EQ(filter_count(m, t4, 2, bits, &err), SIZE_MAX);
  ASSERT_EQ(err.code, HR_EBADFIELD);
  ASSERT_STR_EQ(err.field, "filters.colour");
  ASSERT_MSG(strstr(err.msg, "genres, year") != NULL, "%s", err.msg);
  hr_model_free(m);

  /* Hostile tables are refused with the line at fault. */
  static const struct {
    const char *text, *msg;
  } bad[] = {
      {"index\titem_id\tg\n0\ta\tx\tEXTRA\n1\tb\n2\tc\n3\td\n4\te\n"
       "5\tf\n", "line 2: more fields"},
      {"index\titem_id\tg\tg\n0\ta\n1\tb\n2\tc\n3\td\n4\te\n5\tf\n",
       "named twice"},
      {"index\titem_id\tg\t\n0\ta\n1\tb\n2\tc\n3\td\n4\te\n5\tf\n",
       "attribute 2: empty"},
      {"index\titem_id\n0\ta\n1\tb\tX\n2\tc\n3\td\n4\te\n5\tf\n",
       "line 3: more fields than the header's 0"},
      {"index\titem_id\tg\n0\ta\n1\tb\n2\tc\tx\r\n3\td\n4\te\n5\tf\n",
       "line 4: attribute g: a control character"},
      /* Latin-1 bytes: no JSON answer could name them */
      {"index\titem_id\tg\n0\ta\n1\tb\tcaf\xe9\n2\tc\n3\td\n4\te\n5\tf\n",
       "line 3: attribute g: a control character or a byte that is not UTF-8"},
      {"index\titem_id\n0\ta\n1\tcaf\xe9\n2\tc\n3\td\n4\te\n5\tf\n",
       "line 3: an id that is not UTF-8"},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    ASSERT_EQ(rewrite_items(dir, bad[i].text), 0);
    err = (hr_error_t){0};
    ASSERT(hr_model_open(dir, &err) == NULL);
    ASSERT_EQ(err.code, HR_EFORMAT);
    ASSERT_MSG(strstr(err.msg, "items.tsv") && strstr(err.msg, bad[i].msg),
               "case %zu: %s", i, err.msg);
  }
  /* More attribute columns than HR_MODEL_MAX_ATTRS. */
  {
    char text[2048] = "index\titem_id";
    for (int c = 0; c <= HR_MODEL_MAX_ATTRS; c++)
      snprintf(text + strlen(text), sizeof(text) - strlen(text), "\ta%d", c);
    strcat(text, "\n0\ta\n1\tb\n2\tc\n3\td\n4\te\n5\tf\n");
    ASSERT_EQ(rewrite_items(dir, text), 0);
    err = (hr_error_t){0};
    ASSERT(hr_model_open(dir, &err) == NULL);
    ASSERT_MSG(strstr(err.msg, "65 attribute columns, at most 64") != NULL,
               "%s", err.msg);
  }
  /* A value longer than HR_MODEL_MAX_ATTR_VALUE. */
  {
    char text[1024], big[HR_MODEL_MAX_ATTR_VALUE + 2];
    memset(big, 'v', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    snprintf(text, sizeof(text), "index\titem_id\tg\n0\ta\n1\tb\t%s\n"
             "2\tc\n3\td\n4\te\n5\tf\n", big);
    ASSERT_EQ(rewrite_items(dir, text), 0);
    err = (hr_error_t){0};
    ASSERT(hr_model_open(dir, &err) == NULL);
    ASSERT_MSG(strstr(err.msg, "line 3: attribute g: a value longer") != NULL,
               "%s", err.msg);
  }
  return 0;
}

HR_TEST(model_idmap_grows) {
  hr_idmap_t *m = hr_idmap_new(1);
  char buf[32];
  int added;
  ASSERT_NOT_NULL(m);
  for (int i = 0; i < 20000; i++) {
    int n = snprintf(buf, sizeof(buf), "id-%d", i);
    ASSERT_EQ(hr_idmap_add(m, buf, (size_t)n, &added), i);
    ASSERT_EQ(added, 1);
  }
  ASSERT_EQ(hr_idmap_add(m, "id-17", 5, &added), 17);
  ASSERT_EQ(added, 0);
  ASSERT_EQ(hr_idmap_size(m), 20000);
  ASSERT_EQ(hr_idmap_find(m, "id-19999", 8), 19999);
  ASSERT_EQ(hr_idmap_find(m, "id-1999", 7), 1999);
  ASSERT_EQ(hr_idmap_find(m, "id-20000", 8), -1);
  ASSERT_STR_EQ(hr_idmap_str(m, 123), "id-123");
  hr_idmap_free(m);
  return 0;
}

/* Composite keys hold NUL bytes ("user\0context"): keys equal up to a NUL
 * are distinct, a prefix is not a match, and all survive the table
 * growing. */
HR_TEST(model_idmap_keys_with_nul_bytes) {
  hr_idmap_t *m = hr_idmap_new(1);
  char buf[32];
  int added;
  ASSERT_NOT_NULL(m);
  for (int i = 0; i < 3000; i++) {
    int n = snprintf(buf, sizeof(buf), "u%d", i % 100);
    buf[n++] = '\0';
    n += snprintf(buf + n, sizeof(buf) - (size_t)n, "c%d", i / 100);
    ASSERT_EQ(hr_idmap_add(m, buf, (size_t)n, &added), i);
    ASSERT_EQ(added, 1);
  }
  ASSERT_EQ(hr_idmap_find(m, "u7\0c3", 5), 307);
  ASSERT_EQ(hr_idmap_find(m, "u7\0c", 4), -1);
  ASSERT_EQ(hr_idmap_find(m, "u7", 2), -1);
  ASSERT_EQ(hr_idmap_add(m, "u7", 2, &added), 3000);
  ASSERT_EQ(added, 1);
  ASSERT_EQ(hr_idmap_find(m, "u7\0c29", 6), 2907);
  hr_idmap_free(m);
  return 0;
}

HR_TEST(model_refuses_truncated_bin) {
  const char *dir = write_small(0);
  char path[600];
  hr_error_t err = {0};
  ASSERT_NOT_NULL(dir);
  snprintf(path, sizeof(path), "%s/model.bin", dir);
  ASSERT_EQ(truncate(path, 100), 0);
  ASSERT(hr_model_open(dir, &err) == NULL);
  ASSERT_EQ(err.code, HR_EFORMAT);
  ASSERT_MSG(strstr(err.msg, "slot/7/model.bin: truncated") != NULL, "%s",
             err.msg);
  return 0;
}

HR_TEST(model_refuses_flipped_byte) {
  const char *dir = write_small(0);
  hr_error_t err = {0};
  unsigned char x = 0x5a;
  ASSERT_NOT_NULL(dir);
  ASSERT_EQ(patch(dir, "model.bin", 1000, &x, 1, 0), 0);
  ASSERT(hr_model_open(dir, &err) == NULL);
  ASSERT_EQ(err.code, HR_ECHECKSUM);
  ASSERT_MSG(strstr(err.msg, "model.bin: CRC-32") != NULL, "%s", err.msg);
  return 0;
}

HR_TEST(model_refuses_flipped_byte_in_ids) {
  const char *dir = write_small(0);
  hr_error_t err = {0};
  ASSERT_NOT_NULL(dir);
  ASSERT_EQ(patch(dir, "users.tsv", 20, "Z", 1, 0), 0);
  ASSERT(hr_model_open(dir, &err) == NULL);
  ASSERT_EQ(err.code, HR_ECHECKSUM);
  ASSERT_MSG(strstr(err.msg, "users.tsv") != NULL, "%s", err.msg);
  return 0;
}

HR_TEST(model_refuses_format_version) {
  const char *dir = write_small(0);
  char mpath[600];
  hr_error_t err = {0};
  json_t *man;
  ASSERT_NOT_NULL(dir);
  snprintf(mpath, sizeof(mpath), "%s/manifest.json", dir);
  man = json_load_file(mpath, 0, NULL);
  ASSERT_NOT_NULL(man);
  json_object_set_new(man, "format_version", json_integer(2));
  json_dump_file(man, mpath, 0);
  json_decref(man);
  ASSERT(hr_model_open(dir, &err) == NULL);
  ASSERT_EQ(err.code, HR_EVERSION);
  ASSERT_MSG(strstr(err.msg, "manifest.json") != NULL, "%s", err.msg);
  return 0;
}

HR_TEST(model_refuses_bin_version) {
  const char *dir = write_small(0);
  unsigned char v[4];
  hr_error_t err = {0};
  ASSERT_NOT_NULL(dir);
  put32(v, 2);
  ASSERT_EQ(patch(dir, "model.bin", 8, v, 4, 1), 0);
  ASSERT_EQ(reseal_header(dir), 0);
  ASSERT(hr_model_open(dir, &err) == NULL);
  ASSERT_EQ(err.code, HR_EVERSION);
  ASSERT_MSG(strstr(err.msg, "model.bin") != NULL, "%s", err.msg);
  return 0;
}

HR_TEST(model_refuses_missing_file) {
  const char *dir = write_small(0);
  char path[600];
  hr_error_t err = {0};
  ASSERT_NOT_NULL(dir);
  snprintf(path, sizeof(path), "%s/users.tsv", dir);
  ASSERT_EQ(unlink(path), 0);
  ASSERT(hr_model_open(dir, &err) == NULL);
  ASSERT_EQ(err.code, HR_EIO);
  ASSERT_MSG(strstr(err.msg, "slot/7/users.tsv") != NULL, "%s", err.msg);
  return 0;
}

HR_TEST(model_refuses_bad_magic) {
  const char *dir = write_small(0);
  hr_error_t err = {0};
  ASSERT_NOT_NULL(dir);
  /* The manifest checksum is made to agree: the magic check must catch it. */
  ASSERT_EQ(patch(dir, "model.bin", 0, "GGUFMODL", 8, 1), 0);
  ASSERT(hr_model_open(dir, &err) == NULL);
  ASSERT_EQ(err.code, HR_EFORMAT);
  ASSERT_MSG(strstr(err.msg, "model.bin: bad magic") != NULL, "%s", err.msg);
  return 0;
}

HR_TEST(model_refuses_hostile_offsets) {
  const char *dir = write_small(0);
  char path[600];
  unsigned char off[8] = {0, 0, 0, 0, 0, 0, 0, 0x10}, crc[4];
  hr_error_t err = {0};
  size_t len;
  char *buf;
  ASSERT_NOT_NULL(dir);
  /* Tensor 0's offset far past the end, with every checksum re-sealed. */
  ASSERT_EQ(patch(dir, "model.bin", 64 + 88, off, 8, 1), 0);
  snprintf(path, sizeof(path), "%s/model.bin", dir);
  buf = slurp(path, &len);
  ASSERT_NOT_NULL(buf);
  put32(crc, hr_crc32(0, buf + 64, 6 * 128));
  free(buf);
  ASSERT_EQ(patch(dir, "model.bin", 40, crc, 4, 1), 0);
  ASSERT_EQ(reseal_header(dir), 0);
  ASSERT(hr_model_open(dir, &err) == NULL);
  ASSERT_EQ(err.code, HR_EFORMAT);
  ASSERT_MSG(strstr(err.msg, "out of bounds") != NULL, "%s", err.msg);
  return 0;
}

HR_TEST(model_refuses_bad_paths_and_ids) {
  hr_error_t err = {0};
  char bad[600];
  ASSERT(hr_model_open("/nonexistent/slot/12", &err) == NULL);
  ASSERT_EQ(err.code, HR_EIO);
  hr_error_clear(&err);
  snprintf(bad, sizeof(bad), "%s/slot/latest", hr_test_tmpdir());
  ASSERT(hr_model_open(bad, &err) == NULL);
  ASSERT_EQ(err.code, HR_EFORMAT);
  /* A duplicate id in items.tsv (checksum fixed) is refused. */
  const char *dir = write_small(0);
  ASSERT_NOT_NULL(dir);
  hr_error_clear(&err);
  ASSERT_EQ(patch(dir, "items.tsv", strlen("index\titem_id\tcategory\t"
                                           "length\n0\ta\tx\t1\n1\t"), "a",
                  1, 1), 0);
  ASSERT(hr_model_open(dir, &err) == NULL);
  ASSERT_EQ(err.code, HR_EFORMAT);
  ASSERT_MSG(strstr(err.msg, "items.tsv: line 3: duplicate") != NULL, "%s",
             err.msg);
  return 0;
}

/* ------------------------------------------------------------- fold-in */

/* A trained model on generated data, in <tmp>/fold/1. */
static hr_model_t *trained(hr_ials_opts_t *o) {
  char gdir[512], vdir[512], csv[600];
  hr_gen_opts_t g = {300, 120, 6000, 3, 1.0, 0};
  hr_error_t err = {0};
  hr_dataset_t ds;
  hr_csr_t h;
  hr_ials_t fit;
  hr_model_t *m = NULL;

  snprintf(gdir, sizeof(gdir), "%s/gen", hr_test_tmpdir());
  snprintf(vdir, sizeof(vdir), "%s/fold", hr_test_tmpdir());
  snprintf(csv, sizeof(csv), "%s/events.csv", gdir);
  if (hr_gen_write(gdir, &g, &err) != 0 || hr_dataset_init(&ds) != 0)
    return NULL;
  if (hr_data_read_csv(&ds, csv, &err) == 0 &&
      hr_dataset_histories(&ds, &h) == 0) {
    if (hr_ials_fit(&h, o, &fit, &err) == 0) {
      mkdir(vdir, 0755);
      strcat(vdir, "/1");
      mkdir(vdir, 0755);
      if (hr_train_write_files(vdir, &ds, &h, &fit, o, NULL, "fold", 1,
                               &err) == 0)
        m = hr_model_open(vdir, &err);
      hr_ials_free(&fit);
    }
    hr_csr_free(&h);
  }
  if (m == NULL)
    fprintf(stderr, "trained(): %s\n", err.msg);
  hr_dataset_free(&ds);
  return m;
}

/* trained() with 16 factors and `iters` iterations. */
static hr_model_t *trained16(int iters) {
  hr_ials_opts_t o;
  hr_ials_opts_default(&o);
  o.factors = 16;
  o.iters = iters;
  return trained(&o);
}

HR_TEST(model_foldin_reproduces_learned_vector) {
  hr_ials_opts_t o;
  hr_model_t *m;
  hr_tensor_t ue;
  float v[64];

  hr_ials_opts_default(&o);
  o.factors = 16;
  o.iters = 5;
  m = trained(&o);
  ASSERT_NOT_NULL(m);
  ASSERT_EQ(hr_model_tensor(m, "user_emb", &ue), 0);
  for (long u = 0; u < 50; u++) {
    const float *x = (const float *)ue.data + u * 16;
    double diff = 0, norm = 0;
    size_t nh;
    const int32_t *hist = hr_model_user_history(m, u, &nh);
    long recent[512];
    /* Replaying the user's own history as "recent" (newest first) forces
     * the fold-in solve; it must land on the stored vector, which is what
     * lets the forward pass return that vector when nothing is new. */
    ASSERT(nh > 0 && nh <= 512);
    for (size_t j = 0; j < nh; j++)
      recent[j] = hist[nh - 1 - j];
    hr_history_t h = {recent, nh, NULL, 0, NULL, NULL, 0};
    ASSERT_EQ(hr_model_user_vector(m, u, &h, v), 0);
    for (int k = 0; k < 16; k++) {
      diff += (v[k] - x[k]) * (v[k] - x[k]);
      norm += x[k] * x[k];
    }
    ASSERT_MSG(norm > 0 && sqrt(diff) <= 1e-4 * sqrt(norm) + 1e-7,
               "user %ld: |fold-in - learned| = %g, |learned| = %g", u,
               sqrt(diff), sqrt(norm));
  }
  hr_model_free(m);
  return 0;
}

HR_TEST(model_recent_item_changes_topk) {
  hr_ials_opts_t o;
  hr_model_t *m;
  float v0[16], v1[16], *s0, *s1;
  int32_t t0[10], t1[10];
  long recent[3];
  hr_history_t h = {recent, 3, NULL, 0, NULL, NULL, 0};
  size_t ni;

  hr_ials_opts_default(&o);
  o.factors = 16;
  o.iters = 5;
  m = trained(&o);
  ASSERT_NOT_NULL(m);
  ni = hr_model_n_items(m);
  s0 = malloc(ni * sizeof(float));
  s1 = malloc(ni * sizeof(float));
  ASSERT_EQ(hr_model_user_vector(m, 0, NULL, v0), 0);
  hr_model_score_items(m, v0, s0);
  hr_topk(s0, NULL, ni, 10, t0);
  /* Three fresh events on the items ranked last for this user. */
  int32_t order[200];
  size_t k = 0;
  for (size_t i = 0; i < ni && k < 3; i++) {
    size_t worst = 0;
    for (size_t j = 0; j < ni; j++)
      if (s0[j] < s0[worst])
        worst = j;
    order[k] = (int32_t)worst;
    recent[k++] = (long)worst;
    s0[worst] = 1e30f;
  }
  (void)order;
  ASSERT_EQ(hr_model_user_vector(m, 0, &h, v1), 0);
  hr_model_score_items(m, v1, s1);
  hr_topk(s1, NULL, ni, 10, t1);
  ASSERT_MSG(memcmp(t0, t1, sizeof(t0)) != 0, "top-10 did not move");
  /* An unknown index in `recent` is refused, not read. */
  recent[0] = (long)ni;
  ASSERT_EQ(hr_model_user_vector(m, 0, &h, v1), HR_EINVAL);
  ASSERT_EQ(hr_model_user_vector(m, (long)hr_model_n_users(m), NULL, v1),
            HR_EINVAL);
  free(s0);
  free(s1);
  hr_model_free(m);
  return 0;
}

HR_TEST(model_unknown_user_gets_popularity) {
  hr_ials_opts_t o;
  hr_model_t *m;
  hr_tensor_t pr;
  float v[16], *s;
  int32_t top[1];
  size_t ni, best = 0;

  hr_ials_opts_default(&o);
  o.factors = 16;
  o.iters = 3;
  m = trained(&o);
  ASSERT_NOT_NULL(m);
  ni = hr_model_n_items(m);
  s = malloc(ni * sizeof(float));
  ASSERT_EQ(hr_model_user_vector(m, -1, NULL, v), 0);
  for (int k = 0; k < 16; k++)
    ASSERT(v[k] == 0.0f);
  hr_model_score_items(m, v, s);
  ASSERT_EQ(hr_model_tensor(m, "item_prior", &pr), 0);
  for (size_t i = 0; i < ni; i++)
    if (((const float *)pr.data)[i] > ((const float *)pr.data)[best])
      best = i;
  ASSERT_EQ(hr_topk(s, NULL, ni, 1, top), 1);
  ASSERT_EQ(top[0], (int32_t)best);
  ASSERT(s[best] > 0.0f && s[best] < 1e-3f);
  free(s);
  hr_model_free(m);
  return 0;
}

/* An index is bound to the item vectors it was built from: one built from
 * other vectors of the same shape (another fit of the same data), with the
 * manifest's size and CRC-32 updated as anyone who can write the files
 * could, is refused with the reason; the version's own index loads. */
HR_TEST(model_refuses_an_index_of_other_vectors) {
  hr_model_t *m = trained16(4);
  hr_tensor_t emb;
  hr_ann_params_t prm;
  hr_ann_t *other;
  hr_error_t err = {0};
  char dir[512], path[600], mpath[600], hex[9];
  float *x;
  size_t n, bytes;
  int dim;

  ASSERT_NOT_NULL(m);
  ASSERT_NOT_NULL(hr_model_ann(m));
  ASSERT_EQ(hr_model_tensor(m, "item_emb", &emb), 0);
  n = hr_model_n_items(m);
  dim = hr_model_dim(m);
  ASSERT_EQ(hr_ann_rows_match(hr_model_ann(m), emb.data, n, dim), -1);
  /* other vectors: the same ones with item 7's first value moved */
  x = malloc(sizeof(float) * n * (size_t)dim);
  ASSERT_NOT_NULL(x);
  memcpy(x, emb.data, sizeof(float) * n * (size_t)dim);
  x[7 * (size_t)dim] += 0.25f;
  hr_ann_params_default(&prm);
  prm.M = hr_ann_params(hr_model_ann(m))->M;
  other = hr_ann_build(x, n, dim, &prm, &err);
  ASSERT_NOT_NULL(other);
  ASSERT_EQ(hr_ann_rows_match(other, emb.data, n, dim), 7);
  snprintf(dir, sizeof(dir), "%s/fold/1", hr_test_tmpdir());
  hr_model_free(m);
  snprintf(path, sizeof(path), "%s/index.bin", dir);
  ASSERT_EQ(hr_ann_save(other, path, &err), 0);
  hr_ann_free(other);
  free(x);
  { /* the manifest now describes the new file */
    char *buf = slurp(path, &bytes);
    json_t *man;
    json_error_t je;
    ASSERT_NOT_NULL(buf);
    snprintf(hex, sizeof(hex), "%08x", hr_crc32(0, buf, bytes));
    free(buf);
    snprintf(mpath, sizeof(mpath), "%s/manifest.json", dir);
    man = json_load_file(mpath, 0, &je);
    ASSERT_NOT_NULL(man);
    json_object_set_new(json_object_get(json_object_get(man, "files"),
                                        "index.bin"),
                        "bytes", json_integer((json_int_t)bytes));
    json_object_set_new(json_object_get(json_object_get(man, "files"),
                                        "index.bin"),
                        "crc32", json_string(hex));
    ASSERT_EQ(json_dump_file(man, mpath, JSON_INDENT(2)), 0);
    json_decref(man);
  }
  err = (hr_error_t){0};
  m = hr_model_open(dir, &err);
  ASSERT_MSG(m == NULL, "an index of other vectors was accepted");
  ASSERT_EQ(err.code, HR_EFORMAT);
  ASSERT_MSG(strstr(err.msg, "index.bin") != NULL &&
                 strstr(err.msg, "item 7") != NULL,
             "%s", err.msg);
  return 0;
}

/* hr_model_retrieve is exact: the index's candidates plus the norm-bound
 * pass give the brute-force top-k, even with a beam far too narrow for the
 * index alone, and never an excluded item. */
HR_TEST(model_retrieve_is_exact) {
  hr_ials_opts_t o;
  hr_model_t *m;
  hr_tensor_t emb;
  hr_ann_scratch_t *s;
  float u[16], tip[30];
  hr_scored_t top[30];
  uint32_t ids[30], truth[30], excl[3] = {1, 5, 9};
  uint64_t skip[64] = {0};

  hr_ials_opts_default(&o);
  o.factors = 16;
  o.iters = 4;
  m = trained(&o);
  ASSERT_NOT_NULL(m);
  ASSERT_NOT_NULL(hr_model_ann(m));
  ASSERT_EQ(hr_model_tensor(m, "item_emb", &emb), 0);
  s = hr_ann_scratch_new(hr_model_ann(m));
  ASSERT_NOT_NULL(s);
  ASSERT(hr_model_n_items(m) <= 64 * 64);
  for (int j = 0; j < 3; j++)
    skip[excl[j] >> 6] |= (uint64_t)1 << (excl[j] & 63);
  for (long user = 0; user < 60; user++) {
    size_t scanned, n, nt;
    ASSERT_EQ(hr_model_user_vector(m, user, NULL, u), 0);
    n = hr_model_retrieve(m, s, u, 30, 1, excl, 3, skip, NULL, 0, ids, top,
                          &scanned);
    nt = hr_ann_brute_search(emb.data, hr_model_n_items(m), 16, u, 30, excl,
                             3, truth, tip);
    ASSERT_EQ(n, nt);
    ASSERT(scanned != (size_t)-1);
    for (size_t j = 0; j < n; j++) {
      long id = top[j].index;
      ASSERT(id != 1 && id != 5 && id != 9);
      /* Same scores in the same order (ties may swap ids). */
      ASSERT_DBL_NEAR(top[j].score, tip[j], 1e-4);
    }
    /* the bitmap is as it was: the excluded items alone */
    for (size_t i = 0; i < hr_model_n_items(m); i++)
      ASSERT_EQ((int)((skip[i >> 6] >> (i & 63)) & 1),
                (int)(i == 1 || i == 5 || i == 9));
    /* With a filter (every third item) and no index seeds (ef 0): the
     * exact top 30 of the items that pass. */
    {
      size_t ni = hr_model_n_items(m), n_allow = 0, nout = 0;
      uint64_t allow[64] = {0};
      uint32_t out[2048];
      ASSERT(ni <= 64 * 64 && ni <= 2048);
      for (size_t i = 0; i < ni; i++) {
        /* excluded items 1, 5, 9 may pass the filter: both apply */
        if ((i + (size_t)user) % 3 == 0 || i == 1 || i == 5 || i == 9) {
          allow[i >> 6] |= (uint64_t)1 << (i & 63);
          n_allow++;
        }
        if (!((allow[i >> 6] >> (i & 63)) & 1) || i == 1 || i == 5 || i == 9)
          out[nout++] = (uint32_t)i;
      }
      n = hr_model_retrieve(m, s, u, 30, 0, excl, 3, skip, allow, n_allow,
                            ids, top, &scanned);
      nt = hr_ann_brute_search(emb.data, ni, 16, u, 30, out, nout, truth,
                               tip);
      ASSERT_EQ(n, nt);
      for (size_t j = 0; j < n; j++) {
        long id = top[j].index;
        ASSERT((allow[id >> 6] >> (id & 63)) & 1);
        ASSERT(id != 1 && id != 5 && id != 9);
        ASSERT_DBL_NEAR(top[j].score, tip[j], 1e-4);
      }
    }
  }
  hr_ann_scratch_free(s);
  hr_model_free(m);
  return 0;
}

/* ------------------------------------------------------- context prior */

/* Fits a small iALS model with the prior cp and publishes it as version 1
 * under vdir (which gets "/1" appended); fit is the caller's to free.
 * Returns the loaded model, or NULL with err set. */
static hr_model_t *prior_model(char *vdir, hr_dataset_t *ds, hr_csr_t *h,
                               hr_ctx_prior_t *cp, int factors, int iters,
                               hr_ials_t *fit, hr_error_t *err) {
  hr_ials_opts_t o;

  hr_ials_opts_default(&o);
  o.factors = factors;
  o.iters = iters;
  o.index = 0;
  o.ctx_prior = cp;
  if (hr_ials_fit(h, &o, fit, err) != 0)
    return NULL;
  mkdir(vdir, 0755);
  strcat(vdir, "/1");
  mkdir(vdir, 0755);
  if (hr_train_write_files(vdir, ds, h, fit, &o, NULL, "cpm", 1, err) != 0)
    return NULL;
  return hr_model_open(vdir, err);
}

/* fit writes the context prior; the loaded model scores an unknown user in
 * a context exactly as popularity + the lifts; a manifest whose value
 * lists no longer match the table is refused. */
HR_TEST(model_context_prior_round_trip) {
  char gdir[512], vdir[512], csv[600], man[600];
  hr_gen_opts_t g = {200, 60, 3000, 9, 1.0, 0};
  hr_error_t err = {0};
  hr_dataset_t ds;
  hr_csr_t h;
  hr_ials_t fit;
  hr_ctx_prior_t cp;
  hr_model_t *m;
  float *s;
  const char *names[2] = {"location", "mood"}, *vals[2] = {"gym", NULL};

  snprintf(gdir, sizeof(gdir), "%s/cpgen", hr_test_tmpdir());
  snprintf(vdir, sizeof(vdir), "%s/cpm", hr_test_tmpdir());
  snprintf(csv, sizeof(csv), "%s/events.csv", gdir);
  ASSERT_EQ(hr_gen_write(gdir, &g, &err), 0);
  ASSERT_EQ(hr_dataset_init(&ds), 0);
  ASSERT_EQ(hr_data_read_csv(&ds, csv, &err), 0);
  ASSERT_EQ(hr_dataset_histories(&ds, &h), 0);
  ASSERT_EQ(hr_ctx_prior_fit(&ds, h.n_items, NULL, 20.0f, &cp), 0);
  ASSERT_EQ(cp.n_fields, 3); /* location, mood, device */
  m = prior_model(vdir, &ds, &h, &cp, 8, 2, &fit, &err);
  ASSERT_MSG(m != NULL, "%s", err.msg);
  s = malloc(sizeof(float) * h.n_items);
  ASSERT_NOT_NULL(s);
  ASSERT_EQ(hr_model_context_scores(m, names, vals, 2, s), 1);
  long gym = hr_idmap_find(ds.ctx_vals[cp.col[0]], "gym", 3);
  ASSERT(gym >= 0 && strcmp(cp.field[0], "location") == 0);
  for (size_t i = 0; i < h.n_items; i++)
    ASSERT(s[i] == cp.logpop[i] + cp.lift[(size_t)gym * h.n_items + i]);
  vals[0] = "nowhere";
  ASSERT_EQ(hr_model_context_scores(m, names, vals, 2, s), 0);
  hr_model_free(m);
  /* one value fewer in the manifest: the table no longer fits */
  snprintf(man, sizeof(man), "%s/manifest.json", vdir);
  {
    json_t *root = json_load_file(man, 0, NULL), *vals0;
    ASSERT_NOT_NULL(root);
    vals0 = json_object_get(
        json_array_get(json_object_get(json_object_get(root, "context_prior"),
                                       "fields"),
                       0),
        "values");
    ASSERT(json_is_array(vals0) && json_array_size(vals0) > 1);
    json_array_remove(vals0, json_array_size(vals0) - 1);
    ASSERT_EQ(json_dump_file(root, man, JSON_INDENT(2)), 0);
    json_decref(root);
  }
  m = hr_model_open(vdir, &err);
  ASSERT(m == NULL && err.code == HR_EFORMAT);
  ASSERT_MSG(strstr(err.msg, "ctx_lift") != NULL, "%s", err.msg);
  free(s);
  hr_ials_free(&fit);
  hr_ctx_prior_free(&cp);
  hr_csr_free(&h);
  hr_dataset_free(&ds);
  return 0;
}

/* The first 12 context columns get a slot (a request can carry each of
 * them in context.extra), the 13th does not, a never-feature takes none; with 8 user attributes the prior has 20 fields, and a model with
 * all of them loads and scores the last context column. */
HR_TEST(model_context_prior_takes_every_column_a_request_can_carry) {
  char dir[512], csv[600], users[600], vdir[600];
  hr_dataset_t ds;
  hr_csr_t h;
  hr_ials_t fit;
  hr_ctx_prior_t cp;
  hr_model_t *m;
  hr_error_t err = {0};
  float *s;
  FILE *fp;
  const char *names[2] = {"c11", "c12"}, *vals[2] = {"v1", "v1"};

  snprintf(dir, sizeof(dir), "%s/cp12", hr_test_tmpdir());
  mkdir(dir, 0755);
  snprintf(csv, sizeof(csv), "%s/events.csv", dir);
  snprintf(users, sizeof(users), "%s/users.csv", dir);
  fp = fopen(csv, "w");
  ASSERT_NOT_NULL(fp);
  fputs("user_id,item_id,ts,c0,c1,c2,end_emotion,c3,c4,c5,c6,c7,c8,c9,c10,"
        "c11,c12\n", fp);
  for (int r = 0; r < 40; r++) {
    fprintf(fp, "u%d,i%d,%d", r % 8, r % 5, 1700000000 + r);
    for (int c = 0; c < 14; c++)
      fprintf(fp, ",v%d", (r + c) % 2);
    fputc('\n', fp);
  }
  fclose(fp);
  fp = fopen(users, "w");
  ASSERT_NOT_NULL(fp);
  fputs("user_id,a0,a1,a2,a3,a4,a5,a6,a7\n", fp);
  for (int u = 0; u < 8; u++)
    fprintf(fp, "u%d,x%d,x%d,x%d,x%d,x%d,x%d,x%d,x%d\n", u, u % 2, u % 3,
            u % 2, u % 3, u % 2, u % 3, u % 2, u % 3);
  fclose(fp);
  ASSERT_EQ(hr_dataset_init(&ds), 0);
  ASSERT_EQ(hr_data_read_csv(&ds, csv, &err), 0);
  ASSERT_EQ(hr_data_read_users(&ds, users, &err), 0);
  ASSERT_EQ(ds.n_ctx, 14);
  ASSERT_EQ(ds.n_slots, 12);
  ASSERT_EQ(ds.cv_slot[3], -1);  /* end_emotion */
  ASSERT_EQ(ds.cv_slot[12], 11); /* c11 */
  ASSERT_EQ(ds.cv_slot[13], -1); /* c12: no slot left */
  ASSERT_EQ(hr_dataset_histories(&ds, &h), 0);
  ASSERT_EQ(hr_ctx_prior_fit(&ds, h.n_items, NULL, 20.0f, &cp), 0);
  ASSERT_EQ(cp.n_fields, 20);
  ASSERT_STR_EQ(cp.field[11], "c11");
  ASSERT_STR_EQ(cp.field[19], "user.a7");
  snprintf(vdir, sizeof(vdir), "%s/m", dir);
  m = prior_model(vdir, &ds, &h, &cp, 4, 1, &fit, &err);
  ASSERT_MSG(m != NULL, "%s", err.msg);
  ASSERT_EQ(hr_model_n_context_fields(m), 20);
  s = malloc(sizeof(float) * h.n_items);
  ASSERT_NOT_NULL(s);
  /* c11 is known, c12 (no slot) is ignored */
  ASSERT_EQ(hr_model_context_scores(m, names, vals, 2, s), 1);
  ASSERT_EQ(hr_model_context_scores(m, names + 1, vals + 1, 1, s), 0);
  free(s);
  hr_model_free(m);
  hr_ials_free(&fit);
  hr_ctx_prior_free(&cp);
  hr_csr_free(&h);
  hr_dataset_free(&ds);
  return 0;
}

/* The prior keeps only what a request can carry and the loader accepts:
 * a column with a value over 64 bytes, and the never-features, are left
 * out; a never-feature does not take one of the 12 context slots. */
HR_TEST(model_context_prior_skips_what_requests_cannot_carry) {
  char path[600];
  hr_dataset_t ds;
  hr_ctx_prior_t cp;
  hr_error_t err = {0};
  FILE *fp;

  snprintf(path, sizeof(path), "%s/cpskip.csv", hr_test_tmpdir());
  fp = fopen(path, "w");
  ASSERT_NOT_NULL(fp);
  fputs("user_id,item_id,ts,end_emotion,location,mood\n", fp);
  fputs("u1,i1,1700000000,happy,home,calm\n", fp);
  fprintf(fp, "u2,i2,1700000100,sad,%0100d,tired\n", 7);
  fputs("u3,i1,1700000200,sad,work,calm\n", fp);
  fclose(fp);
  ASSERT_EQ(hr_dataset_init(&ds), 0);
  ASSERT_EQ(hr_data_read_csv(&ds, path, &err), 0);
  ASSERT_EQ(ds.n_ctx, 3);
  ASSERT_EQ(ds.cv_slot[0], -1); /* end_emotion */
  ASSERT_EQ(ds.cv_slot[1], 0);
  ASSERT_EQ(ds.cv_slot[2], 1);
  ASSERT_EQ(hr_ctx_prior_fit(&ds, hr_idmap_size(ds.items), NULL, 20.0f, &cp),
            0);
  ASSERT_EQ(cp.n_fields, 1);
  ASSERT_STR_EQ(cp.field[0], "mood");
  ASSERT_EQ(cp.n_values, 2);
  hr_ctx_prior_free(&cp);
  hr_dataset_free(&ds);
  return 0;
}
