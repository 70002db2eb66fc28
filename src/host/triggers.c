/* Queue-trigger pollers and the timer scheduler (see triggers.h). Owns the
 * threads it starts: per queue function one poller plus a fixed pool of
 * invocation workers, and one scheduler thread for all timers; stop joins
 * every one of them. Owns no store data beyond the messages it has claimed
 * (until it deletes or releases them) and the "host.timers" kv entries.
 * Invariant: only the poller renews leases, and it does so holding the
 * function's mutex, so a worker that has marked its message `finishing`
 * (under the same mutex) owns the message's current pop receipt. */
#include "host/triggers.h"
#include "core/encode.h"
#include "core/mem.h"
#include "core/random.h"
#include "core/timefmt.h"
#include "host/ncrontab.h"
#include "store/store.h"
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LEASE_MS (10LL * 60 * 1000) /* invisibility while a function runs */
#define POLL_MIN_MS 100             /* QueuePollingIntervals.Minimum */
#define MAX_WORKERS 32              /* invocation threads per queue function */
#define BUSY_WAIT_MS 200            /* re-check leases at least this often when busy */
#define TIMER_MAX_SLEEP_MS 1000     /* the scheduler re-reads the clock at least this often */
/* A timer occurrence run later than this after its due time is IsPastDue
 * (see fire_timer). */
#define PAST_DUE_TOLERANCE_MS 1000
#define TIMERS_NS "host.timers"
#define NEVER_TEXT "0001-01-01T00:00:00" /* DateTime.MinValue: Last before any run */

static const struct nb_log default_log = { NB_LOG_TEXT, false };

/* A message claimed by a poller and not yet deleted or released. */
struct held {
    struct nb_msg m;        /* text owned; pop_receipt current (guarded by qfn.mu) */
    nb_time_ms lease_until; /* end of the invisibility we hold (injected clock) */
    bool started;           /* a worker took it */
    bool finishing;         /* the worker is deleting/releasing it: no more renewals */
    bool lost;              /* a renewal failed: the lease is gone, stop trying */
    struct held *next;
};

struct qfn {
    struct nb_triggers *t;
    const struct nb_function *fn;
    char *account, *queue, *poison;
    size_t batch;     /* messages per poll */
    size_t threshold; /* fetch again when held <= threshold */
    int max_dequeue;
    int64_t max_poll_ms, release_ms;
    bool base64;

    pthread_mutex_t mu;
    pthread_cond_t work_cv; /* a message is waiting, or the workers must quit */
    pthread_cond_t done_cv; /* a message finished, or stopping (monotonic clock) */
    struct held *held;      /* in fetch order */
    size_t nheld, nwaiting;
    bool quit_workers;

    pthread_t poller;
    bool poller_started;
    pthread_t workers[MAX_WORKERS];
    size_t nworkers;
};

struct tmr {
    const struct nb_function *fn;
    const struct nb_binding *b;
    struct nb_cron cron;
    nb_time_ms next; /* -1: never again */
    nb_time_ms last; /* the last occurrence run, -1 when none */
    bool monitor;    /* keep a schedule status (useMonitor, and not sub-minute) */
};

struct nb_triggers {
    struct nb_triggers_config cfg;
    const struct nb_log *log;
    struct nb_notify own_wake; /* used when cfg.wake is NULL */
    struct nb_notify *wake;
    atomic_bool stop;
    atomic_int running;     /* invocations inside cfg.run right now */
    struct qfn **queues;
    size_t nqueues;
    struct tmr *timers;
    size_t ntimers;
    pthread_t timer_thread;
    bool timer_started;
};

/* --- helpers ------------------------------------------------------------- */

static const struct nb_binding *trigger_of(const struct nb_function *fn)
{
    return fn->trigger < fn->nbindings ? &fn->bindings[fn->trigger] : NULL;
}

static void iso(nb_time_ms t, char out[NB_ISO8601_LEN])
{
    nb_time_iso8601(t, out);
}

/* The "sys" object every trigger's metadata carries. */
static json_t *sys_object(const struct nb_function *fn, nb_time_ms now)
{
    char now_s[NB_ISO8601_LEN], guid[37];
    iso(now, now_s);
    nb_random_uuid(guid);
    return json_pack("{s:s, s:s, s:s}", "MethodName", fn->name, "UtcNow", now_s, "RandGuid",
                     guid);
}

