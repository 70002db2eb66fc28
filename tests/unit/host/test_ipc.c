/* Host <-> worker framing (src/host/ipc.c): the writer, the bounds-checked
 * reader on well-formed, truncated and forged input, and the socket
 * send/receive helpers over a socketpair (EOF, timeout, oversize, extra
 * bytes, large frames, a dead peer without SIGPIPE). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "core/clock.h"
#include "host/ipc.h"

static void le32(char *p, uint32_t v)
{
    p[0] = (char)v;
    p[1] = (char)(v >> 8);
    p[2] = (char)(v >> 16);
    p[3] = (char)(v >> 24);
}

/* A payload of raw bytes (no frame header) for reader tests. */
static size_t field(char *out, uint32_t len_word, const char *bytes, size_t n, char term)
{
    le32(out, len_word);
    memcpy(out + 4, bytes, n);
    out[4 + n] = term;
    return 5 + n;
}

static void test_round_trip(void **state)
{
    (void)state;
    struct nb_ipc_writer w;
    nb_ipc_writer_init(&w);
    nb_ipc_begin(&w);
    nb_ipc_put_str(&w, "hello");
    nb_ipc_put(&w, "a\0b", 3);
    nb_ipc_put_str(&w, NULL);
    nb_ipc_put_u32(&w, 0xdeadbeef);
    nb_ipc_put_u64(&w, 0x0102030405060708ull);
    nb_ipc_put(&w, NULL, 0);
    assert_int_equal(nb_ipc_end(&w), NB_OK);

    /* The length word is little-endian and counts the payload only. */
    const unsigned char *h = (const unsigned char *)w.buf.data;
    size_t payload_len = (size_t)h[0] | (size_t)h[1] << 8 | (size_t)h[2] << 16 |
                         (size_t)h[3] << 24;
    assert_int_equal(payload_len, w.buf.len - NB_IPC_HEADER);

    struct nb_ipc_reader r;
    nb_ipc_reader_init(&r, w.buf.data + NB_IPC_HEADER, payload_len);
    struct nb_str s;
    const char *c;
    uint32_t u;
    uint64_t u64;
    assert_int_equal(nb_ipc_get_cstr(&r, &c), NB_OK);
    assert_string_equal(c, "hello");
    assert_int_equal(nb_ipc_get(&r, &s), NB_OK);
    assert_int_equal(s.len, 3);
    assert_memory_equal(s.ptr, "a\0b", 3);
    assert_int_equal(s.ptr[3], '\0');
    assert_int_equal(nb_ipc_get(&r, &s), NB_OK);
    assert_int_equal(s.len, 0);
    assert_string_equal(s.ptr, "");
    assert_int_equal(nb_ipc_get_u32(&r, &u), NB_OK);
    assert_int_equal(u, 0xdeadbeef);
    assert_int_equal(nb_ipc_get_u64(&r, &u64), NB_OK);
    assert_true(u64 == 0x0102030405060708ull);
    assert_int_equal(nb_ipc_get(&r, &s), NB_OK);
    assert_int_equal(s.len, 0);
    assert_true(nb_ipc_reader_done(&r));
    assert_int_equal(nb_ipc_get(&r, &s), NB_ERR_INVALID);

    /* The writer is reusable: a second frame replaces the first. */
    nb_ipc_begin(&w);
    nb_ipc_put_u32(&w, 7);
    assert_int_equal(nb_ipc_end(&w), NB_OK);
    assert_int_equal(w.buf.len, NB_IPC_HEADER + NB_IPC_FIELD_OVERHEAD + 4);
    nb_ipc_writer_cleanup(&w);
}

static void test_empty_payload(void **state)
{
    (void)state;
    struct nb_ipc_reader r;
    struct nb_str s;
    uint32_t u;
    nb_ipc_reader_init(&r, NULL, 100); /* NULL is an empty payload whatever len says */
    assert_true(nb_ipc_reader_done(&r));
    assert_int_equal(nb_ipc_get(&r, &s), NB_ERR_INVALID);
    nb_ipc_reader_init(&r, "", 0);
    assert_int_equal(nb_ipc_get_u32(&r, &u), NB_ERR_INVALID);
}

static void test_truncated_length_word(void **state)
{
    (void)state;
    char p[16];
    size_t n = field(p, 1, "x", 1, '\0');
    struct nb_ipc_reader r;
    struct nb_str s;
    for (size_t cut = 1; cut < n; cut++) {
        nb_ipc_reader_init(&r, p, cut);
        assert_int_equal(nb_ipc_get(&r, &s), NB_ERR_INVALID);
        assert_int_equal(r.off, 0);
    }
    nb_ipc_reader_init(&r, p, n);
    assert_int_equal(nb_ipc_get(&r, &s), NB_OK);
}

