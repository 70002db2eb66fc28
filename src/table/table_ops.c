/* Table-level operations of the table service: create, delete and query
 * tables, table ACLs, service properties and stats. Table names keep the
 * case they were created with and compare case-insensitively. */
#include "core/mem.h"
#include "storage/acl.h"
#include "storage/service_props.h"
#include "table/filter.h"
#include "table/internal.h"
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

bool nb_table_top(struct tctx *c, size_t *out)
{
    const char *top = nb_req_query(c->req, "$top");
    *out = NB_TABLE_MAX_PAGE;
    if (!top) return true;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(top, &end, 10);
    if (errno || end == top || *end || v < 1 || v > NB_TABLE_MAX_PAGE) {
        nb_table_error(c, "InvalidQueryParameterValue",
                       "One of the query parameters specified in the request URI is invalid.");
        return false;
    }
    *out = (size_t)v;
    return true;
}

static void table_json(struct tctx *c, json_t *obj, const char *name)
{
    if (c->level == NB_META_FULL) {
        json_object_set_new(obj, "odata.type",
                            json_string(nb_arena_printf(&c->req->arena, "%s.Tables", c->account)));
        json_object_set_new(obj, "odata.id", json_string(nb_arena_printf(
                                                 &c->req->arena, "%s/Tables('%s')", c->base_url, name)));
        json_object_set_new(obj, "odata.editLink",
                            json_string(nb_arena_printf(&c->req->arena, "Tables('%s')", name)));
    }
    json_object_set_new(obj, "TableName", json_string(name));
}

static void send_json(struct tctx *c, int status, json_t *obj)
{
    nb_table_json_headers(c, status);
    char *s = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (s) nb_buf_adds(&c->resp->body, s);
    free(s);
}

/* $filter over table names: evaluated per name by the store's listing. */
struct name_match {
    struct nb_filter *filter;
};

static bool lookup_table_name(void *ctx, const char *name, size_t len, struct nb_value *out)
{
    const char *table = ctx;
    if (len != 9 || memcmp(name, "TableName", 9) != 0) return false;
    *out = (struct nb_value){ .type = NB_EDM_STRING, .s = table, .len = strlen(table) };
    return true;
}

static bool match_table(void *ctx, const char *name)
{
    struct name_match *m = ctx;
    return nb_filter_eval(m->filter, lookup_table_name, (void *)name);
}

void nb_table_op_query_tables(struct tctx *c)
{
    size_t top;
    if (!nb_table_top(c, &top)) return;
    struct name_match m = { NULL };
    const char *filter = nb_req_query(c->req, "$filter");
    if (filter) {
        char err[256];
        if (nb_filter_parse(filter, strlen(filter), &m.filter, err, sizeof(err)) != NB_OK) {
            nb_table_error(c, "InvalidInput", err);
            return;
        }
    }
    struct nb_table_list list = { NULL, 0, NULL };
    enum nb_err rc = nb_store_table_list(c->svc->env.store, c->account,
                                         nb_req_query(c->req, "NextTableName"), top,
                                         m.filter ? match_table : NULL, &m, &list);
    nb_filter_free(m.filter);
    if (rc) {
        nb_table_store_error(c, rc);
        return;
    }
    json_t *root = json_object();
    if (c->level != NB_META_NONE)
        json_object_set_new(root, "odata.metadata",
                            json_string(nb_arena_printf(&c->req->arena, "%s/$metadata#Tables",
                                                        c->base_url)));
    json_t *arr = json_array();
    for (size_t i = 0; i < list.n; i++) {
        json_t *o = json_object();
        table_json(c, o, list.names[i]);
        json_array_append_new(arr, o);
    }
    json_object_set_new(root, "value", arr);
    send_json(c, 200, root);
    json_decref(root);
    if (list.next_name)
        nb_resp_header(c->req, c->resp, "x-ms-continuation-NextTableName", list.next_name);
    nb_table_list_cleanup(&list);
}

