/* The store interface: the only way services persist anything. A backend
 * (SQLite today, PostgreSQL next) implements struct nb_store_ops; services
 * call the nb_store_* wrappers below and never see the backend's types.
 *
 * Contract for every operation:
 *  - it is atomic, and a write is durable (survives kill -9 of the process)
 *    before the call returns NB_OK;
 *  - time is passed in as `now` (ms since the epoch); backends never read a
 *    clock, so tests drive expiry and visibility with a fake one;
 *  - strings coming in are borrowed for the call; strings and lists going out
 *    are heap memory owned by the caller (free with free() or the matching
 *    _cleanup function);
 *  - errors: NB_ERR_NO_PARENT when the queue does not exist, NB_ERR_NOT_FOUND
 *    when the addressed item (message, key) does not exist, NB_ERR_STORE when
 *    the backend failed (the operation then had no effect).
 * Operations may be called from any thread concurrently. */
#ifndef NB_STORE_STORE_H
#define NB_STORE_STORE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"

/* 9999-12-31T23:59:59Z: the expiration time of a message put with ttl -1. */
#define NB_TIME_NEVER ((nb_time_ms)253402300799000LL)
#define NB_POP_RECEIPT_LEN 16 /* base64 of 8 random bytes, plus NUL */

struct nb_queue_entry {
    char *name;
    char *metadata; /* opaque text set by the queue service; NULL if not asked */
};

struct nb_queue_list {
    struct nb_queue_entry *items;
    size_t n;
    char *next_marker; /* NULL when the listing is complete */
};
void nb_queue_list_cleanup(struct nb_queue_list *l);

struct nb_msg {
    char id[37];                            /* GUID */
    char pop_receipt[NB_POP_RECEIPT_LEN];
    nb_time_ms insertion_time;
    nb_time_ms expiration_time;             /* NB_TIME_NEVER for ttl -1 */
    nb_time_ms time_next_visible;
    int64_t dequeue_count;
    char *text;                             /* heap, NUL-terminated; NULL on put results */
    size_t text_len;
};

struct nb_msg_list {
    struct nb_msg *items;
    size_t n;
};
void nb_msg_list_cleanup(struct nb_msg_list *l);

/* What a put stores. ttl_ms < 0 means never expires. */
struct nb_msg_put {
    const char *text;
    size_t text_len;
    int64_t visibility_ms;
    int64_t ttl_ms;
};

enum nb_store_sync {
    NB_STORE_SYNC_NORMAL, /* durable against process death (kill -9) */
    NB_STORE_SYNC_FULL,   /* also against power loss: fsync on every commit */
};

struct nb_store_config {
    const char *dir;   /* data directory, created if missing; ignored in memory */
    bool in_memory;    /* nothing on disk; gone when the process ends */
    enum nb_store_sync sync;
};

/* --- table storage types --------------------------------------------------- */

struct nb_table_list {
    char **names;      /* table names as created (case preserved) */
    size_t n;
    char *next_name;   /* continuation (NextTableName), NULL when done */
};
void nb_table_list_cleanup(struct nb_table_list *l);

/* One stored entity: its keys, its Timestamp (100 ns ticks since the Unix
 * epoch, which is also its ETag) and its custom properties in the table
 * service's own encoding (opaque to the store). */
struct nb_entity_row {
    char *pk, *rk;
    size_t pk_len, rk_len;
    int64_t timestamp;
    char *data;
    size_t data_len;
};

struct nb_entity_rows {
    struct nb_entity_row *items;
    size_t n;
    /* Where the next page starts (the key of the first row not returned),
     * both NULL when the range is exhausted. */
    char *next_pk, *next_rk;
    size_t next_pk_len, next_rk_len;
};
void nb_entity_row_cleanup(struct nb_entity_row *r);
void nb_entity_rows_cleanup(struct nb_entity_rows *l);

