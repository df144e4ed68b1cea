/* accept.c -- the listening socket, ahead of libmicrohttpd (internal.h).
 *
 * libmicrohttpd 0.9.75 has only an idle timeout: a client that sends one
 * header line every few seconds holds its connection for ever, and one
 * whose first bytes are not HTTP at all (a TLS hello, binary noise) is held
 * until that timeout without an answer. So the server accepts for itself,
 * on one thread:
 *
 * - A new connection is counted against http.max_connections and
 *   http.max_connections_per_ip (connlim.c) and refused at once over either.
 * - It waits here, in an epoll set, until its first bytes arrive. They are
 *   peeked (MSG_PEEK: libmicrohttpd reads them again): a request line that
 *   cannot be HTTP is answered 400 and closed; one that can is handed to
 *   libmicrohttpd (MHD_add_connection), which serves it from then on.
 * - Every connection has a deadline, kept per descriptor in `rec`: its
 *   headers must be complete http.header_timeout_s after it opened (after
 *   the previous answer on a kept-alive connection: that plus the idle
 *   timeout), its body http.body_timeout_s after its headers. Every
 *   SWEEP_MS the thread closes what is past its deadline: a connection
 *   still here directly, one libmicrohttpd serves with shutdown(), which
 *   libmicrohttpd sees as the client leaving and cleans up itself.
 *
 * A descriptor's record changes state under `mu`: FREE -> PENDING (here)
 * -> QUEUED (handed over) -> LIVE (libmicrohttpd's start notification) ->
 * FREE (its close notification, which it sends before closing the socket).
 * So a shutdown() under `mu` on a LIVE record always reaches the
 * connection the record describes, never a descriptor number reused since.
 * libmicrohttpd may drop a queued connection without notifying (its own
 * limit, or no memory for it); the record is then found QUEUED when the
 * number comes back from accept, and the count released then. */
#include "internal.h"

#include "hr/log.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#define SWEEP_MS 100
#define PEEK 64          /* request-line bytes looked at */
#define METHOD_MAX 32    /* longest method token taken as one */
#define ACCEPT_BATCH 256 /* accepts between two looks at the rest */
#define MAX_RECORDS (1u << 20)

enum { ST_FREE, ST_PENDING, ST_QUEUED, ST_LIVE };

struct hr_conn {
  int state;                  /* ST_*, under a->mu */
  int shut;                   /* shut down for its deadline (under a->mu) */
  socklen_t alen;
  struct sockaddr_in6 addr;   /* holds an IPv4 address too */
  atomic_llong due;           /* deadline ms * 4 + HR_CONN_*; 0: none */
};

struct hr_acceptor {
  int lfd, ep, evfd;
  struct MHD_Daemon *d;
  hr_connlim_t *lim;
  hr_conn_t *rec;             /* by descriptor */
  size_t cap;
  size_t hi;                  /* 1 + the highest descriptor accepted */
  pthread_mutex_t mu;
  pthread_t thread;
  int running;
  int port;
  long long header_ms, body_ms, idle_ms;
  long long paused_until;     /* accept paused (out of descriptors) */
  atomic_int stop, stop_listening, listening;
  atomic_ulong not_http, header_timeout, body_timeout;
  unsigned long logged[3];
  long long last_log_s;
};

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --------------------------------------------------------- the records */

/* A descriptor table as large as the open-file limit (so every accepted
 * descriptor has its record), capped at MAX_RECORDS. calloc'd: the pages
 * of descriptors never used are never touched. */
static size_t record_cap(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
      rl.rlim_cur > MAX_RECORDS)
    return MAX_RECORDS;
  return (size_t)rl.rlim_cur;
}

hr_conn_t *hr__conn_started(hr_acceptor_t *a, int fd) {
  hr_conn_t *r = NULL;
  if (a == NULL || fd < 0 || (size_t)fd >= a->cap)
    return NULL;
  pthread_mutex_lock(&a->mu);
  if (a->rec[fd].state == ST_QUEUED) {
    r = &a->rec[fd];
    r->state = ST_LIVE;
  }
  pthread_mutex_unlock(&a->mu);
  return r;
}

