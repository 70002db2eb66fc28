/* Unit tests for src/http/sas.c: the captured account and service SAS
 * strings of storage-queue-table.md §1.5 (signatures computed outside C),
 * time window, protocol, IP, stored policies, permissions and key ranges. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h> /* after the headers it needs */

#include "http/accounts.h"
#include "http/request.h"
#include "http/sas.h"

/* Test vectors stay one per line, copy-pasteable. */
/* clang-format off */
/* base64 of b"nimbus-test-key2-0123456789abcdef" */
#define KEY2_B64 "bmltYnVzLXRlc3Qta2V5Mi0wMTIzNDU2Nzg5YWJjZGVm"

/* Each sig is Base64(HMAC-SHA256(K, M)), K = base64-decoded NB_DEV_KEY unless
 * noted, M the string-to-sign in the comment above it, from:
 *   python3 -c 'import hmac,hashlib,base64;print(base64.b64encode(hmac.new(K,M.encode(),hashlib.sha256).digest()).decode())'
 * and then URL-encoded with urllib.parse.quote(sig, safe=''). */

/* M = "devstoreaccount1\nrwdlacup\nq\nsco\n\n2026-11-22T02:36:56Z\n\n\n2021-02-12\n\n" */
#define ACCOUNT_SAS                                                                                \
    "sv=2021-02-12&ss=q&srt=sco&sp=rwdlacup&se=2026-11-22T02%3A36%3A56Z"                           \
    "&sig=rQ%2FuRNtiGtBuS6sgBLSVnIHbq9eO8uRnRM0ojRi1Mbs%3D"
/* Same M, K = base64-decoded KEY2_B64. */
#define ACCOUNT_SAS_KEY2                                                                           \
    "sv=2021-02-12&ss=q&srt=sco&sp=rwdlacup&se=2026-11-22T02%3A36%3A56Z"                           \
    "&sig=3jMwQSkH2Q7lnqxVn8A5RpiISXtEiuCjtqpMgOC%2B6yk%3D"
/* M = "devstoreaccount1\nraud\nt\nso\n\n2026-11-22T02:36:58Z\n\n\n2019-02-02\n" (no ses line) */
#define ACCOUNT_SAS_OLD                                                                            \
    "sv=2019-02-02&ss=t&srt=so&sp=raud&se=2026-11-22T02%3A36%3A58Z"                                \
    "&sig=ADlq60LZNHKZZ4%2BIzzmISgxXfc4Ynr7doBoeE9Vekcg%3D"
/* M = "raup\n2026-11-22T01:31:56Z\n2026-11-22T02:36:56Z\n/queue/devstoreaccount1/myqueue\n\n\n\n2021-02-12" */
#define QUEUE_SAS                                                                                  \
    "sv=2021-02-12&st=2026-11-22T01%3A31%3A56Z&se=2026-11-22T02%3A36%3A56Z&sp=raup"                \
    "&sig=wVp88YjtcciManlLesGQRZC3s%2B42%2F7W78uXP0YgNJio%3D"
/* M = "raud\n\n2026-11-22T02:36:58Z\n/table/devstoreaccount1/mytable\n\n\n\n2019-02-02\npk1\n\npk9\n" */
#define TABLE_SAS                                                                                  \
    "sv=2019-02-02&tn=MyTable&spk=pk1&epk=pk9&se=2026-11-22T02%3A36%3A58Z&sp=raud"                 \
    "&sig=Hc%2B21hnVF6QgPAYPZgBJJRPaiLnDR7i8tK%2By00GYIg4%3D"
/* M = "r\n\n2026-11-22T02:36:56Z\n/queue/devstoreaccount1/myqueue\n\n\nhttps\n2021-02-12" */
#define QUEUE_SAS_HTTPS                                                                            \
    "sv=2021-02-12&se=2026-11-22T02%3A36%3A56Z&sp=r&spr=https"                                     \
    "&sig=9dq1CNiXdzqWO5Y58mVf4OvxLLSzeiH8MENnokIAvWo%3D"
