/* Function-app loader: host.json defaults, forms and environment overrides,
 * local.settings.json, function.json validation (each failure skips one
 * function with one problem), %SETTING% expansion, worker kinds, sorting.
 * Every test builds its app in a fresh mkdtemp folder and removes it. */
/* cmocka needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/mem.h"
#include "host/app.h"

#define CUSTOM_HOST "{\"version\":\"2.0\",\"customHandler\":{\"description\":{\"defaultExecutablePath\":\"handler\"}}}"
#define HTTP_FN "{\"bindings\":[{\"type\":\"httpTrigger\",\"direction\":\"in\",\"name\":\"req\"}," \
                "{\"type\":\"http\",\"direction\":\"out\",\"name\":\"res\"}]}"

/* ---- fixtures ----------------------------------------------------------- */

static char *mkapp(void)
{
    char tmpl[] = "/tmp/nb_test_app_XXXXXX";
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return nb_strdup(d);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void rmapp(char *dir)
{
    assert_int_equal(nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS), 0);
    free(dir);
}

/* Write `content` to dir/rel, creating one level of parent folder. */
static void put(const char *dir, const char *rel, const char *content)
{
    char *path = nb_asprintf("%s/%s", dir, rel);
    char *slash = strrchr(path, '/');
    if (slash > path + strlen(dir)) {
        *slash = '\0';
        mkdir(path, 0755);
        *slash = '/';
    }
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
    free(path);
}

static void fn(const char *dir, const char *name, const char *json)
{
    char *rel = nb_asprintf("%s/function.json", name);
    put(dir, rel, json);
    free(rel);
}

static struct nb_app *load(const char *dir)
{
    struct nb_app *app = NULL;
    char *err = NULL;
    enum nb_err rc = nb_app_load(dir, &app, &err);
    if (rc) fprintf(stderr, "load: %s\n", err ? err : "?");
    assert_int_equal(rc, NB_OK);
    assert_null(err);
    assert_non_null(app);
    return app;
}

static void dump_problems(const struct nb_app *app)
{
    for (size_t i = 0; i < app->nproblems; i++) fprintf(stderr, "  problem: %s\n", app->problems[i]);
}

/* The number of problems containing `needle`. */
static size_t problems_with(const struct nb_app *app, const char *needle)
{
    size_t n = 0;
    for (size_t i = 0; i < app->nproblems; i++)
        if (strstr(app->problems[i], needle)) n++;
    return n;
}

static void assert_one_problem(const struct nb_app *app, const char *needle)
{
    if (problems_with(app, needle) != 1 || app->nproblems != 1) dump_problems(app);
    assert_int_equal(app->nproblems, 1);
    assert_int_equal(problems_with(app, needle), 1);
}

/* ---- host.json ---------------------------------------------------------- */

static void test_defaults_without_host_json(void **state)
{
    (void)state;
    char *dir = mkapp();
    struct nb_app *app = load(dir);
    char real[PATH_MAX];
    assert_non_null(realpath(dir, real));
    assert_string_equal(app->root, real);
    assert_string_equal(app->route_prefix, "api");
    assert_int_equal(app->function_timeout_ms, 300000);
    assert_int_equal(app->queues.batch_size, 16);
    assert_int_equal(app->queues.new_batch_threshold, 8);
    assert_int_equal(app->queues.max_polling_interval_ms, 2000);
    assert_int_equal(app->queues.visibility_timeout_ms, 0);
    assert_int_equal(app->queues.max_dequeue_count, 5);
    assert_true(app->queues.base64);
    assert_null(app->custom.executable);
    assert_int_equal(app->custom.narguments, 0);
    assert_string_equal(app->custom.working_dir, real);
    assert_false(app->custom.forwarding);
    assert_int_equal(app->local_http_port, 0);
    assert_int_equal(app->ncors_origins, 0);
    assert_int_equal(app->nsettings, 0);
    assert_int_equal(app->nfunctions, 0);
    assert_int_equal(app->nproblems, 0);
    nb_app_free(app);
    nb_app_free(NULL);
    rmapp(dir);
}

static void test_not_a_directory(void **state)
{
    (void)state;
    char *dir = mkapp();
    put(dir, "file.txt", "x");
    char *file = nb_asprintf("%s/file.txt", dir);
    char *missing = nb_asprintf("%s/nope", dir);
    struct nb_app *app = (struct nb_app *)1;
    char *err = NULL;
    assert_int_equal(nb_app_load(file, &app, &err), NB_ERR_NOT_FOUND);
    assert_null(app);
    assert_non_null(err);
    free(err);
    assert_int_equal(nb_app_load(missing, &app, NULL), NB_ERR_NOT_FOUND);
    assert_null(app);
    free(file);
    free(missing);
    rmapp(dir);
}

static void expect_invalid_host(const char *host_json, const char *needle)
{
    char *dir = mkapp();
    put(dir, "host.json", host_json);
    struct nb_app *app = (struct nb_app *)1;
    char *err = NULL;
    assert_int_equal(nb_app_load(dir, &app, &err), NB_ERR_INVALID);
    assert_null(app);
    assert_non_null(err);
    assert_true(strncmp(err, "host.json: ", 11) == 0);
    if (!strstr(err, needle)) fprintf(stderr, "err: %s\n", err);
    assert_non_null(strstr(err, needle));
    free(err);
    rmapp(dir);
}

static void test_host_json_invalid(void **state)
{
    (void)state;
    expect_invalid_host("{\"version\":\"1.0\"}", "\"1.0\"");
    expect_invalid_host("{\"version\":2}", "version 2 ");
    expect_invalid_host("{\"extensions\":{}}", "'version'");
    expect_invalid_host("{\n\"version\": \"2.0\",\n,}", "line 3");
    expect_invalid_host("[]", "not a JSON object");
}