enum nb_entity_op_kind {
    NB_ENTITY_INSERT,         /* NB_ERR_EXISTS if present */
    NB_ENTITY_REPLACE,        /* NB_ERR_NOT_FOUND if absent; honours if_match */
    NB_ENTITY_MERGE,          /* as REPLACE, merging properties into the old ones */
    NB_ENTITY_UPSERT_REPLACE, /* insert or replace, no condition */
    NB_ENTITY_UPSERT_MERGE,   /* insert or merge, no condition */
    NB_ENTITY_DELETE,         /* NB_ERR_NOT_FOUND if absent; honours if_match */
};

enum nb_if_match { NB_IF_MATCH_NONE, NB_IF_MATCH_ANY, NB_IF_MATCH_TICKS };

struct nb_entity_op {
    enum nb_entity_op_kind kind;
    const char *pk, *rk;
    size_t pk_len, rk_len;
    const char *data; /* encoded properties; unused for DELETE */
    size_t data_len;
    enum nb_if_match if_match;
    int64_t if_match_ticks;   /* the Timestamp the caller's ETag names */
    int64_t timestamp;        /* out: the entity's new Timestamp (not for DELETE) */
};

/* Merge encoded properties: patch's replace or extend base's; the result is
 * appended to out. Supplied by the table service, called by the store
 * inside the write transaction. */
typedef enum nb_err (*nb_entity_merge_fn)(const char *base, size_t base_len, const char *patch,
                                          size_t patch_len, struct nb_buf *out);

/* A key bound: unset means unbounded. Keys compare as bytes (ordinal). */
struct nb_store_key_bound {
    bool set;
    bool inclusive;
    const char *key;
    size_t len;
};

struct nb_entity_scan {
    struct nb_store_key_bound pk_lo, pk_hi, rk_lo, rk_hi; /* rk bounds only with pk_lo == pk_hi */
    const char *start_pk, *start_rk;   /* continuation: rows >= (start_pk, start_rk); NULL = none */
    size_t start_pk_len, start_rk_len;
    size_t max;                        /* rows to return, 1..1000 */
    size_t max_scan;                   /* rows to examine before returning a partial page (0: no limit) */
    /* Residual predicate: return true to include the row. NULL = all. Runs
     * on the store's thread while it scans: it must be pure and quick. */
    bool (*match)(void *ctx, const struct nb_entity_row *row);
    void *match_ctx;
};

/* The backend vtable. Every slot is required. `impl` is the backend's own
 * state. The semantics of each slot are those of the wrapper of the same
 * name below. */
struct nb_store_ops {
    const char *name;
    void (*close)(void *impl);

    enum nb_err (*queue_create)(void *impl, const char *account, const char *queue,
                                const char *metadata, nb_time_ms now);
    enum nb_err (*queue_delete)(void *impl, const char *account, const char *queue);
    enum nb_err (*queue_get)(void *impl, const char *account, const char *queue,
                             nb_time_ms now, char **metadata, int64_t *approx_count);
    enum nb_err (*queue_set_metadata)(void *impl, const char *account, const char *queue,
                                      const char *metadata);
    enum nb_err (*queue_get_acl)(void *impl, const char *account, const char *queue,
                                 char **acl);
    enum nb_err (*queue_set_acl)(void *impl, const char *account, const char *queue,
                                 const char *acl);
    enum nb_err (*queue_list)(void *impl, const char *account, const char *prefix,
                              const char *marker, size_t max, bool with_metadata,
                              struct nb_queue_list *out);

    enum nb_err (*msg_put)(void *impl, const char *account, const char *queue,
                           const struct nb_msg_put *in, nb_time_ms now, struct nb_msg *out);
    enum nb_err (*msg_get)(void *impl, const char *account, const char *queue, size_t n,
                           int64_t visibility_ms, nb_time_ms now, struct nb_msg_list *out);
    enum nb_err (*msg_peek)(void *impl, const char *account, const char *queue, size_t n,
                            nb_time_ms now, struct nb_msg_list *out);
    enum nb_err (*msg_delete)(void *impl, const char *account, const char *queue,
                              const char *id, const char *pop_receipt, nb_time_ms now);
    enum nb_err (*msg_update)(void *impl, const char *account, const char *queue,
                              const char *id, const char *pop_receipt, int64_t visibility_ms,
                              const char *text, size_t text_len, nb_time_ms now,
                              struct nb_msg *out);
    enum nb_err (*msg_clear)(void *impl, const char *account, const char *queue);
    enum nb_err (*msg_expire)(void *impl, nb_time_ms now, size_t *removed);

