/* The table of storage accounts (see accounts.h). Owns every name and key
 * string in it; entries are built complete before they are stored, so a
 * failed add leaves the table as it was. Read-only once the server runs, so
 * lookups take no lock. */
#include "http/accounts.h"
#include "core/encode.h"
#include "core/mem.h"
#include <stdlib.h>
#include <string.h>

#define MAX_NAME 63 /* Azure allows 3..24; Azurite takes anything reasonable */

static void account_free(struct nb_account *acc)
{
    free(acc->name);
    for (int i = 0; i < 2; i++) {
        free(acc->key_b64[i]);
        free(acc->key[i]);
    }
    memset(acc, 0, sizeof(*acc));
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static void trim(const char **s, size_t *n)
{
    while (*n && is_space(**s)) {
        (*s)++;
        (*n)--;
    }
    while (*n && is_space((*s)[*n - 1]))
        (*n)--;
}

/* Account names appear as the first path segment and in signed strings, so
 * keep them to letters and digits: nothing that needs %-encoding, no '-' that
 * could be confused with the "-secondary" suffix. */
static bool valid_name(const char *s, size_t n)
{
    if (n == 0 || n > MAX_NAME) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
            return false;
    }
    return true;
}

static bool set_key(struct nb_account *acc, int slot, const char *s, size_t n)
{
    unsigned char *raw;
    size_t raw_len;
    if (n == 0 || !nb_base64_decode(s, n, &raw, &raw_len)) return false;
    if (raw_len == 0) {
        free(raw);
        return false;
    }
    acc->key_b64[slot] = nb_strndup(s, n);
    acc->key[slot] = raw;
    acc->key_len[slot] = raw_len;
    return true;
}

/* Parse "NAME:KEY[:KEY2]" (n bytes, not NUL-terminated) into *acc. */
static enum nb_err parse_spec(const char *spec, size_t n, struct nb_account *acc)
{
    const char *field[3];
    size_t flen[3];
    size_t nf = 0;
    const char *p = spec, *end = spec + n;

    memset(acc, 0, sizeof(*acc));
    for (;;) {
        const char *colon = memchr(p, ':', (size_t)(end - p));
        const char *stop = colon ? colon : end;
        if (nf == 3) return NB_ERR_INVALID;
        field[nf] = p;
        flen[nf] = (size_t)(stop - p);
        trim(&field[nf], &flen[nf]);
        nf++;
        if (!colon) break;
        p = colon + 1;
    }
    if (nf < 2 || !valid_name(field[0], flen[0])) return NB_ERR_INVALID;
    acc->name = nb_strndup(field[0], flen[0]);
    for (size_t i = 1; i < nf; i++) {
        if (!set_key(acc, (int)i - 1, field[i], flen[i])) {
            account_free(acc);
            return NB_ERR_INVALID;
        }
    }
    return NB_OK;
}

/* Takes ownership of *acc whatever the outcome. */
static enum nb_err store(struct nb_accounts *a, struct nb_account *acc)
{
    struct nb_account *slot = NULL;
    for (size_t i = 0; i < a->n && !slot; i++)
        if (strcmp(a->items[i].name, acc->name) == 0) slot = &a->items[i];
    if (slot) {
        account_free(slot);
    } else if (a->n == NB_MAX_ACCOUNTS) {
        account_free(acc);
        return NB_ERR_TOO_LARGE;
    } else {
        slot = &a->items[a->n++];
    }
    *slot = *acc;
    return NB_OK;
}

void nb_accounts_init(struct nb_accounts *a)
{
    memset(a, 0, sizeof(*a));
    enum nb_err rc = nb_accounts_add_spec(a, NB_DEV_ACCOUNT ":" NB_DEV_KEY);
    (void)rc; /* a constant that is known to parse */
}

void nb_accounts_cleanup(struct nb_accounts *a)
{
    for (size_t i = 0; i < a->n; i++)
        account_free(&a->items[i]);
    a->n = 0;
}

enum nb_err nb_accounts_add_spec(struct nb_accounts *a, const char *spec)
{
    struct nb_account acc;
    enum nb_err rc = parse_spec(spec, strlen(spec), &acc);
    if (rc) return rc;
    return store(a, &acc);
}

/* All entries are validated before any is stored, so a typo in the variable
 * does not leave the server with half of its accounts. Empty entries (a
 * trailing ';') are skipped. */
enum nb_err nb_accounts_add_env(struct nb_accounts *a, const char *value)
{
    for (int pass = 0; pass < 2; pass++) {
        const char *p = value;
        for (;;) {
            const char *semi = strchr(p, ';');
            const char *s = p;
            size_t n = semi ? (size_t)(semi - p) : strlen(p);
            trim(&s, &n);
            if (n) {
                struct nb_account acc;
                enum nb_err rc = parse_spec(s, n, &acc);
                if (rc) return rc;
                if (pass == 0) {
                    account_free(&acc);
                } else {
                    rc = store(a, &acc);
                    if (rc) return rc;
                }
            }
            if (!semi) break;
            p = semi + 1;
        }
    }
    return NB_OK;
}

const struct nb_account *nb_accounts_find(const struct nb_accounts *a, const char *name)
{
    if (!name) return NULL;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->items[i].name, name) == 0) return &a->items[i];
    return NULL;
}
