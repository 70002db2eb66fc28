/* Tests of the queue-trigger pollers and the timer scheduler (triggers.h)
 * against an in-memory store, a hand-built nb_app and a fake run callback
 * that records each invocation and fails or blocks as a test scripts it.
 * Time moves with nb_clock_advance + nb_notify_signal; every wait is for a
 * condition with a real-time deadline (the only plain sleep builds up the
 * poller's backoff before the wake-up test). Assertions stay on the main
 * thread: the callback only records. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/notify.h"
#include "core/timefmt.h"
#include "host/triggers.h"
#include "store/store.h"

#define ACCT "devstoreaccount1"
#define MIN_MS (60LL * 1000)
#define WAIT_MS 2000
#define MAX_CALLS 64
#define MAX_FNS 4

struct call {
    enum nb_trigger_kind kind;
    char fn[64];
    char *data;
    size_t len;
    char *meta;
};

struct recorder {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct call calls[MAX_CALLS];
    size_t started, finished;
    int fail_first;  /* the first N calls fail */
    bool gate;       /* calls wait for a permit before returning */
    int permits;
    int running, max_running;
    int sleep_ms;    /* each call takes this long */
};

struct fx {
    struct nb_store *s;
    struct nb_clock clock;
    struct nb_notify wake;
    struct nb_log log;
    struct recorder rec;
    struct nb_app app;
    struct nb_function fns[MAX_FNS];
    struct nb_binding binds[MAX_FNS];
    size_t nfns;
    struct nb_triggers *t;
};

/* --- fixture ------------------------------------------------------------- */

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct nb_store_config cfg = { .in_memory = true };
    if (nb_store_open_sqlite(&cfg, &f->s)) return -1;
    nb_clock_init(&f->clock);
    nb_notify_init(&f->wake);
    f->log.quiet = true;
    pthread_mutex_init(&f->rec.mu, NULL);
    pthread_cond_init(&f->rec.cv, NULL);
    f->app.queues = (struct nb_queues_config){ .batch_size = 16,
                                               .new_batch_threshold = 8,
                                               .max_polling_interval_ms = 2000,
                                               .visibility_timeout_ms = 0,
                                               .max_dequeue_count = 5,
                                               .base64 = true };
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    nb_triggers_stop(f->t);
    for (size_t i = 0; i < f->rec.started && i < MAX_CALLS; i++) {
        free(f->rec.calls[i].data);
        free(f->rec.calls[i].meta);
    }
    pthread_cond_destroy(&f->rec.cv);
    pthread_mutex_destroy(&f->rec.mu);
    nb_notify_cleanup(&f->wake);
    nb_store_close(f->s);
    free(f);
    return 0;
}

