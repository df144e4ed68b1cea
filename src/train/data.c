/* data.c -- interaction readers (MovieLens, CSV, item catalogue) and the
 * per-user histories (see train.h). A malformed line is an error naming
 * path:line, never skipped: silently dropped rows make silently wrong
 * models. */
#include "hr/train.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ data set */

int hr_ctx_never_feature(const char *name) {
  return strcmp(name, "end_emotion") == 0 ||
         strcmp(name, "dominant_emotion") == 0 ||
         strcmp(name, "interaction") == 0;
}

int hr_dataset_init(hr_dataset_t *ds) {
  memset(ds, 0, sizeof(*ds));
  for (int c = 0; c < 64; c++)
    ds->cv_slot[c] = -1;
  ds->users = hr_idmap_new(1024);
  ds->items = hr_idmap_new(1024);
  ds->ts_min = INT64_MAX;
  ds->ts_max = INT64_MIN;
  if (ds->users == NULL || ds->items == NULL) {
    hr_dataset_free(ds);
    return HR_ENOMEM;
  }
  return 0;
}

void hr_dataset_free(hr_dataset_t *ds) {
  hr_idmap_free(ds->users);
  hr_idmap_free(ds->items);
  free(ds->u);
  free(ds->i);
  free(ds->ts);
  free(ds->cv);
  free(ds->attr_header);
  if (ds->attrs != NULL)
    for (size_t k = 0; k < ds->attrs_cap; k++)
      free(ds->attrs[k]);
  free(ds->attrs);
  for (size_t c = 0; c < ds->n_ctx; c++) {
    free(ds->ctx_name[c]);
    hr_idmap_free(ds->ctx_vals[c]);
  }
  for (size_t c = 0; c < ds->n_uattr; c++) {
    free(ds->uattr_name[c]);
    hr_idmap_free(ds->uattr_vals[c]);
  }
  free(ds->uattr);
  memset(ds, 0, sizeof(*ds));
}

int hr_dataset_add(hr_dataset_t *ds, const char *user, size_t ulen,
                   const char *item, size_t ilen, int64_t ts) {
  long u, i;

  if (ds->n == ds->cap) {
    size_t nc = ds->cap ? ds->cap * 2 : 4096;
    int32_t *nu = realloc(ds->u, nc * sizeof(*nu));
    if (nu == NULL)
      return HR_ENOMEM;
    ds->u = nu;
    int32_t *ni = realloc(ds->i, nc * sizeof(*ni));
    if (ni == NULL)
      return HR_ENOMEM;
    ds->i = ni;
    int64_t *nt = realloc(ds->ts, nc * sizeof(*nt));
    if (nt == NULL)
      return HR_ENOMEM;
    ds->ts = nt;
    int32_t *ncv = realloc(ds->cv, nc * HR_DS_CTX * sizeof(*ncv));
    if (ncv == NULL)
      return HR_ENOMEM;
    ds->cv = ncv;
    ds->cap = nc;
  }
  u = hr_idmap_add(ds->users, user, ulen, NULL);
  i = hr_idmap_add(ds->items, item, ilen, NULL);
  if (u < 0 || i < 0 || u > INT32_MAX || i > INT32_MAX)
    return HR_ENOMEM;
  ds->u[ds->n] = (int32_t)u;
  ds->i[ds->n] = (int32_t)i;
  ds->ts[ds->n] = ts;
  for (int c = 0; c < HR_DS_CTX; c++)
    ds->cv[ds->n * HR_DS_CTX + (size_t)c] = -1;
  ds->n++;
  if (ts < ds->ts_min)
    ds->ts_min = ts;
  if (ts > ds->ts_max)
    ds->ts_max = ts;
  return 0;
}

/* ------------------------------------------------------------- helpers */

typedef struct {
  FILE *f;
  const char *path;
  char *line;
  size_t cap;
  size_t lineno;
  int nul; /* rd_next stopped at a line holding a NUL byte */
} reader_t;

static int rd_open(reader_t *r, const char *path, hr_error_t *err) {
  memset(r, 0, sizeof(*r));
  r->path = path;
  r->f = fopen(path, "r");
  if (r->f == NULL)
    return hr_error_set(err, HR_EIO, NULL, "%s: %s", path, strerror(errno));
  return 0;
}

/* Next line without its "\n" / "\r\n"; NULL at EOF (or on a read error
 * or a NUL byte, which ids and values cannot hold: reported by rd_close). */
static char *rd_next(reader_t *r, size_t *len) {
  ssize_t n = getline(&r->line, &r->cap, r->f);
  if (n < 0)
    return NULL;
  r->lineno++;
  if (memchr(r->line, '\0', (size_t)n) != NULL) {
    r->nul = 1;
    return NULL;
  }
  if (n > 0 && r->line[n - 1] == '\n')
    r->line[--n] = '\0';
  if (n > 0 && r->line[n - 1] == '\r')
    r->line[--n] = '\0';
  *len = (size_t)n;
  return r->line;
}

