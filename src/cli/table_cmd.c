/* `nimbus table …` and `nimbus entity …` client commands (see table_cmd.h).
 * Two command tables share one option table, argument parser and output
 * path; handlers send OData JSON through cli/client.c and return a JSON value
 * printed as JSON (--json) or text. Property values are checked before any
 * request is made, so a usage error never reaches the service. Nothing here
 * outlives one call of the entry points. */
#include "cli/table_cmd.h"
#include "cli/client.h"
#include "cli/connstr.h"
#include "core/buf.h"
#include "core/encode.h"
#include "core/mem.h"
#include "table/value.h"
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define EXIT_OK 0
#define EXIT_FAIL 1
#define EXIT_USAGE 2

#define MAX_PROPS 252                 /* custom properties per entity (Azure) */
#define MAX_PROP_NAME 255             /* characters in a property name (Azure) */
#define MAX_BODY (4u * 1024u * 1024u) /* JSON request body we are willing to send */
#define MAX_TOP 1000                  /* $top: Azure's page size limit */
#define MAX_PAGES 100000              /* a server that never ends its listing */
#define MAX_MARKERS 4

#define ACCEPT_JSON "application/json;odata=minimalmetadata"
#define CT_INSERT "application/json;odata=nometadata" /* as the SDK sends on POST */
#define CT_UPDATE "application/json"                  /* as the SDK sends on PUT/PATCH */

/* ---- options: one row each ------------------------------------------- */

enum opt_id {
    O_CONN,
    O_JSON,
    O_HELP,
    O_FILTER,
    O_SELECT,
    O_TOP,
    O_ALL,
    O_MARKER,
    O_PK,
    O_RK,
    O_IF_EXISTS,
    O_IF_MATCH,
    O_FAIL_EXIST,
    O_FAIL_NOT_EXIST,
    O_COUNT
};
enum opt_kind { FLAG, VALUE, PAIRS };

static const struct opt {
    const char *name;
    enum opt_kind kind;
} opts[O_COUNT] = {
    [O_CONN] = {"--connection-string", VALUE},
    [O_JSON] = {"--json", FLAG},
    [O_HELP] = {"--help", FLAG},
    [O_FILTER] = {"--filter", VALUE},
    [O_SELECT] = {"--select", VALUE},
    [O_TOP] = {"--top", VALUE},
    [O_ALL] = {"--all", FLAG},
    [O_MARKER] = {"--marker", PAIRS},
    [O_PK] = {"--pk", VALUE},
    [O_RK] = {"--rk", VALUE},
    [O_IF_EXISTS] = {"--if-exists", VALUE},
    [O_IF_MATCH] = {"--if-match", VALUE},
    [O_FAIL_EXIST] = {"--fail-on-exist", FLAG},
    [O_FAIL_NOT_EXIST] = {"--fail-not-exist", FLAG},
};

#define BIT(o) (1u << (o))
#define COMMON (BIT(O_CONN) | BIT(O_JSON) | BIT(O_HELP))
#define KEYS (BIT(O_PK) | BIT(O_RK))

struct args {
    const char *pos[1 + MAX_PROPS]; /* NAME or TABLE, then PROP=VALUE[:TYPE] */
    size_t npos;
    bool given[O_COUNT];
    const char *value[O_COUNT];
    const char *markers[MAX_MARKERS]; /* --marker "name=value" */
    size_t nmarkers;
    long top;
};

struct cmd;
struct group;

struct ctx {
    const struct group *g;
    const struct cmd *c;
    struct args *a;
    struct nb_client client;
    json_t *entity; /* the request entity of insert/merge/replace */
    bool json;
};

struct cmd {
    const char *name;
    int (*run)(struct ctx *x, json_t **out);
    void (*human)(const struct ctx *x, json_t *result);
    size_t min_pos, max_pos; /* max_pos > 1: the extra words are properties */
    unsigned opts;
    unsigned required; /* options that must be given */
    const char *synopsis;
    const char *help;
};

struct group {
    const char *name; /* "table" or "entity" */
    const char *pos_name;
    const struct cmd *cmds;
    size_t ncmds;
    const char *about;
};

/* ---- small helpers --------------------------------------------------- */

static int usage_error(const struct group *g, const struct cmd *c, const char *fmt,
                       const char *arg)
{
    fprintf(stderr, "nimbus %s", g->name);
    if (c) fprintf(stderr, " %s", c->name);
    fputs(": ", stderr);
    fprintf(stderr, fmt, arg ? arg : "");
    fputc('\n', stderr);
    if (c) fprintf(stderr, "usage: nimbus %s %s\n", g->name, c->synopsis);
    fprintf(stderr, "try 'nimbus %s --help'\n", g->name);
    return EXIT_USAGE;
}

static bool parse_long(const char *s, long *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < INT_MIN || v > INT_MAX) return false;
    *out = v;
    return true;
}

/* A JSON string from arbitrary bytes; a broken server must not make us
 * print invalid JSON. */
static json_t *str_json(const char *s)
{
    json_t *j = s ? json_string(s) : NULL;
    return j ? j : json_string("");
}

/* ^[A-Za-z][A-Za-z0-9]{2,62}$ (Azure's rule; the SDK checks it too). */
static bool valid_table_name(const char *s)
{
    size_t n = strlen(s);
    if (n < 3 || n > 63 || !isalpha((unsigned char)s[0])) return false;
    for (size_t i = 1; i < n; i++)
        if (!isalnum((unsigned char)s[i])) return false;
    return true;
}

/* A key or table name as an OData string literal in a URL path: each ' is
 * doubled, then the whole value is %-encoded (§3.3), between literal quotes. */
static enum nb_err add_literal(struct nb_buf *b, const char *s)
{
    enum nb_err rc = nb_buf_addc(b, '\'');
    for (const char *p = s; *p && !rc; p++)
        rc = *p == '\'' ? nb_buf_adds(b, "%27%27") : nb_pct_encode(b, p, 1);
    if (!rc) rc = nb_buf_addc(b, '\'');
    return rc;
}

static enum nb_err entity_path(struct nb_buf *b, const char *table, const char *pk, const char *rk)
{
    enum nb_err rc = nb_buf_addc(b, '/');
    if (!rc) rc = nb_buf_adds(b, table);
    if (!rc) rc = nb_buf_adds(b, "(PartitionKey=");
    if (!rc) rc = add_literal(b, pk);
    if (!rc) rc = nb_buf_adds(b, ",RowKey=");
    if (!rc) rc = add_literal(b, rk);
    if (!rc) rc = nb_buf_addc(b, ')');
    return rc;
}

/* ---- typed property values ------------------------------------------- */

enum ptype { T_STRING, T_INT32, T_INT64, T_DOUBLE, T_BOOL, T_DATETIME, T_GUID, T_BINARY, T_COUNT };

