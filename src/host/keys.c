/* Function keys (keys.h). Owns the store's "host.keys" kv namespace and an
 * in-memory copy of it; touches nothing else in the store. Invariants: the
 * cache only holds what was read from the store or written to it with
 * success, and every change re-reads the record it edits first, so an edit
 * made meanwhile by another process (`nimbus keys`) is kept, not overwritten.
 * All state is behind k->mu; store calls are made under it (they never call
 * back into us). */
#include "host/keys.h"
#include "core/encode.h"
#include "core/mem.h"
#include "core/random.h"
#include "store/store.h"
#include <jansson.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define KEY_BYTES 32              /* 43 characters once encoded */
#define DEFAULT_RELOAD_US 1000000 /* at most one reload a second on misses */
#define MAX_AGE_INTERVALS 1       /* a hit on a cache older than that reloads first */
#define MAX_CACHED_FNS 4096       /* oldest entry dropped beyond this */
#define HOST_KEY "host"
#define INDEX_KEY "functions"

struct host_secrets {
    char *master; /* NULL only when a stored record lacks it */
    struct nb_key_list fkeys, skeys;
};

struct fn_entry {
    char *name;  /* lowercase */
    bool exists; /* the store holds a record for it */
    struct nb_key_list keys;
};

struct nb_keys {
    struct nb_store *store;
    pthread_mutex_t mu;
    struct host_secrets host;
    struct fn_entry *fns;
    size_t nfns, cap;
    int64_t reload_interval_us;
    int64_t last_reload_us;
};

/* ---- values, names, comparison ---------------------------------------- */

bool nb_keys_equal(const char *a, const char *b)
{
    if (!a || !b) return false;
    size_t la = strlen(a), lb = strlen(b);
    if (la != lb) return false;
    return CRYPTO_memcmp(a, b, la) == 0;
}

bool nb_keys_valid_name(const char *name)
{
    if (!name) return false;
    size_t n = strlen(name);
    if (n == 0 || n > NB_KEYS_NAME_MAX) return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '.' || c == '-';
        if (!ok) return false;
    }
    return true;
}

bool nb_keys_valid_value(const char *value)
{
    if (!value) return false;
    size_t n = strlen(value);
    if (n < NB_KEYS_VALUE_MIN || n > NB_KEYS_VALUE_MAX) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)value[i];
        if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\'') return false;
    }
    return true;
}

static bool is_master_name(const char *name)
{
    return name && strcasecmp(name, NB_KEYS_MASTER_NAME) == 0;
}

/* Validate a function name and lowercase it into out (NB_KEYS_NAME_MAX+1). */
static bool lower_fn(const char *function, char *out)
{
    if (!nb_keys_valid_name(function)) return false;
    size_t i = 0;
    for (; function[i]; i++) {
        char c = function[i];
        out[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    out[i] = '\0';
    return true;
}

static char *gen_value(void)
{
    unsigned char b[KEY_BYTES];
    nb_random_bytes(b, sizeof(b));
    char *s = nb_base64url_encode(b, sizeof(b));
    OPENSSL_cleanse(b, sizeof(b));
    return s;
}

/* ---- key lists ---------------------------------------------------------- */

void nb_key_list_cleanup(struct nb_key_list *l)
{
    if (!l) return;
    for (size_t i = 0; i < l->n; i++) {
        free(l->items[i].name);
        free(l->items[i].value);
    }
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

static void list_add(struct nb_key_list *l, const char *name, const char *value)
{
    l->items = nb_realloc(l->items, (l->n + 1) * sizeof(*l->items));
    l->items[l->n].name = nb_strdup(name);
    l->items[l->n].value = nb_strdup(value);
    l->n++;
}

static long list_find(const struct nb_key_list *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcasecmp(l->items[i].name, name) == 0) return (long)i;
    return -1;
}

static void list_remove(struct nb_key_list *l, size_t i)
{
    free(l->items[i].name);
    free(l->items[i].value);
    memmove(&l->items[i], &l->items[i + 1], (l->n - i - 1) * sizeof(*l->items));
    l->n--;
}

static void list_copy(struct nb_key_list *dst, const struct nb_key_list *src)
{
    memset(dst, 0, sizeof(*dst));
    for (size_t i = 0; i < src->n; i++)
        list_add(dst, src->items[i].name, src->items[i].value);
}

/* Every key is compared, so the time taken does not say which one matched. */
static bool list_has_value(const struct nb_key_list *l, const char *value)
{
    bool hit = false;
    for (size_t i = 0; i < l->n; i++)
        hit |= nb_keys_equal(l->items[i].value, value);
    return hit;
}

/* Create or replace name in l. */
static enum nb_err list_put(struct nb_key_list *l, const char *name, const char *value,
                            bool *created)
{
    long i = list_find(l, name);
    if (i >= 0) {
        free(l->items[i].value);
        l->items[i].value = nb_strdup(value);
        *created = false;
        return NB_OK;
    }
    if (l->n >= NB_KEYS_PER_SCOPE_MAX) return NB_ERR_TOO_LARGE;
    list_add(l, name, value);
    *created = true;
    return NB_OK;
}

/* ---- JSON shapes ---------------------------------------------------------- */

/* Entries without a string name and a non-empty string value are skipped:
 * a hand-edited record should cost its bad entries, not every key. */
static void list_from_json(const json_t *arr, struct nb_key_list *out)
{
    memset(out, 0, sizeof(*out));
    if (!json_is_array(arr)) return;
    size_t i;
    const json_t *e;
    json_array_foreach(arr, i, e)
    {
        const char *name = json_string_value(json_object_get(e, "name"));
        const char *value = json_string_value(json_object_get(e, "value"));
        if (name && *name && value && *value && out->n < NB_KEYS_PER_SCOPE_MAX)
            list_add(out, name, value);
    }
}

static json_t *key_json(const char *name, const char *value)
{
    return json_pack("{s:s, s:s}", "name", name, "value", value);
}

static json_t *list_to_json(const struct nb_key_list *l)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < l->n; i++)
        json_array_append_new(arr, key_json(l->items[i].name, l->items[i].value));
    return arr;
}

