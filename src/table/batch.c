/* Entity group transactions (POST /{account}/$batch, storage-queue-table.md
 * §3.6): turns the parsed changeset into entity operations, validates them
 * all, applies them with ONE nb_store_entity_write call (atomic), and
 * answers 202 with one part per operation, or with the single failing part
 * whose message starts "<index>:". Framing is multipart.c's business; what
 * an operation means is decided here, the same way entity_ops.c decides it
 * for single requests. Nothing is written unless every operation is valid.
 *
 * Errors that concern one operation (bad keys, bad entity JSON, a second
 * partition, a duplicate row, a SAS that lacks the operation's permission
 * letter or key range, and every store refusal) are answered inside the 202
 * with that operation's index, as Azure does; the SDK raises
 * TableTransactionError with .index from the prefix. Errors that concern
 * the request as a whole (body over 4 MiB -> 413 RequestBodyTooLarge,
 * malformed framing or an empty changeset -> 400 InvalidInput) get a plain
 * JSON error with their own status, like any other table request.
 * Choices where Azure's behaviour is only known from tests against it:
 * over 100 operations -> InvalidInput at index 99; a missing table ->
 * TableNotFound at index 0; a second table or PartitionKey ->
 * CommandsInBatchActOnDifferentPartitions at the first op that differs; a
 * query (GET) inside the changeset -> InvalidInput. */
#include "core/encode.h"
#include "core/random.h"
#include "storage/errors.h"
#include "table/internal.h"
#include "table/multipart.h"
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define BATCH_MAX_BODY (4u * 1024 * 1024) /* Azure: a batch payload is at most 4 MiB */
#define BATCH_MAX_JSON (8u * 1024 * 1024) /* one 201 entity body (1 MiB entity, escaped) */
#define PART_MAX_HEADERS 10

/* One operation as batch.c understands it. */
struct bop {
    const struct nb_batch_op *src;
    enum nb_entity_op_kind kind;
    const char *table;
    const char *pk, *rk;
    size_t pk_len, rk_len;
    const char *if_match;
    bool no_content;    /* insert with Prefer: return-no-content */
    struct nb_entity e; /* parsed body (insert, update) */
    struct nb_buf data; /* encoded properties */
};

/* Why an operation failed: an Azure code and a message (NULL: the code's
 * default) that the index prefix is put in front of. */
struct fail {
    const char *code;
    const char *msg;
};

static bool set_fail(struct fail *f, const char *code, const char *msg)
{
    f->code = code;
    f->msg = msg;
    return false;
}

static const char *json_content_type(enum nb_meta_level level)
{
    switch (level) {
    case NB_META_NONE: return "application/json;odata=nometadata;streaming=true;charset=utf-8";
    case NB_META_FULL: return "application/json;odata=fullmetadata;streaming=true;charset=utf-8";
    default: return "application/json;odata=minimalmetadata;streaming=true;charset=utf-8";
    }
}

/* --- the response ---------------------------------------------------------- */

static void add_header(struct nb_kv *h, size_t *n, const char *name, const char *value)
{
    if (*n < PART_MAX_HEADERS) h[(*n)++] = (struct nb_kv){ name, value, 0 };
}

/* Azure starts every part with these (Content-ID first when the request
 * part had one). */
static size_t common_headers(const struct nb_batch_op *op, struct nb_kv *h)
{
    size_t n = 0;
    if (op && op->content_id) add_header(h, &n, "Content-ID", op->content_id);
    add_header(h, &n, "X-Content-Type-Options", "nosniff");
    add_header(h, &n, "Cache-Control", "no-cache");
    return n;
}

