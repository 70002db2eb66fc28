/* In-process native functions (inproc.h). Owns the cache of loaded shared
 * objects (under a mutex; a symbol once resolved is never unloaded before
 * nb_inproc_free). The nimbus_api here writes straight into the
 * invocation's nb_inv_result: no frames, no copies. */
#include "host/inproc.h"
#include "core/mem.h"
#include <nimbus/function.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* struct nb_kv and struct nimbus_kv are passed to functions as each other. */
_Static_assert(sizeof(struct nb_kv) == sizeof(struct nimbus_kv), "kv layout");
_Static_assert(offsetof(struct nb_kv, value) == offsetof(struct nimbus_kv, value), "kv layout");
_Static_assert(offsetof(struct nb_kv, value_len) == offsetof(struct nimbus_kv, value_len),
               "kv layout");

#define LOG_MAX (1u << 20) /* log bytes kept per invocation, as in the workers */

struct loaded {
    char *path, *symbol;
    void *handle;
    nimbus_function_fn fn;
    struct loaded *next;
};

struct nb_inproc {
    char *const *env;
    pthread_mutex_t mu;
    struct loaded *loaded;
};

/* Per-invocation state, reached from ctx->host. */
struct call {
    struct nb_inproc *ip;
    const struct nb_invocation *inv;
    struct nb_inv_result *res;
    size_t log_bytes;
};

static const char *api_setting(struct nimbus_ctx *ctx, const char *name)
{
    struct call *c = ctx->host;
    if (!name) return NULL;
    size_t n = strlen(name);
    for (char *const *e = c->ip->env; e && *e; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=') return *e + n + 1;
    return NULL;
}

static const char *api_input(struct nimbus_ctx *ctx, const char *binding, size_t *len)
{
    struct call *c = ctx->host;
    for (size_t i = 0; binding && i < c->inv->ninputs; i++) {
        if (strcasecmp(c->inv->inputs[i].name, binding) == 0) {
            if (len) *len = c->inv->inputs[i].value_len;
            return c->inv->inputs[i].value;
        }
    }
    return NULL;
}

static void api_set_status(struct nimbus_ctx *ctx, int status)
{
    struct call *c = ctx->host;
    c->res->status = status;
    c->res->has_http = true;
}

static void api_set_header(struct nimbus_ctx *ctx, const char *name, const char *value)
{
    struct call *c = ctx->host;
    if (!name || !value) return;
    c->res->has_http = true;
    nb_inv_result_add_header(c->res, name, value);
}

static void api_write(struct nimbus_ctx *ctx, const void *data, size_t len)
{
    struct call *c = ctx->host;
    c->res->has_http = true;
    if (len && !data) return;
    if (nb_buf_add(&c->res->body, data, len))
        nb_inv_result_fail(c->res, "response body larger than 100 MiB");
}

static int add_output(struct nimbus_ctx *ctx, const char *binding, const void *data, size_t len,
                      bool queue_only, long long visibility_ms)
{
    struct call *c = ctx->host;
    if (!binding || (len && !data)) return -1;
    const struct nb_binding *b = nb_function_binding(c->inv->fn, binding);
    if (!b || !b->out) return -1;
    if (b->type == NB_BIND_HTTP) {
        if (queue_only) return -1;
        api_write(ctx, data, len);
        return 0;
    }
    if (queue_only && b->type != NB_BIND_QUEUE) return -1;
    nb_inv_result_add_output(c->res, b->name, data ? data : "", len);
    if (visibility_ms > 0) nb_inv_result_delay_last(c->res, visibility_ms);
    return 0;
}

static int api_output(struct nimbus_ctx *ctx, const char *binding, const void *data, size_t len)
{
    return add_output(ctx, binding, data, len, false, 0);
}

static int api_output_delayed(struct nimbus_ctx *ctx, const char *binding, const void *data,
                              size_t len, long long visibility_ms)
{
    return add_output(ctx, binding, data, len, true, visibility_ms);
}

static void api_log(struct nimbus_ctx *ctx, enum nimbus_log_level level, const char *fmt,
                    va_list ap)
{
    struct call *c = ctx->host;
    if (!fmt || c->log_bytes >= LOG_MAX) return;
    static const char *const names[] = { "debug", "info", "warn", "error" };
    struct nb_buf line;
    nb_buf_init(&line, LOG_MAX);
    nb_buf_printf(&line, "[%s] ", (unsigned)level < 4 ? names[level] : "info");
    nb_buf_vprintf(&line, fmt, ap);
    while (line.len && (line.data[line.len - 1] == '\n' || line.data[line.len - 1] == '\r'))
        line.data[--line.len] = '\0';
    c->log_bytes += line.len;
    nb_inv_result_add_log(c->res, c->log_bytes >= LOG_MAX ? "[warn] log output truncated at 1 MiB"
                                                          : nb_buf_cstr(&line));
    nb_buf_cleanup(&line);
}

static const struct nimbus_api api = {
    .setting = api_setting,
    .input = api_input,
    .set_status = api_set_status,
    .set_header = api_set_header,
    .write = api_write,
    .output = api_output,
    .log = api_log,
    .output_delayed = api_output_delayed,
};

/* The entry point, loaded once; NULL with *err (static or dlerror's). */
static nimbus_function_fn resolve(struct nb_inproc *ip, const char *path, const char *symbol,
                                  const char **err)
{
    nimbus_function_fn fn = NULL;
    pthread_mutex_lock(&ip->mu);
    void *handle = NULL;
    for (struct loaded *l = ip->loaded; l; l = l->next) {
        if (strcmp(l->path, path) != 0) continue;
        handle = l->handle;
        if (strcmp(l->symbol, symbol) == 0) {
            fn = l->fn;
            goto out;
        }
    }
    bool fresh = !handle;
    if (fresh) handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        *err = dlerror();
        goto out;
    }
    *(void **)&fn = dlsym(handle, symbol);
    if (!fn) {
        *err = "entry point not found in the shared object";
        if (fresh) dlclose(handle);
        goto out;
    }
    struct loaded *l = nb_calloc(1, sizeof(*l));
    l->path = nb_strdup(path);
    l->symbol = nb_strdup(symbol);
    l->handle = handle;
    l->fn = fn;
    l->next = ip->loaded;
    ip->loaded = l;
out:
    pthread_mutex_unlock(&ip->mu);
    return fn;
}

