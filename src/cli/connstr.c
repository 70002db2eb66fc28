/* Connection-string parsing for the client commands (see connstr.h). Pure
 * string work on heap copies: no I/O, no globals. The parse fills a scratch
 * struct and hands it over only when it is complete, so a failed parse never
 * leaves half a result behind. */
#include "cli/connstr.h"
#include "core/encode.h"
#include "core/mem.h"
#include "http/accounts.h"
#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The keys we understand, one row each; the column is where the value goes
 * in struct raw below. */
enum ckey {
    K_PROTOCOL,
    K_ACCOUNT,
    K_KEY,
    K_SAS,
    K_SUFFIX,
    K_QUEUE,
    K_TABLE,
    K_DEVSTORE,
    K_DEVPROXY,
    K_COUNT
};

static const char *const key_names[K_COUNT] = {
    [K_PROTOCOL] = "DefaultEndpointsProtocol",
    [K_ACCOUNT] = "AccountName",
    [K_KEY] = "AccountKey",
    [K_SAS] = "SharedAccessSignature",
    [K_SUFFIX] = "EndpointSuffix",
    [K_QUEUE] = "QueueEndpoint",
    [K_TABLE] = "TableEndpoint",
    [K_DEVSTORE] = "UseDevelopmentStorage",
    [K_DEVPROXY] = "DevelopmentStorageProxyUri",
};

void nb_connstr_init(struct nb_connstr *cs)
{
    memset(cs, 0, sizeof(*cs));
}

void nb_connstr_cleanup(struct nb_connstr *cs)
{
    free(cs->protocol);
    free(cs->account);
    if (cs->account_key) explicit_bzero(cs->account_key, strlen(cs->account_key));
    free(cs->account_key);
    if (cs->key) explicit_bzero(cs->key, cs->key_len);
    free(cs->key);
    free(cs->sas);
    free(cs->endpoint_suffix);
    free(cs->queue_endpoint);
    free(cs->table_endpoint);
    memset(cs, 0, sizeof(*cs));
}

