/* write.c -- the version directory writer (see model.h, "writer", and
 * docs/model-format.md). Every file is written through one buffered stream
 * whose bytes are checksummed as they go, then fsync'd; the directory is
 * renamed into place only when complete, so a reader never sees half of it. */
#include "model_internal.h"

#include "hr/crc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "model.bin tensors are little-endian and mmap'd as they are"
#endif

size_t hr__model_dtype_size(uint32_t dtype) {
  switch (dtype) {
  case HR_DT_F32: return 4;
  case HR_DT_I32: return 4;
  case HR_DT_U64: return 8;
  case HR_DT_I64: return 8;
  }
  return 0;
}

/* ------------------------------------------------ checksummed file output */

typedef struct {
  FILE *f;
  const char *path;
  uint32_t crc;
  uint64_t bytes;
  int failed;
} out_t;

static int out_open(out_t *o, const char *path, hr_error_t *err) {
  memset(o, 0, sizeof(*o));
  o->path = path;
  o->f = fopen(path, "wbx");
  if (o->f == NULL)
    return hr_error_set(err, HR_EIO, NULL, "%s: %s", path, strerror(errno));
  return 0;
}

static void out_write(out_t *o, const void *p, size_t n) {
  if (o->failed || n == 0)
    return;
  if (fwrite(p, 1, n, o->f) != n) {
    o->failed = errno ? errno : EIO;
    return;
  }
  o->crc = hr_crc32(o->crc, p, n);
  o->bytes += n;
}

static void out_str(out_t *o, const char *s) { out_write(o, s, strlen(s)); }

static void out_zeros(out_t *o, size_t n) {
  static const unsigned char z[HR__MB_ALIGN];
  while (n > 0) {
    size_t k = n < sizeof(z) ? n : sizeof(z);
    out_write(o, z, k);
    n -= k;
  }
}

/* Flush, fsync and close; reports the first error of the whole file. */
static int out_close(out_t *o, hr_error_t *err) {
  int e = o->failed;

  if (fflush(o->f) != 0 && e == 0)
    e = errno;
  if (e == 0 && fsync(fileno(o->f)) != 0)
    e = errno;
  if (fclose(o->f) != 0 && e == 0)
    e = errno;
  o->f = NULL;
  if (e != 0)
    return hr_error_set(err, HR_EIO, NULL, "%s: %s", o->path, strerror(e));
  return 0;
}

static int fsync_dir(const char *dir, hr_error_t *err) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY);
  int rc = 0;

  if (fd < 0)
    return hr_error_set(err, HR_EIO, NULL, "%s: %s", dir, strerror(errno));
  if (fsync(fd) != 0)
    rc = hr_error_set(err, HR_EIO, NULL, "fsync %s: %s", dir,
                      strerror(errno));
  close(fd);
  return rc;
}

/* ----------------------------------------------------------- model.bin */

static void put_u32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t align_up(uint64_t v) {
  return (v + HR__MB_ALIGN - 1) & ~(uint64_t)(HR__MB_ALIGN - 1);
}

static int tensor_nbytes(const hr_tensor_t *t, uint64_t *nbytes,
                         hr_error_t *err) {
  uint64_t n = hr__model_dtype_size(t->dtype);

  if (t->name == NULL || t->name[0] == '\0' ||
      strlen(t->name) >= HR__MB_NAME)
    return hr_error_set(err, HR_EINVAL, NULL, "tensor name missing or over "
                        "%d bytes", HR__MB_NAME - 1);
  if (n == 0 || t->ndim < 1 || t->ndim > 4)
    return hr_error_set(err, HR_EINVAL, NULL, "tensor %s: bad dtype/ndim",
                        t->name);
  for (int d = 0; d < 4; d++) {
    uint64_t k = d < t->ndim ? t->dims[d] : 1;
    if (k != 0 && n > UINT64_MAX / k)
      return hr_error_set(err, HR_EINVAL, NULL, "tensor %s: too big",
                          t->name);
    n *= k;
  }
  if (n > 0 && t->data == NULL)
    return hr_error_set(err, HR_EINVAL, NULL, "tensor %s: no data", t->name);
  *nbytes = n;
  return 0;
}

