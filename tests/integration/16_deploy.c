/* 16_deploy.c -- what deploy/ ships fits together and fits the server
 * (tests/deploy/check.py: volumes, secrets, selectors, probes on real
 * endpoints and the real port, numeric user, grace periods, the trainer's
 * sources), and its YAML is lint-clean (yamllint, strict). */
#include "lib/env.h"

#include <libgen.h>
#include <stdlib.h>

/* Runs argv; on failure the assertion shows what it printed. */
static int run_shown(const char *const argv[], const char *name) {
  char log[PATH_MAX];
  hrt_fmt(log, sizeof(log), "%s/%s.log", hr_test_tmpdir(), name);
  int rc = hrt_run(argv, log, 60000);
  if (rc != 0) {
    char *text = hrt_slurp(log);
    fprintf(stderr, "%s exited %d:\n%s\n", argv[0], rc, text ? text : "");
    free(text);
  }
  return rc;
}

HR_TEST_T(deploy_manifests_fit_the_server, 60) {
  char bin[PATH_MAX];
  hrt_bin_path("hyperrec", bin, sizeof(bin));
  const char *argv[] = {"python3", "tests/deploy/check.py", dirname(bin),
                        NULL};
  ASSERT_EQ(run_shown(argv, "deploy-check"), 0);
  return 0;
}

HR_TEST_T(deploy_yaml_is_lint_clean, 60) {
  const char *argv[] = {"yamllint", "--strict", "deploy/kubernetes.yaml",
                        "deploy/kubernetes-secrets.example.yaml",
                        "docker-compose.yml", NULL};
  ASSERT_EQ(run_shown(argv, "yamllint"), 0);
  return 0;
}
