/* Tests of function keys (src/host/keys.c) against an in-memory SQLite
 * store: creation on first open, persistence, grants in the Azure order,
 * set/delete rules, listing, the function index and reloading of changes
 * made through another nb_keys on the same store. Reloads are made
 * immediate with nb_keys_set_reload_interval_us instead of sleeping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/keys.h"
#include "store/store.h"

struct fixture {
    struct nb_store *s;
    struct nb_keys *k;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct nb_store_config cfg = {.in_memory = true};
    if (nb_store_open_sqlite(&cfg, &f->s)) return -1;
    if (nb_keys_open(f->s, &f->k)) return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    nb_keys_close(f->k);
    nb_store_close(f->s);
    free(f);
    return 0;
}

static bool url_safe(const char *v)
{
    for (; *v; v++)
        if (!((*v >= 'A' && *v <= 'Z') || (*v >= 'a' && *v <= 'z') || (*v >= '0' && *v <= '9') ||
              *v == '-' || *v == '_'))
            return false;
    return true;
}

static char *get(struct nb_keys *k, enum nb_key_scope sc, const char *fn, const char *name)
{
    char *v = NULL;
    assert_int_equal(nb_keys_get(k, sc, fn, name, &v), NB_OK);
    return v;
}

#define VAL16 "0123456789abcdef"
#define VAL_A "aaaaaaaaaaaaaaaaaaaa"
#define VAL_B "bbbbbbbbbbbbbbbbbbbb"

static void test_first_open_creates(void **state)
{
    struct fixture *f = *state;
    char *m = get(f->k, NB_KEYS_MASTER, NULL, NULL);
    char *d = get(f->k, NB_KEYS_HOST, NULL, "default");
    assert_int_equal(strlen(m), 43);
    assert_int_equal(strlen(d), 43);
    assert_true(url_safe(m));
    assert_true(url_safe(d));
    assert_string_not_equal(m, d);

    /* the stored shape is the Azure host's */
    char *text = NULL;
    assert_int_equal(nb_store_kv_get(f->s, NB_KEYS_NS, "host", &text), NB_OK);
    assert_non_null(strstr(text, "\"masterKey\":{\"name\":\"_master\",\"value\":\""));
    assert_non_null(strstr(text, m));
    assert_non_null(strstr(text, "\"functionKeys\":[{\"name\":\"default\""));
    assert_non_null(strstr(text, "\"systemKeys\":[]"));
    free(text);

    struct nb_key_list l;
    assert_int_equal(nb_keys_list(f->k, NB_KEYS_SYSTEM, NULL, &l), NB_OK);
    assert_int_equal(l.n, 0);
    nb_key_list_cleanup(&l);
    free(m);
    free(d);
}

static void test_reopen_same_keys(void **state)
{
    struct fixture *f = *state;
    char *m = get(f->k, NB_KEYS_MASTER, NULL, NULL);
    char *d = get(f->k, NB_KEYS_HOST, NULL, "default");
    assert_int_equal(nb_keys_ensure_function(f->k, "HttpTrigger"), NB_OK);
    char *fd = get(f->k, NB_KEYS_FUNCTION, "HttpTrigger", "default");
    nb_keys_close(f->k);

    assert_int_equal(nb_keys_open(f->s, &f->k), NB_OK);
    char *m2 = get(f->k, NB_KEYS_MASTER, "ignored", "ignored");
    char *d2 = get(f->k, NB_KEYS_HOST, NULL, "DEFAULT"); /* names ignore case */
    char *fd2 = get(f->k, NB_KEYS_FUNCTION, "httptrigger", "default");
    assert_string_equal(m, m2);
    assert_string_equal(d, d2);
    assert_string_equal(fd, fd2);
    assert_int_equal(nb_keys_check(f->k, "HTTPTRIGGER", fd), NB_GRANT_FUNCTION);
    free(m);
    free(d);
    free(fd);
    free(m2);
    free(d2);
    free(fd2);
}

