/* The worker process side of the native worker pool: `nimbus worker --fd N`
 * (see worker.h). It serves one invocation at a time on fd N: read a request
 * frame, dlopen the function's shared object (handles and symbols cached for
 * the life of the process), call it with a struct nimbus_ctx whose api
 * collects the response, reply with one frame. All mutable state lives in
 * one per-process struct on nb_worker_main's stack; the function reaches it
 * through ctx->host. Nothing here runs in the host process. */
#include "host/worker.h"
#include "host/app.h"
#include "host/ipc.h"
#include "core/mem.h"
#include <nimbus/function.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <unistd.h>

#define BODY_MAX (100u * 1024 * 1024)   /* as NB_INV_BODY_MAX in invocation.c */
#define LOG_MAX (1u << 20)              /* log bytes kept per invocation */
#define HEADERS_MAX (16u * 1024 * 1024)
#define KEEP_BYTES (1u << 20)           /* bigger accumulators are freed after use */

struct native_fn {
    char *symbol;
    nimbus_function_fn fn;
};

struct native_lib {
    char *path;
    void *handle;
    struct native_fn *fns;
    size_t nfns;
};

struct out_binding {
    struct nb_str name;
    uint32_t type; /* enum nb_binding_type */
};

struct kv_list {
    struct nimbus_kv *v;
    size_t n, cap;
};

/* The per-process context. */
struct wstate {
    int fd;
    struct nb_ipc_rbuf in;
    struct nb_ipc_writer out;
    struct native_lib *libs;
    size_t nlibs;
    /* The request being served (views into `in`). */
    struct nimbus_ctx ctx;
    struct nimbus_request req;
    struct kv_list params, query, headers, inputs;
    struct out_binding *allowed; /* output bindings the function may use */
    size_t nallowed, allowed_cap;
    const char *http_binding; /* "" when none */
    /* The reply being collected. */
    int status;
    bool has_http;
    struct nb_buf rheaders; /* encoded name, value fields */
    uint32_t nrheaders;
    struct nb_buf body;
    struct nb_buf outputs; /* encoded binding, value, visibility fields */
    uint32_t noutputs;
    struct nb_buf logs; /* encoded lines */
    uint32_t nlogs;
    bool logs_truncated;
    struct nb_buf scratch;
    const char *overflow; /* static reason when a reply part passed its limit */
};

static struct wstate *state_of(struct nimbus_ctx *ctx)
{
    return ctx->host;
}

/* ---- the nimbus_api the function calls ---- */

static const char *api_setting(struct nimbus_ctx *ctx, const char *name)
{
    (void)ctx;
    return name ? getenv(name) : NULL;
}

static const char *api_input(struct nimbus_ctx *ctx, const char *binding, size_t *len)
{
    struct wstate *w = state_of(ctx);
    if (!binding) return NULL;
    for (size_t i = 0; i < w->inputs.n; i++) {
        if (strcasecmp(w->inputs.v[i].name, binding) == 0) {
            if (len) *len = w->inputs.v[i].value_len;
            return w->inputs.v[i].value;
        }
    }
    return NULL;
}

static void api_set_status(struct nimbus_ctx *ctx, int status)
{
    struct wstate *w = state_of(ctx);
    w->status = status;
    w->has_http = true;
}

static void api_set_header(struct nimbus_ctx *ctx, const char *name, const char *value)
{
    struct wstate *w = state_of(ctx);
    if (!name || !value) return;
    w->has_http = true;
    size_t before = w->rheaders.len;
    if (nb_ipc_field_append(&w->rheaders, name, strlen(name)) ||
        nb_ipc_field_append(&w->rheaders, value, strlen(value))) {
        w->rheaders.len = before;
        w->overflow = "response headers larger than 16 MiB";
        return;
    }
    w->nrheaders++;
}

