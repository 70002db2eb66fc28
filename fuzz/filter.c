/* libFuzzer driver: the table $filter engine. Any input either fails to
 * parse cleanly or gives a filter whose canonical text parses back to the
 * same text and the same answers, and whose key range + residue select
 * exactly the rows the filter selects (checked on a few fixed rows). */
#include "table/filter.h"
#include "core/buf.h"
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Rows differ in keys, Age and Flag; the other properties are shared. */
struct row {
    const char *pk, *rk;
    int age;
    bool flag;
};

static const struct row rows[] = {
    {"a", "1", 1, true},
    {"a", "2", 30, false},
    {"b", "", 0, true},
    {"pk1", "rk1", 42, false},
    {"", "r", -5, true},
    {"\xc3\xa9", "z", 7, false},
    {"b'", "it's", 2147483647, true},
};
#define NROWS (sizeof(rows) / sizeof(rows[0]))

static const struct {
    const char *name;
    struct nb_value v;
} shared[] = {
    {"Str", {.type = NB_EDM_STRING, .s = "text 'q' \xc3\xa9", .len = 11}},
    {"Big", {.type = NB_EDM_INT64, .i = 1099511627776LL}},
    {"Dbl", {.type = NB_EDM_DOUBLE, .d = 1.5}},
    {"Nan", {.type = NB_EDM_DOUBLE, .d = NAN}},
    {"When", {.type = NB_EDM_DATETIME, .i = 16833568891234567LL}},
    {"Timestamp", {.type = NB_EDM_DATETIME, .i = 16833568891234567LL}},
    {"Id", {.type = NB_EDM_GUID, .s = "c9da6455-213d-42c9-9a79-3e9149a57833", .len = 36}},
    {"Bin", {.type = NB_EDM_BINARY, .s = "\x00\x01", .len = 2}},
};

static struct nb_value str(const char *s)
{
    return (struct nb_value){.type = NB_EDM_STRING, .s = s, .len = strlen(s)};
}

static bool named(const char *want, const char *name, size_t len)
{
    return strlen(want) == len && memcmp(want, name, len) == 0;
}

static bool lookup(void *ctx, const char *name, size_t len, struct nb_value *out)
{
    const struct row *r = ctx;
    if (named("PartitionKey", name, len)) {
        *out = str(r->pk);
    } else if (named("RowKey", name, len)) {
        *out = str(r->rk);
    } else if (named("Age", name, len)) {
        *out = (struct nb_value){.type = NB_EDM_INT32, .i = r->age};
    } else if (named("Flag", name, len)) {
        *out = (struct nb_value){.type = NB_EDM_BOOLEAN, .b = r->flag};
    } else {
        for (size_t i = 0; i < sizeof(shared) / sizeof(shared[0]); i++) {
            if (named(shared[i].name, name, len)) {
                *out = shared[i].v;
                return true;
            }
        }
        return false;
    }
    return true;
}

static bool within(const struct nb_key_bound *lo, const struct nb_key_bound *hi,
                   const struct nb_value *k)
{
    if (lo->set) {
        struct nb_value b = {.type = NB_EDM_STRING, .s = lo->key, .len = lo->len};
        if (!nb_value_cmp_op(k, lo->inclusive ? NB_CMP_GE : NB_CMP_GT, &b)) return false;
    }
    if (hi->set) {
        struct nb_value b = {.type = NB_EDM_STRING, .s = hi->key, .len = hi->len};
        if (!nb_value_cmp_op(k, hi->inclusive ? NB_CMP_LE : NB_CMP_LT, &b)) return false;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct nb_filter *f = NULL, *g = NULL, *res = NULL;
    char err[128];
    if (nb_filter_parse((const char *)data, size, &f, err, sizeof(err)) != NB_OK) {
        if (f || !memchr(err, '\0', sizeof(err)) || !err[0]) abort();
        for (const char *c = err; *c; c++)
            if (*c < 0x20 || *c >= 0x7f) abort(); /* messages are printable ASCII */
        return 0;
    }
    struct nb_buf a, b;
    nb_buf_init(&a, 1 << 22);
    nb_buf_init(&b, 1 << 22);
    if (nb_filter_to_string(f, &a) != NB_OK) abort();
    if (nb_filter_parse(a.data, a.len, &g, err, sizeof(err)) != NB_OK) abort();
    if (nb_filter_to_string(g, &b) != NB_OK) abort();
    if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0) abort();

    struct nb_key_range r;
    nb_filter_key_range(f, &r);
    res = nb_filter_residue(f);
    nb_buf_reset(&b);
    if (res && nb_filter_to_string(res, &b) != NB_OK) abort();
    for (size_t i = 0; i < NROWS; i++) {
        void *row = (void *)&rows[i];
        bool want = nb_filter_eval(f, lookup, row);
        if (nb_filter_eval(g, lookup, row) != want) abort();
        struct nb_value pk = str(rows[i].pk), rk = str(rows[i].rk);
        bool in = !r.empty && within(&r.pk_lo, &r.pk_hi, &pk) && within(&r.rk_lo, &r.rk_hi, &rk);
        if (want && !in) abort(); /* the range must cover every match */
        if (want != (in && nb_filter_eval(res, lookup, row))) abort();
    }
    nb_filter_eval(f, NULL, NULL);

    nb_filter_free(res);
    nb_filter_free(g);
    nb_filter_free(f);
    nb_buf_cleanup(&a);
    nb_buf_cleanup(&b);
    return 0;
}
