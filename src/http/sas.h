/* Shared access signatures for the storage services: parsing the SAS query
 * parameters, verifying the signature, time window, protocol and IP, and
 * answering "does this SAS allow that operation" (storage-queue-table.md
 * §1.5). Stored access policies (si) are resolved through a callback so this
 * module needs no store. `now` is always passed in. */
#ifndef NB_HTTP_SAS_H
#define NB_HTTP_SAS_H
#include <stdbool.h>
#include "core/clock.h"
#include "core/err.h"
#include "http/accounts.h"
#include "http/request.h"
#include "http/sharedkey.h"

enum nb_sas_kind { NB_SAS_ACCOUNT, NB_SAS_SERVICE };

/* A parsed SAS. Strings point into the request arena (decoded values) or
 * are "" when absent. */
struct nb_sas {
    enum nb_sas_kind kind;
    const char *sv, *ss, *srt, *sp, *st, *se, *sip, *spr, *si, *tn, *spk, *srk, *epk, *erk,
        *ses, *sig;
    /* After verification: the effective permissions, start and expiry (from
     * the URL, else from the stored policy). start 0 means none. */
    const char *perms;
    nb_time_ms start, expiry;
};

/* A stored access policy as the SAS module needs it. Fields may be "" */
struct nb_sas_policy {
    char start[40], expiry[40], permission[40];
};

/* Find policy `id` of resource `resource` (queue or table name). Return NB_OK
 * and fill *out, or NB_ERR_NOT_FOUND. */
typedef enum nb_err (*nb_sas_policy_lookup)(void *ctx, const char *account,
                                           const char *resource, const char *id,
                                           struct nb_sas_policy *out);

/* The outcome of verification: NB_OK, or NB_ERR_AUTH with `error_code`
 * (AuthenticationFailed, AuthorizationProtocolMismatch,
 * AuthorizationSourceIPMismatch, ...) and a human `detail` (arena string). */
struct nb_sas_result {
    const char *error_code;
    const char *detail;
};

/* True when the request carries a SAS (a `sig` query parameter). */
bool nb_sas_present(const struct nb_req *req);

/* Parse and verify the SAS of `req` addressed to `account` and, for service
 * SAS, to `resource` (queue or table name; "" for service-level requests).
 * Checks: signature over the canonical string for the SAS kind and version,
 * time window against now, spr vs req->is_https, sip vs client_ip (may be
 * NULL to skip), stored policy through lookup (may be NULL: then si fails).
 * A service SAS for another resource fails with AuthenticationFailed.
 * On success *out is filled (arena memory of req). */
enum nb_err nb_sas_verify(enum nb_storage_svc svc, const struct nb_accounts *accounts,
                          const char *account, const char *resource, const struct nb_req *req,
                          const char *client_ip, nb_time_ms now, nb_sas_policy_lookup lookup,
                          void *lookup_ctx, struct nb_sas *out, struct nb_sas_result *res);

/* Resource types of an account SAS ("srt"). */
enum nb_sas_rtype { NB_SAS_RT_SERVICE = 's', NB_SAS_RT_CONTAINER = 'c', NB_SAS_RT_OBJECT = 'o' };

/* Does the verified SAS allow an operation needing permission letter `perm`
 * on resource type `rtype`? For an account SAS that checks ss (svc), srt and
 * sp; for a service SAS only sp (rtype must not be NB_SAS_RT_SERVICE: service
 * SAS cannot reach service-level operations). On refusal returns false and
 * sets *error_code to AuthorizationServiceMismatch,
 * AuthorizationResourceTypeMismatch or AuthorizationPermissionMismatch. */
bool nb_sas_allows(const struct nb_sas *sas, enum nb_storage_svc svc, enum nb_sas_rtype rtype,
                   char perm, const char **error_code);

/* For table SAS: is (pk, rk) inside the spk/srk..epk/erk range? Always true
 * when no range was given. */
bool nb_sas_key_in_range(const struct nb_sas *sas, const char *pk, const char *rk);

#endif