static void api_write(struct nimbus_ctx *ctx, const void *data, size_t len)
{
    struct wstate *w = state_of(ctx);
    w->has_http = true;
    if (len && !data) return;
    if (nb_buf_add(&w->body, data, len)) w->overflow = "response body larger than 100 MiB";
}

static int add_output(struct nimbus_ctx *ctx, const char *binding, const void *data, size_t len,
                      bool queue_only, long long visibility_ms)
{
    struct wstate *w = state_of(ctx);
    if (!binding || (len && !data)) return -1;
    if (!queue_only && w->http_binding[0] && strcasecmp(binding, w->http_binding) == 0) {
        api_write(ctx, data, len);
        return 0;
    }
    for (size_t i = 0; i < w->nallowed; i++) {
        const struct out_binding *b = &w->allowed[i];
        if (strcasecmp(b->name.ptr, binding) != 0) continue;
        if (queue_only && b->type != NB_BIND_QUEUE) return -1;
        char vis[8];
        uint64_t v = (uint64_t)visibility_ms;
        for (int k = 0; k < 8; k++) vis[k] = (char)((v >> (8 * k)) & 0xff);
        size_t before = w->outputs.len;
        /* The name as declared in function.json, so the host matches exactly. */
        if (nb_ipc_field_append(&w->outputs, b->name.ptr, b->name.len) ||
            nb_ipc_field_append(&w->outputs, data, len) ||
            nb_ipc_field_append(&w->outputs, vis, sizeof(vis))) {
            w->outputs.len = before;
            w->overflow = "output binding values larger than 128 MiB";
            return 0;
        }
        w->noutputs++;
        return 0;
    }
    return -1;
}

static int api_output(struct nimbus_ctx *ctx, const char *binding, const void *data, size_t len)
{
    return add_output(ctx, binding, data, len, false, 0);
}

static int api_output_delayed(struct nimbus_ctx *ctx, const char *binding, const void *data,
                              size_t len, long long visibility_ms)
{
    /* The host checks the range against the queue's limits. */
    return add_output(ctx, binding, data, len, true, visibility_ms);
}

static void api_log(struct nimbus_ctx *ctx, enum nimbus_log_level level, const char *fmt,
                    va_list ap)
{
    struct wstate *w = state_of(ctx);
    if (!fmt || w->logs_truncated) return;
    static const char *const names[] = { "debug", "info", "warn", "error" };
    const char *lvl = (unsigned)level < 4 ? names[level] : "info";
    nb_buf_reset(&w->scratch);
    nb_buf_printf(&w->scratch, "[%s] ", lvl);
    if (nb_buf_vprintf(&w->scratch, fmt, ap) == NB_OK) {
        size_t n = w->scratch.len;
        while (n > 0 && (w->scratch.data[n - 1] == '\n' || w->scratch.data[n - 1] == '\r')) n--;
        if (nb_ipc_field_append(&w->logs, w->scratch.data, n) == NB_OK) {
            w->nlogs++;
            return;
        }
    }
    /* The space left after LOG_MAX is for this one line. */
    w->logs_truncated = true;
    static const char note[] = "[warn] log output truncated at 1 MiB";
    w->logs.max += sizeof(note) + NB_IPC_FIELD_OVERHEAD;
    if (nb_ipc_field_append(&w->logs, note, sizeof(note) - 1) == NB_OK) w->nlogs++;
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

/* ---- loading functions ---- */

/* The function `symbol` of the shared object at `path`, loading and caching
 * it; NULL with *err set (heap) when it cannot be loaded. */
static nimbus_function_fn resolve(struct wstate *w, const char *path, const char *symbol,
                                  char **err)
{
    struct native_lib *lib = NULL;
    for (size_t i = 0; i < w->nlibs; i++) {
        if (strcmp(w->libs[i].path, path) == 0) {
            lib = &w->libs[i];
            break;
        }
    }
    if (!lib) {
        if (!path[0]) {
            *err = nb_strdup("function has no scriptFile");
            return NULL;
        }
        void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            const char *e = dlerror();
            *err = nb_asprintf("cannot load %s: %s", path, e ? e : "unknown error");
            return NULL;
        }
        w->libs = nb_realloc(w->libs, (w->nlibs + 1) * sizeof(*w->libs));
        lib = &w->libs[w->nlibs++];
        lib->path = nb_strdup(path);
        lib->handle = h;
        lib->fns = NULL;
        lib->nfns = 0;
    }
    for (size_t i = 0; i < lib->nfns; i++)
        if (strcmp(lib->fns[i].symbol, symbol) == 0) return lib->fns[i].fn;
    dlerror();
    void *sym = dlsym(lib->handle, symbol);
    if (!sym) {
        const char *e = dlerror();
        *err = nb_asprintf("entry point \"%s\" not found in %s%s%s", symbol, path,
                           e ? ": " : "", e ? e : "");
        return NULL;
    }
    nimbus_function_fn fn;
    memcpy(&fn, &sym, sizeof(fn)); /* POSIX: object to function pointer */
    lib->fns = nb_realloc(lib->fns, (lib->nfns + 1) * sizeof(*lib->fns));
    lib->fns[lib->nfns].symbol = nb_strdup(symbol);
    lib->fns[lib->nfns].fn = fn;
    lib->nfns++;
    return fn;
}

