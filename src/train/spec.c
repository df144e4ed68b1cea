/* spec.c -- the parts of a version every writer shares (spec.h). */
#include "spec.h"

#include <stdlib.h>
#include <string.h>

int hr__spec_base(hr_model_spec_t *s, hr__spec_ids_t *x,
                  const hr_dataset_t *ds, const hr_csr_t *h, size_t ni,
                  hr_tensor_t *hist) {
  size_t nu = h->n_users;
  memset(x, 0, sizeof(*x));
  x->ids = malloc((ni + 1) * sizeof(*x->ids));
  x->uids = malloc((nu + 1) * sizeof(*x->uids));
  if (x->ids == NULL || x->uids == NULL)
    return HR_ENOMEM;
  for (size_t i = 0; i < ni; i++)
    x->ids[i] = hr_idmap_str(ds->items, i);
  for (size_t u = 0; u < nu; u++)
    x->uids[u] = hr_idmap_str(ds->users, u);
  hist[0] = (hr_tensor_t){"user_hist_ptr", HR_DT_U64, 1, {nu + 1, 1, 1, 1},
                          h->ptr, 0};
  hist[1] = (hr_tensor_t){"user_hist_items", HR_DT_I32, 1,
                          {h->ptr[nu], 1, 1, 1}, h->items, 0};
  s->n_items = ni;
  s->n_users = nu;
  s->item_ids = x->ids;
  s->user_ids = x->uids;
  if (ds->attr_header != NULL && ds->attrs != NULL) {
    /* attrs may be shorter than the catalogue grown by interactions */
    if ((x->attrs = calloc(ni + 1, sizeof(*x->attrs))) == NULL)
      return HR_ENOMEM;
    for (size_t i = 0; i < ni && i < ds->attrs_cap; i++)
      x->attrs[i] = ds->attrs[i];
    s->item_attr_header = ds->attr_header;
    s->item_attrs = x->attrs;
  }
  return 0;
}

void hr__spec_ids_free(hr__spec_ids_t *x) {
  free(x->ids);
  free(x->uids);
  free(x->attrs);
  memset(x, 0, sizeof(*x));
}

int hr__spec_finish(hr_model_spec_t *s, json_t *data, json_t *metrics,
                    json_t *report, int forced) {
  s->data = data;
  s->metrics = metrics;
  s->report = report;
  s->forced = forced;
  return s->params ? 0 : HR_ENOMEM;
}

int hr__spec_publish(hr_model_spec_t *s, hr__spec_ids_t *x, int rc,
                     const char *slot, const char *dir, char *path,
                     size_t cap, hr_error_t *err) {
  if (rc != 0)
    rc = hr_error_set(err, rc, NULL, "out of memory");
  else if (slot != NULL)
    rc = hr_model_write(slot, s, path, cap, err);
  else
    rc = hr_model_write_files(dir, s, "select", 1, err);
  hr__spec_ids_free(x);
  json_decref(s->params);
  json_decref(s->context_prior);
  return rc;
}
