/* `nimbus queue …` client commands (see queue_cmd.h). Each subcommand is one
 * row of the command table and one handler that sends requests through
 * cli/client.c and turns the answer into a JSON value; the same value is
 * printed as JSON (--json) or as text. XML responses are read with libxml2
 * only. Nothing here outlives one call of nb_cli_queue_main. */
#include "cli/queue_cmd.h"
#include "cli/client.h"
#include "cli/connstr.h"
#include "core/buf.h"
#include "core/encode.h"
#include "core/mem.h"
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define EXIT_OK 0
#define EXIT_FAIL 1
#define EXIT_USAGE 2

#define MAX_PAIRS 64                  /* metadata pairs on one command line */
#define MAX_BODY (8u * 1024u * 1024u) /* request body we are willing to build */
#define MAX_LIST_PAGES 100000         /* a server that never ends its listing */

/* ---- options: one row each ------------------------------------------- */

enum opt_id {
    O_CONN,
    O_JSON,
    O_HELP,
    O_PREFIX,
    O_INCMETA,
    O_METADATA,
    O_SET,
    O_VIS,
    O_TTL,
    O_NUM,
    O_TEXT,
    O_FAIL_EXIST,
    O_FAIL_NOT_EXIST,
    O_PAGE,
    O_COUNT
};
enum opt_kind { FLAG, VALUE, PAIRS };

static const struct opt {
    const char *name;
    enum opt_kind kind;
} opts[O_COUNT] = {
    [O_CONN] = {"--connection-string", VALUE},
    [O_JSON] = {"--json", FLAG},
    [O_HELP] = {"--help", FLAG},
    [O_PREFIX] = {"--prefix", VALUE},
    [O_INCMETA] = {"--include-metadata", FLAG},
    [O_METADATA] = {"--metadata", PAIRS},
    [O_SET] = {"--set", PAIRS},
    [O_VIS] = {"--visibility-timeout", VALUE},
    [O_TTL] = {"--ttl", VALUE},
    [O_NUM] = {"--num", VALUE},
    [O_TEXT] = {"--text", VALUE},
    [O_FAIL_EXIST] = {"--fail-on-exist", FLAG},
    [O_FAIL_NOT_EXIST] = {"--fail-not-exist", FLAG},
    [O_PAGE] = {"--page-size", VALUE},
};

#define BIT(o) (1u << (o))
#define COMMON (BIT(O_CONN) | BIT(O_JSON) | BIT(O_HELP))

struct args {
    const char *pos[3];
    size_t npos;
    bool given[O_COUNT];
    const char *value[O_COUNT];
    const char *pairs[MAX_PAIRS]; /* --metadata or --set, "k=v" */
    size_t npairs;
    long vis, ttl, num, page;
};

struct ctx {
    struct args *a;
    struct nb_client client;
    bool json;
};

struct cmd {
    const char *name;
    int (*run)(struct ctx *x, json_t **out);
    void (*human)(const struct ctx *x, json_t *result); /* NULL: generic */
    size_t min_pos, max_pos;
    unsigned opts;
    const char *synopsis;
    const char *help;
};

static const struct cmd *find_cmd(const char *name);

/* ---- small helpers --------------------------------------------------- */

static int usage_error(const struct cmd *c, const char *fmt, const char *arg)
{
    fputs(c ? "nimbus queue " : "nimbus queue: ", stderr);
    if (c) fprintf(stderr, "%s: ", c->name);
    fprintf(stderr, fmt, arg ? arg : "");
    fputc('\n', stderr);
    if (c) fprintf(stderr, "usage: nimbus queue %s\n", c->synopsis);
    fputs("try 'nimbus queue --help'\n", stderr);
    return EXIT_USAGE;
}

static bool parse_long(const char *s, long *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < INT_MIN || v > INT_MAX) return false;
    *out = v;
    return true;
}

/* Metadata names follow C# identifier rules (Azure's rule for queues). */
static bool valid_meta_name(const char *s, size_t n)
{
    if (!n || !(isalpha((unsigned char)s[0]) || s[0] == '_')) return false;
    for (size_t i = 1; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_')) return false;
    return true;
}

static bool valid_header_value(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 && *s != '\t') return false;
    return true;
}

/* RFC 1123 from the wire to ISO 8601 as az prints it; unparseable values
 * are kept as they came. */
