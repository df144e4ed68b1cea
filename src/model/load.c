/* load.c -- hr_model_open: manifest, checksums, mmap, tensor table, id tables.
 *
 * Every byte read here is treated as hostile: each size and offset is checked
 * against the file size before use (without overflow), and every refusal
 * names the file at fault as "<name>/<version>/<file>: <reason>". */
#include "model_internal.h"

#include "hr/crc.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_TEXT_FILE (1u << 30) /* items.tsv, users.tsv, manifest */

typedef struct {
  const char *dir;   /* as given */
  char tag[96];      /* "<name>/<version>" for messages */
  hr_error_t *err;
  const hr__model_file_t *mem; /* hr__model_open_mem's files, or NULL */
  size_t n_mem;
} ctx_t;

#define FAIL(c, code, file, ...)                                              \
  fail_at((c), (code), (file), __VA_ARGS__)

__attribute__((format(printf, 4, 5)))
static int fail_at(ctx_t *c, int code, const char *file, const char *fmt,
                   ...) {
  char msg[160];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  return hr_error_set(c->err, code, NULL, "%s/%s: %s", c->tag, file, msg);
}

static uint32_t get_u32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const unsigned char *p) {
  return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

/* ------------------------------------------------------------- the path */

/* name and version are the last two components of dir. */
static int parse_path(ctx_t *c, hr_model_t *m) {
  const char *d = c->dir;
  size_t n = strlen(d), ve, vb, ne, nb;
  uint64_t v = 0;

  while (n > 1 && d[n - 1] == '/')
    n--;
  ve = n;
  vb = ve;
  while (vb > 0 && d[vb - 1] != '/')
    vb--;
  ne = vb;
  while (ne > 0 && d[ne - 1] == '/')
    ne--;
  nb = ne;
  while (nb > 0 && d[nb - 1] != '/')
    nb--;
  snprintf(c->tag, sizeof(c->tag), "%.*s/%.*s", (int)(ne - nb) > 40 ? 40 :
           (int)(ne - nb), d + nb, (int)(ve - vb) > 40 ? 40 : (int)(ve - vb),
           d + vb);
  if (ve == vb || ve - vb > 19)
    return FAIL(c, HR_EFORMAT, "", "version directory name is not a "
                "positive integer");
  for (size_t i = vb; i < ve; i++) {
    if (d[i] < '0' || d[i] > '9')
      return FAIL(c, HR_EFORMAT, "", "version directory name is not a "
                  "positive integer");
    v = v * 10 + (uint64_t)(d[i] - '0');
  }
  if (v == 0)
    return FAIL(c, HR_EFORMAT, "", "version 0 is not allowed");
  m->version = v;
  m->name = strndup(ne > nb ? d + nb : "", ne - nb);
  if (m->name == NULL)
    return hr_error_set(c->err, HR_ENOMEM, NULL, "out of memory");
  return 0;
}

/* ------------------------------------------------------------ file access */

static int path_of(ctx_t *c, const char *file, char *buf, size_t cap) {
  if ((size_t)snprintf(buf, cap, "%s/%s", c->dir, file) >= cap)
    return FAIL(c, HR_EIO, file, "path too long");
  return 0;
}

/* The in-memory file `file` (NULL with the error set when it is not
 * there), for hr__model_open_mem. */
static const hr__model_file_t *mem_file(ctx_t *c, const char *file) {
  for (size_t i = 0; i < c->n_mem; i++)
    if (strcmp(c->mem[i].name, file) == 0)
      return &c->mem[i];
  FAIL(c, HR_EIO, file, "cannot open: %s", strerror(ENOENT));
  return NULL;
}

static int open_file(ctx_t *c, const char *file, uint64_t *size) {
  char path[PATH_MAX];
  struct stat st;
  int fd;

  if (path_of(c, file, path, sizeof(path)) != 0)
    return -1;
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    FAIL(c, HR_EIO, file, "cannot open: %s", strerror(errno));
    return -1;
  }
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    FAIL(c, HR_EIO, file, "not a regular file");
    close(fd);
    return -1;
  }
  *size = (uint64_t)st.st_size;
  return fd;
}

/* Whole file into a NUL-terminated buffer. */
static char *read_text(ctx_t *c, const char *file, uint64_t *size) {
  int fd;
  char *buf;
  size_t got = 0;

  if (c->mem != NULL) {
    const hr__model_file_t *f = mem_file(c, file);
    if (f == NULL)
      return NULL;
    *size = f->len;
    if (*size > MAX_TEXT_FILE) {
      FAIL(c, HR_EFORMAT, file, "file too large (%" PRIu64 " bytes)", *size);
      return NULL;
    }
    if ((buf = malloc(f->len + 1)) == NULL) {
      hr_error_set(c->err, HR_ENOMEM, NULL, "out of memory");
      return NULL;
    }
    memcpy(buf, f->data, f->len);
    buf[f->len] = '\0';
    return buf;
  }
  if ((fd = open_file(c, file, size)) < 0)
    return NULL;
  if (*size > MAX_TEXT_FILE) {
    FAIL(c, HR_EFORMAT, file, "file too large (%" PRIu64 " bytes)", *size);
    close(fd);
    return NULL;
  }
  buf = malloc(*size + 1);
  if (buf == NULL) {
    hr_error_set(c->err, HR_ENOMEM, NULL, "out of memory");
    close(fd);
    return NULL;
  }
  while (got < *size) {
    ssize_t r = read(fd, buf + got, *size - got);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0) {
      FAIL(c, HR_EIO, file, "read failed: %s", r ? strerror(errno) : "EOF");
      free(buf);
      close(fd);
      return NULL;
    }
    got += (size_t)r;
  }
  close(fd);
  buf[got] = '\0';
  return buf;
}

static int check_sum(ctx_t *c, const char *file, json_t *entry,
                     uint64_t size, uint32_t crc);

/* report.json (fit's model selection), read once: checksummed and parsed
 * from the same bytes. It must be a JSON object; what it says is read by
 * hr_model_validation, which accepts only well-formed figures. */
static int load_report(ctx_t *c, hr_model_t *m, json_t *entry) {
  uint64_t size = 0;
  json_error_t je;
  char *text = read_text(c, "report.json", &size);
  int rc;

  if (text == NULL)
    return c->err->code ? c->err->code : HR_EIO;
  rc = check_sum(c, "report.json", entry, size, hr_crc32(0, text, size));
  if (rc == 0) {
    m->report = json_loadb(text, size, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(m->report))
      rc = FAIL(c, HR_EFORMAT, "report.json", "not a JSON object (%s)",
                m->report == NULL ? je.text : "another value");
  }
  free(text);
  m->size_bytes += size;
  return rc;
}

