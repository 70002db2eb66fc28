/* The C API for Nimbus native functions.
 *
 * A native function is a shared object that exports one function per entry
 * point with the signature of nimbus_function_fn:
 *
 *     #include <nimbus/function.h>
 *     int run(struct nimbus_ctx *ctx)
 *     {
 *         nimbus_set_status(ctx, 200);
 *         nimbus_set_header(ctx, "Content-Type", "text/plain");
 *         nimbus_write(ctx, "hello", 5);
 *         return 0;
 *     }
 *
 * and is named in its function.json by "scriptFile" (the .so, relative to the
 * function folder) and "entryPoint" (the symbol; default "run").
 * Build: cc -shared -fPIC $(pkg-config --cflags nimbus) -o hello.so hello.c
 * (see docs/functions-in-c.md).
 *
 * The function runs in a worker process supervised by the host: a crash or
 * a run past functionTimeout fails only this invocation (HTTP 500) and the
 * worker is replaced. Return 0 for success; any other value fails the
 * invocation (a queue message is then retried). Everything reachable from
 * ctx is valid only during the call; strings are NUL-terminated.
 * Nothing here needs linking against Nimbus: every call goes through the
 * table of function pointers in ctx->api. */
#ifndef NIMBUS_FUNCTION_H
#define NIMBUS_FUNCTION_H
#include <stdarg.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NIMBUS_FUNCTION_ABI 1

struct nimbus_kv {
    const char *name;
    const char *value;
    size_t value_len;
};

/* The HTTP request of an httpTrigger invocation. */
struct nimbus_request {
    const char *method;     /* "GET", ... */
    const char *url;        /* absolute URL as received */
    const char *path;       /* path, still %-encoded */
    const struct nimbus_kv *params;  /* route values, decoded */
    size_t nparams;
    const struct nimbus_kv *query;   /* decoded */
    size_t nquery;
    const struct nimbus_kv *headers;
    size_t nheaders;
    const void *body;       /* binary-safe; NUL-terminated for convenience */
    size_t body_len;
};

enum nimbus_log_level { NIMBUS_LOG_DEBUG, NIMBUS_LOG_INFO, NIMBUS_LOG_WARN, NIMBUS_LOG_ERROR };

struct nimbus_ctx;

struct nimbus_api {
    /* An app setting (local.settings.json Values, plus WEBSITE_HOSTNAME etc.),
     * NULL when unset. */
    const char *(*setting)(struct nimbus_ctx *ctx, const char *name);
    /* An input binding's value (table input: JSON text), NULL when absent. */
    const char *(*input)(struct nimbus_ctx *ctx, const char *binding, size_t *len);
    /* HTTP response (for the function's http output binding). */
    void (*set_status)(struct nimbus_ctx *ctx, int status);
    void (*set_header)(struct nimbus_ctx *ctx, const char *name, const char *value);
    void (*write)(struct nimbus_ctx *ctx, const void *data, size_t len);
    /* One value for an output binding: a queue message text (call again for
     * several messages), or a table entity as a JSON object. Returns 0, or
     * -1 when the function has no such output binding. */
    int (*output)(struct nimbus_ctx *ctx, const char *binding, const void *data, size_t len);
    void (*log)(struct nimbus_ctx *ctx, enum nimbus_log_level level, const char *fmt,
                va_list ap);
    /* A queue output message that becomes visible only after visibility_ms
     * (what QueueClient.send_message(visibility_timeout=...) does); 0 is
     * the same as output(). Returns 0, or -1 when the function has no such
     * queue output binding. */
    int (*output_delayed)(struct nimbus_ctx *ctx, const char *binding, const void *data,
                          size_t len, long long visibility_ms);
};

struct nimbus_ctx {
    int abi;                          /* NIMBUS_FUNCTION_ABI */
    const char *function_name;
    const char *invocation_id;
    const char *trigger;              /* "httpTrigger", "queueTrigger", "timerTrigger", "manual" */
    const struct nimbus_request *req; /* httpTrigger only, else NULL */
    /* Other triggers: the queue message text, the timer info JSON
     * ({Schedule, ScheduleStatus, IsPastDue}) or the manual "input". */
    const char *trigger_data;
    size_t trigger_len;
    const char *metadata_json;        /* trigger metadata as a JSON object */
    const struct nimbus_api *api;
    void *host;                       /* opaque to the function */
};

typedef int (*nimbus_function_fn)(struct nimbus_ctx *ctx);

/* Conveniences. */
static inline const char *nimbus_setting(struct nimbus_ctx *ctx, const char *name)
{
    return ctx->api->setting(ctx, name);
}
static inline const char *nimbus_input(struct nimbus_ctx *ctx, const char *binding, size_t *len)
{
    return ctx->api->input(ctx, binding, len);
}
static inline void nimbus_set_status(struct nimbus_ctx *ctx, int status)
{
    ctx->api->set_status(ctx, status);
}
static inline void nimbus_set_header(struct nimbus_ctx *ctx, const char *name, const char *value)
{
    ctx->api->set_header(ctx, name, value);
}
static inline void nimbus_write(struct nimbus_ctx *ctx, const void *data, size_t len)
{
    ctx->api->write(ctx, data, len);
}
static inline int nimbus_output(struct nimbus_ctx *ctx, const char *binding, const void *data,
                                size_t len)
{
    return ctx->api->output(ctx, binding, data, len);
}
static inline int nimbus_output_delayed(struct nimbus_ctx *ctx, const char *binding,
                                        const void *data, size_t len, long long visibility_ms)
{
    return ctx->api->output_delayed(ctx, binding, data, len, visibility_ms);
}
static inline void nimbus_log(struct nimbus_ctx *ctx, enum nimbus_log_level level,
                              const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static inline void nimbus_log(struct nimbus_ctx *ctx, enum nimbus_log_level level,
                              const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ctx->api->log(ctx, level, fmt, ap);
    va_end(ap);
}

static inline const char *nimbus__kv_find(const struct nimbus_kv *kv, size_t n, const char *name,
                                          int nocase)
{
    for (size_t i = 0; i < n; i++) {
        const char *a = kv[i].name, *b = name;
        while (*a && *b) {
            char ca = *a, cb = *b;
            if (nocase) {
                if (ca >= 'A' && ca <= 'Z') ca = (char)(ca + 32);
                if (cb >= 'A' && cb <= 'Z') cb = (char)(cb + 32);
            }
            if (ca != cb) break;
            a++, b++;
        }
        if (!*a && !*b) return kv[i].value;
    }
    return NULL;
}
static inline const char *nimbus_route_param(const struct nimbus_ctx *ctx, const char *name)
{
    return ctx->req ? nimbus__kv_find(ctx->req->params, ctx->req->nparams, name, 1) : NULL;
}
static inline const char *nimbus_query(const struct nimbus_ctx *ctx, const char *name)
{
    return ctx->req ? nimbus__kv_find(ctx->req->query, ctx->req->nquery, name, 1) : NULL;
}
static inline const char *nimbus_header(const struct nimbus_ctx *ctx, const char *name)
{
    return ctx->req ? nimbus__kv_find(ctx->req->headers, ctx->req->nheaders, name, 1) : NULL;
}

#ifdef __cplusplus
}
#endif
#endif
