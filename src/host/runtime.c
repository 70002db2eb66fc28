/* The function runtime (runtime.h). Owns the workers' environment block,
 * the keys, the worker pool, the custom handler and the triggers; the app
 * itself is borrowed from main. */
#include "host/runtime.h"
#include "core/mem.h"
#include "host/bindings.h"
#include "host/custom_handler.h"
#include "host/inproc.h"
#include "host/triggers.h"
#include "host/worker.h"
#include "store/store.h"
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

extern char **environ;

struct nb_runtime {
    struct nb_service_env env;
    const struct nb_app *app;
    struct nb_keys *keys;
    char **worker_env;       /* "NAME=value", NULL-terminated */
    struct nb_worker_pool *workers;
    struct nb_inproc *inproc;    /* --native-in-process instead of workers */
    struct nb_custom_handler *custom;
    struct nb_triggers *triggers;
    struct nb_bind_env bind;
};

/* --- accounts named by connections ------------------------------------------- */

/* The account a connection string names: AccountName=..., or the
 * development account for UseDevelopmentStorage=true. */
static const char *account_in(const struct nb_accounts *accounts, const char *conn)
{
    if (!conn) return NULL;
    if (strcasestr(conn, "UseDevelopmentStorage=true")) return NB_DEV_ACCOUNT;
    const char *p = strcasestr(conn, "AccountName=");
    if (!p) return NULL;
    p += strlen("AccountName=");
    size_t n = strcspn(p, ";");
    for (size_t i = 0; i < accounts->n; i++) {
        const char *name = accounts->items[i].name;
        if (strlen(name) == n && strncmp(name, p, n) == 0) return name;
    }
    return NULL;
}

static const char *account_of(void *ctx, const struct nb_binding *b)
{
    struct nb_runtime *rt = ctx;
    const char *conn = NULL;
    if (!b->connection || !*b->connection) {
        conn = nb_app_setting(rt->app, "AzureWebJobsStorage");
        /* Nimbus is the storage: an app that names none uses the dev account. */
        if (!conn) return NB_DEV_ACCOUNT;
    } else {
        conn = nb_app_setting(rt->app, b->connection);
        if (!conn) {
            char *prefixed = nb_asprintf("AzureWebJobs%s", b->connection);
            conn = nb_app_setting(rt->app, prefixed);
            free(prefixed);
        }
        if (!conn) conn = getenv(b->connection);
    }
    return account_in(rt->env.accounts, conn);
}

/* --- environment for workers --------------------------------------------------- */

static void env_add(char ***env, size_t *n, const char *name, const char *value)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < *n; i++) {
        if (strncmp((*env)[i], name, len) == 0 && (*env)[i][len] == '=') {
            free((*env)[i]);
            (*env)[i] = nb_asprintf("%s=%s", name, value);
            return;
        }
    }
    *env = nb_realloc(*env, (*n + 2) * sizeof(**env));
    (*env)[(*n)++] = nb_asprintf("%s=%s", name, value);
    (*env)[*n] = NULL;
}

/* "@Nimbus.FunctionKey(fn)" or "@Nimbus.FunctionKey(fn, name)": an app
 * setting reference (like Azure's @Microsoft.KeyVault(...)) to a function
 * key, so an app can call its own keyed functions without a key checked in.
 * Returns the key (heap), or NULL when `value` is not such a reference;
 * *bad is set when it is one but cannot be resolved. */
static char *function_key_ref(struct nb_runtime *rt, const char *value, bool *bad)
{
    static const char prefix[] = "@Nimbus.FunctionKey(";
    *bad = false;
    if (strncasecmp(value, prefix, sizeof(prefix) - 1) != 0) return NULL;
    const char *args = value + sizeof(prefix) - 1;
    const char *close = strchr(args, ')');
    if (!close || close[1]) {
        *bad = true;
        return NULL;
    }
    char fn[129] = "", name[129] = "default";
    const char *comma = memchr(args, ',', (size_t)(close - args));
    const char *fn_end = comma ? comma : close;
    while (args < fn_end && isspace((unsigned char)*args)) args++;
    size_t fl = (size_t)(fn_end - args);
    while (fl && isspace((unsigned char)args[fl - 1])) fl--;
    if (!fl || fl >= sizeof(fn)) {
        *bad = true;
        return NULL;
    }
    memcpy(fn, args, fl);
    if (comma) {
        const char *k = comma + 1;
        while (k < close && isspace((unsigned char)*k)) k++;
        size_t kl = (size_t)(close - k);
        while (kl && isspace((unsigned char)k[kl - 1])) kl--;
        if (!kl || kl >= sizeof(name)) {
            *bad = true;
            return NULL;
        }
        memcpy(name, k, kl);
        name[kl] = '\0';
    }
    const struct nb_function *f = nb_app_function(rt->app, fn);
    if (!f) {
        *bad = true;
        return NULL;
    }
    char *key = NULL;
    enum nb_err rc = nb_keys_get(rt->keys, NB_KEYS_FUNCTION, f->name, name, &key);
    if (rc == NB_ERR_NOT_FOUND)
        rc = nb_keys_set(rt->keys, NB_KEYS_FUNCTION, f->name, name, NULL, NULL, &key);
    if (rc) {
        *bad = true;
        return NULL;
    }
    return key;
}

