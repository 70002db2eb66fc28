/* Tests of the store's queue, message and kv operations (store.h) against the
 * SQLite backend, once in memory and once on disk in a fresh mkdtemp
 * directory. Time is injected: every call gets an explicit `now`, so the
 * tests never sleep for it; only the concurrency tests wait, for threads.
 * The file-mode fixture removes its directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/encode.h"
#include "store/store.h"

#define T0 ((nb_time_ms)1700000000000LL)
#define ACCT "devstoreaccount1"
#define DAY_MS (86400LL * 1000)

struct fixture {
    struct nb_store *s;
    struct nb_store_config cfg;
    char dir[64];
    bool file;
};

static void open_store(struct fixture *f)
{
    assert_int_equal(nb_store_open_sqlite(&f->cfg, &f->s), NB_OK);
    assert_non_null(f->s);
}

static int setup_mem(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->cfg.in_memory = true;
    open_store(f);
    *state = f;
    return 0;
}

static int setup_file(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/nimbus-store-XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    f->file = true;
    f->cfg.dir = f->dir;
    f->cfg.sync = NB_STORE_SYNC_NORMAL;
    open_store(f);
    *state = f;
    return 0;
}

static void remove_dir(const char *dir)
{
    static const char *const files[] = { "nimbus.db", "nimbus.db-wal", "nimbus.db-shm" };
    char path[128];
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    nb_store_close(f->s);
    if (f->file) remove_dir(f->dir);
    free(f);
    return 0;
}

/* --- helpers ------------------------------------------------------------ */

static void mkq(struct nb_store *s, const char *q)
{
    assert_int_equal(nb_store_queue_create(s, ACCT, q, "", T0), NB_OK);
}

static void put(struct nb_store *s, const char *q, const char *text, int64_t vis, int64_t ttl,
                nb_time_ms now, struct nb_msg *out)
{
    struct nb_msg_put in = { text, strlen(text), vis, ttl };
    assert_int_equal(nb_store_msg_put(s, ACCT, q, &in, now, out), NB_OK);
}

static int64_t count(struct nb_store *s, const char *q, nb_time_ms now)
{
    int64_t n = -1;
    assert_int_equal(nb_store_queue_get(s, ACCT, q, now, NULL, &n), NB_OK);
    return n;
}

static size_t peek_n(struct nb_store *s, const char *q, nb_time_ms now)
{
    struct nb_msg_list l;
    assert_int_equal(nb_store_msg_peek(s, ACCT, q, 32, now, &l), NB_OK);
    size_t n = l.n;
    nb_msg_list_cleanup(&l);
    return n;
}

/* --- tests -------------------------------------------------------------- */

static void test_put_result(void **state)
{
    struct nb_store *s = ((struct fixture *)*state)->s;
    mkq(s, "q1");
    struct nb_msg m;
    put(s, "q1", "hello", 0, 60000, T0, &m);
    assert_int_equal(strlen(m.id), 36);
    assert_int_equal(m.id[14], '4');
    assert_int_equal(strlen(m.pop_receipt), 12);
    unsigned char *raw = NULL; /* the receipt is standard base64 of 8 bytes */
    size_t rawlen = 0;
    assert_true(nb_base64_decode(m.pop_receipt, 12, &raw, &rawlen));
    assert_int_equal(rawlen, 8);
    free(raw);
    assert_int_equal(m.insertion_time, T0);
    assert_int_equal(m.expiration_time, T0 + 60000);
    assert_int_equal(m.time_next_visible, T0);
    assert_int_equal(m.dequeue_count, 0);
    assert_null(m.text);

    struct nb_msg m2;
    put(s, "q1", "forever", 0, -1, T0, &m2);
    assert_int_equal(m2.expiration_time, NB_TIME_NEVER);
    assert_string_not_equal(m.id, m2.id);
    assert_string_not_equal(m.pop_receipt, m2.pop_receipt);
}

static void test_put_visibility(void **state)
{
    struct nb_store *s = ((struct fixture *)*state)->s;
    mkq(s, "q1");
    struct nb_msg m;
    put(s, "q1", "later", 10000, 7 * DAY_MS, T0, &m);
    assert_int_equal(m.time_next_visible, T0 + 10000);
    assert_int_equal(count(s, "q1", T0), 1); /* counted though invisible */
    assert_int_equal(peek_n(s, "q1", T0 + 9999), 0);

    struct nb_msg_list l;
    assert_int_equal(nb_store_msg_get(s, ACCT, "q1", 32, 30000, T0 + 9999, &l), NB_OK);
    assert_int_equal(l.n, 0);
    nb_msg_list_cleanup(&l);

    assert_int_equal(peek_n(s, "q1", T0 + 10000), 1);
    assert_int_equal(nb_store_msg_get(s, ACCT, "q1", 32, 30000, T0 + 10000, &l), NB_OK);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.items[0].id, m.id);
    nb_msg_list_cleanup(&l);
}

