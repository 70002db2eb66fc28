/* The embedded store backend (store.h over SQLite): owns the database file
 * <dir>/nimbus.db, its connections, the write queue and the checkpointer.
 * Invariants: the write connection is used by one thread at a time, the
 * current leader, and every write runs inside one BEGIN IMMEDIATE per batch
 * (a SAVEPOINT per job when the batch has several); a caller learns its
 * result only after that batch's COMMIT returned; checkpoints run on their
 * own connection and thread, never inside a commit, except the bounded
 * restart when the WAL outgrows WAL_RESTART_PAGES. */
#include "store/sqlite_internal.h"
#include "store/store.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/random.h"
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <semaphore.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define READ_POOL_SIZE 4
#define BUSY_TIMEOUT_MS 5000
/* A leader runs at most this many batches back to back before it hands the
 * write connection to the oldest waiter. Handing over costs a wake-up, and
 * with more threads than cores the heir may wait for a CPU while nobody
 * commits: 1 or 2 measured up to 40% fewer puts/s than 4 at 32 threads on
 * 2 cores. 8 was as fast but had a higher p99, since the leader's own call
 * returns only after all its batches. */
#define LEAD_MAX_BATCHES 4
/* Wake the checkpointer each time this many pages were appended to the WAL
 * since it was last woken (SQLite's own autocheckpoint default). Under
 * synchronous=FULL every commit fsyncs already and each pass's two fsyncs
 * queue with them in the file system's journal, so passes are made ten
 * times larger and rarer there (measured ~25% more puts/s at 32 threads). */
#define CKPT_PAGES 1000
#define CKPT_PAGES_FULL 10000
/* A checkpoint that left pages behind (writes went on meanwhile) is retried
 * after this long even without new writes, so the WAL drains after a burst. */
#define CKPT_RETRY_MS 1000
/* The WAL only starts over from its beginning when a write transaction
 * begins while every page in it has been checkpointed, which under steady
 * writes never happens by itself: the background checkpoint always lags a
 * few commits. Past WAL_RESTART_PAGES the checkpointer runs back to back
 * until its lag is below RESTART_LAG_PAGES or stops shrinking (writes
 * arrive as fast as it copies), and then the leader runs a RESTART
 * checkpoint between two batches, which copies only that lag. Past
 * WAL_HARD_PAGES (the checkpointer cannot keep up) the leader does not wait
 * for that: bounded growth beats flat latency. */
#define WAL_RESTART_PAGES 16384
#define RESTART_LAG_PAGES 256
#define WAL_HARD_PAGES 65536
#define HARD_RESTART_TRIES 1000 /* 1 ms apart */
/* How long the leader's RESTART waits for readers to leave the WAL before
 * it gives up until the next batch (readers here last microseconds). */
#define RESTART_WAIT_MS 20
/* When the WAL starts over, a file larger than this is cut back to it:
 * a little more than WAL_RESTART_PAGES take, so only a burst past that is
 * cut, not every cycle. */
#define WAL_SIZE_LIMIT "100663296"

/* The store has no nb_log of its own (config carries none); backend failures
 * are rare and worth a line on stderr, in the default text format. */
static const struct nb_log store_log = { NB_LOG_TEXT, false };

/* --- schema ------------------------------------------------------------- */

/* One row per schema version; PRAGMA user_version is the number of rows
 * applied. Append new rows, never edit old ones. */
static const struct migration {
    const char *what;
    const char *sql;
} migrations[] = {
    { "queues, messages, kv",
      "CREATE TABLE queues("
      "  id INTEGER PRIMARY KEY,"
      "  account TEXT NOT NULL,"
      "  name TEXT NOT NULL,"
      "  metadata TEXT NOT NULL DEFAULT '',"
      "  acl TEXT NOT NULL DEFAULT '',"
      "  created_ms INTEGER NOT NULL,"
      "  UNIQUE(account, name));"
      /* seq (the rowid) is the insertion order: a new row always gets a
       * rowid above every existing one. */
      "CREATE TABLE messages("
      "  seq INTEGER PRIMARY KEY,"
      "  queue_id INTEGER NOT NULL REFERENCES queues(id) ON DELETE CASCADE,"
      "  msg_id TEXT NOT NULL,"
      "  body BLOB NOT NULL,"
      "  inserted_ms INTEGER NOT NULL,"
      "  expires_ms INTEGER NOT NULL,"
      "  visible_ms INTEGER NOT NULL,"
      "  dequeue_count INTEGER NOT NULL DEFAULT 0,"
      "  pop_receipt TEXT NOT NULL);"
      /* delete/update by id, and the cascade from queues */
      "CREATE UNIQUE INDEX messages_by_id ON messages(queue_id, msg_id);"
      /* get/peek: oldest visible first; the rowid tail orders ties */
      "CREATE INDEX messages_by_visible ON messages(queue_id, visible_ms);"
      /* count (covering) and the expiry sweep, queue by queue */
      "CREATE INDEX messages_by_expiry ON messages(queue_id, expires_ms);"
      "CREATE TABLE kv("
      "  ns TEXT NOT NULL,"
      "  key TEXT NOT NULL,"
      "  value TEXT NOT NULL,"
      "  PRIMARY KEY(ns, key)) WITHOUT ROWID;" },
    { "tables, entities", nb_sq_table_schema },
};
#define N_MIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

/* --- prepared statements ------------------------------------------------ */

enum stmt_id {
    ST_BEGIN,
    ST_BEGIN_IMMEDIATE,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_SAVEPOINT,
    ST_RELEASE,
    ST_ROLLBACK_TO,
    ST_Q_ID,
    ST_Q_GET,
    ST_Q_LIST,
    ST_Q_INSERT,
    ST_Q_DELETE,
    ST_Q_SET_META,
    ST_Q_SET_ACL,
    ST_M_VISIBLE,
    ST_M_COUNT,
    ST_M_INSERT,
    ST_M_CLAIM,
    ST_M_FIND,
    ST_M_DELETE,
    ST_M_UPDATE,
    ST_M_UPDATE_TEXT,
    ST_M_CLEAR,
    ST_M_EXPIRE,
    ST_VACUUM,
    ST_KV_GET,
    ST_KV_SET,
    ST_KV_DEL,
    ST_COUNT
};

