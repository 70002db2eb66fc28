/* Table entities: request JSON in, storage encoding, response JSON out (see
 * entity.h). Parsing is jansson's; validation follows §3.2/§3.5 of the
 * protocol spec. The response writer is our own so that doubles get the
 * shortest exact digits and the key order is the one Azure uses. Nothing
 * here keeps state; every error path leaves the caller's buffers as they
 * were. */
#include "table/entity.h"
#include "store/store.h"
#include "core/encode.h"
#include "core/mem.h"
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ANNOT "@odata.type"
#define ANNOT_LEN (sizeof(ANNOT) - 1)
#define FORMAT_VERSION 1

/* ---- errors ------------------------------------------------------------ */

static const char MSG_INVALID[] = "One of the request inputs is not valid.";
static const char MSG_OUT_OF_RANGE[] = "One of the request inputs is out of range.";
static const char MSG_NAME_INVALID[] = "The property name is invalid.";
static const char MSG_NAME_TOO_LONG[] = "The property name exceeds the maximum allowed length.";
static const char MSG_VALUE_TOO_LARGE[] =
    "The property value exceeds the maximum allowed size (64KB). If the property value is a "
    "string, it is UTF-16 encoded and the maximum number of characters should be 32K or less.";
static const char MSG_TOO_MANY[] = "The entity contains more properties than allowed.";
static const char MSG_ENTITY_TOO_LARGE[] =
    "The entity is larger than the maximum allowed size (1MB).";
static const char MSG_DUPLICATE[] = "A property is specified more than one time.";

struct perr {
    const char **code, **message;
};

static enum nb_err fail(const struct perr *pe, enum nb_err rc, const char *code, const char *msg)
{
    if (pe->code) *pe->code = code;
    if (pe->message) *pe->message = msg;
    return rc;
}

#define INVALID(pe) fail((pe), NB_ERR_INVALID, "InvalidInput", MSG_INVALID)

/* ---- UTF-8 / UTF-16 ------------------------------------------------------ */

/* Decode one code point of strict UTF-8 (no overlongs, no surrogates, at
 * most U+10FFFF); returns its length in bytes or 0 when malformed. */
static size_t utf8_next(const unsigned char *s, size_t len, uint32_t *cp)
{
    unsigned char c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t n;
    uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2, v = c & 0x1F, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3, v = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n > len) return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    *cp = v;
    return n;
}

size_t nb_entity_utf16_len(const char *s, size_t len)
{
    /* Every code point is one unit but those above the BMP (4-byte UTF-8
     * sequences), which are two: count lead bytes, and 4-byte leads twice. */
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c & 0xC0) != 0x80) n++;
        if (c >= 0xF0) n++;
    }
    return n;
}

bool nb_entity_key_ok(const char *key, size_t len)
{
    const unsigned char *s = (const unsigned char *)key;
    size_t units = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t n = utf8_next(s + i, len - i, &cp);
        if (n == 0) return false;
        if (cp == '/' || cp == '\\' || cp == '#' || cp == '?' || cp <= 0x1F ||
            (cp >= 0x7F && cp <= 0x9F))
            return false;
        units += cp > 0xFFFF ? 2 : 1;
        i += n;
    }
    return units <= NB_ENTITY_MAX_KEY_UNITS;
}

/* "C#-identifier-like": a letter or '_' first, then letters, digits and
 * '_'. Without Unicode tables every non-ASCII character above the C1
 * controls counts as a letter (jansson has already checked the UTF-8). */
static bool name_chars_ok(const char *name, size_t len)
{
    if (len == 0) return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_') continue;
        if (c >= '0' && c <= '9' && i > 0) continue;
        if (c == 0xC2 && i + 1 < len && (unsigned char)name[i + 1] <= 0x9F) return false;
        if (c >= 0x80) continue;
        return false;
    }
    return true;
}

/* ---- sizes ------------------------------------------------------------- */

static size_t value_size(const struct nb_value *v)
{
    switch (v->type) {
    case NB_EDM_STRING: return 2 * nb_entity_utf16_len(v->s, v->len) + 4;
    case NB_EDM_BINARY: return v->len + 4;
    case NB_EDM_GUID: return 16;
    case NB_EDM_INT32: return 4;
    case NB_EDM_BOOLEAN: return 1;
    case NB_EDM_INT64:
    case NB_EDM_DOUBLE:
    case NB_EDM_DATETIME: return 8;
    }
    return 8;
}

static size_t prop_size(const struct nb_prop *p)
{
    return 8 + 2 * nb_entity_utf16_len(p->name, p->name_len) + value_size(&p->v);
}

size_t nb_entity_size(const struct nb_entity *e)
{
    size_t n = 4;
    if (e->pk) n += 2 * nb_entity_utf16_len(e->pk, e->pk_len);
    if (e->rk) n += 2 * nb_entity_utf16_len(e->rk, e->rk_len);
    for (size_t i = 0; i < e->nprops; i++)
        n += prop_size(&e->props[i]);
    return n;
}

