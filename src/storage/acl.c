/* SignedIdentifiers parsing and serialisation (see acl.h). Pure functions
 * over caller-owned structs; the only heap use is libxml2's document and
 * the text copies freed before returning. */
#include "storage/acl.h"
#include "core/timefmt.h"
#include "storage/xml.h"
#include <libxml/parser.h>
#include <stdlib.h>
#include <string.h>

static int all_space(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n') return 0;
    return 1;
}

/* ISO 8601 -> "YYYY-MM-DDThh:mm:ss.fffffffZ" in UTC. The fraction digits are
 * copied from the input rather than taken from the parsed milliseconds, so
 * a 7-digit value the client sent comes back unchanged. */
static int normalize_time(const char *s, char out[32])
{
    size_t n = strlen(s);
    long offset_min = 0;
    /* A trailing +hh:mm / -hh:mm offset. It must follow a time, hence the
     * position check: the '-' of the date itself is at index 4 or 7. */
    if (n >= 17 && (s[n - 6] == '+' || s[n - 6] == '-') && s[n - 3] == ':' && memchr(s, 'T', n)) {
        const char *o = s + n - 5;
        for (int i = 0; i < 5; i++)
            if (i != 2 && (o[i] < '0' || o[i] > '9')) return -1;
        long hh = (o[0] - '0') * 10 + (o[1] - '0');
        long mm = (o[3] - '0') * 10 + (o[4] - '0');
        if (hh > 23 || mm > 59) return -1;
        offset_min = hh * 60 + mm;
        if (s[n - 6] == '-') offset_min = -offset_min;
        n -= 6;
    }
    nb_time_ms t;
    if (nb_time_parse_iso8601(s, n, &t)) return -1;
    t -= (nb_time_ms)offset_min * 60000;
    nb_time_ms ms = t % 1000;
    if (ms < 0) ms += 1000;
    char iso[NB_ISO8601_LEN];
    nb_time_iso8601(t - ms, iso); /* "....ss.0000000Z": digits at 20..26 */
    const char *dot = memchr(s, '.', n);
    if (dot) {
        const char *d = dot + 1;
        for (int i = 0; i < 7 && d < s + n && *d >= '0' && *d <= '9'; i++, d++)
            iso[20 + i] = *d;
    }
    memcpy(out, iso, NB_ISO8601_LEN);
    return 0;
}

/* Copy the text of `node` into dst (size cap), trimmed; -1 if it is longer
 * than cap - 1. A NULL node gives "". */
static int copy_text(xmlNodePtr node, int trim, char *dst, size_t cap)
{
    char *t = nb_storage_xml_text(node, trim);
    size_t l = strlen(t);
    int rc = -1;
    if (l >= cap) goto cleanup;
    memcpy(dst, t, l + 1);
    rc = 0;
cleanup:
    free(t);
    return rc;
}

static int parse_date(xmlNodePtr node, char out[32])
{
    char raw[64];
    out[0] = '\0';
    if (!node) return 0;
    if (copy_text(node, 1, raw, sizeof(raw))) return -1;
    if (!raw[0]) return 0; /* empty element: absent */
    return normalize_time(raw, out);
}

static int parse_identifier(xmlNodePtr si, struct nb_acl_entry *e)
{
    memset(e, 0, sizeof(*e));
    xmlNodePtr id = nb_storage_xml_child(si, "Id");
    if (!id || copy_text(id, 0, e->id, sizeof(e->id)) || !e->id[0]) return -1;
    xmlNodePtr ap = nb_storage_xml_child(si, "AccessPolicy");
    if (!ap) return 0;
    if (parse_date(nb_storage_xml_child(ap, "Start"), e->start)) return -1;
    if (parse_date(nb_storage_xml_child(ap, "Expiry"), e->expiry)) return -1;
    xmlNodePtr perm = nb_storage_xml_child(ap, "Permission");
    if (perm && copy_text(perm, 1, e->permission, sizeof(e->permission))) return -1;
    return 0;
}

