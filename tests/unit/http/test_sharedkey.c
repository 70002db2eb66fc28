/* Unit tests for src/http/sharedkey.c and src/http/accounts.c: the captured
 * strings-to-sign of storage-queue-table.md §1.1-1.3, verification with
 * either key, the secondary-path quirk, and account configuration parsing.
 * Expected signatures were computed outside C (Python hmac), so a wrong
 * canonicalisation or HMAC here fails the test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h> /* after the headers it needs */

#include "http/accounts.h"
#include "http/request.h"
#include "http/sharedkey.h"

/* Test vectors stay one per line, copy-pasteable. */
/* clang-format off */
/* A second key for key2 tests: base64 of b"nimbus-test-key2-0123456789abcdef". */
#define KEY2_B64 "bmltYnVzLXRlc3Qta2V5Mi0wMTIzNDU2Nzg5YWJjZGVm"

/* Signatures below come from, with K = base64-decoded NB_DEV_KEY (or KEY2_B64)
 * and M = the string-to-sign constant next to each one:
 *   python3 -c 'import hmac,hashlib,base64;print(base64.b64encode(hmac.new(K,M.encode(),hashlib.sha256).digest()).decode())'
 */
#define QUEUE_POST_STS                                                                             \
    "POST\n\n\n102\n\napplication/xml\n\n\n\n\n\n\n"                                               \
    "x-ms-client-request-id:33c8af88-e615-11f1-9233-bde9068d5669\n"                                \
    "x-ms-date:Sun, 22 Nov 2026 01:36:56 GMT\n"                                                    \
    "x-ms-version:2021-02-12\n"                                                                    \
    "/devstoreaccount1/devstoreaccount1/myqueue/messages\nmessagettl:-1\nvisibilitytimeout:0"
#define QUEUE_POST_SIG_KEY1 "eh0dSUijW4dd42w+6x+tV8x0epFo0Sb+6oC+tfPi5OE="
#define QUEUE_POST_SIG_KEY2 "iQAssMLUD53F5Xxz9WO0FgJo4wCe/g9lX3WQDkgO0Ac="

#define TABLE_PATH                                                                                 \
    "/devstoreaccount1/mytable(PartitionKey='a%20b%27%27c%26%C3%A9',RowKey='r%2520%2B%3D%3F%23x')"
#define TABLE_GET_STS "GET\n\n\nSun, 22 Nov 2026 01:36:57 GMT\n/devstoreaccount1" TABLE_PATH
#define TABLE_GET_SIG_KEY1 "czLDjyi/aOsxdySdrrn7TwYejBl9R7tdqm6d1Vq+200="

#define TABLE_STATS_STS                                                                            \
    "GET\n\n\nSun, 22 Nov 2026 01:36:57 GMT\n/devstoreaccount1/devstoreaccount1/?comp=stats"
#define TABLE_STATS_SIG_KEY1 "5BL329yxiMxGW975nXGYUyq0tD3TihuCrhHeyEezuvo="

/* clang-format on */

#define MAX_HEADERS 32

static void req_init(struct nb_req *r, const char *method, const char *path, const char *query)
{
    memset(r, 0, sizeof(*r));
    nb_arena_init(&r->arena);
    nb_buf_init(&r->body, 0);
    r->method = method;
    r->raw_path = path;
    r->raw_query = query ? query : "";
    nb_req_parse_query(r);
    r->headers = nb_arena_alloc(&r->arena, MAX_HEADERS * sizeof(struct nb_kv));
}

static void req_header(struct nb_req *r, const char *name, const char *value)
{
    assert_true(r->nheaders < MAX_HEADERS);
    r->headers[r->nheaders++] = (struct nb_kv){name, value, strlen(value)};
}

static void req_cleanup(struct nb_req *r)
{
    nb_buf_cleanup(&r->body);
    nb_arena_cleanup(&r->arena);
}

/* The captured put-message request, minus Authorization; unsigned noise
 * headers included on purpose. */
