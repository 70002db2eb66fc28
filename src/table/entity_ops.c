/* Entity operations of the table service: insert, get, update/merge (and
 * their upsert forms), delete and query. A query turns its $filter into a
 * key range the store scans in (PartitionKey, RowKey) order and evaluates
 * only the residue per row, straight on the encoded properties. */
#include "core/encode.h"
#include "core/mem.h"
#include "table/filter.h"
#include "table/internal.h"
#include "table/value.h"
#include <stdlib.h>
#include <string.h>

#define MAX_SCAN_PER_PAGE 100000 /* rows examined before a partial page */

static const char *prefer_no_content(struct tctx *c)
{
    const char *prefer = nb_req_header(c->req, "Prefer");
    return prefer && strstr(prefer, "return-no-content") ? "return-no-content" : NULL;
}

static void etag_header(struct tctx *c, int64_t ticks, char *etag, size_t len)
{
    nb_entity_etag(ticks, etag, len);
    nb_resp_header(c->req, c->resp, "ETag", etag);
}

/* $select=a,b,c as a list of names (arena memory); NULL when absent. */
static const char *const *parse_select(struct tctx *c, size_t *n)
{
    const char *sel = nb_req_query(c->req, "$select");
    *n = 0;
    if (!sel || !*sel) return NULL;
    char *copy = nb_arena_strdup(&c->req->arena, sel);
    const char **names = nb_arena_alloc(&c->req->arena, (strlen(sel) / 2 + 2) * sizeof(*names));
    for (char *p = copy; p;) {
        char *comma = strchr(p, ',');
        if (comma) *comma = '\0';
        while (*p == ' ') p++;
        if (*p) names[(*n)++] = p;
        p = comma ? comma + 1 : NULL;
    }
    return names;
}

/* Parse the request body into e, answering the error on failure. */
static bool parse_body(struct tctx *c, struct nb_entity *e)
{
    const char *code = NULL, *msg = NULL;
    const struct nb_buf *b = &c->req->body;
    if (nb_entity_from_json(b->data ? b->data : "", b->len, &c->req->arena, e, &code, &msg) !=
        NB_OK) {
        nb_table_error(c, code ? code : "InvalidInput", msg);
        return false;
    }
    return true;
}

static bool check_keys(struct tctx *c, const char *pk, size_t pk_len, const char *rk,
                       size_t rk_len)
{
    if (nb_entity_utf16_len(pk, pk_len) > NB_ENTITY_MAX_KEY_UNITS ||
        nb_entity_utf16_len(rk, rk_len) > NB_ENTITY_MAX_KEY_UNITS) {
        nb_table_error(c, "OutOfRangeInput", "The key is longer than 1 KiB.");
        return false;
    }
    if (!nb_entity_key_ok(pk, pk_len) || !nb_entity_key_ok(rk, rk_len)) {
        nb_table_error(c, "InvalidInput", "The key contains characters that are not permitted.");
        return false;
    }
    return nb_table_sas_keys_ok(c, pk, rk);
}

static void entity_reply(struct tctx *c, int status, const struct nb_entity *e,
                         const char *etag)
{
    nb_table_json_headers(c, status);
    struct nb_entity_json_opts o = {
        .level = c->level,
        .metadata_url = nb_arena_printf(&c->req->arena, "%s/$metadata#%s/@Element",
                                        c->base_url, c->table),
        .account = c->account,
        .table = c->table,
        .base_url = c->base_url,
        .etag = etag,
    };
    nb_entity_to_json(e, &o, &c->resp->body);
}

