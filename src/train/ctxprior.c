/* ctxprior.c -- the context prior (train.h): log popularity and, per
 * context value, its naive-Bayes lift over the items, for users the model
 * knows nothing about (docs/model-format.md, "context_prior"). */
#include "hr/train.h"
#include "hr/api.h"
#include "hr/ctxstore.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Every context slot the trainer keeps can arrive in a request, even when
 * none is a named field (context.extra), and every prior field it writes
 * can be loaded. */
_Static_assert(HR_DS_CTX <= HR_API_MAX_CTX_EXTRA,
               "a context slot a request cannot carry");
_Static_assert(HR_PRIOR_FIELDS <= HR_MODEL_MAX_CFIELDS,
               "a prior the model loader refuses");

void hr_ctx_prior_free(hr_ctx_prior_t *p) {
  free(p->logpop);
  free(p->lift);
  memset(p, 0, sizeof(*p));
}

int hr_ctx_prior_fit(const hr_dataset_t *ds, size_t n_items,
                     const unsigned char *use, float m, hr_ctx_prior_t *out) {
  size_t ni = n_items;
  double *cnt = NULL, *nv = NULL, N = 0;

  memset(out, 0, sizeof(*out));
  out->n_items = ni;
  out->m = m;
  for (size_t c = 0; c < ds->n_ctx; c++) {
    const hr_idmap_t *vm = ds->ctx_vals[c];
    int ok = ds->cv_slot[c] >= 0 && hr_idmap_size(vm) > 0 &&
             hr_idmap_size(vm) <= 100000 &&
             strlen(ds->ctx_name[c]) <= HR_MODEL_MAX_ATTR_NAME;
    for (size_t v = 0; ok && v < hr_idmap_size(vm); v++)
      ok = strlen(hr_idmap_str(vm, v)) <= 64; /* HR_API_MAX_CTX_VALUE */
    if (!ok)
      continue;
    out->field[out->n_fields] = ds->ctx_name[c];
    out->col[out->n_fields] = c;
    out->slot[out->n_fields] = (size_t)ds->cv_slot[c];
    out->off[out->n_fields] = out->n_values;
    out->n_values += hr_idmap_size(ds->ctx_vals[c]);
    out->n_fields++;
  }
  for (size_t c = 0; c < ds->n_uattr && ds->uattr != NULL; c++) {
    size_t nv = hr_idmap_size(ds->uattr_vals[c]);
    if (nv == 0 || nv > 1000) /* a value per few users: no group to learn */
      continue;
    out->field[out->n_fields] = ds->uattr_name[c];
    out->user[out->n_fields] = 1;
    out->col[out->n_fields] = c;
    out->off[out->n_fields] = out->n_values;
    out->n_values += nv;
    out->n_fields++;
  }
  out->off[out->n_fields] = out->n_values;
  out->logpop = calloc(ni + 1, sizeof(float));
  if (out->logpop == NULL)
    return HR_ENOMEM;
  if (out->n_fields > 0) {
    out->lift = calloc(out->n_values * ni + 1, sizeof(float));
    cnt = calloc(out->n_values * ni + 1, sizeof(double));
    nv = calloc(out->n_values + 1, sizeof(double));
    if (!out->lift || !cnt || !nv) {
      free(cnt);
      free(nv);
      hr_ctx_prior_free(out);
      return HR_ENOMEM;
    }
  }
  double *pop = calloc(ni + 1, sizeof(double));
  if (pop == NULL) {
    free(cnt);
    free(nv);
    hr_ctx_prior_free(out);
    return HR_ENOMEM;
  }
  for (size_t r = 0; r < ds->n; r++) {
    if ((use && !use[r]) || (size_t)ds->i[r] >= ni)
      continue;
    pop[ds->i[r]] += 1;
    N += 1;
    for (size_t f = 0; f < out->n_fields; f++) {
      size_t u = (size_t)ds->u[r];
      int32_t v = !out->user[f] ? ds->cv[r * HR_DS_CTX + out->slot[f]]
                  : u < ds->uattr_users
                      ? ds->uattr[u * HR_DS_UATTR + out->col[f]]
                      : -1;
      if (v < 0)
        continue;
      size_t row = out->off[f] + (size_t)v;
      cnt[row * ni + (size_t)ds->i[r]] += 1;
      nv[row] += 1;
    }
  }
  for (size_t i = 0; i < ni; i++) {
    double p = (pop[i] + 1) / (N + (double)ni);
    out->logpop[i] = (float)log(p);
    for (size_t v = 0; v < out->n_values; v++) {
      double pc = (cnt[v * ni + i] + m * p) / (nv[v] + m);
      out->lift[v * ni + i] = (float)(log(pc) - log(p));
    }
  }
  free(pop);
  free(cnt);
  free(nv);
  return 0;
}

