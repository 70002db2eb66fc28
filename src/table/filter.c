/* $filter: lexer, recursive-descent parser, evaluator and key-range
 * analysis (see filter.h and docs/internals/table-query.md). A filter owns
 * its tree and never changes after parsing. Every recursion is bounded: the
 * parser by MAX_NEST open parentheses and `not`s, all tree walks by
 * NB_FILTER_MAX_DEPTH, which each node checks as it is built. */
#include "table/filter.h"
#include "core/mem.h"
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The canonical text of a tree of depth D nests at most 2(D - 1) deep (a
 * `not` costs a parenthesis and a `not`), so this bound lets every canonical
 * text parse again. */
#define MAX_NEST (2 * NB_FILTER_MAX_DEPTH)

enum kind { K_OR, K_AND, K_NOT, K_CMP, K_PROP, K_LIT };

struct node {
    enum kind kind;
    enum nb_cmp_op op; /* K_CMP */
    int depth;         /* 1 for a leaf, else 1 + the deepest child */
    bool konst;        /* no property below: the value never changes */
    size_t n;          /* children: K_OR/K_AND >= 2, K_NOT 1, K_CMP 2 (left, right) */
    size_t cap;        /* allocated slots in kid */
    struct node **kid;
    char *text;        /* owned: K_PROP name; K_LIT string, guid text, binary bytes */
    size_t len;        /* K_PROP name length */
    struct nb_value v; /* K_LIT; v.s points into text */
};

struct nb_filter {
    struct node *root;
};

static const char *const op_names[] = {
    [NB_CMP_EQ] = "eq", [NB_CMP_NE] = "ne", [NB_CMP_GT] = "gt",
    [NB_CMP_GE] = "ge", [NB_CMP_LT] = "lt", [NB_CMP_LE] = "le",
};

/* ---- nodes ---- */

static struct node *node_new(enum kind kind)
{
    struct node *n = nb_calloc(1, sizeof(*n));
    n->kind = kind;
    n->depth = 1;
    n->konst = kind == K_LIT;
    return n;
}

static void node_free(struct node *n)
{
    if (!n) return;
    for (size_t i = 0; i < n->n; i++)
        node_free(n->kid[i]);
    free(n->kid);
    free(n->text);
    free(n);
}

static void node_add(struct node *n, struct node *c)
{
    /* Chains of one operator are kept flat: `(a and b) and c` is one node
     * with three operands, so long chains cost no depth. */
    if ((n->kind == K_AND || n->kind == K_OR) && c->kind == n->kind) {
        for (size_t i = 0; i < c->n; i++)
            node_add(n, c->kid[i]);
        c->n = 0;
        node_free(c);
        return;
    }
    if (n->n == n->cap) {
        n->cap = n->cap ? 2 * n->cap : 2;
        n->kid = nb_realloc(n->kid, n->cap * sizeof(*n->kid));
    }
    n->kid[n->n++] = c;
}

/* Depth and constness from the children. */
static void node_finish(struct node *n)
{
    n->depth = 1;
    n->konst = true;
    for (size_t i = 0; i < n->n; i++) {
        if (n->kid[i]->depth + 1 > n->depth) n->depth = n->kid[i]->depth + 1;
        n->konst = n->konst && n->kid[i]->konst;
    }
}

static struct node *node_clone(const struct node *n)
{
    struct node *c = nb_malloc(sizeof(*c));
    *c = *n;
    c->kid = NULL;
    c->n = c->cap = 0;
    if (n->n) {
        c->kid = nb_malloc(n->n * sizeof(*c->kid));
        for (size_t i = 0; i < n->n; i++)
            c->kid[i] = node_clone(n->kid[i]);
        c->n = c->cap = n->n;
    }
    if (n->text) {
        size_t sz = n->kind == K_PROP ? n->len : n->v.len;
        c->text = nb_malloc(sz + 1);
        memcpy(c->text, n->text, sz);
        c->text[sz] = '\0';
        if (n->kind == K_LIT) c->v.s = c->text;
    }
    return c;
}

/* A node usable as a condition: anything but a non-Boolean literal. */
static bool condition(const struct node *n)
{
    return n->kind != K_LIT || n->v.type == NB_EDM_BOOLEAN;
}

/* ---- lexer ---- */

enum tok {
    T_END,
    T_LPAREN,
    T_RPAREN,
    T_AND,
    T_OR,
    T_NOT,
    T_CMP,
    T_TRUE,
    T_FALSE,
    T_IDENT,
    T_STRING,
    T_NUMBER,
    T_TYPED,
    T_BAD,
};
enum prefix { P_DATETIME, P_GUID, P_BINARY };

