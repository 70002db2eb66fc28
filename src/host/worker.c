/* The native worker pool, host side (see worker.h): spawning worker
 * processes, lending them to invocations one at a time, and replacing the
 * ones that crash or overrun their timeout.
 *
 * Invariants, all under pool->mu: every live worker is in pool->all, and is
 * either idle (in pool->idle) or busy (lent to exactly one invoking thread,
 * which alone reads and writes its socket). A worker leaves pool->all before
 * its process is reaped, so a pid this pool signals is never a recycled one.
 * Every process is spawned by one long-lived spawner thread, because the
 * workers' PR_SET_PDEATHSIG fires when the *thread* that forked them exits;
 * invoking threads (libmicrohttpd's) may come and go. No SIGCHLD handler:
 * each worker is reaped by waitpid on its own pid when it is discarded. */
#include "host/worker.h"
#include "host/ipc.h"
#include "core/clock.h"
#include "core/mem.h"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define WORKER_FD 3                  /* the socket's number inside a worker */
#define READY_TIMEOUT_US 10000000    /* a new worker must say hello within 10 s */
#define BACKOFF_MIN_MS 1000          /* after a failed spawn, before refilling min; */
#define BACKOFF_MAX_MS 30000         /* doubling up to this while spawns keep failing */
#define SEND_ATTEMPTS 3              /* workers tried when idle ones turn out dead */
#define STARVE_US 100000             /* a waiter this old may grow the pool past max */

struct worker {
    pid_t pid;
    int fd;
    bool busy;
    struct nb_ipc_writer out;
    struct nb_ipc_rbuf in;
};

/* An invocation waiting for a worker. Workers are handed to waiters in
 * arrival order rather than put back for whoever grabs the lock first, so
 * no caller starves under load and no thread wakes up for nothing. */
struct waiter {
    pthread_cond_t cv;
    struct worker *w;    /* handed over by hand_over() */
    bool recheck;        /* woken to look at the pool again (stopping) */
    bool failed;         /* dequeued by the spawner: no worker could be started */
    int64_t since_us;    /* when it started waiting (monotonic) */
    struct waiter *next;
};

struct nb_worker_pool {
    char *exe;
    char **env;
    size_t min_workers, max_workers;
    size_t burst_workers;    /* hard cap; the pool passes max_workers only for starving waiters */
    int64_t timeout_ms;
    const struct nb_log *log;
    struct nb_log default_log;

    pthread_mutex_t mu;
    pthread_cond_t state_cv; /* a spawn ended; a caller left while stopping */
    pthread_cond_t spawn_cv; /* the spawner has work */
    struct worker **all;     /* live workers; capacity burst_workers */
    size_t nall;
    struct worker **idle;    /* a stack: the most recently used worker is reused first */
    size_t nidle;            /* > 0 only while no one waits */
    struct waiter *wait_head, *wait_tail;
    size_t nwaiting;
    size_t ncallers;         /* threads inside nb_worker_invoke; stop waits for 0 */
    size_t nspawning;
    uint64_t spawn_failures; /* count of failed spawns */
    char *spawn_error;       /* the last failure, heap */
    bool stopping;
    pthread_t spawner;
};

static void worker_free(struct worker *w)
{
    if (!w) return;
    if (w->fd >= 0) close(w->fd);
    nb_ipc_writer_cleanup(&w->out);
    nb_ipc_rbuf_cleanup(&w->in);
    free(w);
}

/* "killed by signal 11 (Segmentation fault)" / "exited with status 3". */
static char *describe_status(int st)
{
    if (WIFSIGNALED(st)) {
        int sig = WTERMSIG(st);
        const char *name = strsignal(sig);
        return nb_asprintf("killed by signal %d (%s)", sig, name ? name : "unknown");
    }
    if (WIFEXITED(st)) return nb_asprintf("exited with status %d", WEXITSTATUS(st));
    return nb_strdup("ended");
}

