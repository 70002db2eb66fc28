/* $filter: parser (literals, precedence, errors, limits), evaluator (Azure's
 * typed comparison rules against a small entity), key-range extraction and
 * the residue, plus a brute-force check that scan-range + residue selects
 * exactly the rows the whole filter selects. */
/* cmocka needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "table/filter.h"

/* ---- helpers ---- */

struct prop {
    const char *name;
    struct nb_value v;
};

struct entity {
    const struct prop *props;
    size_t n;
};

static bool lookup(void *ctx, const char *name, size_t len, struct nb_value *out)
{
    const struct entity *e = ctx;
    for (size_t i = 0; i < e->n; i++) {
        if (strlen(e->props[i].name) == len && memcmp(e->props[i].name, name, len) == 0) {
            *out = e->props[i].v;
            return true;
        }
    }
    return false;
}

/* clang-format off */
#define S(x) { .type = NB_EDM_STRING, .s = (x), .len = sizeof(x) - 1 }
#define I32(x) { .type = NB_EDM_INT32, .i = (x) }
#define I64(x) { .type = NB_EDM_INT64, .i = (x) }
#define DBL(x) { .type = NB_EDM_DOUBLE, .d = (x) }
#define BOOL(x) { .type = NB_EDM_BOOLEAN, .b = (x) }
#define DT(x) { .type = NB_EDM_DATETIME, .i = (x) }
#define GUID(x) { .type = NB_EDM_GUID, .s = (x), .len = 36 }
#define BIN(x) { .type = NB_EDM_BINARY, .s = (x), .len = sizeof(x) - 1 }
/* clang-format on */

/* 2023-05-06T07:08:09.1234567Z in ticks since 1970. */
#define WHEN_TICKS 16833568891234567LL

/* The entity of the protocol spec's §3.2 example, plus a few extras. */
static const struct prop sample_props[] = {
    {"PartitionKey", S("pk1")},
    {"RowKey", S("rk1")},
    {"Timestamp", DT(WHEN_TICKS)},
    {"Str", S("text 'q' \xc3\xa9")},
    {"Int32", I32(42)},
    {"Five", I32(5)},
    {"Five64", I64(5)},
    {"FiveDbl", DBL(5.0)},
    {"Half", DBL(2.5)},
    {"Big", I64(1099511627776LL)},
    {"Dbl", DBL(3.5)},
    {"DblWhole", DBL(2.0)},
    {"Bool", BOOL(true)},
    {"Off", BOOL(false)},
    {"When", DT(WHEN_TICKS)},
    {"Id", GUID("c9da6455-213d-42c9-9a79-3e9149a57833")},
    {"IdStr", S("c9da6455-213d-42c9-9a79-3e9149a57833")},
    {"Bin", BIN("\x00\x01"
                "binary\xff")},
    {"Bytes", BIN("\x00\x01\xff")},
    {"Nan", DBL(NAN)},
    {"Empty", S("")},
    {"Copy", S("pk1")},
};
static const struct entity sample = {sample_props, sizeof(sample_props) / sizeof(sample_props[0])};

static struct nb_filter *parse_ok(const char *text)
{
    struct nb_filter *f = NULL;
    char err[256];
    enum nb_err rc = nb_filter_parse(text, strlen(text), &f, err, sizeof(err));
    if (rc != NB_OK) fail_msg("parse failed for \"%s\": %s", text, err);
    assert_non_null(f);
    return f;
}

static void assert_canon(const char *text, const char *want)
{
    struct nb_filter *f = parse_ok(text);
    struct nb_buf b;
    nb_buf_init(&b, 1 << 16);
    assert_int_equal(nb_filter_to_string(f, &b), NB_OK);
    if (strcmp(nb_buf_cstr(&b), want) != 0)
        fail_msg("\"%s\": got \"%s\", want \"%s\"", text, nb_buf_cstr(&b), want);
    /* The canonical form is a fixed point. */
    struct nb_filter *g = parse_ok(nb_buf_cstr(&b));
    struct nb_buf b2;
    nb_buf_init(&b2, 1 << 16);
    assert_int_equal(nb_filter_to_string(g, &b2), NB_OK);
    assert_string_equal(nb_buf_cstr(&b2), want);
    nb_buf_cleanup(&b2);
    nb_buf_cleanup(&b);
    nb_filter_free(g);
    nb_filter_free(f);
}

/* Parsing fails with NB_ERR_INVALID and a message containing `fragment`. */
static void assert_parse_error(const char *text, const char *fragment)
{
    struct nb_filter *f = (struct nb_filter *)&f; /* must be reset to NULL */
    char err[256];
    memset(err, 'x', sizeof(err));
    enum nb_err rc = nb_filter_parse(text, strlen(text), &f, err, sizeof(err));
    if (rc != NB_ERR_INVALID) fail_msg("\"%s\" parsed (rc %d)", text, rc);
    assert_null(f);
    assert_non_null(memchr(err, '\0', sizeof(err)));
    if (!strstr(err, fragment))
        fail_msg("\"%s\": message \"%s\" lacks \"%s\"", text, err, fragment);
}

static bool eval_on(const char *text, const struct entity *e)
{
    struct nb_filter *f = parse_ok(text);
    bool r = nb_filter_eval(f, lookup, (void *)e);
    nb_filter_free(f);
    return r;
}

#define MATCH(text) assert_true(eval_on((text), &sample))
#define NO_MATCH(text) assert_false(eval_on((text), &sample))

static char *residue_text(const char *text)
{
    struct nb_filter *f = parse_ok(text);
    struct nb_filter *r = nb_filter_residue(f);
    nb_filter_free(f); /* the residue owns its memory */
    if (!r) return NULL;
    struct nb_buf b;
    nb_buf_init(&b, 1 << 16);
    assert_int_equal(nb_filter_to_string(r, &b), NB_OK);
    nb_filter_free(r);
    size_t len;
    return nb_buf_detach(&b, &len);
}

static void assert_residue(const char *text, const char *want)
{
    char *got = residue_text(text);
    if (!want) {
        if (got) fail_msg("\"%s\": residue \"%s\", want none", text, got);
        return;
    }
    if (!got) fail_msg("\"%s\": no residue, want \"%s\"", text, want);
    if (strcmp(got, want) != 0) fail_msg("\"%s\": residue \"%s\", want \"%s\"", text, got, want);
    free(got);
}

static void assert_bound(const struct nb_key_bound *b, const char *key, bool inclusive)
{
    if (!key) {
        assert_false(b->set);
        return;
    }
    assert_true(b->set);
    assert_int_equal(b->len, strlen(key));
    assert_memory_equal(b->key, key, b->len);
    assert_int_equal(b->inclusive, inclusive);
}

