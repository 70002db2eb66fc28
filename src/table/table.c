/* Table service core: the listener, request routing, authentication
 * (SharedKey / SharedKeyLite for tables, account and table SAS), X-HTTP-Method
 * tunnelling, error bodies and helpers shared by the handlers in
 * table_ops.c, entity_ops.c and batch.c. */
#include "table/table.h"
#include "core/encode.h"
#include "core/mem.h"
#include "http/sharedkey.h"
#include "storage/acl.h"
#include "storage/cors.h"
#include "storage/errors.h"
#include "storage/service_props.h"
#include "table/internal.h"
#include "table/value.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum target {
    T_SERVICE,  /* /{a}/?restype=service&comp=... */
    T_TABLES,   /* /{a}/Tables */
    T_TABLE,    /* /{a}/Tables('name') */
    T_BATCH,    /* /{a}/$batch */
    T_SET,      /* /{a}/{t} or /{a}/{t}() */
    T_ENTITY,   /* /{a}/{t}(PartitionKey='..',RowKey='..') */
    T_ACL,      /* /{a}/{t}?comp=acl */
};

struct route {
    enum target target;
    const char *method;
    const char *comp; /* required comp value for T_SERVICE, else NULL */
    void (*fn)(struct tctx *c);
    bool json;              /* errors as OData JSON (else XML) */
    const char *rtypes;     /* account SAS resource types, any of; NULL = no SAS */
    const char *acct_perms; /* account SAS: any of */
    const char *svc_perms;  /* table SAS: any of; NULL = not allowed */
};

static const struct route routes[] = {
    { T_SERVICE, "GET", "properties", nb_table_op_get_props, false, "s", "r", NULL },
    { T_SERVICE, "PUT", "properties", nb_table_op_set_props, false, "s", "w", NULL },
    { T_SERVICE, "GET", "stats", nb_table_op_stats, false, "s", "r", NULL },
    { T_TABLES, "GET", NULL, nb_table_op_query_tables, true, "co", "l", NULL },
    { T_TABLES, "POST", NULL, nb_table_op_create_table, true, "co", "acw", NULL },
    { T_TABLE, "DELETE", NULL, nb_table_op_delete_table, true, "co", "d", NULL },
    { T_BATCH, "POST", NULL, nb_table_op_batch, true, "o", "raud", "raud" },
    { T_SET, "GET", NULL, nb_table_op_query, true, "o", "r", "r" },
    { T_SET, "POST", NULL, nb_table_op_insert, true, "o", "a", "a" },
    { T_ENTITY, "GET", NULL, nb_table_op_get, true, "o", "r", "r" },
    /* Updates check their exact letters (u, or a+u for upserts) inside. */
    { T_ENTITY, "PUT", NULL, nb_table_op_update, true, "o", "au", "au" },
    { T_ENTITY, "PATCH", NULL, nb_table_op_update, true, "o", "au", "au" },
    { T_ENTITY, "MERGE", NULL, nb_table_op_update, true, "o", "au", "au" },
    { T_ENTITY, "DELETE", NULL, nb_table_op_delete, true, "o", "d", "d" },
    { T_ACL, "GET", NULL, nb_table_op_get_acl, false, NULL, NULL, NULL },
    { T_ACL, "PUT", NULL, nb_table_op_set_acl, false, NULL, NULL, NULL },
};

/* --- errors and small helpers --------------------------------------------- */

void nb_table_error(struct tctx *c, const char *code, const char *msg)
{
    nb_storage_error_json(c->req, c->resp, code, msg);
}

void nb_table_xml_error(struct tctx *c, const char *code, const char *msg)
{
    nb_storage_error_xml(c->req, c->resp, code, msg, NULL, 0);
}

