/* CORS rule parsing, matching, preflight answers and actual-request
 * decoration (src/storage/cors.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <libxml/parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "storage/cors.h"
#include "storage/service_props.h"

#define PROPS(rules)                                                                               \
    "<?xml version=\"1.0\" encoding=\"utf-8\"?><StorageServiceProperties><Logging><Version>"       \
    "1.0</Version><Delete>false</Delete><Read>false</Read><Write>false</Write>"                    \
    "<RetentionPolicy><Enabled>false</Enabled></RetentionPolicy></Logging><Cors>" rules            \
    "</Cors></StorageServiceProperties>"
#define RULE(o, m, ah, eh, age)                                                                    \
    "<CorsRule><AllowedOrigins>" o "</AllowedOrigins><AllowedMethods>" m "</AllowedMethods>"       \
    "<AllowedHeaders>" ah "</AllowedHeaders><ExposedHeaders>" eh "</ExposedHeaders>"               \
    "<MaxAgeInSeconds>" age "</MaxAgeInSeconds></CorsRule>"

static const char *const props =
    PROPS(RULE("http://a.test, HTTP://B.test", "GET,PUT", "x-ms-meta-*,content-type",
               "x-ms-meta-*,x-ms-request-id", "200") RULE("*", "GET, DELETE", "*", "", "60")
              RULE("http://c.test", "POST", "x-ms-version", "", "5"));

struct ctx {
    struct nb_req req;
    struct nb_resp resp;
    struct nb_kv headers[8];
};

static void setup_req(struct ctx *c, const char *method)
{
    memset(c, 0, sizeof(*c));
    nb_arena_init(&c->req.arena);
    snprintf(c->req.request_id, sizeof(c->req.request_id), "%s",
             "3f2504e0-4f89-11d3-9a0c-0305e82c3301");
    c->req.now = 1795311415123;
    c->req.method = method;
    c->req.headers = c->headers;
    nb_buf_init(&c->resp.body, 1 << 16);
}

static void add_header(struct ctx *c, const char *name, const char *value)
{
    c->headers[c->req.nheaders++] = (struct nb_kv){name, value, strlen(value)};
}

static void teardown_req(struct ctx *c)
{
    nb_buf_cleanup(&c->resp.body);
    nb_arena_cleanup(&c->req.arena);
}

static void test_parse(void **state)
{
    (void)state;
    struct nb_cors c;
    assert_int_equal(nb_cors_parse(props, &c), NB_OK);
    assert_int_equal(c.n, 3);
    assert_string_equal(c.rules[0].origins, "http://a.test, HTTP://B.test");
    assert_string_equal(c.rules[0].methods, "GET,PUT");
    assert_string_equal(c.rules[0].allowed_headers, "x-ms-meta-*,content-type");
    assert_string_equal(c.rules[0].exposed_headers, "x-ms-meta-*,x-ms-request-id");
    assert_int_equal(c.rules[0].max_age, 200);
    assert_string_equal(c.rules[1].exposed_headers, "");
    assert_int_equal(c.rules[2].max_age, 5);
    nb_cors_cleanup(&c);
    assert_int_equal(c.n, 0);

    assert_int_equal(nb_cors_parse(NULL, &c), NB_OK);
    assert_int_equal(c.n, 0);
    assert_int_equal(nb_cors_parse(nb_service_props_default(), &c), NB_OK);
    assert_int_equal(c.n, 0);
    assert_int_equal(nb_cors_parse("<oops", &c), NB_ERR_INVALID);
    assert_int_equal(c.n, 0);
    assert_int_equal(nb_cors_parse("<Other/>", &c), NB_ERR_INVALID);
    nb_cors_cleanup(NULL);
}

static void test_match(void **state)
{
    (void)state;
    struct nb_cors c;
    assert_int_equal(nb_cors_parse(props, &c), NB_OK);
    /* exact origin, case-insensitive, spaces around list items ignored */
    assert_ptr_equal(nb_cors_match(&c, "http://a.test", "GET", NULL), &c.rules[0]);
    assert_ptr_equal(nb_cors_match(&c, "http://b.TEST", "put", ""), &c.rules[0]);
    /* wildcard header patterns */
    assert_ptr_equal(nb_cors_match(&c, "http://a.test", "PUT", "x-ms-meta-abc, Content-Type"),
                     &c.rules[0]);
    /* a header rule 0 does not allow falls through to the "*" rule for GET ... */
    assert_ptr_equal(nb_cors_match(&c, "http://a.test", "GET", "x-ms-meta-a,x-custom"),
                     &c.rules[1]);
    /* ... but not for PUT, which only rule 0 allows */
    assert_null(nb_cors_match(&c, "http://a.test", "PUT", "x-custom"));
    /* "x-ms-meta-*" needs the prefix; "x-ms-meta" alone is not covered */
    assert_null(nb_cors_match(&c, "http://a.test", "PUT", "x-ms-meta"));
    /* any origin through "*" */
    assert_ptr_equal(nb_cors_match(&c, "http://z.test", "DELETE", "anything"), &c.rules[1]);
    assert_ptr_equal(nb_cors_match(&c, "http://c.test", "POST", "X-MS-VERSION"), &c.rules[2]);
    /* no match */
    assert_null(nb_cors_match(&c, "http://c.test", "POST", "x-ms-date"));
    assert_null(nb_cors_match(&c, "http://z.test", "PUT", NULL));
    assert_null(nb_cors_match(&c, "http://a.test.evil", "PUT", NULL));
    assert_null(nb_cors_match(&c, NULL, "GET", NULL));
    assert_null(nb_cors_match(&c, "http://a.test", NULL, NULL));
    assert_null(nb_cors_match(NULL, "http://a.test", "GET", NULL));
    nb_cors_cleanup(&c);
}