/* One row per statement; `read` rows are also prepared on pool connections. */
static const struct stmt_def {
    const char *sql;
    bool read;
} stmt_defs[ST_COUNT] = {
    [ST_BEGIN] = { "BEGIN", true },
    [ST_BEGIN_IMMEDIATE] = { "BEGIN IMMEDIATE", false },
    [ST_COMMIT] = { "COMMIT", true },
    [ST_ROLLBACK] = { "ROLLBACK", true },
    [ST_SAVEPOINT] = { "SAVEPOINT job", false },
    [ST_RELEASE] = { "RELEASE job", false },
    [ST_ROLLBACK_TO] = { "ROLLBACK TO job", false },
    [ST_Q_ID] = { "SELECT id FROM queues WHERE account = ?1 AND name = ?2", true },
    [ST_Q_GET] = { "SELECT id, metadata, acl FROM queues WHERE account = ?1 AND name = ?2",
                   true },
    [ST_Q_LIST] = { "SELECT name, metadata FROM queues WHERE account = ?1 AND name >= ?2"
                    " ORDER BY name",
                    true },
    [ST_Q_INSERT] = { "INSERT INTO queues(account, name, metadata, created_ms)"
                      " VALUES(?1, ?2, ?3, ?4)",
                      false },
    [ST_Q_DELETE] = { "DELETE FROM queues WHERE account = ?1 AND name = ?2", false },
    [ST_Q_SET_META] = { "UPDATE queues SET metadata = ?3 WHERE account = ?1 AND name = ?2",
                        false },
    [ST_Q_SET_ACL] = { "UPDATE queues SET acl = ?3 WHERE account = ?1 AND name = ?2", false },
    /* Addressed by queue name: the queue row is one unique-index probe in
     * the outer loop, saving a separate lookup; when no row comes back,
     * find_queue tells "no queue" from "no message". */
    [ST_M_VISIBLE] = { "SELECT m.seq, m.msg_id, m.body, m.inserted_ms, m.expires_ms,"
                       " m.visible_ms, m.dequeue_count"
                       " FROM queues q JOIN messages m ON m.queue_id = q.id"
                       " WHERE q.account = ?1 AND q.name = ?2"
                       " AND m.visible_ms <= ?3 AND m.expires_ms > ?3"
                       " ORDER BY m.visible_ms, m.seq LIMIT ?4",
                       true },
    [ST_M_COUNT] = { "SELECT count(*) FROM messages WHERE queue_id = ?1 AND expires_ms > ?2",
                     true },
    /* Inserts nothing (changes() == 0) when the queue does not exist. */
    [ST_M_INSERT] = { "INSERT INTO messages(queue_id, msg_id, body, inserted_ms, expires_ms,"
                      " visible_ms, dequeue_count, pop_receipt)"
                      " SELECT id, ?3, ?4, ?5, ?6, ?7, 0, ?8 FROM queues"
                      " WHERE account = ?1 AND name = ?2",
                      false },
    [ST_M_CLAIM] = { "UPDATE messages SET dequeue_count = dequeue_count + 1,"
                     " pop_receipt = ?2, visible_ms = ?3 WHERE seq = ?1",
                     false },
    /* No row: no queue. A row of NULLs: no such message in the queue. */
    [ST_M_FIND] = { "SELECT m.seq, m.pop_receipt, m.inserted_ms, m.expires_ms,"
                    " m.dequeue_count FROM queues q"
                    " LEFT JOIN messages m ON m.queue_id = q.id AND m.msg_id = ?3"
                    " WHERE q.account = ?1 AND q.name = ?2",
                    false },
    [ST_M_DELETE] = { "DELETE FROM messages WHERE seq = ?1", false },
    [ST_M_UPDATE] = { "UPDATE messages SET visible_ms = ?2, pop_receipt = ?3 WHERE seq = ?1",
                      false },
    [ST_M_UPDATE_TEXT] = { "UPDATE messages SET visible_ms = ?2, pop_receipt = ?3, body = ?4"
                           " WHERE seq = ?1",
                           false },
    [ST_M_CLEAR] = { "DELETE FROM messages WHERE queue_id = ?1", false },
    /* Walks messages_by_expiry queue by queue instead of scanning the table. */
    [ST_M_EXPIRE] = { "DELETE FROM messages WHERE queue_id IN (SELECT id FROM queues)"
                      " AND expires_ms <= ?1",
                      false },
    [ST_VACUUM] = { "PRAGMA incremental_vacuum", false },
    [ST_KV_GET] = { "SELECT value FROM kv WHERE ns = ?1 AND key = ?2", true },
    [ST_KV_SET] = { "INSERT INTO kv(ns, key, value) VALUES(?1, ?2, ?3)"
                    " ON CONFLICT(ns, key) DO UPDATE SET value = excluded.value",
                    false },
    [ST_KV_DEL] = { "DELETE FROM kv WHERE ns = ?1 AND key = ?2", false },
};

/* --- backend state ------------------------------------------------------ */

struct conn {
    sqlite3 *db;
    sqlite3_stmt *st[ST_COUNT]; /* NULL where not prepared on this connection */
};

typedef enum nb_err (*job_fn)(struct conn *c, void *args);

/* A caller's request for the write connection; lives on the caller's stack
 * until the caller returns. `next` links the queue and, once taken, the
 * batch. The leader that ran it sets rc (or lead) and then posts sem exactly
 * once; after the post the leader must not touch the job again, because the
 * caller may already have returned. */
struct job {
    job_fn fn;
    void *args;
    enum nb_err rc;
    bool lead; /* posted to lead instead: this job is at the head of the queue */
    sem_t sem;
    struct job *next;
};

struct sq {
    bool in_memory;
    char *path;

    /* The write connection: used only by the caller that holds `leading`. */
    struct conn writer;
    int wal_pages; /* pages in the WAL after the last commit (leader only) */
    int ckpt_mark; /* wal_pages when the checkpointer was last woken (leader only) */
    int ckpt_pages; /* CKPT_PAGES or CKPT_PAGES_FULL */

    pthread_mutex_t qmu; /* guards head, tail, leading and stopping */
    pthread_cond_t idle; /* close waits here for the last batch to finish */
    struct job *head, *tail;
    bool leading; /* a caller is running batches; head != NULL implies leading */
    bool stopping;

    pthread_mutex_t rmu; /* guards the free list of read connections, rstopping */
    pthread_cond_t rcond;
    struct conn readers[READ_POOL_SIZE];
    size_t nreaders; /* 0 in memory: reads go through the write path */
    struct conn *free_readers[READ_POOL_SIZE];
    size_t nfree;
    bool rstopping;

    /* The checkpointer thread and its connection (not in memory). */
    struct conn ckpt;
    pthread_t ckpt_thread;
    bool ckpt_started;
    pthread_mutex_t cmu; /* guards ckpt_wanted and ckpt_stop */
    pthread_cond_t ccond;
    bool ckpt_wanted;
    bool ckpt_stop;
    /* Set by the checkpointer when the WAL is due to start over and its lag
     * is small, after which it stays idle so the leader's RESTART finds the
     * checkpoint lock free; cleared by the leader after its attempt. */
    atomic_bool restart_ready;
};

/* --- small helpers ------------------------------------------------------ */

static enum nb_err fail(struct conn *c, int rc, const char *what)
{
    nb_log_error(&store_log, "store: %s: %s (sqlite %d)", what,
                 c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc), rc);
    return NB_ERR_STORE;
}

