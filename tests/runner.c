/* runner.c -- runs every registered test in its own process.
 *
 * Usage: hr-tests [--list] [--single NAME] [--filter SUBSTR] [--timeout-mult N]
 * Each test is forked; a test that crashes, hangs past its timeout or
 * returns non-zero fails alone. Exit code 77 means skipped, which is a
 * failure when CI=true. The last line is `N passed, N failed[, N skipped]`. */
#include "test.h"

#include "hr/auth.h"
#include "lib/env.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct {
  const char *name;
  hr_test_fn fn;
  int timeout_s;
  const char *file;
} test_entry;

static test_entry *tests;
static size_t n_tests, cap_tests;
static char tmpdir_path[PATH_MAX];
static char root_path[PATH_MAX];
static char data_path[PATH_MAX];

void hr_test_register(const char *name, hr_test_fn fn, int timeout_s,
                      const char *file) {
  if (n_tests == cap_tests) {
    cap_tests = cap_tests ? cap_tests * 2 : 64;
    tests = realloc(tests, cap_tests * sizeof(*tests));
    if (tests == NULL)
      abort();
  }
  tests[n_tests++] = (test_entry){name, fn, timeout_s, file};
}

static int cmp_entry(const void *a, const void *b) {
  const test_entry *x = a, *y = b;
  int c = strcmp(x->file, y->file);
  return c ? c : strcmp(x->name, y->name);
}

void hr_test_rmtree(const char *path) {
  DIR *d = opendir(path);
  struct dirent *e;
  char sub[PATH_MAX];
  struct stat st;

  if (d == NULL) {
    unlink(path);
    return;
  }
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
    if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode))
      hr_test_rmtree(sub);
    else
      unlink(sub);
  }
  closedir(d);
  rmdir(path);
}

const char *hr_test_tmpdir(void) {
  if (tmpdir_path[0] == '\0') {
    const char *t = getenv("TMPDIR");
    snprintf(tmpdir_path, sizeof(tmpdir_path), "%s/hrtest.XXXXXX",
             t && *t ? t : "/tmp");
    if (mkdtemp(tmpdir_path) == NULL) {
      perror("mkdtemp");
      abort();
    }
  }
  return tmpdir_path;
}

const char *hr_test_root(void) { return root_path; }

const char *hr_test_shared_data(void) {
  const char *env = getenv("HR_SHARED_DATA");
  struct stat st;

  if (env && *env)
    snprintf(data_path, sizeof(data_path), "%s", env);
  else
    snprintf(data_path, sizeof(data_path), "%s/../shared/data", root_path);
  if (stat(data_path, &st) != 0 || !S_ISDIR(st.st_mode))
    return NULL;
  return data_path;
}

int hr_test_skip(const char *why) {
  fprintf(stderr, "  SKIP: %s\n", why);
  return 77;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Runs one test in a child process; returns 0 pass, 1 fail, 77 skip. */
static int run_one(const test_entry *t, int mult) {
  pid_t pid;
  int status = 0;
  double deadline;

  fflush(stdout);
  fflush(stderr);
  pid = fork();
  if (pid < 0) {
    perror("fork");
    return 1;
  }
  if (pid == 0) {
    int rc;
    setpgid(0, 0); /* so a timeout kills what the test spawned too */
    rc = t->fn();
    if (tmpdir_path[0] != '\0')
      hr_test_rmtree(tmpdir_path);
    fflush(stdout);
    fflush(stderr);
    _exit(rc == 77 ? 77 : (rc ? 1 : 0));
  }
  deadline = now_s() + (double)t->timeout_s * mult;
  for (;;) {
    pid_t w = waitpid(pid, &status, WNOHANG);
    if (w == pid)
      break;
    if (w < 0 && errno != EINTR) {
      perror("waitpid");
      return 1;
    }
    if (now_s() > deadline) {
      fprintf(stderr, "  FAIL: timed out after %d s\n", t->timeout_s * mult);
      kill(-pid, SIGKILL);
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return 1;
    }
    usleep(2000);
  }
  kill(-pid, SIGKILL); /* leftovers of the test's process group */
  if (WIFSIGNALED(status)) {
    fprintf(stderr, "  FAIL: killed by signal %d\n", WTERMSIG(status));
    return 1;
  }
  if (WEXITSTATUS(status) == 77)
    return 77;
  return WEXITSTATUS(status) == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
  const char *single = NULL, *filter = NULL;
  int list = 0, mult = 1;
  int passed = 0, failed = 0, skipped = 0;
  const char *failed_names[64];
  int n_failed_names = 0;
  const char *ci = getenv("CI");
  int strict = ci && (strcmp(ci, "true") == 0 || strcmp(ci, "1") == 0);

  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--list") == 0)
      list = 1;
    else if (strcmp(argv[i], "--single") == 0 && i + 1 < argc)
      single = argv[++i];
    else if (strcmp(argv[i], "--filter") == 0 && i + 1 < argc)
      filter = argv[++i];
    else if (strcmp(argv[i], "--timeout-mult") == 0 && i + 1 < argc)
      mult = atoi(argv[++i]) > 0 ? atoi(argv[i]) : 1;
    else {
      fprintf(stderr,
              "usage: %s [--list] [--single NAME] [--filter SUBSTR] "
              "[--timeout-mult N]\n",
              argv[0]);
      return 2;
    }
  }
  /* Every server a test starts accepts the tests' API key (the default
   * auth needs credentials for /event and /recommend with a user_id):
   * hrt_spawn passes this to it as HYPERREC_AUTH_API_KEYS, and hrt_post
   * sends the key. Tests of the credentials themselves unset it. */
  {
    char hex[65], v[80];
    hr_auth_key_hash(HRT_API_KEY, hex);
    snprintf(v, sizeof(v), "tests:%s", hex);
    setenv("HRT_SERVER_API_KEYS", v, 1);
  }
  if (getenv("HR_TEST_TIMEOUT_MULT"))
    mult = atoi(getenv("HR_TEST_TIMEOUT_MULT")) > 0
               ? atoi(getenv("HR_TEST_TIMEOUT_MULT"))
               : mult;
  if (getcwd(root_path, sizeof(root_path)) == NULL) {
    perror("getcwd");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  qsort(tests, n_tests, sizeof(*tests), cmp_entry);
  for (size_t i = 0; i < n_tests; i++) {
    const test_entry *t = &tests[i];
    double t0;
    int rc;

    if (single && strcmp(single, t->name) != 0)
      continue;
    if (filter && strstr(t->name, filter) == NULL &&
        strstr(t->file, filter) == NULL)
      continue;
    if (list) {
      printf("%s\t%s\n", t->name, t->file);
      continue;
    }
    t0 = now_s();
    rc = run_one(t, mult);
    if (rc == 77 && strict) {
      fprintf(stderr, "  (CI=true: a skipped test counts as failed)\n");
      rc = 1;
    }
    if (rc == 0)
      passed++;
    else if (rc == 77)
      skipped++;
    else {
      failed++;
      if (n_failed_names < 64)
        failed_names[n_failed_names++] = t->name;
    }
    printf("%s %s (%.0f ms)\n", rc == 0 ? "ok  " : rc == 77 ? "skip" : "FAIL",
           t->name, (now_s() - t0) * 1000.0);
    fflush(stdout);
  }
  if (list) {
    free(tests);
    return 0;
  }
  if (n_failed_names > 0) { /* names, once more, where CI logs end */
    printf("failed:");
    for (int i = 0; i < n_failed_names; i++)
      printf(" %s", failed_names[i]);
    printf("\n");
  }
  free(tests);
  if (skipped)
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
  else
    printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
