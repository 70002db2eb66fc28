/* NCRONTAB schedules: every field syntax, names, 7 = Sunday, each rejection,
 * TimeSpans, and next-occurrence arithmetic (rollovers, leap days, the
 * day-of-month / day-of-week rule, strictness) checked against epoch values
 * computed here by a separate, naive calendar and against `date -u` constants. */
/* cmocka needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "host/ncrontab.h"

#define ALL60 ((UINT64_C(1) << 60) - 1)

/* ---- helpers ---- */

static bool leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* ms since the epoch for a UTC civil time, by counting days year by year:
 * deliberately a different algorithm from the one under test. */
static int64_t at(int y, int mo, int d, int h, int mi, int s)
{
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int64_t days = 0;
    for (int yy = 1970; yy < y; yy++)
        days += leap(yy) ? 366 : 365;
    for (int yy = y; yy < 1970; yy++)
        days -= leap(yy) ? 366 : 365;
    for (int mm = 1; mm < mo; mm++)
        days += dim[mm - 1] + (mm == 2 && leap(y));
    days += d - 1;
    return ((days * 24 + h) * 60 + mi) * 60000 + (int64_t)s * 1000;
}

static struct nb_cron parse_ok(const char *expr)
{
    struct nb_cron c;
    char err[256] = "";
    enum nb_err rc = nb_cron_parse(expr, &c, err, sizeof(err));
    if (rc != NB_OK) print_error("parse of \"%s\" failed: %s\n", expr, err);
    assert_int_equal(rc, NB_OK);
    assert_string_equal(err, "");
    return c;
}

/* Asserts rejection, a non-empty printable message, and that the message
 * mentions `want` when given. */
static void parse_bad(const char *expr, const char *want)
{
    struct nb_cron c;
    char err[256] = "";
    memset(&c, 0xab, sizeof(c));
    assert_int_equal(nb_cron_parse(expr, &c, err, sizeof(err)), NB_ERR_INVALID);
    assert_true(err[0] != '\0');
    for (const char *p = err; *p; p++)
        assert_true(*p >= 0x20 && *p < 0x7f);
    if (want && !strstr(err, want))
        print_error("\"%s\": message \"%s\" lacks \"%s\"\n", expr, err, want);
    if (want) assert_non_null(strstr(err, want));
    assert_int_equal(c.seconds, 0); /* the output is cleared on failure */
    assert_int_equal(c.interval_ms, 0);
}

static int64_t next_of(const char *expr, int64_t after)
{
    struct nb_cron c = parse_ok(expr);
    return nb_cron_next(&c, after);
}

static uint64_t bits(const int *v, size_t n)
{
    uint64_t m = 0;
    for (size_t i = 0; i < n; i++)
        m |= UINT64_C(1) << v[i];
    return m;
}
#define BITS(...) bits((const int[]){__VA_ARGS__}, sizeof((const int[]){__VA_ARGS__}) / sizeof(int))

/* ---- the test helper itself, against `date -u -d ... +%s` ---- */

static void test_helper_matches_date(void **state)
{
    (void)state;
    assert_int_equal(at(1970, 1, 1, 0, 0, 0), 0);
    assert_int_equal(at(1969, 12, 31, 23, 59, 59), -1000);
    assert_int_equal(at(2000, 2, 29, 12, 0, 0), 951825600000LL);
    assert_int_equal(at(2023, 12, 31, 23, 59, 59), 1704067199000LL);
    assert_int_equal(at(2024, 1, 1, 0, 0, 0), 1704067200000LL);
    assert_int_equal(at(2024, 2, 29, 0, 0, 0), 1709164800000LL);
    assert_int_equal(at(2028, 2, 29, 0, 0, 0), 1835395200000LL);
    assert_int_equal(at(2099, 12, 31, 23, 59, 59), 4102444799000LL);
    assert_int_equal(at(2100, 3, 1, 0, 0, 0), 4107542400000LL);
}

/* ---- syntax ---- */

