/* The one safe way storage code reads client XML: libxml2 with network
 * access, DTD loading and entity substitution off, and any document that
 * carries a DOCTYPE rejected outright (so neither XXE nor billion laughs can
 * reach us). Text is read from text/CDATA children only, never through
 * entity references. Requires xmlInitParser() to have run once (main). */
#ifndef NB_STORAGE_XML_H
#define NB_STORAGE_XML_H
#include <libxml/tree.h>
#include <stddef.h>

/* Parse len bytes as a UTF-8 XML document. Returns a document the caller
 * frees with xmlFreeDoc(), or NULL when the input is empty, not well-formed,
 * larger than INT_MAX, or declares a DOCTYPE. Never prints to stderr. */
xmlDocPtr nb_storage_xml_read(const char *xml, size_t len);

/* First element child of `parent` whose local name is `name` (namespaces
 * are ignored), or NULL. `parent` may be NULL (then NULL). Borrowed. */
xmlNodePtr nb_storage_xml_child(xmlNodePtr parent, const char *name);

/* True when `node` is an element whose local name equals `name`. */
int nb_storage_xml_is(xmlNodePtr node, const char *name);

/* The concatenated text and CDATA children of `node` (element children are
 * skipped), with leading and trailing ASCII whitespace removed when `trim`.
 * Returns a heap string (nb_malloc; caller frees); "" for NULL or empty. */
char *nb_storage_xml_text(xmlNodePtr node, int trim);

#endif
