/* Table storage on SQLite: tables and entities. Entities live in a
 * WITHOUT ROWID table clustered on (table_id, pk, rk), keys as BLOBs, so a
 * key-range query is one ordered index range scan with memcmp order (the
 * order the $filter evaluator and continuation tokens assume). Property
 * data is opaque here; merges call back into the table service. Every
 * function runs as a job of sqlite.c's runners (writes group-committed). */
#include "core/log.h"
#include "core/mem.h"
#include "store/sqlite_internal.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define TICKS_PER_MS 10000LL

const char nb_sq_table_schema[] =
    "CREATE TABLE tables("
    "  id INTEGER PRIMARY KEY,"
    "  account TEXT NOT NULL,"
    "  name TEXT NOT NULL,"   /* as created */
    "  lname TEXT NOT NULL,"  /* lowercased: names are case-insensitive */
    "  acl TEXT NOT NULL DEFAULT '',"
    "  created_ms INTEGER NOT NULL,"
    "  UNIQUE(account, lname));"
    "CREATE TABLE entities("
    "  table_id INTEGER NOT NULL REFERENCES tables(id) ON DELETE CASCADE,"
    "  pk BLOB NOT NULL,"
    "  rk BLOB NOT NULL,"
    "  ts INTEGER NOT NULL,"
    "  data BLOB NOT NULL,"
    "  PRIMARY KEY(table_id, pk, rk)) WITHOUT ROWID;";

static const struct nb_log store_log = { NB_LOG_TEXT, false };

static enum nb_err sql_fail(sqlite3 *db, const char *what)
{
    nb_log_error(&store_log, "store: %s: %s", what, sqlite3_errmsg(db));
    return NB_ERR_STORE;
}

/* Prepared per call: these statements are cheap to compile next to the
 * work around them; SQLITE_PREPARE_PERSISTENT would only help with a cache. */
static sqlite3_stmt *prep(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        sql_fail(db, sql);
        return NULL;
    }
    return st;
}

