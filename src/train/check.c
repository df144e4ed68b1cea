/* check.c -- `hyperrec-train check-index`: how well a version's ANN index
 * retrieves for the model's own users. For a deterministic sample of known
 * users it takes the real user vectors, excludes their training history
 * (as the server does), and compares the index's top-N with the exact top-N
 * by inner product (the brute-force twin). */
#include "hr/train.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>


static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return (x > y) - (x < y);
}

int hr_check_index(const char *dir, size_t users, size_t n, int ef,
                   hr_check_result_t *res, hr_error_t *err) {
  hr_model_t *m = hr_model_open(dir, err);
  const hr_ann_t *a;
  hr_ann_scratch_t *s = NULL;
  hr_tensor_t emb;
  float *u = NULL;
  uint32_t *excl = NULL, *got = NULL, *truth = NULL;
  size_t nu, hits = 0, total = 0, max_hist = 0, hits_ret = 0, scanned = 0;
  double t_ann = 0, t_exact = 0, t_ret = 0;
  uint32_t *ret = NULL;
  hr_scored_t *ret_top = NULL;
  uint64_t *skip = NULL;
  int rc = 0;

  memset(res, 0, sizeof(*res));
  if (m == NULL)
    return err && err->code ? err->code : HR_EIO;
  a = hr_model_ann(m);
  nu = hr_model_n_users(m);
  if (a == NULL) {
    rc = hr_error_set(err, HR_EINVAL, NULL, "%s has no index.bin", dir);
    goto out;
  }
  if (nu == 0 || hr_model_tensor(m, "item_emb", &emb) != 0) {
    rc = hr_error_set(err, HR_EINVAL, NULL, "%s: no users or no item_emb", dir);
    goto out;
  }
  if (users > nu)
    users = nu;
  for (size_t k = 0; k < users; k++) {
    size_t nh;
    hr_model_user_history(m, (long)(k * nu / users), &nh);
    if (nh > max_hist)
      max_hist = nh;
  }
  s = hr_ann_scratch_new(a);
  u = malloc(sizeof(float) * (size_t)hr_model_dim(m));
  excl = malloc(sizeof(uint32_t) * (max_hist + 1));
  got = malloc(sizeof(uint32_t) * n);
  truth = malloc(sizeof(uint32_t) * n);
  ret = malloc(sizeof(uint32_t) * n);
  ret_top = malloc(sizeof(*ret_top) * n);
  skip = calloc(hr_model_n_items(m) / 64 + 1, sizeof(*skip));
  if (!s || !u || !excl || !got || !truth || !ret || !ret_top || !skip) {
    rc = hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
    goto out;
  }
  for (size_t k = 0; k < users; k++) {
    long uid = (long)(k * nu / users);
    size_t nh, ng, nt;
    const int32_t *h = hr_model_user_history(m, uid, &nh);
    double t0;

    if ((rc = hr_model_user_vector(m, uid, NULL, u)) != 0) {
      hr_error_set(err, rc, NULL, "user vector %ld failed", uid);
      goto out;
    }
    for (size_t j = 0; j < nh; j++)
      excl[j] = (uint32_t)h[j];
    qsort(excl, nh, sizeof(uint32_t), cmp_u32);
    size_t ne = 0;
    for (size_t j = 0; j < nh; j++)
      if (ne == 0 || excl[ne - 1] != excl[j])
        excl[ne++] = excl[j];
    t0 = hr__now_s();
    ng = hr_model_ann_search(m, s, u, n, ef, excl, ne, NULL, 0, got);
    t_ann += hr__now_s() - t0;
    t0 = hr__now_s();
    nt = hr_ann_brute_search(emb.data, hr_model_n_items(m), hr_model_dim(m),
                             u, n, excl, ne, truth, NULL);
    t_exact += hr__now_s() - t0;
    size_t sc, nr;
    t0 = hr__now_s();
    for (size_t j = 0; j < ne; j++)
      skip[excl[j] >> 6] |= (uint64_t)1 << (excl[j] & 63);
    nr = hr_model_retrieve(m, s, u, n, ef, excl, ne, skip, NULL, 0, ret,
                           ret_top, &sc);
    t_ret += hr__now_s() - t0;
    for (size_t j = 0; j < ne; j++)
      skip[excl[j] >> 6] = 0;
    for (size_t j = 0; j < nr; j++)
      ret[j] = (uint32_t)ret_top[j].index;
    scanned += sc;
    qsort(got, ng, sizeof(uint32_t), cmp_u32);
    qsort(ret, nr, sizeof(uint32_t), cmp_u32);
    for (size_t j = 0; j < nt; j++) {
      hits += bsearch(&truth[j], got, ng, sizeof(uint32_t), cmp_u32) != NULL;
      hits_ret += bsearch(&truth[j], ret, nr, sizeof(uint32_t), cmp_u32) != NULL;
    }
    total += nt;
  }
  res->users = users;
  res->recall = total ? (double)hits / (double)total : 0;
  res->ann_qps = t_ann > 0 ? (double)users / t_ann : 0;
  res->retrieve_recall = total ? (double)hits_ret / (double)total : 0;
  res->retrieve_qps = t_ret > 0 ? (double)users / t_ret : 0;
  res->scanned_frac = (double)scanned / ((double)users * hr_model_n_items(m));
  res->exact_qps = t_exact > 0 ? (double)users / t_exact : 0;
out:
  free(u);
  free(excl);
  free(got);
  free(truth);
  free(ret);
  free(ret_top);
  free(skip);
  hr_ann_scratch_free(s);
  hr_model_free(m);
  return rc;
}