void hr__conn_closed(hr_acceptor_t *a, hr_conn_t *r) {
  struct sockaddr_in6 addr;
  if (a == NULL || r == NULL)
    return;
  pthread_mutex_lock(&a->mu);
  r->state = ST_FREE;
  r->shut = 0;
  atomic_store(&r->due, 0);
  addr = r->addr;
  pthread_mutex_unlock(&a->mu);
  hr__connlim_release(a->lim, (const struct sockaddr *)&addr);
}

void hr__conn_phase(hr_acceptor_t *a, hr_conn_t *r, int phase) {
  long long due = 0;
  if (a == NULL || r == NULL)
    return;
  if (phase == HR_CONN_HEADERS)
    due = (now_ms() + a->idle_ms + a->header_ms) * 4 + HR_CONN_HEADERS;
  else if (phase == HR_CONN_BODY)
    due = (now_ms() + a->body_ms) * 4 + HR_CONN_BODY;
  atomic_store(&r->due, due);
}

/* ------------------------------------------------------ the first bytes */

static int is_tchar(unsigned char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
         (ch >= '0' && ch <= '9') || (ch != 0 && strchr("!#$%&'*+-.^_`|~", ch));
}

enum { V_MORE, V_HTTP, V_NOT_HTTP, V_TLS };

/* What the first n bytes say: a method token (RFC 9110), a space, then
 * printable ASCII up to the end of the line (a request target and the
 * version), after at most two empty lines (RFC 9112 2.2). Decided at the
 * line's end or after PEEK bytes, whichever comes first. */
static int verdict(const unsigned char *b, size_t n) {
  size_t i = 0, m;
  if (n > 0 && b[0] == 0x16)
    return V_TLS; /* a TLS handshake record */
  while (i < n && i < 4 && (b[i] == '\r' || b[i] == '\n'))
    i++;
  for (m = i; i < n && is_tchar(b[i]); i++)
    if (i - m >= METHOD_MAX)
      return V_NOT_HTTP;
  if (i == n)
    return n >= PEEK ? V_NOT_HTTP : V_MORE;
  if (b[i] != ' ' || i == m)
    return V_NOT_HTTP;
  for (i++; i < n; i++) {
    if (b[i] == '\r' || b[i] == '\n')
      return V_HTTP;
    if (b[i] < 0x20 || b[i] > 0x7e)
      return V_NOT_HTTP;
  }
  return n >= PEEK ? V_HTTP : V_MORE;
}

/* The 400 for bytes that are not HTTP: what arrived is read first (a
 * socket closed with unread data sends a reset, which can overtake the
 * answer), then the answer, then the close. */
static void answer_not_http(int fd, int tls) {
  char sink[4096], out[512];
  size_t drained = 0;
  ssize_t n;
  while (drained < 65536 &&
         (n = recv(fd, sink, sizeof(sink), MSG_DONTWAIT)) > 0)
    drained += (size_t)n;
  const char *msg = tls ? "this port speaks plain HTTP, not TLS (TLS ends "
                          "in front of the server)"
                        : "the request line is not HTTP";
  char body[256];
  int bl = snprintf(body, sizeof(body),
                    "{\"error\":{\"code\":\"bad_request\",\"message\":\"%s\","
                    "\"field\":\"\"}}",
                    msg);
  int ol = snprintf(out, sizeof(out),
                    "HTTP/1.1 400 Bad Request\r\nContent-Type: "
                    "application/json\r\nContent-Length: %d\r\nConnection: "
                    "close\r\n\r\n%s",
                    bl, body);
  if (ol > 0)
    (void)send(fd, out, (size_t)ol, MSG_NOSIGNAL | MSG_DONTWAIT);
  shutdown(fd, SHUT_WR);
}

/* ---------------------------------------------------------- the thread */

