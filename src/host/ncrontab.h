/* NCRONTAB schedules for timer triggers: six fields
 *   {second} {minute} {hour} {day} {month} {day-of-week}
 * each '*', a number, a range a-b, a list a,b,c, and steps (*\/n, a-b/n,
 * a/n), with English month (Jan..Dec) and day names (Sun..Sat, Sunday also
 * 7 accepted as in NCrontab), case-insensitive. Times are UTC. Day-of-month
 * and day-of-week combine as in NCrontab: when both are restricted, a day
 * matches if either matches (cron's classic OR rule). A five-field
 * expression is rejected (Azure requires seconds).
 * Also accepted: a TimeSpan "hh:mm:ss" (a fixed interval from the start). */
#ifndef NB_HOST_NCRONTAB_H
#define NB_HOST_NCRONTAB_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "core/clock.h"
#include "core/err.h"

struct nb_cron {
    uint64_t seconds;  /* bit s for s in 0..59 */
    uint64_t minutes;  /* 0..59 */
    uint32_t hours;    /* 0..23 */
    uint32_t days;     /* bit d for d in 1..31 */
    uint16_t months;   /* bit m for m in 1..12 */
    uint8_t weekdays;  /* bit w for w in 0..6, 0 = Sunday */
    bool days_star;    /* day field was '*' (or '?') */
    bool weekdays_star;
    int64_t interval_ms; /* > 0 for a TimeSpan schedule; the masks are then unused */
};

/* Parse; NB_ERR_INVALID with a reason in err. */
enum nb_err nb_cron_parse(const char *expr, struct nb_cron *out, char *err, size_t errlen);
/* The first occurrence strictly after `after` (ms since the epoch, UTC,
 * second resolution), or -1 when the schedule never fires (e.g. Feb 30)
 * within the next 8 years. For a TimeSpan schedule: after + interval. */
nb_time_ms nb_cron_next(const struct nb_cron *c, nb_time_ms after);

#endif
