/* libFuzzer driver: HTTP trigger route templates and the router. The input
 * is "template\npath". A template either parses or is rejected with a
 * printable reason and no route; a parsed route's match of the path must
 * agree with routers that hold it next to a "{*all}" catch-all: the route
 * always beats (or ties and precedes) the catch-all, and method masks give
 * FOUND / BAD_METHOD / NONE exactly as the single-route match predicts. */
#include "host/route.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define GET 1u
#define POST 2u
#define PUT 4u

static char *cstr(const uint8_t *p, size_t n)
{
    char *s = malloc(n + 1);
    if (!s) abort();
    memcpy(s, p, n);
    s[n] = '\0'; /* an embedded NUL just ends the string early */
    return s;
}

static struct nb_route *parse_or_die(const char *tmpl)
{
    struct nb_route *r = NULL;
    if (nb_route_parse(tmpl, &r, NULL, 0) != NB_OK || !r) abort();
    return r;
}

static void same_values(const struct nb_route_values *a, const struct nb_route_values *b)
{
    if (a->n != b->n) abort();
    for (size_t i = 0; i < a->n; i++) {
        if (strcmp(a->items[i].name, b->items[i].name) != 0) abort();
        const char *x = a->items[i].value, *y = b->items[i].value;
        if ((x == NULL) != (y == NULL) || (x && strcmp(x, y) != 0)) abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int tag_route, tag_all;
    const uint8_t *nl = memchr(data, '\n', size);
    size_t tl = nl ? (size_t)(nl - data) : size;
    char *tmpl = cstr(data, tl);
    char *path = nl ? cstr(nl + 1, size - tl - 1) : cstr(data, 0);
    struct nb_route *r = NULL;
    struct nb_router *rt = NULL;
    struct nb_route_values v = {0}, w = {0};
    char err[160];
    void *got;

    if (nb_route_parse(tmpl, &r, err, sizeof(err)) != NB_OK) {
        if (r || !memchr(err, '\0', sizeof(err)) || strncmp(err, "route '", 7) != 0) abort();
        for (const char *c = err; *c; c++)
            if ((unsigned char)*c < 0x20 || *c == 0x7f) abort(); /* printable */
        goto out;
    }
    char lit[32];
    for (const char *c = nb_route_first_literal(r, lit, sizeof(lit)); *c; c++)
        if (*c >= 'A' && *c <= 'Z') abort();

    bool m = nb_route_match(r, path, &v);
    if (!m && (v.n || v.items)) abort();
    for (size_t i = 0; i < v.n; i++)
        if (!v.items[i].name || !v.items[i].name[0]) abort();
    /* Matching twice gives the same answer (nothing is cached or mutated). */
    if (nb_route_match(r, path, &w) != m) abort();
    same_values(&v, &w);
    nb_route_values_cleanup(&w);
    struct nb_route *all = parse_or_die("{*all}");
    bool decodable = nb_route_match(all, path, NULL); /* "{*all}" takes any decodable path */
    nb_route_free(all);

    /* The fuzzed route for GET, the catch-all for POST. */
    rt = nb_router_new();
    nb_router_add(rt, parse_or_die("{*all}"), POST, &tag_all);
    nb_router_add(rt, r, GET, &tag_route);
    r = NULL;
    enum nb_route_result res = nb_router_match(rt, GET, path, &got, &w);
    if (m ? res != NB_ROUTE_FOUND || got != &tag_route : res == NB_ROUTE_FOUND) abort();
    if (m) same_values(&v, &w);
    nb_route_values_cleanup(&w);
    if (!m && res != (decodable ? NB_ROUTE_BAD_METHOD : NB_ROUTE_NONE)) abort();
    res = nb_router_match(rt, POST, path, &got, NULL);
    if (res != (decodable ? NB_ROUTE_FOUND : NB_ROUTE_NONE)) abort();
    if (decodable && got != &tag_all) abort();
    res = nb_router_match(rt, PUT, path, &got, &w);
    if (res != (decodable ? NB_ROUTE_BAD_METHOD : NB_ROUTE_NONE) || got || w.n) abort();
    nb_router_free(rt);

    /* Both for every method: the fuzzed route wins whenever it matches. */
    rt = nb_router_new();
    nb_router_add(rt, parse_or_die(tmpl), 0, &tag_route);
    nb_router_add(rt, parse_or_die("{*all}"), 0, &tag_all);
    res = nb_router_match(rt, PUT, path, &got, &w);
    if (res != (decodable ? NB_ROUTE_FOUND : NB_ROUTE_NONE)) abort();
    if (m != (got == &tag_route)) abort();
    if (m) same_values(&v, &w);
    nb_route_values_cleanup(&w);

out:
    nb_router_free(rt);
    nb_route_values_cleanup(&v);
    nb_route_free(r);
    free(tmpl);
    free(path);
    return 0;
}
