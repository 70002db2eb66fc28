/* SharedKey / SharedKeyLite strings-to-sign and their verification for the
 * queue and table services (storage-queue-table.md §1.1-1.4). Owns only the
 * canonicalisation rules; it never decides routing or writes responses. Pure:
 * scratch memory is heap memory released before return, the request is only
 * read. */
#include "http/sharedkey.h"
#include "core/mem.h"
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Bounds the string-to-sign built during verification; the listener already
 * caps header and URL sizes well below this. */
#define MAX_STRING_TO_SIGN (256 * 1024)

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static enum nb_err add_lower(struct nb_buf *out, const char *s)
{
    for (; *s; s++) {
        enum nb_err rc = nb_buf_addc(out, lower(*s));
        if (rc) return rc;
    }
    return NB_OK;
}

static const char *header_or_empty(const struct nb_req *req, const char *name)
{
    const char *v = nb_req_header(req, name);
    return v ? v : "";
}

/* `value` + "\n" */
static enum nb_err add_line(struct nb_buf *out, const char *value)
{
    enum nb_err rc = nb_buf_adds(out, value);
    return rc ? rc : nb_buf_addc(out, '\n');
}

static bool is_lws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Trim, and collapse each run of whitespace inside to one space, as the
 * CanonicalizedHeaders rules ask. */
static enum nb_err add_header_value(struct nb_buf *out, const char *v)
{
    size_t n = strlen(v);
    while (n && is_lws(v[n - 1]))
        n--;
    size_t i = 0;
    while (i < n && is_lws(v[i]))
        i++;
    bool in_space = false;
    for (; i < n; i++) {
        enum nb_err rc = NB_OK;
        if (is_lws(v[i])) {
            in_space = true;
            continue;
        }
        if (in_space) rc = nb_buf_addc(out, ' ');
        in_space = false;
        if (!rc) rc = nb_buf_addc(out, v[i]);
        if (rc) return rc;
    }
    return NB_OK;
}

/* Sorting helpers: entries refer back to the request's arrays by pointer;
 * the original position breaks ties so equal names keep arrival order. */
struct sort_ent {
    const struct nb_kv *kv;
    size_t pos;
};

static int cmp_header(const void *a, const void *b)
{
    const struct sort_ent *x = a, *y = b;
    int c = strcasecmp(x->kv->name, y->kv->name);
    if (c) return c;
    return (x->pos > y->pos) - (x->pos < y->pos);
}

static int cmp_bytes(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    if (c) return c;
    return (alen > blen) - (alen < blen);
}

static int cmp_query(const void *a, const void *b)
{
    const struct sort_ent *x = a, *y = b;
    int c = strcasecmp(x->kv->name, y->kv->name);
    if (c) return c;
    c = cmp_bytes(x->kv->value, x->kv->value_len, y->kv->value, y->kv->value_len);
    if (c) return c;
    return (x->pos > y->pos) - (x->pos < y->pos);
}

/* Every x-ms-* header, "name:value\n", sorted by lowercase name. */
static enum nb_err canonical_headers(const struct nb_req *req, struct nb_buf *out)
{
    enum nb_err rc = NB_OK;
    struct sort_ent *ents = nb_malloc((req->nheaders ? req->nheaders : 1) * sizeof(*ents));
    size_t n = 0;
    for (size_t i = 0; i < req->nheaders; i++) {
        if (strncasecmp(req->headers[i].name, "x-ms-", 5) == 0)
            ents[n++] = (struct sort_ent){&req->headers[i], i};
    }
    qsort(ents, n, sizeof(*ents), cmp_header);
    for (size_t i = 0; i < n && !rc; i++) {
        bool same_as_prev = i > 0 && strcasecmp(ents[i].kv->name, ents[i - 1].kv->name) == 0;
        if (same_as_prev) {
            rc = nb_buf_addc(out, ',');
        } else {
            rc = add_lower(out, ents[i].kv->name);
            if (!rc) rc = nb_buf_addc(out, ':');
        }
        if (!rc) rc = add_header_value(out, ents[i].kv->value ? ents[i].kv->value : "");
        bool last_of_name = i + 1 == n || strcasecmp(ents[i].kv->name, ents[i + 1].kv->name) != 0;
        if (!rc && last_of_name) rc = nb_buf_addc(out, '\n');
    }
    free(ents);
    return rc;
}

