/* The read-model store: opens and migrates the SQLite file, and applies a
 * batch of messages in one transaction (processed_events, projections, dead
 * letters, partition offsets). Decoding is event.c's; reading the relations
 * for people is store_query.c's; when to apply a batch is the projector's. */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "orderflow/error.h"
#include "orderflow/event.h"
#include "orderflow/idfilter.h"
#include "orderflow/log.h"
#include "orderflow/store.h"

#include "readmodel_sql.h"

static uint64_t mono_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#define DECODE_SAMPLE 16 /* decode time is measured on 1 event in this */

/* processed_recent is sealed into a run at this many rows: about 15 MiB of
 * table, the most whose random inserts stay in or near the page cache
 * (measured: README, Performance). */
#define SEAL_EVENTS 131072
/* SQLite's limit on the arms of one compound SELECT (the view). */
#define MAX_RUNS 480

/* apply_msg() in key order: this event may not go before one already
 * applied (store.c only, never returned). */
#define OUT_OF_ORDER (-1000)

/* A batch is applied in message-key order when that gives the log order's
 * result (see apply_keyed()); these are its bookkeeping. */
typedef struct keyed_msg {
        const char *key;
        size_t key_len;
        size_t at; /* index in the batch: log order */
} keyed_msg;

typedef struct slot {
        uint64_t hash; /* 0: free */
        size_t at;
} slot;

/* A sealed run of processed_events: table processed_run_<id>. */
typedef struct sealed_run {
        int64_t id;
        of_idfilter filter; /* empty when in_set */
        int in_set;         /* its filter is in of_store.set */
        sqlite3_stmt *get;  /* its row of an id */
} sealed_run;

/* ---- in-memory sums of one batch ---- */

typedef struct sums {
        int64_t orders_placed;
        int64_t orders_paid;
        int64_t placed_amount;
        int64_t paid_amount;
} sums;

typedef struct day_sums {
        char day[11]; /* YYYY-MM-DD; "" marks a free slot */
        sums s;
} day_sums;

struct of_store {
        sqlite3 *db;
        sqlite3_stmt *begin, *commit, *rollback;
        sqlite3_stmt *totals_get, *totals_add, *day_add;
        sqlite3_stmt *event_get, *event_put, *event_del;
        sqlite3_stmt *place, *pay, *order_get;
        sqlite3_stmt *dead_put;
        sqlite3_stmt *offset_get, *offset_put;
        sealed_run *runs;      /* oldest first */
        size_t nruns;
        of_idfilter_set set;   /* the filters of the runs of one size */
        size_t *set_run;       /* runs index of each filter in set */
        int64_t recent_events; /* rows in processed_recent */
        int64_t seal_events;   /* seal processed_recent at this many */
        int64_t recorded;      /* ids the open batch added to it */
        keyed_msg *order;      /* the batch in key order */
        slot *ids, *aggs;      /* ids and aggregates applied, keyed mode */
        size_t order_cap, slots_cap;
        int keyed;             /* applying in key order */
        sums base;       /* order_totals when the batch began */
        sums batch;      /* what the batch adds to order_totals */
        day_sums *days;  /* open addressing on day, days_cap slots */
        size_t days_cap; /* a power of two */
        size_t days_used;
        of_store_stats pending; /* counters of the uncommitted batch */
        uint64_t decoded;       /* messages decoded, for timing samples */
};

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
static const char sql_offset_get[] =
        "SELECT next_offset FROM partition_offsets"
        " WHERE topic = ?1 AND partition = ?2";
static const char sql_offset_put[] =
        "INSERT INTO partition_offsets (topic, partition, next_offset)"
        " VALUES (?1, ?2, ?3) ON CONFLICT (topic, partition) DO UPDATE"
        " SET next_offset = max(next_offset, excluded.next_offset)";

/* SQLite result codes that a later retry may clear. */
static int is_transient(int rc)
{
        switch (rc & 0xff) {
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
        case SQLITE_FULL:
        case SQLITE_IOERR:
                return 1;
        default:
                return 0;
        }
}

static int sql_fail(of_store *st, int rc, const char *what, char *errstr,
                    size_t errstr_size)
{
        of_errf(errstr, errstr_size, "%s: %s", what, sqlite3_errmsg(st->db));
        return is_transient(rc) ? OF_EBUSY : OF_ERROR;
}