static char *dump(json_t *o)
{
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (!s) s = nb_strdup("{}");
    return s;
}

/* A random factor in [0.8, 1.2) for the polling backoff. */
static double jitter(void)
{
    uint32_t r;
    nb_random_bytes(&r, sizeof(r));
    return 0.8 + 0.4 * ((double)r / 4294967296.0);
}

/* RandomizedExponentialBackoffStrategy: after k consecutive empty polls
 * wait min(max, 100 ms * 2^(k-1) * rand(0.8..1.2)). */
static int64_t backoff_ms(int k, int64_t max_ms)
{
    int shift = k - 1 < 30 ? k - 1 : 30;
    double d = (double)POLL_MIN_MS * (double)(1LL << shift) * jitter();
    if (d > (double)max_ms) return max_ms;
    return (int64_t)d;
}

static void abs_deadline(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    if (ms < 0) ms = 0;
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static void cond_init_mono(pthread_cond_t *cv)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &attr);
    pthread_condattr_destroy(&attr);
}

static bool stopping(struct nb_triggers *t)
{
    return atomic_load(&t->stop);
}

/* --- queue triggers ------------------------------------------------------ */

static void free_held(struct held *h)
{
    if (!h) return;
    free(h->m.text);
    free(h);
}

/* Renew every lease past half its length; returns the injected time at
 * which the next renewal falls due (INT64_MAX when nothing is held). The
 * store call is made under q->mu on purpose: see the file-top invariant. */
static nb_time_ms renew_leases(struct qfn *q, nb_time_ms now)
{
    struct nb_triggers *t = q->t;
    nb_time_ms due_min = INT64_MAX;
    pthread_mutex_lock(&q->mu);
    for (struct held *h = q->held; h; h = h->next) {
        if (h->finishing || h->lost) continue;
        nb_time_ms due = h->lease_until - LEASE_MS / 2;
        if (now >= due) {
            struct nb_msg out;
            memset(&out, 0, sizeof(out));
            enum nb_err rc = nb_store_msg_update(t->cfg.store, q->account, q->queue, h->m.id,
                                                 h->m.pop_receipt, LEASE_MS, NULL, 0, now, &out);
            free(out.text);
            if (rc == NB_OK) {
                memcpy(h->m.pop_receipt, out.pop_receipt, sizeof(h->m.pop_receipt));
                h->lease_until = now + LEASE_MS;
                due = h->lease_until - LEASE_MS / 2;
            } else {
                h->lost = true;
                nb_log_error(t->log, "function %s: could not renew the lease on message %s: %s",
                             q->fn->name, h->m.id, nb_err_str(rc));
                continue;
            }
        }
        if (due < due_min) due_min = due;
    }
    pthread_mutex_unlock(&q->mu);
    return due_min;
}

/* Copy the original (undecoded) text to <queue>-poison and delete it. */
static void to_poison(struct qfn *q, const struct nb_msg *m, const char *receipt,
                      const char *why)
{
    struct nb_triggers *t = q->t;
    struct nb_store *s = t->cfg.store;
    nb_time_ms now = nb_clock_now(t->cfg.clock);
    enum nb_err rc = nb_store_queue_create(s, q->account, q->poison, "", now);
    if (rc == NB_ERR_EXISTS || rc == NB_ERR_EXISTS_SAME) rc = NB_OK;
    if (rc == NB_OK) {
        struct nb_msg_put in = { .text = m->text, .text_len = m->text_len, .visibility_ms = 0,
                                 .ttl_ms = -1 };
        struct nb_msg out;
        memset(&out, 0, sizeof(out));
        rc = nb_store_msg_put(s, q->account, q->poison, &in, now, &out);
        free(out.text);
    }
    if (rc) {
        /* Keep the original: it comes back after its lease and is retried. */
        nb_log_error(t->log, "function %s: could not move message %s to %s: %s", q->fn->name,
                     m->id, q->poison, nb_err_str(rc));
        return;
    }
    nb_notify_signal(t->wake); /* a function may watch the poison queue */
    rc = nb_store_msg_delete(s, q->account, q->queue, m->id, receipt, now);
    if (rc)
        nb_log_error(t->log, "function %s: could not delete message %s after moving it to %s: %s",
                     q->fn->name, m->id, q->poison, nb_err_str(rc));
    nb_log_error(t->log, "function %s %s on message %s (attempt %lld/%d): moved to %s",
                 q->fn->name, why, m->id, (long long)m->dequeue_count, q->max_dequeue, q->poison);
}