static void host_cleanup(struct host_secrets *hs)
{
    free(hs->master);
    hs->master = NULL;
    nb_key_list_cleanup(&hs->fkeys);
    nb_key_list_cleanup(&hs->skeys);
}

static void host_copy(struct host_secrets *dst, const struct host_secrets *src)
{
    dst->master = src->master ? nb_strdup(src->master) : NULL;
    list_copy(&dst->fkeys, &src->fkeys);
    list_copy(&dst->skeys, &src->skeys);
}

static json_t *parse_object(const char *text)
{
    json_t *root = json_loads(text, 0, NULL);
    if (root && !json_is_object(root)) {
        json_decref(root);
        root = NULL;
    }
    return root;
}

/* Read the stored value of key into *text; *found false when unset. */
static enum nb_err kv_read(struct nb_store *s, const char *key, char **text, bool *found)
{
    *text = NULL;
    *found = false;
    enum nb_err rc = nb_store_kv_get(s, NB_KEYS_NS, key, text);
    if (rc == NB_ERR_NOT_FOUND) return NB_OK;
    if (rc) return rc;
    *found = true;
    return NB_OK;
}

static enum nb_err kv_write(struct nb_store *s, const char *key, json_t *root)
{
    char *text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (!text) return NB_ERR_NOMEM;
    enum nb_err rc = nb_store_kv_set(s, NB_KEYS_NS, key, text);
    free(text);
    return rc;
}

/* Load the host record into hs (zeroed when not found). */
static enum nb_err host_load(struct nb_store *s, struct host_secrets *hs, bool *found)
{
    memset(hs, 0, sizeof(*hs));
    char *text = NULL;
    json_t *root = NULL;
    enum nb_err rc = kv_read(s, HOST_KEY, &text, found);
    if (rc || !*found) goto cleanup;
    root = parse_object(text);
    if (!root) {
        rc = NB_ERR_STORE;
        goto cleanup;
    }
    const char *m = json_string_value(json_object_get(json_object_get(root, "masterKey"), "value"));
    if (m && *m) hs->master = nb_strdup(m);
    list_from_json(json_object_get(root, "functionKeys"), &hs->fkeys);
    list_from_json(json_object_get(root, "systemKeys"), &hs->skeys);
cleanup:
    json_decref(root);
    free(text);
    return rc;
}

static enum nb_err host_save(struct nb_store *s, const struct host_secrets *hs)
{
    json_t *root = json_object();
    if (hs->master)
        json_object_set_new(root, "masterKey", key_json(NB_KEYS_MASTER_NAME, hs->master));
    json_object_set_new(root, "functionKeys", list_to_json(&hs->fkeys));
    json_object_set_new(root, "systemKeys", list_to_json(&hs->skeys));
    return kv_write(s, HOST_KEY, root);
}

