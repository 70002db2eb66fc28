/* The storage error table (one row per Azure code) and the two error body
 * shapes (see errors.h). Owns only the static table; every string it
 * produces lives in the request's arena or in resp->body. Messages are
 * Azure's own wording, typos included ("specifed"), because clients and
 * tests compare them. */
#include "storage/errors.h"
#include "core/timefmt.h"
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const struct nb_storage_error table[] = {
    /* queue service */
    {"QueueNotFound", 404, "The specified queue does not exist."},
    {"QueueAlreadyExists", 409, "The specified queue already exists."},
    {"QueueBeingDeleted", 409, "The specified queue is being deleted."},
    {"QueueDisabled", 409, "The specified queue has been disabled by the administrator."},
    {"QueueNotEmpty", 409, "The specified queue is not empty."},
    {"MessageNotFound", 404, "The specified message does not exist."},
    {"PopReceiptMismatch", 400,
     "The specified pop receipt did not match the pop receipt for a dequeued message."},
    {"MessageTooLarge", 400, "The message exceeds the maximum allowed size."},
    {"InvalidMarker", 400, "The specified marker is invalid."},

    /* common to all storage services */
    {"InvalidQueryParameterValue", 400,
     "Value for one of the query parameters specified in the request URI is invalid."},
    {"OutOfRangeQueryParameterValue", 400,
     "One of the query parameters specified in the request URI is outside the permissible range."},
    {"MissingRequiredQueryParameter", 400,
     "A query parameter that's mandatory for this request is not specified."},
    {"UnsupportedQueryParameter", 400,
     "One of the query parameters specified in the request URI is not supported."},
    {"InvalidResourceName", 400, "The specifed resource name contains invalid characters."},
    {"OutOfRangeInput", 400,
     "The specified resource name length is not within the permissible limits."},
    {"InvalidInput", 400, "One of the request inputs is not valid."},
    {"InvalidXmlDocument", 400, "XML specified is not syntactically valid."},
    {"InvalidXmlNodeValue", 400,
     "The value for one of the XML nodes is not in the correct format."},
    {"MissingRequiredXmlNode", 400,
     "An XML node that's mandatory for this request is not specified."},
    {"UnsupportedXmlNode", 400,
     "One of the XML nodes specified in the request body is not supported."},
    {"InvalidHeaderValue", 400,
     "The value for one of the HTTP headers is not in the correct format."},
    {"MissingRequiredHeader", 400,
     "An HTTP header that's mandatory for this request is not specified."},
    {"UnsupportedHeader", 400,
     "One of the HTTP headers specified in the request is not supported."},
    {"InvalidMetadata", 400,
     "The metadata specified is invalid. It has characters that are not permitted."},
    {"EmptyMetadataKey", 400, "The key for one of the metadata key-value pairs is empty."},
    {"MetadataTooLarge", 400,
     "The size of the specified metadata exceeds the maximum size permitted."},
    {"InvalidMd5", 400,
     "The MD5 value specified in the request is invalid. The MD5 value must be 128 bits and "
     "Base64-encoded."},
    {"Md5Mismatch", 400,
     "The MD5 value specified in the request did not match the MD5 value calculated by the "
     "server."},
    {"InvalidUri", 400, "The requested URI does not represent any resource on the server."},
    {"RequestUrlFailedToParse", 400, "The URL in the request could not be parsed."},
    {"InvalidHttpVerb", 400, "The HTTP verb specified was not recognized by the server."},
    {"InvalidAuthenticationInfo", 400,
     "Authentication information is not given in the correct format. Check the value of "
     "Authorization header."},
    {"NoAuthenticationInformation", 401,
     "Server failed to authenticate the request. Please refer to the information in the "
     "www-authenticate header."},
    {"AuthenticationFailed", 403,
     "Server failed to authenticate the request. Make sure the value of Authorization header is "
     "formed correctly including the signature."},
    {"AuthorizationFailure", 403, "This request is not authorized to perform this operation."},
    {"AuthorizationPermissionMismatch", 403,
     "This request is not authorized to perform this operation using this permission."},
    {"AuthorizationServiceMismatch", 403,
     "This request is not authorized to perform this operation using this service."},
    {"AuthorizationResourceTypeMismatch", 403,
     "This request is not authorized to perform this operation using this resource type."},
    {"AuthorizationProtocolMismatch", 403,
     "This request is not authorized to perform this operation using this protocol."},
    {"AuthorizationSourceIPMismatch", 403,
     "This request is not authorized to perform this operation using this source IP."},
    {"InsufficientAccountPermissions", 403,
     "The account being accessed does not have sufficient permissions to execute this operation."},
    {"AccountIsDisabled", 403, "The specified account is disabled."},
    {"CorsPreflightFailure", 403, "CORS not enabled or no matching rule found for this request."},
    {"ResourceNotFound", 404, "The specified resource does not exist."},
    {"ResourceAlreadyExists", 409, "The specified resource already exists."},
    {"UnsupportedHttpVerb", 405, "The resource doesn't support specified Http Verb."},
    {"MissingContentLengthHeader", 411, "The Content-Length header was not specified."},
    {"ConditionNotMet", 412,
     "The condition specified using HTTP conditional header(s) is not met."},
    {"RequestBodyTooLarge", 413,
     "The request body is too large and exceeds the maximum permissible limit."},
    {"InternalError", 500, "The server encountered an internal error. Please retry the request."},
    {"OperationTimedOut", 500, "The operation could not be completed within the permitted time."},
    {"ServerBusy", 503,
     "The server is currently unable to receive requests. Please retry your request."},

    /* table service (protocol spec section 3.7) */
    {"TableNotFound", 404, "The table specified does not exist."},
    {"TableAlreadyExists", 409, "The table specified already exists."},
    {"TableBeingDeleted", 409, "The specified table is being deleted. Try operation later."},
    {"EntityNotFound", 404, "The specified entity does not exist."},
    {"EntityAlreadyExists", 409, "The specified entity already exists."},
    {"UpdateConditionNotSatisfied", 412,
     "The update condition specified in the request was not satisfied."},
    {"PropertyValueTooLarge", 400,
     "The property value exceeds the maximum allowed size (64KB). If the property value is a "
     "string, it is UTF-16 encoded and the maximum number of characters should be 32K or less."},
    {"EntityTooLarge", 400, "The entity is larger than the maximum allowed size (1MB)."},
    {"TooManyProperties", 400,
     "The entity contains more properties than allowed. Each entity can include up to 252 "
     "properties to store data. Each entity also has 3 system properties."},
    {"PropertyNameInvalid", 400, "The property name is invalid."},
    {"PropertyNameTooLong", 400, "The property name exceeds the maximum allowed length (255)."},
    {"PropertiesNeedValue", 400,
     "Values have not been specified for all properties in the entity."},
    {"DuplicatePropertiesSpecified", 400, "A property is specified more than one time."},
    {"InvalidValueType", 400, "The value specified is invalid."},
    {"InvalidDuplicateRow", 400,
     "The batch request contains multiple changes with same row key. An entity can appear only "
     "once in a batch request."},
    {"CommandsInBatchActOnDifferentPartitions", 400,
     "All commands in a batch must operate on same entity group."},
    {"XMethodNotUsingPost", 400,
     "The request uses X-HTTP-Method with an HTTP verb other than POST."},
    {"XMethodIncorrectValue", 400, "The specified X-HTTP-Method is invalid."},
    {"XMethodIncorrectCount", 400, "More than one X-HTTP-Method is specified."},
    {"MethodNotAllowed", 405, "The requested method is not allowed on the specified resource."},
    {"JsonFormatNotSupported", 415, "JSON format is not supported."},
    {"AtomFormatNotSupported", 415, "Atom format is not supported."},
    {"NotImplemented", 501,
     "The requested operation is not implemented on the specified resource."},
};