/* Range of `text`: each bound as key + inclusive flag, NULL key = unset. */
static void assert_range(const char *text, const char *pk_lo, bool pk_lo_inc, const char *pk_hi,
                         bool pk_hi_inc, const char *rk_lo, bool rk_lo_inc, const char *rk_hi,
                         bool rk_hi_inc)
{
    struct nb_filter *f = parse_ok(text);
    struct nb_key_range r;
    memset(&r, 0xa5, sizeof(r));
    nb_filter_key_range(f, &r);
    assert_false(r.empty);
    assert_bound(&r.pk_lo, pk_lo, pk_lo_inc);
    assert_bound(&r.pk_hi, pk_hi, pk_hi_inc);
    assert_bound(&r.rk_lo, rk_lo, rk_lo_inc);
    assert_bound(&r.rk_hi, rk_hi, rk_hi_inc);
    nb_filter_free(f);
}

static void assert_empty_range(const char *text)
{
    struct nb_filter *f = parse_ok(text);
    struct nb_key_range r;
    nb_filter_key_range(f, &r);
    if (!r.empty) fail_msg("\"%s\": range not empty", text);
    assert_false(r.pk_lo.set || r.pk_hi.set || r.rk_lo.set || r.rk_hi.set);
    nb_filter_free(f);
}

#define FULL NULL, false, NULL, false, NULL, false, NULL, false

/* ---- parser ---- */

static void test_string_and_bool_literals(void **state)
{
    (void)state;
    assert_canon("A eq 'x'", "(A eq 'x')");
    assert_canon("A eq 'it''s'", "(A eq 'it''s')");
    assert_canon("A eq ''''", "(A eq '''')");
    assert_canon("A eq ''", "(A eq '')");
    assert_canon("A eq 'a b\tc (and) or not'", "(A eq 'a b\tc (and) or not')");
    assert_canon("A eq '\xc3\xa9\xe4\xb8\xad'", "(A eq '\xc3\xa9\xe4\xb8\xad')");
    assert_canon("A eq true", "(A eq true)");
    assert_canon("false ne A", "(false ne A)");
}

static void test_integer_literals(void **state)
{
    (void)state;
    assert_canon("A eq 42", "(A eq 42)");
    assert_canon("A eq -42", "(A eq -42)");
    assert_canon("A eq 007", "(A eq 7)");
    assert_canon("A eq 2147483647", "(A eq 2147483647)");
    assert_canon("A eq -2147483648", "(A eq -2147483648)");
    /* Plain integers beyond Int32 are Int64 (the Python SDK sends them so). */
    assert_canon("A eq 2147483648", "(A eq 2147483648L)");
    assert_canon("A eq -2147483649", "(A eq -2147483649L)");
    assert_canon("A eq 1099511627776", "(A eq 1099511627776L)");
    assert_canon("A eq 5L", "(A eq 5L)");
    assert_canon("A eq 5l", "(A eq 5L)");
    assert_canon("A eq 9223372036854775807L", "(A eq 9223372036854775807L)");
    assert_canon("A eq -9223372036854775808L", "(A eq -9223372036854775808L)");
    assert_canon("A eq 9223372036854775807", "(A eq 9223372036854775807L)");
    assert_parse_error("A eq 9223372036854775808L", "out of the Int64 range");
    assert_parse_error("A eq 9223372036854775808", "out of the Int64 range");
    assert_parse_error("A eq -9223372036854775809L", "out of the Int64 range");
    assert_parse_error("A eq 99999999999999999999999999", "out of the Int64 range");
    assert_parse_error("A eq 1.5L", "must be an integer");
    assert_parse_error("A eq 1e3L", "must be an integer");
    assert_parse_error("A eq 5LL", "after a number");
}

static void test_double_literals(void **state)
{
    (void)state;
    assert_canon("A eq 1.5", "(A eq 1.5)");
    assert_canon("A eq 2.0", "(A eq 2.0)");
    assert_canon("A eq -3.2", "(A eq -3.2)");
    assert_canon("A eq 1e5", "(A eq 100000.0)");
    assert_canon("A eq 1E+5", "(A eq 100000.0)");
    assert_canon("A eq 1.5e-3", "(A eq 0.0015)");
    assert_canon("A eq 0.1", "(A eq 0.1)");
    assert_canon("A eq 2d", "(A eq 2.0)");
    assert_canon("A eq 2.5D", "(A eq 2.5)");
    assert_canon("A eq 1e300", "(A eq 1e+300)");
    assert_canon("A eq -0.0", "(A eq -0.0)");
    assert_canon("A eq 1e-400", "(A eq 0.0)"); /* underflow rounds to zero */
    assert_canon("A eq 0.30000000000000004", "(A eq 0.30000000000000004)");
    assert_parse_error("A eq 1e999", "Double literal out of range");
    assert_parse_error("A eq .5", "unexpected character '.'");
    assert_parse_error("A eq 5.", "digits expected after the decimal point");
    assert_parse_error("A eq 1e", "digits expected in the exponent");
    assert_parse_error("A eq 1e+", "digits expected in the exponent");
    assert_parse_error("A eq 1.5.3", "unexpected character '.' after a number");
    assert_parse_error("A eq 1.5M", "decimal (M) and single (F)");
    assert_parse_error("A eq 1.5f", "decimal (M) and single (F)");
    assert_parse_error("A eq - 5", "'-' must be followed by digits");
    assert_parse_error("A eq -x", "'-' must be followed by digits");
    assert_parse_error("A eq +5", "unexpected character '+'");
}

static void test_typed_literals(void **state)
{
    (void)state;
    assert_canon("A eq datetime'2024-01-01T00:00:00.000000Z'",
                 "(A eq datetime'2024-01-01T00:00:00.0000000Z')");
    assert_canon("A lt DateTime'2024-01-01T02:00:00+02:00'",
                 "(A lt datetime'2024-01-01T00:00:00.0000000Z')");
    assert_canon("A lt DATETIME'2023-05-06T07:08:09.1234567Z'",
                 "(A lt datetime'2023-05-06T07:08:09.1234567Z')");
    assert_canon("A eq guid'C9DA6455-213D-42C9-9A79-3E9149A57833'",
                 "(A eq guid'c9da6455-213d-42c9-9a79-3e9149a57833')");
    assert_canon("A eq GUID'c9da6455-213d-42c9-9a79-3e9149a57833'",
                 "(A eq guid'c9da6455-213d-42c9-9a79-3e9149a57833')");
    assert_canon("A eq X'0001'", "(A eq X'0001')");
    assert_canon("A eq x'ABff'", "(A eq X'abff')");
    assert_canon("A eq binary'0001'", "(A eq X'0001')");
    assert_canon("A eq Binary'00'", "(A eq X'00')");
    assert_canon("A eq X''", "(A eq X'')");
    assert_parse_error("A eq datetime'2024-13-01T00:00:00Z'", "invalid datetime literal");
    assert_parse_error("A eq datetime''", "invalid datetime literal");
    assert_parse_error("A eq datetime'2024-01-01'", "invalid datetime literal");
    assert_parse_error("A eq datetime'1600-12-31T00:00:00Z'", "outside 1601-01-01..9999-12-31");
    assert_parse_error("A eq datetime'2024-01-01T00:00:00Z", "unterminated literal");
    assert_parse_error("A eq guid'xyz'", "invalid guid literal 'xyz'");
    assert_parse_error("A eq guid'{c9da6455-213d-42c9-9a79-3e9149a57833}'", "invalid guid");
    assert_parse_error("A eq X'001'", "odd number of hex digits");
    assert_parse_error("A eq X'0g'", "non-hex digit");
    assert_parse_error("A eq binary' 0'", "non-hex digit");
    /* Other words before a quote are words: `eq'a'` is eq then 'a'. */
    assert_canon("PartitionKey eq'a'", "(PartitionKey eq 'a')");
    assert_parse_error("A eq time'10:00'", "unexpected ''10:00''");
    assert_parse_error("A eq datetimeoffset'2024-01-01T00:00:00Z'", "unexpected");
}

