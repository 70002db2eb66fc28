/* Per-request memory: an arena hands out blocks that are all freed at once
 * by nb_arena_cleanup. Nothing allocated here may outlive the request; what
 * must survive is copied to a named owner. Not thread-safe: one request, one
 * thread at a time. */
#ifndef NB_CORE_ARENA_H
#define NB_CORE_ARENA_H
#include <stddef.h>

struct nb_arena_chunk;
struct nb_arena {
    struct nb_arena_chunk *head;
    char inline_buf[2048]; /* most requests never touch malloc */
    size_t inline_used;
};

void nb_arena_init(struct nb_arena *a);
void nb_arena_cleanup(struct nb_arena *a);
void *nb_arena_alloc(struct nb_arena *a, size_t n); /* 16-byte aligned; aborts on OOM */
char *nb_arena_strndup(struct nb_arena *a, const char *s, size_t n);
char *nb_arena_strdup(struct nb_arena *a, const char *s);
char *nb_arena_printf(struct nb_arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
