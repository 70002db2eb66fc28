/* Log lines (see log.h). Each line is formatted into a buffer and written
 * with a single write(2), so concurrent lines never interleave. */
#include "core/log.h"
#include "core/encode.h"
#include "core/clock.h"
#include "core/timefmt.h"
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static const char *const secret_params[] = { "sig", "code", NULL };

enum nb_err nb_log_redact_query(struct nb_buf *b, const char *url)
{
    const char *q = strchr(url, '?');
    if (!q) return nb_buf_adds(b, url);
    enum nb_err rc = nb_buf_add(b, url, (size_t)(q - url) + 1);
    const char *p = q + 1;
    while (!rc && *p) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        bool secret = false;
        if (eq && (size_t)(eq - p) < 32) {
            /* Compare the decoded name: the request parser decodes names, so
             * "%63ode=" is a code= too. */
            char name[32];
            size_t nl = nb_pct_decode(p, (size_t)(eq - p), name);
            for (int i = 0; secret_params[i]; i++)
                if (nl == strlen(secret_params[i]) && strncasecmp(name, secret_params[i], nl) == 0)
                    secret = true;
        }
        if (secret) {
            rc = nb_buf_add(b, p, (size_t)(eq - p) + 1);
            if (!rc) rc = nb_buf_adds(b, "REDACTED");
        } else {
            rc = nb_buf_add(b, p, len);
        }
        p += len;
        if (!rc && *p == '&') {
            rc = nb_buf_addc(b, '&');
            p++;
        }
    }
    return rc;
}

static void emit(struct nb_buf *line)
{
    if (nb_buf_addc(line, '\n')) {
        line->data[line->len - 1] = '\n';
    }
    ssize_t off = 0;
    while ((size_t)off < line->len) {
        ssize_t n = write(STDERR_FILENO, line->data + off, line->len - (size_t)off);
        if (n <= 0) break;
        off += n;
    }
}

static void now_iso(char out[NB_ISO8601_LEN])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    nb_time_iso8601((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, out);
}

void nb_log_request(const struct nb_log *log, const struct nb_log_request *r)
{
    if (log->quiet) return;
    struct nb_buf url, line;
    nb_buf_init(&url, 16384);
    nb_buf_init(&line, 32768);
    if (nb_log_redact_query(&url, r->url)) nb_buf_reset(&url);
    char ts[NB_ISO8601_LEN];
    now_iso(ts);
    if (log->format == NB_LOG_JSON) {
        json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:i, s:s, s:f}", "time", ts, "service",
                              r->service, "method", r->method, "url", nb_buf_cstr(&url),
                              "status", r->status, "request_id",
                              r->request_id ? r->request_id : "", "duration_ms",
                              (double)r->duration_us / 1000.0);
        if (o && r->error_code) json_object_set_new(o, "error", json_string(r->error_code));
        char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
        if (s) nb_buf_adds(&line, s);
        free(s);
        json_decref(o);
    } else {
        nb_buf_printf(&line, "%s %s %s %s %d %.3fms %s%s%s", ts, r->service, r->method,
                      nb_buf_cstr(&url), r->status, (double)r->duration_us / 1000.0,
                      r->request_id ? r->request_id : "-", r->error_code ? " " : "",
                      r->error_code ? r->error_code : "");
    }
    if (line.len) emit(&line);
    nb_buf_cleanup(&url);
    nb_buf_cleanup(&line);
}

static void vlog(const struct nb_log *log, const char *level, const char *fmt, va_list ap)
{
    struct nb_buf msg, line;
    nb_buf_init(&msg, 16384);
    nb_buf_init(&line, 32768);
    nb_buf_vprintf(&msg, fmt, ap);
    char ts[NB_ISO8601_LEN];
    now_iso(ts);
    if (log->format == NB_LOG_JSON) {
        json_t *o = json_pack("{s:s, s:s, s:s}", "time", ts, "level", level, "msg",
                              nb_buf_cstr(&msg));
        char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
        if (s) nb_buf_adds(&line, s);
        free(s);
        json_decref(o);
    } else {
        nb_buf_printf(&line, "%s %s %s", ts, level, nb_buf_cstr(&msg));
    }
    if (line.len) emit(&line);
    nb_buf_cleanup(&msg);
    nb_buf_cleanup(&line);
}

void nb_log_info(const struct nb_log *log, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(log, "info", fmt, ap);
    va_end(ap);
}

void nb_log_error(const struct nb_log *log, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(log, "error", fmt, ap);
    va_end(ap);
}