/* M = "\n\n\n/queue/devstoreaccount1/myqueue\npol1\n\n\n2021-02-12" */
#define QUEUE_SAS_SI "sv=2021-02-12&si=pol1&sig=VLGMGiLxiK%2FxEdYMRTGCU0gNBA1SXOWpitqPnxCJc2E%3D"
/* M = "r\n\n2026-11-22T02:36:56Z\n/queue/devstoreaccount1/myqueue\n\n127.0.0.1-127.0.0.10\n\n2021-02-12" */
#define QUEUE_SAS_SIP                                                                              \
    "sv=2021-02-12&se=2026-11-22T02%3A36%3A56Z&sp=r&sip=127.0.0.1-127.0.0.10"                      \
    "&sig=%2FBBXPYStXN004jg%2FnvxTv1Qs5OGX%2FQWkri7JZJhA4Wg%3D"

/* python3 -c 'import datetime as d;print(int(d.datetime(2026,11,22,1,31,56,tzinfo=d.timezone.utc).timestamp()*1000))' */
#define T_QUEUE_ST 1795311116000LL /* 2026-11-22T01:31:56Z */
#define T_QUEUE_SE 1795315016000LL /* 2026-11-22T02:36:56Z */
#define T_TABLE_SE 1795315018000LL /* 2026-11-22T02:36:58Z */
#define NOW (T_QUEUE_ST + 60000)

/* clang-format on */

#define QPATH "/devstoreaccount1/myqueue/messages"

struct fixture {
    struct nb_accounts accounts;
    struct nb_req req;
    struct nb_sas sas;
    struct nb_sas_result res;
};

static void set_req(struct fixture *f, const char *method, const char *path, const char *query)
{
    nb_arena_cleanup(&f->req.arena);
    memset(&f->req, 0, sizeof(f->req));
    nb_arena_init(&f->req.arena);
    nb_buf_init(&f->req.body, 0);
    f->req.method = method;
    f->req.raw_path = path;
    f->req.raw_query = query;
    nb_req_parse_query(&f->req);
}

static int setup(void **state)
{
    struct fixture *f = test_calloc(1, sizeof(*f));
    nb_accounts_init(&f->accounts);
    nb_arena_init(&f->req.arena);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    nb_arena_cleanup(&f->req.arena);
    nb_accounts_cleanup(&f->accounts);
    test_free(f);
    return 0;
}

static enum nb_err verify(struct fixture *f, enum nb_storage_svc svc, const char *resource,
                          const char *ip, nb_time_ms now, nb_sas_policy_lookup lookup, void *ctx)
{
    return nb_sas_verify(svc, &f->accounts, NB_DEV_ACCOUNT, resource, &f->req, ip, now, lookup, ctx,
                         &f->sas, &f->res);
}

static void expect_fail(struct fixture *f, enum nb_err rc, const char *code)
{
    assert_int_equal(rc, NB_ERR_AUTH);
    assert_non_null(f->res.error_code);
    assert_string_equal(f->res.error_code, code);
    assert_non_null(f->res.detail);
}

/* ---- account SAS -------------------------------------------------------- */

static void test_account_sas_captured(void **state)
{
    struct fixture *f = *state;
    const char *code = NULL;
    set_req(f, "GET", "/devstoreaccount1/", "comp=list&" ACCOUNT_SAS);
    assert_true(nb_sas_present(&f->req));
    assert_int_equal(verify(f, NB_STORAGE_QUEUE, "", NULL, NOW, NULL, NULL), NB_OK);
    assert_null(f->res.error_code);
    assert_int_equal(f->sas.kind, NB_SAS_ACCOUNT);
    assert_string_equal(f->sas.perms, "rwdlacup");
    assert_int_equal(f->sas.expiry, T_QUEUE_SE);
    assert_int_equal(f->sas.start, 0);
    assert_true(nb_sas_allows(&f->sas, NB_STORAGE_QUEUE, NB_SAS_RT_SERVICE, 'l', &code));
    assert_null(code);
    assert_true(nb_sas_allows(&f->sas, NB_STORAGE_QUEUE, NB_SAS_RT_OBJECT, 'p', &code));
    /* ss=q only: the table service is refused. */
    assert_false(nb_sas_allows(&f->sas, NB_STORAGE_TABLE, NB_SAS_RT_OBJECT, 'r', &code));
    assert_string_equal(code, "AuthorizationServiceMismatch");
}

