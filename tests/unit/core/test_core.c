/* Core utilities: bounded buffers, arena, encodings, wire time formats and
 * log redaction. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include "core/arena.h"
#include "core/buf.h"
#include "core/encode.h"
#include "core/log.h"
#include "core/random.h"
#include "core/timefmt.h"

static void test_buf_respects_max(void **state)
{
    (void)state;
    struct nb_buf b;
    nb_buf_init(&b, 8);
    assert_int_equal(nb_buf_adds(&b, "12345678"), NB_OK);
    assert_int_equal(nb_buf_addc(&b, 'x'), NB_ERR_TOO_LARGE);
    assert_int_equal(b.len, 8);
    assert_string_equal(nb_buf_cstr(&b), "12345678");
    nb_buf_reset(&b);
    assert_int_equal(nb_buf_printf(&b, "%d-%s", 42, "ab"), NB_OK);
    assert_string_equal(nb_buf_cstr(&b), "42-ab");
    assert_int_equal(nb_buf_printf(&b, "%s", "too long"), NB_ERR_TOO_LARGE);
    nb_buf_cleanup(&b);
}

static void test_buf_xml_escape(void **state)
{
    (void)state;
    struct nb_buf b;
    nb_buf_init(&b, 1024);
    const char *s = "a<b>&'\"c";
    nb_buf_add_xml(&b, s, strlen(s));
    assert_string_equal(nb_buf_cstr(&b), "a&lt;b&gt;&amp;&apos;&quot;c");
    nb_buf_cleanup(&b);
}

static void test_arena(void **state)
{
    (void)state;
    struct nb_arena a;
    nb_arena_init(&a);
    for (int i = 0; i < 1000; i++) {
        char *p = nb_arena_printf(&a, "item-%d", i);
        assert_string_equal(p, nb_arena_printf(&a, "item-%d", i));
        assert_int_equal((uintptr_t)p % 16, 0);
    }
    char *big = nb_arena_alloc(&a, 100000);
    memset(big, 1, 100000);
    nb_arena_cleanup(&a);
}

static void test_base64(void **state)
{
    (void)state;
    char *e = nb_base64_encode("hello", 5);
    assert_string_equal(e, "aGVsbG8=");
    unsigned char *d = NULL;
    size_t n = 0;
    assert_true(nb_base64_decode(e, strlen(e), &d, &n));
    assert_int_equal(n, 5);
    assert_memory_equal(d, "hello", 5);
    free(d);
    free(e);
    assert_false(nb_base64_decode("abc", 3, &d, &n));
    assert_false(nb_base64_decode("ab!d", 4, &d, &n));
    char *u = nb_base64url_encode("\xfb\xff", 2);
    assert_string_equal(u, "-_8");
    free(u);
}

static void test_pct_decode(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(nb_pct_decode("tAyldS1YQ18%3D", 14, out), 12);
    assert_string_equal(out, "tAyldS1YQ18=");
    nb_pct_decode("a+b%2B%zz%4", 11, out);
    assert_string_equal(out, "a+b+%zz%4");
    struct nb_buf b;
    nb_buf_init(&b, 64);
    nb_pct_encode(&b, "a b/é", 6);
    assert_string_equal(nb_buf_cstr(&b), "a%20b%2F%C3%A9");
    nb_buf_cleanup(&b);
}

static void test_time_formats(void **state)
{
    (void)state;
    char r[NB_RFC1123_LEN], i[NB_ISO8601_LEN];
    nb_time_ms t = 1795311314000LL + 250; /* 2026-11-22T01:35:14.25Z */
    nb_time_rfc1123(t, r);
    assert_string_equal(r, "Sun, 22 Nov 2026 01:35:14 GMT");
    nb_time_iso8601(t, i);
    assert_string_equal(i, "2026-11-22T01:35:14.2500000Z");
    nb_time_rfc1123(253402300799000LL, r);
    assert_string_equal(r, "Fri, 31 Dec 9999 23:59:59 GMT");

    nb_time_ms p = 0;
    assert_int_equal(nb_time_parse_iso8601("2026-11-22T01:35:14Z", 20, &p), NB_OK);
    assert_int_equal(p, 1795311314000LL);
    assert_int_equal(nb_time_parse_iso8601("2030-01-01T00:00Z", 17, &p), NB_OK);
    assert_int_equal(nb_time_parse_iso8601("2030-01-01", 10, &p), NB_OK);
    assert_int_equal(nb_time_parse_iso8601("2026-11-22T01:35:14.2500000Z", 28, &p), NB_OK);
    assert_int_equal(p, t);
    assert_int_equal(nb_time_parse_iso8601("2026-13-01", 10, &p), NB_ERR_INVALID);
    assert_int_equal(nb_time_parse_iso8601("yesterday", 9, &p), NB_ERR_INVALID);
    assert_int_equal(nb_time_parse_iso8601("2026-11-22T01", 13, &p), NB_ERR_INVALID);
}

static void test_redaction(void **state)
{
    (void)state;
    struct nb_buf b;
    nb_buf_init(&b, 1024);
    nb_log_redact_query(&b, "/a/q/messages?sv=2021&sig=SECRET%3D&code=k1&x=1");
    assert_string_equal(nb_buf_cstr(&b), "/a/q/messages?sv=2021&sig=REDACTED&code=REDACTED&x=1");
    assert_null(strstr(nb_buf_cstr(&b), "SECRET"));
    /* Names are compared decoded, as the request parser reads them. */
    nb_buf_reset(&b);
    nb_log_redact_query(&b, "/api/f?%63ode=K2&CO%44E=K3&s%69g=K4&codex=ok");
    assert_string_equal(nb_buf_cstr(&b),
                        "/api/f?%63ode=REDACTED&CO%44E=REDACTED&s%69g=REDACTED&codex=ok");
    nb_buf_cleanup(&b);
}

static void test_uuid(void **state)
{
    (void)state;
    char a[37], b[37];
    nb_random_uuid(a);
    nb_random_uuid(b);
    assert_int_equal(strlen(a), 36);
    assert_int_equal(a[14], '4');
    assert_string_not_equal(a, b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_respects_max), cmocka_unit_test(test_buf_xml_escape),
        cmocka_unit_test(test_arena),            cmocka_unit_test(test_base64),
        cmocka_unit_test(test_pct_decode),       cmocka_unit_test(test_time_formats),
        cmocka_unit_test(test_redaction),        cmocka_unit_test(test_uuid),
    };
    return cmocka_run_group_tests_name("core", tests, NULL, NULL);
}
