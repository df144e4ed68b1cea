/* http.h -- the data plane: libmicrohttpd daemon, routing, handlers.
 *
 * hr_http_start() runs MHD with its internal epoll thread pool; every
 * request is handled on one of those threads from the first byte to the
 * response, with its own Redis connection (ctxstore) and a reference to the
 * model snapshot it started with. Routes are a static table (path, method,
 * handler): an unknown path is 404, a known path with another method 405
 * with Allow. Bodies accumulate in a per-request buffer capped at
 * http.max_body_bytes (413 beyond it, decided from Content-Length before
 * reading when possible) and are freed when MHD reports the request
 * complete. The server's configuration is an immutable snapshot swapped on
 * SIGHUP (hr_http_set_config); a request reads the pointer once. */
#ifndef HR_HTTP_H
#define HR_HTTP_H

#include "hr/config.h"
#include "hr/registry.h"

typedef struct hr_http hr_http_t;

/** Start serving on cfg->listen_host:listen_port (0 = any free port).
 *  `reg` is borrowed and must outlive the server. Returns NULL with `err`
 *  set (HR_EIO: cannot bind, HR_EINVAL: bad address). */
hr_http_t *hr_http_start(const hr_config_t *cfg, hr_registry_t *reg,
                         hr_error_t *err);

/** The bound port (useful with port 0). */
int hr_http_port(const hr_http_t *h);

/** Replace the configuration used by new requests (copied). Requests in
 *  flight keep the snapshot they started with; it is freed when the last of
 *  them completes. Only the keys documented as reloadable take effect.
 *  Returns 0 or HR_ENOMEM. Call from one thread. */
int hr_http_set_config(hr_http_t *h, const hr_config_t *cfg);

/** Stop accepting connections (new ones are refused at once), let
 *  in-flight requests finish for at most `grace_ms`, wait for a running
 *  admin job, then stop the threads and free everything. A worker inside a
 *  Redis call holds the stop until that call times out. */
void hr_http_stop(hr_http_t *h, int grace_ms);

#endif