/* Step a statement that returns no row, then reset it. */
static int run(of_store *st, sqlite3_stmt *stmt, char *errstr,
               size_t errstr_size)
{
        int rc = sqlite3_step(stmt);

        sqlite3_reset(stmt);
        if (rc != SQLITE_DONE)
                return sql_fail(st, rc, sqlite3_sql(stmt), errstr,
                                errstr_size);
        return 0;
}

static void rollback(of_store *st)
{
        if (!sqlite3_get_autocommit(st->db))
                sqlite3_step(st->rollback), sqlite3_reset(st->rollback);
}

/* ---- open and close ---- */

static int prepare(of_store *st, sqlite3_stmt **out, const char *sql,
                   char *errstr, size_t errstr_size)
{
        int rc = sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
                                    out, NULL);

        if (rc != SQLITE_OK)
                return sql_fail(st, rc, "preparing statements", errstr,
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
        };
        size_t i;

        for (i = 0; i < sizeof(all) / sizeof(all[0]); i++)
                if (prepare(st, all[i].stmt, all[i].sql, errstr, errstr_size))
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
                err = sql_fail(st, rc, "reading schema_info", errstr,
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

/* Whether the file holds table name already: 1 yes, 0 no, <0 failure.
 * Used to refuse the other kind of orderflow database. */
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

/* ---- sealed runs of processed_events ---- */

static int exec(of_store *st, const char *sql, char *errstr,
                size_t errstr_size)
{
        int rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);

        if (rc != SQLITE_OK)
                return sql_fail(st, rc, "changing processed_events", errstr,
                                errstr_size);
        return 0;
}

/* Adds every id of table to f; *count gets how many there are. */
static int filter_fill(of_store *st, of_idfilter *f, const char *table,
                       int64_t *count, char *errstr, size_t errstr_size)
{
        sqlite3_stmt *stmt = NULL;
        char *sql = sqlite3_mprintf("SELECT event_id FROM \"%w\"", table);
        int rc;

        *count = 0;
        rc = sql ? sqlite3_prepare_v2(st->db, sql, -1, &stmt, NULL)
                 : SQLITE_NOMEM;
        while (rc == SQLITE_OK && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
                of_idfilter_add(f, of_id_hash((const char *)
                                              sqlite3_column_text(stmt, 0),
                                              (size_t)sqlite3_column_bytes(
                                                      stmt, 0)));
                (*count)++;
                rc = SQLITE_OK;
        }
        sqlite3_finalize(stmt);
        sqlite3_free(sql);
        if (rc != SQLITE_DONE)
                return sql_fail(st, rc, "reading event ids", errstr,
                                errstr_size);
        return 0;
}

static int run_prepare(of_store *st, sealed_run *r, char *errstr,
                       size_t errstr_size)
{
        char sql[160];

        snprintf(sql, sizeof(sql),
                 "SELECT event_type, aggregate_id, occurred_at, amount"
                 " FROM processed_run_%" PRId64 " WHERE event_id = ?1",
                 r->id);
        return prepare(st, &r->get, sql, errstr, errstr_size);
}

static void runs_free(of_store *st)
{
        size_t i;

        for (i = 0; i < st->nruns; i++) {
                sqlite3_finalize(st->runs[i].get);
                of_idfilter_free(&st->runs[i].filter);
        }
        free(st->runs);
        st->runs = NULL;
        st->nruns = 0;
        of_idfilter_set_free(&st->set);
        free(st->set_run);
        st->set_run = NULL;
}

/* One sealed run as processed_runs describes it; a filter saved by another
 * version of the program is rebuilt from the run's ids. */
static int run_load(of_store *st, sealed_run *r, sqlite3_stmt *stmt, char *errstr,
                    size_t errstr_size)
{
        char table[48];
        int64_t count;

        r->id = sqlite3_column_int64(stmt, 0);
        if (sqlite3_column_int64(stmt, 2) == OF_IDFILTER_VERSION &&
            of_idfilter_load(&r->filter, sqlite3_column_blob(stmt, 3),
                             (size_t)sqlite3_column_bytes(stmt, 3)) == 0)
                return run_prepare(st, r, errstr, errstr_size);
        if (of_idfilter_init(&r->filter, (uint64_t)sqlite3_column_int64(
                                                 stmt, 1)))
                return of_errf(errstr, errstr_size, "out of memory");
        snprintf(table, sizeof(table), "processed_run_%" PRId64, r->id);
        if (filter_fill(st, &r->filter, table, &count, errstr, errstr_size))
                return OF_ERROR;
        return run_prepare(st, r, errstr, errstr_size);
}