/* "\nname:v1,v2" for each query parameter, names lowercased and sorted,
 * decoded values sorted within a name. */
static enum nb_err canonical_query(const struct nb_req *req, struct nb_buf *out)
{
    enum nb_err rc = NB_OK;
    struct sort_ent *ents = nb_malloc((req->nquery ? req->nquery : 1) * sizeof(*ents));
    size_t n = 0;
    for (size_t i = 0; i < req->nquery; i++) {
        if (req->query[i].name[0]) ents[n++] = (struct sort_ent){&req->query[i], i};
    }
    qsort(ents, n, sizeof(*ents), cmp_query);
    for (size_t i = 0; i < n && !rc; i++) {
        bool same_as_prev = i > 0 && strcasecmp(ents[i].kv->name, ents[i - 1].kv->name) == 0;
        if (same_as_prev) {
            rc = nb_buf_addc(out, ',');
        } else {
            rc = nb_buf_addc(out, '\n');
            if (!rc) rc = add_lower(out, ents[i].kv->name);
            if (!rc) rc = nb_buf_addc(out, ':');
        }
        if (!rc) rc = nb_buf_add(out, ents[i].kv->value, ents[i].kv->value_len);
    }
    free(ents);
    return rc;
}

/* "/" + account + path, then "?comp=value" when the request has comp: the
 * short canonical resource of Table SharedKey and of both Lite schemes. */
static enum nb_err resource_with_comp(const char *account, const struct nb_req *req,
                                      const char *path, struct nb_buf *out)
{
    enum nb_err rc = nb_buf_addc(out, '/');
    if (!rc) rc = nb_buf_adds(out, account);
    if (!rc) rc = nb_buf_adds(out, path);
    const struct nb_kv *comp = nb_req_query_kv(req, "comp");
    if (!rc && comp) {
        rc = nb_buf_adds(out, "?comp=");
        if (!rc) rc = nb_buf_add(out, comp->value, comp->value_len);
    }
    return rc;
}

static enum nb_err queue_sharedkey(const char *account, const struct nb_req *req, const char *path,
                                   struct nb_buf *out)
{
    static const char *const std_headers[] = {
        "Content-Encoding",
        "Content-Language",
        "Content-Length",
        "Content-MD5",
        "Content-Type",
        "Date",
        "If-Modified-Since",
        "If-Match",
        "If-None-Match",
        "If-Unmodified-Since",
        "Range",
    };
    enum nb_err rc = add_line(out, req->method);
    for (size_t i = 0; i < sizeof(std_headers) / sizeof(std_headers[0]) && !rc; i++) {
        const char *v = header_or_empty(req, std_headers[i]);
        /* Since 2015-02-21 a zero Content-Length is signed as empty. */
        if (i == 2 && strcmp(v, "0") == 0) v = "";
        rc = add_line(out, v);
    }
    if (!rc) rc = canonical_headers(req, out);
    if (!rc) rc = nb_buf_addc(out, '/');
    if (!rc) rc = nb_buf_adds(out, account);
    if (!rc) rc = nb_buf_adds(out, path);
    if (!rc) rc = canonical_query(req, out);
    return rc;
}

static enum nb_err queue_lite(const char *account, const struct nb_req *req, const char *path,
                              struct nb_buf *out)
{
    enum nb_err rc = add_line(out, req->method);
    if (!rc) rc = add_line(out, header_or_empty(req, "Content-MD5"));
    if (!rc) rc = add_line(out, header_or_empty(req, "Content-Type"));
    if (!rc) rc = add_line(out, header_or_empty(req, "Date"));
    if (!rc) rc = canonical_headers(req, out);
    if (!rc) rc = resource_with_comp(account, req, path, out);
    return rc;
}

