/* EDM values: type names, Azure's comparison rules, DateTime text <-> ticks
 * (range ends, leap days, 7-digit fractions, offsets) and GUID parsing. */
/* cmocka needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "table/value.h"

#define TICKS_PER_SEC 10000000LL

static struct nb_value num32(int64_t i)
{
    return (struct nb_value){.type = NB_EDM_INT32, .i = i};
}

static struct nb_value num64(int64_t i)
{
    return (struct nb_value){.type = NB_EDM_INT64, .i = i};
}

static struct nb_value dbl(double d)
{
    return (struct nb_value){.type = NB_EDM_DOUBLE, .d = d};
}

static struct nb_value bytes(enum nb_edm t, const char *s, size_t len)
{
    return (struct nb_value){.type = t, .s = s, .len = len};
}

static struct nb_value str(const char *s)
{
    return bytes(NB_EDM_STRING, s, strlen(s));
}

static int64_t ticks(const char *s)
{
    int64_t t = 0;
    assert_int_equal(nb_edm_datetime_parse(s, strlen(s), &t), NB_OK);
    return t;
}

static enum nb_err parse_rc(const char *s)
{
    int64_t t;
    return nb_edm_datetime_parse(s, strlen(s), &t);
}

static void assert_round_trip(const char *iso)
{
    char out[NB_EDM_DATETIME_LEN];
    nb_edm_datetime_format(ticks(iso), out);
    assert_string_equal(out, iso);
}

static void test_edm_names(void **state)
{
    (void)state;
    enum nb_edm t;
    assert_string_equal(nb_edm_name(NB_EDM_INT64), "Edm.Int64");
    assert_string_equal(nb_edm_name(NB_EDM_BINARY), "Edm.Binary");
    assert_true(nb_edm_from_name("Edm.DateTime", 12, &t));
    assert_int_equal(t, NB_EDM_DATETIME);
    assert_true(nb_edm_from_name("Edm.Guid", 8, &t));
    assert_int_equal(t, NB_EDM_GUID);
    assert_false(nb_edm_from_name("Edm.guid", 8, &t));
    assert_false(nb_edm_from_name("Edm.Decimal", 11, &t));
    assert_false(nb_edm_from_name("Edm.Int6", 8, &t));
}

static void test_datetime_range_ends(void **state)
{
    (void)state;
    assert_int_equal(ticks("1601-01-01T00:00:00Z"), NB_EDM_DATETIME_MIN_TICKS);
    assert_int_equal(ticks("9999-12-31T23:59:59.9999999Z"), NB_EDM_DATETIME_MAX_TICKS);
    assert_round_trip("1601-01-01T00:00:00.0000000Z");
    assert_round_trip("9999-12-31T23:59:59.9999999Z");
    assert_int_equal(parse_rc("1600-12-31T23:59:59.9999999Z"), NB_ERR_RANGE);
    assert_int_equal(parse_rc("0001-01-01T00:00:00Z"), NB_ERR_RANGE);
    /* The range applies to the UTC instant, after the offset. */
    assert_int_equal(parse_rc("1601-01-01T00:30:00+01:00"), NB_ERR_RANGE);
    assert_int_equal(parse_rc("9999-12-31T23:00:00-01:00"), NB_ERR_RANGE);
    assert_int_equal(ticks("9999-12-31T23:59:59+01:00"),
                     NB_EDM_DATETIME_MAX_TICKS - 9999999 - 3600 * TICKS_PER_SEC);
    assert_int_equal(ticks("1601-01-01T00:00:00-00:30"),
                     NB_EDM_DATETIME_MIN_TICKS + 1800 * TICKS_PER_SEC);
}

static void test_datetime_epoch_and_negative(void **state)
{
    (void)state;
    char out[NB_EDM_DATETIME_LEN];
    assert_int_equal(ticks("1970-01-01T00:00:00Z"), 0);
    nb_edm_datetime_format(0, out);
    assert_string_equal(out, "1970-01-01T00:00:00.0000000Z");
    nb_edm_datetime_format(-1, out);
    assert_string_equal(out, "1969-12-31T23:59:59.9999999Z");
    assert_int_equal(ticks("1969-12-31T23:59:59.9999999Z"), -1);
    assert_round_trip("1900-03-01T12:34:56.7890123Z");
    assert_round_trip("2026-11-22T01:33:05.6148770Z");
}