static void test_parse_all_stars(void **state)
{
    (void)state;
    struct nb_cron c = parse_ok("* * * * * *");
    assert_int_equal(c.seconds, ALL60);
    assert_int_equal(c.minutes, ALL60);
    assert_int_equal(c.hours, 0xffffffu);
    assert_int_equal(c.days, 0xfffffffeu);
    assert_int_equal(c.months, 0x1ffe);
    assert_int_equal(c.weekdays, 0x7f);
    assert_true(c.days_star);
    assert_true(c.weekdays_star);
    assert_int_equal(c.interval_ms, 0);
}

static void test_parse_numbers(void **state)
{
    (void)state;
    struct nb_cron c = parse_ok("5 10 3 15 6 2");
    assert_int_equal(c.seconds, BITS(5));
    assert_int_equal(c.minutes, BITS(10));
    assert_int_equal(c.hours, BITS(3));
    assert_int_equal(c.days, BITS(15));
    assert_int_equal(c.months, BITS(6));
    assert_int_equal(c.weekdays, BITS(2));
    assert_false(c.days_star);
    assert_false(c.weekdays_star);
    c = parse_ok("59 59 23 31 12 6"); /* every upper bound */
    assert_int_equal(c.seconds, BITS(59));
    assert_int_equal(c.hours, BITS(23));
    assert_int_equal(c.days, BITS(31));
    assert_int_equal(c.months, BITS(12));
    assert_int_equal(c.weekdays, BITS(6));
    c = parse_ok("00 05 007 01 1 0"); /* leading zeros */
    assert_int_equal(c.minutes, BITS(5));
    assert_int_equal(c.hours, BITS(7));
    assert_int_equal(c.days, BITS(1));
}

static void test_parse_ranges(void **state)
{
    (void)state;
    struct nb_cron c = parse_ok("0-4 58-59 9-17 1-7 3-5 1-5");
    assert_int_equal(c.seconds, BITS(0, 1, 2, 3, 4));
    assert_int_equal(c.minutes, BITS(58, 59));
    assert_int_equal(c.hours, BITS(9, 10, 11, 12, 13, 14, 15, 16, 17));
    assert_int_equal(c.days, BITS(1, 2, 3, 4, 5, 6, 7));
    assert_int_equal(c.months, BITS(3, 4, 5));
    assert_int_equal(c.weekdays, BITS(1, 2, 3, 4, 5));
    c = parse_ok("7-7 * * * * *"); /* a one-value range */
    assert_int_equal(c.seconds, BITS(7));
}

static void test_parse_lists(void **state)
{
    (void)state;
    struct nb_cron c = parse_ok("1,2,30 0,59 0,12,23 1,15,31 1,12 0,6");
    assert_int_equal(c.seconds, BITS(1, 2, 30));
    assert_int_equal(c.minutes, BITS(0, 59));
    assert_int_equal(c.hours, BITS(0, 12, 23));
    assert_int_equal(c.days, BITS(1, 15, 31));
    assert_int_equal(c.months, BITS(1, 12));
    assert_int_equal(c.weekdays, BITS(0, 6));
    c = parse_ok("1-3,10,*/30,2 * * * * *"); /* mixed, overlapping */
    assert_int_equal(c.seconds, BITS(0, 1, 2, 3, 10, 30));
}

static void test_parse_star_steps(void **state)
{
    (void)state;
    struct nb_cron c = parse_ok("*/15 */20 */6 */10 */4 */2");
    assert_int_equal(c.seconds, BITS(0, 15, 30, 45));
    assert_int_equal(c.minutes, BITS(0, 20, 40));
    assert_int_equal(c.hours, BITS(0, 6, 12, 18));
    assert_int_equal(c.days, BITS(1, 11, 21, 31)); /* days start at 1 */
    assert_int_equal(c.months, BITS(1, 5, 9));
    assert_int_equal(c.weekdays, BITS(0, 2, 4, 6));
    assert_true(c.days_star);
    c = parse_ok("*/1 */60 * * * *");
    assert_int_equal(c.seconds, ALL60);
    assert_int_equal(c.minutes, BITS(0));
}