/* Release a statement after use: reset it and drop borrowed bindings. */
static void done(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

static void bind_str(sqlite3_stmt *st, int i, const char *s)
{
    sqlite3_bind_text(st, i, s ? s : "", -1, SQLITE_STATIC);
}

/* Step a statement that returns no rows. */
static enum nb_err exec_st(struct conn *c, enum stmt_id id)
{
    sqlite3_stmt *st = c->st[id];
    int rc = sqlite3_step(st);
    enum nb_err err = rc == SQLITE_DONE ? NB_OK : fail(c, rc, stmt_defs[id].sql);
    done(st);
    return err;
}

static enum nb_err exec_sql(struct conn *c, const char *sql)
{
    int rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? NB_OK : fail(c, rc, sql);
}

static char *col_dup(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    int n = sqlite3_column_bytes(st, i);
    return t ? nb_strndup((const char *)t, (size_t)n) : nb_strdup("");
}

/* Copy a text column into a fixed field, truncating (ids and receipts we
 * wrote ourselves always fit). */
static void col_copy(sqlite3_stmt *st, int i, char *dst, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    size_t n = t ? (size_t)sqlite3_column_bytes(st, i) : 0;
    if (n >= cap) n = cap - 1;
    if (n) memcpy(dst, t, n);
    dst[n] = '\0';
}

static nb_time_ms add_ms(nb_time_ms now, int64_t d)
{
    if (d > 0 && now > INT64_MAX - d) return INT64_MAX;
    if (d < 0 && now < INT64_MIN - d) return INT64_MIN;
    return now + d;
}

static nb_time_ms expiry(nb_time_ms now, int64_t ttl_ms)
{
    if (ttl_ms < 0) return NB_TIME_NEVER;
    nb_time_ms t = add_ms(now, ttl_ms);
    return t > NB_TIME_NEVER ? NB_TIME_NEVER : t;
}

/* 8 random bytes in standard base64 ("xxxxxxxxxxx="), written in place:
 * every put, get and update makes one, so no heap round trip. */
static void new_receipt(char out[NB_POP_RECEIPT_LEN])
{
    static const char digits[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    unsigned char b[9] = { 0 }; /* 8 random, 1 zero to round up to 3 groups */
    nb_random_bytes(b, 8);
    for (int g = 0; g < 3; g++) {
        uint32_t v = (uint32_t)b[3 * g] << 16 | (uint32_t)b[3 * g + 1] << 8 | b[3 * g + 2];
        for (int k = 0; k < 4; k++) out[4 * g + k] = digits[(v >> (18 - 6 * k)) & 63];
    }
    out[11] = '=';
    out[12] = '\0';
}

static int64_t limit_of(size_t n)
{
    return n > (size_t)INT64_MAX ? INT64_MAX : (int64_t)n;
}

/* --- running jobs: group commit and the read pool ----------------------- */

/* Run one job of a multi-job batch inside its own savepoint, so a logical
 * failure undoes only its own changes. */
static enum nb_err run_job(struct conn *c, struct job *j)
{
    if (exec_st(c, ST_SAVEPOINT)) return NB_ERR_STORE;
    enum nb_err rc = j->fn(c, j->args);
    if (rc != NB_OK && !sqlite3_get_autocommit(c->db)) exec_st(c, ST_ROLLBACK_TO);
    if (!sqlite3_get_autocommit(c->db) && exec_st(c, ST_RELEASE) && rc == NB_OK)
        rc = NB_ERR_STORE;
    return rc;
}

static void fail_jobs(struct job *from, struct job *to_excl)
{
    for (struct job *k = from; k != to_excl; k = k->next) k->rc = NB_ERR_STORE;
}

/* A batch of one needs no savepoint: the transaction is the job's own, so a
 * failing job rolls it back and a succeeding one commits it. With a single
 * client every batch is this one. */
static void run_single(struct conn *c, struct job *j)
{
    if (exec_st(c, ST_BEGIN_IMMEDIATE)) {
        j->rc = NB_ERR_STORE;
        return;
    }
    j->rc = j->fn(c, j->args);
    if (sqlite3_get_autocommit(c->db)) { /* SQLite abandoned the transaction */
        if (j->rc == NB_OK) j->rc = NB_ERR_STORE;
    } else if (j->rc != NB_OK) {
        exec_st(c, ST_ROLLBACK);
    } else if (exec_st(c, ST_COMMIT)) {
        j->rc = NB_ERR_STORE;
        if (!sqlite3_get_autocommit(c->db)) exec_st(c, ST_ROLLBACK);
    }
}

/* One group commit: every job in `list` shares one transaction. */
static void run_batch(struct conn *c, struct job *list)
{
    if (!list->next) {
        run_single(c, list);
        return;
    }
    struct job *first = list; /* first job of the open transaction */
    bool in_tx = false;
    for (struct job *j = list; j; j = j->next) {
        if (!in_tx) {
            first = j;
            if (exec_st(c, ST_BEGIN_IMMEDIATE)) {
                j->rc = NB_ERR_STORE;
                continue;
            }
            in_tx = true;
        }
        j->rc = run_job(c, j);
        /* Some errors (disk full, I/O) make SQLite roll the whole
         * transaction back: every job in it lost its effect. */
        if (sqlite3_get_autocommit(c->db)) {
            fail_jobs(first, j->next);
            in_tx = false;
        }
    }
    if (in_tx && exec_st(c, ST_COMMIT)) {
        fail_jobs(first, NULL);
        if (!sqlite3_get_autocommit(c->db)) exec_st(c, ST_ROLLBACK);
    }
}

/* Called by SQLite on the write connection after every commit, inside the
 * COMMIT step: note the WAL size and wake the checkpointer every ckpt_pages
 * new pages. Never checkpoints here, so no commit waits for an fsync. */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
    (void)db;
    (void)name;
    struct sq *s = arg;
    s->wal_pages = pages;
    if (pages < s->ckpt_mark) s->ckpt_mark = 0; /* the WAL started over */
    if (pages - s->ckpt_mark >= s->ckpt_pages) {
        s->ckpt_mark = pages;
        pthread_mutex_lock(&s->cmu);
        s->ckpt_wanted = true;
        pthread_cond_signal(&s->ccond);
        pthread_mutex_unlock(&s->cmu);
    }
    return SQLITE_OK;
}

/* Between two batches, with the write connection idle: checkpoint what the
 * background checkpointer has not copied yet and wait for readers to leave
 * the WAL, so the next commit writes from its start (and cuts the file to
 * WAL_SIZE_LIMIT). This is the one checkpoint callers wait for, so it runs
 * only when the WAL is due to start over, and normally only once the
 * checkpointer says its lag is small. It waits at most RESTART_WAIT_MS for
 * readers to leave the WAL; BUSY then just means "again after the next
 * batch". Past WAL_HARD_PAGES it does not take no for an answer: it keeps
 * the checkpointer off the checkpoint lock, interrupts the pass holding it,
 * retries until it has the lock (SQLite never waits for that one: BUSY with
 * log < 0), and waits for readers for the full busy timeout. */
static void maybe_restart_wal(struct sq *s)
{
    if (s->wal_pages < WAL_RESTART_PAGES) return;
    bool hard = s->wal_pages >= WAL_HARD_PAGES;
    if (!hard && !atomic_load(&s->restart_ready)) return;
    if (hard) {
        atomic_store(&s->restart_ready, true);
        sqlite3_interrupt(s->ckpt.db); /* open until close, which waits for us */
    }
    sqlite3 *db = s->writer.db;
    sqlite3_busy_timeout(db, hard ? BUSY_TIMEOUT_MS : RESTART_WAIT_MS);
    int log = 0, copied = 0, rc;
    for (int tries = 0;; tries++) {
        rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_RESTART, &log, &copied);
        if (rc != SQLITE_BUSY || log >= 0 || !hard || tries == HARD_RESTART_TRIES) break;
        sqlite3_sleep(1);
    }
    sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
    if (rc == SQLITE_OK) s->wal_pages = 0;
    else if (rc != SQLITE_BUSY) fail(&s->writer, rc, "wal_checkpoint(RESTART)");
    /* Whatever happened, the checkpointer goes back to work; it says
     * "ready" again after its next pass if the WAL is still due. */
    atomic_store(&s->restart_ready, false);
}

/* Run batches on the write connection while holding `leading`. On entry
 * `self` is queued and not yet run. Returns once the queue is empty (the
 * lead is dropped) or after LEAD_MAX_BATCHES batches (the lead passes to
 * the oldest waiter); in both cases self->rc is final. */
static void lead(struct sq *s, struct job *self)
{
    for (int round = 1;; round++) {
        pthread_mutex_lock(&s->qmu);
        struct job *batch = s->head;
        s->head = s->tail = NULL;
        pthread_mutex_unlock(&s->qmu);

        run_batch(&s->writer, batch);

        /* One post per finished job, reading `next` before the post: after
         * it the job's caller may return and its frame be gone. Posting
         * before looking at the queue again matters under load: the callers
         * woken first come back with their next job meanwhile, and join the
         * next batch instead of finding no leader and committing alone. */
        for (struct job *k = batch, *next; k; k = next) {
            next = k->next;
            if (k != self) sem_post(&k->sem);
        }
        /* After the posts, so only the jobs queued meanwhile (and this
         * caller) wait for a WAL restart, not the batch that just committed. */
        maybe_restart_wal(s);

        struct job *heir = NULL;
        pthread_mutex_lock(&s->qmu);
        bool more = s->head != NULL;
        if (!more) {
            s->leading = false;
            if (s->stopping) pthread_cond_signal(&s->idle);
        } else if (round >= LEAD_MAX_BATCHES) {
            heir = s->head; /* stays queued: its caller takes it with the rest */
        }
        pthread_mutex_unlock(&s->qmu);
        if (heir) {
            heir->lead = true;
            sem_post(&heir->sem);
        }
        if (!more || heir) return;
    }
}

