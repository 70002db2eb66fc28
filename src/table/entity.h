/* Table entities: the request JSON (§3.2 input rules and §3.5 limits), the
 * compact binary form the store keeps for custom properties, and the
 * response JSON for each OData metadata level. Owns no state: parsed
 * entities live in the caller's arena, encoded ones in the caller's buffer.
 * Invariant: whatever nb_entity_from_json accepts encodes, decodes and
 * serialises back to the same typed properties. */
#ifndef NB_TABLE_ENTITY_H
#define NB_TABLE_ENTITY_H
#include "core/arena.h"
#include "core/buf.h"
#include "core/err.h"
#include "table/value.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Azure's documented limits (§3.5). Strings are measured the way the
 * service stores them, in UTF-16 code units ("units" below): 1 KiB keys are
 * 512 units, 64 KiB strings are 32768 units ("32K characters" in Azure's
 * PropertyValueTooLarge message). Binary is measured in bytes. */
#define NB_ENTITY_MAX_PROPS 252          /* custom properties (255 with PK/RK/Timestamp) */
#define NB_ENTITY_MAX_SIZE (1024 * 1024) /* §3.5 size formula, see nb_entity_size */
#define NB_ENTITY_MAX_KEY_UNITS 512
#define NB_ENTITY_MAX_NAME_UNITS 255
#define NB_ENTITY_MAX_STRING_UNITS 32768
#define NB_ENTITY_MAX_BINARY 65536
#define NB_ENTITY_ETAG_LEN 64 /* room for nb_entity_etag's output + NUL */

struct nb_prop {
    const char *name; /* UTF-8, NUL-terminated (the NUL is not in name_len) */
    size_t name_len;
    struct nb_value v; /* STRING/GUID/BINARY bytes are followed by a NUL too */
};

struct nb_entity {
    const char *pk, *rk; /* NUL-terminated; NULL when absent from the body */
    size_t pk_len, rk_len;
    int64_t timestamp;     /* ticks (see value.h); 0 when unknown */
    struct nb_prop *props; /* custom properties, in insertion order */
    size_t nprops;
};

/* Parse one entity request body (insert, update, merge, a batch part).
 * Every pointer placed in *out points into `arena` (the JSON text may be
 * freed afterwards); out->timestamp is 0.
 *
 * Types (§3.2): from "X@odata.type" when present, else from the JSON value:
 * string -> String; integer within Int32 -> Int32; any other number ->
 * Double (an integer outside Int32 too: that is what Azure's OData reader
 * does, Int32.TryParse then Double.TryParse); true/false -> Boolean.
 * Annotated values may be strings, as the az CLI sends them: Boolean
 * "true"/"false" (any case), Int32/Int64 decimal strings, Double decimal
 * strings and "NaN"/"Infinity"/"-Infinity", DateTime ISO 8601 (stored as
 * ticks, >= 1601), Guid 8-4-4-4-12 (stored lowercase), Binary base64. JSON
 * integers are also accepted for Int64 and Double. A null value omits the
 * property. PartitionKey/RowKey must be strings (their annotations are
 * ignored); Timestamp, odata.* keys and annotations of absent or null
 * properties are dropped.
 *
 * Returns NB_OK, or an error with *error_code (the Azure code; every one is
 * HTTP 400) and *message (static) set:
 *   NB_ERR_INVALID   InvalidInput (not a JSON object, nested value, value
 *                    that does not fit its type, unknown Edm type, key with
 *                    a forbidden character or of the wrong JSON type),
 *                    PropertyNameInvalid (empty, or not a letter/'_' then
 *                    letters/digits/'_'; non-ASCII counts as a letter but
 *                    U+0080-U+009F), DuplicatePropertiesSpecified (the same
 *                    JSON key twice, names being case-sensitive);
 *   NB_ERR_TOO_LARGE OutOfRangeInput (key over 512 units),
 *                    PropertyNameTooLong, PropertyValueTooLarge,
 *                    TooManyProperties, EntityTooLarge.
 * error_code and message may be NULL. The size check counts the keys found
 * in the body; callers that take keys from the URL may re-check with
 * nb_entity_size once they are filled in. */
enum nb_err nb_entity_from_json(const char *json, size_t len, struct nb_arena *arena,
                                struct nb_entity *out, const char **error_code,
                                const char **message);

/* A PartitionKey/RowKey value (e.g. from the URL, already unescaped) is
 * valid UTF-8 of at most 512 UTF-16 units without / \ # ? or control
 * characters (U+0000-U+001F, U+007F-U+009F). The empty key is valid. */
bool nb_entity_key_ok(const char *key, size_t len);

/* UTF-16 code units of valid UTF-8 text (how Azure measures strings). */
size_t nb_entity_utf16_len(const char *s, size_t len);

/* Azure's entity size (§3.5): 4 + 2*units(PK) + 2*units(RK) + sum over
 * custom properties of 8 + 2*units(name) + value size, where the value size
 * is 2*units+4 for String, bytes+4 for Binary (the +4 as in Azure's
 * published formula), 16 Guid, 8 Int64/Double/DateTime, 4 Int32,
 * 1 Boolean. Absent keys count as empty. */
size_t nb_entity_size(const struct nb_entity *e);

/* Storage form of the custom properties only (keys and timestamp have
 * their own columns). Appends to `out`; NB_ERR_TOO_LARGE when out's maximum
 * is reached. The format is versioned (first byte), uses explicit type
 * tags independent of enum nb_edm, and keeps a NUL after every name and
 * every String/Guid/Binary payload so decoded views are C strings. */