/* SIGKILL and reap; the exit status (which keeps the original cause when
 * the process was already dying). */
static int kill_and_reap(pid_t pid)
{
    int st = 0;
    kill(pid, SIGKILL);
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR) {
            st = 0;
            break;
        }
    }
    return st;
}

/* Start one worker process and wait for its hello. NULL with *err (heap). */
static struct worker *spawn_worker(struct nb_worker_pool *pool, char **err)
{
    int sv[2] = { -1, -1 };
    pid_t pid = -1;
    struct worker *w = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    bool fa_ok = false, attr_ok = false;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        *err = nb_asprintf("socketpair: %s", strerror(errno));
        goto cleanup;
    }
    if (posix_spawn_file_actions_init(&fa) != 0) {
        *err = nb_strdup("posix_spawn_file_actions_init failed");
        goto cleanup;
    }
    fa_ok = true;
    /* dup2 onto WORKER_FD clears close-on-exec, even when sv[1] already is
     * WORKER_FD (glibc >= 2.29, Austin Group issue 411). */
    posix_spawn_file_actions_adddup2(&fa, sv[1], WORKER_FD);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    /* Nothing else of the host's leaks in, close-on-exec or not. */
    posix_spawn_file_actions_addclosefrom_np(&fa, WORKER_FD + 1);
#endif
    if (posix_spawnattr_init(&attr) != 0) {
        *err = nb_strdup("posix_spawnattr_init failed");
        goto cleanup;
    }
    attr_ok = true;
    /* The host blocks SIGTERM/SIGINT for sigwait and may ignore SIGPIPE;
     * a worker starts with a clean signal state instead. */
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

    char fdarg[16], ppidarg[24];
    snprintf(fdarg, sizeof(fdarg), "%d", WORKER_FD);
    snprintf(ppidarg, sizeof(ppidarg), "%ld", (long)getpid());
    char *argv[] = { pool->exe, "worker", "--fd", fdarg, "--ppid", ppidarg, NULL };
    int src = posix_spawn(&pid, pool->exe, &fa, &attr, argv, pool->env);
    if (src != 0) {
        pid = -1;
        *err = nb_asprintf("cannot start %s: %s", pool->exe, strerror(src));
        goto cleanup;
    }
    close(sv[1]);
    sv[1] = -1;

    w = nb_calloc(1, sizeof(*w));
    w->pid = pid;
    w->fd = sv[0];
    sv[0] = -1;
    nb_ipc_writer_init(&w->out);
    nb_ipc_rbuf_init(&w->in);

    struct nb_str hello;
    enum nb_err rc = nb_ipc_recv_frame(w->fd, &w->in, nb_clock_mono_us() + READY_TIMEOUT_US,
                                       &hello);
    if (rc == NB_OK) {
        struct nb_ipc_reader r;
        uint32_t version = 0, wpid = 0;
        nb_ipc_reader_init(&r, hello.ptr, hello.len);
        if (nb_ipc_get_u32(&r, &version) || nb_ipc_get_u32(&r, &wpid) ||
            version != NB_IPC_VERSION || (pid_t)wpid != pid) {
            *err = nb_asprintf("worker %ld speaks another protocol (version %u)", (long)pid,
                               (unsigned)version);
            goto fail;
        }
        goto cleanup;
    }
    if (rc == NB_IPC_TIMEOUT) {
        *err = nb_asprintf("worker %ld did not become ready within %d s", (long)pid,
                           READY_TIMEOUT_US / 1000000);
    } else {
        int st = kill_and_reap(pid);
        pid = -1;
        char *why = describe_status(st);
        *err = nb_asprintf("worker %s before it was ready (is %s a nimbus binary?)", why,
                           pool->exe);
        free(why);
    }

fail:
    if (pid > 0) kill_and_reap(pid);
    worker_free(w);
    w = NULL;

