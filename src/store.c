/* The read-model store: opens and migrates the SQLite file, and applies a
 * batch of messages in one transaction (processed_events, projections, dead
 * letters, partition offsets). One message is store_apply.c's; the sealed
 * runs of processed_events are store_runs.c's; decoding is event.c's;
 * reading the relations for people is store_query.c's; when to apply a
 * batch is the projector's. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "orderflow/error.h"
#include "orderflow/event.h"
#include "orderflow/log.h"
#include "orderflow/store.h"
#include "orderflow/timestamp.h"

#include "store_int.h"

#include "readmodel_sql.h"

/* Tables of ours that readmodel.sql does not make: the sealed runs, and
 * processed_events as a table in files from before them. */
static const char *const older_tables[] = {"processed_run_[0-9]*",
                                           "processed_events", NULL};

const dbfile_kind store_kind = {"a read model", readmodel_sql, older_tables,
                                "outbox_messages", "an application database"};

uint64_t store_mono_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}


static const char sql_begin[] = "BEGIN IMMEDIATE";
static const char sql_commit[] = "COMMIT";
static const char sql_rollback[] = "ROLLBACK";
static const char sql_totals_get[] =
        "SELECT orders_placed, orders_paid, placed_amount, paid_amount"
        " FROM order_totals";
static const char sql_totals_add[] =
        "UPDATE order_totals SET orders_placed = orders_placed + ?1,"
        " orders_paid = orders_paid + ?2,"
        " placed_amount = placed_amount + ?3, paid_amount = paid_amount + ?4";
static const char sql_day_add[] =
        "INSERT INTO daily_totals (day, orders_placed, orders_paid,"
        " placed_amount, paid_amount) VALUES (?1, ?2, ?3, ?4, ?5)"
        " ON CONFLICT (day) DO UPDATE SET"
        " orders_placed = orders_placed + excluded.orders_placed,"
        " orders_paid = orders_paid + excluded.orders_paid,"
        " placed_amount = placed_amount + excluded.placed_amount,"
        " paid_amount = paid_amount + excluded.paid_amount";
static const char sql_event_get[] =
        "SELECT event_type, aggregate_id, occurred_at, amount"
        " FROM processed_recent WHERE event_id = ?1";
/* Records a new id; a known one changes nothing (sqlite3_changes() == 0),
 * so one statement both probes and inserts. */
static const char sql_event_put[] =
        "INSERT INTO processed_recent (event_id, event_type, aggregate_id,"
        " occurred_at, amount) VALUES (?1, ?2, ?3, ?4, ?5)"
        " ON CONFLICT (event_id) DO NOTHING";
static const char sql_event_del[] =
        "DELETE FROM processed_recent WHERE event_id = ?1";
/* The WHERE turns a second OrderPlaced of an order into "no change", so one
 * statement both detects the duplicate and applies the event. */
static const char sql_place[] =
        "INSERT INTO order_list (order_id, status, total, placed_at)"
        " VALUES (?1, 'ORDERED', ?2, ?3) ON CONFLICT (order_id) DO UPDATE"
        " SET total = excluded.total, placed_at = excluded.placed_at"
        " WHERE placed_at IS NULL";
static const char sql_pay[] =
        "INSERT INTO order_list (order_id, status, paid_amount, paid_at)"
        " VALUES (?1, 'PAID', ?2, ?3) ON CONFLICT (order_id) DO UPDATE"
        " SET status = 'PAID', paid_amount = excluded.paid_amount,"
        " paid_at = excluded.paid_at WHERE paid_at IS NULL";
static const char sql_order_get[] =
        "SELECT placed_at IS NOT NULL, paid_at IS NOT NULL FROM order_list"
        " WHERE order_id = ?1";
static const char sql_dead_put[] =
        "INSERT INTO dead_letters (topic, partition, offset, key, value,"
        " reason, received_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
        " ON CONFLICT DO NOTHING";
static const char sql_gen_get[] = "SELECT generation FROM store_info";
static const char sql_info_add[] =
        "UPDATE store_info SET applied = applied + ?1,"
        " ignored = ignored + ?2, duplicates = duplicates + ?3,"
        " dead_letters = dead_letters + ?4, batches = batches + 1,"
        " last_batch_at = ?5";
static const char sql_offset_get[] =
        "SELECT next_offset FROM partition_offsets"
        " WHERE topic = ?1 AND partition = ?2";
