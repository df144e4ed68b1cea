/* main.c -- bin/hyperrec: flags -> config -> modules -> control loop.
 *
 * The data plane (HTTP workers) is started by hr_http_start; this thread
 * then runs the control plane, one libuv loop: SIGTERM/SIGINT drain and
 * stop, SIGHUP reloads the reloadable configuration, and a timer hands the
 * model directory scan to libuv's thread pool, so the loop itself never
 * blocks on model I/O. */
#include "hr/auth.h"
#include "hr/config.h"
#include "hr/ctxstore.h"
#include "hr/experiments.h"
#include "hr/features.h"
#include "hr/http.h"
#include "hr/itemsets.h"
#include "hr/log.h"
#include "hr/registry.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <malloc.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

extern char **environ;

typedef struct {
  int argc;
  char **argv;
  hr_config_t cfg;        /* what the server runs with */
  hr_registry_t *reg;
  hr_http_t *http;
  uv_loop_t loop;
  uv_signal_t sig_term, sig_int, sig_hup;
  uv_timer_t poll;
  uv_fs_event_t watch[HR_CONFIG_MAX_LIST]; /* the slot directories */
  int n_watch;
  uv_work_t scan_req;
  uv_async_t retired;     /* a replaced version's last user is done */
  int scanning;
  int rescan;   /* a change was seen during a scan: scan again after it */
  int stopping;
} server_t;

static void usage(FILE *f) {
  fprintf(f,
          "usage: hyperrec [--config FILE] [--listen HOST:PORT] "
          "[--redis HOST:PORT]\n"
          "                [--models DIR] [--threads N] [--log-level LEVEL]\n"
          "                [--set KEY=VALUE]... [--help-config] [--version]\n"
          "       hyperrec hash-key [KEY]   the SHA-256 of KEY for auth.api_keys "
          "(no KEY:\n"
          "                                 a new random key, and its hash)\n"
          "       hyperrec token --user ID [--ttl SECONDS] [config flags]\n"
          "                                 a user token signed with the first "
          "of\n"
          "                                 auth.token_secrets (default ttl "
          "3600)\n"
          "       hyperrec healthcheck [config flags]\n"
          "                                 exit 0 when GET /healthz on the "
          "configured\n"
          "                                 port answers 200 within 2 s (a "
          "container's\n"
          "                                 HEALTHCHECK; no curl needed)\n"
          "\n"
          "Serves POST /recommend and POST /event (docs/api.md). Settings "
          "come from\n"
          "defaults < --config FILE (or $HYPERREC_CONFIG) < HYPERREC_* "
          "variables < flags;\n"
          "`hyperrec --help-config` lists every key.\n");
}

/* Builds the configuration from scratch: used at start and on SIGHUP. */
static int load_config(int argc, char **argv, hr_config_t *c, hr_error_t *err,
                       int *exit_now) {
  const char *file = getenv("HYPERREC_CONFIG");
  int rc;

  *exit_now = -1;
  for (int i = 1; i < argc; i++)
    if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
      file = argv[i + 1];
  hr_config_defaults(c);
  if (file && *file && (rc = hr_config_load_file(c, file, err)) != 0)
    return rc;
  if ((rc = hr_config_load_env(c, environ, err)) != 0)
    return rc;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *key = NULL;
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      *exit_now = 0;
      return 0;
    }
    if (strcmp(a, "--help-config") == 0) {
      hr_config_print_reference();
      *exit_now = 0;
      return 0;
    }
    if (strcmp(a, "--version") == 0) {
      printf("hyperrec %s\n", HR_VERSION);
      *exit_now = 0;
      return 0;
    }
    if (i + 1 >= argc)
      return hr_error_set(err, HR_EINVAL, a, "unknown flag or missing value: %s",
                          a);
    const char *v = argv[++i];
    if (strcmp(a, "--config") == 0)
      continue;
    else if (strcmp(a, "--listen") == 0)
      key = "listen";
    else if (strcmp(a, "--redis") == 0)
      key = "redis";
    else if (strcmp(a, "--models") == 0)
      key = "models_dir";
    else if (strcmp(a, "--threads") == 0)
      key = "threads";
    else if (strcmp(a, "--log-level") == 0)
      key = "log_level";
    else if (strcmp(a, "--set") == 0) {
      char k[128];
      const char *eq = strchr(v, '=');
      if (eq == NULL || (size_t)(eq - v) >= sizeof(k))
        return hr_error_set(err, HR_EINVAL, "--set",
                            "--set takes KEY=VALUE, got \"%s\"", v);
      memcpy(k, v, (size_t)(eq - v));
      k[eq - v] = '\0';
      if ((rc = hr_config_set(c, k, eq + 1, err)) != 0)
        return rc;
      continue;
    } else
      return hr_error_set(err, HR_EINVAL, a, "unknown flag %s", a);
    if ((rc = hr_config_set(c, key, v, err)) != 0)
      return rc;
  }
  if ((rc = hr_config_load_secrets(c, err)) != 0)
    return rc;
  return hr_config_validate(c, err);
}

