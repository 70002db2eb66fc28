/* Non-HTTP triggers: queue pollers and timers. Both turn an event into an
 * nb_invocation and hand it to the host's run callback, which resolves
 * input bindings, runs the function in its worker and applies the output
 * bindings; res->ok then says whether the whole invocation succeeded.
 *
 * Queue triggers (one poller thread per enabled queueTrigger function):
 * randomized exponential backoff from 100 ms up to maxPollingInterval,
 * reset on a hit and cut short by `wake` (a put on any queue by this host,
 * or the test clock moving); up to batchSize messages fetched per poll and
 * a new batch when in-flight <= newBatchThreshold; each message held
 * invisible for 10 min with the lease renewed while the function runs;
 * deleted on success, released with visibilityTimeout on failure, and
 * after maxDequeueCount attempts copied to <queue>-poison and deleted. A
 * message claimed more than maxDequeueCount times without a verdict (a host
 * died mid-run) goes to the poison queue without running again. The
 * invocation pool per function is batchSize + newBatchThreshold threads,
 * at most 32. A queue that does not exist yet is polled as an empty one.
 *
 * Timer triggers (one scheduler thread for all timerTrigger functions):
 * NCRONTAB schedules on the injected clock; runOnStartup; the schedule
 * status {Last, Next, LastUpdated} persisted in the store (kv namespace
 * "host.timers", key = function name) so a run missed while the host was
 * down is made on start with IsPastDue = true. Only useMonitor timers read
 * or write that status. A clock that jumps over several occurrences yields
 * one run; a scheduled run is IsPastDue when it starts more than 1 s after
 * its occurrence. Timer functions run one at a time on the scheduler
 * thread and are never retried. A schedule that does not parse is logged
 * and that function is not started. */
#ifndef NB_HOST_TRIGGERS_H
#define NB_HOST_TRIGGERS_H
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/notify.h"
#include "host/app.h"
#include "host/invocation.h"

struct nb_store;

/* Run one invocation to completion. res is initialised by the caller. */
typedef void (*nb_trigger_run_fn)(void *ctx, const struct nb_invocation *inv,
                                  struct nb_inv_result *res);

struct nb_triggers_config {
    const struct nb_app *app;
    struct nb_store *store;
    struct nb_clock *clock;
    struct nb_notify *wake;
    /* The storage account a binding's `connection` names, NULL when it does
     * not name one of this server's accounts (the function is then not
     * started, and that is logged). */
    const char *(*account_of)(void *ctx, const struct nb_binding *b);
    nb_trigger_run_fn run;
    void *ctx;                 /* for run and account_of */
    const struct nb_log *log;
};

struct nb_triggers;

/* Start pollers and timers for every enabled non-HTTP function (runOnStartup
 * and past-due timers fire right after start, on the scheduler thread).
 * `run` is called from several threads at once. *out is freed by stop.
 * Errors: NB_ERR_INVALID when app, store, clock, run or account_of is
 * missing; NB_ERR_NOMEM when a thread cannot be created (nothing is left
 * running). cfg->wake may be NULL (then only the backoff paces polls). */
enum nb_err nb_triggers_start(const struct nb_triggers_config *cfg, struct nb_triggers **out);
/* Stop polling and scheduling (no new invocations); running ones go on.
 * NULL is a no-op. */
void nb_triggers_halt(struct nb_triggers *t);
/* Invocations running right now (0 for NULL). */
int nb_triggers_running(struct nb_triggers *t);
/* Stop polling, wait for running invocations to finish, free. NULL no-op.
 * Messages fetched but not yet started are handed back (visible at once). */
void nb_triggers_stop(struct nb_triggers *t);

#endif