void nb_connstr_local_default(struct nb_connstr *cs)
{
    unsigned char *key = NULL;
    size_t key_len = 0;
    cs->protocol = nb_strdup("http");
    cs->account = nb_strdup(NB_DEV_ACCOUNT);
    cs->account_key = nb_strdup(NB_DEV_KEY);
    /* The well-known key is a compile-time constant that is valid base64. */
    if (!nb_base64_decode(NB_DEV_KEY, strlen(NB_DEV_KEY), &key, &key_len)) abort();
    cs->key = key;
    cs->key_len = key_len;
    cs->endpoint_suffix = nb_strdup("core.windows.net");
    cs->queue_endpoint = nb_strdup(NB_LOCAL_QUEUE_ENDPOINT);
    cs->table_endpoint = nb_strdup(NB_LOCAL_TABLE_ENDPOINT);
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Trim [*p, *p + *n) in place. */
static void trim(const char **p, size_t *n)
{
    while (*n && is_space(**p)) {
        (*p)++;
        (*n)--;
    }
    while (*n && is_space((*p)[*n - 1]))
        (*n)--;
}

static int find_key(const char *name, size_t n)
{
    for (int k = 0; k < K_COUNT; k++)
        if (strlen(key_names[k]) == n && strncasecmp(key_names[k], name, n) == 0) return k;
    return -1;
}

/* Copy an endpoint without its trailing slashes; NULL when nothing is left
 * or it is not an http(s) URL (the client could not use it). */
static char *endpoint_copy(const char *v)
{
    size_t n = strlen(v);
    while (n && v[n - 1] == '/')
        n--;
    if (!n) return NULL;
    if (strncasecmp(v, "http://", 7) != 0 && strncasecmp(v, "https://", 8) != 0) return NULL;
    size_t scheme = v[4] == ':' ? 7 : 8;
    if (n <= scheme) return NULL;
    return nb_strndup(v, n);
}

static char *derive_endpoint(const char *protocol, const char *account, const char *svc,
                             const char *suffix)
{
    return nb_asprintf("%s://%s.%s.%s", protocol, account, svc, suffix);
}

enum nb_err nb_connstr_parse(const char *s, struct nb_connstr *cs, const char **why)
{
    enum nb_err rc = NB_ERR_INVALID;
    const char *reason = NULL;
    char *raw[K_COUNT] = {0};
    struct nb_connstr out;
    nb_connstr_init(&out);

    if (!s || strlen(s) > NB_CONNSTR_MAX) {
        reason = "connection string is either blank or malformed";
        goto cleanup;
    }
    bool any = false;
    for (const char *p = s; *p;) {
        const char *semi = strchr(p, ';');
        size_t len = semi ? (size_t)(semi - p) : strlen(p);
        const char *seg = p;
        p += len;
        if (*p == ';') p++;
        trim(&seg, &len);
        if (!len) continue;
        const char *eq = memchr(seg, '=', len);
        if (!eq) {
            reason = "connection string is either blank or malformed (a setting has no '=')";
            goto cleanup;
        }
        const char *name = seg;
        size_t nlen = (size_t)(eq - seg);
        const char *val = eq + 1;
        size_t vlen = len - nlen - 1;
        trim(&name, &nlen);
        trim(&val, &vlen);
        if (!nlen) {
            reason = "connection string is either blank or malformed (empty setting name)";
            goto cleanup;
        }
        any = true;
        int k = find_key(name, nlen);
        if (k < 0) continue; /* BlobEndpoint, FileEndpoint, secondary endpoints, ... */
        free(raw[k]);
        raw[k] = nb_strndup(val, vlen);
    }
    if (!any) {
        reason = "connection string is either blank or malformed";
        goto cleanup;
    }

    if (raw[K_DEVSTORE]) {
        if (strcasecmp(raw[K_DEVSTORE], "true") != 0) {
            reason = "UseDevelopmentStorage must be 'true'";
            goto cleanup;
        }
        for (int k = 0; k < K_COUNT; k++) {
            if (raw[k] && k != K_DEVSTORE && k != K_DEVPROXY) {
                reason = "UseDevelopmentStorage=true cannot be combined with other settings";
                goto cleanup;
            }
        }
        nb_connstr_local_default(&out);
        rc = NB_OK;
        goto cleanup;
    }

    if (raw[K_PROTOCOL]) {
        for (char *c = raw[K_PROTOCOL]; *c; c++)
            *c = (char)tolower((unsigned char)*c);
        if (strcmp(raw[K_PROTOCOL], "http") != 0 && strcmp(raw[K_PROTOCOL], "https") != 0) {
            reason = "DefaultEndpointsProtocol must be http or https";
            goto cleanup;
        }
    }
    if (raw[K_ACCOUNT] && !*raw[K_ACCOUNT]) {
        reason = "AccountName is empty";
        goto cleanup;
    }
    if (raw[K_KEY]) {
        if (!raw[K_ACCOUNT]) {
            reason = "AccountKey given without AccountName";
            goto cleanup;
        }
        size_t klen = strlen(raw[K_KEY]);
        if (!klen || !nb_base64_decode(raw[K_KEY], klen, &out.key, &out.key_len) || !out.key_len) {
            reason = "AccountKey is not valid base64";
            goto cleanup;
        }
        out.account_key = raw[K_KEY];
        raw[K_KEY] = NULL;
    } else if (raw[K_SAS]) {
        const char *sas = raw[K_SAS];
        while (*sas == '?')
            sas++;
        if (!*sas) {
            reason = "SharedAccessSignature is empty";
            goto cleanup;
        }
        out.sas = nb_strdup(sas);
    }

    out.protocol = nb_strdup(raw[K_PROTOCOL] ? raw[K_PROTOCOL] : "https");
    out.endpoint_suffix =
        nb_strdup(raw[K_SUFFIX] && *raw[K_SUFFIX] ? raw[K_SUFFIX] : "core.windows.net");
    if (raw[K_ACCOUNT]) {
        out.account = raw[K_ACCOUNT];
        raw[K_ACCOUNT] = NULL;
    }
    static const struct {
        int key;
        const char *svc;
    } eps[] = {{K_QUEUE, "queue"}, {K_TABLE, "table"}};
    for (size_t i = 0; i < sizeof(eps) / sizeof(eps[0]); i++) {
        char **dst = eps[i].key == K_QUEUE ? &out.queue_endpoint : &out.table_endpoint;
        const char *given = raw[eps[i].key];
        if (given && *given) {
            *dst = endpoint_copy(given);
            if (!*dst) {
                reason = eps[i].key == K_QUEUE ? "QueueEndpoint is not an http(s) URL"
                                               : "TableEndpoint is not an http(s) URL";
                goto cleanup;
            }
        } else if (out.account) {
            *dst = derive_endpoint(out.protocol, out.account, eps[i].svc, out.endpoint_suffix);
        }
    }
    if (!out.queue_endpoint && !out.table_endpoint) {
        reason = "connection string missing required connection details "
                 "(AccountName or an endpoint)";
        goto cleanup;
    }
    rc = NB_OK;

cleanup:
    for (int k = 0; k < K_COUNT; k++) {
        if (k == K_KEY && raw[k]) explicit_bzero(raw[k], strlen(raw[k]));
        free(raw[k]);
    }
    if (rc == NB_OK) {
        *cs = out;
    } else {
        nb_connstr_cleanup(&out);
        if (why) *why = reason;
    }
    return rc;
}

enum nb_err nb_connstr_resolve(const char *arg, const char *env, struct nb_connstr *cs,
                               const char **why)
{
    if (arg) return nb_connstr_parse(arg, cs, why);
    if (env && *env) return nb_connstr_parse(env, cs, why);
    nb_connstr_local_default(cs);
    return NB_OK;
}