void nb_table_store_error(struct tctx *c, enum nb_err rc)
{
    switch (rc) {
    case NB_ERR_NO_PARENT: nb_table_error(c, "TableNotFound", NULL); return;
    case NB_ERR_NOT_FOUND: nb_table_error(c, "ResourceNotFound", NULL); return;
    case NB_ERR_EXISTS: nb_table_error(c, "EntityAlreadyExists", NULL); return;
    case NB_ERR_MISMATCH: nb_table_error(c, "UpdateConditionNotSatisfied", NULL); return;
    case NB_ERR_RANGE: nb_table_error(c, "TooManyProperties", NULL); return;   /* merge */
    case NB_ERR_TOO_LARGE: nb_table_error(c, "EntityTooLarge", NULL); return; /* merge */
    default:
        nb_log_error(c->svc->env.log, "table: store failure: %s", nb_err_str(rc));
        nb_table_error(c, "InternalError", "The server encountered an internal error.");
        return;
    }
}

const char *nb_table_name_check(const char *name)
{
    size_t n = strlen(name);
    if (n < 3 || n > 63) return "OutOfRangeInput";
    if (!((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= 'A' && name[0] <= 'Z')))
        return "InvalidResourceName";
    for (size_t i = 1; i < n; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')))
            return "InvalidResourceName";
    }
    if (strcasecmp(name, "tables") == 0) return "InvalidResourceName";
    return NULL;
}

void nb_table_if_match(const char *header, enum nb_if_match *kind, int64_t *ticks)
{
    *ticks = 0;
    if (!header) {
        *kind = NB_IF_MATCH_NONE;
        return;
    }
    if (strcmp(header, "*") == 0) {
        *kind = NB_IF_MATCH_ANY;
        return;
    }
    /* W/"datetime'<url-encoded timestamp>'" */
    *kind = NB_IF_MATCH_TICKS;
    *ticks = INT64_MIN; /* matches nothing unless parsed below */
    static const char head[] = "W/\"datetime'";
    size_t n = strlen(header), h = sizeof(head) - 1;
    if (n < h + 2 || strncmp(header, head, h) != 0 || strcmp(header + n - 2, "'\"") != 0) return;
    char dec[128];
    size_t len = n - h - 2;
    if (len >= sizeof(dec)) return;
    size_t dlen = nb_pct_decode(header + h, len, dec);
    int64_t t;
    if (nb_edm_datetime_parse(dec, dlen, &t) == NB_OK) *ticks = t;
}

void nb_table_json_headers(struct tctx *c, int status)
{
    static const char *const ct[] = {
        [NB_META_NONE] = "application/json;odata=nometadata;streaming=true;charset=utf-8",
        [NB_META_MINIMAL] = "application/json;odata=minimalmetadata;streaming=true;charset=utf-8",
        [NB_META_FULL] = "application/json;odata=fullmetadata;streaming=true;charset=utf-8",
    };
    c->resp->status = status;
    nb_resp_set_header(c->req, c->resp, "Content-Type", ct[c->level]);
    nb_resp_header(c->req, c->resp, "DataServiceVersion", "3.0;");
    nb_resp_header(c->req, c->resp, "X-Content-Type-Options", "nosniff");
    nb_resp_header(c->req, c->resp, "Cache-Control", "no-cache");
}

bool nb_table_sas_keys_ok(struct tctx *c, const char *pk, const char *rk)
{
    if (!c->is_sas || nb_sas_key_in_range(&c->sas, pk, rk)) return true;
    nb_table_error(c, "AuthorizationFailure",
                   "This request is not authorized to perform this operation.");
    return false;
}

bool nb_table_sas_perm(struct tctx *c, char perm)
{
    if (!c->is_sas) return true;
    const char *why = NULL;
    if (nb_sas_allows(&c->sas, NB_STORAGE_TABLE, NB_SAS_RT_OBJECT, perm, &why)) return true;
    nb_table_error(c, why ? why : "AuthorizationPermissionMismatch", NULL);
    return false;
}