static void test_datetime_leap_days(void **state)
{
    (void)state;
    assert_round_trip("2024-02-29T12:00:00.0000000Z");
    assert_round_trip("2000-02-29T00:00:00.0000000Z");
    assert_round_trip("1604-02-29T23:59:59.0000000Z");
    assert_int_equal(parse_rc("2023-02-29T00:00:00Z"), NB_ERR_INVALID);
    assert_int_equal(parse_rc("1900-02-29T00:00:00Z"), NB_ERR_INVALID);
    assert_int_equal(parse_rc("2100-02-29T00:00:00Z"), NB_ERR_INVALID);
    assert_int_equal(ticks("2024-03-01T00:00:00Z") - ticks("2024-02-28T00:00:00Z"),
                     2 * 86400 * TICKS_PER_SEC);
    assert_int_equal(ticks("2023-03-01T00:00:00Z") - ticks("2023-02-28T00:00:00Z"),
                     86400 * TICKS_PER_SEC);
    /* 2024-12-31 is day 366 of a leap year. */
    assert_int_equal(ticks("2025-01-01T00:00:00Z") - ticks("2024-01-01T00:00:00Z"),
                     366 * 86400 * TICKS_PER_SEC);
}

static void test_datetime_fractions(void **state)
{
    (void)state;
    int64_t base = ticks("2023-05-06T07:08:09Z");
    assert_int_equal(ticks("2023-05-06T07:08:09.1234567Z") - base, 1234567);
    assert_int_equal(ticks("2023-05-06T07:08:09.123456Z") - base, 1234560);
    assert_int_equal(ticks("2023-05-06T07:08:09.5Z") - base, 5000000);
    assert_int_equal(ticks("2023-05-06T07:08:09.0000001Z") - base, 1);
    /* Digits beyond the 7th (finer than 100 ns) are cut, not rounded. */
    assert_int_equal(ticks("2023-05-06T07:08:09.12345678Z") - base, 1234567);
    assert_int_equal(ticks("2023-05-06T07:08:09.99999999Z") - base, 9999999);
    assert_round_trip("2023-05-06T07:08:09.1234567Z");
    assert_round_trip("2023-05-06T07:08:09.0000001Z");
    assert_int_equal(parse_rc("2023-05-06T07:08:09.Z"), NB_ERR_INVALID);
}

static void test_datetime_zones_and_forms(void **state)
{
    (void)state;
    int64_t utc = ticks("2024-01-01T00:00:00Z");
    assert_int_equal(ticks("2024-01-01T02:00:00+02:00"), utc);
    assert_int_equal(ticks("2023-12-31T18:30:00-05:30"), utc);
    assert_int_equal(ticks("2024-01-01T00:00:00"), utc); /* no zone: UTC */
    assert_int_equal(ticks("2024-01-01t00:00:00z"), utc);
    assert_int_equal(ticks("2024-01-01T00:00Z"), utc); /* seconds optional */
    assert_int_equal(ticks("2024-01-01T00:00:00.000000Z"), utc);
    const char *bad[] = {
        "",
        "2024",
        "2024-01-01",
        "2024-01-01 00:00:00Z",
        "2024-1-01T00:00:00Z",
        "2024-13-01T00:00:00Z",
        "2024-00-01T00:00:00Z",
        "2024-01-32T00:00:00Z",
        "2024-04-31T00:00:00Z",
        "2024-01-01T24:00:00Z",
        "2024-01-01T00:60:00Z",
        "2024-01-01T00:00:60Z",
        "2024-01-01T00:00:00ZZ",
        "2024-01-01T00:00:00+0100",
        "2024-01-01T00:00:00+01",
        "2024-01-01T00:00:00+24:00",
        "2024-01-01T00:00:00+01:60",
        "2024-01-01T00:00:00 Z",
        "+2024-01-01T00:00:00Z",
        "2024-01-01T00:00:0aZ",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t t;
        if (nb_edm_datetime_parse(bad[i], strlen(bad[i]), &t) != NB_ERR_INVALID)
            fail_msg("accepted %s", bad[i]);
    }
    /* The length is honoured: no reading past it. */
    int64_t t;
    assert_int_equal(nb_edm_datetime_parse("2024-01-01T00:00:00Zjunk", 20, &t), NB_OK);
    assert_int_equal(t, utc);
    assert_int_equal(nb_edm_datetime_parse("2024-01-01T00:00:00Z", 12, &t), NB_ERR_INVALID);
}