static void test_parse_range_steps(void **state)
{
    (void)state;
    struct nb_cron c = parse_ok("10-30/10 0-59/30 8-18/5 1-31/15 1-12/6 1-5/2");
    assert_int_equal(c.seconds, BITS(10, 20, 30));
    assert_int_equal(c.minutes, BITS(0, 30));
    assert_int_equal(c.hours, BITS(8, 13, 18));
    assert_int_equal(c.days, BITS(1, 16, 31));
    assert_int_equal(c.months, BITS(1, 7));
    assert_int_equal(c.weekdays, BITS(1, 3, 5));
    c = parse_ok("10-12/5 * * * * *"); /* step past the end keeps the start */
    assert_int_equal(c.seconds, BITS(10));
}

static void test_parse_start_steps(void **state)
{
    (void)state;
    /* a/n runs from a to the field's end */
    struct nb_cron c = parse_ok("5/20 50/5 20/2 28/2 11/1 3/2");
    assert_int_equal(c.seconds, BITS(5, 25, 45));
    assert_int_equal(c.minutes, BITS(50, 55));
    assert_int_equal(c.hours, BITS(20, 22));
    assert_int_equal(c.days, BITS(28, 30));
    assert_int_equal(c.months, BITS(11, 12));
    assert_int_equal(c.weekdays, BITS(3, 5)); /* day-of-week ends at 6 */
    c = parse_ok("59/10 * * * * 0/3");
    assert_int_equal(c.seconds, BITS(59));
    assert_int_equal(c.weekdays, BITS(0, 3, 6));
}

static void test_parse_month_names(void **state)
{
    (void)state;
    struct nb_cron c = parse_ok("0 0 0 1 Jan,mar,DEC *");
    assert_int_equal(c.months, BITS(1, 3, 12));
    c = parse_ok("0 0 0 1 January,Sept,october *"); /* full names and longer prefixes */
    assert_int_equal(c.months, BITS(1, 9, 10));
    c = parse_ok("0 0 0 1 Jan-Mar,nov-dec *");
    assert_int_equal(c.months, BITS(1, 2, 3, 11, 12));
    c = parse_ok("0 0 0 1 Jun/3 *");
    assert_int_equal(c.months, BITS(6, 9, 12));
    c = parse_ok("0 0 0 1 feb-aug/3 *");
    assert_int_equal(c.months, BITS(2, 5, 8));
}

static void test_parse_day_names(void **state)
{
    (void)state;
    struct nb_cron c = parse_ok("0 0 0 * * sun,Mon,TUE");
    assert_int_equal(c.weekdays, BITS(0, 1, 2));
    c = parse_ok("0 0 0 * * Mon-Fri");
    assert_int_equal(c.weekdays, BITS(1, 2, 3, 4, 5));
    c = parse_ok("0 0 0 * * Thursday,Tues,saturday");
    assert_int_equal(c.weekdays, BITS(2, 4, 6));
    c = parse_ok("0 0 0 * * Fri-Sun"); /* Sunday closes a range as 7 */
    assert_int_equal(c.weekdays, BITS(0, 5, 6));
    c = parse_ok("0 0 0 * * Sun-Sat");
    assert_int_equal(c.weekdays, 0x7f);
    c = parse_ok("0 0 0 * * Sun-Sun");
    assert_int_equal(c.weekdays, BITS(0));
}

static void test_parse_seven_is_sunday(void **state)
{
    (void)state;
    struct nb_cron c = parse_ok("0 0 0 * * 7");
    assert_int_equal(c.weekdays, BITS(0));
    c = parse_ok("0 0 0 * * 5-7");
    assert_int_equal(c.weekdays, BITS(0, 5, 6));
    c = parse_ok("0 0 0 * * 0,7");
    assert_int_equal(c.weekdays, BITS(0));
    c = parse_ok("0 0 0 * * 0-7");
    assert_int_equal(c.weekdays, 0x7f);
}

