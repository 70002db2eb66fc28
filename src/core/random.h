/* Randomness from OpenSSL's CSPRNG: ids, pop receipts, keys. */
#ifndef NB_CORE_RANDOM_H
#define NB_CORE_RANDOM_H
#include <stddef.h>

/* Fill buf with n random bytes; aborts if the CSPRNG fails (it never
 * should once seeded, and going on with weak randomness is worse). */
void nb_random_bytes(void *buf, size_t n);
/* A version-4 UUID, lowercase, "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx". */
void nb_random_uuid(char out[37]);

#endif