/* ---- request JSON ---------------------------------------------------------- */

/* [+-]?digits within [min, max]. */
static bool parse_int(const char *s, size_t len, int64_t min, int64_t max, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (i < len && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
    if (i == len) return false;
    /* accumulate as a negative number so that INT64_MIN fits */
    int64_t v = 0;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        int d = s[i] - '0';
        if (v < (INT64_MIN + d) / 10) return false;
        v = v * 10 - d;
    }
    if (!neg) {
        if (v == INT64_MIN) return false;
        v = -v;
    }
    if (v < min || v > max) return false;
    *out = v;
    return true;
}

/* A decimal number as the CLI sends it ("1.5", "-2", "1e5", ".5"), or
 * NaN / [+-]Infinity. No whitespace, no hex, no "inf"/"nan" spellings that
 * strtod would also take. Finite results only (but underflow to 0 is fine). */
static bool parse_double(const char *s, size_t len, double *out)
{
    if (len == 3 && memcmp(s, "NaN", 3) == 0) {
        *out = NAN;
        return true;
    }
    if ((len == 8 && memcmp(s, "Infinity", 8) == 0) ||
        (len == 9 && memcmp(s, "+Infinity", 9) == 0)) {
        *out = INFINITY;
        return true;
    }
    if (len == 9 && memcmp(s, "-Infinity", 9) == 0) {
        *out = -INFINITY;
        return true;
    }
    size_t i = 0, digits = 0;
    if (i < len && (s[i] == '+' || s[i] == '-')) i++;
    for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
        digits++;
    if (i < len && s[i] == '.')
        for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++)
            digits++;
    if (digits == 0) return false;
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        size_t exp = 0;
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-')) i++;
        for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
            exp++;
        if (exp == 0) return false;
    }
    if (i != len) return false;
    char *tmp = nb_strndup(s, len);
    double d = strtod(tmp, NULL);
    free(tmp);
    if (isinf(d)) return false;
    *out = d;
    return true;
}

static bool json_bool_value(json_t *v, bool *out)
{
    if (json_is_boolean(v)) {
        *out = json_is_true(v);
        return true;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        if (n == 4 && strncasecmp(s, "true", 4) == 0) return *out = true, true;
        if (n == 5 && strncasecmp(s, "false", 5) == 0) return *out = false, true;
    }
    return false;
}

/* Convert one JSON value to `type` (§3.2 coercions). */
static enum nb_err coerce(json_t *v, enum nb_edm type, struct nb_arena *arena, struct nb_value *out,
                          const struct perr *pe)
{
    const char *s = json_is_string(v) ? json_string_value(v) : NULL;
    size_t n = s ? json_string_length(v) : 0;
    out->type = type;
    switch (type) {
    case NB_EDM_STRING:
        if (!s) return INVALID(pe);
        if (nb_entity_utf16_len(s, n) > NB_ENTITY_MAX_STRING_UNITS)
            return fail(pe, NB_ERR_TOO_LARGE, "PropertyValueTooLarge", MSG_VALUE_TOO_LARGE);
        out->s = nb_arena_strndup(arena, s, n);
        out->len = n;
        return NB_OK;
    case NB_EDM_INT32:
    case NB_EDM_INT64: {
        int64_t lo = type == NB_EDM_INT32 ? INT32_MIN : INT64_MIN;
        int64_t hi = type == NB_EDM_INT32 ? INT32_MAX : INT64_MAX;
        if (json_is_integer(v)) {
            json_int_t i = json_integer_value(v);
            if (i < lo || i > hi) return INVALID(pe);
            out->i = i;
            return NB_OK;
        }
        if (s && parse_int(s, n, lo, hi, &out->i)) return NB_OK;
        return INVALID(pe);
    }
    case NB_EDM_DOUBLE:
        if (json_is_real(v)) {
            out->d = json_real_value(v);
            return NB_OK;
        }
        if (json_is_integer(v)) {
            out->d = (double)json_integer_value(v);
            return NB_OK;
        }
        if (s && parse_double(s, n, &out->d)) return NB_OK;
        return INVALID(pe);
    case NB_EDM_BOOLEAN: return json_bool_value(v, &out->b) ? NB_OK : INVALID(pe);
    case NB_EDM_DATETIME:
        if (!s || nb_edm_datetime_parse(s, n, &out->i) != NB_OK) return INVALID(pe);
        return NB_OK;
    case NB_EDM_GUID: {
        char g[NB_EDM_GUID_LEN];
        if (!s || !nb_edm_guid_parse(s, n, g)) return INVALID(pe);
        out->s = nb_arena_strndup(arena, g, NB_EDM_GUID_LEN - 1);
        out->len = NB_EDM_GUID_LEN - 1;
        return NB_OK;
    }
    case NB_EDM_BINARY: {
        unsigned char *bin;
        size_t blen;
        if (!s || !nb_base64_decode(s, n, &bin, &blen)) return INVALID(pe);
        if (blen > NB_ENTITY_MAX_BINARY) {
            free(bin);
            return fail(pe, NB_ERR_TOO_LARGE, "PropertyValueTooLarge", MSG_VALUE_TOO_LARGE);
        }
        out->s = nb_arena_strndup(arena, (const char *)bin, blen);
        out->len = blen;
        free(bin);
        return NB_OK;
    }
    }
    return INVALID(pe);
}