/* Queue a job for the write connection and return its result once the
 * batch holding it has committed. If no batch is running, the caller leads:
 * it runs the queue itself, so an uncontended write involves no other
 * thread at all. */
static enum nb_err run_write(struct sq *s, job_fn fn, void *args)
{
    struct job j = { .fn = fn, .args = args, .rc = NB_ERR_STORE };
    sem_init(&j.sem, 0, 0);
    pthread_mutex_lock(&s->qmu);
    if (s->stopping) {
        pthread_mutex_unlock(&s->qmu);
        sem_destroy(&j.sem);
        return NB_ERR_STOPPED;
    }
    if (s->tail) s->tail->next = &j;
    else s->head = &j;
    s->tail = &j;
    bool leader = !s->leading;
    s->leading = true;
    pthread_mutex_unlock(&s->qmu);

    if (!leader) {
        while (sem_wait(&j.sem) != 0) {} /* only EINTR */
        leader = j.lead;
    }
    if (leader) lead(s, &j);
    sem_destroy(&j.sem);
    return j.rc;
}

/* Run a read-only job on a pool connection, in one read transaction so it
 * sees one snapshot. In memory there is one connection: take the write
 * path, which serializes it with everything else. */
static enum nb_err run_read(struct sq *s, job_fn fn, void *args)
{
    if (s->nreaders == 0) return run_write(s, fn, args);

    pthread_mutex_lock(&s->rmu);
    if (s->rstopping) {
        pthread_mutex_unlock(&s->rmu);
        return NB_ERR_STOPPED;
    }
    while (s->nfree == 0) pthread_cond_wait(&s->rcond, &s->rmu);
    struct conn *c = s->free_readers[--s->nfree];
    pthread_mutex_unlock(&s->rmu);

    enum nb_err rc = exec_st(c, ST_BEGIN);
    if (rc == NB_OK) {
        rc = fn(c, args);
        if (exec_st(c, ST_COMMIT)) {
            if (!sqlite3_get_autocommit(c->db)) exec_st(c, ST_ROLLBACK);
            rc = NB_ERR_STORE;
        }
    }

    pthread_mutex_lock(&s->rmu);
    s->free_readers[s->nfree++] = c;
    /* close waits on the same condition for the pool to fill up */
    if (s->rstopping) pthread_cond_broadcast(&s->rcond);
    else pthread_cond_signal(&s->rcond);
    pthread_mutex_unlock(&s->rmu);
    return rc;
}

/* --- the checkpointer --------------------------------------------------- */

/* Flush the database file. SQLite syncs it only after a checkpoint that
 * copied the whole WAL, which under steady writes never happens in the
 * background: the pages copied would then all wait for the fsync in the
 * leader's maybe_restart_wal, inside everybody's latency. */
static void sync_db(struct conn *c)
{
    sqlite3_file *f = NULL;
    int rc = sqlite3_file_control(c->db, "main", SQLITE_FCNTL_FILE_POINTER, &f);
    if (rc == SQLITE_OK && f && f->pMethods) rc = f->pMethods->xSync(f, SQLITE_SYNC_NORMAL);
    if (rc != SQLITE_OK) fail(c, rc, "sync database");
}

/* Copies WAL pages into the database file on its own connection, woken by
 * wal_hook. PASSIVE never blocks the writer or readers; its fsyncs happen
 * here instead of inside somebody's COMMIT. */
static void *checkpointer_main(void *arg)
{
    struct sq *s = arg;
    bool behind = false; /* the last checkpoint could not copy everything */
    int prev_lag = INT_MAX; /* pages left behind by the last pass */
    pthread_mutex_lock(&s->cmu);
    while (!s->ckpt_stop) {
        bool timed_out = false;
        if (!s->ckpt_wanted) {
            if (!behind) {
                pthread_cond_wait(&s->ccond, &s->cmu);
                continue;
            }
            struct timespec until;
            clock_gettime(CLOCK_MONOTONIC, &until);
            until.tv_sec += CKPT_RETRY_MS / 1000;
            until.tv_nsec += (long)(CKPT_RETRY_MS % 1000) * 1000000L;
            if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
            }
            timed_out = pthread_cond_timedwait(&s->ccond, &s->cmu, &until) == ETIMEDOUT;
            if (!timed_out) continue;
        }
        s->ckpt_wanted = false;
        /* While the leader is due to restart the WAL, keep off the
         * checkpoint lock; but a whole retry period without a commit means
         * no leader is coming, so the WAL is drained here instead. */
        if (atomic_load(&s->restart_ready)) {
            if (!timed_out) continue;
            atomic_store(&s->restart_ready, false);
        }
        pthread_mutex_unlock(&s->cmu);

        int log = 0, copied = 0;
        int rc = sqlite3_wal_checkpoint_v2(s->ckpt.db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log,
                                           &copied);
        /* BUSY: another checkpoint runs; INTERRUPT: the leader needs the lock */
        if (rc != SQLITE_OK && rc != SQLITE_BUSY && rc != SQLITE_INTERRUPT)
            fail(&s->ckpt, rc, "wal_checkpoint(PASSIVE)");
        behind = rc != SQLITE_OK || copied < log;
        if (rc == SQLITE_OK && behind && copied > 0) sync_db(&s->ckpt);
        bool again = false;
        if (rc == SQLITE_OK && log >= WAL_RESTART_PAGES) {
            int lag = log - copied;
            if (lag <= RESTART_LAG_PAGES || lag >= prev_lag) atomic_store(&s->restart_ready, true);
            else again = true; /* catch up, so the leader's share stays small */
            prev_lag = lag;
        } else {
            prev_lag = INT_MAX;
        }

        pthread_mutex_lock(&s->cmu);
        if (again) s->ckpt_wanted = true;
    }
    pthread_mutex_unlock(&s->cmu);
    return NULL;
}

/* --- jobs: queues ------------------------------------------------------- */

static enum nb_err find_queue(struct conn *c, const char *account, const char *queue,
                              int64_t *qid)
{
    sqlite3_stmt *st = c->st[ST_Q_ID];
    bind_str(st, 1, account);
    bind_str(st, 2, queue);
    int rc = sqlite3_step(st);
    enum nb_err err;
    if (rc == SQLITE_ROW) {
        *qid = sqlite3_column_int64(st, 0);
        err = NB_OK;
    } else if (rc == SQLITE_DONE) {
        err = NB_ERR_NO_PARENT;
    } else {
        err = fail(c, rc, "find queue");
    }
    done(st);
    return err;
}

struct queue_args {
    const char *account;
    const char *queue;
    const char *text; /* metadata or acl going in */
    nb_time_ms now;
    bool want_count;
    char *metadata; /* results, handed to the caller on success */
    char *acl;
    int64_t count;
};

static enum nb_err job_queue_create(struct conn *c, void *p)
{
    struct queue_args *a = p;
    const char *meta = a->text ? a->text : "";
    sqlite3_stmt *st = c->st[ST_Q_GET];
    bind_str(st, 1, a->account);
    bind_str(st, 2, a->queue);
    int rc = sqlite3_step(st);
    enum nb_err err = NB_OK;
    if (rc == SQLITE_ROW) {
        const unsigned char *old = sqlite3_column_text(st, 1);
        err = old && strcmp((const char *)old, meta) == 0 ? NB_ERR_EXISTS_SAME : NB_ERR_EXISTS;
    } else if (rc != SQLITE_DONE) {
        err = fail(c, rc, "queue create");
    }
    done(st);
    if (rc != SQLITE_DONE) return err;

    st = c->st[ST_Q_INSERT];
    bind_str(st, 1, a->account);
    bind_str(st, 2, a->queue);
    bind_str(st, 3, meta);
    sqlite3_bind_int64(st, 4, a->now);
    return exec_st(c, ST_Q_INSERT);
}