/* One row per type: the suffix users write, an alias, the EDM name, and
 * whether the SDK sends an @odata.type annotation with it (Int32 and Boolean
 * travel as bare JSON numbers and booleans). */
static const struct {
    const char *name, *alias, *edm;
    bool annotate;
} ptypes[T_COUNT] = {
    [T_STRING] = {"string", "str", "Edm.String", true},
    [T_INT32] = {"int32", "int", "Edm.Int32", false},
    [T_INT64] = {"int64", "long", "Edm.Int64", true},
    [T_DOUBLE] = {"double", "float", "Edm.Double", true},
    [T_BOOL] = {"bool", "boolean", "Edm.Boolean", false},
    [T_DATETIME] = {"datetime", "date", "Edm.DateTime", true},
    [T_GUID] = {"guid", "uuid", "Edm.Guid", true},
    [T_BINARY] = {"binary", "bytes", "Edm.Binary", true},
};

static int type_from_suffix(const char *s)
{
    for (int t = 0; t < T_COUNT; t++)
        if (strcasecmp(s, ptypes[t].name) == 0 || strcasecmp(s, ptypes[t].alias) == 0 ||
            strcasecmp(s, ptypes[t].edm) == 0)
            return t;
    return -1;
}

/* Property names follow C# identifier rules (Azure's rule), ASCII here. */
static bool valid_prop_name(const char *s, size_t n)
{
    if (!n || n > MAX_PROP_NAME || !(isalpha((unsigned char)s[0]) || s[0] == '_')) return false;
    for (size_t i = 1; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_')) return false;
    return true;
}

/* [+-]digits[.digits][(e|E)[+-]digits]; fractions and exponents only when
 * `real`. strtod alone would also take hex, "inf" and "nan(...)". */
static bool is_decimal(const char *s, bool real)
{
    const char *p = s;
    if (*p == '+' || *p == '-') p++;
    size_t digits = 0;
    while (isdigit((unsigned char)*p)) {
        p++;
        digits++;
    }
    if (real && *p == '.') {
        p++;
        while (isdigit((unsigned char)*p)) {
            p++;
            digits++;
        }
    }
    if (!digits) return false;
    if (real && (*p == 'e' || *p == 'E')) {
        p++;
        if (*p == '+' || *p == '-') p++;
        if (!isdigit((unsigned char)*p)) return false;
        while (isdigit((unsigned char)*p))
            p++;
    }
    return *p == '\0';
}

/* Convert the text `v` of type `t` to its JSON value as the SDK sends it.
 * NULL (with *why set) when the text is not a value of that type. */
static json_t *typed_value(enum ptype t, const char *v, const char **why)
{
    char buf[64];
    switch (t) {
    case T_STRING: {
        json_t *j = json_string(v);
        if (!j) *why = "is not valid UTF-8";
        return j;
    }
    case T_INT32:
    case T_INT64: {
        if (!is_decimal(v, false)) break;
        char *end = NULL;
        errno = 0;
        long long n = strtoll(v, &end, 10);
        if (errno || (t == T_INT32 && (n < INT32_MIN || n > INT32_MAX))) {
            *why = t == T_INT32 ? "is out of range for int32" : "is out of range for int64";
            return NULL;
        }
        if (t == T_INT32) return json_integer((json_int_t)n);
        /* Int64 travels as a string: JSON readers may hold numbers in doubles. */
        snprintf(buf, sizeof(buf), "%lld", n);
        return json_string(buf);
    }
    case T_DOUBLE: {
        static const struct {
            const char *in, *out;
        } special[] = {{"nan", "NaN"},          {"infinity", "Infinity"}, {"inf", "Infinity"},
                       {"+infinity", "Infinity"}, {"+inf", "Infinity"},     {"-infinity", "-Infinity"},
                       {"-inf", "-Infinity"}};
        for (size_t i = 0; i < sizeof(special) / sizeof(special[0]); i++)
            if (strcasecmp(v, special[i].in) == 0) return json_string(special[i].out);
        if (!is_decimal(v, true)) break;
        errno = 0;
        double d = strtod(v, NULL);
        if (!isfinite(d)) {
            *why = "is out of range for double";
            return NULL;
        }
        return json_real(d);
    }
    case T_BOOL:
        if (strcasecmp(v, "true") == 0) return json_true();
        if (strcasecmp(v, "false") == 0) return json_false();
        break;
    case T_DATETIME: {
        int64_t ticks;
        char out[NB_EDM_DATETIME_LEN];
        enum nb_err rc = nb_edm_datetime_parse(v, strlen(v), &ticks);
        if (rc == NB_ERR_RANGE) {
            *why = "is outside 1601-01-01 .. 9999-12-31";
            return NULL;
        }
        if (rc) break;
        nb_edm_datetime_format(ticks, out);
        return json_string(out);
    }
    case T_GUID: {
        char out[NB_EDM_GUID_LEN];
        if (!nb_edm_guid_parse(v, strlen(v), out)) break;
        return json_string(out);
    }
    case T_BINARY: {
        unsigned char *bytes = NULL;
        size_t n = 0;
        if (!*v) return json_string("");
        if (!nb_base64_decode(v, strlen(v), &bytes, &n)) {
            *why = "is not valid base64";
            return NULL;
        }
        char *canon = nb_base64_encode(bytes, n);
        json_t *j = json_string(canon);
        free(canon);
        free(bytes);
        return j;
    }
    case T_COUNT: break;
    }
    static const char *const expect[T_COUNT] = {
        [T_INT32] = "is not a whole number",
        [T_INT64] = "is not a whole number",
        [T_DOUBLE] = "is not a number (nor NaN, Infinity, -Infinity)",
        [T_BOOL] = "is not true or false",
        [T_DATETIME] = "is not an ISO 8601 date and time (YYYY-MM-DDThh:mm[:ss[.f]][Z|+hh:mm])",
        [T_GUID] = "is not a GUID (8-4-4-4-12 hex digits)",
    };
    *why = expect[t] ? expect[t] : "is not valid";
    return NULL;
}

/* The request entity from --pk, --rk and the PROP=VALUE[:TYPE] words:
 * {"PartitionKey": …, "RowKey": …, "P": v, "P@odata.type": "Edm.X", …}.
 * The type suffix is the text after the last ':' when it names a type;
 * otherwise the whole text is a string value (so "url=http://x" works and
 * "s=a:int32:string" stores the string "a:int32"). */
static int build_entity(const struct group *g, const struct cmd *c, const struct args *a,
                        json_t **out)
{
    int ret = EXIT_USAGE;
    char *name = NULL;
    json_t *e = json_object();
    json_t *pk = json_string(a->value[O_PK]), *rk = json_string(a->value[O_RK]);
    if (!pk || !rk) {
        json_decref(pk);
        json_decref(rk);
        ret = usage_error(g, c, "%s", "--pk and --rk must be valid UTF-8");
        goto cleanup;
    }
    json_object_set_new(e, "PartitionKey", pk);
    json_object_set_new(e, "RowKey", rk);
    for (size_t i = 1; i < a->npos; i++) {
        const char *word = a->pos[i];
        const char *eq = strchr(word, '=');
        if (!eq || !valid_prop_name(word, (size_t)(eq - word))) {
            ret = usage_error(g, c,
                              "a property must be NAME=VALUE[:TYPE] with NAME a C identifier "
                              "of at most 255 characters: '%s'",
                              word);
            goto cleanup;
        }
        free(name);
        name = nb_strndup(word, (size_t)(eq - word));
        if (strcmp(name, "PartitionKey") == 0 || strcmp(name, "RowKey") == 0 ||
            strcmp(name, "Timestamp") == 0) {
            ret = usage_error(g, c, "'%s' is a system property (use --pk and --rk)", name);
            goto cleanup;
        }
        if (json_object_get(e, name)) {
            ret = usage_error(g, c, "property given twice: '%s'", name);
            goto cleanup;
        }
        const char *text = eq + 1;
        const char *colon = strrchr(text, ':');
        int t = colon ? type_from_suffix(colon + 1) : -1;
        char *vtext = t >= 0 ? nb_strndup(text, (size_t)(colon - text)) : nb_strdup(text);
        if (t < 0) t = T_STRING;
        const char *why = NULL;
        json_t *v = typed_value((enum ptype)t, vtext, &why);
        free(vtext);
        if (!v) {
            fprintf(stderr, "nimbus %s %s: value of %s %s (type %s)\n", g->name, c->name, name,
                    why, ptypes[t].name);
            fprintf(stderr, "usage: nimbus %s %s\n", g->name, c->synopsis);
            goto cleanup;
        }
        json_object_set_new(e, name, v);
        if (ptypes[t].annotate) {
            char *ann = nb_asprintf("%s@odata.type", name);
            json_object_set_new(e, ann, json_string(ptypes[t].edm));
            free(ann);
        }
    }
    *out = e;
    e = NULL;
    ret = EXIT_OK;
cleanup:
    free(name);
    json_decref(e);
    return ret;
}

/* ---- talking to the service ------------------------------------------ */

struct call {
    const char *method;
    const char *path;
    struct nb_kv query[8];
    size_t nquery;
    struct nb_kv headers[8];
    size_t nheaders;
    const char *content_type;
    const char *body;
    size_t body_len;
};

static void add_query(struct call *c, const char *name, const char *value)
{
    c->query[c->nquery++] = (struct nb_kv){name, value, strlen(value)};
}

static void add_header(struct call *c, const char *name, const char *value)
{
    c->headers[c->nheaders++] = (struct nb_kv){name, value, strlen(value)};
}

/* A call with the headers every OData request carries (§3.1). */
static struct call odata_call(const char *method, const char *path)
{
    struct call c = {.method = method, .path = path};
    add_header(&c, "Accept", ACCEPT_JSON);
    add_header(&c, "DataServiceVersion", "3.0");
    return c;
}

/* Send; on a transport failure print it and return false. */
static bool send_call(struct ctx *x, const struct call *c, struct nb_client_resp *resp)
{
    struct nb_client_req req = {
        .method = c->method,
        .path = c->path,
        .query = c->query,
        .nquery = c->nquery,
        .headers = c->headers,
        .nheaders = c->nheaders,
        .content_type = c->content_type,
        .body = c->body,
        .body_len = c->body_len,
    };
    enum nb_err rc = nb_client_send(&x->client, &req, resp);
    if (rc == NB_OK) return true;
    const char *what = x->client.err[0] ? x->client.err : nb_err_str(rc);
    if (x->json) {
        json_t *e = json_pack("{s:{s:s,s:o,s:s}}", "error", "code", "ConnectionError", "message",
                              str_json(what), "endpoint", x->client.endpoint);
        if (e) {
            json_dumpf(e, stderr, JSON_INDENT(2));
            fputc('\n', stderr);
        }
        json_decref(e);
    } else {
        fprintf(stderr, "error: cannot complete the request to %s: %s\n", x->client.endpoint, what);
    }
    return false;
}

static int print_error(const struct ctx *x, long status, const char *code, const char *message)
{
    if (x->json) {
        json_t *e = json_pack("{s:{s:I,s:o,s:o}}", "error", "status", (json_int_t)status, "code",
                              str_json(code), "message", str_json(message));
        if (e) {
            json_dumpf(e, stderr, JSON_INDENT(2));
            fputc('\n', stderr);
        }
        json_decref(e);
    } else {
        fprintf(stderr, "error: %s: %s\n", code, message);
    }
    return EXIT_FAIL;
}

static int print_service_error(const struct ctx *x, const struct nb_client_resp *resp)
{
    char *code = NULL, *message = NULL;
    nb_client_resp_error(resp, &code, &message);
    int ret = print_error(x, resp->status, code, message);
    free(code);
    free(message);
    return ret;
}

/* True when the failed response carries status `status` and one of the
 * codes (NULL-terminated list). */
static bool is_error(const struct nb_client_resp *resp, long status, const char *const *codes)
{
    if (resp->status != status) return false;
    char *code = NULL, *msg = NULL;
    nb_client_resp_error(resp, &code, &msg);
    bool hit = false;
    for (; *codes && !hit; codes++)
        hit = strcmp(code, *codes) == 0;
    free(code);
    free(msg);
    return hit;
}

static bool ok_status(long s)
{
    return s >= 200 && s < 300;
}

static int bad_response(const char *what)
{
    fprintf(stderr, "error: unexpected response from the service: %s\n", what);
    return EXIT_FAIL;
}

static json_t *read_json(const struct nb_client_resp *resp)
{
    if (!resp->body.len) return NULL;
    json_t *j = json_loadb(resp->body.data, resp->body.len, 0, NULL);
    if (j && !json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

static bool is_annotation(const char *k)
{
    size_t n = strlen(k);
    return n > 11 && strcmp(k + n - 11, "@odata.type") == 0;
}

static bool is_system(const char *k)
{
    return strcmp(k, "PartitionKey") == 0 || strcmp(k, "RowKey") == 0 ||
           strcmp(k, "Timestamp") == 0;
}

/* An entity as the service sent it (minimal metadata) to our output shape:
 * PartitionKey, RowKey, Timestamp, etag, then the custom properties in the
 * service's order, each followed by its "@odata.type" annotation where the
 * wire has one (Int64, DateTime, Guid, Binary, non-finite Double), so the
 * output keeps every type. `etag` (the ETag header) is used when the body
 * has no odata.etag. */
static json_t *entity_out(json_t *in, const char *etag)
{
    json_t *o = json_object();
    static const char *const sys[] = {"PartitionKey", "RowKey", "Timestamp"};
    for (size_t i = 0; i < sizeof(sys) / sizeof(sys[0]); i++) {
        json_t *v = json_object_get(in, sys[i]);
        if (v) json_object_set(o, sys[i], v);
    }
    const char *body_etag = json_string_value(json_object_get(in, "odata.etag"));
    if (body_etag) etag = body_etag;
    if (etag) json_object_set_new(o, "etag", str_json(etag));
    const char *k;
    json_t *v;
    json_object_foreach(in, k, v)
    {
        if (strncmp(k, "odata.", 6) == 0 || is_annotation(k) || is_system(k)) continue;
        json_object_set(o, k, v);
        char *ann = nb_asprintf("%s@odata.type", k);
        json_t *t = json_object_get(in, ann);
        if (json_is_string(t)) json_object_set(o, ann, t);
        free(ann);
    }
    return o;
}

/* ---- output ---------------------------------------------------------- */

/* The shortest text that reads back as the same double, with ".0" on whole
 * values so that text output tells 2.0 (Double) from 2 (Int32) too. */
static void print_double(double d)
{
    char buf[64];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof(buf), "%.*g", prec, d);
        if (strtod(buf, NULL) == d) break;
    }
    fputs(buf, stdout);
    if (isfinite(d) && !strpbrk(buf, ".e")) fputs(".0", stdout);
}

static void print_scalar(json_t *v)
{
    if (json_is_string(v))
        fputs(json_string_value(v), stdout);
    else if (json_is_integer(v))
        printf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else if (json_is_real(v))
        print_double(json_real_value(v));
    else if (json_is_true(v))
        fputs("true", stdout);
    else if (json_is_false(v))
        fputs("false", stdout);
}

/* The EDM type of custom property `k` in output entity `e`. */
static const char *prop_type(json_t *e, const char *k, json_t *v)
{
    char *ann = nb_asprintf("%s@odata.type", k);
    const char *t = json_string_value(json_object_get(e, ann));
    free(ann);
    if (t) return t;
    if (json_is_integer(v)) return "Edm.Int32";
    if (json_is_real(v)) return "Edm.Double";
    if (json_is_boolean(v)) return "Edm.Boolean";
    return "Edm.String";
}

/* "name: value" lines; custom properties that are not strings say their
 * type: "Age: 30 (Int32)". */
static void print_entity(json_t *e)
{
    const char *k;
    json_t *v;
    json_object_foreach(e, k, v)
    {
        if (is_annotation(k)) continue;
        printf("%s: ", k);
        print_scalar(v);
        if (!is_system(k) && strcmp(k, "etag") != 0) {
            const char *t = prop_type(e, k, v);
            if (strcmp(t, "Edm.String") != 0)
                printf(" (%s)", strncmp(t, "Edm.", 4) == 0 ? t + 4 : t);
        }
        putchar('\n');
    }
}

static void emit(const struct ctx *x, json_t *r)
{
    if (!r) return;
    if (x->json) {
        json_dumpf(r, stdout, JSON_INDENT(2));
        putchar('\n');
    } else {
        x->c->human(x, r);
    }
    fflush(stdout);
}

/* ---- table subcommands ----------------------------------------------- */

static int cmd_table_create(struct ctx *x, json_t **out)
{
    int ret = EXIT_FAIL;
    struct args *a = x->a;
    struct nb_client_resp resp;
    nb_client_resp_init(&resp);
    json_t *b = json_pack("{s:s}", "TableName", a->pos[0]);
    char *body = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    struct call c = odata_call("POST", "/Tables");
    c.content_type = CT_INSERT;
    c.body = body;
    c.body_len = strlen(body);
    if (!send_call(x, &c, &resp)) goto cleanup;
    bool created = true;
    if (!ok_status(resp.status)) {
        static const char *const exists[] = {"TableAlreadyExists", NULL};
        if (!is_error(&resp, 409, exists) || a->given[O_FAIL_EXIST]) {
            ret = print_service_error(x, &resp);
            goto cleanup;
        }
        created = false;
    }
    *out = json_pack("{s:o,s:b}", "name", str_json(a->pos[0]), "created", created);
    ret = EXIT_OK;
cleanup:
    free(body);
    nb_client_resp_cleanup(&resp);
    return ret;
}

static void human_table_create(const struct ctx *x, json_t *r)
{
    (void)x;
    const char *name = json_string_value(json_object_get(r, "name"));
    if (json_is_true(json_object_get(r, "created")))
        printf("created table %s\n", name);
    else
        printf("table %s already exists\n", name);
}

static int cmd_table_delete(struct ctx *x, json_t **out)
{
    int ret = EXIT_FAIL;
    struct args *a = x->a;
    struct nb_buf path;
    struct nb_client_resp resp;
    nb_buf_init(&path, 4096);
    nb_client_resp_init(&resp);
    enum nb_err rc = nb_buf_adds(&path, "/Tables(");
    if (!rc) rc = add_literal(&path, a->pos[0]);
    if (!rc) rc = nb_buf_addc(&path, ')');
    if (rc) goto cleanup;
    struct call c = odata_call("DELETE", nb_buf_cstr(&path));
    if (!send_call(x, &c, &resp)) goto cleanup;
    bool deleted = true;
    if (!ok_status(resp.status)) {
        static const char *const missing[] = {"ResourceNotFound", "TableNotFound", NULL};
        if (!is_error(&resp, 404, missing) || a->given[O_FAIL_NOT_EXIST]) {
            ret = print_service_error(x, &resp);
            goto cleanup;
        }
        deleted = false;
    }
    *out = json_pack("{s:o,s:b}", "name", str_json(a->pos[0]), "deleted", deleted);
    ret = EXIT_OK;
cleanup:
    nb_buf_cleanup(&path);
    nb_client_resp_cleanup(&resp);
    return ret;
}

static void human_table_delete(const struct ctx *x, json_t *r)
{
    (void)x;
    const char *name = json_string_value(json_object_get(r, "name"));
    if (json_is_true(json_object_get(r, "deleted")))
        printf("deleted table %s\n", name);
    else
        printf("table %s does not exist\n", name);
}

static int cmd_table_list(struct ctx *x, json_t **out)
{
    int ret = EXIT_FAIL;
    struct args *a = x->a;
    struct nb_client_resp resp;
    json_t *list = json_array(), *page = NULL;
    char *marker = NULL;
    char top[24];
    nb_client_resp_init(&resp);
    snprintf(top, sizeof(top), "%ld", a->top);
    for (size_t n = 0;; n++) {
        if (n == MAX_PAGES) {
            ret = bad_response("the table listing does not end");
            goto cleanup;
        }
        struct call c = odata_call("GET", "/Tables");
        if (a->given[O_FILTER]) add_query(&c, "$filter", a->value[O_FILTER]);
        if (a->given[O_TOP]) add_query(&c, "$top", top);
        if (marker) add_query(&c, "NextTableName", marker);
        if (!send_call(x, &c, &resp)) goto cleanup;
        if (!ok_status(resp.status)) {
            ret = print_service_error(x, &resp);
            goto cleanup;
        }
        json_decref(page);
        page = read_json(&resp);
        json_t *value = json_object_get(page, "value");
        if (!json_is_array(value)) {
            ret = bad_response("the table listing has no \"value\" array");
            goto cleanup;
        }
        size_t i;
        json_t *t;
        json_array_foreach(value, i, t)
        {
            const char *name = json_string_value(json_object_get(t, "TableName"));
            if (name) json_array_append_new(list, json_pack("{s:o}", "name", str_json(name)));
        }
        const char *next = nb_client_resp_header(&resp, "x-ms-continuation-NextTableName");
        if (!next || !*next) break;
        if (marker && strcmp(next, marker) == 0) {
            ret = bad_response("the table listing repeats its continuation marker");
            goto cleanup;
        }
        free(marker);
        marker = nb_strdup(next);
    }
    *out = list;
    list = NULL;
    ret = EXIT_OK;
cleanup:
    json_decref(page);
    json_decref(list);
    free(marker);
    nb_client_resp_cleanup(&resp);
    return ret;
}

static void human_table_list(const struct ctx *x, json_t *r)
{
    (void)x;
    size_t i;
    json_t *t;
    json_array_foreach(r, i, t) puts(json_string_value(json_object_get(t, "name")));
}

/* ---- entity subcommands ---------------------------------------------- */

/* Send the request entity with `method` to the entity's own URL (or, for
 * POST, to the table) and report its keys and new etag. */
static int write_entity(struct ctx *x, json_t **out, const char *method, const char *if_match)
{
    int ret = EXIT_FAIL;
    struct args *a = x->a;
    struct nb_buf path;
    struct nb_client_resp resp;
    char *body = NULL;
    nb_buf_init(&path, 16384);
    nb_client_resp_init(&resp);
    bool post = strcmp(method, "POST") == 0;
    enum nb_err rc = post ? nb_buf_printf(&path, "/%s", a->pos[0])
                          : entity_path(&path, a->pos[0], a->value[O_PK], a->value[O_RK]);
    if (rc) {
        ret = usage_error(x->g, x->c, "%s", "the keys are too long");
        goto cleanup;
    }
    body = json_dumps(x->entity, JSON_COMPACT);
    if (!body || strlen(body) > MAX_BODY) {
        ret = usage_error(x->g, x->c, "%s", "the entity is too large");
        goto cleanup;
    }
    struct call c = odata_call(method, nb_buf_cstr(&path));
    c.content_type = post ? CT_INSERT : CT_UPDATE;
    c.body = body;
    c.body_len = strlen(body);
    if (post) add_header(&c, "Prefer", "return-no-content");
    if (if_match) add_header(&c, "If-Match", if_match);
    if (!send_call(x, &c, &resp)) goto cleanup;
    if (!ok_status(resp.status)) {
        ret = print_service_error(x, &resp);
        goto cleanup;
    }
    const char *etag = nb_client_resp_header(&resp, "ETag");
    json_t *o = json_pack("{s:o,s:o}", "PartitionKey", str_json(a->value[O_PK]), "RowKey",
                          str_json(a->value[O_RK]));
    if (etag) json_object_set_new(o, "etag", str_json(etag));
    *out = o;
    ret = EXIT_OK;
cleanup:
    free(body);
    nb_buf_cleanup(&path);
    nb_client_resp_cleanup(&resp);
    return ret;
}

static void human_written(json_t *r, const char *verb)
{
    printf("%s entity PartitionKey='%s' RowKey='%s'\n", verb,
           json_string_value(json_object_get(r, "PartitionKey")),
           json_string_value(json_object_get(r, "RowKey")));
    const char *etag = json_string_value(json_object_get(r, "etag"));
    if (etag) printf("etag: %s\n", etag);
}

static int cmd_entity_insert(struct ctx *x, json_t **out)
{
    const char *mode = x->a->given[O_IF_EXISTS] ? x->a->value[O_IF_EXISTS] : "fail";
    /* fail: POST (409 EntityAlreadyExists); merge / replace: the upserts,
     * PATCH / PUT without If-Match (§3.1). */
    const char *method = strcmp(mode, "merge") == 0     ? "PATCH"
                         : strcmp(mode, "replace") == 0 ? "PUT"
                                                        : "POST";
    return write_entity(x, out, method, NULL);
}

static void human_insert(const struct ctx *x, json_t *r)
{
    (void)x;
    human_written(r, "inserted");
}

static int cmd_entity_merge(struct ctx *x, json_t **out)
{
    return write_entity(x, out, "PATCH",
                        x->a->given[O_IF_MATCH] ? x->a->value[O_IF_MATCH] : NULL);
}

static void human_merge(const struct ctx *x, json_t *r)
{
    (void)x;
    human_written(r, "merged");
}

static int cmd_entity_replace(struct ctx *x, json_t **out)
{
    return write_entity(x, out, "PUT", x->a->given[O_IF_MATCH] ? x->a->value[O_IF_MATCH] : NULL);
}

static void human_replace(const struct ctx *x, json_t *r)
{
    (void)x;
    human_written(r, "replaced");
}

static int cmd_entity_get(struct ctx *x, json_t **out)
{
    int ret = EXIT_FAIL;
    struct args *a = x->a;
    struct nb_buf path;
    struct nb_client_resp resp;
    json_t *in = NULL;
    nb_buf_init(&path, 16384);
    nb_client_resp_init(&resp);
    if (entity_path(&path, a->pos[0], a->value[O_PK], a->value[O_RK])) {
        ret = usage_error(x->g, x->c, "%s", "the keys are too long");
        goto cleanup;
    }
    struct call c = odata_call("GET", nb_buf_cstr(&path));
    if (a->given[O_SELECT]) add_query(&c, "$select", a->value[O_SELECT]);
    if (!send_call(x, &c, &resp)) goto cleanup;
    if (!ok_status(resp.status)) {
        ret = print_service_error(x, &resp);
        goto cleanup;
    }
    in = read_json(&resp);
    if (!in) {
        ret = bad_response("the entity is not a JSON object");
        goto cleanup;
    }
    *out = entity_out(in, nb_client_resp_header(&resp, "ETag"));
    ret = EXIT_OK;
cleanup:
    json_decref(in);
    nb_buf_cleanup(&path);
    nb_client_resp_cleanup(&resp);
    return ret;
}

static void human_entity(const struct ctx *x, json_t *r)
{
    (void)x;
    print_entity(r);
}

/* Continuation of a query: both keys, either may be absent (Azure sends
 * only NextPartitionKey when the next row starts a partition). */
struct marker {
    char *pk, *rk;
};

static void marker_clear(struct marker *m)
{
    free(m->pk);
    free(m->rk);
    m->pk = m->rk = NULL;
}

static int cmd_entity_query(struct ctx *x, json_t **out)
{
    int ret = EXIT_FAIL;
    struct args *a = x->a;
    struct nb_client_resp resp;
    struct nb_buf path;
    struct marker m = {NULL, NULL};
    json_t *items = json_array(), *page = NULL;
    char top[24];
    nb_buf_init(&path, 4096);
    nb_client_resp_init(&resp);
    snprintf(top, sizeof(top), "%ld", a->top);
    for (size_t i = 0; i < a->nmarkers; i++) {
        const char *eq = strchr(a->markers[i], '=');
        char **dst = strncasecmp(a->markers[i], "nextpartitionkey=", 17) == 0 ? &m.pk : &m.rk;
        free(*dst);
        *dst = nb_strdup(eq + 1);
    }
    if (nb_buf_printf(&path, "/%s()", a->pos[0])) goto cleanup;
    for (size_t n = 0;; n++) {
        if (n == MAX_PAGES) {
            ret = bad_response("the query does not end");
            goto cleanup;
        }
        struct call c = odata_call("GET", nb_buf_cstr(&path));
        if (a->given[O_FILTER]) add_query(&c, "$filter", a->value[O_FILTER]);
        if (a->given[O_SELECT]) add_query(&c, "$select", a->value[O_SELECT]);
        if (a->given[O_TOP]) add_query(&c, "$top", top);
        if (m.pk) add_query(&c, "NextPartitionKey", m.pk);
        if (m.rk) add_query(&c, "NextRowKey", m.rk);
        if (!send_call(x, &c, &resp)) goto cleanup;
        if (!ok_status(resp.status)) {
            ret = print_service_error(x, &resp);
            goto cleanup;
        }
        json_decref(page);
        page = read_json(&resp);
        json_t *value = json_object_get(page, "value");
        if (!json_is_array(value)) {
            ret = bad_response("the query result has no \"value\" array");
            goto cleanup;
        }
        size_t i;
        json_t *e;
        json_array_foreach(value, i, e)
        {
            if (json_is_object(e)) json_array_append_new(items, entity_out(e, NULL));
        }
        const char *npk = nb_client_resp_header(&resp, "x-ms-continuation-NextPartitionKey");
        const char *nrk = nb_client_resp_header(&resp, "x-ms-continuation-NextRowKey");
        if (npk && !*npk) npk = NULL;
        if (nrk && !*nrk) nrk = NULL;
        bool same = (npk || nrk) && m.pk && npk && strcmp(m.pk, npk) == 0 &&
                    ((!m.rk && !nrk) || (m.rk && nrk && strcmp(m.rk, nrk) == 0));
        marker_clear(&m);
        if (!npk && !nrk) break;
        if (same) {
            ret = bad_response("the query repeats its continuation marker");
            goto cleanup;
        }
        m.pk = npk ? nb_strdup(npk) : NULL;
        m.rk = nrk ? nb_strdup(nrk) : NULL;
        if (!a->given[O_ALL]) break;
    }
    json_t *next = json_null();
    if (m.pk || m.rk) {
        next = json_object();
        if (m.pk) json_object_set_new(next, "nextpartitionkey", str_json(m.pk));
        if (m.rk) json_object_set_new(next, "nextrowkey", str_json(m.rk));
    }
    *out = json_pack("{s:o,s:o}", "items", items, "nextMarker", next);
    items = NULL;
    ret = EXIT_OK;
cleanup:
    marker_clear(&m);
    json_decref(page);
    json_decref(items);
    nb_buf_cleanup(&path);
    nb_client_resp_cleanup(&resp);
    return ret;
}

static void human_query(const struct ctx *x, json_t *r)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(r, "items"), i, e)
    {
        if (i) putchar('\n');
        print_entity(e);
    }
    json_t *next = json_object_get(r, "nextMarker");
    if (json_is_object(next)) {
        /* On stderr, so stdout holds only entities. */
        fprintf(stderr, "(more entities: nimbus %s %s %s --marker", x->g->name, x->c->name,
                x->a->pos[0]);
        const char *k;
        json_t *v;
        json_object_foreach(next, k, v)
        {
            /* Single-quoted for the shell: Azure's markers hold '!' and '='. */
            fprintf(stderr, " '%s=", k);
            for (const char *p = json_string_value(v); p && *p; p++)
                if (*p == '\'')
                    fputs("'\\''", stderr);
                else
                    fputc(*p, stderr);
            fputc('\'', stderr);
        }
        fputs(", or use --all)\n", stderr);
    }
}

