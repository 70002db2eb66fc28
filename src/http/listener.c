/* libmicrohttpd glue (see listener.h). Owns the MHD daemon and each
 * connection's nb_req from the first byte of the request line to the end of
 * the response. The raw request URI is captured through MHD's URI log
 * callback, because MHD's own path is already %-decoded and SharedKey signs
 * the path as sent. */
#include "http/listener.h"
#include "core/mem.h"
#include "core/random.h"
#include <microhttpd.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct nb_http_listener {
    struct nb_http_listener_config cfg;
    struct MHD_Daemon *daemon;
    int port;
    atomic_int in_flight;
};

/* Per-exchange state, hung on MHD's request context pointer. */
struct exchange {
    struct nb_req req;
    struct nb_http_listener *l;
    int64_t start_us;
    int started; /* headers collected, counted in in_flight */
};

static void *uri_logger(void *cls, const char *uri, struct MHD_Connection *con)
{
    (void)con;
    struct nb_http_listener *l = cls;
    struct exchange *x = nb_calloc(1, sizeof(*x));
    x->l = l;
    x->start_us = nb_clock_mono_us();
    nb_arena_init(&x->req.arena);
    nb_buf_init(&x->req.body, l->cfg.max_body);
    struct nb_req *req = &x->req;
    req->raw_url = nb_arena_strdup(&req->arena, uri ? uri : "/");
    const char *q = strchr(req->raw_url, '?');
    if (q) {
        req->raw_path = nb_arena_strndup(&req->arena, req->raw_url, (size_t)(q - req->raw_url));
        req->raw_query = q + 1;
    } else {
        req->raw_path = req->raw_url;
        req->raw_query = "";
    }
    return x;
}

static void exchange_free(struct exchange *x)
{
    if (!x) return;
    nb_buf_cleanup(&x->req.body);
    nb_arena_cleanup(&x->req.arena);
    free(x);
}

static void completed(void *cls, struct MHD_Connection *con, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)con;
    (void)toe;
    struct exchange *x = *con_cls;
    if (x && x->started) atomic_fetch_sub(&x->l->in_flight, 1);
    exchange_free(x);
    *con_cls = NULL;
}

struct header_collect {
    struct nb_req *req;
    size_t cap;
};

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
    (void)kind;
    struct header_collect *hc = cls;
    struct nb_req *req = hc->req;
    if (req->nheaders == hc->cap) {
        size_t cap = hc->cap ? hc->cap * 2 : 32;
        struct nb_kv *h = nb_arena_alloc(&req->arena, cap * sizeof(*h));
        if (req->nheaders) memcpy(h, req->headers, req->nheaders * sizeof(*h));
        req->headers = h;
        hc->cap = cap;
    }
    const char *v = value ? value : "";
    req->headers[req->nheaders++] = (struct nb_kv){ nb_arena_strdup(&req->arena, key),
                                                    nb_arena_strdup(&req->arena, v), strlen(v) };
    return MHD_YES;
}

static enum MHD_Result respond(struct exchange *x, struct MHD_Connection *con)
{
    struct nb_req *req = &x->req;
    struct nb_http_listener *l = x->l;
    struct nb_resp resp;
    memset(&resp, 0, sizeof(resp));
    resp.status = 500;
    nb_buf_init(&resp.body, SIZE_MAX / 2);

    l->cfg.handler(l->cfg.ctx, req, &resp);

    nb_resp_set_header(req, &resp, "x-ms-request-id", req->request_id);
    const char *ver = nb_req_header(req, "x-ms-version");
    if (ver && !nb_resp_get_header(&resp, "x-ms-version"))
        nb_resp_header(req, &resp, "x-ms-version", ver);
    const char *crid = nb_req_header(req, "x-ms-client-request-id");
    if (crid) nb_resp_set_header(req, &resp, "x-ms-client-request-id", crid);
    if (!nb_resp_get_header(&resp, "Server")) nb_resp_header(req, &resp, "Server", "Nimbus");

    size_t len = 0;
    char *body = nb_buf_detach(&resp.body, &len);
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    for (size_t i = 0; i < resp.nheaders; i++)
        MHD_add_response_header(r, resp.headers[i].name, resp.headers[i].value);
    enum MHD_Result ret = MHD_queue_response(con, (unsigned)resp.status, r);
    MHD_destroy_response(r);

    struct nb_log_request line = {
        .service = l->cfg.service,
        .method = req->method,
        .url = req->raw_url,
        .status = resp.status,
        .error_code = resp.error_code,
        .request_id = req->request_id,
        .duration_us = nb_clock_mono_us() - x->start_us,
    };
    nb_log_request(l->cfg.log, &line);
    return ret;
}