static void log_closes(hr_acceptor_t *a, long long now) {
  unsigned long c[3] = {atomic_load(&a->not_http),
                        atomic_load(&a->header_timeout),
                        atomic_load(&a->body_timeout)};
  if (now / 1000 == a->last_log_s ||
      (c[0] == a->logged[0] && c[1] == a->logged[1] && c[2] == a->logged[2]))
    return;
  a->last_log_s = now / 1000;
  hr_log(HR_LOG_WARN, "connections_closed",
         json_pack("{s:I,s:I,s:I}", "not_http",
                   (json_int_t)(c[0] - a->logged[0]), "header_timeout",
                   (json_int_t)(c[1] - a->logged[1]), "body_timeout",
                   (json_int_t)(c[2] - a->logged[2])));
  memcpy(a->logged, c, sizeof(c));
}

/* A pending connection closed here (the thread owns it). */
static void drop(hr_acceptor_t *a, int fd) {
  hr_conn_t *r = &a->rec[fd];
  struct sockaddr_in6 addr;
  epoll_ctl(a->ep, EPOLL_CTL_DEL, fd, NULL);
  pthread_mutex_lock(&a->mu);
  r->state = ST_FREE;
  atomic_store(&r->due, 0);
  addr = r->addr;
  close(fd);
  pthread_mutex_unlock(&a->mu);
  hr__connlim_release(a->lim, (const struct sockaddr *)&addr);
}

static void hand_over(hr_acceptor_t *a, int fd) {
  hr_conn_t *r = &a->rec[fd];
  epoll_ctl(a->ep, EPOLL_CTL_DEL, fd, NULL);
  pthread_mutex_lock(&a->mu);
  r->state = ST_QUEUED;
  pthread_mutex_unlock(&a->mu);
  if (MHD_add_connection(a->d, fd, (const struct sockaddr *)&r->addr,
                         r->alen) == MHD_YES)
    return;
  /* refused: libmicrohttpd has closed the socket */
  pthread_mutex_lock(&a->mu);
  int was = r->state;
  if (was == ST_QUEUED) {
    r->state = ST_FREE;
    atomic_store(&r->due, 0);
  }
  pthread_mutex_unlock(&a->mu);
  if (was == ST_QUEUED)
    hr__connlim_release(a->lim, (const struct sockaddr *)&r->addr);
}

static void look(hr_acceptor_t *a, int fd) {
  unsigned char b[PEEK];
  ssize_t n;
  if ((size_t)fd >= a->cap || a->rec[fd].state != ST_PENDING)
    return;
  n = recv(fd, b, sizeof(b), MSG_PEEK | MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
    return;
  if (n <= 0) { /* gone before a byte, or an error */
    drop(a, fd);
    return;
  }
  switch (verdict(b, (size_t)n)) {
  case V_MORE:
    return; /* edge-triggered: woken again when more arrives */
  case V_HTTP:
    hand_over(a, fd);
    return;
  default:
    answer_not_http(fd, b[0] == 0x16);
    atomic_fetch_add(&a->not_http, 1);
    drop(a, fd);
  }
}

static void accept_some(hr_acceptor_t *a, long long now) {
  for (int k = 0; k < ACCEPT_BATCH; k++) {
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    int fd = accept4(a->lfd, (struct sockaddr *)&ss, &sl,
                     SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED)
        continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
          errno == ENOMEM) {
        /* out of descriptors: stop looking at the socket for a sweep
         * rather than spin on it; what waits stays in the backlog */
        struct epoll_event ev = {0, {.fd = a->lfd}};
        epoll_ctl(a->ep, EPOLL_CTL_MOD, a->lfd, &ev);
        a->paused_until = now + SWEEP_MS;
        hr_log(HR_LOG_WARN, "accept_paused",
               json_pack("{s:s}", "reason", strerror(errno)));
      }
      return;
    }
    if ((size_t)fd >= a->cap || (ss.ss_family != AF_INET &&
                                 ss.ss_family != AF_INET6)) {
      close(fd);
      continue;
    }
    hr_conn_t *r = &a->rec[fd];
    pthread_mutex_lock(&a->mu);
    int stale = r->state == ST_QUEUED; /* dropped without a notification */
    r->state = ST_FREE;
    pthread_mutex_unlock(&a->mu);
    if (stale)
      hr__connlim_release(a->lim, (const struct sockaddr *)&r->addr);
    if (!hr__connlim_take(a->lim, (const struct sockaddr *)&ss)) {
      close(fd);
      continue;
    }
    memset(&r->addr, 0, sizeof(r->addr));
    memcpy(&r->addr, &ss, sl < sizeof(r->addr) ? sl : sizeof(r->addr));
    r->alen = sl < sizeof(r->addr) ? sl : sizeof(r->addr);
    r->shut = 0;
    atomic_store(&r->due, (now + a->header_ms) * 4 + HR_CONN_HEADERS);
    pthread_mutex_lock(&a->mu);
    r->state = ST_PENDING;
    pthread_mutex_unlock(&a->mu);
    if ((size_t)fd + 1 > a->hi)
      a->hi = (size_t)fd + 1;
    struct epoll_event ev = {EPOLLIN | EPOLLRDHUP | EPOLLET, {.fd = fd}};
    if (epoll_ctl(a->ep, EPOLL_CTL_ADD, fd, &ev) != 0)
      drop(a, fd);
  }
}

