/* The host listener (default 7071): what `func start` serves for a function
 * app. It owns the HTTP side of the function host:
 *  - /admin/... (never reachable by a function route): ping (anonymous), and,
 *    with the master key, host status, the key management API and manual
 *    runs of non-HTTP functions;
 *  - function routes under extensions.http.routePrefix, with route
 *    templates, method sets, auth levels (x-functions-key or ?code=) and
 *    Host.CORS from local.settings.json;
 *  - with --enable-test-hooks only: POST /admin/test/clock?advance_ms=N.
 * The function runtime (workers, triggers, keys) lives in runtime.h. */
#ifndef NB_HOST_HOST_H
#define NB_HOST_HOST_H
#include <stdio.h>
#include "core/err.h"
#include "host/app.h"
#include "http/service.h"

struct nb_host;

struct nb_host_config {
    const struct nb_service_env *env;
    const struct nb_app *app;   /* borrowed; outlives the host */
    int port;                   /* 0 picks a free port */
    const char *exe;            /* this executable (native workers re-execute it) */
    const char *version;
    int queue_port, table_port; /* where this server's storage services listen */
    bool native_in_process;     /* --native-in-process */
};

/* Bind, start the runtime, and serve. *out is freed by nb_host_stop. */
enum nb_err nb_host_start(const struct nb_host_config *cfg, struct nb_host **out);
int nb_host_port(const struct nb_host *h);
/* Print every function with its trigger, URL or schedule and auth level, as
 * `func start` does, then the load problems. */
void nb_host_print_functions(const struct nb_host *h, FILE *f);
void nb_host_quiesce(struct nb_host *h);
/* Finish in-flight requests (bounded wait), stop the runtime, free. NULL is
 * a no-op. */
void nb_host_stop(struct nb_host *h);

#endif
