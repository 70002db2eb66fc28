/* Message operations of the queue service: put, get, peek, delete, update,
 * clear. Parameter ranges follow storage-queue-table.md §2.2; the message
 * body is parsed with libxml2 and the text is kept opaque (never decoded
 * from base64: encodings are the clients' business). */
#include "core/mem.h"
#include "core/timefmt.h"
#include "queue/internal.h"
#include "storage/errors.h"
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Extract MessageText from a <QueueMessage> body. Returns false (error
 * sent) on malformed XML, a missing element or an oversized text. On success
 * *text is heap memory the caller frees. */
static bool parse_message(struct qctx *c, char **text, size_t *len)
{
    const struct nb_buf *body = &c->req->body;
    *text = NULL;
    xmlDocPtr doc = NULL;
    if (body->len)
        doc = xmlReadMemory(body->data, (int)body->len, NULL, NULL,
                            XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    /* A DTD can declare entities that expand without bound: refuse any. */
    xmlNodePtr root = doc && !doc->intSubset ? xmlDocGetRootElement(doc) : NULL;
    xmlNodePtr node = NULL;
    if (root && xmlStrcmp(root->name, (const xmlChar *)"QueueMessage") == 0)
        for (node = root->children; node; node = node->next)
            if (node->type == XML_ELEMENT_NODE &&
                xmlStrcmp(node->name, (const xmlChar *)"MessageText") == 0)
                break;
    if (!node) {
        xmlFreeDoc(doc);
        nb_queue_error(c, "InvalidXmlDocument", NULL);
        return false;
    }
    xmlChar *content = xmlNodeGetContent(node);
    size_t n = content ? strlen((const char *)content) : 0;
    xmlFreeDoc(doc);
    if (n > NB_QUEUE_MAX_MESSAGE) {
        xmlFree(content);
        nb_queue_error(c, "MessageTooLarge", NULL);
        return false;
    }
    *text = nb_strndup(content ? (const char *)content : "", n);
    *len = n;
    xmlFree(content);
    return true;
}

static void xml_head(struct qctx *c, int status)
{
    c->resp->status = status;
    nb_resp_header(c->req, c->resp, "Content-Type", "application/xml");
    nb_buf_adds(&c->resp->body,
                "<?xml version=\"1.0\" encoding=\"utf-8\"?><QueueMessagesList>");
}

static void time_elem(struct nb_buf *b, const char *name, nb_time_ms t)
{
    char s[NB_RFC1123_LEN];
    nb_time_rfc1123(t, s);
    nb_buf_printf(b, "<%s>%s</%s>", name, s, name);
}

enum msg_shape { SHAPE_PUT, SHAPE_GET, SHAPE_PEEK };

static void message_xml(struct nb_buf *b, const struct nb_msg *m, enum msg_shape shape)
{
    nb_buf_printf(b, "<QueueMessage><MessageId>%s</MessageId>", m->id);
    time_elem(b, "InsertionTime", m->insertion_time);
    time_elem(b, "ExpirationTime", m->expiration_time);
    if (shape != SHAPE_PEEK) {
        nb_buf_adds(b, "<PopReceipt>");
        nb_buf_add_xml(b, m->pop_receipt, strlen(m->pop_receipt));
        nb_buf_adds(b, "</PopReceipt>");
        time_elem(b, "TimeNextVisible", m->time_next_visible);
    }
    if (shape != SHAPE_PUT) {
        nb_buf_printf(b, "<DequeueCount>%lld</DequeueCount><MessageText>",
                      (long long)m->dequeue_count);
        nb_buf_add_xml(b, m->text ? m->text : "", m->text_len);
        nb_buf_adds(b, "</MessageText>");
    }
    nb_buf_adds(b, "</QueueMessage>");
}

void nb_queue_op_put(struct qctx *c)
{
    if (!nb_queue_check_name(c)) return;
    long long ttl, vis;
    /* -1 is "never"; 0 and anything below -1 are invalid, not out of range. */
    if (!nb_queue_int_param(c, "messagettl", NB_QUEUE_DEFAULT_TTL_S, INT32_MIN, INT32_MAX, &ttl))
        return;
    if (ttl == 0 || ttl < -1) {
        nb_queue_param_error(c, "InvalidQueryParameterValue", "messagettl",
                             nb_req_query(c->req, "messagettl"), -1, INT32_MAX);
        return;
    }
    if (!nb_queue_int_param(c, "visibilitytimeout", 0, 0, NB_QUEUE_MAX_TIMEOUT_S, &vis)) return;
    if (ttl != -1 && vis >= ttl) {
        const char *v = nb_req_query(c->req, "visibilitytimeout");
        nb_queue_param_error(c, "OutOfRangeQueryParameterValue", "visibilitytimeout",
                             v ? v : "0", 0, ttl - 1);
        return;
    }
    char *text = NULL;
    size_t len = 0;
    if (!parse_message(c, &text, &len)) return;
    struct nb_msg_put in = { text, len, vis * 1000, ttl < 0 ? -1 : ttl * 1000 };
    struct nb_msg m;
    memset(&m, 0, sizeof(m));
    enum nb_err rc = nb_store_msg_put(c->svc->env.store, c->account, c->queue, &in, c->req->now,
                                      &m);
    free(text);
    if (rc) {
        nb_queue_store_error(c, rc);
        return;
    }
    nb_notify_signal(c->svc->env.wake);
    xml_head(c, 201);
    message_xml(&c->resp->body, &m, SHAPE_PUT);
    nb_buf_adds(&c->resp->body, "</QueueMessagesList>");
}

static void list_reply(struct qctx *c, struct nb_msg_list *list, enum msg_shape shape)
{
    xml_head(c, 200);
    for (size_t i = 0; i < list->n; i++) message_xml(&c->resp->body, &list->items[i], shape);
    nb_buf_adds(&c->resp->body, "</QueueMessagesList>");
    nb_resp_header(c->req, c->resp, "Cache-Control", "no-cache");
}

void nb_queue_op_get(struct qctx *c)
{
    if (!nb_queue_check_name(c)) return;
    long long n, vis;
    if (!nb_queue_int_param(c, "numofmessages", 1, 1, 32, &n)) return;
    if (!nb_queue_int_param(c, "visibilitytimeout", 30, 1, NB_QUEUE_MAX_TIMEOUT_S, &vis)) return;
    struct nb_msg_list list = { NULL, 0 };
    enum nb_err rc = nb_store_msg_get(c->svc->env.store, c->account, c->queue, (size_t)n,
                                      vis * 1000, c->req->now, &list);
    if (rc) {
        nb_queue_store_error(c, rc);
        return;
    }
    list_reply(c, &list, SHAPE_GET);
    nb_msg_list_cleanup(&list);
}

void nb_queue_op_peek(struct qctx *c)
{
    if (!nb_queue_check_name(c)) return;
    long long n;
    if (!nb_queue_int_param(c, "numofmessages", 1, 1, 32, &n)) return;
    struct nb_msg_list list = { NULL, 0 };
    enum nb_err rc = nb_store_msg_peek(c->svc->env.store, c->account, c->queue, (size_t)n,
                                       c->req->now, &list);
    if (rc) {
        nb_queue_store_error(c, rc);
        return;
    }
    list_reply(c, &list, SHAPE_PEEK);
    nb_msg_list_cleanup(&list);
}

void nb_queue_op_clear(struct qctx *c)
{
    if (!nb_queue_check_name(c)) return;
    enum nb_err rc = nb_store_msg_clear(c->svc->env.store, c->account, c->queue);
    if (rc) nb_queue_store_error(c, rc);
    else c->resp->status = 204;
}

static const char *require_popreceipt(struct qctx *c)
{
    const char *pop = nb_req_query(c->req, "popreceipt");
    if (pop && *pop) return pop;
    struct nb_kv extra = { "QueryParameterName", "popreceipt", 10 };
    nb_storage_error_xml(c->req, c->resp, "MissingRequiredQueryParameter", NULL, &extra, 1);
    return NULL;
}

void nb_queue_op_delete_message(struct qctx *c)
{
    if (!nb_queue_check_name(c)) return;
    const char *pop = require_popreceipt(c);
    if (!pop) return;
    enum nb_err rc = nb_store_msg_delete(c->svc->env.store, c->account, c->queue, c->msgid, pop,
                                         c->req->now);
    if (rc) nb_queue_store_error(c, rc);
    else c->resp->status = 204;
}

void nb_queue_op_update(struct qctx *c)
{
    if (!nb_queue_check_name(c)) return;
    const char *pop = require_popreceipt(c);
    if (!pop) return;
    if (!nb_req_query(c->req, "visibilitytimeout")) {
        struct nb_kv extra = { "QueryParameterName", "visibilitytimeout", 17 };
        nb_storage_error_xml(c->req, c->resp, "MissingRequiredQueryParameter", NULL, &extra, 1);
        return;
    }
    long long vis;
    if (!nb_queue_int_param(c, "visibilitytimeout", 0, 0, NB_QUEUE_MAX_TIMEOUT_S, &vis)) return;
    char *text = NULL;
    size_t len = 0;
    if (c->req->body.len && !parse_message(c, &text, &len)) return;
    struct nb_msg m;
    memset(&m, 0, sizeof(m));
    enum nb_err rc = nb_store_msg_update(c->svc->env.store, c->account, c->queue, c->msgid, pop,
                                         vis * 1000, text, len, c->req->now, &m);
    free(text);
    if (rc) {
        nb_queue_store_error(c, rc);
        return;
    }
    c->resp->status = 204;
    char t[NB_RFC1123_LEN];
    nb_time_rfc1123(m.time_next_visible, t);
    nb_resp_header(c->req, c->resp, "x-ms-popreceipt", m.pop_receipt);
    nb_resp_header(c->req, c->resp, "x-ms-time-next-visible", t);
}
