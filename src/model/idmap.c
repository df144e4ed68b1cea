/* idmap.c -- string -> dense index map (see model.h, "id map").
 *
 * Strings live back to back in one buffer (32-bit offsets, not pointers,
 * so the buffer may grow; at most 4 GiB of ids); slots hold index+1 (0 =
 * empty) and the probe is linear over a power-of-two table kept at most
 * half full. No hash is stored per entry (a served model's map is 8 bytes
 * per id smaller): a probe compares lengths (from the offsets) and bytes,
 * and growing rehashes the strings. */
#include "hr/model.h"

#include <stdlib.h>
#include <string.h>

struct hr_idmap {
  char *buf;          /* NUL-terminated strings back to back */
  size_t buf_len, buf_cap;
  uint32_t *off;      /* off[i]: start of string i in buf */
  size_t n, cap;      /* entries, capacity of off */
  uint32_t *slot;     /* index + 1, 0 = empty */
  size_t mask;        /* slot table size - 1 */
};

static uint32_t fnv1a(const char *s, size_t len) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < len; i++) {
    h ^= (unsigned char)s[i];
    h *= 16777619u;
  }
  return h;
}

hr_idmap_t *hr_idmap_new(size_t cap_hint) {
  hr_idmap_t *m = calloc(1, sizeof(*m));
  size_t t = 16;

  if (m == NULL)
    return NULL;
  while (t < cap_hint * 2)
    t <<= 1;
  m->slot = calloc(t, sizeof(*m->slot));
  m->mask = t - 1;
  if (m->slot == NULL) {
    free(m);
    return NULL;
  }
  return m;
}

void hr_idmap_free(hr_idmap_t *m) {
  if (m == NULL)
    return;
  free(m->buf);
  free(m->off);
  free(m->slot);
  free(m);
}

size_t hr_idmap_size(const hr_idmap_t *m) { return m->n; }

const char *hr_idmap_str(const hr_idmap_t *m, size_t idx) {
  return idx < m->n ? m->buf + m->off[idx] : NULL;
}

/* Entry v's length: entries are back to back, each with its NUL (an id may
 * hold NUL bytes itself: composite keys do). */
static size_t entry_len(const hr_idmap_t *m, size_t v) {
  size_t end = v + 1 < m->n ? m->off[v + 1] : m->buf_len;
  return end - m->off[v] - 1;
}

static long probe(const hr_idmap_t *m, const char *s, size_t len, uint32_t h,
                  size_t *where) {
  size_t i = h & m->mask;

  for (;;) {
    uint32_t v = m->slot[i];
    if (v == 0) {
      *where = i;
      return -1;
    }
    v--;
    if (entry_len(m, v) == len && memcmp(m->buf + m->off[v], s, len) == 0)
      return (long)v;
    i = (i + 1) & m->mask;
  }
}

long hr_idmap_find(const hr_idmap_t *m, const char *s, size_t len) {
  size_t where;
  return probe(m, s, len, fnv1a(s, len), &where);
}

static int grow_slots(hr_idmap_t *m) {
  size_t t = (m->mask + 1) * 2;
  uint32_t *ns = calloc(t, sizeof(*ns));

  if (ns == NULL)
    return HR_ENOMEM;
  for (size_t v = 0; v < m->n; v++) {
    size_t i = fnv1a(m->buf + m->off[v], entry_len(m, v)) & (t - 1);
    while (ns[i] != 0)
      i = (i + 1) & (t - 1);
    ns[i] = (uint32_t)(v + 1);
  }
  free(m->slot);
  m->slot = ns;
  m->mask = t - 1;
  return 0;
}

long hr_idmap_add(hr_idmap_t *m, const char *s, size_t len, int *added) {
  uint32_t h = fnv1a(s, len);
  size_t where;
  long found = probe(m, s, len, h, &where);

  if (added != NULL)
    *added = 0;
  if (found >= 0)
    return found;
  if (m->n >= UINT32_MAX - 1 || m->buf_len + len + 1 > UINT32_MAX)
    return HR_ENOMEM;
  if (m->n == m->cap) {
    size_t nc = m->cap ? m->cap * 2 : 64;
    uint32_t *no = realloc(m->off, nc * sizeof(*no));
    if (no == NULL)
      return HR_ENOMEM;
    m->off = no;
    m->cap = nc;
  }
  if (m->buf_len + len + 1 > m->buf_cap) {
    size_t nc = m->buf_cap ? m->buf_cap : 1024;
    while (nc < m->buf_len + len + 1)
      nc *= 2;
    char *nb = realloc(m->buf, nc);
    if (nb == NULL)
      return HR_ENOMEM;
    m->buf = nb;
    m->buf_cap = nc;
  }
  memcpy(m->buf + m->buf_len, s, len);
  m->buf[m->buf_len + len] = '\0';
  m->off[m->n] = (uint32_t)m->buf_len;
  m->buf_len += len + 1;
  m->slot[where] = (uint32_t)(m->n + 1);
  m->n++;
  if (added != NULL)
    *added = 1;
  if (m->n * 2 > m->mask + 1 && grow_slots(m) != 0) {
    /* Roll the entry back: the table never goes over half full. */
    m->n--;
    m->buf_len -= len + 1;
    m->slot[where] = 0;
    return HR_ENOMEM;
  }
  return (long)(m->n - 1);
}
