/* Unit tests for src/cli/connstr.c: connection-string parsing as the Python
 * SDK does it, endpoint derivation, the local default and the choice between
 * argument, environment and default. No network, no globals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h> /* after the headers it needs */

#include "cli/connstr.h"
#include "http/accounts.h"

#define LOCAL_FULL                                                                                 \
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=" NB_DEV_KEY            \
    ";QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;"

static void parse_ok(const char *s, struct nb_connstr *cs)
{
    const char *why = "unset";
    nb_connstr_init(cs);
    assert_int_equal(nb_connstr_parse(s, cs, &why), NB_OK);
    assert_string_equal(why, "unset"); /* untouched on success */
}

static void parse_fails(const char *s, const char *why_part)
{
    struct nb_connstr cs;
    const char *why = NULL;
    nb_connstr_init(&cs);
    assert_int_equal(nb_connstr_parse(s, &cs, &why), NB_ERR_INVALID);
    assert_non_null(why);
    if (why_part) assert_non_null(strstr(why, why_part));
    /* nothing is left behind on failure */
    assert_null(cs.account);
    assert_null(cs.key);
    assert_null(cs.queue_endpoint);
    assert_null(cs.sas);
    nb_connstr_cleanup(&cs);
}

static void test_full_local_string(void **state)
{
    (void)state;
    struct nb_connstr cs;
    parse_ok(LOCAL_FULL, &cs);
    assert_string_equal(cs.protocol, "http");
    assert_string_equal(cs.account, "devstoreaccount1");
    assert_string_equal(cs.account_key, NB_DEV_KEY);
    assert_int_equal(cs.key_len, 64);
    assert_null(cs.sas);
    assert_string_equal(cs.queue_endpoint, "http://127.0.0.1:10001/devstoreaccount1");
    /* not given: derived from the account, like the SDK */
    assert_string_equal(cs.table_endpoint, "http://devstoreaccount1.table.core.windows.net");
    nb_connstr_cleanup(&cs);
    nb_connstr_cleanup(&cs); /* twice is fine */
}

static void test_keys_case_insensitive_and_trimmed(void **state)
{
    (void)state;
    struct nb_connstr cs;
    parse_ok(" defaultendpointsprotocol = HTTP ; ACCOUNTNAME=acct ;accountkey= " NB_DEV_KEY
             " ; queueendpoint=http://h:1/acct/ ; TableEndpoint=http://h:2/acct//",
             &cs);
    assert_string_equal(cs.protocol, "http");
    assert_string_equal(cs.account, "acct");
    assert_string_equal(cs.queue_endpoint, "http://h:1/acct");
    assert_string_equal(cs.table_endpoint, "http://h:2/acct");
    nb_connstr_cleanup(&cs);
}

static void test_values_keep_equals(void **state)
{
    (void)state;
    struct nb_connstr cs;
    /* the key ends in "==": split at the first '=' only */
    parse_ok("AccountName=a;AccountKey=" NB_DEV_KEY, &cs);
    assert_string_equal(cs.account_key, NB_DEV_KEY);
    nb_connstr_cleanup(&cs);
}

static void test_derived_endpoints(void **state)
{
    (void)state;
    struct nb_connstr cs;
    parse_ok("AccountName=myacct;AccountKey=" NB_DEV_KEY, &cs);
    assert_string_equal(cs.protocol, "https");
    assert_string_equal(cs.queue_endpoint, "https://myacct.queue.core.windows.net");
    assert_string_equal(cs.table_endpoint, "https://myacct.table.core.windows.net");
    nb_connstr_cleanup(&cs);

    parse_ok("DefaultEndpointsProtocol=http;AccountName=myacct;AccountKey=" NB_DEV_KEY
             ";EndpointSuffix=example.test",
             &cs);
    assert_string_equal(cs.queue_endpoint, "http://myacct.queue.example.test");
    assert_string_equal(cs.endpoint_suffix, "example.test");
    nb_connstr_cleanup(&cs);
}

static void test_development_storage(void **state)
{
    (void)state;
    struct nb_connstr cs;
    parse_ok("UseDevelopmentStorage=true", &cs);
    assert_string_equal(cs.account, NB_DEV_ACCOUNT);
    assert_string_equal(cs.account_key, NB_DEV_KEY);
    assert_int_equal(cs.key_len, 64);
    assert_string_equal(cs.queue_endpoint, NB_LOCAL_QUEUE_ENDPOINT);
    assert_string_equal(cs.table_endpoint, NB_LOCAL_TABLE_ENDPOINT);
    assert_string_equal(cs.protocol, "http");
    nb_connstr_cleanup(&cs);

    parse_ok("usedevelopmentstorage=TRUE;", &cs);
    assert_string_equal(cs.account, NB_DEV_ACCOUNT);
    nb_connstr_cleanup(&cs);

    parse_ok("UseDevelopmentStorage=true;DevelopmentStorageProxyUri=http://proxy", &cs);
    assert_string_equal(cs.queue_endpoint, NB_LOCAL_QUEUE_ENDPOINT);
    nb_connstr_cleanup(&cs);

    parse_fails("UseDevelopmentStorage=false", "UseDevelopmentStorage");
    parse_fails("UseDevelopmentStorage=true;AccountName=x", "combined");
}

