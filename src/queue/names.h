/* Azure's naming rules for queues and metadata. Pure functions. */
#ifndef NB_QUEUE_NAMES_H
#define NB_QUEUE_NAMES_H
#include <stdbool.h>
#include <stddef.h>

/* Returns NULL when `name` is a valid queue name, otherwise the Azure error
 * code: "OutOfRangeInput" for a length outside 3..63, "InvalidResourceName"
 * for characters (only a-z, 0-9 and single inner '-'). */
const char *nb_queue_name_check(const char *name, size_t len);
/* A metadata name must be a C# identifier: [A-Za-z_][A-Za-z0-9_]*. */
bool nb_queue_metadata_name_ok(const char *name);

#endif
