/* libFuzzer driver: connection-string parsing. */
#include <stdint.h>
#include <stdlib.h>
#include "cli/connstr.h"
#include "core/mem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = nb_strndup((const char *)data, size);
    struct nb_connstr cs;
    nb_connstr_init(&cs);
    const char *why = NULL;
    (void)nb_connstr_parse(s, &cs, &why);
    nb_connstr_cleanup(&cs);
    free(s);
    return 0;
}
