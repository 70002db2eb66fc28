/* Storage error table and the XML / OData JSON error bodies
 * (src/storage/errors.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "storage/errors.h"

#define RID "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
#define NOW 1795311415123 /* 2026-11-22T01:36:55.123Z */
#define TAIL "\nRequestId:" RID "\nTime:2026-11-22T01:36:55.1230000Z"

static void setup_req(struct nb_req *req, struct nb_resp *resp, size_t body_max)
{
    memset(req, 0, sizeof(*req));
    memset(resp, 0, sizeof(*resp));
    nb_arena_init(&req->arena);
    snprintf(req->request_id, sizeof(req->request_id), "%s", RID);
    req->now = NOW;
    req->method = "GET";
    nb_buf_init(&resp->body, body_max);
}

static void teardown_req(struct nb_req *req, struct nb_resp *resp)
{
    nb_buf_cleanup(&resp->body);
    nb_arena_cleanup(&req->arena);
}

static void test_find(void **state)
{
    (void)state;
    const struct nb_storage_error *e = nb_storage_error_find("QueueNotFound");
    assert_non_null(e);
    assert_int_equal(e->status, 404);
    assert_string_equal(e->message, "The specified queue does not exist.");
    e = nb_storage_error_find("PopReceiptMismatch");
    assert_non_null(e);
    assert_int_equal(e->status, 400);
    assert_int_equal(nb_storage_error_find("RequestBodyTooLarge")->status, 413);
    assert_int_equal(nb_storage_error_find("UnsupportedHttpVerb")->status, 405);
    assert_int_equal(nb_storage_error_find("UpdateConditionNotSatisfied")->status, 412);
    assert_int_equal(nb_storage_error_find("TableAlreadyExists")->status, 409);
    assert_int_equal(nb_storage_error_find("JsonFormatNotSupported")->status, 415);
    assert_int_equal(nb_storage_error_find("NotImplemented")->status, 501);
    assert_int_equal(nb_storage_error_find("CorsPreflightFailure")->status, 403);
    assert_string_equal(nb_storage_error_find("InvalidResourceName")->message,
                        "The specifed resource name contains invalid characters.");
    assert_null(nb_storage_error_find("NoSuchCode"));
    assert_null(nb_storage_error_find("queuenotfound")); /* exact case */
    assert_null(nb_storage_error_find(NULL));
}

static void test_xml_shape(void **state)
{
    (void)state;
    struct nb_req req;
    struct nb_resp resp;
    setup_req(&req, &resp, 1 << 16);
    nb_storage_error_xml(&req, &resp, "QueueNotFound", NULL, NULL, 0);
    assert_int_equal(resp.status, 404);
    assert_string_equal(resp.error_code, "QueueNotFound");
    assert_string_equal(nb_resp_get_header(&resp, "x-ms-error-code"), "QueueNotFound");
    assert_string_equal(nb_resp_get_header(&resp, "Content-Type"), "application/xml");
    assert_string_equal(
        nb_buf_cstr(&resp.body),
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>QueueNotFound</Code>"
        "<Message>The specified queue does not exist." TAIL "</Message></Error>");
    teardown_req(&req, &resp);
}

static void test_xml_extra_and_escaping(void **state)
{
    (void)state;
    struct nb_req req;
    struct nb_resp resp;
    setup_req(&req, &resp, 1 << 16);
    /* A handler's earlier body and content type are replaced. */
    nb_buf_adds(&resp.body, "partial");
    nb_resp_header(&req, &resp, "Content-Type", "text/plain");
    static const char bad[] = {'a', '\0', '<', (char)0xff, 'b'};
    struct nb_kv extra[] = {
        {"QueryParameterName", "numofmessages", 0},
        {"QueryParameterValue", bad, sizeof(bad)},
        {"MinimumAllowed", "1", 0},
        {"MaximumAllowed", "32", 0},
    };
    nb_storage_error_xml(&req, &resp, "OutOfRangeQueryParameterValue", "Custom & <msg>", extra, 4);
    assert_int_equal(resp.status, 400);
    assert_string_equal(nb_resp_get_header(&resp, "Content-Type"), "application/xml");
    size_t ct = 0;
    for (size_t i = 0; i < resp.nheaders; i++)
        if (strcmp(resp.headers[i].name, "Content-Type") == 0) ct++;
    assert_int_equal(ct, 1);
    assert_string_equal(
        nb_buf_cstr(&resp.body),
        "<?xml version=\"1.0\" "
        "encoding=\"utf-8\"?><Error><Code>OutOfRangeQueryParameterValue</Code>"
        "<Message>Custom &amp; &lt;msg&gt;" TAIL "</Message>"
        "<QueryParameterName>numofmessages</QueryParameterName>"
        "<QueryParameterValue>a\xEF\xBF\xBD&lt;\xEF\xBF\xBD"
        "b</QueryParameterValue>"
        "<MinimumAllowed>1</MinimumAllowed><MaximumAllowed>32</MaximumAllowed></Error>");
    teardown_req(&req, &resp);
}

