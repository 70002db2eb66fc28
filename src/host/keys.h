/* Function keys: the master key (_master), host keys, system keys
 * (<extension>_extension) and per-function keys. Values are 32 bytes from
 * the CSPRNG in URL-safe base64 without padding, generated on first start
 * and persisted in the store's kv space (namespace "host.keys"):
 *   "host"        {"masterKey":{"name":"_master","value":..},
 *                  "functionKeys":[{"name","value"}..],"systemKeys":[..]}
 *   "fn:<name>"   {"keys":[{"name","value"}..]}   (name lowercased)
 *   "functions"   {"functions":["<name>"..]}      (which fn: records exist;
 *                                                  the kv space cannot list)
 * (the shapes of the Azure host's secret files). An nb_keys keeps a cached
 * copy under a mutex and writes through; after a miss it reloads from the
 * store at most once a second, so `nimbus keys` changes made offline show
 * up in a running server, and a cache older than a second is reloaded
 * before use, so a key deleted offline stops working within a second.
 * Comparisons are constant-time.
 *
 * As in the Azure host, key names and function names compare
 * case-insensitively (ASCII); names are kept with the case given.
 * Every function here is safe to call from any thread. */
#ifndef NB_HOST_KEYS_H
#define NB_HOST_KEYS_H
#include "core/clock.h"
#include "core/err.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct nb_store;
struct nb_keys;

#define NB_KEYS_NS "host.keys" /* the store kv namespace */
#define NB_KEYS_MASTER_NAME "_master"
#define NB_KEYS_NAME_MAX 128 /* key and function names: 1..128 chars */
#define NB_KEYS_VALUE_MIN 16 /* user-set values: 16..256 chars */
#define NB_KEYS_VALUE_MAX 256
#define NB_KEYS_PER_SCOPE_MAX 1024 /* keys in one list (host, system, a function) */

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
/* Free the items and zero the list; a zeroed list is a no-op. */
void nb_key_list_cleanup(struct nb_key_list *l);

/* Load (creating _master and the host "default" key on first use, and
 * _master alone if a stored record lacks it). The store is borrowed and
 * must outlive the nb_keys. *out is freed with nb_keys_close.
 * NB_ERR_STORE when the store fails or holds a record that is not JSON. */
enum nb_err nb_keys_open(struct nb_store *store, struct nb_keys **out);
/* NULL is a no-op. */
void nb_keys_close(struct nb_keys *k);
/* How long after a reload a missed check may reload again (default one
 * second); any check reloads once the cache is one interval old. Tests set
 * 0 to reload on every check. */
void nb_keys_set_reload_interval_us(struct nb_keys *k, int64_t us);
/* Give `function` a "default" key if it has no keys record yet (a record
 * whose keys were all deleted stays empty). NB_ERR_INVALID for a bad
 * function name, NB_ERR_STORE. */
enum nb_err nb_keys_ensure_function(struct nb_keys *k, const char *function);

/* What `key` grants for `function` (NULL: no function context). Order as
 * the Azure host: master, system, host, then the function's own keys.
 * NULL or empty key: NB_GRANT_NONE. A store failure counts as a miss.
 * `function` should be a function of the app (each one asked about is
 * cached), not arbitrary request text. */
enum nb_key_grant nb_keys_check(struct nb_keys *k, const char *function, const char *key);

/* List a scope (function is used for NB_KEYS_FUNCTION only; a function
 * without keys gives an empty list). NB_KEYS_HOST omits the master key, as
 * Azure's GET admin/host/keys; NB_KEYS_MASTER gives the one _master entry.
 * Reads the store, so changes by another process show. *out is caller's
 * (nb_key_list_cleanup), left empty on error. NB_ERR_INVALID (bad function
 * name), NB_ERR_STORE. */
enum nb_err nb_keys_list(struct nb_keys *k, enum nb_key_scope scope, const char *function,
                         struct nb_key_list *out);
/* One key's value (heap). NB_ERR_NOT_FOUND when absent. For NB_KEYS_MASTER
 * the name is ignored. NB_ERR_INVALID (bad function name), NB_ERR_STORE. */
enum nb_err nb_keys_get(struct nb_keys *k, enum nb_key_scope scope, const char *function,
                        const char *name, char **value);
/* Create or replace; value NULL generates one. *created (if given) tells
 * which. *value_out (if given) gets the stored value (heap).
 * NB_ERR_INVALID for a bad name or value, or the name _master outside
 * NB_KEYS_MASTER. Names: 1..128 of [A-Za-z0-9_.-]; values: 16..256
 * printable ASCII characters other than space, '"' and '\''.
 * NB_KEYS_MASTER renews _master (name ignored; *created is false).
 * NB_ERR_TOO_LARGE when the scope already holds NB_KEYS_PER_SCOPE_MAX keys;
 * NB_ERR_STORE (nothing changed). */
enum nb_err nb_keys_set(struct nb_keys *k, enum nb_key_scope scope, const char *function,
                        const char *name, const char *value, bool *created, char **value_out);
/* NB_ERR_NOT_FOUND when absent; NB_ERR_INVALID for _master (in any scope)
 * or a bad function name; NB_ERR_STORE. */
enum nb_err nb_keys_delete(struct nb_keys *k, enum nb_key_scope scope, const char *function,
                           const char *name);

/* Names of the functions that have a keys record, as stored (lowercase),
 * sorted. *names is a heap array of heap strings the caller frees with
 * nb_keys_names_free. NB_ERR_STORE. */
enum nb_err nb_keys_functions(struct nb_keys *k, char ***names, size_t *n);
void nb_keys_names_free(char **names, size_t n);

/* Constant-time equality of two NUL-terminated strings (length leaks). */
bool nb_keys_equal(const char *a, const char *b);
/* Syntax checks used by nb_keys_set, for callers that report errors
 * before calling it (the admin API, the CLI). */
bool nb_keys_valid_name(const char *name);
bool nb_keys_valid_value(const char *value);

#endif