static void test_check_grants(void **state)
{
    struct fixture *f = *state;
    char *m = get(f->k, NB_KEYS_MASTER, NULL, NULL);
    char *h = get(f->k, NB_KEYS_HOST, NULL, "default");
    char *s = NULL, *a = NULL, *b = NULL;
    bool created = false;
    assert_int_equal(
        nb_keys_set(f->k, NB_KEYS_SYSTEM, NULL, "durabletask_extension", NULL, &created, &s),
        NB_OK);
    assert_true(created);
    assert_int_equal(nb_keys_ensure_function(f->k, "a"), NB_OK);
    assert_int_equal(nb_keys_ensure_function(f->k, "b"), NB_OK);
    a = get(f->k, NB_KEYS_FUNCTION, "a", "default");
    b = get(f->k, NB_KEYS_FUNCTION, "b", "default");
    assert_string_not_equal(a, b);

    assert_int_equal(nb_keys_check(f->k, "a", m), NB_GRANT_ADMIN);
    assert_int_equal(nb_keys_check(f->k, NULL, m), NB_GRANT_ADMIN);
    assert_int_equal(nb_keys_check(f->k, "a", s), NB_GRANT_SYSTEM);
    assert_int_equal(nb_keys_check(f->k, NULL, s), NB_GRANT_SYSTEM);
    assert_int_equal(nb_keys_check(f->k, "a", h), NB_GRANT_FUNCTION);
    assert_int_equal(nb_keys_check(f->k, "b", h), NB_GRANT_FUNCTION);
    assert_int_equal(nb_keys_check(f->k, "nokeys", h), NB_GRANT_FUNCTION);
    assert_int_equal(nb_keys_check(f->k, NULL, h), NB_GRANT_FUNCTION);
    assert_int_equal(nb_keys_check(f->k, "a", a), NB_GRANT_FUNCTION);
    assert_int_equal(nb_keys_check(f->k, "A", a), NB_GRANT_FUNCTION);
    assert_int_equal(nb_keys_check(f->k, "b", a), NB_GRANT_NONE);
    assert_int_equal(nb_keys_check(f->k, NULL, a), NB_GRANT_NONE);
    assert_int_equal(nb_keys_check(f->k, "bad name!", a), NB_GRANT_NONE);
    assert_int_equal(nb_keys_check(f->k, "bad name!", h), NB_GRANT_FUNCTION);

    assert_int_equal(nb_keys_check(f->k, "a", "wrong"), NB_GRANT_NONE);
    assert_int_equal(nb_keys_check(f->k, "a", ""), NB_GRANT_NONE);
    assert_int_equal(nb_keys_check(f->k, "a", NULL), NB_GRANT_NONE);
    /* a prefix or an extension of a key is not the key */
    char *pre = strndup(m, 42);
    char *ext = malloc(45);
    snprintf(ext, 45, "%sx", m);
    assert_int_equal(nb_keys_check(f->k, "a", pre), NB_GRANT_NONE);
    assert_int_equal(nb_keys_check(f->k, "a", ext), NB_GRANT_NONE);
    free(pre);
    free(ext);
    free(m);
    free(h);
    free(s);
    free(a);
    free(b);
}

static void test_ensure_function_idempotent(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(nb_keys_ensure_function(f->k, "Fn1"), NB_OK);
    char *v1 = get(f->k, NB_KEYS_FUNCTION, "Fn1", "default");
    assert_int_equal(strlen(v1), 43);
    assert_int_equal(nb_keys_ensure_function(f->k, "Fn1"), NB_OK);
    assert_int_equal(nb_keys_ensure_function(f->k, "fn1"), NB_OK);
    char *v2 = get(f->k, NB_KEYS_FUNCTION, "fn1", "default");
    assert_string_equal(v1, v2);
    struct nb_key_list l;
    assert_int_equal(nb_keys_list(f->k, NB_KEYS_FUNCTION, "FN1", &l), NB_OK);
    assert_int_equal(l.n, 1);
    nb_key_list_cleanup(&l);

    /* a function whose keys were all deleted does not get them back */
    assert_int_equal(nb_keys_delete(f->k, NB_KEYS_FUNCTION, "fn1", "default"), NB_OK);
    assert_int_equal(nb_keys_ensure_function(f->k, "fn1"), NB_OK);
    assert_int_equal(nb_keys_list(f->k, NB_KEYS_FUNCTION, "fn1", &l), NB_OK);
    assert_int_equal(l.n, 0);
    nb_key_list_cleanup(&l);

    assert_int_equal(nb_keys_ensure_function(f->k, NULL), NB_ERR_INVALID);
    assert_int_equal(nb_keys_ensure_function(f->k, ""), NB_ERR_INVALID);
    assert_int_equal(nb_keys_ensure_function(f->k, "a/b"), NB_ERR_INVALID);
    free(v1);
    free(v2);
}