static void test_get_cycle(void **state)
{
    struct nb_store *s = ((struct fixture *)*state)->s;
    mkq(s, "q1");
    struct nb_msg m;
    put(s, "q1", "hello <world> & 'friends' \xc3\xa9", 0, 7 * DAY_MS, T0, &m);

    struct nb_msg_list l;
    assert_int_equal(nb_store_msg_get(s, ACCT, "q1", 1, 30000, T0 + 5, &l), NB_OK);
    assert_int_equal(l.n, 1);
    struct nb_msg *g = &l.items[0];
    assert_string_equal(g->id, m.id);
    assert_int_equal(g->dequeue_count, 1);
    assert_string_not_equal(g->pop_receipt, m.pop_receipt);
    assert_int_equal(strlen(g->pop_receipt), 12);
    assert_int_equal(g->time_next_visible, T0 + 5 + 30000);
    assert_int_equal(g->insertion_time, T0);
    assert_int_equal(g->expiration_time, T0 + 7 * DAY_MS);
    assert_string_equal(g->text, "hello <world> & 'friends' \xc3\xa9");
    assert_int_equal(g->text_len, strlen(g->text));
    char r1[NB_POP_RECEIPT_LEN];
    memcpy(r1, g->pop_receipt, sizeof(r1));
    nb_msg_list_cleanup(&l);

    /* hidden for the visibility timeout, still counted */
    assert_int_equal(nb_store_msg_get(s, ACCT, "q1", 1, 30000, T0 + 30004, &l), NB_OK);
    assert_int_equal(l.n, 0);
    nb_msg_list_cleanup(&l);
    assert_int_equal(peek_n(s, "q1", T0 + 30004), 0);
    assert_int_equal(count(s, "q1", T0 + 30004), 1);

    /* and back again */
    assert_int_equal(nb_store_msg_get(s, ACCT, "q1", 1, 1000, T0 + 30005, &l), NB_OK);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.items[0].dequeue_count, 2);
    assert_string_not_equal(l.items[0].pop_receipt, r1);
    assert_int_equal(l.items[0].time_next_visible, T0 + 31005);
    nb_msg_list_cleanup(&l);

    /* the old receipt no longer deletes it */
    assert_int_equal(nb_store_msg_delete(s, ACCT, "q1", m.id, r1, T0 + 30006), NB_ERR_MISMATCH);
}

static void test_get_order_and_n(void **state)
{
    struct nb_store *s = ((struct fixture *)*state)->s;
    mkq(s, "q1");
    struct nb_msg a, b, c, d;
    put(s, "q1", "a", 0, DAY_MS, T0, &a);
    put(s, "q1", "b", 0, DAY_MS, T0, &b);
    put(s, "q1", "c", 0, DAY_MS, T0, &c);
    put(s, "q1", "d", 500, DAY_MS, T0 - 1000, &d); /* visible at T0 - 500: first */

    struct nb_msg_list l;
    assert_int_equal(nb_store_msg_peek(s, ACCT, "q1", 32, T0, &l), NB_OK);
    assert_int_equal(l.n, 4);
    assert_string_equal(l.items[0].text, "d");
    assert_string_equal(l.items[1].text, "a");
    assert_string_equal(l.items[2].text, "b");
    assert_string_equal(l.items[3].text, "c");
    nb_msg_list_cleanup(&l);

    assert_int_equal(nb_store_msg_get(s, ACCT, "q1", 2, 1000, T0, &l), NB_OK);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.items[0].text, "d");
    assert_string_equal(l.items[1].text, "a");
    nb_msg_list_cleanup(&l);
    assert_int_equal(nb_store_msg_get(s, ACCT, "q1", 5, 1000, T0, &l), NB_OK);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.items[0].text, "b");
    assert_string_equal(l.items[1].text, "c");
    nb_msg_list_cleanup(&l);
    assert_int_equal(nb_store_msg_get(s, ACCT, "q1", 0, 1000, T0 + 5000, &l), NB_OK);
    assert_int_equal(l.n, 0);
    nb_msg_list_cleanup(&l);
}

static void test_peek_changes_nothing(void **state)
{
    struct nb_store *s = ((struct fixture *)*state)->s;
    mkq(s, "q1");
    struct nb_msg m;
    put(s, "q1", "p", 0, DAY_MS, T0, &m);
    for (int i = 0; i < 2; i++) {
        struct nb_msg_list l;
        assert_int_equal(nb_store_msg_peek(s, ACCT, "q1", 1, T0 + i, &l), NB_OK);
        assert_int_equal(l.n, 1);
        assert_string_equal(l.items[0].id, m.id);
        assert_string_equal(l.items[0].pop_receipt, "");
        assert_int_equal(l.items[0].dequeue_count, 0);
        assert_int_equal(l.items[0].time_next_visible, T0);
        assert_string_equal(l.items[0].text, "p");
        nb_msg_list_cleanup(&l);
    }
    /* the put receipt still works: peek rotated nothing */
    assert_int_equal(nb_store_msg_delete(s, ACCT, "q1", m.id, m.pop_receipt, T0 + 2), NB_OK);
}

static void test_delete(void **state)
{
    struct nb_store *s = ((struct fixture *)*state)->s;
    mkq(s, "q1");
    struct nb_msg m;
    put(s, "q1", "x", 0, DAY_MS, T0, &m);
    struct nb_msg_list l;
    assert_int_equal(nb_store_msg_get(s, ACCT, "q1", 1, 30000, T0, &l), NB_OK);
    assert_int_equal(l.n, 1);

    assert_int_equal(nb_store_msg_delete(s, ACCT, "q1", m.id, m.pop_receipt, T0),
                     NB_ERR_MISMATCH);
    assert_int_equal(nb_store_msg_delete(s, ACCT, "q1", m.id, "bogus", T0), NB_ERR_MISMATCH);
    assert_int_equal(nb_store_msg_delete(s, ACCT, "q1", m.id, NULL, T0), NB_ERR_MISMATCH);
    assert_int_equal(nb_store_msg_delete(s, ACCT, "q1", "00000000-0000-4000-8000-000000000000",
                                         l.items[0].pop_receipt, T0),
                     NB_ERR_NOT_FOUND);
    assert_int_equal(count(s, "q1", T0), 1);
    assert_int_equal(nb_store_msg_delete(s, ACCT, "q1", m.id, l.items[0].pop_receipt, T0), NB_OK);
    assert_int_equal(nb_store_msg_delete(s, ACCT, "q1", m.id, l.items[0].pop_receipt, T0),
                     NB_ERR_NOT_FOUND);
    assert_int_equal(count(s, "q1", T0), 0);
    nb_msg_list_cleanup(&l);

    /* a message never received is deleted with its put receipt */
    put(s, "q1", "y", 0, DAY_MS, T0, &m);
    assert_int_equal(nb_store_msg_delete(s, ACCT, "q1", m.id, m.pop_receipt, T0), NB_OK);

    /* ids are per queue */
    mkq(s, "q2");
    put(s, "q1", "z", 0, DAY_MS, T0, &m);
    assert_int_equal(nb_store_msg_delete(s, ACCT, "q2", m.id, m.pop_receipt, T0),
                     NB_ERR_NOT_FOUND);
}