static char *lower_dup(const char *s)
{
    char *l = nb_strdup(s);
    for (char *p = l; *p; p++)
        if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
    return l;
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
    sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

static void bind_blob(sqlite3_stmt *st, int i, const char *p, size_t n)
{
    /* A zero-length key is a valid key: bind an empty blob, not NULL. */
    sqlite3_bind_blob64(st, i, n ? p : "", n, SQLITE_STATIC);
}

static char *col_blob(sqlite3_stmt *st, int i, size_t *len)
{
    const void *p = sqlite3_column_blob(st, i);
    size_t n = (size_t)sqlite3_column_bytes(st, i);
    char *out = nb_malloc(n + 1);
    if (n) memcpy(out, p, n);
    out[n] = '\0';
    *len = n;
    return out;
}

/* The id of a table, or NB_ERR_NO_PARENT. */
static enum nb_err table_id(sqlite3 *db, const char *account, const char *lname, int64_t *id)
{
    sqlite3_stmt *st = prep(db, "SELECT id FROM tables WHERE account = ?1 AND lname = ?2");
    if (!st) return NB_ERR_STORE;
    bind_text(st, 1, account);
    bind_text(st, 2, lname);
    int rc = sqlite3_step(st);
    enum nb_err err = NB_OK;
    if (rc == SQLITE_ROW) *id = sqlite3_column_int64(st, 0);
    else if (rc == SQLITE_DONE) err = NB_ERR_NO_PARENT;
    else err = sql_fail(db, "table lookup");
    sqlite3_finalize(st);
    return err;
}

/* --- tables ----------------------------------------------------------------- */

struct table_args {
    const char *account, *name;
    char *lname;
    nb_time_ms now;
    const char *acl_in;
    char *acl_out;
    /* list */
    const char *after;
    size_t max;
    bool (*match)(void *ctx, const char *name);
    void *match_ctx;
    struct nb_table_list *list;
};

static enum nb_err job_table_create(sqlite3 *db, void *p)
{
    struct table_args *a = p;
    sqlite3_stmt *st = prep(db, "INSERT INTO tables(account, name, lname, created_ms)"
                                " VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING");
    if (!st) return NB_ERR_STORE;
    bind_text(st, 1, a->account);
    bind_text(st, 2, a->name);
    bind_text(st, 3, a->lname);
    sqlite3_bind_int64(st, 4, a->now);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return sql_fail(db, "table create");
    return sqlite3_changes(db) ? NB_OK : NB_ERR_EXISTS;
}

static enum nb_err job_table_delete(sqlite3 *db, void *p)
{
    struct table_args *a = p;
    int64_t id;
    enum nb_err err = table_id(db, a->account, a->lname, &id);
    if (err) return err;
    /* Entities first, by key prefix, rather than through the cascade's
     * per-row foreign-key work. */
    sqlite3_stmt *st = prep(db, "DELETE FROM entities WHERE table_id = ?1");
    if (!st) return NB_ERR_STORE;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return sql_fail(db, "table delete");
    st = prep(db, "DELETE FROM tables WHERE id = ?1");
    if (!st) return NB_ERR_STORE;
    sqlite3_bind_int64(st, 1, id);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? NB_OK : sql_fail(db, "table delete");
}

static enum nb_err job_table_list(sqlite3 *db, void *p)
{
    struct table_args *a = p;
    sqlite3_stmt *st = prep(db, "SELECT name FROM tables WHERE account = ?1 AND lname >= ?2"
                                " ORDER BY lname");
    if (!st) return NB_ERR_STORE;
    bind_text(st, 1, a->account);
    bind_text(st, 2, a->lname ? a->lname : "");
    struct nb_table_list *l = a->list;
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        if (!name || (a->match && !a->match(a->match_ctx, name))) continue;
        if (l->n == a->max) {
            l->next_name = nb_strdup(name);
            break;
        }
        if (l->n == cap) {
            cap = cap ? cap * 2 : 16;
            l->names = nb_realloc(l->names, cap * sizeof(*l->names));
        }
        l->names[l->n++] = nb_strdup(name);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return sql_fail(db, "table list");
    return NB_OK;
}

static enum nb_err job_table_get_acl(sqlite3 *db, void *p)
{
    struct table_args *a = p;
    sqlite3_stmt *st = prep(db, "SELECT acl FROM tables WHERE account = ?1 AND lname = ?2");
    if (!st) return NB_ERR_STORE;
    bind_text(st, 1, a->account);
    bind_text(st, 2, a->lname);
    int rc = sqlite3_step(st);
    enum nb_err err = NB_OK;
    if (rc == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(st, 0);
        a->acl_out = nb_strdup(t ? t : "");
    } else {
        err = rc == SQLITE_DONE ? NB_ERR_NO_PARENT : sql_fail(db, "table acl");
    }
    sqlite3_finalize(st);
    return err;
}

static enum nb_err job_table_set_acl(sqlite3 *db, void *p)
{
    struct table_args *a = p;
    sqlite3_stmt *st = prep(db, "UPDATE tables SET acl = ?3 WHERE account = ?1 AND lname = ?2");
    if (!st) return NB_ERR_STORE;
    bind_text(st, 1, a->account);
    bind_text(st, 2, a->lname);
    bind_text(st, 3, a->acl_in);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return sql_fail(db, "table acl");
    return sqlite3_changes(db) ? NB_OK : NB_ERR_NO_PARENT;
}

enum nb_err nb_sq_table_create(void *impl, const char *account, const char *table,
                               nb_time_ms now)
{
    struct table_args a = { .account = account, .name = table, .lname = lower_dup(table),
                            .now = now };
    enum nb_err err = nb_sq_run_write(impl, job_table_create, &a);
    free(a.lname);
    return err;
}

enum nb_err nb_sq_table_delete(void *impl, const char *account, const char *table)
{
    struct table_args a = { .account = account, .lname = lower_dup(table) };
    enum nb_err err = nb_sq_run_write(impl, job_table_delete, &a);
    free(a.lname);
    return err;
}

enum nb_err nb_sq_table_list(void *impl, const char *account, const char *after, size_t max,
                             bool (*match)(void *ctx, const char *name), void *match_ctx,
                             struct nb_table_list *out)
{
    memset(out, 0, sizeof(*out));
    struct table_args a = { .account = account, .lname = after ? lower_dup(after) : NULL,
                            .max = max, .match = match, .match_ctx = match_ctx, .list = out };
    enum nb_err err = nb_sq_run_read(impl, job_table_list, &a);
    free(a.lname);
    if (err) nb_table_list_cleanup(out);
    return err;
}

enum nb_err nb_sq_table_get_acl(void *impl, const char *account, const char *table, char **acl)
{
    struct table_args a = { .account = account, .lname = lower_dup(table) };
    enum nb_err err = nb_sq_run_read(impl, job_table_get_acl, &a);
    free(a.lname);
    *acl = a.acl_out;
    return err;
}

enum nb_err nb_sq_table_set_acl(void *impl, const char *account, const char *table,
                                const char *acl)
{
    struct table_args a = { .account = account, .lname = lower_dup(table), .acl_in = acl };
    enum nb_err err = nb_sq_run_write(impl, job_table_set_acl, &a);
    free(a.lname);
    return err;
}

/* --- entities ---------------------------------------------------------------- */

struct entity_args {
    const char *account;
    char *lname;
    /* get */
    const char *pk, *rk;
    size_t pk_len, rk_len;
    struct nb_entity_row *row;
    /* write */
    struct nb_entity_op *ops;
    size_t n;
    nb_entity_merge_fn merge;
    nb_time_ms now;
    size_t failed;
    /* query */
    const struct nb_entity_scan *scan;
    struct nb_entity_rows *rows;
};

static enum nb_err job_entity_get(sqlite3 *db, void *p)
{
    struct entity_args *a = p;
    int64_t id;
    enum nb_err err = table_id(db, a->account, a->lname, &id);
    if (err) return err;
    sqlite3_stmt *st = prep(db, "SELECT ts, data FROM entities"
                                " WHERE table_id = ?1 AND pk = ?2 AND rk = ?3");
    if (!st) return NB_ERR_STORE;
    sqlite3_bind_int64(st, 1, id);
    bind_blob(st, 2, a->pk, a->pk_len);
    bind_blob(st, 3, a->rk, a->rk_len);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        struct nb_entity_row *r = a->row;
        r->pk = nb_strndup(a->pk, a->pk_len);
        r->pk_len = a->pk_len;
        r->rk = nb_strndup(a->rk, a->rk_len);
        r->rk_len = a->rk_len;
        r->timestamp = sqlite3_column_int64(st, 0);
        r->data = col_blob(st, 1, &r->data_len);
    } else {
        err = rc == SQLITE_DONE ? NB_ERR_NOT_FOUND : sql_fail(db, "entity get");
    }
    sqlite3_finalize(st);
    return err;
}

