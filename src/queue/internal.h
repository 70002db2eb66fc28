/* Declarations shared by the queue service's files; not for other modules.
 * A qctx describes one routed request: the account, queue and message it
 * addresses, and where the answer goes. */
#ifndef NB_QUEUE_INTERNAL_H
#define NB_QUEUE_INTERNAL_H
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include "http/listener.h"
#include "http/request.h"
#include "http/service.h"
#include "store/store.h"

#define NB_QUEUE_MAX_MESSAGE 65536           /* decoded MessageText, bytes */
#define NB_QUEUE_MAX_BODY (1024 * 1024)      /* request body (escaped XML) */
#define NB_QUEUE_MAX_METADATA 8192           /* names + values, bytes */
#define NB_QUEUE_MAX_TIMEOUT_S 604800        /* 7 days */
#define NB_QUEUE_DEFAULT_TTL_S 604800
#define NB_QUEUE_PROPS_NS "queue.service-properties"

struct nb_queue_svc {
    struct nb_service_env env;
    struct nb_http_listener *listener;
    pthread_t sweeper;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stopping;
};

struct qctx {
    struct nb_queue_svc *svc;
    struct nb_req *req;
    struct nb_resp *resp;
    const char *account;
    const char *queue; /* NULL at service level */
    const char *msgid; /* NULL unless addressing one message */
};

/* Answer with an Azure XML error (default message when msg is NULL). */
void nb_queue_error(struct qctx *c, const char *code, const char *msg);
/* A query-parameter error with QueryParameterName/Value and bounds. */
void nb_queue_param_error(struct qctx *c, const char *code, const char *name,
                          const char *value, long long min, long long max);
/* Map a store error to the queue error for it. */
void nb_queue_store_error(struct qctx *c, enum nb_err rc);

/* Returns false (error sent) when c->queue breaks Azure's naming rules. */
bool nb_queue_check_name(struct qctx *c);

/* Parse an optional integer query parameter. Returns false after answering
 * the error when it is present but not an integer or out of [min, max]. */
bool nb_queue_int_param(struct qctx *c, const char *name, long long dflt, long long min,
                        long long max, long long *out);

/* Handlers, one per operation (queue_ops.c, message_ops.c). */
void nb_queue_op_list(struct qctx *c);
void nb_queue_op_get_props(struct qctx *c);
void nb_queue_op_set_props(struct qctx *c);
void nb_queue_op_stats(struct qctx *c);
void nb_queue_op_create(struct qctx *c);
void nb_queue_op_delete(struct qctx *c);
void nb_queue_op_get_metadata(struct qctx *c);
void nb_queue_op_set_metadata(struct qctx *c);
void nb_queue_op_get_acl(struct qctx *c);
void nb_queue_op_set_acl(struct qctx *c);
void nb_queue_op_put(struct qctx *c);
void nb_queue_op_get(struct qctx *c);
void nb_queue_op_peek(struct qctx *c);
void nb_queue_op_clear(struct qctx *c);
void nb_queue_op_delete_message(struct qctx *c);
void nb_queue_op_update(struct qctx *c);

#endif
