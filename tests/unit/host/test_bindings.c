/* Binding expressions and the table input binding, against an in-memory
 * store: {expr} resolution, and that a client value cannot rewrite a table
 * input's $filter (quotes doubled inside literals; only numbers and
 * booleans outside them). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/mem.h"
#include "host/bindings.h"
#include "store/store.h"
#include "table/entity.h"

#define ACCT "devstoreaccount1"

struct fixture {
    struct nb_store *store;
    struct nb_clock clock;
    struct nb_app app;
    struct nb_binding bindings[2];
    struct nb_function fn;
    struct nb_bind_env env;
};

static const char *account_of(void *ctx, const struct nb_binding *b)
{
    (void)ctx;
    (void)b;
    return ACCT;
}

static void put_entity(struct fixture *f, const char *json)
{
    struct nb_arena arena;
    nb_arena_init(&arena);
    struct nb_entity e;
    assert_int_equal(nb_entity_from_json(json, strlen(json), &arena, &e, NULL, NULL), NB_OK);
    struct nb_buf enc;
    nb_buf_init(&enc, 1 << 20);
    assert_int_equal(nb_entity_encode(&e, &enc), NB_OK);
    struct nb_entity_op op = { .kind = NB_ENTITY_INSERT, .pk = e.pk, .pk_len = e.pk_len,
                               .rk = e.rk, .rk_len = e.rk_len, .data = enc.data,
                               .data_len = enc.len };
    size_t failed = 0;
    assert_int_equal(nb_store_entity_write(f->store, ACCT, "people", &op, 1, NULL,
                                           nb_clock_now(&f->clock), &failed),
                     NB_OK);
    nb_buf_cleanup(&enc);
    nb_arena_cleanup(&arena);
}

static int setup(void **state)
{
    struct fixture *f = nb_calloc(1, sizeof(*f));
    struct nb_store_config cfg = { .in_memory = true };
    assert_int_equal(nb_store_open_sqlite(&cfg, &f->store), NB_OK);
    nb_clock_init(&f->clock);
    assert_int_equal(nb_store_table_create(f->store, ACCT, "people", nb_clock_now(&f->clock)),
                     NB_OK);
    put_entity(f, "{\"PartitionKey\":\"users\",\"RowKey\":\"ann\",\"Age\":30}");
    put_entity(f, "{\"PartitionKey\":\"users\",\"RowKey\":\"bob\",\"Age\":40}");
    put_entity(f, "{\"PartitionKey\":\"admins\",\"RowKey\":\"root\",\"Age\":50}");
    f->bindings[0] = (struct nb_binding){ .type = NB_BIND_HTTP_TRIGGER, .name = "req" };
    f->bindings[1] = (struct nb_binding){ .type = NB_BIND_TABLE, .name = "rows",
                                          .table_name = "people" };
    f->fn = (struct nb_function){ .name = "fn", .bindings = f->bindings, .nbindings = 2 };
    f->env = (struct nb_bind_env){ &f->app, f->store, &f->clock, NULL, account_of, NULL };
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    nb_store_close(f->store);
    free(f);
    return 0;
}

/* Run the table input with `filter` and data {"Query": {"v": value}};
 * returns the JSON text (caller frees) or NULL when the invocation failed. */
static char *input_with(struct fixture *f, const char *filter, json_t *value)
{
    f->bindings[1].filter = (char *)filter;
    json_t *data = json_pack("{s:{s:o}}", "Query", "v", value);
    struct nb_kv *inputs = NULL;
    size_t n = 0;
    struct nb_inv_result res;
    nb_inv_result_init(&res);
    enum nb_err rc = nb_bind_inputs(&f->env, &f->fn, data, &inputs, &n, &res);
    char *out = NULL;
    if (rc == NB_OK && res.ok) {
        assert_int_equal(n, 1);
        out = nb_strdup(inputs[0].value);
    }
    nb_bind_inputs_free(inputs, n);
    nb_inv_result_cleanup(&res);
    json_decref(data);
    return out;
}

