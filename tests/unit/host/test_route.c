/* HTTP trigger routes: template parsing and every rejection rule, each
 * constraint passing and failing, optional / default / catch-all values,
 * %-decoding, and the router's precedence and method handling. */
/* cmocka needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "host/route.h"

#define GET 1u
#define POST 2u
#define PUT 4u

static struct nb_route *parse_ok(const char *tmpl)
{
    struct nb_route *r = NULL;
    char err[256] = "";
    if (nb_route_parse(tmpl, &r, err, sizeof(err)) != NB_OK)
        fail_msg("rejected '%s': %s", tmpl, err);
    assert_non_null(r);
    return r;
}

/* The template is rejected, with a reason naming it and containing `why`. */
static void assert_rejects(const char *tmpl, const char *why)
{
    struct nb_route *r = (struct nb_route *)(uintptr_t)1;
    char err[256] = "";
    if (nb_route_parse(tmpl, &r, err, sizeof(err)) != NB_ERR_INVALID)
        fail_msg("accepted '%s'", tmpl);
    assert_null(r);
    char prefix[300];
    snprintf(prefix, sizeof(prefix), "route '%s': ", tmpl);
    if (strncmp(err, prefix, strlen(prefix)) != 0) fail_msg("'%s': message '%s'", tmpl, err);
    if (!strstr(err, why)) fail_msg("'%s': message '%s' lacks '%s'", tmpl, err, why);
}

static bool matches(const char *tmpl, const char *path)
{
    struct nb_route *r = parse_ok(tmpl);
    struct nb_route_values v;
    bool ok = nb_route_match(r, path, &v);
    if (!ok) assert_int_equal(v.n, 0);
    nb_route_values_cleanup(&v);
    nb_route_free(r);
    return ok;
}

static void assert_matches(const char *tmpl, const char *path)
{
    if (!matches(tmpl, path)) fail_msg("'%s' does not match '%s'", tmpl, path);
}

static void assert_no_match(const char *tmpl, const char *path)
{
    if (matches(tmpl, path)) fail_msg("'%s' matches '%s'", tmpl, path);
}

#define ABSENT "<absent>"

/* A value by name (case-insensitive); ABSENT for NULL; fails if no entry. */
static const char *val(const struct nb_route_values *v, const char *name)
{
    for (size_t i = 0; i < v->n; i++)
        if (strcasecmp(v->items[i].name, name) == 0)
            return v->items[i].value ? v->items[i].value : ABSENT;
    fail_msg("no value named %s", name);
    return NULL;
}

/* Match tmpl against path, expecting success; the caller cleans up out. */
static void match_values(const char *tmpl, const char *path, struct nb_route_values *out)
{
    struct nb_route *r = parse_ok(tmpl);
    bool ok = nb_route_match(r, path, out);
    nb_route_free(r);
    if (!ok) fail_msg("'%s' does not match '%s'", tmpl, path);
}

/* ---- literals, paths, decoding ---------------------------------------- */

static void test_literal_case_insensitive(void **state)
{
    (void)state;
    assert_matches("Items/All", "items/all");
    assert_matches("items/all", "ITEMS/ALL");
    assert_no_match("items/all", "items/al");
    assert_no_match("items/all", "items/all/x");
    assert_no_match("items/all", "items");
    struct nb_route_values v;
    match_values("Items", "iTEMS", &v);
    assert_int_equal(v.n, 0);
    assert_null(v.items);
    nb_route_values_cleanup(&v);
}

static void test_empty_template(void **state)
{
    (void)state;
    assert_matches("", "");
    assert_matches("/", "");
    assert_matches("", "/");
    assert_no_match("", "a");
    assert_no_match("a", "");
}

static void test_slashes_ignored(void **state)
{
    (void)state;
    assert_matches("/items/{id}/", "items/5");
    assert_matches("items/{id}", "items/5/");
    assert_matches("items/{id}", "/items/5");
    assert_no_match("items/{id}", "items/5//");
}

static void test_param_values_keep_case(void **state)
{
    (void)state;
    struct nb_route_values v;
    match_values("users/{UserId}/orders/{orderId}", "USERS/Ab/orders/X9", &v);
    assert_int_equal(v.n, 2);
    assert_string_equal(v.items[0].name, "UserId");
    assert_string_equal(v.items[0].value, "Ab");
    assert_string_equal(v.items[1].name, "orderId");
    assert_string_equal(v.items[1].value, "X9");
    assert_string_equal(val(&v, "userid"), "Ab");
    nb_route_values_cleanup(&v);
    assert_int_equal(v.n, 0);
    assert_null(v.items);
    nb_route_values_cleanup(&v); /* twice is fine */
    nb_route_values_cleanup(NULL);
}

static void test_empty_segment_never_a_param(void **state)
{
    (void)state;
    assert_no_match("a/{x}/b", "a//b");
    assert_no_match("{x}/b", "/b"); /* the leading '/' is dropped: one segment */
    assert_no_match("{x}/b", "//b");
    assert_no_match("a/{x?}", "a//");
    assert_no_match("{x}", "");
}