/* Type from the JSON value alone. An integer outside Int32 becomes Int64:
 * Azure's reader would fall back to Double and silently round values above
 * 2^53; keeping them exact is what a client sending an integer means. */
static enum nb_err infer(json_t *v, struct nb_arena *arena, struct nb_value *out,
                         const struct perr *pe)
{
    switch (json_typeof(v)) {
    case JSON_STRING: return coerce(v, NB_EDM_STRING, arena, out, pe);
    case JSON_INTEGER: {
        json_int_t i = json_integer_value(v);
        if (i >= INT32_MIN && i <= INT32_MAX) {
            out->type = NB_EDM_INT32;
            out->i = i;
        } else {
            out->type = NB_EDM_INT64;
            out->i = i;
        }
        return NB_OK;
    }
    case JSON_REAL: out->type = NB_EDM_DOUBLE, out->d = json_real_value(v); return NB_OK;
    case JSON_TRUE:
    case JSON_FALSE: out->type = NB_EDM_BOOLEAN, out->b = json_is_true(v); return NB_OK;
    default: return INVALID(pe);
    }
}

static bool key_is(const char *k, size_t klen, const char *lit)
{
    size_t n = strlen(lit);
    return klen == n && memcmp(k, lit, n) == 0;
}

static enum nb_err take_key(json_t *v, struct nb_arena *arena, const char **out, size_t *out_len,
                            const struct perr *pe)
{
    if (!json_is_string(v)) return INVALID(pe);
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (!nb_entity_key_ok(s, n)) {
        /* jansson guarantees UTF-8, so only length or characters can fail */
        if (nb_entity_utf16_len(s, n) > NB_ENTITY_MAX_KEY_UNITS)
            return fail(pe, NB_ERR_TOO_LARGE, "OutOfRangeInput", MSG_OUT_OF_RANGE);
        return INVALID(pe);
    }
    *out = nb_arena_strndup(arena, s, n);
    *out_len = n;
    return NB_OK;
}

