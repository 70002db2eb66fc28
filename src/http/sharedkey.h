/* SharedKey and SharedKeyLite signing for the storage services, as the
 * official clients compute it (shared/protocols/storage-queue-table.md §1).
 * Used by the server to verify requests and by the CLI to sign them. Pure
 * functions of their inputs: no clock, no I/O. */
#ifndef NB_HTTP_SHAREDKEY_H
#define NB_HTTP_SHAREDKEY_H
#include <stdbool.h>
#include <stddef.h>
#include "core/buf.h"
#include "http/accounts.h"
#include "http/request.h"

enum nb_storage_svc { NB_STORAGE_QUEUE, NB_STORAGE_TABLE };
enum nb_sharedkey_scheme { NB_SHAREDKEY, NB_SHAREDKEY_LITE };

#define NB_HMAC_B64_LEN 45 /* base64 of a SHA-256 MAC, plus NUL */

/* Append to `out` the string-to-sign of `req` for the given service and
 * scheme. `path` is the raw (still %-encoded) path to sign, normally
 * req->raw_path; the secondary-endpoint quirk passes another. Headers are
 * read from req->headers, query parameters from req->query (decoded).
 * NB_ERR_TOO_LARGE if out's maximum is hit. */
enum nb_err nb_sharedkey_string_to_sign(enum nb_storage_svc svc, enum nb_sharedkey_scheme scheme,
                                        const char *account, const struct nb_req *req,
                                        const char *path, struct nb_buf *out);
/* Base64(HMAC-SHA256(key, msg)) into out. */
void nb_sharedkey_hmac(const unsigned char *key, size_t key_len, const char *msg, size_t len,
                       char out[NB_HMAC_B64_LEN]);
/* Constant-time comparison of two NUL-terminated signatures. */
bool nb_sharedkey_sig_equal(const char *a, const char *b);

/* Verify an `Authorization: SharedKey|SharedKeyLite account:sig` header
 * against the account's keys, trying the path without a leading
 * "/{account}-secondary" segment as well when present (§1.2 stats quirk).
 * On failure returns NB_ERR_AUTH and, if string_to_sign is non-NULL, leaves
 * there the string the server used (for AuthenticationErrorDetail).
 * NB_ERR_INVALID when the header is not a SharedKey header at all. */
enum nb_err nb_sharedkey_verify(enum nb_storage_svc svc, const struct nb_accounts *accounts,
                                const struct nb_req *req, const char **account_out,
                                struct nb_buf *string_to_sign);

#endif
