/* Native functions run inside the host process: the opt-in speed mode
 * (`nimbus start --native-in-process`). The same shared objects and the same
 * include/nimbus/function.h API as the worker pool, minus the isolation: a
 * function that crashes takes the host down, and functionTimeout cannot be
 * enforced. Invocations run concurrently on the caller's thread, so
 * functions must be thread-safe. */
#ifndef NB_HOST_INPROC_H
#define NB_HOST_INPROC_H
#include "core/err.h"
#include "host/invocation.h"

struct nb_inproc;

/* env: the app settings as "NAME=value" (NULL-terminated), what
 * nimbus_setting() answers from; borrowed, must outlive the runner. */
struct nb_inproc *nb_inproc_new(char *const *env);
/* Run inv->fn; res is initialised by the caller. NB_OK when res holds the
 * answer (a function that cannot be loaded is a failed invocation). */
enum nb_err nb_inproc_invoke(struct nb_inproc *ip, const struct nb_invocation *inv,
                             struct nb_inv_result *res);
/* dlclose everything and free. NULL is a no-op. */
void nb_inproc_free(struct nb_inproc *ip);

#endif