static void test_parse_question_mark(void **state)
{
    (void)state;
    struct nb_cron c = parse_ok("0 0 0 ? * MON");
    assert_true(c.days_star);
    assert_int_equal(c.days, 0xfffffffeu);
    assert_int_equal(c.weekdays, BITS(1));
    c = parse_ok("0 0 0 1 * ?");
    assert_true(c.weekdays_star);
    assert_int_equal(c.weekdays, 0x7f);
    parse_bad("? * * * * *", "'?'");
    parse_bad("0 0 0 1 ? *", "'?'");
}

static void test_parse_whitespace(void **state)
{
    (void)state;
    struct nb_cron c = parse_ok(" \t 0  30\t\t9 * *   1-5 \t ");
    assert_int_equal(c.seconds, BITS(0));
    assert_int_equal(c.minutes, BITS(30));
    assert_int_equal(c.hours, BITS(9));
    assert_int_equal(c.weekdays, BITS(1, 2, 3, 4, 5));
    parse_bad("0 0 0 1, 2 * *", NULL); /* a space splits a list: 7 fields */
}

/* ---- rejections ---- */

static void test_reject_five_fields(void **state)
{
    (void)state;
    parse_bad("*/5 * * * *", "6");
    parse_bad("0 9 * * Mon", "second");
}

static void test_reject_field_count(void **state)
{
    (void)state;
    parse_bad("", "empty");
    parse_bad(" \t ", "empty");
    parse_bad("*", "1 field");
    parse_bad("* * * *", "4 fields");
    parse_bad("* * * * * * *", "7 fields");
    parse_bad("0 0 0 1 1 * 2024", "7 fields"); /* Quartz's year field */
}

static void test_reject_out_of_range(void **state)
{
    (void)state;
    parse_bad("60 * * * * *", "out of range 0-59");
    parse_bad("* 60 * * * *", "minute");
    parse_bad("* * 24 * * *", "hour");
    parse_bad("* * * 0 * *", "day");
    parse_bad("* * * 32 * *", "out of range 1-31");
    parse_bad("* * * * 0 *", "month");
    parse_bad("* * * * 13 *", "out of range 1-12");
    parse_bad("* * * * * 8", "day-of-week");
    parse_bad("0-60 * * * * *", "60");
    parse_bad("1,2,99 * * * * *", "99");
    parse_bad("99999999999999999999 * * * * *", "out of range");
    parse_bad("*/61 * * * * *", "step");
    parse_bad("*/99999999999 * * * * *", "step");
}

static void test_reject_reversed(void **state)
{
    (void)state;
    parse_bad("10-5 * * * * *", "reversed");
    parse_bad("* * 23-1 * * *", "reversed");
    parse_bad("* * * * Mar-Jan *", "reversed");
    parse_bad("* * * * * Sat-Mon", "reversed");
    parse_bad("* * * * * 7-1", "reversed");
    parse_bad("* * * * * Wed-0", "reversed");       /* only a name closes a range as 7... */
    struct nb_cron c = parse_ok("* * * * * 3-Sun"); /* ...like this */
    assert_int_equal(c.weekdays, BITS(0, 3, 4, 5, 6));
}

static void test_reject_step_zero(void **state)
{
    (void)state;
    parse_bad("*/0 * * * * *", "at least 1");
    parse_bad("* 1-5/0 * * * *", "at least 1");
    parse_bad("* * 5/0 * * *", "at least 1");
    parse_bad("* * * * */00 *", "at least 1");
}

static void test_reject_garbage(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "a * * * * *",    "1- * * * * *",  "-1 * * * * *",   "1,,2 * * * * *",    "1, * * * * *",
        ",1 * * * * *",   "*/ * * * * *",  "** * * * * *",   "1-2-3 * * * * *",   "1/2/3 * * * * *",
        "*-5 * * * * *",  "1.5 * * * * *", "+1 * * * * *",   "0x1 * * * * *",     "* Jan * * * *",
        "* * * * Ja *",   "* * * * Foo *", "* * * * * Mo",   "* * * * * Sundays", "* * * * Janx *",
        "1/* * * * * *",  "L * * * * *",   "* * * L * *",    "* * * * * 5#2",     "*/x * * * * *",
        "\x01 * * * * *", "* * * 1W * *",  "*/-1 * * * * *",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        parse_bad(bad[i], NULL);
    parse_bad("* * * * Foo *", "Foo");
    parse_bad("* * * * * Funday", "Sun..Sat");
    parse_bad("* Jan * * * *", "names are not allowed");
}

