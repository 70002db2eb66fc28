/* Wall clock with a test-controlled offset (see clock.h). */
#include "core/clock.h"
#include <time.h>

void nb_clock_init(struct nb_clock *c)
{
    atomic_store(&c->offset_ms, 0);
}

nb_time_ms nb_clock_now(struct nb_clock *c)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + atomic_load(&c->offset_ms);
}

void nb_clock_advance(struct nb_clock *c, int64_t delta_ms)
{
    atomic_fetch_add(&c->offset_ms, delta_ms);
}

int64_t nb_clock_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