static void test_sdk_filter(void **state)
{
    (void)state;
    /* Captured from azure-data-tables 12.4.2 with parameters (spec §3.4). */
    assert_canon("When lt datetime'2024-01-01T00:00:00.000000Z' or Id eq "
                 "guid'c9da6455-213d-42c9-9a79-3e9149a57833' or Big eq 1099511627776L or Bin "
                 "eq X'0001' or Bool eq true or Dbl gt 1.5",
                 "((When lt datetime'2024-01-01T00:00:00.0000000Z') or (Id eq "
                 "guid'c9da6455-213d-42c9-9a79-3e9149a57833') or (Big eq 1099511627776L) or "
                 "(Bin eq X'0001') or (Bool eq true) or (Dbl gt 1.5))");
    assert_canon("PartitionKey eq 'pk2' and RowKey eq 'it''s'",
                 "((PartitionKey eq 'pk2') and (RowKey eq 'it''s'))");
    assert_canon("TableName eq 'mytable'", "(TableName eq 'mytable')");
}

static void test_precedence_and_parentheses(void **state)
{
    (void)state;
    assert_canon("a eq 1 or b eq 2 and c eq 3", "((a eq 1) or ((b eq 2) and (c eq 3)))");
    assert_canon("a eq 1 and b eq 2 or c eq 3", "(((a eq 1) and (b eq 2)) or (c eq 3))");
    assert_canon("(a eq 1 or b eq 2) and c eq 3", "(((a eq 1) or (b eq 2)) and (c eq 3))");
    assert_canon("not a eq 1 and b eq 2", "((not (a eq 1)) and (b eq 2))");
    assert_canon("not (a eq 1 and b eq 2)", "(not ((a eq 1) and (b eq 2)))");
    assert_canon("not not Flag", "(not (not Flag))");
    assert_canon("not Flag or not Other", "((not Flag) or (not Other))");
    /* Chains are flat, however they were parenthesised. */
    assert_canon("(a eq 1 and b eq 2) and c eq 3", "((a eq 1) and (b eq 2) and (c eq 3))");
    assert_canon("a eq 1 and (b eq 2 and (c eq 3 and d eq 4))",
                 "((a eq 1) and (b eq 2) and (c eq 3) and (d eq 4))");
    assert_canon("(a eq 1 or b eq 2) or (c eq 3 or d eq 4)",
                 "((a eq 1) or (b eq 2) or (c eq 3) or (d eq 4))");
    assert_canon("((((a eq 1))))", "(a eq 1)");
    assert_canon("(a) eq (1)", "(a eq 1)");
    /* A condition as an operand. */
    assert_canon("(a eq 1) eq true", "((a eq 1) eq true)");
    assert_canon("(not Flag) eq false", "((not Flag) eq false)");
    assert_canon("(a eq 1 or b eq 2) ne (c eq 3)", "(((a eq 1) or (b eq 2)) ne (c eq 3))");
}

static void test_operands_both_sides(void **state)
{
    (void)state;
    assert_canon("'a' lt PartitionKey", "('a' lt PartitionKey)");
    assert_canon("5 ge Age", "(5 ge Age)");
    assert_canon("Age eq Other", "(Age eq Other)");
    assert_canon("PartitionKey eq RowKey", "(PartitionKey eq RowKey)");
    assert_canon("1 eq 1", "(1 eq 1)");
    assert_canon("_under_9 eq 1", "(_under_9 eq 1)");
    assert_canon("Gr\xc3\xb6\xc3\x9f"
                 "e gt 3",
                 "(Gr\xc3\xb6\xc3\x9f"
                 "e gt 3)");
}

static void test_bare_conditions_and_empty(void **state)
{
    (void)state;
    assert_canon("Flag", "Flag");
    assert_canon("true", "true");
    assert_canon("false or Flag", "(false or Flag)");
    assert_canon("", "true");
    assert_canon(" \t\r\n", "true");
    assert_parse_error("5", "must be a condition, not a Edm.Int32 literal");
    assert_parse_error("'x'", "must be a condition, not a Edm.String literal");
    assert_parse_error("(5)", "must be a condition");
    assert_parse_error("'x' and Flag", "'and' needs conditions, not a Edm.String literal");
    assert_parse_error("Flag or 1.5", "'or' needs conditions, not a Edm.Double literal");
    assert_parse_error("not 5", "'not' needs a condition, not a Edm.Int32 literal");
    assert_parse_error("not X'00'", "'not' needs a condition");
}

static void test_whitespace_and_boundaries(void **state)
{
    (void)state;
    assert_canon("(a eq 1)and(b eq 2)", "((a eq 1) and (b eq 2))");
    assert_canon("a eq 'x'and b eq 'y'", "((a eq 'x') and (b eq 'y'))");
    assert_canon("not(a eq 1)", "(not (a eq 1))");
    assert_canon("  a\teq\t1  \n and\r\nb  eq 2 ", "((a eq 1) and (b eq 2))");
    assert_parse_error("PartitionKeyeq'a'", "unexpected ''a''");
    assert_parse_error("a eq 1and b eq 2", "unexpected character 'a' after a number");
    assert_parse_error("a eq 1 andb eq 2", "unexpected 'andb'");
    assert_parse_error("aeq 1", "unexpected '1'");
    assert_parse_error("a eq 1 notb", "unexpected 'notb'");
}

