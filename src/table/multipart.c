/* Batch framing for the table service (see multipart.h). The parser walks
 * the body with explicit [p, end) bounds and never looks outside them; every
 * string it returns is an arena copy except operation bodies, which borrow
 * the request body. Lines end with CRLF or a bare LF (a lone CR is data).
 * The writer emits exactly the shape Azure sends (§3.6), CRLF throughout. */
#include "table/multipart.h"
#include <string.h>
#include <strings.h>

/* --- lines and tokens ------------------------------------------------------ */

/* The line at *pp (without its CRLF/LF). Advances *pp past the line end.
 * Returns false when no line break remains before `end`; then *line holds
 * the rest and *pp is `end`. */
static bool next_line(const char **pp, const char *end, struct nb_str *line)
{
    const char *p = *pp;
    const char *lf = memchr(p, '\n', (size_t)(end - p));
    if (!lf) {
        *line = (struct nb_str){ p, (size_t)(end - p) };
        *pp = end;
        return false;
    }
    const char *e = lf;
    if (e > p && e[-1] == '\r') e--;
    *line = (struct nb_str){ p, (size_t)(e - p) };
    *pp = lf + 1;
    return true;
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static struct nb_str trim(struct nb_str s)
{
    while (s.len && is_ows(s.ptr[0])) s.ptr++, s.len--;
    while (s.len && is_ows(s.ptr[s.len - 1])) s.len--;
    return s;
}

/* RFC 7230 tchar. */
static bool is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool all_tchar(struct nb_str s)
{
    if (!s.len) return false;
    for (size_t i = 0; i < s.len; i++)
        if (!is_tchar((unsigned char)s.ptr[i])) return false;
    return true;
}

/* --- headers --------------------------------------------------------------- */

struct hdrs {
    struct nb_kv *kv;
    size_t n;
};

static const char *hdr_get(const struct hdrs *h, const char *name)
{
    for (size_t i = 0; i < h->n; i++)
        if (strcasecmp(h->kv[i].name, name) == 0) return h->kv[i].value;
    return NULL;
}

static size_t hdr_count(const struct hdrs *h, const char *name)
{
    size_t k = 0;
    for (size_t i = 0; i < h->n; i++)
        if (strcasecmp(h->kv[i].name, name) == 0) k++;
    return k;
}

/* Parse header lines at *pp up to the blank line that ends them (consumed).
 * Lines that start with blanks continue the previous value (obsolete
 * folding, which MIME generators still produce); the pieces are joined with
 * one space, in a single copy so that many folds cost linear time. With
 * `eof_ends` the end of the region also ends the block (an embedded request
 * with no body and no blank line); otherwise that is an error. */
static enum nb_err parse_headers(const char **pp, const char *end, bool eof_ends,
                                 struct nb_arena *arena, struct hdrs *out, const char **why)
{
    static const char malformed[] = "A header line in a batch part is malformed.";
    struct nb_kv tmp[NB_MULTIPART_MAX_HEADERS];
    size_t n = 0;
    for (;;) {
        if (*pp >= end) {
            if (eof_ends) break;
            *why = "A batch part ends before the blank line that closes its headers.";
            return NB_ERR_INVALID;
        }
        struct nb_str line;
        next_line(pp, end, &line);
        if (line.len == 0) break; /* *pp was < end, so this was a line break */
        const char *colon = memchr(line.ptr, ':', line.len);
        struct nb_str name = { line.ptr, colon ? (size_t)(colon - line.ptr) : 0 };
        /* A fold with nothing before it fails here too: blanks are no tchar. */
        if (!colon || !all_tchar(name)) {
            *why = malformed;
            return NB_ERR_INVALID;
        }
        if (n == NB_MULTIPART_MAX_HEADERS) {
            *why = "A batch part has too many headers.";
            return NB_ERR_INVALID;
        }
        struct nb_str first = trim((struct nb_str){ colon + 1, line.len - name.len - 1 });
        /* Measure the continuation lines, then copy everything once. */
        size_t total = first.len;
        const char *scan = *pp;
        while (scan < end && is_ows(*scan)) {
            struct nb_str more;
            next_line(&scan, end, &more);
            more = trim(more);
            if (more.len) total += (total ? 1 : 0) + more.len;
        }
        char *v = nb_arena_alloc(arena, total + 1);
        memcpy(v, first.ptr, first.len);
        size_t vlen = first.len;
        while (*pp < scan) {
            struct nb_str more;
            next_line(pp, end, &more);
            more = trim(more);
            if (!more.len) continue;
            if (vlen) v[vlen++] = ' ';
            memcpy(v + vlen, more.ptr, more.len);
            vlen += more.len;
        }
        v[vlen] = '\0';
        if (memchr(v, '\0', vlen)) { /* values are handed out as C strings */
            *why = malformed;
            return NB_ERR_INVALID;
        }
        tmp[n].name = nb_arena_strndup(arena, name.ptr, name.len);
        tmp[n].value = v;
        tmp[n].value_len = vlen;
        n++;
    }
    out->n = n;
    out->kv = nb_arena_alloc(arena, (n ? n : 1) * sizeof(*out->kv));
    if (n) memcpy(out->kv, tmp, n * sizeof(*tmp));
    return NB_OK;
}

/* --- Content-Type ---------------------------------------------------------- */

/* The boundary of a "multipart/mixed; boundary=..." value, as an arena
 * string; NULL when the value is another media type or has no usable
 * boundary. */
static const char *multipart_boundary(const char *ct, struct nb_arena *arena)
{
    static const char type[] = "multipart/mixed";
    if (!ct) return NULL;
    const char *p = ct, *end = ct + strlen(ct);
    while (p < end && is_ows(*p)) p++;
    size_t tl = sizeof(type) - 1;
    if ((size_t)(end - p) < tl || strncasecmp(p, type, tl) != 0) return NULL;
    p += tl;
    while (p < end && is_ows(*p)) p++;
    while (p < end) {
        if (*p != ';') return NULL;
        p++;
        while (p < end && is_ows(*p)) p++;
        const char *name = p;
        while (p < end && is_tchar((unsigned char)*p)) p++;
        size_t nlen = (size_t)(p - name);
        while (p < end && is_ows(*p)) p++;
        if (p >= end || *p != '=' || nlen == 0) return NULL;
        p++;
        while (p < end && is_ows(*p)) p++;
        char val[NB_MULTIPART_MAX_BOUNDARY + 1];
        size_t vlen = 0;
        bool too_long = false;
        if (p < end && *p == '"') {
            p++;
            while (p < end && *p != '"') {
                if (*p == '\\' && p + 1 < end) p++;
                if (vlen < NB_MULTIPART_MAX_BOUNDARY) val[vlen++] = *p;
                else too_long = true;
                p++;
            }
            if (p >= end) return NULL; /* unterminated quote */
            p++;
        } else {
            while (p < end && *p != ';' && !is_ows(*p)) {
                if (vlen < NB_MULTIPART_MAX_BOUNDARY) val[vlen++] = *p;
                else too_long = true;
                p++;
            }
        }
        while (p < end && is_ows(*p)) p++;
        if (nlen == 8 && strncasecmp(name, "boundary", 8) == 0) {
            if (too_long || vlen == 0 || memchr(val, '\r', vlen) || memchr(val, '\n', vlen) ||
                memchr(val, '\0', vlen))
                return NULL;
            return nb_arena_strndup(arena, val, vlen);
        }
    }
    return NULL;
}

static bool is_media_type(const char *ct, const char *type)
{
    if (!ct) return false;
    while (is_ows(*ct)) ct++;
    size_t n = strlen(type);
    if (strncasecmp(ct, type, n) != 0) return false;
    ct += n;
    while (is_ows(*ct)) ct++;
    return *ct == '\0' || *ct == ';';
}

/* --- multipart splitting --------------------------------------------------- */

/* Walks the parts of one multipart body delimited by "--" boundary. */
struct mp {
    const char *start, *end; /* the whole multipart body */
    const char *pos;         /* where the next part begins */
    const char *dash;        /* "--" boundary */
    size_t dlen;
    bool closed;             /* the closing delimiter was seen */
};

/* The next delimiter line at or after `from`: "--boundary" at the start of
 * a line, then optionally "--", blanks, and a line end (or the end of the
 * body). A longer token that merely starts with the boundary is data.
 * Returns its first byte or NULL; *after is the first byte after its line. */
static const char *find_delim(const struct mp *m, const char *from, const char **after,
                              bool *close)
{
    const char *p = from;
    while (p < m->end && (size_t)(m->end - p) >= m->dlen) {
        const char *hit = memmem(p, (size_t)(m->end - p), m->dash, m->dlen);
        if (!hit) return NULL;
        p = hit + 1;
        if (hit != m->start && hit[-1] != '\n') continue;
        const char *q = hit + m->dlen;
        bool c = (size_t)(m->end - q) >= 2 && q[0] == '-' && q[1] == '-';
        if (c) q += 2;
        while (q < m->end && is_ows(*q)) q++;
        if (q == m->end) {
            *after = q;
        } else if (*q == '\n') {
            *after = q + 1;
        } else if (*q == '\r' && q + 1 < m->end && q[1] == '\n') {
            *after = q + 2;
        } else {
            continue;
        }
        *close = c;
        return hit;
    }
    return NULL;
}

static enum nb_err mp_begin(struct mp *m, const char *body, size_t len, const char *boundary,
                            struct nb_arena *arena, const char **why)
{
    m->start = body;
    m->end = body + len;
    m->dlen = strlen(boundary) + 2;
    char *d = nb_arena_alloc(arena, m->dlen + 1);
    d[0] = d[1] = '-';
    memcpy(d + 2, boundary, m->dlen - 2);
    d[m->dlen] = '\0';
    m->dash = d;
    m->closed = false;
    const char *after;
    bool close;
    if (!find_delim(m, body, &after, &close)) {
        *why = "The batch body does not contain the boundary its Content-Type names.";
        return NB_ERR_INVALID;
    }
    m->pos = after;
    m->closed = close;
    return NB_OK;
}

/* The next part's content: from after its delimiter line to before the line
 * break that precedes the next delimiter. Returns false at the closing
 * delimiter; a body that ends before it is malformed (*rc set). */
static bool mp_next(struct mp *m, struct nb_str *part, enum nb_err *rc, const char **why)
{
    *rc = NB_OK;
    if (m->closed) return false;
    const char *after;
    bool close;
    /* The line break that ends the previous delimiter line may double as the
     * one before this delimiter (an empty part), hence pos - 1. */
    const char *from = m->pos > m->start && m->pos[-1] == '\n' ? m->pos - 1 : m->pos;
    const char *hit = find_delim(m, from, &after, &close);
    if (!hit) {
        *why = "The batch body ends before the closing boundary of a multipart section.";
        *rc = NB_ERR_INVALID;
        return false;
    }
    const char *ce = hit < m->pos ? m->pos : hit;
    if (ce > m->pos && ce[-1] == '\n') ce--;
    if (ce > m->pos && ce[-1] == '\r') ce--;
    *part = (struct nb_str){ m->pos, (size_t)(ce - m->pos) };
    m->pos = after;
    m->closed = close;
    return true;
}

/* --- the embedded request -------------------------------------------------- */

/* "http://host:port/path?query" or "/path?query" into raw path and query. */
static bool split_url(struct nb_str url, struct nb_arena *arena, struct nb_batch_op *op)
{
    const char *p = url.ptr, *end = url.ptr + url.len;
    const char *hash = memchr(p, '#', url.len);
    if (hash) end = hash;
    if (p < end && *p != '/') {
        const char *s = p;
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z'))) return false;
        while (s < end && ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
                           (*s >= '0' && *s <= '9') || *s == '+' || *s == '-' || *s == '.'))
            s++;
        if ((size_t)(end - s) < 3 || memcmp(s, "://", 3) != 0) return false;
        s += 3;
        while (s < end && *s != '/' && *s != '?') s++; /* authority */
        p = s;
    }
    const char *q = memchr(p, '?', (size_t)(end - p));
    const char *pe = q ? q : end;
    if (pe == p) op->path = "/";
    else if (*p != '/') return false;
    else op->path = nb_arena_strndup(arena, p, (size_t)(pe - p));
    op->query = q ? nb_arena_strndup(arena, q + 1, (size_t)(end - q - 1)) : "";
    return true;
}