static json_t *time_json(const char *rfc)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *end = strptime(rfc, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    char buf[64];
    if (!end || *end || !strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S+00:00", &tm))
        return json_string(rfc);
    return json_string(buf);
}

/* A JSON string from arbitrary bytes; libxml2 and the headers give us
 * UTF-8, but a broken server must not make us print invalid JSON. */
static json_t *str_json(const char *s)
{
    json_t *j = json_string(s);
    return j ? j : json_string("");
}

static enum nb_err queue_path(struct nb_buf *b, const char *queue, const char *tail, const char *id)
{
    enum nb_err rc = nb_buf_addc(b, '/');
    if (!rc) rc = nb_pct_encode(b, queue, strlen(queue));
    if (!rc && tail) rc = nb_buf_adds(b, tail);
    if (!rc && id) rc = nb_buf_addc(b, '/');
    if (!rc && id) rc = nb_pct_encode(b, id, strlen(id));
    return rc;
}

/* ---- talking to the service ------------------------------------------ */

struct call {
    const char *method;
    const char *path;
    struct nb_kv query[8];
    size_t nquery;
    struct nb_kv *headers;
    size_t nheaders;
    const char *body;
    size_t body_len;
};

static void add_query(struct call *c, const char *name, const char *value)
{
    c->query[c->nquery++] = (struct nb_kv){name, value, strlen(value)};
}

/* Send; on a transport failure print it and return false. */
static bool send_call(struct ctx *x, const struct call *c, struct nb_client_resp *resp)
{
    struct nb_client_req req = {
        .method = c->method,
        .path = c->path,
        .query = c->query,
        .nquery = c->nquery,
        .headers = c->headers,
        .nheaders = c->nheaders,
        .content_type = c->body ? "application/xml" : NULL,
        .body = c->body,
        .body_len = c->body_len,
    };
    enum nb_err rc = nb_client_send(&x->client, &req, resp);
    if (rc == NB_OK) return true;
    const char *what = x->client.err[0] ? x->client.err : nb_err_str(rc);
    if (x->json) {
        json_t *e = json_pack("{s:{s:s,s:s,s:s}}", "error", "code", "ConnectionError", "message",
                              what, "endpoint", x->client.endpoint);
        if (e) {
            json_dumpf(e, stderr, JSON_INDENT(2));
            fputc('\n', stderr);
        }
        json_decref(e);
    } else {
        fprintf(stderr, "error: cannot complete the request to %s: %s\n", x->client.endpoint, what);
    }
    return false;
}

static int print_error(const struct ctx *x, long status, const char *code, const char *message)
{
    if (x->json) {
        json_t *e = json_pack("{s:{s:I,s:o,s:o}}", "error", "status", (json_int_t)status, "code",
                              str_json(code), "message", str_json(message));
        if (e) {
            json_dumpf(e, stderr, JSON_INDENT(2));
            fputc('\n', stderr);
        }
        json_decref(e);
    } else {
        fprintf(stderr, "error: %s: %s\n", code, message);
    }
    return EXIT_FAIL;
}

static int print_service_error(const struct ctx *x, const struct nb_client_resp *resp)
{
    char *code = NULL, *message = NULL;
    nb_client_resp_error(resp, &code, &message);
    int ret = print_error(x, resp->status, code, message);
    free(code);
    free(message);
    return ret;
}

static bool ok_status(long s)
{
    return s >= 200 && s < 300;
}

/* Build x-ms-meta-* headers from "k=v" pairs (checked by the parser). The
 * returned array and its strings are freed with free_headers. */
static struct nb_kv *meta_headers(const struct args *a)
{
    struct nb_kv *h = nb_calloc(a->npairs ? a->npairs : 1, sizeof(*h));
    for (size_t i = 0; i < a->npairs; i++) {
        const char *eq = strchr(a->pairs[i], '=');
        char *name = nb_asprintf("x-ms-meta-%.*s", (int)(eq - a->pairs[i]), a->pairs[i]);
        h[i] = (struct nb_kv){name, nb_strdup(eq + 1), strlen(eq + 1)};
    }
    return h;
}

static void free_headers(struct nb_kv *h, size_t n)
{
    for (size_t i = 0; h && i < n; i++) {
        free((char *)h[i].name);
        free((char *)h[i].value);
    }
    free(h);
}

static json_t *metadata_from_headers(const struct nb_client_resp *resp)
{
    json_t *m = json_object();
    for (size_t i = 0; i < resp->nheaders; i++) {
        const char *n = resp->headers[i].name;
        if (strncasecmp(n, "x-ms-meta-", 10) == 0 && n[10])
            json_object_set_new(m, n + 10, str_json(resp->headers[i].value));
    }
    return m;
}

static json_t *metadata_from_pairs(const struct args *a)
{
    json_t *m = json_object();
    for (size_t i = 0; i < a->npairs; i++) {
        const char *eq = strchr(a->pairs[i], '=');
        char *name = nb_strndup(a->pairs[i], (size_t)(eq - a->pairs[i]));
        json_object_set_new(m, name, str_json(eq + 1));
        free(name);
    }
    return m;
}

/* ---- XML responses --------------------------------------------------- */

static xmlDoc *read_xml(const struct nb_client_resp *resp, const char *root_name, xmlNode **root)
{
    if (!resp->body.len || resp->body.len > (size_t)INT_MAX) return NULL;
    xmlDoc *doc = xmlReadMemory(resp->body.data, (int)resp->body.len, NULL, NULL,
                                XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!doc) return NULL;
    *root = xmlDocGetRootElement(doc);
    if (!*root || strcmp((const char *)(*root)->name, root_name) != 0) {
        xmlFreeDoc(doc);
        return NULL;
    }
    return doc;
}

static bool is_elem(const xmlNode *n, const char *name)
{
    return n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0;
}

static xmlNode *child(xmlNode *parent, const char *name)
{
    for (xmlNode *n = parent->children; n; n = n->next)
        if (is_elem(n, name)) return n;
    return NULL;
}

/* Element text as a heap string ("" for an empty element). */
static char *text_of(xmlNode *n)
{
    xmlChar *t = xmlNodeGetContent(n);
    char *s = nb_strdup(t ? (const char *)t : "");
    xmlFree(t);
    return s;
}

static int bad_response(const char *what)
{
    fprintf(stderr, "error: unexpected response from the service: %s\n", what);
    return EXIT_FAIL;
}

/* Message fields in output order: XML element, JSON key, how to convert. */
enum ftype { F_STR, F_TIME, F_INT };
static const struct {
    const char *xml, *key;
    enum ftype type;
} msg_fields[] = {
    {"MessageId", "id", F_STR},
    {"MessageText", "content", F_STR},
    {"DequeueCount", "dequeueCount", F_INT},
    {"InsertionTime", "insertionTime", F_TIME},
    {"ExpirationTime", "expirationTime", F_TIME},
    {"TimeNextVisible", "timeNextVisible", F_TIME},
    {"PopReceipt", "popReceipt", F_STR},
};

/* QueueMessagesList → array of message objects; NULL if malformed. */
static json_t *parse_messages(const struct nb_client_resp *resp)
{
    xmlNode *root = NULL;
    xmlDoc *doc = read_xml(resp, "QueueMessagesList", &root);
    if (!doc) return NULL;
    json_t *list = json_array();
    for (xmlNode *m = root->children; m; m = m->next) {
        if (!is_elem(m, "QueueMessage")) continue;
        json_t *o = json_object();
        for (size_t i = 0; i < sizeof(msg_fields) / sizeof(msg_fields[0]); i++) {
            xmlNode *f = child(m, msg_fields[i].xml);
            if (!f) continue;
            char *t = text_of(f);
            json_t *v = NULL;
            long n;
            switch (msg_fields[i].type) {
            case F_STR: v = str_json(t); break;
            case F_TIME: v = time_json(t); break;
            case F_INT: v = parse_long(t, &n) ? json_integer(n) : str_json(t); break;
            }
            json_object_set_new(o, msg_fields[i].key, v);
            free(t);
        }
        json_array_append_new(list, o);
    }
    xmlFreeDoc(doc);
    return list;
}

/* ---- output ---------------------------------------------------------- */

static void print_scalar(json_t *v)
{
    if (json_is_string(v))
        fputs(json_string_value(v), stdout);
    else if (json_is_integer(v))
        printf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else if (json_is_true(v))
        fputs("true", stdout);
    else if (json_is_false(v))
        fputs("false", stdout);
    else if (json_is_null(v))
        fputs("", stdout);
}

/* "key: value" lines; a nested object prints as indented "k=v" lines. */
static void print_object(json_t *o)
{
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        if (json_is_object(v)) {
            printf("%s:\n", k);
            const char *mk;
            json_t *mv;
            json_object_foreach(v, mk, mv)
            {
                printf("  %s=", mk);
                print_scalar(mv);
                putchar('\n');
            }
        } else {
            printf("%s: ", k);
            print_scalar(v);
            putchar('\n');
        }
    }
}