static int cmd_entity_delete(struct ctx *x, json_t **out)
{
    int ret = EXIT_FAIL;
    struct args *a = x->a;
    struct nb_buf path;
    struct nb_client_resp resp;
    nb_buf_init(&path, 16384);
    nb_client_resp_init(&resp);
    if (entity_path(&path, a->pos[0], a->value[O_PK], a->value[O_RK])) {
        ret = usage_error(x->g, x->c, "%s", "the keys are too long");
        goto cleanup;
    }
    struct call c = odata_call("DELETE", nb_buf_cstr(&path));
    add_header(&c, "If-Match", a->given[O_IF_MATCH] ? a->value[O_IF_MATCH] : "*");
    if (!send_call(x, &c, &resp)) goto cleanup;
    bool deleted = true;
    if (!ok_status(resp.status)) {
        static const char *const missing[] = {"ResourceNotFound", NULL};
        if (!is_error(&resp, 404, missing) || a->given[O_FAIL_NOT_EXIST]) {
            ret = print_service_error(x, &resp);
            goto cleanup;
        }
        deleted = false;
    }
    *out = json_pack("{s:o,s:o,s:b}", "PartitionKey", str_json(a->value[O_PK]), "RowKey",
                     str_json(a->value[O_RK]), "deleted", deleted);
    ret = EXIT_OK;
cleanup:
    nb_buf_cleanup(&path);
    nb_client_resp_cleanup(&resp);
    return ret;
}

