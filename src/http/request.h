/* The request and response types every service handler sees. A request owns
 * an arena that is freed when the response has been sent; everything hanging
 * off nb_req and nb_resp (header arrays, decoded query values) lives in it.
 * Handlers fill nb_resp and return; the listener turns it into HTTP. */
#ifndef NB_HTTP_REQUEST_H
#define NB_HTTP_REQUEST_H
#include <stdbool.h>
#include <stddef.h>
#include "core/arena.h"
#include "core/buf.h"
#include "core/clock.h"

struct nb_kv {
    const char *name;
    const char *value;
    size_t value_len; /* decoded values may hold NULs */
};

struct nb_req {
    struct nb_arena arena;
    const char *method;
    const char *raw_url;   /* path + "?" + query exactly as received */
    const char *raw_path;  /* path only, still %-encoded */
    const char *raw_query; /* after "?", or "" */
    struct nb_kv *query;   /* names and values %-decoded, in arrival order */
    size_t nquery;
    struct nb_kv *headers; /* names as received; compare case-insensitively */
    size_t nheaders;
    struct nb_buf body;    /* capped at the listener's max_body */
    bool body_too_large;   /* set when the body exceeded max_body */
    bool is_https;
    char client_ip[64];    /* the peer's address as text ("" if unknown) */
    char request_id[37];
    nb_time_ms now;        /* the server clock when the request arrived */
};

struct nb_resp {
    int status;
    struct nb_kv *headers; /* in arena */
    size_t nheaders, cap;
    struct nb_buf body;
    const char *error_code; /* for the log line; NULL on success */
};

/* Case-insensitive header lookup; NULL when absent. */
const char *nb_req_header(const struct nb_req *req, const char *name);
/* Query parameter lookup by exact-case-insensitive name; NULL when absent. */
const char *nb_req_query(const struct nb_req *req, const char *name);
const struct nb_kv *nb_req_query_kv(const struct nb_req *req, const char *name);
/* Split raw_query into req->query, decoding names and values. */
void nb_req_parse_query(struct nb_req *req);

/* Add a response header; name and value are copied into the request arena. */
void nb_resp_header(struct nb_req *req, struct nb_resp *resp, const char *name,
                    const char *value);
/* Replace (or add) a header. */
void nb_resp_set_header(struct nb_req *req, struct nb_resp *resp, const char *name,
                        const char *value);
const char *nb_resp_get_header(const struct nb_resp *resp, const char *name);

#endif
