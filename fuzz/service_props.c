/* libFuzzer driver: partial service-properties merge and CORS parsing of
 * the result. A merged document must always parse again. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "storage/cors.h"
#include "storage/service_props.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *merged = NULL, *again = NULL;
    const char *code = NULL;
    if (nb_service_props_merge(NULL, (const char *)data, size, &merged, &code) != NB_OK)
        return 0;
    if (nb_service_props_merge(merged, merged, strlen(merged), &again, &code) != NB_OK) abort();
    struct nb_cors cors;
    if (nb_cors_parse(merged, &cors) == NB_OK) {
        (void)nb_cors_match(&cors, "http://example.test", "GET", "x-ms-meta-a,content-type");
        nb_cors_cleanup(&cors);
    }
    free(merged);
    free(again);
    return 0;
}