/* ---- request and reply ---- */

static enum nb_err read_pairs(struct nb_ipc_reader *r, struct kv_list *l)
{
    size_t n;
    enum nb_err rc = nb_ipc_get_count(r, 2, &n);
    if (rc) return rc;
    if (n > l->cap) {
        l->v = nb_realloc(l->v, n * sizeof(*l->v));
        l->cap = n;
    }
    for (size_t i = 0; i < n; i++) {
        struct nb_str name, value;
        if ((rc = nb_ipc_get(r, &name)) || (rc = nb_ipc_get(r, &value))) return rc;
        l->v[i].name = name.ptr;
        l->v[i].value = value.ptr;
        l->v[i].value_len = value.len;
    }
    l->n = n;
    return NB_OK;
}

/* Fill w->ctx/req/lists from a request payload. *script and *entry point
 * into the payload. */
static enum nb_err parse_request(struct wstate *w, struct nb_str payload, const char **script,
                                 const char **entry)
{
    struct nb_ipc_reader r;
    nb_ipc_reader_init(&r, payload.ptr, payload.len);
    uint32_t version;
    struct nb_str body, data;
    enum nb_err rc;
    if ((rc = nb_ipc_get_u32(&r, &version))) return rc;
    if (version != NB_IPC_VERSION) return NB_ERR_INVALID;
    memset(&w->ctx, 0, sizeof(w->ctx));
    memset(&w->req, 0, sizeof(w->req));
    if ((rc = nb_ipc_get_cstr(&r, script)) || (rc = nb_ipc_get_cstr(&r, entry)) ||
        (rc = nb_ipc_get_cstr(&r, &w->ctx.function_name)) ||
        (rc = nb_ipc_get_cstr(&r, &w->ctx.invocation_id)) ||
        (rc = nb_ipc_get_cstr(&r, &w->ctx.trigger)) ||
        (rc = nb_ipc_get_cstr(&r, &w->req.method)) || (rc = nb_ipc_get_cstr(&r, &w->req.url)) ||
        (rc = nb_ipc_get_cstr(&r, &w->req.path)) || (rc = read_pairs(&r, &w->params)) ||
        (rc = read_pairs(&r, &w->query)) || (rc = read_pairs(&r, &w->headers)) ||
        (rc = nb_ipc_get(&r, &body)) || (rc = nb_ipc_get(&r, &data)) ||
        (rc = nb_ipc_get_cstr(&r, &w->ctx.metadata_json)) || (rc = read_pairs(&r, &w->inputs)))
        return rc;
    size_t n;
    if ((rc = nb_ipc_get_count(&r, 2, &n))) return rc;
    if (n > w->allowed_cap) {
        w->allowed = nb_realloc(w->allowed, n * sizeof(*w->allowed));
        w->allowed_cap = n;
    }
    for (size_t i = 0; i < n; i++)
        if ((rc = nb_ipc_get(&r, &w->allowed[i].name)) ||
            (rc = nb_ipc_get_u32(&r, &w->allowed[i].type)))
            return rc;
    w->nallowed = n;
    if ((rc = nb_ipc_get_cstr(&r, &w->http_binding))) return rc;
    if (!nb_ipc_reader_done(&r)) return NB_ERR_INVALID;

    w->req.params = w->params.v;
    w->req.nparams = w->params.n;
    w->req.query = w->query.v;
    w->req.nquery = w->query.n;
    w->req.headers = w->headers.v;
    w->req.nheaders = w->headers.n;
    w->req.body = body.ptr;
    w->req.body_len = body.len;
    w->ctx.abi = NIMBUS_FUNCTION_ABI;
    w->ctx.req = strcmp(w->ctx.trigger, "httpTrigger") == 0 ? &w->req : NULL;
    w->ctx.trigger_data = data.ptr;
    w->ctx.trigger_len = data.len;
    w->ctx.api = &api;
    w->ctx.host = w;
    return NB_OK;
}