static void human_entity_delete(const struct ctx *x, json_t *r)
{
    (void)x;
    const char *pk = json_string_value(json_object_get(r, "PartitionKey"));
    const char *rk = json_string_value(json_object_get(r, "RowKey"));
    if (json_is_true(json_object_get(r, "deleted")))
        printf("deleted entity PartitionKey='%s' RowKey='%s'\n", pk, rk);
    else
        printf("entity PartitionKey='%s' RowKey='%s' does not exist\n", pk, rk);
}

/* ---- the command tables ---------------------------------------------- */

static const struct cmd table_cmds[] = {
    {"create", cmd_table_create, human_table_create, 1, 1, COMMON | BIT(O_FAIL_EXIST), 0,
     "create NAME [--fail-on-exist]",
     "Create a table (NAME: a letter, then 2 to 62 letters or digits). If it\n"
     "exists already this reports created=false (exit 0) unless --fail-on-exist\n"
     "is given."},
    {"delete", cmd_table_delete, human_table_delete, 1, 1, COMMON | BIT(O_FAIL_NOT_EXIST), 0,
     "delete NAME [--fail-not-exist]",
     "Delete a table and its entities. A missing table reports deleted=false\n"
     "(exit 0) unless --fail-not-exist is given."},
    {"list", cmd_table_list, human_table_list, 0, 0, COMMON | BIT(O_FILTER) | BIT(O_TOP), 0,
     "list [--filter F] [--top N]",
     "List tables, sorted by name. F is an OData filter over TableName, e.g.\n"
     "\"TableName eq 'orders'\" or \"TableName ge 'a' and TableName lt 'b'\".\n"
     "Every page is fetched (x-ms-continuation-NextTableName); --top asks the\n"
     "service for at most N (1..1000) per page."},
};