/* Moves the filter of st->runs[i] into the set when it has the set's size
 * (every run that seal() makes does). Failing that it stays beside the
 * set, which only costs lookups time. */
static void run_adopt(of_store *st, size_t i)
{
        sealed_run *r = &st->runs[i];
        size_t *map;

        if (st->set.n && r->filter.nblocks != st->set.nblocks)
                return;
        if (!(map = realloc(st->set_run, (st->set.n + 1) * sizeof(*map))))
                return;
        st->set_run = map;
        if (of_idfilter_set_add(&st->set, &r->filter))
                return;
        map[st->set.n - 1] = i;
        r->in_set = 1;
        of_idfilter_free(&r->filter);
}

static int runs_load(of_store *st, char *errstr, size_t errstr_size)
{
        sqlite3_stmt *stmt = NULL;
        int rc, err = 0;
        sealed_run *r;

        rc = sqlite3_prepare_v2(st->db,
                                "SELECT run, events, filter_version, filter"
                                " FROM processed_runs ORDER BY run",
                                -1, &stmt, NULL);
        while (!err && rc == SQLITE_OK &&
               (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
                rc = SQLITE_OK;
                if (!(r = realloc(st->runs, (st->nruns + 1) * sizeof(*r)))) {
                        err = of_errf(errstr, errstr_size, "out of memory");
                        break;
                }
                st->runs = r;
                r = &st->runs[st->nruns];
                memset(r, 0, sizeof(*r));
                st->nruns++;
                if (!(err = run_load(st, r, stmt, errstr, errstr_size)))
                        run_adopt(st, st->nruns - 1);
        }
        if (!err && rc != SQLITE_DONE)
                err = sql_fail(st, rc, "reading processed_runs", errstr,
                               errstr_size);
        sqlite3_finalize(stmt);
        stmt = NULL;
        if (!err &&
            (rc = sqlite3_prepare_v2(st->db,
                                     "SELECT count(*) FROM processed_recent",
                                     -1, &stmt, NULL)) == SQLITE_OK &&
            (rc = sqlite3_step(stmt)) == SQLITE_ROW)
                st->recent_events = sqlite3_column_int64(stmt, 0);
        else if (!err)
                err = sql_fail(st, rc, "counting processed_recent", errstr,
                               errstr_size);
        sqlite3_finalize(stmt);
        return err;
}

/* The view over processed_recent and every run, newest first. */
static char *view_sql(const of_store *st, int64_t newest)
{
        sqlite3_str *sql = sqlite3_str_new(NULL);
        const char *cols =
                "event_id, event_type, aggregate_id, occurred_at, amount";
        size_t i;

        sqlite3_str_appendf(sql,
                            "DROP VIEW processed_events;"
                            " CREATE VIEW processed_events AS"
                            " SELECT %s FROM processed_recent",
                            cols);
        sqlite3_str_appendf(sql, " UNION ALL SELECT %s FROM processed_run_%lld",
                            cols, (long long)newest);
        for (i = 0; i < st->nruns; i++)
                sqlite3_str_appendf(sql,
                                    " UNION ALL SELECT %s FROM "
                                    "processed_run_%lld",
                                    cols, (long long)st->runs[i].id);
        return sqlite3_str_finish(sql);
}

static int run_record(of_store *st, const sealed_run *r, int64_t count,
                      char *errstr, size_t errstr_size)
{
        sqlite3_stmt *stmt = NULL;
        size_t len = of_idfilter_bytes(&r->filter);
        unsigned char *blob = malloc(len);
        int rc = SQLITE_NOMEM;

        if (blob) {
                of_idfilter_save(&r->filter, blob);
                rc = sqlite3_prepare_v2(st->db,
                                        "INSERT INTO processed_runs (run,"
                                        " events, filter_version, filter)"
                                        " VALUES (?1, ?2, ?3, ?4)",
                                        -1, &stmt, NULL);
        }
        if (rc == SQLITE_OK) {
                sqlite3_bind_int64(stmt, 1, r->id);
                sqlite3_bind_int64(stmt, 2, count);
                sqlite3_bind_int(stmt, 3, OF_IDFILTER_VERSION);
                sqlite3_bind_blob(stmt, 4, blob, (int)len, SQLITE_STATIC);
                rc = sqlite3_step(stmt);
        }
        sqlite3_finalize(stmt);
        free(blob);
        if (rc != SQLITE_DONE)
                return sql_fail(st, rc, "writing processed_runs", errstr,
                                errstr_size);
        return 0;
}

/* Seal processed_recent into run N+1 in one transaction: its ids become a
 * filter, the table is renamed, an empty processed_recent takes its place
 * and the view is made anew. The rows are not copied: a B-tree is already
 * sorted. */
static int seal(of_store *st, char *errstr, size_t errstr_size)
{
        sealed_run r = {.id = st->nruns ? st->runs[st->nruns - 1].id + 1 : 1};
        char *sql = NULL;
        int64_t count;
        sealed_run *grown;
        int err;

        if ((err = run(st, st->begin, errstr, errstr_size)))
                return err;
        /* Sealed before it outgrows seal_events (see of_store_apply_batch),
         * so runs share one filter size, hence the set. */
        if (of_idfilter_init(&r.filter,
                             (uint64_t)(st->recent_events > st->seal_events
                                                ? st->recent_events
                                                : st->seal_events))) {
                err = of_errf(errstr, errstr_size, "out of memory");
                goto out;
        }
        if ((err = filter_fill(st, &r.filter, "processed_recent", &count,
                               errstr, errstr_size)))
                goto out;
        if (!(sql = sqlite3_mprintf("DROP VIEW processed_events;"
                                    " ALTER TABLE processed_recent RENAME TO"
                                    " processed_run_%lld",
                                    (long long)r.id))) {
                err = of_errf(errstr, errstr_size, "out of memory");
                goto out;
        }
        if ((err = exec(st, sql, errstr, errstr_size)) ||
            (err = exec(st, readmodel_sql, errstr, errstr_size)) ||
            (err = run_record(st, &r, count, errstr, errstr_size)))
                goto out;
        sqlite3_free(sql);
        if (!(sql = view_sql(st, r.id))) {
                err = of_errf(errstr, errstr_size, "out of memory");
                goto out;
        }
        if ((err = exec(st, sql, errstr, errstr_size)) ||
            (err = run(st, st->commit, errstr, errstr_size)) ||
            (err = run_prepare(st, &r, errstr, errstr_size)))
                goto out;
        if (!(grown = realloc(st->runs, (st->nruns + 1) * sizeof(r)))) {
                /* Committed, so reopening would find it: not fatal. */
                err = of_errf(errstr, errstr_size, "out of memory");
                goto out;
        }
        st->runs = grown;
        st->runs[st->nruns++] = r;
        run_adopt(st, st->nruns - 1);
        st->recent_events = 0;
        memset(&r, 0, sizeof(r));
out:
        rollback(st);
        sqlite3_finalize(r.get);
        of_idfilter_free(&r.filter);
        sqlite3_free(sql);
        return err;
}

void of_store_set_seal_events(of_store *st, int64_t n)
{
        st->seal_events = n;
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
        rc = sqlite3_open_v2(path, &st->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                     SQLITE_OPEN_NOMUTEX,
                             NULL);
        if (rc != SQLITE_OK) {
                of_errf(errstr, errstr_size, "%s: %s", path,
                        st->db ? sqlite3_errmsg(st->db)
                               : sqlite3_errstr(rc));
                goto fail;
        }
        /* Each of_store is used by one thread at a time (see store.h), so
         * SQLite's per-call mutexes are pure cost. */
        sqlite3_extended_result_codes(st->db, 1);
        sqlite3_busy_timeout(st->db, 5000);
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
        if (rc == SQLITE_OK && has_table(st->db, "outbox_messages") == 1) {
                sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
                of_errf(errstr, errstr_size,
                        "%s: an application database, not a read model",
                        path);
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
                rc = sqlite3_exec(st->db, "COMMIT", NULL, NULL, &msg);
        if (rc != SQLITE_OK) {
                of_errf(errstr, errstr_size, "%s: %s", path,
                        msg ? msg : sqlite3_errmsg(st->db));
                sqlite3_free(msg);
                goto fail;
        }
        if (check_version(st, errstr, errstr_size) ||
            prepare_all(st, errstr, errstr_size) ||
            runs_load(st, errstr, errstr_size))
                goto fail;
        st->seal_events = SEAL_EVENTS;
        sqlite3_busy_timeout(st->db, 1000);
        *out = st;
        return 0;
fail:
        of_store_close(st);
        return OF_ERROR;
}

void of_store_set_busy_timeout(of_store *st, int ms)
{
        sqlite3_busy_timeout(st->db, ms);
}

void of_store_close(of_store *st)
{
        sqlite3_stmt *stmt;

        if (!st)
                return;
        runs_free(st);
        if (st->db) {
                while ((stmt = sqlite3_next_stmt(st->db, NULL)))
                        sqlite3_finalize(stmt);
                sqlite3_close(st->db);
        }
        free(st->days);
        free(st->order);
        free(st->ids);
        free(st->aggs);
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
                err = sql_fail(st, rc, "reading partition_offsets", errstr,
                               errstr_size);
        sqlite3_reset(stmt);
        return err;
}

/* ---- per-batch day sums ---- */

static uint32_t day_hash(const char *day)
{
        uint32_t h = 2166136261u;
        int i;

        for (i = 0; i < 10; i++)
                h = (h ^ (unsigned char)day[i]) * 16777619u;
        return h;
}

/* The batch's sums for the UTC day of ts (an occurred_at), or NULL when
 * memory runs out. */
static sums *day_slot(of_store *st, const char *ts)
{
        size_t i, mask;

        if (2 * (st->days_used + 1) > st->days_cap) {
                size_t cap = st->days_cap ? 2 * st->days_cap : 64;
                day_sums *old = st->days, *nd = calloc(cap, sizeof(*nd));
                size_t j, oldcap = st->days_cap;

                if (!nd)
                        return NULL;
                st->days = nd;
                st->days_cap = cap;
                st->days_used = 0;
                for (j = 0; j < oldcap; j++) {
                        if (old[j].day[0])
                                *day_slot(st, old[j].day) = old[j].s;
                }
                free(old);
        }
        mask = st->days_cap - 1;
        for (i = day_hash(ts) & mask;; i = (i + 1) & mask) {
                if (!st->days[i].day[0]) {
                        memcpy(st->days[i].day, ts, 10);
                        st->days[i].day[10] = '\0';
                        st->days_used++;
                        return &st->days[i].s;
                }
                if (!memcmp(st->days[i].day, ts, 10))
                        return &st->days[i].s;
        }
}

static void batch_reset(of_store *st)
{
        memset(&st->batch, 0, sizeof(st->batch));
        memset(&st->pending, 0, sizeof(st->pending));
        st->recorded = 0;
        if (st->days)
                memset(st->days, 0, st->days_cap * sizeof(*st->days));
        st->days_used = 0;
}

/* ---- applying one message ---- */

static void bind_blob_or_null(sqlite3_stmt *stmt, int i, const void *p,
                              size_t len)
{
        if (p)
                sqlite3_bind_blob64(stmt, i, len ? p : "", len, SQLITE_STATIC);
        else
                sqlite3_bind_null(stmt, i);
}

static int dead_letter(of_store *st, const of_msg *m, const char *reason,
                       char *errstr, size_t errstr_size)
{
        sqlite3_stmt *stmt = st->dead_put;
        char now[OF_TS_LEN + 1];
        int err;

        of_timestamp_from_ms(now, of_timestamp_now_ms());
        sqlite3_bind_text(stmt, 1, m->topic, -1, SQLITE_STATIC);
        sqlite3_bind_int(stmt, 2, m->partition);
        sqlite3_bind_int64(stmt, 3, m->offset);
        bind_blob_or_null(stmt, 4, m->key, m->key_len);
        bind_blob_or_null(stmt, 5, m->value, m->value_len);
        sqlite3_bind_text(stmt, 6, reason, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 7, now, -1, SQLITE_STATIC);
        err = run(st, stmt, errstr, errstr_size);
        if (!err && sqlite3_changes(st->db) > 0)
                st->pending.dead++;
        return err;
}

/* Look the id up with stmt (processed_recent's or a run's). Returns 1 and
 * fills *out when it is there, 0 when not, <0 on failure. */
static int read_event(of_store *st, sqlite3_stmt *stmt, of_event *out,
                      const char *id, char *errstr, size_t errstr_size)
{
        int rc, found = 0;

        sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC);
        rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW) {
                found = 1;
                memset(out, 0, sizeof(*out));
                snprintf(out->type_name, sizeof(out->type_name), "%s",
                         (const char *)sqlite3_column_text(stmt, 0));
                snprintf(out->aggregate_id, sizeof(out->aggregate_id), "%s",
                         (const char *)sqlite3_column_text(stmt, 1));
                snprintf(out->occurred_at, sizeof(out->occurred_at), "%s",
                         (const char *)sqlite3_column_text(stmt, 2));
                out->amount = sqlite3_column_type(stmt, 3) == SQLITE_NULL
                                      ? -1
                                      : sqlite3_column_int64(stmt, 3);
        } else if (rc != SQLITE_DONE) {
                found = sql_fail(st, rc, "reading processed_events", errstr,
                                 errstr_size);
        }
        sqlite3_reset(stmt);
        return found;
}

