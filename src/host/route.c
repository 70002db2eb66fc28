/* HTTP trigger route templates (see route.h): a template is parsed once into
 * an immutable array of segments, so matching reads shared state only and is
 * safe from any listener thread. Matching allocates nothing but the values it
 * hands back: the decoded path lives in stack scratch unless it is unusually
 * long. Owns its compiled regexes; knows nothing of HTTP or of the host. */
#include "host/route.h"
#include "core/encode.h"
#include "core/mem.h"
#include <limits.h>
#include <regex.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum seg_kind { SEG_LITERAL, SEG_PARAM, SEG_CATCHALL };

/* Precedence rank of one segment; lower is more specific. */
enum rank { RANK_LITERAL, RANK_CONSTRAINED, RANK_PARAM, RANK_OPTIONAL, RANK_CATCHALL };

/* Constraint checks. min/max/range share C_RANGE and the length family shares
 * C_LENGTH: the parser turns their arguments into inclusive [lo, hi] bounds. */
enum ctype {
    C_INT,
    C_LONG,
    C_DOUBLE,
    C_BOOL,
    C_GUID,
    C_DATETIME,
    C_ALPHA,
    C_RANGE,
    C_LENGTH,
    C_REGEX
};

enum cargs {
    A_NONE,   /* int, long, ... */
    A_MIN,    /* one integer: lo */
    A_MAX,    /* one integer: hi */
    A_RANGE,  /* two integers a <= b */
    A_MINLEN, /* one count >= 0: lo */
    A_MAXLEN, /* one count >= 0: hi */
    A_LENGTH, /* one count (exact) or two counts a <= b */
    A_REGEX,  /* a pattern */
};

static const struct {
    const char *name;
    enum ctype type;
    enum cargs args;
} constraint_table[] = {
    {"int", C_INT, A_NONE},
    {"long", C_LONG, A_NONE},
    {"double", C_DOUBLE, A_NONE},
    {"bool", C_BOOL, A_NONE},
    {"guid", C_GUID, A_NONE},
    {"datetime", C_DATETIME, A_NONE},
    {"alpha", C_ALPHA, A_NONE},
    {"min", C_RANGE, A_MIN},
    {"max", C_RANGE, A_MAX},
    {"range", C_RANGE, A_RANGE},
    {"length", C_LENGTH, A_LENGTH},
    {"minlength", C_LENGTH, A_MINLEN},
    {"maxlength", C_LENGTH, A_MAXLEN},
    {"regex", C_REGEX, A_REGEX},
};
#define NCONSTRAINTS (sizeof(constraint_table) / sizeof(constraint_table[0]))

struct constraint {
    enum ctype type;
    int64_t lo, hi; /* inclusive bounds for C_RANGE (value) and C_LENGTH (chars) */
    regex_t *re;    /* C_REGEX; heap so the array may move while parsing */
};

struct segment {
    enum seg_kind kind;
    enum rank rank;
    bool optional; /* may be absent: '?', a default, or a catch-all */
    char *text;    /* literal text, or the parameter name as written */
    size_t len;    /* strlen(text) */
    char *def;     /* default value, or NULL */
    struct constraint *cons;
    size_t ncons;
};

struct nb_route {
    struct segment *segs;
    size_t nsegs;
    size_t nparams; /* SEG_PARAM + SEG_CATCHALL */
};

/* ---- small helpers (ASCII only, never the locale) ---------------------- */

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static bool ieq(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen) return false;
    for (size_t i = 0; i < alen; i++)
        if (lower(a[i]) != lower(b[i])) return false;
    return true;
}

static bool ieq_c(const char *a, size_t alen, const char *b)
{
    return ieq(a, alen, b, strlen(b));
}

/* [+-]digits into an int64_t, rejecting overflow and anything else. */
static bool parse_i64(const char *s, size_t n, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (i < n && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
    if (i == n) return false;
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, v = 0;
    for (; i < n; i++) {
        if (!is_digit(s[i])) return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (limit - d) / 10) return false;
        v = v * 10 + d;
    }
    if (!neg)
        *out = (int64_t)v;
    else if (v == (uint64_t)INT64_MAX + 1)
        *out = INT64_MIN;
    else
        *out = -(int64_t)v;
    return true;
}

/* [+-] (digits [. digits] | . digits) [(e|E) [+-] digits]; no hex, inf or nan. */
static bool is_double(const char *s, size_t n)
{
    size_t i = 0, mant = 0;
    if (i < n && (s[i] == '+' || s[i] == '-')) i++;
    for (; i < n && is_digit(s[i]); i++)
        mant++;
    if (i < n && s[i] == '.') {
        for (i++; i < n && is_digit(s[i]); i++)
            mant++;
    }
    if (mant == 0) return false;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        size_t exp = 0;
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) i++;
        for (; i < n && is_digit(s[i]); i++)
            exp++;
        if (exp == 0) return false;
    }
    return i == n;
}