static int write_bin(const char *path, const hr_model_spec_t *s,
                     uint32_t *crc, uint64_t *bytes, hr_error_t *err) {
  unsigned char hdr[HR__MB_HEADER] = {0};
  unsigned char *table;
  uint64_t *nb, *off, pos;
  size_t n = s->n_tensors, tbytes = n * HR__MB_ENTRY;
  out_t o;
  int rc;

  if (n > HR__MB_MAX_TENSORS)
    return hr_error_set(err, HR_EINVAL, NULL, "too many tensors");
  table = calloc(1, tbytes + 1);
  nb = calloc(n + 1, sizeof(*nb));
  off = calloc(n + 1, sizeof(*off));
  if (table == NULL || nb == NULL || off == NULL) {
    rc = hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
    goto done;
  }
  pos = align_up(HR__MB_HEADER + tbytes);
  for (size_t i = 0; i < n; i++) {
    const hr_tensor_t *t = &s->tensors[i];
    unsigned char *e = table + i * HR__MB_ENTRY;
    if ((rc = tensor_nbytes(t, &nb[i], err)) != 0)
      goto done;
    for (size_t j = 0; j < i; j++)
      if (strcmp(s->tensors[j].name, t->name) == 0) {
        rc = hr_error_set(err, HR_EINVAL, NULL, "tensor %s twice", t->name);
        goto done;
      }
    off[i] = pos;
    memcpy(e, t->name, strlen(t->name));
    put_u32(e + 48, (uint32_t)t->dtype);
    put_u32(e + 52, (uint32_t)t->ndim);
    for (int d = 0; d < 4; d++)
      put_u64(e + 56 + 8 * d, d < t->ndim ? t->dims[d] : 1);
    put_u64(e + 88, off[i]);
    put_u64(e + 96, nb[i]);
    pos = align_up(pos + nb[i]);
  }
  memcpy(hdr, HR_MODEL_MAGIC, 8);
  put_u32(hdr + 8, HR_MODEL_FORMAT_VERSION);
  put_u32(hdr + 12, (uint32_t)n);
  put_u64(hdr + 16, HR__MB_HEADER);
  put_u64(hdr + 24, tbytes);
  put_u64(hdr + 32, pos);
  put_u32(hdr + 40, hr_crc32(0, table, tbytes));
  put_u32(hdr + 44, HR__MB_ENTRY);
  put_u32(hdr + 60, hr_crc32(0, hdr, 60));

  if ((rc = out_open(&o, path, err)) != 0)
    goto done;
  out_write(&o, hdr, sizeof(hdr));
  out_write(&o, table, tbytes);
  for (size_t i = 0; i < n; i++) {
    out_zeros(&o, off[i] - o.bytes);
    out_write(&o, s->tensors[i].data, nb[i]);
  }
  out_zeros(&o, pos - o.bytes);
  rc = out_close(&o, err);
  *crc = o.crc;
  *bytes = o.bytes;
done:
  free(table);
  free(nb);
  free(off);
  return rc;
}

/* ------------------------------------------------------------ id tables */

static int id_ok(const char *id) {
  return id != NULL && id[0] != '\0' && strpbrk(id, "\t\r\n") == NULL &&
         hr_utf8_valid(id, strlen(id));
}