static void print_generic(const struct ctx *x, json_t *r)
{
    (void)x;
    if (json_is_array(r)) {
        size_t i;
        json_t *v;
        json_array_foreach(r, i, v)
        {
            if (i) putchar('\n');
            print_object(v);
        }
    } else if (json_is_object(r)) {
        print_object(r);
    }
}

static void emit(const struct ctx *x, const struct cmd *c, json_t *r)
{
    if (!r) return;
    if (x->json) {
        json_dumpf(r, stdout, JSON_INDENT(2));
        putchar('\n');
    } else if (c->human) {
        c->human(x, r);
    } else {
        print_generic(x, r);
    }
    fflush(stdout);
}

/* ---- subcommands ----------------------------------------------------- */

static int cmd_create(struct ctx *x, json_t **out)
{
    int ret = EXIT_FAIL;
    struct args *a = x->a;
    struct nb_buf path;
    struct nb_client_resp resp;
    struct nb_kv *h = meta_headers(a);
    nb_buf_init(&path, 4096);
    nb_client_resp_init(&resp);
    if (queue_path(&path, a->pos[0], NULL, NULL)) goto cleanup;
    struct call c = {
        .method = "PUT", .path = nb_buf_cstr(&path), .headers = h, .nheaders = a->npairs};
    if (!send_call(x, &c, &resp)) goto cleanup;
    bool created = resp.status == 201;
    if (!ok_status(resp.status)) {
        char *code = NULL, *msg = NULL;
        nb_client_resp_error(&resp, &code, &msg);
        bool exists = resp.status == 409 && strcmp(code, "QueueAlreadyExists") == 0;
        free(code);
        free(msg);
        if (!exists || a->given[O_FAIL_EXIST]) {
            ret = print_service_error(x, &resp);
            goto cleanup;
        }
    } else if (!created && a->given[O_FAIL_EXIST]) {
        /* 204: it exists with the same metadata; there is no error body. */
        ret = print_error(x, resp.status, "QueueAlreadyExists",
                          "The specified queue already exists.");
        goto cleanup;
    }
    *out = json_pack("{s:o,s:b}", "name", str_json(a->pos[0]), "created", created);
    ret = EXIT_OK;
cleanup:
    free_headers(h, a->npairs);
    nb_buf_cleanup(&path);
    nb_client_resp_cleanup(&resp);
    return ret;
}

static void human_create(const struct ctx *x, json_t *r)
{
    (void)x;
    const char *name = json_string_value(json_object_get(r, "name"));
    if (json_is_true(json_object_get(r, "created")))
        printf("created queue %s\n", name);
    else
        printf("queue %s already exists\n", name);
}