/* Strict decimal Content-Length, at most 20 MiB (far above any batch). */
static bool parse_length(const char *s, size_t *out)
{
    size_t v = 0;
    if (!*s) return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return false;
        v = v * 10 + (size_t)(*s - '0');
        if (v > ((size_t)20 << 20)) return false;
    }
    *out = v;
    return true;
}

static enum nb_err parse_request(struct nb_str part, struct nb_arena *arena,
                                 struct nb_batch_op *op, const char **why)
{
    const char *p = part.ptr, *end = part.ptr + part.len;
    struct hdrs mime;
    enum nb_err rc = parse_headers(&p, end, false, arena, &mime, why);
    if (rc) return rc;
    const char *ct = hdr_get(&mime, "Content-Type");
    if (ct && !is_media_type(ct, "application/http")) {
        *why = "A changeset part is not of type application/http.";
        return NB_ERR_INVALID;
    }
    const char *cte = hdr_get(&mime, "Content-Transfer-Encoding");
    if (cte && strcasecmp(cte, "binary") != 0 && strcasecmp(cte, "8bit") != 0 &&
        strcasecmp(cte, "7bit") != 0) {
        *why = "A changeset part uses a Content-Transfer-Encoding other than binary.";
        return NB_ERR_INVALID;
    }
    op->content_id = hdr_get(&mime, "Content-ID");