static int write_tsv(const char *path, const char *what,
                     const char *const *ids, size_t n, const char *attr_hdr,
                     const char *const *attrs, uint32_t *crc,
                     uint64_t *bytes, hr_error_t *err) {
  char num[32];
  out_t o;
  int rc;

  for (size_t i = 0; i < n; i++)
    if (!id_ok(ids[i]) ||
        (attrs && attrs[i] &&
         (strpbrk(attrs[i], "\r\n") ||
          !hr_utf8_valid(attrs[i], strlen(attrs[i])))))
      return hr_error_set(err, HR_EINVAL, NULL, "%s %zu: empty id, TAB/CR/LF "
                          "inside or not UTF-8", what, i);
  if ((rc = out_open(&o, path, err)) != 0)
    return rc;
  out_str(&o, "index\t");
  out_str(&o, what);
  if (attr_hdr != NULL && attrs != NULL) {
    out_str(&o, "\t");
    out_str(&o, attr_hdr);
  }
  out_str(&o, "\n");
  for (size_t i = 0; i < n; i++) {
    snprintf(num, sizeof(num), "%zu\t", i);
    out_str(&o, num);
    out_str(&o, ids[i]);
    if (attr_hdr != NULL && attrs != NULL) {
      out_str(&o, "\t");
      out_str(&o, attrs[i] ? attrs[i] : "");
    }
    out_str(&o, "\n");
  }
  rc = out_close(&o, err);
  *crc = o.crc;
  *bytes = o.bytes;
  return rc;
}

/* ------------------------------------------------------------ manifest */

static json_t *file_entry(uint64_t bytes, uint32_t crc) {
  char hex[9];
  snprintf(hex, sizeof(hex), "%08" PRIx32, crc);
  return json_pack("{sI ss}", "bytes", (json_int_t)bytes, "crc32", hex);
}

static void rfc3339_now(char *buf, size_t cap) {
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int write_manifest(const char *dir, json_t *man, const char *name,
                          uint64_t version, hr_error_t *err) {
  char path[PATH_MAX];
  char *text;
  out_t o;
  int rc;

  json_object_set_new(man, "name", json_string(name));
  json_object_set_new(man, "version", json_integer((json_int_t)version));
  text = json_dumps(man, JSON_INDENT(2) | JSON_PRESERVE_ORDER |
                             JSON_REAL_PRECISION(9));
  if (text == NULL)
    return hr_error_set(err, HR_ENOMEM, NULL, "manifest: out of memory");
  snprintf(path, sizeof(path), "%s/manifest.json", dir);
  unlink(path); /* rewritten with a new version after a rename race */
  if ((rc = out_open(&o, path, err)) == 0) {
    out_str(&o, text);
    out_str(&o, "\n");
    rc = out_close(&o, err);
  }
  free(text);
  return rc;
}

/* Builds the ANN index over the spec's item_emb tensor and saves it as
 * dir/index.bin; its size and CRC-32 go to the manifest. */
static int write_ann(const char *dir, const hr_model_spec_t *s, uint32_t *crc,
                     uint64_t *bytes, hr_error_t *err) {
  const hr_tensor_t *emb = NULL;
  char path[PATH_MAX];
  unsigned char buf[1 << 16];
  hr_ann_t *a;
  FILE *f;
  size_t n;
  int rc;

  for (size_t i = 0; i < s->n_tensors; i++)
    if (strcmp(s->tensors[i].name, "item_emb") == 0)
      emb = &s->tensors[i];
  if (emb == NULL || emb->dtype != HR_DT_F32 || emb->ndim != 2 ||
      emb->dims[0] != s->n_items || emb->dims[1] != (uint64_t)s->dim)
    return hr_error_set(err, HR_EINVAL, NULL,
                        "an index needs an item_emb tensor of n_items x dim");
  /* Inner product directly on the item vectors (ip-NSW): measured on a
   * 1M-item iALS model, the MIPS-to-NN reduction (rows augmented to equal
   * norms) gave recall@200 0.09-0.13 where the direct graph gave 0.84-0.89
   * at the same ef, as Morozov & Babenko (NeurIPS 2018) also found. */
  a = hr_ann_build(emb->data, s->n_items, s->dim, s->ann, err);
  if (a == NULL)
    return err && err->code ? err->code : HR_ENOMEM;
  snprintf(path, sizeof(path), "%s/index.bin", dir);
  rc = hr_ann_save(a, path, err);
  hr_ann_free(a);
  if (rc != 0)
    return rc;
  /* Checksum what is on disk, as the loader will. */
  if ((f = fopen(path, "rb")) == NULL)
    return hr_error_set(err, HR_EIO, NULL, "%s: %s", path, strerror(errno));
  *crc = 0;
  *bytes = 0;
  while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
    *crc = hr_crc32(*crc, buf, n);
    *bytes += n;
  }
  rc = ferror(f) ? hr_error_set(err, HR_EIO, NULL, "%s: read error", path) : 0;
  fclose(f);
  return rc;
}

