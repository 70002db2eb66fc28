/* The signed storage HTTP client of the client commands (see client.h).
 * Invariant: what libcurl puts on the wire and what we sign are built from
 * the same header list, so every header that takes part in the signature
 * (Content-Length, Content-Type, x-ms-*) is set by us explicitly and the ones
 * libcurl would add on its own (form Content-Type, Expect) are removed. */
#include "cli/client.h"
#include "core/arena.h"
#include "core/clock.h"
#include "core/encode.h"
#include "core/mem.h"
#include "core/random.h"
#include "core/timefmt.h"
#include <curl/curl.h>
#include <jansson.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define STS_MAX (64u * 1024u) /* string-to-sign */
#define URL_MAX (64u * 1024u)

static void set_err(struct nb_client *c, const char *msg)
{
    snprintf(c->err, sizeof(c->err), "%s", msg);
}

void nb_client_cleanup(struct nb_client *c)
{
    if (c->curl) {
        curl_easy_cleanup(c->curl);
        curl_global_cleanup();
    }
    free(c->endpoint);
    free(c->base_path);
    free(c->account);
    if (c->key) explicit_bzero(c->key, c->key_len);
    free(c->key);
    free(c->sas);
    c->curl = NULL;
    c->endpoint = c->base_path = c->account = c->sas = NULL;
    c->key = NULL;
    c->key_len = 0;
}

enum nb_err nb_client_init(struct nb_client *c, const struct nb_connstr *cs,
                           enum nb_storage_svc svc)
{
    enum nb_err rc = NB_ERR_INVALID;
    CURLU *u = NULL;
    char *path = NULL;
    memset(c, 0, sizeof(*c));
    c->svc = svc;
    c->version = svc == NB_STORAGE_QUEUE ? NB_CLIENT_QUEUE_VERSION : NB_CLIENT_TABLE_VERSION;
    c->timeout_ms = 60000;

    const char *ep = svc == NB_STORAGE_QUEUE ? cs->queue_endpoint : cs->table_endpoint;
    if (!ep) {
        set_err(c, svc == NB_STORAGE_QUEUE ? "the connection string has no queue endpoint"
                                           : "the connection string has no table endpoint");
        goto cleanup;
    }
    size_t n = strlen(ep);
    while (n && ep[n - 1] == '/')
        n--;
    c->endpoint = nb_strndup(ep, n);

    u = curl_url();
    if (!u || curl_url_set(u, CURLUPART_URL, c->endpoint, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK) {
        snprintf(c->err, sizeof(c->err), "not a usable endpoint URL: %s", c->endpoint);
        goto cleanup;
    }
    n = strlen(path);
    while (n && path[n - 1] == '/')
        n--;
    c->base_path = nb_strndup(path, n);

    if (cs->key && cs->account) {
        c->account = nb_strdup(cs->account);
        c->key = nb_malloc(cs->key_len);
        memcpy(c->key, cs->key, cs->key_len);
        c->key_len = cs->key_len;
    } else if (cs->sas) {
        c->sas = nb_strdup(cs->sas);
    }

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        set_err(c, "libcurl failed to initialise");
        goto cleanup;
    }
    c->curl = curl_easy_init();
    if (!c->curl) {
        curl_global_cleanup();
        set_err(c, "libcurl failed to initialise");
        goto cleanup;
    }
    rc = NB_OK;

cleanup:
    curl_free(path);
    curl_url_cleanup(u);
    if (rc) {
        char keep[NB_CLIENT_ERR_LEN];
        memcpy(keep, c->err, sizeof(keep));
        nb_client_cleanup(c);
        memcpy(c->err, keep, sizeof(keep));
    }
    return rc;
}

void nb_client_resp_init(struct nb_client_resp *r)
{
    memset(r, 0, sizeof(*r));
    nb_buf_init(&r->body, NB_CLIENT_MAX_BODY);
}

static void drop_headers(struct nb_client_resp *r)
{
    for (size_t i = 0; i < r->nheaders; i++) {
        free((char *)r->headers[i].name);
        free((char *)r->headers[i].value);
    }
    free(r->headers);
    r->headers = NULL;
    r->nheaders = 0;
    free(r->reason);
    r->reason = NULL;
}

void nb_client_resp_cleanup(struct nb_client_resp *r)
{
    drop_headers(r);
    nb_buf_cleanup(&r->body);
    r->status = 0;
}

const char *nb_client_resp_header(const struct nb_client_resp *r, const char *name)
{
    for (size_t i = 0; i < r->nheaders; i++)
        if (strcasecmp(r->headers[i].name, name) == 0) return r->headers[i].value;
    return NULL;
}

