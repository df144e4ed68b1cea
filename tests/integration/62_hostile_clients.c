/* 62_hostile_clients.c -- clients that hold sockets open without finishing
 * a request, and requests whose framing a proxy in front could read
 * otherwise: the service keeps answering everyone else, the log does not
 * grow by a line per socket, and ambiguous framing is a 400 at once. All on
 * 127.0.0.0/8: the slow clients come from 127.0.0.1 and 127.0.0.2, the
 * probe from 127.0.0.3. */
#include "lib/env.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

/* A TCP connection from address `src` to the server; -1 on failure. */
static int dial_from(const char *src, int port) {
  struct sockaddr_in a = {0}, me = {0};
  struct timeval tv = {5, 0};
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  me.sin_family = AF_INET;
  inet_pton(AF_INET, src, &me.sin_addr);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  if (bind(fd, (struct sockaddr *)&me, sizeof(me)) != 0 ||
      connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* Send `req` on a fresh connection from `src` and read the answer into
 * out (NUL-terminated; until the peer closes, the answer's length is
 * reached, or 5 s). The time it took in *ms. */
static int exchange(const char *src, int port, const char *req, size_t len,
                    char *out, size_t cap, long long *ms) {
  long long t0 = hrt_now_ms();
  size_t got = 0;
  int fd = dial_from(src, port);
  if (fd < 0)
    return -1;
  if (send(fd, req, len, MSG_NOSIGNAL) != (ssize_t)len) {
    close(fd);
    return -1;
  }
  while (got + 1 < cap) {
    ssize_t n = recv(fd, out + got, cap - 1 - got, 0);
    char *end, *cl;
    if (n <= 0)
      break;
    got += (size_t)n;
    out[got] = '\0';
    if ((end = strstr(out, "\r\n\r\n")) != NULL &&
        (cl = strcasestr(out, "Content-Length: ")) != NULL && cl < end &&
        got >= (size_t)(end + 4 - out) + strtoul(cl + 16, NULL, 10))
      break;
  }
  out[got] = '\0';
  *ms = hrt_now_ms() - t0;
  close(fd);
  return (int)got;
}

/* A fresh /recommend from 127.0.0.3: 1 when it is answered 200. */
static int probe(int port, long long *ms) {
  static const char req[] =
      "POST /recommend HTTP/1.1\r\nHost: t\r\n" HRT_AUTH_HEADER
      "Content-Type: application/json\r\nContent-Length: 22\r\n\r\n"
      "{\"user_id\":\"u1\",\"k\":3}";
  char out[4096];
  int n = exchange("127.0.0.3", port, req, sizeof(req) - 1, out, sizeof(out),
                   ms);
  return n > 0 && strncmp(out, "HTTP/1.1 200", 12) == 0;
}

static int cmp_ll(const void *a, const void *b) {
  long long x = *(const long long *)a, y = *(const long long *)b;
  return (x > y) - (x < y);
}

/* 5,000 sockets from one address and 2,000 from another, each sending one
 * header line and then a line now and then, never the end of its headers:
 * each address holds at most http.max_connections_per_ip of them (256),
 * the rest are refused at accept and counted. A third address's requests
 * answer within 50 ms throughout (p99 of 100 probes), right after the
 * sockets close too, and the log grows by a few lines, not one a socket. */
HR_TEST_T(hostile_slow_header_sockets, 120) {
  HRT_ENV(e);
  enum { N1 = 5000, N2 = 2000, PROBES = 100 };
  static int fds[N1 + N2];
  long long lat[PROBES], ms;
  int n_open = 0, bad = 0, lines0, lines1, ok;
  struct rlimit rl;

  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  ASSERT_MSG(rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > N1 + N2 + 200,
             "the test needs %d descriptors, the limit is %llu", N1 + N2 + 200,
             (unsigned long long)rl.rlim_cur);
  ASSERT_EQ(hrt_env_start(&e, NULL), 0);
  lines0 = hrt_server_log_count(&e.srv, "\"level\"", NULL);
  for (int i = 0; i < N1 + N2; i++) {
    int fd = dial_from(i < N1 ? "127.0.0.1" : "127.0.0.2", e.srv.port);
    static const char part[] = "POST /recommend HTTP/1.1\r\nHost: t\r\n";
    if (fd < 0)
      continue;
    send(fd, part, sizeof(part) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    fds[n_open++] = fd;
  }
  ASSERT_GT(n_open, 1000);
  for (int p = 0; p < PROBES; p++) {
    /* the slow ones keep their connections alive: a line each now and
     * then */
    for (int i = p; i < n_open; i += PROBES)
      send(fds[i], "X-Slow: 1\r\n", 11, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (!probe(e.srv.port, &lat[p]))
      bad++;
  }
  qsort(lat, PROBES, sizeof(lat[0]), cmp_ll);
  fprintf(stderr, "  slow sockets: %d open, probes p50 %lld ms, p99 %lld ms, "
                  "max %lld ms, %d failed\n",
          n_open, lat[PROBES / 2], lat[PROBES * 99 / 100 - 1],
          lat[PROBES - 1], bad);
  ASSERT_EQ(bad, 0);
  ASSERT_LT(lat[PROBES * 99 / 100 - 1], 50 * hrt_mult());
  { /* (from the third address: the first is at its limit) */
    char metrics[1 << 16];
    long long mms;
    static const char req[] = "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n";
    ASSERT_GT(exchange("127.0.0.3", e.srv.port, req, sizeof(req) - 1,
                       metrics, sizeof(metrics), &mms),
              0);
    char *r = strstr(metrics,
                     "hyperrec_http_connections_refused_total{limit=\"per_ip\"} ");
    ASSERT_NOT_NULL(r);
    /* everything past 256 per address was refused */
    ASSERT_GE(strtol(r + strlen("hyperrec_http_connections_refused_total{"
                                "limit=\"per_ip\"} "),
                     NULL, 10),
              n_open - 2 * 256 - 50);
  }
  for (int i = 0; i < n_open; i++)
    close(fds[i]);
  /* within a second of their closing, a fresh request is answered */
  long long t0 = hrt_now_ms();
  HRT_POLL(ok, 1000, probe(e.srv.port, &ms));
  ASSERT_MSG(ok, "not answering %lld ms after the sockets closed",
             hrt_now_ms() - t0);
  lines1 = hrt_server_log_count(&e.srv, "\"level\"", NULL);
  fprintf(stderr, "  log: %d lines before, %d after\n", lines0, lines1);
  ASSERT_LT(lines1 - lines0, 100);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

/* Framing a proxy in front could read differently from this server, and
 * a request line of binary bytes: each answered 400 at once with the
 * reason, and the connection closed after it (RFC 9112 section 6). */
HR_TEST_T(hostile_ambiguous_framing, 60) {
  HRT_ENV(e);
  static const char body[] = "{\"user_id\":\"u1\",\"k\":3}";
  char req[1024], out[4096];
  long long ms;
  static const struct {
    const char *what, *headers, *reason;
  } cases[] = {
      {"two Content-Length", "Host: t\r\nContent-Length: 22\r\n"
                             "Content-Length: 5\r\n",
       "more than one Content-Length"},
      {"no Host", "Content-Length: 22\r\n", "without Host"},
      {"gzip, chunked", "Host: t\r\nTransfer-Encoding: gzip, chunked\r\n",
       "Transfer-Encoding other than chunked"},
      {"both", "Host: t\r\nContent-Length: 22\r\n"
               "Transfer-Encoding: chunked\r\n",
       "both Content-Length and Transfer-Encoding"},
      /* libmicrohttpd answers this one itself (its own 400 page) */
      {"not a number", "Host: t\r\nContent-Length: 2x\r\n", NULL},
  };

  ASSERT_EQ(hrt_env_start(&e, NULL), 0);
  for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
    int n = snprintf(req, sizeof(req),
                     "POST /recommend HTTP/1.1\r\nContent-Type: "
                     "application/json\r\n%s\r\n%s",
                     cases[k].headers, body);
    ASSERT_GT(exchange("127.0.0.1", e.srv.port, req, (size_t)n, out,
                       sizeof(out), &ms),
              0);
    ASSERT_MSG(strncmp(out, "HTTP/1.1 400", 12) == 0, "%s: %.80s",
               cases[k].what, out);
    ASSERT_MSG(cases[k].reason == NULL ||
                   (strstr(out, "\"bad_request\"") != NULL &&
                    strstr(out, cases[k].reason) != NULL),
               "%s: %s", cases[k].what, out);
    ASSERT_MSG(strcasestr(out, "Connection: close") != NULL, "%s: %s",
               cases[k].what, out);
    ASSERT_MSG(ms < 1000, "%s: %lld ms", cases[k].what, ms);
  }
  /* the well-formed request still passes */
  int n = snprintf(req, sizeof(req),
                   "POST /recommend HTTP/1.1\r\nHost: t\r\n" HRT_AUTH_HEADER
                   "Content-Type: application/json\r\nContent-Length: "
                   "%zu\r\n\r\n%s",
                   sizeof(body) - 1, body);
  ASSERT_GT(exchange("127.0.0.1", e.srv.port, req, (size_t)n, out,
                     sizeof(out), &ms),
            0);
  ASSERT_MSG(strncmp(out, "HTTP/1.1 200", 12) == 0, "%.200s", out);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

/* First bytes that cannot begin an HTTP request (a TLS hello, control
 * bytes, a line without a method): answered 400 bad_request at once and
 * closed, where libmicrohttpd alone would hold some of them until the idle
 * timeout without a word. A request line after an empty line still
 * passes (RFC 9112 section 2.2). */
HR_TEST_T(hostile_request_line_not_http, 60) {
  HRT_ENV(e);
  char out[4096];
  long long ms;
  static const struct {
    const char *what;
    const char *bytes;
    size_t len;
    const char *reason;
  } cases[] = {
#define BYTES(lit) lit, sizeof(lit) - 1
      {"TLS hello", BYTES("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"),
       "not TLS"},
      {"control bytes", BYTES("\x00\x01\x02\x03\r\n\r\n"), "not HTTP"},
      {"high bytes", BYTES("\x80\xff GET \xfe\r\nHost: t\r\n\r\n"),
       "not HTTP"},
      {"no method", BYTES(" / HTTP/1.1\r\nHost: t\r\n\r\n"), "not HTTP"},
      {"no space", BYTES("GARBAGE\r\n\r\n"), "not HTTP"},
      {"binary target", BYTES("GET /\x01\x02 HTTP/1.1\r\nHost: t\r\n\r\n"),
       "not HTTP"},
      {"NUL in method", BYTES("G\x00T / HTTP/1.1\r\nHost: t\r\n\r\n"),
       "not HTTP"},
      {"endless method", BYTES("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
       "not HTTP"},
#undef BYTES
  };

  ASSERT_EQ(hrt_env_start(&e, NULL), 0);
  for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
    ASSERT_GT(exchange("127.0.0.1", e.srv.port, cases[k].bytes, cases[k].len,
                       out, sizeof(out), &ms),
              0);
    ASSERT_MSG(strncmp(out, "HTTP/1.1 400", 12) == 0, "%s: %.80s",
               cases[k].what, out);
    ASSERT_MSG(strstr(out, "\"bad_request\"") != NULL &&
                   strstr(out, cases[k].reason) != NULL,
               "%s: %s", cases[k].what, out);
    ASSERT_MSG(ms < 1000, "%s: %lld ms", cases[k].what, ms);
  }
  static const char ok[] = "\r\nGET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";
  ASSERT_GT(exchange("127.0.0.1", e.srv.port, ok, sizeof(ok) - 1, out,
                     sizeof(out), &ms),
            0);
  ASSERT_MSG(strncmp(out, "HTTP/1.1 200", 12) == 0, "%.200s", out);
  hrt_resp_t r;
  ASSERT_EQ(hrt_req(&e, "GET", "/metrics", NULL, NULL, 0, &r), 0);
  ASSERT_MSG(strstr(r.body, "hyperrec_http_connections_closed_total{reason="
                            "\"not_http\"} 8\n") != NULL,
             "%s", r.body);
  hrt_resp_free(&r);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

/* Waits until the server closes fd (recv gives 0 or a reset); the time it
 * took, or -1 if it was still open after limit_ms. */
static long long wait_closed(int fd, long long limit_ms, const char *drip) {
  long long t0 = hrt_now_ms();
  struct timeval tv = {0, 200000};
  char b[512];
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  while (hrt_now_ms() - t0 < limit_ms) {
    ssize_t n = recv(fd, b, sizeof(b), 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
                   errno != EINTR))
      return hrt_now_ms() - t0;
    /* still open: a trickle keeps the idle timeout from firing */
    if (drip != NULL &&
        send(fd, drip, strlen(drip), MSG_NOSIGNAL) < 0)
      return hrt_now_ms() - t0;
  }
  return -1;
}

/* Deadlines independent of idleness: headers that trickle in a line every
 * 200 ms (the idle timeout never fires) are cut at http.header_timeout_s,
 * a body that trickles at http.body_timeout_s after its headers, a client
 * that sends nothing at all at the header deadline too; each counted by
 * reason. A request that is merely a little slow is answered. */
HR_TEST_T(hostile_header_and_body_deadlines, 60) {
  HRT_ENV(e);
  static const hrt_env_opts_t o = {
      .config_json = "{\"http\":{\"header_timeout_s\":1,\"body_timeout_s\":1,"
                     "\"connection_timeout_s\":30}}"};
  char out[4096];
  long long t;
  hrt_resp_t r;

  ASSERT_EQ(hrt_env_start(&e, &o), 0);
  int fh = dial_from("127.0.0.1", e.srv.port);
  int fb = dial_from("127.0.0.1", e.srv.port);
  int fs = dial_from("127.0.0.1", e.srv.port);
  ASSERT_MSG(fh >= 0 && fb >= 0 && fs >= 0, "dial");
  static const char head[] = "POST /recommend HTTP/1.1\r\nHost: t\r\n";
  ASSERT_EQ(send(fh, head, sizeof(head) - 1, MSG_NOSIGNAL),
            (ssize_t)sizeof(head) - 1);
  static const char withbody[] =
      "POST /recommend HTTP/1.1\r\nHost: t\r\nContent-Type: "
      "application/json\r\nContent-Length: 1000\r\n\r\n{";
  ASSERT_EQ(send(fb, withbody, sizeof(withbody) - 1, MSG_NOSIGNAL),
            (ssize_t)sizeof(withbody) - 1);
  /* the three deadlines run at once: each closed after about 1 s, well
   * before the 30 s idle timeout */
  t = wait_closed(fh, 10000, "X-Slow: 1\r\n");
  ASSERT_MSG(t >= 0, "trickled headers still open after 10 s");
  t = wait_closed(fb, 10000, " ");
  ASSERT_MSG(t >= 0, "trickled body still open after 10 s");
  t = wait_closed(fs, 10000, NULL);
  ASSERT_MSG(t >= 0, "silent connection still open after 10 s");
  close(fh);
  close(fb);
  close(fs);
  ASSERT_EQ(hrt_req(&e, "GET", "/metrics", NULL, NULL, 0, &r), 0);
  ASSERT_MSG(strstr(r.body, "hyperrec_http_connections_closed_total{reason="
                            "\"header_timeout\"} 2\n") != NULL &&
                 strstr(r.body, "hyperrec_http_connections_closed_total{"
                                "reason=\"body_timeout\"} 1\n") != NULL,
             "%s", r.body);
  hrt_resp_free(&r);
  /* a request sent in two parts, 300 ms apart, is within its deadlines */
  int fo = dial_from("127.0.0.1", e.srv.port);
  ASSERT_GE(fo, 0);
  static const char part1[] = "GET /healthz HTTP/1.1\r\n";
  static const char part2[] = "Host: t\r\n\r\n";
  ASSERT_EQ(send(fo, part1, sizeof(part1) - 1, MSG_NOSIGNAL),
            (ssize_t)sizeof(part1) - 1);
  usleep(300000);
  ASSERT_EQ(send(fo, part2, sizeof(part2) - 1, MSG_NOSIGNAL),
            (ssize_t)sizeof(part2) - 1);
  ssize_t n = recv(fo, out, sizeof(out) - 1, 0);
  ASSERT_GT(n, 12);
  ASSERT_MSG(strncmp(out, "HTTP/1.1 200", 12) == 0, "%.80s", out);
  close(fo);
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}
