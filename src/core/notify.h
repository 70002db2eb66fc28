/* A wake-up signal between threads: a generation counter behind a mutex and
 * condition variable. Producers bump it (a message put on a watched queue,
 * the test clock moved); waiters remember the generation they saw and sleep
 * until it changes or a timeout passes. Cheap when nobody waits. */
#ifndef NB_CORE_NOTIFY_H
#define NB_CORE_NOTIFY_H
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct nb_notify {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t gen;
};

void nb_notify_init(struct nb_notify *n);
void nb_notify_cleanup(struct nb_notify *n);
/* Bump the generation and wake every waiter. NULL is a no-op. */
void nb_notify_signal(struct nb_notify *n);
uint64_t nb_notify_gen(struct nb_notify *n);
/* Sleep until the generation differs from `seen` or timeout_ms (real time)
 * passes. Returns the current generation. */
uint64_t nb_notify_wait(struct nb_notify *n, uint64_t seen, int64_t timeout_ms);

#endif
