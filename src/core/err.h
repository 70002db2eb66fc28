/* One error type for all of Nimbus. Every fallible function returns enum
 * nb_err; NB_OK is zero and every failure is negative, so `if (rc)` tests
 * for failure. Services map these codes to their own wire errors in one place. */
#ifndef NB_CORE_ERR_H
#define NB_CORE_ERR_H

enum nb_err {
    NB_OK = 0,
    NB_ERR_NOMEM = -1,
    NB_ERR_INVALID = -2,     /* malformed input */
    NB_ERR_NOT_FOUND = -3,   /* the named thing does not exist */
    NB_ERR_EXISTS = -4,      /* already exists, and differs */
    NB_ERR_EXISTS_SAME = -5, /* already exists, identical */
    NB_ERR_MISMATCH = -6,    /* precondition (pop receipt, etag) failed */
    NB_ERR_TOO_LARGE = -7,   /* a documented limit was exceeded */
    NB_ERR_STORE = -8,       /* the store failed (I/O, corruption) */
    NB_ERR_IO = -9,          /* socket / file I/O */
    NB_ERR_AUTH = -10,       /* authentication failed */
    NB_ERR_RANGE = -11,      /* value out of range */
    NB_ERR_STOPPED = -12,    /* the component is shutting down */
    NB_ERR_NO_PARENT = -13,  /* the containing queue/table does not exist */
};

/* Static, never NULL. */
const char *nb_err_str(enum nb_err err);

#endif