static void test_account_sas_key2(void **state)
{
    struct fixture *f = *state;
    set_req(f, "GET", "/devstoreaccount1/", ACCOUNT_SAS_KEY2);
    expect_fail(f, verify(f, NB_STORAGE_QUEUE, "", NULL, NOW, NULL, NULL), "AuthenticationFailed");
    assert_int_equal(nb_accounts_add_spec(&f->accounts, NB_DEV_ACCOUNT ":" NB_DEV_KEY ":" KEY2_B64),
                     NB_OK);
    assert_int_equal(verify(f, NB_STORAGE_QUEUE, "", NULL, NOW, NULL, NULL), NB_OK);
}

/* Before 2020-12-06 the account string has no ses line. */
static void test_account_sas_old_version(void **state)
{
    struct fixture *f = *state;
    const char *code = NULL;
    set_req(f, "GET", "/devstoreaccount1/Tables", ACCOUNT_SAS_OLD);
    assert_int_equal(verify(f, NB_STORAGE_TABLE, "", NULL, NOW, NULL, NULL), NB_OK);
    assert_int_equal(f->sas.expiry, T_TABLE_SE);
    /* srt=so: no container-level operations. */
    assert_false(nb_sas_allows(&f->sas, NB_STORAGE_TABLE, NB_SAS_RT_CONTAINER, 'c', &code));
    assert_string_equal(code, "AuthorizationResourceTypeMismatch");
    assert_true(nb_sas_allows(&f->sas, NB_STORAGE_TABLE, NB_SAS_RT_OBJECT, 'a', &code));
    assert_false(nb_sas_allows(&f->sas, NB_STORAGE_TABLE, NB_SAS_RT_OBJECT, 'l', &code));
    assert_string_equal(code, "AuthorizationPermissionMismatch");
}

static void test_account_sas_tampered(void **state)
{
    struct fixture *f = *state;
    /* sp widened after signing */
    set_req(f, "GET", "/devstoreaccount1/",
            "sv=2019-02-02&ss=t&srt=so&sp=rwdlacup&se=2026-11-22T02%3A36%3A58Z"
            "&sig=ADlq60LZNHKZZ4%2BIzzmISgxXfc4Ynr7doBoeE9Vekcg%3D");
    expect_fail(f, verify(f, NB_STORAGE_TABLE, "", NULL, NOW, NULL, NULL), "AuthenticationFailed");
    assert_non_null(strstr(f->res.detail, "rwdlacup"));
    /* garbage signature */
    set_req(f, "GET", "/devstoreaccount1/",
            "sv=2021-02-12&ss=q&srt=sco&sp=rwdlacup&se=2026-11-22T02%3A36%3A56Z&sig=abc");
    expect_fail(f, verify(f, NB_STORAGE_QUEUE, "", NULL, NOW, NULL, NULL), "AuthenticationFailed");
    /* no sig at all */
    set_req(f, "GET", "/devstoreaccount1/", "sv=2021-02-12&ss=q");
    assert_false(nb_sas_present(&f->req));
    expect_fail(f, verify(f, NB_STORAGE_QUEUE, "", NULL, NOW, NULL, NULL), "AuthenticationFailed");
}

static void test_unknown_account(void **state)
{
    struct fixture *f = *state;
    set_req(f, "GET", "/other/", ACCOUNT_SAS);
    enum nb_err rc = nb_sas_verify(NB_STORAGE_QUEUE, &f->accounts, "other", "", &f->req, NULL, NOW,
                                   NULL, NULL, &f->sas, &f->res);
    expect_fail(f, rc, "AuthenticationFailed");
}

/* ---- service SAS -------------------------------------------------------- */