static const char sql_offset_put[] =
        "INSERT INTO partition_offsets (topic, partition, next_offset)"
        " VALUES (?1, ?2, ?3) ON CONFLICT (topic, partition) DO UPDATE"
        " SET next_offset = max(next_offset, excluded.next_offset)";

int store_fail(of_store *st, int rc, const char *what, char *errstr,
               size_t errstr_size)
{
        of_errf(errstr, errstr_size, "%s: %s", what, sqlite3_errmsg(st->db));
        return dbfile_code_of(st->db, rc);
}

/* Step a statement that returns no row, then reset it. */
int store_step(of_store *st, sqlite3_stmt *stmt, char *errstr,
               size_t errstr_size)
{
        int rc = sqlite3_step(stmt);

        sqlite3_reset(stmt);
        if (rc != SQLITE_DONE)
                return store_fail(st, rc, sqlite3_sql(stmt), errstr,
                                  errstr_size);
        return 0;
}

void store_rollback(of_store *st)
{
        if (!sqlite3_get_autocommit(st->db))
                sqlite3_step(st->rollback), sqlite3_reset(st->rollback);
}

/* ---- open and close ---- */

int store_prepare(of_store *st, sqlite3_stmt **out, const char *sql,
                  char *errstr, size_t errstr_size)
{
        int rc = sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
                                    out, NULL);

        if (rc != SQLITE_OK)
                return store_fail(st, rc, "preparing statements", errstr,
                                  errstr_size);
        return 0;
}

static int prepare_all(of_store *st, char *errstr, size_t errstr_size)
{
        const struct {
                sqlite3_stmt **stmt;
                const char *sql;
        } all[] = {
                {&st->begin, sql_begin},
                {&st->commit, sql_commit},
                {&st->rollback, sql_rollback},
                {&st->totals_get, sql_totals_get},
                {&st->totals_add, sql_totals_add},
                {&st->day_add, sql_day_add},
                {&st->event_get, sql_event_get},
                {&st->event_put, sql_event_put},
                {&st->event_del, sql_event_del},
                {&st->place, sql_place},
                {&st->pay, sql_pay},
                {&st->order_get, sql_order_get},
                {&st->dead_put, sql_dead_put},
                {&st->offset_get, sql_offset_get},
                {&st->offset_put, sql_offset_put},
                {&st->gen_get, sql_gen_get},
                {&st->info_add, sql_info_add},
        };
        size_t i;

        for (i = 0; i < sizeof(all) / sizeof(all[0]); i++)
                if (store_prepare(st, all[i].stmt, all[i].sql, errstr,
                                  errstr_size))
                        return OF_ERROR;
        return 0;
}

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
                err = store_fail(st, rc, "reading schema_info", errstr,
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
        int rc = sqlite3_step(st->gen_get);

        if (rc == SQLITE_ROW)
                *out = sqlite3_column_int64(st->gen_get, 0);
        sqlite3_reset(st->gen_get);
        if (rc != SQLITE_ROW)
                return store_fail(st, rc, "reading store_info", errstr,
                                  errstr_size);
        return 0;
}

/* Whether the file holds table name already: 1 yes, 0 no, <0 failure. */
static int has_table(sqlite3 *db, const char *name)
{
        sqlite3_stmt *stmt = NULL;
        int rc;

        rc = sqlite3_prepare_v2(db,
                                "SELECT 1 FROM sqlite_master WHERE type ="
                                " 'table' AND name = ?1",
                                -1, &stmt, NULL);
        if (rc == SQLITE_OK) {
                sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
                rc = sqlite3_step(stmt);
        }
        sqlite3_finalize(stmt);
        return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : OF_ERROR;
}