    enum nb_err (*kv_get)(void *impl, const char *ns, const char *key, char **value);
    enum nb_err (*kv_set)(void *impl, const char *ns, const char *key, const char *value);

    enum nb_err (*table_create)(void *impl, const char *account, const char *table,
                                nb_time_ms now);
    enum nb_err (*table_delete)(void *impl, const char *account, const char *table);
    enum nb_err (*table_list)(void *impl, const char *account, const char *after, size_t max,
                              bool (*match)(void *ctx, const char *name), void *match_ctx,
                              struct nb_table_list *out);
    enum nb_err (*table_get_acl)(void *impl, const char *account, const char *table,
                                 char **acl);
    enum nb_err (*table_set_acl)(void *impl, const char *account, const char *table,
                                 const char *acl);
    enum nb_err (*entity_get)(void *impl, const char *account, const char *table,
                              const char *pk, size_t pk_len, const char *rk, size_t rk_len,
                              struct nb_entity_row *out);
    enum nb_err (*entity_write)(void *impl, const char *account, const char *table,
                                struct nb_entity_op *ops, size_t n, nb_entity_merge_fn merge,
                                nb_time_ms now, size_t *failed);
    enum nb_err (*entity_query)(void *impl, const char *account, const char *table,
                                const struct nb_entity_scan *scan, struct nb_entity_rows *out);
};

struct nb_store {
    const struct nb_store_ops *ops;
    void *impl;
};

/* Open the embedded (SQLite) store. On success *out is heap memory freed by
 * nb_store_close. Errors: NB_ERR_IO (directory), NB_ERR_STORE (database). */
enum nb_err nb_store_open_sqlite(const struct nb_store_config *cfg, struct nb_store **out);
/* Finish pending writes, close, and free. NULL is a no-op. */
void nb_store_close(struct nb_store *s);

/* --- queues -------------------------------------------------------------- */

/* Create a queue with the given metadata text ("" for none). NB_OK when
 * created; NB_ERR_EXISTS_SAME when it exists with byte-identical metadata;
 * NB_ERR_EXISTS when it exists with different metadata. */
static inline enum nb_err nb_store_queue_create(struct nb_store *s, const char *account,
                                                const char *queue, const char *metadata,
                                                nb_time_ms now)
{
    return s->ops->queue_create(s->impl, account, queue, metadata, now);
}
/* Delete a queue and all its messages. NB_ERR_NO_PARENT if missing. */
static inline enum nb_err nb_store_queue_delete(struct nb_store *s, const char *account,
                                                const char *queue)
{
    return s->ops->queue_delete(s->impl, account, queue);
}
/* Metadata text (caller frees) and the number of unexpired messages, visible
 * or not. Either out-pointer may be NULL. NB_ERR_NO_PARENT if missing. */
static inline enum nb_err nb_store_queue_get(struct nb_store *s, const char *account,
                                             const char *queue, nb_time_ms now,
                                             char **metadata, int64_t *approx_count)
{
    return s->ops->queue_get(s->impl, account, queue, now, metadata, approx_count);
}
/* Replace the metadata text. NB_ERR_NO_PARENT if missing. */
static inline enum nb_err nb_store_queue_set_metadata(struct nb_store *s, const char *account,
                                                      const char *queue, const char *metadata)
{
    return s->ops->queue_set_metadata(s->impl, account, queue, metadata);
}
/* ACL text ("" when never set; caller frees). NB_ERR_NO_PARENT if missing. */
static inline enum nb_err nb_store_queue_get_acl(struct nb_store *s, const char *account,
                                                 const char *queue, char **acl)
{
    return s->ops->queue_get_acl(s->impl, account, queue, acl);
}
static inline enum nb_err nb_store_queue_set_acl(struct nb_store *s, const char *account,
                                                 const char *queue, const char *acl)
{
    return s->ops->queue_set_acl(s->impl, account, queue, acl);
}
/* Up to `max` queues of the account whose name starts with `prefix` (NULL or
 * "" for all) and is >= `marker` (NULL or "" to start), in byte order of
 * name. next_marker is the first name not returned, NULL when none is left. */