/* 8-4-4-4-12 hex digits, optionally wrapped in braces. */
static bool is_guid(const char *s, size_t n)
{
    if (n == 38 && s[0] == '{' && s[37] == '}') s++, n -= 2;
    if (n != 36) return false;
    for (size_t i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-') return false;
        } else if (hexval(s[i]) < 0) {
            return false;
        }
    }
    return true;
}

/* Fixed-width decimal field s[0..w) within [lo, hi]. */
static bool field(const char *s, size_t w, int lo, int hi, int *out)
{
    int v = 0;
    for (size_t i = 0; i < w; i++) {
        if (!is_digit(s[i])) return false;
        v = v * 10 + (s[i] - '0');
    }
    if (v < lo || v > hi) return false;
    if (out) *out = v;
    return true;
}

/* ISO 8601 as a path segment carries it: YYYY-MM-DD, optionally followed by
 * (T|t|space) hh:mm[:ss[.fraction]] and then Z or +hh:mm / -hh:mm. */
static bool is_datetime(const char *s, size_t n)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, m, d;
    if (n < 10 || s[4] != '-' || s[7] != '-') return false;
    if (!field(s, 4, 1, 9999, &y) || !field(s + 5, 2, 1, 12, &m)) return false;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (!field(s + 8, 2, 1, mdays[m - 1] + (m == 2 && leap), &d)) return false;
    if (n == 10) return true;
    size_t i = 10;
    if (s[i] != 'T' && s[i] != 't' && s[i] != ' ') return false;
    i++;
    if (n - i < 5 || s[i + 2] != ':') return false;
    if (!field(s + i, 2, 0, 23, NULL) || !field(s + i + 3, 2, 0, 59, NULL)) return false;
    i += 5;
    if (i < n && s[i] == ':') {
        if (n - i < 3 || !field(s + i + 1, 2, 0, 59, NULL)) return false;
        i += 3;
        if (i < n && s[i] == '.') {
            size_t f = 0;
            for (i++; i < n && is_digit(s[i]); i++)
                f++;
            if (f == 0 || f > 9) return false;
        }
    }
    if (i == n) return true;
    if ((s[i] == 'Z' || s[i] == 'z') && i + 1 == n) return true;
    if ((s[i] == '+' || s[i] == '-') && n - i == 6 && s[i + 3] == ':')
        return field(s + i + 1, 2, 0, 14, NULL) && field(s + i + 4, 2, 0, 59, NULL);
    return false;
}

/* Length in characters (UTF-8 code points: continuation bytes don't count). */
static int64_t char_count(const char *s, size_t n)
{
    int64_t c = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80) c++;
    return c;
}

/* s is NUL-terminated at s[n] (regexec needs that) and never empty. */
static bool satisfies(const struct constraint *c, const char *s, size_t n)
{
    int64_t v;
    switch (c->type) {
    case C_INT: return parse_i64(s, n, &v) && v >= INT32_MIN && v <= INT32_MAX;
    case C_LONG: return parse_i64(s, n, &v);
    case C_DOUBLE: return is_double(s, n);
    case C_BOOL: return ieq_c(s, n, "true") || ieq_c(s, n, "false");
    case C_GUID: return is_guid(s, n);
    case C_DATETIME: return is_datetime(s, n);
    case C_ALPHA:
        for (size_t i = 0; i < n; i++)
            if (!is_alpha(s[i])) return false;
        return n > 0;
    case C_RANGE: return parse_i64(s, n, &v) && v >= c->lo && v <= c->hi;
    case C_LENGTH: v = char_count(s, n); return v >= c->lo && v <= c->hi;
    case C_REGEX: return regexec(c->re, s, 0, NULL, 0) == 0;
    }
    return false;
}

static bool satisfies_all(const struct segment *g, const char *s, size_t n)
{
    for (size_t i = 0; i < g->ncons; i++)
        if (!satisfies(&g->cons[i], s, n)) return false;
    return true;
}

/* ---- parsing ------------------------------------------------------------ */

struct pctx {
    const char *tmpl; /* as given, for messages */
    char *err;
    size_t errlen;
};

/* "route '<template>': <reason>", control bytes shown as '?'. */
__attribute__((format(printf, 2, 3))) static void fail(const struct pctx *p, const char *fmt, ...)
{
    if (!p->err || !p->errlen) return;
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    size_t tl = strlen(p->tmpl);
    snprintf(p->err, p->errlen, "route '%.*s%s': %s", tl > 80 ? 77 : (int)tl, p->tmpl,
             tl > 80 ? "..." : "", why);
    for (char *c = p->err; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f) *c = '?';
}

/* What .NET's \d \w \s mean inside a POSIX bracket expression. */
static const char *bracket_class(char c)
{
    return c == 'd' ? "0-9" : c == 'w' ? "[:alnum:]_" : c == 's' ? "[:space:]" : NULL;
}