static enum nb_err build_env(struct nb_runtime *rt, const struct nb_runtime_config *cfg)
{
    char **env = NULL;
    size_t n = 0;
    for (char **e = environ; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        if (!eq) continue;
        char *name = nb_strndup(*e, (size_t)(eq - *e));
        env_add(&env, &n, name, eq + 1);
        free(name);
    }
    for (size_t i = 0; i < rt->app->nsettings; i++) {
        const struct nb_setting *s = &rt->app->settings[i];
        bool bad = false;
        char *key = function_key_ref(rt, s->value, &bad);
        if (bad) {
            nb_log_error(rt->env.log,
                         "app setting %s: cannot resolve %s (want @Nimbus.FunctionKey(function) "
                         "or @Nimbus.FunctionKey(function, keyname) naming a function of the "
                         "app)",
                         s->name, s->value);
            for (size_t j = 0; j < n; j++) free(env[j]);
            free(env);
            return NB_ERR_INVALID;
        }
        env_add(&env, &n, s->name, key ? key : s->value);
        free(key);
    }
    char *hostname = nb_asprintf("%s:%d", cfg->env->host, cfg->host_port);
    env_add(&env, &n, "WEBSITE_HOSTNAME", hostname);
    free(hostname);
    /* Storage clients inside functions reach this server's own services,
     * whatever ports it was started on. */
    const char *storage = nb_app_setting(rt->app, "AzureWebJobsStorage");
    if (!storage || strcasestr(storage, "UseDevelopmentStorage=true")) {
        const struct nb_account *a = nb_accounts_find(rt->env.accounts, NB_DEV_ACCOUNT);
        if (a) {
            char *conn = nb_asprintf(
                "DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;"
                "QueueEndpoint=http://%s:%d/%s;TableEndpoint=http://%s:%d/%s;",
                a->name, a->key_b64[0], cfg->env->host, cfg->queue_port, a->name,
                cfg->env->host, cfg->table_port, a->name);
            env_add(&env, &n, "AzureWebJobsStorage", conn);
            free(conn);
        }
    }
    if (!env) {
        env = nb_calloc(1, sizeof(*env));
    }
    rt->worker_env = env;
    return NB_OK;
}

/* --- running one invocation -------------------------------------------------------- */

static void dispatch(struct nb_runtime *rt, const struct nb_invocation *inv,
                     struct nb_inv_result *res)
{
    enum nb_err rc;
    if (inv->fn->worker == NB_WORKER_NATIVE && rt->inproc) {
        rc = nb_inproc_invoke(rt->inproc, inv, res);
    } else if (inv->fn->worker == NB_WORKER_NATIVE) {
        rc = nb_worker_invoke(rt->workers, inv, res);
    } else if (rt->custom) {
        rc = nb_custom_handler_invoke(rt->custom, inv, res);
    } else {
        rc = NB_ERR_INVALID;
    }
    if (rc && res->ok) nb_inv_result_fail(res, "function could not be run: %s", nb_err_str(rc));
}

/* The function's own log lines, then its failure. Control characters are
 * replaced, so text a function logs (perhaps from a client) cannot forge
 * log lines of its own. */
static void log_result(struct nb_runtime *rt, const struct nb_invocation *inv,
                       const struct nb_inv_result *res)
{
    for (size_t i = 0; i < res->nlogs; i++) {
        char *line = nb_strdup(res->logs[i]);
        for (char *c = line; *c; c++)
            if ((unsigned char)*c < 0x20 || *c == 0x7f) *c = '?';
        nb_log_info(rt->env.log, "[%s] %s", inv->fn->name, line);
        free(line);
    }
    if (!res->ok)
        nb_log_error(rt->env.log, "function %s (invocation %s) failed: %s", inv->fn->name,
                     inv->id, res->error ? res->error : "unknown error");
}

/* Whether the function has bindings beyond its trigger and HTTP output:
 * only those need the binding data (and its JSON) built. */
static bool needs_binding_data(const struct nb_function *fn)
{
    for (size_t i = 0; i < fn->nbindings; i++) {
        enum nb_binding_type t = fn->bindings[i].type;
        if (i != fn->trigger && t != NB_BIND_HTTP && t != NB_BIND_OTHER) return true;
    }
    return false;
}