int hr_model_validation(const hr_model_t *m, double *ndcg,
                        const char **holdout) {
  const json_t *v = json_object_get(m->report, "validation");
  const json_t *x = json_object_get(v, "NDCG@10");
  const json_t *h = json_object_get(v, "holdout");
  if (!json_is_number(x) || !json_is_string(h) ||
      !(json_number_value(x) >= 0 && json_number_value(x) <= 1))
    return 0;
  *ndcg = json_number_value(x);
  *holdout = json_string_value(h);
  return 1;
}

const json_t *hr_model_report(const hr_model_t *m) { return m->report; }

int hr_model_forced(const hr_model_t *m) {
  return json_is_true(json_object_get(m->manifest, "forced"));
}

/* Checksum a listed file other than the three we parse (e.g. a later
 * index.bin), streaming. */
static int crc_stream(ctx_t *c, const char *file, uint64_t *size,
                      uint32_t *crc) {
  static __thread unsigned char buf[1 << 16];
  int fd;
  uint64_t left;

  if (c->mem != NULL) {
    const hr__model_file_t *f = mem_file(c, file);
    if (f == NULL)
      return c->err->code;
    *size = f->len;
    *crc = hr_crc32(0, f->data, f->len);
    return 0;
  }
  if ((fd = open_file(c, file, size)) < 0)
    return c->err ? c->err->code : HR_EIO;
  left = *size;
  *crc = 0;
  while (left > 0) {
    ssize_t r = read(fd, buf, left < sizeof(buf) ? left : sizeof(buf));
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0) {
      close(fd);
      return FAIL(c, HR_EIO, file, "read failed");
    }
    *crc = hr_crc32(*crc, buf, (size_t)r);
    left -= (uint64_t)r;
  }
  close(fd);
  return 0;
}

static int check_size(ctx_t *c, const char *file, json_t *entry,
                      uint64_t size) {
  json_int_t want = json_integer_value(json_object_get(entry, "bytes"));

  if (size < (uint64_t)want)
    return FAIL(c, HR_EFORMAT, file, "truncated: %" PRIu64 " bytes, the "
                "manifest says %" PRId64, size, (int64_t)want);
  if (size != (uint64_t)want)
    return FAIL(c, HR_EFORMAT, file, "%" PRIu64 " bytes, the manifest says "
                "%" PRId64, size, (int64_t)want);
  return 0;
}

static int check_sum(ctx_t *c, const char *file, json_t *entry,
                     uint64_t size, uint32_t crc) {
  const char *hex = json_string_value(json_object_get(entry, "crc32"));
  char got[9];
  int rc;

  if ((rc = check_size(c, file, entry, size)) != 0)
    return rc;
  snprintf(got, sizeof(got), "%08" PRIx32, crc);
  if (strcmp(got, hex) != 0)
    return FAIL(c, HR_ECHECKSUM, file, "CRC-32 is %s, the manifest says %s",
                got, hex);
  return 0;
}

