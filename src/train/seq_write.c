/* seq_write.c -- a trained sequential model as a version directory (kind
 * "seq", docs/model-format.md). The flat parameter vector is stored in two
 * tensors: item_emb (its first n_items x d floats, which the ANN index and
 * the scorer read like any other kind's item vectors) and seq_rest (the
 * transformer after it, bound back by hr_seq_bind_split). */
#include "hr/train.h"
#include "spec.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

/* [v_i | y_i] rows: the item table of a model with a long-term part. */
void hr_seq_concat_items(const hr_seq_fit_t *fit, const hr_ials_t *lt,
                         const float *lt_rows, float *cat) {
  size_t d = (size_t)fit->width, f = (size_t)lt->dim;
  const float *Y = lt_rows ? lt_rows : lt->Y;
  for (size_t i = 0; i < (size_t)fit->dims.n_items; i++) {
    memcpy(cat + i * (d + f), fit->items + i * d, sizeof(float) * d);
    memcpy(cat + i * (d + f) + d, Y + i * f, sizeof(float) * f);
  }
}

typedef struct {
  hr_model_spec_t s;
  hr_tensor_t t[12];
  const char **ids, **uids, **attrs;
  float *prior, *cat, *rest;
} seq_spec_t;

static void spec_free(seq_spec_t *x) {
  free(x->ids);
  free(x->uids);
  free(x->attrs);
  free(x->prior);
  free(x->cat);
  free(x->rest);
  json_decref(x->s.params);
  json_decref(x->s.context_prior);
}

static int spec_make(seq_spec_t *x, const hr_dataset_t *ds, const hr_csr_t *h,
                     const hr_seq_fit_t *f, const hr_ials_t *lt,
                     const hr_seq_opts_t *o, json_t *data, json_t *metrics) {
  const hr_seq_dims_t *dm = &f->dims;
  size_t ni = (size_t)dm->n_items, nu = h->n_users, nt;
  uint64_t d = (uint64_t)f->width, fl = lt ? (uint64_t)lt->dim : 0;
  /* each member's network after its item table, back to back */
  size_t rest = hr_seq_param_count(dm) - ni * (size_t)dm->d;
  const float *rest_at = f->m[0].w + ni * (size_t)dm->d;

  memset(x, 0, sizeof(*x));
  if (ni != h->n_items)
    return HR_EINVAL; /* the callers checked the width (too_wide) */
  x->ids = malloc((ni + 1) * sizeof(*x->ids));
  x->uids = malloc((nu + 1) * sizeof(*x->uids));
  x->prior = malloc((ni + 1) * sizeof(*x->prior));
  if (!x->ids || !x->uids || !x->prior)
    return HR_ENOMEM;
  for (size_t i = 0; i < ni; i++)
    x->ids[i] = hr_idmap_str(ds->items, i);
  for (size_t u = 0; u < nu; u++)
    x->uids[u] = hr_idmap_str(ds->users, u);
  hr__pop_prior(h->ptr, h->items, nu, ni, o->prior, x->prior);
  if (lt != NULL) { /* item rows [v_i | y_i] */
    if (lt->n_items != ni || lt->n_users != nu)
      return HR_EINVAL;
    x->cat = malloc(sizeof(float) * ni * (size_t)(d + fl) + 1);
    if (x->cat == NULL)
      return HR_ENOMEM;
    float *rows = NULL; /* new items: their long-term rows from tokens */
    if (o->tokens != NULL && o->tokens->n_tokens > 0) {
      if ((rows = malloc(sizeof(float) * ni * (size_t)fl + 1)) == NULL ||
          hr_item_tokens_project(o->tokens, h, lt->Y, (size_t)fl,
                                 HR_LT_TOKEN_SHRINK, rows) != 0) {
        free(rows);
        return HR_ENOMEM;
      }
    }
    hr_seq_concat_items(f, lt, rows, x->cat);
    free(rows);
  }
  if (f->members > 1) {
    if ((x->rest = malloc(sizeof(float) * rest * (size_t)f->members)) ==
        NULL)
      return HR_ENOMEM;
    for (int k = 0; k < f->members; k++)
      memcpy(x->rest + (size_t)k * rest, f->m[k].w + ni * (size_t)dm->d,
             sizeof(float) * rest);
    rest_at = x->rest;
  }
  x->t[0] = (hr_tensor_t){"item_emb", HR_DT_F32, 2, {ni, d + fl, 1, 1},
                          lt ? x->cat : f->items, 0};
  x->t[1] = (hr_tensor_t){"seq_rest", HR_DT_F32, 1,
                          {rest * (size_t)f->members, 1, 1, 1}, rest_at, 0};
  x->t[2] = (hr_tensor_t){"item_prior", HR_DT_F32, 1, {ni, 1, 1, 1},
                          x->prior, 0};
  x->t[3] = (hr_tensor_t){"user_hist_ptr", HR_DT_U64, 1, {nu + 1, 1, 1, 1},
                          h->ptr, 0};
  x->t[4] = (hr_tensor_t){"user_hist_items", HR_DT_I32, 1,
                          {h->ptr[nu], 1, 1, 1}, h->items, 0};
  x->t[5] = (hr_tensor_t){"user_hist_ts", HR_DT_I64, 1,
                          {h->ptr[nu], 1, 1, 1}, h->ts, 0};
  nt = 6;
  if (lt != NULL) {
    x->t[nt++] = (hr_tensor_t){"lt_item", HR_DT_F32, 2, {ni, fl, 1, 1}, lt->Y,
                               0};
    x->t[nt++] = (hr_tensor_t){"yty", HR_DT_F32, 2, {fl, fl, 1, 1}, lt->yty,
                               0};
    x->t[nt++] = (hr_tensor_t){"user_emb", HR_DT_F32, 2, {nu, fl, 1, 1},
                               lt->X, 0};
  }
  x->s.kind = "seq";
  x->s.ann = o->index ? &o->ann : NULL;
  x->s.dim = f->width + (int)fl;
  x->s.n_items = ni;
  x->s.n_users = nu;
  x->s.item_ids = x->ids;
  x->s.user_ids = x->uids;
  if (ds->attr_header != NULL && ds->attrs != NULL) {
    x->attrs = calloc(ni + 1, sizeof(*x->attrs));
    if (x->attrs == NULL)
      return HR_ENOMEM;
    for (size_t i = 0; i < ni && i < ds->attrs_cap; i++)
      x->attrs[i] = ds->attrs[i];
    x->s.item_attr_header = ds->attr_header;
    x->s.item_attrs = x->attrs;
  }
  x->s.tensors = x->t;
  x->s.n_tensors = nt;
  if ((x->s.context_prior = hr_ctx_prior_manifest(o->ctx_prior, ds,
                                                  x->t + nt))) {
    x->s.n_tensors = nt + 2;
    /* context features: a vector per row of the prior */
    if (f->ctx != NULL && f->n_ctx == o->ctx_prior->n_values)
      x->t[x->s.n_tensors++] = (hr_tensor_t){
          "seq_ctx", HR_DT_F32, 2, {f->n_ctx, d, 1, 1}, f->ctx, 0};
  }
  x->s.params = json_pack(
      "{si si si si si so so so so so si sI so}", "len", dm->L, "blocks",
      dm->blocks, "ffn", dm->ffn, "gaps", dm->n_gap, "epochs", o->epochs,
      "lr", hr__jfloat(o->lr), "wd", hr__jfloat(o->weight_decay), "dropout",
      hr__jfloat(o->dropout), "block_dropout", hr__jfloat(o->block_dropout),
      "prior", hr__jfloat(o->prior), "batch", o->batch, "seed",
      (json_int_t)o->seed, "train_loss", json_real(f->loss));
  if (x->s.params != NULL && f->members > 1)
    json_object_set_new(x->s.params, "members", json_integer(f->members));
  if (x->s.params != NULL && dm->enc != HR_SEQ_TRANSFORMER)
    json_object_set_new(x->s.params, "encoder",
                        json_string(hr_seq_enc_name(dm->enc)));
  if (x->s.params != NULL && dm->enc == HR_SEQ_CNN) {
    json_object_set_new(x->s.params, "window", json_integer(dm->win));
    json_object_set_new(x->s.params, "filters_h", json_integer(dm->nh));
    json_object_set_new(x->s.params, "filters_v", json_integer(dm->nv));
  }
  if (x->s.params != NULL && lt != NULL) {
    const hr_ials_params_t *ip = &o->lt_opts.p;
    json_object_set_new(
        x->s.params, "long_term",
        json_pack("{si so so so so so si}", "factors", lt->dim, "weight",
                  hr__jfloat(o->long_term), "alpha", hr__jfloat(ip->alpha),
                  "reg", hr__jfloat(ip->reg), "decay", hr__jfloat(ip->decay),
                  "floor", hr__jfloat(ip->floor), "cap", ip->cap));
  }
  if (x->s.params != NULL && x->s.context_prior != NULL && f->ctx != NULL &&
      f->n_ctx == o->ctx_prior->n_values)
    json_object_set_new(x->s.params, "context_features", json_true());
  return hr__spec_finish(&x->s, data, metrics, o->selection, o->forced);
}