enum nb_err nb_table_merge(const char *base, size_t base_len, const char *patch,
                           size_t patch_len, struct nb_buf *out)
{
    return nb_entity_merge_encoded(base, base_len, patch, patch_len, out);
}

/* --- auth ------------------------------------------------------------------ */

static enum nb_err policy_lookup(void *ctx, const char *account, const char *resource,
                                 const char *id, struct nb_sas_policy *out)
{
    struct nb_table_svc *t = ctx;
    char *xml = NULL;
    if (nb_store_table_get_acl(t->env.store, account, resource, &xml) != NB_OK)
        return NB_ERR_NOT_FOUND;
    struct nb_acl acl;
    const char *code = NULL;
    enum nb_err rc = nb_acl_parse_xml(xml, strlen(xml), &acl, &code);
    free(xml);
    if (rc) return NB_ERR_NOT_FOUND;
    const struct nb_acl_entry *e = nb_acl_find(&acl, id);
    if (!e) return NB_ERR_NOT_FOUND;
    snprintf(out->start, sizeof(out->start), "%s", e->start);
    snprintf(out->expiry, sizeof(out->expiry), "%s", e->expiry);
    snprintf(out->permission, sizeof(out->permission), "%s", e->permission);
    return NB_OK;
}

static void auth_error(struct tctx *c, const struct route *r, const char *code, const char *msg)
{
    if (!r || r->json) nb_table_error(c, code, msg);
    else nb_table_xml_error(c, code, msg);
}

/* True when the request may proceed; else the error has been sent. With r
 * NULL (unroutable) only the credentials are checked. */
static bool authorize(struct tctx *c, const struct route *r)
{
    struct nb_req *req = c->req;
    if (nb_req_header(req, "Authorization")) {
        const char *acct = NULL;
        enum nb_err rc = nb_sharedkey_verify(NB_STORAGE_TABLE, c->svc->env.accounts, req,
                                             &acct, NULL);
        if (rc == NB_OK && acct && strcmp(acct, c->account) == 0) return true;
        auth_error(c, r, "AuthenticationFailed", NULL);
        return false;
    }
    if (!nb_sas_present(req)) {
        auth_error(c, r, "AuthenticationFailed", NULL);
        return false;
    }
    struct nb_sas_result res = { NULL, NULL };
    /* A batch names its table only inside; a table SAS then covers the
     * table it was issued for (tn), and batch.c checks each operation. */
    const char *tn = nb_req_query(req, "tn");
    const char *resource = c->table ? c->table : r && r->target == T_BATCH && tn ? tn : "";
    if (nb_sas_verify(NB_STORAGE_TABLE, c->svc->env.accounts, c->account, resource, req,
                      req->client_ip[0] ? req->client_ip : NULL, req->now, policy_lookup,
                      c->svc, &c->sas, &res) != NB_OK) {
        auth_error(c, r, res.error_code ? res.error_code : "AuthenticationFailed", res.detail);
        return false;
    }
    c->is_sas = true;
    if (!r) return true;
    const char *perms = c->sas.kind == NB_SAS_ACCOUNT ? r->acct_perms : r->svc_perms;
    if (!r->rtypes || !perms) {
        auth_error(c, r, "AuthorizationResourceTypeMismatch", NULL);
        return false;
    }
    const char *code = "AuthorizationPermissionMismatch";
    /* Table create/delete/list take "c" (Azure's docs) or "o" (what the
     * Python SDK, whose ResourceTypes has no container flag, can issue). */
    for (const char *t = r->rtypes; *t; t++) {
        for (const char *p = perms; *p; p++) {
            const char *why = NULL;
            if (nb_sas_allows(&c->sas, NB_STORAGE_TABLE, (enum nb_sas_rtype)*t, *p, &why))
                return true;
            if (why) code = why;
        }
    }
    auth_error(c, r, code, NULL);
    return false;
}

/* --- routing --------------------------------------------------------------- */

