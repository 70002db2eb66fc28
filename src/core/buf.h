/* The two string shapes of Nimbus: nb_str, a borrowed view (pointer +
 * length, not NUL-terminated), and nb_buf, a growable byte buffer created
 * with a hard maximum. A buffer never grows past its maximum: appends that
 * would do so fail with NB_ERR_TOO_LARGE and leave the buffer unchanged, so
 * no client input can grow memory without bound. The bytes are always kept
 * NUL-terminated for convenience (the NUL is not counted in len). */
#ifndef NB_CORE_BUF_H
#define NB_CORE_BUF_H
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include "core/err.h"

struct nb_str {
    const char *ptr;
    size_t len;
};

#define NB_STR_LIT(s) ((struct nb_str){ (s), sizeof(s) - 1 })
struct nb_str nb_str_c(const char *s); /* view of a C string; NULL -> empty */
bool nb_str_eq(struct nb_str a, struct nb_str b);
bool nb_str_eq_c(struct nb_str a, const char *b);
bool nb_str_ieq_c(struct nb_str a, const char *b); /* ASCII case-insensitive */

struct nb_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max;
};

/* Initialise an empty buffer that may hold at most `max` bytes. */
void nb_buf_init(struct nb_buf *b, size_t max);
/* Release the storage; the buffer may be re-initialised afterwards. */
void nb_buf_cleanup(struct nb_buf *b);
void nb_buf_reset(struct nb_buf *b);
/* Append; NB_ERR_TOO_LARGE when the result would exceed max. */
enum nb_err nb_buf_add(struct nb_buf *b, const void *p, size_t n);
enum nb_err nb_buf_adds(struct nb_buf *b, const char *s);
enum nb_err nb_buf_addc(struct nb_buf *b, char c);
enum nb_err nb_buf_printf(struct nb_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
enum nb_err nb_buf_vprintf(struct nb_buf *b, const char *fmt, va_list ap);
/* Append `s` with the five XML special characters escaped. */
enum nb_err nb_buf_add_xml(struct nb_buf *b, const char *s, size_t n);
/* Hand the bytes to the caller (who frees them) and reset the buffer. */
char *nb_buf_detach(struct nb_buf *b, size_t *len);
const char *nb_buf_cstr(const struct nb_buf *b); /* "" when empty */

#endif
