/* Shared access signatures (storage-queue-table.md §1.5): string-to-sign for
 * account and queue/table service SAS, the checks on time window, protocol,
 * source IP and stored policy, and the permission questions services ask.
 * Owns no state; `now` and the policy lookup come from the caller. The
 * string-to-sign always uses the values in the URL, never the policy's. */
#include "http/sas.h"
#include "core/timefmt.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>

#define MAX_SAS_STRING (64 * 1024)

/* The request arena is the request's scratch space: it stays writable
 * through a const view of the request, as the header promises results in it. */
static struct nb_arena *arena_of(const struct nb_req *req)
{
    return (struct nb_arena *)&req->arena;
}

static bool fail(struct nb_sas_result *res, const char *code, const char *detail)
{
    res->error_code = code;
    res->detail = detail;
    return false;
}

static const char *param(const struct nb_req *req, const char *name)
{
    const char *v = nb_req_query(req, name);
    return v ? v : "";
}

/* Field + "\n" for each, then the last one without a newline. */
static enum nb_err join_lines(struct nb_buf *b, const char *const *fields, size_t n)
{
    enum nb_err rc = NB_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        if (i) rc = nb_buf_addc(b, '\n');
        if (!rc) rc = nb_buf_adds(b, fields[i]);
    }
    return rc;
}

static enum nb_err account_string(const char *account, const struct nb_sas *s, struct nb_buf *b)
{
    const char *f[] = {account, s->sp, s->ss, s->srt, s->st, s->se, s->sip, s->spr, s->sv, s->ses};
    /* Version strings are dates, so byte order is time order. */
    bool with_ses = strcmp(s->sv, "2020-12-06") >= 0;
    enum nb_err rc = join_lines(b, f, with_ses ? 10 : 9);
    return rc ? rc : nb_buf_addc(b, '\n');
}

static enum nb_err queue_string(const char *account, const char *queue, const struct nb_sas *s,
                                struct nb_buf *b)
{
    enum nb_err rc = join_lines(b, (const char *const[]){s->sp, s->st, s->se}, 3);
    if (!rc) rc = nb_buf_printf(b, "\n/queue/%s/%s\n", account, queue);
    if (!rc) rc = join_lines(b, (const char *const[]){s->si, s->sip, s->spr, s->sv}, 4);
    return rc;
}

static enum nb_err table_string(const char *account, const struct nb_sas *s, struct nb_buf *b)
{
    enum nb_err rc = join_lines(b, (const char *const[]){s->sp, s->st, s->se}, 3);
    if (!rc) rc = nb_buf_printf(b, "\n/table/%s/", account);
    for (const char *p = s->tn; *p && !rc; p++)
        rc = nb_buf_addc(b, (*p >= 'A' && *p <= 'Z') ? (char)(*p - 'A' + 'a') : *p);
    if (!rc) rc = nb_buf_addc(b, '\n');
    if (!rc)
        rc = join_lines(
            b, (const char *const[]){s->si, s->sip, s->spr, s->sv, s->spk, s->srk, s->epk, s->erk},
            8);
    return rc;
}

static bool signature_ok(const struct nb_account *acc, const struct nb_buf *sts, const char *sig)
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

/* An address in network byte order; IPv4-mapped IPv6 reads as IPv4 so a
 * dual-stack listener still matches "sip=127.0.0.1". */
struct addr {
    int len; /* 4 or 16; 0 when unparsable */
    unsigned char b[16];
};

static struct addr parse_addr(const char *s, size_t n)
{
    struct addr a = {0, {0}};
    char tmp[INET6_ADDRSTRLEN + 1];
    if (n == 0 || n >= sizeof(tmp)) return a;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    if (inet_pton(AF_INET, tmp, a.b) == 1) {
        a.len = 4;
    } else if (inet_pton(AF_INET6, tmp, a.b) == 1) {
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(a.b, mapped, 12) == 0) {
            memmove(a.b, a.b + 12, 4);
            a.len = 4;
        } else {
            a.len = 16;
        }
    }
    return a;
}

/* 1 inside, 0 outside, -1 when sip is malformed. */
static int ip_allowed(const char *sip, const char *client)
{
    const char *dash = strchr(sip, '-');
    size_t n = strlen(sip);
    struct addr lo = parse_addr(sip, dash ? (size_t)(dash - sip) : n);
    struct addr hi = dash ? parse_addr(dash + 1, n - (size_t)(dash - sip) - 1) : lo;
    if (!lo.len || lo.len != hi.len || memcmp(lo.b, hi.b, (size_t)lo.len) > 0) return -1;
    struct addr c = parse_addr(client, strlen(client));
    if (c.len != lo.len) return 0;
    return memcmp(c.b, lo.b, (size_t)c.len) >= 0 && memcmp(c.b, hi.b, (size_t)c.len) <= 0;
}

