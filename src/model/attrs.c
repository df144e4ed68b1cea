/* attrs.c -- item attributes from items.tsv, and filters over them.
 *
 * items.tsv may carry attribute columns after the id (docs/model-format.md):
 * "index<TAB>item_id<TAB>category<TAB>style" and one row per item. A cell
 * holds zero or more values separated by '|' (a multi-valued attribute such
 * as genres: "Comedy|Drama"). For every column the loader keeps a dictionary
 * of its values and, per value, the ascending list of items that have it (an
 * inverted index), so a filter is a union of posting lists per attribute and
 * an intersection across attributes, computed as a bitmap over the
 * catalogue. */
#include "model_internal.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((format(printf, 4, 5)))
static int bad(hr_error_t *err, const char *where, size_t line,
               const char *fmt, ...) {
  char msg[160];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  if (line > 0)
    return hr_error_set(err, HR_EFORMAT, NULL, "%s: line %zu: %s", where,
                        line, msg);
  return hr_error_set(err, HR_EFORMAT, NULL, "%s: %s", where, msg);
}

/* Whether s[0..len) holds a control character or is not UTF-8 (requests
 * cannot carry either, so such a value could never be matched). */
static int unmatchable(const char *s, size_t len) {
  for (size_t i = 0; i < len; i++)
    if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
      return 1;
  return !hr_utf8_valid(s, len);
}

/* The end of the line starting at p: the next '\n' or '\0' (the id parser
 * has already turned the data rows' newlines into NULs), or `end`. */
static const char *line_end(const char *p, const char *end) {
  while (p < end && *p != '\n' && *p != '\0')
    p++;
  return p;
}

void hr__model_attrs_free(hr_model_t *m) {
  for (size_t c = 0; c < m->n_attrs; c++) {
    free(m->attrs[c].name);
    hr_idmap_free(m->attrs[c].values);
    free(m->attrs[c].ptr);
    free(m->attrs[c].items);
  }
  free(m->attrs);
  m->attrs = NULL;
  m->n_attrs = 0;
}

/* Per-value counters while reading: how many items have the value, the
 * last item counted (a value repeated in one cell counts once), and in
 * the second pass the next free slot of its posting list. */
typedef struct {
  size_t *count;
  uint32_t *last;
  size_t cap;
} tally_t;

static int tally_grow(tally_t *t, size_t need) {
  size_t nc;
  size_t *c;
  uint32_t *l;

  if (need <= t->cap)
    return 0;
  nc = t->cap ? t->cap * 2 : 64;
  while (nc < need)
    nc *= 2;
  c = realloc(t->count, nc * sizeof(*c));
  if (c == NULL)
    return -1;
  t->count = c;
  l = realloc(t->last, nc * sizeof(*l));
  if (l == NULL)
    return -1;
  t->last = l;
  memset(t->count + t->cap, 0, (nc - t->cap) * sizeof(*c));
  memset(t->last + t->cap, 0xff, (nc - t->cap) * sizeof(*l));
  t->cap = nc;
  return 0;
}

/* One pass over the data rows. Pass 0 builds the dictionaries and counts;
 * pass 1 fills the posting lists (rows come in item order, so each list is
 * ascending). */
static int scan_rows(hr_model_t *m, const char *rows, const char *end,
                     tally_t *t, int pass, const char *where,
                     hr_error_t *err) {
  size_t line = 1, item = 0;

  for (const char *p = rows; p < end; item++) {
    const char *e = line_end(p, end), *f;
    size_t col = 0;

    line++;
    /* skip "index<TAB>id" (validated by the id parser) */
    f = memchr(p, '\t', (size_t)(e - p));
    f = f ? memchr(f + 1, '\t', (size_t)(e - f - 1)) : NULL;
    while (f != NULL && f < e) {
      const char *cell = f + 1, *ce = memchr(cell, '\t', (size_t)(e - cell));
      if (ce == NULL)
        ce = e;
      if (col >= m->n_attrs)
        return bad(err, where, line, "more fields than the header's %zu "
                   "attributes", m->n_attrs);
      for (const char *v = cell; v < ce;) {
        const char *ve = memchr(v, '|', (size_t)(ce - v));
        size_t len;
        long id;
        if (ve == NULL)
          ve = ce;
        len = (size_t)(ve - v);
        if (len > HR_MODEL_MAX_ATTR_VALUE)
          return bad(err, where, line, "attribute %s: a value longer than "
                     "%d bytes", m->attrs[col].name, HR_MODEL_MAX_ATTR_VALUE);
        if (pass == 0 && unmatchable(v, len))
          return bad(err, where, line, "attribute %s: a control character "
                     "or a byte that is not UTF-8 in a value",
                     m->attrs[col].name);
        if (len > 0) {
          tally_t *tc = &t[col];
          if (pass == 0) {
            id = hr_idmap_add(m->attrs[col].values, v, len, NULL);
            if (id < 0 || tally_grow(tc, (size_t)id + 1) != 0)
              return hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
          } else {
            id = hr_idmap_find(m->attrs[col].values, v, len);
          }
          if (tc->last[id] != (uint32_t)item) {
            tc->last[id] = (uint32_t)item;
            if (pass == 0)
              tc->count[id]++;
            else
              m->attrs[col].items[tc->count[id]++] = (uint32_t)item;
          }
        }
        v = ve + 1;
      }
      col++;
      f = ce;
    }
    p = e + 1;
  }
  return 0;
}

