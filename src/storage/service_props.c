/* Service properties: parse the stored and the incoming documents into one
 * model, section by section, and write the model back canonically (see
 * service_props.h). Keeps no state; the model lives on the stack with its
 * CORS strings on the heap until the merge returns. */
#include "storage/service_props.h"
#include "core/mem.h"
#include "core/timefmt.h"
#include "storage/xml.h"
#include <errno.h>
#include <libxml/parser.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define VERSION_MAX 16      /* "1.0"; room for whatever a client sends */
#define CORS_FIELD_MAX 4096 /* per CorsRule element, before escaping */
#define PROPS_DOC_MAX (1 << 20)

static const char default_doc[] =
    "<?xml version=\"1.0\" encoding=\"utf-8\"?><StorageServiceProperties>"
    "<Logging><Version>1.0</Version><Delete>false</Delete><Read>false</Read>"
    "<Write>false</Write><RetentionPolicy><Enabled>false</Enabled></RetentionPolicy>"
    "</Logging><HourMetrics><Version>1.0</Version><Enabled>true</Enabled>"
    "<IncludeAPIs>true</IncludeAPIs><RetentionPolicy><Enabled>true</Enabled><Days>7</Days>"
    "</RetentionPolicy></HourMetrics><MinuteMetrics><Version>1.0</Version>"
    "<Enabled>false</Enabled><RetentionPolicy><Enabled>false</Enabled></RetentionPolicy>"
    "</MinuteMetrics><Cors /></StorageServiceProperties>";

struct retention {
    bool enabled;
    long days; /* meaningful only when enabled */
};

struct logging {
    char version[VERSION_MAX];
    bool del, read, write;
    struct retention rp;
};

struct metrics {
    char version[VERSION_MAX];
    bool enabled, include_apis;
    struct retention rp;
};

struct rule {
    char *origins, *methods, *allowed_headers, *exposed_headers;
    long max_age;
};

struct props {
    struct logging logging;
    struct metrics hour, minute;
    struct rule cors[NB_CORS_MAX_RULES];
    size_t ncors;
    char *default_version; /* heap, NULL when never set */
};

const char *nb_service_props_default(void)
{
    return default_doc;
}

static void rules_free(struct rule *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(r[i].origins);
        free(r[i].methods);
        free(r[i].allowed_headers);
        free(r[i].exposed_headers);
    }
}

static void props_cleanup(struct props *p)
{
    rules_free(p->cors, p->ncors);
    p->ncors = 0;
    free(p->default_version);
    p->default_version = NULL;
}

static void logging_default(struct logging *l)
{
    memset(l, 0, sizeof(*l));
    memcpy(l->version, "1.0", 4);
}

static void metrics_default(struct metrics *m, bool hour)
{
    memset(m, 0, sizeof(*m));
    memcpy(m->version, "1.0", 4);
    if (hour) {
        m->enabled = m->include_apis = true;
        m->rp.enabled = true;
        m->rp.days = 7;
    }
}

/* --- reading --------------------------------------------------------- */

/* Absent element: keep *out. Present: must be true/false/1/0. */
static int read_bool(xmlNodePtr parent, const char *name, bool *out)
{
    xmlNodePtr n = nb_storage_xml_child(parent, name);
    if (!n) return 0;
    char *t = nb_storage_xml_text(n, 1);
    int rc = 0;
    if (strcasecmp(t, "true") == 0 || strcmp(t, "1") == 0)
        *out = true;
    else if (strcasecmp(t, "false") == 0 || strcmp(t, "0") == 0)
        *out = false;
    else
        rc = -1;
    free(t);
    return rc;
}

/* A whole decimal number in [min, max]; no sign but '-', no junk. */
static int parse_long(const char *t, long min, long max, long *out)
{
    if (!*t) return -1;
    errno = 0;
    char *end = NULL;
    long v = strtol(t, &end, 10);
    if (errno || *end || v < min || v > max) return -1;
    *out = v;
    return 0;
}

