/* Queue and metadata naming rules against Azure's documented examples. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include "queue/names.h"

static const char *check(const char *name)
{
    return nb_queue_name_check(name, strlen(name));
}

static void test_valid_names(void **state)
{
    (void)state;
    assert_null(check("abc"));
    assert_null(check("my-queue-1"));
    assert_null(check("0123456789"));
    char max[64];
    memset(max, 'a', 63);
    max[63] = '\0';
    assert_null(check(max));
}

static void test_bad_characters(void **state)
{
    (void)state;
    assert_string_equal(check("Bad_Name"), "InvalidResourceName");
    assert_string_equal(check("UPPER"), "InvalidResourceName");
    assert_string_equal(check("-lead"), "InvalidResourceName");
    assert_string_equal(check("trail-"), "InvalidResourceName");
    assert_string_equal(check("dou--ble"), "InvalidResourceName");
    assert_string_equal(check("sp ace"), "InvalidResourceName");
    assert_string_equal(check("dot.ted"), "InvalidResourceName");
}

static void test_bad_length(void **state)
{
    (void)state;
    assert_string_equal(check("ab"), "OutOfRangeInput");
    assert_string_equal(check(""), "OutOfRangeInput");
    char long_name[65];
    memset(long_name, 'a', 64);
    long_name[64] = '\0';
    assert_string_equal(check(long_name), "OutOfRangeInput");
}

static void test_metadata_names(void **state)
{
    (void)state;
    assert_true(nb_queue_metadata_name_ok("a"));
    assert_true(nb_queue_metadata_name_ok("_under"));
    assert_true(nb_queue_metadata_name_ok("Camel9"));
    assert_false(nb_queue_metadata_name_ok(""));
    assert_false(nb_queue_metadata_name_ok("9lead"));
    assert_false(nb_queue_metadata_name_ok("with-dash"));
    assert_false(nb_queue_metadata_name_ok("sp ace"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_names),
        cmocka_unit_test(test_bad_characters),
        cmocka_unit_test(test_bad_length),
        cmocka_unit_test(test_metadata_names),
    };
    return cmocka_run_group_tests_name("queue/names", tests, NULL, NULL);
}