static void test_error_buffer(void **state)
{
    (void)state;
    struct nb_cron c;
    char err[8];
    memset(err, 'x', sizeof(err));
    assert_int_equal(nb_cron_parse("* * * * *", &c, err, sizeof(err)), NB_ERR_INVALID);
    assert_non_null(memchr(err, '\0', sizeof(err))); /* truncated, terminated */
    assert_int_equal(nb_cron_parse("* * * * *", &c, NULL, 0), NB_ERR_INVALID);
    assert_int_equal(nb_cron_parse("60 * * * * *", &c, err, 1), NB_ERR_INVALID);
    assert_int_equal(err[0], '\0');
    /* a very long garbage token is quoted, bounded and printable */
    char big[400], msg[200];
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    big[0] = '1';
    big[1] = '\x7f';
    memcpy(big + 2, " * * * * *", 10);
    big[12] = 'q';
    assert_int_equal(nb_cron_parse(big, &c, msg, sizeof(msg)), NB_ERR_INVALID);
    assert_true(strlen(msg) < sizeof(msg) - 1);
    for (const char *p = msg; *p; p++)
        assert_true(*p >= 0x20 && *p < 0x7f);
}

/* ---- TimeSpan ---- */

static void test_timespan_parse(void **state)
{
    (void)state;
    struct nb_cron c = parse_ok("00:00:05");
    assert_int_equal(c.interval_ms, 5000);
    assert_int_equal(parse_ok("01:30:00").interval_ms, 90 * 60000);
    assert_int_equal(parse_ok("  23:59:59 ").interval_ms, 86399000);
    assert_int_equal(parse_ok("1.02:03:04").interval_ms, ((26 * 60 + 3) * 60 + 4) * 1000LL);
    assert_int_equal(parse_ok("7.00:00:00").interval_ms, 7 * 86400000LL);
    /* .NET reads hh:mm:ss with hh >= 24 as days:hours:minutes */
    assert_int_equal(parse_ok("24:00:00").interval_ms, 24 * 86400000LL);
    assert_int_equal(parse_ok("30:12:30").interval_ms, ((30 * 24 + 12) * 60 + 30) * 60000LL);
    assert_int_equal(parse_ok("00:05").interval_ms, 300000); /* hh:mm */
    assert_int_equal(parse_ok("00:00:00.5").interval_ms, 500);
    assert_int_equal(parse_ok("00:00:01.2345678").interval_ms, 1234);
}

static void test_timespan_reject(void **state)
{
    (void)state;
    parse_bad("00:00:00", "greater than zero");
    parse_bad("0.00:00:00.000", "greater than zero");
    parse_bad("00:60:00", "out of range");
    parse_bad("00:00:60", "out of range");
    parse_bad("1.24:00:00", "out of range");
    parse_bad("25:61:00", "out of range");
    parse_bad("99999999.00:00:00", "out of range");
    parse_bad("1:2:3:4", "TimeSpan");
    parse_bad("a:b", "TimeSpan");
    parse_bad("00:00:", "TimeSpan");
    parse_bad(":00:01", "TimeSpan");
    parse_bad("-01:00:00", "TimeSpan");
    parse_bad("01:00:00.", "TimeSpan");
    parse_bad("00:00:00.12345678", "TimeSpan");
    parse_bad("01:00:00x", "TimeSpan");
    parse_bad("5", NULL);
}

static void test_timespan_next(void **state)
{
    (void)state;
    struct nb_cron c = parse_ok("00:05:00");
    int64_t t = at(2024, 1, 1, 10, 0, 0) + 123;
    assert_int_equal(nb_cron_next(&c, t), t + 300000);
    assert_int_equal(nb_cron_next(&c, INT64_MAX - 1000), -1); /* no overflow */
}