static inline enum nb_err nb_store_queue_list(struct nb_store *s, const char *account,
                                              const char *prefix, const char *marker,
                                              size_t max, bool with_metadata,
                                              struct nb_queue_list *out)
{
    return s->ops->queue_list(s->impl, account, prefix, marker, max, with_metadata, out);
}

/* --- messages ------------------------------------------------------------ */

/* Append a message; out gets its id, pop receipt and times (text NULL).
 * Visible from now + visibility_ms; expires at now + ttl_ms, or never when
 * ttl_ms < 0. NB_ERR_NO_PARENT if the queue is missing. */
static inline enum nb_err nb_store_msg_put(struct nb_store *s, const char *account,
                                           const char *queue, const struct nb_msg_put *in,
                                           nb_time_ms now, struct nb_msg *out)
{
    return s->ops->msg_put(s->impl, account, queue, in, now, out);
}
/* Claim up to n visible, unexpired messages, oldest visible first: each gets
 * dequeue_count + 1, a new pop receipt, and becomes invisible until
 * now + visibility_ms. An empty list is NB_OK. */
static inline enum nb_err nb_store_msg_get(struct nb_store *s, const char *account,
                                           const char *queue, size_t n, int64_t visibility_ms,
                                           nb_time_ms now, struct nb_msg_list *out)
{
    return s->ops->msg_get(s->impl, account, queue, n, visibility_ms, now, out);
}
/* Up to n visible, unexpired messages, unchanged (pop receipts are blank). */
static inline enum nb_err nb_store_msg_peek(struct nb_store *s, const char *account,
                                            const char *queue, size_t n, nb_time_ms now,
                                            struct nb_msg_list *out)
{
    return s->ops->msg_peek(s->impl, account, queue, n, now, out);
}
/* Delete message `id` if pop_receipt is its current receipt. NB_ERR_NOT_FOUND
 * when the id is unknown or expired; NB_ERR_MISMATCH on a stale receipt. */
static inline enum nb_err nb_store_msg_delete(struct nb_store *s, const char *account,
                                              const char *queue, const char *id,
                                              const char *pop_receipt, nb_time_ms now)
{
    return s->ops->msg_delete(s->impl, account, queue, id, pop_receipt, now);
}
/* Make message `id` visible at now + visibility_ms with a new pop receipt,
 * replacing its text unless text is NULL. Errors as nb_store_msg_delete. out
 * gets the new receipt and time_next_visible. */
static inline enum nb_err nb_store_msg_update(struct nb_store *s, const char *account,
                                              const char *queue, const char *id,
                                              const char *pop_receipt, int64_t visibility_ms,
                                              const char *text, size_t text_len,
                                              nb_time_ms now, struct nb_msg *out)
{
    return s->ops->msg_update(s->impl, account, queue, id, pop_receipt, visibility_ms, text,
                              text_len, now, out);
}
/* Delete every message of the queue. */
static inline enum nb_err nb_store_msg_clear(struct nb_store *s, const char *account,
                                             const char *queue)
{
    return s->ops->msg_clear(s->impl, account, queue);
}
/* Remove every message expired at `now`, in all queues, reclaiming space. */
static inline enum nb_err nb_store_msg_expire(struct nb_store *s, nb_time_ms now,
                                              size_t *removed)
{
    return s->ops->msg_expire(s->impl, now, removed);
}

/* --- small named values (service properties, keys, schedules) ------------ */

