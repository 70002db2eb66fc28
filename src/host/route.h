/* HTTP trigger route templates (ASP.NET Core route syntax, as the Azure
 * Functions host accepts them) and the router that picks a function for a
 * request path.
 *
 * Template syntax, per '/'-separated segment:
 *   literal                 matched case-insensitively
 *   {name}                  one segment
 *   {name?}                 optional (only in trailing segments)
 *   {name=default}          default value when absent (implies optional)
 *   {name:c1:c2(arg)}       constraints: int long double bool guid datetime
 *                           alpha min(n) max(n) length(n) length(a,b)
 *                           minlength(n) maxlength(n) range(a,b) regex(re)
 *   {*name}                 catch-all: the rest of the path (last segment only)
 * A segment may mix literals and parameters ("{a}.{b}" is not supported:
 * one parameter per segment, optionally with literal prefix/suffix is also
 * not supported; such templates are rejected with a reason).
 *
 * Precedence (our rule, documented in docs/functions.md): among routes that
 * match, the one whose first differing segment is more specific wins —
 * literal > constrained parameter > parameter > optional > catch-all; ties
 * go to the earlier-added route. Azure's host takes the first match in
 * function-name order instead, which users report as a bug. */
#ifndef NB_HOST_ROUTE_H
#define NB_HOST_ROUTE_H
#include <stdbool.h>
#include <stddef.h>
#include "core/err.h"

struct nb_route;

/* Compile a template (without the route prefix; leading/trailing '/' are
 * ignored). On error returns NB_ERR_INVALID and writes a reason to err. */
enum nb_err nb_route_parse(const char *tmpl, struct nb_route **out, char *err, size_t errlen);
void nb_route_free(struct nb_route *r);
/* The first literal segment, lowercased into buf ("" when the route starts
 * with a parameter), so callers can reject "admin"/"runtime" routes. */
const char *nb_route_first_literal(const struct nb_route *r, char *buf, size_t len);

struct nb_route_value {
    char *name;
    char *value; /* %-decoded; the default when absent; NULL for an absent optional */
};

struct nb_route_values {
    struct nb_route_value *items;
    size_t n;
};
void nb_route_values_cleanup(struct nb_route_values *v);

/* Match a raw (still %-encoded) path relative to the prefix, e.g. "items/5"
 * (no leading '/', no query). Fills values on success (heap). */
bool nb_route_match(const struct nb_route *r, const char *path, struct nb_route_values *out);

/* A set of routes, each with a method mask (0 = all) and a caller pointer. */
struct nb_router;
struct nb_router *nb_router_new(void);
void nb_router_free(struct nb_router *rt); /* frees the routes added to it */
/* Takes ownership of r. */
void nb_router_add(struct nb_router *rt, struct nb_route *r, unsigned methods, void *data);

enum nb_route_result {
    NB_ROUTE_NONE,        /* no route matches the path: 404 */
    NB_ROUTE_FOUND,
    NB_ROUTE_BAD_METHOD,  /* a route matches the path but not the method */
};
/* Find the best route for (method bit, path). On NB_ROUTE_FOUND *data is
 * the route's pointer and *out its values. */
enum nb_route_result nb_router_match(const struct nb_router *rt, unsigned method_bit,
                                     const char *path, void **data,
                                     struct nb_route_values *out);

#endif