static void test_keywords_lowercase(void **state)
{
    (void)state;
    assert_parse_error("a EQ 1", "unexpected 'EQ'");
    assert_parse_error("a EQ 1", "keywords are lowercase");
    assert_parse_error("a eq 1 AND b eq 2", "keywords are lowercase");
    assert_parse_error("a eq 1 Or b eq 2", "keywords are lowercase");
    assert_parse_error("NOT Flag", "keywords are lowercase");
    assert_parse_error("(a eq 1 AND b eq 2)", "expected ')'");
    /* TRUE is not the keyword true: it is a property named TRUE. */
    assert_canon("a eq TRUE", "(a eq TRUE)");
}

static void test_syntax_errors(void **state)
{
    (void)state;
    assert_parse_error("a eq", "expected a property name, a literal or '(', got the end");
    assert_parse_error("a eq 1 and", "got the end of the filter (at offset 10)");
    assert_parse_error("a eq 1 b", "unexpected 'b', expected 'and', 'or' or the end");
    assert_parse_error("a eq 1 b", "(at offset 7)");
    assert_parse_error("(a eq 1", "expected ')' to close the '(' at offset 0, got the end");
    assert_parse_error("a eq 1)", "unexpected ')'");
    assert_parse_error("()", "got ')'");
    assert_parse_error("a eq 'abc", "unterminated string literal (at offset 5)");
    assert_parse_error("'abc''", "unterminated string literal");
    assert_parse_error("a eq 1 eq 2", "comparisons do not chain");
    assert_parse_error("a eq eq 1", "got 'eq'");
    assert_parse_error("eq 1", "got 'eq'");
    assert_parse_error("a eq 1 and or b eq 2", "got 'or'");
    assert_parse_error("a eq #", "unexpected character '#'");
    assert_parse_error("a eq \"x\"", "unexpected character '\"'");
    assert_parse_error("a eq $x", "unexpected character '$'");
    assert_parse_error("a eq 1 \x01", "unexpected byte 0x01");
    assert_parse_error("a.b eq 1", "unexpected character '.'");
    assert_parse_error("startswith(a, 'x')", "unexpected '('");
    /* Messages are printable ASCII whatever the input. */
    assert_parse_error("a eq 1\xc3\xa9", "unexpected character '?' after a number");
    assert_parse_error("Gr\xc3\xb6\xc3\x9f"
                       "e Gr\xc3\xb6\xc3\x9f"
                       "e",
                       "unexpected 'Gr????e'");
    assert_parse_error("a eq guid'\x01\xff'", "invalid guid literal '?" "?'");
    assert_parse_error("a eq 'x' b234567890123456789012345678901", "'b23456789012345678901234...'");
    /* Azure answers `X eq null` with 400 InvalidInput. */
    assert_parse_error("a eq null", "null is not supported");
    assert_parse_error("null", "null is not supported");
}

static void test_error_buffer(void **state)
{
    (void)state;
    struct nb_filter *f;
    char err[8];
    assert_int_equal(nb_filter_parse("a eq", 4, &f, err, sizeof(err)), NB_ERR_INVALID);
    assert_int_equal(strlen(err), sizeof(err) - 1);
    assert_int_equal(nb_filter_parse("a eq", 4, &f, NULL, 0), NB_ERR_INVALID);
    assert_null(f);
    err[0] = 'x';
    assert_int_equal(nb_filter_parse("a eq", 4, &f, err, 0), NB_ERR_INVALID);
    assert_int_equal(err[0], 'x');
    /* The length is honoured: bytes past it are not read. */
    assert_int_equal(nb_filter_parse("a eq 1 garbage", 6, &f, NULL, 0), NB_OK);
    nb_filter_free(f);
    /* Embedded NUL bytes are bytes, legal inside strings only. */
    assert_int_equal(nb_filter_parse("a eq 'x\0y'", 10, &f, NULL, 0), NB_OK);
    struct nb_buf b;
    nb_buf_init(&b, 100);
    assert_int_equal(nb_filter_to_string(f, &b), NB_OK);
    assert_int_equal(b.len, 12);
    assert_memory_equal(b.data, "(a eq 'x\0y')", 12);
    nb_buf_cleanup(&b);
    nb_filter_free(f);
    assert_int_equal(nb_filter_parse("a eq\0 1", 7, &f, NULL, 0), NB_ERR_INVALID);
    nb_filter_free(NULL);
}

static void test_comparison_limit(void **state)
{
    (void)state;
    char text[1024] = "";
    for (int i = 0; i < NB_FILTER_MAX_COMPARISONS; i++) {
        char one[32];
        snprintf(one, sizeof(one), "%sP%d eq %d", i ? " and " : "", i, i);
        strncat(text, one, sizeof(text) - strlen(text) - 1);
    }
    struct nb_filter *f = parse_ok(text);
    nb_filter_free(f);
    strncat(text, " or X eq 1", sizeof(text) - strlen(text) - 1);
    assert_parse_error(text, "more than 15 comparisons");
    /* Comparisons count wherever they are, including as operands. */
    assert_parse_error("(a eq 1) eq (b eq 2) and (c eq 1) eq (d eq 2) and (e eq 1) eq (f eq 2) "
                       "and (g eq 1) eq (h eq 2) and (i eq 1) eq (j eq 2) and (k eq 1) eq true",
                       "more than 15 comparisons");
    /* Bare Boolean properties are not comparisons. */
    f = parse_ok("A and B and C and D and E and F and G and H and I and J and K and L and M and "
                 "N and O and P and Q and R");
    nb_filter_free(f);
}

/* unit x n, middle, close x n, as a fresh string. */
static char *repeat(const char *unit, int n, const char *middle, const char *close)
{
    size_t u = strlen(unit), m = strlen(middle), c = strlen(close);
    char *s = malloc((u + c) * (size_t)n + m + 1), *o = s;
    for (int i = 0; i < n; i++, o += u)
        memcpy(o, unit, u);
    memcpy(o, middle, m);
    o += m;
    for (int i = 0; i < n; i++, o += c)
        memcpy(o, close, c);
    *o = '\0';
    return s;
}