struct recv_ctx {
    struct nb_client_resp *resp;
    bool too_large;
};

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct recv_ctx *rx = ud;
    size_t n = size * nmemb;
    if (nb_buf_add(&rx->resp->body, ptr, n) != NB_OK) {
        rx->too_large = true;
        return 0; /* makes libcurl stop with CURLE_WRITE_ERROR */
    }
    return n;
}

static void trim_view(const char **p, size_t *n)
{
    while (*n && (**p == ' ' || **p == '\t')) {
        (*p)++;
        (*n)--;
    }
    while (*n && ((*p)[*n - 1] == ' ' || (*p)[*n - 1] == '\t' || (*p)[*n - 1] == '\r' ||
                  (*p)[*n - 1] == '\n'))
        (*n)--;
}

/* libcurl hands us one header line at a time, status line included. A new
 * status line (after a 1xx) starts the header set afresh. */
static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct recv_ctx *rx = ud;
    struct nb_client_resp *r = rx->resp;
    size_t n = size * nmemb;
    const char *line = ptr;
    size_t len = n;
    trim_view(&line, &len);
    if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) {
        drop_headers(r);
        /* "HTTP/1.1 404 The specified queue does not exist." */
        const char *sp = memchr(line, ' ', len);
        if (sp) {
            const char *sp2 = memchr(sp + 1, ' ', len - (size_t)(sp + 1 - line));
            if (sp2) {
                size_t rlen = len - (size_t)(sp2 + 1 - line);
                if (rlen) r->reason = nb_strndup(sp2 + 1, rlen);
            }
        }
        return n;
    }
    const char *colon = memchr(line, ':', len);
    if (!colon || r->nheaders >= NB_CLIENT_MAX_HEADERS) return n;
    const char *name = line;
    size_t nlen = (size_t)(colon - line);
    const char *val = colon + 1;
    size_t vlen = len - nlen - 1;
    trim_view(&name, &nlen);
    trim_view(&val, &vlen);
    if (!nlen) return n;
    r->headers = nb_realloc(r->headers, (r->nheaders + 1) * sizeof(*r->headers));
    r->headers[r->nheaders++] = (struct nb_kv){nb_strndup(name, nlen), nb_strndup(val, vlen), vlen};
    return n;
}

static bool has_crlf(const char *s)
{
    return s && (strchr(s, '\r') || strchr(s, '\n'));
}

static bool method_has_body(const char *m)
{
    return strcmp(m, "PUT") == 0 || strcmp(m, "POST") == 0 || strcmp(m, "DELETE") == 0 ||
           strcmp(m, "MERGE") == 0 || strcmp(m, "PATCH") == 0;
}

/* Append one "Name: value" to the curl list and to the signing headers. An
 * empty value needs curl's "Name;" spelling, since "Name:" deletes it. */
static enum nb_err add_header(struct curl_slist **list, struct nb_req *sreq, size_t *cap,
                              const char *name, const char *value)
{
    char *line = *value ? nb_asprintf("%s: %s", name, value) : nb_asprintf("%s;", name);
    struct curl_slist *nl = curl_slist_append(*list, line);
    free(line);
    if (!nl) return NB_ERR_NOMEM;
    *list = nl;
    if (sreq->nheaders == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        struct nb_kv *h = nb_arena_alloc(&sreq->arena, ncap * sizeof(*h));
        if (sreq->nheaders) memcpy(h, sreq->headers, sreq->nheaders * sizeof(*h));
        sreq->headers = h;
        *cap = ncap;
    }
    sreq->headers[sreq->nheaders++] = (struct nb_kv){
        nb_arena_strdup(&sreq->arena, name), nb_arena_strdup(&sreq->arena, value), strlen(value)};
    return NB_OK;
}

/* A query parameter name. '$' stays literal: OData system options go out as
 * "$filter", "$top" as the table SDK sends them (queue names have none). */
static enum nb_err add_query_name(struct nb_buf *b, const char *name)
{
    enum nb_err rc = NB_OK;
    for (const char *p = name; *p && !rc; p++)
        rc = *p == '$' ? nb_buf_addc(b, '$') : nb_pct_encode(b, p, 1);
    return rc;
}

static enum nb_err append_query(struct nb_buf *b, const struct nb_client_req *req, const char *sas)
{
    enum nb_err rc = NB_OK;
    bool first = true;
    for (size_t i = 0; i < req->nquery && !rc; i++) {
        const char *v = req->query[i].value ? req->query[i].value : "";
        size_t vlen = req->query[i].value_len ? req->query[i].value_len : strlen(v);
        rc = nb_buf_addc(b, first ? '?' : '&');
        if (!rc) rc = add_query_name(b, req->query[i].name);
        if (!rc) rc = nb_buf_addc(b, '=');
        if (!rc) rc = nb_pct_encode(b, v, vlen);
        first = false;
    }
    if (!rc && sas) {
        rc = nb_buf_addc(b, first ? '?' : '&');
        if (!rc) rc = nb_buf_adds(b, sas);
    }
    return rc;
}