static const char *table_date(const struct nb_req *req)
{
    const char *d = nb_req_header(req, "x-ms-date");
    return d ? d : header_or_empty(req, "Date");
}

static enum nb_err table_sharedkey(const char *account, const struct nb_req *req, const char *path,
                                   struct nb_buf *out)
{
    enum nb_err rc = add_line(out, req->method);
    if (!rc) rc = add_line(out, header_or_empty(req, "Content-MD5"));
    if (!rc) rc = add_line(out, header_or_empty(req, "Content-Type"));
    if (!rc) rc = add_line(out, table_date(req));
    if (!rc) rc = resource_with_comp(account, req, path, out);
    return rc;
}

static enum nb_err table_lite(const char *account, const struct nb_req *req, const char *path,
                              struct nb_buf *out)
{
    enum nb_err rc = add_line(out, table_date(req));
    if (!rc) rc = resource_with_comp(account, req, path, out);
    return rc;
}

enum nb_err nb_sharedkey_string_to_sign(enum nb_storage_svc svc, enum nb_sharedkey_scheme scheme,
                                        const char *account, const struct nb_req *req,
                                        const char *path, struct nb_buf *out)
{
    if (svc == NB_STORAGE_QUEUE)
        return scheme == NB_SHAREDKEY ? queue_sharedkey(account, req, path, out)
                                      : queue_lite(account, req, path, out);
    return scheme == NB_SHAREDKEY ? table_sharedkey(account, req, path, out)
                                  : table_lite(account, req, path, out);
}

void nb_sharedkey_hmac(const unsigned char *key, size_t key_len, const char *msg, size_t len,
                       char out[NB_HMAC_B64_LEN])
{
    static const unsigned char empty[1] = {0};
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    /* HMAC() with a NULL key would reuse state; never hand it one. */
    HMAC(EVP_sha256(), key_len ? key : empty, (int)key_len,
         len ? (const unsigned char *)msg : empty, len, md, &md_len);
    EVP_EncodeBlock((unsigned char *)out, md, (int)md_len); /* 44 chars + NUL */
}

bool nb_sharedkey_sig_equal(const char *a, const char *b)
{
    size_t n = strlen(a);
    if (n != strlen(b)) return false;
    return CRYPTO_memcmp(a, b, n) == 0;
}

/* Does the raw path start with "/{account}-secondary" (then '/' or end)?
 * Returns the rest of the path, or NULL. */
static const char *strip_secondary(const char *path, const char *account)
{
    size_t alen = strlen(account);
    if (path[0] != '/' || strncmp(path + 1, account, alen) != 0) return NULL;
    const char *p = path + 1 + alen;
    if (strncmp(p, "-secondary", 10) != 0) return NULL;
    p += 10;
    if (*p == '\0') return "/";
    return *p == '/' ? p : NULL;
}

/* The account in the header must be the account the path addresses
 * (primary or secondary form); otherwise a holder of one account's key could
 * sign requests that the router sends to another account. */
static bool path_addresses(const char *path, const char *account)
{
    size_t alen = strlen(account);
    if (path[0] != '/' || strncmp(path + 1, account, alen) != 0) return false;
    const char *p = path + 1 + alen;
    if (*p == '\0' || *p == '/') return true;
    return strip_secondary(path, account) != NULL;
}

/* Does `sig` match the string in `sts` under either key of `acc`? Both keys
 * are always computed so timing does not tell which one matched. */
