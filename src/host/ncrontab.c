/* NCRONTAB schedules: turns a six-field expression (or a TimeSpan) into the
 * bitmasks of struct nb_cron, and finds the next matching second with its
 * own proleptic-Gregorian UTC arithmetic (no timegm/gmtime, no TZ, no libc
 * state). Owns no memory: a parsed nb_cron is plain data and nb_cron_next
 * is a pure function of it and `after`. Invariant after a successful parse:
 * either interval_ms > 0, or every mask is non-empty and holds only bits
 * inside its field's range. */
#include "host/ncrontab.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define NFIELDS 6
#define MAX_NUMBER 99999999 /* larger numbers saturate here and fail their range check */

static const char *const month_names[] = {"january",   "february", "march",    "april",
                                          "may",       "june",     "july",     "august",
                                          "september", "october",  "november", "december"};
static const char *const day_names[] = {"sunday",   "monday", "tuesday", "wednesday",
                                        "thursday", "friday", "saturday"};

enum field_kind { F_SECOND, F_MINUTE, F_HOUR, F_DAY, F_MONTH, F_WEEKDAY };

struct field_spec {
    const char *label;
    int lo, hi;               /* values a number may take */
    int star_hi;              /* last value of '*' and of 'a/n' (6 for day-of-week, not 7) */
    const char *const *names; /* names[i] means lo + i; NULL when the field has none */
    int nnames;
};

static const struct field_spec fields[NFIELDS] = {
    [F_SECOND] = {"second", 0, 59, 59, NULL, 0},
    [F_MINUTE] = {"minute", 0, 59, 59, NULL, 0},
    [F_HOUR] = {"hour", 0, 23, 23, NULL, 0},
    [F_DAY] = {"day", 1, 31, 31, NULL, 0},
    [F_MONTH] = {"month", 1, 12, 12, month_names, 12},
    [F_WEEKDAY] = {"day-of-week", 0, 7, 6, day_names, 7},
};

struct token {
    const char *s;
    size_t len;
};

__attribute__((format(printf, 3, 4))) static enum nb_err fail(char *err, size_t errlen,
                                                              const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return NB_ERR_INVALID;
}

/* A printable, bounded copy of user text for error messages: the input may
 * hold any bytes, and messages end up in logs and HTTP bodies. */