static int is_hex8(const char *s) {
  if (s == NULL || strlen(s) != 8)
    return 0;
  for (int i = 0; i < 8; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
      return 0;
  return 1;
}

static int safe_name(const char *f) {
  return f[0] != '\0' && f[0] != '.' && strchr(f, '/') == NULL &&
         strlen(f) < 128;
}

static int get_int(ctx_t *c, json_t *o, const char *key, json_int_t lo,
                   json_int_t hi, json_int_t *out) {
  json_t *v = json_object_get(o, key);
  if (!json_is_integer(v) || json_integer_value(v) < lo ||
      json_integer_value(v) > hi)
    return FAIL(c, HR_EFORMAT, "manifest.json", "\"%s\" missing or not an "
                "integer in [%" PRId64 ", %" PRId64 "]", key, (int64_t)lo,
                (int64_t)hi);
  *out = json_integer_value(v);
  return 0;
}

static int get_num(ctx_t *c, json_t *o, const char *key, double lo,
                   double hi, float *out) {
  json_t *v = json_object_get(o, key);
  double d = json_number_value(v);
  if (!json_is_number(v) || !(d >= lo && d <= hi))
    return FAIL(c, HR_EFORMAT, "manifest.json", "params.%s missing or not "
                "in [%g, %g]", key, lo, hi);
  *out = (float)d;
  return 0;
}

static int parse_manifest(ctx_t *c, hr_model_t *m, uint64_t *size) {
  json_error_t je;
  char *text = read_text(c, "manifest.json", size);
  json_t *files, *fv, *kind;
  const char *key;
  json_int_t v;

  if (text == NULL)
    return c->err ? c->err->code : HR_EIO;
  m->manifest = json_loads(text, JSON_REJECT_DUPLICATES, &je);
  free(text);
  if (m->manifest == NULL)
    return FAIL(c, HR_EFORMAT, "manifest.json", "line %d: %s", je.line,
                je.text);
  if (!json_is_object(m->manifest))
    return FAIL(c, HR_EFORMAT, "manifest.json", "not a JSON object");
  fv = json_object_get(m->manifest, "format_version");
  if (!json_is_integer(fv))
    return FAIL(c, HR_EFORMAT, "manifest.json", "\"format_version\" missing");
  if (json_integer_value(fv) != HR_MODEL_FORMAT_VERSION)
    return FAIL(c, HR_EVERSION, "manifest.json", "format_version %" PRId64
                " is not supported (this build reads %d)",
                (int64_t)json_integer_value(fv), HR_MODEL_FORMAT_VERSION);
  kind = json_object_get(m->manifest, "kind");
  if (!json_is_string(kind))
    return FAIL(c, HR_EFORMAT, "manifest.json", "\"kind\" missing");
  m->kind = strdup(json_string_value(kind));
  if (m->kind == NULL)
    return hr_error_set(c->err, HR_ENOMEM, NULL, "out of memory");
  if (get_int(c, m->manifest, "dim", 1,
              strcmp(m->kind, "ease") == 0 ? HR_MODEL_MAX_EASE_DIM
                                           : HR_MODEL_MAX_DIM,
              &v) != 0)
    return c->err->code;
  m->dim = (int)v;
  if (get_int(c, m->manifest, "n_items", 0, INT32_MAX, &v) != 0)
    return c->err->code;
  m->n_items = (size_t)v;
  if (get_int(c, m->manifest, "n_users", 0, INT32_MAX, &v) != 0)
    return c->err->code;
  m->n_users = (size_t)v;
  files = json_object_get(m->manifest, "files");
  if (!json_is_object(files))
    return FAIL(c, HR_EFORMAT, "manifest.json", "\"files\" missing");
  json_object_foreach(files, key, fv) {
    json_t *b = json_object_get(fv, "bytes");
    if (!safe_name(key))
      return FAIL(c, HR_EFORMAT, "manifest.json", "bad file name in "
                  "\"files\"");
    if (!json_is_integer(b) || json_integer_value(b) < 0 ||
        !is_hex8(json_string_value(json_object_get(fv, "crc32"))))
      return FAIL(c, HR_EFORMAT, "manifest.json", "files.%s needs \"bytes\" "
                  "and an 8-digit lower-case hex \"crc32\"", key);
  }
  static const char *const need[] = {"model.bin", "items.tsv", "users.tsv"};
  for (int i = 0; i < 3; i++)
    if (json_object_get(files, need[i]) == NULL)
      return FAIL(c, HR_EFORMAT, "manifest.json", "files.%s missing",
                  need[i]);
  return 0;
}

/* ------------------------------------------------------------ model.bin */

static int map_bin(ctx_t *c, hr_model_t *m, json_t *entry) {
  uint64_t size;
  int fd;
  int rc;

  if (c->mem != NULL) {
    const hr__model_file_t *f = mem_file(c, "model.bin");
    if (f == NULL)
      return c->err->code;
    size = f->len;
    if ((rc = check_size(c, "model.bin", entry, size)) != 0)
      return rc;
    if (size < HR__MB_HEADER)
      return FAIL(c, HR_EFORMAT, "model.bin", "truncated: %" PRIu64 " bytes",
                  size);
    m->map = mmap(NULL, f->len, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m->map == MAP_FAILED) {
      m->map = NULL;
      return FAIL(c, HR_ENOMEM, "model.bin", "mmap: %s", strerror(errno));
    }
    memcpy(m->map, f->data, f->len);
    m->map_len = f->len;
    return check_sum(c, "model.bin", entry, size,
                     hr_crc32(0, m->map, m->map_len));
  }
  if ((fd = open_file(c, "model.bin", &size)) < 0)
    return c->err ? c->err->code : HR_EIO;
  if ((rc = check_size(c, "model.bin", entry, size)) != 0) {
    close(fd);
    return rc;
  }
  if (size < HR__MB_HEADER || size > SIZE_MAX) {
    close(fd);
    return FAIL(c, HR_EFORMAT, "model.bin", "truncated: %" PRIu64 " bytes",
                size);
  }
  m->map = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (m->map == MAP_FAILED) {
    m->map = NULL;
    return FAIL(c, HR_EIO, "model.bin", "mmap: %s", strerror(errno));
  }
  m->map_len = (size_t)size;
  return check_sum(c, "model.bin", entry, size,
                   hr_crc32(0, m->map, m->map_len));
}

static int parse_bin(ctx_t *c, hr_model_t *m) {
  const unsigned char *p = m->map;
  uint64_t len = m->map_len, toff, tbytes, fsize;
  uint32_t n, esize, ver;

  if (memcmp(p, HR_MODEL_MAGIC, 8) != 0)
    return FAIL(c, HR_EFORMAT, "model.bin", "bad magic (not a hyperrec "
                "model)");
  if (get_u32(p + 60) != hr_crc32(0, p, 60))
    return FAIL(c, HR_ECHECKSUM, "model.bin", "header CRC-32 mismatch");
  ver = get_u32(p + 8);
  if (ver != HR_MODEL_FORMAT_VERSION)
    return FAIL(c, HR_EVERSION, "model.bin", "format version %" PRIu32
                " is not supported (this build reads %d)", ver,
                HR_MODEL_FORMAT_VERSION);
  n = get_u32(p + 12);
  toff = get_u64(p + 16);
  tbytes = get_u64(p + 24);
  fsize = get_u64(p + 32);
  esize = get_u32(p + 44);
  if (fsize != len)
    return FAIL(c, HR_EFORMAT, "model.bin", "header says %" PRIu64
                " bytes, file has %" PRIu64, fsize, len);
  if (n > HR__MB_MAX_TENSORS || esize < HR__MB_ENTRY || esize > 4096 ||
      toff < HR__MB_HEADER || toff > len || tbytes != (uint64_t)n * esize ||
      tbytes > len - toff)
    return FAIL(c, HR_EFORMAT, "model.bin", "tensor table out of bounds");
  if (get_u32(p + 40) != hr_crc32(0, p + toff, (size_t)tbytes))
    return FAIL(c, HR_ECHECKSUM, "model.bin", "tensor table CRC-32 "
                "mismatch");
  m->tensors = calloc(n ? n : 1, sizeof(*m->tensors));
  if (m->tensors == NULL)
    return hr_error_set(c->err, HR_ENOMEM, NULL, "out of memory");
  for (uint32_t i = 0; i < n; i++) {
    const unsigned char *e = p + toff + (uint64_t)i * esize;
    hr_tensor_t *t = &m->tensors[i];
    uint32_t dtype = get_u32(e + 48), ndim = get_u32(e + 52);
    uint64_t off = get_u64(e + 88), nb = get_u64(e + 96);
    uint64_t el = hr__model_dtype_size(dtype);

    if (memchr(e, '\0', HR__MB_NAME) == NULL || e[0] == '\0')
      return FAIL(c, HR_EFORMAT, "model.bin", "tensor %" PRIu32 ": name not "
                  "NUL-terminated", i);
    t->name = (const char *)e;
    for (uint32_t j = 0; j < i; j++)
      if (strcmp(m->tensors[j].name, t->name) == 0)
        return FAIL(c, HR_EFORMAT, "model.bin", "tensor %.47s twice",
                    t->name);
    if (ndim < 1 || ndim > 4)
      return FAIL(c, HR_EFORMAT, "model.bin", "tensor %.47s: ndim %" PRIu32,
                  t->name, ndim);
    if (off % HR__MB_ALIGN != 0 || off < toff + tbytes || off > len ||
        nb > len - off)
      return FAIL(c, HR_EFORMAT, "model.bin", "tensor %.40s: data out of "
                  "bounds or misaligned", t->name);
    t->dtype = (hr_dtype_t)dtype;
    t->ndim = (int)ndim;
    for (int d = 0; d < 4; d++) {
      t->dims[d] = get_u64(e + 56 + 8 * d);
      if (d >= t->ndim && t->dims[d] != 1)
        return FAIL(c, HR_EFORMAT, "model.bin", "tensor %.47s: unused dim "
                    "is not 1", t->name);
      /* A size check for dtypes we know; unknown ones (a later format's)
       * are kept bounds-checked but opaque. */
      if (el != 0) {
        if (t->dims[d] != 0 && el > UINT64_MAX / t->dims[d])
          return FAIL(c, HR_EFORMAT, "model.bin", "tensor %.47s: dims "
                      "overflow", t->name);
        el *= t->dims[d];
      }
    }
    if (hr__model_dtype_size(dtype) != 0 && el != nb)
      return FAIL(c, HR_EFORMAT, "model.bin", "tensor %.40s: %" PRIu64
                  " bytes, dims say %" PRIu64, t->name, nb, el);
    t->data = p + off;
    t->nbytes = nb;
  }
  m->n_tensors = n;
  return 0;
}

/* ------------------------------------------------------------- id tables */

/* "index<TAB><id>[<TAB>attr...]" lines under a header starting with
 * "index<TAB><column>". */
static int parse_ids(ctx_t *c, const char *file, const char *column,
                     char *text, size_t expect, hr_idmap_t **out) {
  char *line = text, *nl;
  size_t lineno = 1, i = 0, clen = strlen(column);

  nl = strchr(line, '\n');
  if (nl == NULL || strncmp(line, "index\t", 6) != 0 ||
      strncmp(line + 6, column, clen) != 0 ||
      (line[6 + clen] != '\t' && line + 6 + clen != nl))
    return FAIL(c, HR_EFORMAT, file, "line 1: header must start with "
                "\"index<TAB>%s\"", column);
  *out = hr_idmap_new(expect);
  if (*out == NULL)
    return hr_error_set(c->err, HR_ENOMEM, NULL, "out of memory");
  for (line = nl + 1; *line != '\0'; line = nl + 1) {
    char *tab, *end;
    unsigned long long idx;
    int added;
    long r;

    lineno++;
    nl = strchr(line, '\n');
    if (nl == NULL)
      return FAIL(c, HR_EFORMAT, file, "line %zu: no final newline (file "
                  "truncated?)", lineno);
    *nl = '\0';
    errno = 0;
    idx = strtoull(line, &end, 10);
    if (end == line || *end != '\t' || errno != 0 || line[0] == '-' ||
        idx != i)
      return FAIL(c, HR_EFORMAT, file, "line %zu: index must be %zu", lineno,
                  i);
    tab = end + 1;
    end = strchr(tab, '\t');
    if (end == NULL)
      end = tab + strlen(tab);
    if (end == tab || memchr(tab, '\r', (size_t)(end - tab)) != NULL)
      return FAIL(c, HR_EFORMAT, file, "line %zu: empty or bad id", lineno);
    if (!hr_utf8_valid(tab, (size_t)(end - tab)))
      return FAIL(c, HR_EFORMAT, file, "line %zu: an id that is not UTF-8",
                  lineno);
    if (i >= expect)
      return FAIL(c, HR_EFORMAT, file, "line %zu: more rows than the "
                  "manifest's %zu", lineno, expect);
    r = hr_idmap_add(*out, tab, (size_t)(end - tab), &added);
    if (r < 0)
      return hr_error_set(c->err, HR_ENOMEM, NULL, "out of memory");
    if (!added)
      return FAIL(c, HR_EFORMAT, file, "line %zu: duplicate id", lineno);
    i++;
  }
  if (i != expect)
    return FAIL(c, HR_EFORMAT, file, "%zu rows, the manifest says %zu", i,
                expect);
  return 0;
}

static int load_tsv(ctx_t *c, hr_model_t *m, json_t *files, const char *file,
                    const char *column, size_t expect, hr_idmap_t **out) {
  uint64_t size;
  char *text = read_text(c, file, &size);
  int rc;

  if (text == NULL)
    return c->err ? c->err->code : HR_EIO;
  rc = check_sum(c, file, json_object_get(files, file), size,
                 hr_crc32(0, text, (size_t)size));
  if (rc == 0 && strlen(text) != size)
    rc = FAIL(c, HR_EFORMAT, file, "NUL byte inside");
  if (rc == 0)
    rc = parse_ids(c, file, column, text, expect, out);
  if (rc == 0 && strcmp(file, "items.tsv") == 0) {
    char where[128];
    snprintf(where, sizeof(where), "%s/%s", c->tag, file);
    rc = hr__model_parse_attrs(m, text, (size_t)size, where, c->err);
  }
  m->size_bytes += size;
  free(text);
  return rc;
}

/* ------------------------------------------------------------- iALS bind */

static int need(ctx_t *c, const hr_model_t *m, const char *name,
                hr_dtype_t dt, int ndim, uint64_t d0, uint64_t d1,
                const void **out) {
  hr_tensor_t t;
  if (hr_model_tensor(m, name, &t) != 0)
    return FAIL(c, HR_EFORMAT, "model.bin", "tensor %s missing", name);
  if (t.dtype != dt || t.ndim != ndim || t.dims[0] != d0 ||
      (ndim > 1 && t.dims[1] != d1))
    return FAIL(c, HR_EFORMAT, "model.bin", "tensor %s: wrong dtype or "
                "shape for dim %d, %zu items, %zu users", name, m->dim,
                m->n_items, m->n_users);
  *out = t.data;
  return 0;
}

static int all_finite(const float *x, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!isfinite(x[i]))
      return 0;
  return 1;
}