enum nb_err nb_client_send(struct nb_client *c, const struct nb_client_req *req,
                           struct nb_client_resp *resp)
{
    enum nb_err rc = NB_ERR_INVALID;
    struct curl_slist *hlist = NULL;
    struct nb_buf url, sts;
    struct nb_req sreq;
    size_t hcap = 0;
    char date[NB_RFC1123_LEN], reqid[37], sig[NB_HMAC_B64_LEN];
    struct recv_ctx rx = {resp, false};
    CURL *curl = c->curl;

    memset(&sreq, 0, sizeof(sreq));
    nb_arena_init(&sreq.arena);
    nb_buf_init(&url, URL_MAX);
    nb_buf_init(&sts, STS_MAX);
    nb_client_resp_cleanup(resp);
    nb_client_resp_init(resp);
    c->err[0] = '\0';

    if (!curl) {
        set_err(c, "client not initialised");
        goto cleanup;
    }
    if (!req->method || !*req->method || has_crlf(req->method) || strchr(req->method, ' ') ||
        !req->path || req->path[0] != '/' || has_crlf(req->path) || has_crlf(req->content_type)) {
        set_err(c, "malformed request");
        goto cleanup;
    }
    for (size_t i = 0; i < req->nheaders; i++) {
        if (!req->headers[i].name || !*req->headers[i].name || !req->headers[i].value ||
            has_crlf(req->headers[i].name) || strchr(req->headers[i].name, ':') ||
            has_crlf(req->headers[i].value)) {
            snprintf(c->err, sizeof(c->err), "header %s has an invalid name or value",
                     req->headers[i].name ? req->headers[i].name : "(null)");
            goto cleanup;
        }
    }

    /* The request as the signer sees it. */
    sreq.method = req->method;
    sreq.raw_path = nb_arena_printf(&sreq.arena, "%s%s", c->base_path, req->path);
    sreq.raw_query = "";
    sreq.nquery = req->nquery;
    if (req->nquery) {
        sreq.query = nb_arena_alloc(&sreq.arena, req->nquery * sizeof(*sreq.query));
        for (size_t i = 0; i < req->nquery; i++) {
            const char *v = req->query[i].value ? req->query[i].value : "";
            size_t vlen = req->query[i].value_len ? req->query[i].value_len : strlen(v);
            sreq.query[i] =
                (struct nb_kv){req->query[i].name, nb_arena_strndup(&sreq.arena, v, vlen), vlen};
        }
    }

    rc = nb_buf_adds(&url, c->endpoint);
    if (!rc) rc = nb_buf_adds(&url, req->path);
    if (!rc) rc = append_query(&url, req, c->sas);
    if (rc) {
        set_err(c, "request URL too long");
        goto cleanup;
    }
    sreq.raw_url = nb_buf_cstr(&url);

    struct nb_clock clk;
    nb_clock_init(&clk);
    nb_time_rfc1123(nb_clock_now(&clk), date);
    nb_random_uuid(reqid);

    bool body = method_has_body(req->method) || req->body_len;
    for (size_t i = 0; i < req->nheaders && !rc; i++)
        rc = add_header(&hlist, &sreq, &hcap, req->headers[i].name, req->headers[i].value);
    if (!rc && body) {
        char len[32];
        snprintf(len, sizeof(len), "%zu", req->body_len);
        rc = add_header(&hlist, &sreq, &hcap, "Content-Length", len);
    }
    if (!rc && req->content_type)
        rc = add_header(&hlist, &sreq, &hcap, "Content-Type", req->content_type);
    if (!rc) rc = add_header(&hlist, &sreq, &hcap, "x-ms-date", date);
    if (!rc) rc = add_header(&hlist, &sreq, &hcap, "x-ms-version", c->version);
    if (!rc) rc = add_header(&hlist, &sreq, &hcap, "x-ms-client-request-id", reqid);
    if (rc) {
        set_err(c, "out of memory building headers");
        goto cleanup;
    }

    if (c->key) {
        rc = nb_sharedkey_string_to_sign(c->svc, NB_SHAREDKEY, c->account, &sreq, sreq.raw_path,
                                         &sts);
        if (rc) {
            set_err(c, "request too large to sign");
            goto cleanup;
        }
        nb_sharedkey_hmac(c->key, c->key_len, sts.data ? sts.data : "", sts.len, sig);
        char *auth = nb_asprintf("Authorization: SharedKey %s:%s", c->account, sig);
        struct curl_slist *nl = curl_slist_append(hlist, auth);
        free(auth);
        if (!nl) {
            rc = NB_ERR_NOMEM;
            set_err(c, "out of memory building headers");
            goto cleanup;
        }
        hlist = nl;
    }
    /* Headers libcurl would otherwise add by itself and that would then be
     * on the wire without being signed. */
    struct curl_slist *nl = curl_slist_append(hlist, "Expect:");
    if (nl && !req->content_type) nl = curl_slist_append(nl, "Content-Type:");
    if (!nl) {
        rc = NB_ERR_NOMEM;
        set_err(c, "out of memory building headers");
        goto cleanup;
    }
    hlist = nl;

