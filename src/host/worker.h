/* The native worker pool: supervised worker processes that load native
 * functions (shared objects built against include/nimbus/function.h) and
 * run one invocation at a time each.
 *
 * A worker is this same executable re-executed as `nimbus worker --fd N`
 * (nb_worker_main), talking to the host over a socketpair with length-
 * prefixed frames (host/ipc.h). Workers start on demand up to max_workers
 * and are reused. When a worker dies during an invocation (crash, abort,
 * exit) or overruns timeout_ms (then it is killed with SIGKILL), that
 * invocation fails with result.crashed set and the worker is replaced; the
 * pool itself never stops serving. */
#ifndef NB_HOST_WORKER_H
#define NB_HOST_WORKER_H
#include <stddef.h>
#include <stdint.h>
#include "core/err.h"
#include "core/log.h"
#include "host/invocation.h"

struct nb_worker_pool;

struct nb_worker_pool_config {
    const char *exe;          /* path of the nimbus executable (e.g. /proc/self/exe resolved) */
    size_t min_workers;       /* started eagerly (may be 0) */
    size_t max_workers;       /* upper bound on processes */
    int64_t timeout_ms;       /* per invocation; < 0 unbounded */
    char *const *env;         /* "NAME=value" for the workers, NULL-terminated */
    const struct nb_log *log;
};

enum nb_err nb_worker_pool_start(const struct nb_worker_pool_config *cfg,
                                 struct nb_worker_pool **out);
/* Run inv->fn (its script_file and entry_point) in a worker; fill res
 * (initialised by the caller with nb_inv_result_init). Returns NB_OK when an
 * answer (success or failure) is in res; NB_ERR_STOPPED while stopping. */
enum nb_err nb_worker_invoke(struct nb_worker_pool *pool, const struct nb_invocation *inv,
                             struct nb_inv_result *res);
/* Kill every worker and free the pool. NULL is a no-op. */
void nb_worker_pool_stop(struct nb_worker_pool *pool);

/* Entry point of `nimbus worker --fd N`: serve invocations on fd until EOF. */
int nb_worker_main(int argc, char **argv);

#endif