/* A server loads models up to HR_MODEL_MAX_DIM wide. */
static int too_wide(const hr_seq_fit_t *f, const hr_ials_t *lt,
                    hr_error_t *err) {
  int w = f->width + (lt ? lt->dim : 0);
  if (w <= HR_MODEL_MAX_DIM)
    return 0;
  return hr_error_set(err, HR_EINVAL, NULL, "the model is %d wide (%d "
                      "networks x %d%s), over %d, the widest a server loads",
                      w, f->members, f->dims.d,
                      lt ? " + the long-term factors" : "", HR_MODEL_MAX_DIM);
}

int hr_seq_write(const char *slot_dir, const hr_dataset_t *ds,
                 const hr_csr_t *h, const hr_seq_fit_t *f,
                 const hr_ials_t *lt, const hr_seq_opts_t *o, json_t *data,
                 json_t *metrics, char *path_out, size_t path_cap,
                 hr_error_t *err) {
  seq_spec_t x;
  int rc;

  if ((rc = too_wide(f, lt, err)) != 0)
    return rc;
  rc = spec_make(&x, ds, h, f, lt, o, data, metrics);

  if (rc != 0)
    rc = hr_error_set(err, rc, NULL, "cannot describe the model (%s)",
                      hr_strerror(rc));
  else
    rc = hr_model_write(slot_dir, &x.s, path_out, path_cap, err);
  spec_free(&x);
  return rc;
}

int hr_seq_write_files(const char *dir, const hr_dataset_t *ds,
                       const hr_csr_t *h, const hr_seq_fit_t *f,
                       const hr_ials_t *lt, const hr_seq_opts_t *o,
                       const char *name, uint64_t version, hr_error_t *err) {
  seq_spec_t x;
  int rc;

  if ((rc = too_wide(f, lt, err)) != 0)
    return rc;
  rc = spec_make(&x, ds, h, f, lt, o, NULL, NULL);

  if (rc != 0)
    rc = hr_error_set(err, rc, NULL, "cannot describe the model (%s)",
                      hr_strerror(rc));
  else
    rc = hr_model_write_files(dir, &x.s, name, version, err);
  spec_free(&x);
  return rc;
}
