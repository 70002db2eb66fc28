/* Function-app loader: reads host.json, local.settings.json and every
 * <function>/function.json under the app root into one immutable nb_app.
 * It only parses and validates; it starts nothing and keeps no file open.
 * Invariant: every function in app->functions passed validation, has exactly
 * one trigger and has its %SETTING% references resolved; everything that was
 * rejected or defaulted because it was wrong is named in app->problems. */
#include "host/app.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/mem.h"
#include "host/route.h"

#define DEFAULT_FUNCTION_TIMEOUT_MS (5 * 60 * 1000)
#define ENV_PREFIX "AzureFunctionsJobHost__"
/* App files are the operator's own input, not a client's, so the strings we
 * build from them are bounded only by what fits in memory. */
#define APP_TEXT_MAX (SIZE_MAX / 2)

/* State of one nb_app_load call. */
struct loader {
    struct nb_app *app;
    json_t *host; /* host.json root, NULL when absent */
};

/* ---- small helpers ---------------------------------------------------- */

static void strv_push(char ***v, size_t *n, char *s)
{
    *v = nb_realloc(*v, (*n + 1) * sizeof **v);
    (*v)[(*n)++] = s;
}

static void strv_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
}

static char *vformat(const char *fmt, va_list ap)
{
    struct nb_buf b;
    nb_buf_init(&b, APP_TEXT_MAX);
    (void)nb_buf_vprintf(&b, fmt, ap);
    return nb_buf_detach(&b, NULL);
}

static char *format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *format(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = vformat(fmt, ap);
    va_end(ap);
    return s;
}

static void problem(struct nb_app *app, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(struct nb_app *app, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    strv_push(&app->problems, &app->nproblems, vformat(fmt, ap));
    va_end(ap);
}

static bool ends_with_ci(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* `rel` resolved against absolute `base` (kept as is when already absolute). */
static char *path_join(const char *base, const char *rel)
{
    if (rel[0] == '/') return nb_strdup(rel);
    while (rel[0] == '.' && rel[1] == '/') rel += 2;
    if (!rel[0] || strcmp(rel, ".") == 0) return nb_strdup(base);
    size_t n = strlen(base);
    return format("%s%s%s", base, n && base[n - 1] == '/' ? "" : "/", rel);
}

/* Whole-string integer, optional leading '-', no spaces. */
static bool parse_int(const char *s, long long *out)
{
    if (!s || !(s[0] == '-' || (s[0] >= '0' && s[0] <= '9'))) return false; /* strtoll skips spaces, takes '+' */
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || end == s) return false;
    *out = v;
    return true;
}

static bool parse_bool(const char *s, bool *out)
{
    if (!s) return false;
    if (strcasecmp(s, "true") == 0) *out = true;
    else if (strcasecmp(s, "false") == 0) *out = false;
    else return false;
    return true;
}

static bool all_digits(const char *s)
{
    if (!*s) return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9') return false;
    return true;
}

static bool take_uint(const char **p, long long *out, int maxdigits)
{
    const char *s = *p;
    long long v = 0;
    int n = 0;
    while (*s >= '0' && *s <= '9') {
        if (++n > maxdigits) return false;
        v = v * 10 + (*s++ - '0');
    }
    if (n == 0) return false;
    *p = s;
    *out = v;
    return true;
}

/* A .NET TimeSpan in its colon forms: [d.]hh:mm[:ss[.fffffff]], with the
 * component ranges TimeSpan.Parse enforces (hours 0-23, minutes and
 * seconds 0-59). Fractions below a millisecond are dropped. */
static bool parse_timespan(const char *s, int64_t *ms)
{
    long long d = 0, h, m, sec = 0, frac = 0;
    int fdigits = 0;
    if (!take_uint(&s, &h, 8)) return false;
    if (*s == '.') {
        d = h;
        s++;
        if (!take_uint(&s, &h, 2)) return false;
    }
    if (*s++ != ':') return false;
    if (!take_uint(&s, &m, 2)) return false;
    if (*s == ':') {
        s++;
        if (!take_uint(&s, &sec, 2)) return false;
        if (*s == '.') {
            s++;
            const char *f = s;
            if (!take_uint(&s, &frac, 7)) return false;
            fdigits = (int)(s - f);
        }
    }
    if (*s || h > 23 || m > 59 || sec > 59 || d > 10675199) return false;
    for (; fdigits < 3; fdigits++) frac *= 10;
    for (; fdigits > 3; fdigits--) frac /= 10;
    *ms = (((d * 24 + h) * 60 + m) * 60 + sec) * 1000 + frac;
    return true;
}

/* An interval written either as a TimeSpan or as a number of milliseconds. */
static bool parse_interval(const char *s, int64_t *ms)
{
    if (all_digits(s)) {
        long long v;
        if (!parse_int(s, &v)) return false;
        *ms = v;
        return true;
    }
    return parse_timespan(s, ms);
}

/* The member `key` of `obj`: the exact key if present, else the first one
 * equal ignoring case (.NET configuration keys are case-insensitive). */
static json_t *obj_getn(json_t *obj, const char *key, size_t len)
{
    if (!json_is_object(obj)) return NULL;
    const char *k;
    json_t *v, *ci = NULL;
    json_object_foreach(obj, k, v) {
        if (strlen(k) != len) continue;
        if (strncmp(k, key, len) == 0) return v;
        if (!ci && strncasecmp(k, key, len) == 0) ci = v;
    }
    return ci;
}

static json_t *obj_get(json_t *obj, const char *key)
{
    return obj_getn(obj, key, strlen(key));
}

/* Follow a '.'-separated path ("extensions.queues.batchSize"). */
static json_t *json_path(json_t *root, const char *path)
{
    json_t *v = root;
    while (v && *path) {
        const char *dot = strchr(path, '.');
        size_t len = dot ? (size_t)(dot - path) : strlen(path);
        if (json_is_array(v)) {
            /* "arguments.0": an array element, as .NET configuration indexes them */
            char idx[24];
            long long i;
            if (len >= sizeof idx) return NULL;
            memcpy(idx, path, len);
            idx[len] = '\0';
            v = all_digits(idx) && parse_int(idx, &i) ? json_array_get(v, (size_t)i) : NULL;
        } else {
            v = obj_getn(v, path, len);
        }
        path += len + (dot ? 1 : 0);
    }
    return v;
}

/* A JSON scalar as text (heap); NULL for null, objects and arrays. */
static char *scalar_text(json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_STRING: return nb_strdup(json_string_value(v));
    case JSON_INTEGER: return format("%lld", (long long)json_integer_value(v));
    case JSON_REAL: return format("%.17g", json_real_value(v));
    case JSON_TRUE: return nb_strdup("true");
    case JSON_FALSE: return nb_strdup("false");
    default: return NULL;
    }
}

