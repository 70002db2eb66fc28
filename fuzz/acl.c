/* libFuzzer driver: SignedIdentifiers XML. Whatever parses must serialise
 * and parse back to the same policies. */
#include <libxml/parser.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "storage/acl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct nb_acl acl, again;
    const char *code = NULL;
    if (nb_acl_parse_xml((const char *)data, size, &acl, &code) != NB_OK) return 0;
    struct nb_buf b;
    nb_buf_init(&b, 1 << 20);
    if (nb_acl_to_xml(&acl, &b) != NB_OK) abort();
    if (nb_acl_parse_xml(b.data, b.len, &again, &code) != NB_OK) abort();
    if (again.n != acl.n) abort();
    for (size_t i = 0; i < acl.n; i++)
        if (strcmp(acl.items[i].id, again.items[i].id) != 0) abort();
    nb_buf_cleanup(&b);
    return 0;
}