static void test_guid_parse(void **state)
{
    (void)state;
    char g[NB_EDM_GUID_LEN];
    const char *lower = "c9da6455-213d-42c9-9a79-3e9149a57833";
    assert_true(nb_edm_guid_parse(lower, 36, g));
    assert_string_equal(g, lower);
    assert_true(nb_edm_guid_parse("C9DA6455-213D-42C9-9A79-3E9149A57833", 36, g));
    assert_string_equal(g, lower);
    assert_true(nb_edm_guid_parse("00000000-0000-0000-0000-000000000000", 36, g));
    assert_false(nb_edm_guid_parse("{c9da6455-213d-42c9-9a79-3e9149a57833}", 38, g));
    assert_false(nb_edm_guid_parse("c9da6455213d42c99a793e9149a57833", 32, g));
    assert_false(nb_edm_guid_parse("c9da6455-213d-42c9-9a79-3e9149a5783", 35, g));
    assert_false(nb_edm_guid_parse("c9da6455-213d-42c9-9a79-3e9149a578333", 37, g));
    assert_false(nb_edm_guid_parse("c9da645-5213d-42c9-9a79-3e9149a57833", 36, g));
    assert_false(nb_edm_guid_parse("g9da6455-213d-42c9-9a79-3e9149a57833", 36, g));
    assert_false(nb_edm_guid_parse("c9da6455_213d_42c9_9a79_3e9149a57833", 36, g));
    assert_false(nb_edm_guid_parse("", 0, g));
}

static void test_compare_numeric(void **state)
{
    (void)state;
    struct nb_value a = num32(5), b = num64(5), c = dbl(5.0), d = dbl(5.5);
    struct nb_value big = num64(1099511627776LL);
    assert_true(nb_value_cmp_op(&a, NB_CMP_EQ, &b));
    assert_true(nb_value_cmp_op(&b, NB_CMP_EQ, &c));
    assert_true(nb_value_cmp_op(&a, NB_CMP_LT, &d));
    assert_true(nb_value_cmp_op(&d, NB_CMP_GT, &b));
    assert_true(nb_value_cmp_op(&big, NB_CMP_GT, &a));
    assert_true(nb_value_cmp_op(&a, NB_CMP_NE, &d));
    assert_false(nb_value_cmp_op(&a, NB_CMP_NE, &c));
    struct nb_value lo = num64(INT64_MIN), hi = num64(INT64_MAX);
    assert_true(nb_value_cmp_op(&lo, NB_CMP_LT, &hi));
    assert_true(nb_value_cmp_op(&hi, NB_CMP_GE, &hi));
}

static void test_compare_nan(void **state)
{
    (void)state;
    struct nb_value n = dbl(NAN), one = dbl(1.0), i = num32(1);
    bool ok;
    nb_value_compare(&n, &one, &ok);
    assert_true(ok);
    for (int op = NB_CMP_EQ; op <= NB_CMP_LE; op++) {
        bool want = op == NB_CMP_NE;
        assert_int_equal(nb_value_cmp_op(&n, (enum nb_cmp_op)op, &one), want);
        assert_int_equal(nb_value_cmp_op(&i, (enum nb_cmp_op)op, &n), want);
        assert_int_equal(nb_value_cmp_op(&n, (enum nb_cmp_op)op, &n), want);
    }
    struct nb_value inf = dbl(INFINITY);
    assert_true(nb_value_cmp_op(&inf, NB_CMP_GT, &one));
}

static void test_compare_strings_ordinal(void **state)
{
    (void)state;
    struct nb_value upper = str("B"), lower = str("a"), ab = str("ab"), empty = str("");
    struct nb_value e_acute = str("\xc3\xa9"), z = str("z"), cjk = str("\xe4\xb8\xad");
    assert_true(nb_value_cmp_op(&upper, NB_CMP_LT, &lower)); /* 'B' < 'a' */
    assert_true(nb_value_cmp_op(&lower, NB_CMP_LT, &ab));    /* prefix first */
    assert_true(nb_value_cmp_op(&empty, NB_CMP_LT, &lower));
    assert_true(nb_value_cmp_op(&e_acute, NB_CMP_GT, &z));
    assert_true(nb_value_cmp_op(&cjk, NB_CMP_GT, &e_acute));
    struct nb_value nul1 = bytes(NB_EDM_STRING, "a\0b", 3), nul2 = bytes(NB_EDM_STRING, "a\0c", 3);
    assert_true(nb_value_cmp_op(&nul1, NB_CMP_LT, &nul2));
}