int of_store_open(of_store **out, const char *path, char *errstr,
                  size_t errstr_size)
{
        of_store *st;
        char *msg = NULL;
        int rc;

        *out = NULL;
        st = calloc(1, sizeof(*st));
        if (!st)
                return of_errf(errstr, errstr_size, "out of memory");
        /* Each of_store is used by one thread at a time (see store.h), so
         * SQLite's per-call mutexes are pure cost. */
        if (dbfile_open(&st->db, path,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                SQLITE_OPEN_NOMUTEX,
                        &store_kind, 5000, errstr, errstr_size))
                goto fail;
        /* Readers who may not write the folder read only while the -wal
         * and -shm exist: keep them when we close. */
        dbfile_persist_wal(st->db);
        /* WAL lets readers query while we write; NORMAL sync may lose the
         * last batches on power loss, which Kafka then delivers again. */
        rc = sqlite3_exec(st->db,
                          "PRAGMA journal_mode = WAL;"
                          "PRAGMA synchronous = NORMAL;"
                          /* Measured (README, Performance): checkpoints
                           * every 50,000 pages instead of 1,000 write a
                           * page dirtied by many batches once; 16 MiB of
                           * cache holds processed_recent (64 MiB was no
                           * faster) and keeps peak RSS under 96 MiB. */
                          "PRAGMA wal_autocheckpoint = 50000;"
                          "PRAGMA journal_size_limit = 67108864;"
                          "PRAGMA cache_size = -16384;"
                          "BEGIN IMMEDIATE;",
                          NULL, NULL, &msg);
        /* Again under the write lock: another program may have made a
         * table since the check of dbfile_open(). */
        if (rc == SQLITE_OK &&
            dbfile_check(st->db, path, &store_kind, errstr, errstr_size)) {
                sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
                goto fail;
        }
        /* Files from before the runs: their table becomes
         * processed_recent, sealed by the first batch when large. */
        if (rc == SQLITE_OK && has_table(st->db, "processed_events") == 1)
                rc = sqlite3_exec(st->db,
                                  "ALTER TABLE processed_events RENAME TO"
                                  " processed_recent",
                                  NULL, NULL, &msg);
        if (rc == SQLITE_OK)
                rc = sqlite3_exec(st->db, readmodel_sql, NULL, NULL, &msg);
        if (rc == SQLITE_OK)
                rc = store_runs_migrate(st->db, of_timestamp_now_ms());
        if (rc == SQLITE_OK)
                rc = sqlite3_exec(st->db, "COMMIT", NULL, NULL, &msg);
        if (rc != SQLITE_OK) {
                of_errf(errstr, errstr_size, "%s: %s", path,
                        msg ? msg : sqlite3_errmsg(st->db));
                sqlite3_free(msg);
                goto fail;
        }
        if (check_version(st, errstr, errstr_size) ||
            prepare_all(st, errstr, errstr_size) ||
            read_generation(st, &st->generation, errstr, errstr_size) ||
            store_runs_load(st, errstr, errstr_size))
                goto fail;
        if (!(st->path = strdup(path))) {
                of_errf(errstr, errstr_size, "out of memory");
                goto fail;
        }
        st->seal_events = SEAL_EVENTS;
        st->busy_ms = 1000;
        sqlite3_busy_timeout(st->db, st->busy_ms);
        *out = st;
        return 0;
fail:
        of_store_close(st);
        return OF_ERROR;
}

void of_store_set_busy_timeout(of_store *st, int ms)
{
        st->busy_ms = ms;
        sqlite3_busy_timeout(st->db, ms);
}

/* After a rebuild swapped another model into the file: a new connection
 * in place of st's, with nothing cached from the old model (runs, filters,
 * counts), and the same settings. */
static int reopen(of_store *st, char *errstr, size_t errstr_size)
{
        of_store *fresh, old;

        if (of_store_open(&fresh, st->path, errstr, errstr_size))
                return OF_ERROR;
        fresh->seal_events = st->seal_events;
        of_store_set_busy_timeout(fresh, st->busy_ms);
        old = *st;
        *st = *fresh;
        *fresh = old;
        of_store_close(fresh);
        return 0;
}

void of_store_close(of_store *st)
{
        sqlite3_stmt *stmt;

        if (!st)
                return;
        store_runs_free(st);
        if (st->db) {
                while ((stmt = sqlite3_next_stmt(st->db, NULL)))
                        sqlite3_finalize(stmt);
                sqlite3_close(st->db);
        }
        free(st->days);
        free(st->order);
        free(st->ids);
        free(st->aggs);
        free(st->path);
        free(st);
}

int of_store_offset(int64_t *out, of_store *st, const char *topic,
                    int32_t partition, char *errstr, size_t errstr_size)
{
        sqlite3_stmt *stmt = st->offset_get;
        int rc, err = 0;

        sqlite3_bind_text(stmt, 1, topic, -1, SQLITE_STATIC);
        sqlite3_bind_int(stmt, 2, partition);
        rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW)
                *out = sqlite3_column_int64(stmt, 0);
        else if (rc == SQLITE_DONE)
                err = OF_ENOTFOUND;
        else
                err = store_fail(st, rc, "reading partition_offsets", errstr,
                                 errstr_size);
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
        int64_t generation;
        int err = read_generation(st, &generation, errstr, errstr_size);

        if (err || generation == st->generation)
                return err;
        return follow_replacement(st, "", errstr, errstr_size);
}