    /* Request line; blank lines before it are tolerated (RFC 7230 §3.5). */
    struct nb_str line = { NULL, 0 };
    while (p < end && line.len == 0) next_line(&p, end, &line);
    if (line.len == 0) {
        *why = "A changeset part holds no request line.";
        return NB_ERR_INVALID;
    }
    const char *sp1 = memchr(line.ptr, ' ', line.len);
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(line.ptr + line.len - sp1 - 1)) : NULL;
    if (!sp1 || !sp2) {
        *why = "The request line of a changeset part is malformed.";
        return NB_ERR_INVALID;
    }
    struct nb_str method = { line.ptr, (size_t)(sp1 - line.ptr) };
    struct nb_str url = { sp1 + 1, (size_t)(sp2 - sp1 - 1) };
    struct nb_str version = { sp2 + 1, (size_t)(line.ptr + line.len - sp2 - 1) };
    if (!all_tchar(method) || method.len > 16 || url.len == 0 || version.len != 8 ||
        memcmp(version.ptr, "HTTP/1.", 7) != 0 || (version.ptr[7] != '0' && version.ptr[7] != '1')) {
        *why = "The request line of a changeset part is malformed.";
        return NB_ERR_INVALID;
    }
    for (size_t i = 0; i < url.len; i++) {
        unsigned char c = (unsigned char)url.ptr[i];
        if (c <= ' ' || c == 0x7f) {
            *why = "The request line of a changeset part is malformed.";
            return NB_ERR_INVALID;
        }
    }
    op->method = nb_arena_strndup(arena, method.ptr, method.len);
    if (!split_url(url, arena, op)) {
        *why = "The URL of a changeset operation is not valid.";
        return NB_ERR_INVALID;
    }

    struct hdrs h;
    rc = parse_headers(&p, end, true, arena, &h, why);
    if (rc) return rc;
    op->headers = h.kv;
    op->nheaders = h.n;
    if (hdr_get(&h, "Transfer-Encoding")) {
        *why = "Transfer-Encoding is not supported inside a batch.";
        return NB_ERR_INVALID;
    }
    size_t avail = (size_t)(end - p);
    const char *cl = hdr_get(&h, "Content-Length");
    op->body = p;
    op->body_len = avail;
    if (!cl) return NB_OK;
    size_t want;
    if (hdr_count(&h, "Content-Length") > 1 || !parse_length(cl, &want)) {
        *why = "The Content-Length of a changeset operation is not valid.";
        return NB_ERR_INVALID;
    }
    if (want > avail) {
        *why = "The Content-Length of a changeset operation exceeds its part.";
        return NB_ERR_INVALID;
    }
    for (const char *t = p + want; t < end; t++) {
        if (*t != '\r' && *t != '\n' && !is_ows(*t)) {
            *why = "A changeset operation has data after the Content-Length of its body.";
            return NB_ERR_INVALID;
        }
    }
    op->body_len = want;
    return NB_OK;
}