/* Rewrites a .NET-flavoured pattern into POSIX ERE: \d and \D (which POSIX
 * lacks; glibc already knows \w \s \W \S outside brackets) and \d \w \s inside
 * brackets. Rejects a ')' that would close the ^( ) wrapper and so unanchor
 * the match. Returns a heap string, or NULL with *why set. */
static char *translate_regex(const char *s, size_t n, const char **why)
{
    char *out = nb_malloc(10 * n + 8), *o = out;
    bool in_br = false;
    long depth = 0;
    *o++ = '^';
    *o++ = '(';
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_br) {
            if (c == '[' && i + 1 < n && (s[i + 1] == ':' || s[i + 1] == '.' || s[i + 1] == '=')) {
                char close = s[i + 1];
                *o++ = s[i++];
                *o++ = s[i++];
                while (i < n && !(s[i] == close && i + 1 < n && s[i + 1] == ']'))
                    *o++ = s[i++];
                if (i >= n) break; /* unterminated class: regcomp reports it */
                *o++ = s[i++];
                *o++ = s[i];
            } else if (c == '\\' && i + 1 < n && bracket_class(s[i + 1])) {
                const char *rep = bracket_class(s[++i]);
                memcpy(o, rep, strlen(rep));
                o += strlen(rep);
            } else {
                if (c == ']') in_br = false;
                *o++ = c;
            }
            continue;
        }
        if (c == '\\' && i + 1 < n) {
            const char *rep = s[i + 1] == 'd' ? "[0-9]" : s[i + 1] == 'D' ? "[^0-9]" : NULL;
            if (rep) {
                memcpy(o, rep, strlen(rep));
                o += strlen(rep);
            } else {
                *o++ = c;
                *o++ = s[i + 1];
            }
            i++;
            continue;
        }
        if (c == '[') {
            in_br = true;
            *o++ = c;
            if (i + 1 < n && s[i + 1] == '^') *o++ = s[++i];
            if (i + 1 < n && s[i + 1] == ']') *o++ = s[++i]; /* leading ']' is literal */
            continue;
        }
        if (c == '(') depth++;
        if (c == ')' && --depth < 0) {
            free(out);
            *why = "unbalanced ')'";
            return NULL;
        }
        *o++ = c;
    }
    *o++ = ')';
    *o++ = '$';
    *o = '\0';
    return out;
}

#define REGEX_MAX_NODES 4096
#define REGEX_MAX_DEPTH 32
#define REGEX_MAX_LEN 512

static uint64_t clamp(uint64_t v)
{
    return v > REGEX_MAX_NODES ? REGEX_MAX_NODES + 1 : v;
}

/* The repeat count "{n}", "{n,}" or "{n,m}" at s costs (copies made), or 0
 * when s does not start a valid bound. */
static uint64_t bound_copies(const char *s, size_t *used)
{
    size_t i = 1;
    uint64_t n = 0, m = 0;
    bool comma = false, digits = false;
    for (; s[i] && s[i] != '}'; i++) {
        if (s[i] == ',' && !comma) {
            comma = true;
        } else if (is_digit(s[i])) {
            uint64_t *v = comma ? &m : &n;
            *v = clamp(*v * 10 + (uint64_t)(s[i] - '0'));
            digits = true;
        } else {
            return 0;
        }
    }
    if (s[i] != '}' || !digits) return 0;
    *used = i;
    if (!comma) return n > 1 ? n : 1;
    return m > n ? m : n + 1;
}

/* glibc's regcomp copies the operand of every repetition ("a{3}" becomes
 * "aaa", "a+" becomes "aa*"), so "(a{99}){99}" or "a++++…" cost memory
 * exponential in the pattern's length. Estimate the expanded size of the
 * POSIX pattern and refuse big ones. Back-references are refused too: they
 * make regexec exponential in the client-supplied path. NULL when fine. */