/* Look the id up in the sealed runs whose filters may hold it: 1 and *out
 * filled, 0 not there, <0 failure. */
static int sealed_event(of_store *st, of_event *out, const char *id,
                        uint64_t hash, char *errstr, size_t errstr_size)
{
        size_t i;
        int rc;

        for (i = of_idfilter_set_next(&st->set, hash, 0); i < st->set.n;
             i = of_idfilter_set_next(&st->set, hash, i + 1))
                if ((rc = read_event(st, st->runs[st->set_run[i]].get, out,
                                     id, errstr, errstr_size)))
                        return rc;
        if (st->set.n == st->nruns)
                return 0;
        for (i = 0; i < st->nruns; i++) {
                if (st->runs[i].in_set ||
                    !of_idfilter_maybe(&st->runs[i].filter, hash))
                        continue;
                if ((rc = read_event(st, st->runs[i].get, out, id, errstr,
                                     errstr_size)))
                        return rc;
        }
        return 0;
}

/* Look the id up in processed_events: 1 and *out filled, 0 not there, <0
 * failure. */
static int known_event(of_store *st, of_event *out, const char *id,
                       char *errstr, size_t errstr_size)
{
        int rc = read_event(st, st->event_get, out, id, errstr, errstr_size);

        return rc ? rc : sealed_event(st, out, id,
                                      of_id_hash(id, strlen(id)), errstr,
                                      errstr_size);
}

