/* What a person looks at in the outbox (appdb.h): its rows, for `outbox
 * list`, and the rows that DEAD ones hold back, for `relay --once`.
 * Counting (`outbox status`) is appdb.c's; changing rows is outbox.c's. */
#include <stdint.h>

#include <sqlite3.h>

#include "orderflow/appdb.h"
#include "orderflow/error.h"

#include "appdb_int.h"
#include "sqldb.h"

/* In commit order. next_attempt_at is shown only where it means
 * something: a PENDING row waiting out a backoff. ?1: the limit (-1:
 * none). */
#define LIST_SQL(where)                                                       \
        "SELECT seq, id, type, aggregate_id AS order_id, status, attempts,"   \
        " CASE WHEN status = 'PENDING' AND next_attempt_at > 0"               \
        "  THEN strftime('%Y-%m-%dT%H:%M:%fZ', next_attempt_at / 1000.0,"     \
        "                'unixepoch')"                                        \
        " END AS next_attempt_at,"                                            \
        " last_error"                                                         \
        " FROM outbox_messages " where " ORDER BY seq LIMIT ?1"

int of_appdb_outbox_list(of_cursor **out, of_appdb *app, of_outbox_which which,
                         int64_t limit, char *errstr, size_t errstr_size)
{
        /* The status written into the SQL, not bound: only then does
         * SQLite read the DEAD or PENDING rows from their partial index
         * instead of walking every SENT row. */
        static const char *const sql[] = {
                [OF_OUTBOX_ALL] = LIST_SQL(""),
                [OF_OUTBOX_PENDING] = LIST_SQL("WHERE status = 'PENDING'"),
                [OF_OUTBOX_DEAD] = LIST_SQL("WHERE status = 'DEAD'"),
        };
        sqlite3_stmt *stmt = NULL;
        int rc;

        *out = NULL;
        rc = sqlite3_prepare_v2(app->db, sql[which], -1, &stmt, NULL);
        if (rc != SQLITE_OK)
                return sqldb_fail(app->db, rc, "reading the outbox", errstr,
                                  errstr_size);
        sqlite3_bind_int64(stmt, 1, limit > 0 ? limit : -1);
        return sqldb_cursor_new(out, app->db, 0, stmt, "reading the outbox",
                                errstr, errstr_size);
}

/* From the DEAD rows (few, by their partial index) to the later PENDING
 * rows of their orders (by the order's index). */
static const char behind_sql[] =
        "SELECT (SELECT count(*) FROM outbox_messages WHERE status = 'DEAD'),"
        " (SELECT count(DISTINCT p.seq) FROM outbox_messages AS d"
        "  JOIN outbox_messages AS p ON p.aggregate_id = d.aggregate_id"
        "   AND p.seq > d.seq AND p.status = 'PENDING'"
        "  WHERE d.status = 'DEAD')";

int of_appdb_outbox_behind_dead(of_appdb *app, int64_t *dead, int64_t *behind,
                                char *errstr, size_t errstr_size)
{
        sqlite3_stmt *stmt = NULL;
        int rc, err = 0;

        *dead = *behind = 0;
        rc = sqlite3_prepare_v2(app->db, behind_sql, -1, &stmt, NULL);
        if (rc == SQLITE_OK && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
                *dead = sqlite3_column_int64(stmt, 0);
                *behind = sqlite3_column_int64(stmt, 1);
        } else {
                err = sqldb_fail(app->db, rc, "reading the outbox", errstr,
                                 errstr_size);
        }
        sqlite3_finalize(stmt);
        return err;
}