static const char *regex_too_costly(const char *s)
{
    uint64_t total[REGEX_MAX_DEPTH], last[REGEX_MAX_DEPTH];
    int d = 0;
    total[0] = last[0] = 0;
    bool after_quantifier = false;
    if (strlen(s) > REGEX_MAX_LEN) return "longer than 512 characters";
    for (size_t i = 0; s[i]; i++) {
        uint64_t atom = 1, copies = 0;
        size_t used = 0;
        char c = s[i];
        bool quantifier = c == '*' || c == '+' || c == '?' ||
                          (c == '{' && bound_copies(s + i, &used) != 0);
        /* Stacked quantifiers ("a++", "a*?") are an error in .NET ("nested
         * quantifier") and undefined in POSIX; glibc expands them in ways
         * the estimate below does not bound. */
        if (quantifier && after_quantifier) return "nested quantifier";
        after_quantifier = quantifier;
        used = 0;
        if (c == '\\') {
            if (s[i + 1] >= '1' && s[i + 1] <= '9') return "back-references are not supported";
            if (s[i + 1]) i++;
        } else if (c == '[') {
            if (s[i + 1] == '^') i++;
            if (s[i + 1] == ']') i++;
            for (i++; s[i] && s[i] != ']'; i++) {
                if (s[i] == '[' && (s[i + 1] == ':' || s[i + 1] == '.' || s[i + 1] == '=')) {
                    const char *e = strchr(s + i + 2, s[i + 1]);
                    while (e && e[1] != ']')
                        e = strchr(e + 1, s[i + 1]);
                    if (!e) return NULL; /* unterminated: regcomp refuses it */
                    i = (size_t)(e + 1 - s);
                }
            }
            if (!s[i]) return NULL;
        } else if (c == '(') {
            if (++d == REGEX_MAX_DEPTH) return "groups nested too deeply";
            total[d] = last[d] = 0;
            continue;
        } else if (c == ')' && d > 0) {
            atom = total[d--];
        } else if (c == '|') {
            last[d] = 0;
            continue;
        } else if (c == '*' || c == '+' || c == '?') {
            copies = 2;
        } else if (c == '{' && (copies = bound_copies(s + i, &used)) != 0) {
            i += used;
        }
        if (copies) {
            total[d] = clamp(total[d] + last[d] * (copies - 1));
            last[d] = clamp(last[d] * copies);
        } else {
            total[d] = clamp(total[d] + atom);
            last[d] = atom;
        }
        uint64_t sum = 0;
        for (int k = 0; k <= d; k++)
            sum = clamp(sum + total[k]);
        if (sum > REGEX_MAX_NODES) return "too complex (repetitions expand too far)";
    }
    return NULL;
}

static bool compile_regex(const struct pctx *p, const char *name, const char *s, size_t n,
                          struct constraint *c)
{
    const char *why = NULL;
    char *pat = translate_regex(s, n, &why);
    if (pat && (why = regex_too_costly(pat)) != NULL) {
        free(pat);
        pat = NULL;
    }
    if (!pat) {
        fail(p, "bad regex in '%s': %s", name, why);
        return false;
    }
    regex_t *re = nb_malloc(sizeof(*re));
    int rc = regcomp(re, pat, REG_EXTENDED | REG_NOSUB | REG_ICASE);
    free(pat);
    if (rc != 0) {
        char msg[128];
        regerror(rc, re, msg, sizeof(msg));
        free(re);
        fail(p, "bad regex in '%s': %s", name, msg);
        return false;
    }
    c->re = re;
    return true;
}

/* Splits "a,b" (spaces around each allowed) into at most two integers. */
static size_t int_args(const char *s, size_t n, int64_t v[2])
{
    size_t count = 0, start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != ',') continue;
        size_t a = start, b = i;
        while (a < b && s[a] == ' ')
            a++;
        while (b > a && s[b - 1] == ' ')
            b--;
        if (count == 2 || !parse_i64(s + a, b - a, &v[count])) return 0;
        count++;
        start = i + 1;
    }
    return count;
}

/* One constraint "name" or "name(args)"; appends it to g. */
static bool add_constraint(const struct pctx *p, struct segment *g, const char *name, size_t nlen,
                           const char *args, size_t alen, bool has_args)
{
    size_t k;
    for (k = 0; k < NCONSTRAINTS; k++)
        if (ieq_c(name, nlen, constraint_table[k].name)) break;
    if (k == NCONSTRAINTS) {
        fail(p, "unknown constraint '%.*s' on '%s'", (int)(nlen > 40 ? 40 : nlen), name, g->text);
        return false;
    }
    const char *cname = constraint_table[k].name;
    enum cargs kind = constraint_table[k].args;
    struct constraint c = {.type = constraint_table[k].type, .lo = INT64_MIN, .hi = INT64_MAX};
    int64_t v[2] = {0, 0};
    size_t nv = 0;
    if (kind == A_NONE) {
        if (has_args) {
            fail(p, "constraint '%s' on '%s' takes no argument", cname, g->text);
            return false;
        }
    } else if (!has_args) {
        fail(p, "constraint '%s' on '%s' needs an argument", cname, g->text);
        return false;
    } else if (kind == A_REGEX) {
        if (alen == 0) {
            fail(p, "constraint 'regex' on '%s' needs a pattern", g->text);
            return false;
        }
        if (!compile_regex(p, g->text, args, alen, &c)) return false;
    } else {
        nv = int_args(args, alen, v);
        bool ok;
        switch (kind) {
        case A_MIN:
            ok = nv == 1;
            c.lo = v[0];
            break;
        case A_MAX:
            ok = nv == 1;
            c.hi = v[0];
            break;
        case A_RANGE:
            ok = nv == 2 && v[0] <= v[1];
            c.lo = v[0];
            c.hi = v[1];
            break;
        case A_MINLEN:
            ok = nv == 1 && v[0] >= 0;
            c.lo = v[0];
            break;
        case A_MAXLEN:
            ok = nv == 1 && v[0] >= 0;
            c.lo = 0;
            c.hi = v[0];
            break;
        case A_LENGTH:
            ok = (nv == 1 && v[0] >= 0) || (nv == 2 && v[0] >= 0 && v[0] <= v[1]);
            c.lo = v[0];
            c.hi = nv == 2 ? v[1] : v[0];
            break;
        default: ok = false; break;
        }
        if (!ok) {
            fail(p, "bad argument to '%s' on '%s': '%.*s'", cname, g->text,
                 (int)(alen > 40 ? 40 : alen), args);
            return false;
        }
    }
    g->cons = nb_realloc(g->cons, (g->ncons + 1) * sizeof(*g->cons));
    g->cons[g->ncons++] = c;
    return true;
}