#define PROP_HELP                                                                    \
    "Properties are NAME=VALUE[:TYPE]. TYPE is one of string (the default),\n"       \
    "int32, int64, double, bool, datetime, guid, binary (base64); the text after\n" \
    "the last ':' is a type only when it names one, so 'url=http://x' is a\n"        \
    "string. They are sent with @odata.type annotations as the Azure SDK does.\n"    \
    "Doubles also take NaN, Infinity, -Infinity; datetimes are ISO 8601 and are\n"  \
    "stored in UTC (e.g. 2024-05-06T07:08:09.5Z)."

static const struct cmd entity_cmds[] = {
    {"insert", cmd_entity_insert, human_insert, 1, 1 + MAX_PROPS,
     COMMON | KEYS | BIT(O_IF_EXISTS), KEYS,
     "insert TABLE --pk PK --rk RK [PROP=VALUE[:TYPE] ...] [--if-exists fail|merge|replace]",
     "Insert an entity. With --if-exists fail (the default) an existing entity\n"
     "is an error (EntityAlreadyExists); merge updates the given properties of\n"
     "an existing entity, replace overwrites it (both create it when missing).\n"
     "Prints the new etag.\n\n" PROP_HELP},
    {"get", cmd_entity_get, human_entity, 1, 1, COMMON | KEYS | BIT(O_SELECT), KEYS,
     "get TABLE --pk PK --rk RK [--select a,b]",
     "Show one entity with its etag and typed properties (text output shows a\n"
     "non-string property's type; JSON output keeps the @odata.type annotations\n"
     "of Int64, DateTime, Guid, Binary and non-finite Double values).\n"
     "--select returns only the named properties."},
    {"query", cmd_entity_query, human_query, 1, 1,
     COMMON | BIT(O_FILTER) | BIT(O_SELECT) | BIT(O_TOP) | BIT(O_ALL) | BIT(O_MARKER), 0,
     "query TABLE [--filter F] [--select a,b] [--top N] [--all]\n"
     "      [--marker nextpartitionkey=P nextrowkey=R]",
     "Query entities, sorted by PartitionKey and RowKey. F is an OData filter,\n"
     "e.g. \"PartitionKey eq 'p1' and Age gt 30\". --top asks for at most N\n"
     "(1..1000) entities per page. One page is fetched unless --all is given;\n"
     "when more remain, JSON output has a nextMarker that --marker takes back."},
    {"merge", cmd_entity_merge, human_merge, 1, 1 + MAX_PROPS, COMMON | KEYS | BIT(O_IF_MATCH),
     KEYS, "merge TABLE --pk PK --rk RK [--if-match ETAG|*] [PROP=VALUE[:TYPE] ...]",
     "Update the given properties of an entity, keeping the others. Without\n"
     "--if-match the entity is created when missing (insert-or-merge); with it\n"
     "the entity must exist and, unless ETAG is *, still have that etag.\n\n" PROP_HELP},
    {"replace", cmd_entity_replace, human_replace, 1, 1 + MAX_PROPS,
     COMMON | KEYS | BIT(O_IF_MATCH), KEYS,
     "replace TABLE --pk PK --rk RK [--if-match ETAG|*] [PROP=VALUE[:TYPE] ...]",
     "Replace an entity with exactly the given properties. Without --if-match\n"
     "the entity is created when missing (insert-or-replace); with it the\n"
     "entity must exist and, unless ETAG is *, still have that etag.\n\n" PROP_HELP},
    {"delete", cmd_entity_delete, human_entity_delete, 1, 1,
     COMMON | KEYS | BIT(O_IF_MATCH) | BIT(O_FAIL_NOT_EXIST), KEYS,
     "delete TABLE --pk PK --rk RK [--if-match ETAG] [--fail-not-exist]",
     "Delete an entity, only if it still has ETAG when --if-match is given\n"
     "(default *). A missing entity reports deleted=false (exit 0) unless\n"
     "--fail-not-exist is given."},
};