/* Apply one op; the statements are shared by the whole batch. */
static enum nb_err apply_op(sqlite3 *db, sqlite3_stmt *sel, sqlite3_stmt *put,
                            sqlite3_stmt *del, int64_t id, struct nb_entity_op *op,
                            nb_entity_merge_fn merge, nb_time_ms now)
{
    sqlite3_reset(sel);
    sqlite3_bind_int64(sel, 1, id);
    bind_blob(sel, 2, op->pk, op->pk_len);
    bind_blob(sel, 3, op->rk, op->rk_len);
    int rc = sqlite3_step(sel);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return sql_fail(db, "entity read");
    bool exists = rc == SQLITE_ROW;
    int64_t old_ts = exists ? sqlite3_column_int64(sel, 0) : 0;

    switch (op->kind) {
    case NB_ENTITY_INSERT:
        if (exists) return NB_ERR_EXISTS;
        break;
    case NB_ENTITY_REPLACE:
    case NB_ENTITY_MERGE:
    case NB_ENTITY_DELETE:
        if (!exists) return NB_ERR_NOT_FOUND;
        if (op->if_match == NB_IF_MATCH_TICKS && op->if_match_ticks != old_ts)
            return NB_ERR_MISMATCH;
        break;
    case NB_ENTITY_UPSERT_REPLACE:
    case NB_ENTITY_UPSERT_MERGE: break;
    }

    if (op->kind == NB_ENTITY_DELETE) {
        sqlite3_reset(del);
        sqlite3_bind_int64(del, 1, id);
        bind_blob(del, 2, op->pk, op->pk_len);
        bind_blob(del, 3, op->rk, op->rk_len);
        return sqlite3_step(del) == SQLITE_DONE ? NB_OK : sql_fail(db, "entity delete");
    }

    const char *data = op->data;
    size_t data_len = op->data_len;
    struct nb_buf merged;
    nb_buf_init(&merged, 16u * 1024 * 1024);
    bool is_merge = op->kind == NB_ENTITY_MERGE || op->kind == NB_ENTITY_UPSERT_MERGE;
    if (exists && is_merge) {
        enum nb_err err = merge(sqlite3_column_blob(sel, 1), (size_t)sqlite3_column_bytes(sel, 1),
                                op->data, op->data_len, &merged);
        if (err) {
            nb_buf_cleanup(&merged);
            return err;
        }
        data = merged.data ? merged.data : "";
        data_len = merged.len;
    }
    /* Timestamps (and so ETags) strictly increase per entity. */
    int64_t ts = now * TICKS_PER_MS;
    if (exists && ts <= old_ts) ts = old_ts + 1;
    sqlite3_reset(put);
    sqlite3_bind_int64(put, 1, id);
    bind_blob(put, 2, op->pk, op->pk_len);
    bind_blob(put, 3, op->rk, op->rk_len);
    sqlite3_bind_int64(put, 4, ts);
    bind_blob(put, 5, data, data_len);
    rc = sqlite3_step(put);
    nb_buf_cleanup(&merged);
    if (rc != SQLITE_DONE) return sql_fail(db, "entity write");
    op->timestamp = ts;
    return NB_OK;
}

