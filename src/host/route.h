/* HTTP trigger route templates (ASP.NET Core route syntax, as the Azure
 * Functions host accepts them) and the router that picks a function for a
 * request path. A parsed route is immutable; matching only reads it, so
 * routes and routers may be shared by listener threads once built.
 *
 * Template syntax, per '/'-separated segment (one leading and one trailing
 * '/' are ignored; "" is the empty route and matches only the empty path):
 *   literal                 matched ASCII case-insensitively against the
 *                           %-decoded path segment; "{{" and "}}" stand for
 *                           literal braces
 *   {name}                  exactly one non-empty segment
 *   {name?}                 optional
 *   {name=default}          the default when absent (implies optional)
 *   {name:c1:c2(arg)}       constraints, all must hold (names case-insensitive):
 *       int long            [+-]digits within 32 / 64 bits
 *       double              [+-]digits[.digits][e[+-]digits] (no inf/nan/hex)
 *       bool                true / false, any case
 *       guid                8-4-4-4-12 hex digits, optionally in {braces}
 *       datetime            YYYY-MM-DD[(T| )hh:mm[:ss[.f]][Z|+hh:mm]]
 *       alpha               ASCII letters only
 *       min(n) max(n) range(a,b)   an integer (64-bit) within the bounds
 *       length(n) length(a,b) minlength(n) maxlength(n)
 *                           length in characters (UTF-8 code points)
 *       regex(re)           POSIX extended regex, case-insensitive, always
 *                           anchored (the whole segment must match, unlike
 *                           ASP.NET); .NET's \d and \D are accepted. Write
 *                           braces as {{ }} as in ASP.NET: regex(^\d{{3}}$).
 *                           Refused: back-references (exponential matching
 *                           on client input) and patterns whose repetitions
 *                           expand past 4096 nodes (glibc copies them).
 *     Constraints may combine with '?' or a default: {id:int?}, {n:int=1};
 *     a default must itself satisfy the constraints.
 *   {*name} or {**name}     catch-all: the rest of the path, zero or more
 *                           segments, slashes kept (last segment only;
 *                           implicitly optional, may have a default and
 *                           constraints, cannot be marked '?')
 * Optional parameters (and defaults) may only be followed by other optional
 * parameters or a catch-all. Parameter names are unique, case-insensitively.
 *
 * Limitation: a parameter must be a whole segment. ASP.NET's complex
 * segments ("{a}.{b}", "file{n}", "v{version:int}") are rejected with a
 * reason rather than half-supported.
 *
 * Precedence (our rule, documented in docs/functions.md): among routes that
 * match, the one whose first differing segment is more specific wins —
 * literal > constrained parameter > parameter > optional (or default) >
 * catch-all. When one route's segment ranks are a prefix of the other's, the
 * shorter route wins (the longer one's extra segments are then necessarily
 * absent optionals, so "items" beats "items/{*rest}" for "items", as in
 * ASP.NET). Full ties go to the earlier-added route. Azure's host takes the
 * first match in function-name order instead, which users report as a bug. */
#ifndef NB_HOST_ROUTE_H
#define NB_HOST_ROUTE_H
#include <stdbool.h>
#include <stddef.h>
#include "core/err.h"

struct nb_route;

/* Compile a template (without the route prefix; leading/trailing '/' are
 * ignored). On success *out is a route the caller frees with nb_route_free
 * (or hands to nb_router_add). On error returns NB_ERR_INVALID, *out is NULL
 * and a printable reason is written to err (may be NULL), truncated to
 * errlen, e.g. "route 'x/{': unbalanced '{'". */
enum nb_err nb_route_parse(const char *tmpl, struct nb_route **out, char *err, size_t errlen);
void nb_route_free(struct nb_route *r); /* NULL is a no-op */
/* The first literal segment, lowercased into buf ("" when the route starts
 * with a parameter or is empty), so callers can reject "admin"/"runtime"
 * routes. Truncated to len-1 bytes: pass a buffer longer than the names you
 * compare against. Returns buf ("" if buf is NULL or len is 0). */
const char *nb_route_first_literal(const struct nb_route *r, char *buf, size_t len);

struct nb_route_value {
    char *name;  /* as written in the template */
    char *value; /* %-decoded; the default when absent; NULL for an absent
                  * optional or an empty catch-all without default */
};

struct nb_route_values {
    struct nb_route_value *items;
    size_t n;
};
/* Frees every item and leaves v empty; safe on an empty or NULL v. */
void nb_route_values_cleanup(struct nb_route_values *v);

/* Match a raw (still %-encoded) path relative to the prefix, e.g. "items/5"
 * (no leading '/', no query; one leading and one trailing '/' are ignored).
 * The path is split on '/' first, then each segment is %-decoded, so "%2F"
 * is data, not a separator. A path with a malformed escape ('%' without two
 * hex digits) or "%00" matches nothing. On success, out (if not NULL) gets
 * one entry per template parameter, in template order (heap; release with
 * nb_route_values_cleanup); out is always overwritten, and left empty on
 * failure. Allocates nothing else for paths under 512 bytes / 32 segments. */
bool nb_route_match(const struct nb_route *r, const char *path, struct nb_route_values *out);

/* A set of routes, each with a method mask (0 = all) and a caller pointer. */
struct nb_router;
struct nb_router *nb_router_new(void);
void nb_router_free(struct nb_router *rt); /* frees the routes added to it */
/* Takes ownership of r (freed at once if rt is NULL). Routes are tried in
 * the order added, which only matters for precedence ties. */
void nb_router_add(struct nb_router *rt, struct nb_route *r, unsigned methods, void *data);

enum nb_route_result {
    NB_ROUTE_NONE,        /* no route matches the path: 404 */
    NB_ROUTE_FOUND,
    NB_ROUTE_BAD_METHOD,  /* a route matches the path but not the method */
};
/* Find the best route for (method bit, path): a route takes part when its
 * mask is 0 or contains method_bit; the best of those by the precedence rule
 * above wins. On NB_ROUTE_FOUND *data is the route's pointer and *out its
 * values (as nb_route_match). Otherwise *data is NULL and *out empty;
 * NB_ROUTE_BAD_METHOD when some route matches the path with another method
 * (405), NB_ROUTE_NONE when none matches it at all (404). data and out may be
 * NULL. */
enum nb_route_result nb_router_match(const struct nb_router *rt, unsigned method_bit,
                                     const char *path, void **data,
                                     struct nb_route_values *out);

#endif