static void test_update(void **state)
{
    struct nb_store *s = ((struct fixture *)*state)->s;
    mkq(s, "q1");
    struct nb_msg m, u, u2;
    put(s, "q1", "old", 0, DAY_MS, T0, &m);
    struct nb_msg_list l;
    assert_int_equal(nb_store_msg_get(s, ACCT, "q1", 1, 30000, T0, &l), NB_OK);
    assert_int_equal(l.n, 1);
    char r1[NB_POP_RECEIPT_LEN];
    memcpy(r1, l.items[0].pop_receipt, sizeof(r1));
    nb_msg_list_cleanup(&l);

    assert_int_equal(nb_store_msg_update(s, ACCT, "q1", m.id, r1, 5000, "new", 3, T0 + 10, &u),
                     NB_OK);
    assert_string_not_equal(u.pop_receipt, r1);
    assert_int_equal(strlen(u.pop_receipt), 12);
    assert_int_equal(u.time_next_visible, T0 + 5010);
    assert_string_equal(u.id, m.id);
    assert_int_equal(u.expiration_time, T0 + DAY_MS);
    assert_null(u.text);

    assert_int_equal(peek_n(s, "q1", T0 + 5009), 0);
    assert_int_equal(nb_store_msg_peek(s, ACCT, "q1", 1, T0 + 5010, &l), NB_OK);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.items[0].text, "new");
    assert_int_equal(l.items[0].dequeue_count, 1);
    nb_msg_list_cleanup(&l);

    /* stale receipt, unknown id */
    assert_int_equal(nb_store_msg_update(s, ACCT, "q1", m.id, r1, 0, NULL, 0, T0 + 20, &u2),
                     NB_ERR_MISMATCH);
    assert_int_equal(nb_store_msg_update(s, ACCT, "q1", "nope", u.pop_receipt, 0, NULL, 0,
                                         T0 + 20, &u2),
                     NB_ERR_NOT_FOUND);

    /* NULL text keeps the text; visibility 0 makes it visible at once */
    assert_int_equal(
        nb_store_msg_update(s, ACCT, "q1", m.id, u.pop_receipt, 0, NULL, 0, T0 + 20, &u2), NB_OK);
    assert_int_equal(u2.time_next_visible, T0 + 20);
    assert_int_equal(nb_store_msg_peek(s, ACCT, "q1", 1, T0 + 20, &l), NB_OK);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.items[0].text, "new");
    nb_msg_list_cleanup(&l);
    /* an empty text is a text, not "keep" */
    assert_int_equal(
        nb_store_msg_update(s, ACCT, "q1", m.id, u2.pop_receipt, 0, "", 0, T0 + 30, &u), NB_OK);
    assert_int_equal(nb_store_msg_peek(s, ACCT, "q1", 1, T0 + 30, &l), NB_OK);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.items[0].text, "");
    assert_int_equal(l.items[0].text_len, 0);
    nb_msg_list_cleanup(&l);
}

static void test_ttl(void **state)
{
    struct nb_store *s = ((struct fixture *)*state)->s;
    mkq(s, "q1");
    mkq(s, "q2");
    struct nb_msg m, never, other;
    put(s, "q1", "short", 0, 1000, T0, &m);
    put(s, "q1", "never", 0, -1, T0, &never);
    put(s, "q2", "other", 0, 2000, T0, &other);
    assert_int_equal(never.expiration_time, NB_TIME_NEVER);

    assert_int_equal(count(s, "q1", T0 + 999), 2);
    assert_int_equal(peek_n(s, "q1", T0 + 999), 2);
    assert_int_equal(count(s, "q1", T0 + 1000), 1);
    assert_int_equal(peek_n(s, "q1", T0 + 1000), 1);

    struct nb_msg_list l;
    assert_int_equal(nb_store_msg_get(s, ACCT, "q1", 32, 30000, T0 + 1000, &l), NB_OK);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.items[0].id, never.id);
    nb_msg_list_cleanup(&l);

    struct nb_msg u;
    assert_int_equal(nb_store_msg_delete(s, ACCT, "q1", m.id, m.pop_receipt, T0 + 1000),
                     NB_ERR_NOT_FOUND);
    assert_int_equal(
        nb_store_msg_update(s, ACCT, "q1", m.id, m.pop_receipt, 0, NULL, 0, T0 + 1000, &u),
        NB_ERR_NOT_FOUND);

    size_t removed = 99;
    assert_int_equal(nb_store_msg_expire(s, T0 + 999, &removed), NB_OK);
    assert_int_equal(removed, 0);
    assert_int_equal(nb_store_msg_expire(s, T0 + 1000, &removed), NB_OK);
    assert_int_equal(removed, 1);
    /* the swept message is gone even for a clock that runs backwards */
    assert_int_equal(count(s, "q1", T0), 1);
    assert_int_equal(count(s, "q2", T0), 1);
    assert_int_equal(nb_store_msg_expire(s, T0 + 5000, &removed), NB_OK);
    assert_int_equal(removed, 1);
    assert_int_equal(count(s, "q2", T0), 0);
    /* ttl -1 outlives everything short of year 9999 */
    assert_int_equal(nb_store_msg_expire(s, NB_TIME_NEVER - 1, &removed), NB_OK);
    assert_int_equal(removed, 0);
    assert_int_equal(count(s, "q1", NB_TIME_NEVER - 1), 1);
    assert_int_equal(nb_store_msg_expire(s, T0, NULL), NB_OK);
}