/* The receipt to finish with; after this the poller leaves h alone. */
static void take_receipt(struct qfn *q, struct held *h, char out[NB_POP_RECEIPT_LEN])
{
    pthread_mutex_lock(&q->mu);
    h->finishing = true;
    memcpy(out, h->m.pop_receipt, NB_POP_RECEIPT_LEN);
    pthread_mutex_unlock(&q->mu);
}

/* Trigger metadata as the Storage Queues extension binds it. */
static char *queue_metadata(const struct qfn *q, const struct nb_msg *m, const char *receipt,
                            const char *data, size_t len, nb_time_ms now)
{
    char ins[NB_ISO8601_LEN], exp[NB_ISO8601_LEN], vis[NB_ISO8601_LEN];
    iso(m->insertion_time, ins);
    iso(m->expiration_time, exp);
    iso(m->time_next_visible, vis);
    json_t *o = json_pack("{s:I, s:s, s:s, s:s, s:s, s:s}", "DequeueCount",
                          (json_int_t)m->dequeue_count, "ExpirationTime", exp, "Id", m->id,
                          "InsertionTime", ins, "NextVisibleTime", vis, "PopReceipt", receipt);
    if (!o) return nb_strdup("{}");
    /* Not valid UTF-8 after decoding: the text as stored, else nothing. */
    json_t *text = json_stringn(data, len);
    if (!text) text = json_stringn(m->text, m->text_len);
    if (text) json_object_set_new(o, "QueueTrigger", text);
    json_t *sys = sys_object(q->fn, now);
    if (sys) json_object_set_new(o, "sys", sys);
    char *s = dump(o);
    json_decref(o);
    return s;
}

/* Run one claimed message and settle it: delete on success; on failure
 * poison after maxDequeueCount attempts, else release it for
 * visibilityTimeout. */
static void process(struct qfn *q, struct held *h)
{
    struct nb_triggers *t = q->t;
    struct nb_store *s = t->cfg.store;
    const struct nb_msg *m = &h->m;
    char receipt[NB_POP_RECEIPT_LEN];
    unsigned char *decoded = NULL;
    size_t dlen = 0;
    char *meta = NULL;
    struct nb_inv_result res;
    nb_inv_result_init(&res);

    if (m->dequeue_count > q->max_dequeue) {
        /* Claimed more often than allowed without a verdict (a host died
         * mid-run): poison it without running it again, as the extension does. */
        take_receipt(q, h, receipt);
        to_poison(q, m, receipt, "exceeded the maximum dequeue count");
        goto cleanup;
    }

    const char *data = m->text;
    size_t len = m->text_len;
    if (q->base64) {
        if (nb_base64_decode(m->text, m->text_len, &decoded, &dlen)) {
            decoded[dlen] = '\0'; /* the buffer holds n/4*3 + 1 bytes */
            data = (const char *)decoded;
            len = dlen;
        } else {
            nb_log_info(t->log,
                        "function %s: message %s is not valid base64; passing its text as is",
                        q->fn->name, m->id);
        }
    }

    nb_time_ms now = nb_clock_now(t->cfg.clock);
    pthread_mutex_lock(&q->mu);
    memcpy(receipt, h->m.pop_receipt, NB_POP_RECEIPT_LEN);
    pthread_mutex_unlock(&q->mu);
    meta = queue_metadata(q, m, receipt, data, len, now);

    struct nb_invocation inv;
    memset(&inv, 0, sizeof(inv));
    inv.fn = q->fn;
    inv.kind = NB_TRIGGER_QUEUE;
    nb_random_uuid(inv.id);
    inv.trigger_data = data;
    inv.trigger_len = len;
    inv.metadata_json = meta;
    atomic_fetch_add(&t->running, 1);
    t->cfg.run(t->cfg.ctx, &inv, &res);
    atomic_fetch_sub(&t->running, 1);

    take_receipt(q, h, receipt);
    now = nb_clock_now(t->cfg.clock);
    enum nb_err rc;
    if (res.ok) {
        rc = nb_store_msg_delete(s, q->account, q->queue, m->id, receipt, now);
        if (rc)
            nb_log_error(t->log, "function %s: could not delete message %s: %s", q->fn->name,
                         m->id, nb_err_str(rc));
    } else if (m->dequeue_count >= q->max_dequeue) {
        to_poison(q, m, receipt, "failed");
    } else {
        struct nb_msg out;
        memset(&out, 0, sizeof(out));
        rc = nb_store_msg_update(s, q->account, q->queue, m->id, receipt, q->release_ms, NULL, 0,
                                 now, &out);
        free(out.text);
        nb_log_info(t->log, "function %s failed on message %s (attempt %lld/%d): %s",
                    q->fn->name, m->id, (long long)m->dequeue_count, q->max_dequeue,
                    res.error ? res.error : "unknown error");
        if (rc)
            nb_log_error(t->log, "function %s: could not release message %s: %s", q->fn->name,
                         m->id, nb_err_str(rc));
        else if (q->release_ms <= 0)
            nb_notify_signal(t->wake); /* visible again at once: poll now */
    }

cleanup:
    nb_inv_result_cleanup(&res);
    free(decoded);
    free(meta);
}