enum nb_err nb_entity_from_json(const char *json, size_t len, struct nb_arena *arena,
                                struct nb_entity *out, const char **error_code,
                                const char **message)
{
    struct perr pe = {error_code, message};
    enum nb_err rc = NB_OK;
    json_error_t jerr;
    json_t *root = NULL;
    char *annot = NULL;
    memset(out, 0, sizeof(*out));
    if (error_code) *error_code = NULL;
    if (message) *message = NULL;
    if (!json || len == 0) return INVALID(&pe);

    root = json_loadb(json, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (!root) {
        if (json_error_code(&jerr) == json_error_duplicate_key)
            return fail(&pe, NB_ERR_INVALID, "DuplicatePropertiesSpecified", MSG_DUPLICATE);
        return INVALID(&pe);
    }
    if (!json_is_object(root)) {
        rc = INVALID(&pe);
        goto cleanup;
    }

    size_t cap = json_object_size(root);
    out->props = nb_arena_alloc(arena, sizeof(struct nb_prop) * (cap ? cap : 1));
    const char *key;
    size_t klen;
    json_t *val;
    json_object_keylen_foreach(root, key, klen, val)
    {
        if (klen >= 6 && memcmp(key, "odata.", 6) == 0) continue;
        if (klen > ANNOT_LEN && memcmp(key + klen - ANNOT_LEN, ANNOT, ANNOT_LEN) == 0)
            continue; /* read below, with the property it annotates */
        if (key_is(key, klen, "PartitionKey")) {
            rc = take_key(val, arena, &out->pk, &out->pk_len, &pe);
            if (rc) goto cleanup;
            continue;
        }
        if (key_is(key, klen, "RowKey")) {
            rc = take_key(val, arena, &out->rk, &out->rk_len, &pe);
            if (rc) goto cleanup;
            continue;
        }
        if (key_is(key, klen, "Timestamp")) continue;

        if (nb_entity_utf16_len(key, klen) > NB_ENTITY_MAX_NAME_UNITS) {
            rc = fail(&pe, NB_ERR_TOO_LARGE, "PropertyNameTooLong", MSG_NAME_TOO_LONG);
            goto cleanup;
        }
        if (!name_chars_ok(key, klen)) {
            rc = fail(&pe, NB_ERR_INVALID, "PropertyNameInvalid", MSG_NAME_INVALID);
            goto cleanup;
        }
        if (json_is_null(val)) continue;

        struct nb_prop *p = &out->props[out->nprops];
        memset(p, 0, sizeof(*p));
        annot = nb_realloc(annot, klen + ANNOT_LEN + 1);
        memcpy(annot, key, klen);
        memcpy(annot + klen, ANNOT, ANNOT_LEN + 1);
        json_t *t = json_object_getn(root, annot, klen + ANNOT_LEN);
        if (t) {
            enum nb_edm type;
            if (!json_is_string(t) ||
                !nb_edm_from_name(json_string_value(t), json_string_length(t), &type)) {
                rc = INVALID(&pe);
                goto cleanup;
            }
            rc = coerce(val, type, arena, &p->v, &pe);
        } else {
            rc = infer(val, arena, &p->v, &pe);
        }
        if (rc) goto cleanup;
        p->name = nb_arena_strndup(arena, key, klen);
        p->name_len = klen;
        out->nprops++;
    }
    if (out->nprops > NB_ENTITY_MAX_PROPS) {
        rc = fail(&pe, NB_ERR_TOO_LARGE, "TooManyProperties", MSG_TOO_MANY);
        goto cleanup;
    }
    if (nb_entity_size(out) > NB_ENTITY_MAX_SIZE) {
        rc = fail(&pe, NB_ERR_TOO_LARGE, "EntityTooLarge", MSG_ENTITY_TOO_LARGE);
        goto cleanup;
    }

cleanup:
    free(annot);
    json_decref(root);
    if (rc) {
        out->pk = out->rk = NULL;
        out->pk_len = out->rk_len = 0;
        out->nprops = 0;
    }
    return rc;
}

/* ---- storage encoding ----------------------------------------------------
 *
 *   version (1 byte, 1)  count (varint)  count x property
 *   property: name_len (varint) name NUL  tag (1 byte)  payload
 *   payload:  'S' string, 'G' guid (36 bytes), 'X' binary:  len (varint) bytes NUL
 *             'I' int32: 4 bytes LE   'L' int64, 'T' datetime ticks, 'D' double
 *             bits: 8 bytes LE   'B' boolean: 1 byte (0 or 1)
 *
 * Tags are letters rather than enum nb_edm values so that reordering the
 * enum can never reinterpret stored rows. */

static const char tags[] = {
    [NB_EDM_STRING] = 'S',  [NB_EDM_INT32] = 'I',    [NB_EDM_INT64] = 'L', [NB_EDM_DOUBLE] = 'D',
    [NB_EDM_BOOLEAN] = 'B', [NB_EDM_DATETIME] = 'T', [NB_EDM_GUID] = 'G',  [NB_EDM_BINARY] = 'X',
};

static bool tag_type(unsigned char tag, enum nb_edm *out)
{
    for (size_t i = 0; i < sizeof(tags); i++) {
        if ((unsigned char)tags[i] == tag) {
            *out = (enum nb_edm)i;
            return true;
        }
    }
    return false;
}

static enum nb_err put_varint(struct nb_buf *b, uint64_t v)
{
    unsigned char tmp[10];
    size_t n = 0;
    do {
        tmp[n] = (unsigned char)(v & 0x7F);
        v >>= 7;
        if (v) tmp[n] |= 0x80;
        n++;
    } while (v);
    return nb_buf_add(b, tmp, n);
}

static enum nb_err put_le(struct nb_buf *b, uint64_t v, size_t n)
{
    unsigned char tmp[8];
    for (size_t i = 0; i < n; i++)
        tmp[i] = (unsigned char)(v >> (8 * i));
    return nb_buf_add(b, tmp, n);
}

static enum nb_err put_bytes0(struct nb_buf *b, const char *s, size_t n)
{
    enum nb_err rc = put_varint(b, n);
    if (!rc && n) rc = nb_buf_add(b, s, n);
    if (!rc) rc = nb_buf_addc(b, '\0');
    return rc;
}

static enum nb_err put_prop(struct nb_buf *b, const struct nb_prop *p)
{
    enum nb_err rc = put_varint(b, p->name_len);
    if (!rc) rc = nb_buf_add(b, p->name, p->name_len);
    if (!rc) rc = nb_buf_addc(b, '\0');
    if ((unsigned)p->v.type >= sizeof(tags)) return NB_ERR_INVALID;
    if (!rc) rc = nb_buf_addc(b, tags[p->v.type]);
    if (rc) return rc;
    switch (p->v.type) {
    case NB_EDM_STRING:
    case NB_EDM_GUID:
    case NB_EDM_BINARY: return put_bytes0(b, p->v.s, p->v.len);
    case NB_EDM_INT32: return put_le(b, (uint64_t)(uint32_t)(int32_t)p->v.i, 4);
    case NB_EDM_INT64:
    case NB_EDM_DATETIME: return put_le(b, (uint64_t)p->v.i, 8);
    case NB_EDM_DOUBLE: {
        uint64_t bits;
        memcpy(&bits, &p->v.d, 8);
        return put_le(b, bits, 8);
    }
    case NB_EDM_BOOLEAN: return nb_buf_addc(b, p->v.b ? 1 : 0);
    }
    return NB_ERR_INVALID;
}

static void buf_truncate(struct nb_buf *b, size_t len)
{
    b->len = len;
    if (b->data) b->data[len] = '\0';
}

enum nb_err nb_entity_encode(const struct nb_entity *e, struct nb_buf *out)
{
    size_t start = out->len;
    enum nb_err rc = nb_buf_addc(out, FORMAT_VERSION);
    if (!rc) rc = put_varint(out, e->nprops);
    for (size_t i = 0; !rc && i < e->nprops; i++)
        rc = put_prop(out, &e->props[i]);
    if (rc) buf_truncate(out, start);
    return rc;
}

struct rd {
    const unsigned char *p, *end;
};

static bool rd_varint(struct rd *r, uint64_t *v)
{
    uint64_t x = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end) return false;
        unsigned char c = *r->p++;
        x |= (uint64_t)(c & 0x7F) << shift;
        if (!(c & 0x80)) {
            *v = x;
            return true;
        }
    }
    return false;
}