/* Can the ')' at c[k] end a constraint's argument? */
static bool ends_args(const char *c, size_t n, size_t k)
{
    return c[k] == ')' &&
           (k + 1 == n || c[k + 1] == ':' || c[k + 1] == '=' || (c[k + 1] == '?' && k + 2 == n));
}

/* The ')' closing the argument list opened at c[open], or n. Parentheses are
 * counted (skipping escaped ones and bracket expressions) so a regex may
 * hold groups and colons: regex((a|b):c). If the count never closes at a
 * place an argument may end, ASP.NET's rule is the fallback: the first ')'
 * followed by ':', '=', a final '?' or the end. */
static size_t args_end(const char *c, size_t n, size_t open)
{
    long depth = 0;
    bool in_br = false;
    for (size_t k = open; k < n; k++) {
        if (c[k] == '\\') {
            k++;
        } else if (in_br) {
            in_br = c[k] != ']';
        } else if (c[k] == '[') {
            in_br = true;
            if (k + 1 < n && c[k + 1] == '^') k++;
            if (k + 1 < n && c[k + 1] == ']') k++;
        } else if (c[k] == '(') {
            depth++;
        } else if (c[k] == ')' && --depth == 0) {
            if (ends_args(c, n, k)) return k;
            break;
        }
    }
    for (size_t k = open + 1; k < n; k++)
        if (ends_args(c, n, k)) return k;
    return n;
}

/* The unescaped text between '{' and '}':
 *   ['*' ['*']] name {':' constraint ['(' args ')']} ['?' | '=' default]
 * (see args_end for where a constraint's argument ends). */
static bool parse_param(const struct pctx *p, struct segment *g, const char *c, size_t n)
{
    size_t i = 0;
    if (i < n && c[i] == '*') {
        g->kind = SEG_CATCHALL;
        i++;
        if (i < n && c[i] == '*') i++;
    }
    size_t ns = i;
    while (i < n && c[i] != ':' && c[i] != '=' && c[i] != '?') {
        if (memchr("{}/*", c[i], 4)) {
            fail(p, "parameter name '%.*s' may not contain '%c'", (int)(n > 40 ? 40 : n), c, c[i]);
            return false;
        }
        i++;
    }
    if (i == ns) {
        fail(p, "empty parameter name");
        return false;
    }
    g->text = nb_strndup(c + ns, i - ns);
    g->len = i - ns;
    while (i < n && c[i] == ':') {
        size_t s = ++i;
        while (i < n && is_alpha(c[i]))
            i++;
        size_t nlen = i - s;
        if (nlen == 0) {
            fail(p, "empty constraint on '%s'", g->text);
            return false;
        }
        const char *args = NULL;
        size_t alen = 0;
        bool has_args = false;
        if (i < n && c[i] == '(') {
            size_t k = args_end(c, n, i);
            if (k >= n) {
                fail(p, "unbalanced '(' in a constraint on '%s'", g->text);
                return false;
            }
            args = c + i + 1;
            alen = k - i - 1;
            has_args = true;
            i = k + 1;
        }
        if (i < n && c[i] != ':' && c[i] != '=' && c[i] != '?') {
            fail(p, "unexpected '%c' in a constraint on '%s'", c[i], g->text);
            return false;
        }
        if (!add_constraint(p, g, c + s, nlen, args, alen, has_args)) return false;
    }
    if (i < n && c[i] == '?') {
        if (i + 1 != n) {
            fail(p, "'?' must end parameter '%s'", g->text);
            return false;
        }
        if (g->kind == SEG_CATCHALL) {
            fail(p, "catch-all '%s' cannot be marked optional", g->text);
            return false;
        }
        g->optional = true;
    } else if (i < n && c[i] == '=') {
        if (c[n - 1] == '?') {
            fail(p, "optional parameter '%s' cannot have a default", g->text);
            return false;
        }
        g->def = nb_strndup(c + i + 1, n - i - 1);
        g->optional = true;
        size_t dl = n - i - 1;
        if (dl == 0 ? g->ncons > 0 : !satisfies_all(g, g->def, dl)) {
            fail(p, "default '%.*s' of '%s' does not satisfy its constraints",
                 (int)(dl > 40 ? 40 : dl), g->def, g->text);
            return false;
        }
    }
    if (g->kind == SEG_CATCHALL) {
        g->optional = true;
        g->rank = RANK_CATCHALL;
    } else {
        g->rank = g->optional ? RANK_OPTIONAL : g->ncons ? RANK_CONSTRAINED : RANK_PARAM;
    }
    return true;
}

