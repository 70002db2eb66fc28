/* Bindings other than triggers: binding expressions ({id}, {Query.code},
 * {QueueTrigger}, properties of a JSON message or body), table input,
 * and the queue and table outputs. They act on the store directly, in
 * process, as the storage services' own writes do: a queue output wakes
 * the queue-trigger pollers. Extensions of Azure's behaviour, documented
 * in docs/functions.md: a table output object carrying
 * "@nimbus.operation": "delete" deletes the entity with its keys, and a
 * queue output may carry an initial visibility delay (native functions). */
#ifndef NB_HOST_BINDINGS_H
#define NB_HOST_BINDINGS_H
#include <jansson.h>
#include "core/clock.h"
#include "core/notify.h"
#include "host/app.h"
#include "host/invocation.h"

struct nb_store;

struct nb_bind_env {
    const struct nb_app *app;
    struct nb_store *store;
    struct nb_clock *clock;
    struct nb_notify *wake;
    /* account named by a binding's connection; NULL when not ours */
    const char *(*account_of)(void *ctx, const struct nb_binding *b);
    void *ctx;
};

/* The binding data of an invocation as a JSON object (caller decrefs). */
json_t *nb_bind_data(const struct nb_invocation *inv);
/* `tmpl` with every {expr} replaced from data (dotted paths, names matched
 * case-insensitively). NULL when an expression has no value; *missing
 * (heap) then names it. */
char *nb_bind_expand(const json_t *data, const char *tmpl, char **missing);

/* Resolve the function's table inputs. On success *inputs is a heap array
 * of *ninputs {name, JSON text} (an absent entity is left out); free with
 * nb_bind_inputs_free. Errors are written to res (nb_inv_result_fail). */
enum nb_err nb_bind_inputs(const struct nb_bind_env *env, const struct nb_function *fn,
                           const json_t *data, struct nb_kv **inputs, size_t *ninputs,
                           struct nb_inv_result *res);
void nb_bind_inputs_free(struct nb_kv *inputs, size_t n);

/* Apply res->outputs (queue, table; "$return" maps to the binding so named).
 * On failure res is marked failed with the reason. */
enum nb_err nb_bind_outputs(const struct nb_bind_env *env, const struct nb_function *fn,
                            const json_t *data, struct nb_inv_result *res);

#endif