/* An environment variable, matched exactly and then ignoring case. */
static const char *env_ci(const char *name)
{
    const char *v = getenv(name);
    if (v) return v;
    size_t n = strlen(name);
    for (char **e = environ; e && *e; e++)
        if (strncasecmp(*e, name, n) == 0 && (*e)[n] == '=') return *e + n + 1;
    return NULL;
}

static const char *setting_only(const struct nb_app *app, const char *name)
{
    if (!app) return NULL;
    for (size_t i = 0; i < app->nsettings; i++)
        if (strcmp(app->settings[i].name, name) == 0) return app->settings[i].value;
    for (size_t i = 0; i < app->nsettings; i++)
        if (strcasecmp(app->settings[i].name, name) == 0) return app->settings[i].value;
    return NULL;
}

/* json_load_file, but tolerating the UTF-8 byte-order mark that Windows
 * editors write and the .NET host accepts. */
static json_t *load_json(const char *path, json_error_t *jerr)
{
    FILE *f = fopen(path, "rb");
    if (!f) return json_load_file(path, 0, jerr); /* for jansson's message */
    struct nb_buf b;
    nb_buf_init(&b, APP_TEXT_MAX);
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) (void)nb_buf_add(&b, chunk, n);
    fclose(f);
    const char *p = nb_buf_cstr(&b);
    size_t len = b.len;
    if (len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) {
        p += 3;
        len -= 3;
    }
    json_t *root = json_loadb(p, len, 0, jerr);
    nb_buf_cleanup(&b);
    return root;
}

/* ---- public lookups ----------------------------------------------------- */

const char *nb_app_setting(const struct nb_app *app, const char *name)
{
    if (!name) return NULL;
    const char *v = setting_only(app, name);
    return v ? v : getenv(name);
}

char *nb_app_expand(const struct nb_app *app, const char *in, char **missing)
{
    if (missing) *missing = NULL;
    if (!in) return NULL;
    struct nb_buf b;
    nb_buf_init(&b, APP_TEXT_MAX);
    const char *p = in;
    for (;;) {
        const char *open = strchr(p, '%');
        const char *close = open ? strchr(open + 1, '%') : NULL;
        if (!close) break; /* no reference left; a lone '%' stays literal */
        (void)nb_buf_add(&b, p, (size_t)(open - p));
        char *name = nb_strndup(open + 1, (size_t)(close - open - 1));
        const char *v = name[0] ? nb_app_setting(app, name) : NULL;
        if (!v) {
            nb_buf_cleanup(&b);
            if (missing) *missing = name;
            else free(name);
            return NULL;
        }
        (void)nb_buf_adds(&b, v);
        free(name);
        p = close + 1;
    }
    (void)nb_buf_adds(&b, p);
    return nb_buf_detach(&b, NULL);
}

const struct nb_function *nb_app_function(const struct nb_app *app, const char *name)
{
    if (!app || !name) return NULL;
    for (size_t i = 0; i < app->nfunctions; i++)
        if (strcasecmp(app->functions[i].name, name) == 0) return &app->functions[i];
    return NULL;
}

const struct nb_binding *nb_function_trigger(const struct nb_function *fn)
{
    return fn && fn->trigger < fn->nbindings ? &fn->bindings[fn->trigger] : NULL;
}

const struct nb_binding *nb_function_binding(const struct nb_function *fn, const char *name)
{
    if (!fn || !name) return NULL;
    for (size_t i = 0; i < fn->nbindings; i++)
        if (strcasecmp(fn->bindings[i].name, name) == 0) return &fn->bindings[i];
    return NULL;
}

const char *nb_auth_level_name(enum nb_auth_level level)
{
    switch (level) {
    case NB_AUTH_ANONYMOUS: return "anonymous";
    case NB_AUTH_FUNCTION: return "function";
    case NB_AUTH_ADMIN: return "admin";
    }
    return "function";
}

static const struct {
    const char *name;
    unsigned bit;
} methods[] = {
    {"GET", NB_METHOD_GET},         {"POST", NB_METHOD_POST},       {"PUT", NB_METHOD_PUT},
    {"DELETE", NB_METHOD_DELETE},   {"PATCH", NB_METHOD_PATCH},     {"HEAD", NB_METHOD_HEAD},
    {"OPTIONS", NB_METHOD_OPTIONS}, {"TRACE", NB_METHOD_TRACE},
};