/* Warnings about a configuration that works but is not what a server on
 * the internet should run with. */
static void warn_config(const hr_config_t *c) {
  if (hr_config_credentials_exposed(c))
    hr_log(HR_LOG_WARN, "credentials_without_tls",
           json_pack("{s:s,s:s}", "listen", c->listen_host, "msg",
                     "API keys, user tokens or the admin token will cross "
                     "the network in clear text: terminate TLS in front "
                     "(a load balancer) and set http.tls_in_front 1"));
  const char *needs[] = {c->auth.event, c->auth.recommend};
  const char *what[] = {"POST /event", "POST /recommend with a user_id"};
  for (int i = 0; i < 2; i++)
    if (strcmp(needs[i], "none") != 0 && c->auth.n_api_keys == 0 &&
        (strcmp(needs[i], "key") == 0 || c->auth.n_token_secrets == 0))
      hr_log(HR_LOG_WARN, "no_credentials_configured",
             json_pack("{s:s,s:s,s:s}", "endpoint", what[i], "needs",
                       needs[i], "msg",
                       "no API key or token secret can satisfy it: every "
                       "such request is refused with 401 (docs/security.md)"));
}

/* `hyperrec hash-key [KEY]`: the form auth.api_keys stores. */
static int cmd_hash_key(int argc, char **argv) {
  char key[80], hex[65];
  if (argc >= 3) {
    hr_auth_key_hash(argv[2], hex);
    printf("%s\n", hex);
    return 0;
  }
  unsigned char r[24];
  int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd < 0 || read(fd, r, sizeof(r)) != (ssize_t)sizeof(r)) {
    fprintf(stderr, "hyperrec: cannot read /dev/urandom\n");
    if (fd >= 0)
      close(fd);
    return 1;
  }
  close(fd);
  snprintf(key, sizeof(key), "hrk_");
  for (size_t i = 0; i < sizeof(r); i++)
    snprintf(key + 4 + 2 * i, 3, "%02x", r[i]);
  hr_auth_key_hash(key, hex);
  printf("key:  %s\nhash: %s\n(config: \"auth\": {\"api_keys\": "
         "[\"NAME:%s\"]})\n", key, hex, hex);
  return 0;
}

/* `hyperrec token --user ID [--ttl S] [flags]`: for scripts and tests; a
 * site's backend signs its own (docs/security.md). */
static int cmd_token(int argc, char **argv) {
  const char *user = NULL;
  long long ttl = 3600;
  char *rest[64], tok[HR_AUTH_TOKEN_MAX + 1];
  int n = 0, exit_now;
  hr_config_t c;
  hr_error_t err = {0};

  rest[n++] = argv[0];
  for (int i = 2; i < argc; i++) {
    if (strcmp(argv[i], "--user") == 0 && i + 1 < argc)
      user = argv[++i];
    else if (strcmp(argv[i], "--ttl") == 0 && i + 1 < argc)
      ttl = atoll(argv[++i]);
    else if (n < 63)
      rest[n++] = argv[i];
  }
  rest[n] = NULL;
  if (user == NULL || ttl < 1) {
    fprintf(stderr, "usage: hyperrec token --user ID [--ttl SECONDS] "
                    "[--config FILE] [--set KEY=VALUE]...\n");
    return 2;
  }
  if (load_config(n, rest, &c, &err, &exit_now) != 0) {
    fprintf(stderr, "hyperrec: %s\n", err.msg);
    return 2;
  }
  if (c.auth.n_token_secrets == 0) {
    fprintf(stderr, "hyperrec: no auth.token_secrets configured\n");
    return 2;
  }
  if (hr_auth_token_sign(c.auth.token_secrets[0], user,
                         (long long)time(NULL) + ttl, tok, sizeof(tok)) < 0) {
    fprintf(stderr, "hyperrec: the user id must be 1 to %d bytes\n",
            HR_AUTH_MAX_USER);
    return 2;
  }
  printf("%s\n", tok);
  return 0;
}

/* Sends `req` to host:port and reads the status line, all within the
 * deadline; returns the HTTP status, or -1. */