static void test_set_create_replace(void **state)
{
    struct fixture *f = *state;
    bool created = false;
    char *out = NULL;
    assert_int_equal(nb_keys_set(f->k, NB_KEYS_HOST, NULL, "ci", VAL_A, &created, &out), NB_OK);
    assert_true(created);
    assert_string_equal(out, VAL_A);
    free(out);
    assert_int_equal(nb_keys_check(f->k, "any", VAL_A), NB_GRANT_FUNCTION);

    assert_int_equal(nb_keys_set(f->k, NB_KEYS_HOST, NULL, "CI", VAL_B, &created, NULL), NB_OK);
    assert_false(created);
    char *v = get(f->k, NB_KEYS_HOST, NULL, "ci");
    assert_string_equal(v, VAL_B);
    free(v);
    assert_int_equal(nb_keys_check(f->k, "any", VAL_A), NB_GRANT_NONE);

    /* the name keeps the case it was created with */
    struct nb_key_list l;
    assert_int_equal(nb_keys_list(f->k, NB_KEYS_HOST, NULL, &l), NB_OK);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.items[1].name, "ci");
    nb_key_list_cleanup(&l);

    /* function keys: a new record, then a second key in it */
    assert_int_equal(nb_keys_set(f->k, NB_KEYS_FUNCTION, "f", "k1", VAL16, &created, NULL), NB_OK);
    assert_true(created);
    assert_int_equal(nb_keys_set(f->k, NB_KEYS_FUNCTION, "f", "k2", NULL, &created, &out), NB_OK);
    assert_true(created);
    assert_int_equal(nb_keys_check(f->k, "f", out), NB_GRANT_FUNCTION);
    assert_int_equal(nb_keys_check(f->k, "f", VAL16), NB_GRANT_FUNCTION);
    assert_int_equal(nb_keys_check(f->k, "g", VAL16), NB_GRANT_NONE);
    free(out);
    assert_int_equal(nb_keys_list(f->k, NB_KEYS_FUNCTION, "f", &l), NB_OK);
    assert_int_equal(l.n, 2);
    nb_key_list_cleanup(&l);

    /* created and value_out are optional */
    assert_int_equal(nb_keys_set(f->k, NB_KEYS_SYSTEM, NULL, "x_extension", NULL, NULL, NULL),
                     NB_OK);
}

static void test_generated_values(void **state)
{
    struct fixture *f = *state;
    char *v1 = NULL, *v2 = NULL;
    assert_int_equal(nb_keys_set(f->k, NB_KEYS_HOST, NULL, "g", NULL, NULL, &v1), NB_OK);
    assert_int_equal(nb_keys_set(f->k, NB_KEYS_HOST, NULL, "g", NULL, NULL, &v2), NB_OK);
    assert_int_equal(strlen(v1), 43);
    assert_true(url_safe(v1));
    assert_true(nb_keys_valid_value(v1));
    assert_string_not_equal(v1, v2);
    assert_int_equal(nb_keys_check(f->k, NULL, v1), NB_GRANT_NONE);
    assert_int_equal(nb_keys_check(f->k, NULL, v2), NB_GRANT_FUNCTION);
    free(v1);
    free(v2);
}

static void test_master_renew(void **state)
{
    struct fixture *f = *state;
    char *old = get(f->k, NB_KEYS_MASTER, NULL, NULL);
    char *fresh = NULL;
    bool created = true;
    assert_int_equal(nb_keys_set(f->k, NB_KEYS_MASTER, NULL, NULL, NULL, &created, &fresh), NB_OK);
    assert_false(created);
    assert_string_not_equal(old, fresh);
    assert_int_equal(nb_keys_check(f->k, NULL, old), NB_GRANT_NONE);
    assert_int_equal(nb_keys_check(f->k, NULL, fresh), NB_GRANT_ADMIN);
    assert_int_equal(nb_keys_set(f->k, NB_KEYS_MASTER, NULL, "whatever", VAL_A, NULL, NULL), NB_OK);
    assert_int_equal(nb_keys_check(f->k, NULL, VAL_A), NB_GRANT_ADMIN);
    struct nb_key_list l;
    assert_int_equal(nb_keys_list(f->k, NB_KEYS_MASTER, NULL, &l), NB_OK);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.items[0].name, "_master");
    assert_string_equal(l.items[0].value, VAL_A);
    nb_key_list_cleanup(&l);
    free(old);
    free(fresh);
}