static void test_nesting_limits(void **state)
{
    (void)state;
    /* Parentheses alone add no depth to the tree, up to the nesting cap. */
    char *s = repeat("(", 150, "a eq 1", ")");
    struct nb_filter *f = parse_ok(s);
    nb_filter_free(f);
    free(s);
    s = repeat("(", 201, "a eq 1", ")");
    assert_parse_error(s, "nested too deeply");
    free(s);
    /* 98 nots over a comparison make a tree 100 deep: the limit. */
    s = repeat("not ", 98, "a eq 1", "");
    f = parse_ok(s);
    struct nb_buf b;
    nb_buf_init(&b, 1 << 16);
    assert_int_equal(nb_filter_to_string(f, &b), NB_OK);
    nb_filter_free(f);
    f = parse_ok(nb_buf_cstr(&b)); /* the canonical text nests twice as deep */
    nb_filter_free(f);
    nb_buf_cleanup(&b);
    free(s);
    s = repeat("not ", 99, "a eq 1", "");
    assert_parse_error(s, "more than 100 levels");
    free(s);
    s = repeat("(a eq 1 or (b eq 2 and ", 40, "c eq 3", "))");
    assert_parse_error(s, "more than 15 comparisons");
    free(s);
    s = repeat("(Flag or (Other and ", 60, "Last", "))");
    assert_parse_error(s, "more than 100 levels");
    free(s);
    /* Hostile inputs fail fast without deep recursion. */
    s = repeat("(", 100000, "", "");
    assert_parse_error(s, "nested too deeply");
    free(s);
    s = repeat("not ", 100000, "Flag", "");
    assert_parse_error(s, "nested too deeply");
    free(s);
    s = repeat("Flag or ", 100000, "Flag", ""); /* long flat chains are fine */
    f = parse_ok(s);
    assert_true(nb_filter_eval(f, NULL, NULL) == false);
    nb_filter_free(f);
    free(s);
}

static void test_to_string_limit(void **state)
{
    (void)state;
    struct nb_filter *f = parse_ok("PartitionKey eq 'a long partition key value'");
    struct nb_buf b;
    nb_buf_init(&b, 10);
    assert_int_equal(nb_filter_to_string(f, &b), NB_ERR_TOO_LARGE);
    nb_buf_cleanup(&b);
    nb_buf_init(&b, 100);
    assert_int_equal(nb_filter_to_string(NULL, &b), NB_OK);
    assert_string_equal(nb_buf_cstr(&b), "true");
    nb_buf_cleanup(&b);
    nb_filter_free(f);
}

/* ---- evaluator ---- */

static void test_eval_numeric(void **state)
{
    (void)state;
    MATCH("Five eq 5");
    MATCH("Five64 eq 5");  /* Int64 property, Int32 literal */
    MATCH("Five eq 5L");   /* Int32 property, Int64 literal */
    MATCH("FiveDbl eq 5"); /* Double property, Int32 literal */
    MATCH("Five eq 5.0");  /* Int32 property, Double literal */
    MATCH("Five64 eq FiveDbl");
    MATCH("Big eq 1099511627776");
    MATCH("Big eq 1099511627776L");
    MATCH("Big gt 2147483647");
    MATCH("Big gt 1e12");
    MATCH("Half lt 3 and Half gt 2");
    MATCH("Half ge 2.5 and Half le 2.5");
    MATCH("Int32 ne 41");
    MATCH("-1 lt Five");
    NO_MATCH("Five ne 5");
    NO_MATCH("Five gt 5.0");
    NO_MATCH("Five lt 5L");
    MATCH("DblWhole eq 2");
}

static void test_eval_nan(void **state)
{
    (void)state;
    NO_MATCH("Nan eq 1.0");
    NO_MATCH("Nan gt 0.0");
    NO_MATCH("Nan lt 0.0");
    NO_MATCH("Nan ge Nan");
    NO_MATCH("Nan eq Nan");
    MATCH("Nan ne 1.0"); /* IEEE: NaN is unequal to everything */
    MATCH("Nan ne Nan");
    MATCH("not (Nan eq 1)");
}

static void test_eval_strings(void **state)
{
    (void)state;
    MATCH("Str eq 'text ''q'' \xc3\xa9'");
    MATCH("PartitionKey eq 'pk1'");
    MATCH("'pk1' eq PartitionKey");
    MATCH("RowKey ge 'rk1' and RowKey lt 'rk2'");
    MATCH("PartitionKey gt 'PK9'"); /* ordinal: 'p' (0x70) > 'P' (0x50) */
    MATCH("PartitionKey lt 'pk1a'");
    MATCH("Str gt 'text ''q'' z'"); /* U+00E9 sorts after ASCII */
    MATCH("Str lt 'text ''q'' \xe4\xb8\xad'");
    MATCH("Empty eq ''");
    MATCH("Empty lt 'a'");
    MATCH("PartitionKey eq Copy");
    NO_MATCH("PartitionKey eq 'PK1'");
    NO_MATCH("PartitionKey eq 'pk1 '");
    MATCH("TableName eq 'x' or true");
}

static void test_eval_guid(void **state)
{
    (void)state;
    MATCH("Id eq guid'c9da6455-213d-42c9-9a79-3e9149a57833'");
    MATCH("Id eq guid'C9DA6455-213D-42C9-9A79-3E9149A57833'");
    MATCH("Id lt guid'c9da6455-213d-42c9-9a79-3e9149a57834'");
    MATCH("Id gt guid'00000000-0000-0000-0000-000000000000'");
    NO_MATCH("Id eq 'c9da6455-213d-42c9-9a79-3e9149a57833'");        /* a String literal */
    NO_MATCH("IdStr eq guid'c9da6455-213d-42c9-9a79-3e9149a57833'"); /* a String property */
    NO_MATCH("IdStr ne guid'c9da6455-213d-42c9-9a79-3e9149a57833'");
    MATCH("IdStr eq 'c9da6455-213d-42c9-9a79-3e9149a57833'");
}

static void test_eval_datetime(void **state)
{
    (void)state;
    MATCH("When eq datetime'2023-05-06T07:08:09.1234567Z'");
    MATCH("When gt datetime'2023-05-06T07:08:09.123456Z'"); /* the 7th digit counts */
    MATCH("When lt datetime'2023-05-06T07:08:09.1234568Z'");
    MATCH("When eq datetime'2023-05-06T09:08:09.1234567+02:00'"); /* same instant */
    MATCH("When ge datetime'1601-01-01T00:00:00Z' and When le datetime'9999-12-31T23:59:59Z'");
    MATCH("Timestamp eq When");
    MATCH("Timestamp gt datetime'2023-01-01T00:00:00Z'");
    NO_MATCH("When eq '2023-05-06T07:08:09.1234567Z'");
    NO_MATCH(
        "When lt datetime'2024-01-01T00:00:00.000000Z' and When gt datetime'2023-06-01T00:00:00Z'");
}

static void test_eval_binary(void **state)
{
    (void)state;
    MATCH("Bytes eq X'0001ff'");
    MATCH("Bytes eq binary'0001FF'");
    MATCH("Bytes lt X'0002'");
    MATCH("Bytes gt X'0001'"); /* a prefix sorts first */
    MATCH("Bytes gt X''");
    MATCH("Bin gt X'0001'");
    NO_MATCH("Bin eq X'0001'");
    NO_MATCH("Bytes eq 'abc'");
}

