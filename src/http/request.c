/* Header and query access for nb_req / nb_resp (see request.h). */
#include "http/request.h"
#include "core/encode.h"
#include <string.h>
#include <strings.h>

const char *nb_req_header(const struct nb_req *req, const char *name)
{
    for (size_t i = 0; i < req->nheaders; i++)
        if (strcasecmp(req->headers[i].name, name) == 0) return req->headers[i].value;
    return NULL;
}

const struct nb_kv *nb_req_query_kv(const struct nb_req *req, const char *name)
{
    for (size_t i = 0; i < req->nquery; i++)
        if (strcasecmp(req->query[i].name, name) == 0) return &req->query[i];
    return NULL;
}

const char *nb_req_query(const struct nb_req *req, const char *name)
{
    const struct nb_kv *kv = nb_req_query_kv(req, name);
    return kv ? kv->value : NULL;
}

void nb_req_parse_query(struct nb_req *req)
{
    const char *q = req->raw_query;
    size_t count = 0;
    req->nquery = 0;
    req->query = NULL;
    if (!*q) return;
    for (const char *p = q; *p; p++)
        if (*p == '&') count++;
    count++;
    req->query = nb_arena_alloc(&req->arena, count * sizeof(struct nb_kv));
    const char *p = q;
    while (*p) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        if (len) {
            const char *eq = memchr(p, '=', len);
            size_t nlen = eq ? (size_t)(eq - p) : len;
            const char *v = eq ? eq + 1 : p + len;
            size_t vlen = eq ? len - nlen - 1 : 0;
            char *name = nb_arena_alloc(&req->arena, nlen + 1);
            nb_pct_decode(p, nlen, name);
            char *val = nb_arena_alloc(&req->arena, vlen + 1);
            size_t dlen = nb_pct_decode(v, vlen, val);
            req->query[req->nquery++] = (struct nb_kv){ name, val, dlen };
        }
        p += len;
        if (*p == '&') p++;
    }
}

void nb_resp_header(struct nb_req *req, struct nb_resp *resp, const char *name,
                    const char *value)
{
    if (resp->nheaders == resp->cap) {
        size_t cap = resp->cap ? resp->cap * 2 : 16;
        struct nb_kv *h = nb_arena_alloc(&req->arena, cap * sizeof(*h));
        if (resp->nheaders) memcpy(h, resp->headers, resp->nheaders * sizeof(*h));
        resp->headers = h;
        resp->cap = cap;
    }
    const char *v = nb_arena_strdup(&req->arena, value);
    resp->headers[resp->nheaders++] =
        (struct nb_kv){ nb_arena_strdup(&req->arena, name), v, strlen(v) };
}

void nb_resp_set_header(struct nb_req *req, struct nb_resp *resp, const char *name,
                        const char *value)
{
    for (size_t i = 0; i < resp->nheaders; i++) {
        if (strcasecmp(resp->headers[i].name, name) == 0) {
            resp->headers[i].value = nb_arena_strdup(&req->arena, value);
            resp->headers[i].value_len = strlen(value);
            return;
        }
    }
    nb_resp_header(req, resp, name, value);
}

const char *nb_resp_get_header(const struct nb_resp *resp, const char *name)
{
    for (size_t i = 0; i < resp->nheaders; i++)
        if (strcasecmp(resp->headers[i].name, name) == 0) return resp->headers[i].value;
    return NULL;
}
