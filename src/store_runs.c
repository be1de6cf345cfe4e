/* processed_events and its sealed runs: processed_recent becomes run N
 * when it is full, each run's ids get a filter (idfilter.c) saved beside
 * it, and an id is looked up in processed_recent and in only the runs
 * whose filters may hold it. Dropping old runs is store_prune.c's. */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "orderflow/error.h"
#include "orderflow/timestamp.h"

#include "schema.h"
#include "store_int.h"

static const char *const runs_sql[RU_COUNT] = {
        [RU_BEGIN] = "BEGIN IMMEDIATE",
        [RU_COMMIT] = "COMMIT",
        [RU_ROLLBACK] = "ROLLBACK",
        [RU_EVENT_GET] = "SELECT event_type, aggregate_id, occurred_at,"
                         " amount FROM processed_recent WHERE event_id = ?1",
        /* Changes a row only when processed_recent was empty: one page
         * written a seal, not a batch. */
        [RU_SINCE_PUT] = "UPDATE processed_recent_since SET since_ms = ?1"
                         " WHERE since_ms IS NULL",
};

int store_runs_exec(of_store *st, const char *sql, char *errstr,
                    size_t errstr_size)
{
        int rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);

        if (rc != SQLITE_OK)
                return sqldb_fail(st->db, rc, "changing processed_events",
                                  errstr, errstr_size);
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
                of_idfilter_add(
                        f,
                        of_id_hash((const char *)sqlite3_column_text(stmt, 0),
                                   (size_t)sqlite3_column_bytes(stmt, 0)));
                (*count)++;
                rc = SQLITE_OK;
        }
        sqlite3_finalize(stmt);
        sqlite3_free(sql);
        if (rc != SQLITE_DONE)
                return sqldb_fail(st->db, rc, "reading event ids", errstr,
                                  errstr_size);
        return 0;
}