static void *worker_main(void *arg)
{
    struct qfn *q = arg;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        while (!q->quit_workers && q->nwaiting == 0) pthread_cond_wait(&q->work_cv, &q->mu);
        if (q->quit_workers) break;
        struct held *h = q->held;
        while (h && h->started) h = h->next;
        h->started = true; /* nwaiting > 0 guarantees one */
        q->nwaiting--;
        pthread_mutex_unlock(&q->mu);

        process(q, h);

        pthread_mutex_lock(&q->mu);
        struct held **pp = &q->held;
        while (*pp != h) pp = &(*pp)->next;
        *pp = h->next;
        q->nheld--;
        pthread_cond_broadcast(&q->done_cv);
        free_held(h);
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

/* Claim up to a batch; returns how many were claimed, -1 on a store error. */
static int poll_once(struct qfn *q, nb_time_ms now)
{
    struct nb_triggers *t = q->t;
    struct nb_msg_list list = { 0 };
    enum nb_err rc = nb_store_msg_get(t->cfg.store, q->account, q->queue, q->batch, LEASE_MS,
                                      now, &list);
    if (rc == NB_ERR_NO_PARENT) return 0; /* the queue does not exist yet */
    if (rc) return -1;
    pthread_mutex_lock(&q->mu);
    struct held **tail = &q->held;
    while (*tail) tail = &(*tail)->next;
    for (size_t i = 0; i < list.n; i++) {
        struct held *h = nb_calloc(1, sizeof(*h));
        h->m = list.items[i];
        list.items[i].text = NULL; /* moved */
        if (!h->m.text) { /* an empty message may come back without text */
            h->m.text = nb_strdup("");
            h->m.text_len = 0;
        }
        h->lease_until = now + LEASE_MS;
        *tail = h;
        tail = &h->next;
        q->nheld++;
        q->nwaiting++;
    }
    if (list.n) pthread_cond_broadcast(&q->work_cv);
    pthread_mutex_unlock(&q->mu);
    int n = (int)list.n;
    nb_msg_list_cleanup(&list);
    return n;
}

/* On stop: hand back what no worker has started (visible at once, for the
 * next start), then keep renewing leases until the running ones finish. */
static void poller_drain(struct qfn *q)
{
    struct nb_triggers *t = q->t;
    pthread_mutex_lock(&q->mu);
    q->quit_workers = true;
    struct held *unstarted = NULL, **pp = &q->held;
    while (*pp) {
        struct held *h = *pp;
        if (!h->started) {
            *pp = h->next;
            h->next = unstarted;
            unstarted = h;
            q->nheld--;
            q->nwaiting--;
        } else {
            pp = &h->next;
        }
    }
    pthread_cond_broadcast(&q->work_cv);
    pthread_mutex_unlock(&q->mu);

    while (unstarted) {
        struct held *h = unstarted;
        unstarted = h->next;
        struct nb_msg out;
        memset(&out, 0, sizeof(out));
        nb_store_msg_update(t->cfg.store, q->account, q->queue, h->m.id, h->m.pop_receipt, 0,
                            NULL, 0, nb_clock_now(t->cfg.clock), &out);
        free(out.text);
        free_held(h);
    }

    for (;;) {
        renew_leases(q, nb_clock_now(t->cfg.clock));
        pthread_mutex_lock(&q->mu);
        size_t left = q->nheld;
        if (left) {
            struct timespec ts;
            abs_deadline(&ts, BUSY_WAIT_MS);
            pthread_cond_timedwait(&q->done_cv, &q->mu, &ts);
            left = q->nheld;
        }
        pthread_mutex_unlock(&q->mu);
        if (!left) break;
    }
}

static void *poller_main(void *arg)
{
    struct qfn *q = arg;
    struct nb_triggers *t = q->t;
    int empty = 0; /* consecutive empty polls */
    bool reported = false;
    while (!stopping(t)) {
        /* Read the generation before polling so a put racing the poll
         * still cuts the following wait short. */
        uint64_t gen = nb_notify_gen(t->wake);
        nb_time_ms now = nb_clock_now(t->cfg.clock);
        nb_time_ms renew_due = renew_leases(q, now);

        pthread_mutex_lock(&q->mu);
        bool busy = q->nheld > q->threshold;
        pthread_mutex_unlock(&q->mu);

        int64_t wait_ms = BUSY_WAIT_MS;
        if (!busy) {
            int n = poll_once(q, now);
            if (n > 0) {
                empty = 0;
                reported = false;
                continue; /* a hit: fetch again as soon as there is room */
            }
            if (n < 0 && !reported) {
                reported = true;
                nb_log_error(t->log, "function %s: polling queue %s failed", q->fn->name,
                             q->queue);
            }
            if (empty < 64) empty++;
            wait_ms = backoff_ms(empty, q->max_poll_ms);
        }
        if (renew_due != INT64_MAX) {
            int64_t until_renew = renew_due - now;
            if (until_renew < 0) until_renew = 0;
            if (until_renew < wait_ms) wait_ms = until_renew;
        }
        if (busy) {
            /* Nothing can be fetched until a message finishes. */
            struct timespec ts;
            abs_deadline(&ts, wait_ms);
            pthread_mutex_lock(&q->mu);
            while (!stopping(t) && q->nheld > q->threshold) {
                if (pthread_cond_timedwait(&q->done_cv, &q->mu, &ts) != 0) break;
            }
            pthread_mutex_unlock(&q->mu);
        } else if (wait_ms > 0) {
            nb_notify_wait(t->wake, gen, wait_ms);
        }
    }
    poller_drain(q);
    return NULL;
}

static void qfn_free(struct qfn *q)
{
    if (!q) return;
    while (q->held) {
        struct held *h = q->held;
        q->held = h->next;
        free_held(h);
    }
    pthread_cond_destroy(&q->work_cv);
    pthread_cond_destroy(&q->done_cv);
    pthread_mutex_destroy(&q->mu);
    free(q->account);
    free(q->queue);
    free(q->poison);
    free(q);
}

/* Settings from host.json, clamped to what the extension accepts. */
static void qfn_configure(struct qfn *q, const struct nb_queues_config *c)
{
    int batch = c->batch_size;
    if (batch < 1) batch = 16;
    if (batch > 32) batch = 32;
    int threshold = c->new_batch_threshold;
    if (threshold < 0) threshold = batch / 2;
    q->batch = (size_t)batch;
    q->threshold = (size_t)threshold;
    q->max_dequeue = c->max_dequeue_count > 0 ? c->max_dequeue_count : 5;
    q->max_poll_ms = c->max_polling_interval_ms > POLL_MIN_MS ? c->max_polling_interval_ms
                                                              : POLL_MIN_MS;
    q->release_ms = c->visibility_timeout_ms > 0 ? c->visibility_timeout_ms : 0;
    q->base64 = c->base64;
    size_t workers = q->batch + q->threshold;
    q->nworkers = workers > MAX_WORKERS ? MAX_WORKERS : workers;
}

static enum nb_err start_queue(struct nb_triggers *t, const struct nb_function *fn,
                               const struct nb_binding *b)
{
    const char *account = t->cfg.account_of(t->cfg.ctx, b);
    if (!account) {
        nb_log_error(t->log, "function %s: connection %s names no storage account; not started",
                     fn->name, b->connection ? b->connection : "AzureWebJobsStorage");
        return NB_OK;
    }
    if (!b->queue_name || !*b->queue_name) {
        nb_log_error(t->log, "function %s: queueTrigger has no queueName; not started", fn->name);
        return NB_OK;
    }
    struct qfn *q = nb_calloc(1, sizeof(*q));
    q->t = t;
    q->fn = fn;
    q->account = nb_strdup(account);
    q->queue = nb_strdup(b->queue_name);
    q->poison = nb_asprintf("%s-poison", b->queue_name);
    qfn_configure(q, &t->cfg.app->queues);
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->work_cv, NULL);
    cond_init_mono(&q->done_cv);
    t->queues = nb_realloc(t->queues, (t->nqueues + 1) * sizeof(*t->queues));
    t->queues[t->nqueues++] = q;

    size_t want = q->nworkers;
    q->nworkers = 0;
    for (size_t i = 0; i < want; i++) {
        if (pthread_create(&q->workers[i], NULL, worker_main, q) != 0) return NB_ERR_NOMEM;
        q->nworkers++;
    }
    if (pthread_create(&q->poller, NULL, poller_main, q) != 0) return NB_ERR_NOMEM;
    q->poller_started = true;
    return NB_OK;
}

