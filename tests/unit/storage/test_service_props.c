/* Service properties: default document, partial-SET merge semantics,
 * validation, and the stats document (src/storage/service_props.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <libxml/parser.h>
#include <stdlib.h>
#include <string.h>
#include "storage/service_props.h"

#define DECL "<?xml version=\"1.0\" encoding=\"utf-8\"?>"
#define LOGGING_DEFAULT                                                                            \
    "<Logging><Version>1.0</Version><Delete>false</Delete><Read>false</Read><Write>false"          \
    "</Write><RetentionPolicy><Enabled>false</Enabled></RetentionPolicy></Logging>"
#define HOUR_DEFAULT                                                                               \
    "<HourMetrics><Version>1.0</Version><Enabled>true</Enabled><IncludeAPIs>true</IncludeAPIs>"    \
    "<RetentionPolicy><Enabled>true</Enabled><Days>7</Days></RetentionPolicy></HourMetrics>"
#define MINUTE_DEFAULT                                                                             \
    "<MinuteMetrics><Version>1.0</Version><Enabled>false</Enabled><RetentionPolicy><Enabled>"      \
    "false</Enabled></RetentionPolicy></MinuteMetrics>"
#define CORS_RULE                                                                                  \
    "<CorsRule><AllowedOrigins>http://example.test</AllowedOrigins><AllowedMethods>GET,PUT"        \
    "</AllowedMethods><AllowedHeaders>x-ms-meta-*</AllowedHeaders><ExposedHeaders>x-ms-meta-*"     \
    "</ExposedHeaders><MaxAgeInSeconds>200</MaxAgeInSeconds></CorsRule>"

static char *merge_ok(const char *stored, const char *incoming)
{
    char *out = NULL;
    const char *code = "unset";
    assert_int_equal(nb_service_props_merge(stored, incoming, strlen(incoming), &out, &code),
                     NB_OK);
    assert_null(code);
    assert_non_null(out);
    return out;
}

static void merge_bad(const char *incoming, const char *want_code)
{
    char *out = (char *)"sentinel";
    const char *code = NULL;
    assert_int_equal(nb_service_props_merge(NULL, incoming, strlen(incoming), &out, &code),
                     NB_ERR_INVALID);
    assert_null(out);
    assert_string_equal(code, want_code);
}

static void test_default(void **state)
{
    (void)state;
    const char *d = nb_service_props_default();
    assert_string_equal(d, DECL
                        "<StorageServiceProperties>" LOGGING_DEFAULT HOUR_DEFAULT MINUTE_DEFAULT
                        "<Cors /></StorageServiceProperties>");
    /* An empty SET reproduces it byte for byte: the writer and the constant agree. */
    char *m = merge_ok(NULL, "<StorageServiceProperties/>");
    assert_string_equal(m, d);
    free(m);
    m = merge_ok(d, "<StorageServiceProperties></StorageServiceProperties>");
    assert_string_equal(m, d);
    free(m);
}

