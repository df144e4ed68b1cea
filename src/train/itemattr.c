/* itemattr.c -- item attributes as tokens for the item tower (train.h):
 * every (column, value) pair of the data set's attribute table is a token,
 * and an item's attribute vector is the mean of its tokens' vectors. */
#include "hr/train.h"

#include <stdlib.h>
#include <string.h>

void hr_item_tokens_free(hr_item_tokens_t *t) {
  free(t->ptr);
  free(t->tok);
  free(t->w);
  memset(t, 0, sizeof(*t));
}

int hr_item_tokens(const hr_dataset_t *ds, size_t n_items,
                   hr_item_tokens_t *out) {
  hr_idmap_t *voc = NULL;
  size_t cap = 1024, n = 0;
  char key[600];

  memset(out, 0, sizeof(*out));
  out->n_items = n_items;
  out->ptr = calloc(n_items + 1, sizeof(uint64_t));
  out->tok = malloc(cap * sizeof(int32_t));
  voc = hr_idmap_new(256);
  if (!out->ptr || !out->tok || !voc)
    goto oom;
  for (size_t i = 0; i < n_items; i++) {
    const char *row = i < ds->attrs_cap && ds->attrs ? ds->attrs[i] : NULL;
    size_t first = n;
    int col = 0;
    /* cells are TAB-separated, values within a cell '|'-separated */
    for (const char *p = row; p != NULL && *p;) {
      size_t len = strcspn(p, "|\t");
      if (len > 0 && len < 512) {
        int kl = snprintf(key, sizeof(key), "%d=%.*s", col, (int)len, p);
        long t = hr_idmap_add(voc, key, (size_t)kl, NULL);
        if (t < 0)
          goto oom;
        if (n == cap) {
          int32_t *nt = realloc(out->tok, 2 * cap * sizeof(int32_t));
          if (nt == NULL)
            goto oom;
          out->tok = nt;
          cap *= 2;
        }
        size_t q = first; /* a value repeated in a cell counts once */
        while (q < n && out->tok[q] != (int32_t)t)
          q++;
        if (q == n)
          out->tok[n++] = (int32_t)t;
      }
      p += len;
      if (*p == '\t')
        col++;
      if (*p)
        p++;
    }
    out->ptr[i + 1] = n;
  }
  out->w = malloc((n + 1) * sizeof(float));
  if (out->w == NULL)
    goto oom;
  for (size_t i = 0; i < n_items; i++)
    for (uint64_t k = out->ptr[i]; k < out->ptr[i + 1]; k++)
      out->w[k] = 1.0f / (float)(out->ptr[i + 1] - out->ptr[i]);
  out->n_tokens = hr_idmap_size(voc);
  hr_idmap_free(voc);
  return 0;
oom:
  hr_idmap_free(voc);
  hr_item_tokens_free(out);
  return HR_ENOMEM;
}

int hr_item_tokens_project(const hr_item_tokens_t *t, const hr_csr_t *h,
                           const float *Y, size_t f, float shrink,
                           float *rows) {
  size_t ni = t->n_items, nt = t->n_tokens;
  unsigned char *seen = calloc(ni + 1, 1);
  float *sum = calloc(nt * f + 1, sizeof(float));
  double *cnt = calloc(nt + 1, sizeof(double));
  if (seen == NULL || sum == NULL || cnt == NULL) {
    free(seen);
    free(sum);
    free(cnt);
    return HR_ENOMEM;
  }
  for (uint64_t k = 0; k < h->ptr[h->n_users]; k++)
    if ((size_t)h->items[k] < ni)
      seen[h->items[k]] = 1;
  /* each token's factor: the shrunk mean over the warm items carrying it */
  for (size_t i = 0; i < ni; i++)
    if (seen[i])
      for (uint64_t k = t->ptr[i]; k < t->ptr[i + 1]; k++) {
        size_t tk = (size_t)t->tok[k];
        cnt[tk] += 1;
        for (size_t c = 0; c < f; c++)
          sum[tk * f + c] += Y[i * f + c];
      }
  for (size_t tk = 0; tk < nt; tk++)
    for (size_t c = 0; c < f; c++)
      sum[tk * f + c] /= (float)(cnt[tk] + shrink);
  memcpy(rows, Y, sizeof(float) * ni * f);
  for (size_t i = 0; i < ni; i++) {
    if (seen[i] || t->ptr[i + 1] == t->ptr[i])
      continue;
    float *r = rows + i * f;
    memset(r, 0, sizeof(float) * f);
    for (uint64_t k = t->ptr[i]; k < t->ptr[i + 1]; k++)
      for (size_t c = 0; c < f; c++)
        r[c] += t->w[k] * sum[(size_t)t->tok[k] * f + c];
  }
  free(seen);
  free(sum);
  free(cnt);
  return 0;
}
