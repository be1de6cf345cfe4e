/* The read-model store: opens and migrates the SQLite file, and runs a
 * decoded batch in one transaction (processed_events, projections, dead
 * letters, partition offsets). Decoding is store_batch.c's, one message
 * store_apply.c's, the runs store_runs.c's, when to apply the projector's. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "orderflow/error.h"
#include "orderflow/event.h"
#include "orderflow/log.h"
#include "orderflow/store.h"
#include "orderflow/timestamp.h"

#include "schema.h"
#include "store_int.h"

/* How long a reader waits (ms) for a writer's lock, e.g. a WAL checkpoint
 * in progress or a rebuild swapping the file in. */
#define READ_BUSY_TIMEOUT_MS 5000

static const char *const store_sql[ST_COUNT] = {
        [ST_BEGIN] = "BEGIN IMMEDIATE",
        [ST_COMMIT] = "COMMIT",
        [ST_ROLLBACK] = "ROLLBACK",
        [ST_GEN_GET] = "SELECT generation FROM store_info",
        [ST_INFO_ADD] =
                "UPDATE store_info SET applied = applied + ?1,"
                " ignored = ignored + ?2, duplicates = duplicates + ?3,"
                " dead_letters = dead_letters + ?4, batches = batches + 1,"
                " last_batch_at = ?5",
        [ST_OFFSET_GET] = "SELECT next_offset FROM partition_offsets"
                          " WHERE topic = ?1 AND partition = ?2",
        [ST_OFFSET_PUT] =
                "INSERT INTO partition_offsets (topic, partition,"
                " next_offset) VALUES (?1, ?2, ?3)"
                " ON CONFLICT (topic, partition) DO UPDATE"
                " SET next_offset = max(next_offset, excluded.next_offset)",
};

static uint64_t mono_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- the file and its migrations ---- */

/* Files from before the runs: their processed_events table becomes
 * processed_recent, sealed by the first batch when large. */
static int migrate_before(sqlite3 *db, char **msg)
{
        int has, rc = sqldb_has_table(&has, db, "processed_events");

        if (rc != SQLITE_OK || !has)
                return rc;
        return sqlite3_exec(db,
                            "ALTER TABLE processed_events RENAME TO"
                            " processed_recent",
                            NULL, NULL, msg);
}