/* ---- the batch transaction ---- */

static int load_totals(of_store *st, char *errstr, size_t errstr_size)
{
        sqlite3_stmt *stmt = st->totals_get;
        int rc = sqlite3_step(stmt);

        if (rc == SQLITE_ROW) {
                st->base.orders_placed = sqlite3_column_int64(stmt, 0);
                st->base.orders_paid = sqlite3_column_int64(stmt, 1);
                st->base.placed_amount = sqlite3_column_int64(stmt, 2);
                st->base.paid_amount = sqlite3_column_int64(stmt, 3);
        }
        sqlite3_reset(stmt);
        if (rc != SQLITE_ROW)
                return store_fail(st, rc, "reading order_totals", errstr,
                                  errstr_size);
        return 0;
}

static int write_sums(of_store *st, char *errstr, size_t errstr_size)
{
        sqlite3_stmt *stmt = st->totals_add;
        size_t i;
        int err;

        sqlite3_bind_int64(stmt, 1, st->batch.orders_placed);
        sqlite3_bind_int64(stmt, 2, st->batch.orders_paid);
        sqlite3_bind_int64(stmt, 3, st->batch.placed_amount);
        sqlite3_bind_int64(stmt, 4, st->batch.paid_amount);
        if ((err = store_step(st, stmt, errstr, errstr_size)))
                return err;
        stmt = st->day_add;
        for (i = 0; i < st->days_cap; i++) {
                const day_sums *d = &st->days[i];

                if (!d->day[0])
                        continue;
                sqlite3_bind_text(stmt, 1, d->day, 10, SQLITE_STATIC);
                sqlite3_bind_int64(stmt, 2, d->s.orders_placed);
                sqlite3_bind_int64(stmt, 3, d->s.orders_paid);
                sqlite3_bind_int64(stmt, 4, d->s.placed_amount);
                sqlite3_bind_int64(stmt, 5, d->s.paid_amount);
                if ((err = store_step(st, stmt, errstr, errstr_size)))
                        return err;
        }
        return 0;
}

static int write_offsets(of_store *st, const of_store_pos *pos, size_t npos,
                         char *errstr, size_t errstr_size)
{
        sqlite3_stmt *stmt = st->offset_put;
        size_t i;
        int err;

        for (i = 0; i < npos; i++) {
                sqlite3_bind_text(stmt, 1, pos[i].topic, -1, SQLITE_STATIC);
                sqlite3_bind_int(stmt, 2, pos[i].partition);
                sqlite3_bind_int64(stmt, 3, pos[i].next_offset);
                if ((err = store_step(st, stmt, errstr, errstr_size)))
                        return err;
        }
        return 0;
}

/* The batch's counters and time into store_info (orderflow status). */
static int write_info(of_store *st, char *errstr, size_t errstr_size)
{
        sqlite3_stmt *stmt = st->info_add;
        char now[OF_TS_LEN + 1];

        of_timestamp_from_ms(now, of_timestamp_now_ms());
        sqlite3_bind_int64(stmt, 1, (int64_t)st->pending.applied);
        sqlite3_bind_int64(stmt, 2, (int64_t)st->pending.ignored);
        sqlite3_bind_int64(stmt, 3, (int64_t)st->pending.duplicates);
        sqlite3_bind_int64(stmt, 4, (int64_t)st->pending.dead);
        sqlite3_bind_text(stmt, 5, now, -1, SQLITE_TRANSIENT);
        return store_step(st, stmt, errstr, errstr_size);
}

static int key_cmp(const void *pa, const void *pb)
{
        const keyed_msg *a = pa, *b = pb;
        size_t n = a->key_len < b->key_len ? a->key_len : b->key_len;
        int c = n ? memcmp(a->key, b->key, n) : 0;

        if (c)
                return c;
        if (a->key_len != b->key_len)
                return a->key_len < b->key_len ? -1 : 1;
        return a->at < b->at ? -1 : a->at > b->at;
}