unsigned nb_app_method_bit(const char *method)
{
    if (!method) return 0;
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (strcasecmp(methods[i].name, method) == 0) return methods[i].bit;
    return 0;
}

/* ---- freeing ------------------------------------------------------------ */

static void binding_cleanup(struct nb_binding *b)
{
    free(b->type_name);
    free(b->name);
    free(b->data_type);
    free(b->route);
    free(b->queue_name);
    free(b->connection);
    free(b->schedule);
    free(b->table_name);
    free(b->partition_key);
    free(b->row_key);
    free(b->filter);
}

static void function_cleanup(struct nb_function *fn)
{
    free(fn->name);
    free(fn->dir);
    free(fn->script_file);
    free(fn->entry_point);
    for (size_t i = 0; i < fn->nbindings; i++) binding_cleanup(&fn->bindings[i]);
    free(fn->bindings);
    memset(fn, 0, sizeof *fn);
}

void nb_app_free(struct nb_app *app)
{
    if (!app) return;
    free(app->root);
    free(app->route_prefix);
    free(app->custom.executable);
    strv_free(app->custom.arguments, app->custom.narguments);
    free(app->custom.working_dir);
    strv_free(app->cors_origins, app->ncors_origins);
    for (size_t i = 0; i < app->nsettings; i++) {
        free(app->settings[i].name);
        free(app->settings[i].value);
    }
    free(app->settings);
    for (size_t i = 0; i < app->nfunctions; i++) function_cleanup(&app->functions[i]);
    free(app->functions);
    strv_free(app->problems, app->nproblems);
    free(app);
}

/* ---- local.settings.json ------------------------------------------------ */

static void add_setting(struct nb_app *app, const char *name, char *value)
{
    for (size_t i = 0; i < app->nsettings; i++) {
        if (strcmp(app->settings[i].name, name) == 0) {
            free(app->settings[i].value);
            app->settings[i].value = value;
            return;
        }
    }
    app->settings = nb_realloc(app->settings, (app->nsettings + 1) * sizeof *app->settings);
    app->settings[app->nsettings].name = nb_strdup(name);
    app->settings[app->nsettings].value = value;
    app->nsettings++;
}

static void split_cors(struct nb_app *app, const char *list)
{
    const char *p = list;
    while (*p) {
        const char *comma = strchr(p, ',');
        const char *end = comma ? comma : p + strlen(p);
        const char *a = p, *z = end;
        while (a < z && (*a == ' ' || *a == '\t')) a++;
        while (z > a && (z[-1] == ' ' || z[-1] == '\t')) z--;
        if (z > a) strv_push(&app->cors_origins, &app->ncors_origins, nb_strndup(a, (size_t)(z - a)));
        p = comma ? comma + 1 : end;
    }
}

static void load_local_settings(struct nb_app *app)
{
    const char *file = "local.settings.json";
    char *path = path_join(app->root, file);
    json_t *root = NULL;
    json_error_t jerr;
    if (access(path, F_OK) != 0) goto cleanup;
    root = load_json(path, &jerr);
    if (!root) {
        problem(app, "%s: line %d: %s", file, jerr.line, jerr.text);
        goto cleanup;
    }
    if (!json_is_object(root)) {
        problem(app, "%s: not a JSON object", file);
        goto cleanup;
    }

    json_t *values = obj_get(root, "Values");
    if (json_is_true(obj_get(root, "IsEncrypted"))) {
        problem(app, "%s: encrypted settings are not supported", file);
    } else if (values && !json_is_null(values)) {
        if (!json_is_object(values)) {
            problem(app, "%s: Values must be an object", file);
        } else {
            const char *k;
            json_t *v;
            json_object_foreach(values, k, v) {
                if (json_is_null(v)) continue;
                char *text = scalar_text(v);
                if (!text) {
                    problem(app, "%s: Values.%s must be a string", file, k);
                    continue;
                }
                add_setting(app, k, text);
            }
        }
    }

    json_t *host = obj_get(root, "Host");
    if (json_is_object(host)) {
        json_t *port = obj_get(host, "LocalHttpPort");
        if (port && !json_is_null(port)) {
            char *text = scalar_text(port);
            long long n;
            if (text && parse_int(text, &n) && n >= 1 && n <= 65535) app->local_http_port = (int)n;
            else problem(app, "%s: Host.LocalHttpPort must be a port number (1-65535)", file);
            free(text);
        }
        json_t *cors = obj_get(host, "CORS");
        if (json_is_string(cors)) split_cors(app, json_string_value(cors));
        else if (cors && !json_is_null(cors)) problem(app, "%s: Host.CORS must be a string", file);
        json_t *cred = obj_get(host, "CORSCredentials");
        if (cred && !json_is_null(cred)) {
            char *text = scalar_text(cred);
            if (!parse_bool(text, &app->cors_credentials))
                problem(app, "%s: Host.CORSCredentials must be true or false", file);
            free(text);
        }
    } else if (host && !json_is_null(host)) {
        problem(app, "%s: Host must be an object", file);
    }

cleanup:
    json_decref(root);
    free(path);
}

/* ---- host.json ---------------------------------------------------------- */

/* One host.json setting as text, after the environment override
 * AzureFunctionsJobHost__a__b__c (looked up like any app setting: the
 * local.settings.json Values first, as Core Tools exports them, then the
 * process environment ignoring case, as .NET configuration does). */
