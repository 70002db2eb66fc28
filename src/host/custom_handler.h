/* Custom handlers: the Azure Functions custom-handler protocol. The host
 * starts the app's handler executable (host.json customHandler.description)
 * with FUNCTIONS_CUSTOMHANDLER_PORT and its sibling variables, waits until
 * GET / on that port answers anything, then invokes functions with
 *   POST http://127.0.0.1:PORT/{functionName}  {"Data":{..},"Metadata":{..}}
 * and reads {"Outputs":{..},"Logs":[..],"ReturnValue":..}; or, for an
 * httpTrigger+http function when enableForwardingHttpRequest is on, forwards
 * the original request (method, path incl. prefix, query, headers, body) and
 * relays the reply verbatim. A handler process that dies is restarted; the
 * invocation in flight fails (HTTP 500) and the host stays up. */
#ifndef NB_HOST_CUSTOM_HANDLER_H
#define NB_HOST_CUSTOM_HANDLER_H
#include <stdint.h>
#include "core/err.h"
#include "core/log.h"
#include "host/app.h"
#include "host/invocation.h"

struct nb_custom_handler;

struct nb_custom_handler_start {
    const struct nb_app *app;  /* customHandler config, root, function timeout */
    char *const *env;          /* "NAME=value", NULL-terminated (app settings etc.);
                                * NULL = our own environment */
    const char *host_version;  /* for X-Azure-Functions-HostVersion / User-Agent */
    int64_t ready_timeout_ms;  /* how long to wait for readiness (60 s as Azure docs);
                                * <= 0 means 60 s */
    const struct nb_log *log;  /* NULL = text to stderr */
};

/* Start the handler and wait until it is ready. app, env and log are
 * borrowed and must outlive the handler (env is read again at each restart).
 * The child runs in app->custom.working_dir (default app->root) in a process
 * group of its own, with stdin from /dev/null and our stdout/stderr, and the
 * five protocol variables added to env (FUNCTIONS_CUSTOMHANDLER_PORT and
 * _WORKER_ID, FUNCTIONS_HTTPWORKER_PORT and _ID, FUNCTIONS_APP_ROOT_PATH).
 * A supervisor thread restarts the child when it exits (at once; after 1 s,
 * 2 s ... 30 s when it keeps dying within 10 s of start). NB_ERR_IO when it
 * cannot be started or never becomes ready (message logged). */
enum nb_err nb_custom_handler_start(const struct nb_custom_handler_start *cfg,
                                    struct nb_custom_handler **out);
/* Invoke inv->fn (forwarding when configured and the function qualifies).
 * res is initialised by the caller. Thread-safe; invocations run
 * concurrently over kept-alive connections. NB_OK when res holds the
 * answer, which may be a failure:
 *  - the handler answered non-2xx, or a reply that is not a JSON object
 *    (default mode; in forwarding mode every status is relayed, ok);
 *  - "function timed out": the exchange took longer than
 *    app->function_timeout_ms (no limit when < 0). The handler is not
 *    killed, as it serves other invocations; crashed stays false;
 *  - the handler died during the invocation: crashed is true, the handler
 *    is restarted;
 *  - the handler was not ready within ready_timeout_ms (it is restarting).
 * A request is never sent twice, except when no byte of it was written
 * because the handler had just died (then it goes to its successor).
 * NB_ERR_STOPPED once nb_custom_handler_stop has begun. */
enum nb_err nb_custom_handler_invoke(struct nb_custom_handler *ch,
                                     const struct nb_invocation *inv, struct nb_inv_result *res);
/* Fail the invocations in flight and refuse new ones (shutdown); the
 * handler process keeps running until nb_custom_handler_stop. NULL no-op. */
void nb_custom_handler_cancel(struct nb_custom_handler *ch);
/* Terminate the handler's process group (SIGTERM, SIGKILL after 2 s) and
 * free. No invocation may be in flight. NULL is a no-op. */
void nb_custom_handler_stop(struct nb_custom_handler *ch);

#endif