static void test_invalid_names_values(void **state)
{
    struct fixture *f = *state;
    char name129[130];
    memset(name129, 'n', 129);
    name129[129] = '\0';
    char val257[258];
    memset(val257, 'v', 257);
    val257[257] = '\0';
    const char *bad_names[] = {NULL, "", "a b", "a/b", "é", "x\"y", name129, "_master", "_MASTER"};
    for (size_t i = 0; i < sizeof(bad_names) / sizeof(*bad_names); i++) {
        assert_int_equal(nb_keys_set(f->k, NB_KEYS_HOST, NULL, bad_names[i], VAL_A, NULL, NULL),
                         NB_ERR_INVALID);
        assert_int_equal(nb_keys_set(f->k, NB_KEYS_FUNCTION, "f", bad_names[i], VAL_A, NULL, NULL),
                         NB_ERR_INVALID);
    }
    const char *bad_values[] = {"",
                                "short",
                                "fifteen_chars__",
                                "has a space in it!",
                                "quote\"quote\"quote",
                                "apos'apos'apos'apos",
                                "tab\ttab\ttab\ttab\ttab",
                                val257};
    for (size_t i = 0; i < sizeof(bad_values) / sizeof(*bad_values); i++) {
        assert_int_equal(nb_keys_set(f->k, NB_KEYS_HOST, NULL, "ok", bad_values[i], NULL, NULL),
                         NB_ERR_INVALID);
        assert_int_equal(nb_keys_set(f->k, NB_KEYS_MASTER, NULL, NULL, bad_values[i], NULL, NULL),
                         NB_ERR_INVALID);
    }
    /* bad function names */
    assert_int_equal(nb_keys_set(f->k, NB_KEYS_FUNCTION, NULL, "ok", VAL_A, NULL, NULL),
                     NB_ERR_INVALID);
    assert_int_equal(nb_keys_set(f->k, NB_KEYS_FUNCTION, "a b", "ok", VAL_A, NULL, NULL),
                     NB_ERR_INVALID);
    struct nb_key_list l;
    assert_int_equal(nb_keys_list(f->k, NB_KEYS_FUNCTION, "", &l), NB_ERR_INVALID);
    assert_int_equal(l.n, 0);

    /* limits are inclusive */
    char name128[129];
    memset(name128, 'n', 128);
    name128[128] = '\0';
    char val256[257];
    memset(val256, 'v', 256);
    val256[256] = '\0';
    assert_int_equal(nb_keys_set(f->k, NB_KEYS_HOST, NULL, name128, val256, NULL, NULL), NB_OK);
    assert_int_equal(nb_keys_set(f->k, NB_KEYS_HOST, NULL, "A.b-c_9", VAL16, NULL, NULL), NB_OK);
    assert_int_equal(nb_keys_set(f->k, NB_KEYS_HOST, NULL, "sym", "a+b/c=d~e!f@g#h$", NULL, NULL),
                     NB_OK);
    /* nothing invalid was stored: default plus the three above */
    assert_int_equal(nb_keys_list(f->k, NB_KEYS_HOST, NULL, &l), NB_OK);
    assert_int_equal(l.n, 4);
    nb_key_list_cleanup(&l);
    assert_true(nb_keys_valid_name("_x"));
    assert_false(nb_keys_valid_value(NULL));
}

static void test_delete(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(nb_keys_set(f->k, NB_KEYS_SYSTEM, NULL, "blobs_extension", VAL_A, NULL, NULL),
                     NB_OK);
    assert_int_equal(nb_keys_check(f->k, NULL, VAL_A), NB_GRANT_SYSTEM);
    assert_int_equal(nb_keys_delete(f->k, NB_KEYS_SYSTEM, NULL, "BLOBS_extension"), NB_OK);
    assert_int_equal(nb_keys_check(f->k, NULL, VAL_A), NB_GRANT_NONE);
    assert_int_equal(nb_keys_delete(f->k, NB_KEYS_SYSTEM, NULL, "blobs_extension"),
                     NB_ERR_NOT_FOUND);
    char *v = NULL;
    assert_int_equal(nb_keys_get(f->k, NB_KEYS_SYSTEM, NULL, "blobs_extension", &v),
                     NB_ERR_NOT_FOUND);
    assert_null(v);

    assert_int_equal(nb_keys_delete(f->k, NB_KEYS_HOST, NULL, "default"), NB_OK);
    assert_int_equal(nb_keys_delete(f->k, NB_KEYS_HOST, NULL, "default"), NB_ERR_NOT_FOUND);
    assert_int_equal(nb_keys_delete(f->k, NB_KEYS_FUNCTION, "nofn", "default"), NB_ERR_NOT_FOUND);
    assert_int_equal(nb_keys_delete(f->k, NB_KEYS_HOST, NULL, "bad name"), NB_ERR_NOT_FOUND);
    assert_int_equal(nb_keys_delete(f->k, NB_KEYS_FUNCTION, "bad fn", "default"), NB_ERR_INVALID);

    assert_int_equal(nb_keys_set(f->k, NB_KEYS_FUNCTION, "f", "k", VAL_B, NULL, NULL), NB_OK);
    assert_int_equal(nb_keys_check(f->k, "f", VAL_B), NB_GRANT_FUNCTION);
    assert_int_equal(nb_keys_delete(f->k, NB_KEYS_FUNCTION, "F", "k"), NB_OK);
    assert_int_equal(nb_keys_check(f->k, "f", VAL_B), NB_GRANT_NONE);
}