struct nb_inproc *nb_inproc_new(char *const *env)
{
    struct nb_inproc *ip = nb_calloc(1, sizeof(*ip));
    ip->env = env;
    pthread_mutex_init(&ip->mu, NULL);
    return ip;
}

enum nb_err nb_inproc_invoke(struct nb_inproc *ip, const struct nb_invocation *inv,
                             struct nb_inv_result *res)
{
    const char *err = "no shared object";
    nimbus_function_fn fn = inv->fn->script_file
                                ? resolve(ip, inv->fn->script_file,
                                          inv->fn->entry_point ? inv->fn->entry_point : "run",
                                          &err)
                                : NULL;
    if (!fn) {
        nb_inv_result_fail(res, "cannot load %s: %s", inv->fn->name, err ? err : "unknown");
        return NB_OK;
    }
    struct nimbus_request req = {
        .method = inv->method,
        .url = inv->url,
        .path = inv->path,
        .params = (const struct nimbus_kv *)inv->params,
        .nparams = inv->nparams,
        .query = (const struct nimbus_kv *)inv->query,
        .nquery = inv->nquery,
        .headers = (const struct nimbus_kv *)inv->headers,
        .nheaders = inv->nheaders,
        .body = inv->body,
        .body_len = inv->body_len,
    };
    struct call c = { ip, inv, res, 0 };
    struct nimbus_ctx ctx = {
        .abi = NIMBUS_FUNCTION_ABI,
        .function_name = inv->fn->name,
        .invocation_id = inv->id,
        .trigger = nb_trigger_kind_name(inv->kind),
        .req = inv->kind == NB_TRIGGER_HTTP ? &req : NULL,
        .trigger_data = inv->trigger_data ? inv->trigger_data : "",
        .trigger_len = inv->trigger_len,
        .metadata_json = inv->metadata_json ? inv->metadata_json : "{}",
        .api = &api,
        .host = &c,
    };
    int rc = fn(&ctx);
    if (rc != 0 && res->ok) nb_inv_result_fail(res, "function returned %d", rc);
    return NB_OK;
}

void nb_inproc_free(struct nb_inproc *ip)
{
    if (!ip) return;
    struct loaded *l = ip->loaded;
    while (l) {
        struct loaded *next = l->next;
        bool last_of_handle = true;
        for (struct loaded *m = next; m; m = m->next)
            if (m->handle == l->handle) last_of_handle = false;
        if (last_of_handle) dlclose(l->handle);
        free(l->path);
        free(l->symbol);
        free(l);
        l = next;
    }
    pthread_mutex_destroy(&ip->mu);
    free(ip);
}