/* The tensors every kind has: item vectors, prior, training histories. */
static int bind_common(ctx_t *c, hr_model_t *m) {
  size_t d = (size_t)m->dim, ni = m->n_items, nu = m->n_users;
  const void *p;
  hr_tensor_t hi;

  if (need(c, m, "item_emb", HR_DT_F32, 2, ni, d, &p))
    return c->err->code;
  m->item_emb = p;
  if (need(c, m, "item_prior", HR_DT_F32, 1, ni, 1, &p))
    return c->err->code;
  m->item_prior = p;
  if (need(c, m, "user_hist_ptr", HR_DT_U64, 1, nu + 1, 1, &p))
    return c->err->code;
  m->hist_ptr = p;
  if (hr_model_tensor(m, "user_hist_items", &hi) != 0 ||
      hi.dtype != HR_DT_I32 || hi.ndim != 1)
    return FAIL(c, HR_EFORMAT, "model.bin", "tensor user_hist_items missing "
                "or not i32[n]");
  m->hist_items = hi.data;
  if (m->hist_ptr[0] != 0 || m->hist_ptr[nu] != hi.dims[0])
    return FAIL(c, HR_EFORMAT, "model.bin", "user_hist_ptr does not cover "
                "user_hist_items");
  for (size_t u = 0; u < nu; u++)
    if (m->hist_ptr[u + 1] < m->hist_ptr[u])
      return FAIL(c, HR_EFORMAT, "model.bin", "user_hist_ptr decreases at "
                  "user %zu", u);
  for (uint64_t k = 0; k < hi.dims[0]; k++)
    if (m->hist_items[k] < 0 || (size_t)m->hist_items[k] >= ni)
      return FAIL(c, HR_EFORMAT, "model.bin", "user_hist_items[%" PRIu64
                  "] out of range", k);
  if (!all_finite(m->item_emb, ni * d) || !all_finite(m->item_prior, ni))
    return FAIL(c, HR_EFORMAT, "model.bin", "NaN or infinity in the "
                "weights");
  return 0;
}

