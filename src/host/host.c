/* Host listener routes (see host.h). Admin paths are matched before any
 * function route, so no route template can capture them; test hooks never
 * exist unless the operator opted in at start-up. Keys are compared only
 * through nb_keys_check (constant time) and never logged: the request log
 * redacts ?code= and headers are not logged at all. */
#include "host/host.h"
#include "core/encode.h"
#include "core/mem.h"
#include "core/random.h"
#include "host/keys.h"
#include "host/route.h"
#include "host/runtime.h"
#include "http/listener.h"
#include <errno.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct nb_host {
    struct nb_service_env env;
    const struct nb_app *app;
    struct nb_http_listener *listener;
    struct nb_router *router;
    _Atomic(struct nb_runtime *) runtime; /* NULL until started: answer 503 */
    const char *version;
    nb_time_ms started_at;
};

static void json_reply(struct nb_req *req, struct nb_resp *resp, int status, json_t *body)
{
    resp->status = status;
    nb_resp_header(req, resp, "Content-Type", "application/json; charset=utf-8");
    char *text = json_dumps(body, JSON_COMPACT);
    if (text) nb_buf_adds(&resp->body, text);
    free(text);
    json_decref(body);
}

static void error_reply(struct nb_req *req, struct nb_resp *resp, int status, const char *code,
                        const char *message)
{
    resp->error_code = code;
    json_reply(req, resp, status, json_pack("{s:s,s:s}", "code", code, "message", message));
}

/* The key a request presents: x-functions-key wins over ?code=. */
static const char *presented_key(const struct nb_req *req)
{
    const char *k = nb_req_header(req, "x-functions-key");
    if (k && *k) return k;
    k = nb_req_query(req, "code");
    return k && *k ? k : NULL;
}

static bool is_get(const struct nb_req *req)
{
    return strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
}

/* --- test hooks ---------------------------------------------------------------- */

/* POST /admin/test/clock?advance_ms=N: move the server clock forward. */
static void test_clock(struct nb_host *h, struct nb_req *req, struct nb_resp *resp)
{
    const char *adv = nb_req_query(req, "advance_ms");
    if (adv) {
        char *end = NULL;
        errno = 0;
        long long ms = strtoll(adv, &end, 10);
        if (errno || end == adv || *end || ms < 0) {
            error_reply(req, resp, 400, "BadRequest", "advance_ms must be a non-negative integer");
            return;
        }
        nb_clock_advance(h->env.clock, ms);
        nb_notify_signal(h->env.wake); /* timers and pollers re-read the clock */
    }
    json_reply(req, resp, 200, json_pack("{s:I}", "now_ms", (json_int_t)nb_clock_now(h->env.clock)));
}

/* --- admin: keys ------------------------------------------------------------------ */

static json_t *links(const struct nb_req *req)
{
    const char *host = nb_req_header(req, "Host");
    char *href = nb_asprintf("http://%s%s", host ? host : "localhost", req->raw_path);
    json_t *l = json_pack("[{s:s,s:s}]", "rel", "self", "href", href);
    free(href);
    return l;
}

static json_t *key_json(const struct nb_req *req, const char *name, const char *value)
{
    return json_pack("{s:s,s:s,s:o}", "name", name, "value", value, "links", links(req));
}

/* /admin/host/keys[/{name}], /admin/host/functionkeys[...], /admin/host/systemkeys[...],
 * /admin/functions/{fn}/keys[/{name}]. `name` is NULL for the collection. */