static void queue_post_req(struct nb_req *r)
{
    req_init(r, "POST", "/devstoreaccount1/myqueue/messages", "visibilitytimeout=0&messagettl=-1");
    req_header(r, "Host", "127.0.0.1:10001");
    req_header(r, "User-Agent", "azsdk-python-storage-queue/12.6.0b1 Python/3.11.7");
    req_header(r, "Accept-Encoding", "gzip, deflate");
    req_header(r, "Content-Length", "102");
    req_header(r, "Content-Type", "application/xml");
    req_header(r, "x-ms-version", "2021-02-12");
    req_header(r, "x-ms-date", "Sun, 22 Nov 2026 01:36:56 GMT");
    req_header(r, "x-ms-client-request-id", "33c8af88-e615-11f1-9233-bde9068d5669");
    req_header(r, "Accept", "application/xml");
}

static void table_get_req(struct nb_req *r)
{
    req_init(r, "GET", TABLE_PATH, NULL);
    req_header(r, "Accept", "application/json;odata=minimalmetadata");
    req_header(r, "DataServiceVersion", "3.0");
    req_header(r, "x-ms-version", "2019-02-02");
    req_header(r, "x-ms-date", "Sun, 22 Nov 2026 01:36:57 GMT");
    req_header(r, "Date", "Sun, 22 Nov 2026 01:36:57 GMT");
}

static void expect_sts(enum nb_storage_svc svc, enum nb_sharedkey_scheme scheme,
                       const struct nb_req *r, const char *path, const char *want)
{
    struct nb_buf b;
    nb_buf_init(&b, 1 << 16);
    assert_int_equal(nb_sharedkey_string_to_sign(svc, scheme, NB_DEV_ACCOUNT, r, path, &b), NB_OK);
    assert_string_equal(nb_buf_cstr(&b), want);
    nb_buf_cleanup(&b);
}

/* ---- string-to-sign ---------------------------------------------------- */

static void test_queue_captured_string(void **state)
{
    (void)state;
    struct nb_req r;
    queue_post_req(&r);
    expect_sts(NB_STORAGE_QUEUE, NB_SHAREDKEY, &r, r.raw_path, QUEUE_POST_STS);
    req_cleanup(&r);
}

static void test_table_captured_string(void **state)
{
    (void)state;
    struct nb_req r;
    table_get_req(&r);
    expect_sts(NB_STORAGE_TABLE, NB_SHAREDKEY, &r, r.raw_path, TABLE_GET_STS);
    req_cleanup(&r);
}

static void test_hmac_vectors(void **state)
{
    (void)state;
    struct nb_accounts a;
    nb_accounts_init(&a);
    const struct nb_account *dev = nb_accounts_find(&a, NB_DEV_ACCOUNT);
    assert_non_null(dev);
    char mac[NB_HMAC_B64_LEN];
    nb_sharedkey_hmac(dev->key[0], dev->key_len[0], QUEUE_POST_STS, strlen(QUEUE_POST_STS), mac);
    assert_string_equal(mac, QUEUE_POST_SIG_KEY1);
    nb_sharedkey_hmac(dev->key[0], dev->key_len[0], TABLE_GET_STS, strlen(TABLE_GET_STS), mac);
    assert_string_equal(mac, TABLE_GET_SIG_KEY1);
    assert_true(nb_sharedkey_sig_equal(mac, TABLE_GET_SIG_KEY1));
    assert_false(nb_sharedkey_sig_equal(mac, QUEUE_POST_SIG_KEY1));
    assert_false(nb_sharedkey_sig_equal(mac, "czLDjyi"));
    nb_accounts_cleanup(&a);
}

/* Content-Length 0 is signed empty; x-ms-* names are lowercased, values
 * trimmed and collapsed, duplicates joined; the bare x-ms-meta quirk header
 * is kept; query names are lowercased and sorted, values decoded, sorted and
 * comma-joined. */