static void test_eval_booleans(void **state)
{
    (void)state;
    MATCH("Bool");
    MATCH("Bool eq true");
    MATCH("true eq Bool");
    MATCH("Bool ne false");
    MATCH("Off eq false");
    MATCH("Off lt Bool");
    MATCH("not Off");
    MATCH("true");
    MATCH("Bool and not Off");
    NO_MATCH("Off");
    NO_MATCH("not Bool");
    NO_MATCH("false");
    NO_MATCH("Str"); /* a bare non-Boolean property is not true */
    NO_MATCH("Five");
    NO_MATCH("Missing"); /* nor is a missing one */
    MATCH("not Missing");
    NO_MATCH("Bool eq 1");
    NO_MATCH("Bool eq 'true'");
}

static void test_eval_missing_and_mismatch(void **state)
{
    (void)state;
    NO_MATCH("Missing eq 1");
    NO_MATCH("Missing ne 1"); /* Azure: a missing property excludes the entity */
    NO_MATCH("Missing ne ''");
    NO_MATCH("Missing lt ''");
    NO_MATCH("Missing gt ''");
    NO_MATCH("Missing eq Missing");
    MATCH("not (Missing eq 1)"); /* not is plain negation */
    MATCH("not (Missing ne 1)");
    NO_MATCH("Five eq '5'"); /* mismatched types: false, ne too */
    NO_MATCH("Five ne '5'");
    NO_MATCH("Str eq 5");
    NO_MATCH("Str ne 5");
    NO_MATCH("When eq 5L");
    NO_MATCH("Id ne X'00'");
    NO_MATCH("Five eq Str");
    NO_MATCH("Five ne Str");
    MATCH("not (Five eq '5')");
    NO_MATCH("PartitionKey eq 1");
    NO_MATCH("Five eq true");
}

static void test_eval_logic(void **state)
{
    (void)state;
    MATCH("Five eq 5 and Str ne 'x' and Bool");
    MATCH("Five eq 6 or Five eq 5");
    NO_MATCH("Five eq 6 or Five eq 7");
    NO_MATCH("Five eq 5 and Five eq 6");
    MATCH("(Five eq 5) eq true");
    MATCH("(Five eq 6) eq false");
    MATCH("(Missing eq 1) eq false");
    MATCH("(Five eq 5 or Missing eq 1) ne (Five eq 6)");
    NO_MATCH("(Five eq 5) eq 1");
    MATCH("not (Five eq 6 or Five eq 7) and not not Bool");
    MATCH("1 eq 1");
    NO_MATCH("1 eq 2");
    MATCH("'a' lt 'b'");
    /* The SDK's filter: the entity matches through Id, Big, Bool and Dbl. */
    MATCH("When lt datetime'2024-01-01T00:00:00.000000Z' or Id eq "
          "guid'c9da6455-213d-42c9-9a79-3e9149a57833' or Big eq 1099511627776L or Bin "
          "eq X'0001' or Bool eq true or Dbl gt 1.5");
    NO_MATCH("When gt datetime'2024-01-01T00:00:00.000000Z' or Id eq "
             "guid'00000000-0000-0000-0000-000000000000' or Big eq 1099511627775L or Bin "
             "eq X'0001' or Bool eq false or Dbl gt 3.5");
}

static void test_eval_null_cases(void **state)
{
    (void)state;
    assert_true(nb_filter_eval(NULL, lookup, (void *)&sample));
    struct nb_filter *f = parse_ok("a eq 1");
    assert_false(nb_filter_eval(f, NULL, NULL));
    nb_filter_free(f);
    f = parse_ok("not (a eq 1)");
    assert_true(nb_filter_eval(f, NULL, NULL));
    nb_filter_free(f);
    f = parse_ok("");
    assert_true(nb_filter_eval(f, NULL, NULL));
    nb_filter_free(f);
    /* Query Tables: the caller answers TableName only. */
    static const struct prop table_props[] = {{"TableName", S("mytable")}};
    static const struct entity table = {table_props, 1};
    assert_true(eval_on("TableName eq 'mytable'", &table));
    assert_true(eval_on("TableName ge 'my' and TableName lt 'mz'", &table));
    assert_false(eval_on("TableName eq 'MyTable'", &table));
    assert_false(eval_on("PartitionKey ne 'x'", &table));
}

/* ---- key ranges ---- */

static void test_range_pk_eq(void **state)
{
    (void)state;
    assert_range("PartitionKey eq 'p1'", "p1", true, "p1", true, NULL, false, NULL, false);
    assert_range("'p1' eq PartitionKey", "p1", true, "p1", true, NULL, false, NULL, false);
    assert_range("PartitionKey eq 'it''s'", "it's", true, "it's", true, NULL, false, NULL, false);
    assert_range("PartitionKey eq ''", "", true, "", true, NULL, false, NULL, false);
    assert_range("PartitionKey eq 'p1' and Age gt 30", "p1", true, "p1", true, NULL, false, NULL,
                 false);
}

static void test_range_pk_ranges(void **state)
{
    (void)state;
    assert_range("PartitionKey ge 'a' and PartitionKey lt 'm'", "a", true, "m", false, NULL, false,
                 NULL, false);
    assert_range("PartitionKey gt 'a'", "a", false, NULL, false, NULL, false, NULL, false);
    assert_range("PartitionKey le 'z'", NULL, false, "z", true, NULL, false, NULL, false);
    /* Tightest wins; on equal keys an exclusive bound wins. */
    assert_range("PartitionKey gt 'a' and PartitionKey ge 'b' and PartitionKey lt 'x' and "
                 "PartitionKey le 'w'",
                 "b", true, "w", true, NULL, false, NULL, false);
    assert_range("PartitionKey ge 'a' and PartitionKey gt 'a' and PartitionKey le 'c' and "
                 "PartitionKey lt 'c'",
                 "a", false, "c", false, NULL, false, NULL, false);
    assert_range("PartitionKey ge 'a' and PartitionKey le 'a'", "a", true, "a", true, NULL, false,
                 NULL, false);
    assert_range("PartitionKey gt 'a' and PartitionKey eq 'b'", "b", true, "b", true, NULL, false,
                 NULL, false);
    /* Reversed operands. */
    assert_range("'a' lt PartitionKey and 'z' ge PartitionKey", "a", false, "z", true, NULL, false,
                 NULL, false);
    assert_range("'a' le PartitionKey and 'z' gt PartitionKey", "a", true, "z", false, NULL, false,
                 NULL, false);
    /* Byte order: 'B' < 'a' < 'é'. */
    assert_range("PartitionKey gt 'B' and PartitionKey gt 'a' and PartitionKey lt '\xc3\xa9'", "a",
                 false, "\xc3\xa9", false, NULL, false, NULL, false);
    /* RowKey bounds are dropped when more than one partition can match. */
    assert_range("PartitionKey ge 'a' and RowKey eq 'r'", "a", true, NULL, false, NULL, false, NULL,
                 false);
    assert_range("RowKey eq 'r'", FULL);
}