/* ---- next occurrence ---- */

static void test_next_every_5_seconds(void **state)
{
    (void)state;
    const char *e = "*/5 * * * * *";
    assert_int_equal(next_of(e, at(2024, 5, 6, 10, 0, 2)), at(2024, 5, 6, 10, 0, 5));
    assert_int_equal(next_of(e, at(2024, 5, 6, 10, 0, 55) + 500), at(2024, 5, 6, 10, 1, 0));
    assert_int_equal(next_of(e, at(2024, 5, 6, 23, 59, 58)), at(2024, 5, 7, 0, 0, 0));
    /* a run of occurrences steps by exactly 5 s */
    struct nb_cron c = parse_ok(e);
    int64_t t = at(2024, 5, 6, 10, 0, 0);
    for (int i = 1; i <= 30; i++) {
        int64_t n = nb_cron_next(&c, t);
        assert_int_equal(n, t + 5000);
        t = n;
    }
}

static void test_next_top_of_hour(void **state)
{
    (void)state;
    const char *e = "0 0 * * * *";
    assert_int_equal(next_of(e, at(2024, 5, 6, 10, 15, 30)), at(2024, 5, 6, 11, 0, 0));
    assert_int_equal(next_of(e, at(2024, 5, 6, 23, 0, 1)), at(2024, 5, 7, 0, 0, 0));
    assert_int_equal(next_of("0 */15 * * * *", at(2024, 5, 6, 10, 44, 59)),
                     at(2024, 5, 6, 10, 45, 0));
    assert_int_equal(next_of("30 5 9-17 * * *", at(2024, 5, 6, 17, 5, 30)),
                     at(2024, 5, 7, 9, 5, 30));
}

static void test_next_month_end_rollover(void **state)
{
    (void)state;
    assert_int_equal(next_of("0 0 12 * * *", at(2024, 1, 31, 13, 0, 0)), at(2024, 2, 1, 12, 0, 0));
    assert_int_equal(next_of("0 0 0 1 * *", at(2023, 2, 28, 0, 0, 0)), at(2023, 3, 1, 0, 0, 0));
    assert_int_equal(next_of("59 59 23 * * *", at(2023, 4, 30, 23, 59, 59)),
                     at(2023, 5, 1, 23, 59, 59));
    /* the 31st skips the short months */
    assert_int_equal(next_of("0 0 0 31 * *", at(2024, 1, 31, 0, 0, 0)), at(2024, 3, 31, 0, 0, 0));
    assert_int_equal(next_of("0 0 0 31 * *", at(2024, 3, 31, 0, 0, 0)), at(2024, 5, 31, 0, 0, 0));
    /* the 29th in February only in leap years */
    assert_int_equal(next_of("0 0 0 29 * *", at(2023, 1, 29, 0, 0, 0)), at(2023, 3, 29, 0, 0, 0));
    assert_int_equal(next_of("0 0 0 29 * *", at(2024, 1, 29, 0, 0, 0)), at(2024, 2, 29, 0, 0, 0));
}

static void test_next_year_rollover(void **state)
{
    (void)state;
    assert_int_equal(next_of("* * * * * *", at(2023, 12, 31, 23, 59, 59)), at(2024, 1, 1, 0, 0, 0));
    assert_int_equal(next_of("* * * * * *", at(2023, 12, 31, 23, 59, 59)), 1704067200000LL);
    assert_int_equal(next_of("0 0 0 1 1 *", at(2023, 6, 1, 0, 0, 0)), at(2024, 1, 1, 0, 0, 0));
    assert_int_equal(next_of("0 0 0 1 Jun *", at(2024, 7, 1, 0, 0, 0)), at(2025, 6, 1, 0, 0, 0));
    assert_int_equal(next_of("0 0 0 * Jun *", at(2024, 6, 30, 0, 0, 0)), at(2025, 6, 1, 0, 0, 0));
}

