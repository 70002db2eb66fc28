/* libFuzzer driver: SharedKey canonicalisation and SAS verification over an
 * arbitrary request. Input lines: method, raw path, raw query, then headers
 * as "name:value". */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "core/mem.h"
#include "http/sas.h"
#include "http/sharedkey.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *next_line(char **p)
{
    if (!*p) return NULL;
    char *line = *p;
    char *nl = strchr(line, '\n');
    if (nl) {
        *nl = '\0';
        *p = nl + 1;
    } else {
        *p = NULL;
    }
    return line;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = nb_strndup((const char *)data, size);
    char *p = s;
    struct nb_req req;
    memset(&req, 0, sizeof(req));
    nb_arena_init(&req.arena);
    char *method = next_line(&p), *path = next_line(&p), *query = next_line(&p);
    req.method = method ? method : "GET";
    req.raw_path = path ? path : "/";
    req.raw_query = query ? query : "";
    nb_req_parse_query(&req);
    struct nb_kv headers[32];
    char *line;
    while (req.nheaders < 32 && (line = next_line(&p))) {
        char *colon = strchr(line, ':');
        if (!colon) continue;
        *colon = '\0';
        headers[req.nheaders++] = (struct nb_kv){ line, colon + 1, strlen(colon + 1) };
    }
    req.headers = headers;

    struct nb_buf sts;
    nb_buf_init(&sts, 1 << 16);
    for (int svc = 0; svc < 2; svc++)
        for (int scheme = 0; scheme < 2; scheme++) {
            nb_buf_reset(&sts);
            (void)nb_sharedkey_string_to_sign(svc, scheme, "devstoreaccount1", &req,
                                              req.raw_path, &sts);
        }
    struct nb_accounts accounts;
    nb_accounts_init(&accounts);
    const char *acct = NULL;
    nb_buf_reset(&sts);
    (void)nb_sharedkey_verify(NB_STORAGE_QUEUE, &accounts, &req, &acct, &sts);
    struct nb_sas sas;
    struct nb_sas_result res;
    if (nb_sas_present(&req))
        (void)nb_sas_verify(NB_STORAGE_TABLE, &accounts, "devstoreaccount1", "mytable", &req,
                            "127.0.0.1", 1795311314000LL, NULL, NULL, &sas, &res);
    nb_accounts_cleanup(&accounts);
    nb_buf_cleanup(&sts);
    nb_arena_cleanup(&req.arena);
    free(s);
    return 0;
}
