/* What every service is given at start-up: the shared, thread-safe parts of
 * the server (clock, store, accounts, log) and the read-only configuration
 * it needs. The struct is owned by main and outlives every service. */
#ifndef NB_HTTP_SERVICE_H
#define NB_HTTP_SERVICE_H
#include <stdbool.h>
#include "core/clock.h"
#include "core/log.h"
#include "http/accounts.h"
#include "core/notify.h"

struct nb_store;

struct nb_service_env {
    struct nb_clock *clock;
    struct nb_store *store;
    const struct nb_accounts *accounts;
    const struct nb_log *log;
    const char *host;     /* listen address */
    bool test_hooks;      /* --enable-test-hooks: clock control etc. */
    /* Signalled when a message is put on any queue or the test clock moves,
     * so queue-trigger pollers wake at once. May be NULL. */
    struct nb_notify *wake;
};

#endif