/* Parse "(PartitionKey='..',RowKey='..')" (already %-decoded) into c.
 * Returns false on malformed syntax. */
static bool parse_keys(struct tctx *c, const char *p)
{
    static const char *const names[2] = { "PartitionKey", "RowKey" };
    const char **out[2] = { &c->pk, &c->rk };
    size_t *lens[2] = { &c->pk_len, &c->rk_len };
    if (*p++ != '(') return false;
    for (int k = 0; k < 2; k++) {
        size_t nl = strlen(names[k]);
        if (strncmp(p, names[k], nl) != 0 || p[nl] != '=' || p[nl + 1] != '\'') return false;
        p += nl + 2;
        char *val = nb_arena_alloc(&c->req->arena, strlen(p) + 1);
        size_t n = 0;
        for (;;) {
            if (!*p) return false;
            if (*p == '\'') {
                if (p[1] == '\'') {
                    val[n++] = '\'';
                    p += 2;
                    continue;
                }
                p++;
                break;
            }
            val[n++] = *p++;
        }
        val[n] = '\0';
        *out[k] = val;
        *lens[k] = n;
        if (k == 0 && *p++ != ',') return false;
    }
    return p[0] == ')' && p[1] == '\0';
}

/* Classify the path below the account. Returns false for a path that is no
 * table-service resource. */
static bool classify(struct tctx *c, const char *seg, enum target *t)
{
    if (!seg) {
        *t = T_SERVICE;
        return true;
    }
    if (strcmp(seg, "Tables") == 0 || strcmp(seg, "Tables()") == 0) {
        *t = T_TABLES;
        return true;
    }
    if (strncmp(seg, "Tables('", 8) == 0) {
        size_t n = strlen(seg);
        if (n < 11 || strcmp(seg + n - 2, "')") != 0) return false;
        c->table = nb_arena_strndup(&c->req->arena, seg + 8, n - 10);
        *t = T_TABLE;
        return true;
    }
    if (strcmp(seg, "$batch") == 0) {
        *t = T_BATCH;
        return true;
    }
    const char *paren = strchr(seg, '(');
    c->table = paren ? nb_arena_strndup(&c->req->arena, seg, (size_t)(paren - seg))
                     : nb_arena_strdup(&c->req->arena, seg);
    if (!paren || strcmp(paren, "()") == 0) {
        const char *comp = nb_req_query(c->req, "comp");
        *t = comp && strcmp(comp, "acl") == 0 && !paren ? T_ACL : T_SET;
        return true;
    }
    if (!parse_keys(c, paren)) return false;
    *t = T_ENTITY;
    return true;
}

static const char *tunnelled_method(const struct nb_req *req)
{
    const char *m = req->method;
    const char *x = nb_req_header(req, "X-HTTP-Method");
    if (strcmp(m, "POST") == 0 && x &&
        (strcmp(x, "MERGE") == 0 || strcmp(x, "PUT") == 0 || strcmp(x, "DELETE") == 0 ||
         strcmp(x, "PATCH") == 0))
        return x;
    return strcmp(m, "HEAD") == 0 ? "GET" : m;
}

static const struct route *find_route(struct tctx *c, enum target t, bool *has_target)
{
    const char *comp = nb_req_query(c->req, "comp");
    *has_target = false;
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        const struct route *r = &routes[i];
        if (r->target != t) continue;
        *has_target = true;
        if (strcmp(r->method, c->method) != 0) continue;
        if (r->comp && (!comp || strcmp(comp, r->comp) != 0)) continue;
        return r;
    }
    return NULL;
}