/* Get the bookkeeping of keyed mode ready for n messages. */
static int keyed_prepare(of_store *st, const of_msg *msgs, size_t n)
{
        size_t i, cap = 16;

        while (cap < n + n / 2)
                cap <<= 1;
        if (n > st->order_cap) {
                keyed_msg *o = realloc(st->order, n * sizeof(*o));

                if (!o)
                        return OF_ERROR;
                st->order = o;
                st->order_cap = n;
        }
        if (cap > st->slots_cap) {
                free(st->ids);
                free(st->aggs);
                st->ids = malloc(cap * sizeof(*st->ids));
                st->aggs = malloc(cap * sizeof(*st->aggs));
                st->slots_cap = st->ids && st->aggs ? cap : 0;
                if (!st->slots_cap)
                        return OF_ERROR;
        }
        memset(st->ids, 0, st->slots_cap * sizeof(*st->ids));
        memset(st->aggs, 0, st->slots_cap * sizeof(*st->aggs));
        for (i = 0; i < n; i++)
                st->order[i] = (keyed_msg){
                        msgs[i].key, msgs[i].key ? msgs[i].key_len : 0, i};
        qsort(st->order, n, sizeof(*st->order), key_cmp);
        return 0;
}

/* Everything of one batch but the COMMIT. Keyed: the messages are applied
 * in the order of their keys (the order id, by convention), so order_list
 * is visited in its own order, page after page, instead of all over; the
 * result is the log order's as long as as_in_log_order() holds for every
 * event and no sum comes near overflow, else OUT_OF_ORDER. */
static int apply_txn(of_store *st, const of_msg *msgs, size_t n,
                     const of_store_pos *pos, size_t npos, int keyed,
                     char *errstr, size_t errstr_size)
{
        size_t i, at;
        int64_t generation;
        int err;

        store_batch_reset(st);
        st->keyed = keyed;
        if ((err = store_step(st, st->begin, errstr, errstr_size)) ||
            (err = read_generation(st, &generation, errstr, errstr_size)))
                return err;
        if (generation != st->generation)
                return OF_ESTALE;
        if ((err = store_runs_refresh(st, errstr, errstr_size)) ||
            (err = load_totals(st, errstr, errstr_size)))
                return err;
        for (i = 0; i < n; i++) {
                at = keyed ? st->order[i].at : i;
                if ((err = store_apply_msg(st, &msgs[at], at, errstr,
                                           errstr_size)))
                        return err;
        }
        if ((err = write_sums(st, errstr, errstr_size)) ||
            (err = write_offsets(st, pos, npos, errstr, errstr_size)) ||
            (err = write_info(st, errstr, errstr_size)) ||
            (err = store_runs_note_recent(st, errstr, errstr_size)))
                return err;
        return 0;
}

int of_store_apply_batch(of_store *st, const of_msg *msgs, size_t n,
                         const of_store_pos *pos, size_t npos,
                         of_store_stats *stats, char *errstr,
                         size_t errstr_size)
{
        uint64_t t0 = store_mono_ns(), t_commit = 0;
        int err, keyed, i;

        /* Sealed before the batch could take processed_recent past
         * seal_events, so every run has at most that many ids. */
        if (st->recent_events > 0 &&
            st->recent_events + (int64_t)n > st->seal_events &&
            st->nruns < MAX_RUNS &&
            (err = store_seal(st, errstr, errstr_size))) {
                /* The model is right without the seal: it is tried again
                 * before the next batch. */
                of_log(OF_LOG_WARN, "sealing processed_events: %s", errstr);
        }
        keyed = n > 1 && keyed_prepare(st, msgs, n) == 0;

        err = apply_txn(st, msgs, n, pos, npos, keyed, errstr, errstr_size);
        if (err == OUT_OF_ORDER) {
                store_rollback(st);
                stats->in_log_order++;
                err = apply_txn(st, msgs, n, pos, npos, 0, errstr,
                                errstr_size);
        }
        if (err == OF_ESTALE) {
                store_rollback(st);
                return follow_replacement(st, "; its batch was not applied",
                                          errstr, errstr_size);
        }
        if (err)
                goto out;
        t_commit = store_mono_ns();
        if ((err = store_step(st, st->commit, errstr, errstr_size)))
                goto out;
        stats->commit_ns += store_mono_ns() - t_commit;
        stats->apply_ns += store_mono_ns() - t0;
        stats->decode_ns += st->pending.decode_ns;
        stats->applied += st->pending.applied;
        stats->ignored += st->pending.ignored;
        stats->duplicates += st->pending.duplicates;
        stats->dead += st->pending.dead;
        for (i = 0; i < OF_REASON_COUNT; i++)
                stats->dead_by_reason[i] += st->pending.dead_by_reason[i];
        stats->batches++;
        st->recent_events += st->recorded;
        return 0;
out:
        store_rollback(st);
        return err;
}