static void keys_api(struct nb_host *h, struct nb_runtime *rt, struct nb_req *req,
                     struct nb_resp *resp, enum nb_key_scope scope, const char *fn,
                     const char *name)
{
    struct nb_keys *keys = nb_runtime_keys(rt);
    if (name && strcmp(name, "_master") == 0 && scope == NB_KEYS_HOST) scope = NB_KEYS_MASTER;
    (void)h;
    if (!name) {
        if (!is_get(req)) {
            error_reply(req, resp, 405, "MethodNotAllowed", "use GET on a key collection");
            return;
        }
        struct nb_key_list list = { 0 };
        if (nb_keys_list(keys, scope, fn, &list)) {
            error_reply(req, resp, 500, "InternalError", "cannot read the keys");
            return;
        }
        json_t *arr = json_array();
        for (size_t i = 0; i < list.n; i++)
            json_array_append_new(arr, json_pack("{s:s,s:s}", "name", list.items[i].name,
                                                 "value", list.items[i].value));
        nb_key_list_cleanup(&list);
        json_reply(req, resp, 200, json_pack("{s:o,s:o}", "keys", arr, "links", links(req)));
        return;
    }
    if (is_get(req)) {
        char *value = NULL;
        enum nb_err rc = nb_keys_get(keys, scope, fn, name, &value);
        if (rc == NB_ERR_NOT_FOUND) {
            error_reply(req, resp, 404, "NotFound", "no such key");
            return;
        }
        if (rc) {
            error_reply(req, resp, 500, "InternalError", "cannot read the key");
            return;
        }
        json_reply(req, resp, 200, key_json(req, scope == NB_KEYS_MASTER ? "_master" : name, value));
        free(value);
        return;
    }
    if (strcmp(req->method, "PUT") == 0 || strcmp(req->method, "POST") == 0) {
        const char *value = NULL;
        json_t *body = NULL;
        if (strcmp(req->method, "PUT") == 0) {
            body = json_loadb(req->body.data ? req->body.data : "", req->body.len, 0, NULL);
            const json_t *v = json_object_get(body, "value");
            if (!json_is_string(v)) {
                json_decref(body);
                error_reply(req, resp, 400, "BadRequest",
                            "PUT needs a JSON body {\"name\": ..., \"value\": ...}");
                return;
            }
            value = json_string_value(v);
        }
        bool created = false;
        char *stored = NULL;
        enum nb_err rc = nb_keys_set(keys, scope, fn, name, value, &created, &stored);
        json_decref(body);
        if (rc == NB_ERR_INVALID) {
            error_reply(req, resp, 400, "BadRequest", "invalid key name or value");
            return;
        }
        if (rc) {
            error_reply(req, resp, 500, "InternalError", "cannot store the key");
            return;
        }
        json_reply(req, resp, created ? 201 : 200,
                   key_json(req, scope == NB_KEYS_MASTER ? "_master" : name, stored));
        free(stored);
        return;
    }
    if (strcmp(req->method, "DELETE") == 0) {
        if (scope == NB_KEYS_MASTER) {
            error_reply(req, resp, 400, "BadRequest", "the master key cannot be deleted");
            return;
        }
        enum nb_err rc = nb_keys_delete(keys, scope, fn, name);
        if (rc == NB_ERR_NOT_FOUND) {
            error_reply(req, resp, 404, "NotFound", "no such key");
            return;
        }
        if (rc) {
            error_reply(req, resp, rc == NB_ERR_INVALID ? 400 : 500, "BadRequest",
                        "cannot delete the key");
            return;
        }
        resp->status = 204;
        return;
    }
    error_reply(req, resp, 405, "MethodNotAllowed", "unsupported method");
}

/* --- admin: functions -------------------------------------------------------------- */

static const char *trigger_name(const struct nb_function *fn)
{
    const struct nb_binding *t = nb_function_trigger(fn);
    return t ? t->type_name : "?";
}

