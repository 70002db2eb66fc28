/* CORS for the storage services, evaluated from the stored service
 * properties document (service_props.h): rule parsing, Azure's matching
 * rules, the OPTIONS preflight answer and the headers added to actual
 * requests. Reads no state of its own; the caller passes the document. */
#ifndef NB_STORAGE_CORS_H
#define NB_STORAGE_CORS_H
#include "core/err.h"
#include "http/request.h"
#include "storage/service_props.h"
#include <stddef.h>

struct nb_cors_rule {
    char *origins;         /* comma list, or "*"; heap */
    char *methods;         /* comma list of verbs; heap */
    char *allowed_headers; /* comma list; "x-ms-meta-*" prefixes, "*"; heap, may be "" */
    char *exposed_headers; /* same shape; heap, may be "" */
    long max_age;
};

struct nb_cors {
    struct nb_cors_rule rules[NB_CORS_MAX_RULES];
    size_t n;
};

/* Read the CorsRule elements of a service properties document into *out
 * (overwritten). props_xml NULL means no rules (NB_OK, n == 0). Rules past
 * the fifth are ignored; a missing or non-numeric MaxAgeInSeconds reads as 0.
 * NB_ERR_INVALID when the document is not well-formed or its root is not
 * StorageServiceProperties (out then has no rules). On NB_OK the strings
 * belong to *out: release them with nb_cors_cleanup(). */
enum nb_err nb_cors_parse(const char *props_xml, struct nb_cors *out);

/* Free the rule strings; *c is left empty and may be reused. NULL is fine. */
void nb_cors_cleanup(struct nb_cors *c);

/* The first rule that allows this request, or NULL. A rule matches when:
 * the origin equals one of its AllowedOrigins (ASCII case-insensitive,
 * surrounding spaces ignored) or they include "*"; the method is one of its
 * AllowedMethods (case-insensitive); and every comma-separated name in
 * request_headers (may be NULL or "") is allowed exactly, by a "prefix*"
 * pattern, or by "*" (all case-insensitive). Any NULL argument but
 * request_headers gives NULL. The result points into *c. */
const struct nb_cors_rule *nb_cors_match(const struct nb_cors *c, const char *origin,
                                         const char *method, const char *request_headers);

/* Answer an OPTIONS preflight into resp (body discarded; no auth needed):
 *   Origin or Access-Control-Request-Method missing/empty
 *       -> 400 MissingRequiredHeader with <HeaderName> (Azure: 400);
 *   a rule matches -> 200, empty body, Access-Control-Allow-Origin (the
 *       request's origin, or "*" when only the rule's "*" matched it),
 *       Access-Control-Allow-Methods (the requested method),
 *       Access-Control-Allow-Headers (the requested headers, when any),
 *       Access-Control-Max-Age, and Access-Control-Allow-Credentials: true
 *       unless the origin answered is "*";
 *   no rule, no CORS configured, or an unreadable document
 *       -> 403 CorsPreflightFailure (XML error).
 * props_xml: the stored properties, or NULL for none. */
void nb_cors_preflight(struct nb_req *req, struct nb_resp *resp, const char *props_xml);

/* For an actual request: when it carries Origin and a rule matches that
 * origin and req->method, add Access-Control-Allow-Origin (as in the
 * preflight), Access-Control-Expose-Headers (the rule's ExposedHeaders,
 * followed by the names of response headers a "prefix*" entry matches, so
 * call this after the handler has set its headers; omitted when empty),
 * Access-Control-Allow-Credentials: true unless the origin answered is "*",
 * and Origin in Vary (appended to an existing Vary). Otherwise, including an
 * unreadable document, resp is left untouched. */
void nb_cors_decorate(struct nb_req *req, struct nb_resp *resp, const char *props_xml);

#endif
