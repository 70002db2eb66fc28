/* A function app as loaded from its folder, the way the Azure Functions host
 * reads it: host.json (version 2.0), local.settings.json, and one folder per
 * function holding its function.json. Loading never fails because of one
 * broken function: that function is left out and the reason is kept in
 * app->problems ("<file>: <reason>") for start-up to print. `%SETTING%`
 * references in binding strings are resolved against the app settings at
 * load time. An nb_app is immutable after loading and owns all its memory. */
#ifndef NB_HOST_APP_H
#define NB_HOST_APP_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "core/err.h"

enum nb_binding_type {
    NB_BIND_OTHER,        /* a type we do not know: kept, ignored */
    NB_BIND_HTTP_TRIGGER, /* httpTrigger */
    NB_BIND_HTTP,         /* http (output) */
    NB_BIND_QUEUE_TRIGGER,
    NB_BIND_QUEUE,        /* queue (output) */
    NB_BIND_TIMER_TRIGGER,
    NB_BIND_TABLE,        /* table, in or out */
};

enum nb_auth_level { NB_AUTH_ANONYMOUS, NB_AUTH_FUNCTION, NB_AUTH_ADMIN };

/* HTTP method set of an httpTrigger, as a bit mask; 0 means every method. */
enum {
    NB_METHOD_GET = 1 << 0,
    NB_METHOD_POST = 1 << 1,
    NB_METHOD_PUT = 1 << 2,
    NB_METHOD_DELETE = 1 << 3,
    NB_METHOD_PATCH = 1 << 4,
    NB_METHOD_HEAD = 1 << 5,
    NB_METHOD_OPTIONS = 1 << 6,
    NB_METHOD_TRACE = 1 << 7,
};
/* The bit of a method name (case-insensitive), 0 when unknown. */
unsigned nb_app_method_bit(const char *method);

struct nb_binding {
    enum nb_binding_type type;
    char *type_name;   /* as written in function.json */
    bool out;          /* direction "out" (triggers, inputs and "inout" are in) */
    char *name;        /* binding name; "$return" allowed for outputs */
    char *data_type;   /* "binary", "string", ... or NULL */
    /* httpTrigger */
    enum nb_auth_level auth_level;  /* default function */
    unsigned methods;               /* NB_METHOD_* mask, 0 = all */
    char *route;                    /* template without prefix; default = function name */
    /* queueTrigger / queue */
    char *queue_name;
    char *connection;               /* app-setting name, NULL = AzureWebJobsStorage */
    /* timerTrigger */
    char *schedule;                 /* NCRONTAB, %Setting% already resolved */
    bool run_on_startup;
    bool use_monitor;               /* default true */
    /* table */
    char *table_name;
    char *partition_key;            /* may hold {route} / {queueTrigger} expressions */
    char *row_key;
    char *filter;
    int take;                       /* 0 = no limit */
};

enum nb_worker_kind {
    NB_WORKER_NATIVE, /* scriptFile is a shared object (.so) */
    NB_WORKER_CUSTOM, /* served by the app's custom handler */
};

struct nb_function {
    char *name;           /* folder name */
    char *dir;            /* absolute path of the folder */
    char *script_file;    /* absolute path (native), NULL for custom handlers */
    char *entry_point;    /* symbol (native); default "run"; set for custom too */
    enum nb_worker_kind worker;
    bool disabled;        /* AzureWebJobs.<name>.Disabled (or AzureWebJobs_<name>_Disabled)
                           * is true/1, or function.json "disabled": true */
    struct nb_binding *bindings;
    size_t nbindings;
    size_t trigger;       /* index of the trigger binding */
};

struct nb_setting {
    char *name;
    char *value;
};

struct nb_queues_config {
    int batch_size;                  /* 16, 1..32 */
    int new_batch_threshold;         /* batch_size / 2 */
    int64_t max_polling_interval_ms; /* 2 s locally (as Core Tools) unless set */
    int64_t visibility_timeout_ms;   /* 0 */
    int max_dequeue_count;           /* 5 */
    bool base64;                     /* messageEncoding: base64 (default) or none */
};