/* Kind "ease": item_emb is n_items x n_items (row i: B's column i). */
static int bind_ease(ctx_t *c, hr_model_t *m) {
  json_t *params = json_object_get(m->manifest, "params");
  if ((size_t)m->dim != m->n_items)
    return FAIL(c, HR_EFORMAT, "manifest.json", "kind ease: dim %d is not "
                "n_items %zu", m->dim, m->n_items);
  if (!json_is_object(params))
    return FAIL(c, HR_EFORMAT, "manifest.json", "\"params\" missing");
  if (get_num(c, params, "decay", 1e-6, 1, &m->ease_decay))
    return c->err->code;
  m->ease = 1;
  return bind_common(c, m);
}

/* Kind "dae": item_emb is the decoder, item_prior its bias; dae_enc and
 * dae_enc_bias the encoder (docs/model-format.md). */
static int bind_dae(ctx_t *c, hr_model_t *m) {
  json_t *params = json_object_get(m->manifest, "params");
  size_t d = (size_t)m->dim;
  const void *p;
  if (!json_is_object(params))
    return FAIL(c, HR_EFORMAT, "manifest.json", "\"params\" missing");
  if (get_num(c, params, "decay", 1e-6, 1, &m->ease_decay) ||
      bind_common(c, m))
    return c->err->code;
  if (need(c, m, "dae_enc", HR_DT_F32, 2, m->n_items, d, &p))
    return c->err->code;
  m->dae_enc = p;
  if (need(c, m, "dae_enc_bias", HR_DT_F32, 1, d, 1, &p))
    return c->err->code;
  m->dae_enc_bias = p;
  if (!all_finite(m->dae_enc, m->n_items * d) ||
      !all_finite(m->dae_enc_bias, d))
    return FAIL(c, HR_EFORMAT, "model.bin", "NaN or infinity in the "
                "weights");
  return 0;
}

static int bind_ials(ctx_t *c, hr_model_t *m) {
  json_t *params = json_object_get(m->manifest, "params");
  size_t d = (size_t)m->dim, nu = m->n_users;
  const void *p;
  json_int_t cap;

  if (!json_is_object(params))
    return FAIL(c, HR_EFORMAT, "manifest.json", "\"params\" missing");
  if (get_num(c, params, "alpha", 0, 1e6, &m->ials.alpha) ||
      get_num(c, params, "reg", 1e-6, 1e9, &m->ials.reg) ||
      get_num(c, params, "decay", 1e-6, 1, &m->ials.decay) ||
      get_num(c, params, "floor", 0, 1, &m->ials.floor) ||
      get_int(c, params, "cap", 0, INT32_MAX, &cap))
    return c->err->code;
  m->ials.cap = (int)cap;
  if (bind_common(c, m))
    return c->err->code;
  if (need(c, m, "yty", HR_DT_F32, 2, d, d, &p))
    return c->err->code;
  m->yty = p;
  if (need(c, m, "user_emb", HR_DT_F32, 2, nu, d, &p))
    return c->err->code;
  m->user_emb = p;
  if (!all_finite(m->yty, d * d) || !all_finite(m->user_emb, nu * d))
    return FAIL(c, HR_EFORMAT, "model.bin", "NaN or infinity in the "
                "weights");
  return 0;
}

/* Kind "seq": the transformer's shape from params, its weights as
 * item_emb + seq_rest (hr_seq_bind_split), the histories' timestamps; with
 * params.long_term, the long-term (iALS) part: item_emb rows are
 * [sequential d | long-term f] and lt_item, yty, user_emb are iALS's. */
/* params.encoder (absent: the transformer) and a CNN's window and filter
 * counts into dm. */
static int seq_encoder(ctx_t *c, json_t *params, hr_seq_dims_t *dm) {
  json_t *e = json_object_get(params, "encoder");
  json_int_t win, nh, nv;
  const char *bad;
  if (e == NULL)
    return 0;
  if (!json_is_string(e) || hr_seq_enc_parse(json_string_value(e)) < 0)
    return FAIL(c, HR_EFORMAT, "manifest.json", "params.encoder must be "
                "\"transformer\", \"gru\" or \"cnn\"");
  dm->enc = hr_seq_enc_parse(json_string_value(e));
  if (dm->enc == HR_SEQ_CNN) {
    if (get_int(c, params, "window", 1, HR_SEQ_MAX_WIN, &win) ||
        get_int(c, params, "filters_h", 1, 256, &nh) ||
        get_int(c, params, "filters_v", 1, 256, &nv))
      return c->err->code;
    dm->win = (int)win;
    dm->nh = (int)nh;
    dm->nv = (int)nv;
  }
  if ((bad = hr_seq_enc_check(dm)) != NULL)
    return FAIL(c, HR_EFORMAT, "manifest.json", "params: %s", bad);
  return 0;
}