static void manual_run(struct nb_host *h, struct nb_runtime *rt, const struct nb_function *fn,
                       struct nb_req *req, struct nb_resp *resp)
{
    const struct nb_binding *t = nb_function_trigger(fn);
    if (t && t->type == NB_BIND_HTTP_TRIGGER) {
        error_reply(req, resp, 400, "BadRequest",
                    "HTTP-triggered functions are run through their own URL");
        return;
    }
    json_t *body = json_loadb(req->body.data ? req->body.data : "", req->body.len, 0, NULL);
    const json_t *in = json_object_get(body, "input");
    const char *input = json_is_string(in) ? json_string_value(in) : "";
    struct nb_invocation inv = { 0 };
    inv.fn = fn;
    nb_random_uuid(inv.id);
    inv.kind = NB_TRIGGER_MANUAL;
    inv.trigger_data = input;
    inv.trigger_len = strlen(input);
    inv.metadata_json = "{}";
    struct nb_inv_result res;
    nb_inv_result_init(&res);
    nb_runtime_run(rt, &inv, &res);
    nb_inv_result_cleanup(&res);
    json_decref(body);
    (void)h;
    resp->status = 202;
}

static void functions_list(struct nb_host *h, struct nb_req *req, struct nb_resp *resp)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < h->app->nfunctions; i++) {
        const struct nb_function *fn = &h->app->functions[i];
        json_array_append_new(arr, json_pack("{s:s,s:s,s:b,s:s}", "name", fn->name, "trigger",
                                             trigger_name(fn), "isDisabled", fn->disabled,
                                             "language",
                                             fn->worker == NB_WORKER_NATIVE ? "native"
                                                                           : "custom"));
    }
    json_reply(req, resp, 200, arr);
}

/* Split "/admin/..." into at most 5 decoded segments (in the arena). */
static size_t split_path(struct nb_req *req, const char *path, char **seg, size_t max)
{
    size_t n = 0;
    const char *p = path;
    while (*p == '/') p++;
    while (*p && n < max + 1) {
        size_t len = strcspn(p, "/");
        char *s = nb_arena_alloc(&req->arena, len + 1);
        size_t out = nb_pct_decode(p, len, s);
        s[out] = '\0';
        if (n < max) seg[n] = s;
        n++;
        p += len;
        while (*p == '/') p++;
    }
    return n;
}

static void admin(struct nb_host *h, struct nb_req *req, struct nb_resp *resp)
{
    const char *path = req->raw_path;
    if (strcmp(path, "/admin/host/ping") == 0) {
        if (is_get(req) || strcmp(req->method, "POST") == 0) {
            resp->status = atomic_load(&h->runtime) ? 200 : 503;
            return;
        }
        error_reply(req, resp, 405, "MethodNotAllowed", "use GET or POST");
        return;
    }
    if (h->env.test_hooks && strcmp(path, "/admin/test/clock") == 0 &&
        strcmp(req->method, "POST") == 0) {
        test_clock(h, req, resp);
        return;
    }
    struct nb_runtime *rt = atomic_load(&h->runtime);
    if (!rt) {
        error_reply(req, resp, 503, "ServiceUnavailable", "the host is starting");
        return;
    }
    const char *key = presented_key(req);
    if (!key || nb_keys_check(nb_runtime_keys(rt), NULL, key) != NB_GRANT_ADMIN) {
        error_reply(req, resp, 401, "Unauthorized", "the master key is required");
        return;
    }
    char *seg[5] = { 0 };
    size_t n = split_path(req, path, seg, 5);
    /* seg[0] == "admin" */
    if (n == 3 && strcmp(seg[1], "host") == 0 && strcmp(seg[2], "status") == 0 && is_get(req)) {
        nb_time_ms now = nb_clock_now(h->env.clock);
        json_reply(req, resp, 200,
                   json_pack("{s:s,s:s,s:s,s:I,s:i,s:i}", "id", "nimbus", "state", "Running",
                             "version", h->version, "processUptime",
                             (json_int_t)(now - h->started_at), "functionCount",
                             (int)h->app->nfunctions, "problemCount", (int)h->app->nproblems));
        return;
    }
    if (n >= 3 && n <= 4 && strcmp(seg[1], "host") == 0) {
        enum nb_key_scope scope;
        if (strcmp(seg[2], "keys") == 0 || strcmp(seg[2], "functionkeys") == 0)
            scope = NB_KEYS_HOST;
        else if (strcmp(seg[2], "systemkeys") == 0)
            scope = NB_KEYS_SYSTEM;
        else
            goto not_found;
        keys_api(h, rt, req, resp, scope, NULL, n == 4 ? seg[3] : NULL);
        return;
    }
    if (n == 2 && strcmp(seg[1], "functions") == 0 && is_get(req)) {
        functions_list(h, req, resp);
        return;
    }
    if (n >= 3 && strcmp(seg[1], "functions") == 0) {
        const struct nb_function *fn = nb_app_function(h->app, seg[2]);
        if (!fn) {
            error_reply(req, resp, 404, "NotFound", "no such function");
            return;
        }
        if (n == 3 && strcmp(req->method, "POST") == 0) {
            manual_run(h, rt, fn, req, resp);
            return;
        }
        if ((n == 4 || n == 5) && strcmp(seg[3], "keys") == 0) {
            keys_api(h, rt, req, resp, NB_KEYS_FUNCTION, fn->name, n == 5 ? seg[4] : NULL);
            return;
        }
    }
not_found:
    error_reply(req, resp, 404, "NotFound", "no such admin endpoint");
}