/* --- entry points ---------------------------------------------------------- */

enum nb_err nb_multipart_parse(const char *content_type, const char *body, size_t len,
                               struct nb_arena *arena, struct nb_batch *out, const char **why)
{
    static const char empty[] = "";
    out->ops = NULL;
    out->n = 0;
    *why = NULL;
    if (!body) body = empty, len = 0;
    const char *outer = multipart_boundary(content_type, arena);
    if (!outer) {
        *why = "The batch request must have Content-Type multipart/mixed with a boundary.";
        return NB_ERR_INVALID;
    }
    struct mp batch;
    enum nb_err rc = mp_begin(&batch, body, len, outer, arena, why);
    if (rc) return rc;
    struct nb_str cs_part;
    if (!mp_next(&batch, &cs_part, &rc, why)) {
        if (rc) return rc;
        *why = "The batch request contains no changeset.";
        return NB_ERR_INVALID;
    }
    struct nb_str extra;
    if (mp_next(&batch, &extra, &rc, why)) {
        *why = "The batch request must contain exactly one changeset.";
        return NB_ERR_INVALID;
    }
    if (rc) return rc;

    const char *p = cs_part.ptr, *end = cs_part.ptr + cs_part.len;
    struct hdrs mime;
    rc = parse_headers(&p, end, false, arena, &mime, why);
    if (rc) return rc;
    const char *ct = hdr_get(&mime, "Content-Type");
    const char *inner = multipart_boundary(ct, arena);
    if (!inner) {
        *why = is_media_type(ct, "application/http")
                   ? "Operations outside a changeset are not supported."
                   : "The batch part must be a multipart/mixed changeset with a boundary.";
        return NB_ERR_INVALID;
    }
    struct mp cs;
    rc = mp_begin(&cs, p, (size_t)(end - p), inner, arena, why);
    if (rc) return rc;
    out->ops = nb_arena_alloc(arena, NB_MULTIPART_MAX_OPS * sizeof(*out->ops));
    struct nb_str part;
    while (mp_next(&cs, &part, &rc, why)) {
        if (out->n == NB_MULTIPART_MAX_OPS) {
            *why = "The batch request operation exceeds the maximum 100 changes per change set.";
            return NB_ERR_TOO_LARGE;
        }
        struct nb_batch_op *op = &out->ops[out->n];
        memset(op, 0, sizeof(*op));
        rc = parse_request(part, arena, op, why);
        if (rc) return rc;
        out->n++;
    }
    return rc;
}

