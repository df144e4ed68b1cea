/* fuzz_model.c -- a model version: manifest.json, model.bin, items.tsv,
 * users.tsv, index.bin and one more listed file, through the loader
 * (hr__model_open_mem: hr_model_open's checks over files held in memory)
 * and, when it accepts them, the smoke test and a request.
 *
 * Input: a flags byte, then records [file byte][u32 little-endian length]
 * [bytes] (the file byte modulo 6 picks the name; a length past the end is
 * cut). The flags recompute what an attacker who can write the files can
 * recompute: bit 0 model.bin's header and tensor-table CRC-32s, bit 1
 * index.bin's two CRC-32s, bit 2 the manifest's "bytes" and "crc32" of
 * every file given. */
#include "fuzz.h"

#include <math.h>
#include <string.h>

#include <jansson.h>

#include "hr/crc.h"
#include "hr/model.h"
#include "../../src/model/model_internal.h"

#define N_FILES 6
static const char *const names[N_FILES] = {"manifest.json", "model.bin",
                                           "items.tsv",     "users.tsv",
                                           "index.bin",     "extra.bin"};

static uint32_t get32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p) {
  return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static void fix_model_bin(uint8_t *p, size_t n) {
  if (n < 64)
    return;
  uint64_t toff = get64(p + 16), tbytes = get64(p + 24);
  if (toff <= n && tbytes <= n - toff)
    hr_fuzz_put32(p + 40, hr_crc32(0, p + toff, (size_t)tbytes));
  hr_fuzz_put32(p + 60, hr_crc32(0, p, 60));
}

/* The manifest with files.<name>.bytes/crc32 set for the files given. */
static char *fix_manifest(const uint8_t *text, size_t len, uint8_t *f[],
                          const size_t n[]) {
  json_t *root = json_loadb((const char *)text, len, 0, NULL);
  json_t *files = json_object_get(root, "files");
  char *out = NULL;
  if (json_is_object(files)) {
    for (int i = 1; i < N_FILES; i++) {
      json_t *e = json_object_get(files, names[i]);
      char hex[16];
      if (f[i] == NULL || !json_is_object(e))
        continue;
      snprintf(hex, sizeof(hex), "%08x", hr_crc32(0, f[i], n[i]));
      json_object_set_new(e, "bytes", json_integer((json_int_t)n[i]));
      json_object_set_new(e, "crc32", json_string(hex));
    }
    out = json_dumps(root, JSON_COMPACT);
  }
  json_decref(root);
  return out;
}

static void exercise(const hr_model_t *m) {
  hr_error_t err = {0};
  if (hr_model_smoke_test(m, &err) != 0)
    return;
  size_t ni = hr_model_n_items(m), d = (size_t)hr_model_dim(m);
  if (ni == 0)
    return;
  long items[3] = {0, (long)(ni - 1), (long)(ni / 2)};
  int64_t ts[3] = {1767225000, 1767225300, 1767225600};
  hr_history_t h = {items, 3, ts, 1767225660, NULL, NULL, 0};
  float *u = malloc(sizeof(float) * d), *sc = malloc(sizeof(float) * ni);
  FUZZ_EXPECT(u != NULL && sc != NULL, "out of memory");
  if (hr_model_user_vector(m, -1, &h, u) == 0) {
    hr_model_score_items(m, u, sc);
    for (size_t i = 0; i < ni; i++)
      (void)sc[i];
  }
  for (size_t i = 0; i < ni && i < 4; i++)
    FUZZ_EXPECT(hr_model_item_id(m, i) != NULL, "item %zu has no id", i);
  free(u);
  free(sc);
}

HR_FUZZ_TARGET(model) {
  uint8_t *f[N_FILES] = {0};
  size_t n[N_FILES] = {0};
  const uint8_t *p = data + 1, *end = data + size;
  char *manifest = NULL;
  hr__model_file_t files[N_FILES];
  size_t nf = 0;

  if (size < 1)
    return 0;
  while (end - p >= 5) {
    int id = p[0] % N_FILES;
    size_t len = get32(p + 1);
    p += 5;
    if (len > (size_t)(end - p))
      len = (size_t)(end - p);
    free(f[id]);
    f[id] = malloc(len ? len : 1);
    FUZZ_EXPECT(f[id] != NULL, "out of memory");
    memcpy(f[id], p, len);
    n[id] = len;
    p += len;
  }
  if ((data[0] & 1) && f[1])
    fix_model_bin(f[1], n[1]);
  if ((data[0] & 2) && f[4])
    hr_fuzz_fix_index_crcs(f[4], n[4]);
  if ((data[0] & 4) && f[0])
    manifest = fix_manifest(f[0], n[0], f, n);
  for (int i = 0; i < N_FILES; i++) {
    if (i == 0 && manifest != NULL)
      files[nf++] = (hr__model_file_t){names[i], manifest, strlen(manifest)};
    else if (f[i] != NULL)
      files[nf++] = (hr__model_file_t){names[i], f[i], n[i]};
  }

  hr_error_t err = {0};
  hr_model_t *m = hr__model_open_mem("fuzz/default/1", files, nf, &err);
  free(manifest);
  for (int i = 0; i < N_FILES; i++)
    free(f[i]);
  if (m == NULL) {
    FUZZ_EXPECT(err.code < 0, "refused without a code");
    return 0;
  }
  hr_fuzz_accepted++;
  exercise(m);
  hr_model_free(m);
  return 0;
}