static void test_delete_master_invalid(void **state)
{
    struct fixture *f = *state;
    char *m = get(f->k, NB_KEYS_MASTER, NULL, NULL);
    assert_int_equal(nb_keys_delete(f->k, NB_KEYS_MASTER, NULL, NULL), NB_ERR_INVALID);
    assert_int_equal(nb_keys_delete(f->k, NB_KEYS_MASTER, NULL, "_master"), NB_ERR_INVALID);
    assert_int_equal(nb_keys_delete(f->k, NB_KEYS_HOST, NULL, "_master"), NB_ERR_INVALID);
    assert_int_equal(nb_keys_check(f->k, NULL, m), NB_GRANT_ADMIN);
    free(m);
}

static void test_list_host_excludes_master(void **state)
{
    struct fixture *f = *state;
    char *m = get(f->k, NB_KEYS_MASTER, NULL, NULL);
    struct nb_key_list l;
    assert_int_equal(nb_keys_list(f->k, NB_KEYS_HOST, NULL, &l), NB_OK);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.items[0].name, "default");
    for (size_t i = 0; i < l.n; i++)
        assert_string_not_equal(l.items[i].value, m);
    nb_key_list_cleanup(&l);
    nb_key_list_cleanup(&l); /* a cleaned list cleans again */
    free(m);
}

static void test_functions_index(void **state)
{
    struct fixture *f = *state;
    char **names = NULL;
    size_t n = 99;
    assert_int_equal(nb_keys_functions(f->k, &names, &n), NB_OK);
    assert_int_equal(n, 0);
    nb_keys_names_free(names, n);

    assert_int_equal(nb_keys_ensure_function(f->k, "Zeta"), NB_OK);
    assert_int_equal(nb_keys_set(f->k, NB_KEYS_FUNCTION, "alpha", "k", NULL, NULL, NULL), NB_OK);
    assert_int_equal(nb_keys_ensure_function(f->k, "zeta"), NB_OK);
    assert_int_equal(nb_keys_functions(f->k, &names, &n), NB_OK);
    assert_int_equal(n, 2);
    assert_string_equal(names[0], "alpha");
    assert_string_equal(names[1], "zeta");
    nb_keys_names_free(names, n);
}

static void test_equal(void **state)
{
    (void)state;
    assert_true(nb_keys_equal("abc", "abc"));
    assert_true(nb_keys_equal("", ""));
    assert_false(nb_keys_equal("abc", "abd"));
    assert_false(nb_keys_equal("abc", "Abc"));
    assert_false(nb_keys_equal("abc", "ab"));
    assert_false(nb_keys_equal("ab", "abc"));
    assert_false(nb_keys_equal(NULL, "abc"));
    assert_false(nb_keys_equal("abc", NULL));
    assert_false(nb_keys_equal(NULL, NULL));
}