void nb_runtime_run(struct nb_runtime *rt, const struct nb_invocation *inv,
                    struct nb_inv_result *res)
{
    if (!needs_binding_data(inv->fn)) {
        dispatch(rt, inv, res);
        log_result(rt, inv, res);
        return;
    }
    json_t *data = nb_bind_data(inv);
    struct nb_kv *inputs = NULL;
    size_t ninputs = 0;
    if (nb_bind_inputs(&rt->bind, inv->fn, data, &inputs, &ninputs, res) == NB_OK) {
        struct nb_invocation full = *inv;
        full.inputs = inputs;
        full.ninputs = ninputs;
        dispatch(rt, &full, res);
        if (res->ok) nb_bind_outputs(&rt->bind, inv->fn, data, res);
        log_result(rt, inv, res);
    }
    nb_bind_inputs_free(inputs, ninputs);
    json_decref(data);
}

static void trigger_run(void *ctx, const struct nb_invocation *inv, struct nb_inv_result *res)
{
    nb_runtime_run(ctx, inv, res);
}

/* --- lifecycle ------------------------------------------------------------------------- */

enum nb_err nb_runtime_start(const struct nb_runtime_config *cfg, struct nb_runtime **out)
{
    struct nb_runtime *rt = nb_calloc(1, sizeof(*rt));
    rt->env = *cfg->env;
    rt->app = cfg->app;
    enum nb_err rc = nb_keys_open(rt->env.store, &rt->keys);
    if (rc) {
        nb_log_error(rt->env.log, "cannot load the function keys: %s", nb_err_str(rc));
        goto fail;
    }
    bool any_native = false;
    for (size_t i = 0; i < rt->app->nfunctions; i++) {
        const struct nb_function *fn = &rt->app->functions[i];
        if ((rc = nb_keys_ensure_function(rt->keys, fn->name))) goto fail;
        if (fn->worker == NB_WORKER_NATIVE) any_native = true;
    }
    if ((rc = build_env(rt, cfg))) goto fail;
    rt->bind = (struct nb_bind_env){ rt->app, rt->env.store, rt->env.clock, rt->env.wake,
                                     account_of, rt };

    if (any_native && cfg->native_in_process) {
        rt->inproc = nb_inproc_new(rt->worker_env);
        nb_log_info(rt->env.log, "native functions run in the host process "
                                 "(--native-in-process): no crash isolation, no timeout");
    } else if (any_native) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        struct nb_worker_pool_config wc = {
            .exe = cfg->exe,
            .min_workers = cpus > 0 ? (size_t)cpus : 2,
            .max_workers = 32,
            .burst_workers = 256,
            .timeout_ms = rt->app->function_timeout_ms,
            .env = rt->worker_env,
            .log = rt->env.log,
        };
        if ((rc = nb_worker_pool_start(&wc, &rt->workers))) {
            nb_log_error(rt->env.log, "cannot start native workers: %s", nb_err_str(rc));
            goto fail;
        }
    }
    if (rt->app->custom.executable) {
        struct nb_custom_handler_start cc = {
            .app = rt->app,
            .env = rt->worker_env,
            .host_version = cfg->version,
            .ready_timeout_ms = 60000,
            .log = rt->env.log,
        };
        if ((rc = nb_custom_handler_start(&cc, &rt->custom))) goto fail;
    }
    struct nb_triggers_config tc = {
        .app = rt->app,
        .store = rt->env.store,
        .clock = rt->env.clock,
        .wake = rt->env.wake,
        .account_of = account_of,
        .run = trigger_run,
        .ctx = rt,
        .log = rt->env.log,
    };
    if ((rc = nb_triggers_start(&tc, &rt->triggers))) goto fail;
    *out = rt;
    return NB_OK;

fail:
    nb_runtime_stop(rt);
    return rc ? rc : NB_ERR_IO;
}

struct nb_keys *nb_runtime_keys(struct nb_runtime *rt)
{
    return rt->keys;
}

void nb_runtime_quiesce(struct nb_runtime *rt)
{
    if (rt) nb_triggers_halt(rt->triggers);
}

bool nb_runtime_triggers_idle(struct nb_runtime *rt)
{
    return !rt || nb_triggers_running(rt->triggers) == 0;
}

void nb_runtime_cancel(struct nb_runtime *rt)
{
    if (!rt) return;
    nb_worker_pool_cancel(rt->workers);
    nb_custom_handler_cancel(rt->custom);
}

void nb_runtime_stop(struct nb_runtime *rt)
{
    if (!rt) return;
    nb_triggers_stop(rt->triggers);
    nb_custom_handler_stop(rt->custom);
    nb_worker_pool_stop(rt->workers);
    nb_inproc_free(rt->inproc);
    nb_keys_close(rt->keys);
    for (char **e = rt->worker_env; e && *e; e++) free(*e);
    free(rt->worker_env);
    free(rt);
}
