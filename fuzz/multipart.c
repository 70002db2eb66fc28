/* libFuzzer driver: the table batch parser (src/table/multipart.c). Input:
 * the first line is the outer Content-Type, the rest is the body. Whatever
 * parses must point inside the input and frame back through the response
 * writer; the parser must never read outside the body (ASan checks). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "core/mem.h"
#include "table/multipart.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    const char *nl = memchr(in, '\n', size);
    size_t ct_len = nl ? (size_t)(nl - in) : size;
    char *ct = nb_strndup(in, ct_len);
    size_t off = nl ? ct_len + 1 : size;
    /* An exact-size copy so any read past the body trips ASan. */
    size_t blen = size - off;
    char *body = nb_malloc(blen ? blen : 1);
    memcpy(body, in + off, blen);

    struct nb_arena arena;
    nb_arena_init(&arena);
    struct nb_batch bt;
    const char *why = NULL;
    enum nb_err rc = nb_multipart_parse(ct, body, blen, &arena, &bt, &why);
    if (rc != NB_OK && rc != NB_ERR_INVALID && rc != NB_ERR_TOO_LARGE) abort();
    if (rc != NB_OK && !why) abort();
    if (bt.n > NB_MULTIPART_MAX_OPS) abort();
    if (rc == NB_OK) {
        struct nb_batch_result *res = nb_calloc(bt.n ? bt.n : 1, sizeof(*res));
        for (size_t i = 0; i < bt.n; i++) {
            const struct nb_batch_op *op = &bt.ops[i];
            if (!op->method || !op->path || !op->query || !op->body) abort();
            if (op->path[0] != '/') abort();
            if (op->body < body || op->body_len > blen || op->body + op->body_len > body + blen)
                abort();
            if (op->nheaders > NB_MULTIPART_MAX_HEADERS) abort();
            for (size_t h = 0; h < op->nheaders; h++)
                if (strlen(op->headers[h].value) != op->headers[h].value_len) abort();
            (void)nb_batch_op_header(op, "Content-Length");
            res[i] = (struct nb_batch_result){ 204, op->headers, op->nheaders, op->body,
                                               op->body_len };
        }
        struct nb_buf out;
        nb_buf_init(&out, 64u << 20);
        const char *rct = NULL;
        if (nb_multipart_write_response(res, bt.n, "b", "c", &arena, &out, &rct) != NB_OK) abort();
        static const char tail[] = "--changesetresponse_c--\r\n--batchresponse_b--\r\n";
        if (out.len < sizeof(tail) - 1 ||
            memcmp(out.data + out.len - (sizeof(tail) - 1), tail, sizeof(tail) - 1) != 0)
            abort();
        nb_buf_cleanup(&out);
        free(res);
    }
    nb_arena_cleanup(&arena);
    free(body);
    free(ct);
    return 0;
}