static int rd_close(reader_t *r, int rc, hr_error_t *err) {
  if (rc == 0 && ferror(r->f))
    rc = hr_error_set(err, HR_EIO, NULL, "%s: read error", r->path);
  if (rc == 0 && r->nul)
    rc = hr_error_set(err, HR_EFORMAT, NULL, "%s:%zu: a NUL byte", r->path,
                      r->lineno);
  fclose(r->f);
  free(r->line);
  return rc;
}

#define BAD(r, ...) bad_line((r), err, __VA_ARGS__)

__attribute__((format(printf, 3, 4)))
static int bad_line(reader_t *r, hr_error_t *err, const char *fmt, ...) {
  char msg[120];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  if (r->nul) /* the line a reader found missing held a NUL byte */
    snprintf(msg, sizeof(msg), "a NUL byte");
  return hr_error_set(err, HR_EFORMAT, NULL, "%s:%zu: %s", r->path, r->lineno,
                      msg);
}

static int parse_i64(const char *s, size_t len, int64_t *out) {
  char buf[32], *end;
  long long v;

  if (len == 0 || len >= sizeof(buf))
    return -1;
  memcpy(buf, s, len);
  buf[len] = '\0';
  errno = 0;
  v = strtoll(buf, &end, 10);
  if (*end != '\0' || errno != 0)
    return -1;
  *out = v;
  return 0;
}

static int parse_num(const char *s, size_t len, double *out) {
  char buf[64], *end;

  if (len == 0 || len >= sizeof(buf))
    return -1;
  memcpy(buf, s, len);
  buf[len] = '\0';
  errno = 0;
  *out = strtod(buf, &end);
  return (*end != '\0' || errno != 0 || !isfinite(*out)) ? -1 : 0;
}

/* 1 when a row with this rating is skipped (--min-rating), counted. */
static int below_min(hr_dataset_t *ds, int has_rating, double rating) {
  if (!ds->min_rating_set || !has_rating || rating >= ds->min_rating)
    return 0;
  ds->below_min_rating++;
  return 1;
}

int hr_dataset_before_since(hr_dataset_t *ds, int64_t ts) {
  if (!ds->since_set || ts == 0 || ts >= ds->since)
    return 0;
  ds->before_since++;
  return 1;
}

/* ------------------------------------------- rows seen in two sources */

static uint64_t row_hash(const hr_dataset_t *ds, size_t r) {
  uint64_t h = (uint64_t)(uint32_t)ds->u[r] * 0x9E3779B97F4A7C15ull;
  h ^= (uint64_t)(uint32_t)ds->i[r] + 0x632BE59BD9B4E019ull + (h << 6) +
       (h >> 2);
  h ^= (uint64_t)ds->ts[r] * 0xBF58476D1CE4E5B9ull;
  return h ^ (h >> 31);
}

static int same_row(const hr_dataset_t *ds, size_t a, size_t b) {
  return ds->u[a] == ds->u[b] && ds->i[a] == ds->i[b] && ds->ts[a] == ds->ts[b];
}

int hr_dataset_dedup_sources(hr_dataset_t *ds, const size_t *bounds,
                             size_t n_sources, size_t *dups) {
  size_t cap = 16, w = 0;
  uint64_t *slot; /* row + 1 of a dated row of an earlier source; 0 empty */
  unsigned char *drop;

  for (size_t k = 0; k < n_sources; k++)
    dups[k] = 0;
  if (n_sources < 2 || ds->n == 0)
    return 0;
  while (cap < 2 * ds->n)
    cap *= 2;
  slot = calloc(cap, sizeof(*slot));
  drop = calloc(ds->n, 1);
  if (slot == NULL || drop == NULL) {
    free(slot);
    free(drop);
    return HR_ENOMEM;
  }
  for (size_t k = 0; k < n_sources; k++) {
    for (size_t r = bounds[k]; r < bounds[k + 1] && k > 0; r++) {
      if (ds->ts[r] == 0)
        continue;
      for (size_t s = row_hash(ds, r) & (cap - 1); slot[s] != 0;
           s = (s + 1) & (cap - 1))
        if (same_row(ds, (size_t)slot[s] - 1, r)) {
          drop[r] = 1;
          dups[k]++;
          break;
        }
    }
    for (size_t r = bounds[k]; r < bounds[k + 1] && k + 1 < n_sources; r++) {
      if (ds->ts[r] == 0 || drop[r])
        continue;
      size_t s = row_hash(ds, r) & (cap - 1);
      while (slot[s] != 0 && !same_row(ds, (size_t)slot[s] - 1, r))
        s = (s + 1) & (cap - 1);
      if (slot[s] == 0)
        slot[s] = r + 1;
    }
  }
  for (size_t r = 0; r < ds->n; r++) {
    if (drop[r])
      continue;
    ds->u[w] = ds->u[r];
    ds->i[w] = ds->i[r];
    ds->ts[w] = ds->ts[r];
    memmove(ds->cv + w * HR_DS_CTX, ds->cv + r * HR_DS_CTX,
            HR_DS_CTX * sizeof(*ds->cv));
    w++;
  }
  ds->n = w;
  free(slot);
  free(drop);
  return 0;
}

