/* io.c -- index.bin: save (tmp + fsync + rename) and open (mmap, then check
 * every size, offset, checksum and neighbour id before any search can touch
 * them). Format: docs/ann.md. */
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ann_internal.h"
#include "hr/crc.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "index.bin is little-endian and mmap'd as it is"
#endif

/* 128 bytes, little-endian, every field naturally aligned. */
typedef struct {
  char magic[8];          /* "HRANN001" */
  uint32_t version;       /* HR_ANN_FORMAT_VERSION */
  uint32_t header_bytes;  /* 128 */
  uint64_t file_bytes;    /* the whole file */
  uint64_t n;             /* items */
  uint32_t dim, M;
  uint32_t ef_construction, threads;
  uint64_t seed;
  uint32_t max_level, entry;
  uint32_t vec_format;    /* HR_ANN_VEC_F16 */
  uint32_t m0;            /* 2 * M level-0 slots */
  uint64_t n_upper;       /* u32 entries in the upper-level array */
  uint64_t off_levels, off_upper_off, off_links0, off_upper, off_vecs;
  uint32_t body_crc;      /* CRC-32 of bytes [128, file_bytes) */
  uint32_t header_crc;    /* CRC-32 of the 124 bytes before this field */
} file_header_t;

_Static_assert(sizeof(file_header_t) == 128, "index.bin header is 128 bytes");
_Static_assert(offsetof(file_header_t, body_crc) == HR_ANN__BODY_CRC_OFF &&
                   offsetof(file_header_t, header_crc) ==
                       HR_ANN__HEADER_CRC_OFF,
               "CRC offsets of ann_internal.h");

#define SEC_ALIGN 64

static uint64_t align_up(uint64_t x) {
  return (x + SEC_ALIGN - 1) / SEC_ALIGN * SEC_ALIGN;
}

/* Section sizes of an index with these counts. */
static void sec_sizes(uint64_t n, uint64_t m0, uint64_t n_upper,
                      uint64_t vstride, uint64_t sz[5]) {
  sz[0] = n;
  sz[1] = n * 4;
  sz[2] = n * m0 * 4;
  sz[3] = n_upper * 4;
  sz[4] = n * vstride * 2;
}

void hr_ann_free(hr_ann_t *a) {
  if (a == NULL)
    return;
  if (a->map)
    munmap(a->map, a->map_len);
  for (int i = 0; i < 5; i++)
    free(a->own[i]);
  free(a);
}

/* ------------------------------------------------------------- save */

