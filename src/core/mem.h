/* Allocation wrappers that abort on out-of-memory, so callers never carry
 * NULL checks for malloc failure. free(NULL) stays a no-op throughout. */
#ifndef NB_CORE_MEM_H
#define NB_CORE_MEM_H
#include <stddef.h>

void *nb_malloc(size_t n);
void *nb_calloc(size_t count, size_t size);
void *nb_realloc(void *p, size_t n);
char *nb_strdup(const char *s);
char *nb_strndup(const char *s, size_t n);
/* printf into a fresh heap string; caller frees. */
char *nb_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
