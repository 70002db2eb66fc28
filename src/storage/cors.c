/* CORS rule matching and the CORS response headers (see cors.h). Rules are
 * read from the properties document on each call; the document is small
 * and browsers cache preflights, so no cache is kept here. */
#include "storage/cors.h"
#include "core/mem.h"
#include "storage/errors.h"
#include "storage/xml.h"
#include <errno.h>
#include <libxml/parser.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* One trimmed item of a comma list. Start with *p at the list; returns
 * false when the list is exhausted. Empty items are skipped. */
static bool next_item(const char **p, const char **item, size_t *len)
{
    while (**p) {
        const char *s = *p;
        const char *end = strchr(s, ',');
        size_t n = end ? (size_t)(end - s) : strlen(s);
        *p = end ? end + 1 : s + n;
        while (n && (*s == ' ' || *s == '\t'))
            s++, n--;
        while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
            n--;
        if (n) {
            *item = s;
            *len = n;
            return true;
        }
    }
    return false;
}

static bool ieq(const char *a, size_t alen, const char *b, size_t blen)
{
    return alen == blen && strncasecmp(a, b, alen) == 0;
}

/* `value` (value_len bytes) is in `list`, exactly or, when `patterns`, by a
 * "*" or "prefix*" entry. */
static bool list_allows(const char *list, const char *value, size_t value_len, bool patterns)
{
    const char *p = list, *item;
    size_t len;
    while (next_item(&p, &item, &len)) {
        if (ieq(item, len, value, value_len)) return true;
        if (patterns && item[len - 1] == '*' && value_len >= len - 1 &&
            strncasecmp(item, value, len - 1) == 0)
            return true;
    }
    return false;
}

static bool origin_listed(const struct nb_cors_rule *r, const char *origin)
{
    return list_allows(r->origins, origin, strlen(origin), false);
}

static bool origin_allowed(const struct nb_cors_rule *r, const char *origin)
{
    return origin_listed(r, origin) || list_allows(r->origins, "*", 1, false);
}

static bool headers_allowed(const struct nb_cors_rule *r, const char *headers)
{
    const char *p = headers ? headers : "", *item;
    size_t len;
    while (next_item(&p, &item, &len))
        if (!list_allows(r->allowed_headers, item, len, true)) return false;
    return true;
}

void nb_cors_cleanup(struct nb_cors *c)
{
    if (!c) return;
    for (size_t i = 0; i < c->n; i++) {
        free(c->rules[i].origins);
        free(c->rules[i].methods);
        free(c->rules[i].allowed_headers);
        free(c->rules[i].exposed_headers);
    }
    memset(c, 0, sizeof(*c));
}

enum nb_err nb_cors_parse(const char *props_xml, struct nb_cors *out)
{
    enum nb_err rc = NB_ERR_INVALID;
    xmlDocPtr doc = NULL;
    memset(out, 0, sizeof(*out));
    if (!props_xml) return NB_OK;
    doc = nb_storage_xml_read(props_xml, strlen(props_xml));
    if (!doc) goto cleanup;
    xmlNodePtr root = xmlDocGetRootElement(doc);
    if (!nb_storage_xml_is(root, "StorageServiceProperties")) goto cleanup;
    xmlNodePtr cors = nb_storage_xml_child(root, "Cors");
    for (xmlNodePtr c = cors ? cors->children : NULL; c && out->n < NB_CORS_MAX_RULES;
         c = c->next) {
        if (!nb_storage_xml_is(c, "CorsRule")) continue;
        struct nb_cors_rule *r = &out->rules[out->n++];
        r->origins = nb_storage_xml_text(nb_storage_xml_child(c, "AllowedOrigins"), 1);
        r->methods = nb_storage_xml_text(nb_storage_xml_child(c, "AllowedMethods"), 1);
        r->allowed_headers = nb_storage_xml_text(nb_storage_xml_child(c, "AllowedHeaders"), 1);
        r->exposed_headers = nb_storage_xml_text(nb_storage_xml_child(c, "ExposedHeaders"), 1);
        char *age = nb_storage_xml_text(nb_storage_xml_child(c, "MaxAgeInSeconds"), 1);
        char *end = NULL;
        errno = 0;
        long v = strtol(age, &end, 10);
        r->max_age = (errno || !age[0] || *end || v < 0) ? 0 : v;
        free(age);
    }
    rc = NB_OK;
cleanup:
    if (doc) xmlFreeDoc(doc);
    if (rc) nb_cors_cleanup(out);
    return rc;
}

const struct nb_cors_rule *nb_cors_match(const struct nb_cors *c, const char *origin,
                                         const char *method, const char *request_headers)
{
    if (!c || !origin || !method) return NULL;
    for (size_t i = 0; i < c->n && i < NB_CORS_MAX_RULES; i++) {
        const struct nb_cors_rule *r = &c->rules[i];
        if (origin_allowed(r, origin) && list_allows(r->methods, method, strlen(method), false) &&
            headers_allowed(r, request_headers))
            return r;
    }
    return NULL;
}

/* The Access-Control-Allow-Origin value: an explicitly listed origin is
 * echoed; one admitted only through "*" is answered with "*". */
