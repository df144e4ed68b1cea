/* load.c -- build/hr-load: a steady HTTP/1.1 load for the replica test.
 *
 *   hr-load --port P [--rate R] --seconds S [--conns C] --users FILE
 *           --items FILE [--event-share F] [--acked FILE] [--id-prefix S]
 *           [--header "Name: value"]
 *
 * C keep-alive connections to 127.0.0.1:P. Requests leave on an open-loop
 * schedule of R per second (R 0: as fast as the connections allow, to
 * measure a capacity): POST /recommend {"user_id", "k": 10}, or with
 * probability F a POST /event click whose event_id is PREFIX-N. A request
 * that finds no free connection waits for one (backlog_max: the most
 * requests the schedule was ever behind).
 *
 * Every request ends as a status, a connection error (refused, reset or
 * closed before a whole answer) or a timeout (5 s); none is retried here,
 * so a failure the load balancer did not absorb is counted. The event ids
 * answered 2xx go to --acked, one per line. The summary is one JSON line
 * on stdout. Only 127.0.0.1 is ever contacted. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 256
#define BUF 65536
#define TIMEOUT_NS 5000000000LL

enum { REC, EVT, N_KIND };
static const char *const kind_name[N_KIND] = {"recommend", "event"};

typedef struct {
  int fd, busy, kind;
  long long t0;      /* when the request was sent */
  char id[64];       /* the event's id */
  char in[BUF];
  size_t got;
} conn_t;

typedef struct {
  long long sent, ok, non2xx, conn_err, timeout;
  long long status[600];
  double *lat_ms;
  size_t n_lat, cap_lat;
} stats_t;

static struct {
  int port, rate, conns, seconds;
  double event_share;
  const char *acked_path, *prefix, *header;
  char **users, **items;
  size_t n_users, n_items;
} opt = {0, 0, 16, 0, 0.2, NULL, "ev", NULL, NULL, NULL, 0, 0};

static stats_t st[N_KIND];
static FILE *acked;
static long long backlog_max, seq;
static int ep;

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static char **read_lines(const char *path, size_t *n) {
  FILE *f = fopen(path, "r");
  char line[256], **v = NULL;
  size_t cap = 0;
  *n = 0;
  if (f == NULL) {
    perror(path);
    exit(2);
  }
  while (fgets(line, sizeof(line), f)) {
    line[strcspn(line, "\r\n")] = '\0';
    if (line[0] == '\0' || strchr(line, '"') || strchr(line, '\\'))
      continue;
    if (*n == cap) {
      cap = cap ? 2 * cap : 1024;
      v = realloc(v, cap * sizeof(*v));
      if (v == NULL)
        exit(2);
    }
    v[(*n)++] = strdup(line);
  }
  fclose(f);
  if (*n == 0) {
    fprintf(stderr, "hr-load: %s: no ids\n", path);
    exit(2);
  }
  return v;
}

static int dial(conn_t *c) {
  struct sockaddr_in a = {0};
  int one = 1;
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->fd < 0)
    return -1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)opt.port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(c->fd, (struct sockaddr *)&a, sizeof(a)) != 0 &&
      errno != EINPROGRESS) {
    close(c->fd);
    c->fd = -1;
    return -1;
  }
  struct epoll_event e = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
  epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &e);
  return 0;
}

static void hangup(conn_t *c) {
  if (c->fd >= 0) {
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
  }
  c->fd = -1;
  c->busy = 0;
  c->got = 0;
}

static void record_latency(stats_t *s, double ms) {
  if (s->n_lat == s->cap_lat) {
    s->cap_lat = s->cap_lat ? 2 * s->cap_lat : 65536;
    s->lat_ms = realloc(s->lat_ms, s->cap_lat * sizeof(double));
    if (s->lat_ms == NULL)
      exit(2);
  }
  s->lat_ms[s->n_lat++] = ms;
}

/* The request on c failed without an answer. */
static void failed(conn_t *c, int timed_out) {
  if (timed_out)
    st[c->kind].timeout++;
  else
    st[c->kind].conn_err++;
  hangup(c);
}

