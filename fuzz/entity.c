/* libFuzzer driver: table entity JSON. Whatever nb_entity_from_json accepts
 * must encode and decode to the same properties, be found by the encoded
 * lookup, merge with itself to itself, and serialise at every metadata
 * level to JSON that (for minimal and full metadata) parses back to the
 * same entity. The raw bytes also go to the decoder, lookup, merge and key
 * check, which must reject them cleanly. */
#include "table/entity.h"
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool same_value(const struct nb_value *x, const struct nb_value *y)
{
    if (x->type != y->type) return false;
    switch (x->type) {
    case NB_EDM_STRING:
    case NB_EDM_GUID:
    case NB_EDM_BINARY:
        return x->len == y->len && (x->len == 0 || memcmp(x->s, y->s, x->len) == 0) &&
               x->s[x->len] == '\0' && y->s[y->len] == '\0';
    case NB_EDM_DOUBLE: return memcmp(&x->d, &y->d, sizeof(double)) == 0;
    case NB_EDM_BOOLEAN: return x->b == y->b;
    default: return x->i == y->i;
    }
}

static void check_same(const struct nb_entity *x, const struct nb_entity *y)
{
    if (x->nprops != y->nprops) abort();
    for (size_t i = 0; i < x->nprops; i++) {
        const struct nb_prop *p = &x->props[i], *q = &y->props[i];
        if (p->name_len != q->name_len || memcmp(p->name, q->name, p->name_len + 1) != 0) abort();
        if (!same_value(&p->v, &q->v)) abort();
    }
}

static bool same_key(const char *a, size_t alen, const char *b, size_t blen)
{
    if (!a || !b) return !a && !b;
    return alen == blen && memcmp(a, b, alen) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    struct nb_arena arena;
    struct nb_entity e, d;
    struct nb_value v;
    struct nb_buf enc, merged, json;
    const char *code = NULL, *msg = NULL;
    nb_arena_init(&arena);
    nb_buf_init(&enc, 16 << 20);
    nb_buf_init(&merged, 16 << 20);
    nb_buf_init(&json, 16 << 20);

    /* arbitrary bytes as stored data, keys, Accept */
    (void)nb_entity_decode(in, size, &arena, &d);
    (void)nb_entity_encoded_lookup(in, size, "A", 1, &v);
    (void)nb_entity_encoded_size(in, size);
    (void)nb_entity_merge_encoded(in, size, in, size, &merged);
    nb_buf_reset(&merged);
    (void)nb_entity_key_ok(in, size);

    if (nb_entity_from_json(in, size, &arena, &e, &code, &msg) != NB_OK) {
        if (!code || !msg) abort();
        goto cleanup;
    }
    if (e.nprops > NB_ENTITY_MAX_PROPS || nb_entity_size(&e) > NB_ENTITY_MAX_SIZE) abort();
    if ((e.pk && !nb_entity_key_ok(e.pk, e.pk_len)) || (e.rk && !nb_entity_key_ok(e.rk, e.rk_len)))
        abort();

    /* storage round trip */
    if (nb_entity_encode(&e, &enc) != NB_OK) abort();
    if (nb_entity_decode(enc.data, enc.len, &arena, &d) != NB_OK) abort();
    check_same(&e, &d);
    size_t keys = 4 + (e.pk ? 2 * nb_entity_utf16_len(e.pk, e.pk_len) : 0) +
                  (e.rk ? 2 * nb_entity_utf16_len(e.rk, e.rk_len) : 0);
    if (keys + nb_entity_encoded_size(enc.data, enc.len) != nb_entity_size(&e)) abort();
    for (size_t i = 0; i < e.nprops; i++) {
        if (!nb_entity_encoded_lookup(enc.data, enc.len, e.props[i].name, e.props[i].name_len, &v))
            abort();
        if (!same_value(&v, &e.props[i].v)) abort();
    }
    if (nb_entity_merge_encoded(enc.data, enc.len, enc.data, enc.len, &merged) != NB_OK) abort();
    if (merged.len != enc.len || memcmp(merged.data, enc.data, enc.len) != 0) abort();

    /* response JSON at each level */
    e.timestamp = 17953111856148770LL;
    for (int level = NB_META_NONE; level <= NB_META_FULL; level++) {
        struct nb_entity_json_opts o = {
            .level = (enum nb_meta_level)level,
            .metadata_url = "http://127.0.0.1:10002/devstoreaccount1/$metadata#t/@Element",
            .account = "devstoreaccount1",
            .table = "t",
            .base_url = "http://127.0.0.1:10002/devstoreaccount1",
        };
        nb_buf_reset(&json);
        if (nb_entity_to_json(&e, &o, &json) != NB_OK) abort();
        if (level == NB_META_NONE) {
            /* types are lost (Int64 becomes a string...), so only the
             * syntax is checked */
            json_error_t err;
            json_t *j = json_loadb(json.data, json.len, JSON_ALLOW_NUL, &err);
            if (!j) abort();
            json_decref(j);
            continue;
        }
        struct nb_entity back;
        if (nb_entity_from_json(json.data, json.len, &arena, &back, &code, &msg) != NB_OK) abort();
        check_same(&e, &back);
        if (!same_key(e.pk, e.pk_len, back.pk, back.pk_len)) abort();
        if (!same_key(e.rk, e.rk_len, back.rk, back.rk_len)) abort();
    }

cleanup:
    nb_buf_cleanup(&enc);
    nb_buf_cleanup(&merged);
    nb_buf_cleanup(&json);
    nb_arena_cleanup(&arena);
    return 0;
}