static void run_cb(void *ctx, const struct nb_invocation *inv, struct nb_inv_result *res)
{
    struct recorder *r = &((struct fx *)ctx)->rec;
    pthread_mutex_lock(&r->mu);
    size_t i = r->started++;
    if (i < MAX_CALLS) {
        struct call *c = &r->calls[i];
        c->kind = inv->kind;
        snprintf(c->fn, sizeof(c->fn), "%s", inv->fn->name);
        c->data = malloc(inv->trigger_len + 1);
        memcpy(c->data, inv->trigger_data, inv->trigger_len);
        c->data[inv->trigger_len] = '\0';
        c->len = inv->trigger_len;
        c->meta = strdup(inv->metadata_json);
    }
    bool fail = (int)i < r->fail_first;
    if (++r->running > r->max_running) r->max_running = r->running;
    pthread_cond_broadcast(&r->cv);
    while (r->gate && r->permits == 0) pthread_cond_wait(&r->cv, &r->mu);
    if (r->gate) r->permits--;
    int sleep_ms = r->sleep_ms;
    pthread_mutex_unlock(&r->mu);

    if (sleep_ms) usleep((useconds_t)sleep_ms * 1000);
    if (fail) nb_inv_result_fail(res, "scripted failure %zu", i);

    pthread_mutex_lock(&r->mu);
    r->running--;
    r->finished++;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

static const char *account_of(void *ctx, const struct nb_binding *b)
{
    (void)ctx;
    if (b->connection && strcmp(b->connection, "Elsewhere") == 0) return NULL;
    return ACCT;
}

static struct nb_function *add_fn(struct fx *f, const char *name, enum nb_binding_type type)
{
    assert_true(f->nfns < MAX_FNS);
    struct nb_function *fn = &f->fns[f->nfns];
    struct nb_binding *b = &f->binds[f->nfns];
    f->nfns++;
    fn->name = (char *)name;
    fn->bindings = b;
    fn->nbindings = 1;
    fn->trigger = 0;
    b->type = type;
    b->name = (char *)(type == NB_BIND_QUEUE_TRIGGER ? "msg" : "timer");
    return fn;
}

static struct nb_function *add_queue_fn(struct fx *f, const char *name, const char *queue)
{
    struct nb_function *fn = add_fn(f, name, NB_BIND_QUEUE_TRIGGER);
    fn->bindings[0].queue_name = (char *)queue;
    return fn;
}

static struct nb_function *add_timer_fn(struct fx *f, const char *name, const char *schedule,
                                        bool run_on_startup, bool use_monitor)
{
    struct nb_function *fn = add_fn(f, name, NB_BIND_TIMER_TRIGGER);
    fn->bindings[0].schedule = (char *)schedule;
    fn->bindings[0].run_on_startup = run_on_startup;
    fn->bindings[0].use_monitor = use_monitor;
    return fn;
}

static void start(struct fx *f)
{
    f->app.functions = f->fns;
    f->app.nfunctions = f->nfns;
    struct nb_triggers_config cfg = {
        .app = &f->app,
        .store = f->s,
        .clock = &f->clock,
        .wake = &f->wake,
        .account_of = account_of,
        .run = run_cb,
        .ctx = f,
        .log = &f->log,
    };
    assert_int_equal(nb_triggers_start(&cfg, &f->t), NB_OK);
    assert_non_null(f->t);
}

static void mkq(struct fx *f, const char *q)
{
    enum nb_err rc = nb_store_queue_create(f->s, ACCT, q, "", nb_clock_now(&f->clock));
    assert_true(rc == NB_OK || rc == NB_ERR_EXISTS_SAME);
}

/* Put as the queue service would, and signal like the host does. */
static void put(struct fx *f, const char *q, const char *text, struct nb_msg *out)
{
    mkq(f, q);
    struct nb_msg m;
    struct nb_msg_put in = { text, strlen(text), 0, -1 };
    assert_int_equal(nb_store_msg_put(f->s, ACCT, q, &in, nb_clock_now(&f->clock), &m), NB_OK);
    if (out) *out = m;
    nb_notify_signal(&f->wake);
}

static int64_t count(struct fx *f, const char *q)
{
    int64_t n = -1;
    if (nb_store_queue_get(f->s, ACCT, q, nb_clock_now(&f->clock), NULL, &n)) return -1;
    return n;
}

/* Visible messages at now + ahead_ms (the store takes time as an argument). */
static size_t visible_at(struct fx *f, const char *q, int64_t ahead_ms)
{
    struct nb_msg_list l;
    if (nb_store_msg_peek(f->s, ACCT, q, 32, nb_clock_now(&f->clock) + ahead_ms, &l)) return 0;
    size_t n = l.n;
    nb_msg_list_cleanup(&l);
    return n;
}

static int64_t mono_ms(void)
{
    return nb_clock_mono_us() / 1000;
}

static void nap(void)
{
    usleep(2000);
}

/* Bounded waits for a condition. */
#define WAIT_UNTIL(cond)                                                                     \
    do {                                                                                     \
        int64_t deadline_ = mono_ms() + WAIT_MS;                                             \
        while (!(cond) && mono_ms() < deadline_) nap();                                      \
        assert_true(cond);                                                                   \
    } while (0)

static size_t rec_get(struct fx *f, size_t *field)
{
    pthread_mutex_lock(&f->rec.mu);
    size_t v = *field;
    pthread_mutex_unlock(&f->rec.mu);
    return v;
}

static int rec_int(struct fx *f, int *field)
{
    pthread_mutex_lock(&f->rec.mu);
    int v = *field;
    pthread_mutex_unlock(&f->rec.mu);
    return v;
}

static void wait_started(struct fx *f, size_t n)
{
    WAIT_UNTIL(rec_get(f, &f->rec.started) >= n);
}

static void wait_finished(struct fx *f, size_t n)
{
    WAIT_UNTIL(rec_get(f, &f->rec.finished) >= n);
}

static void give_permits(struct fx *f, int n)
{
    pthread_mutex_lock(&f->rec.mu);
    f->rec.permits += n;
    pthread_cond_broadcast(&f->rec.cv);
    pthread_mutex_unlock(&f->rec.mu);
}

static json_t *parse(const char *text)
{
    json_t *o = json_loads(text, 0, NULL);
    assert_non_null(o);
    return o;
}

static char *status_text(struct fx *f, const char *fn)
{
    char *v = NULL;
    if (nb_store_kv_get(f->s, "host.timers", fn, &v)) return NULL;
    return v;
}

static bool has_status(struct fx *f, const char *fn)
{
    char *v = status_text(f, fn);
    free(v);
    return v != NULL;
}

/* The stored Next of a timer, -1 when none. */
static nb_time_ms status_next(struct fx *f, const char *fn)
{
    char *v = status_text(f, fn);
    if (!v) return -1;
    json_t *o = json_loads(v, 0, NULL);
    free(v);
    const char *s = json_string_value(json_object_get(o, "Next"));
    nb_time_ms t = -1;
    if (s && nb_time_parse_iso8601(s, strlen(s), &t)) t = -1;
    json_decref(o);
    return t;
}

static void set_status(struct fx *f, const char *fn, nb_time_ms last, nb_time_ms next)
{
    char l[NB_ISO8601_LEN], n[NB_ISO8601_LEN], u[NB_ISO8601_LEN];
    nb_time_iso8601(last, l);
    nb_time_iso8601(next, n);
    nb_time_iso8601(last, u);
    char *v = NULL;
    assert_true(asprintf(&v, "{\"Last\":\"%s\",\"Next\":\"%s\",\"LastUpdated\":\"%s\"}", l, n,
                         u) > 0);
    assert_int_equal(nb_store_kv_set(f->s, "host.timers", fn, v), NB_OK);
    free(v);
}

/* --- queue triggers ------------------------------------------------------ */

static void test_queue_success_deletes(void **state)
{
    struct fx *f = *state;
    add_queue_fn(f, "OnMsg", "orders");
    start(f);
    put(f, "orders", "aGVsbG8=", NULL); /* "hello" */
    wait_finished(f, 1);
    assert_int_equal(f->rec.calls[0].kind, NB_TRIGGER_QUEUE);
    assert_string_equal(f->rec.calls[0].fn, "OnMsg");
    assert_string_equal(f->rec.calls[0].data, "hello");
    WAIT_UNTIL(count(f, "orders") == 0);
    assert_int_equal(count(f, "orders-poison"), -1); /* never created */
}

static void test_queue_metadata(void **state)
{
    struct fx *f = *state;
    add_queue_fn(f, "OnMsg", "meta");
    start(f);
    struct nb_msg m;
    put(f, "meta", "aGVsbG8=", &m);
    wait_finished(f, 1);
    json_t *o = parse(f->rec.calls[0].meta);
    assert_int_equal(json_integer_value(json_object_get(o, "DequeueCount")), 1);
    assert_string_equal(json_string_value(json_object_get(o, "Id")), m.id);
    const char *receipt = json_string_value(json_object_get(o, "PopReceipt"));
    assert_non_null(receipt);
    assert_true(strlen(receipt) > 0);
    assert_string_not_equal(receipt, m.pop_receipt); /* the get issued a new one */
    const char *fields[] = { "InsertionTime", "ExpirationTime", "NextVisibleTime" };
    for (size_t i = 0; i < 3; i++) {
        const char *s = json_string_value(json_object_get(o, fields[i]));
        assert_non_null(s);
        nb_time_ms t;
        assert_int_equal(nb_time_parse_iso8601(s, strlen(s), &t), NB_OK);
    }
    const char *exp = json_string_value(json_object_get(o, "ExpirationTime"));
    assert_int_equal(strncmp(exp, "9999-12-31T23:59:59", 19), 0);
    assert_string_equal(json_string_value(json_object_get(o, "QueueTrigger")), "hello");
    json_t *sys = json_object_get(o, "sys");
    assert_string_equal(json_string_value(json_object_get(sys, "MethodName")), "OnMsg");
    assert_non_null(json_string_value(json_object_get(sys, "UtcNow")));
    assert_int_equal(strlen(json_string_value(json_object_get(sys, "RandGuid"))), 36);
    json_decref(o);
}

static void test_queue_base64_fallback_and_none(void **state)
{
    struct fx *f = *state;
    add_queue_fn(f, "OnMsg", "b64");
    f->app.queues.batch_size = 1; /* one at a time: calls come in put order */
    f->app.queues.new_batch_threshold = 0;
    start(f);
    put(f, "b64", "not base64!", NULL);
    wait_finished(f, 1);
    assert_string_equal(f->rec.calls[0].data, "not base64!");
    put(f, "b64", "", NULL); /* empty decodes to empty */
    wait_finished(f, 2);
    assert_int_equal(f->rec.calls[1].len, 0);
    WAIT_UNTIL(count(f, "b64") == 0);
    nb_triggers_stop(f->t);
    f->t = NULL;

    f->app.queues.base64 = false; /* messageEncoding: none */
    start(f);
    put(f, "b64", "aGVsbG8=", NULL);
    wait_finished(f, 3);
    assert_string_equal(f->rec.calls[2].data, "aGVsbG8=");
}

static void test_queue_failure_releases_with_visibility_timeout(void **state)
{
    struct fx *f = *state;
    add_queue_fn(f, "OnMsg", "retry");
    f->app.queues.visibility_timeout_ms = 30000;
    f->rec.fail_first = 1;
    start(f);
    put(f, "retry", "aGk=", NULL);
    wait_finished(f, 1);
    /* Released for 30 s, not held for the 10 min lease. */
    WAIT_UNTIL(visible_at(f, "retry", 31000) == 1);
    assert_int_equal(visible_at(f, "retry", 0), 0);
    assert_int_equal(count(f, "retry"), 1);
    assert_int_equal(rec_get(f, &f->rec.started), 1);

    nb_clock_advance(&f->clock, 31000);
    nb_notify_signal(&f->wake);
    wait_finished(f, 2);
    json_t *o = parse(f->rec.calls[1].meta);
    assert_int_equal(json_integer_value(json_object_get(o, "DequeueCount")), 2);
    json_decref(o);
    WAIT_UNTIL(count(f, "retry") == 0);
}

static void test_queue_poison_after_max_dequeue(void **state)
{
    struct fx *f = *state;
    add_queue_fn(f, "OnMsg", "work");
    f->app.queues.max_dequeue_count = 3;
    f->rec.fail_first = 100;
    start(f);
    put(f, "work", "cG9pc29u", NULL); /* "poison" */
    wait_finished(f, 3);
    WAIT_UNTIL(count(f, "work") == 0);
    WAIT_UNTIL(count(f, "work-poison") == 1);
    struct nb_msg_list l;
    assert_int_equal(nb_store_msg_peek(f->s, ACCT, "work-poison", 32, nb_clock_now(&f->clock), &l),
                     NB_OK);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.items[0].text, "cG9pc29u"); /* the original, undecoded */
    assert_int_equal(l.items[0].expiration_time, NB_TIME_NEVER);
    nb_msg_list_cleanup(&l);
    assert_int_equal(rec_get(f, &f->rec.started), 3);
    for (size_t i = 0; i < 3; i++) assert_string_equal(f->rec.calls[i].data, "poison");
}