static const struct group table_group = {
    "table", "NAME", table_cmds, sizeof(table_cmds) / sizeof(table_cmds[0]),
    "Table storage client for a running Nimbus (or any Azure Table storage\n"
    "endpoint), modelled on 'az storage table'. Entities: 'nimbus entity --help'.\n"};

static const struct group entity_group = {
    "entity", "TABLE", entity_cmds, sizeof(entity_cmds) / sizeof(entity_cmds[0]),
    "Table entity client for a running Nimbus (or any Azure Table storage\n"
    "endpoint), modelled on 'az storage entity'. Tables: 'nimbus table --help'.\n"};

static const struct cmd *find_cmd(const struct group *g, const char *name)
{
    for (size_t i = 0; i < g->ncmds; i++)
        if (strcmp(g->cmds[i].name, name) == 0) return &g->cmds[i];
    return NULL;
}

static const char common_help[] =
    "common options:\n"
    "  --connection-string CS  storage connection string (TableEndpoint or\n"
    "                          UseDevelopmentStorage=true); without it\n"
    "                          $" NB_CONNSTR_ENV ",\n"
    "                          else the local Nimbus: devstoreaccount1 at\n"
    "                          " NB_LOCAL_TABLE_ENDPOINT "\n"
    "  --json                  print the result as JSON\n"
    "  -h, --help              show help\n"
    "exit status: 0 success, 1 service or connection error, 2 usage error\n";