enum nb_err nb_acl_parse_xml(const char *xml, size_t len, struct nb_acl *out,
                             const char **error_code)
{
    enum nb_err rc = NB_ERR_INVALID;
    xmlDocPtr doc = NULL;
    memset(out, 0, sizeof(*out));
    if (error_code) *error_code = NULL;
    if (!xml || len == 0 || all_space(xml, len)) return NB_OK;
    doc = nb_storage_xml_read(xml, len);
    if (!doc) goto cleanup;
    xmlNodePtr root = xmlDocGetRootElement(doc);
    if (!nb_storage_xml_is(root, "SignedIdentifiers")) goto cleanup;
    for (xmlNodePtr c = root->children; c; c = c->next) {
        if (!nb_storage_xml_is(c, "SignedIdentifier")) continue;
        if (out->n == NB_ACL_MAX) goto cleanup;
        struct nb_acl_entry *e = &out->items[out->n];
        if (parse_identifier(c, e)) goto cleanup;
        /* Duplicates would make the policy an SAS `si` names ambiguous. */
        if (nb_acl_find(out, e->id)) goto cleanup;
        out->n++;
    }
    rc = NB_OK;
cleanup:
    if (doc) xmlFreeDoc(doc);
    if (rc) {
        memset(out, 0, sizeof(*out));
        if (error_code) *error_code = "InvalidXmlDocument";
    }
    return rc;
}

static enum nb_err add_elem(struct nb_buf *b, const char *name, const char *text)
{
    if (!text[0]) return NB_OK;
    enum nb_err rc = nb_buf_printf(b, "<%s>", name);
    if (!rc) rc = nb_buf_add_xml(b, text, strlen(text));
    if (!rc) rc = nb_buf_printf(b, "</%s>", name);
    return rc;
}

enum nb_err nb_acl_to_xml(const struct nb_acl *acl, struct nb_buf *out)
{
    enum nb_err rc = nb_buf_adds(out, "<?xml version=\"1.0\" encoding=\"utf-8\"?>");
    if (rc) return rc;
    if (!acl || acl->n == 0) return nb_buf_adds(out, "<SignedIdentifiers />");
    rc = nb_buf_adds(out, "<SignedIdentifiers>");
    for (size_t i = 0; !rc && i < acl->n && i < NB_ACL_MAX; i++) {
        const struct nb_acl_entry *e = &acl->items[i];
        rc = nb_buf_adds(out, "<SignedIdentifier><Id>");
        if (!rc) rc = nb_buf_add_xml(out, e->id, strlen(e->id));
        if (!rc) rc = nb_buf_adds(out, "</Id><AccessPolicy>");
        if (!rc) rc = add_elem(out, "Start", e->start);
        if (!rc) rc = add_elem(out, "Expiry", e->expiry);
        if (!rc) rc = add_elem(out, "Permission", e->permission);
        if (!rc) rc = nb_buf_adds(out, "</AccessPolicy></SignedIdentifier>");
    }
    if (!rc) rc = nb_buf_adds(out, "</SignedIdentifiers>");
    return rc;
}

const struct nb_acl_entry *nb_acl_find(const struct nb_acl *acl, const char *id)
{
    if (!acl || !id) return NULL;
    for (size_t i = 0; i < acl->n && i < NB_ACL_MAX; i++)
        if (strcmp(acl->items[i].id, id) == 0) return &acl->items[i];
    return NULL;
}

enum nb_err nb_acl_check_permissions(const struct nb_acl *acl, const char *allowed)
{
    if (!acl) return NB_OK;
    for (size_t i = 0; i < acl->n && i < NB_ACL_MAX; i++)
        for (const char *p = acl->items[i].permission; *p; p++)
            if (!strchr(allowed, *p)) return NB_ERR_INVALID;
    return NB_OK;
}