static void test_next_leap_day(void **state)
{
    (void)state;
    const char *e = "0 0 0 29 2 *";
    assert_int_equal(next_of(e, at(2023, 1, 1, 0, 0, 0)), at(2024, 2, 29, 0, 0, 0));
    assert_int_equal(next_of(e, at(2023, 1, 1, 0, 0, 0)), 1709164800000LL);
    assert_int_equal(next_of(e, at(2024, 3, 1, 0, 0, 0)), at(2028, 2, 29, 0, 0, 0));
    assert_int_equal(next_of(e, at(2024, 3, 1, 0, 0, 0)), 1835395200000LL);
    /* 2000 is a leap year (divisible by 400), 2100 is not */
    assert_int_equal(next_of(e, at(1999, 3, 1, 0, 0, 0)), at(2000, 2, 29, 0, 0, 0));
    assert_int_equal(next_of(e, at(2096, 3, 1, 0, 0, 0)), at(2104, 2, 29, 0, 0, 0));
    assert_int_equal(next_of("0 0 0 1 3 *", at(2100, 2, 28, 0, 0, 0)), 4107542400000LL);
}

static void test_next_dom_dow_and(void **state)
{
    (void)state;
    /* Both restricted: a Friday the 13th (NCrontab, hence Azure). 2024-01-01
     * is a Monday; the next Friday the 13th is 2024-09-13, then 2024-12-13. */
    const char *e = "0 0 0 13 * Fri";
    struct nb_cron c = parse_ok(e);
    int64_t t = at(2024, 1, 1, 0, 0, 0);
    static const int want_month[] = {9, 12};
    for (size_t i = 0; i < sizeof(want_month) / sizeof(want_month[0]); i++) {
        t = nb_cron_next(&c, t);
        assert_int_equal(t, at(2024, want_month[i], 13, 0, 0, 0));
    }
    /* The first Tuesday of the month. */
    assert_int_equal(next_of("0 0 8 1-7 * Tue", at(2024, 1, 3, 0, 0, 0)),
                     at(2024, 2, 6, 8, 0, 0));
    /* One restricted: only it counts. */
    assert_int_equal(next_of("0 0 0 * * Fri", at(2024, 1, 1, 0, 0, 0)), at(2024, 1, 5, 0, 0, 0));
    assert_int_equal(next_of("0 0 0 13 * *", at(2024, 1, 1, 0, 0, 0)), at(2024, 1, 13, 0, 0, 0));
    assert_int_equal(next_of("0 0 0 ? * Fri", at(2024, 1, 1, 0, 0, 0)), at(2024, 1, 5, 0, 0, 0));
    /* A stepped '*' is not a restriction (Vixie): odd days AND Mondays, so
     * Jan 15 rather than Jan 3. */
    assert_int_equal(next_of("0 0 0 */2 * Mon", at(2024, 1, 1, 0, 0, 0)), at(2024, 1, 15, 0, 0, 0));
}

static void test_next_weekdays(void **state)
{
    (void)state;
    const char *e = "0 30 9 * * 1-5";
    /* Friday after the run -> Monday */
    assert_int_equal(next_of(e, at(2024, 1, 5, 10, 0, 0)), at(2024, 1, 8, 9, 30, 0));
    /* Saturday -> Monday */
    assert_int_equal(next_of(e, at(2024, 1, 6, 8, 0, 0)), at(2024, 1, 8, 9, 30, 0));
    /* Monday just before -> same day */
    assert_int_equal(next_of(e, at(2024, 1, 8, 9, 29, 59)), at(2024, 1, 8, 9, 30, 0));
    /* Sunday as 7 and by name */
    assert_int_equal(next_of("0 0 0 * * 7", at(2024, 1, 1, 0, 0, 0)), at(2024, 1, 7, 0, 0, 0));
    assert_int_equal(next_of("0 0 0 * * SUN", at(2024, 1, 1, 0, 0, 0)), at(2024, 1, 7, 0, 0, 0));
    assert_int_equal(next_of("0 0 0 * * Fri-Sun", at(2024, 1, 7, 0, 0, 0)),
                     at(2024, 1, 12, 0, 0, 0));
}