static void test_partial_cors_keeps_others(void **state)
{
    (void)state;
    /* az storage cors add: only <Cors> is sent. */
    char *m = merge_ok(NULL, "<?xml version='1.0' encoding='utf-8'?>\n<StorageServiceProperties>"
                             "<Cors>" CORS_RULE "</Cors></StorageServiceProperties>");
    assert_string_equal(m, DECL
                        "<StorageServiceProperties>" LOGGING_DEFAULT HOUR_DEFAULT MINUTE_DEFAULT
                        "<Cors>" CORS_RULE "</Cors></StorageServiceProperties>");
    /* then logging update: Cors survives, children arrive Delete/Read/Write first */
    char *m2 = merge_ok(m, "<StorageServiceProperties><Logging><Delete>true</Delete>"
                           "<Read>false</Read><Write>true</Write><Version>1.0</Version>"
                           "<RetentionPolicy><Days>10</Days><Enabled>true</Enabled>"
                           "</RetentionPolicy></Logging></StorageServiceProperties>");
    assert_string_equal(m2, DECL "<StorageServiceProperties><Logging><Version>1.0</Version>"
                                 "<Delete>true</Delete><Read>false</Read><Write>true</Write>"
                                 "<RetentionPolicy><Enabled>true</Enabled><Days>10</Days>"
                                 "</RetentionPolicy></Logging>" HOUR_DEFAULT MINUTE_DEFAULT
                                 "<Cors>" CORS_RULE "</Cors></StorageServiceProperties>");
    /* metrics update: only the metrics sections; IncludeAPIs before Enabled */
    char *m3 = merge_ok(m2, "<StorageServiceProperties><MinuteMetrics><IncludeAPIs>false"
                            "</IncludeAPIs><Enabled>true</Enabled><Version>1.0</Version>"
                            "<RetentionPolicy><Enabled>true</Enabled><Days>365</Days>"
                            "</RetentionPolicy></MinuteMetrics><HourMetrics><Version>1.0"
                            "</Version><Enabled>false</Enabled><RetentionPolicy><Enabled>false"
                            "</Enabled><Days>0</Days></RetentionPolicy></HourMetrics>"
                            "</StorageServiceProperties>");
    assert_non_null(strstr(m3, "<Delete>true</Delete>"));
    assert_non_null(strstr(m3, "<Cors>" CORS_RULE "</Cors>"));
    assert_non_null(strstr(m3, "<HourMetrics><Version>1.0</Version><Enabled>false</Enabled>"
                               "<RetentionPolicy><Enabled>false</Enabled></RetentionPolicy>"
                               "</HourMetrics>"));
    assert_non_null(strstr(m3, "<MinuteMetrics><Version>1.0</Version><Enabled>true</Enabled>"
                               "<IncludeAPIs>false</IncludeAPIs><RetentionPolicy><Enabled>true"
                               "</Enabled><Days>365</Days></RetentionPolicy></MinuteMetrics>"));
    /* cors clear: an empty <Cors/> removes the rules, the rest stays */
    char *m4 = merge_ok(m3, "<StorageServiceProperties><Cors/></StorageServiceProperties>");
    assert_non_null(strstr(m4, "<Cors /></StorageServiceProperties>"));
    assert_non_null(strstr(m4, "<Delete>true</Delete>"));
    assert_null(strstr(m4, "CorsRule"));
    free(m);
    free(m2);
    free(m3);
    free(m4);
}

static void test_default_service_version_and_escaping(void **state)
{
    (void)state;
    char *m = merge_ok(NULL, "<StorageServiceProperties><DefaultServiceVersion>2021-02-12"
                             "</DefaultServiceVersion><Cors><CorsRule><AllowedOrigins>"
                             "http://a.test, http://b.test</AllowedOrigins><AllowedMethods>get,"
                             " MERGE</AllowedMethods><AllowedHeaders/><ExposedHeaders>a&amp;b"
                             "</ExposedHeaders><MaxAgeInSeconds> 0 </MaxAgeInSeconds></CorsRule>"
                             "</Cors><UnknownThing>x</UnknownThing></StorageServiceProperties>");
    assert_non_null(strstr(m, "<Cors><CorsRule><AllowedOrigins>http://a.test, http://b.test"
                              "</AllowedOrigins><AllowedMethods>get, MERGE</AllowedMethods>"
                              "<AllowedHeaders></AllowedHeaders><ExposedHeaders>a&amp;b"
                              "</ExposedHeaders><MaxAgeInSeconds>0</MaxAgeInSeconds></CorsRule>"
                              "</Cors><DefaultServiceVersion>2021-02-12</DefaultServiceVersion>"
                              "</StorageServiceProperties>"));
    assert_null(strstr(m, "UnknownThing"));
    /* kept across a later SET that does not mention it */
    char *m2 = merge_ok(m, "<StorageServiceProperties><Cors/></StorageServiceProperties>");
    assert_non_null(strstr(m2, "<DefaultServiceVersion>2021-02-12</DefaultServiceVersion>"));
    free(m);
    free(m2);
}