/* --- CORS (Host.CORS) ---------------------------------------------------------------- */

static const char *cors_allowed(const struct nb_host *h, const char *origin)
{
    if (!origin) return NULL;
    for (size_t i = 0; i < h->app->ncors_origins; i++) {
        const char *o = h->app->cors_origins[i];
        /* As ASP.NET Core: a wildcard never goes with credentials. */
        if (strcmp(o, "*") == 0) return "*";
        if (strcasecmp(o, origin) == 0) return origin;
    }
    return NULL;
}

static bool cors(struct nb_host *h, struct nb_req *req, struct nb_resp *resp)
{
    const char *allow = cors_allowed(h, nb_req_header(req, "Origin"));
    if (!allow) return false;
    nb_resp_header(req, resp, "Access-Control-Allow-Origin", allow);
    if (strcmp(allow, "*") != 0) nb_resp_header(req, resp, "Vary", "Origin");
    if (h->app->cors_credentials && strcmp(allow, "*") != 0)
        nb_resp_header(req, resp, "Access-Control-Allow-Credentials", "true");
    const char *want = nb_req_header(req, "Access-Control-Request-Method");
    if (strcmp(req->method, "OPTIONS") == 0 && want) {
        nb_resp_header(req, resp, "Access-Control-Allow-Methods", want);
        const char *hdrs = nb_req_header(req, "Access-Control-Request-Headers");
        if (hdrs) nb_resp_header(req, resp, "Access-Control-Allow-Headers", hdrs);
        resp->status = 204;
        return true; /* preflight answered */
    }
    return false;
}

/* --- function routes -------------------------------------------------------------------- */

/* The part of the path after the route prefix, or NULL when outside it. */
static const char *strip_prefix(const struct nb_host *h, const char *path)
{
    const char *prefix = h->app->route_prefix;
    if (*path == '/') path++;
    size_t n = strlen(prefix);
    if (n == 0) return path;
    if (strncasecmp(path, prefix, n) != 0) return NULL;
    if (path[n] == '\0') return path + n;
    if (path[n] != '/') return NULL;
    return path + n + 1;
}

static bool authorized(struct nb_runtime *rt, const struct nb_function *fn,
                       const struct nb_binding *t, const struct nb_req *req)
{
    if (t->auth_level == NB_AUTH_ANONYMOUS) return true;
    const char *key = presented_key(req);
    if (!key) return false;
    enum nb_key_grant g = nb_keys_check(nb_runtime_keys(rt), fn->name, key);
    if (t->auth_level == NB_AUTH_ADMIN) return g == NB_GRANT_ADMIN;
    /* As Azure: a key's level must equal the one required, or be admin; a
     * system (extension) key does not open function-level endpoints. */
    return g == NB_GRANT_FUNCTION || g == NB_GRANT_ADMIN;
}

static bool hop_header(const char *name)
{
    return strcasecmp(name, "Content-Length") == 0 || strcasecmp(name, "Transfer-Encoding") == 0 ||
           strcasecmp(name, "Connection") == 0;
}