/* Update or delete one queue row addressed by account and name. */
static enum nb_err queue_row_change(struct conn *c, enum stmt_id id, struct queue_args *a)
{
    sqlite3_stmt *st = c->st[id];
    bind_str(st, 1, a->account);
    bind_str(st, 2, a->queue);
    if (id != ST_Q_DELETE) bind_str(st, 3, a->text);
    enum nb_err rc = exec_st(c, id);
    if (rc == NB_OK && sqlite3_changes(c->db) == 0) rc = NB_ERR_NO_PARENT;
    return rc;
}

static enum nb_err job_queue_delete(struct conn *c, void *p)
{
    return queue_row_change(c, ST_Q_DELETE, p); /* messages go by ON DELETE CASCADE */
}

static enum nb_err job_queue_set_metadata(struct conn *c, void *p)
{
    return queue_row_change(c, ST_Q_SET_META, p);
}

static enum nb_err job_queue_set_acl(struct conn *c, void *p)
{
    return queue_row_change(c, ST_Q_SET_ACL, p);
}

/* Read the queue row; also count unexpired messages if a->want_count. */
static enum nb_err job_queue_get(struct conn *c, void *p)
{
    struct queue_args *a = p;
    sqlite3_stmt *st = c->st[ST_Q_GET];
    bind_str(st, 1, a->account);
    bind_str(st, 2, a->queue);
    int rc = sqlite3_step(st);
    enum nb_err err = NB_OK;
    int64_t qid = 0;
    if (rc == SQLITE_ROW) {
        qid = sqlite3_column_int64(st, 0);
        a->metadata = col_dup(st, 1);
        a->acl = col_dup(st, 2);
    } else {
        err = rc == SQLITE_DONE ? NB_ERR_NO_PARENT : fail(c, rc, "queue get");
    }
    done(st);
    if (err || !a->want_count) return err;

    st = c->st[ST_M_COUNT];
    sqlite3_bind_int64(st, 1, qid);
    sqlite3_bind_int64(st, 2, a->now);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) a->count = sqlite3_column_int64(st, 0);
    else err = fail(c, rc, "queue count");
    done(st);
    return err;
}

struct list_args {
    const char *account;
    const char *prefix;
    const char *marker;
    size_t max;
    bool with_metadata;
    struct nb_queue_list *out;
};

static enum nb_err job_queue_list(struct conn *c, void *p)
{
    struct list_args *a = p;
    const char *prefix = a->prefix ? a->prefix : "";
    const char *marker = a->marker ? a->marker : "";
    size_t plen = strlen(prefix);
    size_t cap = 0;
    struct nb_queue_list *out = a->out;
    sqlite3_stmt *st = c->st[ST_Q_LIST];
    bind_str(st, 1, a->account);
    /* Names are sorted, so the ones with the prefix form one run that
     * starts at the prefix itself: begin there (or at the marker if it is
     * later) and stop at the first name past the run. */
    bind_str(st, 2, strcmp(marker, prefix) > 0 ? marker : prefix);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        size_t len = (size_t)sqlite3_column_bytes(st, 0);
        if (!name || len < plen || memcmp(name, prefix, plen) != 0) break;
        if (out->n == a->max) {
            out->next_marker = nb_strndup(name, len);
            break;
        }
        if (out->n == cap) {
            cap = cap ? cap * 2 : 16;
            out->items = nb_realloc(out->items, cap * sizeof(out->items[0]));
        }
        struct nb_queue_entry *e = &out->items[out->n++];
        e->name = nb_strndup(name, len);
        e->metadata = a->with_metadata ? col_dup(st, 1) : NULL;
    }
    enum nb_err err = rc == SQLITE_ROW || rc == SQLITE_DONE ? NB_OK : fail(c, rc, "queue list");
    done(st);
    return err;
}

/* --- jobs: messages ----------------------------------------------------- */

struct msg_args {
    const char *account;
    const char *queue;
    const char *id;
    const char *pop_receipt;
    const struct nb_msg_put *put;
    const char *text; /* update: NULL keeps the text */
    size_t text_len;
    size_t n;
    int64_t visibility_ms;
    nb_time_ms now;
    struct nb_msg *msg;       /* put, update */
    struct nb_msg_list *list; /* get, peek */
    size_t removed;           /* expire */
};

static enum nb_err job_msg_put(struct conn *c, void *p)
{
    struct msg_args *a = p;
    struct nb_msg *m = a->msg;
    sqlite3_stmt *st = c->st[ST_M_INSERT];
    bind_str(st, 1, a->account);
    bind_str(st, 2, a->queue);
    bind_str(st, 3, m->id);
    sqlite3_bind_blob(st, 4, a->put->text ? a->put->text : "", (int)a->put->text_len,
                      SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, m->insertion_time);
    sqlite3_bind_int64(st, 6, m->expiration_time);
    sqlite3_bind_int64(st, 7, m->time_next_visible);
    bind_str(st, 8, m->pop_receipt);
    enum nb_err rc = exec_st(c, ST_M_INSERT);
    if (rc == NB_OK && sqlite3_changes(c->db) == 0) rc = NB_ERR_NO_PARENT;
    return rc;
}

/* Collect up to a->n visible, unexpired messages into a->list (and their
 * seqs, if asked) before anything changes them: updating rows while a
 * statement walks the index they move in is not well defined. An empty
 * result costs one more lookup, to tell a missing queue (NB_ERR_NO_PARENT)
 * from an empty one. */
static enum nb_err select_visible(struct conn *c, struct msg_args *a, int64_t **seqs)
{
    struct nb_msg_list *out = a->list;
    size_t cap = 0;
    if (a->n == 0) {
        int64_t qid;
        return find_queue(c, a->account, a->queue, &qid);
    }
    sqlite3_stmt *st = c->st[ST_M_VISIBLE];
    bind_str(st, 1, a->account);
    bind_str(st, 2, a->queue);
    sqlite3_bind_int64(st, 3, a->now);
    sqlite3_bind_int64(st, 4, limit_of(a->n));
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (out->n == cap) {
            cap = cap ? cap * 2 : 8;
            out->items = nb_realloc(out->items, cap * sizeof(out->items[0]));
            if (seqs) *seqs = nb_realloc(*seqs, cap * sizeof(int64_t));
        }
        if (seqs) (*seqs)[out->n] = sqlite3_column_int64(st, 0);
        struct nb_msg *m = &out->items[out->n++];
        memset(m, 0, sizeof(*m));
        col_copy(st, 1, m->id, sizeof(m->id));
        const void *body = sqlite3_column_blob(st, 2);
        m->text_len = (size_t)sqlite3_column_bytes(st, 2);
        m->text = nb_malloc(m->text_len + 1);
        if (m->text_len) memcpy(m->text, body, m->text_len);
        m->text[m->text_len] = '\0';
        m->insertion_time = sqlite3_column_int64(st, 3);
        m->expiration_time = sqlite3_column_int64(st, 4);
        m->time_next_visible = sqlite3_column_int64(st, 5);
        m->dequeue_count = sqlite3_column_int64(st, 6);
    }
    enum nb_err err = rc == SQLITE_DONE ? NB_OK : fail(c, rc, "select messages");
    done(st);
    if (err == NB_OK && out->n == 0) {
        int64_t qid;
        err = find_queue(c, a->account, a->queue, &qid);
    }
    return err;
}

