/* Byte encodings used on the wire: base64 (OpenSSL underneath), URL-safe
 * base64, percent-decoding of URL components, and hex. */
#ifndef NB_CORE_ENCODE_H
#define NB_CORE_ENCODE_H
#include <stdbool.h>
#include <stddef.h>
#include "core/buf.h"

/* Standard base64 with padding; returns a heap string the caller frees. */
char *nb_base64_encode(const void *data, size_t n);
/* Decode standard base64 (whitespace not allowed). Returns false on bad
 * input. *out is heap memory the caller frees; *outlen its length. */
bool nb_base64_decode(const char *s, size_t n, unsigned char **out, size_t *outlen);
/* URL-safe base64 without padding (RFC 4648 §5); caller frees. */
char *nb_base64url_encode(const void *data, size_t n);
/* Percent-decode n bytes into `out` (which must hold n+1 bytes); returns the
 * decoded length. '+' is left alone (Azure signs it literally). A '%' not
 * followed by two hex digits is copied as is. */
size_t nb_pct_decode(const char *s, size_t n, char *out);
/* Percent-encode everything but unreserved characters (RFC 3986). */
enum nb_err nb_pct_encode(struct nb_buf *b, const char *s, size_t n);

#endif