static void test_preflight_ok(void **state)
{
    (void)state;
    struct ctx c;
    setup_req(&c, "OPTIONS");
    add_header(&c, "Origin", "http://a.test");
    add_header(&c, "Access-Control-Request-Method", "PUT");
    add_header(&c, "Access-Control-Request-Headers", "x-ms-meta-one,content-type");
    nb_cors_preflight(&c.req, &c.resp, props);
    assert_int_equal(c.resp.status, 200);
    assert_null(c.resp.error_code);
    assert_int_equal(c.resp.body.len, 0);
    assert_string_equal(nb_resp_get_header(&c.resp, "Access-Control-Allow-Origin"),
                        "http://a.test");
    assert_string_equal(nb_resp_get_header(&c.resp, "Access-Control-Allow-Methods"), "PUT");
    assert_string_equal(nb_resp_get_header(&c.resp, "Access-Control-Allow-Headers"),
                        "x-ms-meta-one,content-type");
    assert_string_equal(nb_resp_get_header(&c.resp, "Access-Control-Max-Age"), "200");
    assert_string_equal(nb_resp_get_header(&c.resp, "Access-Control-Allow-Credentials"), "true");
    teardown_req(&c);

    /* through "*": the answer is "*" and no credentials */
    setup_req(&c, "OPTIONS");
    add_header(&c, "origin", "http://z.test");
    add_header(&c, "access-control-request-method", "DELETE");
    nb_cors_preflight(&c.req, &c.resp, props);
    assert_int_equal(c.resp.status, 200);
    assert_string_equal(nb_resp_get_header(&c.resp, "Access-Control-Allow-Origin"), "*");
    assert_null(nb_resp_get_header(&c.resp, "Access-Control-Allow-Headers"));
    assert_null(nb_resp_get_header(&c.resp, "Access-Control-Allow-Credentials"));
    assert_string_equal(nb_resp_get_header(&c.resp, "Access-Control-Max-Age"), "60");
    teardown_req(&c);
}