/* --- timer triggers ------------------------------------------------------ */

static void time_text(nb_time_ms t, char out[NB_ISO8601_LEN])
{
    if (t < 0) {
        snprintf(out, NB_ISO8601_LEN, "%s", NEVER_TEXT);
        return;
    }
    iso(t, out);
}

static json_t *status_object(nb_time_ms last, nb_time_ms next, nb_time_ms updated)
{
    char l[NB_ISO8601_LEN], n[NB_ISO8601_LEN], u[NB_ISO8601_LEN];
    time_text(last, l);
    iso(updated, u);
    json_t *o = json_pack("{s:s}", "Last", l);
    if (!o) return NULL;
    if (next >= 0) {
        iso(next, n);
        json_object_set_new(o, "Next", json_string(n));
    } else {
        json_object_set_new(o, "Next", json_null());
    }
    json_object_set_new(o, "LastUpdated", json_string(u));
    return o;
}

static void save_status(struct nb_triggers *t, const struct tmr *tm, nb_time_ms now)
{
    if (!tm->monitor) return; /* no monitor: no schedule status at all */
    json_t *o = status_object(tm->last, tm->next, now);
    char *s = dump(o);
    json_decref(o);
    enum nb_err rc = nb_store_kv_set(t->cfg.store, TIMERS_NS, tm->fn->name, s);
    if (rc)
        nb_log_error(t->log, "timer %s: could not save its schedule status: %s", tm->fn->name,
                     nb_err_str(rc));
    free(s);
}