static void send_parts(struct tctx *c, const struct nb_batch_result *res, size_t n)
{
    char batch_id[37], cs_id[37];
    nb_random_uuid(batch_id);
    nb_random_uuid(cs_id);
    const char *ct = NULL;
    nb_buf_reset(&c->resp->body);
    if (nb_multipart_write_response(res, n, batch_id, cs_id, &c->req->arena, &c->resp->body,
                                    &ct) != NB_OK) {
        nb_table_error(c, "InternalError", NULL);
        return;
    }
    c->resp->status = 202;
    nb_resp_set_header(c->req, c->resp, "Content-Type", ct);
    nb_resp_header(c->req, c->resp, "Cache-Control", "no-cache");
    nb_resp_header(c->req, c->resp, "X-Content-Type-Options", "nosniff");
}

/* The failure shape: 202 whose changeset holds one part, the failing
 * operation's status and the OData error "<index>:<message>". The JSON is
 * built by nb_storage_error_json (one place per service) into a scratch
 * response, then framed. */
static void send_failure(struct tctx *c, const struct nb_batch *bt, size_t index,
                         const struct fail *f)
{
    const struct nb_storage_error *known = nb_storage_error_find(f->code);
    const char *msg = f->msg;
    if (!msg) msg = (known ? known : nb_storage_error_find("InternalError"))->message;
    struct nb_resp tmp;
    memset(&tmp, 0, sizeof(tmp));
    nb_buf_init(&tmp.body, 1 << 20);
    nb_storage_error_json(c->req, &tmp, f->code,
                          nb_arena_printf(&c->req->arena, "%zu:%s", index, msg));
    struct nb_kv h[PART_MAX_HEADERS];
    size_t nh = common_headers(index < bt->n ? &bt->ops[index] : NULL, h);
    add_header(h, &nh, "DataServiceVersion", "3.0;");
    add_header(h, &nh, "Content-Type", nb_resp_get_header(&tmp, "Content-Type"));
    struct nb_batch_result r = { tmp.status, h, nh, tmp.body.data, tmp.body.len };
    send_parts(c, &r, 1);
    c->resp->error_code = tmp.error_code;
    nb_buf_cleanup(&tmp.body);
}

/* "<base>/<table>(PartitionKey='<pk>',RowKey='<rk>')" with quotes doubled
 * and then %-encoded, as clients build entity URLs (§3.3). */
static const char *entity_url(struct tctx *c, const struct bop *b)
{
    struct nb_buf u;
    nb_buf_init(&u, 16 * 1024);
    const char *keys[2] = { b->pk, b->rk };
    size_t lens[2] = { b->pk_len, b->rk_len };
    enum nb_err rc = nb_buf_printf(&u, "%s/%s(PartitionKey='", c->base_url, b->table);
    for (int k = 0; k < 2 && !rc; k++) {
        for (size_t i = 0; i < lens[k] && !rc; i++) {
            rc = nb_pct_encode(&u, keys[k] + i, 1);
            if (!rc && keys[k][i] == '\'') rc = nb_pct_encode(&u, "'", 1);
        }
        if (!rc) rc = nb_buf_adds(&u, k == 0 ? "',RowKey='" : "')");
    }
    const char *out = rc ? c->base_url : nb_arena_strndup(&c->req->arena, u.data, u.len);
    nb_buf_cleanup(&u);
    return out;
}