static void test_queue_over_dequeued_message_goes_to_poison_unrun(void **state)
{
    struct fx *f = *state;
    add_queue_fn(f, "OnMsg", "crashy");
    f->app.queues.max_dequeue_count = 2;
    /* Claimed twice by "earlier hosts" that died without a verdict. */
    put(f, "crashy", "eA==", NULL);
    for (int i = 0; i < 2; i++) {
        struct nb_msg_list l;
        assert_int_equal(nb_store_msg_get(f->s, ACCT, "crashy", 1, 0, nb_clock_now(&f->clock), &l),
                         NB_OK);
        assert_int_equal(l.n, 1);
        nb_msg_list_cleanup(&l);
    }
    add_queue_fn(f, "Other", "other");
    start(f);
    WAIT_UNTIL(count(f, "crashy-poison") == 1);
    WAIT_UNTIL(count(f, "crashy") == 0);
    put(f, "other", "eQ==", NULL); /* a sync point: the pollers are running */
    wait_finished(f, 1);
    assert_string_equal(f->rec.calls[0].fn, "Other");
}

static void test_queue_put_wakes_backed_off_poller(void **state)
{
    struct fx *f = *state;
    add_queue_fn(f, "OnMsg", "sleepy");
    f->app.queues.max_polling_interval_ms = 60000;
    mkq(f, "sleepy");
    start(f);
    usleep(1500 * 1000); /* let the poller back off to waits of ~1.6 s and more */
    int64_t t0 = mono_ms();
    put(f, "sleepy", "aGk=", NULL);
    wait_started(f, 1);
    int64_t took = mono_ms() - t0;
    assert_true(took < 300);
}