static int cmd_delete(struct ctx *x, json_t **out)
{
    int ret = EXIT_FAIL;
    struct args *a = x->a;
    struct nb_buf path;
    struct nb_client_resp resp;
    nb_buf_init(&path, 4096);
    nb_client_resp_init(&resp);
    if (queue_path(&path, a->pos[0], NULL, NULL)) goto cleanup;
    struct call c = {.method = "DELETE", .path = nb_buf_cstr(&path)};
    if (!send_call(x, &c, &resp)) goto cleanup;
    bool deleted = true;
    if (!ok_status(resp.status)) {
        char *code = NULL, *msg = NULL;
        nb_client_resp_error(&resp, &code, &msg);
        bool missing = resp.status == 404 && strcmp(code, "QueueNotFound") == 0;
        free(code);
        free(msg);
        if (!missing || a->given[O_FAIL_NOT_EXIST]) {
            ret = print_service_error(x, &resp);
            goto cleanup;
        }
        deleted = false;
    }
    *out = json_pack("{s:o,s:b}", "name", str_json(a->pos[0]), "deleted", deleted);
    ret = EXIT_OK;
cleanup:
    nb_buf_cleanup(&path);
    nb_client_resp_cleanup(&resp);
    return ret;
}

static void human_delete(const struct ctx *x, json_t *r)
{
    (void)x;
    const char *name = json_string_value(json_object_get(r, "name"));
    if (json_is_true(json_object_get(r, "deleted")))
        printf("deleted queue %s\n", name);
    else
        printf("queue %s does not exist\n", name);
}

/* One page of EnumerationResults: append queues to `list`, return the next
 * marker (heap, "" when done) or NULL when the document is malformed. */
static char *parse_list_page(const struct nb_client_resp *resp, json_t *list, bool with_meta)
{
    xmlNode *root = NULL;
    xmlDoc *doc = read_xml(resp, "EnumerationResults", &root);
    if (!doc) return NULL;
    xmlNode *queues = child(root, "Queues");
    for (xmlNode *q = queues ? queues->children : NULL; q; q = q->next) {
        if (!is_elem(q, "Queue")) continue;
        xmlNode *nn = child(q, "Name");
        if (!nn) continue;
        char *name = text_of(nn);
        json_t *o = json_pack("{s:o}", "name", str_json(name));
        free(name);
        if (with_meta) {
            json_t *m = json_object();
            xmlNode *md = child(q, "Metadata");
            for (xmlNode *e = md ? md->children : NULL; e; e = e->next) {
                if (e->type != XML_ELEMENT_NODE) continue;
                char *v = text_of(e);
                json_object_set_new(m, (const char *)e->name, str_json(v));
                free(v);
            }
            json_object_set_new(o, "metadata", m);
        }
        json_array_append_new(list, o);
    }
    xmlNode *nm = child(root, "NextMarker");
    char *next = nm ? text_of(nm) : nb_strdup("");
    xmlFreeDoc(doc);
    return next;
}

static int cmd_list(struct ctx *x, json_t **out)
{
    int ret = EXIT_FAIL;
    struct args *a = x->a;
    struct nb_client_resp resp;
    json_t *list = json_array();
    char *marker = NULL;
    nb_client_resp_init(&resp);
    bool with_meta = a->given[O_INCMETA];
    char page_size[24];
    snprintf(page_size, sizeof(page_size), "%ld", a->page);
    for (size_t page = 0;; page++) {
        if (page == MAX_LIST_PAGES) {
            ret = bad_response("the queue listing does not end");
            goto cleanup;
        }
        struct call c = {.method = "GET", .path = "/"};
        add_query(&c, "comp", "list");
        if (a->given[O_PREFIX]) add_query(&c, "prefix", a->value[O_PREFIX]);
        if (marker) add_query(&c, "marker", marker);
        if (with_meta) add_query(&c, "include", "metadata");
        if (a->given[O_PAGE]) add_query(&c, "maxresults", page_size);
        if (!send_call(x, &c, &resp)) goto cleanup;
        if (!ok_status(resp.status)) {
            ret = print_service_error(x, &resp);
            goto cleanup;
        }
        char *next = parse_list_page(&resp, list, with_meta);
        if (!next) {
            ret = bad_response("the queue listing is not an EnumerationResults document");
            goto cleanup;
        }
        if (!*next || (marker && strcmp(next, marker) == 0)) {
            bool stuck = *next != '\0';
            free(next);
            if (stuck) {
                ret = bad_response("the queue listing repeats its continuation marker");
                goto cleanup;
            }
            break;
        }
        free(marker);
        marker = next;
    }
    *out = list;
    list = NULL;
    ret = EXIT_OK;
cleanup:
    json_decref(list);
    free(marker);
    nb_client_resp_cleanup(&resp);
    return ret;
}

static void human_list(const struct ctx *x, json_t *r)
{
    (void)x;
    size_t i;
    json_t *q;
    json_array_foreach(r, i, q)
    {
        fputs(json_string_value(json_object_get(q, "name")), stdout);
        json_t *m = json_object_get(q, "metadata");
        const char *k;
        json_t *v;
        const char *sep = "\t";
        json_object_foreach(m, k, v)
        {
            printf("%s%s=%s", sep, k, json_string_value(v));
            sep = " ";
        }
        putchar('\n');
    }
}

