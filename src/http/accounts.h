/* Storage accounts known to this server: name plus one or two keys.
 * Read-only after start-up. devstoreaccount1 with Azurite's well-known key is
 * always present unless replaced by an account of the same name. */
#ifndef NB_HTTP_ACCOUNTS_H
#define NB_HTTP_ACCOUNTS_H
#include <stdbool.h>
#include <stddef.h>
#include "core/err.h"

#define NB_DEV_ACCOUNT "devstoreaccount1"
#define NB_DEV_KEY                                                                           \
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
#define NB_MAX_ACCOUNTS 64

struct nb_account {
    char *name;
    char *key_b64[2];          /* as configured; key_b64[1] may be NULL */
    unsigned char *key[2];     /* decoded */
    size_t key_len[2];
};

struct nb_accounts {
    struct nb_account items[NB_MAX_ACCOUNTS];
    size_t n;
};

/* Start with devstoreaccount1 only. */
void nb_accounts_init(struct nb_accounts *a);
void nb_accounts_cleanup(struct nb_accounts *a);
/* Add or replace from "NAME:BASE64KEY[:BASE64KEY2]". NB_ERR_INVALID on a bad
 * spec or key (not base64), NB_ERR_TOO_LARGE past NB_MAX_ACCOUNTS. */
enum nb_err nb_accounts_add_spec(struct nb_accounts *a, const char *spec);
/* Azurite's AZURITE_ACCOUNTS format: "acc1:key1[:key2];acc2:key1[:key2]...". */
enum nb_err nb_accounts_add_env(struct nb_accounts *a, const char *value);
/* NULL when unknown. */
const struct nb_account *nb_accounts_find(const struct nb_accounts *a, const char *name);

#endif
