/* The table service: Azure Table Storage's REST API (storage-queue-table.md
 * §1, §3, §4) on its own listener (default 10002). Owns routing, auth
 * (SharedKey, SharedKeyLite, account and table SAS with key ranges) and the
 * OData JSON surface; persists through the store. */
#ifndef NB_TABLE_TABLE_H
#define NB_TABLE_TABLE_H
#include "core/err.h"
#include "http/service.h"

struct nb_table_svc;

enum nb_err nb_table_start(const struct nb_service_env *env, int port,
                           struct nb_table_svc **out);
int nb_table_port(const struct nb_table_svc *t);
void nb_table_quiesce(struct nb_table_svc *t);
/* Finish in-flight requests (bounded wait), stop, free. NULL is a no-op. */
void nb_table_stop(struct nb_table_svc *t);

#endif