static size_t count_rows(const char *json)
{
    json_t *doc = json_loads(json, 0, NULL);
    assert_true(json_is_array(doc));
    size_t n = json_array_size(doc);
    json_decref(doc);
    return n;
}

static void test_expand(void **state)
{
    (void)state;
    json_t *data = json_pack("{s:s,s:{s:s},s:i}", "id", "42", "Query", "code", "x-1", "n", 7);
    char *missing = NULL;
    char *s = nb_bind_expand(data, "{ID}/{query.code}/{n}", &missing);
    assert_string_equal(s, "42/x-1/7");
    free(s);
    assert_null(nb_bind_expand(data, "{nope}", &missing));
    assert_string_equal(missing, "nope");
    free(missing);
    json_decref(data);
}

static void test_filter_quoted_value(void **state)
{
    struct fixture *f = *state;
    char *out = input_with(f, "PartitionKey eq 'users' and RowKey eq '{Query.v}'",
                           json_string("bob"));
    assert_non_null(out);
    assert_int_equal(count_rows(out), 1);
    assert_non_null(strstr(out, "\"bob\""));
    free(out);
}

static void test_filter_injection_is_a_literal(void **state)
{
    struct fixture *f = *state;
    /* Unescaped, this would read: (... RowKey eq 'x') or PartitionKey ne ''. */
    char *out = input_with(f, "PartitionKey eq 'users' and RowKey eq '{Query.v}'",
                           json_string("x' or PartitionKey ne '"));
    assert_non_null(out);
    assert_int_equal(count_rows(out), 0);
    free(out);
    /* A real quote in a key still matches, doubled as OData wants. */
    put_entity(f, "{\"PartitionKey\":\"users\",\"RowKey\":\"o'neil\",\"Age\":20}");
    out = input_with(f, "RowKey eq '{Query.v}'", json_string("o'neil"));
    assert_non_null(out);
    assert_int_equal(count_rows(out), 1);
    free(out);
}

static void test_filter_unquoted_must_be_number(void **state)
{
    struct fixture *f = *state;
    char *out = input_with(f, "Age gt {Query.v}", json_string("35"));
    assert_non_null(out);
    assert_int_equal(count_rows(out), 2);
    free(out);
    assert_null(input_with(f, "Age gt {Query.v}", json_string("0 or true")));
    assert_null(input_with(f, "Age gt {Query.v}", json_string("")));
}

static void test_filter_whole_expression_is_taken_as_given(void **state)
{
    struct fixture *f = *state;
    char *out = input_with(f, "{Query.v}", json_string("PartitionKey eq 'admins'"));
    assert_non_null(out);
    assert_int_equal(count_rows(out), 1);
    free(out);
}

static void test_missing_key_expression_means_absent(void **state)
{
    struct fixture *f = *state;
    f->bindings[1].partition_key = "users";
    f->bindings[1].row_key = "{Query.other}";
    json_t *data = json_pack("{s:{}}", "Query");
    struct nb_kv *inputs = NULL;
    size_t n = 0;
    struct nb_inv_result res;
    nb_inv_result_init(&res);
    assert_int_equal(nb_bind_inputs(&f->env, &f->fn, data, &inputs, &n, &res), NB_OK);
    assert_true(res.ok);
    assert_int_equal(n, 0);
    nb_bind_inputs_free(inputs, n);
    nb_inv_result_cleanup(&res);
    json_decref(data);
    f->bindings[1].partition_key = f->bindings[1].row_key = NULL;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expand),
        cmocka_unit_test_setup_teardown(test_filter_quoted_value, setup, teardown),
        cmocka_unit_test_setup_teardown(test_filter_injection_is_a_literal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_filter_unquoted_must_be_number, setup, teardown),
        cmocka_unit_test_setup_teardown(test_filter_whole_expression_is_taken_as_given, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_missing_key_expression_means_absent, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
