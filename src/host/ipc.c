/* Host <-> worker framing (see ipc.h): the frame writer, the bounds-checked
 * field reader and the blocking send/receive helpers. Everything here works
 * on buffers and file descriptors it is handed; it keeps no state of its own.
 * Invariant: nothing is ever read past the payload length a caller gave. */
#include "host/ipc.h"
#include "core/clock.h"
#include "core/mem.h"
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Buffers above this size are released after use rather than kept. */
#define KEEP_BYTES (1u << 20)
/* First receive size: small replies arrive in one read. */
#define RECV_INITIAL (64u * 1024)

static void put_le32(char *p, uint32_t v)
{
    p[0] = (char)(v & 0xff);
    p[1] = (char)((v >> 8) & 0xff);
    p[2] = (char)((v >> 16) & 0xff);
    p[3] = (char)((v >> 24) & 0xff);
}

static uint32_t get_le32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 24;
}

enum nb_err nb_ipc_field_append(struct nb_buf *b, const void *p, size_t n)
{
    if (n > NB_IPC_MAX_FRAME || n + NB_IPC_FIELD_OVERHEAD > b->max ||
        b->len > b->max - (n + NB_IPC_FIELD_OVERHEAD))
        return NB_ERR_TOO_LARGE;
    char len[4];
    put_le32(len, (uint32_t)n);
    /* Cannot fail after the check above. nb_buf's own terminator is not
     * part of len, so the field's NUL is added as a real byte. */
    nb_buf_add(b, len, sizeof(len));
    nb_buf_add(b, p, n);
    nb_buf_addc(b, '\0');
    return NB_OK;
}

void nb_ipc_writer_init(struct nb_ipc_writer *w)
{
    nb_buf_init(&w->buf, NB_IPC_HEADER + NB_IPC_MAX_FRAME);
    w->err = NB_OK;
}

void nb_ipc_writer_cleanup(struct nb_ipc_writer *w)
{
    nb_buf_cleanup(&w->buf);
}

void nb_ipc_begin(struct nb_ipc_writer *w)
{
    if (w->buf.cap > KEEP_BYTES) nb_buf_cleanup(&w->buf);
    nb_buf_reset(&w->buf);
    w->err = NB_OK;
    static const char zero[NB_IPC_HEADER];
    nb_buf_add(&w->buf, zero, sizeof(zero));
}

void nb_ipc_put(struct nb_ipc_writer *w, const void *p, size_t n)
{
    if (w->err) return;
    w->err = nb_ipc_field_append(&w->buf, p, n);
}

void nb_ipc_put_str(struct nb_ipc_writer *w, const char *s)
{
    if (!s) s = "";
    nb_ipc_put(w, s, strlen(s));
}

void nb_ipc_put_u32(struct nb_ipc_writer *w, uint32_t v)
{
    char p[4];
    put_le32(p, v);
    nb_ipc_put(w, p, sizeof(p));
}

void nb_ipc_put_u64(struct nb_ipc_writer *w, uint64_t v)
{
    char p[8];
    put_le32(p, (uint32_t)v);
    put_le32(p + 4, (uint32_t)(v >> 32));
    nb_ipc_put(w, p, sizeof(p));
}

void nb_ipc_put_raw(struct nb_ipc_writer *w, const void *p, size_t n)
{
    if (w->err) return;
    w->err = nb_buf_add(&w->buf, p, n);
}

enum nb_err nb_ipc_end(struct nb_ipc_writer *w)
{
    if (w->err) return w->err;
    if (w->buf.len < NB_IPC_HEADER) return NB_ERR_INVALID; /* no nb_ipc_begin */
    size_t payload = w->buf.len - NB_IPC_HEADER;
    if (payload > NB_IPC_MAX_FRAME) return w->err = NB_ERR_TOO_LARGE;
    put_le32(w->buf.data, (uint32_t)payload);
    return NB_OK;
}

void nb_ipc_reader_init(struct nb_ipc_reader *r, const void *payload, size_t len)
{
    r->p = payload;
    r->len = payload ? len : 0;
    r->off = 0;
}

enum nb_err nb_ipc_get(struct nb_ipc_reader *r, struct nb_str *out)
{
    size_t left = r->len - r->off;
    if (left < NB_IPC_FIELD_OVERHEAD) return NB_ERR_INVALID;
    size_t n = get_le32(r->p + r->off);
    if (n > left - NB_IPC_FIELD_OVERHEAD) return NB_ERR_INVALID;
    const char *v = r->p + r->off + 4;
    if (v[n] != '\0') return NB_ERR_INVALID;
    out->ptr = v;
    out->len = n;
    r->off += n + NB_IPC_FIELD_OVERHEAD;
    return NB_OK;
}

enum nb_err nb_ipc_get_cstr(struct nb_ipc_reader *r, const char **out)
{
    struct nb_str s;
    enum nb_err rc = nb_ipc_get(r, &s);
    if (rc) return rc;
    *out = s.ptr;
    return NB_OK;
}

