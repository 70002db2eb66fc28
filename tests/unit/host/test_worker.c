/* The native worker pool end to end (src/host/worker.c, worker_main.c):
 * real worker processes running a small function library compiled here
 * with `cc`. Needs the built nimbus binary: $NIMBUS_BIN, or ../../nimbus
 * next to this test (build/tests/host/ -> build/nimbus); every test is
 * skipped when neither exists or cc cannot build the library. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "core/clock.h"
#include "host/worker.h"

static const char fn_source[] =
    "#include <nimbus/function.h>\n"
    "#include <stdio.h>\n"
    "#include <stdlib.h>\n"
    "#include <string.h>\n"
    "int hello(struct nimbus_ctx *ctx) {\n"
    "    nimbus_set_header(ctx, \"Content-Type\", \"text/plain\");\n"
    "    nimbus_write(ctx, \"hello\", 5);\n"
    "    return 0;\n"
    "}\n"
    "int echo(struct nimbus_ctx *ctx) {\n"
    "    char b[512];\n"
    "    size_t ilen = 0;\n"
    "    const char *in = nimbus_input(ctx, \"row\", &ilen);\n"
    "    const char *s = nimbus_setting(ctx, \"MY_SETTING\");\n"
    "    int n = snprintf(b, sizeof b, \"%s|%s|%s|%s|%s|%s|%s|%s|%s|\", ctx->function_name,\n"
    "        ctx->invocation_id, ctx->trigger, ctx->req->method, nimbus_query(ctx, \"name\"),\n"
    "        nimbus_header(ctx, \"x-test\"), nimbus_route_param(ctx, \"id\"), in, s ? s : \"-\");\n"
    "    nimbus_set_status(ctx, 201);\n"
    "    nimbus_write(ctx, b, (size_t)n);\n"
    "    nimbus_write(ctx, ctx->req->body, ctx->req->body_len);\n"
    "    nimbus_log(ctx, NIMBUS_LOG_INFO, \"seen %d\\n\", 42);\n"
    "    if (nimbus_output(ctx, \"OutQ\", \"m1\", 2)) return 10;\n"
    "    if (nimbus_output_delayed(ctx, \"outq\", \"m2\", 2, 5000)) return 11;\n"
    "    if (nimbus_output(ctx, \"nosuch\", \"x\", 1) != -1) return 12;\n"
    "    if (nimbus_output_delayed(ctx, \"tab\", \"{}\", 2, 1) != -1) return 13;\n"
    "    if (nimbus_output(ctx, \"res\", \"!\", 1)) return 14;\n"
    "    return 0;\n"
    "}\n"
    "int message(struct nimbus_ctx *ctx) {\n"
    "    if (ctx->req) return 1;\n"
    "    return nimbus_output(ctx, \"outq\", ctx->trigger_data, ctx->trigger_len);\n"
    "}\n"
    "int fails(struct nimbus_ctx *ctx) { nimbus_log(ctx, NIMBUS_LOG_WARN, \"no\"); return 5; }\n"
    "int segv(struct nimbus_ctx *ctx) { (void)ctx; volatile int *p = 0; *p = 1; return 0; }\n"
    "int quits(struct nimbus_ctx *ctx) { (void)ctx; exit(3); }\n"
    "int spins(struct nimbus_ctx *ctx) { (void)ctx; for (;;) {} }\n";

struct fixture {
    char dir[64];
    char so[128];
    char exe[PATH_MAX + 32];
};

static struct nb_binding bindings[] = {
    { .type = NB_BIND_HTTP_TRIGGER, .name = "req" },
    { .type = NB_BIND_HTTP, .out = true, .name = "res" },
    { .type = NB_BIND_QUEUE, .out = true, .name = "outq" },
    { .type = NB_BIND_TABLE, .out = true, .name = "tab" },
};

static bool find_exe(char *out, size_t n)
{
    const char *env = getenv("NIMBUS_BIN");
    if (env && *env) {
        snprintf(out, n, "%s", env);
        return access(out, X_OK) == 0;
    }
    char self[PATH_MAX - 32];
    ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (len <= 0) return false;
    self[len] = '\0';
    char *slash = strrchr(self, '/');
    if (!slash) return false;
    *slash = '\0';
    snprintf(out, n, "%s/../../nimbus", self);
    return access(out, X_OK) == 0;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    *state = NULL;
    snprintf(f->dir, sizeof(f->dir), "/tmp/nb-test-worker-XXXXXX");
    if (!find_exe(f->exe, sizeof(f->exe)) || !mkdtemp(f->dir)) {
        free(f);
        return 0;
    }
    char src[128], cmd[512];
    snprintf(src, sizeof(src), "%s/fns.c", f->dir);
    snprintf(f->so, sizeof(f->so), "%s/fns.so", f->dir);
    FILE *fp = fopen(src, "w");
    if (fp) {
        fputs(fn_source, fp);
        fclose(fp);
    }
    const char *inc = getenv("NIMBUS_INCLUDE") ? getenv("NIMBUS_INCLUDE") : "include";
    snprintf(cmd, sizeof(cmd), "cc -shared -fPIC -I%s -o %s %s 2>/dev/null", inc, f->so, src);
    if (!fp || system(cmd) != 0) {
        free(f);
        return 0;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    if (!f) return 0;
    char path[160];
    snprintf(path, sizeof(path), "%s/fns.c", f->dir);
    unlink(path);
    unlink(f->so);
    rmdir(f->dir);
    free(f);
    return 0;
}

static struct nb_log quiet_log = { NB_LOG_TEXT, true };

static struct nb_worker_pool *start_pool(struct fixture *f, size_t min, size_t max,
                                         int64_t timeout_ms)
{
    /* Under ASan (make test SAN=1) a SIGSEGV must stay a SIGSEGV. */
    static char *env[] = { "MY_SETTING=on", "ASAN_OPTIONS=handle_segv=0", NULL };
    struct nb_worker_pool_config cfg = {
        .exe = f->exe, .min_workers = min, .max_workers = max, .timeout_ms = timeout_ms,
        .env = env, .log = &quiet_log,
    };
    struct nb_worker_pool *pool = NULL;
    assert_int_equal(nb_worker_pool_start(&cfg, &pool), NB_OK);
    return pool;
}