cleanup:
    if (fa_ok) posix_spawn_file_actions_destroy(&fa);
    if (attr_ok) posix_spawnattr_destroy(&attr);
    if (sv[0] >= 0) close(sv[0]);
    if (sv[1] >= 0) close(sv[1]);
    return w;
}

static void add_live(struct nb_worker_pool *pool, struct worker *w)
{
    pool->all[pool->nall++] = w;
}

static void remove_live(struct nb_worker_pool *pool, struct worker *w)
{
    for (size_t i = 0; i < pool->nall; i++) {
        if (pool->all[i] == w) {
            pool->all[i] = pool->all[--pool->nall];
            return;
        }
    }
}

/* cv must run on CLOCK_MONOTONIC (see nb_worker_pool_start), so a wall
 * clock step cannot stretch the starvation or back-off waits. */
static void timed_wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(cv, mu, &ts);
}

/* Give a worker that is free to the longest waiting invocation, or make it
 * idle. Under pool->mu. */
static void hand_over(struct nb_worker_pool *pool, struct worker *w)
{
    struct waiter *q = pool->wait_head;
    if (!q) {
        w->busy = false;
        pool->idle[pool->nidle++] = w;
        return;
    }
    pool->wait_head = q->next;
    if (!pool->wait_head) pool->wait_tail = NULL;
    pool->nwaiting--;
    w->busy = true;
    q->w = w;
    pthread_cond_signal(&q->cv);
}

/* Wake every waiter to look at the pool again. Under pool->mu. */
static void recheck_all(struct nb_worker_pool *pool)
{
    for (struct waiter *q = pool->wait_head; q; q = q->next) {
        q->recheck = true;
        pthread_cond_signal(&q->cv);
    }
}

/* A spawn failed and no worker is alive to serve anyone: every waiter gives
 * up (with pool->spawn_error) instead of waiting for a retry. Under mu. */
static void fail_all(struct nb_worker_pool *pool)
{
    struct waiter *q = pool->wait_head;
    pool->wait_head = pool->wait_tail = NULL;
    pool->nwaiting = 0;
    while (q) {
        struct waiter *next = q->next;
        q->failed = true;
        pthread_cond_signal(&q->cv);
        q = next;
    }
}

/* The spawner thread: keeps min_workers alive and starts workers for the
 * invocations waiting, up to max_workers (burst_workers for starving ones). */
static void *spawner_main(void *arg)
{
    struct nb_worker_pool *pool = arg;
    int64_t backoff_until_us = 0, backoff_ms = BACKOFF_MIN_MS;
    pthread_mutex_lock(&pool->mu);
    while (!pool->stopping) {
        size_t have = pool->nall + pool->nspawning;
        /* Past max_workers only for a waiter that has starved: a function
         * that calls another function through the host holds its worker
         * while the callee waits, so a full pool of callers would otherwise
         * deadlock until their own timeouts. */
        int64_t waited = pool->wait_head ? nb_clock_mono_us() - pool->wait_head->since_us : 0;
        bool starving = pool->wait_head && have < pool->burst_workers && waited >= STARVE_US;
        bool demand = pool->nwaiting > pool->nspawning && (have < pool->max_workers || starving);
        bool may_starve = pool->nwaiting > pool->nspawning && !demand &&
                          have < pool->burst_workers;
        bool refill = have < pool->min_workers;
        bool backoff = nb_clock_mono_us() < backoff_until_us;
        /* After a failure, retry at once only for callers that nothing else
         * can serve (no live worker); they are failed, not requeued, if the
         * retry fails too, so a broken executable cannot spin this loop. */
        bool go = (demand && (pool->nall == 0 || !backoff)) || (refill && !backoff);
        if (!go) {
            if ((demand || refill) && backoff)
                timed_wait_ms(&pool->spawn_cv, &pool->mu,
                              (backoff_until_us - nb_clock_mono_us()) / 1000 + 1);
            else if (may_starve)
                timed_wait_ms(&pool->spawn_cv, &pool->mu, (STARVE_US - waited) / 1000 + 1);
            else
                pthread_cond_wait(&pool->spawn_cv, &pool->mu);
            continue;
        }
        pool->nspawning++;
        pthread_mutex_unlock(&pool->mu);

        char *err = NULL;
        struct worker *w = spawn_worker(pool, &err);

        pthread_mutex_lock(&pool->mu);
        pool->nspawning--;
        if (w) {
            backoff_ms = BACKOFF_MIN_MS;
            add_live(pool, w);
            hand_over(pool, w);
        } else {
            nb_log_error(pool->log, "native worker: %s", err);
            free(pool->spawn_error);
            pool->spawn_error = err;
            pool->spawn_failures++;
            backoff_until_us = nb_clock_mono_us() + backoff_ms * 1000;
            backoff_ms = backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff_ms * 2;
            if (pool->nall == 0) fail_all(pool);
        }
        pthread_cond_broadcast(&pool->state_cv);
    }
    pthread_mutex_unlock(&pool->mu);
    return NULL;
}