static enum nb_err job_entity_write(sqlite3 *db, void *p)
{
    struct entity_args *a = p;
    int64_t id;
    a->failed = 0;
    enum nb_err err = table_id(db, a->account, a->lname, &id);
    if (err) return err;
    /* Only what the batch needs is prepared: an insert-only batch never
     * compiles the DELETE. */
    bool any_delete = false, any_write = false;
    for (size_t i = 0; i < a->n; i++) {
        if (a->ops[i].kind == NB_ENTITY_DELETE) any_delete = true;
        else any_write = true;
    }
    sqlite3_stmt *sel = prep(db, "SELECT ts, data FROM entities"
                                 " WHERE table_id = ?1 AND pk = ?2 AND rk = ?3");
    sqlite3_stmt *put = any_write ? prep(db, "INSERT OR REPLACE INTO entities"
                                             "(table_id, pk, rk, ts, data)"
                                             " VALUES (?1, ?2, ?3, ?4, ?5)")
                                  : NULL;
    sqlite3_stmt *del = any_delete ? prep(db, "DELETE FROM entities WHERE table_id = ?1"
                                              " AND pk = ?2 AND rk = ?3")
                                   : NULL;
    if (!sel || (any_write && !put) || (any_delete && !del)) {
        err = NB_ERR_STORE;
        goto cleanup;
    }
    for (size_t i = 0; i < a->n; i++) {
        err = apply_op(db, sel, put, del, id, &a->ops[i], a->merge, a->now);
        if (err) {
            a->failed = i;
            break;
        }
    }
cleanup:
    sqlite3_finalize(sel);
    sqlite3_finalize(put);
    sqlite3_finalize(del);
    return err;
}

/* WHERE clauses for a scan, in a fixed parameter layout:
 * ?1 table, ?2/?3 pk lo/hi, ?4/?5 rk lo/hi, ?6/?7 continuation. */
static void scan_sql(const struct nb_entity_scan *s, char *sql, size_t len)
{
    size_t n = (size_t)snprintf(sql, len, "SELECT pk, rk, ts, data FROM entities"
                                          " WHERE table_id = ?1");
    if (s->pk_lo.set) n += (size_t)snprintf(sql + n, len - n, " AND pk %s ?2",
                                            s->pk_lo.inclusive ? ">=" : ">");
    if (s->pk_hi.set) n += (size_t)snprintf(sql + n, len - n, " AND pk %s ?3",
                                            s->pk_hi.inclusive ? "<=" : "<");
    if (s->rk_lo.set) n += (size_t)snprintf(sql + n, len - n, " AND rk %s ?4",
                                            s->rk_lo.inclusive ? ">=" : ">");
    if (s->rk_hi.set) n += (size_t)snprintf(sql + n, len - n, " AND rk %s ?5",
                                            s->rk_hi.inclusive ? "<=" : "<");
    if (s->start_pk) n += (size_t)snprintf(sql + n, len - n, " AND (pk, rk) >= (?6, ?7)");
    snprintf(sql + n, len - n, " ORDER BY pk, rk");
}