/* The query as a function sees it: form-decoded, '+' is a space (as ASP.NET
 * reads a query string; the storage services keep '+' literal instead). */
static struct nb_kv *function_query(struct nb_req *req, size_t *n)
{
    size_t cap = 1;
    for (const char *p = req->raw_query; *p; p++) cap += *p == '&';
    struct nb_kv *q = nb_arena_alloc(&req->arena, cap * sizeof(*q));
    *n = 0;
    const char *p = req->raw_query;
    while (*p) {
        size_t len = strcspn(p, "&");
        if (len) {
            char *part = nb_arena_strndup(&req->arena, p, len);
            for (char *c = part; *c; c++)
                if (*c == '+') *c = ' ';
            char *eq = strchr(part, '=');
            const char *raw_val = eq ? eq + 1 : "";
            if (eq) *eq = '\0';
            char *name = nb_arena_alloc(&req->arena, strlen(part) + 1);
            name[nb_pct_decode(part, strlen(part), name)] = '\0';
            char *val = nb_arena_alloc(&req->arena, strlen(raw_val) + 1);
            size_t vlen = nb_pct_decode(raw_val, strlen(raw_val), val);
            val[vlen] = '\0';
            q[(*n)++] = (struct nb_kv){ name, val, vlen };
        }
        p += len;
        if (*p == '&') p++;
    }
    return q;
}

static void run_http(struct nb_host *h, struct nb_runtime *rt, const struct nb_function *fn,
                     struct nb_route_values *values, struct nb_req *req, struct nb_resp *resp)
{
    struct nb_kv *params = nb_arena_alloc(&req->arena, (values->n + 1) * sizeof(*params));
    size_t np = 0;
    for (size_t i = 0; i < values->n; i++) {
        if (!values->items[i].value) continue;
        params[np++] = (struct nb_kv){ values->items[i].name, values->items[i].value,
                                       strlen(values->items[i].value) };
    }
    const char *host = nb_req_header(req, "Host");
    char *url = nb_asprintf("http://%s%s", host ? host : "localhost", req->raw_url);
    struct nb_invocation inv = { 0 };
    inv.fn = fn;
    nb_random_uuid(inv.id);
    inv.kind = NB_TRIGGER_HTTP;
    inv.method = req->method;
    inv.url = url;
    inv.path = req->raw_path;
    inv.raw_query = req->raw_query;
    inv.params = params;
    inv.nparams = np;
    inv.query = function_query(req, &inv.nquery);
    inv.headers = req->headers;
    inv.nheaders = req->nheaders;
    inv.body = req->body.data ? req->body.data : "";
    inv.body_len = req->body.len;
    inv.metadata_json = "{}";
    struct nb_inv_result res;
    nb_inv_result_init(&res);
    nb_runtime_run(rt, &inv, &res);
    if (!res.ok) {
        resp->status = 500;
        resp->error_code = res.crashed ? "WorkerCrashed" : "FunctionFailed";
    } else if (!res.has_http) {
        resp->status = 204;
    } else if (res.status != 0 && (res.status < 100 || res.status > 599)) {
        nb_log_error(h->env.log, "function %s set HTTP status %d", fn->name, res.status);
        resp->status = 500;
        resp->error_code = "FunctionFailed";
    } else {
        resp->status = res.status > 0 ? res.status : 200;
        /* Appended, not replaced: a function may send a header twice
         * (Set-Cookie). */
        for (size_t i = 0; i < res.nheaders; i++) {
            if (hop_header(res.headers[i].name)) continue;
            nb_resp_header(req, resp, res.headers[i].name, res.headers[i].value);
        }
        nb_buf_add(&resp->body, res.body.data ? res.body.data : "", res.body.len);
    }
    nb_inv_result_cleanup(&res);
    free(url);
}

