/* Table entities (src/table/entity.c): request JSON with the SDK's and the
 * CLI's shapes, every §3.5 limit and error code, key validation, the
 * storage encoding (round trip, lookup, merge, corruption), metadata
 * levels, ETags and the response JSON at each level. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "table/entity.h"
#include <cmocka.h> /* needs the four above first */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The entity the Python SDK sent (§3.2, captured). */
static const char SDK_BODY[] =
    "{\"PartitionKey\": \"pk1\", \"PartitionKey@odata.type\": \"Edm.String\", \"RowKey\": \"rk1\", "
    "\"RowKey@odata.type\": \"Edm.String\", \"Str\": \"text 'q' \\u00e9\", \"Str@odata.type\": "
    "\"Edm.String\", \"Int32\": 42, \"Big\": \"1099511627776\", \"Big@odata.type\": "
    "\"Edm.Int64\", \"Dbl\": 3.5, \"Dbl@odata.type\": \"Edm.Double\", \"DblWhole\": 2.0, "
    "\"Bool\": true, \"When\": \"2023-05-06T07:08:09.123456Z\", \"When@odata.type\": "
    "\"Edm.DateTime\", \"Id\": \"c9da6455-213d-42c9-9a79-3e9149a57833\", \"Id@odata.type\": "
    "\"Edm.Guid\", \"Bin\": \"AAFiaW5hcnn/\", \"Bin@odata.type\": \"Edm.Binary\", \"Nan\": "
    "\"NaN\", \"Nan@odata.type\": \"Edm.Double\"}";

/* The az CLI's typed values arrive as strings (§3.2, captured). */
static const char CLI_BODY[] =
    "{\"PartitionKey\": \"p1\", \"RowKey\": \"r1\", \"Age\": 30, \"Flag\": \"true\", "
    "\"Flag@odata.type\": \"Edm.Boolean\", \"Score\": \"1.5\", \"Score@odata.type\": "
    "\"Edm.Double\", \"Big\": \"12345678901\", \"Big@odata.type\": \"Edm.Int64\"}";

#define TS_2026 17953111856148770LL    /* 2026-11-22T01:33:05.6148770Z */
#define WHEN_TICKS 16833568891234560LL /* 2023-05-06T07:08:09.1234560Z */

static enum nb_err parse_n(const char *json, size_t len, struct nb_arena *a, struct nb_entity *e,
                           const char **code)
{
    const char *msg = NULL;
    *code = NULL;
    enum nb_err rc = nb_entity_from_json(json, len, a, e, code, &msg);
    if (rc) {
        assert_non_null(*code);
        assert_non_null(msg);
    } else {
        assert_null(*code);
    }
    return rc;
}

static enum nb_err parse(const char *json, struct nb_arena *a, struct nb_entity *e,
                         const char **code)
{
    return parse_n(json, strlen(json), a, e, code);
}

static const struct nb_prop *prop(const struct nb_entity *e, const char *name)
{
    for (size_t i = 0; i < e->nprops; i++)
        if (strlen(name) == e->props[i].name_len &&
            memcmp(e->props[i].name, name, e->props[i].name_len) == 0)
            return &e->props[i];
    return NULL;
}

/* Parse json and expect failure with rc and code. */
static void expect_err(const char *json, enum nb_err rc, const char *code)
{
    struct nb_arena a;
    struct nb_entity e;
    const char *c;
    nb_arena_init(&a);
    enum nb_err got = parse(json, &a, &e, &c);
    if (got != rc || !c || strcmp(c, code) != 0)
        fail_msg("%s: got %d %s, want %d %s", json, got, c ? c : "(null)", rc, code);
    assert_int_equal(e.nprops, 0);
    assert_null(e.pk);
    nb_arena_cleanup(&a);
}

/* Parse json and expect exactly one custom property named "X" of `type`. */
static struct nb_value one(struct nb_arena *a, const char *json, enum nb_edm type)
{
    struct nb_entity e;
    const char *c;
    if (parse(json, a, &e, &c) != NB_OK) fail_msg("%s: %s", json, c);
    assert_int_equal(e.nprops, 1);
    assert_string_equal(e.props[0].name, "X");
    if (e.props[0].v.type != type) fail_msg("%s: type %d, want %d", json, e.props[0].v.type, type);
    return e.props[0].v;
}

static void check_sdk_entity(const struct nb_entity *e)
{
    assert_int_equal(e->nprops, 10);
    const struct nb_prop *p = prop(e, "Str");
    assert_int_equal(p->v.type, NB_EDM_STRING);
    assert_string_equal(p->v.s, "text 'q' \xc3\xa9");
    assert_int_equal(p->v.len, 11);
    p = prop(e, "Int32");
    assert_int_equal(p->v.type, NB_EDM_INT32);
    assert_int_equal(p->v.i, 42);
    p = prop(e, "Big");
    assert_int_equal(p->v.type, NB_EDM_INT64);
    assert_true(p->v.i == 1099511627776LL);
    p = prop(e, "Dbl");
    assert_int_equal(p->v.type, NB_EDM_DOUBLE);
    assert_true(p->v.d == 3.5);
    p = prop(e, "DblWhole");
    assert_int_equal(p->v.type, NB_EDM_DOUBLE);
    assert_true(p->v.d == 2.0);
    p = prop(e, "Bool");
    assert_int_equal(p->v.type, NB_EDM_BOOLEAN);
    assert_true(p->v.b);
    p = prop(e, "When");
    assert_int_equal(p->v.type, NB_EDM_DATETIME);
    assert_true(p->v.i == WHEN_TICKS);
    p = prop(e, "Id");
    assert_int_equal(p->v.type, NB_EDM_GUID);
    assert_string_equal(p->v.s, "c9da6455-213d-42c9-9a79-3e9149a57833");
    p = prop(e, "Bin");
    assert_int_equal(p->v.type, NB_EDM_BINARY);
    assert_int_equal(p->v.len, 9);
    assert_memory_equal(p->v.s,
                        "\x00\x01"
                        "binary\xff",
                        9);
    p = prop(e, "Nan");
    assert_int_equal(p->v.type, NB_EDM_DOUBLE);
    assert_true(isnan(p->v.d));
}

static void test_sdk_entity(void **state)
{
    (void)state;
    struct nb_arena a;
    struct nb_entity e;
    const char *c;
    nb_arena_init(&a);
    assert_int_equal(parse(SDK_BODY, &a, &e, &c), NB_OK);
    assert_string_equal(e.pk, "pk1");
    assert_int_equal(e.pk_len, 3);
    assert_string_equal(e.rk, "rk1");
    assert_int_equal(e.rk_len, 3);
    assert_true(e.timestamp == 0);
    check_sdk_entity(&e);
    /* insertion order, annotations removed */
    const char *order[] = {"Str",  "Int32", "Big", "Dbl", "DblWhole",
                           "Bool", "When",  "Id",  "Bin", "Nan"};
    for (size_t i = 0; i < 10; i++)
        assert_string_equal(e.props[i].name, order[i]);
    /* the JSON text is not referenced afterwards */
    char *copy = strdup(SDK_BODY);
    struct nb_entity e2;
    assert_int_equal(parse(copy, &a, &e2, &c), NB_OK);
    memset(copy, 'x', strlen(copy));
    free(copy);
    check_sdk_entity(&e2);
    nb_arena_cleanup(&a);
}

