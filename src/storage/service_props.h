/* Storage service properties (Get/Set Service Properties) and service stats,
 * shared by the queue and table services, which use the same document. The
 * stored form is always a complete canonical document produced here, so
 * what a client reads back has all four sections in Azure's order. */
#ifndef NB_STORAGE_SERVICE_PROPS_H
#define NB_STORAGE_SERVICE_PROPS_H
#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include <stddef.h>

#define NB_CORS_MAX_RULES 5

/* The document a fresh account answers with: XML declaration, then
 * <StorageServiceProperties> with Logging (all off), HourMetrics (on, APIs,
 * 7 days), MinuteMetrics (off) and an empty <Cors />. Static, never NULL. */
const char *nb_service_props_default(void);

/* Apply a Set Service Properties body to the stored document.
 * stored: the current document (NULL = nb_service_props_default()).
 * incoming/len: the request body, borrowed.
 * On NB_OK, *merged is a new complete document (heap, caller frees with
 * free()): every top-level section present in `incoming` (Logging,
 * HourMetrics, MinuteMetrics, Cors, DefaultServiceVersion) replaces the
 * stored one, the others are kept; a present section with missing children
 * takes the defaults for them; unknown elements are ignored. Children may
 * come in any order. Output order is canonical: Logging, HourMetrics,
 * MinuteMetrics, Cors, then DefaultServiceVersion if one was ever set.
 * Errors (*merged = NULL, *error_code set; error_code may be NULL):
 *   NB_ERR_INVALID "InvalidXmlDocument": empty or not well-formed body, a
 *       DOCTYPE, a root other than StorageServiceProperties;
 *   NB_ERR_INVALID "InvalidXmlNodeValue": more than 5 CorsRule, a CorsRule
 *       with empty AllowedOrigins or AllowedMethods, a method outside
 *       DELETE GET HEAD MERGE POST OPTIONS PUT PATCH, MaxAgeInSeconds not
 *       an integer in 0..2^31-1, a boolean other than true/false/1/0, a
 *       RetentionPolicy that is Enabled without Days in 1..365, a Version
 *       or CORS field longer than the limits below;
 *   NB_ERR_STORE "InternalError": `stored` itself cannot be read back. */
enum nb_err nb_service_props_merge(const char *stored, const char *incoming, size_t len,
                                   char **merged, const char **error_code);

/* Append the Get Service Stats body to `out`:
 *   <?xml version="1.0" encoding="utf-8"?><StorageServiceStats><GeoReplication>
 *   <Status>live</Status><LastSyncTime>RFC 1123 of now</LastSyncTime>
 *   </GeoReplication></StorageServiceStats>
 * NB_ERR_TOO_LARGE if out's maximum is hit. */
enum nb_err nb_service_stats_xml(nb_time_ms now, struct nb_buf *out);

#endif