/* Split at `sep` (one char) or "::" into at most max fields; returns the
 * field count, or max + 1 when there are more. */
typedef struct {
  const char *p;
  size_t len;
} field_t;

static size_t split(const char *s, size_t len, char sep, int dcolon,
                    field_t *f, size_t max) {
  size_t n = 0, start = 0;

  for (size_t i = 0; i <= len; i++) {
    int at_end = i == len;
    int is_sep = !at_end && (dcolon ? (s[i] == ':' && i + 1 < len &&
                                       s[i + 1] == ':')
                                    : s[i] == sep);
    if (at_end || is_sep) {
      if (n == max)
        return max + 1;
      f[n].p = s + start;
      f[n].len = i - start;
      n++;
      if (is_sep && dcolon)
        i++;
      start = i + 1;
    }
  }
  return n;
}

/* ----------------------------------------------------------- MovieLens */

int hr_data_read_movielens(hr_dataset_t *ds, const char *path,
                           hr_error_t *err) {
  reader_t r;
  field_t f[5];
  char *line;
  size_t len;
  int rc = rd_open(&r, path, err);

  if (rc != 0)
    return rc;
  while (rc == 0 && (line = rd_next(&r, &len)) != NULL) {
    int dcolon = strchr(line, '\t') == NULL && strstr(line, "::") != NULL;
    int64_t ts = 0;
    double rating = 0;
    size_t n;

    if (len == 0)
      continue;
    n = split(line, len, '\t', dcolon, f, 4);
    if (n < 2 || n > 4) {
      rc = BAD(&r, "expected `user item [rating [timestamp]]` separated by "
               "TAB or \"::\"");
      break;
    }
    if (f[0].len == 0 || f[1].len == 0) {
      rc = BAD(&r, "empty user or item id");
      break;
    }
    if (!hr_utf8_valid(f[0].p, f[0].len) || !hr_utf8_valid(f[1].p, f[1].len)) {
      rc = BAD(&r, "a user or item id that is not UTF-8");
      break;
    }
    if (n >= 3 && parse_num(f[2].p, f[2].len, &rating) != 0) {
      rc = BAD(&r, "rating \"%.*s\" is not a finite number", (int)f[2].len,
               f[2].p);
      break;
    }
    if (n == 4 && parse_i64(f[3].p, f[3].len, &ts) != 0) {
      rc = BAD(&r, "timestamp \"%.*s\" is not an integer", (int)f[3].len,
               f[3].p);
      break;
    }
    if (below_min(ds, n >= 3, rating) || hr_dataset_before_since(ds, ts))
      continue;
    if ((rc = hr_dataset_add(ds, f[0].p, f[0].len, f[1].p, f[1].len, ts)))
      hr_error_set(err, rc, NULL, "out of memory");
  }
  return rd_close(&r, rc, err);
}

/* ----------------------------------------------------------------- CSV */

#define MAX_COLS 66

