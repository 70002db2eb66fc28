/* Stored access policies: SignedIdentifiers parsing, date normalisation,
 * limits and serialisation (src/storage/acl.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <libxml/parser.h>
#include <stdio.h>
#include <string.h>
#include "storage/acl.h"

static enum nb_err parse(const char *xml, struct nb_acl *acl, const char **code)
{
    return nb_acl_parse_xml(xml, strlen(xml), acl, code);
}

static void test_empty(void **state)
{
    (void)state;
    struct nb_acl acl;
    const char *code = "x";
    assert_int_equal(parse("", &acl, &code), NB_OK);
    assert_int_equal(acl.n, 0);
    assert_null(code);
    assert_int_equal(parse("  \r\n", &acl, &code), NB_OK);
    assert_int_equal(acl.n, 0);
    assert_int_equal(
        parse("<?xml version='1.0' encoding='utf-8'?>\n<SignedIdentifiers />", &acl, &code), NB_OK);
    assert_int_equal(acl.n, 0);
    assert_int_equal(nb_acl_parse_xml(NULL, 0, &acl, NULL), NB_OK);
}

static void test_parse_and_normalise(void **state)
{
    (void)state;
    struct nb_acl acl;
    const char *code = NULL;
    const char *xml =
        "<?xml version='1.0' encoding='utf-8'?>\n<SignedIdentifiers>"
        "<SignedIdentifier><Id>pol1</Id><AccessPolicy><Start>2020-01-01T00:00:00Z</Start>"
        "<Expiry>2030-01-01T00:00Z</Expiry><Permission>raup</Permission></AccessPolicy>"
        "</SignedIdentifier>"
        /* any order, double quotes, entities, fractions and offsets */
        "<SignedIdentifier><AccessPolicy><Permission> r </Permission>"
        "<Expiry>2031-02-03T04:05:06.1234567891Z</Expiry>"
        "<Start>2020-06-01T02:00:00.5+02:00</Start></AccessPolicy><Id>a&amp;b</Id>"
        "</SignedIdentifier>"
        /* no AccessPolicy at all; an empty Start (Azure accepts it) */
        "<SignedIdentifier><Id>bare</Id></SignedIdentifier>"
        "<SignedIdentifier><Id>emptystart</Id><AccessPolicy><Start></Start>"
        "<Expiry>2030-01-01</Expiry></AccessPolicy></SignedIdentifier>"
        "</SignedIdentifiers>";
    assert_int_equal(parse(xml, &acl, &code), NB_OK);
    assert_null(code);
    assert_int_equal(acl.n, 4);
    assert_string_equal(acl.items[0].id, "pol1");
    assert_string_equal(acl.items[0].start, "2020-01-01T00:00:00.0000000Z");
    assert_string_equal(acl.items[0].expiry, "2030-01-01T00:00:00.0000000Z");
    assert_string_equal(acl.items[0].permission, "raup");
    assert_string_equal(acl.items[1].id, "a&b");
    assert_string_equal(acl.items[1].start, "2020-06-01T00:00:00.5000000Z");
    assert_string_equal(acl.items[1].expiry, "2031-02-03T04:05:06.1234567Z");
    assert_string_equal(acl.items[1].permission, "r");
    assert_string_equal(acl.items[2].id, "bare");
    assert_string_equal(acl.items[2].start, "");
    assert_string_equal(acl.items[2].expiry, "");
    assert_string_equal(acl.items[2].permission, "");
    assert_string_equal(acl.items[3].start, "");
    assert_string_equal(acl.items[3].expiry, "2030-01-01T00:00:00.0000000Z");

    assert_ptr_equal(nb_acl_find(&acl, "pol1"), &acl.items[0]);
    assert_ptr_equal(nb_acl_find(&acl, "a&b"), &acl.items[1]);
    assert_null(nb_acl_find(&acl, "POL1"));
    assert_null(nb_acl_find(&acl, NULL));
    assert_null(nb_acl_find(NULL, "pol1"));
    assert_int_equal(nb_acl_check_permissions(&acl, "raup"), NB_OK);
    assert_int_equal(nb_acl_check_permissions(&acl, "rd"), NB_ERR_INVALID);
}

static void test_round_trip(void **state)
{
    (void)state;
    struct nb_acl acl, again;
    const char *code;
    const char *xml = "<SignedIdentifiers><SignedIdentifier><Id>p&lt;1</Id><AccessPolicy>"
                      "<Start>2020-01-01T00:00:00Z</Start><Permission>raup</Permission>"
                      "</AccessPolicy></SignedIdentifier><SignedIdentifier><Id>p2</Id>"
                      "</SignedIdentifier></SignedIdentifiers>";
    assert_int_equal(parse(xml, &acl, &code), NB_OK);
    struct nb_buf b;
    nb_buf_init(&b, 4096);
    assert_int_equal(nb_acl_to_xml(&acl, &b), NB_OK);
    assert_string_equal(nb_buf_cstr(&b),
                        "<?xml version=\"1.0\" encoding=\"utf-8\"?><SignedIdentifiers>"
                        "<SignedIdentifier><Id>p&lt;1</Id><AccessPolicy>"
                        "<Start>2020-01-01T00:00:00.0000000Z</Start><Permission>raup</Permission>"
                        "</AccessPolicy></SignedIdentifier><SignedIdentifier><Id>p2</Id>"
                        "<AccessPolicy></AccessPolicy></SignedIdentifier></SignedIdentifiers>");
    assert_int_equal(nb_acl_parse_xml(b.data, b.len, &again, &code), NB_OK);
    assert_memory_equal(&acl, &again, sizeof(acl));

    nb_buf_reset(&b);
    acl.n = 0;
    assert_int_equal(nb_acl_to_xml(&acl, &b), NB_OK);
    assert_string_equal(nb_buf_cstr(&b),
                        "<?xml version=\"1.0\" encoding=\"utf-8\"?><SignedIdentifiers />");
    nb_buf_cleanup(&b);

    nb_buf_init(&b, 10);
    assert_int_equal(nb_acl_to_xml(&acl, &b), NB_ERR_TOO_LARGE);
    nb_buf_cleanup(&b);
}

