/* An HTTP listener: one libmicrohttpd daemon serving one service. It turns
 * each HTTP exchange into an nb_req, calls the service's handler once the
 * whole body is in (or known to be too large), adds the headers every Azure
 * response carries (x-ms-request-id, x-ms-version echo, Date,
 * x-ms-client-request-id echo), sends the nb_resp and writes one log line.
 *
 * Threads: one thread per connection (libmicrohttpd's model), so a handler
 * may block (e.g. waiting for a group commit) without stalling other
 * connections, and concurrent writers share one commit. Handlers therefore
 * run concurrently and must only touch thread-safe state. */
#ifndef NB_HTTP_LISTENER_H
#define NB_HTTP_LISTENER_H
#include <stdbool.h>
#include <stddef.h>
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "http/request.h"

typedef void (*nb_http_handler)(void *ctx, struct nb_req *req, struct nb_resp *resp);

struct nb_http_listener_config {
    const char *service;   /* for logs: "host", "queue", ... */
    const char *host;      /* address to bind, e.g. "127.0.0.1" or "::1" */
    int port;              /* 0 picks a free port */
    size_t max_body;       /* bodies above this get req->body_too_large */
    nb_http_handler handler;
    void *ctx;
    const struct nb_log *log;
    struct nb_clock *clock;
};

struct nb_http_listener;

/* Bind and start serving. *out is freed by nb_http_stop. NB_ERR_IO when the
 * address cannot be bound (message logged). */
enum nb_err nb_http_listen(const struct nb_http_listener_config *cfg,
                           struct nb_http_listener **out);
/* The port actually bound (useful with port 0). */
int nb_http_port(const struct nb_http_listener *l);
/* Stop accepting new connections; in-flight requests go on. */
void nb_http_quiesce(struct nb_http_listener *l);
/* Wait up to timeout_ms for in-flight requests to finish; true when none is
 * left. */
bool nb_http_drain(struct nb_http_listener *l, int timeout_ms);
/* Wait (up to timeout_ms) for in-flight requests to finish, then close every
 * connection and free the listener. NULL is a no-op. */
void nb_http_stop(struct nb_http_listener *l, int timeout_ms);

#endif