/* Reads the segment starting at *pos (t[0..len) is the template without its
 * outer slashes) up to the next '/' outside braces. buf holds len+1 bytes. */
static bool parse_segment(const struct pctx *p, const char *t, size_t len, size_t *pos, char *buf,
                          struct segment *g)
{
    size_t i = *pos, start = i, blen = 0;
    bool has_param = false;
    while (i < len && t[i] != '/') {
        char c = t[i];
        bool pair = i + 1 < len && t[i + 1] == c;
        if (has_param || (c == '{' && !pair && blen > 0)) {
            size_t e = i;
            while (e < len && t[e] != '/')
                e++;
            fail(p,
                 "segment '%.*s' mixes a parameter with other text (a parameter must be the "
                 "whole segment)",
                 (int)(e - start > 60 ? 60 : e - start), t + start);
            return false;
        }
        if (c == '{' && !pair) {
            for (i++;; i++) {
                if (i >= len) {
                    fail(p, "unbalanced '{'");
                    return false;
                }
                c = t[i];
                pair = i + 1 < len && t[i + 1] == c;
                if (c == '}' && !pair) break;
                if (c == '{' && !pair) {
                    fail(p, "'{' inside a parameter (write '{{' for a literal brace)");
                    return false;
                }
                buf[blen++] = c;
                if (c == '{' || c == '}') i++; /* a doubled brace: keep one */
            }
            i++;
            has_param = true;
            continue;
        }
        if ((c == '{' || c == '}') && pair) {
            buf[blen++] = c;
            i += 2;
            continue;
        }
        if (c == '}') {
            fail(p, "unbalanced '}'");
            return false;
        }
        if (c == '?') {
            fail(p, "'?' is only allowed at the end of a parameter");
            return false;
        }
        buf[blen++] = c;
        i++;
    }
    *pos = i;
    if (has_param) {
        g->kind = SEG_PARAM;
        return parse_param(p, g, buf, blen);
    }
    if (blen == 0) {
        fail(p, "empty segment");
        return false;
    }
    g->kind = SEG_LITERAL;
    g->rank = RANK_LITERAL;
    g->text = nb_strndup(buf, blen);
    g->len = blen;
    return true;
}

/* Rules that span segments: catch-all last, only optional parameters after
 * an optional one, no name twice. */
static bool check_shape(const struct pctx *p, const struct nb_route *r)
{
    const struct segment *first_opt = NULL;
    for (size_t i = 0; i < r->nsegs; i++) {
        const struct segment *g = &r->segs[i];
        if (g->kind == SEG_CATCHALL && i + 1 != r->nsegs) {
            fail(p, "catch-all '%s' must be the last segment", g->text);
            return false;
        }
        if (first_opt && !g->optional) {
            fail(p,
                 "'%s' follows optional parameter '%s' (only optional parameters may follow "
                 "one)",
                 g->text, first_opt->text);
            return false;
        }
        if (g->kind == SEG_PARAM && g->optional && !first_opt) first_opt = g;
        if (g->kind == SEG_LITERAL) continue;
        for (size_t j = 0; j < i; j++) {
            const struct segment *h = &r->segs[j];
            if (h->kind != SEG_LITERAL && ieq(g->text, g->len, h->text, h->len)) {
                fail(p, "duplicate parameter name '%s'", g->text);
                return false;
            }
        }
    }
    return true;
}

enum nb_err nb_route_parse(const char *tmpl, struct nb_route **out, char *err, size_t errlen)
{
    struct pctx p = {.tmpl = tmpl ? tmpl : "", .err = err, .errlen = errlen};
    struct nb_route *r = NULL;
    char *buf = NULL;
    enum nb_err rc = NB_ERR_INVALID;
    size_t cap = 0, len = 0;
    const char *t = tmpl;
    if (err && errlen) err[0] = '\0';
    if (!out) goto cleanup;
    *out = NULL;
    if (!tmpl) {
        fail(&p, "no template");
        goto cleanup;
    }
    len = strlen(t);
    if (len && t[0] == '/') t++, len--;
    if (len && t[len - 1] == '/') len--;
    r = nb_calloc(1, sizeof(*r));
    buf = nb_malloc(len + 1);
    for (size_t pos = 0; len > 0;) {
        if (r->nsegs == cap) {
            cap = cap ? cap * 2 : 4;
            r->segs = nb_realloc(r->segs, cap * sizeof(*r->segs));
        }
        struct segment *g = &r->segs[r->nsegs++];
        memset(g, 0, sizeof(*g));
        if (!parse_segment(&p, t, len, &pos, buf, g)) goto cleanup;
        if (g->kind != SEG_LITERAL) r->nparams++;
        if (pos >= len) break;
        pos++; /* the '/' */
        if (pos == len) {
            fail(&p, "empty segment");
            goto cleanup;
        }
    }
    if (!check_shape(&p, r)) goto cleanup;
    *out = r;
    r = NULL;
    rc = NB_OK;
cleanup:
    if (rc != NB_OK && err && errlen && !err[0]) fail(&p, "invalid template");
    free(buf);
    nb_route_free(r);
    return rc;
}

