/* Stored access policies (the SignedIdentifiers XML of Get/Set Queue ACL and
 * Get/Set Table ACL): parsing, serialising and lookup by id. Fixed-size
 * value types, no heap: at most NB_ACL_MAX policies, ids of at most 64
 * chars, dates always held in the normalised form clients can parse back. */
#ifndef NB_STORAGE_ACL_H
#define NB_STORAGE_ACL_H
#include "core/buf.h"
#include "core/err.h"
#include <stddef.h>

#define NB_ACL_MAX 5
#define NB_ACL_ID_MAX 64

struct nb_acl_entry {
    char id[NB_ACL_ID_MAX + 1];
    char start[32];      /* "YYYY-MM-DDThh:mm:ss.fffffffZ", or "" when absent */
    char expiry[32];     /* same */
    char permission[32]; /* as sent (e.g. "raup"), or "" when absent */
};

struct nb_acl {
    struct nb_acl_entry items[NB_ACL_MAX];
    size_t n;
};

/* Parse a Set ACL body into *out (fully overwritten; out->n == 0 on error).
 * An empty or all-whitespace body, and <SignedIdentifiers/>, give no
 * policies. Elements may come in any order; unknown elements are ignored;
 * an empty <Start/>, <Expiry/> or <Permission/> counts as absent (Azure
 * accepts an empty Start). Dates are ISO 8601 as nb_time_parse_iso8601 reads
 * them, optionally with a +hh:mm / -hh:mm offset, and are normalised to UTC
 * with 7 fraction digits (extra digits are cut, not rounded).
 * Errors (NB_ERR_INVALID, *error_code = "InvalidXmlDocument" in every case,
 * as Azure and Azurite answer for a bad ACL body): not well-formed XML or a
 * DOCTYPE, a root other than SignedIdentifiers, more than 5 policies, a
 * missing/empty Id or one longer than 64, a duplicate Id, an unparseable
 * date, a Permission longer than 31 chars.
 * error_code may be NULL; on success it is set to NULL. xml is borrowed. */
enum nb_err nb_acl_parse_xml(const char *xml, size_t len, struct nb_acl *out,
                             const char **error_code);

/* Append the GET ACL body to `out`:
 *   <?xml version="1.0" encoding="utf-8"?><SignedIdentifiers><SignedIdentifier>
 *   <Id>..</Id><AccessPolicy>[<Start>..</Start>][<Expiry>..</Expiry>]
 *   [<Permission>..</Permission>]</AccessPolicy></SignedIdentifier>...
 *   </SignedIdentifiers>
 * or, with no policies, <?xml ...?><SignedIdentifiers />. Empty fields are
 * omitted; text is XML-escaped. NB_ERR_TOO_LARGE when out's maximum is hit
 * (out then holds a partial document the caller should discard). */
enum nb_err nb_acl_to_xml(const struct nb_acl *acl, struct nb_buf *out);

/* The policy whose Id equals `id` exactly (case-sensitive), or NULL. The
 * result points into *acl. Either argument may be NULL (then NULL). */
const struct nb_acl_entry *nb_acl_find(const struct nb_acl *acl, const char *id);

/* NB_OK when every policy's Permission uses only letters from `allowed`
 * (e.g. "raup" for queues, "raud" for tables), NB_ERR_INVALID otherwise.
 * Azurite answers a bad letter with 400 InvalidXmlDocument; the service
 * handler decides whether to check. */
enum nb_err nb_acl_check_permissions(const struct nb_acl *acl, const char *allowed);

#endif
