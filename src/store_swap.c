/* The read model as a whole: its info for `orderflow status` and for the
 * rebuild's comparison, read on a read-only connection; and the rebuild's
 * swap, SQLite's online backup of the new model into the live file in one
 * write transaction, which readers under WAL see as one commit (a
 * rename() would not be: their open connections keep the old inode and
 * its -wal). The batch transaction's own generation check is store.c's. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "orderflow/error.h"
#include "orderflow/store.h"
#include "orderflow/timestamp.h"

#include "store_int.h"

static void copy_text(char *out, size_t size, sqlite3_stmt *stmt, int col)
{
        const unsigned char *t = sqlite3_column_text(stmt, col);

        snprintf(out, size, "%s", t ? (const char *)t : "");
}

/* store_info and order_totals: one row each, no table scanned. */
static const char sql_info[] =
        "SELECT i.generation, i.applied, i.ignored, i.duplicates,"
        " i.dead_letters, i.batches, i.last_batch_at, i.rebuilt_at,"
        " i.truncated, t.orders_placed, t.orders_paid, t.placed_amount,"
        " t.paid_amount FROM store_info AS i, order_totals AS t";
/* Rows of three relations: a scan of each (processed_events: every run),
 * so only for those who print them (the rebuild's comparison). */
static const char sql_counts[] =
        "SELECT (SELECT count(*) FROM order_list),"
        " (SELECT count(*) FROM processed_events),"
        " (SELECT count(*) FROM dead_letters)";
static const char sql_parts[] =
        "SELECT topic, \"partition\", next_offset FROM partition_offsets"
        " ORDER BY topic, \"partition\"";

static int read_parts(of_store_info *out, sqlite3 *db, char *errstr,
                      size_t errstr_size)
{
        sqlite3_stmt *stmt = NULL;
        size_t cap = 0;
        int rc;

        rc = sqlite3_prepare_v2(db, sql_parts, -1, &stmt, NULL);
        if (rc != SQLITE_OK)
                return of_errf(errstr, errstr_size,
                               "reading partition_offsets: %s",
                               sqlite3_errmsg(db));
        while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
                of_store_part *p;

                if (out->nparts == cap) {
                        cap = cap ? cap * 2 : 16;
                        p = realloc(out->parts, cap * sizeof(*p));
                        if (!p)
                                break;
                        out->parts = p;
                }
                p = &out->parts[out->nparts];
                p->topic = strdup((const char *)sqlite3_column_text(stmt, 0));
                if (!p->topic)
                        break;
                p->partition = sqlite3_column_int(stmt, 1);
                p->next_offset = sqlite3_column_int64(stmt, 2);
                out->nparts++;
        }
        sqlite3_finalize(stmt);
        if (rc == SQLITE_ROW)
                return of_errf(errstr, errstr_size, "out of memory");
        if (rc != SQLITE_DONE)
                return of_errf(errstr, errstr_size,
                               "reading partition_offsets: %s",
                               sqlite3_errmsg(db));
        return 0;
}

int of_store_info_read(of_store_info *out, const char *path, int counts,
                       char *errstr, size_t errstr_size)
{
        sqlite3 *db = NULL;
        sqlite3_stmt *stmt = NULL;
        int rc, err = 0;

        memset(out, 0, sizeof(*out));
        if (store_open_ro(&db, path, errstr, errstr_size))
                return OF_ERROR;
        rc = sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
        if (rc == SQLITE_OK)
                rc = sqlite3_prepare_v2(db, sql_info, -1, &stmt, NULL);
        if (rc == SQLITE_OK)
                rc = sqlite3_step(stmt);
        if (rc != SQLITE_ROW) {
                err = of_errf(errstr, errstr_size,
                              "%s: not a read model of this orderflow: %s",
                              path, sqlite3_errmsg(db));
                goto out;
        }
        out->generation = sqlite3_column_int64(stmt, 0);
        out->applied = sqlite3_column_int64(stmt, 1);
        out->ignored = sqlite3_column_int64(stmt, 2);
        out->duplicates = sqlite3_column_int64(stmt, 3);
        out->dead = sqlite3_column_int64(stmt, 4);
        out->batches = sqlite3_column_int64(stmt, 5);
        copy_text(out->last_batch_at, sizeof(out->last_batch_at), stmt, 6);
        copy_text(out->rebuilt_at, sizeof(out->rebuilt_at), stmt, 7);
        copy_text(out->truncated, sizeof(out->truncated), stmt, 8);
        out->orders_placed = sqlite3_column_int64(stmt, 9);
        out->orders_paid = sqlite3_column_int64(stmt, 10);
        out->placed_amount = sqlite3_column_int64(stmt, 11);
        out->paid_amount = sqlite3_column_int64(stmt, 12);
        out->orders = out->events = out->dead_rows = -1;
        if (counts) {
                sqlite3_finalize(stmt);
                stmt = NULL;
                rc = sqlite3_prepare_v2(db, sql_counts, -1, &stmt, NULL);
                if (rc == SQLITE_OK)
                        rc = sqlite3_step(stmt);
                if (rc != SQLITE_ROW) {
                        err = of_errf(errstr, errstr_size, "%s: %s", path,
                                      sqlite3_errmsg(db));
                        goto out;
                }
                out->orders = sqlite3_column_int64(stmt, 0);
                out->events = sqlite3_column_int64(stmt, 1);
                out->dead_rows = sqlite3_column_int64(stmt, 2);
        }
        err = read_parts(out, db, errstr, errstr_size);
out:
        sqlite3_finalize(stmt);
        sqlite3_close(db);
        if (err)
                of_store_info_free(out);
        return err;
}