static int bind_seq(ctx_t *c, hr_model_t *m) {
  json_t *params = json_object_get(m->manifest, "params"), *lt;
  size_t nu = m->n_users, rest, d = (size_t)m->dim;
  json_int_t len, blocks, ffn, gaps, f = 0, cap, members = 1;
  const void *p;
  hr_seq_dims_t *dm = &m->seq;

  if (!json_is_object(params))
    return FAIL(c, HR_EFORMAT, "manifest.json", "\"params\" missing");
  lt = json_object_get(params, "long_term");
  if (lt != NULL) {
    if (!json_is_object(lt))
      return FAIL(c, HR_EFORMAT, "manifest.json", "params.long_term must be "
                  "an object");
    if (get_int(c, lt, "factors", 1, m->dim - 1, &f) ||
        get_num(c, lt, "weight", 0, 1e6, &m->lt_weight) ||
        get_num(c, lt, "alpha", 0, 1e6, &m->ials.alpha) ||
        get_num(c, lt, "reg", 1e-6, 1e9, &m->ials.reg) ||
        get_num(c, lt, "decay", 1e-6, 1, &m->ials.decay) ||
        get_num(c, lt, "floor", 0, 1, &m->ials.floor) ||
        get_int(c, lt, "cap", 0, INT32_MAX, &cap))
      return c->err->code;
    m->ials.cap = (int)cap;
    m->lt_dim = (int)f;
    d = (size_t)(m->dim - f);
  }
  if (json_object_get(params, "members") != NULL &&
      get_int(c, params, "members", 1, HR_SEQ_MAX_MEMBERS, &members))
    return c->err->code;
  if (d % (size_t)members != 0)
    return FAIL(c, HR_EFORMAT, "manifest.json", "dim %d minus the long-term "
                "factors is not a multiple of params.members (%d)", m->dim,
                (int)members);
  m->seq_members = (int)members;
  m->seq_width = (int)d;
  d /= (size_t)members;
  if (get_int(c, params, "len", 1, HR_SEQ_MAX_LEN, &len) ||
      get_int(c, params, "blocks", 0, HR_SEQ_MAX_BLOCKS, &blocks) ||
      get_int(c, params, "ffn", 1, 16384, &ffn) ||
      get_int(c, params, "gaps", 0, HR_SEQ_GAPS, &gaps))
    return c->err->code;
  if (gaps != 0 && gaps != HR_SEQ_GAPS)
    return FAIL(c, HR_EFORMAT, "manifest.json", "params.gaps must be 0 or %d",
                HR_SEQ_GAPS);
  *dm = (hr_seq_dims_t){(int)d, (int)len, (int)blocks, (int)ffn,
                        (int)m->n_items, (int)gaps, 0, 0, 0, 0};
  if (seq_encoder(c, params, dm))
    return c->err->code;
  if (m->n_items > INT32_MAX)
    return FAIL(c, HR_EFORMAT, "manifest.json", "too many items for kind "
                "seq");
  if (bind_common(c, m))
    return c->err->code;
  /* each member's network after its item table, back to back */
  rest = hr_seq_param_count(dm) - m->n_items * d;
  if (need(c, m, "seq_rest", HR_DT_F32, 1, rest * (size_t)members, 1, &p))
    return c->err->code;
  if (!all_finite(p, rest * (size_t)members))
    return FAIL(c, HR_EFORMAT, "model.bin", "NaN or infinity in the "
                "weights");
  /* The forward pass only reads parameters; the views are non-const
   * because the trainer's writable copy shares the struct. */
  for (int k = 0; k < (int)members; k++)
    hr_seq_bind_split(dm, (float *)(uintptr_t)(m->item_emb + (size_t)k * d),
                      (size_t)m->dim,
                      (float *)(uintptr_t)p + (size_t)k * rest, &m->seqp[k]);
  if (f > 0) {
    if (need(c, m, "lt_item", HR_DT_F32, 2, m->n_items, (uint64_t)f, &p))
      return c->err->code;
    m->lt_item = p;
    if (need(c, m, "yty", HR_DT_F32, 2, (uint64_t)f, (uint64_t)f, &p))
      return c->err->code;
    m->yty = p;
    if (need(c, m, "user_emb", HR_DT_F32, 2, nu, (uint64_t)f, &p))
      return c->err->code;
    m->user_emb = p;
    if (!all_finite(m->lt_item, m->n_items * (size_t)f) ||
        !all_finite(m->yty, (size_t)(f * f)) ||
        !all_finite(m->user_emb, nu * (size_t)f))
      return FAIL(c, HR_EFORMAT, "model.bin", "NaN or infinity in the "
                  "long-term weights");
  }
  if (need(c, m, "user_hist_ts", HR_DT_I64, 1, m->hist_ptr[nu], 1, &p))
    return c->err->code;
  m->hist_ts = p;
  return 0;
}

/* ------------------------------------------------------------- lifecycle */

static const float *g_sort_norms; /* qsort has no context argument */

static int cmp_norm_desc(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  float nx = g_sort_norms[x], ny = g_sort_norms[y];
  if (nx != ny)
    return nx < ny ? 1 : -1;
  return (x > y) - (x < y);
}

/* The items in decreasing norm order (see hr_model_retrieve). Loading runs
 * on one thread at a time (the registry's scanner), so the qsort context
 * in a static is safe. */
static int sort_by_norm(ctx_t *c, hr_model_t *m) {
  size_t n = m->n_items, d = (size_t)m->dim;
  float *norms = malloc(sizeof(float) * (n ? n : 1));
  m->by_norm = malloc(sizeof(uint32_t) * (n ? n : 1));
  m->norm_sorted = malloc(sizeof(float) * (n ? n : 1));
  if (norms == NULL || m->by_norm == NULL || m->norm_sorted == NULL) {
    free(norms);
    return FAIL(c, HR_ENOMEM, "index.bin", "out of memory");
  }
  for (size_t i = 0; i < n; i++) {
    double q = 0;
    for (size_t k = 0; k < d; k++)
      q += (double)m->item_emb[i * d + k] * m->item_emb[i * d + k];
    norms[i] = (float)sqrt(q);
    m->by_norm[i] = (uint32_t)i;
  }
  g_sort_norms = norms;
  qsort(m->by_norm, n, sizeof(uint32_t), cmp_norm_desc);
  for (size_t i = 0; i < n; i++)
    m->norm_sorted[i] = norms[m->by_norm[i]];
  free(norms);
  /* The norm pass reads the longest vectors first and usually stops within
   * a few percent of the catalogue: keep those rows contiguous (1/16 of
   * the items, at least 4096) so the pass streams instead of jumping. */
  m->n_head = n / 16 > 4096 ? n / 16 : (n < 4096 ? n : 4096);
  m->head = malloc(sizeof(float) * d * (m->n_head ? m->n_head : 1));
  if (m->head == NULL)
    return FAIL(c, HR_ENOMEM, "index.bin", "out of memory");
  for (size_t r = 0; r < m->n_head; r++)
    memcpy(m->head + r * d, m->item_emb + (size_t)m->by_norm[r] * d,
           sizeof(float) * d);
  return 0;
}