/* Run sql, which may use ?1 for now_ms; an SQLite result code. */
static int exec_at(sqlite3 *db, const char *sql, int64_t now_ms)
{
        sqlite3_stmt *stmt = NULL;
        int rc = sqlite3_prepare_v2(db, sql, -1, &stmt, NULL);

        if (rc == SQLITE_OK) {
                if (sqlite3_bind_parameter_count(stmt))
                        sqlite3_bind_int64(stmt, 1, now_ms);
                rc = sqlite3_step(stmt);
        }
        sqlite3_finalize(stmt);
        return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

/* Files from before dedupe retention: processed_runs.sealed_at. */
static int migrate_after(sqlite3 *db, char **msg)
{
        int64_t now_ms = of_timestamp_now_ms();
        int has, rc;

        (void)msg;
        rc = sqldb_has_column(&has, db, "processed_runs", "sealed_at");
        if (rc != SQLITE_OK || has)
                return rc;
        /* Runs sealed before retention existed get this moment: later
         * than their real one, so they are kept longer, never shorter.
         * processed_recent's rows likewise. */
        if ((rc = exec_at(db,
                          "ALTER TABLE processed_runs ADD COLUMN sealed_at"
                          " INTEGER",
                          now_ms)) == SQLITE_OK &&
            (rc = exec_at(db, "UPDATE processed_runs SET sealed_at = ?1",
                          now_ms)) == SQLITE_OK)
                rc = exec_at(db,
                             "UPDATE processed_recent_since SET since_ms ="
                             " ?1 WHERE since_ms IS NULL AND EXISTS (SELECT"
                             " 1 FROM processed_recent)",
                             now_ms);
        return rc;
}

/* Tables of ours that readmodel.sql does not make: the sealed runs, and
 * processed_events as a table in files from before them. */
static const char *const older_tables[] = {"processed_run_[0-9]*",
                                           "processed_events", NULL};

const sqldb_kind store_kind = {
        .name = "a read model",
        .schema = of_schema_readmodel,
        .older = older_tables,
        .other_table = "outbox_messages",
        .other_name = "an application database",
        /* WAL lets readers query while we write; NORMAL sync may lose the
         * last batches on power loss, which Kafka then delivers again.
         * Measured (docs/performance.md): checkpoints every 50,000 pages
         * instead of 1,000 write a page dirtied by many batches once.
         * The page cache: 8 MiB. The store alone (bench_store, 1M v4
         * ids, 3 runs each, alternated) applied as fast with 8, 10, 12
         * and 16 MiB (64 MiB was no faster either), its peak RSS 36, 38,
         * 41 and 45 MiB: the projector's peak RSS must stay at most
         * 96 MiB with librdkafka's buffers beside it. The projector
         * itself, 1M v7 ids, 3 runs each, alternated: 16 MiB no faster
         * than 8, 8 MiB more RSS (docs/performance.md, Memory). */
        .pragmas = "PRAGMA journal_mode = WAL;"
                   "PRAGMA synchronous = NORMAL;"
                   "PRAGMA wal_autocheckpoint = 50000;"
                   "PRAGMA journal_size_limit = 67108864;"
                   "PRAGMA cache_size = -8192;",
        .before = migrate_before,
        .after = migrate_after,
};

int store_open_ro(sqlite3 **db, const char *path, char *errstr,
                  size_t errstr_size)
{
        struct stat sb;

        *db = NULL;
        /* SQLITE_OPEN_READONLY never creates the file, but it would report
         * only "unable to open database file": say what is wrong. */
        if (stat(path, &sb) != 0) {
                if (errno != ENOENT)
                        return of_errf(errstr, errstr_size, "%s: %s", path,
                                       strerror(errno));
                of_errf(errstr, errstr_size, "no read model at %s", path);
                return OF_ENOTFOUND;
        }
        if (S_ISDIR(sb.st_mode))
                return of_errf(errstr, errstr_size,
                               "%s: a directory, not a read model", path);
        /* SQLite would say only "unable to open database file". */
        if (access(path, R_OK) != 0)
                return of_errf(errstr, errstr_size, "%s: %s", path,
                               strerror(errno));
        return sqldb_open(db, path, SQLITE_OPEN_READONLY, &store_kind,
                          READ_BUSY_TIMEOUT_MS, errstr, errstr_size);
}

/* ---- open and close ---- */

static int check_version(of_store *st, char *errstr, size_t errstr_size)
{
        sqlite3_stmt *stmt = NULL;
        int rc, err = 0;

        rc = sqlite3_prepare_v2(st->db,
                                "SELECT max(schema_version) FROM schema_info",
                                -1, &stmt, NULL);
        if (rc == SQLITE_OK)
                rc = sqlite3_step(stmt);
        if (rc != SQLITE_ROW)
                err = sqldb_fail(st->db, rc, "reading schema_info", errstr,
                                 errstr_size);
        else if (sqlite3_column_int64(stmt, 0) > OF_SCHEMA_VERSION)
                err = of_errf(errstr, errstr_size,
                              "schema version %lld is newer than this "
                              "orderflow understands (%d)",
                              (long long)sqlite3_column_int64(stmt, 0),
                              OF_SCHEMA_VERSION);
        sqlite3_finalize(stmt);
        return err;
}

/* The file's generation (store_info): 0, or an OF_E* code. Run inside a
 * transaction, it tells whether a rebuild swapped the file in since. */
static int read_generation(of_store *st, int64_t *out, char *errstr,
                           size_t errstr_size)
{
        sqlite3_stmt *stmt = st->stmt[ST_GEN_GET];
        int rc = sqlite3_step(stmt), err = 0;

        if (rc == SQLITE_ROW)
                *out = sqlite3_column_int64(stmt, 0);
        else
                err = sqldb_fail(st->db, rc, "reading store_info", errstr,
                                 errstr_size);
        sqlite3_reset(stmt);
        return err;
}

int of_store_open(of_store **out, const char *path, char *errstr,
                  size_t errstr_size)
{
        of_store *st;

        *out = NULL;
        st = calloc(1, sizeof(*st));
        if (!st)
                return of_errf(errstr, errstr_size, "out of memory");
        /* Each of_store is used by one thread at a time (see store.h), so
         * SQLite's per-call mutexes are pure cost. */
        if (sqldb_open(&st->db, path,
                       SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                               SQLITE_OPEN_NOMUTEX,
                       &store_kind, 5000, errstr, errstr_size))
                goto fail;
        /* Readers who may not write the folder read only while the -wal
         * and -shm exist: keep them when we close. */
        sqldb_persist_wal(st->db);
        if (sqldb_setup(st->db, path, &store_kind, errstr, errstr_size) ||
            check_version(st, errstr, errstr_size) ||
            sqldb_prepare_all(st->db, st->stmt, store_sql, ST_COUNT, errstr,
                              errstr_size) ||
            store_apply_open(st, errstr, errstr_size) ||
            read_generation(st, &st->generation, errstr, errstr_size) ||
            store_runs_open(st, errstr, errstr_size))
                goto fail;
        if (!(st->path = strdup(path))) {
                of_errf(errstr, errstr_size, "out of memory");
                goto fail;
        }
        st->busy_ms = 1000;
        sqldb_busy_timeout(st->db, st->busy_ms);
        *out = st;
        return 0;
fail:
        of_store_close(st);
        return OF_ERROR;
}

void of_store_set_busy_timeout(of_store *st, int ms)
{
        st->busy_ms = ms;
        sqldb_busy_timeout(st->db, ms);
}

/* After a rebuild swapped another model into the file: a new connection
 * in place of st's, with nothing cached from the old model (runs, filters,
 * counts), and the same settings. */
static int reopen(of_store *st, char *errstr, size_t errstr_size)
{
        of_store *fresh, old;

        if (of_store_open(&fresh, st->path, errstr, errstr_size))
                return OF_ERROR;
        of_store_set_seal_events(fresh, st->seal_events);
        of_store_set_busy_timeout(fresh, st->busy_ms);
        old = *st;
        *st = *fresh;
        *fresh = old;
        st->own = fresh->own; /* a batch is no connection's */
        fresh->own = NULL;
        of_store_close(fresh);
        return 0;
}

void of_store_close(of_store *st)
{
        if (!st)
                return;
        store_runs_close(st);
        store_apply_close(st);
        sqldb_finalize_all(st->stmt, ST_COUNT);
        sqlite3_close(st->db);
        of_store_batch_free(st->own);
        free(st->path);
        free(st);
}

int of_store_offset(int64_t *out, of_store *st, const char *topic,
                    int32_t partition, char *errstr, size_t errstr_size)
{
        sqlite3_stmt *stmt = st->stmt[ST_OFFSET_GET];
        int rc, err = 0;

        sqlite3_bind_text(stmt, 1, topic, -1, SQLITE_STATIC);
        sqlite3_bind_int(stmt, 2, partition);
        rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW)
                *out = sqlite3_column_int64(stmt, 0);
        else if (rc == SQLITE_DONE)
                err = OF_ENOTFOUND;
        else
                err = sqldb_fail(st->db, rc, "reading partition_offsets",
                                 errstr, errstr_size);
        sqlite3_reset(stmt);
        return err;
}

