/* One function invocation: what the host hands to a worker (native or
 * custom handler) and what the worker hands back. The request side only
 * borrows (it lives for the call); the result side owns heap memory and is
 * released with nb_inv_result_cleanup. Workers fill the result; the host
 * applies it (HTTP response, output bindings). */
#ifndef NB_HOST_INVOCATION_H
#define NB_HOST_INVOCATION_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "core/buf.h"
#include "http/request.h"
#include "host/app.h"

enum nb_trigger_kind {
    NB_TRIGGER_HTTP,
    NB_TRIGGER_QUEUE,
    NB_TRIGGER_TIMER,
    NB_TRIGGER_MANUAL, /* POST /admin/functions/{fn} */
};

/* The trigger's name as functions see it: "httpTrigger", "queueTrigger",
 * "timerTrigger" or "manual". Static. */
const char *nb_trigger_kind_name(enum nb_trigger_kind kind);

struct nb_invocation {
    const struct nb_function *fn;
    char id[37];                 /* invocation id (GUID) */
    enum nb_trigger_kind kind;
    /* HTTP trigger (kind == NB_TRIGGER_HTTP) */
    const char *method;
    const char *url;             /* absolute: http://host:port/path?query */
    const char *path;            /* raw path as received */
    const char *raw_query;       /* after '?', "" when none */
    const struct nb_kv *params;  /* route values, decoded */
    size_t nparams;
    const struct nb_kv *query;   /* decoded */
    size_t nquery;
    const struct nb_kv *headers;
    size_t nheaders;
    const char *body;
    size_t body_len;
    /* Other triggers: the payload (queue message text after decoding, timer
     * info JSON, manual "input" string) and the trigger metadata as a JSON
     * object text (queue: DequeueCount, Id, InsertionTime, ExpirationTime,
     * NextVisibleTime, PopReceipt; always: sys {MethodName, UtcNow, RandGuid}). */
    const char *trigger_data;
    size_t trigger_len;
    const char *metadata_json;   /* never NULL: "{}" at least */
    /* Input bindings (table): name -> JSON text. */
    const struct nb_kv *inputs;
    size_t ninputs;
};

/* One value for an output binding: a queue message text, a table entity as
 * JSON object text, or a "$return" value (JSON text). */
struct nb_inv_output {
    char *binding;
    char *value;
    size_t len;
    int64_t visibility_ms; /* queue outputs: initial invisibility (0 = none) */
};

struct nb_inv_header {
    char *name;
    char *value;
};

struct nb_inv_result {
    bool ok;                 /* false: the function failed (error says why) */
    char *error;             /* heap, NULL when ok */
    bool crashed;            /* the worker died or was killed (timeout) */
    /* The HTTP response (http output binding, or $return of type http). */
    bool has_http;
    int status;              /* 200 when the function set none */
    struct nb_inv_header *headers;
    size_t nheaders;
    struct nb_buf body;      /* initialised by nb_inv_result_init */
    /* Other outputs, in the order the function produced them. */
    struct nb_inv_output *outputs;
    size_t noutputs;
    /* Log lines the function wrote (custom handler "Logs"; native logger). */
    char **logs;
    size_t nlogs;
};

void nb_inv_result_init(struct nb_inv_result *r);
void nb_inv_result_cleanup(struct nb_inv_result *r);
/* Append helpers (copy their arguments). */
void nb_inv_result_add_header(struct nb_inv_result *r, const char *name, const char *value);
void nb_inv_result_add_output(struct nb_inv_result *r, const char *binding, const char *value,
                              size_t len);
/* The output just added becomes visible after visibility_ms (queue only). */
void nb_inv_result_delay_last(struct nb_inv_result *r, int64_t visibility_ms);
void nb_inv_result_add_log(struct nb_inv_result *r, const char *line);
/* Mark failed with a formatted reason (replaces an earlier one). */
void nb_inv_result_fail(struct nb_inv_result *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
