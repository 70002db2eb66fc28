/* Result bookkeeping for invocations (see invocation.h). */
#include "host/invocation.h"
#include "core/mem.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A function's HTTP body may be as large as a request (100 MB). */
#define NB_INV_BODY_MAX (100u * 1024 * 1024)

const char *nb_trigger_kind_name(enum nb_trigger_kind kind)
{
    switch (kind) {
    case NB_TRIGGER_HTTP: return "httpTrigger";
    case NB_TRIGGER_QUEUE: return "queueTrigger";
    case NB_TRIGGER_TIMER: return "timerTrigger";
    case NB_TRIGGER_MANUAL: return "manual";
    }
    return "manual";
}

void nb_inv_result_init(struct nb_inv_result *r)
{
    memset(r, 0, sizeof(*r));
    r->ok = true;
    r->status = 200;
    nb_buf_init(&r->body, NB_INV_BODY_MAX);
}

void nb_inv_result_cleanup(struct nb_inv_result *r)
{
    free(r->error);
    for (size_t i = 0; i < r->nheaders; i++) {
        free(r->headers[i].name);
        free(r->headers[i].value);
    }
    free(r->headers);
    nb_buf_cleanup(&r->body);
    for (size_t i = 0; i < r->noutputs; i++) {
        free(r->outputs[i].binding);
        free(r->outputs[i].value);
    }
    free(r->outputs);
    for (size_t i = 0; i < r->nlogs; i++) free(r->logs[i]);
    free(r->logs);
    memset(r, 0, sizeof(*r));
}

void nb_inv_result_add_header(struct nb_inv_result *r, const char *name, const char *value)
{
    r->headers = nb_realloc(r->headers, (r->nheaders + 1) * sizeof(*r->headers));
    r->headers[r->nheaders].name = nb_strdup(name);
    r->headers[r->nheaders].value = nb_strdup(value);
    r->nheaders++;
}

void nb_inv_result_add_output(struct nb_inv_result *r, const char *binding, const char *value,
                              size_t len)
{
    r->outputs = nb_realloc(r->outputs, (r->noutputs + 1) * sizeof(*r->outputs));
    struct nb_inv_output *o = &r->outputs[r->noutputs++];
    o->binding = nb_strdup(binding);
    o->value = nb_malloc(len + 1);
    memcpy(o->value, value, len);
    o->value[len] = '\0';
    o->len = len;
    o->visibility_ms = 0;
}

void nb_inv_result_delay_last(struct nb_inv_result *r, int64_t visibility_ms)
{
    if (r->noutputs) r->outputs[r->noutputs - 1].visibility_ms = visibility_ms;
}

void nb_inv_result_add_log(struct nb_inv_result *r, const char *line)
{
    r->logs = nb_realloc(r->logs, (r->nlogs + 1) * sizeof(*r->logs));
    r->logs[r->nlogs++] = nb_strdup(line);
}

void nb_inv_result_fail(struct nb_inv_result *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = NULL;
    if (vasprintf(&msg, fmt, ap) < 0) msg = NULL;
    va_end(ap);
    free(r->error);
    r->error = msg ? msg : nb_strdup("function failed");
    r->ok = false;
}