int hr_ann_save(const hr_ann_t *a, const char *path, hr_error_t *err) {
  file_header_t h;
  uint64_t sz[5], off[5], pos = sizeof(h);
  const void *sec[5];
  static const char zeros[SEC_ALIGN];
  char tmp[4096];
  int fd = -1, e = 0;
  FILE *f = NULL;

  if (a == NULL || path == NULL)
    return hr_error_set(err, HR_EINVAL, NULL, "ann save: no index or path");
  if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
    return hr_error_set(err, HR_EIO, NULL, "%s: path too long", path);
  memset(&h, 0, sizeof(h));
  memcpy(h.magic, HR_ANN_MAGIC, 8);
  h.version = HR_ANN_FORMAT_VERSION;
  h.header_bytes = sizeof(h);
  h.n = a->n;
  h.dim = (uint32_t)a->dim;
  h.M = (uint32_t)a->M;
  h.ef_construction = (uint32_t)a->params.ef_construction;
  h.threads = (uint32_t)a->params.threads;
  h.seed = a->params.seed;
  h.max_level = a->max_level;
  h.entry = a->entry;
  h.vec_format = HR_ANN_VEC_F16;
  h.m0 = (uint32_t)a->m0;
  h.n_upper = a->n_upper;
  sec_sizes(a->n, (uint64_t)a->m0, a->n_upper, a->vstride, sz);
  sec[0] = a->levels;
  sec[1] = a->upper_off;
  sec[2] = a->links0;
  sec[3] = a->upper;
  sec[4] = a->vecs;
  for (int i = 0; i < 5; i++) {
    pos = align_up(pos);
    off[i] = pos;
    pos += sz[i];
  }
  h.off_levels = off[0];
  h.off_upper_off = off[1];
  h.off_links0 = off[2];
  h.off_upper = off[3];
  h.off_vecs = off[4];
  h.file_bytes = pos;
  /* body checksum: the padding is zeros, fed in the same order as written */
  pos = sizeof(h);
  for (int i = 0; i < 5; i++) {
    h.body_crc = hr_crc32(h.body_crc, zeros, off[i] - pos);
    h.body_crc = hr_crc32(h.body_crc, sec[i], sz[i]);
    pos = off[i] + sz[i];
  }
  h.header_crc = hr_crc32(0, &h, offsetof(file_header_t, header_crc));

  fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0 || (f = fdopen(fd, "wb")) == NULL) {
    e = errno;
    goto fail;
  }
  fd = -1;
  if (fwrite(&h, sizeof(h), 1, f) != 1)
    goto fail_errno;
  pos = sizeof(h);
  for (int i = 0; i < 5; i++) {
    if (off[i] > pos && fwrite(zeros, 1, off[i] - pos, f) != off[i] - pos)
      goto fail_errno;
    if (sz[i] && fwrite(sec[i], 1, sz[i], f) != sz[i])
      goto fail_errno;
    pos = off[i] + sz[i];
  }
  if (fflush(f) != 0 || fsync(fileno(f)) != 0)
    goto fail_errno;
  if (fclose(f) != 0) {
    f = NULL;
    goto fail_errno;
  }
  f = NULL;
  if (rename(tmp, path) != 0)
    goto fail_errno;
  { /* make the rename durable */
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s", path);
    int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      fsync(dfd);
      close(dfd);
    }
  }
  return 0;
fail_errno:
  e = errno ? errno : EIO;
fail:
  if (f)
    fclose(f);
  if (fd >= 0)
    close(fd);
  unlink(tmp);
  return hr_error_set(err, HR_EIO, NULL, "%s: %s", tmp, strerror(e));
}

/* ------------------------------------------------------------- open */

static int bad(hr_error_t *err, int code, const char *path, const char *what) {
  return hr_error_set(err, code, NULL, "%s: %s", path, what);
}

/* Everything a search dereferences is checked here, so that a file that
 * passed can never make a search read out of bounds: section bounds,
 * levels and offsets, every neighbour id, every upper-level neighbour on
 * its level, finite zero-padded rows. (Whether the rows are the model's
 * vectors is hr_ann_rows_match's question.) */