static void handle(void *ctx, struct nb_req *req, struct nb_resp *resp)
{
    struct nb_table_svc *t = ctx;
    struct tctx c = { .svc = t, .req = req, .resp = resp };
    c.level = nb_entity_meta_level(nb_req_header(req, "Accept"), nb_req_query(req, "$format"));
    c.method = tunnelled_method(req);

    /* Split "/acct[-secondary]/[acct/]rest" without decoding the account. */
    const char *segs[3] = { NULL, NULL, NULL };
    int n = 0;
    const char *p = req->raw_path;
    while (*p == '/') p++;
    while (*p && n < 3) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        char *seg = nb_arena_alloc(&req->arena, len + 1);
        nb_pct_decode(p, len, seg);
        segs[n++] = seg;
        p += len;
        while (*p == '/') p++;
    }
    c.account = n > 0 ? segs[0] : "";
    if (req->body_too_large) {
        nb_table_error(&c, "RequestBodyTooLarge", NULL);
        return;
    }
    if (n == 0 || *p) {
        nb_table_error(&c, "InvalidUri", NULL);
        return;
    }
    size_t l0 = strlen(segs[0]);
    if (n >= 2 && l0 > 10 && strcmp(segs[0] + l0 - 10, "-secondary") == 0 &&
        strncmp(segs[0], segs[1], l0 - 10) == 0 && segs[1][l0 - 10] == '\0') {
        segs[0] = segs[1];
        segs[1] = segs[2];
        n--;
    }
    c.account = segs[0];
    const char *host = nb_req_header(req, "Host");
    c.base_url = nb_arena_printf(&req->arena, "http://%s/%s", host ? host : "127.0.0.1",
                                 c.account);

    if (strcmp(req->method, "OPTIONS") == 0) {
        char *props = NULL;
        if (!nb_accounts_find(t->env.accounts, c.account) ||
            nb_store_kv_get(t->env.store, NB_TABLE_PROPS_NS, c.account, &props) != NB_OK)
            props = NULL;
        nb_cors_preflight(req, resp, props ? props : nb_service_props_default());
        free(props);
        return;
    }
    if (!nb_accounts_find(t->env.accounts, c.account)) {
        nb_table_error(&c, "AuthenticationFailed", NULL);
        return;
    }
    enum target tgt;
    bool has_target = false;
    const struct route *r = NULL;
    bool known = n <= 2 && classify(&c, n == 2 ? segs[1] : NULL, &tgt);
    if (known) r = find_route(&c, tgt, &has_target);
    if (!authorize(&c, r)) return;
    if (!r) {
        if (!known) nb_table_error(&c, "InvalidUri", NULL);
        else if (has_target) nb_table_error(&c, "MethodNotAllowed", NULL);
        else nb_table_error(&c, "InvalidUri", NULL);
        return;
    }
    r->fn(&c);
    if (nb_req_header(req, "Origin")) {
        char *props = NULL;
        if (nb_store_kv_get(t->env.store, NB_TABLE_PROPS_NS, c.account, &props) == NB_OK) {
            nb_cors_decorate(req, resp, props);
            free(props);
        }
    }
}

/* --- lifecycle ------------------------------------------------------------- */

enum nb_err nb_table_start(const struct nb_service_env *env, int port,
                           struct nb_table_svc **out)
{
    struct nb_table_svc *t = nb_calloc(1, sizeof(*t));
    t->env = *env;
    struct nb_http_listener_config cfg = {
        .service = "table",
        .host = env->host,
        .port = port,
        .max_body = NB_TABLE_MAX_BODY,
        .handler = handle,
        .ctx = t,
        .log = env->log,
        .clock = env->clock,
    };
    enum nb_err rc = nb_http_listen(&cfg, &t->listener);
    if (rc) {
        free(t);
        return rc;
    }
    *out = t;
    return NB_OK;
}

int nb_table_port(const struct nb_table_svc *t)
{
    return nb_http_port(t->listener);
}

void nb_table_quiesce(struct nb_table_svc *t)
{
    if (t) nb_http_quiesce(t->listener);
}

void nb_table_stop(struct nb_table_svc *t)
{
    if (!t) return;
    nb_http_stop(t->listener, 10000);
    free(t);
}