static void expect_bad(const char *xml)
{
    struct nb_acl acl;
    const char *code = NULL;
    acl.n = 3;
    assert_int_equal(parse(xml, &acl, &code), NB_ERR_INVALID);
    assert_string_equal(code, "InvalidXmlDocument");
    assert_int_equal(acl.n, 0);
}

static void test_bad_input(void **state)
{
    (void)state;
    char six[2048];
    size_t o = 0;
    o += (size_t)snprintf(six + o, sizeof(six) - o, "<SignedIdentifiers>");
    for (int i = 0; i < 6; i++)
        o += (size_t)snprintf(six + o, sizeof(six) - o,
                              "<SignedIdentifier><Id>p%d</Id></SignedIdentifier>", i);
    snprintf(six + o, sizeof(six) - o, "</SignedIdentifiers>");
    expect_bad(six);

    /* exactly five is fine */
    char *cut = strstr(six, "<SignedIdentifier><Id>p5");
    memcpy(cut, "</SignedIdentifiers>", sizeof("</SignedIdentifiers>"));
    struct nb_acl acl;
    assert_int_equal(parse(six, &acl, NULL), NB_OK);
    assert_int_equal(acl.n, 5);

    expect_bad("<SignedIdentifiers><SignedIdentifier>");
    expect_bad("not xml at all");
    expect_bad("<Other />");
    expect_bad("<SignedIdentifiers><SignedIdentifier><AccessPolicy/></SignedIdentifier>"
               "</SignedIdentifiers>");
    expect_bad("<SignedIdentifiers><SignedIdentifier><Id></Id></SignedIdentifier>"
               "</SignedIdentifiers>");
    expect_bad("<SignedIdentifiers><SignedIdentifier><Id>"
               "01234567890123456789012345678901234567890123456789012345678901234"
               "</Id></SignedIdentifier></SignedIdentifiers>");
    expect_bad("<SignedIdentifiers><SignedIdentifier><Id>a</Id></SignedIdentifier>"
               "<SignedIdentifier><Id>a</Id></SignedIdentifier></SignedIdentifiers>");
    expect_bad("<SignedIdentifiers><SignedIdentifier><Id>a</Id><AccessPolicy>"
               "<Start>yesterday</Start></AccessPolicy></SignedIdentifier></SignedIdentifiers>");
    expect_bad("<SignedIdentifiers><SignedIdentifier><Id>a</Id><AccessPolicy>"
               "<Expiry>2020-13-01T00:00:00Z</Expiry></AccessPolicy></SignedIdentifier>"
               "</SignedIdentifiers>");
    expect_bad("<SignedIdentifiers><SignedIdentifier><Id>a</Id><AccessPolicy>"
               "<Permission>rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr</Permission></AccessPolicy>"
               "</SignedIdentifier></SignedIdentifiers>");
    /* 64 is the longest id accepted */
    assert_int_equal(parse("<SignedIdentifiers><SignedIdentifier><Id>"
                           "0123456789012345678901234567890123456789012345678901234567890123"
                           "</Id></SignedIdentifier></SignedIdentifiers>",
                           &acl, NULL),
                     NB_OK);
}

static void test_no_entities(void **state)
{
    (void)state;
    /* XXE and billion laughs: any DOCTYPE is refused before expansion. */
    expect_bad("<?xml version=\"1.0\"?><!DOCTYPE s [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
               "<SignedIdentifiers><SignedIdentifier><Id>&x;</Id></SignedIdentifier>"
               "</SignedIdentifiers>");
    expect_bad("<?xml version=\"1.0\"?><!DOCTYPE s [<!ENTITY a \"aaaaaaaaaa\">"
               "<!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">"
               "<!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\">]>"
               "<SignedIdentifiers><SignedIdentifier><Id>&c;</Id></SignedIdentifier>"
               "</SignedIdentifiers>");
    /* an undeclared entity is simply not well-formed */
    expect_bad("<SignedIdentifiers><SignedIdentifier><Id>&x;</Id></SignedIdentifier>"
               "</SignedIdentifiers>");
}

int main(void)
{
    xmlInitParser();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),       cmocka_unit_test(test_parse_and_normalise),
        cmocka_unit_test(test_round_trip),  cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_no_entities),
    };
    return cmocka_run_group_tests_name("storage/acl", tests, NULL, NULL);
}
