/* Declarations shared by the table service's files; not for other modules.
 * A tctx describes one routed request: account, table, entity keys, the SAS
 * that authorised it (if any) and the JSON metadata level asked for. */
#ifndef NB_TABLE_INTERNAL_H
#define NB_TABLE_INTERNAL_H
#include <stdbool.h>
#include <stddef.h>
#include "http/listener.h"
#include "http/request.h"
#include "http/sas.h"
#include "http/service.h"
#include "store/store.h"
#include "table/entity.h"

#define NB_TABLE_MAX_BODY (5u * 1024 * 1024) /* a 4 MiB batch plus framing */
#define NB_TABLE_MAX_PAGE 1000
#define NB_TABLE_PROPS_NS "table.service-properties"

struct nb_table_svc {
    struct nb_service_env env;
    struct nb_http_listener *listener;
};

struct tctx {
    struct nb_table_svc *svc;
    struct nb_req *req;
    struct nb_resp *resp;
    const char *method;   /* after X-HTTP-Method tunnelling */
    const char *account;
    const char *table;    /* NULL at service level and for Tables */
    const char *pk, *rk;  /* decoded keys when the URL addresses one entity */
    size_t pk_len, rk_len;
    bool is_sas;
    struct nb_sas sas;
    enum nb_meta_level level;
    const char *base_url; /* "http://host/account" */
};

/* Errors in the OData JSON shape (entity and table operations). */
void nb_table_error(struct tctx *c, const char *code, const char *msg);
/* Errors in the storage XML shape (ACL, service properties). */
void nb_table_xml_error(struct tctx *c, const char *code, const char *msg);
/* Map a store error of an entity/table operation to its JSON error. */
void nb_table_store_error(struct tctx *c, enum nb_err rc);
/* For SAS requests: may the caller touch the entity (pk, rk)? Sends
 * AuthorizationFailure and returns false when outside the SAS key range. */
bool nb_table_sas_keys_ok(struct tctx *c, const char *pk, const char *rk);
/* For SAS requests: does the SAS carry permission letter `perm` for
 * entity operations? Sends the error and returns false otherwise. */
bool nb_table_sas_perm(struct tctx *c, char perm);
/* Table name rules: NULL when valid, else the error code. */
const char *nb_table_name_check(const char *name);
/* Parse an If-Match header into the store's condition. An ETag we never
 * issued becomes a condition that cannot match. */
void nb_table_if_match(const char *header, enum nb_if_match *kind, int64_t *ticks);
/* Parse $top (1..1000, default 1000). Returns false after answering. */
bool nb_table_top(struct tctx *c, size_t *out);
/* Standard headers of a JSON answer for the request's metadata level. */
void nb_table_json_headers(struct tctx *c, int status);

/* Handlers (table_ops.c, entity_ops.c, batch.c). */
void nb_table_op_query_tables(struct tctx *c);
void nb_table_op_create_table(struct tctx *c);
void nb_table_op_delete_table(struct tctx *c);
void nb_table_op_get_acl(struct tctx *c);
void nb_table_op_set_acl(struct tctx *c);
void nb_table_op_get_props(struct tctx *c);
void nb_table_op_set_props(struct tctx *c);
void nb_table_op_stats(struct tctx *c);
void nb_table_op_query(struct tctx *c);
void nb_table_op_insert(struct tctx *c);
void nb_table_op_get(struct tctx *c);
void nb_table_op_update(struct tctx *c); /* PUT, PATCH, MERGE */
void nb_table_op_delete(struct tctx *c);
void nb_table_op_batch(struct tctx *c);

/* Merge callback for the store: nb_entity_merge_encoded. */
enum nb_err nb_table_merge(const char *base, size_t base_len, const char *patch,
                           size_t patch_len, struct nb_buf *out);

#endif