enum nb_err nb_worker_pool_start(const struct nb_worker_pool_config *cfg,
                                 struct nb_worker_pool **out)
{
    *out = NULL;
    if (!cfg || !cfg->exe || cfg->max_workers == 0) return NB_ERR_INVALID;
    if (access(cfg->exe, X_OK) != 0) return NB_ERR_NOT_FOUND;

    struct nb_worker_pool *pool = nb_calloc(1, sizeof(*pool));
    pool->exe = nb_strdup(cfg->exe);
    char *const *env = cfg->env ? cfg->env : environ;
    size_t n = 0;
    while (env[n]) n++;
    pool->env = nb_calloc(n + 1, sizeof(*pool->env));
    for (size_t i = 0; i < n; i++) pool->env[i] = nb_strdup(env[i]);
    pool->max_workers = cfg->max_workers;
    pool->burst_workers = cfg->burst_workers > cfg->max_workers ? cfg->burst_workers
                                                                : cfg->max_workers;
    pool->min_workers = cfg->min_workers < cfg->max_workers ? cfg->min_workers : cfg->max_workers;
    pool->timeout_ms = cfg->timeout_ms;
    pool->log = cfg->log ? cfg->log : &pool->default_log;
    pool->all = nb_calloc(pool->burst_workers, sizeof(*pool->all));
    pool->idle = nb_calloc(pool->burst_workers, sizeof(*pool->idle));
    pthread_mutex_init(&pool->mu, NULL);
    pthread_condattr_t mono;
    pthread_condattr_init(&mono);
    pthread_condattr_setclock(&mono, CLOCK_MONOTONIC);
    pthread_cond_init(&pool->state_cv, &mono);
    pthread_cond_init(&pool->spawn_cv, &mono);
    pthread_condattr_destroy(&mono);
    if (pthread_create(&pool->spawner, NULL, spawner_main, pool) != 0) {
        pthread_cond_destroy(&pool->spawn_cv);
        pthread_cond_destroy(&pool->state_cv);
        pthread_mutex_destroy(&pool->mu);
        free(pool->idle);
        free(pool->all);
        for (size_t i = 0; i < n; i++) free(pool->env[i]);
        free(pool->env);
        free(pool->exe);
        free(pool);
        return NB_ERR_IO;
    }

    /* Wait for the eager workers (until all are up or one spawn failed), so
     * a broken executable fails start-up rather than the first invocations,
     * and the first requests are fast. The spawner keeps refilling after a
     * failure that left some workers running. */
    enum nb_err rc = NB_OK;
    pthread_mutex_lock(&pool->mu);
    while (pool->nall < pool->min_workers && pool->spawn_failures == 0)
        pthread_cond_wait(&pool->state_cv, &pool->mu);
    if (pool->min_workers > 0 && pool->nall == 0) rc = NB_ERR_IO;
    pthread_mutex_unlock(&pool->mu);
    if (rc) {
        nb_worker_pool_stop(pool);
        return rc;
    }
    *out = pool;
    return NB_OK;
}