/* One success part per operation, in order. */
static void send_success(struct tctx *c, const struct nb_batch *bt, struct bop *ops,
                         const struct nb_entity_op *sops)
{
    size_t n = bt->n;
    struct nb_batch_result *res = nb_arena_alloc(&c->req->arena, n * sizeof(*res));
    struct nb_kv *hdrs = nb_arena_alloc(&c->req->arena, n * PART_MAX_HEADERS * sizeof(*hdrs));
    struct nb_buf *json = nb_arena_alloc(&c->req->arena, n * sizeof(*json));
    for (size_t i = 0; i < n; i++) {
        struct bop *b = &ops[i];
        struct nb_kv *h = hdrs + i * PART_MAX_HEADERS;
        size_t nh = common_headers(b->src, h);
        nb_buf_init(&json[i], BATCH_MAX_JSON);
        res[i] = (struct nb_batch_result){ 204, h, 0, NULL, 0 };
        char *etag = NULL;
        if (b->kind != NB_ENTITY_DELETE) {
            etag = nb_arena_alloc(&c->req->arena, NB_ENTITY_ETAG_LEN);
            nb_entity_etag(sops[i].timestamp, etag, NB_ENTITY_ETAG_LEN);
        }
        if (b->kind == NB_ENTITY_INSERT) {
            const char *url = entity_url(c, b);
            if (b->no_content) {
                add_header(h, &nh, "Preference-Applied", "return-no-content");
                add_header(h, &nh, "DataServiceVersion", "3.0;");
            } else {
                enum nb_meta_level level =
                    nb_entity_meta_level(nb_batch_op_header(b->src, "Accept"), NULL);
                b->e.timestamp = sops[i].timestamp;
                struct nb_entity_json_opts o = {
                    .level = level,
                    .metadata_url = nb_arena_printf(&c->req->arena, "%s/$metadata#%s/@Element",
                                                    c->base_url, b->table),
                    .account = c->account,
                    .table = b->table,
                    .base_url = c->base_url,
                    .etag = etag,
                };
                if (nb_entity_to_json(&b->e, &o, &json[i]) != NB_OK) nb_buf_reset(&json[i]);
                res[i].status = 201;
                res[i].body = json[i].data;
                res[i].body_len = json[i].len;
                add_header(h, &nh, "DataServiceVersion", "3.0;");
                add_header(h, &nh, "Content-Type", json_content_type(level));
            }
            add_header(h, &nh, "Location", url);
            add_header(h, &nh, "DataServiceId", url);
        } else {
            add_header(h, &nh, "DataServiceVersion", "3.0;");
        }
        if (etag) add_header(h, &nh, "ETag", etag);
        res[i].nheaders = nh;
    }
    send_parts(c, res, n);
    for (size_t i = 0; i < n; i++) nb_buf_cleanup(&json[i]);
}

/* --- understanding one operation ------------------------------------------- */

static size_t skip_ws(const char *s, size_t n, size_t i)
{
    while (i < n && (s[i] == ' ' || s[i] == '\t')) i++;
    return i;
}

/* Parse "(PartitionKey='..',RowKey='..')" in s[0..n) (already %-decoded):
 * either order, blanks allowed around the punctuation, '' is a quote. */
static bool parse_keys(struct nb_arena *a, const char *s, size_t n, struct bop *b)
{
    size_t i = 0;
    if (i >= n || s[i++] != '(') return false;
    bool have[2] = { false, false };
    for (int k = 0; k < 2; k++) {
        i = skip_ws(s, n, i);
        size_t name = i;
        while (i < n && s[i] != '=' && s[i] != ' ' && s[i] != '\t') i++;
        size_t nlen = i - name;
        int which;
        if (nlen == 12 && memcmp(s + name, "PartitionKey", 12) == 0) which = 0;
        else if (nlen == 6 && memcmp(s + name, "RowKey", 6) == 0) which = 1;
        else return false;
        if (have[which]) return false;
        have[which] = true;
        i = skip_ws(s, n, i);
        if (i >= n || s[i++] != '=') return false;
        i = skip_ws(s, n, i);
        if (i >= n || s[i++] != '\'') return false;
        char *val = nb_arena_alloc(a, n - i + 1);
        size_t vlen = 0;
        for (;;) {
            if (i >= n) return false;
            if (s[i] == '\'') {
                if (i + 1 < n && s[i + 1] == '\'') {
                    val[vlen++] = '\'';
                    i += 2;
                    continue;
                }
                i++;
                break;
            }
            val[vlen++] = s[i++];
        }
        val[vlen] = '\0';
        if (which == 0) b->pk = val, b->pk_len = vlen;
        else b->rk = val, b->rk_len = vlen;
        i = skip_ws(s, n, i);
        if (k == 0 && (i >= n || s[i++] != ',')) return false;
    }
    i = skip_ws(s, n, i);
    return i + 1 == n && s[i] == ')';
}