static struct nb_function make_fn(struct fixture *f, const char *entry)
{
    struct nb_function fn = { .name = "fn", .script_file = f->so, .entry_point = (char *)entry,
                              .bindings = bindings, .nbindings = 4 };
    return fn;
}

/* Invoke `entry` as a bare HTTP GET; res is initialised here. */
static enum nb_err call(struct nb_worker_pool *pool, struct fixture *f, const char *entry,
                        struct nb_inv_result *res)
{
    struct nb_function fn = make_fn(f, entry);
    struct nb_invocation inv = { .fn = &fn, .id = "id-1", .kind = NB_TRIGGER_HTTP,
                                 .method = "GET", .url = "http://h/api/fn", .path = "/api/fn",
                                 .raw_query = "", .metadata_json = "{}" };
    nb_inv_result_init(res);
    return nb_worker_invoke(pool, &inv, res);
}

static void expect_hello(struct nb_worker_pool *pool, struct fixture *f)
{
    struct nb_inv_result r;
    assert_int_equal(call(pool, f, "hello", &r), NB_OK);
    assert_true(r.ok);
    assert_false(r.crashed);
    assert_true(r.has_http);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.nheaders, 1);
    assert_string_equal(r.headers[0].name, "Content-Type");
    assert_string_equal(nb_buf_cstr(&r.body), "hello");
    nb_inv_result_cleanup(&r);
}

#define FIXTURE()                                                                        \
    struct fixture *f = *state;                                                          \
    if (!f) skip()

static void test_hello(void **state)
{
    FIXTURE();
    struct nb_worker_pool *pool = start_pool(f, 1, 2, 5000);
    for (int i = 0; i < 100; i++) expect_hello(pool, f);
    nb_worker_pool_stop(pool);
}