static int http_status(const char *host, int port, const char *req,
                       int timeout_ms) {
  struct addrinfo hints = {0}, *ai = NULL;
  char svc[16], buf[64];
  int fd = -1, status = -1;
  size_t got = 0;

  hints.ai_socktype = SOCK_STREAM;
  snprintf(svc, sizeof(svc), "%d", port);
  if (getaddrinfo(host, svc, &hints, &ai) != 0)
    return -1;
  fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    goto out;
  if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS)
    goto out;
  struct pollfd p = {fd, POLLOUT, 0};
  if (poll(&p, 1, timeout_ms) != 1 ||
      send(fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req))
    goto out;
  while (got < sizeof(buf) - 1) {
    p.events = POLLIN;
    if (poll(&p, 1, timeout_ms) != 1)
      goto out;
    ssize_t n = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
    if (n <= 0)
      break;
    got += (size_t)n;
    if (memchr(buf, '\n', got) != NULL)
      break;
  }
  buf[got] = '\0';
  if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
    status = -1;
out:
  if (fd >= 0)
    close(fd);
  freeaddrinfo(ai);
  return status;
}

/* `hyperrec healthcheck [flags]`: the image's HEALTHCHECK. It reads the
 * same configuration as the server (file, HYPERREC_* variables, flags), so
 * it follows a changed port; a wildcard listen address is asked on
 * loopback. */
static int cmd_healthcheck(int argc, char **argv) {
  hr_config_t c;
  hr_error_t err = {0};
  int exit_now, status;
  char req[256];
  const char *host;

  argv[1] = argv[0];
  if (load_config(argc - 1, argv + 1, &c, &err, &exit_now) != 0) {
    fprintf(stderr, "hyperrec: %s\n", err.msg);
    return 2;
  }
  if (exit_now >= 0)
    return exit_now;
  if (c.listen_port == 0) {
    fprintf(stderr, "hyperrec: listen port 0 (a free one): nothing to ask\n");
    return 2;
  }
  host = c.listen_host;
  if (strcmp(host, "0.0.0.0") == 0 || *host == '\0')
    host = "127.0.0.1";
  else if (strcmp(host, "::") == 0)
    host = "::1";
  snprintf(req, sizeof(req),
           "GET /healthz HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n",
           host);
  status = http_status(host, c.listen_port, req, 2000);
  if (status != 200) {
    if (status < 0)
      fprintf(stderr, "hyperrec: GET http://%s:%d/healthz: no answer\n",
              host, c.listen_port);
    else
      fprintf(stderr, "hyperrec: GET http://%s:%d/healthz: status %d\n",
              host, c.listen_port, status);
    return 1;
  }
  return 0;
}

static void apply_log_level(const hr_config_t *c) {
  hr_log_level_t lvl = HR_LOG_INFO;
  hr_log_parse_level(c->log_level, &lvl);
  hr_log_set_level(lvl);
}

/* ------------------------------------------------------ model polling */

static void scan_work(uv_work_t *w) {
  server_t *s = w->data;
  /* Loading a version is background work: on a busy machine the request
   * threads come first (nice 19 for this pool thread; only scans run on
   * libuv's pool here). */
  setpriority(PRIO_PROCESS, (id_t)gettid(), 19);
  hr_registry_scan(s->reg);
}

static void start_scan(server_t *s);

static void scan_done(uv_work_t *w, int status) {
  server_t *s = w->data;
  (void)status;
  s->scanning = 0;
  if (s->rescan && !s->stopping) {
    s->rescan = 0;
    start_scan(s);
  }
}

/* The scan runs on libuv's thread pool, never on this loop's thread nor
 * on a request thread; one at a time. */
static void start_scan(server_t *s) {
  if (s->stopping)
    return;
  if (s->scanning) {
    s->rescan = 1;
    return;
  }
  s->scanning = 1;
  s->scan_req.data = s;
  if (uv_queue_work(&s->loop, &s->scan_req, scan_work, scan_done) != 0)
    s->scanning = 0;
}

static void on_poll(uv_timer_t *t) { start_scan(t->data); }

/* A request thread dropped the last reference to a replaced version: it
 * is freed here, on the control thread, not before that request's answer
 * (uv_async_send is thread-safe; sends coalesce). */
static void on_retire(void *arg) { uv_async_send(arg); }

static void on_retired(uv_async_t *a) {
  server_t *s = a->data;
  hr_registry_collect(s->reg);
}


/* A slot directory changed (a version renamed into place, removed, ...). */
static void on_fs_event(uv_fs_event_t *h, const char *name, int events,
                        int status) {
  (void)name;
  (void)events;
  (void)status;
  start_scan(h->data);
}

