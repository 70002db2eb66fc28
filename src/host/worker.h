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
    size_t max_workers;       /* processes kept under steady load */
    /* Hard cap (0: max_workers). When an invocation has waited 100 ms with
     * max_workers busy, the pool grows past max_workers, up to this, so a
     * function calling another function through the host cannot deadlock a
     * full pool; the extra workers retire when nobody waits. */
    size_t burst_workers;
    int64_t timeout_ms;       /* per invocation; < 0 unbounded */
    char *const *env;         /* "NAME=value" for the workers, NULL-terminated */
    const struct nb_log *log;
};

/* Start the pool: copies cfg (exe, env; env NULL means this process's
 * environment), starts the spawner thread (which spawns every worker, see
 * worker.c) and waits until min_workers are up. min_workers above
 * max_workers is lowered to it. Errors:
 *   NB_ERR_INVALID   cfg or cfg->exe NULL, or max_workers 0;
 *   NB_ERR_NOT_FOUND exe is not an executable file;
 *   NB_ERR_IO        min_workers > 0 and not one worker started (the
 *                    reason is logged: exec failed, or the program is not a
 *                    nimbus that answers `worker --fd N`).
 * *out is set only on NB_OK. */
enum nb_err nb_worker_pool_start(const struct nb_worker_pool_config *cfg,
                                 struct nb_worker_pool **out);
/* Run inv->fn (its script_file and entry_point) in a worker; fill res
 * (initialised by the caller with nb_inv_result_init). Returns NB_OK when an
 * answer (success or failure) is in res; NB_ERR_STOPPED while stopping.
 * Thread-safe; blocks while all max_workers are busy. The answers in res:
 *   - the function's reply (has_http/status/headers/body only if it called
 *     set_status, set_header, write or output on the http binding; outputs
 *     with their declared binding names; logs as "[level] text");
 *   - ok false, "function returned N" for a nonzero return;
 *   - ok false with the dlopen/dlsym message when it cannot be loaded;
 *   - ok false, crashed, "worker crashed: killed by signal 11
 *     (Segmentation fault)" / "worker crashed: exited with status 3";
 *   - ok false, crashed, "function timed out after N ms";
 *   - ok false, "cannot start a native worker: ..." when no worker can be
 *     started at all.
 * Crashes and timeouts are also logged (nb_log_error). NB_ERR_INVALID when
 * inv or inv->fn is NULL. */
enum nb_err nb_worker_invoke(struct nb_worker_pool *pool, const struct nb_invocation *inv,
                             struct nb_inv_result *res);
/* Shutdown, first step: kill busy workers so the invocations in flight
 * return at once (crashed / NB_ERR_STOPPED) and refuse new ones. The pool
 * stays valid until nb_worker_pool_stop. NULL is a no-op. */
void nb_worker_pool_cancel(struct nb_worker_pool *pool);
/* Kill every worker and free the pool. NULL is a no-op. Invocations in
 * flight, or waiting for a worker, are cut short (busy workers are killed)
 * and return NB_ERR_STOPPED; stop waits until they have returned. Calls
 * that begin after stop returned are the caller's bug (the pool is freed).
 * Every worker process is reaped. */
void nb_worker_pool_stop(struct nb_worker_pool *pool);

/* Entry point of `nimbus worker --fd N [--ppid PID]` (argv[0] is "worker"):
 * serve invocations on fd until EOF. Returns the exit status: 0 at EOF, 1
 * on a broken connection or when the parent PID is no longer PID, 2 on bad
 * arguments. */
int nb_worker_main(int argc, char **argv);

#endif