static nb_time_ms status_time(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    nb_time_ms v;
    if (!s || nb_time_parse_iso8601(s, strlen(s), &v) || v < 0) return -1;
    return v;
}

/* The stored status; false when there is none (or it is unreadable). */
static bool load_status(struct nb_triggers *t, const struct tmr *tm, nb_time_ms *last,
                        nb_time_ms *next)
{
    char *text = NULL;
    if (nb_store_kv_get(t->cfg.store, TIMERS_NS, tm->fn->name, &text)) return false;
    json_t *o = json_loads(text, 0, NULL);
    free(text);
    if (!json_is_object(o)) {
        json_decref(o);
        return false;
    }
    *last = status_time(o, "Last");
    *next = status_time(o, "Next");
    json_decref(o);
    return *next >= 0;
}

/* Run one occurrence (`due`) of a timer at `now` and schedule the next
 * occurrence strictly after now, so a clock that jumped over several
 * occurrences yields one run. IsPastDue, as Azure documents it, is "the
 * invocation is later than scheduled": the restart check passes it in, and a
 * scheduled run is past due when it starts more than PAST_DUE_TOLERANCE_MS
 * after its occurrence (a jumped test clock, a long earlier timer function
 * on this thread, a suspended host). `persist_last` is false for a
 * runOnStartup run, which is no occurrence of the schedule (Azure does not
 * record it as Last either). */