int hr_data_read_csv(hr_dataset_t *ds, const char *path, hr_error_t *err) {
  reader_t r;
  field_t f[MAX_COLS];
  int col_user = -1, col_item = -1, col_rating = -1, col_ts = -1;
  int ctx_of[MAX_COLS];
  size_t ncol, len;
  char *line;
  int rc = rd_open(&r, path, err);

  if (rc != 0)
    return rc;
  line = rd_next(&r, &len);
  if (line == NULL)
    return rd_close(&r, hr_error_set(err, HR_EFORMAT, NULL, "%s: empty file, "
                                     "expected a header", path), err);
  ncol = split(line, len, ',', 0, f, MAX_COLS - 1);
  if (ncol > MAX_COLS - 2)
    return rd_close(&r, BAD(&r, "more than %d columns", MAX_COLS - 2), err);
  for (size_t c = 0; c < ncol; c++) {
    const char *p = f[c].p;
    size_t l = f[c].len;
    ctx_of[c] = -1;
    if (l == 7 && memcmp(p, "user_id", 7) == 0 && col_user < 0)
      col_user = (int)c;
    else if (l == 7 && memcmp(p, "item_id", 7) == 0 && col_item < 0)
      col_item = (int)c;
    else if (l == 6 && memcmp(p, "rating", 6) == 0 && col_rating < 0)
      col_rating = (int)c;
    else if (((l == 2 && memcmp(p, "ts", 2) == 0) ||
              (l == 9 && memcmp(p, "timestamp", 9) == 0)) && col_ts < 0)
      col_ts = (int)c;
    else {
      if (l == 0)
        return rd_close(&r, BAD(&r, "empty column name"), err);
      if (ds->n_ctx == 64)
        return rd_close(&r, BAD(&r, "more than 64 context columns"), err);
      ctx_of[c] = (int)ds->n_ctx;
      ds->ctx_name[ds->n_ctx] = strndup(p, l);
      if (ds->ctx_name[ds->n_ctx] != NULL && ds->n_slots < HR_DS_CTX &&
          !hr_ctx_never_feature(ds->ctx_name[ds->n_ctx]))
        ds->cv_slot[ds->n_ctx] = ds->n_slots++;
      ds->ctx_vals[ds->n_ctx] = hr_idmap_new(16);
      if (ds->ctx_name[ds->n_ctx] == NULL || ds->ctx_vals[ds->n_ctx] == NULL)
        return rd_close(&r, hr_error_set(err, HR_ENOMEM, NULL, "out of "
                                         "memory"), err);
      ds->n_ctx++;
    }
  }
  if (col_user < 0 || col_item < 0)
    return rd_close(&r, BAD(&r, "header needs user_id and item_id columns"),
                    err);
  while (rc == 0 && (line = rd_next(&r, &len)) != NULL) {
    int64_t ts = 0;
    double rating = 0;
    size_t n;
    long vid[MAX_COLS];

    if (len == 0)
      continue;
    n = split(line, len, ',', 0, f, ncol);
    if (n != ncol) {
      rc = BAD(&r, "%s fields than the header's %zu", n > ncol ? "more" :
               "fewer", ncol);
      break;
    }
    if (f[col_user].len == 0 || f[col_item].len == 0) {
      rc = BAD(&r, "empty user_id or item_id");
      break;
    }
    if (!hr_utf8_valid(f[col_user].p, f[col_user].len) ||
        !hr_utf8_valid(f[col_item].p, f[col_item].len)) {
      rc = BAD(&r, "a user_id or item_id that is not UTF-8");
      break;
    }
    if (col_rating >= 0 && f[col_rating].len > 0 &&
        parse_num(f[col_rating].p, f[col_rating].len, &rating) != 0) {
      rc = BAD(&r, "rating is not a finite number");
      break;
    }
    if (col_ts >= 0 && f[col_ts].len > 0 &&
        parse_i64(f[col_ts].p, f[col_ts].len, &ts) != 0) {
      rc = BAD(&r, "ts \"%.*s\" is not an integer (unix seconds)",
               (int)f[col_ts].len, f[col_ts].p);
      break;
    }
    if (below_min(ds, col_rating >= 0 && f[col_rating].len > 0, rating) ||
        hr_dataset_before_since(ds, ts))
      continue;
    for (size_t c = 0; c < ncol && rc == 0; c++) {
      vid[c] = -1;
      if (ctx_of[c] >= 0 && f[c].len > 0 &&
          (vid[c] = hr_idmap_add(ds->ctx_vals[ctx_of[c]], f[c].p, f[c].len,
                                 NULL)) < 0)
        rc = hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
    }
    if (rc == 0 && (rc = hr_dataset_add(ds, f[col_user].p, f[col_user].len,
                                        f[col_item].p, f[col_item].len, ts)))
      hr_error_set(err, rc, NULL, "out of memory");
    for (size_t c = 0; c < ncol && rc == 0; c++)
      if (ctx_of[c] >= 0 && ds->cv_slot[ctx_of[c]] >= 0)
        ds->cv[(ds->n - 1) * HR_DS_CTX + (size_t)ds->cv_slot[ctx_of[c]]] =
            (int32_t)vid[c];
  }
  return rd_close(&r, rc, err);
}

/* ------------------------------------------------------- item catalogue */

/* The attribute columns must be what the model loader accepts
 * (docs/model-format.md): names of 1 to HR_MODEL_MAX_ATTR_NAME bytes, unique,
 * at most HR_MODEL_MAX_ATTRS of them. `hdr` is TAB-joined. */
static int check_attr_header(reader_t *r, const char *hdr, size_t *n_cols,
                             hr_error_t *err) {
  size_t n = 0;
  for (const char *p = hdr;; n++) {
    const char *e = strchr(p, '\t');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    int ctl = 0;
    for (size_t i = 0; i < len; i++)
      ctl |= (unsigned char)p[i] < 0x20 || p[i] == 0x7f;
    if (len == 0 || len > HR_MODEL_MAX_ATTR_NAME || ctl)
      return BAD(r, "attribute column %zu: empty, longer than %d bytes or "
                 "with a control character", n + 1, HR_MODEL_MAX_ATTR_NAME);
    for (const char *q = hdr; q < p;) {
      const char *qe = strchr(q, '\t');
      if ((size_t)(qe - q) == len && memcmp(q, p, len) == 0)
        return BAD(r, "attribute \"%.*s\" named twice", (int)len, p);
      q = qe + 1;
    }
    if (e == NULL)
      break;
    p = e + 1;
  }
  if (n + 1 > HR_MODEL_MAX_ATTRS)
    return BAD(r, "%zu attribute columns, at most %d", n + 1,
               HR_MODEL_MAX_ATTRS);
  *n_cols = n + 1;
  return 0;
}