/* The file now holds another generation: reopen on it and say so
 * (OF_ESTALE), or OF_ERROR when it cannot be opened. */
static int follow_replacement(of_store *st, const char *what, char *errstr,
                              size_t errstr_size)
{
        if (reopen(st, errstr, errstr_size))
                return OF_ERROR;
        of_errf(errstr, errstr_size,
                "the read model was replaced (generation %" PRId64 ")%s",
                st->generation, what);
        return OF_ESTALE;
}

int of_store_check_replaced(of_store *st, char *errstr, size_t errstr_size)
{
        int64_t generation = 0;
        int err = read_generation(st, &generation, errstr, errstr_size);

        if (err || generation == st->generation)
                return err;
        return follow_replacement(st, "", errstr, errstr_size);
}

/* ---- the batch transaction ---- */

static int write_offsets(of_store *st, const of_store_pos *pos, size_t npos,
                         char *errstr, size_t errstr_size)
{
        sqlite3_stmt *stmt = st->stmt[ST_OFFSET_PUT];
        size_t i;
        int err;

        for (i = 0; i < npos; i++) {
                sqlite3_bind_text(stmt, 1, pos[i].topic, -1, SQLITE_STATIC);
                sqlite3_bind_int(stmt, 2, pos[i].partition);
                sqlite3_bind_int64(stmt, 3, pos[i].next_offset);
                if ((err = sqldb_step(st->db, stmt, errstr, errstr_size)))
                        return err;
        }
        return 0;
}