static void test_queue_missing_queue_then_created(void **state)
{
    struct fx *f = *state;
    add_queue_fn(f, "OnMsg", "later");
    start(f); /* the queue does not exist yet: empty polls, no errors */
    put(f, "later", "aGk=", NULL);
    wait_finished(f, 1);
    assert_string_equal(f->rec.calls[0].data, "hi");
}

static void test_queue_lease_renewed_while_running(void **state)
{
    struct fx *f = *state;
    add_queue_fn(f, "Slow", "long");
    f->rec.gate = true;
    start(f);
    put(f, "long", "aGk=", NULL);
    wait_started(f, 1);
    /* 6 min in: past half the 10 min lease, so the poller renews it, which
     * keeps the message hidden beyond the original lease's end. */
    nb_clock_advance(&f->clock, 6 * MIN_MS);
    nb_notify_signal(&f->wake);
    WAIT_UNTIL(visible_at(f, "long", 4 * MIN_MS + 30000) == 0);
    nb_clock_advance(&f->clock, 5 * MIN_MS); /* past the original lease */
    nb_notify_signal(&f->wake);
    assert_int_equal(visible_at(f, "long", 0), 0);
    give_permits(f, 1);
    wait_finished(f, 1);
    /* The delete used the renewed receipt. */
    WAIT_UNTIL(count(f, "long") == 0);
    assert_int_equal(rec_get(f, &f->rec.started), 1);
}

