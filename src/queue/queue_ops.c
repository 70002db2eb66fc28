/* Service- and queue-level operations of the queue service: list, service
 * properties and stats, create/delete, metadata and ACLs. Metadata is kept
 * in the store as a canonical JSON array of [name, value] pairs sorted by
 * lowercased name, so "identical metadata" is a byte comparison. */
#include "core/mem.h"
#include "queue/internal.h"
#include "queue/names.h"
#include "storage/acl.h"
#include "storage/errors.h"
#include "storage/service_props.h"
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define META_PREFIX "x-ms-meta-"
#define META_PREFIX_LEN 10

static void xml_reply(struct qctx *c, int status)
{
    c->resp->status = status;
    nb_resp_header(c->req, c->resp, "Content-Type", "application/xml");
}

static int meta_cmp(const void *a, const void *b)
{
    const struct nb_kv *x = a, *y = b;
    return strcasecmp(x->name, y->name);
}

/* Build the canonical metadata text from the x-ms-meta-* headers. The bare
 * "x-ms-meta" header some clients send on create is not metadata. Returns
 * NULL (error sent) on an invalid name or oversized metadata. */
static char *metadata_from_headers(struct qctx *c)
{
    struct nb_req *req = c->req;
    struct nb_kv *items = nb_arena_alloc(&req->arena, (req->nheaders + 1) * sizeof(*items));
    size_t n = 0, total = 0;
    for (size_t i = 0; i < req->nheaders; i++) {
        const struct nb_kv *h = &req->headers[i];
        if (strncasecmp(h->name, META_PREFIX, META_PREFIX_LEN) != 0) continue;
        const char *name = h->name + META_PREFIX_LEN;
        if (!nb_queue_metadata_name_ok(name)) {
            nb_queue_error(c, "InvalidMetadata", NULL);
            return NULL;
        }
        total += strlen(name) + h->value_len;
        items[n++] = (struct nb_kv){ name, h->value, h->value_len };
    }
    if (total > NB_QUEUE_MAX_METADATA) {
        nb_queue_error(c, "MetadataTooLarge", NULL);
        return NULL;
    }
    qsort(items, n, sizeof(*items), meta_cmp);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_pack("[s,s%]", items[i].name, items[i].value,
                                             items[i].value_len));
    char *text = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    char *out = nb_arena_strdup(&req->arena, text ? text : "[]");
    free(text);
    return out;
}

/* Call fn(name, value) for each pair of a canonical metadata text. */
static void metadata_each(const char *text, void (*fn)(struct qctx *, const char *, const char *),
                          struct qctx *c)
{
    if (!text || !*text) return;
    json_t *arr = json_loads(text, 0, NULL);
    size_t i;
    json_t *pair;
    json_array_foreach(arr, i, pair)
    {
        const char *k = json_string_value(json_array_get(pair, 0));
        const char *v = json_string_value(json_array_get(pair, 1));
        if (k && v) fn(c, k, v);
    }
    json_decref(arr);
}

static void meta_header(struct qctx *c, const char *name, const char *value)
{
    char *h = nb_arena_printf(&c->req->arena, META_PREFIX "%s", name);
    nb_resp_header(c->req, c->resp, h, value);
}

static void meta_xml(struct qctx *c, const char *name, const char *value)
{
    struct nb_buf *b = &c->resp->body;
    nb_buf_printf(b, "<%s>", name);
    nb_buf_add_xml(b, value, strlen(value));
    nb_buf_printf(b, "</%s>", name);
}

/* --- service level ------------------------------------------------------- */

void nb_queue_op_list(struct qctx *c)
{
    struct nb_req *req = c->req;
    long long max;
    if (!nb_queue_int_param(c, "maxresults", 5000, 1, 5000, &max)) return;
    const char *prefix = nb_req_query(req, "prefix");
    const char *marker = nb_req_query(req, "marker");
    const char *include = nb_req_query(req, "include");
    bool with_meta = include && strcasestr(include, "metadata") != NULL;
    struct nb_queue_list list = { NULL, 0, NULL };
    enum nb_err rc = nb_store_queue_list(c->svc->env.store, c->account, prefix, marker,
                                         (size_t)max, with_meta, &list);
    if (rc) {
        nb_queue_store_error(c, rc);
        return;
    }
    xml_reply(c, 200);
    struct nb_buf *b = &c->resp->body;
    const char *host = nb_req_header(req, "Host");
    nb_buf_adds(b, "<?xml version=\"1.0\" encoding=\"utf-8\"?><EnumerationResults "
                   "ServiceEndpoint=\"http://");
    nb_buf_add_xml(b, host ? host : "127.0.0.1", strlen(host ? host : "127.0.0.1"));
    nb_buf_printf(b, "/%s/\">", c->account);
    if (prefix) {
        nb_buf_adds(b, "<Prefix>");
        nb_buf_add_xml(b, prefix, strlen(prefix));
        nb_buf_adds(b, "</Prefix>");
    }
    if (marker) {
        nb_buf_adds(b, "<Marker>");
        nb_buf_add_xml(b, marker, strlen(marker));
        nb_buf_adds(b, "</Marker>");
    }
    if (nb_req_query(req, "maxresults")) nb_buf_printf(b, "<MaxResults>%lld</MaxResults>", max);
    nb_buf_adds(b, "<Queues>");
    for (size_t i = 0; i < list.n; i++) {
        nb_buf_adds(b, "<Queue><Name>");
        nb_buf_add_xml(b, list.items[i].name, strlen(list.items[i].name));
        nb_buf_adds(b, "</Name>");
        if (with_meta) {
            nb_buf_adds(b, "<Metadata>");
            metadata_each(list.items[i].metadata, meta_xml, c);
            nb_buf_adds(b, "</Metadata>");
        }
        nb_buf_adds(b, "</Queue>");
    }
    nb_buf_adds(b, "</Queues>");
    if (list.next_marker) {
        nb_buf_adds(b, "<NextMarker>");
        nb_buf_add_xml(b, list.next_marker, strlen(list.next_marker));
        nb_buf_adds(b, "</NextMarker>");
    } else {
        nb_buf_adds(b, "<NextMarker />");
    }
    nb_buf_adds(b, "</EnumerationResults>");
    nb_queue_list_cleanup(&list);
}