void of_store_info_free(of_store_info *info)
{
        size_t i;

        for (i = 0; i < info->nparts; i++)
                free(info->parts[i].topic);
        free(info->parts);
        info->parts = NULL;
        info->nparts = 0;
}

int of_store_set_rebuilt(of_store *st, const char *truncated, char *errstr,
                         size_t errstr_size)
{
        sqlite3_stmt *stmt = NULL;
        char now[OF_TS_LEN + 1];
        int rc;

        of_timestamp_from_ms(now, of_timestamp_now_ms());
        rc = sqlite3_exec(st->db, "PRAGMA synchronous = OFF", NULL, NULL,
                          NULL);
        if (rc == SQLITE_OK)
                rc = sqlite3_prepare_v2(st->db,
                                        "UPDATE store_info SET rebuilt_at ="
                                        " ?1, truncated = ?2",
                                        -1, &stmt, NULL);
        if (rc == SQLITE_OK) {
                sqlite3_bind_text(stmt, 1, now, -1, SQLITE_TRANSIENT);
                if (truncated && *truncated)
                        sqlite3_bind_text(stmt, 2, truncated, -1,
                                          SQLITE_TRANSIENT);
                rc = sqlite3_step(stmt);
        }
        sqlite3_finalize(stmt);
        if (rc != SQLITE_DONE && rc != SQLITE_OK)
                return store_fail(st, rc, "recording the rebuild", errstr,
                                  errstr_size);
        return 0;
}

static void sleep_ms(int ms)
{
        struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

        nanosleep(&ts, NULL);
}

int of_store_replace(const char *live, const char *fresh, int timeout_ms,
                     char *errstr, size_t errstr_size)
{
        sqlite3 *dst = NULL, *src = NULL;
        sqlite3_backup *b;
        int waited = 0, rc, err = 0;

        if (store_open_ro(&src, fresh, errstr, errstr_size))
                return OF_ERROR;
        rc = sqlite3_open_v2(live, &dst, SQLITE_OPEN_READWRITE, NULL);
        if (rc != SQLITE_OK) {
                err = of_errf(errstr, errstr_size, "%s: %s", live,
                              dst ? sqlite3_errmsg(dst) : sqlite3_errstr(rc));
                goto out;
        }
        sqlite3_busy_timeout(dst, 1000);
        dbfile_persist_wal(dst); /* for readers: see of_store_open() */
        b = sqlite3_backup_init(dst, "main", src, "main");
        if (!b) {
                err = of_errf(errstr, errstr_size, "%s: %s", live,
                              sqlite3_errmsg(dst));
                goto out;
        }
        /* -1: every page in one step, so one write transaction of live.
         * Busy: a projector's batch holds the lock; it lets go soon. */
        while ((rc = sqlite3_backup_step(b, -1)) == SQLITE_BUSY ||
               rc == SQLITE_LOCKED) {
                if (waited >= timeout_ms)
                        break;
                sleep_ms(20);
                waited += 20;
        }
        sqlite3_backup_finish(b);
        if (rc != SQLITE_DONE) {
                err = of_errf(errstr, errstr_size,
                              "copying the new model into %s: %s", live,
                              sqlite3_errstr(rc));
                goto out;
        }
        /* Fold the copy into the file now rather than at the projector's
         * next checkpoint; readers may keep parts of it: not an error. */
        sqlite3_exec(dst, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL,
                     NULL);
out:
        sqlite3_close(src);
        sqlite3_close(dst);
        return err;
}