static void test_clear(void **state)
{
    struct nb_store *s = ((struct fixture *)*state)->s;
    mkq(s, "q1");
    mkq(s, "q2");
    struct nb_msg m;
    for (int i = 0; i < 5; i++) put(s, "q1", "c", 0, DAY_MS, T0, &m);
    put(s, "q2", "keep", 0, DAY_MS, T0, &m);
    assert_int_equal(nb_store_msg_clear(s, ACCT, "q1"), NB_OK);
    assert_int_equal(count(s, "q1", T0), 0);
    assert_int_equal(count(s, "q2", T0), 1);
}

static void test_queue_create(void **state)
{
    struct nb_store *s = ((struct fixture *)*state)->s;
    assert_int_equal(nb_store_queue_create(s, ACCT, "meta", "a=b", T0), NB_OK);
    assert_int_equal(nb_store_queue_create(s, ACCT, "meta", "a=b", T0 + 1), NB_ERR_EXISTS_SAME);
    assert_int_equal(nb_store_queue_create(s, ACCT, "meta", "a=c", T0 + 1), NB_ERR_EXISTS);
    assert_int_equal(nb_store_queue_create(s, ACCT, "meta", "", T0 + 1), NB_ERR_EXISTS);
    /* names are exact; accounts are separate */
    assert_int_equal(nb_store_queue_create(s, ACCT, "Meta", "", T0), NB_OK);
    assert_int_equal(nb_store_queue_create(s, "other", "meta", "x", T0), NB_OK);

    char *md = NULL;
    int64_t n = -1;
    assert_int_equal(nb_store_queue_get(s, ACCT, "meta", T0, &md, &n), NB_OK);
    assert_string_equal(md, "a=b");
    assert_int_equal(n, 0);
    free(md);
    assert_int_equal(nb_store_queue_get(s, ACCT, "meta", T0, NULL, NULL), NB_OK);

    assert_int_equal(nb_store_queue_set_metadata(s, ACCT, "meta", "x=y"), NB_OK);
    assert_int_equal(nb_store_queue_get(s, ACCT, "meta", T0, &md, NULL), NB_OK);
    assert_string_equal(md, "x=y");
    free(md);
    assert_int_equal(nb_store_queue_create(s, ACCT, "meta", "x=y", T0), NB_ERR_EXISTS_SAME);
    assert_int_equal(nb_store_queue_get(s, ACCT, "missing", T0, &md, &n), NB_ERR_NO_PARENT);
}

static void check_names(const struct nb_queue_list *l, const char *const *names, size_t n)
{
    assert_int_equal(l->n, n);
    for (size_t i = 0; i < n; i++) assert_string_equal(l->items[i].name, names[i]);
}

static void test_queue_list(void **state)
{
    struct nb_store *s = ((struct fixture *)*state)->s;
    static const char *const all[] = { "alpha", "beta1", "beta2", "beta3", "betb", "gamma" };
    /* create out of order */
    for (size_t i = 6; i-- > 0;)
        assert_int_equal(nb_store_queue_create(s, ACCT, all[i], all[i], T0), NB_OK);
    assert_int_equal(nb_store_queue_create(s, "other", "beta0", "", T0), NB_OK);

    struct nb_queue_list l;
    assert_int_equal(nb_store_queue_list(s, ACCT, NULL, NULL, 5000, true, &l), NB_OK);
    check_names(&l, all, 6);
    assert_null(l.next_marker);
    assert_string_equal(l.items[2].metadata, "beta2");
    nb_queue_list_cleanup(&l);

    assert_int_equal(nb_store_queue_list(s, ACCT, "beta", "", 2, false, &l), NB_OK);
    check_names(&l, all + 1, 2);
    assert_null(l.items[0].metadata);
    assert_string_equal(l.next_marker, "beta3");
    nb_queue_list_cleanup(&l);

    assert_int_equal(nb_store_queue_list(s, ACCT, "beta", "beta3", 2, false, &l), NB_OK);
    check_names(&l, all + 3, 1);
    assert_null(l.next_marker);
    nb_queue_list_cleanup(&l);

    /* a marker before the prefix starts at the prefix */
    assert_int_equal(nb_store_queue_list(s, ACCT, "bet", "a", 10, false, &l), NB_OK);
    check_names(&l, all + 1, 4);
    assert_null(l.next_marker);
    nb_queue_list_cleanup(&l);

    assert_int_equal(nb_store_queue_list(s, ACCT, "", "betb", 1, false, &l), NB_OK);
    check_names(&l, all + 4, 1);
    assert_string_equal(l.next_marker, "gamma");
    nb_queue_list_cleanup(&l);

    assert_int_equal(nb_store_queue_list(s, ACCT, "zzz", NULL, 10, true, &l), NB_OK);
    assert_int_equal(l.n, 0);
    assert_null(l.next_marker);
    nb_queue_list_cleanup(&l);

    assert_int_equal(nb_store_queue_list(s, "nobody", NULL, NULL, 10, true, &l), NB_OK);
    assert_int_equal(l.n, 0);
    nb_queue_list_cleanup(&l);
}