static void test_field_past_payload(void **state)
{
    (void)state;
    char p[64];
    size_t n = field(p, 3, "abc", 3, '\0');
    n += field(p + n, 40, "defg", 4, '\0'); /* claims 40 bytes, has 4 */
    struct nb_ipc_reader r;
    struct nb_str s;
    nb_ipc_reader_init(&r, p, n);
    assert_int_equal(nb_ipc_get(&r, &s), NB_OK);
    size_t off = r.off;
    assert_int_equal(nb_ipc_get(&r, &s), NB_ERR_INVALID);
    assert_int_equal(r.off, off); /* the cursor did not move */
    /* A length word of 0xffffffff must not wrap any arithmetic. */
    n = field(p, 0xffffffffu, "", 0, '\0');
    nb_ipc_reader_init(&r, p, n);
    assert_int_equal(nb_ipc_get(&r, &s), NB_ERR_INVALID);
    n = field(p, 0xfffffffbu, "abcd", 4, '\0');
    nb_ipc_reader_init(&r, p, n);
    assert_int_equal(nb_ipc_get(&r, &s), NB_ERR_INVALID);
}

static void test_missing_nul(void **state)
{
    (void)state;
    char p[16];
    size_t n = field(p, 3, "abc", 3, 'X');
    struct nb_ipc_reader r;
    struct nb_str s;
    nb_ipc_reader_init(&r, p, n);
    assert_int_equal(nb_ipc_get(&r, &s), NB_ERR_INVALID);
    /* Declared one byte short: the byte after it is 'c', not NUL. */
    n = field(p, 2, "abc", 3, '\0');
    nb_ipc_reader_init(&r, p, n);
    assert_int_equal(nb_ipc_get(&r, &s), NB_ERR_INVALID);
}

static void test_integer_size_checked(void **state)
{
    (void)state;
    char p[16];
    size_t n = field(p, 3, "abc", 3, '\0');
    struct nb_ipc_reader r;
    uint32_t u;
    uint64_t u64;
    struct nb_str s;
    nb_ipc_reader_init(&r, p, n);
    assert_int_equal(nb_ipc_get_u32(&r, &u), NB_ERR_INVALID);
    assert_int_equal(nb_ipc_get_u64(&r, &u64), NB_ERR_INVALID);
    assert_int_equal(r.off, 0);
    assert_int_equal(nb_ipc_get(&r, &s), NB_OK); /* still readable as bytes */
    n = field(p, 4, "\x01\x00\x00\x00", 4, '\0');
    nb_ipc_reader_init(&r, p, n);
    assert_int_equal(nb_ipc_get_u64(&r, &u64), NB_ERR_INVALID);
    assert_int_equal(nb_ipc_get_u32(&r, &u), NB_OK);
    assert_int_equal(u, 1);
}

static void test_forged_count(void **state)
{
    (void)state;
    struct nb_ipc_writer w;
    nb_ipc_writer_init(&w);
    nb_ipc_begin(&w);
    nb_ipc_put_u32(&w, 2); /* two pairs follow */
    nb_ipc_put_str(&w, "a");
    nb_ipc_put_str(&w, "1");
    nb_ipc_put_str(&w, "b");
    nb_ipc_put_str(&w, "2");
    nb_ipc_put_u32(&w, 1000000000u); /* a forged count with nothing after it */
    assert_int_equal(nb_ipc_end(&w), NB_OK);
    struct nb_ipc_reader r;
    nb_ipc_reader_init(&r, w.buf.data + NB_IPC_HEADER, w.buf.len - NB_IPC_HEADER);
    size_t n;
    struct nb_str s;
    assert_int_equal(nb_ipc_get_count(&r, 2, &n), NB_OK);
    assert_int_equal(n, 2);
    for (size_t i = 0; i < 2 * n; i++) assert_int_equal(nb_ipc_get(&r, &s), NB_OK);
    size_t off = r.off;
    assert_int_equal(nb_ipc_get_count(&r, 1, &n), NB_ERR_INVALID);
    assert_int_equal(r.off, off);
    nb_ipc_writer_cleanup(&w);

    /* Two pairs claimed, room for one. */
    nb_ipc_writer_init(&w);
    nb_ipc_begin(&w);
    nb_ipc_put_u32(&w, 2);
    nb_ipc_put_str(&w, "a");
    nb_ipc_put_str(&w, "1");
    nb_ipc_end(&w);
    nb_ipc_reader_init(&r, w.buf.data + NB_IPC_HEADER, w.buf.len - NB_IPC_HEADER);
    assert_int_equal(nb_ipc_get_count(&r, 2, &n), NB_ERR_INVALID);
    nb_ipc_writer_cleanup(&w);
}