static uint64_t rd_le(struct rd *r, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)r->p[i] << (8 * i);
    r->p += n;
    return v;
}

/* n bytes followed by a NUL */
static bool rd_bytes0(struct rd *r, uint64_t n, const char **out)
{
    if (n >= (uint64_t)(r->end - r->p) || r->p[n] != '\0') return false;
    *out = (const char *)r->p;
    r->p += n + 1;
    return true;
}

static bool rd_header(struct rd *r, uint64_t *count)
{
    if (r->p == r->end) {
        *count = 0;
        return true;
    }
    if (*r->p++ != FORMAT_VERSION || !rd_varint(r, count)) return false;
    /* every property takes at least 4 bytes: bounds the caller's arrays */
    return *count <= (uint64_t)(r->end - r->p) / 4;
}

static bool rd_prop(struct rd *r, struct nb_prop *p)
{
    uint64_t n;
    memset(p, 0, sizeof(*p));
    if (!rd_varint(r, &n) || !rd_bytes0(r, n, &p->name)) return false;
    p->name_len = (size_t)n;
    if (r->p >= r->end || !tag_type(*r->p++, &p->v.type)) return false;
    size_t left = (size_t)(r->end - r->p);
    switch (p->v.type) {
    case NB_EDM_STRING:
    case NB_EDM_GUID:
    case NB_EDM_BINARY:
        if (!rd_varint(r, &n) || !rd_bytes0(r, n, &p->v.s)) return false;
        p->v.len = (size_t)n;
        return p->v.type != NB_EDM_GUID || n == NB_EDM_GUID_LEN - 1;
    case NB_EDM_INT32:
        if (left < 4) return false;
        p->v.i = (int32_t)(uint32_t)rd_le(r, 4);
        return true;
    case NB_EDM_INT64:
    case NB_EDM_DATETIME:
        if (left < 8) return false;
        p->v.i = (int64_t)rd_le(r, 8);
        return true;
    case NB_EDM_DOUBLE: {
        if (left < 8) return false;
        uint64_t bits = rd_le(r, 8);
        memcpy(&p->v.d, &bits, 8);
        return true;
    }
    case NB_EDM_BOOLEAN:
        if (left < 1 || *r->p > 1) return false;
        p->v.b = *r->p++ == 1;
        return true;
    }
    return false;
}

enum nb_err nb_entity_decode(const char *data, size_t len, struct nb_arena *arena,
                             struct nb_entity *out)
{
    out->props = NULL;
    out->nprops = 0;
    if (len == 0) return NB_OK;
    char *copy = nb_arena_alloc(arena, len);
    memcpy(copy, data, len);
    struct rd r = {(const unsigned char *)copy, (const unsigned char *)copy + len};
    uint64_t count;
    if (!rd_header(&r, &count)) return NB_ERR_STORE;
    struct nb_prop *props = nb_arena_alloc(arena, sizeof(*props) * (count ? count : 1));
    for (uint64_t i = 0; i < count; i++)
        if (!rd_prop(&r, &props[i])) return NB_ERR_STORE;
    if (r.p != r.end) return NB_ERR_STORE;
    out->props = props;
    out->nprops = (size_t)count;
    return NB_OK;
}

bool nb_entity_encoded_lookup(const char *data, size_t len, const char *name, size_t name_len,
                              struct nb_value *out)
{
    struct rd r = {(const unsigned char *)data, (const unsigned char *)data + len};
    uint64_t count;
    if (!rd_header(&r, &count)) return false;
    for (uint64_t i = 0; i < count; i++) {
        struct nb_prop p;
        if (!rd_prop(&r, &p)) return false;
        if (p.name_len == name_len && memcmp(p.name, name, name_len) == 0) {
            *out = p.v;
            return true;
        }
    }
    return false;
}