/* The method after X-HTTP-Method tunnelling (POST only), as table.c does it
 * for single requests. */
static const char *op_method(const struct nb_batch_op *op)
{
    const char *x = nb_batch_op_header(op, "X-HTTP-Method");
    if (strcmp(op->method, "POST") == 0 && x &&
        (strcmp(x, "MERGE") == 0 || strcmp(x, "PUT") == 0 || strcmp(x, "DELETE") == 0 ||
         strcmp(x, "PATCH") == 0))
        return x;
    return op->method;
}

/* Method, table and keys of the operation's URL "/{account}/{table}..." */
static bool parse_target(struct tctx *c, struct bop *b, bool *has_keys, struct fail *f)
{
    struct nb_arena *a = &c->req->arena;
    const char *p = b->src->path;
    while (*p == '/') p++;
    const char *slash = strchr(p, '/');
    if (!slash) return set_fail(f, "InvalidUri", NULL);
    size_t alen = (size_t)(slash - p);
    char *acct = nb_arena_alloc(a, alen + 1);
    acct[nb_pct_decode(p, alen, acct)] = '\0';
    if (strcmp(acct, c->account) != 0) return set_fail(f, "InvalidUri", NULL);
    const char *seg = slash + 1;
    size_t slen = strlen(seg);
    if (slen == 0 || memchr(seg, '/', slen)) return set_fail(f, "InvalidUri", NULL);
    char *dec = nb_arena_alloc(a, slen + 1);
    size_t dlen = nb_pct_decode(seg, slen, dec);
    dec[dlen] = '\0';
    const char *paren = memchr(dec, '(', dlen);
    size_t tlen = paren ? (size_t)(paren - dec) : dlen;
    b->table = nb_arena_strndup(a, dec, tlen);
    if (strlen(b->table) != tlen) return set_fail(f, "InvalidResourceName", NULL);
    const char *bad = nb_table_name_check(b->table);
    if (bad) return set_fail(f, bad, NULL);
    *has_keys = false;
    if (!paren || (dlen - tlen == 2 && paren[1] == ')')) return true;
    if (!parse_keys(a, paren, dlen - tlen, b)) return set_fail(f, "InvalidUri", NULL);
    *has_keys = true;
    return true;
}

static bool sas_allows(struct tctx *c, char perm, struct fail *f)
{
    const char *why = NULL;
    if (!c->is_sas || nb_sas_allows(&c->sas, NB_STORAGE_TABLE, NB_SAS_RT_OBJECT, perm, &why))
        return true;
    return set_fail(f, why ? why : "AuthorizationPermissionMismatch", NULL);
}

static bool keys_equal(const char *a, size_t alen, const char *b, size_t blen)
{
    return alen == blen && memcmp(a, b, alen) == 0;
}

/* Turn operation i into bops[i]; false with *f set when it is invalid. The
 * checks run in the order a reader would expect the first complaint:
 * verb, URL, table, keys, partition, duplicates, permissions, body. */