static void test_reload_from_other_instance(void **state)
{
    struct fixture *f = *state;
    struct nb_keys *other = NULL;
    assert_int_equal(nb_keys_open(f->s, &other), NB_OK);
    assert_int_equal(nb_keys_ensure_function(f->k, "fn"), NB_OK);
    /* both share the one master key */
    char *m1 = get(f->k, NB_KEYS_MASTER, NULL, NULL);
    char *m2 = get(other, NB_KEYS_MASTER, NULL, NULL);
    assert_string_equal(m1, m2);

    /* within the interval a miss does not reload */
    nb_keys_set_reload_interval_us(f->k, 3600LL * 1000000);
    assert_int_equal(nb_keys_set(other, NB_KEYS_HOST, NULL, "new", VAL_A, NULL, NULL), NB_OK);
    assert_int_equal(nb_keys_check(f->k, "fn", VAL_A), NB_GRANT_NONE);

    nb_keys_set_reload_interval_us(f->k, 0);
    assert_int_equal(nb_keys_check(f->k, "fn", VAL_A), NB_GRANT_FUNCTION);

    /* function keys and system keys set elsewhere show up too */
    assert_int_equal(nb_keys_set(other, NB_KEYS_FUNCTION, "FN", "k", VAL_B, NULL, NULL), NB_OK);
    assert_int_equal(nb_keys_check(f->k, "fn", VAL_B), NB_GRANT_FUNCTION);
    assert_int_equal(nb_keys_set(other, NB_KEYS_SYSTEM, NULL, "s", VAL16, NULL, NULL), NB_OK);
    assert_int_equal(nb_keys_check(f->k, NULL, VAL16), NB_GRANT_SYSTEM);

    /* a renewed master replaces the old one */
    char *m3 = NULL;
    assert_int_equal(nb_keys_set(other, NB_KEYS_MASTER, NULL, NULL, NULL, NULL, &m3), NB_OK);
    assert_int_equal(nb_keys_check(f->k, NULL, m3), NB_GRANT_ADMIN);
    assert_int_equal(nb_keys_check(f->k, NULL, m1), NB_GRANT_NONE);

    /* a delete elsewhere: a hit on a fresh cache still passes, a cache
     * past its maximum age (60 intervals; 0 here) is reloaded first */
    assert_int_equal(nb_keys_delete(other, NB_KEYS_HOST, NULL, "new"), NB_OK);
    nb_keys_set_reload_interval_us(f->k, 3600LL * 1000000);
    assert_int_equal(nb_keys_check(f->k, "fn", VAL_A), NB_GRANT_FUNCTION);
    nb_keys_set_reload_interval_us(f->k, 0);
    assert_int_equal(nb_keys_check(f->k, "fn", VAL_A), NB_GRANT_NONE);

    /* an edit re-reads the record first: other's "new2" survives f's set */
    assert_int_equal(nb_keys_set(other, NB_KEYS_HOST, NULL, "new2", VAL_A, NULL, NULL), NB_OK);
    assert_int_equal(nb_keys_set(f->k, NB_KEYS_HOST, NULL, "mine", VAL_B, NULL, NULL), NB_OK);
    struct nb_key_list l;
    assert_int_equal(nb_keys_list(other, NB_KEYS_HOST, NULL, &l), NB_OK);
    assert_int_equal(l.n, 3); /* default, new2, mine */
    nb_key_list_cleanup(&l);

    nb_keys_close(other);
    free(m1);
    free(m2);
    free(m3);
}

static void test_open_repairs_missing_master(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(nb_store_kv_set(f->s, NB_KEYS_NS, "host",
                                     "{\"functionKeys\":[{\"name\":\"k\",\"value\":\"" VAL_A
                                     "\"},{\"name\":1}],\"systemKeys\":[]}"),
                     NB_OK);
    struct nb_keys *k2 = NULL;
    assert_int_equal(nb_keys_open(f->s, &k2), NB_OK);
    char *m = get(k2, NB_KEYS_MASTER, NULL, NULL);
    assert_int_equal(strlen(m), 43);
    assert_int_equal(nb_keys_check(k2, NULL, m), NB_GRANT_ADMIN);
    assert_int_equal(nb_keys_check(k2, NULL, VAL_A), NB_GRANT_FUNCTION);
    struct nb_key_list l;
    assert_int_equal(nb_keys_list(k2, NB_KEYS_HOST, NULL, &l), NB_OK);
    assert_int_equal(l.n, 1); /* no default added, the bad entry skipped */
    nb_key_list_cleanup(&l);
    nb_keys_close(k2);
    free(m);

    /* a record that is not JSON is a store error */
    assert_int_equal(nb_store_kv_set(f->s, NB_KEYS_NS, "host", "not json"), NB_OK);
    assert_int_equal(nb_keys_open(f->s, &k2), NB_ERR_STORE);
    assert_null(k2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_first_open_creates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_same_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_grants, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ensure_function_idempotent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_create_replace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_generated_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_master_renew, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_names_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_master_invalid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_host_excludes_master, setup, teardown),
        cmocka_unit_test_setup_teardown(test_functions_index, setup, teardown),
        cmocka_unit_test(test_equal),
        cmocka_unit_test_setup_teardown(test_reload_from_other_instance, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_repairs_missing_master, setup, teardown),
    };
    return cmocka_run_group_tests_name("host/keys", tests, NULL, NULL);
}