static void test_request_and_outputs(void **state)
{
    FIXTURE();
    struct nb_worker_pool *pool = start_pool(f, 1, 1, 5000);
    struct nb_function fn = make_fn(f, "echo");
    struct nb_kv q[] = { { "name", "bob", 3 } };
    struct nb_kv h[] = { { "X-Test", "hv", 2 } };
    struct nb_kv p[] = { { "id", "42", 2 } };
    struct nb_kv in[] = { { "row", "{}", 2 } };
    struct nb_invocation inv = {
        .fn = &fn, .id = "inv-7", .kind = NB_TRIGGER_HTTP, .method = "POST",
        .url = "http://h/api/e/42?name=bob", .path = "/api/e/42", .raw_query = "name=bob",
        .params = p, .nparams = 1, .query = q, .nquery = 1, .headers = h, .nheaders = 1,
        .body = "B\0Y", .body_len = 3, .metadata_json = "{}", .inputs = in, .ninputs = 1,
    };
    struct nb_inv_result r;
    nb_inv_result_init(&r);
    assert_int_equal(nb_worker_invoke(pool, &inv, &r), NB_OK);
    assert_true(r.ok);
    assert_true(r.has_http);
    assert_int_equal(r.status, 201);
    static const char want[] = "fn|inv-7|httpTrigger|POST|bob|hv|42|{}|on|B\0Y!";
    assert_int_equal(r.body.len, sizeof(want) - 1);
    assert_memory_equal(r.body.data, want, sizeof(want) - 1);
    assert_int_equal(r.noutputs, 2);
    assert_string_equal(r.outputs[0].binding, "outq"); /* the declared spelling */
    assert_string_equal(r.outputs[0].value, "m1");
    assert_int_equal(r.outputs[0].visibility_ms, 0);
    assert_int_equal(r.outputs[1].visibility_ms, 5000);
    assert_int_equal(r.nlogs, 1);
    assert_string_equal(r.logs[0], "[info] seen 42");
    nb_inv_result_cleanup(&r);

    /* A queue message, no HTTP request. */
    fn = make_fn(f, "message");
    struct nb_invocation qinv = { .fn = &fn, .id = "inv-8", .kind = NB_TRIGGER_QUEUE,
                                  .trigger_data = "payload", .trigger_len = 7,
                                  .metadata_json = "{}" };
    nb_inv_result_init(&r);
    assert_int_equal(nb_worker_invoke(pool, &qinv, &r), NB_OK);
    assert_true(r.ok);
    assert_false(r.has_http);
    assert_int_equal(r.noutputs, 1);
    assert_string_equal(r.outputs[0].value, "payload");
    nb_inv_result_cleanup(&r);
    nb_worker_pool_stop(pool);
}

static void test_function_failures(void **state)
{
    FIXTURE();
    struct nb_worker_pool *pool = start_pool(f, 1, 1, 5000);
    struct nb_inv_result r;
    assert_int_equal(call(pool, f, "fails", &r), NB_OK);
    assert_false(r.ok);
    assert_false(r.crashed);
    assert_string_equal(r.error, "function returned 5");
    assert_int_equal(r.nlogs, 1);
    nb_inv_result_cleanup(&r);

    assert_int_equal(call(pool, f, "no_such_symbol", &r), NB_OK);
    assert_false(r.ok);
    assert_false(r.crashed);
    assert_non_null(strstr(r.error, "no_such_symbol"));
    nb_inv_result_cleanup(&r);

    struct nb_function fn = make_fn(f, "hello");
    fn.script_file = "/nonexistent/x.so";
    struct nb_invocation inv = { .fn = &fn, .kind = NB_TRIGGER_MANUAL, .metadata_json = "{}" };
    nb_inv_result_init(&r);
    assert_int_equal(nb_worker_invoke(pool, &inv, &r), NB_OK);
    assert_false(r.ok);
    assert_false(r.crashed);
    assert_non_null(strstr(r.error, "/nonexistent/x.so"));
    nb_inv_result_cleanup(&r);
    expect_hello(pool, f); /* the same worker still serves */
    nb_worker_pool_stop(pool);
}

static void test_crash_is_contained(void **state)
{
    FIXTURE();
    struct nb_worker_pool *pool = start_pool(f, 1, 1, 5000);
    struct nb_inv_result r;
    assert_int_equal(call(pool, f, "segv", &r), NB_OK);
    assert_false(r.ok);
    assert_true(r.crashed);
    assert_string_equal(r.error, "worker crashed: killed by signal 11 (Segmentation fault)");
    nb_inv_result_cleanup(&r);
    expect_hello(pool, f);

    assert_int_equal(call(pool, f, "quits", &r), NB_OK);
    assert_true(r.crashed);
    assert_string_equal(r.error, "worker crashed: exited with status 3");
    nb_inv_result_cleanup(&r);
    expect_hello(pool, f);
    nb_worker_pool_stop(pool);
}