static int run_prepare(of_store *st, sealed_run *r, char *errstr,
                       size_t errstr_size)
{
        char sql[160];
        const char *table[1] = {sql};

        snprintf(sql, sizeof(sql),
                 "SELECT event_type, aggregate_id, occurred_at, amount"
                 " FROM processed_run_%" PRId64 " WHERE event_id = ?1",
                 r->id);
        return sqldb_prepare_all(st->db, &r->get, table, 1, errstr,
                                 errstr_size);
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
static int run_load(of_store *st, sealed_run *r, sqlite3_stmt *stmt,
                    char *errstr, size_t errstr_size)
{
        char table[48];
        int64_t count;

        r->id = sqlite3_column_int64(stmt, 0);
        r->events = sqlite3_column_int64(stmt, 1);
        r->sealed_at = sqlite3_column_type(stmt, 4) == SQLITE_NULL
                               ? -1
                               : sqlite3_column_int64(stmt, 4);
        if (sqlite3_column_int64(stmt, 2) == OF_IDFILTER_VERSION &&
            of_idfilter_load(&r->filter, sqlite3_column_blob(stmt, 3),
                             (size_t)sqlite3_column_bytes(stmt, 3)) == 0)
                return run_prepare(st, r, errstr, errstr_size);
        if (of_idfilter_init(&r->filter,
                             (uint64_t)sqlite3_column_int64(stmt, 1)))
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

/* SQLite's count of schema changes: every seal, by this connection or
 * another, moves it. */
static int schema_version(of_store *st, int *out, char *errstr,
                          size_t errstr_size)
{
        sqlite3_stmt *stmt = NULL;
        int rc;

        rc = sqlite3_prepare_v2(st->db, "PRAGMA schema_version", -1, &stmt,
                                NULL);
        if (rc == SQLITE_OK && (rc = sqlite3_step(stmt)) == SQLITE_ROW)
                *out = sqlite3_column_int(stmt, 0);
        sqlite3_finalize(stmt);
        if (rc != SQLITE_ROW)
                return sqldb_fail(st->db, rc, "reading the schema version",
                                  errstr, errstr_size);
        return 0;
}

static int runs_load(of_store *st, char *errstr, size_t errstr_size)
{
        sqlite3_stmt *stmt = NULL;
        int rc, err = 0;
        sealed_run *r;

        if ((err = schema_version(st, &st->schema_seen, errstr, errstr_size)))
                return err;
        rc = sqlite3_prepare_v2(st->db,
                                "SELECT run, events, filter_version, filter,"
                                " sealed_at FROM processed_runs ORDER BY run",
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
                err = sqldb_fail(st->db, rc, "reading processed_runs", errstr,
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
                err = sqldb_fail(st->db, rc, "counting processed_recent",
                                 errstr, errstr_size);
        sqlite3_finalize(stmt);
        return err;
}

int store_runs_schema_seen(of_store *st, char *errstr, size_t errstr_size)
{
        return schema_version(st, &st->schema_seen, errstr, errstr_size);
}

int store_runs_refresh(of_store *st, char *errstr, size_t errstr_size)
{
        int version, err;

        if ((err = schema_version(st, &version, errstr, errstr_size)) ||
            version == st->schema_seen)
                return err;
        runs_free(st);
        return runs_load(st, errstr, errstr_size);
}

int store_runs_open(of_store *st, char *errstr, size_t errstr_size)
{
        st->seal_events = SEAL_EVENTS;
        if (sqldb_prepare_all(st->db, st->runs_stmt, runs_sql, RU_COUNT,
                              errstr, errstr_size))
                return OF_ERROR;
        return runs_load(st, errstr, errstr_size);
}

void store_runs_close(of_store *st)
{
        runs_free(st);
        sqldb_finalize_all(st->runs_stmt, RU_COUNT);
}

/* The view over processed_recent and every run but skip, plus run add
 * (0: none, for both). */
char *store_runs_view_sql(const of_store *st, int64_t add, int64_t skip)
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
        if (add)
                sqlite3_str_appendf(sql,
                                    " UNION ALL SELECT %s FROM "
                                    "processed_run_%lld",
                                    cols, (long long)add);
        for (i = 0; i < st->nruns; i++)
                if (st->runs[i].id != skip)
                        sqlite3_str_appendf(sql,
                                            " UNION ALL SELECT %s FROM "
                                            "processed_run_%lld",
                                            cols, (long long)st->runs[i].id);
        return sqlite3_str_finish(sql);
}

static int run_record(of_store *st, const sealed_run *r, char *errstr,
                      size_t errstr_size)
{
        sqlite3_stmt *stmt = NULL;
        size_t len = of_idfilter_bytes(&r->filter);
        unsigned char *blob = malloc(len);
        int rc = SQLITE_NOMEM;

        if (blob) {
                of_idfilter_save(&r->filter, blob);
                rc = sqlite3_prepare_v2(st->db,
                                        "INSERT INTO processed_runs (run,"
                                        " events, filter_version, filter,"
                                        " sealed_at)"
                                        " VALUES (?1, ?2, ?3, ?4, ?5)",
                                        -1, &stmt, NULL);
        }
        if (rc == SQLITE_OK) {
                sqlite3_bind_int64(stmt, 1, r->id);
                sqlite3_bind_int64(stmt, 2, r->events);
                sqlite3_bind_int(stmt, 3, OF_IDFILTER_VERSION);
                sqlite3_bind_blob(stmt, 4, blob, (int)len, SQLITE_STATIC);
                sqlite3_bind_int64(stmt, 5, r->sealed_at);
                rc = sqlite3_step(stmt);
        }
        sqlite3_finalize(stmt);
        free(blob);
        if (rc != SQLITE_DONE)
                return sqldb_fail(st->db, rc, "writing processed_runs", errstr,
                                  errstr_size);
        return 0;
}

/* Seal processed_recent into run N+1 in one transaction: its ids become a
 * filter, the table is renamed, an empty processed_recent takes its place
 * and the view is made anew. The rows are not copied: a B-tree is already
 * sorted. *sealed says whether there was anything to seal. */
int store_runs_seal(of_store *st, int *sealed, char *errstr,
                    size_t errstr_size)
{
        sealed_run r = {0};
        char *sql = NULL;
        sealed_run *grown;
        int err;

        *sealed = 0;

        if ((err = sqldb_step(st->db, st->runs_stmt[RU_BEGIN], errstr,
                              errstr_size)))
                return err;
        /* Another projector on the file may have sealed it already. */
        if ((err = store_runs_refresh(st, errstr, errstr_size)) ||
            st->recent_events == 0)
                goto out;
        r.id = st->nruns ? st->runs[st->nruns - 1].id + 1 : 1;
        /* Sealed before it outgrows seal_events (store_runs_seal_for()),
         * so runs share one filter size, hence the set. */
        if (of_idfilter_init(&r.filter,
                             (uint64_t)(st->recent_events > st->seal_events
                                                ? st->recent_events
                                                : st->seal_events))) {
                err = of_errf(errstr, errstr_size, "out of memory");
                goto out;
        }
        if ((err = filter_fill(st, &r.filter, "processed_recent", &r.events,
                               errstr, errstr_size)))
                goto out;
        /* Every id in it was recorded by now: the time retention goes by. */
        r.sealed_at = store_now(st);
        if (!(sql = sqlite3_mprintf("DROP VIEW processed_events;"
                                    " ALTER TABLE processed_recent RENAME TO"
                                    " processed_run_%lld;"
                                    " UPDATE processed_recent_since SET"
                                    " since_ms = NULL",
                                    (long long)r.id))) {
                err = of_errf(errstr, errstr_size, "out of memory");
                goto out;
        }
        if ((err = store_runs_exec(st, sql, errstr, errstr_size)) ||
            (err = store_runs_exec(st, of_schema_readmodel, errstr,
                                   errstr_size)) ||
            (err = run_record(st, &r, errstr, errstr_size)))
                goto out;
        sqlite3_free(sql);
        if (!(sql = store_runs_view_sql(st, r.id, 0))) {
                err = of_errf(errstr, errstr_size, "out of memory");
                goto out;
        }
        if ((err = store_runs_exec(st, sql, errstr, errstr_size)) ||
            (err = store_runs_schema_seen(st, errstr, errstr_size)) ||
            (err = sqldb_step(st->db, st->runs_stmt[RU_COMMIT], errstr,
                              errstr_size)) ||
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
        *sealed = 1;
out:
        sqldb_rollback(st->db, st->runs_stmt[RU_ROLLBACK]);
        sqlite3_finalize(r.get);
        of_idfilter_free(&r.filter);
        sqlite3_free(sql);
        return err;
}

int store_runs_seal_for(of_store *st, size_t n, char *errstr,
                        size_t errstr_size)
{
        int sealed;

        /* Sealed before the batch could take processed_recent past
         * seal_events, so every run has at most that many ids. */
        if (st->recent_events <= 0 ||
            st->recent_events + (int64_t)n <= st->seal_events ||
            st->nruns >= MAX_RUNS)
                return 0;
        return store_runs_seal(st, &sealed, errstr, errstr_size);
}

void of_store_set_seal_events(of_store *st, int64_t n)
{
        st->seal_events = n;
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
                found = sqldb_fail(st->db, rc, "reading processed_events",
                                   errstr, errstr_size);
        }
        sqlite3_reset(stmt);
        return found;
}

int store_runs_find_recent(of_store *st, of_event *out, const char *id,
                           char *errstr, size_t errstr_size)
{
        return read_event(st, st->runs_stmt[RU_EVENT_GET], out, id, errstr,
                          errstr_size);
}

int store_runs_find_sealed(of_store *st, of_event *out, const char *id,
                           uint64_t hash, char *errstr, size_t errstr_size)
{
        sealed_run *r;
        size_t i;
        int rc;

        for (i = of_idfilter_set_next(&st->set, hash, 0); i < st->set.n;
             i = of_idfilter_set_next(&st->set, hash, i + 1)) {
                r = &st->runs[st->set_run[i]];
                if ((rc = read_event(st, r->get, out, id, errstr,
                                     errstr_size)))
                        return rc;
        }
        if (st->set.n == st->nruns)
                return 0;
        for (i = 0; i < st->nruns; i++) {
                r = &st->runs[i];
                if (r->in_set || !of_idfilter_maybe(&r->filter, hash))
                        continue;
                if ((rc = read_event(st, r->get, out, id, errstr,
                                     errstr_size)))
                        return rc;
        }
        return 0;
}

/* ---- the clock, and when processed_recent got its first row ---- */

int64_t store_now(const of_store *st)
{
        return st->clock ? st->clock(st->clock_opaque) : of_timestamp_now_ms();
}

void of_store_set_clock(of_store *st, int64_t (*now_ms)(void *opaque),
                        void *opaque)
{
        st->clock = now_ms;
        st->clock_opaque = opaque;
}

int store_runs_note_recent(of_store *st, int64_t recorded, char *errstr,
                           size_t errstr_size)
{
        sqlite3_stmt *stmt = st->runs_stmt[RU_SINCE_PUT];

        if (recorded <= 0)
                return 0;
        sqlite3_bind_int64(stmt, 1, store_now(st));
        return sqldb_step(st->db, stmt, errstr, errstr_size);
}

void store_runs_committed(of_store *st, int64_t recorded)
{
        st->recent_events += recorded;
}
