/* nb_buf: growable buffer with a hard maximum (see buf.h). */
#include "core/buf.h"
#include "core/mem.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct nb_str nb_str_c(const char *s)
{
    struct nb_str v = { s ? s : "", s ? strlen(s) : 0 };
    return v;
}

bool nb_str_eq(struct nb_str a, struct nb_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

bool nb_str_eq_c(struct nb_str a, const char *b)
{
    return nb_str_eq(a, nb_str_c(b));
}

bool nb_str_ieq_c(struct nb_str a, const char *b)
{
    size_t n = strlen(b);
    return a.len == n && strncasecmp(a.ptr, b, n) == 0;
}

void nb_buf_init(struct nb_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void nb_buf_cleanup(struct nb_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void nb_buf_reset(struct nb_buf *b)
{
    b->len = 0;
    if (b->data) b->data[0] = '\0';
}

static enum nb_err reserve(struct nb_buf *b, size_t extra)
{
    if (extra > b->max || b->len > b->max - extra) return NB_ERR_TOO_LARGE;
    size_t need = b->len + extra + 1;
    if (need <= b->cap) return NB_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) cap *= 2;
    if (cap > b->max + 1) cap = b->max + 1;
    b->data = nb_realloc(b->data, cap);
    b->cap = cap;
    return NB_OK;
}

enum nb_err nb_buf_add(struct nb_buf *b, const void *p, size_t n)
{
    enum nb_err rc = reserve(b, n);
    if (rc) return rc;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return NB_OK;
}

enum nb_err nb_buf_adds(struct nb_buf *b, const char *s)
{
    return nb_buf_add(b, s, strlen(s));
}

enum nb_err nb_buf_addc(struct nb_buf *b, char c)
{
    return nb_buf_add(b, &c, 1);
}

enum nb_err nb_buf_vprintf(struct nb_buf *b, const char *fmt, va_list ap)
{
    va_list cp;
    va_copy(cp, ap);
    int n = vsnprintf(NULL, 0, fmt, cp);
    va_end(cp);
    if (n < 0) return NB_ERR_INVALID;
    enum nb_err rc = reserve(b, (size_t)n);
    if (rc) return rc;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return NB_OK;
}

enum nb_err nb_buf_printf(struct nb_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    enum nb_err rc = nb_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

enum nb_err nb_buf_add_xml(struct nb_buf *b, const char *s, size_t n)
{
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        const char *rep = NULL;
        switch (s[i]) {
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '&': rep = "&amp;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&apos;"; break;
        case '\r': rep = "&#xD;"; break; /* keep CR through XML end-of-line normalisation */
        default: continue;
        }
        enum nb_err rc = nb_buf_add(b, s + start, i - start);
        if (!rc) rc = nb_buf_adds(b, rep);
        if (rc) return rc;
        start = i + 1;
    }
    return nb_buf_add(b, s + start, n - start);
}

char *nb_buf_detach(struct nb_buf *b, size_t *len)
{
    char *p = b->data ? b->data : nb_strdup("");
    if (len) *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

const char *nb_buf_cstr(const struct nb_buf *b)
{
    return b->data ? b->data : "";
}