static void test_acl_and_kv(void **state)
{
    struct nb_store *s = ((struct fixture *)*state)->s;
    mkq(s, "q1");
    char *acl = NULL;
    assert_int_equal(nb_store_queue_get_acl(s, ACCT, "q1", &acl), NB_OK);
    assert_string_equal(acl, "");
    free(acl);
    const char *xml = "<SignedIdentifiers><SignedIdentifier><Id>p</Id></SignedIdentifier>"
                      "</SignedIdentifiers>";
    assert_int_equal(nb_store_queue_set_acl(s, ACCT, "q1", xml), NB_OK);
    assert_int_equal(nb_store_queue_get_acl(s, ACCT, "q1", &acl), NB_OK);
    assert_string_equal(acl, xml);
    free(acl);
    assert_int_equal(nb_store_queue_get_acl(s, ACCT, "nope", &acl), NB_ERR_NO_PARENT);
    assert_int_equal(nb_store_queue_set_acl(s, ACCT, "nope", xml), NB_ERR_NO_PARENT);

    char *v = NULL;
    assert_int_equal(nb_store_kv_get(s, "queue.props", ACCT, &v), NB_ERR_NOT_FOUND);
    assert_int_equal(nb_store_kv_set(s, "queue.props", ACCT, "<xml/>"), NB_OK);
    assert_int_equal(nb_store_kv_set(s, "table.props", ACCT, "{}"), NB_OK);
    assert_int_equal(nb_store_kv_get(s, "queue.props", ACCT, &v), NB_OK);
    assert_string_equal(v, "<xml/>");
    free(v);
    assert_int_equal(nb_store_kv_set(s, "queue.props", ACCT, "<v2/>"), NB_OK);
    assert_int_equal(nb_store_kv_get(s, "queue.props", ACCT, &v), NB_OK);
    assert_string_equal(v, "<v2/>");
    free(v);
    assert_int_equal(nb_store_kv_set(s, "queue.props", ACCT, NULL), NB_OK);
    assert_int_equal(nb_store_kv_get(s, "queue.props", ACCT, &v), NB_ERR_NOT_FOUND);
    assert_int_equal(nb_store_kv_set(s, "queue.props", ACCT, NULL), NB_OK);
    assert_int_equal(nb_store_kv_get(s, "table.props", ACCT, &v), NB_OK);
    assert_string_equal(v, "{}");
    free(v);
}

static void test_delete_queue(void **state)
{
    struct nb_store *s = ((struct fixture *)*state)->s;
    mkq(s, "q1");
    mkq(s, "q2");
    struct nb_msg m, u;
    put(s, "q1", "gone", 0, DAY_MS, T0, &m);
    put(s, "q2", "kept", 0, DAY_MS, T0, &u);
    assert_int_equal(nb_store_queue_delete(s, ACCT, "q1"), NB_OK);
    assert_int_equal(nb_store_queue_delete(s, ACCT, "q1"), NB_ERR_NO_PARENT);

    struct nb_msg_put in = { "x", 1, 0, DAY_MS };
    struct nb_msg_list l;
    char *str = NULL;
    int64_t n;
    assert_int_equal(nb_store_msg_put(s, ACCT, "q1", &in, T0, &u), NB_ERR_NO_PARENT);
    assert_int_equal(nb_store_msg_get(s, ACCT, "q1", 1, 1000, T0, &l), NB_ERR_NO_PARENT);
    assert_int_equal(l.n, 0);
    assert_int_equal(nb_store_msg_peek(s, ACCT, "q1", 1, T0, &l), NB_ERR_NO_PARENT);
    assert_int_equal(nb_store_msg_get(s, ACCT, "q1", 0, 1000, T0, &l), NB_ERR_NO_PARENT);
    assert_int_equal(nb_store_msg_peek(s, ACCT, "q1", 0, T0, &l), NB_ERR_NO_PARENT);
    assert_int_equal(nb_store_msg_get(s, ACCT, "q2", 0, 1000, T0, &l), NB_OK);
    assert_int_equal(l.n, 0);
    assert_int_equal(nb_store_msg_delete(s, ACCT, "q1", m.id, m.pop_receipt, T0),
                     NB_ERR_NO_PARENT);
    assert_int_equal(nb_store_msg_update(s, ACCT, "q1", m.id, m.pop_receipt, 0, NULL, 0, T0, &u),
                     NB_ERR_NO_PARENT);
    assert_int_equal(nb_store_msg_clear(s, ACCT, "q1"), NB_ERR_NO_PARENT);
    assert_int_equal(nb_store_queue_get(s, ACCT, "q1", T0, &str, &n), NB_ERR_NO_PARENT);
    assert_int_equal(nb_store_queue_set_metadata(s, ACCT, "q1", "a"), NB_ERR_NO_PARENT);
    assert_int_equal(nb_store_queue_get_acl(s, ACCT, "q1", &str), NB_ERR_NO_PARENT);

    /* a queue made again under the same name starts empty */
    mkq(s, "q1");
    assert_int_equal(count(s, "q1", T0), 0);
    assert_int_equal(nb_store_msg_delete(s, ACCT, "q1", m.id, m.pop_receipt, T0),
                     NB_ERR_NOT_FOUND);
    assert_int_equal(count(s, "q2", T0), 1);
}