static void test_queue_canonicalisation_rules(void **state)
{
    (void)state;
    struct nb_req r;
    req_init(&r, "PUT", "/devstoreaccount1/q1/messages/abc",
             "popreceipt=tAyldS1YQ18%3D&VisibilityTimeout=5&b=2&b=1&flag");
    req_header(&r, "Content-Length", "0");
    req_header(&r, "X-MS-Meta-Color", "  red   and\tblue  ");
    req_header(&r, "x-ms-meta", "{'a': 'b'}");
    req_header(&r, "x-ms-version", "2021-02-12");
    req_header(&r, "x-ms-dup", "one");
    req_header(&r, "If-Match", "*");
    req_header(&r, "x-ms-dup", "two");
    expect_sts(NB_STORAGE_QUEUE, NB_SHAREDKEY, &r, r.raw_path,
               "PUT\n\n\n\n\n\n\n\n*\n\n\n\n"
               "x-ms-dup:one,two\n"
               "x-ms-meta:{'a': 'b'}\n"
               "x-ms-meta-color:red and blue\n"
               "x-ms-version:2021-02-12\n"
               "/devstoreaccount1/devstoreaccount1/q1/messages/abc"
               "\nb:1,2\nflag:\npopreceipt:tAyldS1YQ18=\nvisibilitytimeout:5");
    req_cleanup(&r);
}

static void test_table_comp_and_date_fallback(void **state)
{
    (void)state;
    struct nb_req r;
    req_init(&r, "PUT", "/devstoreaccount1/mytable", "comp=acl&timeout=30");
    req_header(&r, "Content-Type", "application/xml");
    req_header(&r, "Date", "Sun, 22 Nov 2026 01:00:00 GMT");
    req_header(&r, "x-ms-version", "2019-02-02"); /* not signed by Table SharedKey */
    expect_sts(NB_STORAGE_TABLE, NB_SHAREDKEY, &r, r.raw_path,
               "PUT\n\napplication/xml\nSun, 22 Nov 2026 01:00:00 GMT\n"
               "/devstoreaccount1/devstoreaccount1/mytable?comp=acl");
    req_cleanup(&r);
}

static void test_lite_strings(void **state)
{
    (void)state;
    struct nb_req r;
    req_init(&r, "GET", "/devstoreaccount1/myqueue", "comp=metadata&timeout=5");
    req_header(&r, "Content-MD5", "md5");
    req_header(&r, "Date", "Sun, 22 Nov 2026 01:00:00 GMT");
    req_header(&r, "x-ms-date", "Sun, 22 Nov 2026 01:00:01 GMT");
    req_header(&r, "x-ms-version", "2021-02-12");
    expect_sts(NB_STORAGE_QUEUE, NB_SHAREDKEY_LITE, &r, r.raw_path,
               "GET\nmd5\n\nSun, 22 Nov 2026 01:00:00 GMT\n"
               "x-ms-date:Sun, 22 Nov 2026 01:00:01 GMT\nx-ms-version:2021-02-12\n"
               "/devstoreaccount1/devstoreaccount1/myqueue?comp=metadata");
    /* Table Lite: date (x-ms-date preferred) and the resource only. */
    expect_sts(NB_STORAGE_TABLE, NB_SHAREDKEY_LITE, &r, r.raw_path,
               "Sun, 22 Nov 2026 01:00:01 GMT\n"
               "/devstoreaccount1/devstoreaccount1/myqueue?comp=metadata");
    req_cleanup(&r);
}

static void test_string_to_sign_respects_max(void **state)
{
    (void)state;
    struct nb_req r;
    struct nb_buf b;
    queue_post_req(&r);
    nb_buf_init(&b, 16);
    assert_int_equal(nb_sharedkey_string_to_sign(NB_STORAGE_QUEUE, NB_SHAREDKEY, NB_DEV_ACCOUNT, &r,
                                                 r.raw_path, &b),
                     NB_ERR_TOO_LARGE);
    nb_buf_cleanup(&b);
    req_cleanup(&r);
}

/* ---- verification ------------------------------------------------------ */