static void function_route(struct nb_host *h, struct nb_req *req, struct nb_resp *resp)
{
    struct nb_runtime *rt = atomic_load(&h->runtime);
    if (!rt) {
        error_reply(req, resp, 503, "ServiceUnavailable", "the host is starting");
        return;
    }
    if (cors(h, req, resp)) return;
    const char *rel = strip_prefix(h, req->raw_path);
    if (!rel) {
        resp->status = 404;
        resp->error_code = "NotFound";
        return;
    }
    void *data = NULL;
    struct nb_route_values values = { 0 };
    enum nb_route_result r = nb_router_match(h->router, nb_app_method_bit(req->method), rel,
                                             &data, &values);
    if (r == NB_ROUTE_NONE) {
        resp->status = 404;
        resp->error_code = "NotFound";
        return;
    }
    if (r == NB_ROUTE_BAD_METHOD) {
        resp->status = 405;
        resp->error_code = "MethodNotAllowed";
        return;
    }
    const struct nb_function *fn = data;
    const struct nb_binding *t = nb_function_trigger(fn);
    if (req->body_too_large) {
        resp->status = 413;
        resp->error_code = "RequestEntityTooLarge";
    } else if (!authorized(rt, fn, t, req)) {
        resp->status = 401;
        resp->error_code = "Unauthorized";
    } else {
        run_http(h, rt, fn, &values, req, resp);
    }
    nb_route_values_cleanup(&values);
}

static void handle(void *ctx, struct nb_req *req, struct nb_resp *resp)
{
    struct nb_host *h = ctx;
    const char *path = req->raw_path;
    if (path[0] != '/') {
        error_reply(req, resp, 400, "BadRequest", "the request target must be an absolute path");
        return;
    }
    /* /admin/... is the host's own: no function or proxy may capture it. */
    if (strncasecmp(path, "/admin/", 7) == 0 || strcasecmp(path, "/admin") == 0) {
        admin(h, req, resp);
        return;
    }
    if (strncasecmp(path, "/runtime/", 9) == 0) {
        resp->status = 404;
        resp->error_code = "NotFound";
        return;
    }
    function_route(h, req, resp);
}

/* --- lifecycle ------------------------------------------------------------------------------ */

static struct nb_router *build_router(const struct nb_app *app, const struct nb_log *log)
{
    struct nb_router *rt = nb_router_new();
    for (size_t i = 0; i < app->nfunctions; i++) {
        const struct nb_function *fn = &app->functions[i];
        const struct nb_binding *t = nb_function_trigger(fn);
        if (fn->disabled || !t || t->type != NB_BIND_HTTP_TRIGGER) continue;
        struct nb_route *r = NULL;
        char err[256] = "";
        if (nb_route_parse(t->route ? t->route : fn->name, &r, err, sizeof(err))) {
            nb_log_error(log, "%s/function.json: %s (function not served)", fn->name, err);
            continue;
        }
        nb_router_add(rt, r, t->methods, (void *)fn);
    }
    return rt;
}

enum nb_err nb_host_start(const struct nb_host_config *cfg, struct nb_host **out)
{
    struct nb_host *h = nb_calloc(1, sizeof(*h));
    h->env = *cfg->env;
    h->app = cfg->app;
    h->version = cfg->version;
    h->started_at = nb_clock_now(h->env.clock);
    h->router = build_router(cfg->app, h->env.log);
    struct nb_http_listener_config lc = {
        .service = "host",
        .host = h->env.host,
        .port = cfg->port,
        .max_body = 100u * 1024 * 1024, /* Azure Functions' HTTP request limit */
        .handler = handle,
        .ctx = h,
        .log = h->env.log,
        .clock = h->env.clock,
    };
    enum nb_err rc = nb_http_listen(&lc, &h->listener);
    if (rc) goto fail;
    struct nb_runtime_config rc_cfg = {
        .env = &h->env,
        .app = cfg->app,
        .exe = cfg->exe,
        .version = cfg->version,
        .host_port = nb_http_port(h->listener),
        .queue_port = cfg->queue_port,
        .table_port = cfg->table_port,
        .native_in_process = cfg->native_in_process,
    };
    struct nb_runtime *rt = NULL;
    if ((rc = nb_runtime_start(&rc_cfg, &rt))) goto fail;
    atomic_store(&h->runtime, rt);
    *out = h;
    return NB_OK;

fail:
    nb_host_stop(h);
    return rc;
}