void nb_queue_op_get_props(struct qctx *c)
{
    char *props = NULL;
    enum nb_err rc = nb_store_kv_get(c->svc->env.store, NB_QUEUE_PROPS_NS, c->account, &props);
    if (rc && rc != NB_ERR_NOT_FOUND) {
        nb_queue_store_error(c, rc);
        return;
    }
    xml_reply(c, 200);
    nb_buf_adds(&c->resp->body, props ? props : nb_service_props_default());
    free(props);
}

void nb_queue_op_set_props(struct qctx *c)
{
    char *stored = NULL, *merged = NULL;
    const char *code = NULL;
    enum nb_err rc = nb_store_kv_get(c->svc->env.store, NB_QUEUE_PROPS_NS, c->account, &stored);
    if (rc && rc != NB_ERR_NOT_FOUND) goto store_error;
    rc = nb_service_props_merge(stored, c->req->body.data ? c->req->body.data : "",
                                c->req->body.len, &merged, &code);
    if (rc) {
        nb_queue_error(c, code ? code : "InvalidXmlDocument", NULL);
        goto cleanup;
    }
    rc = nb_store_kv_set(c->svc->env.store, NB_QUEUE_PROPS_NS, c->account, merged);
    if (rc) goto store_error;
    c->resp->status = 202;
    goto cleanup;
store_error:
    nb_queue_store_error(c, rc);
cleanup:
    free(stored);
    free(merged);
}

void nb_queue_op_stats(struct qctx *c)
{
    xml_reply(c, 200);
    nb_service_stats_xml(c->req->now, &c->resp->body);
}

/* --- queue level --------------------------------------------------------- */

void nb_queue_op_create(struct qctx *c)
{
    if (!nb_queue_check_name(c)) return;
    char *meta = metadata_from_headers(c);
    if (!meta) return;
    enum nb_err rc = nb_store_queue_create(c->svc->env.store, c->account, c->queue, meta,
                                           c->req->now);
    if (rc == NB_OK) c->resp->status = 201;
    else if (rc == NB_ERR_EXISTS_SAME) c->resp->status = 204;
    else nb_queue_store_error(c, rc);
}

void nb_queue_op_delete(struct qctx *c)
{
    if (!nb_queue_check_name(c)) return;
    enum nb_err rc = nb_store_queue_delete(c->svc->env.store, c->account, c->queue);
    if (rc) nb_queue_store_error(c, rc);
    else c->resp->status = 204;
}

void nb_queue_op_get_metadata(struct qctx *c)
{
    if (!nb_queue_check_name(c)) return;
    char *meta = NULL;
    int64_t count = 0;
    enum nb_err rc = nb_store_queue_get(c->svc->env.store, c->account, c->queue, c->req->now,
                                        &meta, &count);
    if (rc) {
        nb_queue_store_error(c, rc);
        return;
    }
    c->resp->status = 200;
    metadata_each(meta, meta_header, c);
    char *cnt = nb_arena_printf(&c->req->arena, "%lld", (long long)count);
    nb_resp_header(c->req, c->resp, "x-ms-approximate-messages-count", cnt);
    nb_resp_header(c->req, c->resp, "Cache-Control", "no-cache");
    free(meta);
}

void nb_queue_op_set_metadata(struct qctx *c)
{
    if (!nb_queue_check_name(c)) return;
    char *meta = metadata_from_headers(c);
    if (!meta) return;
    enum nb_err rc = nb_store_queue_set_metadata(c->svc->env.store, c->account, c->queue, meta);
    if (rc) nb_queue_store_error(c, rc);
    else c->resp->status = 204;
}

void nb_queue_op_get_acl(struct qctx *c)
{
    if (!nb_queue_check_name(c)) return;
    char *xml = NULL;
    enum nb_err rc = nb_store_queue_get_acl(c->svc->env.store, c->account, c->queue, &xml);
    if (rc) {
        nb_queue_store_error(c, rc);
        return;
    }
    struct nb_acl acl;
    const char *code = NULL;
    if (nb_acl_parse_xml(xml, strlen(xml), &acl, &code) != NB_OK) acl.n = 0;
    free(xml);
    xml_reply(c, 200);
    nb_acl_to_xml(&acl, &c->resp->body);
}

void nb_queue_op_set_acl(struct qctx *c)
{
    if (!nb_queue_check_name(c)) return;
    struct nb_acl acl;
    const char *code = NULL;
    const struct nb_buf *body = &c->req->body;
    if (nb_acl_parse_xml(body->data ? body->data : "", body->len, &acl, &code) != NB_OK) {
        nb_queue_error(c, code ? code : "InvalidXmlDocument", NULL);
        return;
    }
    struct nb_buf xml;
    nb_buf_init(&xml, 64 * 1024);
    nb_acl_to_xml(&acl, &xml);
    enum nb_err rc = nb_store_queue_set_acl(c->svc->env.store, c->account, c->queue,
                                            nb_buf_cstr(&xml));
    nb_buf_cleanup(&xml);
    if (rc) nb_queue_store_error(c, rc);
    else c->resp->status = 204;
}