int hr__model_parse_attrs(hr_model_t *m, const char *text, size_t size,
                          const char *where, hr_error_t *err) {
  const char *end = text + size, *he = line_end(text, end), *p;
  tally_t *t = NULL;
  int rc = 0;

  /* header: "index<TAB>item_id[<TAB>name...]" (checked by the id parser) */
  p = memchr(text, '\t', (size_t)(he - text));
  p = p ? memchr(p + 1, '\t', (size_t)(he - p - 1)) : NULL;
  if (p == NULL || he >= end) { /* no attribute columns: rows have none */
    size_t line = 1;
    for (const char *r = he + 1; r < end; r = line_end(r, end) + 1) {
      const char *e = line_end(r, end), *t;
      line++;
      t = memchr(r, '\t', (size_t)(e - r));
      if (t != NULL && memchr(t + 1, '\t', (size_t)(e - t - 1)) != NULL)
        return bad(err, where, line, "more fields than the header's 0 "
                   "attributes");
    }
    return 0;
  }
  for (const char *q = p; q != NULL && q < he;
       q = memchr(q + 1, '\t', (size_t)(he - q - 1)))
    m->n_attrs++;
  if (m->n_attrs > HR_MODEL_MAX_ATTRS) {
    size_t n = m->n_attrs;
    m->n_attrs = 0;
    return bad(err, where, 1, "%zu attribute columns, at most %d", n,
               HR_MODEL_MAX_ATTRS);
  }
  m->attrs = calloc(m->n_attrs, sizeof(*m->attrs));
  t = calloc(m->n_attrs, sizeof(*t));
  if (m->attrs == NULL || t == NULL) {
    free(t);
    m->n_attrs = 0;
    return hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
  }
  for (size_t c = 0; c < m->n_attrs; c++) {
    const char *n = p + 1, *ne = memchr(n, '\t', (size_t)(he - n));
    if (ne == NULL)
      ne = he;
    if (ne == n || (size_t)(ne - n) > HR_MODEL_MAX_ATTR_NAME ||
        unmatchable(n, (size_t)(ne - n))) {
      rc = bad(err, where, 1, "attribute %zu: empty, longer than %d bytes "
               "or with a control character or non-UTF-8 byte", c + 1,
               HR_MODEL_MAX_ATTR_NAME);
      goto out;
    }
    m->attrs[c].name = strndup(n, (size_t)(ne - n));
    m->attrs[c].values = hr_idmap_new(16);
    if (m->attrs[c].name == NULL || m->attrs[c].values == NULL) {
      rc = hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
      goto out;
    }
    for (size_t d = 0; d < c; d++)
      if (strcmp(m->attrs[d].name, m->attrs[c].name) == 0) {
        rc = bad(err, where, 1, "attribute \"%.64s\" named twice",
                 m->attrs[c].name);
        goto out;
      }
    p = ne;
  }
  if ((rc = scan_rows(m, he + 1, end, t, 0, where, err)) != 0)
    goto out;
  for (size_t c = 0; c < m->n_attrs; c++) {
    size_t nv = hr_idmap_size(m->attrs[c].values), tot = 0;
    m->attrs[c].ptr = malloc(sizeof(size_t) * (nv + 1));
    if (m->attrs[c].ptr == NULL) {
      rc = hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
      goto out;
    }
    for (size_t v = 0; v < nv; v++) {
      m->attrs[c].ptr[v] = tot;
      tot += t[c].count[v];
      t[c].count[v] = m->attrs[c].ptr[v]; /* pass 1: next free slot */
      t[c].last[v] = UINT32_MAX;
    }
    m->attrs[c].ptr[nv] = tot;
    m->attrs[c].items = malloc(sizeof(uint32_t) * (tot ? tot : 1));
    if (m->attrs[c].items == NULL) {
      rc = hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
      goto out;
    }
  }
  rc = scan_rows(m, he + 1, end, t, 1, where, err);
out:
  for (size_t c = 0; c < m->n_attrs; c++) {
    free(t[c].count);
    free(t[c].last);
  }
  free(t);
  if (rc != 0)
    hr__model_attrs_free(m);
  return rc;
}

/* ------------------------------------------------------------ queries */

size_t hr_model_n_attrs(const hr_model_t *m) { return m->n_attrs; }

