/* Typed property values of table storage (the Entity Data Model types the
 * service supports) and the comparisons Azure applies to them. A value
 * borrows its bytes (strings, GUID text, binary) from whoever owns the
 * entity or the filter; nothing here allocates. */
#ifndef NB_TABLE_VALUE_H
#define NB_TABLE_VALUE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "core/err.h"

enum nb_edm {
    NB_EDM_STRING,
    NB_EDM_INT32,
    NB_EDM_INT64,
    NB_EDM_DOUBLE,
    NB_EDM_BOOLEAN,
    NB_EDM_DATETIME,
    NB_EDM_GUID,
    NB_EDM_BINARY,
};

/* DateTime is kept as 100 ns ticks since the Unix epoch (negative before
 * 1970); the earliest value Azure accepts is 1601-01-01T00:00:00Z. */
#define NB_EDM_DATETIME_MIN_TICKS (-116444736000000000LL)
/* 9999-12-31T23:59:59.9999999Z, the latest value. */
#define NB_EDM_DATETIME_MAX_TICKS 2534023007999999999LL
#define NB_EDM_TICKS_PER_MS 10000LL
#define NB_EDM_DATETIME_LEN 29 /* "YYYY-MM-DDThh:mm:ss.fffffffZ" + NUL */
#define NB_EDM_GUID_LEN 37     /* canonical lowercase text + NUL */

struct nb_value {
    enum nb_edm type;
    int64_t i;      /* INT32, INT64; DATETIME ticks */
    double d;       /* DOUBLE */
    bool b;         /* BOOLEAN */
    const char *s;  /* STRING (UTF-8), GUID (canonical text), BINARY (bytes) */
    size_t len;
};

/* "Edm.Int64" etc.; static strings. */
const char *nb_edm_name(enum nb_edm t);
/* Parse an "Edm.X" type name; false when unknown. */
bool nb_edm_from_name(const char *name, size_t len, enum nb_edm *out);

/* Compare two values the way the table service's $filter does:
 * Int32, Int64 and Double compare numerically with each other; String
 * ordinally (byte order of UTF-8); Guid case-insensitively; DateTime as
 * instants; Binary as bytes; Boolean false < true. Values of other,
 * mismatched types are not comparable: *comparable is set false and the
 * result is 0. A NaN compares unequal to everything (comparable, result
 * nonzero, and neither < nor >: callers use nb_value_cmp_op). */
int nb_value_compare(const struct nb_value *a, const struct nb_value *b, bool *comparable);

enum nb_cmp_op { NB_CMP_EQ, NB_CMP_NE, NB_CMP_GT, NB_CMP_GE, NB_CMP_LT, NB_CMP_LE };
/* a OP b per Azure: false whenever the types are not comparable (including
 * ne), and IEEE semantics for NaN. */
bool nb_value_cmp_op(const struct nb_value *a, enum nb_cmp_op op, const struct nb_value *b);

/* ISO 8601 DateTime as the service accepts it (fractions up to 7 digits,
 * 'Z' or no zone, an offset +hh:mm also accepted) to ticks. NB_ERR_INVALID
 * on bad syntax, NB_ERR_RANGE before 1601-01-01 or after 9999-12-31. */
enum nb_err nb_edm_datetime_parse(const char *s, size_t len, int64_t *ticks);
/* ticks to "YYYY-MM-DDThh:mm:ss.fffffffZ" (always 7 digits). */
void nb_edm_datetime_format(int64_t ticks, char out[NB_EDM_DATETIME_LEN]);
/* Parse a GUID in 8-4-4-4-12 hex form (any case) into canonical lowercase
 * text; false when malformed. */
bool nb_edm_guid_parse(const char *s, size_t len, char out[NB_EDM_GUID_LEN]);

#endif