void nb_table_op_insert(struct tctx *c)
{
    struct nb_entity e;
    if (!parse_body(c, &e)) return;
    if (!e.pk || !e.rk) {
        nb_table_error(c, "PropertiesNeedValue",
                       "The values are not specified for all properties in the entity.");
        return;
    }
    if (!check_keys(c, e.pk, e.pk_len, e.rk, e.rk_len)) return;
    struct nb_buf data;
    nb_buf_init(&data, NB_TABLE_MAX_BODY);
    nb_entity_encode(&e, &data);
    struct nb_entity_op op = {
        .kind = NB_ENTITY_INSERT,
        .pk = e.pk, .pk_len = e.pk_len, .rk = e.rk, .rk_len = e.rk_len,
        .data = data.data, .data_len = data.len,
    };
    size_t failed = 0;
    enum nb_err rc = nb_store_entity_write(c->svc->env.store, c->account, c->table, &op, 1,
                                           nb_table_merge, c->req->now, &failed);
    nb_buf_cleanup(&data);
    if (rc) {
        nb_table_store_error(c, rc);
        return;
    }
    e.timestamp = op.timestamp;
    char etag[96];
    const char *pref = prefer_no_content(c);
    if (pref) {
        nb_table_json_headers(c, 204);
        nb_resp_header(c->req, c->resp, "Preference-Applied", pref);
        etag_header(c, op.timestamp, etag, sizeof(etag));
        return;
    }
    nb_entity_etag(op.timestamp, etag, sizeof(etag));
    entity_reply(c, 201, &e, etag);
    nb_resp_header(c->req, c->resp, "ETag", etag);
}

void nb_table_op_get(struct tctx *c)
{
    if (!nb_table_sas_keys_ok(c, c->pk, c->rk)) return;
    struct nb_entity_row row;
    memset(&row, 0, sizeof(row));
    enum nb_err rc = nb_store_entity_get(c->svc->env.store, c->account, c->table, c->pk,
                                         c->pk_len, c->rk, c->rk_len, &row);
    if (rc) {
        nb_table_store_error(c, rc);
        return;
    }
    struct nb_entity e;
    memset(&e, 0, sizeof(e));
    if (nb_entity_decode(row.data, row.data_len, &c->req->arena, &e) != NB_OK) {
        nb_entity_row_cleanup(&row);
        nb_table_store_error(c, NB_ERR_STORE);
        return;
    }
    e.pk = c->pk;
    e.pk_len = c->pk_len;
    e.rk = c->rk;
    e.rk_len = c->rk_len;
    e.timestamp = row.timestamp;
    char etag[96];
    nb_entity_etag(row.timestamp, etag, sizeof(etag));
    nb_table_json_headers(c, 200);
    struct nb_entity_json_opts o = {
        .level = c->level,
        .metadata_url = nb_arena_printf(&c->req->arena, "%s/$metadata#%s/@Element",
                                        c->base_url, c->table),
        .account = c->account,
        .table = c->table,
        .base_url = c->base_url,
        .etag = etag,
    };
    o.select = parse_select(c, &o.nselect);
    nb_entity_to_json(&e, &o, &c->resp->body);
    nb_resp_header(c->req, c->resp, "ETag", etag);
    nb_entity_row_cleanup(&row);
}

void nb_table_op_update(struct tctx *c)
{
    const char *m = c->method;
    const char *if_match = nb_req_header(c->req, "If-Match");
    bool merge = strcmp(m, "PUT") != 0;
    enum nb_entity_op_kind kind;
    if (if_match) kind = merge ? NB_ENTITY_MERGE : NB_ENTITY_REPLACE;
    else kind = merge ? NB_ENTITY_UPSERT_MERGE : NB_ENTITY_UPSERT_REPLACE;
    if (!nb_table_sas_perm(c, 'u')) return;
    if (!if_match && !nb_table_sas_perm(c, 'a')) return;
    if (!check_keys(c, c->pk, c->pk_len, c->rk, c->rk_len)) return;
    struct nb_entity e;
    if (!parse_body(c, &e)) return;
    if ((e.pk && (e.pk_len != c->pk_len || memcmp(e.pk, c->pk, c->pk_len) != 0)) ||
        (e.rk && (e.rk_len != c->rk_len || memcmp(e.rk, c->rk, c->rk_len) != 0))) {
        nb_table_error(c, "InvalidInput", "The keys in the body do not match the URL.");
        return;
    }
    e.pk = c->pk;
    e.pk_len = c->pk_len;
    e.rk = c->rk;
    e.rk_len = c->rk_len;
    if (nb_entity_size(&e) > NB_ENTITY_MAX_SIZE) {
        nb_table_error(c, "EntityTooLarge", NULL);
        return;
    }
    struct nb_buf data;
    nb_buf_init(&data, NB_TABLE_MAX_BODY);
    nb_entity_encode(&e, &data);
    struct nb_entity_op op = {
        .kind = kind,
        .pk = c->pk, .pk_len = c->pk_len, .rk = c->rk, .rk_len = c->rk_len,
        .data = data.data, .data_len = data.len,
    };
    nb_table_if_match(if_match, &op.if_match, &op.if_match_ticks);
    size_t failed = 0;
    enum nb_err rc = nb_store_entity_write(c->svc->env.store, c->account, c->table, &op, 1,
                                           nb_table_merge, c->req->now, &failed);
    nb_buf_cleanup(&data);
    if (rc) {
        nb_table_store_error(c, rc);
        return;
    }
    nb_table_json_headers(c, 204);
    char etag[96];
    etag_header(c, op.timestamp, etag, sizeof(etag));
}

