/* The read model as a whole: its info for `orderflow status` and for the
 * rebuild's comparison, read on a read-only connection; and the rebuild's
 * swap, SQLite's online backup of the new model into the live file in one
 * write transaction, which readers under WAL see as one commit (a
 * rename() would not be: their open connections keep the old inode and
 * its -wal). The batch transaction's own generation check is store.c's. */
#include <inttypes.h>
#include <stdarg.h>
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
static const char sql_counts[] = "SELECT (SELECT count(*) FROM order_list),"
                                 " (SELECT count(*) FROM processed_events),"
                                 " (SELECT count(*) FROM dead_letters)";
static const char sql_parts[] =
        "SELECT topic, \"partition\", next_offset FROM partition_offsets"
        " ORDER BY topic, \"partition\"";

/* Every row of partition_offsets, by topic and partition. */
static int read_parts(of_store_part **out, size_t *n, sqlite3 *db,
                      char *errstr, size_t errstr_size)
{
        sqlite3_stmt *stmt = NULL;
        of_store_part *parts = NULL, *p;
        size_t cnt = 0, cap = 0;
        int rc;

        *out = NULL;
        *n = 0;
        rc = sqlite3_prepare_v2(db, sql_parts, -1, &stmt, NULL);
        if (rc != SQLITE_OK)
                return of_errf(errstr, errstr_size,
                               "reading partition_offsets: %s",
                               sqlite3_errmsg(db));
        while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
                if (cnt == cap) {
                        cap = cap ? cap * 2 : 16;
                        p = realloc(parts, cap * sizeof(*p));
                        if (!p)
                                break;
                        parts = p;
                }
                p = &parts[cnt];
                p->topic = strdup((const char *)sqlite3_column_text(stmt, 0));
                if (!p->topic)
                        break;
                p->partition = sqlite3_column_int(stmt, 1);
                p->next_offset = sqlite3_column_int64(stmt, 2);
                cnt++;
        }
        if (rc == SQLITE_DONE) {
                sqlite3_finalize(stmt);
                *out = parts;
                *n = cnt;
                return 0;
        }
        if (rc == SQLITE_ROW)
                of_errf(errstr, errstr_size, "out of memory");
        else
                of_errf(errstr, errstr_size, "reading partition_offsets: %s",
                        sqlite3_errmsg(db));
        sqlite3_finalize(stmt);
        of_store_parts_free(parts, cnt);
        return OF_ERROR;
}

int of_store_parts(of_store_part **out, size_t *n, of_store *st, char *errstr,
                   size_t errstr_size)
{
        return read_parts(out, n, st->db, errstr, errstr_size);
}

void of_store_parts_free(of_store_part *parts, size_t n)
{
        size_t i;

        for (i = 0; i < n; i++)
                free(parts[i].topic);
        free(parts);
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
        err = read_parts(&out->parts, &out->nparts, db, errstr, errstr_size);
out:
        sqlite3_finalize(stmt);
        sqlite3_close(db);
        if (err)
                of_store_info_free(out);
        return err;
}

void of_store_info_free(of_store_info *info)
{
        of_store_parts_free(info->parts, info->nparts);
        info->parts = NULL;
        info->nparts = 0;
}

/* ---- Whether a file's offsets fit a topic ---- */

/* Append to out[*len..size) as snprintf would, keeping *len <= size. */
static void append(char *out, size_t size, size_t *len, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
static void append(char *out, size_t size, size_t *len, const char *fmt, ...)
{
        va_list ap;
        int n;

        if (*len >= size)
                return;
        va_start(ap, fmt);
        n = vsnprintf(out + *len, size - *len, fmt, ap);
        va_end(ap);
        *len = n < 0                     ? size
               : *len + (size_t)n > size ? size
                                         : *len + (size_t)n;
}

of_store_fit of_store_check_fit(const of_store_part *parts, size_t n,
                                const char *topic, int32_t cnt,
                                const int64_t *end, char *why, size_t why_size)
{
        const char *other = NULL;
        char list[600];
        size_t i, len = 0, bad = 0;
        int mine = 0;

        for (i = 0; i < n; i++) {
                if (strcmp(parts[i].topic, topic))
                        other = parts[i].topic;
                else
                        mine = 1;
        }
        /* A read model is one topic's: offsets of another mean a wrong -t
         * or a wrong --db, never something to add to. */
        if (other) {
                of_errf(why, why_size,
                        "the read model holds offsets of topic %s, not of "
                        "%s%s (a wrong --topic, or a wrong --db?)",
                        other, topic, mine ? " alone" : "");
                return OF_FIT_OTHER_TOPIC;
        }
        list[0] = '\0';
        for (i = 0; cnt >= 0 && i < n; i++)
                if (parts[i].partition >= cnt && ++bad)
                        append(list, sizeof(list), &len, "%s[%" PRId32 "]",
                               bad > 1 ? ", " : "", parts[i].partition);
        if (bad) {
                of_errf(why, why_size,
                        "the read model has applied partition(s) %s of "
                        "topic %s, which has %" PRId32 " partition(s) now "
                        "(it was deleted and created again?)",
                        list, topic, cnt);
                return OF_FIT_MISSING;
        }
        for (i = 0; end && i < n; i++) {
                int32_t p = parts[i].partition;

                if (p < 0 || (cnt >= 0 && p >= cnt) || end[p] < 0 ||
                    parts[i].next_offset <= end[p])
                        continue;
                append(list, sizeof(list), &len,
                       "%s[%" PRId32 "] next offset %" PRId64 ", end %" PRId64,
                       ++bad > 1 ? ", " : "", p, parts[i].next_offset, end[p]);
        }
        if (bad) {
                of_errf(why, why_size,
                        "the read model is ahead of topic %s: %s (the "
                        "topic was deleted and created again, or "
                        "truncated)",
                        topic, list);
                return OF_FIT_AHEAD;
        }
        return OF_FIT_OK;
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
                return sqldb_fail(st->db, rc, "recording the rebuild", errstr,
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
        sqldb_busy_timeout(dst, 1000);
        sqldb_persist_wal(dst); /* for readers: see of_store_open() */
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
        sqlite3_exec(dst, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
out:
        sqlite3_close(src);
        sqlite3_close(dst);
        return err;
}