static void test_verify_queue_key1(void **state)
{
    (void)state;
    struct nb_accounts a;
    struct nb_req r;
    const char *acct = NULL;
    nb_accounts_init(&a);
    queue_post_req(&r);
    req_header(&r, "Authorization", "SharedKey devstoreaccount1:" QUEUE_POST_SIG_KEY1);
    assert_int_equal(nb_sharedkey_verify(NB_STORAGE_QUEUE, &a, &r, &acct, NULL), NB_OK);
    assert_string_equal(acct, NB_DEV_ACCOUNT);
    req_cleanup(&r);
    nb_accounts_cleanup(&a);
}

static void test_verify_table_key1(void **state)
{
    (void)state;
    struct nb_accounts a;
    struct nb_req r;
    nb_accounts_init(&a);
    table_get_req(&r);
    req_header(&r, "Authorization", "SharedKey devstoreaccount1:" TABLE_GET_SIG_KEY1);
    assert_int_equal(nb_sharedkey_verify(NB_STORAGE_TABLE, &a, &r, NULL, NULL), NB_OK);
    /* The same request checked as a queue request signs differently. */
    assert_int_equal(nb_sharedkey_verify(NB_STORAGE_QUEUE, &a, &r, NULL, NULL), NB_ERR_AUTH);
    req_cleanup(&r);
    nb_accounts_cleanup(&a);
}

static void test_verify_bad_signature_reports_string(void **state)
{
    (void)state;
    struct nb_accounts a;
    struct nb_req r;
    struct nb_buf sts;
    nb_accounts_init(&a);
    nb_buf_init(&sts, 1 << 16);
    queue_post_req(&r);
    /* Right signature for a different key. */
    req_header(&r, "Authorization", "SharedKey devstoreaccount1:" QUEUE_POST_SIG_KEY2);
    assert_int_equal(nb_sharedkey_verify(NB_STORAGE_QUEUE, &a, &r, NULL, &sts), NB_ERR_AUTH);
    assert_string_equal(nb_buf_cstr(&sts), QUEUE_POST_STS);
    req_cleanup(&r);

    /* One changed query value breaks the signature. */
    req_init(&r, "POST", "/devstoreaccount1/myqueue/messages", "visibilitytimeout=1&messagettl=-1");
    req_header(&r, "Content-Length", "102");
    req_header(&r, "Content-Type", "application/xml");
    req_header(&r, "x-ms-version", "2021-02-12");
    req_header(&r, "x-ms-date", "Sun, 22 Nov 2026 01:36:56 GMT");
    req_header(&r, "x-ms-client-request-id", "33c8af88-e615-11f1-9233-bde9068d5669");
    req_header(&r, "Authorization", "SharedKey devstoreaccount1:" QUEUE_POST_SIG_KEY1);
    assert_int_equal(nb_sharedkey_verify(NB_STORAGE_QUEUE, &a, &r, NULL, &sts), NB_ERR_AUTH);
    req_cleanup(&r);

    nb_buf_cleanup(&sts);
    nb_accounts_cleanup(&a);
}

static void test_verify_key2_accepted(void **state)
{
    (void)state;
    struct nb_accounts a;
    struct nb_req r;
    nb_accounts_init(&a);
    assert_int_equal(nb_accounts_add_spec(&a, NB_DEV_ACCOUNT ":" NB_DEV_KEY ":" KEY2_B64), NB_OK);
    assert_int_equal(a.n, 1);
    queue_post_req(&r);
    req_header(&r, "Authorization", "SharedKey devstoreaccount1:" QUEUE_POST_SIG_KEY2);
    assert_int_equal(nb_sharedkey_verify(NB_STORAGE_QUEUE, &a, &r, NULL, NULL), NB_OK);
    req_cleanup(&r);
    queue_post_req(&r);
    req_header(&r, "Authorization", "SharedKey devstoreaccount1:" QUEUE_POST_SIG_KEY1);
    assert_int_equal(nb_sharedkey_verify(NB_STORAGE_QUEUE, &a, &r, NULL, NULL), NB_OK);
    req_cleanup(&r);
    nb_accounts_cleanup(&a);
}