static void test_range_pk_eq_rk(void **state)
{
    (void)state;
    assert_range("PartitionKey eq 'p' and RowKey gt '1' and RowKey le '5'", "p", true, "p", true,
                 "1", false, "5", true);
    assert_range("RowKey eq 'r' and PartitionKey eq 'p'", "p", true, "p", true, "r", true, "r",
                 true);
    assert_range("'p' eq PartitionKey and '3' gt RowKey", "p", true, "p", true, NULL, false, "3",
                 false);
    assert_range("PartitionKey eq 'p' and (RowKey ge 'a' and (RowKey lt 'b' and X eq 1))", "p",
                 true, "p", true, "a", true, "b", false);
    assert_range("PartitionKey ge 'p' and PartitionKey le 'p' and RowKey ge 'x'", "p", true, "p",
                 true, "x", true, NULL, false);
}

static void test_range_contradictions(void **state)
{
    (void)state;
    assert_empty_range("PartitionKey eq 'a' and PartitionKey eq 'b'");
    assert_empty_range("PartitionKey gt 'b' and PartitionKey lt 'a'");
    assert_empty_range("PartitionKey gt 'a' and PartitionKey lt 'a'");
    assert_empty_range("PartitionKey ge 'a' and PartitionKey lt 'a'");
    assert_empty_range("PartitionKey gt 'a' and PartitionKey le 'a'");
    assert_empty_range("PartitionKey eq 'a' and 'a' lt PartitionKey");
    assert_empty_range("PartitionKey eq 'p' and RowKey gt 'b' and RowKey lt 'a'");
    assert_empty_range("RowKey gt 'b' and RowKey lt 'a'");
    assert_empty_range("PartitionKey lt ''");
    /* Keys are strings: any other literal type never matches. */
    assert_empty_range("PartitionKey eq 1");
    assert_empty_range("PartitionKey ne 1");
    assert_empty_range("RowKey gt datetime'2024-01-01T00:00:00Z' and X eq 1");
    /* Conditions without properties fold. */
    assert_empty_range("1 eq 2 and X eq 1");
    assert_empty_range("false");
    assert_empty_range("not true");
    assert_empty_range("(PartitionKey eq 'a' and PartitionKey eq 'b') or 1 eq 2");
}

static void test_range_or_not_ne(void **state)
{
    (void)state;
    assert_range("PartitionKey eq 'a' or X eq 1", FULL);
    assert_range("PartitionKey ne 'a'", FULL);
    assert_range("not (PartitionKey eq 'a')", FULL);
    assert_range("not (PartitionKey lt 'a')", FULL);
    assert_range("PartitionKey eq RowKey", FULL);
    assert_range("Flag", FULL);
    assert_range("", FULL);
    assert_range("true", FULL);
    assert_range("(PartitionKey eq 'a') eq false", FULL);
    /* An or of key ranges is covered by their hull. */
    assert_range("PartitionKey eq 'a' or PartitionKey eq 'c'", "a", true, "c", true, NULL, false,
                 NULL, false);
    assert_range("PartitionKey gt 'a' or PartitionKey eq 'a'", "a", true, NULL, false, NULL, false,
                 NULL, false);
    assert_range("(PartitionKey eq 'p' and RowKey eq '1') or (PartitionKey eq 'p' and RowKey eq "
                 "'3')",
                 "p", true, "p", true, "1", true, "3", true);
    assert_range("PartitionKey eq 'a' or 1 eq 2", "a", true, "a", true, NULL, false, NULL, false);
    assert_range("PartitionKey eq 'a' or PartitionKey eq 1", "a", true, "a", true, NULL, false,
                 NULL, false);
    assert_range("PartitionKey ge 'b' and (PartitionKey eq 'a' or PartitionKey eq 'c')", "b", true,
                 "c", true, NULL, false, NULL, false);
    struct nb_key_range r;
    memset(&r, 0x5a, sizeof(r));
    nb_filter_key_range(NULL, &r);
    assert_false(r.empty || r.pk_lo.set || r.pk_hi.set || r.rk_lo.set || r.rk_hi.set);
}

static void test_range_keys_point_into_filter(void **state)
{
    (void)state;
    struct nb_filter *f = parse_ok("PartitionKey eq 'it''s' and RowKey ge 'r'");
    struct nb_key_range r;
    nb_filter_key_range(f, &r);
    assert_true(r.pk_lo.key == r.pk_hi.key);
    assert_int_equal(r.pk_lo.len, 4);
    assert_memory_equal(r.pk_lo.key, "it's", 4);
    assert_int_equal(r.rk_lo.len, 1);
    nb_filter_free(f);
}

/* ---- residue ---- */

static void test_residue(void **state)
{
    (void)state;
    assert_residue("PartitionKey eq 'p'", NULL);
    assert_residue("PartitionKey eq 'p' and RowKey gt 'a' and RowKey le 'z'", NULL);
    assert_residue("PartitionKey eq 'p' and Age gt 30", "(Age gt 30)");
    assert_residue("Age gt 30 and 'p' eq PartitionKey and Name eq 'x'",
                   "((Age gt 30) and (Name eq 'x'))");
    assert_residue("PartitionKey eq 'p' and RowKey ge 'a' and (A eq 1 or B eq 2)",
                   "((A eq 1) or (B eq 2))");
    assert_residue("A eq 1 and B eq 2", "((A eq 1) and (B eq 2))");
    assert_residue("A eq 1", "(A eq 1)");
    assert_residue("Flag", "Flag");
    assert_residue("", NULL);
    assert_residue("true and PartitionKey ge 'a'", NULL);
    assert_residue("1 eq 1 and Flag", "Flag");
    /* Not captured: or, ne, not, non-string literals, property pairs. */
    assert_residue("PartitionKey eq 'a' or PartitionKey eq 'b'",
                   "((PartitionKey eq 'a') or (PartitionKey eq 'b'))");
    assert_residue("PartitionKey ne 'a'", "(PartitionKey ne 'a')");
    assert_residue("not (PartitionKey eq 'a')", "(not (PartitionKey eq 'a'))");
    assert_residue("PartitionKey eq 1", "(PartitionKey eq 1)");
    assert_residue("PartitionKey eq RowKey", "(PartitionKey eq RowKey)");
    /* RowKey comparisons stay unless one partition is pinned. */
    assert_residue("PartitionKey ge 'a' and RowKey eq 'r'", "(RowKey eq 'r')");
    assert_residue("RowKey eq 'r'", "(RowKey eq 'r')");
    assert_residue("PartitionKey eq 'a' and RowKey eq 'r' and PartitionKey lt 'b'", NULL);
    assert_residue("PartitionKey gt 'a' and PartitionKey lt 'c' and RowKey lt 'r' and X",
                   "((RowKey lt 'r') and X)");
    assert_null(nb_filter_residue(NULL));
    /* The residue is independent of the filter it came from. */
    struct nb_filter *f = parse_ok("PartitionKey eq 'p' and Name eq 'n' and Age gt 3");
    struct nb_filter *r = nb_filter_residue(f);
    nb_filter_free(f);
    static const struct prop props[] = {
        {"PartitionKey", S("p")}, {"Name", S("n")}, {"Age", I32(4)}};
    static const struct entity e = {props, 3};
    assert_true(nb_filter_eval(r, lookup, (void *)&e));
    nb_filter_free(r);
}

