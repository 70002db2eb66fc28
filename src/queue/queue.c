/* Queue service core: the listener, request routing (one table row per
 * operation), authentication (SharedKey or SAS, checked before anything
 * else is revealed), CORS, and the expiry sweeper thread that reclaims the
 * space of expired messages. Handlers live in queue_ops.c and message_ops.c. */
#include "queue/queue.h"
#include "core/encode.h"
#include "core/mem.h"
#include "http/sas.h"
#include "http/sharedkey.h"
#include "queue/internal.h"
#include "queue/names.h"
#include "storage/acl.h"
#include "storage/cors.h"
#include "storage/errors.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define SWEEP_INTERVAL_MS 5000

enum level { LVL_SERVICE, LVL_QUEUE, LVL_MESSAGES, LVL_MESSAGE };

struct route {
    const char *method;
    enum level level;
    const char *restype; /* required value, or NULL */
    const char *comp;    /* required value; NULL means comp must be absent */
    int peek;            /* -1 any, 0 not peekonly, 1 peekonly=true */
    void (*fn)(struct qctx *c);
    char rtype;            /* account SAS resource type */
    const char *acct_perms; /* account SAS: any of these letters; NULL = no SAS */
    const char *svc_perms;  /* queue service SAS: any of these; NULL = not allowed */
};

static const struct route routes[] = {
    { "GET", LVL_SERVICE, NULL, "list", -1, nb_queue_op_list, 's', "l", NULL },
    { "GET", LVL_SERVICE, "service", "properties", -1, nb_queue_op_get_props, 's', "r", NULL },
    { "PUT", LVL_SERVICE, "service", "properties", -1, nb_queue_op_set_props, 's', "w", NULL },
    { "GET", LVL_SERVICE, "service", "stats", -1, nb_queue_op_stats, 's', "r", NULL },
    { "PUT", LVL_QUEUE, NULL, NULL, -1, nb_queue_op_create, 'c', "cw", NULL },
    { "DELETE", LVL_QUEUE, NULL, NULL, -1, nb_queue_op_delete, 'c', "d", NULL },
    { "GET", LVL_QUEUE, NULL, "metadata", -1, nb_queue_op_get_metadata, 'c', "r", "r" },
    { "PUT", LVL_QUEUE, NULL, "metadata", -1, nb_queue_op_set_metadata, 'c', "w", NULL },
    { "GET", LVL_QUEUE, NULL, "acl", -1, nb_queue_op_get_acl, 'c', NULL, NULL },
    { "PUT", LVL_QUEUE, NULL, "acl", -1, nb_queue_op_set_acl, 'c', NULL, NULL },
    { "POST", LVL_MESSAGES, NULL, NULL, -1, nb_queue_op_put, 'o', "a", "a" },
    { "GET", LVL_MESSAGES, NULL, NULL, 1, nb_queue_op_peek, 'o', "r", "r" },
    { "GET", LVL_MESSAGES, NULL, NULL, 0, nb_queue_op_get, 'o', "p", "p" },
    { "DELETE", LVL_MESSAGES, NULL, NULL, -1, nb_queue_op_clear, 'o', "d", "p" },
    { "DELETE", LVL_MESSAGE, NULL, NULL, -1, nb_queue_op_delete_message, 'o', "p", "p" },
    { "PUT", LVL_MESSAGE, NULL, NULL, -1, nb_queue_op_update, 'o', "u", "u" },
};

/* --- errors -------------------------------------------------------------- */

void nb_queue_error(struct qctx *c, const char *code, const char *msg)
{
    nb_storage_error_xml(c->req, c->resp, code, msg, NULL, 0);
}

void nb_queue_param_error(struct qctx *c, const char *code, const char *name,
                          const char *value, long long min, long long max)
{
    struct nb_kv extra[4];
    size_t n = 0;
    extra[n++] = (struct nb_kv){ "QueryParameterName", name, strlen(name) };
    extra[n++] = (struct nb_kv){ "QueryParameterValue", value, strlen(value) };
    if (strcmp(code, "OutOfRangeQueryParameterValue") == 0) {
        const char *lo = nb_arena_printf(&c->req->arena, "%lld", min);
        const char *hi = nb_arena_printf(&c->req->arena, "%lld", max);
        extra[n++] = (struct nb_kv){ "MinimumAllowed", lo, strlen(lo) };
        extra[n++] = (struct nb_kv){ "MaximumAllowed", hi, strlen(hi) };
    }
    nb_storage_error_xml(c->req, c->resp, code, NULL, extra, n);
}

