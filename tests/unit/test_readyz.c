/* test_readyz.c -- the readiness handler on a registry of its own: ready
 * means "can answer /recommend" (a model loaded, not draining); Redis is
 * reported in the body, never required (tests/integration/60_faults.c
 * stops a real Redis under a running server). */
#include "test.h"

#include "../src/http/internal.h"
#include "hr/config.h"
#include "hr/registry.h"
#include "lib/models.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

/* /readyz on reg with `draining`: its status, its body in *body. */
static int readyz(hr_config_t *cfg, hr_registry_t *reg, int draining,
                  json_t **body) {
  hr_hreq_t req = {cfg, reg, "", 0, "t", "/readyz", NULL, NULL, draining};
  hr_hresp_t resp = {200, NULL, "application/json", 0};
  hr__h_readyz(&req, &resp);
  *body = resp.body ? json_loads(resp.body, 0, NULL) : NULL;
  free(resp.body);
  return resp.status;
}

HR_TEST(readyz_ready_means_a_model_and_not_draining) {
  hr_config_t cfg;
  hr_dataset_t ds;
  hr_csr_t h;
  hr_ials_t m;
  hr_ials_opts_t o;
  hr_error_t err = {0};
  char slot[PATH_MAX + 16], path[PATH_MAX + 32];
  json_t *j;

  hr_config_defaults(&cfg);
  snprintf(cfg.models_dir, sizeof(cfg.models_dir), "%s/rz-models",
           hr_test_tmpdir());
  mkdir(cfg.models_dir, 0755);
  hr_registry_t *reg = hr_registry_new(&cfg);
  ASSERT_NOT_NULL(reg);

  /* nothing loaded: not ready, draining or not */
  ASSERT_EQ(readyz(&cfg, reg, 0, &j), 503);
  ASSERT_STR_EQ(json_string_value(json_object_get(j, "status")), "not_ready");
  ASSERT(json_is_false(json_object_get(j, "model")));
  /* no Redis here: reported, and no reason to refuse by itself */
  ASSERT(json_is_false(json_object_get(j, "redis")));
  json_decref(j);

  ASSERT_EQ(hrt_fit_gen(&ds, &h, &m, 1), 0);
  hr_ials_opts_default(&o);
  o.factors = 8;
  snprintf(slot, sizeof(slot), "%s/default", cfg.models_dir);
  ASSERT_EQ(hr_train_write(slot, &ds, &h, &m, &o, NULL, NULL, path,
                           sizeof(path), &err), 0);
  ASSERT_EQ(hr_registry_scan(reg), 1);

  /* a model and Redis down: ready */
  ASSERT_EQ(readyz(&cfg, reg, 0, &j), 200);
  ASSERT_STR_EQ(json_string_value(json_object_get(j, "status")), "ready");
  ASSERT(json_is_true(json_object_get(j, "model")));
  ASSERT(json_is_false(json_object_get(j, "draining")));
  ASSERT(json_is_false(json_object_get(j, "redis")));
  json_decref(j);

  /* shutting down: out of the load balancer, model or not */
  ASSERT_EQ(readyz(&cfg, reg, 1, &j), 503);
  ASSERT_STR_EQ(json_string_value(json_object_get(j, "status")), "not_ready");
  ASSERT(json_is_true(json_object_get(j, "draining")));
  json_decref(j);

  hr_registry_free(reg);
  hr_ials_free(&m);
  hr_csr_free(&h);
  hr_dataset_free(&ds);
  return 0;
}
