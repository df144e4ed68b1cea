/* hyperrec_bench.c -- bin/hyperrec-bench: load generators and measurements.
 *
 *   hyperrec-bench http --target HOST:PORT [--path /recommend] [--requests N]
 *                  [--concurrency C] [--users U] [--k K]
 *                  [--user-prefix P] [--user-width W] [--extra JSON]
 *
 * `http` sends N POST requests over C keep-alive connections (one thread
 * each) with bodies {"user_id":"<P><1..U, zero-padded to W>","k":K} (plus
 * the members of --extra, e.g. '"filters":{"category":"news"}') and prints latency
 * percentiles and throughput as one JSON line. It talks to the address it is
 * given (the bench scripts give 127.0.0.1) and stops after N requests.
 *
 *   hyperrec-bench ann --base F --queries F --gt F [--ef LIST] [--threads N]
 *                  [--M 16] [--efc 200] [--index PATH] [--rerank] [--json]
 *
 * `ann` reads VEC1 base/query files and a GT01 ground truth (formats in
 * ../shared/bench/README.md), builds the HNSW index with N threads (or opens
 * PATH when it exists; builds and saves it there otherwise), then for each ef
 * searches every query alone on one thread and prints one JSON line:
 * recall@10, queries/s, build seconds, index bytes. --rerank attaches the
 * float base rows (hr_ann_set_rerank_vectors) for exact final scores.
 *
 *   hyperrec-bench recall --models DIR --redis HOST:PORT ...
 *
 * `recall` (recall.c): recall@k of the served retrieval against exact
 * scoring, through the server's pipeline, for the users of a live Redis. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "hr/ann.h"

typedef struct {
  struct sockaddr_in addr;
  const char *path;
  int n;           /* requests for this thread */
  int users, k;
  const char *prefix; /* user ids are <prefix><number zero-padded to width> */
  const char *extra;  /* more body members, "" for none */
  const char *key;    /* API key sent as Authorization: Bearer, or NULL */
  int width;
  unsigned seed;
  double *lat;     /* seconds, n entries */
  double *start;   /* wall-clock start of each (unix s), or NULL */
  int errors;
  int non200;
} worker_t;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int dial(const struct sockaddr_in *a) {
  int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  struct timeval tv = {5, 0};
  if (fd < 0)
    return -1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (connect(fd, (const struct sockaddr *)a, sizeof(*a)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* Reads one response; returns its status or -1. */
static int read_response(int fd, char *buf, size_t cap) {
  size_t len = 0;
  for (;;) {
    ssize_t r = read(fd, buf + len, cap - 1 - len);
    if (r <= 0)
      return -1;
    len += (size_t)r;
    buf[len] = '\0';
    char *end = strstr(buf, "\r\n\r\n");
    if (end == NULL) {
      if (len >= cap - 1)
        return -1;
      continue;
    }
    char *cl = strcasestr(buf, "\r\nContent-Length:");
    size_t body = cl ? strtoul(cl + 17, NULL, 10) : 0;
    size_t need = (size_t)(end + 4 - buf) + body;
    if (need >= cap)
      return -1;
    while (len < need) {
      r = read(fd, buf + len, need - len);
      if (r <= 0)
        return -1;
      len += (size_t)r;
    }
    return atoi(buf + 9);
  }
}

static void *run(void *arg) {
  worker_t *w = arg;
  char req[2048], body[1024], resp[1 << 16];
  int fd = dial(&w->addr);

  for (int i = 0; i < w->n; i++) {
    int bl, rl, st;
    double t0;
    w->seed = w->seed * 1103515245u + 12345u;
    bl = snprintf(body, sizeof(body), "{\"user_id\":\"%s%0*u\",\"k\":%d%s%s}",
                  w->prefix, w->width, 1 + (w->seed >> 8) % (unsigned)w->users,
                  w->k, *w->extra ? "," : "", w->extra);
    rl = snprintf(req, sizeof(req),
                  "POST %s HTTP/1.1\r\nHost: bench\r\n%s%s%sContent-Type: "
                  "application/json\r\nContent-Length: %d\r\n\r\n%s",
                  w->path, w->key ? "Authorization: Bearer " : "",
                  w->key ? w->key : "", w->key ? "\r\n" : "", bl, body);
    t0 = now_s();
    if (w->start != NULL) {
      struct timespec ts;
      clock_gettime(CLOCK_REALTIME, &ts);
      w->start[i] = (double)ts.tv_sec + ts.tv_nsec / 1e9;
    }
    if (fd < 0 || write(fd, req, (size_t)rl) != rl ||
        (st = read_response(fd, resp, sizeof(resp))) < 0) {
      w->errors++;
      if (fd >= 0)
        close(fd);
      fd = dial(&w->addr);
      w->lat[i] = now_s() - t0;
      continue;
    }
    w->lat[i] = now_s() - t0;
    if (st != 200)
      w->non200++;
  }
  if (fd >= 0)
    close(fd);
  return NULL;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static int cmd_http(int argc, char **argv) {
  const char *target = "127.0.0.1:8080", *path = "/recommend";
  const char *prefix = "", *extra = "", *trace = NULL;
  int requests = 20000, conc = 2, users = 1000, k = 10, width = 0;
  char host[64];
  int port;

  for (int i = 2; i < argc; i++) {
    if (i + 1 >= argc)
      goto usage;
    if (strcmp(argv[i], "--target") == 0)
      target = argv[++i];
    else if (strcmp(argv[i], "--path") == 0)
      path = argv[++i];
    else if (strcmp(argv[i], "--requests") == 0)
      requests = atoi(argv[++i]);
    else if (strcmp(argv[i], "--concurrency") == 0)
      conc = atoi(argv[++i]);
    else if (strcmp(argv[i], "--users") == 0)
      users = atoi(argv[++i]);
    else if (strcmp(argv[i], "--user-prefix") == 0)
      prefix = argv[++i];
    else if (strcmp(argv[i], "--user-width") == 0)
      width = atoi(argv[++i]);
    else if (strcmp(argv[i], "--k") == 0)
      k = atoi(argv[++i]);
    else if (strcmp(argv[i], "--extra") == 0)
      extra = argv[++i];
    else if (strcmp(argv[i], "--trace") == 0)
      trace = argv[++i];
    else
      goto usage;
  }
  if (requests < 1 || requests > 10000000 || conc < 1 || conc > 256 ||
      users < 1 || k < 1 || width < 0 || width > 12 || strlen(prefix) > 32 || strlen(extra) > 800 || sscanf(target, "%63[^:]:%d", host, &port) != 2)
    goto usage;
  worker_t *ws = calloc((size_t)conc, sizeof(worker_t));
  pthread_t *th = calloc((size_t)conc, sizeof(pthread_t));
  double *lat = calloc((size_t)requests, sizeof(double));
  double *start = trace ? calloc((size_t)requests, sizeof(double)) : NULL;
  if (!ws || !th || !lat || (trace && !start))
    return 1;
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, host, &a.sin_addr) != 1)
    goto usage;
  int off = 0;
  for (int t = 0; t < conc; t++) {
    ws[t].addr = a;
    ws[t].path = path;
    ws[t].n = requests / conc + (t < requests % conc);
    ws[t].users = users;
    ws[t].k = k;
    ws[t].prefix = prefix;
    ws[t].extra = extra;
    ws[t].key = getenv("HR_BENCH_KEY"); /* bench/lib.sh */
    ws[t].width = width;
    ws[t].seed = 17u + (unsigned)t * 7919u;
    ws[t].lat = lat + off;
    ws[t].start = start ? start + off : NULL;
    off += ws[t].n;
  }
  double t0 = now_s();
  for (int t = 0; t < conc; t++)
    pthread_create(&th[t], NULL, run, &ws[t]);
  int errors = 0, non200 = 0;
  for (int t = 0; t < conc; t++) {
    pthread_join(th[t], NULL);
    errors += ws[t].errors;
    non200 += ws[t].non200;
  }
  double secs = now_s() - t0;
  if (trace != NULL) { /* one line per request: start (unix s), latency */
    FILE *f = fopen(trace, "w");
    if (f == NULL) {
      fprintf(stderr, "%s: %s\n", trace, strerror(errno));
      return 1;
    }
    for (int i = 0; i < requests; i++)
      fprintf(f, "%.6f %.3f\n", start[i], lat[i] * 1e3);
    fclose(f);
    free(start);
  }
  qsort(lat, (size_t)requests, sizeof(double), cmp_d);
#define PCT(p) (lat[(size_t)((p) * (requests - 1))] * 1e3)
  printf("{\"bench\":\"http\",\"path\":\"%s\",\"requests\":%d,\"concurrency\":%d,"
         "\"seconds\":%.3f,\"rps\":%.1f,\"p50_ms\":%.3f,\"p90_ms\":%.3f,"
         "\"p99_ms\":%.3f,\"max_ms\":%.3f,\"errors\":%d,\"non_200\":%d}\n",
         path, requests, conc, secs, requests / secs, PCT(0.50), PCT(0.90),
         PCT(0.99), lat[requests - 1] * 1e3, errors, non200);
  free(ws);
  free(th);
  free(lat);
  return errors || non200 ? 1 : 0;
usage:
  fprintf(stderr, "usage: hyperrec-bench http --target HOST:PORT [--path P] "
                  "[--requests N] [--concurrency C] [--users U] [--k K]\n"
                  "       [--user-prefix P] [--user-width W] [--extra JSON]"
                  " [--trace FILE]\n");
  return 2;
}

/* ------------------------------------------------------------------ ann */

/* Reads a "VEC1"/"GT01" file: magic, uint32 rows, uint32 cols, rows*cols
 * 4-byte values; the file size must match the header exactly. */
static void *read_mat(const char *path, const char *magic, uint32_t *rows,
                      uint32_t *cols) {
  FILE *f = fopen(path, "rb");
  char m[4];
  uint32_t hdr[2];
  void *buf = NULL;
  long size;
  if (f == NULL) {
    fprintf(stderr, "%s: %s\n", path, strerror(errno));
    return NULL;
  }
  if (fread(m, 1, 4, f) != 4 || memcmp(m, magic, 4) != 0 ||
      fread(hdr, 4, 2, f) != 2 || hdr[0] == 0 || hdr[1] == 0 ||
      hdr[1] > 4096 || fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 ||
      (uint64_t)size != 12 + (uint64_t)hdr[0] * hdr[1] * 4) {
    fprintf(stderr, "%s: not a valid %.4s file (magic, sizes)\n", path, magic);
    fclose(f);
    return NULL;
  }
  buf = malloc((size_t)hdr[0] * hdr[1] * 4);
  if (buf == NULL || fseek(f, 12, SEEK_SET) != 0 ||
      fread(buf, 4, (size_t)hdr[0] * hdr[1], f) != (size_t)hdr[0] * hdr[1]) {
    fprintf(stderr, "%s: read failed\n", path);
    free(buf);
    fclose(f);
    return NULL;
  }
  fclose(f);
  *rows = hdr[0];
  *cols = hdr[1];
  return buf;
}

static int cmd_ann(int argc, char **argv) {
  const char *base = NULL, *queries = NULL, *gtp = NULL, *index = NULL;
  const char *eflist = "10,20,40,80,160,320";
  hr_ann_params_t p;
  hr_error_t err = {0};
  uint32_t n, dim, nq, qdim, ng, kg;
  float *x = NULL, *q = NULL;
  int32_t *gt = NULL;
  hr_ann_t *a = NULL;
  hr_ann_scratch_t *s = NULL;
  double build_s = 0, load_s = 0;
  int rc = 1, loaded = 0, rerank = 0;

  hr_ann_params_default(&p);
  for (int i = 2; i < argc; i++) {
    if (strcmp(argv[i], "--json") == 0)
      continue; /* JSON lines are the only output format */
    if (strcmp(argv[i], "--rerank") == 0) {
      rerank = 1;
      continue;
    }
    if (i + 1 >= argc)
      goto usage;
    if (strcmp(argv[i], "--base") == 0)
      base = argv[++i];
    else if (strcmp(argv[i], "--queries") == 0)
      queries = argv[++i];
    else if (strcmp(argv[i], "--gt") == 0)
      gtp = argv[++i];
    else if (strcmp(argv[i], "--ef") == 0)
      eflist = argv[++i];
    else if (strcmp(argv[i], "--threads") == 0)
      p.threads = atoi(argv[++i]);
    else if (strcmp(argv[i], "--M") == 0)
      p.M = atoi(argv[++i]);
    else if (strcmp(argv[i], "--efc") == 0)
      p.ef_construction = atoi(argv[++i]);
    else if (strcmp(argv[i], "--index") == 0)
      index = argv[++i];
    else
      goto usage;
  }
  if (!base || !queries || !gtp || p.threads < 1 || p.M < 2 ||
      p.ef_construction < 1)
    goto usage;
  if ((x = read_mat(base, "VEC1", &n, &dim)) == NULL ||
      (q = read_mat(queries, "VEC1", &nq, &qdim)) == NULL ||
      (gt = read_mat(gtp, "GT01", &ng, &kg)) == NULL)
    goto out;
  if (qdim != dim || ng < nq || kg < 10) {
    fprintf(stderr, "ann: files do not match (dim %u/%u, gt %ux%u for %u "
                    "queries; need k >= 10)\n", dim, qdim, ng, kg, nq);
    goto out;
  }
  for (size_t i = 0; i < (size_t)ng * kg; i++)
    if (gt[i] < 0 || (uint32_t)gt[i] >= n) {
      fprintf(stderr, "%s: ground-truth id %d out of range\n", gtp, gt[i]);
      goto out;
    }
  if (index && access(index, F_OK) == 0) {
    double t0 = now_s();
    if ((a = hr_ann_open(index, &err)) == NULL) {
      fprintf(stderr, "ann: %s\n", err.msg);
      goto out;
    }
    load_s = now_s() - t0;
    loaded = 1;
    if (hr_ann_size(a) != n || hr_ann_dim(a) != (int)dim) {
      fprintf(stderr, "ann: %s does not match %s\n", index, base);
      goto out;
    }
  } else {
    double t0 = now_s();
    if ((a = hr_ann_build(x, n, (int)dim, &p, &err)) == NULL) {
      fprintf(stderr, "ann: build: %s\n", err.msg);
      goto out;
    }
    build_s = now_s() - t0;
    if (index && hr_ann_save(a, index, &err) != 0) {
      fprintf(stderr, "ann: %s\n", err.msg);
      goto out;
    }
  }
  if (rerank)
    hr_ann_set_rerank_vectors(a, x);
  if ((s = hr_ann_scratch_new(a)) == NULL)
    goto out;
  uint32_t *found = malloc((size_t)nq * 10 * sizeof(uint32_t));
  if (found == NULL)
    goto out;
  for (const char *e = eflist; *e;) {
    int ef = atoi(e);
    size_t hits = 0;
    double t0, dt;
    if (ef < 1) {
      free(found);
      goto usage;
    }
    memset(found, 0xff, (size_t)nq * 10 * sizeof(uint32_t));
    t0 = now_s();
    for (uint32_t i = 0; i < nq; i++)
      hr_ann_search(a, s, q + (size_t)i * dim, 10, ef, NULL, 0,
                    found + (size_t)i * 10, NULL);
    dt = now_s() - t0;
    for (uint32_t i = 0; i < nq; i++) /* outside the timed loop */
      for (int j = 0; j < 10; j++)
        for (int t = 0; t < 10; t++)
          if (found[(size_t)i * 10 + j] == (uint32_t)gt[(size_t)i * kg + t]) {
            hits++;
            break;
          }
    printf("{\"method\":\"hyperrec\",\"ef\":%d,\"recall@10\":%.4f,\"qps\":%.1f,"
           "\"build_s\":%.2f,\"load_s\":%.3f,\"loaded\":%s,\"index_bytes\":%zu,"
           "\"n\":%u,\"dim\":%u,\"threads\":%d,\"kernel\":\"%s\",\"rerank\":%s}\n",
           ef, (double)hits / (10.0 * nq), nq / dt, build_s, load_s,
           loaded ? "true" : "false", hr_ann_memory_bytes(a), n, dim,
           hr_ann_params(a)->threads, hr_ann_kernel_name(),
           rerank ? "true" : "false");
    fflush(stdout);
    while (*e && *e != ',')
      e++;
    if (*e == ',')
      e++;
  }
  free(found);
  rc = 0;
out:
  hr_ann_scratch_free(s);
  hr_ann_free(a);
  free(x);
  free(q);
  free(gt);
  return rc;
usage:
  fprintf(stderr, "usage: hyperrec-bench ann --base F --queries F --gt F "
                  "[--ef LIST] [--threads N] [--M 16] [--efc 200]\n"
                  "       [--index PATH] [--rerank] [--json]\n");
  rc = 2;
  goto out;
}

int hr_bench_recall(int argc, char **argv); /* recall.c */

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "recall") == 0)
    return hr_bench_recall(argc, argv);
  if (argc >= 2 && strcmp(argv[1], "http") == 0)
    return cmd_http(argc, argv);
  if (argc >= 2 && strcmp(argv[1], "ann") == 0)
    return cmd_ann(argc, argv);
  fprintf(stderr, "usage: hyperrec-bench http ... | ann ... | recall ...\n");
  return 2;
}