static enum nb_err fn_load(struct nb_store *s, const char *lname, struct nb_key_list *out,
                           bool *found)
{
    memset(out, 0, sizeof(*out));
    char *key = nb_asprintf("fn:%s", lname);
    char *text = NULL;
    json_t *root = NULL;
    enum nb_err rc = kv_read(s, key, &text, found);
    if (rc || !*found) goto cleanup;
    root = parse_object(text);
    if (!root) {
        rc = NB_ERR_STORE;
        goto cleanup;
    }
    list_from_json(json_object_get(root, "keys"), out);
cleanup:
    json_decref(root);
    free(text);
    free(key);
    return rc;
}

static enum nb_err fn_save(struct nb_store *s, const char *lname, const struct nb_key_list *l)
{
    char *key = nb_asprintf("fn:%s", lname);
    json_t *root = json_object();
    json_object_set_new(root, "keys", list_to_json(l));
    enum nb_err rc = kv_write(s, key, root);
    free(key);
    return rc;
}

/* ---- the function index ----------------------------------------------- */

void nb_keys_names_free(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static enum nb_err index_load(struct nb_store *s, char ***names, size_t *n)
{
    *names = NULL;
    *n = 0;
    char *text = NULL;
    json_t *root = NULL;
    bool found;
    enum nb_err rc = kv_read(s, INDEX_KEY, &text, &found);
    if (rc || !found) goto cleanup;
    root = parse_object(text);
    if (!root) {
        rc = NB_ERR_STORE;
        goto cleanup;
    }
    const json_t *arr = json_object_get(root, "functions");
    size_t i;
    const json_t *e;
    if (json_is_array(arr)) *names = nb_calloc(json_array_size(arr), sizeof(char *));
    json_array_foreach(arr, i, e)
    {
        const char *name = json_string_value(e);
        if (name && *name) (*names)[(*n)++] = nb_strdup(name);
    }
cleanup:
    json_decref(root);
    free(text);
    return rc;
}

/* Record that lname has a keys record (re-read first: another process may
 * have added names since). */
static enum nb_err index_add(struct nb_store *s, const char *lname)
{
    char **names = NULL;
    size_t n = 0;
    enum nb_err rc = index_load(s, &names, &n);
    if (rc) goto cleanup;
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], lname) == 0) goto cleanup;
    names = nb_realloc(names, (n + 1) * sizeof(char *));
    names[n++] = nb_strdup(lname);
    qsort(names, n, sizeof(char *), cmp_str);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_string(names[i]));
    json_t *root = json_object();
    json_object_set_new(root, "functions", arr);
    rc = kv_write(s, INDEX_KEY, root);
cleanup:
    nb_keys_names_free(names, n);
    return rc;
}

enum nb_err nb_keys_functions(struct nb_keys *k, char ***names, size_t *n)
{
    pthread_mutex_lock(&k->mu);
    enum nb_err rc = index_load(k->store, names, n);
    pthread_mutex_unlock(&k->mu);
    return rc;
}

/* ---- the function cache (caller holds k->mu) ------------------------- */

static struct fn_entry *fn_find(struct nb_keys *k, const char *lname)
{
    for (size_t i = 0; i < k->nfns; i++)
        if (strcmp(k->fns[i].name, lname) == 0) return &k->fns[i];
    return NULL;
}

/* Store what was read or written for lname; takes over *keys. */
static struct fn_entry *fn_cache_put(struct nb_keys *k, const char *lname, bool exists,
                                     struct nb_key_list *keys)
{
    struct fn_entry *e = fn_find(k, lname);
    if (!e) {
        if (k->nfns >= MAX_CACHED_FNS) {
            free(k->fns[0].name);
            nb_key_list_cleanup(&k->fns[0].keys);
            memmove(&k->fns[0], &k->fns[1], (k->nfns - 1) * sizeof(*k->fns));
            k->nfns--;
        }
        if (k->nfns == k->cap) {
            k->cap = k->cap ? 2 * k->cap : 8;
            k->fns = nb_realloc(k->fns, k->cap * sizeof(*k->fns));
        }
        e = &k->fns[k->nfns++];
        memset(e, 0, sizeof(*e));
        e->name = nb_strdup(lname);
    }
    nb_key_list_cleanup(&e->keys);
    e->keys = *keys;
    e->exists = exists;
    memset(keys, 0, sizeof(*keys));
    return e;
}