static void test_queue_sas_captured(void **state)
{
    struct fixture *f = *state;
    const char *code = NULL;
    set_req(f, "POST", QPATH, "visibilitytimeout=0&" QUEUE_SAS);
    assert_int_equal(verify(f, NB_STORAGE_QUEUE, "myqueue", NULL, NOW, NULL, NULL), NB_OK);
    assert_int_equal(f->sas.kind, NB_SAS_SERVICE);
    assert_int_equal(f->sas.start, T_QUEUE_ST);
    assert_int_equal(f->sas.expiry, T_QUEUE_SE);
    assert_true(nb_sas_allows(&f->sas, NB_STORAGE_QUEUE, NB_SAS_RT_OBJECT, 'a', &code));
    assert_true(nb_sas_allows(&f->sas, NB_STORAGE_QUEUE, NB_SAS_RT_OBJECT, 'p', &code));
    assert_true(nb_sas_allows(&f->sas, NB_STORAGE_QUEUE, NB_SAS_RT_CONTAINER, 'r', &code));
    /* raup has no d, and a service SAS never reaches the service level. */
    assert_false(nb_sas_allows(&f->sas, NB_STORAGE_QUEUE, NB_SAS_RT_CONTAINER, 'd', &code));
    assert_string_equal(code, "AuthorizationPermissionMismatch");
    assert_false(nb_sas_allows(&f->sas, NB_STORAGE_QUEUE, NB_SAS_RT_SERVICE, 'r', &code));
    assert_string_equal(code, "AuthorizationResourceTypeMismatch");
}

static void test_queue_sas_other_queue(void **state)
{
    struct fixture *f = *state;
    set_req(f, "POST", "/devstoreaccount1/otherqueue/messages", QUEUE_SAS);
    expect_fail(f, verify(f, NB_STORAGE_QUEUE, "otherqueue", NULL, NOW, NULL, NULL),
                "AuthenticationFailed");
    set_req(f, "GET", "/devstoreaccount1/", "comp=list&" QUEUE_SAS);
    expect_fail(f, verify(f, NB_STORAGE_QUEUE, "", NULL, NOW, NULL, NULL), "AuthenticationFailed");
}

static void test_sas_time_window(void **state)
{
    struct fixture *f = *state;
    set_req(f, "POST", QPATH, QUEUE_SAS);
    /* Both ends are inclusive. */
    assert_int_equal(verify(f, NB_STORAGE_QUEUE, "myqueue", NULL, T_QUEUE_ST, NULL, NULL), NB_OK);
    assert_int_equal(verify(f, NB_STORAGE_QUEUE, "myqueue", NULL, T_QUEUE_SE, NULL, NULL), NB_OK);
    /* Not yet started. */
    expect_fail(f, verify(f, NB_STORAGE_QUEUE, "myqueue", NULL, T_QUEUE_ST - 1, NULL, NULL),
                "AuthenticationFailed");
    assert_non_null(strstr(f->res.detail, "start"));
    /* Expired. */
    expect_fail(f, verify(f, NB_STORAGE_QUEUE, "myqueue", NULL, T_QUEUE_SE + 1, NULL, NULL),
                "AuthenticationFailed");
    assert_non_null(strstr(f->res.detail, "expiry"));
    /* Account SAS expiry too. */
    set_req(f, "GET", "/devstoreaccount1/", ACCOUNT_SAS);
    expect_fail(f, verify(f, NB_STORAGE_QUEUE, "", NULL, T_QUEUE_SE + 1000, NULL, NULL),
                "AuthenticationFailed");
}

static void test_table_sas_captured(void **state)
{
    struct fixture *f = *state;
    const char *code = NULL;
    set_req(f, "GET", "/devstoreaccount1/mytable()", TABLE_SAS);
    /* tn=MyTable is signed lowercase and matches the table case-insensitively. */
    assert_int_equal(verify(f, NB_STORAGE_TABLE, "mytable", NULL, NOW, NULL, NULL), NB_OK);
    assert_int_equal(f->sas.expiry, T_TABLE_SE);
    assert_string_equal(f->sas.tn, "MyTable");
    assert_true(nb_sas_allows(&f->sas, NB_STORAGE_TABLE, NB_SAS_RT_OBJECT, 'r', &code));
    assert_true(nb_sas_allows(&f->sas, NB_STORAGE_TABLE, NB_SAS_RT_OBJECT, 'd', &code));
    assert_false(nb_sas_allows(&f->sas, NB_STORAGE_TABLE, NB_SAS_RT_OBJECT, 'w', &code));
    assert_string_equal(code, "AuthorizationPermissionMismatch");
    /* spk=pk1 .. epk=pk9, inclusive; no row bounds. */
    assert_true(nb_sas_key_in_range(&f->sas, "pk1", ""));
    assert_true(nb_sas_key_in_range(&f->sas, "pk5", "zzz"));
    assert_true(nb_sas_key_in_range(&f->sas, "pk9", "zzz"));
    assert_false(nb_sas_key_in_range(&f->sas, "pk0", "a"));
    assert_false(nb_sas_key_in_range(&f->sas, "pk91", "a"));
    /* Another table. */
    set_req(f, "GET", "/devstoreaccount1/othertable()", TABLE_SAS);
    expect_fail(f, verify(f, NB_STORAGE_TABLE, "othertable", NULL, NOW, NULL, NULL),
                "AuthenticationFailed");
}

