/* The one clock. Every timing decision (visibility, TTL, SAS expiry, timers)
 * reads time through an nb_clock and takes `now` as an argument below that,
 * so tests move time instead of sleeping. Times are milliseconds since the
 * Unix epoch. The offset can only be changed through the test hooks, which
 * are off unless the server was started with --enable-test-hooks. */
#ifndef NB_CORE_CLOCK_H
#define NB_CORE_CLOCK_H
#include <stdatomic.h>
#include <stdint.h>

typedef int64_t nb_time_ms;

struct nb_clock {
    _Atomic int64_t offset_ms; /* added to the real time */
};

void nb_clock_init(struct nb_clock *c);
nb_time_ms nb_clock_now(struct nb_clock *c);
void nb_clock_advance(struct nb_clock *c, int64_t delta_ms);
/* Monotonic microseconds, for measuring durations only. */
int64_t nb_clock_mono_us(void);

#endif
