/* Queue and metadata name rules (see names.h). */
#include "queue/names.h"

static bool lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

const char *nb_queue_name_check(const char *name, size_t len)
{
    /* Characters are checked first: Azure reports a bad character even in a
     * name that is also too short. */
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (lower_alnum(c)) continue;
        if (c == '-' && i > 0 && i + 1 < len && name[i - 1] != '-') continue;
        return "InvalidResourceName";
    }
    if (len < 3 || len > 63) return "OutOfRangeInput";
    return NULL;
}

bool nb_queue_metadata_name_ok(const char *name)
{
    if (!name[0]) return false;
    for (size_t i = 0; name[i]; i++) {
        char c = name[i];
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
        if (alpha || (i > 0 && c >= '0' && c <= '9')) continue;
        return false;
    }
    return true;
}