/* Record ev's id in processed_events unless it is known: 1 recorded, 0
 * known already, <0 failure. */
static int record_event(of_store *st, const of_event *ev, char *errstr,
                        size_t errstr_size)
{
        sqlite3_stmt *stmt = st->event_put;
        int err;

        sqlite3_bind_text(stmt, 1, ev->id, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 2, ev->type_name, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 3, ev->aggregate_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 4, ev->occurred_at, -1, SQLITE_STATIC);
        if (ev->amount < 0)
                sqlite3_bind_null(stmt, 5);
        else
                sqlite3_bind_int64(stmt, 5, ev->amount);
        if ((err = run(st, stmt, errstr, errstr_size)))
                return err;
        if (sqlite3_changes(st->db) == 0)
                return 0;
        st->recorded++;
        return 1;
}

/* Take back a record_event() (the event turned out to be a dead letter). */
static int unrecord_event(of_store *st, const of_event *ev, char *errstr,
                          size_t errstr_size)
{
        sqlite3_bind_text(st->event_del, 1, ev->id, -1, SQLITE_STATIC);
        st->recorded--;
        return run(st, st->event_del, errstr, errstr_size);
}

/* Name the first field on which two deliveries of one id disagree. */
static const char *disagreement(const of_event *a, const of_event *b)
{
        if (strcmp(a->type_name, b->type_name))
                return "type";
        if (strcmp(a->aggregate_id, b->aggregate_id))
                return "aggregateId";
        if (strcmp(a->occurred_at, b->occurred_at))
                return "occurredAt";
        return a->type == OF_EVENT_PLACED ? "payload.total" : "payload.amount";
}