static void print_main_help(const struct group *g, FILE *f)
{
    fprintf(f, "usage: nimbus %s COMMAND [options]\n\n%s\ncommands:\n", g->name, g->about);
    for (size_t i = 0; i < g->ncmds; i++)
        fprintf(f, "  %s\n", g->cmds[i].synopsis);
    fputc('\n', f);
    fputs(common_help, f);
    fprintf(f, "\n'nimbus %s COMMAND --help' describes one command.\n", g->name);
}

static void print_cmd_help(const struct group *g, const struct cmd *c)
{
    printf("usage: nimbus %s %s\n\n%s\n\n%s", g->name, c->synopsis, c->help, common_help);
}

/* ---- argument parsing ------------------------------------------------ */

static bool is_option(const char *s)
{
    return s[0] == '-' && s[1] == '-' && s[2];
}

static int take_marker(const struct group *g, const struct cmd *c, struct args *a, const char *kv)
{
    if (strncasecmp(kv, "nextpartitionkey=", 17) != 0 && strncasecmp(kv, "nextrowkey=", 11) != 0)
        return usage_error(g, c, "--marker takes nextpartitionkey=P and nextrowkey=R: '%s'", kv);
    if (a->nmarkers == MAX_MARKERS) return usage_error(g, c, "too many --marker values%s", "");
    a->markers[a->nmarkers++] = kv;
    return EXIT_OK;
}

