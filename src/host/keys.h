/* Function keys: the master key (_master), host keys, system keys
 * (<extension>_extension) and per-function keys. Values are 32 bytes from
 * the CSPRNG in URL-safe base64 without padding, generated on first start
 * and persisted in the store's kv space (namespace "host.keys"):
 *   "host"        {"masterKey":{"name":"_master","value":..},
 *                  "functionKeys":[{"name","value"}..],"systemKeys":[..]}
 *   "fn:<name>"   {"keys":[{"name","value"}..]}
 * (the shapes of the Azure host's secret files). An nb_keys keeps a cached
 * copy under a mutex and writes through; after a miss it reloads from the
 * store at most once a second, so `nimbus keys` changes made offline show
 * up in a running server. Comparisons are constant-time. */
#ifndef NB_HOST_KEYS_H
#define NB_HOST_KEYS_H
#include <stdbool.h>
#include <stddef.h>
#include "core/clock.h"
#include "core/err.h"

struct nb_store;
struct nb_keys;

enum nb_key_scope {
    NB_KEYS_HOST,     /* host function keys ("functionKeys"): valid for every function */
    NB_KEYS_SYSTEM,   /* systemKeys */
    NB_KEYS_FUNCTION, /* keys of one function */
    NB_KEYS_MASTER,   /* the one _master key */
};

/* What a presented key grants. */
enum nb_key_grant {
    NB_GRANT_NONE,
    NB_GRANT_FUNCTION, /* a host key, or a key of the function asked about */
    NB_GRANT_SYSTEM,   /* a system key */
    NB_GRANT_ADMIN,    /* the master key */
};

struct nb_key {
    char *name;
    char *value;
};

struct nb_key_list {
    struct nb_key *items;
    size_t n;
};
void nb_key_list_cleanup(struct nb_key_list *l);

/* Load (creating _master and the host "default" key on first use). */
enum nb_err nb_keys_open(struct nb_store *store, struct nb_keys **out);
void nb_keys_close(struct nb_keys *k);
/* Give `function` a "default" key if it has no keys yet. */
enum nb_err nb_keys_ensure_function(struct nb_keys *k, const char *function);

/* What `key` grants for `function` (NULL: no function context). Order as
 * the Azure host: master, system, host, then the function's own keys. */
enum nb_key_grant nb_keys_check(struct nb_keys *k, const char *function, const char *key);

/* List a scope (function is used for NB_KEYS_FUNCTION only). */
enum nb_err nb_keys_list(struct nb_keys *k, enum nb_key_scope scope, const char *function,
                         struct nb_key_list *out);
/* One key's value (heap). NB_ERR_NOT_FOUND when absent. For NB_KEYS_MASTER
 * the name is ignored. */
enum nb_err nb_keys_get(struct nb_keys *k, enum nb_key_scope scope, const char *function,
                        const char *name, char **value);
/* Create or replace; value NULL generates one. *created tells which.
 * *value_out (if given) gets the stored value (heap). NB_ERR_INVALID for a
 * bad name or value (names: 1..128 of [A-Za-z0-9_.-]; values: 16..128
 * characters of [A-Za-z0-9_=-]... see keys.c); NB_KEYS_MASTER renews _master. */
enum nb_err nb_keys_set(struct nb_keys *k, enum nb_key_scope scope, const char *function,
                        const char *name, const char *value, bool *created, char **value_out);
/* NB_ERR_NOT_FOUND when absent; NB_ERR_INVALID for _master. */
enum nb_err nb_keys_delete(struct nb_keys *k, enum nb_key_scope scope, const char *function,
                           const char *name);
/* Constant-time equality of two NUL-terminated strings (length leaks). */
bool nb_keys_equal(const char *a, const char *b);

#endif