static enum nb_err job_msg_get(struct conn *c, void *p)
{
    struct msg_args *a = p;
    int64_t *seqs = NULL;
    enum nb_err rc = select_visible(c, a, &seqs);
    if (rc) goto cleanup;
    nb_time_ms visible = add_ms(a->now, a->visibility_ms);
    for (size_t i = 0; i < a->list->n && rc == NB_OK; i++) {
        struct nb_msg *m = &a->list->items[i];
        new_receipt(m->pop_receipt);
        m->dequeue_count++;
        m->time_next_visible = visible;
        sqlite3_stmt *st = c->st[ST_M_CLAIM];
        sqlite3_bind_int64(st, 1, seqs[i]);
        bind_str(st, 2, m->pop_receipt);
        sqlite3_bind_int64(st, 3, visible);
        rc = exec_st(c, ST_M_CLAIM);
    }
cleanup:
    free(seqs);
    return rc;
}

static enum nb_err job_msg_peek(struct conn *c, void *p)
{
    return select_visible(c, p, NULL); /* pop receipts stay blank */
}

/* Find message a->id and check its receipt. NB_ERR_NO_PARENT when the
 * queue is missing, NB_ERR_NOT_FOUND when the message is missing or
 * expired, NB_ERR_MISMATCH on a stale receipt. Fills a->msg if set. */
static enum nb_err find_msg(struct conn *c, struct msg_args *a, int64_t *seq)
{
    enum nb_err err = NB_OK;
    sqlite3_stmt *st = c->st[ST_M_FIND];
    bind_str(st, 1, a->account);
    bind_str(st, 2, a->queue);
    bind_str(st, 3, a->id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const char *receipt = (const char *)sqlite3_column_text(st, 1);
        if (sqlite3_column_type(st, 0) == SQLITE_NULL) {
            err = NB_ERR_NOT_FOUND;
        } else if (sqlite3_column_int64(st, 3) <= a->now) {
            err = NB_ERR_NOT_FOUND;
        } else if (!a->pop_receipt || !receipt || strcmp(receipt, a->pop_receipt) != 0) {
            err = NB_ERR_MISMATCH;
        } else {
            *seq = sqlite3_column_int64(st, 0);
            if (a->msg) {
                snprintf(a->msg->id, sizeof(a->msg->id), "%s", a->id);
                a->msg->insertion_time = sqlite3_column_int64(st, 2);
                a->msg->expiration_time = sqlite3_column_int64(st, 3);
                a->msg->dequeue_count = sqlite3_column_int64(st, 4);
            }
        }
    } else {
        err = rc == SQLITE_DONE ? NB_ERR_NO_PARENT : fail(c, rc, "find message");
    }
    done(st);
    return err;
}

static enum nb_err job_msg_delete(struct conn *c, void *p)
{
    int64_t seq;
    enum nb_err rc = find_msg(c, p, &seq);
    if (rc) return rc;
    sqlite3_bind_int64(c->st[ST_M_DELETE], 1, seq);
    return exec_st(c, ST_M_DELETE);
}

static enum nb_err job_msg_update(struct conn *c, void *p)
{
    struct msg_args *a = p;
    struct nb_msg *m = a->msg;
    int64_t seq;
    enum nb_err rc = find_msg(c, a, &seq);
    if (rc) return rc;
    new_receipt(m->pop_receipt);
    m->time_next_visible = add_ms(a->now, a->visibility_ms);
    enum stmt_id id = a->text ? ST_M_UPDATE_TEXT : ST_M_UPDATE;
    sqlite3_stmt *st = c->st[id];
    sqlite3_bind_int64(st, 1, seq);
    sqlite3_bind_int64(st, 2, m->time_next_visible);
    bind_str(st, 3, m->pop_receipt);
    if (a->text) sqlite3_bind_blob(st, 4, a->text, (int)a->text_len, SQLITE_STATIC);
    return exec_st(c, id);
}

static enum nb_err job_msg_clear(struct conn *c, void *p)
{
    struct msg_args *a = p;
    int64_t qid;
    enum nb_err rc = find_queue(c, a->account, a->queue, &qid);
    if (rc) return rc;
    sqlite3_bind_int64(c->st[ST_M_CLEAR], 1, qid);
    return exec_st(c, ST_M_CLEAR);
}

static enum nb_err job_msg_expire(struct conn *c, void *p)
{
    struct msg_args *a = p;
    sqlite3_bind_int64(c->st[ST_M_EXPIRE], 1, a->now);
    enum nb_err rc = exec_st(c, ST_M_EXPIRE);
    if (rc) return rc;
    a->removed = (size_t)sqlite3_changes(c->db);
    /* The sweep is the periodic housekeeping moment: hand the pages freed
     * by expired and consumed messages back to the file system. */
    sqlite3_stmt *st = c->st[ST_VACUUM];
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {}
    if (src != SQLITE_DONE) rc = fail(c, src, "incremental_vacuum");
    done(st);
    return rc;
}

/* --- jobs: kv ----------------------------------------------------------- */

struct kv_args {
    const char *ns;
    const char *key;
    const char *value;
    char *result;
};

static enum nb_err job_kv_get(struct conn *c, void *p)
{
    struct kv_args *a = p;
    sqlite3_stmt *st = c->st[ST_KV_GET];
    bind_str(st, 1, a->ns);
    bind_str(st, 2, a->key);
    int rc = sqlite3_step(st);
    enum nb_err err = NB_OK;
    if (rc == SQLITE_ROW) a->result = col_dup(st, 0);
    else err = rc == SQLITE_DONE ? NB_ERR_NOT_FOUND : fail(c, rc, "kv get");
    done(st);
    return err;
}

static enum nb_err job_kv_set(struct conn *c, void *p)
{
    struct kv_args *a = p;
    enum stmt_id id = a->value ? ST_KV_SET : ST_KV_DEL;
    sqlite3_stmt *st = c->st[id];
    bind_str(st, 1, a->ns);
    bind_str(st, 2, a->key);
    if (a->value) bind_str(st, 3, a->value);
    return exec_st(c, id);
}

/* --- vtable slots ------------------------------------------------------- */

static enum nb_err sq_queue_create(void *impl, const char *account, const char *queue,
                                   const char *metadata, nb_time_ms now)
{
    struct queue_args a = { .account = account, .queue = queue, .text = metadata, .now = now };
    return run_write(impl, job_queue_create, &a);
}

static enum nb_err sq_queue_delete(void *impl, const char *account, const char *queue)
{
    struct queue_args a = { .account = account, .queue = queue };
    return run_write(impl, job_queue_delete, &a);
}

static enum nb_err sq_queue_get(void *impl, const char *account, const char *queue,
                                nb_time_ms now, char **metadata, int64_t *approx_count)
{
    struct queue_args a = { .account = account, .queue = queue, .now = now,
                            .want_count = approx_count != NULL };
    enum nb_err rc = run_read(impl, job_queue_get, &a);
    if (rc == NB_OK) {
        if (metadata) *metadata = a.metadata;
        else free(a.metadata);
        if (approx_count) *approx_count = a.count;
    } else {
        free(a.metadata);
    }
    free(a.acl);
    return rc;
}

static enum nb_err sq_queue_set_metadata(void *impl, const char *account, const char *queue,
                                         const char *metadata)
{
    struct queue_args a = { .account = account, .queue = queue, .text = metadata };
    return run_write(impl, job_queue_set_metadata, &a);
}

static enum nb_err sq_queue_get_acl(void *impl, const char *account, const char *queue,
                                    char **acl)
{
    struct queue_args a = { .account = account, .queue = queue };
    enum nb_err rc = run_read(impl, job_queue_get, &a);
    free(a.metadata);
    if (rc == NB_OK) *acl = a.acl;
    else free(a.acl);
    return rc;
}

static enum nb_err sq_queue_set_acl(void *impl, const char *account, const char *queue,
                                    const char *acl)
{
    struct queue_args a = { .account = account, .queue = queue, .text = acl };
    return run_write(impl, job_queue_set_acl, &a);
}

static enum nb_err sq_queue_list(void *impl, const char *account, const char *prefix,
                                 const char *marker, size_t max, bool with_metadata,
                                 struct nb_queue_list *out)
{
    memset(out, 0, sizeof(*out));
    struct list_args a = { account, prefix, marker, max, with_metadata, out };
    enum nb_err rc = run_read(impl, job_queue_list, &a);
    if (rc) nb_queue_list_cleanup(out);
    return rc;
}

