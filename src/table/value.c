/* EDM values: names, comparison rules and the DateTime / GUID text forms
 * (see value.h). Pure functions. */
#include "table/value.h"
#include <stdio.h>
#include <string.h>

static const char *const names[] = {
    [NB_EDM_STRING] = "Edm.String",     [NB_EDM_INT32] = "Edm.Int32",
    [NB_EDM_INT64] = "Edm.Int64",       [NB_EDM_DOUBLE] = "Edm.Double",
    [NB_EDM_BOOLEAN] = "Edm.Boolean",   [NB_EDM_DATETIME] = "Edm.DateTime",
    [NB_EDM_GUID] = "Edm.Guid",         [NB_EDM_BINARY] = "Edm.Binary",
};

const char *nb_edm_name(enum nb_edm t)
{
    return (unsigned)t < sizeof(names) / sizeof(names[0]) ? names[t] : "Edm.String";
}

bool nb_edm_from_name(const char *name, size_t len, enum nb_edm *out)
{
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strlen(names[i]) == len && memcmp(names[i], name, len) == 0) {
            *out = (enum nb_edm)i;
            return true;
        }
    }
    return false;
}

static bool numeric(enum nb_edm t)
{
    return t == NB_EDM_INT32 || t == NB_EDM_INT64 || t == NB_EDM_DOUBLE;
}

static int cmp_bytes(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    if (c) return c < 0 ? -1 : 1;
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

int nb_value_compare(const struct nb_value *a, const struct nb_value *b, bool *comparable)
{
    *comparable = true;
    if (numeric(a->type) && numeric(b->type)) {
        if (a->type != NB_EDM_DOUBLE && b->type != NB_EDM_DOUBLE)
            return a->i < b->i ? -1 : a->i > b->i ? 1 : 0;
        double x = a->type == NB_EDM_DOUBLE ? a->d : (double)a->i;
        double y = b->type == NB_EDM_DOUBLE ? b->d : (double)b->i;
        if (x < y) return -1;
        if (x > y) return 1;
        return x == y ? 0 : 2; /* NaN: unordered */
    }
    if (a->type != b->type) {
        *comparable = false;
        return 0;
    }
    switch (a->type) {
    case NB_EDM_STRING:
    case NB_EDM_BINARY: return cmp_bytes(a->s, a->len, b->s, b->len);
    case NB_EDM_GUID: {
        /* ASCII-only folding over the whole length: strncasecmp would stop
         * at a NUL byte and follows the locale. */
        size_t n = a->len < b->len ? a->len : b->len;
        for (size_t i = 0; i < n; i++) {
            unsigned char x = (unsigned char)a->s[i], y = (unsigned char)b->s[i];
            if (x >= 'A' && x <= 'Z') x = (unsigned char)(x - 'A' + 'a');
            if (y >= 'A' && y <= 'Z') y = (unsigned char)(y - 'A' + 'a');
            if (x != y) return x < y ? -1 : 1;
        }
        return a->len < b->len ? -1 : a->len > b->len ? 1 : 0;
    }
    case NB_EDM_BOOLEAN: return (int)a->b - (int)b->b;
    case NB_EDM_DATETIME: return a->i < b->i ? -1 : a->i > b->i ? 1 : 0;
    default: *comparable = false; return 0;
    }
}

bool nb_value_cmp_op(const struct nb_value *a, enum nb_cmp_op op, const struct nb_value *b)
{
    bool ok;
    int c = nb_value_compare(a, b, &ok);
    if (!ok) return false;
    if (c == 2) return op == NB_CMP_NE; /* NaN */
    switch (op) {
    case NB_CMP_EQ: return c == 0;
    case NB_CMP_NE: return c != 0;
    case NB_CMP_GT: return c > 0;
    case NB_CMP_GE: return c >= 0;
    case NB_CMP_LT: return c < 0;
    case NB_CMP_LE: return c <= 0;
    }
    return false;
}

static bool digits(const char *s, size_t len, size_t at, size_t n, int *out)
{
    if (at + n > len) return false;
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[at + i];
        if (c < '0' || c > '9') return false;
        v = v * 10 + (c - '0');
    }
    *out = v;
    return true;
}

