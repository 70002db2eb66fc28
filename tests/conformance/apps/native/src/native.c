/* The conformance suite's native test app: every function but "hello" is an
 * entry point of bin/native.so. Each one exercises one host behaviour
 * (request passing, crash and timeout isolation, failure, auth levels, no
 * http output, queue and timer triggers); the tests assert what the host
 * makes of it, so the functions themselves stay trivial. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <nimbus/function.h>

int echo(struct nimbus_ctx *ctx);
int crash(struct nimbus_ctx *ctx);
int hang(struct nimbus_ctx *ctx);
int fail(struct nimbus_ctx *ctx);
int keyed(struct nimbus_ctx *ctx);
int adminonly(struct nimbus_ctx *ctx);
int nobody(struct nimbus_ctx *ctx);
int qworker(struct nimbus_ctx *ctx);
int tick(struct nimbus_ctx *ctx);

static void respond(struct nimbus_ctx *ctx, int status, const char *type, const void *body,
                    size_t len)
{
    nimbus_set_status(ctx, status);
    if (type) nimbus_set_header(ctx, "Content-Type", type);
    nimbus_write(ctx, body, len);
}

/* A JSON string, or null when s is NULL or not UTF-8. */
static json_t *str_or_null(const char *s, size_t len)
{
    json_t *v = s ? json_stringn(s, len) : NULL;
    return v ? v : json_null();
}

/* GET|POST|... /api/echo/{*rest}: what the function was given, as JSON
 * {function, method, path, rest, params, query, headers: {x-test}, body_len}
 * (params: every route value the host passed, by name); with ?raw=1 the
 * request body itself, byte for byte, under the request's Content-Type. */
int echo(struct nimbus_ctx *ctx)
{
    const struct nimbus_request *req = ctx->req;
    if (!req) return 1;

    const char *raw = nimbus_query(ctx, "raw");
    if (raw && strcmp(raw, "1") == 0) {
        respond(ctx, 200, nimbus_header(ctx, "Content-Type"), req->body, req->body_len);
        return 0;
    }

    const char *rest = nimbus_route_param(ctx, "rest");
    const char *xtest = nimbus_header(ctx, "x-test");
    json_t *query = json_object(), *headers = json_object(), *params = json_object();
    for (size_t i = 0; i < req->nparams; i++)
        json_object_set_new(params, req->params[i].name,
                            str_or_null(req->params[i].value, req->params[i].value_len));
    for (size_t i = 0; i < req->nquery; i++)
        json_object_set_new(query, req->query[i].name,
                            str_or_null(req->query[i].value, req->query[i].value_len));
    if (xtest) json_object_set_new(headers, "x-test", str_or_null(xtest, strlen(xtest)));

    json_t *v = json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:I}", "function",
                          ctx->function_name ? ctx->function_name : "", "method", req->method,
                          "path", req->path, "rest", str_or_null(rest, rest ? strlen(rest) : 0),
                          "params", params, "query", query, "headers", headers, "body_len",
                          (json_int_t)req->body_len);
    char *text = v ? json_dumps(v, JSON_COMPACT) : NULL;
    json_decref(v);
    if (!text) return 1;
    respond(ctx, 200, "application/json", text, strlen(text));
    free(text);
    return 0;
}

/* A real SIGSEGV from a NULL write. Both volatiles matter: the pointer's
 * keeps the compiler from proving it NULL (and emitting a trap instead),
 * the target's keeps the store from being dropped as dead. */
int crash(struct nimbus_ctx *ctx)
{
    volatile int *volatile p = NULL;
    nimbus_log(ctx, NIMBUS_LOG_INFO, "about to crash");
    *p = 42;
    raise(SIGSEGV); /* not reached */
    return 0;
}

/* Runs until functionTimeout (2 s in this app) has the worker killed. */
int hang(struct nimbus_ctx *ctx)
{
    nimbus_log(ctx, NIMBUS_LOG_INFO, "hanging");
    for (;;) sleep(1);
}

int fail(struct nimbus_ctx *ctx)
{
    nimbus_log(ctx, NIMBUS_LOG_ERROR, "failing on purpose");
    return 1;
}

int keyed(struct nimbus_ctx *ctx)
{
    respond(ctx, 200, "text/plain", "ok", 2);
    return 0;
}

int adminonly(struct nimbus_ctx *ctx)
{
    respond(ctx, 200, "text/plain", "ok", 2);
    return 0;
}

/* No http output binding and nothing written: the host answers 204. */
int nobody(struct nimbus_ctx *ctx)
{
    (void)ctx;
    return 0;
}

/* Queue "work": "fail" fails (retried, then poisoned after maxDequeueCount
 * 3); anything else goes to queue "done" in upper case (ASCII). */
int qworker(struct nimbus_ctx *ctx)
{
    if (ctx->trigger_len == 4 && memcmp(ctx->trigger_data, "fail", 4) == 0) return 1;
    char *up = malloc(ctx->trigger_len + 1);
    if (!up) return 1;
    for (size_t i = 0; i < ctx->trigger_len; i++) {
        char c = ctx->trigger_data[i];
        up[i] = c >= 'a' && c <= 'z' ? (char)(c - 32) : c;
    }
    up[ctx->trigger_len] = '\0';
    int rc = nimbus_output(ctx, "done", up, ctx->trigger_len);
    free(up);
    return rc == 0 ? 0 : 1;
}

/* Timer: the timer info JSON, as given, to queue "ticks". */
int tick(struct nimbus_ctx *ctx)
{
    return nimbus_output(ctx, "ticks", ctx->trigger_data, ctx->trigger_len) == 0 ? 0 : 1;
}