static void test_writer_limits(void **state)
{
    (void)state;
    struct nb_buf b;
    nb_buf_init(&b, 10);
    assert_int_equal(nb_ipc_field_append(&b, "abcde", 5), NB_OK); /* 10 bytes */
    assert_int_equal(b.len, 10);
    assert_int_equal(nb_ipc_field_append(&b, "", 0), NB_ERR_TOO_LARGE);
    assert_int_equal(b.len, 10);
    nb_buf_cleanup(&b);

    /* A failure is sticky: later (smaller) puts cannot make a frame that
     * silently lacks a field. */
    struct nb_ipc_writer w;
    nb_ipc_writer_init(&w);
    nb_ipc_begin(&w);
    w.buf.max = 64;
    char big[100] = { 0 };
    nb_ipc_put(&w, big, sizeof(big));
    size_t len = w.buf.len;
    nb_ipc_put_str(&w, "x");
    assert_int_equal(w.buf.len, len);
    assert_int_equal(nb_ipc_end(&w), NB_ERR_TOO_LARGE);
    /* nb_ipc_begin clears it. */
    nb_ipc_begin(&w);
    nb_ipc_put_str(&w, "x");
    assert_int_equal(nb_ipc_end(&w), NB_OK);
    nb_ipc_writer_cleanup(&w);

    /* nb_ipc_end without nb_ipc_begin. */
    nb_ipc_writer_init(&w);
    assert_int_equal(nb_ipc_end(&w), NB_ERR_INVALID);
    nb_ipc_writer_cleanup(&w);
}

/* Random payloads: the reader either reads or says INVALID, never more.
 * (Under `make test SAN=1`, ASan checks that nothing past the payload is
 * touched: each payload is its own exact-size allocation.) */
static void test_reader_random_input(void **state)
{
    (void)state;
    uint32_t seed = 12345;
    for (int iter = 0; iter < 20000; iter++) {
        size_t n = (size_t)(iter % 40);
        char *p = malloc(n ? n : 1);
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            uint32_t v = seed >> 16;
            /* Small length words are likely, so fields sometimes parse. */
            p[i] = (char)(i % 5 == 0 ? v % 8 : (i % 5 < 4 ? 0 : v));
        }
        struct nb_ipc_reader r;
        nb_ipc_reader_init(&r, p, n);
        for (int k = 0; k < 50; k++) {
            struct nb_str s;
            uint32_t u;
            size_t cnt;
            enum nb_err rc;
            switch (k % 3) {
            case 0: rc = nb_ipc_get(&r, &s); break;
            case 1: rc = nb_ipc_get_u32(&r, &u); break;
            default: rc = nb_ipc_get_count(&r, 1, &cnt); break;
            }
            assert_true(rc == NB_OK || rc == NB_ERR_INVALID);
            assert_true(r.off <= r.len);
            if (rc == NB_OK && k % 3 == 0) assert_true(s.ptr + s.len < p + n);
        }
        free(p);
    }
}

static void make_pair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

static void test_send_recv(void **state)
{
    (void)state;
    int sv[2];
    make_pair(sv);
    struct nb_ipc_writer w;
    nb_ipc_writer_init(&w);
    nb_ipc_begin(&w);
    nb_ipc_put_str(&w, "ping");
    nb_ipc_put_u32(&w, 42);
    assert_int_equal(nb_ipc_end(&w), NB_OK);
    assert_int_equal(nb_ipc_send(sv[0], w.buf.data, w.buf.len), NB_OK);

    struct nb_ipc_rbuf b;
    nb_ipc_rbuf_init(&b);
    struct nb_str payload;
    assert_int_equal(nb_ipc_recv_frame(sv[1], &b, nb_clock_mono_us() + 1000000, &payload), NB_OK);
    assert_int_equal(payload.len, w.buf.len - NB_IPC_HEADER);
    struct nb_ipc_reader r;
    nb_ipc_reader_init(&r, payload.ptr, payload.len);
    const char *c;
    uint32_t u;
    assert_int_equal(nb_ipc_get_cstr(&r, &c), NB_OK);
    assert_string_equal(c, "ping");
    assert_int_equal(nb_ipc_get_u32(&r, &u), NB_OK);
    assert_int_equal(u, 42);
    assert_true(nb_ipc_reader_done(&r));

    /* Again without a deadline (a plain blocking read). */
    assert_int_equal(nb_ipc_send(sv[0], w.buf.data, w.buf.len), NB_OK);
    assert_int_equal(nb_ipc_recv_frame(sv[1], &b, -1, &payload), NB_OK);
    assert_int_equal(payload.len, w.buf.len - NB_IPC_HEADER);

    /* The peer closing between frames is a clean end. */
    close(sv[0]);
    assert_int_equal(nb_ipc_recv_frame(sv[1], &b, -1, &payload), NB_ERR_STOPPED);
    close(sv[1]);
    nb_ipc_rbuf_cleanup(&b);
    nb_ipc_writer_cleanup(&w);
}