static void test_queue_batch_concurrency(void **state)
{
    struct fx *f = *state;
    add_queue_fn(f, "Par", "many");
    f->app.queues.batch_size = 4;
    f->app.queues.new_batch_threshold = 2;
    f->rec.gate = true;
    for (int i = 0; i < 10; i++) put(f, "many", "aGk=", NULL);
    start(f);
    wait_started(f, 4); /* one batch */
    give_permits(f, 2); /* in-flight drops to the threshold: a new batch */
    wait_started(f, 8);
    assert_int_equal(rec_int(f, &f->rec.max_running), 6); /* batchSize + newBatchThreshold */
    give_permits(f, 100);
    wait_finished(f, 10);
    WAIT_UNTIL(count(f, "many") == 0);
    assert_int_equal(rec_int(f, &f->rec.max_running), 6);
}

static void test_queue_skips_disabled_and_unknown_account(void **state)
{
    struct fx *f = *state;
    add_queue_fn(f, "Off", "offq")->disabled = true;
    add_queue_fn(f, "Away", "awayq")->bindings[0].connection = "Elsewhere";
    add_queue_fn(f, "On", "onq");
    put(f, "offq", "aGk=", NULL);
    put(f, "awayq", "aGk=", NULL);
    put(f, "onq", "aGk=", NULL);
    start(f);
    wait_finished(f, 1);
    WAIT_UNTIL(count(f, "onq") == 0);
    assert_string_equal(f->rec.calls[0].fn, "On");
    assert_int_equal(visible_at(f, "offq", 0), 1);
    assert_int_equal(visible_at(f, "awayq", 0), 1);
}

static void test_stop_waits_for_running_invocation(void **state)
{
    struct fx *f = *state;
    add_queue_fn(f, "Slow", "slowq");
    f->rec.sleep_ms = 300;
    start(f);
    put(f, "slowq", "aGk=", NULL);
    wait_started(f, 1);
    nb_triggers_stop(f->t);
    f->t = NULL;
    assert_int_equal(f->rec.finished, 1);
    assert_int_equal(count(f, "slowq"), 0); /* finished and deleted before stop returned */
    nb_triggers_stop(NULL);
}

static void *stop_thread(void *arg)
{
    struct fx *f = arg;
    nb_triggers_stop(f->t);
    return NULL;
}

