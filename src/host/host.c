/* Host listener routes (see host.h). Test hooks never exist unless the
 * operator opted in at start-up: without the flag those paths are 404. */
#include "host/host.h"
#include "core/mem.h"
#include "http/listener.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct nb_host {
    struct nb_service_env env;
    struct nb_http_listener *listener;
};

static void json_reply(struct nb_req *req, struct nb_resp *resp, int status, const char *body)
{
    resp->status = status;
    nb_resp_header(req, resp, "Content-Type", "application/json; charset=utf-8");
    nb_buf_adds(&resp->body, body);
}

/* POST /admin/test/clock?advance_ms=N: move the server clock forward. */
static void test_clock(struct nb_host *h, struct nb_req *req, struct nb_resp *resp)
{
    const char *adv = nb_req_query(req, "advance_ms");
    if (adv) {
        char *end = NULL;
        errno = 0;
        long long ms = strtoll(adv, &end, 10);
        if (errno || end == adv || *end || ms < 0) {
            json_reply(req, resp, 400, "{\"error\":\"advance_ms must be a non-negative integer\"}");
            return;
        }
        nb_clock_advance(h->env.clock, ms);
    }
    char body[64];
    snprintf(body, sizeof(body), "{\"now_ms\":%lld}", (long long)nb_clock_now(h->env.clock));
    json_reply(req, resp, 200, body);
}

static void handle(void *ctx, struct nb_req *req, struct nb_resp *resp)
{
    struct nb_host *h = ctx;
    const char *path = req->raw_path;
    bool get = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
    if (strcmp(path, "/admin/host/ping") == 0 && (get || strcmp(req->method, "POST") == 0)) {
        resp->status = 200;
        return;
    }
    if (h->env.test_hooks && strcmp(path, "/admin/test/clock") == 0 &&
        strcmp(req->method, "POST") == 0) {
        test_clock(h, req, resp);
        return;
    }
    resp->status = 404;
    resp->error_code = "NotFound";
}

enum nb_err nb_host_start(const struct nb_service_env *env, int port, struct nb_host **out)
{
    struct nb_host *h = nb_calloc(1, sizeof(*h));
    h->env = *env;
    struct nb_http_listener_config cfg = {
        .service = "host",
        .host = env->host,
        .port = port,
        .max_body = 100u * 1024 * 1024, /* Azure Functions' HTTP request limit */
        .handler = handle,
        .ctx = h,
        .log = env->log,
        .clock = env->clock,
    };
    enum nb_err rc = nb_http_listen(&cfg, &h->listener);
    if (rc) {
        free(h);
        return rc;
    }
    *out = h;
    return NB_OK;
}

int nb_host_port(const struct nb_host *h)
{
    return nb_http_port(h->listener);
}

void nb_host_quiesce(struct nb_host *h)
{
    if (h) nb_http_quiesce(h->listener);
}

void nb_host_stop(struct nb_host *h)
{
    if (!h) return;
    nb_http_stop(h->listener, 10000);
    free(h);
}