static void test_bad_input(void **state)
{
    (void)state;
    merge_bad("", "InvalidXmlDocument");
    merge_bad("<StorageServiceProperties>", "InvalidXmlDocument");
    merge_bad("<Other/>", "InvalidXmlDocument");
    merge_bad("<!DOCTYPE x [<!ENTITY a \"b\">]><StorageServiceProperties/>", "InvalidXmlDocument");

    struct nb_buf six;
    nb_buf_init(&six, 1 << 16);
    nb_buf_adds(&six, "<StorageServiceProperties><Cors>");
    for (int i = 0; i < 6; i++)
        nb_buf_adds(&six, CORS_RULE);
    nb_buf_adds(&six, "</Cors></StorageServiceProperties>");
    merge_bad(six.data, "InvalidXmlNodeValue");
    /* five is the limit, not an error */
    char *cut = strstr(six.data, CORS_RULE "</Cors>");
    memcpy(cut, "</Cors></StorageServiceProperties>", sizeof("</Cors></StorageServiceProperties>"));
    char *m = merge_ok(NULL, six.data);
    assert_int_equal(strstr(m, "</CorsRule></Cors>") != NULL, 1);
    free(m);
    nb_buf_cleanup(&six);

    merge_bad("<StorageServiceProperties><Cors><CorsRule><AllowedOrigins>*</AllowedOrigins>"
              "<AllowedMethods>GET</AllowedMethods><MaxAgeInSeconds>ten</MaxAgeInSeconds>"
              "</CorsRule></Cors></StorageServiceProperties>",
              "InvalidXmlNodeValue");
    merge_bad("<StorageServiceProperties><Cors><CorsRule><AllowedOrigins>*</AllowedOrigins>"
              "<AllowedMethods>GET</AllowedMethods></CorsRule></Cors></StorageServiceProperties>",
              "InvalidXmlNodeValue");
    merge_bad("<StorageServiceProperties><Cors><CorsRule><AllowedOrigins>*</AllowedOrigins>"
              "<AllowedMethods>GET,FETCH</AllowedMethods><MaxAgeInSeconds>1</MaxAgeInSeconds>"
              "</CorsRule></Cors></StorageServiceProperties>",
              "InvalidXmlNodeValue");
    merge_bad("<StorageServiceProperties><Cors><CorsRule><AllowedOrigins></AllowedOrigins>"
              "<AllowedMethods>GET</AllowedMethods><MaxAgeInSeconds>1</MaxAgeInSeconds>"
              "</CorsRule></Cors></StorageServiceProperties>",
              "InvalidXmlNodeValue");
    merge_bad("<StorageServiceProperties><Logging><RetentionPolicy><Enabled>true</Enabled>"
              "<Days>366</Days></RetentionPolicy></Logging></StorageServiceProperties>",
              "InvalidXmlNodeValue");
    merge_bad("<StorageServiceProperties><HourMetrics><RetentionPolicy><Enabled>true</Enabled>"
              "<Days>0</Days></RetentionPolicy></HourMetrics></StorageServiceProperties>",
              "InvalidXmlNodeValue");
    merge_bad("<StorageServiceProperties><HourMetrics><RetentionPolicy><Enabled>true</Enabled>"
              "</RetentionPolicy></HourMetrics></StorageServiceProperties>",
              "InvalidXmlNodeValue");
    merge_bad("<StorageServiceProperties><Logging><Read>yes</Read></Logging>"
              "</StorageServiceProperties>",
              "InvalidXmlNodeValue");

    /* a broken stored document is the server's fault */
    char *out = NULL;
    const char *code = NULL;
    const char *ok = "<StorageServiceProperties/>";
    assert_int_equal(nb_service_props_merge("<broken", ok, strlen(ok), &out, &code), NB_ERR_STORE);
    assert_null(out);
    assert_string_equal(code, "InternalError");
}

static void test_stats(void **state)
{
    (void)state;
    struct nb_buf b;
    nb_buf_init(&b, 4096);
    assert_int_equal(nb_service_stats_xml(1795311415123, &b), NB_OK);
    assert_string_equal(nb_buf_cstr(&b),
                        DECL "<StorageServiceStats><GeoReplication><Status>live</Status>"
                             "<LastSyncTime>Sun, 22 Nov 2026 01:36:55 GMT</LastSyncTime>"
                             "</GeoReplication></StorageServiceStats>");
    nb_buf_cleanup(&b);
}

int main(void)
{
    xmlInitParser();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default),
        cmocka_unit_test(test_partial_cors_keeps_others),
        cmocka_unit_test(test_default_service_version_and_escaping),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_stats),
    };
    return cmocka_run_group_tests_name("storage/service_props", tests, NULL, NULL);
}