static void test_sas(void **state)
{
    (void)state;
    struct nb_connstr cs;
    parse_ok("QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;"
             "SharedAccessSignature=?sv=2021-02-12&ss=q&srt=sco&sp=rwdlacup&se=2030-01-01T00%3A00%"
             "3A00Z&sig=abc%2Bd%3D",
             &cs);
    assert_string_equal(
        cs.sas,
        "sv=2021-02-12&ss=q&srt=sco&sp=rwdlacup&se=2030-01-01T00%3A00%3A00Z&sig=abc%2Bd%3D");
    assert_null(cs.account);
    assert_null(cs.key);
    assert_string_equal(cs.queue_endpoint, "http://127.0.0.1:10001/devstoreaccount1");
    assert_null(cs.table_endpoint);
    nb_connstr_cleanup(&cs);

    /* a key wins over a SAS, as in the SDK */
    parse_ok("AccountName=a;AccountKey=" NB_DEV_KEY ";SharedAccessSignature=sig=x", &cs);
    assert_null(cs.sas);
    assert_non_null(cs.key);
    nb_connstr_cleanup(&cs);

    parse_fails("QueueEndpoint=http://h/a;SharedAccessSignature=?", "SharedAccessSignature");
}

static void test_anonymous_endpoint_only(void **state)
{
    (void)state;
    struct nb_connstr cs;
    parse_ok("QueueEndpoint=https://example.test/acct", &cs);
    assert_null(cs.account);
    assert_null(cs.key);
    assert_null(cs.sas);
    assert_string_equal(cs.queue_endpoint, "https://example.test/acct");
    nb_connstr_cleanup(&cs);
}

static void test_unknown_keys_ignored_and_last_wins(void **state)
{
    (void)state;
    struct nb_connstr cs;
    parse_ok("BlobEndpoint=http://b;AccountName=first;AccountName=second;AccountKey=" NB_DEV_KEY
             ";;FileEndpoint=http://f;",
             &cs);
    assert_string_equal(cs.account, "second");
    nb_connstr_cleanup(&cs);
}

static void test_malformed(void **state)
{
    (void)state;
    parse_fails("", "blank");
    parse_fails(";;;", "blank");
    parse_fails("   ", "blank");
    parse_fails("AccountName", "malformed");
    parse_fails("AccountName=a;junk", "malformed");
    parse_fails("=value", "malformed");
    parse_fails("AccountKey=" NB_DEV_KEY, "AccountName");
    parse_fails("AccountName=a;AccountKey=not*base64!", "base64");
    parse_fails("AccountName=a;AccountKey=", "base64");
    parse_fails("AccountName=;QueueEndpoint=http://h/a", "AccountName");
    parse_fails("DefaultEndpointsProtocol=ftp;AccountName=a", "http or https");
    parse_fails("QueueEndpoint=ftp://h/a", "QueueEndpoint");
    parse_fails("QueueEndpoint=http://", "QueueEndpoint");
    parse_fails("TableEndpoint=127.0.0.1:10002", "TableEndpoint");
    parse_fails("EndpointSuffix=core.windows.net", "missing");
    parse_fails(NULL, "blank");

    static char huge[NB_CONNSTR_MAX + 64];
    memset(huge, 'a', sizeof(huge) - 1);
    memcpy(huge, "AccountName=", 12);
    parse_fails(huge, "malformed");
}

static void test_local_default(void **state)
{
    (void)state;
    struct nb_connstr cs;
    nb_connstr_init(&cs);
    nb_connstr_local_default(&cs);
    assert_string_equal(cs.account, NB_DEV_ACCOUNT);
    assert_int_equal(cs.key_len, 64);
    assert_string_equal(cs.queue_endpoint, "http://127.0.0.1:10001/devstoreaccount1");
    nb_connstr_cleanup(&cs);
}

static void test_resolve_order(void **state)
{
    (void)state;
    struct nb_connstr cs;
    const char *why = NULL;

    nb_connstr_init(&cs);
    assert_int_equal(nb_connstr_resolve("AccountName=fromarg;AccountKey=" NB_DEV_KEY,
                                        "AccountName=fromenv;AccountKey=" NB_DEV_KEY, &cs, &why),
                     NB_OK);
    assert_string_equal(cs.account, "fromarg");
    nb_connstr_cleanup(&cs);

    assert_int_equal(
        nb_connstr_resolve(NULL, "AccountName=fromenv;AccountKey=" NB_DEV_KEY, &cs, &why), NB_OK);
    assert_string_equal(cs.account, "fromenv");
    nb_connstr_cleanup(&cs);

    assert_int_equal(nb_connstr_resolve(NULL, "", &cs, &why), NB_OK);
    assert_string_equal(cs.queue_endpoint, NB_LOCAL_QUEUE_ENDPOINT);
    nb_connstr_cleanup(&cs);

    assert_int_equal(nb_connstr_resolve(NULL, NULL, &cs, &why), NB_OK);
    assert_string_equal(cs.account, NB_DEV_ACCOUNT);
    nb_connstr_cleanup(&cs);

    /* an explicit empty argument is an error, not the default */
    assert_int_equal(nb_connstr_resolve("", NULL, &cs, &why), NB_ERR_INVALID);
    nb_connstr_cleanup(&cs);
    /* a bad environment value is reported, not silently replaced */
    assert_int_equal(nb_connstr_resolve(NULL, "garbage", &cs, &why), NB_ERR_INVALID);
    nb_connstr_cleanup(&cs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_local_string),
        cmocka_unit_test(test_keys_case_insensitive_and_trimmed),
        cmocka_unit_test(test_values_keep_equals),
        cmocka_unit_test(test_derived_endpoints),
        cmocka_unit_test(test_development_storage),
        cmocka_unit_test(test_sas),
        cmocka_unit_test(test_anonymous_endpoint_only),
        cmocka_unit_test(test_unknown_keys_ignored_and_last_wins),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_local_default),
        cmocka_unit_test(test_resolve_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