/* Whether the order already has an event of ev's type: 1 yes, 0 no, <0
 * failure. */
static int already_has(of_store *st, const of_event *ev, char *errstr,
                       size_t errstr_size)
{
        sqlite3_stmt *stmt = st->order_get;
        int rc, has = 0;

        sqlite3_bind_text(stmt, 1, ev->aggregate_id, -1, SQLITE_STATIC);
        rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW)
                has = sqlite3_column_int(stmt,
                                         ev->type == OF_EVENT_PLACED ? 0 : 1);
        else if (rc != SQLITE_DONE)
                has = sql_fail(st, rc, "reading order_list", errstr,
                               errstr_size);
        sqlite3_reset(stmt);
        return has;
}

/* Whether adding ev's amount would carry its sum past 2^63-1. */
static int would_overflow(const of_store *st, const of_event *ev)
{
        int64_t sum;

        if (ev->type == OF_EVENT_OTHER)
                return 0;
        sum = ev->type == OF_EVENT_PLACED
                      ? st->base.placed_amount + st->batch.placed_amount
                      : st->base.paid_amount + st->batch.paid_amount;
        return ev->amount > INT64_MAX - sum;
}

static void reason_duplicate(char *reason, size_t reason_size,
                             const of_event *ev)
{
        snprintf(reason, reason_size, "%s: %s",
                 ev->type == OF_EVENT_PLACED ? OF_REASON_DUP_PLACED
                                             : OF_REASON_DUP_PAID,
                 ev->aggregate_id);
}