static int read_version(xmlNodePtr parent, char out[VERSION_MAX])
{
    xmlNodePtr n = nb_storage_xml_child(parent, "Version");
    if (!n) return 0;
    char *t = nb_storage_xml_text(n, 1);
    size_t l = strlen(t);
    int rc = l >= VERSION_MAX ? -1 : 0;
    if (!rc && l) memcpy(out, t, l + 1);
    free(t);
    return rc;
}

static int read_retention(xmlNodePtr parent, struct retention *rp)
{
    xmlNodePtr n = nb_storage_xml_child(parent, "RetentionPolicy");
    if (!n) return 0;
    rp->enabled = false;
    rp->days = 0;
    if (read_bool(n, "Enabled", &rp->enabled)) return -1;
    if (!rp->enabled) return 0; /* Days is ignored (and not echoed) when off */
    char *t = nb_storage_xml_text(nb_storage_xml_child(n, "Days"), 1);
    int rc = parse_long(t, 1, 365, &rp->days);
    free(t);
    return rc;
}

static int read_logging(xmlNodePtr n, struct logging *l)
{
    logging_default(l);
    if (read_version(n, l->version)) return -1;
    if (read_bool(n, "Delete", &l->del) || read_bool(n, "Read", &l->read) ||
        read_bool(n, "Write", &l->write))
        return -1;
    return read_retention(n, &l->rp);
}

static int read_metrics(xmlNodePtr n, struct metrics *m)
{
    metrics_default(m, false);
    if (read_version(n, m->version)) return -1;
    if (read_bool(n, "Enabled", &m->enabled) || read_bool(n, "IncludeAPIs", &m->include_apis))
        return -1;
    return read_retention(n, &m->rp);
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Every comma-separated item of `methods` is a verb Azure allows in CORS. */
static int methods_valid(const char *methods)
{
    static const char *const verbs[] = {"DELETE", "GET",     "HEAD", "MERGE",
                                        "POST",   "OPTIONS", "PUT",  "PATCH"};
    const char *p = methods;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *s = p;
        while (len && is_space(*s))
            s++, len--;
        while (len && is_space(s[len - 1]))
            len--;
        int ok = 0;
        for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
            if (strlen(verbs[i]) == len && strncasecmp(verbs[i], s, len) == 0) ok = 1;
        if (!ok) return 0;
        if (!end) return 1;
        p = end + 1;
    }
}

static int read_rule(xmlNodePtr n, struct rule *r)
{
    char *age = NULL;
    int rc = -1;
    memset(r, 0, sizeof(*r));
    r->origins = nb_storage_xml_text(nb_storage_xml_child(n, "AllowedOrigins"), 1);
    r->methods = nb_storage_xml_text(nb_storage_xml_child(n, "AllowedMethods"), 1);
    r->allowed_headers = nb_storage_xml_text(nb_storage_xml_child(n, "AllowedHeaders"), 1);
    r->exposed_headers = nb_storage_xml_text(nb_storage_xml_child(n, "ExposedHeaders"), 1);
    age = nb_storage_xml_text(nb_storage_xml_child(n, "MaxAgeInSeconds"), 1);
    if (!r->origins[0] || !r->methods[0] || !methods_valid(r->methods)) goto cleanup;
    if (strlen(r->origins) > CORS_FIELD_MAX || strlen(r->methods) > CORS_FIELD_MAX ||
        strlen(r->allowed_headers) > CORS_FIELD_MAX || strlen(r->exposed_headers) > CORS_FIELD_MAX)
        goto cleanup;
    if (parse_long(age, 0, 2147483647L, &r->max_age)) goto cleanup;
    rc = 0;
cleanup:
    free(age);
    if (rc) rules_free(r, 1);
    return rc;
}

