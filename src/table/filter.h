/* The OData $filter language of the table service (protocol spec §3.4):
 * parser, evaluator, and the key-range analysis that turns a filter into an
 * index scan over (PartitionKey, RowKey) plus a residue checked per row.
 * A parsed filter owns all its memory and is immutable, so one filter may be
 * evaluated from several threads at once. See docs/internals/table-query.md. */
#ifndef NB_TABLE_FILTER_H
#define NB_TABLE_FILTER_H
#include "core/buf.h"
#include "core/err.h"
#include "table/value.h"
#include <stdbool.h>
#include <stddef.h>

/* Azure's documented limit on discrete comparisons in one $filter. */
#define NB_FILTER_MAX_COMPARISONS 15
/* Deepest expression tree accepted (a comparison of two operands is depth
 * 2). Real filters are far shallower; the limit bounds every recursion. */
#define NB_FILTER_MAX_DEPTH 100

struct nb_filter; /* opaque parsed expression, heap-owned */

/* Parse $filter text (already URL-decoded; `text` need not be NUL-terminated
 * and is not retained). On success returns NB_OK and a new filter in *out,
 * which the caller frees with nb_filter_free.
 *
 * Empty or all-whitespace text is the filter that matches every entity
 * (public Azure answers an empty $filter with all rows); its text form is
 * "true".
 *
 * Errors: NB_ERR_INVALID, *out = NULL and a one-line message in printable
 * ASCII naming the byte offset in err (truncated to errlen bytes, always
 * NUL-terminated; err may be NULL or errlen 0) for: any syntax error (keywords are lowercase: `AND`
 * or `Eq` read as property names, which then fails with a hint in the message); `null`; a bad
 * literal (datetime or guid that does not parse, datetime outside 1601..9999, X'..' / binary'..'
 * with odd length or a non-hex digit, an integer or ...L outside Int64, a double that overflows, a
 * decimal (M) or single (F) suffix, an unterminated string); a non-Boolean literal where a
 * condition is needed (`5`, `'x' and ...`); more than NB_FILTER_MAX_COMPARISONS comparisons; a tree
 * deeper than NB_FILTER_MAX_DEPTH or parentheses and `not`s nested more than twice that. The parser
 * never recurses more than a fixed bound, whatever the input. */
enum nb_err nb_filter_parse(const char *text, size_t len, struct nb_filter **out, char *err,
                            size_t errlen);

/* Free a filter from nb_filter_parse or nb_filter_residue. NULL is a no-op. */
void nb_filter_free(struct nb_filter *f);

/* Property lookup for evaluation: return true and fill *out when the entity
 * has the property `name` (len bytes, not NUL-terminated; names compare
 * case-sensitively), false when it has not. PartitionKey, RowKey (strings)
 * and Timestamp (DateTime) are looked up like any other property; for Query
 * Tables the caller answers TableName. *out may borrow the entity's memory
 * for the duration of the nb_filter_eval call. */
typedef bool (*nb_filter_lookup)(void *ctx, const char *name, size_t len, struct nb_value *out);

/* Whether the entity seen through lookup/ctx matches f. A NULL f (e.g. a
 * NULL residue) matches everything; a NULL lookup means an entity with no
 * properties. Rules (Azure's): a comparison is false when either operand is
 * a missing property or the operand types are not comparable (see
 * nb_value_cmp_op) -- so `ne` is false on a missing property too -- while
 * `not` is plain negation, so `not (X eq 1)` is true when X is missing. A
 * bare operand used as a condition (`$filter=Flag`) is true only when it is
 * the Boolean true. */
bool nb_filter_eval(const struct nb_filter *f, nb_filter_lookup lookup, void *ctx);

/* Key ranges.
 * A bound's key points into the filter it was computed from (valid while
 * that filter lives) and is compared bytewise (memcmp, then the shorter key
 * first) -- the same ordinal order nb_value_compare uses for strings. */
struct nb_key_bound {
    bool set;
    bool inclusive;
    const char *key;
    size_t len;
};
struct nb_key_range {
    bool empty;                       /* provably no row can match */
    struct nb_key_bound pk_lo, pk_hi; /* on PartitionKey */
    struct nb_key_bound rk_lo, rk_hi; /* on RowKey; set only when pk_lo and
                                         pk_hi pin one partition (both
                                         inclusive, same key) */
};

/* Compute a conservative superset of the keys f can match into *out (fully
 * overwritten): every entity matching f has pk_lo <= PartitionKey <= pk_hi
 * and rk_lo <= RowKey <= rk_hi for every bound that is set (strictly when
 * not inclusive). When out->empty is true no entity matches and all bounds
 * are unset. Sources of bounds: comparisons of PartitionKey / RowKey with a
 * string literal (eq gt ge lt le, either operand order), intersected across
 * `and` (tightest bound wins) and joined across `or` (the smallest range
 * covering every branch). `ne`, `not`, property-vs-property comparisons and
 * other properties contribute nothing. A key compared with a non-string
 * literal, or a conjunct without properties that is false (`1 eq 2`), makes
 * the range empty, as do contradicting bounds. A NULL f gives the full
 * range. */
void nb_filter_key_range(const struct nb_filter *f, struct nb_key_range *out);

/* The residue: a new filter holding the top-level `and` conjuncts of f that
 * the key range does not fully capture, so that scanning exactly the rows
 * within nb_filter_key_range(f) and keeping those matching the residue gives
 * the rows matching f. Removed are: key comparisons with a string literal
 * (eq gt ge lt le; RowKey ones only when the range pins one partition) and
 * conjuncts without properties that are true. Returns NULL when nothing
 * remains (every row in the range matches) or f is NULL. The result is heap
 * memory freed with nb_filter_free; f is not modified and stays valid. */
struct nb_filter *nb_filter_residue(const struct nb_filter *f);

/* Append the canonical text form of f to out: every comparison, `and`/`or`
 * group and `not` in parentheses, `and`/`or` chains flattened, literals in
 * one spelling (Int64 with L, doubles with a '.' or exponent, datetime with 7
 * fraction digits and Z, guid lowercase, binary as X'lowercase hex'). The
 * text parses back to a filter with the same canonical form. A NULL f
 * appends "true". NB_ERR_TOO_LARGE when out's maximum is reached (out then
 * holds a partial text the caller should discard). */
enum nb_err nb_filter_to_string(const struct nb_filter *f, struct nb_buf *out);

#endif
