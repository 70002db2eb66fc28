/* What the SQLite backend's files share: the job runners of sqlite.c (group
 * commit for writes, the read pool for reads) and the table-storage half in
 * sqlite_table.c. Only src/store/ includes this. */
#ifndef NB_STORE_SQLITE_INTERNAL_H
#define NB_STORE_SQLITE_INTERNAL_H
#include <sqlite3.h>
#include "store/store.h"

/* A unit of work on one connection. For writes it runs inside the batch's
 * transaction (in its own savepoint when the batch has company): returning
 * an error undoes everything it did and nothing else. */
typedef enum nb_err (*nb_sq_job)(sqlite3 *db, void *args);

/* Run fn as a write (durable when NB_OK is returned) or as a read on one
 * snapshot. `impl` is the backend state given to the ops. */
enum nb_err nb_sq_run_write(void *impl, nb_sq_job fn, void *args);
enum nb_err nb_sq_run_read(void *impl, nb_sq_job fn, void *args);

/* sqlite_table.c: the schema step for table storage, and the ops. */
extern const char nb_sq_table_schema[];
enum nb_err nb_sq_table_create(void *impl, const char *account, const char *table,
                               nb_time_ms now);
enum nb_err nb_sq_table_delete(void *impl, const char *account, const char *table);
enum nb_err nb_sq_table_list(void *impl, const char *account, const char *after, size_t max,
                             bool (*match)(void *ctx, const char *name), void *match_ctx,
                             struct nb_table_list *out);
enum nb_err nb_sq_table_get_acl(void *impl, const char *account, const char *table, char **acl);
enum nb_err nb_sq_table_set_acl(void *impl, const char *account, const char *table,
                                const char *acl);
enum nb_err nb_sq_entity_get(void *impl, const char *account, const char *table, const char *pk,
                             size_t pk_len, const char *rk, size_t rk_len,
                             struct nb_entity_row *out);
enum nb_err nb_sq_entity_write(void *impl, const char *account, const char *table,
                               struct nb_entity_op *ops, size_t n, nb_entity_merge_fn merge,
                               nb_time_ms now, size_t *failed);
enum nb_err nb_sq_entity_query(void *impl, const char *account, const char *table,
                               const struct nb_entity_scan *scan, struct nb_entity_rows *out);

#endif
