/* The host listener (default 7071): what `func start` serves. Today it
 * answers the readiness ping and, only when the server was started with
 * --enable-test-hooks, the test clock control; function routes, keys and the
 * admin API grow here. */
#ifndef NB_HOST_HOST_H
#define NB_HOST_HOST_H
#include "core/err.h"
#include "http/service.h"

struct nb_host;

/* Start listening on env->host:port. *out is freed by nb_host_stop. */
enum nb_err nb_host_start(const struct nb_service_env *env, int port, struct nb_host **out);
int nb_host_port(const struct nb_host *h);
void nb_host_quiesce(struct nb_host *h);
/* Finish in-flight requests (bounded wait), stop, free. NULL is a no-op. */
void nb_host_stop(struct nb_host *h);

#endif