static void test_key_range_rows(void **state)
{
    (void)state;
    struct nb_sas s;
    memset(&s, 0, sizeof(s));
    s.spk = "b";
    s.srk = "r5";
    s.epk = "d";
    s.erk = "r2";
    assert_false(nb_sas_key_in_range(&s, "b", "r4"));
    assert_true(nb_sas_key_in_range(&s, "b", "r5"));
    assert_true(nb_sas_key_in_range(&s, "c", "a"));
    assert_true(nb_sas_key_in_range(&s, "d", "r2"));
    assert_false(nb_sas_key_in_range(&s, "d", "r3"));
    assert_false(nb_sas_key_in_range(&s, "a", "r9"));
    memset(&s, 0, sizeof(s)); /* no range at all */
    assert_true(nb_sas_key_in_range(&s, "anything", NULL));
}

static void test_spr_https(void **state)
{
    struct fixture *f = *state;
    set_req(f, "GET", QPATH, QUEUE_SAS_HTTPS);
    expect_fail(f, verify(f, NB_STORAGE_QUEUE, "myqueue", NULL, NOW, NULL, NULL),
                "AuthorizationProtocolMismatch");
    f->req.is_https = true;
    assert_int_equal(verify(f, NB_STORAGE_QUEUE, "myqueue", NULL, NOW, NULL, NULL), NB_OK);
}

static void test_sip(void **state)
{
    struct fixture *f = *state;
    set_req(f, "GET", QPATH, QUEUE_SAS_SIP);
    assert_int_equal(verify(f, NB_STORAGE_QUEUE, "myqueue", "127.0.0.5", NOW, NULL, NULL), NB_OK);
    assert_int_equal(verify(f, NB_STORAGE_QUEUE, "myqueue", "127.0.0.10", NOW, NULL, NULL), NB_OK);
    assert_int_equal(verify(f, NB_STORAGE_QUEUE, "myqueue", "::ffff:127.0.0.1", NOW, NULL, NULL),
                     NB_OK);
    /* No client address known: not checked. */
    assert_int_equal(verify(f, NB_STORAGE_QUEUE, "myqueue", NULL, NOW, NULL, NULL), NB_OK);
    expect_fail(f, verify(f, NB_STORAGE_QUEUE, "myqueue", "127.0.0.11", NOW, NULL, NULL),
                "AuthorizationSourceIPMismatch");
    expect_fail(f, verify(f, NB_STORAGE_QUEUE, "myqueue", "10.0.0.1", NOW, NULL, NULL),
                "AuthorizationSourceIPMismatch");
    expect_fail(f, verify(f, NB_STORAGE_QUEUE, "myqueue", "::1", NOW, NULL, NULL),
                "AuthorizationSourceIPMismatch");
}

/* ---- stored access policies --------------------------------------------- */

struct policy_ctx {
    int calls;
    const char *resource;
    struct nb_sas_policy pol;
};

static enum nb_err lookup(void *ctx, const char *account, const char *resource, const char *id,
                          struct nb_sas_policy *out)
{
    struct policy_ctx *p = ctx;
    p->calls++;
    assert_string_equal(account, NB_DEV_ACCOUNT);
    p->resource = resource;
    if (strcmp(id, "pol1") != 0) return NB_ERR_NOT_FOUND;
    *out = p->pol;
    return NB_OK;
}