static bool prepare(struct tctx *c, struct bop *bops, size_t i, struct fail *f)
{
    struct bop *b = &bops[i];
    const char *m = op_method(b->src);
    bool has_keys;
    if (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0)
        return set_fail(f, "InvalidInput", "A changeset may not contain a query operation.");
    bool insert = strcmp(m, "POST") == 0, del = strcmp(m, "DELETE") == 0;
    bool put = strcmp(m, "PUT") == 0;
    bool merge = strcmp(m, "PATCH") == 0 || strcmp(m, "MERGE") == 0;
    if (!insert && !del && !put && !merge) return set_fail(f, "InvalidHttpVerb", NULL);
    if (!parse_target(c, b, &has_keys, f)) return false;
    if (insert == has_keys) return set_fail(f, "MethodNotAllowed", NULL);
    if (i > 0 && strcasecmp(b->table, bops[0].table) != 0)
        return set_fail(f, "CommandsInBatchActOnDifferentPartitions", NULL);
    if (c->is_sas && c->sas.kind == NB_SAS_SERVICE && strcasecmp(c->sas.tn, b->table) != 0)
        return set_fail(f, "AuthorizationFailure", NULL);

    b->if_match = nb_batch_op_header(b->src, "If-Match");
    if (insert) b->kind = NB_ENTITY_INSERT;
    else if (del) b->kind = NB_ENTITY_DELETE;
    else if (b->if_match) b->kind = merge ? NB_ENTITY_MERGE : NB_ENTITY_REPLACE;
    else b->kind = merge ? NB_ENTITY_UPSERT_MERGE : NB_ENTITY_UPSERT_REPLACE;

    /* The body (an insert's keys live only there). */
    if (!del) {
        const char *code = NULL, *msg = NULL;
        if (nb_entity_from_json(b->src->body, b->src->body_len, &c->req->arena, &b->e, &code,
                                &msg) != NB_OK)
            return set_fail(f, code ? code : "InvalidInput", msg);
        if (insert) {
            if (!b->e.pk || !b->e.rk)
                return set_fail(f, "PropertiesNeedValue",
                                "The values are not specified for all properties in the entity.");
            b->pk = b->e.pk, b->pk_len = b->e.pk_len;
            b->rk = b->e.rk, b->rk_len = b->e.rk_len;
        } else if ((b->e.pk && !keys_equal(b->e.pk, b->e.pk_len, b->pk, b->pk_len)) ||
                   (b->e.rk && !keys_equal(b->e.rk, b->e.rk_len, b->rk, b->rk_len))) {
            return set_fail(f, "InvalidInput", "The keys in the body do not match the URL.");
        }
    }
    if (!nb_entity_key_ok(b->pk, b->pk_len) || !nb_entity_key_ok(b->rk, b->rk_len))
        return set_fail(f, "InvalidInput", "The key contains characters that are not permitted.");
    if (!insert && !del) {
        b->e.pk = b->pk, b->e.pk_len = b->pk_len;
        b->e.rk = b->rk, b->e.rk_len = b->rk_len;
        if (nb_entity_size(&b->e) > NB_ENTITY_MAX_SIZE) return set_fail(f, "EntityTooLarge", NULL);
    }
    if (i > 0 && !keys_equal(b->pk, b->pk_len, bops[0].pk, bops[0].pk_len))
        return set_fail(f, "CommandsInBatchActOnDifferentPartitions", NULL);
    for (size_t j = 0; j < i; j++)
        if (keys_equal(b->rk, b->rk_len, bops[j].rk, bops[j].rk_len))
            return set_fail(f, "InvalidDuplicateRow", NULL);

    /* SAS: the letters the single-request handlers need, per operation. */
    if (insert && !sas_allows(c, 'a', f)) return false;
    if (del && !sas_allows(c, 'd', f)) return false;
    if ((put || merge) && !sas_allows(c, 'u', f)) return false;
    if ((put || merge) && !b->if_match && !sas_allows(c, 'a', f)) return false;
    if (c->is_sas && !nb_sas_key_in_range(&c->sas, b->pk, b->rk))
        return set_fail(f, "AuthorizationFailure", NULL);

    if (!del) {
        nb_buf_init(&b->data, NB_TABLE_MAX_BODY);
        if (nb_entity_encode(&b->e, &b->data) != NB_OK) return set_fail(f, "EntityTooLarge", NULL);
    }
    if (insert) {
        const char *prefer = nb_batch_op_header(b->src, "Prefer");
        b->no_content = prefer && strstr(prefer, "return-no-content");
    }
    return true;
}