static bool valid_spr(const char *spr)
{
    return !*spr || strcmp(spr, "https") == 0 || strcmp(spr, "https,http") == 0 ||
           strcmp(spr, "http,https") == 0;
}

static void parse_fields(const struct nb_req *req, struct nb_sas *s)
{
    memset(s, 0, sizeof(*s));
    s->sv = param(req, "sv");
    s->ss = param(req, "ss");
    s->srt = param(req, "srt");
    s->sp = param(req, "sp");
    s->st = param(req, "st");
    s->se = param(req, "se");
    s->sip = param(req, "sip");
    s->spr = param(req, "spr");
    s->si = param(req, "si");
    s->tn = param(req, "tn");
    s->spk = param(req, "spk");
    s->srk = param(req, "srk");
    s->epk = param(req, "epk");
    s->erk = param(req, "erk");
    s->ses = param(req, "ses");
    s->sig = param(req, "sig");
    s->kind = (*s->ss || *s->srt) ? NB_SAS_ACCOUNT : NB_SAS_SERVICE;
}

static bool parse_time(const char *s, nb_time_ms *out)
{
    return nb_time_parse_iso8601(s, strlen(s), out) == NB_OK;
}

/* Fill sp/st/se that the URL leaves out from stored policy `si`. */
static bool apply_policy(const struct nb_req *req, const char *account, const char *resource,
                         nb_sas_policy_lookup lookup, void *ctx, struct nb_sas *s,
                         struct nb_sas_result *res)
{
    struct nb_sas_policy pol;
    memset(&pol, 0, sizeof(pol));
    if (!lookup || lookup(ctx, account, resource, s->si, &pol) != NB_OK)
        return fail(
            res, "AuthenticationFailed",
            nb_arena_printf(arena_of(req), "The stored access policy '%s' was not found.", s->si));
    pol.start[sizeof(pol.start) - 1] = '\0';
    pol.expiry[sizeof(pol.expiry) - 1] = '\0';
    pol.permission[sizeof(pol.permission) - 1] = '\0';
    if (!*s->perms) s->perms = nb_arena_strdup(arena_of(req), pol.permission);
    if (!*s->st && pol.start[0] && !parse_time(pol.start, &s->start))
        return fail(res, "AuthenticationFailed", "The stored access policy has a bad Start.");
    if (!*s->se && pol.expiry[0] && !parse_time(pol.expiry, &s->expiry))
        return fail(res, "AuthenticationFailed", "The stored access policy has a bad Expiry.");
    return true;
}

static bool check(enum nb_storage_svc svc, const struct nb_account *acc, const char *resource,
                  const struct nb_req *req, const char *client_ip, nb_time_ms now,
                  nb_sas_policy_lookup lookup, void *ctx, struct nb_sas *s,
                  struct nb_sas_result *res, struct nb_buf *sts)
{
    struct nb_arena *arena = arena_of(req);
    bool service = s->kind == NB_SAS_SERVICE;

    if (!*s->sv || !*s->sig) return fail(res, "AuthenticationFailed", "The SAS lacks sv or sig.");
    if (!service && (!*s->ss || !*s->srt || !*s->sp || !*s->se))
        return fail(res, "AuthenticationFailed", "An account SAS needs ss, srt, sp and se.");
    if ((*s->srk && !*s->spk) || (*s->erk && !*s->epk))
        return fail(res, "AuthenticationFailed", "srk/erk need spk/epk.");

    /* Which resource the SAS names; it must be the one addressed. */
    if (service && svc == NB_STORAGE_TABLE) {
        if (!*s->tn || strcasecmp(s->tn, resource) != 0)
            return fail(
                res, "AuthenticationFailed",
                nb_arena_printf(arena, "The SAS is for table '%s', not '%s'.", s->tn, resource));
    } else if (service && !*resource) {
        return fail(res, "AuthenticationFailed", "A service SAS cannot reach the service level.");
    }

    enum nb_err rc;
    if (!service)
        rc = account_string(acc->name, s, sts);
    else if (svc == NB_STORAGE_QUEUE)
        rc = queue_string(acc->name, resource, s, sts);
    else
        rc = table_string(acc->name, s, sts);
    if (rc) return fail(res, "AuthenticationFailed", "The SAS is too large.");
    if (!signature_ok(acc, sts, s->sig))
        return fail(res, "AuthenticationFailed",
                    nb_arena_printf(arena, "Signature did not match. String to sign used was %s",
                                    nb_buf_cstr(sts)));