/* index.bin: the ANN graph over item_emb; it must describe this model's
 * catalogue exactly. */
/* The optional context prior: manifest "context_prior" {fields: [{name,
 * values}]} and the tensors pop_log [n_items], ctx_lift [values, n_items]. */
static int bind_context_prior(ctx_t *c, hr_model_t *m) {
  json_t *cp = json_object_get(m->manifest, "context_prior"), *fields;
  size_t rows = 0;
  const void *p;

  if (cp == NULL)
    return 0;
  fields = json_object_get(cp, "fields");
  if (!json_is_array(fields) || json_array_size(fields) == 0 ||
      json_array_size(fields) > HR_MODEL_MAX_CFIELDS)
    return FAIL(c, HR_EFORMAT, "manifest.json", "context_prior.fields must "
                "be an array of 1 to %d fields", HR_MODEL_MAX_CFIELDS);
  for (size_t f = 0; f < json_array_size(fields); f++) {
    json_t *fo = json_array_get(fields, f);
    json_t *name = json_object_get(fo, "name"), *vals = json_object_get(fo,
                                                                         "values");
    if (!json_is_string(name) || json_string_length(name) == 0 ||
        json_string_length(name) > HR_MODEL_MAX_ATTR_NAME ||
        !json_is_array(vals) || json_array_size(vals) == 0 ||
        json_array_size(vals) > 100000)
      return FAIL(c, HR_EFORMAT, "manifest.json", "context_prior field %zu: "
                  "needs a name (1-%d bytes) and 1-100000 values", f,
                  HR_MODEL_MAX_ATTR_NAME);
    m->cfield[f] = strdup(json_string_value(name));
    m->cvals[f] = hr_idmap_new(json_array_size(vals));
    m->n_cfields = f + 1;
    if (m->cfield[f] == NULL || m->cvals[f] == NULL)
      return FAIL(c, HR_ENOMEM, "manifest.json", "out of memory");
    m->coff[f] = rows;
    for (size_t v = 0; v < json_array_size(vals); v++) {
      json_t *x = json_array_get(vals, v);
      int added = 0;
      if (!json_is_string(x) || json_string_length(x) == 0 ||
          json_string_length(x) > HR_MODEL_MAX_ATTR_VALUE)
        return FAIL(c, HR_EFORMAT, "manifest.json", "context_prior field %s: "
                    "value %zu is not a string of 1-%d bytes",
                    m->cfield[f], v, HR_MODEL_MAX_ATTR_VALUE);
      if (hr_idmap_add(m->cvals[f], json_string_value(x),
                       json_string_length(x), &added) < 0)
        return FAIL(c, HR_ENOMEM, "manifest.json", "out of memory");
      if (!added)
        return FAIL(c, HR_EFORMAT, "manifest.json", "context_prior field %s: "
                    "value %zu repeated", m->cfield[f], v);
    }
    rows += json_array_size(vals);
  }
  if (need(c, m, "pop_log", HR_DT_F32, 1, m->n_items, 1, &p))
    return c->err->code;
  m->pop_log = p;
  if (need(c, m, "ctx_lift", HR_DT_F32, 2, rows, m->n_items, &p))
    return c->err->code;
  m->ctx_lift = p;
  if (!all_finite(m->pop_log, m->n_items) ||
      !all_finite(m->ctx_lift, rows * m->n_items))
    return FAIL(c, HR_EFORMAT, "model.bin", "NaN or infinity in the "
                "context prior");
  return 0;
}

/* A seq model's context features (manifest params.context_features true):
 * tensor seq_ctx [context prior rows, members * d], one vector per value of the
 * context prior, which must be present. */
static int bind_seq_ctx(ctx_t *c, hr_model_t *m) {
  json_t *params = json_object_get(m->manifest, "params");
  json_t *cf = json_object_get(params, "context_features");
  size_t rows;
  const void *p;

  if (cf == NULL || json_is_false(cf))
    return 0;
  if (!json_is_true(cf))
    return FAIL(c, HR_EFORMAT, "manifest.json", "params.context_features "
                "must be a boolean");
  if (m->n_cfields == 0)
    return FAIL(c, HR_EFORMAT, "manifest.json", "params.context_features "
                "needs a context_prior");
  rows = m->coff[m->n_cfields - 1] + hr_idmap_size(m->cvals[m->n_cfields - 1]);
  if (need(c, m, "seq_ctx", HR_DT_F32, 2, rows, (uint64_t)m->seq_width, &p))
    return c->err->code;
  if (!all_finite(p, rows * (size_t)m->seq_width))
    return FAIL(c, HR_EFORMAT, "model.bin", "NaN or infinity in seq_ctx");
  m->seq_ctx = p;
  return 0;
}

static int open_ann(ctx_t *c, hr_model_t *m) {
  char path[PATH_MAX];
  hr_error_t e = {0};

  snprintf(path, sizeof(path), "%s/index.bin", c->dir);
  if (c->mem != NULL) {
    const hr__model_file_t *f = mem_file(c, "index.bin");
    if (f == NULL)
      return c->err->code;
    m->ann = hr_ann_open_mem(f->data, f->len, path, &e);
  } else {
    m->ann = hr_ann_open(path, &e);
  }
  if (m->ann == NULL)
    return FAIL(c, e.code ? e.code : HR_EFORMAT, "index.bin", "%s", e.msg);
  if (hr_ann_size(m->ann) != m->n_items || hr_ann_dim(m->ann) != m->dim)
    return FAIL(c, HR_EFORMAT, "index.bin",
                "indexes %zu items of dim %d, the model has %zu of dim %d",
                hr_ann_size(m->ann), hr_ann_dim(m->ann), m->n_items, m->dim);
  {
    long row = hr_ann_rows_match(m->ann, m->item_emb, m->n_items, m->dim);
    if (row >= 0)
      return FAIL(c, HR_EFORMAT, "index.bin",
                  "was not built from this version's item vectors (item %ld "
                  "differs): an index of another fit?", row);
  }
  /* The index keeps fp16 rows; its final candidates are re-ranked with the
   * model's float32 item vectors, which live as long as the model. */
  hr_ann_set_rerank_vectors(m->ann, m->item_emb);
  return sort_by_norm(c, m);
}

static hr_model_t *open_model(ctx_t c, hr_error_t *err);