static void test_next_never(void **state)
{
    (void)state;
    int64_t t = at(2024, 1, 1, 0, 0, 0);
    assert_int_equal(next_of("0 0 0 30 2 *", t), -1);
    assert_int_equal(next_of("0 0 0 31 4 *", t), -1);
    assert_int_equal(next_of("0 0 0 31 2,4,6,9,11 *", t), -1);
    assert_int_equal(next_of("* * * 30-31 Feb *", t), -1);
    /* ...and neither does Feb 30 that is also a Monday */
    assert_int_equal(next_of("0 0 0 30 2 Mon", t), -1);
    /* a zeroed, unparsed struct never fires */
    struct nb_cron z;
    memset(&z, 0, sizeof(z));
    assert_int_equal(nb_cron_next(&z, t), -1);
}

static void test_next_strictly_after(void **state)
{
    (void)state;
    const char *e = "0 0 12 * * *";
    assert_int_equal(next_of(e, at(2024, 1, 1, 12, 0, 0)), at(2024, 1, 2, 12, 0, 0));
    assert_int_equal(next_of(e, at(2024, 1, 1, 12, 0, 0) + 999), at(2024, 1, 2, 12, 0, 0));
    assert_int_equal(next_of(e, at(2024, 1, 1, 12, 0, 0) - 1), at(2024, 1, 1, 12, 0, 0));
    assert_int_equal(next_of("* * * * * *", at(2024, 1, 1, 10, 0, 0) + 500),
                     at(2024, 1, 1, 10, 0, 1));
    assert_int_equal(next_of("* * * * * *", at(2024, 1, 1, 10, 0, 0)), at(2024, 1, 1, 10, 0, 1));
    assert_int_equal(next_of(e, at(2024, 1, 1, 12, 0, 0)) % 1000, 0);
}

static void test_next_around_epoch(void **state)
{
    (void)state;
    assert_int_equal(next_of("0 0 0 1 1 *", -1), 0);
    assert_int_equal(next_of("0 0 0 1 1 *", at(1969, 6, 1, 0, 0, 0)), 0);
    assert_int_equal(next_of("* * * * * *", -1500), -1000);
    assert_int_equal(next_of("0 0 0 * * Thu", at(1969, 12, 28, 0, 0, 0)), 0); /* a Thursday */
    assert_int_equal(next_of("* * * * * *", INT64_MAX), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_helper_matches_date),
        cmocka_unit_test(test_parse_all_stars),
        cmocka_unit_test(test_parse_numbers),
        cmocka_unit_test(test_parse_ranges),
        cmocka_unit_test(test_parse_lists),
        cmocka_unit_test(test_parse_star_steps),
        cmocka_unit_test(test_parse_range_steps),
        cmocka_unit_test(test_parse_start_steps),
        cmocka_unit_test(test_parse_month_names),
        cmocka_unit_test(test_parse_day_names),
        cmocka_unit_test(test_parse_seven_is_sunday),
        cmocka_unit_test(test_parse_question_mark),
        cmocka_unit_test(test_parse_whitespace),
        cmocka_unit_test(test_reject_five_fields),
        cmocka_unit_test(test_reject_field_count),
        cmocka_unit_test(test_reject_out_of_range),
        cmocka_unit_test(test_reject_reversed),
        cmocka_unit_test(test_reject_step_zero),
        cmocka_unit_test(test_reject_garbage),
        cmocka_unit_test(test_error_buffer),
        cmocka_unit_test(test_timespan_parse),
        cmocka_unit_test(test_timespan_reject),
        cmocka_unit_test(test_timespan_next),
        cmocka_unit_test(test_next_every_5_seconds),
        cmocka_unit_test(test_next_top_of_hour),
        cmocka_unit_test(test_next_month_end_rollover),
        cmocka_unit_test(test_next_year_rollover),
        cmocka_unit_test(test_next_leap_day),
        cmocka_unit_test(test_next_dom_dow_and),
        cmocka_unit_test(test_next_weekdays),
        cmocka_unit_test(test_next_never),
        cmocka_unit_test(test_next_strictly_after),
        cmocka_unit_test(test_next_around_epoch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
