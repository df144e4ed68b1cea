/* proc.c -- child processes for integration tests (see proc.h). */
#include "lib/proc.h"

#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

int hrt_mult(void) {
  const char *m = getenv("HR_TEST_TIMEOUT_MULT");
  int v = m ? atoi(m) : 1;
  return v > 0 ? v : 1;
}

long long hrt_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void hrt_sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    ;
}

void hrt_fmt(char *out, size_t n, const char *fmt, ...) {
  va_list ap;
  int len;

  va_start(ap, fmt);
  len = vsnprintf(out, n, fmt, ap);
  va_end(ap);
  if (len < 0 || (size_t)len >= n) {
    fprintf(stderr, "hrt_fmt: \"%s\" does not fit in %zu bytes\n", fmt, n);
    abort();
  }
}

const char *hrt_bin_path(const char *name, char *out, size_t n) {
  const char *dir = getenv("HR_BIN_DIR");

  if (dir == NULL || *dir == '\0')
    dir = "bin";
  if (dir[0] == '/')
    hrt_fmt(out, n, "%s/%s", dir, name);
  else
    hrt_fmt(out, n, "%s/%s/%s", hr_test_root(), dir, name);
  return out;
}

/* ------------------------------------------------------------ spawning */

pid_t hrt_spawn(const char *const argv[], const char *log_path) {
  pid_t parent = getpid();
  pid_t pid;

  fflush(stdout);
  fflush(stderr);
  pid = fork();
  if (pid < 0) {
    perror("fork");
    return -1;
  }
  if (pid == 0) {
    int fd, devnull;
    long maxfd = sysconf(_SC_OPEN_MAX);

    /* Die with the test process even when it is SIGKILLed. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
      _exit(127);
    signal(SIGPIPE, SIG_DFL);
    devnull = open("/dev/null", O_RDONLY);
    fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (devnull < 0 || fd < 0)
      _exit(127);
    dup2(devnull, 0);
    dup2(fd, 1);
    dup2(fd, 2);
    if (maxfd < 0 || maxfd > 65536)
      maxfd = 65536;
    for (long i = 3; i < maxfd; i++)
      close((int)i);
    /* Hermetic: the test decides the configuration, not the caller's env. */
    for (;;) {
      char **e;
      for (e = environ; *e != NULL; e++)
        if (strncmp(*e, "HYPERREC_", 9) == 0)
          break;
      if (*e == NULL)
        break;
      char name[256];
      size_t len = strcspn(*e, "=");
      if (len >= sizeof(name))
        len = sizeof(name) - 1;
      memcpy(name, *e, len);
      name[len] = '\0';
      unsetenv(name);
    }
    /* ... except the tests' API key (tests/runner.c), unless the test
     * removed HRT_SERVER_API_KEYS to see the server without it */
    if (getenv("HRT_SERVER_API_KEYS") != NULL)
      setenv("HYPERREC_AUTH_API_KEYS", getenv("HRT_SERVER_API_KEYS"), 1);
    execvp(argv[0], (char *const *)argv);
    fprintf(stderr, "hrt_spawn: exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  return pid;
}

int hrt_wait(pid_t pid, int timeout_ms) {
  long long deadline = hrt_now_ms() + timeout_ms;
  int status;
  int delay = 1;

  for (;;) {
    pid_t w = waitpid(pid, &status, WNOHANG);
    if (w == pid)
      break;
    if (w < 0 && errno != EINTR)
      return -1;
    if (hrt_now_ms() >= deadline)
      return -1;
    hrt_sleep_ms(delay);
    if (delay < 20)
      delay *= 2;
  }
  if (WIFSIGNALED(status))
    return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

int hrt_terminate(pid_t pid, int grace_ms) {
  int rc;

  if (pid <= 0)
    return -1;
  kill(pid, SIGCONT); /* a paused process cannot handle SIGTERM */
  kill(pid, SIGTERM);
  rc = hrt_wait(pid, grace_ms);
  if (rc == -1) {
    kill(pid, SIGKILL);
    hrt_wait(pid, 5000);
  }
  return rc;
}

void hrt_print_tail(const char *title, const char *path, int lines) {
  FILE *f = fopen(path, "r");
  long size, start;
  char *buf;
  int nl = 0;

  if (f == NULL) {
    fprintf(stderr, "  --- %s: %s: %s\n", title, path, strerror(errno));
    return;
  }
  fseek(f, 0, SEEK_END);
  size = ftell(f);
  start = size > 16384 ? size - 16384 : 0;
  buf = malloc((size_t)(size - start) + 1);
  if (buf == NULL) {
    fclose(f);
    return;
  }
  fseek(f, start, SEEK_SET);
  size = start + (long)fread(buf, 1, (size_t)(size - start), f);
  buf[size - start] = '\0';
  fclose(f);
  /* Walk back over `lines` newlines (ignoring a trailing one). */
  long i = size - start;
  if (i > 0 && buf[i - 1] == '\n')
    i--;
  while (i > 0) {
    if (buf[i - 1] == '\n' && ++nl >= lines)
      break;
    i--;
  }
  fprintf(stderr, "  --- %s (%s), last %d lines:\n%s", title, path, lines,
          buf + i);
  if (size - start > 0 && buf[size - start - 1] != '\n')
    fputc('\n', stderr);
  fprintf(stderr, "  ---\n");
  free(buf);
}

int hrt_file_has(const char *path, const char *needle) {
  char *text = hrt_slurp(path);
  int found = text != NULL && strstr(text, needle) != NULL;
  free(text);
  return found;
}

int hrt_file_has_sanitizer_report(const char *path) {
  static const char *const pats[] = {"ERROR: AddressSanitizer",
                                     "ERROR: LeakSanitizer", "runtime error:",
                                     "WARNING: ThreadSanitizer"};
  FILE *f = fopen(path, "r");
  char line[4096];
  int found = 0;

  if (f == NULL)
    return 0;
  while (!found && fgets(line, sizeof(line), f) != NULL)
    for (size_t i = 0; i < sizeof(pats) / sizeof(pats[0]); i++)
      if (strstr(line, pats[i]) != NULL)
        found = 1;
  fclose(f);
  return found;
}

int hrt_run(const char *const argv[], const char *log_path, int timeout_ms) {
  pid_t pid = hrt_spawn(argv, log_path);
  int rc;

  if (pid < 0)
    return -1;
  rc = hrt_wait(pid, timeout_ms);
  if (rc == -1) {
    fprintf(stderr, "  %s: still running after %d ms, killed\n", argv[0],
            timeout_ms);
    kill(pid, SIGKILL);
    hrt_wait(pid, 5000);
  }
  if (rc != 0) {
    fprintf(stderr, "  %s exited with %d\n", argv[0], rc);
    hrt_print_tail(argv[0], log_path, 30);
  }
  return rc;
}

/* ------------------------------------------------------------ redis */

/* A port the kernel considers free right now. Another process may take it
 * before redis binds it; hrt_redis_start retries in that case. */
static int free_port(void) {
  struct sockaddr_in a;
  socklen_t len = sizeof(a);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int port = -1;

  if (fd < 0)
    return -1;
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
      getsockname(fd, (struct sockaddr *)&a, &len) == 0)
    port = ntohs(a.sin_port);
  close(fd);
  return port;
}

static int redis_ping(int port) {
  struct timeval tv = {0, 200000};
  redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
  redisReply *r;
  int ok = 0;

  if (c == NULL)
    return 0;
  if (c->err == 0) {
    redisSetTimeout(c, tv);
    r = redisCommand(c, "PING");
    ok = r != NULL && r->type == REDIS_REPLY_STATUS &&
         strcmp(r->str, "PONG") == 0;
    if (r != NULL)
      freeReplyObject(r);
  }
  redisFree(c);
  return ok;
}

/* One attempt on r->port: 0 up, 1 exited early (port busy?), -1 other. */
static int redis_try(hrt_redis_t *r) {
  char port[16];
  const char *argv[] = {"redis-server", "--port", port, "--bind", "127.0.0.1",
                        "--save", "", "--appendonly", r->durable ? "yes" : "no",
                        "--appendfsync", r->durable ? "always" : "everysec",
                        "--dir", r->dir,
                        "--daemonize", "no", "--protected-mode", "no",
                        "--logfile", r->log, NULL};
  long long deadline = hrt_now_ms() + 10000LL * hrt_mult();
  int rc;

  snprintf(port, sizeof(port), "%d", r->port);
  r->pid = hrt_spawn(argv, r->log);
  if (r->pid < 0) {
    r->pid = 0;
    return -1;
  }
  while (hrt_now_ms() < deadline) {
    rc = hrt_wait(r->pid, 0);
    if (rc != -1) {
      r->pid = 0;
      return rc == 127 ? -1 : 1;
    }
    if (redis_ping(r->port))
      return 0;
    hrt_sleep_ms(10);
  }
  fprintf(stderr, "  redis-server on port %d did not answer PING\n", r->port);
  hrt_terminate(r->pid, 2000);
  r->pid = 0;
  return -1;
}

int hrt_redis_start(hrt_redis_t *r) {
  static int seq;
  int durable = r->durable;

  memset(r, 0, sizeof(*r));
  r->durable = durable;
  snprintf(r->dir, sizeof(r->dir), "%s/redis%d", hr_test_tmpdir(), seq++);
  if (mkdir(r->dir, 0755) != 0 && errno != EEXIST) {
    fprintf(stderr, "  mkdir %s: %s\n", r->dir, strerror(errno));
    return -1;
  }
  hrt_fmt(r->log, sizeof(r->log), "%s/redis.log", r->dir);
  for (int attempt = 0; attempt < 20; attempt++) {
    int rc;
    r->port = free_port();
    if (r->port <= 0)
      continue;
    rc = redis_try(r);
    if (rc == 0)
      return 0;
    if (rc < 0)
      break;
  }
  fprintf(stderr, "  could not start redis-server (is it installed?)\n");
  hrt_print_tail("redis-server log", r->log, 20);
  return -1;
}

int hrt_redis_restart(hrt_redis_t *r) {
  long long deadline = hrt_now_ms() + 10000LL * hrt_mult();

  hrt_redis_stop(r);
  do {
    int rc = redis_try(r);
    if (rc == 0)
      return 0;
    if (rc < 0)
      break;
    hrt_sleep_ms(50); /* port still busy: wait for it */
  } while (hrt_now_ms() < deadline);
  fprintf(stderr, "  could not restart redis-server on port %d\n", r->port);
  hrt_print_tail("redis-server log", r->log, 20);
  return -1;
}

void hrt_redis_stop(hrt_redis_t *r) {
  if (r->pid > 0)
    hrt_terminate(r->pid, 5000 * hrt_mult());
  r->pid = 0;
}

void hrt_redis_pause(hrt_redis_t *r, int paused) {
  if (r->pid > 0)
    kill(r->pid, paused ? SIGSTOP : SIGCONT);
}

/* ------------------------------------------------------------ hyperrec */

/* Scan the log for the listening line; returns the port, 0 if not yet. */
static int find_listening(const char *path) {
  FILE *f = fopen(path, "r");
  char line[8192];
  int port = 0;

  if (f == NULL)
    return 0;
  while (port == 0 && fgets(line, sizeof(line), f) != NULL) {
    json_t *j;
    const char *ev;
    if (strstr(line, "listening") == NULL)
      continue;
    j = json_loads(line, 0, NULL);
    if (j == NULL)
      continue;
    ev = json_string_value(json_object_get(j, "event"));
    if (ev != NULL && strcmp(ev, "listening") == 0 &&
        json_is_integer(json_object_get(j, "port")))
      port = (int)json_integer_value(json_object_get(j, "port"));
    json_decref(j);
  }
  fclose(f);
  return port;
}

int hrt_server_start(hrt_server_t *s, const char *const args[]) {
  static int seq;
  const char *argv[64];
  char bin[PATH_MAX];
  size_t n = 0;
  long long deadline;

  memset(s, 0, sizeof(*s));
  snprintf(s->log, sizeof(s->log), "%s/hyperrec%d.log", hr_test_tmpdir(),
           seq++);
  argv[n++] = hrt_bin_path("hyperrec", bin, sizeof(bin));
  for (size_t i = 0; args[i] != NULL && n < 63; i++)
    argv[n++] = args[i];
  argv[n] = NULL;
  if (access(bin, X_OK) != 0) {
    fprintf(stderr, "  %s: %s (run make first)\n", bin, strerror(errno));
    return -1;
  }
  s->pid = hrt_spawn(argv, s->log);
  if (s->pid < 0) {
    s->pid = 0;
    return -1;
  }
  deadline = hrt_now_ms() + 10000LL * hrt_mult();
  while (hrt_now_ms() < deadline) {
    int rc = hrt_wait(s->pid, 0);
    if (rc != -1) {
      fprintf(stderr, "  hyperrec exited with %d before listening\n", rc);
      hrt_print_tail("hyperrec stderr", s->log, 30);
      s->pid = 0;
      return -1;
    }
    s->port = find_listening(s->log);
    if (s->port > 0)
      return 0;
    hrt_sleep_ms(10);
  }
  fprintf(stderr, "  hyperrec logged no \"listening\" line in %d s\n",
          10 * hrt_mult());
  hrt_print_tail("hyperrec stderr", s->log, 30);
  hrt_terminate(s->pid, 2000);
  s->pid = 0;
  return -1;
}

int hrt_server_stop(hrt_server_t *s) {
  int rc;

  if (s->pid <= 0)
    return 0;
  rc = hrt_terminate(s->pid, 10000 * hrt_mult());
  s->pid = 0;
  if (rc != 0) {
    fprintf(stderr, "  hyperrec: SIGTERM gave exit status %d, wanted 0%s\n",
            rc, rc == -1 ? " (did not exit, killed)" : "");
    hrt_print_tail("hyperrec stderr", s->log, 30);
    return rc;
  }
  if (hrt_file_has_sanitizer_report(s->log)) {
    fprintf(stderr, "  hyperrec: sanitizer report in its stderr\n");
    hrt_print_tail("hyperrec stderr", s->log, 60);
    return 99;
  }
  return 0;
}

int hrt_server_log_count(const hrt_server_t *s, ...) {
  FILE *f = fopen(s->log, "r");
  char line[8192];
  int count = 0;

  if (f == NULL)
    return 0;
  while (fgets(line, sizeof(line), f) != NULL) {
    va_list ap;
    const char *p;
    int all = 1;
    va_start(ap, s);
    while ((p = va_arg(ap, const char *)) != NULL)
      if (strstr(line, p) == NULL)
        all = 0;
    va_end(ap);
    count += all;
  }
  fclose(f);
  return count;
}

json_t *hrt_last_json(const char *path, const char *key) {
  char *text = hrt_slurp(path), *save = NULL;
  json_t *best = NULL;
  for (char *line = text ? strtok_r(text, "\n", &save) : NULL; line;
       line = strtok_r(NULL, "\n", &save)) {
    json_t *j = json_loads(line, 0, NULL);
    if (j && json_object_get(j, key)) {
      json_decref(best);
      best = j;
    } else {
      json_decref(j);
    }
  }
  free(text);
  return best;
}

char *hrt_slurp(const char *path) {
  FILE *f = fopen(path, "r");
  char *buf = NULL;
  long n;

  if (f == NULL)
    return NULL;
  if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
      fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1)) != NULL) {
    if (fread(buf, 1, (size_t)n, f) == (size_t)n) {
      buf[n] = '\0';
    } else {
      free(buf);
      buf = NULL;
    }
  }
  fclose(f);
  return buf;
}