/* Every filter over every row: f matches => the row's keys are in the
 * range; and f matches <=> keys in range and the residue matches. */
static bool key_in(const struct nb_key_bound *lo, const struct nb_key_bound *hi, const char *k)
{
    size_t n = strlen(k);
    struct nb_value v = {.type = NB_EDM_STRING, .s = k, .len = n};
    if (lo->set) {
        struct nb_value b = {.type = NB_EDM_STRING, .s = lo->key, .len = lo->len};
        if (!nb_value_cmp_op(&v, lo->inclusive ? NB_CMP_GE : NB_CMP_GT, &b)) return false;
    }
    if (hi->set) {
        struct nb_value b = {.type = NB_EDM_STRING, .s = hi->key, .len = hi->len};
        if (!nb_value_cmp_op(&v, hi->inclusive ? NB_CMP_LE : NB_CMP_LT, &b)) return false;
    }
    return true;
}

static void test_scan_plus_residue_equals_filter(void **state)
{
    (void)state;
    static const char *const pks[] = {"", "a", "b", "c", "\xc3\xa9", "b'"};
    static const char *const rks[] = {"", "1", "2", "3"};
    static const char *const filters[] = {
        "PartitionKey eq 'b'",
        "PartitionKey eq 'b' and RowKey gt '1'",
        "PartitionKey eq 'b' and RowKey ge '1' and RowKey lt '3' and Age gt 1",
        "'b' le PartitionKey and '2' ge RowKey",
        "PartitionKey gt 'a' and PartitionKey le 'c' and RowKey ne '2'",
        "PartitionKey ge 'b' and PartitionKey le 'b' and RowKey eq '3'",
        "PartitionKey eq 'a' or PartitionKey eq 'c'",
        "(PartitionKey eq 'a' and RowKey eq '1') or (PartitionKey eq 'a' and RowKey eq '3')",
        "(PartitionKey eq 'a' or PartitionKey eq 'c') and RowKey lt '2'",
        "PartitionKey ge 'b' and (PartitionKey eq 'a' or PartitionKey eq 'c')",
        "not (PartitionKey lt 'b') and RowKey gt ''",
        "PartitionKey ne 'b' and RowKey eq '2'",
        "RowKey eq '2'",
        "PartitionKey lt ''",
        "PartitionKey le ''",
        "PartitionKey gt '\xc3\xa9'",
        "PartitionKey eq 'b''' and RowKey le '2'",
        "PartitionKey eq 1 or RowKey eq '1'",
        "Age ge 2 and PartitionKey lt 'c'",
        "PartitionKey eq RowKey or PartitionKey eq ''",
        "(PartitionKey eq 'b') eq true",
        "1 eq 1 and PartitionKey gt 'a'",
        "Missing ne 1 or PartitionKey eq 'c'",
        "",
    };
    for (size_t fi = 0; fi < sizeof(filters) / sizeof(filters[0]); fi++) {
        struct nb_filter *f = parse_ok(filters[fi]);
        struct nb_filter *res = nb_filter_residue(f);
        struct nb_key_range r;
        nb_filter_key_range(f, &r);
        for (size_t pi = 0; pi < sizeof(pks) / sizeof(pks[0]); pi++) {
            for (size_t ri = 0; ri < sizeof(rks) / sizeof(rks[0]); ri++) {
                struct prop props[] = {
                    {"PartitionKey", {.type = NB_EDM_STRING, .s = pks[pi], .len = strlen(pks[pi])}},
                    {"RowKey", {.type = NB_EDM_STRING, .s = rks[ri], .len = strlen(rks[ri])}},
                    {"Age", I32((int64_t)ri)},
                };
                struct entity e = {props, 3};
                bool want = nb_filter_eval(f, lookup, &e);
                bool in = !r.empty && key_in(&r.pk_lo, &r.pk_hi, pks[pi]) &&
                          key_in(&r.rk_lo, &r.rk_hi, rks[ri]);
                bool got = in && nb_filter_eval(res, lookup, &e);
                if (want && !in)
                    fail_msg("\"%s\": row (%s,%s) matches but is outside the range", filters[fi],
                             pks[pi], rks[ri]);
                if (want != got)
                    fail_msg("\"%s\": row (%s,%s): filter %d, range+residue %d", filters[fi],
                             pks[pi], rks[ri], want, got);
            }
        }
        nb_filter_free(res);
        nb_filter_free(f);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_string_and_bool_literals),
        cmocka_unit_test(test_integer_literals),
        cmocka_unit_test(test_double_literals),
        cmocka_unit_test(test_typed_literals),
        cmocka_unit_test(test_sdk_filter),
        cmocka_unit_test(test_precedence_and_parentheses),
        cmocka_unit_test(test_operands_both_sides),
        cmocka_unit_test(test_bare_conditions_and_empty),
        cmocka_unit_test(test_whitespace_and_boundaries),
        cmocka_unit_test(test_keywords_lowercase),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_error_buffer),
        cmocka_unit_test(test_comparison_limit),
        cmocka_unit_test(test_nesting_limits),
        cmocka_unit_test(test_to_string_limit),
        cmocka_unit_test(test_eval_numeric),
        cmocka_unit_test(test_eval_nan),
        cmocka_unit_test(test_eval_strings),
        cmocka_unit_test(test_eval_guid),
        cmocka_unit_test(test_eval_datetime),
        cmocka_unit_test(test_eval_binary),
        cmocka_unit_test(test_eval_booleans),
        cmocka_unit_test(test_eval_missing_and_mismatch),
        cmocka_unit_test(test_eval_logic),
        cmocka_unit_test(test_eval_null_cases),
        cmocka_unit_test(test_range_pk_eq),
        cmocka_unit_test(test_range_pk_ranges),
        cmocka_unit_test(test_range_pk_eq_rk),
        cmocka_unit_test(test_range_contradictions),
        cmocka_unit_test(test_range_or_not_ne),
        cmocka_unit_test(test_range_keys_point_into_filter),
        cmocka_unit_test(test_residue),
        cmocka_unit_test(test_scan_plus_residue_equals_filter),
    };
    return cmocka_run_group_tests_name("table/filter", tests, NULL, NULL);
}