/* Write the three data files and return the manifest (without name and
 * version, which write_manifest sets). */
static json_t *write_data(const char *dir, const hr_model_spec_t *s,
                          hr_error_t *err) {
  char path[PATH_MAX], ts[32];
  uint32_t crc[5];
  uint64_t bytes[5];
  json_t *man, *files;

  if (s->kind == NULL || s->dim < 1 || s->params == NULL ||
      s->item_ids == NULL || (s->n_users > 0 && s->user_ids == NULL)) {
    hr_error_set(err, HR_EINVAL, NULL, "incomplete model spec");
    return NULL;
  }
  if (snprintf(path, sizeof(path), "%s/model.bin", dir) >= (int)sizeof(path)) {
    hr_error_set(err, HR_EINVAL, NULL, "path too long: %s", dir);
    return NULL;
  }
  if (write_bin(path, s, &crc[0], &bytes[0], err) != 0)
    return NULL;
  snprintf(path, sizeof(path), "%s/items.tsv", dir);
  if (write_tsv(path, "item_id", s->item_ids, s->n_items,
                s->item_attr_header, s->item_attrs, &crc[1], &bytes[1],
                err) != 0)
    return NULL;
  snprintf(path, sizeof(path), "%s/users.tsv", dir);
  if (write_tsv(path, "user_id", s->user_ids, s->n_users, NULL, NULL, &crc[2],
                &bytes[2], err) != 0)
    return NULL;

  if (s->ann != NULL && write_ann(dir, s, &crc[3], &bytes[3], err) != 0)
    return NULL;
  if (s->report != NULL) { /* how the model was chosen (fit's selection) */
    char *text = json_dumps(s->report, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    out_t o;
    int rc;
    snprintf(path, sizeof(path), "%s/report.json", dir);
    if (text == NULL) {
      hr_error_set(err, HR_ENOMEM, NULL, "report.json: out of memory");
      return NULL;
    }
    if ((rc = out_open(&o, path, err)) == 0) {
      out_str(&o, text);
      out_str(&o, "\n");
      rc = out_close(&o, err);
    }
    free(text);
    if (rc != 0)
      return NULL;
    crc[4] = o.crc;
    bytes[4] = o.bytes;
  }

  rfc3339_now(ts, sizeof(ts));
  files = json_object();
  json_object_set_new(files, "model.bin", file_entry(bytes[0], crc[0]));
  json_object_set_new(files, "items.tsv", file_entry(bytes[1], crc[1]));
  json_object_set_new(files, "users.tsv", file_entry(bytes[2], crc[2]));
  if (s->ann != NULL)
    json_object_set_new(files, "index.bin", file_entry(bytes[3], crc[3]));
  if (s->report != NULL)
    json_object_set_new(files, "report.json", file_entry(bytes[4], crc[4]));
  man = json_object();
  if (man == NULL || files == NULL) {
    json_decref(man);
    json_decref(files);
    hr_error_set(err, HR_ENOMEM, NULL, "manifest: out of memory");
    return NULL;
  }
  json_object_set_new(man, "format_version",
                      json_integer(HR_MODEL_FORMAT_VERSION));
  json_object_set_new(man, "name", json_null());
  json_object_set_new(man, "version", json_null());
  json_object_set_new(man, "kind", json_string(s->kind));
  json_object_set_new(man, "created_at", json_string(ts));
  json_object_set_new(man, "dim", json_integer(s->dim));
  json_object_set_new(man, "n_items", json_integer((json_int_t)s->n_items));
  json_object_set_new(man, "n_users", json_integer((json_int_t)s->n_users));
  json_object_set_new(man, "params", json_deep_copy(s->params));
  if (s->data != NULL)
    json_object_set_new(man, "data", json_deep_copy(s->data));
  if (s->metrics != NULL)
    json_object_set_new(man, "metrics", json_deep_copy(s->metrics));
  if (s->context_prior != NULL)
    json_object_set_new(man, "context_prior",
                        json_deep_copy(s->context_prior));
  if (s->forced) /* the load-time quality gate lets it through */
    json_object_set_new(man, "forced", json_true());
  if (s->ann != NULL)
    json_object_set_new(
        man, "ann",
        json_pack("{s:s,s:i,s:i,s:i,s:I}", "kind", "hnsw", "M", s->ann->M,
                  "ef_construction", s->ann->ef_construction, "threads",
                  s->ann->threads, "seed", (json_int_t)s->ann->seed));
  json_object_set_new(man, "files", files);
  return man;
}

int hr_model_write_files(const char *dir, const hr_model_spec_t *spec,
                         const char *name, uint64_t version,
                         hr_error_t *err) {
  json_t *man = write_data(dir, spec, err);
  int rc;

  if (man == NULL)
    return err && err->code ? err->code : HR_EIO;
  rc = write_manifest(dir, man, name, version, err);
  json_decref(man);
  if (rc == 0)
    rc = fsync_dir(dir, err);
  return rc;
}

/* ------------------------------------------------------- atomic publish */

static int mkdir_p(const char *path, hr_error_t *err) {
  char buf[PATH_MAX];
  size_t n = strlen(path);

  if (n == 0 || n >= sizeof(buf))
    return hr_error_set(err, HR_EINVAL, NULL, "bad directory '%s'", path);
  memcpy(buf, path, n + 1);
  for (size_t i = 1; i <= n; i++) {
    if (buf[i] == '/' || buf[i] == '\0') {
      char c = buf[i];
      buf[i] = '\0';
      if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return hr_error_set(err, HR_EIO, NULL, "mkdir %s: %s", buf,
                            strerror(errno));
      buf[i] = c;
    }
  }
  return 0;
}

/* 1 and *v when the directory entry `name` is all digits (a version
 * number that fits 64 bits), else 0. */
static int digits_value(const char *name, uint64_t *v) {
  const char *p = name;
  *v = 0;
  if (*p == '\0')
    return 0;
  for (; *p; p++) {
    if (*p < '0' || *p > '9' || *v > (UINT64_MAX - 9) / 10)
      return 0;
    *v = *v * 10 + (uint64_t)(*p - '0');
  }
  return 1;
}

/* Largest numeric entry of the slot, 0 if none. */
static int max_version(const char *slot, uint64_t *out, hr_error_t *err) {
  DIR *d = opendir(slot);
  struct dirent *e;

  *out = 0;
  if (d == NULL)
    return hr_error_set(err, HR_EIO, NULL, "%s: %s", slot, strerror(errno));
  while ((e = readdir(d)) != NULL) {
    uint64_t v;
    if (digits_value(e->d_name, &v) && v > *out)
      *out = v;
  }
  closedir(d);
  return 0;
}

static void rmtree_shallow(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *e;
  char p[PATH_MAX];

  if (d == NULL)
    return;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
    unlink(p);
  }
  closedir(d);
  rmdir(dir);
}