static void test_stop_hands_back_unstarted_messages(void **state)
{
    struct fx *f = *state;
    add_queue_fn(f, "Gate", "gq");
    f->app.queues.batch_size = 32;
    f->app.queues.new_batch_threshold = 16; /* 48 in flight, but only 32 workers */
    f->rec.gate = true;
    for (int i = 0; i < 60; i++) put(f, "gq", "aGk=", NULL);
    start(f);
    wait_started(f, 32);
    give_permits(f, 16); /* 16 done: the rest (28) is fetched, 16 of it starts */
    wait_started(f, 48);
    WAIT_UNTIL(visible_at(f, "gq", 0) == 0);
    assert_int_equal(rec_int(f, &f->rec.running), 32);

    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, stop_thread, f), 0);
    /* The 12 fetched but never started are handed back, visible at once. */
    WAIT_UNTIL(visible_at(f, "gq", 0) == 12);
    give_permits(f, 32);
    assert_int_equal(pthread_join(th, NULL), 0);
    f->t = NULL;
    assert_int_equal(f->rec.finished, 48);
    assert_int_equal(count(f, "gq"), 12);
    assert_int_equal(visible_at(f, "gq", 0), 12);
}

/* --- timer triggers ------------------------------------------------------ */

#define EVERY_5_MIN "0 */5 * * * *"

static void test_timer_fires_when_clock_passes_next(void **state)
{
    struct fx *f = *state;
    add_timer_fn(f, "Tick", EVERY_5_MIN, false, true);
    start(f);
    WAIT_UNTIL(has_status(f, "Tick")); /* start-up done: Next saved */
    nb_time_ms next = status_next(f, "Tick");
    assert_true(next > nb_clock_now(&f->clock));
    assert_int_equal(rec_get(f, &f->rec.started), 0);

    nb_clock_advance(&f->clock, next - nb_clock_now(&f->clock) + 50);
    nb_notify_signal(&f->wake);
    wait_finished(f, 1);
    assert_int_equal(f->rec.calls[0].kind, NB_TRIGGER_TIMER);
    assert_string_equal(f->rec.calls[0].fn, "Tick");
    json_t *o = parse(f->rec.calls[0].data);
    assert_true(json_is_false(json_object_get(o, "IsPastDue"))); /* on time (< 1 s late) */
    assert_true(json_is_true(json_object_get(json_object_get(o, "Schedule"), "AdjustForDST")));
    json_t *st = json_object_get(o, "ScheduleStatus");
    assert_string_equal(json_string_value(json_object_get(st, "Last")), "0001-01-01T00:00:00");
    const char *n = json_string_value(json_object_get(st, "Next"));
    nb_time_ms n_ms;
    assert_int_equal(nb_time_parse_iso8601(n, strlen(n), &n_ms), NB_OK);
    assert_int_equal(n_ms, next + 5 * MIN_MS);
    assert_non_null(json_string_value(json_object_get(st, "LastUpdated")));
    json_decref(o);
    o = parse(f->rec.calls[0].meta);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(o, "sys"), "MethodName")), "Tick");
    json_decref(o);
    WAIT_UNTIL(status_next(f, "Tick") == next + 5 * MIN_MS);

    /* A jump over several occurrences runs once, late, and past due. */
    nb_clock_advance(&f->clock, 23 * MIN_MS);
    nb_notify_signal(&f->wake);
    wait_finished(f, 2);
    WAIT_UNTIL(status_next(f, "Tick") > nb_clock_now(&f->clock));
    assert_int_equal(rec_get(f, &f->rec.started), 2);
    o = parse(f->rec.calls[1].data);
    assert_true(json_is_true(json_object_get(o, "IsPastDue")));
    json_decref(o);
}

static void test_timer_past_due_on_restart(void **state)
{
    struct fx *f = *state;
    add_timer_fn(f, "Tick", EVERY_5_MIN, false, true);
    nb_time_ms now = nb_clock_now(&f->clock);
    nb_time_ms missed = now / (5 * MIN_MS) * (5 * MIN_MS) - 60 * MIN_MS; /* an occurrence */
    set_status(f, "Tick", missed - 5 * MIN_MS, missed);
    start(f);
    wait_finished(f, 1);
    json_t *o = parse(f->rec.calls[0].data);
    assert_true(json_is_true(json_object_get(o, "IsPastDue")));
    json_decref(o);
    WAIT_UNTIL(status_next(f, "Tick") > now);
    char *v = status_text(f, "Tick");
    o = parse(v);
    const char *last = json_string_value(json_object_get(o, "Last"));
    nb_time_ms last_ms;
    assert_int_equal(nb_time_parse_iso8601(last, strlen(last), &last_ms), NB_OK);
    assert_int_equal(last_ms, missed); /* Last = the occurrence that was made up */
    json_decref(o);
    free(v);
    assert_int_equal(rec_get(f, &f->rec.started), 1);
}

