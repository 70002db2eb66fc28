/* Bump allocator with an inline first block and a chain of heap chunks. */
#include "core/arena.h"
#include "core/mem.h"
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct nb_arena_chunk {
    struct nb_arena_chunk *next;
    size_t size, used;
    _Alignas(16) char data[];
};

#define ALIGN16(n) (((n) + 15) & ~(size_t)15)

void nb_arena_init(struct nb_arena *a)
{
    a->head = NULL;
    a->inline_used = 0;
}

void nb_arena_cleanup(struct nb_arena *a)
{
    struct nb_arena_chunk *c = a->head;
    while (c) {
        struct nb_arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
    a->inline_used = 0;
}

void *nb_arena_alloc(struct nb_arena *a, size_t n)
{
    n = ALIGN16(n ? n : 1);
    /* inline_buf is at a 16-aligned offset only if the struct is; align by hand */
    uintptr_t base = (uintptr_t)a->inline_buf;
    size_t off = ALIGN16(base + a->inline_used) - base;
    if (off + n <= sizeof(a->inline_buf)) {
        a->inline_used = off + n;
        return a->inline_buf + off;
    }
    struct nb_arena_chunk *c = a->head;
    if (!c || c->size - c->used < n) {
        size_t size = n > 8192 ? n : 8192;
        c = nb_malloc(sizeof(*c) + size);
        c->size = size;
        c->used = 0;
        c->next = a->head;
        a->head = c;
    }
    void *p = c->data + c->used;
    c->used += n;
    return p;
}

char *nb_arena_strndup(struct nb_arena *a, const char *s, size_t n)
{
    char *p = nb_arena_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *nb_arena_strdup(struct nb_arena *a, const char *s)
{
    return nb_arena_strndup(a, s, strlen(s));
}

char *nb_arena_printf(struct nb_arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return nb_arena_strdup(a, "");
    char *p = nb_arena_alloc(a, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}