static void test_cli_entity(void **state)
{
    (void)state;
    struct nb_arena a;
    struct nb_entity e;
    const char *c;
    nb_arena_init(&a);
    assert_int_equal(parse(CLI_BODY, &a, &e, &c), NB_OK);
    assert_int_equal(e.nprops, 4);
    assert_int_equal(prop(&e, "Age")->v.type, NB_EDM_INT32);
    assert_int_equal(prop(&e, "Age")->v.i, 30);
    assert_int_equal(prop(&e, "Flag")->v.type, NB_EDM_BOOLEAN);
    assert_true(prop(&e, "Flag")->v.b);
    assert_int_equal(prop(&e, "Score")->v.type, NB_EDM_DOUBLE);
    assert_true(prop(&e, "Score")->v.d == 1.5);
    assert_int_equal(prop(&e, "Big")->v.type, NB_EDM_INT64);
    assert_true(prop(&e, "Big")->v.i == 12345678901LL);

    /* every string coercion */
    struct nb_value v;
    v = one(&a, "{\"X\":\"False\",\"X@odata.type\":\"Edm.Boolean\"}", NB_EDM_BOOLEAN);
    assert_false(v.b);
    v = one(&a, "{\"X\":\"TRUE\",\"X@odata.type\":\"Edm.Boolean\"}", NB_EDM_BOOLEAN);
    assert_true(v.b);
    v = one(&a, "{\"X\":false,\"X@odata.type\":\"Edm.Boolean\"}", NB_EDM_BOOLEAN);
    assert_false(v.b);
    v = one(&a, "{\"X\":\"-42\",\"X@odata.type\":\"Edm.Int32\"}", NB_EDM_INT32);
    assert_int_equal(v.i, -42);
    v = one(&a, "{\"X\":\"+2147483647\",\"X@odata.type\":\"Edm.Int32\"}", NB_EDM_INT32);
    assert_int_equal(v.i, 2147483647);
    v = one(&a, "{\"X\":\"-2147483648\",\"X@odata.type\":\"Edm.Int32\"}", NB_EDM_INT32);
    assert_int_equal(v.i, INT32_MIN);
    v = one(&a, "{\"X\":7,\"X@odata.type\":\"Edm.Int32\"}", NB_EDM_INT32);
    assert_int_equal(v.i, 7);
    v = one(&a, "{\"X\":\"9223372036854775807\",\"X@odata.type\":\"Edm.Int64\"}", NB_EDM_INT64);
    assert_true(v.i == INT64_MAX);
    v = one(&a, "{\"X\":\"-9223372036854775808\",\"X@odata.type\":\"Edm.Int64\"}", NB_EDM_INT64);
    assert_true(v.i == INT64_MIN);
    v = one(&a, "{\"X\":5,\"X@odata.type\":\"Edm.Int64\"}", NB_EDM_INT64);
    assert_true(v.i == 5);
    v = one(&a, "{\"X\":\"-2.5e3\",\"X@odata.type\":\"Edm.Double\"}", NB_EDM_DOUBLE);
    assert_true(v.d == -2500.0);
    v = one(&a, "{\"X\":\".5\",\"X@odata.type\":\"Edm.Double\"}", NB_EDM_DOUBLE);
    assert_true(v.d == 0.5);
    v = one(&a, "{\"X\":\"7\",\"X@odata.type\":\"Edm.Double\"}", NB_EDM_DOUBLE);
    assert_true(v.d == 7.0);
    v = one(&a, "{\"X\":7,\"X@odata.type\":\"Edm.Double\"}", NB_EDM_DOUBLE);
    assert_true(v.d == 7.0);
    v = one(&a, "{\"X\":\"1e-400\",\"X@odata.type\":\"Edm.Double\"}", NB_EDM_DOUBLE);
    assert_true(v.d == 0.0);
    v = one(&a, "{\"X\":\"Infinity\",\"X@odata.type\":\"Edm.Double\"}", NB_EDM_DOUBLE);
    assert_true(isinf(v.d) && v.d > 0);
    v = one(&a, "{\"X\":\"-Infinity\",\"X@odata.type\":\"Edm.Double\"}", NB_EDM_DOUBLE);
    assert_true(isinf(v.d) && v.d < 0);
    v = one(&a, "{\"X\":\"NaN\",\"X@odata.type\":\"Edm.Double\"}", NB_EDM_DOUBLE);
    assert_true(isnan(v.d));
    /* DateTime: 7 digits kept, fewer padded, more cut, offsets folded to UTC */
    v = one(&a, "{\"X\":\"2026-11-22T01:33:05.6148770Z\",\"X@odata.type\":\"Edm.DateTime\"}",
            NB_EDM_DATETIME);
    assert_true(v.i == TS_2026);
    v = one(&a, "{\"X\":\"2026-11-22T01:33:05.614877012Z\",\"X@odata.type\":\"Edm.DateTime\"}",
            NB_EDM_DATETIME);
    assert_true(v.i == TS_2026);
    v = one(&a, "{\"X\":\"2026-11-22T03:33:05.614877+02:00\",\"X@odata.type\":\"Edm.DateTime\"}",
            NB_EDM_DATETIME);
    assert_true(v.i == TS_2026);
    v = one(&a, "{\"X\":\"1601-01-01T00:00:00Z\",\"X@odata.type\":\"Edm.DateTime\"}",
            NB_EDM_DATETIME);
    assert_true(v.i == NB_EDM_DATETIME_MIN_TICKS);
    v = one(&a, "{\"X\":\"C9DA6455-213D-42C9-9A79-3E9149A57833\",\"X@odata.type\":\"Edm.Guid\"}",
            NB_EDM_GUID);
    assert_string_equal(v.s, "c9da6455-213d-42c9-9a79-3e9149a57833");
    v = one(&a, "{\"X\":\"\",\"X@odata.type\":\"Edm.Binary\"}", NB_EDM_BINARY);
    assert_int_equal(v.len, 0);
    v = one(&a, "{\"X\":\"aGk=\",\"X@odata.type\":\"Edm.Binary\"}", NB_EDM_BINARY);
    assert_int_equal(v.len, 2);
    assert_memory_equal(v.s, "hi", 3); /* NUL after the bytes */
    v = one(&a, "{\"X\":\"\",\"X@odata.type\":\"Edm.String\"}", NB_EDM_STRING);
    assert_int_equal(v.len, 0);
    assert_string_equal(v.s, "");
    nb_arena_cleanup(&a);
}

static void test_infer(void **state)
{
    (void)state;
    struct nb_arena a;
    nb_arena_init(&a);
    struct nb_value v;
    v = one(&a, "{\"X\":\"30\"}", NB_EDM_STRING);
    assert_string_equal(v.s, "30");
    v = one(&a, "{\"X\":30}", NB_EDM_INT32);
    assert_int_equal(v.i, 30);
    v = one(&a, "{\"X\":2147483647}", NB_EDM_INT32);
    assert_int_equal(v.i, INT32_MAX);
    v = one(&a, "{\"X\":-2147483648}", NB_EDM_INT32);
    assert_int_equal(v.i, INT32_MIN);
    /* outside Int32: a Double, as Azure's OData reader (Int32 then Double) */
    v = one(&a, "{\"X\":2147483648}", NB_EDM_INT64);
    assert_true(v.i == 2147483648LL);
    v = one(&a, "{\"X\":-2147483649}", NB_EDM_INT64);
    assert_true(v.i == -2147483649LL);
    v = one(&a, "{\"X\":2.0}", NB_EDM_DOUBLE);
    assert_true(v.d == 2.0);
    v = one(&a, "{\"X\":1e5}", NB_EDM_DOUBLE);
    assert_true(v.d == 100000.0);
    v = one(&a, "{\"X\":-0.0}", NB_EDM_DOUBLE);
    assert_true(v.d == 0.0 && signbit(v.d));
    v = one(&a, "{\"X\":true}", NB_EDM_BOOLEAN);
    assert_true(v.b);
    v = one(&a, "{\"X\":false}", NB_EDM_BOOLEAN);
    assert_false(v.b);
    v = one(&a, "{\"X\":\"a\\u0000b\\n\"}", NB_EDM_STRING);
    assert_int_equal(v.len, 4);
    assert_memory_equal(v.s, "a\0b\n", 5);
    nb_arena_cleanup(&a);
}

static void test_dropped(void **state)
{
    (void)state;
    struct nb_arena a;
    struct nb_entity e;
    const char *c;
    nb_arena_init(&a);
    /* null omits the property (and its annotation), Timestamp and odata.*
     * are dropped, key annotations ignored whatever they say, a lone
     * annotation is ignored */
    assert_int_equal(
        parse("{\"odata.metadata\":\"x\",\"odata.etag\":\"W/1\",\"odata.type\":\"a.b\","
              "\"PartitionKey\":\"p\",\"PartitionKey@odata.type\":\"Edm.Int32\","
              "\"RowKey\":\"\",\"RowKey@odata.type\":7,"
              "\"Timestamp\":\"not a date\",\"Timestamp@odata.type\":\"Edm.Foo\","
              "\"N\":null,\"N@odata.type\":\"Edm.Int64\",\"M\":null,"
              "\"Ghost@odata.type\":\"Edm.Int64\",\"K\":1}",
              &a, &e, &c),
        NB_OK);
    assert_string_equal(e.pk, "p");
    assert_string_equal(e.rk, "");
    assert_int_equal(e.rk_len, 0);
    assert_int_equal(e.nprops, 1);
    assert_string_equal(e.props[0].name, "K");
    /* keys may be absent (they come from the URL) */
    assert_int_equal(parse("{\"K\":1}", &a, &e, &c), NB_OK);
    assert_null(e.pk);
    assert_null(e.rk);
    assert_int_equal(e.nprops, 1);
    assert_int_equal(parse("{}", &a, &e, &c), NB_OK);
    assert_int_equal(e.nprops, 0);
    assert_int_equal(parse(" \r\n{ } \n", &a, &e, &c), NB_OK);
    /* names are case-sensitive: these are custom properties */
    assert_int_equal(parse("{\"partitionkey\":\"x\",\"timestamp\":1}", &a, &e, &c), NB_OK);
    assert_int_equal(e.nprops, 2);
    assert_null(e.pk);
    nb_arena_cleanup(&a);
}

