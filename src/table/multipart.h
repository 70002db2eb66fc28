/* Framing of table-service batches (entity group transactions,
 * storage-queue-table.md §3.6): the multipart/mixed request parser and the
 * multipart/mixed response writer. This module knows MIME and the embedded
 * HTTP/1.1 messages only; what an operation means (tables, keys, entities)
 * belongs to batch.c. Invariant: the parser never reads outside
 * [body, body + len) and allocates only from the arena it is given. */
#ifndef NB_TABLE_MULTIPART_H
#define NB_TABLE_MULTIPART_H
#include <stdbool.h>
#include <stddef.h>
#include "core/arena.h"
#include "core/buf.h"
#include "core/err.h"
#include "http/request.h"

#define NB_MULTIPART_MAX_OPS 100     /* operations per changeset (Azure) */
#define NB_MULTIPART_MAX_HEADERS 100 /* header lines per embedded request */
#define NB_MULTIPART_MAX_BOUNDARY 70 /* RFC 2046 §5.1.1 */

/* One operation of the changeset: an embedded HTTP request. Every string is
 * NUL-terminated in the arena, except `body`, which points into the batch
 * body the parser was given (borrowed: valid as long as that body is). */
struct nb_batch_op {
    const char *method;     /* request-line method as sent ("POST", "MERGE", ...) */
    const char *path;       /* raw %-encoded path, "/" first, scheme://host[:port] removed */
    const char *query;      /* raw query after '?', "" when none */
    struct nb_kv *headers;  /* in arrival order; names as sent, values trimmed */
    size_t nheaders;
    const char *body;       /* not NUL-terminated; never NULL (may be length 0) */
    size_t body_len;
    const char *content_id; /* MIME Content-ID of the part, NULL when absent */
};

struct nb_batch {
    struct nb_batch_op *ops; /* arena */
    size_t n;
};

/* Parse a batch request.
 *   content_type  the outer Content-Type header value (may be NULL): must be
 *                 multipart/mixed with a boundary parameter (quoted or not);
 *   body, len     the request body (body may be NULL when len is 0).
 * The body must hold exactly one part, the changeset: a nested
 * multipart/mixed with its own boundary, whose parts are application/http
 * (Content-Transfer-Encoding binary, 7bit or 8bit) embedded requests:
 * "METHOD URL HTTP/1.x", headers, blank line, body. The body runs for
 * Content-Length bytes when that header is present (only line-break or blank
 * bytes may follow it before the boundary), else up to the line break that
 * precedes the next boundary. Lines may end with CRLF or bare LF. A preamble
 * before the first boundary and an epilogue after the closing one are
 * ignored, as RFC 2046 says.
 * Returns NB_OK and fills *out (arena memory); NB_ERR_INVALID for malformed
 * framing, with *why set to a static sentence for the error message;
 * NB_ERR_TOO_LARGE when the changeset holds more than NB_MULTIPART_MAX_OPS
 * operations (parsing stops there; *why is set too). An empty changeset is
 * valid (out->n == 0): whether to accept it is the caller's decision. */
enum nb_err nb_multipart_parse(const char *content_type, const char *body, size_t len,
                               struct nb_arena *arena, struct nb_batch *out, const char **why);

/* Case-insensitive header lookup in an operation; NULL when absent. */
const char *nb_batch_op_header(const struct nb_batch_op *op, const char *name);

/* The result of one operation, as the response writer frames it. */
struct nb_batch_result {
    int status;                  /* 201, 204, 404, ... */
    const struct nb_kv *headers; /* written in order, after the status line */
    size_t nheaders;             /* value_len is ignored: values are C strings */
    const char *body;            /* may be NULL */
    size_t body_len;
};

/* Reason phrase of an HTTP status ("No Content"); "Unknown" for codes this
 * service never sends. Static. */
const char *nb_multipart_reason(int status);

/* Append a batch response to `out`:
 *   --batchresponse_<batch_id>
 *   Content-Type: multipart/mixed; boundary=changesetresponse_<cs_id>
 *
 *   then per result: --changesetresponse_<cs_id>, Content-Type:
 *   application/http, Content-Transfer-Encoding: binary, blank line,
 *   "HTTP/1.1 <status> <reason>", the headers, blank line, the body, CRLF;
 *   --changesetresponse_<cs_id>--
 *   --batchresponse_<batch_id>--
 * all with CRLF line ends. The failure shape is the same call with the one
 * failing result (n == 1). The ids are borrowed (normally fresh UUIDs).
 * *content_type (arena of `arena`) receives the outer Content-Type value:
 * "multipart/mixed; boundary=batchresponse_<batch_id>".
 * Returns NB_ERR_TOO_LARGE (out unchanged in length) when the response does
 * not fit out's maximum. */
enum nb_err nb_multipart_write_response(const struct nb_batch_result *results, size_t n,
                                        const char *batch_id, const char *cs_id,
                                        struct nb_arena *arena, struct nb_buf *out,
                                        const char **content_type);

#endif