static int send_request(conn_t *c) {
  char body[512], req[1024];
  const char *user = opt.users[(size_t)rand() % opt.n_users];
  int n;

  c->kind = (double)rand() / RAND_MAX < opt.event_share ? EVT : REC;
  if (c->kind == EVT) {
    snprintf(c->id, sizeof(c->id), "%s-%lld", opt.prefix, ++seq);
    n = snprintf(body, sizeof(body),
                 "{\"user_id\":\"%s\",\"type\":\"click\",\"item_id\":\"%s\","
                 "\"event_id\":\"%s\"}",
                 user, opt.items[(size_t)rand() % opt.n_items], c->id);
  } else
    n = snprintf(body, sizeof(body), "{\"user_id\":\"%s\",\"k\":10}", user);
  n = snprintf(req, sizeof(req),
               "POST /%s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               "Content-Type: application/json\r\n%s%sContent-Length: %d\r\n"
               "\r\n%s",
               c->kind == EVT ? "event" : "recommend",
               opt.header ? opt.header : "", opt.header ? "\r\n" : "", n,
               body);
  st[c->kind].sent++;
  c->t0 = now_ns();
  c->busy = 1;
  c->got = 0;
  if (c->fd < 0 && dial(c) != 0) {
    failed(c, 0);
    return -1;
  }
  /* A fresh non-blocking connect may not be writable yet: wait for it. */
  for (int tries = 0;; tries++) {
    ssize_t w = send(c->fd, req, (size_t)n, MSG_NOSIGNAL);
    if (w == n)
      return 0;
    if (w < 0 && (errno == EAGAIN || errno == ENOTCONN) && tries < 2000) {
      struct timespec d = {0, 500000};
      nanosleep(&d, NULL);
      continue;
    }
    failed(c, 0);
    return -1;
  }
}

/* A whole response in c->in: its length, or 0 when more is needed. */
static size_t response_len(conn_t *c, int *status, int *close_after) {
  char *end = memmem(c->in, c->got, "\r\n\r\n", 4), *p;
  long cl = 0;
  if (end == NULL)
    return 0;
  *status = atoi(c->in + 9);
  *close_after = 0;
  for (p = c->in; p < end; p++) {
    if (strncasecmp(p, "\r\ncontent-length:", 17) == 0)
      cl = strtol(p + 17, NULL, 10);
    if (strncasecmp(p, "\r\nconnection: close", 19) == 0)
      *close_after = 1;
  }
  size_t total = (size_t)(end + 4 - c->in) + (size_t)cl;
  return c->got >= total ? total : 0;
}

