/* Request and event logging to stderr: one line per record, as text or as
 * JSON (--log-format json). Callers must never pass secrets: request URLs
 * go through nb_log_redact_query first. Thread-safe (one write per line). */
#ifndef NB_CORE_LOG_H
#define NB_CORE_LOG_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "core/buf.h"

enum nb_log_format { NB_LOG_TEXT, NB_LOG_JSON };

struct nb_log {
    enum nb_log_format format;
    bool quiet; /* no per-request lines */
};

struct nb_log_request {
    const char *service;   /* "queue", "host", ... */
    const char *method;
    const char *url;       /* raw path + query; redacted inside nb_log_request */
    int status;
    const char *error_code; /* may be NULL */
    const char *request_id;
    int64_t duration_us;
};

void nb_log_request(const struct nb_log *log, const struct nb_log_request *r);
/* A free-form event line (start-up, shutdown, worker crashes). */
void nb_log_info(const struct nb_log *log, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void nb_log_error(const struct nb_log *log, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Append url to b with the values of secret-bearing query parameters (sig,
 * code) replaced by "REDACTED". */
enum nb_err nb_log_redact_query(struct nb_buf *b, const char *url);

#endif
