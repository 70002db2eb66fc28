/* Storage error table and error bodies, shared by the queue and table
 * services: one row per Azure error code (code, HTTP status, Azure's default
 * message), the XML body (queue, and the table service's XML operations) and
 * the OData JSON body (table). The table is static and read-only. */
#ifndef NB_STORAGE_ERRORS_H
#define NB_STORAGE_ERRORS_H
#include "http/request.h"
#include <stddef.h>

struct nb_storage_error {
    const char *code;    /* e.g. "QueueNotFound" */
    int status;          /* HTTP status */
    const char *message; /* Azure's wording, without RequestId/Time */
};

/* The row for `code` (exact, case-sensitive match), or NULL when the code is
 * unknown or NULL. The result points into a static table. */
const struct nb_storage_error *nb_storage_error_find(const char *code);

/* Turn `resp` into an Azure XML error:
 *   status    from the table; 500 when `code` is unknown;
 *   headers   x-ms-error-code: <code>, Content-Type: application/xml
 *             (both replace any earlier value);
 *   error_code  an arena copy of `code`;
 *   body      (any earlier body is discarded)
 *     <?xml version="1.0" encoding="utf-8"?><Error><Code>code</Code>
 *     <Message>message\nRequestId:<req->request_id>\nTime:<req->now, ISO 8601,
 *     7 digits>Z</Message>[<Name>value</Name> for each extra]</Error>
 * `message` NULL means the table's default (for an unknown code, the
 * InternalError message). `extra` holds nextra name/value pairs (extra may be
 * NULL when nextra is 0): names are emitted verbatim and must be valid XML
 * names (AuthenticationErrorDetail, QueryParameterName, HeaderName, ...);
 * values are XML-escaped, their length is value_len when non-zero, else
 * strlen(value). Invalid UTF-8 and control characters XML cannot carry are
 * replaced by U+FFFD, so any client input can be echoed safely.
 * Strings are borrowed for the call. If the body does not fit resp->body's
 * maximum the body is left empty (status and headers are still set). */
void nb_storage_error_xml(struct nb_req *req, struct nb_resp *resp, const char *code,
                          const char *message, const struct nb_kv *extra, size_t nextra);

/* Turn `resp` into a table-service OData error, exactly
 *   {"odata.error":{"code":"<code>","message":{"lang":"en-US",
 *    "value":"<message>\nRequestId:<id>\nTime:<ISO 8601>"}}}
 * with x-ms-error-code, Content-Type
 * application/json;odata=minimalmetadata;streaming=true;charset=utf-8, and
 * status/error_code/default message as for nb_storage_error_xml. Nothing
 * else ever goes inside "odata.error" (the Python SDK breaks on extra keys).
 * `message` is borrowed; invalid UTF-8 in it is replaced by U+FFFD. A batch
 * handler that needs the "<index>:" prefix passes it inside `message`. */
void nb_storage_error_json(struct nb_req *req, struct nb_resp *resp, const char *code,
                           const char *message);

#endif