static enum nb_err sq_msg_put(void *impl, const char *account, const char *queue,
                              const struct nb_msg_put *in, nb_time_ms now, struct nb_msg *out)
{
    memset(out, 0, sizeof(*out));
    /* Everything but the row itself is decided here, before the job queues. */
    nb_random_uuid(out->id);
    new_receipt(out->pop_receipt);
    out->insertion_time = now;
    out->expiration_time = expiry(now, in->ttl_ms);
    out->time_next_visible = add_ms(now, in->visibility_ms);
    struct msg_args a = { .account = account, .queue = queue, .put = in, .now = now, .msg = out };
    enum nb_err rc = run_write(impl, job_msg_put, &a);
    if (rc) memset(out, 0, sizeof(*out));
    return rc;
}

static enum nb_err sq_msg_get(void *impl, const char *account, const char *queue, size_t n,
                              int64_t visibility_ms, nb_time_ms now, struct nb_msg_list *out)
{
    memset(out, 0, sizeof(*out));
    struct msg_args a = { .account = account, .queue = queue, .n = n,
                          .visibility_ms = visibility_ms, .now = now, .list = out };
    enum nb_err rc = run_write(impl, job_msg_get, &a);
    if (rc) nb_msg_list_cleanup(out);
    return rc;
}

static enum nb_err sq_msg_peek(void *impl, const char *account, const char *queue, size_t n,
                               nb_time_ms now, struct nb_msg_list *out)
{
    memset(out, 0, sizeof(*out));
    struct msg_args a = { .account = account, .queue = queue, .n = n, .now = now, .list = out };
    enum nb_err rc = run_read(impl, job_msg_peek, &a);
    if (rc) nb_msg_list_cleanup(out);
    return rc;
}

static enum nb_err sq_msg_delete(void *impl, const char *account, const char *queue,
                                 const char *id, const char *pop_receipt, nb_time_ms now)
{
    struct msg_args a = { .account = account, .queue = queue, .id = id,
                          .pop_receipt = pop_receipt, .now = now };
    return run_write(impl, job_msg_delete, &a);
}

static enum nb_err sq_msg_update(void *impl, const char *account, const char *queue,
                                 const char *id, const char *pop_receipt, int64_t visibility_ms,
                                 const char *text, size_t text_len, nb_time_ms now,
                                 struct nb_msg *out)
{
    memset(out, 0, sizeof(*out));
    struct msg_args a = { .account = account, .queue = queue, .id = id,
                          .pop_receipt = pop_receipt, .text = text, .text_len = text_len,
                          .visibility_ms = visibility_ms, .now = now, .msg = out };
    enum nb_err rc = run_write(impl, job_msg_update, &a);
    if (rc) memset(out, 0, sizeof(*out));
    return rc;
}

static enum nb_err sq_msg_clear(void *impl, const char *account, const char *queue)
{
    struct msg_args a = { .account = account, .queue = queue };
    return run_write(impl, job_msg_clear, &a);
}

static enum nb_err sq_msg_expire(void *impl, nb_time_ms now, size_t *removed)
{
    struct msg_args a = { .now = now };
    enum nb_err rc = run_write(impl, job_msg_expire, &a);
    if (removed) *removed = rc == NB_OK ? a.removed : 0;
    return rc;
}

static enum nb_err sq_kv_get(void *impl, const char *ns, const char *key, char **value)
{
    struct kv_args a = { .ns = ns, .key = key };
    enum nb_err rc = run_read(impl, job_kv_get, &a);
    if (rc == NB_OK) *value = a.result;
    else free(a.result);
    return rc;
}

static enum nb_err sq_kv_set(void *impl, const char *ns, const char *key, const char *value)
{
    struct kv_args a = { .ns = ns, .key = key, .value = value };
    return run_write(impl, job_kv_set, &a);
}

/* --- open and close ----------------------------------------------------- */

static void conn_close(struct conn *c)
{
    for (int i = 0; i < ST_COUNT; i++) {
        sqlite3_finalize(c->st[i]);
        c->st[i] = NULL;
    }
    sqlite3_close(c->db);
    c->db = NULL;
}

static enum nb_err conn_prepare(struct conn *c, bool reader)
{
    for (int i = 0; i < ST_COUNT; i++) {
        if (reader && !stmt_defs[i].read) continue;
        int rc = sqlite3_prepare_v3(c->db, stmt_defs[i].sql, -1, SQLITE_PREPARE_PERSISTENT,
                                    &c->st[i], NULL);
        if (rc != SQLITE_OK) return fail(c, rc, stmt_defs[i].sql);
    }
    return NB_OK;
}

static enum nb_err conn_open(struct conn *c, const char *path, int flags)
{
    int rc = sqlite3_open_v2(path, &c->db, flags | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) return fail(c, rc, path);
    sqlite3_busy_timeout(c->db, BUSY_TIMEOUT_MS);
    return NB_OK;
}

/* Bring the schema up to the newest version, all steps in one transaction. */
static enum nb_err migrate(struct conn *c)
{
    sqlite3_stmt *st = NULL;
    char *sql = NULL;
    enum nb_err err = exec_sql(c, "BEGIN IMMEDIATE");
    if (err) goto cleanup;
    int rc = sqlite3_prepare_v2(c->db, "PRAGMA user_version", -1, &st, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        err = fail(c, rc, "PRAGMA user_version");
        goto cleanup;
    }
    int version = sqlite3_column_int(st, 0);
    if (version > N_MIGRATIONS) {
        nb_log_error(&store_log, "store: schema version %d is newer than this build (%d)",
                     version, N_MIGRATIONS);
        err = NB_ERR_STORE;
        goto cleanup;
    }
    for (int v = version; v < N_MIGRATIONS; v++) {
        err = exec_sql(c, migrations[v].sql);
        if (err) goto cleanup;
        free(sql);
        sql = nb_asprintf("PRAGMA user_version = %d", v + 1);
        err = exec_sql(c, sql);
        if (err) goto cleanup;
    }
    err = exec_sql(c, "COMMIT");
cleanup:
    sqlite3_finalize(st);
    free(sql);
    if (err && !sqlite3_get_autocommit(c->db)) exec_sql(c, "ROLLBACK");
    return err;
}

static const char *sync_pragma(const struct nb_store_config *cfg)
{
    return cfg->sync == NB_STORE_SYNC_FULL ? "PRAGMA synchronous = FULL"
                                           : "PRAGMA synchronous = NORMAL";
}