struct token {
    enum tok t;
    size_t start, end;   /* the token's bytes */
    size_t vstart, vend; /* T_STRING, T_TYPED: between the quotes, still escaped */
    enum nb_cmp_op op;   /* T_CMP */
    enum prefix prefix;  /* T_TYPED */
    bool dbl;            /* T_NUMBER: has '.', an exponent or a D suffix */
    bool int64;          /* T_NUMBER: has an L suffix */
};

struct parser {
    const char *s;
    size_t len;
    size_t pos; /* where the next token starts (after tok) */
    struct token tok;
    struct token prev; /* the token before tok, for messages */
    int nest;
    unsigned ncmp;
    bool failed;
    char *err;
    size_t errlen;
};

__attribute__((format(printf, 3, 4))) static void fail(struct parser *p, size_t at, const char *fmt,
                                                       ...)
{
    if (p->failed) return; /* the first error is the one worth reporting */
    p->failed = true;
    if (!p->err || !p->errlen) return;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(p->err, p->errlen, "%s (at offset %zu)", msg, at);
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* Identifiers are ASCII letters, digits and '_'; bytes >= 0x80 count as
 * letters so that non-ASCII (UTF-8) property names pass through. */
static bool ident_start(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}

static bool ident_char(unsigned char c)
{
    return ident_start(c) || is_digit(c);
}

static bool span_is(const char *s, size_t n, const char *word)
{
    return strlen(word) == n && memcmp(s, word, n) == 0;
}

static bool span_ieq(const char *s, size_t n, const char *word)
{
    if (strlen(word) != n) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 'A' && c <= 'Z') c = (unsigned char)(c - 'A' + 'a');
        if (c != (unsigned char)word[i]) return false;
    }
    return true;
}

static const char *const keywords[] = {"and", "or", "not", "eq",   "ne",   "gt",
                                       "ge",  "lt", "le",  "true", "false"};

/* Quote input bytes for a message: at most 24, anything but printable
 * ASCII as '?', so that messages are always printable ASCII (they may end
 * up in a JSON error body). buf holds at least 32 bytes. */
static const char *quote(const char *s, size_t len, char *buf)
{
    size_t n = len > 24 ? 24 : len, o = 0;
    buf[o++] = '\'';
    for (size_t i = 0; i < n; i++)
        buf[o++] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
    if (len > n) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o++] = '\'';
    buf[o] = '\0';
    return buf;
}

/* Scan a quoted run starting at the quote at `q`; '' is an escaped quote.
 * Returns the offset just past the closing quote, or 0 when unterminated. */
static size_t scan_quoted(const struct parser *p, size_t q)
{
    for (size_t i = q + 1; i < p->len; i++) {
        if (p->s[i] != '\'') continue;
        if (i + 1 < p->len && p->s[i + 1] == '\'') {
            i++;
            continue;
        }
        return i + 1;
    }
    return 0;
}

static void lex_number(struct parser *p, struct token *t)
{
    const char *s = p->s;
    size_t i = t->start;
    if (s[i] == '-') i++;
    if (i >= p->len || !is_digit((unsigned char)s[i])) {
        fail(p, t->start, "'-' must be followed by digits");
        t->t = T_BAD;
        return;
    }
    while (i < p->len && is_digit((unsigned char)s[i]))
        i++;
    if (i < p->len && s[i] == '.') {
        i++;
        if (i >= p->len || !is_digit((unsigned char)s[i])) {
            fail(p, i, "digits expected after the decimal point");
            t->t = T_BAD;
            return;
        }
        while (i < p->len && is_digit((unsigned char)s[i]))
            i++;
        t->dbl = true;
    }
    if (i < p->len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < p->len && (s[i] == '+' || s[i] == '-')) i++;
        if (i >= p->len || !is_digit((unsigned char)s[i])) {
            fail(p, i, "digits expected in the exponent");
            t->t = T_BAD;
            return;
        }
        while (i < p->len && is_digit((unsigned char)s[i]))
            i++;
        t->dbl = true;
    }
    if (i < p->len) {
        char c = s[i];
        if (c == 'L' || c == 'l') {
            if (t->dbl) {
                fail(p, i, "an Int64 literal (L suffix) must be an integer");
                t->t = T_BAD;
                return;
            }
            t->int64 = true;
            i++;
        } else if (c == 'D' || c == 'd') {
            t->dbl = true;
            i++;
        } else if (c == 'M' || c == 'm' || c == 'F' || c == 'f') {
            fail(p, i, "decimal (M) and single (F) literals are not supported");
            t->t = T_BAD;
            return;
        }
    }
    if (i < p->len && (ident_char((unsigned char)s[i]) || s[i] == '.')) {
        char q[32];
        fail(p, i, "unexpected character %s after a number", quote(s + i, 1, q));
        t->t = T_BAD;
        return;
    }
    t->t = T_NUMBER;
    t->end = i;
}