const char *nb_batch_op_header(const struct nb_batch_op *op, const char *name)
{
    struct hdrs h = { op->headers, op->nheaders };
    return hdr_get(&h, name);
}

const char *nb_multipart_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Request Entity Too Large";
    case 415: return "Unsupported Media Type";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    default: return "Unknown";
    }
}

enum nb_err nb_multipart_write_response(const struct nb_batch_result *results, size_t n,
                                        const char *batch_id, const char *cs_id,
                                        struct nb_arena *arena, struct nb_buf *out,
                                        const char **content_type)
{
    size_t mark = out->len;
    enum nb_err rc = nb_buf_printf(out,
                                   "--batchresponse_%s\r\n"
                                   "Content-Type: multipart/mixed; boundary=changesetresponse_%s\r\n"
                                   "\r\n",
                                   batch_id, cs_id);
    for (size_t i = 0; !rc && i < n; i++) {
        const struct nb_batch_result *r = &results[i];
        rc = nb_buf_printf(out,
                           "--changesetresponse_%s\r\n"
                           "Content-Type: application/http\r\n"
                           "Content-Transfer-Encoding: binary\r\n"
                           "\r\n"
                           "HTTP/1.1 %d %s\r\n",
                           cs_id, r->status, nb_multipart_reason(r->status));
        for (size_t h = 0; !rc && h < r->nheaders; h++)
            rc = nb_buf_printf(out, "%s: %s\r\n", r->headers[h].name, r->headers[h].value);
        if (!rc) rc = nb_buf_adds(out, "\r\n");
        if (!rc && r->body && r->body_len) rc = nb_buf_add(out, r->body, r->body_len);
        if (!rc) rc = nb_buf_adds(out, "\r\n");
    }
    if (!rc)
        rc = nb_buf_printf(out, "--changesetresponse_%s--\r\n--batchresponse_%s--\r\n", cs_id,
                           batch_id);
    if (rc) {
        out->len = mark;
        if (out->data) out->data[mark] = '\0';
        return rc;
    }
    *content_type = nb_arena_printf(arena, "multipart/mixed; boundary=batchresponse_%s", batch_id);
    return NB_OK;
}