/* Apply a valid OrderPlaced/OrderPaid whose id was just recorded. Returns
 * 1 (the id taken back, the reason written) when the order has its event
 * of this type already: a dead letter. */
static int apply_order_event(of_store *st, const of_event *ev, char *reason,
                             size_t reason_size, char *errstr,
                             size_t errstr_size)
{
        int placed = ev->type == OF_EVENT_PLACED;
        sqlite3_stmt *stmt = placed ? st->place : st->pay;
        sums *day;
        int err;

        sqlite3_bind_text(stmt, 1, ev->aggregate_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(stmt, 2, ev->amount);
        sqlite3_bind_text(stmt, 3, ev->occurred_at, -1, SQLITE_STATIC);
        if ((err = run(st, stmt, errstr, errstr_size)))
                return err;
        if (sqlite3_changes(st->db) == 0) {
                /* Rare: a second event of this type for the order. */
                if ((err = unrecord_event(st, ev, errstr, errstr_size)))
                        return err;
                reason_duplicate(reason, reason_size, ev);
                return 1;
        }
        if (!(day = day_slot(st, ev->occurred_at)))
                return of_errf(errstr, errstr_size, "out of memory");
        if (placed) {
                st->batch.orders_placed++;
                st->batch.placed_amount += ev->amount;
                day->orders_placed++;
                day->placed_amount += ev->amount;
        } else {
                st->batch.orders_paid++;
                st->batch.paid_amount += ev->amount;
                day->orders_paid++;
                day->paid_amount += ev->amount;
        }
        st->pending.applied++;
        return 0;
}

/* A known id delivered again: no effect when it agrees, else a conflict
 * (1, reason written). */
static int known_again(of_store *st, const of_event *ev,
                       const of_event *seen, char *reason,
                       size_t reason_size)
{
        if (of_event_agrees(ev, seen)) {
                st->pending.duplicates++;
                return 0;
        }
        snprintf(reason, reason_size,
                 "%s: event %s was applied with another %s",
                 OF_REASON_CONFLICT, ev->id, disagreement(ev, seen));
        return 1;
}

static slot *slot_find(slot *tab, size_t cap, uint64_t hash)
{
        size_t i = (size_t)hash & (cap - 1);

        while (tab[i].hash && tab[i].hash != hash)
                i = (i + 1) & (cap - 1);
        return &tab[i];
}

/* In key order, whether ev (at index at of the batch) has the effect it
 * has in log order: yes when no other event of the batch has its id and
 * no later event of its order was applied already. Hash collisions can
 * only make it say no. */
static int as_in_log_order(of_store *st, const of_event *ev,
                           uint64_t id_hash, size_t at)
{
        slot *s;
        uint64_t hash = id_hash | 1;

        s = slot_find(st->ids, st->slots_cap, hash);
        if (s->hash)
                return 0;
        s->hash = hash;
        if (ev->type == OF_EVENT_OTHER)
                return 1;
        hash = of_id_hash(ev->aggregate_id, strlen(ev->aggregate_id)) | 1;
        s = slot_find(st->aggs, st->slots_cap, hash);
        if (s->hash && s->at > at)
                return 0;
        s->hash = hash;
        s->at = at;
        return 1;
}

static int apply_msg(of_store *st, const of_msg *m, size_t at, char *errstr,
                     size_t errstr_size)
{
        /* Two clock reads per event would weigh on the hot path: time
         * one event in DECODE_SAMPLE and scale. */
        int timed = st->decoded++ % DECODE_SAMPLE == 0;
        uint64_t t0 = timed ? mono_ns() : 0;
        char reason[OF_REASON_MAX];
        of_event ev, seen;
        uint64_t id_hash;
        int rc;

        rc = of_event_parse(&ev, m->value, m->value_len, reason,
                            sizeof(reason));
        if (timed)
                st->pending.decode_ns += (mono_ns() - t0) * DECODE_SAMPLE;
        if (rc)
                goto dead;
        id_hash = of_id_hash(ev.id, strlen(ev.id));
        if (st->keyed && (!as_in_log_order(st, &ev, id_hash, at) ||
                          would_overflow(st, &ev)))
                return OUT_OF_ORDER;
        if (would_overflow(st, &ev)) {
                /* Rare: is it known, or a new id to reject? */
                if ((rc = known_event(st, &seen, ev.id, errstr,
                                      errstr_size)) != 0)
                        goto known;
                /* A duplicate is reported before an overflow. */
                if ((rc = already_has(st, &ev, errstr, errstr_size)) < 0)
                        return rc;
                if (rc == 1)
                        reason_duplicate(reason, sizeof(reason), &ev);
                else
                        snprintf(reason, sizeof(reason),
                                 "%s: %s would pass 2^63-1",
                                 OF_REASON_OVERFLOW,
                                 ev.type == OF_EVENT_PLACED
                                         ? "placed_amount"
                                         : "paid_amount");
                goto dead;
        }
        /* The common path: the runs' filters rule the id out and one
         * statement records it in processed_recent. */
        if ((rc = sealed_event(st, &seen, ev.id, id_hash, errstr,
                               errstr_size)) != 0)
                goto known;
        if ((rc = record_event(st, &ev, errstr, errstr_size)) < 0)
                return rc;
        if (rc == 0) {
                if ((rc = read_event(st, st->event_get, &seen, ev.id, errstr,
                                     errstr_size)) != 1)
                        return rc < 0 ? rc : of_errf(errstr, errstr_size,
                                                     "event %s vanished",
                                                     ev.id);
                goto known;
        }
        if (ev.type == OF_EVENT_OTHER) {
                st->pending.ignored++;
                return 0;
        }
        rc = apply_order_event(st, &ev, reason, sizeof(reason), errstr,
                               errstr_size);
        if (rc != 1)
                return rc;
        goto dead;
known:
        /* rc: 1 found (seen filled), <0 failure */
        if (rc < 0)
                return rc;
        seen.type = ev.type;
        if (!known_again(st, &ev, &seen, reason, sizeof(reason)))
                return 0;
dead:
        return dead_letter(st, m, reason, errstr, errstr_size);
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
                return sql_fail(st, rc, "reading order_totals", errstr,
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
        if ((err = run(st, stmt, errstr, errstr_size)))
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
                if ((err = run(st, stmt, errstr, errstr_size)))
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
                if ((err = run(st, stmt, errstr, errstr_size)))
                        return err;
        }
        return 0;
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
        int err;

        batch_reset(st);
        st->keyed = keyed;
        if ((err = run(st, st->begin, errstr, errstr_size)) ||
            (err = load_totals(st, errstr, errstr_size)))
                return err;
        for (i = 0; i < n; i++) {
                at = keyed ? st->order[i].at : i;
                if ((err = apply_msg(st, &msgs[at], at, errstr,
                                     errstr_size)))
                        return err;
        }
        if ((err = write_sums(st, errstr, errstr_size)) ||
            (err = write_offsets(st, pos, npos, errstr, errstr_size)))
                return err;
        return 0;
}

int of_store_apply_batch(of_store *st, const of_msg *msgs, size_t n,
                         const of_store_pos *pos, size_t npos,
                         of_store_stats *stats, char *errstr,
                         size_t errstr_size)
{
        uint64_t t0 = mono_ns(), t_commit = 0;
        int err, keyed;

        /* Sealed before the batch could take processed_recent past
         * seal_events, so every run has at most that many ids. */
        if (st->recent_events > 0 &&
            st->recent_events + (int64_t)n > st->seal_events &&
            st->nruns < MAX_RUNS && (err = seal(st, errstr, errstr_size))) {
                /* The model is right without the seal: it is tried again
                 * before the next batch. */
                of_log(OF_LOG_WARN, "sealing processed_events: %s", errstr);
        }
        keyed = n > 1 && keyed_prepare(st, msgs, n) == 0;

        err = apply_txn(st, msgs, n, pos, npos, keyed, errstr, errstr_size);
        if (err == OUT_OF_ORDER) {
                rollback(st);
                stats->in_log_order++;
                err = apply_txn(st, msgs, n, pos, npos, 0, errstr,
                                errstr_size);
        }
        if (err)
                goto out;
        t_commit = mono_ns();
        if ((err = run(st, st->commit, errstr, errstr_size)))
                goto out;
        stats->commit_ns += mono_ns() - t_commit;
        stats->apply_ns += mono_ns() - t0;
        stats->decode_ns += st->pending.decode_ns;
        stats->applied += st->pending.applied;
        stats->ignored += st->pending.ignored;
        stats->duplicates += st->pending.duplicates;
        stats->dead += st->pending.dead;
        stats->batches++;
        st->recent_events += st->recorded;
        return 0;
out:
        rollback(st);
        return err;
}