static int cmd_put(struct ctx *x, json_t **out)
{
    int ret = EXIT_FAIL;
    struct args *a = x->a;
    struct nb_buf path, body;
    struct nb_client_resp resp;
    char vis[24], ttl[24];
    json_t *list = NULL;
    nb_buf_init(&path, 4096);
    nb_buf_init(&body, MAX_BODY);
    nb_client_resp_init(&resp);
    const char *text = a->pos[1];
    if (queue_path(&path, a->pos[0], "/messages", NULL)) goto cleanup;
    /* The SDK's body, byte for byte (single-quoted declaration). */
    enum nb_err rc = nb_buf_adds(&body, "<?xml version='1.0' encoding='utf-8'?>\n"
                                        "<QueueMessage><MessageText>");
    if (!rc) rc = nb_buf_add_xml(&body, text, strlen(text));
    if (!rc) rc = nb_buf_adds(&body, "</MessageText></QueueMessage>");
    if (rc) {
        ret = usage_error(find_cmd("put"), "%s", "message text too large");
        goto cleanup;
    }
    struct call c = {
        .method = "POST", .path = nb_buf_cstr(&path), .body = body.data, .body_len = body.len};
    if (a->given[O_VIS]) {
        snprintf(vis, sizeof(vis), "%ld", a->vis);
        add_query(&c, "visibilitytimeout", vis);
    }
    if (a->given[O_TTL]) {
        snprintf(ttl, sizeof(ttl), "%ld", a->ttl);
        add_query(&c, "messagettl", ttl);
    }
    if (!send_call(x, &c, &resp)) goto cleanup;
    if (!ok_status(resp.status)) {
        ret = print_service_error(x, &resp);
        goto cleanup;
    }
    list = parse_messages(&resp);
    json_t *m = json_array_get(list, 0);
    if (!m) {
        ret = bad_response("put message returned no QueueMessage");
        goto cleanup;
    }
    /* The service does not echo the text; az shows what was sent. */
    json_t *o = json_object();
    json_object_set(o, "id", json_object_get(m, "id"));
    json_object_set_new(o, "content", str_json(text));
    const char *k;
    json_t *v;
    json_object_foreach(m, k, v) if (strcmp(k, "id") != 0) json_object_set(o, k, v);
    *out = o;
    ret = EXIT_OK;
cleanup:
    json_decref(list);
    nb_buf_cleanup(&path);
    nb_buf_cleanup(&body);
    nb_client_resp_cleanup(&resp);
    return ret;
}

static int get_or_peek(struct ctx *x, json_t **out, bool peek)
{
    int ret = EXIT_FAIL;
    struct args *a = x->a;
    struct nb_buf path;
    struct nb_client_resp resp;
    char num[24], vis[24];
    nb_buf_init(&path, 4096);
    nb_client_resp_init(&resp);
    if (queue_path(&path, a->pos[0], "/messages", NULL)) goto cleanup;
    struct call c = {.method = "GET", .path = nb_buf_cstr(&path)};
    if (peek) add_query(&c, "peekonly", "true");
    snprintf(num, sizeof(num), "%ld", a->given[O_NUM] ? a->num : 1L);
    add_query(&c, "numofmessages", num);
    if (!peek && a->given[O_VIS]) {
        snprintf(vis, sizeof(vis), "%ld", a->vis);
        add_query(&c, "visibilitytimeout", vis);
    }
    if (!send_call(x, &c, &resp)) goto cleanup;
    if (!ok_status(resp.status)) {
        ret = print_service_error(x, &resp);
        goto cleanup;
    }
    *out = parse_messages(&resp);
    if (!*out) {
        ret = bad_response("not a QueueMessagesList document");
        goto cleanup;
    }
    ret = EXIT_OK;
cleanup:
    nb_buf_cleanup(&path);
    nb_client_resp_cleanup(&resp);
    return ret;
}

static int cmd_get(struct ctx *x, json_t **out)
{
    return get_or_peek(x, out, false);
}

static int cmd_peek(struct ctx *x, json_t **out)
{
    return get_or_peek(x, out, true);
}