static void reset_acc(struct nb_buf *b)
{
    if (b->cap > KEEP_BYTES) nb_buf_cleanup(b);
    nb_buf_reset(b);
}

static void reset_reply(struct wstate *w)
{
    w->status = 200;
    w->has_http = false;
    reset_acc(&w->rheaders);
    reset_acc(&w->body);
    reset_acc(&w->outputs);
    reset_acc(&w->logs);
    w->logs.max = LOG_MAX;
    w->nrheaders = w->noutputs = w->nlogs = 0;
    w->logs_truncated = false;
    w->overflow = NULL;
}

/* Build and send the reply; false when the host is gone. */
static bool send_reply(struct wstate *w, int rc, const char *error)
{
    struct nb_ipc_writer *o = &w->out;
    if (w->overflow && !error) error = w->overflow;
    nb_ipc_begin(o);
    nb_ipc_put_u32(o, (uint32_t)w->status);
    nb_ipc_put_u32(o, w->has_http);
    nb_ipc_put_u32(o, w->nrheaders);
    nb_ipc_put_raw(o, w->rheaders.data, w->rheaders.len);
    nb_ipc_put(o, w->body.data, w->body.len);
    nb_ipc_put_u32(o, w->noutputs);
    nb_ipc_put_raw(o, w->outputs.data, w->outputs.len);
    nb_ipc_put_u32(o, w->nlogs);
    nb_ipc_put_raw(o, w->logs.data, w->logs.len);
    nb_ipc_put_u32(o, (uint32_t)rc);
    nb_ipc_put_str(o, error);
    if (nb_ipc_end(o)) {
        nb_ipc_begin(o);
        nb_ipc_put_u32(o, 500);
        nb_ipc_put_u32(o, 0);
        nb_ipc_put_u32(o, 0);
        nb_ipc_put(o, NULL, 0);
        nb_ipc_put_u32(o, 0);
        nb_ipc_put_u32(o, 0);
        nb_ipc_put_u32(o, (uint32_t)-1);
        nb_ipc_put_str(o, "function reply larger than 128 MiB");
        nb_ipc_end(o);
    }
    return nb_ipc_send(w->fd, o->buf.data, o->buf.len) == NB_OK;
}

static bool serve_one(struct wstate *w, struct nb_str payload)
{
    const char *script = "", *entry = "";
    char *err = NULL;
    int rc = -1;
    reset_reply(w);
    if (parse_request(w, payload, &script, &entry)) {
        err = nb_strdup("malformed request from the host");
        goto cleanup;
    }
    nimbus_function_fn fn = resolve(w, script, entry[0] ? entry : "run", &err);
    if (!fn) goto cleanup;
    rc = fn(&w->ctx);
    /* Output the function printed must not sit in a buffer that a later
     * SIGKILL (timeout) would throw away. */
    fflush(stdout);

cleanup:;
    bool ok = send_reply(w, rc, err);
    free(err);
    return ok;
}