static void test_percent_decoding(void **state)
{
    (void)state;
    struct nb_route_values v;
    match_values("files/{name}", "files/a%20b%2Fc%3F", &v);
    assert_string_equal(val(&v, "name"), "a b/c?");
    nb_route_values_cleanup(&v);
    /* Literals compare after decoding, still case-insensitively. */
    assert_matches("items", "it%65ms");
    assert_matches("items", "IT%45MS");
    assert_matches("caf\xc3\xa9", "caf%C3%A9");
    /* %2F is data: it does not split segments. */
    assert_no_match("a/b", "a%2Fb");
    assert_matches("{x}", "a%2Fb");
    /* '+' is not a space in a path. */
    match_values("{q}", "a+b", &v);
    assert_string_equal(val(&v, "q"), "a+b");
    nb_route_values_cleanup(&v);
}

static void test_bad_escapes_never_match(void **state)
{
    (void)state;
    assert_no_match("{x}", "a%zz");
    assert_no_match("{x}", "a%4");
    assert_no_match("{x}", "%");
    assert_no_match("{x}", "a%00b");
    assert_no_match("{*x}", "ok/a%g0");
    assert_no_match("ok/{*x}", "ok/%");
}

/* ---- constraints ------------------------------------------------------- */

static void test_constraint_int(void **state)
{
    (void)state;
    assert_matches("{id:int}", "42");
    assert_matches("{id:int}", "-7");
    assert_matches("{id:int}", "+7");
    assert_matches("{id:int}", "2147483647");
    assert_matches("{id:int}", "-2147483648");
    assert_no_match("{id:int}", "2147483648");
    assert_no_match("{id:int}", "-2147483649");
    assert_no_match("{id:int}", "4x");
    assert_no_match("{id:int}", "1.5");
    assert_no_match("{id:int}", "-");
    assert_no_match("{id:int}", "%201");
    assert_matches("{id:INT}", "1"); /* constraint names ignore case */
}

static void test_constraint_long(void **state)
{
    (void)state;
    assert_matches("{id:long}", "9223372036854775807");
    assert_matches("{id:long}", "-9223372036854775808");
    assert_matches("{id:long}", "2147483648");
    assert_no_match("{id:long}", "9223372036854775808");
    assert_no_match("{id:long}", "-9223372036854775809");
    assert_no_match("{id:long}", "99999999999999999999999");
    assert_no_match("{id:long}", "12a");
}