static int cmd_update(struct ctx *x, json_t **out)
{
    int ret = EXIT_FAIL;
    struct args *a = x->a;
    struct nb_buf path, body;
    struct nb_client_resp resp;
    char vis[24];
    nb_buf_init(&path, 4096);
    nb_buf_init(&body, MAX_BODY);
    nb_client_resp_init(&resp);
    if (queue_path(&path, a->pos[0], "/messages", a->pos[1])) goto cleanup;
    struct call c = {.method = "PUT", .path = nb_buf_cstr(&path)};
    if (a->given[O_TEXT]) {
        const char *text = a->value[O_TEXT];
        enum nb_err rc = nb_buf_adds(&body, "<?xml version='1.0' encoding='utf-8'?>\n"
                                            "<QueueMessage><MessageText>");
        if (!rc) rc = nb_buf_add_xml(&body, text, strlen(text));
        if (!rc) rc = nb_buf_adds(&body, "</MessageText></QueueMessage>");
        if (rc) {
            ret = usage_error(find_cmd("update"), "%s", "message text too large");
            goto cleanup;
        }
        c.body = body.data;
        c.body_len = body.len;
    }
    add_query(&c, "popreceipt", a->pos[2]);
    /* Required by the service; az defaults it to 0 (visible at once). */
    snprintf(vis, sizeof(vis), "%ld", a->given[O_VIS] ? a->vis : 0L);
    add_query(&c, "visibilitytimeout", vis);
    if (!send_call(x, &c, &resp)) goto cleanup;
    if (!ok_status(resp.status)) {
        ret = print_service_error(x, &resp);
        goto cleanup;
    }
    const char *pr = nb_client_resp_header(&resp, "x-ms-popreceipt");
    const char *tnv = nb_client_resp_header(&resp, "x-ms-time-next-visible");
    if (!pr) {
        ret = bad_response("update message returned no x-ms-popreceipt");
        goto cleanup;
    }
    json_t *o = json_pack("{s:o}", "id", str_json(a->pos[1]));
    if (a->given[O_TEXT]) json_object_set_new(o, "content", str_json(a->value[O_TEXT]));
    json_object_set_new(o, "popReceipt", str_json(pr));
    if (tnv) json_object_set_new(o, "timeNextVisible", time_json(tnv));
    *out = o;
    ret = EXIT_OK;
cleanup:
    nb_buf_cleanup(&path);
    nb_buf_cleanup(&body);
    nb_client_resp_cleanup(&resp);
    return ret;
}

static int cmd_delete_message(struct ctx *x, json_t **out)
{
    int ret = EXIT_FAIL;
    struct args *a = x->a;
    struct nb_buf path;
    struct nb_client_resp resp;
    nb_buf_init(&path, 4096);
    nb_client_resp_init(&resp);
    if (queue_path(&path, a->pos[0], "/messages", a->pos[1])) goto cleanup;
    struct call c = {.method = "DELETE", .path = nb_buf_cstr(&path)};
    add_query(&c, "popreceipt", a->pos[2]);
    if (!send_call(x, &c, &resp)) goto cleanup;
    if (!ok_status(resp.status)) {
        ret = print_service_error(x, &resp);
        goto cleanup;
    }
    *out = json_pack("{s:o,s:b}", "id", str_json(a->pos[1]), "deleted", 1);
    ret = EXIT_OK;
cleanup:
    nb_buf_cleanup(&path);
    nb_client_resp_cleanup(&resp);
    return ret;
}

static void human_delete_message(const struct ctx *x, json_t *r)
{
    (void)x;
    printf("deleted message %s\n", json_string_value(json_object_get(r, "id")));
}

static int cmd_clear(struct ctx *x, json_t **out)
{
    int ret = EXIT_FAIL;
    struct args *a = x->a;
    struct nb_buf path;
    struct nb_client_resp resp;
    nb_buf_init(&path, 4096);
    nb_client_resp_init(&resp);
    if (queue_path(&path, a->pos[0], "/messages", NULL)) goto cleanup;
    struct call c = {.method = "DELETE", .path = nb_buf_cstr(&path)};
    if (!send_call(x, &c, &resp)) goto cleanup;
    if (!ok_status(resp.status)) {
        ret = print_service_error(x, &resp);
        goto cleanup;
    }
    *out = json_pack("{s:o,s:b}", "name", str_json(a->pos[0]), "cleared", 1);
    ret = EXIT_OK;
cleanup:
    nb_buf_cleanup(&path);
    nb_client_resp_cleanup(&resp);
    return ret;
}

static void human_clear(const struct ctx *x, json_t *r)
{
    (void)x;
    printf("cleared queue %s\n", json_string_value(json_object_get(r, "name")));
}

static int cmd_metadata(struct ctx *x, json_t **out)
{
    int ret = EXIT_FAIL;
    struct args *a = x->a;
    struct nb_buf path;
    struct nb_client_resp resp;
    struct nb_kv *h = NULL;
    bool set = a->given[O_SET];
    nb_buf_init(&path, 4096);
    nb_client_resp_init(&resp);
    if (queue_path(&path, a->pos[0], NULL, NULL)) goto cleanup;
    struct call c = {.method = set ? "PUT" : "GET", .path = nb_buf_cstr(&path)};
    add_query(&c, "comp", "metadata");
    if (set) {
        h = meta_headers(a);
        c.headers = h;
        c.nheaders = a->npairs;
    }
    if (!send_call(x, &c, &resp)) goto cleanup;
    if (!ok_status(resp.status)) {
        ret = print_service_error(x, &resp);
        goto cleanup;
    }
    json_t *o = json_pack("{s:o}", "name", str_json(a->pos[0]));
    if (set) {
        json_object_set_new(o, "metadata", metadata_from_pairs(a));
    } else {
        json_object_set_new(o, "metadata", metadata_from_headers(&resp));
        const char *count = nb_client_resp_header(&resp, "x-ms-approximate-messages-count");
        long n;
        if (count && parse_long(count, &n))
            json_object_set_new(o, "approximateMessageCount", json_integer(n));
    }
    *out = o;
    ret = EXIT_OK;
cleanup:
    free_headers(h, a->npairs);
    nb_buf_cleanup(&path);
    nb_client_resp_cleanup(&resp);
    return ret;
}

/* ---- the command table ----------------------------------------------- */

