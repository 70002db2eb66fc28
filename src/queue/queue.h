/* The queue service: Azure Queue Storage's REST API (storage-queue-table.md
 * §1-2, §4) on its own listener (default 10001). Owns routing, auth and the
 * expiry sweeper; persists everything through the store. */
#ifndef NB_QUEUE_QUEUE_H
#define NB_QUEUE_QUEUE_H
#include "core/err.h"
#include "http/service.h"

struct nb_queue_svc;

/* Start listening on env->host:port and start the expiry sweeper. */
enum nb_err nb_queue_start(const struct nb_service_env *env, int port,
                           struct nb_queue_svc **out);
int nb_queue_port(const struct nb_queue_svc *q);
/* Stop accepting connections (in-flight requests go on). */
void nb_queue_quiesce(struct nb_queue_svc *q);
/* Finish in-flight requests (bounded wait), stop the sweeper, free. */
void nb_queue_stop(struct nb_queue_svc *q);

#endif