void nb_route_free(struct nb_route *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->nsegs; i++) {
        struct segment *g = &r->segs[i];
        for (size_t k = 0; k < g->ncons; k++) {
            if (g->cons[k].re) {
                regfree(g->cons[k].re);
                free(g->cons[k].re);
            }
        }
        free(g->cons);
        free(g->text);
        free(g->def);
    }
    free(r->segs);
    free(r);
}

const char *nb_route_first_literal(const struct nb_route *r, char *buf, size_t len)
{
    if (!buf || !len) return "";
    buf[0] = '\0';
    if (!r || !r->nsegs || r->segs[0].kind != SEG_LITERAL) return buf;
    size_t n = r->segs[0].len < len - 1 ? r->segs[0].len : len - 1;
    for (size_t i = 0; i < n; i++)
        buf[i] = lower(r->segs[0].text[i]);
    buf[n] = '\0';
    return buf;
}

/* ---- matching ----------------------------------------------------------- */

#define SPLIT_SEGS 32
#define SPLIT_BYTES 512

struct pseg {
    const char *s; /* decoded, NUL-terminated */
    size_t len;
};

/* A request path split once and decoded once, shared by every route tried.
 * dec holds the decoded segments back to back, each NUL-terminated; full is
 * the whole decoded path with its '/' separators, laid out so that segment
 * i's suffix of the path starts at full + (segs[i].s - dec). */
struct split {
    struct pseg *segs;
    size_t n;
    char *dec, *full;
    size_t full_len;
    struct pseg seg_stack[SPLIT_SEGS];
    char byte_stack[2 * SPLIT_BYTES];
};

/* Escapes must be two hex digits and must not decode to NUL: the values are
 * C strings, and a half escape is a client bug we would rather not guess at. */
static bool escapes_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') continue;
        if (i + 2 >= n || hexval(s[i + 1]) < 0 || hexval(s[i + 2]) < 0) return false;
        if (s[i + 1] == '0' && s[i + 2] == '0') return false;
        i += 2;
    }
    return true;
}

static void split_cleanup(struct split *sp)
{
    if (sp->segs != sp->seg_stack) free(sp->segs);
    if (sp->dec != sp->byte_stack) free(sp->dec);
}

/* false when the path cannot be decoded (no route can match it); call
 * split_cleanup either way. */
static bool split_path(struct split *sp, const char *path)
{
    size_t len = path ? strlen(path) : 0;
    sp->segs = sp->seg_stack;
    sp->dec = sp->byte_stack;
    sp->full = sp->byte_stack + SPLIT_BYTES;
    sp->n = 0;
    sp->full_len = 0;
    sp->full[0] = '\0';
    if (len && path[0] == '/') path++, len--;
    if (len && path[len - 1] == '/') len--;
    if (len == 0) return true;
    size_t nseg = 1;
    for (size_t i = 0; i < len; i++)
        nseg += path[i] == '/';
    if (nseg > SPLIT_SEGS) sp->segs = nb_malloc(nseg * sizeof(*sp->segs));
    if (len + 1 > SPLIT_BYTES) {
        sp->dec = nb_malloc(2 * (len + 1));
        sp->full = sp->dec + len + 1;
    }
    size_t o = 0, start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && path[i] != '/') continue;
        if (!escapes_ok(path + start, i - start)) return false;
        size_t d = nb_pct_decode(path + start, i - start, sp->dec + o);
        sp->segs[sp->n++] = (struct pseg){sp->dec + o, d};
        memcpy(sp->full + o, sp->dec + o, d);
        o += d;
        sp->full[o++] = '/';
        start = i + 1;
    }
    sp->full_len = o - 1;
    sp->full[sp->full_len] = '\0';
    return true;
}

/* The decoded path from segment i on ("" past the end). */
static const char *rest_of(const struct split *sp, size_t i, size_t *len)
{
    if (i >= sp->n) {
        *len = 0;
        return "";
    }
    size_t off = (size_t)(sp->segs[i].s - sp->dec);
    *len = sp->full_len - off;
    return sp->full + off;
}

static bool route_check(const struct nb_route *r, const struct split *sp)
{
    for (size_t i = 0; i < r->nsegs; i++) {
        const struct segment *g = &r->segs[i];
        if (g->kind == SEG_CATCHALL) {
            size_t rl;
            const char *rest = rest_of(sp, i, &rl);
            return rl == 0 || satisfies_all(g, rest, rl);
        }
        /* Past the path's end: fine if this segment may be absent, and then
         * so may every later one (check_shape saw to that). */
        if (i >= sp->n) return g->optional;
        const struct pseg *s = &sp->segs[i];
        if (g->kind == SEG_LITERAL) {
            if (!ieq(g->text, g->len, s->s, s->len)) return false;
        } else if (s->len == 0 || !satisfies_all(g, s->s, s->len)) {
            return false;
        }
    }
    return r->nsegs >= sp->n;
}