static bool parse_long(const char *s, long min, long max, long *out)
{
    if (!s || !*s) return false;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < min || v > max) return false;
    *out = v;
    return true;
}

int nb_worker_main(int argc, char **argv)
{
    long fd = -1, ppid = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--fd") == 0 && i + 1 < argc) {
            if (!parse_long(argv[++i], 0, INT_MAX, &fd)) fd = -1;
        } else if (strcmp(argv[i], "--ppid") == 0 && i + 1 < argc) {
            if (!parse_long(argv[++i], 1, INT_MAX, &ppid)) ppid = 0;
        } else {
            fd = -1;
            break;
        }
    }
    if (fd < 0) {
        fputs("usage: nimbus worker --fd N [--ppid PID]\n"
              "(started by the function host; not for direct use)\n",
              stderr);
        return 2;
    }
    /* Die with the host even while a function loops forever. The signal is
     * tied to the host thread that spawned us; the pool spawns from one
     * long-lived thread for that reason. A host that died before prctl is
     * caught by the ppid check (and by EOF on the socket). */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (ppid && getppid() != (pid_t)ppid) return 1;
    /* Ctrl-C in a terminal reaches the whole process group: the host stops
     * its workers itself, so an invocation in flight is not torn down first. */
    signal(SIGINT, SIG_IGN);

    /* Processes a function starts must not hold the host's socket open:
     * the host detects a dead worker by EOF. */
    fcntl((int)fd, F_SETFD, FD_CLOEXEC);

    struct wstate w;
    memset(&w, 0, sizeof(w));
    w.fd = (int)fd;
    nb_ipc_rbuf_init(&w.in);
    nb_ipc_writer_init(&w.out);
    nb_buf_init(&w.rheaders, HEADERS_MAX);
    nb_buf_init(&w.body, BODY_MAX);
    nb_buf_init(&w.outputs, NB_IPC_MAX_FRAME);
    nb_buf_init(&w.logs, LOG_MAX);
    nb_buf_init(&w.scratch, LOG_MAX);
    int status = 0;

    nb_ipc_begin(&w.out);
    nb_ipc_put_u32(&w.out, NB_IPC_VERSION);
    nb_ipc_put_u32(&w.out, (uint32_t)getpid());
    if (nb_ipc_end(&w.out) || nb_ipc_send(w.fd, w.out.buf.data, w.out.buf.len)) {
        status = 1;
        goto cleanup;
    }
    for (;;) {
        struct nb_str payload;
        enum nb_err rc = nb_ipc_recv_frame(w.fd, &w.in, -1, &payload);
        if (rc == NB_ERR_STOPPED) break; /* the host closed: normal exit */
        if (rc) {
            status = 1;
            break;
        }
        if (!serve_one(&w, payload)) {
            status = 1;
            break;
        }
    }

cleanup:
    /* Libraries stay loaded: a function's atexit handlers or threads may
     * still reference them. */
    for (size_t i = 0; i < w.nlibs; i++) {
        for (size_t j = 0; j < w.libs[i].nfns; j++) free(w.libs[i].fns[j].symbol);
        free(w.libs[i].fns);
        free(w.libs[i].path);
    }
    free(w.libs);
    free(w.params.v);
    free(w.query.v);
    free(w.headers.v);
    free(w.inputs.v);
    free(w.allowed);
    nb_buf_cleanup(&w.rheaders);
    nb_buf_cleanup(&w.body);
    nb_buf_cleanup(&w.outputs);
    nb_buf_cleanup(&w.logs);
    nb_buf_cleanup(&w.scratch);
    nb_ipc_writer_cleanup(&w.out);
    nb_ipc_rbuf_cleanup(&w.in);
    close(w.fd);
    return status;
}
