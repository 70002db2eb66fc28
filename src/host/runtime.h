/* The function runtime behind the host listener: app settings resolved into
 * the workers' environment, the keys, the native worker pool, the custom
 * handler, the non-HTTP triggers, and nb_runtime_run, which takes one
 * invocation through its input bindings, its worker and its outputs.
 * Everything here is thread-safe once started. */
#ifndef NB_HOST_RUNTIME_H
#define NB_HOST_RUNTIME_H
#include "core/err.h"
#include "host/app.h"
#include "host/invocation.h"
#include "host/keys.h"
#include "http/service.h"

struct nb_runtime;

struct nb_runtime_config {
    const struct nb_service_env *env;
    const struct nb_app *app;
    const char *exe;         /* this executable, re-executed for native workers */
    const char *version;
    int host_port;           /* for WEBSITE_HOSTNAME */
    int queue_port;          /* for AzureWebJobsStorage given to workers */
    int table_port;
    bool native_in_process;  /* run native functions in this process (no isolation) */
};

/* Start keys, workers and triggers. NB_ERR_IO when a custom handler cannot
 * be started (logged). *out is freed by nb_runtime_stop. */
enum nb_err nb_runtime_start(const struct nb_runtime_config *cfg, struct nb_runtime **out);
/* Run one invocation end to end; res is initialised by the caller. */
void nb_runtime_run(struct nb_runtime *rt, const struct nb_invocation *inv,
                    struct nb_inv_result *res);
struct nb_keys *nb_runtime_keys(struct nb_runtime *rt);
/* Shutdown: start no new trigger invocations (running ones go on). */
void nb_runtime_quiesce(struct nb_runtime *rt);
/* Whether no trigger invocation is running. */
bool nb_runtime_triggers_idle(struct nb_runtime *rt);
/* Shutdown, after the grace period: fail the invocations in flight in worker processes
 * and the custom handler so nothing waits on a hung function (in-process
 * native functions cannot be interrupted). NULL is a no-op. */
void nb_runtime_cancel(struct nb_runtime *rt);
/* Stop triggers, workers and the handler; free. NULL is a no-op. */
void nb_runtime_stop(struct nb_runtime *rt);

#endif
