/* Wake-up signal (see notify.h). The condition variable runs on
 * CLOCK_MONOTONIC so wall-clock jumps do not stretch timeouts. */
#include "core/notify.h"
#include <time.h>

void nb_notify_init(struct nb_notify *n)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_mutex_init(&n->mu, NULL);
    pthread_cond_init(&n->cv, &attr);
    pthread_condattr_destroy(&attr);
    n->gen = 0;
}

void nb_notify_cleanup(struct nb_notify *n)
{
    pthread_cond_destroy(&n->cv);
    pthread_mutex_destroy(&n->mu);
}

void nb_notify_signal(struct nb_notify *n)
{
    if (!n) return;
    pthread_mutex_lock(&n->mu);
    n->gen++;
    pthread_cond_broadcast(&n->cv);
    pthread_mutex_unlock(&n->mu);
}

uint64_t nb_notify_gen(struct nb_notify *n)
{
    pthread_mutex_lock(&n->mu);
    uint64_t g = n->gen;
    pthread_mutex_unlock(&n->mu);
    return g;
}

uint64_t nb_notify_wait(struct nb_notify *n, uint64_t seen, int64_t timeout_ms)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    if (timeout_ms < 0) timeout_ms = 0;
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&n->mu);
    while (n->gen == seen) {
        if (pthread_cond_timedwait(&n->cv, &n->mu, &deadline) != 0) break;
    }
    uint64_t g = n->gen;
    pthread_mutex_unlock(&n->mu);
    return g;
}