static const char *allow_origin(const struct nb_cors_rule *r, const char *origin)
{
    return origin_listed(r, origin) ? origin : "*";
}

static void missing_header(struct nb_req *req, struct nb_resp *resp, const char *name)
{
    struct nb_kv extra = {"HeaderName", name, strlen(name)};
    nb_storage_error_xml(req, resp, "MissingRequiredHeader", NULL, &extra, 1);
}

void nb_cors_preflight(struct nb_req *req, struct nb_resp *resp, const char *props_xml)
{
    struct nb_cors cors;
    const char *origin = nb_req_header(req, "Origin");
    const char *method = nb_req_header(req, "Access-Control-Request-Method");
    const char *headers = nb_req_header(req, "Access-Control-Request-Headers");
    if (!origin || !*origin) {
        missing_header(req, resp, "Origin");
        return;
    }
    if (!method || !*method) {
        missing_header(req, resp, "Access-Control-Request-Method");
        return;
    }
    /* An unreadable stored document leaves no rules: refuse, as Azure does
     * when CORS is not configured, rather than fail the browser with 500. */
    (void)nb_cors_parse(props_xml, &cors);
    const struct nb_cors_rule *r = nb_cors_match(&cors, origin, method, headers);
    if (!r) {
        nb_storage_error_xml(req, resp, "CorsPreflightFailure", NULL, NULL, 0);
        goto cleanup;
    }
    const char *ao = allow_origin(r, origin);
    char age[32];
    snprintf(age, sizeof(age), "%ld", r->max_age);
    resp->status = 200;
    resp->error_code = NULL;
    nb_buf_reset(&resp->body);
    nb_resp_set_header(req, resp, "Access-Control-Allow-Origin", ao);
    nb_resp_set_header(req, resp, "Access-Control-Allow-Methods", method);
    if (headers && *headers) nb_resp_set_header(req, resp, "Access-Control-Allow-Headers", headers);
    nb_resp_set_header(req, resp, "Access-Control-Max-Age", age);
    if (strcmp(ao, "*") != 0)
        nb_resp_set_header(req, resp, "Access-Control-Allow-Credentials", "true");
cleanup:
    nb_cors_cleanup(&cors);
}

/* `name` is matched by a "prefix*" entry of `list` (a bare "*" is not a
 * prefix: it is passed on to the browser as is). */
static bool prefix_listed(const char *list, const char *name, size_t nlen)
{
    const char *p = list, *item;
    size_t len;
    while (next_item(&p, &item, &len))
        if (len > 1 && item[len - 1] == '*' && nlen >= len - 1 &&
            strncasecmp(item, name, len - 1) == 0)
            return true;
    return false;
}

/* Rule's exposed list, then response header names matched by its
 * "prefix*" entries (browsers do not expand patterns themselves). */
static char *expose_list(struct nb_req *req, const struct nb_resp *resp,
                         const struct nb_cors_rule *r)
{
    struct nb_buf b;
    nb_buf_init(&b, 64 * 1024);
    const char *p = r->exposed_headers, *item;
    size_t len;
    while (next_item(&p, &item, &len)) {
        if (b.len) nb_buf_addc(&b, ',');
        nb_buf_add(&b, item, len);
    }
    for (size_t i = 0; i < resp->nheaders; i++) {
        const char *name = resp->headers[i].name;
        size_t nlen = strlen(name);
        if (list_allows(r->exposed_headers, name, nlen, false)) continue; /* already named */
        if (!prefix_listed(r->exposed_headers, name, nlen)) continue;
        if (b.len) nb_buf_addc(&b, ',');
        nb_buf_add(&b, name, nlen);
    }
    char *s = nb_arena_strdup(&req->arena, nb_buf_cstr(&b));
    nb_buf_cleanup(&b);
    return s;
}

void nb_cors_decorate(struct nb_req *req, struct nb_resp *resp, const char *props_xml)
{
    struct nb_cors cors;
    const char *origin = nb_req_header(req, "Origin");
    if (!origin || !*origin || !req->method) return;
    if (nb_cors_parse(props_xml, &cors)) return;
    const struct nb_cors_rule *r = nb_cors_match(&cors, origin, req->method, NULL);
    if (!r) goto cleanup;
    const char *ao = allow_origin(r, origin);
    nb_resp_set_header(req, resp, "Access-Control-Allow-Origin", ao);
    const char *expose = expose_list(req, resp, r);
    if (*expose) nb_resp_set_header(req, resp, "Access-Control-Expose-Headers", expose);
    if (strcmp(ao, "*") != 0)
        nb_resp_set_header(req, resp, "Access-Control-Allow-Credentials", "true");
    const char *vary = nb_resp_get_header(resp, "Vary");
    if (!vary || !*vary)
        nb_resp_set_header(req, resp, "Vary", "Origin");
    else if (!list_allows(vary, "Origin", 6, false))
        nb_resp_set_header(req, resp, "Vary", nb_arena_printf(&req->arena, "%s, Origin", vary));
cleanup:
    nb_cors_cleanup(&cors);
}