static const char *base_name(const char *path, char *buf, size_t cap) {
  size_t n = strlen(path);
  while (n > 1 && path[n - 1] == '/')
    n--;
  size_t b = n;
  while (b > 0 && path[b - 1] != '/')
    b--;
  snprintf(buf, cap, "%.*s", (int)(n - b), path + b);
  return buf;
}

int hr_model_write(const char *slot_dir, const hr_model_spec_t *spec,
                   char *path_out, size_t path_cap, hr_error_t *err) {
  char tmp[PATH_MAX], dst[PATH_MAX], name[256];
  uint64_t version, maxv;
  json_t *man;
  int rc;

  if ((rc = mkdir_p(slot_dir, err)) != 0)
    return rc;
  if ((rc = max_version(slot_dir, &maxv, err)) != 0)
    return rc;
  version = (uint64_t)time(NULL);
  if (maxv + 1 > version)
    version = maxv + 1;
  base_name(slot_dir, name, sizeof(name));
  if (snprintf(tmp, sizeof(tmp), "%s/.tmp-%" PRIu64 "-%ld", slot_dir, version,
               (long)getpid()) >= (int)sizeof(tmp) - 32)
    return hr_error_set(err, HR_EINVAL, NULL, "path too long: %s", slot_dir);
  rmtree_shallow(tmp); /* a leftover of a crashed process with our pid */
  if (mkdir(tmp, 0755) != 0)
    return hr_error_set(err, HR_EIO, NULL, "mkdir %s: %s", tmp,
                        strerror(errno));
  man = write_data(tmp, spec, err);
  if (man == NULL) {
    rc = err && err->code ? err->code : HR_EIO;
    goto fail;
  }
  /* A concurrent fit may publish the same number first: rename(2) of a
   * directory onto a non-empty one fails, so take the next and retry. */
  for (int tries = 0;; tries++) {
    if ((rc = write_manifest(tmp, man, name, version, err)) != 0 ||
        (rc = fsync_dir(tmp, err)) != 0)
      goto fail;
    snprintf(dst, sizeof(dst), "%s/%" PRIu64, slot_dir, version);
    if (rename(tmp, dst) == 0)
      break;
    if ((errno != ENOTEMPTY && errno != EEXIST) || tries >= 1000) {
      rc = hr_error_set(err, HR_EIO, NULL, "rename %s -> %s: %s", tmp, dst,
                        strerror(errno));
      goto fail;
    }
    version++;
  }
  json_decref(man);
  if ((rc = fsync_dir(slot_dir, err)) != 0)
    return rc;
  if (path_out != NULL && (size_t)snprintf(path_out, path_cap, "%s", dst) >=
                              path_cap)
    return hr_error_set(err, HR_EINVAL, NULL, "path buffer too small");
  return 0;
fail:
  json_decref(man);
  rmtree_shallow(tmp);
  return rc;
}

