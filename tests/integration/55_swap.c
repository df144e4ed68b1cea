/* 55_swap.c -- hot-swap under load: the trainer writes 20 new versions of a
 * 100,000-item model with its index while a bounded client keeps
 * /recommend busy over keep-alive connections. Every answer must be 200,
 * each connection's model.version must never go backwards, and the
 * server's peak resident memory must stay under 2.2 versions: above what
 * it used with no model at all, measured against one version's footprint
 * under load (its files' size is printed too). Talks to 127.0.0.1 only. */
#include "lib/env.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define N_VERSIONS 20
#define MIN_LOAD_S 60
#define N_CLIENTS 2

typedef struct {
  int port;
  atomic_int *stop;
  long requests, non200, errors, backwards;
  long long last_version, first_version;
  int id;
} client_t;

static int dial(int port) {
  struct sockaddr_in a = {0};
  struct timeval tv = {10, 0};
  int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  if (fd < 0)
    return -1;
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* One response into buf; its status, or -1. */
static int read_one(int fd, char *buf, size_t cap) {
  size_t len = 0;
  for (;;) {
    ssize_t r = read(fd, buf + len, cap - 1 - len);
    char *end, *cl;
    if (r <= 0)
      return -1;
    len += (size_t)r;
    buf[len] = '\0';
    if ((end = strstr(buf, "\r\n\r\n")) == NULL) {
      if (len >= cap - 1)
        return -1;
      continue;
    }
    cl = strcasestr(buf, "\r\nContent-Length:");
    size_t need = (size_t)(end + 4 - buf) + (cl ? strtoul(cl + 17, NULL, 10) : 0);
    if (need >= cap)
      return -1;
    while (len < need) {
      if ((r = read(fd, buf + len, need - len)) <= 0)
        return -1;
      len += (size_t)r;
    }
    buf[len] = '\0';
    return atoi(buf + 9);
  }
}

static void *client(void *arg) {
  client_t *c = arg;
  char req[512], resp[1 << 15];
  unsigned seed = 7u + (unsigned)c->id * 7919u;
  int fd = dial(c->port);

  while (!atomic_load(c->stop)) {
    char body[128];
    int bl, rl, st;
    seed = seed * 1103515245u + 12345u;
    bl = snprintf(body, sizeof(body), "{\"user_id\":\"u%05u\",\"k\":10}",
                  1 + (seed >> 8) % 5000u);
    rl = snprintf(req, sizeof(req),
                  "POST /recommend HTTP/1.1\r\nHost: t\r\n" HRT_AUTH_HEADER
                  "Content-Type: application/json\r\nContent-Length: "
                  "%d\r\n\r\n%s",
                  bl, body);
    if (fd < 0 || write(fd, req, (size_t)rl) != rl ||
        (st = read_one(fd, resp, sizeof(resp))) < 0) {
      c->errors++;
      if (fd >= 0)
        close(fd);
      fd = dial(c->port);
      continue;
    }
    c->requests++;
    if (st != 200) {
      c->non200++;
      continue;
    }
    const char *m = strstr(resp, "\"model\":");
    const char *v = m ? strstr(m, "\"version\":") : NULL;
    long long ver = v ? atoll(v + 10) : -1;
    if (ver < c->last_version)
      c->backwards++;
    if (c->first_version == 0)
      c->first_version = ver;
    c->last_version = ver;
  }
  if (fd >= 0)
    close(fd);
  return NULL;
}

/* VmRSS and VmHWM of pid, in KiB (-1 when unreadable). */
static void rss_kib(pid_t pid, long *rss, long *hwm) {
  char path[64], line[256];
  FILE *f;
  *rss = *hwm = -1;
  snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
  if ((f = fopen(path, "r")) == NULL)
    return;
  while (fgets(line, sizeof(line), f)) {
    if (strncmp(line, "VmRSS:", 6) == 0)
      *rss = atol(line + 6);
    else if (strncmp(line, "VmHWM:", 6) == 0)
      *hwm = atol(line + 6);
  }
  fclose(f);
}

static double mono_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + t.tv_nsec / 1e9;
}

static int fit(const char *data, const char *slot, int seed,
               const char *log) {
  char bin[PATH_MAX], items[PATH_MAX], events[PATH_MAX], s[16];
  hrt_fmt(events, sizeof(events), "%s/events.csv", data);
  hrt_fmt(items, sizeof(items), "%s/items.csv", data);
  hrt_fmt(s, sizeof(s), "%d", seed);
  const char *argv[] = {hrt_bin_path("hyperrec-train", bin, sizeof(bin)),
                        "fit", "--data", events, "--items", items, "--out",
                        slot, "--iters", "1", "--factors", "32", "--ann-m",
                        "8", "--ann-efc", "40", "--seed", s, "--keep", "3",
                        "--quiet", NULL};
  return hrt_run(argv, log, 300000);
}