static void test_constraint_double(void **state)
{
    (void)state;
    const char *good[] = {"1", "-1.5", "+.5", "3.", "1e10", "2.5E-3", "0"};
    const char *bad[] = {"", ".", "e5", "1e", "1e+", "1.2.3", "inf", "nan", "0x10", "1,5"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_matches("{d:double}", good[i]);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_no_match("{d:double}", bad[i]);
}

static void test_constraint_bool(void **state)
{
    (void)state;
    assert_matches("{b:bool}", "true");
    assert_matches("{b:bool}", "FALSE");
    assert_matches("{b:bool}", "True");
    assert_no_match("{b:bool}", "yes");
    assert_no_match("{b:bool}", "1");
    assert_no_match("{b:bool}", "truee");
}

static void test_constraint_guid(void **state)
{
    (void)state;
    assert_matches("{g:guid}", "c9da6455-213d-42c9-9a79-3e9149a57833");
    assert_matches("{g:guid}", "C9DA6455-213D-42C9-9A79-3E9149A57833");
    assert_matches("{g:guid}", "{c9da6455-213d-42c9-9a79-3e9149a57833}");
    assert_matches("{g:guid}", "%7Bc9da6455-213d-42c9-9a79-3e9149a57833%7D");
    assert_no_match("{g:guid}", "c9da6455213d42c99a793e9149a57833");
    assert_no_match("{g:guid}", "c9da6455-213d-42c9-9a79-3e9149a5783");
    assert_no_match("{g:guid}", "g9da6455-213d-42c9-9a79-3e9149a57833");
    assert_no_match("{g:guid}", "{c9da6455-213d-42c9-9a79-3e9149a57833");
    assert_no_match("{g:guid}", "c9da6455-213d-42c9-9a793e9149a-57833");
}

static void test_constraint_datetime(void **state)
{
    (void)state;
    const char *good[] = {"2024-01-31",           "2024-01-31T10:00",
                          "2024-01-31T10:00:00Z", "2024-01-31T10:00:00.1234567Z",
                          "2024-02-29",           "2024-01-31T23:59:59+01:00",
                          "2024-01-31 10:00:00",  "2000-02-29t00:00:00z"};
    const char *bad[] = {"2024-1-31",
                         "2024-13-01",
                         "2024-00-10",
                         "2023-02-29",
                         "1900-02-29",
                         "2024-04-31",
                         "2024-01-31T24:00",
                         "2024-01-31T10:60",
                         "2024-01-31T10:00:61",
                         "2024-01-31T10",
                         "2024-01-31X10:00",
                         "2024-01-31T10:00:00ZZ",
                         "2024-01-31T10:00:00.Z",
                         "0000-01-01",
                         "2024-01-31T10:00+0100",
                         "today",
                         "20240131"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_matches("{t:datetime}", good[i]);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_no_match("{t:datetime}", bad[i]);
    assert_matches("{t:datetime}", "2024-01-31T10%3A00%3A00Z"); /* encoded colons */
}

static void test_constraint_alpha(void **state)
{
    (void)state;
    assert_matches("{a:alpha}", "abcXYZ");
    assert_no_match("{a:alpha}", "abc1");
    assert_no_match("{a:alpha}", "a-b");
    assert_no_match("{a:alpha}", "caf%C3%A9");
}

static void test_constraint_min_max(void **state)
{
    (void)state;
    assert_matches("{n:min(10)}", "10");
    assert_matches("{n:min(10)}", "11");
    assert_no_match("{n:min(10)}", "9");
    assert_no_match("{n:min(10)}", "ten");
    assert_matches("{n:max(-1)}", "-1");
    assert_matches("{n:max(-1)}", "-100");
    assert_no_match("{n:max(-1)}", "0");
    assert_no_match("{n:max(5)}", "5.0");
}

static void test_constraint_range(void **state)
{
    (void)state;
    assert_matches("{n:range(1,3)}", "1");
    assert_matches("{n:range(1,3)}", "3");
    assert_matches("{n:range( -5 , 5 )}", "-5");
    assert_no_match("{n:range(1,3)}", "0");
    assert_no_match("{n:range(1,3)}", "4");
    assert_no_match("{n:range(1,3)}", "x");
    assert_matches("{n:range(7,7)}", "7");
}

static void test_constraint_length(void **state)
{
    (void)state;
    assert_matches("{s:length(3)}", "abc");
    assert_no_match("{s:length(3)}", "ab");
    assert_no_match("{s:length(3)}", "abcd");
    assert_matches("{s:length(2,4)}", "ab");
    assert_matches("{s:length(2,4)}", "abcd");
    assert_no_match("{s:length(2,4)}", "a");
    assert_no_match("{s:length(2,4)}", "abcde");
    /* Characters, not bytes, and after decoding. */
    assert_matches("{s:length(4)}", "caf%C3%A9");
    assert_matches("{s:length(3)}", "a%20b");
}

static void test_constraint_minlength_maxlength(void **state)
{
    (void)state;
    assert_matches("{s:minlength(2)}", "ab");
    assert_no_match("{s:minlength(2)}", "a");
    assert_matches("{s:maxlength(2)}", "ab");
    assert_no_match("{s:maxlength(2)}", "abc");
    assert_matches("{s:minlength(0)}", "a");
}

static void test_constraint_regex(void **state)
{
    (void)state;
    assert_matches("{c:regex(^[a-z]{{2}}-[0-9]+$)}", "ab-12");
    assert_matches("{c:regex(^[a-z]{{2}}-[0-9]+$)}", "AB-12"); /* case-insensitive */
    assert_no_match("{c:regex(^[a-z]{{2}}-[0-9]+$)}", "abc-12");
    /* Always anchored, even without ^ and $. */
    assert_matches("{c:regex(ab+)}", "abbb");
    assert_no_match("{c:regex(ab+)}", "xabbb");
    assert_no_match("{c:regex(ab+)}", "abbbx");
    /* Alternation stays inside the anchors. */
    assert_matches("{c:regex(a|b)}", "b");
    assert_no_match("{c:regex(a|b)}", "ab");
    assert_no_match("{c:regex(a|b)}", "bx");
    /* Parentheses and colons inside the pattern. */
    assert_matches("{c:regex((x|y):z)}", "y:z");
    assert_matches("{c:regex(a/b)}", "a%2Fb");
    /* Escaped parentheses, and a regex followed by another constraint. */
    assert_matches("{c:regex(\\(x\\))}", "(x)");
    assert_matches("{c:regex([)]+):maxlength(2)}", "))");
    assert_no_match("{c:regex([)]+):maxlength(2)}", ")))");
    assert_matches("{c:regex(a):regex(.)}", "A");
}

static void test_constraint_regex_dotnet_classes(void **state)
{
    (void)state;
    assert_matches("{z:regex(^\\d{{5}}$)}", "12345");
    assert_no_match("{z:regex(^\\d{{5}}$)}", "1234a");
    assert_matches("{z:regex(\\D+)}", "abc");
    assert_no_match("{z:regex(\\D+)}", "ab1");
    assert_matches("{z:regex([\\d_]+)}", "1_2");
    assert_no_match("{z:regex([\\d_]+)}", "1-2");
    assert_matches("{z:regex(\\w+)}", "a_1");
    assert_matches("{z:regex([[:digit:]]+)}", "42");
}

static void test_constraints_combine(void **state)
{
    (void)state;
    assert_matches("{id:int:min(1)}", "1");
    assert_no_match("{id:int:min(1)}", "0");
    assert_no_match("{id:int:min(1)}", "3000000000");
    assert_matches("{id:long:min(1)}", "3000000000");
    assert_matches("{s:alpha:length(2,3)}", "abc");
    assert_no_match("{s:alpha:length(2,3)}", "abcd");
    assert_no_match("{s:alpha:length(2,3)}", "a1");
    assert_matches("{s:minlength(2):regex(a.*)}", "ab");
    assert_no_match("{s:minlength(2):regex(a.*)}", "a");
}

/* ---- optional, default, catch-all -------------------------------------- */

static void test_optional(void **state)
{
    (void)state;
    struct nb_route_values v;
    match_values("items/{id?}", "items", &v);
    assert_int_equal(v.n, 1);
    assert_string_equal(v.items[0].name, "id");
    assert_null(v.items[0].value);
    nb_route_values_cleanup(&v);
    match_values("items/{id?}", "items/7", &v);
    assert_string_equal(val(&v, "id"), "7");
    nb_route_values_cleanup(&v);
    match_values("{a?}/{b?}", "", &v);
    assert_int_equal(v.n, 2);
    assert_string_equal(val(&v, "a"), ABSENT);
    assert_string_equal(val(&v, "b"), ABSENT);
    nb_route_values_cleanup(&v);
    match_values("{a?}/{b?}", "x", &v);
    assert_string_equal(val(&v, "a"), "x");
    assert_string_equal(val(&v, "b"), ABSENT);
    nb_route_values_cleanup(&v);
    assert_no_match("items/{id?}", "items/7/8");
}

static void test_optional_with_constraint(void **state)
{
    (void)state;
    assert_matches("items/{id:int?}", "items");
    assert_matches("items/{id:int?}", "items/12");
    assert_no_match("items/{id:int?}", "items/x");
    assert_matches("items/{id:int:range(1,9)?}", "items/9");
    assert_no_match("items/{id:int:range(1,9)?}", "items/10");
}

static void test_default(void **state)
{
    (void)state;
    struct nb_route_values v;
    match_values("page/{n:int=1}/{sort=name}", "page", &v);
    assert_int_equal(v.n, 2);
    assert_string_equal(val(&v, "n"), "1");
    assert_string_equal(val(&v, "sort"), "name");
    nb_route_values_cleanup(&v);
    match_values("page/{n:int=1}/{sort=name}", "page/3", &v);
    assert_string_equal(val(&v, "n"), "3");
    assert_string_equal(val(&v, "sort"), "name");
    nb_route_values_cleanup(&v);
    match_values("page/{n:int=1}/{sort=name}", "page/3/Date", &v);
    assert_string_equal(val(&v, "sort"), "Date");
    nb_route_values_cleanup(&v);
    assert_no_match("page/{n:int=1}", "page/x");
    /* An empty default is a default. */
    match_values("x/{e=}", "x", &v);
    assert_string_equal(val(&v, "e"), "");
    nb_route_values_cleanup(&v);
}

static void test_catchall_empty(void **state)
{
    (void)state;
    struct nb_route_values v;
    match_values("files/{*path}", "files", &v);
    assert_int_equal(v.n, 1);
    assert_string_equal(v.items[0].name, "path");
    assert_null(v.items[0].value);
    nb_route_values_cleanup(&v);
    match_values("files/{*path}", "files/", &v);
    assert_null(v.items[0].value);
    nb_route_values_cleanup(&v);
    match_values("{*all}", "", &v);
    assert_int_equal(v.n, 1);
    assert_null(v.items[0].value);
    nb_route_values_cleanup(&v);
    assert_no_match("files/{*path}", "file");
}

static void test_catchall_multi_segment(void **state)
{
    (void)state;
    struct nb_route_values v;
    match_values("files/{*path}", "files/a/B/c.txt", &v);
    assert_string_equal(val(&v, "path"), "a/B/c.txt");
    nb_route_values_cleanup(&v);
    match_values("files/{*path}", "files/a%20b/c%2Fd/", &v);
    assert_string_equal(val(&v, "path"), "a b/c/d");
    nb_route_values_cleanup(&v);
    match_values("files/{*path}", "files/a//b", &v); /* empty segments kept */
    assert_string_equal(val(&v, "path"), "a//b");
    nb_route_values_cleanup(&v);
    match_values("{x}/{*rest}", "one", &v);
    assert_string_equal(val(&v, "x"), "one");
    assert_string_equal(val(&v, "rest"), ABSENT);
    nb_route_values_cleanup(&v);
}

static void test_catchall_forms(void **state)
{
    (void)state;
    struct nb_route_values v;
    match_values("spa/{**rest}", "spa/a/b", &v);
    assert_string_equal(val(&v, "rest"), "a/b");
    nb_route_values_cleanup(&v);
    match_values("spa/{*rest=index.html}", "spa", &v);
    assert_string_equal(val(&v, "rest"), "index.html");
    nb_route_values_cleanup(&v);
    match_values("{id?}/{*rest}", "", &v);
    assert_string_equal(val(&v, "id"), ABSENT);
    assert_string_equal(val(&v, "rest"), ABSENT);
    nb_route_values_cleanup(&v);
    /* Constraints apply to the whole decoded remainder when present. */
    assert_matches("d/{*p:regex([a-z/]+)}", "d/a/b");
    assert_no_match("d/{*p:regex([a-z/]+)}", "d/a/1");
    assert_matches("d/{*p:regex([a-z/]+)}", "d");
}

static void test_long_paths(void **state)
{
    (void)state;
    /* More segments and bytes than the stack scratch holds. */
    char path[4096];
    size_t o = 0;
    for (int i = 0; i < 300; i++)
        o += (size_t)snprintf(path + o, sizeof(path) - o, "s%d/", i);
    path[o - 1] = '\0';
    struct nb_route_values v;
    match_values("s0/{*rest}", path, &v);
    assert_true(strncmp(val(&v, "rest"), "s1/s2/", 6) == 0);
    assert_int_equal(strlen(val(&v, "rest")), strlen(path) - 3);
    nb_route_values_cleanup(&v);
    assert_no_match("s0/{x}", path);
    char seg[1200];
    memset(seg, 'a', sizeof(seg) - 1);
    seg[sizeof(seg) - 1] = '\0';
    match_values("{x:alpha}", seg, &v);
    assert_int_equal(strlen(val(&v, "x")), sizeof(seg) - 1);
    nb_route_values_cleanup(&v);
}

static void test_match_edges(void **state)
{
    (void)state;
    struct nb_route *r = parse_ok("a/{b}");
    struct nb_route_values v = {(struct nb_route_value *)(uintptr_t)1, 99};
    assert_false(nb_route_match(r, "x/y", &v)); /* out is reset on failure */
    assert_null(v.items);
    assert_int_equal(v.n, 0);
    assert_true(nb_route_match(r, "a/y", NULL)); /* values are optional */
    assert_false(nb_route_match(r, NULL, &v));
    assert_false(nb_route_match(NULL, "a/y", &v));
    nb_route_free(r);
    nb_route_free(NULL);
}

/* ---- router ------------------------------------------------------------ */

static struct nb_router *router_of(const char *const *tmpls, size_t n, const unsigned *methods)
{
    struct nb_router *rt = nb_router_new();
    for (size_t i = 0; i < n; i++)
        nb_router_add(rt, parse_ok(tmpls[i]), methods ? methods[i] : 0, (void *)tmpls[i]);
    return rt;
}

/* The template of the route chosen for path (GET), or NULL. */
static const char *pick(struct nb_router *rt, const char *path)
{
    void *data = (void *)"junk";
    struct nb_route_values v;
    enum nb_route_result res = nb_router_match(rt, GET, path, &data, &v);
    if (res != NB_ROUTE_FOUND) {
        assert_null(data);
        assert_int_equal(v.n, 0);
        return NULL;
    }
    nb_route_values_cleanup(&v);
    return data;
}

static void test_precedence_literal_beats_param(void **state)
{
    (void)state;
    const char *a[] = {"items/{id}", "items/new"};
    const char *b[] = {"items/new", "items/{id}"};
    struct nb_router *ra = router_of(a, 2, NULL), *rb = router_of(b, 2, NULL);
    assert_string_equal(pick(ra, "items/new"), "items/new");
    assert_string_equal(pick(rb, "items/NEW"), "items/new");
    assert_string_equal(pick(ra, "items/5"), "items/{id}");
    assert_string_equal(pick(rb, "items/5"), "items/{id}");
    nb_router_free(ra);
    nb_router_free(rb);
    /* The first differing segment decides, not the later ones. */
    const char *c[] = {"{a}/x/y", "k/{b}/{c}"};
    struct nb_router *rc = router_of(c, 2, NULL);
    assert_string_equal(pick(rc, "k/x/y"), "k/{b}/{c}");
    nb_router_free(rc);
}

static void test_precedence_constrained_beats_plain(void **state)
{
    (void)state;
    const char *t[] = {"items/{name}", "items/{id:int}", "items/{when:datetime}"};
    struct nb_router *rt = router_of(t, 3, NULL);
    assert_string_equal(pick(rt, "items/42"), "items/{id:int}");
    assert_string_equal(pick(rt, "items/2024-01-31"), "items/{when:datetime}");
    assert_string_equal(pick(rt, "items/abc"), "items/{name}");
    void *data = NULL;
    struct nb_route_values v;
    assert_int_equal(nb_router_match(rt, GET, "items/42", &data, &v), NB_ROUTE_FOUND);
    assert_int_equal(v.n, 1);
    assert_string_equal(val(&v, "id"), "42");
    nb_route_values_cleanup(&v);
    nb_router_free(rt);
}

static void test_precedence_catchall_loses(void **state)
{
    (void)state;
    const char *t[] = {"{*all}", "files/{*path}", "files/{name?}", "files/{name}", "files"};
    struct nb_router *rt = router_of(t, 5, NULL);
    assert_string_equal(pick(rt, "files/a"), "files/{name}");
    assert_string_equal(pick(rt, "files"), "files");
    assert_string_equal(pick(rt, "files/a/b"), "files/{*path}");
    assert_string_equal(pick(rt, "other/x"), "{*all}");
    assert_string_equal(pick(rt, ""), "{*all}");
    nb_router_free(rt);
    /* An optional parameter loses to a required one, and a shorter route
     * beats a longer one whose extra segments are absent. */
    const char *u[] = {"a/{x}/{y?}", "a/{x}", "a/{x?}"};
    rt = router_of(u, 3, NULL);
    assert_string_equal(pick(rt, "a/1"), "a/{x}");
    assert_string_equal(pick(rt, "a/1/2"), "a/{x}/{y?}");
    assert_string_equal(pick(rt, "a"), "a/{x?}");
    nb_router_free(rt);
}

static void test_precedence_ties_go_to_earlier(void **state)
{
    (void)state;
    const char *t[] = {"x/{a}", "x/{b}", "{c:int}/{d:int}", "{e:alpha}/{f:int}"};
    struct nb_router *rt = router_of(t, 4, NULL);
    assert_string_equal(pick(rt, "x/1"), "x/{a}");
    assert_string_equal(pick(rt, "1/2"), "{c:int}/{d:int}");
    assert_string_equal(pick(rt, "y/2"), "{e:alpha}/{f:int}");
    assert_null(pick(rt, "y/z"));
    nb_router_free(rt);
}

static void test_router_methods(void **state)
{
    (void)state;
    const char *t[] = {"items/{id}", "items/{id:int}", "other"};
    const unsigned m[] = {POST, GET | PUT, 0};
    struct nb_router *rt = router_of(t, 3, m);
    void *data = NULL;
    struct nb_route_values v;
    assert_int_equal(nb_router_match(rt, GET, "items/5", &data, &v), NB_ROUTE_FOUND);
    assert_string_equal(data, "items/{id:int}");
    nb_route_values_cleanup(&v);
    /* The constrained route is more specific but takes no POST. */
    assert_int_equal(nb_router_match(rt, POST, "items/5", &data, &v), NB_ROUTE_FOUND);
    assert_string_equal(data, "items/{id}");
    assert_string_equal(val(&v, "id"), "5");
    nb_route_values_cleanup(&v);
    /* A path some route matches, but not with this method. */
    data = (void *)"junk";
    assert_int_equal(nb_router_match(rt, GET, "items/x", &data, &v), NB_ROUTE_BAD_METHOD);
    assert_null(data);
    assert_int_equal(v.n, 0);
    assert_int_equal(nb_router_match(rt, 8u, "items/5", &data, &v), NB_ROUTE_BAD_METHOD);
    /* Mask 0 takes every method. */
    assert_int_equal(nb_router_match(rt, 8u, "other", &data, NULL), NB_ROUTE_FOUND);
    assert_string_equal(data, "other");
    /* Nothing matches the path at all. */
    assert_int_equal(nb_router_match(rt, GET, "nope", &data, &v), NB_ROUTE_NONE);
    assert_int_equal(nb_router_match(rt, GET, "items/%zz", NULL, NULL), NB_ROUTE_NONE);
    nb_router_free(rt);
}

static void test_router_empty_and_null(void **state)
{
    (void)state;
    struct nb_router *rt = nb_router_new();
    void *data = (void *)"junk";
    struct nb_route_values v;
    assert_int_equal(nb_router_match(rt, GET, "", &data, &v), NB_ROUTE_NONE);
    assert_null(data);
    assert_int_equal(nb_router_match(NULL, GET, "", &data, &v), NB_ROUTE_NONE);
    nb_router_add(NULL, parse_ok("x"), 0, NULL); /* frees the route */
    /* Many routes grow the table. */
    for (int i = 0; i < 40; i++) {
        char t[32];
        snprintf(t, sizeof(t), "r%d/{x}", i);
        nb_router_add(rt, parse_ok(t), 0, (void *)(uintptr_t)(i + 1));
    }
    assert_int_equal(nb_router_match(rt, GET, "R39/a", &data, &v), NB_ROUTE_FOUND);
    assert_ptr_equal(data, (void *)(uintptr_t)40);
    nb_route_values_cleanup(&v);
    nb_router_free(rt);
    nb_router_free(NULL);
}

/* ---- rejections -------------------------------------------------------- */

static void test_reject_unbalanced(void **state)
{
    (void)state;
    assert_rejects("x/{", "unbalanced '{'");
    assert_rejects("x/{id", "unbalanced '{'");
    assert_rejects("x/id}", "unbalanced '}'");
    assert_rejects("}", "unbalanced '}'");
    assert_rejects("{a{b}", "'{' inside a parameter");
    assert_rejects("{a}}", "unbalanced '{'"); /* "}}" inside braces is an escape */
    assert_rejects("{n:min(1}", "unbalanced '('");
    /* Doubled braces are literal text. */
    struct nb_route *r = parse_ok("{{x}}");
    assert_true(nb_route_match(r, "%7Bx%7D", NULL));
    nb_route_free(r);
}

static void test_reject_empty_names_and_segments(void **state)
{
    (void)state;
    assert_rejects("{}", "empty parameter name");
    assert_rejects("a/{?}", "empty parameter name");
    assert_rejects("{:int}", "empty parameter name");
    assert_rejects("{*}", "empty parameter name");
    assert_rejects("{=x}", "empty parameter name");
    assert_rejects("a//b", "empty segment");
    assert_rejects("a///", "empty segment");
    assert_rejects("{a/b}", "may not contain '/'");
    assert_rejects("{a*}", "may not contain '*'");
    assert_rejects("{id:}", "empty constraint");
}

static void test_reject_duplicate_names(void **state)
{
    (void)state;
    assert_rejects("{id}/{id}", "duplicate parameter name 'id'");
    assert_rejects("{Id}/x/{iD}", "duplicate parameter name 'iD'");
    assert_rejects("{a}/{*A}", "duplicate parameter name");
    struct nb_route *r = parse_ok("id/{id}"); /* a literal is not a name */
    nb_route_free(r);
}

static void test_reject_unknown_constraint(void **state)
{
    (void)state;
    assert_rejects("{id:integer}", "unknown constraint 'integer' on 'id'");
    assert_rejects("{id:int:nonfile}", "unknown constraint 'nonfile'");
    assert_rejects("{id:int-1}", "unexpected '-'");
}

static void test_reject_bad_constraint_args(void **state)
{
    (void)state;
    assert_rejects("{n:min}", "needs an argument");
    assert_rejects("{n:min()}", "bad argument to 'min'");
    assert_rejects("{n:min(x)}", "bad argument to 'min' on 'n': 'x'");
    assert_rejects("{n:max(1,2)}", "bad argument to 'max'");
    assert_rejects("{n:range(1)}", "bad argument to 'range'");
    assert_rejects("{n:range(5,1)}", "bad argument to 'range'");
    assert_rejects("{n:range(1,2,3)}", "bad argument to 'range'");
    assert_rejects("{s:length(-1)}", "bad argument to 'length'");
    assert_rejects("{s:length(3,2)}", "bad argument to 'length'");
    assert_rejects("{s:minlength(a)}", "bad argument to 'minlength'");
    assert_rejects("{s:maxlength(-2)}", "bad argument to 'maxlength'");
    assert_rejects("{n:min(99999999999999999999)}", "bad argument to 'min'");
    assert_rejects("{n:int(3)}", "takes no argument");
    assert_rejects("{n:regex()}", "needs a pattern");
    assert_rejects("{n:regex([a-)}", "bad regex in 'n'");
    assert_rejects("{n:regex(a)|(b)}", "unbalanced ')'");
}

static void test_reject_costly_regex(void **state)
{
    (void)state;
    /* glibc expands repetitions when compiling: refuse what would explode. */
    assert_rejects("{n:regex((a{{99}}){{99}})}", "too complex");
    assert_rejects("{n:regex(a++++++++++++++++++++++++++++++)}", "nested quantifier");
    assert_rejects("{n:regex(ab*?)}", "nested quantifier");
    assert_rejects("{n:regex(a{{2}}+)}", "nested quantifier");
    /* A fuzzer-found pattern that made glibc's regcomp use > 600 MB. */
    assert_rejects("{n:regex(^[a-z]{{2}}2-+++++)}", "nested quantifier");
    assert_rejects("{n:regex(((((x{{9}}){{9}}){{9}}){{9}}))}", "too complex");
    assert_rejects("{n:regex((a)\\1)}", "back-references are not supported");
    assert_rejects("{n:regex(((((((((((((((((((((((((((((((((a)))))))))))))))))))))))))))))))))}",
                   "nested too deeply");
    /* Realistic patterns stay well inside the budget. */
    assert_matches("{n:regex(([a-z]{{1,64}}\\.){{1,10}}[a-z]{{2,8}})}", "www.example.com");
    assert_matches("{n:regex([[:alpha:]]{{1,200}}|x*)}", "xxx");
}

static void test_reject_mixed_segments(void **state)
{
    (void)state;
    assert_rejects("a{b}", "mixes a parameter with other text");
    assert_rejects("{a}b", "mixes a parameter with other text");
    assert_rejects("{a}.{b}", "segment '{a}.{b}' mixes a parameter");
    assert_rejects("x/file{n:int}.txt", "segment 'file{n:int}.txt' mixes");
    assert_rejects("{a}{b}", "mixes a parameter with other text");
}

static void test_reject_question_mark(void **state)
{
    (void)state;
    assert_rejects("items?x=1", "'?' is only allowed at the end of a parameter");
    assert_rejects("a/?", "'?' is only allowed");
    assert_rejects("{a?b}", "'?' must end parameter 'a'");
    assert_rejects("{*rest?}", "catch-all 'rest' cannot be marked optional");
    assert_rejects("{a=1?}", "optional parameter 'a' cannot have a default");
}

static void test_reject_catchall_not_last(void **state)
{
    (void)state;
    assert_rejects("{*rest}/x", "catch-all 'rest' must be the last segment");
    assert_rejects("a/{**rest}/{id}", "catch-all 'rest' must be the last segment");
}

static void test_reject_optional_not_at_end(void **state)
{
    (void)state;
    assert_rejects("{a?}/b", "'b' follows optional parameter 'a'");
    assert_rejects("{a?}/{b}", "'b' follows optional parameter 'a'");
    assert_rejects("x/{a=1}/{b:int}", "'b' follows optional parameter 'a'");
    struct nb_route *r = parse_ok("x/{a=1}/{b?}/{*c}");
    nb_route_free(r);
}

static void test_reject_bad_default(void **state)
{
    (void)state;
    assert_rejects("{n:int=x}", "default 'x' of 'n' does not satisfy its constraints");
    assert_rejects("{n:int=}", "does not satisfy");
    assert_rejects("{n:range(1,5)=9}", "does not satisfy");
}

static void test_error_message_shape(void **state)
{
    (void)state;
    struct nb_route *r = NULL;
    char err[128];
    assert_int_equal(nb_route_parse("x/{", &r, err, sizeof(err)), NB_ERR_INVALID);
    assert_string_equal(err, "route 'x/{': unbalanced '{'");
    /* Truncated to the buffer; control bytes hidden; NULL err is fine. */
    char small[12];
    assert_int_equal(nb_route_parse("abc/{", &r, small, sizeof(small)), NB_ERR_INVALID);
    assert_string_equal(small, "route 'abc/");
    assert_int_equal(nb_route_parse("a/\t{", &r, err, sizeof(err)), NB_ERR_INVALID);
    assert_string_equal(err, "route 'a/?{': segment '?{' mixes a parameter with other text "
                             "(a parameter must be the whole segment)");
    assert_int_equal(nb_route_parse("}", &r, NULL, 0), NB_ERR_INVALID);
    assert_null(r);
    assert_int_equal(nb_route_parse(NULL, &r, err, sizeof(err)), NB_ERR_INVALID);
    assert_true(err[0] != '\0');
    assert_int_equal(nb_route_parse("x", NULL, err, sizeof(err)), NB_ERR_INVALID);
}

static void test_first_literal(void **state)
{
    (void)state;
    char buf[16];
    struct nb_route *r = parse_ok("Admin/{x}");
    assert_string_equal(nb_route_first_literal(r, buf, sizeof(buf)), "admin");
    char tiny[3];
    assert_string_equal(nb_route_first_literal(r, tiny, sizeof(tiny)), "ad");
    assert_string_equal(nb_route_first_literal(r, NULL, 0), "");
    nb_route_free(r);
    r = parse_ok("/RunTime/webhooks");
    assert_string_equal(nb_route_first_literal(r, buf, sizeof(buf)), "runtime");
    nb_route_free(r);
    r = parse_ok("{x}/admin");
    assert_string_equal(nb_route_first_literal(r, buf, sizeof(buf)), "");
    nb_route_free(r);
    r = parse_ok("");
    assert_string_equal(nb_route_first_literal(r, buf, sizeof(buf)), "");
    nb_route_free(r);
    r = parse_ok("{*all}");
    assert_string_equal(nb_route_first_literal(r, buf, sizeof(buf)), "");
    nb_route_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literal_case_insensitive),
        cmocka_unit_test(test_empty_template),
        cmocka_unit_test(test_slashes_ignored),
        cmocka_unit_test(test_param_values_keep_case),
        cmocka_unit_test(test_empty_segment_never_a_param),
        cmocka_unit_test(test_percent_decoding),
        cmocka_unit_test(test_bad_escapes_never_match),
        cmocka_unit_test(test_constraint_int),
        cmocka_unit_test(test_constraint_long),
        cmocka_unit_test(test_constraint_double),
        cmocka_unit_test(test_constraint_bool),
        cmocka_unit_test(test_constraint_guid),
        cmocka_unit_test(test_constraint_datetime),
        cmocka_unit_test(test_constraint_alpha),
        cmocka_unit_test(test_constraint_min_max),
        cmocka_unit_test(test_constraint_range),
        cmocka_unit_test(test_constraint_length),
        cmocka_unit_test(test_constraint_minlength_maxlength),
        cmocka_unit_test(test_constraint_regex),
        cmocka_unit_test(test_constraint_regex_dotnet_classes),
        cmocka_unit_test(test_constraints_combine),
        cmocka_unit_test(test_optional),
        cmocka_unit_test(test_optional_with_constraint),
        cmocka_unit_test(test_default),
        cmocka_unit_test(test_catchall_empty),
        cmocka_unit_test(test_catchall_multi_segment),
        cmocka_unit_test(test_catchall_forms),
        cmocka_unit_test(test_long_paths),
        cmocka_unit_test(test_match_edges),
        cmocka_unit_test(test_precedence_literal_beats_param),
        cmocka_unit_test(test_precedence_constrained_beats_plain),
        cmocka_unit_test(test_precedence_catchall_loses),
        cmocka_unit_test(test_precedence_ties_go_to_earlier),
        cmocka_unit_test(test_router_methods),
        cmocka_unit_test(test_router_empty_and_null),
        cmocka_unit_test(test_reject_unbalanced),
        cmocka_unit_test(test_reject_empty_names_and_segments),
        cmocka_unit_test(test_reject_duplicate_names),
        cmocka_unit_test(test_reject_unknown_constraint),
        cmocka_unit_test(test_reject_bad_constraint_args),
        cmocka_unit_test(test_reject_costly_regex),
        cmocka_unit_test(test_reject_mixed_segments),
        cmocka_unit_test(test_reject_question_mark),
        cmocka_unit_test(test_reject_catchall_not_last),
        cmocka_unit_test(test_reject_optional_not_at_end),
        cmocka_unit_test(test_reject_bad_default),
        cmocka_unit_test(test_error_message_shape),
        cmocka_unit_test(test_first_literal),
    };
    return cmocka_run_group_tests_name("host/route", tests, NULL, NULL);
}