static void test_recv_truncated_frame(void **state)
{
    (void)state;
    int sv[2];
    struct nb_ipc_rbuf b;
    struct nb_str payload;
    nb_ipc_rbuf_init(&b);

    /* Two bytes of a length word, then EOF. */
    make_pair(sv);
    assert_int_equal(nb_ipc_send(sv[0], "\x10\x00", 2), NB_OK);
    close(sv[0]);
    assert_int_equal(nb_ipc_recv_frame(sv[1], &b, -1, &payload), NB_ERR_IO);
    close(sv[1]);

    /* A whole length word announcing 16 bytes, 3 sent, then EOF. */
    make_pair(sv);
    assert_int_equal(nb_ipc_send(sv[0], "\x10\x00\x00\x00" "abc", 7), NB_OK);
    close(sv[0]);
    assert_int_equal(nb_ipc_recv_frame(sv[1], &b, -1, &payload), NB_ERR_IO);
    close(sv[1]);
    nb_ipc_rbuf_cleanup(&b);
}

static void test_recv_oversize(void **state)
{
    (void)state;
    int sv[2];
    make_pair(sv);
    char hdr[4];
    le32(hdr, NB_IPC_MAX_FRAME + 1);
    assert_int_equal(nb_ipc_send(sv[0], hdr, 4), NB_OK);
    struct nb_ipc_rbuf b;
    nb_ipc_rbuf_init(&b);
    struct nb_str payload;
    assert_int_equal(nb_ipc_recv_frame(sv[1], &b, -1, &payload), NB_ERR_TOO_LARGE);
    assert_true(b.cap < 1024 * 1024); /* nothing was allocated for it */
    close(sv[0]);
    close(sv[1]);
    nb_ipc_rbuf_cleanup(&b);
}

static void test_recv_timeout(void **state)
{
    (void)state;
    int sv[2];
    make_pair(sv);
    struct nb_ipc_rbuf b;
    nb_ipc_rbuf_init(&b);
    struct nb_str payload;
    int64_t t0 = nb_clock_mono_us();
    assert_int_equal(nb_ipc_recv_frame(sv[1], &b, t0 + 50000, &payload), NB_IPC_TIMEOUT);
    int64_t took = nb_clock_mono_us() - t0;
    assert_true(took >= 50000);
    assert_true(took < 2000000);
    /* Half a frame, then silence: also a timeout. */
    assert_int_equal(nb_ipc_send(sv[0], "\x08\x00\x00\x00" "ab", 6), NB_OK);
    assert_int_equal(nb_ipc_recv_frame(sv[1], &b, nb_clock_mono_us() + 20000, &payload),
                     NB_IPC_TIMEOUT);
    close(sv[0]);
    close(sv[1]);
    /* A deadline already past still returns what is there. */
    make_pair(sv);
    struct nb_ipc_writer w;
    nb_ipc_writer_init(&w);
    nb_ipc_begin(&w);
    nb_ipc_put_str(&w, "late");
    nb_ipc_end(&w);
    assert_int_equal(nb_ipc_send(sv[0], w.buf.data, w.buf.len), NB_OK);
    assert_int_equal(nb_ipc_recv_frame(sv[1], &b, nb_clock_mono_us() - 1000, &payload), NB_OK);
    close(sv[0]);
    close(sv[1]);
    nb_ipc_writer_cleanup(&w);
    nb_ipc_rbuf_cleanup(&b);
}