struct cval {
    char *text;  /* heap; NULL when the setting is absent or null */
    char *where; /* heap: the key for messages, naming the variable if overridden */
};

static void cval_cleanup(struct cval *c)
{
    free(c->text);
    free(c->where);
    c->text = c->where = NULL;
}

static char *env_name(const char *path)
{
    struct nb_buf b;
    nb_buf_init(&b, APP_TEXT_MAX);
    (void)nb_buf_adds(&b, ENV_PREFIX);
    for (const char *p = path; *p; p++) {
        if (*p == '.') (void)nb_buf_adds(&b, "__");
        else (void)nb_buf_addc(&b, *p);
    }
    return nb_buf_detach(&b, NULL);
}

/* Whether a setting is given at all (override or non-null JSON), silently. */
static bool cfg_present(struct loader *ld, const char *path)
{
    char *env = env_name(path);
    bool set = setting_only(ld->app, env) || env_ci(env);
    free(env);
    json_t *v = json_path(ld->host, path);
    return set || (v && !json_is_null(v));
}

static bool cfg_get(struct loader *ld, const char *path, struct cval *out)
{
    out->text = out->where = NULL;
    char *env = env_name(path);
    const char *ov = setting_only(ld->app, env);
    if (!ov) ov = env_ci(env);
    if (ov) {
        out->text = nb_strdup(ov);
        out->where = format("%s (%s)", path, env);
        free(env);
        return true;
    }
    free(env);
    json_t *v = json_path(ld->host, path);
    if (!v || json_is_null(v)) return false;
    out->text = scalar_text(v);
    if (!out->text) {
        problem(ld->app, "host.json: %s must be a string, number or boolean", path);
        return false;
    }
    out->where = nb_strdup(path);
    return true;
}

/* An integer setting within [lo, hi]; `*val` keeps its default otherwise. */
static void cfg_int(struct loader *ld, const char *path, long long lo, long long hi, int *val)
{
    struct cval c;
    if (!cfg_get(ld, path, &c)) return;
    long long n;
    if (!parse_int(c.text, &n))
        problem(ld->app, "host.json: %s: '%s' is not an integer (using %d)", c.where, c.text, *val);
    else if (n < lo || n > hi)
        problem(ld->app, "host.json: %s: %lld is out of range %lld..%lld (using %d)", c.where, n, lo, hi,
                *val);
    else *val = (int)n;
    cval_cleanup(&c);
}

/* An interval (TimeSpan or milliseconds) of at least `min_ms`. */
static void cfg_interval(struct loader *ld, const char *path, int64_t min_ms, int64_t *val)
{
    struct cval c;
    if (!cfg_get(ld, path, &c)) return;
    int64_t ms;
    if (!parse_interval(c.text, &ms))
        problem(ld->app, "host.json: %s: '%s' is not a TimeSpan (hh:mm:ss) or a number of milliseconds",
                c.where, c.text);
    else if (ms < min_ms)
        problem(ld->app, "host.json: %s: '%s' is below the minimum of %lld ms", c.where, c.text,
                (long long)min_ms);
    else *val = ms;
    cval_cleanup(&c);
}

static void load_http_and_timeout(struct loader *ld)
{
    struct nb_app *app = ld->app;
    struct cval c;
    if (cfg_get(ld, "extensions.http.routePrefix", &c)) {
        const char *a = c.text;
        size_t n = strlen(a);
        for (; *a == '/'; n--) a++;
        while (n && a[n - 1] == '/') n--;
        free(app->route_prefix);
        app->route_prefix = nb_strndup(a, n);
        cval_cleanup(&c);
    }
    if (cfg_get(ld, "functionTimeout", &c)) {
        int64_t ms;
        if (strcmp(c.text, "-1") == 0) app->function_timeout_ms = -1;
        else if (!parse_timespan(c.text, &ms))
            problem(app, "host.json: %s: '%s' is not a TimeSpan ([d.]hh:mm:ss) or -1", c.where, c.text);
        else if (ms < 1000)
            problem(app, "host.json: %s: '%s' is shorter than the minimum of 00:00:01", c.where, c.text);
        else app->function_timeout_ms = ms;
        cval_cleanup(&c);
    }
}

static void load_queues(struct loader *ld)
{
    struct nb_queues_config *q = &ld->app->queues;
    cfg_int(ld, "extensions.queues.batchSize", 1, 32, &q->batch_size);
    q->new_batch_threshold = q->batch_size / 2;
    int thr = -1;
    cfg_int(ld, "extensions.queues.newBatchThreshold", -1, INT_MAX, &thr);
    if (thr >= 0) q->new_batch_threshold = thr; /* -1 asks for the default, as in the extension */
    cfg_interval(ld, "extensions.queues.maxPollingInterval", 100, &q->max_polling_interval_ms);
    cfg_interval(ld, "extensions.queues.visibilityTimeout", 0, &q->visibility_timeout_ms);
    cfg_int(ld, "extensions.queues.maxDequeueCount", 1, INT_MAX, &q->max_dequeue_count);
    struct cval c;
    if (cfg_get(ld, "extensions.queues.messageEncoding", &c)) {
        if (strcasecmp(c.text, "base64") == 0) q->base64 = true;
        else if (strcasecmp(c.text, "none") == 0) q->base64 = false;
        else problem(ld->app, "host.json: %s: '%s' is not 'base64' or 'none'", c.where, c.text);
        cval_cleanup(&c);
    }
}

/* %SETTING% expansion for the custom-handler strings. Azure uses
 * Environment.ExpandEnvironmentVariables here, which leaves an unknown
 * reference as written; we do the same but report it. */