static void test_compare_guid_case(void **state)
{
    (void)state;
    struct nb_value a = bytes(NB_EDM_GUID, "c9da6455-213d-42c9-9a79-3e9149a57833", 36);
    struct nb_value b = bytes(NB_EDM_GUID, "C9DA6455-213D-42C9-9A79-3E9149A57833", 36);
    struct nb_value c = bytes(NB_EDM_GUID, "c9da6455-213d-42c9-9a79-3e9149a57834", 36);
    struct nb_value s = str("c9da6455-213d-42c9-9a79-3e9149a57833");
    assert_true(nb_value_cmp_op(&a, NB_CMP_EQ, &b));
    assert_true(nb_value_cmp_op(&b, NB_CMP_LT, &c));
    assert_false(nb_value_cmp_op(&a, NB_CMP_EQ, &s)); /* a String is not a Guid */
    assert_false(nb_value_cmp_op(&a, NB_CMP_NE, &s));
    /* The whole length counts, even past a NUL byte. */
    struct nb_value x = bytes(NB_EDM_GUID, "a\0b", 3), y = bytes(NB_EDM_GUID, "A\0C", 3);
    assert_true(nb_value_cmp_op(&x, NB_CMP_LT, &y));
}

static void test_compare_other_types(void **state)
{
    (void)state;
    struct nb_value t = {.type = NB_EDM_BOOLEAN, .b = true}, f = {.type = NB_EDM_BOOLEAN};
    assert_true(nb_value_cmp_op(&f, NB_CMP_LT, &t));
    assert_true(nb_value_cmp_op(&t, NB_CMP_EQ, &t));
    struct nb_value d1 = {.type = NB_EDM_DATETIME, .i = 10},
                    d2 = {.type = NB_EDM_DATETIME, .i = 11};
    assert_true(nb_value_cmp_op(&d1, NB_CMP_LT, &d2));
    struct nb_value b1 = bytes(NB_EDM_BINARY, "\x00\x01", 2),
                    b2 = bytes(NB_EDM_BINARY, "\x00\x01\x00", 3);
    struct nb_value b3 = bytes(NB_EDM_BINARY, "\xff", 1);
    assert_true(nb_value_cmp_op(&b1, NB_CMP_LT, &b2));
    assert_true(nb_value_cmp_op(&b3, NB_CMP_GT, &b2)); /* bytes are unsigned */
    /* Mismatched types: not comparable, every operator false. */
    struct nb_value i = num32(1), s = str("1");
    bool ok = true;
    assert_int_equal(nb_value_compare(&i, &s, &ok), 0);
    assert_false(ok);
    for (int op = NB_CMP_EQ; op <= NB_CMP_LE; op++) {
        assert_false(nb_value_cmp_op(&i, (enum nb_cmp_op)op, &s));
        assert_false(nb_value_cmp_op(&t, (enum nb_cmp_op)op, &i));
        assert_false(nb_value_cmp_op(&d1, (enum nb_cmp_op)op, &i));
        assert_false(nb_value_cmp_op(&b1, (enum nb_cmp_op)op, &s));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_edm_names),
        cmocka_unit_test(test_datetime_range_ends),
        cmocka_unit_test(test_datetime_epoch_and_negative),
        cmocka_unit_test(test_datetime_leap_days),
        cmocka_unit_test(test_datetime_fractions),
        cmocka_unit_test(test_datetime_zones_and_forms),
        cmocka_unit_test(test_guid_parse),
        cmocka_unit_test(test_compare_numeric),
        cmocka_unit_test(test_compare_nan),
        cmocka_unit_test(test_compare_strings_ordinal),
        cmocka_unit_test(test_compare_guid_case),
        cmocka_unit_test(test_compare_other_types),
    };
    return cmocka_run_group_tests_name("table/value", tests, NULL, NULL);
}