size_t nb_entity_encoded_size(const char *data, size_t len)
{
    struct rd r = {(const unsigned char *)data, (const unsigned char *)data + len};
    uint64_t count;
    size_t total = 0;
    if (!rd_header(&r, &count)) return (size_t)-1;
    for (uint64_t i = 0; i < count; i++) {
        struct nb_prop p;
        if (!rd_prop(&r, &p)) return (size_t)-1;
        total += prop_size(&p);
    }
    return r.p == r.end ? total : (size_t)-1;
}

/* One encoded property: its bytes and its name. */
struct span {
    const unsigned char *start, *end;
    const char *name;
    size_t name_len, size;
};

static bool spans(const char *data, size_t len, struct span **out, size_t *n)
{
    struct rd r = {(const unsigned char *)data, (const unsigned char *)data + len};
    uint64_t count;
    *out = NULL;
    *n = 0;
    if (!rd_header(&r, &count)) return false;
    struct span *s = nb_calloc(count ? count : 1, sizeof(*s));
    for (uint64_t i = 0; i < count; i++) {
        struct nb_prop p;
        s[i].start = r.p;
        if (!rd_prop(&r, &p)) {
            free(s);
            return false;
        }
        s[i].end = r.p;
        s[i].name = p.name;
        s[i].name_len = p.name_len;
        s[i].size = prop_size(&p);
    }
    if (r.p != r.end) {
        free(s);
        return false;
    }
    *out = s;
    *n = (size_t)count;
    return true;
}

static const struct span *find_span(const struct span *s, size_t n, const struct span *want)
{
    for (size_t i = 0; i < n; i++)
        if (s[i].name_len == want->name_len && memcmp(s[i].name, want->name, want->name_len) == 0)
            return &s[i];
    return NULL;
}

enum nb_err nb_entity_merge_encoded(const char *base, size_t base_len, const char *patch,
                                    size_t patch_len, struct nb_buf *out)
{
    struct span *bs = NULL, *ps = NULL;
    size_t nb = 0, np = 0, added = 0, size = 4;
    size_t start = out->len;
    enum nb_err rc = NB_OK;
    if (!spans(base, base_len, &bs, &nb) || !spans(patch, patch_len, &ps, &np)) {
        rc = NB_ERR_STORE;
        goto cleanup;
    }
    for (size_t i = 0; i < nb; i++) {
        const struct span *p = find_span(ps, np, &bs[i]);
        size += p ? p->size : bs[i].size;
    }
    for (size_t i = 0; i < np; i++) {
        if (!find_span(bs, nb, &ps[i])) {
            added++;
            size += ps[i].size;
        }
    }
    if (nb + added > NB_ENTITY_MAX_PROPS) {
        rc = NB_ERR_RANGE;
        goto cleanup;
    }
    if (size > NB_ENTITY_MAX_SIZE) {
        rc = NB_ERR_TOO_LARGE;
        goto cleanup;
    }
    rc = nb_buf_addc(out, FORMAT_VERSION);
    if (!rc) rc = put_varint(out, nb + added);
    for (size_t i = 0; !rc && i < nb; i++) {
        const struct span *p = find_span(ps, np, &bs[i]);
        const struct span *src = p ? p : &bs[i];
        rc = nb_buf_add(out, src->start, (size_t)(src->end - src->start));
    }
    for (size_t i = 0; !rc && i < np; i++)
        if (!find_span(bs, nb, &ps[i]))
            rc = nb_buf_add(out, ps[i].start, (size_t)(ps[i].end - ps[i].start));
    if (rc) buf_truncate(out, start);

cleanup:
    free(bs);
    free(ps);
    return rc;
}

/* ---- response JSON ------------------------------------------------------- */

static bool contains_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay; hay++)
        if (strncasecmp(hay, needle, n) == 0) return true;
    return false;
}

enum nb_meta_level nb_entity_meta_level(const char *accept, const char *format)
{
    const char *s = format && *format ? format : accept;
    if (!s) return NB_META_MINIMAL;
    if (contains_ci(s, "odata=nometadata")) return NB_META_NONE;
    if (contains_ci(s, "odata=fullmetadata")) return NB_META_FULL;
    return NB_META_MINIMAL;
}

void nb_entity_etag(int64_t ticks, char *out, size_t outlen)
{
    char ts[NB_EDM_DATETIME_LEN];
    char tmp[NB_ENTITY_ETAG_LEN];
    size_t n = 0;
    if (outlen == 0) return;
    nb_edm_datetime_format(ticks, ts);
    /* Python's quote() as the SDK uses it: of these characters only ':' is
     * not left alone. */
    const char *pre = "W/\"datetime'";
    memcpy(tmp, pre, strlen(pre));
    n = strlen(pre);
    for (const char *c = ts; *c; c++) {
        if (*c == ':') {
            memcpy(tmp + n, "%3A", 3);
            n += 3;
        } else {
            tmp[n++] = *c;
        }
    }
    tmp[n++] = '\'';
    tmp[n++] = '"';
    if (n >= outlen) n = outlen - 1;
    memcpy(out, tmp, n);
    out[n] = '\0';
}