/* A calling thread is done with the pool (the last thing it touches). */
static void leave_locked(struct nb_worker_pool *pool)
{
    pool->ncallers--;
    if (pool->stopping) pthread_cond_broadcast(&pool->state_cv);
}

static void leave(struct nb_worker_pool *pool)
{
    pthread_mutex_lock(&pool->mu);
    leave_locked(pool);
    pthread_mutex_unlock(&pool->mu);
}

/* Take an idle worker, or queue for the next one (the spawner starts one
 * when there is room). `enter` counts the calling thread in (its first
 * attempt). NB_OK with *out set; otherwise the caller has left the pool:
 * NB_OK with *out NULL when no worker can be started (res then says why),
 * or NB_ERR_STOPPED. */
static enum nb_err acquire(struct nb_worker_pool *pool, struct worker **out,
                           struct nb_inv_result *res, bool enter)
{
    enum nb_err rc = NB_OK;
    *out = NULL;
    pthread_mutex_lock(&pool->mu);
    if (enter) pool->ncallers++;
    for (;;) {
        if (pool->stopping) {
            rc = NB_ERR_STOPPED;
            break;
        }
        if (pool->nidle > 0) {
            struct worker *w = pool->idle[--pool->nidle];
            w->busy = true;
            *out = w;
            break;
        }
        struct waiter me = { .w = NULL, .recheck = false, .failed = false,
                             .since_us = nb_clock_mono_us(), .next = NULL };
        pthread_cond_init(&me.cv, NULL);
        if (pool->wait_tail)
            pool->wait_tail->next = &me;
        else
            pool->wait_head = &me;
        pool->wait_tail = &me;
        pool->nwaiting++;
        if (pool->nall + pool->nspawning < pool->burst_workers)
            pthread_cond_signal(&pool->spawn_cv);
        while (!me.w && !me.recheck && !me.failed) pthread_cond_wait(&me.cv, &pool->mu);
        if (!me.w && !me.failed) {
            /* Still queued: take ourselves out. */
            struct waiter **pp = &pool->wait_head, *prev = NULL;
            while (*pp != &me) {
                prev = *pp;
                pp = &(*pp)->next;
            }
            *pp = me.next;
            if (pool->wait_tail == &me) pool->wait_tail = prev;
            pool->nwaiting--;
        }
        pthread_cond_destroy(&me.cv);
        if (me.w) {
            *out = me.w;
            break;
        }
        if (me.failed) {
            nb_inv_result_fail(res, "cannot start a native worker: %s",
                               pool->spawn_error ? pool->spawn_error : "unknown error");
            break;
        }
    }
    if (!*out) leave_locked(pool);
    pthread_mutex_unlock(&pool->mu);
    return rc;
}

/* Give a healthy worker back; the caller leaves the pool. A worker started
 * past max_workers for a starving waiter is retired once nobody waits, so
 * the pool shrinks back after a burst. */
static void release(struct nb_worker_pool *pool, struct worker *w)
{
    bool retire = false;
    pthread_mutex_lock(&pool->mu);
    if (pool->stopping) {
        w->busy = false;
        pool->idle[pool->nidle++] = w;
    } else if (!pool->wait_head && pool->nall > pool->max_workers) {
        remove_live(pool, w);
        retire = true;
    } else {
        hand_over(pool, w);
    }
    leave_locked(pool);
    pthread_mutex_unlock(&pool->mu);
    if (retire) {
        close(w->fd);
        w->fd = -1;
        kill_and_reap(w->pid);
        worker_free(w);
    }
}