/* The batch's counters and time into store_info (orderflow status). */
static int write_info(of_store *st, char *errstr, size_t errstr_size)
{
        sqlite3_stmt *stmt = st->stmt[ST_INFO_ADD];
        char now[OF_TS_LEN + 1];

        of_timestamp_from_ms(now, of_timestamp_now_ms());
        sqlite3_bind_int64(stmt, 1, (int64_t)st->pending.applied);
        sqlite3_bind_int64(stmt, 2, (int64_t)st->pending.ignored);
        sqlite3_bind_int64(stmt, 3, (int64_t)st->pending.duplicates);
        sqlite3_bind_int64(stmt, 4, (int64_t)st->pending.dead);
        sqlite3_bind_text(stmt, 5, now, -1, SQLITE_TRANSIENT);
        return sqldb_step(st->db, stmt, errstr, errstr_size);
}

/* Everything of one batch but the COMMIT. Keyed: the messages are applied
 * in b's key order (by aggregateId), so order_list is visited in its own
 * order, page after page, instead of all over; the result is the log
 * order's as long as store_apply_msg() finds so for every event, else
 * OUT_OF_ORDER. */
static int apply_txn(of_store *st, const of_store_batch *b,
                     const of_store_pos *pos, size_t npos, int keyed,
                     char *errstr, size_t errstr_size)
{
        size_t i;
        int64_t generation = 0;
        int err;

        if ((err = sqldb_step(st->db, st->stmt[ST_BEGIN], errstr,
                              errstr_size)) ||
            (err = read_generation(st, &generation, errstr, errstr_size)))
                return err;
        if (generation != st->generation)
                return OF_ESTALE;
        if ((err = store_runs_refresh(st, errstr, errstr_size)) ||
            (err = store_apply_begin(st, keyed, errstr, errstr_size)))
                return err;
        for (i = 0; i < b->n; i++)
                if ((err = store_apply_msg(st, b, keyed ? b->order[i] : i,
                                           errstr, errstr_size)))
                        return err;
        if ((err = store_apply_end(st, errstr, errstr_size)) ||
            (err = write_offsets(st, pos, npos, errstr, errstr_size)) ||
            (err = write_info(st, errstr, errstr_size)))
                return err;
        return 0;
}

static void add_stats(of_store_stats *stats, const of_store_stats *p)
{
        int i;

        stats->applied += p->applied;
        stats->ignored += p->ignored;
        stats->duplicates += p->duplicates;
        stats->dead += p->dead;
        for (i = 0; i < OF_REASON_COUNT; i++)
                stats->dead_by_reason[i] += p->dead_by_reason[i];
        stats->batches++;
}

int of_store_apply_decoded(of_store *st, const of_store_batch *b,
                           const of_store_pos *pos, size_t npos,
                           of_store_stats *stats, char *errstr,
                           size_t errstr_size)
{
        uint64_t t0 = mono_ns(), t_commit;
        int err;

        if ((err = store_runs_seal_for(st, b->n, errstr, errstr_size))) {
                /* The model is right without the seal: it is tried again
                 * before the next batch. */
                of_log(OF_LOG_WARN, "sealing processed_events: %s", errstr);
        }
        err = apply_txn(st, b, pos, npos, store_apply_keyed(st, b), errstr,
                        errstr_size);
        if (err == OUT_OF_ORDER) {
                sqldb_rollback(st->db, st->stmt[ST_ROLLBACK]);
                stats->in_log_order++;
                err = apply_txn(st, b, pos, npos, 0, errstr, errstr_size);
        }
        if (err == OF_ESTALE) {
                sqldb_rollback(st->db, st->stmt[ST_ROLLBACK]);
                return follow_replacement(st, "; its batch was not applied",
                                          errstr, errstr_size);
        }
        if (err)
                goto out;
        t_commit = mono_ns();
        if ((err = sqldb_step(st->db, st->stmt[ST_COMMIT], errstr,
                              errstr_size)))
                goto out;
        stats->commit_ns += mono_ns() - t_commit;
        stats->apply_ns += mono_ns() - t0;
        add_stats(stats, &st->pending);
        store_runs_committed(st, st->recorded);
        store_apply_committed(st);
        return 0;
out:
        sqldb_rollback(st->db, st->stmt[ST_ROLLBACK]);
        return err;
}

int of_store_apply_batch(of_store *st, const of_msg *msgs, size_t n,
                         const of_store_pos *pos, size_t npos,
                         of_store_stats *stats, char *errstr,
                         size_t errstr_size)
{
        int err;

        if (!st->own &&
            (err = of_store_batch_new(&st->own, errstr, errstr_size)))
                return err;
        if ((err = of_store_batch_decode(st->own, msgs, n, errstr,
                                         errstr_size)))
                return err;
        return of_store_apply_decoded(st, st->own, pos, npos, stats, errstr,
                                      errstr_size);
}
