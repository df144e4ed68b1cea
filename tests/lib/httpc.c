/* httpc.c -- a tiny HTTP/1.1 client for integration tests (see httpc.h). */
#include "lib/httpc.h"

#include "lib/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
  char *p;
  size_t len, cap;
} buf_t;

static int buf_add(buf_t *b, const void *data, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    char *p;
    while (cap < b->len + n + 1)
      cap *= 2;
    p = realloc(b->p, cap);
    if (p == NULL)
      return -1;
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, data, n);
  b->len += n;
  b->p[b->len] = '\0';
  return 0;
}

static int wait_fd(int fd, short ev, long long deadline) {
  struct pollfd p = {fd, ev, 0};
  for (;;) {
    long long left = deadline - hrt_now_ms();
    int rc;
    if (left <= 0)
      return 0;
    rc = poll(&p, 1, (int)left);
    if (rc > 0)
      return 1;
    if (rc < 0 && errno != EINTR)
      return -1;
  }
}

static int connect_to(int port, long long deadline) {
  struct sockaddr_in a;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  int one = 1, err = 0;
  socklen_t len = sizeof(err);

  if (fd < 0)
    return -1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_port = htons((unsigned short)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
    if (errno != EINPROGRESS || wait_fd(fd, POLLOUT, deadline) != 1 ||
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
      fprintf(stderr, "  httpc: connect 127.0.0.1:%d: %s\n", port,
              strerror(err ? err : errno ? errno : ETIMEDOUT));
      close(fd);
      return -1;
    }
  }
  return fd;
}

/* Where the header block ends (just past "\r\n\r\n"), or 0. */
static size_t head_end(const buf_t *b, size_t from) {
  char *p = b->len > from ? memmem(b->p + from, b->len - from, "\r\n\r\n", 4)
                          : NULL;
  return p ? (size_t)(p - b->p) + 4 : 0;
}

static const char *find_header(const char *head, const char *name,
                               size_t *vlen) {
  size_t nlen = strlen(name);
  const char *line = head;

  while (*line != '\0') {
    const char *eol = strstr(line, "\r\n");
    size_t llen = eol ? (size_t)(eol - line) : strlen(line);
    if (llen > nlen && line[nlen] == ':' &&
        strncasecmp(line, name, nlen) == 0) {
      const char *v = line + nlen + 1, *e = line + llen;
      while (v < e && (*v == ' ' || *v == '\t'))
        v++;
      while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
      *vlen = (size_t)(e - v);
      return v;
    }
    if (eol == NULL)
      break;
    line = eol + 2;
  }
  return NULL;
}

/* Decode a chunked body from raw[0..len). Returns 1 complete, 0 need more,
 * -1 malformed. */
static int dechunk(const char *raw, size_t len, buf_t *out) {
  size_t i = 0;

  out->len = 0;
  for (;;) {
    char *eol = memmem(raw + i, len - i, "\r\n", 2);
    char *end;
    unsigned long size;
    if (eol == NULL)
      return 0;
    size = strtoul(raw + i, &end, 16);
    if (end == raw + i)
      return -1;
    i = (size_t)(eol - raw) + 2;
    if (size == 0) {
      /* Trailers end with an empty line. */
      for (;;) {
        char *e2 = memmem(raw + i, len - i, "\r\n", 2);
        if (e2 == NULL)
          return 0;
        if (e2 == raw + i)
          return 1;
        i = (size_t)(e2 - raw) + 2;
      }
    }
    if (len - i < size + 2)
      return 0;
    if (buf_add(out, raw + i, size) != 0)
      return -1;
    i += size + 2;
  }
}