static void test_preflight_refused(void **state)
{
    (void)state;
    struct ctx c;
    /* no rule matches */
    setup_req(&c, "OPTIONS");
    add_header(&c, "Origin", "http://z.test");
    add_header(&c, "Access-Control-Request-Method", "PUT");
    nb_cors_preflight(&c.req, &c.resp, props);
    assert_int_equal(c.resp.status, 403);
    assert_string_equal(c.resp.error_code, "CorsPreflightFailure");
    assert_string_equal(nb_resp_get_header(&c.resp, "x-ms-error-code"), "CorsPreflightFailure");
    assert_non_null(strstr(nb_buf_cstr(&c.resp.body), "<Code>CorsPreflightFailure</Code>"));
    assert_null(nb_resp_get_header(&c.resp, "Access-Control-Allow-Origin"));
    teardown_req(&c);

    /* CORS not configured at all */
    setup_req(&c, "OPTIONS");
    add_header(&c, "Origin", "http://a.test");
    add_header(&c, "Access-Control-Request-Method", "GET");
    nb_cors_preflight(&c.req, &c.resp, nb_service_props_default());
    assert_int_equal(c.resp.status, 403);
    teardown_req(&c);
    setup_req(&c, "OPTIONS");
    add_header(&c, "Origin", "http://a.test");
    add_header(&c, "Access-Control-Request-Method", "GET");
    nb_cors_preflight(&c.req, &c.resp, NULL);
    assert_int_equal(c.resp.status, 403);
    teardown_req(&c);

    /* malformed preflights */
    setup_req(&c, "OPTIONS");
    add_header(&c, "Access-Control-Request-Method", "GET");
    nb_cors_preflight(&c.req, &c.resp, props);
    assert_int_equal(c.resp.status, 400);
    assert_non_null(strstr(nb_buf_cstr(&c.resp.body), "<HeaderName>Origin</HeaderName>"));
    teardown_req(&c);
    setup_req(&c, "OPTIONS");
    add_header(&c, "Origin", "http://a.test");
    nb_cors_preflight(&c.req, &c.resp, props);
    assert_int_equal(c.resp.status, 400);
    assert_non_null(strstr(nb_buf_cstr(&c.resp.body),
                           "<HeaderName>Access-Control-Request-Method</HeaderName>"));
    teardown_req(&c);
}

static void test_decorate(void **state)
{
    (void)state;
    struct ctx c;
    setup_req(&c, "GET");
    add_header(&c, "Origin", "http://a.test");
    c.resp.status = 200;
    nb_resp_header(&c.req, &c.resp, "x-ms-request-id", "abc");
    nb_resp_header(&c.req, &c.resp, "x-ms-meta-Color", "blue");
    nb_resp_header(&c.req, &c.resp, "Vary", "Accept-Encoding");
    nb_cors_decorate(&c.req, &c.resp, props);
    assert_string_equal(nb_resp_get_header(&c.resp, "Access-Control-Allow-Origin"),
                        "http://a.test");
    assert_string_equal(nb_resp_get_header(&c.resp, "Access-Control-Expose-Headers"),
                        "x-ms-meta-*,x-ms-request-id,x-ms-meta-Color");
    assert_string_equal(nb_resp_get_header(&c.resp, "Access-Control-Allow-Credentials"), "true");
    assert_string_equal(nb_resp_get_header(&c.resp, "Vary"), "Accept-Encoding, Origin");
    assert_int_equal(c.resp.status, 200);
    teardown_req(&c);

    /* matched through "*": ACAO "*", no exposed list, no credentials */
    setup_req(&c, "DELETE");
    add_header(&c, "Origin", "http://z.test");
    nb_cors_decorate(&c.req, &c.resp, props);
    assert_string_equal(nb_resp_get_header(&c.resp, "Access-Control-Allow-Origin"), "*");
    assert_null(nb_resp_get_header(&c.resp, "Access-Control-Expose-Headers"));
    assert_null(nb_resp_get_header(&c.resp, "Access-Control-Allow-Credentials"));
    assert_string_equal(nb_resp_get_header(&c.resp, "Vary"), "Origin");
    teardown_req(&c);

    /* no Origin, no matching rule, or no document: nothing added */
    const char *origins[] = {NULL, "http://z.test", "http://a.test"};
    const char *docs[] = {props, props, NULL};
    const char *methods[] = {"GET", "PUT", "GET"};
    for (int i = 0; i < 3; i++) {
        setup_req(&c, methods[i]);
        if (origins[i]) add_header(&c, "Origin", origins[i]);
        nb_cors_decorate(&c.req, &c.resp, docs[i]);
        assert_int_equal(c.resp.nheaders, 0);
        teardown_req(&c);
    }
}

int main(void)
{
    xmlInitParser();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),        cmocka_unit_test(test_match),
        cmocka_unit_test(test_preflight_ok), cmocka_unit_test(test_preflight_refused),
        cmocka_unit_test(test_decorate),
    };
    return cmocka_run_group_tests_name("storage/cors", tests, NULL, NULL);
}
