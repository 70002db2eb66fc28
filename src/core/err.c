/* Names for enum nb_err, for logs and CLI messages. */
#include "core/err.h"

const char *nb_err_str(enum nb_err err)
{
    switch (err) {
    case NB_OK: return "ok";
    case NB_ERR_NOMEM: return "out of memory";
    case NB_ERR_INVALID: return "invalid input";
    case NB_ERR_NOT_FOUND: return "not found";
    case NB_ERR_EXISTS: return "already exists";
    case NB_ERR_EXISTS_SAME: return "already exists (identical)";
    case NB_ERR_MISMATCH: return "precondition failed";
    case NB_ERR_TOO_LARGE: return "too large";
    case NB_ERR_STORE: return "store failure";
    case NB_ERR_IO: return "i/o error";
    case NB_ERR_AUTH: return "authentication failed";
    case NB_ERR_RANGE: return "out of range";
    case NB_ERR_STOPPED: return "stopped";
    case NB_ERR_NO_PARENT: return "container not found";
    }
    return "unknown error";
}