/* Is the message in b complete? Fills out when it is. 1 yes, 0 no, -1 bad. */
static int parse(const buf_t *b, int eof, int head_req, hrt_resp_t *out) {
  size_t start = 0, hend;
  int status;
  const char *v;
  size_t vlen;
  char tmp[32];

  for (;;) {
    hend = head_end(b, start);
    if (hend == 0)
      return eof ? -1 : 0;
    if (sscanf(b->p + start, "HTTP/1.%*d %d", &status) != 1)
      return -1;
    if (status >= 200 || status < 100)
      break;
    start = hend; /* skip 100 Continue and friends */
  }
  free(out->head);
  free(out->body);
  out->body = NULL;
  out->body_len = 0;
  out->status = status;
  {
    const char *l = memchr(b->p + start, '\n', hend - start);
    size_t hl = (size_t)(b->p + hend - 2 - (l + 1));
    out->head = malloc(hl + 1);
    if (out->head == NULL)
      return -1;
    memcpy(out->head, l + 1, hl);
    out->head[hl] = '\0';
  }
  if (head_req || status == 204 || status == 304) {
    out->body = calloc(1, 1);
    return 1;
  }
  if ((v = find_header(out->head, "Transfer-Encoding", &vlen)) != NULL &&
      vlen >= 7 && strncasecmp(v + vlen - 7, "chunked", 7) == 0) {
    buf_t d = {0};
    int rc = dechunk(b->p + hend, b->len - hend, &d);
    if (rc == 1) {
      if (d.p == NULL)
        buf_add(&d, "", 0);
      out->body = d.p;
      out->body_len = d.len;
      return 1;
    }
    free(d.p);
    return rc < 0 || eof ? -1 : 0;
  }
  if ((v = find_header(out->head, "Content-Length", &vlen)) != NULL) {
    size_t cl;
    snprintf(tmp, sizeof(tmp), "%.*s", (int)(vlen < 31 ? vlen : 31), v);
    cl = (size_t)strtoull(tmp, NULL, 10);
    if (b->len - hend < cl)
      return eof ? -1 : 0;
    out->body = malloc(cl + 1);
    if (out->body == NULL)
      return -1;
    memcpy(out->body, b->p + hend, cl);
    out->body[cl] = '\0';
    out->body_len = cl;
    return 1;
  }
  if (!eof)
    return 0;
  out->body_len = b->len - hend;
  out->body = malloc(out->body_len + 1);
  if (out->body == NULL)
    return -1;
  memcpy(out->body, b->p + hend, out->body_len);
  out->body[out->body_len] = '\0';
  return 1;
}

int hrt_http(int port, const char *method, const char *path,
             const char *headers, const void *body, size_t body_len,
             int timeout_ms, hrt_resp_t *out) {
  long long deadline = hrt_now_ms() + (long long)timeout_ms * hrt_mult();
  buf_t req = {0}, in = {0};
  char line[512];
  size_t sent = 0;
  int fd, rc = -1, eof = 0, writing = 1, done = 0;
  int head_req = strcmp(method, "HEAD") == 0;

  memset(out, 0, sizeof(*out));
  fd = connect_to(port, deadline);
  if (fd < 0)
    return -1;
  snprintf(line, sizeof(line),
           "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n",
           method, path, port);
  buf_add(&req, line, strlen(line));
  if (headers != NULL)
    buf_add(&req, headers, strlen(headers));
  /* A caller that frames the body itself (chunked) gets no length. */
  if (body != NULL &&
      (headers == NULL || strcasestr(headers, "Transfer-Encoding:") == NULL)) {
    snprintf(line, sizeof(line), "Content-Length: %zu\r\n", body_len);
    buf_add(&req, line, strlen(line));
  }
  buf_add(&req, "\r\n", 2);
  if (body != NULL)
    buf_add(&req, body, body_len);

  while (!done) {
    struct pollfd p = {fd, (short)(POLLIN | (writing ? POLLOUT : 0)), 0};
    long long left = deadline - hrt_now_ms();
    int prc;
    if (left <= 0) {
      fprintf(stderr, "  httpc: %s %s: timed out after %d ms\n", method, path,
              timeout_ms * hrt_mult());
      goto out;
    }
    prc = poll(&p, 1, (int)left);
    if (prc < 0 && errno != EINTR)
      goto out;
    if (prc <= 0)
      continue;
    if (writing && (p.revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t w = send(fd, req.p + sent, req.len - sent, MSG_NOSIGNAL);
      if (w > 0) {
        sent += (size_t)w;
        if (sent == req.len)
          writing = 0; /* no half-close: some servers treat it as abort */
      } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
        writing = 0; /* the server stopped reading: read its answer */
      }
    }
    if (p.revents & (POLLIN | POLLERR | POLLHUP)) {
      char chunk[16384];
      ssize_t r = recv(fd, chunk, sizeof(chunk), 0);
      if (r > 0) {
        buf_add(&in, chunk, (size_t)r);
      } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
        if (r < 0 && in.len == 0) {
          fprintf(stderr, "  httpc: %s %s: %s before any answer\n", method,
                  path, strerror(errno));
          goto out;
        }
        eof = 1;
      }
      if (in.len > 0 || eof) {
        int pr = parse(&in, eof, head_req, out);
        if (pr < 0) {
          fprintf(stderr, "  httpc: %s %s: incomplete or malformed answer "
                          "(%zu bytes)\n", method, path, in.len);
          goto out;
        }
        done = pr == 1;
      }
    }
  }
  rc = 0;
out:
  close(fd);
  free(req.p);
  free(in.p);
  return rc;
}

const char *hrt_resp_header(const hrt_resp_t *r, const char *name, char *buf,
                            size_t n) {
  size_t vlen;
  const char *v;

  if (r->head == NULL || (v = find_header(r->head, name, &vlen)) == NULL)
    return NULL;
  snprintf(buf, n, "%.*s", (int)vlen, v);
  return buf;
}

void hrt_resp_free(hrt_resp_t *r) {
  free(r->head);
  free(r->body);
  memset(r, 0, sizeof(*r));
}