void nb_queue_store_error(struct qctx *c, enum nb_err rc)
{
    switch (rc) {
    case NB_ERR_NO_PARENT: nb_queue_error(c, "QueueNotFound", NULL); return;
    case NB_ERR_NOT_FOUND: nb_queue_error(c, "MessageNotFound", NULL); return;
    case NB_ERR_MISMATCH: nb_queue_error(c, "PopReceiptMismatch", NULL); return;
    case NB_ERR_EXISTS: nb_queue_error(c, "QueueAlreadyExists", NULL); return;
    default:
        nb_log_error(c->svc->env.log, "queue: store failure: %s", nb_err_str(rc));
        nb_queue_error(c, "InternalError", "The server encountered an internal error.");
        return;
    }
}

bool nb_queue_check_name(struct qctx *c)
{
    const char *code = nb_queue_name_check(c->queue, strlen(c->queue));
    if (!code) return true;
    nb_queue_error(c, code, NULL);
    return false;
}

bool nb_queue_int_param(struct qctx *c, const char *name, long long dflt, long long min,
                        long long max, long long *out)
{
    const char *v = nb_req_query(c->req, name);
    if (!v) {
        *out = dflt;
        return true;
    }
    char *end = NULL;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno == ERANGE || end == v || *end != '\0') {
        nb_queue_param_error(c, "InvalidQueryParameterValue", name, v, min, max);
        return false;
    }
    if (n < min || n > max) {
        nb_queue_param_error(c, "OutOfRangeQueryParameterValue", name, v, min, max);
        return false;
    }
    *out = n;
    return true;
}

/* --- auth ---------------------------------------------------------------- */

static enum nb_err policy_lookup(void *ctx, const char *account, const char *resource,
                                 const char *id, struct nb_sas_policy *out)
{
    struct nb_queue_svc *q = ctx;
    char *xml = NULL;
    enum nb_err rc = nb_store_queue_get_acl(q->env.store, account, resource, &xml);
    if (rc) return NB_ERR_NOT_FOUND;
    struct nb_acl acl;
    const char *code = NULL;
    rc = nb_acl_parse_xml(xml, strlen(xml), &acl, &code);
    free(xml);
    if (rc) return NB_ERR_NOT_FOUND;
    const struct nb_acl_entry *e = nb_acl_find(&acl, id);
    if (!e) return NB_ERR_NOT_FOUND;
    snprintf(out->start, sizeof(out->start), "%s", e->start);
    snprintf(out->expiry, sizeof(out->expiry), "%s", e->expiry);
    snprintf(out->permission, sizeof(out->permission), "%s", e->permission);
    return NB_OK;
}

/* Returns true when the request may proceed; otherwise the error is sent.
 * With r NULL (an unroutable request) only the signature is checked. */
static bool authorize(struct qctx *c, const struct route *r)
{
    struct nb_req *req = c->req;
    const char *authz = nb_req_header(req, "Authorization");
    if (authz) {
        struct nb_buf sts;
        nb_buf_init(&sts, 64 * 1024);
        const char *acct = NULL;
        enum nb_err rc = nb_sharedkey_verify(NB_STORAGE_QUEUE, c->svc->env.accounts, req,
                                             &acct, &sts);
        bool ok = rc == NB_OK && acct && strcmp(acct, c->account) == 0;
        if (!ok) {
            const char *detail = nb_arena_printf(
                &req->arena,
                "The MAC signature found in the HTTP request is not the same as any computed "
                "signature. Server used following string to sign: '%s'.",
                nb_buf_cstr(&sts));
            struct nb_kv extra = { "AuthenticationErrorDetail", detail, strlen(detail) };
            nb_storage_error_xml(req, c->resp, "AuthenticationFailed", NULL, &extra, 1);
        }
        nb_buf_cleanup(&sts);
        return ok;
    }
    if (!nb_sas_present(req)) {
        nb_queue_error(c, "AuthenticationFailed", NULL);
        return false;
    }
    struct nb_sas sas;
    struct nb_sas_result res = { NULL, NULL };
    enum nb_err rc = nb_sas_verify(NB_STORAGE_QUEUE, c->svc->env.accounts, c->account,
                                   c->queue ? c->queue : "", req,
                                   req->client_ip[0] ? req->client_ip : NULL, req->now,
                                   policy_lookup, c->svc, &sas, &res);
    if (rc) {
        nb_queue_error(c, res.error_code ? res.error_code : "AuthenticationFailed", res.detail);
        return false;
    }
    if (!r) return true;
    const char *perms = sas.kind == NB_SAS_ACCOUNT ? r->acct_perms : r->svc_perms;
    const char *code = "AuthorizationPermissionMismatch";
    if (!perms || (sas.kind == NB_SAS_SERVICE && r->rtype == 's')) {
        nb_queue_error(c, sas.kind == NB_SAS_SERVICE ? "AuthorizationResourceTypeMismatch"
                                                     : "AuthorizationPermissionMismatch",
                       NULL);
        return false;
    }
    for (const char *p = perms; *p; p++) {
        const char *why = NULL;
        if (nb_sas_allows(&sas, NB_STORAGE_QUEUE, (enum nb_sas_rtype)r->rtype, *p, &why))
            return true;
        if (why) code = why;
    }
    nb_queue_error(c, code, NULL);
    return false;
}

