/* 90_demo.c -- `make run`'s script end to end: it starts its own Redis,
 * generates data, trains, serves; the three curl commands it prints work;
 * Ctrl-C (SIGINT to its process group) stops everything it started. */
#include "lib/env.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static int free_port(void) {
  struct sockaddr_in a = {0};
  socklen_t len = sizeof(a);
  int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
      getsockname(fd, (struct sockaddr *)&a, &len) == 0)
    port = ntohs(a.sin_port);
  if (fd >= 0)
    close(fd);
  return port;
}

/* Runs `sh -c cmd`, stdout to out (malloc'd). Returns the exit status. */
static int run_shell(const char *cmd, char **out) {
  char path[PATH_MAX];
  int st;
  pid_t pid;

  hrt_fmt(path, sizeof(path), "%s/curl.out", hr_test_tmpdir());
  pid = fork();
  if (pid == 0) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
    _exit(127);
  }
  st = hrt_wait(pid, 10000 * hrt_mult());
  *out = hrt_slurp(path);
  return st;
}

/* The item ids of a /recommend answer, in order, into buf. */
static void item_list(const char *body, char *buf, size_t cap) {
  json_t *j = body ? json_loads(body, 0, NULL) : NULL;
  json_t *items = json_object_get(j, "items");
  size_t n = 0;
  buf[0] = '\0';
  for (size_t k = 0; k < json_array_size(items) && n + 80 < cap; k++)
    n += (size_t)snprintf(buf + n, cap - n, "%s ",
                          json_string_value(json_object_get(
                              json_array_get(items, k), "item_id")));
  json_decref(j);
}

/* The demo's model follows the context: a known user's list changes with
 * the location and mood of the request. 0, or 1 after printing why. */
static int context_changes_answer(const char *var, const char *listen) {
  char path[PATH_MAX], cmd[1024], key[128] = "", user[128] = "";
  char a[2048], b[2048];
  char *creds, *ctx, *p, *out = NULL;
  hrt_fmt(path, sizeof(path), "%s/demo-credentials", var);
  creds = hrt_slurp(path);
  hrt_fmt(path, sizeof(path), "%s/data/contexts.csv", var);
  ctx = hrt_slurp(path);
  if (creds && (p = strstr(creds, "API_KEY=")) != NULL)
    sscanf(p + 8, "%127[^\n]", key);
  if (ctx && (p = strchr(ctx, '\n')) != NULL)
    sscanf(p + 1, "%127[^,]", user);
  free(creds);
  free(ctx);
  if (!key[0] || !user[0]) {
    fprintf(stderr, "  no demo API key or user\n");
    return 1;
  }
  static const char *const context[2] = {
      "{\"location\":\"home\",\"mood\":\"calm\"}",
      "{\"location\":\"gym\",\"mood\":\"energetic\"}"};
  for (int i = 0; i < 2; i++) {
    hrt_fmt(cmd, sizeof(cmd),
            "curl -s -H 'Authorization: Bearer %s' -H 'Content-Type: "
            "application/json' -d '{\"user_id\":\"%s\",\"k\":10,"
            "\"context\":%s}' http://%s/recommend",
            key, user, context[i], listen);
    if (run_shell(cmd, &out) != 0 || out == NULL) {
      fprintf(stderr, "  %s failed\n", cmd);
      free(out);
      return 1;
    }
    item_list(out, i ? b : a, sizeof(a));
    free(out);
    out = NULL;
  }
  if (a[0] == '\0' || strcmp(a, b) == 0) {
    fprintf(stderr, "  user %s: the same list at home/calm and at "
                    "gym/energetic: %s\n", user, a);
    return 1;
  }
  return 0;
}

