/* Encodings (see encode.h). Base64 is OpenSSL's; percent-coding is ours. */
#include "core/encode.h"
#include "core/mem.h"
#include <openssl/evp.h>
#include <string.h>

char *nb_base64_encode(const void *data, size_t n)
{
    char *out = nb_malloc(4 * ((n + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)out, data, (int)n);
    return out;
}

bool nb_base64_decode(const char *s, size_t n, unsigned char **out, size_t *outlen)
{
    *out = NULL;
    *outlen = 0;
    if (n % 4 != 0) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '+' || c == '/' || (c == '=' && i >= n - 2);
        if (!ok) return false;
        if (c == '=' && i == n - 2 && s[n - 1] != '=') return false;
    }
    unsigned char *buf = nb_malloc(n / 4 * 3 + 1);
    int len = n ? EVP_DecodeBlock(buf, (const unsigned char *)s, (int)n) : 0;
    if (len < 0) {
        free(buf);
        return false;
    }
    if (n >= 1 && s[n - 1] == '=') len--;
    if (n >= 2 && s[n - 2] == '=') len--;
    *out = buf;
    *outlen = (size_t)len;
    return true;
}

char *nb_base64url_encode(const void *data, size_t n)
{
    char *s = nb_base64_encode(data, n);
    size_t len = strlen(s);
    while (len && s[len - 1] == '=') s[--len] = '\0';
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '+') s[i] = '-';
        else if (s[i] == '/') s[i] = '_';
    }
    return s;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

size_t nb_pct_decode(const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (s[i] == '%' && i + 2 < n &&
            (hi = hexval(s[i + 1])) >= 0 && (lo = hexval(s[i + 2])) >= 0) {
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return o;
}

enum nb_err nb_pct_encode(struct nb_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        enum nb_err rc;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            rc = nb_buf_addc(b, (char)c);
        } else {
            char enc[3] = { '%', hex[c >> 4], hex[c & 15] };
            rc = nb_buf_add(b, enc, 3);
        }
        if (rc) return rc;
    }
    return NB_OK;
}