/* Replace p's rules with the ones under <Cors>; p is untouched on error. */
static int read_cors(xmlNodePtr n, struct props *p)
{
    struct rule rules[NB_CORS_MAX_RULES];
    size_t count = 0;
    for (xmlNodePtr c = n->children; c; c = c->next) {
        if (!nb_storage_xml_is(c, "CorsRule")) continue;
        if (count == NB_CORS_MAX_RULES || read_rule(c, &rules[count])) {
            rules_free(rules, count);
            return -1;
        }
        count++;
    }
    rules_free(p->cors, p->ncors);
    memcpy(p->cors, rules, count * sizeof(rules[0]));
    p->ncors = count;
    return 0;
}

/* Apply every top-level section of `doc` onto *p. Returns NULL or the
 * Azure error code. A section that fails leaves p's old section intact,
 * but the caller discards p on any error anyway. */
static const char *apply(xmlDocPtr doc, struct props *p)
{
    xmlNodePtr root = xmlDocGetRootElement(doc);
    if (!nb_storage_xml_is(root, "StorageServiceProperties")) return "InvalidXmlDocument";
    for (xmlNodePtr c = root->children; c; c = c->next) {
        int bad = 0;
        if (nb_storage_xml_is(c, "Logging")) {
            struct logging l;
            bad = read_logging(c, &l);
            if (!bad) p->logging = l;
        } else if (nb_storage_xml_is(c, "HourMetrics") || nb_storage_xml_is(c, "MinuteMetrics")) {
            struct metrics m;
            bad = read_metrics(c, &m);
            if (!bad) *(nb_storage_xml_is(c, "HourMetrics") ? &p->hour : &p->minute) = m;
        } else if (nb_storage_xml_is(c, "Cors")) {
            bad = read_cors(c, p);
        } else if (nb_storage_xml_is(c, "DefaultServiceVersion")) {
            char *v = nb_storage_xml_text(c, 1);
            if (strlen(v) >= VERSION_MAX * 2) {
                free(v);
                bad = 1;
            } else {
                free(p->default_version);
                p->default_version = v;
            }
        }
        if (bad) return "InvalidXmlNodeValue";
    }
    return NULL;
}

/* --- writing --------------------------------------------------------- */

static enum nb_err put_text(struct nb_buf *b, const char *name, const char *text)
{
    enum nb_err rc = nb_buf_printf(b, "<%s>", name);
    if (!rc) rc = nb_buf_add_xml(b, text, strlen(text));
    if (!rc) rc = nb_buf_printf(b, "</%s>", name);
    return rc;
}

static enum nb_err put_bool(struct nb_buf *b, const char *name, bool v)
{
    return nb_buf_printf(b, "<%s>%s</%s>", name, v ? "true" : "false", name);
}

static enum nb_err put_retention(struct nb_buf *b, const struct retention *rp)
{
    if (rp->enabled)
        return nb_buf_printf(b,
                             "<RetentionPolicy><Enabled>true</Enabled><Days>%ld</Days>"
                             "</RetentionPolicy>",
                             rp->days);
    return nb_buf_adds(b, "<RetentionPolicy><Enabled>false</Enabled></RetentionPolicy>");
}

static enum nb_err put_metrics(struct nb_buf *b, const char *name, const struct metrics *m)
{
    enum nb_err rc = nb_buf_printf(b, "<%s>", name);
    if (!rc) rc = put_text(b, "Version", m->version);
    if (!rc) rc = put_bool(b, "Enabled", m->enabled);
    /* Azure reports IncludeAPIs only for enabled metrics. */
    if (!rc && m->enabled) rc = put_bool(b, "IncludeAPIs", m->include_apis);
    if (!rc) rc = put_retention(b, &m->rp);
    if (!rc) rc = nb_buf_printf(b, "</%s>", name);
    return rc;
}