static void watch_slots(server_t *s) {
  for (int i = 0; s->cfg.models_watch && i < s->cfg.n_slots; i++) {
    char dir[PATH_MAX + 80];
    uv_fs_event_t *w = &s->watch[s->n_watch];
    int rc;
    snprintf(dir, sizeof(dir), "%s/%s", s->cfg.models_dir, s->cfg.slots[i]);
    uv_fs_event_init(&s->loop, w);
    w->data = s;
    if ((rc = uv_fs_event_start(w, on_fs_event, dir, 0)) != 0) {
      hr_log(HR_LOG_WARN, "model_watch_unavailable",
             json_pack("{s:s,s:s,s:i}", "dir", dir, "reason", uv_strerror(rc),
                       "poll_ms", s->cfg.models_poll_ms));
      uv_close((uv_handle_t *)w, NULL);
      continue;
    }
    s->n_watch++;
  }
}

/* ----------------------------------------------------------- signals */

static void on_stop(uv_signal_t *sig, int signum) {
  server_t *s = sig->data;
  if (s->stopping)
    return;
  s->stopping = 1;
  hr_log(HR_LOG_INFO, "shutdown",
         json_pack("{s:s,s:i}", "signal", signum == SIGINT ? "SIGINT" : "SIGTERM",
                   "grace_ms", s->cfg.http.shutdown_grace_ms));
  hr_http_stop(s->http, s->cfg.http.shutdown_grace_ms);
  s->http = NULL;
  hr_itemsets_stop();
  uv_timer_stop(&s->poll);
  uv_close((uv_handle_t *)&s->poll, NULL);
  for (int i = 0; i < s->n_watch; i++) {
    uv_fs_event_stop(&s->watch[i]);
    uv_close((uv_handle_t *)&s->watch[i], NULL);
  }
  uv_close((uv_handle_t *)&s->sig_term, NULL);
  uv_close((uv_handle_t *)&s->sig_int, NULL);
  uv_close((uv_handle_t *)&s->sig_hup, NULL);
  /* the HTTP workers are gone: nothing retires a version any more, and
   * hr_registry_free collects what is left */
  uv_close((uv_handle_t *)&s->retired, NULL);
}

static void on_hup(uv_signal_t *sig, int signum) {
  server_t *s = sig->data;
  hr_config_t c;
  hr_error_t err = {0};
  int exit_now;
  (void)signum;

  if (load_config(s->argc, s->argv, &c, &err, &exit_now) != 0) {
    hr_log(HR_LOG_ERROR, "config_reload_failed",
           json_pack("{s:s,s:s}", "field", err.field, "reason", err.msg));
    return;
  }
  /* Only the reloadable keys change; the rest needs a restart. */
  hr_config_t next = s->cfg;
  memcpy(next.log_level, c.log_level, sizeof(next.log_level));
  memcpy(next.http.cors_origins, c.http.cors_origins,
         sizeof(next.http.cors_origins));
  next.http.n_cors_origins = c.http.n_cors_origins;
  memcpy(next.http.unknown_fields, c.http.unknown_fields,
         sizeof(next.http.unknown_fields));
  next.recommend = c.recommend;
  next.event = c.event;
  next.ann = c.ann;
  next.admin = c.admin;
  next.auth = c.auth; /* keys and secrets rotate without a restart */
  next.experiments_force_header = c.experiments_force_header;
  if (hr_http_set_config(s->http, &next) != 0) {
    hr_log(HR_LOG_ERROR, "config_reload_failed",
           json_pack("{s:s}", "reason", "out of memory"));
    return;
  }
  s->cfg = next;
  apply_log_level(&next);
  hr_log(HR_LOG_INFO, "config_reloaded",
         json_pack("{s:s}", "file", c.config_path));
}

/* A start that fails after the loop and its signal handles exist: release
 * them (and what else was started) so that the exit leaks nothing. */
static int fail_start(server_t *s) {
  uv_close((uv_handle_t *)&s->sig_term, NULL);
  uv_close((uv_handle_t *)&s->sig_int, NULL);
  uv_close((uv_handle_t *)&s->sig_hup, NULL);
  if (s->retired.data != NULL) /* initialised */
    uv_close((uv_handle_t *)&s->retired, NULL);
  uv_run(&s->loop, UV_RUN_DEFAULT);
  uv_loop_close(&s->loop);
  hr_exp_counts_stop();
  hr_itemsets_stop();
  if (s->reg != NULL)
    hr_registry_free(s->reg);
  hr_tz_cache_clear();
  return 1;
}