/* A row's attribute fields (TAB-separated, as csv_fields leaves them): no
 * more than the header's, each '|'-separated value at most
 * HR_MODEL_MAX_ATTR_VALUE bytes. */
static int check_attr_row(reader_t *r, const char *p, size_t len,
                          size_t n_cols, hr_error_t *err) {
  size_t fields = len > 0 || n_cols > 0 ? 1 : 0, run = 0;
  for (size_t i = 0; i < len; i++) {
    if (p[i] == '\t' || p[i] == '|') {
      fields += p[i] == '\t';
      run = 0;
    } else if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f) {
      return BAD(r, "a control character in an attribute value");
    } else if (++run > HR_MODEL_MAX_ATTR_VALUE) {
      return BAD(r, "an attribute value longer than %d bytes",
                 HR_MODEL_MAX_ATTR_VALUE);
    }
  }
  if (len > 0 && fields > n_cols)
    return BAD(r, "%zu attribute fields, the header names %zu", fields,
               n_cols);
  return 0;
}

/* Room for item index idx in ds->attrs; 0 or HR_ENOMEM. */
static int attrs_grow(hr_dataset_t *ds, size_t idx) {
  if (idx >= ds->attrs_cap) {
    size_t nc = ds->attrs_cap ? ds->attrs_cap * 2 : 1024;
    while (nc <= idx)
      nc *= 2;
    char **na = realloc(ds->attrs, nc * sizeof(*na));
    if (na == NULL)
      return HR_ENOMEM;
    memset(na + ds->attrs_cap, 0, (nc - ds->attrs_cap) * sizeof(*na));
    ds->attrs = na;
    ds->attrs_cap = nc;
  }
  return 0;
}

/* MovieLens u.item: id|title|release date|video date|url|19 genre flags
 * (the order of u.genre). Becomes the attributes "genre" (the set flags,
 * '|'-joined) and "decade" of the release date ("1990s"); titles are not
 * kept. The first line is already in `line`. */
static const char *const ml_genres[19] = {
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy",
    "Crime", "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror",
    "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western"};

static int read_uitem(hr_dataset_t *ds, reader_t *r, char *line, size_t len,
                      hr_error_t *err) {
  free(ds->attr_header);
  ds->attr_header = strdup("genre\tdecade");
  if (ds->attr_header == NULL)
    return hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
  for (; line != NULL; line = rd_next(r, &len)) {
    field_t f[24];
    char cell[512], dec[8] = "";
    size_t nf, w = 0;
    long idx;
    int64_t year;

    if (len == 0)
      continue;
    nf = split(line, len, '|', 0, f, 24);
    if (nf != 24 || f[0].len == 0)
      return BAD(r, "u.item: expected 24 '|'-separated fields");
    for (size_t k = 0; k < f[0].len; k++)
      if (f[0].p[k] < '0' || f[0].p[k] > '9')
        return BAD(r, "u.item: item id must be a number");
    /* "01-Jan-1995": the year is the last 4 characters */
    if (f[2].len >= 4 && parse_i64(f[2].p + f[2].len - 4, 4, &year) == 0 &&
        year >= 1000 && year <= 9999)
      snprintf(dec, sizeof(dec), "%ds", (int)(year / 10 * 10));
    for (int g = 0; g < 19; g++) {
      const field_t *x = &f[5 + g];
      if (x->len != 1 || (x->p[0] != '0' && x->p[0] != '1'))
        return BAD(r, "u.item: genre flags must be 0 or 1");
      if (x->p[0] == '1')
        w += (size_t)snprintf(cell + w, sizeof(cell) - w, "%s%s",
                              w ? "|" : "", ml_genres[g]);
    }
    snprintf(cell + w, sizeof(cell) - w, "\t%s", dec);
    idx = hr_idmap_add(ds->items, f[0].p, f[0].len, NULL);
    if (idx < 0 || attrs_grow(ds, (size_t)idx) != 0)
      return hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
    free(ds->attrs[idx]);
    if ((ds->attrs[idx] = strdup(cell)) == NULL)
      return hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
  }
  return 0;
}

/* An RFC 4180 line, rewritten in place with its fields TAB-separated: a
 * field that starts with '"' runs to the closing quote ("" is a quote) and
 * may hold commas; a field must end where its quote closes. Fields that
 * span lines and TABs in the input are refused. */