static int64_t days_from_civil(int64_t y, int m, int d)
{
    /* Howard Hinnant's algorithm: days since 1970-01-01, proleptic Gregorian. */
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m)
{
    static const int dim[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : dim[m - 1];
}

enum nb_err nb_edm_datetime_parse(const char *s, size_t len, int64_t *ticks)
{
    int y, mo, d, h, mi, sec = 0;
    if (!digits(s, len, 0, 4, &y) || len < 16 || s[4] != '-' || !digits(s, len, 5, 2, &mo) ||
        s[7] != '-' || !digits(s, len, 8, 2, &d) || (s[10] != 'T' && s[10] != 't') ||
        !digits(s, len, 11, 2, &h) || s[13] != ':' || !digits(s, len, 14, 2, &mi))
        return NB_ERR_INVALID;
    size_t i = 16;
    int64_t frac = 0;
    if (i < len && s[i] == ':') {
        if (!digits(s, len, 17, 2, &sec)) return NB_ERR_INVALID;
        i = 19;
        if (i < len && s[i] == '.') {
            i++;
            int n = 0;
            while (i < len && s[i] >= '0' && s[i] <= '9') {
                if (n < 7) {
                    frac = frac * 10 + (s[i] - '0');
                    n++;
                }
                i++;
            }
            if (n == 0) return NB_ERR_INVALID;
            for (; n < 7; n++) frac *= 10;
        }
    }
    int64_t offset_min = 0;
    if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i < len && (s[i] == '+' || s[i] == '-')) {
        int oh, om;
        if (!digits(s, len, i + 1, 2, &oh) || i + 3 >= len || s[i + 3] != ':' ||
            !digits(s, len, i + 4, 2, &om) || oh > 23 || om > 59)
            return NB_ERR_INVALID;
        offset_min = (s[i] == '+' ? 1 : -1) * (oh * 60 + om);
        i += 6;
    }
    if (i != len) return NB_ERR_INVALID;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 59)
        return NB_ERR_INVALID;
    int64_t days = days_from_civil(y, mo, d);
    int64_t secs = days * 86400 + h * 3600 + mi * 60 + sec - offset_min * 60;
    int64_t t = secs * 10000000LL + frac;
    /* The range applies to the UTC instant: an offset can move a 9999-12-31
     * local time into year 10000, or a 1601-01-01 one before the minimum. */
    if (t < NB_EDM_DATETIME_MIN_TICKS || t > NB_EDM_DATETIME_MAX_TICKS) return NB_ERR_RANGE;
    *ticks = t;
    return NB_OK;
}

void nb_edm_datetime_format(int64_t ticks, char out[NB_EDM_DATETIME_LEN])
{
    int64_t secs = ticks / 10000000LL, frac = ticks % 10000000LL;
    if (frac < 0) {
        frac += 10000000LL;
        secs -= 1;
    }
    int64_t days = secs / 86400, rem = secs % 86400;
    if (rem < 0) {
        rem += 86400;
        days -= 1;
    }
    /* civil_from_days (Hinnant) */
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp + (mp < 10 ? 3 : -9);
    y += m <= 2;
    char tmp[64];
    snprintf(tmp, sizeof(tmp), "%04d-%02d-%02dT%02d:%02d:%02d.%07dZ", (int)(y % 10000), (int)m,
             (int)d, (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60), (int)frac);
    size_t n = strnlen(tmp, NB_EDM_DATETIME_LEN - 1);
    memcpy(out, tmp, n);
    out[n] = '\0';
}

bool nb_edm_guid_parse(const char *s, size_t len, char out[NB_EDM_GUID_LEN])
{
    if (len != 36) return false;
    for (size_t i = 0; i < 36; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-') return false;
            out[i] = '-';
            continue;
        }
        if (c >= 'A' && c <= 'F') c = (char)(c - 'A' + 'a');
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
        out[i] = c;
    }
    out[36] = '\0';
    return true;
}