#define XML_MAX_BODY ((size_t)1 << 20)

const struct nb_storage_error *nb_storage_error_find(const char *code)
{
    if (!code) return NULL;
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
        if (strcmp(table[i].code, code) == 0) return &table[i];
    return NULL;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes) and its code
 * point, or 0 when the bytes there are not valid UTF-8 (overlong forms,
 * surrogates and values past U+10FFFF are invalid). */
static size_t utf8_seq(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned char c = s[0];
    size_t len;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xE0) == 0xC0) {
        len = 2, v = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3, v = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (len > n) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    *cp = v;
    return len;
}

/* An arena copy of s[0..n) that is valid UTF-8 and holds only characters an
 * XML 1.0 document may carry; anything else becomes U+FFFD. */
static char *clean_text(struct nb_req *req, const char *s, size_t n)
{
    static const char repl[] = "\xEF\xBF\xBD";
    char *out = nb_arena_alloc(&req->arena, n * 3 + 1); /* 1 bad byte -> 3 bytes */
    size_t o = 0;
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        uint32_t cp = 0;
        size_t l = utf8_seq(u + i, n - i, &cp);
        int ok = l != 0 && (cp >= 0x20 || cp == '\t' || cp == '\n' || cp == '\r') && cp != 0xFFFE &&
                 cp != 0xFFFF;
        if (ok) {
            memcpy(out + o, s + i, l);
            o += l;
            i += l;
        } else {
            memcpy(out + o, repl, 3);
            o += 3;
            i += l ? l : 1;
        }
    }
    out[o] = '\0';
    return out;
}