/* The next field, which must be exactly n bytes long. */
static enum nb_err get_fixed(struct nb_ipc_reader *r, size_t n, const char **out)
{
    size_t save = r->off;
    struct nb_str s;
    enum nb_err rc = nb_ipc_get(r, &s);
    if (rc) return rc;
    if (s.len != n) {
        r->off = save;
        return NB_ERR_INVALID;
    }
    *out = s.ptr;
    return NB_OK;
}

enum nb_err nb_ipc_get_u32(struct nb_ipc_reader *r, uint32_t *out)
{
    const char *p;
    enum nb_err rc = get_fixed(r, 4, &p);
    if (rc) return rc;
    *out = get_le32(p);
    return NB_OK;
}

enum nb_err nb_ipc_get_u64(struct nb_ipc_reader *r, uint64_t *out)
{
    const char *p;
    enum nb_err rc = get_fixed(r, 8, &p);
    if (rc) return rc;
    *out = (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
    return NB_OK;
}

enum nb_err nb_ipc_get_count(struct nb_ipc_reader *r, size_t per_item, size_t *out)
{
    size_t save = r->off;
    uint32_t n;
    enum nb_err rc = nb_ipc_get_u32(r, &n);
    if (rc) return rc;
    size_t min_bytes = (per_item ? per_item : 1) * NB_IPC_FIELD_OVERHEAD;
    if ((size_t)n > (r->len - r->off) / min_bytes) {
        r->off = save;
        return NB_ERR_INVALID;
    }
    *out = n;
    return NB_OK;
}

bool nb_ipc_reader_done(const struct nb_ipc_reader *r)
{
    return r->off == r->len;
}

void nb_ipc_rbuf_init(struct nb_ipc_rbuf *b)
{
    b->data = NULL;
    b->cap = 0;
}

void nb_ipc_rbuf_cleanup(struct nb_ipc_rbuf *b)
{
    free(b->data);
    b->data = NULL;
    b->cap = 0;
}

static void rbuf_resize(struct nb_ipc_rbuf *b, size_t cap)
{
    b->data = nb_realloc(b->data, cap);
    b->cap = cap;
}

enum nb_err nb_ipc_send(int fd, const void *p, size_t n)
{
    const char *c = p;
    bool sock = true;
    while (n > 0) {
        ssize_t w = sock ? send(fd, c, n, MSG_NOSIGNAL) : write(fd, c, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == ENOTSOCK && sock) {
                sock = false;
                continue;
            }
            return NB_ERR_IO;
        }
        c += w;
        n -= (size_t)w;
    }
    return NB_OK;
}

/* One read of up to n bytes, waiting no later than deadline_us. Returns the
 * byte count (0 at EOF), -1 on error, -2 at the deadline. */
static ssize_t read_some(int fd, char *p, size_t n, int64_t deadline_us)
{
    for (;;) {
        if (deadline_us >= 0) {
            int64_t left = deadline_us - nb_clock_mono_us();
            if (left < 0) left = 0;
            int ms = left > 3600000000 ? 3600000 : (int)((left + 999) / 1000);
            struct pollfd pfd = { .fd = fd, .events = POLLIN };
            int pr = poll(&pfd, 1, ms);
            if (pr < 0) {
                if (errno == EINTR) continue;
                return -1;
            }
            if (pr == 0) {
                if (nb_clock_mono_us() >= deadline_us) return -2;
                continue; /* woke a little early (ms rounding) */
            }
        }
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR) continue;
        return r < 0 ? -1 : r;
    }
}

enum nb_err nb_ipc_recv_frame(int fd, struct nb_ipc_rbuf *b, int64_t deadline_us,
                              struct nb_str *payload)
{
    if (b->cap > KEEP_BYTES || b->cap < RECV_INITIAL) rbuf_resize(b, RECV_INITIAL);
    size_t got = 0;
    /* Greedy first read: a whole small frame usually arrives at once. */
    while (got < NB_IPC_HEADER) {
        ssize_t r = read_some(fd, b->data + got, b->cap - 1 - got, deadline_us);
        if (r == -2) return NB_IPC_TIMEOUT;
        if (r < 0) return NB_ERR_IO;
        if (r == 0) return got == 0 ? NB_ERR_STOPPED : NB_ERR_IO;
        got += (size_t)r;
    }
    size_t len = get_le32(b->data);
    if (len > NB_IPC_MAX_FRAME) return NB_ERR_TOO_LARGE;
    size_t total = NB_IPC_HEADER + len;
    if (got > total) return NB_ERR_INVALID;
    if (total + 1 > b->cap) rbuf_resize(b, total + 1);
    while (got < total) {
        ssize_t r = read_some(fd, b->data + got, total - got, deadline_us);
        if (r == -2) return NB_IPC_TIMEOUT;
        if (r <= 0) return NB_ERR_IO;
        got += (size_t)r;
    }
    b->data[total] = '\0';
    payload->ptr = b->data + NB_IPC_HEADER;
    payload->len = len;
    return NB_OK;
}