int hr_ctx_name_served(const char *name) {
  for (int k = 0; k < HR_CTX_FIELDS; k++)
    if (strcmp(name, hr_ctx_field_names[k]) == 0)
      return 1;
  return hr_api_ctx_extra_name(name); /* context.extra */
}

int hr_ctx_prior_served(const hr_ctx_prior_t *p, size_t f) {
  return p->user[f] || hr_ctx_name_served(p->field[f]); /* user_attrs */
}

void hr_ctx_prior_rows(const hr_ctx_prior_t *p, const hr_dataset_t *ds,
                       size_t r, int32_t *out) {
  for (size_t f = 0; f < p->n_fields; f++) {
    int32_t v = -1;
    if (p->user[f]) {
      size_t u = (size_t)ds->u[r];
      if (ds->uattr != NULL && u < ds->uattr_users)
        v = ds->uattr[u * HR_DS_UATTR + p->col[f]];
    } else if (hr_ctx_prior_served(p, f) && ds->cv != NULL)
      v = ds->cv[r * HR_DS_CTX + p->slot[f]];
    out[f] = v < 0 ? -1 : (int32_t)(p->off[f] + (size_t)v);
  }
}

int hr_ctx_prior_history_rows(const hr_ctx_prior_t *p, const hr_dataset_t *ds,
                              const hr_csr_t *h, int32_t **rows) {
  size_t n = (size_t)h->ptr[h->n_users], F = p->n_fields;
  *rows = malloc(sizeof(int32_t) * (n * F + 1));
  if (*rows == NULL)
    return HR_ENOMEM;
  for (size_t k = 0; k < n; k++)
    hr_ctx_prior_rows(p, ds, h->row[k], *rows + k * F);
  return 0;
}

json_t *hr_ctx_prior_manifest(const hr_ctx_prior_t *p, const hr_dataset_t *ds,
                              hr_tensor_t *t) {
  json_t *fields, *o;
  if (p == NULL || p->n_fields == 0)
    return NULL;
  fields = json_array();
  for (size_t f = 0; f < p->n_fields; f++) {
    json_t *vals = json_array();
    const hr_idmap_t *vm = p->user[f] ? ds->uattr_vals[p->col[f]]
                                      : ds->ctx_vals[p->col[f]];
    for (size_t v = 0; v < hr_idmap_size(vm); v++)
      if (json_array_append_new(vals, json_string(hr_idmap_str(vm, v)))) {
        /* not UTF-8: rows would no longer line up with values */
        json_decref(vals);
        json_decref(fields);
        return NULL;
      }
    json_t *fo = json_pack("{s:s,s:o}", "name", p->field[f], "values", vals);
    if (fo == NULL || json_array_append_new(fields, fo) != 0) {
      /* a name that is not UTF-8: the rows of ctx_lift would no longer
       * line up with the fields, so no prior at all */
      json_decref(fields);
      return NULL;
    }
  }
  o = json_pack("{s:f,s:o}", "smoothing", (double)p->m, "fields", fields);
  t[0] = (hr_tensor_t){"pop_log", HR_DT_F32, 1, {p->n_items, 1, 1, 1},
                       p->logpop, 0};
  t[1] = (hr_tensor_t){"ctx_lift", HR_DT_F32, 2,
                       {p->n_values, p->n_items, 1, 1}, p->lift, 0};
  return o;
}