static void test_reopen(void **state)
{
    struct fixture *f = *state;
    if (!f->file) skip();
    mkq(f->s, "durable");
    struct nb_msg m;
    put(f->s, "durable", "survives", 0, DAY_MS, T0, &m);
    assert_int_equal(nb_store_queue_set_acl(f->s, ACCT, "durable", "<acl/>"), NB_OK);
    assert_int_equal(nb_store_kv_set(f->s, "ns", "k", "v"), NB_OK);
    nb_store_close(f->s);
    f->s = NULL;

    /* FULL this time: the setting is per connection, not per file */
    f->cfg.sync = NB_STORE_SYNC_FULL;
    open_store(f);
    assert_int_equal(count(f->s, "durable", T0), 1);
    struct nb_msg_list l;
    assert_int_equal(nb_store_msg_get(f->s, ACCT, "durable", 1, 1000, T0, &l), NB_OK);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.items[0].id, m.id);
    assert_string_equal(l.items[0].text, "survives");
    nb_msg_list_cleanup(&l);
    char *v = NULL;
    assert_int_equal(nb_store_kv_get(f->s, "ns", "k", &v), NB_OK);
    assert_string_equal(v, "v");
    free(v);
    assert_int_equal(nb_store_queue_get_acl(f->s, ACCT, "durable", &v), NB_OK);
    assert_string_equal(v, "<acl/>");
    free(v);
    assert_int_equal(nb_store_queue_create(f->s, ACCT, "durable", "", T0), NB_ERR_EXISTS_SAME);
}

static void test_open_errors(void **state)
{
    (void)state;
    struct nb_store *s = (struct nb_store *)1;
    struct nb_store_config cfg = { .dir = "/proc/nimbus-cannot-be-here", .in_memory = false };
    assert_int_equal(nb_store_open_sqlite(&cfg, &s), NB_ERR_IO);
    assert_null(s);
    nb_store_close(NULL);
    nb_queue_list_cleanup(NULL);
    nb_msg_list_cleanup(NULL);
}

static void test_nested_dir(void **state)
{
    (void)state;
    char base[] = "/tmp/nimbus-store-XXXXXX";
    assert_non_null(mkdtemp(base));
    char dir[96];
    snprintf(dir, sizeof(dir), "%s/a/b", base);
    struct nb_store_config cfg = { .dir = dir };
    struct nb_store *s = NULL;
    assert_int_equal(nb_store_open_sqlite(&cfg, &s), NB_OK);
    mkq(s, "q1");
    nb_store_close(s);
    remove_dir(dir);
    snprintf(dir, sizeof(dir), "%s/a", base);
    rmdir(dir);
    rmdir(base);
}

/* --- concurrency -------------------------------------------------------- */

#define THREADS 8
#define PUTS 500

struct worker {
    struct nb_store *s;
    int index;
    int failures;
};

static void *putter(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < PUTS; i++) {
        char text[32];
        snprintf(text, sizeof(text), "%d-%d", w->index, i);
        struct nb_msg_put in = { text, strlen(text), 0, -1 };
        struct nb_msg m;
        if (nb_store_msg_put(w->s, ACCT, "busy", &in, T0 + i, &m) != NB_OK) w->failures++;
    }
    return NULL;
}

/* Jobs that fail logically, batched together with the puts: each must fail
 * alone, in its own savepoint, without taking a put down with it. */