static void readable(conn_t *c) {
  int status, close_after;
  size_t len;
  if (c->fd < 0) /* closed earlier in this round of events */
    return;
  for (;;) {
    ssize_t r = recv(c->fd, c->in + c->got, sizeof(c->in) - 1 - c->got, 0);
    if (r > 0) {
      c->got += (size_t)r;
      if (c->got >= sizeof(c->in) - 1) {
        failed(c, 0);
        return;
      }
      continue;
    }
    if (r < 0 && errno == EAGAIN)
      break;
    /* EOF or error: an answer cut short, or an idle connection closed */
    if (c->busy && (len = response_len(c, &status, &close_after)) == 0)
      failed(c, 0);
    else if (!c->busy)
      hangup(c);
    else
      break;
    return;
  }
  if (!c->busy || (len = response_len(c, &status, &close_after)) == 0)
    return;
  stats_t *s = &st[c->kind];
  if (status >= 100 && status < 600)
    s->status[status]++;
  if (status >= 200 && status < 300) {
    s->ok++;
    if (c->kind == EVT && acked != NULL)
      fprintf(acked, "%s\n", c->id);
  } else
    s->non2xx++;
  record_latency(s, (double)(now_ns() - c->t0) / 1e6);
  c->busy = 0;
  memmove(c->in, c->in + len, c->got - len);
  c->got -= len;
  if (close_after)
    hangup(c);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void summary(double secs) {
  printf("{\"seconds\":%.2f,\"rate_target\":%d,\"backlog_max\":%lld", secs,
         opt.rate, backlog_max);
  for (int k = 0; k < N_KIND; k++) {
    stats_t *s = &st[k];
    double p50 = 0, p99 = 0;
    if (s->n_lat > 0) {
      qsort(s->lat_ms, s->n_lat, sizeof(double), cmp_double);
      p50 = s->lat_ms[s->n_lat / 2];
      p99 = s->lat_ms[(size_t)((double)s->n_lat * 0.99)];
    }
    printf(",\"%s\":{\"sent\":%lld,\"ok\":%lld,\"non2xx\":%lld,"
           "\"conn_errors\":%lld,\"timeouts\":%lld,\"rps\":%.1f,"
           "\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"status\":{",
           kind_name[k], s->sent, s->ok, s->non2xx, s->conn_err, s->timeout,
           (double)s->ok / secs, p50, p99);
    int first = 1;
    for (int code = 0; code < 600; code++)
      if (s->status[code]) {
        printf("%s\"%d\":%lld", first ? "" : ",", code, s->status[code]);
        first = 0;
      }
    printf("}}");
    free(s->lat_ms);
  }
  printf("}\n");
}

static void usage(void) {
  fprintf(stderr, "usage: hr-load --port P [--rate R] --seconds S "
                  "[--conns C] --users FILE --items FILE\n"
                  "               [--event-share F] [--acked FILE] "
                  "[--id-prefix S] [--header \"Name: value\"]\n");
  exit(2);
}

int main(int argc, char **argv) {
  static conn_t conns[MAX_CONNS];
  const char *users = NULL, *items = NULL;
  struct epoll_event evs[64];

  for (int i = 1; i + 1 < argc; i += 2) {
    const char *k = argv[i], *v = argv[i + 1];
    if (strcmp(k, "--port") == 0)
      opt.port = atoi(v);
    else if (strcmp(k, "--rate") == 0)
      opt.rate = atoi(v);
    else if (strcmp(k, "--seconds") == 0)
      opt.seconds = atoi(v);
    else if (strcmp(k, "--conns") == 0)
      opt.conns = atoi(v);
    else if (strcmp(k, "--users") == 0)
      users = v;
    else if (strcmp(k, "--items") == 0)
      items = v;
    else if (strcmp(k, "--event-share") == 0)
      opt.event_share = atof(v);
    else if (strcmp(k, "--acked") == 0)
      opt.acked_path = v;
    else if (strcmp(k, "--id-prefix") == 0)
      opt.prefix = v;
    else if (strcmp(k, "--header") == 0)
      opt.header = v;
    else
      usage();
  }
  if (argc % 2 == 0 || opt.port <= 0 || opt.port > 65535 || opt.seconds <= 0 ||
      opt.seconds > 600 || opt.conns < 1 || opt.conns > MAX_CONNS ||
      opt.rate < 0 || users == NULL || items == NULL)
    usage();
  opt.users = read_lines(users, &opt.n_users);
  opt.items = read_lines(items, &opt.n_items);
  if (opt.acked_path != NULL && (acked = fopen(opt.acked_path, "w")) == NULL) {
    perror(opt.acked_path);
    return 2;
  }
  srand((unsigned)getpid());
  ep = epoll_create1(EPOLL_CLOEXEC);
  for (int i = 0; i < opt.conns; i++) {
    conns[i].fd = -1;
    dial(&conns[i]);
  }
  long long start = now_ns(), end = start + (long long)opt.seconds * 1000000000LL;
  long long issued = 0;
  for (;;) {
    long long t = now_ns();
    if (t >= end)
      break;
    /* due requests: open loop at --rate, or fill every idle connection */
    long long due = opt.rate > 0
                        ? (t - start) * opt.rate / 1000000000LL + 1 - issued
                        : opt.conns;
    for (int i = 0; i < opt.conns && due > 0; i++)
      if (!conns[i].busy) {
        send_request(&conns[i]);
        issued++;
        due--;
      }
    if (opt.rate > 0 && due > backlog_max)
      backlog_max = due; /* every connection busy: the schedule slips */
    for (int i = 0; i < opt.conns; i++)
      if (conns[i].busy && t - conns[i].t0 > TIMEOUT_NS)
        failed(&conns[i], 1);
    int wait_ms = 1;
    int n = epoll_wait(ep, evs, 64, wait_ms);
    for (int i = 0; i < n; i++)
      readable(evs[i].data.ptr);
  }
  /* the answers still on the way (within the timeout) */
  long long drain_end = now_ns() + TIMEOUT_NS;
  for (;;) {
    int busy = 0;
    for (int i = 0; i < opt.conns; i++)
      busy += conns[i].busy;
    if (busy == 0 || now_ns() > drain_end)
      break;
    int n = epoll_wait(ep, evs, 64, 10);
    for (int i = 0; i < n; i++)
      readable(evs[i].data.ptr);
  }
  for (int i = 0; i < opt.conns; i++)
    if (conns[i].busy)
      failed(&conns[i], 1);
    else
      hangup(&conns[i]);
  summary((double)(now_ns() - start) / 1e9);
  if (acked != NULL)
    fclose(acked);
  for (size_t i = 0; i < opt.n_users; i++)
    free(opt.users[i]);
  for (size_t i = 0; i < opt.n_items; i++)
    free(opt.items[i]);
  free(opt.users);
  free(opt.items);
  close(ep);
  return 0;
}