static void fill_values(const struct nb_route *r, const struct split *sp,
                        struct nb_route_values *out)
{
    if (!out || !r->nparams) return;
    out->items = nb_calloc(r->nparams, sizeof(*out->items));
    for (size_t i = 0; i < r->nsegs; i++) {
        const struct segment *g = &r->segs[i];
        if (g->kind == SEG_LITERAL) continue;
        const char *v = NULL;
        if (g->kind == SEG_CATCHALL) {
            size_t rl;
            const char *rest = rest_of(sp, i, &rl);
            if (rl) v = rest;
        } else if (i < sp->n) {
            v = sp->segs[i].s;
        }
        if (!v) v = g->def;
        out->items[out->n].name = nb_strdup(g->text);
        out->items[out->n].value = v ? nb_strdup(v) : NULL;
        out->n++;
    }
}

void nb_route_values_cleanup(struct nb_route_values *v)
{
    if (!v) return;
    for (size_t i = 0; i < v->n; i++) {
        free(v->items[i].name);
        free(v->items[i].value);
    }
    free(v->items);
    v->items = NULL;
    v->n = 0;
}

bool nb_route_match(const struct nb_route *r, const char *path, struct nb_route_values *out)
{
    struct split sp;
    bool ok = false;
    if (out) *out = (struct nb_route_values){0};
    if (!r) return false;
    if (split_path(&sp, path) && route_check(r, &sp)) {
        fill_values(r, &sp, out);
        ok = true;
    }
    split_cleanup(&sp);
    return ok;
}

/* ---- router ------------------------------------------------------------- */

struct entry {
    struct nb_route *route;
    unsigned methods;
    void *data;
};

struct nb_router {
    struct entry *e;
    size_t n, cap;
};

struct nb_router *nb_router_new(void)
{
    return nb_calloc(1, sizeof(struct nb_router));
}

void nb_router_free(struct nb_router *rt)
{
    if (!rt) return;
    for (size_t i = 0; i < rt->n; i++)
        nb_route_free(rt->e[i].route);
    free(rt->e);
    free(rt);
}

void nb_router_add(struct nb_router *rt, struct nb_route *r, unsigned methods, void *data)
{
    if (!rt || !r) {
        nb_route_free(r);
        return;
    }
    if (rt->n == rt->cap) {
        rt->cap = rt->cap ? rt->cap * 2 : 8;
        rt->e = nb_realloc(rt->e, rt->cap * sizeof(*rt->e));
    }
    rt->e[rt->n++] = (struct entry){r, methods, data};
}

/* Does a beat b? The first differing segment rank decides; when the shorter
 * template is a prefix in rank of the longer one, the shorter wins: both
 * matched the same path, so the longer one's extra segments are absent
 * optional or catch-all parameters, and "items" is a better answer for
 * "items" than "items/{*rest}" is. Equal ranks: neither (earlier wins). */
static bool beats(const struct nb_route *a, const struct nb_route *b)
{
    size_t m = a->nsegs < b->nsegs ? a->nsegs : b->nsegs;
    for (size_t i = 0; i < m; i++)
        if (a->segs[i].rank != b->segs[i].rank) return a->segs[i].rank < b->segs[i].rank;
    return a->nsegs < b->nsegs;
}

static bool method_ok(const struct entry *e, unsigned method_bit)
{
    return e->methods == 0 || (e->methods & method_bit) != 0;
}

enum nb_route_result nb_router_match(const struct nb_router *rt, unsigned method_bit,
                                     const char *path, void **data, struct nb_route_values *out)
{
    struct split sp;
    const struct entry *best = NULL;
    enum nb_route_result res = NB_ROUTE_NONE;
    if (data) *data = NULL;
    if (out) *out = (struct nb_route_values){0};
    if (!rt) return NB_ROUTE_NONE;
    if (!split_path(&sp, path)) goto cleanup;
    /* Precedence is static, so a route that could not beat the best so far
     * is not even matched: constraint checks (regexes) are the costly part. */
    for (size_t i = 0; i < rt->n; i++) {
        const struct entry *e = &rt->e[i];
        if (!method_ok(e, method_bit)) continue;
        if (best && !beats(e->route, best->route)) continue;
        if (route_check(e->route, &sp)) best = e;
    }
    if (best) {
        fill_values(best->route, &sp, out);
        if (data) *data = best->data;
        res = NB_ROUTE_FOUND;
        goto cleanup;
    }
    for (size_t i = 0; i < rt->n; i++) {
        const struct entry *e = &rt->e[i];
        if (!method_ok(e, method_bit) && route_check(e->route, &sp)) {
            res = NB_ROUTE_BAD_METHOD;
            break;
        }
    }
cleanup:
    split_cleanup(&sp);
    return res;
}