/* Close what is past its deadline. */
static void sweep(hr_acceptor_t *a, long long now) {
  for (size_t fd = 0; fd < a->hi; fd++) {
    hr_conn_t *r = &a->rec[fd];
    long long due = atomic_load_explicit(&r->due, memory_order_relaxed);
    int act = 0;
    if (due == 0 || now < due / 4)
      continue;
    pthread_mutex_lock(&a->mu);
    due = atomic_load(&r->due);
    if (due != 0 && now >= due / 4) {
      if (r->state == ST_LIVE && !r->shut) {
        shutdown((int)fd, SHUT_RDWR); /* libmicrohttpd closes it */
        r->shut = 1;
        act = 1;
      } else if (r->state == ST_PENDING) {
        act = 2; /* only this thread changes a pending record */
      }
    }
    pthread_mutex_unlock(&a->mu);
    if (act == 2)
      drop(a, (int)fd);
    if (act != 0)
      atomic_fetch_add((due & 3) == HR_CONN_BODY ? &a->body_timeout
                                                 : &a->header_timeout,
                       1);
  }
}

static void *run(void *arg) {
  hr_acceptor_t *a = arg;
  struct epoll_event evs[64];
  long long next_sweep = now_ms() + SWEEP_MS;

  while (!atomic_load(&a->stop)) {
    int n = epoll_wait(a->ep, evs, 64, SWEEP_MS);
    long long now = now_ms();
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      if (fd == a->evfd) {
        uint64_t v;
        (void)!read(a->evfd, &v, sizeof(v));
      } else if (fd == a->lfd) {
        accept_some(a, now);
      } else {
        look(a, fd);
      }
    }
    if (atomic_load(&a->stop_listening) && a->lfd >= 0) {
      epoll_ctl(a->ep, EPOLL_CTL_DEL, a->lfd, NULL);
      close(a->lfd);
      a->lfd = -1;
      atomic_store(&a->listening, 0);
    }
    if (a->paused_until != 0 && now >= a->paused_until && a->lfd >= 0) {
      struct epoll_event ev = {EPOLLIN, {.fd = a->lfd}};
      epoll_ctl(a->ep, EPOLL_CTL_MOD, a->lfd, &ev);
      a->paused_until = 0;
    }
    if (now >= next_sweep) {
      sweep(a, now);
      log_closes(a, now);
      next_sweep = now + SWEEP_MS;
    }
  }
  return NULL;
}

/* ------------------------------------------------------------ lifecycle */