/* Read the token at p->pos into p->tok and move p->pos past it. After an
 * error every further token is T_BAD. */
static void advance(struct parser *p)
{
    struct token *t = &p->tok;
    p->prev = *t;
    memset(t, 0, sizeof(*t));
    const char *s = p->s;
    size_t i = p->pos;
    while (i < p->len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n'))
        i++;
    t->start = t->end = i;
    if (p->failed) {
        t->t = T_BAD;
        return;
    }
    if (i >= p->len) {
        t->t = T_END;
        p->pos = i;
        return;
    }
    unsigned char c = (unsigned char)s[i];
    if (c == '(' || c == ')') {
        t->t = c == '(' ? T_LPAREN : T_RPAREN;
        t->end = i + 1;
    } else if (c == '\'') {
        size_t e = scan_quoted(p, i);
        if (!e) {
            fail(p, i, "unterminated string literal");
            t->t = T_BAD;
            return;
        }
        t->t = T_STRING;
        t->vstart = i + 1;
        t->vend = e - 1;
        t->end = e;
    } else if (c == '-' || is_digit(c)) {
        lex_number(p, t);
        if (t->t == T_BAD) return;
    } else if (ident_start(c)) {
        size_t e = i;
        while (e < p->len && ident_char((unsigned char)s[e]))
            e++;
        const char *w = s + i;
        size_t n = e - i;
        t->end = e;
        /* OData type-prefixed literals: a known prefix (any case) directly
         * followed by a quote. Any other word before a quote is a word. */
        if (e < p->len && s[e] == '\'' &&
            (span_ieq(w, n, "datetime") || span_ieq(w, n, "guid") || span_ieq(w, n, "binary") ||
             span_ieq(w, n, "x"))) {
            size_t q = scan_quoted(p, e);
            if (!q) {
                fail(p, e, "unterminated literal");
                t->t = T_BAD;
                return;
            }
            t->t = T_TYPED;
            t->prefix = span_ieq(w, n, "datetime") ? P_DATETIME
                        : span_ieq(w, n, "guid")   ? P_GUID
                                                   : P_BINARY;
            t->vstart = e + 1;
            t->vend = q - 1;
            t->end = q;
        } else if (span_is(w, n, "and")) {
            t->t = T_AND;
        } else if (span_is(w, n, "or")) {
            t->t = T_OR;
        } else if (span_is(w, n, "not")) {
            t->t = T_NOT;
        } else if (span_is(w, n, "true")) {
            t->t = T_TRUE;
        } else if (span_is(w, n, "false")) {
            t->t = T_FALSE;
        } else if (span_is(w, n, "null")) {
            /* OData has null, but Azure rejects `X eq null` (400). */
            fail(p, i, "null is not supported in table filters");
            t->t = T_BAD;
            return;
        } else {
            t->t = T_IDENT;
            for (int op = NB_CMP_EQ; op <= NB_CMP_LE; op++) {
                if (span_is(w, n, op_names[op])) {
                    t->t = T_CMP;
                    t->op = (enum nb_cmp_op)op;
                }
            }
        }
    } else {
        if (c >= 0x20 && c < 0x7f)
            fail(p, i, "unexpected character '%c'", c);
        else
            fail(p, i, "unexpected byte 0x%02x", c);
        t->t = T_BAD;
        return;
    }
    p->pos = t->end;
}

/* A short description of the current token for messages. */
static const char *describe(const struct parser *p, char buf[32])
{
    const struct token *t = &p->tok;
    if (t->t == T_END) return "the end of the filter";
    return quote(p->s + t->start, t->end - t->start, buf);
}

static bool miscased_keyword(const struct parser *p, const struct token *t)
{
    if (t->t != T_IDENT) return false;
    for (size_t i = 0; i < sizeof(keywords) / sizeof(keywords[0]); i++)
        if (span_ieq(p->s + t->start, t->end - t->start, keywords[i])) return true;
    return false;
}

/* A hint when the current or the previous word is a keyword in the wrong
 * case (`a EQ 1`, `NOT Flag`). */
static const char *case_hint(const struct parser *p)
{
    return miscased_keyword(p, &p->tok) || miscased_keyword(p, &p->prev)
               ? " (keywords are lowercase)"
               : "";
}

/* ---- literals ---- */

static bool lit_string(struct parser *p, struct node *n)
{
    const char *s = p->s + p->tok.vstart;
    size_t len = p->tok.vend - p->tok.vstart, o = 0;
    n->text = nb_malloc(len + 1);
    for (size_t i = 0; i < len; i++) {
        n->text[o++] = s[i];
        if (s[i] == '\'') i++; /* '' -> ' */
    }
    n->text[o] = '\0';
    n->v.type = NB_EDM_STRING;
    n->v.s = n->text;
    n->v.len = o;
    return true;
}

static bool lit_number(struct parser *p, struct node *n)
{
    const struct token *t = &p->tok;
    const char *s = p->s + t->start;
    size_t len = t->end - t->start;
    if (t->dbl) {
        /* strtod needs a terminated string; Nimbus never calls setlocale,
         * so the C locale's '.' is the decimal point. */
        if (s[len - 1] == 'd' || s[len - 1] == 'D') len--;
        char small[64], *buf = len < sizeof(small) ? small : nb_malloc(len + 1);
        memcpy(buf, s, len);
        buf[len] = '\0';
        double d = strtod(buf, NULL);
        if (buf != small) free(buf);
        if (!isfinite(d)) {
            fail(p, t->start, "Double literal out of range");
            return false;
        }
        n->v.type = NB_EDM_DOUBLE;
        n->v.d = d;
        return true;
    }
    bool neg = s[0] == '-';
    uint64_t lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, mag = 0;
    for (size_t i = neg; i < len && is_digit((unsigned char)s[i]); i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (mag > (lim - d) / 10) {
            fail(p, t->start, "integer literal out of the Int64 range");
            return false;
        }
        mag = mag * 10 + d;
    }
    int64_t v = neg ? (mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag) : (int64_t)mag;
    /* A plain integer is Int32 when it fits and Int64 otherwise: the Python
     * SDK writes integers up to 32 bits wide without the L suffix. */
    n->v.type = !t->int64 && v >= INT32_MIN && v <= INT32_MAX ? NB_EDM_INT32 : NB_EDM_INT64;
    n->v.i = v;
    return true;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static bool lit_typed(struct parser *p, struct node *n)
{
    const struct token *t = &p->tok;
    const char *s = p->s + t->vstart;
    size_t len = t->vend - t->vstart;
    char q[32];
    switch (t->prefix) {
    case P_DATETIME: {
        enum nb_err rc = nb_edm_datetime_parse(s, len, &n->v.i);
        if (rc == NB_ERR_RANGE) {
            fail(p, t->start, "datetime literal outside 1601-01-01..9999-12-31");
            return false;
        }
        if (rc) {
            fail(p, t->start, "invalid datetime literal %s", quote(s, len, q));
            return false;
        }
        n->v.type = NB_EDM_DATETIME;
        return true;
    }
    case P_GUID:
        n->text = nb_malloc(NB_EDM_GUID_LEN);
        if (!nb_edm_guid_parse(s, len, n->text)) {
            fail(p, t->start, "invalid guid literal %s", quote(s, len, q));
            return false;
        }
        n->v.type = NB_EDM_GUID;
        n->v.s = n->text;
        n->v.len = NB_EDM_GUID_LEN - 1;
        return true;
    case P_BINARY:
        if (len % 2) {
            fail(p, t->start, "binary literal with an odd number of hex digits");
            return false;
        }
        n->text = nb_malloc(len / 2 + 1);
        for (size_t i = 0; i < len; i += 2) {
            int hi = hexval((unsigned char)s[i]), lo = hexval((unsigned char)s[i + 1]);
            if (hi < 0 || lo < 0) {
                fail(p, t->vstart + i, "binary literal with a non-hex digit");
                return false;
            }
            n->text[i / 2] = (char)(hi << 4 | lo);
        }
        n->text[len / 2] = '\0';
        n->v.type = NB_EDM_BINARY;
        n->v.s = n->text;
        n->v.len = len / 2;
        return true;
    }
    return false;
}

/* ---- parser ----
 *   or      := and ('or' and)*
 *   and     := unary ('and' unary)*
 *   unary   := 'not' unary | cmp
 *   cmp     := primary [op primary]
 *   primary := '(' or ')' | literal | property
 */

static struct node *parse_or(struct parser *p);

/* Open one level of nesting ('(' or 'not'). */
static bool enter(struct parser *p, size_t at)
{
    if (++p->nest > MAX_NEST) {
        fail(p, at, "expression nested too deeply");
        return false;
    }
    return true;
}

/* Depth check for a freshly built inner node; frees it on failure. */
static struct node *built(struct parser *p, struct node *n, size_t at)
{
    node_finish(n);
    if (n->depth > NB_FILTER_MAX_DEPTH) {
        fail(p, at, "expression nested too deeply (more than %d levels)", NB_FILTER_MAX_DEPTH);
        node_free(n);
        return NULL;
    }
    return n;
}

static struct node *parse_primary(struct parser *p)
{
    char d[40];
    size_t at = p->tok.start;
    struct node *n;
    switch (p->tok.t) {
    case T_LPAREN: {
        advance(p);
        if (!enter(p, at)) return NULL;
        n = parse_or(p);
        p->nest--;
        if (!n) return NULL;
        if (p->tok.t != T_RPAREN) {
            fail(p, p->tok.start, "expected ')' to close the '(' at offset %zu, got %s%s", at,
                 describe(p, d), case_hint(p));
            node_free(n);
            return NULL;
        }
        advance(p);
        return n;
    }
    case T_IDENT:
        n = node_new(K_PROP);
        n->len = p->tok.end - p->tok.start;
        n->text = nb_strndup(p->s + p->tok.start, n->len);
        n->konst = false;
        advance(p);
        return n;
    case T_TRUE:
    case T_FALSE:
        n = node_new(K_LIT);
        n->v.type = NB_EDM_BOOLEAN;
        n->v.b = p->tok.t == T_TRUE;
        advance(p);
        return n;
    case T_STRING:
    case T_NUMBER:
    case T_TYPED: {
        n = node_new(K_LIT);
        bool ok = p->tok.t == T_STRING   ? lit_string(p, n)
                  : p->tok.t == T_NUMBER ? lit_number(p, n)
                                         : lit_typed(p, n);
        if (!ok) {
            node_free(n);
            return NULL;
        }
        advance(p);
        return n;
    }
    case T_BAD: return NULL;
    default:
        fail(p, at, "expected a property name, a literal or '(', got %s", describe(p, d));
        return NULL;
    }
}

static struct node *parse_cmp(struct parser *p)
{
    struct node *l = parse_primary(p);
    if (!l || p->tok.t != T_CMP) return l;
    size_t at = p->tok.start;
    enum nb_cmp_op op = p->tok.op;
    if (++p->ncmp > NB_FILTER_MAX_COMPARISONS) {
        fail(p, at, "more than %d comparisons in one filter", NB_FILTER_MAX_COMPARISONS);
        node_free(l);
        return NULL;
    }
    advance(p);
    struct node *r = parse_primary(p);
    if (!r) {
        node_free(l);
        return NULL;
    }
    struct node *n = node_new(K_CMP);
    n->op = op;
    node_add(n, l);
    node_add(n, r);
    return built(p, n, at);
}

static struct node *parse_unary(struct parser *p)
{
    if (p->tok.t != T_NOT) return parse_cmp(p);
    size_t at = p->tok.start;
    advance(p);
    if (!enter(p, at)) return NULL;
    size_t operand_at = p->tok.start;
    struct node *c = parse_unary(p);
    p->nest--;
    if (!c) return NULL;
    if (!condition(c)) {
        fail(p, operand_at, "'not' needs a condition, not a %s literal", nb_edm_name(c->v.type));
        node_free(c);
        return NULL;
    }
    struct node *n = node_new(K_NOT);
    node_add(n, c);
    return built(p, n, at);
}

/* One `and` or `or` chain. */
static struct node *parse_chain(struct parser *p, enum kind kind)
{
    enum tok sep = kind == K_OR ? T_OR : T_AND;
    size_t at = p->tok.start;
    struct node *first = kind == K_OR ? parse_chain(p, K_AND) : parse_unary(p);
    if (!first || p->tok.t != sep) return first;
    struct node *n = node_new(kind);
    struct node *c = first;
    size_t c_at = at;
    for (;;) {
        if (!condition(c)) {
            fail(p, c_at, "'%s' needs conditions, not a %s literal", kind == K_OR ? "or" : "and",
                 nb_edm_name(c->v.type));
            node_free(c);
            node_free(n);
            return NULL;
        }
        node_add(n, c);
        if (p->tok.t != sep) break;
        advance(p);
        c_at = p->tok.start;
        c = kind == K_OR ? parse_chain(p, K_AND) : parse_unary(p);
        if (!c) {
            node_free(n);
            return NULL;
        }
    }
    return built(p, n, at);
}

static struct node *parse_or(struct parser *p)
{
    return parse_chain(p, K_OR);
}

enum nb_err nb_filter_parse(const char *text, size_t len, struct nb_filter **out, char *err,
                            size_t errlen)
{
    struct parser p = {.s = text ? text : "", .len = text ? len : 0, .err = err, .errlen = errlen};
    struct node *root = NULL;
    char d[40];
    *out = NULL;
    if (err && errlen) err[0] = '\0';
    advance(&p);
    if (p.tok.t == T_END) {
        root = node_new(K_LIT); /* empty filter: every entity */
        root->v.type = NB_EDM_BOOLEAN;
        root->v.b = true;
    } else {
        root = parse_or(&p);
        if (root && !p.failed && p.tok.t != T_END)
            fail(&p, p.tok.start,
                 "unexpected %s, expected 'and', 'or' or the end of the filter%s%s",
                 describe(&p, d),
                 p.tok.t == T_CMP ? " (comparisons do not chain; use parentheses)" : "",
                 case_hint(&p));
        if (root && !p.failed && !condition(root))
            fail(&p, 0, "the filter must be a condition, not a %s literal",
                 nb_edm_name(root->v.type));
    }
    if (p.failed || !root) {
        if (!p.failed) fail(&p, p.tok.start, "invalid filter");
        node_free(root);
        return NB_ERR_INVALID;
    }
    struct nb_filter *f = nb_malloc(sizeof(*f));
    f->root = root;
    *out = f;
    return NB_OK;
}

void nb_filter_free(struct nb_filter *f)
{
    if (!f) return;
    node_free(f->root);
    free(f);
}

/* ---- evaluation ---- */

static bool truth(const struct node *n, nb_filter_lookup lookup, void *ctx);

/* The value of an operand; false when it is a missing property. A
 * condition used as an operand ((a eq 1) eq true) is a Boolean. */
static bool operand(const struct node *n, nb_filter_lookup lookup, void *ctx, struct nb_value *out)
{
    switch (n->kind) {
    case K_PROP: return lookup && lookup(ctx, n->text, n->len, out);
    case K_LIT: *out = n->v; return true;
    default:
        memset(out, 0, sizeof(*out));
        out->type = NB_EDM_BOOLEAN;
        out->b = truth(n, lookup, ctx);
        return true;
    }
}

static bool truth(const struct node *n, nb_filter_lookup lookup, void *ctx)
{
    switch (n->kind) {
    case K_OR:
        for (size_t i = 0; i < n->n; i++)
            if (truth(n->kid[i], lookup, ctx)) return true;
        return false;
    case K_AND:
        for (size_t i = 0; i < n->n; i++)
            if (!truth(n->kid[i], lookup, ctx)) return false;
        return true;
    case K_NOT: return !truth(n->kid[0], lookup, ctx);
    case K_CMP: {
        struct nb_value a, b;
        return operand(n->kid[0], lookup, ctx, &a) && operand(n->kid[1], lookup, ctx, &b) &&
               nb_value_cmp_op(&a, n->op, &b);
    }
    case K_PROP:
    case K_LIT: {
        struct nb_value v;
        return operand(n, lookup, ctx, &v) && v.type == NB_EDM_BOOLEAN && v.b;
    }
    }
    return false;
}

bool nb_filter_eval(const struct nb_filter *f, nb_filter_lookup lookup, void *ctx)
{
    return !f || truth(f->root, lookup, ctx);
}

/* ---- key ranges ---- */

enum { PK, RK };

struct krange {
    bool empty;
    struct nb_key_bound lo[2], hi[2]; /* [PK], [RK] */
};

static int key_cmp(const struct nb_key_bound *a, const struct nb_key_bound *b)
{
    size_t n = a->len < b->len ? a->len : b->len;
    int c = n ? memcmp(a->key, b->key, n) : 0;
    if (c) return c;
    return a->len < b->len ? -1 : a->len > b->len;
}

/* PK or RK when n is that property, else -1. */
static int key_of(const struct node *n)
{
    if (n->kind != K_PROP) return -1;
    if (span_is(n->text, n->len, "PartitionKey")) return PK;
    if (span_is(n->text, n->len, "RowKey")) return RK;
    return -1;
}

static enum nb_cmp_op flip(enum nb_cmp_op op)
{
    switch (op) {
    case NB_CMP_GT: return NB_CMP_LT;
    case NB_CMP_GE: return NB_CMP_LE;
    case NB_CMP_LT: return NB_CMP_GT;
    case NB_CMP_LE: return NB_CMP_GE;
    default: return op;
    }
}

/* A comparison of a key with a literal, as "key OP literal". */
static bool key_comparison(const struct node *n, int *key, enum nb_cmp_op *op,
                           const struct nb_value **lit)
{
    if (n->kind != K_CMP) return false;
    const struct node *l = n->kid[0], *r = n->kid[1];
    if (key_of(l) >= 0 && r->kind == K_LIT) {
        *key = key_of(l);
        *op = n->op;
        *lit = &r->v;
        return true;
    }
    if (key_of(r) >= 0 && l->kind == K_LIT) {
        *key = key_of(r);
        *op = flip(n->op);
        *lit = &l->v;
        return true;
    }
    return false;
}

static struct nb_key_bound tighter(struct nb_key_bound a, struct nb_key_bound b, bool lower)
{
    if (!a.set) return b;
    if (!b.set) return a;
    int c = key_cmp(&a, &b);
    if (c == 0) {
        a.inclusive = a.inclusive && b.inclusive;
        return a;
    }
    return (c > 0) == lower ? a : b;
}

static struct nb_key_bound looser(struct nb_key_bound a, struct nb_key_bound b, bool lower)
{
    if (!a.set || !b.set) return (struct nb_key_bound){0};
    int c = key_cmp(&a, &b);
    if (c == 0) {
        a.inclusive = a.inclusive || b.inclusive;
        return a;
    }
    return (c < 0) == lower ? a : b;
}

static void check_empty(struct krange *r)
{
    for (int k = PK; k <= RK; k++) {
        const struct nb_key_bound *lo = &r->lo[k], *hi = &r->hi[k];
        if (hi->set && !hi->inclusive && hi->len == 0) r->empty = true; /* key < '' */
        if (!lo->set || !hi->set) continue;
        int c = key_cmp(lo, hi);
        if (c > 0 || (c == 0 && !(lo->inclusive && hi->inclusive))) r->empty = true;
    }
}

static void cmp_range(const struct node *n, struct krange *r)
{
    int key;
    enum nb_cmp_op op;
    const struct nb_value *lit;
    if (!key_comparison(n, &key, &op, &lit)) return;
    if (lit->type != NB_EDM_STRING) {
        r->empty = true; /* keys are strings: a mismatched type is never true */
        return;
    }
    struct nb_key_bound b = {true, op != NB_CMP_GT && op != NB_CMP_LT, lit->s, lit->len};
    switch (op) {
    case NB_CMP_EQ: r->lo[key] = r->hi[key] = b; break;
    case NB_CMP_GT:
    case NB_CMP_GE: r->lo[key] = b; break;
    case NB_CMP_LT:
    case NB_CMP_LE: r->hi[key] = b; break;
    case NB_CMP_NE: return;
    }
    check_empty(r);
}

/* A superset of the keys n can be true for (see nb_filter_key_range). */
static void range_of(const struct node *n, struct krange *r)
{
    memset(r, 0, sizeof(*r));
    if (n->konst) {
        r->empty = !truth(n, NULL, NULL);
        return;
    }
    struct krange k;
    switch (n->kind) {
    case K_CMP: cmp_range(n, r); return;
    case K_AND:
        for (size_t i = 0; i < n->n && !r->empty; i++) {
            range_of(n->kid[i], &k);
            r->empty = r->empty || k.empty;
            for (int d = PK; d <= RK; d++) {
                r->lo[d] = tighter(r->lo[d], k.lo[d], true);
                r->hi[d] = tighter(r->hi[d], k.hi[d], false);
            }
            check_empty(r);
        }
        return;
    case K_OR: {
        bool any = false;
        for (size_t i = 0; i < n->n; i++) {
            range_of(n->kid[i], &k);
            if (k.empty) continue; /* a branch that never matches adds no keys */
            if (!any) {
                *r = k;
                any = true;
                continue;
            }
            for (int d = PK; d <= RK; d++) {
                r->lo[d] = looser(r->lo[d], k.lo[d], true);
                r->hi[d] = looser(r->hi[d], k.hi[d], false);
            }
        }
        r->empty = !any;
        return;
    }
    default: return; /* not, a bare property: any key */
    }
}

static bool pinned(const struct krange *r)
{
    return !r->empty && r->lo[PK].set && r->hi[PK].set && r->lo[PK].inclusive &&
           r->hi[PK].inclusive && key_cmp(&r->lo[PK], &r->hi[PK]) == 0;
}

void nb_filter_key_range(const struct nb_filter *f, struct nb_key_range *out)
{
    memset(out, 0, sizeof(*out));
    if (!f) return;
    struct krange r;
    range_of(f->root, &r);
    if (r.empty) {
        out->empty = true;
        return;
    }
    out->pk_lo = r.lo[PK];
    out->pk_hi = r.hi[PK];
    /* RowKey bounds only narrow an index scan inside one partition. */
    if (pinned(&r)) {
        out->rk_lo = r.lo[RK];
        out->rk_hi = r.hi[RK];
    }
}

/* Whether the range, when applied exactly, already guarantees conjunct c. */
static bool captured(const struct node *c, bool pin)
{
    if (c->konst) return truth(c, NULL, NULL);
    int key;
    enum nb_cmp_op op;
    const struct nb_value *lit;
    if (!key_comparison(c, &key, &op, &lit)) return false;
    if (lit->type != NB_EDM_STRING || op == NB_CMP_NE) return false;
    return key == PK || pin;
}

struct nb_filter *nb_filter_residue(const struct nb_filter *f)
{
    if (!f) return NULL;
    struct krange r;
    range_of(f->root, &r);
    bool pin = pinned(&r);
    struct node *const *cs = &f->root;
    size_t nc = 1;
    if (f->root->kind == K_AND) {
        cs = f->root->kid;
        nc = f->root->n;
    }
    struct node *keep = NULL;
    size_t nkeep = 0;
    for (size_t i = 0; i < nc; i++) {
        if (captured(cs[i], pin)) continue;
        struct node *c = node_clone(cs[i]);
        if (nkeep == 0) {
            keep = c;
        } else {
            if (nkeep == 1) {
                struct node *a = node_new(K_AND);
                node_add(a, keep);
                keep = a;
            }
            node_add(keep, c);
        }
        nkeep++;
    }
    if (!keep) return NULL;
    node_finish(keep); /* no deeper than f's root: a subset of its conjuncts */
    struct nb_filter *res = nb_malloc(sizeof(*res));
    res->root = keep;
    return res;
}

/* ---- canonical text ---- */

static enum nb_err emit_double(double d, struct nb_buf *b)
{
    char tmp[48];
    snprintf(tmp, sizeof(tmp), "%.15g", d);
    if (strtod(tmp, NULL) != d) snprintf(tmp, sizeof(tmp), "%.17g", d);
    if (!strpbrk(tmp, ".e")) return nb_buf_printf(b, "%s.0", tmp);
    return nb_buf_adds(b, tmp);
}

static enum nb_err emit_lit(const struct nb_value *v, struct nb_buf *b)
{
    enum nb_err rc = NB_OK;
    switch (v->type) {
    case NB_EDM_STRING:
        rc = nb_buf_addc(b, '\'');
        for (size_t i = 0; i < v->len && !rc; i++) {
            rc = nb_buf_addc(b, v->s[i]);
            if (!rc && v->s[i] == '\'') rc = nb_buf_addc(b, '\'');
        }
        return rc ? rc : nb_buf_addc(b, '\'');
    case NB_EDM_INT32: return nb_buf_printf(b, "%" PRId64, v->i);
    case NB_EDM_INT64: return nb_buf_printf(b, "%" PRId64 "L", v->i);
    case NB_EDM_DOUBLE: return emit_double(v->d, b);
    case NB_EDM_BOOLEAN: return nb_buf_adds(b, v->b ? "true" : "false");
    case NB_EDM_DATETIME: {
        char dt[NB_EDM_DATETIME_LEN];
        nb_edm_datetime_format(v->i, dt);
        return nb_buf_printf(b, "datetime'%s'", dt);
    }
    case NB_EDM_GUID: return nb_buf_printf(b, "guid'%.*s'", (int)v->len, v->s);
    case NB_EDM_BINARY:
        rc = nb_buf_adds(b, "X'");
        for (size_t i = 0; i < v->len && !rc; i++)
            rc = nb_buf_printf(b, "%02x", (unsigned char)v->s[i]);
        return rc ? rc : nb_buf_addc(b, '\'');
    }
    return NB_ERR_INVALID;
}

static enum nb_err emit(const struct node *n, struct nb_buf *b)
{
    enum nb_err rc;
    switch (n->kind) {
    case K_PROP: return nb_buf_add(b, n->text, n->len);
    case K_LIT: return emit_lit(&n->v, b);
    case K_NOT:
        if ((rc = nb_buf_adds(b, "(not ")) || (rc = emit(n->kid[0], b))) return rc;
        return nb_buf_addc(b, ')');
    case K_CMP:
        if ((rc = nb_buf_addc(b, '(')) || (rc = emit(n->kid[0], b)) ||
            (rc = nb_buf_printf(b, " %s ", op_names[n->op])) || (rc = emit(n->kid[1], b)))
            return rc;
        return nb_buf_addc(b, ')');
    case K_AND:
    case K_OR:
        if ((rc = nb_buf_addc(b, '('))) return rc;
        for (size_t i = 0; i < n->n; i++) {
            if (i && (rc = nb_buf_adds(b, n->kind == K_AND ? " and " : " or "))) return rc;
            if ((rc = emit(n->kid[i], b))) return rc;
        }
        return nb_buf_addc(b, ')');
    }
    return NB_ERR_INVALID;
}

enum nb_err nb_filter_to_string(const struct nb_filter *f, struct nb_buf *out)
{
    return f ? emit(f->root, out) : nb_buf_adds(out, "true");
}