static const struct cmd cmds[] = {
    {"create", cmd_create, human_create, 1, 1, COMMON | BIT(O_METADATA) | BIT(O_FAIL_EXIST),
     "create NAME [--metadata k=v ...] [--fail-on-exist]",
     "Create a queue. If it exists already this reports created=false (exit 0)\n"
     "unless --fail-on-exist is given."},
    {"delete", cmd_delete, human_delete, 1, 1, COMMON | BIT(O_FAIL_NOT_EXIST),
     "delete NAME [--fail-not-exist]",
     "Delete a queue. A missing queue reports deleted=false (exit 0) unless\n"
     "--fail-not-exist is given."},
    {"list", cmd_list, human_list, 0, 0, COMMON | BIT(O_PREFIX) | BIT(O_INCMETA) | BIT(O_PAGE),
     "list [--prefix P] [--include-metadata] [--page-size N]",
     "List queues, optionally only those whose name starts with P. Every page is\n"
     "fetched; --page-size asks the service for at most N (1..5000) per page."},
    {"put", cmd_put, NULL, 2, 2, COMMON | BIT(O_VIS) | BIT(O_TTL),
     "put NAME TEXT [--visibility-timeout S] [--ttl S]",
     "Add a message. TEXT is sent as is (no base64). --visibility-timeout delays\n"
     "it (0..604800 s); --ttl is its time to live in seconds, -1 for never."},
    {"get", cmd_get, NULL, 1, 1, COMMON | BIT(O_NUM) | BIT(O_VIS),
     "get NAME [--num N] [--visibility-timeout S]",
     "Receive up to N (1..32, default 1) messages and hide them for S seconds\n"
     "(default 30). Each comes with the pop receipt that update and\n"
     "delete-message need."},
    {"peek", cmd_peek, NULL, 1, 1, COMMON | BIT(O_NUM), "peek NAME [--num N]",
     "Show up to N (1..32, default 1) visible messages without hiding them."},
    {"update", cmd_update, NULL, 3, 3, COMMON | BIT(O_TEXT) | BIT(O_VIS),
     "update NAME ID POPRECEIPT [--text T] [--visibility-timeout S]",
     "Change a message's visibility timeout (default 0) and, with --text, its text.\n"
     "Prints the new pop receipt."},
    {"delete-message", cmd_delete_message, human_delete_message, 3, 3, COMMON,
     "delete-message NAME ID POPRECEIPT", "Delete one message."},
    {"clear", cmd_clear, human_clear, 1, 1, COMMON, "clear NAME",
     "Delete every message in a queue."},
    {"metadata", cmd_metadata, NULL, 1, 1, COMMON | BIT(O_SET), "metadata NAME [--set k=v ...]",
     "Show a queue's metadata and approximate message count, or with --set\n"
     "replace all of its metadata (--set alone clears it)."},
};

static const struct cmd *find_cmd(const char *name)
{
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        if (strcmp(cmds[i].name, name) == 0) return &cmds[i];
    return NULL;
}

static const char common_help[] =
    "common options:\n"
    "  --connection-string CS  storage connection string; without it\n"
    "                          $" NB_CONNSTR_ENV ",\n"
    "                          else the local Nimbus: devstoreaccount1 at\n"
    "                          " NB_LOCAL_QUEUE_ENDPOINT "\n"
    "  --json                  print the result as JSON\n"
    "  -h, --help              show help\n"
    "exit status: 0 success, 1 service or connection error, 2 usage error\n";

static void print_main_help(FILE *f)
{
    fputs("usage: nimbus queue COMMAND [options]\n\n"
          "Queue storage client for a running Nimbus (or any Azure Storage queue\n"
          "endpoint), modelled on 'az storage queue' and 'az storage message'.\n\n"
          "commands:\n",
          f);
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        fprintf(f, "  %s\n", cmds[i].synopsis);
    fputc('\n', f);
    fputs(common_help, f);
    fputs("\n'nimbus queue COMMAND --help' describes one command.\n", f);
}

static void print_cmd_help(const struct cmd *c)
{
    printf("usage: nimbus queue %s\n\n%s\n\n%s", c->synopsis, c->help, common_help);
}

/* ---- argument parsing ------------------------------------------------ */

static bool is_option(const char *s)
{
    return s[0] == '-' && s[1] == '-' && s[2];
}

static int take_pair(const struct cmd *c, struct args *a, const char *kv)
{
    const char *eq = strchr(kv, '=');
    if (!eq || !valid_meta_name(kv, (size_t)(eq - kv)))
        return usage_error(c, "metadata must be NAME=VALUE with NAME a C identifier: '%s'", kv);
    if (!valid_header_value(eq + 1))
        return usage_error(c, "metadata value must not contain control characters: '%s'", kv);
    for (size_t i = 0; i < a->npairs; i++) {
        const char *o = a->pairs[i];
        size_t on = (size_t)(strchr(o, '=') - o);
        if (on == (size_t)(eq - kv) && strncasecmp(o, kv, on) == 0)
            return usage_error(c, "metadata name given twice: '%s'", kv);
    }
    if (a->npairs == MAX_PAIRS) return usage_error(c, "too many metadata pairs%s", "");
    a->pairs[a->npairs++] = kv;
    return EXIT_OK;
}

/* Parse argv[2..] for command c. Returns EXIT_OK, or an exit status after
 * printing the usage error. --help is recorded, not acted on. */