static enum nb_err job_entity_query(sqlite3 *db, void *p)
{
    struct entity_args *a = p;
    const struct nb_entity_scan *s = a->scan;
    int64_t id;
    enum nb_err err = table_id(db, a->account, a->lname, &id);
    if (err) return err;
    char sql[512];
    scan_sql(s, sql, sizeof(sql));
    sqlite3_stmt *st = prep(db, sql);
    if (!st) return NB_ERR_STORE;
    sqlite3_bind_int64(st, 1, id);
    if (s->pk_lo.set) bind_blob(st, 2, s->pk_lo.key, s->pk_lo.len);
    if (s->pk_hi.set) bind_blob(st, 3, s->pk_hi.key, s->pk_hi.len);
    if (s->rk_lo.set) bind_blob(st, 4, s->rk_lo.key, s->rk_lo.len);
    if (s->rk_hi.set) bind_blob(st, 5, s->rk_hi.key, s->rk_hi.len);
    if (s->start_pk) {
        bind_blob(st, 6, s->start_pk, s->start_pk_len);
        bind_blob(st, 7, s->start_rk ? s->start_rk : "", s->start_rk ? s->start_rk_len : 0);
    }
    struct nb_entity_rows *out = a->rows;
    size_t cap = 0, scanned = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct nb_entity_row row = {
            .pk = (char *)sqlite3_column_blob(st, 0),
            .pk_len = (size_t)sqlite3_column_bytes(st, 0),
            .rk = (char *)sqlite3_column_blob(st, 1),
            .rk_len = (size_t)sqlite3_column_bytes(st, 1),
            .timestamp = sqlite3_column_int64(st, 2),
            .data = (char *)sqlite3_column_blob(st, 3),
            .data_len = (size_t)sqlite3_column_bytes(st, 3),
        };
        /* A full page, or a long run of non-matching rows: this row is where
         * the next page starts. */
        if (out->n == s->max || (s->max_scan && scanned == s->max_scan)) {
            out->next_pk = col_blob(st, 0, &out->next_pk_len);
            out->next_rk = col_blob(st, 1, &out->next_rk_len);
            break;
        }
        scanned++;
        /* The match callback wants NUL-terminated keys. */
        char *pk = nb_strndup(row.pk ? row.pk : "", row.pk_len);
        char *rk = nb_strndup(row.rk ? row.rk : "", row.rk_len);
        row.pk = pk;
        row.rk = rk;
        if (s->match && !s->match(s->match_ctx, &row)) {
            free(pk);
            free(rk);
            continue;
        }
        if (out->n == cap) {
            cap = cap ? cap * 2 : 32;
            out->items = nb_realloc(out->items, cap * sizeof(*out->items));
        }
        struct nb_entity_row *r = &out->items[out->n++];
        r->pk = pk;
        r->pk_len = row.pk_len;
        r->rk = rk;
        r->rk_len = row.rk_len;
        r->timestamp = row.timestamp;
        r->data = col_blob(st, 3, &r->data_len);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return sql_fail(db, "entity query");
    return NB_OK;
}

enum nb_err nb_sq_entity_get(void *impl, const char *account, const char *table, const char *pk,
                             size_t pk_len, const char *rk, size_t rk_len,
                             struct nb_entity_row *out)
{
    memset(out, 0, sizeof(*out));
    struct entity_args a = { .account = account, .lname = lower_dup(table), .pk = pk,
                             .pk_len = pk_len, .rk = rk, .rk_len = rk_len, .row = out };
    enum nb_err err = nb_sq_run_read(impl, job_entity_get, &a);
    free(a.lname);
    if (err) nb_entity_row_cleanup(out);
    return err;
}

enum nb_err nb_sq_entity_write(void *impl, const char *account, const char *table,
                               struct nb_entity_op *ops, size_t n, nb_entity_merge_fn merge,
                               nb_time_ms now, size_t *failed)
{
    struct entity_args a = { .account = account, .lname = lower_dup(table), .ops = ops,
                             .n = n, .merge = merge, .now = now };
    enum nb_err err = nb_sq_run_write(impl, job_entity_write, &a);
    free(a.lname);
    if (failed) *failed = a.failed;
    return err;
}

enum nb_err nb_sq_entity_query(void *impl, const char *account, const char *table,
                               const struct nb_entity_scan *scan, struct nb_entity_rows *out)
{
    memset(out, 0, sizeof(*out));
    struct entity_args a = { .account = account, .lname = lower_dup(table), .scan = scan,
                             .rows = out };
    enum nb_err err = nb_sq_run_read(impl, job_entity_query, &a);
    free(a.lname);
    if (err) nb_entity_rows_cleanup(out);
    return err;
}