/* *value is heap text; NB_ERR_NOT_FOUND when unset. */
static inline enum nb_err nb_store_kv_get(struct nb_store *s, const char *ns, const char *key,
                                          char **value)
{
    return s->ops->kv_get(s->impl, ns, key, value);
}
/* Set, or delete when value is NULL. */
static inline enum nb_err nb_store_kv_set(struct nb_store *s, const char *ns, const char *key,
                                          const char *value)
{
    return s->ops->kv_set(s->impl, ns, key, value);
}

/* --- tables (names compare case-insensitively, keep the case given) ------- */

/* NB_OK when created; NB_ERR_EXISTS when a table of that name (in any case)
 * exists. */
static inline enum nb_err nb_store_table_create(struct nb_store *s, const char *account,
                                                const char *table, nb_time_ms now)
{
    return s->ops->table_create(s->impl, account, table, now);
}
/* Delete a table and its entities. NB_ERR_NO_PARENT if missing. */
static inline enum nb_err nb_store_table_delete(struct nb_store *s, const char *account,
                                                const char *table)
{
    return s->ops->table_delete(s->impl, account, table);
}
/* Up to `max` tables, in order of lowercased name, starting at the first
 * whose lowercased name is >= lowercase(after) (after NULL: from the start),
 * keeping those for which match(ctx, name) is true (match NULL: all).
 * next_name is the first name not returned, NULL when none is left. */
static inline enum nb_err nb_store_table_list(struct nb_store *s, const char *account,
                                              const char *after, size_t max,
                                              bool (*match)(void *ctx, const char *name),
                                              void *match_ctx, struct nb_table_list *out)
{
    return s->ops->table_list(s->impl, account, after, max, match, match_ctx, out);
}
/* ACL text ("" when never set; caller frees). NB_ERR_NO_PARENT if missing. */
static inline enum nb_err nb_store_table_get_acl(struct nb_store *s, const char *account,
                                                 const char *table, char **acl)
{
    return s->ops->table_get_acl(s->impl, account, table, acl);
}
static inline enum nb_err nb_store_table_set_acl(struct nb_store *s, const char *account,
                                                 const char *table, const char *acl)
{
    return s->ops->table_set_acl(s->impl, account, table, acl);
}

/* --- entities ------------------------------------------------------------ */

/* One entity by keys. NB_ERR_NO_PARENT (table), NB_ERR_NOT_FOUND (entity).
 * out is freed with nb_entity_row_cleanup. */
static inline enum nb_err nb_store_entity_get(struct nb_store *s, const char *account,
                                              const char *table, const char *pk, size_t pk_len,
                                              const char *rk, size_t rk_len,
                                              struct nb_entity_row *out)
{
    return s->ops->entity_get(s->impl, account, table, pk, pk_len, rk, rk_len, out);
}
/* Apply ops[0..n) atomically: all take effect or none. Each op that writes
 * gets a Timestamp of max(now, previous + 100 ns), in ticks. On failure
 * *failed is the index of the failing op and the error is its own:
 * NB_ERR_EXISTS (insert), NB_ERR_NOT_FOUND, NB_ERR_MISMATCH (if_match), or
 * NB_ERR_NO_PARENT (table missing, *failed 0). A single write is n == 1. */
static inline enum nb_err nb_store_entity_write(struct nb_store *s, const char *account,
                                                const char *table, struct nb_entity_op *ops,
                                                size_t n, nb_entity_merge_fn merge,
                                                nb_time_ms now, size_t *failed)
{
    return s->ops->entity_write(s->impl, account, table, ops, n, merge, now, failed);
}
/* Rows of the key range in (PartitionKey, RowKey) byte order, starting at
 * the continuation, that pass scan->match, up to scan->max. NB_ERR_NO_PARENT
 * if the table is missing. */
static inline enum nb_err nb_store_entity_query(struct nb_store *s, const char *account,
                                                const char *table,
                                                const struct nb_entity_scan *scan,
                                                struct nb_entity_rows *out)
{
    return s->ops->entity_query(s->impl, account, table, scan, out);
}

#endif