static void fire_timer(struct nb_triggers *t, struct tmr *tm, nb_time_ms now, nb_time_ms due,
                       bool past_due, bool persist_last)
{
    nb_time_ms next = nb_cron_next(&tm->cron, now);
    json_t *data = json_pack("{s:{s:b}, s:o, s:b}", "Schedule", "AdjustForDST", 1,
                             "ScheduleStatus", status_object(tm->last, next, now), "IsPastDue",
                             past_due);
    json_t *meta = json_pack("{s:o}", "sys", sys_object(tm->fn, now));
    char *data_s = dump(data), *meta_s = dump(meta);
    json_decref(data);
    json_decref(meta);

    struct nb_invocation inv;
    memset(&inv, 0, sizeof(inv));
    inv.fn = tm->fn;
    inv.kind = NB_TRIGGER_TIMER;
    nb_random_uuid(inv.id);
    inv.trigger_data = data_s;
    inv.trigger_len = strlen(data_s);
    inv.metadata_json = meta_s;
    struct nb_inv_result res;
    nb_inv_result_init(&res);
    atomic_fetch_add(&t->running, 1);
    t->cfg.run(t->cfg.ctx, &inv, &res);
    atomic_fetch_sub(&t->running, 1);
    if (!res.ok) /* timers are not retried */
        nb_log_info(t->log, "timer %s failed: %s", tm->fn->name,
                    res.error ? res.error : "unknown error");
    nb_inv_result_cleanup(&res);
    free(data_s);
    free(meta_s);

    if (persist_last) tm->last = due;
    tm->next = next;
    save_status(t, tm, nb_clock_now(t->cfg.clock));
    if (next < 0) nb_log_info(t->log, "timer %s: its schedule has no further occurrence", tm->fn->name);
}

/* Past-due and runOnStartup runs; then the first Next. */
static void timer_startup(struct nb_triggers *t, struct tmr *tm)
{
    nb_time_ms now = nb_clock_now(t->cfg.clock);
    nb_time_ms last = -1, recorded = -1;
    bool past_due = false;
    if (tm->monitor && load_status(t, tm, &last, &recorded)) {
        tm->last = last;
        /* A schedule changed to fire more often since the status was saved:
         * its own next occurrence after Last is what was missed. */
        if (last >= 0) {
            nb_time_ms expected = nb_cron_next(&tm->cron, last);
            if (expected >= 0 && expected < recorded) recorded = expected;
        }
        past_due = recorded < now;
    }
    if (past_due)
        fire_timer(t, tm, now, recorded, true, true);
    else if (tm->b->run_on_startup)
        fire_timer(t, tm, now, now, false, false);
    else {
        tm->next = nb_cron_next(&tm->cron, now);
        save_status(t, tm, now);
    }
}

static void *timer_main(void *arg)
{
    struct nb_triggers *t = arg;
    for (size_t i = 0; i < t->ntimers && !stopping(t); i++) timer_startup(t, &t->timers[i]);
    while (!stopping(t)) {
        uint64_t gen = nb_notify_gen(t->wake);
        nb_time_ms earliest = INT64_MAX;
        for (size_t i = 0; i < t->ntimers && !stopping(t); i++) {
            struct tmr *tm = &t->timers[i];
            if (tm->next < 0) continue;
            nb_time_ms now = nb_clock_now(t->cfg.clock);
            if (tm->next <= now)
                fire_timer(t, tm, now, tm->next, now - tm->next > PAST_DUE_TOLERANCE_MS, true);
            if (tm->next >= 0 && tm->next < earliest) earliest = tm->next;
        }
        if (stopping(t)) break;
        int64_t wait_ms = TIMER_MAX_SLEEP_MS;
        if (earliest != INT64_MAX) {
            int64_t d = earliest - nb_clock_now(t->cfg.clock);
            if (d < wait_ms) wait_ms = d;
        }
        if (wait_ms > 0) nb_notify_wait(t->wake, gen, wait_ms);
    }
    return NULL;
}

