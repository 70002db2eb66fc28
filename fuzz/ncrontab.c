/* libFuzzer driver: NCRONTAB schedules. Any input either fails to parse
 * with a printable message and a cleared struct, or gives masks inside
 * their fields' ranges whose next occurrence, from a few fixed times,
 * equals the one found by a slow reference search built on libc's gmtime_r
 * (a calendar independent of the one under test): strictly after, on a
 * whole second, matching, and the first such second (or -1 for both). */
#include "host/ncrontab.h"
#include <stdlib.h>
#include <string.h>
#include <time.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const nb_time_ms fixed[] = {
    0,
    -1,              /* 1969-12-31 23:59:59.999 */
    951825600000LL,  /* 2000-02-29 12:00:00 */
    1709164799500LL, /* 2024-02-28 23:59:59.5 */
    3981398400000LL, /* 2096-03-01, the longest leap-day gap follows */
    4102444799000LL, /* 2099-12-31 23:59:59 */
};

static bool has(uint64_t mask, int bit)
{
    return (mask >> bit) & 1;
}

static bool day_ok(const struct nb_cron *c, const struct tm *tm)
{
    bool dom = has(c->days, tm->tm_mday), dow = has(c->weekdays, tm->tm_wday);
    return dom && dow; /* NCrontab: both day fields must match */
}

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* Day by day through the calendar years up to after's year + 8 (the
 * contract's window), then second by second inside a matching day. */
static nb_time_ms ref_next(const struct nb_cron *c, nb_time_ms after)
{
    time_t t0 = (time_t)(floor_div(after, 1000) + 1), day = floor_div(t0, 86400) * 86400;
    struct tm tm;
    if (!gmtime_r(&t0, &tm)) abort();
    int last_year = tm.tm_year + 8;
    for (;; day += 86400) {
        if (!gmtime_r(&day, &tm)) abort();
        if (tm.tm_year > last_year) return -1;
        if (!has(c->months, tm.tm_mon + 1) || !day_ok(c, &tm)) continue;
        for (int h = 0; h < 24; h++) {
            if (!has(c->hours, h) || day + h * 3600 + 3599 < t0) continue;
            for (int mi = 0; mi < 60; mi++) {
                if (!has(c->minutes, mi)) continue;
                for (int s = 0; s < 60; s++) {
                    time_t t = day + h * 3600 + mi * 60 + s;
                    if (has(c->seconds, s) && t >= t0) return (nb_time_ms)t * 1000;
                }
            }
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct nb_cron c;
    char err[160];
    char *expr = malloc(size + 1);
    if (!expr) abort();
    memcpy(expr, data, size);
    expr[size] = '\0';

    memset(err, 'x', sizeof(err));
    enum nb_err rc = nb_cron_parse(expr, &c, err, sizeof(err));
    free(expr);
    if (rc != NB_OK) {
        static const struct nb_cron zero;
        if (rc != NB_ERR_INVALID || memcmp(&c, &zero, sizeof(c)) != 0) abort();
        if (!memchr(err, '\0', sizeof(err)) || !err[0]) abort();
        for (const char *p = err; *p; p++)
            if (*p < 0x20 || *p >= 0x7f) abort(); /* messages are printable ASCII */
        return 0;
    }
    if (c.interval_ms != 0) {
        if (c.interval_ms < 0 || c.seconds || c.minutes || c.hours || c.days || c.months ||
            c.weekdays)
            abort();
        for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
            if (nb_cron_next(&c, fixed[i]) != fixed[i] + c.interval_ms) abort();
        return 0;
    }
    if (!c.seconds || c.seconds >> 60 || !c.minutes || c.minutes >> 60 || !c.hours ||
        c.hours >> 24 || !c.days || (c.days & 1) || !c.months || (c.months & 0xe001) ||
        !c.weekdays || (c.weekdays & 0x80))
        abort();
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        nb_time_ms after = fixed[i], got = nb_cron_next(&c, after);
        if (got != -1 && (got <= after || got % 1000 != 0)) abort();
        if (got != ref_next(&c, after)) abort();
    }
    return 0;
}