static enum nb_err write_props(const struct props *p, struct nb_buf *b)
{
    const struct logging *l = &p->logging;
    enum nb_err rc = nb_buf_adds(b, "<?xml version=\"1.0\" encoding=\"utf-8\"?>"
                                    "<StorageServiceProperties><Logging>");
    if (!rc) rc = put_text(b, "Version", l->version);
    if (!rc) rc = put_bool(b, "Delete", l->del);
    if (!rc) rc = put_bool(b, "Read", l->read);
    if (!rc) rc = put_bool(b, "Write", l->write);
    if (!rc) rc = put_retention(b, &l->rp);
    if (!rc) rc = nb_buf_adds(b, "</Logging>");
    if (!rc) rc = put_metrics(b, "HourMetrics", &p->hour);
    if (!rc) rc = put_metrics(b, "MinuteMetrics", &p->minute);
    if (!rc) rc = nb_buf_adds(b, p->ncors ? "<Cors>" : "<Cors />");
    for (size_t i = 0; !rc && i < p->ncors; i++) {
        const struct rule *r = &p->cors[i];
        rc = nb_buf_adds(b, "<CorsRule>");
        if (!rc) rc = put_text(b, "AllowedOrigins", r->origins);
        if (!rc) rc = put_text(b, "AllowedMethods", r->methods);
        if (!rc) rc = put_text(b, "AllowedHeaders", r->allowed_headers);
        if (!rc) rc = put_text(b, "ExposedHeaders", r->exposed_headers);
        if (!rc)
            rc = nb_buf_printf(b, "<MaxAgeInSeconds>%ld</MaxAgeInSeconds></CorsRule>", r->max_age);
    }
    if (!rc && p->ncors) rc = nb_buf_adds(b, "</Cors>");
    if (!rc && p->default_version) rc = put_text(b, "DefaultServiceVersion", p->default_version);
    if (!rc) rc = nb_buf_adds(b, "</StorageServiceProperties>");
    return rc;
}

enum nb_err nb_service_props_merge(const char *stored, const char *incoming, size_t len,
                                   char **merged, const char **error_code)
{
    struct props p;
    struct nb_buf out;
    xmlDocPtr doc = NULL;
    const char *code = NULL;
    enum nb_err rc = NB_ERR_INVALID;

    memset(&p, 0, sizeof(p));
    logging_default(&p.logging);
    metrics_default(&p.hour, true);
    metrics_default(&p.minute, false);
    nb_buf_init(&out, PROPS_DOC_MAX);
    *merged = NULL;

    if (stored) {
        doc = nb_storage_xml_read(stored, strlen(stored));
        if (!doc || apply(doc, &p)) {
            rc = NB_ERR_STORE;
            code = "InternalError";
            goto cleanup;
        }
        xmlFreeDoc(doc);
        doc = NULL;
    }
    doc = nb_storage_xml_read(incoming, len);
    if (!doc) {
        code = "InvalidXmlDocument";
        goto cleanup;
    }
    code = apply(doc, &p);
    if (code) goto cleanup;
    rc = write_props(&p, &out);
    if (rc) {
        rc = NB_ERR_INVALID; /* only reachable past PROPS_DOC_MAX */
        code = "InvalidXmlNodeValue";
        goto cleanup;
    }
    *merged = nb_buf_detach(&out, NULL);
cleanup:
    if (doc) xmlFreeDoc(doc);
    props_cleanup(&p);
    nb_buf_cleanup(&out);
    if (error_code) *error_code = rc ? code : NULL;
    return rc;
}

enum nb_err nb_service_stats_xml(nb_time_ms now, struct nb_buf *out)
{
    char when[NB_RFC1123_LEN];
    nb_time_rfc1123(now, when);
    return nb_buf_printf(out,
                         "<?xml version=\"1.0\" encoding=\"utf-8\"?><StorageServiceStats>"
                         "<GeoReplication><Status>live</Status><LastSyncTime>%s</LastSyncTime>"
                         "</GeoReplication></StorageServiceStats>",
                         when);
}