void nb_table_op_delete(struct tctx *c)
{
    if (!check_keys(c, c->pk, c->pk_len, c->rk, c->rk_len)) return;
    struct nb_entity_op op = {
        .kind = NB_ENTITY_DELETE,
        .pk = c->pk, .pk_len = c->pk_len, .rk = c->rk, .rk_len = c->rk_len,
    };
    /* Azure requires If-Match on delete; every client sends it. Without one
     * we delete unconditionally, as "*" would. */
    const char *if_match = nb_req_header(c->req, "If-Match");
    nb_table_if_match(if_match ? if_match : "*", &op.if_match, &op.if_match_ticks);
    size_t failed = 0;
    enum nb_err rc = nb_store_entity_write(c->svc->env.store, c->account, c->table, &op, 1,
                                           nb_table_merge, c->req->now, &failed);
    if (rc) nb_table_store_error(c, rc);
    else nb_table_json_headers(c, 204);
}

/* --- query ------------------------------------------------------------------ */

/* Continuation tokens: "1!<base64 length>!<base64 of the key>", opaque to
 * clients and safe in headers whatever bytes the key holds. */
static const char *token_encode(struct tctx *c, const char *key, size_t len)
{
    char *b64 = nb_base64_encode(key, len);
    const char *tok = nb_arena_printf(&c->req->arena, "1!%zu!%s", strlen(b64), b64);
    free(b64);
    return tok;
}

static bool token_decode(struct tctx *c, const char *tok, const char **key, size_t *len)
{
    if (strncmp(tok, "1!", 2) != 0) return false;
    const char *bang = strchr(tok + 2, '!');
    if (!bang) return false;
    unsigned char *raw = NULL;
    size_t n = 0;
    if (!nb_base64_decode(bang + 1, strlen(bang + 1), &raw, &n)) return false;
    *key = nb_arena_strndup(&c->req->arena, (const char *)raw, n);
    *len = n;
    free(raw);
    return true;
}

struct row_ctx {
    const struct nb_entity_row *row;
    struct tctx *c;
    const struct nb_filter *residue;
};

static bool lookup_row(void *ctx, const char *name, size_t len, struct nb_value *out)
{
    return nb_entity_row_lookup((void *)((struct row_ctx *)ctx)->row, name, len, out);
}

static bool match_row(void *ctx, const struct nb_entity_row *row)
{
    struct row_ctx *rc = ctx;
    rc->row = row;
    if (rc->c->is_sas && !nb_sas_key_in_range(&rc->c->sas, row->pk, row->rk)) return false;
    return !rc->residue || nb_filter_eval(rc->residue, lookup_row, rc);
}

static void bound(struct nb_store_key_bound *dst, const struct nb_key_bound *src)
{
    *dst = (struct nb_store_key_bound){ src->set, src->inclusive, src->key, src->len };
}