struct nb_custom_handler_config {
    char *executable;     /* defaultExecutablePath; NULL when there is no customHandler */
    char **arguments;     /* %SETTING% expanded */
    size_t narguments;
    char *working_dir;    /* absolute; default = app root */
    bool forwarding;      /* enableForwardingHttpRequest */
};

struct nb_app {
    char *root;                  /* absolute path of the app folder */
    char *route_prefix;          /* "api" by default; "" allowed */
    int64_t function_timeout_ms; /* -1 = unbounded; default 5 min */
    struct nb_queues_config queues;
    struct nb_custom_handler_config custom;
    int local_http_port;         /* Host.LocalHttpPort, 0 when unset */
    char **cors_origins;         /* Host.CORS split on ',', "*" allowed */
    size_t ncors_origins;
    bool cors_credentials;
    struct nb_setting *settings; /* Values, in file order */
    size_t nsettings;
    struct nb_function *functions; /* sorted by name (case-insensitive) */
    size_t nfunctions;
    char **problems;             /* "<file>: <reason>" for each skipped function or bad file */
    size_t nproblems;
};

/* Load the app in `dir`. NB_ERR_NOT_FOUND when dir is not a directory;
 * NB_ERR_INVALID when host.json is unreadable or not version 2.0 (then
 * *err is a heap message). A missing host.json or local.settings.json is
 * allowed (defaults). Broken functions go to app->problems, not to errors.
 *
 * Details (err may be NULL; on any failure *out is NULL and *err, if asked
 * for, is a heap message the caller frees, also for NB_ERR_NOT_FOUND):
 *  - host.json values may be overridden as in Azure by a setting named
 *    AzureFunctionsJobHost__path__to__key (an app setting from
 *    local.settings.json, then the process environment, ignoring case);
 *    array elements by ...__arguments__0. Key names match ignoring case.
 *  - a bad host.json value (batchSize 64, a malformed TimeSpan, ...) keeps
 *    its default and adds a "host.json: ..." problem; so does a broken
 *    local.settings.json ("local.settings.json: ...").
 *  - TimeSpans are "[d.]hh:mm[:ss[.fffffff]]"; queue intervals may also be
 *    a number of milliseconds; functionTimeout "-1" is unbounded (-1),
 *    otherwise it must be at least 00:00:01 (as Azure checks).
 *  - customHandler (or legacy httpWorker): the command is executable +
 *    arguments, then defaultWorkerPath and workerArguments (Azure's order);
 *    defaultWorkerPath alone serves as the executable. A relative
 *    executable with a '/' is resolved against working_dir, a bare name
 *    only when that file exists there (else it is left for PATH).
 *  - a function folder (not starting with '.', holding function.json) is
 *    skipped with a "<name>/function.json: <reason>" problem when it fails
 *    validation; host.json "functions": [names] limits which are loaded. */
enum nb_err nb_app_load(const char *dir, struct nb_app **out, char **err);
void nb_app_free(struct nb_app *app);

/* The value of an app setting; NULL when unset. Looks in the
 * local.settings.json Values (exact name, then ignoring case), then in the
 * process environment (getenv), as Azure reads app settings from there. */
const char *nb_app_setting(const struct nb_app *app, const char *name);
/* `in` with every %NAME% replaced by the setting's value (heap). NULL when a
 * referenced setting is missing; *missing (if given) then names it (heap).
 * Settings are looked up as nb_app_setting. A '%' with no closing '%' stays
 * literal; "%%" is no escape (it names the empty setting, which is missing).
 * app may be NULL (environment only). */
char *nb_app_expand(const struct nb_app *app, const char *in, char **missing);
/* The function named `name` (case-insensitive), NULL when none. */
const struct nb_function *nb_app_function(const struct nb_app *app, const char *name);
/* &fn->bindings[fn->trigger]. */
const struct nb_binding *nb_function_trigger(const struct nb_function *fn);
/* The binding named `name` (case-insensitive), NULL when none. */
const struct nb_binding *nb_function_binding(const struct nb_function *fn, const char *name);
const char *nb_auth_level_name(enum nb_auth_level level);

#endif
