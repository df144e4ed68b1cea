/* 15_docs.c -- docs/configuration.md lists every configuration key exactly
 * as the code describes it (`hyperrec --help-config`), so the reference
 * cannot drift from the key table. */
#include "lib/env.h"

#include <stdlib.h>

HR_TEST(docs_configuration_reference_is_current) {
  char bin[PATH_MAX], out[PATH_MAX], doc[PATH_MAX];
  char *ref, *text, *save = NULL;
  int lines = 0;

  hrt_fmt(out, sizeof(out), "%s/help-config.txt", hr_test_tmpdir());
  hrt_fmt(doc, sizeof(doc), "%s/docs/configuration.md", hr_test_root());
  const char *argv[] = {hrt_bin_path("hyperrec", bin, sizeof(bin)),
                        "--help-config", NULL};
  ASSERT_EQ(hrt_run(argv, out, 10000), 0);
  ref = hrt_slurp(out);
  text = hrt_slurp(doc);
  ASSERT_NOT_NULL(ref);
  ASSERT_NOT_NULL(text);
  for (char *l = strtok_r(ref, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
    lines++;
    ASSERT_MSG(strstr(text, l) != NULL,
               "docs/configuration.md lacks: %s\n(regenerate the table with "
               "bin/hyperrec --help-config)", l);
  }
  ASSERT_GT(lines, 20);
  free(ref);
  free(text);
  return 0;
}