enum nb_err nb_entity_encode(const struct nb_entity *e, struct nb_buf *out);

/* Decode into out->props/nprops only (other fields untouched). The data is
 * copied once into `arena` and the properties point into that copy, so
 * `data` may be freed afterwards. len 0 decodes as no properties.
 * NB_ERR_STORE when the data is not a valid encoding. */
enum nb_err nb_entity_decode(const char *data, size_t len, struct nb_arena *arena,
                             struct nb_entity *out);

/* Find one custom property in encoded data without decoding the rest (for
 * $filter over many rows). On true, *out borrows from `data`. False when
 * absent or when the data is corrupt. */
bool nb_entity_encoded_lookup(const char *data, size_t len, const char *name, size_t name_len,
                              struct nb_value *out);

/* Azure size (§3.5) of the custom properties in encoded data, without the
 * 4-byte base and the keys; (size_t)-1 when the data is corrupt. */
size_t nb_entity_encoded_size(const char *data, size_t len);

/* Merge (PATCH/MERGE): the properties of `patch` replace same-named ones of
 * `base` in place and the others are appended in patch order; the result
 * is appended to `out` in encoded form. Errors (out unchanged):
 *   NB_ERR_STORE     either input is not a valid encoding;
 *   NB_ERR_RANGE     the result would have more than 252 properties
 *                    (answer TooManyProperties);
 *   NB_ERR_TOO_LARGE 4 + the properties' size (§3.5) is over 1 MiB (answer
 *                    EntityTooLarge; the keys, at most 2 KiB, are not known
 *                    here: 4 + 2*units(PK) + 2*units(RK) +
 *                    nb_entity_encoded_size() is the exact figure), or
 *                    out's maximum was reached. */
enum nb_err nb_entity_merge_encoded(const char *base, size_t base_len, const char *patch,
                                    size_t patch_len, struct nb_buf *out);

struct nb_entity_row;

/* A $filter property lookup (nb_filter_lookup) over one stored row: `row`
 * is a const struct nb_entity_row *. PartitionKey, RowKey and Timestamp come
 * from the row's columns, the rest from its encoded properties; values
 * borrow the row's memory. */
bool nb_entity_row_lookup(void *row, const char *name, size_t len, struct nb_value *out);

enum nb_meta_level { NB_META_NONE, NB_META_MINIMAL, NB_META_FULL };

/* The metadata level a request asks for: $format (when non-NULL and
 * non-empty) overrides Accept. "odata=nometadata" -> NONE,
 * "odata=fullmetadata" -> FULL, anything else (plain application/json,
 * minimalmetadata, absent) -> MINIMAL. Case-insensitive. */
enum nb_meta_level nb_entity_meta_level(const char *accept, const char *format);

/* W/"datetime'<Timestamp with ':' as %3A>'" (§3.3), e.g. for
 * 2026-11-22T01:33:05.6148770Z: W/"datetime'2026-11-22T01%3A33%3A05.6148770Z'".
 * Truncated (but NUL-terminated) when outlen < NB_ENTITY_ETAG_LEN. */
void nb_entity_etag(int64_t ticks, char *out, size_t outlen);

struct nb_entity_json_opts {
    enum nb_meta_level level;
    /* single-entity responses: "<base>/$metadata#<table>/@Element"; NULL
     * for query rows (the caller writes the envelope) */
    const char *metadata_url;
    const char *account;       /* fullmetadata odata.type = <account>.<table> */
    const char *table;         /* fullmetadata odata.editLink, odata.id */
    const char *base_url;      /* fullmetadata odata.id = <base_url>/<table>(keys) */
    const char *const *select; /* NULL or nselect == 0: every property */
    size_t nselect;
    const char *etag; /* NULL: computed from e->timestamp */
};

/* Append one entity as a JSON object (§3.2 output rules):
 *  - first odata.metadata (if metadata_url), with FULL odata.type, odata.id,
 *    then odata.etag (unless NONE), with FULL odata.editLink; then
 *    PartitionKey, RowKey, Timestamp (each when known and selected;
 *    Timestamp annotated only with FULL); then the custom properties in
 *    order;
 *  - Int64 as a decimal string; Int32 and Boolean bare; finite Double bare
 *    with the shortest of %.15g..%.17g that reads back exactly and always a
 *    '.' or an exponent ("2.0", "0.1", "1e+20") so that no client takes it
 *    for an integer, NaN/±Infinity as "NaN"/"Infinity"/"-Infinity"; DateTime with
 *    7 fraction digits; Guid lowercase; Binary base64;
 *  - MINIMAL and FULL put "X@odata.type" before the value for Int64,
 *    DateTime, Guid, Binary and non-finite Double (FULL as Azure does, see
 *    the Query Entities fullmetadata sample: Int32, finite Double and
 *    Boolean stay bare, and the Python SDK mis-reads an annotated Boolean);
 *    NONE writes no odata.* key and no annotation;
 *  - select limits the properties to those named (case-sensitive); names
 *    not present are skipped; odata.* keys are always written.
 * Errors: NB_ERR_TOO_LARGE when out's maximum is reached (out is then left
 * as it was). */
enum nb_err nb_entity_to_json(const struct nb_entity *e, const struct nb_entity_json_opts *o,
                              struct nb_buf *out);

#endif