/* --- routing ------------------------------------------------------------- */

static bool method_is(const struct nb_req *req, const char *m)
{
    if (strcmp(req->method, m) == 0) return true;
    return strcmp(m, "GET") == 0 && strcmp(req->method, "HEAD") == 0;
}

static bool query_matches(const struct nb_req *req, const char *name, const char *want)
{
    const char *v = nb_req_query(req, name);
    if (!want) return v == NULL;
    return v && strcasecmp(v, want) == 0;
}

static const struct route *find_route(const struct nb_req *req, enum level lvl,
                                      bool *level_has_method)
{
    const char *peek = nb_req_query(req, "peekonly");
    int is_peek = peek && strcasecmp(peek, "true") == 0;
    *level_has_method = false;
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        const struct route *r = &routes[i];
        if (r->level != lvl || !method_is(req, r->method)) continue;
        *level_has_method = true;
        if (r->restype && !query_matches(req, "restype", r->restype)) continue;
        if (lvl != LVL_MESSAGES && lvl != LVL_MESSAGE && !query_matches(req, "comp", r->comp))
            continue;
        if (r->peek >= 0 && r->peek != is_peek) continue;
        return r;
    }
    return NULL;
}

/* Split the raw path into at most 4 decoded segments. Returns the count, or
 * -1 when there are more. A trailing slash adds no segment. */
static int split_path(struct nb_req *req, const char *segs[4])
{
    const char *p = req->raw_path;
    int n = 0;
    while (*p == '/') p++;
    while (*p) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (n == 4) return -1;
        char *seg = nb_arena_alloc(&req->arena, len + 1);
        nb_pct_decode(p, len, seg);
        segs[n++] = seg;
        p += len;
        while (*p == '/') p++;
    }
    return n;
}

static void cors_decorate(struct qctx *c)
{
    if (!nb_req_header(c->req, "Origin")) return;
    char *props = NULL;
    if (nb_store_kv_get(c->svc->env.store, NB_QUEUE_PROPS_NS, c->account, &props) == NB_OK) {
        nb_cors_decorate(c->req, c->resp, props);
        free(props);
    }
}