/* The cached entry for lname, loading it on first use; NULL if the store
 * failed. */
static struct fn_entry *fn_get(struct nb_keys *k, const char *lname)
{
    struct fn_entry *e = fn_find(k, lname);
    if (e) return e;
    struct nb_key_list l;
    bool found;
    if (fn_load(k->store, lname, &l, &found)) return NULL;
    return fn_cache_put(k, lname, found, &l);
}

/* Refresh the host secrets from the store. A record that vanished leaves
 * the cache alone (we never run without a master key). */
static enum nb_err host_refresh(struct nb_keys *k)
{
    struct host_secrets hs;
    bool found;
    enum nb_err rc = host_load(k->store, &hs, &found);
    if (rc || !found) return rc;
    host_cleanup(&k->host);
    k->host = hs;
    return NB_OK;
}

static void reload(struct nb_keys *k)
{
    (void)host_refresh(k);
    for (size_t i = 0; i < k->nfns; i++) {
        struct nb_key_list l;
        bool found;
        if (fn_load(k->store, k->fns[i].name, &l, &found)) continue;
        nb_key_list_cleanup(&k->fns[i].keys);
        k->fns[i].keys = l;
        k->fns[i].exists = found;
    }
}

/* ---- open / close --------------------------------------------------------- */

enum nb_err nb_keys_open(struct nb_store *store, struct nb_keys **out)
{
    *out = NULL;
    struct nb_keys *k = nb_calloc(1, sizeof(*k));
    k->store = store;
    k->reload_interval_us = DEFAULT_RELOAD_US;
    pthread_mutex_init(&k->mu, NULL);
    bool found;
    enum nb_err rc = host_load(store, &k->host, &found);
    if (rc) goto cleanup;
    if (!found || !k->host.master) {
        if (!found) {
            char *v = gen_value();
            list_add(&k->host.fkeys, "default", v);
            free(v);
        }
        k->host.master = gen_value();
        rc = host_save(store, &k->host);
        if (rc) goto cleanup;
    }
    k->last_reload_us = nb_clock_mono_us();
    *out = k;
    k = NULL;
cleanup:
    nb_keys_close(k);
    return rc;
}

void nb_keys_close(struct nb_keys *k)
{
    if (!k) return;
    host_cleanup(&k->host);
    for (size_t i = 0; i < k->nfns; i++) {
        free(k->fns[i].name);
        nb_key_list_cleanup(&k->fns[i].keys);
    }
    free(k->fns);
    pthread_mutex_destroy(&k->mu);
    free(k);
}

void nb_keys_set_reload_interval_us(struct nb_keys *k, int64_t us)
{
    if (us < 0) us = 0;
    if (us > INT64_MAX / MAX_AGE_INTERVALS) us = INT64_MAX / MAX_AGE_INTERVALS;
    pthread_mutex_lock(&k->mu);
    k->reload_interval_us = us;
    pthread_mutex_unlock(&k->mu);
}

/* ---- check -------------------------------------------------------------- */

/* Every list is compared in full; precedence is applied afterwards. */
static enum nb_key_grant match(struct nb_keys *k, const char *lname, const char *key)
{
    bool m = k->host.master && nb_keys_equal(k->host.master, key);
    bool s = list_has_value(&k->host.skeys, key);
    bool h = list_has_value(&k->host.fkeys, key);
    bool f = false;
    if (lname) {
        struct fn_entry *e = fn_get(k, lname);
        if (e) f = list_has_value(&e->keys, key);
    }
    if (m) return NB_GRANT_ADMIN;
    if (s) return NB_GRANT_SYSTEM;
    if (h || f) return NB_GRANT_FUNCTION;
    return NB_GRANT_NONE;
}