/* Table stats: sent to /{a}-secondary/{a}/ but signed over the primary path. */
static void test_verify_secondary_retry(void **state)
{
    (void)state;
    struct nb_accounts a;
    struct nb_req r;
    struct nb_buf sts;
    nb_accounts_init(&a);
    nb_buf_init(&sts, 1 << 16);
    req_init(&r, "GET", "/devstoreaccount1-secondary/devstoreaccount1/",
             "restype=service&comp=stats");
    req_header(&r, "x-ms-date", "Sun, 22 Nov 2026 01:36:57 GMT");
    req_header(&r, "Date", "Sun, 22 Nov 2026 01:36:57 GMT");
    req_header(&r, "x-ms-version", "2019-02-02");
    req_header(&r, "Authorization", "SharedKey devstoreaccount1:" TABLE_STATS_SIG_KEY1);
    assert_int_equal(nb_sharedkey_verify(NB_STORAGE_TABLE, &a, &r, NULL, &sts), NB_OK);
    assert_string_equal(nb_buf_cstr(&sts), "");

    /* The as-received path is what signs first, and what a failure reports. */
    r.headers[r.nheaders - 1].value = "SharedKey devstoreaccount1:" QUEUE_POST_SIG_KEY1;
    assert_int_equal(nb_sharedkey_verify(NB_STORAGE_TABLE, &a, &r, NULL, &sts), NB_ERR_AUTH);
    assert_string_equal(nb_buf_cstr(&sts),
                        "GET\n\n\nSun, 22 Nov 2026 01:36:57 GMT\n/devstoreaccount1"
                        "/devstoreaccount1-secondary/devstoreaccount1/?comp=stats");
    req_cleanup(&r);
    nb_buf_cleanup(&sts);
    nb_accounts_cleanup(&a);
}

static void test_verify_not_sharedkey(void **state)
{
    (void)state;
    struct nb_accounts a;
    struct nb_req r;
    nb_accounts_init(&a);
    queue_post_req(&r);
    assert_int_equal(nb_sharedkey_verify(NB_STORAGE_QUEUE, &a, &r, NULL, NULL), NB_ERR_INVALID);
    req_header(&r, "Authorization", "Bearer abc.def.ghi");
    assert_int_equal(nb_sharedkey_verify(NB_STORAGE_QUEUE, &a, &r, NULL, NULL), NB_ERR_INVALID);
    r.headers[r.nheaders - 1].value = "SharedKey devstoreaccount1";
    assert_int_equal(nb_sharedkey_verify(NB_STORAGE_QUEUE, &a, &r, NULL, NULL), NB_ERR_AUTH);
    r.headers[r.nheaders - 1].value = "SharedKey nosuchaccount:" QUEUE_POST_SIG_KEY1;
    assert_int_equal(nb_sharedkey_verify(NB_STORAGE_QUEUE, &a, &r, NULL, NULL), NB_ERR_AUTH);
    req_cleanup(&r);
    nb_accounts_cleanup(&a);
}

/* A key for account B must not authorise a request addressed to account A,
 * even when the signature over that path is right. */
static void test_verify_header_account_must_match_path(void **state)
{
    (void)state;
    struct nb_accounts a;
    struct nb_req r;
    struct nb_buf b;
    char mac[NB_HMAC_B64_LEN], auth[128];
    nb_accounts_init(&a);
    assert_int_equal(nb_accounts_add_spec(&a, "other:" KEY2_B64), NB_OK);
    const struct nb_account *other = nb_accounts_find(&a, "other");
    queue_post_req(&r); /* path /devstoreaccount1/... */
    nb_buf_init(&b, 1 << 16);
    assert_int_equal(
        nb_sharedkey_string_to_sign(NB_STORAGE_QUEUE, NB_SHAREDKEY, "other", &r, r.raw_path, &b),
        NB_OK);
    nb_sharedkey_hmac(other->key[0], other->key_len[0], nb_buf_cstr(&b), b.len, mac);
    snprintf(auth, sizeof(auth), "SharedKey other:%s", mac);
    req_header(&r, "Authorization", auth);
    assert_int_equal(nb_sharedkey_verify(NB_STORAGE_QUEUE, &a, &r, NULL, NULL), NB_ERR_AUTH);
    nb_buf_cleanup(&b);
    req_cleanup(&r);
    nb_accounts_cleanup(&a);
}