/* Shortest %.Ng (15..17 digits) that reads back to the same double, with
 * ".0" added when that looks like an integer (Python would read it back as
 * Int32 otherwise). */
static void format_double(double d, char out[40])
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(out, 40, "%.*g", prec, d);
        if (strtod(out, NULL) == d) break;
    }
    if (!strpbrk(out, ".eE")) {
        size_t n = strlen(out);
        memcpy(out + n, ".0", 3);
    }
}

/* JSON string contents (no quotes): '"', '\\' and control characters
 * escaped, everything else (valid UTF-8 by construction) as is. */
static enum nb_err put_json_chars(struct nb_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    enum nb_err rc = NB_OK;
    size_t run = 0;
    for (size_t i = 0; !rc && i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        rc = nb_buf_add(b, s + run, i - run);
        run = i + 1;
        char esc[6] = {'\\', 0};
        size_t elen = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            elen = 6;
        }
        if (!rc) rc = nb_buf_add(b, esc, elen);
    }
    if (!rc) rc = nb_buf_add(b, s + run, n - run);
    return rc;
}

static enum nb_err put_json_str(struct nb_buf *b, const char *s, size_t n)
{
    enum nb_err rc = nb_buf_addc(b, '"');
    if (!rc) rc = put_json_chars(b, s, n);
    if (!rc) rc = nb_buf_addc(b, '"');
    return rc;
}

struct jw {
    struct nb_buf *b;
    bool first;
    enum nb_err rc;
};

/* "name[@odata.type]": */
static void jw_key(struct jw *w, const char *name, size_t n, bool annotation)
{
    if (w->rc) return;
    if (!w->first) w->rc = nb_buf_addc(w->b, ',');
    w->first = false;
    if (!w->rc) w->rc = nb_buf_addc(w->b, '"');
    if (!w->rc) w->rc = put_json_chars(w->b, name, n);
    if (!w->rc) w->rc = nb_buf_adds(w->b, annotation ? ANNOT "\":" : "\":");
}

static void jw_str(struct jw *w, const char *name, const char *s, size_t n)
{
    jw_key(w, name, strlen(name), false);
    if (!w->rc) w->rc = put_json_str(w->b, s, n);
}

static void jw_annot(struct jw *w, const char *name, size_t n, enum nb_edm t)
{
    jw_key(w, name, n, true);
    if (!w->rc) w->rc = put_json_str(w->b, nb_edm_name(t), strlen(nb_edm_name(t)));
}

static bool selected(const struct nb_entity_json_opts *o, const char *name, size_t n)
{
    if (!o->select || o->nselect == 0) return true;
    for (size_t i = 0; i < o->nselect; i++)
        if (o->select[i] && strlen(o->select[i]) == n && memcmp(o->select[i], name, n) == 0)
            return true;
    return false;
}

/* table(PartitionKey='..',RowKey='..') with quotes doubled, then
 * %-encoded, as in request URLs (§3.3). */
static enum nb_err put_key_path(struct nb_buf *b, const char *table, const struct nb_entity *e)
{
    const char *names[2] = {"(PartitionKey='", "',RowKey='"};
    const char *keys[2] = {e->pk, e->rk};
    size_t lens[2] = {e->pk_len, e->rk_len};
    enum nb_err rc = nb_buf_adds(b, table);
    for (int k = 0; k < 2 && !rc; k++) {
        rc = nb_buf_adds(b, names[k]);
        size_t run = 0;
        for (size_t i = 0; !rc && i <= lens[k]; i++) {
            if (i < lens[k] && keys[k][i] != '\'') continue;
            rc = nb_pct_encode(b, keys[k] + run, i - run);
            if (!rc && i < lens[k]) rc = nb_buf_adds(b, "%27%27");
            run = i + 1;
        }
    }
    if (!rc) rc = nb_buf_adds(b, "')");
    return rc;
}

static bool annotated(const struct nb_value *v)
{
    switch (v->type) {
    case NB_EDM_INT64:
    case NB_EDM_DATETIME:
    case NB_EDM_GUID:
    case NB_EDM_BINARY: return true;
    case NB_EDM_DOUBLE: return !isfinite(v->d);
    default: return false;
    }
}

static void jw_value(struct jw *w, const struct nb_value *v)
{
    char tmp[64];
    if (w->rc) return;
    switch (v->type) {
    case NB_EDM_STRING:
    case NB_EDM_GUID: w->rc = put_json_str(w->b, v->s, v->len); return;
    case NB_EDM_INT32: w->rc = nb_buf_printf(w->b, "%d", (int)v->i); return;
    case NB_EDM_INT64: w->rc = nb_buf_printf(w->b, "\"%lld\"", (long long)v->i); return;
    case NB_EDM_BOOLEAN: w->rc = nb_buf_adds(w->b, v->b ? "true" : "false"); return;
    case NB_EDM_DOUBLE:
        if (isnan(v->d))
            w->rc = nb_buf_adds(w->b, "\"NaN\"");
        else if (isinf(v->d))
            w->rc = nb_buf_adds(w->b, v->d > 0 ? "\"Infinity\"" : "\"-Infinity\"");
        else {
            format_double(v->d, tmp);
            w->rc = nb_buf_adds(w->b, tmp);
        }
        return;
    case NB_EDM_DATETIME:
        nb_edm_datetime_format(v->i, tmp);
        w->rc = put_json_str(w->b, tmp, strlen(tmp));
        return;
    case NB_EDM_BINARY: {
        char *b64 = nb_base64_encode(v->s, v->len);
        w->rc = put_json_str(w->b, b64, strlen(b64));
        free(b64);
        return;
    }
    }
}