static void handle(void *ctx, struct nb_req *req, struct nb_resp *resp)
{
    struct nb_queue_svc *q = ctx;
    struct qctx c = { .svc = q, .req = req, .resp = resp };
    const char *segs[4] = { NULL, NULL, NULL, NULL };
    int n = split_path(req, segs);

    if (req->body_too_large) {
        c.account = n > 0 ? segs[0] : "";
        nb_queue_error(&c, "RequestBodyTooLarge", NULL);
        return;
    }
    if (n <= 0) {
        c.account = "";
        nb_queue_error(&c, "InvalidUri", NULL);
        return;
    }
    /* "/{acct}-secondary/{acct}/..." is the read-only secondary endpoint. */
    size_t l0 = strlen(segs[0]);
    if (n >= 2 && l0 > 10 && strcmp(segs[0] + l0 - 10, "-secondary") == 0 &&
        strncmp(segs[0], segs[1], l0 - 10) == 0 && segs[1][l0 - 10] == '\0') {
        for (int i = 1; i < n; i++) segs[i - 1] = segs[i];
        n--;
    }
    c.account = segs[0];
    c.queue = n >= 2 ? segs[1] : NULL;
    c.msgid = n >= 4 ? segs[3] : NULL;

    if (strcmp(req->method, "OPTIONS") == 0) {
        char *props = NULL;
        if (!nb_accounts_find(q->env.accounts, c.account) ||
            nb_store_kv_get(q->env.store, NB_QUEUE_PROPS_NS, c.account, &props) != NB_OK)
            props = NULL;
        nb_cors_preflight(req, resp, props ? props : nb_service_props_default());
        free(props);
        return;
    }
    if (!nb_accounts_find(q->env.accounts, c.account)) {
        nb_queue_error(&c, "AuthenticationFailed", NULL);
        return;
    }

    enum level lvl;
    if (n == 1) lvl = LVL_SERVICE;
    else if (n == 2) lvl = LVL_QUEUE;
    else if (strcmp(segs[2], "messages") != 0) lvl = (enum level)-1;
    else lvl = n == 3 ? LVL_MESSAGES : LVL_MESSAGE;

    bool has_method = false;
    const struct route *r = (int)lvl >= 0 ? find_route(req, lvl, &has_method) : NULL;
    /* Authenticate even the unroutable, so nothing leaks to strangers. */
    if (!authorize(&c, r)) return;
    if (!r) {
        if (has_method)
            nb_queue_error(&c, "InvalidQueryParameterValue",
                           "Value for one of the query parameters specified in the request "
                           "URI is invalid.");
        else if ((int)lvl >= 0)
            nb_queue_error(&c, "UnsupportedHttpVerb", NULL);
        else
            nb_queue_error(&c, "InvalidUri", NULL);
        return;
    }
    r->fn(&c);
    cors_decorate(&c);
}

/* --- sweeper ------------------------------------------------------------- */

static void *sweeper_main(void *arg)
{
    struct nb_queue_svc *q = arg;
    pthread_mutex_lock(&q->lock);
    while (!q->stopping) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += SWEEP_INTERVAL_MS / 1000;
        pthread_cond_timedwait(&q->wake, &q->lock, &until);
        if (q->stopping) break;
        pthread_mutex_unlock(&q->lock);
        size_t removed = 0;
        enum nb_err rc = nb_store_msg_expire(q->env.store, nb_clock_now(q->env.clock), &removed);
        if (rc) nb_log_error(q->env.log, "queue: expiry sweep failed: %s", nb_err_str(rc));
        pthread_mutex_lock(&q->lock);
    }
    pthread_mutex_unlock(&q->lock);
    return NULL;
}

/* --- lifecycle ----------------------------------------------------------- */

enum nb_err nb_queue_start(const struct nb_service_env *env, int port,
                           struct nb_queue_svc **out)
{
    struct nb_queue_svc *q = nb_calloc(1, sizeof(*q));
    q->env = *env;
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->wake, NULL);
    struct nb_http_listener_config cfg = {
        .service = "queue",
        .host = env->host,
        .port = port,
        .max_body = NB_QUEUE_MAX_BODY,
        .handler = handle,
        .ctx = q,
        .log = env->log,
        .clock = env->clock,
    };
    enum nb_err rc = nb_http_listen(&cfg, &q->listener);
    if (rc) goto fail;
    if (pthread_create(&q->sweeper, NULL, sweeper_main, q) != 0) {
        nb_http_stop(q->listener, 0);
        rc = NB_ERR_NOMEM;
        goto fail;
    }
    *out = q;
    return NB_OK;
fail:
    pthread_cond_destroy(&q->wake);
    pthread_mutex_destroy(&q->lock);
    free(q);
    return rc;
}

int nb_queue_port(const struct nb_queue_svc *q)
{
    return nb_http_port(q->listener);
}

void nb_queue_quiesce(struct nb_queue_svc *q)
{
    if (q) nb_http_quiesce(q->listener);
}

void nb_queue_stop(struct nb_queue_svc *q)
{
    if (!q) return;
    nb_http_stop(q->listener, 10000);
    pthread_mutex_lock(&q->lock);
    q->stopping = true;
    pthread_cond_signal(&q->wake);
    pthread_mutex_unlock(&q->lock);
    pthread_join(q->sweeper, NULL);
    pthread_cond_destroy(&q->wake);
    pthread_mutex_destroy(&q->lock);
    free(q);
}