void nb_table_op_query(struct tctx *c)
{
    size_t top;
    if (!nb_table_top(c, &top)) return;
    struct nb_filter *filter = NULL, *residue = NULL;
    const char *text = nb_req_query(c->req, "$filter");
    struct nb_key_range range;
    memset(&range, 0, sizeof(range));
    if (text && *text) {
        char err[256];
        if (nb_filter_parse(text, strlen(text), &filter, err, sizeof(err)) != NB_OK) {
            nb_table_error(c, "InvalidInput", err);
            return;
        }
        nb_filter_key_range(filter, &range);
        residue = nb_filter_residue(filter);
    }
    struct nb_entity_scan scan;
    memset(&scan, 0, sizeof(scan));
    bound(&scan.pk_lo, &range.pk_lo);
    bound(&scan.pk_hi, &range.pk_hi);
    bound(&scan.rk_lo, &range.rk_lo);
    bound(&scan.rk_hi, &range.rk_hi);
    scan.max = top;
    scan.max_scan = MAX_SCAN_PER_PAGE;
    struct row_ctx rctx = { NULL, c, residue };
    scan.match = match_row;
    scan.match_ctx = &rctx;
    const char *npk = nb_req_query(c->req, "NextPartitionKey");
    const char *nrk = nb_req_query(c->req, "NextRowKey");
    if (npk && !token_decode(c, npk, &scan.start_pk, &scan.start_pk_len)) goto bad_token;
    if (nrk && !token_decode(c, nrk, &scan.start_rk, &scan.start_rk_len)) goto bad_token;
    if (scan.start_pk && !scan.start_rk) {
        scan.start_rk = "";
        scan.start_rk_len = 0;
    }

    struct nb_entity_rows rows;
    memset(&rows, 0, sizeof(rows));
    enum nb_err rc = range.empty ? NB_OK
                                 : nb_store_entity_query(c->svc->env.store, c->account,
                                                         c->table, &scan, &rows);
    if (range.empty) {
        /* Still report a missing table as such. */
        char *acl = NULL;
        rc = nb_store_table_get_acl(c->svc->env.store, c->account, c->table, &acl);
        free(acl);
    }
    if (rc) {
        nb_table_store_error(c, rc);
        goto cleanup;
    }
    nb_table_json_headers(c, 200);
    struct nb_buf *b = &c->resp->body;
    nb_buf_adds(b, "{");
    if (c->level != NB_META_NONE)
        nb_buf_printf(b, "\"odata.metadata\":\"%s/$metadata#%s\",", c->base_url, c->table);
    nb_buf_adds(b, "\"value\":[");
    size_t nsel = 0;
    const char *const *names = parse_select(c, &nsel);
    size_t emitted = 0;
    for (size_t i = 0; i < rows.n; i++) {
        const struct nb_entity_row *row = &rows.items[i];
        struct nb_entity e;
        memset(&e, 0, sizeof(e));
        if (nb_entity_decode(row->data, row->data_len, &c->req->arena, &e) != NB_OK) {
            nb_log_error(c->svc->env.log, "table: undecodable entity in %s", c->table);
            continue;
        }
        e.pk = row->pk;
        e.pk_len = row->pk_len;
        e.rk = row->rk;
        e.rk_len = row->rk_len;
        e.timestamp = row->timestamp;
        char etag[96];
        nb_entity_etag(row->timestamp, etag, sizeof(etag));
        struct nb_entity_json_opts o = {
            .level = c->level,
            .account = c->account,
            .table = c->table,
            .base_url = c->base_url,
            .select = names,
            .nselect = nsel,
            .etag = etag,
        };
        if (emitted++) nb_buf_addc(b, ',');
        nb_entity_to_json(&e, &o, b);
    }
    nb_buf_adds(b, "]}");
    if (rows.next_pk) {
        nb_resp_header(c->req, c->resp, "x-ms-continuation-NextPartitionKey",
                       token_encode(c, rows.next_pk, rows.next_pk_len));
        nb_resp_header(c->req, c->resp, "x-ms-continuation-NextRowKey",
                       token_encode(c, rows.next_rk ? rows.next_rk : "", rows.next_rk_len));
    }
    nb_entity_rows_cleanup(&rows);
    goto cleanup;
bad_token:
    nb_table_error(c, "InvalidInput", "The continuation token is not valid.");
cleanup:
    nb_filter_free(residue);
    nb_filter_free(filter);
}