HR_TEST_T(swap_20_versions_of_100k_items_under_load, 900) {
  HRT_ENV(e);
  hrt_env_opts_t o = {.config_json = "{\"models_poll_ms\":1000}",
                      .no_model = 1};
  char bin[PATH_MAX], data[PATH_MAX], slot[PATH_MAX], log[PATH_MAX];
  atomic_int stop = 0;
  client_t cl[N_CLIENTS];
  pthread_t th[N_CLIENTS];
  long rss0, hwm, rss, size_bytes;
  long long v1, vlast;
  double t0, t_fits;
  int ok, st;
  json_t *j;

  ASSERT_EQ(hrt_env_start(&e, &o), 0);
  rss_kib(e.srv.pid, &rss0, &hwm);
  ASSERT_GT(rss0, 0);
  hrt_fmt(data, sizeof(data), "%s/swapdata", hr_test_tmpdir());
  hrt_fmt(slot, sizeof(slot), "%s/default", e.models);
  hrt_fmt(log, sizeof(log), "%s/swap-fit.log", hr_test_tmpdir());
  {
    const char *gen[] = {hrt_bin_path("hyperrec-train", bin, sizeof(bin)),
                         "gen", "--out", data, "--items", "100000",
                         "--users", "5000", "--seed", "3", NULL};
    ASSERT_EQ(hrt_run(gen, log, 60000), 0);
  }
  ASSERT_EQ(fit(data, slot, 1, log), 0);
  HRT_POLL(ok, 30000, (j = hrt_get(&e, "/models", &st),
                       v1 = hrt_jint(j, "slots[0].version"),
                       size_bytes = (long)hrt_jint(j, "slots[0].size_bytes"),
                       json_decref(j), v1 > 0));
  ASSERT_MSG(ok, "the first version was not served");
  j = hrt_get(&e, "/models", &st);
  ASSERT_EQ(hrt_jint(j, "slots[0].n_items"), 100000);
  json_decref(j);
  long rss1, hwm1;
  rss_kib(e.srv.pid, &rss1, &hwm1);
  fprintf(stderr, "  swap: one version loaded: RSS %ld KiB, peak %ld KiB\n",
          rss1, hwm1);

  for (int c = 0; c < N_CLIENTS; c++) {
    cl[c] = (client_t){.port = e.srv.port, .stop = &stop, .id = c};
    ASSERT_EQ(pthread_create(&th[c], NULL, client, &cl[c]), 0);
  }
  /* One version's footprint: resident memory above the empty server's,
   * under load (the index and the item table's pages in use). */
  hrt_sleep_ms(3000);
  long rss_one, hwm_one;
  rss_kib(e.srv.pid, &rss_one, &hwm_one);
  t0 = mono_s();
  for (int k = 0; k < N_VERSIONS; k++)
    ASSERT_MSG(fit(data, slot, 2 + k, log) == 0, "fit %d failed", k + 2);
  t_fits = mono_s() - t0;
  /* the last version must be served, and the load lasts at least 60 s */
  HRT_POLL(ok, 30000, (j = hrt_get(&e, "/models", &st),
                       vlast = hrt_jint(j, "slots[0].version"),
                       json_decref(j), vlast > v1 + N_VERSIONS - 1));
  while (mono_s() - t0 < MIN_LOAD_S)
    hrt_sleep_ms(200);
  atomic_store(&stop, 1);
  long total = 0, non200 = 0, errors = 0, backwards = 0;
  for (int c = 0; c < N_CLIENTS; c++) {
    pthread_join(th[c], NULL);
    total += cl[c].requests;
    non200 += cl[c].non200;
    errors += cl[c].errors;
    backwards += cl[c].backwards;
  }
  double secs = mono_s() - t0;
  rss_kib(e.srv.pid, &rss, &hwm);
  fprintf(stderr,
          "  swap: %d versions in %.1f s, %ld requests in %.1f s (%.0f/s), "
          "non-200 %ld, errors %ld, backwards %ld; version %lld -> %lld; "
          "RSS: no model %ld KiB, one version under load %ld KiB, peak "
          "%ld KiB; versions in memory at the peak: %.2f of the footprint "
          "under load, %.2f of the files (%ld KiB)\n",
          N_VERSIONS, t_fits, total, secs, total / secs, non200, errors,
          backwards, v1, vlast, rss0, rss_one, hwm,
          (double)(hwm - rss0) / (double)(rss_one - rss0),
          (double)(hwm - rss0) / (double)(size_bytes / 1024),
          size_bytes / 1024);
  ASSERT_MSG(ok, "the last version was not served (%lld)", vlast);
  ASSERT_GT(total, 1000);
  ASSERT_EQ(non200, 0);
  ASSERT_EQ(errors, 0);
  ASSERT_EQ(backwards, 0);
  for (int c = 0; c < N_CLIENTS; c++)
    ASSERT_MSG(cl[c].last_version > cl[c].first_version,
               "client %d saw no swap", c);
#if defined(__SANITIZE_ADDRESS__)
  /* AddressSanitizer keeps freed blocks in a quarantine (256 MiB) and its
   * allocator keeps freed pages: the peak measures the sanitizer here
   * (commit 623d0ca peaked at 2.34 versions under it as well, and failed
   * this bound). The plain build's run checks it. */
  fprintf(stderr, "  swap: RSS bound not checked under AddressSanitizer\n");
#else
  ASSERT_MSG((double)(hwm - rss0) < 2.2 * (double)(rss_one - rss0),
             "peak %ld KiB over a base of %ld KiB: %.2f versions", hwm, rss0,
             (double)(hwm - rss0) / (double)(rss_one - rss0));
#endif
  ASSERT_EQ(hrt_server_log_count(&e.srv, "\"model_refused\"", NULL), 0);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}