enum nb_err nb_entity_to_json(const struct nb_entity *e, const struct nb_entity_json_opts *o,
                              struct nb_buf *out)
{
    struct jw w = {out, true, NB_OK};
    size_t start = out->len;
    bool meta = o->level != NB_META_NONE, full = o->level == NB_META_FULL;
    bool keys = e->pk && e->rk;

    w.rc = nb_buf_addc(out, '{');
    if (meta && o->metadata_url)
        jw_str(&w, "odata.metadata", o->metadata_url, strlen(o->metadata_url));
    if (full && o->account && o->table) {
        jw_key(&w, "odata.type", 10, false);
        if (!w.rc) w.rc = nb_buf_addc(out, '"');
        if (!w.rc) w.rc = put_json_chars(out, o->account, strlen(o->account));
        if (!w.rc) w.rc = nb_buf_addc(out, '.');
        if (!w.rc) w.rc = put_json_chars(out, o->table, strlen(o->table));
        if (!w.rc) w.rc = nb_buf_addc(out, '"');
    }
    if (full && o->base_url && o->table && keys) {
        struct nb_buf id;
        nb_buf_init(&id, out->max);
        enum nb_err rc = nb_buf_adds(&id, o->base_url);
        if (!rc) rc = nb_buf_addc(&id, '/');
        if (!rc) rc = put_key_path(&id, o->table, e);
        if (rc)
            w.rc = rc;
        else
            jw_str(&w, "odata.id", id.data, id.len);
        nb_buf_cleanup(&id);
    }
    if (meta) {
        char etag[NB_ENTITY_ETAG_LEN];
        const char *t = o->etag;
        if (!t && e->timestamp) {
            nb_entity_etag(e->timestamp, etag, sizeof(etag));
            t = etag;
        }
        if (t) jw_str(&w, "odata.etag", t, strlen(t));
    }
    if (full && o->table && keys) {
        struct nb_buf link;
        nb_buf_init(&link, out->max);
        enum nb_err rc = put_key_path(&link, o->table, e);
        if (rc)
            w.rc = rc;
        else
            jw_str(&w, "odata.editLink", link.data, link.len);
        nb_buf_cleanup(&link);
    }
    if (e->pk && selected(o, "PartitionKey", 12)) jw_str(&w, "PartitionKey", e->pk, e->pk_len);
    if (e->rk && selected(o, "RowKey", 6)) jw_str(&w, "RowKey", e->rk, e->rk_len);
    if (e->timestamp && selected(o, "Timestamp", 9)) {
        char ts[NB_EDM_DATETIME_LEN];
        nb_edm_datetime_format(e->timestamp, ts);
        if (full) jw_annot(&w, "Timestamp", 9, NB_EDM_DATETIME);
        jw_str(&w, "Timestamp", ts, strlen(ts));
    }
    for (size_t i = 0; i < e->nprops && !w.rc; i++) {
        const struct nb_prop *p = &e->props[i];
        if (!selected(o, p->name, p->name_len)) continue;
        if (meta && annotated(&p->v)) jw_annot(&w, p->name, p->name_len, p->v.type);
        jw_key(&w, p->name, p->name_len, false);
        jw_value(&w, &p->v);
    }
    if (!w.rc) w.rc = nb_buf_addc(out, '}');
    if (w.rc) buf_truncate(out, start);
    return w.rc;
}

bool nb_entity_row_lookup(void *ctx, const char *name, size_t len, struct nb_value *out)
{
    const struct nb_entity_row *row = ctx;
    if (len == 12 && memcmp(name, "PartitionKey", 12) == 0) {
        *out = (struct nb_value){ .type = NB_EDM_STRING, .s = row->pk, .len = row->pk_len };
        return true;
    }
    if (len == 6 && memcmp(name, "RowKey", 6) == 0) {
        *out = (struct nb_value){ .type = NB_EDM_STRING, .s = row->rk, .len = row->rk_len };
        return true;
    }
    if (len == 9 && memcmp(name, "Timestamp", 9) == 0) {
        *out = (struct nb_value){ .type = NB_EDM_DATETIME, .i = row->timestamp };
        return true;
    }
    return nb_entity_encoded_lookup(row->data, row->data_len, name, len, out);
}
