/* NCRONTAB schedules for timer triggers: six fields, UTC,
 *   {second} {minute} {hour} {day} {month} {day-of-week}
 * separated by spaces or tabs. Each field is a comma list of items; an item
 * is '*', a number, a range a-b, or one of those with a step: '*' / n,
 * a-b/n, a/n (a/n runs from a to the field's end). Months take English
 * names, days of the week too (Sun..Sat, 0-6, and 7 also meaning Sunday; a
 * name closing a range, "Fri-Sun", counts as 7); a name is any prefix of
 * at least three letters of the full name ("Jan", "Sept", "Thursday"), in
 * any case. '?' means '*' in the two day fields. A five-field expression is
 * rejected (Azure requires seconds).
 *
 * Day-of-month and day-of-week combine as in NCrontab, which Azure uses: a
 * day must match both fields ("0 0 8 1-7 * Tue" fires on the first Tuesday
 * of each month), not either as in Vixie cron.
 *
 * Also accepted: a TimeSpan, a fixed interval, as .NET parses it:
 * [d.]hh:mm[:ss[.fffffff]] with hours 0-23 and minutes/seconds 0-59, and
 * .NET's quirk that "hh:mm:ss" with hh >= 24 reads as days:hours:minutes
 * ("24:00:00" is 24 days). It must be greater than zero. */
#ifndef NB_HOST_NCRONTAB_H
#define NB_HOST_NCRONTAB_H
#include "core/clock.h"
#include "core/err.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Plain data: copy it freely, nothing to free. */
struct nb_cron {
    uint64_t seconds; /* bit s for s in 0..59 */
    uint64_t minutes; /* 0..59 */
    uint32_t hours;   /* 0..23 */
    uint32_t days;    /* bit d for d in 1..31 */
    uint16_t months;  /* bit m for m in 1..12 */
    uint8_t weekdays; /* bit w for w in 0..6, 0 = Sunday (7 is folded into 0) */
    bool days_star;   /* day field starts with '*' or '?': not a restriction */
    bool weekdays_star;
    int64_t interval_ms; /* > 0 for a TimeSpan schedule; the masks are then zero */
};

/* Parse the NUL-terminated `expr` into *out. NB_OK, or NB_ERR_INVALID with
 * *out zeroed and a printable one-line reason (naming the field and quoting
 * a bounded, sanitized copy of the bad text) written to err when err is
 * non-NULL and errlen > 0 (truncated to fit, always NUL-terminated). */
enum nb_err nb_cron_parse(const char *expr, struct nb_cron *out, char *err, size_t errlen);

/* The first matching whole second strictly after `after` (ms since the
 * epoch, UTC): 10:00:00.500 and 10:00:00.000 both first try 10:00:01. The
 * result is a multiple of 1000. -1 when nothing matches through the end of
 * the calendar year eight years after `after`'s year (enough for any Feb 29,
 * e.g. 2096 -> 2104), so Feb 30 or Apr 31 give -1, and also for a zeroed
 * struct or an `after` so large the answer could overflow. For a TimeSpan
 * schedule: after + interval_ms (-1 on overflow). Pure; no clock, no libc
 * time functions. */
nb_time_ms nb_cron_next(const struct nb_cron *c, nb_time_ms after);

#endif