static void test_xml_unknown_code(void **state)
{
    (void)state;
    struct nb_req req;
    struct nb_resp resp;
    setup_req(&req, &resp, 1 << 16);
    nb_storage_error_xml(&req, &resp, "SomethingNew", NULL, NULL, 0);
    assert_int_equal(resp.status, 500);
    assert_string_equal(nb_resp_get_header(&resp, "x-ms-error-code"), "SomethingNew");
    assert_non_null(strstr(nb_buf_cstr(&resp.body), "<Code>SomethingNew</Code><Message>The server "
                                                    "encountered an internal error."));
    teardown_req(&req, &resp);
}

static void test_xml_body_too_small(void **state)
{
    (void)state;
    struct nb_req req;
    struct nb_resp resp;
    setup_req(&req, &resp, 16);
    nb_storage_error_xml(&req, &resp, "AuthenticationFailed", NULL, NULL, 0);
    assert_int_equal(resp.status, 403);
    assert_string_equal(nb_resp_get_header(&resp, "x-ms-error-code"), "AuthenticationFailed");
    assert_int_equal(resp.body.len, 0);
    teardown_req(&req, &resp);
}

static void test_json_shape(void **state)
{
    (void)state;
    struct nb_req req;
    struct nb_resp resp;
    setup_req(&req, &resp, 1 << 16);
    nb_storage_error_json(&req, &resp, "TableAlreadyExists", NULL);
    assert_int_equal(resp.status, 409);
    assert_string_equal(resp.error_code, "TableAlreadyExists");
    assert_string_equal(nb_resp_get_header(&resp, "x-ms-error-code"), "TableAlreadyExists");
    assert_string_equal(nb_resp_get_header(&resp, "Content-Type"),
                        "application/json;odata=minimalmetadata;streaming=true;charset=utf-8");
    assert_string_equal(nb_buf_cstr(&resp.body),
                        "{\"odata.error\":{\"code\":\"TableAlreadyExists\",\"message\":{\"lang\":"
                        "\"en-US\",\"value\":\"The table specified already exists.\\nRequestId:" RID
                        "\\nTime:2026-11-22T01:36:55.1230000Z\"}}}");
    teardown_req(&req, &resp);
}

static void test_json_message_and_bad_utf8(void **state)
{
    (void)state;
    struct nb_req req;
    struct nb_resp resp;
    setup_req(&req, &resp, 1 << 16);
    nb_storage_error_json(&req, &resp, "EntityAlreadyExists", "1:The \"x\" \xC3\x28 \xC3\xA9");
    assert_int_equal(resp.status, 409);
    json_error_t jerr;
    json_t *doc = json_loads(nb_buf_cstr(&resp.body), 0, &jerr);
    assert_non_null(doc);
    json_t *err = json_object_get(doc, "odata.error");
    assert_int_equal(json_object_size(err), 2);
    assert_string_equal(json_string_value(json_object_get(err, "code")), "EntityAlreadyExists");
    json_t *msg = json_object_get(err, "message");
    assert_string_equal(json_string_value(json_object_get(msg, "lang")), "en-US");
    assert_string_equal(json_string_value(json_object_get(msg, "value")),
                        "1:The \"x\" \xEF\xBF\xBD( \xC3\xA9" TAIL);
    json_decref(doc);

    nb_storage_error_json(&req, &resp, "Unheard", NULL);
    assert_int_equal(resp.status, 500);
    assert_non_null(strstr(nb_buf_cstr(&resp.body), "\"code\":\"Unheard\""));
    teardown_req(&req, &resp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_find),
        cmocka_unit_test(test_xml_shape),
        cmocka_unit_test(test_xml_extra_and_escaping),
        cmocka_unit_test(test_xml_unknown_code),
        cmocka_unit_test(test_xml_body_too_small),
        cmocka_unit_test(test_json_shape),
        cmocka_unit_test(test_json_message_and_bad_utf8),
    };
    return cmocka_run_group_tests_name("storage/errors", tests, NULL, NULL);
}