/* Retire a busy worker: out of the pool, killed, reaped, freed. Returns its
 * exit status; *stopping tells whether the pool is stopping (which may be
 * why it died). The spawner refills min_workers. The caller stays in the
 * pool (it still has to leave). */
static int discard(struct nb_worker_pool *pool, struct worker *w, bool *stopping)
{
    pthread_mutex_lock(&pool->mu);
    remove_live(pool, w);
    pthread_mutex_unlock(&pool->mu);

    close(w->fd);
    w->fd = -1;
    int st = kill_and_reap(w->pid);
    worker_free(w);

    pthread_mutex_lock(&pool->mu);
    *stopping = pool->stopping;
    pthread_cond_signal(&pool->spawn_cv); /* refill min_workers, serve waiters */
    pthread_mutex_unlock(&pool->mu);
    return st;
}

static void put_pairs(struct nb_ipc_writer *o, const struct nb_kv *kv, size_t n)
{
    nb_ipc_put_u32(o, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        nb_ipc_put_str(o, kv[i].name);
        if (kv[i].value)
            nb_ipc_put(o, kv[i].value, kv[i].value_len);
        else
            nb_ipc_put(o, "", 0);
    }
}

static bool is_output(const struct nb_binding *b)
{
    return b->out && b->type != NB_BIND_HTTP && b->name;
}

static enum nb_err build_request(struct nb_ipc_writer *o, const struct nb_invocation *inv)
{
    const struct nb_function *fn = inv->fn;
    nb_ipc_begin(o);
    nb_ipc_put_u32(o, NB_IPC_VERSION);
    nb_ipc_put_str(o, fn->script_file);
    nb_ipc_put_str(o, fn->entry_point && fn->entry_point[0] ? fn->entry_point : "run");
    nb_ipc_put_str(o, fn->name);
    nb_ipc_put_str(o, inv->id);
    nb_ipc_put_str(o, nb_trigger_kind_name(inv->kind));
    nb_ipc_put_str(o, inv->method);
    nb_ipc_put_str(o, inv->url);
    nb_ipc_put_str(o, inv->path);
    put_pairs(o, inv->params, inv->nparams);
    put_pairs(o, inv->query, inv->nquery);
    put_pairs(o, inv->headers, inv->nheaders);
    nb_ipc_put(o, inv->body ? inv->body : "", inv->body ? inv->body_len : 0);
    nb_ipc_put(o, inv->trigger_data ? inv->trigger_data : "",
               inv->trigger_data ? inv->trigger_len : 0);
    nb_ipc_put_str(o, inv->metadata_json ? inv->metadata_json : "{}");
    put_pairs(o, inv->inputs, inv->ninputs);
    uint32_t nout = 0;
    const char *http = "";
    for (size_t i = 0; i < fn->nbindings; i++) {
        const struct nb_binding *b = &fn->bindings[i];
        if (is_output(b)) nout++;
        if (b->out && b->type == NB_BIND_HTTP && b->name) http = b->name;
    }
    nb_ipc_put_u32(o, nout);
    for (size_t i = 0; i < fn->nbindings; i++) {
        if (!is_output(&fn->bindings[i])) continue;
        nb_ipc_put_str(o, fn->bindings[i].name);
        nb_ipc_put_u32(o, (uint32_t)fn->bindings[i].type);
    }
    nb_ipc_put_str(o, http);
    return nb_ipc_end(o);
}