static int csv_fields(reader_t *r, char *line, size_t *len, hr_error_t *err) {
  size_t i = 0, o = 0, n = *len;
  while (i <= n) { /* one field per pass */
    if (i < n && line[i] == '"') {
      for (i++;; i++) {
        if (i >= n)
          return BAD(r, "a quoted field does not end on its line");
        if (line[i] == '"' && i + 1 < n && line[i + 1] == '"')
          i++; /* "" */
        else if (line[i] == '"')
          break;
        if (line[i] == '\t')
          return BAD(r, "a TAB inside a field");
        line[o++] = line[i];
      }
      i++; /* past the closing quote */
      if (i < n && line[i] != ',')
        return BAD(r, "text after a quoted field's closing quote");
    } else {
      for (; i < n && line[i] != ','; i++) {
        if (line[i] == '\t')
          return BAD(r, "a TAB inside a field");
        line[o++] = line[i];
      }
    }
    if (i >= n)
      break;
    line[o++] = '\t'; /* the comma; after a trailing one, an empty field */
    i++;
  }
  line[o] = '\0';
  *len = o;
  return 0;
}

int hr_data_read_items(hr_dataset_t *ds, const char *path, hr_error_t *err) {
  reader_t r;
  field_t f[2];
  char *line;
  size_t len, n_cols = 0;
  int rc = rd_open(&r, path, err);

  if (rc != 0)
    return rc;
  line = rd_next(&r, &len);
  if (line != NULL && memchr(line, '|', len) != NULL &&
      !(len >= 7 && memcmp(line, "item_id", 7) == 0) &&
      !(len >= 9 && memcmp(line, "\"item_id\"", 9) == 0))
    return rd_close(&r, read_uitem(ds, &r, line, len, err), err);
  if (line != NULL && (rc = csv_fields(&r, line, &len, err)) != 0)
    return rd_close(&r, rc, err);
  if (line == NULL || split(line, len, '\t', 0, f, 1) < 1 ||
      f[0].len != 7 || memcmp(f[0].p, "item_id", 7) != 0)
    return rd_close(&r, BAD(&r, "header must start with item_id"), err);
  free(ds->attr_header);
  ds->attr_header = NULL;
  if (len > 8) {
    ds->attr_header = strdup(line + 8);
    if (ds->attr_header == NULL)
      return rd_close(&r, hr_error_set(err, HR_ENOMEM, NULL, "out of memory"),
                      err);
    if ((rc = check_attr_header(&r, ds->attr_header, &n_cols, err)) != 0)
      return rd_close(&r, rc, err);
  }
  while (rc == 0 && (line = rd_next(&r, &len)) != NULL) {
    const char *comma;
    size_t idlen;
    long idx;

    if (len == 0)
      continue;
    if ((rc = csv_fields(&r, line, &len, err)) != 0)
      break;
    comma = memchr(line, '\t', len); /* the end of the id */
    idlen = comma ? (size_t)(comma - line) : len;
    if (idlen == 0) {
      rc = BAD(&r, "empty item_id");
      break;
    }
    if (!hr_utf8_valid(line, len)) {
      rc = BAD(&r, "an item id or attribute that is not UTF-8");
      break;
    }
    idx = hr_idmap_add(ds->items, line, idlen, NULL);
    if (idx < 0) {
      rc = hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
      break;
    }
    if (attrs_grow(ds, (size_t)idx) != 0) {
      rc = hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
      break;
    }
    if ((rc = check_attr_row(&r, comma ? comma + 1 : "",
                             len - idlen - (comma ? 1 : 0), n_cols, err)))
      break;
    free(ds->attrs[idx]);
    ds->attrs[idx] = strdup(comma ? comma + 1 : "");
    if (ds->attrs[idx] == NULL) {
      rc = hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
      break;
    }
  }
  return rd_close(&r, rc, err);
}

/* ------------------------------------------------------------ histories */

typedef struct {
  int64_t ts;
  int32_t item;
  uint32_t seq;
} ev_t;

/* Comparison context: qsort has none, and the trainer is single-threaded
 * here. */
static const hr_idmap_t *cmp_items;
static int64_t *cmp_num; /* numeric value of each item id, or INT64_MIN */