static void test_timeout_kills(void **state)
{
    FIXTURE();
    struct nb_worker_pool *pool = start_pool(f, 1, 1, 300);
    struct nb_inv_result r;
    int64_t t0 = nb_clock_mono_us();
    assert_int_equal(call(pool, f, "spins", &r), NB_OK);
    int64_t took = nb_clock_mono_us() - t0;
    assert_false(r.ok);
    assert_true(r.crashed);
    assert_string_equal(r.error, "function timed out after 300 ms");
    assert_true(took >= 300000 && took < 5000000);
    nb_inv_result_cleanup(&r);
    expect_hello(pool, f);
    nb_worker_pool_stop(pool);
}

struct load {
    struct nb_worker_pool *pool;
    struct fixture *f;
    int ok;
};

static void *load_thread(void *arg)
{
    struct load *l = arg;
    for (int i = 0; i < 200; i++) {
        struct nb_inv_result r;
        if (call(l->pool, l->f, "hello", &r) == NB_OK && r.ok &&
            strcmp(nb_buf_cstr(&r.body), "hello") == 0)
            l->ok++;
        nb_inv_result_cleanup(&r);
    }
    return NULL;
}

static void test_concurrent_callers(void **state)
{
    FIXTURE();
    /* More callers than workers: they queue for the two processes. */
    struct nb_worker_pool *pool = start_pool(f, 0, 2, 5000);
    struct load l[6];
    pthread_t t[6];
    for (int i = 0; i < 6; i++) {
        l[i] = (struct load){ pool, f, 0 };
        assert_int_equal(pthread_create(&t[i], NULL, load_thread, &l[i]), 0);
    }
    for (int i = 0; i < 6; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(l[i].ok, 200);
    }
    nb_worker_pool_stop(pool);
}

struct stuck {
    struct nb_worker_pool *pool;
    struct fixture *f;
    enum nb_err rc;
};

static void *stuck_thread(void *arg)
{
    struct stuck *s = arg;
    struct nb_inv_result r;
    s->rc = call(s->pool, s->f, "spins", &r);
    nb_inv_result_cleanup(&r);
    return NULL;
}

static void test_stop_with_busy_worker(void **state)
{
    FIXTURE();
    struct nb_worker_pool *pool = start_pool(f, 1, 1, -1);
    struct stuck s = { pool, f, NB_OK };
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, stuck_thread, &s), 0);
    usleep(100000);
    nb_worker_pool_stop(pool);
    pthread_join(t, NULL);
    assert_int_equal(s.rc, NB_ERR_STOPPED);
    int st;
    assert_int_equal(waitpid(-1, &st, WNOHANG), -1); /* every child reaped */
}

static void test_bad_executable(void **state)
{
    FIXTURE();
    (void)f;
    struct nb_worker_pool_config cfg = { .exe = "/bin/true", .min_workers = 1,
                                         .max_workers = 1, .timeout_ms = -1,
                                         .log = &quiet_log };
    struct nb_worker_pool *pool = NULL;
    assert_int_equal(nb_worker_pool_start(&cfg, &pool), NB_ERR_IO);
    assert_null(pool);
    cfg.exe = "/nonexistent/nimbus";
    assert_int_equal(nb_worker_pool_start(&cfg, &pool), NB_ERR_NOT_FOUND);

    /* Lazily started: the invocation says why instead of waiting forever. */
    cfg.exe = "/bin/true";
    cfg.min_workers = 0;
    assert_int_equal(nb_worker_pool_start(&cfg, &pool), NB_OK);
    struct nb_inv_result r;
    assert_int_equal(call(pool, f, "hello", &r), NB_OK);
    assert_false(r.ok);
    assert_non_null(strstr(r.error, "cannot start a native worker"));
    nb_inv_result_cleanup(&r);
    nb_worker_pool_stop(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hello),
        cmocka_unit_test(test_request_and_outputs),
        cmocka_unit_test(test_function_failures),
        cmocka_unit_test(test_crash_is_contained),
        cmocka_unit_test(test_timeout_kills),
        cmocka_unit_test(test_concurrent_callers),
        cmocka_unit_test(test_stop_with_busy_worker),
        cmocka_unit_test(test_bad_executable),
    };
    return cmocka_run_group_tests_name("host/worker", tests, setup, teardown);
}