hr_model_t *hr_model_open(const char *dir, hr_error_t *err) {
  ctx_t c = {.dir = dir, .err = err};
  return open_model(c, err);
}

hr_model_t *hr__model_open_mem(const char *dir, const hr__model_file_t *files,
                               size_t n_files, hr_error_t *err) {
  ctx_t c = {.dir = dir, .err = err, .mem = files, .n_mem = n_files};
  return open_model(c, err);
}

static hr_model_t *open_model(ctx_t c, hr_error_t *err) {
  hr_model_t *m = calloc(1, sizeof(*m));
  hr_error_t local = {0};
  json_t *files, *entry;
  const char *key;
  uint64_t size;
  uint32_t crc = 0;
  int rc;

  if (err == NULL)
    c.err = &local; /* we read err->code below */
  if (m == NULL) {
    hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
    return NULL;
  }
  if ((rc = parse_path(&c, m)) != 0 || (rc = parse_manifest(&c, m, &size)))
    goto fail;
  m->size_bytes = size;
  files = json_object_get(m->manifest, "files");
  if ((rc = map_bin(&c, m, json_object_get(files, "model.bin"))) != 0)
    goto fail;
  m->size_bytes += m->map_len;
  /* Any other listed file (a later index.bin, ...) is checksummed too. */
  json_object_foreach(files, key, entry) {
    if (strcmp(key, "model.bin") == 0 || strcmp(key, "items.tsv") == 0 ||
        strcmp(key, "users.tsv") == 0)
      continue;
    if (strcmp(key, "report.json") == 0) {
      if ((rc = load_report(&c, m, entry)) != 0)
        goto fail;
      continue;
    }
    if ((rc = crc_stream(&c, key, &size, &crc)) != 0 ||
        (rc = check_sum(&c, key, entry, size, crc)) != 0)
      goto fail;
    m->size_bytes += size;
  }
  if ((rc = load_tsv(&c, m, files, "items.tsv", "item_id", m->n_items,
                     &m->items)) != 0 ||
      (rc = load_tsv(&c, m, files, "users.tsv", "user_id", m->n_users,
                     &m->users)) != 0 ||
      (rc = parse_bin(&c, m)) != 0)
    goto fail;
  if (strcmp(m->kind, "ials") == 0 || strcmp(m->kind, "pop") == 0) {
    /* "pop" is an iALS layout whose vectors are all zero: every user
     * gets the popularity and context priors */
    if ((rc = bind_ials(&c, m)) != 0)
      goto fail;
  } else if (strcmp(m->kind, "seq") == 0) {
    if ((rc = bind_seq(&c, m)) != 0)
      goto fail;
  } else if (strcmp(m->kind, "ease") == 0) {
    if ((rc = bind_ease(&c, m)) != 0)
      goto fail;
  } else if (strcmp(m->kind, "dae") == 0) {
    if ((rc = bind_dae(&c, m)) != 0)
      goto fail;
  } else {
    FAIL(&c, HR_EFORMAT, "manifest.json", "unsupported model kind \"%.32s\"",
         m->kind);
    goto fail;
  }
  if ((rc = bind_context_prior(&c, m)) != 0 ||
      (strcmp(m->kind, "seq") == 0 && (rc = bind_seq_ctx(&c, m)) != 0))
    goto fail;
  if (json_object_get(files, "index.bin") != NULL &&
      (rc = open_ann(&c, m)) != 0)
    goto fail;
  if (m->ann != NULL && m->hist_ts != NULL &&
      (rc = hr__model_request_table(m)) != 0) {
    FAIL(&c, rc, NULL, "out of memory");
    goto fail;
  }
  return m;
fail:
  hr_model_free(m);
  return NULL;
}

void hr_model_free(hr_model_t *m) {
  if (m == NULL)
    return;
  if (m->map != NULL)
    munmap(m->map, m->map_len);
  hr_ann_free(m->ann);
  free(m->by_norm);
  free(m->req_proj);
  free(m->norm_sorted);
  free(m->head);
  free(m->tensors);
  hr_idmap_free(m->items);
  hr_idmap_free(m->users);
  hr__model_attrs_free(m);
  for (size_t f = 0; f < m->n_cfields; f++) {
    free(m->cfield[f]);
    hr_idmap_free(m->cvals[f]);
  }
  json_decref(m->manifest);
  json_decref(m->report);
  free(m->name);
  free(m->kind);
  free(m);
}

/* --------------------------------------------------------- introspection */

const char *hr_model_name(const hr_model_t *m) { return m->name; }
const hr_ann_t *hr_model_ann(const hr_model_t *m) { return m->ann; }
uint64_t hr_model_version(const hr_model_t *m) { return m->version; }
const char *hr_model_kind(const hr_model_t *m) { return m->kind; }
int hr_model_dim(const hr_model_t *m) { return m->dim; }
size_t hr_model_n_items(const hr_model_t *m) { return m->n_items; }
size_t hr_model_n_users(const hr_model_t *m) { return m->n_users; }
uint64_t hr_model_size_bytes(const hr_model_t *m) { return m->size_bytes; }
const json_t *hr_model_manifest(const hr_model_t *m) { return m->manifest; }

int hr_model_tensor(const hr_model_t *m, const char *name, hr_tensor_t *out) {
  for (size_t i = 0; i < m->n_tensors; i++)
    if (strcmp(m->tensors[i].name, name) == 0) {
      *out = m->tensors[i];
      return 0;
    }
  return HR_ENOTFOUND;
}

long hr_model_item_index(const hr_model_t *m, const char *item_id) {
  return hr_idmap_find(m->items, item_id, strlen(item_id));
}

const char *hr_model_item_id(const hr_model_t *m, size_t idx) {
  return hr_idmap_str(m->items, idx);
}

long hr_model_user_index(const hr_model_t *m, const char *user_id) {
  return hr_idmap_find(m->users, user_id, strlen(user_id));
}

const hr_ials_params_t *hr_model_ials_params(const hr_model_t *m) {
  return &m->ials;
}

const int32_t *hr_model_user_history(const hr_model_t *m, long user_idx,
                                     size_t *n) {
  if (user_idx < 0 || (size_t)user_idx >= m->n_users || m->hist_ptr == NULL) {
    *n = 0;
    return NULL;
  }
  *n = (size_t)(m->hist_ptr[user_idx + 1] - m->hist_ptr[user_idx]);
  return m->hist_items + m->hist_ptr[user_idx];
}
