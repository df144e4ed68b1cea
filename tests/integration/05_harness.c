/* 05_harness.c -- the integration harness itself: Redis restarts on the
 * same port, and the HTTP client reads every framing the server may use.
 * These need neither bin/hyperrec nor the trainer. */
#include "lib/env.h"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

HR_TEST_T(harness_redis_restart_same_port, 30) {
  HRT_ENV(e); /* only its Redis half and helpers are used here */
  int port;
  char v[32];

  ASSERT_EQ(hrt_redis_start(&e.redis), 0);
  e.started = 1;
  port = e.redis.port;
  ASSERT_GT(port, 0);
  redisReply *r = hrt_rcmd(&e, "SET k v1");
  ASSERT_NOT_NULL(r);
  freeReplyObject(r);
  ASSERT_EQ(hrt_rint(&e, "DBSIZE"), 1);
  ASSERT_EQ(hrt_rstr(&e, v, sizeof(v), "GET k"), 0);
  ASSERT_STR_EQ(v, "v1");

  hrt_redis_stop(&e.redis);
  ASSERT_EQ(e.redis.pid, 0);
  ASSERT_EQ(hrt_rint(&e, "DBSIZE"), -1); /* nothing answers now */

  ASSERT_EQ(hrt_redis_restart(&e.redis), 0);
  ASSERT_EQ(e.redis.port, port);
  ASSERT_EQ(hrt_rint(&e, "DBSIZE"), 0); /* no persistence: empty again */
  ASSERT_EQ(hrt_env_stop(&e), 0);
  return 0;
}

/* A canned HTTP server: answers each connection by the request path. */
static void canned_server(int lfd, int n_conns) {
  for (int i = 0; i < n_conns; i++) {
    char req[4096] = "";
    size_t len = 0;
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0)
      _exit(1);
    while (len < sizeof(req) - 1 && strstr(req, "\r\n\r\n") == NULL) {
      ssize_t r = read(fd, req + len, sizeof(req) - 1 - len);
      if (r <= 0)
        break;
      len += (size_t)r;
      req[len] = '\0';
    }
    const char *resp =
        strncmp(req, "GET /cl ", 8) == 0
            ? "HTTP/1.1 200 OK\r\ncontent-LENGTH: 5\r\nX-Thing:  a b \r\n"
              "\r\nhello"
        : strncmp(req, "GET /chunked ", 13) == 0
            ? "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
              "4\r\nwiki\r\n6;ext=1\r\npedia \r\n0\r\nTrailer: x\r\n\r\n"
        : strncmp(req, "GET /eof ", 9) == 0
            ? "HTTP/1.1 404 Not Found\r\n\r\nuntil the end"
        : strncmp(req, "POST /continue ", 15) == 0
            ? "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 413 Too Large\r\n"
              "Content-Length: 2\r\n\r\n{}"
            : "HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n";
    if (write(fd, resp, strlen(resp)) < 0)
      _exit(1);
    close(fd);
  }
  _exit(0);
}

HR_TEST_T(harness_http_client_framing, 30) {
  struct sockaddr_in a = {0};
  socklen_t alen = sizeof(a);
  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  hrt_resp_t r;
  char buf[64];
  pid_t pid;
  int port;

  ASSERT(lfd >= 0);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
  ASSERT_EQ(listen(lfd, 8), 0);
  ASSERT_EQ(getsockname(lfd, (struct sockaddr *)&a, &alen), 0);
  port = ntohs(a.sin_port);
  pid = fork();
  ASSERT(pid >= 0);
  if (pid == 0)
    canned_server(lfd, 4);
  close(lfd);

  ASSERT_EQ(hrt_http(port, "GET", "/cl", NULL, NULL, 0, 5000, &r), 0);
  ASSERT_EQ(r.status, 200);
  ASSERT_EQ(r.body_len, 5);
  ASSERT_STR_EQ(r.body, "hello");
  ASSERT_STR_EQ(hrt_resp_header(&r, "x-thing", buf, sizeof(buf)), "a b");
  ASSERT_STR_EQ(hrt_resp_header(&r, "Content-Length", buf, sizeof(buf)), "5");
  ASSERT(hrt_resp_header(&r, "X-Missing", buf, sizeof(buf)) == NULL);
  hrt_resp_free(&r);

  ASSERT_EQ(hrt_http(port, "GET", "/chunked", NULL, NULL, 0, 5000, &r), 0);
  ASSERT_EQ(r.status, 201);
  ASSERT_STR_EQ(r.body, "wikipedia ");
  hrt_resp_free(&r);

  ASSERT_EQ(hrt_http(port, "GET", "/eof", NULL, NULL, 0, 5000, &r), 0);
  ASSERT_EQ(r.status, 404);
  ASSERT_STR_EQ(r.body, "until the end");
  hrt_resp_free(&r);

  ASSERT_EQ(hrt_http(port, "POST", "/continue",
                     "Content-Type: application/json\r\n", "{}", 2, 5000, &r),
            0);
  ASSERT_EQ(r.status, 413);
  ASSERT_STR_EQ(r.body, "{}");
  hrt_resp_free(&r);

  ASSERT_EQ(hrt_wait(pid, 5000), 0);
  /* Nobody listens any more: a clean failure, not a hang. */
  ASSERT_EQ(hrt_http(port, "GET", "/cl", NULL, NULL, 0, 2000, &r), -1);
  hrt_resp_free(&r);
  return 0;
}

HR_TEST_T(harness_metric_parser, 10) {
  const char *text =
      "# HELP hyperrec_http_requests_total Requests.\n"
      "# TYPE hyperrec_http_requests_total counter\n"
      "hyperrec_http_requests_total{endpoint=\"/recommend\",status=\"200\"} 3\n"
      "hyperrec_http_requests_total{endpoint=\"/recommend\",status=\"400\"} 2\n"
      "hyperrec_http_requests_total{endpoint=\"/event\",status=\"202\"} 7\n"
      "hyperrec_http_requests_total_extra 100\n"
      "hyperrec_redis_errors_total 4\n";

  ASSERT_DBL_NEAR(hrt_metric(text, "hyperrec_http_requests_total", NULL), 12,
                  1e-9);
  ASSERT_DBL_NEAR(hrt_metric(text, "hyperrec_http_requests_total",
                             "recommend", "status=\"200\"", NULL),
                  3, 1e-9);
  ASSERT_DBL_NEAR(hrt_metric(text, "hyperrec_redis_errors_total", NULL), 4,
                  1e-9);
  ASSERT_DBL_NEAR(hrt_metric(text, "hyperrec_redis_errors_total", "x", NULL),
                  -1, 1e-9);
  ASSERT_DBL_NEAR(hrt_metric(text, "hyperrec_missing", NULL), -1, 1e-9);
  return 0;
}