    /* Reset drops the previous request's options but keeps the connection. */
    curl_easy_reset(curl);
    curl_easy_setopt(curl, CURLOPT_URL, sreq.raw_url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hlist);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "nimbus-cli/1.0");
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, c->err);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &rx);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &rx);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    if (strcmp(req->method, "GET") == 0 && !body) {
        curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(req->method, "HEAD") == 0 && !body) {
        curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
    } else {
        /* POSTFIELDS with an explicit size gives an exact Content-Length
         * (0 included, as the SDK sends on bodiless PUT and DELETE). */
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, req->body ? req->body : "");
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        if (strcmp(req->method, "POST") != 0)
            curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, req->method);
    }

    c->err[0] = '\0';
    CURLcode cc = curl_easy_perform(curl);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, NULL);
    if (cc != CURLE_OK) {
        if (rx.too_large) {
            rc = NB_ERR_TOO_LARGE;
            set_err(c, "response body too large");
        } else {
            rc = NB_ERR_IO;
            if (!c->err[0]) set_err(c, curl_easy_strerror(cc));
        }
        goto cleanup;
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp->status);
    rc = NB_OK;

cleanup:
    curl_slist_free_all(hlist);
    nb_buf_cleanup(&url);
    nb_buf_cleanup(&sts);
    nb_arena_cleanup(&sreq.arena);
    return rc;
}

/* First element child of `parent` called `name`, or NULL. */
static xmlNode *xml_child(xmlNode *parent, const char *name)
{
    for (xmlNode *n = parent ? parent->children : NULL; n; n = n->next)
        if (n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0) return n;
    return NULL;
}

static char *xml_text(xmlNode *n)
{
    if (!n) return NULL;
    xmlChar *t = xmlNodeGetContent(n);
    if (!t) return NULL;
    char *s = nb_strdup((const char *)t);
    xmlFree(t);
    return s;
}

static void parse_xml_error(const struct nb_client_resp *r, char **code, char **message)
{
    xmlDoc *doc = xmlReadMemory(r->body.data, (int)r->body.len, NULL, NULL,
                                XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!doc) return;
    xmlNode *root = xmlDocGetRootElement(doc);
    if (root && strcmp((const char *)root->name, "Error") == 0) {
        char *c = xml_text(xml_child(root, "Code"));
        char *m = xml_text(xml_child(root, "Message"));
        char *d = xml_text(xml_child(root, "AuthenticationErrorDetail"));
        if (c && *c) {
            free(*code);
            *code = c;
            c = NULL;
        }
        if (m && d && *d) {
            char *md = nb_asprintf("%s\n%s", m, d);
            free(m);
            m = md;
        }
        if (m) {
            free(*message);
            *message = m;
            m = NULL;
        }
        free(c);
        free(m);
        free(d);
    }
    xmlFreeDoc(doc);
}

static void parse_json_error(const struct nb_client_resp *r, char **code, char **message)
{
    json_t *root = json_loadb(r->body.data, r->body.len, 0, NULL);
    json_t *err = root ? json_object_get(root, "odata.error") : NULL;
    if (!err) err = root ? json_object_get(root, "error") : NULL;
    if (json_is_object(err)) {
        const char *c = json_string_value(json_object_get(err, "code"));
        json_t *m = json_object_get(err, "message");
        const char *mv = json_is_object(m) ? json_string_value(json_object_get(m, "value"))
                                           : json_string_value(m);
        if (c && *c) {
            free(*code);
            *code = nb_strdup(c);
        }
        if (mv) {
            free(*message);
            *message = nb_strdup(mv);
        }
    }
    json_decref(root);
}

void nb_client_resp_error(const struct nb_client_resp *r, char **code, char **message)
{
    const char *hc = nb_client_resp_header(r, "x-ms-error-code");
    *code = hc && *hc ? nb_strdup(hc) : nb_asprintf("HTTP %ld", r->status);
    *message = nb_strdup(r->reason ? r->reason : "");
    if (!r->body.len || r->body.len > (size_t)2147483647) return;
    const char *p = r->body.data;
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
        p++;
    if (*p == '<')
        parse_xml_error(r, code, message);
    else if (*p == '{')
        parse_json_error(r, code, message);
}