static void test_timer_run_on_startup(void **state)
{
    struct fx *f = *state;
    add_timer_fn(f, "Boot", EVERY_5_MIN, true, true);
    start(f);
    wait_finished(f, 1);
    json_t *o = parse(f->rec.calls[0].data);
    assert_true(json_is_false(json_object_get(o, "IsPastDue")));
    json_decref(o);
    WAIT_UNTIL(has_status(f, "Boot"));
    assert_int_equal(rec_get(f, &f->rec.started), 1);
}

static void test_timer_run_on_startup_and_past_due_run_once(void **state)
{
    struct fx *f = *state;
    add_timer_fn(f, "Both", EVERY_5_MIN, true, true);
    nb_time_ms now = nb_clock_now(&f->clock);
    set_status(f, "Both", now - 20 * MIN_MS, now - 15 * MIN_MS);
    start(f);
    wait_finished(f, 1);
    WAIT_UNTIL(status_next(f, "Both") > now);
    assert_int_equal(rec_get(f, &f->rec.started), 1);
    json_t *o = parse(f->rec.calls[0].data);
    assert_true(json_is_true(json_object_get(o, "IsPastDue")));
    json_decref(o);
}

static void test_timer_without_monitor_ignores_status(void **state)
{
    struct fx *f = *state;
    add_timer_fn(f, "NoMon", EVERY_5_MIN, false, false);
    add_timer_fn(f, "Sync", EVERY_5_MIN, false, true); /* later in order: a sync point */
    nb_time_ms now = nb_clock_now(&f->clock);
    set_status(f, "NoMon", now - 20 * MIN_MS, now - 15 * MIN_MS);
    start(f);
    WAIT_UNTIL(has_status(f, "Sync"));
    assert_int_equal(rec_get(f, &f->rec.started), 0);
}

static void test_timer_invalid_schedule_skipped(void **state)
{
    struct fx *f = *state;
    add_timer_fn(f, "Bad", "not a schedule", true, true);
    add_timer_fn(f, "Good", EVERY_5_MIN, false, true);
    add_timer_fn(f, "Off", EVERY_5_MIN, true, true)->disabled = true;
    start(f);
    WAIT_UNTIL(has_status(f, "Good"));
    assert_false(has_status(f, "Bad"));
    assert_false(has_status(f, "Off"));
    assert_int_equal(rec_get(f, &f->rec.started), 0);
}

static void test_timer_failure_not_retried(void **state)
{
    struct fx *f = *state;
    add_timer_fn(f, "Fails", EVERY_5_MIN, true, true);
    f->rec.fail_first = 100;
    start(f);
    wait_finished(f, 1);
    WAIT_UNTIL(has_status(f, "Fails"));
    nb_time_ms next = status_next(f, "Fails");
    assert_true(next > nb_clock_now(&f->clock));
    assert_int_equal(rec_get(f, &f->rec.started), 1);
}

static void test_start_with_nothing_to_run(void **state)
{
    struct fx *f = *state;
    start(f);
    nb_triggers_stop(f->t);
    f->t = NULL;
    struct nb_triggers *t = NULL;
    struct nb_triggers_config bad = { 0 };
    assert_int_equal(nb_triggers_start(&bad, &t), NB_ERR_INVALID);
    assert_null(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_queue_success_deletes),
        T(test_queue_metadata),
        T(test_queue_base64_fallback_and_none),
        T(test_queue_failure_releases_with_visibility_timeout),
        T(test_queue_poison_after_max_dequeue),
        T(test_queue_over_dequeued_message_goes_to_poison_unrun),
        T(test_queue_put_wakes_backed_off_poller),
        T(test_queue_missing_queue_then_created),
        T(test_queue_lease_renewed_while_running),
        T(test_queue_batch_concurrency),
        T(test_queue_skips_disabled_and_unknown_account),
        T(test_stop_waits_for_running_invocation),
        T(test_stop_hands_back_unstarted_messages),
        T(test_timer_fires_when_clock_passes_next),
        T(test_timer_past_due_on_restart),
        T(test_timer_run_on_startup),
        T(test_timer_run_on_startup_and_past_due_run_once),
        T(test_timer_without_monitor_ignores_status),
        T(test_timer_invalid_schedule_skipped),
        T(test_timer_failure_not_retried),
        T(test_start_with_nothing_to_run),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