static void add_timer(struct nb_triggers *t, const struct nb_function *fn,
                      const struct nb_binding *b)
{
    struct tmr tm;
    memset(&tm, 0, sizeof(tm));
    char err[160] = "";
    if (!b->schedule) {
        nb_log_error(t->log, "timer %s: no schedule; not started", fn->name);
        return;
    }
    if (nb_cron_parse(b->schedule, &tm.cron, err, sizeof(err))) {
        nb_log_error(t->log, "timer %s: invalid schedule '%s': %s; not started", fn->name,
                     b->schedule, err);
        return;
    }
    nb_time_ms first = nb_cron_next(&tm.cron, nb_clock_now(t->cfg.clock));
    if (first < 0) {
        nb_log_error(t->log, "timer %s: schedule '%s' never fires; not started", fn->name,
                     b->schedule);
        return;
    }
    /* As Azure's TimerSchedule: a schedule that fires more than once a
     * minute is never monitored, whatever useMonitor says. */
    nb_time_ms second = nb_cron_next(&tm.cron, first);
    tm.monitor = b->use_monitor && second >= 0 && second - first >= 60000;
    tm.fn = fn;
    tm.b = b;
    tm.next = -1;
    tm.last = -1;
    t->timers = nb_realloc(t->timers, (t->ntimers + 1) * sizeof(*t->timers));
    t->timers[t->ntimers++] = tm;
}

/* --- lifecycle ----------------------------------------------------------- */

enum nb_err nb_triggers_start(const struct nb_triggers_config *cfg, struct nb_triggers **out)
{
    enum nb_err rc = NB_OK;
    *out = NULL;
    if (!cfg || !cfg->app || !cfg->store || !cfg->clock || !cfg->run || !cfg->account_of)
        return NB_ERR_INVALID;
    struct nb_triggers *t = nb_calloc(1, sizeof(*t));
    t->cfg = *cfg;
    t->log = cfg->log ? cfg->log : &default_log;
    nb_notify_init(&t->own_wake);
    t->wake = cfg->wake ? cfg->wake : &t->own_wake;
    atomic_init(&t->stop, false);

    const struct nb_app *app = cfg->app;
    for (size_t i = 0; i < app->nfunctions; i++) {
        const struct nb_function *fn = &app->functions[i];
        const struct nb_binding *b = trigger_of(fn);
        if (fn->disabled || !b) continue;
        if (b->type == NB_BIND_QUEUE_TRIGGER) {
            rc = start_queue(t, fn, b);
            if (rc) goto cleanup;
        } else if (b->type == NB_BIND_TIMER_TRIGGER) {
            add_timer(t, fn, b);
        }
    }
    if (t->ntimers) {
        if (pthread_create(&t->timer_thread, NULL, timer_main, t) != 0) {
            rc = NB_ERR_NOMEM;
            goto cleanup;
        }
        t->timer_started = true;
    }
    *out = t;

cleanup:
    if (rc) nb_triggers_stop(t);
    return rc;
}

void nb_triggers_halt(struct nb_triggers *t)
{
    if (!t) return;
    atomic_store(&t->stop, true);
    nb_notify_signal(t->wake);
    for (size_t i = 0; i < t->nqueues; i++) {
        struct qfn *q = t->queues[i];
        pthread_mutex_lock(&q->mu);
        pthread_cond_broadcast(&q->done_cv);
        pthread_mutex_unlock(&q->mu);
    }
}

int nb_triggers_running(struct nb_triggers *t)
{
    return t ? atomic_load(&t->running) : 0;
}

void nb_triggers_stop(struct nb_triggers *t)
{
    if (!t) return;
    nb_triggers_halt(t);
    if (t->timer_started) pthread_join(t->timer_thread, NULL);
    for (size_t i = 0; i < t->nqueues; i++) {
        struct qfn *q = t->queues[i];
        if (q->poller_started) {
            pthread_join(q->poller, NULL); /* the poller tells the workers to quit */
        } else {
            pthread_mutex_lock(&q->mu);
            q->quit_workers = true;
            pthread_cond_broadcast(&q->work_cv);
            pthread_mutex_unlock(&q->mu);
        }
        for (size_t w = 0; w < q->nworkers; w++) pthread_join(q->workers[w], NULL);
        qfn_free(q);
    }
    free(t->queues);
    free(t->timers);
    nb_notify_cleanup(&t->own_wake);
    free(t);
}