int main(int argc, char **argv) {
  server_t s;
  hr_error_t err = {0};
  int exit_now;

  if (argc >= 2 && strcmp(argv[1], "hash-key") == 0)
    return cmd_hash_key(argc, argv);
  if (argc >= 2 && strcmp(argv[1], "token") == 0)
    return cmd_token(argc, argv);
  if (argc >= 2 && strcmp(argv[1], "healthcheck") == 0)
    return cmd_healthcheck(argc, argv);
  memset(&s, 0, sizeof(s));
  s.argc = argc;
  s.argv = argv;
  if (load_config(argc, argv, &s.cfg, &err, &exit_now) != 0) {
    hr_log(HR_LOG_ERROR, "config_invalid",
           json_pack("{s:s,s:s}", "field", err.field, "reason", err.msg));
    fprintf(stderr, "hyperrec: %s\n", err.msg);
    return 2;
  }
  if (exit_now >= 0)
    return exit_now;
  apply_log_level(&s.cfg);
  warn_config(&s.cfg);
  /* Requests run in parallel on the HTTP workers: each BLAS call must stay
   * on its own thread rather than fan out and contend with the others. */
  openblas_set_num_threads(1);
  /* A version's big tables (ids, norms, scratch) come and go with swaps:
   * keep them in their own mappings, returned whole when freed, instead of
   * letting glibc's sliding threshold move them onto the heap, where freed
   * pages linger and add to the peak of the next swap. */
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);
  /* Signals first: a SIGTERM that arrives as soon as "listening" is logged
   * (a supervisor, a test) must take the graceful path, not the default
   * action. libuv queues it until the loop runs. */
  uv_loop_init(&s.loop);
  uv_signal_init(&s.loop, &s.sig_term);
  uv_signal_init(&s.loop, &s.sig_int);
  uv_signal_init(&s.loop, &s.sig_hup);
  s.sig_term.data = s.sig_int.data = s.sig_hup.data = &s;
  uv_signal_start(&s.sig_term, on_stop, SIGTERM);
  uv_signal_start(&s.sig_int, on_stop, SIGINT);
  uv_signal_start(&s.sig_hup, on_hup, SIGHUP);
  hr_ctxstore_configure(&s.cfg);
  if (hr_exp_counts_start(&s.cfg) != 0) {
    hr_log(HR_LOG_ERROR, "out_of_memory", NULL);
    return fail_start(&s);
  }
  if (hr_itemsets_start(&s.cfg) != 0) {
    hr_log(HR_LOG_ERROR, "out_of_memory", NULL);
    return fail_start(&s);
  }
  s.reg = hr_registry_new(&s.cfg);
  if (s.reg == NULL)
    return fail_start(&s);
  uv_async_init(&s.loop, &s.retired, on_retired);
  s.retired.data = &s;
  hr_registry_on_retire(s.reg, on_retire, &s.retired);
  if (hr_registry_scan(s.reg) == 0)
    hr_log(HR_LOG_WARN, "no_model",
           json_pack("{s:s,s:s}", "models_dir", s.cfg.models_dir, "msg",
                     "no valid model version yet; /recommend answers 503 "
                     "until one appears"));
  s.http = hr_http_start(&s.cfg, s.reg, &err);
  if (s.http == NULL) {
    hr_log(HR_LOG_ERROR, "listen_failed",
           json_pack("{s:s}", "reason", err.msg[0] ? err.msg : "out of memory"));
    return fail_start(&s);
  }
  hr_log(HR_LOG_INFO, "listening",
         json_pack("{s:s,s:i,s:s,s:i,s:s}", "host", s.cfg.listen_host, "port",
                   hr_http_port(s.http), "redis", s.cfg.redis.host,
                   "redis_port", s.cfg.redis.port, "version", HR_VERSION));

  uv_timer_init(&s.loop, &s.poll);
  s.poll.data = &s;
  uv_timer_start(&s.poll, on_poll, (uint64_t)s.cfg.models_poll_ms,
                 (uint64_t)s.cfg.models_poll_ms);
  watch_slots(&s);
  signal(SIGPIPE, SIG_IGN);

  uv_run(&s.loop, UV_RUN_DEFAULT); /* returns after on_stop closed all */
  uv_loop_close(&s.loop);
  /* after the drain: every impression served is in the last batch */
  hr_exp_counts_stop();
  hr_registry_free(s.reg);
  hr_tz_cache_clear();
  hr_log(HR_LOG_INFO, "stopped", NULL);
  return 0;
}
