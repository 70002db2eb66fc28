/* Time formats on Azure's wire: RFC 1123 ("Sun, 22 Nov 2026 01:35:14 GMT")
 * and ISO 8601 UTC ("2026-11-22T01:35:14.0000000Z"). Pure functions. */
#ifndef NB_CORE_TIMEFMT_H
#define NB_CORE_TIMEFMT_H
#include <stddef.h>
#include "core/clock.h"
#include "core/err.h"

#define NB_RFC1123_LEN 30 /* including the NUL */
#define NB_ISO8601_LEN 29 /* with 7 fraction digits, including the NUL */

/* Whole seconds; out must hold NB_RFC1123_LEN bytes. */
void nb_time_rfc1123(nb_time_ms t, char out[NB_RFC1123_LEN]);
/* "YYYY-MM-DDThh:mm:ss.fffffffZ" (ms precision, padded to 7 digits). */
void nb_time_iso8601(nb_time_ms t, char out[NB_ISO8601_LEN]);
/* Parse ISO 8601 as Azure accepts it in SAS and ACLs: YYYY-MM-DD, optionally
 * followed by Thh:mm[:ss[.f+]], then Z or nothing (both read as UTC).
 * NB_ERR_INVALID on anything else. */
enum nb_err nb_time_parse_iso8601(const char *s, size_t n, nb_time_ms *out);

#endif
