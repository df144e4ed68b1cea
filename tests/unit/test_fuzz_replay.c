/* test_fuzz_replay.c -- every seed and every regression input of the fuzz
 * harnesses (tests/fuzz/corpus/<name>, tests/fuzz/regress/<name>) through
 * the harness, on every `make test` and under `make asan`. A harness aborts
 * on a violated expectation, which fails the test (each test is forked). */
#include "test.h"

#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "fuzz/fuzz.h"

#define REPLAY_MAX_BYTES (8u << 20)

/* Runs every file of tests/fuzz/<kind>/<name> through fn; the count into
 * *n. 0, or 1 when the directory cannot be read or a file fails. */
static int replay_dir(const char *kind, const char *name,
                      int (*fn)(const uint8_t *, size_t), int *n) {
  char dir[256], path[512];
  DIR *d;
  struct dirent *e;

  *n = 0;
  snprintf(dir, sizeof(dir), "tests/fuzz/%s/%s", kind, name);
  d = opendir(dir);
  ASSERT_MSG(d != NULL, "%s: cannot open (run from the repository root)",
             dir);
  while ((e = readdir(d)) != NULL) {
    struct stat st;
    if (e->d_name[0] == '.')
      continue;
    snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) ||
        (size_t)st.st_size > REPLAY_MAX_BYTES)
      continue;
    FILE *f = fopen(path, "rb");
    uint8_t *buf = malloc((size_t)st.st_size + 1);
    size_t got = (f && buf) ? fread(buf, 1, (size_t)st.st_size, f) : 0;
    if (f)
      fclose(f);
    if (buf == NULL || got != (size_t)st.st_size) {
      free(buf);
      closedir(d);
      HR_FAIL("%s: cannot read", path);
    }
    fprintf(stderr, "  %s\n", path);
    fn(buf, got);
    free(buf);
    (*n)++;
  }
  closedir(d);
  return 0;
}

/* At least min_seeds seeds, of which at least min_accepted pass the code
 * under test (so that the fuzzer starts from inputs that reach deep). */
static int replay(const char *name, int (*fn)(const uint8_t *, size_t),
                  int min_seeds, unsigned long min_accepted) {
  int seeds, regress;
  unsigned long acc0 = hr_fuzz_accepted, accepted;
  ASSERT_EQ(replay_dir("corpus", name, fn, &seeds), 0);
  accepted = hr_fuzz_accepted - acc0;
  ASSERT_EQ(replay_dir("regress", name, fn, &regress), 0);
  ASSERT_MSG(seeds >= min_seeds, "%s: %d seeds, expected at least %d", name,
             seeds, min_seeds);
  ASSERT_MSG(accepted >= min_accepted, "%s: %lu seeds accepted, expected at "
             "least %lu", name, accepted, min_accepted);
  printf("  fuzz %s: %d seeds (%lu accepted), %d regression inputs "
         "replayed\n", name, seeds, accepted, regress);
  return 0;
}

HR_TEST(fuzz_replay_api) { return replay("api", hr_fuzz_api, 10, 8); }
HR_TEST(fuzz_replay_auth) { return replay("auth", hr_fuzz_auth, 4, 2); }
HR_TEST(fuzz_replay_config) { return replay("config", hr_fuzz_config, 4, 3); }
HR_TEST(fuzz_replay_index) { return replay("index", hr_fuzz_index, 2, 2); }
HR_TEST(fuzz_replay_tzif) { return replay("tzif", hr_fuzz_tzif, 3, 5); }
HR_TEST_T(fuzz_replay_model, 120) {
  return replay("model", hr_fuzz_model, 2, 2);
}
