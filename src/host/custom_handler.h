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
    char *const *env;          /* "NAME=value", NULL-terminated (app settings etc.) */
    const char *host_version;  /* for X-Azure-Functions-HostVersion / User-Agent */
    int64_t ready_timeout_ms;  /* how long to wait for readiness (60 s as Azure docs) */
    const struct nb_log *log;
};

/* Start the handler and wait until it is ready. NB_ERR_IO when it cannot be
 * started or never becomes ready (message logged). */
enum nb_err nb_custom_handler_start(const struct nb_custom_handler_start *cfg,
                                    struct nb_custom_handler **out);
/* Invoke inv->fn (forwarding when configured and the function qualifies).
 * res is initialised by the caller. NB_OK when res holds the answer. */
enum nb_err nb_custom_handler_invoke(struct nb_custom_handler *ch,
                                     const struct nb_invocation *inv, struct nb_inv_result *res);
/* Terminate the handler process (SIGTERM, then SIGKILL) and free. */
void nb_custom_handler_stop(struct nb_custom_handler *ch);

#endif