static int validate(hr_ann_t *a, const uint8_t *base, size_t len,
                    const char *path, hr_error_t *err) {
  file_header_t h;
  uint64_t sz[5], off[5], vstride, prev_end;

  if (len < sizeof(h))
    return bad(err, HR_EFORMAT, path, "truncated (shorter than the header)");
  memcpy(&h, base, sizeof(h));
  if (memcmp(h.magic, HR_ANN_MAGIC, 8) != 0)
    return bad(err, HR_EFORMAT, path, "not an ANN index (bad magic)");
  if (h.version != HR_ANN_FORMAT_VERSION)
    return hr_error_set(err, HR_EVERSION, NULL,
                        "%s: format version %u, this build reads %d", path,
                        h.version, HR_ANN_FORMAT_VERSION);
  if (hr_crc32(0, &h, offsetof(file_header_t, header_crc)) != h.header_crc)
    return bad(err, HR_ECHECKSUM, path, "header checksum mismatch");
  if (h.header_bytes != sizeof(h))
    return bad(err, HR_EFORMAT, path, "bad header size");
  if (h.file_bytes != len)
    return hr_error_set(err, HR_EFORMAT, NULL,
                        "%s: file is %zu bytes, header says %llu (truncated?)",
                        path, len, (unsigned long long)h.file_bytes);
  if (h.n < 1 || h.n >= HR_ANN_NONE || h.dim < 1 || h.dim > 4096 ||
      h.M < 2 || h.M > HR_ANN_MAX_M || h.m0 != 2 * h.M ||
      h.vec_format != HR_ANN_VEC_F16 || h.max_level > HR_ANN_MAX_LEVEL ||
      h.entry >= h.n || h.n_upper >= HR_ANN_NONE ||
      h.ef_construction < 1 || h.threads < 1 || h.threads > 256)
    return bad(err, HR_EFORMAT, path, "header values out of range");
  vstride = hr_ann__vstride((int)h.dim);
  sec_sizes(h.n, h.m0, h.n_upper, vstride, sz); /* n < 2^32: no overflow */
  off[0] = h.off_levels;
  off[1] = h.off_upper_off;
  off[2] = h.off_links0;
  off[3] = h.off_upper;
  off[4] = h.off_vecs;
  prev_end = sizeof(h);
  for (int i = 0; i < 5; i++) {
    if (off[i] % SEC_ALIGN != 0 || off[i] < prev_end || off[i] > len ||
        sz[i] > len - off[i])
      return bad(err, HR_EFORMAT, path, "section offsets out of bounds");
    prev_end = off[i] + sz[i];
  }
  if (hr_crc32(0, base + sizeof(h), len - sizeof(h)) != h.body_crc)
    return bad(err, HR_ECHECKSUM, path, "body checksum mismatch");

  a->n = h.n;
  a->dim = (int)h.dim;
  a->vstride = vstride;
  a->M = (int)h.M;
  a->m0 = (int)h.m0;
  a->params.M = (int)h.M;
  a->params.ef_construction = (int)h.ef_construction;
  a->params.threads = (int)h.threads;
  a->params.seed = h.seed;
  a->max_level = h.max_level;
  a->entry = h.entry;
  a->n_upper = h.n_upper;
  a->levels = base + off[0];
  a->upper_off = (const uint32_t *)(base + off[1]);
  a->links0 = (const uint32_t *)(base + off[2]);
  a->upper = (const uint32_t *)(base + off[3]);
  a->vecs = (const uint16_t *)(base + off[4]);

  /* The graph: levels, upper offsets and every neighbour id. */
  if (a->levels[a->entry] != a->max_level)
    return bad(err, HR_EFORMAT, path, "entry point is not on the top level");
  for (size_t i = 0; i < a->n; i++) {
    uint32_t L = a->levels[i];
    if (L > a->max_level)
      return bad(err, HR_EFORMAT, path, "node level above the top level");
    if (L > 0 && (a->upper_off[i] >= a->n_upper ||
                  (uint64_t)L * h.M > a->n_upper - a->upper_off[i]))
      return bad(err, HR_EFORMAT, path, "upper-level offset out of bounds");
  }
  for (size_t i = 0; i < a->n * (size_t)a->m0; i++)
    if (a->links0[i] >= a->n && a->links0[i] != HR_ANN_NONE)
      return bad(err, HR_EFORMAT, path, "neighbour id out of range");
  for (size_t i = 0; i < a->n_upper; i++)
    if (a->upper[i] >= a->n && a->upper[i] != HR_ANN_NONE)
      return bad(err, HR_EFORMAT, path, "neighbour id out of range");
  /* A search walks level l only through nodes listed on level l: each of
   * them must have that level, or links_at() would read a level-0 node's
   * upper lists (which it has not). And no list names a node twice: the
   * search would return it twice. (seen[] holds, per node, the number of
   * the list that last named it.) */
  uint32_t *seen = calloc(a->n, sizeof(uint32_t)), list_no = 0;
  if (seen == NULL)
    return hr_error_set(err, HR_ENOMEM, NULL, "%s: out of memory", path);
  for (size_t i = 0; i < a->n; i++)
    for (uint32_t l = 0; l <= a->levels[i]; l++) {
      const uint32_t *list =
          l == 0 ? a->links0 + i * (size_t)a->m0
                 : a->upper + a->upper_off[i] + (size_t)(l - 1) * (size_t)a->M;
      int deg = l == 0 ? a->m0 : a->M;
      if (++list_no == 0) { /* wrapped: forget every earlier list */
        memset(seen, 0, a->n * sizeof(uint32_t));
        list_no = 1;
      }
      for (int j = 0; j < deg && list[j] != HR_ANN_NONE; j++) {
        if (a->levels[list[j]] < l) {
          free(seen);
          return bad(err, HR_EFORMAT, path, "an upper-level neighbour is "
                     "not on that level");
        }
        if (seen[list[j]] == list_no) {
          free(seen);
          return bad(err, HR_EFORMAT, path, "a neighbour list names a node "
                     "twice");
        }
        seen[list[j]] = list_no;
      }
    }
  free(seen);
  /* The stored rows: half-precision numbers (no infinity or NaN), zero
   * past the dimension. */
  for (size_t i = 0; i < a->n; i++) {
    const uint16_t *row = a->vecs + i * a->vstride;
    for (size_t c = 0; c < a->vstride; c++)
      if ((row[c] & 0x7c00u) == 0x7c00u || (c >= (size_t)a->dim && row[c]))
        return bad(err, HR_EFORMAT, path, "a stored vector is not finite "
                   "or not zero-padded");
  }
  return 0;
}