static char *expand_or_keep(struct nb_app *app, const char *where, const char *in)
{
    char *missing = NULL;
    char *out = nb_app_expand(app, in, &missing);
    if (out) return out;
    problem(app, "host.json: %s: app setting '%s' is not set", where, missing);
    free(missing);
    return nb_strdup(in);
}

/* Arguments from a JSON array, each element overridable (and the list
 * extendable) with AzureFunctionsJobHost__<path>__<index>. */
static void load_arg_list(struct loader *ld, const char *path)
{
    struct nb_custom_handler_config *ch = &ld->app->custom;
    json_t *arr = json_path(ld->host, path);
    if (arr && !json_is_null(arr) && !json_is_array(arr)) {
        problem(ld->app, "host.json: %s must be an array of strings", path);
        arr = NULL;
    }
    size_t n = json_is_array(arr) ? json_array_size(arr) : 0;
    for (size_t i = 0;; i++) {
        char *ipath = format("%s.%zu", path, i);
        struct cval c;
        bool have = cfg_get(ld, ipath, &c);
        free(ipath);
        if (!have) {
            if (i >= n) break;
            continue; /* a null element */
        }
        strv_push(&ch->arguments, &ch->narguments, expand_or_keep(ld->app, c.where, c.text));
        cval_cleanup(&c);
    }
}

static void load_custom_handler(struct loader *ld)
{
    struct nb_app *app = ld->app;
    struct nb_custom_handler_config *ch = &app->custom;
    /* customHandler wins over the legacy httpWorker when both are present. */
    const char *section = NULL;
    const char *candidates[] = {"customHandler", "httpWorker"};
    for (size_t i = 0; i < 2 && !section; i++) {
        char *exe = format("%s.description.defaultExecutablePath", candidates[i]);
        char *wp = format("%s.description.defaultWorkerPath", candidates[i]);
        bool any = cfg_present(ld, exe) || cfg_present(ld, wp);
        free(exe);
        free(wp);
        if (any || json_is_object(obj_get(ld->host, candidates[i]))) section = candidates[i];
    }
    if (!section) return;

    char *p_exe = format("%s.description.defaultExecutablePath", section);
    char *p_wpath = format("%s.description.defaultWorkerPath", section);
    char *p_args = format("%s.description.arguments", section);
    char *p_wargs = format("%s.description.workerArguments", section);
    char *p_wd = format("%s.description.workingDirectory", section);
    char *p_fwd = format("%s.enableForwardingHttpRequest", section);
    char *worker_path = NULL;
    struct cval c;

    if (cfg_get(ld, p_wd, &c)) {
        char *wd = expand_or_keep(app, c.where, c.text);
        char *abs = path_join(app->root, wd);
        char *real = realpath(abs, NULL);
        free(ch->working_dir);
        ch->working_dir = real ? nb_strdup(real) : nb_strdup(abs);
        if (!real || !is_dir(real))
            problem(app, "host.json: %s: '%s' is not a directory", c.where, c.text);
        free(real);
        free(abs);
        free(wd);
        cval_cleanup(&c);
    }

    /* Azure runs "<executable> <arguments> <workerPath> <workerArguments>";
     * defaultWorkerPath alone stands in for the executable. */
    char *exe = NULL;
    if (cfg_get(ld, p_exe, &c)) {
        if (c.text[0]) exe = expand_or_keep(app, c.where, c.text);
        cval_cleanup(&c);
    }
    if (cfg_get(ld, p_wpath, &c)) {
        if (c.text[0]) worker_path = expand_or_keep(app, c.where, c.text);
        cval_cleanup(&c);
    }
    if (!exe) {
        exe = worker_path;
        worker_path = NULL;
    }
    load_arg_list(ld, p_args);
    if (worker_path) {
        strv_push(&ch->arguments, &ch->narguments, worker_path);
        worker_path = NULL;
    }
    load_arg_list(ld, p_wargs);

    if (!exe) {
        problem(app, "host.json: %s.description.defaultExecutablePath is required", section);
        strv_free(ch->arguments, ch->narguments);
        ch->arguments = NULL;
        ch->narguments = 0;
        goto cleanup;
    }
    /* A relative path with a '/' is relative to the working directory; a
     * bare name is too when such a file exists there (as Azure does), and
     * otherwise is left for a PATH lookup at start. */
    if (exe[0] != '/') {
        char *joined = path_join(ch->working_dir, exe);
        if (strchr(exe, '/') || is_file(joined)) {
            free(exe);
            exe = joined;
        } else {
            free(joined);
        }
    }
    ch->executable = exe;

    if (cfg_get(ld, p_fwd, &c)) {
        if (!parse_bool(c.text, &ch->forwarding))
            problem(app, "host.json: %s: '%s' is not true or false", c.where, c.text);
        cval_cleanup(&c);
    }

cleanup:
    free(worker_path);
    free(p_exe);
    free(p_wpath);
    free(p_args);
    free(p_wargs);
    free(p_wd);
    free(p_fwd);
}