static bool matches_a_key(const struct nb_account *acc, const struct nb_buf *sts, const char *sig)
{
    bool ok = false;
    for (int k = 0; k < 2; k++) {
        if (!acc->key[k]) continue;
        char mac[NB_HMAC_B64_LEN];
        nb_sharedkey_hmac(acc->key[k], acc->key_len[k], nb_buf_cstr(sts), sts->len, mac);
        ok |= nb_sharedkey_sig_equal(mac, sig);
    }
    return ok;
}

/* Split "Scheme account:sig". Returns false if the value is not SharedKey or
 * SharedKeyLite at all; *malformed when it is but the rest is unusable. */
static bool parse_authorization(const char *h, enum nb_sharedkey_scheme *scheme, const char **acct,
                                size_t *acct_len, const char **sig, bool *malformed)
{
    *malformed = false;
    const char *sp = strchr(h, ' ');
    if (!sp) return false;
    size_t slen = (size_t)(sp - h);
    if (slen == 9 && strncasecmp(h, "SharedKey", 9) == 0)
        *scheme = NB_SHAREDKEY;
    else if (slen == 13 && strncasecmp(h, "SharedKeyLite", 13) == 0)
        *scheme = NB_SHAREDKEY_LITE;
    else
        return false;
    while (*sp == ' ')
        sp++;
    const char *colon = strchr(sp, ':');
    if (!colon || colon == sp || colon[1] == '\0') {
        *malformed = true;
        return true;
    }
    *acct = sp;
    *acct_len = (size_t)(colon - sp);
    *sig = colon + 1;
    return true;
}

static void copy_out(struct nb_buf *dst, const struct nb_buf *src)
{
    if (!dst) return;
    nb_buf_reset(dst);
    size_t n = src->len;
    if (n > dst->max) n = dst->max; /* a truncated detail beats none */
    (void)nb_buf_add(dst, nb_buf_cstr(src), n);
}

enum nb_err nb_sharedkey_verify(enum nb_storage_svc svc, const struct nb_accounts *accounts,
                                const struct nb_req *req, const char **account_out,
                                struct nb_buf *string_to_sign)
{
    enum nb_err rc = NB_ERR_AUTH;
    struct nb_buf sts;
    char *acct = NULL;
    enum nb_sharedkey_scheme scheme;
    const char *acct_p = NULL, *sig = NULL;
    size_t acct_len = 0;
    bool malformed;

    nb_buf_init(&sts, MAX_STRING_TO_SIGN);
    if (account_out) *account_out = NULL;
    if (string_to_sign) nb_buf_reset(string_to_sign);

    const char *h = nb_req_header(req, "Authorization");
    if (!h || !parse_authorization(h, &scheme, &acct_p, &acct_len, &sig, &malformed)) {
        rc = NB_ERR_INVALID;
        goto cleanup;
    }
    if (malformed) goto cleanup;
    acct = nb_strndup(acct_p, acct_len);
    const struct nb_account *acc = nb_accounts_find(accounts, acct);
    if (!acc) goto cleanup;
    if (account_out) *account_out = acc->name;
    const char *path = req->raw_path && req->raw_path[0] ? req->raw_path : "/";
    if (!path_addresses(path, acc->name)) goto cleanup;

    if (nb_sharedkey_string_to_sign(svc, scheme, acc->name, req, path, &sts)) goto cleanup;
    if (matches_a_key(acc, &sts, sig)) {
        rc = NB_OK;
        goto cleanup;
    }
    copy_out(string_to_sign, &sts);

    /* Stats quirk: the table SDK sends to /{a}-secondary/{a}/ but signs the
     * primary path. */
    const char *primary = strip_secondary(path, acc->name);
    if (primary) {
        nb_buf_reset(&sts);
        if (nb_sharedkey_string_to_sign(svc, scheme, acc->name, req, primary, &sts)) goto cleanup;
        if (matches_a_key(acc, &sts, sig)) rc = NB_OK;
    }

cleanup:
    if (rc == NB_OK && string_to_sign) nb_buf_reset(string_to_sign);
    free(acct);
    nb_buf_cleanup(&sts);
    return rc;
}