/* Status, default message and the two headers common to both shapes. */
static const char *begin(struct nb_req *req, struct nb_resp *resp, const char *code,
                         const char *message, const char *content_type)
{
    const struct nb_storage_error *e = nb_storage_error_find(code);
    if (!code) code = "InternalError";
    resp->status = e ? e->status : 500;
    if (!message) message = e ? e->message : nb_storage_error_find("InternalError")->message;
    resp->error_code = nb_arena_strdup(&req->arena, code);
    nb_resp_set_header(req, resp, "x-ms-error-code", code);
    nb_resp_set_header(req, resp, "Content-Type", content_type);
    nb_buf_reset(&resp->body);
    return message;
}

void nb_storage_error_xml(struct nb_req *req, struct nb_resp *resp, const char *code,
                          const char *message, const struct nb_kv *extra, size_t nextra)
{
    char when[NB_ISO8601_LEN];
    message = begin(req, resp, code, message, "application/xml");
    if (!code) code = "InternalError";
    nb_time_iso8601(req->now, when);
    const char *text = clean_text(req, message, strlen(message));
    const char *ccode = clean_text(req, code, strlen(code));
    struct nb_buf *b = &resp->body;
    enum nb_err rc = nb_buf_adds(b, "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>");
    if (!rc) rc = nb_buf_add_xml(b, ccode, strlen(ccode));
    if (!rc) rc = nb_buf_adds(b, "</Code><Message>");
    if (!rc) rc = nb_buf_add_xml(b, text, strlen(text));
    if (!rc) rc = nb_buf_adds(b, "\nRequestId:");
    if (!rc) rc = nb_buf_add_xml(b, req->request_id, strlen(req->request_id));
    if (!rc) rc = nb_buf_printf(b, "\nTime:%s</Message>", when);
    for (size_t i = 0; !rc && i < nextra; i++) {
        const char *v = extra[i].value ? extra[i].value : "";
        size_t vlen = extra[i].value_len ? extra[i].value_len : strlen(v);
        const char *cv = clean_text(req, v, vlen);
        rc = nb_buf_printf(b, "<%s>", extra[i].name);
        if (!rc) rc = nb_buf_add_xml(b, cv, strlen(cv));
        if (!rc) rc = nb_buf_printf(b, "</%s>", extra[i].name);
    }
    if (!rc) rc = nb_buf_adds(b, "</Error>");
    if (rc) nb_buf_reset(b);
}

void nb_storage_error_json(struct nb_req *req, struct nb_resp *resp, const char *code,
                           const char *message)
{
    char when[NB_ISO8601_LEN];
    message = begin(req, resp, code, message,
                    "application/json;odata=minimalmetadata;streaming=true;charset=utf-8");
    if (!code) code = "InternalError";
    nb_time_iso8601(req->now, when);
    const char *value =
        nb_arena_printf(&req->arena, "%s\nRequestId:%s\nTime:%s", message, req->request_id, when);
    value = clean_text(req, value, strlen(value));
    const char *ccode = clean_text(req, code, strlen(code));
    /* jansson keeps insertion order, so the keys come out as the SDK's
     * _decode_error expects them: code, then message{lang, value}. */
    json_t *root = json_pack("{s:{s:s,s:{s:s,s:s}}}", "odata.error", "code", ccode, "message",
                             "lang", "en-US", "value", value);
    char *text = root ? json_dumps(root, JSON_COMPACT) : NULL;
    if (!text || nb_buf_adds(&resp->body, text)) nb_buf_reset(&resp->body);
    free(text);
    json_decref(root);
}