static void test_route_prefix(void **state)
{
    (void)state;
    const char *cases[][2] = {
        {"{\"version\":\"2.0\",\"extensions\":{\"http\":{\"routePrefix\":\"\"}}}", ""},
        {"{\"version\":\"2.0\",\"extensions\":{\"http\":{\"routePrefix\":\"/v1/\"}}}", "v1"},
        {"{\"version\":\"2.0\",\"extensions\":{\"http\":{\"routePrefix\":\"my/api\"}}}", "my/api"},
        {"{\"version\":\"2.0\",\"Extensions\":{\"HTTP\":{\"RoutePrefix\":\"ci\"}}}", "ci"},
        {"{\"version\":\"2.0\",\"extensions\":{\"http\":{\"routePrefix\":\"/\"}}}", ""},
        {"{\"version\":\"2.0\",\"extensions\":{\"http\":{\"routePrefix\":null}}}", "api"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *dir = mkapp();
        put(dir, "host.json", cases[i][0]);
        struct nb_app *app = load(dir);
        assert_string_equal(app->route_prefix, cases[i][1]);
        assert_int_equal(app->nproblems, 0);
        nb_app_free(app);
        rmapp(dir);
    }
}

static int64_t timeout_of(const char *value, size_t *nproblems)
{
    char *dir = mkapp();
    char *host = nb_asprintf("{\"version\":\"2.0\",\"functionTimeout\":%s}", value);
    put(dir, "host.json", host);
    free(host);
    struct nb_app *app = load(dir);
    int64_t t = app->function_timeout_ms;
    *nproblems = app->nproblems;
    if (*nproblems) assert_true(strncmp(app->problems[0], "host.json: functionTimeout", 26) == 0);
    nb_app_free(app);
    rmapp(dir);
    return t;
}

static void test_function_timeout_forms(void **state)
{
    (void)state;
    size_t np;
    assert_int_equal(timeout_of("\"00:10:00\"", &np), 600000);
    assert_int_equal(np, 0);
    assert_int_equal(timeout_of("\"1.02:03:04\"", &np), ((26 * 60 + 3) * 60 + 4) * 1000LL);
    assert_int_equal(np, 0);
    assert_int_equal(timeout_of("\"00:00:01.5\"", &np), 1500);
    assert_int_equal(np, 0);
    assert_int_equal(timeout_of("\"0:30\"", &np), 30 * 60 * 1000);
    assert_int_equal(np, 0);
    assert_int_equal(timeout_of("\"-1\"", &np), -1);
    assert_int_equal(np, 0);
    assert_int_equal(timeout_of("-1", &np), -1);
    assert_int_equal(np, 0);
    /* bad forms keep the default and are reported */
    assert_int_equal(timeout_of("\"ten minutes\"", &np), 300000);
    assert_int_equal(np, 1);
    assert_int_equal(timeout_of("\"25:00:00\"", &np), 300000);
    assert_int_equal(np, 1);
    assert_int_equal(timeout_of("\"00:61:00\"", &np), 300000);
    assert_int_equal(np, 1);
    assert_int_equal(timeout_of("\"00:00:00.5\"", &np), 300000);
    assert_int_equal(np, 1);
    assert_int_equal(timeout_of("\"00:10:00x\"", &np), 300000);
    assert_int_equal(np, 1);
    assert_int_equal(timeout_of("{}", &np), 300000);
    assert_int_equal(np, 1);
}

static void test_queues_config(void **state)
{
    (void)state;
    char *dir = mkapp();
    put(dir, "host.json",
        "{\"version\":\"2.0\",\"extensions\":{\"queues\":{\"batchSize\":8,"
        "\"maxPollingInterval\":\"00:00:05\",\"visibilityTimeout\":\"00:00:30\","
        "\"maxDequeueCount\":3,\"messageEncoding\":\"None\"}}}");
    struct nb_app *app = load(dir);
    assert_int_equal(app->nproblems, 0);
    assert_int_equal(app->queues.batch_size, 8);
    assert_int_equal(app->queues.new_batch_threshold, 4);
    assert_int_equal(app->queues.max_polling_interval_ms, 5000);
    assert_int_equal(app->queues.visibility_timeout_ms, 30000);
    assert_int_equal(app->queues.max_dequeue_count, 3);
    assert_false(app->queues.base64);
    nb_app_free(app);

    put(dir, "host.json",
        "{\"version\":\"2.0\",\"extensions\":{\"queues\":{\"newBatchThreshold\":0,"
        "\"maxPollingInterval\":1500,\"messageEncoding\":\"BASE64\",\"visibilityTimeout\":250}}}");
    app = load(dir);
    assert_int_equal(app->nproblems, 0);
    assert_int_equal(app->queues.batch_size, 16);
    assert_int_equal(app->queues.new_batch_threshold, 0);
    assert_int_equal(app->queues.max_polling_interval_ms, 1500);
    assert_int_equal(app->queues.visibility_timeout_ms, 250);
    assert_true(app->queues.base64);
    nb_app_free(app);
    rmapp(dir);
}

static void test_queues_config_out_of_range(void **state)
{
    (void)state;
    char *dir = mkapp();
    put(dir, "host.json",
        "{\"version\":\"2.0\",\"extensions\":{\"queues\":{\"batchSize\":64,"
        "\"maxPollingInterval\":50,\"visibilityTimeout\":\"soon\",\"maxDequeueCount\":0,"
        "\"messageEncoding\":\"hex\"}}}");
    struct nb_app *app = load(dir);
    assert_int_equal(app->nproblems, 5);
    assert_int_equal(problems_with(app, "host.json: extensions.queues.batchSize"), 1);
    assert_int_equal(problems_with(app, "host.json: extensions.queues.maxPollingInterval"), 1);
    assert_int_equal(problems_with(app, "host.json: extensions.queues.visibilityTimeout"), 1);
    assert_int_equal(problems_with(app, "host.json: extensions.queues.maxDequeueCount"), 1);
    assert_int_equal(problems_with(app, "host.json: extensions.queues.messageEncoding"), 1);
    assert_int_equal(app->queues.batch_size, 16);
    assert_int_equal(app->queues.new_batch_threshold, 8);
    assert_int_equal(app->queues.max_polling_interval_ms, 2000);
    assert_int_equal(app->queues.visibility_timeout_ms, 0);
    assert_int_equal(app->queues.max_dequeue_count, 5);
    assert_true(app->queues.base64);
    nb_app_free(app);

    put(dir, "host.json", "{\"version\":\"2.0\",\"extensions\":{\"queues\":{\"batchSize\":0}}}");
    app = load(dir);
    assert_one_problem(app, "1..32");
    assert_int_equal(app->queues.batch_size, 16);
    nb_app_free(app);
    rmapp(dir);
}

static void test_env_override(void **state)
{
    (void)state;
    char *dir = mkapp();
    put(dir, "host.json",
        "{\"version\":\"2.0\",\"functionTimeout\":\"00:01:00\","
        "\"extensions\":{\"http\":{\"routePrefix\":\"api\"},\"queues\":{\"batchSize\":8}}}");
    setenv("AzureFunctionsJobHost__extensions__http__routePrefix", "/edge/", 1);
    setenv("AzureFunctionsJobHost__functionTimeout", "00:02:00", 1);
    setenv("AzureFunctionsJobHost__extensions__queues__batchSize", "4", 1);
    setenv("AZUREFUNCTIONSJOBHOST__EXTENSIONS__QUEUES__MAXDEQUEUECOUNT", "2", 1);
    setenv("AzureFunctionsJobHost__extensions__queues__messageEncoding", "none", 1);
    struct nb_app *app = load(dir);
    unsetenv("AzureFunctionsJobHost__extensions__http__routePrefix");
    unsetenv("AzureFunctionsJobHost__functionTimeout");
    unsetenv("AZUREFUNCTIONSJOBHOST__EXTENSIONS__QUEUES__MAXDEQUEUECOUNT");
    unsetenv("AzureFunctionsJobHost__extensions__queues__messageEncoding");
    assert_int_equal(app->nproblems, 0);
    assert_string_equal(app->route_prefix, "edge");
    assert_int_equal(app->function_timeout_ms, 120000);
    assert_int_equal(app->queues.batch_size, 4);
    assert_int_equal(app->queues.new_batch_threshold, 2);
    assert_int_equal(app->queues.max_dequeue_count, 2);
    assert_false(app->queues.base64);
    nb_app_free(app);

    /* a bad override is reported under the variable's name; it replaced
     * the host.json value, so the built-in default applies */
    setenv("AzureFunctionsJobHost__extensions__queues__batchSize", "lots", 1);
    app = load(dir);
    unsetenv("AzureFunctionsJobHost__extensions__queues__batchSize");
    assert_one_problem(app, "AzureFunctionsJobHost__extensions__queues__batchSize");
    assert_int_equal(app->queues.batch_size, 16);
    nb_app_free(app);

    rmapp(dir);

    /* overrides work without host.json, and from local.settings.json Values */
    dir = mkapp();
    put(dir, "local.settings.json",
        "{\"Values\":{\"AzureFunctionsJobHost__extensions__http__routePrefix\":\"\","
        "\"AzureFunctionsJobHost__extensions__queues__maxPollingInterval\":\"00:00:10\","
        "\"AzureFunctionsJobHost__functionTimeout\":\"-1\"}}");
    app = load(dir);
    assert_int_equal(app->nproblems, 0);
    assert_string_equal(app->route_prefix, "");
    assert_int_equal(app->queues.max_polling_interval_ms, 10000);
    assert_int_equal(app->function_timeout_ms, -1);
    nb_app_free(app);
    rmapp(dir);
}

/* ---- local.settings.json ------------------------------------------------ */

static void test_local_settings(void **state)
{
    (void)state;
    char *dir = mkapp();
    put(dir, "local.settings.json",
        "{\"IsEncrypted\":false,\"Values\":{\"FUNCTIONS_WORKER_RUNTIME\":\"Custom\","
        "\"Zeta\":\"last?\",\"Count\":42,\"Ratio\":1.5,\"Flag\":true,\"Off\":false,\"Null\":null,"
        "\"AzureWebJobsStorage\":\"UseDevelopmentStorage=true\"},"
        "\"Host\":{\"LocalHttpPort\":7072,\"CORS\":\" http://a.example , https://b.example,,\","
        "\"CORSCredentials\":true},\"ConnectionStrings\":{}}");
    struct nb_app *app = load(dir);
    assert_int_equal(app->nproblems, 0);
    assert_int_equal(app->nsettings, 7);
    const char *names[] = {"FUNCTIONS_WORKER_RUNTIME", "Zeta", "Count", "Ratio", "Flag", "Off",
                           "AzureWebJobsStorage"};
    const char *values[] = {"Custom", "last?", "42", "1.5", "true", "false", "UseDevelopmentStorage=true"};
    for (size_t i = 0; i < 7; i++) {
        assert_string_equal(app->settings[i].name, names[i]);
        assert_string_equal(app->settings[i].value, values[i]);
    }
    assert_string_equal(nb_app_setting(app, "Count"), "42");
    assert_string_equal(nb_app_setting(app, "count"), "42"); /* names ignore case */
    assert_null(nb_app_setting(app, "Null"));
    assert_null(nb_app_setting(app, "NB_TEST_APP_NOT_SET"));
    setenv("NB_TEST_APP_ENV_ONLY", "from-env", 1);
    assert_string_equal(nb_app_setting(app, "NB_TEST_APP_ENV_ONLY"), "from-env");
    unsetenv("NB_TEST_APP_ENV_ONLY");
    assert_int_equal(app->local_http_port, 7072);
    assert_int_equal(app->ncors_origins, 2);
    assert_string_equal(app->cors_origins[0], "http://a.example");
    assert_string_equal(app->cors_origins[1], "https://b.example");
    assert_true(app->cors_credentials);
    nb_app_free(app);

    put(dir, "local.settings.json", "{\"Host\":{\"CORS\":\"*\",\"LocalHttpPort\":70000}}");
    app = load(dir);
    assert_one_problem(app, "local.settings.json: Host.LocalHttpPort");
    assert_int_equal(app->local_http_port, 0);
    assert_int_equal(app->ncors_origins, 1);
    assert_string_equal(app->cors_origins[0], "*");
    assert_false(app->cors_credentials);
    nb_app_free(app);
    rmapp(dir);
}

static void test_local_settings_encrypted_and_broken(void **state)
{
    (void)state;
    char *dir = mkapp();
    put(dir, "local.settings.json", "{\"IsEncrypted\":true,\"Values\":{\"A\":\"xyz\"}}");
    struct nb_app *app = load(dir);
    assert_one_problem(app, "local.settings.json: encrypted settings are not supported");
    assert_int_equal(app->nsettings, 0);
    nb_app_free(app);

    put(dir, "local.settings.json", "{\"Values\":{\"A\":\"x\"\n\n,}");
    app = load(dir);
    assert_one_problem(app, "local.settings.json: line 3");
    assert_int_equal(app->nsettings, 0);
    nb_app_free(app);

    put(dir, "local.settings.json", "{\"Values\":{\"A\":\"x\",\"B\":{\"nested\":1}}}");
    app = load(dir);
    assert_one_problem(app, "local.settings.json: Values.B");
    assert_int_equal(app->nsettings, 1);
    nb_app_free(app);
    rmapp(dir);
}

/* ---- functions: validation ---------------------------------------------- */

/* Load an app holding a good function "Good" plus `bad` under name "Bad"
 * and check that Bad is skipped with exactly one problem naming it. */
static void expect_skipped(const char *bad, const char *needle)
{
    char *dir = mkapp();
    put(dir, "host.json", CUSTOM_HOST);
    fn(dir, "Good", HTTP_FN);
    fn(dir, "Bad", bad);
    struct nb_app *app = load(dir);
    if (app->nfunctions != 1) dump_problems(app);
    assert_int_equal(app->nfunctions, 1);
    assert_string_equal(app->functions[0].name, "Good");
    assert_one_problem(app, "Bad/function.json: ");
    if (!strstr(app->problems[0], needle)) dump_problems(app);
    assert_non_null(strstr(app->problems[0], needle));
    nb_app_free(app);
    rmapp(dir);
}

static void test_invalid_json(void **state)
{
    (void)state;
    expect_skipped("{\n  \"bindings\": [\n    {\"type\": \"httpTrigger\" \"name\": \"req\"}\n  ]\n}", "line 3");
    expect_skipped("[1,2]", "not a JSON object");
}

static void test_byte_order_mark(void **state)
{
    (void)state;
    char *dir = mkapp();
    put(dir, "host.json", "\xEF\xBB\xBF{\"version\":\"2.0\",\"extensions\":{\"http\":{\"routePrefix\":\"b\"}}}");
    put(dir, "local.settings.json", "\xEF\xBB\xBF{\"Values\":{\"Exe\":\"h\"}}");
    put(dir, "Native/n.so", "");
    fn(dir, "Native", "\xEF\xBB\xBF{\"scriptFile\":\"n.so\",\"bindings\":[{\"type\":\"httpTrigger\",\"name\":\"r\"}]}");
    struct nb_app *app = load(dir);
    assert_int_equal(app->nproblems, 0);
    assert_string_equal(app->route_prefix, "b");
    assert_string_equal(nb_app_setting(app, "Exe"), "h");
    assert_int_equal(app->nfunctions, 1);
    nb_app_free(app);
    rmapp(dir);
}

static void test_bindings_missing_or_not_array(void **state)
{
    (void)state;
    expect_skipped("{\"scriptFile\":\"x.js\"}", "'bindings' is missing");
    expect_skipped("{\"bindings\":{\"type\":\"httpTrigger\",\"name\":\"req\"}}", "'bindings' must be an array");
    expect_skipped("{\"bindings\":[\"httpTrigger\"]}", "binding 0 is not an object");
}

static void test_trigger_count(void **state)
{
    (void)state;
    expect_skipped("{\"bindings\":[{\"type\":\"http\",\"direction\":\"out\",\"name\":\"res\"}]}", "no trigger");
    expect_skipped("{\"bindings\":[]}", "no trigger");
    expect_skipped("{\"bindings\":[{\"type\":\"httpTrigger\",\"name\":\"req\"},"
                   "{\"type\":\"queueTrigger\",\"name\":\"msg\",\"queueName\":\"q\"}]}",
                   "more than one trigger");
}

static void test_missing_name_and_type(void **state)
{
    (void)state;
    expect_skipped("{\"bindings\":[{\"type\":\"httpTrigger\",\"direction\":\"in\"}]}", "'name' is required");
    expect_skipped("{\"bindings\":[{\"type\":\"httpTrigger\",\"name\":\"\"}]}", "'name' is required");
    expect_skipped("{\"bindings\":[{\"name\":\"req\"}]}", "'type' is required");
    expect_skipped("{\"bindings\":[{\"type\":\"httpTrigger\",\"name\":\"req\",\"direction\":\"sideways\"}]}",
                   "direction");
}

static void test_reserved_routes(void **state)
{
    (void)state;
    expect_skipped("{\"bindings\":[{\"type\":\"httpTrigger\",\"name\":\"req\",\"route\":\"admin/x\"}]}",
                   "route 'admin/x' is reserved: routes may not start with 'admin' or 'runtime'");
    expect_skipped("{\"bindings\":[{\"type\":\"httpTrigger\",\"name\":\"req\",\"route\":\"/Runtime/webhooks\"}]}",
                   "route '/Runtime/webhooks' is reserved");
    expect_skipped("{\"bindings\":[{\"type\":\"httpTrigger\",\"name\":\"req\",\"route\":\"ADMIN\"}]}",
                   "is reserved");

    /* only a whole first segment is reserved */
    char *dir = mkapp();
    put(dir, "host.json", CUSTOM_HOST);
    fn(dir, "A", "{\"bindings\":[{\"type\":\"httpTrigger\",\"name\":\"req\",\"route\":\"administrators/{id}\"}]}");
    fn(dir, "B", "{\"bindings\":[{\"type\":\"httpTrigger\",\"name\":\"req\",\"route\":\"v1/admin\"}]}");
    struct nb_app *app = load(dir);
    assert_int_equal(app->nproblems, 0);
    assert_int_equal(app->nfunctions, 2);
    assert_string_equal(app->functions[0].bindings[0].route, "administrators/{id}");
    assert_string_equal(app->functions[1].bindings[0].route, "v1/admin");
    nb_app_free(app);
    rmapp(dir);
}

static void test_required_binding_properties(void **state)
{
    (void)state;
    expect_skipped("{\"bindings\":[{\"type\":\"queueTrigger\",\"name\":\"msg\"}]}",
                   "queueTrigger binding 'msg' has no queueName");
    expect_skipped("{\"bindings\":[{\"type\":\"timerTrigger\",\"name\":\"t\",\"schedule\":\"\"}]}",
                   "timerTrigger binding 't' has no schedule");
    expect_skipped("{\"bindings\":[{\"type\":\"httpTrigger\",\"name\":\"req\"},"
                   "{\"type\":\"table\",\"direction\":\"out\",\"name\":\"row\"}]}",
                   "table binding 'row' has no tableName");
    expect_skipped("{\"bindings\":[{\"type\":\"httpTrigger\",\"name\":\"req\"},"
                   "{\"type\":\"queue\",\"direction\":\"out\",\"name\":\"q\"}]}",
                   "queue binding 'q' has no queueName");
    expect_skipped("{\"bindings\":[{\"type\":\"httpTrigger\",\"name\":\"req\"},"
                   "{\"type\":\"table\",\"name\":\"rows\",\"tableName\":\"t\",\"take\":-1}]}",
                   "'take' must be a non-negative integer");
}

static void test_auth_level_and_methods(void **state)
{
    (void)state;
    expect_skipped("{\"bindings\":[{\"type\":\"httpTrigger\",\"name\":\"req\",\"authLevel\":\"system\"}]}",
                   "authLevel 'system'");
    expect_skipped("{\"bindings\":[{\"type\":\"httpTrigger\",\"name\":\"req\",\"methods\":[\"get\",\"FETCH\"]}]}",
                   "unknown HTTP method \"FETCH\"");
    expect_skipped("{\"bindings\":[{\"type\":\"httpTrigger\",\"name\":\"req\",\"methods\":\"get\"}]}",
                   "'methods' must be an array");

    char *dir = mkapp();
    put(dir, "host.json", CUSTOM_HOST);
    fn(dir, "Anon", "{\"bindings\":[{\"type\":\"HTTPTRIGGER\",\"name\":\"req\",\"authLevel\":\"Anonymous\","
                    "\"methods\":[\"get\",\"Post\",\"OPTIONS\"]}]}");
    fn(dir, "Admin", "{\"bindings\":[{\"type\":\"httpTrigger\",\"name\":\"req\",\"authLevel\":\"ADMIN\","
                     "\"methods\":[]}]}");
    fn(dir, "Dflt", HTTP_FN);
    struct nb_app *app = load(dir);
    assert_int_equal(app->nproblems, 0);
    const struct nb_binding *t = nb_function_trigger(nb_app_function(app, "anon"));
    assert_int_equal(t->type, NB_BIND_HTTP_TRIGGER);
    assert_string_equal(t->type_name, "HTTPTRIGGER");
    assert_int_equal(t->auth_level, NB_AUTH_ANONYMOUS);
    assert_int_equal(t->methods, NB_METHOD_GET | NB_METHOD_POST | NB_METHOD_OPTIONS);
    t = nb_function_trigger(nb_app_function(app, "Admin"));
    assert_int_equal(t->auth_level, NB_AUTH_ADMIN);
    assert_int_equal(t->methods, 0);
    t = nb_function_trigger(nb_app_function(app, "Dflt"));
    assert_int_equal(t->auth_level, NB_AUTH_FUNCTION);
    assert_int_equal(t->methods, 0);
    assert_string_equal(t->route, "Dflt");
    nb_app_free(app);
    rmapp(dir);
}

static void test_function_names(void **state)
{
    (void)state;
    char *dir = mkapp();
    put(dir, "host.json", CUSTOM_HOST);
    fn(dir, "Good_one-2", HTTP_FN);
    fn(dir, "1bad", HTTP_FN);
    fn(dir, "bad.name", HTTP_FN);
    fn(dir, ".hidden", HTTP_FN);                 /* skipped silently */
    put(dir, "node_modules/readme.txt", "x");    /* no function.json: skipped silently */
    put(dir, "notes.txt", "not a folder");
    char *long_name = nb_malloc(130);
    long_name[0] = 'a';
    memset(long_name + 1, 'b', 128);
    long_name[129] = '\0';                       /* 129 characters */
    fn(dir, long_name, HTTP_FN);
    struct nb_app *app = load(dir);
    assert_int_equal(app->nfunctions, 1);
    assert_string_equal(app->functions[0].name, "Good_one-2");
    assert_int_equal(app->nproblems, 3);
    assert_int_equal(problems_with(app, "1bad/function.json: '1bad' is not a valid function name"), 1);
    assert_int_equal(problems_with(app, "bad.name/function.json: "), 1);
    assert_int_equal(problems_with(app, long_name), 1);
    nb_app_free(app);
    free(long_name);
    rmapp(dir);
}

/* ---- functions: settings ------------------------------------------------ */

static void test_setting_expansion(void **state)
{
    (void)state;
    char *dir = mkapp();
    put(dir, "host.json", CUSTOM_HOST);
    put(dir, "local.settings.json",
        "{\"Values\":{\"InQueue\":\"orders\",\"TimerSchedule\":\"0 */5 * * * *\",\"Table\":\"Items\"}}");
    setenv("NB_TEST_APP_SUFFIX", "v2", 1);
    fn(dir, "OnQueue", "{\"bindings\":[{\"type\":\"queueTrigger\",\"name\":\"msg\","
                       "\"queueName\":\"%InQueue%-%NB_TEST_APP_SUFFIX%\",\"connection\":\"MyStorage\"},"
                       "{\"type\":\"queue\",\"direction\":\"out\",\"name\":\"$return\",\"queueName\":\"done\"}]}");
    fn(dir, "OnTimer", "{\"bindings\":[{\"type\":\"timerTrigger\",\"name\":\"t\",\"schedule\":\"%TimerSchedule%\","
                       "\"runOnStartup\":true,\"useMonitor\":\"false\"}]}");
    fn(dir, "Rows", "{\"bindings\":[{\"type\":\"httpTrigger\",\"name\":\"req\",\"route\":\"items/{id}\"},"
                    "{\"type\":\"table\",\"direction\":\"in\",\"name\":\"row\",\"tableName\":\"%Table%\","
                    "\"partitionKey\":\"p\",\"rowKey\":\"{id}\",\"filter\":\"Price gt 100%\",\"take\":50,"
                    "\"connection\":\"\",\"dataType\":\"string\"}]}");
    struct nb_app *app = load(dir);
    unsetenv("NB_TEST_APP_SUFFIX");
    if (app->nproblems) dump_problems(app);
    assert_int_equal(app->nproblems, 0);
    assert_int_equal(app->nfunctions, 3);

    const struct nb_function *q = nb_app_function(app, "OnQueue");
    const struct nb_binding *b = nb_function_trigger(q);
    assert_int_equal(b->type, NB_BIND_QUEUE_TRIGGER);
    assert_string_equal(b->queue_name, "orders-v2");
    assert_string_equal(b->connection, "MyStorage");
    assert_false(b->out);
    b = nb_function_binding(q, "$RETURN");
    assert_non_null(b);
    assert_int_equal(b->type, NB_BIND_QUEUE);
    assert_true(b->out);
    assert_null(b->route);

    b = nb_function_trigger(nb_app_function(app, "OnTimer"));
    assert_int_equal(b->type, NB_BIND_TIMER_TRIGGER);
    assert_string_equal(b->schedule, "0 */5 * * * *");
    assert_true(b->run_on_startup);
    assert_false(b->use_monitor);

    const struct nb_function *r = nb_app_function(app, "rows");
    assert_int_equal(r->nbindings, 2);
    assert_int_equal(r->trigger, 0);
    assert_string_equal(r->bindings[0].route, "items/{id}");
    assert_true(r->bindings[0].use_monitor);
    b = nb_function_binding(r, "row");
    assert_int_equal(b->type, NB_BIND_TABLE);
    assert_string_equal(b->table_name, "Items");
    assert_string_equal(b->partition_key, "p");
    assert_string_equal(b->row_key, "{id}");
    assert_string_equal(b->filter, "Price gt 100%");
    assert_int_equal(b->take, 50);
    assert_null(b->connection);
    assert_string_equal(b->data_type, "string");
    assert_null(nb_function_binding(r, "nope"));
    nb_app_free(app);
    rmapp(dir);
}

static void test_missing_setting(void **state)
{
    (void)state;
    char *dir = mkapp();
    put(dir, "host.json", CUSTOM_HOST);
    fn(dir, "Good", HTTP_FN);
    fn(dir, "Timer", "{\"bindings\":[{\"type\":\"timerTrigger\",\"name\":\"t\",\"schedule\":\"%NB_TEST_NO_SUCH%\"}]}");
    struct nb_app *app = load(dir);
    assert_int_equal(app->nfunctions, 1);
    assert_one_problem(app, "Timer/");
    assert_string_equal(app->problems[0], "Timer/function.json: app setting 'NB_TEST_NO_SUCH' is not set");
    nb_app_free(app);
    rmapp(dir);
}

static void test_expand(void **state)
{
    (void)state;
    char *dir = mkapp();
    put(dir, "local.settings.json", "{\"Values\":{\"A\":\"1\",\"B\":\"two\",\"Empty\":\"\"}}");
    struct nb_app *app = load(dir);
    char *missing = (char *)1;
    char *s = nb_app_expand(app, "%A%-%B%/%Empty%.", &missing);
    assert_string_equal(s, "1-two/.");
    assert_null(missing);
    free(s);
    s = nb_app_expand(app, "50% off", &missing);
    assert_string_equal(s, "50% off");
    free(s);
    s = nb_app_expand(app, "%A%%", &missing);
    assert_string_equal(s, "1%");
    free(s);
    s = nb_app_expand(app, "", &missing);
    assert_string_equal(s, "");
    free(s);
    assert_null(nb_app_expand(app, "x%Nope%y", &missing));
    assert_string_equal(missing, "Nope");
    free(missing);
    assert_null(nb_app_expand(app, "100%%", &missing)); /* %% is no escape */
    assert_string_equal(missing, "");
    free(missing);
    assert_null(nb_app_expand(app, "%Nope%", NULL));
    setenv("NB_TEST_APP_EXPAND", "env", 1);
    s = nb_app_expand(NULL, "%NB_TEST_APP_EXPAND%", NULL);
    assert_string_equal(s, "env");
    free(s);
    s = nb_app_expand(app, "%a%+%NB_TEST_APP_EXPAND%", NULL);
    assert_string_equal(s, "1+env");
    free(s);
    unsetenv("NB_TEST_APP_EXPAND");
    nb_app_free(app);
    rmapp(dir);
}

static void test_disabled(void **state)
{
    (void)state;
    char *dir = mkapp();
    put(dir, "host.json", CUSTOM_HOST);
    put(dir, "local.settings.json",
        "{\"Values\":{\"AzureWebJobs.ViaSetting.Disabled\":\"True\",\"AzureWebJobs.ViaOne.Disabled\":\"1\","
        "\"AzureWebJobs.NotOff.Disabled\":\"false\"}}");
    setenv("AzureWebJobs_ViaEnv_Disabled", "true", 1);
    fn(dir, "ViaSetting", HTTP_FN);
    fn(dir, "ViaOne", HTTP_FN);
    fn(dir, "ViaEnv", HTTP_FN);
    fn(dir, "NotOff", HTTP_FN);
    fn(dir, "Enabled", HTTP_FN);
    fn(dir, "ViaJson", "{\"disabled\":true,\"bindings\":[{\"type\":\"httpTrigger\",\"name\":\"req\"}]}");
    struct nb_app *app = load(dir);
    unsetenv("AzureWebJobs_ViaEnv_Disabled");
    assert_int_equal(app->nproblems, 0);
    assert_int_equal(app->nfunctions, 6);
    assert_true(nb_app_function(app, "ViaSetting")->disabled);
    assert_true(nb_app_function(app, "ViaOne")->disabled);
    assert_true(nb_app_function(app, "ViaEnv")->disabled);
    assert_true(nb_app_function(app, "ViaJson")->disabled);
    assert_false(nb_app_function(app, "NotOff")->disabled);
    assert_false(nb_app_function(app, "Enabled")->disabled);
    nb_app_free(app);
    rmapp(dir);
}

/* ---- worker kinds ------------------------------------------------------- */

static void test_native_so(void **state)
{
    (void)state;
    char *dir = mkapp();
    put(dir, "Native/x.so", "");
    put(dir, "lib/shared.so", "");
    fn(dir, "Native", "{\"scriptFile\":\"x.so\",\"bindings\":[{\"type\":\"httpTrigger\",\"name\":\"req\"}]}");
    fn(dir, "Shared", "{\"scriptFile\":\"../lib/shared.so\",\"entryPoint\":\"handle_shared\","
                      "\"bindings\":[{\"type\":\"httpTrigger\",\"name\":\"req\"}]}");
    fn(dir, "Missing", "{\"scriptFile\":\"gone.so\",\"bindings\":[{\"type\":\"httpTrigger\",\"name\":\"req\"}]}");
    fn(dir, "Script", "{\"scriptFile\":\"index.js\",\"bindings\":[{\"type\":\"httpTrigger\",\"name\":\"req\"}]}");
    struct nb_app *app = load(dir);
    assert_int_equal(app->nfunctions, 2);
    assert_int_equal(app->nproblems, 2);
    assert_int_equal(problems_with(app, "Missing/function.json: scriptFile 'gone.so' not found"), 1);
    assert_int_equal(problems_with(app, "Script/function.json: no worker: scriptFile must name a .so built "
                                        "against include/nimbus/function.h, or host.json must configure "
                                        "customHandler"),
                     1);

    const struct nb_function *f = nb_app_function(app, "Native");
    char *want = nb_asprintf("%s/Native/x.so", app->root);
    char *want_dir = nb_asprintf("%s/Native", app->root);
    assert_int_equal(f->worker, NB_WORKER_NATIVE);
    assert_string_equal(f->script_file, want);
    assert_string_equal(f->dir, want_dir);
    assert_string_equal(f->entry_point, "run");
    free(want);
    free(want_dir);
    f = nb_app_function(app, "Shared");
    want = nb_asprintf("%s/lib/shared.so", app->root);
    assert_int_equal(f->worker, NB_WORKER_NATIVE);
    assert_string_equal(f->script_file, want);
    assert_string_equal(f->entry_point, "handle_shared");
    free(want);
    nb_app_free(app);
    rmapp(dir);
}

static void test_custom_handler_config(void **state)
{
    (void)state;
    char *dir = mkapp();
    put(dir, "host.json",
        "{\"version\":\"2.0\",\"customHandler\":{\"description\":{\"defaultExecutablePath\":\"bin/%Exe%\","
        "\"arguments\":[\"--port\",\"%Port%\",\"--mode=%Mode%\"],\"workingDirectory\":\"work\"},"
        "\"enableForwardingHttpRequest\":true},"
        "\"httpWorker\":{\"description\":{\"defaultExecutablePath\":\"ignored\"}}}");
    put(dir, "local.settings.json", "{\"Values\":{\"Exe\":\"handler\",\"Port\":\"8080\",\"Mode\":\"fast\"}}");
    put(dir, "work/keep", "");
    fn(dir, "Api", HTTP_FN);
    fn(dir, "Native", "{\"scriptFile\":\"n.so\",\"bindings\":[{\"type\":\"httpTrigger\",\"name\":\"req\"}]}");
    put(dir, "Native/n.so", "");
    struct nb_app *app = load(dir);
    if (app->nproblems) dump_problems(app);
    assert_int_equal(app->nproblems, 0);
    char *wd = nb_asprintf("%s/work", app->root);
    char *exe = nb_asprintf("%s/work/bin/handler", app->root);
    assert_string_equal(app->custom.working_dir, wd);
    assert_string_equal(app->custom.executable, exe);
    assert_int_equal(app->custom.narguments, 3);
    assert_string_equal(app->custom.arguments[0], "--port");
    assert_string_equal(app->custom.arguments[1], "8080");
    assert_string_equal(app->custom.arguments[2], "--mode=fast");
    assert_true(app->custom.forwarding);
    free(wd);
    free(exe);

    const struct nb_function *f = nb_app_function(app, "Api");
    assert_int_equal(f->worker, NB_WORKER_CUSTOM);
    assert_null(f->script_file);
    assert_int_equal(nb_app_function(app, "Native")->worker, NB_WORKER_NATIVE);
    nb_app_free(app);
    rmapp(dir);
}

static void test_custom_handler_paths(void **state)
{
    (void)state;
    char *dir = mkapp();
    /* a bare name that is not in the working directory is left for PATH */
    put(dir, "host.json", CUSTOM_HOST);
    struct nb_app *app = load(dir);
    assert_string_equal(app->custom.executable, "handler");
    assert_false(app->custom.forwarding);
    nb_app_free(app);

    /* ... and one that is there is made absolute, as Azure does */
    put(dir, "handler", "#!/bin/sh\n");
    app = load(dir);
    char *exe = nb_asprintf("%s/handler", app->root);
    assert_string_equal(app->custom.executable, exe);
    free(exe);
    nb_app_free(app);

    /* absolute paths stay; a missing argument setting is reported and kept literally */
    put(dir, "host.json",
        "{\"version\":\"2.0\",\"customHandler\":{\"description\":{\"defaultExecutablePath\":\"/usr/bin/env\","
        "\"arguments\":[\"%NB_TEST_NO_ARG%\"]}}}");
    app = load(dir);
    assert_string_equal(app->custom.executable, "/usr/bin/env");
    assert_int_equal(app->custom.narguments, 1);
    assert_string_equal(app->custom.arguments[0], "%NB_TEST_NO_ARG%");
    assert_one_problem(app, "app setting 'NB_TEST_NO_ARG' is not set");
    nb_app_free(app);

    /* a customHandler section without an executable is reported; no handler */
    put(dir, "host.json", "{\"version\":\"2.0\",\"customHandler\":{\"description\":{\"arguments\":[\"a\"]}}}");
    app = load(dir);
    assert_null(app->custom.executable);
    assert_int_equal(app->custom.narguments, 0);
    assert_one_problem(app, "defaultExecutablePath is required");
    nb_app_free(app);
    rmapp(dir);
}

static void test_legacy_http_worker(void **state)
{
    (void)state;
    char *dir = mkapp();
    put(dir, "host.json",
        "{\"version\":\"2.0\",\"httpWorker\":{\"description\":{\"defaultExecutablePath\":\"node\","
        "\"defaultWorkerPath\":\"server/index.js\",\"arguments\":[\"--inspect\"],"
        "\"workerArguments\":[\"--verbose\"]}}}");
    fn(dir, "Api", HTTP_FN);
    setenv("AzureFunctionsJobHost__httpWorker__description__workerArguments__1", "--env", 1);
    struct nb_app *app = load(dir);
    unsetenv("AzureFunctionsJobHost__httpWorker__description__workerArguments__1");
    assert_int_equal(app->nproblems, 0);
    assert_string_equal(app->custom.executable, "node");
    assert_int_equal(app->custom.narguments, 4);
    assert_string_equal(app->custom.arguments[0], "--inspect");
    assert_string_equal(app->custom.arguments[1], "server/index.js");
    assert_string_equal(app->custom.arguments[2], "--verbose");
    assert_string_equal(app->custom.arguments[3], "--env");
    assert_int_equal(app->functions[0].worker, NB_WORKER_CUSTOM);
    nb_app_free(app);

    /* defaultWorkerPath alone serves as the executable */
    put(dir, "host.json",
        "{\"version\":\"2.0\",\"customHandler\":{\"description\":{\"defaultWorkerPath\":\"./run.sh\"}}}");
    app = load(dir);
    char *exe = nb_asprintf("%s/run.sh", app->root);
    assert_string_equal(app->custom.executable, exe);
    free(exe);
    nb_app_free(app);
    rmapp(dir);
}

/* ---- ordering ----------------------------------------------------------- */

static void test_sorting_and_lookup(void **state)
{
    (void)state;
    char *dir = mkapp();
    put(dir, "host.json", CUSTOM_HOST);
    fn(dir, "gamma", HTTP_FN);
    fn(dir, "Alpha", HTTP_FN);
    fn(dir, "beta", HTTP_FN);
    fn(dir, "Delta", HTTP_FN);
    struct nb_app *app = load(dir);
    assert_int_equal(app->nfunctions, 4);
    assert_string_equal(app->functions[0].name, "Alpha");
    assert_string_equal(app->functions[1].name, "beta");
    assert_string_equal(app->functions[2].name, "Delta");
    assert_string_equal(app->functions[3].name, "gamma");
    assert_ptr_equal(nb_app_function(app, "BETA"), &app->functions[1]);
    assert_null(nb_app_function(app, "epsilon"));
    assert_ptr_equal(nb_function_trigger(&app->functions[0]), &app->functions[0].bindings[0]);
    nb_app_free(app);
    rmapp(dir);
}

static void test_duplicate_names(void **state)
{
    (void)state;
    char *dir = mkapp();
    put(dir, "host.json", CUSTOM_HOST);
    fn(dir, "Foo", HTTP_FN);
    fn(dir, "foo", HTTP_FN);
    struct nb_app *app = load(dir);
    assert_int_equal(app->nfunctions, 1);
    assert_string_equal(app->functions[0].name, "Foo");
    assert_one_problem(app, "foo/function.json: function name 'foo' duplicates 'Foo'");
    nb_app_free(app);
    rmapp(dir);
}

static void test_functions_list(void **state)
{
    (void)state;
    char *dir = mkapp();
    put(dir, "host.json",
        "{\"version\":\"2.0\",\"functions\":[\"one\",\"Three\"],"
        "\"customHandler\":{\"description\":{\"defaultExecutablePath\":\"handler\"}}}");
    fn(dir, "One", HTTP_FN);
    fn(dir, "Two", "{broken");
    fn(dir, "Three", HTTP_FN);
    struct nb_app *app = load(dir);
    assert_int_equal(app->nproblems, 0);
    assert_int_equal(app->nfunctions, 2);
    assert_string_equal(app->functions[0].name, "One");
    assert_string_equal(app->functions[1].name, "Three");
    nb_app_free(app);
    rmapp(dir);
}

static void test_method_bits_and_names(void **state)
{
    (void)state;
    assert_int_equal(nb_app_method_bit("GET"), NB_METHOD_GET);
    assert_int_equal(nb_app_method_bit("post"), NB_METHOD_POST);
    assert_int_equal(nb_app_method_bit("Put"), NB_METHOD_PUT);
    assert_int_equal(nb_app_method_bit("delete"), NB_METHOD_DELETE);
    assert_int_equal(nb_app_method_bit("PATCH"), NB_METHOD_PATCH);
    assert_int_equal(nb_app_method_bit("head"), NB_METHOD_HEAD);
    assert_int_equal(nb_app_method_bit("options"), NB_METHOD_OPTIONS);
    assert_int_equal(nb_app_method_bit("TRACE"), NB_METHOD_TRACE);
    assert_int_equal(nb_app_method_bit("CONNECT"), 0);
    assert_int_equal(nb_app_method_bit(""), 0);
    assert_int_equal(nb_app_method_bit(NULL), 0);
    assert_string_equal(nb_auth_level_name(NB_AUTH_ANONYMOUS), "anonymous");
    assert_string_equal(nb_auth_level_name(NB_AUTH_FUNCTION), "function");
    assert_string_equal(nb_auth_level_name(NB_AUTH_ADMIN), "admin");
}

static void test_other_binding_types(void **state)
{
    (void)state;
    char *dir = mkapp();
    put(dir, "host.json", CUSTOM_HOST);
    fn(dir, "Blob", "{\"bindings\":[{\"type\":\"blobTrigger\",\"name\":\"in\",\"path\":\"c/{name}\"},"
                    "{\"type\":\"cosmosDB\",\"direction\":\"out\",\"name\":\"doc\"}]}");
    struct nb_app *app = load(dir);
    assert_int_equal(app->nproblems, 0);
    const struct nb_function *f = nb_app_function(app, "Blob");
    assert_int_equal(f->nbindings, 2);
    assert_int_equal(nb_function_trigger(f)->type, NB_BIND_OTHER);
    assert_string_equal(nb_function_trigger(f)->type_name, "blobTrigger");
    assert_int_equal(f->bindings[1].type, NB_BIND_OTHER);
    assert_true(f->bindings[1].out);
    nb_app_free(app);
    rmapp(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_without_host_json),
        cmocka_unit_test(test_not_a_directory),
        cmocka_unit_test(test_host_json_invalid),
        cmocka_unit_test(test_route_prefix),
        cmocka_unit_test(test_function_timeout_forms),
        cmocka_unit_test(test_queues_config),
        cmocka_unit_test(test_queues_config_out_of_range),
        cmocka_unit_test(test_env_override),
        cmocka_unit_test(test_local_settings),
        cmocka_unit_test(test_local_settings_encrypted_and_broken),
        cmocka_unit_test(test_invalid_json),
        cmocka_unit_test(test_byte_order_mark),
        cmocka_unit_test(test_bindings_missing_or_not_array),
        cmocka_unit_test(test_trigger_count),
        cmocka_unit_test(test_missing_name_and_type),
        cmocka_unit_test(test_reserved_routes),
        cmocka_unit_test(test_required_binding_properties),
        cmocka_unit_test(test_auth_level_and_methods),
        cmocka_unit_test(test_function_names),
        cmocka_unit_test(test_setting_expansion),
        cmocka_unit_test(test_missing_setting),
        cmocka_unit_test(test_expand),
        cmocka_unit_test(test_disabled),
        cmocka_unit_test(test_native_so),
        cmocka_unit_test(test_custom_handler_config),
        cmocka_unit_test(test_custom_handler_paths),
        cmocka_unit_test(test_legacy_http_worker),
        cmocka_unit_test(test_sorting_and_lookup),
        cmocka_unit_test(test_duplicate_names),
        cmocka_unit_test(test_functions_list),
        cmocka_unit_test(test_method_bits_and_names),
        cmocka_unit_test(test_other_binding_types),
    };
    return cmocka_run_group_tests_name("host/app", tests, NULL, NULL);
}