static int parse_args(const struct cmd *c, int argc, char **argv, struct args *a)
{
    bool opts_done = false;
    for (int i = 2; i < argc; i++) {
        const char *arg = argv[i];
        if (!opts_done && strcmp(arg, "--") == 0) {
            opts_done = true;
            continue;
        }
        if (!opts_done && strcmp(arg, "-h") == 0) arg = "--help";
        if (opts_done || !is_option(arg)) {
            if (a->npos == c->max_pos) return usage_error(c, "unexpected argument '%s'", arg);
            a->pos[a->npos++] = arg;
            continue;
        }
        const char *eqv = strchr(arg, '=');
        size_t nlen = eqv ? (size_t)(eqv - arg) : strlen(arg);
        int id = -1;
        for (int o = 0; o < O_COUNT; o++)
            if (strlen(opts[o].name) == nlen && strncmp(opts[o].name, arg, nlen) == 0) id = o;
        if (id < 0 || !(c->opts & BIT(id))) return usage_error(c, "unknown option '%s'", arg);
        if (a->given[id] && opts[id].kind == VALUE)
            return usage_error(c, "option given twice: '%s'", arg);
        a->given[id] = true;
        switch (opts[id].kind) {
        case FLAG:
            if (eqv) return usage_error(c, "option takes no value: '%s'", arg);
            break;
        case VALUE:
            if (eqv) {
                a->value[id] = eqv + 1;
            } else {
                if (i + 1 >= argc) return usage_error(c, "option '%s' needs a value", arg);
                a->value[id] = argv[++i];
            }
            break;
        case PAIRS: {
            if (eqv) {
                int r = take_pair(c, a, eqv + 1);
                if (r) return r;
            }
            /* az style: the pairs follow as separate words. */
            while (i + 1 < argc && !is_option(argv[i + 1]) && strchr(argv[i + 1], '=')) {
                int r = take_pair(c, a, argv[++i]);
                if (r) return r;
            }
            break;
        }
        }
    }
    if (a->given[O_HELP]) return EXIT_OK;
    if (a->npos < c->min_pos) {
        static const char *const names[3][3] = {
            {"NAME"}, {"NAME", "TEXT"}, {"NAME", "ID", "POPRECEIPT"}};
        return usage_error(c, "missing %s", names[c->min_pos - 1][a->npos]);
    }
    for (size_t i = 0; i < a->npos; i++)
        if (!*a->pos[i] && !(strcmp(c->name, "put") == 0 && i == 1))
            return usage_error(c, "empty argument%s", "");
    static const struct {
        enum opt_id id;
        long min, max;
        const char *what;
    } nums[] = {
        {O_VIS, 0, INT_MAX, "--visibility-timeout must be a whole number of seconds: '%s'"},
        {O_TTL, -1, INT_MAX, "--ttl must be a whole number of seconds or -1: '%s'"},
        {O_NUM, 1, INT_MAX, "--num must be a positive whole number: '%s'"},
        {O_PAGE, 1, 5000, "--page-size must be a whole number from 1 to 5000: '%s'"},
    };
    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
        enum opt_id id = nums[i].id;
        if (!a->given[id]) continue;
        long v;
        if (!parse_long(a->value[id], &v) || v < nums[i].min || v > nums[i].max)
            return usage_error(c, nums[i].what, a->value[id]);
        *(id == O_VIS ? &a->vis : id == O_TTL ? &a->ttl : id == O_NUM ? &a->num : &a->page) = v;
    }
    return EXIT_OK;
}

int nb_cli_queue_main(int argc, char **argv)
{
    int ret = EXIT_USAGE;
    struct args a;
    struct ctx x;
    struct nb_connstr cs;
    json_t *result = NULL;
    bool client_up = false;
    memset(&a, 0, sizeof(a));
    memset(&x, 0, sizeof(x));
    nb_connstr_init(&cs);

    if (argc < 2) {
        print_main_help(stderr);
        goto cleanup;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        print_main_help(stdout);
        ret = EXIT_OK;
        goto cleanup;
    }
    const struct cmd *c = find_cmd(argv[1]);
    if (!c) {
        ret = usage_error(NULL, "unknown command '%s'", argv[1]);
        goto cleanup;
    }
    ret = parse_args(c, argc, argv, &a);
    if (ret) goto cleanup;
    if (a.given[O_HELP]) {
        print_cmd_help(c);
        ret = EXIT_OK;
        goto cleanup;
    }

    const char *why = NULL;
    if (nb_connstr_resolve(a.given[O_CONN] ? a.value[O_CONN] : NULL, getenv(NB_CONNSTR_ENV), &cs,
                           &why)) {
        fprintf(stderr, "error: %s: %s\n", a.given[O_CONN] ? "--connection-string" : NB_CONNSTR_ENV,
                why ? why : "invalid connection string");
        ret = EXIT_USAGE;
        goto cleanup;
    }
    if (nb_client_init(&x.client, &cs, NB_STORAGE_QUEUE)) {
        fprintf(stderr, "error: %s\n", x.client.err);
        ret = EXIT_USAGE;
        goto cleanup;
    }
    client_up = true;
    x.a = &a;
    x.json = a.given[O_JSON];
    ret = c->run(&x, &result);
    if (ret == EXIT_OK) emit(&x, c, result);

cleanup:
    json_decref(result);
    if (client_up) nb_client_cleanup(&x.client);
    nb_connstr_cleanup(&cs);
    return ret;
}