static void test_invalid_input(void **state)
{
    (void)state;
    const char *bad[] = {
        "",
        "   ",
        "null",
        "[1]",
        "[]",
        "\"x\"",
        "42",
        "{",
        "{\"a\":1,}",
        "{\"a\":1} x",
        "{\"a\":1}{}",
        "{'a':1}",
        "{\"a\":\"\\ud800\"}",
        "{\"a\":\"\xff\"}",
        /* nested values */
        "{\"X\":{}}",
        "{\"X\":[1]}",
        "{\"X\":{\"a\":1},\"X@odata.type\":\"Edm.String\"}",
        /* annotations */
        "{\"X\":1,\"X@odata.type\":\"Edm.Int16\"}",
        "{\"X\":1,\"X@odata.type\":\"edm.int32\"}",
        "{\"X\":1,\"X@odata.type\":5}",
        "{\"X\":1,\"X@odata.type\":null}",
        /* values that do not fit their type */
        "{\"X\":5,\"X@odata.type\":\"Edm.String\"}",
        "{\"X\":true,\"X@odata.type\":\"Edm.String\"}",
        "{\"X\":\"abc\",\"X@odata.type\":\"Edm.Int32\"}",
        "{\"X\":\"\",\"X@odata.type\":\"Edm.Int32\"}",
        "{\"X\":\"-\",\"X@odata.type\":\"Edm.Int32\"}",
        "{\"X\":\" 1\",\"X@odata.type\":\"Edm.Int32\"}",
        "{\"X\":\"1.0\",\"X@odata.type\":\"Edm.Int32\"}",
        "{\"X\":\"0x10\",\"X@odata.type\":\"Edm.Int32\"}",
        "{\"X\":2147483648,\"X@odata.type\":\"Edm.Int32\"}",
        "{\"X\":\"2147483648\",\"X@odata.type\":\"Edm.Int32\"}",
        "{\"X\":\"-2147483649\",\"X@odata.type\":\"Edm.Int32\"}",
        "{\"X\":1.5,\"X@odata.type\":\"Edm.Int32\"}",
        "{\"X\":1.0,\"X@odata.type\":\"Edm.Int64\"}",
        "{\"X\":true,\"X@odata.type\":\"Edm.Int64\"}",
        "{\"X\":\"9223372036854775808\",\"X@odata.type\":\"Edm.Int64\"}",
        "{\"X\":\"-9223372036854775809\",\"X@odata.type\":\"Edm.Int64\"}",
        "{\"X\":\"99999999999999999999999\",\"X@odata.type\":\"Edm.Int64\"}",
        "{\"X\":\"1L\",\"X@odata.type\":\"Edm.Int64\"}",
        "{\"X\":\"abc\",\"X@odata.type\":\"Edm.Double\"}",
        "{\"X\":\"\",\"X@odata.type\":\"Edm.Double\"}",
        "{\"X\":\"1.5 \",\"X@odata.type\":\"Edm.Double\"}",
        "{\"X\":\"1e\",\"X@odata.type\":\"Edm.Double\"}",
        "{\"X\":\".\",\"X@odata.type\":\"Edm.Double\"}",
        "{\"X\":\"inf\",\"X@odata.type\":\"Edm.Double\"}",
        "{\"X\":\"nan\",\"X@odata.type\":\"Edm.Double\"}",
        "{\"X\":\"0x1p3\",\"X@odata.type\":\"Edm.Double\"}",
        "{\"X\":\"1e400\",\"X@odata.type\":\"Edm.Double\"}",
        "{\"X\":true,\"X@odata.type\":\"Edm.Double\"}",
        "{\"X\":\"yes\",\"X@odata.type\":\"Edm.Boolean\"}",
        "{\"X\":\"1\",\"X@odata.type\":\"Edm.Boolean\"}",
        "{\"X\":1,\"X@odata.type\":\"Edm.Boolean\"}",
        "{\"X\":\"2023-13-01T00:00:00Z\",\"X@odata.type\":\"Edm.DateTime\"}",
        "{\"X\":\"2023-02-29T00:00:00Z\",\"X@odata.type\":\"Edm.DateTime\"}",
        "{\"X\":\"yesterday\",\"X@odata.type\":\"Edm.DateTime\"}",
        "{\"X\":\"1600-12-31T23:59:59.9999999Z\",\"X@odata.type\":\"Edm.DateTime\"}",
        "{\"X\":\"\",\"X@odata.type\":\"Edm.DateTime\"}",
        "{\"X\":1700000000,\"X@odata.type\":\"Edm.DateTime\"}",
        "{\"X\":\"c9da6455213d42c99a793e9149a57833\",\"X@odata.type\":\"Edm.Guid\"}",
        "{\"X\":\"{c9da6455-213d-42c9-9a79-3e9149a57833}\",\"X@odata.type\":\"Edm.Guid\"}",
        "{\"X\":\"g9da6455-213d-42c9-9a79-3e9149a57833\",\"X@odata.type\":\"Edm.Guid\"}",
        "{\"X\":1,\"X@odata.type\":\"Edm.Guid\"}",
        "{\"X\":\"!!!!\",\"X@odata.type\":\"Edm.Binary\"}",
        "{\"X\":\"aGk\",\"X@odata.type\":\"Edm.Binary\"}",
        "{\"X\":\"aG k=\",\"X@odata.type\":\"Edm.Binary\"}",
        "{\"X\":12,\"X@odata.type\":\"Edm.Binary\"}",
        /* keys of the wrong JSON type or with forbidden characters */
        "{\"PartitionKey\":1,\"RowKey\":\"r\"}",
        "{\"PartitionKey\":\"p\",\"RowKey\":null}",
        "{\"PartitionKey\":true}",
        "{\"RowKey\":[]}",
        "{\"PartitionKey\":\"a/b\"}",
        "{\"PartitionKey\":\"a\\\\b\"}",
        "{\"RowKey\":\"a#b\"}",
        "{\"RowKey\":\"a?b\"}",
        "{\"RowKey\":\"a\\tb\"}",
        "{\"RowKey\":\"\\u0000\"}",
        "{\"RowKey\":\"\\u001f\"}",
        "{\"RowKey\":\"\\u007f\"}",
        "{\"RowKey\":\"x\\u0085\"}",
        "{\"RowKey\":\"\\u009f\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_err(bad[i], NB_ERR_INVALID, "InvalidInput");
    /* NULL text */
    struct nb_arena a;
    struct nb_entity e;
    const char *c = NULL, *m = NULL;
    nb_arena_init(&a);
    assert_int_equal(nb_entity_from_json(NULL, 0, &a, &e, &c, &m), NB_ERR_INVALID);
    assert_string_equal(c, "InvalidInput");
    assert_string_equal(m, "One of the request inputs is not valid.");
    /* error_code and message may be NULL */
    assert_int_equal(nb_entity_from_json("[", 1, &a, &e, NULL, NULL), NB_ERR_INVALID);
    assert_int_equal(nb_entity_from_json("{}", 2, &a, &e, NULL, NULL), NB_OK);
    /* a length shorter than the text is honoured */
    assert_int_equal(nb_entity_from_json("{\"A\":1}garbage", 7, &a, &e, &c, &m), NB_OK);
    assert_int_equal(e.nprops, 1);
    nb_arena_cleanup(&a);
}

static void test_property_names(void **state)
{
    (void)state;
    struct nb_arena a;
    struct nb_entity e;
    const char *c;
    nb_arena_init(&a);
    const char *good[] = {"{\"a\":1}",
                          "{\"_\":1}",
                          "{\"_9\":1}",
                          "{\"Abc_123\":1}",
                          "{\"\xc3\xa9t\xc3\xa9\":1}",
                          "{\"\xe6\x97\xa5\xe6\x9c\xac\":1}"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        if (parse(good[i], &a, &e, &c) != NB_OK) fail_msg("%s: %s", good[i], c);
    const char *bad[] = {"{\"\":1}",
                         "{\"1a\":1}",
                         "{\"a-b\":1}",
                         "{\"a b\":1}",
                         "{\"a.b\":1}",
                         "{\"a@b\":1}",
                         "{\"@odata.type\":1}",
                         "{\"a$\":1}",
                         "{\"x\\u0085\":1}",
                         "{\"odata\":1,\"a\\u0001\":1}",
                         "{\"a@odata.types\":1}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_err(bad[i], NB_ERR_INVALID, "PropertyNameInvalid");
    /* null values still need a valid name */
    expect_err("{\"a-b\":null}", NB_ERR_INVALID, "PropertyNameInvalid");

    /* 255 units is the limit; a name of 128 non-BMP characters is 256 */
    char body[2048];
    char name[1100];
    memset(name, 'n', 255);
    name[255] = '\0';
    snprintf(body, sizeof(body), "{\"%s\":1}", name);
    assert_int_equal(parse(body, &a, &e, &c), NB_OK);
    assert_int_equal(e.props[0].name_len, 255);
    name[255] = 'n';
    name[256] = '\0';
    snprintf(body, sizeof(body), "{\"%s\":1}", name);
    expect_err(body, NB_ERR_TOO_LARGE, "PropertyNameTooLong");
    name[0] = '\0';
    for (int i = 0; i < 128; i++)
        strncat(name, "\xf0\x9f\x98\x80", sizeof(name) - strlen(name) - 1);
    snprintf(body, sizeof(body), "{\"%s\":1}", name);
    expect_err(body, NB_ERR_TOO_LARGE, "PropertyNameTooLong");
    name[127 * 4] = '\0';
    snprintf(body, sizeof(body), "{\"%s\":1}", name);
    assert_int_equal(parse(body, &a, &e, &c), NB_OK);
    nb_arena_cleanup(&a);
}

static void test_duplicates(void **state)
{
    (void)state;
    expect_err("{\"A\":1,\"A\":2}", NB_ERR_INVALID, "DuplicatePropertiesSpecified");
    expect_err("{\"PartitionKey\":\"a\",\"PartitionKey\":\"a\"}", NB_ERR_INVALID,
               "DuplicatePropertiesSpecified");
    expect_err("{\"A\":1,\"A@odata.type\":\"Edm.Int32\",\"A@odata.type\":\"Edm.Int32\"}",
               NB_ERR_INVALID, "DuplicatePropertiesSpecified");
    /* case differs: two properties */
    struct nb_arena a;
    struct nb_entity e;
    const char *c;
    nb_arena_init(&a);
    assert_int_equal(parse("{\"A\":1,\"a\":2}", &a, &e, &c), NB_OK);
    assert_int_equal(e.nprops, 2);
    nb_arena_cleanup(&a);
}

/* {"PartitionKey":"p","X":"<n copies of unit>"} */
static char *string_body(const char *unit, size_t n, const char *type)
{
    size_t ul = strlen(unit);
    size_t cap = 128 + n * ul;
    char *s = malloc(cap);
    size_t o = (size_t)snprintf(s, cap, "{\"PartitionKey\":\"p\",\"X\":\"");
    for (size_t i = 0; i < n; i++, o += ul)
        memcpy(s + o, unit, ul);
    snprintf(s + o, cap - o, "\"%s%s%s}", type ? ",\"X@odata.type\":\"" : "", type ? type : "",
             type ? "\"" : "");
    return s;
}

static void test_value_limits(void **state)
{
    (void)state;
    struct nb_arena a;
    struct nb_entity e;
    const char *c;
    nb_arena_init(&a);
    char *s = string_body("a", 32768, NULL);
    assert_int_equal(parse(s, &a, &e, &c), NB_OK);
    assert_int_equal(e.props[0].v.len, 32768);
    free(s);
    s = string_body("a", 32769, "Edm.String");
    expect_err(s, NB_ERR_TOO_LARGE, "PropertyValueTooLarge");
    free(s);
    /* UTF-16 units, not bytes: 32768 'é' (65536 bytes) fit, 16385 emoji do not */
    s = string_body("\xc3\xa9", 32768, NULL);
    assert_int_equal(parse(s, &a, &e, &c), NB_OK);
    free(s);
    s = string_body("\xf0\x9f\x98\x80", 16384, NULL);
    assert_int_equal(parse(s, &a, &e, &c), NB_OK);
    free(s);
    s = string_body("\xf0\x9f\x98\x80", 16385, NULL);
    expect_err(s, NB_ERR_TOO_LARGE, "PropertyValueTooLarge");
    free(s);
    /* Binary: 65536 bytes ("AAAA" is 3 zero bytes; "AA==" one more) */
    char *b = string_body("AAAA", 21845, NULL);
    char *p = strstr(b, "\"}");
    size_t off = (size_t)(p - b);
    char *bb = malloc(off + 64);
    memcpy(bb, b, off);
    snprintf(bb + off, 64, "AA==\",\"X@odata.type\":\"Edm.Binary\"}");
    assert_int_equal(parse(bb, &a, &e, &c), NB_OK);
    assert_int_equal(e.props[0].v.type, NB_EDM_BINARY);
    assert_int_equal(e.props[0].v.len, 65536);
    snprintf(bb + off, 64, "AAA=\",\"X@odata.type\":\"Edm.Binary\"}");
    expect_err(bb, NB_ERR_TOO_LARGE, "PropertyValueTooLarge");
    free(bb);
    free(b);
    nb_arena_cleanup(&a);
}

static void test_key_limits(void **state)
{
    (void)state;
    struct nb_arena a;
    struct nb_entity e;
    const char *c;
    char body[8192];
    char key[3000];
    nb_arena_init(&a);
    memset(key, 'k', 512);
    key[512] = '\0';
    snprintf(body, sizeof(body), "{\"PartitionKey\":\"%s\",\"RowKey\":\"%s\"}", key, key);
    assert_int_equal(parse(body, &a, &e, &c), NB_OK);
    assert_int_equal(e.pk_len, 512);
    key[512] = 'k';
    key[513] = '\0';
    snprintf(body, sizeof(body), "{\"PartitionKey\":\"%s\"}", key);
    expect_err(body, NB_ERR_TOO_LARGE, "OutOfRangeInput");
    snprintf(body, sizeof(body), "{\"RowKey\":\"%s\"}", key);
    expect_err(body, NB_ERR_TOO_LARGE, "OutOfRangeInput");
    /* 256 emoji = 512 units */
    key[0] = '\0';
    for (int i = 0; i < 257; i++)
        strncat(key, "\xf0\x9f\x98\x80", sizeof(key) - strlen(key) - 1);
    snprintf(body, sizeof(body), "{\"RowKey\":\"%s\"}", key);
    expect_err(body, NB_ERR_TOO_LARGE, "OutOfRangeInput");
    key[256 * 4] = '\0';
    snprintf(body, sizeof(body), "{\"RowKey\":\"%s\"}", key);
    assert_int_equal(parse(body, &a, &e, &c), NB_OK);
    nb_arena_cleanup(&a);
}

static void test_key_ok(void **state)
{
    (void)state;
    assert_true(nb_entity_key_ok("", 0));
    assert_true(nb_entity_key_ok(NULL, 0));
    assert_true(nb_entity_key_ok("abc", 3));
    const char *odd = "a b'c&\xc3\xa9 +=,;:!@$%^*()[]{}~|<>\"";
    assert_true(nb_entity_key_ok(odd, strlen(odd)));
    assert_true(nb_entity_key_ok("\xc2\xa0", 2));         /* U+00A0 */
    assert_true(nb_entity_key_ok("\xf0\x9f\x98\x80", 4)); /* U+1F600 */
    assert_true(nb_entity_key_ok("\xef\xbf\xbf", 3));     /* U+FFFF */
    const char *bad[] = {"/",
                         "a\\b",
                         "#",
                         "?x",
                         "\x01",
                         "\x1f",
                         "\x7f",
                         "\t",
                         "\xc2\x80",
                         "\xc2\x85",
                         "\xc2\x9f", /* C1 controls */
                         "\xff",
                         "\xc0\xaf",
                         "\xe0\x80\xaf",
                         "\xed\xa0\x80", /* bad UTF-8 */
                         "\xf4\x90\x80\x80",
                         "\xc3",
                         "\xe6\x97",
                         "\x80"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (nb_entity_key_ok(bad[i], strlen(bad[i]))) fail_msg("accepted key %zu", i);
    assert_false(nb_entity_key_ok("a\0b", 3));
    char key[1100];
    memset(key, 'x', sizeof(key));
    assert_true(nb_entity_key_ok(key, 512));
    assert_false(nb_entity_key_ok(key, 513));
    for (int i = 0; i < 256; i++)
        memcpy(key + 2 * i, "\xc3\xa9", 2);
    assert_true(nb_entity_key_ok(key, 512)); /* 256 units */
    assert_int_equal(nb_entity_utf16_len("a\xc3\xa9\xe6\x97\xa5\xf0\x9f\x98\x80", 10), 5);
}

static void test_too_many_properties(void **state)
{
    (void)state;
    struct nb_arena a;
    struct nb_entity e;
    const char *c;
    struct nb_buf b;
    nb_arena_init(&a);
    nb_buf_init(&b, 1 << 20);
    nb_buf_adds(&b, "{\"PartitionKey\":\"p\",\"RowKey\":\"r\",\"Timestamp\":\"x\",\"n\":null");
    for (int i = 0; i < 252; i++)
        nb_buf_printf(&b, ",\"P%d\":%d", i, i);
    nb_buf_adds(&b, "}");
    assert_int_equal(parse(b.data, &a, &e, &c), NB_OK);
    assert_int_equal(e.nprops, 252);
    b.len--;
    nb_buf_adds(&b, ",\"P252\":1}");
    expect_err(b.data, NB_ERR_TOO_LARGE, "TooManyProperties");
    nb_buf_cleanup(&b);
    nb_arena_cleanup(&a);
}

static void test_entity_size(void **state)
{
    (void)state;
    struct nb_arena a;
    struct nb_entity e;
    const char *c;
    nb_arena_init(&a);
    assert_int_equal(parse("{\"PartitionKey\":\"pk\",\"RowKey\":\"r\xc3\xa9\","
                           "\"S\":\"ab\",\"I\":1,\"L\":\"1\",\"L@odata.type\":\"Edm.Int64\","
                           "\"D\":1.5,\"B\":true,\"T\":\"2020-01-01T00:00:00Z\","
                           "\"T@odata.type\":\"Edm.DateTime\","
                           "\"G\":\"c9da6455-213d-42c9-9a79-3e9149a57833\","
                           "\"G@odata.type\":\"Edm.Guid\","
                           "\"X\":\"aGk=\",\"X@odata.type\":\"Edm.Binary\"}",
                           &a, &e, &c),
                     NB_OK);
    /* 4 + 2*2 + 2*2 + 8 props * (8 + 2) + values (4+4) + 4 + 8 + 8 + 1 + 8 + 16 + (2+4) */
    size_t want = 4 + 4 + 4 + 8 * 10 + 8 + 4 + 8 + 8 + 1 + 8 + 16 + 6;
    assert_int_equal(nb_entity_size(&e), want);
    struct nb_buf enc;
    nb_buf_init(&enc, 1 << 20);
    assert_int_equal(nb_entity_encode(&e, &enc), NB_OK);
    assert_int_equal(nb_entity_encoded_size(enc.data, enc.len), want - 12);
    assert_int_equal(nb_entity_encoded_size("", 0), 0);
    assert_true(nb_entity_encoded_size("\x02", 1) == (size_t)-1);
    nb_buf_cleanup(&enc);

    /* 16 strings of 32768 units fit (16 * (8 + 4 + 65540) + ...), 17 do not */
    struct nb_buf b;
    nb_buf_init(&b, 8 << 20);
    nb_buf_adds(&b, "{\"PartitionKey\":\"p\"");
    char *big = malloc(32769);
    memset(big, 'z', 32768);
    big[32768] = '\0';
    for (int i = 0; i < 15; i++)
        nb_buf_printf(&b, ",\"S%d\":\"%s\"", i, big);
    nb_buf_adds(&b, "}");
    assert_int_equal(parse(b.data, &a, &e, &c), NB_OK);
    assert_true(nb_entity_size(&e) <= NB_ENTITY_MAX_SIZE);
    b.len--;
    nb_buf_printf(&b, ",\"S15\":\"%s\",\"S16\":\"%s\"}", big, big);
    expect_err(b.data, NB_ERR_TOO_LARGE, "EntityTooLarge");
    free(big);
    nb_buf_cleanup(&b);
    nb_arena_cleanup(&a);
}

/* ---- encoding -------------------------------------------------------------- */

static bool same_value(const struct nb_value *x, const struct nb_value *y)
{
    if (x->type != y->type) return false;
    switch (x->type) {
    case NB_EDM_STRING:
    case NB_EDM_GUID:
    case NB_EDM_BINARY:
        return x->len == y->len && memcmp(x->s, y->s, x->len) == 0 && x->s[x->len] == '\0' &&
               y->s[y->len] == '\0';
    case NB_EDM_DOUBLE: return memcmp(&x->d, &y->d, sizeof(double)) == 0;
    case NB_EDM_BOOLEAN: return x->b == y->b;
    default: return x->i == y->i;
    }
}

static void assert_same_props(const struct nb_entity *x, const struct nb_entity *y)
{
    assert_int_equal(x->nprops, y->nprops);
    for (size_t i = 0; i < x->nprops; i++) {
        assert_int_equal(x->props[i].name_len, y->props[i].name_len);
        assert_memory_equal(x->props[i].name, y->props[i].name, x->props[i].name_len + 1);
        if (!same_value(&x->props[i].v, &y->props[i].v)) fail_msg("property %s", x->props[i].name);
    }
}

static const char ALL_TYPES[] =
    "{\"S\":\"a\\u0000\\\"\\\\\\n\xc3\xa9\xf0\x9f\x98\x80\",\"E\":\"\",\"I\":-2147483648,"
    "\"J\":2147483647,\"L\":\"-9223372036854775808\",\"L@odata.type\":\"Edm.Int64\","
    "\"M\":\"9223372036854775807\",\"M@odata.type\":\"Edm.Int64\",\"D\":0.1,\"W\":2.0,"
    "\"Z\":-0.0,\"H\":1e300,\"Tiny\":5e-324,\"N\":\"NaN\",\"N@odata.type\":\"Edm.Double\","
    "\"P\":\"Infinity\",\"P@odata.type\":\"Edm.Double\",\"Q\":\"-Infinity\","
    "\"Q@odata.type\":\"Edm.Double\",\"B\":true,\"F\":false,"
    "\"T\":\"1601-01-01T00:00:00Z\",\"T@odata.type\":\"Edm.DateTime\","
    "\"U\":\"9999-12-31T23:59:59.9999999Z\",\"U@odata.type\":\"Edm.DateTime\","
    "\"G\":\"C9DA6455-213D-42C9-9A79-3E9149A57833\",\"G@odata.type\":\"Edm.Guid\","
    "\"X\":\"AAFiaW5hcnn/"
    "\",\"X@odata.type\":\"Edm.Binary\",\"Y\":\"\",\"Y@odata.type\":\"Edm.Binary\"}";

static void test_encode_roundtrip(void **state)
{
    (void)state;
    struct nb_arena a;
    struct nb_entity e, d;
    const char *c;
    struct nb_buf b;
    nb_arena_init(&a);
    nb_buf_init(&b, 1 << 20);
    assert_int_equal(parse(ALL_TYPES, &a, &e, &c), NB_OK);
    assert_int_equal(e.nprops, 21);
    assert_int_equal(nb_entity_encode(&e, &b), NB_OK);
    memset(&d, 0x55, sizeof(d));
    char *copy = malloc(b.len);
    memcpy(copy, b.data, b.len);
    assert_int_equal(nb_entity_decode(copy, b.len, &a, &d), NB_OK);
    memset(copy, 0, b.len); /* decode copied into the arena */
    free(copy);
    assert_same_props(&e, &d);
    /* decode touches only props */
    assert_true(d.timestamp == 0x5555555555555555LL);

    /* appending: encode keeps what the buffer held */
    struct nb_buf b2;
    nb_buf_init(&b2, 1 << 20);
    nb_buf_adds(&b2, "prefix");
    assert_int_equal(nb_entity_encode(&e, &b2), NB_OK);
    assert_int_equal(b2.len, 6 + b.len);
    assert_memory_equal(b2.data + 6, b.data, b.len);
    /* a buffer too small fails and is left as it was */
    struct nb_buf small;
    nb_buf_init(&small, 20);
    nb_buf_adds(&small, "ab");
    assert_int_equal(nb_entity_encode(&e, &small), NB_ERR_TOO_LARGE);
    assert_int_equal(small.len, 2);
    assert_string_equal(small.data, "ab");
    nb_buf_cleanup(&small);
    nb_buf_cleanup(&b2);

    /* no properties */
    struct nb_entity empty = {0};
    nb_buf_reset(&b);
    assert_int_equal(nb_entity_encode(&empty, &b), NB_OK);
    assert_int_equal(b.len, 2);
    assert_int_equal(nb_entity_decode(b.data, b.len, &a, &d), NB_OK);
    assert_int_equal(d.nprops, 0);
    assert_int_equal(nb_entity_decode(NULL, 0, &a, &d), NB_OK);
    assert_int_equal(d.nprops, 0);
    nb_buf_cleanup(&b);
    nb_arena_cleanup(&a);
}

static void test_decode_corrupt(void **state)
{
    (void)state;
    struct nb_arena a;
    struct nb_entity e, d;
    const char *c;
    struct nb_buf b;
    struct nb_value v;
    nb_arena_init(&a);
    nb_buf_init(&b, 1 << 20);
    assert_int_equal(parse(ALL_TYPES, &a, &e, &c), NB_OK);
    assert_int_equal(nb_entity_encode(&e, &b), NB_OK);
    /* every truncation is detected */
    for (size_t n = 1; n < b.len; n++) {
        if (nb_entity_decode(b.data, n, &a, &d) != NB_ERR_STORE) fail_msg("truncated at %zu", n);
        assert_true(nb_entity_encoded_size(b.data, n) == (size_t)-1);
    }
    /* trailing bytes, wrong version, wrong count */
    nb_buf_addc(&b, 0);
    assert_int_equal(nb_entity_decode(b.data, b.len, &a, &d), NB_ERR_STORE);
    b.len--;
    b.data[0] = 2;
    assert_int_equal(nb_entity_decode(b.data, b.len, &a, &d), NB_ERR_STORE);
    assert_false(nb_entity_encoded_lookup(b.data, b.len, "S", 1, &v));
    b.data[0] = 1;
    b.data[1]++;
    assert_int_equal(nb_entity_decode(b.data, b.len, &a, &d), NB_ERR_STORE);
    b.data[1]--;
    assert_int_equal(nb_entity_decode(b.data, b.len, &a, &d), NB_OK);
    /* hand-made bad entries: count, name, tag, payload */
    const struct {
        const char *data;
        size_t len;
    } bad[] = {
        {"\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11},     /* huge count */
        {"\x01\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01", 12}, /* endless varint */
        {"\x01\x01\x01"
         "A"
         "x"
         "B\x00",
         7}, /* name not NUL-terminated */
        {"\x01\x01\x01"
         "A\x00"
         "Z\x00",
         7}, /* unknown tag */
        {"\x01\x01\x01"
         "A\x00"
         "B\x02",
         7}, /* boolean 2 */
        {"\x01\x01\x01"
         "A\x00"
         "G\x03"
         "abc\x00",
         10}, /* guid of 3 bytes */
        {"\x01\x01\x01"
         "A\x00"
         "S\x03"
         "abcd",
         10}, /* string without NUL */
        {"\x01\x01\x01"
         "A\x00"
         "S\x09"
         "abc\x00",
         10}, /* string past the end */
        {"\x01\x01\x01"
         "A\x00"
         "I\x01\x02\x03",
         9}, /* short int32 */
        {"\x01\x01\x01"
         "A\x00"
         "L\x01\x02\x03\x04\x05\x06\x07",
         13}, /* short int64 */
        {"\x01\x01\x01"
         "A\x00"
         "D",
         6}, /* no double */
        {"\x01\x01\x01"
         "A\x00",
         5},         /* no tag */
        {"\x01", 1}, /* no count */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (nb_entity_decode(bad[i].data, bad[i].len, &a, &d) != NB_ERR_STORE)
            fail_msg("accepted corrupt encoding %zu", i);
        assert_false(nb_entity_encoded_lookup(bad[i].data, bad[i].len, "A", 1, &v));
    }
    /* and a good hand-made one */
    assert_int_equal(nb_entity_decode("\x01\x01\x01"
                                      "A\x00"
                                      "B\x01",
                                      7, &a, &d),
                     NB_OK);
    assert_int_equal(d.nprops, 1);
    assert_true(d.props[0].v.b);
    nb_buf_cleanup(&b);
    nb_arena_cleanup(&a);
}

static void test_encoded_lookup(void **state)
{
    (void)state;
    struct nb_arena a;
    struct nb_entity e;
    const char *c;
    struct nb_buf b;
    struct nb_value v;
    nb_arena_init(&a);
    nb_buf_init(&b, 1 << 20);
    assert_int_equal(parse(ALL_TYPES, &a, &e, &c), NB_OK);
    assert_int_equal(nb_entity_encode(&e, &b), NB_OK);
    for (size_t i = 0; i < e.nprops; i++) {
        memset(&v, 0, sizeof(v));
        assert_true(
            nb_entity_encoded_lookup(b.data, b.len, e.props[i].name, e.props[i].name_len, &v));
        assert_true(same_value(&v, &e.props[i].v));
        if (v.s) {
            /* zero copy: borrowed from the encoded bytes */
            assert_true(v.s >= b.data && v.s < b.data + b.len);
        }
    }
    assert_false(nb_entity_encoded_lookup(b.data, b.len, "Missing", 7, &v));
    assert_false(nb_entity_encoded_lookup(b.data, b.len, "s", 1, &v));  /* case-sensitive */
    assert_false(nb_entity_encoded_lookup(b.data, b.len, "Ti", 2, &v)); /* prefix of Tiny */
    assert_false(nb_entity_encoded_lookup(b.data, b.len, "Tinyy", 5, &v));
    assert_true(nb_entity_encoded_lookup(b.data, b.len, "Tiny", 4, &v));
    assert_false(nb_entity_encoded_lookup("", 0, "S", 1, &v));
    assert_false(nb_entity_encoded_lookup(NULL, 0, "S", 1, &v));
    nb_buf_cleanup(&b);
    nb_arena_cleanup(&a);
}

static void encode_json(const char *json, struct nb_buf *out)
{
    struct nb_arena a;
    struct nb_entity e;
    const char *c;
    nb_arena_init(&a);
    nb_buf_init(out, 16 << 20);
    if (parse(json, &a, &e, &c) != NB_OK) fail_msg("%s: %s", json, c);
    assert_int_equal(nb_entity_encode(&e, out), NB_OK);
    nb_arena_cleanup(&a);
}

static void test_merge(void **state)
{
    (void)state;
    struct nb_buf base, patch, out;
    struct nb_arena a;
    struct nb_entity d;
    nb_arena_init(&a);
    encode_json("{\"A\":1,\"B\":\"x\",\"C\":true}", &base);
    encode_json("{\"PartitionKey\":\"p\",\"D\":\"2020-01-01T00:00:00Z\",\"D@odata.type\":"
                "\"Edm.DateTime\",\"B\":2.5}",
                &patch);
    nb_buf_init(&out, 1 << 20);
    nb_buf_adds(&out, "keep");
    assert_int_equal(nb_entity_merge_encoded(base.data, base.len, patch.data, patch.len, &out),
                     NB_OK);
    assert_memory_equal(out.data, "keep", 4);
    assert_int_equal(nb_entity_decode(out.data + 4, out.len - 4, &a, &d), NB_OK);
    assert_int_equal(d.nprops, 4);
    assert_string_equal(d.props[0].name, "A");
    assert_int_equal(d.props[0].v.i, 1);
    assert_string_equal(d.props[1].name, "B"); /* replaced in place, new type */
    assert_int_equal(d.props[1].v.type, NB_EDM_DOUBLE);
    assert_true(d.props[1].v.d == 2.5);
    assert_string_equal(d.props[2].name, "C");
    assert_string_equal(d.props[3].name, "D"); /* appended */
    assert_int_equal(d.props[3].v.type, NB_EDM_DATETIME);

    /* empty sides: an empty encoding and a zero-length one */
    struct nb_buf none;
    encode_json("{}", &none);
    nb_buf_reset(&out);
    assert_int_equal(nb_entity_merge_encoded(none.data, none.len, patch.data, patch.len, &out),
                     NB_OK);
    assert_int_equal(nb_entity_decode(out.data, out.len, &a, &d), NB_OK);
    assert_int_equal(d.nprops, 2);
    nb_buf_reset(&out);
    assert_int_equal(nb_entity_merge_encoded(base.data, base.len, NULL, 0, &out), NB_OK);
    assert_int_equal(out.len, base.len);
    assert_memory_equal(out.data, base.data, base.len);
    nb_buf_reset(&out);
    assert_int_equal(nb_entity_merge_encoded(NULL, 0, NULL, 0, &out), NB_OK);
    assert_int_equal(nb_entity_decode(out.data, out.len, &a, &d), NB_OK);
    assert_int_equal(d.nprops, 0);

    /* corrupt input: NB_ERR_STORE, out unchanged */
    nb_buf_reset(&out);
    nb_buf_adds(&out, "x");
    assert_int_equal(nb_entity_merge_encoded(base.data, base.len - 1, patch.data, patch.len, &out),
                     NB_ERR_STORE);
    assert_int_equal(nb_entity_merge_encoded(base.data, base.len, "\x07", 1, &out), NB_ERR_STORE);
    assert_int_equal(out.len, 1);

    /* out of room */
    struct nb_buf tiny;
    nb_buf_init(&tiny, 8);
    assert_int_equal(nb_entity_merge_encoded(base.data, base.len, patch.data, patch.len, &tiny),
                     NB_ERR_TOO_LARGE);
    assert_int_equal(tiny.len, 0);
    nb_buf_cleanup(&tiny);

    /* 252 + 1 properties: NB_ERR_RANGE (TooManyProperties) */
    struct nb_buf j, many, one_more;
    nb_buf_init(&j, 1 << 20);
    nb_buf_adds(&j, "{\"Z\":0");
    for (int i = 0; i < 251; i++)
        nb_buf_printf(&j, ",\"P%d\":%d", i, i);
    nb_buf_adds(&j, "}");
    encode_json(j.data, &many);
    encode_json("{\"Q\":1,\"Z\":2}", &one_more);
    nb_buf_reset(&out);
    assert_int_equal(
        nb_entity_merge_encoded(many.data, many.len, one_more.data, one_more.len, &out),
        NB_ERR_RANGE);
    assert_int_equal(out.len, 0);
    /* replacing only is fine */
    assert_int_equal(nb_entity_merge_encoded(many.data, many.len, patch.data + 0, 0, &out), NB_OK);

    /* over 1 MiB together: NB_ERR_TOO_LARGE (EntityTooLarge) */
    struct nb_buf half1, half2;
    char *big = malloc(32769);
    memset(big, 'z', 32768);
    big[32768] = '\0';
    nb_buf_reset(&j);
    nb_buf_adds(&j, "{\"S0\":\"\"");
    for (int i = 0; i < 10; i++)
        nb_buf_printf(&j, ",\"S%d\":\"%s\"", i + 100, big);
    nb_buf_adds(&j, "}");
    encode_json(j.data, &half1);
    nb_buf_reset(&j);
    nb_buf_adds(&j, "{\"S0\":\"\"");
    for (int i = 0; i < 10; i++)
        nb_buf_printf(&j, ",\"S%d\":\"%s\"", i + 200, big);
    nb_buf_adds(&j, "}");
    encode_json(j.data, &half2);
    nb_buf_reset(&out);
    assert_int_equal(nb_entity_merge_encoded(half1.data, half1.len, half2.data, half2.len, &out),
                     NB_ERR_TOO_LARGE);
    assert_int_equal(out.len, 0);
    assert_int_equal(nb_entity_merge_encoded(half1.data, half1.len, half1.data, half1.len, &out),
                     NB_OK);
    free(big);

    nb_buf_cleanup(&half1);
    nb_buf_cleanup(&half2);
    nb_buf_cleanup(&j);
    nb_buf_cleanup(&many);
    nb_buf_cleanup(&one_more);
    nb_buf_cleanup(&none);
    nb_buf_cleanup(&base);
    nb_buf_cleanup(&patch);
    nb_buf_cleanup(&out);
    nb_arena_cleanup(&a);
}

/* ---- metadata level, ETag -------------------------------------------------- */

static void test_meta_level(void **state)
{
    (void)state;
    assert_int_equal(nb_entity_meta_level(NULL, NULL), NB_META_MINIMAL);
    assert_int_equal(nb_entity_meta_level("application/json", NULL), NB_META_MINIMAL);
    assert_int_equal(nb_entity_meta_level("application/json;odata=minimalmetadata", NULL),
                     NB_META_MINIMAL);
    assert_int_equal(nb_entity_meta_level("application/json;odata=nometadata", NULL), NB_META_NONE);
    assert_int_equal(nb_entity_meta_level("application/json; odata=fullmetadata", NULL),
                     NB_META_FULL);
    assert_int_equal(nb_entity_meta_level("application/json;odata=fullmetadata", NULL),
                     NB_META_FULL);
    assert_int_equal(nb_entity_meta_level("Application/JSON;OData=FullMetadata", ""), NB_META_FULL);
    assert_int_equal(nb_entity_meta_level("application/json;odata=nometadata;streaming=true", NULL),
                     NB_META_NONE);
    assert_int_equal(nb_entity_meta_level("*/*", NULL), NB_META_MINIMAL);
    /* $format wins */
    assert_int_equal(nb_entity_meta_level("application/json;odata=nometadata",
                                          "application/json;odata=fullmetadata"),
                     NB_META_FULL);
    assert_int_equal(nb_entity_meta_level("application/json;odata=fullmetadata", "json"),
                     NB_META_MINIMAL);
}

static void test_etag(void **state)
{
    (void)state;
    int64_t t;
    assert_int_equal(nb_edm_datetime_parse("2026-11-22T01:33:05.6148770Z", 28, &t), NB_OK);
    assert_true(t == TS_2026);
    char etag[NB_ENTITY_ETAG_LEN];
    nb_entity_etag(t, etag, sizeof(etag));
    assert_string_equal(etag, "W/\"datetime'2026-11-22T01%3A33%3A05.6148770Z'\"");
    nb_entity_etag(0, etag, sizeof(etag));
    assert_string_equal(etag, "W/\"datetime'1970-01-01T00%3A00%3A00.0000000Z'\"");
    nb_entity_etag(NB_EDM_DATETIME_MIN_TICKS, etag, sizeof(etag));
    assert_string_equal(etag, "W/\"datetime'1601-01-01T00%3A00%3A00.0000000Z'\"");
    char small[8];
    nb_entity_etag(t, small, sizeof(small));
    assert_string_equal(small, "W/\"date");
    nb_entity_etag(t, small, 0); /* no-op */
}

/* ---- response JSON ------------------------------------------------------- */

#define MD_URL "http://127.0.0.1:10002/devstoreaccount1/$metadata#mytable/@Element"
#define ETAG_2026 "W/\\\"datetime'2026-11-22T01%3A33%3A05.6148770Z'\\\""
#define PROPS_MINIMAL                                                                              \
    "\"Str\":\"text 'q' \xc3\xa9\",\"Int32\":42,\"Big@odata.type\":\"Edm.Int64\","                 \
    "\"Big\":\"1099511627776\",\"Dbl\":3.5,\"DblWhole\":2.0,\"Bool\":true,"                        \
    "\"When@odata.type\":\"Edm.DateTime\",\"When\":\"2023-05-06T07:08:09.1234560Z\","              \
    "\"Id@odata.type\":\"Edm.Guid\",\"Id\":\"c9da6455-213d-42c9-9a79-3e9149a57833\","              \
    "\"Bin@odata.type\":\"Edm.Binary\",\"Bin\":\"AAFiaW5hcnn/\","                                  \
    "\"Nan@odata.type\":\"Edm.Double\",\"Nan\":\"NaN\""

static char *to_json(const struct nb_entity *e, const struct nb_entity_json_opts *o)
{
    struct nb_buf b;
    nb_buf_init(&b, 1 << 20);
    assert_int_equal(nb_entity_to_json(e, o, &b), NB_OK);
    size_t len;
    char *s = nb_buf_detach(&b, &len);
    assert_int_equal(strlen(s), len);
    return s;
}

static void sdk_entity(struct nb_arena *a, struct nb_entity *e)
{
    const char *c;
    assert_int_equal(parse(SDK_BODY, a, e, &c), NB_OK);
    e->timestamp = TS_2026;
}

static void test_json_minimal(void **state)
{
    (void)state;
    struct nb_arena a;
    struct nb_entity e;
    nb_arena_init(&a);
    sdk_entity(&a, &e);
    struct nb_entity_json_opts o = {.level = NB_META_MINIMAL,
                                    .metadata_url = MD_URL,
                                    .account = "devstoreaccount1",
                                    .table = "mytable",
                                    .base_url = "http://127.0.0.1:10002/devstoreaccount1"};
    char *s = to_json(&e, &o);
    assert_string_equal(s, "{\"odata.metadata\":\"" MD_URL "\",\"odata.etag\":\"" ETAG_2026
                           "\",\"PartitionKey\":\"pk1\",\"RowKey\":\"rk1\","
                           "\"Timestamp\":\"2026-11-22T01:33:05.6148770Z\"," PROPS_MINIMAL "}");
    free(s);
    /* a query row: no odata.metadata; a given etag wins */
    o.metadata_url = NULL;
    o.etag = "W/\"x\"";
    s = to_json(&e, &o);
    assert_string_equal(s, "{\"odata.etag\":\"W/\\\"x\\\"\",\"PartitionKey\":\"pk1\",\"RowKey\":"
                           "\"rk1\",\"Timestamp\":\"2026-11-22T01:33:05.6148770Z\"," PROPS_MINIMAL
                           "}");
    free(s);
    /* no timestamp and no etag: neither is written */
    o.etag = NULL;
    e.timestamp = 0;
    e.pk = NULL;
    s = to_json(&e, &o);
    assert_string_equal(s, "{\"RowKey\":\"rk1\"," PROPS_MINIMAL "}");
    free(s);
    nb_arena_cleanup(&a);
}

static void test_json_full(void **state)
{
    (void)state;
    struct nb_arena a;
    struct nb_entity e;
    nb_arena_init(&a);
    sdk_entity(&a, &e);
    struct nb_entity_json_opts o = {.level = NB_META_FULL,
                                    .metadata_url = MD_URL,
                                    .account = "devstoreaccount1",
                                    .table = "mytable",
                                    .base_url = "http://127.0.0.1:10002/devstoreaccount1"};
    char *s = to_json(&e, &o);
    assert_string_equal(
        s, "{\"odata.metadata\":\"" MD_URL "\",\"odata.type\":\"devstoreaccount1.mytable\","
           "\"odata.id\":\"http://127.0.0.1:10002/devstoreaccount1/mytable(PartitionKey='pk1',"
           "RowKey='rk1')\",\"odata.etag\":\"" ETAG_2026 "\",\"odata.editLink\":\"mytable("
           "PartitionKey='pk1',RowKey='rk1')\",\"PartitionKey\":\"pk1\",\"RowKey\":\"rk1\","
           "\"Timestamp@odata.type\":\"Edm.DateTime\",\"Timestamp\":\"2026-11-22T01:33:05."
           "6148770Z\"," PROPS_MINIMAL "}");
    free(s);
    /* keys are quoted as in request URLs */
    e.pk = "a b'c&\xc3\xa9";
    e.pk_len = strlen(e.pk);
    e.rk = "r%20+=?#x";
    e.rk_len = strlen(e.rk);
    e.nprops = 0;
    o.metadata_url = NULL;
    s = to_json(&e, &o);
    assert_string_equal(
        s, "{\"odata.type\":\"devstoreaccount1.mytable\",\"odata.id\":\"http://127.0.0.1:10002/"
           "devstoreaccount1/mytable(PartitionKey='a%20b%27%27c%26%C3%A9',RowKey='r%2520%2B%3D%"
           "3F%23x')\",\"odata.etag\":\"" ETAG_2026 "\",\"odata.editLink\":\"mytable(PartitionKey="
           "'a%20b%27%27c%26%C3%A9',RowKey='r%2520%2B%3D%3F%23x')\",\"PartitionKey\":\"a "
           "b'c&\xc3\xa9\","
           "\"RowKey\":\"r%20+=?#x\",\"Timestamp@odata.type\":\"Edm.DateTime\","
           "\"Timestamp\":\"2026-11-22T01:33:05.6148770Z\"}");
    free(s);
    /* without account/table/base_url those keys are skipped */
    struct nb_entity_json_opts bare = {.level = NB_META_FULL};
    e.timestamp = 0;
    s = to_json(&e, &bare);
    assert_string_equal(s, "{\"PartitionKey\":\"a b'c&\xc3\xa9\",\"RowKey\":\"r%20+=?#x\"}");
    free(s);
    nb_arena_cleanup(&a);
}

static void test_json_none(void **state)
{
    (void)state;
    struct nb_arena a;
    struct nb_entity e;
    nb_arena_init(&a);
    sdk_entity(&a, &e);
    struct nb_entity_json_opts o = {.level = NB_META_NONE,
                                    .metadata_url = MD_URL,
                                    .account = "devstoreaccount1",
                                    .table = "mytable",
                                    .base_url = "http://x",
                                    .etag = "W/\"x\""};
    char *s = to_json(&e, &o);
    assert_string_equal(s,
                        "{\"PartitionKey\":\"pk1\",\"RowKey\":\"rk1\","
                        "\"Timestamp\":\"2026-11-22T01:33:05.6148770Z\",\"Str\":\"text 'q' "
                        "\xc3\xa9\",\"Int32\":42,\"Big\":\"1099511627776\",\"Dbl\":3.5,"
                        "\"DblWhole\":2.0,\"Bool\":true,\"When\":\"2023-05-06T07:08:09.1234560Z\","
                        "\"Id\":\"c9da6455-213d-42c9-9a79-3e9149a57833\",\"Bin\":\"AAFiaW5hcnn/\","
                        "\"Nan\":\"NaN\"}");
    free(s);
    nb_arena_cleanup(&a);
}

static void test_json_values(void **state)
{
    (void)state;
    struct nb_arena a;
    struct nb_entity e;
    const char *c;
    nb_arena_init(&a);
    struct nb_entity_json_opts o = {.level = NB_META_MINIMAL};
    const struct {
        const char *in, *out;
    } cases[] = {
        {"{\"X\":2.0}", "{\"X\":2.0}"},
        {"{\"X\":-0.0}", "{\"X\":-0.0}"},
        {"{\"X\":0.1}", "{\"X\":0.1}"},
        {"{\"X\":1.5}", "{\"X\":1.5}"},
        {"{\"X\":123456789.125}", "{\"X\":123456789.125}"},
        {"{\"X\":0.30000000000000004}", "{\"X\":0.30000000000000004}"},
        {"{\"X\":1e20}", "{\"X\":1e+20}"},
        {"{\"X\":1e15}", "{\"X\":1e+15}"},
        {"{\"X\":123456789012345.0}", "{\"X\":123456789012345.0}"},
        {"{\"X\":2147483648}", "{\"X@odata.type\":\"Edm.Int64\",\"X\":\"2147483648\"}"},
        {"{\"X\":9007199254740993}",
         "{\"X@odata.type\":\"Edm.Int64\",\"X\":\"9007199254740993\"}"},
        {"{\"X\":5e-324}", "{\"X\":4.94065645841247e-324}"},
        {"{\"X\":1.7976931348623157e308}", "{\"X\":1.7976931348623157e+308}"},
        {"{\"X\":\"Infinity\",\"X@odata.type\":\"Edm.Double\"}",
         "{\"X@odata.type\":\"Edm.Double\",\"X\":\"Infinity\"}"},
        {"{\"X\":\"-Infinity\",\"X@odata.type\":\"Edm.Double\"}",
         "{\"X@odata.type\":\"Edm.Double\",\"X\":\"-Infinity\"}"},
        {"{\"X\":-2147483648}", "{\"X\":-2147483648}"},
        {"{\"X\":\"-9223372036854775808\",\"X@odata.type\":\"Edm.Int64\"}",
         "{\"X@odata.type\":\"Edm.Int64\",\"X\":\"-9223372036854775808\"}"},
        {"{\"X\":false}", "{\"X\":false}"},
        {"{\"X\":\"2023-05-06T07:08:09Z\",\"X@odata.type\":\"Edm.DateTime\"}",
         "{\"X@odata.type\":\"Edm.DateTime\",\"X\":\"2023-05-06T07:08:09.0000000Z\"}"},
        {"{\"X\":\"\",\"X@odata.type\":\"Edm.Binary\"}",
         "{\"X@odata.type\":\"Edm.Binary\",\"X\":\"\"}"},
        {"{\"X\":\"q\\\"b\\\\s/\\u0000\\u0001\\b\\f\\n\\r\\t\\u001f\\u007f\xe2\x80\xa8\"}",
         "{\"X\":\"q\\\"b\\\\s/\\u0000\\u0001\\b\\f\\n\\r\\t\\u001f\x7f\xe2\x80\xa8\"}"},
        {"{\"\xc3\xa9\":1}", "{\"\xc3\xa9\":1}"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (parse(cases[i].in, &a, &e, &c) != NB_OK) fail_msg("%s: %s", cases[i].in, c);
        char *s = to_json(&e, &o);
        if (strcmp(s, cases[i].out) != 0)
            fail_msg("%s -> %s, want %s", cases[i].in, s, cases[i].out);
        free(s);
    }
    nb_arena_cleanup(&a);
}

static void test_json_select(void **state)
{
    (void)state;
    struct nb_arena a;
    struct nb_entity e;
    nb_arena_init(&a);
    sdk_entity(&a, &e);
    const char *sel[] = {"Bool", "Missing", "Big", "RowKey"};
    struct nb_entity_json_opts o = {.level = NB_META_MINIMAL, .select = sel, .nselect = 4};
    char *s = to_json(&e, &o);
    /* properties keep entity order; odata.etag is always there */
    assert_string_equal(s, "{\"odata.etag\":\"" ETAG_2026 "\",\"RowKey\":\"rk1\","
                           "\"Big@odata.type\":\"Edm.Int64\",\"Big\":\"1099511627776\","
                           "\"Bool\":true}");
    free(s);
    const char *sys[] = {"Timestamp", "PartitionKey"};
    o.select = sys;
    o.nselect = 2;
    o.level = NB_META_FULL;
    o.table = "t";
    s = to_json(&e, &o);
    assert_string_equal(s,
                        "{\"odata.etag\":\"" ETAG_2026 "\",\"odata.editLink\":\"t(PartitionKey="
                        "'pk1',RowKey='rk1')\",\"PartitionKey\":\"pk1\",\"Timestamp@odata.type\":"
                        "\"Edm.DateTime\",\"Timestamp\":\"2026-11-22T01:33:05.6148770Z\"}");
    free(s);
    o.level = NB_META_NONE;
    const char *lower[] = {"bool"}; /* case-sensitive */
    o.select = lower;
    o.nselect = 1;
    s = to_json(&e, &o);
    assert_string_equal(s, "{}");
    free(s);
    /* nselect == 0: everything */
    o.nselect = 0;
    s = to_json(&e, &o);
    assert_non_null(strstr(s, "\"Nan\":\"NaN\""));
    free(s);
    nb_arena_cleanup(&a);
}

static void test_json_limits(void **state)
{
    (void)state;
    struct nb_arena a;
    struct nb_entity e;
    nb_arena_init(&a);
    sdk_entity(&a, &e);
    struct nb_entity_json_opts o = {.level = NB_META_FULL,
                                    .metadata_url = MD_URL,
                                    .account = "a",
                                    .table = "t",
                                    .base_url = "http://b"};
    struct nb_buf full;
    nb_buf_init(&full, 1 << 20);
    nb_buf_adds(&full, "[");
    assert_int_equal(nb_entity_to_json(&e, &o, &full), NB_OK);
    /* every smaller maximum fails cleanly and leaves the buffer as it was */
    for (size_t max = 1; max < full.len; max += 7) {
        struct nb_buf b;
        nb_buf_init(&b, max);
        nb_buf_adds(&b, "[");
        if (nb_entity_to_json(&e, &o, &b) != NB_ERR_TOO_LARGE) fail_msg("max %zu", max);
        assert_int_equal(b.len, 1);
        nb_buf_cleanup(&b);
    }
    nb_buf_cleanup(&full);
    nb_arena_cleanup(&a);
}

/* Whatever from_json accepts, to_json writes back so that from_json reads
 * the same types and values (minimal and full metadata). */
static void test_json_roundtrip(void **state)
{
    (void)state;
    struct nb_arena a;
    struct nb_entity e, back;
    const char *c;
    nb_arena_init(&a);
    const char *bodies[] = {ALL_TYPES, SDK_BODY, CLI_BODY};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(parse(bodies[i], &a, &e, &c), NB_OK);
        e.timestamp = TS_2026;
        for (int level = NB_META_MINIMAL; level <= NB_META_FULL; level++) {
            struct nb_entity_json_opts o = {.level = (enum nb_meta_level)level,
                                            .metadata_url = MD_URL,
                                            .account = "a",
                                            .table = "t",
                                            .base_url = "http://b"};
            char *s = to_json(&e, &o);
            if (parse(s, &a, &back, &c) != NB_OK) fail_msg("%s: %s", s, c);
            assert_same_props(&e, &back);
            if (e.pk) assert_string_equal(back.pk, e.pk);
            free(s);
        }
    }
    nb_arena_cleanup(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sdk_entity),
        cmocka_unit_test(test_cli_entity),
        cmocka_unit_test(test_infer),
        cmocka_unit_test(test_dropped),
        cmocka_unit_test(test_invalid_input),
        cmocka_unit_test(test_property_names),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_value_limits),
        cmocka_unit_test(test_key_limits),
        cmocka_unit_test(test_key_ok),
        cmocka_unit_test(test_too_many_properties),
        cmocka_unit_test(test_entity_size),
        cmocka_unit_test(test_encode_roundtrip),
        cmocka_unit_test(test_decode_corrupt),
        cmocka_unit_test(test_encoded_lookup),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_meta_level),
        cmocka_unit_test(test_etag),
        cmocka_unit_test(test_json_minimal),
        cmocka_unit_test(test_json_full),
        cmocka_unit_test(test_json_none),
        cmocka_unit_test(test_json_values),
        cmocka_unit_test(test_json_select),
        cmocka_unit_test(test_json_limits),
        cmocka_unit_test(test_json_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
