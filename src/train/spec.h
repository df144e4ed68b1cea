/* spec.h -- what every kind's writer puts in a version the same way (not
 * an API; src/train only): the id tables, the catalogue's attributes and
 * the users' training histories. */
#ifndef HR_TRAIN_SPEC_H
#define HR_TRAIN_SPEC_H

#include "hr/train.h"

typedef struct {
  const char **ids, **uids, **attrs;
} hr__spec_ids_t;

/** s's item and user ids and item attributes (from ds, ni items), and the
 *  history tensors user_hist_ptr / user_hist_items of h into hist[0..1].
 *  0 or HR_ENOMEM; release x with hr__spec_ids_free either way. */
int hr__spec_base(hr_model_spec_t *s, hr__spec_ids_t *x,
                  const hr_dataset_t *ds, const hr_csr_t *h, size_t ni,
                  hr_tensor_t *hist);
void hr__spec_ids_free(hr__spec_ids_t *x);
/** The manifest parts every writer sets: data and metrics (borrowed),
 *  report.json (or NULL) and the forced flag. 0, or HR_ENOMEM when
 *  s->params could not be built. */
int hr__spec_finish(hr_model_spec_t *s, json_t *data, json_t *metrics,
                    json_t *report, int forced);
/** Write s (rc: the spec's own status, nonzero is reported as out of
 *  memory) as a new version of slot, or into dir when slot is NULL, then
 *  release x, s->params and s->context_prior. */
int hr__spec_publish(hr_model_spec_t *s, hr__spec_ids_t *x, int rc,
                     const char *slot, const char *dir, char *path,
                     size_t cap, hr_error_t *err);

#endif