HR_TEST_T(demo_make_run_script_curls_and_ctrl_c, 400) {
  char root[PATH_MAX], var[PATH_MAX], log[PATH_MAX], listen[64], bin[PATH_MAX];
  char *text = NULL, *cmds[3] = {0};
  int port = free_port(), n_cmds = 0, ok = 0, st;
  pid_t pid;
  const char *bindir = getenv("HR_BIN_DIR");

  ASSERT_GT(port, 0);
  hrt_fmt(root, sizeof(root), "%s", hr_test_root());
  hrt_fmt(var, sizeof(var), "%s/var", hr_test_tmpdir());
  hrt_fmt(log, sizeof(log), "%s/demo.log", hr_test_tmpdir());
  hrt_fmt(listen, sizeof(listen), "127.0.0.1:%d", port);
  hrt_fmt(bin, sizeof(bin), "%s", bindir && *bindir ? bindir : "bin");
  pid = fork();
  ASSERT(pid >= 0);
  if (pid == 0) {
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    setpgid(0, 0); /* like a terminal's job: Ctrl-C reaches the group */
    dup2(fd, 1);
    dup2(fd, 2);
    if (chdir(root) != 0)
      _exit(126);
    setenv("HR_DEMO_VAR", var, 1);
    setenv("HR_DEMO_LISTEN", listen, 1);
    setenv("HR_BIN_DIR", bin, 1);
    execl("/bin/bash", "bash", "deploy/demo.sh", (char *)NULL);
    _exit(127);
  }
  setpgid(pid, pid);
  for (long long d = hrt_now_ms() + 300000LL * hrt_mult(); hrt_now_ms() < d;) {
    free(text);
    text = hrt_slurp(log);
    if (text && strstr(text, "Also: /healthz")) {
      ok = 1;
      break;
    }
    if (hrt_wait(pid, 0) >= 0)
      break; /* the script died */
    hrt_sleep_ms(100);
  }
  if (!ok) {
    kill(-pid, SIGKILL);
    hrt_print_tail("demo log", log, 40);
    free(text);
    HR_FAIL("the demo did not come up");
  }
  /* The printed commands: "  curl ... \" + next line. */
  for (char *p = strstr(text, "\n  curl "); p && n_cmds < 3;
       p = strstr(p + 1, "\n  curl ")) {
    char *end = strstr(p + 1, "}'\n");
    if (end == NULL)
      break;
    size_t len = (size_t)(end + 2 - (p + 1));
    cmds[n_cmds] = malloc(len + 1);
    memcpy(cmds[n_cmds], p + 1, len);
    cmds[n_cmds][len] = '\0';
    for (char *q = cmds[n_cmds]; *q; q++) /* join the continuation line */
      if (q[0] == '\\' && q[1] == '\n')
        q[0] = q[1] = ' ';
    n_cmds++;
  }
  free(text);
  int good = n_cmds == 3;
  for (int i = 0; i < n_cmds && good; i++) {
    char *out = NULL;
    st = run_shell(cmds[i], &out);
    const char *want = i == 1 ? "\"accepted\":1" : "\"items\":[{\"item_id\"";
    if (st != 0 || out == NULL || strstr(out, want) == NULL) {
      fprintf(stderr, "  command %d: %s\n  exit %d, output: %s\n", i, cmds[i],
              st, out ? out : "(none)");
      good = 0;
    }
    free(out);
  }
  for (int i = 0; i < n_cmds; i++)
    free(cmds[i]);
  int follows = good && context_changes_answer(var, listen) == 0;
  text = hrt_slurp(log); /* the demo names the model fit chose */
  int named = text != NULL && strstr(text, "demo: fit chose ") != NULL;
  free(text);
  /* Ctrl-C: SIGINT to the job's process group. */
  kill(-pid, SIGINT);
  st = hrt_wait(pid, 20000 * hrt_mult());
  if (st < 0) {
    kill(-pid, SIGKILL);
    hrt_wait(pid, 5000);
  }
  int leftovers;
  HRT_POLL(leftovers, 5000, kill(-pid, 0) != 0);
  leftovers = !leftovers;
  if (leftovers) {
    char cmd[96];
    hrt_fmt(cmd, sizeof(cmd), "ps -o pid,args -g %d >&2", (int)pid);
    if (system(cmd) != 0)
      fprintf(stderr, "  (ps failed)\n");
    kill(-pid, SIGKILL);
  }
  if (!good)
    hrt_print_tail("demo log", log, 30);
  ASSERT_MSG(n_cmds == 3, "found %d curl commands in the demo's output", n_cmds);
  ASSERT_MSG(good, "a printed curl command failed");
  ASSERT_MSG(follows, "the demo's answer ignores the location and mood");
  ASSERT_MSG(named, "the demo log does not name the chosen model");
  ASSERT_MSG(st >= 0, "the demo did not stop on Ctrl-C");
  ASSERT_MSG(!leftovers, "processes of the demo survived Ctrl-C");
  return 0;
}