static void test_verify_lite(void **state)
{
    (void)state;
    struct nb_accounts a;
    struct nb_req r;
    struct nb_buf b;
    char mac[NB_HMAC_B64_LEN], auth[128];
    nb_accounts_init(&a);
    const struct nb_account *dev = nb_accounts_find(&a, NB_DEV_ACCOUNT);
    table_get_req(&r);
    nb_buf_init(&b, 1 << 16);
    assert_int_equal(nb_sharedkey_string_to_sign(NB_STORAGE_TABLE, NB_SHAREDKEY_LITE,
                                                 NB_DEV_ACCOUNT, &r, r.raw_path, &b),
                     NB_OK);
    nb_sharedkey_hmac(dev->key[0], dev->key_len[0], nb_buf_cstr(&b), b.len, mac);
    snprintf(auth, sizeof(auth), "SharedKeyLite devstoreaccount1:%s", mac);
    req_header(&r, "Authorization", auth);
    assert_int_equal(nb_sharedkey_verify(NB_STORAGE_TABLE, &a, &r, NULL, NULL), NB_OK);
    /* The full SharedKey signature does not pass as Lite. */
    r.headers[r.nheaders - 1].value = "SharedKeyLite devstoreaccount1:" TABLE_GET_SIG_KEY1;
    assert_int_equal(nb_sharedkey_verify(NB_STORAGE_TABLE, &a, &r, NULL, NULL), NB_ERR_AUTH);
    nb_buf_cleanup(&b);
    req_cleanup(&r);
    nb_accounts_cleanup(&a);
}

/* ---- accounts ---------------------------------------------------------- */

static void test_accounts_default(void **state)
{
    (void)state;
    struct nb_accounts a;
    nb_accounts_init(&a);
    assert_int_equal(a.n, 1);
    const struct nb_account *dev = nb_accounts_find(&a, NB_DEV_ACCOUNT);
    assert_non_null(dev);
    assert_string_equal(dev->key_b64[0], NB_DEV_KEY);
    assert_int_equal(dev->key_len[0], 64);
    assert_null(dev->key[1]);
    assert_null(dev->key_b64[1]);
    assert_null(nb_accounts_find(&a, "nope"));
    assert_null(nb_accounts_find(&a, NULL));
    nb_accounts_cleanup(&a);
}

static void test_accounts_spec(void **state)
{
    (void)state;
    struct nb_accounts a;
    nb_accounts_init(&a);
    assert_int_equal(nb_accounts_add_spec(&a, "acct2:" KEY2_B64), NB_OK);
    assert_int_equal(a.n, 2);
    const struct nb_account *x = nb_accounts_find(&a, "acct2");
    assert_non_null(x);
    assert_int_equal(x->key_len[0], 33);
    assert_memory_equal(x->key[0], "nimbus-test-key2-0123456789abcdef", 33);
    assert_null(x->key[1]);

    /* Replacing keeps one entry and takes the new keys. */
    assert_int_equal(nb_accounts_add_spec(&a, "acct2:" NB_DEV_KEY ":" KEY2_B64), NB_OK);
    assert_int_equal(a.n, 2);
    x = nb_accounts_find(&a, "acct2");
    assert_int_equal(x->key_len[0], 64);
    assert_int_equal(x->key_len[1], 33);
    assert_string_equal(x->key_b64[1], KEY2_B64);

    /* Bad specs change nothing. */
    assert_int_equal(nb_accounts_add_spec(&a, "acct3"), NB_ERR_INVALID);
    assert_int_equal(nb_accounts_add_spec(&a, "acct3:"), NB_ERR_INVALID);
    assert_int_equal(nb_accounts_add_spec(&a, ":" KEY2_B64), NB_ERR_INVALID);
    assert_int_equal(nb_accounts_add_spec(&a, "acct3:not base64!"), NB_ERR_INVALID);
    assert_int_equal(nb_accounts_add_spec(&a, "acct3:abc"), NB_ERR_INVALID); /* bad length */
    assert_int_equal(nb_accounts_add_spec(&a, "acct3:" KEY2_B64 ":%%%%"), NB_ERR_INVALID);
    assert_int_equal(nb_accounts_add_spec(&a, "acct3:" KEY2_B64 ":"), NB_ERR_INVALID);
    assert_int_equal(nb_accounts_add_spec(&a, "acct3:" KEY2_B64 ":" KEY2_B64 ":" KEY2_B64),
                     NB_ERR_INVALID);
    assert_int_equal(nb_accounts_add_spec(&a, "acc/3:" KEY2_B64), NB_ERR_INVALID);
    assert_int_equal(a.n, 2);
    assert_null(nb_accounts_find(&a, "acct3"));
    nb_accounts_cleanup(&a);
}