void nb_table_op_create_table(struct tctx *c)
{
    json_error_t jerr;
    json_t *body = json_loadb(c->req->body.data ? c->req->body.data : "", c->req->body.len, 0,
                              &jerr);
    const char *name = json_string_value(json_object_get(body, "TableName"));
    if (!name) {
        json_decref(body);
        nb_table_error(c, "InvalidInput", "The request body must be a JSON object with TableName.");
        return;
    }
    const char *bad = nb_table_name_check(name);
    if (bad) {
        json_decref(body);
        nb_table_error(c, bad, NULL);
        return;
    }
    char *table = nb_arena_strdup(&c->req->arena, name);
    json_decref(body);
    enum nb_err rc = nb_store_table_create(c->svc->env.store, c->account, table, c->req->now);
    if (rc == NB_ERR_EXISTS) {
        nb_table_error(c, "TableAlreadyExists", NULL);
        return;
    }
    if (rc) {
        nb_table_store_error(c, rc);
        return;
    }
    const char *prefer = nb_req_header(c->req, "Prefer");
    if (prefer && strstr(prefer, "return-no-content")) {
        nb_table_json_headers(c, 204);
        nb_resp_header(c->req, c->resp, "Preference-Applied", "return-no-content");
        return;
    }
    json_t *o = json_object();
    if (c->level != NB_META_NONE)
        json_object_set_new(o, "odata.metadata",
                            json_string(nb_arena_printf(&c->req->arena,
                                                        "%s/$metadata#Tables/@Element",
                                                        c->base_url)));
    table_json(c, o, table);
    send_json(c, 201, o);
    json_decref(o);
    nb_resp_header(c->req, c->resp, "Location",
                   nb_arena_printf(&c->req->arena, "%s/Tables('%s')", c->base_url, table));
}

void nb_table_op_delete_table(struct tctx *c)
{
    enum nb_err rc = nb_store_table_delete(c->svc->env.store, c->account, c->table);
    if (rc == NB_ERR_NO_PARENT) nb_table_error(c, "ResourceNotFound", NULL);
    else if (rc) nb_table_store_error(c, rc);
    else c->resp->status = 204;
}

void nb_table_op_get_acl(struct tctx *c)
{
    char *xml = NULL;
    enum nb_err rc = nb_store_table_get_acl(c->svc->env.store, c->account, c->table, &xml);
    if (rc) {
        nb_table_xml_error(c, rc == NB_ERR_NO_PARENT ? "TableNotFound" : "InternalError", NULL);
        return;
    }
    struct nb_acl acl;
    const char *code = NULL;
    if (nb_acl_parse_xml(xml, strlen(xml), &acl, &code) != NB_OK) acl.n = 0;
    free(xml);
    c->resp->status = 200;
    nb_resp_header(c->req, c->resp, "Content-Type", "application/xml");
    nb_acl_to_xml(&acl, &c->resp->body);
}

void nb_table_op_set_acl(struct tctx *c)
{
    struct nb_acl acl;
    const char *code = NULL;
    const struct nb_buf *body = &c->req->body;
    if (nb_acl_parse_xml(body->data ? body->data : "", body->len, &acl, &code) != NB_OK) {
        nb_table_xml_error(c, code ? code : "InvalidXmlDocument", NULL);
        return;
    }
    struct nb_buf xml;
    nb_buf_init(&xml, 64 * 1024);
    nb_acl_to_xml(&acl, &xml);
    enum nb_err rc = nb_store_table_set_acl(c->svc->env.store, c->account, c->table,
                                            nb_buf_cstr(&xml));
    nb_buf_cleanup(&xml);
    if (rc) nb_table_xml_error(c, rc == NB_ERR_NO_PARENT ? "TableNotFound" : "InternalError", NULL);
    else c->resp->status = 204;
}

void nb_table_op_get_props(struct tctx *c)
{
    char *props = NULL;
    enum nb_err rc = nb_store_kv_get(c->svc->env.store, NB_TABLE_PROPS_NS, c->account, &props);
    if (rc && rc != NB_ERR_NOT_FOUND) {
        nb_table_xml_error(c, "InternalError", NULL);
        return;
    }
    c->resp->status = 200;
    nb_resp_header(c->req, c->resp, "Content-Type", "application/xml");
    nb_buf_adds(&c->resp->body, props ? props : nb_service_props_default());
    free(props);
}

void nb_table_op_set_props(struct tctx *c)
{
    char *stored = NULL, *merged = NULL;
    const char *code = NULL;
    enum nb_err rc = nb_store_kv_get(c->svc->env.store, NB_TABLE_PROPS_NS, c->account, &stored);
    if (rc && rc != NB_ERR_NOT_FOUND) {
        nb_table_xml_error(c, "InternalError", NULL);
        goto cleanup;
    }
    rc = nb_service_props_merge(stored, c->req->body.data ? c->req->body.data : "",
                                c->req->body.len, &merged, &code);
    if (rc) {
        nb_table_xml_error(c, code ? code : "InvalidXmlDocument", NULL);
        goto cleanup;
    }
    if (nb_store_kv_set(c->svc->env.store, NB_TABLE_PROPS_NS, c->account, merged) != NB_OK) {
        nb_table_xml_error(c, "InternalError", NULL);
        goto cleanup;
    }
    c->resp->status = 202;
cleanup:
    free(stored);
    free(merged);
}

void nb_table_op_stats(struct tctx *c)
{
    c->resp->status = 200;
    nb_resp_header(c->req, c->resp, "Content-Type", "application/xml");
    nb_service_stats_xml(c->req->now, &c->resp->body);
}