static const char *quote(char *dst, size_t cap, const char *s, size_t len)
{
    size_t n = 0, max = cap - 4; /* room for "..." and NUL */
    for (size_t i = 0; i < len && n < max; i++)
        dst[n++] = (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"') ? s[i] : '?';
    if (len > max) {
        memcpy(dst + n, "...", 3);
        n += 3;
    }
    dst[n] = '\0';
    return dst;
}

static bool is_space(char ch)
{
    return ch == ' ' || ch == '\t';
}

static bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

static char lower(char ch)
{
    return (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
}

static bool is_alpha(char ch)
{
    ch = lower(ch);
    return ch >= 'a' && ch <= 'z';
}

/* Digits at *pp up to e; values past MAX_NUMBER saturate so that "99999999999"
 * is reported as out of range rather than wrapping. */
static bool read_number(const char **pp, const char *e, int *out)
{
    const char *p = *pp;
    int v = 0;
    if (p >= e || !is_digit(*p)) return false;
    for (; p < e && is_digit(*p); p++)
        v = v > MAX_NUMBER ? v : v * 10 + (*p - '0');
    *out = v;
    *pp = p;
    return true;
}

/* A name matches when it is at least three letters long and a prefix of the
 * full English name: Jan, Sept, January; Mon, Tues, Thursday. */
static int lookup_name(const struct field_spec *f, const char *s, size_t len)
{
    if (len < 3) return -1;
    for (int i = 0; i < f->nnames; i++) {
        const char *n = f->names[i];
        size_t nl = strlen(n), k;
        if (len > nl) continue;
        for (k = 0; k < len && lower(s[k]) == n[k]; k++) {
        }
        if (k == len) return f->lo + i;
    }
    return -1;
}

/* One value of an item: a number or a name. *named tells the caller the
 * value was spelled out (day-of-week needs it for "Fri-Sun"). */
static enum nb_err read_value(const struct field_spec *f, const char **pp, const char *e,
                              const struct token *item, int *out, bool *named, char *err,
                              size_t errlen)
{
    char q[40];
    const char *p = *pp;
    *named = false;
    if (p < e && is_digit(*p)) {
        read_number(&p, e, out);
        if (*out < f->lo || *out > f->hi)
            return fail(err, errlen, "%s: value %s%d is out of range %d-%d in \"%s\"", f->label,
                        *out > MAX_NUMBER ? ">" : "", *out > MAX_NUMBER ? MAX_NUMBER : *out, f->lo,
                        f->hi, quote(q, sizeof(q), item->s, item->len));
        *pp = p;
        return NB_OK;
    }
    if (p < e && is_alpha(*p)) {
        const char *start = p;
        while (p < e && is_alpha(*p))
            p++;
        if (!f->names)
            return fail(err, errlen, "%s: names are not allowed here, got \"%s\"", f->label,
                        quote(q, sizeof(q), item->s, item->len));
        *out = lookup_name(f, start, (size_t)(p - start));
        if (*out < 0)
            return fail(err, errlen, "%s: unknown name \"%s\" (use %s)", f->label,
                        quote(q, sizeof(q), start, (size_t)(p - start)),
                        f->names == month_names ? "Jan..Dec" : "Sun..Sat");
        *named = true;
        *pp = p;
        return NB_OK;
    }
    return fail(err, errlen, "%s: expected a number%s in \"%s\"", f->label,
                f->names ? " or a name" : "", quote(q, sizeof(q), item->s, item->len));
}

/* item := ('*' | '?' | value ['-' value]) ['/' step] */
static enum nb_err parse_item(const struct field_spec *f, const struct token *item, uint64_t *mask,
                              char *err, size_t errlen)
{
    char q[40];
    const char *p = item->s, *e = item->s + item->len;
    int a, b, step = 1;
    bool single = false, named_a, named_b;
    enum nb_err rc;

    if (*p == '*' || *p == '?') {
        if (*p == '?' && f != &fields[F_DAY] && f != &fields[F_WEEKDAY])
            return fail(err, errlen, "%s: '?' is only allowed in the day and day-of-week fields",
                        f->label);
        p++;
        a = f->lo;
        b = f->star_hi;
    } else {
        if ((rc = read_value(f, &p, e, item, &a, &named_a, err, errlen))) return rc;
        b = a;
        single = true;
        if (p < e && *p == '-') {
            p++;
            if ((rc = read_value(f, &p, e, item, &b, &named_b, err, errlen))) return rc;
            single = false;
            /* "Fri-Sun" means Friday through Sunday, Sunday being 7 here. */
            if (f == &fields[F_WEEKDAY] && named_b && b == 0 && a > 0) b = 7;
            if (a > b)
                return fail(err, errlen, "%s: range %d-%d is reversed in \"%s\"", f->label, a, b,
                            quote(q, sizeof(q), item->s, item->len));
        }
    }
    if (p < e && *p == '/') {
        p++;
        if (!read_number(&p, e, &step))
            return fail(err, errlen, "%s: '/' must be followed by a step in \"%s\"", f->label,
                        quote(q, sizeof(q), item->s, item->len));
        if (step == 0)
            return fail(err, errlen, "%s: step must be at least 1 in \"%s\"", f->label,
                        quote(q, sizeof(q), item->s, item->len));
        if (step > f->hi - f->lo + 1)
            return fail(err, errlen, "%s: step %s%d is larger than the field's range %d-%d",
                        f->label, step > MAX_NUMBER ? ">" : "",
                        step > MAX_NUMBER ? MAX_NUMBER : step, f->lo, f->hi);
        if (single && a < f->star_hi) b = f->star_hi; /* a/n: from a to the end */
    }
    if (p != e)
        return fail(err, errlen, "%s: unexpected '%c' in \"%s\"", f->label,
                    (*p >= 0x20 && *p < 0x7f) ? *p : '?', quote(q, sizeof(q), item->s, item->len));
    for (int v = a; v <= b; v += step)
        *mask |= (uint64_t)1 << v;
    return NB_OK;
}

/* field := item (',' item)*. *star is Vixie cron's rule for the day fields:
 * a field that starts with '*' (or '?') does not count as a restriction
 * when day-of-month and day-of-week are combined, even when stepped. */
static enum nb_err parse_field(const struct field_spec *f, const struct token *t, uint64_t *mask,
                               bool *star, char *err, size_t errlen)
{
    char q[40];
    const char *p = t->s, *e = t->s + t->len;
    *mask = 0;
    *star = *p == '*' || *p == '?';
    for (;;) {
        const char *comma = memchr(p, ',', (size_t)(e - p));
        struct token item = {p, (size_t)((comma ? comma : e) - p)};
        if (item.len == 0)
            return fail(err, errlen, "%s: empty list item in \"%s\"", f->label,
                        quote(q, sizeof(q), t->s, t->len));
        enum nb_err rc = parse_item(f, &item, mask, err, errlen);
        if (rc) return rc;
        if (!comma) break;
        p = comma + 1;
    }
    if (f == &fields[F_WEEKDAY] && (*mask & (1u << 7))) *mask = (*mask & 0x7f) | 1; /* 7 = Sun */
    return NB_OK;
}

/* [d.]hh:mm[:ss[.fffffff]], as .NET's TimeSpan.Parse reads it, including its
 * quirk that "hh:mm:ss" with hh >= 24 is read as days:hours:minutes (Azure's
 * docs call that form dd:hh:mm). */
static enum nb_err parse_timespan(const struct token *t, struct nb_cron *out, char *err,
                                  size_t errlen)
{
    char q[40];
    const char *p = t->s, *e = t->s + t->len;
    int part[3] = {0, 0, 0}, days = 0, nparts = 0, frac_ms = 0;
    bool has_days = false, has_frac = false;

    if (!read_number(&p, e, &part[0])) goto bad;
    if (p < e && *p == '.') {
        p++;
        days = part[0];
        has_days = true;
        if (!read_number(&p, e, &part[0])) goto bad;
    }
    nparts = 1;
    while (nparts < 3 && p < e && *p == ':') {
        p++;
        if (!read_number(&p, e, &part[nparts++])) goto bad;
    }
    if (nparts < 2) goto bad;
    if (nparts == 3 && p < e && *p == '.') {
        int digits = 0;
        p++;
        has_frac = true;
        for (; p < e && is_digit(*p); p++, digits++) {
            if (digits >= 7) goto bad;
            if (digits < 3) frac_ms = frac_ms * 10 + (*p - '0');
        }
        if (digits == 0) goto bad;
        for (; digits < 3; digits++)
            frac_ms *= 10;
    }
    if (p != e) goto bad;
    if (nparts == 3 && !has_days && !has_frac && part[0] >= 24) {
        days = part[0];
        part[0] = part[1];
        part[1] = part[2];
        part[2] = 0;
    }
    if (days > 10675199 || part[0] > 23 || part[1] > 59 || part[2] > 59)
        return fail(err, errlen,
                    "TimeSpan \"%s\" is out of range (hours 0-23, minutes and seconds 0-59)",
                    quote(q, sizeof(q), t->s, t->len));
    out->interval_ms =
        (((int64_t)days * 24 + part[0]) * 3600 + part[1] * 60 + part[2]) * 1000 + frac_ms;
    if (out->interval_ms <= 0)
        return fail(err, errlen, "TimeSpan \"%s\" must be greater than zero",
                    quote(q, sizeof(q), t->s, t->len));
    return NB_OK;
bad:
    return fail(err, errlen, "\"%s\" is not a TimeSpan (expected hh:mm:ss or d.hh:mm:ss)",
                quote(q, sizeof(q), t->s, t->len));
}

enum nb_err nb_cron_parse(const char *expr, struct nb_cron *out, char *err, size_t errlen)
{
    struct token tok[NFIELDS];
    size_t n = 0;
    const char *p = expr;
    uint64_t mask[NFIELDS];
    bool star[NFIELDS];
    enum nb_err rc = NB_OK;

    memset(out, 0, sizeof(*out));
    if (err && errlen) err[0] = '\0';
    while (*p) {
        while (is_space(*p))
            p++;
        if (!*p) break;
        const char *start = p;
        while (*p && !is_space(*p))
            p++;
        if (n < NFIELDS) tok[n] = (struct token){start, (size_t)(p - start)};
        n++;
    }
    if (n == 0) return fail(err, errlen, "empty schedule");
    if (n == 1 && memchr(tok[0].s, ':', tok[0].len)) {
        rc = parse_timespan(&tok[0], out, err, errlen);
        goto cleanup;
    }
    if (n == 5)
        return fail(err, errlen,
                    "5 fields given, but Azure NCRONTAB schedules need 6: "
                    "{second} {minute} {hour} {day} {month} {day-of-week} "
                    "(add the seconds field first, e.g. \"0 */5 * * * *\")");
    if (n != NFIELDS)
        return fail(err, errlen,
                    "%zu field%s given; expected 6: {second} {minute} {hour} {day} {month} "
                    "{day-of-week}, or a TimeSpan hh:mm:ss",
                    n, n == 1 ? "" : "s");
    for (int i = 0; i < NFIELDS; i++)
        if ((rc = parse_field(&fields[i], &tok[i], &mask[i], &star[i], err, errlen))) goto cleanup;

    out->seconds = mask[F_SECOND];
    out->minutes = mask[F_MINUTE];
    out->hours = (uint32_t)mask[F_HOUR];
    out->days = (uint32_t)mask[F_DAY];
    out->months = (uint16_t)mask[F_MONTH];
    out->weekdays = (uint8_t)mask[F_WEEKDAY];
    out->days_star = star[F_DAY];
    out->weekdays_star = star[F_WEEKDAY];
cleanup:
    if (rc) memset(out, 0, sizeof(*out));
    return rc;
}

/* ---- calendar: Howard Hinnant's days-from-civil and its inverse ---- */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;                                   /* [0, 399] */
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1; /* [0, 365] */
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;           /* [0, 146096] */
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
    static const int dim[13] = {0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dim[m];
}

static bool has(uint64_t mask, int bit)
{
    return (mask >> bit) & 1;
}

/* The smallest set bit >= from, or limit + 1 (which makes the caller carry). */
static int next_set(uint64_t mask, int from, int limit)
{
    uint64_t m = from >= 64 ? 0 : mask >> from << from;
    if (!m) return limit + 1;
    int b = __builtin_ctzll(m);
    return b > limit ? limit + 1 : b;
}

static bool day_matches(const struct nb_cron *c, int64_t y, int m, int d)
{
    int64_t z = days_from_civil(y, m, d) + 4; /* 1970-01-01 was a Thursday */
    int wd = (int)(z - floor_div(z, 7) * 7);
    bool dom = has(c->days, d), dow = has(c->weekdays, wd);
    /* NCrontab's rule (so Azure's): the day must satisfy both fields, so
     * "1-7 * Tue" is the first Tuesday of the month. Vixie cron would take
     * either when both are restricted; the timer trigger does not. */
    return dom && dow;
}

/* Times past which `after + 9 years` in ms could overflow. */
#define LAST_AFTER (INT64_MAX - (int64_t)10 * 366 * 86400 * 1000)

nb_time_ms nb_cron_next(const struct nb_cron *c, nb_time_ms after)
{
    if (c->interval_ms > 0) return after > INT64_MAX - c->interval_ms ? -1 : after + c->interval_ms;
    if (!c->seconds || !c->minutes || !c->hours || !c->days || !c->months || !c->weekdays)
        return -1; /* not a parsed schedule */
    if (after > LAST_AFTER) return -1;

    int64_t t = floor_div(after, 1000) + 1; /* the first whole second strictly after */
    int64_t day = floor_div(t, 86400), sod = t - day * 86400, y;
    int m, d, h = (int)(sod / 3600), mi = (int)(sod / 60 % 60), s = (int)(sod % 60);
    civil_from_days(day, &y, &m, &d);
    const int64_t last_year = y + 8;

    /* Each step either accepts the current unit or moves it to its next
     * candidate and resets the smaller units; carries are normalised at the
     * top. Days are the only unit walked one by one (day-of-week depends on
     * the date), so the loop is bounded by ~9 years of days. */
    for (;;) {
        if (s > 59) s = 0, mi++;
        if (mi > 59) mi = 0, h++;
        if (h > 23) h = 0, d++;
        if (m > 12) m = 1, y++;
        if (d > days_in_month(y, m)) d = 1, m++;
        if (m > 12) m = 1, y++;
        if (y > last_year) return -1;

        if (!has(c->months, m)) {
            m = next_set(c->months, m, 12);
            d = 1, h = mi = s = 0;
        } else if (!day_matches(c, y, m, d)) {
            d++, h = mi = s = 0;
        } else if (!has(c->hours, h)) {
            h = next_set(c->hours, h, 23);
            mi = s = 0;
        } else if (!has(c->minutes, mi)) {
            mi = next_set(c->minutes, mi, 59);
            s = 0;
        } else if (!has(c->seconds, s)) {
            s = next_set(c->seconds, s, 59);
        } else {
            return ((days_from_civil(y, m, d) * 86400) + h * 3600 + mi * 60 + s) * 1000;
        }
    }
}