int nb_host_port(const struct nb_host *h)
{
    return nb_http_port(h->listener);
}

void nb_host_print_functions(const struct nb_host *h, FILE *f)
{
    const struct nb_app *app = h->app;
    fprintf(f, "Functions:\n\n");
    if (!app->nfunctions) fprintf(f, "  (none)\n");
    for (size_t i = 0; i < app->nfunctions; i++) {
        const struct nb_function *fn = &app->functions[i];
        const struct nb_binding *t = nb_function_trigger(fn);
        const char *off = fn->disabled ? "  [disabled]" : "";
        if (t->type == NB_BIND_HTTP_TRIGGER) {
            static const char *const names[] = { "GET", "POST", "PUT", "DELETE",
                                                 "PATCH", "HEAD", "OPTIONS", "TRACE" };
            char methods[64] = "";
            size_t used = 0;
            for (size_t m = 0; m < 8; m++) {
                if (!(t->methods & (1u << m))) continue;
                used += (size_t)snprintf(methods + used, sizeof(methods) - used, "%s%s",
                                         used ? "," : "", names[m]);
                if (used >= sizeof(methods)) break;
            }
            const char *route = t->route ? t->route : fn->name;
            fprintf(f, "  %s: [%s] http://%s:%d/%s%s%s  (authLevel: %s)%s\n", fn->name,
                    t->methods ? methods : "ALL", h->env.host, nb_http_port(h->listener),
                    app->route_prefix, *app->route_prefix ? "/" : "", route,
                    nb_auth_level_name(t->auth_level), off);
        } else if (t->type == NB_BIND_QUEUE_TRIGGER) {
            fprintf(f, "  %s: queueTrigger (queue: %s)%s\n", fn->name, t->queue_name, off);
        } else if (t->type == NB_BIND_TIMER_TRIGGER) {
            fprintf(f, "  %s: timerTrigger (schedule: %s%s)%s\n", fn->name, t->schedule,
                    t->run_on_startup ? ", runOnStartup" : "", off);
        } else {
            fprintf(f, "  %s: %s%s\n", fn->name, t->type_name, off);
        }
    }
    if (app->nproblems) {
        fprintf(f, "\nProblems (these functions were skipped):\n");
        for (size_t i = 0; i < app->nproblems; i++) fprintf(f, "  %s\n", app->problems[i]);
    }
    fprintf(f, "\n");
}

void nb_host_quiesce(struct nb_host *h)
{
    if (h && h->listener) nb_http_quiesce(h->listener);
}

void nb_host_stop(struct nb_host *h)
{
    if (!h) return;
    struct nb_runtime *rt = atomic_load(&h->runtime);
    if (h->listener) {
        /* In-flight requests and trigger invocations get 10 s to finish;
         * then the invocations still running are failed (a queue message is
         * released for a retry), so a hung function cannot hold shutdown up
         * until its functionTimeout, or forever. */
        nb_http_quiesce(h->listener);
        nb_runtime_quiesce(rt);
        int64_t deadline = nb_clock_mono_us() + 10 * 1000000LL;
        bool idle = nb_http_drain(h->listener, 10000);
        while (idle && !nb_runtime_triggers_idle(rt) && nb_clock_mono_us() < deadline) {
            struct timespec ts = { 0, 5 * 1000 * 1000 };
            nanosleep(&ts, NULL);
        }
        if (!idle || !nb_runtime_triggers_idle(rt)) nb_runtime_cancel(rt);
        nb_http_stop(h->listener, 2000);
    }
    nb_runtime_stop(rt);
    nb_router_free(h->router);
    free(h);
}