/* Copy a reply payload into res. NB_ERR_INVALID when it is malformed. */
static enum nb_err apply_reply(struct nb_str payload, struct nb_inv_result *res)
{
    struct nb_ipc_reader r;
    nb_ipc_reader_init(&r, payload.ptr, payload.len);
    uint32_t status, has_http, code;
    size_t n;
    struct nb_str s, v;
    const char *name, *error;
    enum nb_err rc;
    if ((rc = nb_ipc_get_u32(&r, &status)) || (rc = nb_ipc_get_u32(&r, &has_http)) ||
        (rc = nb_ipc_get_count(&r, 2, &n)))
        return rc;
    res->status = (int)status;
    res->has_http = has_http != 0;
    for (size_t i = 0; i < n; i++) {
        const char *value;
        if ((rc = nb_ipc_get_cstr(&r, &name)) || (rc = nb_ipc_get_cstr(&r, &value))) return rc;
        nb_inv_result_add_header(res, name, value);
    }
    if ((rc = nb_ipc_get(&r, &s))) return rc;
    bool body_fits = nb_buf_add(&res->body, s.ptr, s.len) == NB_OK;
    if ((rc = nb_ipc_get_count(&r, 3, &n))) return rc;
    for (size_t i = 0; i < n; i++) {
        uint64_t visibility;
        if ((rc = nb_ipc_get_cstr(&r, &name)) || (rc = nb_ipc_get(&r, &v)) ||
            (rc = nb_ipc_get_u64(&r, &visibility)))
            return rc;
        nb_inv_result_add_output(res, name, v.ptr, v.len);
        if (visibility) nb_inv_result_delay_last(res, (int64_t)visibility);
    }
    if ((rc = nb_ipc_get_count(&r, 1, &n))) return rc;
    for (size_t i = 0; i < n; i++) {
        if ((rc = nb_ipc_get_cstr(&r, &name))) return rc;
        nb_inv_result_add_log(res, name);
    }
    if ((rc = nb_ipc_get_u32(&r, &code)) || (rc = nb_ipc_get_cstr(&r, &error))) return rc;
    if (!nb_ipc_reader_done(&r)) return NB_ERR_INVALID;
    if (error[0])
        nb_inv_result_fail(res, "%s", error);
    else if (code != 0)
        nb_inv_result_fail(res, "function returned %d", (int)code);
    else if (!body_fits)
        nb_inv_result_fail(res, "response body too large");
    return NB_OK;
}

enum nb_err nb_worker_invoke(struct nb_worker_pool *pool, const struct nb_invocation *inv,
                             struct nb_inv_result *res)
{
    if (!pool || !inv || !inv->fn) return NB_ERR_INVALID;
    const char *fname = inv->fn->name ? inv->fn->name : "?";
    struct worker *w = NULL;
    bool stopping = false;
    enum nb_err rc;

    /* An idle worker may have died since its last use (killed by hand, OOM
     * killer); the send then fails before the function ran, so try another. */
    for (int attempt = 1;; attempt++) {
        rc = acquire(pool, &w, res, attempt == 1);
        if (rc || !w) return rc;
        if (build_request(&w->out, inv)) {
            release(pool, w);
            nb_inv_result_fail(res, "invocation too large for a native worker (over %u MiB)",
                               NB_IPC_MAX_FRAME >> 20);
            return NB_OK;
        }
        if (nb_ipc_send(w->fd, w->out.buf.data, w->out.buf.len) == NB_OK) break;
        pid_t pid = w->pid;
        char *why = describe_status(discard(pool, w, &stopping));
        w = NULL;
        if (stopping) {
            free(why);
            leave(pool);
            return NB_ERR_STOPPED;
        }
        nb_log_error(pool->log, "native worker %ld for %s was dead before the invocation: %s",
                     (long)pid, fname, why);
        if (attempt == SEND_ATTEMPTS) {
            res->crashed = true;
            nb_inv_result_fail(res, "worker crashed: %s", why);
            free(why);
            leave(pool);
            return NB_OK;
        }
        free(why);
    }