const char *hr_model_attr_name(const hr_model_t *m, size_t col) {
  return col < m->n_attrs ? m->attrs[col].name : NULL;
}

long hr_model_attr_find(const hr_model_t *m, const char *name) {
  for (size_t c = 0; c < m->n_attrs; c++)
    if (strcmp(m->attrs[c].name, name) == 0)
      return (long)c;
  return -1;
}

const uint32_t *hr_model_attr_items(const hr_model_t *m, size_t col,
                                    const char *value, size_t *n) {
  long v;
  *n = 0;
  if (col >= m->n_attrs)
    return NULL;
  v = hr_idmap_find(m->attrs[col].values, value, strlen(value));
  if (v < 0)
    return NULL;
  *n = m->attrs[col].ptr[v + 1] - m->attrs[col].ptr[v];
  return m->attrs[col].items + m->attrs[col].ptr[v];
}

/* The names of the model's attributes, for an error message. */
static void attr_list(const hr_model_t *m, char *out, size_t cap) {
  size_t w = 0;
  out[0] = '\0';
  for (size_t c = 0; c < m->n_attrs && w + 1 < cap; c++) {
    int r = snprintf(out + w, cap - w, "%s%s", c ? ", " : "",
                     m->attrs[c].name);
    if (r < 0)
      break;
    w += (size_t)r;
  }
}

int hr_model_filter(const hr_model_t *m, const hr_filter_term_t *terms,
                    size_t n_terms, uint64_t *allow, size_t *n_allow,
                    hr_error_t *err) {
  size_t nw = (m->n_items + 63) / 64, cnt = 0, max_values = 0;
  uint64_t *tmp = NULL;
  long *cols, *seen = NULL;

  *n_allow = 0;
  cols = malloc(sizeof(long) * (n_terms ? n_terms : 1));
  if (cols == NULL)
    return hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
  /* Check every name before any work. */
  for (size_t i = 0; i < n_terms; i++) {
    char field[96], names[256];
    cols[i] = hr_model_attr_find(m, terms[i].attr);
    if (cols[i] < 0) {
      snprintf(field, sizeof(field), "filters.%.64s", terms[i].attr);
      attr_list(m, names, sizeof(names));
      free(cols);
      if (m->n_attrs == 0)
        return hr_error_set(err, HR_EBADFIELD, field, "model %s/%" PRIu64
                            " has no item attributes to filter on",
                            m->name, m->version);
      return hr_error_set(err, HR_EBADFIELD, field, "unknown item attribute;"
                          " model %s/%" PRIu64 " has: %s", m->name,
                          m->version, names);
    }
  }
  for (size_t i = 0; i < n_terms; i++)
    max_values = terms[i].n_values > max_values ? terms[i].n_values
                                                : max_values;
  seen = malloc(sizeof(long) * (max_values ? max_values : 1));
  if (seen == NULL || (n_terms > 1 &&
                       (tmp = malloc(sizeof(uint64_t) * (nw ? nw : 1))) ==
                           NULL)) {
    free(seen);
    free(cols);
    return hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
  }
  for (size_t i = 0; i < n_terms; i++) {
    uint64_t *dst = i == 0 ? allow : tmp;
    const hr__attr_col_t *col = &m->attrs[cols[i]];
    size_t n_seen = 0;
    memset(dst, 0, sizeof(uint64_t) * nw);
    for (size_t j = 0; j < terms[i].n_values; j++) {
      const char *v = terms[i].values[j];
      long id = hr_idmap_find(col->values, v, strlen(v)), dup = 0;
      /* A value listed twice is ORed once (a list of one large value
       * repeated would otherwise cost a posting pass per copy). */
      for (size_t e = 0; id >= 0 && e < n_seen && !dup; e++)
        dup = seen[e] == id;
      if (id < 0 || dup)
        continue;
      seen[n_seen++] = id;
      for (size_t r = col->ptr[id]; r < col->ptr[id + 1]; r++)
        dst[col->items[r] >> 6] |= (uint64_t)1 << (col->items[r] & 63);
    }
    if (i > 0)
      for (size_t w = 0; w < nw; w++)
        allow[w] &= tmp[w];
  }
  if (n_terms == 0)
    for (size_t w = 0; w < nw; w++) /* no term: every item */
      allow[w] = w + 1 < nw || m->n_items % 64 == 0
                     ? ~(uint64_t)0
                     : ((uint64_t)1 << (m->n_items % 64)) - 1;
  for (size_t w = 0; w < nw; w++)
    cnt += (size_t)__builtin_popcountll(allow[w]);
  *n_allow = cnt;
  free(seen);
  free(tmp);
  free(cols);
  return 0;
}

const char *hr_age_group(long long age) {
  return age < 18 ? "under_18" : age < 25 ? "18-24" : age < 35 ? "25-34"
       : age < 45 ? "35-44" : age < 50 ? "45-49" : age < 56 ? "50-55"
                                                            : "56+";
}
