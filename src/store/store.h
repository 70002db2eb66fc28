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

#endif