static void test_recv_extra_bytes(void **state)
{
    (void)state;
    int sv[2];
    make_pair(sv);
    struct nb_ipc_writer w;
    nb_ipc_writer_init(&w);
    nb_ipc_begin(&w);
    nb_ipc_put_str(&w, "one");
    nb_ipc_end(&w);
    /* Two frames in one write: a peer breaking the one-in-flight rule. */
    char two[64];
    memcpy(two, w.buf.data, w.buf.len);
    memcpy(two + w.buf.len, w.buf.data, w.buf.len);
    assert_int_equal(nb_ipc_send(sv[0], two, 2 * w.buf.len), NB_OK);
    struct nb_ipc_rbuf b;
    nb_ipc_rbuf_init(&b);
    struct nb_str payload;
    assert_int_equal(nb_ipc_recv_frame(sv[1], &b, -1, &payload), NB_ERR_INVALID);
    close(sv[0]);
    close(sv[1]);
    nb_ipc_writer_cleanup(&w);
    nb_ipc_rbuf_cleanup(&b);
}

struct sender {
    int fd;
    const char *data;
    size_t len;
    enum nb_err rc;
};

static void *send_thread(void *arg)
{
    struct sender *s = arg;
    s->rc = nb_ipc_send(s->fd, s->data, s->len);
    return NULL;
}

static void test_large_frame(void **state)
{
    (void)state;
    int sv[2];
    make_pair(sv);
    size_t big = 5u * 1024 * 1024;
    char *body = malloc(big);
    for (size_t i = 0; i < big; i++) body[i] = (char)(i * 7);
    struct nb_ipc_writer w;
    nb_ipc_writer_init(&w);
    nb_ipc_begin(&w);
    nb_ipc_put_str(&w, "head");
    nb_ipc_put(&w, body, big);
    assert_int_equal(nb_ipc_end(&w), NB_OK);
    /* Larger than the socket buffer: the sender blocks until we read. */
    struct sender s = { sv[0], w.buf.data, w.buf.len, NB_ERR_IO };
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, send_thread, &s), 0);
    struct nb_ipc_rbuf b;
    nb_ipc_rbuf_init(&b);
    struct nb_str payload;
    assert_int_equal(nb_ipc_recv_frame(sv[1], &b, nb_clock_mono_us() + 10000000, &payload),
                     NB_OK);
    pthread_join(t, NULL);
    assert_int_equal(s.rc, NB_OK);
    struct nb_ipc_reader r;
    nb_ipc_reader_init(&r, payload.ptr, payload.len);
    struct nb_str f;
    assert_int_equal(nb_ipc_get(&r, &f), NB_OK);
    assert_int_equal(nb_ipc_get(&r, &f), NB_OK);
    assert_int_equal(f.len, big);
    assert_memory_equal(f.ptr, body, big);
    assert_true(nb_ipc_reader_done(&r));

    /* Storage for a big frame is given back at the next small one. */
    nb_ipc_begin(&w);
    assert_true(w.buf.cap <= 1024 * 1024);
    nb_ipc_put_str(&w, "small");
    nb_ipc_end(&w);
    assert_int_equal(nb_ipc_send(sv[0], w.buf.data, w.buf.len), NB_OK);
    assert_int_equal(nb_ipc_recv_frame(sv[1], &b, -1, &payload), NB_OK);
    assert_true(b.cap <= 1024 * 1024);
    close(sv[0]);
    close(sv[1]);
    free(body);
    nb_ipc_writer_cleanup(&w);
    nb_ipc_rbuf_cleanup(&b);
}

static void test_send_to_dead_peer(void **state)
{
    (void)state;
    int sv[2];
    make_pair(sv);
    close(sv[1]);
    /* Without MSG_NOSIGNAL this would kill the test with SIGPIPE. */
    assert_int_equal(nb_ipc_send(sv[0], "abcd", 4), NB_ERR_IO);
    close(sv[0]);

    /* Not a socket: falls back to write(). */
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(nb_ipc_send(p[1], "abcd", 4), NB_OK);
    char got[4];
    assert_int_equal(read(p[0], got, 4), 4);
    assert_memory_equal(got, "abcd", 4);
    close(p[0]);
    close(p[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_empty_payload),
        cmocka_unit_test(test_truncated_length_word),
        cmocka_unit_test(test_field_past_payload),
        cmocka_unit_test(test_missing_nul),
        cmocka_unit_test(test_integer_size_checked),
        cmocka_unit_test(test_forged_count),
        cmocka_unit_test(test_writer_limits),
        cmocka_unit_test(test_reader_random_input),
        cmocka_unit_test(test_send_recv),
        cmocka_unit_test(test_recv_truncated_frame),
        cmocka_unit_test(test_recv_oversize),
        cmocka_unit_test(test_recv_timeout),
        cmocka_unit_test(test_recv_extra_bytes),
        cmocka_unit_test(test_large_frame),
        cmocka_unit_test(test_send_to_dead_peer),
    };
    return cmocka_run_group_tests_name("host/ipc", tests, NULL, NULL);
}