enum nb_key_grant nb_keys_check(struct nb_keys *k, const char *function, const char *key)
{
    if (!key || !*key) return NB_GRANT_NONE;
    char lname[NB_KEYS_NAME_MAX + 1];
    /* A function name that cannot have keys still gets the host keys. */
    const char *fn = function && lower_fn(function, lname) ? lname : NULL;
    pthread_mutex_lock(&k->mu);
    int64_t now = nb_clock_mono_us();
    /* A hit never reloads, so a key revoked by another process would go on
     * working; a cache this old is refreshed before it is trusted. */
    if (now - k->last_reload_us >= MAX_AGE_INTERVALS * k->reload_interval_us) {
        k->last_reload_us = now;
        reload(k);
    }
    enum nb_key_grant g = match(k, fn, key);
    if (g == NB_GRANT_NONE && now - k->last_reload_us >= k->reload_interval_us) {
        k->last_reload_us = now;
        reload(k);
        g = match(k, fn, key);
    }
    pthread_mutex_unlock(&k->mu);
    return g;
}

/* ---- list / get ------------------------------------------------------------ */

/* Fresh copy of one scope's list into out (k->mu held). */
static enum nb_err read_scope(struct nb_keys *k, enum nb_key_scope scope, const char *lname,
                              struct nb_key_list *out)
{
    memset(out, 0, sizeof(*out));
    if (scope == NB_KEYS_FUNCTION) {
        struct nb_key_list l;
        bool found;
        enum nb_err rc = fn_load(k->store, lname, &l, &found);
        if (rc) return rc;
        struct fn_entry *e = fn_cache_put(k, lname, found, &l);
        list_copy(out, &e->keys);
        return NB_OK;
    }
    enum nb_err rc = host_refresh(k);
    if (rc) return rc;
    switch (scope) {
    case NB_KEYS_HOST: list_copy(out, &k->host.fkeys); break;
    case NB_KEYS_SYSTEM: list_copy(out, &k->host.skeys); break;
    default:
        if (k->host.master) list_add(out, NB_KEYS_MASTER_NAME, k->host.master);
        break;
    }
    return NB_OK;
}

static enum nb_err scope_fn(enum nb_key_scope scope, const char *function, char *lname)
{
    if (scope != NB_KEYS_FUNCTION) return NB_OK;
    return lower_fn(function, lname) ? NB_OK : NB_ERR_INVALID;
}

enum nb_err nb_keys_list(struct nb_keys *k, enum nb_key_scope scope, const char *function,
                         struct nb_key_list *out)
{
    memset(out, 0, sizeof(*out));
    char lname[NB_KEYS_NAME_MAX + 1];
    enum nb_err rc = scope_fn(scope, function, lname);
    if (rc) return rc;
    pthread_mutex_lock(&k->mu);
    rc = read_scope(k, scope, lname, out);
    pthread_mutex_unlock(&k->mu);
    return rc;
}

enum nb_err nb_keys_get(struct nb_keys *k, enum nb_key_scope scope, const char *function,
                        const char *name, char **value)
{
    *value = NULL;
    struct nb_key_list l = {0};
    char lname[NB_KEYS_NAME_MAX + 1];
    enum nb_err rc = scope_fn(scope, function, lname);
    if (rc) return rc;
    if (scope != NB_KEYS_MASTER && !name) return NB_ERR_NOT_FOUND;
    pthread_mutex_lock(&k->mu);
    rc = read_scope(k, scope, lname, &l);
    pthread_mutex_unlock(&k->mu);
    if (rc) goto cleanup;
    long i = scope == NB_KEYS_MASTER ? (l.n ? 0 : -1) : list_find(&l, name);
    if (i < 0) {
        rc = NB_ERR_NOT_FOUND;
        goto cleanup;
    }
    *value = nb_strdup(l.items[i].value);
cleanup:
    nb_key_list_cleanup(&l);
    return rc;
}

/* ---- set / delete / ensure ------------------------------------------------- */

/* Apply an edit to the host record: re-read it, edit, write, then cache.
 * The edit is a set (value non-NULL) or a delete (value NULL). */
static enum nb_err host_edit(struct nb_keys *k, enum nb_key_scope scope, const char *name,
                             const char *value, bool *created)
{
    struct host_secrets hs;
    bool found;
    enum nb_err rc = host_load(k->store, &hs, &found);
    if (rc) return rc;
    if (!found) host_copy(&hs, &k->host);
    if (scope == NB_KEYS_MASTER) {
        free(hs.master);
        hs.master = nb_strdup(value);
        *created = false;
    } else {
        struct nb_key_list *l = scope == NB_KEYS_HOST ? &hs.fkeys : &hs.skeys;
        if (value) {
            rc = list_put(l, name, value, created);
        } else {
            long i = list_find(l, name);
            if (i < 0)
                rc = NB_ERR_NOT_FOUND;
            else
                list_remove(l, (size_t)i);
        }
        if (rc) goto cleanup;
    }
    rc = host_save(k->store, &hs);
    if (rc) goto cleanup;
    host_cleanup(&k->host);
    k->host = hs;
    memset(&hs, 0, sizeof(hs));
cleanup:
    host_cleanup(&hs);
    return rc;
}