static enum nb_err writer_open(struct sq *s, const struct nb_store_config *cfg)
{
    struct conn *c = &s->writer;
    enum nb_err err = conn_open(c, s->in_memory ? ":memory:" : s->path,
                                SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    if (err) return err;
    /* auto_vacuum only takes effect before the first table exists, so it
     * comes before the migrations create any. */
    err = exec_sql(c, "PRAGMA auto_vacuum = INCREMENTAL");
    if (!err && !s->in_memory) {
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(c->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
        if (rc == SQLITE_OK) rc = sqlite3_step(st);
        if (rc != SQLITE_ROW) {
            err = fail(c, rc, "PRAGMA journal_mode");
        } else if (strcmp((const char *)sqlite3_column_text(st, 0), "wal") != 0) {
            nb_log_error(&store_log, "store: %s: WAL mode unavailable", s->path);
            err = NB_ERR_STORE;
        }
        sqlite3_finalize(st);
    }
    if (!err) err = exec_sql(c, sync_pragma(cfg));
    if (!err) err = exec_sql(c, "PRAGMA journal_size_limit = " WAL_SIZE_LIMIT);
    if (!err) err = exec_sql(c, "PRAGMA foreign_keys = ON");
    if (!err) err = migrate(c);
    if (!err) err = conn_prepare(c, false);
    /* Commits never checkpoint: the checkpointer thread does, woken by
     * wal_hook (which replaces SQLite's autocheckpoint hook). */
    if (!err && !s->in_memory) {
        err = exec_sql(c, "PRAGMA wal_autocheckpoint = 0");
        if (!err) sqlite3_wal_hook(c->db, wal_hook, s);
    }
    return err;
}

/* The checkpointer's connection. It must write the database file, and its
 * synchronous setting decides how its checkpoints sync (both levels fsync
 * the WAL before copying and the database after a complete copy). The
 * first query opens the WAL, so later checkpoints find it. */
static enum nb_err ckpt_open(struct sq *s, const struct nb_store_config *cfg)
{
    struct conn *c = &s->ckpt;
    enum nb_err err = conn_open(c, s->path, SQLITE_OPEN_READWRITE);
    if (!err) err = exec_sql(c, sync_pragma(cfg));
    if (!err) err = exec_sql(c, "PRAGMA wal_autocheckpoint = 0");
    if (!err) err = exec_sql(c, "SELECT count(*) FROM sqlite_schema");
    return err;
}

/* mkdir -p */
static enum nb_err make_dir(const char *dir)
{
    char *p = nb_strdup(dir);
    enum nb_err err = NB_OK;
    for (char *q = p + 1;; q++) {
        if (*q != '/' && *q != '\0') continue;
        char saved = *q;
        *q = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST) {
            nb_log_error(&store_log, "store: mkdir %s: %s", p, strerror(errno));
            err = NB_ERR_IO;
            goto cleanup;
        }
        *q = saved;
        if (!saved) break;
    }
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        nb_log_error(&store_log, "store: %s is not a directory", dir);
        err = NB_ERR_IO;
    }
cleanup:
    free(p);
    return err;
}

static void stop_checkpointer(struct sq *s)
{
    if (!s->ckpt_started) return;
    pthread_mutex_lock(&s->cmu);
    s->ckpt_stop = true;
    pthread_cond_signal(&s->ccond);
    pthread_mutex_unlock(&s->cmu);
    pthread_join(s->ckpt_thread, NULL);
    s->ckpt_started = false;
}

static void sq_free(struct sq *s)
{
    stop_checkpointer(s);
    conn_close(&s->ckpt);
    for (size_t i = 0; i < s->nreaders; i++) conn_close(&s->readers[i]);
    conn_close(&s->writer); /* the last connection: checkpoints, removes the WAL */
    pthread_cond_destroy(&s->ccond);
    pthread_mutex_destroy(&s->cmu);
    pthread_cond_destroy(&s->rcond);
    pthread_mutex_destroy(&s->rmu);
    pthread_cond_destroy(&s->idle);
    pthread_mutex_destroy(&s->qmu);
    free(s->path);
    free(s);
}

/* Refuse new calls at once (writes first, so a caller that sees a read
 * refused knows writes are refused too), let the jobs already queued run
 * (their callers lead them), wait for the reads in flight, then stop the
 * checkpointer and close the connections. */
static void sq_close(void *impl)
{
    struct sq *s = impl;
    pthread_mutex_lock(&s->qmu);
    s->stopping = true;
    pthread_mutex_unlock(&s->qmu);
    pthread_mutex_lock(&s->rmu);
    s->rstopping = true;
    pthread_mutex_unlock(&s->rmu);

    pthread_mutex_lock(&s->qmu);
    while (s->leading) pthread_cond_wait(&s->idle, &s->qmu);
    pthread_mutex_unlock(&s->qmu);
    pthread_mutex_lock(&s->rmu);
    while (s->nfree < s->nreaders) pthread_cond_wait(&s->rcond, &s->rmu);
    pthread_mutex_unlock(&s->rmu);
    sq_free(s);
}

/* --- jobs for sqlite_table.c --------------------------------------------- */

struct db_job {
    nb_sq_job fn;
    void *args;
};

static enum nb_err run_db_job(struct conn *c, void *p)
{
    struct db_job *j = p;
    return j->fn(c->db, j->args);
}

enum nb_err nb_sq_run_write(void *impl, nb_sq_job fn, void *args)
{
    struct db_job j = { fn, args };
    return run_write(impl, run_db_job, &j);
}

enum nb_err nb_sq_run_read(void *impl, nb_sq_job fn, void *args)
{
    struct db_job j = { fn, args };
    return run_read(impl, run_db_job, &j);
}

static const struct nb_store_ops ops = {
    .name = "sqlite",
    .close = sq_close,
    .queue_create = sq_queue_create,
    .queue_delete = sq_queue_delete,
    .queue_get = sq_queue_get,
    .queue_set_metadata = sq_queue_set_metadata,
    .queue_get_acl = sq_queue_get_acl,
    .queue_set_acl = sq_queue_set_acl,
    .queue_list = sq_queue_list,
    .msg_put = sq_msg_put,
    .msg_get = sq_msg_get,
    .msg_peek = sq_msg_peek,
    .msg_delete = sq_msg_delete,
    .msg_update = sq_msg_update,
    .msg_clear = sq_msg_clear,
    .msg_expire = sq_msg_expire,
    .kv_get = sq_kv_get,
    .kv_set = sq_kv_set,
    .table_create = nb_sq_table_create,
    .table_delete = nb_sq_table_delete,
    .table_list = nb_sq_table_list,
    .table_get_acl = nb_sq_table_get_acl,
    .table_set_acl = nb_sq_table_set_acl,
    .entity_get = nb_sq_entity_get,
    .entity_write = nb_sq_entity_write,
    .entity_query = nb_sq_entity_query,
};

enum nb_err nb_store_open_sqlite(const struct nb_store_config *cfg, struct nb_store **out)
{
    *out = NULL;
    struct sq *s = nb_calloc(1, sizeof(*s));
    pthread_mutex_init(&s->qmu, NULL);
    pthread_cond_init(&s->idle, NULL);
    pthread_mutex_init(&s->rmu, NULL);
    pthread_cond_init(&s->rcond, NULL);
    pthread_mutex_init(&s->cmu, NULL);
    /* The checkpointer's retry timer must not jump with the wall clock. */
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->ccond, &ca);
    pthread_condattr_destroy(&ca);
    s->in_memory = cfg->in_memory;
    s->ckpt_pages = cfg->sync == NB_STORE_SYNC_FULL ? CKPT_PAGES_FULL : CKPT_PAGES;

    enum nb_err err = NB_OK;
    if (!s->in_memory) {
        if (!cfg->dir || !*cfg->dir) {
            err = NB_ERR_IO;
            goto cleanup;
        }
        err = make_dir(cfg->dir);
        if (err) goto cleanup;
        s->path = nb_asprintf("%s/nimbus.db", cfg->dir);
    }
    err = writer_open(s, cfg);
    if (err) goto cleanup;

    if (!s->in_memory) {
        for (; s->nreaders < READ_POOL_SIZE; s->nreaders++) {
            struct conn *c = &s->readers[s->nreaders];
            err = conn_open(c, s->path, SQLITE_OPEN_READONLY);
            if (!err) err = conn_prepare(c, true);
            if (err) {
                conn_close(c);
                goto cleanup;
            }
            s->free_readers[s->nfree++] = c;
        }
    }

    if (!s->in_memory) {
        err = ckpt_open(s, cfg);
        if (err) goto cleanup;
        if (pthread_create(&s->ckpt_thread, NULL, checkpointer_main, s) != 0) {
            nb_log_error(&store_log, "store: cannot start the checkpointer thread");
            err = NB_ERR_STORE;
            goto cleanup;
        }
        s->ckpt_started = true;
    }

    *out = nb_malloc(sizeof(**out));
    (*out)->ops = &ops;
    (*out)->impl = s;
cleanup:
    if (err) sq_free(s);
    return err;
}