/* NB_ERR_INVALID (with *msg) only when host.json exists and is unusable. */
static enum nb_err load_host(struct loader *ld, char **msg)
{
    struct nb_app *app = ld->app;
    char *path = path_join(app->root, "host.json");
    enum nb_err rc = NB_OK;
    if (access(path, F_OK) == 0) {
        json_error_t jerr;
        ld->host = load_json(path, &jerr);
        if (!ld->host) {
            *msg = format("host.json: line %d: %s", jerr.line, jerr.text);
            rc = NB_ERR_INVALID;
            goto cleanup;
        }
        if (!json_is_object(ld->host)) {
            *msg = nb_strdup("host.json: not a JSON object");
            rc = NB_ERR_INVALID;
            goto cleanup;
        }
        json_t *ver = obj_get(ld->host, "version");
        if (!ver) {
            *msg = nb_strdup("host.json: the required 'version' property is missing (set it to \"2.0\")");
            rc = NB_ERR_INVALID;
            goto cleanup;
        }
        if (!json_is_string(ver) || strcmp(json_string_value(ver), "2.0") != 0) {
            char *text = json_dumps(ver, JSON_ENCODE_ANY);
            *msg = format("host.json: version %s is not supported (set it to \"2.0\")", text ? text : "?");
            free(text);
            rc = NB_ERR_INVALID;
            goto cleanup;
        }
    }
    load_http_and_timeout(ld);
    load_queues(ld);
    load_custom_handler(ld);
cleanup:
    free(path);
    return rc;
}

/* ---- function.json ------------------------------------------------------ */

static bool valid_function_name(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 128) return false;
    if (!((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z'))) return false;
    for (size_t i = 1; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '-'))
            return false;
    }
    return true;
}

static const struct {
    const char *name;
    enum nb_binding_type type;
} binding_types[] = {
    {"httpTrigger", NB_BIND_HTTP_TRIGGER}, {"http", NB_BIND_HTTP},
    {"queueTrigger", NB_BIND_QUEUE_TRIGGER}, {"queue", NB_BIND_QUEUE},
    {"timerTrigger", NB_BIND_TIMER_TRIGGER}, {"table", NB_BIND_TABLE},
};

/* A binding property as an expanded string. Returns false with *reason set
 * when it is not a scalar or names a missing setting; absent/null → *out NULL. */
static bool prop_str(const struct nb_app *app, json_t *jb, const char *key, char **out, char **reason)
{
    *out = NULL;
    json_t *v = obj_get(jb, key);
    if (!v || json_is_null(v)) return true;
    char *text = scalar_text(v);
    if (!text) {
        *reason = format("'%s' must be a string", key);
        return false;
    }
    char *missing = NULL;
    *out = nb_app_expand(app, text, &missing);
    free(text);
    if (!*out) {
        *reason = format("app setting '%s' is not set", missing);
        free(missing);
        return false;
    }
    return true;
}

static bool prop_bool(const struct nb_app *app, json_t *jb, const char *key, bool *val, char **reason)
{
    char *s;
    if (!prop_str(app, jb, key, &s, reason)) return false;
    bool ok = !s || parse_bool(s, val);
    if (!ok) *reason = format("'%s' must be true or false", key);
    free(s);
    return ok;
}

static bool reserved_route(const char *route)
{
    while (*route == '/') route++;
    size_t n = strcspn(route, "/");
    return (n == 5 && strncasecmp(route, "admin", 5) == 0) ||
           (n == 7 && strncasecmp(route, "runtime", 7) == 0);
}

/* Parse binding `jb` into `b` (zeroed by the caller). NULL on success, else
 * the reason (heap). */
static char *parse_binding(const struct nb_app *app, const char *fname, json_t *jb, size_t idx,
                           struct nb_binding *b)
{
    char *reason = NULL;
    b->auth_level = NB_AUTH_FUNCTION;
    b->use_monitor = true;
    if (!json_is_object(jb)) return format("binding %zu is not an object", idx);

    json_t *jname = obj_get(jb, "name");
    if (!json_is_string(jname) || !json_string_value(jname)[0])
        return format("binding %zu: 'name' is required", idx);
    b->name = nb_strdup(json_string_value(jname));

    json_t *jtype = obj_get(jb, "type");
    if (!json_is_string(jtype) || !json_string_value(jtype)[0])
        return format("binding '%s': 'type' is required", b->name);
    b->type_name = nb_strdup(json_string_value(jtype));
    b->type = NB_BIND_OTHER;
    for (size_t i = 0; i < sizeof binding_types / sizeof binding_types[0]; i++)
        if (strcasecmp(b->type_name, binding_types[i].name) == 0) b->type = binding_types[i].type;

    json_t *jdir = obj_get(jb, "direction");
    if (jdir && !json_is_null(jdir)) {
        const char *d = json_is_string(jdir) ? json_string_value(jdir) : "";
        if (strcasecmp(d, "out") == 0) b->out = true;
        else if (strcasecmp(d, "in") != 0 && strcasecmp(d, "inout") != 0)
            return format("binding '%s': direction must be 'in', 'out' or 'inout'", b->name);
    }

    if (!prop_str(app, jb, "dataType", &b->data_type, &reason) ||
        !prop_str(app, jb, "queueName", &b->queue_name, &reason) ||
        !prop_str(app, jb, "connection", &b->connection, &reason) ||
        !prop_str(app, jb, "schedule", &b->schedule, &reason) ||
        !prop_str(app, jb, "tableName", &b->table_name, &reason) ||
        !prop_str(app, jb, "partitionKey", &b->partition_key, &reason) ||
        !prop_str(app, jb, "rowKey", &b->row_key, &reason) ||
        !prop_str(app, jb, "filter", &b->filter, &reason) ||
        !prop_bool(app, jb, "runOnStartup", &b->run_on_startup, &reason) ||
        !prop_bool(app, jb, "useMonitor", &b->use_monitor, &reason))
        return reason;
    if (b->connection && !b->connection[0]) {
        free(b->connection); /* empty means AzureWebJobsStorage, like absent */
        b->connection = NULL;
    }