static void *failer(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < PUTS / 2; i++) {
        if (nb_store_msg_delete(w->s, ACCT, "busy", "no-such-id", "r", T0) != NB_ERR_NOT_FOUND)
            w->failures++;
        if (nb_store_queue_create(w->s, ACCT, "busy", "", T0) != NB_ERR_EXISTS_SAME)
            w->failures++;
        struct nb_msg_put in = { "x", 1, 0, -1 };
        struct nb_msg m;
        if (nb_store_msg_put(w->s, ACCT, "no-such-queue", &in, T0, &m) != NB_ERR_NO_PARENT)
            w->failures++;
        int64_t n;
        if (nb_store_queue_get(w->s, ACCT, "busy", T0, NULL, &n) != NB_OK) w->failures++;
    }
    return NULL;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_concurrent_puts(void **state)
{
    struct nb_store *s = ((struct fixture *)*state)->s;
    mkq(s, "busy");
    pthread_t t[THREADS + 2];
    struct worker w[THREADS + 2];
    for (int i = 0; i < THREADS + 2; i++) {
        w[i] = (struct worker){ s, i, 0 };
        assert_int_equal(pthread_create(&t[i], NULL, i < THREADS ? putter : failer, &w[i]), 0);
    }
    for (int i = 0; i < THREADS + 2; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
    assert_int_equal(count(s, "busy", T0), THREADS * PUTS);

    /* Drain: every message exactly once. */
    char **texts = calloc(THREADS * PUTS, sizeof(char *));
    char **ids = calloc(THREADS * PUTS, sizeof(char *));
    size_t n = 0;
    for (;;) {
        struct nb_msg_list l;
        assert_int_equal(nb_store_msg_get(s, ACCT, "busy", 32, 60000, T0 + PUTS, &l), NB_OK);
        if (l.n == 0) break;
        for (size_t i = 0; i < l.n; i++) {
            assert_true(n < THREADS * PUTS);
            assert_int_equal(l.items[i].dequeue_count, 1);
            texts[n] = strdup(l.items[i].text);
            ids[n++] = strdup(l.items[i].id);
        }
        nb_msg_list_cleanup(&l);
    }
    assert_int_equal(n, THREADS * PUTS);
    qsort(texts, n, sizeof(char *), cmp_str);
    qsort(ids, n, sizeof(char *), cmp_str);
    for (size_t i = 1; i < n; i++) {
        assert_string_not_equal(texts[i - 1], texts[i]);
        assert_string_not_equal(ids[i - 1], ids[i]);
    }
    for (size_t i = 0; i < n; i++) {
        free(texts[i]);
        free(ids[i]);
    }
    free(texts);
    free(ids);
}

/* Producers, consumers (get + delete) and readers all at once: every
 * message is consumed exactly once and no call fails. */
#define MIX_PUTTERS 4
#define MIX_PUTS 300
#define MIX_CONSUMERS 2
#define MIX_READERS 2

struct mix {
    struct nb_store *s;
    atomic_int consumed;
    atomic_int failures;
    atomic_bool done;
    pthread_mutex_t mu;
    char **ids; /* consumed ids, MIX_PUTTERS * MIX_PUTS slots, under mu */
    size_t nids;
};

static void *mix_putter(void *arg)
{
    struct mix *x = arg;
    for (int i = 0; i < MIX_PUTS; i++) {
        struct nb_msg_put in = { "payload", 7, 0, -1 };
        struct nb_msg m;
        if (nb_store_msg_put(x->s, ACCT, "mix", &in, T0, &m) != NB_OK) atomic_fetch_add(&x->failures, 1);
    }
    return NULL;
}

static void *mix_consumer(void *arg)
{
    struct mix *x = arg;
    while (atomic_load(&x->consumed) < MIX_PUTTERS * MIX_PUTS) {
        struct nb_msg_list l;
        if (nb_store_msg_get(x->s, ACCT, "mix", 8, 60000, T0, &l) != NB_OK) {
            atomic_fetch_add(&x->failures, 1);
            break;
        }
        for (size_t i = 0; i < l.n; i++) {
            if (nb_store_msg_delete(x->s, ACCT, "mix", l.items[i].id, l.items[i].pop_receipt,
                                    T0) != NB_OK)
                atomic_fetch_add(&x->failures, 1);
            pthread_mutex_lock(&x->mu);
            if (x->nids < MIX_PUTTERS * MIX_PUTS) x->ids[x->nids++] = strdup(l.items[i].id);
            else atomic_fetch_add(&x->failures, 1);
            pthread_mutex_unlock(&x->mu);
            atomic_fetch_add(&x->consumed, 1);
        }
        nb_msg_list_cleanup(&l);
    }
    return NULL;
}

static void *mix_reader(void *arg)
{
    struct mix *x = arg;
    while (!atomic_load(&x->done)) {
        struct nb_msg_list l;
        int64_t n = -1;
        char *v = NULL;
        if (nb_store_msg_peek(x->s, ACCT, "mix", 4, T0, &l) != NB_OK) atomic_fetch_add(&x->failures, 1);
        else nb_msg_list_cleanup(&l);
        if (nb_store_queue_get(x->s, ACCT, "mix", T0, NULL, &n) != NB_OK || n < 0)
            atomic_fetch_add(&x->failures, 1);
        if (nb_store_kv_get(x->s, "ns", "k", &v) != NB_OK) atomic_fetch_add(&x->failures, 1);
        free(v);
    }
    return NULL;
}

static void test_concurrent_mix(void **state)
{
    struct nb_store *s = ((struct fixture *)*state)->s;
    mkq(s, "mix");
    assert_int_equal(nb_store_kv_set(s, "ns", "k", "v"), NB_OK);
    struct mix x = { .s = s };
    pthread_mutex_init(&x.mu, NULL);
    x.ids = calloc(MIX_PUTTERS * MIX_PUTS, sizeof(char *));
    pthread_t p[MIX_PUTTERS], c[MIX_CONSUMERS], r[MIX_READERS];
    for (int i = 0; i < MIX_READERS; i++) assert_int_equal(pthread_create(&r[i], NULL, mix_reader, &x), 0);
    for (int i = 0; i < MIX_CONSUMERS; i++)
        assert_int_equal(pthread_create(&c[i], NULL, mix_consumer, &x), 0);
    for (int i = 0; i < MIX_PUTTERS; i++) assert_int_equal(pthread_create(&p[i], NULL, mix_putter, &x), 0);
    for (int i = 0; i < MIX_PUTTERS; i++) pthread_join(p[i], NULL);
    for (int i = 0; i < MIX_CONSUMERS; i++) pthread_join(c[i], NULL);
    atomic_store(&x.done, true);
    for (int i = 0; i < MIX_READERS; i++) pthread_join(r[i], NULL);

    assert_int_equal(atomic_load(&x.failures), 0);
    assert_int_equal(x.nids, MIX_PUTTERS * MIX_PUTS);
    qsort(x.ids, x.nids, sizeof(char *), cmp_str);
    for (size_t i = 1; i < x.nids; i++) assert_string_not_equal(x.ids[i - 1], x.ids[i]);
    for (size_t i = 0; i < x.nids; i++) free(x.ids[i]);
    free(x.ids);
    pthread_mutex_destroy(&x.mu);
    assert_int_equal(count(s, "mix", T0), 0);
}

/* --- close while busy --------------------------------------------------- */

#define CLOSE_WRITERS 8
#define CLOSE_READERS 3

struct closing {
    struct nb_store *s;
    enum nb_err put_rc[CLOSE_WRITERS];
    atomic_int next;
    atomic_int read_failures;
};

static void *close_writer(void *arg)
{
    struct closing *c = arg;
    int i = atomic_fetch_add(&c->next, 1);
    struct nb_msg_put in = { "queued", 6, 0, -1 };
    struct nb_msg m;
    c->put_rc[i] = nb_store_msg_put(c->s, ACCT, "q", &in, T0, &m);
    return NULL;
}

/* Reads until the store refuses them; anything else but OK is a failure. */
static void *close_reader(void *arg)
{
    struct closing *c = arg;
    for (;;) {
        struct nb_msg_list l;
        enum nb_err rc = nb_store_msg_peek(c->s, ACCT, "q", 4, T0, &l);
        if (rc == NB_OK) nb_msg_list_cleanup(&l);
        if (rc == NB_ERR_STOPPED) break;
        if (rc != NB_OK) atomic_fetch_add(&c->read_failures, 1);
    }
    return NULL;
}

static void *closer(void *arg)
{
    nb_store_close(arg);
    return NULL;
}

/* Writes queued behind a commit that cannot finish (another process holds
 * the database's write lock) while close() starts: close refuses new calls
 * at once, but the queued writes still commit, and close returns only after
 * they did. Holding the lock from outside keeps the store alive while the
 * test calls into a store that is closing. */
static void test_close_drains(void **state)
{
    struct fixture *f = *state;
    if (!f->file) skip();
    mkq(f->s, "q");
    char path[128];
    snprintf(path, sizeof(path), "%s/nimbus.db", f->dir);
    sqlite3 *ext = NULL;
    assert_int_equal(sqlite3_open(path, &ext), SQLITE_OK);
    assert_int_equal(sqlite3_exec(ext, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);

    struct closing c = { .s = f->s };
    pthread_t w[CLOSE_WRITERS], r[CLOSE_READERS], cl;
    for (int i = 0; i < CLOSE_READERS; i++)
        assert_int_equal(pthread_create(&r[i], NULL, close_reader, &c), 0);
    for (int i = 0; i < CLOSE_WRITERS; i++)
        assert_int_equal(pthread_create(&w[i], NULL, close_writer, &c), 0);
    usleep(200 * 1000); /* the writers queue up; the leader waits for the lock */
    assert_int_equal(pthread_create(&cl, NULL, closer, f->s), 0);

    /* Writes are refused before reads, so a refused read means both. */
    enum nb_err rc = NB_OK;
    for (int i = 0; i < 5000 && rc != NB_ERR_STOPPED; i++) {
        char *v = NULL;
        rc = nb_store_kv_get(f->s, "ns", "k", &v);
        free(v);
        if (rc != NB_ERR_STOPPED) usleep(1000);
    }
    assert_int_equal(rc, NB_ERR_STOPPED);
    struct nb_msg_put in = { "late", 4, 0, -1 };
    struct nb_msg m;
    assert_int_equal(nb_store_msg_put(f->s, ACCT, "q", &in, T0, &m), NB_ERR_STOPPED);
    for (int i = 0; i < CLOSE_READERS; i++) pthread_join(r[i], NULL);

    assert_int_equal(sqlite3_exec(ext, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(ext);
    for (int i = 0; i < CLOSE_WRITERS; i++) pthread_join(w[i], NULL);
    pthread_join(cl, NULL);
    f->s = NULL;
    assert_int_equal(atomic_load(&c.read_failures), 0);

    int ok = 0;
    for (int i = 0; i < CLOSE_WRITERS; i++) {
        assert_true(c.put_rc[i] == NB_OK || c.put_rc[i] == NB_ERR_STOPPED);
        ok += c.put_rc[i] == NB_OK;
    }
    assert_true(ok > 0); /* 200 ms is ample for at least one to have queued */
    open_store(f);
    assert_int_equal(count(f->s, "q", T0), ok); /* every acknowledged put is there */
}

/* --- checkpoints -------------------------------------------------------- */

static long long file_size(const char *dir, const char *name)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    struct stat sb;
    return stat(path, &sb) == 0 ? (long long)sb.st_size : 0;
}

#define CKPT_CYCLES 8000
#define MIB (1024LL * 1024)

/* Commits never checkpoint, so only the checkpointer thread (and the
 * leader's occasional RESTART) keep the WAL from growing. 8000 put+delete
 * cycles of 1 KiB append about 250 MB of WAL frames (8 pages per cycle);
 * the file must stay well below that, so it was reused, which SQLite only
 * does once every frame in it was copied to the database. */
static void test_checkpoint_bounds_wal(void **state)
{
    struct fixture *f = *state;
    if (!f->file) skip();
    struct nb_store *s = f->s;
    mkq(s, "q");
    char body[1024];
    memset(body, 'c', sizeof(body));
    struct nb_msg_put in = { body, sizeof(body), 0, -1 };
    long long max_wal = 0;
    for (int i = 0; i < CKPT_CYCLES; i++) {
        struct nb_msg m;
        assert_int_equal(nb_store_msg_put(s, ACCT, "q", &in, T0, &m), NB_OK);
        assert_int_equal(nb_store_msg_delete(s, ACCT, "q", m.id, m.pop_receipt, T0), NB_OK);
        if (i % 64 == 0) {
            long long w = file_size(f->dir, "nimbus.db-wal");
            if (w > max_wal) max_wal = w;
        }
    }
    assert_true(max_wal > 0);
    assert_true(max_wal < 120 * MIB);
    /* the database file itself was written while the store was open */
    assert_true(file_size(f->dir, "nimbus.db") >= 8 * 4096);
    assert_int_equal(count(s, "q", T0), 0);
}

#define BOTH(fn)                                                                               \
    cmocka_unit_test_setup_teardown(fn, setup_mem, teardown),                                 \
        cmocka_unit_test_setup_teardown(fn, setup_file, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        BOTH(test_put_result),
        BOTH(test_put_visibility),
        BOTH(test_get_cycle),
        BOTH(test_get_order_and_n),
        BOTH(test_peek_changes_nothing),
        BOTH(test_delete),
        BOTH(test_update),
        BOTH(test_ttl),
        BOTH(test_clear),
        BOTH(test_queue_create),
        BOTH(test_queue_list),
        BOTH(test_acl_and_kv),
        BOTH(test_delete_queue),
        BOTH(test_concurrent_puts),
        BOTH(test_concurrent_mix),
        cmocka_unit_test_setup_teardown(test_close_drains, setup_file, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_bounds_wal, setup_file, teardown),
        cmocka_unit_test_setup_teardown(test_reopen, setup_file, teardown),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_nested_dir),
    };
    return cmocka_run_group_tests_name("store_queue", tests, NULL, NULL);
}