    if (!valid_spr(s->spr)) return fail(res, "AuthenticationFailed", "Bad signed protocol (spr).");
    if (strcmp(s->spr, "https") == 0 && !req->is_https)
        return fail(res, "AuthorizationProtocolMismatch",
                    "This request is not authorized to perform this operation using this "
                    "protocol.");
    if (*s->sip && client_ip) {
        int in = ip_allowed(s->sip, client_ip);
        if (in < 0) return fail(res, "AuthenticationFailed", "Bad signed IP (sip).");
        if (!in)
            return fail(res, "AuthorizationSourceIPMismatch",
                        nb_arena_printf(arena,
                                        "This request is not authorized to perform this "
                                        "operation using this source IP %s.",
                                        client_ip));
    }

    s->perms = s->sp;
    if (*s->st && !parse_time(s->st, &s->start))
        return fail(res, "AuthenticationFailed", "Bad signed start (st).");
    if (*s->se && !parse_time(s->se, &s->expiry))
        return fail(res, "AuthenticationFailed", "Bad signed expiry (se).");
    /* Account SAS has no stored policies; si there is ignored as unknown. */
    if (service && *s->si && !apply_policy(req, acc->name, resource, lookup, ctx, s, res))
        return false;
    if (!*s->perms) return fail(res, "AuthenticationFailed", "The SAS grants no permissions.");
    if (!s->expiry) return fail(res, "AuthenticationFailed", "The SAS has no expiry.");
    if (s->start && now < s->start)
        return fail(res, "AuthenticationFailed",
                    nb_arena_printf(arena, "Signed start time [%s] must be before now.",
                                    *s->st ? s->st : "policy"));
    if (now > s->expiry)
        return fail(res, "AuthenticationFailed",
                    nb_arena_printf(arena, "Signed expiry time [%s] must be after now.",
                                    *s->se ? s->se : "policy"));
    return true;
}

bool nb_sas_present(const struct nb_req *req)
{
    return nb_req_query(req, "sig") != NULL;
}

enum nb_err nb_sas_verify(enum nb_storage_svc svc, const struct nb_accounts *accounts,
                          const char *account, const char *resource, const struct nb_req *req,
                          const char *client_ip, nb_time_ms now, nb_sas_policy_lookup lookup,
                          void *lookup_ctx, struct nb_sas *out, struct nb_sas_result *res)
{
    struct nb_buf sts;
    bool ok = false;

    res->error_code = NULL;
    res->detail = NULL;
    parse_fields(req, out);
    out->perms = "";
    nb_buf_init(&sts, MAX_SAS_STRING);
    const struct nb_account *acc = nb_accounts_find(accounts, account);
    if (!acc) {
        fail(res, "AuthenticationFailed", "Unknown account.");
        goto cleanup;
    }
    ok = check(svc, acc, resource ? resource : "", req, client_ip, now, lookup, lookup_ctx, out,
               res, &sts);

cleanup:
    nb_buf_cleanup(&sts);
    if (!ok) return NB_ERR_AUTH;
    res->error_code = NULL;
    res->detail = NULL;
    return NB_OK;
}

bool nb_sas_allows(const struct nb_sas *sas, enum nb_storage_svc svc, enum nb_sas_rtype rtype,
                   char perm, const char **error_code)
{
    const char *code = NULL;
    if (sas->kind == NB_SAS_ACCOUNT) {
        if (!strchr(sas->ss, svc == NB_STORAGE_QUEUE ? 'q' : 't'))
            code = "AuthorizationServiceMismatch";
        else if (!strchr(sas->srt, (char)rtype))
            code = "AuthorizationResourceTypeMismatch";
    } else if (rtype == NB_SAS_RT_SERVICE) {
        code = "AuthorizationResourceTypeMismatch";
    }
    /* perm '\0' asks only about service and resource type. */
    if (!code && perm && !strchr(sas->perms ? sas->perms : "", perm))
        code = "AuthorizationPermissionMismatch";
    if (error_code) *error_code = code;
    return code == NULL;
}

bool nb_sas_key_in_range(const struct nb_sas *sas, const char *pk, const char *rk)
{
    const char *spk = sas->spk ? sas->spk : "", *srk = sas->srk ? sas->srk : "";
    const char *epk = sas->epk ? sas->epk : "", *erk = sas->erk ? sas->erk : "";
    pk = pk ? pk : "";
    rk = rk ? rk : "";
    if (*spk) {
        int c = strcmp(pk, spk);
        if (c < 0 || (c == 0 && *srk && strcmp(rk, srk) < 0)) return false;
    }
    if (*epk) {
        int c = strcmp(pk, epk);
        if (c > 0 || (c == 0 && *erk && strcmp(rk, erk) > 0)) return false;
    }
    return true;
}