/* The Azure code for the store's refusal of one operation; NULL when the
 * store itself failed (answered as a plain InternalError). */
static const char *store_code(enum nb_err rc)
{
    switch (rc) {
    case NB_ERR_NO_PARENT: return "TableNotFound";
    case NB_ERR_NOT_FOUND: return "ResourceNotFound";
    case NB_ERR_EXISTS: return "EntityAlreadyExists";
    case NB_ERR_MISMATCH: return "UpdateConditionNotSatisfied";
    case NB_ERR_RANGE: return "TooManyProperties"; /* a merge past 252 properties */
    case NB_ERR_TOO_LARGE: return "EntityTooLarge";  /* a merge past 1 MiB */
    default: return NULL;
    }
}

/* --- the handler ------------------------------------------------------------ */

void nb_table_op_batch(struct tctx *c)
{
    const struct nb_buf *body = &c->req->body;
    if (body->len > BATCH_MAX_BODY) {
        nb_table_error(c, "RequestBodyTooLarge", NULL);
        return;
    }
    struct nb_batch bt;
    const char *why = NULL;
    enum nb_err rc = nb_multipart_parse(nb_req_header(c->req, "Content-Type"), body->data,
                                        body->len, &c->req->arena, &bt, &why);
    struct fail f = { NULL, NULL };
    if (rc == NB_ERR_TOO_LARGE) {
        /* Azure names the last operation that fits (0-based 99). */
        f = (struct fail){ "InvalidInput", why };
        send_failure(c, &bt, NB_MULTIPART_MAX_OPS - 1, &f);
        return;
    }
    if (rc) {
        nb_table_error(c, "InvalidInput", why);
        return;
    }
    if (bt.n == 0) {
        nb_table_error(c, "InvalidInput", "The batch request contains no operations.");
        return;
    }

    struct bop *bops = nb_arena_alloc(&c->req->arena, bt.n * sizeof(*bops));
    memset(bops, 0, bt.n * sizeof(*bops));
    struct nb_entity_op *sops = nb_arena_alloc(&c->req->arena, bt.n * sizeof(*sops));
    memset(sops, 0, bt.n * sizeof(*sops));
    /* Every bop starts zeroed, so cleaning up all bt.n data buffers is safe
     * whichever operation failed. */
    for (size_t i = 0; i < bt.n; i++) {
        bops[i].src = &bt.ops[i];
        if (!prepare(c, bops, i, &f)) {
            send_failure(c, &bt, i, &f);
            goto cleanup;
        }
    }
    for (size_t i = 0; i < bt.n; i++) {
        struct bop *b = &bops[i];
        sops[i] = (struct nb_entity_op){
            .kind = b->kind,
            .pk = b->pk, .pk_len = b->pk_len, .rk = b->rk, .rk_len = b->rk_len,
            .data = b->data.data, .data_len = b->data.len,
        };
        /* Delete without If-Match acts as "*", like the single request. */
        const char *im = b->if_match;
        if (b->kind == NB_ENTITY_DELETE && !im) im = "*";
        nb_table_if_match(im, &sops[i].if_match, &sops[i].if_match_ticks);
    }
    size_t failed = 0;
    rc = nb_store_entity_write(c->svc->env.store, c->account, bops[0].table, sops, bt.n,
                               nb_table_merge, c->req->now, &failed);
    if (rc == NB_OK) {
        send_success(c, &bt, bops, sops);
    } else if ((f.code = store_code(rc)) != NULL) {
        /* A missing table is reported at index 0, as Azure does. */
        if (rc == NB_ERR_NO_PARENT || failed >= bt.n) failed = 0;
        send_failure(c, &bt, failed, &f);
    } else {
        nb_table_store_error(c, rc);
    }
cleanup:
    for (size_t i = 0; i < bt.n; i++) nb_buf_cleanup(&bops[i].data);
}