static int cmp_u64_desc(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x < y) - (x > y);
}

int hr_model_prune(const char *slot_dir, int keep, int *removed,
                   hr_error_t *err) {
  DIR *d;
  struct dirent *e;
  uint64_t *v = NULL;
  size_t n = 0, cap = 0;
  int rc = 0;

  *removed = 0;
  if (keep <= 0)
    return 0;
  if ((d = opendir(slot_dir)) == NULL)
    return hr_error_set(err, HR_EIO, NULL, "%s: %s", slot_dir,
                        strerror(errno));
  while ((e = readdir(d)) != NULL) {
    uint64_t x;
    /* a version directory, as the server reads them: no leading 0 */
    if (e->d_name[0] == '0' || !digits_value(e->d_name, &x))
      continue;
    if (n == cap) {
      size_t nc = cap ? cap * 2 : 16;
      uint64_t *nv = realloc(v, nc * sizeof(uint64_t));
      if (nv == NULL) {
        rc = hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
        break;
      }
      v = nv;
      cap = nc;
    }
    v[n++] = x;
  }
  closedir(d);
  if (rc == 0 && n > (size_t)keep) {
    qsort(v, n, sizeof(uint64_t), cmp_u64_desc);
    for (size_t i = (size_t)keep; i < n; i++) {
      char src[PATH_MAX], dead[PATH_MAX];
      snprintf(src, sizeof(src), "%s/%" PRIu64, slot_dir, v[i]);
      /* out of sight in one step (a server never looks at .tmp-*), then
       * removed */
      snprintf(dead, sizeof(dead), "%s/.tmp-old-%" PRIu64 "-%ld", slot_dir,
               v[i], (long)getpid());
      if (rename(src, dead) != 0)
        continue; /* gone already, or not ours to remove */
      rmtree_shallow(dead);
      (*removed)++;
    }
  }
  free(v);
  return rc;
}
