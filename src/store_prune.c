/* Dedupe retention (of_store_prune()): the sealed runs older than the
 * window are dropped whole, one short transaction each, and
 * processed_recent is sealed once its first row is old enough. What a run
 * is and how one is sealed are store_runs.c's. */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "orderflow/error.h"

#include "store_int.h"

/* Take st->runs[k] out of memory (its table is gone). */
static void run_forget(of_store *st, size_t k)
{
        sealed_run *r = &st->runs[k];
        size_t i, j, n = st->set.n;

        sqlite3_finalize(r->get);
        of_idfilter_free(&r->filter);
        for (i = j = 0; i < n; i++) {
                if (st->set_run[i] == k) {
                        of_idfilter_set_remove(&st->set, j);
                        continue;
                }
                st->set_run[j++] = st->set_run[i] - (st->set_run[i] > k);
        }
        memmove(r, r + 1, (st->nruns - k - 1) * sizeof(*r));
        st->nruns--;
}

/* Drop the oldest run sealed before cutoff (ms since 1970) in one
 * transaction: 1 dropped (*events its ids), 0 none is that old, <0
 * failure. */
static int drop_one(of_store *st, int64_t cutoff, int64_t *events,
                    char *errstr, size_t errstr_size)
{
        char *view = NULL, *sql = NULL;
        size_t k;
        int err;

        if ((err = sqldb_step(st->db, st->runs_stmt[RU_BEGIN], errstr,
                              errstr_size)) ||
            (err = store_runs_refresh(st, errstr, errstr_size)))
                goto out;
        for (k = 0; k < st->nruns; k++)
                if (st->runs[k].sealed_at >= 0 &&
                    st->runs[k].sealed_at < cutoff)
                        break;
        if (k == st->nruns)
                goto out; /* nothing to drop: err is 0 */
        /* The view first: a table under a view may not be renamed, and
         * dropping it first would leave the view pointing at nothing. */
        if (!(view = store_runs_view_sql(st, 0, st->runs[k].id)) ||
            !(sql = sqlite3_mprintf("DELETE FROM processed_runs WHERE run ="
                                    " %lld; %s; DROP TABLE"
                                    " processed_run_%lld",
                                    (long long)st->runs[k].id, view,
                                    (long long)st->runs[k].id))) {
                err = of_errf(errstr, errstr_size, "out of memory");
                goto out;
        }
        if ((err = store_runs_exec(st, sql, errstr, errstr_size)) ||
            (err = store_runs_schema_seen(st, errstr, errstr_size)) ||
            (err = sqldb_step(st->db, st->runs_stmt[RU_COMMIT], errstr,
                              errstr_size)))
                goto out;
        *events = st->runs[k].events;
        run_forget(st, k);
        err = 1;
out:
        sqldb_rollback(st->db, st->runs_stmt[RU_ROLLBACK]);
        sqlite3_free(view);
        sqlite3_free(sql);
        return err;
}

/* processed_recent_since: when processed_recent got its first row, or -1
 * when it is empty. */
static int recent_since(of_store *st, int64_t *out, char *errstr,
                        size_t errstr_size)
{
        sqlite3_stmt *stmt = NULL;
        int rc;

        *out = -1;
        rc = sqlite3_prepare_v2(st->db,
                                "SELECT since_ms FROM processed_recent_since",
                                -1, &stmt, NULL);
        if (rc == SQLITE_OK && (rc = sqlite3_step(stmt)) == SQLITE_ROW &&
            sqlite3_column_type(stmt, 0) != SQLITE_NULL)
                *out = sqlite3_column_int64(stmt, 0);
        sqlite3_finalize(stmt);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
                return sqldb_fail(st->db, rc, "reading processed_recent_since",
                                  errstr, errstr_size);
        return 0;
}

/* The earliest sealed_at of the runs in memory; INT64_MAX when none. */
static int64_t oldest_sealed(const of_store *st)
{
        int64_t t = INT64_MAX;
        size_t i;

        for (i = 0; i < st->nruns; i++)
                if (st->runs[i].sealed_at >= 0 && st->runs[i].sealed_at < t)
                        t = st->runs[i].sealed_at;
        return t;
}

int of_store_prune(of_store_pruned *out, of_store *st, int64_t window_ms,
                   size_t max_runs, char *errstr, size_t errstr_size)
{
        int64_t now = store_now(st), since, events = 0;
        int err = 0;

        assert(window_ms > 0);
        memset(out, 0, sizeof(*out));
        /* One run a transaction: a batch of another projector on the file
         * waits for one DROP TABLE at most. The runs in memory are as of
         * the last batch: when none of them is old enough, none on the
         * file is, and the write lock is not worth taking. */
        while (oldest_sealed(st) < now - window_ms) {
                if (max_runs && (size_t)out->runs == max_runs) {
                        out->more = 1;
                        break;
                }
                if ((err = drop_one(st, now - window_ms, &events, errstr,
                                    errstr_size)) != 1)
                        break;
                out->runs++;
                out->events += events;
                err = 0;
        }
        if (err)
                return err;
        if ((err = recent_since(st, &since, errstr, errstr_size)) ||
            since < 0 || since > now - window_ms / 4 || st->nruns >= MAX_RUNS)
                return err;
        return store_runs_seal(st, &out->sealed, errstr, errstr_size);
}