    char *take = NULL;
    if (!prop_str(app, jb, "take", &take, &reason)) return reason;
    if (take) {
        long long n;
        if (!parse_int(take, &n) || n < 0 || n > INT_MAX)
            reason = format("binding '%s': 'take' must be a non-negative integer", b->name);
        else b->take = (int)n;
        free(take);
        if (reason) return reason;
    }

    switch (b->type) {
    case NB_BIND_HTTP_TRIGGER: {
        char *level = NULL;
        if (!prop_str(app, jb, "authLevel", &level, &reason)) return reason;
        if (level) {
            if (strcasecmp(level, "anonymous") == 0) b->auth_level = NB_AUTH_ANONYMOUS;
            else if (strcasecmp(level, "function") == 0) b->auth_level = NB_AUTH_FUNCTION;
            else if (strcasecmp(level, "admin") == 0) b->auth_level = NB_AUTH_ADMIN;
            else reason = format("authLevel '%s' is not anonymous, function or admin", level);
            free(level);
            if (reason) return reason;
        }
        json_t *jm = obj_get(jb, "methods");
        if (jm && !json_is_null(jm)) {
            if (!json_is_array(jm)) return nb_strdup("'methods' must be an array of strings");
            size_t i;
            json_t *m;
            json_array_foreach(jm, i, m) {
                unsigned bit = json_is_string(m) ? nb_app_method_bit(json_string_value(m)) : 0;
                if (!bit) {
                    char *text = json_dumps(m, JSON_ENCODE_ANY);
                    reason = format("unknown HTTP method %s", text ? text : "?");
                    free(text);
                    return reason;
                }
                b->methods |= bit;
            }
        }
        if (!prop_str(app, jb, "route", &b->route, &reason)) return reason;
        /* Azure checks only a route that is written out; the default (the
         * function name) always lives under the route prefix. */
        if (b->route && reserved_route(b->route))
            return format("route '%s' is reserved: routes may not start with 'admin' or 'runtime'", b->route);
        if (!b->route || !b->route[0]) {
            free(b->route);
            b->route = nb_strdup(fname);
        }
        /* A template the router cannot compile is a load problem, reported
         * with the others, not a function listed but never served. */
        struct nb_route *compiled = NULL;
        char rerr[256] = "";
        if (nb_route_parse(b->route, &compiled, rerr, sizeof(rerr)) != NB_OK)
            return format("%s", rerr);
        nb_route_free(compiled);
        break;
    }
    case NB_BIND_QUEUE_TRIGGER:
    case NB_BIND_QUEUE:
        if (!b->queue_name || !b->queue_name[0])
            return format("%s binding '%s' has no queueName", b->type_name, b->name);
        break;
    case NB_BIND_TIMER_TRIGGER:
        if (!b->schedule || !b->schedule[0])
            return format("timerTrigger binding '%s' has no schedule", b->name);
        break;
    case NB_BIND_TABLE:
        if (!b->table_name || !b->table_name[0])
            return format("table binding '%s' has no tableName", b->name);
        break;
    default:
        break;
    }
    return NULL;
}

static bool setting_true(const struct nb_app *app, const char *name)
{
    const char *v = nb_app_setting(app, name);
    return v && (strcasecmp(v, "true") == 0 || strcmp(v, "1") == 0);
}

/* Fill `fn` from <root>/<name>/function.json. NULL on success, else the
 * reason (heap); the caller prefixes "<name>/function.json: ". */
static char *parse_function(const struct nb_app *app, const char *name, struct nb_function *fn)
{
    char *reason = NULL;
    json_error_t jerr;
    json_t *root = NULL;

    fn->name = nb_strdup(name);
    fn->dir = path_join(app->root, name);
    char *path = path_join(fn->dir, "function.json");

    if (!valid_function_name(name)) {
        reason = format("'%s' is not a valid function name (a letter, then up to 127 letters, digits, "
                        "'_' or '-')",
                        name);
        goto cleanup;
    }
    root = load_json(path, &jerr);
    if (!root) {
        reason = format("line %d: %s", jerr.line, jerr.text);
        goto cleanup;
    }
    if (!json_is_object(root)) {
        reason = nb_strdup("not a JSON object");
        goto cleanup;
    }

    json_t *jbind = obj_get(root, "bindings");
    if (!json_is_array(jbind)) {
        reason = nb_strdup(jbind ? "'bindings' must be an array" : "'bindings' is missing");
        goto cleanup;
    }
    size_t n = json_array_size(jbind), ntriggers = 0;
    fn->bindings = nb_calloc(n ? n : 1, sizeof *fn->bindings);
    for (size_t i = 0; i < n; i++) {
        struct nb_binding *b = &fn->bindings[i];
        fn->nbindings = i + 1;
        reason = parse_binding(app, name, json_array_get(jbind, i), i, b);
        if (reason) goto cleanup;
        if (b->type_name && ends_with_ci(b->type_name, "Trigger")) {
            ntriggers++;
            fn->trigger = i;
        }
    }
    if (ntriggers != 1) {
        reason = nb_strdup(ntriggers ? "more than one trigger binding" : "no trigger binding");
        goto cleanup;
    }

    json_t *jdis = obj_get(root, "disabled");
    if (jdis && !json_is_null(jdis)) {
        char *text = scalar_text(jdis);
        bool ok = parse_bool(text, &fn->disabled);
        free(text);
        if (!ok) {
            reason = nb_strdup("'disabled' must be true or false");
            goto cleanup;
        }
    }
    char *s1 = format("AzureWebJobs.%s.Disabled", name);
    char *s2 = format("AzureWebJobs_%s_Disabled", name); /* Linux has no '.' in variable names */
    if (setting_true(app, s1) || setting_true(app, s2)) fn->disabled = true;
    free(s1);
    free(s2);

    json_t *jentry = obj_get(root, "entryPoint");
    fn->entry_point = nb_strdup(json_is_string(jentry) && json_string_value(jentry)[0]
                                    ? json_string_value(jentry)
                                    : "run");

    json_t *jscript = obj_get(root, "scriptFile");
    const char *script = json_is_string(jscript) ? json_string_value(jscript) : NULL;
    if (script && ends_with_ci(script, ".so")) {
        char *abs = path_join(fn->dir, script);
        char *real = realpath(abs, NULL);
        free(abs);
        if (!real || !is_file(real)) {
            free(real);
            reason = format("scriptFile '%s' not found", script);
            goto cleanup;
        }
        fn->script_file = nb_strdup(real);
        free(real);
        fn->worker = NB_WORKER_NATIVE;
    } else if (app->custom.executable) {
        fn->worker = NB_WORKER_CUSTOM;
    } else {
        reason = nb_strdup("no worker: scriptFile must name a .so built against include/nimbus/function.h, "
                           "or host.json must configure customHandler");
        goto cleanup;
    }

cleanup:
    json_decref(root);
    free(path);
    return reason;
}