static int cmp_ev(const void *a, const void *b) {
  const ev_t *x = a, *y = b;
  if (x->ts != y->ts)
    return x->ts < y->ts ? -1 : 1;
  if (x->item != y->item) {
    int64_t nx = cmp_num[x->item], ny = cmp_num[y->item];
    if (nx != INT64_MIN && ny != INT64_MIN && nx != ny)
      return nx < ny ? -1 : 1;
    int c = strcmp(hr_idmap_str(cmp_items, (size_t)x->item),
                   hr_idmap_str(cmp_items, (size_t)y->item));
    if (c != 0)
      return c;
  }
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

void hr_csr_free(hr_csr_t *c) {
  free(c->ptr);
  free(c->items);
  free(c->ts);
  free(c->row);
  memset(c, 0, sizeof(*c));
}

int hr_dataset_histories(const hr_dataset_t *ds, hr_csr_t *out) {
  size_t nu = hr_idmap_size(ds->users), ni = hr_idmap_size(ds->items);
  uint64_t *start = calloc(nu + 1, sizeof(*start));
  ev_t *ev = malloc((ds->n ? ds->n : 1) * sizeof(*ev));
  int64_t *num = malloc((ni ? ni : 1) * sizeof(*num));
  uint32_t *mark = calloc(ni ? ni : 1, sizeof(*mark));
  int rc = 0;

  memset(out, 0, sizeof(*out));
  out->ptr = calloc(nu + 1, sizeof(*out->ptr));
  out->items = malloc((ds->n ? ds->n : 1) * sizeof(*out->items));
  out->ts = malloc((ds->n ? ds->n : 1) * sizeof(*out->ts));
  out->row = malloc((ds->n ? ds->n : 1) * sizeof(*out->row));
  if (!start || !ev || !num || !mark || !out->ptr || !out->items ||
      !out->ts || !out->row) {
    rc = HR_ENOMEM;
    goto done;
  }
  out->n_users = nu;
  out->n_items = ni;
  for (size_t k = 0; k < ni; k++) {
    const char *s = hr_idmap_str(ds->items, k);
    int64_t v;
    num[k] = parse_i64(s, strlen(s), &v) == 0 ? v : INT64_MIN;
  }
  /* Bucket by user (stable), then sort each user's events. */
  for (size_t k = 0; k < ds->n; k++)
    start[ds->u[k] + 1]++;
  for (size_t u = 0; u < nu; u++)
    start[u + 1] += start[u];
  {
    uint64_t *fill = calloc(nu + 1, sizeof(*fill));
    if (fill == NULL) {
      rc = HR_ENOMEM;
      goto done;
    }
    memcpy(fill, start, (nu + 1) * sizeof(*fill));
    for (size_t k = 0; k < ds->n; k++) {
      ev_t *e = &ev[fill[ds->u[k]]++];
      e->ts = ds->ts[k];
      e->item = ds->i[k];
      e->seq = (uint32_t)k;
    }
    free(fill);
  }
  cmp_items = ds->items;
  cmp_num = num;
  uint64_t w = 0;
  for (size_t u = 0; u < nu; u++) {
    ev_t *e = ev + start[u];
    size_t n = (size_t)(start[u + 1] - start[u]), keep = 0;
    qsort(e, n, sizeof(*e), cmp_ev);
    /* Keep each item at its latest position: walk newest to oldest,
     * marking with the user's number + 1, then restore the order. */
    for (size_t j = n; j-- > 0;) {
      if (mark[e[j].item] == (uint32_t)u + 1)
        continue;
      mark[e[j].item] = (uint32_t)u + 1;
      out->ts[w + keep] = e[j].ts;
      out->row[w + keep] = e[j].seq;
      out->items[w + keep++] = e[j].item;
    }
    for (size_t a = 0, b = keep; a + 1 < b; a++, b--) {
      int32_t t = out->items[w + a];
      int64_t tt = out->ts[w + a];
      uint32_t tr = out->row[w + a];
      out->items[w + a] = out->items[w + b - 1];
      out->items[w + b - 1] = t;
      out->ts[w + a] = out->ts[w + b - 1];
      out->ts[w + b - 1] = tt;
      out->row[w + a] = out->row[w + b - 1];
      out->row[w + b - 1] = tr;
    }
    w += keep;
    out->ptr[u + 1] = w;
  }
done:
  free(start);
  free(ev);
  free(num);
  free(mark);
  if (rc != 0)
    hr_csr_free(out);
  return rc;
}

/* ------------------------------------------------------ user attributes */

/* Value of column c for user u ("" unknown). */
static int uattr_set(hr_dataset_t *ds, reader_t *r, size_t u, size_t c,
                     const char *p, size_t len, hr_error_t *err) {
  int64_t age;
  long v;
  if (len == 0)
    return 0;
  for (size_t k = 0; k < len; k++)
    if ((unsigned char)p[k] < 0x20 || p[k] == '"')
      return BAD(r, "a control character or quote in a user attribute");
  if (!hr_utf8_valid(p, len))
    return BAD(r, "a user attribute value that is not UTF-8");
  if (len > HR_DS_UATTR_VALUE)
    return BAD(r, "a user attribute value longer than %d bytes",
               HR_DS_UATTR_VALUE);
  if (strcmp(ds->uattr_name[c], "user.age") == 0 &&
      parse_i64(p, len, &age) == 0) {
    p = hr_age_group((long long)age);
    len = strlen(p);
  }
  v = hr_idmap_add(ds->uattr_vals[c], p, len, NULL);
  if (v < 0)
    return hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
  ds->uattr[u * HR_DS_UATTR + c] = (int32_t)v;
  return 0;
}

int hr_data_read_users(hr_dataset_t *ds, const char *path, hr_error_t *err) {
  reader_t r;
  field_t f[HR_DS_UATTR + 2];
  char *line;
  size_t len, nf, nu = hr_idmap_size(ds->users);
  int uuser, rc = rd_open(&r, path, err);

  if (rc != 0)
    return rc;
  if (ds->n_uattr > 0)
    return rd_close(&r, hr_error_set(err, HR_EINVAL, NULL, "%s: user "
                                     "attributes were read already", path),
                    err);
  line = rd_next(&r, &len);
  /* u.user: id|age|gender|occupation|zip, no header (zip dropped: a
   * value per few users says little about taste) */
  uuser = line != NULL && memchr(line, '|', len) != NULL &&
          !(len >= 7 && memcmp(line, "user_id", 7) == 0);
  if (uuser) {
    static const char *const names[] = {"user.age", "user.gender",
                                        "user.occupation"};
    for (size_t c = 0; c < 3; c++)
      ds->uattr_name[c] = strdup(names[c]);
    ds->n_uattr = 3;
  } else {
    if (line == NULL)
      return rd_close(&r, BAD(&r, "empty file"), err);
    nf = split(line, len, ',', 0, f, HR_DS_UATTR + 1);
    if (nf < 2 || nf > HR_DS_UATTR + 1 || f[0].len != 7 ||
        memcmp(f[0].p, "user_id", 7) != 0)
      return rd_close(&r, BAD(&r, "header must be user_id,<attribute>,... "
                              "(at most %d attributes)", HR_DS_UATTR),
                      err);
    for (size_t c = 1; c < nf; c++) {
      if (f[c].len == 0 || f[c].len + 5 > HR_MODEL_MAX_ATTR_NAME ||
          !hr_utf8_valid(f[c].p, f[c].len) || memchr(f[c].p, '"', f[c].len))
        return rd_close(&r, BAD(&r, "user attribute %zu: empty, longer "
                                "than %d bytes, quoted or not UTF-8", c,
                                HR_MODEL_MAX_ATTR_NAME - 5),
                        err);
      for (size_t k = 0; k < f[c].len; k++)
        if ((unsigned char)f[c].p[k] < 0x20)
          return rd_close(&r, BAD(&r, "a control character in user "
                                  "attribute %zu's name", c),
                          err);
      char *nm = malloc(f[c].len + 6);
      if (nm != NULL)
        snprintf(nm, f[c].len + 6, "user.%.*s", (int)f[c].len, f[c].p);
      ds->uattr_name[ds->n_uattr++] = nm;
      for (size_t k = 0; nm != NULL && k + 1 < c; k++)
        if (strcmp(ds->uattr_name[k], nm) == 0)
          return rd_close(&r, BAD(&r, "attribute \"%s\" named twice", nm + 5),
                          err);
    }
    line = rd_next(&r, &len);
  }
  ds->uattr = malloc(sizeof(int32_t) * (nu + 1) * HR_DS_UATTR);
  if (ds->uattr == NULL)
    return rd_close(&r, hr_error_set(err, HR_ENOMEM, NULL, "out of memory"),
                    err);
  for (size_t k = 0; k < (nu + 1) * HR_DS_UATTR; k++)
    ds->uattr[k] = -1;
  ds->uattr_users = nu;
  for (size_t c = 0; c < ds->n_uattr; c++)
    if (ds->uattr_name[c] == NULL ||
        (ds->uattr_vals[c] = hr_idmap_new(64)) == NULL)
      return rd_close(&r, hr_error_set(err, HR_ENOMEM, NULL, "out of memory"),
                      err);
  for (; rc == 0 && line != NULL; line = rd_next(&r, &len)) {
    long u;
    if (len == 0)
      continue;
    nf = split(line, len, uuser ? '|' : ',', 0, f, HR_DS_UATTR + 1);
    if (uuser ? nf != 5 : nf != ds->n_uattr + 1) {
      rc = uuser ? BAD(&r, "u.user: expected 5 '|'-separated fields")
                 : BAD(&r, "%zu fields, the header names %zu", nf,
                       ds->n_uattr + 1);
      break;
    }
    if (f[0].len == 0) {
      rc = BAD(&r, "empty user_id");
      break;
    }
    /* users without interactions teach the prior nothing */
    if ((u = hr_idmap_find(ds->users, f[0].p, f[0].len)) < 0 ||
        (size_t)u >= nu)
      continue;
    for (size_t c = 0; rc == 0 && c < ds->n_uattr; c++)
      rc = uattr_set(ds, &r, (size_t)u, c, f[c + 1].p, f[c + 1].len, err);
  }
  return rd_close(&r, rc, err);
}