    int64_t deadline = pool->timeout_ms >= 0
                           ? nb_clock_mono_us() + (pool->timeout_ms > INT64_MAX / 2000 ? INT64_MAX / 2 : pool->timeout_ms * 1000)
                           : -1;
    struct nb_str payload;
    rc = nb_ipc_recv_frame(w->fd, &w->in, deadline, &payload);
    if (rc == NB_OK) {
        rc = apply_reply(payload, res);
        if (rc == NB_OK) {
            release(pool, w);
            return NB_OK;
        }
    }
    /* The worker is gone or can no longer be trusted. */
    pid_t pid = w->pid;
    char *why = describe_status(discard(pool, w, &stopping));
    enum nb_err out = NB_OK;
    if (stopping && rc != NB_IPC_TIMEOUT) {
        out = NB_ERR_STOPPED;
    } else if (rc == NB_IPC_TIMEOUT) {
        res->crashed = true;
        nb_inv_result_fail(res, "function timed out after %lld ms", (long long)pool->timeout_ms);
        nb_log_error(pool->log,
                     "function %s (invocation %s) timed out after %lld ms; worker %ld killed",
                     fname, inv->id, (long long)pool->timeout_ms, (long)pid);
    } else if (rc == NB_ERR_INVALID || rc == NB_ERR_TOO_LARGE) {
        res->crashed = true;
        nb_inv_result_fail(res, "worker crashed: malformed reply (%s)", why);
        nb_log_error(pool->log,
                     "function %s (invocation %s): worker %ld sent a malformed reply; killed",
                     fname, inv->id, (long)pid);
    } else {
        res->crashed = true;
        nb_inv_result_fail(res, "worker crashed: %s", why);
        nb_log_error(pool->log, "function %s (invocation %s): worker %ld crashed: %s", fname,
                     inv->id, (long)pid, why);
    }
    free(why);
    leave(pool);
    return out;
}

void nb_worker_pool_cancel(struct nb_worker_pool *pool)
{
    if (!pool) return;
    pthread_mutex_lock(&pool->mu);
    pool->stopping = true;
    pthread_cond_broadcast(&pool->spawn_cv);
    recheck_all(pool);
    /* The threads holding busy workers see EOF, reap them and return. */
    for (size_t i = 0; i < pool->nall; i++)
        if (pool->all[i]->busy) kill(pool->all[i]->pid, SIGKILL);
    pthread_mutex_unlock(&pool->mu);
}

void nb_worker_pool_stop(struct nb_worker_pool *pool)
{
    if (!pool) return;
    pthread_mutex_lock(&pool->mu);
    pool->stopping = true;
    pthread_cond_broadcast(&pool->spawn_cv);
    recheck_all(pool);
    pthread_mutex_unlock(&pool->mu);
    pthread_join(pool->spawner, NULL);

    /* Busy workers are killed here but reaped by the thread that holds them
     * (it sees EOF at once and returns NB_ERR_STOPPED). Waiting for every
     * caller to leave, not only the busy ones, keeps a thread just woken in
     * acquire from touching a freed pool. */
    pthread_mutex_lock(&pool->mu);
    for (size_t i = 0; i < pool->nall; i++)
        if (pool->all[i]->busy) kill(pool->all[i]->pid, SIGKILL);
    while (pool->ncallers > 0) pthread_cond_wait(&pool->state_cv, &pool->mu);
    pthread_mutex_unlock(&pool->mu);

    /* Only idle workers are left. Closing the socket already makes them
     * exit; SIGKILL covers one stuck anywhere else. */
    for (size_t i = 0; i < pool->nall; i++) {
        struct worker *w = pool->all[i];
        close(w->fd);
        w->fd = -1;
    }
    for (size_t i = 0; i < pool->nall; i++) {
        kill_and_reap(pool->all[i]->pid);
        worker_free(pool->all[i]);
    }
    pthread_cond_destroy(&pool->spawn_cv);
    pthread_cond_destroy(&pool->state_cv);
    pthread_mutex_destroy(&pool->mu);
    for (size_t i = 0; pool->env[i]; i++) free(pool->env[i]);
    free(pool->env);
    free(pool->spawn_error);
    free(pool->idle);
    free(pool->all);
    free(pool->exe);
    free(pool);
}
