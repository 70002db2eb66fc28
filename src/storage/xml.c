/* Hardened libxml2 reading for the storage services (see xml.h). Owns no
 * state; every document it returns belongs to the caller. */
#include "storage/xml.h"
#include "core/mem.h"
#include <libxml/parser.h>
#include <limits.h>
#include <string.h>

xmlDocPtr nb_storage_xml_read(const char *xml, size_t len)
{
    if (!xml || len == 0 || len > INT_MAX) return NULL;
    /* No Azure storage document uses a DTD. Refusing any DOCTYPE before
     * libxml2 sees it means no internal entity can be declared, so no
     * expansion bomb and no external entity is possible whatever libxml2's
     * own limits are. The encoding is forced to UTF-8 below, so a UTF-16
     * document cannot hide the keyword from this byte scan. */
    if (memmem(xml, len, "<!DOCTYPE", 9)) return NULL;
    int opts = XML_PARSE_NONET | XML_PARSE_NOBLANKS | XML_PARSE_NOERROR | XML_PARSE_NOWARNING;
    xmlDocPtr doc = xmlReadMemory(xml, (int)len, NULL, "UTF-8", opts);
    if (!doc) return NULL;
    if (doc->intSubset || doc->extSubset || !xmlDocGetRootElement(doc)) {
        xmlFreeDoc(doc);
        return NULL;
    }
    return doc;
}

int nb_storage_xml_is(xmlNodePtr node, const char *name)
{
    return node && node->type == XML_ELEMENT_NODE && node->name &&
           strcmp((const char *)node->name, name) == 0;
}

xmlNodePtr nb_storage_xml_child(xmlNodePtr parent, const char *name)
{
    if (!parent) return NULL;
    for (xmlNodePtr c = parent->children; c; c = c->next)
        if (nb_storage_xml_is(c, name)) return c;
    return NULL;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

char *nb_storage_xml_text(xmlNodePtr node, int trim)
{
    size_t total = 0;
    if (node) {
        for (xmlNodePtr c = node->children; c; c = c->next)
            if ((c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) && c->content)
                total += strlen((const char *)c->content);
    }
    char *out = nb_malloc(total + 1);
    size_t n = 0;
    if (node) {
        for (xmlNodePtr c = node->children; c; c = c->next) {
            if ((c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) && c->content) {
                size_t l = strlen((const char *)c->content);
                memcpy(out + n, c->content, l);
                n += l;
            }
        }
    }
    out[n] = '\0';
    if (trim) {
        size_t start = 0;
        while (start < n && is_space(out[start]))
            start++;
        while (n > start && is_space(out[n - 1]))
            n--;
        memmove(out, out + start, n - start);
        out[n - start] = '\0';
    }
    return out;
}