static void test_si_policy_fills_in(void **state)
{
    struct fixture *f = *state;
    const char *code = NULL;
    struct policy_ctx p;
    memset(&p, 0, sizeof(p));
    snprintf(p.pol.start, sizeof(p.pol.start), "2026-11-22T01:31:56Z");
    snprintf(p.pol.expiry, sizeof(p.pol.expiry), "2026-11-22T02:36:56.0000000Z");
    snprintf(p.pol.permission, sizeof(p.pol.permission), "ra");
    set_req(f, "POST", QPATH, QUEUE_SAS_SI);
    assert_int_equal(verify(f, NB_STORAGE_QUEUE, "myqueue", NULL, NOW, lookup, &p), NB_OK);
    assert_int_equal(p.calls, 1);
    assert_string_equal(p.resource, "myqueue");
    assert_string_equal(f->sas.perms, "ra");
    assert_string_equal(f->sas.sp, ""); /* what the URL said */
    assert_int_equal(f->sas.start, T_QUEUE_ST);
    assert_int_equal(f->sas.expiry, T_QUEUE_SE);
    assert_true(nb_sas_allows(&f->sas, NB_STORAGE_QUEUE, NB_SAS_RT_OBJECT, 'a', &code));
    assert_false(nb_sas_allows(&f->sas, NB_STORAGE_QUEUE, NB_SAS_RT_OBJECT, 'p', &code));
    assert_string_equal(code, "AuthorizationPermissionMismatch");

    /* The policy's window applies. */
    expect_fail(f, verify(f, NB_STORAGE_QUEUE, "myqueue", NULL, T_QUEUE_SE + 1, lookup, &p),
                "AuthenticationFailed");
    expect_fail(f, verify(f, NB_STORAGE_QUEUE, "myqueue", NULL, T_QUEUE_ST - 1, lookup, &p),
                "AuthenticationFailed");
    /* A policy without expiry leaves the SAS with none: refused. */
    p.pol.expiry[0] = '\0';
    expect_fail(f, verify(f, NB_STORAGE_QUEUE, "myqueue", NULL, NOW, lookup, &p),
                "AuthenticationFailed");
}

static void test_si_policy_missing(void **state)
{
    struct fixture *f = *state;
    set_req(f, "POST", QPATH, QUEUE_SAS_SI);
    /* No lookup available. */
    expect_fail(f, verify(f, NB_STORAGE_QUEUE, "myqueue", NULL, NOW, NULL, NULL),
                "AuthenticationFailed");
    /* Lookup does not know the id. */
    struct policy_ctx p;
    memset(&p, 0, sizeof(p));
    /* M = "\n\n\n/queue/devstoreaccount1/myqueue\npol2\n\n\n2021-02-12" */
    set_req(f, "POST", QPATH,
            "sv=2021-02-12&si=pol2&sig=K5ZVLFk8fQOeEJxmAD8O0fN%2B1HbV%2BwXUQVtODqRmlW0%3D");
    expect_fail(f, verify(f, NB_STORAGE_QUEUE, "myqueue", NULL, NOW, lookup, &p),
                "AuthenticationFailed");
    assert_int_equal(p.calls, 1);
    assert_non_null(strstr(f->res.detail, "pol2"));
}

static void test_allows_without_perm_letter(void **state)
{
    (void)state;
    struct nb_sas s;
    const char *code = "x";
    memset(&s, 0, sizeof(s));
    s.kind = NB_SAS_ACCOUNT;
    s.ss = "qt";
    s.srt = "s";
    s.perms = "r";
    assert_true(nb_sas_allows(&s, NB_STORAGE_TABLE, NB_SAS_RT_SERVICE, '\0', &code));
    assert_null(code);
    assert_false(nb_sas_allows(&s, NB_STORAGE_TABLE, NB_SAS_RT_OBJECT, '\0', &code));
    assert_string_equal(code, "AuthorizationResourceTypeMismatch");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_account_sas_captured, setup, teardown),
        cmocka_unit_test_setup_teardown(test_account_sas_key2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_account_sas_old_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_account_sas_tampered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_account, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_sas_captured, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_sas_other_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sas_time_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_table_sas_captured, setup, teardown),
        cmocka_unit_test(test_key_range_rows),
        cmocka_unit_test_setup_teardown(test_spr_https, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_si_policy_fills_in, setup, teardown),
        cmocka_unit_test_setup_teardown(test_si_policy_missing, setup, teardown),
        cmocka_unit_test(test_allows_without_perm_letter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