/* The same for a function's record; a new record is entered in the index
 * first, so a failure can leave an empty index entry but never a record
 * that listings miss. */
static enum nb_err fn_edit(struct nb_keys *k, const char *lname, const char *name,
                           const char *value, bool *created)
{
    struct nb_key_list l;
    bool found;
    enum nb_err rc = fn_load(k->store, lname, &l, &found);
    if (rc) return rc;
    if (value) {
        rc = list_put(&l, name, value, created);
    } else {
        long i = list_find(&l, name);
        if (i < 0)
            rc = NB_ERR_NOT_FOUND;
        else
            list_remove(&l, (size_t)i);
    }
    if (rc) goto cleanup;
    if (!found) rc = index_add(k->store, lname);
    if (!rc) rc = fn_save(k->store, lname, &l);
    if (!rc) fn_cache_put(k, lname, true, &l);
cleanup:
    nb_key_list_cleanup(&l);
    return rc;
}

enum nb_err nb_keys_set(struct nb_keys *k, enum nb_key_scope scope, const char *function,
                        const char *name, const char *value, bool *created, char **value_out)
{
    bool made = false;
    char *v = NULL;
    char lname[NB_KEYS_NAME_MAX + 1];
    if (value_out) *value_out = NULL;
    enum nb_err rc = scope_fn(scope, function, lname);
    if (rc) goto cleanup;
    if (scope != NB_KEYS_MASTER && (!nb_keys_valid_name(name) || is_master_name(name))) {
        rc = NB_ERR_INVALID;
        goto cleanup;
    }
    if (value && !nb_keys_valid_value(value)) {
        rc = NB_ERR_INVALID;
        goto cleanup;
    }
    v = value ? nb_strdup(value) : gen_value();
    pthread_mutex_lock(&k->mu);
    if (scope == NB_KEYS_FUNCTION)
        rc = fn_edit(k, lname, name, v, &made);
    else
        rc = host_edit(k, scope, name, v, &made);
    pthread_mutex_unlock(&k->mu);
    if (rc) goto cleanup;
    if (created) *created = made;
    if (value_out) {
        *value_out = v;
        v = NULL;
    }
cleanup:
    free(v);
    return rc;
}

enum nb_err nb_keys_delete(struct nb_keys *k, enum nb_key_scope scope, const char *function,
                           const char *name)
{
    char lname[NB_KEYS_NAME_MAX + 1];
    bool unused;
    if (scope == NB_KEYS_MASTER || is_master_name(name)) return NB_ERR_INVALID;
    enum nb_err rc = scope_fn(scope, function, lname);
    if (rc) return rc;
    if (!nb_keys_valid_name(name)) return NB_ERR_NOT_FOUND;
    pthread_mutex_lock(&k->mu);
    if (scope == NB_KEYS_FUNCTION)
        rc = fn_edit(k, lname, name, NULL, &unused);
    else
        rc = host_edit(k, scope, name, NULL, &unused);
    pthread_mutex_unlock(&k->mu);
    return rc;
}

enum nb_err nb_keys_ensure_function(struct nb_keys *k, const char *function)
{
    char lname[NB_KEYS_NAME_MAX + 1];
    if (!function || !lower_fn(function, lname)) return NB_ERR_INVALID;
    struct nb_key_list l;
    bool found;
    char *v = NULL;
    pthread_mutex_lock(&k->mu);
    enum nb_err rc = fn_load(k->store, lname, &l, &found);
    if (rc) goto cleanup;
    if (!found) {
        v = gen_value();
        list_add(&l, "default", v);
        rc = index_add(k->store, lname);
        if (!rc) rc = fn_save(k->store, lname, &l);
        if (rc) goto cleanup;
    }
    fn_cache_put(k, lname, true, &l);
cleanup:
    pthread_mutex_unlock(&k->mu);
    nb_key_list_cleanup(&l);
    free(v);
    return rc;
}
