/* httpc.h -- a tiny HTTP/1.1 client for integration tests (no libcurl).
 *
 * One request per connection over loopback TCP ("Connection: close"), with a
 * deadline on the whole exchange. It reads bodies framed by Content-Length,
 * chunked transfer coding or end of stream, and skips 1xx interim answers.
 * Responses own their memory (hrt_resp_free). Not thread-safe, no state. */
#ifndef HRT_HTTPC_H
#define HRT_HTTPC_H

#include <stddef.h>

typedef struct {
  int status;       /* e.g. 200; 0 when no response arrived */
  char *head;       /* the header block after the status line, NUL-ended */
  char *body;       /* decoded body, NUL-ended (may hold NULs before) */
  size_t body_len;
} hrt_resp_t;

/** Send one request to 127.0.0.1:port and read the answer.
 *  @param[in] headers extra header lines, each ending in "\r\n", or NULL.
 *  @param[in] body    request body or NULL; a body gets a Content-Length
 *                     unless headers has a Transfer-Encoding line, in which
 *                     case body must already be encoded that way. 
 *  @param[out] out    the response; free with hrt_resp_free even on error.
 *  Returns 0 when a complete response was read, -1 otherwise (connection
 *  refused, reset before an answer, timeout, malformed), with the reason on
 *  stderr. A server that answers early and closes while the body is still
 *  being sent (413) is fine: its answer is read. */
int hrt_http(int port, const char *method, const char *path,
             const char *headers, const void *body, size_t body_len,
             int timeout_ms, hrt_resp_t *out);

/** Value of the first header called name (case-insensitive), copied into
 *  buf without surrounding blanks; NULL when absent. */
const char *hrt_resp_header(const hrt_resp_t *r, const char *name, char *buf,
                            size_t n);

/** Release what a response owns; the struct may be reused. */
void hrt_resp_free(hrt_resp_t *r);

#endif