hr_acceptor_t *hr__acceptor_open(const struct sockaddr *sa, socklen_t sl,
                                 const hr_config_t *cfg, size_t max_conn,
                                 hr_error_t *err) {
  hr_acceptor_t *a = calloc(1, sizeof(*a));
  int one = 1;
  struct sockaddr_storage bound;
  socklen_t bl = sizeof(bound);

  if (a == NULL) {
    hr_error_set(err, HR_ENOMEM, "listen", "out of memory");
    return NULL;
  }
  a->lfd = a->ep = a->evfd = -1;
  a->header_ms = 1000LL * cfg->http.header_timeout_s;
  a->body_ms = 1000LL * cfg->http.body_timeout_s;
  a->idle_ms = 1000LL * cfg->http.connection_timeout_s;
  a->cap = record_cap();
  pthread_mutex_init(&a->mu, NULL);
  if ((a->rec = calloc(a->cap, sizeof(*a->rec))) == NULL ||
      (a->lim = hr__connlim_new(max_conn,
                                (size_t)cfg->http.max_connections_per_ip)) ==
          NULL) {
    hr_error_set(err, HR_ENOMEM, "listen", "out of memory");
    goto fail;
  }
  a->lfd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                  0);
  if (a->lfd < 0)
    goto fail_sys;
  /* SO_REUSEADDR allows a restart beside connections in TIME_WAIT; no
   * SO_REUSEPORT: a second server on a taken port must fail, not share it */
  setsockopt(a->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (sa->sa_family == AF_INET6)
    setsockopt(a->lfd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  if (bind(a->lfd, sa, sl) != 0 || listen(a->lfd, 4096) != 0 ||
      getsockname(a->lfd, (struct sockaddr *)&bound, &bl) != 0)
    goto fail_sys;
  a->port = ntohs(bound.ss_family == AF_INET6
                      ? ((struct sockaddr_in6 *)&bound)->sin6_port
                      : ((struct sockaddr_in *)&bound)->sin_port);
  if ((a->ep = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
      (a->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
    goto fail_sys;
  struct epoll_event e1 = {EPOLLIN, {.fd = a->lfd}},
                     e2 = {EPOLLIN, {.fd = a->evfd}};
  if (epoll_ctl(a->ep, EPOLL_CTL_ADD, a->lfd, &e1) != 0 ||
      epoll_ctl(a->ep, EPOLL_CTL_ADD, a->evfd, &e2) != 0)
    goto fail_sys;
  atomic_store(&a->listening, 1);
  return a;

fail_sys:
  hr_error_set(err, HR_EIO, "listen", "%s", strerror(errno));
fail:
  hr__acceptor_free(a);
  return NULL;
}

int hr__acceptor_run(hr_acceptor_t *a, struct MHD_Daemon *d) {
  a->d = d;
  if (pthread_create(&a->thread, NULL, run, a) != 0)
    return HR_ENOMEM;
  a->running = 1;
  return 0;
}

int hr__acceptor_port(const hr_acceptor_t *a) { return a->port; }

void hr__acceptor_stop_listening(hr_acceptor_t *a) {
  uint64_t one = 1;
  if (a == NULL || !a->running)
    return;
  atomic_store(&a->stop_listening, 1);
  (void)!write(a->evfd, &one, sizeof(one));
  while (atomic_load(&a->listening))
    usleep(1000);
}

void hr__acceptor_free(hr_acceptor_t *a) {
  uint64_t one = 1;
  if (a == NULL)
    return;
  if (a->running) {
    atomic_store(&a->stop, 1);
    (void)!write(a->evfd, &one, sizeof(one));
    pthread_join(a->thread, NULL);
  }
  for (size_t fd = 0; a->rec != NULL && fd < a->hi; fd++)
    if (a->rec[fd].state == ST_PENDING)
      drop(a, (int)fd);
  if (a->lfd >= 0)
    close(a->lfd);
  if (a->ep >= 0)
    close(a->ep);
  if (a->evfd >= 0)
    close(a->evfd);
  hr__connlim_free(a->lim);
  pthread_mutex_destroy(&a->mu);
  free(a->rec);
  free(a);
}

void hr__acceptor_stats(hr_acceptor_t *a, hr_conn_stats_t *out) {
  hr__connlim_counts(a->lim, &out->open, &out->refused_per_ip,
                     &out->refused_total);
  out->not_http = atomic_load(&a->not_http);
  out->header_timeout = atomic_load(&a->header_timeout);
  out->body_timeout = atomic_load(&a->body_timeout);
}