long hr_ann_rows_match(const hr_ann_t *a, const float *x, size_t n,
                       int dim) {
  if (a == NULL || x == NULL || n != a->n || dim != a->dim)
    return 0;
  for (size_t i = 0; i < n; i++) {
    const uint16_t *row = a->vecs + i * a->vstride;
    const float *xi = x + i * (size_t)dim;
    for (int c = 0; c < dim; c++)
      if (row[c] != hr_ann__f32_to_f16(xi[c]))
        return (long)i;
  }
  return -1;
}

/* An index over a mapping of len bytes (taken over: unmapped with the
 * index, or at once on failure), or NULL. */
static hr_ann_t *from_mapping(void *map, size_t len, const char *path,
                              hr_error_t *err) {
  hr_ann_t *a = calloc(1, sizeof(*a));
  if (a == NULL) {
    munmap(map, len);
    hr_error_set(err, HR_ENOMEM, NULL, "%s: out of memory", path);
    return NULL;
  }
  a->map = map;
  a->map_len = len;
  if (validate(a, map, len, path, err) != 0) {
    hr_ann_free(a);
    return NULL;
  }
  return a;
}

hr_ann_t *hr_ann_open(const char *path, hr_error_t *err) {
  struct stat st;
  void *map;
  int fd;

  if (path == NULL) {
    hr_error_set(err, HR_EINVAL, NULL, "ann open: no path");
    return NULL;
  }
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0 || fstat(fd, &st) != 0) {
    hr_error_set(err, HR_EIO, NULL, "%s: %s", path, strerror(errno));
    if (fd >= 0)
      close(fd);
    return NULL;
  }
  if (st.st_size < (off_t)sizeof(file_header_t)) {
    close(fd);
    bad(err, HR_EFORMAT, path, "truncated (shorter than the header)");
    return NULL;
  }
  map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (map == MAP_FAILED) {
    hr_error_set(err, HR_EIO, NULL, "%s: mmap: %s", path, strerror(errno));
    return NULL;
  }
  return from_mapping(map, (size_t)st.st_size, path, err);
}

hr_ann_t *hr_ann_open_mem(const void *buf, size_t len, const char *name,
                           hr_error_t *err) {
  void *map;

  if (len < sizeof(file_header_t)) {
    bad(err, HR_EFORMAT, name, "truncated (shorter than the header)");
    return NULL;
  }
  map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
             -1, 0);
  if (map == MAP_FAILED) {
    hr_error_set(err, HR_ENOMEM, NULL, "%s: mmap: %s", name, strerror(errno));
    return NULL;
  }
  memcpy(map, buf, len);
  return from_mapping(map, len, name, err);
}