/* Parse argv[2..] for command c. Returns EXIT_OK, or an exit status after
 * printing the usage error. --help is recorded, not acted on. */
static int parse_args(const struct group *g, const struct cmd *c, int argc, char **argv,
                      struct args *a)
{
    bool opts_done = false;
    for (int i = 2; i < argc; i++) {
        const char *arg = argv[i];
        if (!opts_done && strcmp(arg, "--") == 0) {
            opts_done = true;
            continue;
        }
        if (!opts_done && strcmp(arg, "-h") == 0) arg = "--help";
        if (opts_done || !is_option(arg)) {
            if (a->npos == c->max_pos) {
                if (c->max_pos > 1)
                    return usage_error(g, c, "too many properties (at most 252)%s", "");
                return usage_error(g, c, "unexpected argument '%s'", arg);
            }
            a->pos[a->npos++] = arg;
            continue;
        }
        const char *eqv = strchr(arg, '=');
        size_t nlen = eqv ? (size_t)(eqv - arg) : strlen(arg);
        int id = -1;
        for (int o = 0; o < O_COUNT; o++)
            if (strlen(opts[o].name) == nlen && strncmp(opts[o].name, arg, nlen) == 0) id = o;
        if (id < 0 || !(c->opts & BIT(id))) return usage_error(g, c, "unknown option '%s'", arg);
        if (a->given[id] && opts[id].kind == VALUE)
            return usage_error(g, c, "option given twice: '%s'", arg);
        a->given[id] = true;
        switch (opts[id].kind) {
        case FLAG:
            if (eqv) return usage_error(g, c, "option takes no value: '%s'", arg);
            break;
        case VALUE:
            if (eqv) {
                a->value[id] = eqv + 1;
            } else {
                if (i + 1 >= argc) return usage_error(g, c, "option '%s' needs a value", arg);
                a->value[id] = argv[++i];
            }
            break;
        case PAIRS: {
            if (eqv) {
                int r = take_marker(g, c, a, eqv + 1);
                if (r) return r;
            }
            /* az style: the pairs follow as separate words. */
            while (i + 1 < argc && !is_option(argv[i + 1]) && strchr(argv[i + 1], '=')) {
                int r = take_marker(g, c, a, argv[++i]);
                if (r) return r;
            }
            if (!a->nmarkers) return usage_error(g, c, "%s", "--marker needs a value");
            break;
        }
        }
    }
    if (a->given[O_HELP]) return EXIT_OK;
    if (a->npos < c->min_pos) return usage_error(g, c, "missing %s", g->pos_name);
    if (c->min_pos && !valid_table_name(a->pos[0]))
        return usage_error(g, c,
                           "invalid table name '%s' (a letter, then 2 to 62 letters or digits)",
                           a->pos[0]);
    for (int o = 0; o < O_COUNT; o++)
        if ((c->required & BIT(o)) && !a->given[o])
            return usage_error(g, c, "%s is required", opts[o].name);
    if (a->given[O_TOP]) {
        long v;
        if (!parse_long(a->value[O_TOP], &v) || v < 1 || v > MAX_TOP)
            return usage_error(g, c, "--top must be a whole number from 1 to 1000: '%s'",
                               a->value[O_TOP]);
        a->top = v;
    }
    if (a->given[O_IF_EXISTS]) {
        const char *m = a->value[O_IF_EXISTS];
        if (strcmp(m, "fail") != 0 && strcmp(m, "merge") != 0 && strcmp(m, "replace") != 0)
            return usage_error(g, c, "--if-exists must be fail, merge or replace: '%s'", m);
    }
    if (a->given[O_IF_MATCH] && !*a->value[O_IF_MATCH])
        return usage_error(g, c, "%s", "--if-match needs an etag or *");
    for (size_t i = 0; i < a->nmarkers; i++)
        for (size_t j = 0; j < i; j++)
            if (strncasecmp(a->markers[i], a->markers[j], 11) == 0)
                return usage_error(g, c, "--marker value given twice: '%s'", a->markers[i]);
    return EXIT_OK;
}

static int group_main(const struct group *g, int argc, char **argv)
{
    int ret = EXIT_USAGE;
    struct args a;
    struct ctx x;
    struct nb_connstr cs;
    json_t *result = NULL;
    bool client_up = false;
    memset(&a, 0, sizeof(a));
    memset(&x, 0, sizeof(x));
    nb_connstr_init(&cs);

    if (argc < 2) {
        print_main_help(g, stderr);
        goto cleanup;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        print_main_help(g, stdout);
        ret = EXIT_OK;
        goto cleanup;
    }
    const struct cmd *c = find_cmd(g, argv[1]);
    if (!c) {
        ret = usage_error(g, NULL, "unknown command '%s'", argv[1]);
        goto cleanup;
    }
    ret = parse_args(g, c, argc, argv, &a);
    if (ret) goto cleanup;
    if (a.given[O_HELP]) {
        print_cmd_help(g, c);
        ret = EXIT_OK;
        goto cleanup;
    }
    if (c->max_pos > 1) {
        ret = build_entity(g, c, &a, &x.entity);
        if (ret) goto cleanup;
    }

    const char *why = NULL;
    if (nb_connstr_resolve(a.given[O_CONN] ? a.value[O_CONN] : NULL, getenv(NB_CONNSTR_ENV), &cs,
                           &why)) {
        fprintf(stderr, "error: %s: %s\n", a.given[O_CONN] ? "--connection-string" : NB_CONNSTR_ENV,
                why ? why : "invalid connection string");
        ret = EXIT_USAGE;
        goto cleanup;
    }
    if (nb_client_init(&x.client, &cs, NB_STORAGE_TABLE)) {
        fprintf(stderr, "error: %s\n", x.client.err);
        ret = EXIT_USAGE;
        goto cleanup;
    }
    client_up = true;
    x.g = g;
    x.c = c;
    x.a = &a;
    x.json = a.given[O_JSON];
    ret = c->run(&x, &result);
    if (ret == EXIT_OK) emit(&x, result);

cleanup:
    json_decref(result);
    json_decref(x.entity);
    if (client_up) nb_client_cleanup(&x.client);
    nb_connstr_cleanup(&cs);
    return ret;
}

int nb_cli_table_main(int argc, char **argv)
{
    return group_main(&table_group, argc, argv);
}

int nb_cli_entity_main(int argc, char **argv)
{
    return group_main(&entity_group, argc, argv);
}