static void peer_address(struct MHD_Connection *con, char *out, size_t len)
{
    out[0] = '\0';
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(con, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr) return;
    const struct sockaddr *sa = ci->client_addr;
    socklen_t sl = sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                             : sizeof(struct sockaddr_in);
    if (getnameinfo(sa, sl, out, (socklen_t)len, NULL, 0, NI_NUMERICHOST) != 0) out[0] = '\0';
}

static enum MHD_Result access_handler(void *cls, struct MHD_Connection *con, const char *url,
                                      const char *method, const char *version,
                                      const char *upload_data, size_t *upload_data_size,
                                      void **con_cls)
{
    (void)url;
    (void)version;
    struct nb_http_listener *l = cls;
    struct exchange *x = *con_cls;
    if (!x) return MHD_NO; /* the URI logger always runs first */
    struct nb_req *req = &x->req;

    if (!x->started) {
        x->started = 1;
        atomic_fetch_add(&l->in_flight, 1);
        req->method = nb_arena_strdup(&req->arena, method);
        struct header_collect hc = { req, 0 };
        MHD_get_connection_values(con, MHD_HEADER_KIND, collect_header, &hc);
        nb_req_parse_query(req);
        nb_random_uuid(req->request_id);
        peer_address(con, req->client_ip, sizeof(req->client_ip));
        req->now = nb_clock_now(l->cfg.clock);
        const char *cl = nb_req_header(req, "Content-Length");
        if (cl) {
            char *end = NULL;
            unsigned long long n = strtoull(cl, &end, 10);
            if (end != cl && n > l->cfg.max_body) req->body_too_large = true;
        }
        /* A body we will refuse is answered before it is read; MHD then
         * closes the connection instead of draining the upload. */
        if (req->body_too_large) return respond(x, con);
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (!req->body_too_large &&
            nb_buf_add(&req->body, upload_data, *upload_data_size) != NB_OK)
            req->body_too_large = true;
        *upload_data_size = 0;
        return MHD_YES;
    }
    return respond(x, con);
}

enum nb_err nb_http_listen(const struct nb_http_listener_config *cfg,
                           struct nb_http_listener **out)
{
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char port[16];
    snprintf(port, sizeof(port), "%d", cfg->port);
    if (getaddrinfo(cfg->host, port, &hints, &ai) != 0 || !ai) {
        nb_log_error(cfg->log, "%s: cannot resolve listen address %s", cfg->service, cfg->host);
        return NB_ERR_IO;
    }
    struct nb_http_listener *l = nb_calloc(1, sizeof(*l));
    l->cfg = *cfg;
    atomic_init(&l->in_flight, 0);
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_POLL | MHD_USE_ITC;
    if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    l->daemon = MHD_start_daemon(
        flags, (uint16_t)cfg->port, NULL, NULL, access_handler, l, MHD_OPTION_SOCK_ADDR,
        ai->ai_addr, MHD_OPTION_URI_LOG_CALLBACK, uri_logger, l,
        MHD_OPTION_NOTIFY_COMPLETED, completed, l, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)120, MHD_OPTION_CONNECTION_LIMIT, (unsigned)4096,
        MHD_OPTION_THREAD_STACK_SIZE, (size_t)(256 * 1024), MHD_OPTION_LISTEN_BACKLOG_SIZE,
        (unsigned)1024, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!l->daemon) {
        nb_log_error(cfg->log, "%s: cannot listen on %s:%d", cfg->service, cfg->host,
                     cfg->port);
        free(l);
        return NB_ERR_IO;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(l->daemon, MHD_DAEMON_INFO_BIND_PORT);
    l->port = info ? info->port : cfg->port;
    *out = l;
    return NB_OK;
}

int nb_http_port(const struct nb_http_listener *l)
{
    return l->port;
}

void nb_http_quiesce(struct nb_http_listener *l)
{
    if (!l || !l->daemon) return;
    MHD_socket s = MHD_quiesce_daemon(l->daemon);
    if (s != MHD_INVALID_SOCKET) close(s);
}

bool nb_http_drain(struct nb_http_listener *l, int timeout_ms)
{
    struct timespec ts = { 0, 5 * 1000 * 1000 };
    for (int waited = 0; waited < timeout_ms && atomic_load(&l->in_flight) > 0; waited += 5)
        nanosleep(&ts, NULL);
    return atomic_load(&l->in_flight) == 0;
}

void nb_http_stop(struct nb_http_listener *l, int timeout_ms)
{
    if (!l) return;
    nb_http_quiesce(l);
    nb_http_drain(l, timeout_ms);
    MHD_stop_daemon(l->daemon);
    free(l);
}
