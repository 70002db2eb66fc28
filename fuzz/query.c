/* libFuzzer driver: the request query-string splitter, percent-decoding and
 * the ISO 8601 parser, fed the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "core/encode.h"
#include "core/mem.h"
#include "core/timefmt.h"
#include "http/request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = nb_strndup((const char *)data, size);
    struct nb_req req;
    memset(&req, 0, sizeof(req));
    nb_arena_init(&req.arena);
    req.raw_query = s;
    nb_req_parse_query(&req);
    for (size_t i = 0; i < req.nquery; i++) {
        if (!req.query[i].name || !req.query[i].value) abort();
        if (strlen(req.query[i].value) > req.query[i].value_len) abort();
    }
    char *out = nb_malloc(size + 1);
    if (nb_pct_decode((const char *)data, size, out) > size) abort();
    nb_time_ms t;
    if (nb_time_parse_iso8601((const char *)data, size, &t) == NB_OK) {
        char iso[NB_ISO8601_LEN], rfc[NB_RFC1123_LEN];
        nb_time_iso8601(t, iso);
        nb_time_rfc1123(t, rfc);
    }
    free(out);
    nb_arena_cleanup(&req.arena);
    free(s);
    return 0;
}