/* host.json "functions": the names to load, when listed. */
static bool listed(struct loader *ld, const char *name)
{
    json_t *list = obj_get(ld->host, "functions");
    if (!json_is_array(list)) return true;
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
        if (json_is_string(v) && strcasecmp(json_string_value(v), name) == 0) return true;
    return false;
}

static int by_name(const void *a, const void *b)
{
    const struct nb_function *x = a, *y = b;
    int c = strcasecmp(x->name, y->name);
    return c ? c : strcmp(x->name, y->name);
}

static void load_functions(struct loader *ld)
{
    struct nb_app *app = ld->app;
    DIR *d = opendir(app->root);
    if (!d) {
        problem(app, "%s: cannot list the app folder: %s", app->root, strerror(errno));
        return;
    }
    size_t cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') continue;
        char *dir = path_join(app->root, de->d_name);
        char *json = path_join(dir, "function.json");
        bool candidate = is_dir(dir) && access(json, F_OK) == 0;
        free(json);
        free(dir);
        if (!candidate || !listed(ld, de->d_name)) continue;

        struct nb_function fn;
        memset(&fn, 0, sizeof fn);
        char *reason = parse_function(app, de->d_name, &fn);
        if (reason) {
            problem(app, "%s/function.json: %s", de->d_name, reason);
            free(reason);
            function_cleanup(&fn);
            continue;
        }
        if (app->nfunctions == cap) {
            cap = cap ? cap * 2 : 8;
            app->functions = nb_realloc(app->functions, cap * sizeof *app->functions);
        }
        app->functions[app->nfunctions++] = fn;
    }
    closedir(d);

    if (app->nfunctions > 1) qsort(app->functions, app->nfunctions, sizeof *app->functions, by_name);
    /* Names are case-insensitive in Azure; a case-sensitive file system can
     * still hold "Foo" and "foo", so keep the first and report the other. */
    size_t w = 0;
    for (size_t r = 0; r < app->nfunctions; r++) {
        if (w && strcasecmp(app->functions[w - 1].name, app->functions[r].name) == 0) {
            problem(app, "%s/function.json: function name '%s' duplicates '%s' (names are case-insensitive)",
                    app->functions[r].name, app->functions[r].name, app->functions[w - 1].name);
            function_cleanup(&app->functions[r]);
            continue;
        }
        app->functions[w++] = app->functions[r];
    }
    app->nfunctions = w;
}

/* ---- entry point -------------------------------------------------------- */

enum nb_err nb_app_load(const char *dir, struct nb_app **out, char **err)
{
    enum nb_err rc = NB_OK;
    struct loader ld = {0};
    char *msg = NULL;
    *out = NULL;
    if (err) *err = NULL;

    char *root = dir ? realpath(dir, NULL) : NULL;
    if (!root || !is_dir(root)) {
        msg = format("%s: %s", dir ? dir : "(null)", root ? "not a directory" : strerror(errno));
        free(root);
        rc = NB_ERR_NOT_FOUND;
        goto cleanup;
    }

    struct nb_app *app = ld.app = nb_calloc(1, sizeof *app);
    app->root = nb_strdup(root);
    free(root);
    app->route_prefix = nb_strdup("api");
    app->function_timeout_ms = DEFAULT_FUNCTION_TIMEOUT_MS;
    app->queues = (struct nb_queues_config){
        .batch_size = 16,
        .new_batch_threshold = 8,
        .max_polling_interval_ms = 2000,
        .visibility_timeout_ms = 0,
        .max_dequeue_count = 5,
        .base64 = true,
    };
    app->custom.working_dir = nb_strdup(app->root);

    /* Settings first: host.json values may be overridden by them and the
     * custom-handler arguments reference them. */
    load_local_settings(app);
    rc = load_host(&ld, &msg);
    if (rc) goto cleanup;
    load_functions(&ld);

    *out = ld.app;
    ld.app = NULL;
cleanup:
    json_decref(ld.host);
    nb_app_free(ld.app);
    if (err) *err = msg;
    else free(msg);
    return rc;
}