static void test_accounts_limit(void **state)
{
    (void)state;
    struct nb_accounts a;
    char spec[128];
    nb_accounts_init(&a);
    for (int i = 1; i < NB_MAX_ACCOUNTS; i++) {
        snprintf(spec, sizeof(spec), "acct%d:%s", i, KEY2_B64);
        assert_int_equal(nb_accounts_add_spec(&a, spec), NB_OK);
    }
    assert_int_equal(a.n, NB_MAX_ACCOUNTS);
    assert_int_equal(nb_accounts_add_spec(&a, "onemore:" KEY2_B64), NB_ERR_TOO_LARGE);
    /* Replacing still works when full. */
    assert_int_equal(nb_accounts_add_spec(&a, "acct1:" NB_DEV_KEY), NB_OK);
    nb_accounts_cleanup(&a);
    assert_int_equal(a.n, 0);
}

static void test_accounts_env(void **state)
{
    (void)state;
    struct nb_accounts a;
    nb_accounts_init(&a);
    assert_int_equal(
        nb_accounts_add_env(&a, "account1:" KEY2_B64 ":" NB_DEV_KEY "; account2:" NB_DEV_KEY ";\n"),
        NB_OK);
    assert_int_equal(a.n, 3);
    const struct nb_account *x = nb_accounts_find(&a, "account1");
    assert_non_null(x);
    assert_int_equal(x->key_len[0], 33);
    assert_int_equal(x->key_len[1], 64);
    x = nb_accounts_find(&a, "account2");
    assert_non_null(x);
    assert_int_equal(x->key_len[0], 64);
    assert_null(x->key[1]);
    assert_non_null(nb_accounts_find(&a, NB_DEV_ACCOUNT));

    /* One bad entry: nothing from the variable is added. */
    assert_int_equal(nb_accounts_add_env(&a, "account3:" KEY2_B64 ";account4:bad*key"),
                     NB_ERR_INVALID);
    assert_null(nb_accounts_find(&a, "account3"));
    assert_int_equal(a.n, 3);
    assert_int_equal(nb_accounts_add_env(&a, ""), NB_OK);
    assert_int_equal(a.n, 3);
    nb_accounts_cleanup(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_queue_captured_string),
        cmocka_unit_test(test_table_captured_string),
        cmocka_unit_test(test_hmac_vectors),
        cmocka_unit_test(test_queue_canonicalisation_rules),
        cmocka_unit_test(test_table_comp_and_date_fallback),
        cmocka_unit_test(test_lite_strings),
        cmocka_unit_test(test_string_to_sign_respects_max),
        cmocka_unit_test(test_verify_queue_key1),
        cmocka_unit_test(test_verify_table_key1),
        cmocka_unit_test(test_verify_bad_signature_reports_string),
        cmocka_unit_test(test_verify_key2_accepted),
        cmocka_unit_test(test_verify_secondary_retry),
        cmocka_unit_test(test_verify_not_sharedkey),
        cmocka_unit_test(test_verify_header_account_must_match_path),
        cmocka_unit_test(test_verify_lite),
        cmocka_unit_test(test_accounts_default),
        cmocka_unit_test(test_accounts_spec),
        cmocka_unit_test(test_accounts_limit),
        cmocka_unit_test(test_accounts_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
